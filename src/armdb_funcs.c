/*-------------------------------------------------------------------------
 *
 * armdb_funcs.c
 *	  SQL-callable functions: sizes of armdb tables, their shards and
 *	  files.
 *
 * pg_relation_size() and \dt+ look at the main fork, which armdb keeps
 * empty (design §8); these say what an armdb table really occupies, on
 * disk and in the key directory, and what all key directories take of
 * armdb.memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/fd.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "compact/compact.h"
#include "keydir/files.h"
#include "keydir/relstorage.h"

PG_FUNCTION_INFO_V1(armdb_relation_size_sql);
PG_FUNCTION_INFO_V1(armdb_keydir_size_sql);
PG_FUNCTION_INFO_V1(armdb_file_stats_sql);
PG_FUNCTION_INFO_V1(armdb_shard_stats_sql);
PG_FUNCTION_INFO_V1(armdb_memory_tables_sql);
PG_FUNCTION_INFO_V1(armdb_memory_total_sql);

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

/* A shard's file list, fresh, and its active file and its end. */
static ArmdbFileStat *
shard_files(ArmdbRelKeydir *kd, uint32 shard, int *nfiles, uint32 *active,
			uint64 *active_end)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbFileStat *fs;

	LWLockAcquire(&rt->lock, LW_SHARED);
	fs = armdb_files_copy(rt, nfiles);
	*active = rt->st.active_file_id;
	*active_end = rt->st.append_end;
	LWLockRelease(&rt->lock);
	for (int i = 0; i < *nfiles; i++)
		if (fs[i].file_id == *active)
			fs[i].total_bytes = *active_end;
	return fs;
}

/* armdb_file_stats(regclass): one row per data file */
Datum
armdb_file_stats_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = open_armdb_relation(PG_GETARG_OID(0));
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);

	InitMaterializedSRF(fcinfo, 0);
	armdb_compact_sync_files(kd);
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		uint32		active;
		uint64		active_end;
		int			n;
		ArmdbFileStat *fs = shard_files(kd, shard, &n, &active, &active_end);

		for (int i = 0; i < n; i++)
		{
			Datum		values[9];
			bool		nulls[9] = {0};
			values[0] = Int32GetDatum((int32) shard);
			values[1] = Int64GetDatum((int64) fs[i].file_id);
			values[2] = Int64GetDatum((int64) fs[i].total_bytes);
			values[3] = Int64GetDatum((int64) fs[i].dead_bytes);
			values[4] = Int64GetDatum((int64) fs[i].min_gsn);
			nulls[4] = fs[i].min_gsn == 0;
			values[5] = Int64GetDatum((int64) fs[i].max_gsn);
			nulls[5] = fs[i].max_gsn == 0;
			values[6] = BoolGetDatum(fs[i].file_id == active);
			values[7] = BoolGetDatum((fs[i].flags & ARMDB_FSTAT_MERGED) != 0);
			values[8] = BoolGetDatum(armdb_compact_file_has_hint(kd, shard,
																 fs[i].file_id));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
		}
		pfree(fs);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* armdb_shard_stats(regclass): one row per shard */
Datum
armdb_shard_stats_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = open_armdb_relation(PG_GETARG_OID(0));
	ArmdbRelKeydir *kd = armdb_rel_keydir(rel);
	uint64		npages = pg_atomic_read_u64(&kd->npages);
	int64	   *live_versions = palloc0(sizeof(int64) * kd->nshards);
	int64	   *live_bytes = palloc0(sizeof(int64) * kd->nshards);
	int64	   *page_bytes = palloc0(sizeof(int64) * kd->nshards);

	InitMaterializedSRF(fcinfo, 0);
	armdb_compact_sync_files(kd);
	for (uint64 p = 0; p < npages; p++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, p);
		uint32		shard = armdb_page_shard(kd, p);

		if (page == NULL)
			continue;
		page_bytes[shard] += armdb_keydir_page_cost(page);
		LWLockAcquire(&page->lock, LW_SHARED);
		for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
			if (page->v[i].file_id != 0)
			{
				live_versions[shard]++;
				live_bytes[shard] += armdb_version_len(&page->v[i],
													   p * ARMDB_SLOTS_PER_PAGE + i);
			}
		LWLockRelease(&page->lock);
	}
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		Datum		values[7];
		bool		nulls[7] = {0};
		uint32		active;
		uint64		active_end;
		int			n;
		ArmdbFileStat *fs = shard_files(kd, shard, &n, &active, &active_end);
		int64		total = 0;
		int64		dead = 0;
		int64		kbytes;

		for (int i = 0; i < n; i++)
		{
			total += fs[i].total_bytes;
			dead += fs[i].dead_bytes;
		}
		pfree(fs);
		LWLockAcquire(&rt->lock, LW_SHARED);
		/* as armdb_memory_tables counts them (keydir.c) */
		kbytes = page_bytes[shard] +
			(DsaPointerIsValid(rt->buf_dp) ?
			 armdb_keydir_alloc_cost(rt->st.buf_size) : 0) +
			(DsaPointerIsValid(rt->free_slots) ?
			 armdb_keydir_alloc_cost(sizeof(uint32) * rt->free_cap) : 0) +
			(DsaPointerIsValid(rt->files) ?
			 armdb_keydir_alloc_cost(sizeof(ArmdbFileStat) * rt->files_cap) : 0);
		LWLockRelease(&rt->lock);
		values[0] = Int32GetDatum((int32) shard);
		values[1] = Int32GetDatum(n);
		values[2] = Int64GetDatum(total);
		values[3] = Int64GetDatum(live_bytes[shard]);
		values[4] = Int64GetDatum(dead);
		values[5] = Int64GetDatum(live_versions[shard]);
		values[6] = Int64GetDatum(kbytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* armdb_memory_tables(): the shared memory of every table's key directory */
static void
memory_table_row(ArmdbRelKeydir *kd, void *arg)
{
	ReturnSetInfo *rsinfo = arg;
	ArmdbKeydirMemory mem;
	Datum		values[12];
	bool		nulls[12] = {0};

	armdb_keydir_memory(kd, &mem);
	values[0] = ObjectIdGetDatum(kd->key.dbNode);
	values[1] = ObjectIdGetDatum(kd->relid);
	nulls[1] = !OidIsValid(kd->relid);
	values[2] = ObjectIdGetDatum(kd->key.relNode);
	values[3] = BoolGetDatum(kd->key.backend != InvalidBackendId);
	values[4] = BoolGetDatum(kd->loaded);
	values[5] = Int32GetDatum((int32) kd->nshards);
	values[6] = Int64GetDatum(mem.versions);
	values[7] = Int64GetDatum(mem.pages);
	values[8] = Int64GetDatum(mem.page_bytes);
	values[9] = Int64GetDatum(mem.buffer_bytes);
	values[10] = Int64GetDatum(mem.other_bytes);
	values[11] = Int64GetDatum(mem.page_bytes + mem.buffer_bytes + mem.other_bytes);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
armdb_memory_tables_sql(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	armdb_keydir_foreach(memory_table_row, fcinfo->resultinfo);
	return (Datum) 0;
}

/* armdb_memory_total(): all key directories against armdb.memory */
Datum
armdb_memory_total_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};
	int64		limit = (int64) armdb_memory_limit_mb() * 1024 * 1024;
	int64		tables;
	int64		used = armdb_keydir_total_bytes(&tables);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(limit);
	values[1] = Int64GetDatum((int64) armdb_shared->keydir_initial_size);
	values[2] = Int64GetDatum(used);
	values[3] = Int64GetDatum(Max(limit - used, 0));
	values[4] = Int64GetDatum(tables);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
