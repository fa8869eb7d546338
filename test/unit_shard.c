/*-------------------------------------------------------------------------
 *
 * unit_shard.c
 *	  Tests of shard.c: append, write-out, flush, read, rotation, reopen.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCK_FLOOR(x)	((uint64) (x) & ~((uint64) ARMDB_BLOCK_SIZE - 1))

/* Mixed sizes: tombstones, block edges, values larger than the buffer. */
static const uint32 roundtrip_sizes[] = {
	0, 1, 100, 0, 4047, 4048, 4049, 5000, 65536, 200000, 3, 0, 70000, 17,
	T_BUF_SIZE - ARMDB_ENTRY_HEADER_SIZE, T_BUF_SIZE, 8, 0,
};

static bool
append_list(TShard *s, TLog *log, const uint32 *sizes, int n, bool verify_each)
{
	for (int i = 0; i < n; i++)
	{
		HASSERT_CALL(tshard_append(s, log, sizes[i], sizes[i] == 0, NULL));
		if (verify_each)
			HASSERT_CALL(tshard_verify(s, &log->e[log->n - 1]));
	}
	return true;
}

static bool
append_random(TShard *s, TLog *log, uint64 *rng, int n, uint32 max_len,
			  bool verify_each)
{
	for (int i = 0; i < n; i++)
	{
		uint32		r = unit_rand(rng);
		bool		tomb = r % 9 == 0;
		uint32		len = tomb ? 0 : unit_rand(rng) % max_len;

		HASSERT_CALL(tshard_append(s, log, len, tomb, NULL));
		if (verify_each)
			HASSERT_CALL(tshard_verify(s, &log->e[log->n - 1]));
	}
	return true;
}

static bool
check_report(const ArmdbRecoveryReport *rep, const TLog *log, int n,
			 uint32 data_files, uint32 last_file_id, uint64 end_offset)
{
	HASSERT_EQ(rep->entries, n);
	HASSERT_EQ(rep->max_gsn, tlog_max_gsn(log, n));
	HASSERT_EQ(rep->data_files, data_files);
	HASSERT_EQ(rep->last_file_id, last_file_id);
	HASSERT_EQ(rep->end_offset, end_offset);
	HASSERT_EQ(rep->torn_tail, false);
	HASSERT_EQ(rep->truncated_bytes, 0);
	HASSERT_EQ(rep->bad_hints, 0);
	HASSERT_EQ(rep->removed_tmp, 0);
	return true;
}

static void
roundtrip(bool direct)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 42;
	ArmdbPos	end;
	uint64		append_end;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, direct, &infos, &rep));
	ASSERT_EQ(rep.data_files, 0);
	ASSERT_EQ(rep.last_file_id, 0);
	ASSERT_EQ(infos.n, 0);
	ASSERT_EQ(s.st.active_file_id, 0);
	ASSERT_EQ(armdb_shard_end(&s.st), 0);

	ASSERT_CALL(append_list(&s, &log, roundtrip_sizes, lengthof(roundtrip_sizes), true));
	ASSERT_CALL(append_random(&s, &log, &rng, 60, 10000, true));
	ASSERT_EQ(s.st.active_file_id, 1);
	end = armdb_shard_end(&s.st);
	ASSERT_EQ(end, ARMDB_POS(1, (uint64) log.e[log.n - 1].loc.offset +
							 log.e[log.n - 1].loc.len));

	/* before flush (from the buffer and from written-out blocks) */
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT(armdb_shard_is_buffered(&s.st, &log.e[log.n - 1].loc));

	/* after flush: all in the file */
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_EQ(s.st.flushed, end);
	for (int i = 0; i < log.n; i++)
		ASSERT_MSG(!armdb_shard_is_buffered(&s.st, &log.e[i].loc),
				   "entry %d still buffered after flush", i);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	/* the file itself, read without the shard's buffer */
	for (int i = 0; i < log.n; i += 7)
	{
		ArmdbError	err;
		ArmdbEntryHeader hdr;
		char	   *dst = malloc(log.e[i].loc.len);

		ASSERT_OK(armdb_shard_read_file(&s.files, &log.e[i].loc, dst, &hdr, &err));
		ASSERT(memcmp(&hdr, &log.e[i].hdr, sizeof(hdr)) == 0);
		ASSERT_EQ(unit_check_fill(dst + armdb_entry_header_size(hdr.gsn), hdr.value_len,
								  log.e[i].seed), -1);
		free(dst);
	}
	append_end = s.st.append_end;
	tshard_close(&s);

	/* after close and recovery */
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, direct, &infos, &rep));
	ASSERT_CALL(check_report(&rep, &log, log.n, 1, 1, append_end));
	ASSERT_EQ(rep.scanned_files + rep.hinted_files, 1);
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_EQ(armdb_shard_end(&s.st), end);
	ASSERT_EQ(s.st.flushed, end);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

	/* and appends continue */
	ASSERT_CALL(append_list(&s, &log, roundtrip_sizes, lengthof(roundtrip_sizes), true));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	append_end = s.st.append_end;
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, direct, &infos, &rep));
	ASSERT_CALL(check_report(&rep, &log, log.n, 1, 1, append_end));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_shard_roundtrip(void)
{
	roundtrip(true);
}

static void
test_shard_roundtrip_buffered_io(void)
{
	roundtrip(false);
}

static void grow_test_buffer(void *arg, ArmdbShardState *st, uint64 needed);

/*
 * After a clean close of s: reopen it (every entry found, no torn tail),
 * append entries of the sizes big[] again (grow: its buffer growing as
 * keydir.c's does), flush, close, and recover from scratch: every entry
 * found.  Frees infos.
 */
static bool
reopen_append_recover(TShard *s, TLog *log, TInfos *infos, const uint32 *big,
					  int nbig, bool grow)
{
	ArmdbRecoveryReport rep;

	tinfos_free(infos);
	HASSERT_CALL(tshard_start(s, unit_dir, ARMDB_MIN_BUFFER_SIZE, T_FILE_SIZE,
							  true, infos, &rep));
	HASSERT_CALL(tinfos_match(infos, log, log->n));
	HASSERT_EQ(rep.torn_tail, false);
	HASSERT_CALL(tshard_verify_all(s, log, log->n));
	if (grow)
	{
		s->files.grow_buffer = grow_test_buffer;
		s->files.grow_buffer_arg = s;
	}
	HASSERT_CALL(append_list(s, log, big, nbig, true));
	HASSERT_CALL(tshard_verify_all(s, log, log->n));
	HASSERT_CALL(tshard_flush_all(s));
	tshard_close(s);
	tinfos_free(infos);
	HASSERT_CALL(trecover(infos, &rep));
	HASSERT_CALL(tinfos_match(infos, log, log->n));
	tinfos_free(infos);
	return true;
}

static void
test_shard_min_buffer(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 7;
	uint32		big[] = {
		ARMDB_MIN_BUFFER_SIZE - ARMDB_ENTRY_HEADER_SIZE,
		ARMDB_MIN_BUFFER_SIZE - ARMDB_ENTRY_HEADER_SIZE + 1,
		ARMDB_MIN_BUFFER_SIZE, 40000, 0, 100000, 5, ARMDB_MIN_BUFFER_SIZE * 3,
	};
	uint64		max_written = 0;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE, T_FILE_SIZE,
							 true, &infos, &rep));
	ASSERT_EQ(s.st.buf_size, ARMDB_MIN_BUFFER_SIZE);

	/* small entries: the buffer fills and is written out during appends */
	for (int i = 0; i < 40; i++)
	{
		uint64		written = s.st.written_end;

		ASSERT_CALL(append_random(&s, &log, &rng, 1, 3000, true));
		ASSERT_MSG(s.st.written_end >= written, "written_end went back");
		max_written = Max(max_written, s.st.written_end);
	}
	ASSERT_MSG(max_written > ARMDB_MIN_BUFFER_SIZE,
			   "no write-out during appends (written_end %llu)",
			   (unsigned long long) max_written);

	/* entries at and beyond the buffer's size */
	ASSERT_CALL(append_list(&s, &log, big, lengthof(big), true));
	ASSERT_CALL(append_random(&s, &log, &rng, 40, 9000, true));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);

	ASSERT_CALL(reopen_append_recover(&s, &log, &infos, big, lengthof(big),
									  false));
	tlog_free(&log);
}

/*
 * A buffer that grows (ArmdbShardFiles.grow_buffer, as keydir.c's): it
 * doubles up to GROW_MAX when an entry does not fit, keeping what it holds.
 */
#define GROW_MAX	(8 * ARMDB_MIN_BUFFER_SIZE)

static int	grow_calls;

static void
grow_test_buffer(void *arg, ArmdbShardState *st, uint64 needed)
{
	TShard	   *s = arg;
	ArmdbAlignedBuf bigger;
	ArmdbError	err;
	uint64		size = st->buf_size;

	grow_calls++;
	while (size < needed && size < GROW_MAX)
		size = Min(size * 2, GROW_MAX);
	if (size <= st->buf_size || !armdb_aligned_alloc(&bigger, size, &err))
		return;
	memset(bigger.data, 0xA5, size);	/* past the copy: zeroed below */
	memcpy(bigger.data, armdb_shard_buf(st), st->buf_size);
	memset(bigger.data + st->buf_size, 0, size - st->buf_size);
	armdb_aligned_free(&s->abuf);
	s->abuf = bigger;
	st->buf_ref = (uint64) (uintptr_t) bigger.data;
	st->buf_size = (uint32) size;
}

static void
test_shard_growing_buffer(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 11;
	uint32		big[] = {
		ARMDB_MIN_BUFFER_SIZE, 3 * ARMDB_MIN_BUFFER_SIZE, 0, 17,
		GROW_MAX - ARMDB_ENTRY_HEADER_SIZE, GROW_MAX, 2 * GROW_MAX, 5,
	};

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE, T_FILE_SIZE,
							 true, &infos, &rep));
	s.files.grow_buffer = grow_test_buffer;
	s.files.grow_buffer_arg = &s;
	grow_calls = 0;

	/* a few small entries: no growth, nothing written out but the header */
	ASSERT_CALL(append_random(&s, &log, &rng, 5, 500, true));
	ASSERT_EQ(s.st.buf_size, ARMDB_MIN_BUFFER_SIZE);
	ASSERT_EQ(grow_calls, 0);

	/* more: the buffer doubles to its limit before entries are written */
	for (int i = 0; i < 200; i++)
	{
		ASSERT_CALL(append_random(&s, &log, &rng, 1, 3000, true));
		ASSERT_CALL(tshard_check_state(&s));
		if (s.st.buf_size < GROW_MAX)
			ASSERT(s.st.written_end <= ARMDB_FILE_HEADER_SIZE);
	}
	ASSERT_EQ(s.st.buf_size, GROW_MAX);
	ASSERT(s.st.written_end > ARMDB_FILE_HEADER_SIZE);

	/* entries at and beyond its limit, then everything read back */
	ASSERT_CALL(append_list(&s, &log, big, lengthof(big), true));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);

	/* recovery finds every entry, with a small buffer again */
	ASSERT_CALL(reopen_append_recover(&s, &log, &infos, big, lengthof(big),
									  true));
	tlog_free(&log);
}

/*
 * An idle shard's buffer taken away and given back, as keydir.c does for a
 * shard idle for armdb.write_buffer_idle_timeout: never while entries wait
 * in it; without it, reads find everything in the file; given back (into
 * memory full of garbage), the partial last block is read from the file
 * and appends go on after it, across rotations; recovery finds every entry.
 */
static void
test_shard_released_buffer(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 23;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE, ARMDB_MIN_FILE_SIZE,
							 true, &infos, &rep));
	for (int round = 0; round < 40; round++)
	{
		ArmdbAlignedBuf again;
		ArmdbError	err;

		ASSERT_CALL(append_random(&s, &log, &rng, 1 + round % 5, 2000, false));
		if (s.st.written_end != s.st.append_end)
			ASSERT(!armdb_shard_release_buffer(&s.st));
		ASSERT_CALL(tshard_flush_all(&s));
		ASSERT(armdb_shard_release_buffer(&s.st));
		ASSERT_EQ(s.st.buf_ref, 0);
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

		ASSERT(armdb_aligned_alloc(&again, ARMDB_MIN_BUFFER_SIZE, &err));
		memset(again.data, 0x5A, ARMDB_MIN_BUFFER_SIZE);
		ASSERT(armdb_shard_restore_buffer(&s.st, &s.files,
										  (uint64) (uintptr_t) again.data,
										  ARMDB_MIN_BUFFER_SIZE, &err));
		armdb_aligned_free(&s.abuf);
		s.abuf = again;
		ASSERT_CALL(tshard_check_state(&s));
	}
	ASSERT(s.st.active_file_id > 1);	/* rotations happened */
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_EQ(rep.torn_tail, false);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_shard_should_rotate(void)
{
	uint32		max = ARMDB_MIN_FILE_SIZE;

	ASSERT(!armdb_should_rotate(1112, max - 1112, max));
	ASSERT(armdb_should_rotate(1112, max - 1112 + 1, max));
	ASSERT(!armdb_should_rotate(max - 48, 48, max));
	ASSERT(armdb_should_rotate(max - 47, 48, max));
	ASSERT(armdb_should_rotate(max, 48, max));
	/* a fresh file takes an entry however large */
	ASSERT(!armdb_should_rotate(ARMDB_FILE_HEADER_SIZE, (uint64) max * 2, max));
	/* 32-bit offsets */
	ASSERT(armdb_should_rotate(UINT64CONST(0xFFFFFF00), 0x200, 0xFFFFFFFF));
}

static bool
check_file_sizes(uint32 nfiles, uint32 max, uint32 except)
{
	for (uint32 id = 1; id <= nfiles; id++)
	{
		char		path[MAXPGPATH];
		int64		size;

		unit_file(path, id, ARMDB_FILE_DATA);
		size = unit_file_size(path);
		HASSERT_MSG(size >= ARMDB_FILE_HEADER_SIZE, "file %u size %lld", id,
					(long long) size);
		if (id != except)
			HASSERT_MSG(size <= max, "file %u has %lld bytes, max %u", id,
						(long long) size, max);
	}
	return true;
}

static void
test_shard_rotation_boundary(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		sealed;
	const uint32 max = ARMDB_MIN_FILE_SIZE;
	ArmdbPos	flushed_prev;
	uint64		append_end;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, max, true, &infos, &rep));
	ASSERT_EQ(s.st.max_file_size, max);

	/* A, then B filling file 1 exactly */
	ASSERT_CALL(tshard_append(&s, &log, 1000, false, &sealed));
	ASSERT_EQ(sealed, 0);
	ASSERT_CALL(tshard_append(&s, &log, max - 1112 - tentry_header_size(log.next_gsn, false),
							  false, &sealed));
	ASSERT_EQ(sealed, 0);
	ASSERT_EQ(s.st.append_end, max);
	ASSERT_EQ(log.e[1].loc.file_id, 1);

	/* C: a tombstone no longer fits */
	flushed_prev = s.st.flushed;
	ASSERT_CALL(tshard_append(&s, &log, 0, true, &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_EQ(log.e[2].loc.file_id, 2);
	ASSERT_EQ(log.e[2].loc.offset, ARMDB_FILE_HEADER_SIZE);
	ASSERT(s.st.flushed >= flushed_prev);
	/* the sealed file is durable: a waiter on it needs no more fsync */
	ASSERT_MSG(s.st.flushed >= ARMDB_POS(1, max),
			   "flushed %llx < end of sealed file 1",
			   (unsigned long long) s.st.flushed);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

	/* D overflows the rest of file 2 by one byte */
	ASSERT_CALL(tshard_append(&s, &log, max + 1 - s.st.append_end -
							  tentry_header_size(log.next_gsn, false),
							  false, &sealed));
	ASSERT_EQ(sealed, 2);
	ASSERT_EQ(log.e[3].loc.file_id, 3);
	ASSERT_EQ(s.st.append_end, ARMDB_FILE_HEADER_SIZE +
			  (max + 1 - ARMDB_FILE_HEADER_SIZE - log.e[2].loc.len));

	/* E: C's length less one byte left, too few for E's tombstone */
	ASSERT_EQ(max - s.st.append_end, log.e[2].loc.len - 1);
	ASSERT(tentry_header_size(log.next_gsn, true) > max - s.st.append_end);
	ASSERT_CALL(tshard_append(&s, &log, 0, true, &sealed));
	ASSERT_EQ(sealed, 3);

	/* F fills file 4 exactly: no rotation */
	ASSERT_CALL(tshard_append(&s, &log, max - s.st.append_end -
							  tentry_header_size(log.next_gsn, false), false, &sealed));
	ASSERT_EQ(sealed, 0);
	ASSERT_EQ(s.st.active_file_id, 4);
	ASSERT_EQ(s.st.append_end, max);

	/* G: larger than a whole file: a file of its own */
	ASSERT_CALL(tshard_append(&s, &log, max + 5000, false, &sealed));
	ASSERT_EQ(sealed, 4);
	ASSERT_EQ(s.st.active_file_id, 5);
	/* H: after an oversized entry the next one rotates */
	ASSERT_CALL(tshard_append(&s, &log, 10, false, &sealed));
	ASSERT_EQ(sealed, 5);
	ASSERT_EQ(s.st.active_file_id, 6);

	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(check_file_sizes(6, max, 5));
	append_end = s.st.append_end;
	tshard_close(&s);

	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, max, true, &infos, &rep));
	ASSERT_CALL(check_report(&rep, &log, log.n, 6, 6, append_end));
	ASSERT_EQ(rep.scanned_files, 6);
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/* Many rotations with random sizes; every file stays within the limit. */
static void
test_shard_rotation_random(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 99;
	uint32		nsealed = 0;
	uint32		expect_sealed = 1;
	ArmdbPos	prev_flushed = 0;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, ARMDB_MIN_BUFFER_SIZE,
							 ARMDB_MIN_FILE_SIZE, true, &infos, &rep));
	for (int i = 0; i < 300; i++)
	{
		uint32		sealed;
		uint32		len = unit_rand(&rng) % 12000;

		ASSERT_CALL(tshard_append(&s, &log, len, len < 100, &sealed));
		if (sealed != 0)
		{
			ASSERT_EQ(sealed, expect_sealed);
			expect_sealed++;
			nsealed++;
		}
		if (i % 17 == 0)
			ASSERT_CALL(tshard_flush_all(&s));
		ASSERT_MSG(s.st.flushed >= prev_flushed, "flushed went back");
		prev_flushed = s.st.flushed;
	}
	ASSERT(nsealed >= 10);
	ASSERT_EQ(s.st.active_file_id, nsealed + 1);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(check_file_sizes(nsealed + 1, ARMDB_MIN_FILE_SIZE, 0));
	tshard_close(&s);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_EQ(rep.data_files, nsealed + 1);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_shard_flush_positions(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbPos	reached;
	ArmdbPos	mid;
	ArmdbPos	flushed;
	ArmdbPos	end;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	/* nothing to do on an empty shard */
	ASSERT_OK(armdb_shard_flush(&s.st, &s.files, armdb_shard_end(&s.st), &err));
	ASSERT_EQ(s.st.flushed, 0);

	for (int i = 0; i < 3; i++)
		ASSERT_CALL(tshard_append(&s, &log, 100 * i, i == 0, NULL));
	end = armdb_shard_end(&s.st);
	ASSERT(s.st.flushed < end);
	flushed = s.st.flushed;

	/* write-out: in the file, not yet durable */
	ASSERT_OK(armdb_shard_write_out(&s.st, &s.files, &reached, &err));
	ASSERT_EQ(reached, end);
	ASSERT_EQ(s.st.written_end, s.st.append_end);
	ASSERT_EQ(s.st.flushed, flushed);
	ASSERT_CALL(tshard_check_state(&s));
	ASSERT_OK(armdb_shard_sync(&s.st, &s.files, reached, &err));
	ASSERT_EQ(s.st.flushed, flushed);	/* the caller records it */
	armdb_shard_note_flushed(&s.st, reached);
	ASSERT_EQ(s.st.flushed, reached);
	armdb_shard_note_flushed(&s.st, flushed);	/* never goes back */
	ASSERT_EQ(s.st.flushed, reached);

	/* flush up to the middle of what is buffered */
	for (int i = 0; i < 4; i++)
		ASSERT_CALL(tshard_append(&s, &log, 500, false, NULL));
	mid = ARMDB_POS(1, (uint64) log.e[4].loc.offset + log.e[4].loc.len);
	end = armdb_shard_end(&s.st);
	ASSERT_OK(armdb_shard_flush(&s.st, &s.files, mid, &err));
	ASSERT_MSG(s.st.flushed >= mid && s.st.flushed <= end,
			   "flushed %llx outside [%llx, %llx]",
			   (unsigned long long) s.st.flushed, (unsigned long long) mid,
			   (unsigned long long) end);
	flushed = s.st.flushed;

	/* flushing or syncing older positions changes nothing */
	ASSERT_OK(armdb_shard_flush(&s.st, &s.files, ARMDB_POS(1, 100), &err));
	ASSERT_EQ(s.st.flushed, flushed);
	ASSERT_OK(armdb_shard_sync(&s.st, &s.files, ARMDB_POS(1, 100), &err));
	ASSERT_EQ(s.st.flushed, flushed);

	/* a write-out with nothing new reaches the same end */
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_EQ(s.st.flushed, end);
	ASSERT_OK(armdb_shard_write_out(&s.st, &s.files, &reached, &err));
	ASSERT_EQ(reached, end);
	ASSERT_EQ(s.st.flushed, end);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * Reopen after recovery at an end that is not block-aligned (the partial
 * block is reloaded), and at one that is.
 */
static void
reopen_at(uint32 first_len)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		end;
	int			durable;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(tshard_append(&s, &log, first_len, false, NULL));
	ASSERT_CALL(tshard_append(&s, &log, 0, true, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	end = s.st.append_end;
	tshard_close(&s);

	for (int round = 0; round < 3; round++)
	{
		uint32		sizes[] = {7, 0, 5000, 100000, 33};

		tinfos_free(&infos);
		ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
								 &infos, &rep));
		ASSERT_CALL(check_report(&rep, &log, log.n, 1, 1, end));
		ASSERT_CALL(tinfos_match(&infos, &log, log.n));
		ASSERT_EQ(s.st.append_end, end);
		ASSERT_EQ(s.st.buf_start, BLOCK_FLOOR(end));
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

		ASSERT_CALL(append_list(&s, &log, sizes, lengthof(sizes), true));
		ASSERT_EQ(log.e[log.n - lengthof(sizes)].loc.offset, end);
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
		ASSERT_CALL(tshard_flush_all(&s));
		ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
		end = s.st.append_end;
		tshard_close(&s);
	}

	/* appended but never written out: not in the file after a "crash" */
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	durable = log.n;
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	ASSERT_CALL(tshard_append(&s, &log, 20, false, NULL));
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(check_report(&rep, &log, durable, 1, 1, end));
	ASSERT_CALL(tinfos_match(&infos, &log, durable));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_shard_reopen_unaligned(void)
{
	reopen_at(100);				/* ends at 64 + 148 + 48 = 260 */
}

static void
test_shard_reopen_aligned(void)
{
	/* first entry ends at 8192 - 48, the tombstone at 8192 */
	reopen_at(2 * ARMDB_BLOCK_SIZE - ARMDB_FILE_HEADER_SIZE - 2 * ARMDB_ENTRY_HEADER_SIZE);
}

static void
test_shard_fd_cache(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	int			order[] = {0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 0, 3, 7, 0, 5, 2, 6, 1, 4};
	int			fd;
	int			fd2;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							 &infos, &rep));
	/* one entry per file */
	for (int i = 0; i < 8; i++)
		ASSERT_CALL(tshard_append(&s, &log, 40000, false, NULL));
	ASSERT_EQ(s.st.active_file_id, 8);
	ASSERT_CALL(tshard_flush_all(&s));
	for (int i = 0; i < lengthof(order); i++)
	{
		ASSERT_EQ(log.e[order[i]].loc.file_id, order[i] + 1);
		ASSERT_CALL(tshard_verify(&s, &log.e[order[i]]));
	}

	fd = armdb_shard_file_fd(&s.files, 3, &err);
	ASSERT(fd >= 0);
	ASSERT(fcntl(fd, F_GETFD) != -1);
	fd2 = armdb_shard_file_fd(&s.files, 3, &err);
	ASSERT_EQ(fd2, fd);
	armdb_shard_forget_file(&s.files, 3);
	fd = armdb_shard_file_fd(&s.files, 3, &err);
	ASSERT(fd >= 0);
	ASSERT_CALL(tshard_verify(&s, &log.e[2]));
	armdb_shard_forget_file(&s.files, 3);
	armdb_shard_forget_file(&s.files, 3);	/* twice: harmless */
	armdb_shard_forget_file(&s.files, 999);

	/* a file that does not exist */
	armdb_error_clear(&err);
	ASSERT_EQ(armdb_shard_file_fd(&s.files, 50, &err), -1);
	ASSERT_EQ(err.code, ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOENT);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));

	/* the active file still takes appends after all that */
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * cached_reads: point reads go through the page cache while appends stay
 * O_DIRECT.  The tail block is read (and so cached), then rewritten by a
 * direct write of the next entries: reads must see the new bytes.
 */
static void
test_shard_cached_reads(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							 &infos, &rep));
	s.files.cached_reads = true;
	for (int round = 0; round < 6; round++)
	{
		for (int i = 0; i < 5; i++)
			ASSERT_CALL(tshard_append(&s, &log, 100 + 37 * i, false, NULL));
		ASSERT_CALL(tshard_flush_all(&s));
		/* from the file, never the buffer: through the cache */
		for (int i = 0; i < log.n; i++)
		{
			ArmdbError	err;
			ArmdbEntryHeader hdr;
			char	   *dst = malloc(log.e[i].loc.len);

			ASSERT_OK(armdb_shard_read_file(&s.files, &log.e[i].loc, dst,
											&hdr, &err));
			ASSERT(memcmp(&hdr, &log.e[i].hdr, sizeof(hdr)) == 0);
			ASSERT_EQ(unit_check_fill(dst + armdb_entry_header_size(hdr.gsn),
									  hdr.value_len, log.e[i].seed), -1);
			free(dst);
		}
	}
	/* a cached descriptor and a direct one of the same file */
	{
		int			n = 0;

		for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
			if (s.files.fds[i].file_id == 1)
				n++;
		ASSERT_EQ(n, 2);
	}
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * A cached image older than the file (armdb_debug_stale_cached_reads: the
 * second half of every block read as zeros) is never believed: the entry
 * is read again with O_DIRECT.  A damaged entry still fails, both ways.
 */
/*
 * A shard reading through the page cache, with 40 entries of 30 to 8259
 * bytes written out: the cached-read tests' start.
 */
static bool
start_cached_shard(TShard *s, TLog *log, TInfos *infos)
{
	ArmdbRecoveryReport rep;

	tlog_init(log);
	tinfos_init(infos);
	HASSERT_CALL(tshard_start(s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							  infos, &rep));
	s->files.cached_reads = true;
	for (int i = 0; i < 40; i++)
		HASSERT_CALL(tshard_append(s, log, 30 + 211 * i, false, NULL));
	HASSERT_CALL(tshard_flush_all(s));
	return true;
}

static void
test_shard_stale_cached_reads(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbError	err;
	ArmdbEntryHeader hdr;
	char		path[MAXPGPATH];
	char	   *dst;

	ASSERT_CALL(start_cached_shard(&s, &log, &infos));
	armdb_debug_stale_cached_reads = true;
	for (int i = 0; i < log.n; i++)
	{
		dst = malloc(log.e[i].loc.len);
		ASSERT_OK(armdb_shard_read_file(&s.files, &log.e[i].loc, dst, &hdr,
										&err));
		ASSERT(memcmp(&hdr, &log.e[i].hdr, sizeof(hdr)) == 0);
		ASSERT_EQ(unit_check_fill(dst + armdb_entry_header_size(hdr.gsn),
								  hdr.value_len, log.e[i].seed), -1);
		free(dst);
	}
	/* the image really is stale: the cached read alone fails */
	{
		ArmdbAlignedBuf buf = {0};
		size_t		nread;
		bool		zeros = false;

		ASSERT_OK(armdb_aligned_alloc(&buf, 2 * ARMDB_BLOCK_SIZE, &err));
		ASSERT_OK(armdb_shard_pread(&s.files, 1, true, buf.data,
									2 * ARMDB_BLOCK_SIZE, 0, &nread, &err));
		for (size_t o = ARMDB_BLOCK_SIZE / 2; o < ARMDB_BLOCK_SIZE; o++)
			zeros = zeros || buf.data[o] == 0;
		ASSERT(zeros);
		armdb_aligned_free(&buf);
	}

	unit_file(path, 1, ARMDB_FILE_DATA);
	ASSERT(unit_flip_bit(path, log.e[5].loc.offset +
						 armdb_entry_header_size(log.e[5].hdr.gsn) + 7, 4));
	dst = malloc(log.e[5].loc.len);
	ASSERT_FAILS(armdb_shard_read_file(&s.files, &log.e[5].loc, dst, &hdr,
									   &err), ARMDB_ERR_CORRUPT);
	armdb_debug_stale_cached_reads = false;
	ASSERT_FAILS(armdb_shard_read_file(&s.files, &log.e[5].loc, dst, &hdr,
									   &err), ARMDB_ERR_CORRUPT);
	free(dst);
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * A batch of reads through the page cache (bitmap scans' read-ahead): each
 * entry as a point read gives it; a stale cached image, a damaged entry
 * and a file that cannot be opened leave theirs unread (ok false), for the
 * caller's own read to decide, and the others read still.
 */
static void
test_shard_read_files_batch(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbShardFiles *files[40];
	ArmdbLocation locs[40];
	char	   *dst[40];
	ArmdbEntryHeader hdrs[40];
	bool		ok[40];
	char		path[MAXPGPATH];
	int			n;

	ASSERT_CALL(start_cached_shard(&s, &log, &infos));
	n = log.n;
	ASSERT(n == 40);
	for (int i = 0; i < n; i++)
	{
		files[i] = &s.files;
		locs[i] = log.e[i].loc;
		dst[i] = malloc(locs[i].len);
	}
	armdb_shard_read_files_batch(files, locs, dst, hdrs, ok, n);
	for (int i = 0; i < n; i++)
	{
		ASSERT(ok[i]);
		ASSERT(memcmp(&hdrs[i], &log.e[i].hdr, sizeof(hdrs[i])) == 0);
		ASSERT_EQ(unit_check_fill(dst[i] + armdb_entry_header_size(hdrs[i].gsn),
								  hdrs[i].value_len, log.e[i].seed), -1);
	}

	/* stale images: every entry reaching into a block's second half fails */
	armdb_debug_stale_cached_reads = true;
	armdb_shard_read_files_batch(files, locs, dst, hdrs, ok, n);
	armdb_debug_stale_cached_reads = false;
	for (int i = 0; i < n; i++)
	{
		uint64		last = (uint64) locs[i].offset + locs[i].len - 1;
		bool		halves = false;

		for (uint64 o = locs[i].offset; o <= last; o++)
			halves = halves || o % ARMDB_BLOCK_SIZE >= ARMDB_BLOCK_SIZE / 2;
		ASSERT(ok[i] == !halves);
	}

	/* a damaged entry, and a file that is not there */
	unit_file(path, locs[5].file_id, ARMDB_FILE_DATA);
	ASSERT(unit_flip_bit(path, locs[5].offset +
						 armdb_entry_header_size(log.e[5].hdr.gsn) + 7, 4));
	locs[7].file_id = 999;
	armdb_shard_read_files_batch(files, locs, dst, hdrs, ok, n);
	for (int i = 0; i < n; i++)
		ASSERT(ok[i] == (i != 5 && i != 7));

	for (int i = 0; i < n; i++)
		free(dst[i]);
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/*
 * A data file from before short entries (no ARMDB_FILE_FLAG_SHORT_ENTRIES
 * in its header) that is the active file at start takes no appends: the
 * first one rotates, so an older armdb never meets a short entry in a file
 * it accepts.  Its entries stay readable.
 */
static void
test_shard_old_active_file(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	char	   *image;
	size_t		len;
	ArmdbFileHeader fh;
	uint32		sealed;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							 &infos, &rep));
	for (int i = 0; i < 4; i++)
		ASSERT_CALL(tshard_append(&s, &log, 50 + i, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	/* the header as an older armdb wrote it */
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &len);
	ASSERT(image != NULL);
	memcpy(&fh, image, sizeof(fh));
	ASSERT(fh.flags & ARMDB_FILE_FLAG_SHORT_ENTRIES);
	fh.flags = 0;
	unit_file_header_reseal(&fh);
	memcpy(image, &fh, sizeof(fh));
	ASSERT(unit_write_all(path, image, len));
	free(image);

	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							 &infos, &rep));
	ASSERT_EQ(s.st.active_file_id, 1);
	ASSERT(!s.st.short_entries);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_append(&s, &log, 10, false, &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_EQ(s.st.active_file_id, 2);
	ASSERT(s.st.short_entries);
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							 &infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT(s.st.short_entries);
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_shard_invalid(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	uint32		sealed;
	ArmdbShardState before;
	char		value[16] = {0};

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	before = s.st;

	tentry_header(&hdr, 50, 16, false);
	hdr.value_len = ARMDB_MAX_VALUE_LEN + 1;
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed, &err),
				 ARMDB_ERR_INVALID);
	tentry_header(&hdr, 50, 16, false);
	hdr.gsn |= UINT64CONST(1) << 60;	/* an undefined flag */
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, value, &loc, &sealed, &err),
				 ARMDB_ERR_INVALID);
	ASSERT(before.active_file_id == s.st.active_file_id &&
		   before.buf_start == s.st.buf_start &&
		   before.append_end == s.st.append_end &&
		   before.written_end == s.st.written_end &&
		   before.flushed == s.st.flushed && before.failed == s.st.failed);
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	ASSERT_CALL(tshard_verify_all(&s, &log, log.n));
	tshard_close(&s);

	/* an impossible recovered end */
	ASSERT_CALL(tshard_init(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true));
	ASSERT_FAILS(armdb_shard_open(&s.st, &s.files, 1, 10, &err), ARMDB_ERR_INVALID);
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

/* The shard directory is created by the first append. */
static void
test_shard_creates_dir(void)
{
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];

	unit_path(dir, "rel/shard7");
	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_EQ(rep.data_files, 0);
	ASSERT(!unit_exists(dir));
	ASSERT_CALL(tshard_append(&s, &log, 10, false, NULL));
	snprintf(path, sizeof(path), "%s/000001.data", dir);
	ASSERT(unit_exists(path));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(tshard_start(&s, dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, 1));
	tshard_close(&s);
	tinfos_free(&infos);
	tlog_free(&log);
}

const UnitTest unit_shard_tests[] = {
	{"shard_roundtrip", test_shard_roundtrip},
	{"shard_roundtrip_buffered_io", test_shard_roundtrip_buffered_io},
	{"shard_min_buffer", test_shard_min_buffer},
	{"shard_growing_buffer", test_shard_growing_buffer},
	{"shard_released_buffer", test_shard_released_buffer},
	{"shard_should_rotate", test_shard_should_rotate},
	{"shard_rotation_boundary", test_shard_rotation_boundary},
	{"shard_rotation_random", test_shard_rotation_random},
	{"shard_flush_positions", test_shard_flush_positions},
	{"shard_reopen_unaligned", test_shard_reopen_unaligned},
	{"shard_reopen_aligned", test_shard_reopen_aligned},
	{"shard_fd_cache", test_shard_fd_cache},
	{"shard_cached_reads", test_shard_cached_reads},
	{"shard_stale_cached_reads", test_shard_stale_cached_reads},
	{"shard_read_files_batch", test_shard_read_files_batch},
	{"shard_old_active_file", test_shard_old_active_file},
	{"shard_invalid", test_shard_invalid},
	{"shard_creates_dir", test_shard_creates_dir},
	{NULL, NULL}
};
