/*-------------------------------------------------------------------------
 *
 * unit.h
 *	  A tiny test runner for the armdb storage layer (no framework).
 *
 * Each test file defines a table
 *
 *	   const UnitTest unit_xxx_tests[] = {
 *		   {"name", function},
 *		   ...
 *		   {NULL, NULL}
 *	   };
 *
 * listed in unit_main.c.  The runner runs every test once per I/O method
 * (sync, then io_uring), each time in a fresh temporary directory
 * (unit_dir) with a fresh ArmdbIo (unit_io) and armdb_io_fault_hook reset.
 *
 * Assertions record the first failure with file:line and a message and
 * return from the function they are in: ASSERT* in void test functions,
 * HASSERT* in helpers returning bool (they return false).  A test calls a
 * helper with ASSERT_CALL(helper(...)), which returns if the helper failed.
 * ASSERT_OK/ASSERT_FAILS expect an ArmdbError named err in scope.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_UNIT_H
#define ARMDB_UNIT_H

#include "storage/status.h"
#include "storage/format.h"
#include "storage/io.h"
#include "storage/shard.h"
#include "storage/hint.h"
#include "storage/recovery.h"

typedef void (*UnitTestFn) (void);

typedef struct UnitTest
{
	const char *name;
	UnitTestFn	fn;
} UnitTest;

/* The environment of the running test. */
extern ArmdbIo *unit_io;
extern ArmdbIoMethod unit_method;
extern const char *unit_dir;

extern void unit_fail(const char *file, int line, const char *fmt,...)
			pg_attribute_printf(3, 4);
extern bool unit_failed(void);
/* progress note, shown with -v */
extern void unit_note(const char *fmt,...) pg_attribute_printf(1, 2);

/* ----------------
 * Assertions
 * ----------------
 */
#define UNIT_CHECK_(RET, cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			unit_fail(__FILE__, __LINE__, __VA_ARGS__); \
			RET; \
		} \
	} while (0)

#define UNIT_EQ_(RET, a, b) \
	do { \
		uint64		ua_ = (uint64) (a); \
		uint64		ub_ = (uint64) (b); \
		if (ua_ != ub_) \
		{ \
			unit_fail(__FILE__, __LINE__, "%s == %s: %llu (0x%llx) != %llu (0x%llx)", \
					  #a, #b, (unsigned long long) ua_, (unsigned long long) ua_, \
					  (unsigned long long) ub_, (unsigned long long) ub_); \
			RET; \
		} \
	} while (0)

#define UNIT_OK_(RET, call) \
	do { \
		armdb_error_clear(&err); \
		if (!(call)) \
		{ \
			unit_fail(__FILE__, __LINE__, "%s failed: code %d errno %d: %s", \
					  #call, (int) err.code, err.sys_errno, err.message); \
			RET; \
		} \
	} while (0)

#define UNIT_FAILS_(RET, call, want_code) \
	do { \
		armdb_error_clear(&err); \
		if (call) \
		{ \
			unit_fail(__FILE__, __LINE__, "%s succeeded, expected failure %s", \
					  #call, #want_code); \
			RET; \
		} \
		if (err.code != (want_code)) \
		{ \
			unit_fail(__FILE__, __LINE__, "%s: error code %d, expected %s (%d): %s", \
					  #call, (int) err.code, #want_code, (int) (want_code), \
					  err.message); \
			RET; \
		} \
		if (err.message[0] == '\0') \
		{ \
			unit_fail(__FILE__, __LINE__, "%s failed without a message", #call); \
			RET; \
		} \
	} while (0)

#define UNIT_CALL_(RET, call) \
	do { \
		if (!(call)) \
		{ \
			if (!unit_failed()) \
				unit_fail(__FILE__, __LINE__, "%s returned false", #call); \
			RET; \
		} \
	} while (0)

#define ASSERT(cond)			UNIT_CHECK_(return, cond, "assertion failed: %s", #cond)
#define ASSERT_MSG(cond, ...)	UNIT_CHECK_(return, cond, __VA_ARGS__)
#define ASSERT_EQ(a, b)			UNIT_EQ_(return, a, b)
#define ASSERT_OK(call)			UNIT_OK_(return, call)
#define ASSERT_FAILS(call, code) UNIT_FAILS_(return, call, code)
#define ASSERT_CALL(call)		UNIT_CALL_(return, call)
#define ASSERT_STR(a, b) \
	UNIT_CHECK_(return, strcmp((a), (b)) == 0, "%s == %s: \"%s\" != \"%s\"", #a, #b, (a), (b))

#define HASSERT(cond)			UNIT_CHECK_(return false, cond, "assertion failed: %s", #cond)
#define HASSERT_MSG(cond, ...)	UNIT_CHECK_(return false, cond, __VA_ARGS__)
#define HASSERT_EQ(a, b)		UNIT_EQ_(return false, a, b)
#define HASSERT_OK(call)		UNIT_OK_(return false, call)
#define HASSERT_FAILS(call, code) UNIT_FAILS_(return false, call, code)
#define HASSERT_CALL(call)		UNIT_CALL_(return false, call)

/* ----------------
 * Helpers (unit_util.c)
 * ----------------
 */

/* "<unit_dir>/<name>" */
extern void unit_path(char *path, const char *name);
/* "<unit_dir>/NNNNNN.<ext>" */
extern void unit_file(char *path, uint32 file_id, ArmdbFileKind kind);

/* Plain POSIX file access, independent of the code under test. */
extern int64 unit_file_size(const char *path);	/* -1: missing */
extern bool unit_exists(const char *path);
extern char *unit_read_all(const char *path, size_t *len);	/* malloc'd */
extern bool unit_write_all(const char *path, const void *buf, size_t len);
extern bool unit_flip_bit(const char *path, uint64 byte_off, int bit);
extern bool unit_truncate(const char *path, uint64 len);
extern bool unit_overwrite(const char *path, uint64 off, const void *buf,
						   size_t len);
/* number of directory entries of dir whose name ends with suffix */
extern int	unit_count_files(const char *dir, const char *suffix);

/* Deterministic value bytes. */
extern void unit_fill(char *buf, size_t len, uint64 seed);
/* offset of the first byte that differs from unit_fill(seed), or -1 */
extern int64 unit_check_fill(const char *buf, size_t len, uint64 seed);

/* Deterministic pseudo-random numbers for sizes. */
extern uint32 unit_rand(uint64 *state);

/* ----------------
 * Fault injection through armdb_io_fault_hook
 * ----------------
 *
 * unit_fault_set(op, e, skip, times): the first skip operations op (-1: any
 * operation) pass, the next times ones (-1: all) fail with errno e.  The
 * hook also counts calls and remembers the last one it saw for op.
 */
typedef struct UnitFault
{
	int			op;
	int			err;
	int			skip;
	int			times;
	int			seen;			/* operations op seen */
	int			injected;		/* failures injected */
	int			last_fd;
	off_t		last_off;
	size_t		last_len;
} UnitFault;

extern UnitFault unit_fault;
extern void unit_fault_set(int op, int err, int skip, int times);
extern void unit_fault_clear(void);

/* ----------------
 * Entry model: what the tests appended
 * ----------------
 */
typedef struct TEntry
{
	ArmdbEntryHeader hdr;		/* crc as sealed by append */
	uint64		seed;			/* value bytes: unit_fill(seed) */
	ArmdbLocation loc;
} TEntry;

typedef struct TLog
{
	TEntry	   *e;
	int			n;
	int			cap;
	uint64		next_gsn;
} TLog;

extern void tlog_init(TLog *log);
extern void tlog_free(TLog *log);
/* header fields of the n-th entry (deterministic), crc left 0 */
extern void tentry_header(ArmdbEntryHeader *hdr, uint64 gsn, uint32 value_len,
						  bool tombstone);
extern uint32 tentry_header_size(uint64 gsn, bool tombstone);
extern void unit_file_header_reseal(ArmdbFileHeader *fh);
extern uint64 tlog_max_gsn(const TLog *log, int n);

/* Entries reported by a scan/hint/recovery callback. */
typedef struct TInfos
{
	ArmdbEntryInfo *e;
	int			n;
	int			cap;
	int			fail_at;		/* callback fails at this index (-1: never) */
} TInfos;

extern void tinfos_init(TInfos *infos);
extern void tinfos_free(TInfos *infos);
extern bool tinfos_cb(void *arg, const ArmdbEntryInfo *entry, ArmdbError *err);
/* infos equal to the first n entries of log, in order */
extern bool tinfos_match(const TInfos *infos, const TLog *log, int n);
extern bool tinfos_equal(const TInfos *a, const TInfos *b);
/* field by field: ArmdbEntryInfo has padding */
extern bool info_equal(const ArmdbEntryInfo *a, const ArmdbEntryInfo *b);

/* ----------------
 * A shard under test
 * ----------------
 */
typedef struct TShard
{
	ArmdbAlignedBuf abuf;
	ArmdbShardState st;
	ArmdbShardFiles files;
	bool		active;
} TShard;

#define T_BUF_SIZE		(16 * ARMDB_BLOCK_SIZE)
#define T_FILE_SIZE		(64 * 1024 * 1024)

/* buffer allocated and zeroed, state and files initialised (not opened) */
extern bool tshard_init(TShard *s, const char *dir, uint32 buf_size,
						uint32 max_file_size, bool direct);
/* tshard_init + armdb_recover_shard + armdb_shard_open */
extern bool tshard_start(TShard *s, const char *dir, uint32 buf_size,
						 uint32 max_file_size, bool direct, TInfos *infos,
						 ArmdbRecoveryReport *report);
extern void tshard_close(TShard *s);

/* Append the next entry of log; checks loc and the state invariants. */
extern bool tshard_append(TShard *s, TLog *log, uint32 value_len,
						  bool tombstone, uint32 *sealed);
/* Read entry back (armdb_shard_read) and compare header and value. */
extern bool tshard_verify(TShard *s, const TEntry *e);
extern bool tshard_verify_all(TShard *s, const TLog *log, int n);
extern bool tshard_flush_all(TShard *s);
/* Invariants of ArmdbShardState documented in shard.h. */
extern bool tshard_check_state(const TShard *s);

/* Recover unit_dir (direct I/O) into infos/report; must succeed. */
extern bool trecover(TInfos *infos, ArmdbRecoveryReport *report);

#endif							/* ARMDB_UNIT_H */
