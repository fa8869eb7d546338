/*-------------------------------------------------------------------------
 *
 * merge.h
 *	  Merging (compacting) a shard's immutable data files: the storage
 *	  half of compaction (design §5), after the seed's compaction.rs.
 *
 * Which entries survive is not the storage layer's business: the caller
 * says, entry by entry, through a keep callback (the backend asks the
 * keydir whether the slot still points at the entry, and whether a kill can
 * still matter).  The storage layer does the rest, in the seed's order:
 *
 *	 1. armdb_merge_copy(): read every input file front to back, check each
 *		entry's CRC (a mismatch aborts the merge: outputs removed, inputs
 *		untouched, the file and offset in the error), and copy the kept
 *		entries, unchanged (same gsn, xid, slot, CRC) -- or, for a dead
 *		version that still ends its predecessor, just that ending, as a
 *		tombstone -- into output files NNNNNN.tmp that rotate at
 *		max_file_size; each output is fsynced.
 *		Outputs carry ARMDB_FILE_FLAG_MERGED in their file header: they are
 *		immutable, and recovery never mistakes one for the shard's active
 *		file although its number is higher.  The result lists every kept
 *		entry with its old and new location (ArmdbMergeMove): with the
 *		inputs, that list is all a replay needs to redo the merge
 *		byte for byte (the output layout is a pure function of it), which
 *		is what a WAL record of the merge will carry (design §4b, §5).
 *	 2. armdb_merge_commit(): write the merge manifest NNNNNN.merge (inputs
 *		and outputs, CRC-protected) through a temporary name, fsync, rename,
 *		fsync the directory.  This is the commit point: from here on the
 *		inputs are superseded.  Then rename the outputs to NNNNNN.data, write
 *		their hint files (from the moves: no rescan) and fsync the directory.
 *	 3. The caller swaps the keydir's locations from the old to the new
 *		places where they still match (compare-and-set, under the shard
 *		lock, in batches), and waits until no reader can hold an old
 *		location.
 *	 4. armdb_merge_finish(): unlink the inputs (data and hint files),
 *		fsync the directory, remove the manifest.
 *
 * Crash safety.  Before the manifest is durable, recovery removes the .tmp
 * outputs (as any .tmp) and the inputs are as they were.  Once it is,
 * recovery finishes the merge before it reads the shard
 * (armdb_merge_recover(): remaining outputs renamed, inputs unlinked,
 * manifest removed), so a shard is never read with a killer entry gone
 * from one input and its victim left in another.  Entries copied to an
 * output keep their gsn, so when an output and a newer entry of the same
 * slot are both read at recovery, the higher gsn wins, not the later file.
 *
 * A file with no entry to keep produces no output: the merge just commits
 * its removal.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_MERGE_H
#define ARMDB_STORAGE_MERGE_H

#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/io.h"

/* ----------------
 * Choosing the files (pure)
 * ----------------
 */

/* What the caller knows of one of a shard's data files. */
typedef struct ArmdbMergeCandidate
{
	uint32		file_id;
	uint64		total_bytes;	/* the file's length (entries and header) */
	uint64		dead_bytes;		/* bytes of entries nothing needs */
	uint64		min_gsn;		/* its oldest entry's gsn */
	bool		cooldown;		/* written by the previous merge run */
} ArmdbMergeCandidate;

/* the seed's limit: inputs of one run */
#define ARMDB_MERGE_MAX_INPUTS	4

/*
 * Pick the files of one merge run: immutable files (not the active one)
 * whose dead/total ratio exceeds threshold, not produced by the previous
 * run, oldest first, at most max_inputs.  Writes their ids to picked,
 * oldest first, and returns how many.
 *
 * Oldest means oldest data (lowest min_gsn; the file number breaks ties),
 * not lowest file number: a merge output has a new, high number but holds
 * old entries.  Old files go first because they hold the victims of the
 * endings in newer ones: once a victim is gone, a later merge can drop its
 * ending (compact.c).
 */
extern int	armdb_merge_pick(const ArmdbMergeCandidate *files, int nfiles,
							 uint32 active_file_id, double threshold,
							 int max_inputs, uint32 *picked);

/* ----------------
 * The merge
 * ----------------
 */

/* A kept entry: where it was, where it is now. */
typedef struct ArmdbMergeMove
{
	ArmdbEntryInfo entry;		/* header fields and the old location */
	uint32		new_file_id;
	uint32		new_offset;
} ArmdbMergeMove;

/* What becomes of an entry of the inputs. */
typedef enum ArmdbMergeKeep
{
	ARMDB_MERGE_DROP,			/* nothing needs it */
	ARMDB_MERGE_KEEP,			/* copied as it is */

	/*
	 * A dead version that still ends its predecessor (prev_slot): only the
	 * ending is kept, as a tombstone of prev_slot with the version's gsn and
	 * xid.  Its recovery meaning is the same, but a tombstone is never
	 * anybody's victim (a dead version copied whole could come back if a
	 * later merge dropped the ending that ended *it*), and it has no value.
	 */
	ARMDB_MERGE_KEEP_ENDING
} ArmdbMergeKeep;

/*
 * What becomes of this entry?  Called once per entry of the inputs, in
 * file order.  The callback may add ARMDB_GSN_FLAG_FROZEN or _ABORTED to
 * entry->gsn when it knows the fate of the entry's transaction: the
 * outputs' hint files record it, so recovery needs no clog for them
 * (design §4).  Returning false fails the merge (the error in err).
 */
typedef bool (*ArmdbMergeKeepFn) (void *arg, ArmdbEntryInfo *entry,
								  ArmdbMergeKeep *keep, ArmdbError *err);

/*
 * A new file number for the next output, from the shard (the caller takes
 * the shard lock): ids only grow, so an output never reuses a number.
 */
typedef bool (*ArmdbMergeFileIdFn) (void *arg, uint32 *file_id,
									ArmdbError *err);

/*
 * Called after every chunk read, with the bytes read and written so far:
 * the backend sleeps there for its I/O rate limit and returns false (err
 * set) to stop the merge when asked to shut down.  NULL: no limit.
 */
typedef bool (*ArmdbMergeProgressFn) (void *arg, uint64 bytes_read,
									  uint64 bytes_written, ArmdbError *err);

typedef struct ArmdbMerge
{
	/* set by the caller */
	ArmdbIo    *io;
	const char *dir;
	uint32		shard_no;
	uint32		max_file_size;	/* outputs rotate before passing it */
	bool		direct_io;
	ArmdbMergeKeepFn keep;
	ArmdbMergeFileIdFn next_file_id;
	ArmdbMergeProgressFn progress;	/* may be NULL */
	void	   *arg;			/* for the three callbacks */

	/*
	 * Encryption (cipher.h): outputs are encrypted under master key key_id
	 * (0: not) with this salt, each output's key derived from it and its
	 * number; every encrypted value kept is decrypted with its input's key
	 * and encrypted again with its output's.  A merge takes a fresh salt,
	 * and a WAL replay of it the one its record carries, which makes the
	 * same bytes.
	 */
	uint32		key_id;
	uint8		salt[32];
	/*
	 * With key_id: the outputs are authenticated (format.h: every entry
	 * sealed, hints with MACs).  Every merge this build starts; a replay of
	 * an earlier build's merge record repeats that build's outputs.
	 */
	bool		authenticated;
	bool		no_hints;		/* the commit writes no hint files (a replay
								 * without what their MACs need) */
	/* the relation's storage id, part of every file key */
	uint8		storage_id[ARMDB_CIPHER_STORAGE_ID_LEN];

	/* the inputs */
	uint32		inputs[ARMDB_MERGE_MAX_INPUTS];
	int			ninputs;

	/* the result of armdb_merge_copy() */
	uint32	   *outputs;		/* output file ids, ascending */
	uint64	   *output_sizes;	/* bytes of entries + header, unpadded */
	int			noutputs;
	ArmdbMergeMove *moves;
	uint64		nmoves;
	uint32		manifest_id;	/* names the manifest: first output, or a
								 * fresh id when there is no output */

	/* statistics */
	uint64		entries_read;
	uint64		bytes_read;		/* of the inputs */
	uint64		bytes_written;	/* of the outputs, entries only */

	/* private */
	int			out_fd;
	uint64		out_end;		/* next entry offset in the current output */
	uint64		out_buf_start;	/* file offset of the output buffer */
	ArmdbAlignedBuf out_buf;
	int			outputs_cap;
	uint64		moves_cap;
	bool		in_encrypted;	/* the current input is */
	bool		in_authenticated;	/* ... with every entry sealed */
	uint8		in_key[32];		/* ... under this key */
	uint8		out_key[32];	/* the current output's key */
	char	   *resealed;		/* an entry's image encrypted again */
	uint32		resealed_size;
} ArmdbMerge;

/*
 * Step 1: copy the kept entries of m->inputs into new output files, fsynced,
 * still named NNNNNN.tmp.  On failure every output is removed and the
 * inputs are untouched; a bad entry fails with ARMDB_ERR_CORRUPT naming the
 * input file and offset.
 */
extern bool armdb_merge_copy(ArmdbMerge *m, ArmdbError *err);

/* Step 2: the commit point (see the file comment). */
extern bool armdb_merge_commit(ArmdbMerge *m, ArmdbError *err);

/* Step 4: remove the inputs and the manifest. */
extern bool armdb_merge_finish(ArmdbMerge *m, ArmdbError *err);

/*
 * Give up a merge before its commit: remove its outputs (best effort; a
 * leftover .tmp is removed by recovery anyway) and free its memory.
 */
extern void armdb_merge_abort(ArmdbMerge *m);

/* Free the memory of a merge (after finish or abort). */
extern void armdb_merge_free(ArmdbMerge *m);

/*
 * Recovery: finish every committed merge of the shard in dir (step 2's
 * renames, step 4).  Runs before the shard's files are listed; *finished
 * counts the merges it completed.
 */
extern bool armdb_merge_recover(const char *dir, uint32 *finished,
								ArmdbError *err);

/*
 * Is data file file_id of dir a merge output?  (Reads its header.)
 */
extern bool armdb_data_file_is_merged(const char *dir, uint32 file_id,
									  bool *merged, ArmdbError *err);

#endif							/* ARMDB_STORAGE_MERGE_H */
