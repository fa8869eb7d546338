/*-------------------------------------------------------------------------
 *
 * armdb.h
 *	  Settings and shared state of the armdb extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_H
#define ARMDB_H

#include "access/xlogdefs.h"
#include "lib/dshash.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"

#include "storage/io.h"
#include "storage/status.h"

/*
 * The GUCs themselves are in armdb_guc.h: the layers below the access
 * method (src/keydir/, src/vstore/) read none of them, but are handed the
 * settings that concern them (ArmdbStoreSettings, keydir.h).
 */
struct ArmdbStoreSettings;

/* the settings as this backend sees them now (SIGHUP reloads apply) */
extern const struct ArmdbStoreSettings *armdb_store_settings(void);

/*
 * The part of the main shared memory segment armdb owns: a control struct,
 * followed by the first part of the key directory's memory, a DSA area
 * created in place (armdb.memory_initial).  The area grows past it into
 * dynamic shared memory segments as key directories need, up to
 * armdb.memory; segments wholly freed go back to the system.
 */
/* merges logging at once (wal/armdb_durable.c, armdb_durable_merge_begin) */
#define ARMDB_MAX_LOGGING_MERGES	64

typedef struct ArmdbSharedState
{
	LWLock	   *control_lock;	/* protects the fields below it */
	int			keydir_tranche_id;	/* LWLocks inside the keydir area */
	bool		after_crash;	/* this server start (or shared memory
								 * reinitialisation) followed a crash: the
								 * active data files may end in torn writes */
	Size		keydir_initial_size;	/* bytes of the in-place DSA area */
	pg_atomic_uint64 memory_limit;	/* armdb.memory in bytes, as the
									 * postmaster read it last: the area's
									 * limit */
	pg_atomic_uint64 memory_limit_applied;	/* the area's limit now */
	dshash_table_handle keydir_hash;	/* relation -> ArmdbRelKeydir */
	pg_atomic_uint64 next_generation;	/* of keydirs */
	pg_atomic_uint64 keydir_drops;	/* keydirs dropped so far: backends then
									 * close their descriptors of them */
	pg_atomic_uint64 files_removed; /* merges that removed input files:
									 * backends then close their cached
									 * descriptors */
	pg_atomic_uint32 images_writing;	/* a clean shutdown is saving the
										 * key directories (image.c): no
										 * keydir may be used any more */
	uint64		image_token;	/* the images this start may read back
								 * carry it; 0: none (keydir/image.c) */

	/* durability from WAL (wal/armdb_durable.c) */
	LWLock	   *replay_lock;	/* one start-up replay at a time */
	pg_atomic_uint32 replay_done;	/* start-up replay done (or not needed) */
	pg_atomic_uint32 lazy;		/* commits may leave data files unsynced */
	pg_atomic_uint32 gate_held; /* the flusher holds the checkpoint gate */
	bool		skip_own_replay;	/* started from a base backup or for
									 * archive recovery: WAL before the start
									 * point is not here */
	XLogRecPtr	startup_redo;	/* pg_control's redo pointer at start */
	slock_t		durable_mutex;	/* protects the fields below */
	XLogRecPtr	durable_lsn;	/* as last written to the control file */
	char		sync_reason[256];	/* why commits sync, when they do */
	/* a restarted standby's loads wait until replay passes it */
	XLogRecPtr	standby_wait_lsn;
	/* where merges being logged began: the durable LSN stays below */
	XLogRecPtr	merge_floors[ARMDB_MAX_LOGGING_MERGES];
	/* MAXALIGNed: the in-place DSA area holds atomics */
	char		keydir_area[FLEXIBLE_ARRAY_MEMBER] pg_attribute_aligned(MAXIMUM_ALIGNOF);
} ArmdbSharedState;

extern ArmdbSharedState *armdb_shared;

/* the key directory's DSA area, attached on first use in this backend */
extern dsa_area *armdb_keydir_area(void);

/*
 * The area, about to be allocated from: with armdb.memory's current value
 * as its limit (a reload changes it without a restart).
 */
extern dsa_area *armdb_keydir_area_to_grow(void);

/* armdb.memory as the postmaster read it last, in MB (for messages) */
extern int	armdb_memory_limit_mb(void);

/* src/armdb_utility.c: CREATE/DROP DATABASE */
extern void armdb_utility_init(void);

/* src/armdb_storage.c: the storage layer inside a backend */
extern void armdb_storage_backend_init(void);
extern ArmdbIo *armdb_backend_io(void);
extern void armdb_data_dir_path(char *path);
extern void armdb_report_storage_error(int elevel, const ArmdbError *err);

#endif							/* ARMDB_H */
