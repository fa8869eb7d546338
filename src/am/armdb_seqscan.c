/*-------------------------------------------------------------------------
 *
 * armdb_seqscan.c
 *	  Sequential scans of armdb tables: serial, parallel and backward.
 *
 * A sequential scan reads the shards' data files front to back in large
 * chunks (the bitcask way: sequential I/O, no random reads), and returns an
 * entry when the keydir still points at it and its version is visible to
 * the snapshot.  A serial scan merges the shards by gsn, so rows come back
 * in the order they were written, as from heap.  Before it reads a shard
 * it copies what the shard's write buffer holds beyond the files, so it
 * sees everything appended so far (this transaction's own rows included)
 * without writing (cursor_start); what is appended later is not visible to
 * the scan's snapshot anyway.  A parallel scan hands out whole shards.
 *
 * The scan descriptor (ArmdbScanDescData, armdb_am.h) also serves ANALYZE
 * and TABLESAMPLE, whose block-at-a-time callbacks are armdb_analyze.c's;
 * reading single versions is armdb_fetch.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/heapam.h"
#include "lib/binaryheap.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/predicate.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/files.h"
#include "keydir/visibility.h"
#include "storage/merge.h"
#include "storage/recovery.h"

/* read size of a shard's files; a serial scan reads all shards at once */
#define SCAN_CHUNK_SIZE		(256 * 1024)

typedef struct ArmdbParallelScanDescData
{
	ParallelTableScanDescData base;
	pg_atomic_uint32 next_shard;
} ArmdbParallelScanDescData;

/*
 * Reading one shard's data files front to back, one entry at a time.
 */
typedef struct ShardCursor
{
	uint32		shard;
	ArmdbShardFiles *files;
	const uint32 *fids;			/* the shard's files (scan->file_lists) */
	int			nfids;
	int			fidx;			/* index of file_id in fids; -1 before */
	uint32		file_id;		/* current data file; 0 before the first */
	uint32		last_file_id;	/* the shard's newest file at cursor start */
	uint64		last_end;		/* its end at cursor start */
	uint64		file_end;		/* end of the current file's entries */
	uint64		pos;			/* the current entry */
	ArmdbAlignedBuf chunk;
	uint64		chunk_off;
	size_t		chunk_len;
	uint64		avail_end;		/* bytes from the last cursor_bytes() are
								 * good up to this offset */

	/*
	 * The newest file's bytes [tail_start, last_end) that were still only in
	 * the shard's write buffer at cursor start, copied: a scan never writes
	 * (a full disk must not break reads), so it reads them from here.
	 */
	char	   *tail;			/* NULL: none */
	uint64		tail_start;

	bool		valid;			/* hdr/entry describe the entry at pos */
	ArmdbEntryHeader hdr;
	char	   *entry;			/* in chunk or tail */

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
		armdb_aligned_free(&scan->cursors[i].chunk);
		if (scan->cursors[i].tail)
			pfree(scan->cursors[i].tail);
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
	free_file_lists(scan);
	armdb_aligned_free(&scan->span);
	if (scan->tuple_buf)
		pfree(scan->tuple_buf);
	if (scan->history)
		pfree(scan->history);
	RelationDecrementReferenceCount(sscan->rs_rd);
	if (sscan->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(sscan->rs_snapshot);
	pfree(scan);
}

/*
 * The shard's files for this scan, part 1, under the shard lock: the
 * files of the shard's list (keydir/files.h).  A merge's outputs join that
 * list only once every location has moved to them, at the moment its
 * inputs leave it, so a scan reads either the inputs or the outputs of a
 * merge, never both.  Outputs are numbered above the active file of their
 * time, so the active file need not be the last one read.
 */
static void
capture_file_list(ArmdbScanDesc scan, ArmdbShardRt *rt, uint32 shard)
{
	MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);
	ArmdbFileStat *fs;
	int			n;
	uint32	   *ids;
	int			nids = 0;

	if (scan->file_lists == NULL)
	{
		scan->file_lists = palloc0(sizeof(uint32 *) * scan->kd->nshards);
		scan->file_counts = palloc0(sizeof(int) * scan->kd->nshards);
	}
	fs = armdb_files_copy(rt, &n);
	ids = palloc(sizeof(uint32) * (n + 1));
	for (int i = 0; i < n; i++)
		ids[nids++] = fs[i].file_id;	/* outputs may follow the active */
	pfree(fs);
	scan->file_lists[shard] = ids;
	scan->file_counts[shard] = nids;
	MemoryContextSwitchTo(oldcontext);
}

static int
cmp_file_ids(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

/*
 * Part 2, without the lock: files the shard started since its list was
 * last brought up to date (rotations), up to the cursor's last file.  A
 * merge output met there has not joined the list yet: it is left out.
 */
static void
complete_file_list(ArmdbScanDesc scan, ShardCursor *cur, uint32 shard)
{
	uint32	   *ids = scan->file_lists[shard];
	int			n = scan->file_counts[shard];
	uint32		from = 1;

	/* above the highest appended (not merged) file the list knows */
	for (int i = 0; i < n; i++)
		if (ids[i] <= cur->last_file_id)
			from = ids[i] + 1;
	for (uint32 id = from; cur->last_file_id != 0 && id <= cur->last_file_id; id++)
	{
		ArmdbError	err;
		bool		merged = false;
		char		path[MAXPGPATH];

		armdb_file_path(path, cur->files->dir, id, ARMDB_FILE_DATA);
		if (access(path, F_OK) != 0)
			continue;
		if (id != cur->last_file_id &&
			!armdb_data_file_is_merged(cur->files->dir, id, &merged, &err))
			armdb_report_storage_error(ERROR, &err);
		if (merged)
			continue;
		ids = repalloc(ids, sizeof(uint32) * (n + 1));
		ids[n++] = id;
	}
	qsort(ids, n, sizeof(uint32), cmp_file_ids);
	scan->file_lists[shard] = ids;
	scan->file_counts[shard] = n;
	cur->fids = ids;
	cur->nfids = n;
}

/* Is file_id one of the files the cursor reads? */
static bool
cursor_reads_file(const ShardCursor *cur, uint32 file_id)
{
	for (int i = 0; i < cur->nfids; i++)
		if (cur->fids[i] == file_id)
			return true;
	return false;
}

/*
 * Start a cursor on a shard: fix where it ends, and copy what of that is
 * still only in the shard's write buffer.  Writing the buffer out instead
 * would make every scan fail while the disk is full (design §5a: a full
 * disk fails writes, never reads).
 */
static void
cursor_start(ArmdbScanDesc scan, ShardCursor *cur, uint32 shard)
{
	ArmdbShardRt *rt = armdb_keydir_shard(scan->kd, shard);

	cur->shard = shard;
	cur->files = armdb_keydir_shard_files(scan->kd, shard);
	cur->fidx = -1;
	cur->file_id = 0;
	cur->valid = false;
	cur->vis_page = PG_UINT64_MAX;
	cur->chunk_len = 0;
	cur->tail = NULL;

	for (;;)
	{
		/* buf_size is set once, with the buffer: allocate outside the lock */
		Size		cap = rt->st.buf_size;
		char	   *tail = cap > 0 ? MemoryContextAlloc(scan->mcxt, cap) : NULL;
		uint64		tail_len = 0;

		LWLockAcquire(&rt->lock, LW_SHARED);
		if (scan->file_lists == NULL || scan->file_lists[shard] == NULL)
			capture_file_list(scan, rt, shard);
		cur->last_file_id = rt->st.active_file_id;
		cur->last_end = rt->st.append_end;
		cur->tail_start = rt->st.written_end;
		if (cur->last_file_id != 0)
			tail_len = rt->st.append_end - rt->st.written_end;
		if (tail_len > cap)
		{
			/* the buffer appeared meanwhile */
			LWLockRelease(&rt->lock);
			if (tail)
				pfree(tail);
			continue;
		}
		if (tail_len > 0)
			memcpy(tail, rt->st.buf + (rt->st.written_end - rt->st.buf_start),
				   tail_len);
		LWLockRelease(&rt->lock);
		if (tail_len > 0)
			cur->tail = tail;
		else if (tail)
			pfree(tail);
		complete_file_list(scan, cur, shard);
		return;
	}
}

/* Move to the next data file of the shard; false at the shard's end. */
static bool
cursor_next_file(ShardCursor *cur)
{
	ArmdbError	err;
	uint64		size;
	int			fd;

	if (cur->fidx + 1 >= cur->nfids)
		return false;
	cur->file_id = cur->fids[++cur->fidx];
	cur->pos = ARMDB_FILE_HEADER_SIZE;
	cur->chunk_len = 0;
	cur->chunk_off = 0;
	if (cur->file_id == cur->last_file_id)
	{
		cur->file_end = cur->last_end;
		return true;
	}
	fd = armdb_shard_file_fd(cur->files, cur->file_id, &err);
	if (fd < 0 || !armdb_file_size(fd, cur->files->dir, &size, &err))
		armdb_report_storage_error(ERROR, &err);
	cur->file_end = size;
	return true;
}

/* Make [pos, pos + need) of the current file available in the chunk. */
static char *
cursor_bytes(ArmdbScanDesc scan, ShardCursor *cur, uint64 need)
{
	ArmdbError	err;
	uint64		from;
	size_t		want;
	int			fd;

	/* in the newest file, the bytes from tail_start on are in the copy */
	if (cur->tail != NULL && cur->file_id == cur->last_file_id &&
		cur->pos >= cur->tail_start)
	{
		cur->avail_end = cur->last_end;
		if (cur->pos + need > cur->last_end)
			return NULL;
		return cur->tail + (cur->pos - cur->tail_start);
	}

	if (cur->pos >= cur->chunk_off &&
		cur->pos + need <= cur->chunk_off + cur->chunk_len)
	{
		cur->avail_end = cur->chunk_off + cur->chunk_len;
		return cur->chunk.data + (cur->pos - cur->chunk_off);
	}

	from = TYPEALIGN_DOWN(ARMDB_BLOCK_SIZE, cur->pos);
	want = Max(SCAN_CHUNK_SIZE, TYPEALIGN(ARMDB_BLOCK_SIZE, cur->pos - from + need));
	if (cur->chunk.size < want)
	{
		/* the scan's memory: callers reset their own between tuples */
		MemoryContext oldcontext = MemoryContextSwitchTo(scan->mcxt);
		bool		ok;

		armdb_aligned_free(&cur->chunk);
		ok = armdb_aligned_alloc(&cur->chunk, want, &err);
		MemoryContextSwitchTo(oldcontext);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
	}
	fd = armdb_shard_file_fd(cur->files, cur->file_id, &err);
	if (fd < 0 ||
		!armdb_io_pread(cur->files->io, fd, cur->chunk.data, cur->chunk.size,
						from, &cur->chunk_len, &err))
		armdb_report_storage_error(ERROR, &err);
	cur->chunk_off = from;
	cur->avail_end = cur->chunk_off + cur->chunk_len;
	if (cur->pos + need > cur->chunk_off + cur->chunk_len)
		return NULL;
	return cur->chunk.data + (cur->pos - cur->chunk_off);
}

/*
 * Position the cursor on its next entry (at pos or in a later file):
 * true with cur->hdr and cur->entry set, false at the shard's end.
 */
static bool
cursor_peek(ArmdbScanDesc scan, ShardCursor *cur)
{
	for (;;)
	{
		ArmdbParseResult res;
		uint64		entry_len;
		char	   *p;

		CHECK_FOR_INTERRUPTS();
		if (cur->file_id == 0 || cur->pos >= cur->file_end)
		{
			if (!cursor_next_file(cur))
				return cur->valid = false;
			continue;
		}

		p = cursor_bytes(scan, cur, Min(ARMDB_ENTRY_HEADER_SIZE, cur->file_end - cur->pos));
		res = p == NULL ? ARMDB_PARSE_SHORT :
			armdb_entry_parse(p, Min(cur->avail_end, cur->file_end) - cur->pos,
							  &cur->hdr);
		if (res == ARMDB_PARSE_SHORT && p != NULL &&
			cur->file_end - cur->pos >= ARMDB_ENTRY_HEADER_SIZE &&
			cur->hdr.value_len <= ARMDB_MAX_VALUE_LEN)
		{
			entry_len = armdb_entry_size(cur->hdr.value_len);
			if (cur->pos + entry_len <= cur->file_end &&
				(p = cursor_bytes(scan, cur, entry_len)) != NULL)
				res = armdb_entry_parse(p, entry_len, &cur->hdr);
		}
		if (res == ARMDB_PARSE_ZERO ||
			(res == ARMDB_PARSE_SHORT && cur->file_id != cur->last_file_id &&
			 cur->file_end - cur->pos < ARMDB_BLOCK_SIZE))
		{
			/* zero padding at the end of an older file */
			cur->pos = cur->file_end;
			continue;
		}
		if (res != ARMDB_PARSE_OK &&
			armdb_keydir_shard(scan->kd, cur->shard)->damaged)
		{
			/* damage a salvage skipped: on to the next good entry */
			ArmdbError	err;
			uint64		next;
			int			fd = armdb_shard_file_fd(cur->files, cur->file_id, &err);

			if (fd < 0 ||
				!armdb_find_next_entry(cur->files->io, fd, cur->pos,
									   cur->file_end, &next, &err))
				armdb_report_storage_error(ERROR, &err);
			cur->pos = next != 0 ? next : cur->file_end;
			cur->chunk_len = 0;
			continue;
		}
		if (res != ARMDB_PARSE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb: entry at offset %llu of data file %06u in \"%s\" is corrupted",
							(unsigned long long) cur->pos, cur->file_id,
							cur->files->dir)));
		cur->entry = p;
		return cur->valid = true;
	}
}

static void
cursor_advance(ShardCursor *cur)
{
	cur->pos += armdb_entry_size(cur->hdr.value_len);
	cur->valid = false;
}

/* Order of the merge: the smaller gsn first (binaryheap keeps the largest). */
static int
cursor_cmp(Datum a, Datum b, void *arg)
{
	uint64		ga = ((ShardCursor *) DatumGetPointer(a))->hdr.gsn & ARMDB_GSN_MAX;
	uint64		gb = ((ShardCursor *) DatumGetPointer(b))->hdr.gsn & ARMDB_GSN_MAX;

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
				if (cursor_peek(scan, &scan->cursors[i]))
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
		while (!(cur->files != NULL && (cur->valid || cursor_peek(scan, cur))))
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

		if (cur->valid)
			return cur;
		if (cursor_peek(scan, cur))
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
			const ArmdbVersion *v)
{
	return v->file_id != 0 && v->len == armdb_entry_size(hdr->value_len) &&
		v->xmin == XidFromFullTransactionId(FullTransactionIdFromU64(hdr->xid)) &&
		!cursor_reads_file(cur, v->file_id);
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
		ArmdbEntryHeader *hdr = &cur->hdr;
		ArmdbVersion v;
		bool		visible = false;

		if (!armdb_gsn_is_tombstone(hdr->gsn) &&
			!armdb_gsn_is_reservation(hdr->gsn))
		{
			visible = entry_visible(scan, cur, hdr->slot, &v);
			if ((v.file_id != cur->file_id || v.offset != cur->pos) &&
				!entry_moved(cur, hdr, &v))
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
				char	   *buf = armdb_scan_tuple_buffer(scan,
														  hdr->value_len);

				memcpy(buf, cur->entry + ARMDB_ENTRY_HEADER_SIZE,
					   hdr->value_len);
				armdb_fill_tuple(&scan->tuple, rel, hdr->slot, buf,
								 hdr->value_len, &v);
				pgstat_count_heap_getnext(rel);
			}
			cursor_advance(cur);
			return true;
		}
		cursor_advance(cur);
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
	buf = armdb_scan_tuple_buffer(scan, v.len);
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
