/*-------------------------------------------------------------------------
 *
 * armdb_load.h
 *	  Loading key directories in the background after start-up
 *	  (armdb_load.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_LOAD_H
#define ARMDB_LOAD_H

extern int	armdb_load_workers;

/* from _PG_init: armdb.load_workers */
extern void armdb_load_init(void);

/*
 * From the sweep's launcher, once the sweep is done: load the armdb tables
 * of each of the ndbs databases dbs, armdb.load_workers workers at a time.
 */
extern void armdb_load_databases(const Oid *dbs, int ndbs);

#endif							/* ARMDB_LOAD_H */
