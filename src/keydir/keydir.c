/*-------------------------------------------------------------------------
 *
 * keydir.c
 *	  The shared key directory of armdb relations (see keydir.h).
 *
 * A relation's keydir is created empty on first use and then loaded from
 * its shard directories: every entry whose transaction committed (or is
 * still running) becomes the version record of its slot; entries of
 * aborted transactions are skipped, but their slots are never handed out
 * again (design §2: after a restart every non-live slot counts as not yet
 * index-vacuumed).
 *
 * On a hot standby, a keydir is loaded the same way for reading (nothing
 * in the files is changed, the shards get no write buffer, and a committed
 * end leaves its version with an xmax, since the standby's snapshots may be
 * older than it); replay then keeps it current (see "Replay on a hot
 * standby" below), and after promotion its first use rebuilds the shards
 * for writing around the versions replay kept.
 *
 * All memory comes from the DSA area limited by armdb.memory.  When it is
 * full, the operation that needed memory fails with an ERROR naming
 * the setting, and nothing already stored is affected.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "armdb.h"
#include "keydir/files.h"
#include "keydir/image.h"
#include "keydir/keydir.h"
#include "keydir/keydir_int.h"
#include "keydir/relstorage.h"
#include "storage/hint.h"
#include "storage/merge.h"
#include "storage/recovery.h"
#include "storage/winner.h"
#include "wal/armdb_wal.h"
#include "wal/armdb_durable.h"

static dshash_table *keydir_hash = NULL;

static const dshash_parameters keydir_hash_params = {
	sizeof(ArmdbRelKey),
	sizeof(ArmdbRelKeydir),
	dshash_memcmp,
	dshash_memhash,
	0							/* tranche id, set at run time */
};

/*
 * Backend-local handles of shard files, per (keydir generation, shard).  The
 * handles are fd.c's virtual descriptors, which fd.c itself keeps under
 * max_files_per_process, so this map needs no budget of its own.
 */
typedef struct ShardFilesKey
{
	uint64		generation;
	uint32		shard;
	uint32		pad;
} ShardFilesKey;

typedef struct ShardFilesEntry
{
	ShardFilesKey key;
	ArmdbRelKey relkey;			/* whose files */
	ArmdbShardFiles files;
} ShardFilesEntry;

static HTAB *shard_files_cache = NULL;
static uint64 shard_files_drops_seen = 0;
static uint64 shard_files_removed_seen = 0;


static int64 extra_cost(const ArmdbPage *page);

void
armdb_keydir_report_full(const char *what, const ArmdbStoreSettings *settings)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("armdb key directory is full"),
			 errdetail("No memory was left for %s.", what),
			 errhint("Increase armdb.memory (currently %d MB) and reload the server configuration.",
					 settings->memory_mb)));
}

void *
keydir_alloc(dsa_pointer *dp, Size size, const char *what,
			 const ArmdbStoreSettings *settings)
{
	*dp = dsa_allocate_extended(armdb_keydir_area_to_grow(), size,
								DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO |
								(size > MaxAllocSize ? DSA_ALLOC_HUGE : 0));
	if (!DsaPointerIsValid(*dp))
		armdb_keydir_report_full(what, settings);
	return dsa_get_address(armdb_keydir_area(), *dp);
}

/*
 * Create the relation hash in the postmaster, inside the in-place area, the
 * way pgstat does for its own.
 */
void
armdb_keydir_shmem_init(dsa_area *area)
{
	dshash_table *hash;
	dshash_parameters params = keydir_hash_params;

	params.tranche_id = armdb_shared->keydir_tranche_id;
	hash = dshash_create(area, &params, NULL);
	armdb_shared->keydir_hash = dshash_get_hash_table_handle(hash);
	dshash_detach(hash);
}

static dshash_table *
keydir_table(void)
{
	if (keydir_hash == NULL)
	{
		dshash_parameters params = keydir_hash_params;
		MemoryContext oldcontext = MemoryContextSwitchTo(TopMemoryContext);

		params.tranche_id = armdb_shared->keydir_tranche_id;
		keydir_hash = dshash_attach(armdb_keydir_area(), &params,
									armdb_shared->keydir_hash, NULL);
		MemoryContextSwitchTo(oldcontext);
	}
	return keydir_hash;
}

void
armdb_rel_key(ArmdbRelKey *key, RelFileNodeBackend rnode)
{
	memset(key, 0, sizeof(*key));
	key->dbNode = rnode.node.dbNode;
	key->relNode = rnode.node.relNode;
	key->backend = rnode.backend;
}

ArmdbShardRt *
armdb_keydir_shard(ArmdbRelKeydir *kd, uint32 shard)
{
	Assert(shard < kd->nshards);
	return ((ArmdbShardRt *) dsa_get_address(armdb_keydir_area(), kd->shards)) + shard;
}

/* ----------------
 * Virtual pages
 * ----------------
 *
 * Page pointers only ever go from invalid to valid (under kd->lock), and a
 * page is initialised before its pointer is published, so readers need no
 * lock to find a page: a barrier pairs with the writer's.
 */
static ArmdbPageChunk *
find_chunk(ArmdbRelKeydir *kd, uint64 pageno)
{
	dsa_area   *area = armdb_keydir_area();
	dsa_pointer dir_dp = *((volatile dsa_pointer *) &kd->chunks);
	ArmdbPageDir *dir;
	uint64		c = pageno / ARMDB_PAGES_PER_CHUNK;

	if (!DsaPointerIsValid(dir_dp))
		return NULL;
	pg_read_barrier();
	dir = dsa_get_address(area, dir_dp);
	if (c >= dir->nchunks || !DsaPointerIsValid(dir->chunk[c]))
		return NULL;
	pg_read_barrier();
	return dsa_get_address(area, dir->chunk[c]);
}

/* A page directory of nchunks entries, none used; ERROR without memory. */
dsa_pointer
new_page_dir(uint32 nchunks, const ArmdbStoreSettings *settings)
{
	dsa_pointer dp;
	ArmdbPageDir *dir;

	/* DSA_ALLOC_ZERO: every entry InvalidDsaPointer */
	dir = keydir_alloc(&dp, offsetof(ArmdbPageDir, chunk) +
					   sizeof(dsa_pointer) * nchunks,
					   "a page directory", settings);
	dir->nchunks = nchunks;
	dir->retired = InvalidDsaPointer;
	return dp;
}

ArmdbPage *
armdb_keydir_page(ArmdbRelKeydir *kd, uint64 pageno)
{
	ArmdbPageChunk *chunk = find_chunk(kd, pageno);
	dsa_pointer page_dp;

	if (chunk == NULL)
		return NULL;
	page_dp = chunk->pages[pageno % ARMDB_PAGES_PER_CHUNK];
	if (!DsaPointerIsValid(page_dp))
		return NULL;
	pg_read_barrier();
	return dsa_get_address(armdb_keydir_area(), page_dp);
}

/*
 * An owner is set once, before any slot of its page is handed out (claimed
 * runs) or while the keydir is being loaded, so a reader that has a slot
 * of the page in hand sees it.
 */
uint32
armdb_page_shard(ArmdbRelKeydir *kd, uint64 pageno)
{
	ArmdbPageChunk *chunk = find_chunk(kd, pageno);
	uint16		owner;

	if (chunk != NULL &&
		(owner = chunk->owner[pageno % ARMDB_PAGES_PER_CHUNK]) != 0)
		return owner - 1;
	/* no run names it: numbered as before runs existed (keydir.h) */
	return (uint32) (pageno % kd->nshards);
}

uint16
keydir_page_owner(ArmdbRelKeydir *kd, uint64 pageno)
{
	ArmdbPageChunk *chunk = find_chunk(kd, pageno);

	return chunk != NULL ? chunk->owner[pageno % ARMDB_PAGES_PER_CHUNK] : 0;
}

/* The chunk of pageno, allocated if need be; caller holds kd->lock. */
ArmdbPageChunk *
chunk_for_page(ArmdbRelKeydir *kd, uint64 pageno,
			   const ArmdbStoreSettings *settings)
{
	dsa_area   *area = armdb_keydir_area();
	ArmdbPageChunk *chunk = find_chunk(kd, pageno);
	ArmdbPageDir *dir;
	uint64		c = pageno / ARMDB_PAGES_PER_CHUNK;
	dsa_pointer dp;

	if (chunk != NULL)
		return chunk;
	if (c >= ARMDB_MAX_CHUNKS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("armdb table has used all of its %llu row slots",
						(unsigned long long) ARMDB_MAX_SLOTS),
				 errhint("VACUUM FULL the table to renumber its rows.")));
	dir = dsa_get_address(area, kd->chunks);
	if (c >= dir->nchunks)
	{
		/* a larger directory, published whole; the old one is retired */
		uint32		n = dir->nchunks;
		ArmdbPageDir *bigger;

		while (n <= c)
			n = Min(n * 2, ARMDB_MAX_CHUNKS);
		dp = new_page_dir(n, settings);
		bigger = dsa_get_address(area, dp);
		memcpy(bigger->chunk, dir->chunk, sizeof(dsa_pointer) * dir->nchunks);
		bigger->retired = kd->chunks;
		pg_write_barrier();
		kd->chunks = dp;
		dir = bigger;
	}
	/* DSA_ALLOC_ZERO: no page, no owner */
	chunk = keydir_alloc(&dp, sizeof(ArmdbPageChunk),
						 "a page directory chunk", settings);
	pg_write_barrier();
	dir->chunk[c] = dp;
	return chunk;
}

/*
 * Record that pages [first, first + npages) belong to shard; false if one
 * of them already belongs to another (damage: two shards' files name it).
 * Caller holds kd->lock exclusively.
 */
static bool
claim_pages(ArmdbRelKeydir *kd, uint64 first, uint64 npages, uint32 shard,
			const ArmdbStoreSettings *settings)
{
	/* nothing changes until memory and owners were found to allow it */
	for (uint64 p = first; p < first + npages; p++)
	{
		uint16		owner = chunk_for_page(kd, p, settings)->owner[p % ARMDB_PAGES_PER_CHUNK];

		if (owner != 0 && owner != shard + 1)
			return false;
	}
	for (uint64 p = first; p < first + npages; p++)
		find_chunk(kd, p)->owner[p % ARMDB_PAGES_PER_CHUNK] = (uint16) (shard + 1);
	kd->next_page = Max(kd->next_page, first + npages);
	return true;
}

/*
 * An entry that uses up its slot (role->uses_slot: a version, or a
 * reservation) claims its page for shard -- a reservation its run of
 * pages, from root_slot (or, made before runs existed, only its own);
 * false if another shard's entries named one of them.  For the load and
 * replay, which hold kd->lock.
 */
static bool
claim_entry_pages(ArmdbRelKeydir *kd, const ArmdbEntryInfo *e,
				  const ArmdbEntryRole *role, uint32 shard,
				  const ArmdbStoreSettings *settings)
{
	uint64		first = e->slot;

	if (!role->uses_slot || e->slot >= ARMDB_MAX_SLOTS)
		return true;
	if (armdb_gsn_is_reservation(e->gsn) && e->root_slot < e->slot)
		first = e->root_slot;
	return claim_pages(kd, first / ARMDB_SLOTS_PER_PAGE,
					   e->slot / ARMDB_SLOTS_PER_PAGE - first / ARMDB_SLOTS_PER_PAGE + 1,
					   shard, settings);
}

uint64
armdb_keydir_claim_pages(ArmdbRelKeydir *kd, uint32 shard, uint32 npages,
						 const ArmdbStoreSettings *settings)
{
	uint64		first;

	LWLockAcquire(&kd->lock, LW_EXCLUSIVE);
	first = Max(kd->next_page, settings->first_page);
	if (!claim_pages(kd, first, npages, shard, settings))
		elog(ERROR, "armdb: page %llu was claimed twice",
			 (unsigned long long) first);
	LWLockRelease(&kd->lock);
	return first;
}

/*
 * Memory for a new page: of its own for a table's first pages, from a block
 * after them (keydir.h).  Zeroed.  Caller holds kd->lock exclusively.
 */
static ArmdbPage *
new_page(ArmdbRelKeydir *kd, dsa_pointer *dp,
		 const ArmdbStoreSettings *settings)
{
	ArmdbPageBlock *block;

	if (pg_atomic_read_u64(&kd->nallocated) < ARMDB_PAGES_PER_BLOCK)
		return keydir_alloc(dp, sizeof(ArmdbPage), "a page of row versions",
							settings);
	if (!DsaPointerIsValid(kd->blocks) ||
		kd->block_used == ARMDB_PAGES_PER_BLOCK)
	{
		dsa_pointer block_dp;

		block = keydir_alloc(&block_dp, sizeof(ArmdbPageBlock),
							 "a block of pages of row versions", settings);
		block->next = kd->blocks;
		kd->blocks = block_dp;
		kd->block_used = 0;
	}
	block = dsa_get_address(armdb_keydir_area(), kd->blocks);
	*dp = kd->blocks + offsetof(ArmdbPageBlock, pages) +
		sizeof(ArmdbPage) * kd->block_used;
	block->pages[kd->block_used].in_block = true;
	return &block->pages[kd->block_used++];
}

/*
 * Give page (number pageno) its side array, if it has none: every command id
 * FirstCommandId, every ctid its own slot, as without one.  ERROR when
 * memory is full.  Caller holds the page's lock exclusively (or is loading).
 */
/* A new side array for page pageno, holding the defaults; ERROR if full. */
static dsa_pointer
new_extra(uint64 pageno, const ArmdbStoreSettings *settings)
{
	ArmdbVersionExtra *x;
	dsa_pointer dp;

	Assert(CritSectionCount == 0);
	x = keydir_alloc(&dp, sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE,
					 "the command ids, links and lengths of a page of row versions",
					 settings);
	for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
		x[i].ctid = (uint32) (pageno * ARMDB_SLOTS_PER_PAGE + i);
	return dp;
}

void
armdb_page_prepare_extra(ArmdbPage *page, uint64 pageno,
						 const ArmdbStoreSettings *settings)
{
	dsa_pointer dp;

	if (DsaPointerIsValid(page->extra))
		return;
	dp = new_extra(pageno, settings);
	pg_write_barrier();
	page->extra = dp;
}

/*
 * The side array entry of slot's record v, to be set to a value: made if
 * the page has no side array yet, unless the value is the default (NULL).
 */
static ArmdbVersionExtra *
extra_to_set(ArmdbVersion *v, uint64 slot, bool is_default,
			 const ArmdbStoreSettings *settings)
{
	ArmdbVersionExtra *x = armdb_version_extra(v, slot);

	if (x == NULL && !is_default)
	{
		armdb_page_prepare_extra(armdb_version_page(v, slot),
								 slot / ARMDB_SLOTS_PER_PAGE,
								 settings ? settings : armdb_store_settings());
		x = armdb_version_extra(v, slot);
	}
	return x;
}

void
armdb_version_set_cid(ArmdbVersion *v, uint64 slot, CommandId cid,
					  const ArmdbStoreSettings *settings)
{
	ArmdbVersionExtra *x = extra_to_set(v, slot, cid == FirstCommandId,
										settings);

	if (x != NULL)
		x->cid = cid;
}

void
armdb_version_set_ctid(ArmdbVersion *v, uint64 slot, uint32 ctid,
					   const ArmdbStoreSettings *settings)
{
	ArmdbVersionExtra *x;

	Assert(!armdb_version_is_redirect(v));
	x = extra_to_set(v, slot, ctid == (uint32) slot, settings);
	if (x != NULL)
		x->ctid = ctid;
}

void
armdb_version_set_len(ArmdbVersion *v, uint64 slot, uint32 len,
					  const ArmdbStoreSettings *settings)
{
	if (len < ARMDB_LONG_ENTRY)
		v->short_len = (uint16) len;
	else
	{
		extra_to_set(v, slot, false, settings)->len = len;
		v->short_len = ARMDB_LONG_ENTRY;
	}
}

/*
 * Free page's side array if no slot needs it any more (the load, once it
 * has unstashed the gsns; VACUUM): every version is shorter than
 * ARMDB_LONG_ENTRY, links to itself, no update of it is under way, and
 * its command id is FirstCommandId or one nobody reads again -- its insert
 * and its end, if any, are over, as hint bits say (only the transaction
 * that wrote a command id reads it).  An empty slot needs nothing (a
 * redirect keeps its target in the record).  Caller holds the page's lock
 * exclusively, or is loading.
 */
void
armdb_page_release_extra(ArmdbPage *page, uint64 pageno)
{
	ArmdbVersionExtra *x;

	if (!DsaPointerIsValid(page->extra))
		return;
	x = dsa_get_address(armdb_keydir_area(), page->extra);
	for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
	{
		const ArmdbVersion *v = &page->v[i];

		if (v->file_id == 0)
			continue;
		if (x[i].ctid != (uint32) (pageno * ARMDB_SLOTS_PER_PAGE + i) ||
			(v->infomask2 & ARMDB_V2_SPECULATIVE) ||
			v->short_len == ARMDB_LONG_ENTRY)
			return;
		/* an update under way links its new version next (armdb_update.c) */
		if (!(v->infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED)) &&
			!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
			return;
		if (x[i].cid != FirstCommandId &&
			(!(v->infomask & (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID)) ||
			 !((v->infomask & HEAP_XMAX_INVALID) ||
			   ((v->infomask & HEAP_XMAX_COMMITTED) &&
				!(v->infomask & HEAP_XMAX_IS_MULTI)))))
			return;
	}
	dsa_free(armdb_keydir_area(), page->extra);
	page->extra = InvalidDsaPointer;
}

/*
 * armdb_page_prepare_extra() for a caller that does not hold the page's
 * lock, and must not hold it when an ERROR comes (replay: its error path
 * keeps kd->lock, so it cannot release every LWLock): the side array is
 * allocated first, then installed under the lock unless one is there.
 */
void
armdb_page_prepare_extra_unlocked(ArmdbPage *page, uint64 pageno,
								  const ArmdbStoreSettings *settings)
{
	dsa_pointer dp;

	LWLockAcquire(&page->lock, LW_SHARED);
	dp = page->extra;
	LWLockRelease(&page->lock);
	if (DsaPointerIsValid(dp))
		return;
	dp = new_extra(pageno, settings);
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	if (!DsaPointerIsValid(page->extra))
	{
		page->extra = dp;
		dp = InvalidDsaPointer;
	}
	LWLockRelease(&page->lock);
	if (DsaPointerIsValid(dp))
		dsa_free(armdb_keydir_area(), dp);
}

void
armdb_version_clear(ArmdbVersion *v, uint64 slot)
{
	ArmdbVersionExtra *x = armdb_version_extra(v, slot);

	memset(v, 0, sizeof(ArmdbVersion));
	if (x != NULL)
	{
		x->cid = FirstCommandId;
		x->ctid = (uint32) slot;
	}
}

ArmdbPage *
page_for_slot(ArmdbRelKeydir *kd, uint64 slot, bool have_lock,
			  const ArmdbStoreSettings *settings)
{
	uint64		pageno = slot / ARMDB_SLOTS_PER_PAGE;
	ArmdbPage  *page = armdb_keydir_page(kd, pageno);
	ArmdbPageChunk *chunk;

	if (page != NULL)
		return page;
	if (!have_lock)
		LWLockAcquire(&kd->lock, LW_EXCLUSIVE);
	chunk = chunk_for_page(kd, pageno, settings);
	if (!DsaPointerIsValid(chunk->pages[pageno % ARMDB_PAGES_PER_CHUNK]))
	{
		dsa_pointer dp;

		page = new_page(kd, &dp, settings);
		LWLockInitialize(&page->lock, armdb_shared->keydir_tranche_id);
		/* a page loaded after a restart may have its bit in the map */
		page->vm_maybe_set = true;
		pg_write_barrier();
		chunk->pages[pageno % ARMDB_PAGES_PER_CHUNK] = dp;
		pg_atomic_fetch_add_u64(&kd->nallocated, 1);
	}
	/* npages only grows */
	while (pg_atomic_read_u64(&kd->npages) <= pageno)
	{
		uint64		old = pg_atomic_read_u64(&kd->npages);

		if (old <= pageno)
			pg_atomic_compare_exchange_u64(&kd->npages, &old, pageno + 1);
	}
	if (!have_lock)
		LWLockRelease(&kd->lock);
	return armdb_keydir_page(kd, pageno);
}

ArmdbPage *
armdb_keydir_page_for_slot(ArmdbRelKeydir *kd, uint64 slot,
						   const ArmdbStoreSettings *settings)
{
	return page_for_slot(kd, slot, false, settings);
}

bool
armdb_keydir_free_slot(ArmdbShardRt *rt, uint64 slot)
{
	dsa_area   *area = armdb_keydir_area_to_grow();
	uint32	   *slots;

	if (rt->nfree == rt->free_cap)
	{
		uint32		cap = Max(1024, rt->free_cap * 2);
		dsa_pointer dp = dsa_allocate_extended(area, sizeof(uint32) * cap,
											   DSA_ALLOC_NO_OOM);

		if (!DsaPointerIsValid(dp))
			return false;
		if (DsaPointerIsValid(rt->free_slots))
		{
			memcpy(dsa_get_address(area, dp),
				   dsa_get_address(area, rt->free_slots),
				   sizeof(uint32) * rt->nfree);
			dsa_free(area, rt->free_slots);
		}
		rt->free_slots = dp;
		rt->free_cap = cap;
	}
	slots = dsa_get_address(area, rt->free_slots);
	slots[rt->nfree++] = (uint32) slot;
	return true;
}

/*
 * A write buffer of size bytes (a multiple of ARMDB_BLOCK_SIZE) for O_DIRECT,
 * named in shared memory by the DSA pointer of its first block-aligned byte
 * (ArmdbShardState.buf_ref, resolved by armdb_keydir_area()'s resolver).
 * DSA gives allocations past 8 kB whole 4 kB pages, and its segments start
 * on 4 kB boundaries (the in-place one too, armdb.c), so the buffer is
 * aligned as allocated; were it not, it is allocated again one block larger
 * and aligned by hand.  Processes map segments at addresses of their own,
 * but at the same offsets from a page boundary, so the alignment falls on
 * the same byte for all of them.  *dp is the allocation, to be freed.
 * InvalidDsaPointer without memory.
 */
static uint64
alloc_buffer(dsa_area *area, uint32 size, dsa_pointer *dp)
{
	char	   *raw;
	char	   *aligned;

	*dp = dsa_allocate_extended(area, size, DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(*dp))
		return 0;
	raw = dsa_get_address(area, *dp);
	if ((uintptr_t) raw % ARMDB_BLOCK_SIZE != 0)
	{
		dsa_free(area, *dp);
		*dp = dsa_allocate_extended(area, size + ARMDB_BLOCK_SIZE,
									DSA_ALLOC_NO_OOM);
		if (!DsaPointerIsValid(*dp))
			return 0;
		raw = dsa_get_address(area, *dp);
	}
	aligned = (char *) TYPEALIGN(ARMDB_BLOCK_SIZE, raw);
	return (uint64) (*dp + (aligned - raw));
}

void
armdb_keydir_shard_buffer(ArmdbRelKeydir *kd, ArmdbShardRt *rt,
						  const ArmdbStoreSettings *settings)
{
	/* a whole number of O_DIRECT blocks */
	uint32		max = (uint32) TYPEALIGN_DOWN(ARMDB_BLOCK_SIZE,
											  settings->write_buffer_size);
	uint32		size = Min(max, ARMDB_MIN_BUFFER_SIZE);
	uint64		ref;
	ArmdbShardFiles *files = NULL;

	if (rt->st.buf_ref != 0)
		return;
	/* before the allocation: nothing to free if it fails */
	if (rt->buf_released)
		files = armdb_keydir_shard_files(kd, rt->st.shard_no, settings);
	ref = alloc_buffer(armdb_keydir_area_to_grow(), size, &rt->buf_dp);
	if (ref == 0)
		armdb_keydir_report_full("a shard write buffer", settings);
	rt->buf_max = Max(max, size);
	if (rt->buf_released)
	{
		ArmdbError	err;

		if (!armdb_shard_restore_buffer(&rt->st, files, ref, size, &err))
		{
			dsa_free(armdb_keydir_area(), rt->buf_dp);
			rt->buf_dp = InvalidDsaPointer;
			armdb_report_storage_error(ERROR, &err);
		}
		rt->buf_released = false;
		return;
	}
	rt->st.buf_ref = ref;
	rt->st.buf_size = size;
}

int64
armdb_keydir_release_idle_buffers(ArmdbRelKeydir *kd, int64 now, int idle_ms)
{
	int64		freed = 0;

	if (!DsaPointerIsValid(kd->shards))
		return 0;
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbPos	pos;
		uint32		size;

		/* never wait for a writer: it is not idle */
		if (!DsaPointerIsValid(rt->buf_dp) ||
			!LWLockConditionalAcquire(&rt->lock, LW_EXCLUSIVE))
			continue;
		pos = armdb_shard_end(&rt->st);
		size = rt->st.buf_size;
		if (pos != rt->idle_pos || rt->idle_since == 0)
		{
			rt->idle_pos = pos;
			rt->idle_since = now;
		}
		/* it checks the buffer is there, and all in the file */
		else if (now - rt->idle_since >= (int64) idle_ms * 1000 &&
				 armdb_shard_release_buffer(&rt->st))
		{
			freed += armdb_keydir_alloc_cost(size);
			dsa_free(armdb_keydir_area(), rt->buf_dp);
			rt->buf_dp = InvalidDsaPointer;
			rt->buf_released = true;
		}
		LWLockRelease(&rt->lock);
	}
	return freed;
}

/*
 * ArmdbShardFiles.grow_buffer: a shard's write buffer starts at
 * ARMDB_MIN_BUFFER_SIZE, so that a table written a few rows at a time
 * holds little memory, and doubles when an entry does not fit, up to
 * armdb.write_buffer_size.  Under the shard's lock held exclusively (every
 * user of the buffer holds it); without memory the buffer stays as it is, and
 * is written out sooner.
 */
static void
grow_shard_buffer(void *arg, ArmdbShardState *st, uint64 needed)
{
	ArmdbShardRt *rt = arg;
	dsa_area   *area = armdb_keydir_area_to_grow();
	uint64		size = st->buf_size;
	dsa_pointer dp;
	uint64		ref;
	char	   *buf;

	Assert(st == &rt->st);
	while (size < needed && size < rt->buf_max)
		size = Min(size * 2, rt->buf_max);
	if (size <= st->buf_size)
		return;
	ref = alloc_buffer(area, (uint32) size, &dp);
	if (ref == 0)
		return;
	buf = dsa_get_address(area, (dsa_pointer) ref);
	memcpy(buf, armdb_shard_buf(st), st->buf_size);
	memset(buf + st->buf_size, 0, size - st->buf_size);
	dsa_free(area, rt->buf_dp);
	rt->buf_dp = dp;
	st->buf_ref = ref;
	st->buf_size = (uint32) size;
}

/* ----------------
 * Backend-local shard files
 * ----------------
 */
ArmdbShardFiles *
armdb_keydir_shard_files(ArmdbRelKeydir *kd, uint32 shard,
						 const ArmdbStoreSettings *settings)
{
	ShardFilesKey key;
	ShardFilesEntry *entry;
	bool		found;

	if (shard_files_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(ShardFilesKey);
		ctl.entrysize = sizeof(ShardFilesEntry);
		ctl.hcxt = TopMemoryContext;
		shard_files_cache = hash_create("armdb shard files", 64, &ctl,
										HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.generation = kd->generation;
	key.shard = shard;
	entry = hash_search(shard_files_cache, &key, HASH_ENTER, &found);
	if (!found)
	{
		char		dir[MAXPGPATH];

		armdb_shard_dir_path(dir, armdb_keydir_rnode(kd), shard);
		armdb_shard_files_init(&entry->files, dir, armdb_backend_io(),
							   settings->direct_io);
	}
	entry->relkey = kd->key;
	entry->files.io = armdb_backend_io();
	entry->files.cached_reads = settings->cached_reads;
	entry->files.encrypt = kd->encrypted;
	memcpy(entry->files.storage_id, kd->storage_id,
		   sizeof(entry->files.storage_id));
	entry->files.shard_no = shard;
	entry->files.grow_buffer = grow_shard_buffer;
	entry->files.grow_buffer_arg = armdb_keydir_shard(kd, shard);
	return &entry->files;
}

/*
 * At the end of a transaction: if any keydir was dropped since the last
 * look (by any backend), close this backend's descriptors of the dropped
 * ones, so that their removed files give their space back (heap's smgr
 * invalidation does that for heap files).  Likewise after a merge removed
 * its input files: then every cached descriptor is closed (they are
 * reopened on demand).
 */
void
armdb_keydir_close_dropped_files(void)
{
	HASH_SEQ_STATUS status;
	ShardFilesEntry *entry;
	uint64		drops;
	uint64		removed;

	if (shard_files_cache == NULL || armdb_shared == NULL)
		return;
	drops = pg_atomic_read_u64(&armdb_shared->keydir_drops);
	removed = pg_atomic_read_u64(&armdb_shared->files_removed);
	if (drops == shard_files_drops_seen && removed == shard_files_removed_seen)
		return;
	hash_seq_init(&status, shard_files_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (drops != shard_files_drops_seen &&
			armdb_keydir_find(&entry->relkey, entry->key.generation) == NULL)
		{
			armdb_shard_files_close(&entry->files);
			hash_search(shard_files_cache, &entry->key, HASH_REMOVE, NULL);
		}
		else if (removed != shard_files_removed_seen)
			armdb_shard_files_close(&entry->files);	/* reopened on use */
	}
	shard_files_drops_seen = drops;
	shard_files_removed_seen = removed;
}

/* Close this backend's descriptors of a keydir's files. */
void
forget_shard_files(ArmdbRelKeydir *kd)
{
	if (shard_files_cache == NULL)
		return;
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ShardFilesKey key;
		ShardFilesEntry *entry;

		memset(&key, 0, sizeof(key));
		key.generation = kd->generation;
		key.shard = shard;
		entry = hash_search(shard_files_cache, &key, HASH_FIND, NULL);
		if (entry != NULL)
		{
			armdb_shard_files_close(&entry->files);
			hash_search(shard_files_cache, &key, HASH_REMOVE, NULL);
		}
	}
}

/* ----------------
 * Loading a relation's keydir from its files
 * ----------------
 */
/* A committed end of the version in slot, by an entry of gsn. */
typedef struct LoadKill
{
	uint64		slot;
	uint64		gsn;
	TransactionId xid;			/* the ending transaction */
	bool		in_progress;	/* still running: a prepared transaction */
	bool		lock;			/* a row lock, not an end */
	uint64		newer;			/* slot of the new version (UPDATE), or the
								 * slot itself (DELETE); a lock's xmax and
								 * infomask bits (lock_xmax) */
	bool		hot;			/* a HOT update: newer is heap-only */
} LoadKill;

/* A heap-only version met by the load, for its chain root's redirect. */
typedef struct LoadHeapOnly
{
	uint64		root;
	uint64		gsn;
	uint64		slot;
} LoadHeapOnly;

typedef struct LoadState
{
	LoadMode	mode;
	ArmdbRelKeydir *kd;
	const ArmdbStoreSettings *settings;
	uint32		shard;
	uint64		entries;
	uint64		bytes;			/* of all entries of this shard */
	LoadKill   *kills;
	uint64		nkills;
	uint64		maxkills;
	LoadHeapOnly *honly;		/* every heap-only version entry */
	uint64		nhonly;
	uint64		maxhonly;
	uint32		file_id;		/* file of the last entry seen */
	uint64		file_pos;		/* where the next entry of file_id must be */
	bool		gaps;			/* bytes between two entries of a file:
								 * damage skipped by salvaging */
	/* the shard's files as they are read (keydir/files.h) */
	ArmdbFileStat *fstats;
	int			nfstats;
	int			fstats_cap;
	/*
	 * The page of the last version loaded, which the next one is most
	 * likely on (pages do not move, and this shard claimed it): most
	 * entries need neither a claim nor a lookup in the page directory.
	 */
	uint64		last_pageno;	/* PG_UINT64_MAX: none */
	ArmdbPage  *last_page;
	uint64		newest_fxid;	/* of all entries read */
} LoadState;

/* The file of the entry being loaded, in the shard's list being built. */
static ArmdbFileStat *
load_file_stat(LoadState *ls, uint32 file_id)
{
	ArmdbFileStat *f;

	if (ls->nfstats > 0 && ls->fstats[ls->nfstats - 1].file_id == file_id)
		return &ls->fstats[ls->nfstats - 1];
	if (ls->nfstats == ls->fstats_cap)
	{
		ls->fstats_cap = Max(16, ls->fstats_cap * 2);
		ls->fstats = ls->fstats == NULL ?
			palloc(sizeof(ArmdbFileStat) * ls->fstats_cap) :
			repalloc(ls->fstats, sizeof(ArmdbFileStat) * ls->fstats_cap);
	}
	f = &ls->fstats[ls->nfstats++];
	memset(f, 0, sizeof(*f));
	f->file_id = file_id;
	f->min_gsn = PG_UINT64_MAX;
	return f;
}

/* Find file_id in a shard's list being built (ascending). */
static ArmdbFileStat *
find_file_stat(ArmdbFileStat *fs, int n, uint32 file_id)
{
	uint32		i = armdb_files_search(fs, (uint32) n, file_id);

	return i < n && fs[i].file_id == file_id ? &fs[i] : NULL;
}

static int
cmp_file_stat(const void *a, const void *b)
{
	uint32		x = ((const ArmdbFileStat *) a)->file_id;
	uint32		y = ((const ArmdbFileStat *) b)->file_id;

	return (x > y) - (x < y);
}

static void
note_kill(LoadState *ls, uint64 slot, uint64 gsn, TransactionId xid,
		  bool in_progress, uint64 newer, bool hot)
{
	if (ls->nkills == ls->maxkills)
	{
		ls->maxkills = Max(1024, ls->maxkills * 2);
		ls->kills = ls->kills == NULL ?
			palloc_extended(sizeof(LoadKill) * ls->maxkills, MCXT_ALLOC_HUGE) :
			repalloc_huge(ls->kills, sizeof(LoadKill) * ls->maxkills);
	}
	ls->kills[ls->nkills].slot = slot;
	ls->kills[ls->nkills].gsn = gsn & ARMDB_GSN_MAX;
	ls->kills[ls->nkills].xid = xid;
	ls->kills[ls->nkills].in_progress = in_progress;
	ls->kills[ls->nkills].lock = false;
	ls->kills[ls->nkills].newer = newer;
	ls->kills[ls->nkills].hot = hot;
	ls->nkills++;
}

static void
note_heap_only(LoadState *ls, uint64 slot, uint64 gsn, uint64 root)
{
	if (ls->nhonly == ls->maxhonly)
	{
		ls->maxhonly = Max(1024, ls->maxhonly * 2);
		ls->honly = ls->honly == NULL ?
			palloc_extended(sizeof(LoadHeapOnly) * ls->maxhonly, MCXT_ALLOC_HUGE) :
			repalloc_huge(ls->honly, sizeof(LoadHeapOnly) * ls->maxhonly);
	}
	ls->honly[ls->nhonly].root = root;
	ls->honly[ls->nhonly].gsn = gsn & ARMDB_GSN_MAX;
	ls->honly[ls->nhonly].slot = slot;
	ls->nhonly++;
}

/* A lock entry's xmax and its bits (format.h), as one number. */
static inline uint64
lock_xmax(const ArmdbEntryInfo *e)
{
	return ((e->prev_slot & (ARMDB_LOCK_INFOMASK_MASK | ARMDB_LOCK_KEYS_UPDATED)) << 32) |
		(uint32) e->root_slot;
}

/* A running transaction's row lock, applied with the ends (load_keydir). */
static void
note_lock(LoadState *ls, const ArmdbEntryInfo *e)
{
	note_kill(ls, e->slot, e->gsn, InvalidTransactionId, true, lock_xmax(e),
			  false);
	ls->kills[ls->nkills - 1].lock = true;
}

/*
 * While loading, a record's xmax and cid hold its entry's gsn (they are
 * reset when loading is done): an end applies only to an older version,
 * since VACUUM may have given the slot to a newer one.
 */
static inline void
stash_gsn(ArmdbVersion *v, uint64 slot, uint64 gsn,
		  const ArmdbStoreSettings *settings)
{
	gsn &= ARMDB_GSN_MAX;
	v->xmax = (TransactionId) (gsn & 0xFFFFFFFF);
	/* no side array for the gsns of a table's first 2^32 entries */
	armdb_version_set_cid(v, slot, (CommandId) (gsn >> 32), settings);
}

static inline uint64
stashed_gsn(const ArmdbVersion *v, uint64 slot)
{
	return ((uint64) armdb_version_cid(v, slot) << 32) | v->xmax;
}

/*
 * An end that leaves its version in place, with xid as its xmax, as heap's
 * xmax of a deleter or updater: xid is still running, or (on a standby)
 * committed after a snapshot there; newer is the new version's slot
 * (UPDATE), or the slot itself (DELETE).
 */
static void
mark_ended(ArmdbVersion *v, uint64 slot, TransactionId xid, uint64 newer,
		   bool hot, const ArmdbStoreSettings *settings)
{
	v->xmax = xid;
	v->infomask &= ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED |
					 HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK |
					 HEAP_XMAX_LOCK_ONLY);
	v->infomask2 |= HEAP_KEYS_UPDATED;
	v->infomask2 &= ~HEAP_HOT_UPDATED;
	if (hot)
		v->infomask2 |= HEAP_HOT_UPDATED;
	armdb_version_set_ctid(v, slot, (uint32) newer, settings);
}

/*
 * A row lock entry's xmax (lock_xmax) on slot's version: the xmax that
 * version had when the entry was written, lockers and any updater.  One
 * thing it never does is replace the xmax of an updater that did not
 * abort with lockers alone: a locker that joins an updater makes a
 * MultiXact of both (README.tuplock), so such an entry is older than the
 * update -- replay applies entries in WAL order, which across shards need
 * not be their order.
 */
static void
mark_locked(ArmdbVersion *v, uint64 slot, uint64 xmax,
			const ArmdbStoreSettings *settings)
{
	uint16		bits = (uint16) ((xmax >> 32) & ARMDB_LOCK_INFOMASK_MASK);

	if (!(bits & HEAP_XMAX_IS_MULTI) && !(v->infomask & HEAP_XMAX_INVALID) &&
		!(v->infomask & HEAP_XMAX_IS_MULTI) &&
		!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) &&
		TransactionIdIsNormal(v->xmax) && v->xmax != (TransactionId) xmax &&
		!TransactionIdDidAbort(v->xmax))
		return;

	v->xmax = (TransactionId) xmax;
	v->infomask &= ~HEAP_XMAX_BITS;
	v->infomask |= bits & ARMDB_LOCK_XMAX_BITS;
	v->infomask2 &= ~(HEAP_KEYS_UPDATED | ARMDB_V2_KEYS_UNKNOWN);
	if ((xmax >> 32) & ARMDB_LOCK_KEYS_UPDATED)
		v->infomask2 |= HEAP_KEYS_UPDATED;
	if (HEAP_XMAX_IS_LOCKED_ONLY(v->infomask))
		armdb_version_set_ctid(v, slot, (uint32) slot, settings);	/* no
																	 * forward
																	 * link */
}

/*
 * What became of the transaction that wrote an entry (an ArmdbXactFateLookup
 * for armdb_winner_classify)?  Entries older than the relation's
 * relfrozenxid never need asking (design §4): armdb does not advance
 * relfrozenxid past anything its files still depend on.
 */
static ArmdbXactFate
entry_fate(void *arg, uint64 fxid)
{
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(fxid));

	if (!TransactionIdIsNormal(xid))
		return xid == FrozenTransactionId ? ARMDB_XACT_COMMITTED :
			ARMDB_XACT_ABORTED;

	/*
	 * On a standby restarted after a crash, the files may hold entries that
	 * replay wrote before the crash and has not reached again: of
	 * transactions it has not seen yet.  They count for nothing now; replay
	 * applies them when it gets there (armdb_keydir_redo_append).
	 */
	if (RecoveryInProgress() &&
		FullTransactionIdFollowsOrEquals(FullTransactionIdFromU64(fxid),
										 ReadNextFullTransactionId()))
		return ARMDB_XACT_ABORTED;
	if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid))
		return ARMDB_XACT_IN_PROGRESS;
	return TransactionIdDidCommit(xid) ? ARMDB_XACT_COMMITTED :
		ARMDB_XACT_ABORTED;
}

/*
 * One entry, in file order.  What it means is armdb_winner_classify's
 * business (winner.h): a version fills its slot's record unless the record
 * holds one with a higher gsn; the end of a version -- a tombstone (DELETE)
 * or a newer version naming it as prev_slot (UPDATE) -- is noted and
 * applied once every shard is loaded, because it is written to the shard of
 * the backend that made the change, not necessarily the slot's.
 */
static bool
load_entry(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	LoadState  *ls = arg;
	ArmdbRelKeydir *kd = ls->kd;
	ArmdbFileStat *fstat;
	ArmdbEntryRole role;
	ArmdbPage  *page;
	ArmdbVersion *v;
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

	/* entries are packed: a gap is damage a salvage skipped (maybe earlier) */
	if (e->file_id != ls->file_id)
	{
		ls->file_id = e->file_id;
		ls->file_pos = ARMDB_FILE_HEADER_SIZE;
	}
	fstat = load_file_stat(ls, e->file_id);
	if (e->offset != ls->file_pos)
	{
		ls->gaps = true;
		fstat->flags |= ARMDB_FSTAT_DAMAGED;	/* merges would stop there */
	}
	ls->file_pos = (uint64) e->offset + e->len;
	/* total_bytes counts entries (the header is added later) */
	fstat->total_bytes += e->len;
	fstat->min_gsn = Min(fstat->min_gsn, e->gsn & ARMDB_GSN_MAX);
	fstat->max_gsn = Max(fstat->max_gsn, e->gsn & ARMDB_GSN_MAX);

	if (e->slot >= ARMDB_MAX_SLOTS)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u has slot %llu, beyond the last one",
						   e->offset, e->file_id,
						   (unsigned long long) e->slot);
	ls->entries++;
	ls->bytes += e->len;
	ls->newest_fxid = Max(ls->newest_fxid, e->xid);

	armdb_winner_classify(e, ARMDB_MAX_SLOTS, entry_fate, NULL, &role);
	/* versions and reservations live in their page's shard */
	if ((armdb_gsn_is_reservation(e->gsn) ||
		 e->slot / ARMDB_SLOTS_PER_PAGE != ls->last_pageno) &&
		!claim_entry_pages(kd, e, &role, ls->shard, ls->settings))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u has slot %llu, whose page belongs to another shard than %u",
						   e->offset, e->file_id,
						   (unsigned long long) e->slot, ls->shard);
	if (armdb_gsn_is_version(e->gsn))
		fstat->dead_version_bytes += e->len;	/* versions, for now */
	else if (armdb_gsn_is_tombstone(e->gsn))
	{
		fstat->ending_bytes += e->len;
		fstat->ending_max_gsn = Max(fstat->ending_max_gsn, e->gsn & ARMDB_GSN_MAX);
	}
	if (ls->mode == LOAD_PROMOTED)
		return true;			/* the versions are there already */

	/*
	 * A standby's snapshots may be older than a committed end: the version
	 * stays, with the end as its xmax, unless no snapshot there can see it
	 * any more (the end is older than all of them and any to come, or a
	 * hint recorded it as frozen, after FREEZE's recovery conflict).
	 */
	if (role.ends != ARMDB_INVALID_SLOT)
		note_kill(ls, role.ends, e->gsn, xid,
				  role.in_progress ||
				  (ls->mode == LOAD_STANDBY &&
				   !(e->gsn & ARMDB_GSN_FLAG_FROZEN) &&
				   !GlobalVisCheckRemovableXid(NULL, xid)),
				  role.newer, role.heap_only_root != ARMDB_INVALID_SLOT);
	if (role.locks != ARMDB_INVALID_SLOT)
		note_lock(ls, e);
	if (!role.version)
		return true;
	if (role.heap_only_root != ARMDB_INVALID_SLOT)
		note_heap_only(ls, e->slot, e->gsn, role.heap_only_root);

	/* the loader holds kd->lock */
	if (e->slot / ARMDB_SLOTS_PER_PAGE == ls->last_pageno)
		page = ls->last_page;
	else
	{
		page = page_for_slot(kd, e->slot, true, ls->settings);
		ls->last_pageno = e->slot / ARMDB_SLOTS_PER_PAGE;
		ls->last_page = page;
	}
	v = &page->v[e->slot % ARMDB_SLOTS_PER_PAGE];
	if (!armdb_winner_version_replaces(v->file_id != 0,
									   stashed_gsn(v, e->slot), e->gsn))
		return true;
	armdb_version_set_len(v, e->slot, e->len, ls->settings);
	v->file_id = e->file_id;
	v->offset = e->offset;
	v->xmin = xid;
	stash_gsn(v, e->slot, e->gsn, ls->settings);
	v->infomask = HEAP_XMAX_INVALID | (role.in_progress ? 0 : HEAP_XMIN_COMMITTED);
	if (role.frozen)
		v->infomask |= HEAP_XMIN_FROZEN;	/* its xid may be older than clog */
	v->infomask2 = role.heap_only_root != ARMDB_INVALID_SLOT ?
		HEAP_ONLY_TUPLE : 0;
	armdb_version_set_ctid(v, e->slot, (uint32) e->slot, ls->settings);
	return true;
}

/*
 * A shard that cannot be loaded because a data file is damaged: say what
 * the user can do about it.
 */
static void
report_load_error(const char *dir, const ArmdbError *err)
{
	if (err->code != ARMDB_ERR_CORRUPT)
		armdb_report_storage_error(ERROR, err);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("armdb: %s", err->message),
			 errdetail("Nothing was changed in \"%s\".", dir),
			 errhint("Restore the table from a backup, or have a superuser set armdb.skip_damaged_entries to on and read the table again, which keeps every undamaged row and loses the damaged ones.")));
}

/*
 * A shard's state as loading found it: for reading only (LOAD_STANDBY, no
 * write buffer, nothing opened for appends), or open for appends.
 */
void
load_shard_state(ArmdbRelKeydir *kd, ArmdbShardRt *rt, ArmdbShardFiles *files,
				 const ArmdbRecoveryReport *report, LoadMode mode, bool wal,
				 const ArmdbStoreSettings *settings)
{
	ArmdbError	err;

	if (mode == LOAD_STANDBY)
	{
		rt->st.active_file_id = report->last_file_id;
		rt->st.append_end = rt->st.written_end = rt->st.buf_start =
			report->end_offset;
	}
	else if (report->last_file_id != 0)
	{
		armdb_keydir_shard_buffer(kd, rt, settings);
		armdb_shard_state_init(&rt->st, rt->st.shard_no, rt->st.buf_ref,
							   rt->st.buf_size, rt->st.max_file_size);
		if (!armdb_shard_open(&rt->st, files, report->last_file_id,
							  report->end_offset, &err))
			armdb_report_storage_error(ERROR, &err);
		/* (before the seal below, whose new file must not be a merge's) */
		armdb_shard_note_file_id(&rt->st, report->max_file_id);

		/*
		 * Salvaging skipped damage inside the active file: close it and
		 * give it a hint file listing its good entries, so that the next
		 * start reads the hint and never meets the damage again.  The file
		 * the seal starts gets its FILE record now, as any seal's does
		 * (vstore.c, log_started_file): a merge numbered above it could
		 * otherwise reach WAL before its first entry, and replay would
		 * then take it for merged away and drop its entries.
		 */
		if (report->active_salvaged)
		{
			uint32		sealed;

			if (!armdb_shard_seal(&rt->st, files, &sealed, &err) ||
				(sealed != 0 &&
				 !armdb_hint_build(files->io, files->dir, sealed,
								   settings->direct_io, true,
								   armdb_shard_files_auth(files), &err)))
				armdb_report_storage_error(ERROR, &err);
			if (sealed != 0 && wal)
				armdb_wal_log_file(kd->key.dbNode, kd->key.relNode,
								   rt->st.shard_no, rt->st.active_file_id,
								   armdb_shard_buf(&rt->st));
		}
	}
	/* merge outputs may have higher numbers than the active file */
	armdb_shard_note_file_id(&rt->st, report->max_file_id);
}

/* A shard's runtime state before its files are read (zeroed memory). */
void
init_shard(ArmdbShardRt *rt, uint32 shard, const ArmdbStoreSettings *settings)
{
	LWLockInitialize(&rt->lock, armdb_shared->keydir_tranche_id);
	LWLockInitialize(&rt->flush_lock, armdb_shared->keydir_tranche_id);
	rt->wal_lsn = InvalidXLogRecPtr;
	rt->free_slots = InvalidDsaPointer;
	rt->nfree = rt->free_cap = 0;
	pg_atomic_init_u64(&rt->dead_bytes, 0);
	memset(&rt->st, 0, sizeof(rt->st));
	rt->st.shard_no = shard;
	rt->st.max_file_size = settings->max_file_size;
}

static int
cmp_kill_gsn(const void *a, const void *b)
{
	uint64		x = ((const LoadKill *) a)->gsn;
	uint64		y = ((const LoadKill *) b)->gsn;

	return (x > y) - (x < y);
}

/*
 * The ends and row locks of running transactions (prepared ones, after a
 * restart) that still apply: each sets its version's xmax, in gsn order,
 * so that the newest of a version decides (winner.h).  A committed end
 * may have removed a locked version meanwhile.
 */
static void
mark_running(ArmdbRelKeydir *kd, LoadState *ls)
{
	uint64		n = 0;

	for (uint64 i = 0; i < ls->nkills; i++)
		if (ls->kills[i].in_progress)
			ls->kills[n++] = ls->kills[i];
	if (n > 1)
		qsort(ls->kills, n, sizeof(LoadKill), cmp_kill_gsn);
	for (uint64 i = 0; i < n; i++)
	{
		LoadKill   *k = &ls->kills[i];
		ArmdbPage  *page = armdb_keydir_page(kd, k->slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion *v = &page->v[k->slot % ARMDB_SLOTS_PER_PAGE];

		if (v->file_id == 0)
			continue;
		if (k->lock)
			mark_locked(v, k->slot, k->newer, ls->settings);
		else
			mark_ended(v, k->slot, k->xid, k->newer, k->hot, ls->settings);
	}
}

static int
cmp_heap_only(const void *a, const void *b)
{
	const LoadHeapOnly *x = a;
	const LoadHeapOnly *y = b;

	if (x->root != y->root)
		return (x->root > y->root) - (x->root < y->root);
	return (x->gsn > y->gsn) - (x->gsn < y->gsn);
}

/* Is the version h noted still in its slot after the ends? */
static bool
honly_present(ArmdbRelKeydir *kd, const LoadHeapOnly *h)
{
	ArmdbPage  *page = armdb_keydir_page(kd, h->slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;

	if (page == NULL)
		return false;
	v = &page->v[h->slot % ARMDB_SLOTS_PER_PAGE];
	return v->file_id != 0 && stashed_gsn(v, h->slot) == h->gsn;
}

/*
 * The redirects of HOT chain roots (armdb_hot.c), which no entry records:
 * a root whose slot lost its version (its end committed) redirects to the
 * oldest version of its chain still there, which every later version
 * follows through ctid, with that version's xmin.  Runs after the ends are
 * applied, while records still hold their entries' gsns.
 *
 * A chain's versions went in the order they were written, as VACUUM
 * prunes a chain from its front, except where a hot standby keeps ended
 * versions for snapshots that may still see them: it judges each end by
 * its xid, and xids need not end in the order of their commits, so a
 * version may go while an older one of its chain stays.  What is older
 * than a version gone ended before it, and is gone to every snapshot too
 * (the end that removed the newer one is older than all of them): those
 * go as well, as heap_prune_chain would have it, and the root redirects
 * past the gap.
 *
 * The roots that kept their versions are left in ls->honly, each with the
 * oldest version of its chain, for relink_roots().
 */
static void
rebuild_redirects(ArmdbRelKeydir *kd, LoadState *ls)
{
	uint64		nkept = 0;

	if (ls->nhonly > 1)
		qsort(ls->honly, ls->nhonly, sizeof(LoadHeapOnly), cmp_heap_only);
	for (uint64 i = 0; i < ls->nhonly;)
	{
		uint64		root = ls->honly[i].root;
		uint64		end = i;
		uint64		first;		/* the first version after the last gap */
		bool		gap = false;
		ArmdbVersion *rv;

		while (end < ls->nhonly && ls->honly[end].root == root)
			end++;
		rv = &page_for_slot(kd, root, true, ls->settings)->v[root % ARMDB_SLOTS_PER_PAGE];

		/*
		 * A root slot that holds a version: the versions older than it
		 * were of the slot's earlier row (VACUUM freed the slot once that
		 * row's chain was dead), not of this chain.
		 */
		if (rv->file_id != 0)
			while (i < end && ls->honly[i].gsn < stashed_gsn(rv, root))
				i++;
		first = i;
		for (uint64 k = i; k < end; k++)
			if (!honly_present(kd, &ls->honly[k]))
			{
				gap = true;
				first = k + 1;
			}
		if (gap)
		{
			for (uint64 k = i; k < first; k++)
				if (honly_present(kd, &ls->honly[k]))
				{
					LoadHeapOnly *h = &ls->honly[k];

					armdb_version_clear(&armdb_keydir_page(kd, h->slot / ARMDB_SLOTS_PER_PAGE)->v[h->slot % ARMDB_SLOTS_PER_PAGE],
										h->slot);
				}
			if (!armdb_version_is_redirect(rv))
				armdb_version_clear(rv, root);
		}
		while (first < end && !honly_present(kd, &ls->honly[first]))
			first++;
		if (first < end)
		{
			LoadHeapOnly *h = &ls->honly[first];

			if (rv->file_id == 0 && !armdb_version_is_redirect(rv))
			{
				armdb_version_set_redirect(rv, (uint32) h->slot);
				rv->xmin = armdb_keydir_page(kd, h->slot / ARMDB_SLOTS_PER_PAGE)->v[h->slot % ARMDB_SLOTS_PER_PAGE].xmin;
			}
			else if (rv->file_id != 0)
				ls->honly[nkept++] = *h;	/* nkept <= first */
		}
		i = end;
	}
	ls->nhonly = nkept;
}

/*
 * A root kept with its end as xmax -- a running update, or on a standby a
 * committed one that older snapshots still see -- leads on to its chain's
 * next version, as its update made it: HEAP_HOT_UPDATED and that version's
 * slot.  The end's entry says so, unless a merge has kept it as a
 * tombstone, which names no newer version; then the chain's oldest version
 * left (rebuild_redirects) is the one.  Runs once the ends are marked.
 */
static void
relink_roots(ArmdbRelKeydir *kd, LoadState *ls)
{
	for (uint64 i = 0; i < ls->nhonly; i++)
	{
		LoadHeapOnly *h = &ls->honly[i];
		ArmdbVersion *rv = &armdb_keydir_page(kd, h->root / ARMDB_SLOTS_PER_PAGE)->v[h->root % ARMDB_SLOTS_PER_PAGE];

		if (rv->file_id != 0 && !(rv->infomask & HEAP_XMAX_INVALID) &&
			!HEAP_XMAX_IS_LOCKED_ONLY(rv->infomask) &&
			!(rv->infomask2 & (HEAP_HOT_UPDATED | HEAP_ONLY_TUPLE)) &&
			armdb_version_ctid(rv, h->root) == (uint32) h->root)
		{
			rv->infomask2 |= HEAP_HOT_UPDATED;
			armdb_version_set_ctid(rv, h->root, (uint32) h->slot,
								   ls->settings);
		}
	}
}

/*
 * Load kd from the relation's files; the caller holds kd->lock exclusively.
 * LOAD_PROMOTED rebuilds the shards of a keydir loaded during recovery (the
 * versions, which replay kept current, stay as they are, and readers may be
 * using them meanwhile: each shard changes under its own lock).
 */
static void
load_keydir(ArmdbRelKeydir *kd, RelFileNodeBackend rnode,
			const ArmdbStoreSettings *settings, LoadMode mode)
{
	uint32		recover_flags = ARMDB_RECOVER_MISSING_OK;
	uint64		max_gsn = 0;
	TransactionId removed_newest = InvalidTransactionId;
	uint64		live = 0;
	LoadState	ls;
	uint64	   *shard_bytes;
	uint64	   *shard_live_bytes;
	ArmdbFileStat **shard_fstats;
	int		   *shard_nfstats;
	char		persistence = RELPERSISTENCE_PERMANENT;
	bool		wal;

	if (mode == LOAD_STANDBY)
		recover_flags |= ARMDB_RECOVER_NO_CUT;	/* replay owns the files */
	else
	{
		if (armdb_shared->after_crash || mode == LOAD_PROMOTED)
			recover_flags |= ARMDB_RECOVER_AFTER_CRASH;
		if (settings->skip_damaged_entries)
			recover_flags |= ARMDB_RECOVER_SALVAGE;
	}

	/*
	 * The image of the keydir that a clean shutdown wrote (image.c) is taken
	 * away whatever the mode, before anything can change the files; only a
	 * normal load after a clean shutdown, not salvaging, uses it.
	 */
	if (armdb_keydir_image_load(kd, rnode, settings,
								mode == LOAD_NORMAL &&
								!armdb_shared->after_crash &&
								!settings->skip_damaged_entries))
		return;

	if (mode != LOAD_PROMOTED)
	{
		kd->nshards = armdb_rel_storage_read_meta(rnode, &persistence,
												  &kd->encrypted,
												  kd->storage_id);
		keydir_alloc(&kd->shards, sizeof(ArmdbShardRt) * kd->nshards,
					 "shard states", settings);
		kd->chunks = new_page_dir(ARMDB_PAGE_DIR_MIN, settings);
	}
	else
		(void) armdb_rel_storage_read_meta(rnode, &persistence, NULL, NULL);
	/* may a file started here (a salvage's seal) be WAL-logged? */
	wal = mode != LOAD_STANDBY && !RecoveryInProgress() &&
		rnode.backend == InvalidBackendId &&
		persistence == RELPERSISTENCE_PERMANENT;

	memset(&ls, 0, sizeof(ls));
	ls.mode = mode;
	ls.kd = kd;
	ls.settings = settings;
	shard_bytes = palloc0(sizeof(uint64) * kd->nshards);
	shard_live_bytes = palloc0(sizeof(uint64) * kd->nshards);
	shard_fstats = palloc0(sizeof(ArmdbFileStat *) * kd->nshards);
	shard_nfstats = palloc0(sizeof(int) * kd->nshards);
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbShardFiles *files;
		ArmdbRecoveryReport report;
		ArmdbError	err;

		if (mode != LOAD_PROMOTED)
			init_shard(rt, shard, settings);
		files = armdb_keydir_shard_files(kd, shard, settings);

		ls.shard = shard;
		ls.bytes = 0;
		ls.file_id = 0;
		ls.gaps = false;
		ls.fstats = NULL;
		ls.nfstats = ls.fstats_cap = 0;
		ls.last_pageno = PG_UINT64_MAX;
		ls.last_page = NULL;
		if (!armdb_recover_shard(armdb_backend_io(), files->dir,
								 settings->direct_io, recover_flags,
								 armdb_shard_files_auth(files), load_entry,
								 &ls, &report, &err))
			report_load_error(files->dir, &err);
		if (report.salvaged_files > 0)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb: skipped %llu damaged bytes in %u data files of \"%s\", first in \"%s\" at offset %llu",
							(unsigned long long) report.salvaged_bytes,
							report.salvaged_files, files->dir,
							report.first_salvaged,
							(unsigned long long) report.first_salvaged_offset),
					 errdetail("armdb.skip_damaged_entries is on: the rows whose entries were damaged are lost; a damaged tail was copied to a \".damaged\" file beside its data file.")));
		if (report.torn_tail && mode != LOAD_STANDBY)
			ereport(LOG,
					(errmsg("armdb: cut a torn tail of %llu bytes from data file %06u in \"%s\"",
							(unsigned long long) report.truncated_bytes,
							report.last_file_id, files->dir)));
		if (report.bad_hints > 0)
			ereport(LOG,
					(errmsg("armdb: ignored %u damaged hint files in \"%s\", first \"%s\"; the data files were scanned instead",
							report.bad_hints, files->dir,
							report.first_bad_hint)));
		/*
		 * The active file belongs in the list even with no entry yet.  It
		 * need not be the last file read (merge outputs may follow it), so
		 * look among all: a second, empty record of it would hide its dead
		 * versions from compaction's rule (3), and let a merge drop the
		 * endings that keep them dead.
		 */
		if (report.last_file_id != 0)
		{
			bool		listed = false;

			for (int i = 0; i < ls.nfstats && !listed; i++)
				listed = ls.fstats[i].file_id == report.last_file_id;
			if (!listed)
				(void) load_file_stat(&ls, report.last_file_id);
		}
		if (ls.nfstats > 0)
			qsort(ls.fstats, ls.nfstats, sizeof(ArmdbFileStat), cmp_file_stat);
#ifdef USE_ASSERT_CHECKING
		for (int i = 1; i < ls.nfstats; i++)
			Assert(ls.fstats[i].file_id != ls.fstats[i - 1].file_id);
#endif
		shard_fstats[shard] = ls.fstats;
		shard_nfstats[shard] = ls.nfstats;
		shard_bytes[shard] = ls.bytes;
		max_gsn = Max(max_gsn, report.max_gsn);

		if (mode == LOAD_PROMOTED)
			LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		rt->damaged = ls.gaps;
		load_shard_state(kd, rt, files, &report, mode, wal, settings);
		if (mode == LOAD_PROMOTED)
			LWLockRelease(&rt->lock);
	}

	/*
	 * Second pass: end the (older) versions that committed changes ended.
	 * An end by a transaction still running -- a prepared one, after a
	 * restart -- only marks the version as being deleted or updated by it,
	 * as heap's xmax does, once the records are unstashed below.
	 */
	for (uint64 i = 0; i < ls.nkills; i++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, ls.kills[i].slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion *v = NULL;
		bool		has_version;
		ArmdbEndEffect effect;

		if (page != NULL)
			v = &page->v[ls.kills[i].slot % ARMDB_SLOTS_PER_PAGE];
		has_version = v != NULL && v->file_id != 0;
		if (ls.kills[i].lock)
		{
			ls.kills[i].in_progress =
				armdb_winner_lock_applies(has_version,
										  has_version ? stashed_gsn(v, ls.kills[i].slot) : 0,
										  ls.kills[i].gsn);
			continue;
		}
		effect = armdb_winner_end_effect(has_version,
										 has_version ? stashed_gsn(v, ls.kills[i].slot) : 0,
										 ls.kills[i].gsn,
										 ls.kills[i].in_progress);
		if (effect != ARMDB_END_SETS_XMAX)
			ls.kills[i].in_progress = false;	/* nothing to mark below */
		if (effect == ARMDB_END_REMOVES)
		{
			armdb_version_clear(v, ls.kills[i].slot);
			/* the horizon of the slot's removal, for hot standbys */
			if (TransactionIdIsNormal(ls.kills[i].xid) &&
				(!TransactionIdIsValid(removed_newest) ||
				 TransactionIdFollows(ls.kills[i].xid, removed_newest)))
				removed_newest = ls.kills[i].xid;
		}
	}

	if (mode != LOAD_PROMOTED)
		rebuild_redirects(kd, &ls);

	/*
	 * Every page the files name was claimed by its shard above (and a
	 * redirect's root page allocated, damaged storage aside); what runs
	 * were claimed and never reserved durably, nobody used.  Each shard's
	 * next insert claims a new run past all of them: the slots left over in
	 * its last run before the restart are handed out again only once
	 * VACUUM has freed them (design §2).
	 */
	kd->next_page = Max(kd->next_page, pg_atomic_read_u64(&kd->npages));
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

		if (mode == LOAD_PROMOTED)
			LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		rt->next_slot = kd->next_page * ARMDB_SLOTS_PER_PAGE;
		rt->run_end = rt->next_slot;
		rt->run_pages = 0;
		rt->pending_pages = 0;
		if (mode == LOAD_PROMOTED)
			LWLockRelease(&rt->lock);
	}

	/*
	 * unstash; what no live version uses is dead bytes for compaction (a
	 * promoted keydir's records hold real values, and readers: they are
	 * only counted)
	 */
	if (mode != LOAD_STANDBY)
		kd->orphan_horizon = removed_newest;
	for (uint64 p = 0; p < pg_atomic_read_u64(&kd->npages); p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);

		if (page != NULL && mode == LOAD_PROMOTED)
			LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		for (int i = 0; page != NULL && i < ARMDB_SLOTS_PER_PAGE; i++)
		{
			ArmdbVersion *v = &page->v[i];
			uint32		shard;
			ArmdbFileStat *f;
			uint32		len;

			if (armdb_version_is_redirect(v))
				continue;		/* a HOT chain's root (rebuild_redirects) */
			if (v->file_id == 0)
			{
				/*
				 * A slot handed out before but without a version now:
				 * index entries may point at it, so it is not reused
				 * until VACUUM has removed them (design §2).
				 */
				if (mode != LOAD_STANDBY)
					v->infomask2 = ARMDB_V2_ORPHAN;
				continue;
			}
			if (mode != LOAD_PROMOTED)
			{
				v->xmax = InvalidTransactionId;
				armdb_version_set_cid(v, p * ARMDB_SLOTS_PER_PAGE + i,
									  FirstCommandId, settings);
			}
			live++;
			shard = armdb_page_shard(kd, p);
			len = armdb_version_len(v, p * ARMDB_SLOTS_PER_PAGE + i);
			shard_live_bytes[shard] += len;
			f = find_file_stat(shard_fstats[shard], shard_nfstats[shard],
							   v->file_id);
			if (f != NULL)
				f->dead_bytes += len;	/* live, for now: see below */
		}
		if (page != NULL && mode == LOAD_PROMOTED)
			LWLockRelease(&page->lock);
	}
	mark_running(kd, &ls);
	relink_roots(kd, &ls);
	/* the side arrays that only held gsns */
	for (uint64 p = 0; mode != LOAD_PROMOTED && p < pg_atomic_read_u64(&kd->npages); p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);

		if (page != NULL)
			armdb_page_release_extra(page, p);
	}
	if (ls.kills)
		pfree(ls.kills);
	if (ls.honly)
		pfree(ls.honly);
	for (uint32 shard = 0; shard < kd->nshards; shard++)
		pg_atomic_write_u64(&armdb_keydir_shard(kd, shard)->dead_bytes,
							shard_bytes[shard] - Min(shard_live_bytes[shard],
													 shard_bytes[shard]));
	pfree(shard_bytes);
	pfree(shard_live_bytes);

	/* each shard's file list: what no live version uses is dead */
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

		if (mode == LOAD_PROMOTED)
		{
			LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
			rt->nfiles = 0;		/* listed anew */
		}
		for (int i = 0; i < shard_nfstats[shard]; i++)
		{
			ArmdbFileStat *src = &shard_fstats[shard][i];
			ArmdbFileStat *f = armdb_files_lookup(rt, src->file_id, true);
			uint64		live_bytes = src->dead_bytes;
			uint64		version_bytes = src->dead_version_bytes;

			if (f == NULL)
			{
				if (mode == LOAD_PROMOTED)
					LWLockRelease(&rt->lock);
				armdb_keydir_report_full("a shard's file list", settings);
			}
			*f = *src;
			f->dead_bytes = src->total_bytes - Min(live_bytes, src->total_bytes);
			f->dead_version_bytes = version_bytes - Min(live_bytes, version_bytes);
			f->total_bytes = src->total_bytes + ARMDB_FILE_HEADER_SIZE;
			if (f->min_gsn == PG_UINT64_MAX)
				f->min_gsn = 0;
			if (src->file_id == rt->st.active_file_id)
				f->total_bytes = 0; /* still growing */
		}
		if (mode == LOAD_PROMOTED)
			LWLockRelease(&rt->lock);
		if (shard_fstats[shard] != NULL)
			pfree(shard_fstats[shard]);
	}
	pfree(shard_fstats);
	pfree(shard_nfstats);
	pg_atomic_write_u64(&kd->next_gsn, max_gsn + 1);
	pg_atomic_write_u64(&kd->nversions, live);
	/* snapshots older than these writers may need what the load left out */
	armdb_keydir_note_writer(kd, FullTransactionIdFromU64(ls.newest_fxid));
}

/* A keydir entry just inserted into the hash: empty, not loaded. */
static void
init_keydir_entry(ArmdbRelKeydir *kd)
{
	kd->generation = pg_atomic_fetch_add_u64(&armdb_shared->next_generation, 1);
	kd->nshards = 0;
	kd->loaded = false;
	kd->standby = false;
	kd->stale = false;
	kd->old_keys_merged = false;
	kd->relid = InvalidOid;
	LWLockInitialize(&kd->lock, armdb_shared->keydir_tranche_id);
	pg_atomic_init_u64(&kd->next_gsn, 1);
	pg_atomic_init_u64(&kd->npages, 0);
	pg_atomic_init_u64(&kd->nallocated, 0);
	kd->next_page = 0;
	kd->orphan_horizon = InvalidTransactionId;
	kd->damage_seen = false;
	pg_atomic_init_u64(&kd->last_used, (uint64) GetCurrentTimestamp());
	pg_atomic_init_u64(&kd->newest_writer, 0);
	pg_atomic_init_u32(&kd->vm_state, ARMDB_VM_UNKNOWN);
	pg_atomic_init_u32(&kd->vacuum_pruning, 0);
	pg_atomic_init_u64(&kd->nversions, 0);
	kd->shards = InvalidDsaPointer;
	kd->chunks = InvalidDsaPointer;
	kd->blocks = InvalidDsaPointer;
	kd->block_used = 0;
}

bool		armdb_keydir_use_counts = true;

ArmdbRelKeydir *
armdb_keydir_get(RelFileNodeBackend rnode, Oid relid,
				 const ArmdbStoreSettings *settings)
{
	ArmdbRelKey key;
	ArmdbRelKeydir *kd;
	bool		found;

	/* the data files may first need armdb's own replay (armdb_durable.c) */
	armdb_durable_startup_replay();

	/* once shutdown images are being written, nothing may change keydirs */
	if (pg_atomic_read_u32(&armdb_shared->images_writing) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("armdb is shutting down"),
				 errdetail("The key directories are being saved for the next start.")));

	armdb_rel_key(&key, rnode);
	/* every scan and fetch starts here: a shared partition lock when found */
	kd = dshash_find(keydir_table(), &key, false);
	if (kd == NULL)
	{
		/* its entry may need memory: with armdb.memory's current limit */
		(void) armdb_keydir_area_to_grow();
		kd = dshash_find_or_insert(keydir_table(), &key, &found);
		if (!found)
			init_keydir_entry(kd);
	}
	/*
	 * Under the partition lock: giving an idle keydir back checks the locks
	 * on this relation (a rewrite's keydir first had the transient table's)
	 */
	if (OidIsValid(relid))
		kd->relid = relid;
	dshash_release_lock(keydir_table(), kd);

	/*
	 * A use keeps it from being given back when idle; armdb's own workers'
	 * and autovacuum's do not (a compaction or a background load is no
	 * reason to keep it).
	 */
	if (armdb_keydir_use_counts && !IsAutoVacuumWorkerProcess())
	{
		/* (a procedure's statement runs on across its transactions) */
		TimestampTz stmt = Max(GetCurrentStatementStartTimestamp(),
							   GetCurrentTransactionStartTimestamp());

		if (stmt - (TimestampTz) pg_atomic_read_u64(&kd->last_used) >= USECS_PER_SEC)
			pg_atomic_write_u64(&kd->last_used, (uint64) stmt);
	}

	/* a restarted standby: not before replay is back where it was */
	if (!kd->loaded && RecoveryInProgress())
		armdb_durable_wait_for_replay();
	if (!kd->loaded || (kd->standby && !RecoveryInProgress()))
	{
		LWLockAcquire(&kd->lock, LW_EXCLUSIVE);
		if (!kd->loaded)
		{
			bool		standby = RecoveryInProgress();
			uint32		holdoff = InterruptHoldoffCount;

			/*
			 * What a load that a FATAL cut short left (an ERROR's is freed
			 * below): its process is gone, and nobody uses a keydir that is
			 * not loaded.
			 */
			if (DsaPointerIsValid(kd->shards) || DsaPointerIsValid(kd->chunks))
			{
				forget_shard_files(kd);
				free_keydir_memory(kd);
			}

			PG_TRY();
			{
				load_keydir(kd, rnode, settings,
							standby ? LOAD_STANDBY : LOAD_NORMAL);
			}
			PG_CATCH();
			{
				/*
				 * Leave nothing half-loaded behind, but keep the entry:
				 * others may be waiting for its lock.  The next use starts
				 * over (and most likely reports the same problem).
				 */
				forget_shard_files(kd);
				free_keydir_memory(kd);
				/* an ERROR zeroed it: as it was, for the release to match */
				InterruptHoldoffCount = holdoff;
				LWLockRelease(&kd->lock);
				PG_RE_THROW();
			}
			PG_END_TRY();
			kd->standby = standby;
			kd->stale = false;
			kd->loaded = true;
		}
		else if (kd->standby && !RecoveryInProgress())
		{
			/*
			 * Promoted: the shards become writable.  A failure leaves the
			 * keydir as it was, for reading, and the next use tries again.
			 */
			load_keydir(kd, rnode, settings, LOAD_PROMOTED);
			kd->standby = false;
		}
		LWLockRelease(&kd->lock);
	}
	if (kd->stale)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("armdb: replay could not keep the key directory of this table current: armdb.memory is full"),
				 errdetail("Queries that started before keep reading it; new ones cannot until the server restarts."),
				 errhint("Raise armdb.memory, and restart the server.")));
	return kd;
}

/* ----------------
 * Replay on a hot standby
 * ----------------
 *
 * A keydir that a standby's reader loaded is kept current by replay, in the
 * startup process, under the keydir's lock (which also keeps a reader from
 * loading it while replay changes its files): entries become versions and
 * ends as they are replayed, VACUUM's removals (XLOG_ARMDB_PRUNE) and
 * freezes free what no snapshot left can see, merges move locations.  A
 * replayed entry's transaction is running (its commit comes later in WAL),
 * so a version gets no hint bit and an end becomes its version's xmax, as
 * heap's redo leaves them: readers ask clog and their snapshots.
 *
 * Replay must not fail for a keydir: when armdb.memory is full, the keydir
 * is marked stale instead, with a WARNING.  Readers already using it get
 * what their snapshots can see (whatever replay adds later belongs to
 * transactions they see as running); new ones get an ERROR.
 */
ArmdbRelKeydir *
armdb_keydir_redo_acquire(RelFileNodeBackend rnode)
{
	ArmdbRelKey key;
	ArmdbRelKeydir *kd;
	bool		found;

	if (!InHotStandby)
		return NULL;
	armdb_rel_key(&key, rnode);
	kd = dshash_find(keydir_table(), &key, true);
	found = kd != NULL;
	if (kd == NULL)
	{
		MemoryContext mcxt = CurrentMemoryContext;
		uint32		holdoff = InterruptHoldoffCount;

		/*
		 * No memory for the entry: then no reader can have loaded the
		 * table, nor load it (it would need one too).  Replay must not fail
		 * for that: the caller holds no LWLock, so the hash's partition
		 * lock is the only one to let go.
		 */
		PG_TRY();
		{
			kd = dshash_find_or_insert(keydir_table(), &key, &found);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(mcxt);
			edata = CopyErrorData();
			FlushErrorState();
			InterruptHoldoffCount = holdoff;
			LWLockReleaseAll();
			ereport(WARNING,
					(errmsg("armdb redo: no key directory entry for relation %u/%u: %s",
							key.dbNode, key.relNode, edata->message)));
			FreeErrorData(edata);
			return NULL;
		}
		PG_END_TRY();
	}
	if (!found)
		init_keydir_entry(kd);
	dshash_release_lock(keydir_table(), kd);
	LWLockAcquire(&kd->lock, LW_EXCLUSIVE);
	return kd;
}

void
armdb_keydir_redo_release(ArmdbRelKeydir *kd)
{
	if (kd != NULL)
		LWLockRelease(&kd->lock);
}

/* Worth keeping current? */
static inline bool
redo_keeps(ArmdbRelKeydir *kd)
{
	return kd != NULL && kd->loaded && !kd->stale;
}

/* Replay cannot keep kd current (why): stale, with a WARNING, once. */
static void
redo_stale(ArmdbRelKeydir *kd, const char *why)
{
	if (kd->stale)
		return;
	kd->stale = true;
	ereport(WARNING,
			(errmsg("armdb redo: stopped keeping the key directory of relation %u/%u current: %s",
					kd->key.dbNode, kd->key.relNode, why),
			 errdetail("New queries on the table fail on this standby until it restarts.")));
}

/* An ERROR while keeping kd current: stale, with its message. */
static void
redo_went_stale(ArmdbRelKeydir *kd, MemoryContext mcxt, uint32 holdoff)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(mcxt);
	edata = CopyErrorData();
	FlushErrorState();
	/* the ERROR reset it; kd->lock is still held, and released later */
	InterruptHoldoffCount = holdoff;
	redo_stale(kd, edata->message);
	FreeErrorData(edata);
}

/* Replayed entries are running transactions' (their commits come later). */
static ArmdbXactFate
redo_entry_fate(void *arg, uint64 fxid)
{
	return ARMDB_XACT_IN_PROGRESS;
}

typedef struct RedoTarget
{
	ArmdbRelKeydir *kd;
	uint32		shard;			/* whose entries are replayed */
} RedoTarget;

static bool
redo_entry(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	RedoTarget *target = arg;
	ArmdbRelKeydir *kd = target->kd;
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));
	ArmdbEntryRole role;
	ArmdbPage  *page;
	ArmdbVersion *v;

	armdb_winner_classify(e, ARMDB_MAX_SLOTS, redo_entry_fate, NULL, &role);
	/* pages claimed by the primary (the redo holds kd->lock): as the load */
	if (!claim_entry_pages(kd, e, &role, target->shard, armdb_store_settings()))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "replayed entry at offset %u of data file %06u has slot %llu, whose page belongs to another shard than %u",
						   e->offset, e->file_id,
						   (unsigned long long) e->slot, target->shard);
	if (role.version)
	{
		page = page_for_slot(kd, e->slot, true, armdb_store_settings());
		/* what can fail, before the page's lock (redo_went_stale) */
		if (e->len >= ARMDB_LONG_ENTRY)
			armdb_page_prepare_extra_unlocked(page, e->slot / ARMDB_SLOTS_PER_PAGE,
											  armdb_store_settings());
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		v = &page->v[e->slot % ARMDB_SLOTS_PER_PAGE];
		if (v->file_id == 0)
			pg_atomic_fetch_add_u64(&kd->nversions, 1);
		armdb_version_set_len(v, e->slot, e->len, armdb_store_settings());
		v->file_id = e->file_id;
		v->offset = e->offset;
		v->xmin = xid;
		v->xmax = InvalidTransactionId;
		armdb_version_set_cid(v, e->slot, FirstCommandId, armdb_store_settings());
		v->infomask = HEAP_XMAX_INVALID;
		v->infomask2 = role.heap_only_root != ARMDB_INVALID_SLOT ?
			HEAP_ONLY_TUPLE : 0;
		armdb_version_set_ctid(v, e->slot, (uint32) e->slot,
							   armdb_store_settings());
		LWLockRelease(&page->lock);
	}
	if (role.ends != ARMDB_INVALID_SLOT &&
		(page = armdb_keydir_page(kd, role.ends / ARMDB_SLOTS_PER_PAGE)) != NULL)
	{
		if (role.newer != role.ends)
			armdb_page_prepare_extra_unlocked(page, role.ends / ARMDB_SLOTS_PER_PAGE,
											  armdb_store_settings());
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		v = &page->v[role.ends % ARMDB_SLOTS_PER_PAGE];
		if (v->file_id != 0)
			mark_ended(v, role.ends, xid, role.newer,
					   role.heap_only_root != ARMDB_INVALID_SLOT,
					   armdb_store_settings());
		LWLockRelease(&page->lock);
	}
	if (role.locks != ARMDB_INVALID_SLOT &&
		(page = armdb_keydir_page(kd, role.locks / ARMDB_SLOTS_PER_PAGE)) != NULL)
	{
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		v = &page->v[role.locks % ARMDB_SLOTS_PER_PAGE];
		if (v->file_id != 0)
			mark_locked(v, role.locks, lock_xmax(e), armdb_store_settings());
		LWLockRelease(&page->lock);
	}
	return true;
}

void
armdb_keydir_redo_append(ArmdbRelKeydir *kd, uint32 shard, uint32 file_id,
						 uint32 offset, const char *entries, uint32 len)
{
	MemoryContext mcxt = CurrentMemoryContext;
	uint32		holdoff = InterruptHoldoffCount;
	ArmdbShardRt *rt;
	bool		listed;

	if (!redo_keeps(kd) || shard >= kd->nshards)
		return;
	PG_TRY();
	{
		ArmdbScanResult acc;
		ArmdbParseResult stop;
		ArmdbError	err;
		RedoTarget	target = {kd, shard};

		memset(&acc, 0, sizeof(acc));
		if (!armdb_scan_buffer(entries, len, file_id, offset, redo_entry, &target,
							   &acc, &stop, &err))
			armdb_report_storage_error(ERROR, &err);
	}
	PG_CATCH();
	{
		redo_went_stale(kd, mcxt, holdoff);
	}
	PG_END_TRY();

	/*
	 * Where the shard's readers stop (nothing is buffered on a standby),
	 * and a new file in the shard's list: scans read the files listed, and
	 * a merge's outputs, listed with higher numbers, would hide a file
	 * started since from armdb_vstore_files_since().
	 */
	rt = armdb_keydir_shard(kd, shard);
	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	listed = armdb_files_lookup(rt, file_id, true) != NULL;
	if (file_id > rt->st.active_file_id ||
		(file_id == rt->st.active_file_id &&
		 (uint64) offset + len > rt->st.append_end))
	{
		rt->st.active_file_id = file_id;
		rt->st.append_end = rt->st.written_end = rt->st.buf_start =
			(uint64) offset + len;
	}
	LWLockRelease(&rt->lock);
	if (!listed)
		redo_stale(kd, "no room in armdb.memory for a shard's file list");
}

void
armdb_keydir_redo_prune(ArmdbRelKeydir *kd, const uint64 *slots, uint32 nslots)
{
	if (!redo_keeps(kd))
		return;
	for (uint32 i = 0; i < nslots; i++)
	{
		bool		redirect = (slots[i] & ARMDB_PRUNE_REDIRECT) != 0;
		uint64		slot = slots[i] & ~ARMDB_PRUNE_REDIRECT;
		ArmdbPage  *page = armdb_keydir_page(kd, slot / ARMDB_SLOTS_PER_PAGE);
		TransactionId target_xmin = InvalidTransactionId;
		ArmdbVersion *v;

		if (redirect && i + 1 >= nslots)
			elog(PANIC, "armdb redo: prune record ends inside a redirect");
		if (redirect)
		{
			/* the xmin of the version it names (armdb_redirect_xmin) */
			ArmdbPage  *tpage = armdb_keydir_page(kd, slots[i + 1] / ARMDB_SLOTS_PER_PAGE);

			if (tpage != NULL)
			{
				LWLockAcquire(&tpage->lock, LW_SHARED);
				if (tpage->v[slots[i + 1] % ARMDB_SLOTS_PER_PAGE].file_id != 0)
					target_xmin = tpage->v[slots[i + 1] % ARMDB_SLOTS_PER_PAGE].xmin;
				LWLockRelease(&tpage->lock);
			}
		}
		if (page == NULL)
		{
			i += redirect;
			continue;
		}
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		v = &page->v[slot % ARMDB_SLOTS_PER_PAGE];
		if (v->file_id != 0)
		{
			if (pg_atomic_read_u64(&kd->nversions) > 0)
				pg_atomic_fetch_sub_u64(&kd->nversions, 1);
		}
		armdb_version_clear(v, slot);
		if (redirect)
		{
			/* a HOT chain's root, now redirecting (armdb_hot.c) */
			armdb_version_set_redirect(v, (uint32) slots[++i]);
			v->xmin = target_xmin;
		}
		/* as the primary's VACUUM frees it */
		armdb_page_release_extra(page, slot / ARMDB_SLOTS_PER_PAGE);
		LWLockRelease(&page->lock);
	}
}

/*
 * What VACUUM's freezing did on the primary: below cutoff, committed xmins
 * are frozen, versions whose insert aborted or whose end committed are
 * gone, and other xmaxs (locks, aborted ends) are cleared, so that nothing
 * left needs clog below cutoff (which may be truncated later).
 */
void
armdb_keydir_redo_freeze(ArmdbRelKeydir *kd, TransactionId cutoff)
{
	uint64		removed = 0;

	if (!redo_keeps(kd))
		return;
	for (uint64 p = 0; p < pg_atomic_read_u64(&kd->npages); p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);

		if (page == NULL)
			continue;
		LWLockAcquire(&page->lock, LW_EXCLUSIVE);
		for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
		{
			ArmdbVersion *v = &page->v[i];
			bool		gone = false;

			if (v->file_id == 0)
				continue;
			if (TransactionIdIsNormal(v->xmin) &&
				TransactionIdPrecedes(v->xmin, cutoff) &&
				!(v->infomask & HEAP_XMIN_INVALID) &&
				((v->infomask & HEAP_XMIN_COMMITTED) ||
				 TransactionIdDidCommit(v->xmin)))
				v->infomask |= HEAP_XMIN_FROZEN;
			else if (TransactionIdIsNormal(v->xmin) &&
					 TransactionIdPrecedes(v->xmin, cutoff) &&
					 !(v->infomask & HEAP_XMIN_COMMITTED))
				gone = true;	/* its insert aborted */
			if (!gone && !(v->infomask & HEAP_XMAX_INVALID) &&
				TransactionIdIsNormal(v->xmax) &&
				TransactionIdPrecedes(v->xmax, cutoff))
			{
				if (!(v->infomask & HEAP_XMAX_IS_MULTI) &&
					!HEAP_XMAX_IS_LOCKED_ONLY(v->infomask) &&
					((v->infomask & HEAP_XMAX_COMMITTED) ||
					 TransactionIdDidCommit(v->xmax)))
					gone = true;
				else
				{
					v->infomask &= ~(HEAP_XMAX_COMMITTED | HEAP_XMAX_IS_MULTI |
									 HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY);
					v->infomask |= HEAP_XMAX_INVALID;
					v->xmax = InvalidTransactionId;
					armdb_version_set_ctid(v, p * ARMDB_SLOTS_PER_PAGE + i,
										   (uint32) (p * ARMDB_SLOTS_PER_PAGE + i),
										   NULL);
				}
			}
			/*
			 * A version of a HOT chain stays: the chain would break.  The
			 * primary's pruning removes it (armdb_keydir_redo_prune).
			 */
			if (gone && (v->infomask2 & (HEAP_HOT_UPDATED | HEAP_ONLY_TUPLE)))
				gone = false;
			if (gone)
			{
				armdb_version_clear(v, p * ARMDB_SLOTS_PER_PAGE + i);
				removed++;
			}
		}
		armdb_page_release_extra(page, p);
		LWLockRelease(&page->lock);
	}
	pg_atomic_fetch_sub_u64(&kd->nversions,
							Min(removed, pg_atomic_read_u64(&kd->nversions)));
}

bool
armdb_keydir_move_version(ArmdbRelKeydir *kd, const ArmdbMergeMove *mv)
{
	ArmdbPage  *page = armdb_keydir_page(kd, mv->entry.slot / ARMDB_SLOTS_PER_PAGE);
	ArmdbVersion *v;
	bool		moved = false;

	if (page == NULL)
		return false;
	LWLockAcquire(&page->lock, LW_EXCLUSIVE);
	v = &page->v[mv->entry.slot % ARMDB_SLOTS_PER_PAGE];
	if (v->file_id == mv->entry.file_id && v->offset == mv->entry.offset &&
		armdb_version_len(v, mv->entry.slot) == mv->entry.len)
	{
		v->file_id = mv->new_file_id;
		v->offset = mv->new_offset;
		moved = true;
	}
	LWLockRelease(&page->lock);
	return moved;
}

/*
 * A replayed merge committed: the versions it moved point at its outputs,
 * which take the inputs' place in the shard's file list.
 */
void
armdb_keydir_redo_merge(ArmdbRelKeydir *kd, uint32 shard, const ArmdbMerge *m)
{
	ArmdbShardRt *rt;
	ArmdbFileStat *outs;
	bool		ok;

	if (!redo_keeps(kd) || shard >= kd->nshards)
		return;
	for (uint64 i = 0; i < m->nmoves; i++)
		if (armdb_gsn_is_version(m->moves[i].entry.gsn))
			(void) armdb_keydir_move_version(kd, &m->moves[i]);
	outs = palloc0(sizeof(ArmdbFileStat) * Max(m->noutputs, 1));
	for (int i = 0; i < m->noutputs; i++)
	{
		outs[i].file_id = m->outputs[i];
		outs[i].total_bytes = m->output_sizes[i];
	}
	rt = armdb_keydir_shard(kd, shard);
	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	ok = armdb_files_replace(rt, m->inputs, m->ninputs, outs, m->noutputs);
	LWLockRelease(&rt->lock);
	pfree(outs);
	/* else scans would miss the outputs */
	if (!ok)
		redo_stale(kd, "no room in armdb.memory for a shard's file list");
}

/*
 * What DSA takes for an allocation of size bytes: more than 8 kB, whole
 * 4 kB pages; else the smallest of its size classes that holds it (the
 * classes of PostgreSQL 15's dsa.c, dsa_size_classes[]).
 */
int64
armdb_keydir_alloc_cost(Size size)
{
	static const uint16 classes[] = {
		8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
		320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1560, 1816, 2048,
		2616, 3120, 3640, 4096, 5456, 6552, 7280, 8192
	};

	if (size == 0)
		return 0;
	if (size > 8192)
		return (int64) TYPEALIGN(4096, size);
	for (int i = 0; i < lengthof(classes); i++)
		if (size <= classes[i])
			return classes[i];
	return 8192;
}

/*
 * The caller keeps kd from being dropped: it holds a lock on its relation,
 * or its hash partition.  Shards are read under their locks first, then the
 * pages under kd->lock (the order of armdb_keydir_claim_pages' locks).
 */
void
armdb_keydir_memory(ArmdbRelKeydir *kd, ArmdbKeydirMemory *mem)
{
	dsa_area   *area = armdb_keydir_area();
	bool		loaded;

	memset(mem, 0, sizeof(*mem));
	/* its hash entry, a dshash item header before it */
	mem->other_bytes = armdb_keydir_alloc_cost(sizeof(ArmdbRelKeydir) + 16);

	/*
	 * A keydir being loaded (its lock held exclusively, for seconds maybe)
	 * has shard states half made, and a failed load frees them: count only
	 * loaded ones, which keep their shards until they are dropped.
	 */
	if (!LWLockConditionalAcquire(&kd->lock, LW_SHARED))
		return;
	loaded = kd->loaded;
	LWLockRelease(&kd->lock);
	if (!loaded)
		return;
	mem->versions = (int64) pg_atomic_read_u64(&kd->nversions);
	if (DsaPointerIsValid(kd->shards))
	{
		mem->other_bytes += armdb_keydir_alloc_cost(sizeof(ArmdbShardRt) * kd->nshards);
		for (uint32 shard = 0; shard < kd->nshards; shard++)
		{
			ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

			LWLockAcquire(&rt->lock, LW_SHARED);
			if (DsaPointerIsValid(rt->buf_dp))
				mem->buffer_bytes += armdb_keydir_alloc_cost(rt->st.buf_size);
			if (DsaPointerIsValid(rt->files))
				mem->other_bytes += armdb_keydir_alloc_cost(sizeof(ArmdbFileStat) * rt->files_cap);
			if (DsaPointerIsValid(rt->free_slots))
				mem->other_bytes += armdb_keydir_alloc_cost(sizeof(uint32) * rt->free_cap);
			LWLockRelease(&rt->lock);
		}
	}
	LWLockAcquire(&kd->lock, LW_SHARED);
	if (DsaPointerIsValid(kd->chunks))
	{
		ArmdbPageDir *dir = dsa_get_address(area, kd->chunks);

		for (ArmdbPageDir *d = dir; d != NULL;
			 d = DsaPointerIsValid(d->retired) ? dsa_get_address(area, d->retired) : NULL)
			mem->other_bytes += armdb_keydir_alloc_cost(offsetof(ArmdbPageDir, chunk) +
										 sizeof(dsa_pointer) * d->nchunks);
		for (uint32 c = 0; c < dir->nchunks; c++)
		{
			ArmdbPageChunk *chunk;

			if (!DsaPointerIsValid(dir->chunk[c]))
				continue;
			mem->other_bytes += armdb_keydir_alloc_cost(sizeof(ArmdbPageChunk));
			chunk = dsa_get_address(area, dir->chunk[c]);
			for (int p = 0; p < ARMDB_PAGES_PER_CHUNK; p++)
			{
				if (!DsaPointerIsValid(chunk->pages[p]))
					continue;
				mem->pages++;
				if (!((ArmdbPage *) dsa_get_address(area, chunk->pages[p]))->in_block)
					mem->page_bytes += armdb_keydir_alloc_cost(sizeof(ArmdbPage));
				mem->page_bytes += extra_cost(dsa_get_address(area, chunk->pages[p]));
			}
		}
		for (dsa_pointer b = kd->blocks; DsaPointerIsValid(b);
			 b = ((ArmdbPageBlock *) dsa_get_address(area, b))->next)
			mem->page_bytes += armdb_keydir_alloc_cost(sizeof(ArmdbPageBlock));
	}
	LWLockRelease(&kd->lock);
}

/* what a page's side array costs, if it has one */
static int64
extra_cost(const ArmdbPage *page)
{
	if (!DsaPointerIsValid(page->extra))
		return 0;
	return armdb_keydir_alloc_cost(sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE);
}

int64
armdb_keydir_page_cost(const ArmdbPage *page)
{
	if (page->in_block)
		return armdb_keydir_alloc_cost(sizeof(ArmdbPageBlock)) / ARMDB_PAGES_PER_BLOCK +
			extra_cost(page);
	return armdb_keydir_alloc_cost(sizeof(ArmdbPage)) + extra_cost(page);
}

typedef struct TotalBytes
{
	int64		bytes;
	int64		keydirs;
} TotalBytes;

static void
add_keydir_bytes(ArmdbRelKeydir *kd, void *arg)
{
	TotalBytes *total = arg;

	total->bytes += armdb_keydir_bytes(kd);
	total->keydirs++;
}

int64
armdb_keydir_total_bytes(int64 *nkeydirs)
{
	TotalBytes	total = {0};

	armdb_keydir_foreach(add_keydir_bytes, &total);
	if (nkeydirs)
		*nkeydirs = total.keydirs;
	return total.bytes;
}

int64
armdb_keydir_bytes(ArmdbRelKeydir *kd)
{
	ArmdbKeydirMemory mem;

	armdb_keydir_memory(kd, &mem);
	return mem.page_bytes + mem.buffer_bytes + mem.other_bytes;
}

ArmdbRelKeydir *
armdb_keydir_find(const ArmdbRelKey *key, uint64 generation)
{
	ArmdbRelKeydir *kd = dshash_find(keydir_table(), key, false);

	if (kd == NULL)
		return NULL;
	dshash_release_lock(keydir_table(), kd);
	if (kd->generation != generation || !kd->loaded)
		return NULL;
	return kd;
}

ArmdbRelKeydir *
armdb_keydir_find_pinned(const ArmdbRelKey *key, uint64 generation)
{
	ArmdbRelKeydir *kd = dshash_find(keydir_table(), key, false);

	if (kd != NULL && (kd->generation != generation || !kd->loaded))
	{
		dshash_release_lock(keydir_table(), kd);
		kd = NULL;
	}
	return kd;
}

void
armdb_keydir_unpin(ArmdbRelKeydir *kd)
{
	dshash_release_lock(keydir_table(), kd);
}

void
free_keydir_memory(ArmdbRelKeydir *kd)
{
	dsa_area   *area = armdb_keydir_area();

	pg_atomic_fetch_add_u64(&armdb_shared->keydir_drops, 1);
	pg_atomic_write_u64(&kd->npages, 0);
	pg_atomic_write_u64(&kd->nallocated, 0);
	kd->next_page = 0;
	if (DsaPointerIsValid(kd->chunks))
	{
		ArmdbPageDir *dir = dsa_get_address(area, kd->chunks);
		dsa_pointer dp;

		for (uint32 c = 0; c < dir->nchunks; c++)
		{
			ArmdbPageChunk *chunk;

			if (!DsaPointerIsValid(dir->chunk[c]))
				continue;
			chunk = dsa_get_address(area, dir->chunk[c]);
			for (int p = 0; p < ARMDB_PAGES_PER_CHUNK; p++)
			{
				ArmdbPage  *page;

				if (!DsaPointerIsValid(chunk->pages[p]))
					continue;
				page = dsa_get_address(area, chunk->pages[p]);
				if (DsaPointerIsValid(page->extra))
					dsa_free(area, page->extra);
				if (!page->in_block)
					dsa_free(area, chunk->pages[p]);
			}
			dsa_free(area, dir->chunk[c]);
		}
		/* the blocks the other pages were in */
		while (DsaPointerIsValid(kd->blocks))
		{
			dp = kd->blocks;
			kd->blocks = ((ArmdbPageBlock *) dsa_get_address(area, dp))->next;
			dsa_free(area, dp);
		}
		kd->block_used = 0;
		/* the directory and those it replaced */
		dp = kd->chunks;
		while (DsaPointerIsValid(dp))
		{
			dsa_pointer retired = ((ArmdbPageDir *) dsa_get_address(area, dp))->retired;

			dsa_free(area, dp);
			dp = retired;
		}
	}
	if (DsaPointerIsValid(kd->shards))
	{
		for (uint32 shard = 0; shard < kd->nshards; shard++)
		{
			ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

			if (DsaPointerIsValid(rt->buf_dp))
				dsa_free(area, rt->buf_dp);
			if (DsaPointerIsValid(rt->free_slots))
				dsa_free(area, rt->free_slots);
			armdb_files_free(rt);
		}
		dsa_free(area, kd->shards);
	}
	kd->chunks = InvalidDsaPointer;
	kd->shards = InvalidDsaPointer;
	kd->nshards = 0;
	kd->loaded = false;
}

/* ----------------
 * Giving back idle keydirs
 * ----------------
 *
 * A table nobody uses keeps its keydir until it is dropped or the server
 * restarts; a small one costs a page of version records (12 kB) and its
 * shards' states for nothing.  The flusher gives back those of small
 * tables no session used for armdb.keydir_idle_timeout; the next use loads
 * them again from their files, in a few milliseconds.
 *
 * Nothing may be using the keydir: every user holds a lock on the relation
 * (armdb_keydir_get's contract; those that hold none pin it, see
 * armdb_keydir_find_pinned), so the flusher locks the keydir's hash
 * partition exclusively and gives it back only if nobody holds a lock on
 * the relation (it takes none itself: an AccessExclusiveLock would be
 * WAL-logged for standbys, from a process with no transaction).  And
 * nothing may be lost: only shards whose entries are all in their files
 * and synced are given back, the flusher syncing them first (its durable
 * LSN covers the shards it syncs: a keydir it no longer sees must have
 * nothing left to sync).  What memory alone held -- VACUUM's
 * free slots, HOT redirects, hint bits -- the load rebuilds or VACUUM
 * finds again, as after a restart.
 */
typedef struct EvictCandidate
{
	ArmdbRelKey key;
	uint64		generation;
	Oid			relid;
} EvictCandidate;

typedef struct EvictScan
{
	int64		now;
	int			idle_ms;
	TransactionId horizon;		/* older xids' outcomes all snapshots see */
	FullTransactionId next_fxid;
	void		(*settle) (ArmdbRelKeydir *kd, void *arg);
	void	   *settle_arg;
	EvictCandidate *items;
	int			n;
	int			cap;
} EvictScan;

/*
 * Does every snapshot see the outcome of every transaction that wrote to
 * kd?  Then none needs a version the load would leave out (a committed end
 * removes its version).  Before that, a snapshot older than the reload
 * could miss a row.
 */
static bool
writers_settled(ArmdbRelKeydir *kd, const EvictScan *scan)
{
	uint64		newest = pg_atomic_read_u64(&kd->newest_writer);
	uint64		next = U64FromFullTransactionId(scan->next_fxid);
	/* the horizon as a full xid: it is at most 2^31 xids before next */
	uint64		horizon = next -
		(uint32) (XidFromFullTransactionId(scan->next_fxid) - scan->horizon);

	/* (a writer that began after next was read is never settled) */
	return newest < horizon;
}

static void
note_evict_candidate(ArmdbRelKeydir *kd, void *arg)
{
	EvictScan  *scan = arg;

	if (kd->stale || !OidIsValid(kd->relid) ||
		pg_atomic_read_u64(&kd->nallocated) >= ARMDB_EVICT_MAX_PAGES ||
		scan->now - (int64) pg_atomic_read_u64(&kd->last_used) <
		(int64) scan->idle_ms * 1000 ||
		!writers_settled(kd, scan))
		return;
	/* its entries in its files, synced (the flusher syncs only now and then) */
	scan->settle(kd, scan->settle_arg);
	if (scan->n == scan->cap)
	{
		scan->cap = Max(64, scan->cap * 2);
		scan->items = scan->items == NULL ?
			palloc(sizeof(EvictCandidate) * scan->cap) :
			repalloc(scan->items, sizeof(EvictCandidate) * scan->cap);
	}
	scan->items[scan->n].key = kd->key;
	scan->items[scan->n].generation = kd->generation;
	scan->items[scan->n].relid = kd->relid;
	scan->n++;
}

/* Are all of kd's entries in their files, synced?  Nobody else uses it. */
static bool
keydir_at_rest(ArmdbRelKeydir *kd)
{
	bool		at_rest = true;

	for (uint32 shard = 0; at_rest && shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

		if (!LWLockConditionalAcquire(&rt->lock, LW_SHARED))
			return false;
		at_rest = !rt->st.failed &&
			rt->st.written_end == rt->st.append_end &&
			(rt->st.active_file_id == 0 ||
			 rt->st.flushed == armdb_shard_end(&rt->st));
		if (at_rest && rt->swapped_manifest != 0)
		{
			char		dir[MAXPGPATH];
			char		path[MAXPGPATH];

			/* a merge the compaction worker has yet to finish, unlocked */
			armdb_shard_dir_path(dir, armdb_keydir_rnode(kd), shard);
			armdb_file_path(path, dir, rt->swapped_manifest, ARMDB_FILE_MERGE);
			at_rest = access(path, F_OK) != 0 && errno == ENOENT;
		}
		LWLockRelease(&rt->lock);
	}
	return at_rest;
}

/*
 * Does anybody hold a lock on the relation?  Granted locks of any mode,
 * fast-path ones included, and prepared transactions' where they keep the
 * virtual transaction id that GetLockConflicts() reports (15.18 does).
 * Where they do not, a keydir given back under a prepared transaction is
 * loaded again as after a restart: its changes and row locks as the
 * prepared transaction's, which is what t/009 and t/033 check.
 */
static bool
relation_unlocked(Oid db, Oid relid)
{
	LOCKTAG		tag;
	int			n;
	VirtualTransactionId *holders;

	SET_LOCKTAG_RELATION(tag, db, relid);
	holders = GetLockConflicts(&tag, AccessExclusiveLock, &n);
	pfree(holders);
	return n == 0;
}

/*
 * Give back one candidate's keydir if it still is what was seen.  Its hash
 * partition is locked exclusively first: a session that locks the relation
 * after the check below then finds no keydir and loads it anew, and one
 * that locked it before is seen by the check.
 */
static bool
evict_keydir(const EvictCandidate *c, const EvictScan *scan)
{
	int64		now = scan->now;
	int			idle_ms = scan->idle_ms;
	ArmdbRelKeydir *kd = dshash_find(keydir_table(), &c->key, true);
	bool		freed = false;

	if (kd == NULL)
		return false;
	if (kd->generation == c->generation && kd->loaded && !kd->standby &&
		!kd->stale && kd->relid == c->relid &&
		now - (int64) pg_atomic_read_u64(&kd->last_used) >= (int64) idle_ms * 1000 &&
		writers_settled(kd, scan) &&
		relation_unlocked(c->key.dbNode, c->relid) &&
		keydir_at_rest(kd))
	{
		freed = true;
		forget_shard_files(kd);
		free_keydir_memory(kd);
		dshash_delete_entry(keydir_table(), kd);
	}
	else
		dshash_release_lock(keydir_table(), kd);
	return freed;
}

int
armdb_keydir_evict_idle(int64 now, int idle_ms,
						void (*settle) (ArmdbRelKeydir *kd, void *arg),
						void *arg)
{
	EvictScan	scan;
	int			freed = 0;

	if (idle_ms <= 0 || RecoveryInProgress())
		return 0;
	memset(&scan, 0, sizeof(scan));
	scan.now = now;
	scan.idle_ms = idle_ms;
	scan.settle = settle;
	scan.settle_arg = arg;
	/* (all databases' snapshots, replication slots and standbys' feedback) */
	scan.horizon = GetOldestNonRemovableTransactionId(NULL);
	scan.next_fxid = ReadNextFullTransactionId();
	if (!TransactionIdIsValid(scan.horizon))
		return 0;
	armdb_keydir_foreach_loaded(note_evict_candidate, &scan);
	for (int i = 0; i < scan.n; i++)
		if (evict_keydir(&scan.items[i], &scan))
			freed++;
	if (scan.items != NULL)
		pfree(scan.items);
	return freed;
}

void
armdb_keydir_drop(RelFileNodeBackend rnode)
{
	ArmdbRelKey key;
	ArmdbRelKeydir *kd;

	armdb_rel_key(&key, rnode);
	kd = dshash_find(keydir_table(), &key, true);
	if (kd == NULL)
		return;
	forget_shard_files(kd);
	free_keydir_memory(kd);
	dshash_delete_entry(keydir_table(), kd);
}

/* DROP DATABASE: forget every keydir of the database (nobody uses them). */
void
armdb_keydir_drop_database(Oid db)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;

	dshash_seq_init(&status, keydir_table(), true);
	while ((kd = dshash_seq_next(&status)) != NULL)
	{
		if (kd->key.dbNode != db)
			continue;
		forget_shard_files(kd);
		free_keydir_memory(kd);
		dshash_delete_current(&status);
	}
	dshash_seq_term(&status);
}

void
armdb_keydir_drop_backend_temp(void)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;

	if (armdb_shared == NULL)
		return;
	dshash_seq_init(&status, keydir_table(), true);
	while ((kd = dshash_seq_next(&status)) != NULL)
	{
		if (kd->key.backend != MyBackendId || kd->key.dbNode != MyDatabaseId)
			continue;
		forget_shard_files(kd);
		free_keydir_memory(kd);
		dshash_delete_current(&status);
	}
	dshash_seq_term(&status);
}

/*
 * The databases that have permanent relations with a loaded keydir for
 * which filter (if not NULL) says true (for the compaction launcher),
 * palloc'd, without duplicates.  filter runs with a dshash partition lock
 * held: it must not take locks or raise errors.
 */
Oid *
armdb_keydir_databases(int *ndbs, bool (*filter) (ArmdbRelKeydir *kd,
												   void *arg),
					   void *arg)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;
	int			max = 16;
	Oid		   *dbs = palloc(sizeof(Oid) * max);

	*ndbs = 0;
	/* the partition locks held keep every keydir seen from being dropped */
	dshash_seq_init(&status, keydir_table(), false);
	while ((kd = dshash_seq_next(&status)) != NULL)
	{
		bool		seen = false;

		if (kd->key.backend != InvalidBackendId || !kd->loaded ||
			(filter != NULL && !filter(kd, arg)))
			continue;
		for (int i = 0; i < *ndbs && !seen; i++)
			seen = dbs[i] == kd->key.dbNode;
		if (seen)
			continue;
		if (*ndbs == max)
		{
			max *= 2;
			dbs = repalloc(dbs, sizeof(Oid) * max);
		}
		dbs[(*ndbs)++] = kd->key.dbNode;
	}
	dshash_seq_term(&status);
	return dbs;
}

/* The relfilenodes of db's permanent relations with a keydir, palloc'd. */
Oid *
armdb_keydir_relnodes(Oid db, int *nrels)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;
	int			max = 16;
	Oid		   *rels = palloc(sizeof(Oid) * max);

	*nrels = 0;
	dshash_seq_init(&status, keydir_table(), false);
	while ((kd = dshash_seq_next(&status)) != NULL)
	{
		if (kd->key.backend != InvalidBackendId || kd->key.dbNode != db)
			continue;
		if (*nrels == max)
		{
			max *= 2;
			rels = repalloc(rels, sizeof(Oid) * max);
		}
		rels[(*nrels)++] = kd->key.relNode;
	}
	dshash_seq_term(&status);
	return rels;
}

void
armdb_keydir_foreach(void (*fn) (ArmdbRelKeydir *kd, void *arg), void *arg)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;

	dshash_seq_init(&status, keydir_table(), false);
	while ((kd = dshash_seq_next(&status)) != NULL)
		fn(kd, arg);
	dshash_seq_term(&status);
}

void
armdb_keydir_foreach_loaded(void (*fn) (ArmdbRelKeydir *kd, void *arg),
							void *arg)
{
	dshash_seq_status status;
	ArmdbRelKeydir *kd;

	dshash_seq_init(&status, keydir_table(), false);
	while ((kd = dshash_seq_next(&status)) != NULL)
	{
		/* a standby's keydir has nothing to write until promoted and used */
		if (kd->loaded && !kd->standby && kd->key.backend == InvalidBackendId)
			fn(kd, arg);
	}
	dshash_seq_term(&status);
}
