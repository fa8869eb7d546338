/*-------------------------------------------------------------------------
 *
 * armdb_hot.c
 *	  HOT chains of armdb tables: updates that add no index entry.
 *
 * An UPDATE that changes no indexed column is a heap-only update (design
 * §2, heap's README.HOT): the new version gets a slot of its own, as every
 * version does (triggers and foreign keys fetch OLD and NEW by TID), but no
 * index entry.  The index entries of the row keep naming the first version
 * of the chain, its *root*, and whoever follows an index entry walks the
 * chain from there to the version its snapshot sees
 * (armdb_hot_search(), heap_hot_search_buffer's rules):
 *
 *	 - the older version has HEAP_HOT_UPDATED and its ctid names the newer
 *	   one, which has HEAP_ONLY_TUPLE;
 *	 - the chain goes on only while the newer version's xmin is the older
 *	   one's updater, which also ends it at a slot that VACUUM freed and
 *	   gave to another row;
 *	 - once VACUUM has removed the chain's first versions, the root's slot
 *	   holds no version but a *redirect* (ARMDB_V2_REDIRECT, heap's
 *	   LP_REDIRECT): its ctid names the first version left, and its xmin
 *	   that version's xmin, so that a walk never follows it into a slot
 *	   given to another row since (heap's redirects stay on their page,
 *	   whose lock keeps the target; a hot standby that loaded its keydir
 *	   may keep versions the primary has freed and reused).  Only the
 *	   root's slot may redirect, and a redirect stays until the whole chain
 *	   is dead; then the root's slot is an ordinary dead slot, whose index
 *	   entries VACUUM removes before the slot is used again.
 *
 * Unlike heap, where a chain stays on one page under one buffer lock, a
 * chain's versions are in the updaters' shards, on any virtual page.  The
 * walk holds the root's page lock throughout and takes the lock of each
 * other page it enters, in share mode, one at a time.  VACUUM prunes a
 * chain (armdb_vacuum.c) by changing the root's record under the root's
 * page lock held exclusively, and frees the versions it passed over only
 * after that: so a walk that started before the prune has finished before
 * the prune could begin, and one that starts after it never meets the
 * freed slots.  Readers prune too (armdb_hot_prune_opt, heap's
 * heap_page_prune_opt): a walk or a sequential scan that meets a dead
 * version at the front of a chain plans the chain's pruning under a share
 * lock and carries it out as VACUUM does, leaving a root that somebody
 * else pruned meanwhile.  Only VACUUM, which runs alone on a table, takes
 * a second page lock while it holds one exclusively, so these nested
 * share locks cannot deadlock.
 *
 * Root slots survive a restart in the entries: a heap-only version's entry
 * names its chain's root (root_slot, format.h), and the load gives the
 * root's slot a redirect to the oldest version left of its chain when the
 * versions before it are gone (keydir.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "keydir/visibility.h"

/*
 * Does version v (in slot) go on to a newer version of its HOT chain?  Its
 * slot in *next.  heap's HeapTupleHeaderIsHotUpdated (an insert known to
 * have aborted leads nowhere), and a ctid that names another slot.
 */
bool
armdb_hot_next(const ArmdbVersion *v, uint64 slot, uint64 *next)
{
	if (v->file_id == 0)
		return false;
	return armdb_hot_next_copy(v, armdb_version_ctid(v, slot), slot, next);
}

/* ... for a copy of the record, v, with its ctid */
bool
armdb_hot_next_copy(const ArmdbVersion *v, uint32 ctid, uint64 slot,
					uint64 *next)
{
	if (v->file_id == 0 || !(v->infomask2 & HEAP_HOT_UPDATED) ||
		(v->infomask & HEAP_XMAX_INVALID) || armdb_version_xmin_invalid(v) ||
		HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) ||
		(v->infomask2 & ARMDB_V2_SPECULATIVE) ||
		ctid == ARMDB_CTID_MOVED || ctid == (uint32) slot)
		return false;
	*next = ctid;
	return true;
}

/*
 * Does v belong where a walk finds it: a version (not an empty slot), the
 * root's own when the walk is at the chain's start and a heap-only one
 * after it, whose xmin is the updater of the version before (prior_xmax,
 * invalid at the start)?  Anything else means the chain ends before v: a
 * slot VACUUM freed may hold another row's version by now, even another
 * chain's heap-only one.
 */
bool
armdb_chain_member(const ArmdbVersion *v, bool at_chain_start,
				   TransactionId prior_xmax)
{
	if (v->file_id == 0)
		return false;
	if (((v->infomask2 & HEAP_ONLY_TUPLE) != 0) == at_chain_start)
		return false;
	return !TransactionIdIsValid(prior_xmax) ||
		TransactionIdEquals(prior_xmax, v->xmin);
}

/*
 * The version record of slot during a walk: its page's lock is taken in
 * walk->mode unless it is the root's page, which the walker holds, or the
 * page entered last.
 */
ArmdbVersion *
armdb_chain_version(ArmdbChainWalk *walk, uint64 slot)
{
	ArmdbPage  *page = armdb_keydir_page(walk->kd, slot / ARMDB_SLOTS_PER_PAGE);

	if (page == NULL)
		return NULL;
	if (page != walk->root_page && page != walk->cur_page)
	{
		if (walk->cur_page != NULL)
			LWLockRelease(&walk->cur_page->lock);
		LWLockAcquire(&page->lock, walk->mode);
		walk->cur_page = page;
	}
	return &page->v[slot % ARMDB_SLOTS_PER_PAGE];
}

/* Let go of the page a walk entered last (not the root's). */
void
armdb_chain_done(ArmdbChainWalk *walk)
{
	if (walk->cur_page != NULL)
		LWLockRelease(&walk->cur_page->lock);
	walk->cur_page = NULL;
}

/*
 * heap_hot_search_buffer(): from the root slot *slotp, whose page lock
 * (root_page) the caller holds, walk the HOT chain to the version snapshot
 * sees; true with its slot in *slotp and its record in *copy.  With rel,
 * every version looked at is judged for SSI as heap does
 * (armdb_version_judge).  all_dead, when not NULL, says whether every
 * version of the chain is dead to everybody (vistest), as the index AM
 * then kills the entry.
 *
 * A walk that is not the first for its index entry (call_again, for
 * snapshots that may see several versions of a chain) starts after the
 * version returned last, *slotp, if that still holds the version whose
 * xmin was resume_xmin.  *npassed, when not NULL, counts the versions
 * the walk looked at and passed over.
 */
bool
armdb_hot_search_locked(Relation rel, ArmdbRelKeydir *kd, ArmdbPage *root_page,
						uint64 *slotp, Snapshot snapshot, ArmdbVersion *copy,
						ArmdbVersionExtra *xcopy, bool *all_dead, GlobalVisState *vistest,
						bool first_call, TransactionId resume_xmin,
						int *npassed)
{
	ArmdbChainWalk walk = {kd, root_page, NULL, LW_SHARED};
	TransactionId prior_xmax = InvalidTransactionId;
	bool		at_chain_start = first_call;
	bool		skip = !first_call;
	uint64		slot = *slotp;
	bool		found = false;

	if (all_dead != NULL)
		*all_dead = first_call;
	if (npassed != NULL)
		*npassed = 0;
	memset(copy, 0, sizeof(*copy));

	for (;;)
	{
		ArmdbVersion *v = armdb_chain_version(&walk, slot);
		uint64		next;

		if (v == NULL)
			break;
		if (armdb_version_is_redirect(v))
		{
			/* only an index entry's own slot may redirect */
			if (!at_chain_start)
				break;
			slot = armdb_version_ctid(v, slot);
			prior_xmax = armdb_redirect_xmin(v);
			at_chain_start = false;
			continue;
		}
		if (skip)
		{
			/* resuming: the version returned last must still be there */
			if (v->file_id == 0 || !TransactionIdEquals(v->xmin, resume_xmin))
				break;
		}
		else if (!armdb_chain_member(v, at_chain_start, prior_xmax))
			break;

		if (!skip && armdb_version_judge(rel, v, slot, snapshot))
		{
			*copy = *v;
			if (xcopy != NULL)
				*xcopy = armdb_version_extra_values(v, slot);
			*slotp = slot;
			if (all_dead != NULL)
				*all_dead = false;
			found = true;
			break;
		}
		skip = false;
		if (npassed != NULL)
			(*npassed)++;

		if (all_dead != NULL && *all_dead &&
			(vistest == NULL || !armdb_version_is_surely_dead(v, vistest)))
			*all_dead = false;

		if (!armdb_hot_next(v, slot, &next))
			break;
		prior_xmax = armdb_version_get_update_xid(v);
		slot = next;
		at_chain_start = false;
	}
	armdb_chain_done(&walk);
	return found;
}

/* armdb_hot_search_locked(), taking the root's page lock itself */
bool
armdb_hot_search(Relation rel, ArmdbRelKeydir *kd, uint64 *slotp,
				 Snapshot snapshot, ArmdbVersion *copy,
				 ArmdbVersionExtra *xcopy, bool *all_dead,
				 GlobalVisState *vistest, bool first_call,
				 TransactionId resume_xmin, int *npassed)
{
	ArmdbPage  *page = armdb_keydir_page(kd, *slotp / ARMDB_SLOTS_PER_PAGE);
	bool		found;

	if (page == NULL)
	{
		memset(copy, 0, sizeof(*copy));
		if (all_dead != NULL)
			*all_dead = false;
		if (npassed != NULL)
			*npassed = 0;
		return false;
	}
	LWLockAcquire(&page->lock, LW_SHARED);
	found = armdb_hot_search_locked(rel, kd, page, slotp, snapshot, copy,
									xcopy, all_dead, vistest, first_call,
									resume_xmin, npassed);
	LWLockRelease(&page->lock);
	return found;
}

/*
 * Is the root slot's whole chain dead to everybody (vistest)?  An empty
 * slot is; with known_dead (an index entry the index AM knows dead) every
 * version counts as dead.  If so, *latest_removed advances to the newest
 * updater or deleter of the chain's versions (heap_index_delete_tuples),
 * for hot-standby conflicts.  The caller holds no page lock.
 */
bool
armdb_hot_chain_dead(ArmdbRelKeydir *kd, uint64 root, GlobalVisState *vistest,
					 bool known_dead, TransactionId *latest_removed)
{
	ArmdbPage  *page = armdb_keydir_page(kd, root / ARMDB_SLOTS_PER_PAGE);
	ArmdbChainWalk walk = {kd, page, NULL, LW_SHARED};
	TransactionId prior_xmax = InvalidTransactionId;
	TransactionId newest = InvalidTransactionId;
	bool		at_chain_start = true;
	bool		dead = true;
	uint64		slot = root;

	if (page == NULL)
		return true;
	LWLockAcquire(&page->lock, LW_SHARED);
	for (;;)
	{
		ArmdbVersion *v = armdb_chain_version(&walk, slot);
		TransactionId xmax;
		uint64		next;

		if (v == NULL)
			break;
		if (armdb_version_is_redirect(v))
		{
			if (!at_chain_start)
				break;
			slot = armdb_version_ctid(v, slot);
			prior_xmax = armdb_redirect_xmin(v);
			at_chain_start = false;
			continue;
		}
		if (!armdb_chain_member(v, at_chain_start, prior_xmax))
			break;
		if (!known_dead && !armdb_version_is_surely_dead(v, vistest))
		{
			dead = false;
			break;
		}
		/* heap's HeapTupleHeaderAdvanceLatestRemovedXid */
		xmax = armdb_version_get_update_xid(v);
		if ((armdb_version_xmin_committed(v) ||
			 (!armdb_version_xmin_invalid(v) &&
			  TransactionIdDidCommit(v->xmin))) &&
			TransactionIdIsNormal(xmax) && !TransactionIdEquals(xmax, v->xmin) &&
			(!TransactionIdIsValid(newest) || TransactionIdFollows(xmax, newest)))
			newest = xmax;
		if (!armdb_hot_next(v, slot, &next))
			break;
		prior_xmax = xmax;
		slot = next;
		at_chain_start = false;
	}
	armdb_chain_done(&walk);
	LWLockRelease(&page->lock);
	if (dead && TransactionIdIsValid(newest) &&
		(!TransactionIdIsValid(*latest_removed) ||
		 TransactionIdFollows(newest, *latest_removed)))
		*latest_removed = newest;
	return dead;
}

/*
 * Is there something to prune at the front of root's chain: its first
 * version (the root's own, or the one its redirect names) dead to
 * everybody (vistest) and followed by a newer one?  heap_page_prune_opt's
 * question, for one chain.  The caller holds root_page's lock.
 */
bool
armdb_hot_prunable_locked(ArmdbRelKeydir *kd, ArmdbPage *root_page,
						  uint64 root, GlobalVisState *vistest)
{
	ArmdbChainWalk walk = {kd, root_page, NULL, LW_SHARED};
	ArmdbVersion *v = &root_page->v[root % ARMDB_SLOTS_PER_PAGE];
	TransactionId prior_xmax = InvalidTransactionId;
	bool		at_chain_start = true;
	uint64		slot = root;
	uint64		next;
	bool		prunable;

	if (armdb_version_is_redirect(v))
	{
		slot = armdb_version_ctid(v, slot);
		prior_xmax = armdb_redirect_xmin(v);
		at_chain_start = false;
		v = armdb_chain_version(&walk, slot);
	}
	prunable = v != NULL &&
		armdb_chain_member(v, at_chain_start, prior_xmax) &&
		armdb_hot_next(v, slot, &next) &&
		armdb_version_is_surely_dead(v, vistest);
	armdb_chain_done(&walk);
	return prunable;
}

/* armdb_hot_prunable_locked(), taking the root's page lock itself */
bool
armdb_hot_prunable(ArmdbRelKeydir *kd, uint64 root, GlobalVisState *vistest)
{
	ArmdbPage  *page = armdb_keydir_page(kd, root / ARMDB_SLOTS_PER_PAGE);
	bool		prunable;

	if (page == NULL)
		return false;
	LWLockAcquire(&page->lock, LW_SHARED);
	prunable = armdb_hot_prunable_locked(kd, page, root, vistest);
	LWLockRelease(&page->lock);
	return prunable;
}
