#!/usr/bin/env bash
# Run PostgreSQL 15's own isolation suite (src/test/isolation, ~115 specs of concurrent
# updates, deletes, row locks, foreign keys, EvalPlanQual, SSI) with armdb as the default
# table access method, and compare its differences from the expected output, hunk by hunk,
# with those test/core-isolation-allowlist/ accepts (one <spec>.diff per spec that differs:
# its accepted diff hunks, each group of them under a "## reason" line; format in
# test/allowlist-hunks.pl).  Run as root; the server (PGHOST/PGPORT, superuser PGUSER,
# shared_preload_libraries='armdb') must already be running.
#   PGHOST=127.0.0.1 PGPORT=54430 test/core-isolation-check.sh [OUTDIR]
#	One run.  Exit 1 on a hunk the allowlist does not accept, a failed spec without a
#	diff, or a hunk group without a reason; accepted hunks the run did not show are
#	listed, to prune, but do not fail.  About a minute.
#   test/core-isolation-check.sh --update OUTDIR [N]
#	Run the suite N times (default 3) into OUTDIR/run1..N and rewrite the allowlist from
#	all of them (every variant of a nondeterministic difference is kept).
#   test/core-isolation-check.sh --update-from OUTDIR [OUTDIR...]
#	The same from runs made before (OUTDIRs of earlier runs of this script).
# Updating works as for test/core-regress-check.sh (see there): existing hunks keep their
# reasons, unseen ones are dropped unless "flaky", new ones need a reason before this passes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ALLOW=$here/core-isolation-allowlist
AM=${AM:-armdb}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
BIN=$(pg_config --bindir 2>/dev/null); [ -x "$BIN/postgres" ] || BIN=/usr/lib/postgresql/15/bin
PGXS=$(dirname "$(dirname "$(dirname "$($BIN/pg_config --pgxs)")")")
SRC=$("${ARMDB_TOOLS:-$here/../../shared/tools}/pg-source") || { echo "core isolation: no PostgreSQL source"; exit 1; }
. "$here/allowlist-compare.sh"

# run_suite OUTDIR: one run of the suite into OUTDIR
run_suite() {
	local out=$1 n
	psql -X -q -d template1 -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS $AM" \
	  -c "ALTER SYSTEM SET default_table_access_method = '$AM'" -c "SELECT pg_reload_conf()" >/dev/null ||
	  { echo "core isolation: could not make $AM the default access method"; exit 1; }
	trap 'psql -X -q -d template1 -c "ALTER SYSTEM RESET default_table_access_method" -c "SELECT pg_reload_conf()" >/dev/null' EXIT
	rm -rf "$out"; mkdir -p "$out"; chmod -R a+rwX "$out" "$SRC/src/test/isolation"
	id postgres >/dev/null 2>&1 && as="su postgres -c" || as="bash -c"
	$as "cd $SRC/src/test/isolation && $PGXS/src/test/isolation/pg_isolation_regress --inputdir=. \
	  --outputdir=$out --bindir=$BIN --host=$PGHOST --port=$PGPORT --user=$PGUSER \
	  --load-extension=$AM --schedule=./isolation_schedule" > "$out/summary.txt" 2>&1
	grep -qE '(ok|FAILED)( +[0-9]+ ms)?$' "$out/summary.txt" || { echo "core isolation: no results in $out"; cat "$out/summary.txt"; exit 1; }
	n=$(grep -cE '\.\.\. +(ok|FAILED)' "$out/summary.txt")
	echo "core isolation: $n specs run"
}

suite_main "core isolation" regression.diffs /tmp/armdb-core-isolation "$@"
