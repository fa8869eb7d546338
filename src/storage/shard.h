/*-------------------------------------------------------------------------
 *
 * shard.h
 *	  A shard of an armdb relation: one directory of data files, one active
 *	  (append) file and a write buffer in front of it.
 *
 * A shard is split in two halves:
 *
 *	 ArmdbShardState	the state every process must agree on: active file,
 *						append/write/flush positions and the write buffer.
 *						Plain data with no process-local pointers except buf,
 *						so the backend keeps it in the main shared memory
 *						segment (mapped at the same address everywhere).
 *	 ArmdbShardFiles	one process's view: the directory path and the
 *						handles of the data files it uses (cached files,
 *						see io.h: in a backend, virtual file descriptors
 *						that PostgreSQL's fd.c keeps under its limits).
 *
 * Locking is the caller's business, as with PostgreSQL's XLogWrite(): the
 * functions below say which lock on the shard the caller must hold.  The
 * backend uses an LWLock per shard ("shard lock") for append, write-out and
 * buffered reads, and a second one ("flush lock") to elect one fdatasync for
 * a group of committers; the unit tests are single-threaded and take none.
 *
 * Positions.  An entry's location is (file_id, offset, len).  Durability is
 * tracked as an ArmdbPos, (file_id << 32 | offset), which only grows: files
 * are numbered in creation order and a file is made fully durable before
 * the next one is created, so "flushed up to pos" is one comparison.
 *
 * The write buffer holds the active file's bytes [buf_start, append_end);
 * buf_start is block-aligned.  Bytes before written_end are in the file
 * (handed to the kernel, not necessarily durable); flushed says what is
 * durable.  Data is written in whole blocks, the last one zero-padded, and
 * that partial block stays in the buffer to be rewritten by the next
 * write-out, as PostgreSQL does with its partial last WAL page.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_SHARD_H
#define ARMDB_STORAGE_SHARD_H

#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/io.h"

typedef uint64 ArmdbPos;

#define ARMDB_POS(file_id, offset) \
	((((uint64) (file_id)) << 32) | (uint64) (offset))
#define ARMDB_POS_FILE(pos)		((uint32) ((pos) >> 32))
#define ARMDB_POS_OFFSET(pos)	((uint32) ((pos) & 0xFFFFFFFF))

typedef struct ArmdbLocation
{
	uint32		file_id;
	uint32		offset;
	uint32		len;			/* whole entry, header included */
} ArmdbLocation;

/* Smallest write buffer and data file the shard accepts. */
#define ARMDB_MIN_BUFFER_SIZE	(4 * ARMDB_BLOCK_SIZE)
#define ARMDB_MIN_FILE_SIZE		(64 * 1024)

typedef struct ArmdbShardState
{
	uint32		shard_no;
	uint32		max_file_size;	/* rotate before an append would pass it */
	uint32		buf_size;		/* multiple of ARMDB_BLOCK_SIZE */
	uint64		buf_ref;		/* write buffer, block-aligned, zeroed past
								 * append_end: see armdb_shard_buf() */

	uint32		active_file_id; /* 0: the shard has no file yet */
	uint32		next_file_id;	/* lowest number no file of the shard has
								 * used (merge outputs take numbers too);
								 * 0: active_file_id + 1 */
	uint64		buf_start;		/* file offset of buf[0], block-aligned */
	uint64		append_end;		/* offset where the next entry goes */
	uint64		written_end;	/* [0, written_end) is in the file */
	ArmdbPos	flushed;		/* everything before this is durable */

	/*
	 * The active file was sealed (written out and fsynced) for rotation, but
	 * creating its successor failed.  Nothing more may be appended to it:
	 * recovery treats every file but the newest as complete, so the next
	 * append first retries creating the successor.
	 */
	bool		sealed;

	/*
	 * The active file's header says it may hold short entries
	 * (ARMDB_FILE_FLAG_SHORT_ENTRIES).  A file carried over from a version
	 * before them takes no more appends: an older armdb, reading it after a
	 * downgrade, would take them for damage, so the next append rotates.
	 */
	bool		short_entries;

	/*
	 * The active file was created by this server life (start_new_file), not
	 * found at start-up or written by WAL replay: only such a file takes
	 * encrypted appends (cipher.h, nonces).  Its key's makings, key_id 0
	 * when it is not encrypted.
	 */
	bool		active_own;
	uint32		active_key_id;
	uint8		active_salt[32];

	/*
	 * Set when an fdatasync failed.  After a failed fsync the kernel may have
	 * dropped the dirty data and cleared the error (see PostgreSQL's
	 * data_sync_retry), so nothing written since the last good fsync can be
	 * trusted; the shard refuses further appends and flushes until recovery
	 * rebuilds it from what is really on disk.
	 */
	bool		failed;
} ArmdbShardState;

#define ARMDB_SHARD_ANY		UINT32_MAX

/* Per-process: data files of a shard with a cached-file handle. */
#define ARMDB_SHARD_FD_CACHE	4

typedef struct ArmdbShardFiles
{
	char		dir[MAXPGPATH];
	ArmdbIo    *io;
	bool		direct_io;		/* ask for O_DIRECT */
	bool		cached_reads;	/* reads through the OS page cache
								 * (armdb_shard_pread()) */
	struct
	{
		uint32		file_id;	/* 0: unused */
		int			handle;		/* armdb_file_open_cached(); -1: none */
		bool		direct;		/* opened with O_DIRECT asked for */
		uint64		last_use;
	}			fds[ARMDB_SHARD_FD_CACHE];
	uint64		use_counter;

	/*
	 * Encryption (cipher.h): the shard's relation is encrypted, so its new
	 * files are, under armdb_keyring's first key, and so are the values of
	 * the versions appended.  Set by the caller.
	 */
	bool		encrypt;
	uint32		shard_no;		/* the files' shard (their headers must say
								 * so), ARMDB_SHARD_ANY: not known */
	/* the relation's storage id, part of its files' keys (cipher.h) */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	bool		keys_checked;	/* the caller's: every file's key is held */
	ArmdbFileAuth auth;			/* for armdb_shard_files_auth() */
	/* the keys of files lately read or written; file_id 0: unused */
	struct
	{
		uint32		file_id;
		uint32		key_id;
		uint8		salt[32];
		uint8		key[32];
	}			keys[ARMDB_SHARD_FD_CACHE];
	int			keys_next;
	char	   *sealed_value;	/* an appended value encrypted, and its room */
	uint32		sealed_size;

	/*
	 * Called before any write of entries to a data file (not for file
	 * headers).  The backend uses it to flush WAL far enough that the
	 * transaction ids in the entries survive a crash (armdb_xact.c); it may
	 * refuse with an error.  NULL: nothing to do.
	 */
	bool		(*write_barrier) (void *arg, ArmdbError *err);
	void	   *write_barrier_arg;

	/*
	 * Called when an entry does not fit in the rest of the write buffer,
	 * before the buffer is written out to make room: it may give st a
	 * larger buffer (a copy of the old one, zeroed past it) of at least
	 * needed bytes, or leave it as it is.  Buffers start small and grow
	 * only for shards that write (keydir.c).  NULL: they never grow.
	 */
	void		(*grow_buffer) (void *arg, ArmdbShardState *st, uint64 needed);
	void	   *grow_buffer_arg;
} ArmdbShardFiles;

/*
 * The write buffer lives in memory shared by processes that may map it at
 * different addresses (a DSA area grown into DSM segments, keydir.c), so a
 * shard's state names it by a reference that each process resolves.  No
 * resolver: the reference is the buffer's address (unit tests, tools).
 */
typedef char *(*ArmdbShardBufResolver) (uint64 buf_ref);
extern PGDLLIMPORT ArmdbShardBufResolver armdb_shard_buf_resolver;

static inline char *
armdb_shard_buf(const ArmdbShardState *st)
{
	Assert(st->buf_ref != 0);
	if (armdb_shard_buf_resolver != NULL)
		return armdb_shard_buf_resolver(st->buf_ref);
	return (char *) (uintptr_t) st->buf_ref;
}

/*
 * What authenticating the files' entries and hints takes (cipher.h), for
 * the storage functions that read them: NULL when the relation is not
 * encrypted and the server has no key.
 */
extern const ArmdbFileAuth *armdb_shard_files_auth(ArmdbShardFiles *files);

extern void armdb_shard_state_init(ArmdbShardState *st, uint32 shard_no,
								   uint64 buf_ref, uint32 buf_size,
								   uint32 max_file_size);

extern void armdb_shard_files_init(ArmdbShardFiles *files, const char *dir,
								   ArmdbIo *io, bool direct_io);
extern void armdb_shard_files_close(ArmdbShardFiles *files);

/*
 * Descriptor of a data file, opened read-write, cached; good until the next
 * file is opened (see armdb_file_cached_fd()).
 */
extern int	armdb_shard_file_fd(ArmdbShardFiles *files, uint32 file_id,
								ArmdbError *err);
/* Forget (and close) the cached descriptor of file_id, e.g. after unlink. */
extern void armdb_shard_forget_file(ArmdbShardFiles *files, uint32 file_id);

/*
 * Position a shard after recovery: the active file is last_file_id (0: no
 * file) and its entries end at end_offset (0: the file has no header yet and
 * is created afresh).  Loads the partial last block into the write buffer
 * so that the next write-out rewrites it whole, and fsyncs the file and the
 * directory.  Until it succeeds the shard is marked failed.
 * Caller: shard lock exclusive (or no concurrency yet).
 */
extern bool armdb_shard_open(ArmdbShardState *st, ArmdbShardFiles *files,
							 uint32 last_file_id, uint64 end_offset,
							 ArmdbError *err);

/*
 * Append one entry.  hdr's fields other than crc are the caller's; the CRC is
 * computed here.  Creates the first file, rotates to a new file when the
 * entry would pass max_file_size (the old file is written out and fsynced
 * first; *sealed_file_id is set to its id so the caller can have its hint
 * file built, else to 0 -- set even when the append itself then fails),
 * and writes out the buffer whenever it fills.
 * On success *loc is where the entry is.
 * Caller: shard lock exclusive.
 */
extern bool armdb_shard_append(ArmdbShardState *st, ArmdbShardFiles *files,
							   ArmdbEntryHeader *hdr, const void *value,
							   ArmdbLocation *loc, uint32 *sealed_file_id,
							   ArmdbError *err);

/*
 * armdb_shard_append() in two steps, for a caller that logs the entry
 * between them (WAL: the record goes in before the entry can reach the
 * file).  _place() does everything up to choosing the location (the first
 * file, a rotation, the CRC) and sets *loc; _copy() then puts the entry
 * there.  Nothing is appended until _copy() succeeds; the next _place()
 * without a _copy() chooses the same location again.
 * Caller: shard lock exclusive across both.
 */
/*
 * The plaintext of the encrypted version entry (ARMDB_GSN_FLAG_ENCRYPTED)
 * whose image, read from loc, is at entry with header hdr: its value less
 * the tag, hdr->value_len - ARMDB_CIPHER_TAG_LEN bytes, into out.  A tag
 * that does not match is ARMDB_ERR_CORRUPT naming the file and offset; a
 * key the server lacks, ARMDB_ERR_KEY.
 */
extern bool armdb_shard_decrypt_value(ArmdbShardFiles *files,
									  const ArmdbLocation *loc,
									  const ArmdbEntryHeader *hdr,
									  const char *entry, char *out,
									  ArmdbError *err);

/*
 * An entry read that is not encrypted: an ERROR (ARMDB_ERR_CORRUPT) if it is
 * a version with a value in an encrypted table (files->encrypt), which can
 * only be a forgery -- every such version is encrypted when appended.
 */
extern bool armdb_shard_check_plain(ArmdbShardFiles *files,
									const ArmdbLocation *loc,
									const ArmdbEntryHeader *hdr,
									ArmdbError *err);

/*
 * The same in place: the value at entry becomes its plaintext, and the
 * header at entry and *hdr say so (no ENCRYPTED flag, value_len less the
 * tag; the CRC no longer matches, so such an image is never parsed again).
 * Nothing to do for an entry that is not encrypted.
 */
extern bool armdb_shard_open_entry(ArmdbShardFiles *files,
								   const ArmdbLocation *loc, char *entry,
								   ArmdbEntryHeader *hdr, ArmdbError *err);

/*
 * An encrypted entry whose value is plaintext already (the decrypted
 * cache's): its header at entry and *hdr made what
 * armdb_shard_open_entry() leaves.
 */
extern void armdb_shard_mark_opened(char *entry, ArmdbEntryHeader *hdr);

/* The salt of encrypted data file file_id; false if it is not encrypted or
 * its header cannot be read. */
extern bool armdb_shard_file_salt(ArmdbShardFiles *files, uint32 file_id,
								  uint8 *salt);

/* The (checked) header of data file file_id. */
extern bool armdb_shard_file_header(ArmdbShardFiles *files, uint32 file_id,
									ArmdbFileHeader *fh, ArmdbError *err);

/* The key of data file file_id (its header read on a miss), into key. */
extern bool armdb_shard_file_key(ArmdbShardFiles *files, uint32 file_id,
								 uint8 *key, ArmdbError *err);

extern bool armdb_shard_append_place(ArmdbShardState *st,
									 ArmdbShardFiles *files,
									 ArmdbEntryHeader *hdr, const void **value,
									 ArmdbLocation *loc,
									 uint32 *sealed_file_id, ArmdbError *err);
extern bool armdb_shard_append_copy(ArmdbShardState *st, ArmdbShardFiles *files,
									const ArmdbEntryHeader *hdr,
									const void *value, ArmdbError *err);

/*
 * Close the active file now, as a rotation would (written out, fsynced, a
 * new file started), so that it can get its hint file; *sealed_file_id is
 * its id, or 0 if the active file held no entries.
 * Caller: shard lock exclusive.
 */
extern bool armdb_shard_seal(ArmdbShardState *st, ArmdbShardFiles *files,
							 uint32 *sealed_file_id, ArmdbError *err);

/*
 * Write the buffered bytes of the active file to the file (not synced).
 * *reached is the position everything before which is now in the file.
 * Caller: shard lock exclusive.
 */
extern bool armdb_shard_write_out(ArmdbShardState *st, ArmdbShardFiles *files,
								  ArmdbPos *reached, ArmdbError *err);

/*
 * An idle shard's write buffer may be taken away when everything in it is
 * in the file: armdb_shard_release_buffer() says whether it can (the
 * caller then frees the memory), and armdb_shard_restore_buffer() gives
 * the shard a new one (of buf_size bytes, block-aligned) before its next
 * append, its partial last block read back from the active file.  Without
 * a buffer, the shard takes no append, seal or rotation, and reads find
 * everything in the file.
 */
extern bool armdb_shard_release_buffer(ArmdbShardState *st);
extern bool armdb_shard_restore_buffer(ArmdbShardState *st,
									   ArmdbShardFiles *files, uint64 buf_ref,
									   uint32 buf_size, ArmdbError *err);

/*
 * fdatasync the data file of pos.  Does not touch st->flushed: the caller
 * records the new durable position with armdb_shard_note_flushed().
 * Caller: flush lock only (appends go on meanwhile).  On failure the shard
 * is marked failed.
 */
extern bool armdb_shard_sync(ArmdbShardState *st, ArmdbShardFiles *files,
							 ArmdbPos pos, ArmdbError *err);

/*
 * Record that everything before pos is durable (st->flushed only grows).
 * Caller: shard lock exclusive, since rotation moves flushed too.
 */
static inline void
armdb_shard_note_flushed(ArmdbShardState *st, ArmdbPos pos)
{
	if (pos > st->flushed)
		st->flushed = pos;
}

/*
 * Make everything before upto durable: write-out, sync and note, for
 * single-threaded callers (tests, recovery, compaction of a private shard).
 */
extern bool armdb_shard_flush(ArmdbShardState *st, ArmdbShardFiles *files,
							  ArmdbPos upto, ArmdbError *err);

/* The position after the last appended entry. */
static inline ArmdbPos
armdb_shard_end(const ArmdbShardState *st)
{
	return ARMDB_POS(st->active_file_id, st->append_end);
}

/*
 * Is the entry at loc still only in the write buffer?  Then it must be read
 * with armdb_shard_read_buffered() under the shard lock (shared suffices).
 */
extern bool armdb_shard_is_buffered(const ArmdbShardState *st,
									const ArmdbLocation *loc);

/*
 * Read the entry at loc into dst (loc->len bytes), verifying its CRC.
 * armdb_shard_read_buffered() copies from the write buffer (caller: shard
 * lock, shared); armdb_shard_read_file() reads the file (no lock needed)
 * through the page cache, or with one aligned read, or both (see
 * armdb_shard_pread()).  On success *hdr is its header and the value is at
 * dst + armdb_entry_header_size(hdr->gsn).
 */
extern bool armdb_shard_read_buffered(const ArmdbShardState *st,
									  const ArmdbLocation *loc, char *dst,
									  ArmdbEntryHeader *hdr, ArmdbError *err);
extern bool armdb_shard_read_file(ArmdbShardFiles *files,
								  const ArmdbLocation *loc, char *dst,
								  ArmdbEntryHeader *hdr, ArmdbError *err);

/*
 * Read [off, off + len) of data file file_id into buf (aligned, as O_DIRECT
 * needs), through the page cache when cached (only if files->cached_reads),
 * else with the files' O_DIRECT.  What a cached read returns may be an older
 * image of a file's last block, whose newer entries read as zeros: a caller
 * whose entries fail their checks reads again with cached false before it
 * believes them (shard.c says why).
 */
extern bool armdb_shard_pread(ArmdbShardFiles *files, uint32 file_id,
							  bool cached, char *buf, size_t len, uint64 off,
							  size_t *nread, ArmdbError *err);
extern bool armdb_debug_stale_cached_reads;

/*
 * Read the entries at locs[0..n) -- of files[i] each -- through the page
 * cache with one batch of reads (one system call with io_uring), into
 * dst[i] (locs[i].len bytes), checked as armdb_shard_read_file() checks
 * them; hdrs[i] gets the header.  ok[i] says which were read and passed:
 * an entry that failed, or whose file could not be opened, is left for
 * the caller's own armdb_shard_read_file(), which decides (cached bytes
 * may be an older image of a block, armdb_shard_pread() says why).  A
 * batch of more than ARMDB_SHARD_FD_CACHE files of one shard leaves some
 * unread: the shard keeps that many open.  The files must allow cached
 * reads (files->cached_reads).
 */
extern void armdb_shard_read_files_batch(ArmdbShardFiles *const *files,
										 const ArmdbLocation *locs,
										 char *const *dst,
										 ArmdbEntryHeader *hdrs, bool *ok,
										 int n);

/* Both of the above, for single-threaded callers. */
extern bool armdb_shard_read(const ArmdbShardState *st, ArmdbShardFiles *files,
							 const ArmdbLocation *loc, char *dst,
							 ArmdbEntryHeader *hdr, ArmdbError *err);

/*
 * A file number for a new file of the shard (a merge output or manifest):
 * numbers are never reused, and the next active file gets a higher one.
 * Caller: shard lock exclusive.
 */
extern bool armdb_shard_new_file_id(ArmdbShardState *st, uint32 *file_id,
									ArmdbError *err);

/*
 * After recovery: the highest number any file of the shard has (recovery
 * report's max_file_id), so that new files get higher ones.
 */
static inline void
armdb_shard_note_file_id(ArmdbShardState *st, uint32 max_file_id)
{
	if (max_file_id >= st->next_file_id)
		st->next_file_id = max_file_id + 1;
}

/*
 * Might an append of a value of value_len bytes be the first entry of a
 * file, a new one or the empty active one?  (Its caller makes room
 * beforehand for what a file's first entry needs.)
 */
extern bool armdb_shard_append_may_begin_file(const ArmdbShardState *st,
											  const ArmdbShardFiles *files,
											  uint32 value_len);

/* Decision function: must an entry of entry_len bytes go to a new file? */
extern bool armdb_should_rotate(uint64 append_end, uint64 entry_len,
								uint32 max_file_size);

#endif							/* ARMDB_STORAGE_SHARD_H */
