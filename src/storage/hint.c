/*-------------------------------------------------------------------------
 *
 * hint.c
 *	  Hint files: writing one for an immutable data file (from a scan of it,
 *	  or from entries the caller already has) and loading one back (see
 *	  hint.h; the file format is in format.h).
 *
 *-------------------------------------------------------------------------
 */
#include "storage/hint.h"

#include <fcntl.h>

#include "port/pg_crc32c.h"
#include "storage/recovery.h"

typedef struct EntryArray
{
	ArmdbEntryInfo *items;
	uint32		n;
	uint32		cap;
} EntryArray;

static bool
collect_entry(void *arg, const ArmdbEntryInfo *entry, ArmdbError *err)
{
	EntryArray *a = arg;

	if (a->n == a->cap)
	{
		uint32		cap = a->cap == 0 ? 1024 : a->cap * 2;
		ArmdbEntryInfo *items = armdb_alloc(err, sizeof(ArmdbEntryInfo) * cap,
											"hint entries");

		if (items == NULL)
			return false;
		if (a->n > 0)
			memcpy(items, a->items, sizeof(ArmdbEntryInfo) * a->n);
		if (a->items)
			pfree(a->items);
		a->items = items;
		a->cap = cap;
	}
	a->items[a->n++] = *entry;
	return true;
}

bool
armdb_hint_write(const char *dir, uint32 file_id,
				 const ArmdbEntryInfo *entries, uint32 n, uint64 data_end,
				 const uint8 *file_key, ArmdbError *err)
{
	char		tmp_path[MAXPGPATH];
	char		hint_path[MAXPGPATH];
	size_t		len = sizeof(ArmdbHintHeader) + (size_t) n * sizeof(ArmdbHintRecord) +
		(file_key != NULL ? ARMDB_HINT_MAC_LEN : 0) + sizeof(ArmdbHintTrailer);
	char	   *image;
	char	   *p;
	ArmdbHintHeader hh;
	ArmdbHintTrailer tr;
	bool		ok;

	image = armdb_alloc(err, len, "hint file image");
	if (image == NULL)
		return false;

	memset(&hh, 0, sizeof(hh));
	hh.magic = ARMDB_HINT_MAGIC;
	hh.version = ARMDB_FORMAT_VERSION;
	hh.file_id = file_id;
	hh.nrecords = n;
	hh.data_end = data_end;
	if (file_key != NULL)
		hh.flags |= ARMDB_HINT_FLAG_MAC;
	memcpy(image, &hh, sizeof(hh));
	p = image + sizeof(hh);
	for (uint32 i = 0; i < n; i++)
	{
		ArmdbHintRecord rec;

		armdb_hint_record_from_info(&rec, &entries[i]);
		memcpy(p, &rec, sizeof(rec));
		p += sizeof(rec);
	}
	if (file_key != NULL)
	{
		uint8		hint_key[ARMDB_CIPHER_KEY_LEN];

		ok = armdb_cipher_hint_key(file_key, hint_key, err) &&
			armdb_cipher_hint_mac(hint_key, image, p - image, (uint8 *) p, err);
		explicit_bzero(hint_key, sizeof(hint_key));
		if (!ok)
		{
			pfree(image);
			return false;
		}
		p += ARMDB_HINT_MAC_LEN;
	}
	INIT_CRC32C(tr.crc);
	COMP_CRC32C(tr.crc, image, p - image);
	FIN_CRC32C(tr.crc);
	tr.magic = ARMDB_HINT_MAGIC;
	memcpy(p, &tr, sizeof(tr));

	/* write tmp, fsync, rename, fsync dir: the .hint is whole or absent */
	armdb_file_path(tmp_path, dir, file_id, ARMDB_FILE_TMP);
	armdb_file_path(hint_path, dir, file_id, ARMDB_FILE_HINT);
	ok = armdb_write_file_durably(tmp_path, hint_path, dir, image, len, err);
	pfree(image);
	return ok;
}

bool
armdb_hint_build(ArmdbIo *io, const char *dir, uint32 file_id, bool direct_io,
				 bool skip_damage, const ArmdbFileAuth *auth, ArmdbError *err)
{
	char		path[MAXPGPATH];
	EntryArray	entries = {NULL, 0, 0};
	ArmdbScanResult scan;
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	bool		keyed = false;
	int			fd;
	bool		ok;

	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDONLY, direct_io, NULL, err);
	if (fd < 0)
		return false;
	ok = armdb_scan_data_file(io, fd, file_id, skip_damage, auth,
							  collect_entry, &entries, &scan, err);
	armdb_file_close(fd);
	if (ok && (scan.header_missing || scan.end != ARMDB_SCAN_END_CLEAN))
		ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						 "data file \"%s\" is corrupted at offset %llu",
						 path, (unsigned long long) scan.valid_end);
	/* an authenticated file's hint gets a MAC under its key */
	if (ok && auth != NULL)
		ok = armdb_data_file_key(io, dir, file_id, auth, key, &keyed, err);
	if (ok)
		ok = armdb_hint_write(dir, file_id, entries.items, entries.n,
							  scan.valid_end, keyed ? key : NULL, err);
	explicit_bzero(key, sizeof(key));
	if (entries.items)
		pfree(entries.items);
	return ok;
}

/*
 * Does the data file really end where its hint says?  A hint describes an
 * immutable file; one written too early (while entries were still being
 * appended) would hide every entry after its data_end, so the bytes there
 * must be padding or the end of the file.  One small read.
 */
static bool
hint_covers_whole_file(ArmdbIo *io, const char *dir, uint32 file_id,
					   uint64 data_end, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbAlignedBuf buf;
	ArmdbEntryHeader hdr;
	uint64		from = ARMDB_BLOCK_FLOOR(data_end);
	size_t		nread;
	size_t		avail;
	const char *p;
	bool		ok;
	int			fd;

	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	fd = armdb_file_open(path, O_RDONLY, true, NULL, err);
	if (fd < 0)
		return false;
	if (!armdb_aligned_alloc(&buf, 2 * ARMDB_BLOCK_SIZE, err))
	{
		armdb_file_close(fd);
		return false;
	}
	ok = armdb_io_pread(io, fd, buf.data, buf.size, from, &nread, err);
	armdb_file_close(fd);
	if (ok)
	{
		avail = nread > data_end - from ? nread - (data_end - from) : 0;
		p = buf.data + (data_end - from);
		if (avail > 0 &&
			(avail < ARMDB_ENTRY_HEADER_SIZE ?
			 !armdb_all_zero(p, avail) :
			 armdb_entry_parse(p, avail, &hdr) != ARMDB_PARSE_ZERO))
			ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							 "hint file %06u ends at offset %llu but its data file continues",
							 file_id, (unsigned long long) data_end);
	}
	armdb_aligned_free(&buf);
	return ok;
}

bool
armdb_data_file_key(ArmdbIo *io, const char *dir, uint32 file_id,
					const ArmdbFileAuth *auth, uint8 *file_key, bool *keyed,
					ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbFileHeader fh;
	size_t		nread;
	bool		ok;
	int			fd;

	*keyed = false;
	armdb_file_path(path, dir, file_id, ARMDB_FILE_DATA);
	/* (not O_DIRECT: the header alone, as armdb_data_file_is_merged()) */
	fd = armdb_file_open(path, O_RDONLY, false, NULL, err);
	if (fd < 0)
		return false;
	ok = armdb_io_pread(io, fd, &fh, sizeof(fh), 0, &nread, err) &&
		armdb_file_header_check((const char *) &fh, nread, file_id, err);
	armdb_file_close(fd);
	if (!ok)
		return false;
	if (auth->encrypted && !(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u of an encrypted table is not encrypted",
						   file_id);
	if (!(fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED))
		return true;
	*keyed = armdb_cipher_header_key(auth, &fh, file_key, err);
	return *keyed;
}

/* The hint key of data file file_id if it is authenticated (*keyed). */
static bool
hint_key_of(ArmdbIo *io, const char *dir, uint32 file_id,
			const ArmdbFileAuth *auth, uint8 *hint_key, bool *keyed,
			ArmdbError *err)
{
	uint8		file_key[ARMDB_CIPHER_KEY_LEN];
	bool		ok;

	ok = armdb_data_file_key(io, dir, file_id, auth, file_key, keyed, err) &&
		(!*keyed || armdb_cipher_hint_key(file_key, hint_key, err));
	explicit_bzero(file_key, sizeof(file_key));
	return ok;
}

bool
armdb_hint_load(ArmdbIo *io, const char *dir, uint32 file_id,
				uint64 data_size, const ArmdbFileAuth *auth,
				ArmdbEntryCallback cb, void *arg, ArmdbError *err)
{
	char		path[MAXPGPATH];
	uint8		hint_key[ARMDB_CIPHER_KEY_LEN];
	bool		keyed = false;
	uint64		size;
	size_t		nread;
	char	   *image;
	int			fd;
	bool		ok;

	/* an authenticated file's hint is taken only with its MAC */
	if (auth != NULL &&
		!hint_key_of(io, dir, file_id, auth, hint_key, &keyed, err))
		return false;

	armdb_file_path(path, dir, file_id, ARMDB_FILE_HINT);
	fd = armdb_file_open(path, O_RDONLY, false, NULL, err);
	if (fd < 0)
	{
		explicit_bzero(hint_key, sizeof(hint_key));
		return false;
	}
	if (!armdb_file_size(fd, path, &size, err))
	{
		armdb_file_close(fd);
		explicit_bzero(hint_key, sizeof(hint_key));
		return false;
	}

	/* a record for each entry, of ARMDB_ENTRY_SHORT_HEADER_SIZE at least */
	if (size > sizeof(ArmdbHintHeader) + sizeof(ArmdbHintTrailer) +
		data_size / ARMDB_ENTRY_SHORT_HEADER_SIZE * sizeof(ArmdbHintRecord))
	{
		armdb_file_close(fd);
		explicit_bzero(hint_key, sizeof(hint_key));
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file \"%s\" is larger than its data file",
						   path);
	}
	image = armdb_alloc(err, Max(size, 1), "hint file");
	if (image == NULL)
	{
		armdb_file_close(fd);
		explicit_bzero(hint_key, sizeof(hint_key));
		return false;
	}
	ok = armdb_io_pread(io, fd, image, size, 0, &nread, err);
	armdb_file_close(fd);
	if (ok && nread != size)
		ok = armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						 "hint file \"%s\" changed size while being read",
						 path);
	/* validate everything, the data file's end included, before any cb */
	if (ok)
		ok = armdb_hint_parse(image, size, file_id, data_size,
							  keyed ? hint_key : NULL, NULL, NULL, err);
	explicit_bzero(hint_key, sizeof(hint_key));
	if (ok)
	{
		ArmdbHintHeader hh;

		memcpy(&hh, image, sizeof(hh));
		ok = hint_covers_whole_file(io, dir, file_id, hh.data_end, err) &&
			armdb_hint_parse(image, size, file_id, data_size, NULL, cb, arg,
							 err);
	}
	pfree(image);
	return ok;
}
