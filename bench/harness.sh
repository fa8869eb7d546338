#!/usr/bin/env bash
#
# bench/harness.sh - armdb against heap, workload by workload, on a
# throw-away cluster: the figures of issue 14's table.
#
#   bash bench/harness.sh [ROWS [ROUNDS]]
#
# Run it as root (or a user with sudo), with armdb installed into
# PostgreSQL 15 (bash scripts/demo.sh does that).  It starts a cluster of
# its own (scripts/lib.sh start_cluster) in a new directory under
# ARMDB_BENCH_DIR (default /var/tmp) on port ARMDB_BENCH_PORT (default
# 54328) and removes it when done, with huge pages reserved for its shared
# memory unless BENCH_HUGE_PAGES=0 (see below); PGBIN (default
# /usr/lib/postgresql/15/bin) selects another installation.  ROWS (default
# 5000000) is the size of the main table, ROUNDS (default 3) the number of
# rounds; BENCH_SECONDS (default 10) the length of each throughput run,
# BENCH_SCALE (default 20) pgbench's scale for TPC-B.
#
# Every round runs each workload on heap and on armdb, one after the other
# (heap first in odd rounds, armdb first in even ones), so that both see the
# machine's same moods; the table gives the median over the rounds and the
# ratio armdb/heap of throughput (for times: heap's time / armdb's), so that
# a ratio above 1 means armdb is faster.
#
#   COPY        ROWS rows (id bigint PRIMARY KEY, k int, n int, ts int,
#               v text of 60 bytes) from a server-side file, rows/s
#   INSERT      single-row INSERT commits, 1 client and 4 clients, TPS
#   SELECT hot  point SELECT by primary key, 2 clients, TPS, with the table
#               and its index in memory first (warm() says how)
#   SELECT cold point SELECT by primary key, 1 client, 2000 random keys,
#               after a restart (empty shared buffers) and with the OS page
#               cache of every file of the cluster dropped (dd
#               iflag=nocache, POSIX_FADV_DONTNEED); the first query, which
#               loads armdb's key directory and the index's root, is run
#               before the caches are dropped.  TPS
#   UPDATE      of a non-indexed column (n) and of an indexed one (k,
#               btree), by primary key, 2 clients, TPS
#   churn       DELETE of a random row and INSERT of it again, 2 clients, TPS
#   seq scan    SELECT count(*) (index scans disabled), and a filter on a
#               non-indexed column, ms; count(*) by an index-only scan, ms
#   BRIN        count(*) of 10000 consecutive ts values (BRIN index), ms
#   GIN         jsonb containment (@>) and full-text search (@@) on a
#               200000-row table with GIN indexes, ms
#   TPC-B       pgbench (BENCH_SCALE), 2 clients, TPS
#
# Bytes on disk (heap: pg_table_size, armdb: armdb_relation_size) and armdb's
# key directory bytes per row (armdb_keydir_size) are taken after COPY and
# after each write workload.  Then fio measures the device under the
# cluster's directory (4 kB random reads at queue depth 1 and 32, 1 MB
# sequential writes, O_DIRECT).
#
# Output: a markdown table on stdout and in bench/results/harness.md, the
# ratios as a chart in bench/results/harness.png (gnuplot).  fio and
# gnuplot-nox are installed from Debian when missing.  Progress goes to
# stderr.
set -euo pipefail
ROWS=${1:-5000000}
ROUNDS=${2:-3}
SECS=${BENCH_SECONDS:-10}
SCALE=${BENCH_SCALE:-20}
PORT=${ARMDB_BENCH_PORT:-54328}
BASE=${ARMDB_BENCH_DIR:-/var/tmp}
[[ ${ROWS} =~ ^[1-9][0-9]*$ && ${ROUNDS} =~ ^[1-9][0-9]*$ ]] ||
	{ echo "usage: $0 [ROWS [ROUNDS]]" >&2; exit 2; }
PGBIN_WANTED=${PGBIN:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS=${HERE}/results

# shellcheck source=../scripts/lib.sh
. "${HERE}/../scripts/lib.sh"
[[ -z ${PGBIN_WANTED} ]] || PGBIN=${PGBIN_WANTED}

need=()
command -v fio >/dev/null 2>&1 || need+=(fio)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"${need[@]}" >/dev/null
fi

DIR=$(mktemp -d "${BASE}/armdb-harness.XXXXXX")
HUGE_BEFORE=""
cleanup() {
	stop_cluster "${DIR}"
	as_root rm -rf "${DIR}"
	[[ -z ${HUGE_BEFORE} ]] || echo "${HUGE_BEFORE}" | as_root tee /proc/sys/vm/nr_hugepages >/dev/null
}
trap cleanup EXIT
# 32 bytes of key directory per row version; updates add versions until
# VACUUM frees them
CONF=("armdb.memory = '$((512 + ROWS * 160 / 1000000))MB'"
	"armdb.memory_initial = '$((512 + ROWS * 160 / 1000000))MB'"
	"shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
	"max_prepared_transactions = 0")
start_cluster "${DIR}" "${PORT}" "${CONF[@]}"

# Huge pages for the cluster's shared memory, as PostgreSQL's manual
# advises for large shared memory, unless BENCH_HUGE_PAGES=0: reserved for
# the run (shared_memory_size_in_huge_pages), given back at the end.  Both
# access methods run on the same cluster, so both get them.  They matter
# most to armdb, whose key directory is in shared memory: every new
# process (a connection, a parallel worker) that reads it maps its pages
# first, and with 4 kB pages on some virtual machines that costs more than
# the scan itself (README, "Huge pages").
HUGE=${BENCH_HUGE_PAGES:-1}
if [[ ${HUGE} != 0 ]]; then
	stop_cluster "${DIR}"
	need_pages=$(as_postgres "${PGBIN}/postgres" -D "${DIR}/data" -C shared_memory_size_in_huge_pages)
	HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
	echo $((HUGE_BEFORE + need_pages + 16)) | as_root tee /proc/sys/vm/nr_hugepages >/dev/null
	start_cluster "${DIR}" "${PORT}" "${CONF[@]}" "huge_pages = on"
fi

step() { log "$(printf '%5ds' "${SECONDS}") $*"; }
q() { local db=$1; shift; cluster_psql "${PORT}" -d "${db}" -q -At "$@"; }
pgb() { as_postgres "${PGBIN}/pgbench" -h 127.0.0.1 -p "${PORT}" -U postgres -n "$@" 2>&1; }
tps() { awk '/^tps = / { print $3 }'; }
latency() { awk '/^latency average = / { print $4 }'; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# results: R[measure/am/round] = value; MEASURES in table order
declare -A R UNIT KIND
MEASURES=()
# record MEASURE UNIT KIND(tp: higher is better, time: lower is better,
# size) AM ROUND VALUE
record() {
	local m=$1
	[[ -n ${UNIT[$m]:-} ]] || { MEASURES+=("$m"); UNIT[$m]=$2; KIND[$m]=$3; }
	R[$m/$4/$5]=$6
}

WORK=${DIR}/work
as_postgres mkdir -p "${WORK}"
DATA=${WORK}/rows.copy
cluster_psql "${PORT}" -q -c "CREATE EXTENSION armdb"
step "writing ${ROWS} rows to ${DATA}"
q postgres -c "COPY (SELECT g, g % 1000, 0, g, rpad(md5(g::text), 60, 'x')
	FROM generate_series(1, ${ROWS}) g) TO '${DATA}'"

for am in heap armdb; do
	cluster_psql "${PORT}" -q -c "CREATE DATABASE b_${am}"
	q "b_${am}" -c "CREATE EXTENSION armdb" \
		-c "ALTER DATABASE b_${am} SET default_table_access_method = ${am}"
	step "${am}: pgbench -i -s ${SCALE}"
	pgb -i -q -s "${SCALE}" "b_${am}" >/dev/null
	step "${am}: 200000 documents with GIN indexes"
	q "b_${am}" -c "CREATE TABLE docs (id int PRIMARY KEY, doc jsonb, body text)" \
		-c "INSERT INTO docs SELECT g, jsonb_build_object('k', g % 1000, 'g', g % 7,
			'pad', md5(g::text)), 'word' || (g % 500) || ' other' || (g % 13) || ' ' || md5(g::text)
			FROM generate_series(1, 200000) g" \
		-c "CREATE INDEX ON docs USING gin (doc)" \
		-c "CREATE INDEX ON docs USING gin (to_tsvector('simple', body))" \
		-c "VACUUM ANALYZE docs"
done

# pgbench scripts
cat >"${WORK}/select.sql" <<EOF
\set id random(1, ${ROWS})
SELECT v FROM t WHERE id = :id;
EOF
cat >"${WORK}/update_n.sql" <<EOF
\set id random(1, ${ROWS})
UPDATE t SET n = n + 1 WHERE id = :id;
EOF
cat >"${WORK}/update_k.sql" <<EOF
\set id random(1, ${ROWS})
UPDATE t SET k = k + 1 WHERE id = :id;
EOF
cat >"${WORK}/churn.sql" <<EOF
\set id random(1, ${ROWS})
BEGIN;
DELETE FROM t WHERE id = :id;
INSERT INTO t VALUES (:id, :id % 1000, 0, :id, rpad(md5(:id::text), 60, 'x'));
END;
EOF
cat >"${WORK}/insert.sql" <<EOF
INSERT INTO ins VALUES (1, 'a commit of one row');
EOF
# VACUUM makes count(*) an index-only scan: the seq scan is forced
cat >"${WORK}/count.sql" <<EOF
SET enable_indexonlyscan = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM t;
EOF
cat >"${WORK}/ios.sql" <<EOF
SELECT count(*) FROM t;
EOF
cat >"${WORK}/filter.sql" <<EOF
SELECT count(*) FROM t WHERE n + k = 7;
EOF
cat >"${WORK}/brin.sql" <<EOF
\set lo random(1, ${ROWS} - 10000)
SELECT count(*) FROM t WHERE ts BETWEEN :lo AND :lo + 9999;
EOF
cat >"${WORK}/gin.sql" <<EOF
\set k random(0, 999)
SELECT count(*) FROM docs WHERE doc @> jsonb_build_object('k', :k);
EOF
cat >"${WORK}/fts.sql" <<EOF
\set w random(0, 499)
\set o random(0, 12)
SELECT count(*) FROM docs
WHERE to_tsvector('simple', body) @@ to_tsquery('simple', 'word' || :w || ' & other' || :o);
EOF
chmod 644 "${WORK}"/*.sql

sizes() {
	local am=$1 round=$2 when=$3 bytes kd
	if [[ ${am} == heap ]]; then
		bytes=$(q b_heap -c "SELECT pg_table_size('t')")
	else
		bytes=$(q b_armdb -c "SELECT armdb_relation_size('t')")
		kd=$(q b_armdb -c "SELECT round(armdb_keydir_size('t')::numeric / ${ROWS}, 1)")
		record "key directory after ${when}, bytes/row" "B" size armdb "${round}" "${kd}"
	fi
	record "on disk after ${when}, MB" "MB" size "${am}" "${round}" "$(calc "${bytes} / 1000000")"
}

# drop the OS page cache of every file of the cluster
drop_caches() {
	as_root find "${DIR}/data" -type f -exec dd if={} iflag=nocache count=0 status=none \; 2>/dev/null || true
}

restart() {
	as_postgres "${PGBIN}/pg_ctl" -D "${DIR}/data" -l "${DIR}/log/postgresql.log" \
		-w -t 300 -m fast restart >/dev/null
}

# The working set in memory before the hot point SELECTs: the table and its
# primary key in shared buffers for heap (pg_prewarm); for armdb the index
# in shared buffers and the table's data files in the OS page cache, where
# armdb.cached_reads reads rows from (its COPY wrote them with O_DIRECT,
# past the cache).
warm() {
	local am=$1 db=b_$1 dboid node
	q "${db}" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" -c "SELECT pg_prewarm('t_pkey')" >/dev/null
	if [[ ${am} == heap ]]; then
		q "${db}" -c "SELECT pg_prewarm('t')" >/dev/null
	else
		dboid=$(q "${db}" -c "SELECT oid FROM pg_database WHERE datname = current_database()")
		node=$(q "${db}" -c "SELECT pg_relation_filenode('t')")
		as_root find "${DIR}/data/armdb/${dboid}/${node}" -name '*.data' -exec cat {} + >/dev/null
	fi
}

run_am() {
	local am=$1 round=$2 db=b_${am} s e
	step "round ${round}, ${am}: COPY ${ROWS} rows"
	q "${db}" -c "DROP TABLE IF EXISTS t" -c "DROP TABLE IF EXISTS ins" \
		-c "CREATE TABLE t (id bigint PRIMARY KEY, k int, n int, ts int, v text)" \
		-c "CREATE TABLE ins (id int, v text)" -c "CHECKPOINT"
	s=$(date +%s.%N)
	q "${db}" -c "COPY t FROM '${DATA}'"
	e=$(date +%s.%N)
	record "COPY with a primary key, rows/s" "rows/s" tp "${am}" "${round}" "$(calc "${ROWS} / (${e} - ${s})")"
	q "${db}" -c "CREATE INDEX t_k ON t (k)" -c "CREATE INDEX t_ts ON t USING brin (ts)" \
		-c "VACUUM ANALYZE t" -c "CHECKPOINT"
	sizes "${am}" "${round}" "COPY"

	step "round ${round}, ${am}: scans"
	pgb -f "${WORK}/count.sql" -t 5 "${db}" >/dev/null	# warm
	record "seq scan count(*), ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/count.sql" -t 5 "${db}" | latency)"
	record "seq scan with a filter, ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/filter.sql" -t 5 "${db}" | latency)"
	record "count(*) by index-only scan, ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/ios.sql" -t 5 "${db}" | latency)"
	record "BRIN range (10000 rows), ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/brin.sql" -t 200 "${db}" | latency)"
	record "GIN jsonb @>, ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/gin.sql" -t 500 "${db}" | latency)"
	record "GIN full-text @@, ms" "ms" time "${am}" "${round}" \
		"$(pgb -f "${WORK}/fts.sql" -t 500 "${db}" | latency)"

	step "round ${round}, ${am}: point SELECT, hot"
	warm "${am}"
	pgb -f "${WORK}/select.sql" -c 2 -j 2 -T 2 "${db}" >/dev/null
	record "point SELECT hot, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/select.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"

	step "round ${round}, ${am}: single-row INSERT"
	record "1-row INSERT, 1 client, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/insert.sql" -c 1 -T "${SECS}" "${db}" | tps)"
	record "1-row INSERT, 4 clients, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/insert.sql" -c 4 -j 2 -T "${SECS}" "${db}" | tps)"

	step "round ${round}, ${am}: UPDATE, churn"
	record "UPDATE non-indexed column, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/update_n.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
	sizes "${am}" "${round}" "UPDATE non-indexed"
	record "UPDATE indexed column, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/update_k.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
	sizes "${am}" "${round}" "UPDATE indexed"
	record "DELETE+INSERT churn, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/churn.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
	sizes "${am}" "${round}" "churn"

	step "round ${round}, ${am}: pgbench TPC-B"
	record "pgbench TPC-B scale ${SCALE}, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
}

run_cold() {
	local am=$1 round=$2 db=b_${am}
	step "round ${round}, ${am}: point SELECT, cold"
	restart
	pgb -f "${WORK}/select.sql" -t 1 "${db}" >/dev/null
	drop_caches
	record "point SELECT cold, TPS" "TPS" tp "${am}" "${round}" \
		"$(pgb -f "${WORK}/select.sql" -t 2000 "${db}" | tps)"
}

for round in $(seq "${ROUNDS}"); do
	if ((round % 2)); then order=(heap armdb); else order=(armdb heap); fi
	for am in "${order[@]}"; do run_am "${am}" "${round}"; done
	for am in "${order[@]}"; do run_cold "${am}" "${round}"; done
done

step "fio on ${DIR}"
fio_run() {
	as_root fio --name=h --directory="${WORK}" --size=1G --direct=1 --ioengine=libaio \
		--time_based --runtime=10 --output-format=terse --terse-version=3 "$@" 2>/dev/null
}
fio_qd1=$(fio_run --rw=randread --bs=4k --iodepth=1 | awk -F';' '{ print $8 }')
fio_qd32=$(fio_run --rw=randread --bs=4k --iodepth=32 | awk -F';' '{ print $8 }')
fio_seqw=$(fio_run --rw=write --bs=1M --iodepth=4 | awk -F';' '{ printf "%.0f", $48 / 1000 }')

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
values() {
	local m=$1 am=$2 r
	for r in $(seq "${ROUNDS}"); do
		if [[ -n ${R[$m/$am/$r]:-} ]]; then echo "${R[$m/$am/$r]}"; fi
	done
	return 0
}
fmt() { awk "BEGIN { v = $1; if (v >= 100) printf \"%.0f\", v; else if (v >= 10) printf \"%.1f\", v; else printf \"%.2f\", v }"; }

mkdir -p "${RESULTS}"
md=${RESULTS}/harness.md
dat=${WORK}/ratios.dat
: >"${dat}"
{
	if [[ ${HUGE} != 0 ]]; then pages="huge pages"; else pages="4 kB pages (BENCH_HUGE_PAGES=0)"; fi
	echo "armdb against heap, ${ROWS} rows, median of ${ROUNDS} rounds, ${SECS} s runs, ${pages}"
	echo "(\`bash bench/harness.sh ${ROWS} ${ROUNDS}\`, $(date -u +%Y-%m-%d), $(nproc) cores)."
	echo "Ratio: armdb/heap throughput (for times and sizes, heap/armdb): above 1, armdb is better."
	echo
	echo "| measure | heap | armdb | ratio |"
	echo "|---|---|---|---|"
	for m in "${MEASURES[@]}"; do
		h=$(values "$m" heap | median)
		a=$(values "$m" armdb | median)
		ratio=""
		if [[ -n $h && -n $a ]] && awk "BEGIN { exit !($h > 0 && $a > 0) }"; then
			if [[ ${KIND[$m]} == tp ]]; then ratio=$(calc "$a / $h"); else ratio=$(calc "$h / $a"); fi
			printf '"%s" %s\n' "${m%,*}" "${ratio}" >>"${dat}"
			ratio=$(printf '%.2f' "${ratio}")
		fi
		echo "| $m | ${h:+$(fmt "$h")} | ${a:+$(fmt "$a")} | ${ratio} |"
	done
	echo
	echo "Device under the cluster (fio, O_DIRECT, 10 s each): 4 kB random read"
	echo "${fio_qd1} IOPS at queue depth 1, ${fio_qd32} IOPS at queue depth 32;"
	echo "1 MB sequential write ${fio_seqw} MB/s."
} | tee "${md}"

as_root gnuplot <<EOF
set terminal pngcairo size 1200,700 noenhanced font ",10"
set rmargin 12
set bmargin 14
set output "${RESULTS}/harness.png"
set title "armdb / heap (${ROWS} rows; above 1: armdb better)"
set style fill solid 0.8
set boxwidth 0.7
set yrange [0:*]
set grid ytics
set xtics rotate by -40 left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "red"
unset key
plot "${dat}" using 0:2:xtic(1) with boxes lc rgb "#4477aa"
EOF
step "wrote ${md} and ${RESULTS}/harness.png"
