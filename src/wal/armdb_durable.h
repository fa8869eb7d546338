/*-------------------------------------------------------------------------
 *
 * armdb_durable.h
 *	  Durability from WAL (design §4b, item 4): commits leave the data files
 *	  unsynced; a background flusher syncs them and records how far WAL no
 *	  longer needs to be kept (the durable LSN), an armdb replication slot
 *	  keeps WAL from there, and a start-up replays what the files may have
 *	  lost.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_DURABLE_H
#define ARMDB_DURABLE_H

#include "access/xlogdefs.h"
#include "access/xlogreader.h"
#include "catalog/pg_control.h"

#define ARMDB_SLOT_NAME			"armdb"

/* GUCs */
extern bool armdb_sync_at_commit;
extern int	armdb_flush_interval_ms;

/* armdb.c: define the GUCs and register the flusher */
extern void armdb_durable_init(void);

/*
 * armdb.c, at shared memory creation; in the postmaster, with pg_control as
 * it was before the startup process changes it (else NULL)
 */
extern void armdb_durable_shmem_init(const ControlFileData *control,
									 bool crc_ok);

/*
 * May this commit leave its entries of WAL-logged relations unsynced?  True
 * once the flusher holds the slot and has flushed everything once.
 */
extern bool armdb_durable_lazy(void);

/*
 * Does the flusher hold the checkpoint gate?  While it does not (before its
 * first round, between a failure and its restart, or for good when no slot
 * can exist), appenders write their entries through to the file at once
 * (armdb_vstore_append_end), so that a checkpoint still finds every entry
 * of a record before its redo pointer in its file.  Appenders read it
 * under a shard lock, which orders it against the flusher's write-out when
 * it opens the gate; the flusher, its only writer, keeps no other record
 * of whether it holds the gate.
 */
extern bool armdb_durable_gate_held(void);

/*
 * Before the first use of armdb storage after a start without WAL replay
 * of its own (clean shutdown, crash with nothing to redo): replay armdb's
 * records from the durable LSN to where the server started.  Cheap after
 * the first call.
 */
extern void armdb_durable_startup_replay(void);

/* the rmgr's rm_startup and rm_cleanup (armdb_wal.c) */
extern void armdb_durable_redo_startup(void);
extern void armdb_durable_redo_cleanup(void);

/*
 * A merge is about to log its records (armdb_wal_log_merge) and commit:
 * until armdb_durable_merge_end, the durable LSN stays below its first
 * record, so that a crash recovery's own replay from there sees all of
 * them, and no checkpoint completes (DELAY_CHKPT_START), so that no
 * recovery -- after a crash, or of a base backup, whose copy begins after
 * its checkpoint -- starts between them.  Returns the slot to give back,
 * or -1 when ARMDB_MAX_LOGGING_MERGES are logging.
 */
extern int	armdb_durable_merge_begin(void);
extern void armdb_durable_merge_end(int slot);

/*
 * Archive recovery (a standby): before replaying record, note that the data
 * files may hold its entries; after a restart, hot-standby loads wait
 * (armdb_durable_wait_for_replay) until replay has passed what was noted.
 */
extern void armdb_durable_note_replay(XLogReaderState *record);
extern void armdb_durable_wait_for_replay(void);

/* replay found an entry in place in path: sync the file once per replay */
extern void armdb_durable_sync_found_complete(const char *path);

#endif							/* ARMDB_DURABLE_H */
