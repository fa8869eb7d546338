/*-------------------------------------------------------------------------
 *
 * unit_winner.c
 *	  Tests of winner.c: which entry wins when a relation's entries are
 *	  read back.
 *
 * The first tests ask each rule on its own.  The last ones drive the rules
 * the way keydir.c's load_keydir does (every entry through
 * armdb_winner_classify, versions into their slot's record, ends applied
 * once all are seen) over small histories -- update, delete, a reused slot,
 * a prepared transaction -- and check that the outcome does not depend on
 * the order the entries are read in, as it must not once a merge writes
 * older entries into a newer file.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include "storage/winner.h"

/*
 * A commit log for the tests: the hundreds digit of an xid says its fate
 * (1xx committed, 2xx still running, 3xx aborted).  Counts the lookups, so
 * that tests can check which entries needed one.
 */
#define XID_COMMITTED	101
#define XID_COMMITTED2	102
#define XID_RUNNING		201
#define XID_RUNNING2	202
#define XID_ABORTED		301

static int	fate_lookups;

static ArmdbXactFate
test_fate(void *arg, uint64 xid)
{
	fate_lookups++;
	switch (xid / 100 % 10)
	{
		case 1:
			return ARMDB_XACT_COMMITTED;
		case 2:
			return ARMDB_XACT_IN_PROGRESS;
		default:
			return ARMDB_XACT_ABORTED;
	}
}

#define TEST_MAX_SLOTS	64

static ArmdbEntryInfo
tent(uint64 gsn, uint64 xid, uint64 slot, uint64 prev_slot)
{
	ArmdbEntryInfo e;

	memset(&e, 0, sizeof(e));
	e.gsn = gsn;
	e.xid = xid;
	e.slot = slot;
	e.root_slot = slot;
	e.prev_slot = prev_slot;
	e.file_id = 1;
	e.offset = (uint32) (ARMDB_FILE_HEADER_SIZE + (gsn & ARMDB_GSN_MAX) * 100);
	e.len = ARMDB_ENTRY_HEADER_SIZE + 10;
	return e;
}

static ArmdbEntryRole
classify(const ArmdbEntryInfo *e)
{
	ArmdbEntryRole role;

	memset(&role, 0x7f, sizeof(role));
	armdb_winner_classify(e, TEST_MAX_SLOTS, test_fate, NULL, &role);
	return role;
}

/* A reservation only uses up slots, whatever its other fields say. */
static void
test_winner_reservation(void)
{
	ArmdbEntryInfo e = tent(5 | ARMDB_GSN_FLAG_RESERVE, 0, 40,
							ARMDB_INVALID_SLOT);
	ArmdbEntryRole role;

	fate_lookups = 0;
	role = classify(&e);
	ASSERT(role.uses_slot);
	ASSERT(!role.version);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);
	ASSERT_EQ(fate_lookups, 0);

	/* not even a prev_slot makes it an end */
	e.prev_slot = 3;
	role = classify(&e);
	ASSERT(!role.version);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);
	ASSERT_EQ(fate_lookups, 0);
}

/* A version, by the fate of its transaction. */
static void
test_winner_version_fate(void)
{
	ArmdbEntryInfo e;
	ArmdbEntryRole role;

	/* committed: a candidate, known committed */
	fate_lookups = 0;
	e = tent(7, XID_COMMITTED, 9, ARMDB_INVALID_SLOT);
	role = classify(&e);
	ASSERT_EQ(fate_lookups, 1);
	ASSERT(role.uses_slot);
	ASSERT(role.version);
	ASSERT(!role.in_progress);
	ASSERT(!role.frozen);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);

	/* still running (prepared): a candidate, not known committed */
	e.xid = XID_RUNNING;
	role = classify(&e);
	ASSERT(role.version);
	ASSERT(role.in_progress);
	ASSERT(!role.frozen);

	/* aborted: nothing but the slot, which stays used up */
	e = tent(7, XID_ABORTED, 9, 4);
	role = classify(&e);
	ASSERT(role.uses_slot);
	ASSERT(!role.version);
	ASSERT(!role.in_progress);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);	/* ends nothing either */

	/* FROZEN in a hint: committed without asking, whatever clog says */
	fate_lookups = 0;
	e = tent(7 | ARMDB_GSN_FLAG_FROZEN, XID_ABORTED, 9, ARMDB_INVALID_SLOT);
	role = classify(&e);
	ASSERT_EQ(fate_lookups, 0);
	ASSERT(role.version);
	ASSERT(role.frozen);
	ASSERT(!role.in_progress);

	/* ABORTED in a hint: not a version, without asking */
	e = tent(7 | ARMDB_GSN_FLAG_ABORTED, XID_COMMITTED, 9, 4);
	role = classify(&e);
	ASSERT_EQ(fate_lookups, 0);
	ASSERT(role.uses_slot);
	ASSERT(!role.version);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);
}

/* The new version of an UPDATE ends the one it names as prev_slot. */
static void
test_winner_update_ends_prev(void)
{
	ArmdbEntryInfo e = tent(8, XID_COMMITTED, 12, 3);
	ArmdbEntryRole role = classify(&e);

	ASSERT(role.version);
	ASSERT_EQ(role.ends, 3);
	ASSERT_EQ(role.newer, 12);
	ASSERT(!role.in_progress);

	/* by a prepared transaction: an end in progress */
	e.xid = XID_RUNNING;
	role = classify(&e);
	ASSERT_EQ(role.ends, 3);
	ASSERT(role.in_progress);

	/* a prev_slot beyond every slot names nothing */
	e = tent(8, XID_COMMITTED, 12, TEST_MAX_SLOTS);
	role = classify(&e);
	ASSERT(role.version);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);
}

/* A tombstone ends its slot's version; it uses up no slot. */
static void
test_winner_tombstone(void)
{
	ArmdbEntryInfo e;
	ArmdbEntryRole role;

	e = tent(9 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED, 5,
			 ARMDB_INVALID_SLOT);
	role = classify(&e);
	ASSERT(!role.uses_slot);
	ASSERT(!role.version);
	ASSERT_EQ(role.ends, 5);
	ASSERT_EQ(role.newer, 5);
	ASSERT(!role.in_progress);

	e.xid = XID_RUNNING;
	role = classify(&e);
	ASSERT_EQ(role.ends, 5);
	ASSERT(role.in_progress);

	e.xid = XID_ABORTED;
	role = classify(&e);
	ASSERT(!role.uses_slot);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);

	/* hint flags decide here too */
	fate_lookups = 0;
	e = tent(9 | ARMDB_GSN_FLAG_TOMBSTONE | ARMDB_GSN_FLAG_FROZEN,
			 XID_ABORTED, 5, ARMDB_INVALID_SLOT);
	role = classify(&e);
	ASSERT_EQ(role.ends, 5);
	ASSERT(!role.in_progress);
	e.gsn = 9 | ARMDB_GSN_FLAG_TOMBSTONE | ARMDB_GSN_FLAG_ABORTED;
	e.xid = XID_COMMITTED;
	role = classify(&e);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);
	ASSERT_EQ(fate_lookups, 0);
}

/*
 * A row lock entry counts only while its transaction runs, and then names
 * the slot it locks; it never uses up a slot or ends a version.
 */
static void
test_winner_lock(void)
{
	ArmdbEntryInfo e;
	ArmdbEntryRole role;

	e = tent(9 | ARMDB_GSN_FLAG_LOCK, XID_RUNNING, 5, 0x90);
	e.root_slot = 4242;			/* the xmax it recorded */
	role = classify(&e);
	ASSERT_EQ(role.locks, 5);
	ASSERT(role.in_progress);
	ASSERT(!role.uses_slot);
	ASSERT(!role.version);
	ASSERT_EQ(role.ends, ARMDB_INVALID_SLOT);

	e.xid = XID_COMMITTED;
	role = classify(&e);
	ASSERT_EQ(role.locks, ARMDB_INVALID_SLOT);
	ASSERT(!role.in_progress);
	e.xid = XID_ABORTED;
	role = classify(&e);
	ASSERT_EQ(role.locks, ARMDB_INVALID_SLOT);

	/* a fate a hint recorded: over, without asking */
	fate_lookups = 0;
	e.xid = XID_RUNNING;
	e.gsn = 9 | ARMDB_GSN_FLAG_LOCK | ARMDB_GSN_FLAG_FROZEN;
	role = classify(&e);
	ASSERT_EQ(role.locks, ARMDB_INVALID_SLOT);
	ASSERT_EQ(fate_lookups, 0);

	/* it locks the version it came after, not a newer one in a reused slot */
	ASSERT(armdb_winner_lock_applies(true, 3, 9 | ARMDB_GSN_FLAG_LOCK));
	ASSERT(!armdb_winner_lock_applies(true, 12, 9 | ARMDB_GSN_FLAG_LOCK));
	ASSERT(!armdb_winner_lock_applies(false, 0, 9 | ARMDB_GSN_FLAG_LOCK));
}

/* Of two versions of a slot, the higher gsn wins, wherever it is read. */
static void
test_winner_version_replaces(void)
{
	ASSERT(armdb_winner_version_replaces(false, 0, 1));
	ASSERT(armdb_winner_version_replaces(false, 50, 10));	/* empty record */
	ASSERT(armdb_winner_version_replaces(true, 10, 11));
	ASSERT(!armdb_winner_version_replaces(true, 11, 10));
	/* the same entry twice (a merge's input and output): either will do */
	ASSERT(armdb_winner_version_replaces(true, 10, 10));
	/* flags are not part of the order */
	ASSERT(!armdb_winner_version_replaces(true, 11, 10 | ARMDB_GSN_FLAG_FROZEN));
	ASSERT(armdb_winner_version_replaces(true, 10 | ARMDB_GSN_FLAG_FROZEN, 11));
}

/* An end applies only to an older version of its slot. */
static void
test_winner_end_effect(void)
{
	/* no version: nothing to end, committed or not */
	ASSERT_EQ(armdb_winner_end_effect(false, 0, 20, false), ARMDB_END_NONE);
	ASSERT_EQ(armdb_winner_end_effect(false, 0, 20, true), ARMDB_END_NONE);
	/* end after the version: it ends it */
	ASSERT_EQ(armdb_winner_end_effect(true, 10, 20, false), ARMDB_END_REMOVES);
	ASSERT_EQ(armdb_winner_end_effect(true, 10, 20, true), ARMDB_END_SETS_XMAX);
	/* end before the version: the slot was reused, the end is not its */
	ASSERT_EQ(armdb_winner_end_effect(true, 30, 20, false), ARMDB_END_NONE);
	ASSERT_EQ(armdb_winner_end_effect(true, 30, 20, true), ARMDB_END_NONE);
	ASSERT_EQ(armdb_winner_end_effect(true, 20, 20, false), ARMDB_END_NONE);
	/* flags are not part of the order */
	ASSERT_EQ(armdb_winner_end_effect(true, 10 | ARMDB_GSN_FLAG_FROZEN,
									  20 | ARMDB_GSN_FLAG_TOMBSTONE, false),
			  ARMDB_END_REMOVES);
	ASSERT_EQ(armdb_winner_end_effect(true, 30 | ARMDB_GSN_FLAG_FROZEN,
									  20 | ARMDB_GSN_FLAG_TOMBSTONE, false),
			  ARMDB_END_NONE);
}

/* ----------------
 * Loading in miniature: the rules together, as load_keydir uses them
 * ----------------
 */
typedef struct TRecord
{
	bool		has;
	uint64		gsn;
	uint32		offset;			/* which entry won */
	bool		in_progress;
	bool		frozen;
	bool		being_ended;	/* an end in progress set its xmax */
	uint64		newer;			/* (being_ended) the ctid it set */
	uint64		xmax;			/* set by the newest running end (its xid)
								 * or lock (the xmax it recorded) */
} TRecord;

typedef struct TEnd
{
	uint64		slot;
	uint64		gsn;
	bool		in_progress;
	uint64		newer;
	bool		lock;			/* a row lock, not an end */
	uint64		xmax;			/* the end's xid, or the lock's xmax */
} TEnd;

typedef struct TLoad
{
	TRecord		rec[TEST_MAX_SLOTS];
	TEnd		ends[32];
	int			nends;
	uint64		slots_used;		/* highest slot used up, + 1 */
} TLoad;

static void
tload(TLoad *l, const ArmdbEntryInfo *entries, const int *order, int n)
{
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < n; i++)
	{
		const ArmdbEntryInfo *e = &entries[order[i]];
		ArmdbEntryRole role = classify(e);
		TRecord    *r = &l->rec[e->slot];

		if (role.uses_slot)
			l->slots_used = Max(l->slots_used, e->slot + 1);
		if (role.ends != ARMDB_INVALID_SLOT)
		{
			Assert(l->nends < lengthof(l->ends));
			l->ends[l->nends].slot = role.ends;
			l->ends[l->nends].gsn = e->gsn;
			l->ends[l->nends].in_progress = role.in_progress;
			l->ends[l->nends].newer = role.newer;
			l->ends[l->nends].lock = false;
			l->ends[l->nends].xmax = e->xid;
			l->nends++;
		}
		if (role.locks != ARMDB_INVALID_SLOT)
		{
			Assert(l->nends < lengthof(l->ends));
			l->ends[l->nends].slot = role.locks;
			l->ends[l->nends].gsn = e->gsn & ARMDB_GSN_MAX;
			l->ends[l->nends].in_progress = true;
			l->ends[l->nends].lock = true;
			l->ends[l->nends].xmax = e->root_slot;
			l->nends++;
		}
		if (!role.version ||
			!armdb_winner_version_replaces(r->has, r->gsn, e->gsn))
			continue;
		r->has = true;
		r->gsn = e->gsn & ARMDB_GSN_MAX;
		r->offset = e->offset;
		r->in_progress = role.in_progress;
		r->frozen = role.frozen;
	}
	for (int i = 0; i < l->nends; i++)
	{
		TRecord    *r = &l->rec[l->ends[i].slot];

		if (l->ends[i].lock)
		{
			l->ends[i].in_progress =
				armdb_winner_lock_applies(r->has, r->gsn, l->ends[i].gsn);
			continue;
		}
		switch (armdb_winner_end_effect(r->has, r->gsn, l->ends[i].gsn,
										l->ends[i].in_progress))
		{
			case ARMDB_END_NONE:
				l->ends[i].in_progress = false;
				break;
			case ARMDB_END_REMOVES:
				memset(r, 0, sizeof(*r));
				break;
			case ARMDB_END_SETS_XMAX:
				break;			/* below, in gsn order */
		}
	}
	/* running ends and locks set xmax in gsn order: the newest decides */
	for (int i = 1; i < l->nends; i++)
		for (int j = i; j > 0 && l->ends[j - 1].gsn > l->ends[j].gsn; j--)
		{
			TEnd		t = l->ends[j];

			l->ends[j] = l->ends[j - 1];
			l->ends[j - 1] = t;
		}
	for (int i = 0; i < l->nends; i++)
	{
		TRecord    *r = &l->rec[l->ends[i].slot];

		if (!l->ends[i].in_progress || !r->has)
			continue;
		r->xmax = l->ends[i].xmax;
		if (!l->ends[i].lock)
		{
			r->being_ended = true;
			r->newer = l->ends[i].newer;
		}
	}
}

static bool
tload_equal(const TLoad *a, const TLoad *b)
{
	HASSERT_EQ(a->slots_used, b->slots_used);
	for (int s = 0; s < TEST_MAX_SLOTS; s++)
	{
		HASSERT_MSG(a->rec[s].has == b->rec[s].has &&
					a->rec[s].gsn == b->rec[s].gsn &&
					a->rec[s].offset == b->rec[s].offset &&
					a->rec[s].in_progress == b->rec[s].in_progress &&
					a->rec[s].frozen == b->rec[s].frozen &&
					a->rec[s].being_ended == b->rec[s].being_ended &&
					a->rec[s].newer == b->rec[s].newer &&
					a->rec[s].xmax == b->rec[s].xmax,
					"slot %d loads differently in another order", s);
	}
	return true;
}

/*
 * Load entries in file order (0..n-1), then in every rotation of it and
 * reversed: the outcome must be the same.  Returns the file-order one.
 */
static bool
tload_any_order(TLoad *l, const ArmdbEntryInfo *entries, int n)
{
	int			order[16] = {0};
	TLoad		other;

	Assert(n <= lengthof(order));
	for (int i = 0; i < n; i++)
		order[i] = i;
	tload(l, entries, order, n);
	for (int rot = 1; rot <= n; rot++)
	{
		for (int i = 0; i < n; i++)
			order[i] = rot < n ? (i + rot) % n : n - 1 - i;
		tload(&other, entries, order, n);
		HASSERT_CALL(tload_equal(l, &other));
	}
	return true;
}

/* INSERT, UPDATE (non-HOT: a new slot), DELETE of the new version. */
static void
test_winner_load_update_delete(void)
{
	ArmdbEntryInfo e[] = {
		tent(1, XID_COMMITTED, 3, ARMDB_INVALID_SLOT),
		tent(2, XID_COMMITTED2, 4, 3),
		tent(3 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED2, 4,
			 ARMDB_INVALID_SLOT),
		tent(4, XID_COMMITTED, 5, ARMDB_INVALID_SLOT),
	};
	TLoad		l;

	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT(!l.rec[3].has);		/* ended by the update */
	ASSERT(!l.rec[4].has);		/* deleted */
	ASSERT(l.rec[5].has);
	ASSERT_EQ(l.rec[5].gsn, 4);
	ASSERT(!l.rec[5].in_progress);
	ASSERT_EQ(l.slots_used, 6);
}

/*
 * A slot VACUUM freed and gave to a new version: the old version's end
 * (maybe in another shard, read later) must not end the new one, and the
 * new one wins over the old one even when the old one is read last (as
 * from a merge output, whose file id is higher).
 */
static void
test_winner_load_reused_slot(void)
{
	ArmdbEntryInfo e[] = {
		tent(1, XID_COMMITTED, 7, ARMDB_INVALID_SLOT),
		tent(2 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED, 7,
			 ARMDB_INVALID_SLOT),
		tent(3, XID_COMMITTED2, 7, ARMDB_INVALID_SLOT),
	};
	ArmdbEntryInfo upd[] = {
		tent(1, XID_COMMITTED, 7, ARMDB_INVALID_SLOT),
		tent(2, XID_COMMITTED, 8, 7),	/* the update that ended it */
		tent(3, XID_COMMITTED2, 7, ARMDB_INVALID_SLOT),
	};
	ArmdbEntryInfo gone[] = {
		tent(1, XID_COMMITTED, 7, ARMDB_INVALID_SLOT),
		tent(2 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED, 7,
			 ARMDB_INVALID_SLOT),
		tent(3, XID_COMMITTED2, 7, ARMDB_INVALID_SLOT),
		tent(4 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED2, 7,
			 ARMDB_INVALID_SLOT),
	};
	TLoad		l;

	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT(l.rec[7].has);
	ASSERT_EQ(l.rec[7].gsn, 3);
	ASSERT_EQ(l.rec[7].offset, e[2].offset);

	ASSERT_CALL(tload_any_order(&l, upd, lengthof(upd)));
	ASSERT(l.rec[7].has);
	ASSERT_EQ(l.rec[7].gsn, 3);
	ASSERT(l.rec[8].has);

	/* and the new version's own end does end it */
	ASSERT_CALL(tload_any_order(&l, gone, lengthof(gone)));
	ASSERT(!l.rec[7].has);
}

/* Aborted entries count for nothing but used-up slots. */
static void
test_winner_load_aborted(void)
{
	ArmdbEntryInfo e[] = {
		tent(1, XID_COMMITTED, 3, ARMDB_INVALID_SLOT),
		tent(2, XID_ABORTED, 9, 3), /* an update that rolled back */
		tent(3 | ARMDB_GSN_FLAG_TOMBSTONE, XID_ABORTED, 3,
			 ARMDB_INVALID_SLOT),
		/* a newer version of slot 3 that aborted does not hide the old */
		tent(4, XID_ABORTED, 3, ARMDB_INVALID_SLOT),
		tent(5 | ARMDB_GSN_FLAG_RESERVE, 0, 20, ARMDB_INVALID_SLOT),
	};
	TLoad		l;

	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT(l.rec[3].has);
	ASSERT_EQ(l.rec[3].gsn, 1);
	ASSERT(!l.rec[9].has);
	ASSERT_EQ(l.slots_used, 21);	/* the reservation's, past slot 9 */
}

/*
 * A prepared transaction that updated and deleted, still running after the
 * restart: its versions load as not yet committed, the versions it ended
 * stay, marked as being ended by it.
 */
static void
test_winner_load_in_progress(void)
{
	ArmdbEntryInfo e[] = {
		tent(1, XID_COMMITTED, 3, ARMDB_INVALID_SLOT),
		tent(2, XID_COMMITTED, 4, ARMDB_INVALID_SLOT),
		tent(3, XID_RUNNING, 6, 3),
		tent(4 | ARMDB_GSN_FLAG_TOMBSTONE, XID_RUNNING, 4,
			 ARMDB_INVALID_SLOT),
	};
	TLoad		l;

	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT(l.rec[3].has);
	ASSERT(l.rec[3].being_ended);
	ASSERT_EQ(l.rec[3].newer, 6);
	ASSERT(l.rec[4].has);
	ASSERT(l.rec[4].being_ended);
	ASSERT_EQ(l.rec[4].newer, 4);
	ASSERT(l.rec[6].has);
	ASSERT(l.rec[6].in_progress);
	ASSERT(!l.rec[6].being_ended);
}

/* A lock entry of e's slot, by xid, recording xmax. */
static ArmdbEntryInfo
tlock(uint64 gsn, uint64 xid, uint64 slot, uint64 xmax)
{
	ArmdbEntryInfo e = tent(gsn | ARMDB_GSN_FLAG_LOCK, xid, slot, 0x90);

	e.root_slot = xmax;
	return e;
}

/*
 * Prepared transactions' row locks after a restart: a running lock sets
 * its version's xmax; of a version's running ends and locks the newest
 * decides (a prepared update next to a prepared key-share locker: the
 * update's end, then the MultiXact of both that it wrote when it
 * prepared); finished transactions' locks, locks of a version VACUUM
 * freed the slot of, and locks of a version a committed end removed count
 * for nothing.  In any order.
 */
static void
test_winner_load_locks(void)
{
	ArmdbEntryInfo e[] = {
		tent(1, XID_COMMITTED, 3, ARMDB_INVALID_SLOT),
		tent(2, XID_COMMITTED, 4, ARMDB_INVALID_SLOT),
		tent(3, XID_COMMITTED, 5, ARMDB_INVALID_SLOT),
		tlock(4, XID_RUNNING, 6, 777),	/* of a version VACUUM freed */
		tlock(5, XID_RUNNING, 3, 201),
		tlock(6, XID_COMMITTED, 4, 101),
		tlock(7, XID_RUNNING, 5, 201),
		tent(8, XID_RUNNING2, 9, 5),	/* the prepared update */
		tlock(10, XID_RUNNING2, 5, 5000),	/* ... its MultiXact */
		tent(11, XID_COMMITTED, 6, ARMDB_INVALID_SLOT),
		tent(12, XID_COMMITTED, 7, ARMDB_INVALID_SLOT),
		tlock(13, XID_RUNNING, 7, 201),
		tent(14 | ARMDB_GSN_FLAG_TOMBSTONE, XID_COMMITTED, 7,
			 ARMDB_INVALID_SLOT),
		tlock(15, XID_RUNNING, 4, 201),
	};
	TLoad		l;

	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT(l.rec[3].has);
	ASSERT_EQ(l.rec[3].xmax, 201);
	ASSERT(!l.rec[3].being_ended);
	ASSERT_EQ(l.rec[4].xmax, 201);	/* the finished locker's is gone */
	ASSERT(l.rec[5].being_ended);
	ASSERT_EQ(l.rec[5].newer, 9);
	ASSERT_EQ(l.rec[5].xmax, 5000);
	ASSERT(l.rec[6].has);
	ASSERT_EQ(l.rec[6].xmax, 0);
	ASSERT(!l.rec[7].has);
	ASSERT(l.rec[9].in_progress);
	ASSERT_EQ(l.rec[9].xmax, 0);
}

/*
 * Entries a hint froze: loaded without the commit log (their xids may be
 * older than it), the versions marked frozen.
 */
static void
test_winner_load_frozen(void)
{
	ArmdbEntryInfo e[] = {
		tent(1 | ARMDB_GSN_FLAG_FROZEN, XID_ABORTED, 3, ARMDB_INVALID_SLOT),
		tent(2 | ARMDB_GSN_FLAG_FROZEN, XID_ABORTED, 4, ARMDB_INVALID_SLOT),
		tent(3 | ARMDB_GSN_FLAG_FROZEN, XID_ABORTED, 5, 4),
		tent(4 | ARMDB_GSN_FLAG_ABORTED, XID_COMMITTED, 6, 3),
	};
	TLoad		l;

	fate_lookups = 0;
	ASSERT_CALL(tload_any_order(&l, e, lengthof(e)));
	ASSERT_EQ(fate_lookups, 0);
	ASSERT(l.rec[3].has);
	ASSERT(l.rec[3].frozen);
	ASSERT(!l.rec[3].in_progress);
	ASSERT(!l.rec[4].has);		/* ended by the frozen update */
	ASSERT(l.rec[5].frozen);
	ASSERT(!l.rec[6].has);
}

const UnitTest unit_winner_tests[] = {
	{"winner_reservation", test_winner_reservation},
	{"winner_version_fate", test_winner_version_fate},
	{"winner_update_ends_prev", test_winner_update_ends_prev},
	{"winner_tombstone", test_winner_tombstone},
	{"winner_version_replaces", test_winner_version_replaces},
	{"winner_end_effect", test_winner_end_effect},
	{"winner_lock", test_winner_lock},
	{"winner_load_update_delete", test_winner_load_update_delete},
	{"winner_load_reused_slot", test_winner_load_reused_slot},
	{"winner_load_aborted", test_winner_load_aborted},
	{"winner_load_in_progress", test_winner_load_in_progress},
	{"winner_load_frozen", test_winner_load_frozen},
	{"winner_load_locks", test_winner_load_locks},
	{NULL, NULL}
};
