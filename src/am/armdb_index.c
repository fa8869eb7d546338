/*-------------------------------------------------------------------------
 *
 * armdb_index.c
 *	  Index support of armdb tables: fetching a version for an index scan,
 *	  building an index, and the index-deletion callback.
 *
 * Versions are never updated in place yet, so every index entry points at a
 * version that is its own chain root: an index fetch looks up one slot, and
 * the build scan indexes each version under its own TID.  The visibility
 * decisions are heap's (heapam_index_build_range_scan,
 * heap_hot_search_buffer), made on the version record under its virtual
 * page's lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "am/armdb_am.h"
#include "keydir/visibility.h"

typedef struct ArmdbIndexFetchData
{
	IndexFetchTableData base;
	ArmdbRelKeydir *kd;
	MemoryContext mcxt;
	char	   *buf;			/* the last tuple fetched */
	Size		buf_size;
	HeapTupleData tuple;
} ArmdbIndexFetchData;

IndexFetchTableData *
armdb_index_fetch_begin(Relation rel)
{
	ArmdbIndexFetchData *fetch = palloc0(sizeof(ArmdbIndexFetchData));

	fetch->base.rel = rel;
	fetch->kd = armdb_rel_keydir(rel);
	fetch->mcxt = CurrentMemoryContext;
	return &fetch->base;
}

void
armdb_index_fetch_reset(IndexFetchTableData *scan)
{
}

void
armdb_index_fetch_end(IndexFetchTableData *scan)
{
	ArmdbIndexFetchData *fetch = (ArmdbIndexFetchData *) scan;

	if (fetch->buf)
		pfree(fetch->buf);
	pfree(fetch);
}

/*
 * heap_hot_search_buffer for chains of one version: return it if the
 * snapshot sees it; *all_dead only when it is dead to every snapshot, since
 * the index AM then kills the entry.
 */
bool
armdb_index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid,
						Snapshot snapshot, TupleTableSlot *slot,
						bool *call_again, bool *all_dead)
{
	ArmdbIndexFetchData *fetch = (ArmdbIndexFetchData *) scan;
	Relation	rel = scan->rel;
	ArmdbVersion v;
	uint64		slotno;
	bool		visible;

	*call_again = false;
	if (all_dead)
		*all_dead = false;
	if (!armdb_slot_of_tid(fetch->kd, tid, &slotno))
		return false;

	visible = armdb_version_lookup_ssi(rel, fetch->kd, slotno, snapshot, &v);
	if (!visible)
	{
		if (all_dead && v.file_id != 0 &&
			armdb_version_surely_dead(fetch->kd, slotno,
									  GlobalVisTestFor(rel)))
			*all_dead = true;
		return false;
	}

	armdb_read_version_tuple(rel, fetch->kd, slotno, &v,
							 armdb_reserve_buffer(&fetch->buf, &fetch->buf_size,
												  v.len, fetch->mcxt),
							 &fetch->tuple);
	ExecStoreHeapTuple(&fetch->tuple, slot, false);
	pgstat_count_heap_fetch(rel);
	return true;
}

/*
 * Index deletion (heap_index_delete_tuples): btree asks which of the TIDs
 * it proposes may go.  Entries it already knows dead (LP_DEAD) are trusted,
 * as heap trusts them; every other one goes when its version is dead to
 * every snapshot, or gone.  A slot is reused only after VACUUM removed
 * every index entry pointing at it (design §2), so an empty slot's entry
 * may go, and an entry never comes to point at another row.  Returns the
 * newest xid whose changes the deletions depend on
 * (HeapTupleHeaderAdvanceLatestRemovedXid), for hot-standby conflicts.
 */
TransactionId
armdb_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	TransactionId latest_removed = InvalidTransactionId;

	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *ideltid = &delstate->deltids[i];
		TM_IndexStatus *istatus = delstate->status + ideltid->id;
		uint64		slot;
		ArmdbPage  *page;
		ArmdbVersion *v;
		bool		dead;
		TransactionId xmax = InvalidTransactionId;
		bool		xmin_committed;

		if (!armdb_slot_of_tid(kd, &ideltid->tid, &slot) ||
			(page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE)) == NULL)
		{
			istatus->knowndeletable = true;
			continue;
		}
		LWLockAcquire(&page->lock, LW_SHARED);
		v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
		dead = v->file_id == 0 || istatus->knowndeletable ||
			armdb_version_is_surely_dead(v, vistest);
		if (dead && v->file_id != 0)
		{
			xmax = armdb_version_get_update_xid(v);
			xmin_committed = armdb_version_xmin_committed(v) ||
				(!armdb_version_xmin_invalid(v) && TransactionIdDidCommit(v->xmin));
			if (!xmin_committed || TransactionIdEquals(xmax, v->xmin))
				xmax = InvalidTransactionId;
		}
		LWLockRelease(&page->lock);

		if (!dead)
			continue;
		istatus->knowndeletable = true;
		if (TransactionIdIsValid(xmax) &&
			(!TransactionIdIsValid(latest_removed) ||
			 TransactionIdFollows(xmax, latest_removed)))
			latest_removed = xmax;
	}
	return latest_removed;
}

/*
 * heapam_index_build_range_scan() for armdb: a sequential scan with
 * SnapshotAny (or an MVCC snapshot for concurrent builds), deciding for
 * each version like heap does with HeapTupleSatisfiesVacuum.
 */
double
armdb_index_build_range_scan(Relation heapRelation, Relation indexRelation,
							 struct IndexInfo *indexInfo, bool allow_sync,
							 bool anyvisible, bool progress,
							 BlockNumber start_blockno, BlockNumber numblocks,
							 IndexBuildCallback callback, void *callback_state,
							 TableScanDesc scan)
{
	bool		is_system_catalog = IsSystemRelation(heapRelation);
	bool		checking_uniqueness;
	ArmdbRelKeydir *kd = armdb_rel_keydir(heapRelation);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	double		reltuples = 0;
	ExprState  *predicate;
	TupleTableSlot *slot;
	EState	   *estate;
	ExprContext *econtext;
	Snapshot	snapshot;
	bool		need_unregister_snapshot = false;
	TransactionId OldestXmin;

	/*
	 * A block range (BRIN summarizing new ranges) is read virtual page by
	 * virtual page, its slots in TID order; a whole-table build scans the
	 * files.
	 */
	bool		ranged = start_blockno != 0 || numblocks != InvalidBlockNumber;
	uint64		range_slot = (uint64) start_blockno * ARMDB_SLOTS_PER_PAGE;
	uint64		range_end;
	char	   *range_buf = NULL;
	Size		range_buf_size = 0;
	HeapTupleData range_tuple;

	checking_uniqueness = (indexInfo->ii_Unique ||
						   indexInfo->ii_ExclusionOps != NULL);
	Assert(!(anyvisible && checking_uniqueness));

	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	slot = table_slot_create(heapRelation, NULL);
	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(indexInfo->ii_Predicate, estate);

	OldestXmin = InvalidTransactionId;
	if (!IsBootstrapProcessingMode() && !indexInfo->ii_Concurrent)
		OldestXmin = GetOldestNonRemovableTransactionId(heapRelation);

	range_end = numblocks == InvalidBlockNumber ?
		pg_atomic_read_u64(&kd->npages) * ARMDB_SLOTS_PER_PAGE :
		Min(pg_atomic_read_u64(&kd->npages),
			(uint64) start_blockno + numblocks) * ARMDB_SLOTS_PER_PAGE;

	if (!scan)
	{
		if (!TransactionIdIsValid(OldestXmin))
		{
			snapshot = RegisterSnapshot(GetTransactionSnapshot());
			need_unregister_snapshot = true;
		}
		else
			snapshot = SnapshotAny;
		if (!ranged)
			scan = table_beginscan_strat(heapRelation, snapshot, 0, NULL, true,
										 allow_sync);
	}
	else
		snapshot = scan->rs_snapshot;

	for (;;)
	{
		bool		tupleIsAlive;
		uint64		slotno;

		CHECK_FOR_INTERRUPTS();
		if (ranged)
		{
			ArmdbVersion v;
			bool		found = false;

			while (!found && range_slot < range_end)
			{
				slotno = range_slot++;
				if (!armdb_version_lookup(kd, slotno, snapshot, &v))
					continue;
				armdb_read_version_tuple(heapRelation, kd, slotno, &v,
										 armdb_reserve_buffer(&range_buf,
															  &range_buf_size,
															  v.len,
															  CurrentMemoryContext),
										 &range_tuple);
				ExecStoreHeapTuple(&range_tuple, slot, false);
				found = true;
			}
			if (!found)
				break;
		}
		else if (!table_scan_getnextslot(scan, ForwardScanDirection, slot))
			break;
		slotno = armdb_tid_to_slot(&slot->tts_tid);

		if (snapshot == SnapshotAny)
		{
			bool		indexIt;
			TransactionId xwait;
			HTSV_Result res;

	recheck:
			res = armdb_version_htsv(kd, slotno, OldestXmin, &xwait);
			switch (res)
			{
				case HEAPTUPLE_DEAD:
					indexIt = false;
					tupleIsAlive = false;
					break;
				case HEAPTUPLE_LIVE:
					indexIt = true;
					tupleIsAlive = true;
					reltuples += 1;
					break;
				case HEAPTUPLE_RECENTLY_DEAD:
					/* no HOT chains yet: index it, like a non-HOT tuple */
					indexIt = true;
					tupleIsAlive = false;
					break;
				case HEAPTUPLE_INSERT_IN_PROGRESS:
					if (anyvisible)
					{
						indexIt = true;
						tupleIsAlive = true;
						reltuples += 1;
						break;
					}
					if (!TransactionIdIsCurrentTransactionId(xwait))
					{
						if (!is_system_catalog)
							elog(WARNING, "concurrent insert in progress within table \"%s\"",
								 RelationGetRelationName(heapRelation));
						if (checking_uniqueness)
						{
							XactLockTableWait(xwait, heapRelation,
											  &slot->tts_tid,
											  XLTW_InsertIndexUnique);
							CHECK_FOR_INTERRUPTS();
							goto recheck;
						}
					}
					else
						reltuples += 1;
					indexIt = true;
					tupleIsAlive = true;
					break;
				case HEAPTUPLE_DELETE_IN_PROGRESS:
					if (anyvisible)
					{
						indexIt = true;
						tupleIsAlive = false;
						reltuples += 1;
						break;
					}
					if (!TransactionIdIsCurrentTransactionId(xwait))
					{
						if (!is_system_catalog)
							elog(WARNING, "concurrent delete in progress within table \"%s\"",
								 RelationGetRelationName(heapRelation));
						if (checking_uniqueness)
						{
							XactLockTableWait(xwait, heapRelation,
											  &slot->tts_tid,
											  XLTW_InsertIndexUnique);
							CHECK_FOR_INTERRUPTS();
							goto recheck;
						}
						reltuples += 1;
					}
					indexIt = true;
					tupleIsAlive = false;
					break;
				default:
					elog(ERROR, "unexpected HeapTupleSatisfiesVacuum result");
					indexIt = tupleIsAlive = false; /* keep compiler quiet */
					break;
			}
			if (!indexIt)
				continue;
		}
		else
		{
			/* an MVCC snapshot: the scan returned only what it sees */
			tupleIsAlive = true;
			reltuples += 1;
		}

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(indexInfo, slot, estate, values, isnull);
		callback(indexRelation, &slot->tts_tid, values, isnull, tupleIsAlive,
				 callback_state);
	}

	if (scan != NULL)
		table_endscan(scan);
	if (need_unregister_snapshot)
		UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	if (range_buf)
		pfree(range_buf);
	FreeExecutorState(estate);
	indexInfo->ii_ExpressionsState = NIL;
	indexInfo->ii_PredicateState = NULL;
	return reltuples;
}

/*
 * CREATE INDEX CONCURRENTLY's validation pass (heapam_index_validate_scan):
 * every version visible to snapshot whose TID the index lacks is inserted.
 * state->tuplesort holds the index's TIDs in order; the versions are
 * visited in TID order too -- virtual page by virtual page, not file by
 * file -- so that the two lists merge.
 */
void
armdb_index_validate_scan(Relation heapRelation, Relation indexRelation,
						  struct IndexInfo *indexInfo, Snapshot snapshot,
						  struct ValidateIndexState *state)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(heapRelation);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	ExprState  *predicate;
	TupleTableSlot *slot;
	EState	   *estate;
	ExprContext *econtext;
	ItemPointerData decoded;
	ItemPointer indexcursor = NULL;
	bool		tuplesort_empty = false;
	char	   *buf = NULL;
	Size		buf_size = 0;
	HeapTupleData tuple;

	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(heapRelation),
									&TTSOpsHeapTuple);
	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(indexInfo->ii_Predicate, estate);

	for (uint64 p = 0; p < npages; p++)
	{
		for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
		{
			uint64		slotno = p * ARMDB_SLOTS_PER_PAGE + i;
			ItemPointerData tid;
			ArmdbVersion v;

			CHECK_FOR_INTERRUPTS();
			if (!armdb_version_lookup(kd, slotno, snapshot, &v))
				continue;
			state->htups += 1;
			armdb_slot_to_tid(slotno, &tid);

			/* skip the index's TIDs up to this one */
			while (!tuplesort_empty &&
				   (indexcursor == NULL ||
					ItemPointerCompare(indexcursor, &tid) < 0))
			{
				Datum		ts_val;
				bool		ts_isnull;

				tuplesort_empty = !tuplesort_getdatum(state->tuplesort, true,
													  &ts_val, &ts_isnull, NULL);
				Assert(tuplesort_empty || !ts_isnull);
				if (!tuplesort_empty)
				{
					itemptr_decode(&decoded, DatumGetInt64(ts_val));
					indexcursor = &decoded;
				}
				else
					indexcursor = NULL;
			}
			if (!tuplesort_empty && ItemPointerCompare(indexcursor, &tid) == 0)
				continue;		/* already in the index */

			MemoryContextReset(econtext->ecxt_per_tuple_memory);
			armdb_read_version_tuple(heapRelation, kd, slotno, &v,
									 armdb_reserve_buffer(&buf, &buf_size, v.len,
														  CurrentMemoryContext),
									 &tuple);
			ExecStoreHeapTuple(&tuple, slot, false);
			if (predicate != NULL && !ExecQual(predicate, econtext))
				continue;
			FormIndexDatum(indexInfo, slot, estate, values, isnull);
			index_insert(indexRelation, values, isnull, &tid, heapRelation,
						 indexInfo->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, indexInfo);
			state->tups_inserted += 1;
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	if (buf)
		pfree(buf);
	indexInfo->ii_ExpressionsState = NIL;
	indexInfo->ii_PredicateState = NULL;
}
