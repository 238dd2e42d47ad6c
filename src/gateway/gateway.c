/*-------------------------------------------------------------------------
 *
 * gateway.c
 *	  The RESP (Redis protocol) gateway: settings and background worker.
 *
 * src/gateway/gateway.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nokv_pg.h"

void
nokv_gateway_init(void)
{
}

void
nokv_gateway_stats(NokvStatEmit emit, void *arg)
{
}
