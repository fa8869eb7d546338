/*-------------------------------------------------------------------------
 *
 * armdb_wal.h
 *	  armdb's WAL resource manager: the records, and the calls that log them.
 *
 * The rmgr id is ARMDB_RMGR_ID, one of the ids PostgreSQL 15 leaves to
 * extensions (RM_MIN_CUSTOM_ID .. RM_MAX_CUSTOM_ID).  It is written into
 * every record, so it never changes; a server that replays armdb WAL needs
 * armdb in shared_preload_libraries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_WAL_H
#define ARMDB_WAL_H

#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "storage/buf.h"
#include "storage/relfilenode.h"
#include "utils/rel.h"

#include "storage/format.h"
#include "storage/shard.h"

#define ARMDB_RMGR_ID			193
#define ARMDB_RMGR_NAME			"armdb"

/* record kinds: the high four bits of xl_info */
#define XLOG_ARMDB_APPEND		0x00	/* entries appended to a data file */
#define XLOG_ARMDB_CREATE		0x10	/* a relation's storage created */
#define XLOG_ARMDB_DROP			0x20	/* a relation's storage removed */
#define XLOG_ARMDB_COPY			0x30	/* a relation's storage copied */
#define XLOG_ARMDB_COPY_DB		0x40	/* CREATE DATABASE: all of a template's */
#define XLOG_ARMDB_DROP_DB		0x50	/* DROP DATABASE: all of a database's */
#define XLOG_ARMDB_FREEZE		0x60	/* fates older than a cutoff into hints */
#define XLOG_ARMDB_MERGE_MOVES	0x70	/* a chunk of a merge's kept entries */
#define XLOG_ARMDB_MERGE		0x80	/* a merge of a shard's files */
#define XLOG_ARMDB_HINT			0x90	/* a sealed file's hint file written */
#define XLOG_ARMDB_PRUNE		0xA0	/* VACUUM removes dead versions */
#define XLOG_ARMDB_MERGE_DATA	0xB0	/* bytes of a merge's output file */
#define XLOG_ARMDB_VM_SET		0xC0	/* a virtual page is all-visible */
#define XLOG_ARMDB_VM_CLEAR		0xD0	/* ... no longer */
#define XLOG_ARMDB_LOGICAL		0xE0	/* a row change, for logical decoding */
#define XLOG_ARMDB_FILE			0xF0	/* a new data file's header */
#define XLOG_ARMDB_OPMASK		0xF0

/*
 * XLOG_ARMDB_APPEND: len bytes of entries (each a sealed header, CRC
 * included, then its value) that go at offset of data file file_id of a
 * permanent relation's shard.  A data file's first entry is at
 * ARMDB_FILE_HEADER_SIZE: replay creates the file, header included.
 */
typedef struct xl_armdb_append
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		file_id;
	uint32		offset;
	uint32		len;
	/* the entries follow */
} xl_armdb_append;

/*
 * XLOG_ARMDB_FILE: the header of a data file that is getting its first
 * entry, logged before that entry's APPEND.  Replay creates the file with
 * this header, which holds an encrypted file's key id and salt (cipher.h);
 * without the record (WAL from before it), replay makes an unencrypted
 * header.
 */
typedef struct xl_armdb_file
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		file_id;
	char		header[ARMDB_FILE_HEADER_SIZE];
} xl_armdb_file;

/*
 * XLOG_ARMDB_CREATE: storage of nshards shards for a permanent or unlogged
 * relation.  Without reset, replay creates it only where it is missing
 * (what is there is this relation's, with entries replay does not repeat:
 * those wal_level = minimal did not log); with reset (TRUNCATE in place)
 * it empties what is there.
 */
typedef struct xl_armdb_create
{
	Oid			spcNode;
	Oid			dbNode;
	Oid			relNode;
	uint32		nshards;
	char		persistence;
	bool		reset;
	bool		encrypted;		/* (in what was padding: false before) */
	char		pad;
	/* its files' keys need it (cipher.h); older records end before it */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
} xl_armdb_create;

/* XLOG_ARMDB_DROP: a relation's storage is removed */
typedef struct xl_armdb_drop
{
	Oid			dbNode;
	Oid			relNode;
} xl_armdb_drop;

/* XLOG_ARMDB_COPY: a relation's storage copied to a new relfilenode */
typedef struct xl_armdb_copy
{
	Oid			spcNode;		/* of the copy */
	Oid			dbNode;
	Oid			from_relNode;
	Oid			to_relNode;
	uint32		nshards;
	char		persistence;
} xl_armdb_copy;

/* XLOG_ARMDB_COPY_DB and XLOG_ARMDB_DROP_DB */
typedef struct xl_armdb_database
{
	Oid			src_db;			/* COPY_DB only */
	Oid			db;
} xl_armdb_database;

/*
 * XLOG_ARMDB_FREEZE: VACUUM recorded the fates of every transaction older
 * than cutoff in the relation's hint files and moves relfrozenxid up to
 * it; replay does the same to its own files (armdb_vstore_freeze_dir()).
 */
typedef struct xl_armdb_freeze
{
	Oid			dbNode;
	Oid			relNode;
	TransactionId cutoff;
} xl_armdb_freeze;

/*
 * A merge (compaction) is logged once its outputs are written and before
 * its commit point: XLOG_ARMDB_MERGE_MOVES records, numbered from 0, carry
 * the kept entries in the order the merge met them (inputs in order, then
 * offsets ascending), XLOG_ARMDB_MERGE_MAX_MOVES at a time; then
 * XLOG_ARMDB_MERGE_DATA records may carry the outputs' bytes (see below);
 * then XLOG_ARMDB_MERGE says which inputs and outputs.  With the inputs,
 * the moves are all a replay needs to write the same outputs byte for byte
 * (storage/merge.h): it asks the same keep question and gets the recorded
 * answer.  With the data, it needs no input.
 */
#define XLOG_ARMDB_MERGE_MAX_MOVES	65536

#define ARMDB_WAL_MOVE_TOMBSTONE	0x01	/* the kept entry is a tombstone:
										 * of a version, its ending only */
#define ARMDB_WAL_MOVE_FROZEN		0x02	/* its transaction committed */
#define ARMDB_WAL_MOVE_ABORTED		0x04	/* ... did not */

typedef struct xl_armdb_move
{
	uint32		offset;			/* in its input */
	uint8		input;			/* index into the merge's inputs */
	uint8		flags;			/* ARMDB_WAL_MOVE_* */
	uint16		pad;
} xl_armdb_move;

typedef struct xl_armdb_merge_moves
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		seq;			/* 0, 1, ... within the merge */
	uint32		nmoves;
	/* nmoves xl_armdb_move follow */
} xl_armdb_merge_moves;

/*
 * XLOG_ARMDB_MERGE_DATA: len bytes at offset of output file_id, from its
 * first byte (the file header) to its last entry, XLOG_ARMDB_MERGE_DATA_CHUNK
 * at a time, after the MERGE_MOVES records.  Logged, as heap logs full
 * pages, when PostgreSQL writes full pages (full_page_writes, or a base
 * backup running): a backup may copy the shard's directory after the merge
 * removed its inputs and before its outputs existed, and its replay then
 * writes the outputs from WAL instead of merging inputs it does not have.
 */
#define XLOG_ARMDB_MERGE_DATA_CHUNK	(512 * 1024)
typedef struct xl_armdb_merge_data
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		file_id;
	uint32		offset;
	uint32		len;
	/* len bytes follow */
} xl_armdb_merge_data;

typedef struct xl_armdb_merge
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		max_file_size;	/* outputs rotate before passing it */
	uint64		nmoves;			/* in all the MERGE_MOVES records */
	uint64		data_bytes;		/* in all the MERGE_DATA records; 0: none */
	TransactionId freeze_cutoff;	/* entries of older transactions may be
									 * recorded as frozen in the outputs'
									 * hint files: a hot standby's recovery
									 * conflict, as for FREEZE */
	uint32		nchunks;		/* how many MERGE_MOVES records */
	uint32		ninputs;
	uint32		inputs[4];		/* ARMDB_MERGE_MAX_INPUTS */
	uint32		noutputs;
	/*
	 * noutputs uint32 output file ids follow, then their uint64 sizes, then,
	 * if the outputs are encrypted, an xl_armdb_merge_key
	 */
} xl_armdb_merge;

/*
 * The outputs' encryption (ArmdbMerge), which replay repeats.  Records of
 * builds before authenticated files (storage/format.h) end at flags: their
 * replay writes outputs as those builds did.
 */
typedef struct xl_armdb_merge_key
{
	uint32		key_id;
	uint8		salt[32];
	uint32		flags;			/* XL_ARMDB_MERGE_AUTHENTICATED */
} xl_armdb_merge_key;

#define XL_ARMDB_MERGE_AUTHENTICATED	0x0001

/*
 * XLOG_ARMDB_PRUNE: VACUUM found these versions dead to every snapshot and
 * is about to remove their index entries and free their slots.  Nothing
 * changes in the files; a hot standby first resolves the recovery conflict
 * with snapshots that could still see them (latest_removed: the newest
 * transaction that ended one, as heap's prune records carry), then drops
 * them from its key directory.  At most XLOG_ARMDB_PRUNE_MAX_SLOTS a record.
 *
 * HOT pruning rides along (armdb_vacuum.c): a slot with ARMDB_PRUNE_REDIRECT
 * is a chain's root that now redirects to the slot in the next uint64 (the
 * pair never split between records), and the heap-only versions pruning
 * passed over are among the slots, freed on the primary right after the
 * record.  Redirects come first, as a standby's readers of a chain must
 * meet the redirect before the versions it passes over are gone.
 */
#define XLOG_ARMDB_PRUNE_MAX_SLOTS	8192
#define ARMDB_PRUNE_REDIRECT		(UINT64CONST(1) << 63)
typedef struct xl_armdb_prune
{
	Oid			dbNode;
	Oid			relNode;
	TransactionId latest_removed;
	uint32		nslots;
	/* nslots uint64 slots follow */
} xl_armdb_prune;

/*
 * XLOG_ARMDB_VM_SET: VACUUM found every version of virtual page blkno
 * visible to every snapshot and set its bit in the visibility map
 * (armdb_vm.c); the map's page is block 0, logged as heap's
 * XLOG_HEAP2_VISIBLE logs it (no hole: the map fills the page).  cutoff is
 * the newest xmin on the page: a hot standby first resolves the recovery
 * conflict with snapshots that may not see it.
 *
 * XLOG_ARMDB_VM_CLEAR: the first change to virtual page blkno since its
 * bit was set clears it (armdb_vm.c says what it comes before); replay
 * clears it too (heap's records carry this as a flag of their own).
 */
typedef struct xl_armdb_vm
{
	RelFileNode rnode;
	BlockNumber blkno;
	TransactionId cutoff;		/* VM_SET only */
	uint8		flags;			/* VISIBILITYMAP_* bits set (VM_SET) */
} xl_armdb_vm;

/*
 * XLOG_ARMDB_HINT: the hint file of a sealed data file was written; replay
 * builds its own from its copy of the file (a hint is derived data).
 */
typedef struct xl_armdb_hint
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
	uint32		file_id;
} xl_armdb_hint;

/*
 * XLOG_ARMDB_LOGICAL: what logical decoding needs of one row change of a
 * logically logged relation (wal_level = logical), written beside the
 * entries that make the change: redo ignores it, and armdb_decode()
 * (armdb_logical.c) turns it into a change for the reorder buffer.  The
 * new tuple (new_len bytes), then the old one (old_len: the replica
 * identity's key, or the whole row for REPLICA IDENTITY FULL) follow,
 * each as heap logs a tuple: an xl_heap_header, then the tuple's bytes
 * past its fixed header.  Written with its origin (XLOG_INCLUDE_ORIGIN).
 */
typedef struct xl_armdb_logical
{
	RelFileNode rnode;
	uint32		new_len;		/* 0: none */
	uint32		old_len;		/* 0: none */
	uint8		action;			/* ARMDB_LOGICAL_* */
	bool		encrypted;		/* see below (in what was padding) */
} xl_armdb_logical;

/*
 * An encrypted table's rows are never in WAL in plaintext: with encrypted,
 * an xl_armdb_logical_key follows the record's header, and each tuple (as
 * above) is AES-256-GCM ciphertext and a 16-byte tag, new_len and old_len
 * counting both; the header is authenticated with them.  The key is the
 * writing backend's own (cipher.h), derived from a master key and a salt
 * the backend drew at random when it first needed one; under it the nonce
 * is a counter the backend never repeats, and the tuple's purpose.  A
 * decoder derives the same key from the record.
 */
typedef struct xl_armdb_logical_key
{
	uint32		key_id;			/* the master key's id */
	uint8		salt[32];
	uint64		counter;
} xl_armdb_logical_key;

#define ARMDB_LOGICAL_INSERT		1
#define ARMDB_LOGICAL_UPDATE		2
#define ARMDB_LOGICAL_DELETE		3
#define ARMDB_LOGICAL_SPEC_INSERT	4	/* INSERT ... ON CONFLICT, until: */
#define ARMDB_LOGICAL_SPEC_CONFIRM	5	/* ... it went in */
#define ARMDB_LOGICAL_SPEC_ABORT	6	/* ... it did not */

struct ArmdbMerge;
struct LogicalDecodingContext;
struct XLogRecordBuffer;

/* _PG_init, from shared_preload_libraries */
extern void armdb_wal_init(void);

/*
 * Log an entry about to be appended at loc to a shard of a permanent
 * relation (hdr sealed, value as it goes into the file); returns the end of
 * the record, which must be flushed before the entry reaches the file (its
 * transaction id is in the record).
 */
extern XLogRecPtr armdb_wal_log_append(Oid dbNode, Oid relNode, uint32 shard,
									   const ArmdbLocation *loc,
									   const ArmdbEntryHeader *hdr,
									   const void *value);
/* Log len bytes of entries about to be appended at loc (loc->len) */
extern XLogRecPtr armdb_wal_log_entries(Oid dbNode, Oid relNode, uint32 shard,
										const ArmdbLocation *loc,
										const char *entries);
extern void armdb_wal_log_file(Oid dbNode, Oid relNode, uint32 shard,
							   uint32 file_id, const char *header);
extern void armdb_wal_log_create(const RelFileNode *rnode, uint32 nshards,
								 char persistence, bool reset, bool encrypted,
								 const uint8 *storage_id);

/*
 * Log the removal of a relation's storage, flushed: storage is removed
 * only once replay would remove it too (else a crash could bring back
 * storage of a relation that no longer exists, which nothing then removes).
 */
extern void armdb_wal_log_drop(const RelFileNode *rnode);
extern void armdb_wal_log_copy(const RelFileNode *from, const RelFileNode *to,
							   uint32 nshards, char persistence);
extern void armdb_wal_log_copy_database(Oid src_db, Oid dst_db);
extern void armdb_wal_log_drop_database(Oid db);
extern void armdb_wal_log_freeze(const RelFileNode *rnode,
								 TransactionId cutoff);

extern void armdb_wal_log_prune(const RelFileNode *rnode,
								TransactionId latest_removed,
								const uint64 *slots, uint64 nslots);

extern void armdb_wal_log_hint(Oid dbNode, Oid relNode, uint32 shard,
							   uint32 file_id);

/* Log a merge copied but not committed yet, and flush it. */
extern void armdb_wal_log_merge(const RelFileNode *rnode, uint32 shard,
								const struct ArmdbMerge *m,
								TransactionId freeze_cutoff);

/* the rmgr callbacks (exported for pg_waldump-style tools and tests) */
/*
 * Records of PostgreSQL's own buffers (the visibility map): only
 * PostgreSQL's replay applies them, from its redo point; armdb's replay of
 * its data files from their durable LSN (armdb_durable.c) skips them.
 */
static inline bool
armdb_wal_is_buffer_record(uint8 info)
{
	uint8		op = info & ~XLR_INFO_MASK & XLOG_ARMDB_OPMASK;

	return op == XLOG_ARMDB_VM_SET || op == XLOG_ARMDB_VM_CLEAR;
}

extern XLogRecPtr armdb_wal_log_vm(uint8 info, const xl_armdb_vm *xlrec,
								   Buffer vmbuf);

/* armdb_logical.c */
extern void armdb_wal_log_logical(Relation rel, uint8 action,
								  HeapTuple newtup, HeapTuple oldtup);
extern void armdb_decode(struct LogicalDecodingContext *ctx,
						 struct XLogRecordBuffer *buf);

extern void armdb_wal_redo(XLogReaderState *record);
extern void armdb_wal_desc(StringInfo buf, XLogReaderState *record);
extern const char *armdb_wal_identify(uint8 info);

#endif							/* ARMDB_WAL_H */
