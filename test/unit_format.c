/*-------------------------------------------------------------------------
 *
 * unit_format.c
 *	  Tests of format.c: entries, data file headers, hint images, names.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"

#include <stdlib.h>

#include "port/pg_crc32c.h"

static const uint32 value_sizes[] = {0, 1, 4095, 4096, 100000};

/*
 * A sealed entry image of value_len bytes followed by extra zero bytes (its
 * header short or not as tentry_header()'s chain fields have it).
 */
static char *
make_entry(uint32 value_len, uint64 gsn, size_t extra, ArmdbEntryHeader *hdr)
{
	char	   *value = malloc(value_len + 1);
	char	   *buf;
	uint32		hsize;

	tentry_header(hdr, gsn, value_len, value_len == 0);
	unit_fill(value, value_len, gsn);
	armdb_entry_seal(hdr, value);
	hsize = armdb_entry_header_size(hdr->gsn);
	buf = calloc(1, hsize + value_len + extra + 1);
	memcpy(buf, hdr, hsize);
	memcpy(buf + hsize, value, value_len);
	free(value);
	return buf;
}

/* The value of the entry image buf. */
static char *
entry_value(char *buf, const ArmdbEntryHeader *hdr)
{
	return buf + armdb_entry_header_size(hdr->gsn);
}

static void
test_entry_roundtrip(void)
{
	for (int k = 0; k < lengthof(value_sizes); k++)
	{
		uint32		vlen = value_sizes[k];
		ArmdbEntryHeader hdr;
		ArmdbEntryHeader got;
		char	   *buf = make_entry(vlen, 17 + k, 100, &hdr);
		size_t		total = armdb_entry_size(hdr.gsn, vlen);
		ArmdbEntryHeader resealed = hdr;

		/* the chain fields of gsn 21 say nothing: a short header */
		ASSERT_EQ(total, (17 + k == 21 ? ARMDB_ENTRY_SHORT_HEADER_SIZE :
						  ARMDB_ENTRY_HEADER_SIZE) + vlen);

		/* sealing is deterministic */
		armdb_entry_seal(&resealed, entry_value(buf, &hdr));
		ASSERT_EQ(resealed.crc, hdr.crc);

		/* exactly the entry, and the entry followed by more bytes */
		memset(&got, 0x55, sizeof(got));
		ASSERT_EQ(armdb_entry_parse(buf, total, &got), ARMDB_PARSE_OK);
		ASSERT(memcmp(&got, &hdr, sizeof(hdr)) == 0);
		memset(&got, 0x55, sizeof(got));
		ASSERT_EQ(armdb_entry_parse(buf, total + 100, &got), ARMDB_PARSE_OK);
		ASSERT(memcmp(&got, &hdr, sizeof(hdr)) == 0);
		ASSERT_EQ(got.value_len, vlen);
		ASSERT_EQ(unit_check_fill(entry_value(buf, &hdr), vlen, 17 + k), -1);
		ASSERT_EQ(armdb_gsn_is_tombstone(got.gsn), vlen == 0);

		/* a different value gives a different CRC */
		if (vlen > 0)
		{
			ArmdbEntryHeader other = hdr;

			entry_value(buf, &hdr)[vlen / 2] ^= 1;
			armdb_entry_seal(&other, entry_value(buf, &hdr));
			ASSERT(other.crc != hdr.crc);
		}
		free(buf);
	}
}

static void
test_entry_short(void)
{
	for (int k = 0; k < lengthof(value_sizes); k++)
	{
		uint32		vlen = value_sizes[k];
		ArmdbEntryHeader hdr;
		char	   *buf = make_entry(vlen, 99, 0, &hdr);
		size_t		total = armdb_entry_size(hdr.gsn, vlen);

		for (size_t avail = 0; avail < total; avail++)
		{
			ArmdbEntryHeader got;
			ArmdbParseResult r = armdb_entry_parse(buf, avail, &got);

			ASSERT_MSG(r == ARMDB_PARSE_SHORT,
					   "value %u: parse of %zu of %zu bytes gave %d, expected SHORT",
					   vlen, avail, total, (int) r);
			/* length and gsn read tell how much to read */
			if (avail >= ARMDB_ENTRY_PREFIX_SIZE)
				ASSERT_MSG(got.value_len == vlen &&
						   armdb_entry_size(got.gsn, got.value_len) == total,
						   "SHORT at %zu: value_len %u, want %u", avail,
						   got.value_len, vlen);
		}
		free(buf);
	}
}

/* A flipped bit: never OK; SHORT only if value_len now passes the buffer. */
static bool
check_flipped(const char *buf, size_t avail, const char *what, size_t bit)
{
	ArmdbEntryHeader got;
	ArmdbParseResult r = armdb_entry_parse(buf, avail, &got);

	if (r == ARMDB_PARSE_BAD)
		return true;
	if (r == ARMDB_PARSE_SHORT && avail >= ARMDB_ENTRY_PREFIX_SIZE &&
		armdb_entry_size(got.gsn, got.value_len) > avail)
		return true;
	HASSERT_MSG(false, "%s: flipped bit %zu parsed as %d (value_len %u, avail %zu)",
				what, bit, (int) r, got.value_len, avail);
	return false;
}

static void
test_entry_zero(void)
{
	char	   *zeros = calloc(1, 8192);
	ArmdbEntryHeader got;

	ASSERT_EQ(armdb_entry_parse(zeros, ARMDB_ENTRY_HEADER_SIZE, &got),
			  ARMDB_PARSE_ZERO);
	ASSERT_EQ(armdb_entry_parse(zeros, 8192, &got), ARMDB_PARSE_ZERO);
	/* fewer than a header's bytes: the rest may follow */
	ASSERT_EQ(armdb_entry_parse(zeros, ARMDB_ENTRY_HEADER_SIZE - 1, &got),
			  ARMDB_PARSE_SHORT);
	/* a header that is zero but for one byte is not padding */
	for (int i = 0; i < ARMDB_ENTRY_HEADER_SIZE; i++)
	{
		zeros[i] = 1;
		ASSERT_CALL(check_flipped(zeros, 8192, "zero header", i * 8));
		zeros[i] = 0;
	}
	free(zeros);
}

static void
test_entry_bad(void)
{
	for (int k = 0; k < lengthof(value_sizes); k++)
	{
		uint32		vlen = value_sizes[k];
		ArmdbEntryHeader hdr;
		char	   *buf = make_entry(vlen, 1234567 + k, 64, &hdr);
		size_t		total = armdb_entry_size(hdr.gsn, vlen);
		size_t		step;

		/* every bit of the header, with the buffer exact and longer */
		for (size_t bit = 0; bit < ARMDB_ENTRY_HEADER_SIZE * 8; bit++)
		{
			buf[bit / 8] ^= (char) (1 << (bit % 8));
			ASSERT_CALL(check_flipped(buf, total, "header", bit));
			ASSERT_CALL(check_flipped(buf, total + 64, "header", bit));
			buf[bit / 8] ^= (char) (1 << (bit % 8));
		}

		/* bits of the value: all for small values, a sample for long ones */
		step = vlen <= 4096 ? 1 : 997;
		for (size_t bit = 0; bit < (size_t) vlen * 8; bit += step)
		{
			char	   *p = entry_value(buf, &hdr) + bit / 8;
			ArmdbEntryHeader got;
			ArmdbParseResult r;

			*p ^= (char) (1 << (bit % 8));
			r = armdb_entry_parse(buf, total, &got);
			*p ^= (char) (1 << (bit % 8));
			ASSERT_MSG(r == ARMDB_PARSE_BAD,
					   "value %u: flipped value bit %zu parsed as %d",
					   vlen, bit, (int) r);
		}
		/* last bit of a long value too */
		if (vlen > 0)
		{
			ArmdbEntryHeader got;

			buf[total - 1] ^= (char) 0x80;
			ASSERT_EQ(armdb_entry_parse(buf, total, &got), ARMDB_PARSE_BAD);
			buf[total - 1] ^= (char) 0x80;
		}
		{
			ArmdbEntryHeader got;

			ASSERT_EQ(armdb_entry_parse(buf, total, &got), ARMDB_PARSE_OK);
		}
		free(buf);
	}
}

static void
test_entry_impossible_len(void)
{
	char		buf[256];
	ArmdbEntryHeader hdr;
	ArmdbEntryHeader got;
	uint32		lens[] = {ARMDB_MAX_VALUE_LEN + 1, 0x7fffffff, 0xffffffff};

	for (int i = 0; i < lengthof(lens); i++)
	{
		memset(buf, 0, sizeof(buf));
		tentry_header(&hdr, 5, 10, false);
		hdr.value_len = lens[i];
		hdr.crc = 0x12345678;
		memcpy(buf, &hdr, sizeof(hdr));
		/* impossible even though the buffer is too short to tell by CRC */
		ASSERT_MSG(armdb_entry_parse(buf, sizeof(buf), &got) == ARMDB_PARSE_BAD,
				   "value_len %u not rejected", lens[i]);
		ASSERT_MSG(armdb_entry_parse(buf, ARMDB_ENTRY_HEADER_SIZE, &got) == ARMDB_PARSE_BAD,
				   "value_len %u not rejected with a header-only buffer", lens[i]);
	}

	/* the largest legal length is plausible: SHORT, not BAD */
	tentry_header(&hdr, 5, ARMDB_MAX_VALUE_LEN, false);
	hdr.crc = 0x12345678;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &hdr, sizeof(hdr));
	ASSERT_EQ(armdb_entry_parse(buf, sizeof(buf), &got), ARMDB_PARSE_SHORT);
	ASSERT_EQ(got.value_len, ARMDB_MAX_VALUE_LEN);
}

static void
test_file_header(void)
{
	ArmdbFileHeader fh;
	ArmdbFileHeader bad;
	ArmdbError	err;
	char		buf[ARMDB_BLOCK_SIZE];

	armdb_file_header_init(&fh, 42, 7);
	ASSERT_EQ(fh.magic, ARMDB_DATA_MAGIC);
	ASSERT_EQ(fh.version, ARMDB_FORMAT_VERSION);
	ASSERT_EQ(fh.flags, ARMDB_FILE_FLAG_SHORT_ENTRIES);
	ASSERT_EQ(fh.file_id, 42);
	ASSERT_EQ(fh.shard, 7);
	for (int i = 0; i < sizeof(fh.reserved); i++)
		ASSERT_EQ(fh.reserved[i], 0);

	memset(buf, 0, sizeof(buf));
	memcpy(buf, &fh, sizeof(fh));
	ASSERT_OK(armdb_file_header_check(buf, sizeof(buf), 42, &err));
	ASSERT_OK(armdb_file_header_check(buf, ARMDB_FILE_HEADER_SIZE, 42, &err));

	/* wrong file */
	ASSERT_FAILS(armdb_file_header_check(buf, sizeof(buf), 43, &err),
				 ARMDB_ERR_CORRUPT);
	/* too short */
	ASSERT_FAILS(armdb_file_header_check(buf, ARMDB_FILE_HEADER_SIZE - 1, 42, &err),
				 ARMDB_ERR_CORRUPT);
	/* bad magic, CRC fixed up: still rejected */
	armdb_file_header_init(&bad, 42, 7);
	bad.magic = 0x12345678;
	unit_file_header_reseal(&bad);
	memcpy(buf, &bad, sizeof(bad));
	ASSERT_FAILS(armdb_file_header_check(buf, sizeof(buf), 42, &err),
				 ARMDB_ERR_CORRUPT);
	/* a header that says another file id, CRC valid */
	armdb_file_header_init(&bad, 41, 7);
	memcpy(buf, &bad, sizeof(bad));
	ASSERT_FAILS(armdb_file_header_check(buf, sizeof(buf), 42, &err),
				 ARMDB_ERR_CORRUPT);
	/* zeros */
	memset(buf, 0, sizeof(buf));
	ASSERT_FAILS(armdb_file_header_check(buf, sizeof(buf), 42, &err),
				 ARMDB_ERR_CORRUPT);

	/* every flipped bit */
	memcpy(buf, &fh, sizeof(fh));
	for (int bit = 0; bit < ARMDB_FILE_HEADER_SIZE * 8; bit++)
	{
		buf[bit / 8] ^= (char) (1 << (bit % 8));
		armdb_error_clear(&err);
		ASSERT_MSG(!armdb_file_header_check(buf, sizeof(buf), 42, &err),
				   "file header with bit %d flipped accepted", bit);
		ASSERT_EQ(err.code, ARMDB_ERR_CORRUPT);
		buf[bit / 8] ^= (char) (1 << (bit % 8));
	}
	ASSERT_OK(armdb_file_header_check(buf, sizeof(buf), 42, &err));
}

/* ----------------
 * Hint images
 * ----------------
 */
typedef struct HintImage
{
	char	   *buf;
	size_t		len;
	ArmdbEntryInfo info[8];
	int			n;
	uint64		data_end;
} HintImage;

static void
hint_image_crc(HintImage *h)
{
	ArmdbHintTrailer tr;
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, h->buf, h->len - sizeof(tr));
	FIN_CRC32C(crc);
	tr.crc = crc;
	tr.magic = ARMDB_HINT_MAGIC;
	memcpy(h->buf + h->len - sizeof(tr), &tr, sizeof(tr));
}

/* Build a valid image for file 3 with n records, packed from offset 64. */
static void
hint_image_make(HintImage *h, int n)
{
	ArmdbHintHeader hh;
	uint32		off = ARMDB_FILE_HEADER_SIZE;

	memset(h, 0, sizeof(*h));
	h->n = n;
	for (int i = 0; i < n; i++)
	{
		ArmdbEntryHeader eh;
		uint32		vlen = i == 1 ? 0 : i * 37 + 5;

		tentry_header(&eh, 100 + i, vlen, i == 1);
		h->info[i].gsn = eh.gsn;
		h->info[i].xid = eh.xid;
		h->info[i].slot = eh.slot;
		h->info[i].root_slot = eh.root_slot;
		h->info[i].prev_slot = eh.prev_slot;
		h->info[i].file_id = 3;
		h->info[i].offset = off;
		h->info[i].len = armdb_entry_size(eh.gsn, vlen);
		off += h->info[i].len;
	}
	h->data_end = off;
	h->len = sizeof(ArmdbHintHeader) + n * sizeof(ArmdbHintRecord) +
		sizeof(ArmdbHintTrailer);
	h->buf = calloc(1, h->len);
	memset(&hh, 0, sizeof(hh));
	hh.magic = ARMDB_HINT_MAGIC;
	hh.version = ARMDB_FORMAT_VERSION;
	hh.file_id = 3;
	hh.nrecords = n;
	hh.data_end = h->data_end;
	memcpy(h->buf, &hh, sizeof(hh));
	for (int i = 0; i < n; i++)
	{
		ArmdbHintRecord rec;

		armdb_hint_record_from_info(&rec, &h->info[i]);
		memcpy(h->buf + sizeof(hh) + i * sizeof(rec), &rec, sizeof(rec));
	}
	hint_image_crc(h);
}

static bool
hint_parse_expect(HintImage *h, size_t len, uint64 data_size, bool want_ok,
				  const char *what)
{
	ArmdbError	err;
	TInfos		infos;
	bool		ok;

	tinfos_init(&infos);
	armdb_error_clear(&err);
	ok = armdb_hint_parse(h->buf, len, 3, data_size, NULL, tinfos_cb, &infos, &err);
	if (want_ok)
	{
		if (!ok)
		{
			tinfos_free(&infos);
			HASSERT_MSG(false, "%s: hint rejected: %s", what, err.message);
		}
		if (infos.n != h->n)
		{
			tinfos_free(&infos);
			HASSERT_MSG(false, "%s: %d records, want %d", what, infos.n, h->n);
		}
		for (int i = 0; i < h->n; i++)
			if (!info_equal(&infos.e[i], &h->info[i]))
			{
				tinfos_free(&infos);
				HASSERT_MSG(false, "%s: record %d differs", what, i);
			}
	}
	else
	{
		int			n = infos.n;

		tinfos_free(&infos);
		HASSERT_MSG(!ok, "%s: bad hint accepted", what);
		HASSERT_MSG(err.code == ARMDB_ERR_CORRUPT,
					"%s: error code %d, want CORRUPT: %s", what, err.code,
					err.message);
		HASSERT_MSG(n == 0, "%s: a rejected hint delivered %d records", what, n);
	}
	tinfos_free(&infos);
	return true;
}

static void
test_hint_roundtrip(void)
{
	HintImage	h;
	ArmdbError	err;
	TInfos		infos;

	for (int n = 0; n <= 5; n++)
	{
		hint_image_make(&h, n);
		ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, true, "exact data_size"));
		ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end + 10000, true, "larger data file"));
		free(h.buf);
	}

	/* without a callback: validation only */
	hint_image_make(&h, 3);
	ASSERT_OK(armdb_hint_parse(h.buf, h.len, 3, h.data_end, NULL, NULL, NULL, &err));

	/* a failing callback stops the parse with its error */
	tinfos_init(&infos);
	infos.fail_at = 1;
	armdb_error_clear(&err);
	ASSERT(!armdb_hint_parse(h.buf, h.len, 3, h.data_end, NULL, tinfos_cb, &infos, &err));
	ASSERT_EQ(err.code, ARMDB_ERR_INVALID);
	ASSERT_EQ(infos.n, 1);
	tinfos_free(&infos);

	/* describes another file */
	armdb_error_clear(&err);
	ASSERT(!armdb_hint_parse(h.buf, h.len, 4, h.data_end, NULL, NULL, NULL, &err));
	ASSERT_EQ(err.code, ARMDB_ERR_CORRUPT);
	free(h.buf);
}

static void
test_hint_corrupt(void)
{
	HintImage	h;

	hint_image_make(&h, 4);
	/* every flipped bit */
	for (size_t bit = 0; bit < h.len * 8; bit++)
	{
		char		what[64];

		snprintf(what, sizeof(what), "bit %zu flipped", bit);
		h.buf[bit / 8] ^= (char) (1 << (bit % 8));
		ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, false, what));
		h.buf[bit / 8] ^= (char) (1 << (bit % 8));
	}
	/* every truncation */
	for (size_t len = 0; len < h.len; len++)
	{
		char		what[64];

		snprintf(what, sizeof(what), "truncated to %zu", len);
		ASSERT_CALL(hint_parse_expect(&h, len, h.data_end, false, what));
	}
	/* trailing garbage */
	{
		char	   *longer = calloc(1, h.len + 48);
		char	   *save = h.buf;

		memcpy(longer, h.buf, h.len);
		h.buf = longer;
		ASSERT_CALL(hint_parse_expect(&h, h.len + 48, h.data_end, false, "48 extra bytes"));
		h.buf = save;
		free(longer);
	}
	/* the data file is shorter than what the hint covers */
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end - 1, false, "data_size one short"));
	ASSERT_CALL(hint_parse_expect(&h, h.len, 0, false, "data_size 0"));
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, true, "intact"));
	free(h.buf);
}

/* Records that contradict data_end or each other, CRC valid. */
static void
test_hint_bad_records(void)
{
	HintImage	h;
	ArmdbHintHeader hh;
	ArmdbHintRecord rec;
	size_t		r2 = sizeof(ArmdbHintHeader) + 2 * sizeof(ArmdbHintRecord);
	size_t		r3 = sizeof(ArmdbHintHeader) + 3 * sizeof(ArmdbHintRecord);

	/* data_end smaller than the last record's end */
	hint_image_make(&h, 4);
	memcpy(&hh, h.buf, sizeof(hh));
	hh.data_end = h.info[3].offset + h.info[3].len - 1;
	memcpy(h.buf, &hh, sizeof(hh));
	hint_image_crc(&h);
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end + 4096, false,
								  "data_end before a record's end"));
	free(h.buf);

	/* a record overlapping its predecessor */
	hint_image_make(&h, 4);
	memcpy(&rec, h.buf + r3, sizeof(rec));
	rec.offset -= 1;
	memcpy(h.buf + r3, &rec, sizeof(rec));
	hint_image_crc(&h);
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, false, "overlapping records"));
	free(h.buf);

	/* a record inside the file header */
	hint_image_make(&h, 4);
	memcpy(&rec, h.buf + sizeof(ArmdbHintHeader), sizeof(rec));
	rec.offset = 10;
	memcpy(h.buf + sizeof(ArmdbHintHeader), &rec, sizeof(rec));
	hint_image_crc(&h);
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, false, "record in the file header"));
	free(h.buf);

	/* a record shorter than an entry header */
	hint_image_make(&h, 4);
	memcpy(&rec, h.buf + r2, sizeof(rec));
	rec.len = armdb_entry_header_size(rec.gsn) - 1;
	memcpy(h.buf + r2, &rec, sizeof(rec));
	hint_image_crc(&h);
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, false, "record shorter than a header"));
	free(h.buf);

	/* nrecords disagrees with the length */
	hint_image_make(&h, 4);
	memcpy(&hh, h.buf, sizeof(hh));
	hh.nrecords = 3;
	memcpy(h.buf, &hh, sizeof(hh));
	hint_image_crc(&h);
	ASSERT_CALL(hint_parse_expect(&h, h.len, h.data_end, false, "nrecords 3 of 4"));
	free(h.buf);
}

static void
test_file_names(void)
{
	char		path[MAXPGPATH];
	uint32		id;
	ArmdbFileKind kind;
	static const char *const bad[] = {
		"1.data", "000001.datax", "abc", "", "000001", "000001.",
		"000001.dat", "00001a.data", "0000001.data", "000000.data",
		"000001.DATA", ".data", "000001.data.tmp", " 00001.data",
		"-00001.data", "000001_data", "000001.hint~", "000001.tmp.",
		"4294967295.data", "99999999999.data", "000001.merged",
	};

	armdb_file_path(path, "/some/dir", 1, ARMDB_FILE_DATA);
	ASSERT_STR(path, "/some/dir/000001.data");
	armdb_file_path(path, "/some/dir", 42, ARMDB_FILE_HINT);
	ASSERT_STR(path, "/some/dir/000042.hint");
	armdb_file_path(path, "d", 999999, ARMDB_FILE_TMP);
	ASSERT_STR(path, "d/999999.tmp");
	armdb_file_path(path, "d", 1000000, ARMDB_FILE_MERGE);
	ASSERT_STR(path, "d/1000000.merge");
	armdb_file_path(path, "d", ARMDB_MAX_FILE_ID, ARMDB_FILE_DATA);
	ASSERT_STR(path, "d/4294967280.data");

	ASSERT(armdb_file_name_parse("000001.data", &id, &kind));
	ASSERT_EQ(id, 1);
	ASSERT_EQ(kind, ARMDB_FILE_DATA);
	ASSERT(armdb_file_name_parse("000042.hint", &id, &kind));
	ASSERT_EQ(id, 42);
	ASSERT_EQ(kind, ARMDB_FILE_HINT);
	ASSERT(armdb_file_name_parse("999999.tmp", &id, &kind));
	ASSERT_EQ(id, 999999);
	ASSERT_EQ(kind, ARMDB_FILE_TMP);
	ASSERT(armdb_file_name_parse("123456.data", &id, &kind));
	ASSERT_EQ(id, 123456);
	ASSERT(armdb_file_name_parse("1000000.merge", &id, &kind));
	ASSERT_EQ(id, 1000000);
	ASSERT_EQ(kind, ARMDB_FILE_MERGE);
	ASSERT(armdb_file_name_parse("4294967280.data", &id, &kind));
	ASSERT_EQ(id, ARMDB_MAX_FILE_ID);

	for (int i = 0; i < lengthof(bad); i++)
		ASSERT_MSG(!armdb_file_name_parse(bad[i], &id, &kind),
				   "\"%s\" accepted as an armdb file name", bad[i]);

	/* names and paths agree for every kind */
	for (int k = ARMDB_FILE_DATA; k <= ARMDB_FILE_MERGE; k++)
	{
		armdb_file_path(path, ".", 7777, (ArmdbFileKind) k);
		ASSERT(armdb_file_name_parse(path + 2, &id, &kind));
		ASSERT_EQ(id, 7777);
		ASSERT_EQ(kind, k);
	}
}

const UnitTest unit_format_tests[] = {
	{"format_entry_roundtrip", test_entry_roundtrip},
	{"format_entry_short", test_entry_short},
	{"format_entry_zero", test_entry_zero},
	{"format_entry_bad", test_entry_bad},
	{"format_entry_impossible_len", test_entry_impossible_len},
	{"format_file_header", test_file_header},
	{"format_hint_roundtrip", test_hint_roundtrip},
	{"format_hint_corrupt", test_hint_corrupt},
	{"format_hint_bad_records", test_hint_bad_records},
	{"format_file_names", test_file_names},
	{NULL, NULL}
};
