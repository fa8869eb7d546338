/*-------------------------------------------------------------------------
 *
 * vstore.h
 *	  The version store: armdb's row versions in their shards' data files,
 *	  below the table access method.
 *
 * The access method (src/am/) decides what to write and which version a
 * snapshot sees; the version store writes and reads the entries, and is
 * the only caller of the storage layer (src/storage/) besides the key
 * directory's loading.  Its interface knows row images, slots and
 * transaction ids, not executor slots or snapshots, so that a background
 * worker (compaction) and, later, WAL redo can call it too.  Layering:
 *
 *	 src/am/  ->  src/vstore/  ->  src/keydir/  ->  src/storage/
 *
 * What it offers:
 *
 *	 writing	append a version in a new slot of a shard (taking a slot
 *				VACUUM freed, or the next one, reserving slots ahead
 *				durably), append a version of a given slot, append a
 *				tombstone.  One function builds every entry header: gsn
 *				and flags are allocated in one place.
 *	 reading	an entry by its location (ArmdbVersion's file_id, offset,
 *				len), from the write buffer or the file, CRC-checked; the
 *				entries of one file range at once (ANALYZE's block spans).
 *	 iterating	a shard's entries in file order (sequential scans).
 *	 commit		group commit: the shards a transaction wrote are made
 *				durable before its commit record, sharing fdatasync calls
 *				with concurrent committers; the write barrier that flushes
 *				WAL before entries reach a file (vstore_commit.c).
 *	 hints		hint files of the data files appends sealed, and the
 *				transaction fates VACUUM writes into hint files (freezing).
 *
 * Settings are passed in (ArmdbStoreSettings, keydir.h): the version store
 * reads no GUC.
 *
 * Locks.  Each shard has a shard lock (ArmdbShardRt.lock: appends,
 * write-out, reading the write buffer) and a flush lock (one fdatasync for
 * a group of committers).  A virtual page's lock (ArmdbPage.lock) is taken
 * after the shard lock, never before it.  Each function below says what
 * its caller must hold; most take and release the locks themselves.
 *
 * Errors.  Storage failures are raised as ERRORs with the SQLSTATE their
 * kind calls for (armdb_report_storage_error(): disk_full 53100 for a full
 * disk, by errno for other file access errors, XX001 for a damaged entry,
 * naming the file and offset); a failed fdatasync is raised at
 * data_sync_elevel(ERROR) (PANIC unless data_sync_retry), since the kernel
 * may have dropped the data.  Nothing is half-done by an ERROR: an entry is
 * appended whole or not at all, and a slot is used up only once its entry
 * is.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_VSTORE_H
#define ARMDB_VSTORE_H

#include "access/transam.h"
#include "access/xlogdefs.h"

#include "keydir/keydir.h"
#include "vstore/decrypted.h"

/* ----------------
 * Writing
 * ----------------
 */

/*
 * Appends to one shard under one acquisition of its lock.  Between
 * armdb_vstore_append_begin() and armdb_vstore_append_end() the caller
 * holds the shard lock exclusively, and may take (then release) the lock of
 * a virtual page to fill the version records of what it appends.
 */
typedef struct ArmdbVstoreAppend
{
	ArmdbRelKeydir *kd;
	uint32		shard;
	ArmdbShardRt *rt;
	ArmdbShardFiles *files;
	const ArmdbStoreSettings *settings;
	bool		wal;			/* log each entry (a permanent relation) */
	bool		batch;			/* ... several in one record (vstore.c) */
} ArmdbVstoreAppend;

/*
 * Take the shard lock exclusively for appends.  With wal (the relation
 * needs WAL: RelationNeedsWAL()), each entry is logged (armdb_wal.c) before
 * it is copied into the shard's buffer, and the shard's write barrier
 * flushes WAL up to that record before the entry can reach the file.
 */
extern void armdb_vstore_append_begin(ArmdbVstoreAppend *ap,
									  ArmdbRelKeydir *kd, uint32 shard,
									  bool wal,
									  const ArmdbStoreSettings *settings);

/*
 * Log the backend's pending WAL batch of rt's entries (NULL: of any shard),
 * if there is one.  A caller that sets ap->batch calls it for ap->rt from
 * its error handler, before the shard lock can be released (vstore.c).
 */
extern void armdb_vstore_log_batch(ArmdbShardRt *rt);

/*
 * Release the shard lock and have the transaction's commit make what was
 * appended durable (armdb_vstore_note_write()).
 */
extern void armdb_vstore_append_end(ArmdbVstoreAppend *ap);

/*
 * Append a version in a new slot of the shard: a slot VACUUM freed (no
 * index entry points at it any more), else the shard's next one, reserving
 * slots ahead durably first when the reservation is used up.  The slot's
 * virtual page exists when this returns (ERROR if armdb.memory is full,
 * before anything is written); the slot is used up even if the transaction
 * aborts.  Returns the slot; *loc is where its entry is.  value_flags is 0
 * or ARMDB_GSN_FLAG_SHORT_TUPLE, for the entry's gsn; root_slot the HOT
 * chain's root (ARMDB_INVALID_SLOT: the new slot is its own).
 * ERROR (54000) if the image is longer than an entry can hold.
 */
extern uint64 armdb_vstore_insert(ArmdbVstoreAppend *ap, const void *image,
								  uint32 len, uint64 value_flags,
								  uint64 prev_slot, uint64 root_slot,
								  FullTransactionId fxid, ArmdbLocation *loc);

/*
 * Append a version of slot, with the chain's root_slot and the slot of the
 * version it replaces (prev_slot, or ARMDB_INVALID_SLOT), written by fxid.
 * The caller has chosen the slot; *loc is where its entry is.
 */
extern void armdb_vstore_append_version(ArmdbVstoreAppend *ap, uint64 slot,
										uint64 root_slot, uint64 prev_slot,
										FullTransactionId fxid,
										const void *image, uint32 len,
										uint64 value_flags,
										ArmdbLocation *loc);

/*
 * Append a tombstone of slot, by fxid, to shard (taking and releasing the
 * shard lock), for recovery; the commit makes it durable.  wal as for
 * armdb_vstore_append_begin().
 */
extern void armdb_vstore_append_tombstone(ArmdbRelKeydir *kd, uint32 shard,
										  uint64 slot, FullTransactionId fxid,
										  bool wal,
										  const ArmdbStoreSettings *settings);

/*
 * Write the hint files of the data files this backend's appends sealed
 * (rotation).  Call it holding no shard lock: it reads whole files.  A
 * failure is a WARNING: recovery scans a data file without a hint.
 */
extern void armdb_vstore_build_sealed_hints(const ArmdbStoreSettings *settings);

/* Close the shard's active file if it is file_id (for compaction). */
extern bool armdb_vstore_seal_file(ArmdbRelKeydir *kd, uint32 shard,
								   uint32 file_id, bool wal,
								   const ArmdbStoreSettings *settings);

/*
 * The hint file of a sealed data file was written: WAL says so, so that a
 * standby builds its own (armdb_wal.c).
 */
extern void armdb_vstore_log_hint(const ArmdbRelKey *key, uint32 shard,
								  uint32 file_id);

/*
 * A row lock to keep across a restart: slot's version had xmax (with its
 * infomask bits) when the lock entry was written; fxid is the transaction
 * whose running keeps the entry meaningful (format.h).
 */
typedef struct ArmdbRowLock
{
	uint64		slot;
	FullTransactionId fxid;
	TransactionId xmax;
	uint16		infomask;
	uint16		infomask2;
} ArmdbRowLock;

/*
 * Append a lock entry for each of nlocks row locks to the shard, under one
 * acquisition of its lock (WAL-logged in one batch with wal).
 */
extern void armdb_vstore_append_locks(ArmdbRelKeydir *kd, uint32 shard,
									  const ArmdbRowLock *locks, int nlocks,
									  bool wal,
									  const ArmdbStoreSettings *settings);

/* ----------------
 * Reading
 * ----------------
 */

/*
 * Read the entry of slot at loc into buf (loc->len bytes): from the write
 * buffer under the shard lock (shared) while it is still there, else with
 * one aligned read of the file, no lock held.  The CRC is checked, and that
 * the entry is slot's.  The value follows the header (its length:
 * armdb_entry_header_size() of the gsn); armdb_entry_tuple() finds the row
 * image.  No lock needed by the caller.
 * The last few entries read (up to 8 kB each) are kept in backend memory
 * and served from there: the bytes at a location never change.
 */
extern void armdb_vstore_read(ArmdbRelKeydir *kd, uint64 slot,
							  const ArmdbLocation *loc, char *buf,
							  const ArmdbStoreSettings *settings);

/*
 * Read ahead: the entries of slots[0..n) at locs into bufs[i] (locs[i].len
 * bytes each) with one batch of reads through the page cache, for a scan
 * that knows which rows it will return next.  ok[i] says which were read,
 * checked as armdb_vstore_read() checks them; the rest (still in a write
 * buffer, failing their checks, past the descriptors one batch may hold)
 * are for armdb_vstore_read() to read when they are wanted.  Reads
 * nothing without cached reads (settings->cached_reads).
 */
extern void armdb_vstore_read_ahead(ArmdbRelKeydir *kd, int n,
									const uint64 *slots,
									const ArmdbLocation *locs,
									char *const *bufs, bool *ok,
									const ArmdbStoreSettings *settings);

/*
 * The bytes of a range of one data file, read at once: the entries of a
 * virtual page (ANALYZE, TABLESAMPLE) usually lie together.
 */
typedef struct ArmdbVstoreSpan
{
	ArmdbAlignedBuf buf;
	ArmdbRelKeydir *kd;			/* the relation's */
	uint32		shard;			/* the shard of the file read */
	uint32		file_id;		/* 0: nothing read */
	uint64		from;			/* file offset of buf.data[0] */
	size_t		len;
	uint64		to;				/* end of the entries asked for: bytes past
								 * it (the rest of the last block) may have
								 * been appended after the read */
	bool		cached;			/* read through the page cache */
	bool		opened;			/* copied from the decrypted cache: its
								 * encrypted entries' values are plaintext */
	struct ArmdbShardFiles *files;	/* the shard's, to decrypt with */
} ArmdbVstoreSpan;

/*
 * Read [from, to) of data file file_id of shard into span (its buffer
 * allocated in mcxt, max_len bytes at most).  Reads nothing (span->file_id
 * 0) when that range is still in the shard's write buffer.  An encrypted
 * file's span is copied from the decrypted cache when its images hold it;
 * a dense one (mostly entries the caller wants) not there reads the rest
 * of its first entry's region and makes the images (decrypted.h).
 */
extern void armdb_vstore_span_read(ArmdbVstoreSpan *span, ArmdbRelKeydir *kd,
								   uint32 shard, uint32 file_id, uint64 from,
								   uint64 to, size_t max_len, bool dense,
								   MemoryContext mcxt,
								   const ArmdbStoreSettings *settings);

/*
 * Copy the entry of slot at loc from span into buf, checked as
 * armdb_vstore_read() does; false if span does not hold it, or read it
 * through the page cache and what it holds fails the checks (the caller's
 * own read of the entry decides: armdb_shard_pread()).
 */
extern bool armdb_vstore_span_copy(const ArmdbVstoreSpan *span, uint64 slot,
								   const ArmdbLocation *loc, char *buf);

extern void armdb_vstore_span_free(ArmdbVstoreSpan *span);

/* ----------------
 * Iterating a shard in file order
 * ----------------
 */

/*
 * A cursor over one shard's entries as far as they went at its start:
 * files front to back, read in large chunks (the bitcask way: sequential
 * I/O), through the page cache with armdb.cached_reads (an entry whose
 * bytes from there fail their checks is read again with O_DIRECT, which
 * alone decides: armdb_shard_pread()).  What was still only in the write buffer at the start is copied,
 * never written out: a scan never writes (design §5a: a full disk fails
 * writes, never reads).  Reservations and tombstones are returned too.
 */
typedef struct ArmdbVstoreCursor
{
	ArmdbRelKeydir *kd;
	uint32		shard;
	ArmdbShardFiles *files;		/* NULL: never started */
	MemoryContext mcxt;			/* of the buffers below */

	/*
	 * The files it reads, ascending: the shard's file list (keydir/files.h)
	 * as it was at the start, or as the caller gave it (a replay reads the
	 * same files; a merge removes none before the reader's transaction
	 * ends).  A merge's outputs join the list when every location has moved
	 * to them, at the moment its inputs leave it, so a cursor reads either
	 * the inputs or the outputs of a merge, never both.
	 */
	uint32	   *fids;			/* in mcxt */
	int			nfids;
	int			fidx;			/* index of file_id; -1 before the first */
	uint32		file_id;		/* current data file; 0 before the first */
	uint32		last_file_id;	/* the shard's newest file at cursor start */
	uint64		last_end;		/* its end at cursor start */
	uint64		file_end;		/* end of the current file's entries */
	uint64		pos;			/* the current entry */
	ArmdbAlignedBuf chunk;
	uint64		chunk_off;
	size_t		chunk_len;
	bool		chunk_cached;	/* the chunk came through the page cache */
	bool		from_cache;		/* ... and the last cursor_bytes() from it */
	bool		recheck;		/* read the next chunk with O_DIRECT */
	uint64		avail_end;		/* bytes from the last cursor_bytes() are
								 * good up to this offset */

	/*
	 * The newest file's bytes [tail_start, last_end) that were still only in
	 * the shard's write buffer at cursor start, copied: a scan never writes
	 * (a full disk must not break reads), so it reads them from here.
	 */
	char	   *tail;			/* NULL: none */
	uint64		tail_start;

	/*
	 * The decrypted cache (vstore/decrypted.h): whether the current file's
	 * chunks may be kept there (a sealed encrypted file) and under which
	 * key, and the chunk's bytes [plain_start, plain_end) that hold entries
	 * opened in place -- an image from the cache, or one just made.
	 */
	bool		cache_file;
	bool		images_fit;		/* the relation is small enough to make
								 * images of (images_fit()) */
	ArmdbDecryptedKey cache_key;
	uint64		plain_start;
	uint64		plain_end;

	bool		valid;			/* hdr/entry describe the entry at pos */
	bool		opened;			/* ... and its value is plaintext (an
								 * encrypted entry of an image) */
	ArmdbEntryHeader hdr;
	char	   *entry;			/* in chunk or tail */
} ArmdbVstoreCursor;

/*
 * (Re)start cur on shard, its buffers in mcxt; a cursor started before
 * keeps its chunk buffer.  Takes the shard lock (shared) for a moment.
 * fids (nfids ascending file numbers) are the files to read, from an
 * earlier start of the same scan; NULL: the shard's files now.
 */
extern void armdb_vstore_cursor_start(ArmdbVstoreCursor *cur,
									  ArmdbRelKeydir *kd, uint32 shard,
									  MemoryContext mcxt,
									  const ArmdbStoreSettings *settings,
									  const uint32 *fids, int nfids);

/* Does cur read file_id? */
extern bool armdb_vstore_cursor_reads_file(const ArmdbVstoreCursor *cur,
										   uint32 file_id);

/*
 * Position cur on its next entry (the current one if not yet advanced
 * past): true with cur->hdr, cur->entry (header and value), cur->file_id
 * and cur->pos set, false at the shard's end.  A damaged entry is an ERROR,
 * unless the table was salvaged (armdb.skip_damaged_entries), when it is
 * stepped over.
 */
extern bool armdb_vstore_cursor_peek(ArmdbVstoreCursor *cur);
extern void armdb_vstore_cursor_advance(ArmdbVstoreCursor *cur);
extern void armdb_vstore_cursor_free(ArmdbVstoreCursor *cur);

/* ----------------
 * Group commit (vstore_commit.c)
 * ----------------
 */

/*
 * The transaction wrote shard up to pos (wal: each entry in a WAL record):
 * its commit makes that durable.
 */
extern void armdb_vstore_note_write(ArmdbRelKeydir *kd, uint32 shard,
									ArmdbPos pos, bool wal);

/*
 * Pre-commit, pre-prepare: make what the transaction wrote durable, except
 * entries in WAL records when WAL carries durability
 * (armdb_durable_lazy()), which armdb_vstore_write_out_writes() writes to
 * their files after the commit (or prepare) record.  Then or else
 * armdb_vstore_forget_writes(): the transaction ended, nothing to flush.
 */
extern void armdb_vstore_flush_writes(const ArmdbStoreSettings *settings);
extern void armdb_vstore_write_out_writes(const ArmdbStoreSettings *settings);
extern void armdb_vstore_forget_writes(void);

/*
 * Make everything of shard before upto durable, sharing the work with
 * concurrent committers.  Takes the shard's flush lock, then its shard
 * lock; the caller holds neither.
 */
extern void armdb_vstore_flush_shard(ArmdbRelKeydir *kd, uint32 shard,
									 ArmdbPos upto,
									 const ArmdbStoreSettings *settings);

/* All shards of kd, up to their ends (before the files are copied). */
extern void armdb_vstore_flush_all_shards(ArmdbRelKeydir *kd,
										  const ArmdbStoreSettings *settings);

/*
 * Write every buffered entry of kd's shards to its file, not synced (the
 * flusher, before a checkpoint may complete); a failure is a WARNING.
 */
extern void armdb_vstore_write_out_all_shards(ArmdbRelKeydir *kd,
											  const ArmdbStoreSettings *settings);

/* ----------------
 * Freezing (VACUUM)
 * ----------------
 */

/*
 * Record in the hint files what became of every transaction older than
 * cutoff whose entries they list, and return the oldest xid whose fate the
 * files still leave to clog; InvalidTransactionId when something could not
 * be read.  With seal, each shard's active file is closed first so that
 * its entries can be frozen too.  Takes each shard lock (exclusive) for a
 * moment; the caller holds none.
 */
extern TransactionId armdb_vstore_freeze(ArmdbRelKeydir *kd,
										 TransactionId cutoff, bool seal,
										 bool wal,
										 const ArmdbStoreSettings *settings);

/*
 * Freezing during replay: record in the hint files of the shard files in
 * dir the fates of every transaction older than cutoff (vstore.c says
 * which files).  Failures are WARNINGs.
 */
extern void armdb_vstore_freeze_dir(const char *dir, TransactionId cutoff,
									bool direct_io, const ArmdbFileAuth *auth);

/*
 * Make every commit record so far durable, so that the fates of the
 * transactions that ended can be written into files (freezing, merges).
 */
extern void armdb_vstore_flush_fates(void);

/*
 * The distinct master keys the encrypted data files of shard directory dir
 * are under (cipher.h): up to max of them into key_ids, with one file of
 * each in file_ids; returns how many.  Files merged away meanwhile, and
 * damaged headers (which reads report), are passed over.
 */
extern int	armdb_vstore_dir_key_ids(const char *dir, uint32 *key_ids,
									 uint32 *file_ids, int max);

#endif							/* ARMDB_VSTORE_H */
