#!/usr/bin/env bash
#
# bench/run.sh - armdb against heap, side by side, on one running server.
#
#   PGHOST=127.0.0.1 PGPORT=54320 PGUSER=postgres bash bench/run.sh [ROWS]
#
# The server must have armdb in shared_preload_libraries.  Measures, for
# each access method: COPY of ROWS rows (default 1000000) from a server-side
# file, a full sequential scan (count), single-row INSERT commit latency
# with 1 client and throughput with 4 clients (pgbench, 10 s each), and for
# armdb the key directory's memory per row.  Prints a markdown table with
# the armdb/heap ratios.  Run it as a user that can write /tmp on the
# server's host (the COPY file lives there).
set -euo pipefail
ROWS=${1:-1000000}
SECS=${BENCH_SECONDS:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
psql() { "${PGBIN}/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
elapsed() { calc "$2 - $1"; }

DATA=/tmp/armdb-bench-${ROWS}.copy
psql -c "CREATE EXTENSION IF NOT EXISTS armdb"
psql -c "COPY (SELECT g, md5(g::text), g * 0.5, now() FROM generate_series(1, ${ROWS}) g) TO '${DATA}'"

declare -A R
for am in heap armdb; do
	t=bench_${am}
	psql -c "DROP TABLE IF EXISTS ${t}" \
		-c "CREATE TABLE ${t} (id int, v text, f numeric, ts timestamptz) USING ${am}"
	s=$(now); psql -c "COPY ${t} FROM '${DATA}'"; e=$(now)
	R[copy_s_${am}]=$(elapsed "$s" "$e")
	R[copy_rps_${am}]=$(calc "${ROWS} / ${R[copy_s_${am}]}")
	s=$(now); psql -At -c "SELECT count(*) FROM ${t}" >/dev/null; e=$(now)
	R[scan_s_${am}]=$(elapsed "$s" "$e")

	psql -c "DROP TABLE IF EXISTS ${t}_ins" \
		-c "CREATE TABLE ${t}_ins (id int, v text) USING ${am}"
	echo "INSERT INTO ${t}_ins VALUES (1, 'a commit of one row');" > /tmp/armdb-bench-ins.sql
	R[lat_ms_${am}]=$("${PGBIN}/pgbench" -n -f /tmp/armdb-bench-ins.sql -c 1 -T "${SECS}" 2>/dev/null |
		awk '/latency average/ {print $4}')
	R[tps4_${am}]=$("${PGBIN}/pgbench" -n -f /tmp/armdb-bench-ins.sql -c 4 -j 2 -T "${SECS}" 2>/dev/null |
		awk '/^tps/ {print $3}')
done
R[mem_per_row]=$(psql -At -c "SELECT round(armdb_keydir_size('bench_armdb')::numeric / ${ROWS}, 1)")
R[disk_armdb]=$(psql -At -c "SELECT pg_size_pretty(armdb_relation_size('bench_armdb'))")
R[disk_heap]=$(psql -At -c "SELECT pg_size_pretty(pg_table_size('bench_heap'))")

ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }
printf '| measure (%s rows) | heap | armdb | armdb/heap |\n|---|---|---|---|\n' "${ROWS}"
printf '| COPY, rows/s | %.0f | %.0f | %s |\n' "${R[copy_rps_heap]}" "${R[copy_rps_armdb]}" \
	"$(ratio "${R[copy_rps_armdb]}" "${R[copy_rps_heap]}")"
printf '| seq scan count(*), s | %.3f | %.3f | %s |\n' "${R[scan_s_heap]}" "${R[scan_s_armdb]}" \
	"$(ratio "${R[scan_s_armdb]}" "${R[scan_s_heap]}")"
printf '| 1-row INSERT commit latency, 1 client, ms | %s | %s | %s |\n' "${R[lat_ms_heap]}" "${R[lat_ms_armdb]}" \
	"$(ratio "${R[lat_ms_armdb]}" "${R[lat_ms_heap]}")"
printf '| 1-row INSERT commits/s, 4 clients | %.0f | %.0f | %s |\n' "${R[tps4_heap]}" "${R[tps4_armdb]}" \
	"$(ratio "${R[tps4_armdb]}" "${R[tps4_heap]}")"
printf '| table size on disk | %s | %s | |\n' "${R[disk_heap]}" "${R[disk_armdb]}"
printf '| keydir memory per row, bytes | | %s | |\n' "${R[mem_per_row]}"
psql -c "DROP TABLE bench_heap, bench_armdb, bench_heap_ins, bench_armdb_ins"
rm -f "${DATA}" /tmp/armdb-bench-ins.sql
