/*-------------------------------------------------------------------------
 *
 * test_sst.c
 *	  Unit tests for SST building and reading.
 *
 * Round trip of a 100k-entry table (several versions per key, deletes,
 * three column families, range tombstones) under several option sets
 * (compressed / uncompressed, with and without bloom filter, tiny and big
 * blocks), read with and without the shared block cache: properties,
 * point lookups at many read versions against a model, forward, backward
 * and seeking iteration, tombstone queries, counters and verification.
 * Then the failure paths: out-of-order keys, abandon, empty and
 * tombstone-only tables, huge keys and values, every single-byte flip of a
 * small table (open/verify must report corruption and lookups must never
 * return wrong data), every truncation, wrong sizes, four threads sharing
 * one reader over a small cache, and three processes sharing one cache
 * through different mappings of the region.
 *
 * test/engine/test_sst.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE				/* memfd_create */

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/block.h"
#include "nokv/cache.h"
#include "nokv/file.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "nokv/sst.h"
#include "tap.h"

/* ---------- region (platform + heap + cache) ---------- */

typedef struct region
{
	char	   *mem;
	nokv_platform plat;
	nokv_ctx	ctx;
	nokv_off	cache;
} region;

static void
region_init(region *r, size_t capacity, size_t heap_size)
{
	size_t		plat = NOKV_ALIGN(nokv_pthread_platform_size(), 64);
	size_t		cache = NOKV_ALIGN(nokv_cache_shared_size(), 64);
	size_t		heap = nokv_heap_header_size() + heap_size;
	size_t		size = 64 + plat + cache + heap + nokv_heap_header_size() + 4096;

	r->mem = aligned_alloc(64, NOKV_ALIGN(size, 64));
	memset(r->mem, 0, size);
	nokv_pthread_platform_format(r->mem + 64);
	nokv_pthread_platform_bind(&r->plat, r->mem + 64);
	r->cache = 64 + plat;
	r->ctx.base = r->mem;
	r->ctx.plat = &r->plat;
	r->ctx.heap = r->cache + cache;
	nokv_heap_format(&r->ctx, r->ctx.heap, heap);
	nokv_cache_format(&r->ctx, r->cache, capacity);
}

/* ---------- the data set ---------- */

typedef struct entry
{
	char	   *key;			/* internal key */
	size_t		klen;
	char	   *val;			/* value record */
	size_t		vlen;
} entry;

typedef struct dataset
{
	entry	   *e;
	int			n;
	nokv_range_tombstone t[8];
	int			nt;
} dataset;

static int
entry_cmp(const void *a, const void *b)
{
	const entry *x = a,
			   *y = b;

	return nokv_ikey_compare(x->key, x->klen, y->key, y->klen);
}

static void
add_entry(dataset *d, int cf, const char *ukey, size_t ulen, uint64_t version,
		  int kind)
{
	entry	   *e = &d->e[d->n++];

	e->klen = nokv_ikey_size(ulen);
	e->key = malloc(e->klen);
	nokv_ikey_encode(e->key, cf, ukey, ulen, version, kind);
	if (kind == NOKV_KIND_DELETE)
	{
		e->vlen = 0;
		e->val = malloc(1);
	}
	else
	{
		/* value record: flags 0 + text-like payload (compresses ~2:1) */
		size_t		plen = (size_t) ((version * 7 + ulen) % 120);

		e->vlen = 1 + plen;
		e->val = malloc(e->vlen);
		e->val[0] = 0;
		for (size_t i = 0; i < plen; i++)
			e->val[1 + i] = (char) ("value-of-"[i % 9] + (i / 9 == version % 5 ? 1 : 0));
		if (plen >= 8)
			memcpy(e->val + 1, &version, 8);
	}
}

/* 100k point entries: even-numbered user keys of cf 0, plus cf 1 and 2 */
static void
make_dataset(dataset *d)
{
	char		k[32];

	d->e = calloc(110000, sizeof(entry));
	d->n = 0;
	for (int i = 0; i < 45000; i++)
	{
		int			n = snprintf(k, sizeof(k), "user%08d", i * 2);
		int			versions = 1 + i % 3;

		for (int j = 0; j < versions; j++)
			add_entry(d, 0, k, n, 10 + (uint64_t) (i % 100) + (uint64_t) j * 50,
					  (i + j) % 11 == 0 ? NOKV_KIND_DELETE : NOKV_KIND_PUT);
	}
	for (int i = 0; i < 5000; i++)
	{
		int			n = snprintf(k, sizeof(k), "lock%05d", i);

		add_entry(d, 1, k, n, 5 + (uint64_t) i % 7, NOKV_KIND_PUT);
		add_entry(d, 2, k, n, 1000 + (uint64_t) i, i % 4 ? NOKV_KIND_PUT : NOKV_KIND_DELETE);
	}
	add_entry(d, 2, "", 0, 1, NOKV_KIND_PUT);	/* empty user key */
	qsort(d->e, d->n, sizeof(entry), entry_cmp);

	d->t[0] = (nokv_range_tombstone)
	{
		.cf = 0,.start = "user00001000",.start_len = 12,.end = "user00002000",.end_len = 12,.version = 60
	};
	d->t[1] = (nokv_range_tombstone)
	{
		.cf = 0,.start = "user00030000",.start_len = 12,.end = "user00030500",.end_len = 12,.version = 5
	};
	d->t[2] = (nokv_range_tombstone)
	{
		.cf = 0,.start = "user00001500",.start_len = 12,.end = "user00001600",.end_len = 12,.version = 90
	};
	/* widens the table's range below its first key and above its last */
	d->t[3] = (nokv_range_tombstone)
	{
		.cf = 0,.start = "a",.start_len = 1,.end = "b",.end_len = 1,.version = 3
	};
	d->t[4] = (nokv_range_tombstone)
	{
		.cf = 2,.start = "lock04000",.start_len = 9,.end = "zzz",.end_len = 3,.version = 2000
	};
	d->nt = 5;
}

static void
free_dataset(dataset *d)
{
	for (int i = 0; i < d->n; i++)
	{
		free(d->e[i].key);
		free(d->e[i].val);
	}
	free(d->e);
}

/* index of the first entry >= key */
static int
lower_bound(const dataset *d, const char *key, size_t klen)
{
	int			lo = 0,
				hi = d->n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (nokv_ikey_compare(d->e[mid].key, d->e[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* model lookup: newest entry of lkey with version <= rv, by a linear scan */
static int
model_get(const dataset *d, const char *lkey, size_t lkey_len, uint64_t rv)
{
	char	   *probe = malloc(lkey_len + NOKV_IKEY_TRAILER);
	int			best = -1;
	uint64_t	best_v = 0;

	memcpy(probe, lkey, lkey_len);
	nokv_put_be64(probe + lkey_len, ~(uint64_t) NOKV_VERSION_MAX);
	probe[lkey_len + 8] = NOKV_KIND_SEEK;
	for (int i = lower_bound(d, probe, lkey_len + NOKV_IKEY_TRAILER); i < d->n; i++)
	{
		nokv_ikey_view v = {0};

		nokv_ikey_parse(d->e[i].key, d->e[i].klen, &v);
		if (v.lkey_len != lkey_len || memcmp(v.lkey, lkey, lkey_len) != 0)
			break;
		if (v.version <= rv && (best < 0 || v.version > best_v))
		{
			best = i;
			best_v = v.version;
		}
	}
	free(probe);
	return best;
}

static uint64_t
model_tombstone(const dataset *d, int cf, const char *k, size_t klen, uint64_t rv)
{
	uint64_t	best = 0;

	for (int i = 0; i < d->nt; i++)
	{
		const nokv_range_tombstone *t = &d->t[i];

		if (t->cf == cf && t->version <= rv && t->version > best &&
			nokv_lkey_compare(t->start, t->start_len, k, klen) <= 0 &&
			nokv_lkey_compare(k, klen, t->end, t->end_len) < 0)
			best = t->version;
	}
	return best;
}

/* ---------- building ---------- */

static nokv_sst_options
options(size_t block_size, int restart, int bloom, bool compression)
{
	nokv_sst_options o = {
		.block_size = block_size,
		.restart_interval = restart,
		.bloom_bits_per_key = bloom,
		.compression = compression,
	};

	return o;
}

static int
build(const char *dir, uint64_t number, const nokv_sst_options *o,
	  const dataset *d, int from, int to, bool tombstones, nokv_sst_props *props)
{
	nokv_error	err;
	nokv_sst_builder *b = nokv_sst_builder_new(dir, number, o, &err);
	int			rc;

	if (b == NULL)
	{
		tap_diag("builder_new: %s", err.msg);
		return err.code;
	}
	for (int i = from; i < to; i++)
	{
		rc = nokv_sst_builder_add(b, d->e[i].key, d->e[i].klen, d->e[i].val,
								  d->e[i].vlen, &err);
		if (rc != NOKV_OK)
		{
			tap_diag("add: %s", err.msg);
			nokv_sst_builder_abandon(b);
			return rc;
		}
	}
	for (int i = 0; tombstones && i < d->nt; i++)
		nokv_sst_builder_add_range_tombstone(b, &d->t[i], &err);
	rc = nokv_sst_builder_finish(b, props, &err);
	if (rc != NOKV_OK)
		tap_diag("finish: %s", err.msg);
	return rc;
}

static bool
file_exists(const char *dir, uint64_t number, const char *suffix)
{
	char		path[4096];
	struct stat st;

	snprintf(path, sizeof(path), NOKV_SST_FMT "%s", dir, (unsigned long long) number,
			 suffix);
	return stat(path, &st) == 0;
}

/* ---------- round trip ---------- */

static int
check_iter_forward(nokv_iiter *it, const dataset *d)
{
	int			bad = 0,
				i = 0;

	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it), i++)
	{
		size_t		klen,
					vlen;
		const char *k = nokv_iiter_key(it, &klen);
		const char *v = nokv_iiter_value(it, &vlen);

		if (i >= d->n || klen != d->e[i].klen || memcmp(k, d->e[i].key, klen) != 0 ||
			vlen != d->e[i].vlen || memcmp(v, d->e[i].val, vlen) != 0)
			bad++;
	}
	return bad + (i != d->n) + (nokv_iiter_status(it, NULL) != NOKV_OK);
}

static int
check_iter_backward(nokv_iiter *it, const dataset *d)
{
	int			bad = 0,
				i = d->n - 1;

	for (nokv_iiter_seek_to_last(it); nokv_iiter_valid(it); nokv_iiter_prev(it), i--)
	{
		size_t		klen;
		const char *k = nokv_iiter_key(it, &klen);

		if (i < 0 || klen != d->e[i].klen || memcmp(k, d->e[i].key, klen) != 0)
			bad++;
	}
	return bad + (i != -1) + (nokv_iiter_status(it, NULL) != NOKV_OK);
}

static int
check_iter_seeks(nokv_iiter *it, const dataset *d, int count)
{
	int			bad = 0;
	uint64_t	x = 12345;

	for (int s = 0; s < count; s++)
	{
		int			i,
					want;
		char		probe[64];
		size_t		plen;
		nokv_ikey_view v = {0};

		x = x * 6364136223846793005ULL + 1;
		i = (int) ((x >> 33) % d->n);
		nokv_ikey_parse(d->e[i].key, d->e[i].klen, &v);
		/* alternately exactly at an entry, and at an absent odd key */
		if (s % 2 == 0)
		{
			plen = d->e[i].klen;
			memcpy(probe, d->e[i].key, plen);
		}
		else
		{
			char		uk[32];
			int			n = snprintf(uk, sizeof(uk), "user%08d", (int) ((x >> 20) % 90000) | 1);

			plen = nokv_ikey_size(n);
			nokv_ikey_encode(probe, 0, uk, n, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		}
		want = lower_bound(d, probe, plen);
		nokv_iiter_seek(it, probe, plen);
		if (want == d->n)
		{
			bad += nokv_iiter_valid(it);
			continue;
		}
		/* walk a few steps both ways from there */
		for (int step = 0; step < 6 && want < d->n; step++, want++)
		{
			size_t		klen;
			const char *k;

			if (!nokv_iiter_valid(it))
			{
				bad++;
				break;
			}
			k = nokv_iiter_key(it, &klen);
			if (klen != d->e[want].klen || memcmp(k, d->e[want].key, klen) != 0)
				bad++;
			nokv_iiter_next(it);
		}
		for (int step = 0; step < 3 && want > 0; step++)
		{
			nokv_iiter_prev(it);
			want--;
			if (!nokv_iiter_valid(it))
			{
				bad++;
				break;
			}
			else
			{
				size_t		klen;
				const char *k = nokv_iiter_key(it, &klen);

				if (klen != d->e[want].klen || memcmp(k, d->e[want].key, klen) != 0)
					bad++;
			}
		}
	}
	return bad;
}

/* point lookups of every stride-th entry's key at several versions, plus absent keys */
static int
check_gets(nokv_sst_reader *r, const dataset *d, int stride)
{
	nokv_buf	val = {0};
	nokv_error	err;
	int			bad = 0;

	for (int i = 0; i < d->n; i += stride)
	{
		nokv_ikey_view v = {0};
		uint64_t	rvs[4];

		nokv_ikey_parse(d->e[i].key, d->e[i].klen, &v);
		rvs[0] = v.version;
		rvs[1] = NOKV_VERSION_MAX;
		rvs[2] = v.version ? v.version - 1 : 0;
		rvs[3] = v.version + 49;
		for (int j = 0; j < 4; j++)
		{
			int			kind = -1;
			uint64_t	version = 0;
			int			want = model_get(d, v.lkey, v.lkey_len, rvs[j]);
			int			rc = nokv_sst_get(r, v.lkey, v.lkey_len, rvs[j], &kind,
										  &version, &val, &err);

			if (want < 0)
			{
				if (rc != 0)
					bad++;
			}
			else if (rc != 1 ||
					 kind != nokv_ikey_kind(d->e[want].key, d->e[want].klen) ||
					 version != nokv_ikey_version(d->e[want].key, d->e[want].klen) ||
					 val.len != d->e[want].vlen ||
					 (val.len && memcmp(val.data, d->e[want].val, val.len) != 0))
				bad++;
		}
	}
	/* absent keys: odd numbers, other column families, beyond the ends */
	for (int i = 1; i < 90000; i += stride * 2 + 1)
	{
		char		lk[32];
		int			kind;
		uint64_t	version;
		int			n = snprintf(lk, sizeof(lk), "%cuser%08d", 0, i | 1);

		if (nokv_sst_get(r, lk, n, NOKV_VERSION_MAX, &kind, &version, &val, &err) != 0)
			bad++;
		lk[0] = 1;
		if (nokv_sst_get(r, lk, n, NOKV_VERSION_MAX, &kind, &version, &val, &err) != 0)
			bad++;
	}
	{
		int			kind;
		uint64_t	version;

		if (nokv_sst_get(r, "\x03zzz", 4, NOKV_VERSION_MAX, &kind, &version, &val, &err) != 0 ||
			nokv_sst_get(r, "\0", 1, NOKV_VERSION_MAX, &kind, &version, &val, &err) != 0)
			bad++;
	}
	nokv_buf_free(&val);
	return bad;
}

static int
check_tombstones(nokv_sst_reader *r, const dataset *d)
{
	nokv_range_tombstone *ts;
	int			n,
				bad = 0;
	nokv_error	err;
	const char *probes[] = {"a", "a0", "b", "user00000999", "user00001000", "user00001550",
	"user00001600", "user00001999", "user00002000", "user00030100", "lock04000", "lock09999", "zzz", ""};

	if (nokv_sst_range_tombstones(r, &ts, &n, &err) != NOKV_OK || n != d->nt)
		return 1;
	for (int i = 1; i < n; i++)
		if (nokv_sst_tombstone_compare(&ts[i - 1], &ts[i]) > 0)
			bad++;
	for (int i = 0; i < n; i++)
	{
		bool		found = false;

		for (int j = 0; j < d->nt; j++)
			if (ts[i].cf == d->t[j].cf && ts[i].version == d->t[j].version &&
				ts[i].start_len == d->t[j].start_len && ts[i].end_len == d->t[j].end_len &&
				memcmp(ts[i].start, d->t[j].start, ts[i].start_len) == 0 &&
				memcmp(ts[i].end, d->t[j].end, ts[i].end_len) == 0)
				found = true;
		bad += !found;
	}
	free(ts);

	for (int cf = 0; cf < 3; cf++)
		for (int p = 0; p < (int) (sizeof(probes) / sizeof(probes[0])); p++)
		{
			uint64_t	rvs[] = {0, 4, 5, 59, 60, 61, 89, 90, 1999, 2000, NOKV_VERSION_MAX};

			for (int j = 0; j < (int) (sizeof(rvs) / sizeof(rvs[0])); j++)
			{
				uint64_t	got = 77;

				if (nokv_sst_max_covering_tombstone(r, cf, probes[p], strlen(probes[p]),
													rvs[j], &got, &err) != NOKV_OK ||
					got != model_tombstone(d, cf, probes[p], strlen(probes[p]), rvs[j]))
					bad++;
			}
		}
	return bad;
}

static void
check_props(const char *tag, const nokv_sst_props *p, const dataset *d, bool tombs)
{
	uint64_t	deletions = 0,
				keyb = 0,
				valb = 0,
				minv = UINT64_MAX,
				maxv = 0;
	char		lo[32],
				hi[32];

	for (int i = 0; i < d->n; i++)
	{
		uint64_t	v = nokv_ikey_version(d->e[i].key, d->e[i].klen);

		deletions += nokv_ikey_kind(d->e[i].key, d->e[i].klen) == NOKV_KIND_DELETE;
		keyb += d->e[i].klen;
		valb += d->e[i].vlen;
		minv = v < minv ? v : minv;
		maxv = v > maxv ? v : maxv;
	}
	if (tombs)
	{
		minv = 1;				/* the empty-key entry */
		maxv = 1000 + 4999 > 2000 ? 1000 + 4999 : 2000;
	}
	ok(p->entries == (uint64_t) d->n && p->deletions == deletions &&
	   p->raw_key_bytes == keyb && p->raw_value_bytes == valb &&
	   p->range_deletions == (uint64_t) (tombs ? d->nt : 0),
	   "%s: entry counts in properties", tag);
	ok(p->min_version == minv && p->max_version == maxv, "%s: version range", tag);
	ok(p->data_blocks > 0, "%s: %llu data blocks", tag, (unsigned long long) p->data_blocks);

	/* smallest: the tombstone ["a","b")@3 of cf 0 sorts below every entry */
	if (tombs)
	{
		nokv_ikey_encode(lo, 0, "a", 1, 3, NOKV_KIND_RANGE_DELETE);
		nokv_ikey_encode(hi, 2, "zzz", 3, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		ok(p->smallest_len == 11 && memcmp(p->smallest, lo, 11) == 0,
		   "%s: smallest widened by a tombstone start", tag);
		ok(p->largest_len == 13 && memcmp(p->largest, hi, 13) == 0,
		   "%s: largest widened by a tombstone end (max version, seek kind)", tag);
	}
	else
	{
		ok(p->smallest_len == d->e[0].klen &&
		   memcmp(p->smallest, d->e[0].key, p->smallest_len) == 0,
		   "%s: smallest is the first key", tag);
		ok(p->largest_len == d->e[d->n - 1].klen &&
		   memcmp(p->largest, d->e[d->n - 1].key, p->largest_len) == 0,
		   "%s: largest is the last key", tag);
	}
}

static void
test_round_trip(const dataset *d)
{
	struct
	{
		const char *name;
		nokv_sst_options o;
	}			configs[] = {
		{"default", {4096, 16, 10, true}},
		{"uncompressed-nobloom", {4096, 16, 0, false}},
		{"tiny-blocks", {256, 1, 10, true}},
		{"big-blocks", {65536, 32, 4, false}},
	};
	char	   *dir = tap_tmpdir("sst");
	region		reg;

	region_init(&reg, 32 << 20, 48 << 20);

	for (int c = 0; c < (int) (sizeof(configs) / sizeof(configs[0])); c++)
	{
		const char *tag = configs[c].name;
		nokv_sst_props props;
		nokv_sst_reader *r;
		nokv_sst_counters counters = {0};
		nokv_sst_env env = {.ctx = &reg.ctx,.cache = reg.cache,.counters = &counters};
		nokv_sst_env nocache = {.ctx = &reg.ctx,.cache = 0,.counters = NULL};
		nokv_error	err;
		nokv_iiter *it;
		uint64_t	size;
		char		path[4096];
		uint64_t	number = 10 + c;

		if (build(dir, number, &configs[c].o, d, 0, d->n, true, &props) != NOKV_OK)
		{
			ok(0, "%s: build", tag);
			continue;
		}
		snprintf(path, sizeof(path), NOKV_SST_FMT, dir, (unsigned long long) number);
		ok(file_exists(dir, number, "") && !file_exists(dir, number, NOKV_TMP_SUFFIX),
		   "%s: final file present, temporary gone", tag);
		nokv_file_size(path, &size, &err);
		is_int(props.file_size, size, "%s: file_size is the file's size", tag);
		tap_diag("%s: %llu bytes, %llu blocks", tag, (unsigned long long) size,
				 (unsigned long long) props.data_blocks);
		check_props(tag, &props, d, true);

		is_int(nokv_sst_open(&env, dir, number, size, &r, &err), NOKV_OK, "%s: open", tag);
		{
			const nokv_sst_props *rp = nokv_sst_get_props(r);

			ok(rp->entries == props.entries && rp->deletions == props.deletions &&
			   rp->data_blocks == props.data_blocks && rp->file_size == size &&
			   rp->min_version == props.min_version && rp->max_version == props.max_version &&
			   rp->smallest_len == props.smallest_len &&
			   memcmp(rp->smallest, props.smallest, rp->smallest_len) == 0 &&
			   rp->largest_len == props.largest_len &&
			   memcmp(rp->largest, props.largest, rp->largest_len) == 0,
			   "%s: stored properties match the builder's", tag);
		}
		is_int(nokv_sst_verify(r, &err), NOKV_OK, "%s: verify", tag);

		is_int(check_gets(r, d, c == 0 ? 2 : 7), 0, "%s: point lookups match the model", tag);
		if (configs[c].o.bloom_bits_per_key)
		{
			ok(counters.bloom_checked > 0 && counters.bloom_useful > 0 &&
			   counters.bloom_useful < counters.bloom_checked,
			   "%s: bloom counters (%llu useful of %llu)", tag,
			   (unsigned long long) counters.bloom_useful,
			   (unsigned long long) counters.bloom_checked);
		}
		else
			ok(counters.bloom_checked == 0, "%s: no filter, no bloom checks", tag);
		ok(counters.blocks_read > 0, "%s: blocks read from the file", tag);

		/* with everything cached, the same lookups again read nothing */
		{
			uint64_t	before = counters.blocks_read;

			check_gets(r, d, c == 0 ? 2 : 7);
			is_int(counters.blocks_read, before, "%s: second pass served by the cache", tag);
		}

		it = nokv_sst_iter_new(r);
		is_int(check_iter_forward(it, d), 0, "%s: forward iteration", tag);
		is_int(check_iter_backward(it, d), 0, "%s: backward iteration", tag);
		is_int(check_iter_seeks(it, d, 2000), 0, "%s: seeks with next/prev", tag);
		nokv_iiter_destroy(it);
		is_int(check_tombstones(r, d), 0, "%s: range tombstones", tag);
		nokv_sst_close(r);

		/*
		 * The same without a cache: every lookup then reads the whole
		 * filter and index block, so only a sample.
		 */
		is_int(nokv_sst_open_path(&nocache, path, number, &r, &err), NOKV_OK,
			   "%s: open without cache", tag);
		is_int(check_gets(r, d, 997), 0, "%s: lookups without cache", tag);
		it = nokv_sst_iter_new(r);
		is_int(check_iter_backward(it, d), 0, "%s: backward iteration without cache", tag);
		nokv_iiter_destroy(it);
		is_int(check_tombstones(r, d), 0, "%s: tombstones without cache", tag);
		nokv_sst_close(r);

		nokv_cache_erase_file(&reg.ctx, reg.cache, number);
		nokv_sst_props_free(&props);
	}
	{
		uint64_t	hits,
					misses,
					bytes,
					cap;

		nokv_cache_stats(&reg.ctx, reg.cache, &hits, &misses, &bytes, &cap);
		is_int(bytes, 0, "cache empty after erasing every table");
		ok(hits > misses, "cache hits %llu, misses %llu", (unsigned long long) hits,
		   (unsigned long long) misses);
	}
	free(reg.mem);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- builder contract ---------- */

static void
test_builder_errors(const dataset *d)
{
	char	   *dir = tap_tmpdir("sstb");
	nokv_sst_options o = options(4096, 16, 10, true);
	nokv_error	err;
	nokv_sst_builder *b;
	char		k[16];

	b = nokv_sst_builder_new(dir, 1, &o, &err);
	ok(b != NULL, "builder created");
	ok(file_exists(dir, 1, NOKV_TMP_SUFFIX) && !file_exists(dir, 1, ""),
	   "builder writes the temporary name");
	is_int(nokv_sst_builder_add(b, d->e[5].key, d->e[5].klen, d->e[5].val, d->e[5].vlen, &err),
		   NOKV_OK, "add");
	is_int(nokv_sst_builder_add(b, d->e[5].key, d->e[5].klen, "x", 1, &err),
		   NOKV_INVALID_ARGUMENT, "duplicate key rejected");
	ok(strstr(err.msg, "not strictly increasing") != NULL, "message says why");
	is_int(nokv_sst_builder_add(b, d->e[4].key, d->e[4].klen, "x", 1, &err),
		   NOKV_INVALID_ARGUMENT, "smaller key rejected");
	is_int(nokv_sst_builder_add(b, "short", 5, "x", 1, &err),
		   NOKV_INVALID_ARGUMENT, "non-internal key rejected");
	nokv_ikey_encode(k, 0, "zz", 2, 1, NOKV_KIND_RANGE_DELETE);
	is_int(nokv_sst_builder_add(b, k, 12, "", 0, &err), NOKV_INVALID_ARGUMENT,
		   "range-delete kind rejected among point entries");
	is_int(nokv_sst_builder_add(b, d->e[6].key, d->e[6].klen, d->e[6].val, d->e[6].vlen, &err),
		   NOKV_OK, "the builder is still usable after a rejected key");
	{
		nokv_range_tombstone bad = {.cf = 0,.start = "b",.start_len = 1,.end = "a",.end_len = 1,.version = 1};
		nokv_range_tombstone empty = {.cf = 0,.start = "b",.start_len = 1,.end = "b",.end_len = 1,.version = 1};
		nokv_range_tombstone cf = {.cf = 256,.start = "a",.start_len = 1,.end = "b",.end_len = 1,.version = 1};

		is_int(nokv_sst_builder_add_range_tombstone(b, &bad, &err), NOKV_INVALID_ARGUMENT,
			   "inverted tombstone rejected");
		is_int(nokv_sst_builder_add_range_tombstone(b, &cf, &err), NOKV_INVALID_ARGUMENT,
			   "tombstone with a bad column family rejected");
		is_int(nokv_sst_builder_add_range_tombstone(b, &empty, &err), NOKV_OK,
			   "empty tombstone accepted");
		is_int(nokv_sst_builder_entries(b), 2, "an empty tombstone is dropped");
	}
	ok(nokv_sst_builder_estimated_size(b) > 0, "estimated size counts the open block");
	nokv_sst_builder_abandon(b);
	ok(!file_exists(dir, 1, NOKV_TMP_SUFFIX) && !file_exists(dir, 1, ""),
	   "abandon removes the temporary file");

	/* the estimate tracks the final size */
	b = nokv_sst_builder_new(dir, 2, &o, &err);
	{
		uint64_t	est;
		nokv_sst_props props;

		for (int i = 0; i < 20000; i++)
			nokv_sst_builder_add(b, d->e[i].key, d->e[i].klen, d->e[i].val, d->e[i].vlen, &err);
		est = nokv_sst_builder_estimated_size(b);
		is_int(nokv_sst_builder_entries(b), 20000, "entries counted");
		nokv_sst_builder_finish(b, &props, &err);
		ok(est > props.file_size * 3 / 4 && est <= props.file_size,
		   "estimated size %llu close to the final %llu", (unsigned long long) est,
		   (unsigned long long) props.file_size);
		nokv_sst_props_free(&props);
	}

	ok(nokv_sst_builder_new("/nonexistent/nokv/dir", 1, &o, &err) == NULL &&
	   err.code == NOKV_IO_ERROR, "builder in a missing directory fails");
	o.block_size = 0;
	ok(nokv_sst_builder_new(dir, 3, &o, &err) == NULL && err.code == NOKV_INVALID_ARGUMENT,
	   "bad options rejected");

	tap_rmdir(dir);
	free(dir);
}

/* empty tables, tombstone-only tables, huge keys and values */
static void
test_special_tables(void)
{
	char	   *dir = tap_tmpdir("ssts");
	nokv_sst_options o = options(4096, 16, 10, true);
	region		reg;
	nokv_sst_env env;
	nokv_error	err;
	nokv_sst_props props;
	nokv_sst_reader *r;
	nokv_sst_builder *b;
	nokv_iiter *it;
	nokv_buf	val = {0};
	int			kind;
	uint64_t	version;

	region_init(&reg, 8 << 20, 16 << 20);
	env = (nokv_sst_env)
	{
		.ctx = &reg.ctx,.cache = reg.cache
	};

	/* empty */
	b = nokv_sst_builder_new(dir, 1, &o, &err);
	is_int(nokv_sst_builder_finish(b, &props, &err), NOKV_OK, "empty table builds");
	ok(props.entries == 0 && props.smallest == NULL && props.largest == NULL &&
	   props.data_blocks == 0, "empty table properties");
	is_int(nokv_sst_open(&env, dir, 1, props.file_size, &r, &err), NOKV_OK, "empty table opens");
	is_int(nokv_sst_get(r, "\0a", 2, NOKV_VERSION_MAX, &kind, &version, &val, &err), 0,
		   "nothing in the empty table");
	it = nokv_sst_iter_new(r);
	nokv_iiter_seek_to_first(it);
	ok(!nokv_iiter_valid(it) && nokv_iiter_status(it, NULL) == NOKV_OK, "empty iteration");
	nokv_iiter_seek_to_last(it);
	ok(!nokv_iiter_valid(it), "empty reverse iteration");
	nokv_iiter_destroy(it);
	is_int(nokv_sst_verify(r, &err), NOKV_OK, "empty table verifies");
	nokv_sst_close(r);
	nokv_sst_props_free(&props);

	/* tombstones only */
	b = nokv_sst_builder_new(dir, 2, &o, &err);
	{
		nokv_range_tombstone t = {.cf = 1,.start = "k",.start_len = 1,.end = "q",.end_len = 1,.version = 9};

		nokv_sst_builder_add_range_tombstone(b, &t, &err);
	}
	is_int(nokv_sst_builder_finish(b, &props, &err), NOKV_OK, "tombstone-only table builds");
	ok(props.entries == 0 && props.range_deletions == 1 && props.smallest_len == 11 &&
	   props.largest_len == 11 && props.min_version == 9 && props.max_version == 9,
	   "tombstone-only properties");
	is_int(nokv_sst_open(&env, dir, 2, 0, &r, &err), NOKV_OK, "tombstone-only table opens");
	nokv_sst_max_covering_tombstone(r, 1, "m", 1, 100, &version, &err);
	is_int(version, 9, "its tombstone covers");
	is_int(nokv_sst_verify(r, &err), NOKV_OK, "tombstone-only table verifies");
	nokv_sst_close(r);
	nokv_sst_props_free(&props);

	/* a 60 KiB key and a 3 MiB value */
	{
		size_t		klen = 60 * 1024,
					vlen = 3 << 20;
		char	   *ukey = malloc(klen);
		char	   *ikey = malloc(nokv_ikey_size(klen));
		char	   *value = malloc(vlen);
		char		small[12];

		memset(ukey, 'K', klen);
		for (size_t i = 0; i < vlen; i++)
			value[i] = (char) (i * 7 / 1000);
		value[0] = 0;
		b = nokv_sst_builder_new(dir, 3, &o, &err);
		nokv_ikey_encode(small, 0, "A", 1, 1, NOKV_KIND_PUT);
		nokv_sst_builder_add(b, small, 11, "\0a", 2, &err);
		nokv_ikey_encode(ikey, 0, ukey, klen, 5, NOKV_KIND_PUT);
		is_int(nokv_sst_builder_add(b, ikey, nokv_ikey_size(klen), value, vlen, &err), NOKV_OK,
			   "huge entry added");
		nokv_ikey_encode(ikey, 0, ukey, klen, 4, NOKV_KIND_PUT);
		nokv_sst_builder_add(b, ikey, nokv_ikey_size(klen), "\0small", 6, &err);
		is_int(nokv_sst_builder_finish(b, &props, &err), NOKV_OK, "huge table builds");
		is_int(nokv_sst_open(&env, dir, 3, 0, &r, &err), NOKV_OK, "huge table opens");
		nokv_ikey_encode(ikey, 0, ukey, klen, 0, NOKV_KIND_PUT);
		is_int(nokv_sst_get(r, ikey, klen + 1, NOKV_VERSION_MAX, &kind, &version, &val, &err), 1,
			   "huge key found");
		ok(version == 5 && val.len == vlen && memcmp(val.data, value, vlen) == 0,
		   "huge value intact");
		is_int(nokv_sst_get(r, ikey, klen + 1, 4, &kind, &version, &val, &err), 1,
			   "older version of the huge key");
		ok(version == 4 && val.len == 6, "older version intact");
		it = nokv_sst_iter_new(r);
		{
			int			n = 0;

			for (nokv_iiter_seek_to_last(it); nokv_iiter_valid(it); nokv_iiter_prev(it))
				n++;
			is_int(n, 3, "huge table iterates backwards");
		}
		nokv_iiter_destroy(it);
		is_int(nokv_sst_verify(r, &err), NOKV_OK, "huge table verifies");
		nokv_sst_close(r);
		nokv_sst_props_free(&props);
		free(ukey);
		free(ikey);
		free(value);
	}

	nokv_buf_free(&val);
	free(reg.mem);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- corruption ---------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;

	fseek(f, 0, SEEK_END);
	*len = (size_t) ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*len);
	if (fread(buf, 1, *len, f) != *len)
		tap_bail("short read of %s", path);
	fclose(f);
	return buf;
}

static void
spit(const char *path, const char *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	if (fwrite(data, 1, len, f) != len)
		tap_bail("short write of %s", path);
	fclose(f);
}

/*
 * Open the (damaged) table and use it every way there is.  Returns 1 if
 * some operation reported corruption, 0 if everything looked fine, and -1
 * if any operation returned data that differs from the original.
 */
static int
probe_table(region *reg, const char *path, uint64_t number, const dataset *d,
			int from, int to, char *which, size_t which_len)
{
	nokv_sst_env env = {.ctx = &reg->ctx,.cache = reg->cache};
	nokv_sst_reader *r;
	nokv_error	err;
	nokv_buf	val = {0};
	nokv_iiter *it;
	int			corrupt = 0,
				wrong = 0;
	int			i;

	snprintf(which, which_len, "open");
	if (nokv_sst_open_path(&env, path, number, &r, &err) != NOKV_OK)
	{
		nokv_cache_erase_file(&reg->ctx, reg->cache, number);
		return err.code == NOKV_CORRUPTION ? 1 : -1;
	}

	for (i = from; i < to; i++)
	{
		nokv_ikey_view v = {0};
		int			kind;
		uint64_t	version;
		int			rc;

		nokv_ikey_parse(d->e[i].key, d->e[i].klen, &v);
		rc = nokv_sst_get(r, v.lkey, v.lkey_len, v.version, &kind, &version, &val, &err);
		if (rc == -NOKV_CORRUPTION)
		{
			if (!corrupt)
				snprintf(which, which_len, "get");
			corrupt = 1;
		}
		else if (rc != 1 || version != v.version || val.len != d->e[i].vlen ||
				 (val.len && memcmp(val.data, d->e[i].val, val.len) != 0))
			wrong++;
	}

	it = nokv_sst_iter_new(r);
	i = from;
	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it), i++)
	{
		size_t		klen;
		const char *k = nokv_iiter_key(it, &klen);

		if (i >= to || klen != d->e[i].klen || memcmp(k, d->e[i].key, klen) != 0)
			wrong++;
	}
	if (nokv_iiter_status(it, &err) == NOKV_CORRUPTION)
	{
		if (!corrupt)
			snprintf(which, which_len, "iterator");
		corrupt = 1;
	}
	else if (i != to)
		wrong++;
	nokv_iiter_destroy(it);

	{
		uint64_t	tv;
		int			rc = nokv_sst_max_covering_tombstone(r, 0, "user00001500", 12,
														 NOKV_VERSION_MAX, &tv, &err);

		if (rc == NOKV_CORRUPTION)
		{
			if (!corrupt)
				snprintf(which, which_len, "tombstones");
			corrupt = 1;
		}
		else if (rc != NOKV_OK || tv != 90)
			wrong++;
	}

	if (nokv_sst_verify(r, &err) == NOKV_CORRUPTION)
	{
		if (!corrupt)
			snprintf(which, which_len, "verify");
		corrupt = 1;
	}
	nokv_sst_close(r);
	nokv_cache_erase_file(&reg->ctx, reg->cache, number);
	nokv_buf_free(&val);
	return wrong ? -1 : corrupt;
}

static void
test_corruption(const dataset *d)
{
	char	   *dir = tap_tmpdir("sstc");
	nokv_sst_options o = options(512, 4, 10, true);
	nokv_sst_props props;
	region		reg;
	char		path[4096],
				which[32];
	char	   *orig;
	size_t		len;
	int			from = 2000,
				to = 2090;			/* includes keys under the tombstones */
	int			missed = 0,
				wrong = 0;
	int			detected_by[5] = {0};
	nokv_sst_reader *r;
	nokv_error	err;
	nokv_sst_env env;
	nokv_sst_footer footer;

	region_init(&reg, 1 << 20, 4 << 20);
	env = (nokv_sst_env)
	{
		.ctx = &reg.ctx,.cache = reg.cache
	};
	if (build(dir, 7, &o, d, from, to, true, &props) != NOKV_OK)
		tap_bail("could not build the corruption table");
	snprintf(path, sizeof(path), NOKV_SST_FMT, dir, 7ULL);
	orig = slurp(path, &len);
	tap_diag("corruption table: %zu bytes, %llu data blocks", len,
			 (unsigned long long) props.data_blocks);
	ok(props.data_blocks >= 3, "the table has several data blocks");
	is_int(probe_table(&reg, path, 7, d, from, to, which, sizeof(which)), 0,
		   "the intact table reads back cleanly");

	/* where each block kind lives (for the per-kind checks below) */
	nokv_sst_open_path(&env, path, 7, &r, &err);
	nokv_sst_footer_decode(orig + len - NOKV_SST_FOOTER_SIZE, len, &footer, path, &err);
	nokv_sst_close(r);

	/* every byte of the file is covered by a checksum: flip each one */
	for (size_t pos = 0; pos < len; pos++)
	{
		int			res;

		orig[pos] ^= 0x01;
		spit(path, orig, len);
		orig[pos] ^= 0x01;
		res = probe_table(&reg, path, 7, d, from, to, which, sizeof(which));
		if (res < 0)
		{
			wrong++;
			tap_diag("byte %zu flipped: wrong data returned", pos);
		}
		else if (res == 0)
		{
			missed++;
			tap_diag("byte %zu flipped: not detected", pos);
		}
		else if (strcmp(which, "open") == 0)
			detected_by[0]++;
		else if (strcmp(which, "get") == 0)
			detected_by[1]++;
		else if (strcmp(which, "iterator") == 0)
			detected_by[2]++;
		else if (strcmp(which, "tombstones") == 0)
			detected_by[3]++;
		else
			detected_by[4]++;
	}
	tap_diag("flips first detected by open %d, get %d, iterator %d, tombstones %d, verify %d",
			 detected_by[0], detected_by[1], detected_by[2], detected_by[3], detected_by[4]);
	is_int(wrong, 0, "no single-byte flip ever returns wrong data");
	is_int(missed, 0, "every single-byte flip of %zu is detected", len);

	/* the named kinds, one flip each, with the expected first detector */
	{
		struct
		{
			const char *kind;
			uint64_t	pos;
			const char *first;
		}			cases[] = {
			{"data", 10, "get"},
			{"top-level index", footer.index.offset + 3, "get"},
			/* the partition area: filter partitions first, index partitions last */
			{"filter", footer.filter.offset + 5, "get"},
			{"index", footer.filter.offset + footer.filter.size - 10, "get"},
			{"range-tombstone", footer.rangedel.offset + 2, "tombstones"},
			{"properties", footer.props.offset + 1, "open"},
			{"footer", len - 20, "open"},
		};

		for (int c = 0; c < (int) (sizeof(cases) / sizeof(cases[0])); c++)
		{
			int			res;

			orig[cases[c].pos] ^= 0x40;
			spit(path, orig, len);
			orig[cases[c].pos] ^= 0x40;
			res = probe_table(&reg, path, 7, d, from, to, which, sizeof(which));
			ok(res == 1 && strcmp(which, cases[c].first) == 0,
			   "flip in the %s block: %s reports corruption", cases[c].kind, which);
		}
		/* the message names the block kind, the offset and the file */
		orig[footer.index.offset + 3] ^= 0x40;
		spit(path, orig, len);
		orig[footer.index.offset + 3] ^= 0x40;
		nokv_sst_open_path(&env, path, 7, &r, &err);
		{
			nokv_buf	val = {0};
			int			kind;
			uint64_t	version;
			char		want[4400];

			nokv_ikey_view v = {0};

			nokv_ikey_parse(d->e[from + 5].key, d->e[from + 5].klen, &v);
			is_int(nokv_sst_get(r, v.lkey, v.lkey_len, NOKV_VERSION_MAX, &kind, &version,
								&val, &err), -NOKV_CORRUPTION, "get through a bad index");
			snprintf(want, sizeof(want), "checksum mismatch in top-level index block at offset %llu of %s",
					 (unsigned long long) footer.index.offset, path);
			is_str(err.msg, want, "message names kind, offset and file");
			nokv_buf_free(&val);
		}
		nokv_sst_close(r);
		nokv_cache_erase_file(&reg.ctx, reg.cache, 7);
	}

	/* every truncation */
	{
		int			bad = 0;

		for (size_t n = 0; n < len; n++)
		{
			if (truncate(path, (off_t) n) != 0)
				tap_bail("truncate failed");
			if (nokv_sst_open_path(&env, path, 7, &r, &err) != NOKV_CORRUPTION)
			{
				bad++;
				if (err.code == NOKV_OK)
					nokv_sst_close(r);
			}
		}
		is_int(bad, 0, "every truncation of the table is corruption at open");
	}

	/* a size that disagrees with the manifest, and a missing file */
	spit(path, orig, len);
	is_int(nokv_sst_open(&env, dir, 7, len + 1, &r, &err), NOKV_CORRUPTION,
		   "size mismatch with the expected size is corruption");
	is_int(nokv_sst_open(&env, dir, 7, len, &r, &err), NOKV_OK, "expected size accepted");
	nokv_sst_close(r);
	is_int(nokv_sst_open(&env, dir, 99, 0, &r, &err), NOKV_IO_ERROR, "missing file");
	ok(r == NULL, "no reader on failure");

	/* a non-sst file */
	{
		char		junk[100];

		memset(junk, 'j', sizeof(junk));
		spit(path, junk, sizeof(junk));
		is_int(nokv_sst_open_path(&env, path, 7, &r, &err), NOKV_CORRUPTION, "junk file");
		ok(strstr(err.msg, "bad magic") != NULL, "junk file: bad magic");
	}

	nokv_sst_props_free(&props);
	free(orig);
	free(reg.mem);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- threads sharing one reader ---------- */

typedef struct worker
{
	nokv_sst_reader *r;
	const dataset *d;
	int			id;
	int			bad;
} worker;

static void *
worker_main(void *arg)
{
	worker	   *w = arg;

	if (w->id % 2 == 0)
		w->bad = check_gets(w->r, w->d, 7 + w->id);
	else
	{
		nokv_iiter *it = nokv_sst_iter_new(w->r);

		w->bad = check_iter_forward(it, w->d) + check_iter_seeks(it, w->d, 500);
		nokv_iiter_destroy(it);
	}
	return NULL;
}

static void
test_threads(const dataset *d)
{
	char	   *dir = tap_tmpdir("sstt");
	nokv_sst_options o = options(4096, 16, 10, true);
	nokv_sst_props props;
	region		reg;
	nokv_sst_counters counters = {0};
	nokv_sst_env env;
	nokv_sst_reader *r;
	nokv_error	err;
	pthread_t	t[4];
	worker		w[4];
	int			bad = 0;

	/*
	 * A cache smaller than the table's uncompressed blocks (constant
	 * eviction) whose shards still hold the filter and the index.
	 */
	region_init(&reg, 2 << 20, 8 << 20);
	env = (nokv_sst_env)
	{
		.ctx = &reg.ctx,.cache = reg.cache,.counters = &counters
	};
	build(dir, 1, &o, d, 0, d->n, true, &props);
	if (nokv_sst_open(&env, dir, 1, 0, &r, &err) != NOKV_OK)
		tap_bail("open: %s", err.msg);
	for (int i = 0; i < 4; i++)
	{
		w[i] = (worker)
		{
			.r = r,.d = d,.id = i
		};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
	{
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	is_int(bad, 0, "4 threads sharing a reader over a small cache read correctly");
	ok(counters.blocks_read > props.data_blocks, "the small cache forced re-reads (%llu)",
	   (unsigned long long) counters.blocks_read);
	nokv_sst_close(r);
	nokv_cache_erase_file(&reg.ctx, reg.cache, 1);
	{
		uint64_t	h,
					m,
					bytes,
					cap;

		nokv_cache_stats(&reg.ctx, reg.cache, &h, &m, &bytes, &cap);
		is_int(bytes, 0, "no pins leaked by the threads");
	}
	nokv_sst_props_free(&props);
	free(reg.mem);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- processes sharing one cache ---------- */

/*
 * The region is a memfd mapped by the parent; each child maps it again at
 * a different address (so a stored pointer would break), opens the table
 * and checks lookups and a scan through the shared cache.  Afterwards the
 * parent sees the children's blocks in the cache, and no pins left behind.
 */
static void
test_processes(const dataset *d)
{
	char	   *dir = tap_tmpdir("sstp");
	nokv_sst_options o = options(4096, 16, 10, true);
	nokv_sst_props props;
	size_t		plat = NOKV_ALIGN(nokv_pthread_platform_size(), 64);
	size_t		cache = NOKV_ALIGN(nokv_cache_shared_size(), 64);
	size_t		heap = 24 << 20;
	size_t		size = NOKV_ALIGN(64 + plat + cache + heap, 4096);
	int			fd = memfd_create("nokv-test-sst", 0);
	char	   *mem;
	nokv_platform platform;
	nokv_ctx	ctx;
	nokv_off	cache_off = 64 + plat;
	pid_t		pids[3];
	int			failed = 0;
	uint64_t	hits,
				misses,
				bytes,
				cap;

	if (fd < 0 || ftruncate(fd, (off_t) size) != 0)
		tap_bail("memfd");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	nokv_pthread_platform_format(mem + 64);
	nokv_pthread_platform_bind(&platform, mem + 64);
	ctx = (nokv_ctx)
	{
		.base = mem,.plat = &platform,.heap = cache_off + cache
	};
	nokv_heap_format(&ctx, ctx.heap, heap);
	nokv_cache_format(&ctx, cache_off, 16 << 20);
	build(dir, 1, &o, d, 0, d->n, true, &props);

	for (int i = 0; i < 3; i++)
	{
		pids[i] = fork();
		if (pids[i] == 0)
		{
			/* a second mapping at another address, the first one dropped */
			char	   *mine = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			nokv_platform p;
			nokv_ctx	c;
			nokv_sst_env env;
			nokv_sst_reader *r;
			nokv_error	err;
			nokv_iiter *it;
			int			bad;

			munmap(mem, size);
			nokv_pthread_platform_bind(&p, mine + 64);
			c = (nokv_ctx)
			{
				.base = mine,.plat = &p,.heap = cache_off + cache
			};
			env = (nokv_sst_env)
			{
				.ctx = &c,.cache = cache_off
			};
			if (nokv_sst_open(&env, dir, 1, 0, &r, &err) != NOKV_OK)
				_exit(100);
			bad = check_gets(r, d, 11 + i);
			it = nokv_sst_iter_new(r);
			bad += check_iter_seeks(it, d, 300);
			nokv_iiter_destroy(it);
			nokv_sst_close(r);
			_exit(bad > 99 ? 99 : bad);
		}
	}
	for (int i = 0; i < 3; i++)
	{
		int			status;

		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	is_int(failed, 0, "3 processes, each mapping the region elsewhere, read correctly");
	nokv_cache_stats(&ctx, cache_off, &hits, &misses, &bytes, &cap);
	ok(hits > misses && bytes > 0 && bytes <= cap,
	   "the processes shared one cache (%llu hits, %llu misses, %llu bytes)",
	   (unsigned long long) hits, (unsigned long long) misses, (unsigned long long) bytes);
	nokv_cache_erase_file(&ctx, cache_off, 1);
	nokv_cache_stats(&ctx, cache_off, &hits, &misses, &bytes, &cap);
	is_int(bytes, 0, "no pins left behind by the processes");

	nokv_sst_props_free(&props);
	munmap(mem, size);
	close(fd);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- fuzz seeds ---------- */

/*
 * With NOKV_SST_SEED_DIR set, write small tables as fuzz_sst seeds: one
 * mode byte (bit 0: repair checksums, bit 1: use the cache) + the table.
 */
static void
write_fuzz_seeds(const dataset *d, const char *out)
{
	struct
	{
		const char *name;
		int			mode;
		nokv_sst_options o;
		int			from,
					to;
		bool		tombs;
	}			seeds[] = {
		{"small-lz4", 3, {256, 4, 10, true}, 2000, 2030, true},
		{"small-raw", 1, {256, 4, 10, false}, 2000, 2030, true},
		{"small-nocache", 0, {256, 4, 10, true}, 2000, 2030, true},
		{"nofilter-one-block", 3, {4096, 16, 0, true}, 60000, 60020, false},
		{"restart1", 1, {128, 1, 6, false}, 90000, 90015, false},
		{"empty", 3, {4096, 16, 10, true}, 0, 0, false},
		{"tombstones-only", 3, {4096, 16, 10, true}, 0, 0, true},
	};
	char	   *dir = tap_tmpdir("sstseed");

	for (int i = 0; i < (int) (sizeof(seeds) / sizeof(seeds[0])); i++)
	{
		nokv_sst_props props;
		char		path[4096];
		char	   *img,
				   *seed;
		size_t		len;

		if (build(dir, 1 + i, &seeds[i].o, d, seeds[i].from, seeds[i].to, seeds[i].tombs,
				  &props) != NOKV_OK)
			tap_bail("could not build seed %s", seeds[i].name);
		snprintf(path, sizeof(path), NOKV_SST_FMT, dir, (unsigned long long) (1 + i));
		img = slurp(path, &len);
		seed = malloc(len + 1);
		seed[0] = (char) seeds[i].mode;
		memcpy(seed + 1, img, len);
		snprintf(path, sizeof(path), "%s/%s", out, seeds[i].name);
		spit(path, seed, len + 1);
		tap_diag("seed %s: %zu bytes", path, len + 1);
		free(seed);
		free(img);
		nokv_sst_props_free(&props);
	}
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	dataset		d;

	make_dataset(&d);
	if (getenv("NOKV_SST_SEED_DIR"))
	{
		write_fuzz_seeds(&d, getenv("NOKV_SST_SEED_DIR"));
		free_dataset(&d);
		return tap_done();
	}
	tap_diag("data set: %d entries, %d tombstones", d.n, d.nt);
	test_round_trip(&d);
	test_builder_errors(&d);
	test_special_tables();
	test_corruption(&d);
	test_threads(&d);
	test_processes(&d);
	free_dataset(&d);
	return tap_done();
}
