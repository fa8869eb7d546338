/*-------------------------------------------------------------------------
 *
 * winner.c
 *	  Which entry wins when a relation's entries are read back (see
 *	  winner.h for the rules).
 *
 *-------------------------------------------------------------------------
 */
#include "storage/winner.h"

void
armdb_winner_classify(const ArmdbEntryInfo *e, uint64 max_slots,
					  ArmdbXactFateLookup lookup, void *lookup_arg,
					  ArmdbEntryRole *role)
{
	ArmdbXactFate fate;

	role->uses_slot = false;
	role->version = false;
	role->frozen = false;
	role->in_progress = false;
	role->ends = ARMDB_INVALID_SLOT;
	role->newer = ARMDB_INVALID_SLOT;
	role->locks = ARMDB_INVALID_SLOT;
	role->heap_only_root = ARMDB_INVALID_SLOT;

	if (armdb_gsn_is_reservation(e->gsn))
	{
		/* handed out before, maybe still in an index: never again */
		role->uses_slot = true;
		return;
	}

	/* a hint may already say what became of the transaction */
	if (e->gsn & ARMDB_GSN_FLAG_FROZEN)
		fate = ARMDB_XACT_COMMITTED;
	else if (e->gsn & ARMDB_GSN_FLAG_ABORTED)
		fate = ARMDB_XACT_ABORTED;
	else
		fate = lookup(lookup_arg, e->xid);

	if (armdb_gsn_is_lock(e->gsn))
	{
		/* a lock ends with its transaction */
		if (fate == ARMDB_XACT_IN_PROGRESS)
		{
			role->locks = e->slot;
			role->in_progress = true;
		}
		return;
	}
	if (armdb_gsn_is_tombstone(e->gsn))
	{
		if (fate != ARMDB_XACT_ABORTED)
		{
			role->ends = e->slot;
			role->newer = e->slot;
			role->in_progress = fate == ARMDB_XACT_IN_PROGRESS;
		}
		return;
	}

	/* slots are used up even by versions of aborted transactions */
	role->uses_slot = true;
	if (fate == ARMDB_XACT_ABORTED)
		return;					/* as if never written */
	role->version = true;
	role->frozen = (e->gsn & ARMDB_GSN_FLAG_FROZEN) != 0;
	role->in_progress = fate == ARMDB_XACT_IN_PROGRESS;
	if (e->root_slot != e->slot && e->root_slot < max_slots)
		role->heap_only_root = e->root_slot;
	if (e->prev_slot != ARMDB_INVALID_SLOT && e->prev_slot < max_slots)
	{
		role->ends = e->prev_slot;
		role->newer = e->slot;
	}
}

/*
 * The higher gsn wins, and on a tie -- the same entry twice, as a merge's
 * output and its input may both hold it after a crash -- the one seen last,
 * which is as good as the other.
 *
 * Loading used to let the version seen last win, in file order (files of a
 * shard by id, entries by offset).  That is the same rule: every version of
 * a slot is in the slot's shard, and every entry of a shard gets its gsn
 * under the shard's lock, from the relation's counter, immediately before
 * it is appended (append_version and reserve_slots in armdb_modify.c, which
 * its callers -- insert_slots, armdb_copy_version -- call holding the lock;
 * armdb_append_tombstone in armdb_update.c), and after a restart the
 * counter goes on from the highest gsn loaded.  So within a shard, file
 * order is gsn order.  Besides, a slot goes to a new version only after
 * VACUUM freed it, long after its old version was appended.  What file
 * order will not give once merges write newer files holding older entries,
 * the gsn still does.
 */
bool
armdb_winner_version_replaces(bool has_version, uint64 cur_gsn, uint64 gsn)
{
	return !has_version || (gsn & ARMDB_GSN_MAX) >= (cur_gsn & ARMDB_GSN_MAX);
}

ArmdbEndEffect
armdb_winner_end_effect(bool has_version, uint64 version_gsn, uint64 end_gsn,
						bool end_in_progress)
{
	/* VACUUM may have given the slot to a newer version: not its end */
	if (!has_version ||
		(version_gsn & ARMDB_GSN_MAX) >= (end_gsn & ARMDB_GSN_MAX))
		return ARMDB_END_NONE;
	return end_in_progress ? ARMDB_END_SETS_XMAX : ARMDB_END_REMOVES;
}

bool
armdb_winner_lock_applies(bool has_version, uint64 version_gsn,
						  uint64 lock_gsn)
{
	return has_version &&
		(version_gsn & ARMDB_GSN_MAX) < (lock_gsn & ARMDB_GSN_MAX);
}
