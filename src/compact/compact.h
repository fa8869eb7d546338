/*-------------------------------------------------------------------------
 *
 * compact.h
 *	  Compaction of armdb tables (design §5): which entries a merge keeps,
 *	  the location swap, the reader horizon, statistics, and the background
 *	  workers that run it.
 *
 *	  compact.c		one relation at a time: armdb_compact_relation(), used
 *					by the workers and by SQL's armdb_compact(regclass)
 *	  worker.c		the launcher and per-database workers, GUCs, stats
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_COMPACT_H
#define ARMDB_COMPACT_H

#include "storage/lwlock.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* GUCs (worker.c) */
extern bool armdb_compaction;
extern int	armdb_compaction_naptime_s;
extern double armdb_compaction_threshold;
extern int	armdb_compaction_cost_delay_ms;
extern int	armdb_compaction_cost_limit;
extern int	armdb_compaction_crash_at;

/* test-only fault points: the merging process kills itself (SIGKILL) */
typedef enum ArmdbCompactCrashAt
{
	ARMDB_CRASH_NONE,
	ARMDB_CRASH_AFTER_COPY,		/* outputs written, not committed */
	ARMDB_CRASH_AFTER_LOG,		/* ... and in WAL, not committed */
	ARMDB_CRASH_AFTER_COMMIT,	/* manifest, outputs renamed, hints */
	ARMDB_CRASH_MID_SWAP,		/* half of the locations swapped */
	ARMDB_CRASH_AFTER_SWAP,		/* all swapped, inputs not removed */
	ARMDB_CRASH_AFTER_FINISH,	/* inputs removed */
	ARMDB_CRASH_CHECKPOINT_MID_LOG	/* a checkpoint request (it waits for
									 * the commit) and a flush round
									 * between the merge's first and last
									 * records, then as after_log */
} ArmdbCompactCrashAt;

/* What one call of armdb_compact_relation() did. */
typedef struct ArmdbCompactResult
{
	int			merges;			/* merge runs (at most one per shard) */
	int			files_in;		/* input files */
	int			files_out;		/* output files */
	int64		entries_read;
	int64		entries_kept;
	int64		bytes_before;	/* of the input files */
	int64		bytes_after;	/* of the output files */
	double		duration_ms;
} ArmdbCompactResult;

/* A committed merge whose inputs are still to be removed. */
typedef struct ArmdbPendingFinish
{
	char		dir[MAXPGPATH];
	uint32		manifest_id;
	uint32		shard;
} ArmdbPendingFinish;

#define ARMDB_MAX_PENDING_FINISH	256

/*
 * Merge, in every shard of rel, the files over armdb.compaction_threshold
 * (with force, every immutable file with any dead bytes, finishing the
 * merges itself -- readers waited for, the lock held -- every 16 merges of
 * a shard).  The caller holds ShareUpdateExclusiveLock on rel.  A failed
 * merge is undone,
 * reported (WARNING for corruption, LOG otherwise) and counted; it does
 * not stop the other shards.  Returns the number of merges in pending
 * (ARMDB_MAX_PENDING_FINISH entries), whose inputs armdb_compact_finish()
 * removes -- after the relation lock is released, if the caller can:
 * waiting for readers while holding it could deadlock with one that waits
 * for the lock.
 */
extern int	armdb_compact_relation(Relation rel, bool force,
								   ArmdbCompactResult *result,
								   ArmdbPendingFinish *pending);

/*
 * Bring every shard's file list up to date (files started since, sizes,
 * lowest gsns); the caller holds a lock on the relation.  Nothing on a
 * standby, where replay keeps them.
 */
struct ArmdbRelKeydir;
extern void armdb_compact_sync_files(struct ArmdbRelKeydir *kd);

/* Has a shard of kd a file to merge?  (filter of armdb_keydir_databases) */
extern bool armdb_compact_keydir_has_work(struct ArmdbRelKeydir *kd, void *arg);

/* Has data file file_id of shard a hint file? */
extern bool armdb_compact_file_has_hint(struct ArmdbRelKeydir *kd,
										uint32 shard, uint32 file_id);

/* Wait for the reader horizon, then remove the merges' inputs. */
extern void armdb_compact_finish(const ArmdbPendingFinish *pending,
								 int npending);

/* ----------------
 * Statistics, in shared memory (worker.c)
 * ----------------
 */
typedef struct ArmdbCompactStats
{
	int64		runs;			/* merges committed */
	int64		failures;		/* merges undone by an error */
	int64		crc_errors;		/* of those, a bad entry in an input */
	int64		files_merged;
	int64		files_written;
	int64		entries_moved;
	int64		bytes_read;
	int64		bytes_written;
	int64		bytes_reclaimed;
	double		last_duration_ms;
	TimestampTz last_run;
	TimestampTz last_error_time;
	char		last_error[256];
} ArmdbCompactStats;

extern void armdb_compact_stats_add(const ArmdbCompactStats *delta,
									const char *error);
extern void armdb_compact_stats_get(ArmdbCompactStats *out);

/* Is the compaction launcher up, with armdb.compaction on? (worker.c) */
extern bool armdb_compact_worker_running(void);

/* _PG_init: GUCs, shared memory, the launcher (worker.c) */
extern void armdb_compact_init(void);

/*
 * Called by armdb_wal_log_merge between a merge's first record and the
 * rest: the checkpoint_mid_log fault point (test only).
 */
extern void armdb_compact_fault_mid_log(void);

#endif							/* ARMDB_COMPACT_H */
