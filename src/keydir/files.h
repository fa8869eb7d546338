/*-------------------------------------------------------------------------
 *
 * files.h
 *	  Each shard's list of its data files, with what compaction must know
 *	  of each: its size, its dead bytes, the range of its entries' gsns.
 *
 * File numbers are not contiguous once files are merged, so a shard keeps
 * this list (ArmdbShardRt.files, in the keydir's memory) instead of
 * counting from 1 to the active file.  It is rebuilt from the files at
 * every load of the keydir (keydir.c: dead bytes are what no version
 * record points at), so it survives restarts without a file of its own,
 * and kept up to date while the server runs:
 *
 *	 - a new active file joins with its first entry (vstore.c,
 *	   append_entry), which makes room in the list before it is placed.
 *	   It must not wait for compaction to bring the list up to date, as it
 *	   once did: a merge's outputs take numbers from the same counter and
 *	   raise ArmdbShardRt.files_upto past a file started while the merge
 *	   copied, and readers, who add the files numbered above files_upto
 *	   themselves (armdb_vstore_files_since), then missed it and every row
 *	   in it.  (Keydir images of builds with that bug are not read: their
 *	   lists may lack such a file.)  A file a seal started is unlisted
 *	   only while it is empty;
 *	 - VACUUM adds a freed version's bytes to its file's dead bytes;
 *	 - a merge replaces its inputs by its outputs.
 *
 * Locking: the shard lock (ArmdbShardRt.lock) protects the list; readers
 * hold it shared, writers exclusively.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_KEYDIR_FILES_H
#define ARMDB_KEYDIR_FILES_H

#include "keydir/keydir.h"

typedef struct ArmdbFileStat
{
	uint32		file_id;
	uint32		flags;			/* ARMDB_FSTAT_* */
	uint64		total_bytes;	/* where its entries end (header included);
								 * 0: not known yet (armdb_files_sync) */
	uint64		dead_bytes;		/* bytes of entries nothing needs */
	uint64		dead_version_bytes; /* of those, versions: what a dropped
									 * ending could let recovery bring back
									 * (compact.c); tombstones never */
	uint64		ending_bytes;	/* of those, tombstones (endings) ... */
	uint64		ending_max_gsn; /* ... the newest of which has this gsn:
								 * a merge can drop them only once no older
								 * dead version is left (compact.c) */
	uint64		ending_floor;	/* that bound (the lowest gsn of a file with
								 * dead versions) when a merge last kept
								 * them; 0: never judged */
	uint64		min_gsn;		/* of its entries; 0: not known */
	uint64		max_gsn;
} ArmdbFileStat;

#define ARMDB_FSTAT_MERGED		0x0001	/* a merge output */
#define ARMDB_FSTAT_COOLDOWN	0x0002	/* written by the shard's last merge
										 * run: not merged by the next one */
#define ARMDB_FSTAT_DAMAGED		0x0004	/* salvaged with gaps: not merged */
#define ARMDB_FSTAT_NEEDS_HINT	0x0008	/* sealed; the compaction worker is
										 * to write its hint file */

/* In fs[0..n), ascending: the index of the first file numbered >= file_id. */
extern uint32 armdb_files_search(const ArmdbFileStat *fs, uint32 n,
								 uint32 file_id);

/* Its entry, or NULL; with create, a new zeroed one (NULL if no memory). */
extern ArmdbFileStat *armdb_files_lookup(ArmdbShardRt *rt, uint32 file_id,
										 bool create);

/* Bytes of a version in file_id that nothing needs any more (VACUUM). */
extern void armdb_files_add_dead(ArmdbShardRt *rt, uint32 file_id,
								 uint64 bytes);

/* Bytes in the shard's data files: sealed ones and the active one so far. */
extern uint64 armdb_files_bytes(ArmdbShardRt *rt);

/* A palloc'd copy of the list, ascending by file number. */
extern ArmdbFileStat *armdb_files_copy(ArmdbShardRt *rt, int *nfiles);

/* Room for n more files; false when armdb.memory is full. */
extern bool armdb_files_reserve(ArmdbShardRt *rt, uint32 n);

/* After a merge: drop the inputs, add the outputs (room reserved first). */
extern bool armdb_files_replace(ArmdbShardRt *rt, const uint32 *inputs,
								int ninputs, const ArmdbFileStat *outputs,
								int noutputs);

/* Free the list (the keydir is dropped). */
extern void armdb_files_free(ArmdbShardRt *rt);

#endif							/* ARMDB_KEYDIR_FILES_H */
