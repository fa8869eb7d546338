/*-------------------------------------------------------------------------
 *
 * armdb_am.h
 *	  Declarations shared by the files of armdb's table access method.
 *
 *	  armdb_handler.c	the TableAmRoutine: a table of contents
 *	  armdb_scan.c		sequential, parallel, sample and ANALYZE scans;
 *						fetching a version by TID
 *	  armdb_index.c		index fetches, index builds
 *	  armdb_modify.c	insert, multi-insert, tombstones
 *	  armdb_update.c	delete, update, row locks
 *	  armdb_rowlock.c	row lock modes, MultiXacts, the xmax they leave
 *	  armdb_ddl.c		storage lifecycle, sizes, vacuum
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

static inline ArmdbRelKeydir *
armdb_rel_keydir(Relation rel)
{
	return armdb_keydir_get(armdb_rel_rnode(rel), armdb_store_settings());
}

/* armdb_scan.c */
extern TableScanDesc armdb_scan_begin(Relation rel, Snapshot snapshot,
									  int nkeys, ScanKey key,
									  ParallelTableScanDesc pscan,
									  uint32 flags);
extern void armdb_scan_end(TableScanDesc scan);
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
extern bool armdb_fetch_row_version(Relation rel, ItemPointer tid,
									Snapshot snapshot, TupleTableSlot *slot);
extern bool armdb_tuple_tid_valid(TableScanDesc scan, ItemPointer tid);
extern void armdb_get_latest_tid(TableScanDesc scan, ItemPointer tid);
extern bool armdb_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
										   Snapshot snapshot);
extern void armdb_analyze_avoid_prefetch(Relation rel, uint64 npages);
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

extern bool armdb_slot_of_tid(ArmdbRelKeydir *kd, ItemPointer tid,
							  uint64 *slot);
extern bool armdb_version_lookup(ArmdbRelKeydir *kd, uint64 slot,
								 Snapshot snapshot, ArmdbVersion *copy);
extern char *armdb_reserve_buffer(char **buf, Size *size, Size len,
								  MemoryContext mcxt);
extern void armdb_read_version_tuple(Relation rel, ArmdbRelKeydir *kd,
									 uint64 slotno, const ArmdbVersion *v,
									 char *buf, HeapTuple tuple);
extern void armdb_check_serializable_out(Relation rel, ArmdbVersion *v,
										 bool visible, Snapshot snapshot);
extern bool armdb_version_surely_dead(ArmdbRelKeydir *kd, uint64 slot,
									  struct GlobalVisState *vistest);
extern HTSV_Result armdb_version_htsv(ArmdbRelKeydir *kd, uint64 slot,
									  TransactionId OldestXmin,
									  TransactionId *xwait);

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
extern void armdb_append_tombstone(ArmdbRelKeydir *kd, uint64 slot,
								   FullTransactionId fxid);
extern void armdb_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
										   CommandId cid, int options,
										   struct BulkInsertStateData *bistate,
										   uint32 specToken);
extern void armdb_tuple_complete_speculative(Relation rel,
											 TupleTableSlot *slot,
											 uint32 specToken,
											 bool succeeded);
extern void armdb_copy_version(Relation rel, TupleTableSlot *slot,
							   const ArmdbVersion *old);
extern void armdb_insert_version(Relation rel, ArmdbRelKeydir *kd,
								 TupleTableSlot *slot, CommandId cid,
								 uint64 prev_slot, const ArmdbVersion *lockers);

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
extern TM_Result armdb_tuple_lock(Relation rel, ItemPointer tid,
								  Snapshot snapshot, TupleTableSlot *slot,
								  CommandId cid, LockTupleMode mode,
								  LockWaitPolicy wait_policy, uint8 flags,
								  TM_FailureData *tmfd);

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
extern void armdb_relation_vacuum(Relation rel, struct VacuumParams *params,
								  BufferAccessStrategy bstrategy);
extern uint64 armdb_relation_size(Relation rel, ForkNumber forkNumber);
extern void armdb_relation_estimate_size(Relation rel, int32 *attr_widths,
										 BlockNumber *pages, double *tuples,
										 double *allvisfrac);

/* armdb_xact.c */
extern void armdb_xact_init(void);
extern XLogRecPtr armdb_xact_log_xid(void);
extern void armdb_xact_note_row_lock(void);
extern void armdb_xact_note_temp_storage(RelFileNodeBackend rnode);

/* armdb_handler.c */
extern void armdb_not_supported(const char *what) pg_attribute_noreturn();
extern bool armdb_is_armdb_relation(Relation rel);

#endif							/* ARMDB_AM_H */
