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

#endif							/* ARMDB_VSTORE_INTERNAL_H */
