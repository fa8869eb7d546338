/*-------------------------------------------------------------------------
 *
 * keydir_int.h
 *	  What keydir.c shares with the other files that build key directories
 *	  (image.c); not for the rest of armdb, which goes through keydir.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_KEYDIR_INT_H
#define ARMDB_KEYDIR_INT_H

#include "keydir/keydir.h"
#include "storage/recovery.h"

/*
 * How a keydir is loaded: the normal way; during recovery, for hot-standby
 * readers (nothing written, shards for reading only, committed ends kept as
 * xmax for older snapshots); or after promotion, the shards only, around
 * the versions replay kept current.
 */
typedef enum LoadMode
{
	LOAD_NORMAL,
	LOAD_STANDBY,
	LOAD_PROMOTED
} LoadMode;

/* Zeroed memory from the keydir area; ERROR naming what when it is full. */
extern void *keydir_alloc(dsa_pointer *dp, Size size, const char *what,
						  const ArmdbStoreSettings *settings);

/* A page directory of nchunks entries, none used; ERROR without memory. */
extern dsa_pointer new_page_dir(uint32 nchunks,
								const ArmdbStoreSettings *settings);

/*
 * The chunk of pageno, and the page of slot, allocated if need be (the
 * caller holds kd->lock exclusively, or page_for_slot takes it).
 */
extern ArmdbPageChunk *chunk_for_page(ArmdbRelKeydir *kd, uint64 pageno,
									  const ArmdbStoreSettings *settings);
extern ArmdbPage *page_for_slot(ArmdbRelKeydir *kd, uint64 slot,
								bool have_lock,
								const ArmdbStoreSettings *settings);

/* The shard a run named for pageno, plus one; 0: no run names it. */
extern uint16 keydir_page_owner(ArmdbRelKeydir *kd, uint64 pageno);

/* A shard's runtime state before its files are read (zeroed memory). */
extern void init_shard(ArmdbShardRt *rt, uint32 shard,
					   const ArmdbStoreSettings *settings);

/*
 * A shard's state once its files are known to end where report says:
 * open for appends (or, LOAD_STANDBY, for reading only); wal: the relation's
 * changes are WAL-logged (a file started at load gets its FILE record).
 */
extern void load_shard_state(ArmdbRelKeydir *kd, ArmdbShardRt *rt,
							 ArmdbShardFiles *files,
							 const ArmdbRecoveryReport *report, LoadMode mode,
							 bool wal, const ArmdbStoreSettings *settings);

/* Undo a load that failed: this process's descriptors, then the memory. */
extern void forget_shard_files(ArmdbRelKeydir *kd);
extern void free_keydir_memory(ArmdbRelKeydir *kd);

#endif							/* ARMDB_KEYDIR_INT_H */
