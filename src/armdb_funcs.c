/*-------------------------------------------------------------------------
 *
 * armdb_funcs.c
 *	  SQL-callable functions: sizes of armdb tables.
 *
 * pg_relation_size() and \dt+ look at the main fork, which armdb keeps
 * empty (design §8); these say what an armdb table really occupies, on
 * disk and in the key directory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "access/relation.h"
#include "fmgr.h"
#include "storage/fd.h"
#include "utils/rel.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/relstorage.h"

PG_FUNCTION_INFO_V1(armdb_relation_size_sql);
PG_FUNCTION_INFO_V1(armdb_keydir_size_sql);

static Relation
open_armdb_relation(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);

	if (!armdb_is_armdb_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an armdb table",
						RelationGetRelationName(rel))));
	return rel;
}

/* Bytes of all files under dir, recursively. */
static int64
dir_size(const char *dir)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	int64		total = 0;

	while ((de = ReadDir(d, dir)) != NULL)
	{
		char		path[MAXPGPATH];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0)
		{
			if (errno == ENOENT)
				continue;		/* removed meanwhile (e.g. a .tmp file) */
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path)));
		}
		if (S_ISDIR(st.st_mode))
			total += dir_size(path);
		else
			total += st.st_size;
	}
	FreeDir(d);
	return total;
}

Datum
armdb_relation_size_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = open_armdb_relation(PG_GETARG_OID(0));
	char		dir[MAXPGPATH];
	int64		size;

	armdb_rel_dir_path(dir, armdb_rel_rnode(rel));
	size = dir_size(dir);
	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64(size);
}

Datum
armdb_keydir_size_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = open_armdb_relation(PG_GETARG_OID(0));
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	int64		size = armdb_keydir_bytes(kd);

	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64(size);
}
