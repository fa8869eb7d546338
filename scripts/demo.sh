#!/usr/bin/env bash
#
# scripts/demo.sh - build armdb, install it and start a local PostgreSQL 15
# with it loaded, then show what it offers so far.
#
# Run as root on a fresh Debian 12 machine, from anywhere:
#
#   bash scripts/demo.sh
#
# The cluster lives in /var/lib/armdb-demo (ARMDB_DEMO_DIR), listens on
# 127.0.0.1:54320 (ARMDB_DEMO_PORT) and is left running.  Running the script
# again rebuilds and reinstalls armdb and restarts the same cluster.
#
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_DIR=${ARMDB_DEMO_DIR:-/var/lib/armdb-demo}
# absolute, from where the script was started (it is used from / as postgres)
[[ ${DEMO_DIR} == /* ]] || DEMO_DIR=${PWD}/${DEMO_DIR}
cd "${ARMDB_ROOT}"
DEMO_PORT=${ARMDB_DEMO_PORT:-54320}

install_deps
build_extension
install_extension
start_cluster "${DEMO_DIR}" "${DEMO_PORT}"

psql_demo() {
	cluster_psql "${DEMO_PORT}" -d postgres "$@"
}

# Echo each statement before its result, like a terminal session.
show() {
	printf '\npostgres=# %s\n' "$1"
	psql_demo -c "$1"
}

printf '\n===== armdb demo: PostgreSQL %s on 127.0.0.1:%s =====\n' \
	"$(psql_demo -Atc 'SHOW server_version')" "${DEMO_PORT}"

show "CREATE EXTENSION IF NOT EXISTS armdb;"
show "SELECT amname, amtype FROM pg_am WHERE amname = 'armdb';"
show "SHOW shared_preload_libraries;"

show "SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'armdb.%' ORDER BY name;"

# An armdb table, used as any table is.
show "DROP TABLE IF EXISTS kv;"
show "CREATE TABLE kv (id bigint PRIMARY KEY, doc jsonb, updated timestamptz DEFAULT now()) USING armdb;"
show "INSERT INTO kv (id, doc) SELECT g, jsonb_build_object('n', g, 'even', g % 2 = 0) FROM generate_series(1, 100000) g;"
show "UPDATE kv SET doc = doc || '{\"touched\": true}' WHERE id % 1000 = 0;"
show "DELETE FROM kv WHERE id > 99990;"
show "BEGIN; INSERT INTO kv (id, doc) VALUES (-1, '{}'); ROLLBACK;"
show "SELECT count(*), count(*) FILTER (WHERE doc ? 'touched') AS touched FROM kv;"
show "EXPLAIN (COSTS OFF) SELECT doc FROM kv WHERE id = 4242;"
show "SELECT doc FROM kv WHERE id = 4242;"
show "ANALYZE kv;"
show "SELECT reltuples::bigint, pg_size_pretty(armdb_relation_size('kv')) AS on_disk, pg_size_pretty(armdb_keydir_size('kv')) AS keydir FROM pg_class WHERE relname = 'kv';"

# It is durable: stop the server hard and look again.
printf '\n(stopping the server with pg_ctl stop -m immediate, then starting it)\n'
as_postgres "${PGBIN}/pg_ctl" -D "${DEMO_DIR}/data" -m immediate stop >/dev/null
start_cluster "${DEMO_DIR}" "${DEMO_PORT}"
show "SELECT count(*), min(id), max(id) FROM kv;"

cat <<EOF

===== the cluster is running =====
  connect:  psql -h 127.0.0.1 -p ${DEMO_PORT} -U postgres
  data:     ${DEMO_DIR}/data
  log:      ${DEMO_DIR}/log/postgresql.log
  stop:     (cd / && runuser -u postgres -- ${PGBIN}/pg_ctl -D ${DEMO_DIR}/data stop)
  again:    bash scripts/demo.sh   (rebuilds, reinstalls and restarts it)
EOF
