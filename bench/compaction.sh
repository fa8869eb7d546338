#!/usr/bin/env bash
#
# bench/compaction.sh - what compaction costs: merge throughput, and the
# foreground cost of the compaction worker under pgbench.
#
#   bash bench/compaction.sh [SCALE]
#
# Run it as root (or a user with sudo), with armdb installed into
# PostgreSQL 15 (bash scripts/demo.sh does that).  It starts a throw-away
# cluster of its own (scripts/lib.sh start_cluster) in a new directory under
# ARMDB_BENCH_DIR (default /var/tmp) on port ARMDB_BENCH_PORT (default
# 54327), and removes it when done.  fio measures the device under that
# directory; it is installed from Debian when missing.  SCALE (default 10)
# is the pgbench scale; the merge table has 30000 * SCALE rows.
# BENCH_SECONDS (default 30) is the length of each pgbench run; PGBIN
# (default /usr/lib/postgresql/15/bin) another installation's programs.
#
# 1. Merge throughput.  Two tables of 30000 * SCALE rows of ~190 bytes,
#    each row updated twice, VACUUM: two thirds of the entries are dead, in
#    16 MB files.  With the worker off, armdb_compact() is called on each
#    until it has nothing left to merge: on the first with
#    armdb.compaction_cost_delay = 0 (unthrottled), on the second with the
#    default cost settings.  MB/s = (bytes read from the inputs + bytes
#    written) / the time armdb_compact() reports, both from
#    armdb_compaction_stats(); compared with fio's sequential write (and
#    read) of 1 MB blocks, O_DIRECT, queue depth 1.
# 2. Foreground cost.  pgbench TPC-B (2 clients, BENCH_SECONDS each) on
#    armdb tables, armdb.max_file_size = 64kB so that files rotate during
#    the run, autovacuum_naptime = 1s (and pgbench_accounts vacuumed after
#    every 200 updates) so that VACUUM counts the dead bytes,
#    alternating the worker idle (armdb.compaction = off) and merging
#    (armdb.compaction = on, naptime 1s, threshold 0.1): idle, merging,
#    idle, merging.  Each run prints what the worker did during it
#    (armdb_compaction_stats() before and after) and the pgbench tables'
#    size (armdb_relation_size) against a fresh copy of the same rows (made
#    once for accounts, branches and tellers, whose rows never change in
#    number or width, after every run for history).  A merging run also
#    merges what the idle run before it left.  Each pair gives merging/idle
#    ratios of TPS and latency (issue 12's target: TPS at most 10% lower,
#    a ratio >= 0.90).  The pgbench database is loaded with 16 MB files.
#
# MB are 10^6 bytes.  Progress goes to stderr, the tables to stdout.
set -euo pipefail
SCALE=${1:-10}
SECS=${BENCH_SECONDS:-30}
PORT=${ARMDB_BENCH_PORT:-54327}
BASE=${ARMDB_BENCH_DIR:-/var/tmp}
[[ ${SCALE} =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SCALE]" >&2; exit 2; }
ROWS=$((30000 * SCALE))
PGBIN_WANTED=${PGBIN:-}

# shellcheck source=../scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
[[ -z ${PGBIN_WANTED} ]] || PGBIN=${PGBIN_WANTED}

if ! command -v fio >/dev/null 2>&1; then
	log "installing fio"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fio >/dev/null
fi

DIR=$(mktemp -d "${BASE}/armdb-compaction-bench.XXXXXX")
cleanup() {
	stop_cluster "${DIR}"
	as_root rm -rf "${DIR}"
}
trap cleanup EXIT
# the key directory holds 32 bytes per row version
start_cluster "${DIR}" "${PORT}" \
	"armdb.memory = '$((256 + 8 * SCALE))MB'" \
	"armdb.memory_initial = '$((256 + 8 * SCALE))MB'" \
	"armdb.max_file_size = '16MB'" \
	"armdb.compaction = off" \
	"armdb.compaction_naptime = '1s'" \
	"armdb.compaction_threshold = 0.1" \
	"autovacuum_naptime = '1s'"

DB=armdb_bench
step() { log "$(printf '%4ds' "${SECONDS}") $*"; }
q() { cluster_psql "${PORT}" -d "${DB}" -q -At -F ' ' "$@"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
ratio() { awk "BEGIN { if ($2 == 0) print \"-\"; else printf \"%.2f\", $1 / $2 }"; }
mb() { awk "BEGIN { printf \"%.1f\", $1 / 1000000 }"; }

# set_conf NAME VALUE: ALTER SYSTEM, reload, and wait until new sessions
# see it (the postmaster rereads the files asynchronously).
set_conf() {
	local name=$1 value=$2 i
	q -c "ALTER SYSTEM SET ${name} = '${value}'" -c "SELECT pg_reload_conf()" >/dev/null
	for i in $(seq 100); do
		[[ $(q -c "SELECT current_setting('${name}')") == "${value}" ]] && return
		sleep 0.1
	done
	die "${name} did not become ${value} after a reload"
}

# what compaction has done since start-up:
# runs files_merged bytes_read bytes_written bytes_reclaimed
stats() { q -c "SELECT runs, files_merged, bytes_read, bytes_written, bytes_reclaimed
	FROM armdb_compaction_stats()"; }

# wait until no compaction worker runs (after armdb.compaction = off)
wait_worker_idle() {
	local i
	sleep 1.5	# the launcher may just have started one
	for i in $(seq 600); do
		[[ $(q -c "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'armdb compaction worker'") == 0 ]] && return
		sleep 0.2
	done
	die "the compaction worker did not stop"
}

cluster_psql "${PORT}" -q -c "CREATE DATABASE ${DB}"
q -c "CREATE EXTENSION armdb" -c "ALTER DATABASE ${DB} SET default_table_access_method = armdb"

# ---------------------------------------------------------------------
# 1. merge throughput
# ---------------------------------------------------------------------
for t in merge_fast merge_slow; do
	step "building ${t}: ${ROWS} rows, updated twice, VACUUM"
	# one session: every entry lands in one shard
	q -c "CREATE TABLE ${t} (id int, v text) WITH (autovacuum_enabled = off)" \
		-c "INSERT INTO ${t} SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, ${ROWS}) g" \
		-c "UPDATE ${t} SET v = reverse(v)" \
		-c "UPDATE ${t} SET v = reverse(v)" \
		-c "VACUUM ${t}"
done
MERGE_BEFORE=$(q -c "SELECT armdb_relation_size('merge_fast')")

# compact TABLE: armdb_compact() until it merges nothing more; prints
# "calls duration_ms wall_s" (duration_ms: the sum of what it reported)
compact() {
	local t=$1 calls=0 ms=0 s e merges d
	s=$(now)
	while ((calls < 100)); do
		read -r merges d <<<"$(q -c "SELECT merges, duration_ms FROM armdb_compact('${t}')")"
		calls=$((calls + 1))
		ms=$(calc "${ms} + ${d}")
		((merges > 0)) || break
	done
	e=$(now)
	echo "${calls} ${ms} $(calc "${e} - ${s}")"
}

checkpoint() { q -c "CHECKPOINT"; }
step "armdb_compact(merge_fast), armdb.compaction_cost_delay = 0"
set_conf armdb.compaction_cost_delay 0
checkpoint
read -r r0 w0 <<<"$(stats | awk '{print $3, $4}')"
read -r F_CALLS F_MS F_WALL <<<"$(compact merge_fast)"
read -r r1 w1 <<<"$(stats | awk '{print $3, $4}')"
F_BYTES=$((r1 - r0 + w1 - w0))
F_READ=$((r1 - r0))
F_WRITTEN=$((w1 - w0))
MERGE_AFTER=$(q -c "SELECT armdb_relation_size('merge_fast')")
MERGE_FRESH=$(q -c "CREATE TABLE merge_fresh AS SELECT * FROM merge_fast" \
	-c "SELECT armdb_relation_size('merge_fresh')")

step "armdb_compact(merge_slow), default cost settings"
set_conf armdb.compaction_cost_delay 2ms
checkpoint
read -r S_CALLS S_MS S_WALL <<<"$(compact merge_slow)"
read -r r2 w2 <<<"$(stats | awk '{print $3, $4}')"
S_BYTES=$((r2 - r1 + w2 - w1))
q -c "DROP TABLE merge_fast, merge_slow, merge_fresh"

step "fio: sequential write and read, 1 MB blocks, O_DIRECT, 512 MB in ${DIR}"
# terse output: field 7 is the read bandwidth, 48 the write one, in KiB/s
FIO_W=$(as_postgres fio --name=seqw --rw=write --bs=1M --size=512M --direct=1 \
	--end_fsync=1 --filename="${DIR}/fio.test" --minimal | awk -F ';' '{print $48 * 1024}')
FIO_R=$(as_postgres fio --name=seqr --rw=read --bs=1M --size=512M --direct=1 \
	--filename="${DIR}/fio.test" --minimal | awk -F ';' '{print $7 * 1024}')
as_postgres rm -f "${DIR}/fio.test"

F_RATE=$(calc "${F_BYTES} / (${F_MS} / 1000)")
S_RATE=$(calc "${S_BYTES} / (${S_MS} / 1000)")

# ---------------------------------------------------------------------
# 2. foreground cost
# ---------------------------------------------------------------------
step "pgbench -i -s ${SCALE} (armdb tables)"
as_postgres "${PGBIN}/pgbench" -h 127.0.0.1 -p "${PORT}" -U postgres -i -q -s "${SCALE}" "${DB}" \
	>/dev/null 2>&1
[[ $(q -c "SELECT string_agg(DISTINCT a.amname, ',') FROM pg_class c
	JOIN pg_am a ON a.oid = c.relam WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'") == armdb ]] ||
	die "the pgbench tables are not armdb tables"
# autovacuum counts the dead bytes: pgbench_accounts after every 200
# updates too (its default threshold, 20% of the rows, is not reached in a run)
q -c "ALTER TABLE pgbench_accounts SET (autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 200)"
set_conf armdb.max_file_size 64kB
TABLES="'pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'"
# A fresh copy of accounts, branches and tellers: their rows change, never
# their number or width, so it is made once; history's after every run.
FRESH_FIXED=$(q -c "CREATE TABLE fresh_accounts AS SELECT * FROM pgbench_accounts" \
	-c "CREATE TABLE fresh_branches AS SELECT * FROM pgbench_branches" \
	-c "CREATE TABLE fresh_tellers AS SELECT * FROM pgbench_tellers" \
	-c "SELECT sum(armdb_relation_size(t::regclass)) FROM unnest(ARRAY['fresh_accounts',
		'fresh_branches', 'fresh_tellers']) t" \
	-c "DROP TABLE fresh_accounts, fresh_branches, fresh_tellers")

# pgbench_run MODE: one run; prints
# "tps latency_ms runs files_merged bytes_read+written bytes_reclaimed size fresh"
pgbench_run() {
	local mode=$1 out tps lat s0 s1 size fresh
	if [[ ${mode} == merging ]]; then
		set_conf armdb.compaction on
	else
		set_conf armdb.compaction off
		wait_worker_idle
	fi
	checkpoint
	s0=$(stats)
	out=$(as_postgres "${PGBIN}/pgbench" -h 127.0.0.1 -p "${PORT}" -U postgres -n \
		-c 2 -j 2 -T "${SECS}" "${DB}" 2>&1) || { echo "${out}" >&2; die "pgbench failed"; }
	s1=$(stats)
	tps=$(echo "${out}" | awk '/^tps/ {print $3}')
	lat=$(echo "${out}" | awk '/latency average/ {print $4}')
	size=$(q -c "SELECT sum(armdb_relation_size(t::regclass)) FROM unnest(ARRAY[${TABLES}]) t")
	fresh=$(q -c "CREATE TABLE fresh_history AS SELECT * FROM pgbench_history" \
		-c "SELECT ${FRESH_FIXED} + armdb_relation_size('fresh_history')" \
		-c "DROP TABLE fresh_history")
	echo "${tps} ${lat} $(paste -d ' ' <(echo "${s0}") <(echo "${s1}") |
		awk '{print $6 - $1, $7 - $2, $8 + $9 - $3 - $4, $10 - $5}') ${size} ${fresh}"
}

MODES=(idle merging idle merging)
declare -a RUN
for i in "${!MODES[@]}"; do
	step "pgbench run $((i + 1)) of ${#MODES[@]}: worker ${MODES[i]}, ${SECS} s"
	RUN[i]=$(pgbench_run "${MODES[i]}")
done
set_conf armdb.compaction off
step "done"

# ---------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------
printf '\n| merge throughput (%s rows updated twice, VACUUM, 16 MB files) | MB/s | / device write |\n' "${ROWS}"
printf '|---|---|---|\n'
printf '| armdb_compact, unthrottled (cost_delay 0): %s calls, %s MB read + %s MB written in %.2f s (%.2f s wall) | %.0f | %s |\n' \
	"${F_CALLS}" "$(mb "${F_READ}")" "$(mb "${F_WRITTEN}")" "$(calc "${F_MS} / 1000")" "${F_WALL}" \
	"$(calc "${F_RATE} / 1000000")" "$(ratio "${F_RATE}" "${FIO_W}")"
printf '| armdb_compact, default cost settings (2 ms per 200): %s calls, %s MB in %.2f s (%.2f s wall) | %.0f | %s |\n' \
	"${S_CALLS}" "$(mb "${S_BYTES}")" "$(calc "${S_MS} / 1000")" "${S_WALL}" \
	"$(calc "${S_RATE} / 1000000")" "$(ratio "${S_RATE}" "${FIO_W}")"
printf '| device sequential write (fio, 1 MB blocks, O_DIRECT, QD 1) | %.0f | 1.00 |\n' \
	"$(calc "${FIO_W} / 1000000")"
printf '| device sequential read (fio, same) | %.0f | %s |\n' \
	"$(calc "${FIO_R} / 1000000")" "$(ratio "${FIO_R}" "${FIO_W}")"
printf '\ntable size: %s MB before compaction, %s MB after, fresh copy %s MB (after / fresh %s)\n' \
	"$(mb "${MERGE_BEFORE}")" "$(mb "${MERGE_AFTER}")" "$(mb "${MERGE_FRESH}")" \
	"$(ratio "${MERGE_AFTER}" "${MERGE_FRESH}")"

printf '\n| pgbench TPC-B, scale %s, 2 clients, %s s | worker | tps | latency ms | merges | MB merged (read + written) | MB reclaimed | tables MB | fresh copy MB | tables / fresh |\n' \
	"${SCALE}" "${SECS}"
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for i in "${!MODES[@]}"; do
	read -r tps lat runs _ rw recl size fresh <<<"${RUN[i]}"
	printf '| run %d | %s | %.0f | %.3f | %s | %s | %s | %s | %s | %s |\n' "$((i + 1))" "${MODES[i]}" \
		"${tps}" "${lat}" "${runs}" "$(mb "${rw}")" "$(mb "${recl}")" "$(mb "${size}")" \
		"$(mb "${fresh}")" "$(ratio "${size}" "${fresh}")"
done
printf '\n| pair | tps merging / idle | latency merging / idle |\n|---|---|---|\n'
sum_t=0
sum_l=0
for p in 0 1; do
	read -r ta la _ <<<"${RUN[2 * p]}"
	read -r tb lb _ <<<"${RUN[2 * p + 1]}"
	rt=$(ratio "${tb}" "${ta}")
	rl=$(ratio "${lb}" "${la}")
	sum_t=$(calc "${sum_t} + ${rt}")
	sum_l=$(calc "${sum_l} + ${rl}")
	printf '| runs %d, %d | %s | %s |\n' "$((2 * p + 1))" "$((2 * p + 2))" "${rt}" "${rl}"
done
printf '| mean | %.2f | %.2f |\n' "$(calc "${sum_t} / 2")" "$(calc "${sum_l} / 2")"
printf '\ntarget: tps merging / idle >= 0.90 (at most 10%% lower)\n'
for i in "${!MODES[@]}"; do
	read -r _ _ runs _ <<<"${RUN[i]}"
	if [[ ${MODES[i]} == merging ]] && ((runs == 0)); then
		printf 'WARNING: run %d: the worker merged nothing; that pair says nothing\n' "$((i + 1))"
	elif [[ ${MODES[i]} == idle ]] && ((runs > 0)); then
		printf 'WARNING: run %d: the worker merged while it should have been off\n' "$((i + 1))"
	fi
done
