/*-------------------------------------------------------------------------
 *
 * armdb_modify.c
 *	  Writing armdb tables: insert and multi-insert (and the new version of
 *	  an UPDATE, see armdb_update.c).
 *
 * An insert has the version store append the row image to the write
 * buffer of this backend's shard (a backend always writes to the same
 * shard, so a COPY appends sequentially to one file and a one-row commit
 * flushes one shard) and fills the version record of the new slot.  Both
 * happen under the shard lock; the version is invisible to others until the
 * inserting transaction commits, and the commit waits for the shard's
 * fdatasync (vstore_commit.c).
 *
 * Values are stored inline, whatever their size: external TOAST pointers
 * are fetched, and wide rows compressed as heap's TOAST compresses them,
 * before the row is written (compress_tuple).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/toast_helper.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/predicate.h"

#include "am/armdb_am.h"
#include "am/armdb_vm.h"
#include "armdb_guc.h"
#include "keydir/visibility.h"
#include "wal/armdb_wal.h"

/* The shard this backend appends to. */
uint32
armdb_my_shard(ArmdbRelKeydir *kd)
{
	return (uint32) ((MyBackendId > 0 ? MyBackendId : MyProcPid) % kd->nshards);
}

/*
 * Append a tombstone of slot, by transaction fxid, to this backend's shard,
 * for recovery.
 */
void
armdb_append_tombstone(Relation rel, ArmdbRelKeydir *kd, uint64 slot,
					   FullTransactionId fxid)
{
	armdb_vstore_append_tombstone(kd, armdb_my_shard(kd), slot, fxid,
								  RelationNeedsWAL(rel),
								  armdb_store_settings());
}

/*
 * The row image to store, compressed as heap would compress it.
 *
 * Heap's TOAST (heap_toast_insert_or_update) does two things to a row
 * wider than TOAST_TUPLE_THRESHOLD, or holding a value of another
 * relation's TOAST table: it compresses the row's widest values, and it
 * moves values out to the TOAST table.  armdb does the first as heap does
 * it, through PostgreSQL's toast_helper: the same rounds (EXTENDED columns,
 * then MAIN ones), the same target (the toast_tuple_target reloption), each
 * column's compression method (default_toast_compression when it has
 * none).  It never does the second: values stay inline whatever their size
 * (up to ARMDB_MAX_VALUE_LEN for the row), and a value stored in another
 * relation's TOAST table is fetched and kept as it was stored there,
 * compressed or not.  So pg_column_compression() answers as it does on
 * heap, and a wide compressible value takes the bytes on disk, and in WAL,
 * that heap's TOAST table would give it.
 */
static HeapTuple
compress_tuple(Relation rel, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			natts = desc->natts;
	Datum	   *values = palloc(natts * sizeof(Datum));
	bool	   *isnull = palloc(natts * sizeof(bool));
	ToastAttrInfo *attrs = palloc(natts * sizeof(ToastAttrInfo));
	ToastTupleContext ttc;
	Size		hoff;
	Size		max_data_len;
	HeapTuple	result = tuple;

	heap_deform_tuple(tuple, desc, values, isnull);
	ttc.ttc_rel = rel;
	ttc.ttc_values = values;
	ttc.ttc_isnull = isnull;
	ttc.ttc_oldvalues = NULL;
	ttc.ttc_oldisnull = NULL;
	ttc.ttc_attr = attrs;
	/* fetches values stored in TOAST tables, without decompressing them */
	toast_tuple_init(&ttc);

	/* the data size heap aims at, after the header heap_form_tuple makes */
	hoff = SizeofHeapTupleHeader;
	if (ttc.ttc_flags & TOAST_HAS_NULLS)
		hoff += BITMAPLEN(natts);
	hoff = MAXALIGN(hoff);
	max_data_len = RelationGetToastTupleTarget(rel, TOAST_TUPLE_TARGET) - hoff;

	/* heap's rounds 1 and 3: EXTENDED columns, then MAIN ones, widest first */
	for (int round = 0; round < 2; round++)
	{
		bool		check_main = (round == 1);

		while (heap_compute_data_size(desc, values, isnull) > max_data_len)
		{
			int			att = toast_tuple_find_biggest_attribute(&ttc, true,
																 check_main);

			if (att < 0)
				break;
			if (check_main ||
				TupleDescAttr(desc, att)->attstorage == TYPSTORAGE_EXTENDED)
				toast_tuple_try_compression(&ttc, att);
			else
				attrs[att].tai_colflags |= TOASTCOL_INCOMPRESSIBLE; /* EXTERNAL */
		}
	}

	if (ttc.ttc_flags & TOAST_NEEDS_CHANGE)
	{
		/* heap_form_tuple's layout, keeping the header's other fields */
		Size		header_len = hoff;
		Size		data_len = heap_compute_data_size(desc, values, isnull);
		HeapTupleHeader data;

		result = (HeapTuple) palloc0(HEAPTUPLESIZE + header_len + data_len);
		result->t_len = header_len + data_len;
		result->t_self = tuple->t_self;
		result->t_tableOid = tuple->t_tableOid;
		data = (HeapTupleHeader) ((char *) result + HEAPTUPLESIZE);
		result->t_data = data;
		memcpy(data, tuple->t_data, SizeofHeapTupleHeader);
		HeapTupleHeaderSetNatts(data, natts);
		data->t_hoff = header_len;
		heap_fill_tuple(desc, values, isnull, (char *) data + header_len,
						data_len, &data->t_infomask,
						(ttc.ttc_flags & TOAST_HAS_NULLS) ? data->t_bits : NULL);
	}
	toast_tuple_cleanup(&ttc);
	pfree(values);
	pfree(isnull);
	pfree(attrs);
	return result;
}

/* The heap tuple image to store for slot: no external TOAST values. */
static HeapTuple
tuple_to_store(Relation rel, TupleTableSlot *slot, bool *should_free)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, true, should_free);
	HeapTuple	stored;

	/* heap_prepare_insert's test for TOAST work */
	if (!HeapTupleHasExternal(tuple) && tuple->t_len <= TOAST_TUPLE_THRESHOLD)
		return tuple;
	stored = compress_tuple(rel, tuple);
	if (stored != tuple)
	{
		if (*should_free)
			heap_freetuple(tuple);
		*should_free = true;
	}
	return stored;
}

/*
 * Append one row version in a new slot and fill its record.  Caller has
 * begun appending to the shard (holds its lock exclusively).
 */
static void
append_version(Relation rel, ArmdbVstoreAppend *ap, HeapTuple tuple,
			   TransactionId xid,
			   FullTransactionId fxid, CommandId cid, uint64 prev_slot,
			   uint64 root_slot, uint32 spec_token,
			   const ArmdbVersion *lockers, ItemPointer tid)
{
	ArmdbLocation loc;
	ArmdbPage  *page;
	ArmdbVersion *v;
	uint64		slot;

	/* without the header fields the version record holds */
	if (armdb_debug_full_tuple_images)
		slot = armdb_vstore_insert(ap, tuple->t_data, tuple->t_len, 0,
								   prev_slot, root_slot, fxid, &loc);
	else
		slot = armdb_vstore_insert(ap, (char *) tuple->t_data + ARMDB_TUPLE_SHORTENED,
								   tuple->t_len - ARMDB_TUPLE_SHORTENED,
								   ARMDB_GSN_FLAG_SHORT_TUPLE, prev_slot,
								   root_slot, fxid, &loc);
	page = armdb_keydir_page(ap->kd, slot / ARMDB_SLOTS_PER_PAGE);

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	/* before the record changes: an ERROR leaves the slot empty */
	if (cid != FirstCommandId || spec_token != 0 ||
		loc.len >= ARMDB_LONG_ENTRY)
		armdb_page_prepare_extra(page, slot / ARMDB_SLOTS_PER_PAGE,
								 ap->settings);
	/* the page is no longer all-visible (armdb_vm.c) */
	armdb_vm_clear(rel, ap->kd, page, slot / ARMDB_SLOTS_PER_PAGE);
	v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	armdb_version_set_len(v, slot, loc.len, ap->settings);
	v->file_id = loc.file_id;
	v->offset = loc.offset;
	v->xmin = xid;
	v->xmax = InvalidTransactionId;
	armdb_version_set_cid(v, slot, cid, ap->settings);
	v->infomask = HEAP_XMAX_INVALID;
	v->infomask2 = 0;
	armdb_version_set_ctid(v, slot, (uint32) slot, ap->settings);
	if (root_slot != ARMDB_INVALID_SLOT)
		v->infomask2 = HEAP_ONLY_TUPLE; /* a HOT update's (armdb_hot.c) */
	if (spec_token != 0)
	{
		/* a speculative insertion: ctid holds the token (heap: t_ctid) */
		v->infomask2 = ARMDB_V2_SPECULATIVE;
		armdb_version_set_ctid(v, slot, spec_token, ap->settings);
	}
	else if (lockers != NULL && TransactionIdIsValid(lockers->xmax))
	{
		/* an UPDATE's new version inherits the old one's key-share lockers */
		v->xmax = lockers->xmax;
		v->infomask = lockers->infomask;
		v->infomask2 |= lockers->infomask2;
	}
	LWLockRelease(&page->lock);

	armdb_slot_to_tid(slot, tid);
}

/*
 * Give the slot's tuple the header heap_insert would have left in it, so
 * that RETURNING xmin, cmin, ctid and friends read right.
 */
static void
stamp_slot_tuple(TupleTableSlot *slot, TransactionId xid, CommandId cid)
{
	HeapTuple	tuple;
	bool		should_free;

	if (!TTS_IS_HEAPTUPLE(slot))
		return;					/* other slots have no system columns */
	tuple = ExecFetchSlotHeapTuple(slot, true, &should_free);
	Assert(!should_free);
	tuple->t_data->t_infomask &= ~HEAP_XACT_MASK;
	tuple->t_data->t_infomask2 &= ~HEAP2_XACT_MASK;
	tuple->t_data->t_infomask |= HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmin(tuple->t_data, xid);
	HeapTupleHeaderSetCmin(tuple->t_data, cid);
	HeapTupleHeaderSetXmax(tuple->t_data, InvalidTransactionId);
	tuple->t_data->t_ctid = slot->tts_tid;
	tuple->t_self = slot->tts_tid;
	tuple->t_tableOid = slot->tts_tableOid;
}

/*
 * Insert ntuples slots under one acquisition of the shard lock; prev_slot
 * is the version an UPDATE replaces, or ARMDB_INVALID_SLOT, and lockers
 * (xmax and its infomask bits) the row locks its new version starts with.
 * For logical decoding (unless options has TABLE_INSERT_NO_LOGICAL), an
 * UPDATE's old key or row is old_key (NULL: none).
 */
static void
insert_slots(Relation rel, ArmdbRelKeydir *kd, TupleTableSlot **slots,
			 int ntuples, CommandId cid, uint64 prev_slot, uint64 root_slot,
			 uint32 spec_token, const ArmdbVersion *lockers,
			 HeapTuple old_key, int options)
{
	const ArmdbStoreSettings *settings = armdb_store_settings();
	FullTransactionId fxid = GetCurrentFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	HeapTuple  *tuples = palloc(sizeof(HeapTuple) * ntuples);
	bool	   *should_free = palloc(sizeof(bool) * ntuples);
	ArmdbVstoreAppend ap;

	/* flatten first: detoasting reads other relations, not under our lock */
	for (int i = 0; i < ntuples; i++)
		tuples[i] = tuple_to_store(rel, slots[i], &should_free[i]);

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);

	armdb_vstore_append_begin(&ap, kd, armdb_my_shard(kd),
							  RelationNeedsWAL(rel), settings);
	ap.batch = ntuples > 1;
	PG_TRY();
	{
		for (int i = 0; i < ntuples; i++)
		{
			slots[i]->tts_tableOid = RelationGetRelid(rel);
			append_version(rel, &ap, tuples[i], xid, fxid, cid, prev_slot,
						   root_slot, spec_token, lockers,
						   &slots[i]->tts_tid);
		}
	}
	PG_CATCH();
	{
		/* entries in the shared buffer never go without their record */
		armdb_vstore_log_batch(ap.rt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	armdb_vstore_append_end(&ap);

	pg_atomic_fetch_add_u64(&kd->nversions, ntuples);
	armdb_vstore_build_sealed_hints(settings);

	/* the changes as logical decoding reads them (armdb_logical.c) */
	if (RelationIsLogicallyLogged(rel) && !(options & TABLE_INSERT_NO_LOGICAL))
		for (int i = 0; i < ntuples; i++)
			armdb_wal_log_logical(rel,
								  spec_token != 0 ? ARMDB_LOGICAL_SPEC_INSERT :
								  prev_slot != ARMDB_INVALID_SLOT ?
								  ARMDB_LOGICAL_UPDATE : ARMDB_LOGICAL_INSERT,
								  tuples[i], old_key);

	for (int i = 0; i < ntuples; i++)
	{
		if (should_free[i])
			heap_freetuple(tuples[i]);
		stamp_slot_tuple(slots[i], xid, cid);
	}
	pfree(tuples);
	pfree(should_free);
}

void
armdb_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
				   int options, struct BulkInsertStateData *bistate)
{
	insert_slots(rel, armdb_rel_keydir(rel), &slot, 1, cid, ARMDB_INVALID_SLOT,
				 ARMDB_INVALID_SLOT, 0, NULL, NULL, options);
	pgstat_count_heap_insert(rel, 1);
}

/*
 * INSERT ... ON CONFLICT: the version carries the speculative insertion
 * token until armdb_tuple_complete_speculative() decides its fate, so that
 * SnapshotDirty can report it to concurrent inserters (heap keeps the token
 * in t_ctid).
 */
void
armdb_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
							   CommandId cid, int options,
							   struct BulkInsertStateData *bistate,
							   uint32 specToken)
{
	Assert(specToken != 0);
	insert_slots(rel, armdb_rel_keydir(rel), &slot, 1, cid, ARMDB_INVALID_SLOT,
				 ARMDB_INVALID_SLOT, specToken, NULL, NULL, options);
	pgstat_count_heap_insert(rel, 1);
}

/*
 * heap_finish_speculative / heap_abort_speculative.  A failed speculative
 * insertion becomes invisible to everyone at once (xmin invalid, as heap
 * does), so that concurrent inserters waiting on it see no conflict; a
 * tombstone keeps recovery from bringing it back when the transaction
 * commits.
 */
void
armdb_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								 uint32 specToken, bool succeeded)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		slotno = armdb_tid_to_slot(&slot->tts_tid);
	ArmdbPage  *page = armdb_keydir_page(kd, slotno / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;

	if (page == NULL)
		elog(ERROR, "armdb: speculative insertion at (%u,%u) has no version",
			 ItemPointerGetBlockNumber(&slot->tts_tid),
			 ItemPointerGetOffsetNumber(&slot->tts_tid));

	if (!succeeded)
	{
		armdb_append_tombstone(rel, kd, slotno, GetCurrentFullTransactionId());
		/* a deletion, as heap counts it: the insertion was counted too */
		pgstat_count_heap_delete(rel);
	}

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[slotno % ARMDB_SLOTS_PER_PAGE];
	Assert(v->infomask2 & ARMDB_V2_SPECULATIVE);
	v->infomask2 &= ~ARMDB_V2_SPECULATIVE;
	armdb_version_set_ctid(v, slotno, (uint32) slotno, armdb_store_settings());
	if (!succeeded)
	{
		v->infomask &= ~(HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID |
						 HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK |
						 HEAP_XMAX_LOCK_ONLY);
		v->infomask |= HEAP_XMAX_INVALID;
		v->infomask2 &= ~HEAP_KEYS_UPDATED;
		v->xmin = InvalidTransactionId;
	}
	LWLockRelease(&page->lock);

	/* heap logs a confirmation, or a "super delete" (armdb_logical.c) */
	if (RelationIsLogicallyLogged(rel))
		armdb_wal_log_logical(rel, succeeded ? ARMDB_LOGICAL_SPEC_CONFIRM :
							  ARMDB_LOGICAL_SPEC_ABORT, NULL, NULL);
}

void
armdb_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
				   CommandId cid, int options,
				   struct BulkInsertStateData *bistate)
{
	insert_slots(rel, armdb_rel_keydir(rel), slots, ntuples, cid,
				 ARMDB_INVALID_SLOT, ARMDB_INVALID_SLOT, 0, NULL, NULL, options);
	pgstat_count_heap_insert(rel, ntuples);
}

/* The FullTransactionId of a recent xid (not older than 2^31 xids). */
static FullTransactionId
full_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (!TransactionIdIsNormal(xid))
		return FullTransactionIdFromEpochAndXid(0, xid);
	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/*
 * VACUUM FULL and CLUSTER: write the version old of another table into rel
 * as it is -- inserted by the same transaction, ended by the same one -- so
 * that snapshots that saw it before still see it (heap's rewrite keeps
 * tuple headers the same way).  An end by an update or delete becomes a
 * tombstone too, so that recovery ends it again; update chains are not
 * carried over (the version's ctid points at itself).
 */
void
armdb_copy_version(Relation rel, TupleTableSlot *slot, const ArmdbVersion *old,
				   CommandId old_cid)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	bool		should_free;
	HeapTuple	tuple = tuple_to_store(rel, slot, &should_free);
	ArmdbVstoreAppend ap;
	ArmdbPage  *page;
	ArmdbVersion *v;
	uint64		slotno;
	TransactionId ender = InvalidTransactionId;

	/* the updater or deleter, also from a MultiXact */
	if (TransactionIdIsValid(old->xmax) &&
		!(old->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(old->infomask))
		ender = (old->infomask & HEAP_XMAX_IS_MULTI) ?
			armdb_multi_get_update_xid(old->xmax) : old->xmax;

	armdb_vstore_append_begin(&ap, kd, armdb_my_shard(kd),
							  RelationNeedsWAL(rel), armdb_store_settings());
	append_version(rel, &ap, tuple, old->xmin, full_xid(old->xmin), FirstCommandId,
				   ARMDB_INVALID_SLOT, ARMDB_INVALID_SLOT, 0, NULL,
				   &slot->tts_tid);
	slotno = armdb_tid_to_slot(&slot->tts_tid);
	armdb_vstore_append_end(&ap);

	if (TransactionIdIsValid(ender))
		armdb_append_tombstone(rel, kd, slotno, full_xid(ender));

	/* the record as it was, but for its own place */
	page = armdb_keydir_page(kd, slotno / ARMDB_SLOTS_PER_PAGE);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[slotno % ARMDB_SLOTS_PER_PAGE];
	armdb_version_set_cid(v, slotno, old_cid, armdb_store_settings());
	v->xmin = old->xmin;
	v->xmax = old->xmax;
	v->infomask = old->infomask;
	/* every version is its own root in the new table */
	v->infomask2 = old->infomask2 & ~(ARMDB_V2_SPECULATIVE | HEAP_HOT_UPDATED |
									  HEAP_ONLY_TUPLE);
	armdb_version_set_ctid(v, slotno, (uint32) slotno, armdb_store_settings());
	LWLockRelease(&page->lock);

	pg_atomic_fetch_add_u64(&kd->nversions, 1);
	if (should_free)
		heap_freetuple(tuple);
}

/*
 * The new version of an UPDATE, locked by lockers->xmax (with its infomask
 * bits) if valid; slot->tts_tid is set to its TID.  root_slot: the root of
 * a HOT update's chain, or ARMDB_INVALID_SLOT (not heap-only).
 */
void
armdb_insert_version(Relation rel, ArmdbRelKeydir *kd, TupleTableSlot *slot,
					 CommandId cid, uint64 prev_slot, uint64 root_slot,
					 const ArmdbVersion *lockers, HeapTuple old_key)
{
	insert_slots(rel, kd, &slot, 1, cid, prev_slot, root_slot, 0, lockers,
				 old_key, 0);
}
