/*-------------------------------------------------------------------------
 *
 * db.c
 *	  The engine core: region layout, recovery, the write path, flush,
 *	  point reads, snapshots, statistics and standalone background threads.
 *
 * Write path.  Under NOKV_LOCK_WRITE a writer picks the active memtable
 * (rotating it, or stalling, when it is full), takes the batch's versions,
 * appends the batch as one WAL record and reserves arena space; it then
 * inserts into the memtable without the lock (the skiplist is lock-free,
 * so writers in several processes insert concurrently), publishes its
 * versions in order, and finally, if it must be durable, joins a group
 * commit.  Readers only ever see published versions, so a batch becomes
 * visible all at once.
 *
 * Flush.  One flush at a time (so level 0 stays ordered by age) writes the
 * oldest immutable memtable to an SST, logs the edit to the manifest, then
 * installs the new version before retiring the memtable, so no reader can
 * miss the data in between.  Only then is the memtable's WAL segment
 * deleted.
 *
 * src/engine/db.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nokv/batch.h"
#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/hotring.h"
#include "nokv/status.h"
#include "nokv/vlog.h"

#define STACK_KEY_BUF 512

struct nokv_bg_thread
{
	pthread_t	tid;
	nokv_db    *db;
	bool		flush;
	bool		started;
};

struct nokv_snapshot
{
	int			slot;
	uint64_t	version;
};

/* ---------- options ---------- */

void
nokv_options_init(nokv_options *o)
{
	memset(o, 0, sizeof(*o));
	o->memtable_size = 64u << 20;
	o->max_memtables = 4;
	o->external_log = false;
	o->sync_mode = NOKV_SYNC_OFF;
	o->wal_buffer_size = 1u << 20;
	/* a cached block with its cache and heap headers (88 bytes) fits 4 KiB */
	o->block_size = 4000;
	o->block_restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compression = true;
	o->target_file_size = 64u << 20;
	o->num_levels = 7;
	o->max_bytes_for_level_base = 256u << 20;
	o->level_size_multiplier = 10;
	o->l0_compaction_trigger = 4;
	o->l0_slowdown_trigger = 20;
	o->l0_stop_trigger = 36;
	o->block_cache_size = 64u << 20;
	o->meta_heap_size = 16u << 20;
	o->max_files = 65536;
	o->max_snapshots = 1024;
	o->background_threads = true;
	o->compaction_threads = 1;
	o->manifest_rewrite_size = 64u << 20;
	o->vlog_threshold = 1024;
	o->vlog_segment_size = 256u << 20;
	o->vlog_gc_discard_ratio = 0.5;
	o->max_vlog_segments = 4096;
	o->txn_conflict_slots = 65536;
	o->hot_capacity = 4096;
	o->hot_window_ms = 60000;
	o->hot_window_slots = 6;
	o->hot_topn = 16;
	o->hot_write_limit = 0;
}

void
nokv_read_options_init(nokv_read_options *ro)
{
	memset(ro, 0, sizeof(*ro));
	ro->fill_cache = true;
	ro->verify_checksums = true;
}

int
nokv_cf_from_name(const char *name)
{
	if (!name)
		return -1;
	if (strcmp(name, "default") == 0)
		return NOKV_CF_DEFAULT;
	if (strcmp(name, "lock") == 0)
		return NOKV_CF_LOCK;
	if (strcmp(name, "write") == 0)
		return NOKV_CF_WRITE;
	return -1;
}

const char *
nokv_cf_name(int cf)
{
	switch (cf)
	{
		case NOKV_CF_DEFAULT:
			return "default";
		case NOKV_CF_LOCK:
			return "lock";
		case NOKV_CF_WRITE:
			return "write";
	}
	return NULL;
}

static int
validate_options(const nokv_options *o, nokv_error *err)
{
#define CHECK(cond, ...) do { if (!(cond)) return nokv_error_set(err, NOKV_INVALID_ARGUMENT, __VA_ARGS__); } while (0)
	CHECK(o->memtable_size >= (64u << 10) && o->memtable_size < (4ull << 30),
		  "memtable_size must be between 64 KiB and 4 GiB");
	CHECK(o->max_memtables >= 2 && o->max_memtables <= NOKV_MAX_MEMTABLES,
		  "max_memtables must be between 2 and %d", NOKV_MAX_MEMTABLES);
	CHECK(o->num_levels >= 2 && o->num_levels <= NOKV_MAX_LEVELS,
		  "num_levels must be between 2 and %d", NOKV_MAX_LEVELS);
	CHECK(o->block_size >= 256 && o->block_size <= (4u << 20), "block_size must be between 256 B and 4 MiB");
	CHECK(o->block_restart_interval >= 1, "block_restart_interval must be positive");
	CHECK(o->bloom_bits_per_key >= 0 && o->bloom_bits_per_key <= 64, "bloom_bits_per_key must be 0..64");
	CHECK(o->target_file_size >= 4096, "target_file_size must be at least 4 KiB");
	CHECK(o->level_size_multiplier >= 2, "level_size_multiplier must be at least 2");
	CHECK(o->max_bytes_for_level_base >= 4096, "max_bytes_for_level_base must be at least 4 KiB");
	CHECK(o->l0_compaction_trigger >= 1 &&
		  o->l0_slowdown_trigger >= o->l0_compaction_trigger &&
		  o->l0_stop_trigger >= o->l0_slowdown_trigger,
		  "level-0 triggers must satisfy compaction <= slowdown <= stop");
	CHECK(o->meta_heap_size >= (256u << 10), "meta_heap_size must be at least 256 KiB");
	CHECK(o->max_files >= 16 && o->max_files <= (1 << 24), "max_files must be 16..16M");
	CHECK(o->max_snapshots >= 1 && o->max_snapshots <= (1 << 20), "max_snapshots must be 1..1M");
	CHECK(o->external_log || o->wal_buffer_size >= 4096, "wal_buffer_size must be at least 4 KiB");
	CHECK(o->compaction_threads >= 0 && o->compaction_threads <= 16, "compaction_threads must be 0..16");
	CHECK(o->vlog_threshold == 0 || o->vlog_threshold >= 16, "vlog_threshold must be 0 or at least 16 bytes");
	CHECK(o->vlog_segment_size >= (64u << 10), "vlog_segment_size must be at least 64 KiB");
	CHECK(o->vlog_gc_discard_ratio > 0.0 && o->vlog_gc_discard_ratio <= 1.0,
		  "vlog_gc_discard_ratio must be in (0, 1]");
	CHECK(o->max_vlog_segments >= 4 && o->max_vlog_segments <= (1 << 20), "max_vlog_segments must be 4..1M");
	CHECK(o->txn_conflict_slots >= 64 && o->txn_conflict_slots <= (1 << 24),
		  "txn_conflict_slots must be 64..16M");
	CHECK(o->hot_capacity >= 0 && o->hot_capacity <= (1 << 20), "hot_capacity must be 0..1M");
	CHECK(o->hot_window_ms >= 10, "hot_window_ms must be at least 10");
	CHECK(o->hot_window_slots >= 1 && o->hot_window_slots <= 64, "hot_window_slots must be 1..64");
	CHECK(o->hot_topn >= 1 && o->hot_topn <= 1024, "hot_topn must be 1..1024");
	CHECK(o->hot_write_limit >= 0, "hot_write_limit must not be negative");
#undef CHECK
	return NOKV_OK;
}

/* ---------- region layout ---------- */

static void
shared_options_from(const nokv_options *opts, nokv_shared_options *so)
{
	*so = (nokv_shared_options) {
		.memtable_size = opts->memtable_size,
		.max_memtables = opts->max_memtables,
		.external_log = opts->external_log,
		.host_mvcc = opts->host_mvcc,
		.sync_mode = opts->sync_mode,
		.wal_buffer_size = opts->wal_buffer_size,
		.sst = {
			.block_size = opts->block_size,
			.restart_interval = opts->block_restart_interval,
			.bloom_bits_per_key = opts->bloom_bits_per_key,
			.compression = opts->compression,
		},
		.target_file_size = opts->target_file_size,
		.num_levels = opts->num_levels,
		.max_bytes_for_level_base = opts->max_bytes_for_level_base,
		.level_size_multiplier = opts->level_size_multiplier,
		.l0_compaction_trigger = opts->l0_compaction_trigger,
		.l0_slowdown_trigger = opts->l0_slowdown_trigger,
		.l0_stop_trigger = opts->l0_stop_trigger,
		.block_cache_size = opts->block_cache_size,
		.meta_heap_size = opts->meta_heap_size,
		.max_files = opts->max_files,
		.max_snapshots = opts->max_snapshots,
		.manifest_rewrite_size = opts->manifest_rewrite_size,
		.vlog_threshold = opts->vlog_threshold,
		.vlog_segment_size = opts->vlog_segment_size,
		.vlog_gc_discard_ratio = opts->vlog_gc_discard_ratio,
		.max_vlog_segments = opts->max_vlog_segments,
		.txn_conflict_slots = opts->txn_conflict_slots,
		.hot_capacity = opts->hot_capacity,
		.hot_window_ms = opts->hot_window_ms,
		.hot_window_slots = opts->hot_window_slots,
		.hot_topn = opts->hot_topn,
		.hot_write_limit = opts->hot_write_limit,
	};
}

typedef struct region_layout
{
	size_t		platform;
	size_t		files;
	size_t		snapshots;
	size_t		vlog;
	size_t		txn;
	size_t		hotring;
	size_t		wal;
	size_t		cache;
	size_t		memtables;
	size_t		memtable_stride;
	size_t		heap;
	size_t		heap_size;
	size_t		total;
} region_layout;

static void
compute_layout(const nokv_options *o, bool builtin_platform, region_layout *l)
{
	size_t		pos = NOKV_ALIGN(sizeof(nokv_region_hdr), 64);
	nokv_shared_options so;

	shared_options_from(o, &so);
	memset(l, 0, sizeof(*l));
	if (builtin_platform)
	{
		l->platform = pos;
		pos += NOKV_ALIGN(nokv_pthread_platform_size(), 64);
	}
	l->files = pos;
	pos += NOKV_ALIGN(sizeof(nokv_file_meta) * (size_t) o->max_files, 64);
	l->snapshots = pos;
	pos += NOKV_ALIGN(sizeof(uint64_t) * (size_t) o->max_snapshots, 64);
	l->vlog = pos;
	pos += NOKV_ALIGN(nokv_vlog_shared_size(&so), 64);
	l->txn = pos;
	pos += NOKV_ALIGN(nokv_txn_shared_size(&so), 64);
	if (o->hot_capacity > 0)
	{
		l->hotring = pos;
		pos += NOKV_ALIGN(nokv_hotring_shared_size(&so), 64);
	}
	if (!o->external_log)
	{
		l->wal = pos;
		pos += NOKV_ALIGN(nokv_wal_shared_size(o->wal_buffer_size), 64);
	}
	l->cache = pos;
	pos += NOKV_ALIGN(nokv_cache_shared_size(), 64);
	l->memtable_stride = NOKV_ALIGN(nokv_memtable_header_size() + o->memtable_size, 64);
	l->memtables = pos;
	pos += l->memtable_stride * (size_t) o->max_memtables;
	l->heap = pos;
	l->heap_size = nokv_heap_header_size() + o->meta_heap_size + o->block_cache_size + 4096;
	pos += NOKV_ALIGN(l->heap_size, 64);
	l->total = pos;
}

size_t
nokv_region_size(const nokv_options *opts)
{
	region_layout l;

	compute_layout(opts, opts->platform == NULL, &l);
	return l.total;
}

/* ---------- handles ---------- */

static uint64_t
vlog_new_number(void *arg)
{
	return nokv_new_file_number((nokv_db *) arg);
}

static nokv_db *
handle_new(void *region, const nokv_options *opts)
{
	nokv_db    *db = nokv_calloc(1, sizeof(nokv_db));

	db->hdr = region;
	db->ctx.base = region;
	db->lock_fd = -1;
	db->stripe = (int) (((uint64_t) getpid() * 0x9e3779b97f4a7c15ull) >> 60) % NOKV_STAT_STRIPES;
	if (opts->platform)
		db->platform = *opts->platform;
	else
		nokv_pthread_platform_bind(&db->platform,
								   (char *) region + db->hdr->platform_storage);
	db->ctx.plat = &db->platform;
	db->ctx.heap = db->hdr->heap;
	db->compaction_filter = opts->compaction_filter;
	db->compaction_filter_arg = opts->compaction_filter_arg;
	db->sst_partition = opts->sst_partition;
	db->sst_partition_arg = opts->sst_partition_arg;
	db->before_flush = opts->before_flush;
	db->before_flush_arg = opts->before_flush_arg;
	db->clock_ms = opts->clock_ms;
	db->clock_arg = opts->clock_arg;
	snprintf(db->dir, sizeof(db->dir), "%s", db->hdr->dir);
	db->sst_env.ctx = &db->ctx;
	db->sst_env.cache = db->hdr->cache;
	db->sst_env.counters = &db->hdr->stats.hot[db->stripe].sst;
	db->tables = nokv_table_cache_new();
	db->vlog = nokv_vlog_attach(&db->ctx, db->hdr->vlog, db->hdr->dir, vlog_new_number, db);
	return db;
}

static void
handle_free(nokv_db *db)
{
	if (db->wal)
		nokv_wal_detach(db->wal);
	if (db->manifest)
		nokv_manifest_writer_close(db->manifest);
	if (db->vlog)
		nokv_vlog_detach(db->vlog);
	nokv_table_cache_free(db->tables);
	free(db);
}

int
nokv_attach(void *region, const nokv_options *opts, nokv_db **dbp, nokv_error *err)
{
	nokv_region_hdr *hdr = region;
	nokv_db    *db;

	*dbp = NULL;
	if (hdr->magic != NOKV_REGION_MAGIC || hdr->format_version != NOKV_REGION_VERSION)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "memory region is not a formatted nokv region");
	if ((opts->platform == NULL) != (hdr->platform_storage != 0))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "platform does not match the one the region was formatted with");
	db = handle_new(region, opts);
	if (hdr->wal)
		db->wal = nokv_wal_attach(&db->ctx, hdr->wal, hdr->dir);
	*dbp = db;
	return NOKV_OK;
}

/* ---------- memtable slots ---------- */

static inline nokv_mt_slot *
active_slot(nokv_db *db)
{
	return &db->hdr->slots[db->hdr->active_slot];
}

static size_t
slot_arena_size(nokv_db *db)
{
	return db->hdr->opts.memtable_size;
}

/*
 * Would cost more bytes still fit in the slot's arena?  Bytes already used
 * plus the worst case of inserts in flight: reservations are returned when
 * an insert finishes, so a memtable fills to its real capacity.
 */
static bool
slot_has_room(nokv_db *db, nokv_mt_slot *s, size_t cost)
{
	return nokv_memtable_arena_used(&db->ctx, s->mt) + atomic_load(&s->reserved) + cost <=
		slot_arena_size(db);
}

/*
 * True when no memtable can be freed by background work: every slot that is
 * not active is flushed but still pinned by a reader's view.  Only the
 * readers can end that, so writers give up after a while instead of
 * waiting forever.
 */
static bool
slots_held_by_readers(nokv_db *db)
{
	bool		held = true;

	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < db->hdr->opts.max_memtables; i++)
	{
		int			st = db->hdr->slots[i].state;

		if (st == NOKV_MT_FREE || st == NOKV_MT_IMMUTABLE || st == NOKV_MT_FLUSHING ||
			(st == NOKV_MT_RETIRED && atomic_load(&db->hdr->slots[i].pins) == 0))
			held = false;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
	return held;
}

#define READER_STALL_ROUNDS 100	/* x 100 ms */

/* MEMTABLES held exclusively: find a slot that can become active */
static int
find_free_slot(nokv_db *db)
{
	nokv_region_hdr *hdr = db->hdr;

	for (int i = 0; i < hdr->opts.max_memtables; i++)
	{
		nokv_mt_slot *s = &hdr->slots[i];

		if (s->state == NOKV_MT_RETIRED && atomic_load(&s->pins) == 0)
		{
			/* idle iterators notice the new generation and re-read */
			s->gen++;
			nokv_memtable_reset(&db->ctx, s->mt);
			s->state = NOKV_MT_FREE;
		}
		if (s->state == NOKV_MT_FREE)
			return i;
	}
	return -1;
}

static void
slot_activate(nokv_db *db, int i, uint64_t wal_segment)
{
	nokv_mt_slot *s = &db->hdr->slots[i];

	s->state = NOKV_MT_ACTIVE;
	s->seq = __atomic_add_fetch(&db->hdr->next_slot_seq, 1, __ATOMIC_RELAXED);
	s->wal_segment = wal_segment;
	atomic_store(&s->reserved, 0);
	s->min_version = 0;
	s->max_version = 0;
	s->ext_mask = 0;
	memset(s->ext_position, 0, sizeof(s->ext_position));
	db->hdr->active_slot = i;
}

/*
 * WRITE held.  Make the active memtable immutable and activate a fresh one
 * (with a fresh WAL segment).  Returns NOKV_BUSY when no slot is free:
 * the caller stalls until a flush retires one.
 */
static int
rotate_locked(nokv_db *db, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_mt_slot *old = active_slot(db);
	int			i;
	uint64_t	segment = 0;

	if (old->state == NOKV_MT_ACTIVE && atomic_load(&old->reserved) == 0 &&
		nokv_memtable_entries(&db->ctx, old->mt) == 0 &&
		nokv_memtable_tombstones(&db->ctx, old->mt) == 0)
		return NOKV_OK;			/* nothing to rotate */
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
	i = find_free_slot(db);
	if (i < 0)
	{
		nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		return NOKV_BUSY;
	}
	if (db->wal)
	{
		int			rc;

		segment = nokv_new_file_number(db);
		rc = nokv_wal_switch_segment(db->wal, segment, err);
		if (rc != NOKV_OK)
		{
			nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
			return rc;
		}
	}
	if (old->state == NOKV_MT_ACTIVE)
		old->state = NOKV_MT_IMMUTABLE;
	slot_activate(db, i, segment);
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
	(void) hdr;
	nokv_cond_broadcast(&db->platform, NOKV_COND_BGWORK);
	return NOKV_OK;
}

int
nokv_rotate_memtable(nokv_db *db, nokv_error *err)
{
	int			rc;
	int			held_rounds = 0;

	for (;;)
	{
		nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
		rc = rotate_locked(db, err);
		if (rc == NOKV_BUSY)
		{
			nokv_cond_wait(&db->platform, NOKV_COND_STALL, NOKV_LOCK_WRITE, 100);
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			if (atomic_load(&db->hdr->bg_error))
				return nokv_error_set(err, NOKV_IO_ERROR, "%s", db->hdr->bg_error_msg);
			if (slots_held_by_readers(db) && ++held_rounds > READER_STALL_ROUNDS)
				return nokv_error_set(err, NOKV_BUSY,
									  "every memtable is pinned by an open iterator that does not move; "
									  "move or free the iterator");
			if (!db->threads)
			{
				/* nobody else flushes: make room ourselves */
				rc = nokv_flush_one(db, err);
				if (rc < 0)
					return -rc;
			}
			continue;
		}
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
		return rc;
	}
}

/* ---------- write path ---------- */

static size_t
batch_cost(const nokv_batch *b)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	size_t		cost = 0;

	while (nokv_batch_next(&p, end, &e) == 1)
	{
		if (e.op == NOKV_KIND_RANGE_DELETE)
			cost += nokv_memtable_tombstone_cost(1 + e.klen, 1 + e.vlen);
		else
			cost += nokv_memtable_entry_cost(nokv_ikey_size(e.klen),
											 e.op == NOKV_KIND_PUT
											 ? e.vlen + nokv_value_header_size(e.expires_at_ms) : 0);
	}
	return cost;
}

typedef struct dup_key
{
	int			cf;
	bool		range;
	const char *key;
	size_t		klen;
} dup_key;

static int
dup_key_cmp(const void *a, const void *b)
{
	const dup_key *x = a,
			   *y = b;

	return nokv_batch_key_order(x->range, x->cf, x->key, x->klen, y->range, y->cf, y->key, y->klen);
}

/*
 * Does a point key (or a range start) appear twice in the batch?  Only asked
 * of batches not built in ascending order (b->unsorted): one in that order
 * has every key once.
 */
static bool
batch_has_duplicates(const nokv_batch *b)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	dup_key    *keys = nokv_malloc(b->count * sizeof(dup_key));
	uint32_t	n = 0;
	bool		dup = false;

	while (n < b->count && nokv_batch_next(&p, end, &e) == 1)
		keys[n++] = (dup_key) {
		.cf = e.cf, .range = e.op == NOKV_KIND_RANGE_DELETE, .key = e.key, .klen = e.klen,
	};
	qsort(keys, n, sizeof(dup_key), dup_key_cmp);
	for (uint32_t i = 1; i < n && !dup; i++)
		dup = dup_key_cmp(&keys[i - 1], &keys[i]) == 0;
	free(keys);
	return dup;
}

/*
 * The optional per-key write limit (hot_write_limit writes per window).
 * Only for writes the engine originates: a replicated write (external-log
 * mode) must apply exactly as its leader did, so it is never limited.
 */
static int
check_hot_write_limit(nokv_db *db, const nokv_batch *b, nokv_error *err)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	uint64_t	now = nokv_now_ms(db);

	while (nokv_batch_next(&p, end, &e) == 1)
		if (e.op != NOKV_KIND_RANGE_DELETE &&
			nokv_hotring_write_limited(&db->ctx, db->hdr->hotring, e.cf, e.key, e.klen, now,
									   (uint32_t) db->hdr->opts.hot_write_limit))
			return nokv_error_set(err, NOKV_BUSY,
								  "key of %zu bytes exceeded the write limit of %d writes per %d ms",
								  e.klen, db->hdr->opts.hot_write_limit, db->hdr->opts.hot_window_ms);
	return NOKV_OK;
}

static void
touch_written_keys(nokv_db *db, const nokv_batch *b)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	uint64_t	now = nokv_now_ms(db);

	while (nokv_batch_next(&p, end, &e) == 1)
		if (e.op != NOKV_KIND_RANGE_DELETE)
			nokv_hotring_touch(&db->ctx, db->hdr->hotring, NOKV_HOT_WRITE, e.cf, e.key, e.klen, now, 1);
}

int
nokv_hot_keys(nokv_db *db, bool writes, nokv_hot_key *out, int n)
{
	nokv_hotkey *hk;
	int			got;

	if (!db->hdr->hotring || n <= 0)
		return 0;
	hk = nokv_malloc(sizeof(nokv_hotkey) * (size_t) n);
	got = nokv_hotring_topn(&db->ctx, db->hdr->hotring, writes ? NOKV_HOT_WRITE : NOKV_HOT_READ,
							nokv_now_ms(db), hk, n);
	for (int i = 0; i < got; i++)
	{
		out[i].cf = hk[i].cf;
		out[i].key_len = hk[i].key_len < NOKV_HOT_KEY_BYTES ? hk[i].key_len : NOKV_HOT_KEY_BYTES;
		memcpy(out[i].key, hk[i].key, out[i].key_len);
		out[i].truncated = hk[i].truncated;
		out[i].count = hk[i].count;
	}
	free(hk);
	return got;
}

static void
report_wait(nokv_db *db, int event)
{
	if (db->platform.report_wait)
		db->platform.report_wait(db->platform.arg, event);
}

/* apply_batch for any batch: entry by entry; sets *rc as apply_runs */
static void
apply_entries(nokv_db *db, nokv_off mt, const nokv_batch *b, uint64_t version, bool one_version,
			  nokv_mt_hint *hint, uint64_t *written, int *rc)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_batch_entry e;
	char		stack[STACK_KEY_BUF];

	while (p < end)
	{
		nokv_batch_next_valid(&p, &e);

		if (e.op == NOKV_KIND_RANGE_DELETE)
		{
			nokv_range_tombstone t = {
				.cf = e.cf, .start = e.key, .start_len = e.klen,
				.end = e.val, .end_len = e.vlen, .version = version,
			};

			*rc = nokv_memtable_add_range_tombstone(&db->ctx, mt, &t);
		}
		else
		{
			size_t		klen = nokv_ikey_size(e.klen);
			char		vhdr[1 + NOKV_MAX_VARINT64];
			size_t		hlen = 0;
			char	   *buf = klen <= sizeof(stack) ? stack : nokv_malloc(klen);

			nokv_ikey_encode(buf, e.cf, e.key, e.klen, version, e.op);
			if (e.op == NOKV_KIND_PUT)
			{
				hlen = nokv_value_header_size(e.expires_at_ms);
				nokv_value_header_encode(vhdr, 0, e.expires_at_ms);
			}
			*rc = nokv_memtable_add_hinted(&db->ctx, mt, buf, klen, vhdr, hlen,
										   e.op == NOKV_KIND_PUT ? e.val : NULL,
										   e.op == NOKV_KIND_PUT ? e.vlen : 0, hint);
			if (buf != stack)
				free(buf);
		}
		if (*rc != NOKV_OK)
			break;
		written[e.cf]++;
		if (!one_version)
			version++;
	}
}

/*
 * The smallest batch inserted as runs.  A run pays off when its entries are
 * neighbours (a COPY batch of a table's rows); a small batch is often spread
 * out (an update's marker on the old row and its new row at the table's
 * end), where a run would only fall back to linking node by node.
 */
#define RUN_MIN_ENTRIES 8

/*
 * apply_batch for an ascending batch without range deletes: decode up to
 * NOKV_MT_RUN_MAX entries at a time and insert them as one run.  *rc is
 * the first insert failure.
 */
static void
apply_runs(nokv_db *db, nokv_off mt, const nokv_batch *b, uint64_t version, bool one_version,
		   nokv_mt_hint *hint, uint64_t *written, int *rc)
{
	const char *p = b->rep.data;
	const char *end = p + b->rep.len;
	nokv_mt_entry run[NOKV_MT_RUN_MAX];
	char		vhdr[NOKV_MT_RUN_MAX][1 + NOKV_MAX_VARINT64];
	nokv_batch_entry e;
	int			n = 0;

	while (p < end)
	{
		nokv_mt_entry *x = &run[n];

		nokv_batch_next_valid(&p, &e);

		assert(e.op != NOKV_KIND_RANGE_DELETE);
		*x = (nokv_mt_entry) {
			.cf = e.cf, .kind = e.op, .ukey = e.key, .ukey_len = e.klen, .version = version,
		};
		if (e.op == NOKV_KIND_PUT)
		{
			x->v1 = vhdr[n];
			x->l1 = nokv_value_header_size(e.expires_at_ms);
			nokv_value_header_encode(vhdr[n], 0, e.expires_at_ms);
			x->v2 = e.val;
			x->l2 = e.vlen;
		}
		written[e.cf]++;
		if (!one_version)
			version++;
		if (++n == NOKV_MT_RUN_MAX)
		{
			*rc = nokv_memtable_add_run(&db->ctx, mt, run, n, hint);
			n = 0;
			if (*rc != NOKV_OK)
				return;
		}
	}
	if (n > 0)
		*rc = nokv_memtable_add_run(&db->ctx, mt, run, n, hint);
}

/*
 * Insert every entry of the batch: with versions first, first+1, ... in
 * own-log mode, or all at version first in external-log mode (one log record
 * is one version there).  A batch known to be in ascending key order
 * without range deletes (ascending) goes in as runs of up to
 * NOKV_MT_RUN_MAX entries, each linked into the memtable as one piece.
 */
static int
apply_batch(nokv_db *db, nokv_mt_slot *slot, const nokv_batch *b, uint64_t first, bool one_version,
			bool ascending, nokv_error *err)
{
	nokv_off	mt = slot->mt;
	nokv_mt_hint local_hint = {0};
	nokv_mt_hint *hint = &local_hint;
	bool		expected = false;
	bool		own_hint;
	uint64_t	written[NOKV_CF_COUNT] = {0};
	int			rc = NOKV_OK;

	/*
	 * Batches, and one handle's successive batches, are often in key
	 * order: keep the splice of the last insert while the memtable is the
	 * same (a reset bumps the slot's generation; the slot cannot be reset
	 * while we write to it).
	 */
	own_hint = atomic_compare_exchange_strong(&db->write_hint_busy, &expected, true);
	if (own_hint)
	{
		hint = &db->write_hint;
		if (db->write_hint_slot != (int) (slot - db->hdr->slots) || db->write_hint_gen != slot->gen)
		{
			memset(hint, 0, sizeof(*hint));
			db->write_hint_slot = (int) (slot - db->hdr->slots);
			db->write_hint_gen = slot->gen;
		}
	}

	if (ascending && b->count >= RUN_MIN_ENTRIES)
		apply_runs(db, mt, b, first, one_version, hint, written, &rc);
	else
		apply_entries(db, mt, b, first, one_version, hint, written, &rc);
	nokv_memtable_hint_publish(&db->ctx, hint);
	if (own_hint)
		atomic_store(&db->write_hint_busy, false);
	if (rc != NOKV_OK)
		return nokv_error_set(err, rc, "memtable insert failed (reserved space exhausted)");
	/* one shared-counter update per column family, not per entry */
	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
		if (written[cf] > 0)
			atomic_fetch_add_explicit(&db->hdr->stats.hot[db->stripe].cf_writes[cf], written[cf],
									  memory_order_relaxed);
	return NOKV_OK;
}

uint64_t
nokv_now_ms(nokv_db *db)
{
	struct timespec ts;

	if (db->clock_ms)
		return db->clock_ms(db->clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int
nokv_write(nokv_db *db, const nokv_write_options *wo, const nokv_batch *b, nokv_error *err)
{
	return nokv_write_ex(db, wo, b, NULL, NULL, NULL, err);
}

/*
 * The write path's locked part, WRITE held exclusively: pick the active
 * memtable (switching it, or stalling, when it is full), take the batch's
 * versions, log it and reserve its worst-case cost in the memtable.  On
 * success the slot's reservation and writer count are taken for the caller.
 */
static int
write_begin_exclusive(nokv_db *db, const nokv_write_options *wo, const nokv_batch *b,
					  size_t cost, nokv_precommit_fn precommit, void *precommit_arg,
					  nokv_mt_slot **slotp, uint64_t *firstp, uint64_t *end_lsnp,
					  nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	bool		external = hdr->opts.external_log;
	nokv_mt_slot *slot;
	uint64_t	first;
	uint64_t	last;
	uint64_t	position;
	int			idle_rounds = 0;
	int			held_rounds = 0;
	int			rc;

	nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
	for (;;)
	{
		bool		stall = false;

		slot = active_slot(db);
		if (atomic_load(&hdr->l0_files) >= hdr->opts.l0_stop_trigger)
			stall = true;
		else if (!slot_has_room(db, slot, cost))
		{
			rc = rotate_locked(db, err);
			if (rc == NOKV_BUSY)
				stall = true;
			else if (rc != NOKV_OK)
			{
				nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
				return rc;
			}
			else
				continue;
		}
		if (!stall)
			break;

		/* flush or compaction has fallen behind: wait for it, not spin */
		atomic_fetch_add(&hdr->stats.stall_count, 1);
		atomic_store(&hdr->stats.write_stalled, 1);
		nokv_cond_broadcast(&db->platform, NOKV_COND_BGWORK);
		report_wait(db, NOKV_WAIT_WRITE_STALL);
		if ((!db->threads && db->owns_region) || db->inline_background)
		{
			/* standalone without threads, or asked to: nobody else will make room */
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			rc = nokv_flush_one(db, err);
			/* inline work keeps level 0 small too: nobody else compacts */
			if (rc >= 0 && (atomic_load(&hdr->l0_files) >= hdr->opts.l0_stop_trigger ||
							(db->inline_background &&
							 atomic_load(&hdr->l0_files) >= hdr->opts.l0_compaction_trigger)))
			{
				int			c = nokv_compact_step(db, err);

				rc = c < 0 ? c : rc + c;
			}
			report_wait(db, 0);
			if (rc < 0)
				return -rc;
			if (rc == 0 && ++idle_rounds > 50)
				return nokv_error_set(err, NOKV_BUSY,
									  "write stalled: every memtable is awaiting flush or pinned by an open iterator");
			if (rc == 0)
				usleep(1000);
			nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
		}
		else
		{
			nokv_cond_wait(&db->platform, NOKV_COND_STALL, NOKV_LOCK_WRITE, 100);
			if (++held_rounds > READER_STALL_ROUNDS)
			{
				nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
				if (slots_held_by_readers(db))
				{
					report_wait(db, 0);
					atomic_store(&hdr->stats.write_stalled, 0);
					return nokv_error_set(err, NOKV_BUSY,
										  "write stalled: every memtable is pinned by an open iterator "
										  "that does not move; move or free the iterator");
				}
				held_rounds = 0;
				nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
			}
		}
		report_wait(db, 0);
		if (atomic_load(&hdr->bg_error) || atomic_load(&hdr->shutting_down))
		{
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			atomic_store(&hdr->stats.write_stalled, 0);
			if (atomic_load(&hdr->shutting_down))
				return nokv_error_set(err, NOKV_SHUTDOWN, "engine is shutting down");
			return nokv_error_set(err, NOKV_IO_ERROR, "writes refused after a background error: %s",
								  hdr->bg_error_msg);
		}
	}
	/* a store only when set: every writer reads the line */
	if (atomic_load_explicit(&hdr->stats.write_stalled, memory_order_relaxed))
		atomic_store(&hdr->stats.write_stalled, 0);
	if (wo && wo->memtable_epoch != 0 && slot->seq != wo->memtable_epoch)
	{
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
		return nokv_error_set(err, NOKV_EPOCH_CHANGED,
							  "the memtable was replaced since the batch's keys were chosen");
	}

	first = external ? wo->version : hdr->next_version;
	position = external ? wo->log_position : 0;
	if (external && wo->log_append)
	{
		rc = wo->log_append(wo->log_append_arg, b, &position, &first, err);
		if (rc == NOKV_OK && (first == 0 || first == NOKV_VERSION_MAX || first < hdr->next_version))
			rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
								"the log assigned version %llu, not above the last version %llu",
								(unsigned long long) first,
								(unsigned long long) (hdr->next_version - 1));
		if (rc != NOKV_OK)
		{
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			return rc;
		}
	}
	if (precommit)
	{
		rc = precommit(precommit_arg, db, b, first, err);
		if (rc != NOKV_OK)
		{
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			return rc;
		}
	}
	else if (!external)
	{
		/* a plain write conflicts with transactions that read its keys */
		nokv_txn_record_batch(db, b, first);
	}

	if (external)
	{
		if (first + 1 > hdr->next_version)
			hdr->next_version = first + 1;
		if (!(slot->ext_mask & (1ull << wo->log_id)) ||
			position > slot->ext_position[wo->log_id])
			slot->ext_position[wo->log_id] = position;
		slot->ext_mask |= 1ull << wo->log_id;
	}
	else
	{
		char		stack[2048];
		size_t		plen = NOKV_WAL_BATCH_HEADER + b->rep.len;
		char	   *payload = plen <= sizeof(stack) ? stack : nokv_malloc(plen);

		nokv_put_le64(payload, first);
		nokv_put_le32(payload + 8, b->count);
		memcpy(payload + NOKV_WAL_BATCH_HEADER, b->rep.data, b->rep.len);
		rc = nokv_wal_append(db->wal, payload, plen, end_lsnp, err);
		if (payload != stack)
			free(payload);
		if (rc != NOKV_OK)
		{
			nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
			return rc;
		}
		hdr->next_version += b->count;
	}
	last = external ? first : first + b->count - 1;
	if (slot->min_version == 0 || first < slot->min_version)
		slot->min_version = first;
	if (last > slot->max_version)
		slot->max_version = last;
	atomic_fetch_add(&slot->reserved, cost);
	atomic_fetch_add(&slot->writers, 1);
	nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
	*slotp = slot;
	*firstp = first;
	return NOKV_OK;
}

/* *p = max(*p, v), for fields writers update holding WRITE shared */
static inline void
u64_store_max(uint64_t *p, uint64_t v)
{
	uint64_t	cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* *p = min(*p, v), where 0 means unset */
static inline void
u64_store_min_set(uint64_t *p, uint64_t v)
{
	uint64_t	cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while ((cur == 0 || v < cur) &&
		   !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * The shared write path, for a host log that takes concurrent appends
 * (nokv_write_options.log_append_concurrent; PostgreSQL's WAL does) and a
 * write without a pre-commit hook: WRITE is held shared, so writers append
 * to the log at once instead of queueing behind each other's append.  A
 * memtable switch takes WRITE exclusively, so every append into the old
 * memtable has finished, and recorded its position there, before any
 * append into the new one begins: a memtable's log positions all lie below
 * the next one's, which is what a flush's covered position relies on.  The
 * slot's version range and log position are kept with atomic max and min.
 *
 * Returns with *slotp NULL, having logged nothing, when the write needs the
 * exclusive path: the memtable is full, level 0 is at its stop, or writers
 * are stalled.
 */
static int
write_begin_shared(nokv_db *db, const nokv_write_options *wo, const nokv_batch *b, size_t cost,
				   nokv_mt_slot **slotp, uint64_t *firstp, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_mt_slot *slot;
	uint64_t	floor;
	uint64_t	first = 0;
	uint64_t	position = 0;
	uint64_t	reserved;
	int			rc;

	*slotp = NULL;
	nokv_lock(&db->platform, NOKV_LOCK_WRITE, false);
	slot = active_slot(db);
	if (atomic_load(&hdr->l0_files) >= hdr->opts.l0_stop_trigger ||
		atomic_load_explicit(&hdr->stats.write_stalled, memory_order_relaxed))
	{
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
		return NOKV_OK;
	}
	/*
	 * Reserve, then check: writers holding WRITE shared race for the room.
	 * A host error that does not return from the append (PostgreSQL's
	 * ereport) leaves the reservation in place until the slot is reused,
	 * which only switches this memtable a little early; the writer count is
	 * taken after the append, so no flush waits for it.
	 */
	reserved = atomic_fetch_add(&slot->reserved, cost) + cost;
	if (nokv_memtable_arena_used(&db->ctx, slot->mt) + reserved > slot_arena_size(db))
	{
		atomic_fetch_sub(&slot->reserved, cost);
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
		return NOKV_OK;
	}
	if (wo->memtable_epoch != 0 && slot->seq != wo->memtable_epoch)
	{
		rc = nokv_error_set(err, NOKV_EPOCH_CHANGED,
							"the memtable was replaced since the batch's keys were chosen");
		goto refuse;
	}

	/* an append that began after another finished gets a higher version */
	floor = __atomic_load_n(&hdr->next_version, __ATOMIC_RELAXED);
	rc = wo->log_append(wo->log_append_arg, b, &position, &first, err);
	if (rc == NOKV_OK && (first == 0 || first == NOKV_VERSION_MAX || first < floor))
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							"the log assigned version %llu, not above the last version %llu",
							(unsigned long long) first, (unsigned long long) (floor - 1));
	if (rc != NOKV_OK)
		goto refuse;

	u64_store_max(&hdr->next_version, first + 1);
	u64_store_max(&slot->ext_position[wo->log_id], position);
	__atomic_fetch_or(&slot->ext_mask, 1ull << wo->log_id, __ATOMIC_RELAXED);
	u64_store_min_set(&slot->min_version, first);
	u64_store_max(&slot->max_version, first);
	atomic_fetch_add(&slot->writers, 1);
	nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
	*slotp = slot;
	*firstp = first;
	return NOKV_OK;

refuse:
	atomic_fetch_sub(&slot->reserved, cost);
	nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
	return rc;
}

int
nokv_write_ex(nokv_db *db, const nokv_write_options *wo, const nokv_batch *b,
			  nokv_precommit_fn precommit, void *precommit_arg, uint64_t *first_version,
			  nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_mt_slot *slot;
	nokv_hot_counters *hot;
	size_t		cost;
	uint64_t	first;
	uint64_t	last;
	uint64_t	end_lsn = 0;
	bool		external = hdr->opts.external_log;
	int			rc;

	nokv_error_clear(err);
	if (b->count == 0)
		return NOKV_OK;
	if (atomic_load(&hdr->bg_error))
		return nokv_error_set(err, NOKV_IO_ERROR, "writes refused after a background error: %s",
							  hdr->bg_error_msg);
	if (atomic_load(&hdr->shutting_down))
		return nokv_error_set(err, NOKV_SHUTDOWN, "engine is shutting down");
	if (external && (!wo || (wo->version == 0 && !wo->log_append) ||
					 wo->log_id >= NOKV_MAX_EXTERNAL_LOGS))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "external-log mode needs a version and a log id below %d",
							  NOKV_MAX_EXTERNAL_LOGS);
	if (external && !wo->log_append && wo->version == NOKV_VERSION_MAX)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "version %llu is reserved",
							  (unsigned long long) wo->version);
	if (external && b->unsorted && batch_has_duplicates(b))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "a key appears twice in one external-log batch; all entries share one version");
	if (!external && hdr->hotring && hdr->opts.hot_write_limit > 0)
	{
		rc = check_hot_write_limit(db, b, err);
		if (rc != NOKV_OK)
			return rc;
	}
	cost = b->mem_cost;
	if (cost > slot_arena_size(db) / 2)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "write batch of %zu bytes is too large for memtable_size %llu",
							  (size_t) b->rep.len, (unsigned long long) slot_arena_size(db));

	/* slow down before the hard stop, so writers degrade gradually */
	if (atomic_load(&hdr->l0_files) >= hdr->opts.l0_slowdown_trigger && !db->inline_background)
	{
		struct timespec ts = {0, 1000000};

		atomic_fetch_add(&hdr->stats.slowdown_count, 1);
		atomic_store(&hdr->stats.write_slowed, 1);
		report_wait(db, NOKV_WAIT_WRITE_SLOWDOWN);
		nanosleep(&ts, NULL);
		report_wait(db, 0);
	}
	else if (atomic_load(&hdr->stats.write_slowed))
		atomic_store(&hdr->stats.write_slowed, 0);

	slot = NULL;
	if (external && wo->log_append && wo->log_append_concurrent && !precommit)
	{
		rc = write_begin_shared(db, wo, b, cost, &slot, &first, err);
		if (rc != NOKV_OK)
			return rc;
	}
	if (slot == NULL)
	{
		rc = write_begin_exclusive(db, wo, b, cost, precommit, precommit_arg, &slot, &first,
								   &end_lsn, err);
		if (rc != NOKV_OK)
			return rc;
	}
	if (first_version)
		*first_version = first;
	last = external ? first : first + b->count - 1;

	rc = apply_batch(db, slot, b, first, external, !b->unsorted && !b->has_range, err);
	atomic_fetch_sub(&slot->reserved, cost);
	atomic_fetch_sub(&slot->writers, 1);
	if (rc != NOKV_OK)
	{
		nokv_set_bg_error(db, err);
		return rc;
	}

	/* publish in version order so readers see whole batches, in order */
	if (external)
	{
		uint64_t	cur = atomic_load(&hdr->last_version);

		while (cur < last && !atomic_compare_exchange_weak(&hdr->last_version, &cur, last))
			;
	}
	else
	{
		nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
		if (atomic_load(&hdr->last_version) != first - 1)
		{
			report_wait(db, NOKV_WAIT_PUBLISH);
			while (atomic_load(&hdr->last_version) != first - 1)
				nokv_cond_wait(&db->platform, NOKV_COND_PUBLISH, NOKV_LOCK_WRITE, 100);
			report_wait(db, 0);
		}
		atomic_store(&hdr->last_version, last);
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
		nokv_cond_broadcast(&db->platform, NOKV_COND_PUBLISH);
	}

	hot = &hdr->stats.hot[db->stripe];
	atomic_fetch_add_explicit(&hot->writes, b->count, memory_order_relaxed);
	atomic_fetch_add_explicit(&hot->batches, 1, memory_order_relaxed);
	if (hdr->hotring && !(wo && wo->untracked))
		touch_written_keys(db, b);
	atomic_fetch_add_explicit(&hot->user_bytes_written, b->user_bytes, memory_order_relaxed);

	if (!external && ((wo && wo->sync) || hdr->opts.sync_mode == NOKV_SYNC_BATCH))
		return nokv_wal_sync(db->wal, end_lsn, err);
	return NOKV_OK;
}

int
nokv_put(nokv_db *db, int cf, const void *key, size_t klen, const void *val, size_t vlen,
		 nokv_error *err)
{
	nokv_batch	b = {0};
	nokv_write_options wo = {0};
	int			rc = nokv_batch_put(&b, cf, key, klen, val, vlen);

	if (rc != NOKV_OK)
		rc = nokv_error_set(err, rc, "invalid put: column family, key or value size out of range");
	else
		rc = nokv_write(db, &wo, &b, err);
	nokv_buf_free(&b.rep);
	return rc;
}

int
nokv_put_ttl(nokv_db *db, int cf, const void *key, size_t klen, const void *val, size_t vlen,
			 uint64_t expires_at_ms, nokv_error *err)
{
	nokv_batch	b = {0};
	nokv_write_options wo = {0};
	int			rc = nokv_batch_put_ttl(&b, cf, key, klen, val, vlen, expires_at_ms);

	if (rc != NOKV_OK)
		rc = nokv_error_set(err, rc, "invalid put: column family, key or value size out of range");
	else
		rc = nokv_write(db, &wo, &b, err);
	nokv_buf_free(&b.rep);
	return rc;
}

int
nokv_delete(nokv_db *db, int cf, const void *key, size_t klen, nokv_error *err)
{
	nokv_batch	b = {0};
	nokv_write_options wo = {0};
	int			rc = nokv_batch_delete(&b, cf, key, klen);

	if (rc != NOKV_OK)
		rc = nokv_error_set(err, rc, "invalid delete: column family or key size out of range");
	else
		rc = nokv_write(db, &wo, &b, err);
	nokv_buf_free(&b.rep);
	return rc;
}

int
nokv_sync_wal(nokv_db *db, nokv_error *err)
{
	if (!db->wal)
		return NOKV_OK;
	/* an LSN past the end means "everything appended so far" */
	return nokv_wal_sync(db->wal, UINT64_MAX, err);
}

uint64_t
nokv_external_log_flushed(nokv_db *db, uint32_t log_id)
{
	uint64_t	pos;

	if (log_id >= NOKV_MAX_EXTERNAL_LOGS)
		return 0;
	nokv_lock(&db->platform, NOKV_LOCK_MANIFEST, false);
	pos = db->hdr->ext_flushed[log_id];
	nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
	return pos;
}

void
nokv_set_inline_background(nokv_db *db, bool on)
{
	db->inline_background = on;
}

void
nokv_begin_shutdown(nokv_db *db)
{
	atomic_store(&db->hdr->shutting_down, 1);
	nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
	nokv_cond_broadcast(&db->platform, NOKV_COND_BGWORK);
}

uint64_t
nokv_last_version(nokv_db *db)
{
	return atomic_load(&db->hdr->last_version);
}

uint64_t
nokv_memtable_epoch(nokv_db *db)
{
	/* written under WRITE and MEMTABLES by slot_activate; a relaxed read will do */
	return __atomic_load_n(&db->hdr->next_slot_seq, __ATOMIC_RELAXED);
}

/* ---------- flush ---------- */

/*
 * The value record to store in the SST for a memtable entry: large payloads
 * move to the value log now (flush-time separation: the WAL, or the
 * caller's log, already holds the whole value, so a commit never waits for
 * the value log), small ones stay inline.
 */
static int
separate_value(nokv_db *db, const char *k, size_t klen, const char *v, size_t vlen,
			   nokv_buf *rec, bool *moved, nokv_error *err)
{
	nokv_value_view vv;
	nokv_vptr	p;
	int			rc;

	*moved = false;
	if (db->hdr->opts.vlog_threshold == 0 || vlen < db->hdr->opts.vlog_threshold ||
		nokv_ikey_kind(k, klen) != NOKV_KIND_PUT || !nokv_value_decode(v, vlen, &vv) ||
		(vv.flags & NOKV_VF_VPTR) || vv.payload_len < db->hdr->opts.vlog_threshold)
		return NOKV_OK;
	rc = nokv_vlog_append(db->vlog, k, klen, vv.payload, vv.payload_len, &p, err);
	if (rc != NOKV_OK)
		return rc;
	nokv_buf_reset(rec);
	nokv_vptr_value_record(rec, vv.flags, vv.expires_at_ms, &p);
	*moved = true;
	return NOKV_OK;
}

static int
write_memtable_sst(nokv_db *db, nokv_off mt, uint64_t number, nokv_sst_props *props,
				   bool *empty, nokv_version_edit *edit, nokv_error *err)
{
	nokv_buf	rec = {0};
	bool		separated = false;
	nokv_sst_builder *b;
	nokv_iiter *it;
	nokv_range_tombstone *tombs = NULL;
	int			ntombs = 0;
	int			rc;

	*empty = false;
	rc = nokv_memtable_range_tombstones(&db->ctx, mt, &tombs, &ntombs);
	if (rc != NOKV_OK)
		return nokv_error_set(err, rc, "could not read memtable range tombstones");
	if (nokv_memtable_entries(&db->ctx, mt) == 0 && ntombs == 0)
	{
		free(tombs);
		*empty = true;
		return NOKV_OK;
	}
	b = nokv_sst_builder_new(db->hdr->dir, number, &db->hdr->opts.sst, err);
	if (!b)
	{
		free(tombs);
		return err ? err->code : NOKV_IO_ERROR;
	}
	it = nokv_memtable_iter_new(&db->ctx, mt);
	rc = NOKV_OK;
	for (nokv_iiter_seek_to_first(it); rc == NOKV_OK && nokv_iiter_valid(it); nokv_iiter_next(it))
	{
		size_t		klen,
					vlen;
		const char *k = nokv_iiter_key(it, &klen);
		const char *v = nokv_iiter_value(it, &vlen);
		bool		moved;

		rc = separate_value(db, k, klen, v, vlen, &rec, &moved, err);
		if (rc == NOKV_OK)
			rc = moved ? nokv_sst_builder_add(b, k, klen, rec.data, rec.len, err)
				: nokv_sst_builder_add(b, k, klen, v, vlen, err);
		separated |= moved;
	}
	nokv_iiter_destroy(it);
	nokv_buf_free(&rec);
	for (int i = 0; rc == NOKV_OK && i < ntombs; i++)
		rc = nokv_sst_builder_add_range_tombstone(b, &tombs[i], err);
	free(tombs);

	/* the values must be durable before the table that points at them */
	if (rc == NOKV_OK && separated)
		rc = nokv_vlog_sync(db->vlog, edit, NULL, err);
	if (rc != NOKV_OK)
	{
		nokv_sst_builder_abandon(b);
		return rc;
	}
	return nokv_sst_builder_finish(b, props, err);
}

static int flush_one(nokv_db *db, nokv_error *err);

/* a flush may append to the value log until its version is installed */
int
nokv_flush_one(nokv_db *db, nokv_error *err)
{
	int			rc;

	if (db->hdr->vlog == 0)
		return flush_one(db, err);
	nokv_vlog_appender_enter(&db->ctx, db->hdr->vlog);
	rc = flush_one(db, err);
	nokv_vlog_appender_leave(&db->ctx, db->hdr->vlog);
	return rc;
}

static int
flush_one(nokv_db *db, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_mt_slot *slot = NULL;
	int			si = -1;
	uint64_t	next_log = 0;
	uint64_t	ext_cap[NOKV_MAX_EXTERNAL_LOGS];
	uint64_t	number;
	nokv_sst_props props;
	nokv_version_edit edit;
	uint64_t	flushed_bytes = 0;
	uint64_t	segment;
	bool		empty;
	int			rc;
	int			expected = 0;

	if (!atomic_compare_exchange_strong(&hdr->flush_running, &expected, 1))
		return 0;

	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
	for (int i = 0; i < hdr->opts.max_memtables; i++)
		if (hdr->slots[i].state == NOKV_MT_IMMUTABLE &&
			(si < 0 || hdr->slots[i].seq < hdr->slots[si].seq))
			si = i;
	if (si < 0)
	{
		nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		atomic_store(&hdr->flush_running, 0);
		return 0;
	}
	slot = &hdr->slots[si];
	slot->state = NOKV_MT_FLUSHING;

	/*
	 * What becomes durable with this flush: own WAL segments older than the
	 * next unflushed memtable's, and external positions below the lowest
	 * position any other unflushed memtable still holds.
	 */
	for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
		ext_cap[l] = UINT64_MAX;
	for (int i = 0; i < hdr->opts.max_memtables; i++)
	{
		nokv_mt_slot *s = &hdr->slots[i];

		if (i == si || (s->state != NOKV_MT_ACTIVE && s->state != NOKV_MT_IMMUTABLE))
			continue;
		if (db->wal && (next_log == 0 || s->wal_segment < next_log))
			next_log = s->wal_segment;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);

	/* inserts that reserved space before the rotation may still be running */
	while (atomic_load(&slot->writers) > 0)
		sched_yield();

	/* the host's log must be durable before an SST outlives it */
	if (db->before_flush)
	{
		for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
		{
			if (!(slot->ext_mask & (1ull << l)))
				continue;
			rc = db->before_flush(db->before_flush_arg, (uint32_t) l, slot->ext_position[l], err);
			if (rc != NOKV_OK)
			{
				nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
				atomic_store(&slot->state, NOKV_MT_IMMUTABLE);
				nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
				atomic_store(&hdr->flush_running, 0);
				return -rc;
			}
		}
	}

	number = nokv_new_file_number(db);
	memset(&props, 0, sizeof(props));
	nokv_edit_init(&edit);
	rc = write_memtable_sst(db, slot->mt, number, &props, &empty, &edit, err);
	if (rc != NOKV_OK)
	{
		nokv_edit_free(&edit);
		goto fail;
	}

	if (!empty)
	{
		nokv_file_desc d = {
			.level = 0,
			.number = number,
			.size = props.file_size,
			.entries = props.entries,
			.deletions = props.deletions,
			.range_deletions = props.range_deletions,
			.min_version = props.min_version,
			.max_version = props.max_version,
			.smallest = props.smallest,
			.smallest_len = props.smallest_len,
			.largest = props.largest,
			.largest_len = props.largest_len,
		};

		nokv_edit_add_file(&edit, &d);
	}
	if (db->wal)
	{
		edit.has_log_number = true;
		edit.log_number = next_log ? next_log : slot->wal_segment + 1;
	}
	for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
		if (slot->ext_mask & (1ull << l))
		{
			uint64_t	pos = slot->ext_position[l];

			if (pos > ext_cap[l])
				pos = ext_cap[l];
			nokv_edit_set_ext_position(&edit, (uint32_t) l, pos);
		}
	rc = nokv_log_and_apply(db, &edit, err);
	nokv_edit_free(&edit);
	flushed_bytes = props.file_size;
	nokv_sst_props_free(&props);
	if (rc != NOKV_OK)
	{
		if (!empty)
		{
			char		path[NOKV_DIR_MAX + 32];

			snprintf(path, sizeof(path), NOKV_SST_FMT, hdr->dir, (unsigned long long) number);
			unlink(path);
		}
		goto fail;
	}

	/*
	 * The SST is installed: retire the memtable, then drop its WAL segment.
	 * Read the segment number first: once retired, the slot may be recycled
	 * at once by a rotation that gives it the new active segment.
	 */
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
	segment = slot->wal_segment;
	slot->state = NOKV_MT_RETIRED;
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);

	/*
	 * During WAL replay a memtable can fill in the middle of a segment that
	 * is still being read: leave every segment to the end of recovery,
	 * which deletes them once all of them are flushed.
	 */
	if (db->wal && segment && !db->recovering)
	{
		char		path[NOKV_DIR_MAX + 32];

		snprintf(path, sizeof(path), NOKV_WAL_FMT, hdr->dir, (unsigned long long) segment);
		unlink(path);
	}
	if (!empty)
	{
		atomic_fetch_add(&hdr->stats.flushes, 1);
		atomic_fetch_add(&hdr->stats.flush_bytes, flushed_bytes);
	}
	atomic_store(&hdr->flush_running, 0);
	nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
	nokv_cond_broadcast(&db->platform, NOKV_COND_BGWORK);
	return 1;

fail:
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
	slot->state = NOKV_MT_IMMUTABLE;
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
	atomic_store(&hdr->flush_running, 0);
	return -rc;
}

int
nokv_compact_step(nokv_db *db, nokv_error *err)
{
	int			rc = nokv_compaction_run_one(db, err);

	if (rc > 0)
		nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
	return rc;
}

int
nokv_vlog_gc(nokv_db *db, double ratio, nokv_error *err)
{
	uint64_t	segment;
	int			rc;
	int			expected = 0;

	if (ratio <= 0)
		ratio = db->hdr->opts.vlog_gc_discard_ratio;
	/* two collectors of one segment would both log its retirement */
	if (!atomic_compare_exchange_strong(&db->hdr->vlog_gc_running, &expected, 1))
		return 0;
	nokv_vlog_sweep(db);
	if (nokv_vlog_pick_gc(&db->ctx, db->hdr->vlog, ratio, &segment) != NOKV_OK)
	{
		atomic_store(&db->hdr->vlog_gc_running, 0);
		return 0;
	}
	rc = nokv_compaction_gc_segment(db, segment, err);
	if (rc > 0)
	{
		atomic_fetch_add(&db->hdr->stats.vlog_gc_runs, 1);
		nokv_vlog_sweep(db);
	}
	atomic_store(&db->hdr->vlog_gc_running, 0);
	return rc;
}

int
nokv_pending_work(nokv_db *db)
{
	int			work = 0;

	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < db->hdr->opts.max_memtables; i++)
		if (db->hdr->slots[i].state == NOKV_MT_IMMUTABLE)
			work |= NOKV_WORK_FLUSH;
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
	if (nokv_compaction_needed(db))
		work |= NOKV_WORK_COMPACT;
	return work;
}

/* wait until no memtable is immutable or being flushed */
static int
flush_all(nokv_db *db, nokv_error *err)
{
	int			rc = nokv_rotate_memtable(db, err);

	if (rc != NOKV_OK)
		return rc;
	for (;;)
	{
		bool		pending = false;

		rc = nokv_flush_one(db, err);
		if (rc < 0)
			return -rc;
		if (rc > 0)
			continue;
		nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
		for (int i = 0; i < db->hdr->opts.max_memtables; i++)
			if (db->hdr->slots[i].state == NOKV_MT_IMMUTABLE ||
				db->hdr->slots[i].state == NOKV_MT_FLUSHING)
				pending = true;
		nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		if (!pending)
			return NOKV_OK;
		if (atomic_load(&db->hdr->bg_error))
			return nokv_error_set(err, NOKV_IO_ERROR, "%s", db->hdr->bg_error_msg);
		usleep(1000);			/* another thread or process is flushing */
	}
}

int
nokv_compact_all(nokv_db *db, nokv_error *err)
{
	int			rc = flush_all(db, err);

	if (rc != NOKV_OK)
		return rc;
	for (;;)
	{
		rc = nokv_compaction_run_one(db, err);
		if (rc < 0)
			return -rc;
		if (rc > 0)
			continue;
		if (!nokv_compaction_needed(db))
		{
			int			running;

			nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, false);
			running = db->hdr->compactions_running;
			nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
			if (running == 0)
				return NOKV_OK;
		}
		if (atomic_load(&db->hdr->bg_error))
			return nokv_error_set(err, NOKV_IO_ERROR, "%s", db->hdr->bg_error_msg);
		usleep(1000);
	}
}

int
nokv_flush_all(nokv_db *db, nokv_error *err)
{
	return flush_all(db, err);
}

int
nokv_compact_range(nokv_db *db, int cf, const void *start, size_t slen,
				   const void *end, size_t elen, nokv_error *err)
{
	int			rc;

	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	rc = flush_all(db, err);
	if (rc != NOKV_OK)
		return rc;
	rc = nokv_compaction_run_range(db, cf, start, slen, end, elen, err);
	return rc < 0 ? -rc : NOKV_OK;
}

/* ---------- point reads ---------- */

int
nokv_resolve_value(nokv_db *db, int cf, const char *ukey, size_t ukey_len, uint64_t version,
				   nokv_value_view *vv, nokv_buf *out, nokv_error *err)
{
	nokv_vptr	p;
	char		stack[512];
	size_t		klen = nokv_ikey_size(ukey_len);
	char	   *ikey = klen <= sizeof(stack) ? stack : nokv_malloc(klen);
	int			rc;

	if (!nokv_vptr_decode(vv->payload, vv->payload_len, &p))
		rc = nokv_error_set(err, NOKV_CORRUPTION, "malformed value-log pointer for a key of %zu bytes",
							ukey_len);
	else
	{
		/* the record must hold exactly this entry's key: a stale pointer is caught */
		nokv_ikey_encode(ikey, cf, ukey, ukey_len, version, NOKV_KIND_PUT);
		rc = nokv_vlog_read(db->vlog, &p, ikey, klen, out, err);
	}
	if (ikey != stack)
		free(ikey);
	return rc;
}

static uint64_t
read_version_of(nokv_db *db, const nokv_read_options *ro)
{
	if (ro && ro->snapshot)
		return ro->snapshot->version;
	if (ro && ro->version)
		return ro->version;
	return atomic_load(&db->hdr->last_version);
}

/* does file f possibly hold lookup key lkey? */
static bool
file_covers(nokv_db *db, const nokv_file_meta *f, const char *lkey, size_t lkey_len)
{
	const char *s = nokv_file_smallest(db, f);
	const char *l = nokv_file_largest(db, f);

	return nokv_lkey_compare(lkey, lkey_len, s, f->smallest_len - NOKV_IKEY_TRAILER) >= 0 &&
		nokv_lkey_compare(lkey, lkey_len, l, f->largest_len - NOKV_IKEY_TRAILER) <= 0;
}

typedef struct get_state
{
	bool		found;
	int			kind;
	uint64_t	version;
	uint64_t	tomb;
	nokv_buf	value;
} get_state;

static int
get_from_file(nokv_db *db, const nokv_file_meta *f, int cf, const char *lkey, size_t lkey_len,
			  uint64_t read_version, get_state *gs, nokv_buf *scratch, nokv_error *err)
{
	nokv_sst_reader *r;
	int			kind;
	uint64_t	version;
	int			rc = nokv_table_get(db, f, &r, err);

	if (rc != NOKV_OK)
		return -rc;
	if (f->range_deletions)
	{
		uint64_t	t = 0;

		rc = nokv_sst_max_covering_tombstone(r, cf, lkey + 1, lkey_len - 1, read_version, &t, err);
		if (rc != NOKV_OK)
			return -rc;
		if (t > gs->tomb)
			gs->tomb = t;
	}
	nokv_buf_reset(scratch);
	rc = nokv_sst_get(r, lkey, lkey_len, read_version, &kind, &version, scratch, err);
	if (rc < 0)
		return rc;
	if (rc == 1 && (!gs->found || version > gs->version))
	{
		gs->found = true;
		gs->kind = kind;
		gs->version = version;
		nokv_buf_reset(&gs->value);
		nokv_buf_append(&gs->value, scratch->data, scratch->len);
	}
	return rc;
}

int
nokv_get(nokv_db *db, const nokv_read_options *ro, int cf, const void *key, size_t klen,
		 char **val, size_t *vlen, nokv_error *err)
{
	return nokv_get_ttl(db, ro, cf, key, klen, val, vlen, NULL, err);
}

/*
 * The newest point entry of lkey at or below read version rv across the
 * view's memtables and tables, and the newest range tombstone covering it
 * (gs->tomb).  Tables are consulted through their bloom filters.  Returns
 * 0 or a negative nokv_code.
 */
static int
lookup_newest(nokv_db *db, nokv_view *view, int cf, const char *key, size_t klen,
			  char *lkey, size_t lkey_len, uint64_t rv, get_state *gs,
			  nokv_buf *scratch, nokv_error *err)
{
	bool		external = db->hdr->opts.external_log;
	int			rc = 0;

	gs->found = false;
	gs->tomb = 0;
	for (int i = 0; i < view->nmem; i++)
	{
		nokv_off	mt = db->hdr->slots[view->mem_slot[i]].mt;
		uint64_t	t = nokv_memtable_max_covering_tombstone(&db->ctx, mt, cf, key, klen, rv);
		int			kind;
		uint64_t	version;
		const char *v;
		size_t		vl;

		if (t > gs->tomb)
			gs->tomb = t;
		if (nokv_memtable_get(&db->ctx, mt, lkey, lkey_len, rv, &kind, &version, &v, &vl) &&
			(!gs->found || version > gs->version))
		{
			gs->found = true;
			gs->kind = kind;
			gs->version = version;
			nokv_buf_reset(&gs->value);
			nokv_buf_append(&gs->value, v, vl);
			if (!external)
				break;			/* newer memtables hold newer versions */
		}
	}

	/* level 0: newest file first; tables may overlap */
	for (int i = view->version->nfiles[0] - 1; rc >= 0 && i >= 0 && (!gs->found || external); i--)
	{
		nokv_file_meta *f = nokv_version_file(db, view->version, 0, i);

		if (!file_covers(db, f, lkey, lkey_len))
			continue;
		rc = get_from_file(db, f, cf, lkey, lkey_len, rv, gs, scratch, err);
		if (rc == 1 && !external)
			break;
	}

	/*
	 * Deeper levels: at most one file per level can hold the key's visible
	 * version: the first whose largest internal key is at or after the seek
	 * key.  Comparing lookup keys alone is not enough: a file may end with
	 * a range-tombstone bound (k, MAX) while the next file starts with k.
	 * The lookup key buffer has room for the trailer.
	 */
	if (rc >= 0 && !gs->found)
	{
		nokv_put_be64(lkey + lkey_len, ~rv);
		lkey[lkey_len + 8] = NOKV_KIND_SEEK;
	}
	for (int level = 1; rc >= 0 && !gs->found && level < db->hdr->opts.num_levels; level++)
	{
		int			n = view->version->nfiles[level];
		int			lo = 0,
					hi = n;

		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;
			nokv_file_meta *f = nokv_version_file(db, view->version, level, mid);

			if (nokv_ikey_compare(nokv_file_largest(db, f), f->largest_len,
								  lkey, lkey_len + NOKV_IKEY_TRAILER) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n)
		{
			nokv_file_meta *f = nokv_version_file(db, view->version, level, lo);

			if (file_covers(db, f, lkey, lkey_len))
				rc = get_from_file(db, f, cf, lkey, lkey_len, rv, gs, scratch, err);
		}
	}
	return rc < 0 ? rc : 0;
}

/*
 * Point lookup.  With a visibility hook, the versions of the key are
 * offered to the hook newest first, as an iterator would (each one found
 * by its own bloom-filtered lookup below the last), until the hook takes
 * one or a deletion ends the key.
 */
int
nokv_get_ttl(nokv_db *db, const nokv_read_options *ro, int cf, const void *key, size_t klen,
			 char **val, size_t *vlen, uint64_t *expires_at_ms, nokv_error *err)
{
	nokv_view	view;
	get_state	gs = {0};
	nokv_buf	scratch = {0};
	nokv_buf	big = {0};
	char		stack[STACK_KEY_BUF];
	char	   *lkey;
	size_t		lkey_len = klen + 1;
	uint64_t	rv = read_version_of(db, ro);
	nokv_visible_fn visible = ro ? ro->visible : NULL;
	nokv_value_view vv;
	int			rc = NOKV_NOT_FOUND;

	*val = NULL;
	*vlen = 0;
	if (expires_at_ms)
		*expires_at_ms = 0;
	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	if (klen > NOKV_MAX_KEY_SIZE || (klen && !key))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "key of %zu bytes exceeds the maximum of %d",
							  klen, NOKV_MAX_KEY_SIZE);
	lkey = lkey_len + NOKV_IKEY_TRAILER <= sizeof(stack) ? stack
		: nokv_malloc(lkey_len + NOKV_IKEY_TRAILER);
	lkey[0] = (char) cf;
	if (klen)
		memcpy(lkey + 1, key, klen);
	atomic_fetch_add_explicit(&db->hdr->stats.hot[db->stripe].gets, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&db->hdr->stats.hot[db->stripe].cf_reads[cf], 1, memory_order_relaxed);

	nokv_view_acquire(db, &view);
	for (;;)
	{
		int			lr = lookup_newest(db, &view, cf, key, klen, lkey, lkey_len, rv, &gs,
									   &scratch, err);

		if (lr < 0)
		{
			rc = -lr;
			break;
		}
		if (!gs.found || gs.kind != NOKV_KIND_PUT || gs.tomb > gs.version)
			break;				/* absent or deleted */
		if (!nokv_value_decode(gs.value.data, gs.value.len, &vv))
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION, "malformed value record for a key of %zu bytes",
								klen);
			break;
		}
		/* without a hook, an expired value need not be fetched from the value log */
		if (!visible && vv.expires_at_ms && nokv_value_expired(&vv, nokv_now_ms(db)))
			break;
		if (vv.flags & NOKV_VF_VPTR)
		{
			nokv_buf_reset(&big);
			rc = nokv_resolve_value(db, cf, key, klen, gs.version, &vv, &big, err);
			if (rc != NOKV_OK)
				break;
			rc = NOKV_NOT_FOUND;
			vv.payload = big.data ? big.data : "";
			vv.payload_len = big.len;
		}
		if (visible &&
			!visible(ro->visible_arg, cf, key, klen, gs.version, vv.payload, vv.payload_len))
		{
			/* invisible to this reader: an older version may be visible */
			if (gs.version <= 1)
				break;
			rv = gs.version - 1;
			continue;
		}
		/* an expired put deletes the key for every reader that sees it */
		if (vv.expires_at_ms && nokv_value_expired(&vv, nokv_now_ms(db)))
			break;
		if (expires_at_ms)
			*expires_at_ms = vv.expires_at_ms;
		if (db->hdr->hotring && !(ro && ro->untracked))
			nokv_hotring_touch(&db->ctx, db->hdr->hotring, NOKV_HOT_READ, cf, key, klen,
							   nokv_now_ms(db), 1);
		if (vv.payload > gs.value.data && vv.payload < gs.value.data + gs.value.len)
		{
			/*
			 * The lookup's own copy is handed over: the payload moves to its
			 * front, and the header it leaves behind makes room for the NUL.
			 */
			memmove(gs.value.data, vv.payload, vv.payload_len);
			gs.value.data[vv.payload_len] = '\0';
			*val = gs.value.data;
			gs.value.data = NULL;
			gs.value.len = gs.value.cap = 0;
		}
		else
		{
			*val = nokv_malloc(vv.payload_len + 1);
			memcpy(*val, vv.payload, vv.payload_len);
			(*val)[vv.payload_len] = '\0';
		}
		*vlen = vv.payload_len;
		rc = NOKV_OK;
		break;
	}
	nokv_view_release(db, &view);
	if (lkey != stack)
		free(lkey);
	nokv_buf_free(&scratch);
	nokv_buf_free(&big);
	nokv_buf_free(&gs.value);
	return rc;
}

/* ---------- approximate sizes ---------- */

int
nokv_approximate_size(nokv_db *db, int cf, const void *start, size_t slen,
					  const void *end, size_t elen, uint64_t *bytes, nokv_error *err)
{
	nokv_view	view;
	nokv_buf	lo = {0};
	nokv_buf	hi = {0};
	int			rc = NOKV_OK;

	*bytes = 0;
	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	if (slen > NOKV_MAX_KEY_SIZE || elen > NOKV_MAX_KEY_SIZE)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "key too long");
	/* the first internal keys of start and end: (key, newest, SEEK) */
	nokv_buf_reserve(&lo, nokv_ikey_size(slen));
	nokv_ikey_encode(lo.data, cf, start, slen, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	lo.len = nokv_ikey_size(slen);
	nokv_buf_reserve(&hi, nokv_ikey_size(elen));
	nokv_ikey_encode(hi.data, cf, end, elen, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	hi.len = nokv_ikey_size(elen);

	nokv_view_acquire(db, &view);
	for (int level = 0; rc == NOKV_OK && level < db->hdr->opts.num_levels; level++)
		for (int i = 0; rc == NOKV_OK && i < view.version->nfiles[level]; i++)
		{
			nokv_file_meta *f = nokv_version_file(db, view.version, level, i);
			nokv_sst_reader *r;
			uint64_t	a,
						b;

			/* files entirely before start or at/after end hold nothing of it */
			if (nokv_ikey_compare(nokv_file_largest(db, f), f->largest_len, lo.data, lo.len) < 0 ||
				nokv_ikey_compare(nokv_file_smallest(db, f), f->smallest_len, hi.data, hi.len) >= 0)
				continue;
			if ((rc = nokv_table_get(db, f, &r, err)) != NOKV_OK ||
				(rc = nokv_sst_approximate_offset(r, lo.data, lo.len, &a, err)) != NOKV_OK ||
				(rc = nokv_sst_approximate_offset(r, hi.data, hi.len, &b, err)) != NOKV_OK)
				break;
			if (b > a)
				*bytes += b - a;
		}
	nokv_view_release(db, &view);
	nokv_buf_free(&lo);
	nokv_buf_free(&hi);
	return rc;
}

/* ---------- snapshots ---------- */

nokv_snapshot *
nokv_snapshot_acquire(nokv_db *db, nokv_error *err)
{
	_Atomic uint64_t *slots = nokv_ptr(&db->ctx, db->hdr->snapshots);
	nokv_snapshot *snap = NULL;

	nokv_lock(&db->platform, NOKV_LOCK_SNAPSHOTS, true);
	for (int i = 0; i < db->hdr->opts.max_snapshots; i++)
		if (atomic_load(&slots[i]) == 0)
		{
			snap = nokv_malloc(sizeof(*snap));
			snap->slot = i;
			snap->version = atomic_load(&db->hdr->last_version);
			atomic_store(&slots[i], snap->version + 1);
			break;
		}
	nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
	if (!snap)
		nokv_error_set(err, NOKV_NO_SPACE, "all %d snapshot slots are in use; raise max_snapshots",
					   db->hdr->opts.max_snapshots);
	return snap;
}

void
nokv_snapshot_release(nokv_db *db, nokv_snapshot *snap)
{
	_Atomic uint64_t *slots = nokv_ptr(&db->ctx, db->hdr->snapshots);

	if (!snap)
		return;
	nokv_lock(&db->platform, NOKV_LOCK_SNAPSHOTS, true);
	atomic_store(&slots[snap->slot], 0);
	nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
	free(snap);
}

uint64_t
nokv_snapshot_version(const nokv_snapshot *snap)
{
	return snap->version;
}

/* ---------- statistics ---------- */

void
nokv_get_stats(nokv_db *db, nokv_stats *st)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_shared_stats *s = &hdr->stats;
	nokv_version *v;
	uint64_t	targets[NOKV_MAX_LEVELS] = {0};
	_Atomic uint64_t *snaps = nokv_ptr(&db->ctx, hdr->snapshots);

	memset(st, 0, sizeof(*st));
	v = nokv_version_current(db);
	nokv_level_targets(db, v, targets);
	st->num_levels = hdr->opts.num_levels;
	for (int level = 0; level < hdr->opts.num_levels; level++)
	{
		for (int i = 0; i < v->nfiles[level]; i++)
		{
			const nokv_file_meta *f = nokv_version_file(db, v, level, i);

			st->levels[level].bytes += f->size;
			st->levels[level].entries += f->entries;
		}
		st->levels[level].files = v->nfiles[level];
		st->levels[level].score = nokv_level_score(db, v, level, targets);
		st->live_sst_bytes += st->levels[level].bytes;
	}
	nokv_version_unref(db, v);

	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < hdr->opts.max_memtables; i++)
	{
		const nokv_mt_slot *m = &hdr->slots[i];

		if (m->state == NOKV_MT_IMMUTABLE || m->state == NOKV_MT_FLUSHING)
			st->memtables_immutable++;
		if (m->state != NOKV_MT_FREE && m->state != NOKV_MT_RETIRED)
			st->memtable_bytes += nokv_memtable_arena_used(&db->ctx, m->mt);
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);

	st->last_version = atomic_load(&hdr->last_version);
	st->write_stalled = atomic_load(&s->write_stalled);
	st->write_slowed = atomic_load(&s->write_slowed);
	st->stall_count = atomic_load(&s->stall_count);
	st->slowdown_count = atomic_load(&s->slowdown_count);
	st->flushes = atomic_load(&s->flushes);
	st->flush_bytes = atomic_load(&s->flush_bytes);
	st->compactions = atomic_load(&s->compactions);
	st->compaction_bytes_read = atomic_load(&s->compaction_bytes_read);
	st->compaction_bytes_written = atomic_load(&s->compaction_bytes_written);
	st->compaction_entries_dropped = atomic_load(&s->compaction_entries_dropped);
	st->user_bytes_written = nokv_hot_sum(s, offsetof(nokv_hot_counters, user_bytes_written));
	st->gets = nokv_hot_sum(s, offsetof(nokv_hot_counters, gets));
	st->writes = nokv_hot_sum(s, offsetof(nokv_hot_counters, writes));
	st->bloom_checked = nokv_hot_sum(s, offsetof(nokv_hot_counters, sst.bloom_checked));
	st->bloom_useful = nokv_hot_sum(s, offsetof(nokv_hot_counters, sst.bloom_useful));
	if (db->wal)
	{
		nokv_wal_stats ws;

		nokv_wal_get_stats(db->wal, &ws);
		st->wal_bytes = ws.bytes;
		st->wal_syncs = ws.syncs;
		st->wal_sync_batches = ws.synced_batches;
		st->wal_segments = ws.segments_created;
	}
	{
		nokv_vlog_stats vs;

		nokv_vlog_get_stats(&db->ctx, hdr->vlog, &vs);
		st->vlog_bytes = vs.append_bytes;
	}
	if (hdr->cache)
	{
		uint64_t	cap;

		nokv_cache_stats(&db->ctx, hdr->cache, &st->block_cache_hits, &st->block_cache_misses,
						 &st->block_cache_bytes, &cap);
	}
	nokv_lock(&db->platform, NOKV_LOCK_MANIFEST, false);
	st->manifest_bytes = hdr->manifest_size;
	nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
	for (int i = 0; i < hdr->opts.max_snapshots; i++)
		if (atomic_load(&snaps[i]))
			st->snapshots++;
}

double
nokv_write_amplification(const nokv_stats *st)
{
	if (st->user_bytes_written == 0)
		return 0.0;
	return (double) (st->wal_bytes + st->flush_bytes + st->compaction_bytes_written +
					 st->vlog_bytes) / (double) st->user_bytes_written;
}

/* ---------- recovery ---------- */

typedef struct replay_ctx
{
	nokv_db    *db;
	uint64_t	max_version;
	uint64_t	segment;
	nokv_error *err;
} replay_ctx;

static int
replay_record(void *arg, const char *payload, size_t len, nokv_error *err)
{
	replay_ctx *rc = arg;
	nokv_db    *db = rc->db;
	nokv_batch	b = {0};
	uint64_t	first;
	uint32_t	count;
	const char *p;
	const char *end;
	nokv_batch_entry e;
	uint32_t	n = 0;
	int			r;
	size_t		cost;
	nokv_mt_slot *slot;

	if (len < NOKV_WAL_BATCH_HEADER)
		return nokv_error_set(err, NOKV_CORRUPTION, "wal record of %zu bytes is too short", len);
	first = nokv_get_le64(payload);
	count = nokv_get_le32(payload + 8);
	p = payload + NOKV_WAL_BATCH_HEADER;
	end = payload + len;
	while ((r = nokv_batch_next(&p, end, &e)) == 1)
		n++;
	if (r < 0 || n != count || count == 0 || first == 0)
		return nokv_error_set(err, NOKV_CORRUPTION, "malformed batch in wal segment %llu",
							  (unsigned long long) rc->segment);
	/* borrow the bytes; the batch is read-only here */
	b.rep.data = (char *) payload + NOKV_WAL_BATCH_HEADER;
	b.rep.len = len - NOKV_WAL_BATCH_HEADER;
	b.count = count;
	cost = batch_cost(&b);

	slot = active_slot(db);
	if (!slot_has_room(db, slot, cost))
	{
		/* memtable full during replay: flush it and continue in a fresh one */
		int			i;
		int			fr;

		nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
		i = find_free_slot(db);
		if (i >= 0)
		{
			slot->state = NOKV_MT_IMMUTABLE;
			slot_activate(db, i, rc->segment);
		}
		nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		if (i < 0)
			return nokv_error_set(err, NOKV_NO_SPACE, "no free memtable during recovery");
		fr = nokv_flush_one(db, err);
		if (fr < 0)
			return -fr;
		slot = active_slot(db);
	}
	if (slot->min_version == 0 || first < slot->min_version)
		slot->min_version = first;
	if (first + count - 1 > slot->max_version)
		slot->max_version = first + count - 1;
	r = apply_batch(db, slot, &b, first, false, false, err);
	if (r != NOKV_OK)
		return r;
	if (first + count - 1 > rc->max_version)
		rc->max_version = first + count - 1;
	return NOKV_OK;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

typedef struct dir_listing
{
	uint64_t   *wal;
	int			nwal;
	uint64_t   *sst;
	int			nsst;
	uint64_t   *manifest;
	int			nmanifest;
	bool		has_current;
	uint64_t	max_number;
} dir_listing;

static int
list_dir(const char *dir, dir_listing *l, bool remove_temps, nokv_error *err)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			capw = 0,
				caps = 0,
				capm = 0;

	memset(l, 0, sizeof(*l));
	if (!d)
		return nokv_error_errno(err, "could not open directory %s", dir);
	while ((de = readdir(d)) != NULL)
	{
		uint64_t	number;
		nokv_file_kind k = nokv_parse_file_name(de->d_name, &number);

		if (number > l->max_number)
			l->max_number = number;
		if (k == NOKV_FILE_WAL)
		{
			if (l->nwal == capw)
				l->wal = nokv_realloc(l->wal, (capw = capw * 2 + 16) * sizeof(uint64_t));
			l->wal[l->nwal++] = number;
		}
		else if (k == NOKV_FILE_SST)
		{
			if (l->nsst == caps)
				l->sst = nokv_realloc(l->sst, (caps = caps * 2 + 16) * sizeof(uint64_t));
			l->sst[l->nsst++] = number;
		}
		else if (k == NOKV_FILE_MANIFEST)
		{
			if (l->nmanifest == capm)
				l->manifest = nokv_realloc(l->manifest, (capm = capm * 2 + 4) * sizeof(uint64_t));
			l->manifest[l->nmanifest++] = number;
		}
		else if (k == NOKV_FILE_CURRENT)
			l->has_current = true;
		else if (k == NOKV_FILE_TEMP && remove_temps)
		{
			char		path[NOKV_DIR_MAX + 300];

			/* an interrupted SST build or file swap: never referenced */
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
	if (l->nwal > 1)
		qsort(l->wal, l->nwal, sizeof(uint64_t), cmp_u64);
	if (l->nsst > 1)
		qsort(l->sst, l->nsst, sizeof(uint64_t), cmp_u64);
	return NOKV_OK;
}

static int
check_sst_files(const char *dir, const nokv_manifest_state *st, nokv_error *err)
{
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		for (int i = 0; i < st->nfiles[level]; i++)
		{
			const nokv_file_desc *f = &st->files[level][i];
			char		path[NOKV_DIR_MAX + 32];
			uint64_t	size;

			snprintf(path, sizeof(path), NOKV_SST_FMT, dir, (unsigned long long) f->number);
			if (nokv_file_size(path, &size, NULL) != NOKV_OK)
				return nokv_error_set(err, NOKV_CORRUPTION,
									  "sst file %s listed in the manifest is missing", path);
			if (size != f->size)
				return nokv_error_set(err, NOKV_CORRUPTION,
									  "sst file %s has %llu bytes but the manifest says %llu",
									  path, (unsigned long long) size,
									  (unsigned long long) f->size);
		}
	return NOKV_OK;
}

static bool
state_has_file(const nokv_manifest_state *st, uint64_t number)
{
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		for (int i = 0; i < st->nfiles[level]; i++)
			if (st->files[level][i].number == number)
				return true;
	return false;
}

static int
recover(nokv_db *db, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_manifest_state st;
	dir_listing dl;
	bool		fresh = false;
	int			rc;

	nokv_manifest_state_init(&st);
	rc = list_dir(hdr->dir, &dl, false, err);
	if (rc != NOKV_OK)
		goto out;
	if (!dl.has_current && dl.nmanifest > 0 && dl.nsst == 0 && dl.nwal == 0)
	{
		/*
		 * The very first manifest was renamed into place but CURRENT was
		 * never written: nothing else exists yet, so this is a new database
		 * whose creation was interrupted, not lost data.
		 */
		for (int i = 0; i < dl.nmanifest; i++)
		{
			char		path[NOKV_DIR_MAX + 32];

			snprintf(path, sizeof(path), NOKV_MANIFEST_FMT, hdr->dir,
					 (unsigned long long) dl.manifest[i]);
			unlink(path);
		}
	}
	free(dl.wal);
	free(dl.sst);
	free(dl.manifest);
	rc = nokv_manifest_recover(hdr->dir, &st, err);
	if (rc == NOKV_NOT_FOUND)
	{
		fresh = true;
		nokv_error_clear(err);
		nokv_manifest_state_free(&st);
		nokv_manifest_state_init(&st);
	}
	else if (rc != NOKV_OK)
		goto out;

	rc = list_dir(hdr->dir, &dl, true, err);
	if (rc != NOKV_OK)
		goto out;
	if (!fresh)
		rc = check_sst_files(hdr->dir, &st, err);
	if (rc == NOKV_OK)
	{
		uint64_t	next = st.next_file_number;

		if (dl.max_number + 1 > next)
			next = dl.max_number + 1;
		if (next < 1)
			next = 1;
		atomic_store(&hdr->next_file_number, next);
		hdr->log_number = st.log_number;
		memcpy(hdr->ext_flushed, st.ext_position, sizeof(hdr->ext_flushed));
		if (db->hdr->opts.external_log)
		{
			/*
			 * The manifest's last_version may count batches whose log
			 * entries a crash lost; the host assigns versions from its log
			 * again, so start above what the tables actually hold.
			 */
			uint64_t	maxv = 0;

			for (int lv = 0; lv < NOKV_MAX_LEVELS; lv++)
				for (int f = 0; f < st.nfiles[lv]; f++)
					if (st.files[lv][f].max_version > maxv)
						maxv = st.files[lv][f].max_version;
			st.last_version = maxv;
		}
		hdr->next_version = st.last_version + 1;
		atomic_store(&hdr->last_version, st.last_version);
		rc = nokv_version_install_state(db, &st, err);
	}
	/* value log: load its table, trim the head segment, drop orphans */
	if (rc == NOKV_OK)
		rc = nokv_vlog_recover(db->vlog, &st, err);
	if (rc == NOKV_OK)
		rc = nokv_manifest_start(db, fresh ? NULL : &st, err);

	/* manifests CURRENT does not name are leftovers of a rewrite */
	for (int i = 0; rc == NOKV_OK && i < dl.nmanifest; i++)
		if (dl.manifest[i] != hdr->manifest_number)
		{
			char		path[NOKV_DIR_MAX + 32];

			snprintf(path, sizeof(path), NOKV_MANIFEST_FMT, hdr->dir,
					 (unsigned long long) dl.manifest[i]);
			unlink(path);
		}

	/* SSTs the manifest does not know are leftovers of interrupted work */
	for (int i = 0; rc == NOKV_OK && i < dl.nsst; i++)
		if (!state_has_file(&st, dl.sst[i]))
		{
			char		path[NOKV_DIR_MAX + 32];

			snprintf(path, sizeof(path), NOKV_SST_FMT, hdr->dir, (unsigned long long) dl.sst[i]);
			unlink(path);
		}

	if (rc == NOKV_OK && db->wal)
	{
		replay_ctx rctx = {.db = db, .max_version = st.last_version, .err = err};
		uint64_t	segment = nokv_new_file_number(db);
		int			fresh_slot;
		int			replay_slot;

		/* replay every segment the manifest does not cover, oldest first */
		nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
		replay_slot = find_free_slot(db);
		slot_activate(db, replay_slot, 0);
		nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		/*
		 * With sync on, every sealed segment was fdatasynced, so only the
		 * newest may end torn and anything else is corruption.  With sync
		 * off, sealed segments are synced lazily, and an OS crash may tear
		 * any of them: recovery is then point-in-time, stopping at the first
		 * torn segment (later ones are dropped; nothing in them was ever
		 * promised durable).
		 */
		bool		point_in_time = hdr->opts.sync_mode == NOKV_SYNC_OFF;

		for (int i = 0; rc == NOKV_OK && i < dl.nwal; i++)
		{
			uint64_t	valid_end;
			uint64_t	size = 0;
			char		path[NOKV_DIR_MAX + 32];

			if (dl.wal[i] < hdr->log_number)
				continue;
			rctx.segment = dl.wal[i];
			if (active_slot(db)->wal_segment == 0)
				active_slot(db)->wal_segment = dl.wal[i];
			rc = nokv_wal_replay_segment(hdr->dir, dl.wal[i], point_in_time || i == dl.nwal - 1,
										 replay_record, &rctx, &valid_end, err);

			/*
			 * Cut a torn tail off now: once a new segment exists, a torn
			 * record would read as corruption if we crashed before the
			 * replayed data is flushed.
			 */
			snprintf(path, sizeof(path), NOKV_WAL_FMT, hdr->dir, (unsigned long long) dl.wal[i]);
			if (rc == NOKV_OK && nokv_file_size(path, &size, NULL) == NOKV_OK && valid_end < size)
			{
				rc = nokv_wal_truncate_segment(hdr->dir, dl.wal[i], valid_end, err);
				if (rc == NOKV_OK && i < dl.nwal - 1)
				{
					nokv_log(&db->platform, 2,
							 "wal segment %s ends torn; recovering to that point and dropping %d later segment(s)",
							 path, dl.nwal - 1 - i);
					break;
				}
			}
		}
		if (rc == NOKV_OK)
		{
			hdr->next_version = rctx.max_version + 1;
			atomic_store(&hdr->last_version, rctx.max_version);
			/* new segment for new writes; what was replayed is flushed now */
			rc = nokv_wal_switch_segment(db->wal, segment, err);
		}
		if (rc == NOKV_OK)
		{
			nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
			fresh_slot = find_free_slot(db);
			if (fresh_slot < 0)
				rc = nokv_error_set(err, NOKV_NO_SPACE, "no free memtable after recovery");
			else
			{
				active_slot(db)->state = NOKV_MT_IMMUTABLE;
				slot_activate(db, fresh_slot, segment);
			}
			nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		}
		while (rc == NOKV_OK)
		{
			int			fr = nokv_flush_one(db, err);

			if (fr < 0)
				rc = -fr;
			if (fr <= 0)
				break;
		}
		/* everything below the new segment is now in SSTs */
		for (int i = 0; rc == NOKV_OK && i < dl.nwal; i++)
			if (dl.wal[i] < segment)
			{
				char		path[NOKV_DIR_MAX + 32];

				snprintf(path, sizeof(path), NOKV_WAL_FMT, hdr->dir,
						 (unsigned long long) dl.wal[i]);
				unlink(path);
			}
	}
	else if (rc == NOKV_OK)
	{
		/* external-log mode must not silently drop an engine WAL's data */
		for (int i = 0; rc == NOKV_OK && i < dl.nwal; i++)
			if (dl.wal[i] >= hdr->log_number)
				rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
									"directory %s has unflushed engine WAL segments (%06llu.wal); "
									"open it with external_log off to recover them first",
									hdr->dir, (unsigned long long) dl.wal[i]);
		if (rc == NOKV_OK)
		{
			nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, true);
			slot_activate(db, find_free_slot(db), 0);
			nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
		}
	}
	free(dl.wal);
	free(dl.sst);
	free(dl.manifest);
out:
	nokv_manifest_state_free(&st);
	return rc;
}

/* ---------- formatting and opening ---------- */

int
nokv_region_format(void *region, size_t size, const nokv_options *opts, const char *dir,
				   nokv_error *err)
{
	nokv_region_hdr *hdr = region;
	region_layout l;
	nokv_db    *db;
	nokv_ctx	ctx;
	int			rc;

	nokv_error_clear(err);
	rc = validate_options(opts, err);
	if (rc != NOKV_OK)
		return rc;
	if (!dir || strlen(dir) >= NOKV_DIR_MAX - 32)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "directory name is missing or too long");
	compute_layout(opts, opts->platform == NULL, &l);
	if (size < l.total)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "region of %zu bytes is smaller than the %zu needed",
							  size, l.total);
	rc = nokv_mkdir_p(dir, err);
	if (rc != NOKV_OK)
		return rc;

	memset(hdr, 0, sizeof(*hdr));
	hdr->region_size = size;
	snprintf(hdr->dir, sizeof(hdr->dir), "%s", dir);
	shared_options_from(opts, &hdr->opts);
	hdr->platform_storage = l.platform;
	hdr->heap = l.heap;
	hdr->cache = opts->block_cache_size ? l.cache : 0;
	hdr->wal = l.wal;
	hdr->files = l.files;
	hdr->snapshots = l.snapshots;
	hdr->vlog = l.vlog;
	hdr->txn = l.txn;
	hdr->hotring = l.hotring;
	if (l.platform)
		nokv_pthread_platform_format((char *) region + l.platform);

	db = handle_new(region, opts);
	ctx = db->ctx;
	nokv_heap_format(&ctx, l.heap, l.heap_size);
	if (hdr->cache)
		nokv_cache_format(&ctx, hdr->cache, opts->block_cache_size);
	if (hdr->wal)
	{
		nokv_wal_format(&ctx, hdr->wal, opts->wal_buffer_size);
		nokv_wal_set_lazy_seal(&ctx, hdr->wal, opts->sync_mode == NOKV_SYNC_OFF);
	}
	memset(nokv_ptr(&ctx, hdr->snapshots), 0, sizeof(uint64_t) * opts->max_snapshots);
	nokv_vlog_shared_format(&ctx, hdr->vlog, &hdr->opts);
	nokv_txn_shared_format(&ctx, hdr->txn, &hdr->opts);
	if (hdr->hotring)
		nokv_hotring_shared_format(&ctx, hdr->hotring, &hdr->opts);
	nokv_file_table_format(db);
	for (int i = 0; i < opts->max_memtables; i++)
	{
		hdr->slots[i].mt = l.memtables + (size_t) i * l.memtable_stride;
		nokv_memtable_format(&ctx, hdr->slots[i].mt, opts->memtable_size);
		hdr->slots[i].state = NOKV_MT_FREE;
	}
	hdr->magic = NOKV_REGION_MAGIC;
	hdr->format_version = NOKV_REGION_VERSION;

	if (hdr->wal)
		db->wal = nokv_wal_attach(&db->ctx, hdr->wal, hdr->dir);
	db->recovering = true;
	rc = recover(db, err);
	handle_free(db);
	if (rc != NOKV_OK)
		hdr->magic = 0;			/* unusable: attach must fail */
	return rc;
}

static void *
bg_main(void *arg)
{
	struct nokv_bg_thread *t = arg;
	nokv_db    *db = t->db;

	while (!atomic_load(&db->hdr->shutting_down))
	{
		nokv_error	err;
		int			r = t->flush ? nokv_flush_one(db, &err) : nokv_compact_step(db, &err);

		/* value-log GC when compaction has nothing to do */
		if (r == 0 && !t->flush)
			r = nokv_vlog_gc(db, 0, &err);

		if (r < 0)
		{
			/* work abandoned because the engine is closing is not a failure */
			if (-r != NOKV_SHUTDOWN && !atomic_load(&db->hdr->shutting_down))
				nokv_set_bg_error(db, &err);
			break;
		}
		if (r > 0)
			continue;
		nokv_lock(&db->platform, NOKV_LOCK_STATS, true);
		if (!atomic_load(&db->hdr->shutting_down))
			nokv_cond_wait(&db->platform, NOKV_COND_BGWORK, NOKV_LOCK_STATS, t->flush ? 200 : 500);
		nokv_unlock(&db->platform, NOKV_LOCK_STATS);
	}
	return NULL;
}

static int
start_threads(nokv_db *db, const nokv_options *opts, nokv_error *err)
{
	int			n = 1 + opts->compaction_threads;

	db->threads = nokv_calloc(n, sizeof(struct nokv_bg_thread));
	db->nthreads = n;
	for (int i = 0; i < n; i++)
	{
		db->threads[i].db = db;
		db->threads[i].flush = (i == 0);
		if (pthread_create(&db->threads[i].tid, NULL, bg_main, &db->threads[i]) != 0)
			return nokv_error_errno(err, "could not start a background thread");
		db->threads[i].started = true;
	}
	return NOKV_OK;
}

static void
stop_threads(nokv_db *db)
{
	if (!db->threads)
		return;
	atomic_store(&db->hdr->shutting_down, 1);
	for (int i = 0; i < db->nthreads; i++)
		nokv_cond_broadcast(&db->platform, NOKV_COND_BGWORK);
	for (int i = 0; i < db->nthreads; i++)
		if (db->threads[i].started)
			pthread_join(db->threads[i].tid, NULL);
	free(db->threads);
	db->threads = NULL;
}

int
nokv_open(const nokv_options *opts, const char *dir, nokv_db **dbp, nokv_error *err)
{
	size_t		size;
	void	   *region;
	char		lockpath[NOKV_DIR_MAX + 16];
	int			lock_fd;
	int			rc;

	*dbp = NULL;
	nokv_error_clear(err);
	rc = validate_options(opts, err);
	if (rc != NOKV_OK)
		return rc;
	if (!dir || strlen(dir) >= NOKV_DIR_MAX - 32)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "directory name is missing or too long");
	rc = nokv_mkdir_p(dir, err);
	if (rc != NOKV_OK)
		return rc;
	snprintf(lockpath, sizeof(lockpath), "%s/%s", dir, NOKV_LOCK_NAME);
	lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		return nokv_error_errno(err, "could not open lock file %s", lockpath);
	if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
	{
		close(lock_fd);
		return nokv_error_set(err, NOKV_BUSY, "directory %s is in use by another nokv engine", dir);
	}

	size = nokv_region_size(opts);
	region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
	{
		close(lock_fd);
		return nokv_error_errno(err, "could not map %zu bytes of shared memory", size);
	}
	rc = nokv_region_format(region, size, opts, dir, err);
	if (rc == NOKV_OK)
		rc = nokv_attach(region, opts, dbp, err);
	if (rc != NOKV_OK)
	{
		munmap(region, size);
		close(lock_fd);
		return rc;
	}
	(*dbp)->owns_region = true;
	(*dbp)->region_mem = region;
	(*dbp)->region_len = size;
	(*dbp)->lock_fd = lock_fd;
	if (opts->background_threads)
	{
		rc = start_threads(*dbp, opts, err);
		if (rc != NOKV_OK)
		{
			nokv_close(*dbp);
			*dbp = NULL;
			return rc;
		}
	}
	return NOKV_OK;
}

void
nokv_close(nokv_db *db)
{
	if (!db)
		return;
	stop_threads(db);
	if (db->wal)
	{
		nokv_error	err;

		nokv_lock(&db->platform, NOKV_LOCK_WRITE, true);
		if (nokv_wal_flush_buffer(db->wal, &err) != NOKV_OK)
			nokv_log(&db->platform, 3, "could not write out the wal buffer at close: %s", err.msg);
		nokv_unlock(&db->platform, NOKV_LOCK_WRITE);
	}
	if (db->owns_region)
	{
		void	   *mem = db->region_mem;
		size_t		len = db->region_len;
		int			fd = db->lock_fd;

		handle_free(db);
		munmap(mem, len);
		if (fd >= 0)
			close(fd);
		return;
	}
	handle_free(db);
}
