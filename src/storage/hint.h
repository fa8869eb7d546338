/*-------------------------------------------------------------------------
 *
 * hint.h
 *	  Hint files: a summary of an immutable data file (every entry's header
 *	  and location, no values) that start-up reads instead of scanning the
 *	  data file.  The format is in format.h.
 *
 * A hint is written only for a file that will not change any more (sealed,
 * or a compaction output), to NNNNNN.tmp, fsynced and renamed, so a .hint
 * file is whole or absent; a hint that does not validate is only a lost
 * shortcut: recovery scans the data file instead (recovery.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_HINT_H
#define ARMDB_STORAGE_HINT_H

#include "storage/cipher.h"
#include "storage/format.h"
#include "storage/io.h"

/*
 * Write the hint file of data file file_id from its entries: scan the data
 * file (it must be complete: a bad entry is ARMDB_ERR_CORRUPT, unless
 * skip_damage, when the hint lists the good entries around the damage;
 * with auth, an authenticated file's entries are opened and the hint gets
 * a MAC),
 * write NNNNNN.tmp, fsync it, rename it to NNNNNN.hint and fsync the
 * directory.
 */
extern bool armdb_hint_build(ArmdbIo *io, const char *dir, uint32 file_id,
							 bool direct_io, bool skip_damage,
							 const ArmdbFileAuth *auth, ArmdbError *err);

/*
 * Same, from entries the caller already has (compaction outputs); with
 * file_key (an authenticated data file's key), the hint has a MAC.
 */
extern bool armdb_hint_write(const char *dir, uint32 file_id,
							 const ArmdbEntryInfo *entries, uint32 n,
							 uint64 data_end, const uint8 *file_key,
							 ArmdbError *err);

/*
 * Read and validate the hint of file_id and call cb for each record.
 * Returns false with ARMDB_ERR_CORRUPT for a bad hint (the caller scans the
 * data file instead) and ARMDB_ERR_IO with ENOENT when there is none.  With
 * auth (an encrypted table's), the hint of an authenticated data file must
 * carry its MAC (format.h): one without, or with a wrong one, is bad.
 */
extern bool armdb_hint_load(ArmdbIo *io, const char *dir, uint32 file_id,
							uint64 data_size, const ArmdbFileAuth *auth,
							ArmdbEntryCallback cb, void *arg,
							ArmdbError *err);

/*
 * The key of data file file_id, if it is authenticated (*keyed; format.h),
 * from its header and auth.  One small read.
 */
extern bool armdb_data_file_key(ArmdbIo *io, const char *dir, uint32 file_id,
								const ArmdbFileAuth *auth, uint8 *file_key,
								bool *keyed, ArmdbError *err);

#endif							/* ARMDB_STORAGE_HINT_H */
