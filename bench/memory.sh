#!/usr/bin/env bash
#
# bench/memory.sh - armdb's shared memory and restart times (issue 15).
#
#   bash bench/memory.sh [ROWS]
#
# Run it as root (or a user with sudo), with armdb installed into
# PostgreSQL 15 (bash scripts/demo.sh does that).  It starts a cluster of
# its own (scripts/lib.sh start_cluster) under ARMDB_BENCH_DIR (default
# /var/tmp) on port ARMDB_BENCH_PORT (default 54327), with armdb's
# default settings, and removes it when done.  ROWS (default 10000000) is
# the size of the large table.
#
#   per table   armdb.memory of 1000 empty armdb tables, each read once, and
#               of 1000 one-row tables, while written and once idle (past
#               armdb.write_buffer_idle_timeout), from armdb_memory_tables;
#               then what each gives back once its key directory is
#               (armdb.keydir_idle_timeout, set to 5 s for this)
#   per row     armdb.memory per row version of a table of (id int primary
#               key, v text of 20 bytes) at 1,000,000 rows and at ROWS rows
#   restart     ROWS rows, heap and armdb tables side by side: after a clean
#               restart and after kill -9 (pg_ctl -m immediate), the time of
#               the first query on each (SELECT by primary key), with
#               armdb.load_workers = 0 (the query loads the key directory)
#               and with the default loaders (the query waits for them, if
#               they are still at it), and the time from the server's start
#               until the background loaders have loaded the table; a clean
#               restart loads the key directory image the shutdown saved
#               (src/keydir/image.c), "files" is a clean restart with the
#               image removed (the files are read, as after a crash)
#
# Output: a markdown table on stdout and in bench/results/memory.md.
# Progress goes to stderr.
set -euo pipefail
ROWS=${1:-10000000}
PORT=${ARMDB_BENCH_PORT:-54327}
BASE=${ARMDB_BENCH_DIR:-/var/tmp}
[[ ${ROWS} =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROWS]" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS=${HERE}/results

# shellcheck source=../scripts/lib.sh
. "${HERE}/../scripts/lib.sh"

DIR=$(mktemp -d "${BASE}/armdb-memory.XXXXXX")
cleanup() {
	stop_cluster "${DIR}"
	as_root rm -rf "${DIR}"
}
trap cleanup EXIT
CONF=("shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'")
start_cluster "${DIR}" "${PORT}" "${CONF[@]}"

step() { log "$(printf '%5ds' "${SECONDS}") $*"; }
q() { cluster_psql "${PORT}" -d postgres -q -At "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# the milliseconds a query takes, connection included
time_query() {
	local t0 t1
	t0=$(now_ms)
	q -c "$1" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0))
}
pgctl() { as_postgres "${PGBIN}/pg_ctl" -D "${DIR}/data" -l "${DIR}/log/postgresql.log" -w -t 600 "$@" >/dev/null; }
set_conf() { q -c "ALTER SYSTEM SET $1" -c "SELECT pg_reload_conf()" >/dev/null; }

q -c "CREATE EXTENSION IF NOT EXISTS armdb"
LIMIT=$(q -c "SHOW armdb.memory")

step "1000 empty and 1000 one-row tables"
q -c "CREATE SCHEMA e; CREATE SCHEMA o" \
	-c "CREATE PROCEDURE mk() LANGUAGE plpgsql AS \$\$
BEGIN
	FOR i IN 1..1000 LOOP
		EXECUTE format('CREATE TABLE e.t%s (id int, v text) USING armdb', i);
		EXECUTE format('SELECT count(*) FROM e.t%s', i);
		EXECUTE format('CREATE TABLE o.t%s (id int, v text) USING armdb', i);
		EXECUTE format('INSERT INTO o.t%s VALUES (1, ''one row'')', i);
		IF i % 200 = 0 THEN COMMIT; END IF;
	END LOOP;
END \$\$" -c "CALL mk()"
per_schema() {
	q -c "SELECT avg(total_bytes)::bigint FROM armdb_memory_tables m
		JOIN pg_class c ON c.relfilenode = m.relfilenode
		WHERE m.database_name = current_database() AND c.relnamespace = '$1'::regnamespace"
}
EMPTY=$(per_schema e)
ONE_BUSY=$(per_schema o)
IDLE=$(q -c "SHOW armdb.write_buffer_idle_timeout")
step "waiting ${IDLE} and a little for idle buffers to go"
for _ in $(seq 1 120); do
	left=$(q -c "SELECT coalesce(sum(buffer_bytes), 0) FROM armdb_memory_tables m
		JOIN pg_class c ON c.relfilenode = m.relfilenode
		WHERE c.relnamespace = 'o'::regnamespace")
	[[ ${left} == 0 ]] && break
	sleep 1
done
ONE_IDLE=$(per_schema o)
# given back after armdb.keydir_idle_timeout (5 min by default; 5 s here)
USED_IDLE=$(q -c "SELECT used_bytes FROM armdb_memory")
set_conf "armdb.keydir_idle_timeout = '5s'"
step "waiting for the idle small tables' key directories to be given back"
for _ in $(seq 1 120); do
	left=$(q -c "SELECT count(*) FROM armdb_memory_tables m
		JOIN pg_class c ON c.relfilenode = m.relfilenode
		WHERE c.relnamespace IN ('e'::regnamespace, 'o'::regnamespace)")
	[[ ${left} == 0 ]] && break
	sleep 1
done
GIVEN_BACK=$(( ($(q -c "SELECT used_bytes FROM armdb_memory") - USED_IDLE) / -2000 ))
KEPT=${left}
q -c "ALTER SYSTEM RESET armdb.keydir_idle_timeout" -c "SELECT pg_reload_conf()" >/dev/null
q -c "DROP SCHEMA e CASCADE; DROP SCHEMA o CASCADE; DROP PROCEDURE mk()"

per_row() {
	q -c "SELECT round(total_bytes::numeric / versions, 2) FROM armdb_memory_tables
		WHERE database_name = current_database() AND relation = '$1'::regclass"
}
step "1,000,000 rows"
q -c "CREATE TABLE m1 (id int PRIMARY KEY, v text) USING armdb" \
	-c "INSERT INTO m1 SELECT g, 'twenty bytes of text' FROM generate_series(1, 1000000) g"
ROW_1M=$(per_row m1)
q -c "DROP TABLE m1"

step "${ROWS} rows, armdb and heap"
q -c "CREATE TABLE big (id int PRIMARY KEY, v text) USING armdb" \
	-c "INSERT INTO big SELECT g, 'twenty bytes of text' FROM generate_series(1, ${ROWS}) g" \
	-c "CREATE TABLE big_heap (id int PRIMARY KEY, v text) USING heap" \
	-c "INSERT INTO big_heap SELECT g, 'twenty bytes of text' FROM generate_series(1, ${ROWS}) g" \
	-c "CHECKPOINT"
ROW_N=$(per_row big)
KEYDIR_MB=$(q -c "SELECT total_bytes / 1048576 FROM armdb_memory_tables
	WHERE database_name = current_database() AND relation = 'big'::regclass")

# restart MODE (clean|crash) LOADERS: first-query times of heap and armdb,
# and (with loaders) the time until the loaders had the table loaded
declare -A T
restart() {
	local mode=$1 loaders=$2 t0 t1
	set_conf "armdb.load_workers = ${loaders}"
	if [[ ${mode} == crash ]]; then
		q -c "INSERT INTO big VALUES (${ROWS} + 1, 'one more') ON CONFLICT DO NOTHING" \
			-c "DELETE FROM big WHERE id = ${ROWS} + 1"
		pgctl -m immediate stop
	else
		t0=$(now_ms)
		pgctl -m fast stop
		t1=$(now_ms)
		T[stop/${mode}/${loaders}]=$((t1 - t0))
		# the launcher's own figure for the images, from its log line
		T[save/${mode}/${loaders}]=$(as_postgres grep -o 'armdb: saved the key directories of [0-9]* tables ([0-9]* MB) in [0-9]* ms' \
			"${DIR}/log/postgresql.log" | tail -1 | sed -E 's/.*tables \(([0-9]+) MB\) in ([0-9]+) ms.*/\2 ms, \1 MB/' || true)
		# "files": as before images existed, the files are read
		if [[ ${mode} == files ]]; then
			as_root find "${DIR}/data/armdb" -name keydir.image -delete
		fi
	fi
	t0=$(now_ms)
	pgctl start
	t1=$(now_ms)
	T[start/${mode}/${loaders}]=$((t1 - t0))
	T[heap/${mode}/${loaders}]=$(time_query "SELECT v FROM big_heap WHERE id = 4242")
	T[armdb/${mode}/${loaders}]=$(time_query "SELECT v FROM big WHERE id = 4242")
	if [[ ${loaders} != 0 ]]; then
		# the loader's own figure, from its log line
		T[loader/${mode}/${loaders}]=$(as_postgres grep -o 'armdb loader 1 of [0-9]*: loaded the key directories of [0-9]* tables of database [0-9]* in [0-9]* ms: [1-9][0-9]* row' \
			"${DIR}/log/postgresql.log" | tail -1 | sed -E 's/.* in ([0-9]+) ms.*/\1/')
	fi
	step "restart ${mode}, load_workers ${loaders}: start ${T[start/${mode}/${loaders}]} ms, heap ${T[heap/${mode}/${loaders}]} ms, armdb ${T[armdb/${mode}/${loaders}]} ms"
}
for mode in clean files crash; do
	restart "${mode}" 0
	restart "${mode}" 2
done

{
	echo "# armdb shared memory and restart times"
	echo
	echo "\`bash bench/memory.sh ${ROWS}\` on $(date -u +%Y-%m-%d), $(nproc) cores, armdb.memory = ${LIMIT} (its default here)."
	echo
	echo "| measure | value |"
	echo "| --- | --- |"
	echo "| armdb.memory per empty table (read once) | ${EMPTY} bytes |"
	echo "| ... per one-row table, being written | ${ONE_BUSY} bytes |"
	echo "| ... per one-row table, idle (write buffer given back) | ${ONE_IDLE} bytes |"
	echo "| ... per empty or one-row table, after armdb.keydir_idle_timeout | given back: ${GIVEN_BACK} bytes on average; ${KEPT} of 2000 kept |"
	echo "| ... per row version, 1,000,000 rows | ${ROW_1M} bytes |"
	echo "| ... per row version, ${ROWS} rows | ${ROW_N} bytes (${KEYDIR_MB} MB) |"
	echo "| clean shutdown: pg_ctl stop; saving the key directory image | ${T[stop/clean/0]} ms; ${T[save/clean/0]} |"
	for mode in clean files crash; do
		echo "| ${mode} restart: pg_ctl start | ${T[start/${mode}/0]} ms, ${T[start/${mode}/2]} ms |"
		echo "| ${mode} restart, no loaders: first query, heap / armdb | ${T[heap/${mode}/0]} ms / ${T[armdb/${mode}/0]} ms |"
		echo "| ${mode} restart, 2 loaders: first query, heap / armdb | ${T[heap/${mode}/2]} ms / ${T[armdb/${mode}/2]} ms |"
		echo "| ${mode} restart, 2 loaders: loaded in the background in | ${T[loader/${mode}/2]:-?} ms |"
	done
} | tee "${RESULTS}/memory.md"
