/*-------------------------------------------------------------------------
 *
 * cipher.h
 *	  Encryption at rest: AES-256-GCM of entry values (OpenSSL EVP), the keys
 *	  it uses, and how each data file gets a key of its own.
 *
 * Granularity.  Each version entry's value is encrypted on its own, before
 * it is written anywhere: the bytes that reach the WAL record, the shared
 * write buffer and the data file are the same ciphertext.  The value
 * becomes ciphertext || 16-byte tag (value_len counts the tag), the gsn
 * carries ARMDB_GSN_FLAG_ENCRYPTED, and the entry's header -- which
 * recovery, hint files and the keydir read without a key -- stays readable
 * but is the cipher's additional authenticated data: a changed header byte
 * fails the tag as a changed value byte does.  Entries without a value
 * (tombstones, reservations, row locks) are sealed too, with nothing to
 * encrypt: their value is the tag alone (in files with
 * ARMDB_FILE_FLAG_AUTHENTICATED; earlier builds left them CRC-protected).
 *
 * What a load trusts.  A load reads entry headers without their values, so
 * a header forged with a good CRC -- a committed version's xid made an
 * aborted one's, a tombstone added -- would hide rows without ever failing
 * a tag.  So everything a load takes from an authenticated file is
 * authenticated first: a scan of the data file opens every entry it
 * reports (ArmdbFileAuth, recovery.h), a hint file carries an HMAC-SHA256
 * of its records under a key derived from its data file's, and keydir
 * images (which carry no MAC) are neither written nor read for encrypted
 * tables.  Only WAL replay takes entries unchecked: the WAL itself has
 * CRCs, not MACs, in PostgreSQL.
 *
 * Keys.  The server reads one or more 256-bit master keys at start
 * (armdb.encryption_key_command); the first encrypts new files, the others
 * stay readable.  A key is known by its id, the first four bytes of a
 * SHA-256 of it, which file headers carry: a file written under a key the
 * server was not given is refused by name, never decrypted into garbage.
 *
 * Nonces.  No master key encrypts anything: each encrypted data file has a
 * key of its own, derived (HKDF-SHA256) from a master key, a 32-byte random
 * salt in the file's header, the shard, the file number and the storage id
 * of the relation (16 random bytes drawn when its storage is created, kept
 * in its meta file and CREATE record, carried by copies of the storage):
 * a data file authenticates only in the relation it was written for, not
 * when copied into another table's directory.  (Storage made before the
 * id existed has none, all zeros, and its files' keys leave it out.)
 * Under a file key the 96-bit nonce is the entry's gsn and a purpose byte.
 * A gsn is unique within a relation for as long as a server runs, and a
 * file takes appends only from the server life that created it (shard.c
 * rotates away from any other file before its first encrypted append: one
 * found at start-up, after a crash, a promotion, PITR or a restored
 * backup), so no
 * two different plaintexts ever meet the same key and nonce, even where a
 * crash cut entries whose gsns are handed out again, or two servers grow
 * from one backup.  A merge re-encrypts what it keeps under its outputs'
 * keys (a fresh salt per merge, logged in its WAL record, so that a
 * standby's replay writes the same bytes); a WAL record for logical
 * decoding uses the key of the entry it describes with another purpose
 * byte.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_CIPHER_H
#define ARMDB_STORAGE_CIPHER_H

#include "storage/status.h"

#define ARMDB_CIPHER_KEY_LEN	32	/* AES-256 */
#define ARMDB_CIPHER_SALT_LEN	32
#define ARMDB_CIPHER_TAG_LEN	16	/* ARMDB_ENCRYPTED_TAG_LEN */
#define ARMDB_CIPHER_MAX_KEYS	16
#define ARMDB_CIPHER_STORAGE_ID_LEN	16	/* a relation's storage id */

/* what a nonce's purpose byte says the plaintext is */
#define ARMDB_CIPHER_ENTRY			0	/* an entry's value */
#define ARMDB_CIPHER_LOGICAL_NEW	1	/* a decoding record's new tuple */
#define ARMDB_CIPHER_LOGICAL_OLD	2	/* ... its old tuple */

typedef struct ArmdbKeyring
{
	int			nkeys;			/* 0: no key; keys[0] encrypts new files */
	struct
	{
		uint32		id;
		uint8		key[ARMDB_CIPHER_KEY_LEN];
	}			keys[ARMDB_CIPHER_MAX_KEYS];
} ArmdbKeyring;

/* The process's keys: set once at start (armdb_crypt.c), read everywhere. */
extern PGDLLIMPORT ArmdbKeyring armdb_keyring;

/* The id of a master key (never 0: 0 means "not encrypted"). */
extern uint32 armdb_cipher_key_id(const uint8 *key);

/*
 * Parse the key command's output into ring: one key a line, 64 hex digits,
 * blank lines and lines starting with '#' ignored.  The message in err
 * never quotes the text.
 */
extern bool armdb_cipher_parse_keys(const char *text, ArmdbKeyring *ring,
									ArmdbError *err);

/* The master key of id, or NULL. */
extern const uint8 *armdb_cipher_find_key(const ArmdbKeyring *ring, uint32 id);

/* Fill salt with random bytes (OpenSSL's CSPRNG). */
extern bool armdb_cipher_random_salt(uint8 *salt, ArmdbError *err);

/*
 * The key of data file file_id of shard shard whose header names key_id
 * and salt, in the relation of storage_id (NULL or all zeros: storage made
 * before ids existed); authenticated: the header has
 * ARMDB_FILE_FLAG_AUTHENTICATED, which the derivation covers.  Fails with
 * ARMDB_ERR_KEY when the ring lacks key_id.
 */
extern bool armdb_cipher_file_key(const ArmdbKeyring *ring, uint32 key_id,
								  const uint8 *salt, uint32 shard,
								  uint32 file_id, const uint8 *storage_id,
								  bool authenticated, uint8 *key,
								  ArmdbError *err);

/*
 * What authenticating a relation's files takes: the keys, its storage id,
 * the shard its files must say they belong to (ARMDB_SHARD_ANY: any), and
 * whether the relation is encrypted (then every data file must be).
 * Storage functions that read files take one (NULL: nothing to check, a
 * server without keys reading a table that is not encrypted).  An
 * authenticated file is checked whatever the relation says it is: its
 * meta file is only CRC-protected, and one changed to call an encrypted
 * table plain must not turn the checks off.
 */
typedef struct ArmdbFileAuth
{
	const ArmdbKeyring *ring;
	const uint8 *storage_id;
	uint32		shard_no;
	bool		encrypted;
} ArmdbFileAuth;

/*
 * The key of the file whose header is fh (a checked one, encrypted), for
 * auth: its shard must be auth's.
 */
struct ArmdbFileHeader;
extern bool armdb_cipher_header_key(const ArmdbFileAuth *auth,
									const struct ArmdbFileHeader *fh,
									uint8 *key, ArmdbError *err);

/* The hint file key of a data file of key file_key (HKDF). */
extern bool armdb_cipher_hint_key(const uint8 *file_key, uint8 *hint_key,
								  ArmdbError *err);

/* HMAC-SHA256 of len bytes at buf under hint_key, into mac (32 bytes). */
extern bool armdb_cipher_hint_mac(const uint8 *hint_key, const void *buf,
								  size_t len, uint8 *mac, ArmdbError *err);

/* Are the n bytes at a and b the same?  In time independent of them. */
extern bool armdb_cipher_equal(const void *a, const void *b, size_t n);

/*
 * Hash through OpenSSL's GCM even where ghash.c could: the unit tests
 * check that both ways give EVP's bytes.
 */
extern bool armdb_cipher_portable;

/*
 * Encrypt len bytes at in to out (which may be in) and put the tag at
 * out + len; aad (aad_len bytes) is authenticated with them.
 */
extern bool armdb_cipher_seal(const uint8 *key, uint64 gsn, uint8 purpose,
							  const void *aad, size_t aad_len,
							  const void *in, size_t len, void *out,
							  ArmdbError *err);

/*
 * Decrypt len bytes at in (the tag follows them) to out (which may be in).
 * False without err set when the tag does not match (the caller names
 * the place); with err set when OpenSSL itself failed.
 */
extern bool armdb_cipher_open(const uint8 *key, uint64 gsn, uint8 purpose,
							  const void *aad, size_t aad_len,
							  const void *in, size_t len, void *out,
							  ArmdbError *err);

/*
 * An entry's value under a file key: the nonce is the entry's gsn, the
 * authenticated data its header past the CRC (the first bytes of *hdr,
 * armdb_entry_header_size() of them, are the header's file image).  The
 * plaintext is hdr->value_len less the tag.  _open_entry() is false
 * without err set when the tag does not match.
 */
struct ArmdbEntryHeader;
extern bool armdb_cipher_seal_entry(const uint8 *key,
									const struct ArmdbEntryHeader *hdr,
									const void *plain, void *out,
									ArmdbError *err);
extern bool armdb_cipher_open_entry(const uint8 *key,
									const struct ArmdbEntryHeader *hdr,
									const void *sealed, void *out,
									ArmdbError *err);

#endif							/* ARMDB_STORAGE_CIPHER_H */
