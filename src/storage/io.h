/*-------------------------------------------------------------------------
 *
 * io.h
 *	  File I/O of the armdb storage layer: io_uring with a pread/pwrite
 *	  fallback, O_DIRECT, aligned buffers and a fault-injection hook.
 *
 * Each process owns one ArmdbIo.  armdb_io_init() tries to set up an
 * io_uring ring; when that fails (old kernel, seccomp, io_uring_disabled) and
 * the method is ARMDB_IO_AUTO, the process uses plain pread/pwrite/fdatasync
 * instead.  Both paths implement the same calls, with the same results, so
 * that the rest of the storage layer does not care which one runs; the unit
 * tests run every test on both.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_IO_H
#define ARMDB_STORAGE_IO_H

#include <sys/types.h>

#include "storage/status.h"

typedef enum ArmdbIoMethod
{
	ARMDB_IO_AUTO,				/* io_uring if it can be set up, else sync */
	ARMDB_IO_URING,				/* io_uring, or fail */
	ARMDB_IO_SYNC				/* pread/pwrite/fdatasync */
} ArmdbIoMethod;

#define ARMDB_IO_RING_DEPTH		64

typedef struct ArmdbIo
{
	ArmdbIoMethod method;		/* effective: ARMDB_IO_URING or ARMDB_IO_SYNC */
	void	   *ring;			/* struct io_uring *, when method is URING */
} ArmdbIo;

extern bool armdb_io_init(ArmdbIo *io, ArmdbIoMethod requested,
						  ArmdbError *err);
extern void armdb_io_shutdown(ArmdbIo *io);
extern const char *armdb_io_method_name(ArmdbIoMethod method);

/* Write all of buf at off (retrying short writes). */
extern bool armdb_io_pwrite(ArmdbIo *io, int fd, const void *buf, size_t len,
							off_t off, ArmdbError *err);

/*
 * Write all of buf at off and then fdatasync: one submission (linked SQEs)
 * with io_uring.
 */
extern bool armdb_io_pwrite_sync(ArmdbIo *io, int fd, const void *buf,
								 size_t len, off_t off, ArmdbError *err);

/* Read up to len bytes at off; *nread < len only at end of file. */
extern bool armdb_io_pread(ArmdbIo *io, int fd, void *buf, size_t len,
						   off_t off, size_t *nread, ArmdbError *err);

extern bool armdb_io_fdatasync(ArmdbIo *io, int fd, ArmdbError *err);

/*
 * Several independent reads submitted together (one device round trip for a
 * batch with io_uring).  Each request's nread is set; a read that returns
 * fewer bytes than asked is the end of its file, not an error.
 */
typedef struct ArmdbReadRequest
{
	int			fd;
	void	   *buf;
	size_t		len;
	off_t		off;
	size_t		nread;			/* out */
} ArmdbReadRequest;

extern bool armdb_io_read_batch(ArmdbIo *io, ArmdbReadRequest *reqs, int n,
								ArmdbError *err);

/* ----------------
 * Files and directories
 * ----------------
 */

/*
 * Open path with flags (O_CREAT implies mode 0600).  With direct, O_DIRECT
 * is asked for; a file system that refuses it (EINVAL, e.g. tmpfs) gets a
 * buffered descriptor and *is_direct tells the caller.
 */
extern int	armdb_file_open(const char *path, int flags, bool direct,
							bool *is_direct, ArmdbError *err);
extern void armdb_file_close(int fd);
extern bool armdb_file_size(int fd, const char *path, uint64 *size,
							ArmdbError *err);
extern bool armdb_file_truncate(int fd, const char *path, uint64 size,
								ArmdbError *err);
extern bool armdb_fsync_path(const char *path, bool is_dir, ArmdbError *err);
/*
 * Write a small file whole or not at all: image to tmp_path, fsynced,
 * renamed to path, the directory fsynced; tmp_path removed on failure.
 */
extern bool armdb_write_file_durably(const char *tmp_path, const char *path,
									 const char *dir, const void *image,
									 size_t len, ArmdbError *err);
extern bool armdb_durable_rename(const char *from, const char *to,
								 const char *dir, ArmdbError *err);
extern bool armdb_unlink(const char *path, ArmdbError *err);
/* mkdir -p, fsyncing every directory it created and its parent */
extern bool armdb_make_dir(const char *path, ArmdbError *err);

/*
 * Append id to a growing list of file numbers (*ids palloc'd, NULL when
 * empty, *cap its room).  False, with err, if out of memory.
 */
extern bool armdb_file_list_add(uint32 **ids, uint32 *n, uint32 *cap,
								uint32 id, ArmdbError *err);

/*
 * The data files of a shard directory: their numbers in *ids (palloc'd,
 * ascending; NULL when there are none) and how many in *n, and in *max_id
 * the highest number of any armdb file there (data, hint, .tmp, manifest),
 * 0 if none.  A missing directory holds none.
 */
extern bool armdb_list_data_files(const char *dir, uint32 **ids, int *n,
								  uint32 *max_id, ArmdbError *err);

/*
 * Cached files: a data file that a shard keeps using (armdb_shard_files),
 * opened once and identified by a handle.  armdb_file_cached_fd() gives a
 * descriptor for the next I/O on it; that descriptor is good only until
 * the next file is opened, since the backend's handles are PostgreSQL's
 * virtual file descriptors (fd.c closes the least recently used ones to
 * stay under max_files_per_process, and reopens them on demand).
 */
extern int	armdb_file_open_cached(const char *path, int flags, bool direct,
								   bool *is_direct, ArmdbError *err);
extern int	armdb_file_cached_fd(int handle, const char *path, ArmdbError *err);
extern void armdb_file_close_cached(int handle);

/*
 * The handle's descriptor as it is now, -1 if fd.c closed it to make room:
 * never opens anything, so calls between which nothing opens a file give
 * descriptors that all stay good (a batch of reads across files).
 */
extern int	armdb_file_current_fd(int handle);

/*
 * How descriptors are obtained.  The defaults are open(2) and close(2),
 * with a handle being the descriptor itself.  The backend (armdb_storage.c)
 * routes them through fd.c:
 *	 - armdb_file_open() is OpenTransientFile(): counted against
 *	   max_files_per_process, and closed at (sub)transaction abort, so that
 *	   an ERROR thrown while the storage layer holds a descriptor (a keydir
 *	   load running out of armdb.memory, say) leaks nothing;
 *	 - cached files are PathNameOpenFile() virtual descriptors.
 * An open hook returns -1 with errno set on failure.
 */
typedef struct ArmdbFileHooks
{
	int			(*open) (const char *path, int flags, mode_t mode);
	void		(*close) (int fd);
	int			(*open_cached) (const char *path, int flags, mode_t mode);
	int			(*cached_fd) (int handle);
	void		(*close_cached) (int handle);
	int			(*current_fd) (int handle);	/* -1 if closed; never opens */
} ArmdbFileHooks;

extern ArmdbFileHooks armdb_file_hooks;

/*
 * Accounting of descriptors outside files: the io_uring ring.  The opened
 * hook may refuse (EMFILE); the backend points these at
 * AcquireExternalFD()/ReleaseExternalFD().  The defaults allow everything.
 */
extern bool (*armdb_fd_opened_hook) (void);
extern void (*armdb_fd_closed_hook) (void);

/* ----------------
 * Aligned buffers for O_DIRECT
 * ----------------
 */
typedef struct ArmdbAlignedBuf
{
	char	   *data;			/* ARMDB_BLOCK_SIZE-aligned */
	size_t		size;
	void	   *raw;			/* what to free */
} ArmdbAlignedBuf;

extern bool armdb_aligned_alloc(ArmdbAlignedBuf *buf, size_t size,
								ArmdbError *err);
extern void armdb_aligned_free(ArmdbAlignedBuf *buf);

/* ----------------
 * Fault injection (tests)
 * ----------------
 *
 * When set, the hook is asked before every operation on both I/O paths; a
 * non-zero result is the errno the operation then fails with, without
 * touching the file.
 */
typedef enum ArmdbIoOp
{
	ARMDB_IOOP_WRITE,
	ARMDB_IOOP_READ,
	ARMDB_IOOP_FSYNC,
	ARMDB_IOOP_OPEN,
	ARMDB_IOOP_RENAME,
	ARMDB_IOOP_TRUNCATE
} ArmdbIoOp;

typedef int (*ArmdbIoFaultHook) (ArmdbIoOp op, int fd, off_t off, size_t len);
extern ArmdbIoFaultHook armdb_io_fault_hook;

/*
 * Waiting.  Told when a read, write or sync starts (start = true) and ends;
 * the backend reports these as wait events (pg_stat_activity shows
 * IO/DataFileRead, DataFileWrite, DataFileSync).  The default does nothing.
 */
extern void (*armdb_io_wait_hook) (ArmdbIoOp op, bool start);

#endif							/* ARMDB_STORAGE_IO_H */
