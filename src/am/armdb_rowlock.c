/*-------------------------------------------------------------------------
 *
 * armdb_rowlock.c
 *	  Row lock modes, MultiXacts and the xmax they leave in a version record.
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
 * The functions here are heapam.c's static helpers for this (tupleLockExtra
 * Info, compute_new_xmax_infomask, GetMultiXactIdHintBits,
 * DoesMultiXactIdConflict, Do_MultiXactIdWait), written against an xmax
 * and infomask pair rather than a tuple header, so that armdb_update.c reads
 * like heap_delete, heap_update and heap_lock_tuple.  Nothing here touches
 * a version record: callers hold its page lock, or copied the fields.
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
#include "access/transam.h"
#include "access/xact.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"

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
