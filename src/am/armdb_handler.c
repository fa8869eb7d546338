/*-------------------------------------------------------------------------
 *
 * armdb_handler.c
 *	  The armdb table access method: its TableAmRoutine.
 *
 * The callbacks are listed in the order of TableAmRoutine; each is a thin
 * adapter over work done in the other files of src/am/ (armdb_am.h lists
 * them) and the keydir.
 *
 * What this version supports: CREATE TABLE (permanent, temporary, unlogged),
 * INSERT, COPY, INSERT ... ON CONFLICT, SELECT (sequential, parallel and
 * backward scans, TABLESAMPLE, bitmap heap scans, TID range scans), UPDATE
 * (also across partitions), DELETE, row locks in all four modes (FOR
 * UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE; NOWAIT, SKIP
 * LOCKED, READ COMMITTED rechecks), foreign
 * keys in both directions, transactions and savepoints with heap's
 * visibility rules, PREPARE TRANSACTION, TRUNCATE, DROP, ALTER TABLE
 * rewrites and SET TABLESPACE, VACUUM (with freezing), VACUUM FULL and
 * CLUSTER, ANALYZE, indexes (btree, hash, GIN, GiST, SP-GiST, BRIN: PRIMARY
 * KEY and UNIQUE included; index and index-only scans; CREATE INDEX
 * CONCURRENTLY), durable commits (group commit) and recovery after a crash.
 *
 * What it refuses, with an error and a hint, before anything is changed:
 * logical decoding (historic MVCC snapshots, visibility.c), and ANALYZE of a table past its main fork's first segment
 * in a tablespace that sets maintenance_io_concurrency (armdb_analyze.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/pg_am_d.h"
#include "executor/tuptable.h"
#include "fmgr.h"

#include "am/armdb_am.h"

PG_FUNCTION_INFO_V1(armdb_tableam_handler);

static const TupleTableSlotOps *
armdb_slot_callbacks(Relation rel)
{
	return &TTSOpsHeapTuple;
}

/* ----------------
 * Size and TOAST
 * ----------------
 */
/*
 * armdb stores values of any size inline (armdb_modify.c detoasts them on
 * the way in, and compresses wide rows as heap would) and never writes a
 * TOAST table.  It still has the one heap
 * would have, empty, for the day the table leaves armdb: ALTER TABLE ...
 * SET ACCESS METHOD heap rewrites it through make_new_heap() (cluster.c),
 * which gives the new heap a TOAST table only if the old table has one,
 * and without it heap refuses every row wider than a page ("row is too
 * big").  The cost is heap's: an empty TOAST heap and its index (one 8 kB
 * metapage) for tables with variable-width columns; VACUUM, TRUNCATE,
 * CLUSTER and VACUUM FULL treat it as they treat heap's.
 *
 * Tables created before armdb had TOAST tables get theirs from the first
 * ALTER TABLE, SET ACCESS METHOD included: ALTER TABLE asks every table it
 * changes whether it needs a TOAST table (AlterTableCreateToastTable, in
 * its catalog phase) before it rewrites any.
 */
static bool
armdb_relation_needs_toast_table(Relation rel)
{
	/* heap's rule: it only looks at the tuple descriptor */
	return GetHeapamTableAmRoutine()->relation_needs_toast_table(rel);
}

static Oid
armdb_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

static const TableAmRoutine armdb_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = armdb_slot_callbacks,

	.scan_begin = armdb_scan_begin,
	.scan_end = armdb_scan_end,
	.scan_rescan = armdb_scan_rescan,
	.scan_getnextslot = armdb_scan_getnextslot,

	/* TID range scans: slots in TID order, looked up in the keydir */
	.scan_set_tidrange = armdb_scan_set_tidrange,
	.scan_getnextslot_tidrange = armdb_scan_getnextslot_tidrange,

	.parallelscan_estimate = armdb_parallelscan_estimate,
	.parallelscan_initialize = armdb_parallelscan_initialize,
	.parallelscan_reinitialize = armdb_parallelscan_reinitialize,

	.index_fetch_begin = armdb_index_fetch_begin,
	.index_fetch_reset = armdb_index_fetch_reset,
	.index_fetch_end = armdb_index_fetch_end,
	.index_fetch_tuple = armdb_index_fetch_tuple,

	.tuple_fetch_row_version = armdb_fetch_row_version,
	.tuple_tid_valid = armdb_tuple_tid_valid,
	.tuple_get_latest_tid = armdb_get_latest_tid,
	.tuple_satisfies_snapshot = armdb_tuple_satisfies_snapshot,
	.index_delete_tuples = armdb_index_delete_tuples,

	.tuple_insert = armdb_tuple_insert,
	.tuple_insert_speculative = armdb_tuple_insert_speculative,
	.tuple_complete_speculative = armdb_tuple_complete_speculative,
	.multi_insert = armdb_multi_insert,
	.tuple_delete = armdb_tuple_delete,
	.tuple_update = armdb_tuple_update,
	.tuple_lock = armdb_tuple_lock,

	.relation_set_new_filenode = armdb_relation_set_new_filenode,
	.relation_nontransactional_truncate = armdb_relation_nontransactional_truncate,
	.relation_copy_data = armdb_relation_copy_data,
	.relation_copy_for_cluster = armdb_relation_copy_for_cluster,
	.relation_vacuum = armdb_relation_vacuum,
	.scan_analyze_next_block = armdb_scan_analyze_next_block,
	.scan_analyze_next_tuple = armdb_scan_analyze_next_tuple,
	.index_build_range_scan = armdb_index_build_range_scan,
	.index_validate_scan = armdb_index_validate_scan,

	.relation_size = armdb_relation_size,
	.relation_needs_toast_table = armdb_relation_needs_toast_table,
	.relation_toast_am = armdb_relation_toast_am,
	.relation_fetch_toast_slice = NULL,

	.relation_estimate_size = armdb_relation_estimate_size,

	.scan_bitmap_next_block = armdb_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = armdb_scan_bitmap_next_tuple,
	.scan_sample_next_block = armdb_scan_sample_next_block,
	.scan_sample_next_tuple = armdb_scan_sample_next_tuple
};

bool
armdb_is_armdb_relation(Relation rel)
{
	return rel->rd_tableam == &armdb_methods;
}

Datum
armdb_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&armdb_methods);
}
