/*-------------------------------------------------------------------------
 *
 * armdb_index.c
 *	  Index support of armdb tables: fetching a version for an index scan,
 *	  building an index, and the index-deletion callback.
 *
 * Index entries name the roots of HOT chains (armdb_hot.c): an index fetch
 * walks the chain from there, the build scan indexes a heap-only version
 * under its root's TID, and index deletion removes an entry only when its
 * whole chain is dead.  The visibility decisions are heap's
 * (heapam_index_build_range_scan, heap_hot_search_buffer), made on the
 * version records under their virtual pages' locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
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
	TransactionId last_xmin;	/* of the version fetched last, where a
								 * walk for the same entry goes on */
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
 * heapam_index_fetch_tuple(): walk the HOT chain of the entry's root to the
 * version the snapshot sees (armdb_hot_search), and set *tid to it.  A
 * snapshot that is not MVCC may see several versions of one chain: the
 * caller then calls again, and the walk goes on after the one returned.
 * *all_dead only when the whole chain is dead to every snapshot, since the
 * index AM then kills the entry.
 */
bool
armdb_index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid,
						Snapshot snapshot, TupleTableSlot *slot,
						bool *call_again, bool *all_dead)
{
	ArmdbIndexFetchData *fetch = (ArmdbIndexFetchData *) scan;
	Relation	rel = scan->rel;
	ArmdbVersion v;
	ArmdbVersionExtra x;
	uint64		slotno;
	uint64		root;
	int			npassed;
	bool		first_call = !*call_again;

	*call_again = false;
	if (all_dead)
		*all_dead = false;
	if (!armdb_slot_of_tid(fetch->kd, tid, &slotno))
		return false;
	root = slotno;

	if (!armdb_hot_search(rel, fetch->kd, &slotno, snapshot, &v, &x, all_dead,
						  all_dead ? GlobalVisTestFor(rel) : NULL,
						  first_call, fetch->last_xmin, &npassed))
		return false;

	armdb_slot_to_tid(slotno, tid);
	fetch->last_xmin = v.xmin;
	armdb_read_version_tuple(rel, fetch->kd, slotno, &v, &x,
							 armdb_reserve_buffer(&fetch->buf, &fetch->buf_size,
												  x.len, fetch->mcxt),
							 &fetch->tuple);
	ExecStoreHeapTuple(&fetch->tuple, slot, false);
	pgstat_count_heap_fetch(rel);
	*call_again = !IsMVCCSnapshot(snapshot);

	/* a walk past a version dead to everybody: prune the chain */
	if (first_call && npassed > 0 && !RecoveryInProgress())
	{
		GlobalVisState *vistest = GlobalVisTestFor(rel);

		if (armdb_hot_prunable(fetch->kd, root, vistest))
			armdb_hot_prune_opt(rel, fetch->kd, root, vistest);
	}
	return true;
}

/*
 * Index deletion (heap_index_delete_tuples): btree asks which of the TIDs
 * it proposes may go.  Entries it already knows dead (LP_DEAD) are trusted,
 * as heap trusts them; every other one goes when every version of its HOT
 * chain is dead to every snapshot, or gone.  A slot is reused only after VACUUM removed
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

		if (!armdb_slot_of_tid(kd, &ideltid->tid, &slot))
		{
			istatus->knowndeletable = true;
			continue;
		}
		/* the entry's whole HOT chain must be dead (heap's rule) */
		if (armdb_hot_chain_dead(kd, slot, vistest, istatus->knowndeletable,
								 &latest_removed))
			istatus->knowndeletable = true;
	}
	return latest_removed;
}

/*
 * The slots of the HOT chain whose root is slot, oldest first, into
 * *chain (grown as needed); none if slot holds a heap-only version or
 * nothing.  A redirect's chain starts at the version it names.
 */
static int
collect_chain(ArmdbRelKeydir *kd, uint64 slot, uint64 **chain, int *cap)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbChainWalk walk = {kd, page, NULL, LW_SHARED};
	TransactionId prior_xmax = InvalidTransactionId;
	int			n = 0;
	bool		at_chain_start = true;

	if (page == NULL)
		return 0;
	LWLockAcquire(&page->lock, LW_SHARED);
	for (;;)
	{
		ArmdbVersion *v = armdb_chain_version(&walk, slot);
		uint64		next;

		if (v == NULL)
			break;
		if (armdb_version_is_redirect(v) && at_chain_start)
		{
			slot = armdb_version_ctid(v, slot);
			prior_xmax = armdb_redirect_xmin(v);
			at_chain_start = false;
			continue;
		}
		if (!armdb_chain_member(v, at_chain_start, prior_xmax))
			break;
		if (n == *cap)
		{
			*cap = Max(16, *cap * 2);
			*chain = *chain == NULL ? palloc(sizeof(uint64) * *cap) :
				repalloc(*chain, sizeof(uint64) * *cap);
		}
		(*chain)[n++] = slot;
		if (!armdb_hot_next(v, slot, &next))
			break;
		prior_xmax = armdb_version_get_update_xid(v);
		slot = next;
		at_chain_start = false;
	}
	armdb_chain_done(&walk);
	LWLockRelease(&page->lock);
	return n;
}

/*
 * The root of the HOT chain of the heap-only version v in slot (a copy, with
 * its values x): its entry's.
 */
static uint64
heap_only_root(ArmdbRelKeydir *kd, uint64 slot, const ArmdbVersion *v,
			   const ArmdbVersionExtra *x)
{
	char	   *buf = palloc(x->len);
	uint64		root;

	armdb_read_version(kd, slot, v, x, buf);
	root = armdb_entry_root_slot(buf, slot);
	pfree(buf);
	return root;
}

/*
 * heapam_index_build_range_scan() for armdb: a sequential scan with
 * SnapshotAny (or an MVCC snapshot for concurrent builds), deciding for
 * each version like heap does with HeapTupleSatisfiesVacuum.  A heap-only
 * version is indexed under its chain root's TID; a recently dead one that
 * was HOT-updated is not indexed at all, and the index is then unsafe for
 * older snapshots (ii_BrokenHotChain: indcheckxmin), as on heap.
 *
 * A block range (BRIN summarizing new ranges) is read virtual page by
 * virtual page, each chain from its root, so that TIDs come in order; so
 * is a whole BRIN build, whose callback needs them in order too (it closes
 * a range when a TID passes it).  Other builds scan the files, in the
 * order the rows were written.
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

	bool		ranged = start_blockno != 0 || numblocks != InvalidBlockNumber ||
		(scan == NULL && indexRelation->rd_rel->relam == BRIN_AM_OID);
	uint64		range_slot = (uint64) start_blockno * ARMDB_SLOTS_PER_PAGE;
	uint64		range_end;
	char	   *range_buf = NULL;
	Size		range_buf_size = 0;
	HeapTupleData range_tuple;
	uint64	   *chain = NULL;	/* (ranged) the chain being read */
	int			chain_cap = 0;
	int			chain_n = 0;
	int			chain_pos = 0;
	uint64		chain_root = 0;

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
		uint64		root;
		ArmdbVersion v;
		ArmdbVersionExtra x;
		uint64		next;
		bool		hot_updated;
		ItemPointerData root_tid;

		CHECK_FOR_INTERRUPTS();
		if (ranged)
		{
			bool		found = false;

			while (!found)
			{
				if (chain_pos < chain_n)
				{
					slotno = chain[chain_pos++];
					if (!armdb_version_lookup(kd, slotno, snapshot, &v, &x))
						continue;
					armdb_read_version_tuple(heapRelation, kd, slotno, &v, &x,
											 armdb_reserve_buffer(&range_buf,
																  &range_buf_size,
																  x.len,
																  CurrentMemoryContext),
											 &range_tuple);
					ExecStoreHeapTuple(&range_tuple, slot, false);
					root = chain_root;
					found = true;
					break;
				}
				if (range_slot >= range_end)
					break;
				chain_root = range_slot++;
				chain_n = collect_chain(kd, chain_root, &chain, &chain_cap);
				chain_pos = 0;
			}
			if (!found)
				break;
		}
		else
		{
			if (!table_scan_getnextslot(scan, ForwardScanDirection, slot))
				break;
			slotno = armdb_tid_to_slot(&slot->tts_tid);
			(void) armdb_version_lookup(kd, slotno, SnapshotAny, &v, &x);
			root = (v.infomask2 & HEAP_ONLY_TUPLE) ?
				heap_only_root(kd, slotno, &v, &x) : slotno;
		}
		armdb_slot_to_tid(root, &root_tid);

		if (snapshot == SnapshotAny)
		{
			bool		indexIt;
			TransactionId xwait;
			HTSV_Result res;

	recheck:
			res = armdb_version_htsv(kd, slotno, OldestXmin, &xwait);
			(void) armdb_version_lookup(kd, slotno, SnapshotAny, &v, &x);
			hot_updated = armdb_hot_next_copy(&v, x.ctid, slotno, &next);
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
					/* a newer version of its chain is indexed instead */
					indexIt = !hot_updated;
					if (hot_updated)
						indexInfo->ii_BrokenHotChain = true;
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
						if (checking_uniqueness || hot_updated)
						{
							XactLockTableWait(xwait, heapRelation,
											  &slot->tts_tid,
											  XLTW_InsertIndexUnique);
							CHECK_FOR_INTERRUPTS();
							goto recheck;
						}
						indexIt = true;
						reltuples += 1;
					}
					else if (hot_updated)
					{
						/* our own HOT update: its newer version is indexed */
						indexIt = false;
						indexInfo->ii_BrokenHotChain = true;
					}
					else
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
		callback(indexRelation, &root_tid, values, isnull, tupleIsAlive,
				 callback_state);
	}

	if (chain != NULL)
		pfree(chain);
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
 * every version visible to snapshot whose chain root's TID the index lacks
 * is inserted under that TID.  state->tuplesort holds the index's TIDs in
 * order; the roots are visited in TID order too -- virtual page by virtual
 * page, not file by file -- so that the two lists merge.
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
			uint64		root = p * ARMDB_SLOTS_PER_PAGE + i;
			uint64		slotno = root;
			ItemPointerData tid;
			ArmdbVersion v;
			ArmdbVersionExtra x;

			CHECK_FOR_INTERRUPTS();
			/* from each chain's root, its version the snapshot sees */
			if (!armdb_hot_search(NULL, kd, &slotno, snapshot, &v, &x, NULL, NULL,
								  true, InvalidTransactionId, NULL))
				continue;
			state->htups += 1;
			armdb_slot_to_tid(root, &tid);

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
			armdb_read_version_tuple(heapRelation, kd, slotno, &v, &x,
									 armdb_reserve_buffer(&buf, &buf_size, x.len,
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
