/*-------------------------------------------------------------------------
 *
 * winner.h
 *	  Which entry wins: the rules that turn a relation's entries, read back
 *	  at start-up, into one version per slot.
 *
 * A keydir is loaded from every entry of every shard (keydir.c,
 * load_keydir).  What each entry means for the slots it names is decided
 * here, without touching a keydir, so that the rules are unit-tested and
 * shared by whatever else must decide them (compaction: which entries are
 * still live).
 *
 *	 - a reservation only says that the slots of its run were handed out;
 *	 - an entry whose transaction aborted counts for nothing, except that a
 *	   version's slot stays used up (an index entry may point at it);
 *	 - a version is a candidate for its slot's record; of two versions of
 *	   one slot (a slot VACUUM freed and gave to a new version) the higher
 *	   gsn wins;
 *	 - an end -- a tombstone (DELETE), or a newer version naming the slot as
 *	   its prev_slot (UPDATE) -- applies only to a version of its slot with
 *	   a lower gsn than its own: a version with a higher one came after the
 *	   slot was freed and is not the one that ended;
 *	 - an end by a transaction still running (a prepared one, after a
 *	   restart) only marks the version as being ended, as heap's xmax does;
 *	   a committed end removes the version.
 *	 - a row lock entry (format.h) counts only while its transaction is
 *	   running, and only for a version of its slot older than itself; it
 *	   then sets the version's xmax to the one it recorded.  A version's
 *	   running ends and locks apply in gsn order, so the newest decides:
 *	   the xmax a lock recorded holds the lockers of older locks that
 *	   still run, and the updater of an older end, as heap's MultiXacts
 *	   do; and a transaction that ended a version whose xmax is a
 *	   MultiXact writes its lock entry when it prepares, after its end.
 *
 * The entry's transaction's fate comes from the hint flags when a hint
 * recorded it (FROZEN: committed, its xid possibly older than the commit
 * log; ABORTED), otherwise from the caller's lookup (the commit log).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_WINNER_H
#define ARMDB_STORAGE_WINNER_H

#include "storage/format.h"

/* What became of the transaction that wrote an entry. */
typedef enum ArmdbXactFate
{
	ARMDB_XACT_COMMITTED,
	ARMDB_XACT_IN_PROGRESS,		/* still running: after a restart, a
								 * prepared transaction */
	ARMDB_XACT_ABORTED
} ArmdbXactFate;

/*
 * The fate of the transaction xid (a FullTransactionId as an entry stores
 * it).  Asked only for entries whose hint flags do not say.
 */
typedef ArmdbXactFate (*ArmdbXactFateLookup) (void *arg, uint64 xid);

/* What one entry means for the keydir being loaded. */
typedef struct ArmdbEntryRole
{
	bool		uses_slot;		/* e->slot is used up: never hand it out
								 * again; its page (a reservation's: its
								 * run) is its shard's (keydir.c) */
	bool		version;		/* a version of e->slot, candidate for its
								 * record (armdb_winner_version_replaces) */
	bool		frozen;			/* (version) committed, and its xid may be
								 * older than the commit log */
	bool		in_progress;	/* (version or end) its transaction is still
								 * running */
	uint64		ends;			/* slot whose older version the entry ends
								 * (armdb_winner_end_effect), or
								 * ARMDB_INVALID_SLOT */
	uint64		newer;			/* (end) the version after the ended one:
								 * the new version's slot (UPDATE), or ends
								 * itself (DELETE) */
	uint64		locks;			/* slot whose version a row lock entry of a
								 * running transaction locks, or
								 * ARMDB_INVALID_SLOT */
	uint64		heap_only_root; /* (version) the root of the HOT chain of a
								 * heap-only version (its end of an older
								 * version is a HOT update), or
								 * ARMDB_INVALID_SLOT */
} ArmdbEntryRole;

/*
 * The role of entry e.  A prev_slot at or beyond max_slots names no slot
 * and ends nothing.  lookup is called at most once, and only when e is not
 * a reservation and its hint flags do not say.
 */
extern void armdb_winner_classify(const ArmdbEntryInfo *e, uint64 max_slots,
								  ArmdbXactFateLookup lookup, void *lookup_arg,
								  ArmdbEntryRole *role);

/*
 * Does a version of gsn take its slot's record from the version already
 * there (has_version; its gsn cur_gsn)?  The higher gsn wins.
 */
extern bool armdb_winner_version_replaces(bool has_version, uint64 cur_gsn,
										  uint64 gsn);

/* What an end does to its slot's version. */
typedef enum ArmdbEndEffect
{
	ARMDB_END_NONE,				/* not this version's end: no version, or a
								 * newer one in a reused slot */
	ARMDB_END_REMOVES,			/* a committed end: the version is gone */
	ARMDB_END_SETS_XMAX			/* an end by a running transaction: the
								 * version stays, with it as xmax */
} ArmdbEndEffect;

/*
 * The effect of an end of gsn end_gsn (end_in_progress: its transaction is
 * still running) on its slot, which holds a version of gsn version_gsn if
 * has_version.  Ends are applied once every version is loaded, since an end
 * is written to the shard of the backend that made the change, not
 * necessarily the slot's.
 */
extern ArmdbEndEffect armdb_winner_end_effect(bool has_version,
											  uint64 version_gsn,
											  uint64 end_gsn,
											  bool end_in_progress);

/*
 * Is a running row lock of lock_gsn one of its slot's version (of gsn
 * version_gsn if has_version), not of an older one VACUUM freed the slot
 * of?
 */
extern bool armdb_winner_lock_applies(bool has_version, uint64 version_gsn,
									  uint64 lock_gsn);

#endif							/* ARMDB_STORAGE_WINNER_H */
