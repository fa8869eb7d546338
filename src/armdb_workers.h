/*-------------------------------------------------------------------------
 *
 * armdb_workers.h
 *	  Background workers of armdb: launchers and per-database workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_WORKERS_H
#define ARMDB_WORKERS_H

/*
 * _PG_init: a static worker connected to no database, started after
 * recovery and restarted after a crash, or restart_s seconds after an error
 * of its own; name is its bgw_name and backend_type.
 */
extern void armdb_register_launcher(const char *function, const char *name,
									int restart_s);

/*
 * From a launcher: run function in a new worker (backend_type type)
 * connected to database db, and wait until it exits.  False if no worker
 * slot was free, logged as who's, with what_waits as the detail.
 */
extern bool armdb_run_database_worker(const char *function, const char *type,
									  const char *who, Oid db,
									  const char *what_waits);

/*
 * The same in two steps, for workers that run side by side: start one,
 * handing it arg (armdb_database_worker_arg() in the worker), then wait for
 * it to exit.
 */
struct BackgroundWorkerHandle;
extern bool armdb_start_database_worker(const char *function, const char *type,
										const char *who, Oid db, uint32 arg,
										const char *what_waits,
										struct BackgroundWorkerHandle **handle);
extern uint32 armdb_database_worker_arg(void);
extern void armdb_wait_database_worker(struct BackgroundWorkerHandle *handle);

#endif							/* ARMDB_WORKERS_H */
