# shellcheck shell=bash
#
# scripts/lib.sh - shared functions of armdb's scripts (demo.sh, test.sh).
#
# Source it from bash; it defines functions and a few variables and runs
# nothing.  Everything here is meant for a Debian 12 machine, run as root
# (as the README's commands are) or as a user with sudo.
#
#   install_deps              Debian packages to build, test and run armdb
#   check_toolchain           clang can link a libFuzzer+ASan+UBSan binary
#   build_extension           make clean && make
#   install_extension         make install
#   ensure_postgres_user      the postgres OS user (Debian's package makes it)
#   ensure_fuse_device        /dev/fuse usable by postgres, /etc/mtab (lossyfs)
#   as_postgres CMD...        run CMD as the postgres OS user
#   start_cluster DIR PORT [CONF_LINE...]
#                             initdb (once) and start a cluster in DIR
#   stop_cluster DIR          stop it (no error if it is not running)
#   cluster_psql PORT ARG...  psql as postgres to 127.0.0.1:PORT

ARMDB_PG_MAJOR=15
PGBIN=/usr/lib/postgresql/${ARMDB_PG_MAJOR}/bin
# Debian's /usr/bin/pg_config follows the newest installed server-dev
# package; armdb targets 15 whatever else is installed.
PG_CONFIG=${PG_CONFIG:-${PGBIN}/pg_config}
export PG_CONFIG

# Repository root: the parent of the directory holding this file.
ARMDB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ARMDB_DEB_PACKAGES=(
	# the server, its headers and PGXS (pg_regress, pg_isolation_regress
	# and the TAP test modules ship with postgresql-server-dev-15)
	postgresql-15
	postgresql-client-15
	postgresql-server-dev-15
	# armdb's own build dependencies
	liburing-dev
	libssl-dev
	make
	gcc
	# libFuzzer, ASan and UBSan for "make fuzz": clang 14 and its runtime
	clang
	libclang-rt-14-dev
	# TAP tests (PostgreSQL::Test::Cluster needs IPC::Run; prove is in perl)
	perl
	libipc-run-perl
	# t/046_logical_decoding.pl: wal2json, an output plugin from outside
	# PostgreSQL, decodes armdb tables too
	postgresql-15-wal2json
	# t/018_power_loss.pl: test/lossyfs is a FUSE file system (libfuse3),
	# mounted as postgres through fusermount3 (fuse3)
	fuse3
	libfuse3-dev
	# t/012_disk_full.pl: a small ext4 file system on a loop device
	e2fsprogs
	# ps: t/002_crash.pl, t/014_sweep.pl and t/018_power_loss.pl kill -9
	# the postmaster's children by the list "ps --ppid" gives (a minimal
	# Debian lacks it)
	procps
	# runuser, to run the server as postgres; useradd
	util-linux
	passwd
	# mktemp, cp, tar, ...
	coreutils
	tar
)

log() {
	printf '==> %s\n' "$*" >&2
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
	if [[ ${EUID} -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) for: $*"
	fi
}

# Are all of the given Debian packages installed?
debs_installed() {
	local pkg status
	for pkg in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null) || return 1
		[[ ${status} == "install ok installed" ]] || return 1
	done
	return 0
}

# Install the Debian packages armdb needs.  When every one of them is
# already installed nothing is asked of the package mirror (a re-run works
# offline); ARMDB_FORCE_APT=1 runs apt-get anyway.
install_deps() {
	if [[ ${ARMDB_FORCE_APT:-0} != 1 ]] && debs_installed "${ARMDB_DEB_PACKAGES[@]}"; then
		log "Debian packages: all ${#ARMDB_DEB_PACKAGES[@]} already installed"
	else
		log "installing Debian packages: ${ARMDB_DEB_PACKAGES[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update
		# Installing postgresql-15 may create and start Debian's default
		# cluster "main" on port 5432.  armdb's scripts neither use nor
		# disturb it: their clusters live elsewhere on other ports.
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends "${ARMDB_DEB_PACKAGES[@]}"
	fi
	[[ -x ${PG_CONFIG} ]] || die "${PG_CONFIG} is missing after the install"
	ensure_postgres_user
	ensure_fuse_device
}

# fusermount3 opens /dev/fuse as the user who mounts: udev makes it 0666 on
# a usual Debian, but a machine without udev may leave it 0600, and
# t/018_power_loss.pl (run as postgres) would then skip.
#
# fusermount3 -u, run by a user who is not root, looks the mount up in
# /etc/mtab: systemd makes that a link to /proc/self/mounts, but a system
# that did not boot with it (a debootstrap chroot, a container) may have
# none, and t/018_power_loss.pl could then mount but not unmount.
ensure_fuse_device() {
	if [[ -c /dev/fuse ]] && ! as_postgres test -r /dev/fuse -a -w /dev/fuse; then
		log "making /dev/fuse usable by every user (mode 0666, as udev does)"
		as_root chmod 0666 /dev/fuse
	fi
	if [[ ! -e /etc/mtab ]]; then
		log "linking /etc/mtab to /proc/self/mounts (as systemd does)"
		as_root ln -sfn ../proc/self/mounts /etc/mtab
	fi
}

# Fail early and clearly when clang cannot build a fuzz target.
check_toolchain() {
	local tmp rc=0
	tmp=$(mktemp -d)
	cat >"${tmp}/t.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void) d; (void) n; return 0; }
EOF
	if ! clang -fsanitize=fuzzer,address,undefined -o "${tmp}/t" "${tmp}/t.c" \
		>"${tmp}/log" 2>&1; then
		cat "${tmp}/log" >&2
		log "clang cannot link -fsanitize=fuzzer (is libclang-rt-14-dev installed?)"
		rc=1
	fi
	rm -rf "${tmp}"
	return "${rc}"
}

# ARMDB_ASSERTS=1 builds with armdb's Assert()s checked (the test suite).
build_extension() {
	log "building armdb (make clean && make${ARMDB_ASSERTS:+ ASSERTS=1})"
	make -C "${ARMDB_ROOT}" PG_CONFIG="${PG_CONFIG}" clean >/dev/null
	make -C "${ARMDB_ROOT}" PG_CONFIG="${PG_CONFIG}" ${ARMDB_ASSERTS:+ASSERTS=1} -j"$(nproc)"
}

install_extension() {
	log "installing armdb into $("${PG_CONFIG}" --pkglibdir)"
	as_root make -C "${ARMDB_ROOT}" PG_CONFIG="${PG_CONFIG}" ${ARMDB_ASSERTS:+ASSERTS=1} install
}

# Debian's postgresql-common creates the postgres user; make it if some
# other installation path did not.
ensure_postgres_user() {
	if ! id postgres >/dev/null 2>&1; then
		log "creating the postgres OS user"
		as_root useradd --system --user-group --home-dir /var/lib/postgresql \
			--shell /bin/bash postgres
	fi
}

# Run a command as the postgres OS user (PostgreSQL refuses to run as root).
#
# The command starts in /, not in the caller's directory: postgres may not
# be allowed into that (a clone under /root is mode 0700), and PostgreSQL's
# programs then print "could not change directory to ...: Permission
# denied" on every run.  Give the command absolute paths only, of files
# that postgres can read (see prepare_postgres_dir).
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		"$@"
		return
	fi
	(
		cd / || exit 1
		if [[ ${EUID} -eq 0 ]] && command -v runuser >/dev/null 2>&1; then
			exec runuser -u postgres -- "$@"
		elif [[ ${EUID} -eq 0 ]]; then
			# su runs a shell command: quote every argument
			exec su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
		else
			exec sudo -u postgres -- "$@"
		fi
	)
}

# Make DIR (and every directory above it) usable by postgres: owned by
# postgres, and its parents searchable.
prepare_postgres_dir() {
	local dir=$1 parent
	as_root mkdir -p "${dir}"
	as_root chown postgres:postgres "${dir}"
	as_root chmod 0750 "${dir}"
	parent=$(dirname "${dir}")
	while [[ ${parent} != / ]]; do
		if ! as_postgres test -x "${parent}"; then
			as_root chmod o+x "${parent}"
		fi
		parent=$(dirname "${parent}")
	done
}

# start_cluster DIR PORT [CONF_LINE...]
#
# A cluster of its own in DIR: DIR/data (PGDATA), DIR/log/postgresql.log,
# DIR/socket (unix socket).  initdb runs only when DIR/data is not a cluster
# yet, so a second call restarts the existing one (with the configuration
# rewritten, and the newly installed armdb.so loaded).  Extra CONF_LINEs
# ("name = value") go into the configuration after armdb's defaults.
start_cluster() {
	local dir=$1 port=$2
	shift 2
	local data=${dir}/data conf line

	[[ -n ${dir} && -n ${port} ]] || die "usage: start_cluster DIR PORT [CONF_LINE...]"
	# as_postgres runs in /: a relative DIR would point elsewhere there
	[[ ${dir} == /* ]] || dir=${PWD}/${dir}
	data=${dir}/data
	ensure_postgres_user
	prepare_postgres_dir "${dir}"
	as_postgres mkdir -p "${dir}/log" "${dir}/socket"

	if ! as_postgres test -f "${data}/PG_VERSION"; then
		log "initdb ${data}"
		as_postgres "${PGBIN}/initdb" -D "${data}" -U postgres --auth=trust \
			--encoding=UTF8 --locale=C >/dev/null ||
			die "initdb failed"
		printf "\n# armdb scripts (scripts/lib.sh)\ninclude 'armdb_cluster.conf'\n" |
			as_postgres tee -a "${data}/postgresql.conf" >/dev/null
	fi

	# rewritten at every start, so a re-run can change the port
	conf=$(
		cat <<EOF
# written by scripts/lib.sh start_cluster; rewritten at every start
shared_preload_libraries = 'armdb'
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}/socket'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
		for line in "$@"; do
			printf '%s\n' "${line}"
		done
	)
	printf '%s\n' "${conf}" | as_postgres tee "${data}/armdb_cluster.conf" >/dev/null

	if as_postgres "${PGBIN}/pg_ctl" -D "${data}" status >/dev/null 2>&1; then
		log "restarting the cluster in ${data} on port ${port}"
		as_postgres "${PGBIN}/pg_ctl" -D "${data}" -l "${dir}/log/postgresql.log" \
			-w -t 120 -m fast restart >/dev/null ||
			{
				as_postgres tail -n 50 "${dir}/log/postgresql.log" >&2
				die "the cluster in ${data} did not restart"
			}
	else
		log "starting the cluster in ${data} on port ${port}"
		as_postgres "${PGBIN}/pg_ctl" -D "${data}" -l "${dir}/log/postgresql.log" \
			-w -t 120 start >/dev/null ||
			{
				as_postgres tail -n 50 "${dir}/log/postgresql.log" >&2
				die "the cluster in ${data} did not start"
			}
	fi
}

# stop_cluster DIR: stop the cluster of start_cluster DIR, if it runs.
stop_cluster() {
	local dir=$1 data
	[[ -n ${dir} ]] || die "usage: stop_cluster DIR"
	[[ ${dir} == /* ]] || dir=${PWD}/${dir}
	data=${dir}/data
	if [[ -d ${data} ]] &&
		as_postgres "${PGBIN}/pg_ctl" -D "${data}" status >/dev/null 2>&1; then
		log "stopping the cluster in ${data}"
		as_postgres "${PGBIN}/pg_ctl" -D "${data}" -w -t 120 -m fast stop >/dev/null ||
			as_postgres "${PGBIN}/pg_ctl" -D "${data}" -m immediate stop >/dev/null ||
			true
	fi
}

# cluster_psql PORT ARG...: psql as postgres, no psqlrc, stop on error.
cluster_psql() {
	local port=$1
	shift
	as_postgres "${PGBIN}/psql" -X -h 127.0.0.1 -p "${port}" -U postgres \
		-v ON_ERROR_STOP=1 "$@"
}
