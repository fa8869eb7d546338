/*-------------------------------------------------------------------------
 *
 * armdb_ddl.c
 *	  The storage lifecycle of armdb relations and their sizes.
 *
 * Storage is created the way heap creates it -- RelationCreateStorage()
 * makes the (empty, never used) main fork and registers its pending delete
 * -- plus armdb's own directory.  PostgreSQL's pending-delete machinery
 * then decides when the relation's storage dies, and armdb_xact.c removes
 * the directory at that moment.  VACUUM is armdb_vacuum.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/multixact.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "storage/bufpage.h"
#include "storage/ipc.h"
#include "storage/smgr.h"
#include "utils/snapmgr.h"

#include "armdb_crypt.h"
#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_guc.h"
#include "keydir/relstorage.h"
#include "wal/armdb_wal.h"

static bool temp_cleanup_registered = false;

/*
 * At backend exit: this backend's temporary armdb tables go away.  Their
 * keydirs may be in dynamic shared memory segments, so this runs before
 * they are detached (before_shmem_exit); it first aborts the transaction,
 * as ShutdownPostgres would a little later, since its abort callbacks may
 * still use them.
 */
static void
temp_cleanup(int code, Datum arg)
{
	AbortOutOfAnyTransaction();
	armdb_keydir_drop_backend_temp();
	armdb_rel_storage_remove_backend_temp();
}

void
armdb_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								char persistence, TransactionId *freezeXid,
								MultiXactId *minmulti)
{
	SMgrRelation srel;
	RelFileNodeBackend rnode;
	uint8		storage_id[ARMDB_STORAGE_ID_LEN];
	bool		encrypted;

	/* as heap: nothing in the new storage is older than this */
	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();

	srel = RelationCreateStorage(*newrnode, persistence, true);

	/*
	 * An unlogged relation gets an init fork, as heap's: PostgreSQL then
	 * treats it as unlogged everywhere (and our start-up sweep empties its
	 * armdb storage after a crash, see relstorage.c).
	 */
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		Assert(rel->rd_rel->relkind == RELKIND_RELATION ||
			   rel->rd_rel->relkind == RELKIND_MATVIEW ||
			   rel->rd_rel->relkind == RELKIND_TOASTVALUE);
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(srel, INIT_FORKNUM);
	}
	smgrclose(srel);

	rnode.node = *newrnode;
	rnode.backend = persistence == RELPERSISTENCE_TEMP ?
		BackendIdForTempRelations() : InvalidBackendId;

	/* relfilenodes are reused: forget whatever had this one before */
	armdb_keydir_drop(rnode);
	/*
	 * Encrypted if the setting says so now, and new storage for a table
	 * (TRUNCATE) never drops the encryption its old storage had.  A
	 * rewrite into a new relation (VACUUM FULL, CLUSTER, ALTER TABLE)
	 * follows the setting.
	 */
	encrypted = armdb_encrypt_new_tables();
	if (!encrypted && !RelFileNodeEquals(rel->rd_node, *newrnode))
	{
		RelFileNodeBackend old = armdb_rel_rnode(rel);

		if (armdb_rel_storage_exists(old))
			(void) armdb_rel_storage_read_meta(old, NULL, &encrypted, NULL);
	}
	armdb_rel_storage_new_id(storage_id);
	armdb_rel_storage_create(rnode, (uint32) armdb_shards, persistence,
							 encrypted, storage_id);
	if (persistence == RELPERSISTENCE_TEMP)
		armdb_xact_note_temp_storage(rnode);
	else
		armdb_wal_log_create(newrnode, (uint32) armdb_shards, persistence,
							 false, encrypted, storage_id);

	if (persistence == RELPERSISTENCE_TEMP && !temp_cleanup_registered)
	{
		before_shmem_exit(temp_cleanup, (Datum) 0);
		temp_cleanup_registered = true;
	}
}

/*
 * TRUNCATE of a relation created (or last truncated) in this transaction,
 * or of a temporary one: empty the storage in place.
 */
void
armdb_relation_nontransactional_truncate(Relation rel)
{
	RelFileNodeBackend rnode = armdb_rel_rnode(rel);
	char		persistence;
	bool		encrypted;
	uint8		storage_id[ARMDB_STORAGE_ID_LEN];
	uint32		nshards = armdb_rel_storage_read_meta(rnode, &persistence,
													  &encrypted, NULL);

	armdb_keydir_drop(rnode);
	armdb_rel_storage_new_id(storage_id);
	armdb_rel_storage_create(rnode, nshards, persistence, encrypted,
							 storage_id);
	if (RelationNeedsWAL(rel))
		armdb_wal_log_create(&rnode.node, nshards, persistence, true,
							 encrypted, storage_id);
	/* the visibility map's bits were of the versions just dropped */
	if (smgrexists(RelationGetSmgr(rel), VISIBILITYMAP_FORKNUM))
		RelationTruncate(rel, 0);
}

/*
 * New storage with the same contents (ALTER TABLE ... SET TABLESPACE): copy
 * the files once everything buffered is durable; the copy's keydir is
 * loaded from them on first use.
 */
void
armdb_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	RelFileNodeBackend from = armdb_rel_rnode(rel);
	RelFileNodeBackend to;
	SMgrRelation dstrel;
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);

	to.node = *newrnode;
	to.backend = rel->rd_backend;
	armdb_vstore_flush_all_shards(kd, armdb_store_settings());
	if (to.backend != InvalidBackendId)
		armdb_xact_note_temp_storage(to);

	dstrel = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
	{
		smgrcreate(dstrel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(dstrel, INIT_FORKNUM);
	}
	smgrclose(dstrel);
	armdb_keydir_drop(to);
	armdb_rel_storage_copy(from, to, kd->nshards,
						   rel->rd_rel->relpersistence);
	if (to.backend == InvalidBackendId)
		armdb_wal_log_copy(&from.node, &to.node, kd->nshards,
						   rel->rd_rel->relpersistence);
	RelationDropStorage(rel);
}

/*
 * VACUUM FULL and CLUSTER (heapam_relation_copy_for_cluster): copy every
 * version not dead to everyone -- in the order of OldIndex if given -- into
 * the new storage, keeping what snapshots need to see it as before.
 * armdb does not freeze yet, so the cutoffs stay the table's own.
 */
void
armdb_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								Relation OldIndex, bool use_sort,
								TransactionId OldestXmin,
								TransactionId *xid_cutoff,
								MultiXactId *multi_cutoff,
								double *num_tuples, double *tups_vacuumed,
								double *tups_recently_dead)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(OldTable);
	TupleTableSlot *slot = table_slot_create(OldTable, NULL);
	IndexScanDesc index_scan = NULL;
	TableScanDesc table_scan = NULL;

	*xid_cutoff = OldTable->rd_rel->relfrozenxid;
	*multi_cutoff = OldTable->rd_rel->relminmxid;
	*num_tuples = *tups_vacuumed = *tups_recently_dead = 0;

	if (OldIndex != NULL)
	{
		index_scan = index_beginscan(OldTable, OldIndex, SnapshotAny, 0, 0);
		index_rescan(index_scan, NULL, 0, NULL, 0);
	}
	else
		table_scan = table_beginscan(OldTable, SnapshotAny, 0, NULL);

	for (;;)
	{
		uint64		slotno;
		ArmdbVersion v;
		ArmdbVersionExtra x;
		TransactionId xwait;
		bool		keep;

		CHECK_FOR_INTERRUPTS();
		if (index_scan != NULL ?
			!index_getnext_slot(index_scan, ForwardScanDirection, slot) :
			!table_scan_getnextslot(table_scan, ForwardScanDirection, slot))
			break;

		slotno = armdb_tid_to_slot(&slot->tts_tid);
		switch (armdb_version_htsv(kd, slotno, OldestXmin, &xwait))
		{
			case HEAPTUPLE_DEAD:
				*tups_vacuumed += 1;
				keep = false;
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
				*tups_recently_dead += 1;
				keep = true;
				break;
			case HEAPTUPLE_LIVE:
				keep = true;
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
				if (!TransactionIdIsCurrentTransactionId(xwait))
					elog(WARNING, "concurrent insert in progress within table \"%s\"",
						 RelationGetRelationName(OldTable));
				keep = true;
				break;
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				if (!TransactionIdIsCurrentTransactionId(xwait))
					elog(WARNING, "concurrent delete in progress within table \"%s\"",
						 RelationGetRelationName(OldTable));
				*tups_recently_dead += 1;
				keep = true;
				break;
			default:
				elog(ERROR, "unexpected HeapTupleSatisfiesVacuum result");
				keep = false;	/* keep compiler quiet */
				break;
		}
		if (!keep)
			continue;

		(void) armdb_version_lookup(kd, slotno, SnapshotAny, &v, &x);
		*num_tuples += 1;
		armdb_copy_version(NewTable, slot, &v, x.cid);
	}

	if (index_scan != NULL)
		index_endscan(index_scan);
	if (table_scan != NULL)
		table_endscan(table_scan);
	ExecDropSingleTupleTableSlot(slot);
}

uint64
armdb_relation_size(Relation rel, ForkNumber forkNumber)
{
	ArmdbRelKeydir *kd;
	uint64		npages;

	if (forkNumber != MAIN_FORKNUM && forkNumber != InvalidForkNumber)
		return 0;
	kd = armdb_rel_keydir(rel);
	npages = pg_atomic_read_u64(&kd->npages);

	/* ANALYZE asks this just before it decides whether to prefetch */
	armdb_analyze_avoid_prefetch(rel, npages);
	return npages * BLCKSZ;
}

/*
 * The planner's size of an armdb table: the rows it holds, and the pages
 * heap would need for them.
 *
 * Virtual pages are not a measure of cost: one holds 291 row slots where a
 * heap page holds what fits in 8 kB (tenk1: 35 virtual pages, 345 heap
 * pages).  Planning with them would make every sequential scan look ten
 * times cheaper than heap's and pick other plans than heap's where heap's
 * are right -- while an armdb scan reads about the bytes heap reads.  So
 * the pages reported are the heap pages the rows would fill (their width,
 * from the statistics or the column types as heap estimates it, plus
 * heap's tuple header and line pointer, at the table's fillfactor), and
 * the rest is heap's table_block_relation_estimate_size(): a table never
 * vacuumed or analyzed counts as at least 10 pages, and then as many rows
 * as would fill them.
 *
 * The rows: the keydir counts the versions without reading anything;
 * once VACUUM or ANALYZE has counted the live ones (reltuples, over
 * relpages virtual pages, which is what armdb_relation_size() reports to
 * them), that density is scaled to today's virtual pages instead, since it
 * leaves out dead versions.  No page is all-visible (no visibility map).
 */
void
armdb_relation_estimate_size(Relation rel, int32 *attr_widths,
							 BlockNumber *pages, double *tuples,
							 double *allvisfrac)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	uint64		nallocated;
	BlockNumber relpages = (BlockNumber) rel->rd_rel->relpages;
	double		reltuples = (double) rel->rd_rel->reltuples;
	int32		tuple_width;
	int			full_density;
	int			filled_density;
	double		rows;
	double		heap_pages;

	/*
	 * Rows per heap page, as heap's estimate counts them (integer division
	 * too): full pages, and pages filled to the fillfactor as heap fills
	 * them when it appends.
	 */
	tuple_width = get_rel_data_width(rel, attr_widths) +
		MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData);
	full_density = Max((BLCKSZ - SizeOfPageHeaderData) / tuple_width, 1);
	filled_density = Max((BLCKSZ - SizeOfPageHeaderData -
						  RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR)) /
						 tuple_width, 1);

	if (reltuples >= 0 && relpages > 0)
		rows = reltuples / relpages * npages;
	else
		rows = (double) pg_atomic_read_u64(&kd->nversions);
	heap_pages = ceil(rows / filled_density);

	/* heap's HACK for tables never vacuumed: at least 10 pages, and full */
	if (reltuples < 0)
	{
		if (heap_pages < 10 && !rel->rd_rel->relhassubclass)
			heap_pages = 10;
		rows = (double) full_density * heap_pages;
	}
	*pages = (BlockNumber) Min(heap_pages, (double) MaxBlockNumber);
	*tuples = rint(rows);

	/*
	 * As heap: the share of pages VACUUM found all-visible -- of the
	 * virtual pages that exist, not of the block numbers up to the last,
	 * which the shards share.
	 */
	nallocated = pg_atomic_read_u64(&kd->nallocated);
	if (rel->rd_rel->relallvisible == 0 || nallocated == 0)
		*allvisfrac = 0;
	else if ((double) rel->rd_rel->relallvisible >= (double) nallocated)
		*allvisfrac = 1;
	else
		*allvisfrac = (double) rel->rd_rel->relallvisible / (double) nallocated;
}
