/*-------------------------------------------------------------------------
 *
 * keydir.h
 *	  The key directory: for every armdb relation, in shared memory, the
 *	  version record of every row slot, and the runtime state of its shards.
 *
 * A relation's keydir is found through a dshash table keyed by its
 * RelFileNodeBackend (relfilenode, not relation OID: TRUNCATE and rewrites
 * give a relation new storage, and a new, empty keydir).  Everything lives
 * in the DSA area limited by armdb.memory (armdb.h).
 *
 * Slots and TIDs (design §2).  A version's slot is its key; its TID is
 * (slot / ARMDB_SLOTS_PER_PAGE, slot % ARMDB_SLOTS_PER_PAGE + 1).  The 291
 * slots of one block number form a *virtual page*: an array of version
 * records with one LWLock, the stand-in for a heap buffer's content lock.
 *
 * Block numbers are dense, whatever the number of shards and writers.  A
 * page belongs to one shard, which writes every version of its slots: a
 * shard claims a run of consecutive pages from the relation's next page
 * (1 page at first, twice as many each time after, up to
 * ARMDB_RESERVE_PAGES) and hands their slots out in order, so that a
 * single writer fills pages 0, 1, 2, ... and two writers interleave runs.
 * The run is recorded in the shard's files by a reservation entry
 * (format.h) made durable before any of its slots is used, and the page
 * directory keeps each claimed page's shard (ArmdbPageChunk.owner); the
 * load rebuilds both from the reservations and the versions found.
 * Storage written before runs existed numbered page p of shard p % nshards,
 * and a page no run names still belongs to that shard.
 *
 * Version records mirror the fields of a heap tuple header that concurrency
 * needs (design §3): xmin, xmax, the command id (cmin/cmax or a combo id),
 * heap's t_infomask bits and t_infomask2 flag bits (HEAP_HOT_UPDATED and
 * HEAP_ONLY_TUPLE included: HOT chains, armdb_hot.c), and ctid, the slot of
 * the newer version.  The row image itself is in the data files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_KEYDIR_H
#define ARMDB_KEYDIR_H

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xlogdefs.h"
#include "lib/dshash.h"
#include "port/atomics.h"
#include "storage/itemptr.h"
#include "storage/lwlock.h"
#include "storage/relfilenode.h"
#include "utils/dsa.h"

#include "storage/shard.h"

struct ArmdbMerge;
struct ArmdbMergeMove;

/* the most pages a shard claims and reserves at a time (vstore.c) */
#define ARMDB_RESERVE_PAGES		128

/* slots per virtual page: MaxHeapTuplesPerPage, so TIDs stay heap-valid */
#define ARMDB_SLOTS_PER_PAGE	291

/*
 * virtual pages per directory chunk, and chunks per relation (the directory
 * grows to what the relation uses: a small table's costs some 1.5 kB)
 */
#define ARMDB_PAGES_PER_CHUNK	128
#define ARMDB_MAX_CHUNKS		32768
#define ARMDB_MAX_SLOTS \
	((uint64) ARMDB_SLOTS_PER_PAGE * ARMDB_PAGES_PER_CHUNK * ARMDB_MAX_CHUNKS)

/*
 * infomask2 bits of heap that are not flags hold the attribute count there;
 * a version record has no attribute count, so its low bits are armdb's.
 */
#define ARMDB_V2_SPECULATIVE	0x0001	/* speculative insertion; ctid holds
										 * the token */
#define ARMDB_V2_KEYS_UNKNOWN	0x0002	/* an update that has not yet compared
										 * its key columns: HEAP_KEYS_UPDATED
										 * is set, and may be cleared once
										 * somebody needs to know
										 * (armdb_update.c) */
#define ARMDB_V2_FREED			0x0004	/* an empty slot VACUUM freed: no
										 * index entry points at it
										 * (armdb_vm.c) */
#define ARMDB_V2_ORPHAN			0x0008	/* an empty slot the load found
										 * below its shard's frontier: its
										 * version's insert aborted or its
										 * end committed before the
										 * restart, or it was reserved and
										 * never used; or a redirect VACUUM
										 * found its HOT chain all dead
										 * (armdb_vacuum.c); index entries
										 * may point at it until VACUUM
										 * removes them and frees it */
#define ARMDB_V2_REDIRECT		0x0010	/* no version: the root of a HOT
										 * chain whose first versions
										 * VACUUM removed; its ctid (kept
										 * in offset, which a slot with no
										 * version does not use) is the
										 * slot of the chain's first
										 * version left (heap's
										 * LP_REDIRECT, armdb_hot.c) */

/*
 * The settings the key directory and the version store (src/vstore/) work
 * with.  armdb.c builds them from its GUCs (armdb_store_settings()); these
 * layers read no GUC themselves, so that a background worker or WAL redo
 * can call them with settings of its own.
 */
typedef struct ArmdbStoreSettings
{
	uint32		max_file_size;	/* bytes: rotate data files before an
								 * append would pass it */
	bool		direct_io;		/* ask for O_DIRECT */
	bool		cached_reads;	/* point reads through the OS page cache */
	uint32		write_buffer_size;	/* bytes, of a shard's write buffer */
	int			write_buffer_idle_ms;	/* an idle shard's buffer is freed
										 * after this long; 0: never */
	int			memory_mb;		/* armdb.memory, for messages */
	bool		skip_damaged_entries;	/* salvage damaged files on load */
	bool		hints_by_worker;	/* the compaction worker builds the hint
									 * files of sealed data files; else the
									 * backend that sealed one does */
	uint32		first_page;		/* test only: claim no page below it */
} ArmdbStoreSettings;

typedef struct ArmdbVersion
{
	uint32		file_id;		/* 0: the slot holds no version */
	uint32		offset;			/* entry location in the shard's file; a
								 * redirect's target slot (file_id 0) */
	TransactionId xmin;
	TransactionId xmax;			/* deleter, updater, locker, or a MultiXact */
	uint16		short_len;		/* whole entry, header included, if below
								 * ARMDB_LONG_ENTRY; else the side array
								 * has it (armdb_version_len()) */
	uint16		infomask;		/* heap's t_infomask bits */
	uint16		infomask2;		/* heap's t_infomask2 flags, ARMDB_V2_* */
} pg_attribute_packed() ArmdbVersion;

StaticAssertDecl(sizeof(ArmdbVersion) == 22, "version record is 22 bytes");

/* ArmdbVersion.short_len of an entry of this length or longer */
#define ARMDB_LONG_ENTRY	PG_UINT16_MAX

/*
 * What a version record keeps beside it, in its page's side array
 * (ArmdbPage.extra): the command id (cmin, cmax or combo id); ctid, the
 * slot of the newer version (its own slot if none; the speculative
 * insertion token if ARMDB_V2_SPECULATIVE); and the length of an entry of
 * 64 kB or more.  Most records never need any of them: a version's command
 * id is read only by the transaction that wrote it, a live version has no
 * newer one, and rows are short.  So a page has no side array until one
 * of its slots needs a command id other than FirstCommandId, a ctid other
 * than its own slot, or a long length; until then, those are the values
 * (armdb_version_cid(), armdb_version_ctid(), armdb_version_len()), and
 * the page costs 22 bytes a slot, not the 34 of all fields.  VACUUM frees
 * a side array no slot needs any more (armdb_page_release_extra()).
 *
 * A copy of a record taken under the page's lock carries these values
 * beside it (armdb_version_extra_values()): the accessors below find the
 * side array from the record's address, so they work on the record in its
 * page only.
 */
typedef struct ArmdbVersionExtra
{
	CommandId	cid;
	uint32		ctid;
	uint32		len;			/* a copy's: always its whole length */
} ArmdbVersionExtra;

/* A slot holding no version but the redirect of a HOT chain's root? */
static inline bool
armdb_version_is_redirect(const ArmdbVersion *v)
{
	return v->file_id == 0 && (v->infomask2 & ARMDB_V2_REDIRECT) != 0;
}

/* The xmin of the version a redirect names; invalid: not known. */
static inline TransactionId
armdb_redirect_xmin(const ArmdbVersion *v)
{
	return v->xmin;
}

/*
 * The infomask bits that say who holds an xmax and how, hint bits aside:
 * what a row lock entry records of it (format.h, ARMDB_GSN_FLAG_LOCK).
 */
#define ARMDB_LOCK_XMAX_BITS	(HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK | \
								 HEAP_XMAX_LOCK_ONLY)

/*
 * ctid of a version that an UPDATE moved to another partition (heap:
 * ItemPointerSetMovedPartitions); no slot has this number.
 */
#define ARMDB_CTID_MOVED		PG_UINT32_MAX
StaticAssertDecl(ARMDB_MAX_SLOTS < PG_UINT32_MAX, "slots fit in 32 bits");

/* ArmdbRelKeydir.vm_state */
#define ARMDB_VM_UNKNOWN	0	/* not looked at since the keydir was made */
#define ARMDB_VM_NONE		1	/* the relation has no visibility map */
#define ARMDB_VM_MAYBE		2	/* it has one, or VACUUM is making one */

typedef struct ArmdbPage
{
	LWLock		lock;			/* like a heap buffer's content lock */
	dsa_pointer extra;			/* ArmdbVersionExtra[ARMDB_SLOTS_PER_PAGE],
								 * or none yet (ArmdbVersionExtra); set and
								 * changed under lock, exclusively */
	ArmdbVersion v[ARMDB_SLOTS_PER_PAGE];
	bool		vm_maybe_set;	/* the visibility map may hold the page's
								 * bit (armdb_vm.c; under lock) */
	bool		in_block;		/* part of an ArmdbPageBlock, not an
								 * allocation of its own */
} ArmdbPage;

/*
 * A version record's page, from the record and its slot: v must be the
 * record in its page, not a copy of it.
 */
static inline ArmdbPage *
armdb_version_page(const ArmdbVersion *v, uint64 slot)
{
	return (ArmdbPage *) ((char *) (v - slot % ARMDB_SLOTS_PER_PAGE) -
						  offsetof(ArmdbPage, v));
}

extern dsa_area *armdb_keydir_area(void);

/* The side array entry of slot's record v, or NULL if its page has none. */
static inline ArmdbVersionExtra *
armdb_version_extra(const ArmdbVersion *v, uint64 slot)
{
	ArmdbPage  *page = armdb_version_page(v, slot);

	if (!DsaPointerIsValid(page->extra))
		return NULL;
	return (ArmdbVersionExtra *) dsa_get_address(armdb_keydir_area(),
												 page->extra) +
		slot % ARMDB_SLOTS_PER_PAGE;
}

/* The command id of slot's record v (its page's lock held). */
static inline CommandId
armdb_version_cid(const ArmdbVersion *v, uint64 slot)
{
	ArmdbVersionExtra *x = armdb_version_extra(v, slot);

	return x != NULL ? x->cid : FirstCommandId;
}

/* The length of the entry of slot's record v (its page's lock held) */
static inline uint32
armdb_version_len(const ArmdbVersion *v, uint64 slot)
{
	ArmdbVersionExtra *x;

	if (v->short_len != ARMDB_LONG_ENTRY)
		return v->short_len;
	x = armdb_version_extra(v, slot);
	Assert(x != NULL);
	return x->len;
}

/*
 * The ctid of slot's record v (its page's lock held): the newer version's
 * slot, its own if none, a speculative insertion's token, or a redirect's
 * target.
 */
static inline uint32
armdb_version_ctid(const ArmdbVersion *v, uint64 slot)
{
	ArmdbVersionExtra *x;

	if (v->file_id == 0 && (v->infomask2 & ARMDB_V2_REDIRECT))
		return v->offset;
	x = armdb_version_extra(v, slot);
	return x != NULL ? x->ctid : (uint32) slot;
}

/* Both, as values: what a copy of the record needs beside it */
static inline ArmdbVersionExtra
armdb_version_extra_values(const ArmdbVersion *v, uint64 slot)
{
	ArmdbVersionExtra x;

	x.cid = armdb_version_cid(v, slot);
	x.ctid = armdb_version_ctid(v, slot);
	x.len = v->file_id != 0 ? armdb_version_len(v, slot) : 0;
	return x;
}

/* The location of the entry of a copy of a record, v, with its values x */
static inline ArmdbLocation
armdb_version_location(const ArmdbVersion *v, const ArmdbVersionExtra *x)
{
	ArmdbLocation loc;

	loc.file_id = v->file_id;
	loc.offset = v->offset;
	loc.len = x->len;
	return loc;
}

/*
 * Set the command id or the ctid of slot's record v, its page's lock held
 * exclusively.  A value other than the default gives the page its side
 * array if it has none yet: an ERROR if memory is full, so outside a
 * critical section unless armdb_page_prepare_extra() made it beforehand.
 * settings, for that ERROR's hint, may be NULL when the value is the
 * default or the side array is known to be there.
 */
extern void armdb_version_set_cid(ArmdbVersion *v, uint64 slot, CommandId cid,
								  const ArmdbStoreSettings *settings);
extern void armdb_version_set_ctid(ArmdbVersion *v, uint64 slot, uint32 ctid,
								   const ArmdbStoreSettings *settings);
extern void armdb_version_set_len(ArmdbVersion *v, uint64 slot, uint32 len,
								  const ArmdbStoreSettings *settings);
extern void armdb_page_prepare_extra(ArmdbPage *page, uint64 pageno,
									 const ArmdbStoreSettings *settings);
extern void armdb_page_prepare_extra_unlocked(ArmdbPage *page, uint64 pageno,
											  const ArmdbStoreSettings *settings);
/* Free page's side array if no slot needs it any more */
extern void armdb_page_release_extra(ArmdbPage *page, uint64 pageno);

/* Make slot's record v a redirect to target (armdb_hot.c) */
static inline void
armdb_version_set_redirect(ArmdbVersion *v, uint32 target)
{
	v->file_id = 0;
	v->infomask2 = ARMDB_V2_REDIRECT;
	v->offset = target;
}

/* Empty slot's record v, and its side array entry (its page's lock held) */
extern void armdb_version_clear(ArmdbVersion *v, uint64 slot);

/*
 * Pages past a table's first few are carved out of blocks of
 * ARMDB_PAGES_PER_BLOCK: DSA gives an allocation larger than 8 kB whole 4 kB
 * pages, and 7 pages (6,432 bytes each) in one allocation take 44 kB, 24
 * bytes more than they need.  A block is freed with its keydir.
 */
#define ARMDB_PAGES_PER_BLOCK	7

typedef struct ArmdbPageBlock
{
	dsa_pointer next;			/* the block allocated before it */
	ArmdbPage	pages[ARMDB_PAGES_PER_BLOCK];
} ArmdbPageBlock;

StaticAssertDecl(sizeof(ArmdbPageBlock) <= 11 * 4096,
				 "a block of pages fits the 44 kB it is given");

/* A shard's shared runtime state. */
typedef struct ArmdbShardRt
{
	LWLock		lock;			/* append, write-out, buffered reads */
	LWLock		flush_lock;		/* elects one fdatasync for a group */
	uint64		next_slot;		/* the next new slot it hands out: slots
								 * below were handed out, or abandoned (only
								 * grows) */
	uint64		run_end;		/* end of its current run of pages (a
								 * slot): next_slot up to it is durably
								 * reserved */
	uint32		run_pages;		/* pages of the run it claimed last */
	uint64		pending_first;	/* a run claimed but not yet durably
								 * reserved (its reservation failed): the
								 * next attempt retries it */
	uint32		pending_pages;	/* 0: none */
	bool		pending_appended;	/* its reservation entry is appended */
	dsa_pointer buf_dp;			/* write buffer, allocated on first append:
								 * ARMDB_MIN_BUFFER_SIZE, doubled as the
								 * shard's appends need, up to buf_max */
	uint32		buf_max;		/* armdb.write_buffer_size when allocated */
	bool		buf_released;	/* taken away while idle, the shard's state
								 * kept: the next use restores it */
	ArmdbPos	idle_pos;		/* the shard's end when last looked at ... */
	int64		idle_since;		/* ... and since when (TimestampTz) */
	XLogRecPtr	wal_lsn;		/* WAL to flush before entries in the buffer
								 * reach the file (vstore_commit.c) */
	/* slots VACUUM freed (index entries gone): reused before new ones */
	dsa_pointer free_slots;		/* uint32[free_cap] */
	uint32		nfree;
	uint32		free_cap;
	pg_atomic_uint64 dead_bytes;	/* bytes of entries no longer needed,
									 * for compaction */
	/* the shard's data files (keydir/files.h), under lock */
	dsa_pointer files;			/* ArmdbFileStat[files_cap] */
	uint32		nfiles;
	uint32		files_cap;
	uint32		files_upto;		/* highest number ever listed: files above
								 * it were started since (rotations) */
	uint32		swapped_manifest;	/* the last merge whose locations moved
									 * (compact.c): its manifest, while it
									 * exists, only waits for its finish */
	bool		damaged;		/* a data file has damaged bytes between its
								 * entries, skipped when the table was
								 * salvaged (armdb.skip_damaged_entries):
								 * sequential scans step over them */
	ArmdbShardState st;
} ArmdbShardRt;

typedef struct ArmdbRelKey
{
	Oid			dbNode;
	Oid			relNode;
	int			backend;		/* InvalidBackendId, or a temp table's owner */
} ArmdbRelKey;

typedef struct ArmdbRelKeydir
{
	ArmdbRelKey key;			/* dshash key: must be first */
	uint64		generation;		/* unique per keydir ever created */
	uint32		nshards;
	bool		encrypted;		/* its versions' values are (cipher.h) */
	bool		old_keys_merged;	/* compaction found no file left that it
									 * could re-encrypt under the current key
									 * (keys change only with a restart, and
									 * new files take the current one) */
	/* its meta file's storage id, part of its files' keys (cipher.h) */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	bool		loaded;			/* recovered from the files */
	bool		standby;		/* loaded during recovery (hot standby):
								 * replay keeps its versions current, but its
								 * shards are for reading only until the
								 * first use after promotion rebuilds them */
	bool		stale;			/* replay could not keep it current (no
								 * memory): no new reader may use it */
	Oid			relid;			/* the relation's OID, as its users know it
								 * (a hot standby's replay conflicts with
								 * the sessions that lock it) */
	LWLock		lock;			/* loading; allocating page chunks */
	pg_atomic_uint64 next_gsn;
	pg_atomic_uint64 npages;	/* virtual pages that may hold versions */
	uint64		next_page;		/* pages below were claimed by shards (under
								 * lock) */
	pg_atomic_uint64 nallocated;	/* ... of which allocated (the others
									 * belong to shards that never got
									 * that far) */
	pg_atomic_uint64 nversions; /* versions stored (for size estimates) */
	pg_atomic_uint32 vacuum_pruning;	/* VACUUM is pruning HOT chains:
										 * readers do not (armdb_vacuum.c) */
	pg_atomic_uint32 vm_state;	/* ARMDB_VM_*: may the relation's
								 * visibility map hold bits? (armdb_vm.c) */
	bool		damage_seen;	/* a read found a damaged entry: no image
								 * of this keydir is saved (image.c) */
	pg_atomic_uint64 last_used;	/* TimestampTz: a session's statement
								 * last used it (to the second) */
	pg_atomic_uint64 newest_writer; /* FullTransactionId: the newest that
									 * wrote an entry of its files (the
									 * load's too): giving it back waits
									 * until every snapshot sees that
									 * one's outcome */
	TransactionId orphan_horizon;	/* the newest transaction whose end
									 * of a version the load dropped,
									 * leaving an ARMDB_V2_ORPHAN slot (a
									 * hot standby may still have it) */
	dsa_pointer shards;			/* ArmdbShardRt[nshards] */
	dsa_pointer chunks;			/* ArmdbPageDir; replaced by a larger one
								 * under lock, read without */
	dsa_pointer blocks;			/* the newest ArmdbPageBlock (under lock) */
	uint32		block_used;		/* ... and how many of its pages are used */
} ArmdbRelKeydir;

/*
 * The page directory: a pointer per chunk of ARMDB_PAGES_PER_CHUNK pages.
 * It starts small and is replaced by one twice as large when a page past
 * it is needed; readers that still hold the old one see the same chunks,
 * so it is freed with the keydir (retired).
 */
typedef struct ArmdbPageDir
{
	uint32		nchunks;		/* entries in chunk[] */
	dsa_pointer retired;		/* the directory this one replaced */
	dsa_pointer chunk[FLEXIBLE_ARRAY_MEMBER];	/* -> ArmdbPageChunk */
} ArmdbPageDir;

#define ARMDB_PAGE_DIR_MIN		4	/* chunks a new directory holds */

/*
 * ARMDB_PAGES_PER_CHUNK pages of the page directory: their pointers, and the
 * shard each belongs to, plus one (0: no run names the page).
 */
typedef struct ArmdbPageChunk
{
	dsa_pointer pages[ARMDB_PAGES_PER_CHUNK];
	uint16		owner[ARMDB_PAGES_PER_CHUNK];
} ArmdbPageChunk;

/* ----------------
 * keydir.c
 * ----------------
 */
extern void armdb_keydir_shmem_init(dsa_area *area);
extern void armdb_rel_key(ArmdbRelKey *key, RelFileNodeBackend rnode);

/*
 * The keydir of a relation's storage, recovered from its files on first
 * use.  The caller holds a lock on the relation, which keeps the keydir
 * from being dropped underneath it.
 */
extern ArmdbRelKeydir *armdb_keydir_get(RelFileNodeBackend rnode, Oid relid,
										const ArmdbStoreSettings *settings);

/*
 * The keydir if it exists in shared memory, without loading anything.  The
 * caller must hold a lock on the relation (or know that nothing can drop
 * the keydir meanwhile): a drop frees it.
 */
extern ArmdbRelKeydir *armdb_keydir_find(const ArmdbRelKey *key,
										 uint64 generation);

/*
 * ... for a caller holding no lock on the relation (a backend writing out
 * its buffers as it exits): the keydir's hash partition stays locked, in
 * share mode, until armdb_keydir_unpin(), and a drop waits for that.  Take
 * no other keydir meanwhile.
 */
extern ArmdbRelKeydir *armdb_keydir_find_pinned(const ArmdbRelKey *key,
												uint64 generation);
extern void armdb_keydir_unpin(ArmdbRelKeydir *kd);

/*
 * Replay (armdb_wal.c) on a hot standby: the keydir of rnode, created empty
 * if need be, with its lock held exclusively, so that no reader loads it
 * while replay changes the files; NULL when no reader can be running
 * (not a hot standby).  armdb_keydir_redo_apply() keeps a loaded one
 * current; armdb_keydir_redo_release() lets go.
 */
extern ArmdbRelKeydir *armdb_keydir_redo_acquire(RelFileNodeBackend rnode);
extern void armdb_keydir_redo_release(ArmdbRelKeydir *kd);
extern void armdb_keydir_redo_append(ArmdbRelKeydir *kd, uint32 shard,
									 uint32 file_id, uint32 offset,
									 const char *entries, uint32 len);
extern void armdb_keydir_redo_prune(ArmdbRelKeydir *kd, const uint64 *slots,
									uint32 nslots);
extern void armdb_keydir_redo_freeze(ArmdbRelKeydir *kd, TransactionId cutoff);
extern void armdb_keydir_redo_merge(ArmdbRelKeydir *kd, uint32 shard,
									const struct ArmdbMerge *m);

/*
 * A merge copied mv's entry: if it is still the version of its slot, the
 * version is now at the copy (under the page lock).  False if VACUUM freed
 * the version meanwhile.
 */
extern bool armdb_keydir_move_version(ArmdbRelKeydir *kd,
									  const struct ArmdbMergeMove *mv);

/*
 * Give back the keydirs of small tables (fewer than ARMDB_EVICT_MAX_PAGES
 * pages) that no session used for idle_ms (the flusher, about once a
 * second; not during recovery).  settle(kd, arg) is first called for each
 * of them to write out and sync what its shards hold.  Returns how many
 * it gave back.
 */
#define ARMDB_EVICT_MAX_PAGES	32
/* Keydir uses by this process count as use (not armdb's own workers'). */
extern bool armdb_keydir_use_counts;

/* An entry of fxid was appended to kd (the version store). */
static inline void
armdb_keydir_note_writer(ArmdbRelKeydir *kd, FullTransactionId fxid)
{
	uint64		x = U64FromFullTransactionId(fxid);
	uint64		cur = pg_atomic_read_u64(&kd->newest_writer);

	while (x > cur &&
		   !pg_atomic_compare_exchange_u64(&kd->newest_writer, &cur, x))
		;
}

extern int	armdb_keydir_evict_idle(int64 now, int idle_ms,
									void (*settle) (ArmdbRelKeydir *kd,
													 void *arg),
									void *arg);

/* Forget a keydir (storage dropped or replaced); frees all its memory. */
extern void armdb_keydir_drop(RelFileNodeBackend rnode);

/* Drop every keydir of a dropped database. */
extern void armdb_keydir_drop_database(Oid db);

/* Drop every keydir of temporary relations owned by this backend. */
extern void armdb_keydir_drop_backend_temp(void);

extern ArmdbShardRt *armdb_keydir_shard(ArmdbRelKeydir *kd, uint32 shard);

/* The virtual page pageno, or NULL if it was never allocated. */
extern ArmdbPage *armdb_keydir_page(ArmdbRelKeydir *kd, uint64 pageno);

/* The virtual page of slot, allocated if needed (ERROR when memory is full). */
extern ArmdbPage *armdb_keydir_page_for_slot(ArmdbRelKeydir *kd, uint64 slot,
											 const ArmdbStoreSettings *settings);

/* The shard virtual page pageno belongs to. */
extern uint32 armdb_page_shard(ArmdbRelKeydir *kd, uint64 pageno);

/*
 * Claim the next npages pages of the relation for shard (vstore.c, which
 * then reserves them durably); returns the first.  ERROR when memory is
 * full.  Caller holds the shard's lock exclusively.
 */
extern uint64 armdb_keydir_claim_pages(ArmdbRelKeydir *kd, uint32 shard,
									   uint32 npages,
									   const ArmdbStoreSettings *settings);

/*
 * Hand slot (of this shard, index entries gone) out again; caller holds the
 * shard lock exclusively.  Returns false if there is no memory to remember
 * it (the slot is then simply not reused).
 */
extern bool armdb_keydir_free_slot(ArmdbShardRt *rt, uint64 slot);

/* Close descriptors of keydirs dropped since the last call (xact end). */
extern void armdb_keydir_close_dropped_files(void);

/*
 * Write buffer of a shard, allocated on first use, and again after an idle
 * spell took it away (its partial last block read back from the file).
 * Caller holds the shard's lock exclusively.
 */
extern void armdb_keydir_shard_buffer(ArmdbRelKeydir *kd, ArmdbShardRt *rt,
									  const ArmdbStoreSettings *settings);

/*
 * Take the write buffers away from the shards of kd that appended nothing
 * for idle_ms and have everything in their files (the flusher, every
 * round); a shard busy now keeps its buffer.  Returns the bytes freed.
 */
extern int64 armdb_keydir_release_idle_buffers(ArmdbRelKeydir *kd,
											   int64 now, int idle_ms);

/*
 * This process's descriptors for a shard's files.  Their write barrier is
 * the caller's to set (the version store's, vstore_commit.c); a keydir
 * being loaded has nothing to flush first.
 */
extern ArmdbShardFiles *armdb_keydir_shard_files(ArmdbRelKeydir *kd,
												 uint32 shard,
												 const ArmdbStoreSettings *settings);

extern void armdb_keydir_report_full(const char *what,
									 const ArmdbStoreSettings *settings) pg_attribute_noreturn();

/* What has a keydir, for the compaction workers (palloc'd arrays). */
extern Oid *armdb_keydir_databases(int *ndbs,
								   bool (*filter) (ArmdbRelKeydir *kd, void *arg),
								   void *arg);
extern Oid *armdb_keydir_relnodes(Oid db, int *nrels);

/*
 * Call fn for every loaded keydir of a permanent or unlogged relation (the
 * flusher).  fn runs with the keydir's hash partition locked in share mode,
 * which keeps the keydir from being dropped meanwhile: it must not create
 * keydirs.
 */
extern void armdb_keydir_foreach_loaded(void (*fn) (ArmdbRelKeydir *kd,
													void *arg),
										void *arg);

/* ... and for every keydir, loaded or not (statistics) */
extern void armdb_keydir_foreach(void (*fn) (ArmdbRelKeydir *kd, void *arg),
								 void *arg);

/*
 * The shared memory a keydir occupies, as the DSA area counts it (each
 * allocation rounded up as DSA rounds it).
 */
typedef struct ArmdbKeydirMemory
{
	int64		pages;			/* virtual pages allocated */
	int64		versions;		/* version records stored */
	int64		page_bytes;		/* the pages: their version records */
	int64		buffer_bytes;	/* its shards' write buffers */
	int64		other_bytes;	/* the keydir itself, its shards' states,
								 * file and free-slot lists, and its page
								 * directory */
} ArmdbKeydirMemory;

extern void armdb_keydir_memory(ArmdbRelKeydir *kd, ArmdbKeydirMemory *mem);

/* ... all of it */
extern int64 armdb_keydir_bytes(ArmdbRelKeydir *kd);

/*
 * What an allocation of size bytes takes of the area, as DSA rounds it, and
 * what one page takes (its share of its block, for a page in one).
 */
extern int64 armdb_keydir_alloc_cost(Size size);
extern int64 armdb_keydir_page_cost(const ArmdbPage *page);

/* ... and of every keydir, with their number */
extern int64 armdb_keydir_total_bytes(int64 *nkeydirs);

/*
 * The storage kd belongs to, as relstorage.c names its directories (the
 * tablespace is no part of the name, nor of the key).
 */
static inline RelFileNodeBackend
armdb_keydir_rnode(const ArmdbRelKeydir *kd)
{
	RelFileNodeBackend rnode;

	rnode.node.spcNode = InvalidOid;
	rnode.node.dbNode = kd->key.dbNode;
	rnode.node.relNode = kd->key.relNode;
	rnode.backend = kd->key.backend;
	return rnode;
}

/* The shard a slot belongs to: its page's. */
static inline uint32
armdb_slot_shard(ArmdbRelKeydir *kd, uint64 slot)
{
	return armdb_page_shard(kd, slot / ARMDB_SLOTS_PER_PAGE);
}

static inline uint64
armdb_tid_to_slot(ItemPointer tid)
{
	return (uint64) ItemPointerGetBlockNumberNoCheck(tid) * ARMDB_SLOTS_PER_PAGE +
		ItemPointerGetOffsetNumberNoCheck(tid) - 1;
}

static inline void
armdb_slot_to_tid(uint64 slot, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (slot / ARMDB_SLOTS_PER_PAGE),
				   (OffsetNumber) (slot % ARMDB_SLOTS_PER_PAGE + 1));
}

#endif							/* ARMDB_KEYDIR_H */
