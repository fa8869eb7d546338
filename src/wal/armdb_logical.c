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

#include "wal/armdb_wal.h"

/*
 * The largest record this writes: a WAL reader must allocate a record
 * whole (MaxAllocSize), and a decoder holds its tuples beside it.
 */
#define LOGICAL_RECORD_MAX	(MaxAllocSize / 2)

/* Register tuple tup as heap's records carry one; its length in *len. */
static void
register_tuple(HeapTuple tup, xl_heap_header *xlhdr, uint32 *len)
{
	*len = 0;
	if (tup == NULL)
		return;
	xlhdr->t_infomask2 = tup->t_data->t_infomask2;
	xlhdr->t_infomask = tup->t_data->t_infomask;
	xlhdr->t_hoff = tup->t_data->t_hoff;
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

	Assert(RelationIsLogicallyLogged(rel));
	if ((newtup ? (uint64) newtup->t_len : 0) + (oldtup ? (uint64) oldtup->t_len : 0) >
		LOGICAL_RECORD_MAX - sizeof(xlrec) - 2 * SizeOfHeapHeader)
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
		XLogRecGetDataLen(r) != sizeof(*xlrec) + (uint64) xlrec->new_len + xlrec->old_len ||
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
	if (xlrec->new_len != 0)
		change->data.tp.newtuple = decode_tuple(ctx->reorder, data,
												xlrec->new_len);
	if (xlrec->old_len != 0)
		change->data.tp.oldtuple = decode_tuple(ctx->reorder,
												data + xlrec->new_len,
												xlrec->old_len);
	change->data.tp.clear_toast_afterwards = true;
	ReorderBufferQueueChange(ctx->reorder, xid, buf->origptr, change, false);
}
