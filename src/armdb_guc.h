/*-------------------------------------------------------------------------
 *
 * armdb_guc.h
 *	  armdb's GUC variables, defined in armdb.c.
 *
 * Only the extension's top level (armdb.c, armdb_storage.c) and the access
 * method include this.  The key directory and the version store below the
 * access method read no GUC: they are passed an ArmdbStoreSettings
 * (keydir.h) built by armdb_store_settings(), so that a background worker
 * or WAL redo can call them with settings of its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_GUC_H
#define ARMDB_GUC_H

/* GUCs (see the README for units and defaults) */
extern int	armdb_shards;
extern int	armdb_max_file_size_kb;
extern bool armdb_direct_io;
extern bool armdb_cached_reads;
extern int	armdb_io_method;
extern int	armdb_memory_mb;
extern int	armdb_memory_initial_mb;

/* the largest armdb.memory, in MB: 1 TB */
#define ARMDB_MAX_MEMORY_MB	(1024 * 1024)
extern char *armdb_data_directory;
extern int	armdb_write_buffer_size_kb;
extern int	armdb_write_buffer_idle_ms;
extern int	armdb_keydir_idle_ms;
extern bool armdb_skip_damaged_entries;
extern bool armdb_debug_full_tuple_images;
extern bool armdb_hot_updates;
extern bool armdb_debug_seqscan_pages;
extern int	armdb_debug_first_page;
extern int	armdb_debug_prune_lock;

#endif							/* ARMDB_GUC_H */
