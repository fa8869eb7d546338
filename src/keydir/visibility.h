/*-------------------------------------------------------------------------
 *
 * visibility.h
 *	  Visibility rules for armdb version records: PostgreSQL 15's
 *	  heapam_visibility.c ported onto ArmdbVersion (design §3).
 *
 * A version record carries the fields of a heap tuple header that
 * concurrency needs, with heap's meaning and heap's infomask bits, so the
 * HeapTupleSatisfies* routines translate line by line.  The inline helpers
 * below are the counterparts of the htup_details.h macros that take a
 * HeapTupleHeader; macros that take an infomask (HEAP_XMAX_IS_LOCKED_ONLY,
 * HEAP_LOCKED_UPGRADED, ...) are used on v->infomask unchanged.
 *
 * Locking: as heap requires at least a share lock on the buffer, every
 * function here requires the caller to hold the LWLock of the virtual page
 * holding the record (ArmdbPage.lock), shared at least.  Hint bits are set
 * under a shared lock, exactly as heap does; every other change to a record
 * needs the lock exclusively.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_KEYDIR_VISIBILITY_H
#define ARMDB_KEYDIR_VISIBILITY_H

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "utils/snapshot.h"

#include "keydir/keydir.h"

/* HeapTupleHeaderXminCommitted */
static inline bool
armdb_version_xmin_committed(const ArmdbVersion *v)
{
	return (v->infomask & HEAP_XMIN_COMMITTED) != 0;
}

/* HeapTupleHeaderXminInvalid: invalid/aborted, and not frozen */
static inline bool
armdb_version_xmin_invalid(const ArmdbVersion *v)
{
	return (v->infomask & (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID)) ==
		HEAP_XMIN_INVALID;
}

/* HeapTupleHeaderXminFrozen */
static inline bool
armdb_version_xmin_frozen(const ArmdbVersion *v)
{
	return (v->infomask & HEAP_XMIN_FROZEN) == HEAP_XMIN_FROZEN;
}

/* HeapTupleHeaderGetXmin: FrozenTransactionId for a frozen version */
static inline TransactionId
armdb_version_get_xmin(const ArmdbVersion *v)
{
	return armdb_version_xmin_frozen(v) ? FrozenTransactionId : v->xmin;
}

/*
 * HeapTupleHeaderGetXvac.  Heap keeps xvac in t_field3, a union with t_cid.
 * Only an old-style VACUUM FULL set HEAP_MOVED, which armdb never does: a
 * version record has no xvac, and the ported branches that read one never
 * run.
 */
static inline TransactionId
armdb_version_get_xvac(const ArmdbVersion *v)
{
	Assert(!(v->infomask & HEAP_MOVED));
	return InvalidTransactionId;
}

/*
 * HeapTupleHeaderIsSpeculative.  Heap marks a speculative insertion with
 * SpecTokenOffsetNumber in t_ctid; a version record with ARMDB_V2_SPECULATIVE.
 */
static inline bool
armdb_version_is_speculative(const ArmdbVersion *v)
{
	return (v->infomask2 & ARMDB_V2_SPECULATIVE) != 0;
}

/* HeapTupleHeaderGetSpeculativeToken: the token is kept in ctid */
static inline uint32
armdb_version_get_speculative_token(const ArmdbVersion *v, uint64 slot)
{
	Assert(armdb_version_is_speculative(v));
	return armdb_version_ctid(v, slot);
}

/*
 * ItemPointerEquals(&htup->t_self, &tuple->t_ctid): true if the version has
 * no newer version.  A speculative insertion's ctid is a token, which heap
 * can never mistake for the tuple's own TID; here a token could equal the
 * slot number, so test the flag first.
 */
static inline bool
armdb_version_ctid_is_self(const ArmdbVersion *v, uint64 slot)
{
	return !armdb_version_is_speculative(v) &&
		armdb_version_ctid(v, slot) == (uint32) slot;
}

extern TransactionId armdb_version_get_multi_update_xid(ArmdbVersion *v);
extern TransactionId armdb_multi_get_update_xid(MultiXactId multi);

/*
 * HeapTupleHeaderGetUpdateXid: the updating xid, resolving a MultiXact xmax
 * (which may need multixact I/O) only when it can hold an updater.
 */
static inline TransactionId
armdb_version_get_update_xid(ArmdbVersion *v)
{
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		(v->infomask & HEAP_XMAX_IS_MULTI) &&
		!(v->infomask & HEAP_XMAX_LOCK_ONLY))
		return armdb_version_get_multi_update_xid(v);
	return v->xmax;
}

extern CommandId armdb_version_get_cmin(ArmdbVersion *v, uint64 slot);
extern CommandId armdb_version_cmin_of(const ArmdbVersion *v, CommandId cid);
extern CommandId armdb_version_get_cmax(ArmdbVersion *v, uint64 slot);
extern void armdb_version_set_hint_bits(ArmdbVersion *v, uint16 infomask);

extern bool armdb_version_satisfies(ArmdbVersion *v, uint64 slot,
									Snapshot snapshot);
extern TM_Result armdb_version_satisfies_update(ArmdbVersion *v, uint64 slot,
												CommandId curcid);
extern HTSV_Result armdb_version_satisfies_vacuum(ArmdbVersion *v,
												  TransactionId OldestXmin);
extern HTSV_Result armdb_version_satisfies_vacuum_horizon(ArmdbVersion *v,
														  TransactionId *dead_after);
extern bool armdb_version_is_surely_dead(ArmdbVersion *v,
										 struct GlobalVisState *vistest);
extern bool armdb_version_is_only_locked(ArmdbVersion *v);

#endif							/* ARMDB_KEYDIR_VISIBILITY_H */
