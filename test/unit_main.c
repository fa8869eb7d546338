/*-------------------------------------------------------------------------
 *
 * unit_main.c
 *	  Runner of the storage-layer unit tests.
 *
 *	  armdb_unit [-v] [name-filter]
 *
 * Every test whose name contains the filter runs once with ARMDB_IO_SYNC
 * and once with ARMDB_IO_URING, each time in a fresh directory under
 * $TMPDIR (or /tmp) that is removed afterwards (kept when
 * ARMDB_UNIT_KEEP is set).  Besides its own assertions, a test fails when it
 * leaves file descriptors open.  The last line is "N passed, N failed".
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern const UnitTest unit_format_tests[];
extern const UnitTest unit_io_tests[];
extern const UnitTest unit_shard_tests[];
extern const UnitTest unit_recovery_tests[];
extern const UnitTest unit_merge_tests[];
extern const UnitTest unit_winner_tests[];
extern const UnitTest unit_cipher_tests[];

static const UnitTest *const unit_suites[] = {
	unit_format_tests,
	unit_io_tests,
	unit_shard_tests,
	unit_recovery_tests,
	unit_merge_tests,
	unit_winner_tests,
	unit_cipher_tests,
	NULL
};

ArmdbIo    *unit_io;
ArmdbIoMethod unit_method;
const char *unit_dir;

static bool cur_failed;
static char cur_message[2048];
static bool verbose;
static int	fd_balance;

void
unit_fail(const char *file, int line, const char *fmt,...)
{
	va_list		args;
	int			n;

	if (cur_failed)
		return;					/* keep the first failure */
	cur_failed = true;
	n = snprintf(cur_message, sizeof(cur_message), "%s:%d: ", file, line);
	va_start(args, fmt);
	vsnprintf(cur_message + n, sizeof(cur_message) - n, fmt, args);
	va_end(args);
}

bool
unit_failed(void)
{
	return cur_failed;
}

void
unit_note(const char *fmt,...)
{
	va_list		args;

	if (!verbose)
		return;
	va_start(args, fmt);
	printf("      ");
	vprintf(fmt, args);
	printf("\n");
	va_end(args);
}

static bool
count_fd_opened(void)
{
	fd_balance++;
	return true;
}

static void
count_fd_closed(void)
{
	fd_balance--;
}

/* the storage layer's own file hooks, wrapped to count opens and closes */
static ArmdbFileHooks plain_file_hooks;

static int
count_open(const char *path, int flags, mode_t mode)
{
	int			fd = plain_file_hooks.open(path, flags, mode);

	if (fd >= 0)
		fd_balance++;
	return fd;
}

static void
count_close(int fd)
{
	plain_file_hooks.close(fd);
	fd_balance--;
}

static int
count_open_cached(const char *path, int flags, mode_t mode)
{
	int			fd = plain_file_hooks.open_cached(path, flags, mode);

	if (fd >= 0)
		fd_balance++;
	return fd;
}

static void
count_close_cached(int handle)
{
	plain_file_hooks.close_cached(handle);
	fd_balance--;
}

static int
open_fd_count(void)
{
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;				/* the DIR's own descriptor */
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	if (remove(path) != 0)
		fprintf(stderr, "could not remove \"%s\": %m\n", path);
	return 0;
}

static bool
name_matches(const char *name, const char *filter)
{
	return filter == NULL || strstr(name, filter) != NULL;
}

static bool
run_one(const UnitTest *t, ArmdbIoMethod method, const char *tmpbase)
{
	char		dir[MAXPGPATH];
	ArmdbIo		io;
	ArmdbError	err;
	int			fds_before;
	struct timespec t0,
				t1;
	double		ms;

	cur_failed = false;
	cur_message[0] = '\0';
	armdb_io_fault_hook = NULL;
	fd_balance = 0;

	snprintf(dir, sizeof(dir), "%s/armdb_unit.XXXXXX", tmpbase);
	if (mkdtemp(dir) == NULL)
	{
		printf("FAIL %s [%s]: mkdtemp(%s): %m\n", t->name,
			   armdb_io_method_name(method), dir);
		return false;
	}
	fds_before = open_fd_count();
	armdb_error_clear(&err);
	if (!armdb_io_init(&io, method, &err))
	{
		printf("FAIL %s [%s]: armdb_io_init: %s\n", t->name,
			   armdb_io_method_name(method), err.message);
		rmdir(dir);
		return false;
	}
	unit_io = &io;
	unit_method = method;
	unit_dir = dir;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	t->fn();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000.0 + (t1.tv_nsec - t0.tv_nsec) / 1e6;

	armdb_io_fault_hook = NULL;
	armdb_io_shutdown(&io);
	unit_io = NULL;
	unit_dir = NULL;

	if (!cur_failed)
	{
		int			fds_after = open_fd_count();

		if (fds_before >= 0 && fds_after != fds_before)
			unit_fail(__FILE__, __LINE__,
					  "file descriptor leak: %d open before the test, %d after",
					  fds_before, fds_after);
		else if (fd_balance != 0)
			unit_fail(__FILE__, __LINE__,
					  "descriptor accounting: opens and closes through the "
					  "storage layer's hooks differ by %d", fd_balance);
	}

	if (getenv("ARMDB_UNIT_KEEP") == NULL)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("      kept %s\n", dir);

	if (cur_failed)
		printf("FAIL %s [%s]: %s\n", t->name, armdb_io_method_name(method),
			   cur_message);
	else
		printf("ok   %s [%s] (%.0f ms)\n", t->name,
			   armdb_io_method_name(method), ms);
	fflush(stdout);
	return !cur_failed;
}

int
main(int argc, char **argv)
{
	const char *filter = NULL;
	const char *tmpbase = getenv("TMPDIR");
	ArmdbIoMethod methods[2];
	int			nmethods = 0;
	int			passed = 0;
	int			failed = 0;
	ArmdbIo		probe;
	ArmdbError	err;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-v") == 0)
			verbose = true;
		else
			filter = argv[i];
	}
	if (tmpbase == NULL || tmpbase[0] == '\0')
		tmpbase = "/tmp";

	armdb_fd_opened_hook = count_fd_opened;
	armdb_fd_closed_hook = count_fd_closed;
	plain_file_hooks = armdb_file_hooks;
	armdb_file_hooks.open = count_open;
	armdb_file_hooks.close = count_close;
	armdb_file_hooks.open_cached = count_open_cached;
	armdb_file_hooks.close_cached = count_close_cached;
	setvbuf(stdout, NULL, _IOLBF, 0);

	methods[nmethods++] = ARMDB_IO_SYNC;
	armdb_error_clear(&err);
	if (armdb_io_init(&probe, ARMDB_IO_URING, &err))
	{
		if (probe.method == ARMDB_IO_URING)
			methods[nmethods++] = ARMDB_IO_URING;
		else
			printf("io_uring pass skipped: armdb_io_init(ARMDB_IO_URING) "
				   "returned method %s\n", armdb_io_method_name(probe.method));
		armdb_io_shutdown(&probe);
	}
	else
		printf("io_uring pass skipped: %s\n", err.message);

	for (int m = 0; m < nmethods; m++)
		for (int s = 0; unit_suites[s] != NULL; s++)
			for (const UnitTest *t = unit_suites[s]; t->name != NULL; t++)
			{
				if (!name_matches(t->name, filter))
					continue;
				if (run_one(t, methods[m], tmpbase))
					passed++;
				else
					failed++;
			}

	printf("%d passed, %d failed\n", passed, failed);
	return failed > 0 ? 1 : 0;
}
