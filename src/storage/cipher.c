/*-------------------------------------------------------------------------
 *
 * cipher.c
 *	  AES-256-GCM and HKDF through OpenSSL's EVP interface (cipher.h).
 *
 * OpenSSL picks AES-NI and carry-less multiplication where the CPU has
 * them.  A call is one entry, and consecutive entries mostly share a file
 * key (a scan of a file, a COPY into one), so a process keeps one context
 * for encrypting and one for decrypting, keyed anew only when the key
 * changes: the key schedule and GHASH's tables cost more than a small
 * entry's encryption.
 *
 * How a call runs.  EVP's AES-256-GCM spends about 200 ns on one small
 * entry, nearly all of it in the fixed cost of its five calls (nonce,
 * additional data, data, final, tag), each through the provider's
 * parameter machinery -- as much as a sequential scan of small rows spends
 * on everything else.  So GCM runs here over AES-256 in ECB through EVP,
 * and each call asks EVP for its AES blocks once: the counter blocks the
 * entry needs -- J0 for the tag's mask, then one per 16 bytes of data --
 * are encrypted in one EVP call before anything else (gcm_begin()), a
 * chunk at a time past KEYSTREAM_BLOCKS.  The counter mode is an XOR with
 * them; GHASH is ghash.c's where the CPU has carry-less multiplication,
 * all of a small entry's blocks in one call reduced once, and an opening
 * decrypts nothing before the tag matched.  Elsewhere (or with
 * armdb_cipher_portable) the mode runs in OpenSSL's own GCM (modes.h:
 * CRYPTO_gcm128_*, the code under EVP's GCM) whose block and stream
 * callbacks (gcm_block(), gcm_stream()) take the prepared blocks, checking
 * each counter block against them rather than trusting the order in which
 * the mode asks.  Either way the bytes are GCM's: the unit tests compare
 * every result, both ways, with EVP's AES-256-GCM, the way files of earlier
 * builds were written.  A small entry costs about 75 ns instead of 115
 * (OpenSSL's GCM) or 220 (EVP's).  (This path bypasses OpenSSL's
 * providers, and with them a FIPS provider's approval.)
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/modes.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "port/pg_bswap.h"

#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/ghash.h"

ArmdbKeyring armdb_keyring;

/* counter blocks prepared per call: values up to 1 kB take one EVP call */
#define KEYSTREAM_BLOCKS	64
#define AES_BLOCK			16

/* a context, the key it holds, and the AES blocks prepared for one call */
typedef struct GcmContext
{
	EVP_CIPHER_CTX *aes;		/* AES-256-ECB under key */
	GCM128_CONTEXT *gcm;		/* GCM over aes: H of key */
	ArmdbGhashKey ghash;		/* ... the powers of H for ghash.c */
	bool		keyed;
	bool		failed;			/* an AES call failed since begin */
	uint8		key[ARMDB_CIPHER_KEY_LEN];
	uint8		nonce[12];		/* of the prepared counter blocks */
	uint32		first;			/* counter of ks[0] */
	uint32		nprepared;		/* blocks in ks */
	uint8		ks[KEYSTREAM_BLOCKS + 1][AES_BLOCK];
} GcmContext;

static GcmContext seal_ctx;
static GcmContext open_ctx;

/* hash through OpenSSL's GCM even where ghash.c could (the unit tests) */
bool		armdb_cipher_portable = false;

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
					  const uint8 *storage_id, bool authenticated, uint8 *key,
					  ArmdbError *err)
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
	/*
	 * byte 10 says whether the file is authenticated (format.h), byte 11
	 * whether the storage id follows (cipher.h)
	 */
	memcpy(info, "armdbfile", 9);
	info[9] = 0;
	info[10] = authenticated ? 1 : 0;
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

bool
armdb_cipher_header_key(const ArmdbFileAuth *auth, const ArmdbFileHeader *fh,
						uint8 *key, ArmdbError *err)
{
	Assert(fh->flags & ARMDB_FILE_FLAG_ENCRYPTED);
	/* a file of another shard (copied over one of this) is not this one */
	if (auth->shard_no != UINT32_MAX && fh->shard != auth->shard_no)
		return armdb_error(err, ARMDB_ERR_CORRUPT, 0,
						   "data file %06u says it belongs to shard %u, not %u",
						   fh->file_id, fh->shard, auth->shard_no);
	if (armdb_cipher_find_key(auth->ring, fh->key_id) == NULL)
		return armdb_error(err, ARMDB_ERR_KEY, 0,
						   auth->ring->nkeys == 0 ?
						   "encryption key %08x is needed by data file %06u, and the server has no encryption key" :
						   "encryption key %08x is needed by data file %06u, and the server was not given it",
						   fh->key_id, fh->file_id);
	return armdb_cipher_file_key(auth->ring, fh->key_id, fh->salt, fh->shard,
								 fh->file_id, auth->storage_id,
								 (fh->flags & ARMDB_FILE_FLAG_AUTHENTICATED) != 0,
								 key, err);
}

bool
armdb_cipher_hint_key(const uint8 *file_key, uint8 *hint_key, ArmdbError *err)
{
	static const char info[] = "armdbhint";
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t		outlen = ARMDB_CIPHER_KEY_LEN;
	bool		ok;

	/* the file key is uniformly random already: expand only */
	ok = pctx != NULL &&
		EVP_PKEY_derive_init(pctx) > 0 &&
		EVP_PKEY_CTX_set_hkdf_mode(pctx, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) > 0 &&
		EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
		EVP_PKEY_CTX_set1_hkdf_key(pctx, file_key, ARMDB_CIPHER_KEY_LEN) > 0 &&
		EVP_PKEY_CTX_add1_hkdf_info(pctx, (const unsigned char *) info,
									sizeof(info) - 1) > 0 &&
		EVP_PKEY_derive(pctx, hint_key, &outlen) > 0 &&
		outlen == ARMDB_CIPHER_KEY_LEN;
	EVP_PKEY_CTX_free(pctx);
	if (!ok)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not derive the key of a hint file");
	return true;
}

bool
armdb_cipher_hint_mac(const uint8 *hint_key, const void *buf, size_t len,
					  uint8 *mac, ArmdbError *err)
{
	size_t		outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hint_key,
				  ARMDB_CIPHER_KEY_LEN, buf, len, mac, ARMDB_HINT_MAC_LEN,
				  &outlen) == NULL || outlen != ARMDB_HINT_MAC_LEN)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not compute the MAC of %zu bytes", len);
	return true;
}

bool
armdb_cipher_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* AES of n blocks at in to out; a failure is remembered, not returned */
static void
aes_blocks(GcmContext *gc, const uint8 *in, uint8 *out, size_t n)
{
	int			outl = 0;

	if (EVP_EncryptUpdate(gc->aes, out, &outl, in, (int) (n * AES_BLOCK)) != 1 ||
		outl != (int) (n * AES_BLOCK))
	{
		gc->failed = true;
		memset(out, 0, n * AES_BLOCK);
	}
}

/* the counter of a counter block */
static inline uint32
block_counter(const uint8 *block)
{
	uint32		c;

	memcpy(&c, block + 12, sizeof(c));
	return pg_ntoh32(c);
}

/* where the block of nonce (a counter block's first 12 bytes) and counter
 * is prepared, or -1 */
static inline int
prepared_index(const GcmContext *gc, const uint8 *nonce, uint32 counter)
{
	uint32		i = counter - gc->first;

	if (i < gc->nprepared && memcmp(nonce, gc->nonce, sizeof(gc->nonce)) == 0)
		return (int) i;
	return -1;
}

/* out = in XOR stream, n bytes (a multiple of 8) */
static inline void
xor_bytes(uint8 *out, const uint8 *in, const uint8 *stream, size_t n)
{
	for (size_t b = 0; b < n; b += sizeof(uint64))
	{
		uint64		x;
		uint64		y;

		memcpy(&x, in + b, sizeof(x));
		memcpy(&y, stream + b, sizeof(y));
		x ^= y;
		memcpy(out + b, &x, sizeof(x));
	}
}

/* fill n counter blocks from nonce and counter (inc32: the counter wraps) */
static void
counter_blocks(uint8 (*blocks)[AES_BLOCK], const uint8 *nonce, uint32 counter,
			   size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		uint32		c = pg_hton32(counter + (uint32) i);

		memcpy(blocks[i], nonce, 12);
		memcpy(blocks[i] + 12, &c, sizeof(c));
	}
}

/* block128_f: AES of one block, prepared or not */
static void
gcm_block(const unsigned char in[16], unsigned char out[16], const void *arg)
{
	GcmContext *gc = (GcmContext *) arg;
	int			i = prepared_index(gc, in, block_counter(in));

	if (i >= 0)
		memcpy(out, gc->ks[i], AES_BLOCK);
	else
		aes_blocks(gc, in, out, 1);
}

/* ctr128_f: in XOR the keystream of blocks counter blocks from ivec */
static void
gcm_stream(const unsigned char *in, unsigned char *out, size_t blocks,
		   const void *arg, const unsigned char ivec[16])
{
	GcmContext *gc = (GcmContext *) arg;
	uint32		counter = block_counter(ivec);
	uint8		ctrs[KEYSTREAM_BLOCKS][AES_BLOCK];
	uint8		ks[KEYSTREAM_BLOCKS][AES_BLOCK];

	while (blocks > 0)
	{
		const uint8 *stream;
		size_t		n;
		int			i = prepared_index(gc, ivec, counter);

		if (i >= 0)
		{
			stream = gc->ks[i];
			n = Min(blocks, gc->nprepared - (uint32) i);
		}
		else
		{
			n = Min(blocks, KEYSTREAM_BLOCKS);
			counter_blocks(ctrs, ivec, counter, n);
			aes_blocks(gc, ctrs[0], ks[0], n);
			stream = ks[0];
		}
		xor_bytes(out, in, stream, n * AES_BLOCK);
		in += n * AES_BLOCK;
		out += n * AES_BLOCK;
		blocks -= n;
		counter += (uint32) n;
	}
	explicit_bzero(ks, sizeof(ks));
}

/*
 * gc ready for a call with key and nonce on len bytes: keyed anew only when
 * the key is not the one it holds, and the AES blocks of the call prepared
 * in one EVP call (J0 = nonce || 1, then nonce || 2, ... for the data).
 */
static bool
gcm_begin(GcmContext *gc, const uint8 *key, const uint8 *nonce, size_t len)
{
	uint8		ctrs[KEYSTREAM_BLOCKS + 1][AES_BLOCK];
	size_t		n;

	gc->failed = false;
	gc->nprepared = 0;
	if (!gc->keyed || memcmp(gc->key, key, sizeof(gc->key)) != 0)
	{
		gc->keyed = false;
		if (gc->aes == NULL && (gc->aes = EVP_CIPHER_CTX_new()) == NULL)
			return false;
		if (EVP_EncryptInit_ex(gc->aes, EVP_aes_256_ecb(), NULL, key, NULL) != 1 ||
			EVP_CIPHER_CTX_set_padding(gc->aes, 0) != 1)
			return false;
		/* the hash key H = AES(0), through gcm_block() */
		if (gc->gcm == NULL)
			gc->gcm = CRYPTO_gcm128_new(gc, gcm_block);
		else
			CRYPTO_gcm128_init(gc->gcm, gc, gcm_block);
		if (gc->gcm == NULL || gc->failed)
			return false;
		if (armdb_ghash_available())
		{
			uint8		h[AES_BLOCK] = {0};

			aes_blocks(gc, h, h, 1);
			armdb_ghash_init(&gc->ghash, h);
			explicit_bzero(h, sizeof(h));
			if (gc->failed)
				return false;
		}
		memcpy(gc->key, key, sizeof(gc->key));
		gc->keyed = true;
	}
	n = 1 + Min((len + AES_BLOCK - 1) / AES_BLOCK, KEYSTREAM_BLOCKS);
	counter_blocks(ctrs, nonce, 1, n);
	aes_blocks(gc, ctrs[0], gc->ks[0], n);
	memcpy(gc->nonce, nonce, sizeof(gc->nonce));
	gc->first = 1;
	gc->nprepared = (uint32) n;
	return !gc->failed;
}

static void
make_nonce(uint8 *nonce, uint64 gsn, uint8 purpose)
{
	uint64		n = gsn & UINT64CONST(0x00FFFFFFFFFFFFFF);

	memset(nonce, 0, 12);
	memcpy(nonce, &n, sizeof(n));
	nonce[8] = purpose;
}

/*
 * After a call: the prepared keystream wiped, and after a failed AES call
 * the key forgotten, so that the next call sets the context up anew.
 * Returns whether the call's AES calls all succeeded.
 */
static bool
gcm_end(GcmContext *gc)
{
	bool		ok = !gc->failed;

	explicit_bzero(gc->ks, (size_t) AES_BLOCK * gc->nprepared);
	gc->nprepared = 0;
	if (!ok)
		gc->keyed = false;
	gc->failed = false;
	return ok;
}

/* out = in XOR stream, n bytes */
static inline void
xor_tail(uint8 *out, const uint8 *in, const uint8 *stream, size_t n)
{
	size_t		whole = n - n % sizeof(uint64);

	xor_bytes(out, in, stream, whole);
	for (size_t b = whole; b < n; b++)
		out[b] = in[b] ^ stream[b];
}

/*
 * The counter mode of a call begun by gcm_begin(): len bytes at in XOR
 * the keystream of counters 2, 3, ... to out, the first
 * KEYSTREAM_BLOCKS blocks from those prepared, the rest a chunk at a time.
 */
static void
gcm_counter_mode(GcmContext *gc, const uint8 *nonce, const uint8 *in,
				 uint8 *out, size_t len)
{
	uint8		ctrs[KEYSTREAM_BLOCKS][AES_BLOCK];
	uint32		counter = 2;

	while (len > 0)
	{
		size_t		n = Min(len, (size_t) KEYSTREAM_BLOCKS * AES_BLOCK);
		size_t		blocks = (n + AES_BLOCK - 1) / AES_BLOCK;

		if (counter != 2)
		{
			counter_blocks(ctrs, nonce, counter, blocks);
			aes_blocks(gc, ctrs[0], gc->ks[1], blocks);
			/* gcm_end() wipes all the blocks ever prepared */
			gc->nprepared = Max(gc->nprepared, (uint32) (blocks + 1));
		}
		xor_tail(out, in, gc->ks[1], n);
		in += n;
		out += n;
		len -= n;
		counter += (uint32) blocks;
	}
}

/*
 * The tag of a call begun by gcm_begin(): GHASH (ghash.c) of the
 * additional data and the ciphertext, each padded to whole blocks, and of
 * their lengths in bits, masked with the AES of J0.
 */
static void
gcm_tag(GcmContext *gc, const uint8 *aad, size_t aad_len,
		const uint8 *ciphertext, size_t len, uint8 *tag)
{
	uint8		x[AES_BLOCK] = {0};
	uint64		lengths[2];
	size_t		aad_padded = TYPEALIGN(AES_BLOCK, aad_len);
	size_t		padded = TYPEALIGN(AES_BLOCK, len);

	lengths[0] = pg_hton64((uint64) aad_len * 8);
	lengths[1] = pg_hton64((uint64) len * 8);
	if (aad_padded + padded + AES_BLOCK <= ARMDB_GHASH_POWERS * AES_BLOCK)
	{
		/* a small entry: all its blocks in one call, reduced once */
		uint8		blocks[ARMDB_GHASH_POWERS * AES_BLOCK];
		size_t		n = aad_padded + padded + AES_BLOCK;

		memset(blocks, 0, n);
		memcpy(blocks, aad, aad_len);
		memcpy(blocks + aad_padded, ciphertext, len);
		memcpy(blocks + aad_padded + padded, lengths, sizeof(lengths));
		armdb_ghash_update(&gc->ghash, x, blocks, n);
	}
	else
	{
		armdb_ghash_update(&gc->ghash, x, aad, aad_len);
		armdb_ghash_update(&gc->ghash, x, ciphertext, len);
		armdb_ghash_update(&gc->ghash, x, (const uint8 *) lengths,
						   sizeof(lengths));
	}
	xor_bytes(tag, x, gc->ks[0], AES_BLOCK);
}

/* Is ghash.c to hash this process's calls? */
static inline bool
use_ghash(void)
{
	return !armdb_cipher_portable && armdb_ghash_available();
}

/*
 * How a call runs where ghash.c does not: the mode of OpenSSL over the
 * blocks gcm_begin() prepared.  Sealing with tag NULL; opening compares
 * with tag.
 */
static bool
gcm_portable(GcmContext *gc, const uint8 *nonce, const void *aad,
			 size_t aad_len, const void *in, size_t len, void *out,
			 const uint8 *tag, bool *match)
{
	CRYPTO_gcm128_setiv(gc->gcm, nonce, 12);
	if (aad_len > 0 && CRYPTO_gcm128_aad(gc->gcm, aad, aad_len) != 0)
		return false;
	if (tag == NULL)
	{
		if (len > 0 &&
			CRYPTO_gcm128_encrypt_ctr32(gc->gcm, in, out, len, gcm_stream) != 0)
			return false;
		CRYPTO_gcm128_tag(gc->gcm, (uint8 *) out + len, ARMDB_CIPHER_TAG_LEN);
		return true;
	}
	if (len > 0 &&
		CRYPTO_gcm128_decrypt_ctr32(gc->gcm, in, out, len, gcm_stream) != 0)
		return false;
	*match = CRYPTO_gcm128_finish(gc->gcm, tag, ARMDB_CIPHER_TAG_LEN) == 0;
	return true;
}

bool
armdb_cipher_seal(const uint8 *key, uint64 gsn, uint8 purpose,
				  const void *aad, size_t aad_len, const void *in, size_t len,
				  void *out, ArmdbError *err)
{
	GcmContext *gc = &seal_ctx;
	uint8		nonce[12];
	bool		ok;

	make_nonce(nonce, gsn, purpose);
	ok = len <= INT_MAX && aad_len <= INT_MAX &&
		gcm_begin(gc, key, nonce, len);
	if (ok && use_ghash())
	{
		gcm_counter_mode(gc, nonce, in, out, len);
		gcm_tag(gc, aad, aad_len, out, len, (uint8 *) out + len);
	}
	else if (ok)
		ok = gcm_portable(gc, nonce, aad, aad_len, in, len, out, NULL, NULL);
	if (!gcm_end(gc) || !ok)
	{
		/* out may hold plaintext (a failed AES call's zero keystream) */
		if (len <= INT_MAX)
			memset(out, 0, len + ARMDB_CIPHER_TAG_LEN);
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not encrypt %zu bytes", len);
	}
	return true;
}

bool
armdb_cipher_open(const uint8 *key, uint64 gsn, uint8 purpose,
				  const void *aad, size_t aad_len, const void *in, size_t len,
				  void *out, ArmdbError *err)
{
	GcmContext *gc = &open_ctx;
	uint8		nonce[12];
	uint8		tag[ARMDB_CIPHER_TAG_LEN];
	bool		match = false;
	bool		ok;

	armdb_error_clear(err);
	if (len > INT_MAX || aad_len > INT_MAX)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not decrypt %zu bytes", len);
	make_nonce(nonce, gsn, purpose);
	/* the tag first: out may be in, and then overwrites it */
	memcpy(tag, (const uint8 *) in + len, sizeof(tag));
	ok = gcm_begin(gc, key, nonce, len);
	if (ok && use_ghash())
	{
		uint8		expected[ARMDB_CIPHER_TAG_LEN];

		/* nothing is decrypted before it is authenticated */
		gcm_tag(gc, aad, aad_len, in, len, expected);
		match = armdb_cipher_equal(expected, tag, sizeof(tag));
		if (match)
			gcm_counter_mode(gc, nonce, in, out, len);
	}
	else if (ok)
		ok = gcm_portable(gc, nonce, aad, aad_len, in, len, out, tag, &match);
	if (!gcm_end(gc) || !ok)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "could not decrypt %zu bytes", len);
	return match;
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
