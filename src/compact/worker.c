/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The compaction background workers, their settings and statistics,
 *	  and the SQL functions armdb_compact() and armdb_compaction_stats().
 *
 * The launcher ("armdb compaction launcher", connected to no database)
 * wakes every armdb.compaction_naptime (or when its latch is set) and, for
 * every database that has armdb tables loaded in the key directory, starts
 * one "armdb compaction worker" connected to that database and waits for
 * it.  A worker compacts each loaded armdb table of its database under
 * ShareUpdateExclusiveLock, taken without waiting (a table being vacuumed,
 * altered or compacted by armdb_compact() is skipped until the next round),
 * commits, then waits for the readers of the merged files and removes them
 * (compact.c).  Databases created after start-up are served like the
 * others: the key directory says which databases have armdb tables in use.
 * Tables not read or written since the server started are not in the key
 * directory, and are compacted once they are used.
 *
 * Both are restarted after a crash like any static background worker; a
 * worker that fails only loses its round.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_workers.h"
#include "compact/compact.h"
#include "keydir/keydir.h"

/* GUCs */
bool		armdb_compaction = true;
int			armdb_compaction_naptime_s = 10;
double		armdb_compaction_threshold = 0.3;
int			armdb_compaction_cost_delay_ms = 2;
int			armdb_compaction_cost_limit = 200;
int			armdb_compaction_crash_at = ARMDB_CRASH_NONE;

static const struct config_enum_entry crash_at_options[] = {
	{"none", ARMDB_CRASH_NONE, false},
	{"after_copy", ARMDB_CRASH_AFTER_COPY, false},
	{"after_log", ARMDB_CRASH_AFTER_LOG, false},
	{"after_commit", ARMDB_CRASH_AFTER_COMMIT, false},
	{"mid_swap", ARMDB_CRASH_MID_SWAP, false},
	{"after_swap", ARMDB_CRASH_AFTER_SWAP, false},
	{"after_finish", ARMDB_CRASH_AFTER_FINISH, false},
	{"checkpoint_mid_log", ARMDB_CRASH_CHECKPOINT_MID_LOG, false},
	{NULL, 0, false}
};

typedef struct ArmdbCompactShared
{
	LWLock	   *lock;			/* protects everything below */
	ArmdbCompactStats stats;
	Latch	   *launcher_latch; /* to wake the launcher, or NULL */
	Oid			worker_db;		/* the database of the running worker */
} ArmdbCompactShared;

static ArmdbCompactShared *compact_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PGDLLEXPORT void armdb_compact_launcher_main(Datum main_arg);
PGDLLEXPORT void armdb_compact_worker_main(Datum main_arg);

static void
compact_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ArmdbCompactShared)));
	RequestNamedLWLockTranche("armdb compaction", 1);
}

static void
compact_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	compact_shared = ShmemInitStruct("armdb compaction",
									 sizeof(ArmdbCompactShared), &found);
	if (!found)
	{
		memset(compact_shared, 0, sizeof(ArmdbCompactShared));
		compact_shared->lock = &(GetNamedLWLockTranche("armdb compaction"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
armdb_compact_stats_add(const ArmdbCompactStats *d, const char *error)
{
	ArmdbCompactStats *s = &compact_shared->stats;

	LWLockAcquire(compact_shared->lock, LW_EXCLUSIVE);
	s->runs += d->runs;
	s->failures += d->failures;
	s->crc_errors += d->crc_errors;
	s->files_merged += d->files_merged;
	s->files_written += d->files_written;
	s->entries_moved += d->entries_moved;
	s->bytes_read += d->bytes_read;
	s->bytes_written += d->bytes_written;
	s->bytes_reclaimed += d->bytes_reclaimed;
	if (d->runs > 0)
	{
		s->last_duration_ms = d->last_duration_ms;
		s->last_run = GetCurrentTimestamp();
	}
	if (error != NULL)
	{
		strlcpy(s->last_error, error, sizeof(s->last_error));
		s->last_error_time = GetCurrentTimestamp();
	}
	LWLockRelease(compact_shared->lock);
}

/*
 * Read without the lock: every append asks, and a stale answer only moves
 * one hint file's building between a backend and the worker.
 */
bool
armdb_compact_worker_running(void)
{
	if (!armdb_compaction || compact_shared == NULL)
		return false;
	return ((volatile ArmdbCompactShared *) compact_shared)->launcher_latch != NULL;
}

/* The launcher is gone: backends build their sealed files' hints again. */
static void
launcher_exit(int code, Datum arg)
{
	LWLockAcquire(compact_shared->lock, LW_EXCLUSIVE);
	compact_shared->launcher_latch = NULL;
	LWLockRelease(compact_shared->lock);
}

void
armdb_compact_stats_get(ArmdbCompactStats *out)
{
	LWLockAcquire(compact_shared->lock, LW_SHARED);
	*out = compact_shared->stats;
	LWLockRelease(compact_shared->lock);
}

void
armdb_compact_init(void)
{
	DefineCustomBoolVariable("armdb.compaction",
							 "Run the armdb compaction background worker.",
							 "Off: no table is compacted except by armdb_compact().",
							 &armdb_compaction,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.compaction_naptime",
							"Time the armdb compaction launcher sleeps between rounds.",
							NULL,
							&armdb_compaction_naptime_s,
							10, 1, 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomRealVariable("armdb.compaction_threshold",
							 "Fraction of dead bytes above which an armdb data file is merged.",
							 NULL,
							 &armdb_compaction_threshold,
							 0.3, 0.0, 1.0,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.compaction_cost_delay",
							"Sleep of armdb compaction each time it has used up its cost limit.",
							"Reading 8 kB costs 1, writing 8 kB costs 2; 0 turns the delay off.",
							&armdb_compaction_cost_delay_ms,
							2, 0, 100,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.compaction_cost_limit",
							"Cost armdb compaction accumulates before it sleeps.",
							NULL,
							&armdb_compaction_cost_limit,
							200, 1, 10000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("armdb.debug_compaction_crash_at",
							 "Test only: a merge kills its own process at this step.",
							 NULL,
							 &armdb_compaction_crash_at,
							 ARMDB_CRASH_NONE, crash_at_options,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = compact_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = compact_shmem_startup;

	armdb_register_launcher("armdb_compact_launcher_main",
							"armdb compaction launcher", 10);
}

static void
process_reload(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
armdb_compact_launcher_main(Datum main_arg)
{
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(compact_shared->lock, LW_EXCLUSIVE);
	compact_shared->launcher_latch = MyLatch;
	LWLockRelease(compact_shared->lock);
	before_shmem_exit(launcher_exit, (Datum) 0);

	for (;;)
	{
		Oid		   *dbs;
		int			ndbs;
		double		threshold;

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 armdb_compaction_naptime_s * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		process_reload();
		if (!armdb_compaction)
			continue;

		threshold = armdb_compaction_threshold;
		dbs = armdb_keydir_databases(&ndbs, armdb_compact_keydir_has_work,
									 &threshold);
		for (int i = 0; i < ndbs; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pgstat_report_activity(STATE_RUNNING,
								   psprintf("compacting database %u", dbs[i]));
			(void) armdb_run_database_worker("armdb_compact_worker_main",
											 "armdb compaction worker",
											 "armdb compaction", dbs[i],
											 "Its tables are compacted in a later round.");
		}
		pfree(dbs);
	}
}

/*
 * The armdb tables of this database whose storage has a loaded keydir
 * (their OIDs, a list in mcxt).
 */
static List *
loaded_tables(MemoryContext mcxt)
{
	Oid			amoid = get_table_am_oid("armdb", true);
	int			nrels;
	Oid		   *relnodes = armdb_keydir_relnodes(MyDatabaseId, &nrels);
	List	   *result = NIL;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(amoid) || nrels == 0)
		return NIL;
	rel = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

		if (form->relam != amoid || form->relpersistence == RELPERSISTENCE_TEMP)
			continue;
		for (int i = 0; i < nrels; i++)
			if (relnodes[i] == form->relfilenode)
			{
				MemoryContext oldcontext = MemoryContextSwitchTo(mcxt);

				result = lappend_oid(result, form->oid);
				MemoryContextSwitchTo(oldcontext);
				break;
			}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	pfree(relnodes);
	return result;
}

void
armdb_compact_worker_main(Datum main_arg)
{
	Oid			db = DatumGetObjectId(main_arg);
	List	   *tables;
	ListCell   *lc;
	ArmdbPendingFinish *pending;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* compacting a table is no reason to keep its keydir (keydir.c) */
	armdb_keydir_use_counts = false;
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	pending = palloc(sizeof(ArmdbPendingFinish) * ARMDB_MAX_PENDING_FINISH);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	tables = loaded_tables(TopMemoryContext);	/* outlives the transaction */
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		ArmdbCompactResult result;
		int			npending = 0;

		CHECK_FOR_INTERRUPTS();
		process_reload();
		if (!armdb_compaction)
			break;
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (ConditionalLockRelationOid(relid, ShareUpdateExclusiveLock))
		{
			Relation	rel = try_relation_open(relid, NoLock);

			if (rel != NULL)
			{
				if (armdb_is_armdb_relation(rel) &&
					rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP)
					npending = armdb_compact_relation(rel, false, &result,
													  pending);
				relation_close(rel, NoLock);
			}
		}
		/* the lock goes with the commit: readers are waited for without it */
		CommitTransactionCommand();
		if (npending > 0)
		{
			StartTransactionCommand();
			armdb_compact_finish(pending, npending);
			CommitTransactionCommand();
		}
	}
	proc_exit(0);
}

/* ----------------
 * SQL functions
 * ----------------
 */
PG_FUNCTION_INFO_V1(armdb_compact_sql);
PG_FUNCTION_INFO_V1(armdb_compaction_stats_sql);

/*
 * armdb_compact(regclass): compact a table now (files with any dead bytes)
 * and say what was done.
 */
Datum
armdb_compact_sql(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	ArmdbCompactResult r;
	ArmdbPendingFinish *pending;
	int			npending;
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rel = relation_open(relid, ShareUpdateExclusiveLock);
	if (!armdb_is_armdb_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an armdb table",
						RelationGetRelationName(rel))));
	pending = palloc(sizeof(ArmdbPendingFinish) * ARMDB_MAX_PENDING_FINISH);
	npending = armdb_compact_relation(rel, true, &r, pending);
	armdb_compact_finish(pending, npending);
	relation_close(rel, NoLock);

	values[0] = Int32GetDatum(r.merges);
	values[1] = Int32GetDatum(r.files_in);
	values[2] = Int32GetDatum(r.files_out);
	values[3] = Int64GetDatum(r.entries_kept);
	values[4] = Int64GetDatum(r.bytes_before);
	values[5] = Int64GetDatum(r.bytes_after);
	values[6] = Float8GetDatum(r.duration_ms);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* armdb_compaction_stats(): what compaction has done since start-up. */
Datum
armdb_compaction_stats_sql(PG_FUNCTION_ARGS)
{
	ArmdbCompactStats s;
	TupleDesc	tupdesc;
	Datum		values[13];
	bool		nulls[13] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	armdb_compact_stats_get(&s);
	values[0] = Int64GetDatum(s.runs);
	values[1] = Int64GetDatum(s.failures);
	values[2] = Int64GetDatum(s.crc_errors);
	values[3] = Int64GetDatum(s.files_merged);
	values[4] = Int64GetDatum(s.files_written);
	values[5] = Int64GetDatum(s.entries_moved);
	values[6] = Int64GetDatum(s.bytes_read);
	values[7] = Int64GetDatum(s.bytes_written);
	values[8] = Int64GetDatum(s.bytes_reclaimed);
	values[9] = Float8GetDatum(s.last_duration_ms);
	nulls[9] = s.runs == 0;
	values[10] = TimestampTzGetDatum(s.last_run);
	nulls[10] = s.runs == 0;
	values[11] = CStringGetTextDatum(s.last_error);
	nulls[11] = s.last_error[0] == '\0';
	values[12] = TimestampTzGetDatum(s.last_error_time);
	nulls[12] = s.last_error[0] == '\0';
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
