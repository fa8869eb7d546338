#!/usr/bin/env bash
#
# bench/encryption.sh - encryption at rest on against off, side by side
# (issue 17).
#
#   bash bench/encryption.sh [ROWS [ROUNDS]]
#
# Run it as root (or a user with sudo), with armdb installed into
# PostgreSQL 15 (bash scripts/demo.sh does that).  It starts a cluster of
# its own with armdb.encryption_key_command set, under ARMDB_BENCH_DIR
# (default /var/tmp) on port ARMDB_BENCH_PORT (default 54326), and removes
# it when done.  Two armdb tables of the same shape, in two databases: one
# created with armdb.encrypt_new_tables off (plain), one encrypted; each
# round runs each workload on both, one right after the other (plain first
# in odd rounds), so that a pair shares the machine's state (on a virtual
# machine, throughput drifts by tens of percent within minutes).  The table
# gives the medians of the rounds, and the cost of encryption: the median
# of each round's pair (encrypted / plain - 1 for times, plain / encrypted
# - 1 for rates: above 0 means slower), each round's listed beside it.
# ROWS (default 1000000) rows, ROUNDS (default 3), BENCH_SECONDS (default
# 10) per throughput run.
#
#   COPY        ROWS rows (id bigint PRIMARY KEY, k int, n int, v text of
#               60 bytes) from a server-side file, rows/s
#   SELECT hot  point SELECT by primary key, 2 clients, TPS, the data files
#               in the OS page cache first (armdb.cached_reads reads there)
#   SELECT cold point SELECT by primary key, 1 client, 2000 random keys,
#               after a restart and with the OS page cache of every file of
#               the cluster dropped (dd iflag=nocache); TPS
#   UPDATE      of a non-indexed column by primary key, 2 clients, TPS
#   seq scan    SELECT sum(length(v)) (every row decrypted), ms: the median
#               of five scans, each a new connection, after one that fills
#               armdb's decrypted cache (armdb.decrypted_cache_size = 512MB
#               here, as shared_buffers = 1GB)
#   seq scan after a restart
#               the same, the first scan after a restart (the table's key
#               directory loaded first by a point SELECT): every row read
#               from the files and decrypted, the cache filled, ms
#
# Output: a markdown table on stdout and in bench/results/encryption.md,
# with the CPU's model and its AES-related flags.  Progress goes to stderr.
set -euo pipefail
ROWS=${1:-1000000}
ROUNDS=${2:-3}
SECS=${BENCH_SECONDS:-10}
PORT=${ARMDB_BENCH_PORT:-54326}
BASE=${ARMDB_BENCH_DIR:-/var/tmp}
[[ ${ROWS} =~ ^[1-9][0-9]*$ && ${ROUNDS} =~ ^[1-9][0-9]*$ ]] ||
	{ echo "usage: $0 [ROWS [ROUNDS]]" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS=${HERE}/results

# shellcheck source=../scripts/lib.sh
. "${HERE}/../scripts/lib.sh"

DIR=$(mktemp -d "${BASE}/armdb-encryption.XXXXXX")
cleanup() {
	stop_cluster "${DIR}"
	as_root rm -rf "${DIR}"
}
trap cleanup EXIT
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
CONF=("armdb.encryption_key_command = 'echo ${KEY}'"
	"armdb.memory = '$((512 + ROWS * 100 / 1000000))MB'"
	"shared_buffers = '1GB'" "armdb.decrypted_cache_size = '512MB'"
	"max_wal_size = '8GB'" "checkpoint_timeout = '30min'")
start_cluster "${DIR}" "${PORT}" "${CONF[@]}"

step() { log "$(printf '%5ds' "${SECONDS}") $*"; }
q() { local db=$1; shift; cluster_psql "${PORT}" -d "${db}" -q -At "$@"; }
pgb() { as_postgres "${PGBIN}/pgbench" -h 127.0.0.1 -p "${PORT}" -U postgres -n "$@" 2>&1; }
tps() { awk '/^tps = / { print $3 }'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
drop_caches() {
	as_root find "${DIR}/data" -type f -exec dd if={} iflag=nocache count=0 status=none \; 2>/dev/null || true
}
restart() {
	as_postgres "${PGBIN}/pg_ctl" -D "${DIR}/data" -l "${DIR}/log/postgresql.log" \
		-w -t 300 -m fast restart >/dev/null
}

WORK=${DIR}/work
as_postgres mkdir -p "${WORK}"
step "generating ${ROWS} rows"
q postgres -c "COPY (SELECT g, g % 1000, 0, md5(g::text) || left(md5((g + 1)::text), 28)
	FROM generate_series(1, ${ROWS}) g) TO '${WORK}/rows.copy'"
for kind in plain enc; do
	q postgres -c "CREATE DATABASE b_${kind}"
	q "b_${kind}" -c "CREATE EXTENSION armdb"
done
printf '\\set id random(1, %d)\nSELECT v FROM t WHERE id = :id;\n' "${ROWS}" |
	as_postgres tee "${WORK}/select.sql" >/dev/null
printf '\\set id random(1, %d)\nUPDATE t SET n = n + 1 WHERE id = :id;\n' "${ROWS}" |
	as_postgres tee "${WORK}/update.sql" >/dev/null

declare -A VALUES
record() { VALUES["$1|$2|$3"]=$4; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# one workload of a round on each table, one right after the other
make_table() {
	local kind=$1 round=$2 db=b_$1 t0 t1 off=""
	[[ ${kind} == plain ]] && off="SET armdb.encrypt_new_tables = off;"
	q "${db}" -c "DROP TABLE IF EXISTS t"
	q "${db}" -c "${off} CREATE TABLE t (id bigint PRIMARY KEY, k int, n int, v text) USING armdb"
	step "round ${round}: ${kind}: COPY"
	t0=$(now_ms)
	q "${db}" -c "COPY t FROM '${WORK}/rows.copy'"
	t1=$(now_ms)
	record "COPY, rows/s" "${kind}" "${round}" "$(awk "BEGIN { printf \"%.0f\", ${ROWS} * 1000 / ($t1 - $t0) }")"
}

warm_table() {
	local kind=$1 db=b_$1 dboid node
	q "${db}" -c "VACUUM ANALYZE t"
	[[ $(q "${db}" -c "SELECT encrypted FROM armdb_relation_encryption('t')") == \
		$([[ ${kind} == enc ]] && echo t || echo f) ]] || die "table t of ${db} is not ${kind}"
	dboid=$(q "${db}" -c "SELECT oid FROM pg_database WHERE datname = current_database()")
	node=$(q "${db}" -c "SELECT pg_relation_filenode('t')")
	as_root find "${DIR}/data/armdb/${dboid}/${node}" -name '*.data' -exec cat {} + >/dev/null
	q "${db}" -c "SELECT count(*) FROM t WHERE id < 1000" >/dev/null
}

select_hot() {
	local kind=$1 round=$2 db=b_$1
	step "round ${round}: ${kind}: point SELECT hot"
	record "point SELECT hot, TPS" "${kind}" "${round}" \
		"$(pgb -f "${WORK}/select.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
}

seq_scan() {
	local kind=$1 round=$2 db=b_$1 t0 t1 scans=""
	step "round ${round}: ${kind}: sequential scan"
	q "${db}" -c "SELECT sum(length(v)) FROM t" >/dev/null
	for _ in 1 2 3 4 5; do
		t0=$(now_ms)
		q "${db}" -c "SELECT sum(length(v)) FROM t" >/dev/null
		t1=$(now_ms)
		scans+="$((t1 - t0)) "
	done
	record "seq scan, ms" "${kind}" "${round}" "$(echo "${scans}" | median)"
}

update() {
	local kind=$1 round=$2 db=b_$1
	step "round ${round}: ${kind}: UPDATE"
	record "UPDATE, TPS" "${kind}" "${round}" \
		"$(pgb -f "${WORK}/update.sql" -c 2 -j 2 -T "${SECS}" "${db}" | tps)"
}

scan_after_restart() {
	local kind=$1 round=$2 db=b_$1 t0 t1
	step "round ${round}: ${kind}: sequential scan after a restart"
	restart
	q "${db}" -c "SELECT v FROM t WHERE id = 1" >/dev/null
	t0=$(now_ms)
	q "${db}" -c "SELECT sum(length(v)) FROM t" >/dev/null
	t1=$(now_ms)
	record "seq scan after a restart, ms" "${kind}" "${round}" "$((t1 - t0))"
}

select_cold() {
	local kind=$1 round=$2 db=b_$1
	step "round ${round}: ${kind}: point SELECT cold"
	restart
	q "${db}" -c "SELECT v FROM t WHERE id = 1" >/dev/null
	drop_caches
	record "point SELECT cold, TPS" "${kind}" "${round}" \
		"$(pgb -f "${WORK}/select.sql" -t 2000 "${db}" | tps)"
}

for round in $(seq "${ROUNDS}"); do
	if ((round % 2)); then order=(plain enc); else order=(enc plain); fi
	for workload in make_table warm_table select_hot seq_scan update \
		scan_after_restart select_cold; do
		for kind in "${order[@]}"; do "${workload}" "${kind}" "${round}"; done
	done
done

# every round's figures, for the variance between runs
for w in "${!VALUES[@]}"; do echo "${w}: ${VALUES[${w}]}"; done | sort >&2
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -Ex 'aes|vaes|pclmulqdq|vpclmulqdq|avx|avx2|avx512f|sha_ni' | tr '\n' ' ')
{
	echo "# Encryption at rest: on against off"
	echo
	echo "\`bash bench/encryption.sh ${ROWS} ${ROUNDS}\` ($(date -u +%Y-%m-%d), BENCH_SECONDS=${SECS});"
	echo "${ROWS} rows (id bigint primary key, k int, n int, v text of 60 bytes);"
	echo "median of ${ROUNDS} rounds. CPU: ${cpu}; flags: ${flags:-none of aes, pclmulqdq}."
	echo
	echo "| workload | plain | encrypted | cost of encryption | each round's |"
	echo "| --- | ---: | ---: | ---: | --- |"
	for w in "COPY, rows/s" "point SELECT hot, TPS" "point SELECT cold, TPS" "UPDATE, TPS" "seq scan, ms" "seq scan after a restart, ms"; do
		p=$(for r in $(seq "${ROUNDS}"); do echo -n "${VALUES["${w}|plain|${r}"]} "; done | median)
		e=$(for r in $(seq "${ROUNDS}"); do echo -n "${VALUES["${w}|enc|${r}"]} "; done | median)
		costs=""
		for r in $(seq "${ROUNDS}"); do
			pr=${VALUES["${w}|plain|${r}"]}
			er=${VALUES["${w}|enc|${r}"]}
			if [[ ${w} == *", ms" ]]; then
				costs+="$(awk "BEGIN { printf \"%.1f\", (${er} / ${pr} - 1) * 100 }") "
			else
				costs+="$(awk "BEGIN { printf \"%.1f\", (${pr} / ${er} - 1) * 100 }") "
			fi
		done
		c=$(echo "${costs}" | median)
		echo "| ${w} | ${p} | ${e} | $(awk "BEGIN { printf \"%+.1f%%\", ${c} }") | ${costs% } |"
	done
} | tee "${RESULTS}/encryption.md"
