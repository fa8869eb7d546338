/*-------------------------------------------------------------------------
 *
 * armdb_update.c
 *	  DELETE, UPDATE and row locks on armdb tables.
 *
 * The protocol is heap's (heap_delete, heap_update, heap_lock_tuple,
 * heapam_tuple_lock; README.tuplock), on version records under their
 * virtual page's LWLock instead of tuple headers under a buffer lock:
 * HeapTupleSatisfiesUpdate decides, the tuple lock (LockTuple) orders
 * waiters, XactLockTableWait waits for the transaction in xmax, and xmax,
 * the command id and ctid are set as heap sets them.
 *
 * One simplification, for now: only the exclusive row lock modes exist (FOR
 * UPDATE and FOR NO KEY UPDATE, taken by UPDATE and DELETE too); FOR SHARE
 * and FOR KEY SHARE are refused.  So at most one transaction is ever in a
 * version's xmax and no MultiXact is needed.  The one case where heap would
 * still make one -- a row locked in an enclosing subtransaction and then
 * modified in a subtransaction, whose abort must not drop the outer lock --
 * is refused too, rather than silently losing the lock.
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
 * do not survive a crash, as heap's do not matter after one.
 *
 * Every UPDATE is a non-HOT update for now: the new version gets index
 * entries of its own (*update_indexes = true).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/visibility.h"

/* the heavyweight lock LockTuple takes for each row lock mode */
static const LOCKMODE tuple_lock_mode[] = {
	[LockTupleKeyShare] = AccessShareLock,
	[LockTupleShare] = RowShareLock,
	[LockTupleNoKeyExclusive] = ExclusiveLock,
	[LockTupleExclusive] = AccessExclusiveLock,
};

#define XMAX_BITS_MASK	(HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID | \
						 HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK | \
						 HEAP_XMAX_LOCK_ONLY)

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
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("could not obtain lock on row in relation \"%s\"",
								RelationGetRelationName(rel))));
			break;
	}
	return true;
}

typedef enum VersionOp
{
	OP_DELETE,
	OP_UPDATE,
	OP_LOCK
} VersionOp;

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

/* Which exclusive lock does a lock-only xmax stand for? */
static LockTupleMode
held_lock_mode(const ArmdbVersion *v)
{
	return (v->infomask2 & HEAP_KEYS_UPDATED) ? LockTupleExclusive :
		LockTupleNoKeyExclusive;
}

static void
refuse_shared_lock(LockTupleMode mode)
{
	if (mode == LockTupleKeyShare || mode == LockTupleShare)
		armdb_not_supported("FOR SHARE and FOR KEY SHARE row locks (also taken by foreign keys that reference the table)");
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

/*
 * Decide whether the current transaction may delete, update or lock the
 * version in slot, waiting for a conflicting transaction as heap does, and
 * if so set its xmax.  Returns with the page unlocked.  For OP_UPDATE the
 * caller sets ctid afterwards (armdb_update.c's header: the new version's
 * slot is not known yet).
 */
static TM_Result
modify_version(Relation rel, ArmdbRelKeydir *kd, ItemPointer tid,
			   CommandId cid, Snapshot crosscheck, bool wait,
			   LockWaitPolicy wait_policy, VersionOp op, LockTupleMode mode,
			   TM_FailureData *tmfd, ArmdbVersion *result_copy)
{
	uint64		slot;
	ArmdbPage  *page = page_of(kd, tid, &slot);
	ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	TransactionId xid = GetCurrentTransactionId();
	bool		have_tuple_lock = false;
	TM_Result	result;

	if (op == OP_LOCK)
		wait = true;			/* the wait policy decides */
	else
		wait_policy = wait ? LockWaitBlock : LockWaitError;

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
retry:
	if (v->file_id == 0)
	{
		LWLockRelease(&page->lock);
		elog(ERROR, "armdb: attempted to %s a row version that does not exist",
			 op == OP_LOCK ? "lock" : op == OP_UPDATE ? "update" : "delete");
	}
	result = armdb_version_satisfies_update(v, slot, cid);

	if (result == TM_Invisible && op == OP_LOCK)
	{
		/*
		 * As heap_lock_tuple: possible only when ON CONFLICT DO UPDATE meets
		 * a row this command inserted; the caller raises the proper error.
		 */
		LWLockRelease(&page->lock);
		return TM_Invisible;
	}
	if (result == TM_Invisible)
	{
		LWLockRelease(&page->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("attempted to %s invisible tuple",
						op == OP_LOCK ? "lock" : op == OP_UPDATE ? "update" : "delete")));
	}

	if (result == TM_BeingModified && wait)
	{
		TransactionId xwait = v->xmax;
		uint16		infomask = v->infomask;

		Assert(!(infomask & HEAP_XMAX_IS_MULTI));

		if (TransactionIdIsCurrentTransactionId(xwait))
		{
			/*
			 * Our own lock.  Heap keeps a lock taken in another of our
			 * subtransactions alive in a MultiXact; armdb has none yet.
			 */
			if (!TransactionIdEquals(xwait, xid) &&
				!(op == OP_LOCK && held_lock_mode(v) >= mode))
			{
				LWLockRelease(&page->lock);
				armdb_not_supported("modifying a row locked in an enclosing subtransaction");
			}
			if (op == OP_LOCK && held_lock_mode(v) >= mode)
			{
				LWLockRelease(&page->lock);
				return TM_Ok;	/* already held, as strongly */
			}
		}
		else
		{
			/* wait for the holder, queueing on the tuple lock as heap does */
			LWLockRelease(&page->lock);
			if (!have_tuple_lock)
			{
				switch (wait_policy)
				{
					case LockWaitBlock:
						LockTuple(rel, tid, tuple_lock_mode[mode]);
						break;
					case LockWaitSkip:
						if (!ConditionalLockTuple(rel, tid, tuple_lock_mode[mode]))
							return TM_WouldBlock;
						break;
					case LockWaitError:
						if (!ConditionalLockTuple(rel, tid, tuple_lock_mode[mode]))
							ereport(ERROR,
									(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
									 errmsg("could not obtain lock on row in relation \"%s\"",
											RelationGetRelationName(rel))));
						break;
				}
				have_tuple_lock = true;
			}
			if (!wait_for_xact(rel, xwait, tid, wait_policy,
							   op == OP_DELETE ? XLTW_Delete :
							   op == OP_UPDATE ? XLTW_Update : XLTW_Lock))
			{
				UnlockTuple(rel, tid, tuple_lock_mode[mode]);
				return TM_WouldBlock;
			}
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);

			/* someone else got in meanwhile: start over */
			if (xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			update_xmax_hint_bits(v, xwait);
		}

		/* free if the holder aborted or only locked the row */
		if ((v->infomask & HEAP_XMAX_INVALID) || armdb_version_is_only_locked(v))
			result = TM_Ok;
		else if (!armdb_version_ctid_is_self(v, slot))
			result = TM_Updated;
		else
			result = TM_Deleted;
	}
	else if (result == TM_BeingModified && !wait)
	{
		/* heap_delete/update with wait = false report the conflict */
	}

	if (crosscheck != InvalidSnapshot && result == TM_Ok &&
		!armdb_version_satisfies(v, slot, crosscheck))
		result = TM_Updated;

	if (result != TM_Ok)
	{
		fill_failure(tmfd, v, slot, result);
		*result_copy = *v;
		LWLockRelease(&page->lock);
		if (have_tuple_lock)
			UnlockTuple(rel, tid, tuple_lock_mode[mode]);
		return result;
	}

	if (op != OP_LOCK)
		CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));

	if (op == OP_LOCK)
	{
		armdb_xact_note_row_lock();
		/* xmax = us, lock only; command id untouched, as heap */
		v->infomask &= ~XMAX_BITS_MASK;
		v->infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
		if (mode == LockTupleExclusive)
			v->infomask2 |= HEAP_KEYS_UPDATED;
		else
			v->infomask2 &= ~HEAP_KEYS_UPDATED;
		v->xmax = xid;
	}
	else
	{
		HeapTupleHeaderData hdr;
		CommandId	cmax = cid;
		bool		iscombo;

		/* combo command id if we inserted it ourselves (combocid.c) */
		memset(&hdr, 0, sizeof(hdr));
		hdr.t_infomask = v->infomask;
		HeapTupleHeaderSetXmin(&hdr, v->xmin);
		hdr.t_choice.t_heap.t_field3.t_cid = v->cid;
		HeapTupleHeaderAdjustCmax(&hdr, &cmax, &iscombo);

		v->infomask &= ~(XMAX_BITS_MASK | HEAP_COMBOCID);
		if (iscombo)
			v->infomask |= HEAP_COMBOCID;
		/* DELETE and UPDATE take the key-exclusive lock: see the header */
		v->infomask2 |= HEAP_KEYS_UPDATED;
		v->xmax = xid;
		v->cid = cmax;
		v->ctid = (uint32) slot;
	}
	*result_copy = *v;
	LWLockRelease(&page->lock);
	if (have_tuple_lock)
		UnlockTuple(rel, tid, tuple_lock_mode[mode]);
	return TM_Ok;
}

/*
 * Append a tombstone of slot, by transaction fxid, to this backend's shard,
 * for recovery.
 */
void
armdb_append_tombstone(ArmdbRelKeydir *kd, uint64 slot, FullTransactionId fxid)
{
	uint32		shard = armdb_my_shard(kd);
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard);
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	ArmdbError	err;
	uint32		sealed;
	ArmdbPos	end;
	XLogRecPtr	wal_lsn = armdb_xact_log_xid();

	memset(&hdr, 0, sizeof(hdr));
	hdr.value_len = 0;
	hdr.xid = U64FromFullTransactionId(fxid);
	hdr.slot = slot;
	hdr.root_slot = slot;
	hdr.prev_slot = ARMDB_INVALID_SLOT;

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	rt->wal_lsn = Max(rt->wal_lsn, wal_lsn);
	armdb_shard_prepare(kd, rt, shard);
	hdr.gsn = (pg_atomic_fetch_add_u64(&kd->next_gsn, 1) & ARMDB_GSN_MAX) |
		ARMDB_GSN_FLAG_TOMBSTONE;
	if (!armdb_shard_append(&rt->st, files, &hdr, NULL, &loc, &sealed, &err))
		armdb_report_storage_error(ERROR, &err);
	armdb_note_sealed(files, sealed);
	end = armdb_shard_end(&rt->st);
	LWLockRelease(&rt->lock);
	armdb_xact_note_write(kd, shard, end);
	armdb_build_sealed_hints();
}

TM_Result
armdb_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				   Snapshot snapshot, Snapshot crosscheck, bool wait,
				   TM_FailureData *tmfd, bool changingPart)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion v;
	TM_Result	result;

	result = modify_version(rel, kd, tid, cid, crosscheck, wait, LockWaitBlock,
							OP_DELETE, LockTupleExclusive, tmfd, &v);
	if (result != TM_Ok)
		return result;

	/* as heap: the row went to another partition, not away */
	if (changingPart)
	{
		uint64		slot = armdb_tid_to_slot(tid);
		ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);

		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		page->v[slot % ARMDB_SLOTS_PER_PAGE].ctid = ARMDB_CTID_MOVED;
		LWLockRelease(&page->lock);
	}

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
	ArmdbVersion v;
	ArmdbPage  *page;
	TM_Result	result;

	/* the key-exclusive lock: see the file header */
	*lockmode = LockTupleExclusive;
	*update_indexes = true;

	result = modify_version(rel, kd, otid, cid, crosscheck, wait,
							LockWaitBlock, OP_UPDATE, LockTupleExclusive,
							tmfd, &v);
	if (result != TM_Ok)
		return result;

	/* the new version, in our shard; then link the old one to it */
	armdb_insert_version(rel, kd, slot, cid, oslot);
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
	ArmdbVersion v;
	TM_Result	result;

	refuse_shared_lock(mode);
	tmfd->traversed = false;

retry:
	result = modify_version(rel, kd, tid, cid, InvalidSnapshot, true,
							wait_policy, OP_LOCK, mode, tmfd, &v);

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
