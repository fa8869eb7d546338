/*-------------------------------------------------------------------------
 *
 * unit_io.c
 *	  Tests of io.c on both I/O paths, and of how the shard and recovery
 *	  code handle I/O failures injected through armdb_io_fault_hook.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define BLK ARMDB_BLOCK_SIZE

static int
open_data(const char *name, bool direct, bool *is_direct)
{
	char		path[MAXPGPATH];
	ArmdbError	err;
	int			fd;

	unit_path(path, name);
	armdb_error_clear(&err);
	fd = armdb_file_open(path, O_RDWR | O_CREAT, direct, is_direct, &err);
	if (fd < 0)
		unit_fail(__FILE__, __LINE__, "armdb_file_open(%s): %s", path,
				  err.message);
	return fd;
}

static void
test_io_roundtrip(void)
{
	ArmdbError	err;
	ArmdbAlignedBuf wbuf;
	ArmdbAlignedBuf rbuf;
	bool		is_direct = false;
	size_t		nread;
	uint64		size;
	int			fd;
	int			flags;

	fd = open_data("rt.data", true, &is_direct);
	if (fd < 0)
		return;
	flags = fcntl(fd, F_GETFL);
	ASSERT_MSG(((flags & O_DIRECT) != 0) == is_direct,
			   "is_direct %d but O_DIRECT flag %d", is_direct,
			   (flags & O_DIRECT) != 0);
	unit_note("O_DIRECT: %s", is_direct ? "yes" : "no (file system refused)");

	ASSERT_OK(armdb_aligned_alloc(&wbuf, 3 * BLK, &err));
	ASSERT_OK(armdb_aligned_alloc(&rbuf, 8 * BLK, &err));
	ASSERT_EQ(((uintptr_t) wbuf.data) % BLK, 0);
	ASSERT_EQ(((uintptr_t) rbuf.data) % BLK, 0);
	ASSERT_EQ(wbuf.size, 3 * BLK);
	unit_fill(wbuf.data, 3 * BLK, 1);

	ASSERT_OK(armdb_io_pwrite(unit_io, fd, wbuf.data, 3 * BLK, BLK, &err));
	ASSERT_OK(armdb_file_size(fd, "rt.data", &size, &err));
	ASSERT_EQ(size, 4 * BLK);

	/* exact read */
	memset(rbuf.data, 0xAA, 8 * BLK);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, 3 * BLK, BLK, &nread, &err));
	ASSERT_EQ(nread, 3 * BLK);
	ASSERT(memcmp(rbuf.data, wbuf.data, 3 * BLK) == 0);

	/* from 0: a hole of zeros, then the data; short at end of file */
	memset(rbuf.data, 0xAA, 8 * BLK);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, 8 * BLK, 0, &nread, &err));
	ASSERT_EQ(nread, 4 * BLK);
	for (int i = 0; i < BLK; i++)
		ASSERT_EQ(rbuf.data[i], 0);
	ASSERT(memcmp(rbuf.data + BLK, wbuf.data, 3 * BLK) == 0);

	/* at and past end of file */
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, 2 * BLK, 3 * BLK, &nread, &err));
	ASSERT_EQ(nread, BLK);
	ASSERT(memcmp(rbuf.data, wbuf.data + 2 * BLK, BLK) == 0);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, BLK, 4 * BLK, &nread, &err));
	ASSERT_EQ(nread, 0);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, BLK, 100 * BLK, &nread, &err));
	ASSERT_EQ(nread, 0);

	/* write + sync, overwrite in the middle */
	unit_fill(wbuf.data, 2 * BLK, 2);
	ASSERT_OK(armdb_io_pwrite_sync(unit_io, fd, wbuf.data, 2 * BLK, 2 * BLK, &err));
	ASSERT_OK(armdb_file_size(fd, "rt.data", &size, &err));
	ASSERT_EQ(size, 4 * BLK);
	ASSERT_OK(armdb_io_pwrite_sync(unit_io, fd, wbuf.data, BLK, 6 * BLK, &err));
	ASSERT_OK(armdb_file_size(fd, "rt.data", &size, &err));
	ASSERT_EQ(size, 7 * BLK);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, 2 * BLK, 2 * BLK, &nread, &err));
	ASSERT_EQ(nread, 2 * BLK);
	ASSERT(memcmp(rbuf.data, wbuf.data, 2 * BLK) == 0);
	ASSERT_OK(armdb_io_fdatasync(unit_io, fd, &err));

	ASSERT_OK(armdb_file_truncate(fd, "rt.data", 2 * BLK + 100, &err));
	ASSERT_OK(armdb_file_size(fd, "rt.data", &size, &err));
	ASSERT_EQ(size, 2 * BLK + 100);
	/* reading the partial last block of a file */
	ASSERT_OK(armdb_io_pread(unit_io, fd, rbuf.data, 2 * BLK, 2 * BLK, &nread, &err));
	ASSERT_EQ(nread, 100);
	ASSERT(memcmp(rbuf.data, wbuf.data, 100) == 0);

	armdb_file_close(fd);
	armdb_aligned_free(&wbuf);
	armdb_aligned_free(&rbuf);
	ASSERT(wbuf.data == NULL && wbuf.raw == NULL);
}

static void
test_io_buffered_unaligned(void)
{
	ArmdbError	err;
	bool		is_direct = true;
	char	   *buf = malloc(3001);
	char	   *rd = malloc(4000);
	size_t		nread;
	int			fd = open_data("u.data", false, &is_direct);

	if (fd < 0)
		return;
	ASSERT(!is_direct);
	ASSERT_EQ(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	unit_fill(buf, 3001, 5);
	ASSERT_OK(armdb_io_pwrite(unit_io, fd, buf + 1, 3000, 13, &err));
	ASSERT_OK(armdb_io_pwrite_sync(unit_io, fd, buf, 7, 3013, &err));
	ASSERT_OK(armdb_io_pread(unit_io, fd, rd, 4000, 0, &nread, &err));
	ASSERT_EQ(nread, 3020);
	for (int i = 0; i < 13; i++)
		ASSERT_EQ(rd[i], 0);
	ASSERT(memcmp(rd + 13, buf + 1, 3000) == 0);
	ASSERT(memcmp(rd + 3013, buf, 7) == 0);
	ASSERT_OK(armdb_io_pread(unit_io, fd, rd, 10, 3015, &nread, &err));
	ASSERT_EQ(nread, 5);
	armdb_file_close(fd);
	free(buf);
	free(rd);
}

static void
test_io_read_batch(void)
{
	ArmdbError	err;
	ArmdbAlignedBuf a;
	ArmdbAlignedBuf b;
	ArmdbAlignedBuf rd;
	ArmdbReadRequest reqs[150];
	const int	nblk_a = 40;
	const int	nblk_b = 10;
	int			fda = open_data("a.data", true, NULL);
	int			fdb = open_data("b.data", true, NULL);

	if (fda < 0 || fdb < 0)
		return;
	ASSERT_OK(armdb_aligned_alloc(&a, nblk_a * BLK, &err));
	ASSERT_OK(armdb_aligned_alloc(&b, nblk_b * BLK, &err));
	ASSERT_OK(armdb_aligned_alloc(&rd, lengthof(reqs) * 2 * BLK, &err));
	unit_fill(a.data, a.size, 10);
	unit_fill(b.data, b.size, 11);
	ASSERT_OK(armdb_io_pwrite(unit_io, fda, a.data, a.size, 0, &err));
	ASSERT_OK(armdb_io_pwrite(unit_io, fdb, b.data, b.size, 0, &err));

	/* more requests than the ring is deep; some past end of file */
	for (int i = 0; i < lengthof(reqs); i++)
	{
		reqs[i].fd = (i % 3 == 0) ? fdb : fda;
		reqs[i].buf = rd.data + (size_t) i * 2 * BLK;
		reqs[i].len = (i % 2 + 1) * BLK;
		reqs[i].off = (off_t) (i % 45) * BLK;
		reqs[i].nread = 12345;
	}
	memset(rd.data, 0xAA, rd.size);
	ASSERT_OK(armdb_io_read_batch(unit_io, reqs, lengthof(reqs), &err));
	for (int i = 0; i < lengthof(reqs); i++)
	{
		bool		is_b = reqs[i].fd == fdb;
		size_t		fsize = (is_b ? nblk_b : nblk_a) * BLK;
		const char *src = is_b ? b.data : a.data;
		size_t		want = 0;

		if ((size_t) reqs[i].off < fsize)
			want = Min(reqs[i].len, fsize - reqs[i].off);
		ASSERT_EQ(reqs[i].len, (i % 2 + 1) * BLK);
		ASSERT_MSG(reqs[i].nread == want, "request %d: nread %zu, want %zu",
				   i, reqs[i].nread, want);
		ASSERT_MSG(memcmp(reqs[i].buf, src + reqs[i].off, want) == 0,
				   "request %d: wrong bytes", i);
	}

	/* an empty batch */
	ASSERT_OK(armdb_io_read_batch(unit_io, reqs, 0, &err));

	armdb_file_close(fda);
	armdb_file_close(fdb);
	armdb_aligned_free(&a);
	armdb_aligned_free(&b);
	armdb_aligned_free(&rd);
}

static void
test_io_fault_hook(void)
{
	ArmdbError	err;
	ArmdbAlignedBuf buf;
	ArmdbReadRequest reqs[4];
	char		path[MAXPGPATH];
	char		path2[MAXPGPATH];
	size_t		nread;
	uint64		size;
	int			fd = open_data("f.data", true, NULL);

	if (fd < 0)
		return;
	ASSERT_OK(armdb_aligned_alloc(&buf, 2 * BLK, &err));
	unit_fill(buf.data, 2 * BLK, 3);
	ASSERT_OK(armdb_io_pwrite(unit_io, fd, buf.data, BLK, 0, &err));

	/* write: fails with the injected errno, file untouched, hook saw args */
	unit_fault_set(ARMDB_IOOP_WRITE, ENOSPC, 0, -1);
	ASSERT_FAILS(armdb_io_pwrite(unit_io, fd, buf.data, 2 * BLK, BLK, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOSPC);
	ASSERT_EQ(unit_fault.last_fd, fd);
	ASSERT_EQ(unit_fault.last_off, BLK);
	ASSERT_EQ(unit_fault.last_len, 2 * BLK);
	ASSERT_FAILS(armdb_io_pwrite_sync(unit_io, fd, buf.data, BLK, BLK, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOSPC);
	ASSERT_OK(armdb_file_size(fd, "f.data", &size, &err));
	ASSERT_EQ(size, BLK);
	/* reads are not writes */
	ASSERT_OK(armdb_io_pread(unit_io, fd, buf.data + BLK, BLK, 0, &nread, &err));
	ASSERT_EQ(nread, BLK);

	/* fail once, then pass */
	unit_fault_set(ARMDB_IOOP_WRITE, EIO, 0, 1);
	ASSERT_FAILS(armdb_io_pwrite(unit_io, fd, buf.data, BLK, BLK, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	ASSERT_OK(armdb_io_pwrite(unit_io, fd, buf.data, BLK, BLK, &err));
	ASSERT_OK(armdb_file_size(fd, "f.data", &size, &err));
	ASSERT_EQ(size, 2 * BLK);

	/* fsync */
	unit_fault_set(ARMDB_IOOP_FSYNC, EIO, 0, -1);
	ASSERT_FAILS(armdb_io_fdatasync(unit_io, fd, &err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	ASSERT_FAILS(armdb_io_pwrite_sync(unit_io, fd, buf.data, BLK, 0, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);

	/* read */
	unit_fault_set(ARMDB_IOOP_READ, EIO, 0, -1);
	ASSERT_FAILS(armdb_io_pread(unit_io, fd, buf.data, BLK, 0, &nread, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	/* the third request of a batch */
	unit_fault_set(ARMDB_IOOP_READ, EIO, 2, -1);
	for (int i = 0; i < lengthof(reqs); i++)
	{
		reqs[i].fd = fd;
		reqs[i].buf = buf.data;
		reqs[i].len = BLK;
		reqs[i].off = 0;
	}
	ASSERT_FAILS(armdb_io_read_batch(unit_io, reqs, lengthof(reqs), &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);

	/* open, truncate, rename */
	unit_path(path, "g.data");
	unit_fault_set(ARMDB_IOOP_OPEN, EMFILE, 0, -1);
	armdb_error_clear(&err);
	ASSERT_EQ(armdb_file_open(path, O_RDWR | O_CREAT, true, NULL, &err), -1);
	ASSERT_EQ(err.code, ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EMFILE);
	ASSERT(!unit_exists(path));

	unit_fault_set(ARMDB_IOOP_TRUNCATE, EIO, 0, -1);
	ASSERT_FAILS(armdb_file_truncate(fd, "f.data", 0, &err), ARMDB_ERR_IO);
	ASSERT_OK(armdb_file_size(fd, "f.data", &size, &err));
	ASSERT_EQ(size, 2 * BLK);

	unit_path(path, "f.data");
	unit_path(path2, "h.data");
	unit_fault_set(ARMDB_IOOP_RENAME, EXDEV, 0, -1);
	ASSERT_FAILS(armdb_durable_rename(path, path2, unit_dir, &err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EXDEV);
	ASSERT(unit_exists(path));
	ASSERT(!unit_exists(path2));

	unit_fault_clear();
	ASSERT_OK(armdb_durable_rename(path, path2, unit_dir, &err));
	ASSERT(!unit_exists(path));
	ASSERT(unit_exists(path2));

	armdb_file_close(fd);
	armdb_aligned_free(&buf);
}

static void
test_io_files_dirs(void)
{
	ArmdbError	err;
	char		path[MAXPGPATH];
	char		path2[MAXPGPATH];
	int			fd;

	unit_path(path, "a/b/c");
	ASSERT_OK(armdb_make_dir(path, &err));
	ASSERT(unit_exists(path));
	ASSERT_OK(armdb_make_dir(path, &err));	/* exists: fine */
	unit_path(path, "a/b/c/");
	ASSERT_OK(armdb_make_dir(path, &err));
	unit_path(path, "a");
	ASSERT_OK(armdb_fsync_path(path, true, &err));

	unit_path(path, "a/missing");
	armdb_error_clear(&err);
	ASSERT_EQ(armdb_file_open(path, O_RDWR, true, NULL, &err), -1);
	ASSERT_EQ(err.code, ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOENT);
	ASSERT(strstr(err.message, "missing") != NULL);

	fd = armdb_file_open(path, O_RDWR | O_CREAT, false, NULL, &err);
	ASSERT(fd >= 0);
	armdb_file_close(fd);
	ASSERT_OK(armdb_fsync_path(path, false, &err));
	unit_path(path2, "a/b/moved");
	ASSERT_OK(armdb_durable_rename(path, path2, unit_dir, &err));
	ASSERT(unit_exists(path2));
	ASSERT_OK(armdb_unlink(path2, &err));
	ASSERT(!unit_exists(path2));
	ASSERT_OK(armdb_unlink(path2, &err));	/* already gone: fine */

	/* a file where a directory should be */
	unit_path(path, "plain");
	ASSERT(unit_write_all(path, "x", 1));
	unit_path(path, "plain/sub");
	ASSERT_FAILS(armdb_make_dir(path, &err), ARMDB_ERR_IO);
}

static void
test_io_init(void)
{
	ArmdbError	err;
	ArmdbIo		io;

	ASSERT_OK(armdb_io_init(&io, ARMDB_IO_AUTO, &err));
	ASSERT(io.method == ARMDB_IO_URING || io.method == ARMDB_IO_SYNC);
	ASSERT_EQ(io.method == ARMDB_IO_URING, io.ring != NULL);
	armdb_io_shutdown(&io);
	ASSERT(io.ring == NULL);
	ASSERT_OK(armdb_io_init(&io, ARMDB_IO_SYNC, &err));
	ASSERT_EQ(io.method, ARMDB_IO_SYNC);
	armdb_io_shutdown(&io);
	ASSERT_EQ(unit_io->method, unit_method);
	ASSERT_STR(armdb_io_method_name(ARMDB_IO_SYNC), "sync");
	ASSERT_STR(armdb_io_method_name(ARMDB_IO_URING), "io_uring");
	ASSERT_STR(armdb_io_method_name(ARMDB_IO_AUTO), "auto");
}

/* ----------------
 * Faults under the shard and recovery code
 * ----------------
 */
static const uint32 mixed_sizes[] = {10, 0, 300, 5000, 0, 70000, 1, 4047, 4048, 123};

static bool
append_mixed(TShard *s, TLog *log, int rounds)
{
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < lengthof(mixed_sizes); i++)
			HASSERT_CALL(tshard_append(s, log, mixed_sizes[i],
									   mixed_sizes[i] == 0, NULL));
	return true;
}

static bool
recover_expect(const TLog *log, int min_n, int max_n)
{
	TInfos		infos;
	ArmdbRecoveryReport rep;
	bool		ok;

	tinfos_init(&infos);
	ok = trecover(&infos, &rep);
	if (ok && (infos.n < min_n || infos.n > max_n))
	{
		unit_fail(__FILE__, __LINE__, "recovery found %d entries, want %d..%d",
				  infos.n, min_n, max_n);
		ok = false;
	}
	ok = ok && tinfos_match(&infos, log, infos.n);
	tinfos_free(&infos);
	return ok;
}

static void
test_fault_flush_enospc(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbShardState before;
	ArmdbPos	reached;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	for (int i = 0; i < 5; i++)
		ASSERT_CALL(tshard_append(&s, &log, 100 + i, false, NULL));

	before = s.st;
	unit_fault_set(ARMDB_IOOP_WRITE, ENOSPC, 0, -1);
	ASSERT_FAILS(armdb_shard_flush(&s.st, &s.files, armdb_shard_end(&s.st), &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOSPC);
	ASSERT(unit_fault.injected >= 1);
	ASSERT_EQ(s.st.flushed, before.flushed);
	ASSERT_EQ(s.st.written_end, before.written_end);
	ASSERT_EQ(s.st.append_end, before.append_end);
	ASSERT_EQ(s.st.buf_start, before.buf_start);
	ASSERT(!s.st.failed);
	ASSERT_FAILS(armdb_shard_write_out(&s.st, &s.files, &reached, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(s.st.written_end, before.written_end);
	ASSERT_CALL(tshard_check_state(&s));
	/* everything still readable, from buffer or file */
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

	/* appends go on; a write failure is not an fsync failure */
	unit_fault_clear();
	ASSERT_CALL(tshard_append(&s, &log, 200, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_EQ(s.st.flushed, armdb_shard_end(&s.st));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tlog_free(&log);
	tinfos_free(&infos);
}

static void
test_fault_fsync_eio(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbPos	flushed_before;
	ArmdbPos	reached;
	uint32		sealed;
	int			durable;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	durable = log.n;
	ASSERT_CALL(append_mixed(&s, &log, 1));

	flushed_before = s.st.flushed;
	unit_fault_set(ARMDB_IOOP_FSYNC, EIO, 0, -1);
	ASSERT_FAILS(armdb_shard_flush(&s.st, &s.files, armdb_shard_end(&s.st), &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	ASSERT(s.st.failed);
	ASSERT_EQ(s.st.flushed, flushed_before);

	/* refused from now on, even with the fault gone */
	unit_fault_clear();
	tentry_header(&hdr, 999, 10, false);
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, "0123456789", &loc,
									&sealed, &err), ARMDB_ERR_FAILED);
	ASSERT_FAILS(armdb_shard_flush(&s.st, &s.files, armdb_shard_end(&s.st), &err),
				 ARMDB_ERR_FAILED);
	ASSERT_FAILS(armdb_shard_write_out(&s.st, &s.files, &reached, &err),
				 ARMDB_ERR_FAILED);
	ASSERT_FAILS(armdb_shard_sync(&s.st, &s.files, armdb_shard_end(&s.st), &err),
				 ARMDB_ERR_FAILED);
	ASSERT_EQ(s.st.flushed, flushed_before);
	tshard_close(&s);

	/* recovery rebuilds the shard from what is in the file */
	ASSERT_CALL(recover_expect(&log, durable, log.n));
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT(!s.st.failed);
	log.n = infos.n;			/* what survived */
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_append(&s, &log, 77, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tlog_free(&log);
	tinfos_free(&infos);
}

static void
test_fault_read_eio(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	char	   *dst;
	char		path[MAXPGPATH];
	int64		size;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_append(&s, &log, 33, false, NULL));	/* buffered */
	ASSERT(armdb_shard_is_buffered(&s.st, &log.e[log.n - 1].loc));
	ASSERT(!armdb_shard_is_buffered(&s.st, &log.e[0].loc));

	unit_fault_set(ARMDB_IOOP_READ, EIO, 0, -1);
	dst = malloc(log.e[2].loc.len);
	ASSERT_FAILS(armdb_shard_read(&s.st, &s.files, &log.e[2].loc, dst, &hdr, &err),
				 ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	ASSERT_FAILS(armdb_shard_read_file(&s.files, &log.e[2].loc, dst, &hdr, &err),
				 ARMDB_ERR_IO);
	free(dst);
	/* the buffered entry needs no I/O */
	ASSERT_CALL(tshard_verify(&s, &log.e[log.n - 1]));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	/* recovery fails and cuts nothing */
	unit_file(path, 1, ARMDB_FILE_DATA);
	size = unit_file_size(path);
	ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
									 &rep, &err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EIO);
	ASSERT_EQ(unit_file_size(path), size);

	unit_fault_clear();
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tlog_free(&log);
	tinfos_free(&infos);
}

/* Two files: file 1 sealed. */
static bool
make_two_files(TShard *s, TLog *log)
{
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		sealed = 0;
	int			guard = 0;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							  &infos, &rep));
	tinfos_free(&infos);
	while (sealed == 0 && guard++ < 1000)
		HASSERT_CALL(tshard_append(s, log, 1000 + (log->n % 7) * 100,
								   log->n % 5 == 4, &sealed));
	HASSERT_EQ(sealed, 1);
	HASSERT_CALL(tshard_append(s, log, 10, false, NULL));
	HASSERT_CALL(tshard_flush_all(s));
	return true;
}

static void
test_fault_hint_build(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		hint[MAXPGPATH];
	struct
	{
		int			op;
		int			e;
		int			skip;
		bool		hint_may_exist;
	}			faults[] = {
		{ARMDB_IOOP_WRITE, ENOSPC, 0, false},
		{ARMDB_IOOP_FSYNC, EIO, 0, false},	/* the .tmp file's sync */
		{ARMDB_IOOP_RENAME, EIO, 0, false},
		{ARMDB_IOOP_OPEN, EMFILE, 0, false},	/* the data file */
		{ARMDB_IOOP_OPEN, EMFILE, 1, false},	/* the .tmp file */
		{ARMDB_IOOP_READ, EIO, 0, false},
		{ARMDB_IOOP_FSYNC, EIO, 1, true},	/* the directory, after rename */
	};

	tlog_init(&log);
	ASSERT_CALL(make_two_files(&s, &log));
	tshard_close(&s);
	unit_file(hint, 1, ARMDB_FILE_HINT);

	for (int f = 0; f < lengthof(faults); f++)
	{
		unit_fault_set(faults[f].op, faults[f].e, faults[f].skip, -1);
		armdb_error_clear(&err);
		ASSERT_MSG(!armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err),
				   "fault %d: hint build succeeded", f);
		ASSERT_MSG(err.code == ARMDB_ERR_IO && err.sys_errno == faults[f].e,
				   "fault %d: code %d errno %d: %s", f, err.code,
				   err.sys_errno, err.message);
		unit_fault_clear();
		ASSERT_MSG(unit_count_files(unit_dir, ".tmp") == 0,
				   "fault %d left a .tmp file", f);
		if (!faults[f].hint_may_exist)
			ASSERT_MSG(!unit_exists(hint), "fault %d left a .hint file", f);

		tinfos_init(&infos);
		ASSERT_CALL(trecover(&infos, &rep));
		ASSERT_CALL(tinfos_match(&infos, &log, log.n));
		ASSERT_EQ(rep.removed_tmp, 0);
		ASSERT_EQ(rep.bad_hints, 0);
		ASSERT_EQ(rep.hinted_files, unit_exists(hint) ? 1 : 0);
		tinfos_free(&infos);
		armdb_unlink(hint, &err);
	}

	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	ASSERT(unit_exists(hint));
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(rep.hinted_files, 1);
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * File 1 filled to 100 bytes short of ARMDB_MIN_FILE_SIZE; the next entry
 * of 148 bytes must rotate.
 */
static bool
fill_to_rotation(TShard *s, TLog *log)
{
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		sealed;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							  &infos, &rep));
	tinfos_free(&infos);
	HASSERT_CALL(tshard_append(s, log, 1000, false, &sealed));
	HASSERT_CALL(tshard_append(s, log, ARMDB_MIN_FILE_SIZE - 100 - s->st.append_end -
							   tentry_header_size(log->next_gsn, false),
							   false, &sealed));
	HASSERT_EQ(sealed, 0);
	HASSERT_EQ(s->st.append_end, ARMDB_MIN_FILE_SIZE - 100);
	HASSERT(armdb_should_rotate(s->st.append_end, armdb_entry_size(0, 100),
								s->st.max_file_size));
	return true;
}

/* Append the rotating entry under a fault; expect failure, then a retry. */
static void
rotation_fault(int op, int e, int skip, bool fatal)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbShardState before;
	char		value[100];
	char		path2[MAXPGPATH];
	uint32		sealed = 77;

	tlog_init(&log);
	ASSERT_CALL(fill_to_rotation(&s, &log));
	before = s.st;

	tentry_header(&hdr, 5000, sizeof(value), false);
	unit_fill(value, sizeof(value), 5000);
	unit_fault_set(op, e, skip, -1);
	armdb_error_clear(&err);
	ASSERT_MSG(!armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed, &err),
			   "append succeeded under the fault");
	ASSERT(unit_fault.injected >= 1);
	ASSERT_MSG(err.code == ARMDB_ERR_IO && err.sys_errno == e,
			   "code %d errno %d: %s", err.code, err.sys_errno, err.message);
	unit_fault_clear();
	ASSERT_EQ(sealed, 0);
	/* still on file 1, nothing lost */
	ASSERT_EQ(s.st.active_file_id, 1);
	ASSERT_EQ(s.st.append_end, before.append_end);
	ASSERT_CALL(tshard_check_state(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

	if (fatal)
	{
		ASSERT(s.st.failed);
		ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc,
										&sealed, &err), ARMDB_ERR_FAILED);
		tshard_close(&s);
		ASSERT_CALL(recover_expect(&log, log.n, log.n));
		tlog_free(&log);
		return;
	}
	ASSERT(!s.st.failed);

	/* the retry rotates */
	ASSERT_CALL(tshard_append(&s, &log, 100, false, &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_EQ(s.st.active_file_id, 2);
	ASSERT_CALL(tshard_append(&s, &log, 0, true, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	unit_file(path2, 3, ARMDB_FILE_DATA);
	ASSERT(!unit_exists(path2));
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tlog_free(&log);
}

static void
test_fault_rotation_write(void)
{
	rotation_fault(ARMDB_IOOP_WRITE, ENOSPC, 0, false);
}

static void
test_fault_rotation_open(void)
{
	/* open 0 is file 1's descriptor for the write-out; open 1 is file 2 */
	rotation_fault(ARMDB_IOOP_OPEN, EMFILE, 1, false);
}

static void
test_fault_rotation_new_header_sync(void)
{
	/* fsync 0 seals file 1; fsync 1 is the new file's header */
	rotation_fault(ARMDB_IOOP_FSYNC, ENOSPC, 1, false);
}

static void
test_fault_rotation_dir_sync(void)
{
	/*
	 * fsync 2 is the directory after the new file was created: like any
	 * failed fsync it stops the shard (whether the file exists after a
	 * crash is unknown)
	 */
	rotation_fault(ARMDB_IOOP_FSYNC, EIO, 2, true);
}

/*
 * Once file 1 was sealed for rotation it takes nothing more, even when its
 * successor could not be created and the next entry would fit in it:
 * recovery treats every file but the newest as complete.
 */
static void
test_fault_rotation_sealed_stays_sealed(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	char		value[100];
	uint32		sealed = 77;
	uint64		end1;

	tlog_init(&log);
	ASSERT_CALL(fill_to_rotation(&s, &log));
	end1 = s.st.append_end;

	/* open 0: file 1 for the write-out; open 1: the new file 2 */
	tentry_header(&hdr, 5000, sizeof(value), false);
	unit_fill(value, sizeof(value), 5000);
	unit_fault_set(ARMDB_IOOP_OPEN, EMFILE, 1, -1);
	ASSERT(!armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed, &err));
	unit_fault_clear();
	ASSERT(s.st.sealed);
	ASSERT(!s.st.failed);
	ASSERT_EQ(s.st.flushed, ARMDB_POS(1, end1));

	/* a tombstone would fit in file 1, but goes to file 2 */
	ASSERT_CALL(tshard_append(&s, &log, 0, true, &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_EQ(log.e[log.n - 1].loc.file_id, 2);
	ASSERT(!s.st.sealed);
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	/* file 1 is exactly as sealed, and everything comes back */
	{
		char		path[MAXPGPATH];
		TInfos		infos;
		ArmdbRecoveryReport rep;

		unit_file(path, 1, ARMDB_FILE_DATA);
		ASSERT_EQ(unit_file_size(path), (int64) ((end1 + ARMDB_BLOCK_SIZE - 1) &
												 ~((uint64) ARMDB_BLOCK_SIZE - 1)));
		tinfos_init(&infos);
		ASSERT_CALL(trecover(&infos, &rep));
		ASSERT_CALL(tinfos_match(&infos, &log, log.n));
		ASSERT_EQ(rep.last_file_id, 2);
		tinfos_free(&infos);
	}
	tlog_free(&log);
}

static void
test_fault_rotation_seal_sync(void)
{
	rotation_fault(ARMDB_IOOP_FSYNC, EIO, 0, true);
}

/*
 * An entry larger than the (minimum) write buffer, appended while writes
 * fail at the k-th write: the append fails; after the fault is gone the
 * shard goes on and recovery sees exactly the entries that were appended.
 */
static void
test_fault_large_append(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;

	/* write 0: the buffer's write-out; write 1: the large entry itself */
	for (int k = 0; k < 2; k++)
	{
		ArmdbEntryHeader hdr;
		ArmdbLocation loc;
		uint32		sealed;
		uint64		end_before;
		char	   *value = malloc(50000);

		unit_fault_clear();
		tlog_init(&log);
		tinfos_init(&infos);
		ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE, T_FILE_SIZE,
								 true, &infos, &rep));
		ASSERT_CALL(tshard_append(&s, &log, 3000, false, NULL));
		ASSERT_CALL(tshard_append(&s, &log, 11000, false, NULL));
		end_before = s.st.append_end;

		tentry_header(&hdr, 90000, 50000, false);
		unit_fill(value, 50000, 424242);
		unit_fault_set(ARMDB_IOOP_WRITE, ENOSPC, k, -1);
		ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc,
										&sealed, &err), ARMDB_ERR_IO);
		free(value);
		unit_fault_clear();
		ASSERT_EQ(s.st.append_end, end_before);
		ASSERT(!s.st.failed);
		ASSERT_CALL(tshard_check_state(&s));
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

		ASSERT_CALL(tshard_append(&s, &log, 20, false, NULL));
		ASSERT_CALL(tshard_append(&s, &log, 40000, false, NULL));
		ASSERT_CALL(tshard_append(&s, &log, 0, true, NULL));
		ASSERT_CALL(tshard_flush_all(&s));
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
		tshard_close(&s);
		ASSERT_CALL(recover_expect(&log, log.n, log.n));
		tinfos_free(&infos);
		tlog_free(&log);
		{
			char		path[MAXPGPATH];

			unit_file(path, 1, ARMDB_FILE_DATA);
			ASSERT(unlink(path) == 0);
		}
	}
}

/*
 * A rotation fails after the new file was created (its directory fsync),
 * the shard goes on in the old file (the next entries fit there), and the
 * process crashes while an unsynced write-out to the old file is half on
 * disk.  That entry was never acknowledged, so recovery must drop it and
 * start, not refuse the shard.
 */
static void
test_fault_rotation_then_crash(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbPos	reached;
	char	   *value = calloc(1, 6000);
	char		path[MAXPGPATH];
	char		zeros[2000] = {0};
	uint32		sealed;
	int			durable;
	const TEntry *x;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							 &infos, &rep));
	ASSERT_CALL(tshard_append(&s, &log, ARMDB_MIN_FILE_SIZE - 5000 - 64 - 48,
							  false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_EQ(s.st.append_end, ARMDB_MIN_FILE_SIZE - 5000);

	/* rotation (file 1 already synced): the new header fsync passes, the directory fsync fails */
	tentry_header(&hdr, 7000, 6000, false);
	unit_fault_set(ARMDB_IOOP_FSYNC, EIO, 1, 1);
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed, &err),
				 ARMDB_ERR_IO);
	unit_fault_clear();
	free(value);
	unit_file(path, 2, ARMDB_FILE_DATA);
	unit_note("after the failed rotation: shard failed=%d, active file %u, "
			  "000002.data %s", s.st.failed, s.st.active_file_id,
			  unit_exists(path) ? "exists" : "absent");
	if (s.st.failed)
	{
		/* refusing further work is a correct answer too */
		tshard_close(&s);
		ASSERT_CALL(trecover(&infos, &rep));
		tinfos_free(&infos);
		tlog_free(&log);
		return;
	}

	/* a smaller entry fits in file 1: written out, not synced, then torn */
	durable = log.n;
	ASSERT_CALL(tshard_append(&s, &log, 3000, false, &sealed));
	x = &log.e[log.n - 1];
	ASSERT_OK(armdb_shard_write_out(&s.st, &s.files, &reached, &err));
	tshard_close(&s);
	unit_file(path, x->loc.file_id, ARMDB_FILE_DATA);
	ASSERT(unit_overwrite(path, x->loc.offset + 1024, zeros, sizeof(zeros)));

	tinfos_free(&infos);
	tinfos_init(&infos);
	ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb,
								  &infos, &rep, &err));
	ASSERT_CALL(tinfos_match(&infos, &log, durable));
	tinfos_free(&infos);
	tlog_free(&log);
}

/* A failure while cutting a torn tail: recovery fails, a retry works. */
static void
test_fault_recovery_truncate(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	int64		size;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	unit_file(path, 1, ARMDB_FILE_DATA);
	ASSERT(unit_flip_bit(path, log.e[log.n - 1].loc.offset + 50, 1));
	size = unit_file_size(path);

	unit_fault_set(ARMDB_IOOP_TRUNCATE, EIO, 0, -1);
	ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
									 &rep, &err), ARMDB_ERR_IO);
	ASSERT_EQ(unit_file_size(path), size);
	unit_fault_set(ARMDB_IOOP_FSYNC, EIO, 0, -1);
	ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
									 &rep, &err), ARMDB_ERR_IO);
	unit_fault_clear();
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n - 1));
	ASSERT_EQ(rep.end_offset, log.e[log.n - 1].loc.offset);
	ASSERT_EQ(unit_file_size(path), log.e[log.n - 1].loc.offset);
	log.n--;
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * armdb_shard_open fails while reloading the partial last block: the shard
 * must refuse appends (a write-out would put its zeroed buffer over the
 * file's last block), and the files stay intact.
 */
static void
test_fault_open_reload_read(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	uint32		sealed;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT(s.st.append_end % ARMDB_BLOCK_SIZE != 0);
	tshard_close(&s);

	ASSERT_CALL(tshard_init(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true));
	ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
								  &rep, &err));
	unit_fault_set(ARMDB_IOOP_READ, EIO, 0, -1);
	ASSERT_FAILS(armdb_shard_open(&s.st, &s.files, rep.last_file_id,
								  rep.end_offset, &err), ARMDB_ERR_IO);
	unit_fault_clear();
	ASSERT(s.st.failed);
	tentry_header(&hdr, 9999, 0, true);
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, NULL, &loc, &sealed,
									&err), ARMDB_ERR_FAILED);
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * The newest file has no header and replacing it fails: the shard refuses
 * appends instead of starting over at file 1 (which would truncate it).
 */
static void
test_fault_open_headerless(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	char		path[MAXPGPATH];
	uint32		sealed;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(append_mixed(&s, &log, 1));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	unit_file(path, 2, ARMDB_FILE_DATA);
	ASSERT(unit_write_all(path, "", 0));

	ASSERT_CALL(tshard_init(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true));
	ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
								  &rep, &err));
	ASSERT_EQ(rep.last_file_id, 2);
	ASSERT_EQ(rep.end_offset, 0);
	unit_fault_set(ARMDB_IOOP_OPEN, EMFILE, 0, -1);
	ASSERT_FAILS(armdb_shard_open(&s.st, &s.files, rep.last_file_id,
								  rep.end_offset, &err), ARMDB_ERR_IO);
	unit_fault_clear();
	ASSERT(s.st.failed);
	tentry_header(&hdr, 9999, 0, true);
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, NULL, &loc, &sealed,
									&err), ARMDB_ERR_FAILED);
	tshard_close(&s);
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * A write that lands in part, then fails: the bytes before junk_from are
 * rewritten unchanged, the next two blocks' worth get junk.
 */
static uint64 junk_from;

static int
partial_write_hook(ArmdbIoOp op, int fd, off_t off, size_t len)
{
	ArmdbAlignedBuf buf;
	ArmdbError	err;
	size_t		nread;
	bool		ok;

	if (op != ARMDB_IOOP_WRITE || len <= 2 * ARMDB_BLOCK_SIZE)
		return 0;
	if (!armdb_aligned_alloc(&buf, 2 * ARMDB_BLOCK_SIZE, &err))
		return ENOMEM;
	memset(buf.data, 0, buf.size);
	ok = pread(fd, buf.data, ARMDB_BLOCK_SIZE, off) >= 0;
	nread = junk_from - off;
	memset(buf.data + nread, 0x5a, buf.size - nread);
	ok = ok && pwrite(fd, buf.data, buf.size, off) == (ssize_t) buf.size;
	armdb_aligned_free(&buf);
	if (!ok)
		return EIO;
	unit_fault.injected++;
	return ENOSPC;
}

/*
 * An entry larger than the write buffer fails half-written; the next append
 * seals the file by rotating.  The sealed file must hold nothing past its
 * entries, or recovery would call it corrupted.
 */
static void
test_fault_large_append_then_rotate(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	char	   *value;
	uint32		sealed;
	uint32		big = 3 * ARMDB_MIN_BUFFER_SIZE;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE,
							 ARMDB_MIN_FILE_SIZE, true, &infos, &rep));
	for (int i = 0; i < 3; i++)
		ASSERT_CALL(tshard_append(&s, &log, 100 + i, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));

	value = calloc(1, big);
	tentry_header(&hdr, 7777, big, false);
	unit_fault.injected = 0;
	junk_from = s.st.append_end;
	ASSERT(junk_from % ARMDB_BLOCK_SIZE != 0);
	armdb_io_fault_hook = partial_write_hook;
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed,
									&err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOSPC);
	ASSERT_EQ(unit_fault.injected, 1);
	unit_fault_clear();
	free(value);
	ASSERT(!s.st.failed);

	/* too big for what is left of file 1: rotates at once and seals it */
	ASSERT_CALL(tshard_append(&s, &log, ARMDB_MIN_FILE_SIZE - 200, false,
							  &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_EQ(s.st.active_file_id, 2);
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	ASSERT_CALL(recover_expect(&log, log.n, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/* The descriptor accounting hook may refuse an open: EMFILE, nothing else. */
static bool refuse_all(void)
{
	return false;
}

static int
open_refused(const char *path, int flags, mode_t mode)
{
	errno = EMFILE;
	return -1;
}

static void
test_fd_hook_refuses(void)
{
	ArmdbError	err;
	char		path[MAXPGPATH];
	bool		(*saved) (void) = armdb_fd_opened_hook;
	ArmdbFileHooks saved_files = armdb_file_hooks;
	ArmdbIo		io;
	int			fd;

	unit_file(path, 1, ARMDB_FILE_DATA);
	armdb_file_hooks.open = open_refused;
	fd = armdb_file_open(path, O_RDWR | O_CREAT, true, NULL, &err);
	armdb_file_hooks = saved_files;
	ASSERT_EQ(fd, -1);
	ASSERT_EQ(err.code, ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EMFILE);
	ASSERT(!unit_exists(path));

	/* the io_uring ring is accounted through the other hook */
	armdb_fd_opened_hook = refuse_all;
	fd = armdb_io_init(&io, ARMDB_IO_URING, &err) ? 0 : -1;
	armdb_fd_opened_hook = saved;
	ASSERT_EQ(fd, -1);
	ASSERT_EQ(err.code, ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, EMFILE);
	ASSERT(!unit_exists(path));
}

/* A shard directory's data files, and its highest file number. */
static void
test_io_list_data_files(void)
{
	ArmdbError	err;
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	uint32	   *ids;
	int			n;
	uint32		max_id;
	static const char *const names[] = {
		"000007.data", "000002.data", "1000001.data", "000009.hint",
		"1000004.tmp", "000003.merge", "armdb.meta", "000005.data.damaged"
	};

	unit_path(dir, "missing");
	ASSERT_OK(armdb_list_data_files(dir, &ids, &n, &max_id, &err));
	ASSERT_EQ(n, 0);
	ASSERT(ids == NULL);
	ASSERT_EQ(max_id, 0);

	unit_path(dir, "shard");
	ASSERT_OK(armdb_make_dir(dir, &err));
	for (int i = 0; i < (int) lengthof(names); i++)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ASSERT(unit_write_all(path, "x", 1));
	}
	ASSERT_OK(armdb_list_data_files(dir, &ids, &n, &max_id, &err));
	ASSERT_EQ(n, 3);
	ASSERT_EQ(ids[0], 2);
	ASSERT_EQ(ids[1], 7);
	ASSERT_EQ(ids[2], 1000001);
	ASSERT_EQ(max_id, 1000004);
	pfree(ids);

	/* a file where the directory should be */
	unit_path(path, "plain");
	ASSERT(unit_write_all(path, "x", 1));
	ASSERT_FAILS(armdb_list_data_files(path, &ids, &n, &max_id, &err),
				 ARMDB_ERR_IO);
}

const UnitTest unit_io_tests[] = {
	{"io_list_data_files", test_io_list_data_files},
	{"io_roundtrip", test_io_roundtrip},
	{"io_buffered_unaligned", test_io_buffered_unaligned},
	{"io_read_batch", test_io_read_batch},
	{"io_fault_hook", test_io_fault_hook},
	{"io_files_dirs", test_io_files_dirs},
	{"io_init", test_io_init},
	{"fault_flush_enospc", test_fault_flush_enospc},
	{"fault_fsync_eio", test_fault_fsync_eio},
	{"fault_read_eio", test_fault_read_eio},
	{"fault_hint_build", test_fault_hint_build},
	{"fault_rotation_write", test_fault_rotation_write},
	{"fault_rotation_open", test_fault_rotation_open},
	{"fault_rotation_new_header_sync", test_fault_rotation_new_header_sync},
	{"fault_rotation_dir_sync", test_fault_rotation_dir_sync},
	{"fault_rotation_seal_sync", test_fault_rotation_seal_sync},
	{"fault_rotation_sealed_stays_sealed", test_fault_rotation_sealed_stays_sealed},
	{"fault_open_reload_read", test_fault_open_reload_read},
	{"fault_open_headerless", test_fault_open_headerless},
	{"fault_large_append_then_rotate", test_fault_large_append_then_rotate},
	{"fd_hook_refuses", test_fd_hook_refuses},
	{"fault_large_append", test_fault_large_append},
	{"fault_rotation_then_crash", test_fault_rotation_then_crash},
	{"fault_recovery_truncate", test_fault_recovery_truncate},
	{NULL, NULL}
};
