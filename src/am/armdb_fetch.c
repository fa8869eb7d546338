/*-------------------------------------------------------------------------
 *
 * armdb_fetch.c
 *	  Reading single versions of armdb tables: by TID, and the helpers every
 *	  scan uses to look a slot up and read its version.
 *
 * Fetching by TID (triggers, ANALYZE, TABLESAMPLE) reads one entry through
 * the version store: from the shard's write buffer under the shard lock if
 * it is still there, else with one aligned read of the file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/subtrans.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "storage/predicate.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/visibility.h"

/* ----------------
 * Building tuples
 * ----------------
 */

StaticAssertDecl(ARMDB_TUPLE_SHORTENED == offsetof(HeapTupleHeaderData, t_infomask2),
				 "a shortened tuple image starts at t_infomask2");
StaticAssertDecl(ARMDB_ENTRY_HEADER_SIZE % MAXIMUM_ALIGNOF == 0 &&
				 ARMDB_ENTRY_SHORT_HEADER_SIZE % MAXIMUM_ALIGNOF == 0,
				 "a whole image after either header is MAXALIGNed");

/*
 * The tuple image in the data file is a heap tuple as it was inserted; its
 * transaction fields (t_xmin, t_xmax, t_cid, t_ctid: a shortened image
 * leaves them out) are the version record's, filled in here so that
 * system columns (xmin, xmax, cmin, ctid) read right.  image is MAXALIGNed.
 */
void
armdb_fill_tuple(HeapTuple tuple, Relation rel, uint64 slot, char *image,
				 uint32 image_len, const ArmdbVersion *v,
				 const ArmdbVersionExtra *x)
{
	HeapTupleHeader td = (HeapTupleHeader) image;

	tuple->t_len = image_len;
	tuple->t_data = td;
	tuple->t_tableOid = RelationGetRelid(rel);
	armdb_slot_to_tid(slot, &tuple->t_self);

	td->t_infomask = (td->t_infomask & ~HEAP_XACT_MASK) |
		(v->infomask & HEAP_XACT_MASK);
	td->t_infomask2 = (td->t_infomask2 & HEAP_NATTS_MASK) |
		(v->infomask2 & HEAP2_XACT_MASK);
	HeapTupleHeaderSetXmin(td, v->xmin);
	HeapTupleHeaderSetXmax(td, v->xmax);
	td->t_choice.t_heap.t_field3.t_cid = x->cid;
	if (v->infomask2 & ARMDB_V2_SPECULATIVE)
		td->t_ctid = tuple->t_self;
	else if (x->ctid == ARMDB_CTID_MOVED)
		ItemPointerSetMovedPartitions(&td->t_ctid);
	else
		armdb_slot_to_tid(x->ctid, &td->t_ctid);
}

/*
 * The tuple image of the version entry read into entry (header first, len
 * bytes, MAXALIGNed), MAXALIGNed too, for armdb_fill_tuple(); *image_len is
 * its length.  A shortened image (ARMDB_GSN_FLAG_SHORT_TUPLE) is moved
 * into the header's bytes, after room for the fields it leaves out.
 */
char *
armdb_entry_tuple(char *entry, uint32 len, uint32 *image_len)
{
	uint64		gsn;
	uint32		hsize;
	uint32		value_len;
	char	   *image;

	memcpy(&gsn, entry + offsetof(ArmdbEntryHeader, gsn), sizeof(gsn));
	hsize = armdb_entry_header_size(gsn);
	/* the header's: a decrypted entry's value is shorter than its place */
	memcpy(&value_len, entry + offsetof(ArmdbEntryHeader, value_len),
		   sizeof(value_len));
	if ((gsn & ARMDB_GSN_FLAG_ENCRYPTED) || value_len > len - hsize)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg_internal("armdb: entry of %u bytes read undecrypted or with a value of %u bytes",
								 len, value_len)));
	if (ARMDB_TUPLE_OMITTED(gsn) == 0)
	{
		/* 48 and 32 are MAXALIGNed */
		*image_len = value_len;
		return entry + hsize;
	}
	/* the CRC matched, so only a bug could have written less */
	if (value_len < offsetof(HeapTupleHeaderData, t_bits) - ARMDB_TUPLE_SHORTENED)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg_internal("armdb: shortened tuple image of %u bytes is impossible",
								 value_len)));
	image = entry + TYPEALIGN_DOWN(MAXIMUM_ALIGNOF, hsize - ARMDB_TUPLE_OMITTED(gsn));
	memmove(image + ARMDB_TUPLE_OMITTED(gsn), entry + hsize, value_len);
	*image_len = value_len + ARMDB_TUPLE_OMITTED(gsn);
	return image;
}

/*
 * A buffer of at least len bytes in mcxt for tuple images: *buf is reused
 * while it is big enough, else replaced (*size tracks it).
 */
char *
armdb_reserve_buffer(char **buf, Size *size, Size len, MemoryContext mcxt)
{
	if (*size < len)
	{
		if (*buf)
			pfree(*buf);
		*size = Max(len, 8192);
		*buf = MemoryContextAllocHuge(mcxt, *size);
	}
	return *buf;
}

/*
 * Read the entry of version v (slot; a copy, with its values x) into buf
 * (x->len bytes), from the write buffer or the file, and check that it is
 * the entry of that slot.
 */
void
armdb_read_version(ArmdbRelKeydir *kd, uint64 slot, const ArmdbVersion *v,
				   const ArmdbVersionExtra *x, char *buf)
{
	ArmdbLocation loc = armdb_version_location(v, x);

	armdb_vstore_read(kd, slot, &loc, buf, armdb_store_settings());
}

/*
 * The entry fetched by TID last (armdb_fetch_row_version): an UPDATE reads
 * its old row again to compare indexed columns (armdb_update.c), right
 * after the executor fetched it.  Bytes at a location never change
 * (vstore.c), so a copy of them keyed by keydir, slot and location is good
 * for as long as it is kept.
 */
#define RECENT_ENTRY_MAX	(64 * 1024)

static struct
{
	uint64		generation;		/* the keydir's; 0: nothing kept */
	uint64		slot;
	ArmdbLocation loc;
	char	   *bytes;			/* RECENT_ENTRY_MAX, in TopMemoryContext */
} recent_entry;

static void
remember_entry(ArmdbRelKeydir *kd, uint64 slot, const ArmdbVersion *v,
			   const ArmdbVersionExtra *x, const char *entry)
{
	recent_entry.generation = 0;
	if (x->len > RECENT_ENTRY_MAX)
		return;
	if (recent_entry.bytes == NULL)
		recent_entry.bytes = MemoryContextAlloc(TopMemoryContext,
												RECENT_ENTRY_MAX);
	memcpy(recent_entry.bytes, entry, x->len);
	recent_entry.slot = slot;
	recent_entry.loc = armdb_version_location(v, x);
	recent_entry.generation = kd->generation;
}

/*
 * armdb_read_version(), served from the entry fetched by TID last when it
 * is v's; true if it was.
 */
bool
armdb_read_version_cached(ArmdbRelKeydir *kd, uint64 slot,
						  const ArmdbVersion *v, const ArmdbVersionExtra *x,
						  char *buf)
{
	if (recent_entry.generation == kd->generation && recent_entry.slot == slot &&
		recent_entry.loc.file_id == v->file_id &&
		recent_entry.loc.offset == v->offset && recent_entry.loc.len == x->len)
	{
		memcpy(buf, recent_entry.bytes, x->len);
		return true;
	}
	armdb_read_version(kd, slot, v, x, buf);
	return false;
}

/* The HOT chain root that the version entry of slot (its header) names. */
uint64
armdb_entry_root_slot(const char *entry, uint64 slot)
{
	ArmdbEntryHeader hdr;

	memcpy(&hdr, entry, offsetof(ArmdbEntryHeader, root_slot));
	if (armdb_entry_header_size(hdr.gsn) < ARMDB_ENTRY_HEADER_SIZE)
		return slot;			/* a short header: its own root */
	memcpy(&hdr.root_slot, entry + offsetof(ArmdbEntryHeader, root_slot),
		   sizeof(hdr.root_slot));
	return hdr.root_slot == ARMDB_INVALID_SLOT ? slot : hdr.root_slot;
}

/*
 * Look up slot: copy its record to *copy (all zeros, file_id 0, if the slot
 * holds nothing) and return whether it is a version visible to snapshot.
 */
bool
armdb_version_lookup(ArmdbRelKeydir *kd, uint64 slot, Snapshot snapshot,
					 ArmdbVersion *copy, ArmdbVersionExtra *xcopy)
{
	return armdb_version_lookup_ssi(NULL, kd, slot, snapshot, copy, xcopy);
}

/*
 * Is the version record v of slot, whose page lock the caller holds, a
 * version visible to snapshot?  With rel, a read that SSI must know of:
 * while the page's lock is held, as heap holds the buffer's share lock, the
 * version is checked for a conflict out and, when visible to an MVCC
 * snapshot, predicate-locked.  A writer checks for conflicts in while it
 * holds the page's lock exclusively (armdb_update.c), so either it sees our
 * SIREAD lock or we see its xmax; with the checks after the lock's release,
 * a DELETE between the two would go unseen by both.  Page lock first, then
 * the predicate lock manager's, as writers take them.  With rel NULL, no
 * SSI.
 */
bool
armdb_version_judge(Relation rel, ArmdbVersion *v, uint64 slot,
					Snapshot snapshot)
{
	bool		visible;

	if (v->file_id == 0)
		return false;
	visible = armdb_version_satisfies(v, slot, snapshot);
	if (rel != NULL)
	{
		if (visible && IsMVCCSnapshot(snapshot))
		{
			ItemPointerData tid;

			armdb_slot_to_tid(slot, &tid);
			PredicateLockTID(rel, &tid, snapshot, v->xmin);
		}
		armdb_check_serializable_out(rel, v, visible, snapshot);
	}
	return visible;
}

/* armdb_version_lookup(), judged by armdb_version_judge() with rel */
bool
armdb_version_lookup_ssi(Relation rel, ArmdbRelKeydir *kd, uint64 slot,
						 Snapshot snapshot, ArmdbVersion *copy,
						 ArmdbVersionExtra *xcopy)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	bool		visible;

	if (page == NULL)
	{
		memset(copy, 0, sizeof(*copy));
		if (xcopy != NULL)
		{
			xcopy->cid = FirstCommandId;
			xcopy->ctid = (uint32) slot;
			xcopy->len = 0;
		}
		return false;
	}
	LWLockAcquire(&page->lock, LW_SHARED);
	visible = armdb_version_judge(rel, &page->v[slot % ARMDB_SLOTS_PER_PAGE],
								  slot, snapshot);
	*copy = page->v[slot % ARMDB_SLOTS_PER_PAGE];
	if (xcopy != NULL)
		*xcopy = armdb_version_extra_values(&page->v[slot % ARMDB_SLOTS_PER_PAGE],
											slot);
	LWLockRelease(&page->lock);
	return visible;
}

/*
 * Read the tuple of a version found in the keydir into buf (x->len bytes)
 * and make *tuple describe it.
 */
void
armdb_read_version_tuple(Relation rel, ArmdbRelKeydir *kd, uint64 slotno,
						 const ArmdbVersion *v, const ArmdbVersionExtra *x,
						 char *buf, HeapTuple tuple)
{
	uint32		image_len;
	char	   *image;

	armdb_read_version(kd, slotno, v, x, buf);
	image = armdb_entry_tuple(buf, x->len, &image_len);
	armdb_fill_tuple(tuple, rel, slotno, image, image_len, v, x);
}

/* Is the version in slot dead to every snapshot vistest describes? */
bool
armdb_version_surely_dead(ArmdbRelKeydir *kd, uint64 slot,
						  GlobalVisState *vistest)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	bool		dead;

	if (page == NULL)
		return false;
	LWLockAcquire(&page->lock, LW_SHARED);
	dead = page->v[slot % ARMDB_SLOTS_PER_PAGE].file_id != 0 &&
		armdb_version_is_surely_dead(&page->v[slot % ARMDB_SLOTS_PER_PAGE],
									 vistest);
	LWLockRelease(&page->lock);
	return dead;
}

/*
 * HeapTupleSatisfiesVacuum of the version in slot; *xwait is the xid an
 * in-progress result is waiting for (inserter, or deleter/updater).
 */
HTSV_Result
armdb_version_htsv(ArmdbRelKeydir *kd, uint64 slot, TransactionId OldestXmin,
				   TransactionId *xwait)
{
	ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;
	HTSV_Result res;

	*xwait = InvalidTransactionId;
	if (page == NULL)
		return HEAPTUPLE_DEAD;
	LWLockAcquire(&page->lock, LW_SHARED);
	v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
	if (v->file_id == 0)
		res = HEAPTUPLE_DEAD;
	else
	{
		res = armdb_version_satisfies_vacuum(v, OldestXmin);
		if (res == HEAPTUPLE_INSERT_IN_PROGRESS)
			*xwait = v->xmin;
		else if (res == HEAPTUPLE_DELETE_IN_PROGRESS)
			*xwait = armdb_version_get_update_xid(v);
	}
	LWLockRelease(&page->lock);
	return res;
}

/*
 * HeapCheckForSerializableConflictOut() on a version record: a serializable
 * transaction reading (or skipping as invisible) a version that a
 * concurrent serializable transaction wrote or ended has a rw-conflict out
 * to it.  v may be a copy: the hint bits it gets are not kept.
 */
void
armdb_check_serializable_out(Relation rel, ArmdbVersion *v, bool visible,
							 Snapshot snapshot)
{
	TransactionId xid;

	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;

	switch (armdb_version_satisfies_vacuum(v, TransactionXmin))
	{
		case HEAPTUPLE_LIVE:
			if (visible)
				return;
			xid = v->xmin;
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			xid = visible ? armdb_version_get_update_xid(v) : v->xmin;
			if (TransactionIdPrecedes(xid, TransactionXmin))
				return;			/* like the DEAD case */
			break;
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			xid = v->xmin;
			break;
		case HEAPTUPLE_DEAD:
		default:
			return;
	}

	/* the top-level xid; not too old to conflict, and not our own */
	if (TransactionIdEquals(xid, GetTopTransactionIdIfAny()))
		return;
	xid = SubTransGetTopmostTransaction(xid);
	if (TransactionIdPrecedes(xid, TransactionXmin))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

/* ----------------
 * Single versions by TID
 * ----------------
 */
bool
armdb_slot_of_tid(ArmdbRelKeydir *kd, ItemPointer tid, uint64 *slot)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off < 1 || off > ARMDB_SLOTS_PER_PAGE)
		return false;
	*slot = armdb_tid_to_slot(tid);
	return *slot / ARMDB_SLOTS_PER_PAGE < pg_atomic_read_u64(&kd->npages);
}

bool
armdb_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
						TupleTableSlot *slot)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion v;
	ArmdbVersionExtra x;
	uint64		slotno;
	char	   *buf;
	char	   *image;
	uint32		image_len;
	HeapTuple	tuple;

	if (!armdb_slot_of_tid(kd, tid, &slotno))
		return false;
	if (!armdb_version_lookup_ssi(rel, kd, slotno, snapshot, &v, &x))
		return false;

	/*
	 * The slot owns the tuple: one palloc'd block, header and entry, the
	 * image where armdb_entry_tuple() leaves it (freeing the slot's tuple
	 * frees the block).
	 */
	buf = palloc(HEAPTUPLESIZE + x.len);
	tuple = (HeapTuple) buf;
	/* a row fetched again (the old row an UPDATE logs for decoding) */
	if (!armdb_read_version_cached(kd, slotno, &v, &x, buf + HEAPTUPLESIZE))
		remember_entry(kd, slotno, &v, &x, buf + HEAPTUPLESIZE);
	image = armdb_entry_tuple(buf + HEAPTUPLESIZE, x.len, &image_len);
	armdb_fill_tuple(tuple, rel, slotno, image, image_len, &v, &x);
	ExecStoreHeapTuple(tuple, slot, true);
	return true;
}

bool
armdb_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	uint64		slot;

	return armdb_slot_of_tid(armdb_rel_keydir(scan->rs_rd), tid, &slot);
}

/*
 * heap_get_latest_tid(): follow the update chain from tid and return the
 * newest version the scan's snapshot sees (WHERE CURRENT OF, currtid).
 */
void
armdb_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(sscan->rs_rd);
	Snapshot	snapshot = sscan->rs_snapshot;
	ItemPointerData ctid = *tid;
	TransactionId prior_xmax = InvalidTransactionId;

	for (;;)
	{
		uint64		slot;
		ArmdbVersion v;
		ArmdbVersionExtra x;
		bool		visible;

		if (!armdb_slot_of_tid(kd, &ctid, &slot))
			break;
		visible = armdb_version_lookup(kd, slot, snapshot, &v, &x);
		if (v.file_id == 0)
			break;
		/* a broken chain: the slot holds something else now */
		if (TransactionIdIsValid(prior_xmax) &&
			!TransactionIdEquals(prior_xmax, v.xmin))
			break;
		if (visible)
			*tid = ctid;
		if ((v.infomask & HEAP_XMAX_INVALID) ||
			armdb_version_is_only_locked(&v) ||
			x.ctid == ARMDB_CTID_MOVED ||
			(!armdb_version_is_speculative(&v) && x.ctid == (uint32) slot))
			break;
		armdb_slot_to_tid(x.ctid, &ctid);
		prior_xmax = armdb_version_get_update_xid(&v);
	}
}

bool
armdb_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
							   Snapshot snapshot)
{
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	ArmdbVersion v;
	uint64		slotno;

	if (!armdb_slot_of_tid(kd, &slot->tts_tid, &slotno))
		return false;
	return armdb_version_lookup(kd, slotno, snapshot, &v, NULL);
}
