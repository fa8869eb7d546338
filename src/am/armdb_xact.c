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
 * PREPARE TRANSACTION flushes like a commit.  Row locks live in version
 * records in shared memory, where a restart would lose them, while a
 * prepared transaction must keep its locks through a crash, a standby's
 * promotion or a base backup, as heap's stay in tuple headers.  So at
 * PREPARE the transaction writes a lock entry (format.h) for each version
 * whose xmax names it -- as a locker, or as an updater next to lockers in
 * a MultiXact -- and a keydir load gives those versions that xmax back
 * while the transaction runs (winner.h).  The versions are found by going
 * through the keydirs of the tables it locked rows of (a list of tables,
 * not of rows: locking a million rows costs no memory here), so locks an
 * UPDATE carried to a new version are found too.  The other way round, an
 * UPDATE that carries a lock of a transaction already prepared to its new
 * version writes a lock entry for it (armdb_update.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "catalog/storage.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/rel.h"

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

/*
 * The tables this transaction locked rows of, or set a MultiXact xmax in
 * (in TopTransactionContext); only where PREPARE TRANSACTION is possible.
 */
typedef struct LockedTable
{
	RelFileNode node;
	bool		wal;			/* RelationNeedsWAL() */
} LockedTable;

static LockedTable *locked_tables = NULL;
static int	nlocked_tables = 0;
static int	maxlocked_tables = 0;

void
armdb_xact_note_row_lock(Relation rel)
{
	if (max_prepared_xacts == 0 || RelationUsesLocalBuffers(rel))
		return;					/* no PREPARE to keep them for */
	for (int i = 0; i < nlocked_tables; i++)
		if (RelFileNodeEquals(locked_tables[i].node, rel->rd_node))
			return;
	if (nlocked_tables == maxlocked_tables)
	{
		maxlocked_tables = Max(8, maxlocked_tables * 2);
		locked_tables = locked_tables == NULL ?
			MemoryContextAlloc(TopTransactionContext,
							   sizeof(LockedTable) * maxlocked_tables) :
			repalloc(locked_tables, sizeof(LockedTable) * maxlocked_tables);
	}
	locked_tables[nlocked_tables].node = rel->rd_node;
	locked_tables[nlocked_tables].wal = RelationNeedsWAL(rel);
	nlocked_tables++;
}

/* Does xmax (with infomask) name this transaction or one of its subxacts? */
static bool
xmax_names_us(TransactionId xmax, uint16 infomask)
{
	MultiXactMember *members;
	int			nmembers;
	bool		found = false;

	if ((infomask & HEAP_XMAX_INVALID) || !TransactionIdIsValid(xmax))
		return false;
	if (!(infomask & HEAP_XMAX_IS_MULTI))
		return HEAP_XMAX_IS_LOCKED_ONLY(infomask) &&
			TransactionIdIsCurrentTransactionId(xmax);
	nmembers = GetMultiXactIdMembers(xmax, &members, false,
									 HEAP_XMAX_IS_LOCKED_ONLY(infomask));
	for (int i = 0; i < nmembers && !found; i++)
		found = TransactionIdIsCurrentTransactionId(members[i].xid);
	if (nmembers > 0)
		pfree(members);
	return found;
}

/*
 * Of the lock entries just written, keep those whose version's xmax has
 * changed since its record was read and still names us, with the new
 * xmax; return how many.
 */
static int
changed_locks(ArmdbRelKeydir *kd, ArmdbRowLock *locks, int nlocks)
{
	int			n = 0;

	for (int i = 0; i < nlocks; i++)
	{
		ArmdbPage  *page = armdb_keydir_page(kd, locks[i].slot / ARMDB_SLOTS_PER_PAGE);
		ArmdbVersion v;

		LWLockAcquire(&page->lock, LW_SHARED);
		v = page->v[locks[i].slot % ARMDB_SLOTS_PER_PAGE];
		LWLockRelease(&page->lock);
		if (v.file_id == 0 ||
			(v.xmax == locks[i].xmax &&
			 (v.infomask & ARMDB_LOCK_XMAX_BITS) ==
			 (locks[i].infomask & ARMDB_LOCK_XMAX_BITS) &&
			 (v.infomask2 & HEAP_KEYS_UPDATED) == (locks[i].infomask2 & HEAP_KEYS_UPDATED)) ||
			!xmax_names_us(v.xmax, v.infomask))
			continue;
		locks[n] = locks[i];
		locks[n].xmax = v.xmax;
		locks[n].infomask = v.infomask;
		locks[n].infomask2 = v.infomask2;
		n++;
	}
	return n;
}

/*
 * Write the lock entries of a transaction being prepared: for every
 * version of the tables it locked rows of whose xmax names it (an xmax
 * that is only its update needs none: its end entry says as much).  The
 * records are copied a page at a time, and the MultiXacts looked into
 * without the page's lock.
 *
 * The newest entry of a version decides at a load (winner.h), so an entry
 * must not carry an xmax older than an entry written before it: another
 * transaction may update or lock a version between the copy of its page
 * and the append (and prepare, writing its own entries, in between).  So
 * the records are read again once the entries are written, and a version
 * whose xmax changed gets another entry, until none did.  A change after
 * the last reading comes with an entry newer than ours, written by its
 * maker if it prepares (a committed one needs none; an aborted one counts
 * for nothing).
 */
static void
write_row_locks(void)
{
	const ArmdbStoreSettings *settings = armdb_store_settings();
	FullTransactionId fxid = GetTopFullTransactionId();

	for (int t = 0; t < nlocked_tables; t++)
	{
		RelFileNodeBackend rnode;
		ArmdbRelKeydir *kd;
		ArmdbRowLock *locks = NULL;
		int			nlocks = 0;
		int			maxlocks = 0;
		uint64		npages;

		rnode.node = locked_tables[t].node;
		rnode.backend = InvalidBackendId;
		kd = armdb_keydir_get(rnode, InvalidOid, settings);
		npages = pg_atomic_read_u64(&kd->npages);
		for (uint64 p = 0; p < npages; p++)
		{
			ArmdbPage  *page = armdb_keydir_page(kd, p);
			ArmdbVersion copy[ARMDB_SLOTS_PER_PAGE];

			if (page == NULL)
				continue;
			LWLockAcquire(&page->lock, LW_SHARED);
			memcpy(copy, page->v, sizeof(copy));
			LWLockRelease(&page->lock);
			for (int i = 0; i < ARMDB_SLOTS_PER_PAGE; i++)
			{
				ArmdbVersion *v = &copy[i];

				if (v->file_id == 0 || !xmax_names_us(v->xmax, v->infomask))
					continue;
				if (nlocks == maxlocks)
				{
					maxlocks = Max(64, maxlocks * 2);
					locks = locks == NULL ?
						palloc_extended(sizeof(ArmdbRowLock) * maxlocks,
										MCXT_ALLOC_HUGE) :
						repalloc_huge(locks, sizeof(ArmdbRowLock) * maxlocks);
				}
				locks[nlocks].slot = p * ARMDB_SLOTS_PER_PAGE + i;
				locks[nlocks].fxid = fxid;
				locks[nlocks].xmax = v->xmax;
				locks[nlocks].infomask = v->infomask;
				locks[nlocks].infomask2 = v->infomask2;
				nlocks++;
			}
			CHECK_FOR_INTERRUPTS();
		}
		while (nlocks > 0)
		{
			armdb_vstore_append_locks(kd, armdb_my_shard(kd), locks, nlocks,
									  locked_tables[t].wal, settings);
			CHECK_FOR_INTERRUPTS();
			nlocks = changed_locks(kd, locks, nlocks);
		}
		if (locks != NULL)
			pfree(locks);
	}
}

/* TopTransactionContext goes with the transaction */
static void
forget_locked_tables(void)
{
	locked_tables = NULL;
	nlocked_tables = maxlocked_tables = 0;
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
			 * with the rows it deleted or replaced marked as such, and the
			 * rows it locked locked (its lock entries, written here).
			 * Storage it created or dropped is kept until COMMIT or
			 * ROLLBACK PREPARED unlinks the main fork of what goes, after
			 * which armdb_utility.c removes the rest.
			 */
			write_row_locks();
			armdb_vstore_flush_writes(armdb_store_settings());
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			armdb_vstore_write_out_writes(armdb_store_settings());
			forget_locked_tables();
			remove_pending_deletes(true);
			remove_dropped_temp_storage();
			armdb_keydir_close_dropped_files();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			armdb_vacuum_at_abort();
			armdb_vstore_forget_writes();
			forget_locked_tables();
			remove_pending_deletes(false);
			remove_dropped_temp_storage();
			armdb_keydir_close_dropped_files();
			break;
		case XACT_EVENT_PREPARE:
			armdb_vstore_write_out_writes(armdb_store_settings());
			forget_locked_tables();
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
