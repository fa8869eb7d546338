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
 * What this step does not change.  Commits still make their entries
 * durable with the shard's fdatasync before the commit record (design
 * §4a); replay therefore never has to bring back a committed entry on the
 * primary, and what it writes after a crash are entries of transactions
 * that did not commit, which the keydir load ignores.  A file in which
 * replay finds fewer bytes than a record's offset lost entries that no
 * committed transaction needed (a commit syncs everything before its own
 * entries): the record is skipped rather than leave a hole of zeros that
 * the load would call corruption.  Merges, hint files and freezing are not
 * logged yet, so a standby keeps unmerged files (freezing is: VACUUM's
 * XLOG_ARMDB_FREEZE has replay record the same fates in the standby's own
 * hint files before relfrozenxid moves, so that a promoted standby never
 * needs clog that was truncated); reading armdb tables
 * during recovery (hot standby) is refused until replay maintains the
 * key directory (armdb_keydir_get).
 *
 * Replay is idempotent: an entry already in its file byte for byte is left
 * alone, anything else at its place is overwritten, and every write is
 * fdatasynced before the next record (there is no checkpoint hook, so a
 * restartpoint could otherwise pass a write that is not durable).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "miscadmin.h"
#include "storage/fd.h"

#include "armdb.h"
#include "keydir/relstorage.h"
#include "vstore/vstore.h"
#include "wal/armdb_wal.h"

static RmgrData armdb_rmgr = {
	.rm_name = ARMDB_RMGR_NAME,
	.rm_redo = armdb_wal_redo,
	.rm_desc = armdb_wal_desc,
	.rm_identify = armdb_wal_identify,
	.rm_startup = NULL,
	.rm_cleanup = NULL,
	.rm_mask = NULL,
	.rm_decode = NULL
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

XLogRecPtr
armdb_wal_log_append(Oid dbNode, Oid relNode, uint32 shard,
					 const ArmdbLocation *loc, const ArmdbEntryHeader *hdr,
					 const void *value)
{
	xl_armdb_append xlrec;

	xlrec.dbNode = dbNode;
	xlrec.relNode = relNode;
	xlrec.shard = shard;
	xlrec.file_id = loc->file_id;
	xlrec.offset = loc->offset;
	xlrec.len = loc->len;
	Assert(loc->len == armdb_entry_size(hdr->value_len));

	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	XLogRegisterData((char *) hdr, ARMDB_ENTRY_HEADER_SIZE);
	if (hdr->value_len > 0)
		XLogRegisterData((char *) value, hdr->value_len);
	return XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_APPEND);
}

void
armdb_wal_log_create(const RelFileNode *rnode, uint32 nshards,
					 char persistence, bool reset)
{
	xl_armdb_create xlrec;

	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.spcNode = rnode->spcNode;
	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	xlrec.nshards = nshards;
	xlrec.persistence = persistence;
	xlrec.reset = reset;
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_CREATE);
}

void
armdb_wal_log_drop(const RelFileNode *rnode)
{
	xl_armdb_drop xlrec;

	xlrec.dbNode = rnode->dbNode;
	xlrec.relNode = rnode->relNode;
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	XLogFlush(XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_DROP));
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
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_COPY);
}

static void
log_database(uint8 info, Oid src_db, Oid db)
{
	xl_armdb_database xlrec;

	xlrec.src_db = src_db;
	xlrec.db = db;
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	XLogFlush(XLogInsert(ARMDB_RMGR_ID, info));
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
	XLogBeginInsert();
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_FREEZE);
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
	DIR		   *dir = AllocateDir(shard_dir);
	struct dirent *de;
	bool		found = false;

	if (dir == NULL && errno == ENOENT)
		return false;
	while (!found && (de = ReadDir(dir, shard_dir)) != NULL)
	{
		uint32		id;
		ArmdbFileKind kind;

		found = armdb_file_name_parse(de->d_name, &id, &kind) &&
			kind == ARMDB_FILE_DATA && id >= file_id;
	}
	FreeDir(dir);
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
 *	   and is missing because a merge removed it.  Merges are not logged
 *	   yet, so it must not come back: its entries are in the merge's
 *	   outputs, and an ending a later merge dropped because this file was
 *	   gone would no longer end them.  (A standby's base backup is the same:
 *	   a file absent from the copy with a newer one present was merged
 *	   away before the copy.)
 */
static bool
create_data_file(const char *shard_dir, const char *rel_dir, uint32 shard,
				 uint32 file_id, const char *path)
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
	memcpy(block, &fh, sizeof(fh));
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

static void
redo_append(XLogReaderState *record)
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
							  xlrec->file_id, path))
			return;
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

	/* entries lost before this one were of no committed transaction */
	if ((uint64) st.st_size < xlrec->offset)
	{
		CloseTransientFile(fd);
		return;
	}

	/* already there, byte for byte? */
	have = palloc(xlrec->len);
	n = (uint64) st.st_size >= (uint64) xlrec->offset + xlrec->len ?
		pg_pread(fd, have, xlrec->len, xlrec->offset) : 0;
	if (n != xlrec->len || memcmp(have, entries, xlrec->len) != 0)
	{
		write_all(fd, path, entries, xlrec->len, xlrec->offset);
		sync_fd(fd, path);
	}
	pfree(have);
	CloseTransientFile(fd);
}

static void
redo_create(XLogReaderState *record)
{
	xl_armdb_create *xlrec = (xl_armdb_create *) XLogRecGetData(record);
	RelFileNodeBackend rnode = permanent_rnode(xlrec->spcNode, xlrec->dbNode,
											   xlrec->relNode);

	if (!xlrec->reset && armdb_rel_storage_exists(rnode))
		return;
	armdb_rel_storage_create(rnode, xlrec->nshards, xlrec->persistence);
}

static void
redo_drop(XLogReaderState *record)
{
	xl_armdb_drop *xlrec = (xl_armdb_drop *) XLogRecGetData(record);

	armdb_rel_storage_remove(permanent_rnode(InvalidOid, xlrec->dbNode,
											 xlrec->relNode), WARNING);
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
	uint32		nshards;

	if (!armdb_rel_storage_exists(rnode))
		return;					/* dropped later in WAL */
	nshards = armdb_rel_storage_read_meta(rnode, NULL);
	for (uint32 shard = 0; shard < nshards; shard++)
	{
		char		dir[MAXPGPATH];

		armdb_shard_dir_path(dir, rnode, shard);
		armdb_vstore_freeze_dir(dir, xlrec->cutoff,
								armdb_store_settings()->direct_io);
	}
}

void
armdb_wal_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	xl_armdb_database *db;

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
			db = (xl_armdb_database *) XLogRecGetData(record);
			armdb_rel_storage_remove_database(db->db);
			break;
		case XLOG_ARMDB_FREEZE:
			redo_freeze(record);
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

	if (len < ARMDB_ENTRY_HEADER_SIZE)
	{
		appendStringInfo(buf, "; %u bytes, too short for an entry", len);
		return;
	}
	memcpy(&hdr, p, sizeof(hdr));
	if (armdb_gsn_is_reservation(hdr.gsn))
		appendStringInfo(buf, "; reservation up to slot %llu",
						 (unsigned long long) hdr.slot);
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
	if (hdr.value_len > 0)
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

				appendStringInfo(buf, "rel %u/%u shard %u file %06u offset %u len %u",
								 xlrec->dbNode, xlrec->relNode, xlrec->shard,
								 xlrec->file_id, xlrec->offset, xlrec->len);
				desc_entry(buf, (char *) (xlrec + 1), xlrec->len);
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
	}
	return NULL;
}
