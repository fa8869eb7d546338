/*-------------------------------------------------------------------------
 *
 * armdb_workers.c
 *	  What armdb's background workers share: registering the static
 *	  launchers and running one worker per database.
 *
 * Two launchers run on every server (both connected to no database): the
 * sweep after recovery (armdb_sweep.c), which then has the key directories
 * loaded (armdb_load.c), and compaction (compact/worker.c).  Each does its
 * work database by database, in dynamic workers connected to that
 * database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"

#include "armdb_workers.h"

void
armdb_register_launcher(const char *function, const char *name,
						int restart_s)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* restarted after a crash restart, or restart_s after an error of its own */
	worker.bgw_restart_time = restart_s;
	strlcpy(worker.bgw_library_name, "armdb", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

bool
armdb_start_database_worker(const char *function, const char *type,
							const char *who, Oid db, uint32 arg,
							const char *what_waits,
							BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "armdb", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s for database %u", type, db);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(db);
	memcpy(worker.bgw_extra, &arg, sizeof(arg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		ereport(LOG,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%s: could not start a worker for database %u: no background worker slot is free",
						who, db),
				 errdetail("%s", what_waits),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	return true;
}

uint32
armdb_database_worker_arg(void)
{
	uint32		arg;

	memcpy(&arg, MyBgworkerEntry->bgw_extra, sizeof(arg));
	return arg;
}

void
armdb_wait_database_worker(BackgroundWorkerHandle *handle)
{
	if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
		proc_exit(1);
}

bool
armdb_run_database_worker(const char *function, const char *type,
						  const char *who, Oid db, const char *what_waits)
{
	BackgroundWorkerHandle *handle;

	if (!armdb_start_database_worker(function, type, who, db, 0, what_waits,
									 &handle))
		return false;
	armdb_wait_database_worker(handle);
	return true;
}
