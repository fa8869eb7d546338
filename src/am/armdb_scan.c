/*-------------------------------------------------------------------------
 *
 * armdb_scan.c
 *	  Reading armdb tables: sequential and parallel scans, fetching a
 *	  version by TID, ANALYZE and TABLESAMPLE scans.
 *
 * A sequential scan reads the shards' data files front to back in large
 * chunks (the bitcask way: sequential I/O, no random reads), and returns an
 * entry when the keydir still points at it and its version is visible to
 * the snapshot.  A serial scan merges the shards by gsn, so rows come back
 * in the order they were written, as from heap.  The version store's
 * cursor (vstore.h) reads a shard's files and a copy of what was still only
 * in its write buffer when the cursor started (this transaction's own rows
 * included); what is appended later is not visible to the scan's snapshot
 * anyway.  A parallel scan hands out whole shards.
 *
 * Fetching by TID (triggers, ANALYZE, TABLESAMPLE) reads one entry through
 * the version store: from the shard's write buffer under the shard lock if
 * it is still there, else with one aligned read of the file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/subtrans.h"
#include "access/tsmapi.h"
#include "lib/binaryheap.h"
#include "access/xact.h"
#include "commands/tablespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/spccache.h"

#include "am/armdb_am.h"
#include "keydir/visibility.h"

typedef struct ArmdbParallelScanDescData
{
	ParallelTableScanDescData base;
	pg_atomic_uint32 next_shard;
} ArmdbParallelScanDescData;

/*
 * Reading one shard's data files front to back, one entry at a time (the
 * version store's cursor), judging the versions met.
 */
typedef struct ShardCursor
{
	ArmdbVstoreCursor sc;

	/*
	 * Page-at-a-time visibility (MVCC snapshots), as heap's page mode: the
	 * version records of the virtual page last met, copied and judged
	 * under one acquisition of its lock.  A shard's entries fill its pages
	 * in order, so most entries find their page here.
	 */
	uint64		vis_page;		/* PG_UINT64_MAX: none */
	ArmdbVersion *vis_copy;		/* [ARMDB_SLOTS_PER_PAGE] */
	bool	   *vis;			/* [ARMDB_SLOTS_PER_PAGE] */
} ShardCursor;

typedef struct ArmdbScanDescData
{
	TableScanDescData base;
	ArmdbRelKeydir *kd;

	/*
	 * Sequential scans.  A serial scan reads all shards at once and merges
	 * them by gsn, so it returns versions in the order they were written --
	 * as heap returns rows in the order it appended them -- whichever
	 * backends (and so shards) wrote them.  A parallel scan's workers take
	 * whole shards, one cursor at a time.
	 */
	bool		started;
	ShardCursor *cursors;		/* one per shard (serial) or one (parallel) */
	int			ncursors;
	binaryheap *merge;			/* serial: cursors with entries, by gsn */

	/*
	 * Backward scans (SCROLL cursors).  Shards are read forward only, so
	 * the first backward step replays the merge to list the slots returned
	 * so far; from then on the scan keeps that list (history) and moves
	 * through it, re-reading versions by slot, and extends it as forward
	 * steps pass its end.  The snapshot sees the same versions every time.
	 */
	uint64		nreturned;		/* forward tuples returned by the merge */
	bool		merge_done;		/* ... and it has returned them all */
	uint64	   *history;		/* slots returned, in order; NULL: none */
	int64		hist_len;
	int64		hist_cap;
	int64		hist_pos;		/* index of the current tuple; -1 before
								 * the first, hist_len after the last */

	/* ANALYZE and TABLESAMPLE */
	BlockNumber cblock;
	int			coffset;		/* next slot index in cblock */
	ArmdbVstoreSpan span;		/* entries of cblock, read at once */
	BlockNumber nblocks;
	BlockNumber startblock;

	/* the tuple last returned, in memory of the scan's context */
	MemoryContext mcxt;
	HeapTupleData tuple;
	char	   *tuple_buf;
	Size		tuple_buf_size;
} ArmdbScanDescData;

typedef ArmdbScanDescData *ArmdbScanDesc;

static void check_analyze_prefetch(Relation rel, ArmdbRelKeydir *kd);

/* ----------------
 * Building tuples
 * ----------------
 */

/*
 * The tuple image in the data file is a heap tuple as it was inserted; its
 * transaction fields are the version record's, filled in here so that
 * system columns (xmin, xmax, cmin, ctid) read right.
 */
static void
fill_tuple(HeapTuple tuple, Relation rel, uint64 slot, char *image,
		   uint32 image_len, const ArmdbVersion *v)
{
	HeapTupleHeader td = (HeapTupleHeader) image;

	tuple->t_len = image_len;
	tuple->t_data = td;
	tuple->t_tableOid = RelationGetRelid(rel);
	armdb_slot_to_tid(slot, &tuple->t_self);

	td->t_infomask = (td->t_infomask & ~HEAP_XACT_MASK) |
		(v->infomask & HEAP_XACT_MASK);
	td->t_infomask2 = (td->t_infomask2 & HEAP_NATTS_MASK) |
		(v->infomask2 & HEAP2_XACT_MASK);
	HeapTupleHeaderSetXmin(td, v->xmin);
	HeapTupleHeaderSetXmax(td, v->xmax);
	td->t_choice.t_heap.t_field3.t_cid = v->cid;
	if (v->infomask2 & ARMDB_V2_SPECULATIVE)
		td->t_ctid = tuple->t_self;
	else if (v->ctid == ARMDB_CTID_MOVED)
		ItemPointerSetMovedPartitions(&td->t_ctid);
	else
		armdb_slot_to_tid(v->ctid, &td->t_ctid);
}

/*
 * A buffer of at least len bytes in mcxt for tuple images: *buf is reused
 * while it is big enough, else replaced (*size tracks it).
 */
char *
armdb_reserve_buffer(char **buf, Size *size, Size len, MemoryContext mcxt)
{
	if (*size < len)
	{
		if (*buf)
			pfree(*buf);
		*size = Max(len, 8192);
		*buf = MemoryContextAllocHuge(mcxt, *size);
	}
	return *buf;
}

static char *
tuple_buffer(ArmdbScanDesc scan, Size len)
{
	return armdb_reserve_buffer(&scan->tuple_buf, &scan->tuple_buf_size, len,
								scan->mcxt);
}

/*
 * Read the entry of version v (slot) into buf (v->len bytes), from the write
 * buffer or the file, and check that it is the entry of that slot.
 */
static void
read_version(ArmdbRelKeydir *kd, uint64 slot, const ArmdbVersion *v, char *buf)
{
	ArmdbLocation loc = {v->file_id, v->offset, v->len};

	armdb_vstore_read(kd, slot, &loc, buf, armdb_store_settings());
}

/*
 * Look up slot: copy its record to *copy (all zeros, file_id 0, if the slot
 * holds nothing) and return whether it is a version visible to snapshot.
 */
bool
armdb_version_lookup(ArmdbRelKeydir *kd, uint64 slot, Snapshot snapshot,
					 ArmdbVersion *copy)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;
	bool		visible;

	if (page == NULL)
	{
		memset(copy, 0, sizeof(*copy));
		return false;
	}
	LWLockAcquire(&page->lock, LW_SHARED);
	v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	visible = v->file_id != 0 && armdb_version_satisfies(v, slot, snapshot);
	*copy = *v;
	LWLockRelease(&page->lock);
	return visible;
}

/*
 * Read the tuple of a version found in the keydir into buf (v->len bytes)
 * and make *tuple describe it.
 */
void
armdb_read_version_tuple(Relation rel, ArmdbRelKeydir *kd, uint64 slotno,
						 const ArmdbVersion *v, char *buf, HeapTuple tuple)
{
	read_version(kd, slotno, v, buf);
	fill_tuple(tuple, rel, slotno, buf + ARMDB_ENTRY_HEADER_SIZE,
			   v->len - ARMDB_ENTRY_HEADER_SIZE, v);
}

/* Is the version in slot dead to every snapshot vistest describes? */
bool
armdb_version_surely_dead(ArmdbRelKeydir *kd, uint64 slot,
						  GlobalVisState *vistest)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	bool		dead;

	if (page == NULL)
		return false;
	LWLockAcquire(&page->lock, LW_SHARED);
	dead = page->v[slot % ARMDB_SLOTS_PER_PAGE].file_id != 0 &&
		armdb_version_is_surely_dead(&page->v[slot % ARMDB_SLOTS_PER_PAGE],
									 vistest);
	LWLockRelease(&page->lock);
	return dead;
}

/*
 * HeapTupleSatisfiesVacuum of the version in slot; *xwait is the xid an
 * in-progress result is waiting for (inserter, or deleter/updater).
 */
HTSV_Result
armdb_version_htsv(ArmdbRelKeydir *kd, uint64 slot, TransactionId OldestXmin,
				   TransactionId *xwait)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;
	HTSV_Result res;

	*xwait = InvalidTransactionId;
	if (page == NULL)
		return HEAPTUPLE_DEAD;
	LWLockAcquire(&page->lock, LW_SHARED);
	v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	if (v->file_id == 0)
		res = HEAPTUPLE_DEAD;
	else
	{
		res = armdb_version_satisfies_vacuum(v, OldestXmin);
		if (res == HEAPTUPLE_INSERT_IN_PROGRESS)
			*xwait = v->xmin;
		else if (res == HEAPTUPLE_DELETE_IN_PROGRESS)
			*xwait = armdb_version_get_update_xid(v);
	}
	LWLockRelease(&page->lock);
	return res;
}

/*
 * HeapCheckForSerializableConflictOut() on a version record: a serializable
 * transaction reading (or skipping as invisible) a version that a
 * concurrent serializable transaction wrote or ended has a rw-conflict out
 * to it.  v may be a copy: the hint bits it gets are not kept.
 */
void
armdb_check_serializable_out(Relation rel, ArmdbVersion *v, bool visible,
							 Snapshot snapshot)
{
	TransactionId xid;

	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;

	switch (armdb_version_satisfies_vacuum(v, TransactionXmin))
	{
		case HEAPTUPLE_LIVE:
			if (visible)
				return;
			xid = v->xmin;
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			xid = visible ? armdb_version_get_update_xid(v) : v->xmin;
			if (TransactionIdPrecedes(xid, TransactionXmin))
				return;			/* like the DEAD case */
			break;
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			xid = v->xmin;
			break;
		case HEAPTUPLE_DEAD:
		default:
			return;
	}

	/* the top-level xid; not too old to conflict, and not our own */
	if (TransactionIdEquals(xid, GetTopTransactionIdIfAny()))
		return;
	xid = SubTransGetTopmostTransaction(xid);
	if (TransactionIdPrecedes(xid, TransactionXmin))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

/* Read a version found in the keydir and store it in slot. */
static void
store_version(ArmdbScanDesc scan, Relation rel, ArmdbRelKeydir *kd,
			  uint64 slotno, const ArmdbVersion *v, TupleTableSlot *slot)
{
	char	   *buf = tuple_buffer(scan, v->len);

	read_version(kd, slotno, v, buf);
	fill_tuple(&scan->tuple, rel, slotno, buf + ARMDB_ENTRY_HEADER_SIZE,
			   v->len - ARMDB_ENTRY_HEADER_SIZE, v);
	ExecStoreHeapTuple(&scan->tuple, slot, false);
}

/* ----------------
 * Sequential scans
 * ----------------
 */
TableScanDesc
armdb_scan_begin(Relation rel, Snapshot snapshot, int nkeys, ScanKey key,
				 ParallelTableScanDesc pscan, uint32 flags)
{
	ArmdbScanDesc scan = palloc0(sizeof(ArmdbScanDescData));

	RelationIncrementReferenceCount(rel);
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_key = key;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->kd = armdb_rel_keydir(rel);
	scan->mcxt = CurrentMemoryContext;
	scan->cblock = InvalidBlockNumber;
	scan->hist_pos = -1;
	scan->tuple.t_tableOid = RelationGetRelid(rel);

	if (flags & SO_TYPE_ANALYZE)
		check_analyze_prefetch(rel, scan->kd);
	if (flags & SO_TEMP_SNAPSHOT)
		Assert(IsMVCCSnapshot(snapshot));
	if (snapshot && IsMVCCSnapshot(snapshot) && (flags & SO_TYPE_SEQSCAN))
		PredicateLockRelation(rel, snapshot);
	/* as heap's initscan: every start of a sequential scan counts */
	if (flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(rel);
	return &scan->base;
}

static void
free_cursors(ArmdbScanDesc scan)
{
	for (int i = 0; i < scan->ncursors; i++)
	{
		armdb_vstore_cursor_free(&scan->cursors[i].sc);
		if (scan->cursors[i].vis_copy)
			pfree(scan->cursors[i].vis_copy);
		if (scan->cursors[i].vis)
			pfree(scan->cursors[i].vis);
	}
	if (scan->cursors)
		pfree(scan->cursors);
	if (scan->merge)
		binaryheap_free(scan->merge);
	scan->cursors = NULL;
	scan->merge = NULL;
	scan->ncursors = 0;
	scan->started = false;
}

static void
scan_reset(ArmdbScanDesc scan)
{
	free_cursors(scan);
	if (scan->history)
		pfree(scan->history);
	scan->history = NULL;
	scan->hist_len = scan->hist_cap = 0;
	scan->hist_pos = -1;
	scan->nreturned = 0;
	scan->merge_done = false;
	scan->cblock = InvalidBlockNumber;
	scan->coffset = 0;
}

void
armdb_scan_rescan(TableScanDesc sscan, ScanKey key, bool set_params,
				  bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	if (key != NULL && sscan->rs_nkeys > 0)
		memcpy(sscan->rs_key, key, sscan->rs_nkeys * sizeof(ScanKeyData));
	scan_reset(scan);
	if (sscan->rs_flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(sscan->rs_rd);
}

void
armdb_scan_end(TableScanDesc sscan)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	free_cursors(scan);
	armdb_vstore_span_free(&scan->span);
	if (scan->tuple_buf)
		pfree(scan->tuple_buf);
	if (scan->history)
		pfree(scan->history);
	RelationDecrementReferenceCount(sscan->rs_rd);
	if (sscan->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(sscan->rs_snapshot);
	pfree(scan);
}

/* Start a cursor on a shard, with nothing of its pages judged yet. */
static void
cursor_start(ArmdbScanDesc scan, ShardCursor *cur, uint32 shard)
{
	armdb_vstore_cursor_start(&cur->sc, scan->kd, shard, scan->mcxt,
							  armdb_store_settings());
	cur->vis_page = PG_UINT64_MAX;
}

/* Order of the merge: the smaller gsn first (binaryheap keeps the largest). */
static int
cursor_cmp(Datum a, Datum b, void *arg)
{
	uint64		ga = ((ShardCursor *) DatumGetPointer(a))->sc.hdr.gsn & ARMDB_GSN_MAX;
	uint64		gb = ((ShardCursor *) DatumGetPointer(b))->sc.hdr.gsn & ARMDB_GSN_MAX;

	return (ga < gb) ? 1 : (ga > gb) ? -1 : 0;
}

/*
 * The cursor whose entry comes next, positioned on it; NULL at the end of
 * the scan.
 */
static ShardCursor *
scan_next_entry(ArmdbScanDesc scan)
{
	ParallelTableScanDesc pscan = scan->base.rs_parallel;
	uint32		nshards = scan->kd->nshards;

	if (!scan->started)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);

		scan->started = true;
		scan->ncursors = pscan != NULL ? 1 : (int) nshards;
		scan->cursors = palloc0(sizeof(ShardCursor) * scan->ncursors);
		if (pscan == NULL)
		{
			scan->merge = binaryheap_allocate(scan->ncursors, cursor_cmp, NULL);
			for (uint32 i = 0; i < nshards; i++)
			{
				cursor_start(scan, &scan->cursors[i], i);
				if (armdb_vstore_cursor_peek(&scan->cursors[i].sc))
					binaryheap_add_unordered(scan->merge,
											 PointerGetDatum(&scan->cursors[i]));
			}
			binaryheap_build(scan->merge);
		}
		MemoryContextSwitchTo(oldcontext);
	}

	if (pscan != NULL)
	{
		ArmdbParallelScanDescData *ppscan = (ArmdbParallelScanDescData *) pscan;
		ShardCursor *cur = &scan->cursors[0];

		/* the current shard, or the next one the workers have not taken */
		while (!(cur->sc.files != NULL &&
				 (cur->sc.valid || armdb_vstore_cursor_peek(&cur->sc))))
		{
			uint32		shard = pg_atomic_fetch_add_u32(&ppscan->next_shard, 1);

			if (shard >= nshards)
				return NULL;
			cursor_start(scan, cur, shard);
		}
		return cur;
	}

	/* serial: the merge's smallest gsn; refill after the previous one */
	while (!binaryheap_empty(scan->merge))
	{
		ShardCursor *cur = (ShardCursor *) DatumGetPointer(binaryheap_first(scan->merge));

		if (cur->sc.valid)
			return cur;
		if (armdb_vstore_cursor_peek(&cur->sc))
			binaryheap_replace_first(scan->merge, PointerGetDatum(cur));
		else
			(void) binaryheap_remove_first(scan->merge);
	}
	return NULL;
}

/*
 * Is the version of the entry under cur (slot) visible to the scan's
 * snapshot?  *v gets the version record.  With an MVCC snapshot the whole
 * virtual page is judged at once (heap's page mode): what changes on the
 * page afterwards concerns transactions the snapshot does not see.
 */
static bool
entry_visible(ArmdbScanDesc scan, ShardCursor *cur, uint64 slot,
			  ArmdbVersion *v)
{
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		pageno = slot / ARMDB_SLOTS_PER_PAGE;
	int			i = slot % ARMDB_SLOTS_PER_PAGE;

	if (!IsMVCCSnapshot(snapshot))
		return armdb_version_lookup(scan->kd, slot, snapshot, v);
	if (cur->vis_page != pageno)
	{
		ArmdbPage  *page = armdb_keydir_page(scan->kd, pageno);

		if (cur->vis_copy == NULL)
		{
			cur->vis_copy = MemoryContextAlloc(scan->mcxt,
											   sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
			cur->vis = MemoryContextAlloc(scan->mcxt,
										  sizeof(bool) * ARMDB_SLOTS_PER_PAGE);
		}
		if (page == NULL)
		{
			memset(cur->vis_copy, 0, sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
			memset(cur->vis, 0, sizeof(bool) * ARMDB_SLOTS_PER_PAGE);
		}
		else
		{
			uint64		first = pageno * ARMDB_SLOTS_PER_PAGE;

			LWLockAcquire(&page->lock, LW_SHARED);
			for (int j = 0; j < ARMDB_SLOTS_PER_PAGE; j++)
			{
				ArmdbVersion *pv = &page->v[j];

				cur->vis[j] = pv->file_id != 0 &&
					armdb_version_satisfies(pv, first + j, snapshot);
				cur->vis_copy[j] = *pv;
			}
			LWLockRelease(&page->lock);
		}
		cur->vis_page = pageno;
	}
	*v = cur->vis_copy[i];
	return cur->vis[i];
}

/*
 * The next visible version of the gsn merge into scan->tuple (with its
 * slot in *slotno), or false at the end.  With replay, only the slot is
 * wanted (history rebuilding): no tuple, no statistics, no SSI checks --
 * the first pass did those.
 */
static bool
merge_next(ArmdbScanDesc scan, bool replay, uint64 *slotno)
{
	Relation	rel = scan->base.rs_rd;
	ShardCursor *cur;

	while ((cur = scan_next_entry(scan)) != NULL)
	{
		ArmdbEntryHeader *hdr = &cur->sc.hdr;
		ArmdbVersion v;
		bool		visible = false;

		if (!armdb_gsn_is_tombstone(hdr->gsn) &&
			!armdb_gsn_is_reservation(hdr->gsn))
		{
			visible = entry_visible(scan, cur, hdr->slot, &v);
			if (v.file_id != cur->sc.file_id || v.offset != cur->sc.pos)
				visible = false;	/* not this slot's version any more */
			else if (!replay)
				armdb_check_serializable_out(rel, &v, visible,
											 scan->base.rs_snapshot);
		}
		if (visible)
		{
			*slotno = hdr->slot;
			if (!replay)
			{
				char	   *buf = tuple_buffer(scan, hdr->value_len);

				memcpy(buf, cur->sc.entry + ARMDB_ENTRY_HEADER_SIZE,
					   hdr->value_len);
				fill_tuple(&scan->tuple, rel, hdr->slot, buf, hdr->value_len,
						   &v);
				pgstat_count_heap_getnext(rel);
			}
			armdb_vstore_cursor_advance(&cur->sc);
			return true;
		}
		armdb_vstore_cursor_advance(&cur->sc);
	}
	return false;
}

static void
history_append(ArmdbScanDesc scan, uint64 slotno)
{
	if (scan->hist_len == scan->hist_cap)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);

		scan->hist_cap = Max(1024, scan->hist_cap * 2);
		scan->history = scan->history == NULL ?
			palloc_extended(sizeof(uint64) * scan->hist_cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(scan->history, sizeof(uint64) * scan->hist_cap);
		MemoryContextSwitchTo(oldcontext);
	}
	scan->history[scan->hist_len++] = slotno;
}

/*
 * The first backward step: replay the merge from the start to list the
 * slots returned so far (all of them when the scan has not started: a
 * backward scan from scratch starts at the end, as heap's does), leaving
 * the merge where it was.
 */
static void
history_build(ArmdbScanDesc scan)
{
	uint64		n = scan->nreturned;
	bool		to_end = scan->merge_done || n == 0;
	uint64		slotno;

	free_cursors(scan);
	scan->hist_cap = 1024;
	scan->history = MemoryContextAllocHuge(scan->mcxt,
										   sizeof(uint64) * scan->hist_cap);
	scan->hist_len = 0;
	while ((to_end || (uint64) scan->hist_len < n) &&
		   merge_next(scan, true, &slotno))
		history_append(scan, slotno);
	if (to_end)
		scan->merge_done = true;
	scan->hist_pos = to_end ? scan->hist_len : scan->hist_len - 1;
}

/* Return the history's tuple at hist_pos, read again by slot. */
static void
history_fetch(ArmdbScanDesc scan, TupleTableSlot *slot)
{
	Relation	rel = scan->base.rs_rd;
	uint64		slotno = scan->history[scan->hist_pos];
	ArmdbVersion v;
	char	   *buf;

	if (!armdb_version_lookup(scan->kd, slotno, scan->base.rs_snapshot, &v))
		elog(ERROR, "armdb: row version in slot " UINT64_FORMAT " vanished under a scan's snapshot",
			 slotno);
	buf = tuple_buffer(scan, v.len);
	armdb_read_version_tuple(rel, scan->kd, slotno, &v, buf, &scan->tuple);
	pgstat_count_heap_getnext(rel);
	ExecStoreHeapTuple(&scan->tuple, slot, false);
}

bool
armdb_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
					   TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	uint64		slotno;

	if (ScanDirectionIsBackward(direction))
	{
		if (sscan->rs_parallel != NULL)
			elog(ERROR, "armdb: parallel scans cannot go backward");
		if (scan->history == NULL)
			history_build(scan);
		scan->hist_pos = Min(scan->hist_pos, scan->hist_len) - 1;
		if (scan->hist_pos < 0)
		{
			scan->hist_pos = -1;
			ExecClearTuple(slot);
			return false;
		}
		history_fetch(scan, slot);
		return true;
	}

	/* forward through the history first, if there is one */
	if (scan->history != NULL && scan->hist_pos + 1 < scan->hist_len)
	{
		scan->hist_pos++;
		history_fetch(scan, slot);
		return true;
	}
	if (!scan->merge_done && merge_next(scan, false, &slotno))
	{
		scan->nreturned++;
		if (scan->history != NULL)
		{
			history_append(scan, slotno);
			scan->hist_pos = scan->hist_len - 1;
		}
		ExecStoreHeapTuple(&scan->tuple, slot, false);
		return true;
	}
	scan->merge_done = true;
	if (scan->history != NULL)
		scan->hist_pos = scan->hist_len;
	ExecClearTuple(slot);
	return false;
}

/* ----------------
 * Parallel scans: shards are the unit of work
 * ----------------
 */
Size
armdb_parallelscan_estimate(Relation rel)
{
	return sizeof(ArmdbParallelScanDescData);
}

Size
armdb_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
	ArmdbParallelScanDescData *ppscan = (ArmdbParallelScanDescData *) pscan;

	ppscan->base.phs_relid = RelationGetRelid(rel);
	ppscan->base.phs_syncscan = false;
	pg_atomic_init_u32(&ppscan->next_shard, 0);
	return sizeof(ArmdbParallelScanDescData);
}

void
armdb_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	ArmdbParallelScanDescData *ppscan = (ArmdbParallelScanDescData *) pscan;

	pg_atomic_write_u32(&ppscan->next_shard, 0);
}

/* ----------------
 * Single versions by TID
 * ----------------
 */
bool
armdb_slot_of_tid(ArmdbRelKeydir *kd, ItemPointer tid, uint64 *slot)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off < 1 || off > ARMDB_SLOTS_PER_PAGE)
		return false;
	*slot = armdb_tid_to_slot(tid);
	return *slot / ARMDB_SLOTS_PER_PAGE < pg_atomic_read_u64(&kd->npages);
}

bool
armdb_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
						TupleTableSlot *slot)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion v;
	uint64		slotno;
	char	   *buf;
	HeapTuple	tuple;

	if (!armdb_slot_of_tid(kd, tid, &slotno))
		return false;
	if (!armdb_version_lookup(kd, slotno, snapshot, &v))
	{
		if (v.file_id != 0)
			armdb_check_serializable_out(rel, &v, false, snapshot);
		return false;
	}
	armdb_check_serializable_out(rel, &v, true, snapshot);
	if (IsMVCCSnapshot(snapshot))
		PredicateLockTID(rel, tid, snapshot, v.xmin);

	/* the slot owns the tuple: one palloc'd block, header and image */
	buf = palloc(HEAPTUPLESIZE + v.len);
	tuple = (HeapTuple) buf;
	read_version(kd, slotno, &v, buf + HEAPTUPLESIZE);
	memmove(buf + HEAPTUPLESIZE, buf + HEAPTUPLESIZE + ARMDB_ENTRY_HEADER_SIZE,
			v.len - ARMDB_ENTRY_HEADER_SIZE);
	fill_tuple(tuple, rel, slotno, buf + HEAPTUPLESIZE,
			   v.len - ARMDB_ENTRY_HEADER_SIZE, &v);
	ExecStoreHeapTuple(tuple, slot, true);
	return true;
}

bool
armdb_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	uint64		slot;

	return armdb_slot_of_tid(armdb_rel_keydir(scan->rs_rd), tid, &slot);
}

/*
 * heap_get_latest_tid(): follow the update chain from tid and return the
 * newest version the scan's snapshot sees (WHERE CURRENT OF, currtid).
 */
void
armdb_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(sscan->rs_rd);
	Snapshot	snapshot = sscan->rs_snapshot;
	ItemPointerData ctid = *tid;
	TransactionId prior_xmax = InvalidTransactionId;

	for (;;)
	{
		uint64		slot;
		ArmdbVersion v;
		bool		visible;

		if (!armdb_slot_of_tid(kd, &ctid, &slot))
			break;
		visible = armdb_version_lookup(kd, slot, snapshot, &v);
		if (v.file_id == 0)
			break;
		/* a broken chain: the slot holds something else now */
		if (TransactionIdIsValid(prior_xmax) &&
			!TransactionIdEquals(prior_xmax, v.xmin))
			break;
		if (visible)
			*tid = ctid;
		if ((v.infomask & HEAP_XMAX_INVALID) ||
			armdb_version_is_only_locked(&v) ||
			v.ctid == ARMDB_CTID_MOVED ||
			armdb_version_ctid_is_self(&v, slot))
			break;
		armdb_slot_to_tid(v.ctid, &ctid);
		prior_xmax = armdb_version_get_update_xid(&v);
	}
}

bool
armdb_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
							   Snapshot snapshot)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion v;
	uint64		slotno;

	if (!armdb_slot_of_tid(kd, &slot->tts_tid, &slotno))
		return false;
	return armdb_version_lookup(kd, slotno, snapshot, &v);
}

/* ----------------
 * ANALYZE: virtual pages are the blocks it samples
 * ----------------
 */

/*
 * Keep ANALYZE from prefetching blocks of the main fork.
 *
 * PostgreSQL 15's acquire_sample_rows() (commands/analyze.c) first asks for
 * the table's size (table_relation_size: armdb_relation_size), then reads
 * the tablespace's maintenance_io_concurrency and, unless that is 0, hands
 * every block it samples to PrefetchBuffer() on the *main fork*, whatever
 * the table AM.  armdb's main fork is empty.  md.c prefetches a block of the
 * first 1 GB segment harmlessly (past the end of the file, for nothing), but
 * refuses a block of a later segment while the first one is short
 * ("previous segment is only 0 blocks"): a table of more than RELSEG_SIZE
 * virtual pages -- ten million rows written by one backend, or far fewer
 * spread thinly over many shards -- could not be analyzed, by hand or by
 * autovacuum.
 *
 * Our size callback is the only code of ours that runs between those two
 * steps, so it turns prefetching off there: when the size of such a table
 * is asked for during a maintenance operation, maintenance_io_concurrency
 * is set to 0 with GUC_ACTION_SAVE, the action of a function's SET clause.
 * do_analyze_rel() runs the sampling under SECURITY_RESTRICTED_OPERATION
 * inside a GUC nest level of its own (NewGUCNestLevel), so the value is
 * restored when its AtEOXact_GUC() closes that level, at the end of this
 * relation's ANALYZE, and at the latest when the transaction ends, committed
 * or not.  GUC_ACTION_SAVE is also the one action set_config_option()
 * accepts in parallel mode.  The same path serves ANALYZE, VACUUM ANALYZE,
 * autovacuum (which calls analyze_rel() directly, past any ProcessUtility
 * hook) and the children of an inheritance tree or partitioned table.
 * Other maintenance operations that ask for our size (a BRIN index build or
 * summarization) only lose prefetching they could not use on armdb anyway.
 *
 * Rejected alternatives: a ProcessUtility hook does not see autovacuum;
 * making the main fork's segments full-length sparse files would make every
 * base backup copy a gigabyte of zeros per segment; reporting a smaller
 * size to ANALYZE would skew reltuples (ANALYZE scales the rows it saw by
 * the block count) and BRIN, which also relies on our size.
 *
 * Tables within the first segment keep the setting: nothing fails there,
 * and it also drives heap's prefetching (say, heap partitions analyzed
 * together with armdb ones).  A tablespace whose own maintenance_io_concurrency
 * option is set overrides the setting; armdb_scan_begin() then refuses the
 * ANALYZE with a hint rather than failing in md.c.
 */
void
armdb_analyze_avoid_prefetch(Relation rel, uint64 npages)
{
	if (npages <= RELSEG_SIZE || maintenance_io_concurrency == 0 ||
		!InSecurityRestrictedOperation())
		return;
	(void) set_config_option("maintenance_io_concurrency", "0",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, ERROR, false);
}

/*
 * At the start of ANALYZE's scan: if armdb_analyze_avoid_prefetch() turned
 * the setting off (or it was off) but rel's tablespace sets its own
 * maintenance_io_concurrency, ANALYZE is about to prefetch past the main
 * fork's first segment, which fails.  Say why, and what to do.
 */
static void
check_analyze_prefetch(Relation rel, ArmdbRelKeydir *kd)
{
	Oid			spcid = rel->rd_rel->reltablespace;

	if (pg_atomic_read_u64(&kd->npages) <= RELSEG_SIZE ||
		maintenance_io_concurrency != 0 ||
		get_tablespace_maintenance_io_concurrency(spcid) == 0)
		return;
	if (!OidIsValid(spcid))
		spcid = MyDatabaseTableSpace;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot analyze armdb table \"%s\" with prefetching set by tablespace \"%s\"",
					RelationGetRelationName(rel), get_tablespace_name(spcid)),
			 errdetail("ANALYZE would prefetch blocks past the first segment of the table's main fork, which armdb leaves empty."),
			 errhint("Reset the tablespace's maintenance_io_concurrency option with ALTER TABLESPACE ... RESET (maintenance_io_concurrency).")));
}

/*
 * The entries of one virtual page were mostly appended together, so they
 * usually lie side by side in one file: read that span with one I/O, as
 * heap reads the page, instead of one read per row.  Entries outside it
 * (or still in the write buffer) are read one by one.
 */
#define SPAN_MAX	(4 * 1024 * 1024)

static void
read_block_span(ArmdbScanDesc scan, BlockNumber blockno)
{
	ArmdbRelKeydir *kd = scan->kd;
	ArmdbPage  *page = armdb_keydir_page(kd, blockno);
	uint32		shard = armdb_slot_shard((uint64) blockno * ARMDB_SLOTS_PER_PAGE,
										 kd->nshards);
	uint32		file_id = 0;
	uint64		from = PG_UINT64_MAX;
	uint64		to = 0;

	scan->span.file_id = 0;
	if (page == NULL)
		return;
	LWLockAcquire(&page->lock, LW_SHARED);
	for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
	{
		ArmdbVersion *v = &page->v[i];

		if (v->file_id == 0)
			continue;
		if (file_id == 0)
			file_id = v->file_id;
		if (v->file_id != file_id)
			continue;
		from = Min(from, v->offset);
		to = Max(to, (uint64) v->offset + v->len);
	}
	LWLockRelease(&page->lock);
	if (file_id == 0 || to - from > SPAN_MAX)
		return;

	armdb_vstore_span_read(&scan->span, kd, shard, file_id, from, to, SPAN_MAX,
						   scan->mcxt, armdb_store_settings());
}

bool
armdb_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							  BufferAccessStrategy bstrategy)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	scan->cblock = blockno;
	scan->coffset = 0;
	read_block_span(scan, blockno);
	return true;
}

/* Store the version of slotno in slot, from the block span if it is there. */
static void
store_sampled_version(ArmdbScanDesc scan, uint64 slotno, const ArmdbVersion *v,
					  TupleTableSlot *slot)
{
	ArmdbLocation loc = {v->file_id, v->offset, v->len};
	char	   *buf = tuple_buffer(scan, v->len);

	if (!armdb_vstore_span_copy(&scan->span, slotno, &loc, buf))
	{
		store_version(scan, scan->base.rs_rd, scan->kd, slotno, v, slot);
		return;
	}
	fill_tuple(&scan->tuple, scan->base.rs_rd, slotno,
			   buf + ARMDB_ENTRY_HEADER_SIZE, v->len - ARMDB_ENTRY_HEADER_SIZE, v);
	ExecStoreHeapTuple(&scan->tuple, slot, false);
}

bool
armdb_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							  double *liverows, double *deadrows,
							  TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	ArmdbPage  *page = armdb_keydir_page(scan->kd, scan->cblock);

	if (page == NULL)
		return false;

	while (scan->coffset < ARMDB_SLOTS_PER_PAGE)
	{
		int			i = scan->coffset++;
		uint64		slotno = (uint64) scan->cblock * ARMDB_SLOTS_PER_PAGE + i;
		ArmdbVersion v;
		bool		sample_it = false;

		LWLockAcquire(&page->lock, LW_SHARED);
		v = page->v[i];
		if (v.file_id == 0)
		{
			LWLockRelease(&page->lock);
			continue;
		}

		/* as heapam_scan_analyze_next_tuple() counts */
		switch (armdb_version_satisfies_vacuum(&page->v[i], OldestXmin))
		{
			case HEAPTUPLE_LIVE:
				sample_it = true;
				*liverows += 1;
				break;
			case HEAPTUPLE_DEAD:
			case HEAPTUPLE_RECENTLY_DEAD:
				*deadrows += 1;
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
				if (TransactionIdIsCurrentTransactionId(v.xmin))
				{
					sample_it = true;
					*liverows += 1;
				}
				break;
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				if (TransactionIdIsCurrentTransactionId(v.xmax))
					*deadrows += 1;
				else
				{
					sample_it = true;
					*liverows += 1;
				}
				break;
		}
		v = page->v[i];
		LWLockRelease(&page->lock);

		if (sample_it)
		{
			store_sampled_version(scan, slotno, &v, slot);
			return true;
		}
	}
	ExecClearTuple(slot);
	return false;
}

/* ----------------
 * TABLESAMPLE, over virtual pages (as heapam_scan_sample_next_*)
 * ----------------
 */
bool
armdb_scan_sample_next_block(TableScanDesc sscan, SampleScanState *scanstate)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber blockno;

	if (scan->cblock == InvalidBlockNumber && scan->nblocks == 0)
		scan->nblocks = (BlockNumber) pg_atomic_read_u64(&scan->kd->npages);
	if (scan->nblocks == 0)
		return false;

	if (tsm->NextSampleBlock)
		blockno = tsm->NextSampleBlock(scanstate, scan->nblocks);
	else if (scan->cblock == InvalidBlockNumber)
		blockno = scan->startblock = 0;
	else
	{
		blockno = scan->cblock + 1;
		if (blockno >= scan->nblocks)
			blockno = InvalidBlockNumber;
	}
	scan->cblock = blockno;
	if (!BlockNumberIsValid(blockno))
	{
		scan->nblocks = 0;
		return false;
	}
	read_block_span(scan, blockno);
	return true;
}

bool
armdb_scan_sample_next_tuple(TableScanDesc sscan, SampleScanState *scanstate,
							 TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;

	for (;;)
	{
		OffsetNumber off;
		uint64		slotno;
		ArmdbVersion v;
		bool		visible;

		CHECK_FOR_INTERRUPTS();
		off = tsm->NextSampleTuple(scanstate, scan->cblock, ARMDB_SLOTS_PER_PAGE);
		if (!OffsetNumberIsValid(off))
		{
			ExecClearTuple(slot);
			return false;
		}
		slotno = (uint64) scan->cblock * ARMDB_SLOTS_PER_PAGE + off - 1;
		visible = armdb_version_lookup(scan->kd, slotno, sscan->rs_snapshot, &v);
		if (v.file_id != 0)
			armdb_check_serializable_out(sscan->rs_rd, &v, visible,
										 sscan->rs_snapshot);
		if (visible)
		{
			store_sampled_version(scan, slotno, &v, slot);
			pgstat_count_heap_getnext(sscan->rs_rd);
			return true;
		}
	}
}
