/*-------------------------------------------------------------------------
 *
 * unit_cipher.c
 *	  Unit tests of encryption at rest (storage/cipher.h): keys, the AEAD,
 *	  and encrypted appends, reads and tampering through a shard.
 *
 *-------------------------------------------------------------------------
 */
#include "unit.h"
#include "storage/merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "port/pg_crc32c.h"

#include "storage/cipher.h"
#include "storage/ghash.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void
set_keys(const char *text)
{
	ArmdbError	err;

	ASSERT_OK(armdb_cipher_parse_keys(text, &armdb_keyring, &err));
}

static void
test_parse_keys(void)
{
	ArmdbKeyring ring;
	ArmdbError	err;

	ASSERT_OK(armdb_cipher_parse_keys("# comment\n\n" KEY_A "\r\n  " KEY_B "\n" KEY_A "\n",
									  &ring, &err));
	ASSERT_EQ(ring.nkeys, 2);	/* the repeated key once */
	ASSERT(ring.keys[0].id != 0 && ring.keys[0].id != ring.keys[1].id);
	ASSERT(armdb_cipher_find_key(&ring, ring.keys[1].id) != NULL);
	ASSERT(armdb_cipher_find_key(&ring, 12345) == NULL);
	ASSERT_FAILS(armdb_cipher_parse_keys("", &ring, &err), ARMDB_ERR_KEY);
	ASSERT_FAILS(armdb_cipher_parse_keys("0011", &ring, &err), ARMDB_ERR_KEY);
	/* a message never quotes the text */
	ASSERT_FAILS(armdb_cipher_parse_keys(KEY_A "\nzz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
										 &ring, &err), ARMDB_ERR_KEY);
	ASSERT(strstr(err.message, "line 2") != NULL);
	ASSERT(strstr(err.message, "zz11") == NULL);
}

static void
test_seal_open(void)
{
	ArmdbKeyring ring;
	ArmdbError	err;
	uint8		salt[ARMDB_CIPHER_SALT_LEN];
	uint8		k1[ARMDB_CIPHER_KEY_LEN];
	uint8		k2[ARMDB_CIPHER_KEY_LEN];
	char		aad[28] = "an entry header of 28 bytes";
	char		plain[100];
	char		sealed[100 + ARMDB_CIPHER_TAG_LEN];
	char		opened[100];

	ASSERT_OK(armdb_cipher_parse_keys(KEY_A, &ring, &err));
	ASSERT_OK(armdb_cipher_random_salt(salt, &err));
	ASSERT_OK(armdb_cipher_file_key(&ring, ring.keys[0].id, salt, 3, 7, NULL, false, k1, &err));
	ASSERT_OK(armdb_cipher_file_key(&ring, ring.keys[0].id, salt, 3, 8, NULL, false, k2, &err));
	ASSERT(memcmp(k1, k2, sizeof(k1)) != 0);	/* a key per file */
	ASSERT_FAILS(armdb_cipher_file_key(&ring, ring.keys[0].id + 1, salt, 3, 7, NULL, false, k2, &err),
				 ARMDB_ERR_KEY);

	/*
	 * A key per relation: another storage id, another key; all zeros is
	 * storage made before ids, whose keys are those without one.
	 */
	{
		uint8		id_a[ARMDB_CIPHER_STORAGE_ID_LEN] = {1};
		uint8		id_b[ARMDB_CIPHER_STORAGE_ID_LEN] = {2};
		uint8		id_0[ARMDB_CIPHER_STORAGE_ID_LEN] = {0};
		uint8		ka[ARMDB_CIPHER_KEY_LEN];
		uint8		kb[ARMDB_CIPHER_KEY_LEN];

		ASSERT_OK(armdb_cipher_file_key(&ring, ring.keys[0].id, salt, 3, 7, id_a, false, ka, &err));
		ASSERT_OK(armdb_cipher_file_key(&ring, ring.keys[0].id, salt, 3, 7, id_b, false, kb, &err));
		ASSERT(memcmp(ka, kb, sizeof(ka)) != 0);
		ASSERT(memcmp(ka, k1, sizeof(ka)) != 0);
		ASSERT_OK(armdb_cipher_file_key(&ring, ring.keys[0].id, salt, 3, 7, id_0, false, ka, &err));
		ASSERT(memcmp(ka, k1, sizeof(ka)) == 0);
	}

	for (int i = 0; i < (int) sizeof(plain); i++)
		plain[i] = (char) i;
	ASSERT_OK(armdb_cipher_seal(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
								plain, sizeof(plain), sealed, &err));
	ASSERT(memcmp(sealed, plain, sizeof(plain)) != 0);
	ASSERT(armdb_cipher_open(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
							 sealed, sizeof(plain), opened, &err));
	ASSERT(memcmp(opened, plain, sizeof(plain)) == 0);
	/* in place */
	ASSERT(armdb_cipher_open(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
							 sealed, sizeof(plain), sealed, &err));
	ASSERT(memcmp(sealed, plain, sizeof(plain)) == 0);
	ASSERT_OK(armdb_cipher_seal(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
								plain, sizeof(plain), sealed, &err));

	/* every byte of value, tag and header counts, and so do key and nonce */
	for (int i = 0; i < (int) sizeof(sealed); i++)
	{
		sealed[i] ^= 0x01;
		ASSERT(!armdb_cipher_open(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
								  sealed, sizeof(plain), opened, &err));
		ASSERT_EQ(err.code, ARMDB_OK);
		sealed[i] ^= 0x01;
	}
	for (int i = 0; i < (int) sizeof(aad); i++)
	{
		aad[i] ^= 0x80;
		ASSERT(!armdb_cipher_open(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
								  sealed, sizeof(plain), opened, &err));
		aad[i] ^= 0x80;
	}
	ASSERT(!armdb_cipher_open(k2, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
							  sealed, sizeof(plain), opened, &err));
	ASSERT(!armdb_cipher_open(k1, 43, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
							  sealed, sizeof(plain), opened, &err));
	ASSERT(!armdb_cipher_open(k1, 42, ARMDB_CIPHER_LOGICAL_NEW, aad, sizeof(aad),
							  sealed, sizeof(plain), opened, &err));
	ASSERT(armdb_cipher_open(k1, 42, ARMDB_CIPHER_ENTRY, aad, sizeof(aad),
							 sealed, sizeof(plain), opened, &err));
}

/* AES-256-GCM of in through EVP, as builds before cipher.c's own path */
static bool
evp_seal(const uint8 *key, const uint8 *nonce, const uint8 *aad,
		 size_t aad_len, const uint8 *in, size_t len, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			outl;
	bool		ok;

	ok = ctx != NULL &&
		EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
		(aad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int) aad_len) == 1) &&
		(len == 0 || EVP_EncryptUpdate(ctx, out, &outl, in, (int) len) == 1) &&
		EVP_EncryptFinal_ex(ctx, out + len, &outl) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ARMDB_CIPHER_TAG_LEN,
							out + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/*
 * cipher.c runs GCM itself over prepared AES blocks, hashing in ghash.c or
 * (portable) OpenSSL's GCM: both ways, its bytes must be EVP's
 * AES-256-GCM, byte for byte -- every length around the blocks it prepares
 * (64 of 16 bytes), the entries ghash.c hashes in one call (up to 256
 * bytes of padded blocks) and OpenSSL's GHASH chunks (3 kB), in place or
 * not, with keys changing from call to call -- and what EVP sealed must
 * open.
 */
static void
test_matches_evp(void)
{
	ArmdbError	err;
	static const size_t lens[] = {0, 1, 15, 16, 17, 31, 60, 80, 176, 192,
		193, 208, 239, 240, 255, 256, 1007, 1008, 1009, 1023, 1024, 1025, 1040,
	3071, 3072, 3073, 5000, 20001};
	static const size_t aad_lens[] = {0, 1, 16, 28, 36, 45};
	uint8		keys[3][ARMDB_CIPHER_KEY_LEN];
	uint8	   *plain = malloc(20001);
	uint8	   *mine = malloc(20001 + ARMDB_CIPHER_TAG_LEN);
	uint8	   *evp = malloc(20001 + ARMDB_CIPHER_TAG_LEN);
	uint8	   *opened = malloc(20001);
	uint8		aad[45];
	uint64		rs = 17;
	int			calls = 0;

	for (int k = 0; k < 3; k++)
		for (int i = 0; i < ARMDB_CIPHER_KEY_LEN; i++)
			keys[k][i] = (uint8) unit_rand(&rs);
	for (size_t i = 0; i < 20001; i++)
		plain[i] = (uint8) unit_rand(&rs);
	for (size_t i = 0; i < sizeof(aad); i++)
		aad[i] = (uint8) unit_rand(&rs);

	for (int l = 0; l < (int) lengthof(lens) * 2; l++)
		for (int a = 0; a < (int) lengthof(aad_lens); a++)
		{
			const uint8 *key = keys[calls % 3];
			size_t		len = lens[l % lengthof(lens)];
			size_t		alen = aad_lens[a];
			uint64		gsn = unit_rand(&rs) | ((uint64) unit_rand(&rs) << 32);
			uint8		purpose = (uint8) (calls % 3);
			uint8		nonce[12] = {0};
			uint64		n = gsn & UINT64CONST(0x00FFFFFFFFFFFFFF);

			/* every length both ways: ghash.c's and OpenSSL's GCM */
			armdb_cipher_portable = l >= (int) lengthof(lens);
			calls++;
			memcpy(nonce, &n, sizeof(n));
			nonce[8] = purpose;
			ASSERT(evp_seal(key, nonce, aad, alen, plain, len, evp));
			ASSERT_OK(armdb_cipher_seal(key, gsn, purpose, aad, alen, plain,
										len, mine, &err));
			ASSERT(memcmp(mine, evp, len + ARMDB_CIPHER_TAG_LEN) == 0);
			ASSERT(armdb_cipher_open(key, gsn, purpose, aad, alen, evp, len,
									 opened, &err));
			ASSERT(memcmp(opened, plain, len) == 0);
			/* in place, both ways */
			memcpy(mine, plain, len);
			ASSERT_OK(armdb_cipher_seal(key, gsn, purpose, aad, alen, mine,
										len, mine, &err));
			ASSERT(memcmp(mine, evp, len + ARMDB_CIPHER_TAG_LEN) == 0);
			ASSERT(armdb_cipher_open(key, gsn, purpose, aad, alen, mine, len,
									 mine, &err));
			ASSERT(memcmp(mine, plain, len) == 0);
			/*
			 * the last byte of the value and of the tag count; with ghash.c,
			 * nothing is decrypted before it is authenticated
			 */
			evp[len + ARMDB_CIPHER_TAG_LEN - 1] ^= 0x40;
			memset(opened, 0xA5, len);
			ASSERT(!armdb_cipher_open(key, gsn, purpose, aad, alen, evp, len,
									  opened, &err));
			ASSERT_EQ(err.code, ARMDB_OK);
			if (!armdb_cipher_portable && armdb_ghash_available())
				for (size_t i = 0; i < len; i++)
					ASSERT_EQ(opened[i], 0xA5);
			evp[len + ARMDB_CIPHER_TAG_LEN - 1] ^= 0x40;
			if (len > 0)
			{
				evp[len - 1] ^= 0x01;
				ASSERT(!armdb_cipher_open(key, gsn, purpose, aad, alen, evp,
										  len, opened, &err));
				evp[len - 1] ^= 0x01;
			}
			/* and another counter's block is no substitute */
			ASSERT(!armdb_cipher_open(key, gsn + 1, purpose, aad, alen, evp,
									  len, opened, &err));
			ASSERT_EQ(err.code, ARMDB_OK);
			/* nor is another key's, for the same nonce */
			ASSERT(!armdb_cipher_open(keys[calls % 3], gsn, purpose, aad,
									  alen, evp, len, opened, &err));
			ASSERT_EQ(err.code, ARMDB_OK);
			ASSERT_OK(armdb_cipher_seal(keys[calls % 3], gsn, purpose, aad,
										alen, plain, len, mine, &err));
			ASSERT(memcmp(mine + len, evp + len, ARMDB_CIPHER_TAG_LEN) != 0);
		}
	armdb_cipher_portable = false;
	free(plain);
	free(mine);
	free(evp);
	free(opened);
}

/*
 * Write the forged entry image at forged over loc in the data file at path,
 * then read it back: its opening must fail as corruption saying why.
 */
static bool
forged_entry_fails(TShard *s, const char *path, const ArmdbLocation *loc,
				   const char *forged, const char *why)
{
	char		dst[512];
	ArmdbEntryHeader hdr;
	ArmdbError	err;
	int			fd = open(path, O_WRONLY);

	HASSERT(fd >= 0);
	HASSERT(pwrite(fd, forged, loc->len, loc->offset) == (ssize_t) loc->len);
	close(fd);
	HASSERT_OK(armdb_shard_read_file(&s->files, loc, dst, &hdr, &err));
	HASSERT(!armdb_shard_open_entry(&s->files, loc, dst, &hdr, &err));
	HASSERT(err.code == ARMDB_ERR_CORRUPT);
	HASSERT(strstr(err.message, why) != NULL);
	return true;
}

/* Encrypted appends through a shard: read back, tamper, a missing key. */
static void
test_shard_encrypted(void)
{
	TShard		s;
	ArmdbError	err;
	ArmdbLocation locs[50];
	char		value[300];
	char		path[MAXPGPATH];
	ArmdbKeyring saved;
	int			fd;

	set_keys(KEY_A "\n" KEY_B);
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	s.files.encrypt = true;
	for (int i = 0; i < 50; i++)
	{
		ArmdbEntryHeader hdr;
		uint32		sealed;

		memset(&hdr, 0, sizeof(hdr));
		memset(value, 'a' + i % 26, sizeof(value));
		snprintf(value, sizeof(value), "marker-%d", i);
		hdr.value_len = 100 + i;
		hdr.gsn = (uint64) i + 1;
		hdr.xid = 500;
		hdr.slot = (uint64) i;
		hdr.root_slot = (uint64) i;
		hdr.prev_slot = ARMDB_INVALID_SLOT;
		ASSERT_OK(armdb_shard_append(&s.st, &s.files, &hdr, value, &locs[i],
									 &sealed, &err));
		ASSERT(hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED);
		ASSERT_EQ(hdr.value_len, 100 + i + ARMDB_CIPHER_TAG_LEN);
	}
	ASSERT_CALL(tshard_flush_all(&s));

	/* the file holds no plaintext, the header names the current key */
	armdb_file_path(path, unit_dir, locs[0].file_id, ARMDB_FILE_DATA);
	{
		char		image[64 * 1024];
		ArmdbFileHeader fh;
		ssize_t		n;

		fd = open(path, O_RDONLY);
		ASSERT(fd >= 0);
		n = pread(fd, image, sizeof(image), 0);
		close(fd);
		ASSERT(n > 0);
		memcpy(&fh, image, sizeof(fh));
		ASSERT(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED);
		ASSERT_EQ(fh.key_id, armdb_keyring.keys[0].id);
		ASSERT(memmem(image, n, "marker-", 7) == NULL);
	}

	for (int i = 0; i < 50; i++)
	{
		char		dst[512];
		ArmdbEntryHeader hdr;

		ASSERT_OK(armdb_shard_read_file(&s.files, &locs[i], dst, &hdr, &err));
		ASSERT_OK(armdb_shard_open_entry(&s.files, &locs[i], dst, &hdr, &err));
		ASSERT_EQ(hdr.value_len, 100 + i);
		ASSERT(!(hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED));
		snprintf(value, sizeof(value), "marker-%d", i);
		ASSERT(strcmp(dst + armdb_entry_header_size(hdr.gsn), value) == 0);
	}

	/* an old key still reads; without it, the key is named */
	saved = armdb_keyring;
	set_keys(KEY_B "\n" KEY_A);
	armdb_shard_forget_file(&s.files, locs[0].file_id);
	{
		char		dst[512];
		ArmdbEntryHeader hdr;

		ASSERT_OK(armdb_shard_read_file(&s.files, &locs[3], dst, &hdr, &err));
		ASSERT_OK(armdb_shard_open_entry(&s.files, &locs[3], dst, &hdr, &err));
		set_keys(KEY_B);
		armdb_shard_forget_file(&s.files, locs[0].file_id);
		ASSERT_OK(armdb_shard_read_file(&s.files, &locs[4], dst, &hdr, &err));
		ASSERT_FAILS(armdb_shard_open_entry(&s.files, &locs[4], dst, &hdr, &err),
					 ARMDB_ERR_KEY);
	}
	armdb_keyring = saved;
	armdb_shard_forget_file(&s.files, locs[0].file_id);

	/*
	 * A flipped byte in a value, or in the tag, with the CRC made to match
	 * again (a forger): the tag catches it, naming file and offset.
	 */
	for (int what = 0; what < 2; what++)
	{
		char		dst[512];
		ArmdbEntryHeader hdr;
		const ArmdbLocation *loc = &locs[10 + what];
		uint32		off = loc->offset + loc->len - (what == 0 ? 40 : 3);

		ASSERT_OK(armdb_shard_read_file(&s.files, loc, dst, &hdr, &err));
		dst[off - loc->offset] ^= 0x20;
		armdb_entry_seal(&hdr, dst + armdb_entry_header_size(hdr.gsn));
		memcpy(dst, &hdr.crc, sizeof(uint32));
		ASSERT_CALL(forged_entry_fails(&s, path, loc, dst, "failed authentication"));
	}
	/*
	 * A version with its ENCRYPTED flag taken off and a plaintext value
	 * under a mended CRC: an encrypted table has no such version.
	 */
	{
		char		dst[512];
		ArmdbEntryHeader hdr;
		const ArmdbLocation *loc = &locs[20];
		uint32		hsize;

		ASSERT_OK(armdb_shard_read_file(&s.files, loc, dst, &hdr, &err));
		hsize = armdb_entry_header_size(hdr.gsn);
		hdr.gsn &= ~ARMDB_GSN_FLAG_ENCRYPTED;
		memset(dst + hsize, 'F', hdr.value_len);
		armdb_entry_seal(&hdr, dst + hsize);
		memcpy(dst, &hdr, hsize);
		ASSERT_CALL(forged_entry_fails(&s, path, loc, dst, "not encrypted"));
	}
	tshard_close(&s);
	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
}

/* A table's files are encrypted, but the server has no key. */
static void
test_shard_no_key(void)
{
	TShard		s;
	ArmdbError	err;
	ArmdbEntryHeader hdr;
	ArmdbLocation loc;
	uint32		sealed;

	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	s.files.encrypt = true;
	memset(&hdr, 0, sizeof(hdr));
	hdr.value_len = 10;
	hdr.gsn = 1;
	hdr.prev_slot = ARMDB_INVALID_SLOT;
	ASSERT_FAILS(armdb_shard_append(&s.st, &s.files, &hdr, "0123456789", &loc,
									&sealed, &err), ARMDB_ERR_KEY);
	tshard_close(&s);
}

/* Count what a scan or a load reports. */
static bool
count_cb(void *arg, const ArmdbEntryInfo *entry, ArmdbError *err)
{
	(*(int *) arg)++;
	return true;
}

/* Rewrite len bytes at off of path. */
static bool
overwrite(const char *path, const void *bytes, size_t len, off_t off)
{
	int			fd = open(path, O_WRONLY);

	HASSERT(fd >= 0);
	HASSERT(pwrite(fd, bytes, len, off) == (ssize_t) len);
	close(fd);
	return true;
}

/* Read len bytes at off of path. */
static bool
read_at(const char *path, void *bytes, size_t len, off_t off)
{
	int			fd = open(path, O_RDONLY);

	HASSERT(fd >= 0);
	HASSERT(pread(fd, bytes, len, off) == (ssize_t) len);
	close(fd);
	return true;
}

/* Scan data file file_id of unit_dir with auth; entries counted in *n. */
static bool
scan_with(uint32 file_id, const ArmdbFileAuth *auth, int *n, ArmdbError *err)
{
	char		path[MAXPGPATH];
	ArmdbScanResult scan;
	int			fd;
	bool		ok;

	armdb_file_path(path, unit_dir, file_id, ARMDB_FILE_DATA);
	fd = open(path, O_RDONLY);
	HASSERT(fd >= 0);
	*n = 0;
	ok = armdb_scan_data_file(unit_io, fd, file_id, false, auth, count_cb, n,
							  &scan, err);
	close(fd);
	return ok;
}

/*
 * Everything a load takes from an encrypted table's files is authenticated
 * (cipher.h): entries without a value are sealed too, a scan with the
 * table's ArmdbFileAuth opens every entry, and hint files carry a MAC.  A
 * forger who mends CRCs -- a tombstone's xid changed, an unsealed
 * tombstone, a hint record changed, a hint without its MAC, the file's
 * AUTHENTICATED flag cleared -- gets an error, never a different table.
 */
static void
test_load_authenticated(void)
{
	TShard		s;
	ArmdbError	err;
	ArmdbLocation locs[30];
	const ArmdbFileAuth *auth;
	ArmdbFileAuth other;
	uint8		other_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	char		value[200];
	char		path[MAXPGPATH];
	char		hint[MAXPGPATH];
	uint32		sealed;
	uint32		file_id;
	int			n;

	set_keys(KEY_A);
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	s.files.encrypt = true;
	memset(s.files.storage_id, 7, sizeof(s.files.storage_id));
	for (int i = 0; i < 30; i++)
	{
		ArmdbEntryHeader hdr;
		bool		valueless = i >= 20;

		memset(&hdr, 0, sizeof(hdr));
		snprintf(value, sizeof(value), "marker-%d", i);
		hdr.value_len = valueless ? 0 : 50 + i;
		hdr.gsn = (uint64) i + 1;
		if (i >= 20 && i < 25)
			hdr.gsn |= ARMDB_GSN_FLAG_TOMBSTONE;
		else if (i >= 25 && i < 28)
			hdr.gsn |= ARMDB_GSN_FLAG_RESERVE;
		else if (i >= 28)
			hdr.gsn |= ARMDB_GSN_FLAG_LOCK;
		hdr.xid = 500 + i;
		hdr.slot = (uint64) i % 20;
		hdr.root_slot = hdr.slot;
		hdr.prev_slot = i >= 28 ? 7 : ARMDB_INVALID_SLOT;
		ASSERT_OK(armdb_shard_append(&s.st, &s.files, &hdr, valueless ? NULL : value,
									 &locs[i], &sealed, &err));
		/* every kind is sealed: a valueless entry's value is its tag */
		ASSERT(hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED);
		ASSERT_EQ(hdr.value_len, (valueless ? 0 : 50 + i) + ARMDB_CIPHER_TAG_LEN);
	}
	ASSERT_OK(armdb_shard_seal(&s.st, &s.files, &sealed, &err));
	ASSERT_CALL(tshard_flush_all(&s));
	file_id = locs[0].file_id;
	ASSERT_EQ(sealed, file_id);
	auth = armdb_shard_files_auth(&s.files);
	ASSERT(auth != NULL);
	armdb_file_path(path, unit_dir, file_id, ARMDB_FILE_DATA);
	armdb_file_path(hint, unit_dir, file_id, ARMDB_FILE_HINT);

	/* the whole file authenticates, and only in its own table */
	ASSERT_OK(scan_with(file_id, auth, &n, &err));
	ASSERT_EQ(n, 30);
	other = *auth;
	memset(other_id, 8, sizeof(other_id));
	other.storage_id = other_id;
	ASSERT_FAILS(scan_with(file_id, &other, &n, &err), ARMDB_ERR_CORRUPT);
	ASSERT(strstr(err.message, "failed authentication") != NULL);

	/* a hint built with auth carries a MAC, which its load checks */
	ASSERT_OK(armdb_hint_build(unit_io, unit_dir, file_id, true, false, auth,
							   &err));
	n = 0;
	ASSERT_OK(armdb_hint_load(unit_io, unit_dir, file_id, unit_file_size(path),
							  auth, count_cb, &n, &err));
	ASSERT_EQ(n, 30);
	{
		ArmdbHintHeader hh;
		ArmdbHintRecord rec;
		ArmdbHintTrailer tr;
		uint64		size = unit_file_size(hint);
		char	   *image = malloc(size);

		ASSERT_CALL(read_at(hint, image, size, 0));
		memcpy(&hh, image, sizeof(hh));
		ASSERT(hh.flags & ARMDB_HINT_FLAG_MAC);
		/* a record's xid changed, the CRC mended */
		memcpy(&rec, image + sizeof(hh) + 22 * sizeof(rec), sizeof(rec));
		rec.xid = 3;
		memcpy(image + sizeof(hh) + 22 * sizeof(rec), &rec, sizeof(rec));
		INIT_CRC32C(tr.crc);
		COMP_CRC32C(tr.crc, image, size - sizeof(tr));
		FIN_CRC32C(tr.crc);
		tr.magic = ARMDB_HINT_MAGIC;
		memcpy(image + size - sizeof(tr), &tr, sizeof(tr));
		ASSERT_CALL(overwrite(hint, image, size, 0));
		ASSERT_FAILS(armdb_hint_load(unit_io, unit_dir, file_id,
									 unit_file_size(path), auth, count_cb, &n,
									 &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "failed authentication") != NULL);
		/* (without auth, the MAC is not checked: a plain table's load) */
		ASSERT_OK(armdb_hint_load(unit_io, unit_dir, file_id,
								  unit_file_size(path), NULL, count_cb, &n,
								  &err));
		free(image);
	}
	/* a hint without a MAC, as an earlier build wrote: not taken */
	{
		ArmdbEntryInfo infos[1];

		memset(infos, 0, sizeof(infos));
		ASSERT_OK(armdb_hint_write(unit_dir, file_id, infos, 0,
								   ARMDB_FILE_HEADER_SIZE, NULL, &err));
		ASSERT_FAILS(armdb_hint_load(unit_io, unit_dir, file_id,
									 unit_file_size(path), auth, count_cb, &n,
									 &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "has no MAC") != NULL);
		ASSERT(unlink(hint) == 0);
	}

	/* a tombstone's xid changed under a mended CRC: its tag fails */
	{
		char		entry[128];
		ArmdbEntryHeader hdr;
		const ArmdbLocation *loc = &locs[21];

		ASSERT_CALL(read_at(path, entry, loc->len, loc->offset));
		ASSERT_EQ(armdb_entry_parse(entry, loc->len, &hdr), ARMDB_PARSE_OK);
		hdr.xid = 3;
		armdb_entry_seal(&hdr, entry + armdb_entry_header_size(hdr.gsn));
		memcpy(entry, &hdr, armdb_entry_header_size(hdr.gsn));
		ASSERT_CALL(overwrite(path, entry, loc->len, loc->offset));
		ASSERT_FAILS(scan_with(file_id, auth, &n, &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "failed authentication") != NULL);
		ASSERT(strstr(err.message, "offset") != NULL);
		/* the CRC alone is satisfied: a scan without auth takes it */
		ASSERT_OK(scan_with(file_id, NULL, &n, &err));
		ASSERT_EQ(n, 30);

		/* an unsealed tombstone in its place (a long header, same length) */
		memset(&hdr, 0, sizeof(hdr));
		hdr.gsn = 22 | ARMDB_GSN_FLAG_TOMBSTONE;
		hdr.xid = 521;
		hdr.slot = 1;
		hdr.root_slot = 5;
		hdr.prev_slot = 1;
		ASSERT_EQ(loc->len, ARMDB_ENTRY_HEADER_SIZE);
		armdb_entry_seal(&hdr, NULL);
		ASSERT_EQ(armdb_entry_header_size(hdr.gsn), ARMDB_ENTRY_HEADER_SIZE);
		ASSERT_CALL(overwrite(path, &hdr, sizeof(hdr), loc->offset));
		ASSERT_FAILS(scan_with(file_id, auth, &n, &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "not sealed") != NULL);
		ASSERT_OK(scan_with(file_id, NULL, &n, &err));
	}

	/*
	 * The file's AUTHENTICATED flag cleared, its header's CRC mended: it
	 * passes for an earlier build's file, whose valueless entries are not
	 * checked -- but its key is another, so no version authenticates.
	 */
	{
		ArmdbFileHeader fh;
		char		dst[512];
		ArmdbEntryHeader hdr;

		ASSERT_CALL(read_at(path, &fh, sizeof(fh), 0));
		ASSERT(fh.flags & ARMDB_FILE_FLAG_AUTHENTICATED);
		fh.flags &= ~ARMDB_FILE_FLAG_AUTHENTICATED;
		INIT_CRC32C(fh.crc);
		COMP_CRC32C(fh.crc, ((const char *) &fh) + sizeof(uint32),
					sizeof(fh) - sizeof(uint32));
		FIN_CRC32C(fh.crc);
		ASSERT_OK(armdb_file_header_check((const char *) &fh, sizeof(fh),
										  file_id, &err));
		ASSERT_CALL(overwrite(path, &fh, sizeof(fh), 0));
		armdb_shard_forget_file(&s.files, file_id);
		ASSERT_OK(armdb_shard_read_file(&s.files, &locs[3], dst, &hdr, &err));
		ASSERT_FAILS(armdb_shard_open_entry(&s.files, &locs[3], dst, &hdr, &err),
					 ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "failed authentication") != NULL);
	}
	tshard_close(&s);
	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
}

/* A merge that keeps endings of versions that replaced others. */
static bool
keep_endings(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep,
			 ArmdbError *err)
{
	*keep = armdb_gsn_is_version(e->gsn) && e->prev_slot != ARMDB_INVALID_SLOT ?
		ARMDB_MERGE_KEEP_ENDING : ARMDB_MERGE_KEEP;
	return true;
}

static bool
next_id(void *arg, uint32 *file_id, ArmdbError *err)
{
	*file_id = (*(uint32 *) arg)++;
	return true;
}

/*
 * Append n entries to s: a version of slot 0, one of slot 1 replacing it,
 * then tombstones; the first is a tombstone when tombstone_first.
 */
static bool
append_chain(TShard *s, int n, bool tombstone_first, uint32 *sealed)
{
	char		value[100];
	ArmdbLocation loc;
	ArmdbError	err;

	memset(value, 'x', sizeof(value));
	for (int i = 0; i < n; i++)
	{
		ArmdbEntryHeader hdr;
		bool		tombstone = tombstone_first ? i == 0 : i >= 2;

		memset(&hdr, 0, sizeof(hdr));
		hdr.gsn = (uint64) i + 1;
		if (tombstone)
			hdr.gsn |= ARMDB_GSN_FLAG_TOMBSTONE;
		hdr.xid = 500;
		hdr.value_len = tombstone ? 0 : 60;
		hdr.slot = tombstone ? 10 + (uint64) i : (uint64) i;
		hdr.root_slot = tombstone ? hdr.slot : 0;
		hdr.prev_slot = !tombstone && i == 1 ? 0 : ARMDB_INVALID_SLOT;
		HASSERT_OK(armdb_shard_append(&s->st, &s->files, &hdr,
									  tombstone ? NULL : value, &loc, sealed,
									  &err));
	}
	HASSERT_OK(armdb_shard_seal(&s->st, &s->files, sealed, &err));
	return tshard_flush_all(s);
}

/*
 * m set to merge file input of the test shard (shard 0, what its headers
 * say) alone into authenticated outputs under the current key, keeping
 * endings, numbering them from *next on.
 */
static void
authenticated_merge_init(ArmdbMerge *m, uint32 input, uint32 *next)
{
	memset(m, 0, sizeof(*m));
	m->io = unit_io;
	m->dir = unit_dir;
	m->shard_no = 0;
	m->max_file_size = 1 << 20;
	m->direct_io = true;
	m->keep = keep_endings;
	m->next_file_id = next_id;
	m->arg = next;
	m->inputs[0] = input;
	m->ninputs = 1;
	m->key_id = armdb_keyring.keys[0].id;
	m->authenticated = true;
}

/*
 * A merge of an authenticated file that keeps an ending (a tombstone it
 * makes of a dead version's header): the version is authenticated first,
 * the ending sealed; the output and its hint authenticate.  A file whose
 * first entry is valueless scans too (nothing to decrypt).
 */
static void
test_merge_authenticated(void)
{
	TShard		s;
	ArmdbError	err;
	ArmdbMerge	m;
	uint32		sealed;
	uint32		next = 100;
	int			n;
	char		path[MAXPGPATH];
	const ArmdbFileAuth *auth;

	set_keys(KEY_A);
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	s.files.encrypt = true;
	memset(s.files.storage_id, 7, sizeof(s.files.storage_id));
	auth = armdb_shard_files_auth(&s.files);
	ASSERT_CALL(append_chain(&s, 4, false, &sealed));

	authenticated_merge_init(&m, sealed, &next);
	memset(m.salt, 3, sizeof(m.salt));
	memcpy(m.storage_id, s.files.storage_id, sizeof(m.storage_id));
	ASSERT_OK(armdb_merge_copy(&m, &err));
	ASSERT_OK(armdb_merge_commit(&m, &err));
	ASSERT_EQ(m.noutputs, 1);
	ASSERT_OK(scan_with(m.outputs[0], auth, &n, &err));
	ASSERT_EQ(n, 4);
	armdb_file_path(path, unit_dir, m.outputs[0], ARMDB_FILE_DATA);
	n = 0;
	ASSERT_OK(armdb_hint_load(unit_io, unit_dir, m.outputs[0],
							  unit_file_size(path), auth, count_cb, &n, &err));
	ASSERT_EQ(n, 4);
	armdb_merge_free(&m);
	tshard_close(&s);

	/* a file whose first entry has no value (numbered past the others) */
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	armdb_shard_note_file_id(&s.st, next);
	s.files.encrypt = true;
	ASSERT_CALL(append_chain(&s, 3, true, &sealed));
	ASSERT_OK(scan_with(sealed, armdb_shard_files_auth(&s.files), &n, &err));
	ASSERT_EQ(n, 3);
	tshard_close(&s);
	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
}

/*
 * What a table's ArmdbFileAuth makes of files that are not authenticated:
 * in an encrypted table, a file that is not encrypted is refused; in an
 * earlier build's encrypted file (no AUTHENTICATED flag), the sealed
 * versions are opened, valueless entries taken as they are, and a version
 * in plaintext refused.
 */
static void
test_auth_unauthenticated_files(void)
{
	TShard		s;
	ArmdbError	err;
	ArmdbFileAuth auth;
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	ArmdbFileHeader fh;
	char		path[MAXPGPATH];
	uint32		sealed;
	int			n;

	set_keys(KEY_A);
	memset(storage_id, 0, sizeof(storage_id));
	/* a plain file */
	ASSERT_CALL(tshard_init(&s, unit_dir, 16 * ARMDB_BLOCK_SIZE, 1 << 20, true));
	ASSERT_CALL(append_chain(&s, 3, false, &sealed));
	tshard_close(&s);
	auth.ring = &armdb_keyring;
	auth.storage_id = storage_id;
	auth.shard_no = UINT32_MAX;
	auth.encrypted = false;
	ASSERT_OK(scan_with(sealed, &auth, &n, &err));
	ASSERT_EQ(n, 3);
	auth.encrypted = true;
	ASSERT_FAILS(scan_with(sealed, &auth, &n, &err), ARMDB_ERR_CORRUPT);
	ASSERT(strstr(err.message, "of an encrypted table is not encrypted") != NULL);
	{
		uint8		key[ARMDB_CIPHER_KEY_LEN];
		bool		keyed;
		ArmdbMerge	m;
		uint32		next = 800;

		ASSERT_FAILS(armdb_data_file_key(unit_io, unit_dir, sealed, &auth, key,
										 &keyed, &err), ARMDB_ERR_CORRUPT);
		/* nor does a merge of an encrypted table seal one anew */
		authenticated_merge_init(&m, sealed, &next);
		ASSERT_FAILS(armdb_merge_copy(&m, &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "is not encrypted") != NULL);
		armdb_merge_free(&m);
	}

	/*
	 * An earlier build's encrypted file: its header without AUTHENTICATED,
	 * its key derived without it, its valueless entries unsealed -- made
	 * here by writing one, a version sealed under that key by hand.
	 */
	{
		uint8		salt[ARMDB_CIPHER_SALT_LEN];
		uint8		key[ARMDB_CIPHER_KEY_LEN];
		char		image[ARMDB_BLOCK_SIZE];
		ArmdbEntryHeader hdr;
		char		plain[40];
		uint32		off = ARMDB_FILE_HEADER_SIZE;
		uint32		hsize;
		int			fd;

		memset(image, 0, sizeof(image));
		memset(salt, 5, sizeof(salt));
		armdb_file_header_init(&fh, 900, 0);
		armdb_file_header_set_key(&fh, armdb_keyring.keys[0].id, salt, false);
		memcpy(image, &fh, sizeof(fh));
		ASSERT_OK(armdb_cipher_file_key(&armdb_keyring, fh.key_id, salt, 0, 900,
										storage_id, false, key, &err));
		/* a sealed version */
		memset(&hdr, 0, sizeof(hdr));
		hdr.gsn = 1 | ARMDB_GSN_FLAG_ENCRYPTED;
		hdr.xid = 500;
		hdr.slot = 0;
		hdr.root_slot = 0;
		hdr.prev_slot = ARMDB_INVALID_SLOT;
		hdr.value_len = sizeof(plain) + ARMDB_CIPHER_TAG_LEN;
		armdb_entry_choose_header(&hdr);
		hsize = armdb_entry_header_size(hdr.gsn);
		memset(plain, 'p', sizeof(plain));
		ASSERT_OK(armdb_cipher_seal_entry(key, &hdr, plain, image + off + hsize,
										  &err));
		armdb_entry_seal(&hdr, image + off + hsize);
		memcpy(image + off, &hdr, hsize);
		off += hsize + hdr.value_len;
		/* an unsealed tombstone */
		memset(&hdr, 0, sizeof(hdr));
		hdr.gsn = 2 | ARMDB_GSN_FLAG_TOMBSTONE;
		hdr.xid = 501;
		hdr.slot = 0;
		hdr.root_slot = 0;
		hdr.prev_slot = ARMDB_INVALID_SLOT;
		armdb_entry_seal(&hdr, NULL);
		memcpy(image + off, &hdr, armdb_entry_header_size(hdr.gsn));
		off += armdb_entry_header_size(hdr.gsn);
		armdb_file_path(path, unit_dir, 900, ARMDB_FILE_DATA);
		fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
		ASSERT(fd >= 0);
		ASSERT(write(fd, image, sizeof(image)) == (ssize_t) sizeof(image));
		close(fd);
		ASSERT_OK(scan_with(900, &auth, &n, &err));
		ASSERT_EQ(n, 2);

		/* the version's xid changed under a mended CRC: its tag fails */
		memcpy(&hdr, image + ARMDB_FILE_HEADER_SIZE, sizeof(hdr));
		ASSERT_EQ(armdb_entry_parse(image + ARMDB_FILE_HEADER_SIZE,
									sizeof(image) - ARMDB_FILE_HEADER_SIZE, &hdr),
				  ARMDB_PARSE_OK);
		hdr.xid = 3;
		hsize = armdb_entry_header_size(hdr.gsn);
		armdb_entry_seal(&hdr, image + ARMDB_FILE_HEADER_SIZE + hsize);
		memcpy(image + ARMDB_FILE_HEADER_SIZE, &hdr, hsize);
		ASSERT_CALL(overwrite(path, image, sizeof(image), 0));
		ASSERT_FAILS(scan_with(900, &auth, &n, &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "failed authentication") != NULL);

		/* a version in plaintext in its place */
		hdr.gsn &= ~ARMDB_GSN_FLAG_ENCRYPTED;
		memset(image + ARMDB_FILE_HEADER_SIZE + hsize, 'F', hdr.value_len);
		armdb_entry_seal(&hdr, image + ARMDB_FILE_HEADER_SIZE + hsize);
		memcpy(image + ARMDB_FILE_HEADER_SIZE, &hdr, hsize);
		ASSERT_CALL(overwrite(path, image, sizeof(image), 0));
		ASSERT_FAILS(scan_with(900, &auth, &n, &err), ARMDB_ERR_CORRUPT);
		ASSERT(strstr(err.message, "is not encrypted, but its file is") != NULL);
		explicit_bzero(key, sizeof(key));
	}
	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
}

const UnitTest unit_cipher_tests[] = {
	{"cipher_parse_keys", test_parse_keys},
	{"cipher_seal_open", test_seal_open},
	{"cipher_matches_evp", test_matches_evp},
	{"cipher_shard_encrypted", test_shard_encrypted},
	{"cipher_load_authenticated", test_load_authenticated},
	{"cipher_merge_authenticated", test_merge_authenticated},
	{"cipher_auth_unauthenticated_files", test_auth_unauthenticated_files},
	{"cipher_shard_no_key", test_shard_no_key},
	{NULL, NULL}
};
