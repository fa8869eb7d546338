/*-------------------------------------------------------------------------
 *
 * status.h
 *	  Error reporting of the armdb storage layer.
 *
 * The storage layer runs inside a backend and, for its unit tests and fuzz
 * targets, in a plain process without a server.  It therefore never calls
 * ereport() or abort(): every function that can fail returns false and
 * describes the failure in an ArmdbError.  The backend adapter turns that
 * into an ereport() with a proper SQLSTATE (armdb_report_storage_error()).
 *
 * Every storage source file includes this header first: it pulls in
 * postgres.h in the server build and postgres_fe.h in the frontend build
 * (FRONTEND defined), so that c.h types, pg_crc32c and palloc_extended()
 * are available in both.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ARMDB_STORAGE_STATUS_H
#define ARMDB_STORAGE_STATUS_H

#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

typedef enum ArmdbErrorCode
{
	ARMDB_OK = 0,
	ARMDB_ERR_IO,				/* a system call failed; sys_errno says why */
	ARMDB_ERR_CORRUPT,			/* bad CRC, magic or length where data must be
								 * valid */
	ARMDB_ERR_NOMEM,			/* an allocation failed */
	ARMDB_ERR_INVALID,			/* caller asked for something impossible */
	ARMDB_ERR_FAILED,			/* shard refused work after an fsync failure */
	ARMDB_ERR_KEY				/* an encryption key the server was not given */
} ArmdbErrorCode;

typedef struct ArmdbError
{
	ArmdbErrorCode code;
	int			sys_errno;		/* errno of the failed call, or 0 */
	char		message[512];
} ArmdbError;

/*
 * Record an error and return false, so that callers can write
 * "return armdb_error(err, ...);".
 */
extern bool armdb_error(ArmdbError *err, ArmdbErrorCode code, int sys_errno,
						const char *fmt,...) pg_attribute_printf(4, 5);

/* Put "<context>: " in front of err's message; returns false. */
extern bool armdb_error_context(ArmdbError *err, const char *fmt,...)
			pg_attribute_printf(2, 3);

extern void armdb_error_clear(ArmdbError *err);

#define ARMDB_MAX_ALLOC		((size_t) 0x7fffffff)

/* Allocation that reports failure instead of raising or exiting. */
extern void *armdb_alloc(ArmdbError *err, size_t size, const char *what);
/* The same for memory kept across statements: TopMemoryContext's. */
extern void *armdb_alloc_lasting(ArmdbError *err, size_t size,
								 const char *what);

#endif							/* ARMDB_STORAGE_STATUS_H */
