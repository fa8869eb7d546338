/*-------------------------------------------------------------------------
 *
 * armdb_modify.c
 *	  Writing armdb tables: insert and multi-insert (and the new version of
 *	  an UPDATE, see armdb_update.c).
 *
 * An insert appends the row image to the write buffer of this backend's
 * shard (a backend always writes to the same shard, so a COPY appends
 * sequentially to one file and a one-row commit flushes one shard) and
 * fills the version record of a new slot.  Both happen under the shard
 * lock; the version is invisible to others until the inserting transaction
 * commits, and the commit waits for the shard's fdatasync (armdb_xact.c).
 *
 * Values are stored inline, whatever their size: external TOAST pointers
 * are fetched and the tuple flattened before it is written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "pgstat.h"
#include "storage/predicate.h"

#include "am/armdb_am.h"
#include "keydir/visibility.h"
#include "armdb.h"
#include "storage/hint.h"

/*
 * Data files sealed by this backend's appends (rotation), whose hint files
 * are still to be written.  Appends note them under the shard lock; the
 * hints are built once the lock is released, since that reads the whole
 * file (until a background worker takes this over).  Each names its keydir
 * (relation and generation): storage dropped meanwhile (TRUNCATE, a
 * rewrite, DROP, by any backend) needs no hint any more.
 */
#define MAX_PENDING_HINTS	16
static struct
{
	ArmdbRelKey relkey;
	uint64		generation;
	char		dir[MAXPGPATH];
	uint32		file_id;
}			pending_hints[MAX_PENDING_HINTS];
static int	npending_hints = 0;

void
armdb_note_sealed(ArmdbRelKeydir *kd, ArmdbShardFiles *files,
				  uint32 sealed_file_id)
{
	if (sealed_file_id == 0 || npending_hints == MAX_PENDING_HINTS)
		return;					/* without a hint, recovery scans the file */
	pending_hints[npending_hints].relkey = kd->key;
	pending_hints[npending_hints].generation = kd->generation;
	strlcpy(pending_hints[npending_hints].dir, files->dir, MAXPGPATH);
	pending_hints[npending_hints].file_id = sealed_file_id;
	npending_hints++;
}

/*
 * Write the hint files of the sealed data files.  A failure is only a
 * warning: a hint is a shortcut for recovery, which scans the data file
 * without one.
 */
void
armdb_build_sealed_hints(void)
{
	while (npending_hints > 0)
	{
		ArmdbError	err;
		int			i = --npending_hints;

		/* dropped since: nothing to do (and its files may be gone) */
		if (armdb_keydir_find(&pending_hints[i].relkey,
							  pending_hints[i].generation) == NULL)
			continue;
		if (!armdb_hint_build(armdb_backend_io(), pending_hints[i].dir,
							  pending_hints[i].file_id, armdb_direct_io, false,
							  &err))
			ereport(WARNING,
					(errmsg("armdb: could not write the hint file of data file %06u in \"%s\": %s",
							pending_hints[i].file_id, pending_hints[i].dir,
							err.message),
					 errdetail("Recovery will scan the data file instead.")));
	}
}

/* The shard this backend appends to. */
uint32
armdb_my_shard(ArmdbRelKeydir *kd)
{
	return (uint32) ((MyBackendId > 0 ? MyBackendId : MyProcPid) % kd->nshards);
}

/* The heap tuple image to store for slot: flat, no external TOAST values. */
static HeapTuple
tuple_to_store(Relation rel, TupleTableSlot *slot, bool *should_free)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, true, should_free);

	if (HeapTupleHasExternal(tuple))
	{
		HeapTuple	flat = toast_flatten_tuple(tuple, RelationGetDescr(rel));

		if (*should_free)
			heap_freetuple(tuple);
		tuple = flat;
		*should_free = true;
	}
	return tuple;
}

/*
 * Append one row version and fill its record.  Caller holds the shard lock
 * exclusively.  Returns the position after the entry.
 */
/*
 * Get a shard ready for an append: its write buffer on the first one, and
 * armdb.max_file_size as this backend sees it now, so that a reload applies
 * from the next append on (the file being appended to is closed when the
 * next entry would pass the new size).  Caller holds the shard lock
 * exclusively.
 */
void
armdb_shard_prepare(ArmdbRelKeydir *kd, ArmdbShardRt *rt, uint32 shard)
{
	uint32		max_file_size = (uint32) Min((uint64) armdb_max_file_size_kb * 1024,
											 ARMDB_MAX_FILE_SIZE);

	if (rt->st.buf == NULL)
	{
		armdb_keydir_shard_buffer(kd, rt);
		armdb_shard_state_init(&rt->st, shard, rt->st.buf, rt->st.buf_size,
							   max_file_size);
	}
	rt->st.max_file_size = Max(max_file_size, ARMDB_MIN_FILE_SIZE);
}

/*
 * Slot reuse invariant (design §2): a slot is never handed to a new version
 * while an index entry may point at it.  Index entries are WAL-logged, but
 * the entries of a transaction that never commits may never reach the data
 * files, so after a restart the files alone cannot say which slots were
 * handed out.  A shard therefore reserves slots ahead, ARMDB_RESERVE_SEQS at
 * a time, with a reservation entry made durable before any of them is used;
 * recovery starts after the highest reservation.  Caller holds the shard
 * lock exclusively.
 */
static void
reserve_slots(ArmdbRelKeydir *kd, uint32 shard, ArmdbShardRt *rt,
			  ArmdbShardFiles *files)
{
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbError	err;
	ArmdbPos	reached;
	uint32		sealed;
	uint64		upto = rt->next_seq + ARMDB_RESERVE_SEQS;

	memset(&hdr, 0, sizeof(hdr));
	hdr.gsn = (pg_atomic_fetch_add_u64(&kd->next_gsn, 1) & ARMDB_GSN_MAX) |
		ARMDB_GSN_FLAG_RESERVE;
	hdr.xid = U64FromFullTransactionId(InvalidFullTransactionId);
	hdr.slot = armdb_shard_slot(shard, upto - 1, kd->nshards);
	hdr.root_slot = hdr.slot;
	hdr.prev_slot = ARMDB_INVALID_SLOT;
	if (!armdb_shard_append(&rt->st, files, &hdr, NULL, &loc, &sealed, &err))
		armdb_report_storage_error(ERROR, &err);
	armdb_note_sealed(kd, files, sealed);
	if (!armdb_shard_write_out(&rt->st, files, &reached, &err) ||
		!armdb_shard_sync(&rt->st, files, reached, &err))
		armdb_report_storage_error(rt->st.failed ? data_sync_elevel(ERROR) : ERROR,
								   &err);
	armdb_shard_note_flushed(&rt->st, reached);
	rt->reserved_seq = upto;
}

static ArmdbPos
append_version(Relation rel, ArmdbRelKeydir *kd, uint32 shard,
			   ArmdbShardRt *rt, ArmdbShardFiles *files, HeapTuple tuple,
			   TransactionId xid, FullTransactionId fxid, CommandId cid,
			   uint64 prev_slot, uint32 spec_token, const ArmdbVersion *lockers,
			   ItemPointer tid)
{
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbError	err;
	ArmdbPage  *page;
	ArmdbVersion *v;
	uint64		slot;
	uint32		sealed;

	if (tuple->t_len > ARMDB_MAX_VALUE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row is too big: size %u, maximum size %u",
						tuple->t_len, ARMDB_MAX_VALUE_LEN)));

	armdb_shard_prepare(kd, rt, shard);
	if (rt->nfree > 0)
	{
		/* a slot VACUUM freed: no index entry points at it any more */
		slot = ((uint32 *) dsa_get_address(armdb_keydir_area(),
										   rt->free_slots))[rt->nfree - 1];
	}
	else
	{
		if (rt->next_seq >= rt->reserved_seq)
			reserve_slots(kd, shard, rt, files);
		slot = armdb_shard_slot(shard, rt->next_seq, kd->nshards);
	}
	page = armdb_keydir_page_for_slot(kd, slot);	/* may ERROR: memory */

	memset(&hdr, 0, sizeof(hdr));
	hdr.value_len = tuple->t_len;
	hdr.gsn = pg_atomic_fetch_add_u64(&kd->next_gsn, 1) & ARMDB_GSN_MAX;
	hdr.xid = U64FromFullTransactionId(fxid);
	hdr.slot = slot;
	hdr.root_slot = slot;
	hdr.prev_slot = prev_slot;
	if (!armdb_shard_append(&rt->st, files, &hdr, tuple->t_data, &loc, &sealed,
							&err))
		armdb_report_storage_error(ERROR, &err);
	armdb_note_sealed(kd, files, sealed);

	/* the slot is used up even if this transaction aborts */
	if (rt->nfree > 0)
		rt->nfree--;
	else
		rt->next_seq++;

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	v->file_id = loc.file_id;
	v->offset = loc.offset;
	v->len = loc.len;
	v->xmin = xid;
	v->xmax = InvalidTransactionId;
	v->cid = cid;
	v->infomask = HEAP_XMAX_INVALID;
	v->infomask2 = 0;
	v->ctid = (uint32) slot;
	if (spec_token != 0)
	{
		/* a speculative insertion: ctid holds the token (heap: t_ctid) */
		v->infomask2 = ARMDB_V2_SPECULATIVE;
		v->ctid = spec_token;
	}
	else if (lockers != NULL && TransactionIdIsValid(lockers->xmax))
	{
		/* an UPDATE's new version inherits the old one's key-share lockers */
		v->xmax = lockers->xmax;
		v->infomask = lockers->infomask;
		v->infomask2 = lockers->infomask2;
	}
	LWLockRelease(&page->lock);

	armdb_slot_to_tid(slot, tid);
	return armdb_shard_end(&rt->st);
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
 */
static void
insert_slots(Relation rel, ArmdbRelKeydir *kd, TupleTableSlot **slots,
			 int ntuples, CommandId cid, uint64 prev_slot, uint32 spec_token,
			 const ArmdbVersion *lockers)
{
	uint32		shard = armdb_my_shard(kd);
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard);
	FullTransactionId fxid = GetCurrentFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	HeapTuple  *tuples = palloc(sizeof(HeapTuple) * ntuples);
	bool	   *should_free = palloc(sizeof(bool) * ntuples);
	ArmdbPos	end = 0;
	XLogRecPtr	wal_lsn;

	/* flatten first: detoasting reads other relations, not under our lock */
	for (int i = 0; i < ntuples; i++)
		tuples[i] = tuple_to_store(rel, slots[i], &should_free[i]);

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	wal_lsn = armdb_xact_log_xid();

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	rt->wal_lsn = Max(rt->wal_lsn, wal_lsn);
	for (int i = 0; i < ntuples; i++)
	{
		slots[i]->tts_tableOid = RelationGetRelid(rel);
		end = append_version(rel, kd, shard, rt, files, tuples[i], xid, fxid,
							 cid, prev_slot, spec_token, lockers,
							 &slots[i]->tts_tid);
	}
	LWLockRelease(&rt->lock);

	armdb_xact_note_write(kd, shard, end);
	pg_atomic_fetch_add_u64(&kd->nversions, ntuples);
	armdb_build_sealed_hints();

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
				 0, NULL);
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
				 specToken, NULL);
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
		armdb_append_tombstone(kd, slotno, GetCurrentFullTransactionId());

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[slotno % ARMDB_SLOTS_PER_PAGE];
	Assert(v->infomask2 & ARMDB_V2_SPECULATIVE);
	v->infomask2 &= ~ARMDB_V2_SPECULATIVE;
	v->ctid = (uint32) slotno;
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
}

void
armdb_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
				   CommandId cid, int options,
				   struct BulkInsertStateData *bistate)
{
	insert_slots(rel, armdb_rel_keydir(rel), slots, ntuples, cid,
				 ARMDB_INVALID_SLOT, 0, NULL);
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
armdb_copy_version(Relation rel, TupleTableSlot *slot, const ArmdbVersion *old)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint32		shard = armdb_my_shard(kd);
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard);
	bool		should_free;
	HeapTuple	tuple = tuple_to_store(rel, slot, &should_free);
	XLogRecPtr	wal_lsn = armdb_xact_log_xid();
	ArmdbPage  *page;
	ArmdbVersion *v;
	uint64		slotno;
	ArmdbPos	end;
	TransactionId ender = InvalidTransactionId;

	/* the updater or deleter, also from a MultiXact */
	if (TransactionIdIsValid(old->xmax) &&
		!(old->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(old->infomask))
		ender = (old->infomask & HEAP_XMAX_IS_MULTI) ?
			armdb_multi_get_update_xid(old->xmax) : old->xmax;

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	rt->wal_lsn = Max(rt->wal_lsn, wal_lsn);
	append_version(rel, kd, shard, rt, files, tuple, old->xmin,
				   full_xid(old->xmin), FirstCommandId, ARMDB_INVALID_SLOT, 0,
				   NULL, &slot->tts_tid);
	slotno = armdb_tid_to_slot(&slot->tts_tid);
	end = armdb_shard_end(&rt->st);
	LWLockRelease(&rt->lock);

	if (TransactionIdIsValid(ender))
		armdb_append_tombstone(kd, slotno, full_xid(ender));

	/* the record as it was, but for its own place */
	page = armdb_keydir_page(kd, slotno / ARMDB_SLOTS_PER_PAGE);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[slotno % ARMDB_SLOTS_PER_PAGE];
	v->xmin = old->xmin;
	v->xmax = old->xmax;
	v->cid = old->cid;
	v->infomask = old->infomask;
	v->infomask2 = old->infomask2 & ~ARMDB_V2_SPECULATIVE;
	v->ctid = (uint32) slotno;
	LWLockRelease(&page->lock);

	armdb_xact_note_write(kd, shard, end);
	pg_atomic_fetch_add_u64(&kd->nversions, 1);
	if (should_free)
		heap_freetuple(tuple);
}

/*
 * The new version of an UPDATE, locked by lockers->xmax (with its infomask
 * bits) if valid; slot->tts_tid is set to its TID.
 */
void
armdb_insert_version(Relation rel, ArmdbRelKeydir *kd, TupleTableSlot *slot,
					 CommandId cid, uint64 prev_slot,
					 const ArmdbVersion *lockers)
{
	insert_slots(rel, kd, &slot, 1, cid, prev_slot, 0, lockers);
}
