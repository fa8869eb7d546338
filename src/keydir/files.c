/*-------------------------------------------------------------------------
 *
 * files.c
 *	  Each shard's list of data files (see files.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "armdb.h"
#include "keydir/files.h"

static ArmdbFileStat *
files_array(ArmdbShardRt *rt)
{
	if (!DsaPointerIsValid(rt->files))
		return NULL;
	return dsa_get_address(armdb_keydir_area(), rt->files);
}

uint32
armdb_files_search(const ArmdbFileStat *fs, uint32 n, uint32 file_id)
{
	uint32		lo = 0;
	uint32		hi = n;

	while (lo < hi)
	{
		uint32		mid = lo + (hi - lo) / 2;

		if (fs[mid].file_id < file_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for n more entries; false when the keydir's memory is full. */
bool
armdb_files_reserve(ArmdbShardRt *rt, uint32 n)
{
	dsa_area   *area = armdb_keydir_area_to_grow();
	uint32		cap;
	dsa_pointer dp;

	if (rt->nfiles + n <= rt->files_cap)
		return true;
	cap = Max(16, Max(rt->files_cap * 2, rt->nfiles + n));
	dp = dsa_allocate_extended(area, sizeof(ArmdbFileStat) * cap,
							   DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO);
	if (!DsaPointerIsValid(dp))
		return false;
	if (DsaPointerIsValid(rt->files))
	{
		memcpy(dsa_get_address(area, dp), dsa_get_address(area, rt->files),
			   sizeof(ArmdbFileStat) * rt->nfiles);
		dsa_free(area, rt->files);
	}
	rt->files = dp;
	rt->files_cap = cap;
	return true;
}

ArmdbFileStat *
armdb_files_lookup(ArmdbShardRt *rt, uint32 file_id, bool create)
{
	ArmdbFileStat *fs = files_array(rt);
	uint32		i = fs ? armdb_files_search(fs, rt->nfiles, file_id) : 0;

	if (fs != NULL && i < rt->nfiles && fs[i].file_id == file_id)
		return &fs[i];
	if (!create || file_id == 0 || !armdb_files_reserve(rt, 1))
		return NULL;
	fs = files_array(rt);
	memmove(&fs[i + 1], &fs[i], sizeof(ArmdbFileStat) * (rt->nfiles - i));
	memset(&fs[i], 0, sizeof(ArmdbFileStat));
	fs[i].file_id = file_id;
	rt->nfiles++;
	rt->files_upto = Max(rt->files_upto, file_id);
	return &fs[i];
}

void
armdb_files_add_dead(ArmdbShardRt *rt, uint32 file_id, uint64 bytes)
{
	/*
	 * A file the list once had and has no more was merged away: a version
	 * still pointing there (a standby's, kept for older snapshots) must
	 * not bring it back.
	 */
	ArmdbFileStat *f = armdb_files_lookup(rt, file_id, file_id > rt->files_upto);

	/* no memory for the entry: the file just looks more alive than it is */
	if (f != NULL)
	{
		f->dead_bytes += bytes;
		f->dead_version_bytes += bytes;
	}
}

uint64
armdb_files_bytes(ArmdbShardRt *rt)
{
	ArmdbFileStat *fs = files_array(rt);
	uint64		bytes = 0;

	for (uint32 i = 0; i < rt->nfiles; i++)
		if (fs[i].file_id != rt->st.active_file_id)
			bytes += fs[i].total_bytes;
	if (rt->st.active_file_id != 0)
		bytes += rt->st.append_end;
	return bytes;
}

ArmdbFileStat *
armdb_files_copy(ArmdbShardRt *rt, int *nfiles)
{
	ArmdbFileStat *copy = palloc(sizeof(ArmdbFileStat) * Max(rt->nfiles, 1));

	if (rt->nfiles > 0)
		memcpy(copy, files_array(rt), sizeof(ArmdbFileStat) * rt->nfiles);
	*nfiles = (int) rt->nfiles;
	return copy;
}

bool
armdb_files_replace(ArmdbShardRt *rt, const uint32 *inputs, int ninputs,
					const ArmdbFileStat *outputs, int noutputs)
{
	ArmdbFileStat *fs;
	uint32		n = 0;

	if (!armdb_files_reserve(rt, noutputs))
		return false;
	fs = files_array(rt);
	/* the last run's outputs may be merged again by the next one */
	for (uint32 i = 0; i < rt->nfiles; i++)
	{
		bool		input = false;

		for (int j = 0; j < ninputs && !input; j++)
			input = fs[i].file_id == inputs[j];
		if (input)
			continue;
		fs[i].flags &= ~ARMDB_FSTAT_COOLDOWN;
		fs[n++] = fs[i];
	}
	rt->nfiles = n;
	for (int j = 0; j < noutputs; j++)
	{
		ArmdbFileStat *f = armdb_files_lookup(rt, outputs[j].file_id, true);

		Assert(f != NULL);		/* room reserved above */
		*f = outputs[j];
		f->flags |= ARMDB_FSTAT_MERGED | ARMDB_FSTAT_COOLDOWN;
	}
	return true;
}

void
armdb_files_free(ArmdbShardRt *rt)
{
	if (DsaPointerIsValid(rt->files))
		dsa_free(armdb_keydir_area(), rt->files);
	rt->files = InvalidDsaPointer;
	rt->nfiles = rt->files_cap = 0;
}
