/*-------------------------------------------------------------------------
 *
 * relstorage.c
 *	  An armdb relation's directory: create, read, copy, remove, sweep.
 *
 * PostgreSQL 15 never tells a table access method that storage is dropped
 * (design §8): the xact callbacks in armdb_xact.c learn it from the pending
 * deletes, and this file does the removing.  What a crash interrupted is
 * swept in two steps (design §5a).  The postmaster, before WAL redo, removes
 * the directories of temporary relations (they never survive a restart),
 * empties unlogged tables after a crash, and lists every other directory it
 * finds; it removes none of them, since a new table's main fork file may be
 * missing until redo recreates it.  After recovery the sweep workers
 * (armdb_sweep.c) judge the listed directories by the catalogs and remove
 * the leftovers through armdb_rel_storage_remove_leftover().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_class.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/copydir.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"

#include "armdb.h"
#include "armdb_sweep.h"
#include "keydir/relstorage.h"
#include "storage/io.h"
#include "wal/armdb_durable.h"

#define ARMDB_META_FILE		"armdb.meta"
#define ARMDB_META_MAGIC	0x4d444d52	/* "RMDM" */
#define ARMDB_META_VERSION	2	/* 1: before storage ids (all zeros) */

typedef struct ArmdbMeta
{
	uint32		magic;
	uint32		version;
	uint32		nshards;
	Oid			spcNode;		/* where the relation's main fork is */
	Oid			dbNode;
	Oid			relNode;
	int32		backend;
	char		persistence;	/* RELPERSISTENCE_* */
	bool		encrypted;		/* its data files are (cipher.h); 0 in metas
								 * written before encryption existed */
	char		pad[2];
	/*
	 * Random, drawn when the storage was made, kept by its copies: part of
	 * its files' keys (cipher.h).  Version 1 had none (all zeros).
	 */
	uint8		storage_id[ARMDB_STORAGE_ID_LEN];
	pg_crc32c	crc;			/* of everything before it */
} ArmdbMeta;

/* a version 1 meta file: the fields before storage_id, then its CRC */
#define ARMDB_META_V1_SIZE \
	(offsetof(ArmdbMeta, storage_id) + sizeof(pg_crc32c))

/*
 * A permanent relation's directory as the postmaster found it at start-up,
 * before redo: the sweep workers may remove only these, and only while the
 * directory is still the one listed (a relfilenode reused after OID
 * wraparound gets a new directory, with a new inode and change time).
 *
 * The list lives in the postmaster's TopMemoryContext, which the workers
 * inherit when they are forked (armdb runs on Linux only, never under
 * EXEC_BACKEND); it is rebuilt at each (re)start, crash restarts included.
 */
typedef struct ListedDir
{
	Oid			dbNode;
	Oid			relNode;
	dev_t		dev;
	ino_t		ino;
	struct timespec ctime;
} ListedDir;

static ListedDir *listed_dirs = NULL;
static int	nlisted_dirs = 0;

static void remove_rel_dir(const char *dir, int elevel);

typedef enum MetaState
{
	META_OK,
	META_MISSING,				/* creation never got as far as the meta file */
	META_DAMAGED
} MetaState;

void
armdb_rel_dir_path(char *path, RelFileNodeBackend rnode)
{
	char		base[MAXPGPATH];

	armdb_data_dir_path(base);
	if (rnode.backend == InvalidBackendId)
		snprintf(path, MAXPGPATH, "%s/%u/%u", base, rnode.node.dbNode,
				 rnode.node.relNode);
	else
		snprintf(path, MAXPGPATH, "%s/%u/t%d_%u", base, rnode.node.dbNode,
				 rnode.backend, rnode.node.relNode);
}

void
armdb_shard_dir_path(char *path, RelFileNodeBackend rnode, uint32 shard)
{
	char		dir[MAXPGPATH];

	armdb_rel_dir_path(dir, rnode);
	snprintf(path, MAXPGPATH, "%s/%u", dir, shard);
}

static pg_crc32c
meta_crc(const void *bytes, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, bytes, len);
	FIN_CRC32C(crc);
	return crc;
}

/*
 * The n bytes of a meta file into *meta, if they are armdb's and undamaged:
 * of this version, or of version 1 (whose storage id reads as all zeros).
 */
static bool
meta_parse(const char *buf, int n, ArmdbMeta *meta)
{
	uint32		version;

	memset(meta, 0, sizeof(*meta));
	if (n < (int) ARMDB_META_V1_SIZE)
		return false;
	memcpy(&version, buf + offsetof(ArmdbMeta, version), sizeof(version));
	if (version == ARMDB_META_VERSION && n == (int) sizeof(ArmdbMeta))
		memcpy(meta, buf, sizeof(*meta));
	else if (version == 1 && n == (int) ARMDB_META_V1_SIZE)
	{
		memcpy(meta, buf, offsetof(ArmdbMeta, storage_id));
		memcpy(&meta->crc, buf + offsetof(ArmdbMeta, storage_id),
			   sizeof(pg_crc32c));
	}
	else
		return false;
	return meta->magic == ARMDB_META_MAGIC &&
		meta->crc == meta_crc(buf, n - sizeof(pg_crc32c));
}

/* A meta file's bytes: a read of one more than the largest tells a longer. */
typedef union
{
	ArmdbMeta	meta;
	char		bytes[sizeof(ArmdbMeta) + 1];
} MetaBuf;

/* Read the meta file in dir, checking that it is armdb's and undamaged. */
static MetaState
read_meta_file(const char *dir, ArmdbMeta *meta)
{
	char		path[MAXPGPATH];
	MetaBuf		buf;
	int			fd;
	int			n;

	snprintf(path, sizeof(path), "%s/%s", dir, ARMDB_META_FILE);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return errno == ENOENT ? META_MISSING : META_DAMAGED;
	n = read(fd, buf.bytes, sizeof(buf.bytes));
	CloseTransientFile(fd);
	return meta_parse(buf.bytes, n, meta) ? META_OK : META_DAMAGED;
}

/*
 * Remove what is left under a relfilenode that is being given new storage,
 * holding ArmdbSweepLock: a sweep worker must not find the old directory,
 * judge it a leftover and remove it once the new one has taken its place.
 */
static void
remove_leftover_for_create(RelFileNodeBackend rnode)
{
	char		dir[MAXPGPATH];

	armdb_rel_dir_path(dir, rnode);
	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	remove_rel_dir(dir, ERROR);
	LWLockRelease(armdb_sweep_lock());
}

/* Write the meta file durably: temporary name, fsync, rename, fsync dir. */
static void
write_meta(const char *dir, RelFileNodeBackend rnode, uint32 nshards,
		   char persistence, bool encrypted, const uint8 *storage_id)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	ArmdbMeta	meta;
	int			fd;

	memset(&meta, 0, sizeof(meta));
	meta.magic = ARMDB_META_MAGIC;
	meta.version = ARMDB_META_VERSION;
	meta.nshards = nshards;
	meta.spcNode = rnode.node.spcNode;
	meta.dbNode = rnode.node.dbNode;
	meta.relNode = rnode.node.relNode;
	meta.backend = rnode.backend;
	meta.persistence = persistence;
	meta.encrypted = encrypted;
	memcpy(meta.storage_id, storage_id, ARMDB_STORAGE_ID_LEN);
	meta.crc = meta_crc(&meta, offsetof(ArmdbMeta, crc));

	snprintf(path, sizeof(path), "%s/%s", dir, ARMDB_META_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, ARMDB_META_FILE);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	errno = 0;
	if (write(fd, &meta, sizeof(meta)) != sizeof(meta))
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", tmp)));
	CloseTransientFile(fd);
	durable_rename(tmp, path, ERROR);
}

void
armdb_rel_storage_new_id(uint8 *storage_id)
{
	if (!pg_strong_random(storage_id, ARMDB_STORAGE_ID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random storage id")));
}

void
armdb_rel_storage_create(RelFileNodeBackend rnode, uint32 nshards,
						 char persistence, bool encrypted,
						 const uint8 *storage_id)
{
	char		dir[MAXPGPATH];
	char		parent[MAXPGPATH];
	ArmdbError	err;

	/* the files may first need armdb's own replay (armdb_durable.c) */
	armdb_durable_startup_replay();

	armdb_rel_dir_path(dir, rnode);

	/* relfilenodes are reused: what is left under this name is not ours */
	remove_leftover_for_create(rnode);

	if (!armdb_make_dir(dir, &err))
		armdb_report_storage_error(ERROR, &err);
	write_meta(dir, rnode, nshards, persistence, encrypted, storage_id);

	/* the new directory's entry in its parent must be durable too */
	strlcpy(parent, dir, sizeof(parent));
	*strrchr(parent, '/') = '\0';
	fsync_fname(parent, true);
}

bool
armdb_rel_storage_get_id(RelFileNodeBackend rnode, uint8 *storage_id)
{
	char		dir[MAXPGPATH];
	ArmdbMeta	meta;

	armdb_rel_dir_path(dir, rnode);
	if (read_meta_file(dir, &meta) != META_OK)
		return false;
	memcpy(storage_id, meta.storage_id, ARMDB_STORAGE_ID_LEN);
	return true;
}

bool
armdb_rel_storage_exists(RelFileNodeBackend rnode)
{
	char		dir[MAXPGPATH];
	struct stat st;

	armdb_rel_dir_path(dir, rnode);
	return stat(dir, &st) == 0;
}

uint32
armdb_rel_storage_read_meta(RelFileNodeBackend rnode, char *persistence,
							bool *encrypted, uint8 *storage_id)
{
	char		path[MAXPGPATH];
	char		dir[MAXPGPATH];
	MetaBuf		buf;
	ArmdbMeta	meta;
	int			fd;
	int			nread;

	armdb_rel_dir_path(dir, rnode);
	snprintf(path, sizeof(path), "%s/%s", dir, ARMDB_META_FILE);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb storage of relation %u/%u is missing",
						rnode.node.dbNode, rnode.node.relNode),
				 errdetail("Directory \"%s\" has no \"%s\".", dir, ARMDB_META_FILE),
				 errhint("The table's files were lost (CREATE DATABASE ... TEMPLATE and file-level copies do not carry armdb files); restore it from a backup or pg_dump.")));
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	nread = read(fd, buf.bytes, sizeof(buf.bytes));
	if (nread < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	CloseTransientFile(fd);
	if (!meta_parse(buf.bytes, nread, &meta) ||
		meta.nshards == 0 || meta.nshards > 256 ||
		meta.dbNode != rnode.node.dbNode || meta.relNode != rnode.node.relNode)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb file \"%s\" is corrupted", path)));
	if (persistence)
		*persistence = meta.persistence;
	if (encrypted)
		*encrypted = meta.encrypted;
	if (storage_id)
		memcpy(storage_id, meta.storage_id, ARMDB_STORAGE_ID_LEN);
	return meta.nshards;
}

/* Remove a relation's directory, if it exists; the caller holds the lock. */
static void
remove_rel_dir(const char *dir, int elevel)
{
	char		parent[MAXPGPATH];
	struct stat st;

	Assert(LWLockHeldByMe(armdb_sweep_lock()));
	if (stat(dir, &st) != 0)
		return;
	if (!rmtree(dir, true))
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not remove armdb directory \"%s\"", dir)));
		return;
	}
	strlcpy(parent, dir, sizeof(parent));
	*strrchr(parent, '/') = '\0';
	(void) fsync_fname_ext(parent, true, true, elevel);
}

/*
 * Under ArmdbSweepLock, so that a sweep worker removing the same leftover
 * (a drop whose commit raced with the sweep) does not make it fail.
 */
void
armdb_rel_storage_remove(RelFileNodeBackend rnode, int elevel)
{
	char		dir[MAXPGPATH];

	armdb_rel_dir_path(dir, rnode);
	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	remove_rel_dir(dir, elevel);
	LWLockRelease(armdb_sweep_lock());
}

void
armdb_rel_storage_copy(RelFileNodeBackend from, RelFileNodeBackend to,
					   uint32 nshards, char persistence)
{
	char		src[MAXPGPATH];
	char		dst[MAXPGPATH];
	bool		encrypted;
	uint8		storage_id[ARMDB_STORAGE_ID_LEN];

	/*
	 * The files are copied as they are: encrypted if they were, under keys
	 * that need the storage id (cipher.h).
	 */
	(void) armdb_rel_storage_read_meta(from, NULL, &encrypted, storage_id);
	armdb_rel_dir_path(src, from);
	armdb_rel_dir_path(dst, to);
	remove_leftover_for_create(to);
	/* copydir() fsyncs the files and the new directory */
	copydir(src, dst, true);
	write_meta(dst, to, nshards, persistence, encrypted, storage_id);
}

/*
 * CREATE DATABASE: copy the template's armdb files to the new database, each
 * relation's meta file rewritten for its new database.
 */
void
armdb_rel_storage_copy_database(Oid src_db, Oid dst_db)
{
	char		base[MAXPGPATH];
	char		src[MAXPGPATH];
	char		dst[MAXPGPATH];
	struct stat st;
	DIR		   *dir;
	struct dirent *de;

	/* the template's files may first need armdb's own replay */
	armdb_durable_startup_replay();

	armdb_data_dir_path(base);
	snprintf(src, sizeof(src), "%s/%u", base, src_db);
	snprintf(dst, sizeof(dst), "%s/%u", base, dst_db);
	if (stat(src, &st) != 0)
		return;					/* the template has no armdb tables */
	/* as remove_leftover_for_create(), for a database OID reused */
	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	if (stat(dst, &st) == 0 && !rmtree(dst, true))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove old armdb directory \"%s\"", dst)));
	LWLockRelease(armdb_sweep_lock());

	copydir(src, dst, true);

	dir = AllocateDir(dst);
	while ((de = ReadDir(dir, dst)) != NULL)
	{
		char		reldir[MAXPGPATH];
		RelFileNodeBackend rnode;
		MetaBuf		buf;
		ArmdbMeta	meta;
		char		path[MAXPGPATH];
		int			fd;
		bool		ok;

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
		{
			/* not a permanent relation's directory (temporary leftovers) */
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			{
				snprintf(reldir, sizeof(reldir), "%s/%s", dst, de->d_name);
				(void) rmtree(reldir, true);
			}
			continue;
		}
		snprintf(reldir, sizeof(reldir), "%s/%s", dst, de->d_name);
		snprintf(path, sizeof(path), "%s/%s", reldir, ARMDB_META_FILE);
		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		ok = fd >= 0 &&
			meta_parse(buf.bytes, read(fd, buf.bytes, sizeof(buf.bytes)), &meta);
		if (fd >= 0)
			CloseTransientFile(fd);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("armdb file \"%s\" is corrupted", path)));
		rnode.node.spcNode = meta.spcNode;
		rnode.node.dbNode = dst_db;
		rnode.node.relNode = meta.relNode;
		rnode.backend = InvalidBackendId;
		write_meta(reldir, rnode, meta.nshards, meta.persistence,
				   meta.encrypted, meta.storage_id);
	}
	FreeDir(dir);
	fsync_fname(dst, true);
	fsync_fname(base, true);
}

/*
 * Which directory a relation's storage is (device, inode, change time: a
 * relfilenode given new storage gets a new directory).  False if it has none.
 */
bool
armdb_rel_storage_identity(RelFileNodeBackend rnode, ArmdbDirIdentity *id)
{
	char		dir[MAXPGPATH];
	struct stat st;

	armdb_rel_dir_path(dir, rnode);
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return false;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->ctime = st.st_ctim;
	return true;
}

/*
 * Remove a relation's storage if it is still the directory id says, under
 * ArmdbSweepLock (new storage under the same relfilenode is created under
 * it), running before_remove (WAL, the key directory) under it first.
 * True if it was removed.
 */
bool
armdb_rel_storage_remove_if_same(RelFileNodeBackend rnode,
								 const ArmdbDirIdentity *id,
								 void (*before_remove) (RelFileNodeBackend rnode))
{
	char		dir[MAXPGPATH];
	struct stat st;
	bool		same;

	armdb_rel_dir_path(dir, rnode);
	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	same = lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		st.st_dev == id->dev && st.st_ino == id->ino &&
		st.st_ctim.tv_sec == id->ctime.tv_sec &&
		st.st_ctim.tv_nsec == id->ctime.tv_nsec;
	if (same)
	{
		before_remove(rnode);
		remove_rel_dir(dir, WARNING);
	}
	LWLockRelease(armdb_sweep_lock());
	return same;
}

/* DROP DATABASE: all of the database's armdb files go. */
void
armdb_rel_storage_remove_database(Oid db)
{
	char		base[MAXPGPATH];
	char		dir[MAXPGPATH];
	struct stat st;

	armdb_data_dir_path(base);
	snprintf(dir, sizeof(dir), "%s/%u", base, db);
	if (stat(dir, &st) != 0)
		return;
	if (!rmtree(dir, true))
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove armdb directory \"%s\"", dir),
				 errdetail("The sweep after the next server start removes it.")));
	fsync_fname_ext(base, true, true, WARNING);
}

void
armdb_rel_storage_remove_backend_temp(void)
{
	char		base[MAXPGPATH];
	char		dbdir[MAXPGPATH];
	char		prefix[32];
	DIR		   *dir;
	struct dirent *de;

	armdb_data_dir_path(base);
	snprintf(dbdir, sizeof(dbdir), "%s/%u", base, MyDatabaseId);
	snprintf(prefix, sizeof(prefix), "t%d_", MyBackendId);
	dir = AllocateDir(dbdir);
	while ((de = ReadDirExtended(dir, dbdir, LOG)) != NULL)
	{
		char		path[MAXPGPATH];

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
		if (!rmtree(path, true))
			ereport(LOG,
					(errmsg("could not remove armdb directory \"%s\"", path)));
	}
	FreeDir(dir);
}

/*
 * Empty an unlogged relation's storage: everything but its meta file goes,
 * as heap resets an unlogged relation from its init fork after a crash.
 */
static void
reset_unlogged(const char *dir)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;

	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char		path[MAXPGPATH];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			strcmp(de->d_name, ARMDB_META_FILE) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!rmtree(path, true) && unlink(path) != 0)
			ereport(LOG,
					(errmsg("could not remove \"%s\" of an unlogged armdb table", path)));
	}
	FreeDir(d);
	fsync_fname_ext(dir, true, true, LOG);
}

static int
listed_dir_cmp(const void *a, const void *b)
{
	const ListedDir *x = a;
	const ListedDir *y = b;

	if (x->dbNode != y->dbNode)
		return x->dbNode < y->dbNode ? -1 : 1;
	if (x->relNode != y->relNode)
		return x->relNode < y->relNode ? -1 : 1;
	return 0;
}

static bool
is_number(const char *name, Oid *value)
{
	char	   *end;
	unsigned long v;

	if (name[0] < '0' || name[0] > '9')
		return false;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (*end != '\0' || errno != 0 || v > PG_UINT32_MAX)
		return false;
	*value = (Oid) v;
	return true;
}

/* t<backend>_<relfilenode>: a temporary relation's directory */
static bool
is_temp_dir_name(const char *name)
{
	int			backend;
	unsigned int relnode;
	int			len;

	return sscanf(name, "t%d_%u%n", &backend, &relnode, &len) == 2 &&
		name[len] == '\0';
}

/*
 * The postmaster, at start-up and before WAL redo: remove temporary
 * relations' directories, empty unlogged relations' storage after a crash,
 * and list every other relation directory for the sweep workers.  No
 * permanent relation's directory is removed here: whether its relation
 * still exists is known only once redo has finished, from the catalogs.
 */
void
armdb_rel_storage_startup(void)
{
	char		base[MAXPGPATH];
	DIR		   *top;
	struct dirent *dbde;
	/* as PostgreSQL decides whether to reset unlogged relations */
	bool		after_crash = armdb_shared->after_crash;
	int			maxlisted = 64;

	/* a crash restart lists afresh */
	if (listed_dirs != NULL)
		pfree(listed_dirs);
	listed_dirs = MemoryContextAlloc(TopMemoryContext,
									 maxlisted * sizeof(ListedDir));
	nlisted_dirs = 0;

	armdb_data_dir_path(base);
	top = AllocateDir(base);
	while ((dbde = ReadDirExtended(top, base, LOG)) != NULL)
	{
		char		dbdir[MAXPGPATH];
		DIR		   *dir;
		struct dirent *de;
		Oid			dbNode;
		bool		removed = false;

		if (!is_number(dbde->d_name, &dbNode))
			continue;
		snprintf(dbdir, sizeof(dbdir), "%s/%s", base, dbde->d_name);
		dir = AllocateDir(dbdir);
		while ((de = ReadDirExtended(dir, dbdir, LOG)) != NULL)
		{
			char		path[MAXPGPATH];
			Oid			relNode;
			ArmdbMeta	meta;
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
			if (is_temp_dir_name(de->d_name))
			{
				/* temporary tables never survive a restart */
				if (rmtree(path, true))
					removed = true;
				else
					ereport(LOG,
							(errmsg("could not remove armdb directory \"%s\"", path)));
				continue;
			}
			if (!is_number(de->d_name, &relNode))
				continue;

			/* its contents go in any case: heap resets it from its init fork */
			if (after_crash && read_meta_file(path, &meta) == META_OK &&
				meta.persistence == RELPERSISTENCE_UNLOGGED)
			{
				ereport(LOG,
						(errmsg("armdb: emptying unlogged table storage \"%s\" after a crash",
								path)));
				reset_unlogged(path);
			}

			if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
				continue;
			if (nlisted_dirs == maxlisted)
			{
				maxlisted *= 2;
				listed_dirs = repalloc(listed_dirs, maxlisted * sizeof(ListedDir));
			}
			listed_dirs[nlisted_dirs].dbNode = dbNode;
			listed_dirs[nlisted_dirs].relNode = relNode;
			listed_dirs[nlisted_dirs].dev = st.st_dev;
			listed_dirs[nlisted_dirs].ino = st.st_ino;
			listed_dirs[nlisted_dirs].ctime = st.st_ctim;
			nlisted_dirs++;
		}
		FreeDir(dir);
		if (removed)
			fsync_fname_ext(dbdir, true, true, LOG);
	}
	FreeDir(top);
	qsort(listed_dirs, nlisted_dirs, sizeof(ListedDir), listed_dir_cmp);
}

/* The databases that had relation directories at start-up, ascending. */
Oid *
armdb_rel_storage_listed_databases(int *ndbs)
{
	Oid		   *dbs = palloc(Max(nlisted_dirs, 1) * sizeof(Oid));

	*ndbs = 0;
	for (int i = 0; i < nlisted_dirs; i++)
		if (*ndbs == 0 || dbs[*ndbs - 1] != listed_dirs[i].dbNode)
			dbs[(*ndbs)++] = listed_dirs[i].dbNode;
	return dbs;
}

/* The relfilenodes of database db that had directories at start-up. */
Oid *
armdb_rel_storage_listed_relnodes(Oid db, int *nrels)
{
	Oid		   *rels = palloc(Max(nlisted_dirs, 1) * sizeof(Oid));

	*nrels = 0;
	for (int i = 0; i < nlisted_dirs; i++)
		if (listed_dirs[i].dbNode == db)
			rels[(*nrels)++] = listed_dirs[i].relNode;
	return rels;
}

/*
 * Remove the directory of database db's relfilenode relNode, which the
 * caller has found no relation to use, provided it is still the directory
 * listed at start-up: storage made since then is never a leftover (its
 * catalog row may not be inserted yet).  A directory whose meta file is
 * damaged is left for a human to look at.  True if it was removed.
 */
bool
armdb_rel_storage_remove_leftover(Oid db, Oid relNode, const char *why)
{
	ListedDir	key;
	ListedDir  *entry;
	char		base[MAXPGPATH];
	char		path[MAXPGPATH];
	char		parent[MAXPGPATH];
	struct stat st;
	ArmdbMeta	meta;
	bool		removed = false;

	key.dbNode = db;
	key.relNode = relNode;
	entry = bsearch(&key, listed_dirs, nlisted_dirs, sizeof(ListedDir),
					listed_dir_cmp);
	if (entry == NULL)
		return false;

	armdb_data_dir_path(base);
	snprintf(parent, sizeof(parent), "%s/%u", base, db);
	snprintf(path, sizeof(path), "%s/%u", parent, relNode);

	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) ||
		st.st_dev != entry->dev || st.st_ino != entry->ino ||
		st.st_ctim.tv_sec != entry->ctime.tv_sec ||
		st.st_ctim.tv_nsec != entry->ctime.tv_nsec)
	{
		/* gone already, or new storage under a reused relfilenode */
		LWLockRelease(armdb_sweep_lock());
		return false;
	}
	if (read_meta_file(path, &meta) == META_DAMAGED)
	{
		LWLockRelease(armdb_sweep_lock());
		ereport(LOG,
				(errmsg("armdb sweep: leaving \"%s\" in place: %s, but its meta file is damaged",
						path, why),
				 errhint("Look at its files, and remove the directory if they are not needed.")));
		return false;
	}
	if (rmtree(path, true))
	{
		(void) fsync_fname_ext(parent, true, true, LOG);
		removed = true;
	}
	LWLockRelease(armdb_sweep_lock());

	if (removed)
		ereport(LOG,
				(errmsg("armdb sweep: removed \"%s\": %s", path, why)));
	else
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove armdb directory \"%s\"", path)));
	return removed;
}

/*
 * The directory of a database that no longer exists, once the sweep has
 * removed its relations' directories: removed if it is empty.
 */
void
armdb_rel_storage_remove_database_dir(Oid db)
{
	char		base[MAXPGPATH];
	char		dir[MAXPGPATH];

	armdb_data_dir_path(base);
	snprintf(dir, sizeof(dir), "%s/%u", base, db);
	LWLockAcquire(armdb_sweep_lock(), LW_EXCLUSIVE);
	if (rmdir(dir) == 0)
	{
		(void) fsync_fname_ext(base, true, true, LOG);
		ereport(LOG,
				(errmsg("armdb sweep: removed \"%s\": database %u no longer exists",
						dir, db)));
	}
	LWLockRelease(armdb_sweep_lock());
}
