/*-------------------------------------------------------------------------
 *
 * status.h
 *	  Engine-internal helpers for reporting errors through nokv_error.
 *
 * Every fallible internal function returns an int: NOKV_OK (0) on success,
 * otherwise a nokv_code, with the details written into a caller-supplied
 * nokv_error (which may be NULL when the caller does not care).
 *
 * include/nokv/status.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_STATUS_H
#define NOKV_STATUS_H

#include "nokv/nokv.h"

/* sets err (if non-NULL) and returns code */
int			nokv_error_set(nokv_error *err, nokv_code code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* like nokv_error_set, appending ": strerror(errno)" */
int			nokv_error_errno(nokv_error *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static inline void
nokv_error_clear(nokv_error *err)
{
	if (err)
	{
		err->code = NOKV_OK;
		err->msg[0] = '\0';
	}
}

#endif							/* NOKV_STATUS_H */
