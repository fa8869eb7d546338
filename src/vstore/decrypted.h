/*-------------------------------------------------------------------------
 *
 * decrypted.h
 *	  The decrypted cache: plaintext images of regions of encrypted data
 *	  files, for sequential scans.
 *
 * Why.  Encryption at rest is at the boundary between memory and files:
 * heap under PostgreSQL's encryption designs keeps plaintext pages in
 * shared buffers and decrypts a page once, when it is read in.  armdb reads
 * its files through the page cache, which holds what the files hold --
 * ciphertext -- so every scan of an encrypted table authenticated and
 * decrypted every row it returned again: ~60 ns a row, a quarter of a scan
 * of small rows, more than any per-entry AES-GCM can shed.
 * A scan now keeps what it decrypted: the next scan of the same file
 * copies the plaintext instead of reading and opening the entries again.
 *
 * What is cached.  Images of the regions (256 kB) of encrypted data files
 * that scans read: the entries that start in a region, each opened
 * (authenticated and decrypted) and its CRC made that of the plaintext, at
 * the offsets they have in the file, so that a reader parses an image as
 * it parses the file.  Sequential scans, serial (vstore.h's cursor) and
 * parallel (spans of virtual pages), make them and read them.  Only bytes
 * that were on disk when the scan read them are imaged: a data file grows by
 * appends and never changes what it holds (the block the next append
 * rewrites keeps the bytes before it), so an image stays right for as long
 * as its file exists, the active file's too.  A key names the data file by
 * its random salt besides its number, shard and storage id, so an image
 * can never be taken for another file's, even where a number is used again
 * after a merge removed its first file (a standby's cache outlives the
 * primary's restarts).  Images of removed files are never asked for again
 * and age out (clock sweep).  A crash empties the cache with the rest of
 * shared memory, before recovery cuts a torn tail.
 *
 * What it costs.  armdb.decrypted_cache_size of memory (decrypted.c),
 * taken only on a server started with encryption keys; plaintext rows in
 * memory, as heap's in shared buffers.  A byte changed in a file after its
 * region was imaged is found when the region is read from the file again
 * (after its image was replaced, or a restart), not before -- as a
 * changed block of a heap page in shared buffers.  A scan of a table
 * larger than most of the cache makes no images (vstore.c: images_fit()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_VSTORE_DECRYPTED_H
#define ARMDB_VSTORE_DECRYPTED_H

#include "storage/cipher.h"

/*
 * An image holds the entries that start in one region of its file, from
 * the first one its maker met (the region's first, or a later one): the
 * last may run past the region's end, by MARGIN at most.
 */
#define ARMDB_DECRYPTED_REGION		(256 * 1024)
#define ARMDB_DECRYPTED_MARGIN		(64 * 1024)
#define ARMDB_DECRYPTED_SLOT_SIZE	(ARMDB_DECRYPTED_REGION + ARMDB_DECRYPTED_MARGIN)

typedef struct ArmdbDecryptedKey
{
	uint8		salt[ARMDB_CIPHER_SALT_LEN];	/* the data file's header's */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	uint32		shard;
	uint32		file_id;
	uint64		region;			/* offset / ARMDB_DECRYPTED_REGION */
} ArmdbDecryptedKey;

/* armdb.decrypted_cache_size, kB */
extern int	armdb_decrypted_cache_kb;

/* _PG_init: the shared memory hooks. */
extern void armdb_decrypted_init(void);

/* Is there a cache (a server started with keys and a size)? */
extern bool armdb_decrypted_enabled(void);

/* The bytes of file regions the cache holds at most. */
extern uint64 armdb_decrypted_capacity(void);

/*
 * If key's image holds file offset from: copy its bytes from there up to
 * to (or its end, if sooner) into buf, with *end where the copy ends: 1.
 * 0: no image holds from.  -1: the copy failed, buf partly written.
 */
extern int	armdb_decrypted_copy(const ArmdbDecryptedKey *key, uint64 from,
								 uint64 to, char *buf, uint64 *end);

/*
 * Keep len bytes at image as key's image, starting at file offset first:
 * the entries that start in key's region from first on.  An image kept
 * already stays unless this one starts sooner, or as soon and goes on
 * further.
 */
extern void armdb_decrypted_store(const ArmdbDecryptedKey *key, uint64 first,
								  const char *image, size_t len);

/* Counters: lookups that found an image, lookups that did not, images kept. */
extern void armdb_decrypted_counters(uint64 *hits, uint64 *misses,
									 uint64 *stored, int *slots);

#endif							/* ARMDB_VSTORE_DECRYPTED_H */
