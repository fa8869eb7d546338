/*-------------------------------------------------------------------------
 *
 * armdb_vacuum.c
 *	  VACUUM of armdb tables: dead versions, their index entries and slots,
 *	  and freezing.
 *
 * heap's vacuumlazy.c, on the keydir: the version records in shared memory
 * play the part of the heap pages, and freezing also has the version store
 * write the fates of old transactions into the hint files
 * (armdb_vstore_freeze()), so that relfrozenxid can move up without
 * recovery needing clog for them (design §4).  VACUUM FULL and
 * CLUSTER rewrite the table instead (armdb_relation_copy_for_cluster,
 * armdb_ddl.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/transam.h"
#include "access/visibilitymap.h"
#include "access/multixact.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"

#include "am/armdb_am.h"
#include "am/armdb_vm.h"
#include "armdb.h"
#include "keydir/files.h"
#include "keydir/visibility.h"
#include "wal/armdb_wal.h"

/*
 * VACUUM (lazy vacuum's three passes, on the keydir):
 *	 1. find the versions dead to every snapshot;
 *	 2. bulk-delete their entries from every index (and run every index's
 *		cleanup, which also flushes GIN's pending list);
 *	 3. free their slots for reuse -- no index entry points at them any more
 *		(design §2) -- and count their entries' bytes as dead, for
 *		compaction.
 *	 4. the visibility map: the bit of every virtual page whose versions are
 *		all visible to every snapshot, for index-only scans (armdb_vm.c);
 *	 5. freeze: versions older than every snapshot get heap's frozen bits,
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

static void
add_dead(DeadSlots *dead, uint64 slot)
{
	if (dead->n == dead->cap)
	{
		dead->cap = Max(1024, dead->cap * 2);
		dead->tids = dead->tids == NULL ?
			palloc_extended(sizeof(ItemPointerData) * dead->cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(dead->tids, sizeof(ItemPointerData) * dead->cap);
	}
	armdb_slot_to_tid(slot, &dead->tids[dead->n++]);
}

static bool
dead_slot_callback(ItemPointer itemptr, void *state)
{
	DeadSlots  *dead = state;

	return bsearch(itemptr, dead->tids, dead->n, sizeof(ItemPointerData),
				   (int (*) (const void *, const void *)) ItemPointerCompare) != NULL;
}

/*
 * A MultiXact xmax whose members have all ended is replaced by what
 * remains of it (heap's FreezeMultiXactId, simplified): its committed
 * updater, or nothing.  One still running lowers *min_multi, the
 * relminmxid this VACUUM may report, and *min_xid to its oldest member:
 * members that ended stay in it (a prepared transaction's, kept through a
 * restart by its lock entries, may be old), and the commit log must still
 * answer for them.  Caller holds the page lock exclusively.
 */
static void
freeze_multi(ArmdbVersion *v, MultiXactId *min_multi, TransactionId *min_xid)
{
	TransactionId updater = InvalidTransactionId;

	/* a MultiXact known to be over must not outlive relminmxid either */
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		MultiXactIdIsRunning(v->xmax, HEAP_XMAX_IS_LOCKED_ONLY(v->infomask)))
	{
		MultiXactMember *members;
		int			nmembers;

		if (MultiXactIdPrecedes(v->xmax, *min_multi))
			*min_multi = v->xmax;
		nmembers = GetMultiXactIdMembers(v->xmax, &members, false,
										 HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));
		for (int i = 0; i < nmembers; i++)
			if (TransactionIdIsNormal(members[i].xid) &&
				(!TransactionIdIsValid(*min_xid) ||
				 TransactionIdPrecedes(members[i].xid, *min_xid)))
				*min_xid = members[i].xid;
		if (nmembers > 0)
			pfree(members);
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

/*
 * The newest transaction that ended a dead version, for the recovery
 * conflict of its removal on hot standbys (heap's
 * HeapTupleHeaderAdvanceLatestRemovedXid): none if its insert aborted.
 */
static void
advance_latest_removed(ArmdbVersion *v, TransactionId *latest)
{
	TransactionId xmax;

	if (!(v->infomask & HEAP_XMIN_COMMITTED) &&
		((v->infomask & HEAP_XMIN_INVALID) || !TransactionIdDidCommit(v->xmin)))
		return;
	if (v->infomask & HEAP_XMAX_INVALID)
		return;
	xmax = (v->infomask & HEAP_XMAX_IS_MULTI) ?
		armdb_version_get_multi_update_xid(v) : v->xmax;
	if (TransactionIdIsNormal(xmax) && xmax != v->xmin &&
		TransactionIdFollows(xmax, *latest))
		*latest = xmax;
}

/*
 * Set the visibility map bit of every virtual page that is all-visible now
 * (dead versions gone, their slots freed); the number of pages whose bit
 * is set, for relallvisible.
 */
static BlockNumber
set_all_visible(Relation rel, ArmdbRelKeydir *kd, TransactionId oldest_xmin)
{
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	Buffer		vmbuf = InvalidBuffer;
	BlockNumber nvisible = 0;

	armdb_vm_will_set(kd);

	for (uint64 p = 0; p < npages && p <= MaxBlockNumber; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);
		TransactionId cutoff;

		vacuum_delay_point();
		if (page == NULL)
			continue;
		/* reading or extending the map may wait: not under the page lock */
		visibilitymap_pin(rel, (BlockNumber) p, &vmbuf);
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		if (armdb_vm_page_all_visible(kd, page, p, oldest_xmin,
									  rel->rd_rel->relfrozenxid, &cutoff))
		{
			(void) armdb_vm_set(rel, page, p, cutoff, vmbuf);
			nvisible++;
		}
		LWLockRelease(&page->lock);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	return nvisible;
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
	TransactionId multi_min_xid = InvalidTransactionId;
	MultiXactId new_min_multi = GetOldestMultiXactId();
	TransactionId latest_removed = InvalidTransactionId;
	BlockNumber relallvisible;
	uint64		nremoved = 0;

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
			{
				/*
				 * A slot the load found empty may still have index
				 * entries: remove them too.  What ended its version ended
				 * before the load; a hot standby may still hold the version.
				 */
				if (v->infomask2 & ARMDB_V2_ORPHAN)
				{
					add_dead(&dead, p * ARMDB_SLOTS_PER_PAGE + i);
					if (TransactionIdIsNormal(kd->orphan_horizon) &&
						(!TransactionIdIsValid(latest_removed) ||
						 TransactionIdFollows(kd->orphan_horizon, latest_removed)))
						latest_removed = kd->orphan_horizon;
				}
				continue;
			}
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
						freeze_multi(v, &new_min_multi, &multi_min_xid);
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
					add_dead(&dead, p * ARMDB_SLOTS_PER_PAGE + i);
					advance_latest_removed(v, &latest_removed);
					break;
			}
		}
		LWLockRelease(&page->lock);
	}

	/*
	 * Hot standbys drop them too, once the snapshots that could see them
	 * are gone (a recovery conflict): before their index entries go, as
	 * heap's prune record comes before its index vacuum.
	 */
	if (dead.n > 0 && RelationNeedsWAL(rel) && XLogStandbyInfoActive())
	{
		uint64	   *slots = palloc_extended(sizeof(uint64) * dead.n, MCXT_ALLOC_HUGE);

		for (int64 i = 0; i < dead.n; i++)
			slots[i] = armdb_tid_to_slot(&dead.tids[i]);
		armdb_wal_log_prune(&rel->rd_node, latest_removed, slots, dead.n);
		pfree(slots);
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
		if (v->file_id != 0)
		{
			pg_atomic_fetch_add_u64(&rt->dead_bytes, v->len);
			armdb_files_add_dead(rt, v->file_id, v->len);
			nremoved++;
		}
		memset(v, 0, sizeof(*v));
		v->infomask2 = ARMDB_V2_FREED;	/* its index entries are gone */
		LWLockRelease(&page->lock);
		(void) armdb_keydir_free_slot(rt, slot);
		LWLockRelease(&rt->lock);
	}
	if (dead.n > 0)
	{
		pg_atomic_fetch_sub_u64(&kd->nversions,
								Min(nremoved, pg_atomic_read_u64(&kd->nversions)));
		pfree(dead.tids);
	}

	/* 4. the visibility map */
	relallvisible = set_all_visible(rel, kd, oldest_xmin);

	/*
	 * 5. relfrozenxid, as far as the files allow.  An aggressive vacuum
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
		if (TransactionIdIsValid(new_frozen_xid) &&
			TransactionIdIsValid(multi_min_xid) &&
			TransactionIdPrecedes(multi_min_xid, new_frozen_xid))
			new_frozen_xid = multi_min_xid;
	}

	/* a standby records the same fates before relfrozenxid moves there */
	if (TransactionIdIsValid(new_frozen_xid) && RelationNeedsWAL(rel) &&
		TransactionIdPrecedes(rel->rd_rel->relfrozenxid, new_frozen_xid))
		armdb_wal_log_freeze(&rel->rd_node, new_frozen_xid);

	vac_update_relstats(rel, (BlockNumber) Min(npages, MaxBlockNumber), live,
						relallvisible, nindexes > 0, new_frozen_xid,
						new_min_multi, &frozenxid_updated,
						&minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) live, (PgStat_Counter) recently_dead);
	ereport(params->log_min_duration >= 0 ? LOG : DEBUG2,
			(errmsg("armdb: vacuumed \"%s\": %llu dead versions removed, %llu slots emptied before a restart freed, %.0f live, %.0f recently dead",
					RelationGetRelationName(rel), (unsigned long long) nremoved,
					(unsigned long long) (dead.n - nremoved), live,
					recently_dead)));
}
