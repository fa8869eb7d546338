#!/usr/bin/env bash
# Run PostgreSQL 15's core regression suite with armdb as the default table AM and compare the
# failures with test/core-regress-allowlist.  Run as root, like the tool; the server (PGHOST/PGPORT,
# superuser PGUSER, shared_preload_libraries='armdb') must already be running.
#   PGHOST=127.0.0.1 PGPORT=54430 test/core-regress-check.sh [OUTDIR]
# Exit 1 if a test fails that the allowlist does not name.  Takes ~1.5 minutes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-/tmp/armdb-core-regress}
ALLOW=$here/core-regress-allowlist
AM=armdb PGUSER=${PGUSER:-postgres} "$here/../../shared/tools/pg-core-regress" "$OUT" | tail -1
[ -s "$OUT/summary.txt" ] || { echo "core regress: no summary in $OUT"; exit 1; }
. "$here/allowlist-compare.sh"
allowlist_compare "core regress" "$OUT/summary.txt" "$ALLOW" "$OUT/results/regression.diffs"
