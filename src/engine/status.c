/*-------------------------------------------------------------------------
 *
 * status.c
 *	  Error codes, their names, and helpers that fill nokv_error.
 *
 * src/engine/status.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nokv/status.h"

const char *
nokv_code_name(nokv_code code)
{
	switch (code)
	{
		case NOKV_OK:
			return "ok";
		case NOKV_NOT_FOUND:
			return "not found";
		case NOKV_CORRUPTION:
			return "corruption";
		case NOKV_IO_ERROR:
			return "i/o error";
		case NOKV_INVALID_ARGUMENT:
			return "invalid argument";
		case NOKV_NO_SPACE:
			return "out of shared memory";
		case NOKV_BUSY:
			return "busy";
		case NOKV_NOT_SUPPORTED:
			return "not supported";
		case NOKV_CONFLICT:
			return "conflict";
		case NOKV_SHUTDOWN:
			return "shutting down";
		case NOKV_EPOCH_CHANGED:
			return "memtable replaced";
	}
	return "unknown error";
}

int
nokv_error_set(nokv_error *err, nokv_code code, const char *fmt,...)
{
	if (err)
	{
		va_list		ap;

		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int
nokv_error_errno(nokv_error *err, const char *fmt,...)
{
	int			saved = errno;

	if (err)
	{
		va_list		ap;
		size_t		n;

		err->code = NOKV_IO_ERROR;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
	}
	errno = saved;
	return NOKV_IO_ERROR;
}
