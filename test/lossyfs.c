/*-------------------------------------------------------------------------
 *
 * lossyfs.c
 *	  A FUSE pass-through file system that can simulate a power loss: for
 *	  armdb's power-loss test (t/018_power_loss.pl), not part of armdb.
 *
 * kill -9 of every server process keeps everything the processes wrote: it
 * all sits in the operating system's page cache, which survives them.  A
 * power cut keeps only what was fsynced.  lossyfs mounts a backing
 * directory elsewhere, passes every operation through to it, and remembers
 * what a power cut would take away.  At SIGUSR1 (sent once the server's
 * processes are gone) it fails every further change, rolls the backing
 * directory back to what a power loss could have left, and reports that on
 * stderr ("lossyfs: power cut: ..."); the caller then unmounts it
 * (fusermount3 -u) and mounts it again, or the backing directory itself:
 *
 *	 - data: every write, truncation and fallocate of a regular file since
 *	   its last fsync() or fdatasync() (through any descriptor) is undone.
 *	   Before the first change to a page (4 kB) that was durable, the page's
 *	   durable content is saved; the cut writes the saved pages back and
 *	   sets the file to its durable size.  A sync forgets the saved pages.
 *	 - new files and directories: by default, as on ext4 (data=ordered),
 *	   whose journal commit keeps every metadata change made before it, one
 *	   created during this mount disappears unless some fsync, of anything,
 *	   came after its creation.  With -o strict_dirs, as POSIX has it, one
 *	   disappears unless it was fsynced itself, or the directory it is in
 *	   was fsynced after it was created.
 *
 * Not modelled: renames and unlinks are kept whether or not their
 * directory was fsynced (a real power loss may undo them), and writes are
 * lost or kept per file, not per sector in between syncs (a real disk may
 * also keep some of the unsynced ones: the test only needs the worst case).
 * The kernel's page cache is bypassed for writes (FUSE without
 * writeback_cache writes through), so a write() a process saw succeed has
 * reached lossyfs.  O_DIRECT opens succeed (the backing file is opened
 * without it).  Nothing is fsynced to the backing file system: durability
 * there is beside the point.
 *
 * Usage: lossyfs BACKING_DIR MOUNTPOINT [-o strict_dirs] [FUSE options]
 * It stays in the foreground; its report goes to stderr.
 *
 * Build: make test/lossyfs (needs libfuse3-dev; the fusermount3 of fuse3
 * lets a user who is not root mount and unmount it).
 *
 *-------------------------------------------------------------------------
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#define PAGE_SZ 4096

/* one saved durable page of a file */
typedef struct SavedPage
{
	uint64_t	pageno;
	size_t		len;			/* bytes of the durable content in it */
	char		data[PAGE_SZ];
} SavedPage;

/* what lossyfs knows about one backing inode that changed since the mount */
typedef struct Inode
{
	ino_t		ino;
	pthread_mutex_t lock;		/* held across a change and its bookkeeping */
	off_t		durable_size;	/* size as of the last sync */
	void	   *pages;			/* tsearch tree of SavedPage */
	uint64_t	npages;
	uint64_t	created_seq;	/* 0: it existed at mount */
	int			synced_since_created;
	uint64_t	dir_synced_seq; /* for directories: when last fsynced */
} Inode;

static const char *backing;
static int	rootfd = -1;
static int	strict_dirs = 0;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static void *inodes;			/* tsearch tree of Inode, by ino */
static uint64_t seq;			/* orders creations and syncs */
static uint64_t last_sync_seq;	/* seq of the latest sync of anything */

/* counters of the report */
static uint64_t n_writes,
			n_syncs;

static int
cmp_inode(const void *a, const void *b)
{
	ino_t		x = ((const Inode *) a)->ino,
				y = ((const Inode *) b)->ino;

	return x < y ? -1 : x > y;
}

static int
cmp_page(const void *a, const void *b)
{
	uint64_t	x = ((const SavedPage *) a)->pageno,
				y = ((const SavedPage *) b)->pageno;

	return x < y ? -1 : x > y;
}

static const char *
rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

/*
 * The Inode of ino, made on first use.  durable_size is the size when
 * lossyfs first sees a change: what was there before this mount counts
 * as durable.
 */
static Inode *
get_inode(ino_t ino, off_t size_now, int fresh)
{
	Inode		key = {.ino = ino};
	Inode	  **found;
	Inode	   *in;

	pthread_mutex_lock(&table_lock);
	found = tfind(&key, &inodes, cmp_inode);
	if (found != NULL && !fresh)
	{
		in = *found;
		pthread_mutex_unlock(&table_lock);
		return in;
	}
	if (found != NULL)
	{
		/* a new file on a reused inode number: forget the old one */
		in = *found;
		tdelete(in, &inodes, cmp_inode);
		tdestroy(in->pages, free);
		pthread_mutex_destroy(&in->lock);
		free(in);
	}
	in = calloc(1, sizeof(Inode));
	if (in == NULL)
	{
		fprintf(stderr, "lossyfs: out of memory\n");
		abort();
	}
	in->ino = ino;
	pthread_mutex_init(&in->lock, NULL);
	in->durable_size = size_now;
	if (fresh)
		in->created_seq = ++seq;
	tsearch(in, &inodes, cmp_inode);
	pthread_mutex_unlock(&table_lock);
	return in;
}

static Inode *
inode_of_fd(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return NULL;
	return get_inode(st.st_ino, st.st_size, 0);
}

/* forget an inode whose last name went away */
static void
forget_inode(ino_t ino)
{
	Inode		key = {.ino = ino};
	Inode	  **found;

	pthread_mutex_lock(&table_lock);
	found = tfind(&key, &inodes, cmp_inode);
	if (found != NULL)
	{
		Inode	   *in = *found;

		tdelete(in, &inodes, cmp_inode);
		tdestroy(in->pages, free);
		pthread_mutex_destroy(&in->lock);
		free(in);
	}
	pthread_mutex_unlock(&table_lock);
}

/*
 * Save the durable content of every page of [from, to) that is still
 * unsaved, before it changes.  Caller holds in->lock.
 */
static int
save_range(Inode *in, int fd, off_t from, off_t to)
{
	if (to > in->durable_size)
		to = in->durable_size;
	if (from >= to)
		return 0;
	for (uint64_t p = from / PAGE_SZ; (off_t) (p * PAGE_SZ) < to; p++)
	{
		SavedPage	key = {.pageno = p};
		SavedPage  *sp;
		off_t		start = (off_t) p * PAGE_SZ;
		size_t		want;
		ssize_t		got;

		if (tfind(&key, &in->pages, cmp_page) != NULL)
			continue;
		sp = malloc(sizeof(SavedPage));
		if (sp == NULL)
			return -ENOMEM;
		sp->pageno = p;
		want = in->durable_size - start < PAGE_SZ ?
			(size_t) (in->durable_size - start) : PAGE_SZ;
		/* the unsaved part of the durable range is unchanged on disk */
		got = pread(fd, sp->data, want, start);
		if (got < 0)
		{
			free(sp);
			return -errno;
		}
		if ((size_t) got < want)
			memset(sp->data + got, 0, want - got);
		sp->len = want;
		tsearch(sp, &in->pages, cmp_page);
		in->npages++;
	}
	return 0;
}

/* fsync/fdatasync: what the file holds now is durable */
static void
mark_synced(Inode *in, off_t size_now)
{
	tdestroy(in->pages, free);
	in->pages = NULL;
	in->npages = 0;
	in->durable_size = size_now;
	in->synced_since_created = 1;
	pthread_mutex_lock(&table_lock);
	n_syncs++;
	in->dir_synced_seq = ++seq;
	last_sync_seq = in->dir_synced_seq;
	pthread_mutex_unlock(&table_lock);
}

/* ----------------------------------------------------------------------
 * FUSE operations: pass-through to rootfd, with the bookkeeping above
 * ---------------------------------------------------------------------- */

static void *
lfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* the backing inode numbers, for the server's own stat() comparisons */
	cfg->use_ino = 1;
	/* unlink at once even while open: no .fuse_hidden files */
	cfg->hard_remove = 1;
	/* the kernel must not keep file data across opens by other processes */
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	return NULL;
}

static int
lfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int			rc = fi ? fstat(fi->fh, st) :
		fstatat(rootfd, rel(path), st, AT_SYMLINK_NOFOLLOW);

	return rc == 0 ? 0 : -errno;
}

static int
lfs_readlink(const char *path, char *buf, size_t size)
{
	ssize_t		n = readlinkat(rootfd, rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int
lfs_mkdir(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdirat(rootfd, rel(path), mode) != 0)
		return -errno;
	if (fstatat(rootfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0)
		get_inode(st.st_ino, 0, 1);
	return 0;
}

/* unlink or rmdir: forget the inode once its last name is gone */
static int
lfs_remove(const char *path, int flags)
{
	struct stat st;
	int			have = fstatat(rootfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0;

	if (unlinkat(rootfd, rel(path), flags) != 0)
		return -errno;
	if (have && (S_ISDIR(st.st_mode) || st.st_nlink <= 1))
		forget_inode(st.st_ino);
	return 0;
}

static int
lfs_unlink(const char *path)
{
	return lfs_remove(path, 0);
}

static int
lfs_rmdir(const char *path)
{
	return lfs_remove(path, AT_REMOVEDIR);
}

static int
lfs_symlink(const char *target, const char *path)
{
	return symlinkat(target, rootfd, rel(path)) == 0 ? 0 : -errno;
}

static int
lfs_rename(const char *from, const char *to, unsigned int flags)
{
	struct stat st;
	int			replaced = fstatat(rootfd, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0;

	if (renameat2(rootfd, rel(from), rootfd, rel(to), flags) != 0)
		return -errno;
	if (replaced && !(flags & RENAME_EXCHANGE) &&
		(S_ISDIR(st.st_mode) || st.st_nlink <= 1))
		forget_inode(st.st_ino);
	return 0;
}

static int
lfs_link(const char *from, const char *to)
{
	return linkat(rootfd, rel(from), rootfd, rel(to), 0) == 0 ? 0 : -errno;
}

static int
lfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int			rc = fi ? fchmod(fi->fh, mode) :
		fchmodat(rootfd, rel(path), mode, 0);

	return rc == 0 ? 0 : -errno;
}

static int
lfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int			rc = fi ? fchown(fi->fh, uid, gid) :
		fchownat(rootfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);

	return rc == 0 ? 0 : -errno;
}

static int
do_truncate(int fd, off_t size)
{
	Inode	   *in = inode_of_fd(fd);
	struct stat st;
	int			rc;

	if (in == NULL)
		return -errno;
	pthread_mutex_lock(&in->lock);
	rc = fstat(fd, &st) == 0 ? 0 : -errno;
	/* the page with the new end is partly zeroed, the ones after it gone */
	if (rc == 0 && size < st.st_size)
		rc = save_range(in, fd, size, st.st_size);
	if (rc == 0 && ftruncate(fd, size) != 0)
		rc = -errno;
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int
lfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int			fd,
				rc;

	if (fi)
		return do_truncate(fi->fh, size);
	fd = openat(rootfd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = do_truncate(fd, size);
	close(fd);
	return rc;
}

/*
 * The backing file's open flags for a FUSE open: lossyfs itself does
 * buffered I/O, O_TRUNC goes through do_truncate, and a file opened for
 * writing is also opened for reading, to save pages before they change.
 */
static int
backing_flags(int flags)
{
	flags &= ~(O_DIRECT | O_TRUNC | O_CREAT | O_EXCL);
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags | O_CLOEXEC;
}

static int
lfs_open(const char *path, struct fuse_file_info *fi)
{
	int			fd = openat(rootfd, rel(path), backing_flags(fi->flags));

	if (fd < 0)
		return -errno;
	if (fi->flags & O_TRUNC)
	{
		int			rc = do_truncate(fd, 0);

		if (rc != 0)
		{
			close(fd);
			return rc;
		}
	}
	fi->fh = fd;
	return 0;
}

static int
lfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int			fd;
	struct stat st;

	fd = openat(rootfd, rel(path), backing_flags(fi->flags) | O_CREAT | O_EXCL,
				mode);
	if (fd >= 0)
	{
		/* a new file: nothing of it is durable yet */
		if (fstat(fd, &st) == 0)
			get_inode(st.st_ino, 0, 1);
		fi->fh = fd;
		return 0;
	}
	if (errno != EEXIST || (fi->flags & O_EXCL))
		return -errno;
	/* it appeared meanwhile: an ordinary open */
	return lfs_open(path, fi);
}

static int
lfs_read(const char *path, char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	ssize_t		n = pread(fi->fh, buf, size, off);

	return n < 0 ? -errno : (int) n;
}

static int
lfs_write(const char *path, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	Inode	   *in = inode_of_fd(fi->fh);
	ssize_t		n;
	int			rc;

	if (in == NULL)
		return -errno;
	pthread_mutex_lock(&in->lock);
	rc = save_range(in, fi->fh, off, off + (off_t) size);
	if (rc == 0)
	{
		n = pwrite(fi->fh, buf, size, off);
		rc = n < 0 ? -errno : (int) n;
	}
	pthread_mutex_unlock(&in->lock);
	__atomic_add_fetch(&n_writes, 1, __ATOMIC_RELAXED);
	return rc;
}

static int
lfs_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(rootfd, st) == 0 ? 0 : -errno;
}

static int
lfs_release(const char *path, struct fuse_file_info *fi)
{
	close(fi->fh);
	return 0;
}

static int
lfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	Inode	   *in = inode_of_fd(fi->fh);
	struct stat st;

	if (in == NULL)
		return -errno;
	pthread_mutex_lock(&in->lock);
	if (fstat(fi->fh, &st) != 0)
	{
		pthread_mutex_unlock(&in->lock);
		return -errno;
	}
	mark_synced(in, st.st_size);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int
lfs_opendir(const char *path, struct fuse_file_info *fi)
{
	int			fd = openat(rootfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int
lfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	int			fd = dup(fi->fh);
	DIR		   *d;
	struct dirent *de;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL)
	{
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
	{
		struct stat st = {.st_ino = de->d_ino, .st_mode = DTTOIF(de->d_type)};

		if (filler(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(d);
	return 0;
}

static int
lfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	close(fi->fh);
	return 0;
}

static int
lfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct stat st;
	Inode	   *in;

	if (fstat(fi->fh, &st) != 0)
		return -errno;
	in = get_inode(st.st_ino, st.st_size, 0);
	pthread_mutex_lock(&in->lock);
	mark_synced(in, st.st_size);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int
lfs_access(const char *path, int mask)
{
	return faccessat(rootfd, rel(path), mask, AT_EACCESS) == 0 ? 0 : -errno;
}

static int
lfs_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	int			rc = fi ? futimens(fi->fh, tv) :
		utimensat(rootfd, rel(path), tv, AT_SYMLINK_NOFOLLOW);

	return rc == 0 ? 0 : -errno;
}

static int
lfs_fallocate(const char *path, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	Inode	   *in = inode_of_fd(fi->fh);
	int			rc;

	if (in == NULL)
		return -errno;
	pthread_mutex_lock(&in->lock);
	/* a plain allocation changes no byte; a hole or zeroing does */
	rc = (mode & ~FALLOC_FL_KEEP_SIZE) ? save_range(in, fi->fh, off, off + len) : 0;
	if (rc == 0 && fallocate(fi->fh, mode, off, len) != 0)
		rc = -errno;
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int
lfs_flock(const char *path, struct fuse_file_info *fi, int op)
{
	return flock(fi->fh, op) == 0 ? 0 : -errno;
}

static off_t
lfs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t		r = lseek(fi->fh, off, whence);

	return r < 0 ? -errno : r;
}

/*
 * Once the cut has begun nothing may change the backing directory: every
 * operation that changes something runs under cut_lock (shared) and fails
 * once frozen is set.  (The server's processes are gone by then; this only
 * makes sure.)
 */
static pthread_rwlock_t cut_lock = PTHREAD_RWLOCK_INITIALIZER;
static int	frozen = 0;

#define GUARDED(call) \
	do { \
		int			rc_; \
		pthread_rwlock_rdlock(&cut_lock); \
		rc_ = frozen ? -EIO : (call); \
		pthread_rwlock_unlock(&cut_lock); \
		return rc_; \
	} while (0)

static int
g_mkdir(const char *p, mode_t m)
{
	GUARDED(lfs_mkdir(p, m));
}

static int
g_unlink(const char *p)
{
	GUARDED(lfs_unlink(p));
}

static int
g_rmdir(const char *p)
{
	GUARDED(lfs_rmdir(p));
}

static int
g_symlink(const char *t, const char *p)
{
	GUARDED(lfs_symlink(t, p));
}

static int
g_rename(const char *f, const char *t, unsigned int fl)
{
	GUARDED(lfs_rename(f, t, fl));
}

static int
g_link(const char *f, const char *t)
{
	GUARDED(lfs_link(f, t));
}

static int
g_truncate(const char *p, off_t sz, struct fuse_file_info *fi)
{
	GUARDED(lfs_truncate(p, sz, fi));
}

static int
g_open(const char *p, struct fuse_file_info *fi)
{
	GUARDED(lfs_open(p, fi));
}

static int
g_create(const char *p, mode_t m, struct fuse_file_info *fi)
{
	GUARDED(lfs_create(p, m, fi));
}

static int
g_write(const char *p, const char *b, size_t sz, off_t o,
		struct fuse_file_info *fi)
{
	GUARDED(lfs_write(p, b, sz, o, fi));
}

static int
g_fsync(const char *p, int ds, struct fuse_file_info *fi)
{
	GUARDED(lfs_fsync(p, ds, fi));
}

static int
g_fsyncdir(const char *p, int ds, struct fuse_file_info *fi)
{
	GUARDED(lfs_fsyncdir(p, ds, fi));
}

static int
g_fallocate(const char *p, int m, off_t o, off_t l, struct fuse_file_info *fi)
{
	GUARDED(lfs_fallocate(p, m, o, l, fi));
}

static const struct fuse_operations lfs_ops = {
	.init = lfs_init,
	.getattr = lfs_getattr,
	.readlink = lfs_readlink,
	.mkdir = g_mkdir,
	.unlink = g_unlink,
	.rmdir = g_rmdir,
	.symlink = g_symlink,
	.rename = g_rename,
	.link = g_link,
	.chmod = lfs_chmod,
	.chown = lfs_chown,
	.truncate = g_truncate,
	.open = g_open,
	.create = g_create,
	.read = lfs_read,
	.write = g_write,
	.statfs = lfs_statfs,
	.release = lfs_release,
	.fsync = g_fsync,
	.opendir = lfs_opendir,
	.readdir = lfs_readdir,
	.releasedir = lfs_releasedir,
	.fsyncdir = g_fsyncdir,
	.access = lfs_access,
	.utimens = lfs_utimens,
	.fallocate = g_fallocate,
	.flock = lfs_flock,
	.lseek = lfs_lseek,
};

/* ----------------------------------------------------------------------
 * The power cut: roll the backing directory back
 * ---------------------------------------------------------------------- */

static uint64_t cut_files,
			cut_bytes,
			cut_pages,
			cut_removed;
static char **doomed;			/* directories to remove */
static size_t ndoomed,
			maxdoomed;
static SavedPage **page_list;
static size_t npage_list;

static void
collect_page(const void *node, VISIT which, int depth)
{
	if (which == postorder || which == leaf)
		page_list[npage_list++] = *(SavedPage * const *) node;
}

static Inode *
lookup(ino_t ino)
{
	Inode		key = {.ino = ino};
	Inode	  **found = tfind(&key, &inodes, cmp_inode);

	return found ? *found : NULL;
}

/*
 * Does the name of a new inode survive?  It does if the inode itself was
 * fsynced; else with strict_dirs if the directory now holding it was
 * fsynced after it was made, and without if anything was.
 */
static int
name_survives(Inode *in, const char *path)
{
	char		parent[PATH_MAX];
	char	   *slash;
	struct stat st;
	Inode	   *pin;

	if (in->created_seq == 0 || in->synced_since_created)
		return 1;
	if (!strict_dirs)
		return last_sync_seq > in->created_seq;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash == NULL)
		return 1;
	*slash = '\0';
	if (stat(parent, &st) != 0)
		return 1;
	pin = lookup(st.st_ino);
	return pin != NULL && pin->dir_synced_seq > in->created_seq;
}

static int
roll_back(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	Inode	   *in;

	if (ftw->level == 0)
		return 0;
	in = lookup(st->st_ino);
	if (in == NULL)
		return 0;
	if (!name_survives(in, path))
	{
		if (type == FTW_D)
		{
			if (ndoomed == maxdoomed)
			{
				maxdoomed = maxdoomed ? maxdoomed * 2 : 16;
				doomed = realloc(doomed, maxdoomed * sizeof(char *));
			}
			doomed[ndoomed++] = strdup(path);
		}
		else if (unlink(path) != 0)
			fprintf(stderr, "lossyfs: could not remove \"%s\": %m\n", path);
		cut_removed++;
		return 0;
	}
	if (type != FTW_F)
		return 0;
	if (st->st_size != in->durable_size || in->npages > 0)
	{
		int			fd = open(path, O_WRONLY | O_CLOEXEC);

		if (fd < 0)
		{
			fprintf(stderr, "lossyfs: could not open \"%s\": %m\n", path);
			return 0;
		}
		cut_files++;
		if (st->st_size > in->durable_size)
			cut_bytes += st->st_size - in->durable_size;
		if (ftruncate(fd, in->durable_size) != 0)
			fprintf(stderr, "lossyfs: could not truncate \"%s\": %m\n", path);
		page_list = malloc((in->npages + 1) * sizeof(SavedPage *));
		npage_list = 0;
		twalk(in->pages, collect_page);
		for (size_t i = 0; i < npage_list; i++)
		{
			SavedPage  *sp = page_list[i];

			if (pwrite(fd, sp->data, sp->len, (off_t) sp->pageno * PAGE_SZ) !=
				(ssize_t) sp->len)
				fprintf(stderr, "lossyfs: could not restore \"%s\": %m\n", path);
		}
		cut_pages += npage_list;
		free(page_list);
		close(fd);
	}
	return 0;
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "lossyfs: could not remove \"%s\": %m\n", path);
	return 0;
}

static void
power_cut(void)
{
	if (nftw(backing, roll_back, 64, FTW_PHYS) != 0)
		fprintf(stderr, "lossyfs: could not walk \"%s\": %m\n", backing);
	for (size_t i = 0; i < ndoomed; i++)
	{
		struct stat st;

		/* an enclosing one may have taken it already */
		if (lstat(doomed[i], &st) == 0)
			nftw(doomed[i], remove_one, 64, FTW_PHYS | FTW_DEPTH);
	}
	fprintf(stderr,
			"lossyfs: power cut: %llu files rolled back, %llu bytes of unsynced "
			"appends and %llu unsynced pages dropped, %llu new names lost "
			"(%llu writes, %llu syncs seen)\n",
			(unsigned long long) cut_files, (unsigned long long) cut_bytes,
			(unsigned long long) cut_pages, (unsigned long long) cut_removed,
			(unsigned long long) n_writes, (unsigned long long) n_syncs);
}

/*
 * The power cut, at SIGUSR1 (blocked in every other thread): freeze the
 * file system, roll the backing directory back, say so on stderr.  The
 * caller then unmounts (and may kill lossyfs: nothing is left to do).
 */
static void *
cutter(void *arg)
{
	sigset_t   *set = arg;
	int			sig;

	while (sigwait(set, &sig) != 0)
		;
	pthread_rwlock_wrlock(&cut_lock);
	frozen = 1;
	pthread_rwlock_unlock(&cut_lock);
	power_cut();
	return NULL;
}

/* ----------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */

static const struct fuse_opt lfs_opts[] = {
	FUSE_OPT_KEY("strict_dirs", 1),
	FUSE_OPT_END
};

static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	if (key == 1)
	{
		strict_dirs = 1;
		return 0;
	}
	if (key == FUSE_OPT_KEY_NONOPT && backing == NULL)
	{
		backing = realpath(arg, NULL);
		if (backing == NULL)
		{
			fprintf(stderr, "lossyfs: \"%s\": %m\n", arg);
			exit(1);
		}
		return 0;
	}
	return 1;
}

int
main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	sigset_t	cut_signal;
	pthread_t	cut_thread;
	int			rc;

	if (fuse_opt_parse(&args, NULL, lfs_opts, opt_proc) != 0)
		return 1;
	if (backing == NULL)
	{
		fprintf(stderr,
				"usage: lossyfs BACKING_DIR MOUNTPOINT [-o strict_dirs] [FUSE options]\n"
				"SIGUSR1: power cut (BACKING_DIR loses what was not synced)\n");
		return 1;
	}
	rootfd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
	{
		fprintf(stderr, "lossyfs: could not open \"%s\": %m\n", backing);
		return 1;
	}
	/* SIGUSR1 goes to the cutter thread alone: block it before FUSE's */
	sigemptyset(&cut_signal);
	sigaddset(&cut_signal, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &cut_signal, NULL);
	if (pthread_create(&cut_thread, NULL, cutter, &cut_signal) != 0)
	{
		fprintf(stderr, "lossyfs: could not start a thread\n");
		return 1;
	}

	/* in the foreground: the caller sees the report, then unmounts */
	fuse_opt_add_arg(&args, "-f");
	rc = fuse_main(args.argc, args.argv, &lfs_ops, NULL);
	if (!frozen)
		fprintf(stderr, "lossyfs: unmounted without a power cut\n");
	fuse_opt_free_args(&args);
	return rc;
}
