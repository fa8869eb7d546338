#!/usr/bin/env bash
#
# scripts/test.sh - armdb's whole test suite, as CI runs it (.ci/run).
#
# Run as root on a fresh Debian 12 machine, from anywhere:
#
#   bash scripts/test.sh
#
# Steps: Debian packages, build, unit tests, fuzz smoke run, install, a
# throw-away cluster, and "make installcheck" against it as the postgres
# user: the pg_regress tests (sql/) and the TAP tests (t/, TAP_TESTS = 1);
# the pg_regress and isolation tests again, and the crash, WAL, standby and
# compaction TAP tests, with encryption at rest on (a key command set);
# then a pgbench TPC-B run on armdb tables, checked for consistency, and
# PostgreSQL's core regression suite against the diff hunks accepted in
# test/core-regress-allowlist/, and its isolation suite against those in
# test/core-isolation-allowlist/.
# A failed step does not stop the independent ones after it; the script
# exits non-zero if any step failed and ends with the summary line
# "N passed, N failed" (of the steps).
#
# Environment:
#   FUZZ_SECONDS    length of the fuzz run (default 60)
#   ARMDB_TEST_PORT port of the throw-away cluster (default 54329)
#   KEEP_CLUSTER=1  leave the throw-away cluster's directory behind
#   ARMDB_ASSERTS   build with armdb's Assert()s checked (default 1; 0: off)
#
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${ARMDB_ROOT}"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ARMDB_TEST_PORT=${ARMDB_TEST_PORT:-54329}
# every test runs against a build whose Assert()s are checked
ARMDB_ASSERTS=${ARMDB_ASSERTS-1}
[[ ${ARMDB_ASSERTS} == 0 ]] && ARMDB_ASSERTS=
export ARMDB_ASSERTS

# ---------------------------------------------------------------------------
# Step bookkeeping
# ---------------------------------------------------------------------------
STEP_NAMES=()
STEP_RESULTS=()
STEP_SECONDS=()
FAILED=0
PASSED=0
SKIPPED=0

# run_step NAME FUNCTION: run FUNCTION (in a subshell, so that set -e works
# inside it and a failure cannot end this script) and record the result.
# FUNCTION returns 0 (passed), 1 (failed) or 77 (skipped; automake's code).
run_step() {
	local name=$1 fn=$2 rc start
	start=${SECONDS}
	printf '\n===== %s =====\n' "${name}"
	set +e
	(
		set -euo pipefail
		"${fn}"
	)
	rc=$?
	set -e
	STEP_NAMES+=("${name}")
	STEP_SECONDS+=("$((SECONDS - start))")
	case ${rc} in
		0)
			STEP_RESULTS+=(passed)
			PASSED=$((PASSED + 1))
			;;
		77)
			STEP_RESULTS+=(skipped)
			SKIPPED=$((SKIPPED + 1))
			;;
		*)
			STEP_RESULTS+=("FAILED (exit ${rc})")
			FAILED=$((FAILED + 1))
			;;
	esac
	printf -- '----- %s: %s\n' "${name}" "${STEP_RESULTS[-1]}"
	return 0
}

# skip_step NAME REASON: record a step that could not run.
skip_step() {
	printf '\n===== %s =====\nskipped: %s\n' "$1" "$2"
	STEP_NAMES+=("$1")
	STEP_RESULTS+=("skipped (${2})")
	STEP_SECONDS+=(0)
	SKIPPED=$((SKIPPED + 1))
}

step_passed() {
	local i
	for i in "${!STEP_NAMES[@]}"; do
		if [[ ${STEP_NAMES[i]} == "$1" ]]; then
			[[ ${STEP_RESULTS[i]} == passed ]]
			return
		fi
	done
	return 1
}

# ---------------------------------------------------------------------------
# The throw-away cluster and the postgres-owned copy of the tree
# ---------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/armdb-test.XXXXXX)
# The repository may be where postgres cannot go (a clone under /root):
# whatever postgres runs or reads lives under WORK, which it may enter.
chmod 0755 "${WORK}"
CLUSTER_DIR=${WORK}/cluster
# pg_regress writes results/ and regression.diffs into the directory it runs
# in, and TAP tests create clusters, which must not belong to root: every
# step that talks to a server runs as postgres in this copy of the built
# tree.
PG_TREE=${WORK}/tree

cleanup() {
	local rc=$?
	set +e
	stop_cluster "${CLUSTER_DIR}"
	[[ -n ${SMALL_FS:-} ]] && mountpoint -q "${SMALL_FS}" 2>/dev/null && umount "${SMALL_FS}"
	if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
		log "kept ${WORK}"
	else
		rm -rf "${WORK}"
	fi
	exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------
step_deps() {
	install_deps
	check_toolchain
}

step_build() {
	build_extension
}

step_unittest() {
	make PG_CONFIG="${PG_CONFIG}" unittest
}

step_fuzz() {
	local rc=0 f
	# libFuzzer prints a line per corpus change: keep its other output
	make PG_CONFIG="${PG_CONFIG}" fuzz FUZZ_SECONDS="${FUZZ_SECONDS}" 2>&1 |
		grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)[[:space:]]|^".*" # Uses: [0-9]+$' ||
		rc=${PIPESTATUS[0]}
	# libFuzzer leaves a crashing input as crash-<sha1> (or leak-, timeout-,
	# oom-) in the directory it ran in: keep them where they can be found
	shopt -s nullglob
	for f in crash-* leak-* timeout-* oom-* slow-unit-*; do
		mkdir -p test/fuzz-crashes
		mv -- "${f}" test/fuzz-crashes/
		log "fuzz input kept: test/fuzz-crashes/${f}"
	done
	return "${rc}"
}

step_install() {
	install_extension
}

step_cluster() {
	# prepared transactions enabled, as the core suite's allowlist was made with
	start_cluster "${CLUSTER_DIR}" "${ARMDB_TEST_PORT}" "max_prepared_transactions = 10"
	cluster_psql "${ARMDB_TEST_PORT}" -c 'SELECT version()'
}

# Copy the built tree for the postgres user (no .git, keeps the timestamps
# so that make does not rebuild anything).
prepare_pg_tree() {
	as_root rm -rf "${PG_TREE}"
	mkdir -p "${PG_TREE}"
	tar -C "${ARMDB_ROOT}" --exclude=./.git -cf - . | tar -C "${PG_TREE}" -xf -
	as_root chown -R postgres:postgres "${PG_TREE}"
}

# A small file system for the disk-full test (t/012_disk_full.pl): a
# loop-mounted ext4 (O_DIRECT works there), or a size-limited tmpfs where
# loop devices are not available.  Unmounted by cleanup.
SMALL_FS=${WORK}/small-fs
mount_small_fs() {
	mkdir -p "${SMALL_FS}"
	if truncate -s 64M "${WORK}/small-fs.img" &&
		mkfs.ext4 -q -m 0 -F "${WORK}/small-fs.img" >/dev/null 2>&1 &&
		mount -o loop "${WORK}/small-fs.img" "${SMALL_FS}" 2>/dev/null; then
		log "small file system for the disk-full test: ext4 on a loop device"
	elif mount -t tmpfs -o size=48m tmpfs "${SMALL_FS}" 2>/dev/null; then
		log "small file system for the disk-full test: tmpfs"
	else
		log "could not mount a small file system: the disk-full test is skipped"
		return 0
	fi
	chown postgres:postgres "${SMALL_FS}"
}

# make TARGET... as postgres in the copied tree, against the test cluster.
pg_make() {
	as_postgres env PGHOST=127.0.0.1 PGPORT="${ARMDB_TEST_PORT}" PGUSER=postgres \
		ARMDB_TEST_SMALL_FS="${SMALL_FS}" \
		make -C "${PG_TREE}" PG_CONFIG="${PG_CONFIG}" "$@"
}

step_installcheck() {
	local rc=0
	prepare_pg_tree
	mount_small_fs
	pg_make installcheck || rc=$?
	if [[ ${rc} -ne 0 ]]; then
		if [[ -f ${PG_TREE}/regression.diffs ]]; then
			printf '\n----- regression.diffs -----\n'
			cat "${PG_TREE}/regression.diffs"
			# keep them in the repository tree for a look afterwards
			cp "${PG_TREE}/regression.diffs" "${ARMDB_ROOT}/regression.diffs" || true
		fi
		if [[ -f ${CLUSTER_DIR}/log/postgresql.log ]]; then
			printf '\n----- server log (last 100 lines) -----\n'
			as_postgres tail -n 100 "${CLUSTER_DIR}/log/postgresql.log"
		fi
	fi
	return "${rc}"
}

# Encryption at rest on: the test cluster restarted with a key command, so
# that every armdb table the tests create is encrypted, then the pg_regress
# and isolation tests again, and the crash, WAL, standby and compaction TAP
# tests with the key command in every node they start (TEMP_CONFIG).  The
# cluster is then restarted without it for the steps that follow.
ENCRYPTION_KEY=5c1f0e3a9b7d24681357ace02468bdf19e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b
ENCRYPTED_TAP_TESTS="t/002_crash.pl t/006_hints.pl t/011_corruption.pl
	t/019_compaction_crash.pl t/021_compaction_corrupt.pl t/023_wal.pl
	t/025_wal_durability.pl t/026_base_backup.pl t/027_pitr.pl
	t/029_hot_standby.pl t/033_prepared_locks.pl t/043_keydir_image.pl
	t/046_logical_decoding.pl"
step_encrypted() {
	local rc=0 conf=${WORK}/encryption.conf
	printf "armdb.encryption_key_command = 'echo %s'\n" "${ENCRYPTION_KEY}" >"${conf}"
	chmod 0644 "${conf}"
	start_cluster "${CLUSTER_DIR}" "${ARMDB_TEST_PORT}" "max_prepared_transactions = 10" \
		"$(cat "${conf}")"
	# the key is loaded: a new armdb table is encrypted
	local encrypted
	encrypted=$(cluster_psql "${ARMDB_TEST_PORT}" -At -q -c "CREATE EXTENSION armdb" \
		-c "CREATE TABLE encryption_check (a int) USING armdb" \
		-c "SELECT encrypted FROM armdb_relation_encryption('encryption_check')" \
		-c "SET client_min_messages = warning" \
		-c "DROP EXTENSION armdb CASCADE") || true
	if [[ ${encrypted} != t ]]; then
		log "armdb tables are not encrypted with armdb.encryption_key_command set (${encrypted})"
		rc=1
	fi
	prepare_pg_tree
	pg_make installcheck TAP_TESTS= || rc=$?
	if [[ ${rc} -ne 0 && -f ${PG_TREE}/regression.diffs ]]; then
		printf '\n----- regression.diffs (encrypted) -----\n'
		cat "${PG_TREE}/regression.diffs"
	fi
	as_postgres env PGHOST=127.0.0.1 PGPORT="${ARMDB_TEST_PORT}" PGUSER=postgres \
		ARMDB_TEST_SMALL_FS="${SMALL_FS}" TEMP_CONFIG="${conf}" \
		make -C "${PG_TREE}" PG_CONFIG="${PG_CONFIG}" installcheck REGRESS= ISOLATION= \
		PROVE_TESTS="$(echo ${ENCRYPTED_TAP_TESTS})" || rc=$?
	start_cluster "${CLUSTER_DIR}" "${ARMDB_TEST_PORT}" "max_prepared_transactions = 10"
	return "${rc}"
}

# pgbench TPC-B with armdb as the default access method: no failed
# transaction, balances consistent with history (bench/pgbench-check.sh).
# postgres runs a copy of the script: it may not be able to read the
# repository's.
step_pgbench() {
	local script=${WORK}/pgbench-check.sh
	install -m 0644 "${ARMDB_ROOT}/bench/pgbench-check.sh" "${script}"
	as_postgres env PGHOST=127.0.0.1 PGPORT="${ARMDB_TEST_PORT}" PGUSER=postgres \
		PGBIN="${PGBIN}" bash "${script}" 2 15
}

# PostgreSQL's own regression suite with armdb as the default table access
# method: every hunk of its diffs must be one test/core-regress-allowlist/
# accepts, with its reason (test/core-regress-check.sh; needs ../shared/tools
# beside the repository).
step_core_regress() {
	# its su postgres starts where we are: somewhere postgres may enter
	cd /
	PGHOST=127.0.0.1 PGPORT="${ARMDB_TEST_PORT}" PGUSER=postgres \
		bash "${ARMDB_ROOT}/test/core-regress-check.sh" "${WORK}/core-regress"
}

# PostgreSQL's own isolation suite with armdb as the default access method:
# every hunk of its diffs must be one test/core-isolation-allowlist/ accepts,
# with its reason (test/core-isolation-check.sh).
step_core_isolation() {
	cd /
	PGHOST=127.0.0.1 PGPORT="${ARMDB_TEST_PORT}" PGUSER=postgres \
		bash "${ARMDB_ROOT}/test/core-isolation-check.sh" "${WORK}/core-isolation"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
START=${SECONDS}

run_step deps step_deps
if ! step_passed deps; then
	skip_step build "dependencies missing"
else
	run_step build step_build
fi

if step_passed build; then
	run_step unittest step_unittest
	run_step fuzz step_fuzz
	run_step install step_install
else
	skip_step unittest "build failed"
	skip_step fuzz "build failed"
	skip_step install "build failed"
fi

if step_passed install; then
	run_step cluster step_cluster
else
	skip_step cluster "not installed"
fi

if step_passed cluster; then
	run_step installcheck step_installcheck
	run_step encrypted step_encrypted
	run_step pgbench step_pgbench
	run_step core-regress step_core_regress
	run_step core-isolation step_core_isolation
else
	skip_step installcheck "no cluster"
	skip_step encrypted "no cluster"
	skip_step pgbench "no cluster"
	skip_step core-regress "no cluster"
	skip_step core-isolation "no cluster"
fi
stop_cluster "${CLUSTER_DIR}"

printf '\n===== summary (%ss) =====\n' "$((SECONDS - START))"
for i in "${!STEP_NAMES[@]}"; do
	printf '  %-14s %-40s %5ss\n' "${STEP_NAMES[i]}" "${STEP_RESULTS[i]}" "${STEP_SECONDS[i]}"
done
# the runner's summary line, last
printf '%d passed, %d failed\n' "${PASSED}" "${FAILED}"

[[ ${FAILED} -eq 0 ]]
