/*-------------------------------------------------------------------------
 *
 * hotring.c
 *	  Placeholder: shared-state hooks until the hotring module lands.
 *
 * src/engine/hotring.c
 *-------------------------------------------------------------------------
 */
#include "nokv/db_impl.h"

size_t
nokv_hotring_shared_size(const nokv_shared_options *o)
{
	(void) o;
	return 64;
}

void
nokv_hotring_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o)
{
	(void) ctx;
	(void) off;
	(void) o;
}
