/*-------------------------------------------------------------------------
 *
 * vstore_commit.c
 *	  Group commit and the write barrier of the version store.
 *
 * Pre-commit: make every entry this transaction appended durable before
 * the commit record can be (design §4, atomicity invariant).  Each shard
 * the transaction wrote is flushed up to its last entry; committers of one
 * shard share fdatasync calls (group commit): one of them, holding the
 * shard's flush lock, writes out everything buffered and syncs, and the
 * others find their entries already durable when they get the lock.  This
 * happens whatever synchronous_commit says: the WAL writer may flush the
 * commit record at any moment, so deferring our flush would let a crash
 * keep a commit whose rows are lost.  The access method's transaction
 * callbacks (armdb_xact.c) call armdb_vstore_flush_writes().
 *
 * Write barrier: no entry reaches a data file before WAL is flushed up to
 * its own record, which carries its transaction id (armdb_xact.c says why);
 * appenders raise their shard's wal_lsn, and the storage layer calls the
 * barrier before each write of entries, which first logs a batch of this
 * backend's entries still waiting for their record (vstore.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "armdb.h"
#include "vstore/vstore.h"
#include "vstore/vstore_internal.h"

typedef struct PendingWrite
{
	ArmdbRelKey key;
	uint64		generation;
	uint32		shard;
	ArmdbPos	pos;			/* flush up to here at commit */
} PendingWrite;

static PendingWrite *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;

/* ArmdbShardFiles.write_barrier: WAL first, then the entries (see above). */
static bool
shard_write_barrier(void *arg, ArmdbError *err)
{
	ArmdbShardRt *rt = arg;

	armdb_vstore_log_batch(rt);
	if (!XLogRecPtrIsInvalid(rt->wal_lsn))
		XLogFlush(rt->wal_lsn);
	return true;
}

ArmdbShardFiles *
armdb_vstore_shard_files(ArmdbRelKeydir *kd, uint32 shard,
						 const ArmdbStoreSettings *settings)
{
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard, settings);

	files->write_barrier = shard_write_barrier;
	files->write_barrier_arg = armdb_keydir_shard(kd, shard);
	return files;
}

void
armdb_vstore_note_write(ArmdbRelKeydir *kd, uint32 shard, ArmdbPos pos)
{
	for (int i = 0; i < npending; i++)
	{
		if (pending[i].generation == kd->generation && pending[i].shard == shard)
		{
			pending[i].pos = Max(pending[i].pos, pos);
			return;
		}
	}
	if (npending == maxpending)
	{
		maxpending = Max(16, maxpending * 2);
		pending = pending == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(PendingWrite) * maxpending) :
			repalloc(pending, sizeof(PendingWrite) * maxpending);
	}
	pending[npending].key = kd->key;
	pending[npending].generation = kd->generation;
	pending[npending].shard = shard;
	pending[npending].pos = pos;
	npending++;
}

/*
 * Make everything of the shard before upto durable, sharing the work with
 * concurrent committers.
 */
void
armdb_vstore_flush_shard(ArmdbRelKeydir *kd, uint32 shard, ArmdbPos upto,
						 const ArmdbStoreSettings *settings)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_vstore_shard_files(kd, shard, settings);
	ArmdbPos	reached;
	ArmdbError	err;
	XLogRecPtr	wal_lsn;
	bool		done;

	LWLockAcquire(&rt->lock, LW_SHARED);
	done = rt->st.flushed >= upto;
	LWLockRelease(&rt->lock);
	if (done)
		return;

	/* one flusher at a time; whoever waited here may find its work done */
	LWLockAcquire(&rt->flush_lock, LW_EXCLUSIVE);

	/*
	 * The write barrier flushes WAL under the shard lock, which stops every
	 * append to the shard meanwhile; flush what is known to be needed now,
	 * before taking it, so that the barrier usually finds nothing left.
	 */
	LWLockAcquire(&rt->lock, LW_SHARED);
	wal_lsn = rt->wal_lsn;
	LWLockRelease(&rt->lock);
	if (!XLogRecPtrIsInvalid(wal_lsn))
		XLogFlush(wal_lsn);

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	if (rt->st.flushed >= upto)
	{
		LWLockRelease(&rt->lock);
		LWLockRelease(&rt->flush_lock);
		return;
	}
	if (!armdb_shard_write_out(&rt->st, files, &reached, &err))
		armdb_report_storage_error(ERROR, &err);
	LWLockRelease(&rt->lock);

	/* appends go on while we sync */
	if (!armdb_shard_sync(&rt->st, files, reached, &err))
	{
		/*
		 * As PostgreSQL does for its own files (data_sync_retry): after a
		 * failed fsync the kernel may have dropped the data, so only crash
		 * recovery from what is on disk can be trusted.
		 */
		armdb_report_storage_error(data_sync_elevel(ERROR), &err);
	}

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	armdb_shard_note_flushed(&rt->st, reached);
	LWLockRelease(&rt->lock);
	LWLockRelease(&rt->flush_lock);
}

void
armdb_vstore_flush_all_shards(ArmdbRelKeydir *kd,
							  const ArmdbStoreSettings *settings)
{
	for (uint32 shard = 0; shard < kd->nshards; shard++)
	{
		ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
		ArmdbPos	end;

		LWLockAcquire(&rt->lock, LW_SHARED);
		end = rt->st.active_file_id == 0 ? 0 : armdb_shard_end(&rt->st);
		LWLockRelease(&rt->lock);
		if (end != 0)
			armdb_vstore_flush_shard(kd, shard, end, settings);
	}
}

void
armdb_vstore_flush_writes(const ArmdbStoreSettings *settings)
{
	for (int i = 0; i < npending; i++)
	{
		ArmdbRelKeydir *kd = armdb_keydir_find(&pending[i].key,
											   pending[i].generation);

		/* gone: dropped in this transaction, its entries need no flush */
		if (kd != NULL)
			armdb_vstore_flush_shard(kd, pending[i].shard, pending[i].pos,
									 settings);
	}
	npending = 0;
}

void
armdb_vstore_forget_writes(void)
{
	npending = 0;
}
