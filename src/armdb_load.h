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
 * of database db, by armdb.load_workers workers side by side.
 */
extern void armdb_load_database(Oid db);

#endif							/* ARMDB_LOAD_H */
