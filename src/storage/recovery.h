/*-------------------------------------------------------------------------
 *
 * recovery.h
 *	  Reading a shard back: CRC-checked data file scans and the start-up
 *	  recovery of a whole shard directory (hint files, which it reads where
 *	  they are valid, are in hint.h).
 *
 * Recovery of a shard (armdb_recover_shard):
 *	 1. finish the merges that committed (merge.h: their manifests);
 *	 2. remove .tmp files (unfinished hint or merge outputs; never the only
 *		copy of anything);
 *	 3. for every data file, oldest first: if its hint file is valid, report
 *		the hint's records; otherwise scan the data file with CRC checks (and
 *		count the bad hint);
 *	 4. the newest data file that is not a merge output is the active one:
 *		it is scanned, and a torn tail is truncated (and reported) so that
 *		appends continue after the last good entry.
 *
 * What counts as a torn tail (design §5a): only what the last, unfinished
 * write could have damaged.  That is bad bytes at the end of the active
 * file, with no valid entry anywhere after them, and only after a crash
 * (ARMDB_RECOVER_AFTER_CRASH): a cleanly shut down server left no write
 * unfinished.  Anything else -- a bad entry followed by good ones, a bad
 * entry after a clean shutdown, a bad entry inside an older, immutable file
 * (fsynced before its successor was created) -- is corruption: reported as
 * ARMDB_ERR_CORRUPT with the file and offset, and nothing is changed.
 *
 * Salvaging (ARMDB_RECOVER_SALVAGE, the user's explicit choice) skips
 * damaged ranges instead: every entry that still has a good CRC is kept and
 * the skipped ranges are reported.  A damaged tail with nothing valid after
 * it is copied aside to NNNNNN.damaged.<offset> before it is cut, so even
 * salvaging destroys nothing; immutable files that needed skipping get a
 * hint file listing their good entries, so later starts need not salvage
 * them again.
 *
 * What the entries mean (commit status, newest version per slot) is the
 * caller's business: the storage layer only reports them, in file order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_RECOVERY_H
#define ARMDB_STORAGE_RECOVERY_H

#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/io.h"

/* Why a scan of a data file stopped. */
typedef enum ArmdbScanEnd
{
	ARMDB_SCAN_END_CLEAN,		/* end of file, or zero padding to the end */
	ARMDB_SCAN_END_TORN,		/* a bad or incomplete entry, followed by
								 * non-zero bytes */
} ArmdbScanEnd;

typedef struct ArmdbScanResult
{
	ArmdbScanEnd end;
	uint64		valid_end;		/* offset after the last good entry */
	uint64		file_size;
	uint64		entries;
	uint64		max_gsn;		/* without flags; 0 if no entries */
	bool		header_missing; /* file empty, or only a zero or torn
								 * header: a creation cut short */
	/* with skip_damage only: damaged ranges skipped on the way */
	uint32		skipped;		/* how many */
	uint64		skipped_bytes;	/* their total length */
	uint64		first_skipped;	/* offset of the first */
} ArmdbScanResult;

/*
 * Scan a data file from its first entry, calling cb (may be NULL) for every
 * good entry, until the end or the first bad entry.  Reads in large aligned
 * chunks through io.  A bad file header (not just a missing one) is
 * ARMDB_ERR_CORRUPT.  With skip_damage, a bad entry followed by a valid one
 * is skipped (counted in result->skipped*) and the scan goes on from the
 * valid one; only a bad tail then ends it as ARMDB_SCAN_END_TORN.
 *
 * With auth, an encrypted file's sealed entries are each opened before cb
 * sees them, and in an authenticated file (format.h) every entry must be
 * sealed: one that is not, or fails its tag, is ARMDB_ERR_CORRUPT naming
 * its offset (never a torn write, which fails its CRC first; not skipped
 * either).  A file that is not encrypted in an encrypted table
 * (auth->encrypted) is ARMDB_ERR_CORRUPT, one under a key auth's ring
 * lacks ARMDB_ERR_KEY.
 */
extern bool armdb_scan_data_file(ArmdbIo *io, int fd, uint32 file_id,
								 bool skip_damage,
								 const ArmdbFileAuth *auth,
								 ArmdbEntryCallback cb,
								 void *arg, ArmdbScanResult *result,
								 ArmdbError *err);

/*
 * The offset of the first valid (CRC-checked) entry that starts after
 * offset from, or 0 if there is none before size.  Tells a torn tail (no
 * valid entry after the bad bytes) from damage in the middle of a file.
 */
extern bool armdb_find_next_entry(ArmdbIo *io, int fd, uint64 from,
								  uint64 size, uint64 *next, ArmdbError *err);

/*
 * The scan on an in-memory image holding the bytes of a data file from
 * base_offset on (fuzz targets use it directly; the file scan runs it on
 * each chunk).  Reports good entries to cb and accumulates entries, max_gsn
 * and valid_end in *acc, until the first entry that does not parse as OK;
 * *stop says why it stopped (SHORT: the image ends inside an entry).
 * Returns false only when cb fails (its error in err).
 */
extern bool armdb_scan_buffer(const char *buf, size_t len, uint32 file_id,
							  uint64 base_offset, ArmdbEntryCallback cb,
							  void *arg, ArmdbScanResult *acc,
							  ArmdbParseResult *stop, ArmdbError *err);

typedef struct ArmdbRecoveryReport
{
	uint32		data_files;
	uint32		hinted_files;	/* read from a valid hint */
	uint32		scanned_files;	/* read by scanning the data file */
	uint32		bad_hints;		/* hint present but invalid */
	uint32		removed_tmp;
	uint64		entries;
	uint64		max_gsn;
	uint32		finished_merges;	/* committed merges completed (merge.h) */
	uint32		max_file_id;	/* highest file number in use */
	uint32		last_file_id;	/* the active file; 0: the shard has none */
	uint64		end_offset;		/* where appends continue; 0 if the last
								 * file has no header yet */
	bool		torn_tail;		/* garbage after the last good entry */
	uint64		truncated_bytes;	/* bytes cut from the active file */
	char		first_bad_hint[MAXPGPATH];	/* for the log, if any */
	/* ARMDB_RECOVER_SALVAGE only */
	uint32		salvaged_files; /* files with damage skipped or cut */
	uint64		salvaged_bytes; /* damaged bytes skipped or cut */
	bool		active_salvaged;	/* the active file among them: the
									 * caller should seal it and give it a
									 * hint (armdb_hint_build with
									 * skip_damage) */
	char		first_salvaged[MAXPGPATH];	/* file, for the log */
	uint64		first_salvaged_offset;
} ArmdbRecoveryReport;

/* flags of armdb_recover_shard */
#define ARMDB_RECOVER_MISSING_OK	0x01	/* no directory: an empty shard */
#define ARMDB_RECOVER_AFTER_CRASH	0x02	/* the server did not shut down
											 * cleanly: the active file may
											 * end in a torn write */
#define ARMDB_RECOVER_SALVAGE		0x04	/* skip damage (see above) */
#define ARMDB_RECOVER_NO_CUT		0x08	/* a hot standby's reader: a torn
											 * tail of the active file ends
											 * it but stays, and .tmp files
											 * stay (replay rewrites or
											 * removes them) */

/*
 * Recover one shard directory (see the file comment).  cb sees every entry
 * of every file in order, authenticated with auth (an encrypted table's:
 * armdb_scan_data_file, armdb_hint_load).  A missing directory is an empty shard only with
 * ARMDB_RECOVER_MISSING_OK; otherwise ARMDB_ERR_IO/ENOENT.
 */
extern bool armdb_recover_shard(ArmdbIo *io, const char *dir, bool direct_io,
								uint32 flags, const ArmdbFileAuth *auth,
								ArmdbEntryCallback cb,
								void *arg, ArmdbRecoveryReport *report,
								ArmdbError *err);

#endif							/* ARMDB_STORAGE_RECOVERY_H */
