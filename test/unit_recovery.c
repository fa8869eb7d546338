/*-------------------------------------------------------------------------
 *
 * unit_recovery.c
 *	  Tests of recovery.c: scans, hint files, torn tails, corruption.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Append sizes (0: tombstone) to a fresh shard in unit_dir, flush, close. */
static bool
build_shard(TLog *log, const uint32 *sizes, int n, uint32 max_file_size)
{
	TShard		s;
	TInfos		infos;
	ArmdbRecoveryReport rep;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, max_file_size, true,
							  &infos, &rep));
	tinfos_free(&infos);
	for (int i = 0; i < n; i++)
		HASSERT_CALL(tshard_append(&s, log, sizes[i], sizes[i] == 0, NULL));
	HASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	return true;
}

/* Three data files with random entries; files 1 and 2 sealed. */
static bool
build_three_files(TLog *log)
{
	TShard		s;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 5;
	uint32		sealed;
	int			guard = 0;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							  &infos, &rep));
	tinfos_free(&infos);
	while (s.st.active_file_id < 3 && guard++ < 10000)
	{
		uint32		len = unit_rand(&rng) % 9000;

		HASSERT_CALL(tshard_append(&s, log, len, len < 500, &sealed));
	}
	for (int i = 0; i < 4; i++)
		HASSERT_CALL(tshard_append(&s, log, 100 * i, i == 0, &sealed));
	HASSERT_EQ(s.st.active_file_id, 3);
	HASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	return true;
}

/* Reopen through recovery, append one entry, flush, close; recover again. */
static bool
append_after_recovery(TLog *log, int n_before)
{
	TShard		s;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		end;
	uint32		file;
	bool		ok;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &infos, &rep));
	HASSERT_EQ(infos.n, n_before);
	tinfos_free(&infos);
	log->n = n_before;
	end = (uint32) s.st.append_end;
	file = s.st.active_file_id;
	HASSERT_CALL(tshard_append(&s, log, 77, false, NULL));
	HASSERT_EQ(log->e[log->n - 1].loc.file_id, file);
	HASSERT_EQ(log->e[log->n - 1].loc.offset, end);
	HASSERT_CALL(tshard_flush_all(&s));
	HASSERT_CALL(tshard_verify_all(&s, log, log->n));
	tshard_close(&s);

	ok = trecover(&infos, &rep) && tinfos_match(&infos, log, log->n);
	if (ok && rep.torn_tail)
	{
		unit_fail(__FILE__, __LINE__, "torn tail after a clean append");
		ok = false;
	}
	tinfos_free(&infos);
	return ok;
}

/*
 * A file of short entries (32-byte tombstones, fewer bytes than their 48-byte
 * hint records): its hint file is larger than the data it describes, and
 * loads, as does a scan; a merge-sized tail of fewer than 48 bytes is read.
 */
static void
test_recovery_short_entries(void)
{
	ArmdbError	err;
	TShard		s;
	TInfos		infos;
	TInfos		hinted;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	const int	n = 300;

	tinfos_init(&infos);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true,
							 &infos, &rep));
	for (int i = 0; i < n; i++)
	{
		ArmdbEntryHeader h;
		ArmdbLocation loc;
		uint32		sealed;

		memset(&h, 0, sizeof(h));
		h.gsn = (uint64) (i + 1) | ARMDB_GSN_FLAG_TOMBSTONE;
		h.xid = 5000 + i;
		h.slot = h.root_slot = 10 + i;
		h.prev_slot = ARMDB_INVALID_SLOT;
		ASSERT_OK(armdb_shard_append(&s.st, &s.files, &h, NULL, &loc,
									 &sealed, &err));
		ASSERT_EQ(loc.len, ARMDB_ENTRY_SHORT_HEADER_SIZE);
		ASSERT(h.gsn & ARMDB_GSN_FLAG_SHORT_HEADER);
	}
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	tinfos_free(&infos);

	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	unit_file(path, 1, ARMDB_FILE_HINT);
	{
		char		dpath[MAXPGPATH];

		unit_file(dpath, 1, ARMDB_FILE_DATA);
		ASSERT(unit_file_size(path) > ARMDB_FILE_HEADER_SIZE + n * ARMDB_ENTRY_SHORT_HEADER_SIZE);
		tinfos_init(&hinted);
		ASSERT_OK(armdb_hint_load(unit_io, unit_dir, 1, unit_file_size(dpath), NULL,
								  tinfos_cb, &hinted, &err));
		ASSERT_EQ(hinted.n, n);
	}
	for (int i = 0; i < n; i++)
	{
		ASSERT_EQ(hinted.e[i].slot, 10 + i);
		ASSERT_EQ(hinted.e[i].root_slot, 10 + i);
		ASSERT_EQ(hinted.e[i].prev_slot, ARMDB_INVALID_SLOT);
		ASSERT_EQ(hinted.e[i].len, ARMDB_ENTRY_SHORT_HEADER_SIZE);
	}

	/* recovery from the hint and from a scan agree */
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(rep.bad_hints, 0);
	ASSERT_CALL(tinfos_equal(&infos, &hinted));
	tinfos_free(&infos);
	ASSERT(unlink(path) == 0);
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_CALL(tinfos_equal(&infos, &hinted));
	ASSERT_EQ(rep.end_offset, ARMDB_FILE_HEADER_SIZE + (uint64) n * ARMDB_ENTRY_SHORT_HEADER_SIZE);
	tinfos_free(&infos);
	tinfos_free(&hinted);
}

static void
test_recovery_hinted_vs_scanned(void)
{
	ArmdbError	err;
	TLog		log;
	TInfos		hinted;
	TInfos		scanned;
	TInfos		one;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	int			n1 = 0;

	tlog_init(&log);
	ASSERT_CALL(build_three_files(&log));

	/* without hints */
	tinfos_init(&scanned);
	ASSERT_CALL(trecover(&scanned, &rep));
	ASSERT_EQ(rep.data_files, 3);
	ASSERT_EQ(rep.hinted_files, 0);
	ASSERT_EQ(rep.scanned_files, 3);
	ASSERT_EQ(rep.max_gsn, tlog_max_gsn(&log, log.n));
	ASSERT_CALL(tinfos_match(&scanned, &log, log.n));

	/* hints of the sealed files */
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 2, true, false, NULL, &err));
	ASSERT_EQ(unit_count_files(unit_dir, ".hint"), 2);
	ASSERT_EQ(unit_count_files(unit_dir, ".tmp"), 0);
	tinfos_init(&hinted);
	ASSERT_CALL(trecover(&hinted, &rep));
	ASSERT_EQ(rep.data_files, 3);
	ASSERT_EQ(rep.hinted_files, 2);
	ASSERT_EQ(rep.scanned_files, 1);
	ASSERT_EQ(rep.bad_hints, 0);
	ASSERT_EQ(rep.last_file_id, 3);
	ASSERT_EQ(rep.end_offset, (uint64) log.e[log.n - 1].loc.offset + log.e[log.n - 1].loc.len);
	ASSERT_EQ(rep.max_gsn, tlog_max_gsn(&log, log.n));
	ASSERT_CALL(tinfos_equal(&hinted, &scanned));

	/* armdb_hint_load directly */
	for (int i = 0; i < log.n; i++)
		if (log.e[i].loc.file_id == 1)
			n1++;
	unit_file(path, 1, ARMDB_FILE_DATA);
	tinfos_init(&one);
	ASSERT_OK(armdb_hint_load(unit_io, unit_dir, 1, unit_file_size(path), NULL,
							  tinfos_cb, &one, &err));
	ASSERT_CALL(tinfos_match(&one, &log, n1));
	tinfos_free(&one);
	tinfos_init(&one);
	ASSERT_FAILS(armdb_hint_load(unit_io, unit_dir, 1,
								 log.e[n1 - 1].loc.offset + log.e[n1 - 1].loc.len - 1, NULL,
								 tinfos_cb, &one, &err), ARMDB_ERR_CORRUPT);
	ASSERT_EQ(one.n, 0);
	ASSERT_FAILS(armdb_hint_load(unit_io, unit_dir, 3, 1 << 20, NULL, tinfos_cb, &one,
								 &err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOENT);

	/* armdb_hint_write from entries the caller has: same as built */
	{
		char	   *built;
		char	   *written;
		size_t		blen;
		size_t		wlen;
		uint64		end1 = (uint64) log.e[n1 - 1].loc.offset + log.e[n1 - 1].loc.len;

		unit_file(path, 1, ARMDB_FILE_HINT);
		built = unit_read_all(path, &blen);
		ASSERT_OK(armdb_hint_write(unit_dir, 1, scanned.e, n1, end1, NULL, &err));
		written = unit_read_all(path, &wlen);
		ASSERT(built != NULL && written != NULL);
		ASSERT_EQ(wlen, blen);
		ASSERT(memcmp(built, written, blen) == 0);
		free(built);
		free(written);
	}

	/* hint of an empty data file, written by the caller */
	{
		char		block[ARMDB_BLOCK_SIZE] = {0};
		ArmdbFileHeader fh;

		armdb_file_header_init(&fh, 9, 0);
		memcpy(block, &fh, sizeof(fh));
		unit_file(path, 9, ARMDB_FILE_DATA);
		ASSERT(unit_write_all(path, block, sizeof(block)));
	}
	ASSERT_OK(armdb_hint_write(unit_dir, 9, NULL, 0, ARMDB_FILE_HEADER_SIZE, NULL, &err));
	tinfos_init(&one);
	ASSERT_OK(armdb_hint_load(unit_io, unit_dir, 9, ARMDB_BLOCK_SIZE, NULL, tinfos_cb,
							  &one, &err));
	ASSERT_EQ(one.n, 0);
	tinfos_free(&one);
	unit_file(path, 9, ARMDB_FILE_HINT);
	ASSERT(unlink(path) == 0);
	unit_file(path, 9, ARMDB_FILE_DATA);
	ASSERT(unlink(path) == 0);

	/* hints removed: scanned again, same entries */
	unit_file(path, 1, ARMDB_FILE_HINT);
	ASSERT(unlink(path) == 0);
	tinfos_free(&hinted);
	tinfos_init(&hinted);
	ASSERT_CALL(trecover(&hinted, &rep));
	ASSERT_EQ(rep.hinted_files, 1);
	ASSERT_EQ(rep.scanned_files, 2);
	ASSERT_CALL(tinfos_equal(&hinted, &scanned));

	/* a hint without its data file is ignored */
	unit_file(path, 2, ARMDB_FILE_HINT);
	{
		char		orphan[MAXPGPATH];

		unit_file(orphan, 7, ARMDB_FILE_HINT);
		ASSERT(rename(path, orphan) == 0);
	}
	tinfos_free(&hinted);
	tinfos_init(&hinted);
	ASSERT_CALL(trecover(&hinted, &rep));
	ASSERT_EQ(rep.data_files, 3);
	ASSERT_CALL(tinfos_equal(&hinted, &scanned));

	tinfos_free(&hinted);
	tinfos_free(&scanned);
	tlog_free(&log);
}

/*
 * A hint built for the newest file, which then takes more appends after
 * recovery and is sealed by a rotation: its entries after the hinted part
 * must not be lost.
 */
static void
test_recovery_hint_active_file(void)
{
	ArmdbError	err;
	TShard		s;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		sizes[] = {100, 0, 2000, 300};
	uint32		sealed = 0;

	tlog_init(&log);
	tinfos_init(&infos);
	ASSERT_CALL(build_shard(&log, sizes, lengthof(sizes), ARMDB_MIN_FILE_SIZE));
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));

	/* reopen and append to file 1 */
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							 &infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_EQ(s.st.active_file_id, 1);
	for (int i = 0; i < 3; i++)
		ASSERT_CALL(tshard_append(&s, &log, 1000, false, NULL));
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	tinfos_free(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	tinfos_free(&infos);

	/* reopen, append until file 1 is sealed */
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							 &infos, &rep));
	tinfos_free(&infos);
	while (sealed == 0)
		ASSERT_CALL(tshard_append(&s, &log, 5000, false, &sealed));
	ASSERT_EQ(sealed, 1);
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_MSG(infos.n == log.n,
			   "recovery found %d entries of %d: the hint of file 1, built "
			   "while it was the active file, hid the entries appended to it "
			   "later", infos.n, log.n);
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	tinfos_free(&infos);
	tlog_free(&log);
}

/* The last entry crosses the block boundary at 8192. */
static const uint32 torn_sizes[] = {100, 0, 5000, 2800, 300};

static void
torn_tail(bool garbage)
{
	TLog		log;
	char		path[MAXPGPATH];
	char	   *image;
	size_t		image_len;
	uint32		start;
	uint32		len;
	int			n;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, torn_sizes, lengthof(torn_sizes), T_FILE_SIZE));
	n = log.n;
	start = log.e[n - 1].loc.offset;
	len = log.e[n - 1].loc.len;
	ASSERT(start < 8192 && start + len > 8192);
	/* with a non-zero first byte, every non-empty tail is garbage */
	ASSERT((log.e[n - 1].hdr.crc & 0xFF) != 0);
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &image_len);
	ASSERT(image != NULL && image_len >= start + len);

	for (uint32 k = 0; k <= len; k++)
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;
		int64		size_before;
		int64		size_after;
		bool		complete;
		bool		torn;

		if (garbage)
		{
			if (k == len)
				break;
			ASSERT(unit_write_all(path, image, image_len));
			for (uint32 i = start + k; i < start + len; i++)
			{
				unsigned char c = (unsigned char) image[i] + 1;

				if (c == 0)
					c = 2;
				ASSERT(unit_overwrite(path, i, &c, 1));
			}
		}
		else
			ASSERT(unit_write_all(path, image, start + k));
		size_before = unit_file_size(path);
		complete = !garbage && k == len;
		torn = !complete && (garbage || k > 0);

		tinfos_init(&infos);
		ASSERT_CALL(trecover(&infos, &rep));
		size_after = unit_file_size(path);
		ASSERT_MSG(infos.n == (complete ? n : n - 1),
				   "tail %u of %u (%s): %d entries", k, len,
				   garbage ? "garbage" : "truncated", infos.n);
		ASSERT_CALL(tinfos_match(&infos, &log, infos.n));
		ASSERT_EQ(rep.entries, infos.n);
		ASSERT_EQ(rep.last_file_id, 1);
		ASSERT_EQ(rep.end_offset, complete ? start + len : start);
		ASSERT_MSG(rep.torn_tail == torn, "tail %u of %u (%s): torn_tail %d",
				   k, len, garbage ? "garbage" : "truncated", rep.torn_tail);
		ASSERT_EQ(rep.max_gsn, tlog_max_gsn(&log, infos.n));
		if (torn)
		{
			ASSERT_EQ(rep.truncated_bytes, size_before - start);
			ASSERT_EQ(size_after, start);
		}
		else
		{
			ASSERT_EQ(rep.truncated_bytes, 0);
			ASSERT_EQ(size_after, size_before);
		}
		tinfos_free(&infos);

		/* appends continue at the end found (a sample of the offsets) */
		if (k % 23 == 0 || k < 2 || (k >= 46 && k <= 50) || k + 2 >= len)
		{
			TLog		copy = log;

			copy.e = malloc(sizeof(TEntry) * (log.n + 1));
			copy.cap = log.n + 1;
			memcpy(copy.e, log.e, sizeof(TEntry) * log.n);
			if (!append_after_recovery(&copy, complete ? n : n - 1))
			{
				free(copy.e);
				unit_fail(__FILE__, __LINE__, "append after a tail of %u of %u (%s)",
						  k, len, garbage ? "garbage" : "truncated");
				return;
			}
			free(copy.e);
		}
	}
	free(image);
	tlog_free(&log);
}

static void
test_recovery_torn_truncated(void)
{
	torn_tail(false);
}

static void
test_recovery_torn_garbage(void)
{
	torn_tail(true);
}

/* A flipped bit in the active file's last entry: a torn tail. */
static void
test_recovery_flipped_active(void)
{
	TLog		log;
	char		path[MAXPGPATH];
	char	   *image;
	size_t		image_len;
	uint32		start;
	uint32		len;
	int			n;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, torn_sizes, lengthof(torn_sizes), T_FILE_SIZE));
	n = log.n;
	start = log.e[n - 1].loc.offset;
	len = log.e[n - 1].loc.len;
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &image_len);
	ASSERT(image != NULL);

	for (uint32 i = 0; i < len; i += (i < ARMDB_ENTRY_HEADER_SIZE ? 1 : 13))
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;

		ASSERT(unit_write_all(path, image, image_len));
		ASSERT(unit_flip_bit(path, start + i, i % 8));
		tinfos_init(&infos);
		ASSERT_CALL(trecover(&infos, &rep));
		ASSERT_MSG(infos.n == n - 1, "bit %u of byte %u flipped: %d entries",
				   i % 8, i, infos.n);
		ASSERT_CALL(tinfos_match(&infos, &log, n - 1));
		ASSERT_EQ(rep.end_offset, start);
		ASSERT_EQ(rep.torn_tail, true);
		ASSERT_EQ(rep.truncated_bytes, image_len - start);
		ASSERT_EQ(unit_file_size(path), start);
		tinfos_free(&infos);
	}
	ASSERT_CALL(append_after_recovery(&log, n - 1));
	free(image);
	tlog_free(&log);
}

static bool
files_equal(const char *path, const char *image, size_t len)
{
	size_t		got_len;
	char	   *got = unit_read_all(path, &got_len);
	bool		same = got != NULL && got_len == len && memcmp(got, image, len) == 0;

	free(got);
	HASSERT_MSG(same, "%s was changed by a failed recovery", path);
	return true;
}

/*
 * ARMDB_RECOVER_NO_CUT (a hot standby's reader): a torn tail ends the
 * active file where the good entries end, and the file is left as it is,
 * for replay to rewrite.
 */
static void
test_recovery_no_cut(void)
{
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	ArmdbError	err;
	char		path[MAXPGPATH];
	char	   *image;
	size_t		image_len;
	uint32		start;
	int			n;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, torn_sizes, lengthof(torn_sizes), T_FILE_SIZE));
	n = log.n;
	start = log.e[n - 1].loc.offset;
	unit_file(path, 1, ARMDB_FILE_DATA);
	ASSERT(unit_flip_bit(path, start + 3, 2));
	image = unit_read_all(path, &image_len);
	ASSERT(image != NULL);

	tinfos_init(&infos);
	ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_NO_CUT, NULL,
								  tinfos_cb, &infos, &rep, &err));
	ASSERT_EQ(infos.n, n - 1);
	ASSERT_CALL(tinfos_match(&infos, &log, n - 1));
	ASSERT_EQ(rep.torn_tail, true);
	ASSERT_EQ(rep.end_offset, start);
	ASSERT_EQ(rep.truncated_bytes, 0);
	ASSERT_CALL(files_equal(path, image, image_len));
	tinfos_free(&infos);
	free(image);
	tlog_free(&log);
}

/* infos equal to log's entries but log->e[skip] */
static bool
tinfos_match_but(const TInfos *infos, const TLog *log, int skip)
{
	HASSERT_EQ(infos->n, log->n - 1);
	for (int i = 0, j = 0; i < log->n; i++)
	{
		if (i == skip)
			continue;
		HASSERT_EQ(infos->e[j].gsn, log->e[i].hdr.gsn);
		HASSERT_EQ(infos->e[j].offset, log->e[i].loc.offset);
		HASSERT_EQ(infos->e[j].len, log->e[i].loc.len);
		j++;
	}
	return true;
}

/*
 * Damage in the middle of the active file is corruption, not a torn tail:
 * a torn write is the last one, with nothing valid after it.  After a clean
 * shutdown there is no torn tail at all.  Nothing is changed either way.
 */
static void
test_recovery_damaged_active(void)
{
	ArmdbError	err;
	TLog		log;
	char		path[MAXPGPATH];
	char	   *image;
	size_t		image_len;
	int			n;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, torn_sizes, lengthof(torn_sizes), T_FILE_SIZE));
	n = log.n;
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &image_len);
	ASSERT(image != NULL);

	/* every entry but the last, header and value bytes, after a crash */
	for (int k = 0; k < n - 1; k++)
	{
		uint32		offs[3] = {0, 20, log.e[k].loc.len - 1};

		for (int j = 0; j < 3; j++)
		{
			ArmdbRecoveryReport rep;

			ASSERT(unit_flip_bit(path, log.e[k].loc.offset + offs[j], j));
			ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true,
											 ARMDB_RECOVER_AFTER_CRASH, NULL, NULL,
											 NULL, &rep, &err),
						 ARMDB_ERR_CORRUPT);
			ASSERT_MSG(strstr(err.message, "a valid entry follows") != NULL,
					   "%s", err.message);
			ASSERT(unit_flip_bit(path, log.e[k].loc.offset + offs[j], j));
			ASSERT_CALL(files_equal(path, image, image_len));
		}
	}

	/* after a clean shutdown, even the last entry's damage is corruption */
	{
		ArmdbRecoveryReport rep;
		uint32		at = log.e[n - 1].loc.offset + 60;

		ASSERT(unit_flip_bit(path, at, 3));
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, 0, NULL, NULL, NULL,
										 &rep, &err), ARMDB_ERR_CORRUPT);
		image[at] ^= 1 << 3;
		ASSERT_CALL(files_equal(path, image, image_len));
		/* and the same after a crash is a torn tail, cut */
		ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true,
									  ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
									  &rep, &err));
		ASSERT_EQ(rep.torn_tail, true);
		ASSERT_EQ(unit_file_size(path), log.e[n - 1].loc.offset);
	}
	free(image);
	tlog_free(&log);
}

/*
 * Salvaging: the user's explicit choice keeps every good entry around the
 * damage, cuts nothing from the middle of a file, copies a damaged tail
 * aside before cutting it, and hints a salvaged immutable file so that the
 * next recovery needs no salvaging.
 */
static void
test_recovery_salvage(void)
{
	ArmdbError	err;
	TLog		log;
	char		path[MAXPGPATH];
	char		damaged[MAXPGPATH];
	char	   *image;
	size_t		image_len;
	int			n;
	int			mid;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, torn_sizes, lengthof(torn_sizes), T_FILE_SIZE));
	n = log.n;
	mid = n / 2;
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &image_len);

	/* a middle entry of the active file */
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;

		ASSERT(unit_flip_bit(path, log.e[mid].loc.offset + 30, 1));
		tinfos_init(&infos);
		ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true,
									  ARMDB_RECOVER_SALVAGE, NULL, tinfos_cb, &infos,
									  &rep, &err));
		ASSERT_CALL(tinfos_match_but(&infos, &log, mid));
		ASSERT_EQ(rep.salvaged_files, 1);
		ASSERT_EQ(rep.salvaged_bytes, log.e[mid].loc.len);
		ASSERT_EQ(rep.first_salvaged_offset, log.e[mid].loc.offset);
		ASSERT_EQ(rep.active_salvaged, true);
		ASSERT_EQ(rep.end_offset, image_len > 0 ? log.e[n - 1].loc.offset + log.e[n - 1].loc.len : 0);
		ASSERT_EQ(unit_file_size(path), image_len);
		tinfos_free(&infos);

		/* the hint the caller then writes lists the good entries */
		ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, true, NULL, &err));
		ASSERT(unit_flip_bit(path, log.e[mid].loc.offset + 30, 1));
		ASSERT(unit_write_all(path, image, image_len));
		unit_file(damaged, 1, ARMDB_FILE_HINT);
		ASSERT(unlink(damaged) == 0);
	}

	/* the last entry, after a clean shutdown: copied aside, then cut */
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;
		uint32		at = log.e[n - 1].loc.offset;
		char	   *saved;
		size_t		saved_len;

		ASSERT(unit_flip_bit(path, at + 5, 0));
		tinfos_init(&infos);
		ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true,
									  ARMDB_RECOVER_SALVAGE, NULL, tinfos_cb, &infos,
									  &rep, &err));
		ASSERT_CALL(tinfos_match(&infos, &log, n - 1));
		ASSERT_EQ(rep.salvaged_files, 1);
		ASSERT_EQ(rep.active_salvaged, false);
		ASSERT_EQ(unit_file_size(path), at);
		snprintf(damaged, sizeof(damaged), "%s/000001.damaged.%u", unit_dir, at);
		saved = unit_read_all(damaged, &saved_len);
		ASSERT(saved != NULL);
		ASSERT_EQ(saved_len, image_len - at);
		image[at + 5] ^= 1;
		ASSERT(memcmp(saved, image + at, saved_len) == 0);
		free(saved);
		tinfos_free(&infos);
	}
	free(image);
	tlog_free(&log);
}

/*
 * Salvaging an immutable file leaves a hint: no salvaging needed again.  A
 * salvage reads the data file even where a hint exists (a hint says where
 * the entries are, not whether they are intact), and meets the damage again.
 */
static void
test_recovery_salvage_immutable(void)
{
	ArmdbError	err;
	TLog		log;
	char		p1[MAXPGPATH];
	int			last1 = -1;
	int			mid;

	tlog_init(&log);
	ASSERT_CALL(build_three_files(&log));
	unit_file(p1, 1, ARMDB_FILE_DATA);
	for (int i = 0; i < log.n; i++)
		if (log.e[i].loc.file_id == 1)
			last1 = i;
	mid = last1 / 2;
	ASSERT(unit_flip_bit(p1, log.e[mid].loc.offset + 40, 2));

	for (int pass = 0; pass < 3; pass++)
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;
		bool		salvage = pass != 1;

		tinfos_init(&infos);
		/* with salvaging, without (the hint is used), with again */
		ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true,
									  salvage ? ARMDB_RECOVER_SALVAGE : 0, NULL,
									  tinfos_cb, &infos, &rep, &err));
		ASSERT_CALL(tinfos_match_but(&infos, &log, mid));
		ASSERT_EQ(rep.salvaged_files, salvage ? 1 : 0);
		ASSERT_EQ(rep.first_salvaged_offset,
				  salvage ? log.e[mid].loc.offset : 0);
		ASSERT_EQ(rep.hinted_files, salvage ? 0 : 1);
		tinfos_free(&infos);
	}
	tlog_free(&log);
}

/* Damage in an older, immutable file: corruption, nothing cut. */
static void
test_recovery_flipped_immutable(void)
{
	ArmdbError	err;
	TLog		log;
	char		p1[MAXPGPATH];
	char		p2[MAXPGPATH];
	char		p3[MAXPGPATH];
	char	   *img1;
	char	   *img2;
	char	   *img3;
	size_t		len1;
	size_t		len2;
	size_t		len3;
	int			last1 = -1;
	uint64		offsets[32];
	int			noff = 0;

	tlog_init(&log);
	ASSERT_CALL(build_three_files(&log));
	unit_file(p1, 1, ARMDB_FILE_DATA);
	unit_file(p2, 2, ARMDB_FILE_DATA);
	unit_file(p3, 3, ARMDB_FILE_DATA);
	img1 = unit_read_all(p1, &len1);
	img2 = unit_read_all(p2, &len2);
	img3 = unit_read_all(p3, &len3);

	for (int i = 0; i < log.n; i++)
		if (log.e[i].loc.file_id == 1)
			last1 = i;
	ASSERT(last1 >= 2);
	/* file header, first entry, a middle one, the last one (header, value) */
	offsets[noff++] = 5;
	offsets[noff++] = ARMDB_FILE_HEADER_SIZE;
	offsets[noff++] = ARMDB_FILE_HEADER_SIZE + 4;
	offsets[noff++] = log.e[last1 / 2].loc.offset + 20;
	offsets[noff++] = log.e[last1 / 2].loc.offset + log.e[last1 / 2].loc.len - 1;
	offsets[noff++] = log.e[last1].loc.offset;
	offsets[noff++] = log.e[last1].loc.offset + 47;
	offsets[noff++] = log.e[last1].loc.offset + log.e[last1].loc.len - 1;

	for (int k = 0; k < noff; k++)
	{
		ArmdbRecoveryReport rep;

		ASSERT(unit_flip_bit(p1, offsets[k], k % 8));
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
										 &rep, &err), ARMDB_ERR_CORRUPT);
		ASSERT(unit_flip_bit(p1, offsets[k], k % 8));
		ASSERT_CALL(files_equal(p1, img1, len1));
		ASSERT_CALL(files_equal(p2, img2, len2));
		ASSERT_CALL(files_equal(p3, img3, len3));
	}

	/* the immutable file lost its last entry's tail */
	{
		ArmdbRecoveryReport rep;
		uint64		cut = log.e[last1].loc.offset + 10;

		ASSERT(unit_truncate(p1, cut));
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
										 &rep, &err), ARMDB_ERR_CORRUPT);
		ASSERT_EQ(unit_file_size(p1), cut);
		ASSERT(unit_write_all(p1, img1, len1));
	}

	/* and recovery is fine once the damage is repaired */
	{
		TInfos		infos;
		ArmdbRecoveryReport rep;

		tinfos_init(&infos);
		ASSERT_CALL(trecover(&infos, &rep));
		ASSERT_CALL(tinfos_match(&infos, &log, log.n));
		tinfos_free(&infos);
	}
	free(img1);
	free(img2);
	free(img3);
	tlog_free(&log);
}

static bool
recover_bad_hint(const TLog *log, const char *what)
{
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char	   *slash;

	tinfos_init(&infos);
	HASSERT_CALL(trecover(&infos, &rep));
	HASSERT_CALL(tinfos_match(&infos, log, log->n));
	tinfos_free(&infos);
	HASSERT_MSG(rep.bad_hints == 1, "%s: bad_hints %u", what, rep.bad_hints);
	HASSERT_MSG(rep.hinted_files == 1, "%s: hinted_files %u", what, rep.hinted_files);
	HASSERT_MSG(rep.scanned_files == 2, "%s: scanned_files %u", what, rep.scanned_files);
	slash = strrchr(rep.first_bad_hint, '/');
	HASSERT_MSG(slash != NULL && strcmp(slash, "/000001.hint") == 0,
				"%s: first_bad_hint \"%s\"", what, rep.first_bad_hint);
	return true;
}

static void
test_recovery_bad_hint(void)
{
	ArmdbError	err;
	TLog		log;
	char		hint[MAXPGPATH];
	char	   *image;
	size_t		len;

	tlog_init(&log);
	ASSERT_CALL(build_three_files(&log));
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 2, true, false, NULL, &err));
	unit_file(hint, 1, ARMDB_FILE_HINT);
	image = unit_read_all(hint, &len);
	ASSERT(image != NULL && len > 40);

	for (size_t i = 0; i < len; i++)
	{
		char		what[64];

		snprintf(what, sizeof(what), "bit %zu of byte %zu flipped", i % 8, i);
		ASSERT(unit_write_all(hint, image, len));
		ASSERT(unit_flip_bit(hint, i, i % 8));
		ASSERT_CALL(recover_bad_hint(&log, what));
	}
	for (size_t l = 0; l < len; l += (l < 48 || l + 48 > len) ? 1 : 11)
	{
		char		what[64];

		snprintf(what, sizeof(what), "truncated to %zu of %zu", l, len);
		ASSERT(unit_write_all(hint, image, l));
		ASSERT_CALL(recover_bad_hint(&log, what));
	}
	{
		char	   *longer = calloc(1, len + 100);

		memcpy(longer, image, len);
		ASSERT(unit_write_all(hint, longer, len + 100));
		free(longer);
		ASSERT_CALL(recover_bad_hint(&log, "100 bytes appended"));
	}
	/* the hint of another file */
	{
		char		hint2[MAXPGPATH];
		size_t		len2;
		char	   *image2;

		unit_file(hint2, 2, ARMDB_FILE_HINT);
		image2 = unit_read_all(hint2, &len2);
		ASSERT(unit_write_all(hint, image2, len2));
		free(image2);
		ASSERT_CALL(recover_bad_hint(&log, "hint of file 2 as 000001.hint"));
	}
	free(image);
	tlog_free(&log);
}

static void
test_recovery_tmp_removed(void)
{
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint32		sizes[] = {10, 20, 0};
	char		path[MAXPGPATH];
	const char *keep[] = {"notes.txt", "000001.data.bak", "1.tmp", "000001.tmpx"};

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, sizes, lengthof(sizes), T_FILE_SIZE));
	unit_file(path, 1, ARMDB_FILE_TMP);
	ASSERT(unit_write_all(path, "junk", 4));
	unit_file(path, 5, ARMDB_FILE_TMP);
	ASSERT(unit_write_all(path, "", 0));
	for (int i = 0; i < lengthof(keep); i++)
	{
		unit_path(path, keep[i]);
		ASSERT(unit_write_all(path, "x", 1));
	}

	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(rep.removed_tmp, 2);
	ASSERT_EQ(rep.data_files, 1);
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	unit_file(path, 1, ARMDB_FILE_TMP);
	ASSERT(!unit_exists(path));
	unit_file(path, 5, ARMDB_FILE_TMP);
	ASSERT(!unit_exists(path));
	for (int i = 0; i < lengthof(keep); i++)
	{
		unit_path(path, keep[i]);
		ASSERT_MSG(unit_exists(path), "%s was removed", keep[i]);
	}
	tinfos_free(&infos);

	/* a second recovery finds none */
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(rep.removed_tmp, 0);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
test_recovery_missing_dir(void)
{
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	TInfos		infos;
	char		dir[MAXPGPATH];

	unit_path(dir, "no/such/shard");
	tinfos_init(&infos);
	memset(&rep, 0x7f, sizeof(rep));
	ASSERT_OK(armdb_recover_shard(unit_io, dir, true, ARMDB_RECOVER_MISSING_OK | ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb, &infos,
								  &rep, &err));
	ASSERT_EQ(rep.data_files, 0);
	ASSERT_EQ(rep.entries, 0);
	ASSERT_EQ(rep.last_file_id, 0);
	ASSERT_EQ(rep.end_offset, 0);
	ASSERT_EQ(rep.torn_tail, false);
	ASSERT_EQ(rep.removed_tmp, 0);
	ASSERT_EQ(infos.n, 0);
	ASSERT(!unit_exists(dir));

	ASSERT_FAILS(armdb_recover_shard(unit_io, dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb, &infos,
									 &rep, &err), ARMDB_ERR_IO);
	ASSERT_EQ(err.sys_errno, ENOENT);

	/* an empty directory, missing_ok or not */
	memset(&rep, 0x7f, sizeof(rep));
	ASSERT_OK(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb, &infos,
								  &rep, &err));
	ASSERT_EQ(rep.data_files, 0);
	ASSERT_EQ(rep.entries, 0);
	ASSERT_EQ(rep.last_file_id, 0);
	ASSERT_EQ(rep.max_gsn, 0);
	ASSERT_EQ(rep.bad_hints, 0);
	ASSERT_EQ(infos.n, 0);

	/* not a directory */
	unit_path(dir, "plain");
	ASSERT(unit_write_all(dir, "x", 1));
	ASSERT_FAILS(armdb_recover_shard(unit_io, dir, true, ARMDB_RECOVER_MISSING_OK | ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL, &rep,
									 &err), ARMDB_ERR_IO);
	tinfos_free(&infos);
}

/*
 * The newest file exists but its header never reached the disk: it holds
 * nothing, and the shard goes on in it.
 */
static void
zero_header_image(size_t zeros, bool with_older, bool torn)
{
	ArmdbError	err;
	TLog		log;
	TShard		s;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	char	   *buf = calloc(1, zeros + 1);
	uint32		id = with_older ? 2 : 1;
	uint32		sizes[] = {10, 0, 3000};
	int			n_older = 0;

	tlog_init(&log);
	if (with_older)
	{
		ASSERT_CALL(build_shard(&log, sizes, lengthof(sizes), T_FILE_SIZE));
		n_older = log.n;
	}
	unit_file(path, id, ARMDB_FILE_DATA);
	if (torn)
	{
		/* the first sectors of the header write landed, in part */
		ArmdbFileHeader fh;

		armdb_file_header_init(&fh, id, 0);
		memcpy(buf, &fh, ARMDB_FILE_HEADER_SIZE / 2);
	}
	ASSERT(unit_write_all(path, buf, zeros));
	free(buf);

	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(rep.data_files, id);
	ASSERT_EQ(rep.entries, n_older);
	ASSERT_EQ(rep.last_file_id, id);
	ASSERT_EQ(rep.torn_tail, false);
	ASSERT_CALL(tinfos_match(&infos, &log, n_older));
	tinfos_free(&infos);

	ASSERT_CALL(tshard_init(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true));
	ASSERT_OK(armdb_shard_open(&s.st, &s.files, rep.last_file_id, rep.end_offset,
							   &err));
	ASSERT_CALL(tshard_append(&s, &log, 50, false, NULL));
	ASSERT_EQ(log.e[log.n - 1].loc.file_id, id);
	ASSERT_EQ(log.e[log.n - 1].loc.offset, ARMDB_FILE_HEADER_SIZE);
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	/* the file has a proper header now */
	{
		size_t		len;
		char	   *img = unit_read_all(path, &len);

		ASSERT_OK(armdb_file_header_check(img, len, id, &err));
		free(img);
	}
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_CALL(tinfos_match(&infos, &log, log.n));
	ASSERT_EQ(rep.last_file_id, id);
	tinfos_free(&infos);
	tlog_free(&log);
}

static void
zero_header(size_t zeros, bool with_older)
{
	zero_header_image(zeros, with_older, false);
}

/*
 * A torn header on a file that holds nothing else is a creation cut short,
 * not damage.
 */
static void
test_recovery_torn_header(void)
{
	zero_header_image(ARMDB_BLOCK_SIZE, false, true);
}

static void
test_recovery_torn_header_after_older(void)
{
	zero_header_image(ARMDB_BLOCK_SIZE, true, true);
}

static void
test_recovery_zero_header(void)
{
	zero_header(ARMDB_FILE_HEADER_SIZE, false);
}

static void
test_recovery_zero_block(void)
{
	zero_header(ARMDB_BLOCK_SIZE, false);
}

static void
test_recovery_empty_file(void)
{
	zero_header(0, false);
}

static void
test_recovery_zero_header_after_older(void)
{
	zero_header(ARMDB_BLOCK_SIZE, true);
}

/* A damaged (not missing) file header is corruption even in the newest file. */
static void
test_recovery_bad_header(void)
{
	ArmdbError	err;
	TLog		log;
	ArmdbRecoveryReport rep;
	uint32		sizes[] = {10, 20};
	char		path[MAXPGPATH];
	int64		size;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, sizes, lengthof(sizes), T_FILE_SIZE));
	unit_file(path, 1, ARMDB_FILE_DATA);
	size = unit_file_size(path);
	ASSERT(unit_flip_bit(path, 12, 3));
	ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL, NULL,
									 &rep, &err), ARMDB_ERR_CORRUPT);
	ASSERT_EQ(unit_file_size(path), size);
	ASSERT(unit_flip_bit(path, 12, 3));

	/* a data file whose header names another file */
	{
		char		other[MAXPGPATH];

		unit_file(other, 2, ARMDB_FILE_DATA);
		ASSERT(rename(path, other) == 0);
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, NULL,
										 NULL, &rep, &err), ARMDB_ERR_CORRUPT);
		ASSERT(rename(other, path) == 0);
	}
	tlog_free(&log);
}

/* Large values and files: entries straddle the scan's chunks. */
static void
test_recovery_large(void)
{
	ArmdbError	err;
	TLog		log;
	TInfos		a;
	TInfos		b;
	ArmdbRecoveryReport rep;
	uint32		sizes[] = {
		1000, 1500000, 0, 300000, 700000, 5, 1048576 - 48, 1048576, 123456,
		2000000, 0, 77,
	};
	uint64		rng = 3;
	uint32		more[60];
	TShard		s;

	for (int i = 0; i < lengthof(more); i++)
		more[i] = unit_rand(&rng) % 70000;
	tlog_init(&log);
	tinfos_init(&a);
	ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &a, &rep));
	for (int i = 0; i < lengthof(sizes); i++)
		ASSERT_CALL(tshard_append(&s, &log, sizes[i], sizes[i] == 0, NULL));
	for (int i = 0; i < lengthof(more); i++)
		ASSERT_CALL(tshard_append(&s, &log, more[i], more[i] % 10 == 0, NULL));
	/* rotate once so that file 1 can have a hint */
	s.st.max_file_size = s.st.append_end + 100;
	ASSERT_CALL(tshard_append(&s, &log, 200, false, NULL));
	ASSERT_EQ(s.st.active_file_id, 2);
	ASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);

	ASSERT_CALL(trecover(&a, &rep));
	ASSERT_CALL(tinfos_match(&a, &log, log.n));
	ASSERT_EQ(rep.torn_tail, false);
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	tinfos_init(&b);
	ASSERT_CALL(trecover(&b, &rep));
	ASSERT_EQ(rep.hinted_files, 1);
	ASSERT_CALL(tinfos_equal(&a, &b));

	/* a torn large entry at the end of the active file */
	{
		char		path[MAXPGPATH];
		TInfos		c;

		tinfos_free(&b);
		ASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, T_FILE_SIZE, true, &b, &rep));
		ASSERT_CALL(tshard_append(&s, &log, 1500000, false, NULL));
		ASSERT_CALL(tshard_flush_all(&s));
		tshard_close(&s);
		unit_file(path, 2, ARMDB_FILE_DATA);
		ASSERT(unit_truncate(path, log.e[log.n - 1].loc.offset + 1200000));
		tinfos_init(&c);
		ASSERT_CALL(trecover(&c, &rep));
		ASSERT_CALL(tinfos_match(&c, &log, log.n - 1));
		ASSERT_EQ(rep.torn_tail, true);
		ASSERT_EQ(rep.truncated_bytes, 1200000);
		ASSERT_EQ(rep.end_offset, log.e[log.n - 1].loc.offset);
		tinfos_free(&c);
	}
	tinfos_free(&a);
	tinfos_free(&b);
	tlog_free(&log);
}

/* The caller's callback fails: recovery fails with its error, cuts nothing. */
static void
test_recovery_callback_fails(void)
{
	ArmdbError	err;
	TLog		log;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	int64		size;

	tlog_init(&log);
	ASSERT_CALL(build_three_files(&log));
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, 1, true, false, NULL, &err));
	unit_file(path, 3, ARMDB_FILE_DATA);
	/* a torn tail that must not be cut by a recovery that fails */
	size = unit_file_size(path);
	ASSERT(unit_flip_bit(path, log.e[log.n - 1].loc.offset + 3, 6));
	for (int at = 0; at < log.n - 1; at += 5)
	{
		tinfos_init(&infos);
		infos.fail_at = at;
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true, ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb,
										 &infos, &rep, &err), ARMDB_ERR_INVALID);
		ASSERT(strstr(err.message, "test callback") != NULL);
		ASSERT_EQ(infos.n, at);
		ASSERT_EQ(unit_file_size(path), size);
		ASSERT_EQ(unit_count_files(unit_dir, ".hint"), 1);
		tinfos_free(&infos);
	}
	tlog_free(&log);
}

/* armdb_scan_data_file and armdb_scan_buffer on their own. */
static void
test_recovery_scan_api(void)
{
	ArmdbError	err;
	TLog		log;
	TInfos		infos;
	ArmdbScanResult res;
	ArmdbParseResult stop;
	uint32		sizes[] = {100, 0, 5000, 2800, 300};
	char		path[MAXPGPATH];
	char	   *image;
	size_t		len;
	uint64		end;
	int			fd;
	int			n;

	tlog_init(&log);
	ASSERT_CALL(build_shard(&log, sizes, lengthof(sizes), T_FILE_SIZE));
	n = log.n;
	end = (uint64) log.e[n - 1].loc.offset + log.e[n - 1].loc.len;
	unit_file(path, 1, ARMDB_FILE_DATA);
	image = unit_read_all(path, &len);
	ASSERT(len >= end);

	/* the file */
	fd = armdb_file_open(path, O_RDONLY, true, NULL, &err);
	ASSERT(fd >= 0);
	tinfos_init(&infos);
	ASSERT_OK(armdb_scan_data_file(unit_io, fd, 1, false, NULL, tinfos_cb, &infos, &res, &err));
	ASSERT_CALL(tinfos_match(&infos, &log, n));
	ASSERT_EQ(res.end, ARMDB_SCAN_END_CLEAN);
	ASSERT_EQ(res.valid_end, end);
	ASSERT_EQ(res.file_size, len);
	ASSERT_EQ(res.entries, n);
	ASSERT_EQ(res.max_gsn, tlog_max_gsn(&log, n));
	ASSERT_EQ(res.header_missing, false);
	tinfos_free(&infos);
	/* wrong file id */
	ASSERT_FAILS(armdb_scan_data_file(unit_io, fd, 2, false, NULL, NULL, NULL, &res, &err),
				 ARMDB_ERR_CORRUPT);
	armdb_file_close(fd);

	/* a torn one */
	ASSERT(unit_flip_bit(path, log.e[n - 1].loc.offset + 60, 0));
	fd = armdb_file_open(path, O_RDONLY, true, NULL, &err);
	ASSERT(fd >= 0);
	ASSERT_OK(armdb_scan_data_file(unit_io, fd, 1, false, NULL, NULL, NULL, &res, &err));
	ASSERT_EQ(res.end, ARMDB_SCAN_END_TORN);
	ASSERT_EQ(res.valid_end, log.e[n - 1].loc.offset);
	ASSERT_EQ(res.entries, n - 1);
	armdb_file_close(fd);

	/* the image from the first entry on, with padding: stops at ZERO */
	memset(&res, 0, sizeof(res));
	res.valid_end = ARMDB_FILE_HEADER_SIZE;
	tinfos_init(&infos);
	ASSERT_OK(armdb_scan_buffer(image + ARMDB_FILE_HEADER_SIZE,
								len - ARMDB_FILE_HEADER_SIZE, 1,
								ARMDB_FILE_HEADER_SIZE, tinfos_cb, &infos,
								&res, &stop, &err));
	ASSERT_EQ(stop, ARMDB_PARSE_ZERO);
	ASSERT_EQ(res.valid_end, end);
	ASSERT_EQ(res.entries, n);
	ASSERT_EQ(res.max_gsn, tlog_max_gsn(&log, n));
	ASSERT_CALL(tinfos_match(&infos, &log, n));
	tinfos_free(&infos);

	/* exactly the entries: SHORT at the end */
	memset(&res, 0, sizeof(res));
	ASSERT_OK(armdb_scan_buffer(image + ARMDB_FILE_HEADER_SIZE,
								end - ARMDB_FILE_HEADER_SIZE, 1,
								ARMDB_FILE_HEADER_SIZE, NULL, NULL, &res, &stop,
								&err));
	ASSERT_EQ(stop, ARMDB_PARSE_SHORT);
	ASSERT_EQ(res.valid_end, end);
	ASSERT_EQ(res.entries, n);

	/* from the third entry, cut inside the fourth */
	memset(&res, 0, sizeof(res));
	tinfos_init(&infos);
	ASSERT_OK(armdb_scan_buffer(image + log.e[2].loc.offset,
								log.e[3].loc.offset + 10 - log.e[2].loc.offset, 1,
								log.e[2].loc.offset, tinfos_cb, &infos, &res,
								&stop, &err));
	ASSERT_EQ(stop, ARMDB_PARSE_SHORT);
	ASSERT_EQ(res.entries, 1);
	ASSERT_EQ(res.valid_end, log.e[3].loc.offset);
	ASSERT_EQ(infos.n, 1);
	ASSERT_EQ(infos.e[0].offset, log.e[2].loc.offset);
	ASSERT_EQ(infos.e[0].gsn, log.e[2].hdr.gsn);
	tinfos_free(&infos);

	/* a bad entry: BAD at its start */
	image[log.e[1].loc.offset + 9] ^= 4;
	memset(&res, 0, sizeof(res));
	ASSERT_OK(armdb_scan_buffer(image + ARMDB_FILE_HEADER_SIZE,
								len - ARMDB_FILE_HEADER_SIZE, 1,
								ARMDB_FILE_HEADER_SIZE, NULL, NULL, &res, &stop,
								&err));
	ASSERT_EQ(stop, ARMDB_PARSE_BAD);
	ASSERT_EQ(res.entries, 1);
	ASSERT_EQ(res.valid_end, log.e[1].loc.offset);

	/* a failing callback */
	image[log.e[1].loc.offset + 9] ^= 4;
	memset(&res, 0, sizeof(res));
	tinfos_init(&infos);
	infos.fail_at = 2;
	armdb_error_clear(&err);
	ASSERT(!armdb_scan_buffer(image + ARMDB_FILE_HEADER_SIZE,
							  len - ARMDB_FILE_HEADER_SIZE, 1,
							  ARMDB_FILE_HEADER_SIZE, tinfos_cb, &infos, &res,
							  &stop, &err));
	ASSERT_EQ(err.code, ARMDB_ERR_INVALID);
	ASSERT_EQ(infos.n, 2);
	tinfos_free(&infos);

	free(image);
	tlog_free(&log);
}

const UnitTest unit_recovery_tests[] = {
	{"recovery_hinted_vs_scanned", test_recovery_hinted_vs_scanned},
	{"recovery_short_entries", test_recovery_short_entries},
	{"recovery_hint_active_file", test_recovery_hint_active_file},
	{"recovery_torn_truncated", test_recovery_torn_truncated},
	{"recovery_torn_garbage", test_recovery_torn_garbage},
	{"recovery_flipped_active", test_recovery_flipped_active},
	{"recovery_no_cut", test_recovery_no_cut},
	{"recovery_flipped_immutable", test_recovery_flipped_immutable},
	{"recovery_damaged_active", test_recovery_damaged_active},
	{"recovery_salvage", test_recovery_salvage},
	{"recovery_salvage_immutable", test_recovery_salvage_immutable},
	{"recovery_bad_hint", test_recovery_bad_hint},
	{"recovery_tmp_removed", test_recovery_tmp_removed},
	{"recovery_missing_dir", test_recovery_missing_dir},
	{"recovery_zero_header", test_recovery_zero_header},
	{"recovery_torn_header", test_recovery_torn_header},
	{"recovery_torn_header_after_older", test_recovery_torn_header_after_older},
	{"recovery_zero_block", test_recovery_zero_block},
	{"recovery_empty_file", test_recovery_empty_file},
	{"recovery_zero_header_after_older", test_recovery_zero_header_after_older},
	{"recovery_bad_header", test_recovery_bad_header},
	{"recovery_large", test_recovery_large},
	{"recovery_callback_fails", test_recovery_callback_fails},
	{"recovery_scan_api", test_recovery_scan_api},
	{NULL, NULL}
};
