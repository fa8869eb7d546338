/*-------------------------------------------------------------------------
 *
 * armdb_rowlock.c
 *	  Row locks on armdb tables, their modes, MultiXacts and the xmax they
 *	  leave in a version record.
 *
 * A version's xmax holds what a heap tuple's xmax holds (README.tuplock):
 * nothing, one transaction that updated, deleted or locked the row, or a
 * MultiXact of several lockers and at most one updater.  The four row lock
 * modes (FOR KEY SHARE, FOR SHARE, FOR NO KEY UPDATE, FOR UPDATE) conflict
 * as the heavyweight lock modes heap maps them to; UPDATE takes FOR NO KEY
 * UPDATE when no key column changes (so foreign key checks, which take FOR
 * KEY SHARE, do not wait for it), DELETE and key-changing UPDATE take FOR
 * UPDATE.
 *
 * The first functions here are heapam.c's static helpers for this
 * (tupleLockExtraInfo, compute_new_xmax_infomask, GetMultiXactIdHintBits,
 * DoesMultiXactIdConflict, Do_MultiXactIdWait), written against an xmax
 * and infomask pair rather than a tuple header, so that armdb_update.c and
 * the locking below read like heap_delete, heap_update and heap_lock_tuple.
 * They touch no version record: callers hold its page lock, or copied the
 * fields.  Then come the helpers that DELETE and UPDATE (armdb_update.c)
 * share with the lockers: waiting on the tuple lock, setting a version's
 * xmax under its page lock, comparing key columns.  Last, row locking
 * itself (SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE,
 * foreign key checks, READ COMMITTED rechecks, ON CONFLICT DO UPDATE):
 * heap_lock_tuple, heap_lock_updated_tuple and heapam_tuple_lock, on
 * version records under their virtual page's LWLock instead of tuple
 * headers under a buffer lock.  The key columns and the link window that
 * lockers deal with are explained in armdb_update.c's file header.
 *
 * MultiXacts live in pg_multixact, as heap's; only version records (in
 * shared memory) point at them, and none survives a restart, so VACUUM
 * only has to keep relminmxid at or below the MultiXacts it leaves behind
 * (armdb_vacuum.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/sysattr.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/datum.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "keydir/visibility.h"

/*
 * For each row lock mode: the heavyweight lock LockTuple takes to queue
 * waiters, and the MultiXact member status of a locker and of an updater
 * (-1: the mode cannot update).  heapam.c's tupleLockExtraInfo.
 */
static const struct
{
	LOCKMODE	hwlock;
	int			lockstatus;
	int			updstatus;
}			mode_info[MaxLockTupleMode + 1] =
{
	[LockTupleKeyShare] = {AccessShareLock, MultiXactStatusForKeyShare, -1},
	[LockTupleShare] = {RowShareLock, MultiXactStatusForShare, -1},
	[LockTupleNoKeyExclusive] = {ExclusiveLock, MultiXactStatusForNoKeyUpdate,
	MultiXactStatusNoKeyUpdate},
	[LockTupleExclusive] = {AccessExclusiveLock, MultiXactStatusForUpdate,
	MultiXactStatusUpdate},
};

/* the row lock mode each MultiXact member status stands for */
static const LockTupleMode status_mode[MaxMultiXactStatus + 1] =
{
	[MultiXactStatusForKeyShare] = LockTupleKeyShare,
	[MultiXactStatusForShare] = LockTupleShare,
	[MultiXactStatusForNoKeyUpdate] = LockTupleNoKeyExclusive,
	[MultiXactStatusForUpdate] = LockTupleExclusive,
	[MultiXactStatusNoKeyUpdate] = LockTupleNoKeyExclusive,
	[MultiXactStatusUpdate] = LockTupleExclusive,
};

LOCKMODE
armdb_tuple_lock_hwmode(LockTupleMode mode)
{
	return mode_info[mode].hwlock;
}

LockTupleMode
armdb_mxstatus_mode(MultiXactStatus status)
{
	return status_mode[status];
}

static inline LOCKMODE
status_hwmode(MultiXactStatus status)
{
	return mode_info[status_mode[status]].hwlock;
}

/* heapam.c's get_mxact_status_for_lock() */
MultiXactStatus
armdb_mxstatus_for_lock(LockTupleMode mode, bool is_update)
{
	int			status = is_update ? mode_info[mode].updstatus :
		mode_info[mode].lockstatus;

	if (status == -1)
		elog(ERROR, "armdb: invalid row lock mode %d for %s", (int) mode,
			 is_update ? "an update" : "a lock");
	return (MultiXactStatus) status;
}

/*
 * The member status a single transaction in xmax has: what it locked the
 * row for, or what kind of update it made.  -1 for a lock-only xmax with no
 * lock bits (heap's pg_upgrade pattern, which armdb never writes).
 */
int
armdb_xmax_status(uint16 infomask, uint16 infomask2)
{
	if (HEAP_XMAX_IS_LOCKED_ONLY(infomask))
	{
		if (HEAP_XMAX_IS_KEYSHR_LOCKED(infomask))
			return MultiXactStatusForKeyShare;
		if (HEAP_XMAX_IS_SHR_LOCKED(infomask))
			return MultiXactStatusForShare;
		if (HEAP_XMAX_IS_EXCL_LOCKED(infomask))
			return (infomask2 & HEAP_KEYS_UPDATED) ?
				MultiXactStatusForUpdate : MultiXactStatusForNoKeyUpdate;
		return -1;
	}
	return (infomask2 & HEAP_KEYS_UPDATED) ?
		MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate;
}

/*
 * heapam.c's GetMultiXactIdHintBits(): the infomask bits a MultiXact xmax
 * needs -- the strongest lock among its members, whether one of them
 * updated, and whether that was a key update.
 */
void
armdb_multi_hint_bits(MultiXactId multi, uint16 *infomask, uint16 *infomask2)
{
	MultiXactMember *members;
	int			nmembers;
	uint16		bits = HEAP_XMAX_IS_MULTI;
	uint16		bits2 = 0;
	bool		has_update = false;
	LockTupleMode strongest = LockTupleKeyShare;

	nmembers = GetMultiXactIdMembers(multi, &members, false, false);
	for (int i = 0; i < nmembers; i++)
	{
		strongest = Max(strongest, status_mode[members[i].status]);
		if (members[i].status == MultiXactStatusForUpdate ||
			members[i].status == MultiXactStatusUpdate)
			bits2 |= HEAP_KEYS_UPDATED;
		if (ISUPDATE_from_mxstatus(members[i].status))
			has_update = true;
	}
	if (strongest >= LockTupleNoKeyExclusive)
		bits |= HEAP_XMAX_EXCL_LOCK;
	else if (strongest == LockTupleShare)
		bits |= HEAP_XMAX_SHR_LOCK;
	else
		bits |= HEAP_XMAX_KEYSHR_LOCK;
	if (!has_update)
		bits |= HEAP_XMAX_LOCK_ONLY;
	if (nmembers > 0)
		pfree(members);
	*infomask = bits;
	*infomask2 = bits2;
}

/*
 * heapam.c's DoesMultiXactIdConflict(): does a live member of multi, other
 * than the current transaction, hold a lock that conflicts with mode (or is
 * it an updater that did not abort)?  *current_is_member, if given, reports
 * whether the current transaction is a member.
 */
bool
armdb_multi_conflicts(MultiXactId multi, uint16 infomask, LockTupleMode mode,
					  bool *current_is_member)
{
	MultiXactMember *members;
	int			nmembers;
	bool		result = false;
	LOCKMODE	wanted = mode_info[mode].hwlock;

	if (HEAP_LOCKED_UPGRADED(infomask))
		return false;
	nmembers = GetMultiXactIdMembers(multi, &members, false,
									 HEAP_XMAX_IS_LOCKED_ONLY(infomask));
	for (int i = 0; i < nmembers; i++)
	{
		TransactionId memxid = members[i].xid;
		MultiXactStatus status = members[i].status;

		if (result && (current_is_member == NULL || *current_is_member))
			break;
		if (TransactionIdIsCurrentTransactionId(memxid))
		{
			if (current_is_member != NULL)
				*current_is_member = true;
			continue;
		}
		if (result || !DoLockModesConflict(status_hwmode(status), wanted))
			continue;
		if (ISUPDATE_from_mxstatus(status) ? TransactionIdDidAbort(memxid) :
			!TransactionIdIsInProgress(memxid))
			continue;			/* an aborted updater, or a finished locker */
		result = true;
	}
	if (nmembers > 0)
		pfree(members);
	return result;
}

/*
 * heapam.c's Do_MultiXactIdWait(): wait for every member of multi whose
 * lock conflicts with status, except the current transaction's own (with
 * nowait, return false instead of waiting).  *remaining, if given, counts
 * the members still running afterwards, ours included.  Others may have
 * changed the version's xmax meanwhile: the caller rechecks.
 */
bool
armdb_multi_wait(MultiXactId multi, MultiXactStatus status, uint16 infomask,
				 bool nowait, Relation rel, ItemPointer tid, XLTW_Oper oper,
				 int *remaining)
{
	MultiXactMember *members;
	int			nmembers;
	int			remain = 0;
	bool		result = true;

	nmembers = HEAP_LOCKED_UPGRADED(infomask) ? -1 :
		GetMultiXactIdMembers(multi, &members, false,
							  HEAP_XMAX_IS_LOCKED_ONLY(infomask));
	for (int i = 0; i < nmembers; i++)
	{
		TransactionId memxid = members[i].xid;

		if (TransactionIdIsCurrentTransactionId(memxid))
		{
			remain++;
			continue;
		}
		if (!DoLockModesConflict(status_hwmode(members[i].status),
								 status_hwmode(status)))
		{
			if (remaining && TransactionIdIsInProgress(memxid))
				remain++;
			continue;
		}
		if (nowait)
		{
			if (!(result = ConditionalXactLockTableWait(memxid)))
				break;
		}
		else
			XactLockTableWait(memxid, rel, tid, oper);
	}
	if (nmembers > 0)
		pfree(members);
	if (remaining)
		*remaining = remain;
	return result;
}

/* A MultiXact of a committed updater (xmax) and add_to_xmax, and its bits. */
static TransactionId
keep_committed_updater(TransactionId xmax, uint16 old_infomask2,
					   TransactionId add_to_xmax, MultiXactStatus new_status,
					   uint16 *infomask, uint16 *infomask2)
{
	MultiXactId multi;

	multi = MultiXactIdCreate(xmax, (old_infomask2 & HEAP_KEYS_UPDATED) ?
							  MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate,
							  add_to_xmax, new_status);
	armdb_multi_hint_bits(multi, infomask, infomask2);
	return multi;
}

/*
 * heapam.c's compute_new_xmax_infomask(): given a version's xmax and
 * infomask, and the current (sub)transaction add_to_xmax taking mode (to
 * update, or only to lock), compute the xmax and infomask bits to store.
 * Keeps every live locker and a committed updater, creating or expanding
 * a MultiXact when more than one transaction remains.  May create a
 * MultiXact (and so may ERROR): call before changing the record.
 *
 * The result bits replace the record's HEAP_XMAX_BITS, HEAP_KEYS_UPDATED
 * and ARMDB_V2_KEYS_UNKNOWN.  A version whose update left the key question
 * open (ARMDB_V2_KEYS_UNKNOWN) counts as a key update here, the safe side.
 */
void
armdb_compute_new_xmax(TransactionId xmax, uint16 old_infomask,
					   uint16 old_infomask2, TransactionId add_to_xmax,
					   LockTupleMode mode, bool is_update,
					   TransactionId *result_xmax, uint16 *result_infomask,
					   uint16 *result_infomask2)
{
	TransactionId new_xmax;
	uint16		new_infomask;
	uint16		new_infomask2;

	Assert(TransactionIdIsCurrentTransactionId(add_to_xmax));

restart:
	new_infomask = 0;
	new_infomask2 = 0;
	if (old_infomask & HEAP_XMAX_INVALID)
	{
		/* nobody else: just us (this case must come first, see heap) */
		new_xmax = add_to_xmax;
		if (is_update)
		{
			if (mode == LockTupleExclusive)
				new_infomask2 |= HEAP_KEYS_UPDATED;
		}
		else
		{
			new_infomask |= HEAP_XMAX_LOCK_ONLY;
			switch (mode)
			{
				case LockTupleKeyShare:
					new_infomask |= HEAP_XMAX_KEYSHR_LOCK;
					break;
				case LockTupleShare:
					new_infomask |= HEAP_XMAX_SHR_LOCK;
					break;
				case LockTupleNoKeyExclusive:
					new_infomask |= HEAP_XMAX_EXCL_LOCK;
					break;
				case LockTupleExclusive:
					new_infomask |= HEAP_XMAX_EXCL_LOCK;
					new_infomask2 |= HEAP_KEYS_UPDATED;
					break;
			}
		}
	}
	else if (old_infomask & HEAP_XMAX_IS_MULTI)
	{
		Assert(!(old_infomask & HEAP_XMAX_COMMITTED));

		/*
		 * Expand the MultiXact by us -- unless nobody in it matters any more
		 * (all lockers gone, and the updater, if any, aborted).
		 */
		if (HEAP_LOCKED_UPGRADED(old_infomask) ||
			(!MultiXactIdIsRunning(xmax, HEAP_XMAX_IS_LOCKED_ONLY(old_infomask)) &&
			 (HEAP_XMAX_IS_LOCKED_ONLY(old_infomask) ||
			  !TransactionIdDidCommit(armdb_multi_get_update_xid(xmax)))))
		{
			old_infomask &= ~HEAP_XMAX_IS_MULTI;
			old_infomask |= HEAP_XMAX_INVALID;
			goto restart;
		}
		new_xmax = MultiXactIdExpand((MultiXactId) xmax, add_to_xmax,
									 armdb_mxstatus_for_lock(mode, is_update));
		armdb_multi_hint_bits(new_xmax, &new_infomask, &new_infomask2);
	}
	else if (old_infomask & HEAP_XMAX_COMMITTED)
	{
		/* a committed updater stays, as the MultiXact's updater */
		new_xmax = keep_committed_updater(xmax, old_infomask2, add_to_xmax,
										  armdb_mxstatus_for_lock(mode, is_update),
										  &new_infomask, &new_infomask2);
	}
	else if (TransactionIdIsInProgress(xmax))
	{
		/* a live locker or updater and us: a new MultiXact of both */
		int			old_status = armdb_xmax_status(old_infomask, old_infomask2);

		if (old_status < 0)
		{
			elog(WARNING, "armdb: LOCK_ONLY found for xid in progress %u", xmax);
			old_infomask |= HEAP_XMAX_INVALID;
			old_infomask &= ~HEAP_XMAX_LOCK_ONLY;
			goto restart;
		}
		if (xmax == add_to_xmax)
		{
			/* our own lock: keep only the stronger of the two */
			Assert(HEAP_XMAX_IS_LOCKED_ONLY(old_infomask));
			mode = Max(mode, status_mode[old_status]);
			old_infomask |= HEAP_XMAX_INVALID;
			goto restart;
		}
		new_xmax = MultiXactIdCreate(xmax, (MultiXactStatus) old_status,
									 add_to_xmax,
									 armdb_mxstatus_for_lock(mode, is_update));
		armdb_multi_hint_bits(new_xmax, &new_infomask, &new_infomask2);
	}
	else if (!HEAP_XMAX_IS_LOCKED_ONLY(old_infomask) &&
			 TransactionIdDidCommit(xmax))
	{
		/*
		 * An updater that committed since we looked (this test must come
		 * after the in-progress one, as in heap, or a commit in between
		 * would drop the update) stays, as the MultiXact's updater.
		 */
		new_xmax = keep_committed_updater(xmax, old_infomask2, add_to_xmax,
										  armdb_mxstatus_for_lock(mode, is_update),
										  &new_infomask, &new_infomask2);
	}
	else
	{
		/* the holder ended (aborted, or only locked) since we looked */
		old_infomask |= HEAP_XMAX_INVALID;
		goto restart;
	}

	*result_xmax = new_xmax;
	*result_infomask = new_infomask;
	*result_infomask2 = new_infomask2;
}

/* ----------------
 * Waiting for holders, and version records under their page lock (also
 * used by DELETE and UPDATE)
 * ----------------
 */

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
bool
armdb_acquire_tuplock(Relation rel, ItemPointer tid, LockTupleMode mode,
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

ArmdbPage *
armdb_page_of_tid(ArmdbRelKeydir *kd, ItemPointer tid, uint64 *slot)
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
bool
armdb_xmax_changed(uint16 new_infomask, uint16 old_infomask)
{
	const uint16 interesting = HEAP_XMAX_IS_MULTI | HEAP_XMAX_LOCK_ONLY |
		HEAP_LOCK_MASK;

	return (new_infomask & interesting) != (old_infomask & interesting);
}

/* heap's UpdateXmaxHintBits() */
void
armdb_update_xmax_hint_bits(ArmdbVersion *v, TransactionId xid)
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
void
armdb_set_xmax(ArmdbVersion *v, TransactionId xmax, uint16 infomask,
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
 * update made one in this relation; ctid is the version's.
 */
static bool
newer_version(const ArmdbVersion *v, uint32 ctid, uint64 slot, uint64 *newer)
{
	if (armdb_version_is_speculative(v) || ctid == slot ||
		ctid == ARMDB_CTID_MOVED)
		return false;
	*newer = ctid;
	return true;
}

/*
 * Is an UPDATE of this version between setting its xmax and linking its
 * new version (file header: the link window)?  Only a no-key update, or
 * one whose key question is open, matters: lockers wait for key updates
 * and deletes anyway.  v is a copy, or the caller holds the page lock;
 * ctid is the version's.
 */
static bool
link_pending(ArmdbVersion *v, uint32 ctid, uint64 slot)
{
	if ((v->infomask & HEAP_XMAX_INVALID) ||
		HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
		armdb_version_is_speculative(v) || ctid != slot ||
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

void
armdb_fill_failure(TM_FailureData *tmfd, ArmdbVersion *v, uint64 slot,
				   TM_Result result)
{
	uint32		ctid = armdb_version_ctid(v, slot);

	if (ctid == ARMDB_CTID_MOVED && !armdb_version_is_speculative(v))
		ItemPointerSetMovedPartitions(&tmfd->ctid);
	else
		armdb_slot_to_tid(armdb_version_ctid_is_self(v, slot) ? slot : ctid,
						  &tmfd->ctid);
	tmfd->xmax = armdb_version_get_update_xid(v);
	if (result == TM_SelfModified)
		tmfd->cmax = armdb_version_get_cmax(v, slot);
	else
		tmfd->cmax = InvalidCommandId;
	tmfd->traversed = false;
}

/* ----------------
 * Key columns
 * ----------------
 */

/* Does the relation have key columns (INDEX_ATTR_BITMAP_KEY) at all? */
bool
armdb_has_key_columns(Relation rel)
{
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	bool		result = !bms_is_empty(keys);

	bms_free(keys);
	return result;
}

/*
 * heap's HeapDetermineColumnsInfo(), for the key columns: does a key column
 * of newslot differ from oldslot's (a heap tuple slot), binary?  (A value
 * that is equal but stored differently counts as changed, as in heap: the
 * safe side.)  armdb_columns_differ() compares.
 */
static bool
key_columns_differ(Relation rel, TupleTableSlot *oldslot,
				   TupleTableSlot *newslot)
{
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	bool		differ;

	differ = armdb_columns_differ(rel, keys,
								  ExecFetchSlotHeapTuple(oldslot, false, NULL),
								  newslot);
	bms_free(keys);
	return differ;
}

/* Does the UPDATE of the version at tid to newslot change a key column? */
bool
armdb_update_changes_keys(Relation rel, ItemPointer tid,
						  TupleTableSlot *newslot)
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
	uint32		seen_ctid;
	ArmdbVersion newer_seen;
	uint64		newer;
	bool		differ = true;

	LWLockAcquire(&page->lock, LW_SHARED);
	seen = *v;
	seen_ctid = armdb_version_ctid(v, slot);
	LWLockRelease(&page->lock);
	if (!(seen.infomask2 & ARMDB_V2_KEYS_UNKNOWN) ||
		!newer_version(&seen, seen_ctid, slot, &newer))
		return false;

	/* armdb_set_xmax() clears the flag if xmax becomes a MultiXact: be safe */
	if (!(seen.infomask & HEAP_XMAX_IS_MULTI))
	{
		(void) armdb_version_lookup(kd, newer, SnapshotAny, &newer_seen, NULL);
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
				differ = armdb_update_changes_keys(rel, &otid, newslot);
			ExecDropSingleTupleTableSlot(newslot);
		}
	}

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	if ((v->infomask2 & ARMDB_V2_KEYS_UNKNOWN) &&
		TransactionIdEquals(v->xmax, seen.xmax) &&
		armdb_version_ctid(v, slot) == seen_ctid)
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

			if (link_pending(v, armdb_version_ctid(v, slot), slot))
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
		armdb_xact_note_row_lock(rel);
		armdb_set_xmax(v, new_xmax, new_infomask, new_infomask2);

next:
		/* we may have locked it inside an update's link window */
		if (link_pending(v, armdb_version_ctid(v, slot), slot))
		{
			LWLockRelease(&page->lock);
			wait_for_link();
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			goto next;
		}
		if ((v->infomask & HEAP_XMAX_INVALID) ||
			!newer_version(v, armdb_version_ctid(v, slot), slot, &newer) ||
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
	ArmdbPage  *page = armdb_page_of_tid(kd, tid, &slot);
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
		uint32		ctid = armdb_version_ctid(v, slot);
		uint64		newer = 0;
		bool		has_newer = newer_version(v, ctid, slot, &newer);
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
			if (link_pending(&seen, ctid, slot))
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
				if (armdb_xmax_changed(v->infomask, infomask) ||
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
			if (armdb_xmax_changed(v->infomask, infomask) ||
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
				!armdb_acquire_tuplock(rel, tid, mode, wait_policy,
									   &have_tuple_lock))
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
			if (armdb_xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			if (!(infomask & HEAP_XMAX_IS_MULTI))
				armdb_update_xmax_hint_bits(v, xwait);
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
		armdb_fill_failure(tmfd, v, slot, result);
		goto out_locked;
	}

	MultiXactIdSetOldestMember();
	armdb_compute_new_xmax(v->xmax, v->infomask, v->infomask2,
						   GetCurrentTransactionId(), mode, false,
						   &new_xmax, &new_infomask, &new_infomask2);
	armdb_xact_note_row_lock(rel);

	/* command id untouched: a lock keeps an update's cmax, as heap */
	armdb_set_xmax(v, new_xmax, new_infomask, new_infomask2);
	if (HEAP_XMAX_IS_LOCKED_ONLY(new_infomask) &&
		!armdb_version_is_speculative(v))
		armdb_version_set_ctid(v, slot, (uint32) slot,
							   armdb_store_settings());	/* no forward link */
	result = TM_Ok;

out_locked:
	LWLockRelease(&page->lock);
out_unlocked:
	if (have_tuple_lock)
		UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
	return result;
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
			ArmdbVersionExtra nx;
			bool		visible;

			if (!armdb_slot_of_tid(kd, tid, &nslot))
				return TM_Deleted;
			visible = armdb_version_lookup(kd, nslot, &dirty, &nv, &nx);
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
					armdb_version_cmin_of(&nv, nx.cid) >= cid)
				{
					tmfd->xmax = prior_xmax;
					tmfd->cmax = armdb_version_cmin_of(&nv, nx.cid);
					return TM_SelfModified;
				}
				goto retry;
			}
			/* updated or deleted by a committed transaction (or us) */
			if (nx.ctid == ARMDB_CTID_MOVED)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
			if (!armdb_version_is_speculative(&nv) && nx.ctid == (uint32) nslot)
				return TM_Deleted;
			armdb_slot_to_tid(nx.ctid, tid);
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
