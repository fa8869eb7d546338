/*-------------------------------------------------------------------------
 *
 * compact.c
 *	  Compacting one armdb relation: choose each shard's files, decide
 *	  which entries the merge keeps, swap the locations, wait for readers,
 *	  remove the inputs (the storage half is storage/merge.c).
 *
 * Which entries a merge keeps.  An entry of an input file is kept when
 *
 *	 - it is a slot reservation (one per run of up to 37,248 slots: cheap,
 *	   and recovery must never hand those slots out again, nor give their
 *	   pages to another shard);
 *	 - it is a version the keydir still points at ("live"; its location is
 *	   then swapped to the copy);
 *	 - or it ends a version (a tombstone, or a version naming prev_slot)
 *	   and that ending may still matter at recovery;
 *	 - or it is a row lock whose transaction is still running (a prepared
 *	   one's, format.h).
 *
 * When may an ending go?  A committed DELETE or UPDATE leaves the old
 * version's entry in its file until a merge drops it (after VACUUM freed
 * the slot), and only the ending keeps recovery from bringing it back.
 * Endings are written in the shard of the backend that made the change,
 * not necessarily the victim's, so the rule is stated per victim shard.
 * An ending of slot P with gsn g is dropped only when
 *	 (1) its transaction aborted (it ended nothing), or it committed and
 *	 (2) the keydir no longer holds the version it ended (VACUUM freed the
 *		 slot; or the slot holds a newer version, inserted by a transaction
 *		 that started after the ending one committed), and
 *	 (3) no file of P's shard can still hold a dead version older than g:
 *		 every file of that shard with dead version bytes (other than this
 *		 merge's inputs) has a lowest gsn of at least g.  Dead bytes are
 *		 counted before VACUUM clears a slot, so (3) is checked again after
 *		 the copy, and the merge is given up if it no longer holds.
 * A tombstone kept for (2) or (3) is copied as it is; a dead version kept
 * for its ending is kept as a tombstone of prev_slot (merge.h): a merge is
 * reproducible from its inputs and the list of kept entries.  A tombstone
 * is nobody's victim, so kept endings do not count for (3): two shards'
 * kept endings can never hold each other up.
 *
 * Readers.  A location is read under the virtual page's lock and used
 * after it is released, so an input file stays until every transaction
 * that was running when the locations moved has ended (the reader
 * horizon: the virtual transaction ids of that moment, waited for as
 * CREATE INDEX CONCURRENTLY does).  Sequential scans read files front to
 * back and take the shard's file list when they start (armdb_seqscan.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgwriter.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "compact/compact.h"
#include "keydir/files.h"
#include "storage/cipher.h"
#include "storage/hint.h"
#include "storage/merge.h"
#include "vstore/vstore.h"
#include "vstore/vstore_internal.h"
#include "wal/armdb_durable.h"
#include "wal/armdb_wal.h"

/* merges of a shard the worker does per round at most */
#define WORKER_MERGES			4

/* merges of a shard armdb_compact() leaves unfinished at most */
#define FORCE_MERGES_UNFINISHED	16

/* what was kept, per kept entry (parallel to ArmdbMerge.moves) */
typedef enum KeptKind
{
	KEPT_LIVE,					/* the keydir's version: swap its location */
	KEPT_ENDING,				/* an ending that may still matter */
	KEPT_OTHER					/* a reservation */
} KeptKind;

typedef struct CompactShard
{
	ArmdbRelKeydir *kd;
	uint32		shard;
	ArmdbShardRt *rt;
	ArmdbShardFiles *files;
	ArmdbMerge	m;

	/* condition (3): lowest gsn of any dead-bearing file, per shard */
	uint64	   *floor_gsn;
	/* highest gsn of an ending dropped, per victim shard */
	uint64	   *dropped_gsn;

	uint8	   *kinds;			/* KeptKind per move */
	uint64		kinds_cap;
	uint64		nkinds;

	uint64		floor;			/* rule (3)'s bound for all shards when the
								 * files were picked (mergeable_dead_bytes) */
	TransactionId freeze_cutoff;	/* xids before it have a fixed fate */

	/* endings kept, by reason (for the log) */
	uint64		kept_running;	/* (1) its transaction is in progress */
	uint64		kept_victim;	/* (2) the version it ended is still there */
	uint64		kept_older;		/* (3) older dead entries remain */

	/* cost-based delay */
	uint64		cost_read;
	uint64		cost_written;
	int			cost_balance;
	bool		canceled;
} CompactShard;

/* cs, zeroed, for shard of kd */
static void
compact_shard_init(CompactShard *cs, ArmdbRelKeydir *kd, uint32 shard)
{
	memset(cs, 0, sizeof(*cs));
	cs->kd = kd;
	cs->shard = shard;
	cs->rt = armdb_keydir_shard(kd, shard);
	cs->files = armdb_vstore_shard_files(kd, shard, armdb_store_settings());
}

static void
crash_at(int point)
{
	if (armdb_compaction_crash_at == point ||
		(point == ARMDB_CRASH_AFTER_LOG &&
		 armdb_compaction_crash_at == ARMDB_CRASH_CHECKPOINT_MID_LOG))
	{
		ereport(LOG,
				(errmsg("armdb: compaction fault point %d reached: killing this process",
						point)));
		(void) kill(MyProcPid, SIGKILL);
		pg_usleep(10 * 1000 * 1000L);
	}
}

void
armdb_compact_fault_mid_log(void)
{
	if (armdb_compaction_crash_at != ARMDB_CRASH_CHECKPOINT_MID_LOG)
		return;
	ereport(LOG,
			(errmsg("armdb: compaction fault point %d reached: a checkpoint in the middle of a merge's records",
					ARMDB_CRASH_CHECKPOINT_MID_LOG)));
	/*
	 * A new segment, so that the flusher's next round moves the durable
	 * LSN; the checkpoint waits for the merge to commit (not waited for
	 * here: that would never end).
	 */
	(void) RequestXLogSwitch(false);
	RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE);
	pg_usleep(3 * armdb_flush_interval_ms * 1000L + 1000 * 1000L);
}

/* Did the transaction of an entry commit?  (in_progress: not decided yet) */
static bool
entry_committed(const ArmdbEntryInfo *e, bool *in_progress)
{
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

	*in_progress = false;
	if (e->gsn & ARMDB_GSN_FLAG_FROZEN)
		return true;
	if (e->gsn & ARMDB_GSN_FLAG_ABORTED)
		return false;
	if (!TransactionIdIsNormal(xid))
		return xid == FrozenTransactionId;
	if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid))
	{
		*in_progress = true;
		return false;
	}
	return TransactionIdDidCommit(xid);
}

/* A copy of slot's version record (file_id 0: none), or false: no page. */
static bool
record_of(ArmdbRelKeydir *kd, uint64 slot, ArmdbVersion *copy,
		  ArmdbVersionExtra *xcopy)
{
	ArmdbPage  *page;

	if (slot >= ARMDB_MAX_SLOTS)
		return false;
	page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	if (page == NULL)
		return false;
	LWLockAcquire(&page->lock, LW_SHARED);
	*copy = page->v[slot % ARMDB_SLOTS_PER_PAGE];
	*xcopy = armdb_version_extra_values(&page->v[slot % ARMDB_SLOTS_PER_PAGE],
										slot);
	LWLockRelease(&page->lock);
	return true;
}

/*
 * Condition (2): does the keydir still hold a version that the ending of
 * slot by transaction ender may have ended?  The version an ending ended
 * carries the ender in its xmax while it is in the keydir (a committed
 * ending's version is never locked or ended again, and a keydir load drops
 * it); a version that does not, and is frozen or was inserted after the
 * ender, is a newer version in a reused slot.  A MultiXact xmax is not
 * looked into: the ending is kept.
 */
static bool
victim_present(ArmdbRelKeydir *kd, uint64 slot, FullTransactionId ender)
{
	ArmdbVersion v;
	ArmdbVersionExtra x;

	if (!record_of(kd, slot, &v, &x) || v.file_id == 0)
		return false;
	if ((v.infomask & HEAP_XMAX_IS_MULTI) ||
		v.xmax == XidFromFullTransactionId(ender))
		return true;			/* maybe the version it ended */
	if ((v.infomask & HEAP_XMIN_FROZEN) == HEAP_XMIN_FROZEN)
		return false;			/* a version the ending never marked */
	if (TransactionIdIsNormal(v.xmin) &&
		FullTransactionIdFollows(armdb_widen_xid(v.xmin), ender))
		return false;			/* a newer version in a reused slot */
	return true;
}

/* Is the version of e's slot the one at e's location? */
static bool
entry_is_live(ArmdbRelKeydir *kd, const ArmdbEntryInfo *e)
{
	ArmdbVersion v;
	ArmdbVersionExtra x;

	return record_of(kd, e->slot, &v, &x) && v.file_id == e->file_id &&
		v.offset == e->offset && x.len == e->len;
}

/*
 * Lowest gsn of the files of shard that have dead versions, inputs of cs's
 * merge left out (the bound of condition (3)).  Caller: no lock.
 */
static uint64
dead_floor(CompactShard *cs, uint32 shard)
{
	ArmdbShardRt *rt = armdb_keydir_shard(cs->kd, shard);
	ArmdbFileStat *fs;
	int			n;
	uint64		floor = PG_UINT64_MAX;

	LWLockAcquire(&rt->lock, LW_SHARED);
	fs = armdb_files_copy(rt, &n);
	LWLockRelease(&rt->lock);
	for (int i = 0; i < n; i++)
	{
		bool		input = false;

		if (shard == cs->shard)
			for (int j = 0; j < cs->m.ninputs && !input; j++)
				input = fs[i].file_id == cs->m.inputs[j];
		if (!input && fs[i].dead_version_bytes > 0)
			floor = Min(floor, fs[i].min_gsn);
	}
	pfree(fs);
	return floor;
}

/*
 * The dead bytes of a file a merge can give back.  The endings a merge kept
 * in it count only once the bound of rule (3) has moved since (floor: the
 * lowest gsn of any shard's file with dead versions; older victims were
 * merged away), or no dead version older than the newest of them is left:
 * merging the file again for them before would only copy them again, round
 * after round, on an idle server too.
 */
static uint64
mergeable_dead_bytes(const ArmdbFileStat *f, uint64 floor)
{
	if (f->ending_bytes > 0 && f->ending_max_gsn > floor &&
		floor <= f->ending_floor)
		return f->dead_bytes - Min(f->ending_bytes, f->dead_bytes);
	return f->dead_bytes;
}

/* Condition (1)-(3) for an ending of slot with gsn, by e's transaction. */
static bool
ending_matters(CompactShard *cs, const ArmdbEntryInfo *e, uint64 slot)
{
	bool		in_progress;
	uint64		gsn = e->gsn & ARMDB_GSN_MAX;
	uint32		vshard;

	if (!entry_committed(e, &in_progress))
	{
		cs->kept_running += in_progress;
		return in_progress;		/* an aborted ending ended nothing */
	}
	if (slot >= ARMDB_MAX_SLOTS)
		return true;
	if (victim_present(cs->kd, slot, FullTransactionIdFromU64(e->xid)))
	{
		cs->kept_victim++;
		return true;
	}
	vshard = armdb_slot_shard(cs->kd, slot);
	if (gsn > cs->floor_gsn[vshard])
	{
		cs->kept_older++;
		return true;
	}
	cs->dropped_gsn[vshard] = Max(cs->dropped_gsn[vshard], gsn);
	return false;
}

static void
note_kind(CompactShard *cs, KeptKind kind)
{
	if (cs->nkinds == cs->kinds_cap)
	{
		cs->kinds_cap = Max(1024, cs->kinds_cap * 2);
		cs->kinds = cs->kinds == NULL ?
			palloc_extended(cs->kinds_cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(cs->kinds, cs->kinds_cap);
	}
	cs->kinds[cs->nkinds++] = (uint8) kind;
}

/*
 * Freezing by rewrite (design §4): a kept entry whose transaction ended
 * before every running one began has a fate nobody can change; the
 * outputs' hint files record it, so recovery and VACUUM's relfrozenxid
 * need no clog for it any more.
 */
static void
freeze_fate(CompactShard *cs, ArmdbEntryInfo *e)
{
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));
	bool		in_progress;

	if ((e->gsn & (ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED)) ||
		armdb_gsn_is_reservation(e->gsn) || !TransactionIdIsNormal(xid) ||
		!TransactionIdPrecedes(xid, cs->freeze_cutoff))
		return;
	if (entry_committed(e, &in_progress))
		e->gsn |= ARMDB_GSN_FLAG_FROZEN;
	else if (!in_progress)
		e->gsn |= ARMDB_GSN_FLAG_ABORTED;
}

/* ArmdbMergeKeepFn */
static bool
keep_entry(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep,
		   ArmdbError *err)
{
	CompactShard *cs = arg;
	KeptKind	kind = KEPT_OTHER;

	*keep = ARMDB_MERGE_DROP;
	if (armdb_gsn_is_reservation(e->gsn))
		*keep = ARMDB_MERGE_KEEP;
	else if (armdb_gsn_is_lock(e->gsn))
	{
		bool		in_progress;

		/* a row lock matters while its transaction runs (winner.h) */
		(void) entry_committed(e, &in_progress);
		if (in_progress)
		{
			*keep = ARMDB_MERGE_KEEP;
			cs->kept_running++;
		}
		kind = KEPT_ENDING;		/* nothing points at it */
	}
	else if (armdb_gsn_is_tombstone(e->gsn))
	{
		if (ending_matters(cs, e, e->slot))
			*keep = ARMDB_MERGE_KEEP;
		kind = KEPT_ENDING;
	}
	else if (entry_is_live(cs->kd, e))
	{
		*keep = ARMDB_MERGE_KEEP;
		kind = KEPT_LIVE;
	}
	else
	{
		/* a dead version: it may still end its predecessor */
		if (e->prev_slot != ARMDB_INVALID_SLOT &&
			ending_matters(cs, e, e->prev_slot))
			*keep = ARMDB_MERGE_KEEP_ENDING;
		kind = KEPT_ENDING;
	}
	if (*keep != ARMDB_MERGE_DROP)
	{
		note_kind(cs, kind);
		freeze_fate(cs, e);
	}
	return true;
}

/* ArmdbMergeFileIdFn */
static bool
new_file_id(void *arg, uint32 *file_id, ArmdbError *err)
{
	CompactShard *cs = arg;
	bool		ok;

	LWLockAcquire(&cs->rt->lock, LW_EXCLUSIVE);
	ok = armdb_shard_new_file_id(&cs->rt->st, file_id, err);
	LWLockRelease(&cs->rt->lock);
	return ok;
}

/*
 * ArmdbMergeProgressFn: the cost-based delay (as VACUUM's: reading 8 kB
 * costs 1, writing 8 kB costs 2; at armdb.compaction_cost_limit, sleep
 * armdb.compaction_cost_delay), and a way out when the process is asked to
 * stop -- the merge is undone cleanly before the interrupt is served.
 */
static bool
merge_progress(void *arg, uint64 bytes_read, uint64 bytes_written,
			   ArmdbError *err)
{
	CompactShard *cs = arg;

	cs->cost_balance += (int) ((bytes_read - cs->cost_read) / 8192 +
							   2 * ((bytes_written - cs->cost_written) / 8192));
	cs->cost_read = bytes_read - (bytes_read - cs->cost_read) % 8192;
	cs->cost_written = bytes_written - (bytes_written - cs->cost_written) % 8192;
	if (armdb_compaction_cost_delay_ms > 0 &&
		cs->cost_balance >= armdb_compaction_cost_limit)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 armdb_compaction_cost_delay_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		cs->cost_balance = 0;
	}
	if (InterruptPending)
	{
		cs->canceled = true;
		return armdb_error(err, ARMDB_ERR_INVALID, 0, "merge canceled");
	}
	return true;
}

/* The gsn of file_id's first entry (its lowest, for an appended file). */
static uint64
first_entry_gsn(CompactShard *cs, uint32 file_id)
{
	ArmdbShardRt *rt = cs->rt;
	ArmdbEntryHeader hdr;
	ArmdbAlignedBuf block;
	ArmdbError	err;
	size_t		nread = 0;
	int			fd;
	bool		ok = false;

	LWLockAcquire(&rt->lock, LW_SHARED);
	if (file_id == rt->st.active_file_id && rt->st.buf_start == 0 &&
		rt->st.buf_ref != 0)
	{
		if (rt->st.append_end > ARMDB_FILE_HEADER_SIZE)
		{
			memcpy(&hdr, armdb_shard_buf(&rt->st) + ARMDB_FILE_HEADER_SIZE, sizeof(hdr));
			ok = true;
		}
		LWLockRelease(&rt->lock);
		return ok ? (hdr.gsn & ARMDB_GSN_MAX) : 0;
	}
	LWLockRelease(&rt->lock);

	if (!armdb_aligned_alloc(&block, ARMDB_BLOCK_SIZE, &err))
		armdb_report_storage_error(ERROR, &err);
	fd = armdb_shard_file_fd(cs->files, file_id, &err);
	if (fd >= 0 &&
		armdb_io_pread(cs->files->io, fd, block.data, ARMDB_BLOCK_SIZE, 0,
					   &nread, &err) &&
		nread >= ARMDB_FILE_HEADER_SIZE + sizeof(hdr))
	{
		memcpy(&hdr, block.data + ARMDB_FILE_HEADER_SIZE, sizeof(hdr));
		ok = true;
	}
	armdb_aligned_free(&block);
	return ok ? (hdr.gsn & ARMDB_GSN_MAX) : 0;
}

/*
 * Bring the shard's file list up to date with files the shard started
 * since (rotations), and fill in sizes and lowest gsns not known yet.
 * Returns the list (palloc'd) and the active file.
 */
static ArmdbFileStat *
sync_file_list(CompactShard *cs, int *nfiles, uint32 *active)
{
	ArmdbShardRt *rt = cs->rt;
	ArmdbFileStat *fs;
	int			n;
	uint32		max_known = 0;
	uint32	   *started;
	int			nstarted = 0;

	LWLockAcquire(&rt->lock, LW_SHARED);
	*active = rt->st.active_file_id;
	max_known = rt->files_upto;
	LWLockRelease(&rt->lock);

	/* files started by rotation since: numbers above the list's */
	started = armdb_vstore_files_since(cs->files->dir, max_known, *active,
									   palloc(sizeof(uint32)), &nstarted);
	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	for (int i = 0; i < nstarted; i++)
		(void) armdb_files_lookup(rt, started[i], true);
	LWLockRelease(&rt->lock);
	pfree(started);

	/*
	 * The active file as of the copy: one started since the first look is
	 * in the list already (it joins with its first entry), and must not be
	 * taken for a closed file -- sized from its partial length, or merged.
	 */
	LWLockAcquire(&rt->lock, LW_SHARED);
	fs = armdb_files_copy(rt, &n);
	*active = rt->st.active_file_id;
	LWLockRelease(&rt->lock);
	for (int i = 0; i < n; i++)
	{
		uint64		size = 0;
		uint64		min_gsn = fs[i].min_gsn;
		ArmdbFileStat *f;

		if (fs[i].total_bytes == 0 && fs[i].file_id != *active)
		{
			char		path[MAXPGPATH];
			struct stat st;

			armdb_file_path(path, cs->files->dir, fs[i].file_id, ARMDB_FILE_DATA);
			if (stat(path, &st) == 0)
				size = (uint64) st.st_size;
		}
		if (min_gsn == 0)
			min_gsn = first_entry_gsn(cs, fs[i].file_id);
		if (size == 0 && min_gsn == fs[i].min_gsn)
			continue;
		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		f = armdb_files_lookup(rt, fs[i].file_id, false);
		if (f != NULL)
		{
			if (size != 0 && f->total_bytes == 0)
				f->total_bytes = size;
			if (f->min_gsn == 0)
				f->min_gsn = min_gsn;
			fs[i] = *f;
		}
		LWLockRelease(&rt->lock);
	}
	*nfiles = n;
	return fs;
}

/*
 * Wait until no transaction that was running when the locations moved can
 * still use an old one.
 */
static void
wait_for_readers(void)
{
	VirtualTransactionId *vxids;
	int			n;

	/*
	 * All databases (a location is a location); we are left out, and so is
	 * lazy VACUUM: a VACUUM of this table cannot have started before the
	 * locations moved (the merge held the table's ShareUpdateExclusiveLock
	 * until then), and one of another table reads no file of this one.
	 */
	vxids = GetCurrentVirtualXIDs(InvalidTransactionId, false, true,
								  PROC_IN_VACUUM, &n);
	for (int i = 0; i < n; i++)
	{
		bool		more;

		/*
		 * A prepared transaction reads nothing any more, and waiting for
		 * its vxid would wait for its COMMIT PREPARED (lock.c): leave out
		 * the ones recovered at start-up, and those prepared since.  (One
		 * that prepares while we wait for it holds us until it ends, as it
		 * holds CREATE INDEX CONCURRENTLY; the wait is a lock wait, which
		 * pg_locks and the isolation tester see.)
		 */
		if (VirtualTransactionIdIsRecoveredPreparedXact(vxids[i]) ||
			TransactionIdIsValid(TwoPhaseGetXidByVirtualXID(vxids[i], &more)))
			continue;
		(void) VirtualXactLock(vxids[i], true);
	}
	pfree(vxids);
}

/* A kept entry nothing points at: dead bytes of its output. */
static void
add_output_dead(ArmdbMerge *m, const ArmdbMergeMove *mv, uint64 *dead_bytes)
{
	for (int out = 0; out < m->noutputs; out++)
		if (m->outputs[out] == mv->new_file_id)
			dead_bytes[out] += mv->entry.len;
}

/*
 * Swap the locations of the live moves.  Per output, failed_bytes gets the
 * bytes of versions that VACUUM freed meanwhile, ending_bytes those of the
 * kept endings: nothing points at either.
 */
static void
swap_locations(CompactShard *cs, uint64 *failed_bytes, uint64 *ending_bytes)
{
	ArmdbMerge *m = &cs->m;

	for (int i = 0; i < m->noutputs; i++)
		failed_bytes[i] = ending_bytes[i] = 0;
	for (uint64 i = 0; i < m->nmoves; i++)
	{
		ArmdbMergeMove *mv = &m->moves[i];

		/* whatever the middle move is: an ending there must not skip it */
		if (i == m->nmoves / 2)
			crash_at(ARMDB_CRASH_MID_SWAP);
		if (cs->kinds[i] == KEPT_ENDING)
		{
			/*
			 * Nothing points at a kept ending: its bytes are dead, to be
			 * dropped by a later merge once its victim is gone (but being a
			 * tombstone, it is nobody's victim).
			 */
			add_output_dead(m, mv, ending_bytes);
			continue;
		}
		if (cs->kinds[i] != KEPT_LIVE)
			continue;
		/* VACUUM freed it meanwhile: a dead entry in its output */
		if (!armdb_keydir_move_version(cs->kd, mv))
			add_output_dead(m, mv, failed_bytes);
	}
}

/* The outputs' entries in the file list: sizes, dead bytes, gsn range. */
static ArmdbFileStat *
output_stats(CompactShard *cs, const uint64 *failed_bytes,
			 const uint64 *ending_bytes)
{
	ArmdbMerge *m = &cs->m;
	ArmdbFileStat *out = palloc0(sizeof(ArmdbFileStat) * Max(m->noutputs, 1));
	int			o = 0;

	for (int i = 0; i < m->noutputs; i++)
	{
		out[i].file_id = m->outputs[i];
		out[i].total_bytes = m->output_sizes[i];
		out[i].dead_bytes = failed_bytes[i] + ending_bytes[i];
		out[i].dead_version_bytes = failed_bytes[i];
		out[i].ending_bytes = ending_bytes[i];
		out[i].ending_floor = cs->floor;
		out[i].min_gsn = PG_UINT64_MAX;
	}
	for (uint64 i = 0; i < m->nmoves; i++)
	{
		uint64		gsn = m->moves[i].entry.gsn & ARMDB_GSN_MAX;

		while (o < m->noutputs && out[o].file_id != m->moves[i].new_file_id)
			o++;
		Assert(o < m->noutputs);
		out[o].min_gsn = Min(out[o].min_gsn, gsn);
		out[o].max_gsn = Max(out[o].max_gsn, gsn);
		if (cs->kinds[i] == KEPT_ENDING)
			out[o].ending_max_gsn = Max(out[o].ending_max_gsn, gsn);
	}
	for (int i = 0; i < m->noutputs; i++)
		if (out[i].min_gsn == PG_UINT64_MAX)
			out[i].min_gsn = 0;
	return out;
}

/*
 * Write the hint files of the files the shard sealed (rotation) while the
 * worker was running (ARMDB_FSTAT_NEEDS_HINT), which the writing backends
 * left to it, and of those compaction sealed itself -- but not of the
 * round's merge inputs, which the merge removes (one that fails keeps its
 * flag for the next round).  A failure is only logged: recovery scans a
 * file without one.
 */
static void
build_hints(CompactShard *cs, Relation rel, const ArmdbFileStat *fs, int nfiles,
			const uint32 *inputs, int ninputs)
{
	for (int i = 0; i < nfiles; i++)
	{
		ArmdbError	err;
		ArmdbFileStat *f;
		bool		input = false;

		/* not a file the merge is about to remove (its flag stays) */
		for (int j = 0; j < ninputs; j++)
			input = input || inputs[j] == fs[i].file_id;
		if (!(fs[i].flags & ARMDB_FSTAT_NEEDS_HINT) || input)
			continue;
		CHECK_FOR_INTERRUPTS();
		if (armdb_hint_build(cs->files->io, cs->files->dir, fs[i].file_id,
							 armdb_store_settings()->direct_io, false,
							 armdb_shard_files_auth(cs->files), &err))
			armdb_vstore_log_hint(&cs->kd->key, cs->shard, fs[i].file_id);
		else
			ereport(LOG,
					(errmsg("armdb: could not write the hint file of data file %06u of \"%s\": %s",
							fs[i].file_id, RelationGetRelationName(rel),
							err.message),
					 errdetail("Recovery will scan the data file instead.")));
		LWLockAcquire(&cs->rt->lock, LW_EXCLUSIVE);
		f = armdb_files_lookup(cs->rt, fs[i].file_id, false);
		if (f != NULL)
			f->flags &= ~ARMDB_FSTAT_NEEDS_HINT;
		LWLockRelease(&cs->rt->lock);
	}
}

/* Is a manifest of a merge left in the shard's directory? */
static bool
shard_has_manifest(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	bool		found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL)
	{
		uint32		id;
		ArmdbFileKind kind;

		found = armdb_file_name_parse(de->d_name, &id, &kind) &&
			kind == ARMDB_FILE_MERGE;
	}
	closedir(d);
	return found;
}

static void
report_failure(CompactShard *cs, Relation rel, const ArmdbError *err)
{
	ArmdbCompactStats delta;

	memset(&delta, 0, sizeof(delta));
	delta.failures = 1;
	delta.crc_errors = err->code == ARMDB_ERR_CORRUPT ? 1 : 0;
	/* the next start reads the files, which reports it (keydir/image.c) */
	if (err->code == ARMDB_ERR_CORRUPT)
		cs->kd->damage_seen = true;
	armdb_compact_stats_add(&delta, err->message);
	ereport(err->code == ARMDB_ERR_CORRUPT ? WARNING : LOG,
			(errcode(err->code == ARMDB_ERR_CORRUPT ? ERRCODE_DATA_CORRUPTED :
					 ERRCODE_IO_ERROR),
			 errmsg("armdb: compaction of shard %u of \"%s\" was undone: %s",
					cs->shard, RelationGetRelationName(rel), err->message),
			 errdetail("The shard's files are as they were before; nothing was lost.")));
}

/*
 * Merge the files of one shard that need it (at most ARMDB_MERGE_MAX_INPUTS
 * of them, oldest first).  Only files numbered up to *max_input are
 * candidates; 0 sets it to the highest number the shard has now, so that a
 * caller looping over the shard never merges the outputs of its own earlier
 * rounds (whose numbers are higher: file numbers are never reused).  With
 * own_manifests, the merge manifests in the shard's directory are the
 * caller's own merges waiting in pending, not an unfinished merge.
 * Returns whether it merged.
 */
/*
 * Is data file file_id of the shard encrypted under a key other than the
 * current one (key rotation, cipher.h), or by an earlier build, which left
 * the entries without a value unsealed (format.h: AUTHENTICATED)?  Either
 * way a merge re-encrypts it.  A file that cannot be read is left to the
 * merge's own checks.
 */
static bool
under_old_key(CompactShard *cs, uint32 file_id)
{
	ArmdbFileHeader fh;
	ArmdbError	err;

	return armdb_shard_file_header(cs->files, file_id, &fh, &err) &&
		(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED) &&
		(fh.key_id != armdb_keyring.keys[0].id ||
		 !(fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED));
}

/*
 * Does kd still have a file under an older key that compaction would
 * re-encrypt: a closed file that is not damaged (merge_pick() leaves
 * damaged ones), or an active file with entries, which compact_shard()
 * closes first?  For the launcher (armdb_compact_keydir_has_work()), so
 * that rotation alone is work for the worker, until a round finds none.
 */
static bool
has_old_key_files(ArmdbRelKeydir *kd)
{
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		CompactShard cs;
		ArmdbFileStat *fs;
		uint32		active;
		int			nfiles;
		bool		found = false;
		bool		sealable;

		compact_shard_init(&cs, kd, shard);
		fs = sync_file_list(&cs, &nfiles, &active);
		for (int i = 0; i < nfiles && !found; i++)
			found = !(fs[i].flags & ARMDB_FSTAT_DAMAGED) &&
				fs[i].file_id != active && under_old_key(&cs, fs[i].file_id);
		pfree(fs);
		LWLockAcquire(&cs.rt->lock, LW_SHARED);
		sealable = cs.rt->st.active_file_id == active && active != 0 &&
			cs.rt->st.append_end > ARMDB_FILE_HEADER_SIZE &&
			!cs.rt->st.sealed && !cs.rt->st.failed;
		LWLockRelease(&cs.rt->lock);
		if (found || (sealable && under_old_key(&cs, active)))
			return true;
	}
	return false;
}

static bool
compact_shard(Relation rel, ArmdbRelKeydir *kd, uint32 shard, bool force,
			  uint32 *max_input, bool own_manifests,
			  ArmdbCompactResult *result, ArmdbPendingFinish *pending,
			  int *npending)
{
	CompactShard cs;
	ArmdbMerge *m = &cs.m;
	ArmdbMergeCandidate *cand;
	ArmdbFileStat *fs;
	ArmdbFileStat *outs;
	uint64	   *failed_bytes;
	uint64	   *ending_bytes;
	uint64		floor;
	int			nfiles;
	int			ncand = 0;
	uint32		active;
	ArmdbError	err;
	bool		ok;
	TimestampTz start = GetCurrentTimestamp();
	ArmdbCompactStats delta;
	uint64		in_bytes = 0;
	uint64		out_bytes = 0;
	volatile int floor_slot;
	volatile bool committed = false;

	compact_shard_init(&cs, kd, shard);
	if (!own_manifests && shard_has_manifest(cs.files->dir))
	{
		uint32		swapped;
		char		path[MAXPGPATH];

		/*
		 * A merge whose locations moved but whose inputs were not removed
		 * (its finish failed, say a deadlock while waiting for readers):
		 * finish it now.  Any other manifest is a merge whose commit failed
		 * half-way: recovery finishes it, and until then the shard is left
		 * alone.
		 */
		LWLockAcquire(&cs.rt->lock, LW_SHARED);
		swapped = cs.rt->swapped_manifest;
		LWLockRelease(&cs.rt->lock);
		armdb_file_path(path, cs.files->dir, swapped, ARMDB_FILE_MERGE);
		if (swapped != 0 && access(path, F_OK) == 0 &&
			*npending < ARMDB_MAX_PENDING_FINISH)
		{
			ArmdbPendingFinish *pf = &pending[(*npending)++];

			strlcpy(pf->dir, cs.files->dir, MAXPGPATH);
			pf->manifest_id = swapped;
			pf->shard = shard;
		}
		else
			ereport(LOG,
					(errmsg("armdb: shard %u of \"%s\" has an unfinished merge; it is finished at the next server start",
							shard, RelationGetRelationName(rel))));
		return false;
	}

	/*
	 * The active file under an older key (rotation, cipher.h) is closed, so
	 * that it is merged -- re-encrypted -- like any other, and the key can
	 * be retired although the shard takes no more writes (a written shard
	 * leaves such a file at its first append).
	 */
	if (kd->encrypted && armdb_keyring.nkeys > 0)
	{
		LWLockAcquire(&cs.rt->lock, LW_SHARED);
		active = cs.rt->st.active_file_id;
		LWLockRelease(&cs.rt->lock);
		if (active != 0 && under_old_key(&cs, active))
			(void) armdb_vstore_seal_file(kd, shard, active,
										  RelationNeedsWAL(rel),
										  armdb_store_settings());
	}

	/* 1. the files; the merge's inputs; the hint files of the others */
	fs = sync_file_list(&cs, &nfiles, &active);
	if (*max_input == 0)
	{
		*max_input = active;
		for (int i = 0; i < nfiles; i++)
			*max_input = Max(*max_input, fs[i].file_id);
	}
	cand = palloc(sizeof(ArmdbMergeCandidate) * Max(nfiles, 1));
	floor = PG_UINT64_MAX;
	for (uint32 s = 0; s < kd->nshards; s++)
		floor = Min(floor, dead_floor(&cs, s));
	cs.floor = floor;
	for (int i = 0; i < nfiles; i++)
	{
		if ((fs[i].flags & ARMDB_FSTAT_DAMAGED) || fs[i].file_id > *max_input)
			continue;
		cand[ncand].file_id = fs[i].file_id;
		cand[ncand].total_bytes = fs[i].total_bytes;
		cand[ncand].dead_bytes = mergeable_dead_bytes(&fs[i], floor);
		/* a file under an older key is merged whole: that re-encrypts it */
		if (kd->encrypted && armdb_keyring.nkeys > 0 &&
			fs[i].file_id != active && under_old_key(&cs, fs[i].file_id))
			cand[ncand].dead_bytes = cand[ncand].total_bytes;
		cand[ncand].min_gsn = fs[i].min_gsn;
		cand[ncand].cooldown = (fs[i].flags & ARMDB_FSTAT_COOLDOWN) != 0;
		ncand++;
	}
	m->ninputs = armdb_merge_pick(cand, ncand, active,
								  force ? 0.0 : armdb_compaction_threshold,
								  ARMDB_MERGE_MAX_INPUTS, m->inputs);
	pfree(cand);
	build_hints(&cs, rel, fs, nfiles, m->inputs, m->ninputs);
	/* the last run's outputs wait one run only */
	LWLockAcquire(&cs.rt->lock, LW_EXCLUSIVE);
	for (int i = 0; i < nfiles; i++)
	{
		ArmdbFileStat *f = armdb_files_lookup(cs.rt, fs[i].file_id, false);

		if (f != NULL)
			f->flags &= ~ARMDB_FSTAT_COOLDOWN;
	}
	LWLockRelease(&cs.rt->lock);
	for (int i = 0; i < m->ninputs; i++)
		for (int j = 0; j < nfiles; j++)
			if (fs[j].file_id == m->inputs[i])
				in_bytes += fs[j].total_bytes;
	pfree(fs);
	if (m->ninputs == 0)
		return false;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("armdb: merging %d files of shard %u of \"%s\"",
									m->ninputs, shard,
									RelationGetRelationName(rel)));
	cs.floor_gsn = palloc(sizeof(uint64) * kd->nshards);
	cs.dropped_gsn = palloc0(sizeof(uint64) * kd->nshards);
	for (uint32 s = 0; s < kd->nshards; s++)
		cs.floor_gsn[s] = dead_floor(&cs, s);

	/* 2. the copy, freezing what it can (fates made durable first) */
	cs.freeze_cutoff = GetOldestNonRemovableTransactionId(rel);
	armdb_vstore_flush_fates();
	m->io = armdb_backend_io();
	m->dir = cs.files->dir;
	m->shard_no = shard;
	m->key_id = 0;
	memcpy(m->storage_id, kd->storage_id, sizeof(m->storage_id));
	if (kd->encrypted)
	{
		/* the current key: merges are how old keys are retired */
		if (armdb_keyring.nkeys == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("armdb: cannot merge files of encrypted table \"%s\": the server has no encryption key",
							RelationGetRelationName(rel)),
					 errhint("Set armdb.encryption_key_command and restart the server.")));
		m->key_id = armdb_keyring.keys[0].id;
		m->authenticated = true;
		if (!armdb_cipher_random_salt(m->salt, &err))
			armdb_report_storage_error(ERROR, &err);
	}
	m->max_file_size = armdb_store_settings()->max_file_size;
	m->direct_io = armdb_store_settings()->direct_io;
	m->keep = keep_entry;
	m->next_file_id = new_file_id;
	m->progress = merge_progress;
	m->arg = &cs;
	PG_TRY();
	{
		ok = armdb_merge_copy(m, &err);
	}
	PG_CATCH();
	{
		armdb_merge_abort(m);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* condition (3) again, now that the copy is done */
	for (uint32 s = 0; ok && s < kd->nshards; s++)
		if (cs.dropped_gsn[s] > dead_floor(&cs, s))
		{
			armdb_merge_abort(m);
			ok = armdb_error(&err, ARMDB_ERR_INVALID, 0,
							 "a concurrent VACUUM freed versions that an ending this merge dropped may have ended");
		}
	if (!ok)
	{
		armdb_merge_free(m);
		if (cs.canceled)
			CHECK_FOR_INTERRUPTS();
		report_failure(&cs, rel, &err);
		return false;
	}
	crash_at(ARMDB_CRASH_AFTER_COPY);

	/* room in the file list for the outputs, while the merge can go back */
	LWLockAcquire(&cs.rt->lock, LW_EXCLUSIVE);
	ok = armdb_files_reserve(cs.rt, m->noutputs);
	LWLockRelease(&cs.rt->lock);
	if (!ok)
	{
		armdb_merge_abort(m);
		armdb_merge_free(m);
		armdb_error(&err, ARMDB_ERR_NOMEM, 0,
					"no room in armdb.memory for the list of a shard's files");
		report_failure(&cs, rel, &err);
		return false;
	}

	/*
	 * 3. commit: from here the merge is done, whatever happens.  Its WAL
	 * record goes first, flushed: a standby (or this node's replay after a
	 * crash) redoes it from the inputs (armdb_wal.c).
	 */
	floor_slot = RelationNeedsWAL(rel) ? armdb_durable_merge_begin() : -1;
	if (RelationNeedsWAL(rel) && floor_slot < 0)
	{
		armdb_merge_abort(m);
		armdb_merge_free(m);
		armdb_error(&err, ARMDB_ERR_INVALID, 0,
					"%d other merges are being logged", ARMDB_MAX_LOGGING_MERGES);
		report_failure(&cs, rel, &err);
		return false;
	}
	PG_TRY();
	{
		if (RelationNeedsWAL(rel))
			armdb_wal_log_merge(&rel->rd_node, shard, m, cs.freeze_cutoff);
		crash_at(ARMDB_CRASH_AFTER_LOG);
		committed = armdb_merge_commit(m, &err);
	}
	PG_CATCH();
	{
		armdb_durable_merge_end(floor_slot);
		PG_RE_THROW();
	}
	PG_END_TRY();
	armdb_durable_merge_end(floor_slot);
	if (!committed)
	{
		/*
		 * Logged, so standbys do this merge: this node must not give it up
		 * (later merges here would drop endings whose victims a standby
		 * without it still holds).  Replay after the restart redoes it.
		 */
		if (RelationNeedsWAL(rel) && !shard_has_manifest(cs.files->dir))
			ereport(PANIC,
					(errmsg("armdb: could not commit a logged merge of shard %u of \"%s\": %s",
							shard, RelationGetRelationName(rel), err.message),
					 errdetail("Crash recovery redoes the merge from its WAL record.")));
		armdb_merge_free(m);
		if (err.code == ARMDB_ERR_IO && shard_has_manifest(cs.files->dir))
			ereport(WARNING,
					(errmsg("armdb: compaction of shard %u of \"%s\" failed after its commit: %s",
							shard, RelationGetRelationName(rel), err.message),
					 errdetail("The merge is finished at the next server start; until then the shard is not compacted.")));
		else
			report_failure(&cs, rel, &err);
		return false;
	}
	crash_at(ARMDB_CRASH_AFTER_COMMIT);

	/* 4. the new locations (never fails), the file list */
	failed_bytes = palloc(sizeof(uint64) * Max(m->noutputs, 1));
	ending_bytes = palloc(sizeof(uint64) * Max(m->noutputs, 1));
	HOLD_INTERRUPTS();
	swap_locations(&cs, failed_bytes, ending_bytes);
	outs = output_stats(&cs, failed_bytes, ending_bytes);
	LWLockAcquire(&cs.rt->lock, LW_EXCLUSIVE);
	cs.rt->swapped_manifest = m->manifest_id;
	if (!armdb_files_replace(cs.rt, m->inputs, m->ninputs, outs, m->noutputs))
	{
		/*
		 * Cannot happen: room was reserved above and only VACUUM, which
		 * this merge's lock keeps out, adds files.  Scans would miss the
		 * outputs; the merge is committed, so recovery makes it whole.
		 */
		elog(PANIC, "armdb: no room to list the outputs of a merge of \"%s\"",
			 RelationGetRelationName(rel));
	}
	LWLockRelease(&cs.rt->lock);
	RESUME_INTERRUPTS();
	crash_at(ARMDB_CRASH_AFTER_SWAP);

	/* 5. the inputs go once nobody can read them: the caller's business */
	if (*npending < ARMDB_MAX_PENDING_FINISH)
	{
		ArmdbPendingFinish *pf = &pending[(*npending)++];

		strlcpy(pf->dir, cs.files->dir, MAXPGPATH);
		pf->manifest_id = m->manifest_id;
		pf->shard = shard;
	}

	for (int i = 0; i < m->noutputs; i++)
		out_bytes += m->output_sizes[i];
	memset(&delta, 0, sizeof(delta));
	delta.runs = 1;
	delta.files_merged = m->ninputs;
	delta.files_written = m->noutputs;
	delta.entries_moved = m->nmoves;
	delta.bytes_read = m->bytes_read;
	delta.bytes_written = m->bytes_written;
	delta.bytes_reclaimed = in_bytes > out_bytes ? in_bytes - out_bytes : 0;
	delta.last_duration_ms =
		(double) (GetCurrentTimestamp() - start) / 1000.0;
	armdb_compact_stats_add(&delta, NULL);

	result->merges++;
	result->files_in += m->ninputs;
	result->files_out += m->noutputs;
	result->entries_read += m->entries_read;
	result->entries_kept += m->nmoves;
	result->bytes_before += in_bytes;
	result->bytes_after += out_bytes;
	ereport(DEBUG1,
			(errmsg("armdb: merged %d files of shard %u of \"%s\" into %d: %llu of %llu entries kept, %llu bytes reclaimed",
					m->ninputs, shard, RelationGetRelationName(rel),
					m->noutputs, (unsigned long long) m->nmoves,
					(unsigned long long) m->entries_read,
					(unsigned long long) delta.bytes_reclaimed),
			 errdetail("Endings kept: %llu of running transactions, %llu whose version is still there, %llu with older dead entries left.",
					   (unsigned long long) cs.kept_running,
					   (unsigned long long) cs.kept_victim,
					   (unsigned long long) cs.kept_older)));
	armdb_merge_free(m);
	pfree(outs);
	pfree(failed_bytes);
	pfree(ending_bytes);
	if (cs.kinds)
		pfree(cs.kinds);
	return true;
}

void
armdb_compact_sync_files(ArmdbRelKeydir *kd)
{
	/* on a standby, replay keeps the file lists (and removes files) */
	if (RecoveryInProgress())
		return;
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		CompactShard cs;
		uint32		active;
		int			n;

		compact_shard_init(&cs, kd, shard);
		pfree(sync_file_list(&cs, &n, &active));
	}
}

int
armdb_compact_relation(Relation rel, bool force, ArmdbCompactResult *result,
					   ArmdbPendingFinish *pending)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	TimestampTz start = GetCurrentTimestamp();
	int			npending = 0;

	memset(result, 0, sizeof(*result));
	/* every shard's list, for the endings' rule (3) */
	armdb_compact_sync_files(kd);
	for (uint32 shard = 0; shard < kd->nshards &&
		 npending < ARMDB_MAX_PENDING_FINISH; shard++)
	{
		uint32		max_input = 0;
		int			rounds = 0;

		CHECK_FOR_INTERRUPTS();

		/*
		 * The worker does up to WORKER_MERGES merges per shard and round
		 * (so that it keeps up with writers between naps).  armdb_compact()
		 * (force) merges every file with dead bytes, one merge of at most
		 * ARMDB_MERGE_MAX_INPUTS files after the other; every
		 * FORCE_MERGES_UNFINISHED merges of a shard it finishes them, so
		 * that no more merge manifests pile up in a shard's directory than
		 * recovery accepts (armdb_merge_recover).  Neither merges its own
		 * outputs again (max_input).
		 */
		while (compact_shard(rel, kd, shard, force, &max_input, rounds > 0,
							 result, pending, &npending) &&
			   (force || rounds + 1 < WORKER_MERGES))
		{
			CHECK_FOR_INTERRUPTS();
			if (++rounds == FORCE_MERGES_UNFINISHED ||
				npending == ARMDB_MAX_PENDING_FINISH)
			{
				armdb_compact_finish(pending, npending);
				npending = 0;
				rounds = 0;
			}
		}
	}
	/* what rotation left is done once a round finds nothing of it */
	if (kd->encrypted && armdb_keyring.nkeys > 0 && !kd->old_keys_merged &&
		!has_old_key_files(kd))
		kd->old_keys_merged = true;
	result->duration_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
	pgstat_report_activity(STATE_RUNNING, NULL);
	return npending;
}

void
armdb_compact_finish(const ArmdbPendingFinish *pending, int npending)
{
	if (npending == 0)
		return;
	pgstat_report_activity(STATE_RUNNING,
						   "armdb: waiting for readers of merged files");
	wait_for_readers();
	for (int i = 0; i < npending; i++)
	{
		ArmdbMerge	m;
		ArmdbError	err;

		memset(&m, 0, sizeof(m));
		m.dir = pending[i].dir;
		m.manifest_id = pending[i].manifest_id;
		if (!armdb_merge_finish(&m, &err))
			ereport(WARNING,
					(errmsg("armdb: could not remove the input files of a merge in \"%s\": %s",
							pending[i].dir, err.message),
					 errdetail("They are removed at the next server start.")));
	}
	/* every backend closes its cached descriptors of removed files */
	pg_atomic_fetch_add_u64(&armdb_shared->files_removed, 1);
	crash_at(ARMDB_CRASH_AFTER_FINISH);
	pgstat_report_activity(STATE_RUNNING, NULL);
}

bool
armdb_compact_file_has_hint(ArmdbRelKeydir *kd, uint32 shard, uint32 file_id)
{
	ArmdbShardFiles *files = armdb_vstore_shard_files(kd, shard,
													  armdb_store_settings());
	char		path[MAXPGPATH];
	struct stat st;

	armdb_file_path(path, files->dir, file_id, ARMDB_FILE_HINT);
	return stat(path, &st) == 0;
}

/*
 * Does a shard of kd have a file worth merging?  For the launcher, which
 * starts a worker only for databases with work: a worker connected to a
 * database delays DROP DATABASE.  It looks without the shard locks (it
 * runs under a dshash partition lock): a list being resized meanwhile
 * gives a wrong guess, never a crash (the keydir's memory stays mapped).
 */
bool
armdb_compact_keydir_has_work(ArmdbRelKeydir *kd, void *arg)
{
	double		threshold = *(double *) arg;
	uint64		floor = PG_UINT64_MAX;

	/*
	 * A rotated key: the worker has files to re-encrypt, or looks once.
	 * (With one key, an earlier build's files -- under_old_key() -- wait
	 * for the table's next round, which merges them whole.)
	 */
	if (kd->encrypted && armdb_keyring.nkeys > 1 && !kd->old_keys_merged)
		return true;

	for (int pass = 0; pass < 2; pass++)
		for (uint32 shard = 0; shard < kd->nshards; shard++)
		{
			ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
			ArmdbFileStat *fs;
			uint32		n = rt->nfiles;

			if (!DsaPointerIsValid(rt->files) || n == 0)
				continue;
			fs = dsa_get_address(armdb_keydir_area(), rt->files);
			n = Min(n, rt->files_cap);
			for (uint32 i = 0; i < n; i++)
			{
				uint64		dead;

				if (pass == 0)
				{
					/* the floor of mergeable_dead_bytes() */
					if (fs[i].dead_version_bytes > 0)
						floor = Min(floor, fs[i].min_gsn);
					continue;
				}
				if (fs[i].flags & ARMDB_FSTAT_NEEDS_HINT)
					return true;
				dead = mergeable_dead_bytes(&fs[i], floor);
				if (dead == 0 || (fs[i].flags & ARMDB_FSTAT_DAMAGED))
					continue;
				/* not sized yet (rotated since the last merge): have a look */
				if (fs[i].total_bytes == 0 ||
					(double) dead / (double) fs[i].total_bytes > threshold)
					return true;
			}
		}
	return false;
}
