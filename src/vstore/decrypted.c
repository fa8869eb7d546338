/*-------------------------------------------------------------------------
 *
 * decrypted.c
 *	  The decrypted cache (decrypted.h): slots of plaintext region images,
 *	  found through a shared hash table, replaced by a clock sweep.
 *
 * The images' bytes are in a memory file (memfd) the postmaster makes and
 * every backend inherits (close-on-exec: no program a backend runs sees
 * it), copied in and out with pwrite and pread, not in a shared memory
 * mapping: a process maps a page of shared memory at its first touch, a
 * page fault each, and scans are often new processes (parallel workers,
 * new connections) -- the faults cost more than decrypting the rows, as
 * much as the cache saved; the kernel copies a file's pages without any.
 *
 * One LWLock guards the hash table, the slots' keys and the clock hand; a
 * slot's bytes are copied in and out outside it, under a pin that keeps
 * the sweep away.  A slot is published (its length set, under the lock)
 * only once its bytes are all there, so a reader never copies half an
 * image.  No ereport happens while a pin is held, so a pin needs no
 * resource-owner cleanup: a backend that dies holding one makes the
 * postmaster reinitialize shared memory anyway.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "vstore/decrypted.h"

/* the clock sweep's count: uses a slot survives without being read */
#define MAX_USAGE		5

typedef struct DecryptedSlot
{
	ArmdbDecryptedKey key;
	bool		in_use;			/* key is in the hash table */
	uint64		first;			/* file offset of the image's first byte */
	uint32		len;			/* bytes of image; 0: being filled */
	pg_atomic_uint32 pins;		/* backends copying in or out */
	pg_atomic_uint32 usage;
} DecryptedSlot;

typedef struct DecryptedShared
{
	LWLock	   *lock;
	int			nslots;
	int			hand;			/* the clock sweep's next slot */
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	pg_atomic_uint64 stored;
	DecryptedSlot slots[FLEXIBLE_ARRAY_MEMBER];
} DecryptedShared;

typedef struct DecryptedEntry
{
	ArmdbDecryptedKey key;		/* hash key: first */
	int			slot;
} DecryptedEntry;

int			armdb_decrypted_cache_kb = 128 * 1024;

static DecryptedShared *cache = NULL;
static HTAB *cache_hash = NULL;
static int	cache_fd = -1;		/* the images' bytes: a memfd the
								 * postmaster made, inherited */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Slots of this server: none without keys (nothing is encrypted). */
static int
cache_slots(void)
{
	if (armdb_keyring.nkeys == 0)
		return 0;
	return (int) Min((int64) armdb_decrypted_cache_kb * 1024 /
					 ARMDB_DECRYPTED_SLOT_SIZE, INT_MAX / 2);
}

static Size
shared_size(int nslots)
{
	return add_size(offsetof(DecryptedShared, slots),
					mul_size(nslots, sizeof(DecryptedSlot)));
}

static void
decrypted_shmem_request(void)
{
	int			nslots = cache_slots();

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	if (nslots == 0)
		return;
	RequestAddinShmemSpace(shared_size(nslots));
	RequestAddinShmemSpace(hash_estimate_size(nslots, sizeof(DecryptedEntry)));
	RequestNamedLWLockTranche("armdb decrypted cache", 1);
}

static void
decrypted_shmem_startup(void)
{
	int			nslots = cache_slots();
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (nslots == 0)
		return;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cache = ShmemInitStruct("armdb decrypted cache", shared_size(nslots),
							&found);
	if (!found)
	{
		memset(cache, 0, shared_size(nslots));
		cache->lock = &(GetNamedLWLockTranche("armdb decrypted cache"))->lock;
		cache->nslots = nslots;
		pg_atomic_init_u64(&cache->hits, 0);
		pg_atomic_init_u64(&cache->misses, 0);
		pg_atomic_init_u64(&cache->stored, 0);
		for (int i = 0; i < nslots; i++)
		{
			pg_atomic_init_u32(&cache->slots[i].pins, 0);
			pg_atomic_init_u32(&cache->slots[i].usage, 0);
		}
	}
	if (!found)
	{
		/* (a reinitialization after a crash starts an empty file) */
		if (cache_fd >= 0)
			close(cache_fd);
		cache_fd = memfd_create("armdb decrypted cache", MFD_CLOEXEC);
		if (cache_fd < 0 ||
			ftruncate(cache_fd, (off_t) nslots * ARMDB_DECRYPTED_SLOT_SIZE) != 0)
		{
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("armdb could not create its decrypted cache: %m"),
					 errdetail("Sequential scans of encrypted tables decrypt every row they read.")));
			if (cache_fd >= 0)
				close(cache_fd);
			cache_fd = -1;
			cache->nslots = 0;
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ArmdbDecryptedKey);
	info.entrysize = sizeof(DecryptedEntry);
	cache_hash = ShmemInitHash("armdb decrypted cache hash", nslots, nslots,
							   &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
armdb_decrypted_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = decrypted_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = decrypted_shmem_startup;
}

bool
armdb_decrypted_enabled(void)
{
	return cache != NULL && cache->nslots > 0 && cache_fd >= 0;
}

uint64
armdb_decrypted_capacity(void)
{
	return armdb_decrypted_enabled() ?
		(uint64) cache->nslots * ARMDB_DECRYPTED_REGION : 0;
}

/* Where slot's bytes are in the data file. */
static inline off_t
slot_offset(int slot)
{
	return (off_t) slot * ARMDB_DECRYPTED_SLOT_SIZE;
}

int
armdb_decrypted_copy(const ArmdbDecryptedKey *key, uint64 from, uint64 to,
					 char *buf, uint64 *end)
{
	DecryptedSlot *s = NULL;
	DecryptedEntry *e;
	int			slot = -1;
	ssize_t		copied;

	if (!armdb_decrypted_enabled())
		return 0;
	LWLockAcquire(cache->lock, LW_SHARED);
	e = hash_search(cache_hash, key, HASH_FIND, NULL);
	if (e != NULL)
	{
		DecryptedSlot *c = &cache->slots[e->slot];

		if (c->len > 0 && from >= c->first && from < c->first + c->len)
		{
			slot = e->slot;
			s = c;
			*end = Min(to, s->first + s->len);
			pg_atomic_fetch_add_u32(&s->pins, 1);
			if (pg_atomic_read_u32(&s->usage) < MAX_USAGE)
				pg_atomic_fetch_add_u32(&s->usage, 1);
		}
	}
	LWLockRelease(cache->lock);
	if (s == NULL)
	{
		pg_atomic_fetch_add_u64(&cache->misses, 1);
		return 0;
	}
	copied = pread(cache_fd, buf, *end - from,
				   slot_offset(slot) + (off_t) (from - s->first));
	pg_atomic_fetch_sub_u32(&s->pins, 1);
	if (copied != (ssize_t) (*end - from))
	{
		pg_atomic_fetch_add_u64(&cache->misses, 1);
		return -1;
	}
	pg_atomic_fetch_add_u64(&cache->hits, 1);
	return 1;
}

/* A slot to replace, under the lock held exclusively; -1 if all are pinned. */
static int
sweep(void)
{
	for (int tries = 0; tries < cache->nslots * (MAX_USAGE + 1); tries++)
	{
		int			i = cache->hand;
		DecryptedSlot *s = &cache->slots[i];
		uint32		usage;

		cache->hand = (cache->hand + 1) % cache->nslots;
		if (pg_atomic_read_u32(&s->pins) > 0)
			continue;
		usage = pg_atomic_read_u32(&s->usage);
		if (usage > 0)
		{
			pg_atomic_write_u32(&s->usage, usage - 1);
			continue;
		}
		return i;
	}
	return -1;
}

void
armdb_decrypted_store(const ArmdbDecryptedKey *key, uint64 first,
					  const char *image, size_t len)
{
	DecryptedSlot *s;
	DecryptedEntry *e;
	bool		found;
	ssize_t		written;
	int			slot;

	if (!armdb_decrypted_enabled() || len == 0 ||
		len > ARMDB_DECRYPTED_SLOT_SIZE)
		return;
	LWLockAcquire(cache->lock, LW_EXCLUSIVE);
	e = hash_search(cache_hash, key, HASH_FIND, NULL);
	if (e != NULL)
	{
		s = &cache->slots[e->slot];
		/*
		 * one that starts sooner, or as soon and goes as far, stays; so
		 * does one being filled or copied
		 */
		if (s->first < first || (s->first == first && s->len >= len) ||
			s->len == 0 || pg_atomic_read_u32(&s->pins) > 0)
		{
			LWLockRelease(cache->lock);
			return;
		}
		slot = e->slot;
	}
	else
	{
		if ((slot = sweep()) < 0)
		{
			/* every slot is being copied */
			LWLockRelease(cache->lock);
			return;
		}
		s = &cache->slots[slot];
		if (s->in_use)
			(void) hash_search(cache_hash, &s->key, HASH_REMOVE, NULL);
		s->in_use = false;
		e = hash_search(cache_hash, key, HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			LWLockRelease(cache->lock);
			return;
		}
		e->slot = slot;
		s->key = *key;
		s->in_use = true;
	}
	s->first = first;
	s->len = 0;
	pg_atomic_write_u32(&s->usage, 1);
	pg_atomic_write_u32(&s->pins, 1);
	LWLockRelease(cache->lock);

	written = pwrite(cache_fd, image, len, slot_offset(slot));

	/* published, once whole: readers take the length under the lock */
	LWLockAcquire(cache->lock, LW_EXCLUSIVE);
	if (written == (ssize_t) len)
		s->len = (uint32) len;
	else
	{
		/* (out of memory for the file: the slot stays empty) */
		(void) hash_search(cache_hash, &s->key, HASH_REMOVE, NULL);
		s->in_use = false;
	}
	LWLockRelease(cache->lock);
	pg_atomic_fetch_sub_u32(&s->pins, 1);
	if (written == (ssize_t) len)
		pg_atomic_fetch_add_u64(&cache->stored, 1);
}

void
armdb_decrypted_counters(uint64 *hits, uint64 *misses, uint64 *stored,
						 int *slots)
{
	*hits = *misses = *stored = 0;
	*slots = 0;
	if (!armdb_decrypted_enabled())
		return;
	*hits = pg_atomic_read_u64(&cache->hits);
	*misses = pg_atomic_read_u64(&cache->misses);
	*stored = pg_atomic_read_u64(&cache->stored);
	*slots = cache->nslots;
}
