/*-------------------------------------------------------------------------
 *
 * armdb_utility.c
 *	  CREATE DATABASE and DROP DATABASE, which never call the table access
 *	  method (design §8).
 *
 * CREATE DATABASE ... TEMPLATE t copies t's catalogs, relfilenodes
 * included, but none of armdb's files: the template's armdb directory is
 * copied to the new database here, once PostgreSQL has made it (nobody may
 * be connected to a template, so its files are quiescent).  DROP DATABASE
 * removes the database's armdb directory and key directories at once,
 * instead of leaving them to the sweep at the next start.
 *
 * COMMIT PREPARED and ROLLBACK PREPARED drop the main forks of the
 * relations the prepared transaction dropped (or created) without calling
 * armdb: the relfilenodes of the pg_class rows it wrote are noted before,
 * and afterwards their storage goes where no pg_class row uses them any
 * more -- if it is still the same directory (a relfilenode reused since
 * has a new one).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "executor/spi.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

#include "armdb.h"
#include "armdb_sweep.h"
#include "keydir/keydir.h"
#include "keydir/relstorage.h"
#include "wal/armdb_wal.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* storage that goes: in WAL first (flushed), its key directory gone */
static void
before_removal(RelFileNodeBackend rnode)
{
	armdb_wal_log_drop(&rnode.node);
	armdb_keydir_drop(rnode);
}

/* The xid of prepared transaction gid of this database, or invalid. */
static TransactionId
prepared_xid(const char *gid)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	TransactionId xid = InvalidTransactionId;

	values[0] = CStringGetTextDatum(gid);
	SPI_connect();
	if (SPI_execute_with_args("SELECT transaction::text FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()",
							  1, argtypes, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		xid = (TransactionId) strtoul(SPI_getvalue(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1),
									  NULL, 10);
	SPI_finish();
	return xid;
}

/*
 * Storage a prepared transaction's outcome may orphan: the relfilenodes of
 * the pg_class rows it wrote (created or dropped storage), each with the
 * identity of its directory now, before COMMIT or ROLLBACK PREPARED.
 */
typedef struct Candidate
{
	RelFileNodeBackend rnode;
	ArmdbDirIdentity id;
} Candidate;

static Candidate *
prepared_candidates(const char *gid, int *ncand)
{
	TransactionId xid = prepared_xid(gid);
	Oid		   *rels;
	int			nrels;
	Candidate  *cand;

	*ncand = 0;
	if (!TransactionIdIsValid(xid))
		return NULL;
	rels = armdb_sweep_relfilenodes_of_xact(xid, &nrels);
	cand = palloc(sizeof(Candidate) * Max(nrels, 1));
	for (int i = 0; i < nrels; i++)
	{
		Candidate  *c = &cand[*ncand];

		if (i > 0 && rels[i] == rels[i - 1])
			continue;
		c->rnode.node.spcNode = InvalidOid;
		c->rnode.node.dbNode = MyDatabaseId;
		c->rnode.node.relNode = rels[i];
		c->rnode.backend = InvalidBackendId;
		if (armdb_rel_storage_identity(c->rnode, &c->id))
			(*ncand)++;
	}
	pfree(rels);
	return cand;
}

/*
 * After COMMIT or ROLLBACK PREPARED: remove the candidates' storage that no
 * pg_class row uses any more.  PostgreSQL removed their main forks without
 * calling armdb (design §8).  The prepared transaction's outcome is
 * decided: failures are WARNINGs.
 */
static void
remove_orphaned(Candidate *cand, int ncand)
{
	Oid		   *used;
	int			nused;

	used = armdb_sweep_used_relfilenodes(&nused);
	for (int i = 0; i < ncand; i++)
		if (bsearch(&cand[i].rnode.node.relNode, used, nused, sizeof(Oid),
					oid_cmp) == NULL)
			(void) armdb_rel_storage_remove_if_same(cand[i].rnode, &cand[i].id,
													before_removal);
	pfree(used);
}

static void
armdb_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			template_oid = InvalidOid;
	Oid			dropped_oid = InvalidOid;
	Candidate  *candidates = NULL;
	int			ncandidates = 0;

	if (IsA(parsetree, CreatedbStmt))
	{
		CreatedbStmt *stmt = (CreatedbStmt *) parsetree;
		const char *template = "template1";
		ListCell   *lc;

		foreach(lc, stmt->options)
		{
			DefElem    *def = lfirst(lc);

			if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
				template = defGetString(def);
		}
		template_oid = get_database_oid(template, true);
	}
	else if (IsA(parsetree, DropdbStmt))
		dropped_oid = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
	else if (IsA(parsetree, TransactionStmt) &&
			 (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED ||
			  ((TransactionStmt *) parsetree)->kind == TRANS_STMT_ROLLBACK_PREPARED))
		candidates = prepared_candidates(((TransactionStmt *) parsetree)->gid,
										 &ncandidates);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (OidIsValid(template_oid))
	{
		Oid			new_oid = get_database_oid(((CreatedbStmt *) parsetree)->dbname,
											   false);

		armdb_rel_storage_copy_database(template_oid, new_oid);
		armdb_wal_log_copy_database(template_oid, new_oid);
	}
	if (OidIsValid(dropped_oid) && !OidIsValid(get_database_oid(((DropdbStmt *) parsetree)->dbname, true)))
	{
		armdb_keydir_drop_database(dropped_oid);
		armdb_wal_log_drop_database(dropped_oid);
		armdb_rel_storage_remove_database(dropped_oid);
	}
	if (ncandidates > 0)
		remove_orphaned(candidates, ncandidates);
}

void
armdb_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = armdb_ProcessUtility;
}
