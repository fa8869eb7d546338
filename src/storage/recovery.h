/*-------------------------------------------------------------------------
 *
 * recovery.h
 *	  Reading a shard back: CRC-checked data file scans, hint files, and the
 *	  start-up recovery of a whole shard directory.
 *
 * Recovery of a shard (armdb_recover_shard):
 *	 1. remove .tmp files (unfinished hint or merge outputs; never the only
 *		copy of anything);
 *	 2. for every data file, oldest first: if its hint file is valid, report
 *		the hint's records; otherwise scan the data file with CRC checks (and
 *		count the bad hint);
 *	 3. the newest data file is the active one: its entries after the hinted
 *		part are scanned, and a torn or corrupted tail is truncated (and
 *		reported) so that appends continue after the last good entry.
 * A bad entry inside an older, immutable data file is not a torn write (the
 * file was fsynced before the next one was created): it is reported as
 * corruption and nothing is truncated.
 *
 * What the entries mean (commit status, newest version per slot) is the
 * caller's business: the storage layer only reports them, in file order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_RECOVERY_H
#define ARMDB_STORAGE_RECOVERY_H

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
} ArmdbScanResult;

/*
 * Scan a data file from its first entry, calling cb (may be NULL) for every
 * good entry, until the end or the first bad entry.  Reads in large aligned
 * chunks through io.  A bad file header (not just a missing one) is
 * ARMDB_ERR_CORRUPT.
 */
extern bool armdb_scan_data_file(ArmdbIo *io, int fd, uint32 file_id,
								 ArmdbEntryCallback cb, void *arg,
								 ArmdbScanResult *result, ArmdbError *err);

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

/*
 * Write the hint file of data file file_id from its entries: scan the data
 * file (it must be complete: a bad entry is ARMDB_ERR_CORRUPT), write
 * NNNNNN.tmp, fsync it, rename it to NNNNNN.hint and fsync the directory.
 */
extern bool armdb_hint_build(ArmdbIo *io, const char *dir, uint32 file_id,
							 bool direct_io, ArmdbError *err);

/* Same, from entries the caller already has (compaction outputs). */
extern bool armdb_hint_write(const char *dir, uint32 file_id,
							 const ArmdbEntryInfo *entries, uint32 n,
							 uint64 data_end, ArmdbError *err);

/*
 * Read and validate the hint of file_id and call cb for each record.
 * Returns false with ARMDB_ERR_CORRUPT for a bad hint (the caller scans the
 * data file instead) and ARMDB_ERR_IO with ENOENT when there is none.
 */
extern bool armdb_hint_load(ArmdbIo *io, const char *dir, uint32 file_id,
							uint64 data_size, ArmdbEntryCallback cb,
							void *arg, ArmdbError *err);

typedef struct ArmdbRecoveryReport
{
	uint32		data_files;
	uint32		hinted_files;	/* read from a valid hint */
	uint32		scanned_files;	/* read by scanning the data file */
	uint32		bad_hints;		/* hint present but invalid */
	uint32		removed_tmp;
	uint64		entries;
	uint64		max_gsn;
	uint32		last_file_id;	/* 0: the shard has no data file */
	uint64		end_offset;		/* where appends continue; 0 if the last
								 * file has no header yet */
	bool		torn_tail;		/* garbage after the last good entry */
	uint64		truncated_bytes;	/* bytes cut from the active file */
	char		first_bad_hint[MAXPGPATH];	/* for the log, if any */
} ArmdbRecoveryReport;

/*
 * Recover one shard directory (see the file comment).  cb sees every entry
 * of every file in order.  A missing directory is an empty shard only if
 * missing_ok; otherwise ARMDB_ERR_IO/ENOENT.
 */
extern bool armdb_recover_shard(ArmdbIo *io, const char *dir, bool direct_io,
								bool missing_ok, ArmdbEntryCallback cb,
								void *arg, ArmdbRecoveryReport *report,
								ArmdbError *err);

#endif							/* ARMDB_STORAGE_RECOVERY_H */
