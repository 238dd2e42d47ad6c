/*-------------------------------------------------------------------------
 *
 * test_hotring.c
 *	  Unit tests for hot-key tracking (the read and write rings).
 *
 * The rings live in an anonymous shared mapping with the pthread platform,
 * laid out the way the engine lays out its region, so forked children feed
 * the same rings.  Checked: counts inside a window and per column family;
 * counts sliding out as explicit clock values advance; top-N ordering (also
 * under a Zipf workload against exact counts); a million distinct keys
 * through a 1000-key ring stay within capacity and the hot keys still come
 * out on top; long keys are shown truncated and flagged; the write limit;
 * four threads touching while a fifth takes top-N (rows are never torn,
 * totals add up exactly when nothing is evicted); forked children touching
 * one mapping; disabled and degenerate configurations.
 *
 * test/engine/test_hotring.c
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/hotring.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "tap.h"

typedef struct rings
{
	char	   *mem;
	size_t		len;
	nokv_platform plat;
	nokv_ctx	ctx;
	nokv_off	off;
	nokv_shared_options so;
} rings;

static void
rings_open(rings *r, int capacity, int window_ms, int slots)
{
	size_t		plat = NOKV_ALIGN(nokv_pthread_platform_size(), 64);

	memset(r, 0, sizeof(*r));
	r->so.hot_capacity = capacity;
	r->so.hot_window_ms = window_ms;
	r->so.hot_window_slots = slots;
	r->so.hot_topn = 16;
	r->off = 64 + plat;
	r->len = r->off + NOKV_ALIGN(nokv_hotring_shared_size(&r->so), 64);
	r->mem = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->mem == MAP_FAILED)
		tap_bail("mmap of %zu bytes failed", r->len);
	nokv_pthread_platform_format(r->mem + 64);
	nokv_pthread_platform_bind(&r->plat, r->mem + 64);
	r->ctx.base = r->mem;
	r->ctx.plat = &r->plat;
	nokv_hotring_shared_format(&r->ctx, r->off, &r->so);
}

static void
rings_close(rings *r)
{
	munmap(r->mem, r->len);
}

static uint64_t
touch(rings *r, int ring, int cf, const char *key, uint64_t now, uint32_t n)
{
	return nokv_hotring_touch(&r->ctx, r->off, ring, cf, key, strlen(key), now, n);
}

static uint64_t
peek(rings *r, int ring, int cf, const char *key, uint64_t now)
{
	return nokv_hotring_touch(&r->ctx, r->off, ring, cf, key, strlen(key), now, 0);
}

static bool
row_is(const nokv_hotkey *row, int cf, const char *key)
{
	size_t		len = strlen(key);

	return row->cf == cf && row->key_len == len &&
		memcmp(row->key, key, len < NOKV_HOT_KEY_PREFIX ? len : NOKV_HOT_KEY_PREFIX) == 0;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---------- counts within a window ---------- */

static void
test_basic(void)
{
	rings		r;
	nokv_hotring_stats st;
	uint64_t	now = 1000000;

	rings_open(&r, 64, 1000, 4);
	is_int(touch(&r, NOKV_HOT_READ, 0, "alpha", now, 1), 1, "first touch counts 1");
	is_int(touch(&r, NOKV_HOT_READ, 0, "alpha", now + 10, 1), 2, "second touch counts 2");
	is_int(touch(&r, NOKV_HOT_READ, 0, "alpha", now + 20, 5), 7, "touch with n=5 adds 5");
	is_int(peek(&r, NOKV_HOT_READ, 0, "alpha", now + 30), 7, "n=0 looks the count up");
	is_int(peek(&r, NOKV_HOT_READ, 0, "beta", now + 30), 0, "untracked key counts 0");
	is_int(touch(&r, NOKV_HOT_READ, 1, "alpha", now, 1), 1, "same bytes in another cf is another key");
	is_int(peek(&r, NOKV_HOT_WRITE, 0, "alpha", now), 0, "read touches do not show in the write ring");
	is_int(touch(&r, NOKV_HOT_WRITE, 0, "alpha", now, 2), 2, "write ring counts separately");
	is_int(touch(&r, NOKV_HOT_READ, 0, "", now, 3), 3, "the empty key is a key");
	is_int(nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, NULL, 0, now, 1), 4,
		   "a NULL empty key is the empty key");

	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	is_int(st.touches, 6, "stats: touches (peeks not counted)");
	is_int(st.inserts, 3, "stats: inserts");
	is_int(st.entries, 3, "stats: entries");
	is_int(st.capacity, 64, "stats: capacity");
	is_int(st.evictions, 0, "stats: no evictions");
	is_int(st.dropped, 0, "stats: nothing dropped");
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_WRITE, &st);
	is_int(st.entries, 1, "write ring: one entry");
	rings_close(&r);
}

/* ---------- sliding out ---------- */

static void
test_window(void)
{
	rings		r;
	nokv_hotkey top[4];

	/* 1000 ms in 4 sub-windows of 250 ms */
	rings_open(&r, 64, 1000, 4);
	touch(&r, NOKV_HOT_READ, 0, "k", 0, 1);		/* epoch 0 */
	touch(&r, NOKV_HOT_READ, 0, "k", 300, 2);	/* epoch 1 */
	touch(&r, NOKV_HOT_READ, 0, "k", 600, 3);	/* epoch 2 */
	is_int(touch(&r, NOKV_HOT_READ, 0, "k", 999, 4), 10, "all four sub-windows count");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 1000), 9, "at 1000 ms the first sub-window slid out");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 1250), 7, "at 1250 ms two slid out");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 1500), 4, "at 1500 ms three slid out");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 1749), 4, "still 4 at 1749 ms");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 1750), 0, "all slid out at 1750 ms");
	is_int(nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 1750, top, 4), 0,
		   "top-N leaves out keys with nothing in the window");
	is_int(touch(&r, NOKV_HOT_READ, 0, "k", 1800, 1), 1, "a stale slot restarts on touch");
	is_int(touch(&r, NOKV_HOT_READ, 0, "k", 2000, 1), 2, "next sub-window adds up");
	is_int(peek(&r, NOKV_HOT_READ, 0, "k", 2000 + 1000ULL * 1000 * 1000), 0,
		   "nothing counts after a very long gap");
	is_int(touch(&r, NOKV_HOT_READ, 0, "k", 2000 + 1000ULL * 1000 * 1000, 1), 1,
		   "and a touch then counts 1");
	/* a lagging clock must not wipe a newer sub-window */
	is_int(touch(&r, NOKV_HOT_READ, 0, "lag", 10000, 5), 5, "touch at 10 s");
	touch(&r, NOKV_HOT_READ, 0, "lag", 9000, 1);
	is_int(peek(&r, NOKV_HOT_READ, 0, "lag", 10000), 6,
		   "a touch from a clock one window behind joins the newer sub-window");
	rings_close(&r);

	/* a window narrower than its slot count: 1 ms sub-windows */
	rings_open(&r, 16, 10, 64);
	touch(&r, NOKV_HOT_READ, 0, "x", 5, 1);
	is_int(touch(&r, NOKV_HOT_READ, 0, "x", 68, 1), 2, "64 sub-windows of 1 ms: 63 ms later both count");
	is_int(peek(&r, NOKV_HOT_READ, 0, "x", 69), 1, "64 ms later the first slid out");
	rings_close(&r);

	/* one slot: a tumbling window */
	rings_open(&r, 16, 100, 1);
	touch(&r, NOKV_HOT_READ, 0, "y", 100, 3);
	is_int(touch(&r, NOKV_HOT_READ, 0, "y", 199, 1), 4, "one slot: same window adds");
	is_int(touch(&r, NOKV_HOT_READ, 0, "y", 200, 1), 1, "one slot: next window restarts");
	rings_close(&r);
}

/* ---------- top-N ---------- */

static void
test_topn_order(void)
{
	rings		r;
	nokv_hotkey top[32];
	char		key[32];
	bool		sorted = true;
	int			got;

	rings_open(&r, 256, 60000, 6);
	for (int i = 0; i < 20; i++)
	{
		snprintf(key, sizeof(key), "key-%02d", i);
		touch(&r, NOKV_HOT_READ, i % 3, key, 5000, (uint32_t) (100 - 4 * i));
	}
	/* ties are ordered by cf then key */
	touch(&r, NOKV_HOT_READ, 2, "tie-b", 5000, 3);
	touch(&r, NOKV_HOT_READ, 1, "tie-z", 5000, 3);
	touch(&r, NOKV_HOT_READ, 2, "tie-a", 5000, 3);

	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 5000, top, 5);
	is_int(got, 5, "top-5 returns 5 rows");
	for (int i = 0; i < got; i++)
	{
		snprintf(key, sizeof(key), "key-%02d", i);
		if (!row_is(&top[i], i % 3, key) || top[i].count != (uint64_t) (100 - 4 * i))
			sorted = false;
	}
	ok(sorted, "top-5 are the five hottest, hottest first, with their counts");
	ok(!top[0].truncated, "short keys are not flagged truncated");

	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 5000, top, 32);
	is_int(got, 23, "asking for more than exist returns them all");
	sorted = true;
	for (int i = 1; i < got; i++)
		if (top[i - 1].count < top[i].count)
			sorted = false;
	ok(sorted, "counts never increase down the list");
	ok(row_is(&top[20], 1, "tie-z") && row_is(&top[21], 2, "tie-a") &&
	   row_is(&top[22], 2, "tie-b"), "equal counts ordered by cf, then key");
	is_int(nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 5000, top, 0), 0, "n = 0 returns nothing");
	is_int(nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_WRITE, 5000, top, 5), 0, "write ring is empty");
	is_int(nokv_hotring_topn(&r.ctx, r.off, 2, 5000, top, 5), 0, "a bad ring id returns nothing");
	rings_close(&r);
}

/* Zipf(s) over nkeys ranks, sampled through the CDF */
static int
zipf_sample(const double *cdf, int nkeys)
{
	double		u = (double) (xorshift() >> 11) / (double) (1ULL << 53);
	int			lo = 0,
				hi = nkeys - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
u64_desc(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x > y ? -1 : x < y ? 1 : 0;
}

static void
test_zipf(void)
{
	enum
	{
		NKEYS = 50000, TOUCHES = 300000, CAP = 1000, TOP = 10
	};
	rings		r;
	double	   *cdf = malloc(sizeof(double) * NKEYS);
	uint64_t   *truth = calloc(NKEYS, sizeof(uint64_t));
	nokv_hotkey top[TOP];
	double		total = 0,
				acc = 0;
	char		key[32];
	uint64_t   *sorted = malloc(sizeof(uint64_t) * NKEYS);
	int			in_top = 0;
	int			true_top = 0;
	int			got;
	double		worst_err = 0;

	for (int i = 0; i < NKEYS; i++)
		total += 1.0 / pow(i + 1, 1.1);
	for (int i = 0; i < NKEYS; i++)
	{
		acc += 1.0 / pow(i + 1, 1.1) / total;
		cdf[i] = acc;
	}
	cdf[NKEYS - 1] = 1.0;

	rings_open(&r, CAP, 60000, 6);
	for (int t = 0; t < TOUCHES; t++)
	{
		int			k = zipf_sample(cdf, NKEYS);

		truth[k]++;
		snprintf(key, sizeof(key), "user%08d", k * 7919 % NKEYS);
		touch(&r, NOKV_HOT_READ, 0, key, 100000 + (uint64_t) t / 100, 1);
	}
	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 100000 + TOUCHES / 100, top, TOP);
	is_int(got, TOP, "zipf: top-10 is full");
	/* the exact 10th and 11th largest sampled counts */
	memcpy(sorted, truth, sizeof(uint64_t) * NKEYS);
	qsort(sorted, NKEYS, sizeof(uint64_t), u64_desc);
	for (int k = 0; k < NKEYS; k++)
	{
		if (truth[k] <= sorted[TOP])
			continue;			/* not certainly among the true top-10 */
		snprintf(key, sizeof(key), "user%08d", k * 7919 % NKEYS);
		for (int i = 0; i < got; i++)
			if (row_is(&top[i], 0, key))
			{
				double		err = fabs((double) top[i].count - (double) truth[k]) / (double) truth[k];

				in_top++;
				if (err > worst_err)
					worst_err = err;
			}
		true_top++;
	}
	ok(true_top >= TOP - 1 && in_top == true_top,
	   "zipf: the true top-10 keys are in the reported top-10 (%d of %d)", in_top, true_top);
	snprintf(key, sizeof(key), "user%08d", 0);
	ok(row_is(&top[0], 0, key) && top[0].count == sorted[0], "zipf: the hottest key is first");
	ok(worst_err < 0.05, "zipf: their counts are within 5%% of the truth (worst %.3f%%)", worst_err * 100);
	tap_diag("zipf: hottest %llu touches, 10th %llu, 11th %llu",
			 (unsigned long long) sorted[0], (unsigned long long) sorted[TOP - 1],
			 (unsigned long long) sorted[TOP]);
	rings_close(&r);
	free(cdf);
	free(truth);
	free(sorted);
}

/* ---------- bounded memory ---------- */

static void
test_bounded(void)
{
	enum
	{
		CAP = 1000, DISTINCT = 1000000, HOT = 5
	};
	rings		r;
	nokv_hotring_stats st;
	nokv_hotkey top[HOT];
	char		key[32];
	bool		bounded = true;
	int			found = 0;
	uint64_t	hot_truth = 0;
	size_t		size_small,
				size_large;
	nokv_shared_options so = {.hot_capacity = CAP, .hot_window_ms = 60000, .hot_window_slots = 6};

	rings_open(&r, CAP, 60000, 6);
	for (int i = 0; i < DISTINCT; i++)
	{
		snprintf(key, sizeof(key), "cold-%07d", i);
		touch(&r, NOKV_HOT_READ, 0, key, 1000000, 1);
		/* the hot keys only start half way through the flood */
		if (i >= DISTINCT / 2 && i % 100 == 0)
		{
			for (int h = 0; h < HOT; h++)
			{
				snprintf(key, sizeof(key), "hot-%d", h);
				touch(&r, NOKV_HOT_READ, 0, key, 1000000, 1);
			}
			hot_truth++;
		}
		if (i % 65536 == 0)
		{
			nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
			if (st.entries > CAP)
				bounded = false;
		}
	}
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	ok(bounded && st.entries <= CAP, "1M distinct keys: entries stay <= capacity (%llu)",
	   (unsigned long long) st.entries);
	ok(st.evictions > 0 && st.dropped > 0, "cold keys were evicted (%llu) and refused (%llu)",
	   (unsigned long long) st.evictions, (unsigned long long) st.dropped);
	is_int(st.touches, DISTINCT + HOT * hot_truth, "every touch was counted");
	is_int(nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 1000000, top, HOT), HOT, "top-5 is full");
	for (int h = 0; h < HOT; h++)
	{
		snprintf(key, sizeof(key), "hot-%d", h);
		for (int i = 0; i < HOT; i++)
			if (row_is(&top[i], 0, key) && top[i].count >= hot_truth * 9 / 10)
				found++;
	}
	is_int(found, HOT, "the 5 hot keys are the top-5 with >= 90%% of their %llu touches",
		   (unsigned long long) hot_truth);

	/* the area's size depends on capacity (and slots) only */
	size_small = nokv_hotring_shared_size(&so);
	so.hot_capacity = 2 * CAP;
	size_large = nokv_hotring_shared_size(&so);
	ok(size_small < 2 * (2048 * 12 + CAP * (80 + 8 * 6)) + 4096,
	   "area for capacity 1000 is %zu bytes", size_small);
	ok(size_large > size_small && size_large < 2 * size_small + 4096,
	   "and grows linearly with capacity (%zu)", size_large);
	rings_close(&r);
}

/* ---------- long keys ---------- */

static void
test_long_keys(void)
{
	rings		r;
	nokv_hotkey top[4];
	char		a[200],
				b[200],
				exact[64];
	int			got;

	rings_open(&r, 64, 60000, 6);
	memset(a, 'a', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[150] = 'b';				/* same 64-byte prefix, same length */
	memset(exact, 'e', sizeof(exact));
	nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, a, sizeof(a), 0, 5);
	nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, b, sizeof(b), 0, 3);
	nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, exact, sizeof(exact), 0, 1);
	is_int(nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, a, sizeof(a), 0, 0), 5,
		   "long keys sharing a prefix are counted apart (a)");
	is_int(nokv_hotring_touch(&r.ctx, r.off, NOKV_HOT_READ, 0, b, sizeof(b), 0, 0), 3,
		   "long keys sharing a prefix are counted apart (b)");
	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 0, top, 4);
	is_int(got, 3, "three keys");
	ok(top[0].truncated && top[0].key_len == 200 && memcmp(top[0].key, a, 64) == 0,
	   "a 200-byte key shows its first 64 bytes, its length and the truncated flag");
	ok(top[1].truncated && top[1].count == 3, "so does the other");
	ok(!top[2].truncated && top[2].key_len == 64 && memcmp(top[2].key, exact, 64) == 0,
	   "a key of exactly 64 bytes is shown whole");
	rings_close(&r);
}

/* ---------- the write limit ---------- */

static void
test_write_limit(void)
{
	rings		r;
	nokv_hotring_stats st;
	nokv_ctx   *c;

	rings_open(&r, 64, 1000, 4);
	c = &r.ctx;
	ok(!nokv_hotring_write_limited(c, r.off, 0, "w", 1, 0, 3), "untracked key is not limited");
	touch(&r, NOKV_HOT_WRITE, 0, "w", 0, 1);
	touch(&r, NOKV_HOT_WRITE, 0, "w", 10, 1);
	ok(!nokv_hotring_write_limited(c, r.off, 0, "w", 1, 20, 3), "2 writes, limit 3: allowed");
	touch(&r, NOKV_HOT_WRITE, 0, "w", 20, 1);
	ok(nokv_hotring_write_limited(c, r.off, 0, "w", 1, 30, 3), "3 writes, limit 3: a 4th is limited");
	ok(nokv_hotring_write_limited(c, r.off, 0, "w", 1, 40, 3), "still limited (a refusal adds nothing)");
	is_int(peek(&r, NOKV_HOT_WRITE, 0, "w", 40), 3, "refusals did not count as writes");
	ok(!nokv_hotring_write_limited(c, r.off, 0, "w", 1, 40, 0), "limit 0 never limits");
	ok(!nokv_hotring_write_limited(c, r.off, 0, "w", 1, 40, 4), "a higher limit lets it through");
	ok(!nokv_hotring_write_limited(c, r.off, 1, "w", 1, 40, 3), "same bytes in another cf are not limited");
	touch(&r, NOKV_HOT_READ, 0, "r", 0, 100);
	ok(!nokv_hotring_write_limited(c, r.off, 0, "r", 1, 40, 3), "reads do not count towards the write limit");
	ok(!nokv_hotring_write_limited(c, r.off, 0, "w", 1, 1000, 3), "once the window slid past, allowed again");
	nokv_hotring_stats_get(c, r.off, NOKV_HOT_WRITE, &st);
	is_int(st.limited, 2, "two limited events counted on the write ring");
	nokv_hotring_stats_get(c, r.off, NOKV_HOT_READ, &st);
	is_int(st.limited, 0, "none on the read ring");
	rings_close(&r);
}

/* ---------- disabled and degenerate ---------- */

static void
test_disabled(void)
{
	rings		r;
	nokv_hotkey top[2];
	nokv_hotring_stats st;

	rings_open(&r, 64, 1000, 4);
	is_int(nokv_hotring_touch(&r.ctx, 0, NOKV_HOT_READ, 0, "a", 1, 0, 1), 0, "off = 0: touch returns 0");
	is_int(nokv_hotring_topn(&r.ctx, 0, NOKV_HOT_READ, 0, top, 2), 0, "off = 0: top-N is empty");
	ok(!nokv_hotring_write_limited(&r.ctx, 0, 0, "a", 1, 0, 1), "off = 0: nothing is limited");
	nokv_hotring_stats_get(&r.ctx, 0, NOKV_HOT_READ, &st);
	ok(st.touches == 0 && st.capacity == 0, "off = 0: zero stats");
	is_int(nokv_hotring_touch(&r.ctx, r.off, -1, 0, "a", 1, 0, 1), 0, "a negative ring id is refused");
	rings_close(&r);

	rings_open(&r, 0, 1000, 4);
	is_int(touch(&r, NOKV_HOT_READ, 0, "a", 0, 1), 0, "capacity 0: touch returns 0");
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	is_int(st.capacity, 0, "capacity 0: stats say so");
	rings_close(&r);

	/* a tiny ring fills up and keeps working */
	rings_open(&r, 1, 1000, 4);
	touch(&r, NOKV_HOT_READ, 0, "one", 0, 1);
	/* admitted with probability 1/5 per touch while "one" counts 1 */
	for (int i = 0; i < 200; i++)
		touch(&r, NOKV_HOT_READ, 0, "two", 0, 1);
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	ok(st.entries == 1 && peek(&r, NOKV_HOT_READ, 0, "two", 0) > 100 &&
	   peek(&r, NOKV_HOT_READ, 0, "one", 0) == 0,
	   "capacity 1: the hotter key takes the only entry");
	is_int(st.evictions, 1, "capacity 1: exactly one eviction");
	rings_close(&r);
}

/* ---------- threads ---------- */

enum
{
	THREADS = 4, HOT_KEYS = 8, ITERS = 40000
};

typedef struct thread_arg
{
	rings	   *r;
	int			id;
	bool		churn;			/* also touch never-repeated cold keys */
	_Atomic bool *stop;
	_Atomic uint64_t *done;		/* hot touches completed, all threads */
	bool		bad;
	int			scans;
} thread_arg;

static void *
toucher(void *p)
{
	thread_arg *a = p;
	char		key[32];

	for (int i = 0; i < ITERS; i++)
	{
		int			h = (i + a->id) % HOT_KEYS;

		snprintf(key, sizeof(key), "hot-%d", h);
		touch(a->r, NOKV_HOT_READ, h % 3, key, 777000, 1);
		atomic_fetch_add(a->done, 1);
		if (a->churn)
		{
			snprintf(key, sizeof(key), "cold-%d-%d", a->id, i);
			touch(a->r, NOKV_HOT_READ, 0, key, 777000, 1);
		}
		else if (i % 4 == 0)
		{
			/* a small set of warm keys that never outgrows the ring */
			snprintf(key, sizeof(key), "warm-%d", i % 200);
			touch(a->r, NOKV_HOT_READ, 0, key, 777000, 1);
		}
	}
	return NULL;
}

/* a row is intact when its bytes spell one of the keys the threads touch */
static bool
row_intact(const nokv_hotkey *row)
{
	char		key[NOKV_HOT_KEY_PREFIX + 1];
	int			a,
				b;
	char		tail;

	if (row->truncated || row->key_len >= sizeof(key) || row->count == 0)
		return false;
	memcpy(key, row->key, row->key_len);
	key[row->key_len] = '\0';
	if (sscanf(key, "hot-%d%c", &a, &tail) == 1)
		return a >= 0 && a < HOT_KEYS && row->cf == a % 3;
	if (sscanf(key, "warm-%d%c", &a, &tail) == 1)
		return a >= 0 && a < 200 && row->cf == 0;
	if (sscanf(key, "cold-%d-%d%c", &a, &b, &tail) == 2)
		return a >= 0 && a < THREADS && b >= 0 && b < ITERS && row->cf == 0;
	return false;
}

static void *
scanner(void *p)
{
	thread_arg *a = p;
	nokv_hotkey top[16];

	while (!atomic_load(a->stop))
	{
		int			got = nokv_hotring_topn(&a->r->ctx, a->r->off, NOKV_HOT_READ, 777000, top, 16);
		uint64_t	after = atomic_load(a->done);
		uint64_t	hot_sum = 0;

		for (int i = 0; i < got; i++)
		{
			if (!row_intact(&top[i]) || (i > 0 && top[i - 1].count < top[i].count))
				a->bad = true;
			if (top[i].key[0] == 'h')
				hot_sum += top[i].count;
		}
		/* the hot rows can never have counted more touches than were done */
		if (hot_sum > after + THREADS)
			a->bad = true;
		a->scans++;
	}
	return NULL;
}

static void
run_threads(bool churn)
{
	rings		r;
	pthread_t	tid[THREADS + 1];
	thread_arg	args[THREADS + 1];
	_Atomic bool stop = false;
	_Atomic uint64_t done = 0;
	nokv_hotkey top[HOT_KEYS];
	nokv_hotring_stats st;
	bool		exact = true;
	int			got;
	uint64_t	per_key = (uint64_t) THREADS * ITERS / HOT_KEYS;
	const char *what = churn ? "with churn" : "no eviction";

	rings_open(&r, 1000, 60000, 6);
	for (int i = 0; i <= THREADS; i++)
	{
		args[i] = (thread_arg) {.r = &r, .id = i, .churn = churn, .stop = &stop, .done = &done};
		if (pthread_create(&tid[i], NULL, i < THREADS ? toucher : scanner, &args[i]) != 0)
			tap_bail("pthread_create failed");
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	atomic_store(&stop, true);
	pthread_join(tid[THREADS], NULL);

	ok(!args[THREADS].bad, "threads (%s): %d top-N scans saw only intact, ordered rows",
	   what, args[THREADS].scans);
	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 777000, top, HOT_KEYS);
	is_int(got, HOT_KEYS, "threads (%s): top-8 is full", what);
	for (int i = 0; i < got; i++)
	{
		if (top[i].key[0] != 'h')
			exact = false;
		else if (churn ? top[i].count < per_key * 9 / 10 : top[i].count != per_key)
			exact = false;
	}
	ok(exact, churn ? "threads (with churn): the hot keys lead with >= 90%% of their %llu touches" :
	   "threads (no eviction): every hot key counted exactly %llu", (unsigned long long) per_key);
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	ok(st.entries <= 1000, "threads (%s): entries within capacity", what);
	if (!churn)
	{
		uint64_t	warm = 0;

		for (int i = 0; i < 200; i++)
		{
			char		key[32];

			snprintf(key, sizeof(key), "warm-%d", i);
			warm += peek(&r, NOKV_HOT_READ, 0, key, 777000);
		}
		is_int(warm, THREADS * ITERS / 4, "threads (no eviction): warm keys add up exactly");
		is_int(st.evictions, 0, "threads (no eviction): nothing evicted");
	}
	rings_close(&r);
}

/* ---------- processes ---------- */

static void
test_processes(void)
{
	enum
	{
		CHILDREN = 4, PER_CHILD = 5000
	};
	rings		r;
	pid_t		pids[CHILDREN];
	int			clean = 0;
	bool		own_ok = true;
	nokv_hotkey top[2];
	char		key[32];

	rings_open(&r, 256, 60000, 6);
	for (int c = 0; c < CHILDREN; c++)
	{
		pids[c] = fork();
		if (pids[c] < 0)
			tap_bail("fork failed");
		if (pids[c] == 0)
		{
			for (int i = 0; i < PER_CHILD; i++)
			{
				touch(&r, NOKV_HOT_WRITE, 0, "common", 5000, 1);
				if (i % 5 == 0)
				{
					snprintf(key, sizeof(key), "child-%d", c);
					touch(&r, NOKV_HOT_WRITE, 0, key, 5000, 1);
				}
			}
			_exit(0);
		}
	}
	for (int c = 0; c < CHILDREN; c++)
	{
		int			status;

		if (waitpid(pids[c], &status, 0) == pids[c] && WIFEXITED(status) &&
			WEXITSTATUS(status) == 0)
			clean++;
	}
	is_int(clean, CHILDREN, "forked children exited cleanly");
	is_int(peek(&r, NOKV_HOT_WRITE, 0, "common", 5000), CHILDREN * PER_CHILD,
		   "the parent sees every child's touches of the shared key");
	for (int c = 0; c < CHILDREN; c++)
	{
		snprintf(key, sizeof(key), "child-%d", c);
		if (peek(&r, NOKV_HOT_WRITE, 0, key, 5000) != PER_CHILD / 5)
			own_ok = false;
	}
	ok(own_ok, "and each child's own key");
	ok(nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_WRITE, 5000, top, 2) == 2 &&
	   row_is(&top[0], 0, "common"), "top-N in the parent puts the shared key first");
	rings_close(&r);
}

/*
 * Processes killed in the middle of a touch may leave an entry pinned
 * (its inflight count raised forever).  Installing over such an entry must
 * give up after a bounded wait, never wait on it again, and leave the rest
 * of the ring working.
 */
static void
test_killed_touchers(void)
{
	enum
	{
		CAP = 16, KILLS = 5
	};
	rings		r;
	_Atomic int *started;
	char		key[32];
	nokv_hotring_stats st;
	nokv_hotkey top[CAP];
	struct timespec t0,
				t1;
	double		secs;
	int			got;
	bool		intact = true;

	rings_open(&r, CAP, 60000, 6);
	started = mmap(NULL, sizeof(*started), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (started == MAP_FAILED)
		tap_bail("mmap failed");
	for (int i = 0; i < CAP; i++)
	{
		snprintf(key, sizeof(key), "old-%d", i);
		touch(&r, NOKV_HOT_READ, 0, key, 1000, 1);
	}
	for (int k = 0; k < KILLS; k++)
	{
		pid_t		pid;

		atomic_store(started, 0);
		pid = fork();
		if (pid < 0)
			tap_bail("fork failed");
		if (pid == 0)
		{
			/* only tracked keys: a child never takes the lock, so killing it is safe */
			for (uint64_t i = 0;; i++)
			{
				snprintf(key, sizeof(key), "old-%d", (int) (i % CAP));
				touch(&r, NOKV_HOT_READ, 0, key, 1000, 1);
				if (i == 1000)
					atomic_store(started, 1);
			}
		}
		while (atomic_load(started) == 0)
			sched_yield();
		usleep((useconds_t) (xorshift() % 300));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}

	/* now replace every old key with much hotter new ones */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 4 * CAP; i++)
	{
		snprintf(key, sizeof(key), "new-%d", i);
		touch(&r, NOKV_HOT_READ, 0, key, 1000, 1000000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
	nokv_hotring_stats_get(&r.ctx, r.off, NOKV_HOT_READ, &st);
	ok(secs < 3.0, "installs over entries pinned by killed touchers do not hang (%.3f s, %llu given up)",
	   secs, (unsigned long long) st.dropped);
	ok(st.entries <= CAP, "entries within capacity");
	got = nokv_hotring_topn(&r.ctx, r.off, NOKV_HOT_READ, 1000, top, CAP);
	for (int i = 0; i < got; i++)
		if (strncmp(top[i].key, "new-", 4) != 0 || top[i].count < 1000000)
			intact = false;
	ok(got >= CAP - KILLS && intact,
	   "the new hot keys own every entry no dead toucher pins (%d of %d)", got, CAP);
	snprintf(key, sizeof(key), "new-%d", 4 * CAP);
	for (int i = 0; i < 200 && peek(&r, NOKV_HOT_READ, 0, key, 1000) == 0; i++)
		touch(&r, NOKV_HOT_READ, 0, key, 1000, 1000000);
	ok(peek(&r, NOKV_HOT_READ, 0, key, 1000) >= 1000000, "a hotter key still gets in");
	munmap(started, sizeof(*started));
	rings_close(&r);
}

int
main(void)
{
	test_basic();
	test_window();
	test_topn_order();
	test_zipf();
	test_bounded();
	test_long_keys();
	test_write_limit();
	test_disabled();
	run_threads(false);
	run_threads(true);
	test_processes();
	test_killed_touchers();
	return tap_done();
}
