/*-------------------------------------------------------------------------
 *
 * image.c
 *	  Key directory images: what a large table's keydir held at a clean
 *	  shutdown, read back at its first load instead of its files.
 *
 * Loading a keydir reads every entry of a table's files (or of their hint
 * files) and judges each: some 200 ns an entry, two seconds for ten
 * million rows.  At a clean shutdown the keydir in memory is exactly what
 * the files say, judged, so the sweep launcher, the last armdb process to
 * exit, writes it to "keydir.image" in the table's directory, and the next
 * load copies it back: versions, page owners, runs, free slots, file
 * statistics and each shard's end.  A process that finds the keydir
 * restored this way cannot tell it from one that stayed in memory across
 * the restart, which is what the restart was to it: transactions that were
 * running at the shutdown have aborted (prepared ones are still running),
 * as with heap's tuple headers.
 *
 * An image is only ever used in place of the files it was written from:
 *
 *	 - It is written once nothing else can change a keydir: the launcher
 *	   first sets images_writing, which makes every later keydir use fail,
 *	   then waits until no backend, autovacuum process or background worker
 *	   is left (their exit callbacks wrote their buffers out), and skips a
 *	   keydir whose buffers are not all in their files, that is being
 *	   merged, salvaged or whose storage failed.
 *	 - It records, for every shard, the name and size of every file in the
 *	   shard's directory; the load compares them with the directory as it
 *	   is.  Files are only ever appended to or added (merges write new
 *	   numbers), so equal names and sizes mean the same entries.
 *	 - It is taken away (removed, and its directory synced) by the first
 *	   load of the keydir, whether it is used or not, before anything can
 *	   change the files; the next clean shutdown writes a new one.
 *	 - It carries the token of the shutdown that wrote it, which writes the
 *	   token to "images.token" in armdb's directory once all its images are
 *	   in place.  The postmaster reads and removes that file at the next
 *	   start, and keeps the token only if the start follows that clean
 *	   shutdown with no recovery at all (pg_control says shut down, and
 *	   there is no backup_label, standby.signal or recovery.signal): an
 *	   image copied by a base backup, left by an earlier shutdown or
 *	   brought to a standby or through a rewind is never read back, whatever
 *	   replay did to the table meanwhile (freezing rewrites hint files in
 *	   place, the visibility map is not in the listing).
 *	 - Only a normal load uses it (not during recovery or on a standby, not
 *	   when salvaging); anything else only removes it.
 *	 - A CRC covers it all, and its header names the system, relation,
 *	   shard count and record layout: a damaged, foreign or older image is
 *	   logged and the files are loaded instead.
 *	 - An encrypted table has none: an image is not authenticated, and
 *	   everything a load takes from an encrypted table's files is
 *	   (storage/cipher.h).  Its load reads its hint files, whose MACs it
 *	   checks, and scans the rest.
 *
 * Layout: a header; per shard its state, free slots, file statistics and
 * directory listing; the page owners; every allocated page (number, flags,
 * version records); the CRC of all that.  Nothing read from an image acts
 * on the files (the shards are opened at their ends) before its CRC and
 * bounds are checked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/autovacuum.h"
#include "postmaster/bgworker_internals.h"
#include "replication/walsender.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/pidfile.h"
#include "utils/timestamp.h"

#include "armdb.h"
#include "keydir/files.h"
#include "keydir/image.h"
#include "keydir/keydir_int.h"
#include "keydir/relstorage.h"
#include "storage/format.h"

#define IMAGE_MAGIC		0x4b494441	/* "ADIK" */
#define IMAGE_VERSION	5	/* 4: file lists may lack a file (files.h) */

/* in armdb's directory: the token of the last shutdown's images */
#define IMAGE_TOKEN_FILE	"images.token"

/* how long a shutdown waits for the other processes before giving up */
#define IMAGE_WAIT_MS	60000

typedef struct ImageHeader
{
	uint32		magic;
	uint32		version;
	uint64		token;			/* of the shutdown that wrote it */
	uint64		system_id;		/* pg_control's */
	Oid			db_node;
	Oid			rel_node;
	uint32		nshards;
	uint32		version_size;	/* sizeof(ArmdbVersion) */
	uint32		slots_per_page;
	uint32		pad;
	uint64		npages;			/* kd->npages */
	uint64		next_page;		/* kd->next_page */
	uint64		nowners;		/* page owners that follow */
	uint64		nimaged;		/* pages that follow */
	uint64		next_gsn;
	uint64		nversions;
	uint64		newest_writer;	/* FullTransactionId (keydir.h) */
	TransactionId orphan_horizon;
	uint32		pad2;
} ImageHeader;

typedef struct ImageShard
{
	uint64		next_slot;
	uint64		run_end;
	uint64		pending_first;
	uint32		run_pages;
	uint32		pending_pages;
	uint32		pending_appended;
	uint32		active_file_id;
	uint64		append_end;		/* where the active file's entries end */
	uint32		next_file_id;
	uint32		files_upto;
	uint64		dead_bytes;
	uint32		nfree;			/* free slots that follow */
	uint32		nfiles;			/* ArmdbFileStat that follow */
	uint32		nlisted;		/* ImageFile that follow */
	uint32		pad;
} ImageShard;

/* a file of the shard's directory */
typedef struct ImageFile
{
	uint32		file_id;
	uint32		kind;			/* ArmdbFileKind */
	uint64		size;
} ImageFile;

typedef struct ImagePage
{
	uint64		pageno;
	uint32		vm_maybe_set;
	uint32		has_extra;
	/*
	 * ArmdbVersion[ARMDB_SLOTS_PER_PAGE] follow, then, if has_extra, the
	 * page's side array, ArmdbVersionExtra[ARMDB_SLOTS_PER_PAGE]
	 */
} ImagePage;

#define IMAGE_BUFFER_SIZE	(1024 * 1024)

/* Buffered reading or writing of an image, with the CRC of what passed. */
typedef struct ImageIo
{
	int			fd;
	const char *path;
	char	   *buf;
	Size		len;			/* bytes in buf (reading) */
	Size		pos;			/* next byte of buf */
	pg_crc32c	crc;
	uint64		bytes;			/* passed so far */
	bool		eof;			/* reading: the file ended */
} ImageIo;

static void
io_init(ImageIo *io, int fd, const char *path)
{
	io->fd = fd;
	io->path = path;
	io->buf = palloc(IMAGE_BUFFER_SIZE);
	io->len = io->pos = 0;
	io->bytes = 0;
	io->eof = false;
	INIT_CRC32C(io->crc);
}

static bool
io_flush(ImageIo *io)
{
	Size		done = 0;

	while (done < io->pos)
	{
		ssize_t		n;

		pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
		n = write(io->fd, io->buf + done, io->pos - done);
		pgstat_report_wait_end();
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		done += n;
	}
	io->pos = 0;
	return true;
}

static bool
io_write(ImageIo *io, const void *data, Size len)
{
	const char *p = data;

	COMP_CRC32C(io->crc, data, len);
	io->bytes += len;
	while (len > 0)
	{
		Size		n = Min(len, IMAGE_BUFFER_SIZE - io->pos);

		memcpy(io->buf + io->pos, p, n);
		io->pos += n;
		p += n;
		len -= n;
		if (io->pos == IMAGE_BUFFER_SIZE && !io_flush(io))
			return false;
	}
	return true;
}

/* len bytes, or false: a read error (errno) or the file ended (io->eof) */
static bool
io_read(ImageIo *io, void *data, Size len)
{
	char	   *p = data;

	while (len > 0)
	{
		Size		n;

		if (io->pos == io->len)
		{
			ssize_t		got;

			pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_READ);
			got = read(io->fd, io->buf, IMAGE_BUFFER_SIZE);
			pgstat_report_wait_end();
			if (got < 0)
				return false;
			if (got == 0)
			{
				io->eof = true;
				return false;
			}
			io->len = got;
			io->pos = 0;
		}
		n = Min(len, io->len - io->pos);
		memcpy(p, io->buf + io->pos, n);
		io->pos += n;
		p += n;
		len -= n;
	}
	COMP_CRC32C(io->crc, data, p - (char *) data);
	io->bytes += p - (char *) data;
	return true;
}

static int
cmp_image_file(const void *a, const void *b)
{
	const ImageFile *x = a;
	const ImageFile *y = b;

	if (x->file_id != y->file_id)
		return (x->file_id > y->file_id) - (x->file_id < y->file_id);
	return (x->kind > y->kind) - (x->kind < y->kind);
}

/*
 * The data and hint files of a shard directory, with their sizes, in order
 * (palloc'd; a missing directory has none).  False, with *why, if the
 * directory cannot be read or holds anything else (temporary files, a
 * merge's manifest, a damaged tail set aside): such a shard is not at
 * rest, and its image is neither written nor used.
 */
static bool
list_shard_dir(const char *dir, ImageFile **files, uint32 *nfiles,
			   const char **why)
{
	DIR		   *d;
	struct dirent *de;
	uint32		cap = 16;

	*files = palloc(sizeof(ImageFile) * cap);
	*nfiles = 0;
	d = AllocateDir(dir);
	if (d == NULL)
	{
		if (errno == ENOENT)
			return true;
		*why = "a shard directory could not be read";
		return false;
	}
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		uint32		file_id;
		ArmdbFileKind kind;
		char		path[MAXPGPATH];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!armdb_file_name_parse(de->d_name, &file_id, &kind) ||
			(kind != ARMDB_FILE_DATA && kind != ARMDB_FILE_HINT))
		{
			FreeDir(d);
			*why = "a shard directory holds files other than data and hint files";
			return false;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0)
		{
			FreeDir(d);
			*why = "a file of a shard directory could not be examined";
			return false;
		}
		if (*nfiles == cap)
		{
			cap *= 2;
			*files = repalloc(*files, sizeof(ImageFile) * cap);
		}
		(*files)[*nfiles].file_id = file_id;
		(*files)[*nfiles].kind = (uint32) kind;
		(*files)[*nfiles].size = (uint64) st.st_size;
		(*nfiles)++;
	}
	FreeDir(d);
	if (*nfiles > 1)
		qsort(*files, *nfiles, sizeof(ImageFile), cmp_image_file);
	return true;
}

static void
image_path(char *path, const char *dir)
{
	snprintf(path, MAXPGPATH, "%s/%s", dir, ARMDB_IMAGE_FILE);
}

/* ----------------
 * Writing, at a clean shutdown
 * ----------------
 */

/* Why kd has no image to write, or NULL. */
static const char *
not_at_rest(ArmdbRelKeydir *kd)
{
	if (kd->stale)
		return "replay could not keep it current";
	if (kd->damage_seen)
		return "a read found a damaged entry";
	if (pg_atomic_read_u64(&kd->nallocated) < ARMDB_IMAGE_MIN_PAGES)
		return "small";
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);

		if (rt->st.failed || rt->st.sealed)
			return "a shard's storage failed";
		if (rt->damaged)
			return "it was salvaged";
		if (rt->st.written_end != rt->st.append_end)
			return "a shard's buffer was not written out";
	}
	return NULL;
}

typedef enum FinishResult
{
	FINISHED,
	WRITE_FAILED,
	SYNC_FAILED,
	CLOSE_FAILED,
	RENAME_FAILED
} FinishResult;

/*
 * Put a file written under the temporary name tmp (fd, open) in place at
 * path, durably: sync, close, rename, sync the directory.  written: the
 * writes succeeded.  On any failure tmp is removed (errno kept).
 */
static FinishResult
finish_file(int fd, bool written, const char *tmp, const char *path)
{
	FinishResult result = written ? FINISHED : WRITE_FAILED;

	if (result == FINISHED && pg_fsync(fd) != 0)
		result = SYNC_FAILED;
	if (CloseTransientFile(fd) != 0 && result == FINISHED)
		result = CLOSE_FAILED;
	if (result == FINISHED && durable_rename(tmp, path, LOG) != 0)
		result = RENAME_FAILED;
	if (result != FINISHED)
	{
		int			save_errno = errno;

		(void) unlink(tmp);
		errno = save_errno;
	}
	return result;
}

/*
 * Write kd's image beside its files; false with *why (errno set for I/O)
 * if it could not.  Nothing else runs: no lock is needed, but the page
 * locks are taken anyway, as any reader of a page does.
 */
static bool
write_image(ArmdbRelKeydir *kd, uint64 token, int64 *bytes, const char **why)
{
	dsa_area   *area = armdb_keydir_area();
	RelFileNodeBackend rnode = armdb_keydir_rnode(kd);
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	ImageHeader hdr;
	ImageIo		io;
	int			fd;
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	bool		ok = true;

	armdb_rel_dir_path(dir, rnode);
	image_path(path, dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = IMAGE_MAGIC;
	hdr.version = IMAGE_VERSION;
	hdr.token = token;
	hdr.system_id = GetSystemIdentifier();
	hdr.db_node = kd->key.dbNode;
	hdr.rel_node = kd->key.relNode;
	hdr.nshards = kd->nshards;
	hdr.version_size = sizeof(ArmdbVersion);
	hdr.slots_per_page = ARMDB_SLOTS_PER_PAGE;
	hdr.npages = npages;
	hdr.next_page = kd->next_page;
	hdr.nowners = Max(npages, kd->next_page);
	for (uint64 p = 0; p < npages; p++)
		if (armdb_keydir_page(kd, p) != NULL)
			hdr.nimaged++;
	hdr.next_gsn = pg_atomic_read_u64(&kd->next_gsn);
	hdr.nversions = pg_atomic_read_u64(&kd->nversions);
	hdr.newest_writer = pg_atomic_read_u64(&kd->newest_writer);
	hdr.orphan_horizon = kd->orphan_horizon;

	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		*why = "could not create the image";
		return false;
	}
	io_init(&io, fd, tmp);
	ok = io_write(&io, &hdr, sizeof(hdr));

	for (uint32 shard = 0; ok && shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		char		sdir[MAXPGPATH];
		ImageShard	is;
		ImageFile  *listed;
		uint32		nlisted;

		armdb_shard_dir_path(sdir, rnode, shard);
		if (!list_shard_dir(sdir, &listed, &nlisted, why))
		{
			ok = false;
			errno = 0;
			break;
		}
		memset(&is, 0, sizeof(is));
		is.next_slot = rt->next_slot;
		is.run_end = rt->run_end;
		is.pending_first = rt->pending_first;
		is.run_pages = rt->run_pages;
		is.pending_pages = rt->pending_pages;
		is.pending_appended = rt->pending_appended;
		is.active_file_id = rt->st.active_file_id;
		is.append_end = rt->st.append_end;
		is.next_file_id = rt->st.next_file_id;
		is.files_upto = rt->files_upto;
		is.dead_bytes = pg_atomic_read_u64(&rt->dead_bytes);
		is.nlisted = nlisted;

		/*
		 * Under the shard's lock, as its other readers: a walsender running
		 * SQL may still prune (and free slots) while the images are written.
		 * What it does after this is lost, which only leaves work to do.
		 */
		LWLockAcquire(&rt->lock, LW_SHARED);
		is.nfree = rt->nfree;
		is.nfiles = rt->nfiles;
		ok = io_write(&io, &is, sizeof(is)) &&
			(rt->nfree == 0 ||
			 io_write(&io, dsa_get_address(area, rt->free_slots),
					  sizeof(uint32) * rt->nfree)) &&
			(rt->nfiles == 0 ||
			 io_write(&io, dsa_get_address(area, rt->files),
					  sizeof(ArmdbFileStat) * rt->nfiles));
		LWLockRelease(&rt->lock);
		ok = ok && (nlisted == 0 ||
					io_write(&io, listed, sizeof(ImageFile) * nlisted));
		pfree(listed);
	}
	if (!ok && *why == NULL)
		*why = "could not write the image";

	for (uint64 p = 0; ok && p < hdr.nowners; p++)
	{
		uint16		owner = keydir_page_owner(kd, p);

		ok = io_write(&io, &owner, sizeof(owner));
	}
	for (uint64 p = 0; ok && p < npages; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);
		ImagePage	ip;

		if (page == NULL)
			continue;
		memset(&ip, 0, sizeof(ip));
		ip.pageno = p;
		ip.vm_maybe_set = page->vm_maybe_set;
		LWLockAcquire(&page->lock, LW_SHARED);
		ip.has_extra = DsaPointerIsValid(page->extra);
		ok = io_write(&io, &ip, sizeof(ip)) &&
			io_write(&io, page->v, sizeof(page->v)) &&
			(!ip.has_extra ||
			 io_write(&io, dsa_get_address(armdb_keydir_area(), page->extra),
					  sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE));
		LWLockRelease(&page->lock);
	}
	if (ok)
	{
		pg_crc32c	crc = io.crc;

		FIN_CRC32C(crc);
		ok = io_write(&io, &crc, sizeof(crc)) && io_flush(&io);
	}
	*bytes = (int64) io.bytes;
	pfree(io.buf);
	switch (finish_file(fd, ok, tmp, path))
	{
		case FINISHED:
			return true;
		case WRITE_FAILED:
			if (*why == NULL)
				*why = "could not write the image";
			break;
		case SYNC_FAILED:
			*why = "could not sync the image";
			break;
		case CLOSE_FAILED:
			*why = "could not close the image";
			break;
		case RENAME_FAILED:
			*why = "could not rename the image into place";
			break;
	}
	return false;
}

/*
 * Is a process other than this one still able to use a keydir?  Backends,
 * autovacuum processes and background workers; not walsenders, which stay
 * until after the shutdown checkpoint (one that runs SQL on armdb tables
 * would find images_writing set).  A PGPROC keeps its pid after its
 * process exits, so a process counts only while it is in the proc array,
 * which it leaves after its exit callbacks have written its buffers out.
 */
static bool
others_running(void)
{
	int			nprocs = MaxConnections + autovacuum_max_workers + 1 +
		max_worker_processes;

	for (int i = 0; i < nprocs; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		int			pid = proc->pid;

		if (pid != 0 && proc != MyProc && BackendPidGetProc(pid) == proc)
			return true;
	}
	return false;
}

typedef struct ImageTarget
{
	ArmdbRelKey key;
	uint64		generation;
} ImageTarget;

typedef struct ImageTargets
{
	ImageTarget *items;
	int			n;
	int			cap;
} ImageTargets;

static void
add_target(ArmdbRelKeydir *kd, void *arg)
{
	ImageTargets *t = arg;

	if (t->n == t->cap)
	{
		t->cap *= 2;
		t->items = repalloc(t->items, sizeof(ImageTarget) * t->cap);
	}
	t->items[t->n].key = kd->key;
	t->items[t->n].generation = kd->generation;
	t->n++;
}

static void
token_path(char *path)
{
	char		base[MAXPGPATH];

	armdb_data_dir_path(base);
	snprintf(path, MAXPGPATH, "%s/%s", base, IMAGE_TOKEN_FILE);
}

/* Write the token durably (temporary name, fsync, rename); false: errno. */
static bool
write_token(uint64 token)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	int			fd;
	bool		ok;

	token_path(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		return false;
	ok = write(fd, &token, sizeof(token)) == sizeof(token);
	return finish_file(fd, ok, tmp, path) == FINISHED;
}

void
armdb_keydir_images_startup(const ControlFileData *control, bool crc_ok)
{
	char		path[MAXPGPATH];
	uint64		token = 0;
	int			fd;

	armdb_shared->image_token = 0;
	if (control == NULL)
		return;					/* not the postmaster */
	token_path(path);
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return;
	if (read(fd, &token, sizeof(token)) != sizeof(token))
		token = 0;
	close(fd);
	/* used up by this start, whatever comes of it */
	if (unlink(path) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("armdb: could not remove \"%s\": %m", path),
				 errdetail("No key directory image is used.")));
		return;
	}
	{
		char		base[MAXPGPATH];

		armdb_data_dir_path(base);
		(void) fsync_fname_ext(base, true, false, LOG);
	}
	/* a start with recovery of any kind replays changes images do not have */
	if (!crc_ok || control->state != DB_SHUTDOWNED ||
		access(BACKUP_LABEL_FILE, F_OK) == 0 ||
		access(STANDBY_SIGNAL_FILE, F_OK) == 0 ||
		access(RECOVERY_SIGNAL_FILE, F_OK) == 0)
		return;
	armdb_shared->image_token = token;
}

/*
 * Is the server shutting down?  The postmaster says so in its lock file
 * before it signals anybody: a SIGTERM that came otherwise (an
 * administrator's pg_terminate_backend) is not a shutdown.
 */
static bool
server_stopping(void)
{
	FILE	   *f = AllocateFile("postmaster.pid", "r");
	char		line[MAXPGPATH];
	bool		stopping = false;

	if (f == NULL)
		return false;
	for (int i = 1; fgets(line, sizeof(line), f) != NULL; i++)
		if (i == LOCK_FILE_LINE_PM_STATUS)
		{
			stopping = strncmp(line, PM_STATUS_STOPPING,
							   strlen(PM_STATUS_STOPPING)) == 0;
			break;
		}
	FreeFile(f);
	return stopping;
}

bool
armdb_keydir_images_write(void)
{
	TimestampTz start = GetCurrentTimestamp();
	ImageTargets targets;
	uint64		token;
	int			written = 0;
	int			failed = 0;
	int64		total = 0;

	if (!server_stopping())
		return false;
	pg_atomic_write_u32(&armdb_shared->images_writing, 1);
	pg_memory_barrier();
	while (others_running())
	{
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   IMAGE_WAIT_MS))
		{
			ereport(LOG,
					(errmsg("armdb: saved no key directory: other processes were still running after %d s of shutdown",
							IMAGE_WAIT_MS / 1000),
					 errdetail("Their tables load from their files at the next start.")));
			return true;
		}
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_LATCH_SET | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	if (!pg_strong_random(&token, sizeof(token)) || token == 0)
		token = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	targets.cap = 64;
	targets.n = 0;
	targets.items = palloc(sizeof(ImageTarget) * targets.cap);
	armdb_keydir_foreach_loaded(add_target, &targets);
	for (int i = 0; i < targets.n; i++)
	{
		ArmdbRelKeydir *kd = armdb_keydir_find(&targets.items[i].key,
											   targets.items[i].generation);
		const char *why = NULL;
		int64		bytes = 0;

		/* an encrypted table's would not be read back (restore()) */
		if (kd == NULL || kd->encrypted || not_at_rest(kd) != NULL)
			continue;
		if (write_image(kd, token, &bytes, &why))
		{
			written++;
			total += bytes;
		}
		else
		{
			int			save_errno = errno;
			const char *cause = save_errno != 0 ? strerror(save_errno) : NULL;

			failed++;
			ereport(LOG,
					(errmsg("armdb: could not save the key directory of relation %u/%u: %s%s%s",
							kd->key.dbNode, kd->key.relNode, why,
							cause ? ": " : "", cause ? cause : ""),
					 errdetail("The table loads from its files at the next start.")));
		}
	}
	/* the token last: it makes them count */
	if (written > 0 && !write_token(token))
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("armdb: could not write the token of the key directory images: %m"),
				 errdetail("The tables load from their files at the next start.")));
		written = 0;
	}
	if (written > 0 || failed > 0)
		ereport(LOG,
				(errmsg("armdb: saved the key directories of %d tables (%lld MB) in %ld ms for the next start%s",
						written, (long long) (total >> 20),
						TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()),
						failed > 0 ? psprintf(", %d could not be saved", failed) : "")));
	pfree(targets.items);
	return true;
}

/* ----------------
 * Reading, at a keydir's first load
 * ----------------
 */

/*
 * Restore kd from the image open in io (size bytes); false with *why if it
 * does not fit the files or is damaged (kd is then partly built: the caller
 * frees it).  Pages and page owners go into memory as they come; the
 * shards are opened at their ends only once the CRC has vouched for it all.
 */
static bool
restore(ArmdbRelKeydir *kd, RelFileNodeBackend rnode, ImageIo *io,
		uint64 size, const ArmdbStoreSettings *settings, const char **why)
{
	ImageHeader hdr;
	ImageShard *shards;
	uint32	  **free_slots;
	pg_crc32c	crc;
	pg_crc32c	stored;
	char		extra;
	uint16	   *owners;

#define READ_OR_FAIL(ptr, len) \
	do { \
		if (!io_read(io, (ptr), (len))) \
		{ \
			*why = io->eof ? "it ends too soon" : "it could not be read"; \
			return false; \
		} \
	} while (0)
/* a count read from the image: what the file could hold at most */
#define FITS(n, each) ((uint64) (n) <= size / (each))

	READ_OR_FAIL(&hdr, sizeof(hdr));
	if (hdr.magic != IMAGE_MAGIC || hdr.version != IMAGE_VERSION ||
		hdr.version_size != sizeof(ArmdbVersion) ||
		hdr.slots_per_page != ARMDB_SLOTS_PER_PAGE)
	{
		*why = "it is not an image this armdb can read";
		return false;
	}
	if (hdr.system_id != GetSystemIdentifier() ||
		hdr.db_node != rnode.node.dbNode || hdr.rel_node != rnode.node.relNode)
	{
		*why = "it belongs to another relation or cluster";
		return false;
	}
	if (hdr.token == 0 || hdr.token != armdb_shared->image_token)
	{
		*why = "it was not saved by the clean shutdown this start follows";
		return false;
	}
	kd->nshards = armdb_rel_storage_read_meta(rnode, NULL, &kd->encrypted,
											  kd->storage_id);
	/* an image has a CRC, not a MAC: an encrypted table's is not taken */
	if (kd->encrypted)
	{
		*why = "the table is encrypted, and an image is not authenticated";
		return false;
	}
	if (hdr.nshards != kd->nshards ||
		hdr.nowners > ARMDB_MAX_SLOTS / ARMDB_SLOTS_PER_PAGE ||
		!FITS(hdr.nowners, sizeof(uint16)) ||
		!FITS(hdr.nimaged, sizeof(ImagePage) + sizeof(ArmdbVersion) * ARMDB_SLOTS_PER_PAGE) ||
		hdr.nimaged > hdr.npages || hdr.nowners < hdr.npages)
	{
		*why = "its header does not fit the relation";
		return false;
	}
	keydir_alloc(&kd->shards, sizeof(ArmdbShardRt) * kd->nshards,
				 "shard states", settings);
	kd->chunks = new_page_dir(ARMDB_PAGE_DIR_MIN, settings);

	shards = palloc(sizeof(ImageShard) * kd->nshards);
	free_slots = palloc0(sizeof(uint32 *) * kd->nshards);
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ImageShard *is = &shards[shard];
		ImageFile  *listed;
		ImageFile  *present;
		uint32		npresent;
		char		sdir[MAXPGPATH];
		bool		active_listed;

		READ_OR_FAIL(is, sizeof(*is));
		active_listed = is->active_file_id == 0;
		if (!FITS(is->nfree, sizeof(uint32)) ||
			!FITS(is->nfiles, sizeof(ArmdbFileStat)) ||
			!FITS(is->nlisted, sizeof(ImageFile)))
		{
			*why = "a shard's record is damaged";
			return false;
		}
		if (is->nfree > 0)
		{
			free_slots[shard] = palloc_extended(sizeof(uint32) * is->nfree,
												MCXT_ALLOC_HUGE);
			READ_OR_FAIL(free_slots[shard], sizeof(uint32) * is->nfree);
		}
		init_shard(rt, shard, settings);
		if (is->nfiles > 0)
		{
			if (!armdb_files_reserve(rt, is->nfiles))
				armdb_keydir_report_full("a shard's file list", settings);
			READ_OR_FAIL(dsa_get_address(armdb_keydir_area(), rt->files),
						 sizeof(ArmdbFileStat) * is->nfiles);
			rt->nfiles = is->nfiles;
		}
		listed = palloc(sizeof(ImageFile) * Max(is->nlisted, 1));
		if (is->nlisted > 0)
			READ_OR_FAIL(listed, sizeof(ImageFile) * is->nlisted);

		/* the files as they are now, against the files it was taken from */
		armdb_shard_dir_path(sdir, rnode, shard);
		if (!list_shard_dir(sdir, &present, &npresent, why))
			return false;
		if (npresent != is->nlisted ||
			memcmp(present, listed, sizeof(ImageFile) * npresent) != 0)
		{
			*why = "the files have changed since it was written";
			return false;
		}
		/* ... and its end within its active file */
		for (uint32 i = 0; i < npresent && !active_listed; i++)
			active_listed = present[i].file_id == is->active_file_id &&
				present[i].kind == ARMDB_FILE_DATA &&
				is->append_end >= ARMDB_FILE_HEADER_SIZE &&
				is->append_end <= present[i].size;
		if (!active_listed)
		{
			*why = "a shard's end is not in its active file";
			return false;
		}
	}

	owners = palloc_extended(sizeof(uint16) * Max(hdr.nowners, 1),
							 MCXT_ALLOC_HUGE);
	READ_OR_FAIL(owners, sizeof(uint16) * hdr.nowners);
	for (uint64 p = 0; p < hdr.nowners; p++)
	{
		if (owners[p] > kd->nshards)
		{
			*why = "a page's owner is damaged";
			return false;
		}
		if (owners[p] != 0)
			chunk_for_page(kd, p, settings)->owner[p % ARMDB_PAGES_PER_CHUNK] = owners[p];
	}

	for (uint64 i = 0; i < hdr.nimaged; i++)
	{
		ImagePage	ip;
		ArmdbPage  *page;

		READ_OR_FAIL(&ip, sizeof(ip));
		if (ip.pageno >= hdr.npages)
		{
			*why = "a page's number is damaged";
			return false;
		}
		page = page_for_slot(kd, ip.pageno * ARMDB_SLOTS_PER_PAGE, true,
							 settings);
		READ_OR_FAIL(page->v, sizeof(page->v));
		page->vm_maybe_set = ip.vm_maybe_set != 0;
		if (ip.has_extra)
		{
			armdb_page_prepare_extra(page, ip.pageno, settings);
			READ_OR_FAIL(dsa_get_address(armdb_keydir_area(), page->extra),
						 sizeof(ArmdbVersionExtra) * ARMDB_SLOTS_PER_PAGE);
		}
	}

	crc = io->crc;
	FIN_CRC32C(crc);
	READ_OR_FAIL(&stored, sizeof(stored));
	if (!EQ_CRC32C(crc, stored))
	{
		*why = "its checksum does not match";
		return false;
	}
	if (io_read(io, &extra, 1) || !io->eof)
	{
		*why = "it has bytes past its end";
		return false;
	}
#undef READ_OR_FAIL
#undef FITS

	/* vouched for: each shard opened at its end, and its state as it was */
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ImageShard *is = &shards[shard];
		ArmdbRecoveryReport report;

		memset(&report, 0, sizeof(report));
		report.last_file_id = is->active_file_id;
		report.end_offset = is->append_end;
		report.max_file_id = is->next_file_id > 0 ? is->next_file_id - 1 : 0;
		load_shard_state(kd, rt, armdb_keydir_shard_files(kd, shard, settings),
						 &report, LOAD_NORMAL, false, settings);
		rt->next_slot = is->next_slot;
		rt->run_end = is->run_end;
		rt->run_pages = is->run_pages;
		rt->pending_first = is->pending_first;
		rt->pending_pages = is->pending_pages;
		rt->pending_appended = is->pending_appended != 0;
		rt->files_upto = is->files_upto;
		pg_atomic_write_u64(&rt->dead_bytes, is->dead_bytes);
		for (uint32 i = 0; i < is->nfree; i++)
			if (!armdb_keydir_free_slot(rt, free_slots[shard][i]))
				armdb_keydir_report_full("a shard's free slots", settings);
	}
	pg_atomic_write_u64(&kd->npages, hdr.npages);
	kd->next_page = hdr.next_page;
	pg_atomic_write_u64(&kd->next_gsn, hdr.next_gsn);
	pg_atomic_write_u64(&kd->nversions, hdr.nversions);
	pg_atomic_write_u64(&kd->newest_writer, hdr.newest_writer);
	kd->orphan_horizon = hdr.orphan_horizon;
	return true;
}

bool
armdb_keydir_image_load(ArmdbRelKeydir *kd, RelFileNodeBackend rnode,
						const ArmdbStoreSettings *settings, bool use)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	int			fd;
	ImageIo		io;
	struct stat st;
	const char *why = NULL;
	bool		ok;
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext mcxt;
	MemoryContext oldcontext;

	if (rnode.backend != InvalidBackendId)
		return false;			/* temporary tables have none */
	armdb_rel_dir_path(dir, rnode);
	image_path(path, dir);
	/* what a shutdown cut short left, if anything */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void) unlink(tmp);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("armdb: could not open \"%s\": %m", path)));
		return false;
	}

	/*
	 * Taken away before anything can change the files it describes.  One
	 * that cannot be removed is harmless (its token is used up) but not
	 * used.
	 */
	if (unlink(path) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("armdb: could not remove \"%s\", which is not used: %m",
						path)));
		CloseTransientFile(fd);
		return false;
	}
	fsync_fname(dir, true);
	if (!use || fstat(fd, &st) != 0)
	{
		CloseTransientFile(fd);
		return false;
	}

	mcxt = AllocSetContextCreate(CurrentMemoryContext, "armdb keydir image",
								 ALLOCSET_DEFAULT_SIZES);
	oldcontext = MemoryContextSwitchTo(mcxt);
	io_init(&io, fd, path);
	ok = restore(kd, rnode, &io, (uint64) st.st_size, settings, &why);
	MemoryContextSwitchTo(oldcontext);
	MemoryContextDelete(mcxt);
	CloseTransientFile(fd);
	if (!ok)
	{
		ereport(LOG,
				(errmsg("armdb: did not use the key directory image of relation %u/%u: %s",
						rnode.node.dbNode, rnode.node.relNode, why),
				 errdetail("The table is loaded from its files instead.")));
		forget_shard_files(kd);
		free_keydir_memory(kd);
		return false;
	}
	ereport(LOG,
			(errmsg("armdb: loaded the key directory of relation %u/%u from its image in %ld ms: %llu row versions",
					rnode.node.dbNode, rnode.node.relNode,
					TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()),
					(unsigned long long) pg_atomic_read_u64(&kd->nversions))));
	return true;
}
