/*-------------------------------------------------------------------------
 *
 * armdb.c
 *	  Entry point of the armdb extension: GUCs, shared memory, LWLock
 *	  tranches, the sweep's background worker (armdb_sweep.c).
 *
 * armdb keeps its key directory and write buffers in shared memory, so it
 * must be loaded through shared_preload_libraries; loaded any other way it
 * refuses with a hint instead of half-working.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_guc.h"
#include "armdb_sweep.h"
#include "compact/compact.h"
#include "keydir/keydir.h"
#include "keydir/relstorage.h"
#include "wal/armdb_durable.h"
#include "wal/armdb_wal.h"

PG_MODULE_MAGIC;

/* ----------------
 * GUCs
 * ----------------
 */
int			armdb_shards = 8;
int			armdb_max_file_size_kb = 1024 * 1024;	/* 1 GB */
bool		armdb_direct_io = true;
bool		armdb_cached_reads = true;
int			armdb_io_method = ARMDB_IO_AUTO;
int			armdb_memory_mb = 256;
char	   *armdb_data_directory = NULL;
int			armdb_write_buffer_size_kb = 128;
bool		armdb_skip_damaged_entries = false;
bool		armdb_debug_full_tuple_images = false;
bool		armdb_hot_updates = true;
bool		armdb_debug_seqscan_pages = false;
int			armdb_debug_first_page = 0;
int			armdb_debug_prune_lock = 0;

static const struct config_enum_entry io_method_options[] = {
	{"auto", ARMDB_IO_AUTO, false},
	{"io_uring", ARMDB_IO_URING, false},
	{"sync", ARMDB_IO_SYNC, false},
	{NULL, 0, false}
};

ArmdbSharedState *armdb_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static dsa_area *keydir_area = NULL;

void		_PG_init(void);

static Size
armdb_shmem_size(void)
{
	return add_size(offsetof(ArmdbSharedState, keydir_area),
					mul_size((Size) armdb_memory_mb, 1024 * 1024));
}

static void
armdb_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(armdb_shmem_size());
	RequestNamedLWLockTranche("armdb", 2);
}

/*
 * Did the server stop without a clean shutdown before this start (or this
 * reinitialisation of shared memory after a backend crash)?  Decided from
 * the control file as PostgreSQL decides whether to run crash recovery.
 */
static bool
server_crashed(const ControlFileData *control, bool crc_ok)
{
	return !crc_ok ||
		(control->state != DB_SHUTDOWNED &&
		 control->state != DB_SHUTDOWNED_IN_RECOVERY);
}

static void
armdb_shmem_startup(void)
{
	bool		found;
	ControlFileData *control = NULL;
	bool		crc_ok = false;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	armdb_shared = ShmemInitStruct("armdb", armdb_shmem_size(), &found);
	if (!found)
	{
		dsa_area   *area;

		armdb_shared->control_lock = &(GetNamedLWLockTranche("armdb"))->lock;
		armdb_shared->keydir_tranche_id = LWLockNewTrancheId();
		armdb_shared->keydir_size = (Size) armdb_memory_mb * 1024 * 1024;

		/*
		 * The keydir lives in a DSA area created in place, as pgstat does
		 * (the postmaster cannot use DSM segments).  Capping it at its own
		 * size keeps it from ever growing into DSM segments: armdb.memory is
		 * the bound, and running out of it is a clean ERROR naming the GUC.
		 */
		area = dsa_create_in_place(armdb_shared->keydir_area,
								   armdb_shared->keydir_size,
								   armdb_shared->keydir_tranche_id, NULL);
		dsa_pin(area);
		dsa_set_size_limit(area, armdb_shared->keydir_size);
		armdb_keydir_shmem_init(area);
		dsa_detach(area);
		pg_atomic_init_u64(&armdb_shared->next_generation, 1);
		pg_atomic_init_u64(&armdb_shared->keydir_drops, 0);
		pg_atomic_init_u64(&armdb_shared->files_removed, 0);
		armdb_shared->replay_lock = &(GetNamedLWLockTranche("armdb"))[1].lock;
		/* in the postmaster, before the startup process changes pg_control */
		if (!IsUnderPostmaster)
			control = get_controlfile(DataDir, &crc_ok);
		armdb_shared->after_crash = control != NULL &&
			server_crashed(control, crc_ok);
		armdb_durable_shmem_init(control, crc_ok);
		if (control != NULL)
			pfree(control);
	}
	LWLockRelease(AddinShmemInitLock);

	LWLockRegisterTranche(armdb_shared->keydir_tranche_id, "armdb keydir");

	if (!IsUnderPostmaster)
	{
		armdb_storage_backend_init();
		/* before redo: nothing permanent is removed (armdb_sweep.c) */
		armdb_rel_storage_startup();
	}
}

static void
keydir_area_detach(int code, Datum arg)
{
	if (keydir_area != NULL)
	{
		dsa_detach(keydir_area);
		/* no segment was given to dsa_attach_in_place(): release by hand */
		dsa_release_in_place(armdb_shared->keydir_area);
		keydir_area = NULL;
	}
}

/*
 * The settings the key directory and the version store work with, from the
 * GUCs as this backend sees them now: a reload applies from the next call
 * on.  Sizes are in bytes; a data file cannot pass what its 32-bit offsets
 * address.
 */
const ArmdbStoreSettings *
armdb_store_settings(void)
{
	static ArmdbStoreSettings settings;

	settings.max_file_size = (uint32) Min((uint64) armdb_max_file_size_kb * 1024,
										  ARMDB_MAX_FILE_SIZE);
	settings.direct_io = armdb_direct_io;
	settings.cached_reads = armdb_cached_reads;
	settings.write_buffer_size = (uint32) armdb_write_buffer_size_kb * 1024;
	settings.memory_mb = armdb_memory_mb;
	settings.skip_damaged_entries = armdb_skip_damaged_entries;
	settings.hints_by_worker = armdb_compact_worker_running();
	settings.first_page = (uint32) armdb_debug_first_page;
	return &settings;
}

dsa_area *
armdb_keydir_area(void)
{
	MemoryContext oldcontext;

	if (keydir_area != NULL)
		return keydir_area;

	oldcontext = MemoryContextSwitchTo(TopMemoryContext);
	keydir_area = dsa_attach_in_place(armdb_shared->keydir_area, NULL);
	dsa_pin_mapping(keydir_area);
	MemoryContextSwitchTo(oldcontext);

	/*
	 * on_shmem_exit, not before_shmem_exit: it must run after the exiting
	 * backend's transaction has been aborted, whose callbacks may still use
	 * the keydir.
	 */
	on_shmem_exit(keydir_area_detach, (Datum) 0);
	return keydir_area;
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("armdb must be loaded via shared_preload_libraries"),
				 errdetail("armdb keeps its key directory and write buffers in shared memory, which is set up at server start."),
				 errhint("Add armdb to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomIntVariable("armdb.shards",
							"Number of shards of armdb tables created from now on.",
							"Each shard has its own directory, append file and lock; "
							"a table keeps the shard count it was created with.",
							&armdb_shards,
							8, 1, 256,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("armdb.max_file_size",
							"Size at which an armdb data file is closed and a new one started.",
							NULL,
							&armdb_max_file_size_kb,
							1024 * 1024, 64, 4194303,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("armdb.direct_io",
							 "Use O_DIRECT for armdb data files.",
							 "File systems that refuse O_DIRECT get buffered I/O.",
							 &armdb_direct_io,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("armdb.cached_reads",
							 "Read rows through the operating system's page cache.",
							 "Index fetches and scans then cost no device read for "
							 "rows read recently, and scans get the kernel's "
							 "read-ahead; an entry read there that fails its checks "
							 "is read again with armdb.direct_io.  Writes, merges and "
							 "hint files keep armdb.direct_io.",
							 &armdb_cached_reads,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("armdb.hot_updates",
							 "Let an UPDATE that changes no indexed column add no index entry.",
							 "A heap-only (HOT) update, as heap's: the indexes keep "
							 "naming the row's first version, and index scans follow "
							 "the update chain from there.  Off: every UPDATE adds "
							 "index entries for its new version.",
							 &armdb_hot_updates,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("armdb.debug_full_tuple_images",
							 "Test only: write whole heap tuple images, as armdb "
							 "did before it shortened them.",
							 "Tables can hold both kinds; tests read them side by side.",
							 &armdb_debug_full_tuple_images,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("armdb.debug_seqscan_pages",
							 "Test only: serial sequential scans read virtual pages "
							 "whatever the share of dead bytes in the table's files.",
							 "They do by themselves when the files hold mostly "
							 "versions no snapshot needs.",
							 &armdb_debug_seqscan_pages,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.debug_first_page",
							"Test only: runs of pages are claimed from this block "
							"number on, leaving the ones below empty.",
							"As a table of 38 million rows would reach past the "
							"first 1 GB segment of its main fork.",
							&armdb_debug_first_page,
							0, 0, ARMDB_PAGES_PER_CHUNK * (ARMDB_MAX_CHUNKS / 2),
							PGC_SUSET, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.debug_prune_lock",
							"Test only: VACUUM takes this advisory lock in share mode "
							"between planning its pruning of HOT chains and "
							"carrying it out (0: none).",
							"So that a test holding the lock can change the chains "
							"meanwhile.",
							&armdb_debug_prune_lock,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("armdb.debug_stale_cached_reads",
							 "Test only: every read through the page cache returns "
							 "the second half of each 4 kB block as zeros.",
							 "As an older image of a block, cached before its newer "
							 "entries were written, would.",
							 &armdb_debug_stale_cached_reads,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("armdb.io_method",
							 "How armdb submits file I/O: io_uring, plain system calls, or auto.",
							 "auto uses io_uring when the kernel allows it and "
							 "falls back to pread/pwrite otherwise.",
							 &armdb_io_method,
							 ARMDB_IO_AUTO, io_method_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("armdb.write_buffer_size",
							"Size of the write buffer of each armdb shard that is written to.",
							"Taken from armdb.memory when a shard is first written; "
							"a change applies to buffers allocated afterwards.",
							&armdb_write_buffer_size_kb,
							128, 16, 64 * 1024,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("armdb.skip_damaged_entries",
							 "Load armdb tables around damaged entries instead of failing.",
							 "Like zero_damaged_pages: when a data file is found damaged "
							 "while a table is loaded, keep every entry whose checksum is "
							 "good and skip the damaged bytes (a damaged tail is copied to "
							 "a .damaged file first). The rows of damaged entries are lost.",
							 &armdb_skip_damaged_entries,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("armdb.memory",
							"Shared memory for the armdb key directory.",
							NULL,
							&armdb_memory_mb,
							256, 8, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomStringVariable("armdb.data_directory",
							   "Directory of armdb's files; empty means \"armdb\" inside the data directory.",
							   NULL,
							   &armdb_data_directory,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	/* defines armdb.sweep_delay: before the prefix is reserved */
	armdb_sweep_init();
	/* defines armdb.compaction*: likewise */
	armdb_compact_init();
	/* defines armdb.sync_at_commit and armdb.flush_interval, and the flusher */
	armdb_durable_init();

	MarkGUCPrefixReserved("armdb");

	armdb_xact_init();
	armdb_utility_init();
	armdb_wal_init();
	armdb_bitmapscan_init();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = armdb_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = armdb_shmem_startup;
}
