/*-------------------------------------------------------------------------
 *
 * shard.c
 *	  Appending to, flushing and reading a shard's data files (see shard.h
 *	  for the state, positions and the locking contract).
 *
 * Crash-safety order:
 *	 - a new data file gets its header written and fdatasync'ed, then the
 *	   directory fsync'ed, before any entry goes into it;
 *	 - before the next file is created, the old one is written out and
 *	   fdatasync'ed, so every file but the newest is complete and durable;
 *	 - entries reach the file only in whole blocks whose unused tail is zero,
 *	   so after a crash a file ends in good entries, then zeros or a torn
 *	   last write (which recovery truncates).
 *
 *-------------------------------------------------------------------------
 */
#include "storage/shard.h"
#include "storage/cipher.h"

#include <fcntl.h>


ArmdbShardBufResolver armdb_shard_buf_resolver = NULL;

void
armdb_shard_state_init(ArmdbShardState *st, uint32 shard_no, uint64 buf_ref,
					   uint32 buf_size, uint32 max_file_size)
{
	Assert(buf_size >= ARMDB_MIN_BUFFER_SIZE);
	Assert(buf_size % ARMDB_BLOCK_SIZE == 0);

	memset(st, 0, sizeof(*st));
	st->shard_no = shard_no;
	st->max_file_size = Max(max_file_size, ARMDB_MIN_FILE_SIZE);
	st->buf_size = buf_size;
	st->buf_ref = buf_ref;
	Assert(((uintptr_t) armdb_shard_buf(st)) % ARMDB_BLOCK_SIZE == 0);
	memset(armdb_shard_buf(st), 0, buf_size);
}

void
armdb_shard_files_init(ArmdbShardFiles *files, const char *dir, ArmdbIo *io,
					   bool direct_io)
{
	memset(files, 0, sizeof(*files));
	files->shard_no = ARMDB_SHARD_ANY;
	strlcpy(files->dir, dir, sizeof(files->dir));
	files->io = io;
	files->direct_io = direct_io;
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
		files->fds[i].handle = -1;
}

static void
forget_key(ArmdbShardFiles *files, uint32 file_id)
{
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
	{
		if (file_id == 0 || files->keys[i].file_id == file_id)
		{
			explicit_bzero(files->keys[i].key, sizeof(files->keys[i].key));
			files->keys[i].file_id = 0;
		}
	}
}

void
armdb_shard_files_close(ArmdbShardFiles *files)
{
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
	{
		armdb_file_close_cached(files->fds[i].handle);
		files->fds[i].handle = -1;
		files->fds[i].file_id = 0;
	}
	forget_key(files, 0);
	if (files->sealed_value != NULL)
	{
		pfree(files->sealed_value);
		files->sealed_value = NULL;
		files->sealed_size = 0;
	}
}

void
armdb_shard_forget_file(ArmdbShardFiles *files, uint32 file_id)
{
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
	{
		if (files->fds[i].file_id == file_id)
		{
			armdb_file_close_cached(files->fds[i].handle);
			files->fds[i].handle = -1;
			files->fds[i].file_id = 0;
		}
	}
	forget_key(files, file_id);
}

/* ----------------
 * Encryption (cipher.h)
 * ----------------
 */

const ArmdbFileAuth *
armdb_shard_files_auth(ArmdbShardFiles *files)
{
	if (!files->encrypt && armdb_keyring.nkeys == 0)
		return NULL;
	files->auth.ring = &armdb_keyring;
	files->auth.storage_id = files->storage_id;
	files->auth.shard_no = files->shard_no;
	files->auth.encrypted = files->encrypt;
	return &files->auth;
}

/* Remember the key of file_id (derived from key_id and salt) in key. */
static bool
derive_key(ArmdbShardFiles *files, uint32 shard, uint32 file_id,
		   uint32 key_id, const uint8 *salt, bool authenticated, uint8 *key,
		   ArmdbError *err)
{
	int			i = files->keys_next;

	if (!armdb_cipher_file_key(&armdb_keyring, key_id, salt, shard, file_id,
							   files->storage_id, authenticated, key, err))
		return armdb_error_context(err, "data file %06u of \"%s\"", file_id,
								   files->dir);
	files->keys_next = (i + 1) % ARMDB_SHARD_FD_CACHE;
	files->keys[i].file_id = file_id;
	files->keys[i].key_id = key_id;
	memcpy(files->keys[i].salt, salt, sizeof(files->keys[i].salt));
	memcpy(files->keys[i].key, key, ARMDB_CIPHER_KEY_LEN);
	return true;
}

/*
 * Where files->keys remembers the key of file_id (made of key_id and salt,
 * if not 0), or -1.
 */
static int
cached_key_index(ArmdbShardFiles *files, uint32 file_id, uint32 key_id,
				 const uint8 *salt)
{
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
		if (files->keys[i].file_id == file_id &&
			(key_id == 0 ||
			 (files->keys[i].key_id == key_id &&
			  memcmp(files->keys[i].salt, salt, sizeof(files->keys[i].salt)) == 0)))
			return i;
	return -1;
}

/* The remembered key of file_id (made of key_id and salt, if not 0). */
static const uint8 *
cached_key(ArmdbShardFiles *files, uint32 file_id, uint32 key_id,
		   const uint8 *salt)
{
	int			i = cached_key_index(files, file_id, key_id, salt);

	return i >= 0 ? files->keys[i].key : NULL;
}

bool
armdb_shard_file_header(ArmdbShardFiles *files, uint32 file_id,
						ArmdbFileHeader *fh, ArmdbError *err)
{
	ArmdbAlignedBuf block;
	size_t		nread;
	int			fd;
	bool		ok;

	fd = armdb_shard_file_fd(files, file_id, err);
	if (fd < 0 || !armdb_aligned_alloc(&block, ARMDB_BLOCK_SIZE, err))
		return false;
	ok = armdb_io_pread(files->io, fd, block.data, ARMDB_BLOCK_SIZE, 0,
						&nread, err) &&
		armdb_file_header_check(block.data, nread, file_id, err);
	if (ok)
		memcpy(fh, block.data, sizeof(*fh));
	armdb_aligned_free(&block);
	if (!ok)
		return armdb_error_context(err, "\"%s\"", files->dir);
	return true;
}

bool
armdb_shard_file_salt(ArmdbShardFiles *files, uint32 file_id, uint8 *salt)
{
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	ArmdbError	err;
	int			i = cached_key_index(files, file_id, 0, NULL);

	/* the file's key and salt are remembered together: derive it once */
	if (i < 0)
	{
		bool		ok = armdb_shard_file_key(files, file_id, key, &err);

		explicit_bzero(key, sizeof(key));
		if (!ok || (i = cached_key_index(files, file_id, 0, NULL)) < 0)
			return false;
	}
	memcpy(salt, files->keys[i].salt, sizeof(files->keys[i].salt));
	return true;
}

bool
armdb_shard_file_key(ArmdbShardFiles *files, uint32 file_id, uint8 *key,
					 ArmdbError *err)
{
	const uint8 *known = cached_key(files, file_id, 0, NULL);
	ArmdbFileHeader fh;

	if (known != NULL)
	{
		memcpy(key, known, ARMDB_CIPHER_KEY_LEN);
		return true;
	}
	if (!armdb_shard_file_header(files, file_id, &fh, err))
		return false;
	if (!(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u of \"%s\" holds encrypted entries but is not encrypted",
						   file_id, files->dir);
	/* a file of another shard (copied over this one) is not this shard's */
	if (files->shard_no != ARMDB_SHARD_ANY && fh.shard != files->shard_no)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u of \"%s\" says it belongs to shard %u",
						   file_id, files->dir, fh.shard);
	return derive_key(files, fh.shard, file_id, fh.key_id, fh.salt,
					  (fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED) != 0, key, err);
}

static bool
decrypt_value(ArmdbShardFiles *files, const ArmdbLocation *loc,
			  const ArmdbEntryHeader *hdr, const char *entry, char *out,
			  ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	bool		ok;

	if (hdr->value_len < ARMDB_CIPHER_TAG_LEN)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "encrypted entry at offset %u of data file %06u in \"%s\" has no room for its tag",
						   loc->offset, loc->file_id, files->dir);
	if (!armdb_shard_file_key(files, loc->file_id, key, err))
		return false;
	ok = armdb_cipher_open_entry(key, hdr, entry + hsize, out, err);
	explicit_bzero(key, sizeof(key));
	if (ok || err->code != ARMDB_OK)
		return ok;
	return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
					   "encrypted entry at offset %u of data file %06u in \"%s\" failed authentication: its value, tag or header was changed",
					   loc->offset, loc->file_id, files->dir);
}

bool
armdb_shard_check_plain(ArmdbShardFiles *files, const ArmdbLocation *loc,
						const ArmdbEntryHeader *hdr, ArmdbError *err)
{
	if (files->encrypt && !(hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED) &&
		armdb_gsn_is_version(hdr->gsn) && hdr->value_len > 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is a version of an encrypted table that is not encrypted",
						   loc->offset, loc->file_id, files->dir);
	return true;
}

bool
armdb_shard_decrypt_value(ArmdbShardFiles *files, const ArmdbLocation *loc,
						  const ArmdbEntryHeader *hdr, const char *entry,
						  char *out, ArmdbError *err)
{
	Assert(hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED);
	return decrypt_value(files, loc, hdr, entry, out, err);
}

bool
armdb_shard_open_entry(ArmdbShardFiles *files, const ArmdbLocation *loc,
					   char *entry, ArmdbEntryHeader *hdr, ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);

	if (!(hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED))
		return armdb_shard_check_plain(files, loc, hdr, err);
	if (!decrypt_value(files, loc, hdr, entry, entry + hsize, err))
		return false;
	armdb_shard_mark_opened(entry, hdr);
	return true;
}

void
armdb_shard_mark_opened(char *entry, ArmdbEntryHeader *hdr)
{
	Assert(hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED);
	hdr->gsn &= ~ARMDB_GSN_FLAG_ENCRYPTED;
	hdr->value_len -= ARMDB_CIPHER_TAG_LEN;
	memcpy(entry + offsetof(ArmdbEntryHeader, gsn), &hdr->gsn, sizeof(hdr->gsn));
	memcpy(entry + offsetof(ArmdbEntryHeader, value_len), &hdr->value_len,
		   sizeof(hdr->value_len));
}

/*
 * Encrypt the value of the version being appended (hdr's value_len counts
 * the tag, its header length chosen) under the active file's key, into
 * files->sealed_value.
 */
static bool
seal_value(ArmdbShardState *st, ArmdbShardFiles *files,
		   const ArmdbEntryHeader *hdr, const void *value, ArmdbError *err)
{
	const uint8 *known = cached_key(files, st->active_file_id,
									st->active_key_id, st->active_salt);
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	bool		ok;

	/* a room grown for a long row is not kept for short ones */
	if (files->sealed_size > 65536 && hdr->value_len <= 8192)
	{
		pfree(files->sealed_value);
		files->sealed_value = NULL;
		files->sealed_size = 0;
	}
	if (files->sealed_size < hdr->value_len)
	{
		uint32		size = Max(hdr->value_len, 8192);
		/* files outlive statements (keydir.c keeps them per backend) */
		char	   *p = armdb_alloc_lasting(err, size, "an encrypted value");

		if (p == NULL)
			return false;
		if (files->sealed_value != NULL)
			pfree(files->sealed_value);
		files->sealed_value = p;
		files->sealed_size = size;
	}
	if (known != NULL)
		memcpy(key, known, sizeof(key));
	/* (this server life made the file: authenticated, format.h) */
	else if (!derive_key(files, st->shard_no, st->active_file_id,
						 st->active_key_id, st->active_salt, true, key, err))
		return false;
	ok = armdb_cipher_seal_entry(key, hdr, value, files->sealed_value, err);
	explicit_bzero(key, sizeof(key));
	return ok;
}

/*
 * A descriptor of data file file_id, opened with O_DIRECT (if the files
 * ask for it) when direct, without otherwise.
 */
static int
shard_file_fd(ArmdbShardFiles *files, uint32 file_id, bool direct,
			  ArmdbError *err)
{
	char		path[MAXPGPATH];
	int			victim = 0;
	int			handle;

	direct = direct && files->direct_io;
	armdb_file_path(path, files->dir, file_id, ARMDB_FILE_DATA);
	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
	{
		if (files->fds[i].file_id == file_id && files->fds[i].direct == direct)
		{
			files->fds[i].last_use = ++files->use_counter;
			return armdb_file_cached_fd(files->fds[i].handle, path, err);
		}
		if (files->fds[i].last_use < files->fds[victim].last_use)
			victim = i;
	}

	handle = armdb_file_open_cached(path, O_RDWR, direct, NULL, err);
	if (handle < 0)
		return -1;
	armdb_file_close_cached(files->fds[victim].handle);
	files->fds[victim].handle = handle;
	files->fds[victim].file_id = file_id;
	files->fds[victim].direct = direct;
	files->fds[victim].last_use = ++files->use_counter;
	return armdb_file_cached_fd(handle, path, err);
}

/*
 * The descriptor of a data file the shard holds open for buffered reads,
 * as it is now (armdb_file_current_fd()); -1 if the shard does not hold it
 * or it was closed.  Opens nothing.
 */
static int
shard_file_current_fd(ArmdbShardFiles *files, uint32 file_id)
{
	bool		direct = false;

	for (int i = 0; i < ARMDB_SHARD_FD_CACHE; i++)
		if (files->fds[i].file_id == file_id && files->fds[i].direct == direct &&
			files->fds[i].handle >= 0)
			return armdb_file_current_fd(files->fds[i].handle);
	return -1;
}

int
armdb_shard_file_fd(ArmdbShardFiles *files, uint32 file_id, ArmdbError *err)
{
	return shard_file_fd(files, file_id, true, err);
}

bool
armdb_should_rotate(uint64 append_end, uint64 entry_len, uint32 max_file_size)
{
	/* a file always takes at least one entry, however large */
	if (append_end <= ARMDB_FILE_HEADER_SIZE)
		return false;
	return append_end + entry_len > max_file_size;
}

/* Must an entry of entry_len bytes (as stored) go to a new file? */
static bool
append_starts_file(const ArmdbShardState *st, uint64 entry_len, bool encrypt)
{
	return st->active_file_id == 0 || st->sealed || !st->short_entries ||
		(encrypt && (!st->active_own || st->active_key_id == 0)) ||
		armdb_should_rotate(st->append_end, entry_len, st->max_file_size);
}

bool
armdb_shard_append_may_begin_file(const ArmdbShardState *st,
								  const ArmdbShardFiles *files,
								  uint32 value_len)
{
	/* the largest the entry can be: a long header, a tag */
	return st->append_end <= ARMDB_FILE_HEADER_SIZE ||
		append_starts_file(st, (uint64) ARMDB_ENTRY_HEADER_SIZE + value_len +
						   ARMDB_CIPHER_TAG_LEN, files->encrypt);
}

static bool
shard_failed(const ArmdbShardState *st, ArmdbError *err)
{
	return armdb_error(err, ARMDB_ERR_FAILED, 0,
					   "shard %u is unusable after an earlier fsync failure",
					   st->shard_no);
}

/*
 * Write the buffered bytes [written_end, append_end) to the active file, in
 * whole blocks (the partial last one is zero-padded and rewritten next
 * time).  The state changes only on success.
 */
static bool
buffer_write_out(ArmdbShardState *st, ArmdbShardFiles *files, ArmdbError *err)
{
	uint64		from;
	uint64		to;
	int			fd;

	if (st->written_end == st->append_end)
		return true;
	from = ARMDB_BLOCK_FLOOR(st->written_end);
	to = ARMDB_BLOCK_CEIL(st->append_end);
	Assert(from >= st->buf_start && to - st->buf_start <= st->buf_size);

	if (files->write_barrier &&
		!files->write_barrier(files->write_barrier_arg, err))
		return false;
	fd = armdb_shard_file_fd(files, st->active_file_id, err);
	if (fd < 0)
		return false;
	if (!armdb_io_pwrite(files->io, fd, armdb_shard_buf(st) + (from - st->buf_start),
						 to - from, from, err))
	{
		char		path[MAXPGPATH];
		ArmdbError	terr;

		/*
		 * A write that failed part-way (a full disk) may have left some of
		 * its blocks in the file, ending inside an entry.  Cut them off
		 * again: the file must end in whole entries (then zeros) whenever
		 * the server is not crashing, or recovery after a clean shutdown
		 * would rightly call it corrupted.  The buffer keeps the bytes for
		 * the next write-out.
		 */
		armdb_file_path(path, files->dir, st->active_file_id, ARMDB_FILE_DATA);
		if (!armdb_file_truncate(fd, path, st->written_end, &terr))
			st->failed = true;	/* cannot vouch for the file's tail now */
		return armdb_error_context(err, "could not write data file %06u of \"%s\"",
								   st->active_file_id, files->dir);
	}
	st->written_end = st->append_end;
	return true;
}

/*
 * Drop the written-out whole blocks from the buffer, keeping the partial
 * last block at its start.  Everything past append_end stays zero.
 */
static void
buffer_slide(ArmdbShardState *st)
{
	uint64		new_start = ARMDB_BLOCK_FLOOR(st->append_end);
	uint64		used = ARMDB_BLOCK_CEIL(st->append_end) - st->buf_start;
	uint64		partial = st->append_end - new_start;

	Assert(st->written_end == st->append_end);
	if (new_start == st->buf_start)
		return;
	memmove(armdb_shard_buf(st), armdb_shard_buf(st) + (new_start - st->buf_start), partial);
	memset(armdb_shard_buf(st) + partial, 0, used - partial);
	st->buf_start = new_start;
}

/*
 * Make room for an entry of entry_len bytes without writing anything: drop
 * the blocks already written out (a shard written one commit at a time has
 * little else in its buffer), else ask for a larger buffer.  The caller
 * writes out and drops whole blocks if that was not enough.
 */
static void
buffer_make_room(ArmdbShardState *st, ArmdbShardFiles *files,
				 uint64 entry_len)
{
	uint64		used = st->append_end - st->buf_start;

	if (used + entry_len > st->buf_size && st->written_end == st->append_end)
	{
		buffer_slide(st);
		used = st->append_end - st->buf_start;
	}
	if (used + entry_len > st->buf_size && files->grow_buffer != NULL)
		files->grow_buffer(files->grow_buffer_arg, st, used + entry_len);
}

/* The number of the next active file. */
static uint32
successor_id(const ArmdbShardState *st)
{
	return Max(st->active_file_id + 1, st->next_file_id);
}

bool
armdb_shard_new_file_id(ArmdbShardState *st, uint32 *file_id, ArmdbError *err)
{
	uint32		id = successor_id(st);

	if (id > ARMDB_MAX_FILE_ID)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "shard %u has used all %u file numbers",
						   st->shard_no, ARMDB_MAX_FILE_ID);
	*file_id = id;
	st->next_file_id = id + 1;
	return true;
}

/* Create data file file_id (header durable) and make it the active file. */
static bool
start_new_file(ArmdbShardState *st, ArmdbShardFiles *files, uint32 file_id,
			   ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbFileHeader fh;
	ArmdbAlignedBuf block;
	int			fd;
	bool		ok;

	if (file_id > ARMDB_MAX_FILE_ID)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "shard \"%s\" has used all %u data file numbers",
						   files->dir, ARMDB_MAX_FILE_ID);
	if (st->active_file_id == 0 && !armdb_make_dir(files->dir, err))
		return false;

	/*
	 * The header goes through its own block: the buffer still holds the old
	 * file's partial last block, which must survive if this fails.
	 */
	armdb_file_header_init(&fh, file_id, st->shard_no);
	if (files->encrypt)
	{
		uint8		salt[ARMDB_CIPHER_SALT_LEN];

		if (armdb_keyring.nkeys == 0)
			return armdb_error(err, ARMDB_ERR_KEY, 0,
							   "shard \"%s\" belongs to an encrypted table, and the server has no encryption key",
							   files->dir);
		if (!armdb_cipher_random_salt(salt, err))
			return false;
		armdb_file_header_set_key(&fh, armdb_keyring.keys[0].id, salt, true);
	}
	if (!armdb_aligned_alloc(&block, ARMDB_BLOCK_SIZE, err))
		return false;
	memset(block.data, 0, ARMDB_BLOCK_SIZE);
	memcpy(block.data, &fh, sizeof(fh));

	/*
	 * O_EXCL: an existing file of this number is never silently reused (a
	 * header-less leftover is removed by armdb_shard_open first).
	 */
	armdb_file_path(path, files->dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDWR | O_CREAT | O_EXCL, files->direct_io,
						 NULL, err);
	if (fd < 0)
	{
		armdb_aligned_free(&block);
		return false;
	}
	ok = armdb_io_pwrite_sync(files->io, fd, block.data, ARMDB_BLOCK_SIZE, 0,
							  err);
	armdb_file_close(fd);
	if (!ok)
	{
		ArmdbError	ignore;

		armdb_aligned_free(&block);
		armdb_unlink(path, &ignore);
		return armdb_error_context(err, "could not initialize \"%s\"", path);
	}
	if (!armdb_fsync_path(files->dir, true, err))
	{
		/*
		 * Whether the new file survives a crash is now unknown, and after a
		 * failed fsync so is everything else in the directory: like any
		 * fsync failure, this one stops the shard.
		 */
		armdb_aligned_free(&block);
		st->failed = true;
		return false;
	}

	memcpy(armdb_shard_buf(st), block.data, ARMDB_BLOCK_SIZE);
	memset(armdb_shard_buf(st) + ARMDB_BLOCK_SIZE, 0, st->buf_size - ARMDB_BLOCK_SIZE);
	armdb_aligned_free(&block);
	st->active_file_id = file_id;
	st->next_file_id = Max(st->next_file_id, file_id + 1);
	st->sealed = false;
	st->short_entries = true;
	st->active_own = true;
	st->active_key_id = fh.key_id;
	memcpy(st->active_salt, fh.salt, sizeof(st->active_salt));
	st->buf_start = 0;
	st->append_end = ARMDB_FILE_HEADER_SIZE;
	st->written_end = ARMDB_FILE_HEADER_SIZE;
	st->flushed = ARMDB_POS(file_id, ARMDB_FILE_HEADER_SIZE);
	return true;
}

/*
 * Does the header of the active file (just opened at st->append_end) say it
 * may hold short entries?  Recovery checked the header already.
 */
static bool
file_takes_short_entries(ArmdbShardState *st, ArmdbShardFiles *files,
						 bool *takes, ArmdbError *err)
{
	ArmdbFileHeader fh;

	if (st->buf_start == 0)
		memcpy(&fh, armdb_shard_buf(st), sizeof(fh));	/* read with the last block */
	else
	{
		ArmdbAlignedBuf block;
		size_t		nread;
		int			fd = armdb_shard_file_fd(files, st->active_file_id, err);
		bool		ok;

		if (fd < 0 || !armdb_aligned_alloc(&block, ARMDB_BLOCK_SIZE, err))
			return false;
		ok = armdb_io_pread(files->io, fd, block.data, ARMDB_BLOCK_SIZE, 0,
							&nread, err);
		if (ok && nread < sizeof(fh))
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "data file %06u of \"%s\" lost its header",
							 st->active_file_id, files->dir);
		if (ok)
			memcpy(&fh, block.data, sizeof(fh));
		armdb_aligned_free(&block);
		if (!ok)
			return false;
	}
	*takes = (fh.flags & ARMDB_FILE_FLAG_SHORT_ENTRIES) != 0;
	return true;
}

/* Write out and fdatasync the active file: it is complete and durable. */
static bool
seal_active_file(ArmdbShardState *st, ArmdbShardFiles *files, ArmdbError *err)
{
	ArmdbPos	end = armdb_shard_end(st);

	if (!buffer_write_out(st, files, err) ||
		!armdb_shard_sync(st, files, end, err))
		return false;
	armdb_shard_note_flushed(st, end);
	st->sealed = true;
	return true;
}

bool
armdb_shard_open(ArmdbShardState *st, ArmdbShardFiles *files,
				 uint32 last_file_id, uint64 end_offset, ArmdbError *err)
{
	ArmdbPos	end;

	/*
	 * Until this succeeds the shard must take no appends: a half-positioned
	 * shard would write its (zeroed) buffer over the file's last block.
	 */
	st->failed = true;
	st->sealed = false;
	/* a file found, not made: no encrypted append goes to it (cipher.h) */
	st->active_own = false;

	if (last_file_id == 0)
	{
		memset(armdb_shard_buf(st), 0, st->buf_size);
		st->active_file_id = 0;
		st->buf_start = st->append_end = st->written_end = 0;
		st->flushed = 0;
		st->failed = false;
		return true;
	}
	if (end_offset == 0)
	{
		/*
		 * Recovery found the newest file without a (whole) header, so it
		 * holds nothing: replace it.  The previous file, if any, was sealed
		 * before this one was created.
		 */
		char		path[MAXPGPATH];

		armdb_file_path(path, files->dir, last_file_id, ARMDB_FILE_DATA);
		armdb_shard_forget_file(files, last_file_id);
		if (!armdb_unlink(path, err) || !start_new_file(st, files, last_file_id, err))
			return false;
		st->failed = false;
		return true;
	}
	if (end_offset < ARMDB_FILE_HEADER_SIZE || end_offset > ARMDB_MAX_FILE_SIZE)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "cannot open shard \"%s\" at offset %llu",
						   files->dir, (unsigned long long) end_offset);

	memset(armdb_shard_buf(st), 0, st->buf_size);
	st->active_file_id = last_file_id;
	st->buf_start = ARMDB_BLOCK_FLOOR(end_offset);
	st->append_end = st->written_end = end_offset;

	/* the partial last block is rewritten whole by the next write-out */
	st->short_entries = false;
	if (end_offset > st->buf_start)
	{
		ArmdbAlignedBuf block;
		size_t		nread;
		int			fd;
		bool		ok;

		fd = armdb_shard_file_fd(files, last_file_id, err);
		if (fd < 0 || !armdb_aligned_alloc(&block, ARMDB_BLOCK_SIZE, err))
			return false;
		ok = armdb_io_pread(files->io, fd, block.data, ARMDB_BLOCK_SIZE,
							st->buf_start, &nread, err);
		if (ok && nread < end_offset - st->buf_start)
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "data file %06u of \"%s\" is shorter than its recovered end %llu",
							 last_file_id, files->dir,
							 (unsigned long long) end_offset);
		if (ok)
			memcpy(armdb_shard_buf(st), block.data, end_offset - st->buf_start);
		armdb_aligned_free(&block);
		if (!ok)
			return false;
	}
	if (!file_takes_short_entries(st, files, &st->short_entries, err))
		return false;

	/*
	 * What recovery read may still be only in the kernel's cache, and the
	 * file's directory entry too (a backend crash loses neither, a power
	 * loss would): make both durable before anything is built on them, as
	 * PostgreSQL's crash recovery does with SyncDataDirectory().
	 */
	end = armdb_shard_end(st);
	st->flushed = 0;
	st->failed = false;
	if (!armdb_shard_sync(st, files, end, err) ||
		!armdb_fsync_path(files->dir, true, err))
	{
		st->failed = true;
		return false;
	}
	armdb_shard_note_flushed(st, end);
	return true;
}

/*
 * An entry that cannot fit in the write buffer even when it is empty goes
 * to the file directly, together with the buffer's partial last block.  If
 * the write fails, the bytes it may have left past the logical end are cut
 * off again, exactly at append_end: left in the partial block they would be
 * sealed into the file by a rotation (recovery would then call it
 * corrupted), and past it a value, which is user data, could imitate
 * entries that a later recovery scan would find.
 */
static bool
append_large(ArmdbShardState *st, ArmdbShardFiles *files,
			 const ArmdbEntryHeader *hdr, const void *value, ArmdbError *err)
{
	uint64		from;
	uint32		hsize = armdb_entry_header_size(hdr->gsn);
	uint64		entry_len = armdb_entry_size(hdr->gsn, hdr->value_len);
	uint64		end = st->append_end + entry_len;
	ArmdbAlignedBuf tmp;
	char	   *p;
	int			fd;
	bool		ok;

	/* the buffer holds nothing unwritten: its partial block is all we need */
	if (!buffer_write_out(st, files, err))
		return false;
	buffer_slide(st);
	from = st->buf_start;

	if (!armdb_aligned_alloc(&tmp, ARMDB_BLOCK_CEIL(end) - from, err))
		return false;
	memset(tmp.data, 0, tmp.size);
	p = tmp.data;
	memcpy(p, armdb_shard_buf(st), st->append_end - from);
	p += st->append_end - from;
	memcpy(p, hdr, hsize);
	memcpy(p + hsize, value, hdr->value_len);

	if (files->write_barrier &&
		!files->write_barrier(files->write_barrier_arg, err))
	{
		armdb_aligned_free(&tmp);
		return false;
	}
	fd = armdb_shard_file_fd(files, st->active_file_id, err);
	ok = fd >= 0 && armdb_io_pwrite(files->io, fd, tmp.data, tmp.size, from, err);
	if (!ok && fd >= 0)
	{
		char		path[MAXPGPATH];
		ArmdbError	terr;

		armdb_file_path(path, files->dir, st->active_file_id, ARMDB_FILE_DATA);
		if (!armdb_file_truncate(fd, path, st->append_end, &terr))
			st->failed = true;	/* cannot vouch for the file's tail now */
	}
	if (ok)
	{
		/* keep the new partial last block, as buffer_slide would */
		st->append_end = st->written_end = end;
		st->buf_start = ARMDB_BLOCK_FLOOR(end);
		memset(armdb_shard_buf(st), 0, st->buf_size);
		memcpy(armdb_shard_buf(st), tmp.data + (st->buf_start - from), end - st->buf_start);
	}
	armdb_aligned_free(&tmp);
	return ok;
}

bool
armdb_shard_append_place(ArmdbShardState *st, ArmdbShardFiles *files,
						 ArmdbEntryHeader *hdr, const void **value,
						 ArmdbLocation *loc, uint32 *sealed_file_id,
						 ArmdbError *err)
{
	uint64		entry_len;
	/* every entry of an encrypted table is sealed, those without a value too */
	bool		encrypt = files->encrypt;

	*sealed_file_id = 0;
	if (st->failed)
		return shard_failed(st, err);
	if (hdr->value_len > ARMDB_MAX_VALUE_LEN - (encrypt ? ARMDB_CIPHER_TAG_LEN : 0))
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "entry value of %u bytes exceeds the maximum of %u",
						   hdr->value_len, ARMDB_MAX_VALUE_LEN -
						   (encrypt ? ARMDB_CIPHER_TAG_LEN : 0));
	if (!armdb_gsn_flags_valid(hdr->gsn))
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "entry gsn %llx has unknown flags",
						   (unsigned long long) hdr->gsn);
	if (encrypt)
	{
		hdr->gsn |= ARMDB_GSN_FLAG_ENCRYPTED;
		hdr->value_len += ARMDB_CIPHER_TAG_LEN;
	}
	armdb_entry_choose_header(hdr);
	entry_len = armdb_entry_size(hdr->gsn, hdr->value_len);

	/*
	 * An encrypted value goes only to a file this server life created, and
	 * encrypted (cipher.h: a file found at start-up may have had entries
	 * past its recovered end, under the same key and gsns).
	 */
	if (st->active_file_id == 0)
	{
		if (!start_new_file(st, files, successor_id(st), err))
			return false;
	}
	else if (append_starts_file(st, entry_len, encrypt))
	{
		uint32		old = st->active_file_id;

		/* a sealed file stays sealed even if its successor fails to appear */
		if ((!st->sealed && !seal_active_file(st, files, err)) ||
			!start_new_file(st, files, successor_id(st), err))
			return false;
		*sealed_file_id = old;
	}

	/*
	 * Room in the buffer now, before the caller logs the entry: a larger
	 * buffer is new shared memory, which can fail with an ERROR (a dynamic
	 * shared memory segment the system refuses), and that must come before
	 * the entry's WAL record, not between it and the entry.
	 */
	buffer_make_room(st, files, entry_len);

	if (encrypt)
	{
		if (!seal_value(st, files, hdr, *value, err))
			return false;
		*value = files->sealed_value;
	}
	armdb_entry_seal(hdr, *value);

	loc->file_id = st->active_file_id;
	loc->offset = (uint32) st->append_end;
	loc->len = (uint32) entry_len;
	return true;
}

bool
armdb_shard_append_copy(ArmdbShardState *st, ArmdbShardFiles *files,
						const ArmdbEntryHeader *hdr, const void *value,
						ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);
	uint64		entry_len = armdb_entry_size(hdr->gsn, hdr->value_len);
	uint64		used;

	if (st->failed)
		return shard_failed(st, err);

	/* room, as armdb_shard_append_place made it; else write out */
	buffer_make_room(st, files, entry_len);
	used = st->append_end - st->buf_start;
	if (used + entry_len > st->buf_size)
	{
		if (!buffer_write_out(st, files, err))
			return false;
		buffer_slide(st);
		used = st->append_end - st->buf_start;
	}
	if (used + entry_len > st->buf_size)
		return append_large(st, files, hdr, value, err);

	memcpy(armdb_shard_buf(st) + used, hdr, hsize);
	if (hdr->value_len > 0)
		memcpy(armdb_shard_buf(st) + used + hsize, value, hdr->value_len);
	st->append_end += entry_len;
	return true;
}

bool
armdb_shard_append(ArmdbShardState *st, ArmdbShardFiles *files,
				   ArmdbEntryHeader *hdr, const void *value,
				   ArmdbLocation *loc, uint32 *sealed_file_id, ArmdbError *err)
{
	return armdb_shard_append_place(st, files, hdr, &value, loc,
									sealed_file_id, err) &&
		armdb_shard_append_copy(st, files, hdr, value, err);
}

bool
armdb_shard_seal(ArmdbShardState *st, ArmdbShardFiles *files,
				 uint32 *sealed_file_id, ArmdbError *err)
{
	uint32		old = st->active_file_id;

	*sealed_file_id = 0;
	if (st->failed)
		return shard_failed(st, err);
	if (old == 0 || (st->append_end <= ARMDB_FILE_HEADER_SIZE && !st->sealed))
		return true;			/* nothing to close */
	if ((!st->sealed && !seal_active_file(st, files, err)) ||
		!start_new_file(st, files, successor_id(st), err))
		return false;
	*sealed_file_id = old;
	return true;
}

bool
armdb_shard_write_out(ArmdbShardState *st, ArmdbShardFiles *files,
					  ArmdbPos *reached, ArmdbError *err)
{
	if (st->failed)
		return shard_failed(st, err);
	if (!buffer_write_out(st, files, err))
		return false;
	*reached = armdb_shard_end(st);
	return true;
}

bool
armdb_shard_sync(ArmdbShardState *st, ArmdbShardFiles *files, ArmdbPos pos,
				 ArmdbError *err)
{
	int			fd;

	if (st->failed)
		return shard_failed(st, err);

	fd = armdb_shard_file_fd(files, ARMDB_POS_FILE(pos), err);
	if (fd < 0)
		return false;
	if (!armdb_io_fdatasync(files->io, fd, err))
	{
		st->failed = true;
		return armdb_error_context(err, "could not fsync data file %06u of \"%s\"",
								   ARMDB_POS_FILE(pos), files->dir);
	}
	return true;
}

bool
armdb_shard_flush(ArmdbShardState *st, ArmdbShardFiles *files, ArmdbPos upto,
				  ArmdbError *err)
{
	ArmdbPos	reached;

	if (st->failed)
		return shard_failed(st, err);
	if (upto <= st->flushed)
		return true;
	if (!armdb_shard_write_out(st, files, &reached, err) ||
		!armdb_shard_sync(st, files, reached, err))
		return false;
	armdb_shard_note_flushed(st, reached);
	return true;
}

bool
armdb_shard_release_buffer(ArmdbShardState *st)
{
	if (st->buf_ref == 0 || st->failed || st->sealed ||
		st->written_end != st->append_end)
		return false;
	st->buf_ref = 0;
	st->buf_size = 0;
	st->buf_start = ARMDB_BLOCK_FLOOR(st->append_end);
	return true;
}

bool
armdb_shard_restore_buffer(ArmdbShardState *st, ArmdbShardFiles *files,
						   uint64 buf_ref, uint32 buf_size, ArmdbError *err)
{
	uint64		partial;

	Assert(st->buf_ref == 0 && st->written_end == st->append_end);
	Assert(buf_size >= ARMDB_MIN_BUFFER_SIZE && buf_size % ARMDB_BLOCK_SIZE == 0);
	st->buf_ref = buf_ref;
	st->buf_size = buf_size;
	Assert(((uintptr_t) armdb_shard_buf(st)) % ARMDB_BLOCK_SIZE == 0);
	memset(armdb_shard_buf(st), 0, buf_size);
	st->buf_start = ARMDB_BLOCK_FLOOR(st->append_end);
	partial = st->append_end - st->buf_start;
	if (st->active_file_id != 0 && partial > 0)
	{
		size_t		nread;
		int			fd = armdb_shard_file_fd(files, st->active_file_id, err);
		bool		ok;

		/* straight into the buffer: it is block-aligned for O_DIRECT */
		ok = fd >= 0 &&
			armdb_io_pread(files->io, fd, armdb_shard_buf(st), ARMDB_BLOCK_SIZE,
						   st->buf_start, &nread, err);
		if (ok && nread < partial)
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "data file %06u of \"%s\" is shorter than its end %llu",
							 st->active_file_id, files->dir,
							 (unsigned long long) st->append_end);
		if (!ok)
		{
			st->buf_ref = 0;
			st->buf_size = 0;
			return false;
		}
		/* past the end: zeros, as the write-out wrote them */
		memset(armdb_shard_buf(st) + partial, 0, ARMDB_BLOCK_SIZE - partial);
	}
	return true;
}

bool
armdb_shard_is_buffered(const ArmdbShardState *st, const ArmdbLocation *loc)
{
	return loc->file_id == st->active_file_id &&
		(uint64) loc->offset + loc->len > st->written_end;
}

/* Check an entry image read from loc. */
static bool
check_entry(const char *dir, const ArmdbLocation *loc, const char *image,
			ArmdbEntryHeader *hdr, ArmdbError *err)
{
	ArmdbParseResult res = armdb_entry_parse(image, loc->len, hdr);

	if (res != ARMDB_PARSE_OK ||
		armdb_entry_size(hdr->gsn, hdr->value_len) != loc->len)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "entry at offset %u of data file %06u in \"%s\" is corrupted (%s)",
						   loc->offset, loc->file_id, dir,
						   res == ARMDB_PARSE_OK ? "length mismatch" :
						   res == ARMDB_PARSE_BAD ? "checksum mismatch" :
						   res == ARMDB_PARSE_ZERO ? "zeroed" : "truncated");
	return true;
}

bool
armdb_shard_read_buffered(const ArmdbShardState *st, const ArmdbLocation *loc,
						  char *dst, ArmdbEntryHeader *hdr, ArmdbError *err)
{
	if (loc->file_id != st->active_file_id ||
		loc->offset < st->buf_start ||
		(uint64) loc->offset + loc->len > st->append_end)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "entry at offset %u of data file %06u is not in the write buffer",
						   loc->offset, loc->file_id);
	memcpy(dst, armdb_shard_buf(st) + (loc->offset - st->buf_start), loc->len);
	return check_entry("write buffer", loc, dst, hdr, err);
}

/*
 * Reads through the operating system's page cache (armdb.cached_reads)
 *
 * Point reads and scans read a data file through a buffered descriptor
 * when the files allow it: a recently read row costs no device read, and a
 * scan gets the kernel's read-ahead.  Every write is O_DIRECT, and Linux
 * does not keep buffered and direct I/O of one file coherent: the write
 * invalidates the range's cached pages, but a buffered read racing the
 * rewrite of a file's last, partial block (each write-out rewrites it) can
 * leave that block's older image cached.  Such an image holds the block's
 * entries of that time and zeros after them, never other bytes: the rest
 * of a written block is zeros, and a position holds one entry ever, but
 * after a truncation (recovery's cut of a torn tail, a failed large append,
 * WAL redo), which drops the cached pages past the cut.  So an
 * entry read through the cache is either exactly what the file holds or
 * fails its checks (zeros, a checksum mismatch, a short read): every
 * reader of cached bytes trusts no such failure, and reads the same range
 * again with O_DIRECT, which alone decides.  A scan would otherwise take
 * the zeros for the file's end and silently stop early (t/018_power_loss.pl
 * saw that: an UPDATE found no row).
 *
 * With armdb.direct_io off (file systems without O_DIRECT) every read and
 * write is buffered and coherent; a backend that started before a reload
 * turned it off still writes with O_DIRECT, and one started after re-reads
 * through the cache: change armdb.direct_io with a restart.
 *
 * armdb.debug_stale_cached_reads (tests) makes every cached read look like
 * such an image: the second half of every file block it returns is zeros.
 */
bool		armdb_debug_stale_cached_reads = false;

/* What armdb.debug_stale_cached_reads makes of len cached bytes from off */
static void
debug_stale_image(char *buf, uint64 off, size_t len)
{
	if (!armdb_debug_stale_cached_reads)
		return;
	for (uint64 o = off; o < off + len; o++)
		if (o % ARMDB_BLOCK_SIZE >= ARMDB_BLOCK_SIZE / 2)
			buf[o - off] = 0;
}

bool
armdb_shard_pread(ArmdbShardFiles *files, uint32 file_id, bool cached,
				  char *buf, size_t len, uint64 off, size_t *nread,
				  ArmdbError *err)
{
	int			fd = shard_file_fd(files, file_id, !cached, err);

	if (fd < 0)
		return false;
	if (!armdb_io_pread(files->io, fd, buf, len, off, nread, err))
		return armdb_error_context(err, "could not read data file %06u of \"%s\"",
								   file_id, files->dir);
	if (cached)
		debug_stale_image(buf, off, *nread);
	return true;
}

void
armdb_shard_read_files_batch(ArmdbShardFiles *const *files,
							 const ArmdbLocation *locs, char *const *dst,
							 ArmdbEntryHeader *hdrs, bool *ok, int n)
{
	ArmdbError	err;
	ArmdbReadRequest *reqs;
	int		   *which;
	int			nreqs = 0;

	for (int i = 0; i < n; i++)
		ok[i] = false;
	reqs = armdb_alloc(&err, sizeof(ArmdbReadRequest) * n, "read batch");
	which = armdb_alloc(&err, sizeof(int) * n, "read batch");
	if (reqs == NULL || which == NULL)
	{
		if (reqs != NULL)
			pfree(reqs);
		if (which != NULL)
			pfree(which);
		return;					/* the callers' own reads will do */
	}
	/*
	 * Open every file first; opening one may close another's descriptor
	 * (the shard's cache, or fd.c at its limit).  Then take the descriptors
	 * as they are, opening nothing: each stays good until the batch is
	 * done, and a file closed meanwhile is left to the caller's own read.
	 */
	for (int i = 0; i < n; i++)
	{
		Assert(files[i]->cached_reads);
		(void) shard_file_fd(files[i], locs[i].file_id, false, &err);
	}
	for (int i = 0; i < n; i++)
	{
		int			fd = shard_file_current_fd(files[i], locs[i].file_id);

		if (fd < 0)
			continue;			/* the caller's own read reports it */
		reqs[nreqs].fd = fd;
		reqs[nreqs].buf = dst[i];
		reqs[nreqs].len = locs[i].len;
		reqs[nreqs].off = locs[i].offset;
		which[nreqs++] = i;
	}
	if (nreqs > 0 && armdb_io_read_batch(files[0]->io, reqs, nreqs, &err))
	{
		for (int r = 0; r < nreqs; r++)
		{
			int			i = which[r];

			if (reqs[r].nread < locs[i].len)
				continue;
			debug_stale_image(dst[i], locs[i].offset, locs[i].len);
			ok[i] = check_entry(files[i]->dir, &locs[i], dst[i], &hdrs[i],
								&err);
		}
	}
	pfree(reqs);
	pfree(which);
}

/*
 * Read the entry at loc into dst, through the page cache when cached (no
 * alignment needed: just the entry's bytes, with no bounce buffer), else
 * with one aligned read covering it (at most one device read).
 */
static bool
read_entry_once(ArmdbShardFiles *files, const ArmdbLocation *loc,
				bool cached, char *dst, ArmdbEntryHeader *hdr,
				ArmdbError *err)
{
	bool		aligned = files->direct_io && !cached;
	uint64		from = loc->offset;
	uint64		to = (uint64) loc->offset + loc->len;
	ArmdbAlignedBuf tmp = {0};
	char	   *buf = dst;
	size_t		nread;
	bool		ok;

	if (aligned)
	{
		from = ARMDB_BLOCK_FLOOR(from);
		to = ARMDB_BLOCK_CEIL(to);
		if (!armdb_aligned_alloc(&tmp, to - from, err))
			return false;
		buf = tmp.data;
	}
	ok = armdb_shard_pread(files, loc->file_id, cached, buf, to - from,
						   from, &nread, err);
	if (ok && nread < loc->offset - from + loc->len)
		ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						 "entry at offset %u of data file %06u in \"%s\" is past the end of the file",
						 loc->offset, loc->file_id, files->dir);
	else if (ok)
	{
		if (buf != dst)
			memcpy(dst, buf + (loc->offset - from), loc->len);
		ok = check_entry(files->dir, loc, dst, hdr, err);
	}
	armdb_aligned_free(&tmp);
	return ok;
}

bool
armdb_shard_read_file(ArmdbShardFiles *files, const ArmdbLocation *loc,
					  char *dst, ArmdbEntryHeader *hdr, ArmdbError *err)
{
	if (loc->len < ARMDB_ENTRY_SHORT_HEADER_SIZE)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "entry length %u is impossible", loc->len);
	if (files->cached_reads)
	{
		if (read_entry_once(files, loc, true, dst, hdr, err))
			return true;
		if (err->code != ARMDB_ERR_CORRUPT)
			return false;
	}
	/* not cached, or what the cache gave failed: the file decides */
	return read_entry_once(files, loc, false, dst, hdr, err);
}

bool
armdb_shard_read(const ArmdbShardState *st, ArmdbShardFiles *files,
				 const ArmdbLocation *loc, char *dst, ArmdbEntryHeader *hdr,
				 ArmdbError *err)
{
	if (armdb_shard_is_buffered(st, loc))
		return armdb_shard_read_buffered(st, loc, dst, hdr, err);
	return armdb_shard_read_file(files, loc, dst, hdr, err);
}
