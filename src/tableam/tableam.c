/*-------------------------------------------------------------------------
 *
 * tableam.c
 *	  The nokv table access method.
 *
 * src/tableam/tableam.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nokv_pg.h"

void
nokv_tableam_init(void)
{
}
