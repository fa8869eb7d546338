#!/usr/bin/env bash
# Run PostgreSQL 15's core regression suite with armdb as the default table AM and compare its
# differences from the expected output, hunk by hunk, with those test/core-regress-allowlist/
# accepts (one <test>.diff per test that differs: its accepted diff hunks, each group of them
# under a "## reason" line; format in test/allowlist-hunks.pl).  Run as root, like the tool; the
# server (PGHOST/PGPORT, superuser PGUSER, shared_preload_libraries='armdb',
# max_prepared_transactions = 10 as scripts/test.sh sets it) must already be running.
#   PGHOST=127.0.0.1 PGPORT=54430 test/core-regress-check.sh [OUTDIR]
#	One run.  Exit 1 on a hunk the allowlist does not accept (a new wrong answer inside an
#	allowlisted test too), a failed test without a diff, or a hunk group without a reason.
#	Accepted hunks the run did not show are listed, to prune, but do not fail.  ~1.5-3 min.
#   test/core-regress-check.sh --update OUTDIR [N]
#	Run the suite N times (default 3) into OUTDIR/run1..N and rewrite the allowlist from all
#	of them, so that every variant of a nondeterministic difference (row order without
#	ORDER BY, ctids) is kept.
#   test/core-regress-check.sh --update-from OUTDIR [OUTDIR...]
#	The same from runs made before (OUTDIRs of earlier runs of this script).
# Updating, e.g. after merging changes that add or remove differences: run --update, then
# `git diff test/core-regress-allowlist`.  Hunks already accepted keep their reason; accepted
# hunks no run showed are dropped (except those under a "## flaky..." reason: nondeterministic
# variants, kept until removed by hand); new hunks land under "## TODO: reason (new)" and this
# script fails until each is read and given a reason ("flaky: ..." if it comes and goes).
# Never accept a difference that is a wrong answer: fix it, or write it down as a BUG.
# Heap2 baseline: AM=heap2 ../shared/tools/pg-core-regress shows the suite's own differences.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ALLOW=$here/core-regress-allowlist
TOOLS=${ARMDB_TOOLS:-$here/../../shared/tools}
. "$here/allowlist-compare.sh"

# run_suite OUTDIR: one run of the suite into OUTDIR
run_suite() {
	AM=armdb PGUSER=${PGUSER:-postgres} "$TOOLS/pg-core-regress" "$1" | tail -1
	[ -s "$1/summary.txt" ] || { echo "core regress: no summary in $1"; exit 1; }
}

suite_main "core regress" results/regression.diffs /tmp/armdb-core-regress "$@"
