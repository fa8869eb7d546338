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

#include <sys/statvfs.h>
#include <unistd.h>

#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/dsm_impl.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "armdb_crypt.h"
#include "vstore/decrypted.h"
#include "armdb_guc.h"
#include "armdb_load.h"
#include "armdb_sweep.h"
#include "compact/compact.h"
#include "keydir/image.h"
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
int			armdb_memory_mb = 256;	/* its default is set from the machine */
int			armdb_memory_initial_mb = 64;
char	   *armdb_data_directory = NULL;
int			armdb_write_buffer_size_kb = 128;
int			armdb_write_buffer_idle_ms = 10000;
int			armdb_keydir_idle_ms = 300000;
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

/* bytes of the in-place area, fixed when the postmaster first asks for it */
static Size keydir_initial_size = 0;

static Size
armdb_shmem_size(void)
{
	if (keydir_initial_size == 0)
		keydir_initial_size = (Size) Min(armdb_memory_initial_mb,
										 armdb_memory_mb) * 1024 * 1024;
	/* room to start the area on a 4 kB boundary: see keydir_place() */
	return add_size(offsetof(ArmdbSharedState, keydir_area),
					keydir_initial_size + ARMDB_BLOCK_SIZE);
}

/*
 * Where the in-place area starts: on a 4 kB boundary, as DSM segments do,
 * so that DSA's allocations of whole pages are block-aligned for O_DIRECT
 * in every segment (write buffers, keydir.c).  The main shared memory
 * segment is at the same address in every process.
 */
static void *
keydir_place(void)
{
	return (void *) TYPEALIGN(ARMDB_BLOCK_SIZE, armdb_shared->keydir_area);
}

/*
 * armdb.memory's default: a quarter of the machine's memory, and, where
 * dynamic shared memory segments are files in /dev/shm (the default
 * dynamic_shared_memory_type, posix), no more than armdb.memory_initial plus
 * half of what /dev/shm can hold (a container's is often 64 MB).  It is
 * only a limit: memory is taken as key directories need it.
 */
static int
default_memory_mb(void)
{
	long		pages = sysconf(_SC_PHYS_PAGES);
	long		page_size = sysconf(_SC_PAGESIZE);
	uint64		mb = 1024;		/* if the machine does not say */
	struct statvfs shm;

	if (pages > 0 && page_size > 0)
		mb = (uint64) pages * (uint64) page_size / 4 / (1024 * 1024);
	if (dynamic_shared_memory_type == DSM_IMPL_POSIX &&
		statvfs("/dev/shm", &shm) == 0)
		mb = Min(mb, armdb_memory_initial_mb +
				 (uint64) shm.f_blocks * shm.f_frsize / 2 / (1024 * 1024));
	return (int) Max(Min(mb, (uint64) ARMDB_MAX_MEMORY_MB),
					 (uint64) armdb_memory_initial_mb);
}

/*
 * A reload's armdb.memory, read by the postmaster, becomes the limit the
 * backends give the area at their next allocation (armdb_keydir_area_to_grow):
 * one value for all, whenever each backend reads its configuration file.
 */
static void
assign_memory_mb(int newval, void *extra)
{
	if (!IsUnderPostmaster && armdb_shared != NULL)
		pg_atomic_write_u64(&armdb_shared->memory_limit,
							(uint64) newval * 1024 * 1024);
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
		armdb_shared->keydir_initial_size = keydir_initial_size;

		/*
		 * The keydir lives in a DSA area created in place, as pgstat does
		 * (the postmaster cannot create DSM segments, but backends can: the
		 * area grows into them).  armdb.memory is its limit, and running
		 * out of it is a clean ERROR naming the setting.
		 */
		area = dsa_create_in_place(keydir_place(),
								   armdb_shared->keydir_initial_size,
								   armdb_shared->keydir_tranche_id, NULL);
		dsa_pin(area);
		dsa_set_size_limit(area, (Size) armdb_memory_mb * 1024 * 1024);
		pg_atomic_init_u64(&armdb_shared->memory_limit,
						   (uint64) armdb_memory_mb * 1024 * 1024);
		pg_atomic_init_u64(&armdb_shared->memory_limit_applied,
						   (uint64) armdb_memory_mb * 1024 * 1024);
		armdb_keydir_shmem_init(area);
		dsa_detach(area);
		pg_atomic_init_u64(&armdb_shared->next_generation, 1);
		pg_atomic_init_u64(&armdb_shared->keydir_drops, 0);
		pg_atomic_init_u64(&armdb_shared->files_removed, 0);
		pg_atomic_init_u32(&armdb_shared->images_writing, 0);
		armdb_shared->replay_lock = &(GetNamedLWLockTranche("armdb"))[1].lock;
		/* in the postmaster, before the startup process changes pg_control */
		if (!IsUnderPostmaster)
			control = get_controlfile(DataDir, &crc_ok);
		armdb_shared->after_crash = control != NULL &&
			server_crashed(control, crc_ok);
		armdb_keydir_images_startup(control, crc_ok);
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

/*
 * Process exit, before dynamic shared memory segments are detached: no
 * LWLock of a key directory may stay held, for ProcKill releases them all
 * after the segments holding some of them are gone.  Recent minor releases
 * of PostgreSQL 15 release them first thing in shmem_exit(), before any
 * callback; this is for those that do not.  (The exiting backend's
 * transaction is aborted by now or right after, while the segments are
 * still there: abort callbacks can use the keydir.)
 */
static void
keydir_area_before_exit(int code, Datum arg)
{
	LWLockReleaseAll();
}

/*
 * Process exit, after dsm_backend_shutdown() unmapped the area's segments:
 * only the in-place part's reference count is left to release (no segment
 * was given to dsa_attach_in_place()).  Nothing may use the keydir now.
 */
static void
keydir_area_detach(int code, Datum arg)
{
	if (keydir_area != NULL)
	{
		dsa_release_in_place(keydir_place());
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
	settings.write_buffer_idle_ms = armdb_write_buffer_idle_ms;
	settings.memory_mb = armdb_memory_limit_mb();
	settings.skip_damaged_entries = armdb_skip_damaged_entries;
	settings.hints_by_worker = armdb_compact_worker_running();
	settings.first_page = (uint32) armdb_debug_first_page;
	return &settings;
}

/* ArmdbShardState.buf_ref: a DSA pointer (keydir.c) */
static char *
resolve_shard_buffer(uint64 buf_ref)
{
	return dsa_get_address(keydir_area, (dsa_pointer) buf_ref);
}

dsa_area *
armdb_keydir_area(void)
{
	MemoryContext oldcontext;

	if (keydir_area != NULL)
		return keydir_area;

	oldcontext = MemoryContextSwitchTo(TopMemoryContext);
	keydir_area = dsa_attach_in_place(keydir_place(), NULL);
	dsa_pin_mapping(keydir_area);
	MemoryContextSwitchTo(oldcontext);
	armdb_shard_buf_resolver = resolve_shard_buffer;

	before_shmem_exit(keydir_area_before_exit, (Datum) 0);
	on_shmem_exit(keydir_area_detach, (Datum) 0);
	return keydir_area;
}

dsa_area *
armdb_keydir_area_to_grow(void)
{
	dsa_area   *area = armdb_keydir_area();
	uint64		limit = pg_atomic_read_u64(&armdb_shared->memory_limit);

	/* a race between two backends sets the same value twice */
	if (pg_atomic_read_u64(&armdb_shared->memory_limit_applied) != limit)
	{
		dsa_set_size_limit(area, (Size) limit);
		pg_atomic_write_u64(&armdb_shared->memory_limit_applied, limit);
	}
	return area;
}

int
armdb_memory_limit_mb(void)
{
	return (int) (pg_atomic_read_u64(&armdb_shared->memory_limit) /
				  (1024 * 1024));
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

	DefineCustomIntVariable("armdb.write_buffer_idle_timeout",
							"Time after which an idle armdb shard gives its write buffer back.",
							"A shard that appended nothing for this long, and whose "
							"entries are all in its file, frees its write buffer; its "
							"next append allocates one again. 0: buffers are kept.",
							&armdb_write_buffer_idle_ms,
							10000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("armdb.keydir_idle_timeout",
							"Time after which the key directory of a small armdb table no session uses is given back.",
							"The key directory of a table of fewer than 32 virtual pages "
							"(9,312 row slots) that no session used for this long, whose "
							"entries are all in its files and synced, and that nobody "
							"holds a lock on, is freed; its next use loads it again from "
							"its files. 0: key directories are kept.",
							&armdb_keydir_idle_ms,
							300000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
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

	DefineCustomIntVariable("armdb.memory_initial",
							"Shared memory set aside for the armdb key directories at server start.",
							"Part of PostgreSQL's main shared memory segment (huge pages "
							"apply to it); past it the key directories grow into dynamic "
							"shared memory segments, up to armdb.memory.",
							&armdb_memory_initial_mb,
							64, 8, ARMDB_MAX_MEMORY_MB,
							PGC_POSTMASTER, GUC_UNIT_MB,
							NULL, NULL, NULL);

	/* after armdb.memory_initial: its default depends on it */
	DefineCustomIntVariable("armdb.memory",
							"Limit of the shared memory of the armdb key directories and write buffers.",
							"Taken as tables need it. The default is a quarter of the "
							"machine's memory (bounded by /dev/shm's size); a reload "
							"applies a new value.",
							&armdb_memory_mb,
							default_memory_mb(), 8, ARMDB_MAX_MEMORY_MB,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, assign_memory_mb, NULL);

	DefineCustomStringVariable("armdb.data_directory",
							   "Directory of armdb's files; empty means \"armdb\" inside the data directory.",
							   NULL,
							   &armdb_data_directory,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	/* defines armdb.sweep_delay: before the prefix is reserved */
	armdb_sweep_init();
	/* armdb.load_workers */
	armdb_load_init();
	/* defines armdb.compaction*: likewise */
	armdb_compact_init();
	/* defines armdb.sync_at_commit and armdb.flush_interval, and the flusher */
	armdb_durable_init();

	armdb_crypt_define_gucs();
	MarkGUCPrefixReserved("armdb");
	armdb_crypt_load_keys();
	/* after the keys: the decrypted cache is for servers that have them */
	armdb_decrypted_init();

	armdb_xact_init();
	armdb_utility_init();
	armdb_wal_init();
	armdb_bitmapscan_init();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = armdb_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = armdb_shmem_startup;
}
