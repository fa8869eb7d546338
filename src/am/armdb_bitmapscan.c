/*-------------------------------------------------------------------------
 *
 * armdb_bitmapscan.c
 *	  Bitmap heap scans of armdb tables, over virtual pages.
 *
 * A bitmap index scan (btree, GIN, BRIN, bitmap AND/OR) hands the executor
 * TIDs page by page, and a TID names a slot (block = slot / 291, offset =
 * the rest + 1), so a bitmap page is a virtual page of the keydir.  As
 * heapam_scan_bitmap_next_block() does with a buffer, the versions of the
 * page that the bitmap names -- all of the page's, for a lossy page -- are
 * judged against the snapshot at once under the page's lock, and the
 * visible ones are then read, with one I/O where their entries lie side by
 * side in one file.  For serializable transactions every version looked
 * at is checked for a conflict out and every visible one predicate-locked,
 * as heap's bitmap scan takes tuple locks.
 *
 * The executor also prefetches the *main fork's* blocks of the pages its
 * bitmap names (nodeBitmapHeapscan.c's BitmapPrefetch, PrefetchBuffer),
 * whatever the table AM.  armdb's main fork is empty: each prefetch is a
 * shared-buffer lookup and a posix_fadvise for nothing, and a block past
 * the first 1 GB segment fails in md.c ("previous segment is only 0
 * blocks").  An ExecutorStart hook therefore turns the executor's
 * prefetching off for the bitmap heap scans of armdb tables, once the plan
 * is initialized and before it runs (armdb_bitmapscan_executor_start).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/tablespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "nodes/tidbitmap.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"
#include "utils/snapmgr.h"
#include "utils/spccache.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/visibility.h"

static ExecutorStart_hook_type prev_executor_start = NULL;

/*
 * Read the visible versions' entries with one I/O when they lie within
 * this many bytes of one file, or within four times the bytes they take.
 */
#define BITMAP_SPAN_SMALL	(64 * 1024)

/* Is this plan node a bitmap heap scan of an armdb table? */
static bool
is_armdb_bitmap_scan(PlanState *ps)
{
	Relation	rel;

	if (!IsA(ps, BitmapHeapScanState))
		return false;
	rel = ((ScanState *) ps)->ss_currentRelation;
	return rel != NULL && armdb_is_armdb_relation(rel);
}

static bool
disable_prefetch_walker(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (is_armdb_bitmap_scan(ps))
	{
		BitmapHeapScanState *node = (BitmapHeapScanState *) ps;
		ArmdbScanDesc scan = (ArmdbScanDesc) node->ss.ss_currentScanDesc;

		node->prefetch_maximum = 0;
		if (scan != NULL)
			scan->bm_prefetch_off = true;
	}
	return planstate_tree_walker(ps, disable_prefetch_walker, context);
}

/*
 * After standard_ExecutorStart() has initialized the plan: no prefetching
 * of the main fork for armdb bitmap heap scans (see the file's header).
 * Parallel workers start their part of the plan through ExecutorStart()
 * too; plans initialized elsewhere (EvalPlanQual's copies of subplans)
 * keep the executor's prefetching, which armdb_scan_bitmap_next_block()
 * refuses with a hint where it would fail.
 */
static void
armdb_bitmapscan_executor_start(QueryDesc *queryDesc, int eflags)
{
	ListCell   *lc;

	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	(void) disable_prefetch_walker(queryDesc->planstate, NULL);
	foreach(lc, queryDesc->estate->es_subplanstates)
		(void) disable_prefetch_walker((PlanState *) lfirst(lc), NULL);
}

void
armdb_bitmapscan_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = armdb_bitmapscan_executor_start;
}

/*
 * A scan whose prefetching the hook did not turn off, of a table past the
 * main fork's first segment: the executor's next prefetch may fail in
 * md.c with an error that says nothing useful.  Say why, and what to do.
 */
static void
check_prefetch(ArmdbScanDesc scan)
{
	Relation	rel = scan->base.rs_rd;
	Oid			spcid = rel->rd_rel->reltablespace;
	int			concurrency;
	bool		by_tablespace;

	if (scan->bm_prefetch_off ||
		pg_atomic_read_u64(&scan->kd->npages) <= RELSEG_SIZE)
		return;
	concurrency = get_tablespace_io_concurrency(spcid);
	if (concurrency == 0)
		return;
	/* the tablespace's own option decides, where it has one: SET won't do */
	by_tablespace = concurrency != effective_io_concurrency;
	if (!OidIsValid(spcid))
		spcid = MyDatabaseTableSpace;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 by_tablespace ?
			 errmsg("cannot run this bitmap heap scan of armdb table \"%s\" with prefetching set by tablespace \"%s\"",
					RelationGetRelationName(rel), get_tablespace_name(spcid)) :
			 errmsg("cannot run this bitmap heap scan of armdb table \"%s\" with prefetching",
					RelationGetRelationName(rel)),
			 errdetail("The scan was started outside the executor's start (an EvalPlanQual recheck), and would prefetch blocks past the first segment of the table's main fork, which armdb leaves empty."),
			 by_tablespace ?
			 errhint("Reset the tablespace's effective_io_concurrency option with ALTER TABLESPACE ... RESET (effective_io_concurrency), or let the planner avoid the bitmap scan (enable_bitmapscan = off).") :
			 errhint("Set effective_io_concurrency to 0 for this statement, or let the planner avoid the bitmap scan (enable_bitmapscan = off).")));
}

/*
 * Read the entries of the versions to return with one I/O when they lie
 * close together in one file; else store_version reads them one by one.
 */
static void
read_versions_span(ArmdbScanDesc scan)
{
	ArmdbRelKeydir *kd = scan->kd;
	uint32		file_id = 0;
	uint64		from = PG_UINT64_MAX;
	uint64		to = 0;
	uint64		wanted = 0;

	scan->span.file_id = 0;
	if (scan->bm_count < 2)
		return;
	for (int i = 0; i < scan->bm_count; i++)
	{
		ArmdbVersion *v = &scan->bm_versions[i];

		if (file_id == 0)
			file_id = v->file_id;
		if (v->file_id != file_id)
			continue;
		from = Min(from, v->offset);
		to = Max(to, (uint64) v->offset + v->len);
		wanted += v->len;
	}
	if (to - from > BITMAP_SPAN_SMALL &&
		(to - from > 4 * wanted || to - from > ARMDB_SPAN_MAX))
		return;
	armdb_vstore_span_read(&scan->span, kd,
						   armdb_slot_shard(scan->bm_slots[0], kd->nshards),
						   file_id, from, to, Max(to - from, BITMAP_SPAN_SMALL),
						   scan->mcxt, armdb_store_settings());
}

/*
 * Judge the versions of page blockno that offsets names (all of them when
 * ntuples is -1, a lossy page) against the scan's snapshot, keeping the
 * visible ones; false if none is.
 */
static bool
judge_page(ArmdbScanDesc scan, BlockNumber blockno,
		   const OffsetNumber *offsets, int ntuples)
{
	Relation	rel = scan->base.rs_rd;
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		first = (uint64) blockno * ARMDB_SLOTS_PER_PAGE;
	ArmdbPage  *page;
	int			nvisible = 0;

	scan->bm_count = scan->bm_pos = 0;
	scan->cblock = blockno;
	page = armdb_keydir_page(scan->kd, blockno);
	if (page == NULL)
		return false;
	if (scan->bm_versions == NULL)
	{
		scan->bm_versions = MemoryContextAlloc(scan->mcxt,
											   sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
		scan->bm_slots = MemoryContextAlloc(scan->mcxt,
											sizeof(uint64) * ARMDB_SLOTS_PER_PAGE);
	}

	/*
	 * As heap holds the buffer's share lock while it judges the page and
	 * takes its SIREAD locks (armdb_version_judge() says why).
	 */
	LWLockAcquire(&page->lock, LW_SHARED);
	for (int i = 0; ntuples >= 0 ? i < ntuples : i < ARMDB_SLOTS_PER_PAGE; i++)
	{
		int			index;

		if (ntuples >= 0)
		{
			/* an index's TID past the page's slots names no version */
			if (offsets[i] > ARMDB_SLOTS_PER_PAGE)
				continue;
			index = offsets[i] - 1;
		}
		else
			index = i;
		if (!armdb_version_judge(rel, &page->v[index], first + index,
								 snapshot))
			continue;
		scan->bm_versions[nvisible] = page->v[index];
		scan->bm_slots[nvisible] = first + index;
		nvisible++;
	}
	LWLockRelease(&page->lock);

	scan->bm_count = nvisible;
	if (nvisible > 0)
		read_versions_span(scan);
	return nvisible > 0;
}

/* The versions of tbmres's page that the bitmap names. */
bool
armdb_scan_bitmap_next_block(TableScanDesc sscan, TBMIterateResult *tbmres)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	check_prefetch(scan);
	return judge_page(scan, tbmres->blockno, tbmres->offsets, tbmres->ntuples);
}

/*
 * Every version of page blockno visible to the scan's snapshot (a parallel
 * sequential scan's page, armdb_seqscan.c), kept for the caller to return.
 */
bool
armdb_scan_judge_page(ArmdbScanDesc scan, BlockNumber blockno)
{
	return judge_page(scan, blockno, NULL, -1);
}

/* The next version kept by armdb_scan_bitmap_next_block(), into slot. */
bool
armdb_scan_bitmap_next_tuple(TableScanDesc sscan, TBMIterateResult *tbmres,
							 TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	int			i = scan->bm_pos;

	if (i >= scan->bm_count)
		return false;
	CHECK_FOR_INTERRUPTS();
	armdb_scan_store_version(scan, scan->bm_slots[i], &scan->bm_versions[i],
							 slot);
	scan->bm_pos++;
	pgstat_count_heap_fetch(sscan->rs_rd);
	return true;
}
