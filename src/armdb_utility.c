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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "armdb.h"
#include "keydir/keydir.h"
#include "keydir/relstorage.h"
#include "wal/armdb_wal.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void
armdb_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			template_oid = InvalidOid;
	Oid			dropped_oid = InvalidOid;

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
}

void
armdb_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = armdb_ProcessUtility;
}
