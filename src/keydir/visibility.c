/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Visibility rules for armdb version records.
 *
 * This is PostgreSQL 15's src/backend/access/heap/heapam_visibility.c ported
 * onto ArmdbVersion, as close to line by line as the data allows (design §3:
 * mirror heapam's protocol, not invent one).  A version record keeps heap's
 * t_infomask bits in infomask, heap's t_infomask2 flag bits in infomask2,
 * xmin, xmax and t_cid (cmin, cmax, combo id or xvac) as heap does, and in
 * ctid the slot of the newer version (its own slot if none), or the
 * speculative insertion token when ARMDB_V2_SPECULATIVE is set.  So each
 * routine below is its heap original with the HeapTupleHeader accessors
 * replaced:
 *
 *	 HeapTupleHeaderGetRawXmin/RawXmax	v->xmin / v->xmax
 *	 HeapTupleHeaderXmin*, GetXmin, ...	armdb_version_* (visibility.h)
 *	 HeapTupleHeaderGetCmin/Cmax		armdb_version_get_cmin/cmax
 *	 HeapTupleGetUpdateXid				armdb_version_get_multi_update_xid
 *	 t_self == t_ctid					armdb_version_ctid_is_self
 *	 SetHintBits						set_hint_bits
 *
 * Branches that cannot occur for armdb today (HEAP_MOVED_OFF/IN, MultiXact
 * xmax, locks) are kept: later increments port heap_update, heap_delete and
 * heap_lock_tuple on top of this file, and pg_upgrade'd bit patterns are
 * simply never produced.
 *
 * NOTE: all these routines may update the record's hint bits when they see
 * that the inserting or deleting transaction has committed or aborted.  The
 * caller must hold the LWLock of the record's virtual page (ArmdbPage.lock),
 * at least in shared mode, just as heap requires at least a shared content
 * lock on the tuple's buffer.
 *
 * NOTE: as in heap, with a non-MVCC snapshot we check
 * TransactionIdIsInProgress before TransactionIdDidCommit/DidAbort; with an
 * MVCC snapshot, XidInMVCCSnapshot before TransactionIdDidCommit.  See the
 * header comment of heapam_visibility.c for the race this avoids.
 *
 * Summary of visibility functions:
 *
 *	 version_satisfies_mvcc()
 *		  visible to supplied snapshot, excludes current command
 *	 armdb_version_satisfies_update()
 *		  visible to instant snapshot, with user-supplied command
 *		  counter and more complex result
 *	 version_satisfies_self()
 *		  visible to instant snapshot and current command
 *	 version_satisfies_dirty()
 *		  like version_satisfies_self(), but includes open transactions
 *	 armdb_version_satisfies_vacuum()
 *		  visible to any running transaction, used by VACUUM
 *	 version_satisfies_non_vacuumable()
 *		  Snapshot-style API for armdb_version_satisfies_vacuum
 *	 version_satisfies_toast()
 *		  visible unless part of interrupted vacuum, used for TOAST
 *	 version_satisfies_any()
 *		  all versions are visible
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "storage/procarray.h"
#include "utils/combocid.h"
#include "utils/snapmgr.h"

#include "keydir/visibility.h"


/*
 * version_header
 *
 * Fill a stack HeapTupleHeaderData with the fields of v that combocid.c's
 * HeapTupleHeaderGetCmin/GetCmax and heapam.c's HeapTupleGetUpdateXid read
 * (t_infomask, t_xmin, t_xmax, t_field3), so we can call those exported
 * functions instead of copying them.  Nothing else of the header is read;
 * the rest is zeroed.
 */
static inline void
version_header(const ArmdbVersion *v, CommandId cid, HeapTupleHeader tup)
{
	memset(tup, 0, SizeofHeapTupleHeader);
	tup->t_infomask = v->infomask;
	HeapTupleHeaderSetXmin(tup, v->xmin);
	HeapTupleHeaderSetXmax(tup, v->xmax);
	tup->t_choice.t_heap.t_field3.t_cid = cid;
}

/*
 * armdb_version_get_cmin
 *		HeapTupleHeaderGetCmin for a version record: the inserting command id,
 *		resolving a combo id.  Only valid in the inserting transaction.
 */
CommandId
armdb_version_get_cmin(ArmdbVersion *v, uint64 slot)
{
	return armdb_version_cmin_of(v, armdb_version_cid(v, slot));
}

/* ... of a copy of the record, v, with its command id */
CommandId
armdb_version_cmin_of(const ArmdbVersion *v, CommandId cid)
{
	HeapTupleHeaderData tup;

	version_header(v, cid, &tup);
	return HeapTupleHeaderGetCmin(&tup);
}

/*
 * armdb_version_get_cmax
 *		HeapTupleHeaderGetCmax for a version record: the deleting command id,
 *		resolving a combo id.  Only valid in the deleting transaction.
 */
CommandId
armdb_version_get_cmax(ArmdbVersion *v, uint64 slot)
{
	HeapTupleHeaderData tup;

	version_header(v, armdb_version_cid(v, slot), &tup);
	return HeapTupleHeaderGetCmax(&tup);
}

/*
 * armdb_version_get_multi_update_xid
 *		HeapTupleGetUpdateXid for a version record: the updating member of a
 *		MultiXact xmax (HEAP_XMAX_IS_MULTI set, HEAP_XMAX_LOCK_ONLY not set),
 *		or InvalidTransactionId if none.  heapam.c's MultiXactIdGetUpdateXid
 *		is static, so go through HeapTupleGetUpdateXid with a stack header.
 */
TransactionId
armdb_version_get_multi_update_xid(ArmdbVersion *v)
{
	return armdb_multi_get_update_xid(v->xmax);
}

/*
 * armdb_multi_get_update_xid
 *		The same for a MultiXact that is not lock-only, outside any record.
 */
TransactionId
armdb_multi_get_update_xid(MultiXactId multi)
{
	HeapTupleHeaderData tup;

	memset(&tup, 0, sizeof(tup));
	tup.t_infomask = HEAP_XMAX_IS_MULTI;
	HeapTupleHeaderSetXmax(&tup, multi);
	return HeapTupleGetUpdateXid(&tup);
}

/*
 * set_hint_bits
 *
 * SetHintBits() for a version record: set commit/abort hint bits.
 *
 * Heap refrains from setting a commit hint while the commit record may not
 * be flushed yet (asynchronous commit), because the page could reach disk
 * before the commit record.  Version records live only in shared memory and
 * are rebuilt from the data files and clog after a crash, so a hint can
 * never outlive a lost commit; we always set the bits, and there is no
 * buffer to dirty.
 *
 * The caller holds the virtual page's LWLock, at least shared, as heap
 * holds the buffer content lock.  Under a shared lock two backends may race
 * to set hints and one hint may be lost, which is harmless, as in heap;
 * non-hint bits change only under the exclusive lock, so they cannot be
 * lost this way.
 */
static inline void
set_hint_bits(ArmdbVersion *v, uint16 infomask)
{
	v->infomask |= infomask;
}

/*
 * armdb_version_set_hint_bits --- exported version of set_hint_bits()
 *
 * HeapTupleSetHintBits counterpart, for the ports of heapam.c code (e.g.
 * UpdateXmaxHintBits) that set hints themselves.
 */
void
armdb_version_set_hint_bits(ArmdbVersion *v, uint16 infomask)
{
	set_hint_bits(v, infomask);
}


/*
 * version_satisfies_self
 *		True iff the version is valid "for itself" (HeapTupleSatisfiesSelf).
 *
 * See SNAPSHOT_SELF's definition for the intended behaviour.
 *
 * The satisfaction of "itself" requires the following:
 *
 * ((Xmin == my-transaction &&				the row was updated by the current transaction, and
 *		(Xmax is null						it was not deleted
 *		 [|| Xmax != my-transaction)])			[or it was deleted by another transaction]
 * ||
 *
 * (Xmin is committed &&					the row was modified by a committed transaction, and
 *		(Xmax is null ||					the row has not been deleted, or
 *			(Xmax != my-transaction &&			the row was deleted by another transaction
 *			 Xmax is not committed)))			that has not been committed
 */
static bool
version_satisfies_self(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return false;

		/* Used by pre-9.0 binary upgrades */
		if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return false;
			if (!TransactionIdIsInProgress(xvac))
			{
				if (TransactionIdDidCommit(xvac))
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			}
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (!TransactionIdIsCurrentTransactionId(xvac))
			{
				if (TransactionIdIsInProgress(xvac))
					return false;
				if (TransactionIdDidCommit(xvac))
					set_hint_bits(v, HEAP_XMIN_COMMITTED);
				else
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
			}
		}
		else if (TransactionIdIsCurrentTransactionId(v->xmin))
		{
			if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid */
				return true;

			if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))	/* not deleter */
				return true;

			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				TransactionId xmax;

				xmax = armdb_version_get_multi_update_xid(v);

				/* not LOCKED_ONLY, so it has to have an xmax */
				Assert(TransactionIdIsValid(xmax));

				/* updating subtransaction must have aborted */
				if (!TransactionIdIsCurrentTransactionId(xmax))
					return true;
				else
					return false;
			}

			if (!TransactionIdIsCurrentTransactionId(v->xmax))
			{
				/* deleting subtransaction must have aborted */
				set_hint_bits(v, HEAP_XMAX_INVALID);
				return true;
			}

			return false;
		}
		else if (TransactionIdIsInProgress(v->xmin))
			return false;
		else if (TransactionIdDidCommit(v->xmin))
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		else
		{
			/* it must have aborted or crashed */
			set_hint_bits(v, HEAP_XMIN_INVALID);
			return false;
		}
	}

	/* by here, the inserting transaction has committed */

	if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid or aborted */
		return true;

	if (v->infomask & HEAP_XMAX_COMMITTED)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;
		return false;			/* updated by other */
	}

	if (v->infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax;

		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;

		xmax = armdb_version_get_multi_update_xid(v);

		/* not LOCKED_ONLY, so it has to have an xmax */
		Assert(TransactionIdIsValid(xmax));

		if (TransactionIdIsCurrentTransactionId(xmax))
			return false;
		if (TransactionIdIsInProgress(xmax))
			return true;
		if (TransactionIdDidCommit(xmax))
			return false;
		/* it must have aborted or crashed */
		return true;
	}

	if (TransactionIdIsCurrentTransactionId(v->xmax))
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;
		return false;
	}

	if (TransactionIdIsInProgress(v->xmax))
		return true;

	if (!TransactionIdDidCommit(v->xmax))
	{
		/* it must have aborted or crashed */
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return true;
	}

	/* xmax transaction committed */

	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
	{
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return true;
	}

	set_hint_bits(v, HEAP_XMAX_COMMITTED);
	return false;
}

/*
 * version_satisfies_any
 *		Dummy "satisfies" routine: any version satisfies SnapshotAny
 *		(HeapTupleSatisfiesAny).
 */
static bool
version_satisfies_any(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	return true;
}

/*
 * version_satisfies_toast
 *		True iff the version is valid as a TOAST row (HeapTupleSatisfiesToast).
 *
 * See SNAPSHOT_TOAST's definition for the intended behaviour.
 *
 * This only checks for VACUUM moving conditions and for a canceled
 * speculative insertion: if you can see the main table row that contains a
 * TOAST reference, you should be able to see the TOASTed value.
 */
static bool
version_satisfies_toast(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return false;

		/* Used by pre-9.0 binary upgrades */
		if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return false;
			if (!TransactionIdIsInProgress(xvac))
			{
				if (TransactionIdDidCommit(xvac))
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			}
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (!TransactionIdIsCurrentTransactionId(xvac))
			{
				if (TransactionIdIsInProgress(xvac))
					return false;
				if (TransactionIdDidCommit(xvac))
					set_hint_bits(v, HEAP_XMIN_COMMITTED);
				else
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
			}
		}

		/*
		 * An invalid Xmin can be left behind by a speculative insertion that
		 * is canceled by super-deleting the version.  This also applies to
		 * TOAST tuples created during speculative insertion.
		 */
		else if (!TransactionIdIsValid(armdb_version_get_xmin(v)))
			return false;
	}

	/* otherwise assume the version is valid for TOAST. */
	return true;
}

/*
 * armdb_version_satisfies_update
 *		HeapTupleSatisfiesUpdate for a version record in the given slot.
 *
 *	This returns a more detailed result code than the other routines, since
 *	UPDATE needs to know more than "is it visible?", and takes the command id
 *	to test against rather than relying on CurrentCommandId.  The slot is the
 *	record's own, needed (as heap needs t_self) to tell TM_Updated from
 *	TM_Deleted.
 *
 *	The possible return codes are:
 *
 *	TM_Invisible: the version didn't exist at all when the scan started, e.g.
 *	it was created by a later CommandId.
 *
 *	TM_Ok: The version is valid and visible, so it may be updated.
 *
 *	TM_SelfModified: The version was updated by the current transaction,
 *	after the current scan started.
 *
 *	TM_Updated: The version was updated by a committed transaction
 *	(including the case where the row was moved into a different partition).
 *
 *	TM_Deleted: The version was deleted by a committed transaction.
 *
 *	TM_BeingModified: The version is being updated by an in-progress
 *	transaction other than the current transaction.  (Note: this includes
 *	the case where the version is share-locked by a MultiXact, even if the
 *	MultiXact includes the current transaction.  Callers that want to
 *	distinguish that case must test for it themselves.)
 */
TM_Result
armdb_version_satisfies_update(ArmdbVersion *v, uint64 slot, CommandId curcid)
{
	Assert(slot < ARMDB_MAX_SLOTS);

	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return TM_Invisible;

		/* Used by pre-9.0 binary upgrades */
		if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return TM_Invisible;
			if (!TransactionIdIsInProgress(xvac))
			{
				if (TransactionIdDidCommit(xvac))
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return TM_Invisible;
				}
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			}
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (!TransactionIdIsCurrentTransactionId(xvac))
			{
				if (TransactionIdIsInProgress(xvac))
					return TM_Invisible;
				if (TransactionIdDidCommit(xvac))
					set_hint_bits(v, HEAP_XMIN_COMMITTED);
				else
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return TM_Invisible;
				}
			}
		}
		else if (TransactionIdIsCurrentTransactionId(v->xmin))
		{
			if (armdb_version_get_cmin(v, slot) >= curcid)
				return TM_Invisible;	/* inserted after scan started */

			if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid */
				return TM_Ok;

			if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			{
				TransactionId xmax;

				xmax = v->xmax;

				/*
				 * Careful here: even though this version was created by our
				 * own transaction, it might be locked by other transactions,
				 * if the original version was key-share locked when we
				 * updated it.
				 */

				if (v->infomask & HEAP_XMAX_IS_MULTI)
				{
					if (MultiXactIdIsRunning(xmax, true))
						return TM_BeingModified;
					else
						return TM_Ok;
				}

				/*
				 * If the locker is gone, then there is nothing of interest
				 * left in this Xmax; otherwise, report the version as
				 * locked/updated.
				 */
				if (!TransactionIdIsInProgress(xmax))
					return TM_Ok;
				return TM_BeingModified;
			}

			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				TransactionId xmax;

				xmax = armdb_version_get_multi_update_xid(v);

				/* not LOCKED_ONLY, so it has to have an xmax */
				Assert(TransactionIdIsValid(xmax));

				/* deleting subtransaction must have aborted */
				if (!TransactionIdIsCurrentTransactionId(xmax))
				{
					if (MultiXactIdIsRunning(v->xmax, false))
						return TM_BeingModified;
					return TM_Ok;
				}
				else
				{
					if (armdb_version_get_cmax(v, slot) >= curcid)
						return TM_SelfModified; /* updated after scan started */
					else
						return TM_Invisible;	/* updated before scan started */
				}
			}

			if (!TransactionIdIsCurrentTransactionId(v->xmax))
			{
				/* deleting subtransaction must have aborted */
				set_hint_bits(v, HEAP_XMAX_INVALID);
				return TM_Ok;
			}

			if (armdb_version_get_cmax(v, slot) >= curcid)
				return TM_SelfModified; /* updated after scan started */
			else
				return TM_Invisible;	/* updated before scan started */
		}
		else if (TransactionIdIsInProgress(v->xmin))
			return TM_Invisible;
		else if (TransactionIdDidCommit(v->xmin))
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		else
		{
			/* it must have aborted or crashed */
			set_hint_bits(v, HEAP_XMIN_INVALID);
			return TM_Invisible;
		}
	}

	/* by here, the inserting transaction has committed */

	if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid or aborted */
		return TM_Ok;

	if (v->infomask & HEAP_XMAX_COMMITTED)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return TM_Ok;
		if (!armdb_version_ctid_is_self(v, slot))
			return TM_Updated;	/* updated by other */
		else
			return TM_Deleted;	/* deleted by other */
	}

	if (v->infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax;

		if (HEAP_LOCKED_UPGRADED(v->infomask))
			return TM_Ok;

		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		{
			if (MultiXactIdIsRunning(v->xmax, true))
				return TM_BeingModified;

			set_hint_bits(v, HEAP_XMAX_INVALID);
			return TM_Ok;
		}

		xmax = armdb_version_get_multi_update_xid(v);
		if (!TransactionIdIsValid(xmax))
		{
			if (MultiXactIdIsRunning(v->xmax, false))
				return TM_BeingModified;
		}

		/* not LOCKED_ONLY, so it has to have an xmax */
		Assert(TransactionIdIsValid(xmax));

		if (TransactionIdIsCurrentTransactionId(xmax))
		{
			if (armdb_version_get_cmax(v, slot) >= curcid)
				return TM_SelfModified; /* updated after scan started */
			else
				return TM_Invisible;	/* updated before scan started */
		}

		if (MultiXactIdIsRunning(v->xmax, false))
			return TM_BeingModified;

		if (TransactionIdDidCommit(xmax))
		{
			if (!armdb_version_ctid_is_self(v, slot))
				return TM_Updated;
			else
				return TM_Deleted;
		}

		/*
		 * By here, the update in the Xmax is either aborted or crashed, but
		 * what about the other members?
		 */

		if (!MultiXactIdIsRunning(v->xmax, false))
		{
			/*
			 * There's no member, even just a locker, alive anymore, so we can
			 * mark the Xmax as invalid.
			 */
			set_hint_bits(v, HEAP_XMAX_INVALID);
			return TM_Ok;
		}
		else
		{
			/* There are lockers running */
			return TM_BeingModified;
		}
	}

	if (TransactionIdIsCurrentTransactionId(v->xmax))
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return TM_BeingModified;
		if (armdb_version_get_cmax(v, slot) >= curcid)
			return TM_SelfModified; /* updated after scan started */
		else
			return TM_Invisible;	/* updated before scan started */
	}

	if (TransactionIdIsInProgress(v->xmax))
		return TM_BeingModified;

	if (!TransactionIdDidCommit(v->xmax))
	{
		/* it must have aborted or crashed */
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return TM_Ok;
	}

	/* xmax transaction committed */

	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
	{
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return TM_Ok;
	}

	set_hint_bits(v, HEAP_XMAX_COMMITTED);
	if (!armdb_version_ctid_is_self(v, slot))
		return TM_Updated;		/* updated by other */
	else
		return TM_Deleted;		/* deleted by other */
}

/*
 * version_satisfies_dirty
 *		True iff the version is valid including effects of open transactions
 *		(HeapTupleSatisfiesDirty).
 *
 * See SNAPSHOT_DIRTY's definition for the intended behaviour.
 *
 * This is essentially like version_satisfies_self as far as effects of the
 * current transaction and committed/aborted xacts are concerned.  However,
 * we also include the effects of other xacts still in progress.
 *
 * A special hack is that the passed-in snapshot struct is used as an output
 * argument to return the xids of concurrent xacts that affected the version.
 * snapshot->xmin is set to the version's xmin if that is another transaction
 * that's still in progress; or to InvalidTransactionId if the version's xmin
 * is committed good, committed dead, or my own xact.  Similarly for
 * snapshot->xmax and the version's xmax.  If the version was inserted
 * speculatively, meaning that the inserter might still back down on the
 * insertion without aborting the whole transaction, the associated token is
 * also returned in snapshot->speculativeToken.
 */
static bool
version_satisfies_dirty(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	snapshot->xmin = snapshot->xmax = InvalidTransactionId;
	snapshot->speculativeToken = 0;

	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return false;

		/* Used by pre-9.0 binary upgrades */
		if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return false;
			if (!TransactionIdIsInProgress(xvac))
			{
				if (TransactionIdDidCommit(xvac))
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			}
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (!TransactionIdIsCurrentTransactionId(xvac))
			{
				if (TransactionIdIsInProgress(xvac))
					return false;
				if (TransactionIdDidCommit(xvac))
					set_hint_bits(v, HEAP_XMIN_COMMITTED);
				else
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
			}
		}
		else if (TransactionIdIsCurrentTransactionId(v->xmin))
		{
			if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid */
				return true;

			if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))	/* not deleter */
				return true;

			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				TransactionId xmax;

				xmax = armdb_version_get_multi_update_xid(v);

				/* not LOCKED_ONLY, so it has to have an xmax */
				Assert(TransactionIdIsValid(xmax));

				/* updating subtransaction must have aborted */
				if (!TransactionIdIsCurrentTransactionId(xmax))
					return true;
				else
					return false;
			}

			if (!TransactionIdIsCurrentTransactionId(v->xmax))
			{
				/* deleting subtransaction must have aborted */
				set_hint_bits(v, HEAP_XMAX_INVALID);
				return true;
			}

			return false;
		}
		else if (TransactionIdIsInProgress(v->xmin))
		{
			/*
			 * Return the speculative token to caller.  Caller can worry about
			 * xmax, since it requires a conclusively locked row version, and
			 * a concurrent update to this version is a conflict of its
			 * purposes.
			 */
			if (armdb_version_is_speculative(v))
			{
				snapshot->speculativeToken =
					armdb_version_get_speculative_token(v, slot);

				Assert(snapshot->speculativeToken != 0);
			}

			snapshot->xmin = v->xmin;
			/* XXX shouldn't we fall through to look at xmax? */
			return true;		/* in insertion by other */
		}
		else if (TransactionIdDidCommit(v->xmin))
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		else
		{
			/* it must have aborted or crashed */
			set_hint_bits(v, HEAP_XMIN_INVALID);
			return false;
		}
	}

	/* by here, the inserting transaction has committed */

	if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid or aborted */
		return true;

	if (v->infomask & HEAP_XMAX_COMMITTED)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;
		return false;			/* updated by other */
	}

	if (v->infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax;

		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;

		xmax = armdb_version_get_multi_update_xid(v);

		/* not LOCKED_ONLY, so it has to have an xmax */
		Assert(TransactionIdIsValid(xmax));

		if (TransactionIdIsCurrentTransactionId(xmax))
			return false;
		if (TransactionIdIsInProgress(xmax))
		{
			snapshot->xmax = xmax;
			return true;
		}
		if (TransactionIdDidCommit(xmax))
			return false;
		/* it must have aborted or crashed */
		return true;
	}

	if (TransactionIdIsCurrentTransactionId(v->xmax))
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return true;
		return false;
	}

	if (TransactionIdIsInProgress(v->xmax))
	{
		if (!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			snapshot->xmax = v->xmax;
		return true;
	}

	if (!TransactionIdDidCommit(v->xmax))
	{
		/* it must have aborted or crashed */
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return true;
	}

	/* xmax transaction committed */

	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
	{
		set_hint_bits(v, HEAP_XMAX_INVALID);
		return true;
	}

	set_hint_bits(v, HEAP_XMAX_COMMITTED);
	return false;				/* updated by other */
}

/*
 * version_satisfies_mvcc
 *		True iff the version is valid for the given MVCC snapshot
 *		(HeapTupleSatisfiesMVCC).
 *
 * See SNAPSHOT_MVCC's definition for the intended behaviour.
 *
 * As in heap, we do not update the hint bits if the inserting/deleting
 * transaction is still running according to our snapshot, even if in
 * reality it's committed or aborted by now: checking would cost contention
 * on shared data and would not change the result.  The first visitor with a
 * snapshot new enough to see the transaction as done sets them.
 */
static bool
version_satisfies_mvcc(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return false;

		/* Used by pre-9.0 binary upgrades */
		if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return false;
			if (!XidInMVCCSnapshot(xvac, snapshot))
			{
				if (TransactionIdDidCommit(xvac))
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			}
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (!TransactionIdIsCurrentTransactionId(xvac))
			{
				if (XidInMVCCSnapshot(xvac, snapshot))
					return false;
				if (TransactionIdDidCommit(xvac))
					set_hint_bits(v, HEAP_XMIN_COMMITTED);
				else
				{
					set_hint_bits(v, HEAP_XMIN_INVALID);
					return false;
				}
			}
		}
		else if (TransactionIdIsCurrentTransactionId(v->xmin))
		{
			if (armdb_version_get_cmin(v, slot) >= snapshot->curcid)
				return false;	/* inserted after scan started */

			if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid */
				return true;

			if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))	/* not deleter */
				return true;

			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				TransactionId xmax;

				xmax = armdb_version_get_multi_update_xid(v);

				/* not LOCKED_ONLY, so it has to have an xmax */
				Assert(TransactionIdIsValid(xmax));

				/* updating subtransaction must have aborted */
				if (!TransactionIdIsCurrentTransactionId(xmax))
					return true;
				else if (armdb_version_get_cmax(v, slot) >= snapshot->curcid)
					return true;	/* updated after scan started */
				else
					return false;	/* updated before scan started */
			}

			if (!TransactionIdIsCurrentTransactionId(v->xmax))
			{
				/* deleting subtransaction must have aborted */
				set_hint_bits(v, HEAP_XMAX_INVALID);
				return true;
			}

			if (armdb_version_get_cmax(v, slot) >= snapshot->curcid)
				return true;	/* deleted after scan started */
			else
				return false;	/* deleted before scan started */
		}
		else if (XidInMVCCSnapshot(v->xmin, snapshot))
			return false;
		else if (TransactionIdDidCommit(v->xmin))
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		else
		{
			/* it must have aborted or crashed */
			set_hint_bits(v, HEAP_XMIN_INVALID);
			return false;
		}
	}
	else
	{
		/* xmin is committed, but maybe not according to our snapshot */
		if (!armdb_version_xmin_frozen(v) &&
			XidInMVCCSnapshot(v->xmin, snapshot))
			return false;		/* treat as still in progress */
	}

	/* by here, the inserting transaction has committed */

	if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid or aborted */
		return true;

	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		return true;

	if (v->infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax;

		/* already checked above */
		Assert(!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));

		xmax = armdb_version_get_multi_update_xid(v);

		/* not LOCKED_ONLY, so it has to have an xmax */
		Assert(TransactionIdIsValid(xmax));

		if (TransactionIdIsCurrentTransactionId(xmax))
		{
			if (armdb_version_get_cmax(v, slot) >= snapshot->curcid)
				return true;	/* deleted after scan started */
			else
				return false;	/* deleted before scan started */
		}
		if (XidInMVCCSnapshot(xmax, snapshot))
			return true;
		if (TransactionIdDidCommit(xmax))
			return false;		/* updating transaction committed */
		/* it must have aborted or crashed */
		return true;
	}

	if (!(v->infomask & HEAP_XMAX_COMMITTED))
	{
		if (TransactionIdIsCurrentTransactionId(v->xmax))
		{
			if (armdb_version_get_cmax(v, slot) >= snapshot->curcid)
				return true;	/* deleted after scan started */
			else
				return false;	/* deleted before scan started */
		}

		if (XidInMVCCSnapshot(v->xmax, snapshot))
			return true;

		if (!TransactionIdDidCommit(v->xmax))
		{
			/* it must have aborted or crashed */
			set_hint_bits(v, HEAP_XMAX_INVALID);
			return true;
		}

		/* xmax transaction committed */
		set_hint_bits(v, HEAP_XMAX_COMMITTED);
	}
	else
	{
		/* xmax is committed, but maybe not according to our snapshot */
		if (XidInMVCCSnapshot(v->xmax, snapshot))
			return true;		/* treat as still in progress */
	}

	/* xmax transaction committed */

	return false;
}


/*
 * armdb_version_satisfies_vacuum
 *		HeapTupleSatisfiesVacuum: the status of a version for VACUUM, i.e.
 *		mainly whether it is potentially visible to *any* running transaction.
 *
 * OldestXmin is a cutoff XID (obtained from
 * GetOldestNonRemovableTransactionId()).  Versions deleted by XIDs >=
 * OldestXmin are deemed "recently dead"; they might still be visible to some
 * open transaction, so we can't remove them, even if we see that the
 * deleting transaction has committed.
 */
HTSV_Result
armdb_version_satisfies_vacuum(ArmdbVersion *v, TransactionId OldestXmin)
{
	TransactionId dead_after = InvalidTransactionId;
	HTSV_Result res;

	res = armdb_version_satisfies_vacuum_horizon(v, &dead_after);

	if (res == HEAPTUPLE_RECENTLY_DEAD)
	{
		Assert(TransactionIdIsValid(dead_after));

		if (TransactionIdPrecedes(dead_after, OldestXmin))
			res = HEAPTUPLE_DEAD;
	}
	else
		Assert(!TransactionIdIsValid(dead_after));

	return res;
}

/*
 * armdb_version_satisfies_vacuum_horizon
 *		Work horse for armdb_version_satisfies_vacuum and similar routines
 *		(HeapTupleSatisfiesVacuumHorizon).
 *
 * When a version could still be visible to some backend, this stores the
 * xid that needs to be compared with the horizon in *dead_after and returns
 * HEAPTUPLE_RECENTLY_DEAD, so the caller can compare it with whichever
 * horizon it uses.
 *
 * Note: HEAPTUPLE_DEAD can still be returned here, e.g. if the inserting
 * transaction aborted.
 */
HTSV_Result
armdb_version_satisfies_vacuum_horizon(ArmdbVersion *v,
									   TransactionId *dead_after)
{
	Assert(dead_after != NULL);

	*dead_after = InvalidTransactionId;

	/*
	 * Has inserting transaction committed?
	 *
	 * If the inserting transaction aborted, then the version was never
	 * visible to any other transaction, so we can delete it immediately.
	 */
	if (!armdb_version_xmin_committed(v))
	{
		if (armdb_version_xmin_invalid(v))
			return HEAPTUPLE_DEAD;
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_OFF)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return HEAPTUPLE_DELETE_IN_PROGRESS;
			if (TransactionIdIsInProgress(xvac))
				return HEAPTUPLE_DELETE_IN_PROGRESS;
			if (TransactionIdDidCommit(xvac))
			{
				set_hint_bits(v, HEAP_XMIN_INVALID);
				return HEAPTUPLE_DEAD;
			}
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		}
		/* Used by pre-9.0 binary upgrades */
		else if (v->infomask & HEAP_MOVED_IN)
		{
			TransactionId xvac = armdb_version_get_xvac(v);

			if (TransactionIdIsCurrentTransactionId(xvac))
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			if (TransactionIdIsInProgress(xvac))
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			if (TransactionIdDidCommit(xvac))
				set_hint_bits(v, HEAP_XMIN_COMMITTED);
			else
			{
				set_hint_bits(v, HEAP_XMIN_INVALID);
				return HEAPTUPLE_DEAD;
			}
		}
		else if (TransactionIdIsCurrentTransactionId(v->xmin))
		{
			if (v->infomask & HEAP_XMAX_INVALID)	/* xid invalid */
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			/* only locked? run infomask-only check first, for performance */
			if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
				armdb_version_is_only_locked(v))
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			/* inserted and then deleted by same xact */
			if (TransactionIdIsCurrentTransactionId(armdb_version_get_update_xid(v)))
				return HEAPTUPLE_DELETE_IN_PROGRESS;
			/* deleting subtransaction must have aborted */
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		}
		else if (TransactionIdIsInProgress(v->xmin))
		{
			/*
			 * It'd be possible to discern between INSERT/DELETE in progress
			 * here by looking at xmax - but that doesn't seem beneficial for
			 * the majority of callers and even detrimental for some. We'd
			 * rather have callers look at/wait for xmin than xmax. It's
			 * always correct to return INSERT_IN_PROGRESS because that's
			 * what's happening from the view of other backends.
			 */
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		}
		else if (TransactionIdDidCommit(v->xmin))
			set_hint_bits(v, HEAP_XMIN_COMMITTED);
		else
		{
			/*
			 * Not in Progress, Not Committed, so either Aborted or crashed
			 */
			set_hint_bits(v, HEAP_XMIN_INVALID);
			return HEAPTUPLE_DEAD;
		}

		/*
		 * At this point the xmin is known committed (and now hinted so).
		 */
	}

	/*
	 * Okay, the inserter committed, so it was good at some point.  Now what
	 * about the deleting transaction?
	 */
	if (v->infomask & HEAP_XMAX_INVALID)
		return HEAPTUPLE_LIVE;

	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
	{
		/*
		 * "Deleting" xact really only locked it, so the version is live in
		 * any case.  However, we should make sure that either XMAX_COMMITTED
		 * or XMAX_INVALID gets set once the xact is gone, to reduce the costs
		 * of examining the version for future xacts.
		 */
		if (!(v->infomask & HEAP_XMAX_COMMITTED))
		{
			if (v->infomask & HEAP_XMAX_IS_MULTI)
			{
				/*
				 * If it's a pre-pg_upgrade bit pattern, the multixact cannot
				 * possibly be running; otherwise have to check.
				 */
				if (!HEAP_LOCKED_UPGRADED(v->infomask) &&
					MultiXactIdIsRunning(v->xmax, true))
					return HEAPTUPLE_LIVE;
				set_hint_bits(v, HEAP_XMAX_INVALID);
			}
			else
			{
				if (TransactionIdIsInProgress(v->xmax))
					return HEAPTUPLE_LIVE;
				set_hint_bits(v, HEAP_XMAX_INVALID);
			}
		}

		/*
		 * We don't really care whether xmax did commit, abort or crash. We
		 * know that xmax did lock the version, but it did not and will never
		 * actually update it.
		 */

		return HEAPTUPLE_LIVE;
	}

	if (v->infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax = armdb_version_get_multi_update_xid(v);

		/* already checked above */
		Assert(!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));

		/* not LOCKED_ONLY, so it has to have an xmax */
		Assert(TransactionIdIsValid(xmax));

		if (TransactionIdIsInProgress(xmax))
			return HEAPTUPLE_DELETE_IN_PROGRESS;
		else if (TransactionIdDidCommit(xmax))
		{
			/*
			 * The multixact might still be running due to lockers.  Need to
			 * allow for pruning if below the xid horizon regardless --
			 * otherwise we could end up with a version where the updater has
			 * to be removed due to the horizon, but is not pruned away.  It's
			 * not a problem to prune that version, because any remaining
			 * lockers will also be present in newer versions.
			 */
			*dead_after = xmax;
			return HEAPTUPLE_RECENTLY_DEAD;
		}
		else if (!MultiXactIdIsRunning(v->xmax, false))
		{
			/*
			 * Not in Progress, Not Committed, so either Aborted or crashed.
			 * Mark the Xmax as invalid.
			 */
			set_hint_bits(v, HEAP_XMAX_INVALID);
		}

		return HEAPTUPLE_LIVE;
	}

	if (!(v->infomask & HEAP_XMAX_COMMITTED))
	{
		if (TransactionIdIsInProgress(v->xmax))
			return HEAPTUPLE_DELETE_IN_PROGRESS;
		else if (TransactionIdDidCommit(v->xmax))
			set_hint_bits(v, HEAP_XMAX_COMMITTED);
		else
		{
			/*
			 * Not in Progress, Not Committed, so either Aborted or crashed
			 */
			set_hint_bits(v, HEAP_XMAX_INVALID);
			return HEAPTUPLE_LIVE;
		}

		/*
		 * At this point the xmax is known committed (and now hinted so).
		 */
	}

	/*
	 * Deleter committed, allow caller to check if it was recent enough that
	 * some open transactions could still see the version.
	 */
	*dead_after = v->xmax;
	return HEAPTUPLE_RECENTLY_DEAD;
}


/*
 * version_satisfies_non_vacuumable
 *		HeapTupleSatisfiesNonVacuumable: true if the version might be visible
 *		to some transaction; false if it's surely dead to everyone, ie,
 *		vacuumable.
 *
 *	See SNAPSHOT_NON_VACUUMABLE's definition for the intended behaviour.
 *	snapshot->vistest must have been set up with the horizon to use.
 */
static bool
version_satisfies_non_vacuumable(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	TransactionId dead_after = InvalidTransactionId;
	HTSV_Result res;

	res = armdb_version_satisfies_vacuum_horizon(v, &dead_after);

	if (res == HEAPTUPLE_RECENTLY_DEAD)
	{
		Assert(TransactionIdIsValid(dead_after));

		if (GlobalVisTestIsRemovableXid(snapshot->vistest, dead_after))
			res = HEAPTUPLE_DEAD;
	}
	else
		Assert(!TransactionIdIsValid(dead_after));

	return res != HEAPTUPLE_DEAD;
}


/*
 * armdb_version_is_surely_dead
 *		HeapTupleIsSurelyDead: cheaply determine whether a version is surely
 *		dead to all onlookers.
 *
 * Used in lieu of armdb_version_satisfies_vacuum when the version has just
 * been tested by another visibility routine (usually MVCC) and, therefore,
 * any hint bits that can be set should already be set.  We assume that if no
 * hint bits are set, the xmin or xmax transaction is still running, and
 * consult neither procarray nor CLOG.  It's okay to return false when in
 * doubt, but we must return true only if the version is removable.
 */
bool
armdb_version_is_surely_dead(ArmdbVersion *v, GlobalVisState *vistest)
{
	/*
	 * If the inserting transaction is marked invalid, then it aborted, and
	 * the version is definitely dead.  If it's marked neither committed nor
	 * invalid, then we assume it's still alive (since the presumption is that
	 * all relevant hint bits were just set moments ago).
	 */
	if (!armdb_version_xmin_committed(v))
		return armdb_version_xmin_invalid(v);

	/*
	 * If the inserting transaction committed, but any deleting transaction
	 * aborted, the version is still alive.
	 */
	if (v->infomask & HEAP_XMAX_INVALID)
		return false;

	/*
	 * If the XMAX is just a lock, the version is still alive.
	 */
	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		return false;

	/*
	 * If the Xmax is a MultiXact, it might be dead or alive, but we cannot
	 * know without checking pg_multixact.
	 */
	if (v->infomask & HEAP_XMAX_IS_MULTI)
		return false;

	/* If deleter isn't known to have committed, assume it's still running. */
	if (!(v->infomask & HEAP_XMAX_COMMITTED))
		return false;

	/* Deleter committed, so version is dead if the XID is old enough. */
	return GlobalVisTestIsRemovableXid(vistest, v->xmax);
}

/*
 * armdb_version_is_only_locked
 *		HeapTupleHeaderIsOnlyLocked: is the version really only locked, that
 *		is, not updated?
 *
 * It's easy to check just infomask bits if the locker is not a multi; but
 * otherwise we need to verify that the updating transaction has not aborted.
 */
bool
armdb_version_is_only_locked(ArmdbVersion *v)
{
	TransactionId xmax;

	/* if there's no valid Xmax, then there's obviously no update either */
	if (v->infomask & HEAP_XMAX_INVALID)
		return true;

	if (v->infomask & HEAP_XMAX_LOCK_ONLY)
		return true;

	/* invalid xmax means no update */
	if (!TransactionIdIsValid(v->xmax))
		return true;

	/*
	 * if HEAP_XMAX_LOCK_ONLY is not set and not a multi, then this must
	 * necessarily have been updated
	 */
	if (!(v->infomask & HEAP_XMAX_IS_MULTI))
		return false;

	/* ... but if it's a multi, then perhaps the updating Xid aborted. */
	xmax = armdb_version_get_multi_update_xid(v);

	/* not LOCKED_ONLY, so it has to have an xmax */
	Assert(TransactionIdIsValid(xmax));

	if (TransactionIdIsCurrentTransactionId(xmax))
		return false;
	if (TransactionIdIsInProgress(xmax))
		return false;
	if (TransactionIdDidCommit(xmax))
		return false;

	/*
	 * not current, not in progress, not committed -- must have aborted or
	 * crashed
	 */
	return true;
}

/*
 * version_satisfies_historic_mvcc
 *		HeapTupleSatisfiesHistoricMVCC counterpart: not supported.
 *
 * Historic MVCC snapshots are used by logical decoding, which reads
 * catalogs (and user_catalog_table tables) as of a point in the past using
 * the combo CIDs and catalog changes it has decoded from WAL.  armdb logs
 * its rows' changes for decoding (armdb_logical.c), not their command ids,
 * so nothing could resolve those; refuse rather than guess.
 */
static bool
version_satisfies_historic_mvcc(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("armdb tables cannot be read during logical decoding"),
			 errhint("Output plugins can read only heap tables during logical decoding; do not mark armdb tables as user_catalog_table.")));
	return false;				/* keep compiler quiet */
}

/*
 * armdb_version_satisfies
 *		HeapTupleSatisfiesVisibility: true iff the version in the given slot
 *		satisfies a time qual.
 *
 * Notes:
 *	The caller holds the virtual page's LWLock, at least shared.
 *
 *	Hint bits in v->infomask may be updated as a side effect; for
 *	SNAPSHOT_DIRTY, snapshot->xmin, xmax and speculativeToken are outputs.
 */
bool
armdb_version_satisfies(ArmdbVersion *v, uint64 slot, Snapshot snapshot)
{
	Assert(slot < ARMDB_MAX_SLOTS);

	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return version_satisfies_mvcc(v, slot, snapshot);
			break;
		case SNAPSHOT_SELF:
			return version_satisfies_self(v, slot, snapshot);
			break;
		case SNAPSHOT_ANY:
			return version_satisfies_any(v, slot, snapshot);
			break;
		case SNAPSHOT_TOAST:
			return version_satisfies_toast(v, slot, snapshot);
			break;
		case SNAPSHOT_DIRTY:
			return version_satisfies_dirty(v, slot, snapshot);
			break;
		case SNAPSHOT_HISTORIC_MVCC:
			return version_satisfies_historic_mvcc(v, slot, snapshot);
			break;
		case SNAPSHOT_NON_VACUUMABLE:
			return version_satisfies_non_vacuumable(v, slot, snapshot);
			break;
	}

	return false;				/* keep compiler quiet */
}
