/*-------------------------------------------------------------------------
 *
 * armdb_crypt.c
 *	  Encryption at rest, the server's side: the key command, the settings,
 *	  and the SQL functions that say what is encrypted (storage/cipher.h
 *	  does the cryptography).
 *
 * armdb.encryption_key_command runs once, in the postmaster, when armdb is
 * loaded (shared_preload_libraries): every server process inherits the
 * keys, none asks again, and no key ever passes through SQL, a GUC value or
 * the server log.  The command prints one key a line (64 hexadecimal
 * digits): the first encrypts the files written from now on, the others
 * are older keys that files may still need.  A command that fails leaves
 * the server without keys, which it says in the log; an encrypted table is
 * then refused at first use with an ERROR naming the setting, and creating
 * a table is refused too rather than silently unencrypted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/wait.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "am/armdb_am.h"
#include "armdb_crypt.h"
#include "vstore/decrypted.h"
#include "keydir/keydir.h"
#include "keydir/relstorage.h"
#include "storage/cipher.h"
#include "vstore/vstore.h"

char	   *armdb_encryption_key_command = NULL;
bool		armdb_encrypt_tables = true;

/* why the server has no key although a command is set; "" if it has */
static char key_failure[256] = "";

#define MAX_KEY_OUTPUT	65536

PG_FUNCTION_INFO_V1(armdb_relation_encryption_sql);
PG_FUNCTION_INFO_V1(armdb_encryption_keys_sql);
PG_FUNCTION_INFO_V1(armdb_decrypted_cache_sql);

void
armdb_crypt_define_gucs(void)
{
	DefineCustomStringVariable("armdb.encryption_key_command",
							   "Command that prints the encryption keys of armdb tables.",
							   "Run once at server start. One key a line, 64 hexadecimal digits "
							   "(256 bits): the first encrypts new data, the others stay readable. "
							   "Empty: tables are not encrypted.",
							   &armdb_encryption_key_command,
							   "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("armdb.encrypt_new_tables",
							 "Encrypts armdb tables created from now on, when a key is configured.",
							 "A table keeps what it was created with; rewrites "
							 "(VACUUM FULL, CLUSTER, ALTER TABLE) create it anew.",
							 &armdb_encrypt_tables,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("armdb.decrypted_cache_size",
							"Shared memory keeping decrypted chunks of encrypted tables' data files for sequential scans.",
							"Taken at server start, only when armdb.encryption_key_command "
							"gives keys; 0 turns the cache off.",
							&armdb_decrypted_cache_kb,
							128 * 1024, 0, INT_MAX / 2,
							PGC_POSTMASTER, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* Run the key command and keep its keys (postmaster, at load). */
void
armdb_crypt_load_keys(void)
{
	FILE	   *fp;
	char	   *out;
	size_t		len = 0;
	int			status;
	ArmdbError	err;

	memset(&armdb_keyring, 0, sizeof(armdb_keyring));
	if (armdb_encryption_key_command == NULL ||
		armdb_encryption_key_command[0] == '\0')
		return;

	out = palloc0(MAX_KEY_OUTPUT + 1);
	fflush(NULL);
	fp = popen(armdb_encryption_key_command, "r");
	if (fp == NULL)
	{
		snprintf(key_failure, sizeof(key_failure),
				 "armdb.encryption_key_command could not be started: %m");
		goto done;
	}
	while (len < MAX_KEY_OUTPUT)
	{
		size_t		n = fread(out + len, 1, MAX_KEY_OUTPUT - len, fp);

		if (n == 0)
			break;
		len += n;
	}
	status = pclose(fp);
	if (status != 0)
	{
		snprintf(key_failure, sizeof(key_failure),
				 "armdb.encryption_key_command failed: %s",
				 wait_result_to_str(status));
		goto done;
	}
	if (len == MAX_KEY_OUTPUT)
	{
		snprintf(key_failure, sizeof(key_failure),
				 "armdb.encryption_key_command printed more than %d bytes",
				 MAX_KEY_OUTPUT);
		goto done;
	}
	out[len] = '\0';
	if (!armdb_cipher_parse_keys(out, &armdb_keyring, &err))
	{
		memset(&armdb_keyring, 0, sizeof(armdb_keyring));
		snprintf(key_failure, sizeof(key_failure), "armdb: %s", err.message);
	}
done:
	explicit_bzero(out, MAX_KEY_OUTPUT + 1);
	pfree(out);
	if (key_failure[0] != '\0')
		ereport(WARNING,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s", key_failure),
				 errdetail("The server has no encryption key: encrypted armdb tables cannot be read or written, and no armdb table can be created while the command is set.")));
	else
		ereport(LOG,
				(errmsg("armdb: %d encryption key%s loaded, key %08x encrypts new data",
						armdb_keyring.nkeys, armdb_keyring.nkeys == 1 ? "" : "s",
						armdb_keyring.keys[0].id)));
}

bool
armdb_encrypt_new_tables(void)
{
	if (armdb_encryption_key_command == NULL ||
		armdb_encryption_key_command[0] == '\0' || !armdb_encrypt_tables)
		return false;
	if (armdb_keyring.nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("armdb: cannot create an encrypted table: the server has no encryption key"),
				 errdetail("%s", key_failure[0] != '\0' ? key_failure :
						   "armdb.encryption_key_command printed no key."),
				 errhint("Fix armdb.encryption_key_command and restart the server, or set armdb.encrypt_new_tables to off to create the table unencrypted.")));
	return true;
}

static text *
key_id_text(uint32 id)
{
	char		buf[16];

	snprintf(buf, sizeof(buf), "%08x", id);
	return cstring_to_text(buf);
}

/*
 * armdb_relation_encryption(regclass): whether the table is encrypted, and
 * the ids of the keys its data files are encrypted under -- a key can be
 * retired once no table lists it (and no backup or WAL archive still kept
 * needs it).
 */
Datum
armdb_relation_encryption_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = relation_open(PG_GETARG_OID(0), AccessShareLock);
	RelFileNodeBackend rnode;
	bool		encrypted;
	uint32		nshards;
	uint32		ids[64];
	int			nids = 0;
	Datum	   *elems;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {0};

	if (!armdb_is_armdb_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an armdb table",
						RelationGetRelationName(rel))));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rnode = armdb_rel_rnode(rel);
	nshards = armdb_rel_storage_read_meta(rnode, NULL, &encrypted, NULL);
	for (uint32 shard = 0; shard < nshards; shard++)
	{
		char		dir[MAXPGPATH];
		uint32		shard_ids[lengthof(ids)];
		uint32		file_ids[lengthof(ids)];
		int			n;

		armdb_shard_dir_path(dir, rnode, shard);
		n = armdb_vstore_dir_key_ids(dir, shard_ids, file_ids, lengthof(ids));
		for (int k = 0; k < n; k++)
		{
			bool		known = false;

			for (int m = 0; m < nids; m++)
				known = known || ids[m] == shard_ids[k];
			if (!known && nids < lengthof(ids))
				ids[nids++] = shard_ids[k];
		}
	}
	relation_close(rel, AccessShareLock);

	elems = palloc(sizeof(Datum) * Max(nids, 1));
	for (int k = 0; k < nids; k++)
		elems[k] = PointerGetDatum(key_id_text(ids[k]));
	values[0] = BoolGetDatum(encrypted);
	values[1] = PointerGetDatum(construct_array(elems, nids, TEXTOID, -1,
												false, TYPALIGN_INT));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

/* armdb_decrypted_cache(): the decrypted cache's size and counters */
Datum
armdb_decrypted_cache_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {0};
	uint64		hits;
	uint64		misses;
	uint64		stored;
	int			slots;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	armdb_decrypted_counters(&hits, &misses, &stored, &slots);
	values[0] = Int64GetDatum((int64) slots * ARMDB_DECRYPTED_SLOT_SIZE);
	values[1] = Int64GetDatum((int64) hits);
	values[2] = Int64GetDatum((int64) misses);
	values[3] = Int64GetDatum((int64) stored);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* armdb_encryption_keys(): the ids of the keys the server holds */
Datum
armdb_encryption_keys_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < armdb_keyring.nkeys; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {0};

		values[0] = PointerGetDatum(key_id_text(armdb_keyring.keys[i].id));
		values[1] = BoolGetDatum(i == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
