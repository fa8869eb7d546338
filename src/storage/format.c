/*-------------------------------------------------------------------------
 *
 * format.c
 *	  Encoding and checking of armdb's on-disk structures (see format.h).
 *
 * Nothing here does I/O: these functions work on memory images, so that the
 * fuzz target can drive them directly.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/format.h"

#include "port/pg_crc32c.h"
#include "storage/cipher.h"

/* The CRC of an entry covers its header after the crc field, then value. */
uint32
armdb_entry_crc(const ArmdbEntryHeader *hdr, const void *value)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((const char *) hdr) + sizeof(uint32),
				armdb_entry_header_size(hdr->gsn) - sizeof(uint32));
	if (hdr->value_len > 0)
		COMP_CRC32C(crc, value, hdr->value_len);
	FIN_CRC32C(crc);
	return crc;
}

void
armdb_entry_choose_header(ArmdbEntryHeader *hdr)
{
	/* a lock entry's chain fields hold its xmax and infomask */
	if (!armdb_gsn_is_lock(hdr->gsn) && hdr->root_slot == hdr->slot &&
		hdr->prev_slot == ARMDB_INVALID_SLOT)
		hdr->gsn |= ARMDB_GSN_FLAG_SHORT_HEADER;
	else
		hdr->gsn &= ~ARMDB_GSN_FLAG_SHORT_HEADER;
}

void
armdb_entry_seal(ArmdbEntryHeader *hdr, const void *value)
{
	armdb_entry_choose_header(hdr);
	hdr->crc = armdb_entry_crc(hdr, value);
}

bool
armdb_entry_header_copy(const char *buf, size_t avail, ArmdbEntryHeader *hdr)
{
	uint32		size;

	if (avail < ARMDB_ENTRY_PREFIX_SIZE)
		return false;
	memcpy(hdr, buf, ARMDB_ENTRY_PREFIX_SIZE);
	size = armdb_entry_header_size(hdr->gsn);
	if (avail < size)
		return false;
	memcpy(hdr, buf, size);
	if (size == ARMDB_ENTRY_SHORT_HEADER_SIZE)
	{
		hdr->root_slot = hdr->slot;
		hdr->prev_slot = ARMDB_INVALID_SLOT;
	}
	return true;
}

bool
armdb_all_zero(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != 0)
			return false;
	return true;
}

ArmdbParseResult
armdb_entry_parse(const char *buf, size_t avail, ArmdbEntryHeader *hdr)
{
	uint32		hsize;

	/*
	 * A partial header is "short" even if its bytes are zero: at a chunk
	 * boundary the rest may follow.  Whoever knows the file ends here
	 * decides between padding and a torn entry.
	 */
	if (!armdb_entry_header_copy(buf, avail, hdr))
		return ARMDB_PARSE_SHORT;
	hsize = armdb_entry_header_size(hdr->gsn);

	/* (a zero gsn has no SHORT_HEADER flag: all 48 bytes are zero) */
	if (armdb_all_zero(buf, hsize))
		return ARMDB_PARSE_ZERO;

	/* cheap plausibility checks before trusting value_len */
	if (hdr->value_len > ARMDB_MAX_VALUE_LEN)
		return ARMDB_PARSE_BAD;
	if (!armdb_gsn_flags_valid(hdr->gsn))
		return ARMDB_PARSE_BAD;
	/* an encrypted value ends in its tag */
	if ((hdr->gsn & ARMDB_GSN_FLAG_ENCRYPTED) &&
		hdr->value_len < ARMDB_ENCRYPTED_TAG_LEN)
		return ARMDB_PARSE_BAD;

	if (avail - hsize < hdr->value_len)
		return ARMDB_PARSE_SHORT;

	if (armdb_entry_crc(hdr, buf + hsize) != hdr->crc)
		return ARMDB_PARSE_BAD;
	return ARMDB_PARSE_OK;
}

/* ----------------
 * Data file header
 * ----------------
 */
static pg_crc32c
file_header_crc(const ArmdbFileHeader *fh)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((const char *) fh) + sizeof(uint32),
				ARMDB_FILE_HEADER_SIZE - sizeof(uint32));
	FIN_CRC32C(crc);
	return crc;
}

void
armdb_file_header_init_flags(ArmdbFileHeader *fh, uint32 file_id,
							 uint32 shard, uint16 flags)
{
	memset(fh, 0, sizeof(*fh));
	fh->magic = ARMDB_DATA_MAGIC;
	fh->version = ARMDB_FORMAT_VERSION;
	fh->flags = flags | ARMDB_FILE_FLAG_SHORT_ENTRIES;
	fh->file_id = file_id;
	fh->shard = shard;
	fh->crc = file_header_crc(fh);
}

void
armdb_file_header_init(ArmdbFileHeader *fh, uint32 file_id, uint32 shard)
{
	armdb_file_header_init_flags(fh, file_id, shard, 0);
}

void
armdb_file_header_set_key(ArmdbFileHeader *fh, uint32 key_id,
						  const uint8 *salt, bool authenticated)
{
	fh->flags |= ARMDB_FILE_FLAG_ENCRYPTED;
	if (authenticated)
		fh->flags |= ARMDB_FILE_FLAG_AUTHENTICATED;
	fh->key_id = key_id;
	memcpy(fh->salt, salt, sizeof(fh->salt));
	fh->crc = file_header_crc(fh);
}

bool
armdb_file_header_check(const char *buf, size_t avail, uint32 file_id,
						ArmdbError *err)
{
	ArmdbFileHeader fh;

	if (avail < ARMDB_FILE_HEADER_SIZE)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u is too short for its header (%zu bytes)",
						   file_id, avail);
	memcpy(&fh, buf, sizeof(fh));
	if (fh.magic != ARMDB_DATA_MAGIC)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u has a bad magic number %08x",
						   file_id, fh.magic);
	if (file_header_crc(&fh) != fh.crc)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u has a bad header checksum",
						   file_id);
	if (fh.version != ARMDB_FORMAT_VERSION)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u has format version %u, expected %u",
						   file_id, fh.version, ARMDB_FORMAT_VERSION);
	if ((fh.flags & ~ARMDB_FILE_FLAGS_KNOWN) != 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u uses unsupported features (flags %04x)",
						   file_id, fh.flags);
	if (fh.file_id != file_id)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u says it is file %06u",
						   file_id, fh.file_id);
	if ((fh.flags & ARMDB_FILE_FLAG_ENCRYPTED) && fh.key_id == 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u is encrypted under no key",
						   file_id);
	if ((fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED) &&
		!(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u is authenticated but not encrypted",
						   file_id);
	return true;
}

/* ----------------
 * Hint files
 * ----------------
 */
void
armdb_hint_record_from_info(ArmdbHintRecord *rec, const ArmdbEntryInfo *info)
{
	rec->gsn = info->gsn;
	rec->xid = info->xid;
	rec->slot = info->slot;
	rec->root_slot = info->root_slot;
	rec->prev_slot = info->prev_slot;
	rec->offset = info->offset;
	rec->len = info->len;
}

/*
 * The whole image is validated before the first callback, so a bad hint
 * never delivers part of its records (the caller then scans the data file
 * and would otherwise see entries twice).
 */
bool
armdb_hint_parse(const char *buf, size_t len, uint32 file_id,
				 uint64 data_size, const uint8 *mac_key,
				 ArmdbEntryCallback cb, void *arg, ArmdbError *err)
{
	ArmdbHintHeader hh;
	ArmdbHintTrailer tr;
	pg_crc32c	crc;
	const char *recs;
	size_t		mac_len;
	size_t		recs_len;
	uint64		prev_end = ARMDB_FILE_HEADER_SIZE;

	if (len < sizeof(hh) + sizeof(tr))
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u is too short (%zu bytes)",
						   file_id, len);
	memcpy(&hh, buf, sizeof(hh));
	memcpy(&tr, buf + len - sizeof(tr), sizeof(tr));
	if (hh.magic != ARMDB_HINT_MAGIC || tr.magic != ARMDB_HINT_MAGIC)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u has a bad magic number", file_id);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len - sizeof(tr));
	FIN_CRC32C(crc);
	if (crc != tr.crc)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u has a bad checksum", file_id);

	if (hh.version != ARMDB_FORMAT_VERSION ||
		(hh.flags & ~ARMDB_HINT_FLAG_MAC) != 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u has unsupported version %u flags %04x",
						   file_id, hh.version, hh.flags);
	if (hh.file_id != file_id)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u says it describes file %06u",
						   file_id, hh.file_id);
	mac_len = (hh.flags & ARMDB_HINT_FLAG_MAC) ? ARMDB_HINT_MAC_LEN : 0;
	if (len < sizeof(hh) + sizeof(tr) + mac_len)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u is too short (%zu bytes)",
						   file_id, len);
	recs_len = len - sizeof(hh) - sizeof(tr) - mac_len;
	if (recs_len / sizeof(ArmdbHintRecord) != hh.nrecords ||
		recs_len % sizeof(ArmdbHintRecord) != 0)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u has %zu bytes of records for %u records",
						   file_id, recs_len, hh.nrecords);
	if (mac_key != NULL)
	{
		uint8		mac[ARMDB_HINT_MAC_LEN];

		if (mac_len == 0)
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "hint file %06u of an authenticated data file has no MAC",
							   file_id);
		if (!armdb_cipher_hint_mac(mac_key, buf, sizeof(hh) + recs_len, mac,
								   err))
			return false;
		if (!armdb_cipher_equal(mac, buf + sizeof(hh) + recs_len, sizeof(mac)))
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "hint file %06u failed authentication: its MAC does not match",
							   file_id);
	}
	if (hh.data_end > data_size)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "hint file %06u covers %llu bytes but the data file has %llu",
						   file_id, (unsigned long long) hh.data_end,
						   (unsigned long long) data_size);

	recs = buf + sizeof(hh);
	for (uint32 i = 0; i < hh.nrecords; i++)
	{
		ArmdbHintRecord rec;

		memcpy(&rec, recs + i * sizeof(rec), sizeof(rec));
		if (rec.offset < prev_end ||
			rec.len < armdb_entry_header_size(rec.gsn) ||
			rec.len - armdb_entry_header_size(rec.gsn) > ARMDB_MAX_VALUE_LEN ||
			(uint64) rec.offset + rec.len > hh.data_end ||
			(rec.gsn & ARMDB_GSN_FLAG_MASK & ~ARMDB_GSN_HINT_FLAGS) != 0)
			return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
							   "hint file %06u record %u is invalid (offset %u, length %u)",
							   file_id, i, rec.offset, rec.len);
		prev_end = (uint64) rec.offset + rec.len;
	}

	if (cb == NULL)
		return true;
	for (uint32 i = 0; i < hh.nrecords; i++)
	{
		ArmdbHintRecord rec;
		ArmdbEntryInfo info;

		memcpy(&rec, recs + i * sizeof(rec), sizeof(rec));
		info.gsn = rec.gsn;
		info.xid = rec.xid;
		info.slot = rec.slot;
		info.root_slot = rec.root_slot;
		info.prev_slot = rec.prev_slot;
		info.file_id = file_id;
		info.offset = rec.offset;
		info.len = rec.len;
		if (!cb(arg, &info, err))
			return false;
	}
	return true;
}

/* ----------------
 * File names
 * ----------------
 */
static const char *const file_ext[] = {
	[ARMDB_FILE_DATA] = "data",
	[ARMDB_FILE_HINT] = "hint",
	[ARMDB_FILE_TMP] = "tmp",
	[ARMDB_FILE_MERGE] = "merge",
};

void
armdb_file_path(char *path, const char *dir, uint32 file_id,
				ArmdbFileKind kind)
{
	snprintf(path, MAXPGPATH, "%s/%06u.%s", dir, file_id, file_ext[kind]);
}

bool
armdb_file_name_parse(const char *name, uint32 *file_id, ArmdbFileKind *kind)
{
	uint64		id = 0;
	int			ndigits = 0;

	while (name[ndigits] >= '0' && name[ndigits] <= '9' && ndigits < 10)
	{
		id = id * 10 + (name[ndigits] - '0');
		ndigits++;
	}
	/* as armdb_file_path() writes them: six digits, or more without zeros */
	if (ndigits < 6 || (ndigits > 6 && name[0] == '0') ||
		name[ndigits] != '.' || id == 0 || id > ARMDB_MAX_FILE_ID)
		return false;
	for (int k = 0; k < lengthof(file_ext); k++)
	{
		if (strcmp(name + ndigits + 1, file_ext[k]) == 0)
		{
			*file_id = (uint32) id;
			*kind = (ArmdbFileKind) k;
			return true;
		}
	}
	return false;
}
