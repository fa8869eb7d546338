/*-------------------------------------------------------------------------
 *
 * relstorage.h
 *	  The directory of an armdb relation's storage: where it is, its meta
 *	  file, creating, copying and removing it, and the sweep of what a
 *	  crash left behind.
 *
 *	  <armdb dir>/<dboid>/<relfilenode>/			permanent relation
 *	  <armdb dir>/<dboid>/t<backend>_<relfilenode>/	temporary relation
 *		  armdb.meta	shard count and identity, CRC-protected
 *		  0/ 1/ ...		shard directories (created on first write)
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_RELSTORAGE_H
#define ARMDB_RELSTORAGE_H

#include <sys/stat.h>

#include "storage/relfilenode.h"

#include "storage/cipher.h"

extern void armdb_rel_dir_path(char *path, RelFileNodeBackend rnode);
extern void armdb_shard_dir_path(char *path, RelFileNodeBackend rnode,
								 uint32 shard);

/* a storage's random id, part of its data files' keys (cipher.h) */
#define ARMDB_STORAGE_ID_LEN	ARMDB_CIPHER_STORAGE_ID_LEN

/* A new storage id (a strong random number). */
extern void armdb_rel_storage_new_id(uint8 *storage_id);

/*
 * Fresh, empty storage (a leftover directory of that name is removed);
 * encrypted: its data files will be (cipher.h), for good.  storage_id is
 * a new one, or the one its CREATE record carries.
 */
extern void armdb_rel_storage_create(RelFileNodeBackend rnode, uint32 nshards,
									 char persistence, bool encrypted,
									 const uint8 *storage_id);

/*
 * The shard count, and what else the meta file says (NULL: not wanted);
 * ERROR (data corrupted) if the storage is missing.
 */
extern uint32 armdb_rel_storage_read_meta(RelFileNodeBackend rnode,
										  char *persistence, bool *encrypted,
										  uint8 *storage_id);

/* The storage id its meta file says; false if that is missing or damaged. */
extern bool armdb_rel_storage_get_id(RelFileNodeBackend rnode,
									 uint8 *storage_id);

extern bool armdb_rel_storage_exists(RelFileNodeBackend rnode);

/* Remove the storage; failures are reported at elevel. */
extern void armdb_rel_storage_remove(RelFileNodeBackend rnode, int elevel);

/* Copy all files of from into the (new) storage to. */
extern void armdb_rel_storage_copy(RelFileNodeBackend from,
								   RelFileNodeBackend to, uint32 nshards,
								   char persistence);

/* CREATE DATABASE / DROP DATABASE (armdb_utility.c) */
extern void armdb_rel_storage_copy_database(Oid src_db, Oid dst_db);
extern void armdb_rel_storage_remove_database(Oid db);

/* a relation directory's identity: a new directory has another */
typedef struct ArmdbDirIdentity
{
	dev_t		dev;
	ino_t		ino;
	struct timespec ctime;
} ArmdbDirIdentity;

extern bool armdb_rel_storage_identity(RelFileNodeBackend rnode,
									   ArmdbDirIdentity *id);
extern bool armdb_rel_storage_remove_if_same(RelFileNodeBackend rnode,
											 const ArmdbDirIdentity *id,
											 void (*before_remove) (RelFileNodeBackend rnode));

/* Remove every temporary relation's storage of this backend. */
extern void armdb_rel_storage_remove_backend_temp(void);

/*
 * In the postmaster at start-up, before WAL redo: remove temporary
 * relations' storage, empty unlogged relations' after a crash, and list
 * every other relation directory for the sweep workers (armdb_sweep.c).
 */
extern void armdb_rel_storage_startup(void);

/* What armdb_rel_storage_startup() listed (palloc'd arrays). */
extern Oid *armdb_rel_storage_listed_databases(int *ndbs);
extern Oid *armdb_rel_storage_listed_relnodes(Oid db, int *nrels);

/*
 * The sweep workers, after recovery: remove a listed directory no relation
 * uses any more (why says so in the log), if it is still the one listed;
 * remove the (empty) directory of a database that no longer exists.
 */
extern bool armdb_rel_storage_remove_leftover(Oid db, Oid relNode,
											  const char *why);
extern void armdb_rel_storage_remove_database_dir(Oid db);

#endif							/* ARMDB_RELSTORAGE_H */
