/*-------------------------------------------------------------------------
 *
 * armdb_sweep.h
 *	  The post-recovery sweep of armdb storage a crash left behind.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_SWEEP_H
#define ARMDB_SWEEP_H

#include "storage/lwlock.h"

/* from _PG_init: its GUC, shared memory and the launcher's registration */
extern void armdb_sweep_init(void);

/*
 * Held while storage is created under a name that may hold a leftover, and
 * while the sweep checks and removes a leftover: the two never interleave.
 */
extern LWLock *armdb_sweep_lock(void);

/*
 * pg_class's relfilenodes that a live, in-progress or prepared row uses,
 * ascending; those of the rows transaction xid (or its subtransactions)
 * inserted or deleted.  Both read pg_class with SnapshotAny, in a
 * transaction.
 */
extern Oid *armdb_sweep_used_relfilenodes(int *nused);
extern Oid *armdb_sweep_relfilenodes_of_xact(TransactionId xid, int *n);

#endif							/* ARMDB_SWEEP_H */
