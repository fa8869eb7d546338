/*-------------------------------------------------------------------------
 *
 * armdb_load.c
 *	  Loading the key directories of armdb tables in the background after
 *	  the server starts.
 *
 * A key directory is otherwise built from its table's files by the first
 * query that needs it (keydir.c), which then pays for reading every hint
 * file and scanning every active file.  Once the sweep after start-up is
 * done (armdb_sweep.c), its launcher starts armdb.load_workers workers per
 * database, one database after another, that load the database's armdb
 * tables, largest first (by relpages), taking every load_workers-th table
 * each, so that the large tables load side by side.
 *
 * A loader takes the table's AccessShareLock without waiting (a table
 * being altered is left to its first query), and never fills
 * armdb.memory: it stops once half of it is used, so that what users write
 * always finds room.  A query that needs a table while a loader is loading
 * it waits for the load to finish, on the keydir's lock: pg_stat_activity
 * shows wait_event_type LWLock, wait_event "armdb keydir".  A load that
 * fails (a damaged file, say) is logged, and the table's first query tries
 * again and reports the error to its user.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_load.h"
#include "armdb_workers.h"
#include "keydir/keydir.h"

PGDLLEXPORT void armdb_load_worker_main(Datum main_arg);

int			armdb_load_workers = 2;

/* the most workers per database */
#define MAX_LOAD_WORKERS	64

void
armdb_load_init(void)
{
	DefineCustomIntVariable("armdb.load_workers",
							"Workers per database that load armdb key directories after the server starts.",
							"They load the largest tables first, until half of armdb.memory "
							"is used; 0: each table is loaded by its first query.",
							&armdb_load_workers,
							2, 0, MAX_LOAD_WORKERS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

void
armdb_load_database(Oid db)
{
	BackgroundWorkerHandle *handles[MAX_LOAD_WORKERS];
	int			nworkers = armdb_load_workers;
	int			started = 0;

	for (int w = 0; w < nworkers; w++)
	{
		/* which of the database's tables it takes: every nworkers-th */
		uint32		arg = ((uint32) w << 16) | (uint32) nworkers;

		if (!armdb_start_database_worker("armdb_load_worker_main",
										 "armdb loader", "armdb loader",
										 db, arg,
										 "Its armdb tables are loaded by their first queries.",
										 &handles[started]))
			break;
		started++;
	}
	/* fewer were started: their share is left to first queries */
	for (int w = 0; w < started; w++)
		armdb_wait_database_worker(handles[w]);
}

/*
 * This database's armdb tables, largest first, in TopMemoryContext.  In a
 * transaction of its own.
 */
static Oid *
armdb_tables(int *ntables)
{
	Oid		   *tables;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT c.oid FROM pg_catalog.pg_class c"
					" JOIN pg_catalog.pg_am a ON a.oid = c.relam"
					" WHERE a.amname = 'armdb' AND c.relpersistence <> 't'"
					" ORDER BY c.relpages DESC, c.oid",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the armdb tables");
	*ntables = (int) SPI_processed;
	tables = MemoryContextAlloc(TopMemoryContext,
								sizeof(Oid) * Max(*ntables, 1));
	for (int i = 0; i < *ntables; i++)
	{
		bool		isnull;

		tables[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc,
												   1, &isnull));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return tables;
}

/*
 * Load the keydir of relid, unless its lock is taken or it is gone; adds
 * what it holds to *bytes and *versions.  An error is logged, and false.
 */
static bool
load_table(Oid relid, int64 *bytes, int64 *versions)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (ConditionalLockRelationOid(relid, AccessShareLock))
		{
			Relation	rel = try_relation_open(relid, NoLock);

			if (rel != NULL && armdb_is_armdb_relation(rel) &&
				rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP)
			{
				ArmdbRelKeydir *kd;

				pgstat_report_activity(STATE_RUNNING,
									   psprintf("loading the armdb key directory of \"%s\"",
												RelationGetRelationName(rel)));
				kd = armdb_rel_keydir(rel);
				*bytes += armdb_keydir_bytes(kd);
				*versions += (int64) pg_atomic_read_u64(&kd->nversions);
			}
			if (rel != NULL)
				relation_close(rel, NoLock);
		}
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

void
armdb_load_worker_main(Datum main_arg)
{
	Oid			db = DatumGetObjectId(main_arg);
	uint32		arg;
	int			index;
	int			nworkers;
	Oid		   *tables;
	int			ntables;
	int			loaded = 0;
	int			failed = 0;
	int64		bytes = 0;
	int64		versions = 0;
	int64		used;
	int64		budget;
	TimestampTz start;
	bool		stopped = false;

	/* loading a table is no reason to keep its keydir (keydir.c) */
	armdb_keydir_use_counts = false;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* template0 and others that refuse connections may have armdb tables */
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	arg = armdb_database_worker_arg();
	index = (int) (arg >> 16);
	nworkers = Max((int) (arg & 0xFFFF), 1);
	start = GetCurrentTimestamp();

	tables = armdb_tables(&ntables);
	used = armdb_keydir_total_bytes(NULL);
	budget = (int64) armdb_memory_limit_mb() * 1024 * 1024 / 2;
	for (int i = index; i < ntables; i += nworkers)
	{
		int64		before = bytes;

		CHECK_FOR_INTERRUPTS();
		if (used >= budget)
		{
			stopped = true;
			break;
		}
		if (load_table(tables[i], &bytes, &versions))
			loaded++;
		else
			failed++;
		used += bytes - before;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG,
			(errmsg("armdb loader %d of %d: loaded the key directories of %d tables of database %u in %ld ms: %lld row versions, %lld bytes of armdb.memory",
					index + 1, nworkers, loaded, db,
					TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()),
					(long long) versions, (long long) bytes),
			 failed > 0 ? errdetail("%d could not be loaded; their first queries will try again.", failed) :
			 stopped ? errdetail("It stopped at half of armdb.memory; the other tables are loaded by their first queries.") : 0));
	proc_exit(0);
}
