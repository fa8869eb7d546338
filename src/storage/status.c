/*-------------------------------------------------------------------------
 *
 * status.c
 *	  Error records and non-raising allocation for the storage layer.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include <stdarg.h>

#ifndef FRONTEND
#include "utils/memutils.h"
#endif

bool
armdb_error(ArmdbError *err, ArmdbErrorCode code, int sys_errno,
			const char *fmt,...)
{
	va_list		args;

	err->code = code;
	err->sys_errno = sys_errno;
	va_start(args, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, args);
	va_end(args);
	return false;
}

bool
armdb_error_context(ArmdbError *err, const char *fmt,...)
{
	char		context[256];
	char		old[sizeof(err->message)];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(context, sizeof(context), fmt, args);
	va_end(args);
	strlcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%s: %s", context, old);
	return false;
}

void
armdb_error_clear(ArmdbError *err)
{
	err->code = ARMDB_OK;
	err->sys_errno = 0;
	err->message[0] = '\0';
}

/*
 * palloc_extended() exists in both the backend and libpgcommon; with
 * MCXT_ALLOC_NO_OOM it returns NULL instead of raising or exiting.  In the
 * backend the memory belongs to CurrentMemoryContext, so an ERROR raised by
 * the caller later cannot leak it.
 */
void *
armdb_alloc_lasting(ArmdbError *err, size_t size, const char *what)
{
#ifndef FRONTEND
	MemoryContext oldcontext = MemoryContextSwitchTo(TopMemoryContext);
#endif
	void	   *p = armdb_alloc(err, size, what);

#ifndef FRONTEND
	MemoryContextSwitchTo(oldcontext);
#endif
	return p;
}

void *
armdb_alloc(ArmdbError *err, size_t size, const char *what)
{
	void	   *p;

	/* entries reach 1 GB; their aligned read buffers a little more */
	if (size > ARMDB_MAX_ALLOC)
	{
		armdb_error(err, ARMDB_ERR_NOMEM, 0,
					"cannot allocate %zu bytes for %s: larger than 2 GB",
					size, what);
		return NULL;
	}
	p = palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (p == NULL)
		armdb_error(err, ARMDB_ERR_NOMEM, ENOMEM,
					"out of memory allocating %zu bytes for %s", size, what);
	return p;
}
