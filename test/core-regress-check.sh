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
# exact test names (the tool's failed.txt cuts "collate.icu.utf8" to "collate")
failed=$(grep FAILED "$OUT/summary.txt" | sed -E 's/^(test )?[[:space:]]*([^[:space:]]+).*/\2/' | sort -u)
allowed=$(grep -v "^#" "$ALLOW" | awk 'NF {print $1}' | sort -u)
flaky=$(grep -E "^[^#[:space:]]+ +# flaky" "$ALLOW" | awk '{print $1}')
unexpected=$(comm -23 <(echo "$failed") <(echo "$allowed") | grep .)
for t in $(comm -13 <(echo "$failed") <(echo "$allowed")); do echo "$flaky" | grep -qx "$t" || echo "now passes: remove from allowlist: $t"; done
for t in $unexpected; do echo "UNEXPECTED failure: $t"; done
grep -qE 'terminated by signal|server closed the connection' "$OUT/results/regression.diffs" 2>/dev/null &&
  echo "WARNING: server crash in $OUT/results/regression.diffs"
nf=$(echo "$failed" | grep -c .); nu=$(echo "$unexpected" | grep -c .)
echo "core regress: $nf failed, $((nf - nu)) allowlisted, $nu unexpected"
[ "$nu" -eq 0 ]
