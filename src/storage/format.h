/*-------------------------------------------------------------------------
 *
 * format.h
 *	  The one place that knows armdb's on-disk formats and file names.
 *
 * A shard directory holds numbered files:
 *
 *	 NNNNNN.data	append-only data file: a file header, then entries
 *	 NNNNNN.hint	summary of an immutable data file (every entry's header
 *					and location, no values), written for fast start-up
 *	 NNNNNN.tmp		a file being written (hint, merge output or manifest); a
 *					.tmp file never holds the only copy of anything and is
 *					removed by recovery
 *	 NNNNNN.merge	the manifest of a committed merge, until the merge is
 *					finished (merge.h)
 *
 * Data file layout (all integers little-endian as the machine writes them;
 * armdb files are not portable between architectures, like PostgreSQL's):
 *
 *	 offset 0:	ArmdbFileHeader (64 bytes, CRC-protected)
 *	 offset 64: entries, packed, each an ArmdbEntryHeader followed by
 *				value_len bytes of value
 *
 * Data files are written in whole ARMDB_BLOCK_SIZE blocks (O_DIRECT), so the
 * bytes after the last entry are zero padding until the next append
 * overwrites them.  An all-zero entry header therefore marks a clean end;
 * anything else that fails the checks is a torn or corrupted entry.
 *
 * Entry offsets are 32-bit (design §2), so a data file never exceeds 4 GB.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_FORMAT_H
#define ARMDB_STORAGE_FORMAT_H

#include "storage/status.h"

/* I/O unit: O_DIRECT alignment of buffers, offsets and lengths */
#define ARMDB_BLOCK_SIZE		4096

#define ARMDB_FORMAT_VERSION	1

/* block-aligned offsets at or below / at or above x */
#define ARMDB_BLOCK_FLOOR(x)	((uint64) (x) & ~((uint64) ARMDB_BLOCK_SIZE - 1))
#define ARMDB_BLOCK_CEIL(x)		ARMDB_BLOCK_FLOOR((uint64) (x) + ARMDB_BLOCK_SIZE - 1)

/* Are all len bytes at buf zero (padding)? */
extern bool armdb_all_zero(const char *buf, size_t len);

/* ----------------
 * Data file header
 * ----------------
 */
#define ARMDB_DATA_MAGIC		0x41444d52	/* "RMDA" */
#define ARMDB_FILE_HEADER_SIZE	64

typedef struct ArmdbFileHeader
{
	uint32		crc;			/* CRC32C of bytes [4, 64) */
	uint32		magic;			/* ARMDB_DATA_MAGIC */
	uint16		version;		/* ARMDB_FORMAT_VERSION */
	uint16		flags;			/* ARMDB_FILE_FLAG_* */
	uint32		file_id;		/* must match the file name */
	uint32		shard;			/* shard number the file belongs to */
	/* with ARMDB_FILE_FLAG_ENCRYPTED, what the file's key is made of */
	uint32		key_id;			/* the master key's id (cipher.h) */
	uint8		salt[32];		/* ARMDB_CIPHER_SALT_LEN random bytes */
	uint8		reserved[8];	/* zero */
} ArmdbFileHeader;

StaticAssertDecl(sizeof(ArmdbFileHeader) == ARMDB_FILE_HEADER_SIZE,
				 "file header size");

/* ----------------
 * Entries
 * ----------------
 *
 * An entry is a version of a row (its tuple image is the value), a
 * tombstone (no value; the row slot was deleted by xid), a slot
 * reservation or a row lock (below).  The gsn orders the
 * entries of a relation; its top byte carries flags.
 */
#define ARMDB_ENTRY_HEADER_SIZE 48
/*
 * The header of an entry whose chain fields say nothing (root_slot is its
 * own slot, prev_slot none: a row's first version, a reservation, a
 * tombstone) leaves them out: 32 bytes, gsn flag SHORT_HEADER.
 */
#define ARMDB_ENTRY_SHORT_HEADER_SIZE 32
/* crc, value_len and gsn: enough to know an entry's length */
#define ARMDB_ENTRY_PREFIX_SIZE	16

#define ARMDB_GSN_FLAG_TOMBSTONE	(UINT64CONST(1) << 63)
/*
 * A slot reservation: no value; the shard's run of pages (keydir.h), from
 * root_slot (the run's first slot) to slot (its last).  The pages belong to
 * the shard, and recovery never hands out their slots again, even if
 * nothing of them reached the files (an index entry may still point at
 * one).  Written before runs existed, root_slot is slot: slots of the shard
 * up to slot, its pages numbered p % nshards.
 */
#define ARMDB_GSN_FLAG_RESERVE		(UINT64CONST(1) << 62)
/*
 * A row lock: no value; slot names the locked row's version, root_slot
 * holds the xmax it had (a TransactionId or MultiXactId, 32 bits) and
 * prev_slot its infomask bits (ARMDB_LOCK_* below).  Row locks live in
 * version records in shared memory; a transaction that PREPAREs writes one
 * lock entry for each version whose xmax names it, so that its row locks
 * survive a restart as heap's survive in tuple headers (armdb_xact.c).  xid
 * is the transaction whose running keeps the entry meaningful: the
 * preparing one, or a locker an UPDATE carried over to its new version.
 * Like a tombstone, it goes to the writing backend's shard.
 */
#define ARMDB_GSN_FLAG_LOCK			(UINT64CONST(1) << 59)
#define ARMDB_GSN_ENTRY_FLAGS		(ARMDB_GSN_FLAG_TOMBSTONE | ARMDB_GSN_FLAG_RESERVE | \
									 ARMDB_GSN_FLAG_LOCK)
/*
 * A version whose value is a heap tuple image without its first
 * ARMDB_TUPLE_SHORTENED bytes (t_xmin, t_xmax, t_cid and t_ctid: the version
 * record holds them, and a reader overwrites them anyway), 18 bytes less
 * per row on disk.  The storage layer carries the flag, merges keep it;
 * only the access method reads the value (armdb_entry_tuple()).  Entries
 * without it, written before it existed, hold the whole image.
 */
#define ARMDB_GSN_FLAG_SHORT_TUPLE	(UINT64CONST(1) << 58)
#define ARMDB_TUPLE_SHORTENED		18
/* bytes of the tuple image that the value of an entry with gsn leaves out */
#define ARMDB_TUPLE_OMITTED(gsn) \
	(((gsn) & ARMDB_GSN_FLAG_SHORT_TUPLE) ? ARMDB_TUPLE_SHORTENED : 0)
/* a 32-byte header (ARMDB_ENTRY_SHORT_HEADER_SIZE); armdb_entry_seal() sets it */
#define ARMDB_GSN_FLAG_SHORT_HEADER	(UINT64CONST(1) << 57)
/*
 * An entry sealed under the key of the file it is in (cipher.h): a
 * version's value is ciphertext then a 16-byte tag, and an entry without a
 * value (tombstone, reservation, row lock) has the tag alone as its value;
 * either way the header is authenticated with it.  Files of earlier builds
 * (no ARMDB_FILE_FLAG_AUTHENTICATED) seal only versions.
 */
#define ARMDB_GSN_FLAG_ENCRYPTED	(UINT64CONST(1) << 56)
#define ARMDB_ENCRYPTED_TAG_LEN		16	/* ARMDB_CIPHER_TAG_LEN */
/* the flags an entry in a data file may carry */
#define ARMDB_GSN_DATA_FLAGS		(ARMDB_GSN_ENTRY_FLAGS | ARMDB_GSN_FLAG_SHORT_TUPLE | \
									 ARMDB_GSN_FLAG_SHORT_HEADER | \
									 ARMDB_GSN_FLAG_ENCRYPTED)

/* a lock entry's prev_slot: the xmax's infomask bits, and KEYS_UPDATED */
#define ARMDB_LOCK_INFOMASK_MASK	UINT64CONST(0xFFFF)
#define ARMDB_LOCK_KEYS_UPDATED		(UINT64CONST(1) << 16)

/*
 * In hint records only: the entry's transaction is known to have committed
 * (FROZEN) or not (ABORTED).  Once a hint records the fate of every xid in
 * its file, recovery needs no clog for that file, and relfrozenxid may pass
 * those xids (design §4: entries are frozen when their fate is on disk).
 */
#define ARMDB_GSN_FLAG_FROZEN		(UINT64CONST(1) << 61)
#define ARMDB_GSN_FLAG_ABORTED		(UINT64CONST(1) << 60)
#define ARMDB_GSN_HINT_FLAGS		(ARMDB_GSN_DATA_FLAGS | \
									 ARMDB_GSN_FLAG_FROZEN | \
									 ARMDB_GSN_FLAG_ABORTED)
#define ARMDB_GSN_FLAG_MASK			UINT64CONST(0xFF00000000000000)
#define ARMDB_GSN_MAX				(~ARMDB_GSN_FLAG_MASK)

/* Largest value: PostgreSQL's MaxAllocSize minus the header. */
#define ARMDB_MAX_VALUE_LEN		((uint32) (0x3fffffff - ARMDB_ENTRY_HEADER_SIZE))

/* Offsets within a data file are 32-bit. */
#define ARMDB_MAX_FILE_SIZE		UINT64CONST(0xFFFFFFFF)

/* "no slot" for root_slot/prev_slot */
#define ARMDB_INVALID_SLOT		UINT64CONST(0xFFFFFFFFFFFFFFFF)

typedef struct ArmdbEntryHeader
{
	uint32		crc;			/* CRC32C of header bytes [4, 48 or 32) +
								 * value */
	uint32		value_len;		/* bytes of value following the header */
	uint64		gsn;			/* sequence number | ARMDB_GSN_FLAG_* */
	uint64		xid;			/* FullTransactionId of the writer/deleter */
	uint64		slot;			/* this version's row slot (the key) */
	/* a short header ends here: slot and invalid are implied below */
	uint64		root_slot;		/* first slot of the update chain */
	uint64		prev_slot;		/* version this one replaces, or invalid */
} ArmdbEntryHeader;

StaticAssertDecl(sizeof(ArmdbEntryHeader) == ARMDB_ENTRY_HEADER_SIZE,
				 "entry header size");

/*
 * What a scan (of a data file or a hint file) knows of one entry: its header
 * fields and its location.  len is the whole entry, header included.
 */
typedef struct ArmdbEntryInfo
{
	uint64		gsn;			/* with flags */
	uint64		xid;
	uint64		slot;
	uint64		root_slot;
	uint64		prev_slot;
	uint32		file_id;
	uint32		offset;
	uint32		len;
} ArmdbEntryInfo;

static inline bool
armdb_gsn_is_tombstone(uint64 gsn)
{
	return (gsn & ARMDB_GSN_FLAG_TOMBSTONE) != 0;
}

static inline bool
armdb_gsn_is_reservation(uint64 gsn)
{
	return (gsn & ARMDB_GSN_FLAG_RESERVE) != 0;
}

static inline bool
armdb_gsn_is_lock(uint64 gsn)
{
	return (gsn & ARMDB_GSN_FLAG_LOCK) != 0;
}

/* A row version (its value is the tuple image), not a flagged entry? */
static inline bool
armdb_gsn_is_version(uint64 gsn)
{
	return (gsn & ARMDB_GSN_ENTRY_FLAGS) == 0;
}

/*
 * May an entry in a data file carry these flags?  Known ones, one kind at
 * most, a shortened tuple image only in a version, a short header never in
 * a lock entry (its chain fields hold the xmax).  Any kind may be sealed.
 */
static inline bool
armdb_gsn_flags_valid(uint64 gsn)
{
	uint64		kind = gsn & ARMDB_GSN_ENTRY_FLAGS;

	return (gsn & ARMDB_GSN_FLAG_MASK & ~ARMDB_GSN_DATA_FLAGS) == 0 &&
		(kind & (kind - 1)) == 0 &&
		(!(gsn & ARMDB_GSN_FLAG_SHORT_TUPLE) || kind == 0) &&
		(!(gsn & ARMDB_GSN_FLAG_SHORT_HEADER) || !(kind & ARMDB_GSN_FLAG_LOCK));
}

/* Bytes of the header of an entry with this gsn in a file. */
static inline uint32
armdb_entry_header_size(uint64 gsn)
{
	return (gsn & ARMDB_GSN_FLAG_SHORT_HEADER) ?
		ARMDB_ENTRY_SHORT_HEADER_SIZE : ARMDB_ENTRY_HEADER_SIZE;
}

static inline uint64
armdb_entry_size(uint64 gsn, uint32 value_len)
{
	return (uint64) armdb_entry_header_size(gsn) + value_len;
}

typedef enum ArmdbParseResult
{
	ARMDB_PARSE_OK,				/* a complete entry with a good CRC */
	ARMDB_PARSE_SHORT,			/* header or value extends past the buffer */
	ARMDB_PARSE_ZERO,			/* all-zero header: padding, clean end */
	ARMDB_PARSE_BAD				/* CRC mismatch or impossible length */
} ArmdbParseResult;

/*
 * Choose the header's length (ARMDB_GSN_FLAG_SHORT_HEADER when its chain
 * fields are implied) and fill its crc from the fields and value.  The
 * first armdb_entry_header_size() bytes of *hdr are then its file image.
 */
extern void armdb_entry_seal(ArmdbEntryHeader *hdr, const void *value);
/* The CRC of the header (its first armdb_entry_header_size() bytes) and
 * the value_len bytes of value. */
extern uint32 armdb_entry_crc(const ArmdbEntryHeader *hdr, const void *value);
/* Only its first step: the gsn's SHORT_HEADER flag, the header's length. */
extern void armdb_entry_choose_header(ArmdbEntryHeader *hdr);

/*
 * Copy the header at buf (avail bytes readable) into *hdr, the fields a
 * short header leaves out included; false if avail ends inside it (with
 * avail >= ARMDB_ENTRY_PREFIX_SIZE, value_len and gsn are copied anyway).
 */
extern bool armdb_entry_header_copy(const char *buf, size_t avail,
									ArmdbEntryHeader *hdr);

/*
 * Check the entry that starts at buf (avail bytes readable).  On OK, *hdr is
 * a copy of its header and the value is at buf +
 * armdb_entry_header_size(hdr->gsn).  On SHORT with at least
 * ARMDB_ENTRY_PREFIX_SIZE bytes, hdr->value_len and hdr->gsn are filled so
 * that the caller knows how many bytes to read (armdb_entry_size()).
 */
extern ArmdbParseResult armdb_entry_parse(const char *buf, size_t avail,
										  ArmdbEntryHeader *hdr);

/*
 * The file is a merge output (merge.h): immutable from its creation, never
 * the shard's active file although its number may be the highest.
 */
#define ARMDB_FILE_FLAG_MERGED	0x0001
/*
 * The file may hold short headers and shortened tuple images (gsn flags
 * SHORT_HEADER, SHORT_TUPLE).  Every file this build writes says so, and a
 * build from before them refuses the file ("uses unsupported features")
 * instead of reading its entries as damage.
 */
#define ARMDB_FILE_FLAG_SHORT_ENTRIES 0x0002
/*
 * The file's versions are encrypted under the key its header's key_id and
 * salt make (cipher.h).
 */
#define ARMDB_FILE_FLAG_ENCRYPTED	0x0004
/*
 * With ENCRYPTED: every entry of the file is sealed, those without a value
 * too, and its hint file carries a MAC (cipher.h), so that nothing a load
 * reads of it -- entry headers, hint records -- is taken without being
 * authenticated.  The flag is part of the file key's derivation: a file
 * whose flag was cleared to pass for an earlier build's has another key,
 * and none of its entries authenticates.  Every encrypted file this build
 * writes has it; compaction re-encrypts those that do not.
 */
#define ARMDB_FILE_FLAG_AUTHENTICATED 0x0008
#define ARMDB_FILE_FLAGS_KNOWN	(ARMDB_FILE_FLAG_MERGED | ARMDB_FILE_FLAG_SHORT_ENTRIES | \
								 ARMDB_FILE_FLAG_ENCRYPTED | \
								 ARMDB_FILE_FLAG_AUTHENTICATED)

extern void armdb_file_header_init_flags(ArmdbFileHeader *fh, uint32 file_id,
										 uint32 shard, uint16 flags);
extern void armdb_file_header_init(ArmdbFileHeader *fh, uint32 file_id,
								   uint32 shard);
/*
 * Make fh an encrypted file's header: the flags (ENCRYPTED, and
 * AUTHENTICATED if authenticated: every file this build starts is), key
 * id, salt and CRC.
 */
extern void armdb_file_header_set_key(ArmdbFileHeader *fh, uint32 key_id,
									  const uint8 *salt, bool authenticated);
extern bool armdb_file_header_check(const char *buf, size_t avail,
									uint32 file_id, ArmdbError *err);

/* ----------------
 * Hint files
 * ----------------
 *
 *	 ArmdbHintHeader, nrecords x ArmdbHintRecord, ArmdbHintTrailer
 *
 * The trailer's CRC covers everything before it; a hint file is written to
 * .tmp, fsynced and renamed, so a torn one means corruption, and recovery
 * then scans the data file instead.
 *
 * The hint of an authenticated data file (ARMDB_FILE_FLAG_AUTHENTICATED)
 * has flag ARMDB_HINT_FLAG_MAC and a MAC between its records and its
 * trailer: HMAC-SHA256 of the header and records under a key derived from
 * the data file's (cipher.h).  A hint is rewritten in place of an older one
 * (freezing adds fates), which is why it is a MAC and not a GCM tag: no
 * nonce to keep unique.
 */
#define ARMDB_HINT_FLAG_MAC		0x0001
#define ARMDB_HINT_MAC_LEN		32
#define ARMDB_HINT_MAGIC		0x48444d52	/* "RMDH" */

typedef struct ArmdbHintHeader
{
	uint32		magic;
	uint16		version;
	uint16		flags;			/* ARMDB_HINT_FLAG_* */
	uint32		file_id;		/* data file this hint describes */
	uint32		nrecords;
	uint64		data_end;		/* data file length the hint covers */
	uint64		reserved;
} ArmdbHintHeader;

typedef struct ArmdbHintRecord
{
	uint64		gsn;
	uint64		xid;
	uint64		slot;
	uint64		root_slot;
	uint64		prev_slot;
	uint32		offset;
	uint32		len;
} ArmdbHintRecord;

typedef struct ArmdbHintTrailer
{
	uint32		crc;			/* CRC32C of header and records */
	uint32		magic;			/* ARMDB_HINT_MAGIC again */
} ArmdbHintTrailer;

StaticAssertDecl(sizeof(ArmdbHintHeader) == 32, "hint header size");
StaticAssertDecl(sizeof(ArmdbHintRecord) == 48, "hint record size");
StaticAssertDecl(sizeof(ArmdbHintTrailer) == 8, "hint trailer size");

extern void armdb_hint_record_from_info(ArmdbHintRecord *rec,
										const ArmdbEntryInfo *info);

/*
 * Validate a whole hint file image; on success call cb for each record.
 * data_size is the current length of the data file: a hint that claims more
 * than the file holds is rejected.  With mac_key (the hint key of an
 * authenticated data file, cipher.h), a hint without a matching MAC is
 * rejected too; without, a MAC present is not checked.
 */
typedef bool (*ArmdbEntryCallback) (void *arg, const ArmdbEntryInfo *entry,
									ArmdbError *err);

extern bool armdb_hint_parse(const char *buf, size_t len, uint32 file_id,
							 uint64 data_size, const uint8 *mac_key,
							 ArmdbEntryCallback cb, void *arg,
							 ArmdbError *err);

/* ----------------
 * File names
 * ----------------
 */
typedef enum ArmdbFileKind
{
	ARMDB_FILE_DATA,
	ARMDB_FILE_HINT,
	ARMDB_FILE_TMP,
	ARMDB_FILE_MERGE			/* a committed merge's manifest (merge.h) */
} ArmdbFileKind;

/*
 * Names have at least six digits (more once past 999999: merges use up
 * numbers, since a file number is never reused).
 */
#define ARMDB_MAX_FILE_ID		((uint32) 0xFFFFFFF0)

/* "<dir>/NNNNNN.<ext>" into path (MAXPGPATH bytes) */
extern void armdb_file_path(char *path, const char *dir, uint32 file_id,
							ArmdbFileKind kind);

/*
 * Recognise a directory entry name; returns false for names that are not
 * armdb files.
 */
extern bool armdb_file_name_parse(const char *name, uint32 *file_id,
								  ArmdbFileKind *kind);

#endif							/* ARMDB_STORAGE_FORMAT_H */
