/*-------------------------------------------------------------------------
 *
 * test_merge_iter.c
 *	  Unit tests for the merging iterator and the empty iterator.
 *
 * The children are in-memory vector iterators over sorted internal keys,
 * optionally rigged to fail after a number of positioning calls.  Random
 * key sets spread over 1..20 children (with the same internal key present
 * in several children) are merged and compared against a sorted reference
 * of (internal key, child index) pairs: forward and backward scans, seeks,
 * seek + prev, and random next/prev walks that switch direction often.
 *
 * test/engine/test_merge_iter.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coding.h"
#include "nokv/ikey.h"
#include "nokv/iter.h"
#include "nokv/status.h"
#include "tap.h"

/* ---------- a vector iterator ---------- */

typedef struct vec_entry
{
	char	   *key;
	size_t		klen;
	char	   *val;
	size_t		vlen;
} vec_entry;

typedef struct vec_iter
{
	nokv_iiter	base;
	vec_entry  *e;
	int			n;
	int			pos;			/* -1 = invalid */
	int			fail_after;		/* positioning calls left before failing; -1 never */
	bool		failed;
	int		   *destroyed;		/* incremented on destroy */
} vec_iter;

static bool
vec_tick(vec_iter *v)
{
	if (v->failed)
		return false;
	if (v->fail_after == 0)
	{
		v->failed = true;
		v->pos = -1;
		return false;
	}
	if (v->fail_after > 0)
		v->fail_after--;
	return true;
}

static bool
vec_valid(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	return !v->failed && v->pos >= 0 && v->pos < v->n;
}

static void
vec_seek_to_first(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	if (vec_tick(v))
		v->pos = v->n > 0 ? 0 : -1;
}

static void
vec_seek_to_last(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	if (vec_tick(v))
		v->pos = v->n - 1;
}

static void
vec_seek(nokv_iiter *it, const char *k, size_t len)
{
	vec_iter   *v = (vec_iter *) it;
	int			lo = 0,
				hi = v->n;

	if (!vec_tick(v))
		return;
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (nokv_ikey_compare(v->e[mid].key, v->e[mid].klen, k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	v->pos = lo < v->n ? lo : -1;
}

static void
vec_next(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	if (!vec_valid(it))
		abort();				/* the merge must never step an invalid child */
	if (vec_tick(v))
	{
		v->pos++;
		if (v->pos >= v->n)
			v->pos = -1;
	}
}

static void
vec_prev(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	if (!vec_valid(it))
		abort();
	if (vec_tick(v))
		v->pos--;
}

static const char *
vec_key(nokv_iiter *it, size_t *len)
{
	vec_iter   *v = (vec_iter *) it;

	*len = v->e[v->pos].klen;
	return v->e[v->pos].key;
}

static const char *
vec_value(nokv_iiter *it, size_t *len)
{
	vec_iter   *v = (vec_iter *) it;

	*len = v->e[v->pos].vlen;
	return v->e[v->pos].val;
}

static int
vec_status(nokv_iiter *it, nokv_error *err)
{
	vec_iter   *v = (vec_iter *) it;

	if (v->failed)
		return nokv_error_set(err, NOKV_IO_ERROR, "injected failure in child %p", (void *) v);
	return NOKV_OK;
}

static void
vec_destroy(nokv_iiter *it)
{
	vec_iter   *v = (vec_iter *) it;

	if (v->destroyed)
		(*v->destroyed)++;
	free(v);
}

static const nokv_iiter_ops vec_ops = {
	.valid = vec_valid,
	.seek_to_first = vec_seek_to_first,
	.seek_to_last = vec_seek_to_last,
	.seek = vec_seek,
	.next = vec_next,
	.prev = vec_prev,
	.key = vec_key,
	.value = vec_value,
	.status = vec_status,
	.destroy = vec_destroy,
};

/* the iterator borrows e (owned by the test) */
static nokv_iiter *
vec_new(vec_entry *e, int n, int fail_after, int *destroyed)
{
	vec_iter   *v = calloc(1, sizeof(*v));

	v->base.ops = &vec_ops;
	v->e = e;
	v->n = n;
	v->pos = -1;
	v->fail_after = fail_after;
	v->destroyed = destroyed;
	return &v->base;
}

/* ---------- test data ---------- */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int
rnd_int(int n)
{
	return (int) (rnd() % (uint64_t) n);
}

static char *
make_ikey(int cf, const char *ukey, uint64_t version, int kind, size_t *len)
{
	size_t		ulen = strlen(ukey);
	char	   *k = malloc(nokv_ikey_size(ulen));

	nokv_ikey_encode(k, cf, ukey, ulen, version, kind);
	*len = nokv_ikey_size(ulen);
	return k;
}

typedef struct ref_entry
{
	const char *key;
	size_t		klen;
	int			child;
	const char *val;
	size_t		vlen;
} ref_entry;

static int
cmp_vec_entry(const void *a, const void *b)
{
	const vec_entry *x = a,
			   *y = b;

	return nokv_ikey_compare(x->key, x->klen, y->key, y->klen);
}

static int
cmp_ref_entry(const void *a, const void *b)
{
	const ref_entry *x = a,
			   *y = b;
	int			c = nokv_ikey_compare(x->key, x->klen, y->key, y->klen);

	if (c != 0)
		return c;
	return x->child - y->child;
}

/* one randomly generated scenario */
typedef struct scenario
{
	int			nchildren;
	vec_entry **child_entries;
	int		   *child_n;
	ref_entry  *ref;
	int			nref;
	/* the pool of distinct internal keys */
	char	  **pool;
	size_t	   *pool_len;
	int			npool;
} scenario;

static void
scenario_build(scenario *s, int nchildren, int nkeys, int density_pct)
{
	memset(s, 0, sizeof(*s));
	s->nchildren = nchildren;

	/* a pool of distinct internal keys: few user keys, several versions each */
	s->npool = nkeys;
	s->pool = calloc(nkeys, sizeof(char *));
	s->pool_len = calloc(nkeys, sizeof(size_t));
	for (int i = 0; i < nkeys;)
	{
		char		ukey[32];
		size_t		len;
		char	   *k;
		bool		dup = false;

		snprintf(ukey, sizeof(ukey), "k%03d", rnd_int(nkeys / 3 + 1));
		if (rnd_int(8) == 0)
			ukey[3] = '\0';		/* prefixes of other keys */
		k = make_ikey(rnd_int(2), ukey, 1 + rnd_int(6), 1 + rnd_int(2), &len);
		for (int j = 0; j < i && !dup; j++)
			dup = s->pool_len[j] == len && memcmp(s->pool[j], k, len) == 0;
		if (dup)
		{
			free(k);
			continue;
		}
		s->pool[i] = k;
		s->pool_len[i] = len;
		i++;
	}

	s->child_entries = calloc(nchildren, sizeof(vec_entry *));
	s->child_n = calloc(nchildren, sizeof(int));
	s->ref = calloc((size_t) nchildren * nkeys + 1, sizeof(ref_entry));
	for (int c = 0; c < nchildren; c++)
	{
		vec_entry  *e = calloc(nkeys + 1, sizeof(vec_entry));
		int			n = 0;

		/* some children are empty, some hold everything */
		int			pct = rnd_int(10) == 0 ? 0 : (rnd_int(10) == 0 ? 100 : density_pct);

		for (int i = 0; i < nkeys; i++)
		{
			char		val[64];

			if (rnd_int(100) >= pct)
				continue;
			snprintf(val, sizeof(val), "child%d-entry%d", c, i);
			e[n].key = s->pool[i];
			e[n].klen = s->pool_len[i];
			e[n].val = strdup(val);
			e[n].vlen = strlen(val);
			n++;
		}
		qsort(e, n, sizeof(vec_entry), cmp_vec_entry);
		s->child_entries[c] = e;
		s->child_n[c] = n;
		for (int i = 0; i < n; i++)
			s->ref[s->nref++] = (ref_entry) {e[i].key, e[i].klen, c, e[i].val, e[i].vlen};
	}
	qsort(s->ref, s->nref, sizeof(ref_entry), cmp_ref_entry);
}

static void
scenario_free(scenario *s)
{
	for (int c = 0; c < s->nchildren; c++)
	{
		for (int i = 0; i < s->child_n[c]; i++)
			free(s->child_entries[c][i].val);
		free(s->child_entries[c]);
	}
	for (int i = 0; i < s->npool; i++)
		free(s->pool[i]);
	free(s->pool);
	free(s->pool_len);
	free(s->child_entries);
	free(s->child_n);
	free(s->ref);
}

static nokv_iiter *
scenario_merge(scenario *s, int *destroyed)
{
	nokv_iiter **kids = calloc(s->nchildren, sizeof(nokv_iiter *));
	nokv_iiter *m;

	for (int c = 0; c < s->nchildren; c++)
		kids[c] = vec_new(s->child_entries[c], s->child_n[c], -1, destroyed);
	m = nokv_merge_iter_new(kids, s->nchildren);
	free(kids);
	return m;
}

/* does the merge sit on reference entry pos (or is invalid when pos is out of range)? */
static bool
at_ref(nokv_iiter *m, scenario *s, int pos)
{
	size_t		klen,
				vlen;
	const char *k,
			   *v;

	if (pos < 0 || pos >= s->nref)
		return !nokv_iiter_valid(m);
	if (!nokv_iiter_valid(m))
		return false;
	k = nokv_iiter_key(m, &klen);
	v = nokv_iiter_value(m, &vlen);
	return klen == s->ref[pos].klen && memcmp(k, s->ref[pos].key, klen) == 0 &&
		vlen == s->ref[pos].vlen && memcmp(v, s->ref[pos].val, vlen) == 0;
}

/* first reference position >= the internal key */
static int
ref_lower_bound(scenario *s, const char *k, size_t len)
{
	int			lo = 0,
				hi = s->nref;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (nokv_ikey_compare(s->ref[mid].key, s->ref[mid].klen, k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* a seek target: an existing key, or a synthetic one between keys */
static char *
random_target(scenario *s, size_t *len)
{
	if (s->npool > 0 && rnd_int(2) == 0)
	{
		int			i = rnd_int(s->npool);

		*len = s->pool_len[i];
		return nokv_memdup(s->pool[i], *len);
	}
	else
	{
		char		ukey[32];

		snprintf(ukey, sizeof(ukey), "k%03d%s", rnd_int(s->npool / 3 + 2),
				 rnd_int(3) == 0 ? "x" : "");
		return make_ikey(rnd_int(3), ukey, rnd_int(8), rnd_int(3), len);
	}
}

/* ---------- the randomized comparison ---------- */

static void
test_random(int rounds)
{
	int			fwd_ok = 0,
				bwd_ok = 0,
				seek_ok = 0,
				seekprev_ok = 0,
				walk_ok = 0,
				destroy_ok = 0;

	for (int round = 0; round < rounds; round++)
	{
		scenario	s;
		int			nchildren = 1 + rnd_int(20);
		int			destroyed = 0;
		nokv_iiter *m;
		bool		good;
		int			pos;

		scenario_build(&s, nchildren, 10 + rnd_int(120), 10 + rnd_int(60));
		m = scenario_merge(&s, &destroyed);

		/* forward */
		good = true;
		pos = 0;
		for (nokv_iiter_seek_to_first(m); nokv_iiter_valid(m); nokv_iiter_next(m))
			good = good && at_ref(m, &s, pos++);
		good = good && pos == s.nref && nokv_iiter_status(m, NULL) == NOKV_OK;
		fwd_ok += good;

		/* backward */
		good = true;
		pos = s.nref - 1;
		for (nokv_iiter_seek_to_last(m); nokv_iiter_valid(m); nokv_iiter_prev(m))
			good = good && at_ref(m, &s, pos--);
		good = good && pos == -1;
		bwd_ok += good;

		/* seek, then seek + prev + next */
		good = true;
		for (int i = 0; i < 30; i++)
		{
			size_t		tlen;
			char	   *t = random_target(&s, &tlen);
			int			p = ref_lower_bound(&s, t, tlen);

			nokv_iiter_seek(m, t, tlen);
			good = good && at_ref(m, &s, p);
			free(t);
		}
		seek_ok += good;

		good = true;
		for (int i = 0; i < 30; i++)
		{
			size_t		tlen;
			char	   *t = random_target(&s, &tlen);
			int			p = ref_lower_bound(&s, t, tlen);

			nokv_iiter_seek(m, t, tlen);
			if (nokv_iiter_valid(m))
			{
				nokv_iiter_prev(m);
				good = good && at_ref(m, &s, p - 1);
				if (nokv_iiter_valid(m))
				{
					nokv_iiter_next(m);
					good = good && at_ref(m, &s, p);
					nokv_iiter_prev(m);
					nokv_iiter_prev(m);
					good = good && at_ref(m, &s, p - 2);
				}
			}
			else
				good = good && p == s.nref;
			free(t);
		}
		seekprev_ok += good;

		/* random walks alternating next and prev */
		good = true;
		for (int w = 0; w < 10 && good; w++)
		{
			size_t		tlen;
			char	   *t = random_target(&s, &tlen);
			int			p = ref_lower_bound(&s, t, tlen);

			nokv_iiter_seek(m, t, tlen);
			free(t);
			for (int step = 0; step < 200 && good && nokv_iiter_valid(m); step++)
			{
				if (rnd_int(2) == 0)
				{
					nokv_iiter_next(m);
					p++;
				}
				else
				{
					nokv_iiter_prev(m);
					p--;
				}
				good = at_ref(m, &s, p);
			}
		}
		walk_ok += good;

		nokv_iiter_destroy(m);
		destroy_ok += (nchildren == 1 ? destroyed == 1 : destroyed == nchildren);
		scenario_free(&s);
	}
	is_int(fwd_ok, rounds, "forward scans match the reference (%d rounds)", rounds);
	is_int(bwd_ok, rounds, "backward scans mirror the forward order");
	is_int(seek_ok, rounds, "seeks land on the first entry >= target, lowest child first");
	is_int(seekprev_ok, rounds, "seek + prev + next + prev prev agree with the reference");
	is_int(walk_ok, rounds, "random next/prev walks agree with the reference");
	is_int(destroy_ok, rounds, "every child is destroyed with the merge");
}

/* ---------- explicit tie ordering ---------- */

static void
test_ties(int nchildren)
{
	size_t		klen_a,
				klen_b,
				vlen,
				klen;
	char	   *ka = make_ikey(0, "a", 5, NOKV_KIND_PUT, &klen_a);
	char	   *kb = make_ikey(0, "b", 5, NOKV_KIND_PUT, &klen_b);
	vec_entry  *e = calloc(nchildren * 2, sizeof(vec_entry));
	nokv_iiter **kids = calloc(nchildren, sizeof(nokv_iiter *));
	nokv_iiter *m;
	char		want[64];
	const char *v;
	bool		good = true;

	/* every child holds a and b: (a,0) (a,1) ... (b,0) (b,1) ... */
	for (int c = 0; c < nchildren; c++)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "a%d", c);
		e[2 * c] = (vec_entry) {ka, klen_a, strdup(buf), strlen(buf)};
		snprintf(buf, sizeof(buf), "b%d", c);
		e[2 * c + 1] = (vec_entry) {kb, klen_b, strdup(buf), strlen(buf)};
		kids[c] = vec_new(&e[2 * c], 2, -1, NULL);
	}
	m = nokv_merge_iter_new(kids, nchildren);

	nokv_iiter_seek_to_first(m);
	for (int c = 0; c < nchildren; c++, nokv_iiter_next(m))
	{
		snprintf(want, sizeof(want), "a%d", c);
		v = nokv_iiter_value(m, &vlen);
		good = good && nokv_iiter_valid(m) && vlen == strlen(want) && memcmp(v, want, vlen) == 0;
	}
	v = nokv_iiter_value(m, &vlen);
	good = good && vlen == 2 && memcmp(v, "b0", 2) == 0;
	ok(good, "%d children: forward order among identical keys is child 0, 1, ...", nchildren);

	good = true;
	nokv_iiter_seek_to_last(m);
	for (int c = nchildren - 1; c >= 0; c--, nokv_iiter_prev(m))
	{
		snprintf(want, sizeof(want), "b%d", c);
		v = nokv_iiter_value(m, &vlen);
		good = good && nokv_iiter_valid(m) && vlen == strlen(want) && memcmp(v, want, vlen) == 0;
	}
	v = nokv_iiter_value(m, &vlen);
	snprintf(want, sizeof(want), "a%d", nchildren - 1);
	good = good && vlen == strlen(want) && memcmp(v, want, vlen) == 0;
	ok(good, "%d children: backward order among identical keys is the mirror", nchildren);

	/* turn around in the middle of a run of identical keys */
	if (nchildren >= 3)
	{
		good = true;
		nokv_iiter_seek(m, ka, klen_a);
		nokv_iiter_next(m);		/* (a,1) */
		nokv_iiter_prev(m);		/* (a,0) */
		v = nokv_iiter_value(m, &vlen);
		good = good && vlen == 2 && memcmp(v, "a0", 2) == 0;
		nokv_iiter_next(m);		/* (a,1) */
		v = nokv_iiter_value(m, &vlen);
		good = good && vlen == 2 && memcmp(v, "a1", 2) == 0;
		nokv_iiter_next(m);		/* (a,2) */
		v = nokv_iiter_value(m, &vlen);
		good = good && vlen == 2 && memcmp(v, "a2", 2) == 0;
		nokv_iiter_prev(m);
		nokv_iiter_prev(m);		/* (a,0) */
		nokv_iiter_prev(m);		/* before the start */
		good = good && !nokv_iiter_valid(m);
		nokv_iiter_seek(m, kb, klen_b);
		nokv_iiter_prev(m);		/* last a */
		v = nokv_iiter_value(m, &vlen);
		snprintf(want, sizeof(want), "a%d", nchildren - 1);
		good = good && vlen == strlen(want) && memcmp(v, want, vlen) == 0;
		nokv_iiter_next(m);		/* (b,0) */
		v = nokv_iiter_value(m, &vlen);
		nokv_iiter_key(m, &klen);
		good = good && vlen == 2 && memcmp(v, "b0", 2) == 0 && klen == klen_b;
		ok(good, "%d children: direction switches inside a run of identical keys", nchildren);
	}

	nokv_iiter_destroy(m);
	for (int i = 0; i < nchildren * 2; i++)
		free(e[i].val);
	free(e);
	free(kids);
	free(ka);
	free(kb);
}

/* ---------- errors ---------- */

static void
test_errors(void)
{
	size_t		klen;
	vec_entry	e[50];
	char	   *keys[50];
	nokv_iiter *kids[6];
	nokv_iiter *m;
	nokv_error	err;
	int			seen;

	for (int i = 0; i < 50; i++)
	{
		char		ukey[16];

		snprintf(ukey, sizeof(ukey), "key%02d", i);
		keys[i] = make_ikey(0, ukey, 1, NOKV_KIND_PUT, &klen);
		e[i] = (vec_entry) {keys[i], klen, "v", 1};
	}

	for (int heap = 0; heap < 2; heap++)
	{
		int			n = heap ? 6 : 3;

		/* child 1 fails on its 5th positioning call */
		for (int c = 0; c < n; c++)
			kids[c] = vec_new(&e[c * 8], 8, c == 1 ? 4 : -1, NULL);
		m = nokv_merge_iter_new(kids, n);
		seen = 0;
		for (nokv_iiter_seek_to_first(m); nokv_iiter_valid(m); nokv_iiter_next(m))
			seen++;
		ok(seen < n * 8, "%s merge stops at a failing child (saw %d)", heap ? "heap" : "linear", seen);
		nokv_error_clear(&err);
		is_int(nokv_iiter_status(m, &err), NOKV_IO_ERROR, "status reports the child's code");
		ok(strstr(err.msg, "injected failure") != NULL, "status copies the child's message");
		nokv_iiter_seek_to_first(m);
		ok(!nokv_iiter_valid(m), "the error is sticky across seeks");
		nokv_iiter_destroy(m);

		/* failure on the very first seek; the lowest failing child is reported */
		for (int c = 0; c < n; c++)
			kids[c] = vec_new(&e[c * 8], 8, c == 2 ? 0 : -1, NULL);
		m = nokv_merge_iter_new(kids, n);
		nokv_iiter_seek(m, keys[3], klen);
		ok(!nokv_iiter_valid(m), "failure during seek makes the merge invalid");
		is_int(nokv_iiter_status(m, NULL), NOKV_IO_ERROR, "status without an error buffer");
		nokv_iiter_destroy(m);

		/* failure while switching direction */
		for (int c = 0; c < n; c++)
			kids[c] = vec_new(&e[c * 8], 8, c == 0 ? 2 : -1, NULL);
		m = nokv_merge_iter_new(kids, n);
		nokv_iiter_seek_to_first(m);	/* child 0: 1 call left */
		nokv_iiter_seek_to_last(m); /* child 0: 0 left */
		nokv_iiter_prev(m);
		nokv_iiter_next(m);		/* switching forward re-seeks child 0: fails */
		ok(!nokv_iiter_valid(m) && nokv_iiter_status(m, NULL) == NOKV_IO_ERROR,
		   "failure while turning around is reported");
		nokv_iiter_destroy(m);
	}

	for (int i = 0; i < 50; i++)
		free(keys[i]);
}

static void
test_edge_cases(void)
{
	nokv_iiter *m;
	nokv_error	err,
				in;
	size_t		len;
	vec_entry	e[3];
	char	   *keys[3];
	nokv_iiter *kids[3];
	int			destroyed = 0;

	m = nokv_merge_iter_new(NULL, 0);
	nokv_iiter_seek_to_first(m);
	ok(!nokv_iiter_valid(m), "merge of nothing is empty");
	is_int(nokv_iiter_status(m, NULL), NOKV_OK, "merge of nothing has ok status");
	nokv_iiter_destroy(m);

	m = nokv_empty_iter_new(NULL);
	nokv_iiter_seek_to_last(m);
	nokv_iiter_seek(m, "x", 1);
	ok(!nokv_iiter_valid(m) && nokv_iiter_key(m, &len) == NULL && len == 0, "empty iterator is never valid");
	is_int(nokv_iiter_status(m, NULL), NOKV_OK, "empty iterator without error is ok");
	nokv_iiter_destroy(m);

	nokv_error_set(&in, NOKV_CORRUPTION, "bad block at offset %d", 7);
	m = nokv_empty_iter_new(&in);
	nokv_error_clear(&err);
	is_int(nokv_iiter_status(m, &err), NOKV_CORRUPTION, "empty iterator carries the error code");
	is_str(err.msg, "bad block at offset 7", "empty iterator carries the error message");
	nokv_iiter_destroy(m);

	nokv_error_clear(&in);
	m = nokv_empty_iter_new(&in);
	is_int(nokv_iiter_status(m, NULL), NOKV_OK, "an ok error record yields ok");
	nokv_iiter_destroy(m);

	for (int i = 0; i < 3; i++)
	{
		char		ukey[16];

		snprintf(ukey, sizeof(ukey), "k%d", i);
		keys[i] = make_ikey(0, ukey, 1, NOKV_KIND_PUT, &len);
		e[i] = (vec_entry) {keys[i], len, "v", 1};
	}

	/* one child: the merge is that child */
	kids[0] = vec_new(e, 3, -1, &destroyed);
	m = nokv_merge_iter_new(kids, 1);
	nokv_iiter_seek_to_last(m);
	nokv_iiter_prev(m);
	ok(nokv_iiter_valid(m) && memcmp(nokv_iiter_key(m, &len), keys[1], len) == 0,
	   "merge of one child iterates it");
	nokv_iiter_destroy(m);
	is_int(destroyed, 1, "merge of one child destroys it");

	/* all children empty but one; mixed with a child holding all keys */
	destroyed = 0;
	kids[0] = vec_new(e, 0, -1, &destroyed);
	kids[1] = vec_new(e, 3, -1, &destroyed);
	kids[2] = vec_new(e, 0, -1, &destroyed);
	m = nokv_merge_iter_new(kids, 3);
	nokv_iiter_seek_to_last(m);
	ok(nokv_iiter_valid(m) && memcmp(nokv_iiter_key(m, &len), keys[2], len) == 0,
	   "empty children are skipped");
	nokv_iiter_next(m);
	ok(!nokv_iiter_valid(m), "next past the last entry is invalid");
	nokv_iiter_next(m);
	nokv_iiter_prev(m);
	ok(!nokv_iiter_valid(m), "stepping an invalid merge is harmless");
	nokv_iiter_seek_to_first(m);
	nokv_iiter_prev(m);
	ok(!nokv_iiter_valid(m), "prev before the first entry is invalid");
	nokv_iiter_destroy(m);
	is_int(destroyed, 3, "all children destroyed");

	for (int i = 0; i < 3; i++)
		free(keys[i]);
}

int
main(void)
{
	test_edge_cases();
	test_ties(2);
	test_ties(3);
	test_ties(4);
	test_ties(5);
	test_ties(17);
	test_errors();
	test_random(300);
	return tap_done();
}
