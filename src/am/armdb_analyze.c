/*-------------------------------------------------------------------------
 *
 * armdb_analyze.c
 *	  ANALYZE and TABLESAMPLE on armdb tables: sampling virtual pages.
 *
 * Both sample blocks, and an armdb table's blocks are the keydir's virtual
 * pages, the pages armdb_relation_size() reports.  The entries of a
 * sampled page are read with one I/O where they lie side by side in one
 * file, else one by one.  ANALYZE must also be kept from prefetching the
 * main fork, which armdb leaves empty (armdb_analyze_avoid_prefetch).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tsmapi.h"
#include "access/xact.h"
#include "commands/tablespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/guc.h"
#include "utils/spccache.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/visibility.h"

/* Read a version found in the keydir and store it in slot. */
static void
store_version(ArmdbScanDesc scan, Relation rel, ArmdbRelKeydir *kd,
			  uint64 slotno, const ArmdbVersion *v, const ArmdbVersionExtra *x,
			  TupleTableSlot *slot)
{
	char	   *buf = armdb_scan_tuple_buffer(scan, x->len);
	uint32		image_len;
	char	   *image;

	armdb_read_version(kd, slotno, v, x, buf);
	image = armdb_entry_tuple(buf, x->len, &image_len);
	armdb_fill_tuple(&scan->tuple, rel, slotno, image, image_len, v, x);
	ExecStoreHeapTuple(&scan->tuple, slot, false);
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
void
armdb_check_analyze_prefetch(Relation rel, ArmdbRelKeydir *kd)
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
 * (or still in the write buffer) are read one by one.  ANALYZE, TABLESAMPLE
 * and TID range scans (armdb_seqscan.c) read pages this way.
 */
void
armdb_scan_read_block_span(ArmdbScanDesc scan, BlockNumber blockno)
{
	ArmdbRelKeydir *kd = scan->kd;
	ArmdbPage  *page = armdb_keydir_page(kd, blockno);
	uint32		shard = armdb_page_shard(kd, blockno);
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
		to = Max(to, (uint64) v->offset +
				 armdb_version_len(v, (uint64) blockno * ARMDB_SLOTS_PER_PAGE + i));
	}
	LWLockRelease(&page->lock);
	if (file_id == 0 || to - from > ARMDB_SPAN_MAX)
		return;

	armdb_vstore_span_read(&scan->span, kd, shard, file_id, from, to,
						   ARMDB_SPAN_MAX, false, scan->mcxt,
						   armdb_store_settings());
}

bool
armdb_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							  BufferAccessStrategy bstrategy)
{
	ArmdbScanDesc scan = (ArmdbScanDesc) sscan;

	scan->cblock = blockno;
	scan->coffset = 0;
	armdb_scan_read_block_span(scan, blockno);
	return true;
}

/* Store the version of slotno in slot, from the block span if it is there. */
void
armdb_scan_store_version(ArmdbScanDesc scan, uint64 slotno,
						 const ArmdbVersion *v, const ArmdbVersionExtra *x,
						 TupleTableSlot *slot)
{
	ArmdbLocation loc = armdb_version_location(v, x);
	char	   *buf = armdb_scan_tuple_buffer(scan, x->len);
	uint32		image_len;
	char	   *image;

	if (!armdb_bitmap_ahead_copy(scan, slotno, &loc, buf) &&
		!armdb_vstore_span_copy(&scan->span, slotno, &loc, buf))
	{
		store_version(scan, scan->base.rs_rd, scan->kd, slotno, v, x, slot);
		return;
	}
	image = armdb_entry_tuple(buf, x->len, &image_len);
	armdb_fill_tuple(&scan->tuple, scan->base.rs_rd, slotno, image,
					 image_len, v, x);
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
		ArmdbVersionExtra x;
		bool		sample_it = false;

		LWLockAcquire(&page->lock, LW_SHARED);
		v = page->v[i];
		x = armdb_version_extra_values(&page->v[i], slotno);
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
			armdb_scan_store_version(scan, slotno, &v, &x, slot);
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
	armdb_scan_read_block_span(scan, blockno);
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
		ArmdbVersionExtra x;
		bool		visible;

		CHECK_FOR_INTERRUPTS();
		off = tsm->NextSampleTuple(scanstate, scan->cblock, ARMDB_SLOTS_PER_PAGE);
		if (!OffsetNumberIsValid(off))
		{
			ExecClearTuple(slot);
			return false;
		}
		slotno = (uint64) scan->cblock * ARMDB_SLOTS_PER_PAGE + off - 1;
		visible = armdb_version_lookup(scan->kd, slotno, sscan->rs_snapshot,
									   &v, &x);
		if (v.file_id != 0)
			armdb_check_serializable_out(sscan->rs_rd, &v, visible,
										 sscan->rs_snapshot);
		if (visible)
		{
			armdb_scan_store_version(scan, slotno, &v, &x, slot);
			pgstat_count_heap_getnext(sscan->rs_rd);
			return true;
		}
	}
}
