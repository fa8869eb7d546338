/*-------------------------------------------------------------------------
 *
 * armdb_update.c
 *	  DELETE and UPDATE on armdb tables.
 *
 * The protocol is heap's (heap_delete, heap_update; README.tuplock), on
 * version records under their virtual page's LWLock instead of tuple
 * headers under a buffer lock: HeapTupleSatisfiesUpdate decides, the tuple
 * lock (LockTuple) orders waiters, XactLockTableWait and MultiXact waits
 * wait for the transactions in xmax, and xmax, the command id and ctid are
 * set as heap sets them.  Row locks (SELECT ... FOR UPDATE and its kin),
 * the MultiXacts through which several lockers, or lockers and an updater,
 * share xmax, and the helpers that set xmax, which DELETE and UPDATE share
 * with the lockers, are armdb_rowlock.c's.
 *
 * Key columns.  An UPDATE that changes no key column (a column of a unique
 * index a foreign key could reference) takes FOR NO KEY UPDATE, so that
 * foreign key checks (FOR KEY SHARE) neither wait for it nor block it.
 * Heap compares the old and new tuples while it has both in the buffer;
 * armdb has the old row only in its data file, and reading it costs a
 * device read per UPDATE.  So the read happens only when the answer is
 * needed at once -- someone is in the old version's xmax -- and otherwise
 * the version is marked ARMDB_V2_KEYS_UNKNOWN with HEAP_KEYS_UPDATED set;
 * the first FOR KEY SHARE locker to care settles it by reading both
 * versions (settle_keys_updated, armdb_rowlock.c).  Until then the answer
 * errs on the safe side, a key update.
 *
 * The link window.  Heap sets the old tuple's xmax and its t_ctid to the
 * new tuple in one critical section.  Here the old version's xmax is set
 * first (deciding who may update), the new version is then appended (which
 * may wait for I/O), and only then is the old version's ctid pointed at it.
 * Meanwhile the old version looks updated with no newer version: a FOR KEY
 * SHARE locker, which does not wait for a no-key update, would lock only
 * the old version and its lock would miss the new one.  So such a locker
 * waits the window out (link_pending and wait_for_link, armdb_rowlock.c)
 * and then follows the chain as heap does.  Every other locker waits for
 * the updater anyway.
 *
 * Durability: DELETE appends a tombstone of the slot; UPDATE appends only
 * the new version (a new slot), whose prev_slot names the version it ends.
 * Both go to this backend's shard, like its inserts, so a transaction
 * usually makes one shard durable at commit: one fdatasync.  (Design §2
 * suggests keeping every entry of a slot in the slot's shard; that costs a
 * commit one fdatasync per shard its changed rows happen to live in --
 * four for a pgbench TPC-B transaction.)  Recovery applies an entry only if
 * its transaction committed, and applies the ends of versions after all
 * shards are loaded (keydir.c).  Row locks are written only for prepared
 * transactions, the one kind whose locks matter after a crash (lock
 * entries, armdb_xact.c and keep_carried_locks below).
 *
 * HOT.  An UPDATE that changes no indexed column (binary comparison, as
 * heap's HeapDetermineColumnsInfo) is a heap-only update (armdb_hot.c):
 * its new version is marked HEAP_ONLY_TUPLE, its entry names the chain's
 * root, the old version gets HEAP_HOT_UPDATED when it is linked, and no
 * index entry is added (*update_indexes = false).  The comparison needs
 * the old row: the executor fetched it by TID just before
 * (ExecModifyTable), so it is read again from the copy that fetch kept
 * (armdb_read_version_cached), and the key columns are settled from it
 * at once.  A table without indexes gains nothing from HOT and its
 * updates are never heap-only (heap's are: n_tup_hot_upd differs there).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "executor/tuptable.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "am/armdb_vm.h"
#include "armdb.h"
#include "keydir/visibility.h"
#include "armdb_guc.h"
#include "wal/armdb_wal.h"

/* what an UPDATE knows about its key columns */
typedef enum KeyState
{
	KEYS_UNKNOWN,				/* not compared yet */
	KEYS_INTACT,				/* no key column changes: FOR NO KEY UPDATE */
	KEYS_CHANGED				/* a key column changes (or DELETE) */
} KeyState;

/* ----------------
 * DELETE and UPDATE
 * ----------------
 */

/*
 * heap_delete, and heap_update up to its new tuple: decide whether the
 * current transaction may end the version at tid (newslot: the UPDATE's
 * new row, NULL for DELETE), waiting for conflicting transactions as heap
 * does, and if so set its xmax -- keeping its live lockers -- with ctid its
 * own slot (or ARMDB_CTID_MOVED when the row moves to another partition).
 * The caller links an UPDATE's new version afterwards; *lockers gets the
 * xmax that version starts with (lockers that stay, heap's
 * xmax_new_tuple), *lockmode the row lock the operation took.
 */
static TM_Result
end_version(Relation rel, ArmdbRelKeydir *kd, ItemPointer tid, CommandId cid,
			Snapshot crosscheck, bool wait, TupleTableSlot *newslot,
			KeyState keys, bool changing_part, TM_FailureData *tmfd,
			LockTupleMode *lockmode, ArmdbVersion *lockers)
{
	uint64		slot;
	ArmdbPage  *page = armdb_page_of_tid(kd, tid, &slot);
	ArmdbVersion *v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	TransactionId xid = GetCurrentTransactionId();
	const char *what = newslot ? "update" : "delete";
	XLTW_Oper	oper = newslot ? XLTW_Update : XLTW_Delete;
	LockTupleMode mode = LockTupleExclusive;
	bool		have_tuple_lock = false;
	bool		checked_lockers;
	bool		locker_remains;
	TransactionId new_xmax;
	uint16		new_infomask;
	uint16		new_infomask2;
	HeapTupleHeaderData hdr;
	CommandId	cmax = cid;
	bool		iscombo;
	TM_Result	result;

	memset(lockers, 0, sizeof(*lockers));
	lockers->infomask = HEAP_XMAX_INVALID;

	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
retry:
	checked_lockers = false;
	locker_remains = false;
	if (v->file_id == 0)
	{
		LWLockRelease(&page->lock);
		elog(ERROR, "armdb: attempted to %s a row version that does not exist",
			 what);
	}
	result = armdb_version_satisfies_update(v, slot, cid);
	if (result == TM_Invisible)
	{
		LWLockRelease(&page->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("attempted to %s invisible tuple", what)));
	}

	/*
	 * Compare key columns now only if somebody is in xmax, whose lock may
	 * conflict with ours or must be kept (file header).
	 */
	if (keys == KEYS_UNKNOWN &&
		!(result == TM_Ok && (v->infomask & HEAP_XMAX_INVALID)))
	{
		LWLockRelease(&page->lock);
		keys = armdb_update_changes_keys(rel, tid, newslot) ? KEYS_CHANGED :
			KEYS_INTACT;
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		goto retry;
	}
	if (keys == KEYS_INTACT)
		mode = LockTupleNoKeyExclusive;

	if (result == TM_BeingModified && wait)
	{
		TransactionId xwait = v->xmax;
		uint16		infomask = v->infomask;
		bool		can_continue = false;

		if (infomask & HEAP_XMAX_IS_MULTI)
		{
			bool		current_is_member = false;
			TransactionId update_xid = InvalidTransactionId;

			if (armdb_multi_conflicts(xwait, infomask, mode, &current_is_member))
			{
				int			remain;

				LWLockRelease(&page->lock);
				/* no tuple lock if we hold a row lock already: deadlock */
				if (!current_is_member)
					armdb_acquire_tuplock(rel, tid, mode, LockWaitBlock,
										  &have_tuple_lock);
				armdb_multi_wait(xwait, armdb_mxstatus_for_lock(mode, true),
								 infomask, false, rel, tid, oper, &remain);
				checked_lockers = true;
				locker_remains = remain != 0;
				LWLockAcquire(&page->lock, LW_EXCLUSIVE);
				if (armdb_xmax_changed(v->infomask, infomask) ||
					!TransactionIdEquals(v->xmax, xwait))
					goto retry;
			}

			/* lockers may remain (ours, key-share ones); an updater may not */
			if (!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
				update_xid = armdb_version_get_multi_update_xid(v);
			if (!TransactionIdIsValid(update_xid) ||
				TransactionIdDidAbort(update_xid))
				can_continue = true;
		}
		else if (TransactionIdIsCurrentTransactionId(xwait) ||
				 (HEAP_XMAX_IS_KEYSHR_LOCKED(infomask) && keys == KEYS_INTACT))
		{
			/* our own lock, or a key-share lock we do not conflict with */
			checked_lockers = true;
			locker_remains = true;
			can_continue = true;
		}
		else
		{
			LWLockRelease(&page->lock);
			armdb_acquire_tuplock(rel, tid, mode, LockWaitBlock,
								  &have_tuple_lock);
			XactLockTableWait(xwait, rel, tid, oper);
			checked_lockers = true;
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
			if (armdb_xmax_changed(v->infomask, infomask) ||
				!TransactionIdEquals(v->xmax, xwait))
				goto retry;
			armdb_update_xmax_hint_bits(v, xwait);
			if (v->infomask & HEAP_XMAX_INVALID)
				can_continue = true;
		}

		if (can_continue)
			result = TM_Ok;
		else if (armdb_version_ctid_is_self(v, slot))
			result = TM_Deleted;
		else
			result = TM_Updated;
	}

	if (crosscheck != InvalidSnapshot && result == TM_Ok &&
		!armdb_version_satisfies(v, slot, crosscheck))
		result = TM_Updated;

	*lockmode = mode;
	if (result != TM_Ok)
	{
		armdb_fill_failure(tmfd, v, slot, result);
		LWLockRelease(&page->lock);
		if (have_tuple_lock)
			UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
		return result;
	}

	CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));

	/* the old version's xmax: us, with the lockers that stay */
	MultiXactIdSetOldestMember();
	armdb_compute_new_xmax(v->xmax, v->infomask, v->infomask2, xid, mode, true,
						   &new_xmax, &new_infomask, &new_infomask2);

	/* the new version's: the lockers that stay (heap's xmax_new_tuple) */
	if (newslot != NULL && !(v->infomask & HEAP_XMAX_INVALID) &&
		!HEAP_LOCKED_UPGRADED(v->infomask) &&
		!(checked_lockers && !locker_remains))
	{
		lockers->xmax = v->xmax;
		if (v->infomask & HEAP_XMAX_IS_MULTI)
		{
			uint16		infomask;
			uint16		infomask2;

			/* (a record is packed: no pointers into it) */
			armdb_multi_hint_bits(v->xmax, &infomask, &infomask2);
			lockers->infomask = infomask;
			lockers->infomask2 = infomask2;
		}
		else
			lockers->infomask = HEAP_XMAX_KEYSHR_LOCK | HEAP_XMAX_LOCK_ONLY;
	}

	/* combo command id if we inserted it ourselves (combocid.c) */
	memset(&hdr, 0, sizeof(hdr));
	hdr.t_infomask = v->infomask;
	HeapTupleHeaderSetXmin(&hdr, v->xmin);
	hdr.t_choice.t_heap.t_field3.t_cid = armdb_version_cid(v, slot);
	HeapTupleHeaderAdjustCmax(&hdr, &cmax, &iscombo);

	/*
	 * Room for the command id and the link to the new version before the
	 * record changes (an ERROR when memory is full leaves it as it was).
	 */
	if (cmax != FirstCommandId || changing_part || newslot != NULL)
		armdb_page_prepare_extra(page, slot / ARMDB_SLOTS_PER_PAGE,
								 armdb_store_settings());

	/* the page is no longer all-visible (armdb_vm.c) */
	armdb_vm_clear(rel, kd, page, slot / ARMDB_SLOTS_PER_PAGE);
	armdb_set_xmax(v, new_xmax, new_infomask, new_infomask2);
	/* a HOT update of ours sets it again when it links (heap_delete too) */
	v->infomask2 &= ~HEAP_HOT_UPDATED;
	if (new_infomask & HEAP_XMAX_IS_MULTI)
		armdb_xact_note_row_lock(rel);	/* lockers beside us: PREPARE */
	v->infomask &= ~HEAP_COMBOCID;
	if (iscombo)
		v->infomask |= HEAP_COMBOCID;
	if (keys == KEYS_UNKNOWN)
	{
		Assert(v->infomask2 & HEAP_KEYS_UPDATED);
		v->infomask2 |= ARMDB_V2_KEYS_UNKNOWN;
	}
	armdb_version_set_cid(v, slot, cmax, armdb_store_settings());
	armdb_version_set_ctid(v, slot,
						   changing_part ? ARMDB_CTID_MOVED : (uint32) slot,
						   armdb_store_settings());
	LWLockRelease(&page->lock);
	if (have_tuple_lock)
		UnlockTuple(rel, tid, armdb_tuple_lock_hwmode(mode));
	return TM_Ok;
}


/*
 * The new version of an UPDATE carries over the old one's key-share
 * lockers.  A locker that is prepared already wrote the lock entry of the
 * old version only: write one for the new version, for each locker still
 * running (the transaction whose running keeps it, format.h), so that a
 * restart gives it the lock back.  Our own locks are found when we
 * prepare (armdb_xact.c).
 */
static void
keep_carried_locks(Relation rel, ArmdbRelKeydir *kd, uint64 nslot,
				   const ArmdbVersion *lockers)
{
	MultiXactMember single;
	MultiXactMember *members = &single;
	int			nmembers = 1;
	ArmdbRowLock *locks;
	int			nlocks = 0;

	if (max_prepared_xacts == 0)
		return;					/* nobody can be prepared */
	if (lockers->infomask & HEAP_XMAX_IS_MULTI)
		nmembers = GetMultiXactIdMembers(lockers->xmax, &members, false,
										 HEAP_XMAX_IS_LOCKED_ONLY(lockers->infomask));
	else
		single.xid = lockers->xmax;
	locks = palloc(sizeof(ArmdbRowLock) * Max(nmembers, 1));
	for (int i = 0; i < nmembers; i++)
	{
		TransactionId xid = members[i].xid;

		if (TransactionIdIsCurrentTransactionId(xid) ||
			!TransactionIdIsInProgress(xid))
			continue;
		locks[nlocks].slot = nslot;
		locks[nlocks].fxid = armdb_widen_xid(xid);
		locks[nlocks].xmax = lockers->xmax;
		locks[nlocks].infomask = lockers->infomask;
		locks[nlocks].infomask2 = lockers->infomask2;
		nlocks++;
	}
	if (nlocks > 0)
		armdb_vstore_append_locks(kd, armdb_my_shard(kd), locks, nlocks,
								  RelationNeedsWAL(rel),
								  armdb_store_settings());
	pfree(locks);
	if (members != &single && members != NULL)
		pfree(members);
}

/*
 * For logical decoding of a change to the row at otid (its old version,
 * still there): heap's ExtractReplicaIdentity().  NULL for REPLICA
 * IDENTITY NOTHING, and for an UPDATE (newslot) that leaves the identity
 * key as it was; the whole row for FULL; else the key's columns, the others
 * null.  palloc'd.
 */
static HeapTuple
logical_old_tuple(Relation rel, ItemPointer otid, TupleTableSlot *newslot)
{
	char		replident = rel->rd_rel->relreplident;
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *oldslot;
	HeapTuple	old;
	HeapTuple	key = NULL;
	Bitmapset  *idattrs;
	bool		should_free;

	if (replident == REPLICA_IDENTITY_NOTHING)
		return NULL;
	idattrs = replident == REPLICA_IDENTITY_FULL ? NULL :
		RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	if (replident != REPLICA_IDENTITY_FULL && bms_is_empty(idattrs))
		return NULL;			/* no key: nothing to log */
	oldslot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	if (!armdb_fetch_row_version(rel, otid, SnapshotAny, oldslot))
		elog(ERROR, "armdb: the old version of a changed row at (%u,%u) is gone",
			 ItemPointerGetBlockNumber(otid), ItemPointerGetOffsetNumber(otid));
	old = ExecFetchSlotHeapTuple(oldslot, false, &should_free);
	if (replident == REPLICA_IDENTITY_FULL)
		key = heap_copytuple(old);
	else
	{
		if (newslot == NULL || armdb_columns_differ(rel, idattrs, old, newslot))
		{
			Datum	   *values = palloc(sizeof(Datum) * desc->natts);
			bool	   *nulls = palloc(sizeof(bool) * desc->natts);

			heap_deform_tuple(old, desc, values, nulls);
			for (int i = 0; i < desc->natts; i++)
				if (!bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber,
								   idattrs))
					nulls[i] = true;
			key = heap_form_tuple(desc, values, nulls);
			pfree(values);
			pfree(nulls);
		}
		bms_free(idattrs);
	}
	if (should_free)
		heap_freetuple(old);
	ExecDropSingleTupleTableSlot(oldslot);
	return key;
}

TM_Result
armdb_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				   Snapshot snapshot, Snapshot crosscheck, bool wait,
				   TM_FailureData *tmfd, bool changingPart)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion lockers;
	LockTupleMode lockmode;
	TM_Result	result;

	/* as heap: with changingPart the row went elsewhere, not away */
	result = end_version(rel, kd, tid, cid, crosscheck, wait, NULL,
						 KEYS_CHANGED, changingPart, tmfd, &lockmode,
						 &lockers);
	if (result != TM_Ok)
		return result;

	armdb_append_tombstone(rel, kd, armdb_tid_to_slot(tid),
						   GetCurrentFullTransactionId());
	if (RelationIsLogicallyLogged(rel))
	{
		HeapTuple	old_key = logical_old_tuple(rel, tid, NULL);

		armdb_wal_log_logical(rel, ARMDB_LOGICAL_DELETE, NULL, old_key);
		if (old_key != NULL)
			heap_freetuple(old_key);
	}
	pgstat_count_heap_delete(rel);
	return TM_Ok;
}

/*
 * heap's HeapDetermineColumnsInfo(), for the attributes in attrs: does one
 * of newslot's differ from oldtup's, binary?  A system attribute other
 * than tableoid, or the whole row, counts as changed.
 */
bool
armdb_columns_differ(Relation rel, Bitmapset *attrs, HeapTuple oldtup,
					 TupleTableSlot *newslot)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			x = -1;

	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	attnum = x + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		Datum		oldval;
		Datum		newval;
		bool		oldnull;
		bool		newnull;

		if (attnum == TableOidAttributeNumber)
			continue;
		if (attnum <= 0)
			return true;
		att = TupleDescAttr(desc, attnum - 1);
		oldval = heap_getattr(oldtup, attnum, desc, &oldnull);
		newval = slot_getattr(newslot, attnum, &newnull);
		if (oldnull != newnull)
			return true;
		if (!oldnull && !datumIsEqual(oldval, newval, att->attbyval, att->attlen))
			return true;
	}
	return false;
}

/*
 * May the UPDATE of the version in oslot by newslot be heap-only (file
 * header)?  If so, *root is its chain's root slot.  *keys is settled from
 * the same comparison when it was unknown.
 */
static bool
update_is_hot(Relation rel, ArmdbRelKeydir *kd, uint64 oslot,
			  TupleTableSlot *newslot, uint64 *root, KeyState *keys)
{
	ArmdbVersion v;
	ArmdbVersionExtra x;
	Bitmapset  *hot_attrs;
	HeapTupleData oldtup;
	char	   *buf;
	char	   *image;
	uint32		image_len;
	bool		hot;

	*root = ARMDB_INVALID_SLOT;
	if (!armdb_hot_updates || !rel->rd_rel->relhasindex)
		return false;
	(void) armdb_version_lookup(kd, oslot, SnapshotAny, &v, &x);
	if (v.file_id == 0)
		return false;			/* end_version() says what is wrong */

	buf = palloc(x.len);
	(void) armdb_read_version_cached(kd, oslot, &v, &x, buf);
	*root = (v.infomask2 & HEAP_ONLY_TUPLE) ?
		armdb_entry_root_slot(buf, oslot) : oslot;
	image = armdb_entry_tuple(buf, x.len, &image_len);
	armdb_fill_tuple(&oldtup, rel, oslot, image, image_len, &v, &x);

	hot_attrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_ALL);
	hot = !armdb_columns_differ(rel, hot_attrs, &oldtup, newslot);
	bms_free(hot_attrs);
	if (hot)
		*keys = KEYS_INTACT;	/* key columns are indexed columns */
	else if (*keys == KEYS_UNKNOWN)
	{
		Bitmapset  *key_attrs = RelationGetIndexAttrBitmap(rel,
														   INDEX_ATTR_BITMAP_KEY);

		*keys = armdb_columns_differ(rel, key_attrs, &oldtup, newslot) ?
			KEYS_CHANGED : KEYS_INTACT;
		bms_free(key_attrs);
	}
	pfree(buf);
	if (!hot)
		*root = ARMDB_INVALID_SLOT;
	return hot;
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
	ArmdbVersion lockers;
	ArmdbPage  *page;
	ArmdbVersion *v;
	TM_Result	result;
	/* without key columns no update can change one: no comparing */
	KeyState	keys = armdb_has_key_columns(rel) ? KEYS_UNKNOWN : KEYS_INTACT;
	uint64		root;
	bool		hot;
	HeapTuple	old_key;

	*update_indexes = true;
	if (!armdb_slot_of_tid(kd, otid, &oslot))
		elog(ERROR, "armdb: attempted to update a row version that does not exist");
	hot = update_is_hot(rel, kd, oslot, slot, &root, &keys);

	/*
	 * For logical decoding, the old key or row: read before the version is
	 * ended, not between its end and the link to its new version, which key
	 * share lockers wait out (armdb_rowlock.c).  If the end fails, the
	 * executor retries on the newer version, and this is read again.
	 */
	old_key = RelationIsLogicallyLogged(rel) ?
		logical_old_tuple(rel, otid, slot) : NULL;
	result = end_version(rel, kd, otid, cid, crosscheck, wait, slot, keys,
						 false, tmfd, lockmode, &lockers);
	if (result != TM_Ok)
	{
		if (old_key != NULL)
			heap_freetuple(old_key);
		return result;
	}

	/* the new version, in our shard; then link the old one to it */
	armdb_insert_version(rel, kd, slot, cid, oslot, root, &lockers, old_key);
	if (old_key != NULL)
		heap_freetuple(old_key);
	nslot = armdb_tid_to_slot(&slot->tts_tid);
	page = armdb_keydir_page(kd, oslot / ARMDB_SLOTS_PER_PAGE);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[oslot % ARMDB_SLOTS_PER_PAGE];
	armdb_version_set_ctid(v, oslot, (uint32) nslot, armdb_store_settings());
	if (hot)
		v->infomask2 |= HEAP_HOT_UPDATED;
	LWLockRelease(&page->lock);
	if (TransactionIdIsValid(lockers.xmax))
		keep_carried_locks(rel, kd, nslot, &lockers);

	*update_indexes = !hot;
	pgstat_count_heap_update(rel, hot);
	return TM_Ok;
}
