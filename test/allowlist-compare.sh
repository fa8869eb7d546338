# Sourced by core-regress-check.sh and core-isolation-check.sh: compare a
# pg_regress-style run with the differences an allowlist directory accepts,
# or rewrite that directory from runs.  The work is done by allowlist-hunks.pl
# (its header describes the format of the directory's <test>.diff files).
#
#   allowlist_compare NAME SUMMARY ALLOWDIR DIFFS
#	SUMMARY is the runner's output (lines "test NAME ... FAILED"), DIFFS its
#	regression.diffs.  Every hunk of DIFFS must be one ALLOWDIR/<test>.diff
#	accepts (hunk positions are not compared, only the lines), every failed
#	test must have a diff, and every group of accepted hunks a reason.
#	Prints each unexpected hunk, the accepted hunks the run did not show
#	(to prune; not an error) and the summary line "NAME: F failed,
#	A allowlisted, U unexpected; hunks: ..."; returns non-zero on any
#	unexpected hunk or a group without a reason.
#   allowlist_update ALLOWDIR SUMMARY DIFFS [SUMMARY DIFFS ...]
#	Rewrite ALLOWDIR from one or more runs, keeping the reasons of the hunks
#	it already accepts; new hunks get "## TODO: reason", which
#	allowlist_compare refuses until someone writes the reason.
allowlist_compare() {
	perl "$(dirname "${BASH_SOURCE[0]}")/allowlist-hunks.pl" compare "$1" "$3" "$2" "$4"
}

allowlist_update() {
	perl "$(dirname "${BASH_SOURCE[0]}")/allowlist-hunks.pl" update "$@"
}

# One shard per table: a backend appends to shard MyBackendId % shards, so
# with several shards the TIDs a test prints depend on which backend slot its
# connection got, and differ from run to run.  With one, they depend only on
# what the test itself does, and the accepted hunks stay the same.
export PGOPTIONS="${PGOPTIONS:-} -c armdb.shards=1"

# suite_main NAME DIFFS DEFAULT_OUTDIR [ARG...]: what both check scripts do
# with their arguments (see their headers), given their run_suite and
# $ALLOW.  DIFFS is where a run's regression.diffs is, inside its OUTDIR.
#   (none) or OUTDIR	one run, compared (check_suite)
#   --update OUTDIR [N]	N runs (default 3), the allowlist rewritten from them
#   --update-from OUTDIR...	the allowlist rewritten from earlier runs
suite_main() {
	local name=$1 diffs=$2 default_out=$3 out i d
	local args=() dirs=()
	shift 3
	case ${1:-} in
	--update)
		out=${2:?usage: $0 --update OUTDIR [N]}
		for i in $(seq "${3:-3}"); do run_suite "$out/run$i"; dirs+=("$out/run$i"); done
		;;
	--update-from)
		shift
		dirs=("$@")
		;;
	*)
		check_suite "$name" "${1:-$default_out}" "$diffs"
		return
		;;
	esac
	for d in "${dirs[@]}"; do args+=("$d/summary.txt" "$d/$diffs"); done
	allowlist_update "$ALLOW" "${args[@]}"
}

# check_suite NAME OUTDIR DIFFS: run_suite OUTDIR (the caller's), then
# allowlist_compare against $ALLOW with OUTDIR/DIFFS.  Plans and row orders
# that depend on timing (autovacuum, concurrent tests) can come and go
# between runs, so a hunk not accepted gets one more run: a wrong answer
# shows again and fails; a variant seen once passes, loudly, and belongs in
# the allowlist (--update-from OUTDIR OUTDIR.again).
check_suite() {
	local name=$1 out=$2 diffs=$3
	run_suite "$out"
	allowlist_compare "$name" "$out/summary.txt" "$ALLOW" "$out/$diffs" && return 0
	echo "$name: unexpected hunks in the first run; running the suite once more"
	run_suite "$out.again"
	allowlist_compare "$name" "$out.again/summary.txt" "$ALLOW" "$out.again/$diffs"
}
