#!/usr/bin/env bash
#
# bench/ab.sh - two armdb builds compared, each against heap on its own
# server, run alternately so that both see the machine's same moods.
#
#   PGBIN_A=... PORT_A=... PGBIN_B=... PORT_B=... bash bench/ab.sh [ROUNDS]
#
# Both servers must be running (on 127.0.0.1, superuser postgres, armdb in
# shared_preload_libraries).  Per round and server: COPY of 1000000 rows
# from a server-side file into an armdb and a heap table (seconds), then
# pgbench TPC-B (scale 10, 4 clients, 15 s) and single-row INSERTs (4
# clients, 10 s) on armdb and heap databases made once.  Prints one line per
# measure with the armdb/heap ratio; compare the ratios of A and B (the
# absolute figures move with the machine's I/O from minute to minute).
# Run it as a user that can write /tmp (the COPY file lives there).
set -euo pipefail
ROUNDS=${1:-3}
: "${PGBIN_A:?}" "${PORT_A:?}" "${PGBIN_B:?}" "${PORT_B:?}"
DATA=/tmp/armdb-ab-1000000.copy

q() { "$1/psql" -h 127.0.0.1 -p "$2" -U postgres -X -q -At "${@:3}"; }
now() { date +%s.%N; }

"${PGBIN_A}/psql" -h 127.0.0.1 -p "${PORT_A}" -U postgres -X -q -c \
	"COPY (SELECT g, md5(g::text), g * 0.5, now() FROM generate_series(1, 1000000) g) TO '${DATA}'"
echo "INSERT INTO ins_t VALUES (1, 'a commit of one row');" >/tmp/armdb-ab-ins.sql

for side in A B; do
	bin=PGBIN_${side}; port=PORT_${side}
	for am in armdb heap; do
		q "${!bin}" "${!port}" -c "DROP DATABASE IF EXISTS ab_${am}" -c "CREATE DATABASE ab_${am}"
		q "${!bin}" "${!port}" -d "ab_${am}" -c "CREATE EXTENSION armdb" \
			-c "ALTER DATABASE ab_${am} SET default_table_access_method = ${am}"
		"${!bin}/pgbench" -h 127.0.0.1 -p "${!port}" -U postgres -i -q -s 10 "ab_${am}" >/dev/null 2>&1
		q "${!bin}" "${!port}" -d "ab_${am}" -c "CREATE TABLE ins_t (id int, v text)"
	done
done

for r in $(seq "${ROUNDS}"); do
	for side in A B; do
		bin=PGBIN_${side}; port=PORT_${side}
		declare -A T=()
		for am in armdb heap; do
			q "${!bin}" "${!port}" -d "ab_${am}" -c "DROP TABLE IF EXISTS c" \
				-c "CREATE TABLE c (id int, v text, f numeric, ts timestamptz)" -c "CHECKPOINT"
			s=$(now)
			q "${!bin}" "${!port}" -d "ab_${am}" -c "COPY c FROM '${DATA}'"
			T[copy_${am}]=$(awk "BEGIN { print $(now) - ${s} }")
			T[tpcb_${am}]=$("${!bin}/pgbench" -h 127.0.0.1 -p "${!port}" -U postgres -n -c 4 -j 2 \
				-T 15 "ab_${am}" 2>&1 | awk '/^tps/ { print $3 }')
			T[ins_${am}]=$("${!bin}/pgbench" -h 127.0.0.1 -p "${!port}" -U postgres -n -c 4 -j 2 \
				-T 10 -f /tmp/armdb-ab-ins.sql "ab_${am}" 2>&1 | awk '/^tps/ { print $3 }')
		done
		printf 'round %s %s: COPY s armdb %.2f heap %.2f ratio %.2f | TPC-B tps armdb %.0f heap %.0f ratio %.2f | INSERT tps armdb %.0f heap %.0f ratio %.2f\n' \
			"${r}" "${side}" "${T[copy_armdb]}" "${T[copy_heap]}" \
			"$(awk "BEGIN { print ${T[copy_heap]} / ${T[copy_armdb]} }")" \
			"${T[tpcb_armdb]}" "${T[tpcb_heap]}" \
			"$(awk "BEGIN { print ${T[tpcb_armdb]} / ${T[tpcb_heap]} }")" \
			"${T[ins_armdb]}" "${T[ins_heap]}" \
			"$(awk "BEGIN { print ${T[ins_armdb]} / ${T[ins_heap]} }")"
	done
done
rm -f "${DATA}" /tmp/armdb-ab-ins.sql
