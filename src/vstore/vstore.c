/*-------------------------------------------------------------------------
 *
 * vstore.c
 *	  The version store's writer, reader, shard cursor and freezing (see
 *	  vstore.h for the interface; group commit is in vstore_commit.c).
 *
 * Writes go to a shard's write buffer under the shard lock, through the
 * storage layer's armdb_shard_append(); every entry header is built by
 * append_entry(), which allocates the gsn.  A data file that an append
 * sealed (rotation) is noted, and its hint file built once the lock is
 * released, since that reads the whole file (until a background worker
 * takes this over).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "armdb.h"
#include "keydir/files.h"
#include "keydir/relstorage.h"
#include "storage/hint.h"
#include "storage/merge.h"
#include "storage/recovery.h"
#include "vstore/decrypted.h"
#include "vstore/vstore.h"
#include "vstore/vstore_internal.h"
#include "wal/armdb_durable.h"
#include "wal/armdb_wal.h"

/* read size of a shard's files; a serial scan reads all shards at once */
#define SCAN_CHUNK_SIZE		(256 * 1024)

/* ----------------
 * Hint files of sealed data files
 * ----------------
 */

/*
 * Data files sealed by this backend's appends (rotation), whose hint files
 * are still to be written.  Appends note them under the shard lock.  With
 * the compaction worker running, it builds them (a hint reads the whole
 * file: about a second per GB a writer would otherwise spend); otherwise
 * the backend does, once the lock is released.  Each names its keydir
 * (relation and generation): storage dropped meanwhile (TRUNCATE, a
 * rewrite, DROP, by any backend) needs no hint any more.
 */
#define MAX_PENDING_HINTS	16
static struct
{
	ArmdbRelKey relkey;
	uint64		generation;
	char		dir[MAXPGPATH];
	uint32		file_id;
	uint32		shard;
	bool		encrypted;		/* then authenticated with storage_id */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
}			pending_hints[MAX_PENDING_HINTS];
static int	npending_hints = 0;

void
armdb_vstore_log_hint(const ArmdbRelKey *key, uint32 shard, uint32 file_id)
{
	/* a standby builds its own (temporary relations never reach WAL) */
	if (key->backend == InvalidBackendId && !RecoveryInProgress())
		armdb_wal_log_hint(key->dbNode, key->relNode, shard, file_id);
}

static void
note_sealed(ArmdbRelKeydir *kd, ArmdbShardRt *rt, ArmdbShardFiles *files,
			uint32 sealed_file_id, const ArmdbStoreSettings *settings)
{
	ArmdbFileStat *f;

	if (sealed_file_id == 0)
		return;
	/* the shard's file list learns of it at once (the caller holds the lock) */
	f = armdb_files_lookup(rt, sealed_file_id, true);
	if (f != NULL && settings->hints_by_worker)
	{
		f->flags |= ARMDB_FSTAT_NEEDS_HINT;
		return;					/* the compaction worker writes it */
	}
	if (npending_hints == MAX_PENDING_HINTS)
		return;					/* without a hint, recovery scans the file */
	pending_hints[npending_hints].relkey = kd->key;
	pending_hints[npending_hints].generation = kd->generation;
	strlcpy(pending_hints[npending_hints].dir, files->dir, MAXPGPATH);
	pending_hints[npending_hints].encrypted = files->encrypt;
	memcpy(pending_hints[npending_hints].storage_id, files->storage_id,
		   sizeof(files->storage_id));
	pending_hints[npending_hints].file_id = sealed_file_id;
	pending_hints[npending_hints].shard = rt->st.shard_no;
	npending_hints++;
}

/*
 * Write the hint files of the sealed data files.  A failure is only a
 * warning: a hint is a shortcut for recovery, which scans the data file
 * without one.
 */
void
armdb_vstore_build_sealed_hints(const ArmdbStoreSettings *settings)
{
	while (npending_hints > 0)
	{
		ArmdbError	err;
		int			i = --npending_hints;
		ArmdbFileAuth auth = {&armdb_keyring, pending_hints[i].storage_id,
		pending_hints[i].shard, pending_hints[i].encrypted};
		bool		use_auth = auth.encrypted || armdb_keyring.nkeys > 0;

		/* dropped since: nothing to do (and its files may be gone) */
		if (armdb_keydir_find(&pending_hints[i].relkey,
							  pending_hints[i].generation) == NULL)
			continue;
		if (armdb_hint_build(armdb_backend_io(), pending_hints[i].dir,
							 pending_hints[i].file_id, settings->direct_io,
							 false, use_auth ? &auth : NULL, &err))
			armdb_vstore_log_hint(&pending_hints[i].relkey,
								  pending_hints[i].shard,
								  pending_hints[i].file_id);
		else
			ereport(WARNING,
					(errmsg("armdb: could not write the hint file of data file %06u in \"%s\": %s",
							pending_hints[i].file_id, pending_hints[i].dir,
							err.message),
					 errdetail("Recovery will scan the data file instead.")));
	}
}

/* ----------------
 * Writing
 * ----------------
 */

/*
 * Get a shard ready for an append: its write buffer on the first one, and
 * armdb.max_file_size as this backend sees it now, so that a reload applies
 * from the next append on (the file being appended to is closed when the
 * next entry would pass the new size).  Caller holds the shard lock
 * exclusively.
 */
static void
shard_prepare(ArmdbRelKeydir *kd, ArmdbShardRt *rt, uint32 shard,
			  const ArmdbStoreSettings *settings)
{
	uint32		max_file_size = settings->max_file_size;

	if (rt->st.buf_ref == 0)
	{
		bool		first = !rt->buf_released;

		armdb_keydir_shard_buffer(kd, rt, settings);
		if (first)
			armdb_shard_state_init(&rt->st, shard, rt->st.buf_ref,
								   rt->st.buf_size, max_file_size);
	}
	rt->st.max_file_size = Max(max_file_size, ARMDB_MIN_FILE_SIZE);
}

/*
 * WAL batches.  Entries appended in one batch (armdb_vstore_append_begin()
 * with batch: a multi-insert) that follow each other in one data file go
 * into WAL as one record instead of one each.  The record must be in WAL
 * before any of its entries can reach the file, so it is logged (and the
 * shard's wal_lsn raised) before the batch grows past the file or
 * WAL_BATCH_MAX_BYTES, by the shard's write barrier before it flushes WAL
 * (a write-out or rotation in the middle of the batch), at the batch's end,
 * and by the caller's error handler, which still holds the shard lock
 * (armdb_vstore_log_batch()): entries left in the shared write buffer
 * without their record would reach the file in another backend's
 * write-out.  One batch at a time per backend: it is only ever open under
 * the shard lock.
 */
#define WAL_BATCH_MAX_BYTES		(256 * 1024)

static struct
{
	ArmdbShardRt *rt;			/* NULL: no batch pending */
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	ArmdbLocation loc;			/* the first entry's place; len: all */
	char	   *bytes;			/* the entries */
	uint32		cap;
}			wal_batch;

void
armdb_vstore_log_batch(ArmdbShardRt *rt)
{
	XLogRecPtr	lsn;

	if (wal_batch.rt == NULL || (rt != NULL && wal_batch.rt != rt))
		return;
	lsn = armdb_wal_log_entries(wal_batch.dbNode, wal_batch.relNode,
								wal_batch.shard, &wal_batch.loc,
								wal_batch.bytes);
	wal_batch.rt->wal_lsn = Max(wal_batch.rt->wal_lsn, lsn);
	wal_batch.rt = NULL;
}

/* Add an entry placed at loc (hdr sealed) to the backend's batch. */
static void
batch_add(ArmdbVstoreAppend *ap, const ArmdbLocation *loc,
		  const ArmdbEntryHeader *hdr, const void *value)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);

	if (wal_batch.rt != NULL &&
		(wal_batch.rt != ap->rt || wal_batch.loc.file_id != loc->file_id ||
		 wal_batch.loc.offset + wal_batch.loc.len != loc->offset ||
		 wal_batch.loc.len + loc->len > WAL_BATCH_MAX_BYTES))
		armdb_vstore_log_batch(NULL);
	if (wal_batch.rt == NULL)
	{
		wal_batch.rt = ap->rt;
		wal_batch.dbNode = ap->kd->key.dbNode;
		wal_batch.relNode = ap->kd->key.relNode;
		wal_batch.shard = ap->shard;
		wal_batch.loc = *loc;
		wal_batch.loc.len = 0;
	}
	if (wal_batch.loc.len + loc->len > wal_batch.cap)
	{
		uint32		cap = Max(wal_batch.loc.len + loc->len, WAL_BATCH_MAX_BYTES);

		wal_batch.bytes = wal_batch.bytes == NULL ?
			MemoryContextAllocHuge(TopMemoryContext, cap) :
			repalloc_huge(wal_batch.bytes, cap);
		wal_batch.cap = cap;
	}
	memcpy(wal_batch.bytes + wal_batch.loc.len, hdr, hsize);
	if (hdr->value_len > 0)
		memcpy(wal_batch.bytes + wal_batch.loc.len + hsize, value,
			   hdr->value_len);
	wal_batch.loc.len += loc->len;
}

/*
 * Append one entry: the only place an entry header is built.  The gsn is
 * allocated here, under the shard lock, so that a shard's entries are in
 * gsn order; flags are ARMDB_GSN_FLAG_* (0 for a version).  Caller holds
 * the shard lock exclusively.
 */
static void
append_entry(ArmdbVstoreAppend *ap, uint64 flags, FullTransactionId fxid,
			 uint64 slot, uint64 root_slot, uint64 prev_slot,
			 const void *value, uint32 value_len, ArmdbLocation *loc)
{
	ArmdbEntryHeader hdr;
	ArmdbError	err;
	uint32		sealed;

	/* an idle keydir is given back only once every snapshot sees it */
	if (FullTransactionIdIsValid(fxid))
		armdb_keydir_note_writer(ap->kd, fxid);
	memset(&hdr, 0, sizeof(hdr));
	hdr.value_len = value_len;
	hdr.gsn = (pg_atomic_fetch_add_u64(&ap->kd->next_gsn, 1) & ARMDB_GSN_MAX) |
		flags;
	hdr.xid = U64FromFullTransactionId(fxid);
	hdr.slot = slot;
	hdr.root_slot = root_slot;
	hdr.prev_slot = prev_slot;
	/*
	 * Room in the shard's file list for the file this entry may begin, and
	 * the one it may close, before anything is placed: both must be in the
	 * list (files.h), and nothing may fail between the placing and the
	 * entry's WAL record.  (The one it closes joined the list with its own
	 * first entry, unless it was found at a load: room for two.)
	 */
	if (armdb_shard_append_may_begin_file(&ap->rt->st, ap->files, value_len) &&
		!armdb_files_reserve(ap->rt, 2))
	{
		armdb_error(&err, ARMDB_ERR_NOMEM, 0,
					"no room in armdb.memory for the list of a shard's files");
		armdb_report_storage_error(ERROR, &err);
	}
	/* an encrypted table's value comes back as its ciphertext */
	if (!armdb_shard_append_place(&ap->rt->st, ap->files, &hdr, &value, loc,
								  &sealed, &err))
		armdb_report_storage_error(ERROR, &err);
	note_sealed(ap->kd, ap->rt, ap->files, sealed, ap->settings);
	if (loc->offset == ARMDB_FILE_HEADER_SIZE)
		(void) armdb_files_lookup(ap->rt, loc->file_id, true);
	if (ap->wal && loc->offset == ARMDB_FILE_HEADER_SIZE)
	{
		/* a new file: its header first (an encrypted file's key, cipher.h) */
		armdb_vstore_log_batch(NULL);
		Assert(ap->rt->st.buf_start == 0);
		armdb_wal_log_file(ap->kd->key.dbNode, ap->kd->key.relNode, ap->shard,
						   loc->file_id, armdb_shard_buf(&ap->rt->st));
	}
	if (ap->wal && ap->batch)
		batch_add(ap, loc, &hdr, value);
	else if (ap->wal)
	{
		XLogRecPtr	lsn = armdb_wal_log_append(ap->kd->key.dbNode,
											   ap->kd->key.relNode,
											   ap->shard, loc, &hdr, value);

		ap->rt->wal_lsn = Max(ap->rt->wal_lsn, lsn);
	}
	if (!armdb_shard_append_copy(&ap->rt->st, ap->files, &hdr, value, &err))
		armdb_report_storage_error(ERROR, &err);
}

/*
 * Slot reuse invariant (design §2): a slot is never handed to a new version
 * while an index entry may point at it.  Index entries are WAL-logged, but
 * the entries of a transaction that never commits may never reach the data
 * files, so after a restart the files alone cannot say which slots were
 * handed out.  A shard therefore claims a run of pages (keydir.h) and
 * reserves their slots with a reservation entry made durable before any of
 * them is used; recovery starts past every page a reservation names.  The
 * runs grow from one page to ARMDB_RESERVE_PAGES, so that a small table
 * has no holes in its block numbers and a large one pays one fsync per
 * 37,248 slots.  Caller holds the shard lock exclusively.
 */
static void
reserve_slots(ArmdbVstoreAppend *ap)
{
	ArmdbShardRt *rt = ap->rt;
	ArmdbLocation loc;
	ArmdbError	err;
	ArmdbPos	reached;
	uint64		first;
	uint64		last;

	/*
	 * Claimed pages stay the shard's even if the reservation fails below
	 * (its entry, once appended, names them): the next attempt retries the
	 * same run, so that a full disk does not use up block numbers.
	 */
	if (rt->pending_pages == 0)
	{
		uint32		npages = Min(Max(rt->run_pages * 2, 1), ARMDB_RESERVE_PAGES);

		rt->pending_first =
			armdb_keydir_claim_pages(ap->kd, ap->shard, npages, ap->settings) *
			ARMDB_SLOTS_PER_PAGE;
		rt->pending_pages = npages;
		rt->pending_appended = false;
	}
	first = rt->pending_first;
	last = first + (uint64) rt->pending_pages * ARMDB_SLOTS_PER_PAGE - 1;
	if (!rt->pending_appended)
	{
		append_entry(ap, ARMDB_GSN_FLAG_RESERVE, InvalidFullTransactionId, last,
					 first, ARMDB_INVALID_SLOT, NULL, 0, &loc);
		rt->pending_appended = true;
	}
	if (!armdb_shard_write_out(&rt->st, ap->files, &reached, &err) ||
		!armdb_shard_sync(&rt->st, ap->files, reached, &err))
		armdb_report_storage_error(rt->st.failed ? data_sync_elevel(ERROR) : ERROR,
								   &err);
	armdb_shard_note_flushed(&rt->st, reached);
	rt->run_pages = rt->pending_pages;
	rt->pending_pages = 0;
	rt->next_slot = first;
	rt->run_end = last + 1;
}

void
armdb_vstore_append_begin(ArmdbVstoreAppend *ap, ArmdbRelKeydir *kd,
						  uint32 shard, bool wal,
						  const ArmdbStoreSettings *settings)
{
	ap->kd = kd;
	ap->shard = shard;
	ap->rt = armdb_keydir_shard(kd, shard);
	ap->files = armdb_vstore_shard_files(kd, shard, settings);
	ap->settings = settings;
	ap->wal = wal;
	ap->batch = false;
	Assert(!wal || kd->key.backend == InvalidBackendId);

	LWLockAcquire(&ap->rt->lock, LW_EXCLUSIVE);
}

void
armdb_vstore_append_end(ArmdbVstoreAppend *ap)
{
	ArmdbPos	end;

	armdb_vstore_log_batch(ap->rt);
	if (ap->wal && !armdb_durable_gate_held())
	{
		ArmdbPos	reached;
		ArmdbError	err;

		/*
		 * No checkpoint gate: a checkpoint may complete any moment, and
		 * must find these entries in their file (after WAL up to their
		 * records, the shard's write barrier).
		 */
		if (!armdb_shard_write_out(&ap->rt->st, ap->files, &reached, &err))
			armdb_report_storage_error(ERROR, &err);
	}
	end = armdb_shard_end(&ap->rt->st);
	LWLockRelease(&ap->rt->lock);
	armdb_vstore_note_write(ap->kd, ap->shard, end, ap->wal);
}

void
armdb_vstore_append_version(ArmdbVstoreAppend *ap, uint64 slot,
							uint64 root_slot, uint64 prev_slot,
							FullTransactionId fxid, const void *image,
							uint32 len, uint64 value_flags, ArmdbLocation *loc)
{
	Assert((value_flags & ~ARMDB_GSN_FLAG_SHORT_TUPLE) == 0);
	shard_prepare(ap->kd, ap->rt, ap->shard, ap->settings);
	append_entry(ap, value_flags, fxid, slot, root_slot, prev_slot, image,
				 len, loc);
}

uint64
armdb_vstore_insert(ArmdbVstoreAppend *ap, const void *image, uint32 len,
					uint64 value_flags, uint64 prev_slot, uint64 root_slot,
					FullTransactionId fxid, ArmdbLocation *loc)
{
	ArmdbShardRt *rt = ap->rt;
	uint64		slot;

	/*
	 * (sizes of the whole row: a shortened image left out its first bytes;
	 * an encrypted one has its tag to fit too)
	 */
	if (len > ARMDB_MAX_VALUE_LEN - (ap->kd->encrypted ? ARMDB_ENCRYPTED_TAG_LEN : 0))
	{
		uint32		omitted = ARMDB_TUPLE_OMITTED(value_flags);

		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row is too big: size %llu, maximum size %u",
						(unsigned long long) len + omitted,
						ARMDB_MAX_VALUE_LEN + omitted -
						(ap->kd->encrypted ? ARMDB_ENCRYPTED_TAG_LEN : 0))));
	}

	shard_prepare(ap->kd, rt, ap->shard, ap->settings);
	if (rt->nfree > 0)
	{
		/* a slot VACUUM freed: no index entry points at it any more */
		slot = ((uint32 *) dsa_get_address(armdb_keydir_area(),
										   rt->free_slots))[rt->nfree - 1];
	}
	else
	{
		if (rt->next_slot >= rt->run_end)
			reserve_slots(ap);
		slot = rt->next_slot;
	}
	/* may ERROR: memory */
	(void) armdb_keydir_page_for_slot(ap->kd, slot, ap->settings);

	armdb_vstore_append_version(ap, slot,
								root_slot == ARMDB_INVALID_SLOT ? slot : root_slot,
								prev_slot, fxid, image, len, value_flags, loc);

	/* the slot is used up even if this transaction aborts */
	if (rt->nfree > 0)
		rt->nfree--;
	else
		rt->next_slot++;
	return slot;
}

void
armdb_vstore_append_tombstone(ArmdbRelKeydir *kd, uint32 shard, uint64 slot,
							  FullTransactionId fxid, bool wal,
							  const ArmdbStoreSettings *settings)
{
	ArmdbVstoreAppend ap;
	ArmdbLocation loc;

	armdb_vstore_append_begin(&ap, kd, shard, wal, settings);
	shard_prepare(kd, ap.rt, shard, settings);
	append_entry(&ap, ARMDB_GSN_FLAG_TOMBSTONE, fxid, slot, slot,
				 ARMDB_INVALID_SLOT, NULL, 0, &loc);
	armdb_vstore_append_end(&ap);
	armdb_vstore_build_sealed_hints(settings);
}

void
armdb_vstore_append_locks(ArmdbRelKeydir *kd, uint32 shard,
						  const ArmdbRowLock *locks, int nlocks, bool wal,
						  const ArmdbStoreSettings *settings)
{
	ArmdbVstoreAppend ap;
	ArmdbLocation loc;

	armdb_vstore_append_begin(&ap, kd, shard, wal, settings);
	ap.batch = nlocks > 1;
	PG_TRY();
	{
		shard_prepare(kd, ap.rt, shard, settings);
		for (int i = 0; i < nlocks; i++)
		{
			uint64		bits = locks[i].infomask & ARMDB_LOCK_XMAX_BITS;

			if (locks[i].infomask2 & HEAP_KEYS_UPDATED)
				bits |= ARMDB_LOCK_KEYS_UPDATED;
			append_entry(&ap, ARMDB_GSN_FLAG_LOCK, locks[i].fxid,
						 locks[i].slot, locks[i].xmax, bits, NULL, 0, &loc);
		}
	}
	PG_CATCH();
	{
		/* entries in the shared buffer never go without their record */
		armdb_vstore_log_batch(ap.rt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	armdb_vstore_append_end(&ap);
	armdb_vstore_build_sealed_hints(settings);
}

/* ----------------
 * The decrypted cache (decrypted.h)
 * ----------------
 */

/* A backend's room to make an image in. */
static char *image_room = NULL;

/*
 * The key of data file file_id's images, if scans keep them: an encrypted
 * file of an encrypted table, in a shard not salvaged.  A header that
 * cannot be read here only means no images: the scan reads the file as
 * without them, and says what is wrong where it meets it.
 */
static bool
image_key(ArmdbRelKeydir *kd, uint32 shard, ArmdbShardFiles *files,
		  uint32 file_id, ArmdbDecryptedKey *key)
{
	uint8		salt[ARMDB_CIPHER_SALT_LEN];

	if (!armdb_decrypted_enabled() || !files->encrypt ||
		armdb_keydir_shard(kd, shard)->damaged ||
		!armdb_shard_file_salt(files, file_id, salt))
		return false;
	memset(key, 0, sizeof(*key));
	memcpy(key->salt, salt, sizeof(salt));
	memcpy(key->storage_id, files->storage_id, sizeof(key->storage_id));
	key->shard = shard;
	key->file_id = file_id;
	return true;
}

/*
 * Are the relation's files small enough to keep images of?  A scan of a
 * table larger than most of the cache would replace every image before
 * the next scan came back to it -- all the cost and none of the gain --
 * and push out the images of tables that fit: it reads as without the
 * cache (as heap's large scans go through a ring of buffers).
 */
static bool
images_fit(ArmdbRelKeydir *kd)
{
	uint64		bytes = 0;

	for (uint32 i = 0; i < kd->nshards; i++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, i);

		LWLockAcquire(&rt->lock, LW_SHARED);
		bytes += armdb_files_bytes(rt);
		LWLockRelease(&rt->lock);
	}
	return bytes <= armdb_decrypted_capacity() / 4 * 3;
}

static void
keep_image(ArmdbDecryptedKey *key, uint64 region, uint64 first, uint64 end)
{
	key->region = region;
	armdb_decrypted_store(key, first, image_room, end - first);
}

/*
 * Make and keep the images of the regions of file_id whose entries buf
 * holds, from the entry at from on: buf holds the file's bytes from
 * buf_off up to limit.  Each entry is opened and its CRC made that of its
 * plaintext.  A region's image is kept once the walk reached the region's
 * end (the next entry starts past it): never the first part only of a
 * region whose rest a later read would find, which would keep that reader
 * from keeping the whole -- so the last region of a file is not kept
 * while its end is in it (the active file's, which grows, and a sealed
 * file's last; whether a file still grows is not known everywhere: a
 * standby learns of a new active file after its first entries).  An entry
 * too long for the room left in a slot ends its region's image there.
 * The walk stops at the first entry that does not parse or open: the
 * reader meets it as without images, and reports it.
 */
static void
make_images(ArmdbShardFiles *files, ArmdbDecryptedKey *key, uint32 file_id,
			const char *buf, uint64 buf_off, uint64 limit, uint64 from)
{
	uint64		region = from / ARMDB_DECRYPTED_REGION;
	uint64		first = from;
	uint64		at = from;

	if (image_room == NULL)
		image_room = MemoryContextAlloc(TopMemoryContext,
										ARMDB_DECRYPTED_SLOT_SIZE);
	for (;;)
	{
		const char *p = buf + (at - buf_off);
		ArmdbEntryHeader hdr;
		ArmdbLocation loc;
		ArmdbError	err;
		uint32		hsize;
		uint32		crc;
		char	   *q;

		if (at / ARMDB_DECRYPTED_REGION != region)
		{
			/* at starts the next region's entries: this one is whole */
			if (at > first)
				keep_image(key, region, first, at);
			region = at / ARMDB_DECRYPTED_REGION;
			first = at;
		}
		if (at >= limit ||
			armdb_entry_parse(p, limit - at, &hdr) != ARMDB_PARSE_OK)
			return;
		hsize = armdb_entry_header_size(hdr.gsn);
		loc.file_id = file_id;
		loc.offset = (uint32) at;
		loc.len = (uint32) armdb_entry_size(hdr.gsn, hdr.value_len);
		if (at + loc.len - first > ARMDB_DECRYPTED_SLOT_SIZE)
		{
			/* its region's image ends before it, for good */
			if (at > first)
				keep_image(key, region, first, at);
			return;
		}
		q = image_room + (at - first);
		memcpy(q, p, loc.len);
		if (hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED)
		{
			if (!armdb_shard_decrypt_value(files, &loc, &hdr, p, q + hsize,
										   &err))
				return;
			crc = armdb_entry_crc(&hdr, q + hsize);
			memcpy(q, &crc, sizeof(crc));
		}
		at += loc.len;
	}
}

/*
 * Copy the file's bytes from from on, up to to, from its images into out,
 * as far as they go: where the copy ends (from: none).  *spoilt: a copy
 * failed after writing part of out beyond that end.
 */
static uint64
copy_images(ArmdbDecryptedKey *key, uint64 from, uint64 to, char *out,
			bool *spoilt)
{
	uint64		at = from;

	*spoilt = false;
	while (at < to)
	{
		uint64		end;
		int			copied;

		key->region = at / ARMDB_DECRYPTED_REGION;
		copied = armdb_decrypted_copy(key, at, to, out + (at - from), &end);
		if (copied <= 0)
		{
			*spoilt = copied < 0;
			break;
		}
		at = end;
	}
	return at;
}

/* The span [from, to) copied from images of key's file, if they hold it. */
static bool
span_from_images(ArmdbVstoreSpan *span, ArmdbDecryptedKey *key, uint64 from,
				 uint64 to)
{
	bool		spoilt;

	if (copy_images(key, from, to, span->buf.data, &spoilt) != to)
		return false;
	span->from = from;
	span->len = to - from;
	span->cached = false;
	span->opened = true;
	return true;
}

/* ----------------
 * Reading
 * ----------------
 */

/*
 * Damage a read found (the table's load read a key directory image, or the
 * files were damaged since it read them): the keydir remembers it, so that
 * the next clean shutdown saves no image of it (keydir/image.c) and the
 * next load reads the files, which reports the damage in full and can
 * salvage it.
 */
#define DAMAGE_HINT "Restore the table from a backup, or restart the server: the table's next load reads its files and reports the damage, and a superuser can then set armdb.skip_damaged_entries to keep every undamaged row."

static void
report_damaged_entry(ArmdbRelKeydir *kd, const char *dir, uint32 file_id,
					 uint64 offset) pg_attribute_noreturn();
static void
report_read_error(ArmdbRelKeydir *kd, const ArmdbError *err) pg_attribute_noreturn();

static void
report_damaged_entry(ArmdbRelKeydir *kd, const char *dir, uint32 file_id,
					 uint64 offset)
{
	kd->damage_seen = true;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("armdb: data file \"%s/%06u.data\" is corrupted at offset %llu",
					dir, file_id, (unsigned long long) offset),
			 errhint(DAMAGE_HINT)));
}

/* A read of kd's files failed: ERROR, remembering damage as above. */
static void
report_read_error(ArmdbRelKeydir *kd, const ArmdbError *err)
{
	if (err->code != ARMDB_ERR_CORRUPT)
		armdb_report_storage_error(ERROR, err);
	kd->damage_seen = true;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("armdb: %s", err->message),
			 errhint(DAMAGE_HINT)));
}

/* The entry at loc must be slot's: else the keydir points at a wrong one. */
static void
check_entry_slot(ArmdbRelKeydir *kd, const ArmdbEntryHeader *hdr,
				 uint64 slot, const ArmdbLocation *loc, const char *dir)
{
	if (hdr->slot != slot)
	{
		kd->damage_seen = true;
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb: entry at offset %u of data file %06u in \"%s\" belongs to slot %llu, not %llu",
						loc->offset, loc->file_id, dir,
						(unsigned long long) hdr->slot,
						(unsigned long long) slot),
				 errhint(DAMAGE_HINT)));
	}
}

/*
 * The entries this backend read last.  The bytes at a location never
 * change: entries are appended, never rewritten in place, a file number is
 * never used again, and a keydir's generation is unique (a dropped or
 * truncated table gets a new one).  So a read of the same location -- the
 * row an index scan just returned, read again by the row lock, the UPDATE
 * or the foreign key check that follows -- is served from here, without a
 * second system call.
 */
#define RECENT_ENTRIES		4
#define RECENT_MAX_LEN		8192

typedef struct RecentEntry
{
	ArmdbRelKey key;
	uint64		generation;
	ArmdbLocation loc;			/* loc.len 0: unused */
	char	   *bytes;			/* RECENT_MAX_LEN, in TopMemoryContext */
} RecentEntry;

static RecentEntry recent[RECENT_ENTRIES];
static int	recent_next = 0;

static RecentEntry *
recent_find(const ArmdbRelKeydir *kd, const ArmdbLocation *loc)
{
	for (int i = 0; i < RECENT_ENTRIES; i++)
	{
		RecentEntry *r = &recent[i];

		if (r->loc.len == loc->len && r->loc.offset == loc->offset &&
			r->loc.file_id == loc->file_id && r->generation == kd->generation &&
			memcmp(&r->key, &kd->key, sizeof(ArmdbRelKey)) == 0)
			return r;
	}
	return NULL;
}

static void
recent_add(const ArmdbRelKeydir *kd, const ArmdbLocation *loc, const char *buf)
{
	RecentEntry *r = &recent[recent_next];

	if (loc->len > RECENT_MAX_LEN)
		return;
	if (r->bytes == NULL)
		r->bytes = MemoryContextAlloc(TopMemoryContext, RECENT_MAX_LEN);
	memcpy(r->bytes, buf, loc->len);
	r->key = kd->key;
	r->generation = kd->generation;
	r->loc = *loc;
	recent_next = (recent_next + 1) % RECENT_ENTRIES;
}

void
armdb_vstore_read(ArmdbRelKeydir *kd, uint64 slot, const ArmdbLocation *loc,
				  char *buf, const ArmdbStoreSettings *settings)
{
	uint32		shard = armdb_slot_shard(kd, slot);
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files;
	ArmdbEntryHeader hdr;
	ArmdbError	err;
	bool		ok;
	RecentEntry *r = recent_find(kd, loc);

	if (r != NULL && ((const ArmdbEntryHeader *) r->bytes)->slot == slot)
	{
		memcpy(buf, r->bytes, loc->len);
		return;					/* its CRC was checked when it was read */
	}
	files = armdb_vstore_shard_files(kd, shard, settings);
	LWLockAcquire(&rt->lock, LW_SHARED);
	if (armdb_shard_is_buffered(&rt->st, loc))
	{
		ok = armdb_shard_read_buffered(&rt->st, loc, buf, &hdr, &err);
		LWLockRelease(&rt->lock);
	}
	else
	{
		LWLockRelease(&rt->lock);
		ok = armdb_shard_read_file(files, loc, buf, &hdr, &err);
	}
	if (!ok)
		report_read_error(kd, &err);
	check_entry_slot(kd, &hdr, slot, loc, files->dir);
	if (!armdb_shard_open_entry(files, loc, buf, &hdr, &err))
		report_read_error(kd, &err);
	recent_add(kd, loc, buf);
}

void
armdb_vstore_read_ahead(ArmdbRelKeydir *kd, int n, const uint64 *slots,
						const ArmdbLocation *locs, char *const *bufs,
						bool *ok, const ArmdbStoreSettings *settings)
{
	ArmdbShardFiles **files = palloc(sizeof(ArmdbShardFiles *) * n);
	ArmdbLocation *blocs = palloc(sizeof(ArmdbLocation) * n);
	char	  **bbufs = palloc(sizeof(char *) * n);
	ArmdbEntryHeader *hdrs = palloc(sizeof(ArmdbEntryHeader) * n);
	bool	   *bok = palloc(sizeof(bool) * n);
	int		   *which = palloc(sizeof(int) * n);
	/* the distinct files of the batch: at most ARMDB_SHARD_FD_CACHE a shard */
	uint32	   *fshard = palloc(sizeof(uint32) * n);
	uint32	   *ffile = palloc(sizeof(uint32) * n);
	int			nfiles = 0;
	int			nb = 0;

	for (int i = 0; i < n; i++)
		ok[i] = false;
	for (int i = 0; settings->cached_reads && i < n; i++)
	{
		uint32		shard = armdb_slot_shard(kd, slots[i]);
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbShardFiles *sf;
		bool		buffered;
		bool		known = false;
		int			of_shard = 0;

		sf = armdb_vstore_shard_files(kd, shard, settings);
		if (!sf->cached_reads)
			continue;
		LWLockAcquire(&rt->lock, LW_SHARED);
		buffered = armdb_shard_is_buffered(&rt->st, &locs[i]);
		LWLockRelease(&rt->lock);
		if (buffered)
			continue;
		for (int f = 0; f < nfiles; f++)
		{
			if (fshard[f] != shard)
				continue;
			of_shard++;
			known = known || ffile[f] == locs[i].file_id;
		}
		if (!known)
		{
			if (of_shard >= ARMDB_SHARD_FD_CACHE)
				continue;
			fshard[nfiles] = shard;
			ffile[nfiles++] = locs[i].file_id;
		}
		files[nb] = sf;
		blocs[nb] = locs[i];
		bbufs[nb] = bufs[i];
		which[nb++] = i;
	}
	if (nb > 0)
		armdb_shard_read_files_batch(files, blocs, bbufs, hdrs, bok, nb);
	for (int b = 0; b < nb; b++)
	{
		ArmdbError	err;

		/* a failed decryption is reported by the caller's own read */
		ok[which[b]] = bok[b] && hdrs[b].slot == slots[which[b]] &&
			armdb_shard_open_entry(files[b], &blocs[b], bbufs[b], &hdrs[b],
								   &err);
	}
	pfree(files);
	pfree(blocs);
	pfree(bbufs);
	pfree(hdrs);
	pfree(bok);
	pfree(which);
	pfree(fshard);
	pfree(ffile);
}

void
armdb_vstore_span_read(ArmdbVstoreSpan *span, ArmdbRelKeydir *kd,
					   uint32 shard, uint32 file_id, uint64 from, uint64 to,
					   size_t max_len, bool dense, MemoryContext mcxt,
					   const ArmdbStoreSettings *settings)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files;
	ArmdbLocation loc;
	ArmdbError	err;
	ArmdbDecryptedKey key;
	bool		buffered;
	bool		active;
	bool		images;
	uint64		written_end;
	uint64		whole_regions;
	size_t		want;
	MemoryContext oldcontext;
	bool		ok;

	span->file_id = 0;
	span->shard = shard;
	span->kd = kd;
	span->opened = false;
	loc.file_id = file_id;
	loc.offset = (uint32) from;
	loc.len = (uint32) (to - from);
	LWLockAcquire(&rt->lock, LW_SHARED);
	buffered = armdb_shard_is_buffered(&rt->st, &loc);
	active = rt->st.active_file_id == file_id;
	written_end = rt->st.written_end;
	LWLockRelease(&rt->lock);
	if (buffered)
		return;

	files = armdb_vstore_shard_files(kd, shard, settings);
	images = image_key(kd, shard, files, file_id, &key);
	span->from = TYPEALIGN_DOWN(ARMDB_BLOCK_SIZE, from);
	/* room to read up to the end of the last region the span touches */
	whole_regions = ((to - 1) / ARMDB_DECRYPTED_REGION + 1) *
		ARMDB_DECRYPTED_REGION + ARMDB_DECRYPTED_MARGIN - span->from;
	if (images)
		max_len = Max(max_len, whole_regions);
	if (span->buf.size < TYPEALIGN(ARMDB_BLOCK_SIZE, to) - span->from ||
		span->buf.size < max_len)
	{
		oldcontext = MemoryContextSwitchTo(mcxt);
		armdb_aligned_free(&span->buf);
		ok = armdb_aligned_alloc(&span->buf, max_len + 2 * ARMDB_BLOCK_SIZE, &err);
		MemoryContextSwitchTo(oldcontext);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
	}
	span->to = to;
	span->file_id = file_id;
	span->cached = false;
	span->files = files;
	if (images && span_from_images(span, &key, from, to))
		return;

	/*
	 * Read from the file; a span of mostly visible rows (a freshly loaded
	 * table's) reads its first entry's whole region and keeps its images.
	 */
	want = TYPEALIGN(ARMDB_BLOCK_SIZE, to) - span->from;
	if (images && dense && !images_fit(kd))
		dense = false;
	if (images && dense)
		want = TYPEALIGN(ARMDB_BLOCK_SIZE, whole_regions);
	if (!armdb_shard_pread(files, file_id, files->cached_reads,
						   span->buf.data, want, span->from, &span->len, &err))
		report_read_error(kd, &err);
	span->cached = files->cached_reads;
	if (images && dense)
	{
		uint64		limit = span->from + span->len;

		/* what was on disk: the active file's last block may be rewritten */
		if (active)
			limit = Min(limit, written_end);
		make_images(files, &key, file_id, span->buf.data, span->from, limit,
					from);
		/* the images, or the file's bytes again (a copy may have begun) */
		if (!span_from_images(span, &key, from, to) &&
			!armdb_shard_pread(files, file_id, files->cached_reads,
							   span->buf.data, want, span->from, &span->len,
							   &err))
			report_read_error(kd, &err);
	}
}

bool
armdb_vstore_span_copy(const ArmdbVstoreSpan *span, uint64 slot,
					   const ArmdbLocation *loc, char *buf)
{
	ArmdbEntryHeader hdr;
	ArmdbError	err;

	/*
	 * Only entries that were there when the span was read: the rest of its
	 * last block may hold an entry appended since (a reused slot's new
	 * version), which the read may have seen half written, or not at all.
	 */
	if (loc->file_id != span->file_id ||
		armdb_slot_shard(span->kd, slot) != span->shard ||
		loc->offset < span->from ||
		(uint64) loc->offset + loc->len > Min(span->to, span->from + span->len))
		return false;
	memcpy(buf, span->buf.data + (loc->offset - span->from), loc->len);
	if (armdb_entry_parse(buf, loc->len, &hdr) != ARMDB_PARSE_OK ||
		hdr.slot != slot)
	{
		char		dir[MAXPGPATH];

		/* maybe an older image from the page cache: the caller reads it */
		if (span->cached)
			return false;
		armdb_shard_dir_path(dir, armdb_keydir_rnode(span->kd), span->shard);
		report_damaged_entry(span->kd, dir, loc->file_id, loc->offset);
	}
	if (span->opened && (hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED))
		armdb_shard_mark_opened(buf, &hdr);
	else if (!armdb_shard_open_entry(span->files, loc, buf, &hdr, &err))
		report_read_error(span->kd, &err);
	return true;
}

void
armdb_vstore_span_free(ArmdbVstoreSpan *span)
{
	armdb_aligned_free(&span->buf);
	span->file_id = 0;
}

/* ----------------
 * Iterating a shard in file order
 * ----------------
 */

/*
 * Start a cursor on a shard: fix where it ends, and copy what of that is
 * still only in the shard's write buffer.  Writing the buffer out instead
 * would make every scan fail while the disk is full (design §5a: a full
 * disk fails writes, never reads).
 */
static int
cmp_file_ids(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

/*
 * A shard's files, part 1, under the shard lock: its file list (palloc'd
 * in mcxt, ascending).  Merge outputs are numbered above the active file
 * of their time, so the active file need not be the last one.
 */
static uint32 *
list_files(ArmdbShardRt *rt, MemoryContext mcxt, int *nids, uint32 *upto)
{
	ArmdbFileStat *fs;
	uint32	   *ids;
	int			n;

	fs = armdb_files_copy(rt, &n);
	ids = MemoryContextAlloc(mcxt, sizeof(uint32) * (n + 1));
	for (int i = 0; i < n; i++)
		ids[i] = fs[i].file_id;
	pfree(fs);
	*nids = n;
	*upto = rt->files_upto;
	return ids;
}

/*
 * Part 2, without the lock (armdb_vstore_files_since, also compaction's):
 * the files the shard started since its list was
 * last brought up to date (rotations): above upto, the highest number the
 * list ever had, up to last_file_id, the active file when the list was
 * taken.  A merge output met there has not joined the list yet: it is left
 * out.
 */
uint32 *
armdb_vstore_files_since(const char *dir, uint32 upto, uint32 last_file_id,
						 uint32 *ids, int *nids)
{
	int			n = *nids;

	for (uint32 id = upto + 1; last_file_id != 0 && id <= last_file_id; id++)
	{
		ArmdbError	err;
		bool		merged = false;
		char		path[MAXPGPATH];

		armdb_file_path(path, dir, id, ARMDB_FILE_DATA);
		if (access(path, F_OK) != 0)
			continue;
		if (id != last_file_id &&
			!armdb_data_file_is_merged(dir, id, &merged, &err))
			armdb_report_storage_error(ERROR, &err);
		if (merged)
			continue;
		ids = repalloc(ids, sizeof(uint32) * (n + 1));
		ids[n++] = id;
	}
	qsort(ids, n, sizeof(uint32), cmp_file_ids);
	*nids = n;
	return ids;
}

bool
armdb_vstore_cursor_reads_file(const ArmdbVstoreCursor *cur, uint32 file_id)
{
	for (int i = 0; i < cur->nfids; i++)
		if (cur->fids[i] == file_id)
			return true;
	return false;
}

void
armdb_vstore_cursor_start(ArmdbVstoreCursor *cur, ArmdbRelKeydir *kd,
						  uint32 shard, MemoryContext mcxt,
						  const ArmdbStoreSettings *settings,
						  const uint32 *fids, int nfids)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	uint32		upto = 0;

	cur->kd = kd;
	cur->mcxt = mcxt;
	cur->shard = shard;
	cur->files = armdb_vstore_shard_files(kd, shard, settings);
	if (cur->fids)
		pfree(cur->fids);
	cur->fids = NULL;
	cur->nfids = 0;
	cur->fidx = -1;
	if (fids != NULL)
	{
		cur->fids = MemoryContextAlloc(mcxt, sizeof(uint32) * (nfids + 1));
		memcpy(cur->fids, fids, sizeof(uint32) * nfids);
		cur->nfids = nfids;
	}
	cur->file_id = 0;
	cur->valid = false;
	cur->chunk_len = 0;
	cur->chunk_cached = cur->from_cache = cur->recheck = false;
	cur->cache_file = false;
	cur->images_fit = armdb_decrypted_enabled() && cur->files->encrypt &&
		images_fit(kd);
	cur->plain_start = cur->plain_end = 0;
	cur->opened = false;
	cur->tail = NULL;

	for (;;)
	{
		/*
		 * Allocate outside the lock; the buffer may appear or grow
		 * meanwhile (keydir.c), and then the tail may not fit: again.
		 */
		Size		cap = rt->st.buf_size;
		char	   *tail = cap > 0 ? MemoryContextAlloc(mcxt, cap) : NULL;
		uint64		tail_len = 0;

		LWLockAcquire(&rt->lock, LW_SHARED);
		if (fids == NULL && cur->fids == NULL)
			cur->fids = list_files(rt, mcxt, &cur->nfids, &upto);
		cur->last_file_id = rt->st.active_file_id;
		cur->last_end = rt->st.append_end;
		cur->tail_start = rt->st.written_end;
		if (cur->last_file_id != 0)
			tail_len = rt->st.append_end - rt->st.written_end;
		if (tail_len > cap)
		{
			/* the buffer appeared meanwhile */
			LWLockRelease(&rt->lock);
			if (tail)
				pfree(tail);
			continue;
		}
		if (tail_len > 0)
			memcpy(tail, armdb_shard_buf(&rt->st) + (rt->st.written_end - rt->st.buf_start),
				   tail_len);
		LWLockRelease(&rt->lock);
		if (tail_len > 0)
			cur->tail = tail;
		else if (tail)
			pfree(tail);
		if (fids == NULL)
			cur->fids = armdb_vstore_files_since(cur->files->dir, upto,
									   cur->last_file_id, cur->fids,
									   &cur->nfids);
		return;
	}
}

/*
 * The chunk as the current file's bytes from pos on as far as images hold
 * them, if they hold need bytes at least (a header's worth may be more
 * than the last entry of an image: a 32-byte one of an earlier build's
 * file).  Otherwise false, with the chunk emptied if the copy overwrote
 * part of it.
 */
static bool
cursor_from_images(ArmdbVstoreCursor *cur, uint64 need)
{
	uint64		end;
	bool		spoilt;

	Assert(cur->chunk.size >= ARMDB_DECRYPTED_SLOT_SIZE);
	end = copy_images(&cur->cache_key, cur->pos, cur->pos + cur->chunk.size,
					  cur->chunk.data, &spoilt);
	if (end < cur->pos + Max(need, 1))
	{
		if (end > cur->pos || spoilt)
			cur->chunk_len = 0; /* what it held is partly overwritten */
		return false;
	}
	cur->chunk_off = cur->pos;
	cur->chunk_len = end - cur->pos;
	cur->chunk_cached = false;
	cur->plain_start = cur->pos;
	cur->plain_end = end;
	return true;
}

/* Move to the next data file of the shard; false at the shard's end. */
static bool
cursor_next_file(ArmdbVstoreCursor *cur)
{
	ArmdbError	err;
	uint64		size;
	int			fd;

	if (cur->fidx + 1 >= cur->nfids)
		return false;
	cur->file_id = cur->fids[++cur->fidx];
	cur->pos = ARMDB_FILE_HEADER_SIZE;
	cur->chunk_len = 0;
	cur->chunk_off = 0;
	cur->plain_start = cur->plain_end = 0;
	cur->cache_file = false;
	if (cur->file_id == cur->last_file_id)
		cur->file_end = cur->last_end;
	else
	{
		fd = armdb_shard_file_fd(cur->files, cur->file_id, &err);
		if (fd < 0 || !armdb_file_size(fd, cur->files->dir, &size, &err))
			armdb_report_storage_error(ERROR, &err);
		cur->file_end = size;
	}
	cur->cache_file = image_key(cur->kd, cur->shard, cur->files,
								cur->file_id, &cur->cache_key);
	return true;
}

/* Make [pos, pos + need) of the current file available in the chunk. */
static char *
cursor_bytes(ArmdbVstoreCursor *cur, uint64 need)
{
	ArmdbError	err;
	uint64		from;
	size_t		want;

	/* in the newest file, the bytes from tail_start on are in the copy */
	if (cur->tail != NULL && cur->file_id == cur->last_file_id &&
		cur->pos >= cur->tail_start)
	{
		/* ciphertext, whatever images of the file hold by now */
		cur->plain_start = cur->plain_end = 0;
		cur->from_cache = false;
		cur->avail_end = cur->last_end;
		if (cur->pos + need > cur->last_end)
			return NULL;
		return cur->tail + (cur->pos - cur->tail_start);
	}

	if (cur->pos >= cur->chunk_off &&
		cur->pos + need <= cur->chunk_off + cur->chunk_len)
	{
		cur->from_cache = cur->chunk_cached;
		cur->avail_end = cur->chunk_off + cur->chunk_len;
		return cur->chunk.data + (cur->pos - cur->chunk_off);
	}

	from = TYPEALIGN_DOWN(ARMDB_BLOCK_SIZE, cur->pos);
	want = Max(SCAN_CHUNK_SIZE, TYPEALIGN(ARMDB_BLOCK_SIZE, cur->pos - from + need));
	/* with images: room for a whole region from pos on */
	if (cur->cache_file)
		want = Max(want, ARMDB_DECRYPTED_SLOT_SIZE + ARMDB_BLOCK_SIZE);
	if (cur->chunk.size < want)
	{
		/* the scan's memory: callers reset their own between tuples */
		MemoryContext oldcontext = MemoryContextSwitchTo(cur->mcxt);
		bool		ok;

		armdb_aligned_free(&cur->chunk);
		ok = armdb_aligned_alloc(&cur->chunk, want, &err);
		MemoryContextSwitchTo(oldcontext);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
	}
	cur->plain_start = cur->plain_end = 0;
	if (!cur->cache_file || cur->recheck || !cursor_from_images(cur, need))
	{
		cur->chunk_cached = cur->files->cached_reads && !cur->recheck;
		cur->recheck = false;
		if (!armdb_shard_pread(cur->files, cur->file_id, cur->chunk_cached,
							   cur->chunk.data, cur->chunk.size, from,
							   &cur->chunk_len, &err))
			report_read_error(cur->kd, &err);
		cur->chunk_off = from;
		if (cur->cache_file && cur->images_fit)
		{
			/* only what was on disk at the start: not the copied tail */
			uint64		limit = Min(from + cur->chunk_len, cur->file_end);

			if (cur->tail != NULL && cur->file_id == cur->last_file_id)
				limit = Min(limit, cur->tail_start);
			make_images(cur->files, &cur->cache_key, cur->file_id,
						cur->chunk.data, from, limit, cur->pos);
			/* the images, or the file's bytes (again, if overwritten) */
			if (!cursor_from_images(cur, need) && cur->chunk_len == 0)
			{
				if (!armdb_shard_pread(cur->files, cur->file_id,
									   cur->chunk_cached, cur->chunk.data,
									   cur->chunk.size, from,
									   &cur->chunk_len, &err))
					report_read_error(cur->kd, &err);
				cur->chunk_off = from;
			}
		}
	}
	cur->from_cache = cur->chunk_cached;
	cur->avail_end = cur->chunk_off + cur->chunk_len;
	if (cur->pos + need > cur->chunk_off + cur->chunk_len)
		return NULL;
	return cur->chunk.data + (cur->pos - cur->chunk_off);
}

/*
 * Position the cursor on its next entry (at pos or in a later file):
 * true with cur->hdr and cur->entry set, false at the shard's end.
 */
bool
armdb_vstore_cursor_peek(ArmdbVstoreCursor *cur)
{
	for (;;)
	{
		ArmdbParseResult res;
		uint64		entry_len;
		uint64		on_disk_end;
		char	   *p;

		CHECK_FOR_INTERRUPTS();
		if (cur->file_id == 0 || cur->pos >= cur->file_end)
		{
			if (!cursor_next_file(cur))
				return cur->valid = false;
			continue;
		}

		/*
		 * A header's bytes, but none past the file's part on disk when the
		 * copied tail follows: a 32-byte entry can end there, in the last
		 * block the file has.
		 */
		on_disk_end = cur->tail != NULL && cur->file_id == cur->last_file_id &&
			cur->pos < cur->tail_start ? cur->tail_start : cur->file_end;
		p = cursor_bytes(cur, Min(ARMDB_ENTRY_HEADER_SIZE, on_disk_end - cur->pos));
		res = p == NULL ? ARMDB_PARSE_SHORT :
			armdb_entry_parse(p, Min(cur->avail_end, cur->file_end) - cur->pos,
							  &cur->hdr);
		/* SHORT with the length known: make the whole entry available */
		if (res == ARMDB_PARSE_SHORT && p != NULL &&
			cur->file_end - cur->pos >= ARMDB_ENTRY_PREFIX_SIZE &&
			cur->hdr.value_len <= ARMDB_MAX_VALUE_LEN)
		{
			entry_len = armdb_entry_size(cur->hdr.gsn, cur->hdr.value_len);
			if (cur->pos + entry_len <= cur->file_end &&
				(p = cursor_bytes(cur, entry_len)) != NULL)
				res = armdb_entry_parse(p, entry_len, &cur->hdr);
		}
		if (res != ARMDB_PARSE_OK && cur->from_cache)
		{
			/* maybe an older image of the block: the file decides */
			cur->chunk_len = 0;
			cur->recheck = true;
			continue;
		}
		if (res == ARMDB_PARSE_ZERO ||
			(res == ARMDB_PARSE_SHORT && cur->file_id != cur->last_file_id &&
			 cur->file_end - cur->pos < ARMDB_BLOCK_SIZE))
		{
			/* zero padding at the end of an older file */
			cur->pos = cur->file_end;
			continue;
		}
		if (res != ARMDB_PARSE_OK &&
			armdb_keydir_shard(cur->kd, cur->shard)->damaged)
		{
			/* damage a salvage skipped: on to the next good entry */
			ArmdbError	err;
			uint64		next;
			int			fd = armdb_shard_file_fd(cur->files, cur->file_id, &err);

			if (fd < 0 ||
				!armdb_find_next_entry(cur->files->io, fd, cur->pos,
									   cur->file_end, &next, &err))
				report_read_error(cur->kd, &err);
			cur->pos = next != 0 ? next : cur->file_end;
			cur->chunk_len = 0;
			continue;
		}
		if (res != ARMDB_PARSE_OK)
			report_damaged_entry(cur->kd, cur->files->dir, cur->file_id,
								 cur->pos);
		cur->entry = p;
		/* plaintext: an entry of the chunk where an image put it */
		cur->opened = (cur->hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED) &&
			p >= cur->chunk.data && p < cur->chunk.data + cur->chunk_len &&
			cur->pos >= cur->plain_start && cur->pos < cur->plain_end;
		return cur->valid = true;
	}
}

void
armdb_vstore_cursor_advance(ArmdbVstoreCursor *cur)
{
	cur->pos += armdb_entry_size(cur->hdr.gsn, cur->hdr.value_len);
	cur->valid = false;
}

void
armdb_vstore_cursor_free(ArmdbVstoreCursor *cur)
{
	if (cur->fids)
		pfree(cur->fids);
	cur->fids = NULL;
	cur->nfids = 0;
	armdb_aligned_free(&cur->chunk);
	if (cur->tail)
		pfree(cur->tail);
	cur->tail = NULL;
}

/* ----------------
 * Freezing (VACUUM)
 * ----------------
 */
typedef struct FreezeScan
{
	ArmdbEntryInfo *items;
	uint32		n;
	uint32		cap;
	TransactionId oldest;		/* oldest normal xid seen */
} FreezeScan;

static bool
freeze_collect(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	FreezeScan *fs = arg;

	if (fs->n == fs->cap)
	{
		fs->cap = Max(1024, fs->cap * 2);
		fs->items = fs->items == NULL ?
			palloc_extended(sizeof(ArmdbEntryInfo) * fs->cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(fs->items, sizeof(ArmdbEntryInfo) * fs->cap);
	}
	fs->items[fs->n++] = *e;
	return true;
}

static bool
oldest_xid_of(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	FreezeScan *fs = arg;
	TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

	if (TransactionIdIsNormal(xid) && !armdb_gsn_is_reservation(e->gsn) &&
		(!TransactionIdIsValid(fs->oldest) || TransactionIdPrecedes(xid, fs->oldest)))
		fs->oldest = xid;
	return true;
}

/*
 * A fate written to disk must not be undone by a crash: make every commit
 * record so far durable (asynchronous commits included) before calling any
 * transaction committed.  At the start of a WAL page the insert position
 * lies past a page header nothing has written yet, and XLogFlush() would
 * refuse it: flush to the end of the last record.
 */
void
armdb_vstore_flush_fates(void)
{
	XLogRecPtr	upto = GetXLogInsertRecPtr();

	if (upto % XLOG_BLCKSZ <= SizeOfXLogLongPHD)
		upto -= upto % XLOG_BLCKSZ;
	XLogFlush(upto);
}

/* VACUUM could not freeze the files in dir: say so, and why. */
static TransactionId
freeze_failed(ArmdbRelKeydir *kd, const char *dir, const ArmdbError *err)
{
	/* the next start reads the files, which reports it (keydir/image.c) */
	if (err->code == ARMDB_ERR_CORRUPT)
		kd->damage_seen = true;
	ereport(WARNING,
			(errmsg("armdb: could not freeze the data files in \"%s\": %s",
					dir, err->message),
			 errdetail("relfrozenxid is not advanced.")));
	return InvalidTransactionId;
}

/*
 * Record in the hint of data file `file` (open as fd; its hint is built
 * first if it has none) what became of every transaction older than cutoff
 * that the hint does not settle yet; lower *frozen_to to the oldest xid
 * whose fate the hint still leaves to clog.  False on a failure (err says
 * which).
 */
static bool
freeze_file(ArmdbIo *io, const char *dir, uint32 file, int fd,
			TransactionId cutoff, bool direct_io, const ArmdbFileAuth *auth,
			TransactionId *frozen_to, ArmdbError *err)
{
	char		hint[MAXPGPATH];
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	bool		keyed = false;
	bool		changed = false;
	uint64		data_end = ARMDB_FILE_HEADER_SIZE;
	uint64		size;
	struct stat st;
	FreezeScan	fs;

	armdb_file_path(hint, dir, file, ARMDB_FILE_HINT);
	if (stat(hint, &st) != 0 &&
		!armdb_hint_build(io, dir, file, direct_io, false, auth, err))
		return false;
	memset(&fs, 0, sizeof(fs));
	if (!armdb_file_size(fd, dir, &size, err) ||
		!armdb_hint_load(io, dir, file, size, auth, freeze_collect, &fs, err))
		return false;
	for (uint32 i = 0; i < fs.n; i++)
	{
		ArmdbEntryInfo *e = &fs.items[i];
		TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(e->xid));

		data_end = Max(data_end, (uint64) e->offset + e->len);
		if ((e->gsn & (ARMDB_GSN_FLAG_FROZEN | ARMDB_GSN_FLAG_ABORTED)) ||
			!TransactionIdIsNormal(xid) || armdb_gsn_is_reservation(e->gsn))
			continue;
		if (TransactionIdPrecedes(xid, cutoff))
		{
			e->gsn |= TransactionIdDidCommit(xid) ?
				ARMDB_GSN_FLAG_FROZEN : ARMDB_GSN_FLAG_ABORTED;
			changed = true;
		}
		else if (TransactionIdPrecedes(xid, *frozen_to))
			*frozen_to = xid;
	}
	/* the hint rewritten keeps its MAC, under the data file's key */
	if (changed && auth != NULL &&
		!armdb_data_file_key(io, dir, file, auth, key, &keyed, err))
	{
		pfree(fs.items);
		return false;
	}
	if (changed &&
		!armdb_hint_write(dir, file, fs.items, fs.n, data_end,
						  keyed ? key : NULL, err))
	{
		explicit_bzero(key, sizeof(key));
		if (fs.items)
			pfree(fs.items);
		return false;
	}
	explicit_bzero(key, sizeof(key));
	if (fs.items)
		pfree(fs.items);
	return true;
}

/*
 * A seal closed a file and started its successor, which has no entry yet:
 * the successor's FILE record now, under the shard lock, before any record
 * of the shard can name a higher number.  A merge's outputs take higher
 * numbers, and replay creates a missing file only when no higher one is
 * there (armdb_wal.c: else it was merged away): were the FILE record to
 * wait for the first entry, as an append's does, and a merge come first,
 * replay would drop every entry of the successor.
 */
static void
log_started_file(ArmdbRelKeydir *kd, ArmdbShardRt *rt, uint32 shard)
{
	Assert(rt->st.buf_start == 0 &&
		   rt->st.append_end == ARMDB_FILE_HEADER_SIZE);
	armdb_vstore_log_batch(NULL);
	armdb_wal_log_file(kd->key.dbNode, kd->key.relNode, shard,
					   rt->st.active_file_id, armdb_shard_buf(&rt->st));
}

/*
 * Close the shard's active file (the caller holds the shard lock
 * exclusively): its successor starts in the write buffer, and with wal its
 * FILE record is logged at once (log_started_file()).  *sealed: the closed
 * file's number, 0 if there was nothing to close.
 */
static bool
seal_active(ArmdbRelKeydir *kd, ArmdbShardRt *rt, uint32 shard,
			ArmdbShardFiles *files, bool wal, const ArmdbStoreSettings *settings,
			uint32 *sealed, ArmdbError *err)
{
	/* a seal starts a file: in the buffer, taken away if idle */
	shard_prepare(kd, rt, shard, settings);
	if (!armdb_shard_seal(&rt->st, files, sealed, err))
		return false;
	if (*sealed != 0 && wal)
		log_started_file(kd, rt, shard);
	return true;
}

/*
 * Close the shard's active file if it is file_id and holds entries (its
 * successor starts empty; wal: its FILE record is logged): for compaction,
 * which then may merge it.  Its entries are all in WAL already.  A failure
 * is a WARNING (a shard that failed before, say): the file stays open.
 * Returns whether it closed the file.
 */
bool
armdb_vstore_seal_file(ArmdbRelKeydir *kd, uint32 shard, uint32 file_id,
					   bool wal, const ArmdbStoreSettings *settings)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_vstore_shard_files(kd, shard, settings);
	ArmdbError	err;
	uint32		sealed = 0;
	bool		ok = true;

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	if (rt->st.active_file_id == file_id && file_id != 0 &&
		rt->st.append_end > ARMDB_FILE_HEADER_SIZE && !rt->st.sealed &&
		!rt->st.failed)
	{
		ok = seal_active(kd, rt, shard, files, wal, settings, &sealed, &err);
		/*
		 * Listed, its hint file left to compaction, which is about to merge
		 * it and then builds none (compact.c, build_hints()): a hint here
		 * would be a whole read of the file, on the primary and on every
		 * standby, for a file the merge removes.
		 */
		if (ok && sealed != 0)
		{
			ArmdbFileStat *f = armdb_files_lookup(rt, sealed, true);

			if (f != NULL)
				f->flags |= ARMDB_FSTAT_NEEDS_HINT;
		}
	}
	LWLockRelease(&rt->lock);
	if (!ok)
	{
		armdb_report_storage_error(WARNING, &err);
		return false;
	}
	return sealed != 0;
}

/*
 * Record in the hint files what became of every transaction older than
 * cutoff whose entries they list, and return the oldest xid whose fate the
 * files still leave to clog -- the relfrozenxid recovery allows (design
 * §4).  Closed files get their fates written into their hints; the active
 * file of each shard is scanned for its oldest xid, or, with seal, closed
 * first so that its entries can be frozen too.  Returns
 * InvalidTransactionId when something could not be read (then relfrozenxid
 * stays where it is).
 */
TransactionId
armdb_vstore_freeze(ArmdbRelKeydir *kd, TransactionId cutoff, bool seal,
					bool wal, const ArmdbStoreSettings *settings)
{
	TransactionId frozen_to = cutoff;

	armdb_vstore_flush_fates();

	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbShardFiles *files = armdb_vstore_shard_files(kd, shard, settings);
		ArmdbError	err;
		ArmdbPos	reached;
		uint32		sealed = 0;
		uint32		active;
		bool		ok = true;
		FreezeScan	fs;
		int			fd;
		ArmdbScanResult scan;
		uint32	   *ids;
		int			nids;
		uint32		upto;

		LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
		active = rt->st.active_file_id;
		if (active != 0)
		{
			ok = seal ?
				seal_active(kd, rt, shard, files, wal, settings, &sealed, &err) :
				armdb_shard_write_out(&rt->st, files, &reached, &err);
			active = rt->st.active_file_id;
		}
		ids = list_files(rt, CurrentMemoryContext, &nids, &upto);
		LWLockRelease(&rt->lock);
		if (!ok)
			armdb_report_storage_error(ERROR, &err);
		if (active == 0)
			continue;

		/*
		 * closed files: the fates into their hints.  Their numbers are not
		 * contiguous once files were merged: the shard's list, completed
		 * with the files started since, says which there are.
		 */
		ids = armdb_vstore_files_since(files->dir, upto, active, ids, &nids);
		for (int fi = 0; fi < nids; fi++)
		{
			if (ids[fi] == active)
				continue;
			fd = armdb_shard_file_fd(files, ids[fi], &err);
			if (fd < 0 ||
				!freeze_file(files->io, files->dir, ids[fi], fd, cutoff,
							 settings->direct_io, armdb_shard_files_auth(files),
							 &frozen_to, &err))
				return freeze_failed(kd, files->dir, &err);
		}

		/* the active file: its oldest xid still needs clog */
		memset(&fs, 0, sizeof(fs));
		fd = armdb_shard_file_fd(files, active, &err);
		if (fd < 0 ||
			!armdb_scan_data_file(files->io, fd, active, false,
								  armdb_shard_files_auth(files), oldest_xid_of,
								  &fs, &scan, &err))
			return freeze_failed(kd, files->dir, &err);
		if (TransactionIdIsValid(fs.oldest) &&
			TransactionIdPrecedes(fs.oldest, frozen_to))
			frozen_to = fs.oldest;
	}
	return frozen_to;
}

/*
 * Freezing as replay does it (XLOG_ARMDB_FREEZE): the primary's VACUUM
 * recorded in its hint files the fates of every transaction older than
 * cutoff, and is about to move relfrozenxid up to it, after which clog may
 * be truncated.  Record the same fates in the hints of the shard files in
 * dir, which a standby wrote by replaying the appends (merges are not
 * replayed: its files are the primary's inputs), so that a promoted standby
 * can load them without that clog.  The newest data file that is not a
 * merge output is the active one: frozen only if it holds an xid older
 * than cutoff, which it does only if the primary sealed it to freeze it.
 * Failures are WARNINGs: replay goes on, and the files keep needing clog.
 */
void
armdb_vstore_freeze_dir(const char *dir, TransactionId cutoff, bool direct_io,
						const ArmdbFileAuth *auth)
{
	ArmdbIo    *io = armdb_backend_io();
	uint32	   *ids;
	int			nids;
	uint32		max_id;
	uint32		active = 0;
	ArmdbError	err;
	TransactionId ignore = cutoff;

	if (!armdb_list_data_files(dir, &ids, &nids, &max_id, &err))
		goto failed;
	if (nids == 0)
		return;
	for (int i = nids - 1; i >= 0 && active == 0; i--)
	{
		bool		merged = false;

		if (!armdb_data_file_is_merged(dir, ids[i], &merged, &err))
			goto failed;
		if (!merged)
			active = ids[i];
	}

	for (int i = 0; i < nids; i++)
	{
		char		path[MAXPGPATH];
		int			fd;
		bool		ok = true;

		armdb_file_path(path, dir, ids[i], ARMDB_FILE_DATA);
		fd = armdb_file_open(path, O_RDONLY, direct_io, NULL, &err);
		if (fd < 0)
			goto failed;
		if (ids[i] == active)
		{
			FreezeScan	fs;
			ArmdbScanResult scan;

			memset(&fs, 0, sizeof(fs));
			ok = armdb_scan_data_file(io, fd, active, false, auth,
									  oldest_xid_of, &fs, &scan, &err);
			if (ok && (!TransactionIdIsValid(fs.oldest) ||
					   !TransactionIdPrecedes(fs.oldest, cutoff)))
			{
				armdb_file_close(fd);
				continue;
			}
		}
		ok = ok && freeze_file(io, dir, ids[i], fd, cutoff, direct_io, auth,
							   &ignore, &err);
		armdb_file_close(fd);
		if (!ok)
			goto failed;
	}
	pfree(ids);
	return;

failed:
	ereport(WARNING,
			(errmsg("armdb redo: could not freeze the files in \"%s\": %s",
					dir, err.message),
			 errdetail("Loading them needs the fates of transactions older than %u from clog.",
					   cutoff)));
	if (ids)
		pfree(ids);
}
