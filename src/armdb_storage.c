/*-------------------------------------------------------------------------
 *
 * armdb_storage.c
 *	  The storage layer inside a backend: this process's I/O context, its
 *	  descriptors through fd.c, the armdb data directory, and turning
 *	  storage errors into ereport()s.
 *
 * The storage layer itself (src/storage/) knows nothing of the server; this
 * file is where its conventions meet PostgreSQL's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "armdb.h"
#include "armdb_guc.h"

static ArmdbIo backend_io;
static bool backend_io_ready = false;
static bool backend_io_exit_registered = false;
static int	backend_io_requested;

/*
 * The io_uring ring's descriptor: AcquireExternalFD() refuses past its
 * share of max_files_per_process, so armdb cannot starve the descriptors
 * PostgreSQL itself needs.
 */
static bool
armdb_fd_opened(void)
{
	return AcquireExternalFD();
}

static void
armdb_fd_closed(void)
{
	ReleaseExternalFD();
}

/*
 * Files go through fd.c (see io.h): what the storage layer opens for the
 * length of one call is a transient file, which fd.c closes at
 * (sub)transaction abort when an ERROR leaves it open; the data files a
 * shard keeps using are virtual file descriptors, which fd.c closes and
 * reopens as its limit on open files requires -- one descriptor cache for
 * heap and armdb alike.
 */
static int
backend_open(const char *path, int flags, mode_t mode)
{
	return OpenTransientFilePerm(path, flags | PG_BINARY, mode);
}

static void
backend_close(int fd)
{
	CloseTransientFile(fd);
}

static int
backend_open_cached(const char *path, int flags, mode_t mode)
{
	return PathNameOpenFilePerm(path, flags | PG_BINARY, mode);
}

static int
backend_cached_fd(int handle)
{
	int			fd = FileGetRawDesc((File) handle);

	/* closed to make room for others: any operation through fd.c reopens */
	if (fd < 0 && FileSize((File) handle) >= 0)
		fd = FileGetRawDesc((File) handle);
	return fd;
}

static void
backend_close_cached(int handle)
{
	FileClose((File) handle);
}

/* -1 when fd.c closed it: FileGetRawDesc() alone reopens nothing */
static int
backend_current_fd(int handle)
{
	return FileGetRawDesc((File) handle);
}

static const ArmdbFileHooks backend_file_hooks = {
	backend_open, backend_close, backend_open_cached, backend_cached_fd,
	backend_close_cached, backend_current_fd
};

/* armdb's reads, writes and syncs as PostgreSQL's data file wait events */
static void
armdb_io_wait(ArmdbIoOp op, bool start)
{
	if (!start)
	{
		pgstat_report_wait_end();
		return;
	}
	switch (op)
	{
		case ARMDB_IOOP_READ:
			pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_READ);
			break;
		case ARMDB_IOOP_WRITE:
			pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
			break;
		default:
			pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_SYNC);
			break;
	}
}

static void
backend_io_shutdown(int code, Datum arg)
{
	if (backend_io_ready)
		armdb_io_shutdown(&backend_io);
	backend_io_ready = false;
}

/*
 * Called once in the postmaster at shared memory initialisation: hook the
 * storage layer's descriptor accounting into fd.c and create the armdb
 * directory.  Children inherit the hooks.
 */
void
armdb_storage_backend_init(void)
{
	char		path[MAXPGPATH];
	ArmdbError	err;

	armdb_fd_opened_hook = armdb_fd_opened;
	armdb_fd_closed_hook = armdb_fd_closed;
	armdb_file_hooks = backend_file_hooks;
	armdb_io_wait_hook = armdb_io_wait;

	armdb_data_dir_path(path);
	if (!armdb_make_dir(path, &err))
		armdb_report_storage_error(FATAL, &err);
}

/*
 * This process's I/O context, (re)created when armdb.io_method changed
 * since it was set up.
 */
ArmdbIo *
armdb_backend_io(void)
{
	ArmdbError	err;
	MemoryContext oldcontext;
	bool		ok;

	if (backend_io_ready && backend_io_requested == armdb_io_method)
		return &backend_io;

	if (backend_io_ready)
		armdb_io_shutdown(&backend_io);
	backend_io_ready = false;
	if (!backend_io_exit_registered)
	{
		on_proc_exit(backend_io_shutdown, (Datum) 0);
		backend_io_exit_registered = true;
	}

	oldcontext = MemoryContextSwitchTo(TopMemoryContext);
	ok = armdb_io_init(&backend_io, (ArmdbIoMethod) armdb_io_method, &err);
	MemoryContextSwitchTo(oldcontext);
	if (!ok && err.code == ARMDB_ERR_IO && err.sys_errno != EMFILE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("armdb cannot use io_uring in this process"),
				 errdetail("%s", err.message),
				 errhint("Set armdb.io_method to \"auto\" or \"sync\".")));
	if (!ok)
		armdb_report_storage_error(ERROR, &err);
	backend_io_ready = true;
	backend_io_requested = armdb_io_method;
	return &backend_io;
}

/* The directory holding every armdb file of this cluster. */
void
armdb_data_dir_path(char *path)
{
	if (armdb_data_directory != NULL && armdb_data_directory[0] != '\0')
		strlcpy(path, armdb_data_directory, MAXPGPATH);
	else
		snprintf(path, MAXPGPATH, "%s/armdb", DataDir);
}

/*
 * Raise a storage-layer error at elevel with the SQLSTATE its kind calls
 * for: file access errors by errno (ENOSPC is disk_full, ...), corruption
 * as data_corrupted.
 */
void
armdb_report_storage_error(int elevel, const ArmdbError *err)
{
	switch (err->code)
	{
		case ARMDB_ERR_IO:
			errno = err->sys_errno;
			if (err->sys_errno == ENOSPC)
			{
				char		dir[MAXPGPATH];

				armdb_data_dir_path(dir);
				ereport(elevel,
						(errcode(ERRCODE_DISK_FULL),
						 errmsg("armdb: %s", err->message),
						 errdetail("Nothing committed was lost; this statement's changes were not written."),
						 errhint("Free disk space on the file system holding \"%s\" (armdb.data_directory); reads keep working meanwhile.",
								 dir)));
				break;
			}
			ereport(elevel,
					(errcode_for_file_access(),
					 errmsg("armdb: %s", err->message)));
			break;
		case ARMDB_ERR_CORRUPT:
			ereport(elevel,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb: %s", err->message)));
			break;
		case ARMDB_ERR_NOMEM:
			ereport(elevel,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("armdb: %s", err->message)));
			break;
		case ARMDB_ERR_INVALID:
			ereport(elevel,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("armdb: %s", err->message)));
			break;
		case ARMDB_ERR_FAILED:
			ereport(elevel,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("armdb: %s", err->message),
					 errhint("Restart the server to recover the shard from its files.")));
			break;
		case ARMDB_ERR_KEY:
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("armdb: %s", err->message),
					 errhint("Set armdb.encryption_key_command to a command that prints the table's key (with the keys in use by older files after it) and restart the server.")));
			break;
		case ARMDB_OK:
			elog(elevel, "armdb: storage error reported without an error");
			break;
	}
}
