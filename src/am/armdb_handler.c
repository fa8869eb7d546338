/*-------------------------------------------------------------------------
 *
 * armdb_handler.c
 *	  The armdb table access method handler.
 *
 * The storage layer is in place; the table access method on top of it
 * (scans, modifications, visibility, indexes, vacuum) is not.  Rather than
 * hand PostgreSQL a routine with half-working callbacks, the handler refuses
 * every use with a clear error: PostgreSQL calls it when a relation using
 * the access method is created or opened, so CREATE TABLE ... USING armdb
 * and ALTER TABLE ... SET ACCESS METHOD armdb fail cleanly, before any
 * catalog entry or file exists.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tableam.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(armdb_tableam_handler);

Datum
armdb_tableam_handler(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("armdb tables are not supported yet"),
			 errdetail("This version of armdb provides its storage layer only; the armdb table access method is not implemented."),
			 errhint("Create the table with the default access method (heap) for now.")));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
