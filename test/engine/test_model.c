/*-------------------------------------------------------------------------
 *
 * test_model.c
 *	  Randomized model test: the engine against a trivially correct model.
 *
 * A seeded PRNG drives thousands of operations - batched puts and deletes,
 * range deletes, point reads, bounded scans in both directions, snapshots,
 * long-lived iterators, memtable rotation, flushes, compaction steps, full
 * and ranged compactions, close + reopen - against the engine and against an
 * in-memory model (per column family, an array indexed by the position of
 * the key in a fixed, sorted key space).  Every read is compared with the
 * model; a snapshot or a long-lived iterator is compared with a copy of the
 * model taken when it was created.  Values are never stored in the model:
 * each put gets a fresh value id and the bytes are a pure function of
 * (value id, length), so comparing is cheap and a stale version is caught.
 *
 * Small options (256 KiB memtables, 64 KiB files, 1 KiB blocks, L0 trigger
 * 2) make flushes and multi-level compactions happen within a few thousand
 * operations.  Runs with background_threads = false are deterministic: the
 * test itself drives flushes and compactions, so a failure reproduces
 * exactly from its seed and operation index.  A run with background threads
 * checks the same invariants while the engine works concurrently.
 *
 * Reproducing:
 *	  test_model SEED				(or NOKV_SEED=SEED) run that seed only
 *	  NOKV_MODEL_OPS=N				operations per run
 *	  NOKV_MODEL_MODE=det|bg		only the deterministic / background run
 *	  NOKV_MODEL_TRACE=1			print every operation
 *	  NOKV_MODEL_HELD_ITER=0		no long-lived iterators
 *	  NOKV_TEST_SCALE=F				multiply operation counts by F
 *	  NOKV_KEEP=1					keep the engine directory of a failed run
 *
 * test/engine/test_model.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/nokv.h"
#include "tap.h"
#include "testutil.h"


#define NCF					NOKV_CF_COUNT
#define NKEYS				1000	/* size of the key space */
#define MAX_SNAPS			3
#define BIG_VALUE			(100 * 1024)
#define MAX_VALUE			BIG_VALUE
#define HISTORY				16		/* operations printed on failure */
#define FULL_CHECK_EVERY	2000

/* ---------- small utilities ---------- */



/* true with probability pct / 1000 */
static bool
rnd_permille(uint64_t *s, uint32_t pm)
{
	return rnd_below(s, 1000) < pm;
}




/* printable rendering of a key for diagnostics (static buffers, 4 deep) */
static const char *
fmt_key(const char *k, size_t len)
{
	static char bufs[4][200];
	static int	which = 0;
	char	   *b = bufs[which++ & 3];
	size_t		o = 0;

	if (k == NULL)
		return "(none)";
	b[o++] = '\'';
	for (size_t i = 0; i < len && o < 150; i++)
	{
		unsigned char c = (unsigned char) k[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			b[o++] = (char) c;
		else
			o += snprintf(b + o, sizeof(bufs[0]) - o, "\\x%02x", c);
	}
	if (len > 0 && o >= 150)
		o += snprintf(b + o, sizeof(bufs[0]) - o, "...");
	o += snprintf(b + o, sizeof(bufs[0]) - o, "'(%zu)", len);
	return b;
}

static int
bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t		m = alen < blen ? alen : blen;
	int			r = m ? memcmp(a, b, m) : 0;

	if (r != 0)
		return r;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* value bytes are a function of (value id, length) */
static void
fill_value(char *dst, uint64_t vid, uint32_t len)
{
	uint64_t	s = vid * 0x2545f4914f6cdd1dull + len;
	uint32_t	i = 0;

	while (i < len)
	{
		uint64_t	r = splitmix64(&s);

		for (int j = 0; j < 8 && i < len; j++, i++)
			dst[i] = (char) (r >> (8 * j));
	}
}

/* ---------- the key space ---------- */

typedef struct keyspace
{
	int			n;
	char	   *k[NKEYS];
	size_t		len[NKEYS];
} keyspace;

static int
key_qsort_cmp(const void *a, const void *b)
{
	const char *const *ka = a;
	const char *const *kb = b;
	size_t		la,
				lb;

	/* while sorting, each key is stored behind its size_t length */
	memcpy(&la, *ka, sizeof(size_t));
	memcpy(&lb, *kb, sizeof(size_t));
	return bytes_cmp(*ka + sizeof(size_t), la, *kb + sizeof(size_t), lb);
}

/*
 * Random keys: one empty key, short keys, mostly 4..16 bytes from a small
 * alphabet (so prefixes are shared), a few long ones, occasional 0x00 and
 * 0xff bytes.  Sorted bytewise and de-duplicated, so key id order is the
 * engine's user-key order.
 */
static void
keyspace_init(keyspace *ks, uint64_t seed)
{
	uint64_t	s = seed ^ 0x6b657973ull;
	char	   *tmp[NKEYS * 2];
	int			ntmp = 0;

	for (int i = 0; i < NKEYS * 2 && ntmp < NKEYS * 2; i++)
	{
		size_t		len;
		char	   *p;

		if (i == 0)
			len = 0;
		else
		{
			uint32_t	c = rnd_below(&s, 100);

			if (c < 5)
				len = 1 + rnd_below(&s, 3);
			else if (c < 97)
				len = 4 + rnd_below(&s, 13);
			else
				len = 100 + rnd_below(&s, 200);
		}
		p = malloc(sizeof(size_t) + len + 1);
		memcpy(p, &len, sizeof(size_t));
		for (size_t j = 0; j < len; j++)
		{
			uint32_t	c = rnd_below(&s, 100);

			if (c < 2)
				p[sizeof(size_t) + j] = 0;
			else if (c < 4)
				p[sizeof(size_t) + j] = (char) 0xff;
			else
				p[sizeof(size_t) + j] = "abcdefgh"[rnd_below(&s, 8)];
		}
		tmp[ntmp++] = p;
	}
	qsort(tmp, ntmp, sizeof(char *), key_qsort_cmp);
	ks->n = 0;
	for (int i = 0; i < ntmp; i++)
	{
		size_t		len;

		memcpy(&len, tmp[i], sizeof(size_t));
		if (ks->n < NKEYS &&
			(ks->n == 0 || bytes_cmp(ks->k[ks->n - 1], ks->len[ks->n - 1],
									 tmp[i] + sizeof(size_t), len) != 0))
		{
			/* keep the sorted order: only the first NKEYS distinct keys */
			ks->k[ks->n] = malloc(len + 1);
			memcpy(ks->k[ks->n], tmp[i] + sizeof(size_t), len);
			ks->len[ks->n] = len;
			ks->n++;
		}
		free(tmp[i]);
	}
}

static void
keyspace_free(keyspace *ks)
{
	for (int i = 0; i < ks->n; i++)
		free(ks->k[i]);
	ks->n = 0;
}

/* first key id >= (k, len) */
static int
ks_lower_bound(const keyspace *ks, const char *k, size_t len)
{
	int			lo = 0,
				hi = ks->n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (bytes_cmp(ks->k[mid], ks->len[mid], k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* first key id > (k, len) */
static int
ks_upper_bound(const keyspace *ks, const char *k, size_t len)
{
	int			lo = 0,
				hi = ks->n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (bytes_cmp(ks->k[mid], ks->len[mid], k, len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---------- the model ---------- */

typedef struct mval
{
	bool		present;
	uint32_t	len;
	uint64_t	vid;
} mval;

typedef struct model
{
	mval		v[NCF][NKEYS];
} model;

/* a snapshot or a long-lived iterator and the model state it must see */
typedef struct view
{
	nokv_snapshot *snap;
	nokv_iter  *it;				/* long-lived iterator (no snapshot) */
	int			it_cf;
	int			age;
	model	   *m;
} view;

/* a generated bound or target: a key of the space or a random string */
typedef struct probe
{
	bool		set;
	char		buf[24];
	const char *k;
	size_t		len;
} probe;

typedef struct run
{
	uint64_t	seed;
	uint64_t	rng;
	bool		bg;
	int			nops;
	int			op;
	bool		trace;
	bool		held_iterators; /* NOKV_MODEL_HELD_ITER=0 turns them off */
	char	   *dir;
	nokv_options opts;
	nokv_db    *db;
	keyspace	ks;
	model	   *cur;
	view		snaps[MAX_SNAPS];
	int			nsnaps;
	view		held;			/* held.it != NULL when in use */
	uint64_t	next_vid;
	uint64_t	last_version;
	char	   *expbuf;
	bool		failed;
	char		opdesc[256];
	char		history[HISTORY][256];
	/* what happened, for the summary */
	long		n_writes,
				n_gets,
				n_scans,
				n_snap_checks,
				n_rotates,
				n_flushes,
				n_steps,
				n_compact_all,
				n_compact_range,
				n_reopens,
				n_range_deletes,
				n_vlog_gc;
	/* engine counters of handles already closed (stats restart per open) */
	uint64_t	closed_flushes,
				closed_compactions;
} run;

/*
 * Hang detection: every operation re-arms a watchdog alarm; the handler
 * prints the operation that did not finish (copied here by describe()).
 */
#define OP_TIMEOUT_SECONDS	120
static char alarm_msg[512];

static void
on_alarm(int sig)
{
	(void) sig;
	if (write(STDOUT_FILENO, alarm_msg, strlen(alarm_msg)) < 0)
		_exit(254);
	_exit(255);
}

static void
arm_watchdog(const run *r, const char *what)
{
	snprintf(alarm_msg, sizeof(alarm_msg),
			 "Bail out! test_model: no progress for %d s: seed=%" PRIu64 " mode=%s op=%d (%.200s); "
			 "%d snapshots and %s long-lived iterator open\n",
			 OP_TIMEOUT_SECONDS, r->seed, r->bg ? "bg" : "det", r->op, what, r->nsnaps,
			 r->held.it ? "a" : "no");
	alarm(OP_TIMEOUT_SECONDS);
}

static void
describe(run *r, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
describe(run *r, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->opdesc, sizeof(r->opdesc), fmt, ap);
	va_end(ap);
	memcpy(r->history[r->op % HISTORY], r->opdesc, sizeof(r->opdesc));
	arm_watchdog(r, r->opdesc);
	if (r->trace)
		tap_diag("op %d: %s", r->op, r->opdesc);
}

/* a step within an operation: reported on failure, not kept in the history */
static void
describe_sub(run *r, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
describe_sub(run *r, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->opdesc, sizeof(r->opdesc), fmt, ap);
	va_end(ap);
	arm_watchdog(r, r->opdesc);
	if (r->trace)
		tap_diag("op %d: %s", r->op, r->opdesc);
}

static void
fail(run *r, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
fail(run *r, const char *fmt,...)
{
	va_list		ap;
	char		msg[1024];
	int			first;

	if (r->failed)
		return;
	r->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tap_diag("FAILURE seed=%" PRIu64 " mode=%s op=%d: %s", r->seed,
			 r->bg ? "bg" : "det", r->op, msg);
	tap_diag("  while: %s", r->opdesc);
	tap_diag("  reproduce: NOKV_SEED=%" PRIu64 " NOKV_MODEL_MODE=%s NOKV_MODEL_OPS=%d%s",
			 r->seed, r->bg ? "bg" : "det", r->op + 1,
			 r->bg ? " (background threads: timing-dependent)" : "");
	tap_diag("  last operations:");
	first = r->op >= HISTORY ? r->op - HISTORY + 1 : 0;
	for (int i = first; i <= r->op; i++)
		tap_diag("    op %d: %s", i, r->history[i % HISTORY]);
}

static void
fail_err(run *r, const char *what, int rc, const nokv_error *err)
{
	fail(r, "%s returned %d (%s): %s", what, rc,
		 rc >= 0 ? nokv_code_name((nokv_code) rc) : "negative",
		 err->msg[0] ? err->msg : "(no message)");
}

static void
open_db(run *r)
{
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_open(&r->opts, r->dir, &r->db, &err);
	if (rc != NOKV_OK)
	{
		r->db = NULL;
		fail_err(r, "nokv_open", rc, &err);
	}
}

/* ---------- comparing the engine with the model ---------- */

static bool
value_matches(run *r, const char *got, size_t glen, const mval *exp)
{
	if (glen != exp->len)
		return false;
	fill_value(r->expbuf, exp->vid, exp->len);
	return glen == 0 || memcmp(got, r->expbuf, glen) == 0;
}

/* point lookup compared with a model entry (NULL: the key must be absent) */
static void
check_get(run *r, const nokv_read_options *ro, int cf, const char *k, size_t klen,
		  const mval *exp, const char *what)
{
	char	   *val = NULL;
	size_t		vlen = 0;
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_get(r->db, ro, cf, k, klen, &val, &vlen, &err);
	if (exp == NULL || !exp->present)
	{
		if (rc == NOKV_OK)
			fail(r, "%s: get cf=%d key=%s: expected absent, found a value of %zu bytes",
				 what, cf, fmt_key(k, klen), vlen);
		else if (rc != NOKV_NOT_FOUND)
			fail_err(r, "nokv_get", rc, &err);
	}
	else if (rc == NOKV_NOT_FOUND)
		fail(r, "%s: get cf=%d key=%s: expected a value of %u bytes (vid %" PRIu64 "), got NOT_FOUND",
			 what, cf, fmt_key(k, klen), exp->len, exp->vid);
	else if (rc != NOKV_OK)
		fail_err(r, "nokv_get", rc, &err);
	else if (!value_matches(r, val, vlen, exp))
		fail(r, "%s: get cf=%d key=%s: wrong value: %zu bytes, expected %u bytes (vid %" PRIu64 ")",
			 what, cf, fmt_key(k, klen), vlen, exp->len, exp->vid);
	free(val);
}

/* the model's next present key id in [from, hi) stepping by dir (+1/-1) */
static int
model_step(const mval *m, int from, int lo, int hi, int dir)
{
	for (int i = from; i >= lo && i < hi; i += dir)
		if (m[i].present)
			return i;
	return -1;
}

static void
check_iter_position(run *r, nokv_iter *it, const mval *m, int pos, const char *what,
					int step)
{
	nokv_error	err;
	bool		valid = nokv_iter_valid(it);

	if (pos < 0)
	{
		if (valid)
		{
			size_t		kl;
			const char *k = nokv_iter_key(it, &kl);

			fail(r, "%s step %d: iterator at %s, model says end", what, step,
				 fmt_key(k, kl));
		}
		else
		{
			int			rc;

			memset(&err, 0, sizeof(err));
			rc = nokv_iter_status(it, &err);
			if (rc != NOKV_OK)
				fail_err(r, "nokv_iter_status", rc, &err);
		}
		return;
	}
	if (!valid)
	{
		int			rc;

		memset(&err, 0, sizeof(err));
		rc = nokv_iter_status(it, &err);
		if (rc != NOKV_OK)
			fail_err(r, "nokv_iter_status", rc, &err);
		else
			fail(r, "%s step %d: iterator ended, model expects key %s", what, step,
				 fmt_key(r->ks.k[pos], r->ks.len[pos]));
		return;
	}
	{
		size_t		kl,
					vl;
		const char *k = nokv_iter_key(it, &kl);
		const char *v = nokv_iter_value(it, &vl);

		if (bytes_cmp(k, kl, r->ks.k[pos], r->ks.len[pos]) != 0)
			fail(r, "%s step %d: iterator at key %s, model expects %s", what, step,
				 fmt_key(k, kl), fmt_key(r->ks.k[pos], r->ks.len[pos]));
		else if (!value_matches(r, v, vl, &m[pos]))
			fail(r, "%s step %d: key %s: wrong value (%zu bytes, expected %u, vid %" PRIu64 ")",
				 what, step, fmt_key(k, kl), vl, m[pos].len, m[pos].vid);
		else if (nokv_iter_version(it) == 0)
			fail(r, "%s step %d: key %s: nokv_iter_version returned 0", what, step,
				 fmt_key(k, kl));
	}
}

/* a bound or seek target: a key of the space, a near miss, or random bytes */
static void
gen_probe(run *r, probe *p)
{
	uint32_t	c = rnd_below(&r->rng, 10);

	p->set = true;
	if (c < 6)
	{
		int			id = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);

		p->k = r->ks.k[id];
		p->len = r->ks.len[id];
	}
	else if (c < 8)
	{
		/* a key of the space with one byte appended: sorts right after it */
		int			id = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);
		size_t		len = r->ks.len[id] < sizeof(p->buf) - 1 ? r->ks.len[id] : sizeof(p->buf) - 1;

		memcpy(p->buf, r->ks.k[id], len);
		p->buf[len] = (char) rnd_below(&r->rng, 256);
		p->k = p->buf;
		p->len = len + 1;
	}
	else
	{
		size_t		len = rnd_below(&r->rng, 7);

		for (size_t i = 0; i < len; i++)
			p->buf[i] = "abcdefgh\xff"[rnd_below(&r->rng, 9)];
		p->k = p->buf;
		p->len = len;
	}
}

/*
 * A bounded scan: position the iterator one of four ways, then walk up to
 * `steps` entries, mostly in the natural direction, sometimes turning.
 */
static void
check_scan(run *r, nokv_iter *it_in, const nokv_read_options *base_ro, int cf,
		   const mval *m, const char *what, bool allow_bounds)
{
	nokv_read_options ro = *base_ro;
	probe		lower = {0},
				upper = {0},
				target = {0};
	int			lo = 0,
				hi = r->ks.n;
	int			how = (int) rnd_below(&r->rng, 4);
	int			steps = 1 + (int) rnd_below(&r->rng, 30);
	int			dir;
	int			pos;
	nokv_iter  *it = it_in;
	const char *hows[] = {"seek_to_first", "seek_to_last", "seek", "seek_for_prev"};

	if (allow_bounds)
	{
		if (rnd_below(&r->rng, 2))
			gen_probe(r, &lower);
		if (rnd_below(&r->rng, 2))
			gen_probe(r, &upper);
		if (lower.set && upper.set &&
			bytes_cmp(lower.k, lower.len, upper.k, upper.len) > 0)
		{
			probe		t = lower;

			lower = upper;
			upper = t;
			/* the key pointers may point into buf: re-point after the swap */
			if (lower.k == upper.buf)
				lower.k = lower.buf;
			if (upper.k == lower.buf)
				upper.k = upper.buf;
		}
		if (lower.set)
		{
			ro.lower_bound = lower.k;
			ro.lower_len = lower.len;
			lo = ks_lower_bound(&r->ks, lower.k, lower.len);
		}
		if (upper.set)
		{
			ro.upper_bound = upper.k;
			ro.upper_len = upper.len;
			hi = ks_lower_bound(&r->ks, upper.k, upper.len);
		}
	}
	if (how >= 2)
		gen_probe(r, &target);

	describe(r, "%s cf=%d lower=%s upper=%s %s(%s) steps=%d", what, cf,
			 lower.set ? fmt_key(lower.k, lower.len) : "(none)",
			 upper.set ? fmt_key(upper.k, upper.len) : "(none)",
			 hows[how], target.set ? fmt_key(target.k, target.len) : "",
			 steps);

	if (it == NULL)
	{
		it = nokv_iter_new(r->db, &ro, cf);
		if (it == NULL)
		{
			fail(r, "nokv_iter_new returned NULL");
			return;
		}
	}

	switch (how)
	{
		case 0:
			nokv_iter_seek_to_first(it);
			pos = model_step(m, lo, lo, hi, 1);
			dir = 1;
			break;
		case 1:
			nokv_iter_seek_to_last(it);
			pos = model_step(m, hi - 1, lo, hi, -1);
			dir = -1;
			break;
		case 2:
			{
				int			from = ks_lower_bound(&r->ks, target.k, target.len);

				nokv_iter_seek(it, target.k, target.len);
				pos = model_step(m, from > lo ? from : lo, lo, hi, 1);
				dir = 1;
				break;
			}
		default:
			{
				int			from = ks_upper_bound(&r->ks, target.k, target.len) - 1;

				nokv_iter_seek_for_prev(it, target.k, target.len);
				pos = model_step(m, from < hi - 1 ? from : hi - 1, lo, hi, -1);
				dir = -1;
				break;
			}
	}
	check_iter_position(r, it, m, pos, what, 0);
	for (int s = 1; s <= steps && pos >= 0 && !r->failed; s++)
	{
		if (rnd_permille(&r->rng, 120))
			dir = -dir;
		if (dir > 0)
		{
			nokv_iter_next(it);
			pos = model_step(m, pos + 1, lo, hi, 1);
		}
		else
		{
			nokv_iter_prev(it);
			pos = model_step(m, pos - 1, lo, hi, -1);
		}
		check_iter_position(r, it, m, pos, what, s);
	}
	if (it_in == NULL)
		nokv_iter_free(it);
}

/* every key of every column family, by scan (both directions) and by get */
static void
full_check(run *r, const char *why)
{
	nokv_read_options ro;

	nokv_read_options_init(&ro);
	for (int cf = 0; cf < NCF && !r->failed; cf++)
	{
		const mval *m = r->cur->v[cf];
		nokv_iter  *it = nokv_iter_new(r->db, &ro, cf);
		int			pos;
		int			n = 0;

		describe_sub(r, "full check (%s) cf=%d", why, cf);
		if (it == NULL)
		{
			fail(r, "nokv_iter_new returned NULL");
			return;
		}
		nokv_iter_seek_to_first(it);
		pos = model_step(m, 0, 0, r->ks.n, 1);
		check_iter_position(r, it, m, pos, "full forward scan", n);
		while (pos >= 0 && !r->failed)
		{
			nokv_iter_next(it);
			pos = model_step(m, pos + 1, 0, r->ks.n, 1);
			check_iter_position(r, it, m, pos, "full forward scan", ++n);
		}
		nokv_iter_seek_to_last(it);
		pos = model_step(m, r->ks.n - 1, 0, r->ks.n, -1);
		n = 0;
		check_iter_position(r, it, m, pos, "full backward scan", n);
		while (pos >= 0 && !r->failed)
		{
			nokv_iter_prev(it);
			pos = model_step(m, pos - 1, 0, r->ks.n, -1);
			check_iter_position(r, it, m, pos, "full backward scan", ++n);
		}
		nokv_iter_free(it);
		for (int id = 0; id < r->ks.n && !r->failed; id++)
			check_get(r, &ro, cf, r->ks.k[id], r->ks.len[id], &m[id], "full check");
	}
}

/* ---------- operations ---------- */

/* value sizes 0..2000, occasionally 100 KiB (at most one per batch) */
static uint32_t
gen_value_len(run *r, bool allow_big)
{
	if (allow_big && rnd_permille(&r->rng, 4))
		return BIG_VALUE;
	return rnd_below(&r->rng, 2001);
}

static void
note_version(run *r, bool must_grow)
{
	uint64_t	v = nokv_last_version(r->db);

	if (v < r->last_version || (must_grow && v == r->last_version))
		fail(r, "nokv_last_version went from %" PRIu64 " to %" PRIu64 "%s",
			 r->last_version, v, must_grow ? " across an acknowledged write" : "");
	r->last_version = v;
}

/* 1..4 puts/deletes on distinct (cf, key) pairs in one batch */
static void
op_write(run *r)
{
	nokv_batch *b = nokv_batch_new();
	int			n = 1 + (int) rnd_below(&r->rng, 4);
	int			cfs[4],
				ids[4];
	bool		put[4];
	uint32_t	lens[4];
	uint64_t	vids[4];
	nokv_write_options wo;
	nokv_error	err;
	int			rc;
	char		desc[256];
	size_t		o = 0;
	bool		big = false;

	memset(&wo, 0, sizeof(wo));
	memset(&err, 0, sizeof(err));
	o += snprintf(desc, sizeof(desc), "write batch:");
	for (int i = 0; i < n; i++)
	{
		bool		dup;

		do
		{
			cfs[i] = (int) rnd_below(&r->rng, NCF);
			ids[i] = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);
			dup = false;
			for (int j = 0; j < i; j++)
				if (cfs[j] == cfs[i] && ids[j] == ids[i])
					dup = true;
		} while (dup);
		put[i] = rnd_below(&r->rng, 100) < 80;
		lens[i] = put[i] ? gen_value_len(r, !big) : 0;
		big = big || lens[i] == BIG_VALUE;
		vids[i] = put[i] ? ++r->next_vid : 0;
		if (put[i])
		{
			fill_value(r->expbuf, vids[i], lens[i]);
			rc = nokv_batch_put(b, cfs[i], r->ks.k[ids[i]], r->ks.len[ids[i]],
								r->expbuf, lens[i]);
		}
		else
			rc = nokv_batch_delete(b, cfs[i], r->ks.k[ids[i]], r->ks.len[ids[i]]);
		if (o < sizeof(desc))
			o += snprintf(desc + o, sizeof(desc) - o, " %s(cf=%d,%s%s)",
						  put[i] ? "put" : "del", cfs[i],
						  fmt_key(r->ks.k[ids[i]], r->ks.len[ids[i]]),
						  put[i] ? (lens[i] == BIG_VALUE ? ",100KiB" : "") : "");
		if (rc != NOKV_OK)
		{
			describe(r, "%s", desc);
			fail(r, "nokv_batch_%s returned %d", put[i] ? "put" : "delete", rc);
			nokv_batch_free(b);
			return;
		}
	}
	describe(r, "%s", desc);
	if (nokv_batch_count(b) != (uint32_t) n)
		fail(r, "nokv_batch_count is %u, expected %d", nokv_batch_count(b), n);
	rc = nokv_write(r->db, &wo, b, &err);
	nokv_batch_free(b);
	if (rc != NOKV_OK)
	{
		fail_err(r, "nokv_write", rc, &err);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		mval	   *mv = &r->cur->v[cfs[i]][ids[i]];

		mv->present = put[i];
		mv->len = lens[i];
		mv->vid = vids[i];
	}
	r->n_writes++;
	note_version(r, true);
}

/* a range delete, alone in its batch (a batch has one version per entry) */
static void
op_delete_range(run *r)
{
	int			cf = (int) rnd_below(&r->rng, NCF);
	probe		a = {0},
				b = {0};
	nokv_batch *batch;
	nokv_write_options wo;
	nokv_error	err;
	int			lo,
				hi,
				rc;

	if (rnd_below(&r->rng, 10) < 8)
	{
		/* mostly narrow ranges between keys of the space */
		int			s = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);
		int			e = s + 1 + (int) rnd_below(&r->rng, 40);

		a.set = true;
		a.k = r->ks.k[s];
		a.len = r->ks.len[s];
		b.set = true;
		if (e < r->ks.n)
		{
			b.k = r->ks.k[e];
			b.len = r->ks.len[e];
		}
		else
		{
			memset(b.buf, 0xff, 8);
			b.k = b.buf;
			b.len = 8;
		}
	}
	else
	{
		do
		{
			gen_probe(r, &a);
			gen_probe(r, &b);
		} while (bytes_cmp(a.k, a.len, b.k, b.len) == 0);
		if (bytes_cmp(a.k, a.len, b.k, b.len) > 0)
		{
			probe		t = a;

			a = b;
			b = t;
			if (a.k == b.buf)
				a.k = a.buf;
			if (b.k == a.buf)
				b.k = b.buf;
		}
	}
	lo = ks_lower_bound(&r->ks, a.k, a.len);
	hi = ks_lower_bound(&r->ks, b.k, b.len);
	describe(r, "delete_range cf=%d [%s, %s) = key ids [%d, %d)", cf,
			 fmt_key(a.k, a.len), fmt_key(b.k, b.len), lo, hi);

	batch = nokv_batch_new();
	rc = nokv_batch_delete_range(batch, cf, a.k, a.len, b.k, b.len);
	if (rc != NOKV_OK)
	{
		fail(r, "nokv_batch_delete_range returned %d", rc);
		nokv_batch_free(batch);
		return;
	}
	memset(&wo, 0, sizeof(wo));
	memset(&err, 0, sizeof(err));
	rc = nokv_write(r->db, &wo, batch, &err);
	nokv_batch_free(batch);
	if (rc != NOKV_OK)
	{
		fail_err(r, "nokv_write(delete_range)", rc, &err);
		return;
	}
	for (int i = lo; i < hi; i++)
		r->cur->v[cf][i].present = false;
	r->n_range_deletes++;
	note_version(r, true);
}

/* pick the state to read: latest (NULL) or one of the live snapshots */
static view *
pick_view(run *r)
{
	if (r->nsnaps > 0 && rnd_below(&r->rng, 4) == 0)
		return &r->snaps[rnd_below(&r->rng, (uint32_t) r->nsnaps)];
	return NULL;
}

static void
op_get(run *r)
{
	nokv_read_options ro;
	view	   *v = pick_view(r);
	const model *m = v ? v->m : r->cur;
	int			cf = (int) rnd_below(&r->rng, NCF);
	probe		p = {0};
	int			id;

	nokv_read_options_init(&ro);
	if (v)
		ro.snapshot = v->snap;
	ro.fill_cache = rnd_below(&r->rng, 4) != 0;
	if (rnd_below(&r->rng, 10) == 0)
		gen_probe(r, &p);		/* probably a key outside the space */
	else
	{
		id = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);
		p.k = r->ks.k[id];
		p.len = r->ks.len[id];
	}
	/* the model entry, if the probe is a key of the space */
	id = ks_lower_bound(&r->ks, p.k, p.len);
	if (id >= r->ks.n || bytes_cmp(r->ks.k[id], r->ks.len[id], p.k, p.len) != 0)
		id = -1;
	describe(r, "get cf=%d key=%s%s", cf, fmt_key(p.k, p.len),
			 v ? " (snapshot)" : "");
	check_get(r, &ro, cf, p.k, p.len, id >= 0 ? &m->v[cf][id] : NULL,
			  v ? "snapshot get" : "get");
	if (v)
		r->n_snap_checks++;
	else
		r->n_gets++;
}

static void
op_scan(run *r)
{
	nokv_read_options ro;
	view	   *v = pick_view(r);
	int			cf = (int) rnd_below(&r->rng, NCF);

	nokv_read_options_init(&ro);
	if (v)
		ro.snapshot = v->snap;
	check_scan(r, NULL, &ro, cf, (v ? v->m : r->cur)->v[cf],
			   v ? "snapshot scan" : "scan", true);
	if (v)
		r->n_snap_checks++;
	else
		r->n_scans++;
}

static void
release_view(run *r, view *v)
{
	if (v->snap)
		nokv_snapshot_release(r->db, v->snap);
	if (v->it)
		nokv_iter_free(v->it);
	free(v->m);
	memset(v, 0, sizeof(*v));
}

static void
op_snapshot(run *r)
{
	if (r->nsnaps < MAX_SNAPS && rnd_below(&r->rng, 3) != 0)
	{
		view	   *v = &r->snaps[r->nsnaps];
		nokv_error	err;
		uint64_t	sv,
					lv;

		describe(r, "snapshot acquire (live: %d)", r->nsnaps);
		memset(&err, 0, sizeof(err));
		memset(v, 0, sizeof(*v));
		v->snap = nokv_snapshot_acquire(r->db, &err);
		if (v->snap == NULL)
		{
			fail(r, "nokv_snapshot_acquire failed: %s", err.msg);
			return;
		}
		v->m = malloc(sizeof(model));
		memcpy(v->m, r->cur, sizeof(model));
		r->nsnaps++;
		sv = nokv_snapshot_version(v->snap);
		lv = nokv_last_version(r->db);
		if (sv > lv)
			fail(r, "snapshot version %" PRIu64 " is above nokv_last_version %" PRIu64, sv, lv);
		else if (!r->bg && sv != lv)
			fail(r, "snapshot version %" PRIu64 " differs from nokv_last_version %" PRIu64
				 " with no writer running", sv, lv);
	}
	else if (r->nsnaps > 0)
	{
		int			i = (int) rnd_below(&r->rng, (uint32_t) r->nsnaps);

		describe(r, "snapshot release #%d (version %" PRIu64 ")", i,
				 nokv_snapshot_version(r->snaps[i].snap));
		release_view(r, &r->snaps[i]);
		r->snaps[i] = r->snaps[r->nsnaps - 1];
		memset(&r->snaps[r->nsnaps - 1], 0, sizeof(view));
		r->nsnaps--;
	}
}

/*
 * A long-lived iterator: created now, checked against the model of now
 * while writes, flushes and compactions happen around it.
 */
static void
op_held_iter(run *r)
{
	view	   *h = &r->held;

	if (h->it == NULL)
	{
		nokv_read_options ro;

		nokv_read_options_init(&ro);
		h->it_cf = (int) rnd_below(&r->rng, NCF);
		describe(r, "long-lived iterator: create on cf=%d", h->it_cf);
		h->it = nokv_iter_new(r->db, &ro, h->it_cf);
		if (h->it == NULL)
		{
			fail(r, "nokv_iter_new returned NULL");
			return;
		}
		h->m = malloc(sizeof(model));
		memcpy(h->m, r->cur, sizeof(model));
		h->age = 0;
	}
	else if (h->age > 50 && rnd_below(&r->rng, 4) == 0)
	{
		describe(r, "long-lived iterator: free (age %d)", h->age);
		release_view(r, h);
	}
	else
	{
		nokv_read_options ro;

		nokv_read_options_init(&ro);
		check_scan(r, h->it, &ro, h->it_cf, h->m->v[h->it_cf],
				   "long-lived iterator", false);
		r->n_snap_checks++;
	}
}

static void
service_background(run *r);

static void
op_maintenance(run *r)
{
	nokv_error	err;
	int			rc;
	uint32_t	c = rnd_below(&r->rng, 100);

	memset(&err, 0, sizeof(err));
	if (c < 30)
	{
		describe(r, "rotate memtable");
		rc = nokv_rotate_memtable(r->db, &err);
		if (rc != NOKV_OK)
			fail_err(r, "nokv_rotate_memtable", rc, &err);
		r->n_rotates++;
	}
	else if (c < 50)
	{
		describe(r, "flush_one");
		rc = nokv_flush_one(r->db, &err);
		if (rc < 0 || rc > 1)
			fail_err(r, "nokv_flush_one", rc, &err);
		r->n_flushes += rc == 1;
	}
	else if (c < 78)
	{
		/* value-log GC at a low ratio, so segments really get collected */
		describe(r, "vlog_gc");
		rc = nokv_vlog_gc(r->db, 0.05, &err);
		if (rc < 0 || rc > 1)
			fail_err(r, "nokv_vlog_gc", rc, &err);
		r->n_vlog_gc += rc == 1;
	}
	else if (c < 85)
	{
		describe(r, "compact_step");
		rc = nokv_compact_step(r->db, &err);
		if (rc < 0 || rc > 1)
			fail_err(r, "nokv_compact_step", rc, &err);
		r->n_steps += rc == 1;
	}
	else if (c < 88)
	{
		describe(r, "compact_all");
		rc = nokv_compact_all(r->db, &err);
		if (rc != NOKV_OK)
			fail_err(r, "nokv_compact_all", rc, &err);
		else if (!r->bg)
		{
			nokv_stats	st;

			nokv_get_stats(r->db, &st);
			if (st.memtables_immutable != 0)
				fail(r, "%d immutable memtables after nokv_compact_all", st.memtables_immutable);
			else if (st.levels[0].files >= r->opts.l0_compaction_trigger)
				fail(r, "%d L0 files after nokv_compact_all (trigger %d)",
					 st.levels[0].files, r->opts.l0_compaction_trigger);
		}
		r->n_compact_all++;
	}
	else if (c < 97)
	{
		int			cf = (int) rnd_below(&r->rng, NCF);
		int			s = (int) rnd_below(&r->rng, (uint32_t) r->ks.n);
		int			e = s + 1 + (int) rnd_below(&r->rng, (uint32_t) (r->ks.n - s));
		char		ff[8];

		memset(ff, 0xff, sizeof(ff));
		describe(r, "compact_range cf=%d [%s, %s)", cf, fmt_key(r->ks.k[s], r->ks.len[s]),
				 e < r->ks.n ? fmt_key(r->ks.k[e], r->ks.len[e]) : "ff*8");
		rc = nokv_compact_range(r->db, cf, r->ks.k[s], r->ks.len[s],
								e < r->ks.n ? r->ks.k[e] : ff,
								e < r->ks.n ? r->ks.len[e] : sizeof(ff), &err);
		if (rc != NOKV_OK)
			fail_err(r, "nokv_compact_range", rc, &err);
		r->n_compact_range++;
	}
	else
	{
		uint64_t	before = nokv_last_version(r->db);

		describe(r, "close + reopen (releases %d snapshots%s)", r->nsnaps,
				 r->held.it ? " and the long-lived iterator" : "");
		while (r->nsnaps > 0)
			release_view(r, &r->snaps[--r->nsnaps]);
		if (r->held.it)
			release_view(r, &r->held);
		{
			nokv_stats	st;

			nokv_get_stats(r->db, &st);
			r->closed_flushes += st.flushes;
			r->closed_compactions += st.compactions;
		}
		nokv_close(r->db);
		r->db = NULL;
		open_db(r);
		if (r->db == NULL)
			return;
		if (nokv_last_version(r->db) < before)
			fail(r, "nokv_last_version went back from %" PRIu64 " to %" PRIu64 " over a reopen",
				 before, nokv_last_version(r->db));
		r->last_version = nokv_last_version(r->db);
		r->n_reopens++;
		full_check(r, "after reopen");
	}
}

/*
 * Deterministic runs have no background threads: keep at most one
 * immutable memtable waiting and L0 short, so that no write can stall
 * waiting for work nobody would do.
 */
static void
service_background(run *r)
{
	nokv_stats	st;
	nokv_error	err;
	int			guard;

	if (r->bg || r->db == NULL)
		return;
	memset(&err, 0, sizeof(err));
	for (guard = 0; guard < 16 && !r->failed; guard++)
	{
		int			rc;

		nokv_get_stats(r->db, &st);
		if (st.memtables_immutable < 2)
			break;
		rc = nokv_flush_one(r->db, &err);
		if (rc < 0)
			fail_err(r, "nokv_flush_one (service)", rc, &err);
		else if (rc == 0)
			fail(r, "%d immutable memtables but nokv_flush_one found nothing to do",
				 st.memtables_immutable);
	}
	for (guard = 0; guard < 64 && !r->failed; guard++)
	{
		int			rc;

		nokv_get_stats(r->db, &st);
		if (st.levels[0].files < 10)
			break;
		rc = nokv_compact_step(r->db, &err);
		if (rc < 0)
			fail_err(r, "nokv_compact_step (service)", rc, &err);
		else if (rc == 0)
			break;
	}
}

static void
step(run *r)
{
	uint32_t	c = rnd_below(&r->rng, 1000);

	if (r->held.it)
		r->held.age++;
	if (c < 420)
		op_write(r);
	else if (c < 440)
		op_delete_range(r);
	else if (c < 690)
		op_get(r);
	else if (c < 800)
		op_scan(r);
	else if (c < 830)
		op_snapshot(r);
	else if (c < 870)
	{
		if (r->held_iterators)
			op_held_iter(r);
		else
			op_get(r);
	}
	else
		op_maintenance(r);
	service_background(r);
}

/* ---------- one run ---------- */

static void
set_options(nokv_options *o, bool bg)
{
	nokv_options_init(o);
	o->memtable_size = 256 * 1024;
	o->target_file_size = 64 * 1024;
	/* small segments so value-log GC always has sealed candidates */
	o->vlog_segment_size = 64 * 1024;
	o->max_bytes_for_level_base = 256 * 1024;
	o->block_size = 1024;
	o->l0_compaction_trigger = 2;
	o->block_cache_size = 1024 * 1024;	/* small: evictions happen */
	o->background_threads = bg;
	o->compaction_threads = bg ? 2 : 1;
}

static void
run_one(uint64_t seed, bool bg, int nops)
{
	run		   *r = calloc(1, sizeof(run));
	nokv_stats	st;
	bool		ok_ops;
	char		tag[64];

	r->seed = seed;
	r->rng = seed;
	r->bg = bg;
	r->nops = nops;
	r->trace = getenv("NOKV_MODEL_TRACE") && strcmp(getenv("NOKV_MODEL_TRACE"), "1") == 0;
	r->held_iterators = !(getenv("NOKV_MODEL_HELD_ITER") && strcmp(getenv("NOKV_MODEL_HELD_ITER"), "0") == 0);
	r->cur = calloc(1, sizeof(model));
	r->expbuf = malloc(MAX_VALUE + 16);
	keyspace_init(&r->ks, seed);
	set_options(&r->opts, bg);
	snprintf(tag, sizeof(tag), "model-%s", bg ? "bg" : "det");
	r->dir = tap_tmpdir(tag);

	tap_diag("run: seed=%" PRIu64 " mode=%s ops=%d keys=%d dir=%s", seed,
			 bg ? "bg" : "det", nops, r->ks.n, r->dir);
	describe(r, "open");
	open_db(r);
	if (r->db)
		r->last_version = nokv_last_version(r->db);
	for (r->op = 0; r->op < nops && !r->failed && r->db; r->op++)
	{
		step(r);
		if (!r->failed && r->db && r->op % FULL_CHECK_EVERY == FULL_CHECK_EVERY - 1)
			full_check(r, "periodic");
	}
	if (r->op > 0)
		r->op--;
	ok_ops = !r->failed;
	ok(ok_ops, "seed %" PRIu64 " (%s): %d random operations agree with the model",
	   seed, bg ? "background threads" : "deterministic", nops);
	tap_diag("  writes %ld, range deletes %ld, gets %ld, scans %ld, snapshot/iterator checks %ld",
			 r->n_writes, r->n_range_deletes, r->n_gets, r->n_scans, r->n_snap_checks);
	tap_diag("  rotates %ld, flushes %ld, compaction steps %ld, compact_all %ld, compact_range %ld, reopens %ld, value-log GCs %ld",
			 r->n_rotates, r->n_flushes, r->n_steps, r->n_compact_all,
			 r->n_compact_range, r->n_reopens, r->n_vlog_gc);

	if (r->db && !r->failed)
	{
		/* release everything, then a final full comparison */
		while (r->nsnaps > 0)
			release_view(r, &r->snaps[--r->nsnaps]);
		if (r->held.it)
			release_view(r, &r->held);
		full_check(r, "final");
		ok(!r->failed, "seed %" PRIu64 " (%s): final full scan and gets match the model",
		   seed, bg ? "bg" : "det");

		/* a full compaction must not change what is visible */
		if (!r->failed)
		{
			nokv_error	err;
			int			rc;

			memset(&err, 0, sizeof(err));
			describe(r, "final compact_all");
			rc = nokv_compact_all(r->db, &err);
			if (rc != NOKV_OK)
				fail_err(r, "nokv_compact_all", rc, &err);
			else
				full_check(r, "after final compact_all");
			ok(!r->failed, "seed %" PRIu64 " (%s): state unchanged by a final compact_all",
			   seed, bg ? "bg" : "det");
		}

		nokv_get_stats(r->db, &st);
		{
			int			deeper = 0;

			for (int l = 1; l < st.num_levels && l < NOKV_MAX_LEVELS; l++)
				deeper += st.levels[l].files;
			uint64_t	flushes = r->closed_flushes + st.flushes;
			uint64_t	compactions = r->closed_compactions + st.compactions;

			tap_diag("  stats: flushes %" PRIu64 ", compactions %" PRIu64 " (all opens), L0 files %d, files below L0 %d, write amplification %.2f (this open)",
					 flushes, compactions, st.levels[0].files, deeper,
					 nokv_write_amplification(&st));
			ok(flushes > 0 && compactions > 0 && deeper > 0,
			   "seed %" PRIu64 " (%s): flushes and compactions happened, data below L0",
			   seed, bg ? "bg" : "det");
		}
	}
	else
	{
		ok(false, "seed %" PRIu64 " (%s): final checks skipped after a failure", seed,
		   bg ? "bg" : "det");
	}

	while (r->nsnaps > 0)
		release_view(r, &r->snaps[--r->nsnaps]);
	if (r->held.it)
		release_view(r, &r->held);
	if (r->db)
		nokv_close(r->db);
	if (r->failed && getenv("NOKV_KEEP"))
		tap_diag("  kept the engine directory %s", r->dir);
	else
		tap_rmdir(r->dir);
	free(r->dir);
	keyspace_free(&r->ks);
	free(r->expbuf);
	free(r->cur);
	free(r);
}

int
main(int argc, char **argv)
{
	const char *env_seed = getenv("NOKV_SEED");
	const char *env_ops = getenv("NOKV_MODEL_OPS");
	const char *env_mode = getenv("NOKV_MODEL_MODE");
	bool		run_det = !env_mode || strcmp(env_mode, "bg") != 0;
	bool		run_bg = !env_mode || strcmp(env_mode, "det") != 0;
	int			forced_ops = env_ops && *env_ops ? atoi(env_ops) : 0;
	const char *seed_arg = argc > 1 ? argv[1] : env_seed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	snprintf(alarm_msg, sizeof(alarm_msg), "Bail out! test_model: no progress for %d s\n",
			 OP_TIMEOUT_SECONDS);
	alarm(OP_TIMEOUT_SECONDS);
	tap_diag("NOKV_TEST_SCALE=%.2f, sanitizer build: %s", test_scale(),
			 under_asan() ? "yes" : "no");

	if (seed_arg && *seed_arg)
	{
		uint64_t	seed = strtoull(seed_arg, NULL, 0);

		if (run_det)
			run_one(seed, false, forced_ops > 0 ? forced_ops : scaled(20000));
		if (run_bg)
			run_one(seed, true, forced_ops > 0 ? forced_ops : scaled(10000));
	}
	else
	{
		/* fixed seeds so that a CI failure reproduces; pass one to vary */
		if (run_det)
		{
			run_one(0x5eed0001, false, forced_ops > 0 ? forced_ops : scaled(20000));
			run_one(0x5eed0002, false, forced_ops > 0 ? forced_ops : scaled(8000));
		}
		if (run_bg)
			run_one(0x5eed0003, true, forced_ops > 0 ? forced_ops : scaled(10000));
	}
	return tap_done();
}
