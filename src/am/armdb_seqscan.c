/*-------------------------------------------------------------------------
 *
 * armdb_seqscan.c
 *	  Sequential scans of armdb tables: serial, parallel and backward.
 *
 * A sequential scan reads the shards' data files front to back in large
 * chunks (the bitcask way: sequential I/O, no random reads), and returns an
 * entry when the keydir still points at it and its version is visible to
 * the snapshot.  A serial scan merges the shards by gsn, so rows come back
 * in the order they were written, as from heap.  The version store's
 * cursor (vstore.h) reads a shard's files and a copy of what was still only
 * in its write buffer when the cursor started, so it sees everything
 * appended so far (this transaction's own rows included) without writing;
 * what is appended later is not visible to the scan's snapshot anyway.
 *
 * A parallel scan's participants take the virtual pages instead, a chunk
 * at a time as heap's take blocks, and read each as a bitmap heap scan
 * reads a lossy page (armdb_scan_judge_page): every version of the page
 * judged under its lock, the visible ones read with one I/O where they lie
 * together.  Handing out shards, as it did before, left a table written by
 * one backend -- all of its rows in one shard -- to one participant.
 *
 * A serial scan reads pages the same way when the files are mostly bytes
 * no snapshot needs (choose_mode()): a small table updated thousands of
 * times a second -- pgbench's branches and tellers -- has a few live rows
 * and megabytes of old versions in its active file, which compaction
 * cannot merge until the file is sealed; reading them all for each scan
 * cost more than heap's one pruned page by orders of magnitude.  Its rows
 * then come in slot order rather than in the order they were written.
 *
 * The scan descriptor (ArmdbScanDescData, armdb_am.h) also serves ANALYZE
 * and TABLESAMPLE, whose block-at-a-time callbacks are armdb_analyze.c's;
 * reading single versions is armdb_fetch.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "lib/binaryheap.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/predicate.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_guc.h"
#include "keydir/files.h"
#include "keydir/visibility.h"
#include "storage/cipher.h"

typedef struct ArmdbParallelScanDescData
{
	ParallelTableScanDescData base;
	uint64		npages;			/* virtual pages when the scan started: a
								 * version the snapshot sees is on one */
	pg_atomic_uint64 next_page; /* the first page no participant took */
} ArmdbParallelScanDescData;

/* pages a participant of a parallel scan takes at a time */
#define PARALLEL_CHUNK_PAGES	8

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
	 * in order, so most entries find their page here -- unless updates and
	 * slot reuse scattered them: entries whose pages change from one to the
	 * next are judged one by one (entry_visible).
	 */
	uint64		vis_page;		/* PG_UINT64_MAX: none */
	ArmdbVersion *vis_copy;		/* [ARMDB_SLOTS_PER_PAGE] */
	ArmdbVersionExtra *vis_extra;	/* ... their command ids and ctids */
	bool	   *vis;			/* [ARMDB_SLOTS_PER_PAGE] */
	uint32		vis_uses;		/* entries that used vis_page so far */
	uint64		run_page;		/* the page of the last entries judged one
								 * by one, and how many in a row */
	uint32		run_len;
} ShardCursor;

/*
 * Judging a whole page costs about as much as judging its 291 versions one
 * by one: it pays when the entries that follow are on that page.  A cursor
 * judges whole pages while its entries come page after page (the last page
 * served at least PAGE_JUDGE_USES of them), otherwise one version at a
 * time until PAGE_JUDGE_RUN entries in a row are on one page.
 */
#define PAGE_JUDGE_USES		16
#define PAGE_JUDGE_RUN		4

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
		armdb_check_analyze_prefetch(rel, scan->kd);
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
		if (scan->cursors[i].vis_extra)
			pfree(scan->cursors[i].vis_extra);
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

/* Forget the file lists (a rescan is a new scan). */
static void
free_file_lists(ArmdbScanDesc scan)
{
	if (scan->file_lists == NULL)
		return;
	for (uint32 i = 0; i < scan->kd->nshards; i++)
		if (scan->file_lists[i])
			pfree(scan->file_lists[i]);
	pfree(scan->file_lists);
	pfree(scan->file_counts);
	scan->file_lists = NULL;
	scan->file_counts = NULL;
}

static void
scan_reset(ArmdbScanDesc scan)
{
	free_cursors(scan);
	free_file_lists(scan);
	if (scan->history)
		pfree(scan->history);
	scan->history = NULL;
	scan->hist_len = scan->hist_cap = 0;
	scan->hist_pos = -1;
	scan->nreturned = 0;
	scan->merge_done = false;
	scan->par_next = scan->par_end = 0;
	scan->bm_count = scan->bm_pos = 0;
	scan->cblock = InvalidBlockNumber;
	scan->coffset = 0;
	scan->tr_started = false;
	scan->mode_chosen = false;
	scan->page_mode = false;
}

void
armdb_scan_rescan(TableScanDesc sscan, ScanKey key, bool set_params,
				  bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	if (key != NULL && sscan->rs_nkeys > 0)
		memcpy(sscan->rs_key, key, sscan->rs_nkeys * sizeof(ScanKeyData));
	scan_reset(scan);
	armdb_bitmap_ahead_free(scan);	/* before the executor frees its bitmap */
	if (sscan->rs_flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(sscan->rs_rd);
}

void
armdb_scan_end(TableScanDesc sscan)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	free_cursors(scan);
	free_file_lists(scan);
	armdb_vstore_span_free(&scan->span);
	armdb_bitmap_ahead_free(scan);
	if (scan->tuple_buf)
		pfree(scan->tuple_buf);
	if (scan->bm_versions)
		pfree(scan->bm_versions);
	if (scan->bm_extras)
		pfree(scan->bm_extras);
	if (scan->bm_slots)
		pfree(scan->bm_slots);
	if (scan->history)
		pfree(scan->history);
	RelationDecrementReferenceCount(sscan->rs_rd);
	if (sscan->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(sscan->rs_snapshot);
	pfree(scan);
}

/*
 * Start a cursor on a shard, with nothing of its pages judged yet.  The
 * files it reads are fixed at the scan's first start on the shard, so that
 * a replay (backward scans) reads the same ones.
 */
static void
cursor_start(ArmdbScanDesc scan, ShardCursor *cur, uint32 shard)
{
	if (scan->file_lists == NULL)
	{
		scan->file_lists = MemoryContextAllocZero(scan->mcxt,
												  sizeof(uint32 *) * scan->kd->nshards);
		scan->file_counts = MemoryContextAllocZero(scan->mcxt,
												   sizeof(int) * scan->kd->nshards);
	}
	armdb_vstore_cursor_start(&cur->sc, scan->kd, shard, scan->mcxt,
							  armdb_store_settings(), scan->file_lists[shard],
							  scan->file_counts[shard]);
	if (scan->file_lists[shard] == NULL)
	{
		scan->file_lists[shard] = MemoryContextAlloc(scan->mcxt,
													 sizeof(uint32) * (cur->sc.nfids + 1));
		memcpy(scan->file_lists[shard], cur->sc.fids,
			   sizeof(uint32) * cur->sc.nfids);
		scan->file_counts[shard] = cur->sc.nfids;
	}
	cur->vis_page = PG_UINT64_MAX;
	cur->vis_uses = 0;
	cur->run_page = PG_UINT64_MAX;
	cur->run_len = 0;
}

/*
 * Is the version record v (found elsewhere than the entry under cur) the
 * entry's own version, moved by a merge to a file this cursor does not
 * read?  Then the cursor returns it here, or never.  A slot holds one
 * version at a time, and a reused slot's version has another xmin than
 * the version it replaced (VACUUM frees a slot only after the transaction
 * that ended its version finished), so the same xmin means the same
 * version.
 */
static bool
entry_moved(const ShardCursor *cur, const ArmdbEntryHeader *hdr,
			const ArmdbVersion *v, const ArmdbVersionExtra *x)
{
	return v->file_id != 0 && x->len == armdb_entry_size(hdr->gsn, hdr->value_len) &&
		v->xmin == XidFromFullTransactionId(FullTransactionIdFromU64(hdr->xid)) &&
		!armdb_vstore_cursor_reads_file(&cur->sc, v->file_id);
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
	uint32		nshards = scan->kd->nshards;

	if (!scan->started)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);

		scan->started = true;
		scan->ncursors = (int) nshards;
		scan->cursors = palloc0(sizeof(ShardCursor) * scan->ncursors);
		scan->merge = binaryheap_allocate(scan->ncursors, cursor_cmp, NULL);
		for (uint32 i = 0; i < nshards; i++)
		{
			cursor_start(scan, &scan->cursors[i], i);
			if (armdb_vstore_cursor_peek(&scan->cursors[i].sc))
				binaryheap_add_unordered(scan->merge,
										 PointerGetDatum(&scan->cursors[i]));
		}
		binaryheap_build(scan->merge);
		MemoryContextSwitchTo(oldcontext);
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
			  ArmdbVersion *v, ArmdbVersionExtra *x)
{
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		pageno = slot / ARMDB_SLOTS_PER_PAGE;
	int			i = slot % ARMDB_SLOTS_PER_PAGE;

	if (!IsMVCCSnapshot(snapshot))
		return armdb_version_lookup(scan->kd, slot, snapshot, v, x);
	if (cur->vis_page != pageno)
	{
		if (cur->run_page == pageno)
			cur->run_len++;
		else
		{
			cur->run_page = pageno;
			cur->run_len = 1;
		}
		if (cur->vis_uses < PAGE_JUDGE_USES && cur->run_len < PAGE_JUDGE_RUN)
		{
			/* scattered entries: this one's version alone */
			ArmdbPage  *page = armdb_keydir_page(scan->kd, pageno);
			bool		visible;

			if (page == NULL)
			{
				memset(v, 0, sizeof(*v));
				memset(x, 0, sizeof(*x));
				return false;
			}
			LWLockAcquire(&page->lock, LW_SHARED);
			visible = page->v[i].file_id != 0 &&
				armdb_version_satisfies(&page->v[i], slot, snapshot);
			*v = page->v[i];
			*x = armdb_version_extra_values(&page->v[i], slot);
			LWLockRelease(&page->lock);
			return visible;
		}
	}
	if (cur->vis_page != pageno)
	{
		ArmdbPage  *page = armdb_keydir_page(scan->kd, pageno);

		if (cur->vis_copy == NULL)
		{
			cur->vis_copy = MemoryContextAlloc(scan->mcxt,
											   sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
			cur->vis_extra = MemoryContextAlloc(scan->mcxt,
												sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE);
			cur->vis = MemoryContextAlloc(scan->mcxt,
										  sizeof(bool) * ARMDB_SLOTS_PER_PAGE);
		}
		if (page == NULL)
		{
			memset(cur->vis_copy, 0, sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE);
			memset(cur->vis_extra, 0, sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE);
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
				cur->vis_extra[j] = armdb_version_extra_values(pv, first + j);
			}
			LWLockRelease(&page->lock);
		}
		cur->vis_page = pageno;
		cur->vis_uses = 0;
	}
	cur->vis_uses++;
	*v = cur->vis_copy[i];
	*x = cur->vis_extra[i];
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
		ArmdbVersionExtra x;
		bool		visible = false;

		if (armdb_gsn_is_version(hdr->gsn))
		{
			visible = entry_visible(scan, cur, hdr->slot, &v, &x);
			if ((v.file_id != cur->sc.file_id || v.offset != cur->sc.pos) &&
				!entry_moved(cur, hdr, &v, &x))
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
				/* room for the fields a shortened image leaves out */
				uint32		skip = ARMDB_TUPLE_OMITTED(hdr->gsn);
				bool		encrypted = (hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED) != 0;
				uint32		len = hdr->value_len -
					(encrypted ? ARMDB_CIPHER_TAG_LEN : 0);
				char	   *buf = armdb_scan_tuple_buffer(scan, skip + len);
				ArmdbLocation loc;
				ArmdbError	err;

				loc.file_id = cur->sc.file_id;
				loc.offset = (uint32) cur->sc.pos;
				loc.len = (uint32) armdb_entry_size(hdr->gsn, hdr->value_len);
				/*
				 * only the rows a scan returns are decrypted, unless the
				 * cursor has them opened already (vstore/decrypted.h)
				 */
				if (encrypted && !cur->sc.opened ?
					!armdb_shard_decrypt_value(cur->sc.files, &loc, hdr,
											   cur->sc.entry, buf + skip, &err) :
					!armdb_shard_check_plain(cur->sc.files, &loc, hdr, &err))
					armdb_report_storage_error(ERROR, &err);
				if (!encrypted || cur->sc.opened)
					memcpy(buf + skip,
						   cur->sc.entry + armdb_entry_header_size(hdr->gsn),
						   len);
				armdb_fill_tuple(&scan->tuple, rel, hdr->slot, buf,
								 skip + len, &v, &x);
				pgstat_count_heap_getnext(rel);
			}
			armdb_vstore_cursor_advance(&cur->sc);
			return true;
		}
		armdb_vstore_cursor_advance(&cur->sc);
	}
	return false;
}

/*
 * The next visible version of a parallel scan into slot: from the page
 * last judged, else from the next page this participant takes.
 */
static bool
parallel_next(ArmdbScanDesc scan, TupleTableSlot *slot)
{
	ArmdbParallelScanDescData *ppscan =
		(ArmdbParallelScanDescData *) scan->base.rs_parallel;

	while (scan->bm_pos >= scan->bm_count)
	{
		CHECK_FOR_INTERRUPTS();
		if (scan->par_next >= scan->par_end)
		{
			uint64		first;

			first = pg_atomic_fetch_add_u64(&ppscan->next_page,
											PARALLEL_CHUNK_PAGES);
			if (first >= ppscan->npages || first > MaxBlockNumber)
			{
				ExecClearTuple(slot);
				return false;
			}
			scan->par_next = first;
			scan->par_end = Min(first + PARALLEL_CHUNK_PAGES, ppscan->npages);
		}
		(void) armdb_scan_judge_page(scan, (BlockNumber) scan->par_next++);
	}
	armdb_scan_store_version(scan, scan->bm_slots[scan->bm_pos],
							 &scan->bm_versions[scan->bm_pos],
							 &scan->bm_extras[scan->bm_pos], slot);
	scan->bm_pos++;
	pgstat_count_heap_getnext(scan->base.rs_rd);
	return true;
}

/*
 * What a serial scan costs either way, in bytes of file read (a
 * sequential read takes about a nanosecond a byte): judging a version
 * record under its page's lock is worth about 32 bytes, reading a visible
 * version on its own about 1 kB (a system call; versions that lie
 * together on a page are read with one).
 */
#define PAGE_MODE_JUDGE_BYTES	32
#define PAGE_MODE_READ_BYTES	1024
/* files smaller than this are read as files: rows come in written order */
#define PAGE_MODE_MIN_FILE_BYTES	(1024 * 1024)

/*
 * Files or pages for a serial scan?  Pages when the files hold more than
 * twice the bytes that reading the visible versions by page would cost:
 * every version record judged, and the rows the last VACUUM or ANALYZE
 * counted (reltuples) read.  Only for MVCC snapshots and plain sequential
 * scans (not ANALYZE, TABLESAMPLE or TID ranges, which have their own).
 */
static void
choose_mode(ArmdbScanDesc scan)
{
	Relation	rel = scan->base.rs_rd;
	ArmdbRelKeydir *kd = scan->kd;
	uint64		file_bytes = 0;
	uint64		nversions;
	uint64		npages;
	double		visible;

	scan->mode_chosen = true;
	scan->page_mode = false;
	if (!(scan->base.rs_flags & SO_TYPE_SEQSCAN) ||
		!IsMVCCSnapshot(scan->base.rs_snapshot))
		return;
	npages = pg_atomic_read_u64(&kd->npages);
	if (!armdb_debug_seqscan_pages)
	{
		for (uint32 i = 0; i < kd->nshards; i++)
		{
			ArmdbShardRt *rt = armdb_keydir_shard(kd, i);

			LWLockAcquire(&rt->lock, LW_SHARED);
			file_bytes += armdb_files_bytes(rt);
			LWLockRelease(&rt->lock);
		}
		if (file_bytes < PAGE_MODE_MIN_FILE_BYTES)
			return;
		nversions = pg_atomic_read_u64(&kd->nversions);
		visible = rel->rd_rel->reltuples >= 0 ?
			Min((double) rel->rd_rel->reltuples, (double) nversions) :
			(double) nversions;
		if ((double) file_bytes <=
			2.0 * ((double) nversions * PAGE_MODE_JUDGE_BYTES +
				   visible * PAGE_MODE_READ_BYTES))
			return;
	}
	elog(DEBUG1, "armdb: sequential scan of \"%s\" reads its virtual pages, not its files",
		 RelationGetRelationName(rel));
	scan->page_mode = true;
	scan->par_next = 0;
	scan->par_end = Min(npages, (uint64) MaxBlockNumber + 1);
	scan->bm_count = scan->bm_pos = 0;
}

/*
 * The next visible version of a serial scan reading pages: its slot in
 * *slotno and, unless replay, its tuple in slot.
 */
static bool
page_next(ArmdbScanDesc scan, bool replay, uint64 *slotno,
		  TupleTableSlot *slot)
{
	while (scan->bm_pos >= scan->bm_count)
	{
		CHECK_FOR_INTERRUPTS();
		if (scan->par_next >= scan->par_end)
			return false;
		(void) armdb_scan_judge_page(scan, (BlockNumber) scan->par_next++);
	}
	*slotno = scan->bm_slots[scan->bm_pos];
	if (!replay)
	{
		armdb_scan_store_version(scan, *slotno, &scan->bm_versions[scan->bm_pos],
								 &scan->bm_extras[scan->bm_pos], slot);
		pgstat_count_heap_getnext(scan->base.rs_rd);
	}
	scan->bm_pos++;
	return true;
}

/*
 * The next visible version of a serial scan, from its files or its pages:
 * its slot in *slotno and, unless replay, its tuple in slot.
 */
static bool
serial_next(ArmdbScanDesc scan, bool replay, uint64 *slotno,
			TupleTableSlot *slot)
{
	if (!scan->mode_chosen)
		choose_mode(scan);
	if (scan->page_mode)
		return page_next(scan, replay, slotno, slot);
	if (!merge_next(scan, replay, slotno))
		return false;
	if (!replay)
		ExecStoreHeapTuple(&scan->tuple, slot, false);
	return true;
}

/* Back to the start of a serial scan, in the mode it chose. */
static void
serial_restart(ArmdbScanDesc scan)
{
	free_cursors(scan);
	if (scan->page_mode)
	{
		scan->par_next = 0;
		scan->bm_count = scan->bm_pos = 0;
	}
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

	serial_restart(scan);
	scan->hist_cap = 1024;
	scan->history = MemoryContextAllocHuge(scan->mcxt,
										   sizeof(uint64) * scan->hist_cap);
	scan->hist_len = 0;
	while ((to_end || (uint64) scan->hist_len < n) &&
		   serial_next(scan, true, &slotno, NULL))
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
	ArmdbVersionExtra x;
	char	   *buf;

	if (!armdb_version_lookup(scan->kd, slotno, scan->base.rs_snapshot, &v, &x))
		elog(ERROR, "armdb: row version in slot " UINT64_FORMAT " vanished under a scan's snapshot",
			 slotno);
	buf = armdb_scan_tuple_buffer(scan, x.len);
	armdb_read_version_tuple(rel, scan->kd, slotno, &v, &x, buf, &scan->tuple);
	pgstat_count_heap_getnext(rel);
	ExecStoreHeapTuple(&scan->tuple, slot, false);
}

bool
armdb_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
					   TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	uint64		slotno;

	if (sscan->rs_parallel != NULL)
	{
		if (ScanDirectionIsBackward(direction))
			elog(ERROR, "armdb: parallel scans cannot go backward");
		return parallel_next(scan, slot);
	}
	if (ScanDirectionIsBackward(direction))
	{
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
	if (!scan->merge_done && serial_next(scan, false, &slotno, slot))
	{
		scan->nreturned++;
		if (scan->history != NULL)
		{
			history_append(scan, slotno);
			scan->hist_pos = scan->hist_len - 1;
		}
		return true;
	}
	scan->merge_done = true;
	if (scan->history != NULL)
		scan->hist_pos = scan->hist_len;
	ExecClearTuple(slot);
	return false;
}

/* ----------------
 * Parallel scans: virtual pages are the unit of work
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
	ppscan->npages = pg_atomic_read_u64(&armdb_rel_keydir(rel)->npages);
	pg_atomic_init_u64(&ppscan->next_page, 0);
	return sizeof(ArmdbParallelScanDescData);
}

void
armdb_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	ArmdbParallelScanDescData *ppscan = (ArmdbParallelScanDescData *) pscan;

	/* a rescan may see this transaction's newer rows */
	ppscan->npages = pg_atomic_read_u64(&armdb_rel_keydir(rel)->npages);
	pg_atomic_write_u64(&ppscan->next_page, 0);
}

/* ----------------
 * TID range scans
 * ----------------
 *
 * A TID names a slot (block = slot / ARMDB_SLOTS_PER_PAGE, offset = the
 * rest + 1), so a range of TIDs is a range of slots, looked up one by one
 * in the keydir in TID order, forward or backward, as heap returns them.
 * Pages the keydir never had are skipped whole; a page's entries are read
 * with one I/O when the scan enters it (armdb_scan_read_block_span), as
 * heap reads the page.  For serializable
 * transactions each version looked at is checked for a conflict out and
 * each row returned is predicate-locked, as an index fetch does.
 */

/* The first slot at or after tid. */
static uint64
slot_at_or_after(ItemPointer tid)
{
	uint64		block = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off > ARMDB_SLOTS_PER_PAGE)
		return (block + 1) * ARMDB_SLOTS_PER_PAGE;
	return block * ARMDB_SLOTS_PER_PAGE + Max(off, FirstOffsetNumber) - 1;
}

/* One past the last slot at or before tid. */
static uint64
slot_end_at_or_before(ItemPointer tid)
{
	uint64		block = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	return block * ARMDB_SLOTS_PER_PAGE + Min(off, ARMDB_SLOTS_PER_PAGE);
}

void
armdb_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid,
						ItemPointer maxtid)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	uint64		nslots = pg_atomic_read_u64(&scan->kd->npages) * ARMDB_SLOTS_PER_PAGE;

	scan->tr_first = slot_at_or_after(mintid);
	scan->tr_end = Min(slot_end_at_or_before(maxtid), nslots);
	if (scan->tr_end < scan->tr_first)
		scan->tr_end = scan->tr_first;	/* empty */
	scan->tr_started = false;
}

bool
armdb_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
								TupleTableSlot *slot)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;
	Relation	rel = sscan->rs_rd;
	Snapshot	snapshot = sscan->rs_snapshot;
	int			step = ScanDirectionIsBackward(direction) ? -1 : 1;

	if (!scan->tr_started)
	{
		scan->tr_pos = step > 0 ? (int64) scan->tr_first - 1 : (int64) scan->tr_end;
		scan->tr_started = true;
	}
	for (;;)
	{
		int64		pos = scan->tr_pos + step;
		ArmdbVersion v;
		ArmdbVersionExtra x;
		bool		visible;

		if (pos < (int64) scan->tr_first || pos >= (int64) scan->tr_end)
		{
			/* past either end: stay there, so that a turn starts over */
			scan->tr_pos = step > 0 ? (int64) scan->tr_end : (int64) scan->tr_first - 1;
			ExecClearTuple(slot);
			return false;
		}
		scan->tr_pos = pos;
		if (armdb_keydir_page(scan->kd, pos / ARMDB_SLOTS_PER_PAGE) == NULL)
		{
			/* a page never used: to its last (or first) slot */
			int64		first = pos - pos % ARMDB_SLOTS_PER_PAGE;

			scan->tr_pos = step > 0 ? first + ARMDB_SLOTS_PER_PAGE - 1 : first;
			continue;
		}
		CHECK_FOR_INTERRUPTS();
		visible = armdb_version_lookup_ssi(rel, scan->kd, (uint64) pos,
										   snapshot, &v, &x);
		if (!visible)
			continue;
		/* the page's entries with one read when it is entered */
		if (scan->cblock != (BlockNumber) (pos / ARMDB_SLOTS_PER_PAGE))
		{
			scan->cblock = (BlockNumber) (pos / ARMDB_SLOTS_PER_PAGE);
			armdb_scan_read_block_span(scan, scan->cblock);
		}
		armdb_scan_store_version(scan, (uint64) pos, &v, &x, slot);
		pgstat_count_heap_getnext(rel);
		return true;
	}
}
