/*-------------------------------------------------------------------------
 *
 * armdb_durable.c
 *	  Durability from WAL (design §4b, item 4): a commit costs one WAL flush.
 *
 * Every entry of a WAL-logged relation is in an XLOG_ARMDB_APPEND record
 * (armdb_wal.c), so once the commit record is flushed, WAL holds all of the
 * transaction; the data files need not be synced before it.  What has to
 * be arranged instead is that WAL is kept, and replayed, for as long as a
 * data file may lack an entry of a record older than the checkpoint a
 * recovery would start from (PostgreSQL 15 has no checkpoint hook that
 * could sync them first).  Four parts do it:
 *
 *	 - The flusher (a background worker) syncs, every armdb.flush_interval,
 *	   every loaded shard up to its end, having first read the WAL insert
 *	   position L.  Appends log their record and copy their entry under the
 *	   shard lock, so every entry of a record below L is in a shard buffer
 *	   or file by then, and durable when the round ends: L becomes the
 *	   durable LSN D, written to the control file (<armdb dir>/wal_control,
 *	   fsynced, CRC-checked) before anything relies on it.
 *	 - The replication slot "armdb" (physical, persistent, held by the
 *	   flusher so that nobody drops it) is moved to D after the control file
 *	   is durable: WAL from D is never removed.  max_slot_wal_keep_size must
 *	   be -1, which is checked every round.
 *	 - A recovery replays armdb's records from D to the checkpoint's redo
 *	   pointer itself (rm_startup, with its own WAL reader), then PostgreSQL
 *	   replays the rest.  A start that runs no redo (clean shutdown: the
 *	   shard buffers of the last commits were never written; a crash with
 *	   nothing after its checkpoint) replays from D to pg_control's redo
 *	   pointer at the first use of armdb storage (the gate).  Redo is
 *	   idempotent (an entry already in place is left alone) and syncs what
 *	   it writes; files it found complete are synced at the end, and D then
 *	   moves to where replay ended.
 *	 - Until the flusher holds the slot and has finished one round, and
 *	   whenever it cannot (no slot possible: wal_level minimal,
 *	   max_replication_slots = 0, max_slot_wal_keep_size set), commits sync
 *	   their shards as before (design §4a), and say why in
 *	   armdb_wal_status().  So do commits of unlogged relations, which have
 *	   no WAL, and every commit when armdb.sync_at_commit is on.
 *
 * Base backups.  A backup copies the files after its checkpoint and
 * replays WAL from that checkpoint's redo pointer, so every entry of a
 * record before the redo pointer must be in its file by the time the
 * checkpoint completes: the flusher holds each checkpoint at its slot's
 * I/O lock until the shard buffers are written out (the checkpoint gate,
 * below).  Between these, committed entries may stay in their shard's
 * buffer (vstore_commit.c says until when); a backend that committed
 * writes its shards' buffers out when it exits, so that a clean shutdown
 * leaves them in their files.  A start from a base backup or
 * for archive recovery skips the own replay: WAL before the backup's start
 * point is not there, and the files were copied after it.
 *
 * Entries never reach a file before WAL is flushed up to their record (the
 * shard's write barrier, vstore_commit.c): a file never holds an entry
 * whose record a crash lost, so no recovery has to cut entries off.  This
 * departs from design §4b, which writes each entry to its file right after
 * its record under DELAY_CHKPT_START and cuts entries beyond the end of WAL
 * by an LSN in their headers.  The gate gives base backups what
 * DELAY_CHKPT_START gave them, without changing the entry format, and
 * keeping write-ahead order keeps recovery from having to cut anything; the
 * price is that a shard's buffer is written out only once WAL is flushed
 * past it (by the flusher, at the gate, when the buffer fills, when a
 * backend that committed exits).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "catalog/pg_control.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "replication/walreceiver.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "armdb.h"
#include "armdb_guc.h"
#include "armdb_workers.h"
#include "keydir/keydir.h"
#include "vstore/vstore.h"
#include "wal/armdb_durable.h"
#include "wal/armdb_wal.h"

bool		armdb_sync_at_commit = false;
int			armdb_flush_interval_ms = 200;

PGDLLEXPORT void armdb_flusher_main(Datum main_arg);

static void gate_open(void);

/* What the flusher holds its slot for. */
typedef enum SlotHold
{
	HOLD_NONE,					/* no slot: commits sync, no checkpoint gate */
	HOLD_GATE,					/* the checkpoint gate only: commits sync */
	HOLD_WAL					/* the gate, and WAL from the durable LSN */
} SlotHold;

PG_FUNCTION_INFO_V1(armdb_wal_status_sql);

/* ----------------
 * The control file
 * ----------------
 */

#define CONTROL_FILE		"wal_control"
#define HWM_FILE			"replay_hwm"	/* same layout: see
											 * armdb_durable_note_replay */
#define CONTROL_MAGIC		0x41524443	/* "ARDC" */
#define CONTROL_VERSION		1

typedef struct ArmdbWalControl
{
	uint32		magic;
	uint32		version;
	uint64		system_identifier;	/* of the cluster whose WAL it means */
	XLogRecPtr	durable_lsn;	/* entries of every record below are synced */
	pg_crc32c	crc;			/* of the fields above */
} ArmdbWalControl;

static void
control_path(char *path, const char *name, const char *suffix)
{
	char		dir[MAXPGPATH];

	armdb_data_dir_path(dir);
	snprintf(path, MAXPGPATH, "%s/%s%s", dir, name, suffix);
}

static pg_crc32c
control_crc(const ArmdbWalControl *c)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, c, offsetof(ArmdbWalControl, crc));
	FIN_CRC32C(crc);
	return crc;
}

/* A record read back (n bytes of it) is whole and armdb's. */
static bool
control_valid(const ArmdbWalControl *c, ssize_t n)
{
	return n == sizeof(*c) && c->magic == CONTROL_MAGIC &&
		c->version == CONTROL_VERSION && EQ_CRC32C(c->crc, control_crc(c));
}

/* Write the record of lsn at the start of fd (path, for errors); no sync. */
static void
control_write(int fd, const char *path, XLogRecPtr lsn)
{
	ArmdbWalControl c;

	memset(&c, 0, sizeof(c));
	c.magic = CONTROL_MAGIC;
	c.version = CONTROL_VERSION;
	c.system_identifier = GetSystemIdentifier();
	c.durable_lsn = lsn;
	c.crc = control_crc(&c);
	errno = 0;
	if (pg_pwrite(fd, &c, sizeof(c), 0) != sizeof(c))
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", path)));
	}
}

/* armdb's directory, made if missing, into dir */
static void
control_dir(char *dir)
{
	armdb_data_dir_path(dir);
	if (MakePGDirectory(dir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
}

/*
 * The durable LSN in the control file; InvalidXLogRecPtr when there is none
 * (a new cluster, or one whose commits all synced: nothing to replay), or
 * when it is another cluster's: pg_upgrade moves armdb's files (written
 * complete by the old cluster's clean shutdown) into a cluster whose WAL
 * positions mean something else.
 */
static XLogRecPtr
read_control(void)
{
	char		path[MAXPGPATH];
	ArmdbWalControl c;
	int			fd;
	ssize_t		n;

	control_path(path, CONTROL_FILE, "");
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return InvalidXLogRecPtr;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open armdb control file \"%s\": %m", path)));
	}
	n = read(fd, &c, sizeof(c));
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read armdb control file \"%s\": %m", path)));
	CloseTransientFile(fd);
	if (!control_valid(&c, n))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb control file \"%s\" is corrupted", path),
				 errdetail("It says from which WAL position armdb's data files may need replay."),
				 errhint("Restore it from a backup.  Removing it makes armdb skip that replay, which loses committed rows if the data files lacked some.")));
	if (c.system_identifier != GetSystemIdentifier())
	{
		ereport(LOG,
				(errmsg("armdb control file \"%s\" belongs to database system %llu, not to this one: nothing to replay",
						path, (unsigned long long) c.system_identifier)));
		return InvalidXLogRecPtr;
	}
	return c.durable_lsn;
}

/* Make lsn the durable LSN: written, synced and renamed into place. */
static void
write_control(XLogRecPtr lsn)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	int			fd;

	control_dir(dir);
	control_path(path, CONTROL_FILE, "");
	control_path(tmp, CONTROL_FILE, ".tmp");
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create \"%s\": %m", tmp)));
	control_write(fd, tmp, lsn);
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync \"%s\": %m", tmp)));
	CloseTransientFile(fd);
	(void) durable_rename(tmp, path, ERROR);

	SpinLockAcquire(&armdb_shared->durable_mutex);
	armdb_shared->durable_lsn = lsn;
	SpinLockRelease(&armdb_shared->durable_mutex);
}

/* ----------------
 * Start-up state
 * ----------------
 */

void
armdb_durable_shmem_init(const ControlFileData *control, bool crc_ok)
{
	struct stat st;

	pg_atomic_init_u32(&armdb_shared->replay_done, 0);
	pg_atomic_init_u32(&armdb_shared->lazy, 0);
	pg_atomic_init_u32(&armdb_shared->gate_held, 0);
	SpinLockInit(&armdb_shared->durable_mutex);
	armdb_shared->durable_lsn = InvalidXLogRecPtr;
	armdb_shared->standby_wait_lsn = InvalidXLogRecPtr;
	for (int i = 0; i < ARMDB_MAX_LOGGING_MERGES; i++)
		armdb_shared->merge_floors[i] = InvalidXLogRecPtr;
	strlcpy(armdb_shared->sync_reason, "the armdb flusher has not started yet",
			sizeof(armdb_shared->sync_reason));
	armdb_shared->startup_redo = InvalidXLogRecPtr;
	armdb_shared->skip_own_replay = false;
	if (control == NULL)
		return;

	/*
	 * A start from a base backup: its backup_label, or, once recovery from
	 * it has begun (backup_label is renamed before redo), the backup's
	 * start point in pg_control.  Signal files alone say nothing: a crashed
	 * primary restarted as a standby still needs its own replay.
	 */
	if (crc_ok)
		armdb_shared->startup_redo = control->checkPointCopy.redo;
	armdb_shared->skip_own_replay =
		stat(BACKUP_LABEL_FILE, &st) == 0 ||
		(crc_ok && (!XLogRecPtrIsInvalid(control->backupStartPoint) ||
					control->backupEndRequired));
}

bool
armdb_durable_gate_held(void)
{
	return pg_atomic_read_u32(&armdb_shared->gate_held) != 0;
}

bool
armdb_durable_lazy(void)
{
	return !armdb_sync_at_commit && pg_atomic_read_u32(&armdb_shared->lazy) != 0;
}

static void
set_lazy(bool lazy, const char *reason)
{
	SpinLockAcquire(&armdb_shared->durable_mutex);
	strlcpy(armdb_shared->sync_reason, reason ? reason : "",
			sizeof(armdb_shared->sync_reason));
	SpinLockRelease(&armdb_shared->durable_mutex);
	pg_atomic_write_u32(&armdb_shared->lazy, lazy ? 1 : 0);
}

/* ----------------
 * Files replay found complete
 * ----------------
 *
 * An entry replay finds in place byte for byte may be in the page cache
 * only (PostgreSQL crashed, the machine did not; or a clean shutdown
 * without the flusher's last sync).  The first time replay finds a file
 * complete, it syncs it: that covers every byte the file held then, so
 * later entries found in place in it need nothing more (what replay writes
 * itself is synced as it goes).  So nothing replay leaves is unsynced when
 * a checkpoint or restartpoint passes it.
 */

static HTAB *synced = NULL;

void
armdb_durable_sync_found_complete(const char *path)
{
	bool		found;

	if (synced == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = MAXPGPATH;
		ctl.entrysize = MAXPGPATH;
		ctl.hcxt = TopMemoryContext;
		synced = hash_create("armdb files replay found complete", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	(void) hash_search(synced, path, HASH_FIND, &found);
	if (found)
		return;
	fsync_fname(path, false);
	(void) hash_search(synced, path, HASH_ENTER, NULL);
}

/* a replay ended: a later one starts over */
static void
forget_synced(void)
{
	if (synced != NULL)
		hash_destroy(synced);
	synced = NULL;
}

/* ----------------
 * Replay of [from, upto) by armdb itself
 * ----------------
 */

static void
replay_range(XLogRecPtr from, XLogRecPtr upto)
{
	ReadLocalXLogPageNoWaitPrivate priv;
	XLogReaderState *reader;
	XLogRecPtr	first;
	XLogRecPtr	end;
	uint64		nrecords = 0;
	char	   *errormsg;

	if (XLogRecPtrIsInvalid(from) || from >= upto)
		return;
	ereport(LOG,
			(errmsg("armdb: replaying its WAL records from %X/%X to %X/%X",
					LSN_FORMAT_ARGS(from), LSN_FORMAT_ARGS(upto))));

	memset(&priv, 0, sizeof(priv));
	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = read_local_xlog_page_no_wait,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								&priv);
	if (reader == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while allocating a WAL reading processor.")));

	first = XLogFindNextRecord(reader, from);
	if (XLogRecPtrIsInvalid(first))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb cannot find WAL from %X/%X, where its data files may need replay",
						LSN_FORMAT_ARGS(from)),
				 errdetail("The replication slot \"%s\" keeps that WAL; it was removed or lost.",
						   ARMDB_SLOT_NAME),
				 errhint("Restore the WAL segments from %X/%X on into pg_wal.",
						 LSN_FORMAT_ARGS(from))));
	XLogBeginRead(reader, first);
	end = first;
	while (end < upto)
	{
		XLogRecord *record = XLogReadRecord(reader, &errormsg);

		if (record == NULL)
		{
			/*
			 * In the startup process the reader stops where PostgreSQL's
			 * replay starts: the record there is not ours to read.  A page
			 * header may separate the last record's end from it.
			 */
			if (priv.end_of_wal && upto - end <= SizeOfXLogLongPHD)
				break;
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb could not read WAL at %X/%X while replaying its records up to %X/%X: %s",
							LSN_FORMAT_ARGS(end), LSN_FORMAT_ARGS(upto),
							errormsg ? errormsg : "end of WAL"),
					 errhint("Restore the WAL segments from %X/%X on into pg_wal.",
							 LSN_FORMAT_ARGS(end))));
		}
		if (reader->ReadRecPtr >= upto)
			break;
		end = reader->EndRecPtr;
		if (XLogRecGetRmid(reader) == ARMDB_RMGR_ID &&
			!armdb_wal_is_buffer_record(XLogRecGetInfo(reader)))
		{
			armdb_wal_redo(reader);
			nrecords++;
		}
	}
	XLogReaderFree(reader);
	ereport(LOG,
			(errmsg("armdb: replayed %llu of its WAL records up to %X/%X",
					(unsigned long long) nrecords, LSN_FORMAT_ARGS(end))));
}

/* ----------------
 * A hot standby's files ahead of its replay
 * ----------------
 *
 * Replay writes entries into the data files as it goes.  After a crash of
 * a standby, replay starts again from a restartpoint, behind what the
 * files hold: until it gets back there, a table loaded for reading would
 * take later entries for the present (a version that VACUUM's slot reuse
 * put in place of one an older snapshot can still see, say).  So replay
 * records, in HWM_FILE, a position beyond every record whose entries it
 * has written -- ahead by what the walreceiver has flushed (within the
 * segment), so that a standby that lags writes it seldom -- and after a
 * restart, loads during recovery wait until replay has passed the position
 * recorded before (armdb_durable_wait_for_replay).
 */
static XLogRecPtr replay_hwm = InvalidXLogRecPtr;	/* startup process */
static XLogRecPtr hwm_at_start = InvalidXLogRecPtr; /* as a previous run left
													 * it */

/*
 * Overwritten in place and fdatasynced: one sync each time, however often
 * (a standby that keeps up notes each record).  A torn write fails the
 * CRC, and read_hwm() then says so.
 */
static void
write_hwm(XLogRecPtr lsn)
{
	static int	fd = -1;
	char		path[MAXPGPATH];

	control_path(path, HWM_FILE, "");
	if (fd < 0)
	{
		char		dir[MAXPGPATH];

		control_dir(dir);
		fd = BasicOpenFile(path, O_RDWR | O_CREAT | PG_BINARY);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open \"%s\": %m", path)));
		fsync_fname(dir, true);
	}
	control_write(fd, path, lsn);
	if (pg_fdatasync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync \"%s\": %m", path)));
}

static XLogRecPtr
read_hwm(void)
{
	char		path[MAXPGPATH];
	ArmdbWalControl c;
	int			fd;
	ssize_t		n;

	control_path(path, HWM_FILE, "");
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not open \"%s\": %m", path)));
		return InvalidXLogRecPtr;
	}
	n = read(fd, &c, sizeof(c));
	CloseTransientFile(fd);
	if (!control_valid(&c, n) || c.system_identifier != GetSystemIdentifier())
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring armdb file \"%s\": damaged, or of another database system", path),
				 errdetail("Hot-standby reads of armdb tables do not wait for replay to pass where it was before a crash.")));
		return InvalidXLogRecPtr;
	}
	return c.durable_lsn;
}

void
armdb_durable_note_replay(XLogReaderState *record)
{
	XLogRecPtr	end = record->EndRecPtr;
	XLogRecPtr	upto;
	XLogRecPtr	received;
	XLogSegNo	seg;

	if (!ArchiveRecoveryRequested || end <= replay_hwm)
		return;

	/*
	 * Ahead as far as WAL is here already, within the segment: replay can
	 * get back there after a restart without waiting for more.  Without a
	 * walreceiver (WAL from pg_wal or the archive) just this record: the
	 * rest of the segment may not be here.
	 */
	XLByteToSeg(end, seg, wal_segment_size);
	XLogSegNoOffsetToRecPtr(seg + 1, 0, wal_segment_size, upto);
	received = GetWalRcvFlushRecPtr(NULL, NULL);
	upto = received >= end ? Min(upto, received) : end;
	write_hwm(upto);
	replay_hwm = upto;
}

void
armdb_durable_wait_for_replay(void)
{
	XLogRecPtr	wait_for;
	TimestampTz give_up;

	SpinLockAcquire(&armdb_shared->durable_mutex);
	wait_for = armdb_shared->standby_wait_lsn;
	SpinLockRelease(&armdb_shared->durable_mutex);
	if (XLogRecPtrIsInvalid(wait_for) || GetXLogReplayRecPtr(NULL) >= wait_for)
		return;
	give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 30 * 1000);
	while (RecoveryInProgress() && GetXLogReplayRecPtr(NULL) < wait_for)
	{
		if (GetCurrentTimestamp() >= give_up)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("armdb tables cannot be read on this standby until replay reaches %X/%X (it is at %X/%X)",
							LSN_FORMAT_ARGS(wait_for),
							LSN_FORMAT_ARGS(GetXLogReplayRecPtr(NULL))),
					 errdetail("The standby restarted after a crash, and its data files hold entries replay has not reached again yet."),
					 errhint("Try again once replay has caught up.")));
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
armdb_durable_redo_startup(void)
{
	/*
	 * From a base backup, the durable LSN in the copied control file is the
	 * source's, and WAL before the backup's start is not here: the files
	 * were copied after it (the checkpoint gate).  Otherwise replay up to
	 * where PostgreSQL's replay starts.  Either way every entry before that
	 * point is in place and synced afterwards (replay syncs what it writes
	 * and each file it found complete), so nothing is left to replay: a
	 * later start need not go back to D, whose WAL a standby does not keep.
	 */
	hwm_at_start = read_hwm();
	if (ArchiveRecoveryRequested)
	{
		replay_hwm = hwm_at_start;
		SpinLockAcquire(&armdb_shared->durable_mutex);
		armdb_shared->standby_wait_lsn = replay_hwm;
		SpinLockRelease(&armdb_shared->durable_mutex);
	}
	if (!armdb_shared->skip_own_replay)
		replay_range(read_control(), GetXLogReplayRecPtr(NULL));
	write_control(InvalidXLogRecPtr);
	pg_atomic_write_u32(&armdb_shared->replay_done, 1);
}

void
armdb_durable_redo_cleanup(void)
{
	/*
	 * Every record replayed has its entry in place and synced now.  The
	 * control file still says nothing is left to replay (rm_startup wrote
	 * so, and nothing records a durable LSN during recovery) until the
	 * flusher holds the slot again; commits sync their files until then.
	 * The end of recovery is not a standby's any more: nothing to wait for.
	 */
	forget_synced();

	/*
	 * Design §4b item 3: no entry beyond the end of recovery may stay in
	 * the files -- its transaction's id could be handed out again, and its
	 * rows taken for the new transaction's.  Entries reach a file only
	 * once WAL is flushed past their records, and replay stops nowhere
	 * before the end of what it replayed before, except when a recovery
	 * target tells it to: after a crash of a standby, say, restarted to
	 * recover up to an earlier point.  Entries carry no LSN that would let
	 * them be cut here, so the end of recovery is refused, as PostgreSQL
	 * refuses a stop point before its minimum recovery point (the bound
	 * may be ahead by what the walreceiver had received then).
	 */
	if (!XLogRecPtrIsInvalid(hwm_at_start) &&
		GetXLogReplayRecPtr(NULL) < hwm_at_start)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("armdb: recovery ended at %X/%X, but before a restart replay had already written armdb data files up to %X/%X",
						LSN_FORMAT_ARGS(GetXLogReplayRecPtr(NULL)),
						LSN_FORMAT_ARGS(hwm_at_start)),
				 errdetail("The files may hold entries of transactions that did not happen before the end of recovery."),
				 errhint("Set the recovery target at or after %X/%X, or restore a base backup taken before the target.",
						 LSN_FORMAT_ARGS(hwm_at_start))));
	if (ArchiveRecoveryRequested || !XLogRecPtrIsInvalid(hwm_at_start))
	{
		char		path[MAXPGPATH];
		char		dir[MAXPGPATH];

		control_path(path, HWM_FILE, "");
		if (unlink(path) == 0)
		{
			armdb_data_dir_path(dir);
			fsync_fname(dir, true);
		}
		SpinLockAcquire(&armdb_shared->durable_mutex);
		armdb_shared->standby_wait_lsn = InvalidXLogRecPtr;
		SpinLockRelease(&armdb_shared->durable_mutex);
		replay_hwm = InvalidXLogRecPtr;
	}
}

void
armdb_durable_startup_replay(void)
{
	if (pg_atomic_read_u32(&armdb_shared->replay_done) != 0)
		return;
	/* during recovery, replay itself is in charge of the files */
	if (RecoveryInProgress())
		return;
	/* replaying now: redo creating storage comes back here */
	if (LWLockHeldByMe(armdb_shared->replay_lock))
		return;

	LWLockAcquire(armdb_shared->replay_lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&armdb_shared->replay_done) == 0)
	{
		if (!armdb_shared->skip_own_replay)
			replay_range(read_control(), armdb_shared->startup_redo);
		forget_synced();
		/* as at the end of a recovery */
		write_control(InvalidXLogRecPtr);
		pg_atomic_write_u32(&armdb_shared->replay_done, 1);
	}
	LWLockRelease(armdb_shared->replay_lock);
}

/* ----------------
 * The flusher
 * ----------------
 */

static void
flush_keydir(ArmdbRelKeydir *kd, void *arg)
{
	armdb_vstore_flush_all_shards(kd, (const ArmdbStoreSettings *) arg);
}

/*
 * Idle shards give their write buffers back (armdb.write_buffer_idle_timeout),
 * looked at about once a second: a table written now and then holds its
 * virtual pages only.
 */
#define RELEASE_ROUND_MS	1000

typedef struct ReleaseRound
{
	TimestampTz now;
	int			idle_ms;
} ReleaseRound;

static void
release_keydir_buffers(ArmdbRelKeydir *kd, void *arg)
{
	ReleaseRound *round = arg;

	(void) armdb_keydir_release_idle_buffers(kd, round->now, round->idle_ms);
}

/*
 * Hold the slot, creating it if it is missing, and say what for: WAL and
 * the checkpoint gate, the gate only (max_slot_wal_keep_size set), or
 * nothing (no slot possible); with the reason when not WAL.
 */
/* lwlock.c's flag, the same since PostgreSQL 9.6: someone waits for the lock */
#define ARMDB_LW_FLAG_HAS_WAITERS	((uint32) 1 << 30)

/*
 * The slot's restart_lsn changed: WAL is kept (or let go) from now on.  It
 * reaches disk at once unless the gate is closed, whose lock is the one
 * saving takes: then the next checkpoint saves it, before it removes WAL.
 */
static void
slot_changed(void)
{
	ReplicationSlotMarkDirty();
	if (!armdb_durable_gate_held())
		ReplicationSlotSave();
	ReplicationSlotsComputeRequiredLSN();
}

static SlotHold
hold_slot(bool *created, int *elevel, char *reason, size_t reasonlen)
{
	bool		keep_wal = max_slot_wal_keep_size_mb == -1;
	ReplicationSlot *slot;

	*created = false;
	*elevel = WARNING;
	if (!keep_wal)
		snprintf(reason, reasonlen,
				 "max_slot_wal_keep_size is not -1, so the slot \"%s\" could lose WAL the data files need",
				 ARMDB_SLOT_NAME);
	if (MyReplicationSlot == NULL)
	{
		if (max_replication_slots == 0 || wal_level < WAL_LEVEL_REPLICA)
		{
			/* a configuration without replication: say it once, calmly */
			*elevel = LOG;
			snprintf(reason, reasonlen,
					 "a replication slot needs max_replication_slots > 0 and wal_level replica or logical");
			return HOLD_NONE;
		}
		slot = SearchNamedReplicationSlot(ARMDB_SLOT_NAME, true);
		if (slot != NULL && !SlotIsPhysical(slot))
		{
			snprintf(reason, reasonlen,
					 "a logical replication slot is named \"%s\", the name of armdb's physical slot",
					 ARMDB_SLOT_NAME);
			return HOLD_NONE;
		}
		if (slot != NULL)
			ReplicationSlotAcquire(ARMDB_SLOT_NAME, true);
		else
		{
			ReplicationSlotCreate(ARMDB_SLOT_NAME, false, RS_PERSISTENT, false);
			ReplicationSlotMarkDirty();
			ReplicationSlotSave();
			*created = true;
		}
	}

	/*
	 * The slot only as the checkpoint gate: it keeps no WAL, which a
	 * max_slot_wal_keep_size could take from it anyway.
	 */
	if (!keep_wal)
	{
		if (!XLogRecPtrIsInvalid(MyReplicationSlot->data.restart_lsn))
		{
			SpinLockAcquire(&MyReplicationSlot->mutex);
			MyReplicationSlot->data.restart_lsn = InvalidXLogRecPtr;
			SpinLockRelease(&MyReplicationSlot->mutex);
			slot_changed();
		}
		return HOLD_GATE;
	}

	/*
	 * New, kept as the gate only so far, or lost its WAL (invalidated):
	 * keep WAL from now on.  If commits relied on the WAL it lost, they
	 * sync again until a full round has synced what they did not.
	 */
	if (XLogRecPtrIsInvalid(MyReplicationSlot->data.restart_lsn))
	{
		if (pg_atomic_read_u32(&armdb_shared->lazy) != 0)
			set_lazy(false, "armdb's replication slot lost its WAL");
		ReplicationSlotReserveWal();
		slot_changed();
	}
	return HOLD_WAL;
}

static void
move_slot(XLogRecPtr lsn)
{
	if (MyReplicationSlot == NULL ||
		MyReplicationSlot->data.restart_lsn >= lsn)
		return;
	SpinLockAcquire(&MyReplicationSlot->mutex);
	MyReplicationSlot->data.restart_lsn = lsn;
	SpinLockRelease(&MyReplicationSlot->mutex);
	/* the next checkpoint saves it, before it removes any WAL */
	ReplicationSlotMarkDirty();
	ReplicationSlotsComputeRequiredLSN();
}

/* ----------------
 * The checkpoint gate
 * ----------------
 *
 * A base backup copies the data files after the checkpoint it starts from,
 * and replays WAL from that checkpoint's redo pointer: every entry whose
 * record lies before the redo pointer must be in its file (the page cache
 * will do) before the checkpoint completes, or the copy lacks it for good.
 * PostgreSQL 15 has no checkpoint hook, but every checkpoint, after it has
 * published its redo pointer, saves each dirty replication slot, taking the
 * slot's I/O lock (CheckPointReplicationSlots()).  The flusher keeps its
 * slot dirty and that lock held; a checkpoint that waits for it is let
 * through only after every loaded shard has written its buffered entries
 * (each appender logs its record and copies its entry under the shard
 * lock, so every record before the redo pointer has its entry in a buffer
 * by then).  The flusher never saves its slot itself while it holds the
 * lock: the checkpoint does, before it removes WAL.
 */


/* how often the flusher looks for a checkpoint at the gate */
#define GATE_POLL_MS		10

static void
write_out_keydir(ArmdbRelKeydir *kd, void *arg)
{
	armdb_vstore_write_out_all_shards(kd, (const ArmdbStoreSettings *) arg);
}

/*
 * The gate's lock is held for long stretches: unlike LWLocks held around a
 * short operation, it must not keep interrupts off (a SIGTERM, a DROP
 * DATABASE's barrier), so interrupts are allowed while it is held, and an
 * exit releases it (flusher_exit).
 */
static void
gate_lock_take(void)
{
	LWLockAcquire(&MyReplicationSlot->io_in_progress_lock, LW_EXCLUSIVE);
	RESUME_INTERRUPTS();
}

static void
gate_lock_give(void)
{
	HOLD_INTERRUPTS();
	LWLockRelease(&MyReplicationSlot->io_in_progress_lock);
}

static void
gate_close(void)
{
	if (armdb_durable_gate_held() || MyReplicationSlot == NULL)
		return;
	gate_lock_take();
	pg_atomic_write_u32(&armdb_shared->gate_held, 1);
	ReplicationSlotMarkDirty();
}

static void
gate_open(void)
{
	if (!armdb_durable_gate_held())
		return;

	/*
	 * Appenders write through from now on; what they buffered before goes
	 * out now, while no checkpoint can pass.  (The shard locks order the
	 * two: an appender that still saw the gate held released its shard
	 * before the write-out takes it.)
	 */
	pg_atomic_write_u32(&armdb_shared->gate_held, 0);
	pg_memory_barrier();
	armdb_keydir_foreach_loaded(write_out_keydir,
								(void *) armdb_store_settings());
	if (LWLockHeldByMe(&MyReplicationSlot->io_in_progress_lock))
		gate_lock_give();
}

/* If a checkpoint waits at the gate: write every buffered entry, let it by. */
static void
gate_pass_checkpoint(void)
{
	LWLock	   *lock;
	bool		dirty = true;

	if (!armdb_durable_gate_held())
		return;
	lock = &MyReplicationSlot->io_in_progress_lock;
	if ((pg_atomic_read_u32(&lock->state) & ARMDB_LW_FLAG_HAS_WAITERS) == 0)
		return;

	armdb_keydir_foreach_loaded(write_out_keydir,
								(void *) armdb_store_settings());

	/*
	 * Let the checkpoint save the slot, and wait until it has (it clears
	 * dirty, provided nobody dirtied the slot again meanwhile).  Taking the
	 * lock straight back may get it before the woken checkpointer: then
	 * let go again, a little later.
	 */
	SpinLockAcquire(&MyReplicationSlot->mutex);
	MyReplicationSlot->just_dirtied = false;
	SpinLockRelease(&MyReplicationSlot->mutex);
	for (int i = 0; i < 5000 && dirty; i++)
	{
		gate_lock_give();
		pg_usleep(i == 0 ? 100L : 1000L);
		gate_lock_take();
		SpinLockAcquire(&MyReplicationSlot->mutex);
		dirty = MyReplicationSlot->dirty;
		SpinLockRelease(&MyReplicationSlot->mutex);
	}
	ReplicationSlotMarkDirty();
}

int
armdb_durable_merge_begin(void)
{
	int			slot = -1;

	SpinLockAcquire(&armdb_shared->durable_mutex);
	for (int i = 0; i < ARMDB_MAX_LOGGING_MERGES && slot < 0; i++)
		if (XLogRecPtrIsInvalid(armdb_shared->merge_floors[i]))
			slot = i;
	if (slot >= 0)
		armdb_shared->merge_floors[slot] = GetXLogInsertRecPtr();
	SpinLockRelease(&armdb_shared->durable_mutex);

	/*
	 * A checkpoint whose redo pointer falls among the merge's records waits
	 * for its commit (CreateCheckPoint waits for DELAY_CHKPT_START after it
	 * sets the redo pointer).  Otherwise a base backup starting from it
	 * could copy the inputs, the merge's commit could remove them before
	 * the copy got to them, and the backup's replay, which begins after
	 * the first records, could not redo the merge: later merges replayed
	 * there would drop endings whose victims it still held.
	 */
	if (slot >= 0)
	{
		Assert((MyProc->delayChkptFlags & DELAY_CHKPT_START) == 0);
		MyProc->delayChkptFlags |= DELAY_CHKPT_START;
	}
	return slot;
}

void
armdb_durable_merge_end(int slot)
{
	if (slot < 0)
		return;
	MyProc->delayChkptFlags &= ~DELAY_CHKPT_START;
	SpinLockAcquire(&armdb_shared->durable_mutex);
	armdb_shared->merge_floors[slot] = InvalidXLogRecPtr;
	SpinLockRelease(&armdb_shared->durable_mutex);
}

/*
 * One round: sync every loaded shard.  Holding the slot, then move D and
 * the slot to where WAL was when the round began.  The slot keeps whole
 * WAL segments, so D moves (and the shards are synced) only once WAL has
 * entered a new segment since D, unless force says the slot was just
 * taken: syncing more often would buy nothing but I/O.  Without the slot,
 * commits sync their own files (lazy is off before the round begins, so
 * that every commit that did not sync has its entries appended by then):
 * once everything is synced, nothing is left to replay.
 */
static void
flush_round(bool slot_held, bool force)
{
	XLogRecPtr	upto = GetXLogInsertRecPtr();
	XLogRecPtr	durable;
	XLogSegNo	upto_seg;
	XLogSegNo	durable_seg;

	SpinLockAcquire(&armdb_shared->durable_mutex);
	durable = armdb_shared->durable_lsn;
	/* not past a merge being logged (armdb_durable_merge_begin) */
	for (int i = 0; i < ARMDB_MAX_LOGGING_MERGES; i++)
		if (!XLogRecPtrIsInvalid(armdb_shared->merge_floors[i]))
			upto = Min(upto, armdb_shared->merge_floors[i]);
	SpinLockRelease(&armdb_shared->durable_mutex);
	XLByteToSeg(upto, upto_seg, wal_segment_size);
	XLByteToSeg(durable, durable_seg, wal_segment_size);
	if (slot_held && !force && !XLogRecPtrIsInvalid(durable) &&
		(upto <= durable || upto_seg == durable_seg))
		return;
	/* without the slot: once, after commits relied on it */
	if (!slot_held && XLogRecPtrIsInvalid(durable))
		return;

	armdb_keydir_close_dropped_files();
	armdb_keydir_foreach_loaded(flush_keydir, (void *) armdb_store_settings());

	if (!slot_held)
	{
		if (!XLogRecPtrIsInvalid(durable))
			write_control(InvalidXLogRecPtr);
		return;
	}
	write_control(upto);
	move_slot(upto);
}

static void
flusher_exit(int code, Datum arg)
{
	/*
	 * Exiting: on an error, possibly holding LWLocks (a shard's, the keydir
	 * table's) that this process would wait for in gate_open's write-out.
	 * Nothing here is half-changed by an error, and they would be released
	 * later on the way out anyway.
	 */
	LWLockReleaseAll();
	gate_open();
	set_lazy(false, "the armdb flusher is not running");
}

void
armdb_flusher_main(Datum main_arg)
{
	bool		warned = false;
	bool		expect_slot;
	TimestampTz next_round = 0;
	TimestampTz next_release = 0;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	before_shmem_exit(flusher_exit, (Datum) 0);

	/* commits relied on the slot if a durable LSN was recorded */
	expect_slot = !XLogRecPtrIsInvalid(read_control());
	armdb_durable_startup_replay();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		gate_pass_checkpoint();

		if (GetCurrentTimestamp() >= next_round)
		{
			char		reason[256];
			bool		created;
			SlotHold	held;
			int			elevel;

			held = hold_slot(&created, &elevel, reason, sizeof(reason));
			if (held != HOLD_WAL)
			{
				/* commits sync from now on; the round syncs what they did not */
				set_lazy(false, reason);
				if (!warned)
					ereport(elevel,
							(errmsg("armdb commits sync their data files: %s", reason),
							 errhint("Set max_slot_wal_keep_size = -1, wal_level = replica or logical, and max_replication_slots > 0, so that commits need one WAL flush.")));
				warned = true;
			}
			if (held == HOLD_NONE)
			{
				gate_open();
				if (MyReplicationSlot != NULL)
					ReplicationSlotRelease();
			}
			else
			{
				if (created && expect_slot)
					ereport(WARNING,
							(errmsg("armdb's replication slot \"%s\" was missing and has been created again",
									ARMDB_SLOT_NAME),
							 errdetail("Every armdb data file is synced before commits rely on WAL again.")));
				expect_slot = held == HOLD_WAL;
				gate_close();
			}

			pgstat_report_activity(STATE_RUNNING, "flushing armdb data files");
			flush_round(held == HOLD_WAL,
						held == HOLD_WAL && pg_atomic_read_u32(&armdb_shared->lazy) == 0);
			pgstat_report_activity(STATE_IDLE, NULL);

			/* the slot keeps WAL from D on, and everything before D is synced */
			if (held == HOLD_WAL && pg_atomic_read_u32(&armdb_shared->lazy) == 0)
			{
				set_lazy(true, NULL);
				warned = false;
			}
			next_round = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 armdb_flush_interval_ms);
		}

		if ((armdb_store_settings()->write_buffer_idle_ms > 0 ||
			 armdb_keydir_idle_ms > 0) &&
			GetCurrentTimestamp() >= next_release)
		{
			ReleaseRound round;
			int			shortest;

			round.now = GetCurrentTimestamp();
			round.idle_ms = armdb_store_settings()->write_buffer_idle_ms;
			if (round.idle_ms > 0)
				armdb_keydir_foreach_loaded(release_keydir_buffers, &round);
			/* and the keydirs of small tables nobody uses */
			(void) armdb_keydir_evict_idle(round.now, armdb_keydir_idle_ms,
										   flush_keydir,
										   (void *) armdb_store_settings());
			shortest = round.idle_ms > 0 && armdb_keydir_idle_ms > 0 ?
				Min(round.idle_ms, armdb_keydir_idle_ms) :
				Max(round.idle_ms, armdb_keydir_idle_ms);
			next_release = TimestampTzPlusMilliseconds(round.now,
													   Min(RELEASE_ROUND_MS,
														   Max(shortest / 2, 10)));
		}

		/* short naps: a checkpoint waiting at the gate is let by soon */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 GATE_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
armdb_durable_init(void)
{
	DefineCustomBoolVariable("armdb.sync_at_commit",
							 "Sync the data files a transaction wrote before its commit record.",
							 "Off: a commit costs one WAL flush, and the armdb flusher syncs data files in the background.",
							 &armdb_sync_at_commit,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.flush_interval",
							"Time between two rounds of the armdb flusher.",
							"A round that finds WAL in a new segment syncs the data files and moves the durable LSN and armdb's replication slot.",
							&armdb_flush_interval_ms,
							200, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* soon back after an error: commits sync their files meanwhile */
	armdb_register_launcher("armdb_flusher_main", "armdb flusher", 1);
}

/* ----------------
 * SQL: armdb_wal_status()
 * ----------------
 */

Datum
armdb_wal_status_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	XLogRecPtr	durable;
	char		reason[256];
	bool		lazy = armdb_durable_lazy();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SpinLockAcquire(&armdb_shared->durable_mutex);
	durable = armdb_shared->durable_lsn;
	strlcpy(reason, armdb_shared->sync_reason, sizeof(reason));
	SpinLockRelease(&armdb_shared->durable_mutex);
	if (armdb_sync_at_commit)
		strlcpy(reason, "armdb.sync_at_commit is on", sizeof(reason));

	values[0] = CStringGetTextDatum(lazy ? "wal" : "commit");
	if (XLogRecPtrIsInvalid(durable))
		nulls[1] = true;
	else
		values[1] = LSNGetDatum(durable);
	if (lazy)
		nulls[2] = true;
	else
		values[2] = CStringGetTextDatum(reason);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
