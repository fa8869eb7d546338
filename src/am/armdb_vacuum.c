/*-------------------------------------------------------------------------
 *
 * armdb_vacuum.c
 *	  VACUUM of armdb tables: dead versions, their index entries and slots,
 *	  and freezing.
 *
 * heap's vacuumlazy.c, on the keydir: the version records in shared memory
 * play the part of the heap pages, and freezing also writes the fates of
 * old transactions into the hint files, so that relfrozenxid can move up
 * without recovery needing clog for them (design §4).  VACUUM FULL and
 * CLUSTER rewrite the table instead (armdb_relation_copy_for_cluster,
 * armdb_ddl.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/genam.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/multixact.h"
#include "access/xlog_internal.h"
#include "commands/vacuum.h"
#include "pgstat.h"
#include "storage/procarray.h"

#include "am/armdb_am.h"
#include "compact/compact.h"
#include "keydir/files.h"
#include "armdb.h"
#include "keydir/visibility.h"
#include "storage/hint.h"
#include "storage/recovery.h"

/*
 * VACUUM (lazy vacuum's three passes, on the keydir):
 *	 1. find the versions dead to every snapshot;
 *	 2. bulk-delete their entries from every index (and run every index's
 *		cleanup, which also flushes GIN's pending list);
 *	 3. free their slots for reuse -- no index entry points at them any more
 *		(design §2) -- and count their entries' bytes as dead, for
 *		compaction.
 *	 4. freeze: versions older than every snapshot get heap's frozen bits,
 *		the hint files record the fates of the xids they list, and
 *		relfrozenxid moves up to the oldest xid whose fate is still only in
 *		clog (design §4).
 * Their bytes stay in the data files until compaction rewrites them.
 */
typedef struct DeadSlots
{
	ItemPointerData *tids;		/* in TID order */
	int64		n;
	int64		cap;
} DeadSlots;

static bool
dead_slot_callback(ItemPointer itemptr, void *state)
{
	DeadSlots  *dead = state;

	return bsearch(itemptr, dead->tids, dead->n, sizeof(ItemPointerData),
				   (int (*) (const void *, const void *)) ItemPointerCompare) != NULL;
}

typedef struct FreezeScan
{
	ArmdbEntryInfo *items;
	uint32		n;
	uint32		cap;
	TransactionId oldest;		/* oldest normal xid seen */
} FreezeScan;

static bool
freeze_collect(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	FreezeScan *fs = arg;

	if (fs->n == fs->cap)
	{
		fs->cap = Max(1024, fs->cap * 2);
		fs->items = fs->items == NULL ?
			palloc_extended(sizeof(ArmdbEntryInfo) * fs->cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(fs->items, sizeof(ArmdbEntryInfo) * fs->cap);
	}
	fs->items[fs->n++] = *e;
	return true;
}

static bool
oldest_xid_of(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	FreezeScan *fs = arg;
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

	if (TransactionIdIsNormal(xid) && !armdb_gsn_is_reservation(e->gsn) &&
		(!TransactionIdIsValid(fs->oldest) || TransactionIdPrecedes(xid, fs->oldest)))
		fs->oldest = xid;
	return true;
}

/*
 * Record in the hint files what became of every transaction older than
 * cutoff whose entries they list, and return the oldest xid whose fate the
 * files still leave to clog -- the relfrozenxid recovery allows (design
 * §4).  Closed files get their fates written into their hints; the active
 * file of each shard is scanned for its oldest xid, or, with seal, closed
 * first so that its entries can be frozen too.  Returns
 * InvalidTransactionId when something could not be read (then relfrozenxid
 * stays where it is).
 */
static TransactionId
freeze_files(ArmdbRelKeydir *kd, TransactionId cutoff, bool seal)
{
	TransactionId frozen_to = cutoff;
	XLogRecPtr	upto = GetXLogInsertRecPtr();
	ArmdbFileStat **flist = NULL;
	int			nflist = 0;

	/*
	 * A fate written to disk must not be undone by a crash: make every
	 * commit record so far durable (asynchronous commits included) before
	 * calling any transaction committed.  At the start of a WAL page the
	 * insert position lies past a page header nothing has written yet, and
	 * XLogFlush() would refuse it: flush to the end of the last record.
	 */
	if (upto % XLOG_BLCKSZ <= SizeOfXLogLongPHD)
		upto -= upto % XLOG_BLCKSZ;
	XLogFlush(upto);

	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard);
		ArmdbError	err;
		ArmdbPos	reached;
		uint32		sealed = 0;
		uint32		active;
		bool		ok = true;
		FreezeScan	fs;
		int			fd;
		uint64		size;
		ArmdbScanResult scan;

		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		active = rt->st.active_file_id;
		if (active != 0)
		{
			ok = seal ? armdb_shard_seal(&rt->st, files, &sealed, &err) :
				armdb_shard_write_out(&rt->st, files, &reached, &err);
			active = rt->st.active_file_id;
		}
		LWLockRelease(&rt->lock);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
		if (active == 0)
			continue;

		/*
		 * closed files: the fates into their hints.  Their numbers are not
		 * contiguous once files were merged: the shard's list says which
		 * there are (brought up to date first).
		 */
		if (flist == NULL)
		{
			armdb_compact_sync_files(kd);
			flist = palloc0(sizeof(ArmdbFileStat *) * kd->nshards);
		}
		LWLockAcquire(&rt->lock, LW_SHARED);
		flist[shard] = armdb_files_copy(rt, &nflist);
		LWLockRelease(&rt->lock);
		for (int fi = 0; fi < nflist; fi++)
		{
			uint32		file = flist[shard][fi].file_id;
			char		hint[MAXPGPATH];
			bool		changed = false;
			uint64		data_end = ARMDB_FILE_HEADER_SIZE;
			struct stat st;

			if (file >= active)
				continue;
			armdb_file_path(hint, files->dir, file, ARMDB_FILE_HINT);
			if (stat(hint, &st) != 0 &&
				!armdb_hint_build(files->io, files->dir, file, armdb_direct_io,
								  false, &err))
				return InvalidTransactionId;
			memset(&fs, 0, sizeof(fs));
			fd = armdb_shard_file_fd(files, file, &err);
			if (fd < 0 || !armdb_file_size(fd, files->dir, &size, &err) ||
				!armdb_hint_load(files->io, files->dir, file, size,
								 freeze_collect, &fs, &err))
				return InvalidTransactionId;
			for (uint32 i = 0; i < fs.n; i++)
			{
				ArmdbEntryInfo *e = &fs.items[i];
				TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

				data_end = Max(data_end, (uint64) e->offset + e->len);
				if ((e->gsn & (ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED)) ||
					!TransactionIdIsNormal(xid) || armdb_gsn_is_reservation(e->gsn))
					continue;
				if (TransactionIdPrecedes(xid, cutoff))
				{
					e->gsn |= TransactionIdDidCommit(xid) ?
						ARMDB_GSN_FLAG_FROZEN : ARMDB_GSN_FLAG_ABORTED;
					changed = true;
				}
				else if (TransactionIdPrecedes(xid, frozen_to))
					frozen_to = xid;
			}
			if (changed &&
				!armdb_hint_write(files->dir, file, fs.items, fs.n, data_end, &err))
			{
				ereport(WARNING,
						(errmsg("armdb: %s", err.message),
						 errdetail("relfrozenxid is not advanced.")));
				return InvalidTransactionId;
			}
			if (fs.items)
				pfree(fs.items);
		}

		/* the active file: its oldest xid still needs clog */
		memset(&fs, 0, sizeof(fs));
		fd = armdb_shard_file_fd(files, active, &err);
		if (fd < 0 ||
			!armdb_scan_data_file(files->io, fd, active, false, oldest_xid_of, &fs,
								  &scan, &err))
			return InvalidTransactionId;
		if (TransactionIdIsValid(fs.oldest) &&
			TransactionIdPrecedes(fs.oldest, frozen_to))
			frozen_to = fs.oldest;
	}
	return frozen_to;
}

/*
 * A MultiXact xmax whose members have all ended is replaced by what
 * remains of it (heap's FreezeMultiXactId, simplified: armdb has no old
 * MultiXacts to fear, as none survives a restart): its committed updater,
 * or nothing.  One still running lowers *min_multi, the relminmxid this
 * VACUUM may report.  Caller holds the page lock exclusively.
 */
static void
freeze_multi(ArmdbVersion *v, MultiXactId *min_multi)
{
	TransactionId updater = InvalidTransactionId;

	/* a MultiXact known to be over must not outlive relminmxid either */
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		MultiXactIdIsRunning(v->xmax, HEAP_XMAX_IS_LOCKED_ONLY(v->infomask)))
	{
		if (MultiXactIdPrecedes(v->xmax, *min_multi))
			*min_multi = v->xmax;
		return;
	}
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		updater = armdb_version_get_multi_update_xid(v);
	v->infomask &= ~(HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY);
	v->infomask2 &= ~ARMDB_V2_KEYS_UNKNOWN;
	if (TransactionIdIsValid(updater) && TransactionIdDidCommit(updater))
	{
		v->xmax = updater;
		v->infomask |= HEAP_XMAX_COMMITTED;
	}
	else
	{
		v->xmax = InvalidTransactionId;
		v->infomask |= HEAP_XMAX_INVALID;
		v->infomask2 &= ~HEAP_KEYS_UPDATED;
	}
}

void
armdb_relation_vacuum(Relation rel, struct VacuumParams *params,
					  BufferAccessStrategy bstrategy)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	DeadSlots	dead = {NULL, 0, 0};
	double		live = 0;
	double		recently_dead = 0;
	bool		frozenxid_updated;
	bool		minmulti_updated;
	Relation   *indrels;
	int			nindexes;
	IndexBulkDeleteResult **stats;
	TransactionId new_frozen_xid;
	MultiXactId new_min_multi = GetOldestMultiXactId();

	/* 1. the dead */
	for (uint64 p = 0; p < npages; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);

		vacuum_delay_point();
		if (page == NULL)
			continue;
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
		{
			ArmdbVersion *v = &page->v[i];
			HTSV_Result res;

			if (v->file_id == 0)
				continue;
			res = armdb_version_satisfies_vacuum(v, oldest_xmin);
			switch (res)
			{
				case HEAPTUPLE_LIVE:
				case HEAPTUPLE_INSERT_IN_PROGRESS:
				case HEAPTUPLE_DELETE_IN_PROGRESS:
				case HEAPTUPLE_RECENTLY_DEAD:
					if (res == HEAPTUPLE_RECENTLY_DEAD)
						recently_dead++;
					else
						live++;

					/*
					 * Freeze what is older than every snapshot, as heap does
					 * before relfrozenxid moves: a committed xmin, and an
					 * xmax that only locked or aborted.
					 */
					if (TransactionIdIsNormal(v->xmin) &&
						TransactionIdPrecedes(v->xmin, oldest_xmin) &&
						(v->infomask & HEAP_XMIN_COMMITTED))
						v->infomask |= HEAP_XMIN_FROZEN;
					if (v->infomask & HEAP_XMAX_IS_MULTI)
						freeze_multi(v, &new_min_multi);
					if (TransactionIdIsNormal(v->xmax) &&
						!(v->infomask & HEAP_XMAX_IS_MULTI) &&
						TransactionIdPrecedes(v->xmax, oldest_xmin) &&
						(HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
						 !TransactionIdDidCommit(v->xmax)))
					{
						v->infomask &= ~(HEAP_XMAX_COMMITTED | HEAP_LOCK_MASK |
										 HEAP_XMAX_LOCK_ONLY);
						v->infomask |= HEAP_XMAX_INVALID;
						v->xmax = InvalidTransactionId;
					}
					break;
				case HEAPTUPLE_DEAD:
					if (dead.n == dead.cap)
					{
						dead.cap = Max(1024, dead.cap * 2);
						dead.tids = dead.tids == NULL ?
							palloc_extended(sizeof(ItemPointerData) * dead.cap, MCXT_ALLOC_HUGE) :
							repalloc_huge(dead.tids, sizeof(ItemPointerData) * dead.cap);
					}
					armdb_slot_to_tid(p * ARMDB_SLOTS_PER_PAGE + i, &dead.tids[dead.n++]);
					break;
			}
		}
		LWLockRelease(&page->lock);
	}

	/* 2. their index entries */
	vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indrels);
	stats = palloc0(sizeof(IndexBulkDeleteResult *) * Max(nindexes, 1));
	for (int i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo;

		memset(&ivinfo, 0, sizeof(ivinfo));
		ivinfo.index = indrels[i];
		ivinfo.analyze_only = false;
		ivinfo.report_progress = false;
		ivinfo.estimated_count = true;
		ivinfo.message_level = DEBUG2;
		ivinfo.num_heap_tuples = live;
		ivinfo.strategy = bstrategy;
		if (dead.n > 0)
			stats[i] = index_bulk_delete(&ivinfo, stats[i], dead_slot_callback,
										 &dead);
		stats[i] = index_vacuum_cleanup(&ivinfo, stats[i]);
		if (stats[i] != NULL && !stats[i]->estimated_count)
			vac_update_relstats(indrels[i], stats[i]->num_pages,
								stats[i]->num_index_tuples, 0, false,
								InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
	}
	vac_close_indexes(nindexes, indrels, NoLock);

	/* 3. their slots, for reuse, and their bytes, for compaction */
	for (int64 i = 0; i < dead.n; i++)
	{
		uint64		slot = armdb_tid_to_slot(&dead.tids[i]);
		uint32		shard = armdb_slot_shard(slot, kd->nshards);
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];

		vacuum_delay_point();
		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		pg_atomic_fetch_add_u64(&rt->dead_bytes, v->len);
		armdb_files_add_dead(rt, v->file_id, v->len);
		memset(v, 0, sizeof(*v));
		LWLockRelease(&page->lock);
		(void) armdb_keydir_free_slot(rt, slot);
		LWLockRelease(&rt->lock);
	}
	if (dead.n > 0)
	{
		pg_atomic_fetch_sub_u64(&kd->nversions,
								Min((uint64) dead.n, pg_atomic_read_u64(&kd->nversions)));
		pfree(dead.tids);
	}

	/*
	 * 4. relfrozenxid, as far as the files allow.  An aggressive vacuum
	 * (FREEZE, anti-wraparound, or a table older than
	 * vacuum_freeze_table_age) also closes each shard's active file so
	 * that its entries can be frozen.
	 */
	{
		int			table_age_limit = params->freeze_table_age >= 0 ?
			params->freeze_table_age : vacuum_freeze_table_age;
		int32		age = (int32) (ReadNextTransactionId() -
								   rel->rd_rel->relfrozenxid);
		bool		aggressive = (params->options & VACOPT_FREEZE) ||
			params->is_wraparound || age > table_age_limit;

		new_frozen_xid = freeze_files(kd, oldest_xmin, aggressive);
	}

	vac_update_relstats(rel, (BlockNumber) Min(npages, MaxBlockNumber), live,
						0, nindexes > 0, new_frozen_xid,
						new_min_multi, &frozenxid_updated,
						&minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) live, (PgStat_Counter) recently_dead);
	ereport(params->log_min_duration >= 0 ? LOG : DEBUG2,
			(errmsg("armdb: vacuumed \"%s\": %lld dead versions removed, %.0f live, %.0f recently dead",
					RelationGetRelationName(rel), (long long) dead.n, live,
					recently_dead)));
}
