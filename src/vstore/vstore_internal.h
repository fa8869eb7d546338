/*-------------------------------------------------------------------------
 *
 * vstore_internal.h
 *	  What the version store's own files share; not for its callers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_VSTORE_INTERNAL_H
#define ARMDB_VSTORE_INTERNAL_H

#include "keydir/keydir.h"

/*
 * This process's descriptors for a shard's files, with the version store's
 * write barrier (vstore_commit.c) in place.
 */
extern ArmdbShardFiles *armdb_vstore_shard_files(ArmdbRelKeydir *kd,
												 uint32 shard,
												 const ArmdbStoreSettings *settings);

/*
 * Add to ids (nids of them, palloc'd, ascending; repalloc'd) the data files
 * of the shard in dir numbered above upto, up to last_file_id, that are not
 * merge outputs (files started by rotation since the shard's file list last
 * had its highest number), and sort them.  Without the shard lock.
 */
extern uint32 *armdb_vstore_files_since(const char *dir, uint32 upto,
										uint32 last_file_id, uint32 *ids,
										int *nids);

#endif							/* ARMDB_VSTORE_INTERNAL_H */
