/*-------------------------------------------------------------------------
 *
 * test_wal_recovery.c
 *	  Point-in-time WAL recovery (sync off) versus strict recovery (sync on).
 *
 * With sync mode off, sealed WAL segments are not fdatasynced, so an OS
 * crash may leave an older segment torn.  Recovery must then come back to
 * a prefix of the history: everything before the tear, nothing after it.
 * With sync per batch every sealed segment was synced, so the same damage
 * is corruption and must be refused with a message naming the file.
 *
 * test/engine/test_wal_recovery.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/nokv.h"
#include "tap.h"

#define PER_SEGMENT 300

static void
options(nokv_options *o, nokv_sync_mode mode)
{
	nokv_options_init(o);
	o->memtable_size = 1 << 20;
	o->max_memtables = 8;
	o->background_threads = false;
	o->sync_mode = mode;
}

static int
cmp_u64(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *) a,
				y = *(const unsigned long long *) b;

	return x < y ? -1 : x > y;
}

/* sorted WAL segment numbers */
static int
list_wal(const char *dir, unsigned long long *out, int max)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	while (d && (e = readdir(d)) != NULL && n < max)
	{
		unsigned long long num;
		char		tail[16];

		if (sscanf(e->d_name, "%llu.%15s", &num, tail) == 2 && strcmp(tail, "wal") == 0)
			out[n++] = num;
	}
	if (d)
		closedir(d);
	qsort(out, n, sizeof(out[0]), cmp_u64);
	return n;
}

static int
count_present(const char *dir, nokv_sync_mode mode, int seg, int *rc_open, char *msg)
{
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	char		key[32];
	int			n = 0;

	options(&o, mode);
	*rc_open = nokv_open(&o, dir, &db, &err);
	snprintf(msg, 512, "%s", err.msg);
	if (*rc_open != NOKV_OK)
		return -1;
	for (int i = 0; i < PER_SEGMENT; i++)
	{
		char	   *v;
		size_t		vl;

		snprintf(key, sizeof(key), "s%d-%04d", seg, i);
		if (nokv_get(db, NULL, 0, key, strlen(key), &v, &vl, &err) == NOKV_OK)
		{
			n++;
			free(v);
		}
	}
	nokv_close(db);
	return n;
}

int
main(void)
{
	nokv_sync_mode modes[2] = {NOKV_SYNC_OFF, NOKV_SYNC_BATCH};

	/* three segments, then an OS crash tears the middle one */
	for (int m = 0; m < 2; m++)
	{
		char	   *dir = tap_tmpdir("walrec2");
		nokv_options o;
		nokv_db    *db;
		nokv_error	err = {0};
		unsigned long long segs[16];
		int			nseg;
		char		key[32];
		char		path[4200];
		struct stat st;
		int			rc;
		char		msg[512];
		int			n0,
					n2;

		options(&o, modes[m]);
		if (nokv_open(&o, dir, &db, &err) != NOKV_OK)
			tap_bail("open: %s", err.msg);
		for (int seg = 0; seg < 3; seg++)
		{
			for (int i = 0; i < PER_SEGMENT; i++)
			{
				snprintf(key, sizeof(key), "s%d-%04d", seg, i);
				nokv_put(db, 0, key, strlen(key), "value", 5, &err);
			}
			if (seg < 2 && nokv_rotate_memtable(db, &err) != NOKV_OK)
				tap_bail("rotate: %s", err.msg);
		}
		nokv_close(db);			/* no flush: three segments hold everything */
		nseg = list_wal(dir, segs, 16);
		if (!ok(nseg >= 3, "%s: three wal segments on disk (%d)", m == 0 ? "sync off" : "sync on", nseg))
			continue;

		/* an OS crash tore the middle segment: cut it inside its records */
		snprintf(path, sizeof(path), "%s/%06llu.wal", dir, segs[nseg - 2]);
		stat(path, &st);
		if (truncate(path, st.st_size / 2) != 0)
			tap_bail("truncate %s", path);

		n0 = count_present(dir, modes[m], 0, &rc, msg);
		if (m == 0)
		{
			ok(rc == NOKV_OK, "sync off: recovery succeeds point-in-time (%s)", msg);
			is_int(n0, PER_SEGMENT, "sync off: everything before the tear is there");
			n2 = count_present(dir, modes[m], 2, &rc, msg);
			is_int(n2, 0, "sync off: nothing after the tear is (a prefix, no hole)");
		}
		else
			ok(rc == NOKV_CORRUPTION && strstr(msg, ".wal") != NULL,
			   "sync on: a torn sealed segment is corruption (%s)", msg);
		tap_rmdir(dir);
		free(dir);
	}
	return tap_done();
}
