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
 * Read-ahead.  Where a page holds only a few of the rows the bitmap names
 * (a GIN or btree bitmap of scattered rows), each row is a point read of
 * its own: a system call, as many as the rows.  The hook also hands the
 * scan its executor node, and the scan walks the node's bitmap with a
 * second iterator of its own ahead of the executor's (as the executor's
 * own prefetch iterator does for heap): the entries of the visible
 * versions of the next AHEAD_PAGES pages are read with one batch
 * (armdb_vstore_read_ahead(): one system call with io_uring), and served
 * from there when their pages come.  The judging of a page, its SIREAD
 * locks and conflict checks stay where they were, when the page comes:
 * read-ahead only reads bytes, and an entry is used only if the version
 * judged then is at the very location read (the bytes at a location never
 * change, vstore.c), else it is read again.  Lossy pages are read whole,
 * and pages naming more than AHEAD_PAGE_ROWS rows in one span, anyway;
 * pages the executor will skip (count(*) over all-visible pages) are
 * skipped too; parallel bitmap scans, whose pages a shared iterator hands
 * out, are not read ahead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/visibilitymap.h"
#include "access/xact.h"
#include "access/xlog.h"
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

/* Read-ahead: pages at once, and what it may hold */
#define AHEAD_PAGES			32
#define AHEAD_ENTRIES		128
#define AHEAD_BYTES			(256 * 1024)
#define AHEAD_ENTRY_MAX		8192	/* larger entries: read when wanted */
#define AHEAD_PAGE_ROWS		16		/* pages naming more rows: their span is
									 * read at once when they come */

typedef struct ArmdbBitmapAhead
{
	TIDBitmap  *tbm;			/* the executor's bitmap that iter walks */
	TBMIterator *iter;
	bool		done;			/* iter returned every page */
	BlockNumber last;			/* the last page iter returned */
	Buffer		vmbuffer;		/* for the executor's skip test */
	int			n;				/* entries read ahead */
	int			pos;			/* the first of a page not passed yet */
	uint64		slots[AHEAD_ENTRIES];	/* ascending */
	ArmdbLocation locs[AHEAD_ENTRIES];
	uint32		offs[AHEAD_ENTRIES];	/* in arena */
	bool		ok[AHEAD_ENTRIES];	/* read, and passed its checks */
	char	   *arena;			/* the entries of the last batch, sized to
								 * them (a plan may hold many bitmap scans:
								 * one per partition) */
} ArmdbBitmapAhead;

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
		{
			scan->bm_prefetch_off = true;
			scan->bm_node = node;
		}
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

void
armdb_bitmap_ahead_free(ArmdbScanDesc scan)
{
	ArmdbBitmapAhead *ra = scan->bm_ahead;

	if (ra == NULL)
		return;
	/* ends the iterator only: the bitmap may be gone already (end of scan) */
	if (ra->iter != NULL)
		tbm_end_iterate(ra->iter);
	if (BufferIsValid(ra->vmbuffer))
		ReleaseBuffer(ra->vmbuffer);
	if (ra->arena != NULL)
		pfree(ra->arena);
	pfree(ra);
	scan->bm_ahead = NULL;
}

/*
 * Read ahead for page blockno, the executor's next: once the executor has
 * passed every page read ahead, read the entries of the next pages'
 * versions that are visible now (file header).
 */
static void
read_ahead(ArmdbScanDesc scan, BlockNumber blockno)
{
	BitmapHeapScanState *node = scan->bm_node;
	Relation	rel = scan->base.rs_rd;
	ArmdbBitmapAhead *ra = scan->bm_ahead;
	const ArmdbStoreSettings *settings = armdb_store_settings();
	size_t		used = 0;
	int			npages = 0;
	bool		full = false;

	if (node == NULL || node->pstate != NULL || node->tbm == NULL ||
		node->tbmiterator == NULL || !settings->cached_reads)
		return;
	if (ra != NULL && ra->tbm != node->tbm)
		armdb_bitmap_ahead_free(scan);	/* another bitmap: start again */
	if (scan->bm_ahead == NULL)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);

		ra = palloc0(sizeof(ArmdbBitmapAhead));
		ra->tbm = node->tbm;
		ra->iter = tbm_begin_iterate(node->tbm);
		ra->last = InvalidBlockNumber;
		ra->vmbuffer = InvalidBuffer;
		scan->bm_ahead = ra;
		MemoryContextSwitchTo(oldcontext);
	}

	/* pass what was read for the pages before this one */
	while (ra->pos < ra->n && ra->slots[ra->pos] / ARMDB_SLOTS_PER_PAGE < blockno)
		ra->pos++;
	if (ra->done || (ra->last != InvalidBlockNumber && ra->last >= blockno))
		return;

	ra->n = ra->pos = 0;
	if (ra->arena != NULL)
		pfree(ra->arena);
	ra->arena = NULL;
	while (npages < AHEAD_PAGES && !full)
	{
		TBMIterateResult *r = tbm_iterate(ra->iter);
		ArmdbPage  *page;
		uint64		first;

		if (r == NULL)
		{
			ra->done = true;
			break;
		}
		ra->last = r->blockno;
		if (r->blockno < blockno)
			continue;			/* a page the executor skipped */
		npages++;
		/* pages read whole, or in one span; and the executor's skipped ones */
		if (r->ntuples < 0 || r->ntuples > AHEAD_PAGE_ROWS ||
			(node->can_skip_fetch && !r->recheck &&
			 VM_ALL_VISIBLE(rel, r->blockno, &ra->vmbuffer)))
			continue;
		page = armdb_keydir_page(scan->kd, r->blockno);
		if (page == NULL)
			continue;
		first = (uint64) r->blockno * ARMDB_SLOTS_PER_PAGE;
		LWLockAcquire(&page->lock, LW_SHARED);
		for (int i = 0; i < r->ntuples; i++)
		{
			ArmdbVersion *v;
			uint64		slot;
			uint32		len;

			if (r->offsets[i] > ARMDB_SLOTS_PER_PAGE)
				continue;
			slot = first + r->offsets[i] - 1;
			v = &page->v[r->offsets[i] - 1];
			if (v->file_id == 0)
				continue;
			len = armdb_version_len(v, slot);
			if (len > AHEAD_ENTRY_MAX ||
				!armdb_version_satisfies(v, slot, scan->base.rs_snapshot))
				continue;
			if (ra->n == AHEAD_ENTRIES || used + MAXALIGN(len) > AHEAD_BYTES)
			{
				full = true;	/* the rest of this page: read when wanted */
				break;
			}
			ra->slots[ra->n] = slot;
			ra->locs[ra->n].file_id = v->file_id;
			ra->locs[ra->n].offset = v->offset;
			ra->locs[ra->n].len = len;
			ra->offs[ra->n] = used;
			used += MAXALIGN(len);
			ra->n++;
		}
		LWLockRelease(&page->lock);
	}
	if (ra->n > 0)
	{
		char	   *bufs[AHEAD_ENTRIES];
		int			n = ra->n;

		ra->n = 0;				/* nothing read until the batch is */
		ra->arena = MemoryContextAlloc(scan->mcxt, used);
		for (int i = 0; i < n; i++)
			bufs[i] = ra->arena + ra->offs[i];
		armdb_vstore_read_ahead(scan->kd, n, ra->slots, ra->locs, bufs,
								ra->ok, settings);
		ra->n = n;
	}
}

/*
 * The read-ahead's entry of slot, if it was read and is at loc; -1 if not.
 * Entries are in slot order from ra->pos, the executor's current page.
 */
static int
ahead_find(const ArmdbBitmapAhead *ra, uint64 slot, const ArmdbLocation *loc)
{
	for (int i = ra->pos; i < ra->n && ra->slots[i] <= slot; i++)
	{
		if (ra->slots[i] != slot)
			continue;
		if (!ra->ok[i] || ra->locs[i].file_id != loc->file_id ||
			ra->locs[i].offset != loc->offset || ra->locs[i].len != loc->len)
			return -1;
		return i;
	}
	return -1;
}

/* Was the entry of slot at loc read ahead?  Then into buf. */
bool
armdb_bitmap_ahead_copy(ArmdbScanDesc scan, uint64 slot,
						const ArmdbLocation *loc, char *buf)
{
	ArmdbBitmapAhead *ra = scan->bm_ahead;
	int			i;

	if (ra == NULL || (i = ahead_find(ra, slot, loc)) < 0)
		return false;
	memcpy(buf, ra->arena + ra->offs[i], loc->len);
	return true;
}

/* Were the entries of every version kept for the page read ahead? */
static bool
ahead_has_all(ArmdbScanDesc scan)
{
	ArmdbBitmapAhead *ra = scan->bm_ahead;

	if (ra == NULL)
		return false;
	for (int k = 0; k < scan->bm_count; k++)
	{
		ArmdbLocation loc = armdb_version_location(&scan->bm_versions[k],
												   &scan->bm_extras[k]);

		if (ahead_find(ra, scan->bm_slots[k], &loc) < 0)
			return false;
	}
	return true;
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
	uint32		shard;
	uint64		from = PG_UINT64_MAX;
	uint64		to = 0;
	uint64		wanted = 0;

	scan->span.file_id = 0;
	if (scan->bm_count < 2)
		return;
	/* the first version's shard (HOT chains may lead to other pages) */
	shard = armdb_slot_shard(kd, scan->bm_slots[0]);
	for (int i = 0; i < scan->bm_count; i++)
	{
		ArmdbVersion *v = &scan->bm_versions[i];
		uint32		len = scan->bm_extras[i].len;

		if (armdb_slot_shard(kd, scan->bm_slots[i]) != shard)
			continue;
		if (file_id == 0)
			file_id = v->file_id;
		if (v->file_id != file_id)
			continue;
		from = Min(from, v->offset);
		to = Max(to, (uint64) v->offset + len);
		wanted += len;
	}
	if (to - from > BITMAP_SPAN_SMALL &&
		(to - from > 4 * wanted || to - from > ARMDB_SPAN_MAX))
		return;
	armdb_vstore_span_read(&scan->span, kd, shard,
						   file_id, from, to, Max(to - from, BITMAP_SPAN_SMALL),
						   2 * wanted >= to - from,
						   scan->mcxt, armdb_store_settings());
}

/* chains a sequential scan prunes per virtual page, at most */
#define PRUNE_PER_PAGE	16

/*
 * Judge the versions of page blockno that offsets names (all of them when
 * ntuples is -1, a lossy page) against the scan's snapshot, keeping the
 * visible ones; false if none is.  With chains (a bitmap heap scan), a
 * slot names a HOT chain's root, and its version the snapshot sees may be
 * a newer one on another page (heap_hot_search_buffer); a heap-only
 * version of the page is left to its chain's root, as heap's lossy pages
 * do.  Without (a parallel sequential scan), every version of the page
 * counts for itself.
 */
static bool
judge_page(ArmdbScanDesc scan, BlockNumber blockno,
		   const OffsetNumber *offsets, int ntuples, bool chains)
{
	Relation	rel = scan->base.rs_rd;
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		first = (uint64) blockno * ARMDB_SLOTS_PER_PAGE;
	ArmdbPage  *page;
	int			nvisible = 0;
	GlobalVisState *vistest = NULL;
	uint64		prunable[PRUNE_PER_PAGE];
	int			nprunable = 0;

	scan->bm_count = scan->bm_pos = 0;
	scan->cblock = blockno;
	page = armdb_keydir_page(scan->kd, blockno);
	if (page == NULL)
		return false;
	if (scan->bm_versions == NULL)
	{
		scan->bm_versions = MemoryContextAlloc(scan->mcxt,
											   sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
		scan->bm_extras = MemoryContextAlloc(scan->mcxt,
											 sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE);
		scan->bm_slots = MemoryContextAlloc(scan->mcxt,
											sizeof(uint64) * ARMDB_SLOTS_PER_PAGE);
	}

	if (!chains && (scan->base.rs_flags & SO_TYPE_SEQSCAN) &&
		!RecoveryInProgress())
		vistest = GlobalVisTestFor(rel);

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
		if (chains)
		{
			uint64		found = first + index;

			if (ntuples < 0 && (page->v[index].infomask2 & HEAP_ONLY_TUPLE) &&
				page->v[index].file_id != 0)
				continue;
			if (!armdb_hot_search_locked(rel, scan->kd, page, &found,
										 snapshot, &scan->bm_versions[nvisible],
										 &scan->bm_extras[nvisible], NULL, NULL, true,
										 InvalidTransactionId, NULL))
				continue;
			scan->bm_slots[nvisible] = found;
			nvisible++;
			continue;
		}
		/* a sequential scan prunes the chains it passes, as heap's does */
		if (vistest != NULL && nprunable < PRUNE_PER_PAGE &&
			(armdb_version_is_redirect(&page->v[index]) ||
			 (page->v[index].file_id != 0 &&
			  (page->v[index].infomask2 & HEAP_HOT_UPDATED) &&
			  !(page->v[index].infomask2 & HEAP_ONLY_TUPLE))) &&
			armdb_hot_prunable_locked(scan->kd, page, first + index, vistest))
			prunable[nprunable++] = first + index;
		if (!armdb_version_judge(rel, &page->v[index], first + index,
								 snapshot))
			continue;
		scan->bm_versions[nvisible] = page->v[index];
		scan->bm_extras[nvisible] = armdb_version_extra_values(&page->v[index],
															   first + index);
		scan->bm_slots[nvisible] = first + index;
		nvisible++;
	}
	LWLockRelease(&page->lock);

	scan->bm_count = nvisible;
	if (nvisible > 0 && !ahead_has_all(scan))
		read_versions_span(scan);
	/* after the reads: pruning frees no version the scan sees */
	for (int i = 0; i < nprunable; i++)
		armdb_hot_prune_opt(rel, scan->kd, prunable[i], vistest);
	return nvisible > 0;
}

/*
 * Once the executor is on the bitmap's last page and has what it needs of
 * it, the read-ahead is done with: its memory and pin go now, not at the
 * end of the plan, which may hold many bitmap scans (one per partition).
 */
static void
ahead_release_if_done(ArmdbScanDesc scan)
{
	ArmdbBitmapAhead *ra = scan->bm_ahead;

	if (ra != NULL && ra->done && scan->cblock >= ra->last &&
		scan->bm_pos >= scan->bm_count)
		armdb_bitmap_ahead_free(scan);
}

/* The versions of tbmres's page that the bitmap names. */
bool
armdb_scan_bitmap_next_block(TableScanDesc sscan, TBMIterateResult *tbmres)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	bool		any;

	check_prefetch(scan);
	read_ahead(scan, tbmres->blockno);
	any = judge_page(scan, tbmres->blockno, tbmres->offsets, tbmres->ntuples,
					 true);
	if (!any)
		ahead_release_if_done(scan);
	return any;
}

/*
 * Every version of page blockno visible to the scan's snapshot (a parallel
 * sequential scan's page, armdb_seqscan.c), kept for the caller to return.
 */
bool
armdb_scan_judge_page(ArmdbScanDesc scan, BlockNumber blockno)
{
	return judge_page(scan, blockno, NULL, -1, false);
}

/* The next version kept by armdb_scan_bitmap_next_block(), into slot. */
bool
armdb_scan_bitmap_next_tuple(TableScanDesc sscan, TBMIterateResult *tbmres,
							 TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	int			i = scan->bm_pos;

	if (i >= scan->bm_count)
	{
		ahead_release_if_done(scan);
		return false;
	}
	CHECK_FOR_INTERRUPTS();
	armdb_scan_store_version(scan, scan->bm_slots[i], &scan->bm_versions[i],
							 &scan->bm_extras[i], slot);
	scan->bm_pos++;
	pgstat_count_heap_fetch(sscan->rs_rd);
	return true;
}
