# Sourced by core-regress-check.sh and core-isolation-check.sh: compare the
# tests a pg_regress-style run failed with an allowlist of known differences.
#   allowlist_compare NAME SUMMARY ALLOWLIST DIFFS
# SUMMARY is the runner's output (lines "test NAME ... FAILED"), ALLOWLIST has
# one test name per line followed by "# reason" ("# flaky: ..." may pass).
# Prints the tests that now pass, the unexpected failures and a summary line
# "NAME: F failed, A allowlisted, U unexpected"; returns non-zero on any
# unexpected failure.
allowlist_compare() {
	local name=$1 summary=$2 allow=$3 diffs=$4 failed allowed flaky unexpected t nf nu
	# exact test names (names with dots, such as collate.icu.utf8, included)
	failed=$(grep FAILED "$summary" | sed -E 's/^(test )?[[:space:]]*([^[:space:]]+).*/\2/' | sort -u)
	allowed=$(grep -v "^#" "$allow" | awk 'NF {print $1}' | sort -u)
	flaky=$(grep -E "^[^#[:space:]]+ +# flaky" "$allow" | awk '{print $1}')
	unexpected=$(comm -23 <(echo "$failed") <(echo "$allowed") | grep .)
	for t in $(comm -13 <(echo "$failed") <(echo "$allowed")); do
		echo "$flaky" | grep -qx "$t" || echo "now passes: remove from allowlist: $t"
	done
	for t in $unexpected; do echo "UNEXPECTED failure: $t"; done
	grep -qE 'terminated by signal|server closed the connection' "$diffs" 2>/dev/null &&
		echo "WARNING: server crash in $diffs"
	nf=$(echo "$failed" | grep -c .); nu=$(echo "$unexpected" | grep -c .)
	echo "$name: $nf failed, $((nf - nu)) allowlisted, $nu unexpected"
	[ "$nu" -eq 0 ]
}
