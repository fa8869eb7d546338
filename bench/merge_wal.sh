#!/usr/bin/env bash
#
# bench/merge_wal.sh - the WAL a merge writes, with and without its
# outputs' bytes (XLOG_ARMDB_MERGE_DATA, logged while full pages are
# written: full_page_writes = on, the default, or a base backup running).
#
#   bash bench/merge_wal.sh [ROWS]
#
# Run it as root (or a user with sudo), with armdb installed into
# PostgreSQL 15 (bash scripts/demo.sh does that).  It starts a throw-away
# cluster (scripts/lib.sh start_cluster) in a new directory under
# ARMDB_BENCH_DIR (default /var/tmp) on port ARMDB_BENCH_PORT (default
# 54328) and removes it when done; PGBIN (default
# /usr/lib/postgresql/15/bin) another installation's programs.
#
# For full_page_writes on, then off: a table of ROWS (default 1000000) rows
# of ~100 bytes, every row updated once and a third deleted, VACUUM; then
# armdb_compact() until nothing is left to merge.  It prints the bytes the
# merges wrote (armdb_compaction_stats()), the WAL they generated
# (pg_current_wal_lsn() before and after), the merges' share of the time,
# and the ratio WAL / bytes written.
set -euo pipefail

ROWS=${1:-1000000}
PORT=${ARMDB_BENCH_PORT:-54328}
BASE=${ARMDB_BENCH_DIR:-/var/tmp}
[[ ${ROWS} =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROWS]" >&2; exit 2; }
PGBIN_WANTED=${PGBIN:-}

# shellcheck source=../scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
[[ -z ${PGBIN_WANTED} ]] || PGBIN=${PGBIN_WANTED}

DIR=$(mktemp -d "${BASE}/armdb-merge-wal.XXXXXX")
cleanup() {
	stop_cluster "${DIR}"
	as_root rm -rf "${DIR}"
}
trap cleanup EXIT
start_cluster "${DIR}" "${PORT}" \
	"armdb.max_file_size = '16MB'" \
	"armdb.compaction = off" \
	"autovacuum = off" \
	"max_wal_size = '4GB'"

q() { cluster_psql "${PORT}" -d postgres -q -At -F ' ' "$@"; }
q -c "CREATE EXTENSION IF NOT EXISTS armdb" >/dev/null

printf '%-18s %12s %12s %10s %8s %10s\n' full_page_writes merged_MB wal_MB wal/merged merges seconds
for fpw in on off; do
	q -c "ALTER SYSTEM SET full_page_writes = ${fpw}" -c "SELECT pg_reload_conf()" >/dev/null
	q -c "CHECKPOINT" >/dev/null	# the checkpointer has the new setting
	q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS mw" \
		-c "CREATE TABLE mw (id int PRIMARY KEY, v text) USING armdb" \
		-c "INSERT INTO mw SELECT g, repeat('x', 90) || g FROM generate_series(1, ${ROWS}) g" \
		-c "UPDATE mw SET v = v || 'u'" \
		-c "DELETE FROM mw WHERE id % 3 = 0" \
		-c "VACUUM mw" -c "CHECKPOINT" >/dev/null
	read -r w0 < <(q -c "SELECT bytes_written FROM armdb_compaction_stats()")
	read -r lsn0 < <(q -c "SELECT pg_current_wal_lsn()")
	merges=0
	start=$(date +%s.%N)
	while :; do
		read -r m < <(q -c "SELECT merges FROM armdb_compact('mw')")
		[[ ${m} -gt 0 ]] || break
		merges=$((merges + m))
	done
	end=$(date +%s.%N)
	read -r w1 < <(q -c "SELECT bytes_written FROM armdb_compaction_stats()")
	read -r wal < <(q -c "SELECT pg_current_wal_lsn() - '${lsn0}'::pg_lsn")
	awk -v f="${fpw}" -v w=$((w1 - w0)) -v l="${wal}" -v m="${merges}" -v s="${start}" -v e="${end}" \
		'BEGIN { printf "%-18s %12.1f %12.1f %10.2f %8d %10.1f\n", f, w / 1e6, l / 1e6, (w > 0 ? l / w : 0), m, e - s }'
done
q -c "ALTER SYSTEM RESET full_page_writes" -c "SELECT pg_reload_conf()" >/dev/null
