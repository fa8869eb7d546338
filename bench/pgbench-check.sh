#!/usr/bin/env bash
#
# bench/pgbench-check.sh - pgbench TPC-B on armdb tables, checked.
#
#   PGHOST=127.0.0.1 PGPORT=54329 PGUSER=postgres bash bench/pgbench-check.sh [SCALE] [SECONDS]
#
# Initialises pgbench with armdb as the default table access method, runs
# TPC-B with 4 clients, and checks: every pgbench table uses armdb, no
# transaction failed, and the balances of accounts, tellers and branches
# each add up to the deltas recorded in history.  Exits non-zero otherwise.
set -euo pipefail
SCALE=${1:-2}
SECS=${2:-15}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=armdb_pgbench
psql() { "${PGBIN}/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -d postgres -c "DROP DATABASE IF EXISTS ${DB}" -c "CREATE DATABASE ${DB}"
psql -d "${DB}" -c "CREATE EXTENSION IF NOT EXISTS armdb"
PGOPTIONS='-c default_table_access_method=armdb' "${PGBIN}/pgbench" -i -q -s "${SCALE}" "${DB}"

ams=$(psql -d "${DB}" -At -c "SELECT string_agg(DISTINCT a.amname, ',') FROM pg_class c
	JOIN pg_am a ON a.oid = c.relam WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'")
[[ ${ams} == armdb ]] || { echo "pgbench tables use '${ams}', not armdb"; exit 1; }

out=$("${PGBIN}/pgbench" -c 4 -j 2 -T "${SECS}" "${DB}" 2>&1) || { echo "${out}"; exit 1; }
echo "${out}" | grep -E "number of transactions actually processed|failed|latency average|^tps"
echo "${out}" | grep -q "number of failed transactions: 0 " ||
	{ echo "pgbench reported failed transactions"; exit 1; }

read -r acc tel bra hist n <<<"$(psql -d "${DB}" -At -F ' ' -c "SELECT
	(SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
	(SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history),
	(SELECT count(*) FROM pgbench_history)")"
echo "history rows ${n}; sums: accounts ${acc}, tellers ${tel}, branches ${bra}, history ${hist}"
[[ ${n} -gt 0 && ${acc} == "${hist}" && ${tel} == "${hist}" && ${bra} == "${hist}" ]] ||
	{ echo "pgbench check: FAILED (balances do not match history)"; exit 1; }
psql -d postgres -c "DROP DATABASE ${DB}"
echo "pgbench check: ok"
