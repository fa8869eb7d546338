/*-------------------------------------------------------------------------
 *
 * unit_merge.c
 *	  Tests of merge.c: which files to merge, the copy, its commit and
 *	  recovery after a crash at every step.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage/merge.h"

/* ----------------
 * Choosing the files
 * ----------------
 */
static void
test_merge_pick(void)
{
	/* {id, total, dead, min_gsn, cooldown} */
	ArmdbMergeCandidate f[] = {
		{7, 1000, 400, 700, false}, /* 0.4: picked */
		{2, 1000, 300, 200, false}, /* 0.3: not above the threshold */
		{5, 1000, 1000, 500, false},	/* all dead: picked */
		{9, 1000, 900, 900, false}, /* the active file: never */
		{3, 1000, 500, 300, true},	/* the previous run's output: not now */
		{4, 0, 0, 400, false},	/* empty */
		{1, 1000, 301, 100, false}, /* just above: picked */
		{8, 1000, 999, 800, false},
		{6, 1000, 310, 600, false},
		{12, 1000, 900, 550, false},	/* a merge output: new number, old data */
	};
	uint32		picked[ARMDB_MERGE_MAX_INPUTS];
	int			n;

	n = armdb_merge_pick(f, lengthof(f), 9, 0.3, ARMDB_MERGE_MAX_INPUTS, picked);
	/* the four with the oldest data, oldest first */
	ASSERT_EQ(n, 4);
	ASSERT_EQ(picked[0], 1);
	ASSERT_EQ(picked[1], 5);
	ASSERT_EQ(picked[2], 12);
	ASSERT_EQ(picked[3], 6);

	n = armdb_merge_pick(f, lengthof(f), 9, 0.3, 2, picked);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(picked[0], 1);
	ASSERT_EQ(picked[1], 5);

	n = armdb_merge_pick(f, lengthof(f), 9, 0.95, 4, picked);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(picked[0], 5);
	ASSERT_EQ(picked[1], 8);

	/* equal ages: the lower number first */
	f[0].min_gsn = f[2].min_gsn;
	n = armdb_merge_pick(f, lengthof(f), 9, 0.35, 2, picked);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(picked[0], 5);
	ASSERT_EQ(picked[1], 7);

	n = armdb_merge_pick(f, 0, 9, 0.3, 4, picked);
	ASSERT_EQ(n, 0);
}

/* ----------------
 * A shard to merge
 * ----------------
 */

/* keep the entries whose gsn is not a multiple of 3 */
static bool
keep_some(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep, ArmdbError *err)
{
	*keep = (e->gsn & ARMDB_GSN_MAX) % 3 != 0 ? ARMDB_MERGE_KEEP : ARMDB_MERGE_DROP;
	if (*keep && arg != NULL)
		e->gsn |= ARMDB_GSN_FLAG_FROZEN;	/* the caller knows the fate */
	return true;
}

static bool
keep_none(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep, ArmdbError *err)
{
	*keep = ARMDB_MERGE_DROP;
	return true;
}

/* versions naming a prev_slot keep only their ending; others as keep_some */
static bool
keep_endings(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep, ArmdbError *err)
{
	if (!armdb_gsn_is_tombstone(e->gsn) && e->prev_slot != ARMDB_INVALID_SLOT)
		*keep = ARMDB_MERGE_KEEP_ENDING;
	else
		*keep = ARMDB_MERGE_KEEP;
	return true;
}

typedef struct TIds
{
	uint32		next;
} TIds;

static bool
next_id(void *arg, uint32 *file_id, ArmdbError *err)
{
	TIds	   *ids = arg;

	*file_id = ids->next++;
	return true;
}

/*
 * Files 1..3 sealed (64 kB each), 4 active; returns the log.  The files'
 * entries are log->e[0 .. n).
 */
static bool
build_shard_for_merge(TLog *log)
{
	TShard		s;
	TInfos		infos;
	ArmdbRecoveryReport rep;
	uint64		rng = 11;
	uint32		sealed;
	int			guard = 0;

	tinfos_init(&infos);
	HASSERT_CALL(tshard_start(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true,
							  &infos, &rep));
	tinfos_free(&infos);
	while (s.st.active_file_id < 4 && guard++ < 10000)
	{
		uint32		len = unit_rand(&rng) % 5000;

		HASSERT_CALL(tshard_append(&s, log, len, len < 300, &sealed));
	}
	for (int i = 0; i < 3; i++)
		HASSERT_CALL(tshard_append(&s, log, 200 * i, false, &sealed));
	HASSERT_EQ(s.st.active_file_id, 4);
	HASSERT_CALL(tshard_flush_all(&s));
	tshard_close(&s);
	return true;
}

static void
merge_init(ArmdbMerge *m, TIds *ids, ArmdbMergeKeepFn keep, void *keep_arg)
{
	memset(m, 0, sizeof(*m));
	m->io = unit_io;
	m->dir = unit_dir;
	m->shard_no = 0;
	m->max_file_size = ARMDB_MIN_FILE_SIZE;
	m->direct_io = true;
	m->keep = keep;
	m->next_file_id = next_id;
	m->arg = ids;
	m->inputs[0] = 1;
	m->inputs[1] = 2;
	m->ninputs = 2;
	ids->next = 5;
	(void) keep_arg;
}

/*
 * Recovery reports exactly the expected entries once each: the log's
 * entries, minus those of files 1 and 2 that the merge dropped (if merged).
 */
static bool
check_recovered(const TLog *log, bool merged, ArmdbRecoveryReport *rep)
{
	TInfos		infos;
	int			expect = 0;

	tinfos_init(&infos);
	HASSERT_CALL(trecover(&infos, rep));
	for (int i = 0; i < log->n; i++)
	{
		const TEntry *e = &log->e[i];
		bool		dropped = merged && e->loc.file_id <= 2 &&
			(e->hdr.gsn & ARMDB_GSN_MAX) % 3 == 0;
		int			found = 0;

		if (dropped)
			continue;
		expect++;
		for (int j = 0; j < infos.n; j++)
		{
			const ArmdbEntryInfo *r = &infos.e[j];

			if ((r->gsn & ~(ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED)) == e->hdr.gsn)
			{
				found++;
				HASSERT_EQ(r->slot, e->hdr.slot);
				HASSERT_EQ(r->xid, e->hdr.xid);
				HASSERT_EQ(r->len, e->loc.len);
				if (merged && e->loc.file_id <= 2)
					HASSERT_MSG(r->file_id >= 5, "entry %llu not moved",
								(unsigned long long) e->hdr.gsn);
				else
					HASSERT_EQ(r->file_id, e->loc.file_id);
			}
		}
		HASSERT_MSG(found == 1, "entry gsn %llu recovered %d times",
					(unsigned long long) e->hdr.gsn, found);
	}
	HASSERT_EQ(infos.n, expect);
	tinfos_free(&infos);
	/* the active file is still 4, whatever the outputs are numbered */
	HASSERT_EQ(rep->last_file_id, 4);
	return true;
}

static void
test_merge_roundtrip(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	uint64		in_bytes;
	TShard		s;
	uint32		sealed;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	unit_file(path, 1, ARMDB_FILE_DATA);
	in_bytes = unit_file_size(path);
	unit_file(path, 2, ARMDB_FILE_DATA);
	in_bytes += unit_file_size(path);

	merge_init(&m, &ids, keep_some, NULL);
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT(m.noutputs >= 1);
	ASSERT(m.nmoves > 0);
	ASSERT(m.bytes_written < in_bytes);
	for (uint64 i = 0; i < m.nmoves; i++)
		ASSERT((m.moves[i].entry.gsn & ARMDB_GSN_MAX) % 3 != 0);
	/* outputs are .tmp until the commit */
	unit_file(path, m.outputs[0], ARMDB_FILE_TMP);
	ASSERT(unit_exists(path));
	ASSERT_OK(armdb_merge_commit(&m, &err));
	unit_file(path, m.outputs[0], ARMDB_FILE_DATA);
	ASSERT(unit_exists(path));
	unit_file(path, m.outputs[0], ARMDB_FILE_HINT);
	ASSERT(unit_exists(path));
	unit_file(path, m.manifest_id, ARMDB_FILE_MERGE);
	ASSERT(unit_exists(path));
	ASSERT_OK(armdb_merge_finish(&m, &err));
	ASSERT(!unit_exists(path));
	unit_file(path, 1, ARMDB_FILE_DATA);
	ASSERT(!unit_exists(path));
	unit_file(path, 2, ARMDB_FILE_HINT);
	ASSERT(!unit_exists(path));
	ASSERT_EQ(unit_count_files(unit_dir, ".tmp"), 0);
	armdb_merge_free(&m);

	ASSERT_CALL(check_recovered(&log, true, &rep));
	ASSERT_EQ(rep.finished_merges, 0);
	/* outputs are read from their hints, and the active file is not one */
	ASSERT(rep.hinted_files >= 1);
	ASSERT(rep.max_file_id > 4);

	/* the next active file gets a number above the outputs */
	ASSERT_CALL(tshard_init(&s, unit_dir, T_BUF_SIZE, ARMDB_MIN_FILE_SIZE, true));
	ASSERT_OK(armdb_shard_open(&s.st, &s.files, rep.last_file_id,
							   rep.end_offset, &err));
	armdb_shard_note_file_id(&s.st, rep.max_file_id);
	ASSERT_OK(armdb_shard_seal(&s.st, &s.files, &sealed, &err));
	ASSERT_EQ(sealed, 4);
	ASSERT_EQ(s.st.active_file_id, rep.max_file_id + 1);
	tshard_close(&s);
	tlog_free(&log);
}

/*
 * A crash at each step: recovery sees either the old files or the merged
 * ones, never a mix, and every entry once.
 */
static void
test_merge_crash_steps(void)
{
	for (int step = 0; step < 5; step++)
	{
		TLog		log;
		TIds		ids;
		ArmdbMerge	m;
		ArmdbError	err;
		ArmdbRecoveryReport rep;
		char		path[MAXPGPATH];
		char		tmp[MAXPGPATH];
		bool		merged;

		/* a fresh directory for each step */
		unit_note("crash after step %d", step);
		if (step > 0)
		{
			char		cmd[MAXPGPATH + 32];

			snprintf(cmd, sizeof(cmd), "rm -f %s/*", unit_dir);
			ASSERT(system(cmd) == 0);
		}
		tlog_init(&log);
		ASSERT_CALL(build_shard_for_merge(&log));
		merge_init(&m, &ids, keep_some, NULL);
		ASSERT_OK(armdb_merge_copy(&m, &err));
		merged = step > 0;
		if (step >= 1)
			ASSERT_OK(armdb_merge_commit(&m, &err));
		if (step == 2)
		{
			/* crash between the manifest and the renames */
			unit_file(path, m.outputs[0], ARMDB_FILE_DATA);
			unit_file(tmp, m.outputs[0], ARMDB_FILE_TMP);
			ASSERT(rename(path, tmp) == 0);
			unit_file(path, m.outputs[0], ARMDB_FILE_HINT);
			ASSERT(unlink(path) == 0);
		}
		if (step == 3)
		{
			/* crash while writing an output's hint */
			unit_file(path, m.outputs[0], ARMDB_FILE_HINT);
			unit_file(tmp, m.outputs[0], ARMDB_FILE_TMP);
			ASSERT(rename(path, tmp) == 0);
		}
		if (step == 4)
		{
			/* crash while unlinking the inputs: one gone, one left */
			unit_file(path, 1, ARMDB_FILE_DATA);
			ASSERT(unlink(path) == 0);
		}
		armdb_merge_free(&m);

		ASSERT_CALL(check_recovered(&log, merged, &rep));
		ASSERT_EQ(rep.finished_merges, step >= 1 ? 1 : 0);
		ASSERT_EQ(rep.removed_tmp, step == 0 ? m.noutputs : 0);
		ASSERT_EQ(unit_count_files(unit_dir, ".tmp"), 0);
		ASSERT_EQ(unit_count_files(unit_dir, ".merge"), 0);
		unit_file(path, 1, ARMDB_FILE_DATA);
		ASSERT_EQ(unit_exists(path), !merged);
		/* and again: recovery is idempotent */
		ASSERT_CALL(check_recovered(&log, merged, &rep));
		tlog_free(&log);
	}
}

/* A bad entry in an input: the merge stops, nothing changes. */
static void
test_merge_corrupt_input(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	const TEntry *victim = NULL;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	for (int i = 0; i < log.n && victim == NULL; i++)
		if (log.e[i].loc.file_id == 2 && log.e[i].hdr.value_len > 100)
			victim = &log.e[i];
	ASSERT(victim != NULL);
	unit_file(path, 2, ARMDB_FILE_DATA);
	ASSERT(unit_flip_bit(path, victim->loc.offset +
						 armdb_entry_header_size(victim->hdr.gsn) + 50, 3));

	merge_init(&m, &ids, keep_some, NULL);
	ASSERT_FAILS(armdb_merge_copy(&m, &err), ARMDB_ERR_CORRUPT);
	ASSERT_MSG(strstr(err.message, "data file 000002") != NULL,
			   "message does not name the file: %s", err.message);
	{
		char		off[32];

		snprintf(off, sizeof(off), "offset %u", victim->loc.offset);
		ASSERT_MSG(strstr(err.message, off) != NULL,
				   "message does not name the offset: %s", err.message);
	}
	ASSERT_EQ(m.noutputs, 0);
	ASSERT_EQ(unit_count_files(unit_dir, ".tmp"), 0);
	ASSERT_EQ(unit_count_files(unit_dir, ".data"), 4);
	armdb_merge_free(&m);
	/* the inputs are intact: recovery still finds the damage in file 2 */
	{
		TInfos		infos;

		tinfos_init(&infos);
		ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true,
										 ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb,
										 &infos, &rep, &err),
					 ARMDB_ERR_CORRUPT);
		tinfos_free(&infos);
	}
	tlog_free(&log);
}

/* I/O errors while copying: outputs removed, inputs intact. */
static void
test_merge_io_error(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	for (int op = ARMDB_IOOP_WRITE; op <= ARMDB_IOOP_FSYNC; op++)
	{
		merge_init(&m, &ids, keep_some, NULL);
		unit_fault_set(op, op == ARMDB_IOOP_WRITE ? ENOSPC : EIO, 1, -1);
		ASSERT_FAILS(armdb_merge_copy(&m, &err), ARMDB_ERR_IO);
		unit_fault_clear();
		ASSERT_EQ(m.noutputs, 0);
		ASSERT_EQ(unit_count_files(unit_dir, ".tmp"), 0);
		armdb_merge_free(&m);
	}
	ASSERT_CALL(check_recovered(&log, false, &rep));
	tlog_free(&log);
}

/* Outputs rotate at max_file_size; hints carry the fate the caller gave. */
static void
test_merge_rotation(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	TInfos		infos;
	int			frozen = 0;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	merge_init(&m, &ids, keep_some, &ids);
	m.inputs[2] = 3;
	m.ninputs = 3;
	m.max_file_size = 32 * 1024;
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT(m.noutputs >= 3);
	for (int i = 0; i < m.noutputs; i++)
	{
		ASSERT(m.output_sizes[i] <= 32 * 1024 || i == m.noutputs - 1);
		ASSERT(i == 0 || m.outputs[i] > m.outputs[i - 1]);
	}
	ASSERT_OK(armdb_merge_commit(&m, &err));
	ASSERT_OK(armdb_merge_finish(&m, &err));
	for (int i = 0; i < m.noutputs; i++)
	{
		unit_file(path, m.outputs[i], ARMDB_FILE_DATA);
		ASSERT(unit_file_size(path) <= 32 * 1024 + 9000);
	}
	armdb_merge_free(&m);

	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	for (int i = 0; i < infos.n; i++)
		if (infos.e[i].gsn & ARMDB_GSN_FLAG_FROZEN)
		{
			frozen++;
			ASSERT(infos.e[i].file_id >= 5);
		}
	ASSERT(frozen > 0);
	ASSERT_EQ(rep.last_file_id, 4);
	tinfos_free(&infos);
	tlog_free(&log);
}

/* Nothing to keep: no output, the inputs just go. */
static void
test_merge_all_dead(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	TInfos		infos;
	int			left = 0;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	merge_init(&m, &ids, keep_none, NULL);
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT_EQ(m.noutputs, 0);
	ASSERT_EQ(m.nmoves, 0);
	ASSERT_OK(armdb_merge_commit(&m, &err));
	ASSERT_OK(armdb_merge_finish(&m, &err));
	armdb_merge_free(&m);
	ASSERT_EQ(unit_count_files(unit_dir, ".data"), 2);

	for (int i = 0; i < log.n; i++)
		if (log.e[i].loc.file_id > 2)
			left++;
	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	ASSERT_EQ(infos.n, left);
	ASSERT_EQ(rep.last_file_id, 4);
	tinfos_free(&infos);
	tlog_free(&log);
}

/* A damaged manifest is corruption, never a guess. */
static void
test_merge_bad_manifest(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	char		path[MAXPGPATH];
	TInfos		infos;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	merge_init(&m, &ids, keep_some, NULL);
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT_OK(armdb_merge_commit(&m, &err));
	unit_file(path, m.manifest_id, ARMDB_FILE_MERGE);
	armdb_merge_free(&m);
	ASSERT(unit_flip_bit(path, 20, 1));
	tinfos_init(&infos);
	ASSERT_FAILS(armdb_recover_shard(unit_io, unit_dir, true,
									 ARMDB_RECOVER_AFTER_CRASH, NULL, tinfos_cb,
									 &infos, &rep, &err),
				 ARMDB_ERR_CORRUPT);
	ASSERT_MSG(strstr(err.message, "manifest") != NULL, "%s", err.message);
	/* nothing was removed */
	unit_file(path, 1, ARMDB_FILE_DATA);
	ASSERT(unit_exists(path));
	tinfos_free(&infos);
	tlog_free(&log);
}

/* Kept endings become tombstones of the slot they end, same gsn and xid. */
static void
test_merge_endings(void)
{
	TLog		log;
	TIds		ids;
	ArmdbMerge	m;
	ArmdbError	err;
	ArmdbRecoveryReport rep;
	TInfos		infos;
	int			converted = 0;

	tlog_init(&log);
	ASSERT_CALL(build_shard_for_merge(&log));
	merge_init(&m, &ids, keep_endings, NULL);
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT_OK(armdb_merge_commit(&m, &err));
	ASSERT_OK(armdb_merge_finish(&m, &err));
	armdb_merge_free(&m);

	tinfos_init(&infos);
	ASSERT_CALL(trecover(&infos, &rep));
	for (int i = 0; i < log.n; i++)
	{
		const TEntry *e = &log.e[i];
		bool		ending = e->loc.file_id <= 2 &&
			!armdb_gsn_is_tombstone(e->hdr.gsn) &&
			e->hdr.prev_slot != ARMDB_INVALID_SLOT;
		int			found = 0;

		for (int j = 0; j < infos.n; j++)
		{
			const ArmdbEntryInfo *r = &infos.e[j];

			if ((r->gsn & ARMDB_GSN_MAX) != (e->hdr.gsn & ARMDB_GSN_MAX))
				continue;
			found++;
			ASSERT_EQ(r->xid, e->hdr.xid);
			if (ending)
			{
				ASSERT(armdb_gsn_is_tombstone(r->gsn));
				ASSERT_EQ(r->slot, e->hdr.prev_slot);
				ASSERT_EQ(r->prev_slot, ARMDB_INVALID_SLOT);
				/* no chain fields: a short header */
				ASSERT_EQ(r->len, ARMDB_ENTRY_SHORT_HEADER_SIZE);
				converted++;
			}
			else
			{
				ASSERT_EQ(r->gsn, e->hdr.gsn);
				ASSERT_EQ(r->slot, e->hdr.slot);
			}
		}
		ASSERT_EQ(found, 1);
	}
	ASSERT(converted > 0);
	/* the data file agrees with its hint: scanned, the same entries */
	{
		TInfos		scanned;
		char		path[MAXPGPATH];

		tinfos_init(&scanned);
		for (int i = 0; i < (int) ids.next; i++)
		{
			unit_file(path, i, ARMDB_FILE_HINT);
			if (i >= 5 && unit_exists(path))
				ASSERT(unlink(path) == 0);
		}
		ASSERT_CALL(trecover(&scanned, &rep));
		ASSERT_EQ(scanned.n, infos.n);
		tinfos_free(&scanned);
	}
	tinfos_free(&infos);
	tlog_free(&log);
}

const UnitTest unit_merge_tests[] = {
	{"merge_endings", test_merge_endings},
	{"merge_pick", test_merge_pick},
	{"merge_roundtrip", test_merge_roundtrip},
	{"merge_crash_steps", test_merge_crash_steps},
	{"merge_corrupt_input", test_merge_corrupt_input},
	{"merge_io_error", test_merge_io_error},
	{"merge_rotation", test_merge_rotation},
	{"merge_all_dead", test_merge_all_dead},
	{"merge_bad_manifest", test_merge_bad_manifest},
	{NULL, NULL}
};
