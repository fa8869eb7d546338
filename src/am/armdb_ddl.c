/*-------------------------------------------------------------------------
 *
 * armdb_ddl.c
 *	  The storage lifecycle of armdb relations, their sizes, and VACUUM.
 *
 * Storage is created the way heap creates it -- RelationCreateStorage()
 * makes the (empty, never used) main fork and registers its pending delete
 * -- plus armdb's own directory.  PostgreSQL's pending-delete machinery
 * then decides when the relation's storage dies, and armdb_xact.c removes
 * the directory at that moment.
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
#include "access/xact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_guc.h"
#include "keydir/relstorage.h"
#include "keydir/visibility.h"

static bool temp_cleanup_registered = false;

/* At backend exit: this backend's temporary armdb tables go away. */
static void
temp_cleanup(int code, Datum arg)
{
	armdb_keydir_drop_backend_temp();
	armdb_rel_storage_remove_backend_temp();
}

void
armdb_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								char persistence, TransactionId *freezeXid,
								MultiXactId *minmulti)
{
	SMgrRelation srel;
	RelFileNodeBackend rnode;

	/* as heap: nothing in the new storage is older than this */
	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();

	srel = RelationCreateStorage(*newrnode, persistence, true);

	/*
	 * An unlogged relation gets an init fork, as heap's: PostgreSQL then
	 * treats it as unlogged everywhere (and our start-up sweep empties its
	 * armdb storage after a crash, see relstorage.c).
	 */
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		Assert(rel->rd_rel->relkind == RELKIND_RELATION ||
			   rel->rd_rel->relkind == RELKIND_MATVIEW ||
			   rel->rd_rel->relkind == RELKIND_TOASTVALUE);
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(srel, INIT_FORKNUM);
	}
	smgrclose(srel);

	rnode.node = *newrnode;
	rnode.backend = persistence == RELPERSISTENCE_TEMP ?
		BackendIdForTempRelations() : InvalidBackendId;

	/* relfilenodes are reused: forget whatever had this one before */
	armdb_keydir_drop(rnode);
	armdb_rel_storage_create(rnode, (uint32) armdb_shards, persistence);
	if (persistence == RELPERSISTENCE_TEMP)
		armdb_xact_note_temp_storage(rnode);

	if (persistence == RELPERSISTENCE_TEMP && !temp_cleanup_registered)
	{
		/* after the keydir area's own detach callback: runs before it */
		(void) armdb_keydir_area();
		on_shmem_exit(temp_cleanup, (Datum) 0);
		temp_cleanup_registered = true;
	}
}

/*
 * TRUNCATE of a relation created (or last truncated) in this transaction,
 * or of a temporary one: empty the storage in place.
 */
void
armdb_relation_nontransactional_truncate(Relation rel)
{
	RelFileNodeBackend rnode = armdb_rel_rnode(rel);
	char		persistence;
	uint32		nshards = armdb_rel_storage_read_meta(rnode, &persistence);

	armdb_keydir_drop(rnode);
	armdb_rel_storage_create(rnode, nshards, persistence);
}

/*
 * New storage with the same contents (ALTER TABLE ... SET TABLESPACE): copy
 * the files once everything buffered is durable; the copy's keydir is
 * loaded from them on first use.
 */
void
armdb_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	RelFileNodeBackend from = armdb_rel_rnode(rel);
	RelFileNodeBackend to;
	SMgrRelation dstrel;
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);

	to.node = *newrnode;
	to.backend = rel->rd_backend;
	armdb_vstore_flush_all_shards(kd, armdb_store_settings());
	if (to.backend != InvalidBackendId)
		armdb_xact_note_temp_storage(to);

	dstrel = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
	{
		smgrcreate(dstrel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(dstrel, INIT_FORKNUM);
	}
	smgrclose(dstrel);
	armdb_keydir_drop(to);
	armdb_rel_storage_copy(from, to, kd->nshards,
						   rel->rd_rel->relpersistence);
	RelationDropStorage(rel);
}

/*
 * VACUUM FULL and CLUSTER (heapam_relation_copy_for_cluster): copy every
 * version not dead to everyone -- in the order of OldIndex if given -- into
 * the new storage, keeping what snapshots need to see it as before.
 * armdb does not freeze yet, so the cutoffs stay the table's own.
 */
void
armdb_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								Relation OldIndex, bool use_sort,
								TransactionId OldestXmin,
								TransactionId *xid_cutoff,
								MultiXactId *multi_cutoff,
								double *num_tuples, double *tups_vacuumed,
								double *tups_recently_dead)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(OldTable);
	TupleTableSlot *slot = table_slot_create(OldTable, NULL);
	IndexScanDesc index_scan = NULL;
	TableScanDesc table_scan = NULL;

	*xid_cutoff = OldTable->rd_rel->relfrozenxid;
	*multi_cutoff = OldTable->rd_rel->relminmxid;
	*num_tuples = *tups_vacuumed = *tups_recently_dead = 0;

	if (OldIndex != NULL)
	{
		index_scan = index_beginscan(OldTable, OldIndex, SnapshotAny, 0, 0);
		index_rescan(index_scan, NULL, 0, NULL, 0);
	}
	else
		table_scan = table_beginscan(OldTable, SnapshotAny, 0, NULL);

	for (;;)
	{
		uint64		slotno;
		ArmdbVersion v;
		TransactionId xwait;
		bool		keep;

		CHECK_FOR_INTERRUPTS();
		if (index_scan != NULL ?
			!index_getnext_slot(index_scan, ForwardScanDirection, slot) :
			!table_scan_getnextslot(table_scan, ForwardScanDirection, slot))
			break;

		slotno = armdb_tid_to_slot(&slot->tts_tid);
		switch (armdb_version_htsv(kd, slotno, OldestXmin, &xwait))
		{
			case HEAPTUPLE_DEAD:
				*tups_vacuumed += 1;
				keep = false;
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
				*tups_recently_dead += 1;
				keep = true;
				break;
			case HEAPTUPLE_LIVE:
				keep = true;
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
				if (!TransactionIdIsCurrentTransactionId(xwait))
					elog(WARNING, "concurrent insert in progress within table \"%s\"",
						 RelationGetRelationName(OldTable));
				keep = true;
				break;
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				if (!TransactionIdIsCurrentTransactionId(xwait))
					elog(WARNING, "concurrent delete in progress within table \"%s\"",
						 RelationGetRelationName(OldTable));
				*tups_recently_dead += 1;
				keep = true;
				break;
			default:
				elog(ERROR, "unexpected HeapTupleSatisfiesVacuum result");
				keep = false;	/* keep compiler quiet */
				break;
		}
		if (!keep)
			continue;

		(void) armdb_version_lookup(kd, slotno, SnapshotAny, &v);
		*num_tuples += 1;
		armdb_copy_version(NewTable, slot, &v);
	}

	if (index_scan != NULL)
		index_endscan(index_scan);
	if (table_scan != NULL)
		table_endscan(table_scan);
	ExecDropSingleTupleTableSlot(slot);
}

uint64
armdb_relation_size(Relation rel, ForkNumber forkNumber)
{
	ArmdbRelKeydir *kd;
	uint64		npages;

	if (forkNumber != MAIN_FORKNUM && forkNumber != InvalidForkNumber)
		return 0;
	kd = armdb_rel_keydir(rel);
	npages = pg_atomic_read_u64(&kd->npages);

	/* ANALYZE asks this just before it decides whether to prefetch */
	armdb_analyze_avoid_prefetch(rel, npages);
	return npages * BLCKSZ;
}

void
armdb_relation_estimate_size(Relation rel, int32 *attr_widths,
							 BlockNumber *pages, double *tuples,
							 double *allvisfrac)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	uint64		nversions = pg_atomic_read_u64(&kd->nversions);

	/*
	 * Virtual pages are the planner's pages.  The keydir knows how many
	 * versions there are without reading anything; ANALYZE's reltuples is
	 * better once it exists, since it leaves out dead versions.
	 */
	*pages = (BlockNumber) Min(npages, MaxBlockNumber);
	if (rel->rd_rel->reltuples >= 0 && rel->rd_rel->relpages > 0)
		*tuples = rel->rd_rel->reltuples / rel->rd_rel->relpages * npages;
	else
		*tuples = (double) nversions;
	*allvisfrac = 0;
}

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

		new_frozen_xid = armdb_vstore_freeze(kd, oldest_xmin, aggressive,
											 armdb_store_settings());
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
