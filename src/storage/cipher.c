/*-------------------------------------------------------------------------
 *
 * cipher.c
 *	  AES-256-GCM and HKDF through OpenSSL's EVP interface (cipher.h).
 *
 * OpenSSL picks AES-NI and carry-less multiplication where the CPU has
 * them.  A process keeps one context for encrypting and one for
 * decrypting, set up once; a call is one entry, and consecutive entries
 * mostly share a file key (a scan of a file, a COPY into one), so a context
 * is given a new key only when the key changes: the key schedule and
 * GHASH's tables cost more than a small entry's encryption.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "storage/cipher.h"
#include "storage/format.h"

ArmdbKeyring armdb_keyring;

/* a context and the key it holds */
typedef struct GcmContext
{
	EVP_CIPHER_CTX *ctx;
	bool		keyed;
	uint8		key[ARMDB_CIPHER_KEY_LEN];
} GcmContext;

static GcmContext seal_ctx;
static GcmContext open_ctx;

uint32
armdb_cipher_key_id(const uint8 *key)
{
	static const char label[] = "armdb key id";
	uint8		digest[SHA256_DIGEST_LENGTH];
	uint8		buf[sizeof(label) + ARMDB_CIPHER_KEY_LEN];
	uint32		id;

	memcpy(buf, label, sizeof(label));
	memcpy(buf + sizeof(label), key, ARMDB_CIPHER_KEY_LEN);
	SHA256(buf, sizeof(buf), digest);
	explicit_bzero(buf, sizeof(buf));
	id = ((uint32) digest[0] << 24) | ((uint32) digest[1] << 16) |
		((uint32) digest[2] << 8) | digest[3];
	return id != 0 ? id : 1;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
armdb_cipher_parse_keys(const char *text, ArmdbKeyring *ring, ArmdbError *err)
{
	const char *p = text;
	int			line = 0;

	memset(ring, 0, sizeof(*ring));
	while (*p != '\0')
	{
		const char *end = strchr(p, '\n');
		size_t		len = end != NULL ? (size_t) (end - p) : strlen(p);
		uint8		key[ARMDB_CIPHER_KEY_LEN];
		uint32		id;

		line++;
		while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		if (len == 0 || *p == '#')
			goto next;
		if (len != 2 * ARMDB_CIPHER_KEY_LEN)
			return armdb_error(err, ARMDB_ERR_KEY, 0,
							   "line %d of the key command's output is not a key of 64 hexadecimal digits",
							   line);
		for (int i = 0; i < ARMDB_CIPHER_KEY_LEN; i++)
		{
			int			hi = hex_value(p[2 * i]);
			int			lo = hex_value(p[2 * i + 1]);

			if (hi < 0 || lo < 0)
			{
				explicit_bzero(key, sizeof(key));
				return armdb_error(err, ARMDB_ERR_KEY, 0,
								   "line %d of the key command's output is not a key of 64 hexadecimal digits",
								   line);
			}
			key[i] = (uint8) (hi << 4 | lo);
		}
		id = armdb_cipher_key_id(key);
		if (armdb_cipher_find_key(ring, id) == NULL)
		{
			if (ring->nkeys == ARMDB_CIPHER_MAX_KEYS)
			{
				explicit_bzero(key, sizeof(key));
				return armdb_error(err, ARMDB_ERR_KEY, 0,
								   "the key command printed more than %d keys",
								   ARMDB_CIPHER_MAX_KEYS);
			}
			ring->keys[ring->nkeys].id = id;
			memcpy(ring->keys[ring->nkeys].key, key, sizeof(key));
			ring->nkeys++;
		}
		explicit_bzero(key, sizeof(key));
next:
		if (end == NULL)
			break;
		p = end + 1;
	}
	if (ring->nkeys == 0)
		return armdb_error(err, ARMDB_ERR_KEY, 0,
						   "the key command printed no key");
	return true;
}

const uint8 *
armdb_cipher_find_key(const ArmdbKeyring *ring, uint32 id)
{
	for (int i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].id == id)
			return ring->keys[i].key;
	return NULL;
}

bool
armdb_cipher_random_salt(uint8 *salt, ArmdbError *err)
{
	if (RAND_bytes(salt, ARMDB_CIPHER_SALT_LEN) != 1)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not generate random bytes for a file key");
	return true;
}

bool
armdb_cipher_file_key(const ArmdbKeyring *ring, uint32 key_id,
					  const uint8 *salt, uint32 shard, uint32 file_id,
					  const uint8 *storage_id, uint8 *key, ArmdbError *err)
{
	const uint8 *master = armdb_cipher_find_key(ring, key_id);
	EVP_PKEY_CTX *pctx;
	uint8		info[20 + ARMDB_CIPHER_STORAGE_ID_LEN];
	size_t		info_len = 20;
	size_t		outlen = ARMDB_CIPHER_KEY_LEN;
	bool		bound = false;
	bool		ok;

	for (int i = 0; storage_id != NULL && i < ARMDB_CIPHER_STORAGE_ID_LEN; i++)
		bound = bound || storage_id[i] != 0;

	if (master == NULL)
		return armdb_error(err, ARMDB_ERR_KEY, 0,
						   ring->nkeys == 0 ?
						   "encryption key %08x is needed, and the server has no encryption key" :
						   "encryption key %08x is needed, and the server was not given it",
						   key_id);
	/* byte 11 says whether the storage id follows (cipher.h) */
	memcpy(info, "armdbfile", 9);
	info[9] = 0;
	info[10] = 0;
	info[11] = bound ? 1 : 0;
	memcpy(info + 12, &shard, 4);
	memcpy(info + 16, &file_id, 4);
	if (bound)
	{
		memcpy(info + 20, storage_id, ARMDB_CIPHER_STORAGE_ID_LEN);
		info_len += ARMDB_CIPHER_STORAGE_ID_LEN;
	}
	pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	ok = pctx != NULL &&
		EVP_PKEY_derive_init(pctx) > 0 &&
		EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
		EVP_PKEY_CTX_set1_hkdf_salt(pctx, salt, ARMDB_CIPHER_SALT_LEN) > 0 &&
		EVP_PKEY_CTX_set1_hkdf_key(pctx, master, ARMDB_CIPHER_KEY_LEN) > 0 &&
		EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int) info_len) > 0 &&
		EVP_PKEY_derive(pctx, key, &outlen) > 0 &&
		outlen == ARMDB_CIPHER_KEY_LEN;
	EVP_PKEY_CTX_free(pctx);
	if (!ok)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not derive the key of data file %06u", file_id);
	return true;
}

/*
 * gc ready for a call with key and nonce: the context made on first use,
 * keyed only when the key is not the one it holds.
 */
static bool
gcm_begin(GcmContext *gc, bool encrypt, const uint8 *key, const uint8 *nonce)
{
	bool		rekey = !gc->keyed || memcmp(gc->key, key, sizeof(gc->key)) != 0;

	if (gc->ctx == NULL)
	{
		gc->ctx = EVP_CIPHER_CTX_new();
		if (gc->ctx == NULL ||
			(encrypt ? EVP_EncryptInit_ex(gc->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) :
			 EVP_DecryptInit_ex(gc->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)) != 1)
		{
			EVP_CIPHER_CTX_free(gc->ctx);
			gc->ctx = NULL;
			return false;
		}
	}
	gc->keyed = false;
	if ((encrypt ?
		 EVP_EncryptInit_ex(gc->ctx, NULL, NULL, rekey ? key : NULL, nonce) :
		 EVP_DecryptInit_ex(gc->ctx, NULL, NULL, rekey ? key : NULL, nonce)) != 1)
		return false;
	if (rekey)
		memcpy(gc->key, key, sizeof(gc->key));
	gc->keyed = true;
	return true;
}

static void
make_nonce(uint8 *nonce, uint64 gsn, uint8 purpose)
{
	uint64		n = gsn & UINT64CONST(0x00FFFFFFFFFFFFFF);

	memset(nonce, 0, 12);
	memcpy(nonce, &n, sizeof(n));
	nonce[8] = purpose;
}

bool
armdb_cipher_seal(const uint8 *key, uint64 gsn, uint8 purpose,
				  const void *aad, size_t aad_len, const void *in, size_t len,
				  void *out, ArmdbError *err)
{
	uint8		nonce[12];
	int			outl;
	bool		ok;

	make_nonce(nonce, gsn, purpose);
	ok = len <= INT_MAX && aad_len <= INT_MAX &&
		gcm_begin(&seal_ctx, true, key, nonce) &&
		(aad_len == 0 ||
		 EVP_EncryptUpdate(seal_ctx.ctx, NULL, &outl, aad, (int) aad_len) == 1) &&
		(len == 0 ||
		 EVP_EncryptUpdate(seal_ctx.ctx, out, &outl, in, (int) len) == 1) &&
		EVP_EncryptFinal_ex(seal_ctx.ctx, (uint8 *) out + len, &outl) == 1 &&
		EVP_CIPHER_CTX_ctrl(seal_ctx.ctx, EVP_CTRL_GCM_GET_TAG, ARMDB_CIPHER_TAG_LEN,
							(uint8 *) out + len) == 1;
	if (!ok)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not encrypt %zu bytes", len);
	return true;
}

bool
armdb_cipher_open(const uint8 *key, uint64 gsn, uint8 purpose,
				  const void *aad, size_t aad_len, const void *in, size_t len,
				  void *out, ArmdbError *err)
{
	uint8		nonce[12];
	uint8		tag[ARMDB_CIPHER_TAG_LEN];
	int			outl;

	armdb_error_clear(err);
	if (len > INT_MAX || aad_len > INT_MAX)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not decrypt %zu bytes", len);
	make_nonce(nonce, gsn, purpose);
	/* the tag first: out may be in, and then overwrites it */
	memcpy(tag, (const uint8 *) in + len, sizeof(tag));
	if (!gcm_begin(&open_ctx, false, key, nonce) ||
		(aad_len > 0 &&
		 EVP_DecryptUpdate(open_ctx.ctx, NULL, &outl, aad, (int) aad_len) != 1) ||
		(len > 0 &&
		 EVP_DecryptUpdate(open_ctx.ctx, out, &outl, in, (int) len) != 1) ||
		EVP_CIPHER_CTX_ctrl(open_ctx.ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not decrypt %zu bytes", len);
	return EVP_DecryptFinal_ex(open_ctx.ctx, (uint8 *) out + len, &outl) == 1;
}

bool
armdb_cipher_seal_entry(const uint8 *key, const ArmdbEntryHeader *hdr,
						const void *plain, void *out, ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);

	Assert(hdr->value_len >= ARMDB_CIPHER_TAG_LEN);
	return armdb_cipher_seal(key, hdr->gsn, ARMDB_CIPHER_ENTRY,
							 (const char *) hdr + sizeof(uint32),
							 hsize - sizeof(uint32), plain,
							 hdr->value_len - ARMDB_CIPHER_TAG_LEN, out, err);
}

bool
armdb_cipher_open_entry(const uint8 *key, const ArmdbEntryHeader *hdr,
						const void *sealed, void *out, ArmdbError *err)
{
	uint32		hsize = armdb_entry_header_size(hdr->gsn);

	Assert(hdr->value_len >= ARMDB_CIPHER_TAG_LEN);
	return armdb_cipher_open(key, hdr->gsn, ARMDB_CIPHER_ENTRY,
							 (const char *) hdr + sizeof(uint32),
							 hsize - sizeof(uint32), sealed,
							 hdr->value_len - ARMDB_CIPHER_TAG_LEN, out, err);
}
