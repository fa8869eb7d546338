/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Data file scans and start-up recovery of a shard (see recovery.h for
 *	  the rules; hint files are in hint.c).
 *
 *-------------------------------------------------------------------------
 */
#include "storage/recovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "storage/cipher.h"
#include "storage/hint.h"
#include "storage/merge.h"

#define SCAN_CHUNK_SIZE		(1024 * 1024)


/* What opening an authenticated file's entries takes (ArmdbFileAuth). */
typedef struct EntryOpener
{
	const uint8 *key;			/* the file's */
	bool		all_sealed;		/* it is authenticated: every entry is */
	char	   *plain;			/* room for a value's plaintext */
	uint32		plain_size;
} EntryOpener;

/* Open the entry at entry (header hdr), which the scan reports at offset. */
static bool
open_scanned_entry(EntryOpener *op, const ArmdbEntryHeader *hdr,
				   const char *entry, uint32 file_id, uint64 offset,
				   ArmdbError *err)
{
	uint32		plain_len;
	bool		opened;

	if (!(hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED))
	{
		/* an earlier build's file left entries without a value unsealed */
		if (op->all_sealed)
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "entry at offset %llu of data file %06u is not sealed, but its file is authenticated",
							   (unsigned long long) offset, file_id);
		if (hdr->value_len > 0)
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "entry at offset %llu of data file %06u is not encrypted, but its file is",
							   (unsigned long long) offset, file_id);
		return true;
	}
	plain_len = hdr->value_len - ARMDB_CIPHER_TAG_LEN;
	if (op->plain_size < Max(plain_len, 1))
	{
		char	   *p = armdb_alloc(err, Max(plain_len, 8192), "an entry's plaintext");

		if (p == NULL)
			return false;
		if (op->plain != NULL)
		{
			explicit_bzero(op->plain, op->plain_size);
			pfree(op->plain);
		}
		op->plain = p;
		op->plain_size = Max(plain_len, 8192);
	}
	opened = armdb_cipher_open_entry(op->key, hdr,
									 entry + armdb_entry_header_size(hdr->gsn),
									 op->plain, err);
	/* (a value that fails its tag is decrypted all the same) */
	explicit_bzero(op->plain, plain_len);
	if (opened)
		return true;
	if (err->code != ARMDB_OK)
		return false;
	return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
					   "encrypted entry at offset %llu of data file %06u failed authentication: its value, tag or header was changed",
					   (unsigned long long) offset, file_id);
}

static bool
scan_entries(const char *buf, size_t len, uint32 file_id, uint64 base_offset,
			 EntryOpener *op, ArmdbEntryCallback cb, void *arg,
			 ArmdbScanResult *acc, ArmdbParseResult *stop, ArmdbError *err)
{
	size_t		pos = 0;

	for (;;)
	{
		ArmdbEntryHeader hdr;
		ArmdbEntryInfo info;
		uint64		entry_len;

		*stop = armdb_entry_parse(buf + pos, len - pos, &hdr);
		if (*stop != ARMDB_PARSE_OK)
			break;
		entry_len = armdb_entry_size(hdr.gsn, hdr.value_len);
		if (base_offset + pos + entry_len > ARMDB_MAX_FILE_SIZE)
		{
			/* cannot be addressed with 32-bit offsets: not ours */
			*stop = ARMDB_PARSE_BAD;
			break;
		}

		if (op != NULL &&
			!open_scanned_entry(op, &hdr, buf + pos, file_id, base_offset + pos,
								err))
			return false;

		info.gsn = hdr.gsn;
		info.xid = hdr.xid;
		info.slot = hdr.slot;
		info.root_slot = hdr.root_slot;
		info.prev_slot = hdr.prev_slot;
		info.file_id = file_id;
		info.offset = (uint32) (base_offset + pos);
		info.len = (uint32) entry_len;
		if (cb != NULL && !cb(arg, &info, err))
			return false;

		acc->entries++;
		acc->max_gsn = Max(acc->max_gsn, hdr.gsn & ARMDB_GSN_MAX);
		pos += entry_len;
		acc->valid_end = base_offset + pos;
	}
	return true;
}

bool
armdb_scan_buffer(const char *buf, size_t len, uint32 file_id,
				  uint64 base_offset, ArmdbEntryCallback cb, void *arg,
				  ArmdbScanResult *acc, ArmdbParseResult *stop,
				  ArmdbError *err)
{
	return scan_entries(buf, len, file_id, base_offset, NULL, cb, arg, acc,
						stop, err);
}

/* Are the bytes [from, size) of the file all zero? */
static bool
rest_is_zero(ArmdbIo *io, int fd, ArmdbAlignedBuf *buf, uint64 from,
			 uint64 size, bool *zero, ArmdbError *err)
{
	uint64		off = ARMDB_BLOCK_FLOOR(from);

	*zero = true;
	while (off < size)
	{
		size_t		nread;
		uint64		skip = from > off ? from - off : 0;

		if (!armdb_io_pread(io, fd, buf->data, buf->size, off, &nread, err))
			return false;
		if (nread == 0)
			break;
		if (nread > skip && !armdb_all_zero(buf->data + skip, nread - skip))
		{
			*zero = false;
			return true;
		}
		off += nread;
	}
	return true;
}

/*
 * Could an entry start at p (in_buf bytes of it read, avail to the end of
 * the file)?  The
 * cheap checks of armdb_entry_parse() and a few more on fields whose range
 * is known (slots are 32-bit, gsns start at 1), so that a search through
 * damaged bytes computes a CRC only where an entry is plausible.
 */
static bool
plausible_entry_header(const char *p, uint64 in_buf, uint64 avail,
					   ArmdbEntryHeader *hdr)
{
	if (!armdb_entry_header_copy(p, Min(in_buf, avail), hdr))
		return false;
	return hdr->value_len <= ARMDB_MAX_VALUE_LEN &&
		armdb_entry_size(hdr->gsn, hdr->value_len) <= avail &&
		armdb_gsn_flags_valid(hdr->gsn) &&
		(hdr->gsn & ARMDB_GSN_MAX) != 0 &&
		hdr->slot <= PG_UINT32_MAX &&
		(hdr->root_slot == ARMDB_INVALID_SLOT || hdr->root_slot <= PG_UINT32_MAX) &&
		(hdr->prev_slot == ARMDB_INVALID_SLOT || hdr->prev_slot <= PG_UINT32_MAX);
}

/* Is there a whole entry with a good CRC at offset off? */
static bool
entry_at(ArmdbIo *io, int fd, uint64 off, uint32 entry_len, bool *valid,
		 ArmdbError *err)
{
	uint64		from = ARMDB_BLOCK_FLOOR(off);
	ArmdbAlignedBuf tmp;
	ArmdbEntryHeader hdr;
	size_t		nread;
	bool		ok;

	*valid = false;
	if (!armdb_aligned_alloc(&tmp, ARMDB_BLOCK_CEIL(off + entry_len) - from, err))
		return false;
	ok = armdb_io_pread(io, fd, tmp.data, tmp.size, from, &nread, err);
	if (ok && nread >= off - from + entry_len)
		*valid = armdb_entry_parse(tmp.data + (off - from), entry_len, &hdr) ==
			ARMDB_PARSE_OK;
	armdb_aligned_free(&tmp);
	return ok;
}

bool
armdb_find_next_entry(ArmdbIo *io, int fd, uint64 from, uint64 size,
					  uint64 *next, ArmdbError *err)
{
	ArmdbAlignedBuf buf;
	uint64		pos = from + 1;
	bool		ok = true;

	*next = 0;
	if (!armdb_aligned_alloc(&buf, SCAN_CHUNK_SIZE, err))
		return false;
	while (ok && pos + ARMDB_ENTRY_SHORT_HEADER_SIZE <= size)
	{
		uint64		off = ARMDB_BLOCK_FLOOR(pos);
		uint64		start = pos;
		size_t		nread;
		uint64		min_left;

		if (!armdb_io_pread(io, fd, buf.data, buf.size, off, &nread, err))
		{
			ok = false;
			break;
		}

		/*
		 * A whole header of either length must be in the buffer, unless the
		 * file ends there: the next round reads on from pos.
		 */
		min_left = off + nread >= size ?
			ARMDB_ENTRY_SHORT_HEADER_SIZE : ARMDB_ENTRY_HEADER_SIZE;

		for (; pos + min_left <= off + nread; pos++)
		{
			const char *p = buf.data + (pos - off);
			ArmdbEntryHeader hdr;
			uint64		len;
			bool		valid;

			if (!plausible_entry_header(p, off + nread - pos, size - pos, &hdr))
				continue;
			len = armdb_entry_size(hdr.gsn, hdr.value_len);
			if (pos + len <= off + nread)
				valid = armdb_entry_parse(p, len, &hdr) == ARMDB_PARSE_OK;
			else if (!entry_at(io, fd, pos, (uint32) len, &valid, err))
			{
				ok = false;
				break;
			}
			if (valid)
			{
				*next = pos;
				armdb_aligned_free(&buf);
				return true;
			}
		}
		if (pos == start)
			break;				/* the file ended early: nothing more to read */
	}
	armdb_aligned_free(&buf);
	return ok;
}

bool
armdb_scan_data_file(ArmdbIo *io, int fd, uint32 file_id, bool skip_damage,
					 const ArmdbFileAuth *auth, ArmdbEntryCallback cb,
					 void *arg, ArmdbScanResult *result, ArmdbError *err)
{
	uint8		file_key[ARMDB_CIPHER_KEY_LEN];
	EntryOpener opener = {file_key, false, NULL, 0};
	EntryOpener *op = NULL;
	ArmdbAlignedBuf buf;
	uint64		size;
	uint64		chunk_off = 0;
	size_t		chunk_len;
	uint64		pos;
	bool		zero;
	bool		ok = false;

	memset(result, 0, sizeof(*result));
	if (!armdb_file_size(fd, "data file", &size, err))
		return false;
	result->file_size = size;
	if (!armdb_aligned_alloc(&buf, SCAN_CHUNK_SIZE, err))
		return false;

	if (!armdb_io_pread(io, fd, buf.data, buf.size, 0, &chunk_len, err))
		goto done;

	/* a file whose creation did not complete: no header, nothing else */
	if (chunk_len < ARMDB_FILE_HEADER_SIZE ||
		armdb_all_zero(buf.data, ARMDB_FILE_HEADER_SIZE))
	{
		if (!rest_is_zero(io, fd, &buf, 0, size, &zero, err))
			goto done;
		if (!zero)
		{
			armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						"data file %06u has no header but is not empty",
						file_id);
			goto done;
		}
		result->header_missing = true;
		result->end = ARMDB_SCAN_END_CLEAN;
		ok = true;
		goto done;
	}
	if (!armdb_file_header_check(buf.data, chunk_len, file_id, err))
	{
		/*
		 * A file's header is written and fsynced before anything else goes
		 * into it, and later rewrites of its first block leave those bytes
		 * unchanged.  So a bad header on a file that holds nothing else is a
		 * creation cut short, not damage.
		 */
		if (size > ARMDB_BLOCK_SIZE || chunk_len < ARMDB_FILE_HEADER_SIZE ||
			!rest_is_zero(io, fd, &buf, ARMDB_FILE_HEADER_SIZE, size, &zero,
						  err) || !zero)
			goto done;
		armdb_error_clear(err);
		result->header_missing = true;
		result->end = ARMDB_SCAN_END_CLEAN;
		ok = true;
		goto done;
	}

	if (auth != NULL)
	{
		ArmdbFileHeader fh;

		memcpy(&fh, buf.data, sizeof(fh));
		if (auth->encrypted && !(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED))
		{
			armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						"data file %06u of an encrypted table is not encrypted",
						file_id);
			goto done;
		}
		/* every encrypted file's sealed entries are opened */
		if (fh.flags & ARMDB_FILE_FLAG_ENCRYPTED)
		{
			if (!armdb_cipher_header_key(auth, &fh, file_key, err))
				goto done;
			opener.all_sealed = (fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED) != 0;
			op = &opener;
		}
	}

	pos = result->valid_end = ARMDB_FILE_HEADER_SIZE;
	for (;;)
	{
		ArmdbParseResult stop;
		uint64		need = 0;
		uint64		next;
		bool		stopped;

		if (!scan_entries(buf.data + (pos - chunk_off),
						  chunk_len - (pos - chunk_off), file_id, pos, op,
						  cb, arg, result, &stop, err))
			goto done;
		pos = result->valid_end;
		stopped = stop != ARMDB_PARSE_SHORT || chunk_off + chunk_len >= size;
		if (!stopped)
		{
			/* the entry at pos continues past this chunk: how far? */
			need = ARMDB_ENTRY_PREFIX_SIZE;
			if (chunk_off + chunk_len - pos >= ARMDB_ENTRY_PREFIX_SIZE)
			{
				ArmdbEntryHeader hdr;

				memcpy(&hdr, buf.data + (pos - chunk_off), ARMDB_ENTRY_PREFIX_SIZE);
				need = armdb_entry_size(hdr.gsn, hdr.value_len);
			}
			/* cannot be complete: torn at the end, or damaged */
			stopped = pos + need > size;
		}
		if (stopped)
		{
			if (!skip_damage)
				break;
			/* padding to the end, or damage with a valid entry after it? */
			if (!rest_is_zero(io, fd, &buf, pos, size, &zero, err))
				goto done;
			if (zero)
				break;
			if (!armdb_find_next_entry(io, fd, pos, size, &next, err))
				goto done;
			if (next == 0)
				break;			/* a bad tail: the caller decides */
			if (result->skipped++ == 0)
				result->first_skipped = pos;
			result->skipped_bytes += next - pos;
			pos = result->valid_end = next;
			need = 0;
		}

		chunk_off = ARMDB_BLOCK_FLOOR(pos);
		need = Max(SCAN_CHUNK_SIZE, ARMDB_BLOCK_CEIL(pos - chunk_off + need));
		if (need > buf.size)
		{
			armdb_aligned_free(&buf);
			if (!armdb_aligned_alloc(&buf, need, err))
				goto done;		/* (buf is empty: freeing it again is safe) */
		}
		if (!armdb_io_pread(io, fd, buf.data, buf.size, chunk_off, &chunk_len,
							err))
			goto done;
	}

	/* what follows the last good entry: padding, or a torn write? */
	if (!rest_is_zero(io, fd, &buf, pos, size, &zero, err))
		goto done;
	result->end = zero ? ARMDB_SCAN_END_CLEAN : ARMDB_SCAN_END_TORN;
	ok = true;

done:
	armdb_aligned_free(&buf);
	if (opener.plain != NULL)
		pfree(opener.plain);
	if (op != NULL)
		explicit_bzero(file_key, sizeof(file_key));
	return ok;
}

/* ----------------
 * Shard recovery
 * ----------------
 */
typedef struct RecoverCallback
{
	const ArmdbFileAuth *auth;
	ArmdbEntryCallback cb;
	void	   *arg;
	ArmdbRecoveryReport *report;
	uint32		flags;			/* ARMDB_RECOVER_* */
	bool		failed;			/* the caller's callback failed */
} RecoverCallback;

static bool
recover_entry(void *arg, const ArmdbEntryInfo *entry, ArmdbError *err)
{
	RecoverCallback *rc = arg;

	if (rc->cb != NULL && !rc->cb(rc->arg, entry, err))
	{
		rc->failed = true;
		return false;
	}
	rc->report->entries++;
	rc->report->max_gsn = Max(rc->report->max_gsn, entry->gsn & ARMDB_GSN_MAX);
	return true;
}

static int
cmp_file_id(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

typedef struct ShardListing
{
	uint32	   *data_ids;
	uint32		n_data;
	uint32	   *hint_ids;		/* sorted */
	uint32		n_hint;
} ShardListing;

/* List the shard's files; remove .tmp files on the way. */
static bool
list_shard(const char *dir, uint32 flags, ShardListing *ls,
		   ArmdbRecoveryReport *report,
		   ArmdbError *err)
{
	DIR		   *d;
	struct dirent *de;
	uint32		cap_data = 0;
	uint32		cap_hint = 0;
	bool		ok = true;

	ls->n_data = ls->n_hint = 0;
	ls->data_ids = ls->hint_ids = NULL;

	d = opendir(dir);
	if (d == NULL)
		return armdb_error(err, ARMDB_ERR_IO, errno,
						   "could not open directory \"%s\": %s", dir,
						   strerror(errno));
	while (ok && (errno = 0, de = readdir(d)) != NULL)
	{
		uint32		id;
		ArmdbFileKind kind;

		if (!armdb_file_name_parse(de->d_name, &id, &kind) ||
			kind == ARMDB_FILE_MERGE)
			continue;
		if (kind == ARMDB_FILE_TMP && (flags & ARMDB_RECOVER_NO_CUT))
			continue;			/* replay may be writing it */
		if (kind == ARMDB_FILE_TMP)
		{
			char		path[MAXPGPATH];

			armdb_file_path(path, dir, id, ARMDB_FILE_TMP);
			ok = armdb_unlink(path, err);
			report->removed_tmp++;
			continue;
		}
		if (kind == ARMDB_FILE_DATA)
			ok = armdb_file_list_add(&ls->data_ids, &ls->n_data, &cap_data,
									 id, err);
		else
			ok = armdb_file_list_add(&ls->hint_ids, &ls->n_hint, &cap_hint,
									 id, err);
	}
	if (ok && errno != 0)
		ok = armdb_error(err, ARMDB_ERR_IO, errno,
						 "could not read directory \"%s\": %s", dir,
						 strerror(errno));
	closedir(d);
	if (ok && report->removed_tmp > 0)
		ok = armdb_fsync_path(dir, true, err);

	if (ls->n_data > 1)
		qsort(ls->data_ids, ls->n_data, sizeof(uint32), cmp_file_id);
	if (ls->n_hint > 1)
		qsort(ls->hint_ids, ls->n_hint, sizeof(uint32), cmp_file_id);
	return ok;
}

/*
 * Salvaging: copy the bytes [from, size) of a data file aside, to
 * NNNNNN.damaged.<from> beside it (fsynced), before they are cut off.
 */
static bool
save_damaged_tail(ArmdbIo *io, int fd, const char *dir, uint32 file_id,
				  uint64 from, uint64 size, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbAlignedBuf buf;
	uint64		off = ARMDB_BLOCK_FLOOR(from);
	int			out;
	bool		ok = true;

	snprintf(path, sizeof(path), "%s/%06u.damaged.%llu", dir, file_id,
			 (unsigned long long) from);
	out = armdb_file_open(path, O_WRONLY | O_CREAT | O_TRUNC, false, NULL, err);
	if (out < 0)
		return false;
	if (!armdb_aligned_alloc(&buf, SCAN_CHUNK_SIZE, err))
	{
		armdb_file_close(out);
		return false;
	}
	while (ok && off < size)
	{
		size_t		nread;
		uint64		skip = from > off ? from - off : 0;

		ok = armdb_io_pread(io, fd, buf.data, buf.size, off, &nread, err);
		if (!ok || nread <= skip)
			break;
		ok = armdb_io_pwrite(io, out, buf.data + skip, nread - skip,
							 off + skip - from, err);
		off += nread;
	}
	ok = ok && armdb_io_fdatasync(io, out, err);
	armdb_file_close(out);
	armdb_aligned_free(&buf);
	if (ok)
		ok = armdb_fsync_path(dir, true, err);
	if (!ok)
		armdb_error_context(err, "could not save the damaged bytes of data file %06u to \"%s\"",
							file_id, path);
	return ok;
}

/*
 * The error for damage found in path by scan; next, if not 0, is where a
 * valid entry follows it.
 */
static bool
corrupt_at(const char *path, const ArmdbScanResult *scan, uint64 next,
		   ArmdbError *err)
{
	if (next != 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file \"%s\" is corrupted at offset %llu of %llu: a valid entry follows at offset %llu",
						   path, (unsigned long long) scan->valid_end,
						   (unsigned long long) scan->file_size,
						   (unsigned long long) next);
	return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
					   "data file \"%s\" is corrupted at offset %llu of %llu",
					   path, (unsigned long long) scan->valid_end,
					   (unsigned long long) scan->file_size);
}

/*
 * Cut a file's bad tail: after a crash (a torn last write) or when
 * salvaging, which copies the bytes aside first.
 */
static bool
cut_tail(ArmdbIo *io, int fd, const char *dir, uint32 file_id,
		 const char *path, const ArmdbScanResult *scan, RecoverCallback *rc,
		 ArmdbError *err)
{
	if ((rc->flags & ARMDB_RECOVER_SALVAGE) &&
		!save_damaged_tail(io, fd, dir, file_id, scan->valid_end,
						   scan->file_size, err))
		return false;
	return armdb_file_truncate(fd, path, scan->valid_end, err) &&
		armdb_io_fdatasync(io, fd, err);
}

/*
 * Salvaging a file scan found damage in (ranges skipped, a bad tail): cut
 * the tail, its copy kept, and note it all in the report.
 */
static bool
salvage_scanned(ArmdbIo *io, int fd, const char *dir, uint32 file_id,
				const char *path, const ArmdbScanResult *scan,
				RecoverCallback *rc, ArmdbError *err)
{
	ArmdbRecoveryReport *report = rc->report;
	uint64		cut = scan->end == ARMDB_SCAN_END_TORN ?
		scan->file_size - scan->valid_end : 0;

	Assert(scan->skipped > 0 || cut > 0);
	if (cut > 0 && !cut_tail(io, fd, dir, file_id, path, scan, rc, err))
		return false;
	if (report->salvaged_files++ == 0)
	{
		strlcpy(report->first_salvaged, path, sizeof(report->first_salvaged));
		report->first_salvaged_offset = scan->skipped > 0 ?
			scan->first_skipped : scan->valid_end;
	}
	report->salvaged_bytes += scan->skipped_bytes + cut;
	return true;
}

/* Recover an immutable (not the newest) data file: hint, else scan. */
static bool
recover_immutable_file(ArmdbIo *io, const char *dir, bool direct_io,
					   uint32 file_id, bool has_hint, RecoverCallback *rc,
					   ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbScanResult scan;
	bool		salvage = (rc->flags & ARMDB_RECOVER_SALVAGE) != 0;
	uint64		size;
	int			fd;
	bool		ok;

	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, salvage ? O_RDWR : O_RDONLY, direct_io, NULL,
						 err);
	if (fd < 0)
		return false;
	if (!armdb_file_size(fd, path, &size, err))
	{
		armdb_file_close(fd);
		return false;
	}

	/*
	 * Salvaging reads the entries themselves: a hint file lists where they
	 * are, not whether they are intact, so it would hide the damage.
	 */
	if (has_hint && !salvage)
	{
		if (armdb_hint_load(io, dir, file_id, size, rc->auth, recover_entry,
							rc, err))
		{
			armdb_file_close(fd);
			rc->report->hinted_files++;
			return true;
		}
		if (rc->failed || err->code != ARMDB_ERR_CORRUPT)
		{
			armdb_file_close(fd);
			return rc->failed ? false :
				armdb_error_context(err, "could not recover \"%s\"", path);
		}
		/* a bad hint is only a lost shortcut: scan the data file */
		if (rc->report->bad_hints++ == 0)
			armdb_file_path(rc->report->first_bad_hint, dir, file_id,
							ARMDB_FILE_HINT);
		armdb_error_clear(err);
	}

	ok = armdb_scan_data_file(io, fd, file_id, salvage, rc->auth,
							  recover_entry, rc, &scan, err);
	if (ok)
		rc->report->scanned_files++;

	/*
	 * An immutable file was fsynced before its successor was created, so a
	 * bad entry in it is damage, not a torn write: report, cut nothing --
	 * unless salvaging, which keeps the good entries (and a copy of a
	 * damaged tail) and writes a hint so that the damage is not met again.
	 */
	if (ok && !salvage && (scan.header_missing || scan.end != ARMDB_SCAN_END_CLEAN))
		ok = corrupt_at(path, &scan, 0, err);
	else if (ok && salvage && !scan.header_missing &&
			 (scan.skipped > 0 || scan.end != ARMDB_SCAN_END_CLEAN))
		ok = salvage_scanned(io, fd, dir, file_id, path, &scan, rc, err) &&
			armdb_hint_build(io, dir, file_id, direct_io, true, rc->auth, err);
	armdb_file_close(fd);
	return ok;
}

/* Recover the newest data file: scan it and cut a torn tail. */
static bool
recover_active_file(ArmdbIo *io, const char *dir, bool direct_io,
					uint32 file_id, RecoverCallback *rc, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbScanResult scan;
	ArmdbRecoveryReport *report = rc->report;
	bool		salvage = (rc->flags & ARMDB_RECOVER_SALVAGE) != 0;
	int			fd;
	bool		ok;

	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDWR, direct_io, NULL, err);
	if (fd < 0)
		return false;
	ok = armdb_scan_data_file(io, fd, file_id, salvage, rc->auth,
							  recover_entry, rc, &scan, err);
	if (ok)
		report->scanned_files++;

	if (ok && scan.header_missing)
	{
		/*
		 * Created, but its header never reached the disk, so it holds
		 * nothing: end_offset 0 tells armdb_shard_open() to start it afresh.
		 */
		scan.valid_end = 0;
	}
	else if (ok && scan.end == ARMDB_SCAN_END_TORN && !salvage)
	{
		uint64		next = 0;

		/*
		 * A torn write is the last, unfinished one: it leaves bad bytes at
		 * the end of the file, with nothing valid after them, and only when
		 * the server did not shut down cleanly.  Anything else is damage.
		 */
		if (!(rc->flags & (ARMDB_RECOVER_AFTER_CRASH | ARMDB_RECOVER_NO_CUT)))
			ok = corrupt_at(path, &scan, 0, err);
		else
			ok = armdb_find_next_entry(io, fd, scan.valid_end, scan.file_size,
									   &next, err);
		if (ok && next != 0)
			ok = corrupt_at(path, &scan, next, err);
		else if (ok && (rc->flags & ARMDB_RECOVER_NO_CUT))
			report->torn_tail = true;
		else if (ok)
		{
			/* appends continue at valid_end; nothing after it may survive */
			report->torn_tail = true;
			report->truncated_bytes = scan.file_size - scan.valid_end;
			ok = cut_tail(io, fd, dir, file_id, path, &scan, rc, err);
		}
	}
	else if (ok && salvage &&
			 (scan.skipped > 0 || scan.end == ARMDB_SCAN_END_TORN))
	{
		ok = salvage_scanned(io, fd, dir, file_id, path, &scan, rc, err);
		report->active_salvaged = ok && scan.skipped > 0;
	}
	armdb_file_close(fd);
	if (!ok && err->code == ARMDB_ERR_CORRUPT)
		return false;
	if (!ok)
		return armdb_error_context(err, "could not recover \"%s\"", path);

	report->last_file_id = file_id;
	report->end_offset = scan.valid_end;
	return true;
}

bool
armdb_recover_shard(ArmdbIo *io, const char *dir, bool direct_io,
					uint32 flags, const ArmdbFileAuth *auth,
					ArmdbEntryCallback cb, void *arg,
					ArmdbRecoveryReport *report, ArmdbError *err)
{
	ShardListing ls = {NULL, 0, NULL, 0};
	RecoverCallback rc = {auth, cb, arg, report, flags, false};
	uint32		hint_pos = 0;
	uint32		active;
	bool		ok;

	memset(report, 0, sizeof(*report));
	if ((flags & ARMDB_RECOVER_MISSING_OK) &&
		access(dir, F_OK) != 0 && errno == ENOENT)
		return true;

	/* a merge that committed is finished before anything is read */
	ok = armdb_merge_recover(dir, &report->finished_merges, err) &&
		list_shard(dir, flags, &ls, report, err);
	report->data_files = ls.n_data;
	if (ok && ls.n_data > 0)
		report->max_file_id = ls.data_ids[ls.n_data - 1];
	if (ok && ls.n_hint > 0)
		report->max_file_id = Max(report->max_file_id, ls.hint_ids[ls.n_hint - 1]);

	/*
	 * The active file is the newest one that is not a merge output: merge
	 * outputs take new numbers, but are complete (fsynced before their
	 * merge committed) and never appended to.
	 */
	active = ls.n_data;
	while (ok && active > 0)
	{
		bool		merged;

		ok = armdb_data_file_is_merged(dir, ls.data_ids[active - 1], &merged,
									   err);
		if (ok && !merged)
			break;
		active--;
	}
	for (uint32 i = 0; ok && i < ls.n_data; i++)
	{
		uint32		id = ls.data_ids[i];
		bool		has_hint;

		while (hint_pos < ls.n_hint && ls.hint_ids[hint_pos] < id)
			hint_pos++;
		has_hint = hint_pos < ls.n_hint && ls.hint_ids[hint_pos] == id;

		if (i + 1 != active)
			ok = recover_immutable_file(io, dir, direct_io, id, has_hint, &rc,
										err);
		else
			ok = recover_active_file(io, dir, direct_io, id, &rc, err);
	}
	if (ls.data_ids)
		pfree(ls.data_ids);
	if (ls.hint_ids)
		pfree(ls.hint_ids);
	return ok;
}
