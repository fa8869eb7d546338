/*-------------------------------------------------------------------------
 *
 * armdb_vm.c
 *	  The visibility map of armdb tables, for index-only scans.
 *
 * An index-only scan reads the table's visibility map fork itself
 * (VM_ALL_VISIBLE in nodeIndexonlyscan.c): a set bit lets it return the
 * index tuple without fetching the row.  armdb keeps that fork as heap
 * does, the virtual page (the 291 slots of one block number) standing in
 * for the heap page:
 *
 *	- VACUUM sets a page's bit when every version on it is visible to every
 *	  snapshot (heap's test in lazy_scan_prune: live, xmin committed and
 *	  older than OldestXmin; a row lock does not matter) and no empty slot
 *	  on it may still have index entries (armdb_vm_page_all_visible), under
 *	  the page's lock, logging XLOG_ARMDB_VM_SET with the map's page as heap
 *	  logs XLOG_HEAP2_VISIBLE.  Only the all-visible bit: armdb never sets
 *	  all-frozen (its freezing is VACUUM's work on the files).
 *	- Every change that may make a version on the page invisible to some
 *	  snapshot clears the bit first, under the same lock: a new version in
 *	  one of its slots, and an xmax set by DELETE or UPDATE
 *	  (armdb_vm_clear).  A row lock changes no version's visibility.
 *	  Heap's records carry "all-visible cleared" as a flag and their replay
 *	  clears the bit.  armdb's entries name no tablespace and are logged
 *	  apart from the keydir's change (a batch at its end), so the clear is
 *	  logged on its own, XLOG_ARMDB_VM_CLEAR: before a DELETE's or an
 *	  UPDATE's tombstone and commit, and before the index entries of a new
 *	  version.  (A new version's own entry may be logged first; if a crash
 *	  comes between, its transaction aborted and no index entry points at
 *	  it.)  The map's page is dirtied before the record is inserted, so a
 *	  checkpoint whose redo point follows the record writes the cleared
 *	  page out, and one whose redo point precedes it leaves the record to
 *	  replay.
 *
 * A virtual page's vm_maybe_set says whether the map may hold its bit.  It
 * starts true (a page loaded after a restart may have one), VACUUM sets it
 * when it sets the bit, and the first change to the page finds out and
 * clears it, so a page pays for a look at the map once, not per change.
 * That look reads the map's size afresh: a VACUUM in another backend may
 * have extended the map since this backend cached its size (its
 * invalidation need not have been processed yet).  The relation's
 * vm_state spares the look when it has no map at all, as most tables
 * never vacuumed: the first look finds out (ARMDB_VM_NONE), and VACUUM says
 * ARMDB_VM_MAYBE before it sets any bit.  A writer reads vm_state under the
 * page's lock, after VACUUM set the page's bit under it, so it cannot
 * miss that bit; a look that found no map does not overwrite VACUUM's
 * ARMDB_VM_MAYBE (compare-and-exchange from ARMDB_VM_UNKNOWN only).
 *
 * Nothing else needs the map: a new relfilenode (TRUNCATE, rewrites,
 * SET TABLESPACE) starts without one, a non-transactional truncate
 * truncates it (armdb_ddl.c), and unlogged tables lose it at a crash.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/visibilitymap.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "storage/standby.h"
#include "utils/rel.h"

#include "am/armdb_am.h"
#include "am/armdb_vm.h"
#include "keydir/visibility.h"
#include "wal/armdb_wal.h"

/* visibilitymap.c's layout of a map page: BITS_PER_HEAPBLOCK bits a block */
#define VM_MAPSIZE			(BLCKSZ - MAXALIGN(SizeOfPageHeaderData))
#define VM_BLOCKS_PER_BYTE	(BITS_PER_BYTE / BITS_PER_HEAPBLOCK)
#define VM_BLOCKS_PER_PAGE	(VM_MAPSIZE * VM_BLOCKS_PER_BYTE)

/* Set flags for blkno on its (locked) map page; true if any was not set. */
static bool
map_set(Page map, BlockNumber blkno, uint8 flags)
{
	uint8	   *byte = (uint8 *) PageGetContents(map) +
		(blkno % VM_BLOCKS_PER_PAGE) / VM_BLOCKS_PER_BYTE;
	int			shift = (blkno % VM_BLOCKS_PER_BYTE) * BITS_PER_HEAPBLOCK;

	if ((*byte & (flags << shift)) == (flags << shift))
		return false;
	*byte |= (flags << shift);
	return true;
}

/*
 * The first change to virtual page pageno since its bit may have been set:
 * clear the bit (and log that) if it is.  Caller holds the page's lock
 * exclusively and has not changed the page yet.
 */
void
armdb_vm_clear(Relation rel, ArmdbRelKeydir *kd, ArmdbPage *page,
			   uint64 pageno)
{
	Buffer		vmbuf = InvalidBuffer;
	BlockNumber blkno = (BlockNumber) pageno;
	uint32		state;

	Assert(LWLockHeldByMeInMode(&page->lock, LW_EXCLUSIVE));
	if (!page->vm_maybe_set)
		return;
	state = pg_atomic_read_u32(&kd->vm_state);
	if (state == ARMDB_VM_UNKNOWN)
	{
		uint32		found = smgrexists(RelationGetSmgr(rel), VISIBILITYMAP_FORKNUM) ?
			ARMDB_VM_MAYBE : ARMDB_VM_NONE;

		state = ARMDB_VM_UNKNOWN;
		if (pg_atomic_compare_exchange_u32(&kd->vm_state, &state, found))
			state = found;
	}
	if (state == ARMDB_VM_NONE)
	{
		page->vm_maybe_set = false;
		return;
	}
	/* the map's size now, not as this backend last saw it */
	RelationGetSmgr(rel)->smgr_cached_nblocks[VISIBILITYMAP_FORKNUM] =
		InvalidBlockNumber;
	if (visibilitymap_get_status(rel, blkno, &vmbuf) != 0 &&
		visibilitymap_clear(rel, blkno, vmbuf, VISIBILITYMAP_VALID_BITS) &&
		RelationNeedsWAL(rel))
	{
		xl_armdb_vm xlrec;

		memset(&xlrec, 0, sizeof(xlrec));
		xlrec.rnode = rel->rd_node;
		xlrec.blkno = blkno;
		(void) armdb_wal_log_vm(XLOG_ARMDB_VM_CLEAR, &xlrec, InvalidBuffer);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	page->vm_maybe_set = false;
}

/*
 * Is virtual page pageno (locked by the caller) all-visible: every version
 * on it visible to every snapshot, and every empty slot one no index entry
 * can point at?  *cutoff gets the newest xmin on it.
 *
 * An empty slot is safe when VACUUM freed it (ARMDB_V2_FREED: its index
 * entries are gone) or its shard has not handed it out yet.  Any other
 * empty slot may still be the target of index entries: one the load found
 * empty (ARMDB_V2_ORPHAN, until VACUUM frees it), or one being filled
 * right now.
 *
 * The cutoff counts the xmins VACUUM froze in memory just now too: no WAL
 * record told a hot standby about those, and its older snapshots may not
 * see them (heap's freezing logs them, and its replay resolves that
 * conflict).  Only xmins older than frozen_before (relfrozenxid: frozen
 * through an XLOG_ARMDB_FREEZE record) are left out.
 */
bool
armdb_vm_page_all_visible(ArmdbRelKeydir *kd, ArmdbPage *page, uint64 pageno,
						  TransactionId oldest_xmin,
						  TransactionId frozen_before, TransactionId *cutoff)
{
	*cutoff = InvalidTransactionId;
	for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
	{
		ArmdbVersion *v = &page->v[i];
		uint64		slot = pageno * ARMDB_SLOTS_PER_PAGE + i;

		if (v->file_id == 0)
		{
			ArmdbShardRt *rt;

			if (v->infomask2 & ARMDB_V2_FREED)
				continue;
			rt = armdb_keydir_shard(kd, armdb_slot_shard(kd, slot));
			/* never handed out: next_slot only grows (keydir.h) */
			if (slot >= rt->next_slot)
				continue;
			return false;
		}
		if (armdb_version_satisfies_vacuum(v, oldest_xmin) != HEAPTUPLE_LIVE ||
			!(v->infomask & HEAP_XMIN_COMMITTED))
			return false;
		if ((v->infomask & HEAP_XMIN_FROZEN) != HEAP_XMIN_FROZEN &&
			!TransactionIdPrecedes(v->xmin, oldest_xmin))
			return false;
		if (TransactionIdIsNormal(v->xmin) &&
			!(TransactionIdIsNormal(frozen_before) &&
			  TransactionIdPrecedes(v->xmin, frozen_before)) &&
			(!TransactionIdIsValid(*cutoff) ||
			 TransactionIdFollows(v->xmin, *cutoff)))
			*cutoff = v->xmin;
	}
	return true;
}

/*
 * Set the all-visible bit of virtual page pageno, which the caller found
 * all-visible (cutoff: its newest xmin) under its lock, still held
 * exclusively.  vmbuf is the map's page for it, pinned beforehand
 * (visibilitymap_pin: it may read or extend the map).  Returns whether the
 * bit was newly set.
 */
void
armdb_vm_will_set(ArmdbRelKeydir *kd)
{
	pg_atomic_write_u32(&kd->vm_state, ARMDB_VM_MAYBE);
}

bool
armdb_vm_set(Relation rel, ArmdbPage *page, uint64 pageno,
			 TransactionId cutoff, Buffer vmbuf)
{
	Page		map = BufferGetPage(vmbuf);
	bool		changed;

	Assert(LWLockHeldByMeInMode(&page->lock, LW_EXCLUSIVE));
	LockBuffer(vmbuf, BUFFER_LOCK_EXCLUSIVE);
	START_CRIT_SECTION();
	changed = map_set(map, (BlockNumber) pageno, VISIBILITYMAP_ALL_VISIBLE);
	if (changed)
	{
		MarkBufferDirty(vmbuf);
		if (RelationNeedsWAL(rel))
		{
			xl_armdb_vm xlrec;

			memset(&xlrec, 0, sizeof(xlrec));
			xlrec.rnode = rel->rd_node;
			xlrec.blkno = (BlockNumber) pageno;
			xlrec.cutoff = cutoff;
			xlrec.flags = VISIBILITYMAP_ALL_VISIBLE;
			PageSetLSN(map, armdb_wal_log_vm(XLOG_ARMDB_VM_SET, &xlrec, vmbuf));
		}
	}
	END_CRIT_SECTION();
	LockBuffer(vmbuf, BUFFER_LOCK_UNLOCK);
	page->vm_maybe_set = true;
	return changed;
}

/* ----------------
 * Replay
 * ----------------
 */

/* XLOG_ARMDB_VM_SET, as heap_xlog_visible replays its map page */
void
armdb_vm_redo_set(XLogReaderState *record)
{
	xl_armdb_vm *xlrec = (xl_armdb_vm *) XLogRecGetData(record);
	Buffer		vmbuf;

	/* snapshots that may not see the page's newest version as visible */
	if (InHotStandby && TransactionIdIsValid(xlrec->cutoff))
		ResolveRecoveryConflictWithSnapshot(xlrec->cutoff, xlrec->rnode);

	if (XLogReadBufferForRedoExtended(record, 0, RBM_ZERO_ON_ERROR, false,
									  &vmbuf) == BLK_NEEDS_REDO)
	{
		Page		map = BufferGetPage(vmbuf);

		/* a page the map did not have yet reads as zeros */
		if (PageIsNew(map))
			PageInit(map, BLCKSZ, 0);
		(void) map_set(map, xlrec->blkno, xlrec->flags);
		PageSetLSN(map, record->EndRecPtr);
		MarkBufferDirty(vmbuf);
	}
	if (BufferIsValid(vmbuf))
		UnlockReleaseBuffer(vmbuf);
}

/* XLOG_ARMDB_VM_CLEAR, as heap's replay clears the bit of a changed page */
void
armdb_vm_redo_clear(XLogReaderState *record)
{
	xl_armdb_vm *xlrec = (xl_armdb_vm *) XLogRecGetData(record);
	Relation	reln = CreateFakeRelcacheEntry(xlrec->rnode);
	Buffer		vmbuf = InvalidBuffer;

	visibilitymap_pin(reln, xlrec->blkno, &vmbuf);
	visibilitymap_clear(reln, xlrec->blkno, vmbuf, VISIBILITYMAP_VALID_BITS);
	ReleaseBuffer(vmbuf);
	FreeFakeRelcacheEntry(reln);
}
