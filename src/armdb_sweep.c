/*-------------------------------------------------------------------------
 *
 * armdb_sweep.c
 *	  The post-recovery sweep: background workers that remove the armdb
 *	  storage a crash left behind, judged by each database's catalogs.
 *
 * Nothing may remove a permanent relation's armdb directory before WAL redo
 * has finished (design §5a): the main fork file of a table created after
 * the last checkpoint may be lost in a power cut, and only redo of its
 * XLOG_SMGR_CREATE record brings it back, so the file's absence proves
 * nothing.  The postmaster therefore only lists, before redo, the relation
 * directories present at start-up (relstorage.c), and the workers below
 * decide afterwards which of those are leftovers: the storage of a relation
 * whose creating transaction died in the crash, of a drop whose commit was
 * the last thing before it, of a database that no longer exists.
 *
 * The launcher ("armdb sweep launcher", connected to no database) starts
 * once recovery has finished.  It reads pg_database: the listed directories
 * of a database that no longer exists go at once; for every other database
 * with listed directories it starts one "armdb sweep worker" connected to
 * that database (also when it does not allow connections) and waits for it.
 * A worker reads pg_class with SnapshotAny and keeps every relfilenode of a
 * row that is live, or inserted or deleted by a transaction in progress or
 * prepared; a row that is dead, or deleted by a committed transaction,
 * vouches for nothing.  Only a listed directory whose relfilenode no other
 * row names is removed.
 *
 * Users are connected while this runs.  A relation's armdb directory is made
 * before its pg_class row is inserted, so the catalogs cannot vouch for
 * storage made since the start: only listed directories are candidates, and
 * only while each is still the very directory listed (relstorage.c checks
 * its inode and change time, under ArmdbSweepLock, which creating storage
 * holds too).
 *
 * A database whose worker could not be started (max_worker_processes) or
 * did not finish keeps its directories; the launcher tries again every
 * SWEEP_RETRY_MS, SWEEP_ROUNDS times in all.  After its sweep the launcher
 * stays, idle, until shutdown: a static background worker that exits is
 * forgotten by the postmaster, and the sweep must run again after a crash
 * restart (restart_after_crash), which restarts the launcher.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/subtrans.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "armdb_load.h"
#include "armdb_sweep.h"
#include "armdb_workers.h"
#include "keydir/image.h"
#include "keydir/relstorage.h"

#define SWEEP_ROUNDS		6
#define SWEEP_RETRY_MS		10000

/* GUC: how long the launcher waits before it sweeps (tests use it) */
static int	armdb_sweep_delay_ms = 0;

/*
 * Shared state: the lock, and the report of the one worker the launcher
 * runs at a time.
 */
typedef struct ArmdbSweepShared
{
	LWLock	   *lock;			/* ArmdbSweepLock; also protects the rest */
	Oid			worker_db;		/* the database being swept */
	bool		worker_done;	/* its worker got to the end */
	int			worker_removed; /* directories it removed */
} ArmdbSweepShared;

static ArmdbSweepShared *sweep_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PGDLLEXPORT void armdb_sweep_launcher_main(Datum main_arg);
PGDLLEXPORT void armdb_sweep_worker_main(Datum main_arg);

static void
sweep_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ArmdbSweepShared)));
	RequestNamedLWLockTranche("armdb sweep", 1);
}

static void
sweep_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sweep_shared = ShmemInitStruct("armdb sweep", sizeof(ArmdbSweepShared),
								   &found);
	if (!found)
	{
		memset(sweep_shared, 0, sizeof(ArmdbSweepShared));
		sweep_shared->lock = &(GetNamedLWLockTranche("armdb sweep"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

LWLock *
armdb_sweep_lock(void)
{
	return sweep_shared->lock;
}

void
armdb_sweep_init(void)
{
	DefineCustomIntVariable("armdb.sweep_delay",
							"Time the post-recovery sweep of armdb storage waits before it starts.",
							"For tests: storage made while the sweep waits must survive it.",
							&armdb_sweep_delay_ms,
							0, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sweep_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sweep_shmem_startup;

	armdb_register_launcher("armdb_sweep_launcher_main", "armdb sweep launcher",
							10);
}

static int
oid_cmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Does a catalog tuple still say anything?  Dead tuples and tuples deleted
 * by a committed transaction (RECENTLY_DEAD) do not; a tuple inserted or
 * deleted by a transaction in progress or prepared does, since that
 * transaction may still commit or roll back.
 */
static bool
tuple_counts(HeapScanDesc hscan, HeapTuple tuple, TransactionId oldest_xmin)
{
	HTSV_Result res = HeapTupleSatisfiesVacuum(tuple, oldest_xmin,
											   hscan->rs_cbuf);

	return res != HEAPTUPLE_DEAD && res != HEAPTUPLE_RECENTLY_DEAD;
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

/* Sleep ms milliseconds, leaving at once on SIGTERM or postmaster death. */
static void
sweep_sleep(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		process_reload();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

typedef enum DatabaseState
{
	DB_GONE,					/* no tuple in pg_database says it exists */
	DB_EXISTS,
	DB_INVALID					/* an interrupted DROP DATABASE */
} DatabaseState;

/* The state of each of the ndbs databases dbs (ascending) in pg_database. */
static void
database_states(const Oid *dbs, int ndbs, DatabaseState *states)
{
	Relation	rel;
	TableScanDesc scan;
	HeapScanDesc hscan;
	HeapTuple	tuple;
	TransactionId oldest_xmin;

	for (int i = 0; i < ndbs; i++)
		states[i] = DB_GONE;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	scan = table_beginscan_strat(rel, SnapshotAny, 0, NULL, true, false);
	hscan = (HeapScanDesc) scan;
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form;
		Oid		   *found;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_SHARE);
		form = (Form_pg_database) GETSTRUCT(tuple);
		found = bsearch(&form->oid, dbs, ndbs, sizeof(Oid), oid_cmp);
		if (found != NULL && tuple_counts(hscan, tuple, oldest_xmin))
		{
			DatabaseState *state = &states[found - dbs];

			/* an invalid database becomes valid only through DROP DATABASE */
			if (*state != DB_INVALID)
				*state = database_is_invalid_form(form) ? DB_INVALID : DB_EXISTS;
		}
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_UNLOCK);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
}

/*
 * Sweep database db in a worker connected to it.  True if the worker got
 * to the end; *removed is what it removed.
 */
static bool
run_worker(Oid db, int *removed)
{
	bool		done;

	*removed = 0;
	LWLockAcquire(sweep_shared->lock, LW_EXCLUSIVE);
	sweep_shared->worker_db = db;
	sweep_shared->worker_done = false;
	sweep_shared->worker_removed = 0;
	LWLockRelease(sweep_shared->lock);

	if (!armdb_run_database_worker("armdb_sweep_worker_main",
								   "armdb sweep worker", "armdb sweep", db,
								   "The database's leftover armdb storage stays until a sweep succeeds."))
		return false;

	LWLockAcquire(sweep_shared->lock, LW_EXCLUSIVE);
	done = sweep_shared->worker_db == db && sweep_shared->worker_done;
	*removed = sweep_shared->worker_removed;
	sweep_shared->worker_db = InvalidOid;
	LWLockRelease(sweep_shared->lock);

	if (!done)
		ereport(LOG,
				(errmsg("armdb sweep: the worker for database %u did not finish",
						db),
				 errdetail("The database's leftover armdb storage stays until a sweep succeeds.")));
	return done;
}

/* The launcher: one sweep after recovery, then idle until shutdown. */
void
armdb_sweep_launcher_main(Datum main_arg)
{
	Oid		   *dbs;
	int			ndbs;
	int			npending;
	bool	   *pending;
	DatabaseState *states;
	int			nlisted = 0;
	int			removed = 0;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	if (armdb_sweep_delay_ms > 0)
		sweep_sleep(armdb_sweep_delay_ms);
	pgstat_report_activity(STATE_RUNNING, "sweeping leftover armdb storage");

	dbs = armdb_rel_storage_listed_databases(&ndbs);
	pending = palloc(Max(ndbs, 1) * sizeof(bool));
	states = palloc(Max(ndbs, 1) * sizeof(DatabaseState));
	for (int i = 0; i < ndbs; i++)
	{
		int			nrels;

		pfree(armdb_rel_storage_listed_relnodes(dbs[i], &nrels));
		nlisted += nrels;
		pending[i] = true;
	}
	npending = ndbs;

	for (int round = 1; npending > 0; round++)
	{
		database_states(dbs, ndbs, states);
		for (int i = 0; i < ndbs; i++)
		{
			int			nremoved = 0;

			if (!pending[i])
				continue;
			CHECK_FOR_INTERRUPTS();
			if (states[i] == DB_GONE)
			{
				int			nrels;
				Oid		   *rels = armdb_rel_storage_listed_relnodes(dbs[i], &nrels);
				char	   *why = psprintf("database %u no longer exists", dbs[i]);

				for (int j = 0; j < nrels; j++)
					if (armdb_rel_storage_remove_leftover(dbs[i], rels[j], why))
						nremoved++;
				armdb_rel_storage_remove_database_dir(dbs[i]);
				pfree(why);
				pfree(rels);
			}
			else if (states[i] == DB_INVALID)
				ereport(LOG,
						(errmsg("armdb sweep: skipping database %u, which is invalid",
								dbs[i]),
						 errhint("DROP DATABASE removes it and its armdb storage.")));
			else if (!run_worker(dbs[i], &nremoved))
				continue;		/* try again in the next round */
			removed += nremoved;
			pending[i] = false;
			npending--;
		}
		if (npending == 0)
			break;
		if (round == SWEEP_ROUNDS)
		{
			ereport(LOG,
					(errmsg("armdb sweep: gave up on %d databases after %d attempts",
							npending, round),
					 errdetail("Their leftover armdb storage stays until the sweep after the next server start.")));
			break;
		}
		sweep_sleep(SWEEP_RETRY_MS);
	}

	ereport(LOG,
			(errmsg("armdb sweep: finished: removed %d of the %d armdb relation directories present at start-up",
					removed, nlisted)));

	/* then the key directories of the databases left (armdb_load.c) */
	if (armdb_load_workers > 0)
	{
		pfree(dbs);
		dbs = armdb_rel_storage_listed_databases(&ndbs);
		states = repalloc(states, Max(ndbs, 1) * sizeof(DatabaseState));
		database_states(dbs, ndbs, states);
		for (int i = 0; i < ndbs; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (states[i] == DB_EXISTS)
				armdb_load_database(dbs[i]);
		}
	}
	pgstat_report_activity(STATE_IDLE, "swept and loaded; waiting for shutdown");

	/*
	 * From here a SIGTERM is the shutdown (a SIGTERM before it ended the
	 * worker at the CHECK_FOR_INTERRUPTS above): the launcher then saves the
	 * key directories for the next start (keydir/image.c), once everything
	 * else that could use them has exited.  An immediate shutdown or a
	 * crash sends SIGQUIT instead, and saves nothing.
	 */
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	while (!ShutdownRequestPending)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		process_reload();
	}
	pgstat_report_activity(STATE_RUNNING, "saving key directories for the next start");
	if (!armdb_keydir_images_write())
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("terminating background worker \"%s\" due to administrator command",
						MyBgworkerEntry->bgw_type)));
	proc_exit(0);
}

/*
 * The relfilenodes of the pg_class rows that pred accepts (called with the
 * row's buffer share-locked), ascending, with duplicates.  pg_class is read
 * with SnapshotAny; the caller is in a transaction.
 */
typedef bool (*RowPredicate) (HeapScanDesc hscan, HeapTuple tuple, void *arg);

static Oid *
relfilenodes_where(RowPredicate pred, void *arg, int *n)
{
	Relation	rel;
	TableScanDesc scan;
	HeapScanDesc hscan;
	HeapTuple	tuple;
	int			max = 1024;
	Oid		   *found = palloc(max * sizeof(Oid));

	*n = 0;
	rel = table_open(RelationRelationId, AccessShareLock);
	scan = table_beginscan_strat(rel, SnapshotAny, 0, NULL, true, false);
	hscan = (HeapScanDesc) scan;
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Oid			relfilenode;
		bool		match;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_SHARE);
		/* mapped relations (relfilenode 0) are never armdb's */
		relfilenode = ((Form_pg_class) GETSTRUCT(tuple))->relfilenode;
		match = OidIsValid(relfilenode) && pred(hscan, tuple, arg);
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_UNLOCK);
		if (!match)
			continue;
		if (*n == max)
		{
			max *= 2;
			found = repalloc(found, max * sizeof(Oid));
		}
		found[(*n)++] = relfilenode;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	qsort(found, *n, sizeof(Oid), oid_cmp);
	return found;
}

static bool
row_counts(HeapScanDesc hscan, HeapTuple tuple, void *arg)
{
	return tuple_counts(hscan, tuple, *(TransactionId *) arg);
}

/*
 * The relfilenodes of pg_class rows that count (live, in progress or
 * prepared: tuple_counts()), ascending.
 */
Oid *
armdb_sweep_used_relfilenodes(int *nused)
{
	Relation	rel = table_open(RelationRelationId, AccessShareLock);
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	Oid		   *used = relfilenodes_where(row_counts, &oldest_xmin, nused);

	table_close(rel, AccessShareLock);
	return used;
}

/* Did transaction xid, or one of its subtransactions, write x? */
static bool
written_by(TransactionId x, TransactionId xid)
{
	if (!TransactionIdIsNormal(x) || TransactionIdPrecedes(x, xid))
		return false;
	if (TransactionIdEquals(x, xid))
		return true;
	/* a subtransaction's id follows its parent's */
	return TransactionIdFollowsOrEquals(x, TransactionXmin) &&
		TransactionIdEquals(SubTransGetTopmostTransaction(x), xid);
}

static bool
row_written_by(HeapScanDesc hscan, HeapTuple tuple, void *arg)
{
	TransactionId xid = *(TransactionId *) arg;

	return written_by(HeapTupleHeaderGetXmin(tuple->t_data), xid) ||
		(!(tuple->t_data->t_infomask & HEAP_XMAX_IS_MULTI) &&
		 written_by(HeapTupleHeaderGetRawXmax(tuple->t_data), xid));
}

/*
 * The relfilenodes of the pg_class rows transaction xid (a prepared one,
 * say) inserted or deleted, ascending, with duplicates: the storage its
 * outcome decides about.  Runs in a transaction.
 */
Oid *
armdb_sweep_relfilenodes_of_xact(TransactionId xid, int *n)
{
	return relfilenodes_where(row_written_by, &xid, n);
}

/* A worker: sweep the listed directories of the database it is started for. */
void
armdb_sweep_worker_main(Datum main_arg)
{
	Oid			db = DatumGetObjectId(main_arg);
	Oid		   *rels;
	Oid		   *used;
	int			nrels;
	int			nused;
	int			removed = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* template0 and others that refuse connections may have leftovers too */
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_activity(STATE_RUNNING, "sweeping leftover armdb storage");

	rels = armdb_rel_storage_listed_relnodes(db, &nrels);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	{
		/* made in the transaction's memory: kept past its commit */
		Oid		   *in_xact = armdb_sweep_used_relfilenodes(&nused);

		used = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(nused, 1));
		memcpy(used, in_xact, sizeof(Oid) * nused);
	}
	CommitTransactionCommand();

	for (int i = 0; i < nrels; i++)
	{
		char	   *why;

		CHECK_FOR_INTERRUPTS();
		if (bsearch(&rels[i], used, nused, sizeof(Oid), oid_cmp) != NULL)
			continue;
		why = psprintf("no relation of database %u has relfilenode %u",
					   db, rels[i]);
		if (armdb_rel_storage_remove_leftover(db, rels[i], why))
			removed++;
		pfree(why);
	}

	LWLockAcquire(sweep_shared->lock, LW_EXCLUSIVE);
	if (sweep_shared->worker_db == db)
	{
		sweep_shared->worker_done = true;
		sweep_shared->worker_removed = removed;
	}
	LWLockRelease(sweep_shared->lock);
	proc_exit(0);
}
