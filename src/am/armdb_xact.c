/*-------------------------------------------------------------------------
 *
 * armdb_xact.c
 *	  What armdb does at transaction boundaries.
 *
 * Pre-commit: make every entry this transaction appended durable before
 * the commit record can be (design §4, atomicity invariant), whatever
 * synchronous_commit says; the version store does it, sharing fdatasync
 * calls with concurrent committers (group commit, vstore_commit.c).  Once
 * WAL carries durability (armdb_durable.c), entries in WAL records are
 * durable with the commit record, and are only written to their files
 * after it (commit, prepare).
 *
 * Commit and abort: PostgreSQL 15 does not tell a table access method when
 * storage is dropped (design §8), so the pending deletes of the ending
 * (sub)transaction say which armdb directories and keydirs to remove:
 * dropped ones at commit, created ones at abort.  Pending deletes do not
 * list temporary relations (smgrGetPendingDeletes), so this backend keeps a
 * list of the temporary armdb storage it made, and at each transaction end
 * removes what no longer has its main fork file: storage dropped by an
 * earlier transaction (its file goes after the callbacks of its own end).
 *
 * Transaction ids in WAL.  Every entry of a permanent relation is logged
 * (armdb_wal.c), and the record carries its transaction id: a transaction
 * that writes armdb tables has written WAL before its commit record, so it
 * commits synchronously (when synchronous_commit says so), and its id is
 * in WAL before any of its entries can reach a data file (the shard's write
 * barrier flushes WAL up to the entry's record first, vstore_commit.c), so
 * a crash never hands the id out again while an entry carries it.
 * Temporary and unlogged relations log nothing, as for heap: their storage
 * does not survive a crash.
 *
 * Removing storage is logged first (armdb_wal_log_drop), so that replay
 * does not bring back the storage of a relation that no longer exists.
 *
 * PREPARE TRANSACTION flushes like a commit; it is refused after row locks,
 * which a prepared transaction could not keep (see below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "catalog/storage.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "am/armdb_am.h"
#include "armdb.h"
#include "keydir/relstorage.h"
#include "wal/armdb_wal.h"

/*
 * Remove a relation's armdb storage and keydir, if it has any.  The
 * transaction's outcome is decided: failures are warnings.
 */
static void
drop_storage(RelFileNodeBackend rnode)
{
	if (!armdb_rel_storage_exists(rnode))
		return;
	if (rnode.backend == InvalidBackendId)
		armdb_wal_log_drop(&rnode.node);
	armdb_keydir_drop(rnode);
	armdb_rel_storage_remove(rnode, WARNING);
}

/* temporary armdb storage this backend made (file header) */
static RelFileNodeBackend *temp_storage = NULL;
static int	ntemp_storage = 0;
static int	maxtemp_storage = 0;

void
armdb_xact_note_temp_storage(RelFileNodeBackend rnode)
{
	if (ntemp_storage == maxtemp_storage)
	{
		maxtemp_storage = Max(8, maxtemp_storage * 2);
		temp_storage = temp_storage == NULL ?
			MemoryContextAlloc(TopMemoryContext,
							   sizeof(RelFileNodeBackend) * maxtemp_storage) :
			repalloc(temp_storage, sizeof(RelFileNodeBackend) * maxtemp_storage);
	}
	temp_storage[ntemp_storage++] = rnode;
}

/* Remove the temporary armdb storage whose relation is gone. */
static void
remove_dropped_temp_storage(void)
{
	int			kept = 0;

	for (int i = 0; i < ntemp_storage; i++)
	{
		RelFileNodeBackend rnode = temp_storage[i];
		char	   *path = relpathbackend(rnode.node, rnode.backend, MAIN_FORKNUM);
		struct stat st;
		bool		gone = stat(path, &st) != 0 && errno == ENOENT;

		pfree(path);
		if (!gone)
		{
			temp_storage[kept++] = rnode;
			continue;
		}
		drop_storage(rnode);
	}
	ntemp_storage = kept;
}

/* a row lock (not an UPDATE or DELETE) was taken on an armdb row */
static bool took_row_lock = false;

void
armdb_xact_note_row_lock(void)
{
	took_row_lock = true;
}

/* Remove the armdb storage among the pending deletes of forCommit. */
static void
remove_pending_deletes(bool forCommit)
{
	RelFileNode *rels;
	int			nrels = smgrGetPendingDeletes(forCommit, &rels);

	for (int i = 0; i < nrels; i++)
	{
		RelFileNodeBackend rnode;

		rnode.node = rels[i];
		rnode.backend = InvalidBackendId;
		drop_storage(rnode);
	}
	if (nrels > 0)
		pfree(rels);
}

static void
armdb_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			armdb_vstore_flush_writes(armdb_store_settings());
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A prepared transaction's entries are durable like a commit's,
			 * and after a restart recovery keeps them as the versions of a
			 * transaction in progress (its xid stays in the proc array),
			 * with the rows it deleted or replaced marked as such.  What
			 * recovery could not restore is refused: row locks that were
			 * taken but not written.  Storage it created or dropped is
			 * kept until COMMIT or ROLLBACK PREPARED unlinks the main fork
			 * of what goes, after which armdb_utility.c removes the rest.
			 */
			if (took_row_lock)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has locked rows of armdb tables"),
						 errhint("Commit the transaction instead, or take row locks (SELECT ... FOR UPDATE) outside two-phase transactions.")));
			armdb_vstore_flush_writes(armdb_store_settings());
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			armdb_vstore_write_out_writes(armdb_store_settings());
			took_row_lock = false;
			remove_pending_deletes(true);
			remove_dropped_temp_storage();
			armdb_keydir_close_dropped_files();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			armdb_vstore_forget_writes();
			took_row_lock = false;
			remove_pending_deletes(false);
			remove_dropped_temp_storage();
			armdb_keydir_close_dropped_files();
			break;
		case XACT_EVENT_PREPARE:
			armdb_vstore_write_out_writes(armdb_store_settings());
			took_row_lock = false;
			break;
	}
}

static void
armdb_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	/* storage created in the aborted subtransaction goes with it */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		remove_pending_deletes(false);
}

void
armdb_xact_init(void)
{
	RegisterXactCallback(armdb_xact_callback, NULL);
	RegisterSubXactCallback(armdb_subxact_callback, NULL);
}
