#!/usr/bin/env bash
# Run PostgreSQL 15's own isolation suite (src/test/isolation, ~115 specs of concurrent
# updates, deletes, row locks, foreign keys, EvalPlanQual, SSI) with armdb as the default
# table access method, and compare the failures with test/core-isolation-allowlist.
# Run as root; the server (PGHOST/PGPORT, superuser PGUSER, shared_preload_libraries='armdb')
# must already be running.
#   PGHOST=127.0.0.1 PGPORT=54430 test/core-isolation-check.sh [OUTDIR]
# Exit 1 if a spec fails that the allowlist does not name.  Takes about a minute.
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-/tmp/armdb-core-isolation}
ALLOW=$here/core-isolation-allowlist
AM=${AM:-armdb}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
BIN=$(pg_config --bindir 2>/dev/null); [ -x "$BIN/postgres" ] || BIN=/usr/lib/postgresql/15/bin
PGXS=$(dirname "$(dirname "$(dirname "$($BIN/pg_config --pgxs)")")")
SRC=$("$here/../../shared/tools/pg-source") || { echo "core isolation: no PostgreSQL source"; exit 1; }
psql -X -q -d template1 -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS $AM" \
  -c "ALTER SYSTEM SET default_table_access_method = '$AM'" -c "SELECT pg_reload_conf()" >/dev/null ||
  { echo "core isolation: could not make $AM the default access method"; exit 1; }
trap 'psql -X -q -d template1 -c "ALTER SYSTEM RESET default_table_access_method" -c "SELECT pg_reload_conf()" >/dev/null' EXIT
rm -rf "$OUT"; mkdir -p "$OUT"; chmod -R a+rwX "$OUT" "$SRC/src/test/isolation"
id postgres >/dev/null 2>&1 && as="su postgres -c" || as="bash -c"
$as "cd $SRC/src/test/isolation && $PGXS/src/test/isolation/pg_isolation_regress --inputdir=. \
  --outputdir=$OUT --bindir=$BIN --host=$PGHOST --port=$PGPORT --user=$PGUSER \
  --load-extension=$AM --schedule=./isolation_schedule" > "$OUT/summary.txt" 2>&1
grep -qE '(ok|FAILED)( +[0-9]+ ms)?$' "$OUT/summary.txt" || { echo "core isolation: no results in $OUT"; cat "$OUT/summary.txt"; exit 1; }
n=$(grep -cE '\.\.\. +(ok|FAILED)' "$OUT/summary.txt")
echo "core isolation: $n specs run"
. "$here/allowlist-compare.sh"
allowlist_compare "core isolation" "$OUT/summary.txt" "$ALLOW" "$OUT/regression.diffs"
