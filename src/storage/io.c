/*-------------------------------------------------------------------------
 *
 * io.c
 *	  io_uring and pread/pwrite implementations of armdb's file I/O.
 *
 * Every operation first asks armdb_io_fault_hook (tests inject ENOSPC/EIO
 * that way on both paths), then runs on the ring or with plain system
 * calls.  Short writes are continued, EINTR is retried, and failures come
 * back as ARMDB_ERR_IO with the errno.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/format.h"

ArmdbIoFaultHook armdb_io_fault_hook = NULL;

static bool
fd_opened_default(void)
{
	return true;
}

static void
fd_closed_default(void)
{
}

bool		(*armdb_fd_opened_hook) (void) = fd_opened_default;
void		(*armdb_fd_closed_hook) (void) = fd_closed_default;

static int
open_default(const char *path, int flags, mode_t mode)
{
	return open(path, flags | O_CLOEXEC, mode);
}

static void
close_default(int fd)
{
	close(fd);
}

static int
cached_fd_default(int handle)
{
	return handle;
}

ArmdbFileHooks armdb_file_hooks = {
	open_default, close_default, open_default, cached_fd_default, close_default,
	cached_fd_default
};

static void
io_wait_default(ArmdbIoOp op, bool start)
{
}

void		(*armdb_io_wait_hook) (ArmdbIoOp op, bool start) = io_wait_default;

static bool
fd_refused(ArmdbError *err, const char *what)
{
	return armdb_error(err, ARMDB_ERR_IO, EMFILE,
					   "could not open %s: too many files open in this process",
					   what);
}

static const char *const io_op_name[] = {
	[ARMDB_IOOP_WRITE] = "write",
	[ARMDB_IOOP_READ] = "read",
	[ARMDB_IOOP_FSYNC] = "fsync",
	[ARMDB_IOOP_OPEN] = "open",
	[ARMDB_IOOP_RENAME] = "rename",
	[ARMDB_IOOP_TRUNCATE] = "truncate",
};

/* Returns false (with err set) when the test hook injects a failure. */
static bool
fault_check(ArmdbIoOp op, int fd, off_t off, size_t len, ArmdbError *err)
{
	int			e;

	if (armdb_io_fault_hook == NULL)
		return true;
	e = armdb_io_fault_hook(op, fd, off, len);
	if (e == 0)
		return true;
	return armdb_error(err, ARMDB_ERR_IO, e,
					   "%s of %zu bytes at offset %lld failed: %s",
					   io_op_name[op], len, (long long) off, strerror(e));
}

static bool
io_failed(ArmdbError *err, ArmdbIoOp op, int e, size_t len, off_t off)
{
	return armdb_error(err, ARMDB_ERR_IO, e,
					   "%s of %zu bytes at offset %lld failed: %s",
					   io_op_name[op], len, (long long) off, strerror(e));
}

/*
 * After a short read: is off the end of the file?  Regular files read short
 * only at the end, but io_uring may also return short buffered reads, and
 * retrying at the end would, with O_DIRECT, be an unaligned read (EINVAL).
 * Direct I/O transfers whole blocks, so a retry before the end is aligned;
 * a direct read that stopped inside a block stopped at the end the file
 * had then, even if it has grown since (a hot standby's replay appends
 * while its readers read).
 */
static bool
at_end_of_file(int fd, off_t off)
{
	struct stat st;
	int			flags;

	if (off % ARMDB_BLOCK_SIZE != 0 &&
		(flags = fcntl(fd, F_GETFL)) >= 0 && (flags & O_DIRECT))
		return true;
	return fstat(fd, &st) != 0 || off >= st.st_size;
}

static bool
fsync_failed(ArmdbError *err, int e)
{
	return armdb_error(err, ARMDB_ERR_IO, e, "fdatasync failed: %s",
					   strerror(e));
}

const char *
armdb_io_method_name(ArmdbIoMethod method)
{
	switch (method)
	{
		case ARMDB_IO_AUTO:
			return "auto";
		case ARMDB_IO_URING:
			return "io_uring";
		case ARMDB_IO_SYNC:
			return "sync";
	}
	return "unknown";
}

bool
armdb_io_init(ArmdbIo *io, ArmdbIoMethod requested, ArmdbError *err)
{
	struct io_uring *ring;
	int			rc;

	io->method = ARMDB_IO_SYNC;
	io->ring = NULL;
	if (requested == ARMDB_IO_SYNC)
		return true;

	ring = armdb_alloc(err, sizeof(struct io_uring), "io_uring ring");
	if (ring == NULL)
		return false;
	if (!armdb_fd_opened_hook())
	{
		pfree(ring);
		return fd_refused(err, "an io_uring ring");
	}
	rc = io_uring_queue_init(ARMDB_IO_RING_DEPTH, ring, 0);
	if (rc < 0)
	{
		armdb_fd_closed_hook();
		pfree(ring);
		if (requested == ARMDB_IO_URING)
			return armdb_error(err, ARMDB_ERR_IO, -rc,
							   "could not set up io_uring: %s", strerror(-rc));
		/* ARMDB_IO_AUTO: the synchronous path does the same work */
		return true;
	}
	io->ring = ring;
	io->method = ARMDB_IO_URING;
	return true;
}

void
armdb_io_shutdown(ArmdbIo *io)
{
	if (io->ring != NULL)
	{
		io_uring_queue_exit((struct io_uring *) io->ring);
		armdb_fd_closed_hook();
		pfree(io->ring);
		io->ring = NULL;
	}
	io->method = ARMDB_IO_SYNC;
}

/* ----------------
 * io_uring path
 * ----------------
 *
 * Each call prepares at most ARMDB_IO_RING_DEPTH submissions, submits all of
 * them and reaps every completion before it returns, so no completion of
 * one call is ever seen by another.  The uring_* functions return
 * URING_OK, URING_OP_FAILED (the operation itself failed: err says why) or
 * URING_BROKEN (the ring could not submit or wait).  A broken ring is torn
 * down and the operation redone with plain system calls: writes, reads and
 * fsyncs are idempotent, so redoing one that partly ran is harmless.
 */
#define URING_OK		0
#define URING_OP_FAILED 1
#define URING_BROKEN	2

#define TAG_WRITE	UINT64CONST(0xFFFFFFFF00000001)
#define TAG_FSYNC	UINT64CONST(0xFFFFFFFF00000002)

/* Submit everything prepared; false if the ring refuses. */
static bool
uring_submit_all(struct io_uring *ring)
{
	int			tries = 0;

	while (io_uring_sq_ready(ring) > 0)
	{
		int			rc = io_uring_submit(ring);

		if (rc >= 0)
			continue;
		if ((rc == -EINTR || rc == -EAGAIN) && ++tries < 1000)
		{
			if (rc == -EAGAIN)
				usleep(1000);	/* kernel short of memory: give it a moment */
			continue;
		}
		return false;
	}
	return true;
}

/* Wait for one completion, retrying interruptions by signals. */
static bool
uring_wait(struct io_uring *ring, struct io_uring_cqe **cqe)
{
	int			rc;
	int			tries = 0;

	do
		rc = io_uring_wait_cqe(ring, cqe);
	while ((rc == -EINTR || rc == -EAGAIN) && ++tries < 1000000);
	return rc == 0;
}

/*
 * Write all of buf, then (if sync) fdatasync, with the sync linked to the
 * write so both go down in one submission.  A short write cancels the linked
 * fsync; the loop then writes the rest and syncs with the last piece.
 */
static int
uring_write(struct io_uring *ring, int fd, const char *buf, size_t len,
			off_t off, bool sync, ArmdbError *err)
{
	size_t		done = 0;

	for (;;)
	{
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		int			wanted = 0;
		int			write_res = 0;
		int			fsync_res = 0;

		if (done < len)
		{
			sqe = io_uring_get_sqe(ring);
			if (sqe == NULL)
				return URING_BROKEN;
			io_uring_prep_write(sqe, fd, buf + done, len - done, off + done);
			io_uring_sqe_set_data64(sqe, TAG_WRITE);
			if (sync)
				sqe->flags |= IOSQE_IO_LINK;
			wanted++;
		}
		if (sync)
		{
			sqe = io_uring_get_sqe(ring);
			if (sqe == NULL)
				return URING_BROKEN;
			io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
			io_uring_sqe_set_data64(sqe, TAG_FSYNC);
			wanted++;
		}
		if (!uring_submit_all(ring))
			return URING_BROKEN;

		for (int i = 0; i < wanted; i++)
		{
			if (!uring_wait(ring, &cqe))
				return URING_BROKEN;
			if (io_uring_cqe_get_data64(cqe) == TAG_WRITE)
				write_res = cqe->res;
			else
				fsync_res = cqe->res;
			io_uring_cqe_seen(ring, cqe);
		}

		if (done < len)
		{
			if (write_res < 0 && write_res != -EINTR && write_res != -EAGAIN)
			{
				io_failed(err, ARMDB_IOOP_WRITE, -write_res, len - done,
						  off + done);
				return URING_OP_FAILED;
			}
			if (write_res == 0)
			{
				io_failed(err, ARMDB_IOOP_WRITE, ENOSPC, len - done, off + done);
				return URING_OP_FAILED;
			}
			if (write_res > 0)
				done += write_res;
			if (done < len)
				continue;		/* short write; a linked fsync was cancelled */
		}
		if (!sync)
			return URING_OK;
		/* the fsync that counts is one that ran after the last piece */
		if (fsync_res == -ECANCELED || fsync_res == -EINTR)
			continue;			/* resubmit just the fsync */
		if (fsync_res < 0)
		{
			fsync_failed(err, -fsync_res);
			return URING_OP_FAILED;
		}
		return URING_OK;
	}
}

/*
 * Submit the reads (in rounds of the ring's depth), then continue any short
 * one that is not at end of file.  Each round reaps all its completions,
 * even after a failed read, before anything is reported.
 */
static int
uring_read_batch(struct io_uring *ring, ArmdbReadRequest *reqs, int n,
				 ArmdbError *err)
{
	int			failed_errno = 0;
	ArmdbReadRequest *failed_req = NULL;

	for (int first = 0; first < n; first += ARMDB_IO_RING_DEPTH)
	{
		int			count = Min(n - first, ARMDB_IO_RING_DEPTH);
		bool		again = true;

		while (again && failed_req == NULL)
		{
			int			wanted = 0;

			again = false;
			for (int i = first; i < first + count; i++)
			{
				ArmdbReadRequest *r = &reqs[i];
				struct io_uring_sqe *sqe;

				if (r->nread == r->len)
					continue;
				sqe = io_uring_get_sqe(ring);
				if (sqe == NULL)
					return URING_BROKEN;
				io_uring_prep_read(sqe, r->fd, (char *) r->buf + r->nread,
								   r->len - r->nread, r->off + r->nread);
				io_uring_sqe_set_data64(sqe, (uint64) i);
				wanted++;
			}
			if (wanted == 0)
				break;
			if (!uring_submit_all(ring))
				return URING_BROKEN;
			for (int k = 0; k < wanted; k++)
			{
				struct io_uring_cqe *cqe;
				ArmdbReadRequest *r;
				int			res;

				if (!uring_wait(ring, &cqe))
					return URING_BROKEN;
				r = &reqs[io_uring_cqe_get_data64(cqe)];
				res = cqe->res;
				io_uring_cqe_seen(ring, cqe);
				if (res == -EINTR || res == -EAGAIN)
					again = true;
				else if (res < 0)
				{
					failed_errno = -res;
					failed_req = r;
				}
				else if (res == 0)
					r->len = r->nread;	/* end of file */
				else
				{
					r->nread += res;
					if (r->nread < r->len)
					{
						if (at_end_of_file(r->fd, r->off + r->nread))
							r->len = r->nread;
						else
							again = true;
					}
				}
			}
		}
		if (failed_req != NULL)
		{
			io_failed(err, ARMDB_IOOP_READ, failed_errno,
					  failed_req->len - failed_req->nread,
					  failed_req->off + failed_req->nread);
			return URING_OP_FAILED;
		}
	}
	return URING_OK;
}

/* The ring failed as a whole: drop it and carry on without io_uring. */
static void
uring_broken(ArmdbIo *io)
{
	armdb_io_shutdown(io);
}

/* ----------------
 * Synchronous path
 * ----------------
 */
static bool
sync_write(int fd, const char *buf, size_t len, off_t off, ArmdbError *err)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		rc = pwrite(fd, buf + done, len - done, off + done);

		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			return io_failed(err, ARMDB_IOOP_WRITE, errno, len - done,
							 off + done);
		}
		if (rc == 0)
			return io_failed(err, ARMDB_IOOP_WRITE, ENOSPC, len - done,
							 off + done);
		done += rc;
	}
	return true;
}

static bool
sync_read(int fd, char *buf, size_t len, off_t off, size_t *nread,
		  ArmdbError *err)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		rc = pread(fd, buf + done, len - done, off + done);

		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			return io_failed(err, ARMDB_IOOP_READ, errno, len - done,
							 off + done);
		}
		if (rc == 0)
			break;
		done += rc;
		if (done < len && at_end_of_file(fd, off + done))
			break;
	}
	*nread = done;
	return true;
}

static bool
sync_fsync(int fd, ArmdbError *err)
{
	if (fdatasync(fd) != 0)
		return fsync_failed(err, errno);
	return true;
}

/* ----------------
 * The interface
 * ----------------
 */
static bool
io_pwrite_impl(ArmdbIo *io, int fd, const void *buf, size_t len, off_t off,
				ArmdbError *err)
{
	if (!fault_check(ARMDB_IOOP_WRITE, fd, off, len, err))
		return false;
	if (io->method == ARMDB_IO_URING)
	{
		int			rc = uring_write(io->ring, fd, buf, len, off, false, err);

		if (rc != URING_BROKEN)
			return rc == URING_OK;
		uring_broken(io);
	}
	return sync_write(fd, buf, len, off, err);
}

static bool
io_pwrite_sync_impl(ArmdbIo *io, int fd, const void *buf, size_t len,
					 off_t off, ArmdbError *err)
{
	if (!fault_check(ARMDB_IOOP_WRITE, fd, off, len, err) ||
		!fault_check(ARMDB_IOOP_FSYNC, fd, 0, 0, err))
		return false;
	if (io->method == ARMDB_IO_URING)
	{
		int			rc = uring_write(io->ring, fd, buf, len, off, true, err);

		if (rc != URING_BROKEN)
			return rc == URING_OK;
		uring_broken(io);
	}
	return sync_write(fd, buf, len, off, err) && sync_fsync(fd, err);
}

bool
armdb_io_pread(ArmdbIo *io, int fd, void *buf, size_t len, off_t off,
			   size_t *nread, ArmdbError *err)
{
	ArmdbReadRequest req = {fd, buf, len, off, 0};

	if (!armdb_io_read_batch(io, &req, 1, err))
		return false;
	*nread = req.nread;
	return true;
}

static bool
io_fdatasync_impl(ArmdbIo *io, int fd, ArmdbError *err)
{
	if (!fault_check(ARMDB_IOOP_FSYNC, fd, 0, 0, err))
		return false;
	if (io->method == ARMDB_IO_URING)
	{
		int			rc = uring_write(io->ring, fd, NULL, 0, 0, true, err);

		if (rc != URING_BROKEN)
			return rc == URING_OK;
		uring_broken(io);
	}
	return sync_fsync(fd, err);
}

static bool
io_read_batch_impl(ArmdbIo *io, ArmdbReadRequest *reqs, int n,
					ArmdbError *err)
{
	for (int i = 0; i < n; i++)
	{
		if (!fault_check(ARMDB_IOOP_READ, reqs[i].fd, reqs[i].off,
						 reqs[i].len, err))
			return false;
		reqs[i].nread = 0;
	}

	/*
	 * One read gains nothing from the ring: submitting it and waiting for
	 * it is a system call like pread's, and more work besides (8% of a GIN
	 * query's 200 point reads through the page cache, measured).
	 */
	if (io->method == ARMDB_IO_URING && n > 1)
	{
		/* uring_read_batch shortens len at end of file; keep the caller's */
		size_t	   *asked = armdb_alloc(err, sizeof(size_t) * n, "read batch");
		int			rc;

		if (asked == NULL)
			return false;
		for (int i = 0; i < n; i++)
			asked[i] = reqs[i].len;
		rc = uring_read_batch(io->ring, reqs, n, err);
		for (int i = 0; i < n; i++)
			reqs[i].len = asked[i];
		pfree(asked);
		if (rc != URING_BROKEN)
			return rc == URING_OK;
		uring_broken(io);
		for (int i = 0; i < n; i++)
			reqs[i].nread = 0;
	}
	for (int i = 0; i < n; i++)
		if (!sync_read(reqs[i].fd, reqs[i].buf, reqs[i].len, reqs[i].off,
					   &reqs[i].nread, err))
			return false;
	return true;
}

/* ----------------
 * Files and directories
 * ----------------
 */
/*
 * open with O_DIRECT when asked, falling back to buffered I/O on file
 * systems that refuse it, through the given hook.
 */
static int
file_open(int (*open_fn) (const char *, int, mode_t), const char *path,
		  int flags, bool direct, bool *is_direct, ArmdbError *err)
{
	int			fd;

	if (!fault_check(ARMDB_IOOP_OPEN, -1, 0, 0, err))
	{
		armdb_error_context(err, "could not open file \"%s\"", path);
		return -1;
	}
	fd = open_fn(path, flags | (direct ? O_DIRECT : 0), 0600);
	if (fd < 0 && direct && errno == EINVAL)
	{
		/* the file system does not do O_DIRECT (tmpfs): buffered I/O */
		direct = false;
		fd = open_fn(path, flags, 0600);
	}
	if (fd < 0)
	{
		int			save_errno = errno;

		armdb_error(err, ARMDB_ERR_IO, save_errno,
					"could not open file \"%s\": %s", path,
					strerror(save_errno));
		return -1;
	}
	if (is_direct)
		*is_direct = direct;
	return fd;
}

int
armdb_file_open(const char *path, int flags, bool direct, bool *is_direct,
				ArmdbError *err)
{
	return file_open(armdb_file_hooks.open, path, flags, direct, is_direct,
					 err);
}

void
armdb_file_close(int fd)
{
	if (fd >= 0)
		armdb_file_hooks.close(fd);
}

int
armdb_file_open_cached(const char *path, int flags, bool direct,
					   bool *is_direct, ArmdbError *err)
{
	return file_open(armdb_file_hooks.open_cached, path, flags, direct,
					 is_direct, err);
}

int
armdb_file_cached_fd(int handle, const char *path, ArmdbError *err)
{
	int			fd = armdb_file_hooks.cached_fd(handle);

	if (fd < 0)
		armdb_error(err, ARMDB_ERR_IO, errno,
					"could not reopen file \"%s\": %s", path, strerror(errno));
	return fd;
}

int
armdb_file_current_fd(int handle)
{
	return armdb_file_hooks.current_fd(handle);
}

void
armdb_file_close_cached(int handle)
{
	if (handle >= 0)
		armdb_file_hooks.close_cached(handle);
}

bool
armdb_file_size(int fd, const char *path, uint64 *size, ArmdbError *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not stat file \"%s\": %s", path,
						   strerror(errno));
	*size = (uint64) st.st_size;
	return true;
}

bool
armdb_file_truncate(int fd, const char *path, uint64 size, ArmdbError *err)
{
	if (!fault_check(ARMDB_IOOP_TRUNCATE, fd, size, 0, err))
		return armdb_error_context(err, "could not truncate file \"%s\"", path);
	if (ftruncate(fd, (off_t) size) != 0)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not truncate file \"%s\" to %llu bytes: %s",
						   path, (unsigned long long) size, strerror(errno));
	return true;
}

bool
armdb_fsync_path(const char *path, bool is_dir, ArmdbError *err)
{
	int			fd;
	int			rc;

	if (!fault_check(ARMDB_IOOP_FSYNC, -1, 0, 0, err))
		return armdb_error_context(err, "could not fsync \"%s\"", path);
	fd = armdb_file_hooks.open(path, is_dir ? O_RDONLY : O_RDWR, 0);
	if (fd < 0)
	{
		int			save_errno = errno;

		return armdb_error(err, ARMDB_ERR_IO, save_errno,
						   "could not open \"%s\" to fsync it: %s", path,
						   strerror(save_errno));
	}
	rc = is_dir ? fsync(fd) : fdatasync(fd);
	if (rc != 0)
	{
		int			save_errno = errno;

		armdb_file_close(fd);
		return armdb_error(err, ARMDB_ERR_IO, save_errno,
						   "could not fsync \"%s\": %s", path,
						   strerror(save_errno));
	}
	armdb_file_close(fd);
	return true;
}

/*
 * rename() then fsync of the directory: the caller has already made the
 * source file durable, so after this the new name is durable too.
 */
bool
armdb_durable_rename(const char *from, const char *to, const char *dir,
					 ArmdbError *err)
{
	if (!fault_check(ARMDB_IOOP_RENAME, -1, 0, 0, err))
		return armdb_error_context(err, "could not rename \"%s\"", from);
	if (rename(from, to) != 0)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not rename \"%s\" to \"%s\": %s",
						   from, to, strerror(errno));
	return armdb_fsync_path(dir, true, err);
}

bool
armdb_write_file_durably(const char *tmp_path, const char *path,
						 const char *dir, const void *image, size_t len,
						 ArmdbError *err)
{
	ArmdbIo		sync_io = {ARMDB_IO_SYNC, NULL};
	ArmdbError	ignore;
	int			fd;
	bool		ok;

	fd = armdb_file_open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, false, NULL,
						 err);
	if (fd < 0)
		return false;
	ok = armdb_io_pwrite_sync(&sync_io, fd, image, len, 0, err);
	armdb_file_close(fd);
	if (!ok)
		armdb_error_context(err, "could not write \"%s\"", tmp_path);
	else
		ok = armdb_durable_rename(tmp_path, path, dir, err);
	if (!ok)
		armdb_unlink(tmp_path, &ignore);
	return ok;
}

bool
armdb_unlink(const char *path, ArmdbError *err)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not remove file \"%s\": %s", path,
						   strerror(errno));
	return true;
}

static int
cmp_uint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y;
}

bool
armdb_file_list_add(uint32 **ids, uint32 *n, uint32 *cap, uint32 id,
					ArmdbError *err)
{
	if (*n == *cap)
	{
		uint32		newcap = Max(16, *cap * 2);
		uint32	   *bigger = armdb_alloc(err, sizeof(uint32) * newcap,
										 "file list");

		if (bigger == NULL)
			return false;
		if (*ids != NULL)
		{
			memcpy(bigger, *ids, sizeof(uint32) * *n);
			pfree(*ids);
		}
		*ids = bigger;
		*cap = newcap;
	}
	(*ids)[(*n)++] = id;
	return true;
}

bool
armdb_list_data_files(const char *dir, uint32 **ids, int *n, uint32 *max_id,
					  ArmdbError *err)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	uint32		count = 0;
	uint32		cap = 0;
	bool		ok = true;

	*ids = NULL;
	*n = 0;
	*max_id = 0;
	if (d == NULL)
		return errno == ENOENT ? true :
			armdb_error(err, ARMDB_ERR_IO, errno,
						"could not open directory \"%s\": %s", dir,
						strerror(errno));
	while (ok && (errno = 0, de = readdir(d)) != NULL)
	{
		uint32		id;
		ArmdbFileKind kind;

		if (!armdb_file_name_parse(de->d_name, &id, &kind))
			continue;
		*max_id = Max(*max_id, id);
		if (kind != ARMDB_FILE_DATA)
			continue;
		ok = armdb_file_list_add(ids, &count, &cap, id, err);
	}
	if (ok && errno != 0)
		ok = armdb_error(err, ARMDB_ERR_IO, errno,
						 "could not read directory \"%s\": %s", dir,
						 strerror(errno));
	closedir(d);
	if (!ok)
	{
		if (*ids != NULL)
			pfree(*ids);
		*ids = NULL;
		return false;
	}
	if (count > 1)
		qsort(*ids, count, sizeof(uint32), cmp_uint32);
	*n = (int) count;
	return true;
}

bool
armdb_make_dir(const char *path, ArmdbError *err)
{
	char		buf[MAXPGPATH];
	size_t		len = strlen(path);

	if (len >= sizeof(buf))
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "directory path \"%s\" is too long", path);
	strlcpy(buf, path, sizeof(buf));

	/* each component in turn; a component we create is fsynced with parent */
	for (size_t i = 1; i <= len; i++)
	{
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == 0)
		{
			char		parent[MAXPGPATH];
			char	   *slash;

			strlcpy(parent, buf, sizeof(parent));
			slash = strrchr(parent, '/');
			if (slash == parent)
				slash[1] = '\0';
			else if (slash != NULL)
				*slash = '\0';
			else
				strlcpy(parent, ".", sizeof(parent));
			if (!armdb_fsync_path(buf, true, err) ||
				!armdb_fsync_path(parent, true, err))
				return false;
		}
		else if (errno != EEXIST)
			return armdb_error(err, ARMDB_ERR_IO, errno,
							   "could not create directory \"%s\": %s", buf,
							   strerror(errno));
		if (i < len)
			buf[i] = '/';
	}
	return true;
}

/* ----------------
 * Aligned buffers
 * ----------------
 */
bool
armdb_aligned_alloc(ArmdbAlignedBuf *buf, size_t size, ArmdbError *err)
{
	buf->raw = armdb_alloc(err, size + ARMDB_BLOCK_SIZE, "I/O buffer");
	if (buf->raw == NULL)
		return false;
	buf->data = (char *) TYPEALIGN(ARMDB_BLOCK_SIZE, buf->raw);
	buf->size = size;
	return true;
}

void
armdb_aligned_free(ArmdbAlignedBuf *buf)
{
	if (buf->raw != NULL)
		pfree(buf->raw);
	buf->raw = NULL;
	buf->data = NULL;
	buf->size = 0;
}

/* ----------------
 * The interface: the operations above, reported to the wait hook
 * ----------------
 */
bool
armdb_io_pwrite(ArmdbIo *io, int fd, const void *buf, size_t len, off_t off,
				ArmdbError *err)
{
	bool		ok;

	armdb_io_wait_hook(ARMDB_IOOP_WRITE, true);
	ok = io_pwrite_impl(io, fd, buf, len, off, err);
	armdb_io_wait_hook(ARMDB_IOOP_WRITE, false);
	return ok;
}

bool
armdb_io_pwrite_sync(ArmdbIo *io, int fd, const void *buf, size_t len,
					 off_t off, ArmdbError *err)
{
	bool		ok;

	/* the sync is what takes the time */
	armdb_io_wait_hook(ARMDB_IOOP_FSYNC, true);
	ok = io_pwrite_sync_impl(io, fd, buf, len, off, err);
	armdb_io_wait_hook(ARMDB_IOOP_FSYNC, false);
	return ok;
}

bool
armdb_io_fdatasync(ArmdbIo *io, int fd, ArmdbError *err)
{
	bool		ok;

	armdb_io_wait_hook(ARMDB_IOOP_FSYNC, true);
	ok = io_fdatasync_impl(io, fd, err);
	armdb_io_wait_hook(ARMDB_IOOP_FSYNC, false);
	return ok;
}

bool
armdb_io_read_batch(ArmdbIo *io, ArmdbReadRequest *reqs, int n,
					ArmdbError *err)
{
	bool		ok;

	armdb_io_wait_hook(ARMDB_IOOP_READ, true);
	ok = io_read_batch_impl(io, reqs, n, err);
	armdb_io_wait_hook(ARMDB_IOOP_READ, false);
	return ok;
}
