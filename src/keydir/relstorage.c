/*-------------------------------------------------------------------------
 *
 * relstorage.c
 *	  An armdb relation's directory: create, read, copy, remove, sweep.
 *
 * PostgreSQL 15 never tells a table access method that storage is dropped
 * (design §8): the xact callbacks in armdb_xact.c learn it from the pending
 * deletes, and this file does the removing.  What a crash interrupted is
 * swept at the next start: directories of temporary relations, and
 * directories whose relation's main fork file no longer exists (a drop
 * whose commit was the last thing before the crash, a dropped database).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_class.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/copydir.h"
#include "storage/fd.h"

#include "armdb.h"
#include "keydir/relstorage.h"
#include "storage/io.h"

#define ARMDB_META_FILE		"armdb.meta"
#define ARMDB_META_MAGIC	0x4d444d52	/* "RMDM" */
#define ARMDB_META_VERSION	1

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
	char		pad[3];
	pg_crc32c	crc;			/* of everything before it */
} ArmdbMeta;

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
meta_crc(const ArmdbMeta *meta)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, meta, offsetof(ArmdbMeta, crc));
	FIN_CRC32C(crc);
	return crc;
}

/* Write the meta file durably: temporary name, fsync, rename, fsync dir. */
static void
write_meta(const char *dir, RelFileNodeBackend rnode, uint32 nshards,
		   char persistence)
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
	meta.crc = meta_crc(&meta);

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
armdb_rel_storage_create(RelFileNodeBackend rnode, uint32 nshards,
						 char persistence)
{
	char		dir[MAXPGPATH];
	char		parent[MAXPGPATH];
	ArmdbError	err;
	struct stat st;

	armdb_rel_dir_path(dir, rnode);

	/* relfilenodes are reused: what is left under this name is not ours */
	if (stat(dir, &st) == 0)
		armdb_rel_storage_remove(rnode, ERROR);

	if (!armdb_make_dir(dir, &err))
		armdb_report_storage_error(ERROR, &err);
	write_meta(dir, rnode, nshards, persistence);

	/* the new directory's entry in its parent must be durable too */
	strlcpy(parent, dir, sizeof(parent));
	*strrchr(parent, '/') = '\0';
	fsync_fname(parent, true);
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
armdb_rel_storage_read_meta(RelFileNodeBackend rnode, char *persistence)
{
	char		path[MAXPGPATH];
	char		dir[MAXPGPATH];
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
	nread = read(fd, &meta, sizeof(meta));
	if (nread < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	CloseTransientFile(fd);
	if (nread != sizeof(meta) || meta.magic != ARMDB_META_MAGIC ||
		meta.crc != meta_crc(&meta) || meta.version != ARMDB_META_VERSION ||
		meta.nshards == 0 || meta.nshards > 256 ||
		meta.dbNode != rnode.node.dbNode || meta.relNode != rnode.node.relNode)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb file \"%s\" is corrupted", path)));
	if (persistence)
		*persistence = meta.persistence;
	return meta.nshards;
}

void
armdb_rel_storage_remove(RelFileNodeBackend rnode, int elevel)
{
	char		dir[MAXPGPATH];
	char		parent[MAXPGPATH];
	struct stat st;

	armdb_rel_dir_path(dir, rnode);
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

void
armdb_rel_storage_copy(RelFileNodeBackend from, RelFileNodeBackend to,
					   uint32 nshards, char persistence)
{
	char		src[MAXPGPATH];
	char		dst[MAXPGPATH];

	armdb_rel_dir_path(src, from);
	armdb_rel_dir_path(dst, to);
	armdb_rel_storage_remove(to, ERROR);
	/* copydir() fsyncs the files and the new directory */
	copydir(src, dst, true);
	write_meta(dst, to, nshards, persistence);
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

	armdb_data_dir_path(base);
	snprintf(src, sizeof(src), "%s/%u", base, src_db);
	snprintf(dst, sizeof(dst), "%s/%u", base, dst_db);
	if (stat(src, &st) != 0)
		return;					/* the template has no armdb tables */
	if (stat(dst, &st) == 0 && !rmtree(dst, true))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove old armdb directory \"%s\"", dst)));

	copydir(src, dst, true);

	dir = AllocateDir(dst);
	while ((de = ReadDir(dir, dst)) != NULL)
	{
		char		reldir[MAXPGPATH];
		RelFileNodeBackend rnode;
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
		ok = fd >= 0 && read(fd, &meta, sizeof(meta)) == sizeof(meta) &&
			meta.magic == ARMDB_META_MAGIC && meta.crc == meta_crc(&meta);
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
		write_meta(reldir, rnode, meta.nshards, meta.persistence);
	}
	FreeDir(dir);
	fsync_fname(dst, true);
	fsync_fname(base, true);
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
				 errdetail("It is removed at the next server start.")));
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

/* Is the main fork of the relation the meta file in dir names still there? */
static bool
sweep_keep(const char *dir, bool after_crash)
{
	char		path[MAXPGPATH];
	char	   *relpath;
	ArmdbMeta	meta;
	struct stat st;
	bool		keep;
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", dir, ARMDB_META_FILE);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return false;			/* creation never finished */
	keep = read(fd, &meta, sizeof(meta)) == sizeof(meta);
	CloseTransientFile(fd);
	if (!keep || meta.magic != ARMDB_META_MAGIC || meta.crc != meta_crc(&meta))
		return true;			/* damaged: leave it for a human to see */
	if (meta.backend != InvalidBackendId)
		return false;
	relpath = GetRelationPath(meta.dbNode, meta.spcNode, meta.relNode,
							  InvalidBackendId, MAIN_FORKNUM);
	keep = stat(relpath, &st) == 0 || errno != ENOENT;
	pfree(relpath);
	if (keep && after_crash && meta.persistence == RELPERSISTENCE_UNLOGGED)
	{
		ereport(LOG,
				(errmsg("armdb: emptying unlogged table storage \"%s\" after a crash",
						dir)));
		reset_unlogged(dir);
	}
	return keep;
}

void
armdb_rel_storage_sweep(void)
{
	char		base[MAXPGPATH];
	DIR		   *top;
	struct dirent *dbde;
	ControlFileData *control;
	bool		crc_ok;
	bool		after_crash;

	/* as PostgreSQL decides whether to reset unlogged relations */
	control = get_controlfile(DataDir, &crc_ok);
	after_crash = !crc_ok ||
		(control->state != DB_SHUTDOWNED &&
		 control->state != DB_SHUTDOWNED_IN_RECOVERY);
	pfree(control);

	armdb_data_dir_path(base);
	top = AllocateDir(base);
	while ((dbde = ReadDirExtended(top, base, LOG)) != NULL)
	{
		char		dbdir[MAXPGPATH];
		DIR		   *dir;
		struct dirent *de;
		int			kept = 0;

		if (strspn(dbde->d_name, "0123456789") != strlen(dbde->d_name))
			continue;
		snprintf(dbdir, sizeof(dbdir), "%s/%s", base, dbde->d_name);
		dir = AllocateDir(dbdir);
		while ((de = ReadDirExtended(dir, dbdir, LOG)) != NULL)
		{
			char		path[MAXPGPATH];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
			if (sweep_keep(path, after_crash))
			{
				kept++;
				continue;
			}
			ereport(LOG,
					(errmsg("armdb: removing \"%s\", whose relation no longer exists",
							path)));
			if (!rmtree(path, true))
				ereport(LOG,
						(errmsg("could not remove armdb directory \"%s\"", path)));
		}
		FreeDir(dir);
		if (kept == 0)
			(void) rmdir(dbdir);
		fsync_fname_ext(base, true, true, LOG);
	}
	FreeDir(top);
}
