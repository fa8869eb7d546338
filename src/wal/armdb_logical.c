/*-------------------------------------------------------------------------
 *
 * armdb_logical.c
 *	  Logical decoding of armdb tables: the XLOG_ARMDB_LOGICAL record a
 *	  row change of a logically logged relation writes, and the rmgr's
 *	  rm_decode, which turns it into a change for the reorder buffer.
 *
 * An armdb change is replayed from its entries (XLOG_ARMDB_APPEND), which
 * hold neither the relation's tablespace, nor the old key an UPDATE or a
 * DELETE needs downstream (a tombstone names a slot), nor the change's
 * kind.  So with wal_level = logical every row change of a relation that
 * RelationIsLogicallyLogged() also writes one XLOG_ARMDB_LOGICAL record,
 * laid out for decoding: the relation's RelFileNode, the change's kind,
 * and its tuples in the form heap's records give them (xl_heap_header,
 * then the bytes past the tuple's fixed header), with the record's origin.
 * Redo ignores it.  Decoding then follows heap_decode() and its
 * DecodeInsert/Update/Delete/SpecConfirm (replication/logical/decode.c):
 * the same guards (snapshot state, fast-forward, database, origin) and the
 * same ReorderBufferChange, so output plugins (pgoutput, test_decoding,
 * wal2json) see an armdb table's changes as they see a heap table's.
 *
 * The old tuple is what heap's ExtractReplicaIdentity() logs: nothing for
 * REPLICA IDENTITY NOTHING; the whole old row for FULL; otherwise the
 * identity key's columns (the others null) -- for a DELETE always, for an
 * UPDATE when it changes one of them.  Values are stored inline (never
 * TOASTed out of line), so no tuple carries an external pointer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam_xlog.h"
#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/catalog.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/reorderbuffer.h"
#include "replication/snapbuild.h"
#include "utils/memutils.h"

#include "am/armdb_am.h"
#include "storage/cipher.h"
#include "wal/armdb_wal.h"

/*
 * The largest record this writes: a WAL reader must allocate a record
 * whole (MaxAllocSize), and a decoder holds its tuples beside it.
 */
#define LOGICAL_RECORD_MAX	(MaxAllocSize / 2)

/*
 * This backend's key for the tuples of encrypted tables' records, made at
 * its first such record (cipher.h): a random salt makes it a key no other
 * backend, server life or clone of this server has.
 */
static struct
{
	bool		valid;
	xl_armdb_logical_key id;	/* key_id, salt, and the next counter */
	uint8		key[ARMDB_CIPHER_KEY_LEN];
}			log_key;

static void
prepare_log_key(void)
{
	ArmdbError	err;

	if (log_key.valid && log_key.id.key_id == armdb_keyring.keys[0].id &&
		log_key.id.counter < UINT64CONST(0x00FF000000000000))
		return;
	if (armdb_keyring.nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("armdb: cannot log a change of an encrypted table for logical decoding: the server has no encryption key"),
				 errhint("Set armdb.encryption_key_command and restart the server.")));
	memset(&log_key.id, 0, sizeof(log_key.id));
	log_key.id.key_id = armdb_keyring.keys[0].id;
	if (!armdb_cipher_random_salt(log_key.id.salt, &err) ||
		!armdb_cipher_file_key(&armdb_keyring, log_key.id.key_id,
							   log_key.id.salt, 0, 0, NULL, false, log_key.key,
							   &err))
		armdb_report_storage_error(ERROR, &err);
	log_key.valid = true;
}

/* The xl_heap_header heap's records carry for tuple tup. */
static void
tuple_header(HeapTuple tup, xl_heap_header *xlhdr)
{
	xlhdr->t_infomask2 = tup->t_data->t_infomask2;
	xlhdr->t_infomask = tup->t_data->t_infomask;
	xlhdr->t_hoff = tup->t_data->t_hoff;
}

/*
 * Tuple tup as heap's records carry one, encrypted with purpose and counter
 * under this backend's key, into a palloc'd buffer; len, its length, is in
 * aad, the record's header, already.
 */
static char *
sealed_tuple(HeapTuple tup, uint64 counter, uint8 purpose,
			 const xl_armdb_logical *aad, uint32 len)
{
	xl_heap_header xlhdr;
	uint32		plain_len;
	char	   *buf;
	ArmdbError	err;

	if (tup == NULL)
		return NULL;
	plain_len = SizeOfHeapHeader + tup->t_len - SizeofHeapTupleHeader;
	/* the header's lengths are set already: they are authenticated */
	Assert(len == plain_len + ARMDB_CIPHER_TAG_LEN);
	buf = palloc(plain_len + ARMDB_CIPHER_TAG_LEN);
	tuple_header(tup, &xlhdr);
	memcpy(buf, &xlhdr, SizeOfHeapHeader);
	memcpy(buf + SizeOfHeapHeader, (char *) tup->t_data + SizeofHeapTupleHeader,
		   tup->t_len - SizeofHeapTupleHeader);
	if (!armdb_cipher_seal(log_key.key, counter, purpose,
						   aad, offsetof(xl_armdb_logical, encrypted),
						   buf, plain_len, buf, &err))
		armdb_report_storage_error(ERROR, &err);
	return buf;
}

/* Register tuple tup as heap's records carry one; its length in *len. */
static void
register_tuple(HeapTuple tup, xl_heap_header *xlhdr, uint32 *len)
{
	*len = 0;
	if (tup == NULL)
		return;
	tuple_header(tup, xlhdr);
	XLogRegisterData((char *) xlhdr, SizeOfHeapHeader);
	if (tup->t_len > SizeofHeapTupleHeader)
		XLogRegisterData((char *) tup->t_data + SizeofHeapTupleHeader,
						 tup->t_len - SizeofHeapTupleHeader);
	*len = SizeOfHeapHeader + tup->t_len - SizeofHeapTupleHeader;
}

/*
 * Log a row change of rel (logically logged) for decoding: action is an
 * ARMDB_LOGICAL_* kind, newtup the tuple stored (INSERT, UPDATE,
 * SPEC_INSERT), oldtup the old key or row (UPDATE, DELETE), NULL if none.
 * Called after the change's entries were appended, in its transaction.
 */
void
armdb_wal_log_logical(Relation rel, uint8 action, HeapTuple newtup,
					  HeapTuple oldtup)
{
	xl_armdb_logical xlrec;
	xl_heap_header newhdr;
	xl_heap_header oldhdr;
	xl_armdb_logical_key key;
	bool		encrypted = armdb_rel_keydir(rel)->encrypted;

	Assert(RelationIsLogicallyLogged(rel));
	if ((newtup ? (uint64) newtup->t_len : 0) + (oldtup ? (uint64) oldtup->t_len : 0) >
		LOGICAL_RECORD_MAX - sizeof(xlrec) - 2 * SizeOfHeapHeader -
		sizeof(key) - 2 * ARMDB_CIPHER_TAG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row of relation \"%s\" is too large to be logged for logical decoding",
						RelationGetRelationName(rel)),
				 errdetail("The new row and the old one take %llu bytes together; at most %llu fit in one record.",
						   (unsigned long long) ((newtup ? newtup->t_len : 0) +
												 (oldtup ? oldtup->t_len : 0)),
						   (unsigned long long) (LOGICAL_RECORD_MAX - sizeof(xlrec) -
												 2 * SizeOfHeapHeader)),
				 errhint("With wal_level = logical, keep armdb rows under 512 MB, or use REPLICA IDENTITY DEFAULT rather than FULL for tables with large rows.")));
	memset(&xlrec, 0, sizeof(xlrec));
	xlrec.rnode = rel->rd_node;
	xlrec.action = action;

	if (encrypted)
	{
		char	   *newbuf;
		char	   *oldbuf;

		/* a counter is used up even if the record never gets in */
		prepare_log_key();
		key = log_key.id;
		log_key.id.counter++;
		xlrec.encrypted = true;
		/* the lengths are in the authenticated header: known first */
		xlrec.new_len = newtup ? SizeOfHeapHeader + newtup->t_len -
			SizeofHeapTupleHeader + ARMDB_CIPHER_TAG_LEN : 0;
		xlrec.old_len = oldtup ? SizeOfHeapHeader + oldtup->t_len -
			SizeofHeapTupleHeader + ARMDB_CIPHER_TAG_LEN : 0;
		newbuf = sealed_tuple(newtup, key.counter, ARMDB_CIPHER_LOGICAL_NEW,
							  &xlrec, xlrec.new_len);
		oldbuf = sealed_tuple(oldtup, key.counter, ARMDB_CIPHER_LOGICAL_OLD,
							  &xlrec, xlrec.old_len);
		XLogBeginInsert();
		XLogSetRecordFlags(XLOG_INCLUDE_ORIGIN);
		XLogRegisterData((char *) &xlrec, sizeof(xlrec));
		XLogRegisterData((char *) &key, sizeof(key));
		if (newbuf)
			XLogRegisterData(newbuf, xlrec.new_len);
		if (oldbuf)
			XLogRegisterData(oldbuf, xlrec.old_len);
		(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_LOGICAL);
		if (newbuf)
			pfree(newbuf);
		if (oldbuf)
			pfree(oldbuf);
		return;
	}
	XLogBeginInsert();
	XLogSetRecordFlags(XLOG_INCLUDE_ORIGIN);
	XLogRegisterData((char *) &xlrec, sizeof(xlrec));
	register_tuple(newtup, &newhdr, &xlrec.new_len);
	register_tuple(oldtup, &oldhdr, &xlrec.old_len);
	(void) XLogInsert(ARMDB_RMGR_ID, XLOG_ARMDB_LOGICAL);
}

/* decode.c's DecodeXLogTuple: a logged tuple into a tuple buffer */
static ReorderBufferTupleBuf *
decode_tuple(ReorderBuffer *rb, const char *data, uint32 len)
{
	xl_heap_header xlhdr;
	uint32		datalen = len - SizeOfHeapHeader;
	ReorderBufferTupleBuf *tb;
	HeapTupleHeader header;

	tb = ReorderBufferGetTupleBuf(rb, datalen);
	tb->tuple.t_len = datalen + SizeofHeapTupleHeader;
	ItemPointerSetInvalid(&tb->tuple.t_self);
	tb->tuple.t_tableOid = InvalidOid;
	header = tb->tuple.t_data;
	memcpy(&xlhdr, data, SizeOfHeapHeader);	/* not aligned */
	memset(header, 0, SizeofHeapTupleHeader);
	memcpy((char *) header + SizeofHeapTupleHeader, data + SizeOfHeapHeader,
		   datalen);
	header->t_infomask = xlhdr.t_infomask;
	header->t_infomask2 = xlhdr.t_infomask2;
	header->t_hoff = xlhdr.t_hoff;
	return tb;
}

/*
 * An encrypted tuple of record xlrec (len bytes at data, the tag last),
 * decrypted into a tuple buffer.  The key of the last record decoded is
 * kept: a backend's records share one.
 */
static ReorderBufferTupleBuf *
decode_sealed_tuple(ReorderBuffer *rb, const xl_armdb_logical *xlrec,
					const xl_armdb_logical_key *key, uint8 purpose,
					const char *data, uint32 len, XLogRecPtr lsn)
{
	static uint32 last_id = 0;
	static uint8 last_salt[ARMDB_CIPHER_SALT_LEN];
	static uint8 last_key[ARMDB_CIPHER_KEY_LEN];
	uint32		plain_len = len - ARMDB_CIPHER_TAG_LEN;
	char	   *plain;
	ArmdbError	err;
	ReorderBufferTupleBuf *tb;

	if (last_id != key->key_id ||
		memcmp(last_salt, key->salt, sizeof(last_salt)) != 0)
	{
		last_id = 0;
		if (!armdb_cipher_file_key(&armdb_keyring, key->key_id, key->salt, 0,
								   0, NULL, false, last_key, &err))
			armdb_report_storage_error(ERROR, &err);
		last_id = key->key_id;
		memcpy(last_salt, key->salt, sizeof(last_salt));
	}
	plain = palloc(plain_len);
	if (!armdb_cipher_open(last_key, key->counter, purpose, xlrec,
						   offsetof(xl_armdb_logical, encrypted), data,
						   plain_len, plain, &err))
	{
		if (err.code != ARMDB_OK)
			armdb_report_storage_error(ERROR, &err);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("armdb: logical decoding record at %X/%X failed authentication",
						LSN_FORMAT_ARGS(lsn)),
				 errdetail("Its encrypted row or its header was changed.")));
	}
	tb = decode_tuple(rb, plain, plain_len);
	pfree(plain);
	return tb;
}

/*
 * rm_decode: heap_decode() for armdb's records.  Every record makes its
 * transaction known to the reorder buffer; only XLOG_ARMDB_LOGICAL ones
 * carry changes.
 */
void
armdb_decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf)
{
	XLogReaderState *r = buf->record;
	uint8		info = XLogRecGetInfo(r) & XLOG_ARMDB_OPMASK;
	TransactionId xid = XLogRecGetXid(r);
	SnapBuild  *builder = ctx->snapshot_builder;
	xl_armdb_logical *xlrec;
	const char *data;
	ReorderBufferChange *change;

	ReorderBufferProcessXid(ctx->reorder, xid, buf->origptr);

	/* as heap_decode: no snapshot yet, or fast-forwarding, no changes */
	if (info != XLOG_ARMDB_LOGICAL ||
		SnapBuildCurrentState(builder) < SNAPBUILD_FULL_SNAPSHOT)
		return;
	if (!SnapBuildProcessChange(builder, xid, buf->origptr) ||
		ctx->fast_forward)
		return;

	xlrec = (xl_armdb_logical *) XLogRecGetData(r);
	if (XLogRecGetDataLen(r) < sizeof(*xlrec) ||
		XLogRecGetDataLen(r) != sizeof(*xlrec) + (uint64) xlrec->new_len + xlrec->old_len +
		(xlrec->encrypted ? sizeof(xl_armdb_logical_key) : 0) ||
		(xlrec->encrypted &&
		 ((xlrec->new_len != 0 && xlrec->new_len < SizeOfHeapHeader + ARMDB_CIPHER_TAG_LEN) ||
		  (xlrec->old_len != 0 && xlrec->old_len < SizeOfHeapHeader + ARMDB_CIPHER_TAG_LEN))) ||
		(xlrec->new_len != 0 && xlrec->new_len < SizeOfHeapHeader) ||
		(xlrec->old_len != 0 && xlrec->old_len < SizeOfHeapHeader) ||
		((xlrec->action == ARMDB_LOGICAL_INSERT ||
		  xlrec->action == ARMDB_LOGICAL_UPDATE ||
		  xlrec->action == ARMDB_LOGICAL_SPEC_INSERT) && xlrec->new_len == 0))
		elog(ERROR, "armdb: logical decoding record at %X/%X is damaged",
			 LSN_FORMAT_ARGS(buf->origptr));

	/* only our database's, and only origins the output plugin wants */
	if (xlrec->rnode.dbNode != ctx->slot->data.database)
		return;
	if (ctx->callbacks.filter_by_origin_cb != NULL &&
		filter_by_origin_cb_wrapper(ctx, XLogRecGetOrigin(r)))
		return;

	change = ReorderBufferGetChange(ctx->reorder);
	switch (xlrec->action)
	{
		case ARMDB_LOGICAL_INSERT:
			change->action = REORDER_BUFFER_CHANGE_INSERT;
			break;
		case ARMDB_LOGICAL_UPDATE:
			change->action = REORDER_BUFFER_CHANGE_UPDATE;
			break;
		case ARMDB_LOGICAL_DELETE:
			change->action = REORDER_BUFFER_CHANGE_DELETE;
			break;
		case ARMDB_LOGICAL_SPEC_INSERT:
			change->action = REORDER_BUFFER_CHANGE_INTERNAL_SPEC_INSERT;
			break;
		case ARMDB_LOGICAL_SPEC_CONFIRM:
			change->action = REORDER_BUFFER_CHANGE_INTERNAL_SPEC_CONFIRM;
			break;
		case ARMDB_LOGICAL_SPEC_ABORT:
			change->action = REORDER_BUFFER_CHANGE_INTERNAL_SPEC_ABORT;
			break;
		default:
			elog(ERROR, "armdb: logical decoding record at %X/%X has unknown action %u",
				 LSN_FORMAT_ARGS(buf->origptr), xlrec->action);
	}
	change->origin_id = XLogRecGetOrigin(r);
	change->data.tp.relnode = xlrec->rnode;
	data = (const char *) (xlrec + 1);
	if (xlrec->encrypted)
	{
		xl_armdb_logical_key key;

		memcpy(&key, data, sizeof(key));
		data += sizeof(key);
		if (xlrec->new_len != 0)
			change->data.tp.newtuple =
				decode_sealed_tuple(ctx->reorder, xlrec, &key,
									ARMDB_CIPHER_LOGICAL_NEW, data,
									xlrec->new_len, buf->origptr);
		if (xlrec->old_len != 0)
			change->data.tp.oldtuple =
				decode_sealed_tuple(ctx->reorder, xlrec, &key,
									ARMDB_CIPHER_LOGICAL_OLD,
									data + xlrec->new_len, xlrec->old_len,
									buf->origptr);
	}
	else
	{
		if (xlrec->new_len != 0)
			change->data.tp.newtuple = decode_tuple(ctx->reorder, data,
													xlrec->new_len);
		if (xlrec->old_len != 0)
			change->data.tp.oldtuple = decode_tuple(ctx->reorder,
													data + xlrec->new_len,
													xlrec->old_len);
	}
	change->data.tp.clear_toast_afterwards = true;
	ReorderBufferQueueChange(ctx->reorder, xid, buf->origptr, change, false);
}
