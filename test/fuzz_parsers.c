/*-------------------------------------------------------------------------
 *
 * fuzz_parsers.c
 *	  libFuzzer target for the parsers of armdb's on-disk formats.
 *
 * Built by "make fuzz" with clang -fsanitize=fuzzer,address,undefined and
 * linked with the storage layer in its FRONTEND build.  Everything a parser
 * reads comes from a file that may be torn or corrupted, so no input may
 * crash it, read outside the buffer, or make it report something that is
 * not inside the buffer.  A violated invariant is __builtin_trap(), which
 * libFuzzer reports as a crash and saves the input for.
 *
 * Input layout: byte 0 picks the parser (byte 0 % FUZZ_NMODES) and
 * flags (byte 0 / FUZZ_NMODES); the rest is the parser's input:
 *
 *	 0	armdb_scan_buffer(): bytes [1, n) are the entries of a data file,
 *		starting at offset ARMDB_FILE_HEADER_SIZE (after the file header)
 *	 1	armdb_entry_parse(): bytes [1, n) are one entry
 *	 2	armdb_hint_parse(): bytes [1, 5) are the data file size (uint32,
 *		little-endian), bytes [5, n) the hint file image; with flag
 *		FUZZ_HINT_MAC its MAC is checked under a fixed key (and with
 *		FUZZ_FIX_CRC, a hint whose header says it has a MAC gets a good one)
 *	 3	armdb_file_header_check(): bytes [1, n) are the start of a data file
 *	 4	armdb_file_name_parse(): bytes [1, n) are a directory entry name
 *	 5	decryption (storage/cipher.h): bytes [1, n) are one encrypted entry,
 *		opened with a fixed file key; with FUZZ_FIX_CRC the harness first
 *		encrypts its value and seals it, so that the mutations that follow
 *		in later runs start from entries that authenticate
 *	 6	armdb_cipher_parse_keys(): bytes [1, n) are the key command's output
 *
 * Flag bit 0 (FUZZ_FIX_CRC): before parsing, the harness writes correct
 * CRCs into the copy (every entry it can walk, the hint trailer, the file
 * header), so that mutations reach the checks behind the checksums instead
 * of all dying at the CRC comparison.  In mode 0 the remaining flag bits can
 * make the scan callback fail on its Nth call.
 *
 * Parsers are fed copies in exactly-sized heap buffers, so that AddressSanitizer
 * catches a read of a single byte past the end.  The file id used throughout
 * is FUZZ_FILE_ID; the seeds in test/fuzz-seeds are made with it.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "port/pg_crc32c.h"
#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/recovery.h"

#define FUZZ_FILE_ID	1
#define FUZZ_NMODES		7
#define FUZZ_FIX_CRC	0x01
#define FUZZ_HINT_MAC	0x02	/* mode 2: the MAC checked, under fuzz_hint_key */

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* the hint key of mode 2 with FUZZ_HINT_MAC */
static const uint8 fuzz_hint_key[ARMDB_CIPHER_KEY_LEN] = {
	0x68, 0x69, 0x6e, 0x74, 0x2d, 0x6b, 0x65, 0x79, 0x00, 0x11, 0x22, 0x33,
	0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
};

/* ----------------
 * (a) data file scan
 * ----------------
 */
typedef struct ScanCheck
{
	const char *buf;			/* the image the scan runs on */
	size_t		len;
	uint64		base;			/* file offset of buf[0] */
	uint64		prev_end;		/* file offset after the previous entry */
	uint64		calls;
	uint64		max_gsn;		/* without flags */
	uint64		fail_at;		/* callback fails on this call (1-based), 0:
								 * never */
} ScanCheck;

static bool
scan_cb(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	ScanCheck  *sc = (ScanCheck *) arg;
	const char *at;
	ArmdbEntryHeader hdr;

	sc->calls++;

	/* inside the buffer, after the previous entry, at least a header */
	CHECK(e->file_id == FUZZ_FILE_ID);
	CHECK(e->len >= armdb_entry_header_size(e->gsn));
	CHECK(e->offset >= sc->base);
	CHECK((uint64) e->offset >= sc->prev_end);
	CHECK((uint64) e->offset - sc->base <= sc->len);
	CHECK((uint64) e->len <= sc->len - ((uint64) e->offset - sc->base));

	/* what the callback was told is what the bytes there say */
	at = sc->buf + (e->offset - sc->base);
	CHECK(armdb_entry_parse(at, e->len, &hdr) == ARMDB_PARSE_OK);
	CHECK(armdb_entry_size(hdr.gsn, hdr.value_len) == e->len);
	CHECK(hdr.gsn == e->gsn);
	CHECK(hdr.xid == e->xid);
	CHECK(hdr.slot == e->slot);
	CHECK(hdr.root_slot == e->root_slot);
	CHECK(hdr.prev_slot == e->prev_slot);

	sc->prev_end = (uint64) e->offset + e->len;
	if ((e->gsn & ~ARMDB_GSN_FLAG_MASK) > sc->max_gsn)
		sc->max_gsn = e->gsn & ~ARMDB_GSN_FLAG_MASK;

	if (sc->fail_at != 0 && sc->calls == sc->fail_at)
		return armdb_error(err, ARMDB_ERR_INVALID, 0, "fuzz callback refuses");
	return true;
}

/* ----------------
 * CRC repair (FUZZ_FIX_CRC)
 * ----------------
 */
static uint32
crc_of(const char *a, size_t alen, const char *b, size_t blen)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, a, alen);
	if (blen > 0)
		COMP_CRC32C(crc, b, blen);
	FIN_CRC32C(crc);
	return crc;
}

/* Seal the entries of buf one after the other, as far as they fit. */
static void
fix_entry_crcs(char *buf, size_t len)
{
	size_t		pos = 0;

	while (len - pos >= ARMDB_ENTRY_PREFIX_SIZE)
	{
		ArmdbEntryHeader hdr;
		uint32		hsize;

		memcpy(&hdr, buf + pos, ARMDB_ENTRY_PREFIX_SIZE);
		hsize = armdb_entry_header_size(hdr.gsn);
		if (len - pos < hsize || hdr.value_len > len - pos - hsize)
			break;
		hdr.crc = crc_of(buf + pos + sizeof(uint32), hsize - sizeof(uint32),
						 buf + pos + hsize, hdr.value_len);
		memcpy(buf + pos, &hdr.crc, sizeof(uint32));
		pos += armdb_entry_size(hdr.gsn, hdr.value_len);
	}
}

static void
fix_hint_crc(char *buf, size_t len)
{
	uint32		crc;
	ArmdbHintHeader hh;
	size_t		mac_at;

	if (len < sizeof(ArmdbHintHeader) + sizeof(ArmdbHintTrailer))
		return;
	/* a hint that says it has a MAC gets the one fuzz_hint_key makes */
	memcpy(&hh, buf, sizeof(hh));
	mac_at = len - sizeof(ArmdbHintTrailer) - ARMDB_HINT_MAC_LEN;
	if ((hh.flags & ARMDB_HINT_FLAG_MAC) &&
		len >= sizeof(ArmdbHintHeader) + sizeof(ArmdbHintTrailer) + ARMDB_HINT_MAC_LEN)
	{
		ArmdbError	err;

		CHECK(armdb_cipher_hint_mac(fuzz_hint_key, buf, mac_at,
									(uint8 *) buf + mac_at, &err));
	}
	crc = crc_of(buf, len - sizeof(ArmdbHintTrailer), NULL, 0);
	memcpy(buf + len - sizeof(ArmdbHintTrailer), &crc, sizeof(uint32));
}

static void
fix_file_header_crc(char *buf, size_t len)
{
	uint32		crc;

	if (len < ARMDB_FILE_HEADER_SIZE)
		return;
	crc = crc_of(buf + sizeof(uint32), ARMDB_FILE_HEADER_SIZE - sizeof(uint32),
				 NULL, 0);
	memcpy(buf, &crc, sizeof(uint32));
}

static void
fuzz_scan(const char *buf, size_t len, uint8 fail_at)
{
	ScanCheck	sc;
	ArmdbScanResult acc;
	ArmdbParseResult stop = ARMDB_PARSE_OK;
	ArmdbError	err;
	bool		ok;

	memset(&sc, 0, sizeof(sc));
	sc.buf = buf;
	sc.len = len;
	sc.base = ARMDB_FILE_HEADER_SIZE;
	sc.prev_end = ARMDB_FILE_HEADER_SIZE;
	/* a callback that fails now and then exercises that path too */
	sc.fail_at = (fail_at % 8 == 7) ? (fail_at >> 3) + 1 : 0;

	/* what armdb_scan_data_file() starts with before its first chunk */
	memset(&acc, 0, sizeof(acc));
	acc.valid_end = ARMDB_FILE_HEADER_SIZE;
	armdb_error_clear(&err);

	ok = armdb_scan_buffer(buf, len, FUZZ_FILE_ID, ARMDB_FILE_HEADER_SIZE,
						   scan_cb, &sc, &acc, &stop, &err);

	/* false only when the callback failed, and then at once */
	CHECK(ok == !(sc.fail_at != 0 && sc.calls == sc.fail_at));
	CHECK(acc.entries <= sc.calls);
	CHECK(acc.entries + 1 >= sc.calls);
	CHECK(acc.valid_end >= ARMDB_FILE_HEADER_SIZE);
	CHECK(acc.valid_end <= sc.prev_end);
	CHECK(acc.valid_end - ARMDB_FILE_HEADER_SIZE <= len);
	if (ok)
	{
		/* it stopped at an entry that is not OK, right after the last one */
		CHECK(stop == ARMDB_PARSE_SHORT || stop == ARMDB_PARSE_ZERO ||
			  stop == ARMDB_PARSE_BAD);
		CHECK(acc.entries == sc.calls);
		CHECK(acc.valid_end == sc.prev_end);
		CHECK(acc.max_gsn == sc.max_gsn);
		/*
		 * and what is there parses that way (or is an entry that would pass
		 * the 4 GB a data file can address)
		 */
		{
			ArmdbEntryHeader hdr;
			uint64		pos = acc.valid_end - ARMDB_FILE_HEADER_SIZE;
			ArmdbParseResult there = armdb_entry_parse(buf + pos, len - pos,
													   &hdr);

			if (there == ARMDB_PARSE_OK)
				CHECK(stop == ARMDB_PARSE_BAD &&
					  acc.valid_end + armdb_entry_size(hdr.gsn, hdr.value_len) >
					  ARMDB_MAX_FILE_SIZE);
			else
				CHECK(there == stop);
		}
	}
	else
		CHECK(err.code != ARMDB_OK);
}

/* ----------------
 * (b) one entry
 * ----------------
 */
static void
fuzz_entry(const char *buf, size_t len)
{
	ArmdbEntryHeader hdr;
	ArmdbParseResult res;

	res = armdb_entry_parse(buf, len, &hdr);
	switch (res)
	{
		case ARMDB_PARSE_OK:
			{
				uint32		hsize = armdb_entry_header_size(hdr.gsn);
				ArmdbEntryHeader copy = hdr;

				CHECK(len >= hsize);
				CHECK(hdr.value_len <= ARMDB_MAX_VALUE_LEN);
				CHECK(len >= armdb_entry_size(hdr.gsn, hdr.value_len));
				CHECK(memcmp(&hdr, buf, hsize) == 0);
				CHECK((hdr.gsn & ARMDB_GSN_FLAG_MASK & ~ARMDB_GSN_DATA_FLAGS) == 0);
				/* a short header implies its chain fields */
				if (hsize == ARMDB_ENTRY_SHORT_HEADER_SIZE)
					CHECK(hdr.root_slot == hdr.slot &&
						  hdr.prev_slot == ARMDB_INVALID_SLOT);

				/*
				 * Sealing the same header and value gives the same CRC, unless
				 * it chooses the other length (a whole header whose chain
				 * fields say nothing, as armdb wrote before short ones).
				 */
				copy.crc = ~hdr.crc;
				armdb_entry_seal(&copy, buf + hsize);
				if (copy.gsn == hdr.gsn)
					CHECK(copy.crc == hdr.crc);
				else
					CHECK(hsize == ARMDB_ENTRY_HEADER_SIZE &&
						  !armdb_gsn_is_lock(hdr.gsn) &&
						  hdr.root_slot == hdr.slot &&
						  hdr.prev_slot == ARMDB_INVALID_SLOT);
				/* the entry alone, without what follows it, parses the same */
				CHECK(armdb_entry_parse(buf, armdb_entry_size(hdr.gsn, hdr.value_len),
										&hdr) == ARMDB_PARSE_OK);
				break;
			}
		case ARMDB_PARSE_ZERO:
			CHECK(len >= ARMDB_ENTRY_HEADER_SIZE);
			for (int i = 0; i < ARMDB_ENTRY_HEADER_SIZE; i++)
				CHECK(buf[i] == 0);
			break;
		case ARMDB_PARSE_SHORT:
			/* either the header or the value does not fit */
			if (len >= ARMDB_ENTRY_PREFIX_SIZE)
				CHECK(len < armdb_entry_size(hdr.gsn, hdr.value_len));
			break;
		case ARMDB_PARSE_BAD:
			CHECK(len >= ARMDB_ENTRY_SHORT_HEADER_SIZE);
			break;
		default:
			CHECK(false);
	}
}

/* ----------------
 * (c) hint file
 * ----------------
 */
typedef struct HintCheck
{
	uint64		data_size;
	uint64		prev_end;
	uint32		calls;
} HintCheck;

static bool
hint_cb(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	HintCheck  *hc = (HintCheck *) arg;

	hc->calls++;
	CHECK(e->file_id == FUZZ_FILE_ID);
	CHECK(e->len >= armdb_entry_header_size(e->gsn));
	CHECK(e->len - armdb_entry_header_size(e->gsn) <= ARMDB_MAX_VALUE_LEN);
	CHECK(e->offset >= ARMDB_FILE_HEADER_SIZE);
	CHECK((uint64) e->offset >= hc->prev_end);
	CHECK((uint64) e->offset + e->len <= hc->data_size);
	CHECK((e->gsn & ARMDB_GSN_FLAG_MASK & ~ARMDB_GSN_HINT_FLAGS) == 0);
	hc->prev_end = (uint64) e->offset + e->len;
	return true;
}

static void
fuzz_hint(const char *buf, size_t len, uint64 data_size, bool mac)
{
	const uint8 *mac_key = mac ? fuzz_hint_key : NULL;
	HintCheck	hc;
	ArmdbError	err;
	bool		ok,
				ok_nocb;

	memset(&hc, 0, sizeof(hc));
	hc.data_size = data_size;
	hc.prev_end = ARMDB_FILE_HEADER_SIZE;
	armdb_error_clear(&err);

	ok = armdb_hint_parse(buf, len, FUZZ_FILE_ID, data_size, mac_key, hint_cb,
						  &hc, &err);
	if (ok)
	{
		ArmdbHintHeader hh;
		size_t		mac_len;

		CHECK(len >= sizeof(ArmdbHintHeader) + sizeof(ArmdbHintTrailer));
		memcpy(&hh, buf, sizeof(hh));
		mac_len = (hh.flags & ARMDB_HINT_FLAG_MAC) ? ARMDB_HINT_MAC_LEN : 0;
		/* a MAC was asked for: there is one */
		CHECK(!mac || mac_len > 0);
		CHECK(hh.data_end <= data_size);
		CHECK(hc.calls == hh.nrecords);
		CHECK(len == sizeof(ArmdbHintHeader) + sizeof(ArmdbHintTrailer) +
			  mac_len + (uint64) hh.nrecords * sizeof(ArmdbHintRecord));
		CHECK(hc.prev_end <= hh.data_end || hh.nrecords == 0);
	}
	else
	{
		/* all-or-nothing: a bad hint delivers no record */
		CHECK(hc.calls == 0);
		CHECK(err.code == ARMDB_ERR_CORRUPT);
		CHECK(err.message[0] != '\0');
	}

	/* validation alone agrees */
	armdb_error_clear(&err);
	ok_nocb = armdb_hint_parse(buf, len, FUZZ_FILE_ID, data_size, mac_key, NULL,
							   NULL, &err);
	CHECK(ok == ok_nocb);
}

/* ----------------
 * (d) data file header
 * ----------------
 */
static void
fuzz_file_header(const char *buf, size_t len)
{
	ArmdbError	err;

	armdb_error_clear(&err);
	if (armdb_file_header_check(buf, len, FUZZ_FILE_ID, &err))
	{
		ArmdbFileHeader fh;
		ArmdbFileHeader again;

		CHECK(len >= ARMDB_FILE_HEADER_SIZE);
		memcpy(&fh, buf, sizeof(fh));
		CHECK(fh.magic == ARMDB_DATA_MAGIC);
		CHECK(fh.version == ARMDB_FORMAT_VERSION);
		CHECK((fh.flags & ~ARMDB_FILE_FLAGS_KNOWN) == 0);
		CHECK(fh.file_id == FUZZ_FILE_ID);

		/* a good header is checked by its CRC: a different id fails */
		CHECK(!armdb_file_header_check(buf, len, FUZZ_FILE_ID + 1, &err));

		/* what init writes for the same id, shard and flags passes too */
		armdb_file_header_init_flags(&again, fh.file_id, fh.shard, fh.flags);
		if (fh.flags & ARMDB_FILE_FLAG_ENCRYPTED)
		{
			CHECK(fh.key_id != 0);
			armdb_file_header_set_key(&again, fh.key_id, fh.salt,
									  (fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED) != 0);
		}
		armdb_error_clear(&err);
		CHECK(armdb_file_header_check((const char *) &again, sizeof(again),
									  FUZZ_FILE_ID, &err));
	}
	else
	{
		CHECK(err.code == ARMDB_ERR_CORRUPT);
		CHECK(err.message[0] != '\0');
	}
}

/* ----------------
 * (e) file names
 * ----------------
 */
static void
fuzz_file_name(const char *buf, size_t len)
{
	char	   *name;
	uint32		file_id = 0;
	ArmdbFileKind kind = ARMDB_FILE_DATA;

	/* a directory entry name: NUL-terminated, exactly sized */
	if (len > 255)
		return;
	name = malloc(len + 1);
	if (name == NULL)
		return;
	memcpy(name, buf, len);
	name[len] = '\0';

	if (armdb_file_name_parse(name, &file_id, &kind))
	{
		char		path[MAXPGPATH];

		CHECK(file_id >= 1 && file_id <= ARMDB_MAX_FILE_ID);
		CHECK(kind == ARMDB_FILE_DATA || kind == ARMDB_FILE_HINT ||
			  kind == ARMDB_FILE_TMP || kind == ARMDB_FILE_MERGE);
		/* the name round-trips through armdb_file_path() */
		armdb_file_path(path, ".", file_id, kind);
		CHECK(path[0] == '.' && path[1] == '/');
		CHECK(strcmp(path + 2, name) == 0);
	}
	free(name);
}

/* ----------------
 * (f) decryption of an entry
 * ----------------
 */
static const uint8 fuzz_key[ARMDB_CIPHER_KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};

/* Make buf an encrypted entry that authenticates (FUZZ_FIX_CRC). */
static void
seal_entry(char *buf, size_t len)
{
	ArmdbEntryHeader hdr;
	uint32		hsize;
	ArmdbError	err;

	if (len < ARMDB_ENTRY_HEADER_SIZE)
		return;
	memcpy(&hdr, buf, sizeof(hdr));
	/* a version (the only kind with a value), with flags a file may hold */
	hdr.gsn = (hdr.gsn & (ARMDB_GSN_MAX | ARMDB_GSN_FLAG_SHORT_TUPLE)) |
		ARMDB_GSN_FLAG_ENCRYPTED;
	armdb_entry_choose_header(&hdr);
	hsize = armdb_entry_header_size(hdr.gsn);
	if (len < hsize + ARMDB_CIPHER_TAG_LEN)
		return;
	hdr.value_len = (uint32) (len - hsize);
	CHECK(armdb_cipher_seal_entry(fuzz_key, &hdr, buf + hsize, buf + hsize,
								  &err));
	armdb_entry_seal(&hdr, buf + hsize);
	memcpy(buf, &hdr, hsize);
}

static void
fuzz_decrypt(const char *buf, size_t len, bool sealed)
{
	ArmdbEntryHeader hdr;
	ArmdbError	err;
	uint32		hsize;
	uint32		plain_len;
	char	   *plain;
	bool		ok;

	if (armdb_entry_parse(buf, len, &hdr) != ARMDB_PARSE_OK ||
		!(hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED))
	{
		CHECK(!sealed || len < ARMDB_ENTRY_HEADER_SIZE + ARMDB_CIPHER_TAG_LEN);
		return;
	}
	hsize = armdb_entry_header_size(hdr.gsn);
	if (hdr.value_len < ARMDB_CIPHER_TAG_LEN)
		return;					/* the reader refuses it by its length */
	plain_len = hdr.value_len - ARMDB_CIPHER_TAG_LEN;
	plain = malloc(plain_len > 0 ? plain_len : 1);
	if (plain == NULL)
		return;
	armdb_error_clear(&err);
	ok = armdb_cipher_open_entry(fuzz_key, &hdr, buf + hsize, plain, &err);
	CHECK(err.code == ARMDB_OK);
	/* what the harness sealed authenticates; what it opens seals back */
	if (sealed)
		CHECK(ok);
	if (ok)
	{
		char	   *again = malloc(hdr.value_len);

		if (again != NULL)
		{
			CHECK(armdb_cipher_seal_entry(fuzz_key, &hdr, plain, again, &err));
			CHECK(memcmp(again, buf + hsize, hdr.value_len) == 0);
			free(again);
		}
		/* a different nonce or key never authenticates it */
		CHECK(!armdb_cipher_open(fuzz_key, hdr.gsn + 1, ARMDB_CIPHER_ENTRY,
								 buf + sizeof(uint32), hsize - sizeof(uint32),
								 buf + hsize, plain_len, plain, &err));
	}
	free(plain);
}

/* ----------------
 * (g) the key command's output
 * ----------------
 */
static void
fuzz_keys(const char *buf, size_t len)
{
	char	   *text = malloc(len + 1);
	ArmdbKeyring ring;
	ArmdbError	err;

	if (text == NULL)
		return;
	memcpy(text, buf, len);
	text[len] = '\0';
	armdb_error_clear(&err);
	if (armdb_cipher_parse_keys(text, &ring, &err))
	{
		CHECK(ring.nkeys >= 1 && ring.nkeys <= ARMDB_CIPHER_MAX_KEYS);
		for (int i = 0; i < ring.nkeys; i++)
		{
			CHECK(ring.keys[i].id != 0);
			CHECK(ring.keys[i].id == armdb_cipher_key_id(ring.keys[i].key));
			CHECK(armdb_cipher_find_key(&ring, ring.keys[i].id) == ring.keys[i].key);
		}
	}
	else
	{
		CHECK(err.code == ARMDB_ERR_KEY);
		/* never the text itself: no hexadecimal run of a key's length */
		CHECK(strlen(err.message) < 100);
	}
	free(text);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t		restlen;
	char	   *copy;
	uint64		data_size = 0;
	uint8		mode;
	uint8		flags;

	if (size < 1)
		return 0;
	mode = data[0] % FUZZ_NMODES;
	flags = data[0] / FUZZ_NMODES;
	rest = data + 1;
	restlen = size - 1;

	if (mode == 2)
	{
		/* the data file size comes first */
		if (restlen < 4)
			return 0;
		data_size = (uint64) rest[0] | ((uint64) rest[1] << 8) |
			((uint64) rest[2] << 16) | ((uint64) rest[3] << 24);
		rest += 4;
		restlen -= 4;
	}

	/* exactly sized copy (malloc(0) may return NULL: use 1 byte then) */
	copy = malloc(restlen > 0 ? restlen : 1);
	if (copy == NULL)
		return 0;
	if (restlen > 0)
		memcpy(copy, rest, restlen);

	if (flags & FUZZ_FIX_CRC)
	{
		if (mode == 0 || mode == 1)
			fix_entry_crcs(copy, restlen);
		else if (mode == 2)
			fix_hint_crc(copy, restlen);
		else if (mode == 3)
			fix_file_header_crc(copy, restlen);
		else if (mode == 5)
			seal_entry(copy, restlen);
	}

	switch (mode)
	{
		case 0:
			fuzz_scan(copy, restlen, flags >> 1);
			break;
		case 1:
			fuzz_entry(copy, restlen);
			break;
		case 2:
			fuzz_hint(copy, restlen, data_size, (flags & FUZZ_HINT_MAC) != 0);
			break;
		case 3:
			fuzz_file_header(copy, restlen);
			break;
		case 4:
			fuzz_file_name(copy, restlen);
			break;
		case 5:
			fuzz_decrypt(copy, restlen, (flags & FUZZ_FIX_CRC) != 0);
			break;
		case 6:
			fuzz_keys(copy, restlen);
			break;
	}
	free(copy);
	return 0;
}
