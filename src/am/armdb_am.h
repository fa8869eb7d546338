/*-------------------------------------------------------------------------
 *
 * armdb_am.h
 *	  Declarations shared by the files of armdb's table access method.
 *
 *	  armdb_handler.c	the TableAmRoutine: a table of contents
 *	  armdb_seqscan.c	sequential scans: serial, parallel, backward
 *	  armdb_fetch.c		fetching a version by TID; reading versions
 *	  armdb_analyze.c	ANALYZE and TABLESAMPLE
 *	  armdb_bitmapscan.c bitmap heap scans
 *	  armdb_index.c		index fetches, index builds
 *	  armdb_modify.c	insert, multi-insert, tombstones
 *	  armdb_update.c	delete, update
 *	  armdb_rowlock.c	row locks (SELECT ... FOR UPDATE/SHARE), their
 *						modes, MultiXacts, the xmax they leave
 *	  armdb_ddl.c		storage lifecycle, sizes, VACUUM FULL and CLUSTER
 *	  armdb_vacuum.c	VACUUM and freezing
 *	  armdb_xact.c		transaction callbacks: commit-time flush (the
 *						version store's group commit), storage removal
 *						at commit/abort
 *
 * The files above adapt executor slots and snapshots; reading and writing
 * the data files is the version store's (src/vstore/vstore.h), which is
 * all of the storage layer they use.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_AM_H
#define ARMDB_AM_H

#include "access/heapam.h"
#include "access/multixact.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/tableam.h"
#include "storage/lmgr.h"
#include "utils/rel.h"

#include "armdb.h"
#include "keydir/keydir.h"
#include "vstore/vstore.h"

static inline RelFileNodeBackend
armdb_rel_rnode(Relation rel)
{
	RelFileNodeBackend rnode;

	rnode.node = rel->rd_node;
	rnode.backend = rel->rd_backend;
	return rnode;
}

/* The full transaction id of a running or recent 32-bit xid. */
static inline FullTransactionId
armdb_widen_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

static inline ArmdbRelKeydir *
armdb_rel_keydir(Relation rel)
{
	return armdb_keydir_get(armdb_rel_rnode(rel), RelationGetRelid(rel),
							armdb_store_settings());
}

/* armdb_seqscan.c */
extern TableScanDesc armdb_scan_begin(Relation rel, Snapshot snapshot,
									  int nkeys, ScanKey key,
									  ParallelTableScanDesc pscan,
									  uint32 flags);
extern void armdb_scan_end(TableScanDesc scan);
extern void armdb_scan_set_tidrange(TableScanDesc scan, ItemPointer mintid,
									ItemPointer maxtid);
extern bool armdb_scan_getnextslot_tidrange(TableScanDesc scan,
											ScanDirection direction,
											TupleTableSlot *slot);
extern void armdb_scan_rescan(TableScanDesc scan, ScanKey key,
							  bool set_params, bool allow_strat,
							  bool allow_sync, bool allow_pagemode);
extern bool armdb_scan_getnextslot(TableScanDesc scan,
								   ScanDirection direction,
								   TupleTableSlot *slot);
extern Size armdb_parallelscan_estimate(Relation rel);
extern Size armdb_parallelscan_initialize(Relation rel,
										  ParallelTableScanDesc pscan);
extern void armdb_parallelscan_reinitialize(Relation rel,
											ParallelTableScanDesc pscan);

/* armdb_analyze.c */
extern void armdb_analyze_avoid_prefetch(Relation rel, uint64 npages);
extern void armdb_check_analyze_prefetch(Relation rel, ArmdbRelKeydir *kd);
extern bool armdb_scan_analyze_next_block(TableScanDesc scan,
										  BlockNumber blockno,
										  BufferAccessStrategy bstrategy);
extern bool armdb_scan_analyze_next_tuple(TableScanDesc scan,
										  TransactionId OldestXmin,
										  double *liverows, double *deadrows,
										  TupleTableSlot *slot);
extern bool armdb_scan_sample_next_block(TableScanDesc scan,
										 struct SampleScanState *scanstate);
extern bool armdb_scan_sample_next_tuple(TableScanDesc scan,
										 struct SampleScanState *scanstate,
										 TupleTableSlot *slot);

/* armdb_fetch.c */
extern bool armdb_fetch_row_version(Relation rel, ItemPointer tid,
									Snapshot snapshot, TupleTableSlot *slot);
extern bool armdb_tuple_tid_valid(TableScanDesc scan, ItemPointer tid);
extern void armdb_get_latest_tid(TableScanDesc scan, ItemPointer tid);
extern bool armdb_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
										   Snapshot snapshot);
extern bool armdb_slot_of_tid(ArmdbRelKeydir *kd, ItemPointer tid,
							  uint64 *slot);
extern bool armdb_version_lookup(ArmdbRelKeydir *kd, uint64 slot,
								 Snapshot snapshot, ArmdbVersion *copy,
								 ArmdbVersionExtra *xcopy);
extern bool armdb_version_judge(Relation rel, ArmdbVersion *v, uint64 slot,
								Snapshot snapshot);
extern bool armdb_version_lookup_ssi(Relation rel, ArmdbRelKeydir *kd,
									 uint64 slot, Snapshot snapshot,
									 ArmdbVersion *copy,
									 ArmdbVersionExtra *xcopy);
extern void armdb_fill_tuple(HeapTuple tuple, Relation rel, uint64 slot,
							 char *image, uint32 image_len,
							 const ArmdbVersion *v,
							 const ArmdbVersionExtra *x);
extern char *armdb_entry_tuple(char *entry, uint32 len, uint32 *image_len);
extern char *armdb_reserve_buffer(char **buf, Size *size, Size len,
								  MemoryContext mcxt);
extern void armdb_read_version(ArmdbRelKeydir *kd, uint64 slot,
							   const ArmdbVersion *v,
							   const ArmdbVersionExtra *x, char *buf);
extern void armdb_read_version_tuple(Relation rel, ArmdbRelKeydir *kd,
									 uint64 slotno, const ArmdbVersion *v,
									 const ArmdbVersionExtra *x,
									 char *buf, HeapTuple tuple);
extern void armdb_check_serializable_out(Relation rel, ArmdbVersion *v,
										 bool visible, Snapshot snapshot);
extern bool armdb_version_surely_dead(ArmdbRelKeydir *kd, uint64 slot,
									  struct GlobalVisState *vistest);
extern HTSV_Result armdb_version_htsv(ArmdbRelKeydir *kd, uint64 slot,
									  TransactionId OldestXmin,
									  TransactionId *xwait);

extern bool armdb_read_version_cached(ArmdbRelKeydir *kd, uint64 slot,
									  const ArmdbVersion *v,
									  const ArmdbVersionExtra *x, char *buf);
extern uint64 armdb_entry_root_slot(const char *entry, uint64 slot);

/* armdb_hot.c */

/*
 * A walk along a HOT chain: the walker holds root_page's lock; the page it
 * entered last, cur_page, is locked in mode.
 */
typedef struct ArmdbChainWalk
{
	ArmdbRelKeydir *kd;
	ArmdbPage  *root_page;
	ArmdbPage  *cur_page;
	LWLockMode	mode;
} ArmdbChainWalk;

extern bool armdb_hot_next(const ArmdbVersion *v, uint64 slot, uint64 *next);
extern bool armdb_hot_next_copy(const ArmdbVersion *v, uint32 ctid,
								uint64 slot, uint64 *next);
extern bool armdb_chain_member(const ArmdbVersion *v, bool at_chain_start,
							   TransactionId prior_xmax);
extern ArmdbVersion *armdb_chain_version(ArmdbChainWalk *walk, uint64 slot);
extern void armdb_chain_done(ArmdbChainWalk *walk);
extern bool armdb_hot_search_locked(Relation rel, ArmdbRelKeydir *kd,
									ArmdbPage *root_page, uint64 *slotp,
									Snapshot snapshot, ArmdbVersion *copy,
									ArmdbVersionExtra *xcopy,
									bool *all_dead,
									struct GlobalVisState *vistest,
									bool first_call,
									TransactionId resume_xmin,
									int *npassed);
extern bool armdb_hot_search(Relation rel, ArmdbRelKeydir *kd, uint64 *slotp,
							 Snapshot snapshot, ArmdbVersion *copy,
							 ArmdbVersionExtra *xcopy,
							 bool *all_dead, struct GlobalVisState *vistest,
							 bool first_call, TransactionId resume_xmin,
							 int *npassed);
extern bool armdb_hot_chain_dead(ArmdbRelKeydir *kd, uint64 root,
								 struct GlobalVisState *vistest,
								 bool known_dead,
								 TransactionId *latest_removed);
extern bool armdb_hot_prunable_locked(ArmdbRelKeydir *kd, ArmdbPage *root_page,
									  uint64 root,
									  struct GlobalVisState *vistest);
extern bool armdb_hot_prunable(ArmdbRelKeydir *kd, uint64 root,
							   struct GlobalVisState *vistest);

/*
 * The scan descriptor of sequential scans (armdb_seqscan.c), which also
 * serves ANALYZE and TABLESAMPLE (armdb_analyze.c).
 */
typedef struct ArmdbScanDescData
{
	TableScanDescData base;
	ArmdbRelKeydir *kd;

	/*
	 * Sequential scans.  A serial scan reads all shards at once and merges
	 * them by gsn, so it returns versions in the order they were written --
	 * as heap returns rows in the order it appended them -- whichever
	 * backends (and so shards) wrote them.  A parallel scan's participants
	 * take virtual pages instead (armdb_seqscan.c): par_next is the next of
	 * the pages [par_next, par_end) this participant took.
	 */
	bool		started;
	bool		mode_chosen;	/* serial: files or pages, decided */
	bool		page_mode;		/* serial: pages [par_next, par_end), as
								 * a parallel participant reads them */
	struct ShardCursor *cursors;	/* per shard (serial scans only) */
	int			ncursors;
	struct binaryheap *merge;	/* serial: cursors with entries, by gsn */
	uint64		par_next;
	uint64		par_end;

	/*
	 * Each shard's data files as the scan first saw them (NULL: not yet),
	 * kept for the whole scan so that a replay reads the same files; a
	 * merge does not remove them before the scan's transaction ends.
	 */
	uint32	  **file_lists;		/* [nshards] -> ascending file numbers */
	int		   *file_counts;

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

	/*
	 * TID range scans: the slots [tr_first, tr_end) in slot order, which is
	 * TID order; tr_pos is the slot last looked at (tr_first - 1 before the
	 * first, tr_end after the last), valid once tr_started.
	 */
	uint64		tr_first;
	uint64		tr_end;
	int64		tr_pos;
	bool		tr_started;

	/*
	 * Bitmap heap scans (armdb_bitmapscan.c): the visible versions of
	 * cblock that the bitmap names, in slot order, bm_pos the next to
	 * return; bm_prefetch_off once the executor's prefetching of the main
	 * fork is off for this scan.
	 */
	uint64	   *bm_slots;		/* [ARMDB_SLOTS_PER_PAGE] */
	ArmdbVersion *bm_versions;	/* [ARMDB_SLOTS_PER_PAGE] */
	ArmdbVersionExtra *bm_extras;	/* ... their command ids and ctids */
	int			bm_count;
	int			bm_pos;
	bool		bm_prefetch_off;

	/*
	 * Read-ahead of bitmap heap scans: the executor's node, whose bitmap a
	 * second iterator walks ahead of the executor's (set by the
	 * ExecutorStart hook; NULL for scans started elsewhere), and what it
	 * read (armdb_bitmapscan.c).
	 */
	struct BitmapHeapScanState *bm_node;
	struct ArmdbBitmapAhead *bm_ahead;	/* NULL: nothing read ahead */

	/* ANALYZE, TABLESAMPLE, TID range and bitmap heap scans */
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

/* armdb_analyze.c: a virtual page's entries with one read */
#define ARMDB_SPAN_MAX	(4 * 1024 * 1024)	/* bytes read at once, at most */
extern void armdb_scan_read_block_span(ArmdbScanDesc scan,
									   BlockNumber blockno);

/* armdb_bitmapscan.c: every version of a page, judged as a lossy page's */
extern bool armdb_scan_judge_page(ArmdbScanDesc scan, BlockNumber blockno);
/* armdb_bitmapscan.c: the entry of slot at loc, if it was read ahead */
extern bool armdb_bitmap_ahead_copy(ArmdbScanDesc scan, uint64 slot,
									const ArmdbLocation *loc, char *buf);
extern void armdb_bitmap_ahead_free(ArmdbScanDesc scan);
extern void armdb_scan_store_version(ArmdbScanDesc scan, uint64 slotno,
									 const ArmdbVersion *v,
									 const ArmdbVersionExtra *x,
									 TupleTableSlot *slot);


/* a buffer for the scan's tuple images (armdb_reserve_buffer) */
static inline char *
armdb_scan_tuple_buffer(ArmdbScanDesc scan, Size len)
{
	return armdb_reserve_buffer(&scan->tuple_buf, &scan->tuple_buf_size, len,
								scan->mcxt);
}

/* armdb_bitmapscan.c */
extern void armdb_bitmapscan_init(void);
extern bool armdb_scan_bitmap_next_block(TableScanDesc scan,
										 struct TBMIterateResult *tbmres);
extern bool armdb_scan_bitmap_next_tuple(TableScanDesc scan,
										 struct TBMIterateResult *tbmres,
										 TupleTableSlot *slot);

/* armdb_index.c */
extern IndexFetchTableData *armdb_index_fetch_begin(Relation rel);
extern void armdb_index_fetch_reset(IndexFetchTableData *scan);
extern void armdb_index_fetch_end(IndexFetchTableData *scan);
extern bool armdb_index_fetch_tuple(IndexFetchTableData *scan,
									ItemPointer tid, Snapshot snapshot,
									TupleTableSlot *slot, bool *call_again,
									bool *all_dead);
extern TransactionId armdb_index_delete_tuples(Relation rel,
											   TM_IndexDeleteOp *delstate);
extern double armdb_index_build_range_scan(Relation heapRelation,
										   Relation indexRelation,
										   struct IndexInfo *indexInfo,
										   bool allow_sync, bool anyvisible,
										   bool progress,
										   BlockNumber start_blockno,
										   BlockNumber numblocks,
										   IndexBuildCallback callback,
										   void *callback_state,
										   TableScanDesc scan);

extern void armdb_index_validate_scan(Relation heapRelation,
									  Relation indexRelation,
									  struct IndexInfo *indexInfo,
									  Snapshot snapshot,
									  struct ValidateIndexState *state);

/* armdb_modify.c */
extern void armdb_tuple_insert(Relation rel, TupleTableSlot *slot,
							   CommandId cid, int options,
							   struct BulkInsertStateData *bistate);
extern void armdb_multi_insert(Relation rel, TupleTableSlot **slots,
							   int ntuples, CommandId cid, int options,
							   struct BulkInsertStateData *bistate);

extern uint32 armdb_my_shard(ArmdbRelKeydir *kd);
extern void armdb_append_tombstone(Relation rel, ArmdbRelKeydir *kd,
								   uint64 slot, FullTransactionId fxid);
extern void armdb_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
										   CommandId cid, int options,
										   struct BulkInsertStateData *bistate,
										   uint32 specToken);
extern void armdb_tuple_complete_speculative(Relation rel,
											 TupleTableSlot *slot,
											 uint32 specToken,
											 bool succeeded);
extern void armdb_copy_version(Relation rel, TupleTableSlot *slot,
							   const ArmdbVersion *old, CommandId old_cid);
extern void armdb_insert_version(Relation rel, ArmdbRelKeydir *kd,
								 TupleTableSlot *slot, CommandId cid,
								 uint64 prev_slot, uint64 root_slot,
								 const ArmdbVersion *lockers,
								 HeapTuple old_key);

/* armdb_update.c */
extern TM_Result armdb_tuple_delete(Relation rel, ItemPointer tid,
									CommandId cid, Snapshot snapshot,
									Snapshot crosscheck, bool wait,
									TM_FailureData *tmfd, bool changingPart);
extern TM_Result armdb_tuple_update(Relation rel, ItemPointer otid,
									TupleTableSlot *slot, CommandId cid,
									Snapshot snapshot, Snapshot crosscheck,
									bool wait, TM_FailureData *tmfd,
									LockTupleMode *lockmode,
									bool *update_indexes);

/* armdb_rowlock.c */
extern LOCKMODE armdb_tuple_lock_hwmode(LockTupleMode mode);
extern LockTupleMode armdb_mxstatus_mode(MultiXactStatus status);
extern MultiXactStatus armdb_mxstatus_for_lock(LockTupleMode mode,
											   bool is_update);
extern int	armdb_xmax_status(uint16 infomask, uint16 infomask2);
extern void armdb_multi_hint_bits(MultiXactId multi, uint16 *infomask,
								  uint16 *infomask2);
extern bool armdb_multi_conflicts(MultiXactId multi, uint16 infomask,
								  LockTupleMode mode, bool *current_is_member);
extern bool armdb_multi_wait(MultiXactId multi, MultiXactStatus status,
							 uint16 infomask, bool nowait, Relation rel,
							 ItemPointer tid, XLTW_Oper oper, int *remaining);
extern void armdb_compute_new_xmax(TransactionId xmax, uint16 old_infomask,
								   uint16 old_infomask2,
								   TransactionId add_to_xmax,
								   LockTupleMode mode, bool is_update,
								   TransactionId *result_xmax,
								   uint16 *result_infomask,
								   uint16 *result_infomask2);
extern bool armdb_acquire_tuplock(Relation rel, ItemPointer tid,
								  LockTupleMode mode,
								  LockWaitPolicy wait_policy,
								  bool *have_tuple_lock);
extern ArmdbPage *armdb_page_of_tid(ArmdbRelKeydir *kd, ItemPointer tid,
									uint64 *slot);
extern bool armdb_xmax_changed(uint16 new_infomask, uint16 old_infomask);
extern void armdb_update_xmax_hint_bits(ArmdbVersion *v, TransactionId xid);
extern void armdb_set_xmax(ArmdbVersion *v, TransactionId xmax,
						   uint16 infomask, uint16 infomask2);
extern void armdb_fill_failure(TM_FailureData *tmfd, ArmdbVersion *v,
							   uint64 slot, TM_Result result);
extern bool armdb_has_key_columns(Relation rel);
extern bool armdb_columns_differ(Relation rel, Bitmapset *attrs,
								 HeapTuple oldtup, TupleTableSlot *newslot);
extern bool armdb_update_changes_keys(Relation rel, ItemPointer tid,
									  TupleTableSlot *newslot);
extern TM_Result armdb_tuple_lock(Relation rel, ItemPointer tid,
								  Snapshot snapshot, TupleTableSlot *slot,
								  CommandId cid, LockTupleMode mode,
								  LockWaitPolicy wait_policy, uint8 flags,
								  TM_FailureData *tmfd);

/* armdb_ddl.c */
extern void armdb_relation_set_new_filenode(Relation rel,
											const RelFileNode *newrnode,
											char persistence,
											TransactionId *freezeXid,
											MultiXactId *minmulti);
extern void armdb_relation_nontransactional_truncate(Relation rel);
extern void armdb_relation_copy_data(Relation rel, const RelFileNode *newrnode);
extern void armdb_relation_copy_for_cluster(Relation OldTable,
											Relation NewTable,
											Relation OldIndex, bool use_sort,
											TransactionId OldestXmin,
											TransactionId *xid_cutoff,
											MultiXactId *multi_cutoff,
											double *num_tuples,
											double *tups_vacuumed,
											double *tups_recently_dead);
extern uint64 armdb_relation_size(Relation rel, ForkNumber forkNumber);
extern void armdb_relation_estimate_size(Relation rel, int32 *attr_widths,
										 BlockNumber *pages, double *tuples,
										 double *allvisfrac);

/* armdb_vacuum.c */
extern void armdb_hot_prune_opt(Relation rel, ArmdbRelKeydir *kd, uint64 root,
								struct GlobalVisState *vistest);
extern void armdb_vacuum_at_abort(void);
extern void armdb_relation_vacuum(Relation rel, struct VacuumParams *params,
								  BufferAccessStrategy bstrategy);

/* armdb_xact.c */
extern void armdb_xact_init(void);
extern void armdb_xact_note_row_lock(Relation rel);
extern void armdb_xact_note_temp_storage(RelFileNodeBackend rnode);

/* armdb_handler.c */
extern bool armdb_is_armdb_relation(Relation rel);

#endif							/* ARMDB_AM_H */
