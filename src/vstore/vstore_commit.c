/*-------------------------------------------------------------------------
 *
 * vstore_commit.c
 *	  Group commit and the write barrier of the version store.
 *
 * Pre-commit: make every entry this transaction appended durable before
 * the commit record can be (design §4, atomicity invariant).  Entries in
 * WAL records are durable with the commit record once WAL carries
 * durability (armdb_durable.c): then they stay in their shard's buffer,
 * to be written to their files when the buffer fills, when the flusher
 * syncs the shard, when a checkpoint passes the gate (so a base backup
 * copies them), or when the committing backend exits (so a clean shutdown
 * leaves every committed entry in its file: pg_upgrade carries the files,
 * not WAL).  Writing them out after each commit record, as armdb did
 * before, cost each single-row commit an O_DIRECT write of the buffer's
 * last block: 0.70 of heap's single-row INSERT rate, about 1.0 without
 * it.  Otherwise (unlogged relations, commits before
 * the flusher holds its slot, armdb.sync_at_commit) each shard the
 * transaction wrote is flushed up to its last entry; committers of one
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
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "armdb.h"
#include "storage/cipher.h"
#include "storage/io.h"
#include "vstore/vstore.h"
#include "vstore/vstore_internal.h"
#include "wal/armdb_durable.h"

typedef struct PendingWrite
{
	ArmdbRelKey key;
	uint64		generation;
	uint32		shard;
	ArmdbPos	pos;			/* flush up to here at commit */
	bool		wal;			/* the entries are in WAL records */
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

int
armdb_vstore_dir_key_ids(const char *dir, uint32 *key_ids, uint32 *file_ids,
						 int max)
{
	uint32	   *ids;
	int			n;
	int			found = 0;
	uint32		max_id;
	ArmdbError	err;

	if (!armdb_list_data_files(dir, &ids, &n, &max_id, &err))
		armdb_report_storage_error(ERROR, &err);
	for (int i = 0; i < n; i++)
	{
		char		path[MAXPGPATH];
		ArmdbFileHeader fh;
		int			fd;
		bool		ok;
		bool		known = false;

		armdb_file_path(path, dir, ids[i], ARMDB_FILE_DATA);
		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		if (fd < 0)
			continue;			/* merged away meanwhile */
		ok = read(fd, &fh, sizeof(fh)) == sizeof(fh) &&
			armdb_file_header_check((const char *) &fh, sizeof(fh), ids[i], &err);
		CloseTransientFile(fd);
		if (!ok || !(fh.flags & ARMDB_FILE_FLAG_ENCRYPTED))
			continue;			/* a damaged header: reads report it */
		for (int k = 0; k < found; k++)
			known = known || key_ids[k] == fh.key_id;
		if (!known && found < max)
		{
			key_ids[found] = fh.key_id;
			file_ids[found++] = ids[i];
		}
	}
	if (ids != NULL)
		pfree(ids);
	return found;
}

/*
 * The first use of an encrypted table in a session: every data file of its
 * shards must be under a key the server holds.  Else an ERROR names the key
 * and the setting now, before any row is read or written -- not later, at
 * the first row of an old file, nor never for a write (which would go to a
 * new file under the current key).
 */
static void
check_shard_keys(const char *dir)
{
	uint32		key_ids[ARMDB_CIPHER_MAX_KEYS + 1];
	uint32		file_ids[ARMDB_CIPHER_MAX_KEYS + 1];
	int			n = armdb_vstore_dir_key_ids(dir, key_ids, file_ids,
											 lengthof(key_ids));
	ArmdbError	err;

	for (int k = 0; k < n; k++)
	{
		if (armdb_cipher_find_key(&armdb_keyring, key_ids[k]) != NULL)
			continue;
		armdb_error(&err, ARMDB_ERR_KEY, 0,
					armdb_keyring.nkeys == 0 ?
					"encryption key %08x is needed by data file %06u of \"%s\", and the server has no encryption key" :
					"encryption key %08x is needed by data file %06u of \"%s\", and the server was not given it",
					key_ids[k], file_ids[k], dir);
		armdb_report_storage_error(ERROR, &err);
	}
}

ArmdbShardFiles *
armdb_vstore_shard_files(ArmdbRelKeydir *kd, uint32 shard,
						 const ArmdbStoreSettings *settings)
{
	ArmdbShardFiles *files = armdb_keydir_shard_files(kd, shard, settings);

	/*
	 * Sessions only: armdb's own workers never need it (a merge reads each
	 * input's key, a load each file's as it authenticates it, and the
	 * flusher reads no value), and must not be stopped by it.
	 */
	if (files->encrypt && !files->keys_checked && MyBackendType == B_BACKEND)
	{
		/* every shard: a write to one of them is under the current key */
		for (uint32 s = 0; s < kd->nshards; s++)
		{
			ArmdbShardFiles *other = s == shard ? files :
				armdb_keydir_shard_files(kd, s, settings);

			if (!other->keys_checked)
				check_shard_keys(other->dir);
			other->keys_checked = true;
		}
	}

	files->write_barrier = shard_write_barrier;
	files->write_barrier_arg = armdb_keydir_shard(kd, shard);
	return files;
}

void
armdb_vstore_note_write(ArmdbRelKeydir *kd, uint32 shard, ArmdbPos pos,
						bool wal)
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
	pending[npending].wal = wal;
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
	bool		lazy = armdb_durable_lazy();
	int			nleft = 0;

	for (int i = 0; i < npending; i++)
	{
		ArmdbRelKeydir *kd;

		/* left for the write-out after the commit record */
		if (lazy && pending[i].wal)
		{
			pending[nleft++] = pending[i];
			continue;
		}
		kd = armdb_keydir_find(&pending[i].key, pending[i].generation);
		/* gone: dropped in this transaction, its entries need no flush */
		if (kd != NULL)
			armdb_vstore_flush_shard(kd, pending[i].shard, pending[i].pos,
									 settings);
	}
	npending = nleft;
}

/*
 * Shards whose committed entries this backend left unwritten after an
 * asynchronous commit: written when the backend exits, so that a clean
 * shutdown leaves every committed entry in its file (pg_upgrade moves the
 * files, not the WAL).  The flusher normally writes them much earlier.
 */
static PendingWrite *deferred = NULL;
static int	ndeferred = 0;
static int	maxdeferred = 0;

/*
 * Write shard's buffered entries before upto to their file, unsynced; a
 * failure is a WARNING.  With flushed valid, only if WAL is flushed that far
 * past the shard's entries: false if not (nothing written).
 */
static bool
write_out_upto(ArmdbRelKeydir *kd, uint32 shard, ArmdbPos upto,
			   XLogRecPtr flushed, const ArmdbStoreSettings *settings)
{
	ArmdbShardRt *rt = armdb_keydir_shard(kd, shard);
	ArmdbShardFiles *files = armdb_vstore_shard_files(kd, shard, settings);
	ArmdbPos	reached;
	ArmdbError	err;
	bool		ok = true;
	bool		done = true;

	LWLockAcquire(&rt->lock, LW_EXCLUSIVE);
	if (rt->st.active_file_id != 0 && !rt->st.failed &&
		rt->st.written_end < rt->st.append_end &&
		ARMDB_POS(rt->st.active_file_id, rt->st.written_end) < upto)
	{
		if (XLogRecPtrIsInvalid(flushed) || rt->wal_lsn <= flushed)
			ok = armdb_shard_write_out(&rt->st, files, &reached, &err);
		else
			done = false;
	}
	LWLockRelease(&rt->lock);
	if (!ok)
		armdb_report_storage_error(WARNING, &err);
	return done;
}

void
armdb_vstore_write_out_all_shards(ArmdbRelKeydir *kd,
								  const ArmdbStoreSettings *settings)
{
	for (uint32 shard = 0; shard < kd->nshards; shard++)
		(void) write_out_upto(kd, shard, PG_UINT64_MAX, InvalidXLogRecPtr,
							  settings);
}

static void
write_out_deferred(int code, Datum arg)
{
	const ArmdbStoreSettings *settings = armdb_store_settings();

	for (int i = 0; i < ndeferred; i++)
	{
		/*
		 * No lock on the relation any more: pinned, so that a concurrent
		 * DROP cannot free the keydir while it is written out.
		 */
		ArmdbRelKeydir *kd = armdb_keydir_find_pinned(&deferred[i].key,
													  deferred[i].generation);

		if (kd == NULL)
			continue;
		/* exiting on an error in the middle of an append: leave it */
		if (!LWLockHeldByMe(&armdb_keydir_shard(kd, deferred[i].shard)->lock))
		{
			/* the shard's write barrier flushes WAL first */
			(void) write_out_upto(kd, deferred[i].shard, deferred[i].pos,
								  InvalidXLogRecPtr, settings);
		}
		armdb_keydir_unpin(kd);
	}
	ndeferred = 0;
}

static void
defer_write_out(const PendingWrite *pw)
{
	for (int i = 0; i < ndeferred; i++)
	{
		if (deferred[i].generation == pw->generation &&
			deferred[i].shard == pw->shard)
		{
			deferred[i].pos = Max(deferred[i].pos, pw->pos);
			return;
		}
	}
	if (ndeferred == maxdeferred)
	{
		if (deferred == NULL)
			before_shmem_exit(write_out_deferred, (Datum) 0);
		maxdeferred = Max(16, maxdeferred * 2);
		deferred = deferred == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(PendingWrite) * maxdeferred) :
			repalloc(deferred, sizeof(PendingWrite) * maxdeferred);
	}
	deferred[ndeferred++] = *pw;
}

/*
 * After the commit (or prepare) record: what the transaction left in its
 * shards' buffers.  Entries WAL holds stay there (file header), noted for
 * this backend's exit; others (unlogged relations, synced before the
 * commit record anyway) are written to their files, unsynced.  Nothing
 * here may fail the transaction, which is committed: a failed write is a
 * WARNING, and the entries stay in the shard's buffer for the flusher.
 */
void
armdb_vstore_write_out_writes(const ArmdbStoreSettings *settings)
{
	XLogRecPtr	flushed = GetFlushRecPtr(NULL);
	MemoryContext oldcontext = CurrentMemoryContext;
	uint32		holdoff = InterruptHoldoffCount;
	ArmdbRelKeydir *volatile pinned = NULL;
	volatile uint32 pinned_shard = 0;

	PG_TRY();
	{
		for (int i = 0; i < npending; i++)
		{
			/*
			 * Pinned: after the commit record the lock on the relation,
			 * still held, no longer shows in GetLockConflicts() (no
			 * virtual transaction id), which giving idle keydirs back
			 * relies on.
			 */
			ArmdbRelKeydir *kd = armdb_keydir_find_pinned(&pending[i].key,
														  pending[i].generation);
			bool		done;

			if (kd == NULL)
				continue;
			pinned = kd;
			pinned_shard = pending[i].shard;
			done = !(pending[i].wal && armdb_durable_lazy()) &&
				write_out_upto(kd, pending[i].shard, pending[i].pos, flushed,
							   settings);
			pinned = NULL;
			armdb_keydir_unpin(kd);
			if (!done)
				defer_write_out(&pending[i]);
		}
	}
	PG_CATCH();
	{
		/*
		 * Out of memory, most likely: after the commit record an ERROR
		 * would be a PANIC.  The entries stay buffered for the flusher.
		 */
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		/* let go of the keydir (an ERROR zeroed the holdoff count its locks took) */
		if (pinned != NULL)
		{
			LWLock	   *shard_lock = &armdb_keydir_shard(pinned, pinned_shard)->lock;
			bool		shard_held = LWLockHeldByMe(shard_lock);

			InterruptHoldoffCount = holdoff + 1 + (shard_held ? 1 : 0);
			if (shard_held)
				LWLockRelease(shard_lock);
			armdb_keydir_unpin(pinned);
		}
		ereport(WARNING,
				(errmsg("armdb could not write the entries of a committed transaction to their files: %s",
						edata->message),
				 errdetail("WAL holds them; the armdb flusher writes them later.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	npending = 0;
}

void
armdb_vstore_forget_writes(void)
{
	npending = 0;
}
