/*-------------------------------------------------------------------------
 *
 * make_data.c
 *	  Builds a small but varied engine directory for test_cli.sh, or holds
 *	  a directory open so the CLI's busy check can be tested.
 *
 *	  usage: make_data DIR			write data, flush, compact, close
 *	         make_data --hold DIR	open DIR, print "ready", wait to be killed
 *
 * The data covers every row type the CLI prints: SSTs in level 0 and in a
 * deeper level, several value-log segments with garbage (values rewritten
 * and compacted away), three column families, binary keys (bytes outside
 * printable ASCII and a backslash), deletes and a range tombstone.
 *
 * test/cli/make_data.c
 *-------------------------------------------------------------------------
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/nokv.h"

static void
die(const char *what, const nokv_error *err)
{
	fprintf(stderr, "make_data: %s: %s\n", what, err ? err->msg : "failed");
	exit(1);
}

static void
options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 64 << 10;
	o->target_file_size = 8 << 10;
	o->max_bytes_for_level_base = 32 << 10;
	o->level_size_multiplier = 4;
	o->l0_compaction_trigger = 2;
	o->vlog_threshold = 64;
	o->vlog_segment_size = 64 << 10;
	o->background_threads = false;
	o->block_cache_size = 1 << 20;
	o->meta_heap_size = 4 << 20;
	o->max_files = 4096;
	o->hot_capacity = 0;
}

static int
hold(const char *dir)
{
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;

	options(&o);
	if (nokv_open(&o, dir, &db, &err) != NOKV_OK)
		die("open", &err);
	printf("ready\n");
	fflush(stdout);
	/* SIGTERM ends the process; the kernel drops the LOCK flock */
	for (;;)
		pause();
	return 0;
}

int
main(int argc, char **argv)
{
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	nokv_batch *b;
	char		key[64],
				val[256];

	if (argc == 3 && strcmp(argv[1], "--hold") == 0)
		return hold(argv[2]);
	if (argc != 2)
	{
		fprintf(stderr, "usage: make_data DIR | make_data --hold DIR\n");
		return 1;
	}
	options(&o);
	if (nokv_open(&o, argv[1], &db, &err) != NOKV_OK)
		die("open", &err);

	for (int round = 0; round < 3; round++)
	{
		for (int i = 0; i < 3000; i++)
		{
			int			klen = snprintf(key, sizeof(key), "key%06d", i);
			size_t		vlen = (i % 3 == 0) ? 20 : 100 + (size_t) (i % 50);

			for (size_t j = 0; j < vlen; j++)
				val[j] = (char) ('a' + (i + j + (size_t) round) % 26);
			if (nokv_put(db, i % 5 == 0 ? NOKV_CF_WRITE : NOKV_CF_DEFAULT, key, (size_t) klen,
						 val, vlen, &err) != NOKV_OK)
				die("put", &err);
		}
		while (nokv_flush_one(db, &err) > 0)
			;
	}
	for (int i = 0; i < 50; i++)
	{
		char		bk[8] = {(char) 0xff, (char) i, 0, '\n', 'x', (char) 0x80, '\\', (char) i};

		if (nokv_put(db, NOKV_CF_WRITE, bk, sizeof(bk), "v", 1, &err) != NOKV_OK)
			die("put", &err);
		snprintf(key, sizeof(key), "key%06d", i);
		if (nokv_delete(db, NOKV_CF_DEFAULT, key, strlen(key), &err) != NOKV_OK)
			die("delete", &err);
	}
	b = nokv_batch_new();
	nokv_batch_delete_range(b, NOKV_CF_DEFAULT, "key001000", 9, "key001100", 9);
	if (nokv_write(db, NULL, b, &err) != NOKV_OK)
		die("range delete", &err);
	nokv_batch_free(b);
	if (nokv_compact_all(db, &err) != NOKV_OK)
		die("compact", &err);

	/*
	 * One more level-0 file on top of the compacted tree; its largest key
	 * is the only key of the lock column family and holds a quote.
	 */
	if (nokv_put(db, NOKV_CF_LOCK, "lock\"quote", 10, "v", 1, &err) != NOKV_OK)
		die("put", &err);
	for (int i = 0; i < 100; i++)
	{
		int			klen = snprintf(key, sizeof(key), "new%06d", i);

		memset(val, 'n', 150);
		if (nokv_put(db, NOKV_CF_DEFAULT, key, (size_t) klen, val, 150, &err) != NOKV_OK)
			die("put", &err);
	}
	if (nokv_rotate_memtable(db, &err) != NOKV_OK || nokv_flush_one(db, &err) < 0)
		die("flush", &err);
	nokv_close(db);
	return 0;
}
