/*-------------------------------------------------------------------------
 *
 * test_memtable.c
 *	  Unit tests of the shared-region skiplist memtable.
 *
 * Covers ordering (versions, kind ties, column families, prefixes), point
 * lookups at read versions, duplicate inserts, arena exhaustion, the
 * iterator in both directions, range tombstones, and concurrent inserts
 * from threads and from forked processes, including a second mapping of
 * the same memory at another address.
 *
 * test/engine/test_memtable.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nokv/batch.h"
#include "nokv/memtable.h"
#include "nokv/nokv.h"
#include "tap.h"

/* where the memtable sits in the test regions (offset 0 means "none") */
#define MT_OFF		64

typedef struct region
{
	char	   *mem;
	size_t		size;
	nokv_ctx	ctx;
} region;

static void
region_init(region *r, size_t arena_size)
{
	r->size = MT_OFF + nokv_memtable_header_size() + arena_size + 256;
	r->mem = aligned_alloc(64, NOKV_ALIGN(r->size, 64));
	if (!r->mem)
		tap_bail("out of memory");
	/* a recognisable pattern, to catch writes outside the arena */
	memset(r->mem, 0xa5, r->size);
	r->ctx.base = r->mem;
	r->ctx.plat = NULL;
	r->ctx.heap = 0;
	nokv_memtable_format(&r->ctx, MT_OFF, arena_size);
}

static bool
region_guard_intact(region *r, size_t arena_size)
{
	size_t		end = MT_OFF + nokv_memtable_header_size() + arena_size;

	for (size_t i = 0; i < MT_OFF; i++)
		if ((unsigned char) r->mem[i] != 0xa5)
			return false;
	for (size_t i = end; i < r->size; i++)
		if ((unsigned char) r->mem[i] != 0xa5)
			return false;
	return true;
}

static size_t
mk_ikey(char *dst, int cf, const char *ukey, size_t ulen, uint64_t version, int kind)
{
	nokv_ikey_encode(dst, cf, ukey, ulen, version, kind);
	return nokv_ikey_size(ulen);
}

static int
add(nokv_ctx *ctx, int cf, const char *ukey, uint64_t version, int kind, const char *value)
{
	char		k[256];
	size_t		klen = mk_ikey(k, cf, ukey, strlen(ukey), version, kind);

	return nokv_memtable_add(ctx, MT_OFF, k, klen, value, value ? strlen(value) : 0);
}

/* count entries forward, checking strict internal-key order */
static long
check_sorted(nokv_ctx *ctx, nokv_off off, bool *sorted)
{
	nokv_iiter *it = nokv_memtable_iter_new(ctx, off);
	char	   *prev = NULL;
	size_t		prev_len = 0;
	long		n = 0;

	*sorted = true;
	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it))
	{
		size_t		klen;
		const char *k = nokv_iiter_key(it, &klen);

		if (prev && nokv_ikey_compare(prev, prev_len, k, klen) >= 0)
			*sorted = false;
		prev = (char *) k;		/* arena memory: stable while not reset */
		prev_len = klen;
		n++;
	}
	nokv_iiter_destroy(it);
	return n;
}

/* ---------- empty table ---------- */

static void
test_empty(void)
{
	region		r;
	nokv_iiter *it;
	nokv_range_tombstone *ts;
	int			n = -1;
	int			kind;
	uint64_t	ver;
	const char *val;
	size_t		vlen;
	char		k[32];
	size_t		klen = mk_ikey(k, 0, "a", 1, 1, NOKV_KIND_PUT);

	region_init(&r, 4096);
	is_int(nokv_memtable_arena_size(&r.ctx, MT_OFF), 4096, "empty: arena size");
	ok(nokv_memtable_arena_used(&r.ctx, MT_OFF) > 0 &&
	   nokv_memtable_arena_used(&r.ctx, MT_OFF) < 256, "empty: heads use a little arena");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 0, "empty: no entries");
	is_int(nokv_memtable_tombstones(&r.ctx, MT_OFF), 0, "empty: no tombstones");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0a", 2, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "empty: get finds nothing");
	is_int(nokv_memtable_max_covering_tombstone(&r.ctx, MT_OFF, 0, "a", 1, NOKV_VERSION_MAX), 0,
		   "empty: no covering tombstone");
	is_int(nokv_memtable_range_tombstones(&r.ctx, MT_OFF, &ts, &n), NOKV_OK, "empty: tombstone copy ok");
	ok(n == 0 && ts == NULL, "empty: tombstone copy is empty");

	it = nokv_memtable_iter_new(&r.ctx, MT_OFF);
	nokv_iiter_seek_to_first(it);
	ok(!nokv_iiter_valid(it), "empty: seek_to_first invalid");
	nokv_iiter_seek_to_last(it);
	ok(!nokv_iiter_valid(it), "empty: seek_to_last invalid");
	nokv_iiter_seek(it, k, klen);
	ok(!nokv_iiter_valid(it), "empty: seek invalid");
	is_int(nokv_iiter_status(it, NULL), NOKV_OK, "empty: status ok");
	nokv_iiter_destroy(it);

	is_int(nokv_memtable_add(&r.ctx, MT_OFF, k, 9, "x", 1), NOKV_INVALID_ARGUMENT,
		   "add rejects a key shorter than an internal key");
	ok(region_guard_intact(&r, 4096), "empty: nothing written outside the memtable");
	free(r.mem);
}

/* ---------- ordering ---------- */

typedef struct kv
{
	char		k[64];
	size_t		klen;
} kv;

static int
kv_cmp(const void *a, const void *b)
{
	const kv   *x = a,
			   *y = b;

	return nokv_ikey_compare(x->k, x->klen, y->k, y->klen);
}

static void
test_ordering(void)
{
	/* short keys, and keys around the 8-byte prefix the comparator caches */
	static const char *ukeys[] = {"", "a", "ab", "abc", "b", "a\xff", "\xff",
		"abcdef", "abcdefg", "abcdefgh", "abcdefg\xff", "abcdefh", "abcdeff\x01",
	"\200bcdefgh", "abcdefghij"};
	int			nkeys = sizeof(ukeys) / sizeof(ukeys[0]);
	kv		   *all = calloc(4096, sizeof(kv));
	int			n = 0;
	region		r;
	nokv_iiter *it;
	bool		match = true;
	int			i;

	region_init(&r, 1 << 20);
	/* every (cf, key, version, kind) combination, in a scrambled order */
	for (int cf = 0; cf < 3; cf++)
		for (int k = 0; k < nkeys; k++)
			for (uint64_t v = 0; v < 20; v++)
				for (int kind = NOKV_KIND_DELETE; kind <= NOKV_KIND_PUT; kind++)
				{
					uint64_t	ver = v == 19 ? NOKV_VERSION_MAX : v * 7;

					all[n].klen = mk_ikey(all[n].k, cf, ukeys[k], strlen(ukeys[k]), ver, kind);
					n++;
				}
	srand(42);
	for (i = n - 1; i > 0; i--)
	{
		int			j = rand() % (i + 1);
		kv			t = all[i];

		all[i] = all[j];
		all[j] = t;
	}
	for (i = 0; i < n; i++)
		if (nokv_memtable_add(&r.ctx, MT_OFF, all[i].k, all[i].klen, all[i].k, 3) != NOKV_OK)
			break;
	is_int(i, n, "ordering: all %d inserts succeed", n);
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), n, "ordering: entry count");

	qsort(all, n, sizeof(kv), kv_cmp);
	it = nokv_memtable_iter_new(&r.ctx, MT_OFF);
	i = 0;
	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it), i++)
	{
		size_t		klen,
					vlen;
		const char *k = nokv_iiter_key(it, &klen);
		const char *v = nokv_iiter_value(it, &vlen);

		if (i >= n || klen != all[i].klen || memcmp(k, all[i].k, klen) != 0 ||
			vlen != 3 || memcmp(v, all[i].k, 3) != 0)
			match = false;
	}
	is_int(i, n, "ordering: iterator yields every entry");
	ok(match, "ordering: forward order is nokv_ikey_compare order (versions desc, kind asc)");

	/* backward */
	match = true;
	i = n - 1;
	for (nokv_iiter_seek_to_last(it); nokv_iiter_valid(it); nokv_iiter_prev(it), i--)
	{
		size_t		klen;
		const char *k = nokv_iiter_key(it, &klen);

		if (i < 0 || klen != all[i].klen || memcmp(k, all[i].k, klen) != 0)
			match = false;
	}
	is_int(i, -1, "ordering: backward iteration yields every entry");
	ok(match, "ordering: backward order is the reverse");

	/* a kind tie: same key and version, delete sorts before put */
	{
		char		d[32],
					p[32];
		size_t		dl = mk_ikey(d, 0, "a", 1, 7, NOKV_KIND_DELETE);
		size_t		pl = mk_ikey(p, 0, "a", 1, 7, NOKV_KIND_PUT);
		size_t		kl;
		const char *k;

		nokv_iiter_seek(it, d, dl);
		k = nokv_iiter_key(it, &kl);
		ok(kl == dl && memcmp(k, d, dl) == 0, "ordering: seek lands on the delete of a tie");
		nokv_iiter_next(it);
		k = nokv_iiter_key(it, &kl);
		ok(kl == pl && memcmp(k, p, pl) == 0, "ordering: the put of the same version follows");
	}
	nokv_iiter_destroy(it);
	free(all);
	free(r.mem);
}

/* random keys of random length over a tiny alphabet: many shared prefixes */
/*
 * The memtable at MT_OFF holds exactly the n keys of all (sorted and
 * deduplicated here), counted once each, in nokv_ikey_compare order, and
 * a seek finds each.  what prefixes the test names.
 */
static void
check_contents(region *r, kv *all, int n, const char *what)
{
	nokv_iiter *it;
	int			distinct = 0;
	int			i;
	bool		match = true;

	qsort(all, n, sizeof(kv), kv_cmp);
	for (i = 0; i < n; i++)
		if (i == 0 || kv_cmp(&all[i - 1], &all[i]) != 0)
			all[distinct++] = all[i];
	is_int(nokv_memtable_entries(&r->ctx, MT_OFF), distinct, "%s: %d distinct keys counted", what, distinct);
	it = nokv_memtable_iter_new(&r->ctx, MT_OFF);
	i = 0;
	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it), i++)
	{
		size_t		klen;
		const char *k = nokv_iiter_key(it, &klen);

		if (i >= distinct || klen != all[i].klen || memcmp(k, all[i].k, klen) != 0)
			match = false;
	}
	is_int(i, distinct, "%s: iterator yields each once", what);
	ok(match, "%s: same order as sorting with nokv_ikey_compare", what);
	/* every key can be sought exactly */
	for (i = 0; i < distinct && match; i++)
	{
		size_t		klen;

		nokv_iiter_seek(it, all[i].k, all[i].klen);
		if (!nokv_iiter_valid(it) || nokv_iiter_key(it, &klen) == NULL ||
			klen != all[i].klen || memcmp(nokv_iiter_key(it, &klen), all[i].k, klen) != 0)
			match = false;
	}
	ok(match, "%s: seek finds every key", what);
	nokv_iiter_destroy(it);
}

static void
test_ordering_random(void)
{
	int			n = 3000;
	kv		   *all = calloc(n, sizeof(kv));
	static const char alphabet[] = {'\0', 'a', 'b', '\x7f', '\x80', '\xff'};
	region		r;
	int			i;
	uint64_t	s = 99;

	region_init(&r, 1 << 20);
	for (i = 0; i < n; i++)
	{
		char		u[24];
		int			len;

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		len = (int) ((s >> 33) % 20);
		for (int j = 0; j < len; j++)
		{
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			u[j] = alphabet[(s >> 40) % sizeof(alphabet)];
		}
		all[i].klen = mk_ikey(all[i].k, (int) ((s >> 20) % 2), u, (size_t) len,
							  (s >> 10) % 4, NOKV_KIND_DELETE + (int) ((s >> 50) % 2));
		if (nokv_memtable_add(&r.ctx, MT_OFF, all[i].k, all[i].klen, NULL, 0) != NOKV_OK)
			tap_bail("insert failed");
	}
	check_contents(&r, all, n, "random order");
	free(all);
	free(r.mem);
}

/*
 * Inserts through one hint: ascending runs (the hinted search), runs that
 * start below the previous key (the hint must be dropped), duplicates (an
 * equal key is a no-op) and a second memtable (a hint belongs to one).
 */
static void
test_hinted(void)
{
	int			n = 6000;
	kv		   *all = calloc(n, sizeof(kv));
	region		r;
	nokv_mt_hint hint = {0};
	int			i;
	uint64_t	s = 7;

	region_init(&r, 2 << 20);
	for (i = 0; i < n; i++)
	{
		char		u[16];
		int			len;

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		len = snprintf(u, sizeof(u), "k%05d", (int) ((s >> 33) % 4000));
		all[i].klen = mk_ikey(all[i].k, 0, u, (size_t) len, (s >> 10) % 3, NOKV_KIND_PUT);
	}
	/* runs of 1..64 keys, each sorted ascending */
	for (i = 0; i < n;)
	{
		int			run = 1 + (int) ((s >> 20) % 64);

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		if (i + run > n)
			run = n - i;
		qsort(all + i, run, sizeof(kv), kv_cmp);
		for (int j = i; j < i + run; j++)
			if (nokv_memtable_add_hinted(&r.ctx, MT_OFF, all[j].k, all[j].klen, "va", 2, "lue", 3,
										 &hint) != NOKV_OK)
				tap_bail("hinted insert failed");
		i += run;
		if (i % 7 == 0)
			nokv_memtable_hint_publish(&r.ctx, &hint);
	}
	nokv_memtable_hint_publish(&r.ctx, &hint);
	check_contents(&r, all, n, "hinted");
	{
		nokv_iiter *it = nokv_memtable_iter_new(&r.ctx, MT_OFF);
		bool		joined = true;

		for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it))
		{
			size_t		vlen;
			const char *v = nokv_iiter_value(it, &vlen);

			joined &= vlen == 5 && memcmp(v, "value", 5) == 0;
		}
		nokv_iiter_destroy(it);
		ok(joined, "hinted: a value given in two parts is stored joined");
	}

	/* the same hint handed to another memtable starts afresh there */
	{
		region		r2;

		region_init(&r2, 1 << 16);
		ok(nokv_memtable_add_hinted(&r2.ctx, MT_OFF, all[0].k, all[0].klen, NULL, 0, "v", 1, &hint) == NOKV_OK &&
		   nokv_memtable_entries(&r2.ctx, MT_OFF) == 0, "an insert through a hint is counted in the hint");
		nokv_memtable_hint_publish(&r2.ctx, &hint);
		ok(nokv_memtable_entries(&r2.ctx, MT_OFF) == 1, "a hint of another memtable is reset");
		free(r2.mem);
	}
	free(all);
	free(r.mem);
}

/* ---------- get ---------- */

static void
test_get(void)
{
	region		r;
	int			kind;
	uint64_t	ver;
	const char *val;
	size_t		vlen;
	char		lkey[8] = "\0k";
	bool		found;
	struct
	{
		uint64_t	rv;
		bool		found;
		uint64_t	ver;
		int			kind;
		const char *val;
	}			cases[] = {
		{0, false, 0, 0, NULL},
		{9, false, 0, 0, NULL},
		{10, true, 10, NOKV_KIND_PUT, "v10"},
		{15, true, 10, NOKV_KIND_PUT, "v10"},
		{20, true, 20, NOKV_KIND_DELETE, ""},
		{29, true, 20, NOKV_KIND_DELETE, ""},
		{30, true, 30, NOKV_KIND_PUT, "v30"},
		{39, true, 30, NOKV_KIND_PUT, "v30"},
		{40, true, 40, NOKV_KIND_DELETE, ""},	/* delete and put at 40: delete first */
		{NOKV_VERSION_MAX - 1, true, 40, NOKV_KIND_DELETE, ""},
		{NOKV_VERSION_MAX, true, NOKV_VERSION_MAX, NOKV_KIND_PUT, "vmax"},
	};

	region_init(&r, 1 << 16);
	add(&r.ctx, 0, "k", 30, NOKV_KIND_PUT, "v30");
	add(&r.ctx, 0, "k", 10, NOKV_KIND_PUT, "v10");
	add(&r.ctx, 0, "k", 20, NOKV_KIND_DELETE, NULL);
	add(&r.ctx, 0, "k", 40, NOKV_KIND_PUT, "v40");
	add(&r.ctx, 0, "k", 40, NOKV_KIND_DELETE, NULL);
	add(&r.ctx, 0, "k", NOKV_VERSION_MAX, NOKV_KIND_PUT, "vmax");
	/* neighbours that must not be confused with "k" */
	add(&r.ctx, 0, "j", 5, NOKV_KIND_PUT, "j5");
	add(&r.ctx, 0, "kk", 5, NOKV_KIND_PUT, "kk5");
	add(&r.ctx, 1, "k", 5, NOKV_KIND_PUT, "cf1");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		kind = -1;
		ver = 0;
		val = NULL;
		vlen = 99;
		found = nokv_memtable_get(&r.ctx, MT_OFF, lkey, 2, cases[i].rv, &kind, &ver, &val, &vlen);
		if (!cases[i].found)
			ok(!found, "get k at %llu: not found", (unsigned long long) cases[i].rv);
		else
			ok(found && kind == cases[i].kind && ver == cases[i].ver &&
			   vlen == strlen(cases[i].val) && memcmp(val, cases[i].val, vlen) == 0,
			   "get k at %llu: version %llu kind %d '%s'", (unsigned long long) cases[i].rv,
			   (unsigned long long) cases[i].ver, cases[i].kind, cases[i].val);
	}
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0a", 2, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "get: absent key before everything");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0z", 2, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "get: absent key after everything");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0", 1, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "get: empty user key absent");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0kj", 3, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "get: key between k and kk absent");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\2k", 2, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen),
	   "get: other column family absent");
	found = nokv_memtable_get(&r.ctx, MT_OFF, "\1k", 2, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen);
	ok(found && vlen == 3 && memcmp(val, "cf1", 3) == 0, "get: column family 1 has its own k");
	found = nokv_memtable_get(&r.ctx, MT_OFF, "\0kk", 3, 5, &kind, &ver, &val, &vlen);
	ok(found && ver == 5 && vlen == 3 && memcmp(val, "kk5", 3) == 0, "get: prefix-extended key kk");
	ok(!nokv_memtable_get(&r.ctx, MT_OFF, "\0kk", 3, 4, &kind, &ver, &val, &vlen),
	   "get: kk invisible below its version");

	/* a key too big for the stack seek buffer */
	{
		size_t		ulen = 3000;
		char	   *big = malloc(ulen + 1 + NOKV_IKEY_TRAILER);
		char	   *ukey = malloc(ulen);
		size_t		klen;

		memset(ukey, 'q', ulen);
		klen = mk_ikey(big, 0, ukey, ulen, 77, NOKV_KIND_PUT);
		is_int(nokv_memtable_add(&r.ctx, MT_OFF, big, klen, "big", 3), NOKV_OK, "get: add a 3000-byte key");
		found = nokv_memtable_get(&r.ctx, MT_OFF, big, 1 + ulen, 100, &kind, &ver, &val, &vlen);
		ok(found && ver == 77 && vlen == 3 && memcmp(val, "big", 3) == 0, "get: big key found");
		ok(!nokv_memtable_get(&r.ctx, MT_OFF, big, 1 + ulen, 76, &kind, &ver, &val, &vlen),
		   "get: big key invisible below its version");
		ok(!nokv_memtable_get(&r.ctx, MT_OFF, big, ulen, 100, &kind, &ver, &val, &vlen),
		   "get: big key's prefix absent");
		free(big);
		free(ukey);
	}
	free(r.mem);
}

/* ---------- duplicates ---------- */

static void
test_duplicates(void)
{
	region		r;
	size_t		used;
	int			kind;
	uint64_t	ver;
	const char *val;
	size_t		vlen;
	bool		sorted;
	nokv_range_tombstone t = {.cf = 0, .start = "a", .start_len = 1, .end = "c", .end_len = 1, .version = 5};

	region_init(&r, 1 << 16);
	is_int(add(&r.ctx, 0, "dup", 5, NOKV_KIND_PUT, "first"), NOKV_OK, "dup: first insert");
	used = nokv_memtable_arena_used(&r.ctx, MT_OFF);
	is_int(add(&r.ctx, 0, "dup", 5, NOKV_KIND_PUT, "second"), NOKV_OK, "dup: identical ikey returns ok");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 1, "dup: still one entry");
	is_int(nokv_memtable_arena_used(&r.ctx, MT_OFF), used, "dup: no arena consumed");
	ok(nokv_memtable_get(&r.ctx, MT_OFF, "\0dup", 4, 5, &kind, &ver, &val, &vlen) &&
	   vlen == 5 && memcmp(val, "first", 5) == 0, "dup: the first value stays");
	is_int(add(&r.ctx, 0, "dup", 5, NOKV_KIND_DELETE, NULL), NOKV_OK, "dup: other kind is a new entry");
	is_int(add(&r.ctx, 0, "dup", 6, NOKV_KIND_PUT, "x"), NOKV_OK, "dup: other version is a new entry");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 3, "dup: three entries");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), 3, "dup: iterator sees three");

	is_int(nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &t), NOKV_OK, "dup: tombstone");
	used = nokv_memtable_arena_used(&r.ctx, MT_OFF);
	is_int(nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &t), NOKV_OK, "dup: same tombstone again");
	is_int(nokv_memtable_tombstones(&r.ctx, MT_OFF), 1, "dup: one tombstone");
	is_int(nokv_memtable_arena_used(&r.ctx, MT_OFF), used, "dup: no arena for the repeated tombstone");
	t.end = "d";
	is_int(nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &t), NOKV_OK, "dup: same start+version, other end");
	is_int(nokv_memtable_tombstones(&r.ctx, MT_OFF), 2, "dup: is a distinct tombstone");
	free(r.mem);
}

/* ---------- arena exhaustion ---------- */

static void
test_no_space(void)
{
	size_t		arena = 8192;
	region		r;
	char		k[64];
	size_t		klen;
	int			rc = NOKV_OK;
	int			n_ok = 0;
	bool		within_cost = true;
	bool		all_found = true;
	bool		sorted;
	int			kind;
	uint64_t	ver;
	const char *val;
	size_t		vlen;
	char	   *huge;

	region_init(&r, arena);

	/* a request larger than the whole arena fails without consuming space */
	huge = calloc(1, arena * 2);
	klen = mk_ikey(k, 0, "huge", 4, 1, NOKV_KIND_PUT);
	{
		size_t		used = nokv_memtable_arena_used(&r.ctx, MT_OFF);

		is_int(nokv_memtable_add(&r.ctx, MT_OFF, k, klen, huge, arena * 2), NOKV_NO_SPACE,
			   "no space: value larger than the arena");
		is_int(nokv_memtable_arena_used(&r.ctx, MT_OFF), used, "no space: arena untouched by it");
	}
	free(huge);

	for (int i = 0; i < 100000; i++)
	{
		char		u[32];
		size_t		before = nokv_memtable_arena_used(&r.ctx, MT_OFF);

		snprintf(u, sizeof(u), "key%06d", (i * 7919) % 100000);
		klen = mk_ikey(k, 0, u, strlen(u), 1, NOKV_KIND_PUT);
		rc = nokv_memtable_add(&r.ctx, MT_OFF, k, klen, "value-bytes", 11);
		if (rc != NOKV_OK)
			break;
		if (nokv_memtable_arena_used(&r.ctx, MT_OFF) - before > nokv_memtable_entry_cost(klen, 11))
			within_cost = false;
		n_ok++;
	}
	is_int(rc, NOKV_NO_SPACE, "no space: inserts eventually fail with NOKV_NO_SPACE");
	ok(n_ok > 50, "no space: %d entries fit first", n_ok);
	ok(within_cost, "no space: no insert used more than entry_cost");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), n_ok, "no space: entry count excludes the failure");
	ok(nokv_memtable_arena_used(&r.ctx, MT_OFF) <= arena, "no space: arena_used capped at the size");
	is_int(add(&r.ctx, 0, "another", 1, NOKV_KIND_PUT, "v"), NOKV_NO_SPACE, "no space: later inserts fail too");
	{
		nokv_range_tombstone t = {.cf = 0, .start = "a", .start_len = 1, .end = "b", .end_len = 1, .version = 9};

		is_int(nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &t), NOKV_NO_SPACE,
			   "no space: tombstone insert fails too");
		is_int(nokv_memtable_tombstones(&r.ctx, MT_OFF), 0, "no space: no tombstone counted");
	}
	/* re-applying an entry that made it in is still fine */
	{
		char		u[32];

		snprintf(u, sizeof(u), "key%06d", 0);
		is_int(add(&r.ctx, 0, u, 1, NOKV_KIND_PUT, "value-bytes"), NOKV_OK,
			   "no space: re-adding a present entry is a no-op");
	}

	/* everything that was accepted is intact and readable */
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), n_ok, "no space: iterator sees every accepted entry");
	ok(sorted, "no space: still sorted");
	for (int i = 0; i < n_ok; i++)
	{
		char		lk[32];

		lk[0] = 0;
		snprintf(lk + 1, sizeof(lk) - 1, "key%06d", (i * 7919) % 100000);
		if (!nokv_memtable_get(&r.ctx, MT_OFF, lk, 1 + strlen(lk + 1), 1, &kind, &ver, &val, &vlen) ||
			vlen != 11 || memcmp(val, "value-bytes", 11) != 0)
			all_found = false;
	}
	ok(all_found, "no space: every accepted entry found by get");
	ok(region_guard_intact(&r, arena), "no space: nothing written outside the arena");

	/* reset empties it for reuse */
	nokv_memtable_reset(&r.ctx, MT_OFF);
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 0, "reset: no entries");
	ok(nokv_memtable_arena_used(&r.ctx, MT_OFF) < 256, "reset: arena emptied");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), 0, "reset: iterator empty");
	is_int(add(&r.ctx, 0, "again", 3, NOKV_KIND_PUT, "v"), NOKV_OK, "reset: insert works again");
	ok(nokv_memtable_get(&r.ctx, MT_OFF, "\0again", 6, 3, &kind, &ver, &val, &vlen) && ver == 3,
	   "reset: and is found");
	{
		char		lk[32];

		lk[0] = 0;
		snprintf(lk + 1, sizeof(lk) - 1, "key%06d", 0);
		ok(!nokv_memtable_get(&r.ctx, MT_OFF, lk, 1 + strlen(lk + 1), 1, &kind, &ver, &val, &vlen),
		   "reset: old entries gone");
	}
	free(r.mem);
}

static void
test_costs(void)
{
	size_t		c1 = nokv_memtable_entry_cost(10, 0);
	size_t		c2 = nokv_memtable_entry_cost(100, 1000);

	ok(c1 >= 10 && c1 % 8 == 0, "cost: minimal entry cost %zu is aligned", c1);
	ok(c2 >= 1100 && c2 - c1 >= 1090 - 8, "cost: grows with key and value");
	ok(nokv_memtable_tombstone_cost(5, 7) >= nokv_memtable_entry_cost(1 + 5 + NOKV_IKEY_TRAILER, 7),
	   "cost: tombstone cost covers its internal key and end");
	ok(nokv_memtable_header_size() % 64 == 0, "cost: header size is a cache-line multiple");

	/* a batch keeps the sum of its entries' costs as they are added */
	{
		nokv_batch *b = nokv_batch_new();
		size_t		expect = 0;

		nokv_batch_put(b, 0, "key1", 4, "value", 5);
		expect += nokv_memtable_entry_cost(nokv_ikey_size(4), 5 + nokv_value_header_size(0));
		nokv_batch_put_ttl(b, 1, "key2", 4, "v", 1, 1234567);
		expect += nokv_memtable_entry_cost(nokv_ikey_size(4), 1 + nokv_value_header_size(1234567));
		nokv_batch_put2(b, 0, "key3", 4, "ab", 2, "cde", 3);
		expect += nokv_memtable_entry_cost(nokv_ikey_size(4), 5 + nokv_value_header_size(0));
		nokv_batch_delete(b, 2, "key4", 4);
		expect += nokv_memtable_entry_cost(nokv_ikey_size(4), 0);
		nokv_batch_delete_range(b, 0, "a", 1, "abc", 3);
		expect += nokv_memtable_tombstone_cost(1 + 1, 1 + 3);
		is_int(b->mem_cost, expect, "cost: a batch's running cost is the sum of its entries' costs");
		nokv_batch_clear(b);
		is_int(b->mem_cost, 0, "cost: a cleared batch costs nothing");
		nokv_batch_free(b);
	}
}

/* ---------- iterator ---------- */

static void
test_iterator(void)
{
	region		r;
	nokv_iiter *it;
	char		k[64];
	size_t		klen;
	size_t		got_len;
	const char *got;
	nokv_error	err;

	region_init(&r, 1 << 16);
	/* keys k10, k20, ..., k90 at version 5 */
	for (int i = 1; i <= 9; i++)
	{
		char		u[16];

		snprintf(u, sizeof(u), "k%d0", i);
		add(&r.ctx, 0, u, 5, NOKV_KIND_PUT, u);
	}
	it = nokv_memtable_iter_new(&r.ctx, MT_OFF);

#define AT(name) (nokv_iiter_valid(it) && (got = nokv_iiter_key(it, &got_len)) != NULL && \
				  got_len == 1 + strlen(name) + NOKV_IKEY_TRAILER && memcmp(got + 1, name, strlen(name)) == 0)

	nokv_iiter_seek_to_first(it);
	ok(AT("k10"), "iter: seek_to_first");
	nokv_iiter_prev(it);
	ok(!nokv_iiter_valid(it), "iter: prev from first is invalid");
	nokv_iiter_seek_to_last(it);
	ok(AT("k90"), "iter: seek_to_last");
	nokv_iiter_next(it);
	ok(!nokv_iiter_valid(it), "iter: next from last is invalid");

	klen = mk_ikey(k, 0, "k50", 3, 5, NOKV_KIND_PUT);
	nokv_iiter_seek(it, k, klen);
	ok(AT("k50"), "iter: seek exact");
	got = nokv_iiter_value(it, &got_len);
	ok(got_len == 3 && memcmp(got, "k50", 3) == 0, "iter: value");
	nokv_iiter_prev(it);
	ok(AT("k40"), "iter: prev");
	nokv_iiter_next(it);
	nokv_iiter_next(it);
	ok(AT("k60"), "iter: next next");

	klen = mk_ikey(k, 0, "k50", 3, 4, NOKV_KIND_PUT);
	nokv_iiter_seek(it, k, klen);
	ok(AT("k60"), "iter: seek to an older version of k50 lands on k60");
	klen = mk_ikey(k, 0, "k50", 3, 6, NOKV_KIND_SEEK);
	nokv_iiter_seek(it, k, klen);
	ok(AT("k50"), "iter: seek to a newer version of k50 lands on k50");
	klen = mk_ikey(k, 0, "k55", 3, 6, NOKV_KIND_SEEK);
	nokv_iiter_seek(it, k, klen);
	ok(AT("k60"), "iter: seek between keys");
	klen = mk_ikey(k, 0, "", 0, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	nokv_iiter_seek(it, k, klen);
	ok(AT("k10"), "iter: seek before everything");
	klen = mk_ikey(k, 0, "k99", 3, 0, NOKV_KIND_PUT);
	nokv_iiter_seek(it, k, klen);
	ok(!nokv_iiter_valid(it), "iter: seek past the end is invalid");
	klen = mk_ikey(k, 1, "", 0, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	nokv_iiter_seek(it, k, klen);
	ok(!nokv_iiter_valid(it), "iter: seek to a later column family is invalid");
	nokv_iiter_seek_to_last(it);
	for (int i = 0; i < 8; i++)
		nokv_iiter_prev(it);
	ok(AT("k10"), "iter: eight prevs from the last reach the first");
	is_int(nokv_iiter_status(it, NULL), NOKV_OK, "iter: status ok");

	nokv_iiter_seek(it, k, 5);
	ok(!nokv_iiter_valid(it), "iter: seek with a malformed key is invalid");
	is_int(nokv_iiter_status(it, &err), NOKV_INVALID_ARGUMENT, "iter: and reports invalid argument");
	is_int(err.code, NOKV_INVALID_ARGUMENT, "iter: error code copied");
#undef AT
	nokv_iiter_destroy(it);
	free(r.mem);
}

/* ---------- range tombstones ---------- */

static void
test_tombstones(void)
{
	region		r;
	nokv_range_tombstone *ts;
	int			n;
	struct
	{
		int			cf;
		const char *start;
		const char *end;
		uint64_t	version;
	}			add_list[] = {
		{0, "b", "d", 10},
		{0, "a", "c", 20},
		{1, "c", "f", 5},
		{0, "b", "z", 30},
		{0, "", "a", 40},
		{2, "m", "n", 7},
	};
	struct
	{
		int			cf;
		const char *key;
		uint64_t	rv;
		uint64_t	want;
	}			q[] = {
		{0, "b", 100, 30},
		{0, "b", 29, 20},
		{0, "b", 19, 10},
		{0, "b", 9, 0},
		{0, "c", 100, 30},
		{0, "c", 25, 10},		/* [a,c) ends before c */
		{0, "d", 25, 0},		/* [b,d) ends before d */
		{0, "d", 30, 30},
		{0, "a", 100, 20},
		{0, "", 100, 40},
		{0, "", 39, 0},
		{0, "\x01", 100, 40},
		{0, "z", 100, 0},
		{0, "yyy", 100, 30},
		{1, "c", 100, 5},
		{1, "e\xff", 100, 5},
		{1, "f", 100, 0},
		{1, "b", 100, 0},
		{2, "m", 7, 7},
		{2, "m", 6, 0},
		{3, "m", 100, 0},
	};

	region_init(&r, 1 << 16);
	for (size_t i = 0; i < sizeof(add_list) / sizeof(add_list[0]); i++)
	{
		nokv_range_tombstone t = {
			.cf = add_list[i].cf,
			.start = add_list[i].start, .start_len = strlen(add_list[i].start),
			.end = add_list[i].end, .end_len = strlen(add_list[i].end),
			.version = add_list[i].version,
		};

		if (nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &t) != NOKV_OK)
			tap_bail("tombstone insert failed");
	}
	is_int(nokv_memtable_tombstones(&r.ctx, MT_OFF), 6, "tomb: six tombstones");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 0, "tomb: no point entries");
	{
		bool		sorted;

		is_int(check_sorted(&r.ctx, MT_OFF, &sorted), 0, "tomb: point iterator does not see tombstones");
	}

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		is_int(nokv_memtable_max_covering_tombstone(&r.ctx, MT_OFF, q[i].cf, q[i].key,
													strlen(q[i].key), q[i].rv),
			   q[i].want, "tomb: cf %d key '%s' at %llu -> %llu", q[i].cf, q[i].key,
			   (unsigned long long) q[i].rv, (unsigned long long) q[i].want);

	is_int(nokv_memtable_range_tombstones(&r.ctx, MT_OFF, &ts, &n), NOKV_OK, "tomb: copy out");
	is_int(n, 6, "tomb: six copied");
	if (n == 6)
	{
		/* order: cf, start, version desc */
		static const char *want[] = {"0:-a@40", "0:a-c@20", "0:b-z@30", "0:b-d@10", "1:c-f@5", "2:m-n@7"};
		bool		same = true;
		bool		inside = true;
		char	   *lo = (char *) ts;
		char	   *hi = (char *) (ts + n);

		for (int i = 0; i < n; i++)
		{
			char		buf[64];

			snprintf(buf, sizeof(buf), "%d:%.*s-%.*s@%llu", ts[i].cf, (int) ts[i].start_len,
					 ts[i].start, (int) ts[i].end_len, ts[i].end,
					 (unsigned long long) ts[i].version);
			if (strcmp(buf, want[i]) != 0)
			{
				tap_diag("tombstone %d is %s, expected %s", i, buf, want[i]);
				same = false;
			}
			hi += ts[i].start_len + ts[i].end_len;
		}
		for (int i = 0; i < n; i++)
			if (ts[i].start < (char *) (ts + n) || ts[i].start + ts[i].start_len > hi ||
				ts[i].end < (char *) (ts + n) || ts[i].end + ts[i].end_len > hi)
				inside = false;
		ok(same, "tomb: copied in (cf, start, version desc) order with their ends");
		ok(inside && lo == (char *) ts, "tomb: keys live in the same block after the array");
	}
	free(ts);

	/* many tombstones, checked against a brute-force answer */
	{
		nokv_range_tombstone *all = calloc(500, sizeof(*all));
		char	   *keys = calloc(500, 16);
		bool		agree = true;

		srand(7);
		for (int i = 0; i < 500; i++)
		{
			int			a = rand() % 1000,
						b = a + 1 + rand() % 100;
			char	   *s = keys + i * 16;

			snprintf(s, 8, "%04d", a);
			snprintf(s + 8, 8, "%04d", b);
			all[i] = (nokv_range_tombstone)
			{
				.cf = 2, .start = s, .start_len = 4, .end = s + 8, .end_len = 4,
					.version = 100 + rand() % 1000,
			};
			nokv_memtable_add_range_tombstone(&r.ctx, MT_OFF, &all[i]);
		}
		for (int k = 0; k < 1200 && agree; k += 3)
		{
			char		u[16];
			uint64_t	rv = 100 + (k * 37) % 1100;
			uint64_t	want = 0;

			snprintf(u, sizeof(u), "%04d", k);
			for (int i = 0; i < 500; i++)
				if (nokv_lkey_compare(all[i].start, 4, u, 4) <= 0 &&
					nokv_lkey_compare(u, 4, all[i].end, 4) < 0 &&
					all[i].version <= rv && all[i].version > want)
					want = all[i].version;
			if (nokv_memtable_max_covering_tombstone(&r.ctx, MT_OFF, 2, u, 4, rv) != want)
			{
				tap_diag("key %s at %llu: want %llu", u, (unsigned long long) rv, (unsigned long long) want);
				agree = false;
			}
		}
		ok(agree, "tomb: 500 random tombstones agree with brute force");
		free(all);
		free(keys);
	}
	free(r.mem);
}

/* ---------- threads ---------- */

#define TH_WRITERS	4
#define TH_KEYS		200000

typedef struct th_shared
{
	nokv_ctx   *ctx;
	_Atomic long progress[TH_WRITERS];	/* keys [0, progress) are in */
	_Atomic int writers_done;
	_Atomic long reader_errors;
	_Atomic long reader_gets;
	_Atomic long reader_scans;
	int			id;
} th_shared;

typedef struct th_arg
{
	th_shared  *sh;
	int			id;
} th_arg;

/* user key of writer w's i-th key; writers interleave in key space */
static size_t
th_ukey(char *dst, int w, long i)
{
	/* scatter so the writers hit different parts of the list */
	uint32_t	x = (uint32_t) i * 2654435761u;

	return (size_t) sprintf(dst, "%08x-%d-%ld", x, w, i);
}

static void *
th_writer(void *p)
{
	th_arg	   *a = p;
	char		u[64],
				k[96],
				v[16];

	for (long i = 0; i < TH_KEYS; i++)
	{
		size_t		ulen = th_ukey(u, a->id, i);
		size_t		klen = mk_ikey(k, 0, u, ulen, (uint64_t) i + 1, NOKV_KIND_PUT);

		memcpy(v, &i, sizeof(i));
		if (nokv_memtable_add(a->sh->ctx, MT_OFF, k, klen, v, sizeof(i)) != NOKV_OK)
		{
			atomic_fetch_add(&a->sh->reader_errors, 1000000);
			break;
		}
		atomic_store_explicit(&a->sh->progress[a->id], i + 1, memory_order_release);
	}
	atomic_fetch_add(&a->sh->writers_done, 1);
	return NULL;
}

static void *
th_reader(void *p)
{
	th_arg	   *a = p;
	th_shared  *sh = a->sh;
	uint64_t	seed = 12345 + a->id;

	while (atomic_load(&sh->writers_done) < TH_WRITERS)
	{
		/* point lookups of keys already published */
		for (int j = 0; j < 2000; j++)
		{
			int			w;
			long		done,
						i;
			char		lk[64];
			size_t		ulen;
			int			kind;
			uint64_t	ver;
			const char *val;
			size_t		vlen;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			w = (int) (seed >> 33) % TH_WRITERS;
			done = atomic_load_explicit(&sh->progress[w], memory_order_acquire);
			if (done == 0)
				continue;
			i = (long) ((seed >> 20) % (uint64_t) done);
			lk[0] = 0;
			ulen = th_ukey(lk + 1, w, i);
			if (!nokv_memtable_get(sh->ctx, MT_OFF, lk, 1 + ulen, NOKV_VERSION_MAX,
								   &kind, &ver, &val, &vlen) ||
				ver != (uint64_t) i + 1 || vlen != sizeof(long) || memcmp(val, &i, sizeof(i)) != 0)
				atomic_fetch_add(&sh->reader_errors, 1);
			atomic_fetch_add(&sh->reader_gets, 1);
		}
		/* a partial forward scan and a short backward walk */
		{
			nokv_iiter *it = nokv_memtable_iter_new(sh->ctx, MT_OFF);
			char		prev[96];
			size_t		prev_len = 0;
			int			steps = 0;

			for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it) && steps < 20000;
				 nokv_iiter_next(it), steps++)
			{
				size_t		klen;
				const char *k = nokv_iiter_key(it, &klen);

				if (prev_len && nokv_ikey_compare(prev, prev_len, k, klen) >= 0)
					atomic_fetch_add(&sh->reader_errors, 1);
				memcpy(prev, k, klen);
				prev_len = klen;
			}
			prev_len = 0;
			steps = 0;
			for (nokv_iiter_seek_to_last(it); nokv_iiter_valid(it) && steps < 200;
				 nokv_iiter_prev(it), steps++)
			{
				size_t		klen;
				const char *k = nokv_iiter_key(it, &klen);

				if (prev_len && nokv_ikey_compare(k, klen, prev, prev_len) >= 0)
					atomic_fetch_add(&sh->reader_errors, 1);
				memcpy(prev, k, klen);
				prev_len = klen;
			}
			nokv_iiter_destroy(it);
			atomic_fetch_add(&sh->reader_scans, 1);
		}
	}
	return NULL;
}

static void
test_threads(void)
{
	size_t		arena = 96u << 20;
	region		r;
	th_shared	sh = {0};
	th_arg		args[TH_WRITERS + 2];
	pthread_t	tids[TH_WRITERS + 2];
	bool		sorted;
	bool		all_found = true;

	region_init(&r, arena);
	sh.ctx = &r.ctx;
	for (int i = 0; i < TH_WRITERS + 2; i++)
	{
		args[i].sh = &sh;
		args[i].id = i < TH_WRITERS ? i : i - TH_WRITERS;
		if (pthread_create(&tids[i], NULL, i < TH_WRITERS ? th_writer : th_reader, &args[i]) != 0)
			tap_bail("pthread_create failed");
	}
	for (int i = 0; i < TH_WRITERS + 2; i++)
		pthread_join(tids[i], NULL);

	is_int(atomic_load(&sh.reader_errors), 0, "threads: readers saw consistent, complete data (%ld gets, %ld scans)",
		   (long) atomic_load(&sh.reader_gets), (long) atomic_load(&sh.reader_scans));
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), TH_WRITERS * TH_KEYS, "threads: entry count");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), TH_WRITERS * TH_KEYS, "threads: iterator sees all %d", TH_WRITERS * TH_KEYS);
	ok(sorted, "threads: in strict order");
	for (int w = 0; w < TH_WRITERS && all_found; w++)
		for (long i = 0; i < TH_KEYS; i++)
		{
			char		lk[64];
			size_t		ulen;
			int			kind;
			uint64_t	ver;
			const char *val;
			size_t		vlen;

			lk[0] = 0;
			ulen = th_ukey(lk + 1, w, i);
			if (!nokv_memtable_get(&r.ctx, MT_OFF, lk, 1 + ulen, NOKV_VERSION_MAX,
								   &kind, &ver, &val, &vlen) || ver != (uint64_t) i + 1)
			{
				all_found = false;
				break;
			}
		}
	ok(all_found, "threads: every key found afterwards");
	tap_diag("threads: arena used %zu of %zu bytes",
			 nokv_memtable_arena_used(&r.ctx, MT_OFF), arena);
	free(r.mem);
}


/* start n threads on fn (argument i at args + i * size), let them go at once, join them */
static void
race_threads(int n, void *(*fn) (void *), void *args, size_t size, _Atomic int *go)
{
	pthread_t	tids[8];

	if (n > 8)
		tap_bail("race_threads: at most 8 threads");
	for (int i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, fn, (char *) args + i * size) != 0)
			tap_bail("pthread_create failed");
	atomic_store(go, 1);
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

/* ---------- runs ---------- */

static char run_keys[NOKV_MT_RUN_MAX + 1][16];

/* insert user keys "u%06d" of ids (ascending) as one run; also list them in all */
static int
add_run_of(region *r, nokv_mt_hint *hint, const int *ids, int n, kv *all, int *nall)
{
	nokv_mt_entry e[NOKV_MT_RUN_MAX + 1];

	for (int i = 0; i < n; i++)
	{
		int			len = sprintf(run_keys[i], "u%06d", ids[i]);

		e[i] = (nokv_mt_entry) {
			.cf = 0, .kind = NOKV_KIND_PUT, .ukey = run_keys[i], .ukey_len = (size_t) len,
			.version = 9, .v1 = "v", .l1 = 1, .v2 = run_keys[i], .l2 = (size_t) len,
		};
		if (all)
		{
			all[*nall].klen = mk_ikey(all[*nall].k, 0, run_keys[i], (size_t) len, 9, NOKV_KIND_PUT);
			(*nall)++;
		}
	}
	return nokv_memtable_add_run(&r->ctx, MT_OFF, e, n, hint);
}

#ifdef NOKV_CHECK_INVARIANTS
typedef struct run_window
{
	region	   *r;
	kv		   *all;
	int		   *nall;
	bool		called;
} run_window;

/* the hook: 48 keys between the run's nodes "u0070NN", plain inserts */
static void
run_window_insert(void *arg)
{
	run_window *w = arg;

	w->called = true;
	for (int i = 0; i < 48; i++)
	{
		char		u[24];
		int			len = sprintf(u, "u0070%02dx", i);
		kv		   *x = &w->all[(*w->nall)++];

		x->klen = mk_ikey(x->k, 0, u, (size_t) len, 9, NOKV_KIND_PUT);
		if (nokv_memtable_add(&w->r->ctx, MT_OFF, x->k, x->klen, "w", 1) != NOKV_OK)
			tap_bail("insert inside a run failed");
	}
}
#endif

static void
test_runs(void)
{
	region		r;
	nokv_mt_hint hint = {0};
	kv		   *all = calloc(1024, sizeof(kv));
	int			nall = 0;
	int			ids[NOKV_MT_RUN_MAX + 1];
	bool		rc_ok = true;

	region_init(&r, 4 << 20);

	/* into an empty list, then after it, then before everything */
	for (int i = 0; i < 64; i++)
		ids[i] = 1000 + i;
	rc_ok &= add_run_of(&r, &hint, ids, 64, all, &nall) == NOKV_OK;
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 0, "run: counted in the hint until published");
	nokv_memtable_hint_publish(&r.ctx, &hint);
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), 64, "run: 64 entries after publishing");
	for (int i = 0; i < 64; i++)
		ids[i] = 2000 + i;
	rc_ok &= add_run_of(&r, &hint, ids, 64, all, &nall) == NOKV_OK;
	for (int i = 0; i < 64; i++)
		ids[i] = 10 + i;
	rc_ok &= add_run_of(&r, &hint, ids, 64, all, &nall) == NOKV_OK;

	/* among existing keys: evens one by one, then a run of the odds between them */
	for (int i = 0; i < 64; i++)
	{
		char		u[16];
		int			len = sprintf(u, "u%06d", 3000 + 2 * i);

		all[nall].klen = mk_ikey(all[nall].k, 0, u, (size_t) len, 9, NOKV_KIND_PUT);
		rc_ok &= nokv_memtable_add_hinted(&r.ctx, MT_OFF, all[nall].k, all[nall].klen, "v", 1,
										  u, (size_t) len, &hint) == NOKV_OK;
		nall++;
	}
	for (int i = 0; i < 64; i++)
		ids[i] = 3001 + 2 * i;
	rc_ok &= add_run_of(&r, &hint, ids, 64, all, &nall) == NOKV_OK;

	/* keys already present (replay): the first, and one in the middle */
	ids[0] = 1000;
	for (int i = 1; i < 10; i++)
		ids[i] = 1100 + i;
	rc_ok &= add_run_of(&r, &hint, ids, 10, all, &nall) == NOKV_OK;
	ids[0] = 1500;
	ids[1] = 2010;
	ids[2] = 2500;
	rc_ok &= add_run_of(&r, &hint, ids, 3, all, &nall) == NOKV_OK;

	/* a run of one */
	ids[0] = 5;
	rc_ok &= add_run_of(&r, &hint, ids, 1, all, &nall) == NOKV_OK;
	ok(rc_ok, "run: every run inserted");
	nokv_memtable_hint_publish(&r.ctx, &hint);
	check_contents(&r, all, nall, "runs");

	{
		char		k[64];
		size_t		klen = mk_ikey(k, 0, "u003001", 7, 9, NOKV_KIND_PUT);
		int			kind;
		uint64_t	ver;
		const char *val;
		size_t		vlen;

		ok(nokv_memtable_get(&r.ctx, MT_OFF, k, klen - NOKV_IKEY_TRAILER, NOKV_VERSION_MAX,
							 &kind, &ver, &val, &vlen) &&
		   kind == NOKV_KIND_PUT && ver == 9 && vlen == 8 && memcmp(val, "vu003001", 8) == 0,
		   "run: an entry's value is its two parts joined");
	}

#ifdef NOKV_CHECK_INVARIANTS
	/*
	 * Keys linked inside a run's range after its level 0 and before its
	 * higher levels (what a concurrent writer can do): the run's CAS on a
	 * higher level then fails and it links node by node from there up.
	 */
	{
		run_window w = {.r = &r, .all = all, .nall = &nall};

		for (int i = 0; i < 64; i++)
			ids[i] = 7000 + i;
		nokv_memtable_run_linked_hook = run_window_insert;
		nokv_memtable_run_linked_hook_arg = &w;
		ok(add_run_of(&r, &hint, ids, 64, all, &nall) == NOKV_OK && w.called,
		   "run: inserted with keys linked inside it before its upper levels");
		nokv_memtable_run_linked_hook = NULL;
		nokv_memtable_hint_publish(&r.ctx, &hint);
		check_contents(&r, all, nall, "runs joined by other keys");
	}
#endif

	for (int i = 0; i <= NOKV_MT_RUN_MAX; i++)
		ids[i] = 8000 + i;
	is_int(add_run_of(&r, &hint, ids, 0, NULL, NULL), NOKV_INVALID_ARGUMENT, "run: empty is refused");
	is_int(add_run_of(&r, &hint, ids, NOKV_MT_RUN_MAX + 1, NULL, NULL), NOKV_INVALID_ARGUMENT,
		   "run: more than NOKV_MT_RUN_MAX is refused");
	free(r.mem);

	/* a run that does not fit inserts nothing */
	{
		region		small;
		nokv_mt_hint h2 = {0};
		bool		sorted;

		region_init(&small, 2048);
		for (int i = 0; i < 64; i++)
			ids[i] = i;
		is_int(add_run_of(&small, &h2, ids, 64, NULL, NULL), NOKV_NO_SPACE, "run: no space");
		nokv_memtable_hint_publish(&small.ctx, &h2);
		is_int(check_sorted(&small.ctx, MT_OFF, &sorted), 0, "run: nothing of it inserted");
		ok(region_guard_intact(&small, 2048), "run: nothing written outside the arena");
		free(small.mem);
	}
	free(all);
}

/*
 * Runs racing: in one phase the writers' runs interleave in key order (run
 * i of writer w holds keys "r<i>-<w>"), so runs meet foreign nodes inside
 * their range at every level and fall back to linking node by node; in the
 * other they take blocks of consecutive ids from a shared counter and race
 * to append at the end of the list, like table rows.
 */
#define RT_WRITERS	3
#define RT_KEYS		20000
#define RT_BLOCKS	300

typedef struct rt_arg
{
	nokv_ctx   *ctx;
	int			id;
	_Atomic int *go;
	_Atomic long *next_block;
	bool		failed;
} rt_arg;

static size_t
rt_ukey_interleaved(char *u, int w, long i)
{
	return (size_t) sprintf(u, "r%08ld-%d", i, w);
}

static size_t
rt_ukey_block(char *u, long id)
{
	return (size_t) sprintf(u, "t%010ld", id);
}

static void *
rt_writer(void *p)
{
	rt_arg	   *a = p;
	nokv_mt_hint hint = {0};
	char		u[NOKV_MT_RUN_MAX][40];
	nokv_mt_entry e[NOKV_MT_RUN_MAX];
	long		i = 0;

	while (!atomic_load(a->go))
		;
	/* interleaved runs of 1..64 keys */
	while (i < RT_KEYS && !a->failed)
	{
		int			n = 1 + (int) ((i * 7 + a->id * 13) % NOKV_MT_RUN_MAX);

		if (i + n > RT_KEYS)
			n = (int) (RT_KEYS - i);
		for (int j = 0; j < n; j++)
		{
			size_t		len = rt_ukey_interleaved(u[j], a->id, i + j);

			e[j] = (nokv_mt_entry) {
				.cf = 0, .kind = NOKV_KIND_PUT, .ukey = u[j], .ukey_len = len, .version = 3,
				.v1 = "i", .l1 = 1, .v2 = u[j], .l2 = len,
			};
		}
		a->failed = nokv_memtable_add_run(a->ctx, MT_OFF, e, n, &hint) != NOKV_OK;
		i += n;
	}
	/* blocks of consecutive ids appended at the end */
	for (;;)
	{
		long		block = atomic_fetch_add(a->next_block, 1);

		if (block >= RT_BLOCKS || a->failed)
			break;
		for (int j = 0; j < NOKV_MT_RUN_MAX; j++)
		{
			size_t		len = rt_ukey_block(u[j], block * NOKV_MT_RUN_MAX + j);

			e[j] = (nokv_mt_entry) {
				.cf = 0, .kind = NOKV_KIND_PUT, .ukey = u[j], .ukey_len = len, .version = 3,
				.v1 = "b", .l1 = 1, .v2 = u[j], .l2 = len,
			};
		}
		a->failed = nokv_memtable_add_run(a->ctx, MT_OFF, e, NOKV_MT_RUN_MAX, &hint) != NOKV_OK;
	}
	nokv_memtable_hint_publish(a->ctx, &hint);
	return NULL;
}

static bool
rt_found(nokv_ctx *ctx, const char *u, size_t ulen, char tag)
{
	char		k[64];
	int			kind;
	uint64_t	ver;
	const char *val;
	size_t		vlen;

	mk_ikey(k, 0, u, ulen, 3, NOKV_KIND_PUT);
	return nokv_memtable_get(ctx, MT_OFF, k, 1 + ulen, NOKV_VERSION_MAX, &kind, &ver, &val, &vlen) &&
		vlen == 1 + ulen && val[0] == tag && memcmp(val + 1, u, ulen) == 0;
}

static void
test_run_threads(void)
{
	region		r;
	rt_arg		args[RT_WRITERS];
	_Atomic int go = 0;
	_Atomic long next_block = 0;
	long		total = RT_WRITERS * RT_KEYS + RT_BLOCKS * NOKV_MT_RUN_MAX;
	bool		sorted;
	bool		failed = false;
	bool		all_found = true;
	char		u[40];

	region_init(&r, 64u << 20);
	for (int i = 0; i < RT_WRITERS; i++)
		args[i] = (rt_arg) {.ctx = &r.ctx, .id = i, .go = &go, .next_block = &next_block};
	race_threads(RT_WRITERS, rt_writer, args, sizeof(args[0]), &go);
	for (int i = 0; i < RT_WRITERS; i++)
		failed |= args[i].failed;
	ok(!failed, "run threads: every run inserted");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), total, "run threads: entry count");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), total, "run threads: iterator sees all %ld", total);
	ok(sorted, "run threads: in strict order");
	for (int w = 0; w < RT_WRITERS && all_found; w++)
		for (long i = 0; i < RT_KEYS && all_found; i++)
			all_found = rt_found(&r.ctx, u, rt_ukey_interleaved(u, w, i), 'i');
	for (long id = 0; id < RT_BLOCKS * NOKV_MT_RUN_MAX && all_found; id++)
		all_found = rt_found(&r.ctx, u, rt_ukey_block(u, id), 'b');
	ok(all_found, "run threads: every key found with its value");
	free(r.mem);
}

/*
 * Writers with their own hints, each inserting an ascending run that
 * interleaves with the others' (writer w's i-th key sorts between the
 * others' i-th keys): every hint goes stale between two of its inserts, so
 * the linking CAS keeps failing over to a search from the hinted prev.
 */
#define HT_WRITERS	3
#define HT_KEYS		40000

typedef struct ht_arg
{
	nokv_ctx   *ctx;
	int			id;
	_Atomic int *go;
	bool		failed;
} ht_arg;

static size_t
ht_ikey(char *k, int w, long i)
{
	char		u[32];
	size_t		ulen = (size_t) sprintf(u, "run%08ld-%d", i, w);

	return mk_ikey(k, 0, u, ulen, 5, NOKV_KIND_PUT);
}

static void *
ht_writer(void *p)
{
	ht_arg	   *a = p;
	nokv_mt_hint hint = {0};
	char		k[64];

	while (!atomic_load(a->go))
		;
	for (long i = 0; i < HT_KEYS && !a->failed; i++)
	{
		size_t		klen = ht_ikey(k, a->id, i);

		a->failed = nokv_memtable_add_hinted(a->ctx, MT_OFF, k, klen, "h", 1, k, klen,
											 &hint) != NOKV_OK;
		/* now and then a key the hint cannot serve (below its last one) */
		if (i % 1000 == 999 && !a->failed)
		{
			klen = ht_ikey(k, a->id, i - 500);
			a->failed = nokv_memtable_add_hinted(a->ctx, MT_OFF, k, klen, "h", 1, k, klen,
												 &hint) != NOKV_OK;
		}
		if (i % 100 == 0)
			nokv_memtable_hint_publish(a->ctx, &hint);
	}
	nokv_memtable_hint_publish(a->ctx, &hint);
	return NULL;
}

static void
test_hinted_threads(void)
{
	region		r;
	ht_arg		args[HT_WRITERS];
	_Atomic int go = 0;
	bool		sorted;
	bool		failed = false;
	bool		all_found = true;

	region_init(&r, 64u << 20);
	for (int i = 0; i < HT_WRITERS; i++)
		args[i] = (ht_arg) {.ctx = &r.ctx, .id = i, .go = &go};
	race_threads(HT_WRITERS, ht_writer, args, sizeof(args[0]), &go);
	for (int i = 0; i < HT_WRITERS; i++)
		failed |= args[i].failed;
	ok(!failed, "hinted threads: every insert succeeded");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), HT_WRITERS * HT_KEYS,
		   "hinted threads: entry count (re-inserted keys are no-ops)");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), HT_WRITERS * HT_KEYS,
		   "hinted threads: iterator sees all %d", HT_WRITERS * HT_KEYS);
	ok(sorted, "hinted threads: in strict order");
	for (int w = 0; w < HT_WRITERS && all_found; w++)
		for (long i = 0; i < HT_KEYS && all_found; i++)
		{
			char		k[64];
			size_t		klen = ht_ikey(k, w, i);
			int			kind;
			uint64_t	ver;
			const char *val;
			size_t		vlen;

			all_found = nokv_memtable_get(&r.ctx, MT_OFF, k, klen - NOKV_IKEY_TRAILER,
										  NOKV_VERSION_MAX, &kind, &ver, &val, &vlen) &&
				vlen == 1 + klen && val[0] == 'h' && memcmp(val + 1, k, klen) == 0;
		}
	ok(all_found, "hinted threads: every key found with its value");
	free(r.mem);
}

/* several threads racing to insert the same keys: one wins each */

#define DUP_THREADS	4
#define DUP_KEYS	20000

typedef struct dup_arg
{
	nokv_ctx   *ctx;
	int			id;
	_Atomic int *go;
} dup_arg;

static void *
dup_worker(void *p)
{
	dup_arg    *a = p;
	char		u[32],
				k[64];

	while (!atomic_load(a->go))
		;
	for (int j = 0; j < DUP_KEYS; j++)
	{
		/* threads walk the keys in different orders, but collide often */
		int			i = a->id & 1 ? DUP_KEYS - 1 - j : j;
		size_t		ulen = (size_t) sprintf(u, "dup%07d", i);
		size_t		klen = mk_ikey(k, 0, u, ulen, 9, NOKV_KIND_PUT);

		nokv_memtable_add(a->ctx, MT_OFF, k, klen, u, ulen);
	}
	return NULL;
}

static void
test_duplicate_race(void)
{
	region		r;
	pthread_t	tids[DUP_THREADS];
	dup_arg		args[DUP_THREADS];
	_Atomic int go = 0;
	bool		sorted;

	region_init(&r, 16u << 20);
	for (int i = 0; i < DUP_THREADS; i++)
	{
		args[i] = (dup_arg)
		{
			.ctx = &r.ctx, .id = i, .go = &go
		};
		pthread_create(&tids[i], NULL, dup_worker, &args[i]);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < DUP_THREADS; i++)
		pthread_join(tids[i], NULL);
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), DUP_KEYS, "dup race: each key counted once");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), DUP_KEYS, "dup race: each key present once");
	ok(sorted, "dup race: strictly sorted (no duplicates)");
	free(r.mem);
}

/*
 * Lock-step rounds: in each round every thread inserts the same key at
 * nearly the same moment, so some inserts pass the duplicate check of the
 * search, allocate a node and only lose at the level-0 compare-and-swap.
 * Those losers show up as arena bytes used beyond what the winners need.
 */

#define STEP_THREADS 2
#define STEP_ROUNDS	30000

typedef struct step_shared
{
	nokv_ctx   *ctx;
	_Atomic int arrived;
} step_shared;

static void *
step_worker(void *p)
{
	step_shared *sh = p;
	char		u[32],
				k[64];

	for (int round = 0; round < STEP_ROUNDS; round++)
	{
		size_t		ulen = (size_t) sprintf(u, "step%07d", round);
		size_t		klen = mk_ikey(k, 0, u, ulen, 3, NOKV_KIND_PUT);
		int			target = (round + 1) * STEP_THREADS;
		long		spins = 0;

		/* barrier: wait until every thread reached this round */
		atomic_fetch_add(&sh->arrived, 1);
		while (atomic_load(&sh->arrived) < target)
			if (++spins > 1000)
			{
				sched_yield();
				spins = 0;
			}
		if (nokv_memtable_add(sh->ctx, MT_OFF, k, klen, u, ulen) != NOKV_OK)
			return (void *) 1;
	}
	return NULL;
}

static void
test_lockstep_duplicates(void)
{
	region		r;
	step_shared sh = {0};
	pthread_t	tids[STEP_THREADS];
	bool		failed = false;
	bool		sorted;
	size_t		used0,
				used;

	region_init(&r, 16u << 20);
	sh.ctx = &r.ctx;
	used0 = nokv_memtable_arena_used(&r.ctx, MT_OFF);
	for (int i = 0; i < STEP_THREADS; i++)
		pthread_create(&tids[i], NULL, step_worker, &sh);
	for (int i = 0; i < STEP_THREADS; i++)
	{
		void	   *rv;

		pthread_join(tids[i], &rv);
		failed = failed || rv != NULL;
	}
	ok(!failed, "lock-step: every insert returned ok");
	is_int(nokv_memtable_entries(&r.ctx, MT_OFF), STEP_ROUNDS, "lock-step: one entry per round");
	is_int(check_sorted(&r.ctx, MT_OFF, &sorted), STEP_ROUNDS, "lock-step: one node per key in the list");
	ok(sorted, "lock-step: strictly sorted");
	/* lost races waste a node each; a livelock there would hang this test */
	used = nokv_memtable_arena_used(&r.ctx, MT_OFF) - used0;
	tap_diag("lock-step: %.1f arena bytes per entry", (double) used / STEP_ROUNDS);
	free(r.mem);
}

/* ---------- processes ---------- */

#define PROC_CHILDREN	3
#define PROC_KEYS		30000
#define PROC_COMMON		5000

/* child c inserts its own keys and a common set every child also inserts */
static int
proc_child_work(nokv_ctx *ctx, int c)
{
	char		u[32],
				k[64];

	for (int i = 0; i < PROC_KEYS; i++)
	{
		size_t		ulen = (size_t) sprintf(u, "p%d-%07d", c, (i * 7907) % PROC_KEYS);
		size_t		klen = mk_ikey(k, 0, u, ulen, (uint64_t) c + 1, NOKV_KIND_PUT);

		if (nokv_memtable_add(ctx, MT_OFF, k, klen, u, ulen) != NOKV_OK)
			return 1;
		if (i % 6 == 0)
		{
			int			j = i / 6;

			ulen = (size_t) sprintf(u, "common%07d", c & 1 ? PROC_COMMON - 1 - j : j);
			klen = mk_ikey(k, 0, u, ulen, 1, NOKV_KIND_PUT);
			if (nokv_memtable_add(ctx, MT_OFF, k, klen, u, ulen) != NOKV_OK)
				return 1;
		}
	}
	return 0;
}

/* parent side: everything every child wrote is there, once, in order */
static bool
proc_verify(nokv_ctx *ctx, const char *what)
{
	bool		sorted;
	long		n = check_sorted(ctx, MT_OFF, &sorted);
	bool		all = true;

	is_int(n, PROC_CHILDREN * PROC_KEYS + PROC_COMMON, "%s: iterator sees every entry once", what);
	ok(sorted, "%s: strictly sorted", what);
	is_int(nokv_memtable_entries(ctx, MT_OFF), PROC_CHILDREN * PROC_KEYS + PROC_COMMON,
		   "%s: entry count", what);
	for (int c = 0; c < PROC_CHILDREN && all; c++)
		for (int i = 0; i < PROC_KEYS; i++)
		{
			char		lk[32];
			size_t		ulen;
			int			kind;
			uint64_t	ver;
			const char *val;
			size_t		vlen;

			lk[0] = 0;
			ulen = (size_t) sprintf(lk + 1, "p%d-%07d", c, i);
			if (!nokv_memtable_get(ctx, MT_OFF, lk, 1 + ulen, 100, &kind, &ver, &val, &vlen) ||
				ver != (uint64_t) c + 1 || vlen != ulen || memcmp(val, lk + 1, ulen) != 0)
			{
				tap_diag("missing p%d-%07d", c, i);
				all = false;
				break;
			}
		}
	ok(all, "%s: every child's key found with its value", what);
	return all;
}

static bool
proc_wait_children(pid_t *pids)
{
	bool		good = true;

	for (int c = 0; c < PROC_CHILDREN; c++)
	{
		int			st;

		if (waitpid(pids[c], &st, 0) != pids[c] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			good = false;
	}
	return good;
}

static void
test_processes_anonymous(void)
{
	size_t		arena = 16u << 20;
	size_t		size = MT_OFF + nokv_memtable_header_size() + arena;
	char	   *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	nokv_ctx	ctx = {.base = mem};
	pid_t		pids[PROC_CHILDREN];

	if (mem == MAP_FAILED)
		tap_bail("mmap failed");
	nokv_memtable_format(&ctx, MT_OFF, arena);
	fflush(stdout);
	for (int c = 0; c < PROC_CHILDREN; c++)
	{
		pids[c] = fork();
		if (pids[c] < 0)
			tap_bail("fork failed");
		if (pids[c] == 0)
			_exit(proc_child_work(&ctx, c));
	}
	ok(proc_wait_children(pids), "fork: children inserted without error");
	proc_verify(&ctx, "fork");
	munmap(mem, size);
}

static void
test_processes_memfd(void)
{
	size_t		arena = 16u << 20;
	size_t		size = MT_OFF + nokv_memtable_header_size() + arena;
	int			fd = memfd_create("nokv-memtable-test", 0);
	char	   *map_a,
			   *map_b;
	nokv_ctx	ctx_a = {0},
				ctx_b = {0};
	pid_t		pids[PROC_CHILDREN];

	if (fd < 0 || ftruncate(fd, (off_t) size) != 0)
		tap_bail("memfd_create failed");
	map_a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	map_b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map_a == MAP_FAILED || map_b == MAP_FAILED)
		tap_bail("mmap failed");
	ok(map_a != map_b, "memfd: two mappings at different addresses");
	ctx_a.base = map_a;
	ctx_b.base = map_b;

	/* format through one mapping, insert through the other */
	nokv_memtable_format(&ctx_a, MT_OFF, arena);
	is_int(add(&ctx_b, 0, "seen-through-b", 1, NOKV_KIND_PUT, "x"), NOKV_OK, "memfd: insert via mapping b");
	{
		int			kind;
		uint64_t	ver;
		const char *val;
		size_t		vlen;

		ok(nokv_memtable_get(&ctx_a, MT_OFF, "\0seen-through-b", 15, 1, &kind, &ver, &val, &vlen) &&
		   val >= map_a && val < map_a + size, "memfd: found via mapping a, value points into a");
	}
	nokv_memtable_reset(&ctx_b, MT_OFF);

	/*
	 * child 0 inserts through mapping a, child 1 through mapping b, child 2
	 * through a third mapping of its own made after the fork
	 */
	fflush(stdout);
	for (int c = 0; c < PROC_CHILDREN; c++)
	{
		pids[c] = fork();
		if (pids[c] < 0)
			tap_bail("fork failed");
		if (pids[c] == 0)
		{
			nokv_ctx	cctx = {0};

			if (c == 0)
				cctx.base = map_a;
			else if (c == 1)
				cctx.base = map_b;
			else
			{
				munmap(map_a, size);
				cctx.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
				if (cctx.base == MAP_FAILED)
					_exit(2);
			}
			_exit(proc_child_work(&cctx, c));
		}
	}

	/* the parent reads through mapping b while the children write */
	{
		bool		sorted = true;

		for (int i = 0; i < 20; i++)
		{
			bool		s;

			check_sorted(&ctx_b, MT_OFF, &s);
			sorted = sorted && s;
		}
		ok(sorted, "memfd: concurrent scans through mapping b always sorted");
	}
	ok(proc_wait_children(pids), "memfd: children inserted without error");
	proc_verify(&ctx_a, "memfd via a");
	proc_verify(&ctx_b, "memfd via b");
	munmap(map_a, size);
	munmap(map_b, size);
	close(fd);
}

int
main(void)
{
	test_empty();
	test_costs();
	test_ordering();
	test_ordering_random();
	test_hinted();
	test_get();
	test_duplicates();
	test_no_space();
	test_iterator();
	test_tombstones();
	test_duplicate_race();
	test_lockstep_duplicates();
	test_threads();
	test_hinted_threads();
	test_runs();
	test_run_threads();
	test_processes_anonymous();
	test_processes_memfd();
	return tap_done();
}
