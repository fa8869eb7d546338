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
 * in the order they were written, as from heap.  Before it reads a shard
 * it writes out the shard's write buffer, so the files hold everything
 * appended so far (this transaction's own rows included); what is appended
 * later is not visible to the scan's snapshot anyway.  A parallel scan
 * hands out whole shards.
 *
 * Fetching by TID (triggers, ANALYZE, TABLESAMPLE) reads one entry: from the
 * shard's write buffer under the shard lock if it is still there, else with
 * one aligned read of the file.
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
#include "armdb.h"
#include "keydir/visibility.h"
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
	ArmdbAlignedBuf span;		/* entries of cblock, read at once */
	uint32		span_file;		/* 0: nothing read */
	uint64		span_from;		/* file offset of span.data[0] */
	size_t		span_len;
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
	uint32		shard = armdb_slot_shard(slot, kd->nshards);
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard);
	ArmdbLocation loc = {v->file_id, v->offset, v->len};
	ArmdbEntryHeader hdr;
	ArmdbError	err;
	bool		ok;

	LWLockAcquire(&rt->lock, LW_SHARED);
	if (armdb_shard_is_buffered(&rt->st, &loc))
	{
		ok = armdb_shard_read_buffered(&rt->st, &loc, buf, &hdr, &err);
		LWLockRelease(&rt->lock);
	}
	else
	{
		LWLockRelease(&rt->lock);
		ok = armdb_shard_read_file(files, &loc, buf, &hdr, &err);
	}
	if (!ok)
		armdb_report_storage_error(ERROR, &err);
	if (hdr.slot != slot)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb: entry at offset %u of data file %06u in \"%s\" belongs to slot %llu, not %llu",
						loc.offset, loc.file_id, files->dir,
						(unsigned long long) hdr.slot,
						(unsigned long long) slot)));
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

	if (cur->file_id >= cur->last_file_id)
		return false;
	cur->file_id++;
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
			if (v.file_id != cur->file_id || v.offset != cur->pos)
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

				memcpy(buf, cur->entry + ARMDB_ENTRY_HEADER_SIZE,
					   hdr->value_len);
				fill_tuple(&scan->tuple, rel, hdr->slot, buf, hdr->value_len,
						   &v);
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
	ArmdbShardRt *rt;
	ArmdbShardFiles *files;
	ArmdbLocation span = {0, 0, 0};
	uint64		from = PG_UINT64_MAX;
	uint64		to = 0;
	ArmdbError	err;
	bool		buffered;
	int			fd;
	MemoryContext oldcontext;
	bool		ok;

	scan->span_file = 0;
	if (page == NULL)
		return;
	LWLockAcquire(&page->lock, LW_SHARED);
	for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
	{
		ArmdbVersion *v = &page->v[i];

		if (v->file_id == 0)
			continue;
		if (span.file_id == 0)
			span.file_id = v->file_id;
		if (v->file_id != span.file_id)
			continue;
		from = Min(from, v->offset);
		to = Max(to, (uint64) v->offset + v->len);
	}
	LWLockRelease(&page->lock);
	if (span.file_id == 0 || to - from > SPAN_MAX)
		return;

	span.offset = (uint32) from;
	span.len = (uint32) (to - from);
	rt = armdb_keydir_shard(kd, shard);
	LWLockAcquire(&rt->lock, LW_SHARED);
	buffered = armdb_shard_is_buffered(&rt->st, &span);
	LWLockRelease(&rt->lock);
	if (buffered)
		return;

	files = armdb_keydir_shard_files(kd, shard);
	scan->span_from = TYPEALIGN_DOWN(ARMDB_BLOCK_SIZE, from);
	if (scan->span.size < TYPEALIGN(ARMDB_BLOCK_SIZE, to) - scan->span_from)
	{
		oldcontext = MemoryContextSwitchTo(scan->mcxt);
		armdb_aligned_free(&scan->span);
		ok = armdb_aligned_alloc(&scan->span, SPAN_MAX + 2 * ARMDB_BLOCK_SIZE, &err);
		MemoryContextSwitchTo(oldcontext);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
	}
	fd = armdb_shard_file_fd(files, span.file_id, &err);
	if (fd < 0 ||
		!armdb_io_pread(files->io, fd, scan->span.data,
						TYPEALIGN(ARMDB_BLOCK_SIZE, to) - scan->span_from,
						scan->span_from, &scan->span_len, &err))
		armdb_report_storage_error(ERROR, &err);
	scan->span_file = span.file_id;
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
	ArmdbEntryHeader hdr;
	char	   *buf;

	if (v->file_id != scan->span_file || v->offset < scan->span_from ||
		v->offset + v->len > scan->span_from + scan->span_len)
	{
		store_version(scan, scan->base.rs_rd, scan->kd, slotno, v, slot);
		return;
	}
	buf = tuple_buffer(scan, v->len);
	memcpy(buf, scan->span.data + (v->offset - scan->span_from), v->len);
	if (armdb_entry_parse(buf, v->len, &hdr) != ARMDB_PARSE_OK ||
		hdr.slot != slotno)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb: entry at offset %u of data file %06u is corrupted",
						v->offset, v->file_id)));
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
