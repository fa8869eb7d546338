/*-------------------------------------------------------------------------
 *
 * armdb_update.c
 *	  DELETE, UPDATE and row locks on armdb tables.
 *
 * The protocol is heap's (heap_delete, heap_update, heap_lock_tuple,
 * heap_lock_updated_tuple, heapam_tuple_lock; README.tuplock), on version
 * records under their virtual page's LWLock instead of tuple headers under
 * a buffer lock: HeapTupleSatisfiesUpdate decides, the tuple lock
 * (LockTuple) orders waiters, XactLockTableWait and MultiXact waits wait
 * for the transactions in xmax, and xmax, the command id and ctid are set
 * as heap sets them.  All four row lock modes exist; several lockers, or
 * lockers and an updater, share xmax through a MultiXact (armdb_rowlock.c).
 *
 * Key columns.  An UPDATE that changes no key column (a column of a unique
 * index a foreign key could reference) takes FOR NO KEY UPDATE, so that
 * foreign key checks (FOR KEY SHARE) neither wait for it nor block it.
 * Heap compares the old and new tuples while it has both in the buffer;
 * armdb has the old row only in its data file, and reading it costs a
 * device read per UPDATE.  So the read happens only when the answer is
 * needed at once -- someone is in the old version's xmax -- and otherwise
 * the version is marked ARMDB_V2_KEYS_UNKNOWN with HEAP_KEYS_UPDATED set;
 * the first FOR KEY SHARE locker to care settles it by reading both
 * versions (settle_keys_updated).  Until then the answer errs on the safe
 * side, a key update.
 *
 * The link window.  Heap sets the old tuple's xmax and its t_ctid to the
 * new tuple in one critical section.  Here the old version's xmax is set
 * first (deciding who may update), the new version is then appended (which
 * may wait for I/O), and only then is the old version's ctid pointed at it.
 * Meanwhile the old version looks updated with no newer version: a FOR KEY
 * SHARE locker, which does not wait for a no-key update, would lock only
 * the old version and its lock would miss the new one.  So such a locker
 * waits the window out (link_pending, wait_for_link) and then follows the
 * chain as heap does.  Every other locker waits for the updater anyway.
 *
 * Durability: DELETE appends a tombstone of the slot; UPDATE appends only
 * the new version (a new slot), whose prev_slot names the version it ends.
 * Both go to this backend's shard, like its inserts, so a transaction
 * usually makes one shard durable at commit: one fdatasync.  (Design §2
 * suggests keeping every entry of a slot in the slot's shard; that costs a
 * commit one fdatasync per shard its changed rows happen to live in --
 * four for a pgbench TPC-B transaction.)  Recovery applies an entry only if
 * its transaction committed, and applies the ends of versions after all
 * shards are loaded (keydir.c).  Row locks are not written anywhere: they
 * do not survive a crash, as heap's do not matter after one.  (That is why
 * a transaction that locked rows cannot PREPARE, armdb_xact.c.)
 *
 * Every UPDATE is a non-HOT update for now: the new version gets index
 * entries of its own (*update_indexes = true).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/datum.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/visibility.h"

/* what an UPDATE knows about its key columns */
typedef enum KeyState
{
	KEYS_UNKNOWN,				/* not compared yet */
	KEYS_INTACT,				/* no key column changes: FOR NO KEY UPDATE */
	KEYS_CHANGED				/* a key column changes (or DELETE) */
} KeyState;

/* NOWAIT met a lock: heap's error */
static void row_lock_not_available(Relation rel) pg_attribute_noreturn();

static void
row_lock_not_available(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not obtain lock on row in relation \"%s\"",
					RelationGetRelationName(rel))));
}

/*
 * Wait for transaction xwait as wait_policy says: block, skip (false), or
 * fail with heap's error.
 */
static bool
wait_for_xact(Relation rel, TransactionId xwait, ItemPointer tid,
			  LockWaitPolicy wait_policy, XLTW_Oper oper)
{
	switch (wait_policy)
	{
		case LockWaitBlock:
			XactLockTableWait(xwait, rel, tid, oper);
			break;
		case LockWaitSkip:
			if (!ConditionalXactLockTableWait(xwait))
				return false;
			break;
		case LockWaitError:
			if (!ConditionalXactLockTableWait(xwait))
				row_lock_not_available(rel);
			break;
	}
	return true;
}

/*
 * heap_acquire_tuplock(): queue for the row on the tuple lock, as
 * wait_policy says; false only when skipping.
 */
static bool
acquire_tuplock(Relation rel, ItemPointer tid, LockTupleMode mode,
				LockWaitPolicy wait_policy, bool *have_tuple_lock)
{
	LOCKMODE	hwmode = armdb_tuple_lock_hwmode(mode);

	if (*have_tuple_lock)
		return true;
	switch (wait_policy)
	{
		case LockWaitBlock:
			LockTuple(rel, tid, hwmode);
			break;
		case LockWaitSkip:
			if (!ConditionalLockTuple(rel, tid, hwmode))
				return false;
			break;
		case LockWaitError:
			if (!ConditionalLockTuple(rel, tid, hwmode))
				row_lock_not_available(rel);
			break;
	}
	*have_tuple_lock = true;
	return true;
}

static ArmdbPage *
page_of(ArmdbRelKeydir *kd, ItemPointer tid, uint64 *slot)
{
	ArmdbPage  *page = NULL;

	if (armdb_slot_of_tid(kd, tid, slot))
		page = armdb_keydir_page(kd, *slot / ARMDB_SLOTS_PER_PAGE);
	if (page == NULL)
		elog(ERROR, "armdb: no row version at (%u,%u)",
			 ItemPointerGetBlockNumberNoCheck(tid),
			 ItemPointerGetOffsetNumberNoCheck(tid));
	return page;
}

/* heap's xmax_infomask_changed() */
static inline bool
xmax_changed(uint16 new_infomask, uint16 old_infomask)
{
	const uint16 interesting = HEAP_XMAX_IS_MULTI | HEAP_XMAX_LOCK_ONLY |
		HEAP_LOCK_MASK;

	return (new_infomask & interesting) != (old_infomask & interesting);
}

/* heap's UpdateXmaxHintBits() */
static void
update_xmax_hint_bits(ArmdbVersion *v, TransactionId xid)
{
	if (!(v->infomask & (HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID)))
	{
		if (!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) && TransactionIdDidCommit(xid))
			armdb_version_set_hint_bits(v, HEAP_XMAX_COMMITTED);
		else
			armdb_version_set_hint_bits(v, HEAP_XMAX_INVALID);
	}
}

/* Store a new xmax and its bits (from armdb_compute_new_xmax). */
static void
set_xmax(ArmdbVersion *v, TransactionId xmax, uint16 infomask,
		 uint16 infomask2)
{
	v->infomask &= ~HEAP_XMAX_BITS;
	v->infomask2 &= ~(HEAP_KEYS_UPDATED | ARMDB_V2_KEYS_UNKNOWN);
	v->infomask |= infomask;
	v->infomask2 |= infomask2;
	v->xmax = xmax;
}

/*
 * The slot of the version's newer version (heap: t_ctid != t_self), if an
 * update made one in this relation.
 */
static bool
newer_version(const ArmdbVersion *v, uint64 slot, uint64 *newer)
{
	if (armdb_version_is_speculative(v) || v->ctid == slot ||
		v->ctid == ARMDB_CTID_MOVED)
		return false;
	*newer = v->ctid;
	return true;
}

/*
 * Is an UPDATE of this version between setting its xmax and linking its
 * new version (file header: the link window)?  Only a no-key update, or
 * one whose key question is open, matters: lockers wait for key updates
 * and deletes anyway.  v is a copy, or the caller holds the page lock.
 */
static bool
link_pending(ArmdbVersion *v, uint64 slot)
{
	if ((v->infomask & HEAP_XMAX_INVALID) ||
		HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
		armdb_version_is_speculative(v) || v->ctid != slot ||
		((v->infomask2 & HEAP_KEYS_UPDATED) &&
		 !(v->infomask2 & ARMDB_V2_KEYS_UNKNOWN)))
		return false;
	return TransactionIdIsInProgress(armdb_version_get_update_xid(v));
}

/* Let an updater finish linking its new version (page lock not held). */
static void
wait_for_link(void)
{
	CHECK_FOR_INTERRUPTS();
	pg_usleep(100L);
}

static void
fill_failure(TM_FailureData *tmfd, ArmdbVersion *v, uint64 slot,
			 TM_Result result)
{
	if (v->ctid == ARMDB_CTID_MOVED && !armdb_version_is_speculative(v))
		ItemPointerSetMovedPartitions(&tmfd->ctid);
	else
		armdb_slot_to_tid(armdb_version_ctid_is_self(v, slot) ? slot : v->ctid,
						  &tmfd->ctid);
	tmfd->xmax = armdb_version_get_update_xid(v);
	if (result == TM_SelfModified)
		tmfd->cmax = armdb_version_get_cmax(v);
	else
		tmfd->cmax = InvalidCommandId;
	tmfd->traversed = false;
}

/* ----------------
 * Key columns
 * ----------------
 */

/* Does the relation have key columns (INDEX_ATTR_BITMAP_KEY) at all? */
static bool
has_key_columns(Relation rel)
{
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	bool		result = !bms_is_empty(keys);

	bms_free(keys);
	return result;
}

/*
 * heap's HeapDetermineColumnsInfo(), for the key columns: does a key column
 * of newslot differ from oldslot's, binary?  (A value that is equal but
 * stored differently counts as changed, as in heap: the safe side.)
 */
static bool
key_columns_differ(Relation rel, TupleTableSlot *oldslot,
				   TupleTableSlot *newslot)
{
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		differ = false;
	int			x = -1;

	while (!differ && (x = bms_next_member(keys, x)) >= 0)
	{
		AttrNumber	attnum = x + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		Datum		oldval;
		Datum		newval;
		bool		oldnull;
		bool		newnull;

		if (attnum <= 0)
		{
			differ = true;		/* no system column is a key; be safe */
			break;
		}
		att = TupleDescAttr(desc, attnum - 1);
		oldval = slot_getattr(oldslot, attnum, &oldnull);
		newval = slot_getattr(newslot, attnum, &newnull);
		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldval, newval, att->attbyval,
									   att->attlen)))
			differ = true;
	}
	bms_free(keys);
	return differ;
}

/* Does the UPDATE of the version at tid to newslot change a key column? */
static bool
update_changes_keys(Relation rel, ItemPointer tid, TupleTableSlot *newslot)
{
	TupleTableSlot *oldslot;
	bool		differ = true;

	oldslot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	if (armdb_fetch_row_version(rel, tid, SnapshotAny, oldslot))
		differ = key_columns_differ(rel, oldslot, newslot);
	ExecDropSingleTupleTableSlot(oldslot);
	return differ;
}

/*
 * Settle ARMDB_V2_KEYS_UNKNOWN on the version in slot (file header): read
 * it and its newer version and compare their key columns.  Anything odd --
 * the newer version gone, or not made by the updater -- leaves the safe
 * answer, a key update.  Nothing is settled while the new version is not
 * linked yet (link_pending) or when there is none (the update aborted);
 * returns whether the flag was settled.  The key columns are the
 * relation's when settling, not when updating: a unique index dropped in
 * between makes its columns count as non-key (a foreign key's own index
 * cannot be dropped while the foreign key exists).
 */
static bool
settle_keys_updated(Relation rel, ArmdbRelKeydir *kd, uint64 slot)
{
	bool		settled = false;
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	ArmdbVersion seen;
	ArmdbVersion newer_seen;
	uint64		newer;
	bool		differ = true;

	LWLockAcquire(&page->lock, LW_SHARED);
	seen = *v;
	LWLockRelease(&page->lock);
	if (!(seen.infomask2 & ARMDB_V2_KEYS_UNKNOWN) ||
		!newer_version(&seen, slot, &newer))
		return false;

	/* set_xmax() clears the flag when xmax becomes a MultiXact: be safe */
	if (!(seen.infomask & HEAP_XMAX_IS_MULTI))
	{
		(void) armdb_version_lookup(kd, newer, SnapshotAny, &newer_seen);
		if (newer_seen.file_id != 0 &&
			TransactionIdEquals(newer_seen.xmin, seen.xmax))
		{
			TupleTableSlot *newslot;
			ItemPointerData otid;
			ItemPointerData ntid;

			newslot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
											   &TTSOpsHeapTuple);
			armdb_slot_to_tid(slot, &otid);
			armdb_slot_to_tid(newer, &ntid);
			if (armdb_fetch_row_version(rel, &ntid, SnapshotAny, newslot))
				differ = update_changes_keys(rel, &otid, newslot);
			ExecDropSingleTupleTableSlot(newslot);
		}
	}

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	if ((v->infomask2 & ARMDB_V2_KEYS_UNKNOWN) &&
		TransactionIdEquals(v->xmax, seen.xmax) && v->ctid == seen.ctid)
	{
		v->infomask2 &= ~ARMDB_V2_KEYS_UNKNOWN;
		if (!differ)
			v->infomask2 &= ~HEAP_KEYS_UPDATED;
		settled = true;
	}
	LWLockRelease(&page->lock);
	return settled;
}

/* ----------------
 * DELETE and UPDATE
 * ----------------
 */

/*
 * heap_delete, and heap_update up to its new tuple: decide whether the
 * current transaction may end the version at tid (newslot: the UPDATE's
 * new row, NULL for DELETE), waiting for conflicting transactions as heap
 * does, and if so set its xmax -- keeping its live lockers -- with ctid its
 * own slot (or ARMDB_CTID_MOVED when the row moves to another partition).
 * The caller links an UPDATE's new version afterwards; *lockers gets the
 * xmax that version starts with (lockers that stay, heap's
 * xmax_new_tuple), *lockmode the row lock the operation took.
 */
static TM_Result
end_version(Relation rel, ArmdbRelKeydir *kd, ItemPointer tid, CommandId cid,
			Snapshot crosscheck, bool wait, TupleTableSlot *newslot,
			KeyState keys, bool changing_part, TM_FailureData *tmfd,
			LockTupleMode *lockmode, ArmdbVersion *lockers)
{
	uint64		slot;
	ArmdbPage  *page = page_of(kd, tid, &slot);
	ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	TransactionId xid = GetCurrentTransactionId();
	const char *what = newslot ? "update" : "delete";
	XLTW_Oper	oper = newslot ? XLTW_Update : XLTW_Delete;
	LockTupleMode mode = LockTupleExclusive;
	bool		have_tuple_lock = false;
	bool		checked_lockers;
	bool		locker_remains;
	TransactionId new_xmax;
	uint16		new_infomask;
	uint16		new_infomask2;
	HeapTupleHeaderData hdr;
	CommandId	cmax = cid;
	bool		iscombo;
	TM_Result	result;

	memset(lockers, 0, sizeof(*lockers));
	lockers->infomask = HEAP_XMAX_INVALID;

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
retry:
	checked_lockers = false;
	locker_remains = false;
	if (v->file_id == 0)
	{
		LWLockRelease(&page->lock);
		elog(ERROR, "armdb: attempted to %s a row version that does not exist",
			 what);
	}
	result = armdb_version_satisfies_update(v, slot, cid);
	if (result == TM_Invisible)
	{
		LWLockRelease(&page->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("attempted to %s invisible tuple", what)));
	}

	/*
	 * Compare key columns now only if somebody is in xmax, whose lock may
	 * conflict with ours or must be kept (file header).
	 */
	if (keys == KEYS_UNKNOWN &&
		!(result == TM_Ok && (v->infomask & HEAP_XMAX_INVALID)))
	{
		LWLockRelease(&page->lock);
		keys = update_changes_keys(rel, tid, newslot) ? KEYS_CHANGED :
			KEYS_INTACT;
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		goto retry;
	}
	if (keys == KEYS_INTACT)
		mode = LockTupleNoKeyExclusive;

	if (result == TM_BeingModified && wait)
	{
		TransactionId xwait = v->xmax;
		uint16		infomask = v->infomask;
		bool		can_continue = false;

		if (infomask & HEAP_XMAX_IS_MULTI)
		{
			bool		current_is_member = false;
			TransactionId update_xid = InvalidTransactionId;

			if (armdb_multi_conflicts(xwait, infomask, mode, &current_is_member))
			{
				int			remain;

				LWLockRelease(&page->lock);
				/* no tuple lock if we hold a row lock already: deadlock */
				if (!current_is_member)
					acquire_tuplock(rel, tid, mode, LockWaitBlock,
									&have_tuple_lock);
				armdb_multi_wait(xwait, armdb_mxstatus_for_lock(mode, true),
								 infomask, false, rel, tid, oper, &remain);
				checked_lockers = true;
				locker_remains = remain != 0;
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				if (xmax_changed(v->infomask, infomask) ||
					!TransactionIdEquals(v->xmax, xwait))
					goto retry;
			}

			/* lockers may remain (ours, key-share ones); an updater may not */
			if (!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
				update_xid = armdb_version_get_multi_update_xid(v);
			if (!TransactionIdIsValid(update_xid) ||
				TransactionIdDidAbort(update_xid))
				can_continue = true;
		}
		else if (TransactionIdIsCurrentTransactionId(xwait) ||
				 (HEAP_XMAX_IS_KEYSHR_LOCKED(infomask) && keys == KEYS_INTACT))
		{
			/* our own lock, or a key-share lock we do not conflict with */
			checked_lockers = true;
			locker_remains = true;
			can_continue = true;
		}
		else
		{
			LWLockRelease(&page->lock);
			acquire_tuplock(rel, tid, mode, LockWaitBlock, &have_tuple_lock);
			XactLockTableWait(xwait, rel, tid, oper);
			checked_lockers = true;
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			if (xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			update_xmax_hint_bits(v, xwait);
			if (v->infomask & HEAP_XMAX_INVALID)
				can_continue = true;
		}

		if (can_continue)
			result = TM_Ok;
		else if (armdb_version_ctid_is_self(v, slot))
			result = TM_Deleted;
		else
			result = TM_Updated;
	}

	if (crosscheck != InvalidSnapshot && result == TM_Ok &&
		!armdb_version_satisfies(v, slot, crosscheck))
		result = TM_Updated;

	*lockmode = mode;
	if (result != TM_Ok)
	{
		fill_failure(tmfd, v, slot, result);
		LWLockRelease(&page->lock);
		if (have_tuple_lock)
			UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
		return result;
	}

	CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));

	/* the old version's xmax: us, with the lockers that stay */
	MultiXactIdSetOldestMember();
	armdb_compute_new_xmax(v->xmax, v->infomask, v->infomask2, xid, mode, true,
						   &new_xmax, &new_infomask, &new_infomask2);

	/* the new version's: the lockers that stay (heap's xmax_new_tuple) */
	if (newslot != NULL && !(v->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_LOCKED_UPGRADED(v->infomask) &&
		!(checked_lockers && !locker_remains))
	{
		lockers->xmax = v->xmax;
		if (v->infomask & HEAP_XMAX_IS_MULTI)
			armdb_multi_hint_bits(v->xmax, &lockers->infomask,
								  &lockers->infomask2);
		else
			lockers->infomask = HEAP_XMAX_KEYSHR_LOCK | HEAP_XMAX_LOCK_ONLY;
	}

	/* combo command id if we inserted it ourselves (combocid.c) */
	memset(&hdr, 0, sizeof(hdr));
	hdr.t_infomask = v->infomask;
	HeapTupleHeaderSetXmin(&hdr, v->xmin);
	hdr.t_choice.t_heap.t_field3.t_cid = v->cid;
	HeapTupleHeaderAdjustCmax(&hdr, &cmax, &iscombo);

	set_xmax(v, new_xmax, new_infomask, new_infomask2);
	v->infomask &= ~HEAP_COMBOCID;
	if (iscombo)
		v->infomask |= HEAP_COMBOCID;
	if (keys == KEYS_UNKNOWN)
	{
		Assert(v->infomask2 & HEAP_KEYS_UPDATED);
		v->infomask2 |= ARMDB_V2_KEYS_UNKNOWN;
	}
	v->cid = cmax;
	v->ctid = changing_part ? ARMDB_CTID_MOVED : (uint32) slot;
	LWLockRelease(&page->lock);
	if (have_tuple_lock)
		UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
	return TM_Ok;
}

/* ----------------
 * Row locks
 * ----------------
 */

/*
 * heap's test_lockmode_for_conflict(): may the current transaction lock a
 * version (in slot) in mode, given that xid holds status on it?  Sets
 * *needwait if it has to wait for xid first; TM_SelfModified if the lock
 * is ours already.
 */
static TM_Result
test_lockmode_for_conflict(MultiXactStatus status, TransactionId xid,
						   LockTupleMode mode, ArmdbVersion *v, uint64 slot,
						   bool *needwait)
{
	LOCKMODE	held = armdb_tuple_lock_hwmode(armdb_mxstatus_mode(status));
	LOCKMODE	wanted = armdb_tuple_lock_hwmode(mode);

	*needwait = false;
	if (TransactionIdIsCurrentTransactionId(xid))
		return TM_SelfModified;
	if (TransactionIdIsInProgress(xid))
	{
		*needwait = DoLockModesConflict(held, wanted);
		return TM_Ok;
	}
	if (TransactionIdDidAbort(xid))
		return TM_Ok;
	if (TransactionIdDidCommit(xid))
	{
		/* a finished locker is gone; a committed update stays */
		if (!ISUPDATE_from_mxstatus(status) || !DoLockModesConflict(held, wanted))
			return TM_Ok;
		return armdb_version_ctid_is_self(v, slot) ? TM_Deleted : TM_Updated;
	}
	return TM_Ok;				/* crashed */
}

/*
 * heap_lock_updated_tuple(): lock the newer versions of a row too, from
 * slot first on, after its older version was locked in mode while an
 * update of it was in progress (or committed without touching the key).
 * Otherwise a later DELETE of a newer version would not see our lock.
 * Waits for conflicting holders without the tuple lock, as heap does.
 */
static TM_Result
lock_updated_chain(Relation rel, ArmdbRelKeydir *kd, uint16 prior_infomask,
				   TransactionId prior_raw_xmax, uint64 slot,
				   LockTupleMode mode)
{
	TransactionId xid = GetCurrentTransactionId();
	TransactionId prior_xmax;

	MultiXactIdSetOldestMember();
	prior_xmax = (prior_infomask & HEAP_XMAX_IS_MULTI) ?
		armdb_multi_get_update_xid(prior_raw_xmax) : prior_raw_xmax;

	for (;;)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion *v;
		ItemPointerData tid;
		TransactionId new_xmax;
		uint16		new_infomask;
		uint16		new_infomask2;
		uint64		newer;

		if (page == NULL)
			return TM_Ok;		/* the chain ends: nothing more to lock */
		v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
		armdb_slot_to_tid(slot, &tid);

retry:
		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);

		/* the end of the chain: a different row, or an aborted update */
		if (v->file_id == 0 ||
			(TransactionIdIsValid(prior_xmax) &&
			 !TransactionIdEquals(armdb_version_get_xmin(v), prior_xmax)) ||
			TransactionIdDidAbort(armdb_version_get_xmin(v)))
		{
			LWLockRelease(&page->lock);
			return TM_Ok;
		}

		if (!(v->infomask & HEAP_XMAX_INVALID))
		{
			bool		needwait = false;
			TM_Result	result = TM_Ok;
			TransactionId waitxid = InvalidTransactionId;

			if (link_pending(v, slot))
			{
				LWLockRelease(&page->lock);
				wait_for_link();
				goto retry;
			}
			if (v->infomask2 & ARMDB_V2_KEYS_UNKNOWN)
			{
				LWLockRelease(&page->lock);
				if (settle_keys_updated(rel, kd, slot))
					goto retry;
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				/* unsettled: the safe answer, a key update, stands */
			}
			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				MultiXactMember *members;
				int			nmembers;

				nmembers = GetMultiXactIdMembers(v->xmax, &members, false,
												 HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));
				for (int i = 0; i < nmembers; i++)
				{
					result = test_lockmode_for_conflict(members[i].status,
														members[i].xid, mode,
														v, slot, &needwait);
					if (needwait)
						waitxid = members[i].xid;
					if (result != TM_Ok || needwait)
						break;
				}
				if (nmembers > 0)
					pfree(members);
			}
			else
			{
				int			status = armdb_xmax_status(v->infomask,
													   v->infomask2);

				if (status < 0)
				{
					LWLockRelease(&page->lock);
					elog(ERROR, "armdb: invalid lock status in row version");
				}
				result = test_lockmode_for_conflict((MultiXactStatus) status,
													v->xmax, mode, v, slot,
													&needwait);
				waitxid = v->xmax;
			}

			if (needwait)
			{
				LWLockRelease(&page->lock);
				XactLockTableWait(waitxid, rel, &tid, XLTW_LockUpdated);
				goto retry;
			}
			if (result != TM_Ok && result != TM_SelfModified)
			{
				LWLockRelease(&page->lock);
				return result;
			}
			if (result == TM_SelfModified)
				goto next;		/* locked by us already */
		}

		armdb_compute_new_xmax(v->xmax, v->infomask, v->infomask2, xid, mode,
							   false, &new_xmax, &new_infomask, &new_infomask2);
		armdb_xact_note_row_lock();
		set_xmax(v, new_xmax, new_infomask, new_infomask2);

next:
		/* we may have locked it inside an update's link window */
		if (link_pending(v, slot))
		{
			LWLockRelease(&page->lock);
			wait_for_link();
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			goto next;
		}
		if ((v->infomask & HEAP_XMAX_INVALID) ||
			!newer_version(v, slot, &newer) ||
			armdb_version_is_only_locked(v))
		{
			LWLockRelease(&page->lock);
			return TM_Ok;
		}
		prior_xmax = armdb_version_get_update_xid(v);
		LWLockRelease(&page->lock);
		slot = newer;
	}
}

/*
 * heap_lock_tuple(): lock the version at tid in mode, waiting for
 * conflicting holders as wait_policy says; with follow_updates, lock the
 * newer versions of an updated row too.
 */
static TM_Result
lock_version(Relation rel, ArmdbRelKeydir *kd, ItemPointer tid, CommandId cid,
			 LockTupleMode mode, LockWaitPolicy wait_policy,
			 bool follow_updates, TM_FailureData *tmfd)
{
	uint64		slot;
	ArmdbPage  *page = page_of(kd, tid, &slot);
	ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	bool		first_time = true;
	bool		skip_tuple_lock = false;
	bool		have_tuple_lock = false;
	TransactionId new_xmax;
	uint16		new_infomask;
	uint16		new_infomask2;
	TM_Result	result;

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
retry:
	if (v->file_id == 0)
	{
		LWLockRelease(&page->lock);
		elog(ERROR, "armdb: attempted to lock a row version that does not exist");
	}
	result = armdb_version_satisfies_update(v, slot, cid);
	if (result == TM_Invisible)
	{
		/*
		 * As heap_lock_tuple: possible only when ON CONFLICT DO UPDATE meets
		 * a row this command inserted; the caller raises the proper error.
		 */
		goto out_locked;
	}
	if (result == TM_BeingModified || result == TM_Updated ||
		result == TM_Deleted)
	{
		TransactionId xwait = v->xmax;
		uint16		infomask = v->infomask;
		uint16		infomask2 = v->infomask2;
		uint64		newer = 0;
		bool		has_newer = newer_version(v, slot, &newer);
		bool		require_sleep;

		LWLockRelease(&page->lock);

		/*
		 * A key-share lock does not wait for a no-key update, so it must see
		 * the update's new version linked, and know whether the key changed.
		 */
		if (mode == LockTupleKeyShare)
		{
			ArmdbVersion seen = *v;

			seen.xmax = xwait;
			seen.infomask = infomask;
			seen.infomask2 = infomask2;
			if (link_pending(&seen, slot))
			{
				wait_for_link();
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				goto retry;
			}
			if ((infomask2 & ARMDB_V2_KEYS_UNKNOWN) &&
				settle_keys_updated(rel, kd, slot))
			{
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				goto retry;
			}
		}

		/*
		 * A lock as strong held by any of our (sub)transactions is ours
		 * already: succeed without the tuple lock, which could deadlock
		 * against a waiter for a stronger one.
		 */
		if (first_time)
		{
			first_time = false;
			if (infomask & HEAP_XMAX_IS_MULTI)
			{
				MultiXactMember *members;
				int			nmembers;
				bool		held = false;

				nmembers = GetMultiXactIdMembers(xwait, &members, false,
												 HEAP_XMAX_IS_LOCKED_ONLY(infomask));
				for (int i = 0; i < nmembers && !held; i++)
				{
					if (!TransactionIdIsCurrentTransactionId(members[i].xid))
						continue;
					if (armdb_mxstatus_mode(members[i].status) >= mode)
						held = true;
					else
						skip_tuple_lock = true; /* upgrading our own lock */
				}
				if (nmembers > 0)
					pfree(members);
				if (held)
				{
					result = TM_Ok;
					goto out_unlocked;
				}
			}
			else if (TransactionIdIsCurrentTransactionId(xwait))
			{
				bool		held = false;

				switch (mode)
				{
					case LockTupleKeyShare:
						held = true;
						break;
					case LockTupleShare:
						held = HEAP_XMAX_IS_SHR_LOCKED(infomask) ||
							HEAP_XMAX_IS_EXCL_LOCKED(infomask);
						break;
					case LockTupleNoKeyExclusive:
						held = HEAP_XMAX_IS_EXCL_LOCKED(infomask);
						break;
					case LockTupleExclusive:
						held = HEAP_XMAX_IS_EXCL_LOCKED(infomask) &&
							(infomask2 & HEAP_KEYS_UPDATED);
						break;
				}
				if (held)
				{
					result = TM_Ok;
					goto out_unlocked;
				}
			}
		}

		/* cases that need no waiting for the holders */
		require_sleep = true;
		if (mode == LockTupleKeyShare)
		{
			/*
			 * Key share conflicts only with key updates and deletes.  If the
			 * row was updated without touching the key, lock its newer
			 * versions too, before retaking the page lock (deadlocks).
			 */
			if (!(infomask2 & HEAP_KEYS_UPDATED))
			{
				bool		updated = !HEAP_XMAX_IS_LOCKED_ONLY(infomask);

				if (follow_updates && updated && has_newer)
				{
					TM_Result	res = lock_updated_chain(rel, kd, infomask,
														 xwait, newer, mode);

					if (res != TM_Ok)
					{
						result = res;
						LWLockAcquire(&page->lock, LW_EXCLUSIVE);
						goto failed;
					}
				}
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				if (!armdb_version_is_only_locked(v) &&
					((v->infomask2 & HEAP_KEYS_UPDATED) || !updated))
					goto retry;
				require_sleep = false;
			}
		}
		else if (mode == LockTupleShare)
		{
			/* share conflicts with no other share lock */
			if (HEAP_XMAX_IS_LOCKED_ONLY(infomask) &&
				!HEAP_XMAX_IS_EXCL_LOCKED(infomask))
			{
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				if (!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
					HEAP_XMAX_IS_EXCL_LOCKED(v->infomask))
					goto retry;
				require_sleep = false;
			}
		}
		else if (mode == LockTupleNoKeyExclusive)
		{
			/* no-key exclusive conflicts with no key-share lock */
			if ((infomask & HEAP_XMAX_IS_MULTI) ?
				!armdb_multi_conflicts(xwait, infomask, mode, NULL) :
				HEAP_XMAX_IS_KEYSHR_LOCKED(infomask))
			{
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				if (xmax_changed(v->infomask, infomask) ||
					!TransactionIdEquals(v->xmax, xwait))
					goto retry;
				require_sleep = false;
			}
		}

		/* the only locker is us: a stronger lock needs no waiting either */
		if (require_sleep && !(infomask & HEAP_XMAX_IS_MULTI) &&
			TransactionIdIsCurrentTransactionId(xwait))
		{
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			if (xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			Assert(HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));
			require_sleep = false;
		}

		if (require_sleep && (result == TM_Updated || result == TM_Deleted))
		{
			/* a committed update or delete: waiting cannot help */
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			goto failed;
		}
		else if (require_sleep)
		{
			XLTW_Oper	oper = XLTW_Lock;

			if (!skip_tuple_lock &&
				!acquire_tuplock(rel, tid, mode, wait_policy, &have_tuple_lock))
			{
				result = TM_WouldBlock;
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				goto failed;
			}
			if (infomask & HEAP_XMAX_IS_MULTI)
			{
				MultiXactStatus status = armdb_mxstatus_for_lock(mode, false);

				if (!armdb_multi_wait(xwait, status, infomask,
									  wait_policy != LockWaitBlock, rel, tid,
									  oper, NULL))
				{
					if (wait_policy == LockWaitError)
						row_lock_not_available(rel);
					result = TM_WouldBlock;
					LWLockAcquire(&page->lock, LW_EXCLUSIVE);
					goto failed;
				}
			}
			else if (!wait_for_xact(rel, xwait, tid, wait_policy, oper))
			{
				result = TM_WouldBlock;
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				goto failed;
			}

			/* an update: lock its newer versions too */
			if (follow_updates && !HEAP_XMAX_IS_LOCKED_ONLY(infomask) &&
				has_newer)
			{
				TM_Result	res = lock_updated_chain(rel, kd, infomask, xwait,
													 newer, mode);

				if (res != TM_Ok)
				{
					result = res;
					LWLockAcquire(&page->lock, LW_EXCLUSIVE);
					goto failed;
				}
			}

			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			if (xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			if (!(infomask & HEAP_XMAX_IS_MULTI))
				update_xmax_hint_bits(v, xwait);
		}

		/* free if the holder aborted, only locked, or we needed no wait */
		if (!require_sleep || (v->infomask & HEAP_XMAX_INVALID) ||
			HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
			armdb_version_is_only_locked(v))
			result = TM_Ok;
		else if (!armdb_version_ctid_is_self(v, slot))
			result = TM_Updated;
		else
			result = TM_Deleted;
	}

failed:
	if (result != TM_Ok)
	{
		fill_failure(tmfd, v, slot, result);
		goto out_locked;
	}

	MultiXactIdSetOldestMember();
	armdb_compute_new_xmax(v->xmax, v->infomask, v->infomask2,
						   GetCurrentTransactionId(), mode, false,
						   &new_xmax, &new_infomask, &new_infomask2);
	armdb_xact_note_row_lock();

	/* command id untouched: a lock keeps an update's cmax, as heap */
	set_xmax(v, new_xmax, new_infomask, new_infomask2);
	if (HEAP_XMAX_IS_LOCKED_ONLY(new_infomask) &&
		!armdb_version_is_speculative(v))
		v->ctid = (uint32) slot;	/* no forward link */
	result = TM_Ok;

out_locked:
	LWLockRelease(&page->lock);
out_unlocked:
	if (have_tuple_lock)
		UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
	return result;
}

TM_Result
armdb_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				   Snapshot snapshot, Snapshot crosscheck, bool wait,
				   TM_FailureData *tmfd, bool changingPart)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion lockers;
	LockTupleMode lockmode;
	TM_Result	result;

	/* as heap: with changingPart the row went elsewhere, not away */
	result = end_version(rel, kd, tid, cid, crosscheck, wait, NULL,
						 KEYS_CHANGED, changingPart, tmfd, &lockmode,
						 &lockers);
	if (result != TM_Ok)
		return result;

	armdb_append_tombstone(kd, armdb_tid_to_slot(tid),
						   GetCurrentFullTransactionId());
	pgstat_count_heap_delete(rel);
	return TM_Ok;
}

TM_Result
armdb_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				   CommandId cid, Snapshot snapshot, Snapshot crosscheck,
				   bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				   bool *update_indexes)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		oslot = armdb_tid_to_slot(otid);
	uint64		nslot;
	ArmdbVersion lockers;
	ArmdbPage  *page;
	TM_Result	result;

	*update_indexes = true;

	/* without key columns no update can change one: no comparing */
	result = end_version(rel, kd, otid, cid, crosscheck, wait, slot,
						 has_key_columns(rel) ? KEYS_UNKNOWN : KEYS_INTACT,
						 false, tmfd, lockmode, &lockers);
	if (result != TM_Ok)
		return result;

	/* the new version, in our shard; then link the old one to it */
	armdb_insert_version(rel, kd, slot, cid, oslot, &lockers);
	nslot = armdb_tid_to_slot(&slot->tts_tid);
	page = armdb_keydir_page(kd, oslot / ARMDB_SLOTS_PER_PAGE);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	page->v[oslot % ARMDB_SLOTS_PER_PAGE].ctid = (uint32) nslot;
	LWLockRelease(&page->lock);

	pgstat_count_heap_update(rel, false);
	return TM_Ok;
}

/*
 * heapam_tuple_lock(): lock the version at tid, or with
 * TUPLE_LOCK_FLAG_FIND_LAST_VERSION the newest version of its row, and
 * return it in slot.
 */
TM_Result
armdb_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				 TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				 LockWaitPolicy wait_policy, uint8 flags,
				 TM_FailureData *tmfd)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	bool		follow_updates = (flags & TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS) != 0;
	TM_Result	result;

	tmfd->traversed = false;

retry:
	result = lock_version(rel, kd, tid, cid, mode, wait_policy, follow_updates,
						  tmfd);

	if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
	{
		TransactionId prior_xmax = tmfd->xmax;
		SnapshotData dirty;

		if (ItemPointerIndicatesMovedPartitions(&tmfd->ctid))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));

		/* follow the chain to the newest version, as heapam_tuple_lock */
		*tid = tmfd->ctid;
		tmfd->traversed = true;
		InitDirtySnapshot(dirty);
		for (;;)
		{
			uint64		nslot;
			ArmdbVersion nv;
			bool		visible;

			if (!armdb_slot_of_tid(kd, tid, &nslot))
				return TM_Deleted;
			visible = armdb_version_lookup(kd, nslot, &dirty, &nv);
			if (nv.file_id == 0 || !TransactionIdEquals(nv.xmin, prior_xmax))
				return TM_Deleted;	/* the row was deleted meanwhile */
			if (visible)
			{
				if (TransactionIdIsValid(dirty.xmax))
				{
					if (!wait_for_xact(rel, dirty.xmax, tid, wait_policy,
									   XLTW_FetchUpdated))
						return TM_WouldBlock;
					continue;
				}
				if (TransactionIdIsCurrentTransactionId(prior_xmax) &&
					armdb_version_get_cmin(&nv) >= cid)
				{
					tmfd->xmax = prior_xmax;
					tmfd->cmax = armdb_version_get_cmin(&nv);
					return TM_SelfModified;
				}
				goto retry;
			}
			/* updated or deleted by a committed transaction (or us) */
			if (nv.ctid == ARMDB_CTID_MOVED)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
			if (armdb_version_ctid_is_self(&nv, nslot))
				return TM_Deleted;
			armdb_slot_to_tid(nv.ctid, tid);
			prior_xmax = armdb_version_get_update_xid(&nv);
		}
	}

	/*
	 * As heapam_tuple_lock, the slot gets the version examined last, locked
	 * or not: ON CONFLICT DO UPDATE reads its xmin after TM_Invisible.
	 */
	if (!armdb_fetch_row_version(rel, tid, SnapshotAny, slot) && result == TM_Ok)
		elog(ERROR, "armdb: failed to fetch the row version just locked");
	return result;
}
