/*-------------------------------------------------------------------------
 *
 * test_bloom.c
 *	  Unit tests for the SST bloom filter.
 *
 * Measures the false-positive rate with 100k keys at 10 bits per key
 * (expected about 1%) for two key shapes, checks that no added key is ever
 * reported absent, and checks the probe-count clamp, tiny and empty
 * filters and the handling of malformed filters (which must answer "may
 * match", never hide a key).
 *
 * test/engine/test_bloom.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/bloom.h"
#include "tap.h"

static int
make_key(char *buf, size_t cap, int shape, long i)
{
	if (shape == 0)
		return snprintf(buf, cap, "%cuser%08ld", 1, i);
	/* 16-byte binary-ish keys (cf byte + 15 bytes) */
	buf[0] = 0;
	for (int j = 0; j < 15; j++)
		buf[1 + j] = (char) ((unsigned long) (i * 2654435761UL) >> ((j % 8) * 8));
	return 16;
}

static double
measure(int bits_per_key, int shape, int n, int probes, int *false_negatives,
		size_t *filter_len)
{
	nokv_bloom_builder b;
	nokv_buf	f = {0};
	char		key[64];
	int			fp = 0;

	nokv_bloom_builder_init(&b, bits_per_key);
	for (int i = 0; i < n; i++)
	{
		int			len = make_key(key, sizeof(key), shape, i);

		nokv_bloom_builder_add(&b, key, len);
	}
	nokv_bloom_builder_finish(&b, &f);
	*filter_len = f.len;

	*false_negatives = 0;
	for (int i = 0; i < n; i++)
	{
		int			len = make_key(key, sizeof(key), shape, i);

		if (!nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash(key, len)))
			(*false_negatives)++;
	}
	for (int i = 0; i < probes; i++)
	{
		int			len = make_key(key, sizeof(key), shape, (long) n + 1000 + i);

		if (nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash(key, len)))
			fp++;
	}
	nokv_buf_free(&f);
	nokv_bloom_builder_free(&b);
	return (double) fp / probes;
}

static void
test_rates(void)
{
	for (int shape = 0; shape < 2; shape++)
	{
		int			fn;
		size_t		flen;
		double		rate = measure(10, shape, 100000, 200000, &fn, &flen);

		tap_diag("shape %d: 10 bits/key, 100k keys: filter %zu bytes, false positives %.3f%%",
				 shape, flen, rate * 100);
		is_int(fn, 0, "shape %d: no false negatives", shape);
		ok(rate > 0.003 && rate < 0.015, "shape %d: false-positive rate %.3f%% is about 1%%",
		   shape, rate * 100);
		ok(flen >= 100000 * 10 / 8 && flen <= 100000 * 10 / 8 + 64 + 1,
		   "shape %d: about 10 bits per key", shape);
	}

	/* more bits, fewer false positives; fewer bits, more */
	{
		int			fn6,
					fn20;
		size_t		l6,
					l20;
		double		r6 = measure(6, 0, 50000, 100000, &fn6, &l6);
		double		r20 = measure(20, 0, 50000, 100000, &fn20, &l20);

		tap_diag("6 bits/key: %.3f%%, 20 bits/key: %.4f%%", r6 * 100, r20 * 100);
		ok(fn6 == 0 && fn20 == 0, "no false negatives at 6 and 20 bits/key");
		ok(r6 > 0.02 && r6 < 0.10, "6 bits/key gives a few percent");
		ok(r20 < 0.002, "20 bits/key gives well under 0.2%%");
	}
}

static void
test_probes(void)
{
	is_int(nokv_bloom_num_probes(0), 1, "k clamps to 1 below");
	is_int(nokv_bloom_num_probes(1), 1, "1 bit/key: k = 1");
	is_int(nokv_bloom_num_probes(10), 6, "10 bits/key: k = 6");
	is_int(nokv_bloom_num_probes(16), 11, "16 bits/key: k = 11");
	is_int(nokv_bloom_num_probes(100), 30, "k clamps to 30 above");
}

static void
test_small_and_malformed(void)
{
	nokv_bloom_builder b;
	nokv_buf	f = {0};
	int			fp = 0;
	char		key[32];

	/* a one-key filter is one line plus k */
	nokv_bloom_builder_init(&b, 10);
	nokv_bloom_builder_add(&b, "\0k", 2);
	nokv_bloom_builder_finish(&b, &f);
	is_int(f.len, NOKV_BLOOM_LINE + 1, "one key: one line");
	is_int((unsigned char) f.data[f.len - 1], 6, "k stored in the last byte");
	ok(nokv_bloom_check(f.data, f.len), "filter is well-formed");
	ok(nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash("\0k", 2)), "key found");
	for (int i = 0; i < 1000; i++)
	{
		int			len = snprintf(key, sizeof(key), "other%d", i);

		fp += nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash(key, len));
	}
	ok(fp < 20, "one-key filter rejects almost everything (%d/1000)", fp);

	/* the builder forgets its keys at finish and can be reused */
	nokv_buf_reset(&f);
	nokv_bloom_builder_finish(&b, &f);
	is_int(f.len, NOKV_BLOOM_LINE + 1, "empty filter is one line");
	ok(!nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash("\0k", 2)),
	   "empty filter matches nothing");

	/* empty key */
	nokv_buf_reset(&f);
	nokv_bloom_builder_add(&b, "", 0);
	nokv_bloom_builder_finish(&b, &f);
	ok(nokv_bloom_may_match(f.data, f.len, nokv_bloom_hash("", 0)), "empty key found");

	/* malformed filters say "may match" and fail the check */
	ok(nokv_bloom_may_match(f.data, 0, 123) && !nokv_bloom_check(f.data, 0),
	   "zero-length filter");
	ok(nokv_bloom_may_match(f.data, f.len - 1, 123) && !nokv_bloom_check(f.data, f.len - 1),
	   "filter without its k byte");
	f.data[f.len - 1] = 0;
	ok(nokv_bloom_may_match(f.data, f.len, 123) && !nokv_bloom_check(f.data, f.len),
	   "k = 0 is malformed");
	f.data[f.len - 1] = 31;
	ok(nokv_bloom_may_match(f.data, f.len, 123) && !nokv_bloom_check(f.data, f.len),
	   "k = 31 is malformed");

	/* the hash is stable across builds (it is part of the file format) */
	is_int(nokv_bloom_hash("", 0) == nokv_bloom_hash("", 0), 1, "hash deterministic");
	ok(nokv_bloom_hash("a", 1) != nokv_bloom_hash("b", 1), "hash distinguishes keys");
	ok(nokv_bloom_hash("\0", 1) != nokv_bloom_hash("", 0), "hash covers the length");

	nokv_buf_free(&f);
	nokv_bloom_builder_free(&b);
}

int
main(void)
{
	test_probes();
	test_rates();
	test_small_and_malformed();
	return tap_done();
}
