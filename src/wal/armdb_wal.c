/*-------------------------------------------------------------------------
 *
 * armdb_wal.c
 *	  armdb's WAL resource manager (design §4b): what is logged, and how it
 *	  is replayed.
 *
 * What is logged.  Every entry appended to a permanent relation's data
 * files (versions, tombstones, slot reservations), as an XLOG_ARMDB_APPEND
 * record carrying the entry's bytes and its place (shard, file, offset),
 * inserted under the shard lock before the entry is copied into the shard's
 * write buffer; and every operation on a relation's storage directory
 * (create, TRUNCATE in place, drop, copy for SET TABLESPACE, CREATE and
 * DROP DATABASE).  The records carry the writer's transaction id, which is
 * how a transaction that writes only armdb tables gets its id into WAL
 * before any of its entries can reach a file (the shard's write barrier
 * flushes WAL up to the newest record first), and how its commit becomes a
 * synchronous one.
 *
 * Durability.  Once the armdb flusher holds its replication slot, a
 * commit makes its entries durable with its commit record alone
 * (armdb_durable.c): the data files are synced in the background, and a
 * recovery first replays armdb's records from the durable LSN the flusher
 * recorded (rm_startup), then PostgreSQL's replay goes on from the
 * checkpoint.  Before that, and for unlogged relations, commits sync their
 * entries before the commit record (design §4a).  A file in which replay
 * finds fewer bytes than a record's offset lost entries that no committed
 * transaction needed: from the durable LSN on, replay brings back every
 * entry in file order, and a file is synced up to the durable LSN.  The
 * record is skipped rather than leave a hole of zeros that the load would
 * call corruption.  Merges, sealed files' hint files and
 * freezing are logged too: replay redoes a merge from its own copies of the
 * inputs, builds its own hint files, and records VACUUM's fates in them
 * before relfrozenxid moves (so that a promoted standby never needs clog
 * the primary truncated).  On a hot standby, replay also keeps
 * current the key directories its sessions loaded (keydir.c, "Replay on a
 * hot standby"), under each keydir's lock, and resolves the recovery
 * conflicts heap's replay would: VACUUM's removals (XLOG_ARMDB_PRUNE) and
 * freezing by snapshot, a merge's removal of its inputs with every session
 * of the database that holds a snapshot.  A merge, once logged, is done: if its commit fails
 * the merging node PANICs, and replay redoes it (compact.c).
 *
 * Replay is idempotent: an entry already in its file byte for byte is left
 * alone, anything else at its place is overwritten (and the file cut after
 * it: what followed cannot be its successors), and every write is
 * fdatasynced before the next record (there is no checkpoint hook, so a
 * restartpoint could otherwise pass a write that is not durable).  A file
 * found complete may still hold its bytes in the page cache only (a crash
 * of PostgreSQL, not of the machine): it is synced the first time
 * (armdb_durable_sync_found_complete()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "storage/standby.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "am/armdb_vm.h"
#include "armdb.h"
#include "compact/compact.h"
#include "keydir/keydir.h"
#include "keydir/relstorage.h"
#include "storage/hint.h"
#include "storage/merge.h"
#include "storage/recovery.h"
#include "vstore/vstore.h"
#include "wal/armdb_durable.h"
#include "wal/armdb_wal.h"

static RmgrData armdb_rmgr = {
	.rm_name = ARMDB_RMGR_NAME,
	.rm_redo = armdb_wal_redo,
	.rm_desc = armdb_wal_desc,
	.rm_identify = armdb_wal_identify,
	.rm_startup = armdb_durable_redo_startup,
	.rm_cleanup = armdb_durable_redo_cleanup,
	.rm_mask = NULL,
	.rm_decode = armdb_decode
};

void
armdb_wal_init(void)
{
	RegisterCustomRmgr(ARMDB_RMGR_ID, &armdb_rmgr);
}

/* ----------------
 * Logging
 * ----------------
 */

/* Insert a record of one fixed-size struct; returns its end. */
static XLogRecPtr
insert_record(uint8 info, const void *rec, uint32 len)
{
	XLogBeginInsert();
	XLogRegisterData((char *) rec, len);
	return XLogInsert(ARMDB_RMGR_ID, info);
}

/*
 * Start an XLOG_ARMDB_APPEND record for len bytes at loc: xlrec (the
 * caller's, alive until XLogInsert) filled and registered; the caller
 * registers the entries.
 */
static void
begin_append(xl_armdb_append *xlrec, Oid dbNode, Oid relNode, uint32 shard,
			 const ArmdbLocation *loc)
{
	xlrec->dbNode = dbNode;
	xlrec->relNode = relNode;
	xlrec->shard = shard;
	xlrec->file_id = loc->file_id;
	xlrec->offset = loc->offset;
	xlrec->len = loc->len;
	XLogBeginInsert();
	XLogRegisterData((char *) xlrec, sizeof(*xlrec));
}

XLogRecPtr
armdb_wal_log_append(Oid dbNode, Oid relNode, uint32 shard,
					 const ArmdbLocation *loc, const ArmdbEntryHeader *hdr,
					 const void *value)
{
	xl_armdb_append xlrec;

	Assert(loc->len == armdb_entry_size(hdr->gsn, hdr->value_len));
	begin_append(&xlrec, dbNode, relNode, shard, loc);
	/* the entry's file image: a short header is the struct's first bytes */
	XLogRegisterData((char *) hdr, armdb_entry_header_size(hdr->gsn));
	if (hdr->value_len > 0)
		XLogRegisterData((char *) value, hdr->value_len);
	return XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_APPEND);
}

XLogRecPtr
armdb_wal_log_entries(Oid dbNode, Oid relNode, uint32 shard,
					  const ArmdbLocation *loc, const char *entries)
{
	xl_armdb_append xlrec;

	begin_append(&xlrec, dbNode, relNode, shard, loc);
	XLogRegisterData((char *) entries, loc->len);
	return XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_APPEND);
}

void
armdb_wal_log_file(Oid dbNode, Oid relNode, uint32 shard, uint32 file_id,
				   const char *header)
{
	xl_armdb_file xlrec;

	xlrec.dbNode = dbNode;
	xlrec.relNode = relNode;
	xlrec.shard = shard;
	xlrec.file_id = file_id;
	memcpy(xlrec.header, header, sizeof(xlrec.header));
	(void) insert_record(XLOG_ARMDB_FILE, &xlrec, sizeof(xlrec));
}

void
armdb_wal_log_create(const RelFileNode *rnode, uint32 nshards,
					 char persistence, bool reset, bool encrypted,
					 const uint8 *storage_id)
{
	xl_armdb_create xlrec;

	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.spcNode = rnode->spcNode;
	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	xlrec.nshards = nshards;
	xlrec.persistence = persistence;
	xlrec.reset = reset;
	xlrec.encrypted = encrypted;
	memcpy(xlrec.storage_id, storage_id, sizeof(xlrec.storage_id));
	(void) insert_record(XLOG_ARMDB_CREATE, &xlrec, sizeof(xlrec));
}

void
armdb_wal_log_drop(const RelFileNode *rnode)
{
	xl_armdb_drop xlrec;

	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	XLogFlush(insert_record(XLOG_ARMDB_DROP, &xlrec, sizeof(xlrec)));
}

void
armdb_wal_log_copy(const RelFileNode *from, const RelFileNode *to,
				   uint32 nshards, char persistence)
{
	xl_armdb_copy xlrec;

	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.spcNode = to->spcNode;
	xlrec.dbNode = to->dbNode;
	xlrec.from_relNode = from->relNode;
	xlrec.to_relNode = to->relNode;
	xlrec.nshards = nshards;
	xlrec.persistence = persistence;
	(void) insert_record(XLOG_ARMDB_COPY, &xlrec, sizeof(xlrec));
}

static void
log_database(uint8 info, Oid src_db, Oid db)
{
	xl_armdb_database xlrec;

	xlrec.src_db = src_db;
	xlrec.db = db;
	XLogFlush(insert_record(info, &xlrec, sizeof(xlrec)));
}

void
armdb_wal_log_copy_database(Oid src_db, Oid dst_db)
{
	log_database(XLOG_ARMDB_COPY_DB, src_db, dst_db);
}

void
armdb_wal_log_drop_database(Oid db)
{
	log_database(XLOG_ARMDB_DROP_DB, InvalidOid, db);
}

void
armdb_wal_log_freeze(const RelFileNode *rnode, TransactionId cutoff)
{
	xl_armdb_freeze xlrec;

	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	xlrec.cutoff = cutoff;
	(void) insert_record(XLOG_ARMDB_FREEZE, &xlrec, sizeof(xlrec));
}

void
armdb_wal_log_prune(const RelFileNode *rnode, TransactionId latest_removed,
					const uint64 *slots, uint64 nslots)
{
	for (uint64 done = 0; done < nslots;)
	{
		xl_armdb_prune xlrec;
		uint32		n = (uint32) Min(nslots - done, XLOG_ARMDB_PRUNE_MAX_SLOTS);

		/* a redirect's pair stays in one record */
		if (n > 1 && done + n < nslots &&
			(slots[done + n - 1] & ARMDB_PRUNE_REDIRECT))
			n--;

		xlrec.dbNode = rnode->dbNode;
		xlrec.relNode = rnode->relNode;
		xlrec.latest_removed = latest_removed;
		xlrec.nslots = n;
		XLogBeginInsert();
		XLogRegisterData((char *) &xlrec, sizeof(xlrec));
		XLogRegisterData((char *) (slots + done), sizeof(uint64) * n);
		(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_PRUNE);
		done += n;
	}
}

/*
 * XLOG_ARMDB_VM_SET (with the map's page, locked by the caller, which sets
 * its LSN) or XLOG_ARMDB_VM_CLEAR (vmbuf InvalidBuffer).
 */
XLogRecPtr
armdb_wal_log_vm(uint8 info, const xl_armdb_vm *xlrec, Buffer vmbuf)
{
	XLogBeginInsert();
	XLogRegisterData((char *) xlrec, sizeof(*xlrec));
	if (BufferIsValid(vmbuf))
		XLogRegisterBuffer(0, vmbuf, 0);
	return XLogInsert(ARMDB_RMGR_ID, info);
}

void
armdb_wal_log_hint(Oid dbNode, Oid relNode, uint32 shard, uint32 file_id)
{
	xl_armdb_hint xlrec;

	xlrec.dbNode = dbNode;
	xlrec.relNode = relNode;
	xlrec.shard = shard;
	xlrec.file_id = file_id;
	(void) insert_record(XLOG_ARMDB_HINT, &xlrec, sizeof(xlrec));
}

StaticAssertDecl(ARMDB_MERGE_MAX_INPUTS == lengthof(((xl_armdb_merge *) 0)->inputs),
				 "a merge record holds every input");

/*
 * The outputs' bytes (XLOG_ARMDB_MERGE_DATA), when PostgreSQL writes full
 * pages: read back from the .tmp files the copy wrote and synced.  Returns
 * how many bytes were logged (0: none).
 */
static uint64
log_merge_data(const RelFileNode *rnode, uint32 shard, const ArmdbMerge *m)
{
	XLogRecPtr	redo;
	bool		full_pages;
	char	   *buf;
	uint64		logged = 0;

	/* no base backup without wal_level replica */
	GetFullPageWriteInfo(&redo, &full_pages);
	if (!full_pages || m->noutputs == 0 || !XLogIsNeeded())
		return 0;
	buf = palloc(XLOG_ARMDB_MERGE_DATA_CHUNK);
	for (int i = 0; i < m->noutputs; i++)
	{
		char		path[MAXPGPATH];
		int			fd;

		armdb_file_path(path, m->dir, m->outputs[i], ARMDB_FILE_TMP);
		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb: could not open merge output \"%s\": %m", path)));
		for (uint64 off = 0; off < m->output_sizes[i];)
		{
			xl_armdb_merge_data chunk;
			uint32		n = (uint32) Min(m->output_sizes[i] - off,
										 XLOG_ARMDB_MERGE_DATA_CHUNK);
			ssize_t		got = pg_pread(fd, buf, n, (off_t) off);

			if (got != n)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("armdb: could not read %u bytes at offset %llu of merge output \"%s\": %m",
								n, (unsigned long long) off, path)));
			chunk.dbNode = rnode->dbNode;
			chunk.relNode = rnode->relNode;
			chunk.shard = shard;
			chunk.file_id = m->outputs[i];
			chunk.offset = (uint32) off;
			chunk.len = n;
			XLogBeginInsert();
			XLogRegisterData((char *) &chunk, sizeof(chunk));
			XLogRegisterData(buf, n);
			(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_MERGE_DATA);
			off += n;
			logged += n;
		}
		CloseTransientFile(fd);
	}
	pfree(buf);
	return logged;
}

void
armdb_wal_log_merge(const RelFileNode *rnode, uint32 shard,
					const ArmdbMerge *m, TransactionId freeze_cutoff)
{
	xl_armdb_merge xlrec;
	xl_armdb_merge_key key;
	xl_armdb_move *moves;
	uint32		nchunks = 0;

	moves = palloc(sizeof(xl_armdb_move) *
				   Min(Max(m->nmoves, 1), XLOG_ARMDB_MERGE_MAX_MOVES));
	for (uint64 from = 0; from < m->nmoves; from += XLOG_ARMDB_MERGE_MAX_MOVES)
	{
		xl_armdb_merge_moves chunk;
		uint32		n = (uint32) Min(m->nmoves - from, XLOG_ARMDB_MERGE_MAX_MOVES);

		for (uint32 i = 0; i < n; i++)
		{
			const ArmdbMergeMove *mv = &m->moves[from + i];
			int			input = 0;

			while (m->inputs[input] != mv->entry.file_id)
				input++;
			Assert(input < m->ninputs);
			moves[i].offset = mv->entry.offset;
			moves[i].input = (uint8) input;
			moves[i].flags =
				(armdb_gsn_is_tombstone(mv->entry.gsn) ? ARMDB_WAL_MOVE_TOMBSTONE : 0) |
				((mv->entry.gsn & ARMDB_GSN_FLAG_FROZEN) ? ARMDB_WAL_MOVE_FROZEN : 0) |
				((mv->entry.gsn & ARMDB_GSN_FLAG_ABORTED) ? ARMDB_WAL_MOVE_ABORTED : 0);
			moves[i].pad = 0;
		}
		chunk.dbNode = rnode->dbNode;
		chunk.relNode = rnode->relNode;
		chunk.shard = shard;
		chunk.seq = nchunks++;
		chunk.nmoves = n;
		XLogBeginInsert();
		XLogRegisterData((char *) &chunk, sizeof(chunk));
		XLogRegisterData((char *) moves, sizeof(xl_armdb_move) * n);
		(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_MERGE_MOVES);
		if (nchunks == 1 && from + n < m->nmoves)
			armdb_compact_fault_mid_log();
	}
	pfree(moves);

	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.data_bytes = log_merge_data(rnode, shard, m);
	xlrec.freeze_cutoff = freeze_cutoff;
	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	xlrec.shard = shard;
	xlrec.max_file_size = m->max_file_size;
	xlrec.nmoves = m->nmoves;
	xlrec.nchunks = nchunks;
	xlrec.ninputs = m->ninputs;
	for (int i = 0; i < m->ninputs; i++)
		xlrec.inputs[i] = m->inputs[i];
	xlrec.noutputs = m->noutputs;
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	if (m->noutputs > 0)
	{
		XLogRegisterData((char *) m->outputs, sizeof(uint32) * m->noutputs);
		XLogRegisterData((char *) m->output_sizes, sizeof(uint64) * m->noutputs);
	}
	if (m->key_id != 0)
	{
		key.key_id = m->key_id;
		memcpy(key.salt, m->salt, sizeof(key.salt));
		key.flags = m->authenticated ? XL_ARMDB_MERGE_AUTHENTICATED : 0;
		XLogRegisterData((char *) &key, sizeof(key));
	}
	XLogFlush(XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_MERGE));
}

/* ----------------
 * Replay
 * ----------------
 */

static RelFileNodeBackend
permanent_rnode(Oid spcNode, Oid dbNode, Oid relNode)
{
	RelFileNodeBackend rnode;

	rnode.node.spcNode = spcNode;
	rnode.node.dbNode = dbNode;
	rnode.node.relNode = relNode;
	rnode.backend = InvalidBackendId;
	return rnode;
}

/* pg_pwrite all of buf, or ERROR naming path */
static void
write_all(int fd, const char *path, const char *buf, size_t len, off_t at)
{
	while (len > 0)
	{
		ssize_t		n;

		errno = 0;
		n = pg_pwrite(fd, buf, len, at);
		if (n <= 0)
		{
			if (errno == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not write %zu bytes at offset %lld of \"%s\": %m",
							len, (long long) at, path)));
		}
		buf += n;
		len -= n;
		at += n;
	}
}

static void
sync_fd(int fd, const char *path)
{
	if (pg_fdatasync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not fdatasync \"%s\": %m", path)));
}

/* Is there a data file numbered file_id or above in shard_dir? */
static bool
newer_data_file_exists(const char *shard_dir, uint32 file_id)
{
	uint32	   *ids;
	int			n;
	uint32		max_id;
	ArmdbError	err;
	bool		found;

	if (!armdb_list_data_files(shard_dir, &ids, &n, &max_id, &err))
		armdb_report_storage_error(ERROR, &err);
	found = n > 0 && ids[n - 1] >= file_id;
	if (ids != NULL)
		pfree(ids);
	return found;
}

/*
 * Create data file file_id of a shard with its header, for the first entry
 * replay puts into it.  False if the file is not to be made:
 *	 - the relation's storage is gone (dropped later in WAL, or never
 *	   created because its creation was not logged);
 *	 - a data file numbered as high or higher exists.  A file is created
 *	   durably before its first entry, and files are numbered in creation
 *	   order, never reused: with a newer file present, this one was sealed,
 *	   and is missing because a merge removed it (whose record may lie
 *	   before the start of this replay).  It must not come back: its
 *	   entries are in the merge's outputs, and an ending a later merge
 *	   dropped because this file was gone would no longer end them.  (A
 *	   standby's base backup is the same: a file absent from the copy with
 *	   a newer one present was merged away before the copy.)
 */
static bool
create_data_file(const char *shard_dir, const char *rel_dir, uint32 shard,
				 uint32 file_id, const char *path, const char *header)
{
	struct stat st;
	char		block[ARMDB_FILE_HEADER_SIZE];
	ArmdbFileHeader fh;
	int			fd;

	if (stat(rel_dir, &st) != 0 || newer_data_file_exists(shard_dir, file_id))
		return false;
	if (MakePGDirectory(shard_dir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not create directory \"%s\": %m",
						shard_dir)));
	armdb_file_header_init(&fh, file_id, shard);
	memset(block, 0, sizeof(block));
	memcpy(block, header != NULL ? header : (const char *) &fh, sizeof(fh));
	fd = OpenTransientFile(path, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not create \"%s\": %m", path)));
	write_all(fd, path, block, sizeof(block), 0);
	sync_fd(fd, path);
	CloseTransientFile(fd);
	fsync_fname(shard_dir, true);
	fsync_fname(rel_dir, true);
	return true;
}

static bool
append_to_file(XLogReaderState *record)
{
	xl_armdb_append *xlrec = (xl_armdb_append *) XLogRecGetData(record);
	const char *entries = (const char *) (xlrec + 1);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	char		rel_dir[MAXPGPATH];
	char		shard_dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char	   *have;
	struct stat st;
	int			fd;
	ssize_t		n;

	if (XLogRecGetDataLen(record) != sizeof(*xlrec) + xlrec->len)
		elog(PANIC, "armdb redo: append record of %u bytes for %u bytes of entries",
			 XLogRecGetDataLen(record), xlrec->len);

	armdb_rel_dir_path(rel_dir, rnode);
	armdb_shard_dir_path(shard_dir, rnode, xlrec->shard);
	armdb_file_path(path, shard_dir, xlrec->file_id, ARMDB_FILE_DATA);

	fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
	{
		/* a new file; else one merged away or dropped later in WAL */
		if (xlrec->offset != ARMDB_FILE_HEADER_SIZE ||
			!create_data_file(shard_dir, rel_dir, xlrec->shard,
							  xlrec->file_id, path, NULL))
			return false;
		fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	}
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not open \"%s\": %m", path)));
	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not stat \"%s\": %m", path)));

	/*
	 * Entries lost before this one: after a crash of this node they were of
	 * no committed transaction (a commit syncs everything before its own
	 * entries, or replay from the durable LSN brought every earlier entry
	 * back).  From a base backup they may be of one, if the backup's
	 * checkpoint did not wait at the flusher's gate (armdb_durable.c): say
	 * so.
	 */
	if ((uint64) st.st_size < xlrec->offset)
	{
		if (ArchiveRecoveryRequested)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb redo: data file \"%s\" ends at %llu, before the entries logged for offset %u",
							path, (unsigned long long) st.st_size, xlrec->offset),
					 errdetail("The base backup this server was made from copied the file before entries logged earlier reached it; committed rows of the table may be missing."),
					 errhint("Take base backups while the armdb flusher holds its replication slot (armdb_wal_status() says \"wal\"), which makes every checkpoint wait until logged entries are in their files.")));
		CloseTransientFile(fd);
		return false;
	}

	/* already there, byte for byte? */
	have = palloc(xlrec->len);
	n = (uint64) st.st_size >= (uint64) xlrec->offset + xlrec->len ?
		pg_pread(fd, have, xlrec->len, xlrec->offset) : 0;
	if (n != xlrec->len || memcmp(have, entries, xlrec->len) != 0)
	{
		/*
		 * Zeros are entries that never reached the file (the zero-padded
		 * end of its last block).  Other bytes were written and then lost
		 * by a crash of the machine, or damaged: WAL repairs them, and says
		 * so, since damage must never pass silently.
		 */
		bool		zeros = true;

		for (ssize_t i = 0; i < n && zeros; i++)
			zeros = have[i] == 0;
		if (!zeros)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb redo: data file \"%s\" held other bytes than WAL's entries at offset %u; rewritten from WAL",
							path, xlrec->offset),
					 errdetail("The entries were written once and then lost by a crash of the machine, or the file was damaged.")));

		/*
		 * What follows in the file is not this record's successors (those
		 * would be preceded by this very entry, which is not there): bytes
		 * of an append that failed after it was logged, or a torn write.
		 * Cut them, so that a file sealed later ends in its last entry.
		 */
		write_all(fd, path, entries, xlrec->len, xlrec->offset);
		if ((uint64) st.st_size > (uint64) xlrec->offset + xlrec->len &&
			ftruncate(fd, (off_t) xlrec->offset + xlrec->len) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not truncate \"%s\": %m", path)));
		sync_fd(fd, path);
	}
	else
		armdb_durable_sync_found_complete(path);
	pfree(have);
	CloseTransientFile(fd);
	return true;
}

/*
 * A FILE: create the data file with the logged header, where it is missing
 * (else it was created before, with this header, or merged away since).
 */
static void
redo_file(XLogReaderState *record)
{
	xl_armdb_file *xlrec = (xl_armdb_file *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	char		rel_dir[MAXPGPATH];
	char		shard_dir[MAXPGPATH];
	char		path[MAXPGPATH];
	struct stat st;
	ArmdbError	err;

	if (XLogRecGetDataLen(record) != sizeof(*xlrec) ||
		!armdb_file_header_check(xlrec->header, sizeof(xlrec->header),
								 xlrec->file_id, &err))
		elog(PANIC, "armdb redo: damaged file record for data file %06u",
			 xlrec->file_id);
	armdb_rel_dir_path(rel_dir, rnode);
	armdb_shard_dir_path(shard_dir, rnode, xlrec->shard);
	armdb_file_path(path, shard_dir, xlrec->file_id, ARMDB_FILE_DATA);
	if (stat(path, &st) == 0)
	{
		char		have[ARMDB_FILE_HEADER_SIZE];
		int			fd = OpenTransientFile(path, O_RDWR | PG_BINARY);

		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not open \"%s\": %m", path)));
		/*
		 * A base backup may have copied the file between its creation and
		 * the write of its header: the logged header goes in.
		 */
		if (pg_pread(fd, have, sizeof(have), 0) != sizeof(have) ||
			!armdb_file_header_check(have, sizeof(have), xlrec->file_id, &err))
		{
			write_all(fd, path, xlrec->header, sizeof(xlrec->header), 0);
			sync_fd(fd, path);
		}
		CloseTransientFile(fd);
		return;
	}
	(void) create_data_file(shard_dir, rel_dir, xlrec->shard, xlrec->file_id,
							path, xlrec->header);
}

/*
 * An APPEND: the entries into their file, and into the keydir a hot
 * standby's reader loaded (unless the file is gone since: merged away or
 * dropped later in WAL, which replay will get to).
 */
static void
redo_append(XLogReaderState *record)
{
	xl_armdb_append *xlrec = (xl_armdb_append *) XLogRecGetData(record);
	ArmdbRelKeydir *kd;

	kd = armdb_keydir_redo_acquire(permanent_rnode(InvalidOid, xlrec->dbNode,
												   xlrec->relNode));
	if (append_to_file(record))
		armdb_keydir_redo_append(kd, xlrec->shard, xlrec->file_id,
								 xlrec->offset, (const char *) (xlrec + 1),
								 xlrec->len);
	armdb_keydir_redo_release(kd);
}

static void
redo_create(XLogReaderState *record)
{
	xl_armdb_create *xlrec = (xl_armdb_create *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(xlrec->spcNode, xlrec->dbNode,
											   xlrec->relNode);
	uint8		storage_id[ARMDB_STORAGE_ID_LEN];

	/* an older build's record ends before the storage id: none (zeros) */
	StaticAssertStmt(offsetof(xl_armdb_create, storage_id) == 20,
					 "older CREATE records are 20 bytes");
	memset(storage_id, 0, sizeof(storage_id));
	if (XLogRecGetDataLen(record) == sizeof(*xlrec))
		memcpy(storage_id, xlrec->storage_id, sizeof(storage_id));
	else if (XLogRecGetDataLen(record) != offsetof(xl_armdb_create, storage_id))
		elog(PANIC, "armdb redo: create record of %u bytes",
			 XLogRecGetDataLen(record));
	if (!xlrec->reset && armdb_rel_storage_exists(rnode))
		return;
	armdb_rel_storage_create(rnode, xlrec->nshards, xlrec->persistence,
							 xlrec->encrypted, storage_id);
	/* TRUNCATE in place: replay holds the table's AccessExclusiveLock */
	if (xlrec->reset)
		armdb_keydir_drop(rnode);
}

static void
redo_drop(XLogReaderState *record)
{
	xl_armdb_drop *xlrec = (xl_armdb_drop *) XLogRecGetData(record);

	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);

	/*
	 * No reader: the drop committed, and its invalidations keep new ones
	 * from opening the relation (an old relfilenode of a TRUNCATE or
	 * rewrite: replay held the AccessExclusiveLock until that commit).
	 */
	armdb_keydir_drop(rnode);
	armdb_rel_storage_remove(rnode, WARNING);
}

static void
redo_copy(XLogReaderState *record)
{
	xl_armdb_copy *xlrec = (xl_armdb_copy *) XLogRecGetData(record);
	RelFileNodeBackend from = permanent_rnode(InvalidOid, xlrec->dbNode,
											  xlrec->from_relNode);
	RelFileNodeBackend to = permanent_rnode(xlrec->spcNode, xlrec->dbNode,
											xlrec->to_relNode);

	/* the source was dropped later in WAL: so is the copy's source data */
	if (!armdb_rel_storage_exists(from))
		return;
	armdb_rel_storage_copy(from, to, xlrec->nshards, xlrec->persistence);
}

static void
redo_freeze(XLogReaderState *record)
{
	xl_armdb_freeze *xlrec = (xl_armdb_freeze *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	ArmdbRelKeydir *kd;
	uint32		nshards;

	/*
	 * As heap's freeze records: snapshots that may see a transaction below
	 * cutoff as running conflict (to them, frozen versions would appear).
	 */
	if (InHotStandby && TransactionIdIsNormal(xlrec->cutoff))
	{
		TransactionId latest_removed = xlrec->cutoff;

		TransactionIdRetreat(latest_removed);
		ResolveRecoveryConflictWithSnapshot(latest_removed, rnode.node);
	}
	kd = armdb_keydir_redo_acquire(rnode);
	if (armdb_rel_storage_exists(rnode))	/* else dropped later in WAL */
	{
		bool		encrypted;
		uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];

		nshards = armdb_rel_storage_read_meta(rnode, NULL, &encrypted,
											  storage_id);
		for (uint32 shard = 0; shard < nshards; shard++)
		{
			char		dir[MAXPGPATH];
			ArmdbFileAuth auth = {&armdb_keyring, storage_id, shard, encrypted};

			armdb_shard_dir_path(dir, rnode, shard);
			armdb_vstore_freeze_dir(dir, xlrec->cutoff,
									armdb_store_settings()->direct_io,
									encrypted || armdb_keyring.nkeys > 0 ?
									&auth : NULL);
		}
		armdb_keydir_redo_freeze(kd, xlrec->cutoff);
	}
	armdb_keydir_redo_release(kd);
}

static void
redo_prune(XLogReaderState *record)
{
	xl_armdb_prune *xlrec = (xl_armdb_prune *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	ArmdbRelKeydir *kd;

	if (XLogRecGetDataLen(record) != sizeof(*xlrec) + sizeof(uint64) * (uint64) xlrec->nslots)
		elog(PANIC, "armdb redo: prune record of %u bytes for %u slots",
			 XLogRecGetDataLen(record), xlrec->nslots);
	if (!InHotStandby)
		return;					/* nothing in the files changes */
	ResolveRecoveryConflictWithSnapshot(xlrec->latest_removed, rnode.node);
	kd = armdb_keydir_redo_acquire(rnode);
	armdb_keydir_redo_prune(kd, (const uint64 *) (xlrec + 1), xlrec->nslots);
	armdb_keydir_redo_release(kd);
}

/*
 * DROP DATABASE: its storage goes, and so do its keydirs, once no session
 * is connected to it (as PostgreSQL's own replay of the drop does).
 */
static void
redo_drop_database(XLogReaderState *record)
{
	xl_armdb_database *db = (xl_armdb_database *) XLogRecGetData(record);

	if (InHotStandby)
		ResolveRecoveryConflictWithDatabase(db->db);
	armdb_keydir_drop_database(db->db);
	armdb_rel_storage_remove_database(db->db);
}

/*
 * A merge's kept entries, gathered from its MERGE_MOVES records until its
 * MERGE record, per shard (merges of different shards may interleave).
 */
typedef struct MergeKey
{
	Oid			dbNode;
	Oid			relNode;
	uint32		shard;
} MergeKey;

typedef struct PendingMerge
{
	MergeKey	key;
	uint32		next_seq;		/* the MERGE_MOVES record expected next */
	bool		broken;			/* one was missed: replay cannot redo it */
	uint64		data_bytes;		/* of MERGE_DATA records seen */
	xl_armdb_move *moves;
	uint64		nmoves;
	uint64		cap;
} PendingMerge;

static HTAB *pending_merges = NULL;

static PendingMerge *
pending_merge(Oid dbNode, Oid relNode, uint32 shard)
{
	MergeKey	key;
	PendingMerge *pm;
	bool		found;

	if (pending_merges == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(MergeKey);
		ctl.entrysize = sizeof(PendingMerge);
		ctl.hcxt = TopMemoryContext;
		pending_merges = hash_create("armdb merges being replayed", 16, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.dbNode = dbNode;
	key.relNode = relNode;
	key.shard = shard;
	pm = hash_search(pending_merges, &key, HASH_ENTER, &found);
	if (!found)
	{
		pm->next_seq = 0;
		pm->broken = false;
		pm->data_bytes = 0;
		pm->moves = NULL;
		pm->nmoves = pm->cap = 0;
	}
	return pm;
}

static void
forget_pending_merge(PendingMerge *pm)
{
	if (pm->moves)
		pfree(pm->moves);
	hash_search(pending_merges, &pm->key, HASH_REMOVE, NULL);
}

static void
redo_merge_moves(XLogReaderState *record)
{
	xl_armdb_merge_moves *xlrec = (xl_armdb_merge_moves *) XLogRecGetData(record);
	PendingMerge *pm = pending_merge(xlrec->dbNode, xlrec->relNode, xlrec->shard);

	if (XLogRecGetDataLen(record) !=
		sizeof(*xlrec) + sizeof(xl_armdb_move) * (uint64) xlrec->nmoves)
		elog(PANIC, "armdb redo: merge chunk of %u bytes for %u kept entries",
			 XLogRecGetDataLen(record), xlrec->nmoves);

	/* a merge's first chunk: whatever came before never got its MERGE */
	if (xlrec->seq == 0)
	{
		pm->next_seq = 0;
		pm->broken = false;
		pm->data_bytes = 0;
		pm->nmoves = 0;
	}
	/* replay began after this merge's first chunk (or a merge was lost) */
	if (xlrec->seq != pm->next_seq)
		pm->broken = true;
	pm->next_seq = xlrec->seq + 1;
	if (pm->broken)
		return;
	if (pm->nmoves + xlrec->nmoves > pm->cap)
	{
		pm->cap = Max(pm->cap * 2, pm->nmoves + xlrec->nmoves);
		pm->moves = pm->moves == NULL ?
			MemoryContextAllocHuge(TopMemoryContext, sizeof(xl_armdb_move) * pm->cap) :
			repalloc_huge(pm->moves, sizeof(xl_armdb_move) * pm->cap);
	}
	memcpy(pm->moves + pm->nmoves, xlrec + 1,
		   sizeof(xl_armdb_move) * xlrec->nmoves);
	pm->nmoves += xlrec->nmoves;
}

/* what the replayed merge's callbacks need */
typedef struct MergeReplay
{
	const xl_armdb_merge *rec;
	const uint32 *outputs;
	const char *dir;
	xl_armdb_move *moves;
	uint64		nmoves;
	uint64		next_move;
	int			next_output;
} MergeReplay;

/* The recorded answer to the merge's question about entry e. */
static bool
replay_keep(void *arg, ArmdbEntryInfo *e, ArmdbMergeKeep *keep, ArmdbError *err)
{
	MergeReplay *mr = arg;
	const xl_armdb_move *mv;
	int			input = 0;

	while (mr->rec->inputs[input] != e->file_id)
		input++;
	*keep = ARMDB_MERGE_DROP;
	if (mr->next_move >= mr->nmoves)
		return true;
	mv = &mr->moves[mr->next_move];
	if (mv->input < input || (mv->input == input && mv->offset < e->offset))
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "no entry at offset %u of data file %06u, which the merge kept",
						   mv->offset, mr->rec->inputs[mv->input]);
	if (mv->input != input || mv->offset != e->offset)
		return true;
	mr->next_move++;
	*keep = (mv->flags & ARMDB_WAL_MOVE_TOMBSTONE) && !armdb_gsn_is_tombstone(e->gsn) ?
		ARMDB_MERGE_KEEP_ENDING : ARMDB_MERGE_KEEP;
	if (mv->flags & ARMDB_WAL_MOVE_FROZEN)
		e->gsn |= ARMDB_GSN_FLAG_FROZEN;
	if (mv->flags & ARMDB_WAL_MOVE_ABORTED)
		e->gsn |= ARMDB_GSN_FLAG_ABORTED;
	return true;
}

/*
 * The recorded output numbers, in order; then a number for the manifest
 * (its name only, removed again when the merge finishes): above every file
 * of the shard, and below any file the primary made after the merge, whose
 * numbers are above the primary's manifest.
 */
static bool
replay_file_id(void *arg, uint32 *file_id, ArmdbError *err)
{
	MergeReplay *mr = arg;
	uint32	   *ids;
	int			n;
	uint32		max_id;

	if (mr->next_output < (int) mr->rec->noutputs)
	{
		*file_id = mr->outputs[mr->next_output++];
		return true;
	}
	if (!armdb_list_data_files(mr->dir, &ids, &n, &max_id, err))
		return false;
	if (ids != NULL)
		pfree(ids);
	*file_id = max_id + 1;
	return true;
}

static bool
file_exists(const char *dir, uint32 id, ArmdbFileKind kind)
{
	char		path[MAXPGPATH];

	armdb_file_path(path, dir, id, kind);
	return access(path, F_OK) == 0;
}

/*
 * MERGE_DATA: the bytes go into the output's .tmp file, unless the output
 * is there already (this node merged, before a crash).  Nothing is synced
 * yet: the MERGE record decides what becomes of them.
 */
static void
redo_merge_data(XLogReaderState *record)
{
	xl_armdb_merge_data *xlrec = (xl_armdb_merge_data *) XLogRecGetData(record);
	PendingMerge *pm = pending_merge(xlrec->dbNode, xlrec->relNode, xlrec->shard);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	ArmdbRelKeydir *kd;
	int			fd;

	if (XLogRecGetDataLen(record) != sizeof(*xlrec) + xlrec->len)
		elog(PANIC, "armdb redo: merge data record of %u bytes for %u bytes",
			 XLogRecGetDataLen(record), xlrec->len);
	pm->data_bytes += xlrec->len;
	if (pm->broken || !armdb_rel_storage_exists(rnode))
		return;
	armdb_shard_dir_path(dir, rnode, xlrec->shard);
	if (file_exists(dir, xlrec->file_id, ARMDB_FILE_DATA))
		return;
	kd = armdb_keydir_redo_acquire(rnode);
	armdb_file_path(path, dir, xlrec->file_id, ARMDB_FILE_TMP);
	fd = OpenTransientFile(path, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("armdb redo: could not open \"%s\": %m", path)));
	write_all(fd, path, (const char *) (xlrec + 1), xlrec->len, xlrec->offset);
	CloseTransientFile(fd);
	armdb_keydir_redo_release(kd);
}

/* Remove the .tmp files of a merge's outputs (replay wrote some, or a crash). */
static void
remove_output_tmps(const char *dir, const uint32 *outputs, uint32 noutputs)
{
	for (uint32 i = 0; i < noutputs; i++)
	{
		char		path[MAXPGPATH];

		armdb_file_path(path, dir, outputs[i], ARMDB_FILE_TMP);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not remove \"%s\": %m", path)));
	}
}

/*
 * A hot standby's replayed merge is about to remove its inputs: wait until
 * no session holds a lock on the table (whoever read its keydir holds one
 * until its transaction ends, and may hold locations in the inputs), as
 * replay waits for a relation lock, canceling those still there after
 * max_standby_streaming_delay (a lock conflict, in
 * pg_stat_database_conflicts).  Sessions reading other tables go on.
 * Without the table's OID (no session used the keydir through its
 * relation), every session of the database with a snapshot conflicts.
 */
static void
resolve_readers(Oid dbNode, Oid relid)
{
	LOCKTAG		tag;
	VirtualTransactionId *vxids;
	TimestampTz deadline = 0;

	if (!OidIsValid(relid))
	{
		RelFileNode node = {InvalidOid, dbNode, InvalidOid};

		ResolveRecoveryConflictWithSnapshot(XidFromFullTransactionId(ReadNextFullTransactionId()),
											node);
		return;
	}
	SET_LOCKTAG_RELATION(tag, dbNode, relid);
	vxids = GetLockConflicts(&tag, AccessExclusiveLock, NULL);
	if (max_standby_streaming_delay >= 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   max_standby_streaming_delay);
	for (; VirtualTransactionIdIsValid(*vxids); vxids++)
	{
		pgstat_report_wait_start(WAIT_EVENT_RECOVERY_CONFLICT_SNAPSHOT);
		while (!VirtualXactLock(*vxids, false))
		{
			if (deadline != 0 && GetCurrentTimestamp() >= deadline)
				(void) CancelVirtualTransaction(*vxids,
												PROCSIG_RECOVERY_CONFLICT_LOCK);
			pg_usleep(5000L);
		}
		pgstat_report_wait_end();
	}
}

/* A committed merge's inputs (and their hint files), where still present. */
static void
remove_inputs(const char *dir, const xl_armdb_merge *xlrec)
{
	bool		removed = false;

	for (uint32 i = 0; i < xlrec->ninputs; i++)
	{
		char		path[MAXPGPATH];

		armdb_file_path(path, dir, xlrec->inputs[i], ARMDB_FILE_HINT);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not remove \"%s\": %m", path)));
		armdb_file_path(path, dir, xlrec->inputs[i], ARMDB_FILE_DATA);
		if (unlink(path) == 0)
			removed = true;
		else if (errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("armdb redo: could not remove \"%s\": %m", path)));
	}
	if (removed)
	{
		fsync_fname(dir, true);
		pg_atomic_fetch_add_u64(&armdb_shared->files_removed, 1);
	}
}

/* Pairs the entries of the outputs written from WAL with the moves. */
typedef struct DataMoves
{
	ArmdbMerge *m;
	const xl_armdb_merge *rec;
	const xl_armdb_move *moves;
	uint64		nmoves;
} DataMoves;

static bool
data_move(void *arg, const ArmdbEntryInfo *e, ArmdbError *err)
{
	DataMoves  *dm = arg;
	ArmdbMerge *m = dm->m;
	const xl_armdb_move *rec;
	ArmdbMergeMove *mv;

	if (m->nmoves >= dm->nmoves)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "output %06u holds more entries than the merge kept",
						   e->file_id);
	rec = &dm->moves[m->nmoves];
	mv = &m->moves[m->nmoves++];
	mv->entry = *e;
	mv->new_file_id = e->file_id;
	mv->new_offset = e->offset;
	/* where it came from, and the fates the merge's hint files record */
	mv->entry.file_id = dm->rec->inputs[rec->input];
	mv->entry.offset = rec->offset;
	if (rec->flags & ARMDB_WAL_MOVE_FROZEN)
		mv->entry.gsn |= ARMDB_GSN_FLAG_FROZEN;
	if (rec->flags & ARMDB_WAL_MOVE_ABORTED)
		mv->entry.gsn |= ARMDB_GSN_FLAG_ABORTED;
	return true;
}

/*
 * Set m up as the merge the MERGE_DATA records wrote: each output's .tmp
 * file cut to its size (zero-padded to a whole block, as the merge left it)
 * and synced, its entries checked and paired with the moves.
 */
static bool
merge_from_data(ArmdbMerge *m, const xl_armdb_merge *xlrec,
				const uint32 *outputs, const uint64 *sizes,
				const PendingMerge *pm, ArmdbError *err)
{
	DataMoves	dm;

	m->outputs = palloc(sizeof(uint32) * xlrec->noutputs);
	m->output_sizes = palloc(sizeof(uint64) * xlrec->noutputs);
	m->moves = palloc_extended(sizeof(ArmdbMergeMove) * Max(pm->nmoves, 1),
							   MCXT_ALLOC_HUGE);
	m->outputs_cap = (int) xlrec->noutputs;
	m->moves_cap = Max(pm->nmoves, 1);
	m->noutputs = (int) xlrec->noutputs;
	m->nmoves = 0;
	memcpy(m->outputs, outputs, sizeof(uint32) * xlrec->noutputs);
	memcpy(m->output_sizes, sizes, sizeof(uint64) * xlrec->noutputs);
	dm.m = m;
	dm.rec = xlrec;
	dm.moves = pm->moves;
	dm.nmoves = pm->nmoves;
	for (uint32 i = 0; i < xlrec->noutputs; i++)
	{
		char		path[MAXPGPATH];
		ArmdbScanResult scan;
		int			fd;
		bool		ok;

		armdb_file_path(path, m->dir, outputs[i], ARMDB_FILE_TMP);
		fd = armdb_file_open(path, O_RDWR, m->direct_io, NULL, err);
		if (fd < 0)
			return false;
		ok = ftruncate(fd, (off_t) TYPEALIGN(ARMDB_BLOCK_SIZE, sizes[i])) == 0 ||
			armdb_error(err, ARMDB_ERR_IO, errno, "could not truncate \"%s\": %s",
						path, strerror(errno));
		ok = ok && armdb_io_fdatasync(m->io, fd, err) &&
			armdb_scan_data_file(m->io, fd, outputs[i], false, NULL, data_move,
								 &dm, &scan, err);
		armdb_file_close(fd);
		if (ok && (scan.end != ARMDB_SCAN_END_CLEAN || scan.valid_end != sizes[i]))
			ok = armdb_error(err, ARMDB_ERR_INVALID, 0,
							 "output %06u written from WAL ends at %llu, not %llu",
							 outputs[i], (unsigned long long) scan.valid_end,
							 (unsigned long long) sizes[i]);
		if (!ok)
			return false;
	}
	if (m->nmoves != pm->nmoves)
		return armdb_error(err, ARMDB_ERR_INVALID, 0,
						   "the outputs hold %llu entries, the merge kept %llu",
						   (unsigned long long) m->nmoves,
						   (unsigned long long) pm->nmoves);
	return true;
}

static void
redo_merge(XLogReaderState *record)
{
	xl_armdb_merge *xlrec = (xl_armdb_merge *) XLogRecGetData(record);
	const uint32 *outputs = (const uint32 *) (xlrec + 1);
	const uint64 *sizes = (const uint64 *) (outputs + xlrec->noutputs);
	PendingMerge *pm = pending_merge(xlrec->dbNode, xlrec->relNode, xlrec->shard);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	char		dir[MAXPGPATH];
	const char *why = NULL;
	ArmdbMerge	m;
	MergeReplay mr;
	ArmdbError	err;
	uint32		finished;
	bool		done = xlrec->noutputs > 0;
	bool		complete;
	bool		have_id;
	bool		inputs = true;
	bool		ok;
	ArmdbRelKeydir *kd;
	uint64		base_len = sizeof(*xlrec) +
		(sizeof(uint32) + sizeof(uint64)) * (uint64) xlrec->noutputs;
	xl_armdb_merge_key key;

	/*
	 * Without its key part (unencrypted outputs, or an older build's), or
	 * with one without flags (an earlier build's: not authenticated)
	 */
	memset(&key, 0, sizeof(key));
	if (XLogRecGetDataLen(record) == base_len + sizeof(key))
		memcpy(&key, (const char *) xlrec + base_len, sizeof(key));
	else if (XLogRecGetDataLen(record) ==
			 base_len + offsetof(xl_armdb_merge_key, flags))
		memcpy(&key, (const char *) xlrec + base_len,
			   offsetof(xl_armdb_merge_key, flags));
	else if (XLogRecGetDataLen(record) != base_len)
		elog(PANIC, "armdb redo: merge record of %u bytes for %u outputs",
			 XLogRecGetDataLen(record), xlrec->noutputs);
	armdb_shard_dir_path(dir, rnode, xlrec->shard);
	if (!armdb_rel_storage_exists(rnode))
	{
		forget_pending_merge(pm);
		return;					/* dropped later in WAL */
	}

	/* the outputs' hints may record fates as frozen: as FREEZE's conflict */
	if (InHotStandby && TransactionIdIsNormal(xlrec->freeze_cutoff))
	{
		TransactionId latest_removed = xlrec->freeze_cutoff;

		TransactionIdRetreat(latest_removed);
		ResolveRecoveryConflictWithSnapshot(latest_removed, rnode.node);
	}

	/* a hot standby's readers load nothing while the files change */
	kd = armdb_keydir_redo_acquire(rnode);

	/* a merge this node committed before a crash is finished first */
	if (!armdb_merge_recover(dir, &finished, &err))
	{
		why = err.message;
		goto skip;
	}
	for (uint32 i = 0; i < xlrec->noutputs; i++)
		done = done && file_exists(dir, outputs[i], ARMDB_FILE_DATA);
	if (done)
	{
		/*
		 * Merged before (this node, before a crash; or the source of a base
		 * backup, whose copy got the outputs): its outputs exist only once
		 * it committed, and then its inputs must go, as its finish does --
		 * a copy may hold some, or replay of an earlier merge may have
		 * written them from WAL again.
		 */
		remove_inputs(dir, xlrec);
		remove_output_tmps(dir, outputs, xlrec->noutputs);
		goto out;
	}
	complete = !pm->broken && pm->next_seq == xlrec->nchunks &&
		pm->nmoves == xlrec->nmoves;
	for (uint32 i = 0; i < xlrec->ninputs; i++)
		inputs = inputs && file_exists(dir, xlrec->inputs[i], ARMDB_FILE_DATA);

	memset(&mr, 0, sizeof(mr));
	mr.rec = xlrec;
	mr.outputs = outputs;
	mr.dir = dir;
	mr.moves = pm->moves;
	mr.nmoves = pm->nmoves;
	memset(&m, 0, sizeof(m));
	m.io = armdb_backend_io();
	m.dir = dir;
	m.shard_no = xlrec->shard;
	m.key_id = key.key_id;
	memcpy(m.salt, key.salt, sizeof(m.salt));
	m.authenticated = (key.flags & XL_ARMDB_MERGE_AUTHENTICATED) != 0;
	m.max_file_size = xlrec->max_file_size;
	m.direct_io = armdb_store_settings()->direct_io;
	m.keep = replay_keep;
	m.next_file_id = replay_file_id;
	m.progress = NULL;
	m.arg = &mr;
	m.out_fd = -1;
	m.ninputs = (int) xlrec->ninputs;
	for (uint32 i = 0; i < xlrec->ninputs; i++)
		m.inputs[i] = xlrec->inputs[i];

	/* an encrypted table's file keys need its storage id (cipher.h) */
	have_id = key.key_id == 0 || armdb_rel_storage_get_id(rnode, m.storage_id);

	if (!inputs && armdb_shared->skip_own_replay && !reachedConsistency &&
		complete &&
		xlrec->data_bytes > 0 && pm->data_bytes == xlrec->data_bytes)
	{
		/*
		 * Restoring a base backup, before its end, whose copy lacks inputs
		 * (removed by the merge before the copy got to them, while its
		 * outputs appeared after the directory was listed): the outputs
		 * come from WAL.  If
		 * a later merge consumed them, its replay removes them again.
		 * Elsewhere a missing input was merged away already.  The manifest
		 * takes a number after every file, as on the primary.
		 */
		mr.next_output = (int) xlrec->noutputs;
		/* without the storage id, no hint: its MAC would be wrong */
		m.no_hints = !have_id;
		ok = merge_from_data(&m, xlrec, outputs, sizes, pm, &err);
	}
	else
	{
		remove_output_tmps(dir, outputs, xlrec->noutputs);
		if (!inputs)
			goto out;			/* merged away already, or never here */
		if (!complete)
		{
			why = "replay did not see all of its records";
			goto skip;
		}
		if (!have_id)
		{
			why = "its meta file is missing or damaged";
			goto skip;
		}
		ok = armdb_merge_copy(&m, &err);
		if (ok && (mr.next_move != mr.nmoves ||
				   m.noutputs != (int) xlrec->noutputs ||
				   memcmp(m.outputs, outputs, sizeof(uint32) * m.noutputs) != 0 ||
				   memcmp(m.output_sizes, sizes, sizeof(uint64) * m.noutputs) != 0))
		{
			armdb_merge_abort(&m);
			ok = armdb_error(&err, ARMDB_ERR_INVALID, 0,
							 "the copy did not come out as on the primary");
		}
	}
	ok = ok && armdb_merge_commit(&m, &err);
	if (ok && kd != NULL && kd->loaded)
	{
		/*
		 * Readers of the keydir may still read the inputs at the locations
		 * they took before the move: as on the primary (compact.c), the
		 * inputs go once they are done -- here, once every session that
		 * holds a lock on the table has ended its transaction or been
		 * canceled after max_standby_streaming_delay (resolve_readers).
		 * The keydir's lock is not held meanwhile: a session waiting for
		 * it could not be canceled.
		 */
		armdb_keydir_redo_merge(kd, xlrec->shard, &m);
		LWLockRelease(&kd->lock);
		resolve_readers(xlrec->dbNode, kd->relid);
		LWLockAcquire(&kd->lock, LW_EXCLUSIVE);
	}
	ok = ok && armdb_merge_finish(&m, &err);
	armdb_merge_free(&m);
	if (ok)
		pg_atomic_fetch_add_u64(&armdb_shared->files_removed, 1);	/* close them */
	else
		why = err.message;

skip:
	if (why != NULL)
	{
		remove_output_tmps(dir, outputs, xlrec->noutputs);
		ereport(WARNING,
				(errmsg("armdb redo: could not replay a merge of data files in \"%s\": %s",
						dir, why),
				 errdetail("The files stay as they are: they hold the same rows, in more space.")));
	}
out:
	armdb_keydir_redo_release(kd);
	forget_pending_merge(pm);
}

static void
redo_hint(XLogReaderState *record)
{
	xl_armdb_hint *xlrec = (xl_armdb_hint *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(InvalidOid, xlrec->dbNode,
											   xlrec->relNode);
	char		dir[MAXPGPATH];
	ArmdbError	err;
	ArmdbRelKeydir *kd;
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];
	ArmdbFileAuth auth = {&armdb_keyring, storage_id, xlrec->shard, false};

	armdb_shard_dir_path(dir, rnode, xlrec->shard);
	/* gone since (merged, dropped), or built already */
	if (!file_exists(dir, xlrec->file_id, ARMDB_FILE_DATA) ||
		file_exists(dir, xlrec->file_id, ARMDB_FILE_HINT))
		return;
	/* a reader loading the table meanwhile would remove the .tmp file */
	kd = armdb_keydir_redo_acquire(rnode);
	/*
	 * An authenticated file's hint has a MAC (storage/format.h), under a key
	 * of the table's storage id; the files came from WAL, which replay
	 * trusts, so the table's meta file is not needed (nor can its damage
	 * stop replay here).
	 */
	if (!armdb_rel_storage_get_id(rnode, storage_id))
		memset(storage_id, 0, sizeof(storage_id));
	/*
	 * Always with auth: without keys an authenticated file then gets no
	 * hint (ARMDB_ERR_KEY), rather than one without the MAC its loads
	 * would refuse once the keys are given.
	 */
	if (!armdb_hint_build(armdb_backend_io(), dir, xlrec->file_id,
						  armdb_store_settings()->direct_io, false, &auth,
						  &err))
		ereport(WARNING,
				(errmsg("armdb redo: could not write the hint file of data file %06u in \"%s\": %s",
						xlrec->file_id, dir, err.message),
				 errdetail("Loading the table scans the data file instead.")));
	armdb_keydir_redo_release(kd);
}

void
armdb_wal_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	xl_armdb_database *db;

	armdb_durable_note_replay(record);
	switch (info & XLOG_ARMDB_OPMASK)
	{
		case XLOG_ARMDB_APPEND:
			redo_append(record);
			break;
		case XLOG_ARMDB_CREATE:
			redo_create(record);
			break;
		case XLOG_ARMDB_DROP:
			redo_drop(record);
			break;
		case XLOG_ARMDB_COPY:
			redo_copy(record);
			break;
		case XLOG_ARMDB_COPY_DB:
			db = (xl_armdb_database *) XLogRecGetData(record);
			armdb_rel_storage_copy_database(db->src_db, db->db);
			break;
		case XLOG_ARMDB_DROP_DB:
			redo_drop_database(record);
			break;
		case XLOG_ARMDB_FREEZE:
			redo_freeze(record);
			break;
		case XLOG_ARMDB_MERGE_MOVES:
			redo_merge_moves(record);
			break;
		case XLOG_ARMDB_MERGE:
			redo_merge(record);
			break;
		case XLOG_ARMDB_HINT:
			redo_hint(record);
			break;
		case XLOG_ARMDB_PRUNE:
			redo_prune(record);
			break;
		case XLOG_ARMDB_MERGE_DATA:
			redo_merge_data(record);
			break;
		case XLOG_ARMDB_VM_SET:
			armdb_vm_redo_set(record);
			break;
		case XLOG_ARMDB_VM_CLEAR:
			armdb_vm_redo_clear(record);
			break;
		case XLOG_ARMDB_LOGICAL:
			break;				/* for logical decoding only */
		case XLOG_ARMDB_FILE:
			redo_file(record);
			break;
		default:
			elog(PANIC, "armdb redo: unknown record kind %u", info);
	}
}

/* ----------------
 * Description (pg_waldump, pg_walinspect)
 * ----------------
 */

static void
desc_entry(StringInfo buf, const char *p, uint32 len)
{
	ArmdbEntryHeader hdr;

	if (!armdb_entry_header_copy(p, len, &hdr))
	{
		appendStringInfo(buf, "; %u bytes, too short for an entry", len);
		return;
	}
	if (armdb_gsn_is_reservation(hdr.gsn))
		appendStringInfo(buf, "; reservation of slots %llu to %llu",
						 (unsigned long long) Min(hdr.root_slot, hdr.slot),
						 (unsigned long long) hdr.slot);
	else if (armdb_gsn_is_lock(hdr.gsn))
	{
		appendStringInfo(buf, "; row lock of slot %llu, xid %llu, gsn %llu, xmax %u, infomask 0x%04x",
						 (unsigned long long) hdr.slot,
						 (unsigned long long) hdr.xid,
						 (unsigned long long) (hdr.gsn & ARMDB_GSN_MAX),
						 (uint32) hdr.root_slot,
						 (uint32) (hdr.prev_slot & ARMDB_LOCK_INFOMASK_MASK));
		if (hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED)
			appendStringInfoString(buf, ", sealed");
		return;
	}
	else
		appendStringInfo(buf, "; %s of slot %llu, xid %llu, gsn %llu",
						 armdb_gsn_is_tombstone(hdr.gsn) ? "tombstone" : "version",
						 (unsigned long long) hdr.slot,
						 (unsigned long long) hdr.xid,
						 (unsigned long long) (hdr.gsn & ARMDB_GSN_MAX));
	if (!armdb_gsn_is_reservation(hdr.gsn) &&
		hdr.prev_slot != ARMDB_INVALID_SLOT)
		appendStringInfo(buf, ", replaces slot %llu",
						 (unsigned long long) hdr.prev_slot);
	/* an encrypted table's entry without a value has its tag (format.h) */
	if (!armdb_gsn_is_version(hdr.gsn) && (hdr.gsn & ARMDB_GSN_FLAG_ENCRYPTED))
		appendStringInfoString(buf, ", sealed");
	else if (hdr.value_len > 0)
		appendStringInfo(buf, ", value %u bytes", hdr.value_len);
}

void
armdb_wal_desc(StringInfo buf, XLogReaderState *record)
{
	char	   *data = XLogRecGetData(record);
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	switch (info & XLOG_ARMDB_OPMASK)
	{
		case XLOG_ARMDB_APPEND:
			{
				xl_armdb_append *xlrec = (xl_armdb_append *) data;

				const char *p = (const char *) (xlrec + 1);
				uint32		n = 0;

				appendStringInfo(buf, "rel %u/%u shard %u file %06u offset %u len %u",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->file_id, xlrec->offset, xlrec->len);
				/* the first entry, and how many there are */
				desc_entry(buf, p, xlrec->len);
				for (uint32 at = 0; at + ARMDB_ENTRY_PREFIX_SIZE <= xlrec->len; n++)
				{
					ArmdbEntryHeader hdr;

					memcpy(&hdr, p + at, ARMDB_ENTRY_PREFIX_SIZE);
					at += (uint32) armdb_entry_size(hdr.gsn, hdr.value_len);
				}
				if (n > 1)
					appendStringInfo(buf, "; %u entries", n);
				break;
			}
		case XLOG_ARMDB_CREATE:
			{
				xl_armdb_create *xlrec = (xl_armdb_create *) data;

				appendStringInfo(buf, "rel %u/%u/%u shards %u persistence %c%s",
								 xlrec->spcNode, xlrec->dbNode, xlrec->relNode,
								 xlrec->nshards, xlrec->persistence,
								 xlrec->reset ? " reset" : "");
				break;
			}
		case XLOG_ARMDB_DROP:
			{
				xl_armdb_drop *xlrec = (xl_armdb_drop *) data;

				appendStringInfo(buf, "rel %u/%u", xlrec->dbNode, xlrec->relNode);
				break;
			}
		case XLOG_ARMDB_COPY:
			{
				xl_armdb_copy *xlrec = (xl_armdb_copy *) data;

				appendStringInfo(buf, "rel %u/%u to %u/%u/%u shards %u",
								 xlrec->dbNode, xlrec->from_relNode,
								 xlrec->spcNode, xlrec->dbNode,
								 xlrec->to_relNode, xlrec->nshards);
				break;
			}
		case XLOG_ARMDB_COPY_DB:
			{
				xl_armdb_database *xlrec = (xl_armdb_database *) data;

				appendStringInfo(buf, "database %u from %u", xlrec->db,
								 xlrec->src_db);
				break;
			}
		case XLOG_ARMDB_DROP_DB:
			{
				xl_armdb_database *xlrec = (xl_armdb_database *) data;

				appendStringInfo(buf, "database %u", xlrec->db);
				break;
			}
		case XLOG_ARMDB_FREEZE:
			{
				xl_armdb_freeze *xlrec = (xl_armdb_freeze *) data;

				appendStringInfo(buf, "rel %u/%u cutoff %u", xlrec->dbNode,
								 xlrec->relNode, xlrec->cutoff);
				break;
			}
		case XLOG_ARMDB_MERGE_MOVES:
			{
				xl_armdb_merge_moves *xlrec = (xl_armdb_merge_moves *) data;

				appendStringInfo(buf, "rel %u/%u shard %u chunk %u: %u kept entries",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->seq, xlrec->nmoves);
				break;
			}
		case XLOG_ARMDB_FILE:
			{
				xl_armdb_file *xlrec = (xl_armdb_file *) data;
				ArmdbFileHeader fh;

				memcpy(&fh, xlrec->header, sizeof(fh));
				appendStringInfo(buf, "rel %u/%u shard %u file %06u",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->file_id);
				if (fh.flags & ARMDB_FILE_FLAG_ENCRYPTED)
					appendStringInfo(buf, " encrypted, key %08x", fh.key_id);
				break;
			}
		case XLOG_ARMDB_HINT:
			{
				xl_armdb_hint *xlrec = (xl_armdb_hint *) data;

				appendStringInfo(buf, "rel %u/%u shard %u file %06u",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->file_id);
				break;
			}
		case XLOG_ARMDB_MERGE_DATA:
			{
				xl_armdb_merge_data *xlrec = (xl_armdb_merge_data *) data;

				appendStringInfo(buf, "rel %u/%u shard %u output %06u: %u bytes at %u",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->file_id, xlrec->len, xlrec->offset);
				break;
			}
		case XLOG_ARMDB_VM_SET:
		case XLOG_ARMDB_VM_CLEAR:
			{
				xl_armdb_vm *xlrec = (xl_armdb_vm *) data;

				appendStringInfo(buf, "rel %u/%u/%u page %u",
								 xlrec->rnode.spcNode, xlrec->rnode.dbNode,
								 xlrec->rnode.relNode, xlrec->blkno);
				if ((info & XLOG_ARMDB_OPMASK) == XLOG_ARMDB_VM_SET)
					appendStringInfo(buf, " flags 0x%02X cutoff xid %u",
									 xlrec->flags, xlrec->cutoff);
				break;
			}
		case XLOG_ARMDB_LOGICAL:
			{
				xl_armdb_logical *xlrec = (xl_armdb_logical *) data;
				static const char *const actions[] = {
					"?", "INSERT", "UPDATE", "DELETE", "SPEC_INSERT",
					"SPEC_CONFIRM", "SPEC_ABORT"
				};

				appendStringInfo(buf, "rel %u/%u/%u %s: new tuple %u bytes, old %u",
								 xlrec->rnode.spcNode, xlrec->rnode.dbNode,
								 xlrec->rnode.relNode,
								 actions[xlrec->action <= ARMDB_LOGICAL_SPEC_ABORT ?
										 xlrec->action : 0],
								 xlrec->new_len, xlrec->old_len);
				break;
			}
		case XLOG_ARMDB_PRUNE:
			{
				xl_armdb_prune *xlrec = (xl_armdb_prune *) data;

				appendStringInfo(buf, "rel %u/%u: %u dead versions, latest removed xid %u",
								 xlrec->dbNode, xlrec->relNode, xlrec->nslots,
								 xlrec->latest_removed);
				break;
			}
		case XLOG_ARMDB_MERGE:
			{
				xl_armdb_merge *xlrec = (xl_armdb_merge *) data;
				const uint32 *outputs = (const uint32 *) (xlrec + 1);

				appendStringInfo(buf, "rel %u/%u shard %u inputs",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard);
				for (uint32 i = 0; i < xlrec->ninputs; i++)
					appendStringInfo(buf, " %06u", xlrec->inputs[i]);
				appendStringInfoString(buf, " outputs");
				for (uint32 i = 0; i < xlrec->noutputs; i++)
					appendStringInfo(buf, " %06u", outputs[i]);
				appendStringInfo(buf, "; %llu kept entries",
								 (unsigned long long) xlrec->nmoves);
				if (xlrec->data_bytes > 0)
					appendStringInfo(buf, ", %llu bytes of outputs logged",
									 (unsigned long long) xlrec->data_bytes);
				break;
			}
	}
}

const char *
armdb_wal_identify(uint8 info)
{
	switch (info & ~XLR_INFO_MASK & XLOG_ARMDB_OPMASK)
	{
		case XLOG_ARMDB_APPEND:
			return "APPEND";
		case XLOG_ARMDB_CREATE:
			return "CREATE";
		case XLOG_ARMDB_DROP:
			return "DROP";
		case XLOG_ARMDB_COPY:
			return "COPY";
		case XLOG_ARMDB_COPY_DB:
			return "COPY_DB";
		case XLOG_ARMDB_DROP_DB:
			return "DROP_DB";
		case XLOG_ARMDB_FREEZE:
			return "FREEZE";
		case XLOG_ARMDB_MERGE_MOVES:
			return "MERGE_MOVES";
		case XLOG_ARMDB_MERGE:
			return "MERGE";
		case XLOG_ARMDB_HINT:
			return "HINT";
		case XLOG_ARMDB_PRUNE:
			return "PRUNE";
		case XLOG_ARMDB_MERGE_DATA:
			return "MERGE_DATA";
		case XLOG_ARMDB_VM_SET:
			return "VM_SET";
		case XLOG_ARMDB_VM_CLEAR:
			return "VM_CLEAR";
		case XLOG_ARMDB_LOGICAL:
			return "LOGICAL";
		case XLOG_ARMDB_FILE:
			return "FILE";
	}
	return NULL;
}
