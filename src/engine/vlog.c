/*-------------------------------------------------------------------------
 *
 * vlog.c
 *	  Placeholder: shared-state hooks until the vlog module lands.
 *
 * src/engine/vlog.c
 *-------------------------------------------------------------------------
 */
#include "nokv/db_impl.h"

size_t
nokv_vlog_shared_size(const nokv_shared_options *o)
{
	(void) o;
	return 64;
}

void
nokv_vlog_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o)
{
	(void) ctx;
	(void) off;
	(void) o;
}
