/*-------------------------------------------------------------------------
 *
 * txn.c
 *	  Transactions: snapshot reads, buffered writes, optimistic conflicts.
 *
 * A transaction pins a snapshot (its read version), keeps its writes in a
 * private skiplist (malloc memory, no size cap of its own) and commits them
 * as one batch through nokv_write_ex.  The batch's precommit hook runs
 * under NOKV_LOCK_WRITE, after the batch's versions are chosen and before
 * anything is logged, so it is serialised with every other commit: there
 * it validates the transaction against what others committed since its
 * read version and then records the transaction's own writes.
 *
 * What others committed is kept in the shared region (hdr->txn) in two
 * structures, both read and written only under NOKV_LOCK_WRITE (so they
 * need no lock of their own):
 *
 *	point table		buckets of TXN_WAYS (64-bit fingerprint of cf+key, last
 *					commit version) pairs.  A bucket that must make room
 *					evicts its oldest pair and raises its floor to that
 *					pair's version: a key whose fingerprint is not in the
 *					bucket was last written at or below the floor.
 *	range ring		the last nring commits' written key intervals (per
 *					commit at most TXN_RING_PER_COMMIT intervals per batch,
 *					bounds cut to TXN_PREFIX bytes) and range deletes, in
 *					commit order.  Evicting an entry raises range_floor
 *					(and rdel_floor for a range delete).
 *
 * A transaction conflicts when a key it read or wrote has a table version
 * above its read version, when a key range it scanned or range-deleted
 * overlaps a ring interval above its read version, when a key it read or
 * wrote lies in a range delete above its read version, or when the
 * history it would need was evicted (a floor above its read version).
 * Every approximation (fingerprint collisions, truncated and merged
 * intervals, floors) can only add conflicts, never hide one.
 *
 * src/engine/txn.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/batch.h"
#include "nokv/db_impl.h"
#include "nokv/status.h"
#include "nokv/txn.h"

/* for the write path (db.c); see nokv_txn_record_batch below */
void		nokv_txn_record_batch(nokv_db *db, const nokv_batch *b, uint64_t first_version);

/* ---------- shared state (hdr->txn) ---------- */

#define TXN_MAGIC			0x4e4f4b5654584e31ull	/* "NOKVTXN1" */
#define TXN_WAYS			4
#define TXN_PREFIX			26
#define TXN_RING_PER_COMMIT 64

/* ring entry flags */
#define RING_RDEL			0x1 /* a range delete: overlaps point keys too */
#define RING_HI_PREFIX		0x2 /* hi was cut: the bound is every key with prefix hi */

typedef struct txn_bucket
{
	uint64_t	floor;			/* highest version evicted from this bucket */
	uint64_t	fp[TXN_WAYS];	/* 0 = empty */
	uint64_t	version[TXN_WAYS];
} txn_bucket;

typedef struct txn_ring_entry
{
	uint64_t	version;
	uint8_t		cf;
	uint8_t		flags;
	uint8_t		lo_len;
	uint8_t		hi_len;
	char		lo[TXN_PREFIX];
	char		hi[TXN_PREFIX];
} txn_ring_entry;

typedef struct txn_shared
{
	uint64_t	magic;
	uint32_t	nbuckets;
	uint32_t	nring;
	/* under NOKV_LOCK_WRITE */
	uint64_t	ring_next;		/* entries ever appended; slot = n % nring */
	uint64_t	range_floor;	/* highest version evicted from the ring */
	uint64_t	rdel_floor;		/* highest range-delete version evicted */
	uint64_t	last_rdel;		/* newest range delete in the ring */
	/* statistics, read without the lock */
	_Atomic uint64_t started;
	_Atomic uint64_t failed;
	_Atomic uint64_t commits;
	_Atomic uint64_t read_only;
	_Atomic uint64_t conflicts;
	_Atomic uint64_t floor_conflicts;
	_Atomic uint64_t discards;
} txn_shared;

static size_t
txn_buckets_offset(void)
{
	return NOKV_ALIGN(sizeof(txn_shared), 64);
}

static size_t
txn_ring_offset(uint32_t nbuckets)
{
	return NOKV_ALIGN(txn_buckets_offset() + (size_t) nbuckets * sizeof(txn_bucket), 64);
}

static void
txn_geometry(const nokv_shared_options *o, uint32_t *nbuckets, uint32_t *nring)
{
	uint32_t	slots = o->txn_conflict_slots > 64 ? (uint32_t) o->txn_conflict_slots : 64;

	*nbuckets = slots / TXN_WAYS;
	*nring = slots / 8 > 64 ? slots / 8 : 64;
}

size_t
nokv_txn_shared_size(const nokv_shared_options *o)
{
	uint32_t	nbuckets,
				nring;

	txn_geometry(o, &nbuckets, &nring);
	return txn_ring_offset(nbuckets) + (size_t) nring * sizeof(txn_ring_entry);
}

void
nokv_txn_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o)
{
	txn_shared *sh = nokv_ptr(ctx, off);
	uint32_t	nbuckets,
				nring;

	txn_geometry(o, &nbuckets, &nring);
	memset(sh, 0, nokv_txn_shared_size(o));
	sh->magic = TXN_MAGIC;
	sh->nbuckets = nbuckets;
	sh->nring = nring;
}

static txn_shared *
shared_of(nokv_db *db)
{
	return nokv_ptr(&db->ctx, db->hdr->txn);
}

static txn_bucket *
buckets_of(txn_shared *sh)
{
	return (txn_bucket *) ((char *) sh + txn_buckets_offset());
}

static txn_ring_entry *
ring_of(txn_shared *sh)
{
	return (txn_ring_entry *) ((char *) sh + txn_ring_offset(sh->nbuckets));
}

/* 64-bit fingerprint of (cf, key); never 0, which marks an empty way */
static uint64_t
txn_fingerprint(int cf, const char *key, size_t klen)
{
	const uint64_t m = 0xc6a4a7935bd1e995ull;
	uint64_t	h = 0x9e3779b97f4a7c15ull ^ ((uint64_t) klen * m) ^ ((uint64_t) (cf + 1) << 56);
	size_t		i = 0;

	for (; i + 8 <= klen; i += 8)
	{
		uint64_t	k = nokv_get_le64(key + i);

		k *= m;
		k ^= k >> 47;
		k *= m;
		h ^= k;
		h *= m;
	}
	if (i < klen)
	{
		uint64_t	k = 0;

		for (size_t j = 0; i + j < klen; j++)
			k |= (uint64_t) (unsigned char) key[i + j] << (8 * j);
		h ^= k;
		h *= m;
	}
	h ^= h >> 47;
	h *= m;
	h ^= h >> 47;
	return h ? h : 1;
}

static txn_bucket *
bucket_for(txn_shared *sh, uint64_t fp)
{
	return &buckets_of(sh)[fp % sh->nbuckets];
}

/* under NOKV_LOCK_WRITE: fp was written at version */
static void
table_record(txn_shared *sh, uint64_t fp, uint64_t version)
{
	txn_bucket *b = bucket_for(sh, fp);
	int			victim = 0;

	for (int w = 0; w < TXN_WAYS; w++)
		if (b->fp[w] == fp)
		{
			if (version > b->version[w])
				b->version[w] = version;
			return;
		}
	for (int w = 0; w < TXN_WAYS; w++)
	{
		if (b->fp[w] == 0)
		{
			victim = w;
			goto place;
		}
		if (b->version[w] < b->version[victim])
			victim = w;
	}
	/* evict the oldest: anything not listed here was written at or below floor */
	if (b->version[victim] > b->floor)
		b->floor = b->version[victim];
place:
	b->fp[victim] = fp;
	b->version[victim] = version;
}

/* bytewise comparison of user keys (no column family byte) */
static int
key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	return nokv_lkey_compare(a, alen, b, blen);
}

/*
 * Does ring entry e overlap the user-key interval [lo, hi] (inclusive;
 * lo_inf / hi_inf for unbounded ends)?
 */
static bool
ring_overlaps(const txn_ring_entry *e, const char *lo, size_t lo_len, bool lo_inf,
			  const char *hi, size_t hi_len, bool hi_inf)
{
	/* e.lo <= hi */
	if (!hi_inf && key_cmp(e->lo, e->lo_len, hi, hi_len) > 0)
		return false;
	/* lo <= e.hi, where a cut e.hi stands for every key it prefixes */
	if (!lo_inf)
	{
		size_t		n = lo_len;

		if ((e->flags & RING_HI_PREFIX) && n > e->hi_len)
			n = e->hi_len;
		if (key_cmp(lo, n, e->hi, e->hi_len) > 0)
			return false;
	}
	return true;
}

static void
ring_set_bounds(txn_ring_entry *e, const char *lo, size_t lo_len, const char *hi, size_t hi_len)
{
	/* a cut lower bound is smaller than the real one: still a lower bound */
	e->lo_len = (uint8_t) (lo_len < TXN_PREFIX ? lo_len : TXN_PREFIX);
	memcpy(e->lo, lo, e->lo_len);
	if (hi_len > TXN_PREFIX)
	{
		e->hi_len = TXN_PREFIX;
		e->flags |= RING_HI_PREFIX;
	}
	else
		e->hi_len = (uint8_t) hi_len;
	memcpy(e->hi, hi, e->hi_len);
}

/* under NOKV_LOCK_WRITE */
static void
ring_append(txn_shared *sh, const txn_ring_entry *e)
{
	txn_ring_entry *ring = ring_of(sh);
	txn_ring_entry *slot = &ring[sh->ring_next % sh->nring];

	if (sh->ring_next >= sh->nring)
	{
		if (slot->version > sh->range_floor)
			sh->range_floor = slot->version;
		if ((slot->flags & RING_RDEL) && slot->version > sh->rdel_floor)
			sh->rdel_floor = slot->version;
	}
	*slot = *e;
	if ((e->flags & RING_RDEL) && e->version > sh->last_rdel)
		sh->last_rdel = e->version;
	sh->ring_next++;
}

/*
 * Record every key a batch writes, as written at version (any version of
 * the batch will do: a reader's version is never inside a batch).  Point
 * keys go to the table and, grouped into at most TXN_RING_PER_COMMIT
 * intervals, to the ring; each range delete gets a ring entry and its
 * start key a table entry.  Caller holds NOKV_LOCK_WRITE.
 */
static void
record_batch_at(nokv_db *db, const nokv_batch *b, uint64_t version)
{
	txn_shared *sh = shared_of(db);
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	uint32_t	group = (b->count + TXN_RING_PER_COMMIT - 1) / TXN_RING_PER_COMMIT;
	uint32_t	in_group = 0;
	int			group_cf = -1;
	const char *gmin = NULL,
			   *gmax = NULL;
	size_t		gmin_len = 0,
				gmax_len = 0;
	txn_ring_entry re;

	if (group == 0)
		group = 1;
	while (nokv_batch_next(&p, end, &e) == 1)
	{
		if (e.op == NOKV_KIND_RANGE_DELETE)
		{
			table_record(sh, txn_fingerprint(e.cf, e.key, e.klen), version);
			memset(&re, 0, sizeof(re));
			re.version = version;
			re.cf = (uint8_t) e.cf;
			re.flags = RING_RDEL;
			ring_set_bounds(&re, e.key, e.klen, e.val, e.vlen);
			ring_append(sh, &re);
			continue;
		}
		table_record(sh, txn_fingerprint(e.cf, e.key, e.klen), version);
		if (in_group > 0 && (e.cf != group_cf || in_group >= group))
		{
			memset(&re, 0, sizeof(re));
			re.version = version;
			re.cf = (uint8_t) group_cf;
			ring_set_bounds(&re, gmin, gmin_len, gmax, gmax_len);
			ring_append(sh, &re);
			in_group = 0;
		}
		if (in_group == 0)
		{
			group_cf = e.cf;
			gmin = gmax = e.key;
			gmin_len = gmax_len = e.klen;
		}
		else
		{
			/* batches from outside a transaction need not be sorted */
			if (key_cmp(e.key, e.klen, gmin, gmin_len) < 0)
			{
				gmin = e.key;
				gmin_len = e.klen;
			}
			if (key_cmp(e.key, e.klen, gmax, gmax_len) > 0)
			{
				gmax = e.key;
				gmax_len = e.klen;
			}
		}
		in_group++;
	}
	if (in_group > 0)
	{
		memset(&re, 0, sizeof(re));
		re.version = version;
		re.cf = (uint8_t) group_cf;
		ring_set_bounds(&re, gmin, gmin_len, gmax, gmax_len);
		ring_append(sh, &re);
	}
}

void
nokv_txn_record_batch(nokv_db *db, const nokv_batch *b, uint64_t first_version)
{
	if (db->hdr->opts.external_log || b->count == 0)
		return;
	record_batch_at(db, b, first_version + b->count - 1);
}

void
nokv_txn_get_stats(nokv_db *db, nokv_txn_stats *st)
{
	txn_shared *sh = shared_of(db);
	uint64_t	ended;

	/* ends first: a transaction is counted as started before it can end */
	st->commits = atomic_load(&sh->commits);
	st->read_only = atomic_load(&sh->read_only);
	st->conflicts = atomic_load(&sh->conflicts);
	st->floor_conflicts = atomic_load(&sh->floor_conflicts);
	st->discards = atomic_load(&sh->discards);
	st->failed = atomic_load(&sh->failed);
	st->started = atomic_load(&sh->started);
	ended = st->commits + st->read_only + st->conflicts + st->discards + st->failed;
	st->active = st->started > ended ? st->started - ended : 0;
}

/*
 * The txn.* rows of nokv_stats_foreach (NoKV's txn.{active, started,
 * committed, conflicts} plus ours).  stats_modules.c holds a placeholder
 * nokv_txn_emit_stats that should call this (or be replaced by it).
 */
void		nokv_txn_emit_stat_rows(nokv_db *db, nokv_stat_fn fn, void *arg);

void
nokv_txn_emit_stat_rows(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	nokv_txn_stats st;
	const struct
	{
		const char *name;
		const char *description;
	}			rows[] = {
		{"txn.started", "transactions begun"},
		{"txn.active", "transactions begun and not yet ended"},
		{"txn.committed", "transactions that wrote and committed"},
		{"txn.read_only", "transactions ended by a commit that wrote nothing"},
		{"txn.conflicts", "commits refused with a conflict (nothing written)"},
		{"txn.floor_conflicts", "conflicts because the needed history was evicted"},
		{"txn.discarded", "transactions discarded"},
		{"txn.failed", "commits that failed with another error"},
	};
	uint64_t	values[8];

	nokv_txn_get_stats(db, &st);
	values[0] = st.started;
	values[1] = st.active;
	values[2] = st.commits;
	values[3] = st.read_only;
	values[4] = st.conflicts;
	values[5] = st.floor_conflicts;
	values[6] = st.discards;
	values[7] = st.failed;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
	{
		nokv_stat	row = {
			.name = rows[i].name,
			.value = (double) values[i],
			.unit = "count",
			.description = rows[i].description,
		};

		fn(arg, &row);
	}
}

/* ---------- pending writes: a skiplist in process memory ---------- */

#define PL_MAX_HEIGHT 24
#define OP_COVERED	0xff		/* superseded by a later range delete of the txn */

typedef struct pnode
{
	char	   *val;
	size_t		vlen;
	uint64_t	expires_at_ms;
	int			op;				/* NOKV_KIND_PUT, NOKV_KIND_DELETE or OP_COVERED */
	int			height;
	size_t		lklen;			/* cf byte + user key, stored after next[] */
	struct pnode *next[];
} pnode;

static inline char *
pnode_lkey(const pnode *n)
{
	return (char *) &n->next[n->height];
}

typedef struct txn_rdel
{
	int			cf;
	char	   *start;
	size_t		slen;
	char	   *end;
	size_t		elen;
} txn_rdel;

/* a key range whose contents the transaction depends on (user keys, inclusive) */
typedef struct txn_range
{
	int			cf;
	bool		lo_inf;
	bool		hi_inf;
	char	   *lo;
	size_t		lo_len;
	char	   *hi;
	size_t		hi_len;
} txn_range;

/* a point read: its key lives in nokv_txn.read_keys at offset off */
typedef struct txn_read
{
	uint64_t	fp;
	int			cf;
	size_t		off;
	size_t		klen;
} txn_read;

struct nokv_txn
{
	nokv_db    *db;
	nokv_txn_options opts;
	uint64_t	rv;
	nokv_snapshot *snap;		/* nokv_txn_begin */
	int			pin_slot;		/* nokv_txn_begin_at: snapshot-table slot, or -1 */
	bool		track;			/* record reads for conflict detection */

	/* pending writes */
	pnode	   *head;
	int			height;			/* tallest node so far */
	uint64_t	rng;
	uint32_t	npoints;		/* nodes that will be written (not covered) */
	size_t		wbytes;
	txn_rdel   *rdels;
	int			nrdels;
	int			rdels_cap;

	/* read set */
	txn_read   *reads;
	size_t		nreads;
	size_t		reads_cap;
	nokv_buf	read_keys;
	uint64_t   *read_set;		/* open addressing over fingerprints, 0 = empty */
	size_t		read_set_cap;
	txn_range  *ranges;
	size_t		nranges;
	size_t		ranges_cap;

	nokv_txn_iter *iters;		/* open iterators (doubly linked) */
};

static int
lkey_cmp_node(const pnode *n, const char *lk, size_t lklen)
{
	return nokv_lkey_compare(pnode_lkey(n), n->lklen, lk, lklen);
}

/* first node >= lk (strict: > lk); NULL if none */
static pnode *
pl_find_ge(const nokv_txn *t, const char *lk, size_t lklen, bool strict, pnode **prev)
{
	pnode	   *x = t->head;

	if (prev)
		for (int l = t->height; l < PL_MAX_HEIGHT; l++)
			prev[l] = t->head;
	for (int l = t->height - 1; l >= 0; l--)
	{
		for (;;)
		{
			pnode	   *nx = x->next[l];
			int			c;

			if (!nx)
				break;
			c = lkey_cmp_node(nx, lk, lklen);
			if (c < 0 || (strict && c == 0))
				x = nx;
			else
				break;
		}
		if (prev)
			prev[l] = x;
	}
	return x->next[0];
}

/* last node < lk (or <= lk when inclusive); NULL if none */
static pnode *
pl_find_lt(const nokv_txn *t, const char *lk, size_t lklen, bool inclusive)
{
	pnode	   *x = t->head;

	for (int l = t->height - 1; l >= 0; l--)
		for (;;)
		{
			pnode	   *nx = x->next[l];
			int			c;

			if (!nx)
				break;
			c = lkey_cmp_node(nx, lk, lklen);
			if (c < 0 || (inclusive && c == 0))
				x = nx;
			else
				break;
		}
	return x == t->head ? NULL : x;
}

static int
pl_random_height(nokv_txn *t)
{
	int			h = 1;

	/* xorshift64: the txn's own generator, nothing shared */
	for (;;)
	{
		t->rng ^= t->rng << 13;
		t->rng ^= t->rng >> 7;
		t->rng ^= t->rng << 17;
		if (h >= PL_MAX_HEIGHT || (t->rng & 3) != 0)
			break;
		h++;
	}
	return h;
}

/* find or create the node of (cf, key) */
static pnode *
pl_upsert(nokv_txn *t, int cf, const char *key, size_t klen, bool *created)
{
	pnode	   *prev[PL_MAX_HEIGHT];
	char		stack[256];
	size_t		lklen = klen + 1;
	char	   *lk = lklen <= sizeof(stack) ? stack : nokv_malloc(lklen);
	pnode	   *n;
	int			h;

	lk[0] = (char) cf;
	if (klen)
		memcpy(lk + 1, key, klen);
	n = pl_find_ge(t, lk, lklen, false, prev);
	*created = false;
	if (n && lkey_cmp_node(n, lk, lklen) == 0)
		goto done;
	h = pl_random_height(t);
	if (h > t->height)
		t->height = h;
	n = nokv_malloc(sizeof(pnode) + (size_t) h * sizeof(pnode *) + lklen);
	n->val = NULL;
	n->vlen = 0;
	n->expires_at_ms = 0;
	n->op = OP_COVERED;
	n->height = h;
	n->lklen = lklen;
	memcpy(pnode_lkey(n), lk, lklen);
	for (int l = 0; l < h; l++)
	{
		n->next[l] = prev[l]->next[l];
		prev[l]->next[l] = n;
	}
	*created = true;
done:
	if (lk != stack)
		free(lk);
	return n;
}

static pnode *
pl_lookup(const nokv_txn *t, int cf, const char *key, size_t klen)
{
	char		stack[256];
	size_t		lklen = klen + 1;
	char	   *lk = lklen <= sizeof(stack) ? stack : nokv_malloc(lklen);
	pnode	   *n;

	lk[0] = (char) cf;
	if (klen)
		memcpy(lk + 1, key, klen);
	n = pl_find_ge(t, lk, lklen, false, NULL);
	if (n && lkey_cmp_node(n, lk, lklen) != 0)
		n = NULL;
	if (lk != stack)
		free(lk);
	return n;
}

/* is user key k of cf inside one of the transaction's range deletes? */
static bool
rdel_covers(const nokv_txn *t, int cf, const char *k, size_t klen)
{
	for (int i = 0; i < t->nrdels; i++)
	{
		const txn_rdel *r = &t->rdels[i];

		if (r->cf == cf && key_cmp(r->start, r->slen, k, klen) <= 0 &&
			key_cmp(k, klen, r->end, r->elen) < 0)
			return true;
	}
	return false;
}

static bool
node_expired(const pnode *n, uint64_t now_ms)
{
	return n->expires_at_ms != 0 && n->expires_at_ms <= now_ms;
}

/* ---------- read set ---------- */

static void
ranges_push(nokv_txn *t, const txn_range *r)
{
	if (t->nranges == t->ranges_cap)
	{
		t->ranges_cap = t->ranges_cap ? t->ranges_cap * 2 : 8;
		t->ranges = nokv_realloc(t->ranges, t->ranges_cap * sizeof(txn_range));
	}
	t->ranges[t->nranges++] = *r;
}

static void
record_read(nokv_txn *t, int cf, const char *key, size_t klen)
{
	uint64_t	fp = txn_fingerprint(cf, key, klen);
	size_t		mask;
	size_t		i;

	if (!t->track)
		return;
	if ((t->nreads + 1) * 2 > t->read_set_cap)
	{
		size_t		cap = t->read_set_cap ? t->read_set_cap * 2 : 64;
		uint64_t   *set = nokv_calloc(cap, sizeof(uint64_t));

		for (size_t j = 0; j < t->nreads; j++)
		{
			size_t		k = t->reads[j].fp & (cap - 1);

			while (set[k])
				k = (k + 1) & (cap - 1);
			set[k] = t->reads[j].fp;
		}
		free(t->read_set);
		t->read_set = set;
		t->read_set_cap = cap;
	}
	mask = t->read_set_cap - 1;
	for (i = fp & mask; t->read_set[i]; i = (i + 1) & mask)
		if (t->read_set[i] == fp)
			return;				/* read before: once is enough */
	t->read_set[i] = fp;
	if (t->nreads == t->reads_cap)
	{
		t->reads_cap = t->reads_cap ? t->reads_cap * 2 : 16;
		t->reads = nokv_realloc(t->reads, t->reads_cap * sizeof(txn_read));
	}
	t->reads[t->nreads++] = (txn_read) {
		.fp = fp, .cf = cf, .off = t->read_keys.len, .klen = klen,
	};
	if (klen)
		nokv_buf_append(&t->read_keys, key, klen);
}

/* ---------- begin / end ---------- */

void
nokv_txn_options_init(nokv_txn_options *o)
{
	memset(o, 0, sizeof(*o));
	o->detect_conflicts = true;
}

static nokv_txn *
txn_alloc(nokv_db *db, const nokv_txn_options *o)
{
	nokv_txn   *t = nokv_calloc(1, sizeof(nokv_txn));

	t->db = db;
	if (o)
		t->opts = *o;
	else
		nokv_txn_options_init(&t->opts);
	t->pin_slot = -1;
	t->track = t->opts.detect_conflicts && !t->opts.read_only && !db->hdr->opts.external_log;
	t->head = nokv_calloc(1, sizeof(pnode) + PL_MAX_HEIGHT * sizeof(pnode *));
	t->head->height = PL_MAX_HEIGHT;
	t->height = 1;
	t->rng = 0x2545f4914f6cdd1dull ^ (uint64_t) (uintptr_t) t;
	if (t->rng == 0)
		t->rng = 1;
	atomic_fetch_add(&shared_of(db)->started, 1);
	return t;
}

nokv_txn *
nokv_txn_begin(nokv_db *db, const nokv_txn_options *o, nokv_error *err)
{
	nokv_txn   *t;
	nokv_snapshot *snap;

	nokv_error_clear(err);
	snap = nokv_snapshot_acquire(db, err);
	if (!snap)
		return NULL;
	t = txn_alloc(db, o);
	t->snap = snap;
	t->rv = nokv_snapshot_version(snap);
	return t;
}

/*
 * Pin read_version in the shared snapshot table (db.c's encoding: a slot
 * holds version + 1, 0 = free), refusing versions below the GC safe point.
 * The check and the pin happen under one SNAPSHOTS hold, and every pin is
 * at or above the safe point, so the safe point never moves backwards and
 * a compaction that computed it earlier keeps what this reader needs.
 */
static int
pin_version(nokv_db *db, uint64_t version, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	_Atomic uint64_t *slots = nokv_ptr(&db->ctx, hdr->snapshots);
	uint64_t	safe = atomic_load(&hdr->last_version);
	int			free_slot = -1;

	nokv_lock(&db->platform, NOKV_LOCK_SNAPSHOTS, true);
	for (int i = 0; i < hdr->opts.max_snapshots; i++)
	{
		uint64_t	s = atomic_load(&slots[i]);

		if (s == 0)
		{
			if (free_slot < 0)
				free_slot = i;
		}
		else if (s - 1 < safe)
			safe = s - 1;
	}
	if (version < safe)
	{
		nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
		nokv_error_set(err, NOKV_INVALID_ARGUMENT,
					   "read version %llu is below the garbage-collection safe point %llu",
					   (unsigned long long) version, (unsigned long long) safe);
		return -1;
	}
	if (free_slot >= 0)
		atomic_store(&slots[free_slot], version + 1);
	nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
	if (free_slot < 0)
		nokv_error_set(err, NOKV_NO_SPACE, "all %d snapshot slots are in use; raise max_snapshots",
					   hdr->opts.max_snapshots);
	return free_slot;
}

static void
unpin_version(nokv_db *db, int slot)
{
	_Atomic uint64_t *slots = nokv_ptr(&db->ctx, db->hdr->snapshots);

	nokv_lock(&db->platform, NOKV_LOCK_SNAPSHOTS, true);
	atomic_store(&slots[slot], 0);
	nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
}

nokv_txn *
nokv_txn_begin_at(nokv_db *db, const nokv_txn_options *o, uint64_t read_version,
				  nokv_error *err)
{
	nokv_txn   *t;
	int			slot;

	nokv_error_clear(err);
	if (read_version == 0 || read_version == NOKV_VERSION_MAX)
	{
		nokv_error_set(err, NOKV_INVALID_ARGUMENT, "read version %llu is reserved",
					   (unsigned long long) read_version);
		return NULL;
	}
	if (!db->hdr->opts.external_log && read_version > nokv_last_version(db))
	{
		/* versions above it belong to batches that are not published yet */
		nokv_error_set(err, NOKV_INVALID_ARGUMENT,
					   "read version %llu is above the last published version %llu",
					   (unsigned long long) read_version,
					   (unsigned long long) nokv_last_version(db));
		return NULL;
	}
	slot = pin_version(db, read_version, err);
	if (slot < 0)
		return NULL;
	t = txn_alloc(db, o);
	t->pin_slot = slot;
	t->rv = read_version;
	return t;
}

uint64_t
nokv_txn_read_version(const nokv_txn *t)
{
	return t->rv;
}

static void iter_detach(nokv_txn_iter *it, bool keep_run);

/* release everything; iterators still open become invalid */
static void
txn_free(nokv_txn *t)
{
	pnode	   *n;

	while (t->iters)
		iter_detach(t->iters, false);
	if (t->snap)
		nokv_snapshot_release(t->db, t->snap);
	if (t->pin_slot >= 0)
		unpin_version(t->db, t->pin_slot);
	n = t->head;
	while (n)
	{
		pnode	   *next = n->next[0];

		free(n->val);
		free(n);
		n = next;
	}
	for (int i = 0; i < t->nrdels; i++)
	{
		free(t->rdels[i].start);
		free(t->rdels[i].end);
	}
	free(t->rdels);
	for (size_t i = 0; i < t->nranges; i++)
	{
		free(t->ranges[i].lo);
		free(t->ranges[i].hi);
	}
	free(t->ranges);
	free(t->reads);
	free(t->read_set);
	nokv_buf_free(&t->read_keys);
	free(t);
}

void
nokv_txn_discard(nokv_txn *t)
{
	if (!t)
		return;
	atomic_fetch_add(&shared_of(t->db)->discards, 1);
	txn_free(t);
}

/* ---------- writes ---------- */

static int
check_writable(nokv_txn *t, int cf, size_t klen, const void *key, nokv_error *err)
{
	if (t->opts.read_only)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "transaction is read-only");
	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	if (klen > NOKV_MAX_KEY_SIZE || (klen && !key))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "key of %zu bytes exceeds the maximum of %d", klen, NOKV_MAX_KEY_SIZE);
	return NOKV_OK;
}

static void
node_set(nokv_txn *t, pnode *n, bool created, int op, const void *val, size_t vlen,
		 uint64_t expires_at_ms)
{
	if (!created && n->op != OP_COVERED)
		t->wbytes -= n->lklen - 1 + n->vlen;
	else
		t->npoints++;
	free(n->val);
	n->val = NULL;
	n->vlen = 0;
	if (op == NOKV_KIND_PUT)
	{
		n->val = nokv_malloc(vlen ? vlen : 1);
		if (vlen)
			memcpy(n->val, val, vlen);
		n->vlen = vlen;
	}
	n->op = op;
	n->expires_at_ms = op == NOKV_KIND_PUT ? expires_at_ms : 0;
	t->wbytes += n->lklen - 1 + n->vlen;
}

int
nokv_txn_put_ttl(nokv_txn *t, int cf, const void *key, size_t klen,
				 const void *val, size_t vlen, uint64_t expires_at_ms, nokv_error *err)
{
	bool		created;
	pnode	   *n;
	int			rc;

	nokv_error_clear(err);
	rc = check_writable(t, cf, klen, key, err);
	if (rc != NOKV_OK)
		return rc;
	if (vlen > NOKV_MAX_VALUE_SIZE || (vlen && !val))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value of %zu bytes exceeds the maximum of %u", vlen, NOKV_MAX_VALUE_SIZE);
	n = pl_upsert(t, cf, key, klen, &created);
	node_set(t, n, created, NOKV_KIND_PUT, val, vlen, expires_at_ms);
	return NOKV_OK;
}

int
nokv_txn_put(nokv_txn *t, int cf, const void *key, size_t klen,
			 const void *val, size_t vlen, nokv_error *err)
{
	return nokv_txn_put_ttl(t, cf, key, klen, val, vlen, 0, err);
}

int
nokv_txn_delete(nokv_txn *t, int cf, const void *key, size_t klen, nokv_error *err)
{
	bool		created;
	pnode	   *n;
	int			rc;

	nokv_error_clear(err);
	rc = check_writable(t, cf, klen, key, err);
	if (rc != NOKV_OK)
		return rc;
	n = pl_upsert(t, cf, key, klen, &created);
	node_set(t, n, created, NOKV_KIND_DELETE, NULL, 0, 0);
	return NOKV_OK;
}

/*
 * A range delete supersedes the transaction's earlier writes inside it:
 * they are marked covered (never written), so that the commit batch can
 * carry every range delete before every point write and still mean "in
 * the order the transaction made them".
 */
int
nokv_txn_delete_range(nokv_txn *t, int cf, const void *start, size_t slen,
					  const void *end, size_t elen, nokv_error *err)
{
	char		stack[256];
	size_t		lklen = slen + 1;
	char	   *lk;
	pnode	   *n;
	txn_rdel   *r = NULL;
	int			rc;

	nokv_error_clear(err);
	rc = check_writable(t, cf, slen, start, err);
	if (rc != NOKV_OK)
		return rc;
	if (elen > NOKV_MAX_KEY_SIZE || (elen && !end))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "end key of %zu bytes exceeds the maximum of %d", elen, NOKV_MAX_KEY_SIZE);
	if (key_cmp(start, slen, end, elen) >= 0)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "empty or inverted range: start is not below end");

	lk = lklen <= sizeof(stack) ? stack : nokv_malloc(lklen);
	lk[0] = (char) cf;
	if (slen)
		memcpy(lk + 1, start, slen);
	for (n = pl_find_ge(t, lk, lklen, false, NULL);
		 n && pnode_lkey(n)[0] == (char) cf &&
		 key_cmp(pnode_lkey(n) + 1, n->lklen - 1, end, elen) < 0;
		 n = n->next[0])
	{
		if (n->op == OP_COVERED)
			continue;
		t->npoints--;
		t->wbytes -= n->lklen - 1 + n->vlen;
		free(n->val);
		n->val = NULL;
		n->vlen = 0;
		n->op = OP_COVERED;
	}
	if (lk != stack)
		free(lk);

	/* one range per start key (an external-log batch may not repeat one) */
	for (int i = 0; i < t->nrdels; i++)
		if (t->rdels[i].cf == cf && key_cmp(t->rdels[i].start, t->rdels[i].slen, start, slen) == 0)
			r = &t->rdels[i];
	if (r)
	{
		if (key_cmp(end, elen, r->end, r->elen) > 0)
		{
			t->wbytes += elen - r->elen;
			free(r->end);
			r->end = nokv_memdup(end, elen);
			r->elen = elen;
		}
		return NOKV_OK;
	}
	if (t->nrdels == t->rdels_cap)
	{
		t->rdels_cap = t->rdels_cap ? t->rdels_cap * 2 : 4;
		t->rdels = nokv_realloc(t->rdels, (size_t) t->rdels_cap * sizeof(txn_rdel));
	}
	t->rdels[t->nrdels++] = (txn_rdel) {
		.cf = cf,
		.start = nokv_memdup(start, slen), .slen = slen,
		.end = nokv_memdup(end, elen), .elen = elen,
	};
	t->wbytes += slen + elen;
	return NOKV_OK;
}

uint32_t
nokv_txn_write_count(const nokv_txn *t)
{
	return t->npoints + (uint32_t) t->nrdels;
}

size_t
nokv_txn_write_bytes(const nokv_txn *t)
{
	return t->wbytes;
}

/* ---------- reads ---------- */

static void
read_options_for(const nokv_txn *t, const nokv_read_options *ro, nokv_read_options *out)
{
	if (ro)
		*out = *ro;
	else
		nokv_read_options_init(out);
	out->snapshot = t->snap;
	out->version = t->snap ? 0 : t->rv;
}

int
nokv_txn_get(nokv_txn *t, const nokv_read_options *ro, int cf, const void *key, size_t klen,
			 char **val, size_t *vlen, nokv_error *err)
{
	nokv_read_options o;
	pnode	   *n;

	nokv_error_clear(err);
	*val = NULL;
	*vlen = 0;
	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	if (klen > NOKV_MAX_KEY_SIZE || (klen && !key))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "key of %zu bytes exceeds the maximum of %d", klen, NOKV_MAX_KEY_SIZE);

	/* own writes first: they do not depend on anyone else's commits */
	n = pl_lookup(t, cf, key, klen);
	if (n)
	{
		if (n->op != NOKV_KIND_PUT || node_expired(n, nokv_now_ms(t->db)))
			return NOKV_NOT_FOUND;
		*val = nokv_malloc(n->vlen + 1);
		memcpy(*val, n->val, n->vlen);
		(*val)[n->vlen] = '\0';
		*vlen = n->vlen;
		return NOKV_OK;
	}
	if (rdel_covers(t, cf, key, klen))
		return NOKV_NOT_FOUND;

	record_read(t, cf, key, klen);
	read_options_for(t, ro, &o);
	return nokv_get(t->db, &o, cf, key, klen, val, vlen, err);
}

/* ---------- iterators ---------- */

struct nokv_txn_iter
{
	nokv_txn   *t;				/* NULL once the transaction ended */
	nokv_txn_iter *prev_it;
	nokv_txn_iter *next_it;
	int			cf;
	nokv_iter  *base;			/* the snapshot */
	nokv_buf	lower;			/* cf + lower bound, when has_lower */
	nokv_buf	upper;			/* cf + upper bound, when has_upper */
	bool		has_lower;
	bool		has_upper;

	pnode	   *pn;				/* pending candidate */
	bool		forward;
	bool		valid;
	bool		cur_pending;	/* the current entry is a pending write */
	nokv_buf	key;
	nokv_buf	value;
	uint64_t	version;
	uint64_t	now_ms;			/* TTL clock for this call */
	nokv_error	err;			/* err.code != OK: the iterator failed */

	/* the run of keys scanned since the last seek (conflict detection) */
	bool		run_open;
	bool		run_has_lo;
	bool		run_has_hi;
	bool		run_lo_inf;
	bool		run_hi_inf;
	nokv_buf	run_lo;
	nokv_buf	run_hi;
};

static void
run_finish(nokv_txn_iter *it)
{
	nokv_txn   *t = it->t;

	if (it->run_open && t && t->track && it->run_has_lo && it->run_has_hi)
	{
		txn_range	r = {
			.cf = it->cf,
			.lo_inf = it->run_lo_inf,
			.hi_inf = it->run_hi_inf,
		};

		if (!r.lo_inf)
		{
			r.lo = nokv_memdup(it->run_lo.data ? it->run_lo.data : "", it->run_lo.len);
			r.lo_len = it->run_lo.len;
		}
		if (!r.hi_inf)
		{
			r.hi = nokv_memdup(it->run_hi.data ? it->run_hi.data : "", it->run_hi.len);
			r.hi_len = it->run_hi.len;
		}
		ranges_push(t, &r);
	}
	it->run_open = false;
	it->run_has_lo = it->run_has_hi = false;
	it->run_lo_inf = it->run_hi_inf = false;
	nokv_buf_reset(&it->run_lo);
	nokv_buf_reset(&it->run_hi);
}

static void
run_start(nokv_txn_iter *it)
{
	run_finish(it);
	it->run_open = true;
}

/* widen the run's lower end to key (NULL: to the lower bound or -inf) */
static void
run_lo(nokv_txn_iter *it, const char *key, size_t klen)
{
	if (!key && it->has_lower)
	{
		key = it->lower.data + 1;
		klen = it->lower.len - 1;
	}
	if (it->run_lo_inf)
		return;
	if (!key)
	{
		it->run_lo_inf = true;
		it->run_has_lo = true;
		return;
	}
	if (!it->run_has_lo || key_cmp(key, klen, it->run_lo.data, it->run_lo.len) < 0)
	{
		nokv_buf_reset(&it->run_lo);
		nokv_buf_append(&it->run_lo, key, klen);
	}
	it->run_has_lo = true;
}

/* widen the run's upper end to key (NULL: to the upper bound or +inf) */
static void
run_hi(nokv_txn_iter *it, const char *key, size_t klen)
{
	if (!key && it->has_upper)
	{
		key = it->upper.data + 1;
		klen = it->upper.len - 1;
	}
	if (it->run_hi_inf)
		return;
	if (!key)
	{
		it->run_hi_inf = true;
		it->run_has_hi = true;
		return;
	}
	if (!it->run_has_hi || key_cmp(key, klen, it->run_hi.data, it->run_hi.len) > 0)
	{
		nokv_buf_reset(&it->run_hi);
		nokv_buf_append(&it->run_hi, key, klen);
	}
	it->run_has_hi = true;
}

/* after a move: the run now reaches the current key, or the end moved towards */
static void
run_reach(nokv_txn_iter *it, bool forward)
{
	const char *k = it->valid ? it->key.data : NULL;
	size_t		kl = it->valid ? it->key.len : 0;

	if (it->valid && !k)
		k = "";
	if (forward)
		run_hi(it, k, kl);
	else
		run_lo(it, k, kl);
}

static bool
pn_in_range(const nokv_txn_iter *it, const pnode *n)
{
	const char *lk;

	if (!n)
		return false;
	lk = pnode_lkey(n);
	if (lk[0] != (char) it->cf)
		return false;
	if (it->has_lower && nokv_lkey_compare(lk, n->lklen, it->lower.data, it->lower.len) < 0)
		return false;
	if (it->has_upper && nokv_lkey_compare(lk, n->lklen, it->upper.data, it->upper.len) >= 0)
		return false;
	return true;
}

static bool
iter_failed(nokv_txn_iter *it)
{
	nokv_error	e;

	if (it->err.code != NOKV_OK)
		return true;
	if (nokv_iter_status(it->base, NULL) == NOKV_OK)
		return false;
	memset(&e, 0, sizeof(e));
	if (nokv_iter_status(it->base, &e) != NOKV_OK)
	{
		it->err = e;
		if (it->err.code == NOKV_OK)
			it->err.code = NOKV_IO_ERROR;
		it->valid = false;
		return true;
	}
	return false;
}

static void
set_current(nokv_txn_iter *it, const char *k, size_t kl, const char *v, size_t vl,
			uint64_t version, bool pending)
{
	nokv_buf_reset(&it->key);
	nokv_buf_reset(&it->value);
	nokv_buf_append(&it->key, k, kl);
	nokv_buf_append(&it->value, v, vl);
	it->version = version;
	it->cur_pending = pending;
	it->valid = true;
}

/*
 * Position on the first visible entry at or after (forward) / at or before
 * (backward) the two cursors: the smaller (larger) of the pending node and
 * the snapshot entry, the pending one winning a tie; pending deletes hide
 * the snapshot entry of the same key, range deletes of the transaction
 * hide snapshot entries inside them.
 */
static void
settle(nokv_txn_iter *it, bool forward)
{
	nokv_txn   *t = it->t;

	it->valid = false;
	for (;;)
	{
		bool		bv,
					pv = pn_in_range(it, it->pn);
		const char *bk = NULL;
		size_t		bkl = 0;
		bool		take_pending;
		bool		same = false;

		if (iter_failed(it))
			return;
		bv = nokv_iter_valid(it->base);
		if (!bv && !pv)
			return;
		if (bv)
		{
			bk = nokv_iter_key(it->base, &bkl);
			if (!bk)
				bk = "";
		}
		if (!pv)
			take_pending = false;
		else if (!bv)
			take_pending = true;
		else
		{
			int			c = key_cmp(pnode_lkey(it->pn) + 1, it->pn->lklen - 1, bk, bkl);

			same = c == 0;
			take_pending = forward ? c <= 0 : c >= 0;
		}
		if (take_pending)
		{
			pnode	   *n = it->pn;

			if (n->op == NOKV_KIND_PUT && !node_expired(n, it->now_ms))
			{
				set_current(it, pnode_lkey(n) + 1, n->lklen - 1, n->val ? n->val : "", n->vlen, 0, true);
				return;
			}
			if (same)
			{
				if (forward)
					nokv_iter_next(it->base);
				else
					nokv_iter_prev(it->base);
			}
			it->pn = forward ? n->next[0] : pl_find_lt(t, pnode_lkey(n), n->lklen, false);
			continue;
		}
		if (rdel_covers(t, it->cf, bk, bkl))
		{
			if (forward)
				nokv_iter_next(it->base);
			else
				nokv_iter_prev(it->base);
			continue;
		}
		{
			size_t		vl = 0;
			const char *v = nokv_iter_value(it->base, &vl);

			set_current(it, bk, bkl, v ? v : "", vl, nokv_iter_version(it->base), false);
		}
		return;
	}
}

/* an lkey for cf + key in buf */
static void
make_lkey(nokv_buf *buf, int cf, const char *key, size_t klen)
{
	char		c = (char) cf;

	nokv_buf_reset(buf);
	nokv_buf_append(buf, &c, 1);
	if (klen)
		nokv_buf_append(buf, key, klen);
}

static bool
op_begin(nokv_txn_iter *it)
{
	if (!it->t)
	{
		it->valid = false;
		if (it->err.code == NOKV_OK)
			nokv_error_set(&it->err, NOKV_INVALID_ARGUMENT, "the iterator's transaction has ended");
		return false;
	}
	if (it->err.code != NOKV_OK)
	{
		it->valid = false;
		return false;
	}
	it->now_ms = nokv_now_ms(it->t->db);
	return true;
}

nokv_txn_iter *
nokv_txn_iter_new(nokv_txn *t, const nokv_read_options *ro, int cf)
{
	nokv_txn_iter *it = nokv_calloc(1, sizeof(nokv_txn_iter));
	nokv_read_options o;

	it->t = t;
	it->cf = cf;
	it->forward = true;
	/* linked first, so that ending the transaction always detaches it */
	it->next_it = t->iters;
	if (t->iters)
		t->iters->prev_it = it;
	t->iters = it;
	if (cf < 0 || cf >= NOKV_CF_COUNT)
	{
		nokv_error_set(&it->err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
		return it;
	}
	read_options_for(t, ro, &o);
	if (o.lower_bound)
	{
		make_lkey(&it->lower, cf, o.lower_bound, o.lower_len);
		it->has_lower = true;
	}
	if (o.upper_bound)
	{
		make_lkey(&it->upper, cf, o.upper_bound, o.upper_len);
		it->has_upper = true;
	}
	it->base = nokv_iter_new(t->db, &o, cf);
	if (!it->base)
		nokv_error_set(&it->err, NOKV_NO_SPACE, "could not create the snapshot iterator");
	return it;
}

/* unlink from the transaction; keep_run: record the open scan run first */
static void
iter_detach(nokv_txn_iter *it, bool keep_run)
{
	nokv_txn   *t = it->t;

	if (!t)
		return;
	if (keep_run)
		run_finish(it);
	it->run_open = false;
	if (it->prev_it)
		it->prev_it->next_it = it->next_it;
	else
		t->iters = it->next_it;
	if (it->next_it)
		it->next_it->prev_it = it->prev_it;
	it->prev_it = it->next_it = NULL;
	it->t = NULL;
	it->valid = false;
	it->pn = NULL;
	if (it->base)
		nokv_iter_free(it->base);
	it->base = NULL;
	if (it->err.code == NOKV_OK)
		nokv_error_set(&it->err, NOKV_INVALID_ARGUMENT, "the iterator's transaction has ended");
}

void
nokv_txn_iter_free(nokv_txn_iter *it)
{
	if (!it)
		return;
	iter_detach(it, true);
	nokv_buf_free(&it->lower);
	nokv_buf_free(&it->upper);
	nokv_buf_free(&it->key);
	nokv_buf_free(&it->value);
	nokv_buf_free(&it->run_lo);
	nokv_buf_free(&it->run_hi);
	free(it);
}

void
nokv_txn_iter_seek_to_first(nokv_txn_iter *it)
{
	nokv_buf	lk = {0};

	if (!op_begin(it))
		return;
	run_start(it);
	run_lo(it, NULL, 0);
	nokv_iter_seek_to_first(it->base);
	if (it->has_lower)
		it->pn = pl_find_ge(it->t, it->lower.data, it->lower.len, false, NULL);
	else
	{
		make_lkey(&lk, it->cf, NULL, 0);
		it->pn = pl_find_ge(it->t, lk.data, lk.len, false, NULL);
		nokv_buf_free(&lk);
	}
	it->forward = true;
	settle(it, true);
	run_reach(it, true);
}

void
nokv_txn_iter_seek_to_last(nokv_txn_iter *it)
{
	nokv_buf	lk = {0};

	if (!op_begin(it))
		return;
	run_start(it);
	run_hi(it, NULL, 0);
	nokv_iter_seek_to_last(it->base);
	if (it->has_upper)
		it->pn = pl_find_lt(it->t, it->upper.data, it->upper.len, false);
	else
	{
		make_lkey(&lk, it->cf + 1, NULL, 0);
		it->pn = pl_find_lt(it->t, lk.data, lk.len, false);
		nokv_buf_free(&lk);
	}
	it->forward = false;
	settle(it, false);
	run_reach(it, false);
}

void
nokv_txn_iter_seek(nokv_txn_iter *it, const void *key, size_t klen)
{
	nokv_buf	lk = {0};

	if (!op_begin(it))
		return;
	run_start(it);
	run_lo(it, klen ? key : "", klen);
	run_hi(it, klen ? key : "", klen);
	nokv_iter_seek(it->base, key, klen);
	make_lkey(&lk, it->cf, key, klen);
	if (it->has_lower && nokv_lkey_compare(lk.data, lk.len, it->lower.data, it->lower.len) < 0)
		it->pn = pl_find_ge(it->t, it->lower.data, it->lower.len, false, NULL);
	else
		it->pn = pl_find_ge(it->t, lk.data, lk.len, false, NULL);
	nokv_buf_free(&lk);
	it->forward = true;
	settle(it, true);
	run_reach(it, true);
}

void
nokv_txn_iter_seek_for_prev(nokv_txn_iter *it, const void *key, size_t klen)
{
	nokv_buf	lk = {0};

	if (!op_begin(it))
		return;
	run_start(it);
	run_lo(it, klen ? key : "", klen);
	run_hi(it, klen ? key : "", klen);
	nokv_iter_seek_for_prev(it->base, key, klen);
	make_lkey(&lk, it->cf, key, klen);
	if (it->has_upper && nokv_lkey_compare(lk.data, lk.len, it->upper.data, it->upper.len) >= 0)
		it->pn = pl_find_lt(it->t, it->upper.data, it->upper.len, false);
	else
		it->pn = pl_find_lt(it->t, lk.data, lk.len, true);
	nokv_buf_free(&lk);
	it->forward = false;
	settle(it, false);
	run_reach(it, false);
}

/* is the snapshot cursor on the current key? */
static bool
base_on_current(nokv_txn_iter *it)
{
	size_t		bkl;
	const char *bk;

	if (!nokv_iter_valid(it->base))
		return false;
	bk = nokv_iter_key(it->base, &bkl);
	return key_cmp(bk ? bk : "", bkl, it->key.data ? it->key.data : "", it->key.len) == 0;
}

void
nokv_txn_iter_next(nokv_txn_iter *it)
{
	nokv_buf	lk = {0};

	if (!it->valid || !op_begin(it))
		return;
	if (!it->forward)
	{
		/* direction change: both cursors to the first entry after the current key */
		make_lkey(&lk, it->cf, it->key.data, it->key.len);
		nokv_iter_seek(it->base, it->key.data ? it->key.data : "", it->key.len);
		if (base_on_current(it))
			nokv_iter_next(it->base);
		it->pn = pl_find_ge(it->t, lk.data, lk.len, true, NULL);
		nokv_buf_free(&lk);
		it->forward = true;
	}
	else if (it->cur_pending)
	{
		if (base_on_current(it))
			nokv_iter_next(it->base);
		it->pn = it->pn->next[0];
	}
	else
		nokv_iter_next(it->base);
	settle(it, true);
	run_reach(it, true);
}

void
nokv_txn_iter_prev(nokv_txn_iter *it)
{
	nokv_buf	lk = {0};

	if (!it->valid || !op_begin(it))
		return;
	make_lkey(&lk, it->cf, it->key.data, it->key.len);
	if (it->forward)
	{
		nokv_iter_seek_for_prev(it->base, it->key.data ? it->key.data : "", it->key.len);
		if (base_on_current(it))
			nokv_iter_prev(it->base);
		it->pn = pl_find_lt(it->t, lk.data, lk.len, false);
		it->forward = false;
	}
	else if (it->cur_pending)
	{
		if (base_on_current(it))
			nokv_iter_prev(it->base);
		it->pn = pl_find_lt(it->t, lk.data, lk.len, false);
	}
	else
		nokv_iter_prev(it->base);
	nokv_buf_free(&lk);
	settle(it, false);
	run_reach(it, false);
}

bool
nokv_txn_iter_valid(const nokv_txn_iter *it)
{
	return it->valid;
}

const char *
nokv_txn_iter_key(const nokv_txn_iter *it, size_t *klen)
{
	if (!it->valid)
	{
		*klen = 0;
		return NULL;
	}
	*klen = it->key.len;
	return it->key.data ? it->key.data : "";
}

const char *
nokv_txn_iter_value(const nokv_txn_iter *it, size_t *vlen)
{
	if (!it->valid)
	{
		*vlen = 0;
		return NULL;
	}
	*vlen = it->value.len;
	return it->value.data ? it->value.data : "";
}

uint64_t
nokv_txn_iter_version(const nokv_txn_iter *it)
{
	return it->valid ? it->version : 0;
}

int
nokv_txn_iter_status(const nokv_txn_iter *it, nokv_error *err)
{
	if (it->err.code != NOKV_OK)
	{
		if (err)
			*err = it->err;
		return it->err.code;
	}
	if (it->base)
		return nokv_iter_status(it->base, err);
	nokv_error_clear(err);
	return NOKV_OK;
}

/* ---------- commit ---------- */

/* a key the commit depends on: one the transaction read or writes */
typedef struct check_point
{
	uint64_t	fp;
	int			cf;
	const char *key;
	size_t		klen;
} check_point;

typedef struct commit_ctx
{
	nokv_txn   *t;
	bool		check;
	check_point *points;
	size_t		npoints;
	txn_range  *ranges;			/* scanned ranges and own range deletes */
	size_t		nranges;
} commit_ctx;

static int
conflict(commit_ctx *c, nokv_error *err, bool floor, uint64_t version, const char *what)
{
	txn_shared *sh = shared_of(c->t->db);

	if (floor)
		atomic_fetch_add(&sh->floor_conflicts, 1);
	return nokv_error_set(err, NOKV_CONFLICT,
						  floor ? "transaction conflict: the history of %s was evicted up to version %llu, after the read version %llu; retry"
						  : "transaction conflict: %s was committed by another writer at version %llu, after the read version %llu; retry",
						  what, (unsigned long long) version, (unsigned long long) c->t->rv);
}

/* under NOKV_LOCK_WRITE */
static int
check_conflicts(commit_ctx *c, nokv_db *db, nokv_error *err)
{
	txn_shared *sh = shared_of(db);
	txn_ring_entry *ring = ring_of(sh);
	uint64_t	rv = c->t->rv;
	uint64_t	n,
				oldest;
	bool		points_vs_rdels;

	for (size_t i = 0; i < c->npoints; i++)
	{
		txn_bucket *b = bucket_for(sh, c->points[i].fp);
		bool		listed = false;

		for (int w = 0; w < TXN_WAYS; w++)
			if (b->fp[w] == c->points[i].fp)
			{
				listed = true;
				if (b->version[w] > rv)
					return conflict(c, err, false, b->version[w], "a key it read or wrote");
			}
		if (!listed && b->floor > rv)
			return conflict(c, err, true, b->floor, "a key it read or wrote");
	}

	points_vs_rdels = c->npoints > 0 && sh->last_rdel > rv;
	if (c->nranges == 0 && !points_vs_rdels)
		return NOKV_OK;
	n = sh->ring_next;
	oldest = n > sh->nring ? n - sh->nring : 0;
	for (; n > oldest; n--)
	{
		const txn_ring_entry *e = &ring[(n - 1) % sh->nring];

		if (e->version <= rv)
			return NOKV_OK;
		for (size_t i = 0; i < c->nranges; i++)
		{
			const txn_range *r = &c->ranges[i];

			if (r->cf == e->cf &&
				ring_overlaps(e, r->lo, r->lo_len, r->lo_inf, r->hi, r->hi_len, r->hi_inf))
				return conflict(c, err, false, e->version, "a key range it scanned or deleted");
		}
		if ((e->flags & RING_RDEL) && points_vs_rdels)
			for (size_t i = 0; i < c->npoints; i++)
			{
				const check_point *p = &c->points[i];

				if (p->cf == e->cf &&
					ring_overlaps(e, p->key, p->klen, false, p->key, p->klen, false))
					return conflict(c, err, false, e->version, "a range delete covering a key it read or wrote");
			}
	}
	/* every remaining entry is newer than rv, and older ones were evicted */
	if (c->nranges > 0 && sh->range_floor > rv)
		return conflict(c, err, true, sh->range_floor, "the key ranges it scanned or deleted");
	if (c->npoints > 0 && sh->rdel_floor > rv)
		return conflict(c, err, true, sh->rdel_floor, "range deletes near the keys it read or wrote");
	return NOKV_OK;
}

static int
txn_precommit(void *arg, nokv_db *db, const nokv_batch *b, uint64_t first_version,
			  nokv_error *err)
{
	commit_ctx *c = arg;

	if (c->check)
	{
		int			rc = check_conflicts(c, db, err);

		if (rc != NOKV_OK)
			return rc;
	}
	/* recorded even without detection: others may detect against it */
	record_batch_at(db, b, first_version + b->count - 1);
	return NOKV_OK;
}

/* the commit batch: range deletes first, then point writes in key order */
static int
build_batch(nokv_txn *t, nokv_batch *b, nokv_error *err)
{
	int			rc = NOKV_OK;

	for (int i = 0; i < t->nrdels && rc == NOKV_OK; i++)
		rc = nokv_batch_delete_range(b, t->rdels[i].cf, t->rdels[i].start, t->rdels[i].slen,
									 t->rdels[i].end, t->rdels[i].elen);
	for (pnode *n = t->head->next[0]; n && rc == NOKV_OK; n = n->next[0])
	{
		const char *lk = pnode_lkey(n);

		if (n->op == NOKV_KIND_PUT)
			rc = nokv_batch_put_ttl(b, (unsigned char) lk[0], lk + 1, n->lklen - 1,
									n->val, n->vlen, n->expires_at_ms);
		else if (n->op == NOKV_KIND_DELETE)
			rc = nokv_batch_delete(b, (unsigned char) lk[0], lk + 1, n->lklen - 1);
	}
	if (rc != NOKV_OK)
		return nokv_error_set(err, rc, "could not build the commit batch");
	return NOKV_OK;
}

static void
build_check_set(nokv_txn *t, commit_ctx *c)
{
	size_t		np = 0;

	/* scans still open count as well */
	for (nokv_txn_iter *it = t->iters; it; it = it->next_it)
		run_finish(it);

	c->points = nokv_malloc((t->nreads + t->npoints + 1) * sizeof(check_point));
	for (size_t i = 0; i < t->nreads; i++)
		c->points[np++] = (check_point) {
			.fp = t->reads[i].fp, .cf = t->reads[i].cf,
			.key = t->read_keys.data ? t->read_keys.data + t->reads[i].off : "",
			.klen = t->reads[i].klen,
		};
	/* first committer wins: the keys it writes are checked too */
	for (pnode *n = t->head->next[0]; n; n = n->next[0])
	{
		const char *lk = pnode_lkey(n);

		if (n->op == OP_COVERED)
			continue;
		c->points[np++] = (check_point) {
			.fp = txn_fingerprint((unsigned char) lk[0], lk + 1, n->lklen - 1),
			.cf = (unsigned char) lk[0], .key = lk + 1, .klen = n->lklen - 1,
		};
	}
	c->npoints = np;

	c->nranges = t->nranges + (size_t) t->nrdels;
	c->ranges = nokv_malloc((c->nranges + 1) * sizeof(txn_range));
	if (t->nranges)
		memcpy(c->ranges, t->ranges, t->nranges * sizeof(txn_range));
	for (int i = 0; i < t->nrdels; i++)
		c->ranges[t->nranges + (size_t) i] = (txn_range) {
			.cf = t->rdels[i].cf,
			.lo = t->rdels[i].start, .lo_len = t->rdels[i].slen,
			.hi = t->rdels[i].end, .hi_len = t->rdels[i].elen,
		};
}

int
nokv_txn_commit(nokv_txn *t, uint64_t *commit_version, nokv_error *err)
{
	nokv_db    *db = t->db;
	txn_shared *sh = shared_of(db);
	nokv_batch	b = {0};
	nokv_write_options wo = {0};
	commit_ctx	c = {.t = t};
	uint64_t	first = 0;
	int			rc;

	nokv_error_clear(err);
	if (commit_version)
		*commit_version = 0;
	if (db->hdr->opts.external_log)
	{
		atomic_fetch_add(&sh->failed, 1);
		txn_free(t);
		return nokv_error_set(err, NOKV_NOT_SUPPORTED,
							  "external-log databases commit with nokv_txn_commit_at (caller-chosen version)");
	}
	if (nokv_txn_write_count(t) == 0)
	{
		/* a snapshot read is consistent by construction: nothing to validate */
		if (commit_version)
			*commit_version = t->rv;
		atomic_fetch_add(&sh->read_only, 1);
		txn_free(t);
		return NOKV_OK;
	}
	rc = build_batch(t, &b, err);
	if (rc == NOKV_OK)
	{
		c.check = t->opts.detect_conflicts;
		if (c.check)
			build_check_set(t, &c);
		wo.sync = t->opts.sync;
		rc = nokv_write_ex(db, &wo, &b, txn_precommit, &c, &first, err);
	}
	if (rc == NOKV_OK)
	{
		if (commit_version)
			*commit_version = first + b.count - 1;
		atomic_fetch_add(&sh->commits, 1);
	}
	else if (rc == NOKV_CONFLICT)
		atomic_fetch_add(&sh->conflicts, 1);
	else
		atomic_fetch_add(&sh->failed, 1);
	free(c.points);
	free(c.ranges);
	nokv_buf_free(&b.rep);
	txn_free(t);
	return rc;
}

int
nokv_txn_commit_at(nokv_txn *t, const nokv_write_options *wo, nokv_error *err)
{
	nokv_db    *db = t->db;
	txn_shared *sh = shared_of(db);
	nokv_batch	b = {0};
	int			rc;

	nokv_error_clear(err);
	if (!db->hdr->opts.external_log)
		rc = nokv_error_set(err, NOKV_NOT_SUPPORTED,
							"caller-chosen commit versions need an external-log database; use nokv_txn_commit");
	else if (!wo || wo->version == 0)
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT, "managed commit needs a version above 0");
	else if (nokv_txn_write_count(t) == 0)
	{
		atomic_fetch_add(&sh->read_only, 1);
		txn_free(t);
		return NOKV_OK;
	}
	else
	{
		rc = build_batch(t, &b, err);
		if (rc == NOKV_OK)
			rc = nokv_write(db, wo, &b, err);
	}
	atomic_fetch_add(rc == NOKV_OK ? &sh->commits : &sh->failed, 1);
	nokv_buf_free(&b.rep);
	txn_free(t);
	return rc;
}
