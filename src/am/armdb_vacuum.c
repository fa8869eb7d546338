/*-------------------------------------------------------------------------
 *
 * armdb_vacuum.c
 *	  VACUUM of armdb tables: dead versions, their index entries and slots,
 *	  and freezing.
 *
 * heap's vacuumlazy.c, on the keydir: the version records in shared memory
 * play the part of the heap pages, and freezing also has the version store
 * write the fates of old transactions into the hint files
 * (armdb_vstore_freeze()), so that relfrozenxid can move up without
 * recovery needing clog for them (design §4).  VACUUM FULL and
 * CLUSTER rewrite the table instead (armdb_relation_copy_for_cluster,
 * armdb_ddl.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/transam.h"
#include "access/visibilitymap.h"
#include "access/multixact.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "am/armdb_vm.h"
#include "armdb_guc.h"
#include "armdb.h"
#include "keydir/files.h"
#include "keydir/visibility.h"
#include "wal/armdb_wal.h"

/*
 * VACUUM (lazy vacuum's three passes, on the keydir):
 *	 1. find the versions dead to every snapshot;
 *	 2. bulk-delete their entries from every index (and run every index's
 *		cleanup, which also flushes GIN's pending list);
 *	 3. free their slots for reuse -- no index entry points at them any more
 *		(design §2) -- and count their entries' bytes as dead, for
 *		compaction.
 *	 4. the visibility map: the bit of every virtual page whose versions are
 *		all visible to every snapshot, for index-only scans (armdb_vm.c);
 *	 5. freeze: versions older than every snapshot get heap's frozen bits,
 *		the hint files record the fates of the xids they list, and
 *		relfrozenxid moves up to the oldest xid whose fate is still only in
 *		clog (design §4).
 * Their bytes stay in the data files until compaction rewrites them.
 */
typedef struct DeadSlots
{
	ItemPointerData *tids;		/* in TID order */
	int64		n;
	int64		cap;
} DeadSlots;

static void
add_dead(DeadSlots *dead, uint64 slot)
{
	if (dead->n == dead->cap)
	{
		dead->cap = Max(1024, dead->cap * 2);
		dead->tids = dead->tids == NULL ?
			palloc_extended(sizeof(ItemPointerData) * dead->cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(dead->tids, sizeof(ItemPointerData) * dead->cap);
	}
	armdb_slot_to_tid(slot, &dead->tids[dead->n++]);
}

static bool
dead_slot_callback(ItemPointer itemptr, void *state)
{
	DeadSlots  *dead = state;

	return bsearch(itemptr, dead->tids, dead->n, sizeof(ItemPointerData),
				   (int (*) (const void *, const void *)) ItemPointerCompare) != NULL;
}

/*
 * HOT pruning (heap's pruneheap.c, across virtual pages).  Pass 1 decides,
 * for each chain, with the root's page locked: the dead and recently dead
 * versions at its front go, and the root's slot becomes a redirect to the
 * first version left -- or, when none is left, an empty slot whose index
 * entries pass 2 removes.  Nothing changes before the prune record is
 * logged; then each chain is pruned as one step (prune_chains()): the
 * root first, then the heap-only versions it no longer leads to.  Freeing
 * takes the shard's lock, which comes before a page's, so it cannot
 * happen under pass 1's page lock; and no interrupt is taken inside a
 * chain's step, so that an ERROR or a cancel never leaves a version no
 * walk reaches (its bytes would then never be counted as dead, and
 * compaction could drop the entry that ended it: design §5).
 */
typedef struct PruneVictim
{
	uint64		slot;			/* a heap-only version's slot */
	TransactionId xmin;			/* ... while it holds this version */
} PruneVictim;

/* what prune_chain() decided for a chain's root */
typedef enum ChainRoot
{
	ROOT_KEPT,					/* as it is (nothing dead at the front) */
	ROOT_REDIRECTED,			/* to redirect (or still redirecting) */
	ROOT_DEAD,					/* the whole chain is dead: the root's slot
								 * goes the way of a dead version */
	ROOT_MEMBERS				/* ROOT_DEAD outside VACUUM: only the
								 * heap-only versions go; the root waits
								 * for VACUUM to remove its index entries */
} ChainRoot;

typedef struct PrunePlan
{
	uint64		root;
	ChainRoot	outcome;		/* ROOT_REDIRECTED, ROOT_DEAD or
								 * ROOT_MEMBERS */
	bool		was_redirect;	/* the root's slot redirected already */
	TransactionId root_xmin;	/* the root's version's, or the xmin its
								 * redirect names (the plan is stale if a
								 * redirect now names another version in
								 * the same slot) */
	uint32		root_ctid;		/* the root's ctid (or redirect) seen */
	uint32		target;			/* ROOT_REDIRECTED: the first version left */
	TransactionId target_xmin;	/* ... and its xmin */
	int64		first_victim;	/* its versions to free, in victims[] */
	int64		nvictims;
} PrunePlan;

typedef struct HotPrune
{
	PrunePlan  *plans;
	int64		nplans;
	int64		plans_cap;
	PruneVictim *victims;		/* of the plans, then lone ones */
	int64		nvictims;
	int64		victims_cap;
	PruneVictim *lone;			/* dead heap-only versions at a chain's
								 * end (an aborted update, mostly) */
	int64		nlone;
	int64		lone_cap;
	uint64	   *chain;			/* scratch: the chain being looked at */
	TransactionId *chain_xmin;
	int			chain_cap;
	uint64		nredirects;		/* for the log line */
	uint64		nfreed;
} HotPrune;

#define GROW(arr, n, cap, type) \
	do { \
		if ((n) == (cap)) \
		{ \
			(cap) = Max(64, (cap) * 2); \
			(arr) = (arr) == NULL ? \
				palloc_extended(sizeof(type) * (cap), MCXT_ALLOC_HUGE) : \
				repalloc_huge((arr), sizeof(type) * (cap)); \
		} \
	} while (0)

static void advance_latest_removed(ArmdbVersion *v, TransactionId *latest);

/*
 * The keydir whose readers' pruning this backend's VACUUM holds off, by key
 * and generation: at abort the lock on the relation no longer shows in
 * GetLockConflicts() (no virtual transaction id), so the keydir is pinned
 * to be released (giving idle keydirs back relies on it, keydir.c).
 */
static bool pruning_held = false;
static ArmdbRelKey pruning_key;
static uint64 pruning_generation;

static void
hold_readers_pruning(ArmdbRelKeydir *kd)
{
	pruning_key = kd->key;
	pruning_generation = kd->generation;
	pruning_held = true;
	pg_atomic_write_u32(&kd->vacuum_pruning, 1);
	pg_memory_barrier();
}

static void
release_readers_pruning(void)
{
	ArmdbRelKeydir *kd;

	if (!pruning_held)
		return;
	pruning_held = false;
	kd = armdb_keydir_find_pinned(&pruning_key, pruning_generation);
	if (kd != NULL)
	{
		pg_atomic_write_u32(&kd->vacuum_pruning, 0);
		armdb_keydir_unpin(kd);
	}
}

/* A VACUUM that fails lets readers prune again (armdb_xact.c, at abort). */
void
armdb_vacuum_at_abort(void)
{
	release_readers_pruning();
}

/*
 * heap_prune_chain(): the HOT chain whose root is slot, on page (locked by
 * the caller: exclusively by VACUUM, which runs alone on a table).  Walking from the root, the dead and
 * recently dead versions up to the last dead one go: a plan in hp says so,
 * with the heap-only ones among them to be freed, and the root to redirect
 * to the version after them -- or, when nothing after them is left, to be
 * dead.
 */
static ChainRoot
prune_chain(ArmdbRelKeydir *kd, ArmdbPage *page, uint64 root,
			TransactionId oldest_xmin, HotPrune *hp,
			TransactionId *latest_removed)
{
	ArmdbChainWalk walk = {kd, page, NULL, LW_SHARED};
	ArmdbVersion *rv = &page->v[root % ARMDB_SLOTS_PER_PAGE];
	bool		redirected = armdb_version_is_redirect(rv);
	TransactionId prior_xmax = redirected ? armdb_redirect_xmin(rv) :
		InvalidTransactionId;
	uint64		slot = redirected ? armdb_version_ctid(rv, root) : root;
	int			n = 0;
	int			latestdead = -1;
	PrunePlan  *plan;

	for (;;)
	{
		ArmdbVersion *v = armdb_chain_version(&walk, slot);
		HTSV_Result res;
		uint64		next;

		/* past the root's own version, the chain is heap-only */
		if (v == NULL || !armdb_chain_member(v, n == 0 && !redirected,
											  prior_xmax))
			break;
		if (n == hp->chain_cap)
		{
			hp->chain_cap = Max(16, hp->chain_cap * 2);
			hp->chain = hp->chain == NULL ?
				palloc(sizeof(uint64) * hp->chain_cap) :
				repalloc(hp->chain, sizeof(uint64) * hp->chain_cap);
			hp->chain_xmin = hp->chain_xmin == NULL ?
				palloc(sizeof(TransactionId) * hp->chain_cap) :
				repalloc(hp->chain_xmin, sizeof(TransactionId) * hp->chain_cap);
		}
		hp->chain[n] = slot;
		hp->chain_xmin[n++] = v->xmin;
		res = armdb_version_satisfies_vacuum(v, oldest_xmin);
		if (res == HEAPTUPLE_DEAD)
		{
			latestdead = n - 1;
			advance_latest_removed(v, latest_removed);
		}
		else if (res != HEAPTUPLE_RECENTLY_DEAD)
			break;
		if (!armdb_hot_next(v, slot, &next))
			break;
		prior_xmax = armdb_version_get_update_xid(v);
		slot = next;
	}
	armdb_chain_done(&walk);

	/* nothing dead at the front; but a redirect to nothing is dead */
	if (latestdead < 0 && !(redirected && n == 0))
		return ROOT_KEPT;

	GROW(hp->plans, hp->nplans, hp->plans_cap, PrunePlan);
	plan = &hp->plans[hp->nplans++];
	plan->root = root;
	plan->was_redirect = redirected;
	plan->root_xmin = redirected ? armdb_redirect_xmin(rv) : rv->xmin;
	plan->root_ctid = armdb_version_ctid(rv, root);
	plan->first_victim = hp->nvictims;
	for (int i = redirected ? 0 : 1; i <= latestdead; i++)
	{
		GROW(hp->victims, hp->nvictims, hp->victims_cap, PruneVictim);
		hp->victims[hp->nvictims].slot = hp->chain[i];
		hp->victims[hp->nvictims++].xmin = hp->chain_xmin[i];
	}
	plan->nvictims = hp->nvictims - plan->first_victim;
	if (latestdead == n - 1)
	{
		plan->outcome = ROOT_DEAD;
		plan->target = 0;
		plan->target_xmin = InvalidTransactionId;
	}
	else
	{
		plan->outcome = ROOT_REDIRECTED;
		plan->target = (uint32) hp->chain[latestdead + 1];
		plan->target_xmin = hp->chain_xmin[latestdead + 1];
	}
	return plan->outcome;
}

/*
 * Free the heap-only version victim, if its slot still holds it: it is
 * dead and no index entry names it, so the slot is free for reuse at
 * once, and the version's bytes count as dead.  Whether it did.
 */
static bool
free_heap_only(ArmdbRelKeydir *kd, const PruneVictim *victim)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, armdb_slot_shard(kd, victim->slot));
	ArmdbPage  *page = armdb_keydir_page(kd, victim->slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v = &page->v[victim->slot % ARMDB_SLOTS_PER_PAGE];
	bool		freed = false;

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	/* noted twice (by its chain and on its own), it is freed once */
	if (v->file_id != 0 && (v->infomask2 & HEAP_ONLY_TUPLE) &&
		TransactionIdEquals(v->xmin, victim->xmin))
	{
		uint32		len = armdb_version_len(v, victim->slot);

		pg_atomic_fetch_add_u64(&rt->dead_bytes, len);
		armdb_files_add_dead(rt, v->file_id, len);
		armdb_version_clear(v, victim->slot);
		v->infomask2 = ARMDB_V2_FREED;	/* no index entry named it */
		freed = true;
	}
	LWLockRelease(&page->lock);
	if (freed)
		(void) armdb_keydir_free_slot(rt, victim->slot);
	LWLockRelease(&rt->lock);
	return freed;
}

/*
 * One chain's pruning, as planned: the root first (a redirect, whose
 * version's bytes now count as dead; or, for a dead chain, an empty slot
 * whose index entries are still to go), then the versions it no longer
 * leads to.  Updates only add at a chain's live end, and while VACUUM
 * prunes a table no reader does (armdb_hot_prune_opt), so VACUUM finds
 * every root as it planned it.  A reader (rel not NULL) finds it changed
 * when another reader pruned the chain first, and leaves it; it logs its
 * pruning here, under the root's lock, once it knows the plan holds, so
 * that a hot standby replays prunings in the order they were done.  A
 * reader waits for no lock: it gives up instead.  Returns the versions
 * removed.
 */
static uint64
prune_one_chain(ArmdbRelKeydir *kd, const HotPrune *hp, const PrunePlan *plan,
				Relation reader, TransactionId latest_removed)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, armdb_slot_shard(kd, plan->root));
	ArmdbPage  *page = armdb_keydir_page(kd, plan->root / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *rv = &page->v[plan->root % ARMDB_SLOTS_PER_PAGE];
	uint64		nremoved = 0;
	bool		same;

	if (reader == NULL)
	{
		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	}
	else
	{
		if (!LWLockConditionalAcquire(&rt->lock, LW_EXCLUSIVE))
			return 0;
		if (!LWLockConditionalAcquire(&page->lock, LW_EXCLUSIVE))
		{
			LWLockRelease(&rt->lock);
			return 0;
		}
	}
	if (plan->was_redirect)
		same = armdb_version_is_redirect(rv) &&
			armdb_version_ctid(rv, plan->root) == plan->root_ctid &&
			TransactionIdEquals(armdb_redirect_xmin(rv), plan->root_xmin);
	else
		same = rv->file_id != 0 && !(rv->infomask2 & HEAP_ONLY_TUPLE) &&
			TransactionIdEquals(rv->xmin, plan->root_xmin) &&
			armdb_version_ctid(rv, plan->root) == plan->root_ctid;
	if (reader != NULL &&
		(!same || pg_atomic_read_u32(&kd->vacuum_pruning) != 0))
	{
		/* pruned by another reader meanwhile, or VACUUM's to prune now */
		LWLockRelease(&page->lock);
		LWLockRelease(&rt->lock);
		return 0;
	}
	if (!same)
	{
		/*
		 * Nothing but VACUUM changes a dead chain's root while VACUUM
		 * prunes: stop before anything changes (the lone versions after
		 * it could be a redirect's target).
		 */
		LWLockRelease(&page->lock);
		LWLockRelease(&rt->lock);
		RESUME_INTERRUPTS();
		elog(ERROR, "armdb: the HOT chain at slot " UINT64_FORMAT " changed during VACUUM",
			 plan->root);
	}
	if (reader != NULL && RelationNeedsWAL(reader) && XLogStandbyInfoActive())
	{
		uint64	   *slots = palloc(sizeof(uint64) * (2 + plan->nvictims));
		int64		k = 0;

		if (plan->outcome == ROOT_REDIRECTED)
		{
			slots[k++] = plan->root | ARMDB_PRUNE_REDIRECT;
			slots[k++] = plan->target;
		}
		for (int64 i = 0; i < plan->nvictims; i++)
			slots[k++] = hp->victims[plan->first_victim + i].slot;
		armdb_wal_log_prune(&reader->rd_node, latest_removed, slots, k);
		pfree(slots);
	}
	if (plan->outcome == ROOT_REDIRECTED)
	{
		if (!plan->was_redirect)
		{
			uint32		len = armdb_version_len(rv, plan->root);

			pg_atomic_fetch_add_u64(&rt->dead_bytes, len);
			armdb_files_add_dead(rt, rv->file_id, len);
			nremoved++;
		}
		armdb_version_clear(rv, plan->root);
		armdb_version_set_redirect(rv, (uint32) plan->target);
		rv->xmin = plan->target_xmin;	/* armdb_redirect_xmin() */
	}
	else if (plan->outcome == ROOT_DEAD && plan->was_redirect)
	{
		/* ROOT_DEAD: a slot index entries still name (pass 3 frees it) */
		armdb_version_clear(rv, plan->root);
		rv->infomask2 = ARMDB_V2_ORPHAN;
	}
	/* a dead root's own version waits for pass 3, as any dead version */
	LWLockRelease(&page->lock);
	LWLockRelease(&rt->lock);

	/*
	 * Nobody else frees these: no walk from the root reaches them any more
	 * (so VACUUM's plans never name them), and they are not lone.
	 */
	for (int64 i = 0; i < plan->nvictims; i++)
		nremoved += free_heap_only(kd, &hp->victims[plan->first_victim + i]);
	return nremoved;
}

/*
 * Carry out pass 1's pruning, once its record is logged: every plan, then
 * the lone dead heap-only versions.  The versions removed are counted in
 * hp->nfreed.
 */
static void
prune_chains(ArmdbRelKeydir *kd, HotPrune *hp, Relation reader,
			 TransactionId latest_removed)
{
	for (int64 i = 0; i < hp->nplans; i++)
	{
		uint64		n;

		vacuum_delay_point();
		HOLD_INTERRUPTS();
		n = prune_one_chain(kd, hp, &hp->plans[i], reader, latest_removed);
		RESUME_INTERRUPTS();
		hp->nfreed += n;
		if (hp->plans[i].outcome == ROOT_REDIRECTED &&
			!hp->plans[i].was_redirect && n > 0)
			hp->nredirects++;
		if (n > 0)
			pg_atomic_fetch_sub_u64(&kd->nversions,
									Min(n, pg_atomic_read_u64(&kd->nversions)));
	}
	for (int64 i = 0; i < hp->nlone; i++)
	{
		vacuum_delay_point();
		if (free_heap_only(kd, &hp->lone[i]))
		{
			hp->nfreed++;
			if (pg_atomic_read_u64(&kd->nversions) > 0)
				pg_atomic_fetch_sub_u64(&kd->nversions, 1);
		}
	}
}

/*
 * Opportunistic pruning (heap's heap_page_prune_opt, one chain at a time):
 * a reader that met a dead version at the front of root's HOT chain
 * (armdb_hot_prunable) prunes the chain, so that walks along chains of
 * rows updated again and again stay short between VACUUMs.  Carried out
 * as VACUUM's pruning (prune_one_chain), unless the root changed since
 * the plan, a lock is busy or VACUUM is pruning the table; a chain that is
 * dead as a whole keeps its root for VACUUM, which removes the root's
 * index entries.  Nothing is done during recovery.
 */
void
armdb_hot_prune_opt(Relation rel, ArmdbRelKeydir *kd, uint64 root,
					GlobalVisState *vistest)
{
	ArmdbPage  *page = armdb_keydir_page(kd, root / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *rv;
	TransactionId oldest_xmin;
	TransactionId latest_removed = InvalidTransactionId;
	HotPrune	hp;
	uint64		next;

	if (page == NULL || RecoveryInProgress())
		return;
	oldest_xmin = GlobalVisTestNonRemovableHorizon(vistest);
	memset(&hp, 0, sizeof(hp));

	/*
	 * Planned under a share lock: readers prune concurrently, and one that
	 * held its root's page exclusively while it walked could deadlock with
	 * another whose chain crosses it the other way.  What the plan saw
	 * dead stays dead, and prune_one_chain() leaves a root somebody else
	 * changed meanwhile: the root's ctid and xmin, or its redirect's
	 * target and that target's xmin, say so (a freed slot may hold a new
	 * version again, never one with the same xmin).
	 */
	LWLockAcquire(&page->lock, LW_SHARED);
	rv = &page->v[root % ARMDB_SLOTS_PER_PAGE];
	if (armdb_version_is_redirect(rv) ||
		(rv->file_id != 0 && !(rv->infomask2 & HEAP_ONLY_TUPLE) &&
		 armdb_hot_next(rv, root, &next)))
		(void) prune_chain(kd, page, root, oldest_xmin, &hp, &latest_removed);
	LWLockRelease(&page->lock);

	if (hp.nplans > 0 && hp.plans[0].outcome == ROOT_DEAD)
		hp.plans[0].outcome = ROOT_MEMBERS;
	if (hp.nplans > 0 &&
		(hp.plans[0].outcome == ROOT_REDIRECTED || hp.nvictims > 0))
		prune_chains(kd, &hp, rel, latest_removed);
	if (hp.plans)
		pfree(hp.plans);
	if (hp.victims)
		pfree(hp.victims);
	if (hp.chain)
		pfree(hp.chain);
	if (hp.chain_xmin)
		pfree(hp.chain_xmin);
}

/*
 * A MultiXact xmax whose members have all ended is replaced by what
 * remains of it (heap's FreezeMultiXactId, simplified): its committed
 * updater, or nothing.  One still running lowers *min_multi, the
 * relminmxid this VACUUM may report, and *min_xid to its oldest member:
 * members that ended stay in it (a prepared transaction's, kept through a
 * restart by its lock entries, may be old), and the commit log must still
 * answer for them.  Caller holds the page lock exclusively.
 */
static void
freeze_multi(ArmdbVersion *v, MultiXactId *min_multi, TransactionId *min_xid)
{
	TransactionId updater = InvalidTransactionId;

	/* a MultiXact known to be over must not outlive relminmxid either */
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		MultiXactIdIsRunning(v->xmax, HEAP_XMAX_IS_LOCKED_ONLY(v->infomask)))
	{
		MultiXactMember *members;
		int			nmembers;

		if (MultiXactIdPrecedes(v->xmax, *min_multi))
			*min_multi = v->xmax;
		nmembers = GetMultiXactIdMembers(v->xmax, &members, false,
										 HEAP_XMAX_IS_LOCKED_ONLY(v->infomask));
		for (int i = 0; i < nmembers; i++)
			if (TransactionIdIsNormal(members[i].xid) &&
				(!TransactionIdIsValid(*min_xid) ||
				 TransactionIdPrecedes(members[i].xid, *min_xid)))
				*min_xid = members[i].xid;
		if (nmembers > 0)
			pfree(members);
		return;
	}
	if (!(v->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		updater = armdb_version_get_multi_update_xid(v);
	v->infomask &= ~(HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY);
	v->infomask2 &= ~ARMDB_V2_KEYS_UNKNOWN;
	if (TransactionIdIsValid(updater) && TransactionIdDidCommit(updater))
	{
		v->xmax = updater;
		v->infomask |= HEAP_XMAX_COMMITTED;
	}
	else
	{
		v->xmax = InvalidTransactionId;
		v->infomask |= HEAP_XMAX_INVALID;
		v->infomask2 &= ~HEAP_KEYS_UPDATED;
	}
}

/*
 * The newest transaction that ended a dead version, for the recovery
 * conflict of its removal on hot standbys (heap's
 * HeapTupleHeaderAdvanceLatestRemovedXid): none if its insert aborted.
 */
static void
advance_latest_removed(ArmdbVersion *v, TransactionId *latest)
{
	TransactionId xmax;

	if (!(v->infomask & HEAP_XMIN_COMMITTED) &&
		((v->infomask & HEAP_XMIN_INVALID) || !TransactionIdDidCommit(v->xmin)))
		return;
	if (v->infomask & HEAP_XMAX_INVALID)
		return;
	xmax = (v->infomask & HEAP_XMAX_IS_MULTI) ?
		armdb_version_get_multi_update_xid(v) : v->xmax;
	if (TransactionIdIsNormal(xmax) && xmax != v->xmin &&
		TransactionIdFollows(xmax, *latest))
		*latest = xmax;
}

/*
 * Set the visibility map bit of every virtual page that is all-visible now
 * (dead versions gone, their slots freed); the number of pages whose bit
 * is set, for relallvisible.
 */
static BlockNumber
set_all_visible(Relation rel, ArmdbRelKeydir *kd, TransactionId oldest_xmin)
{
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	Buffer		vmbuf = InvalidBuffer;
	BlockNumber nvisible = 0;

	armdb_vm_will_set(kd);

	for (uint64 p = 0; p < npages && p <= MaxBlockNumber; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);
		TransactionId cutoff;

		vacuum_delay_point();
		if (page == NULL)
			continue;
		/* reading or extending the map may wait: not under the page lock */
		visibilitymap_pin(rel, (BlockNumber) p, &vmbuf);
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		if (armdb_vm_page_all_visible(kd, page, p, oldest_xmin,
									  rel->rd_rel->relfrozenxid, &cutoff))
		{
			(void) armdb_vm_set(rel, page, p, cutoff, vmbuf);
			nvisible++;
		}
		LWLockRelease(&page->lock);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	return nvisible;
}

void
armdb_relation_vacuum(Relation rel, struct VacuumParams *params,
					  BufferAccessStrategy bstrategy)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	DeadSlots	dead = {NULL, 0, 0};
	double		live = 0;
	double		recently_dead = 0;
	bool		frozenxid_updated;
	bool		minmulti_updated;
	Relation   *indrels;
	int			nindexes;
	IndexBulkDeleteResult **stats;
	TransactionId new_frozen_xid;
	TransactionId multi_min_xid = InvalidTransactionId;
	MultiXactId new_min_multi = GetOldestMultiXactId();
	TransactionId latest_removed = InvalidTransactionId;
	BlockNumber relallvisible;
	uint64		nremoved = 0;
	HotPrune	hp;

	memset(&hp, 0, sizeof(hp));

	/*
	 * No reader prunes while we do (armdb_hot_prune_opt): our plans, made
	 * under each page's lock from now on, then stay true until carried out
	 * after the whole record is logged.
	 */
	hold_readers_pruning(kd);

	/* 1. the dead */
	for (uint64 p = 0; p < npages; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);

		vacuum_delay_point();
		if (page == NULL)
			continue;
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
		{
			ArmdbVersion *v = &page->v[i];
			uint64		slot = p * ARMDB_SLOTS_PER_PAGE + i;
			HTSV_Result res;
			uint64		next;

			if (armdb_version_is_redirect(v))
			{
				if (prune_chain(kd, page, slot, oldest_xmin, &hp,
								&latest_removed) == ROOT_DEAD)
					add_dead(&dead, slot);
				continue;
			}
			if (v->file_id != 0 && !(v->infomask2 & HEAP_ONLY_TUPLE) &&
				armdb_hot_next(v, slot, &next))
			{
				/* the root of a HOT chain: prune it */
				ChainRoot	r = prune_chain(kd, page, slot, oldest_xmin, &hp,
											&latest_removed);

				if (r == ROOT_DEAD)
					add_dead(&dead, slot);
				if (r != ROOT_KEPT)
					continue;
			}
			if (v->file_id == 0)
			{
				/*
				 * A slot the load found empty (or a dead chain's redirect,
				 * when a VACUUM stopped before its pass 3) may still have
				 * index entries: remove them too.  What ended its version
				 * ended before the load; a hot standby may still hold the
				 * version.
				 */
				if (v->infomask2 & ARMDB_V2_ORPHAN)
				{
					add_dead(&dead, p * ARMDB_SLOTS_PER_PAGE + i);
					if (TransactionIdIsNormal(kd->orphan_horizon) &&
						(!TransactionIdIsValid(latest_removed) ||
						 TransactionIdFollows(kd->orphan_horizon, latest_removed)))
						latest_removed = kd->orphan_horizon;
				}
				continue;
			}
			res = armdb_version_satisfies_vacuum(v, oldest_xmin);
			if (res == HEAPTUPLE_DEAD && (v->infomask2 & HEAP_ONLY_TUPLE))
			{
				/*
				 * A dead heap-only version has no index entry.  One that
				 * no newer version follows goes now (its chain ends here
				 * and its root is pruned too), and so does one whose
				 * insert aborted (no walk from its root gets past the
				 * root's aborted update to it); otherwise its chain's
				 * pruning decides.
				 */
				if (!armdb_hot_next(v, slot, &next) ||
					!(armdb_version_xmin_committed(v) ||
					  TransactionIdDidCommit(v->xmin)))
				{
					GROW(hp.lone, hp.nlone, hp.lone_cap, PruneVictim);
					hp.lone[hp.nlone].slot = slot;
					hp.lone[hp.nlone++].xmin = v->xmin;
					advance_latest_removed(v, &latest_removed);
				}
				continue;
			}
			switch (res)
			{
				case HEAPTUPLE_LIVE:
				case HEAPTUPLE_INSERT_IN_PROGRESS:
				case HEAPTUPLE_DELETE_IN_PROGRESS:
				case HEAPTUPLE_RECENTLY_DEAD:
					if (res == HEAPTUPLE_RECENTLY_DEAD)
						recently_dead++;
					else
						live++;

					/*
					 * Freeze what is older than every snapshot, as heap does
					 * before relfrozenxid moves: a committed xmin, and an
					 * xmax that only locked or aborted.
					 */
					if (TransactionIdIsNormal(v->xmin) &&
						TransactionIdPrecedes(v->xmin, oldest_xmin) &&
						(v->infomask & HEAP_XMIN_COMMITTED))
						v->infomask |= HEAP_XMIN_FROZEN;
					if (v->infomask & HEAP_XMAX_IS_MULTI)
						freeze_multi(v, &new_min_multi, &multi_min_xid);
					if (TransactionIdIsNormal(v->xmax) &&
						!(v->infomask & HEAP_XMAX_IS_MULTI) &&
						TransactionIdPrecedes(v->xmax, oldest_xmin) &&
						(HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
						 !TransactionIdDidCommit(v->xmax)))
					{
						v->infomask &= ~(HEAP_XMAX_COMMITTED | HEAP_LOCK_MASK |
										 HEAP_XMAX_LOCK_ONLY);
						v->infomask |= HEAP_XMAX_INVALID;
						v->xmax = InvalidTransactionId;
						/* an aborted update's link goes too */
						if (!armdb_version_is_speculative(v))
							armdb_version_set_ctid(v, slot, (uint32) slot, NULL);
					}
					break;
				case HEAPTUPLE_DEAD:
					add_dead(&dead, p * ARMDB_SLOTS_PER_PAGE + i);
					advance_latest_removed(v, &latest_removed);
					break;
			}
		}
		/* command ids and links no slot needs any more */
		armdb_page_release_extra(page, p);
		LWLockRelease(&page->lock);
	}

	/*
	 * Hot standbys drop them too, once the snapshots that could see them
	 * are gone (a recovery conflict): before their index entries go, as
	 * heap's prune record comes before its index vacuum.  The redirects
	 * come first, then the heap-only versions pruning passes over, then
	 * the dead slots (a dead chain's redirecting root among them).
	 */
	if ((dead.n > 0 || hp.nplans > 0 || hp.nlone > 0) &&
		RelationNeedsWAL(rel) && XLogStandbyInfoActive())
	{
		int64		n = 2 * hp.nplans + hp.nvictims + hp.nlone + dead.n;
		uint64	   *slots = palloc_extended(sizeof(uint64) * n, MCXT_ALLOC_HUGE);
		int64		k = 0;

		for (int64 i = 0; i < hp.nplans; i++)
			if (hp.plans[i].outcome == ROOT_REDIRECTED)
			{
				slots[k++] = hp.plans[i].root | ARMDB_PRUNE_REDIRECT;
				slots[k++] = hp.plans[i].target;
			}
		for (int64 i = 0; i < hp.nvictims; i++)
			slots[k++] = hp.victims[i].slot;
		for (int64 i = 0; i < hp.nlone; i++)
			slots[k++] = hp.lone[i].slot;
		for (int64 i = 0; i < dead.n; i++)
			slots[k++] = armdb_tid_to_slot(&dead.tids[i]);
		armdb_wal_log_prune(&rel->rd_node, latest_removed, slots, k);
		pfree(slots);
	}
	if (armdb_debug_prune_lock != 0)
	{
		/* tests: writers and readers go on while the lock's holder waits */
		DirectFunctionCall1(pg_advisory_xact_lock_shared_int8,
							Int64GetDatum(armdb_debug_prune_lock));
	}
	prune_chains(kd, &hp, NULL, latest_removed);
	release_readers_pruning();

	/* 2. their index entries */
	vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indrels);
	stats = palloc0(sizeof(IndexBulkDeleteResult *) * Max(nindexes, 1));
	for (int i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo;

		memset(&ivinfo, 0, sizeof(ivinfo));
		ivinfo.index = indrels[i];
		ivinfo.analyze_only = false;
		ivinfo.report_progress = false;
		ivinfo.estimated_count = true;
		ivinfo.message_level = DEBUG2;
		ivinfo.num_heap_tuples = live;
		ivinfo.strategy = bstrategy;
		if (dead.n > 0)
			stats[i] = index_bulk_delete(&ivinfo, stats[i], dead_slot_callback,
										 &dead);
		stats[i] = index_vacuum_cleanup(&ivinfo, stats[i]);
		if (stats[i] != NULL && !stats[i]->estimated_count)
			vac_update_relstats(indrels[i], stats[i]->num_pages,
								stats[i]->num_index_tuples, 0, false,
								InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
	}
	vac_close_indexes(nindexes, indrels, NoLock);

	/* 3. their slots, for reuse, and their bytes, for compaction */
	for (int64 i = 0; i < dead.n; i++)
	{
		uint64		slot = armdb_tid_to_slot(&dead.tids[i]);
		uint32		shard = armdb_slot_shard(kd, slot);
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];

		vacuum_delay_point();
		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		if (v->file_id != 0)
		{
			uint32		len = armdb_version_len(v, slot);

			pg_atomic_fetch_add_u64(&rt->dead_bytes, len);
			armdb_files_add_dead(rt, v->file_id, len);
			nremoved++;
		}
		armdb_version_clear(v, slot);
		v->infomask2 = ARMDB_V2_FREED;	/* its index entries are gone */
		armdb_page_release_extra(page, slot / ARMDB_SLOTS_PER_PAGE);
		LWLockRelease(&page->lock);
		(void) armdb_keydir_free_slot(rt, slot);
		LWLockRelease(&rt->lock);
	}
	if (nremoved > 0)
		pg_atomic_fetch_sub_u64(&kd->nversions,
								Min(nremoved, pg_atomic_read_u64(&kd->nversions)));
	if (dead.n > 0)
		pfree(dead.tids);

	/* 4. the visibility map */
	relallvisible = set_all_visible(rel, kd, oldest_xmin);

	/*
	 * 5. relfrozenxid, as far as the files allow.  An aggressive vacuum
	 * (FREEZE, anti-wraparound, or a table older than
	 * vacuum_freeze_table_age) also closes each shard's active file so
	 * that its entries can be frozen.
	 */
	{
		int			table_age_limit = params->freeze_table_age >= 0 ?
			params->freeze_table_age : vacuum_freeze_table_age;
		int32		age = (int32) (ReadNextTransactionId() -
								   rel->rd_rel->relfrozenxid);
		bool		aggressive = (params->options & VACOPT_FREEZE) ||
			params->is_wraparound || age > table_age_limit;

		new_frozen_xid = armdb_vstore_freeze(kd, oldest_xmin, aggressive,
											 RelationNeedsWAL(rel),
											 armdb_store_settings());
		if (TransactionIdIsValid(new_frozen_xid) &&
			TransactionIdIsValid(multi_min_xid) &&
			TransactionIdPrecedes(multi_min_xid, new_frozen_xid))
			new_frozen_xid = multi_min_xid;
	}

	/* a standby records the same fates before relfrozenxid moves there */
	if (TransactionIdIsValid(new_frozen_xid) && RelationNeedsWAL(rel) &&
		TransactionIdPrecedes(rel->rd_rel->relfrozenxid, new_frozen_xid))
		armdb_wal_log_freeze(&rel->rd_node, new_frozen_xid);

	vac_update_relstats(rel, (BlockNumber) Min(npages, MaxBlockNumber), live,
						relallvisible, nindexes > 0, new_frozen_xid,
						new_min_multi, &frozenxid_updated,
						&minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) live, (PgStat_Counter) recently_dead);
	ereport(params->log_min_duration >= 0 ? LOG : DEBUG2,
			(errmsg("armdb: vacuumed \"%s\": %llu dead versions removed (%llu of HOT chains, and %llu chain roots now redirect), %.0f live, %.0f recently dead",
					RelationGetRelationName(rel),
					(unsigned long long) (nremoved + hp.nfreed),
					(unsigned long long) hp.nfreed,
					(unsigned long long) hp.nredirects, live, recently_dead)));
}
