/*-------------------------------------------------------------------------
 *
 * views.c
 *	  Set-returning functions behind the observability views: nokv_stats,
 *	  nokv_hotkeys, nokv_levels, nokv_sstables, nokv_memtables,
 *	  nokv_manifest, nokv_vlog_segments and nokv_workers.
 *
 * Each function copies a snapshot of the engine's shared state (the
 * engine's inspection API takes its locks only long enough to copy) into
 * a tuplestore, so no engine lock is held while rows go to the executor.
 * The file-level views use the same row definitions as the offline `nokv`
 * CLI (src/engine/inspect.c), so both report the same figures.
 *
 * src/extension/views.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"
#include "nokv/inspect.h"

PG_FUNCTION_INFO_V1(nokv_stats_rows);
PG_FUNCTION_INFO_V1(nokv_hotkeys_rows);
PG_FUNCTION_INFO_V1(nokv_levels_rows);
PG_FUNCTION_INFO_V1(nokv_sstables_rows);
PG_FUNCTION_INFO_V1(nokv_memtables_rows);
PG_FUNCTION_INFO_V1(nokv_manifest_rows);
PG_FUNCTION_INFO_V1(nokv_vlog_segments_rows);
PG_FUNCTION_INFO_V1(nokv_workers_rows);

#define MAX_COLS 16

typedef struct RowBuilder
{
	ReturnSetInfo *rsinfo;
	Datum		values[MAX_COLS];
	bool		nulls[MAX_COLS];
	int			n;
} RowBuilder;

static void
row_begin(RowBuilder *rb)
{
	rb->n = 0;
	memset(rb->nulls, 0, sizeof(rb->nulls));
}

static void
put(RowBuilder *rb, Datum d)
{
	rb->values[rb->n++] = d;
}

static void
put_null(RowBuilder *rb)
{
	rb->nulls[rb->n] = true;
	rb->values[rb->n++] = (Datum) 0;
}

static void
put_text(RowBuilder *rb, const char *s)
{
	put(rb, CStringGetTextDatum(s));
}

static void
put_bytea(RowBuilder *rb, const char *data, size_t len)
{
	bytea	   *b = (bytea *) palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len)
		memcpy(VARDATA(b), data, len);
	put(rb, PointerGetDatum(b));
}

static void
put_u64(RowBuilder *rb, uint64 v)
{
	put(rb, Int64GetDatum((int64) v));
}

static void
row_end(RowBuilder *rb)
{
	tuplestore_putvalues(rb->rsinfo->setResult, rb->rsinfo->setDesc, rb->values, rb->nulls);
}

static void
rows_begin(FunctionCallInfo fcinfo, RowBuilder *rb)
{
	InitMaterializedSRF(fcinfo, 0);
	rb->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
}

/* a snapshot of the live engine's files, levels and memtables */
static nokv_inspector *
live_inspector(void)
{
	nokv_inspector *in;
	nokv_error	err;
	int			rc;

	rc = nokv_inspect_live(nokv_engine(), &in, &err);
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "inspection");
	return in;
}

typedef void (*FillFn) (nokv_inspector *in, RowBuilder *rb);

/* rows from a snapshot of the live engine, freed even if a row fails */
static Datum
inspect_rows(FunctionCallInfo fcinfo, FillFn fill)
{
	RowBuilder	rb;
	nokv_inspector *in = live_inspector();

	PG_TRY();
	{
		rows_begin(fcinfo, &rb);
		fill(in, &rb);
	}
	PG_FINALLY();
	{
		nokv_inspect_free(in);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/* ---------- nokv_stats ---------- */

static void
stat_row(void *arg, const nokv_stat *s)
{
	RowBuilder *rb = (RowBuilder *) arg;

	row_begin(rb);
	put_text(rb, s->name);
	put(rb, Float8GetDatum(s->value));
	put_text(rb, s->unit);
	put_text(rb, s->description);
	row_end(rb);
}

Datum
nokv_stats_rows(PG_FUNCTION_ARGS)
{
	RowBuilder	rb;
	nokv_db    *db = nokv_engine();

	rows_begin(fcinfo, &rb);
	nokv_stats_foreach(db, stat_row, &rb);
	nokv_gateway_stats(stat_row, &rb);
	return (Datum) 0;
}

/* ---------- nokv_hotkeys ---------- */

Datum
nokv_hotkeys_rows(PG_FUNCTION_ARGS)
{
	RowBuilder	rb;
	nokv_db    *db = nokv_engine();
	int			cap = nokv_hot_key_top_n > 0 ? nokv_hot_key_top_n : 1;
	nokv_hot_key *keys = palloc(sizeof(nokv_hot_key) * cap);

	rows_begin(fcinfo, &rb);
	for (int w = 0; w < 2; w++)
	{
		int			n = nokv_hot_keys(db, w == 1, keys, cap);

		for (int i = 0; i < n; i++)
		{
			const char *k = keys[i].key;
			size_t		klen = keys[i].key_len;

			/* show key-value namespace keys as the user wrote them */
			if (klen > 0 && k[0] == NOKV_NS_KV)
			{
				k++;
				klen--;
			}
			row_begin(&rb);
			put_text(&rb, w == 1 ? "write" : "read");
			put(&rb, Int32GetDatum(i + 1));
			put_text(&rb, nokv_cf_name(keys[i].cf));
			put_bytea(&rb, k, klen);
			put(&rb, BoolGetDatum(keys[i].truncated));
			put_u64(&rb, keys[i].count);
			row_end(&rb);
		}
	}
	return (Datum) 0;
}

/* ---------- file-level views ---------- */

static void
fill_levels(nokv_inspector *in, RowBuilder *rb)
{
	const nokv_level_info *rows;
	int			n = nokv_inspect_levels(in, &rows);

	for (int i = 0; i < n; i++)
	{
		row_begin(rb);
		put(rb, Int32GetDatum(rows[i].level));
		put(rb, Int32GetDatum(rows[i].files));
		put_u64(rb, rows[i].bytes);
		put_u64(rb, rows[i].entries);
		put_u64(rb, rows[i].target_bytes);
		put(rb, Float8GetDatum(rows[i].score));
		row_end(rb);
	}
}

Datum
nokv_levels_rows(PG_FUNCTION_ARGS)
{
	return inspect_rows(fcinfo, fill_levels);
}

static void
fill_sstables(nokv_inspector *in, RowBuilder *rb)
{
	const nokv_sst_info *rows;
	int			n = nokv_inspect_sstables(in, &rows);

	for (int i = 0; i < n; i++)
	{
		const nokv_sst_info *r = &rows[i];

		row_begin(rb);
		put(rb, Int32GetDatum(r->level));
		put_u64(rb, r->number);
		put_u64(rb, r->size);
		put_u64(rb, r->entries);
		put_u64(rb, r->deletions);
		put_u64(rb, r->range_deletions);
		put(rb, LSNGetDatum(r->min_version));
		put(rb, LSNGetDatum(r->max_version));
		put_text(rb, nokv_cf_name(r->smallest_cf));
		put_bytea(rb, r->smallest_key, r->smallest_len);
		put_text(rb, nokv_cf_name(r->largest_cf));
		put_bytea(rb, r->largest_key, r->largest_len);
		row_end(rb);
	}
}

Datum
nokv_sstables_rows(PG_FUNCTION_ARGS)
{
	return inspect_rows(fcinfo, fill_sstables);
}

static void
fill_memtables(nokv_inspector *in, RowBuilder *rb)
{
	const nokv_memtable_info *rows;
	int			n = nokv_inspect_memtables(in, &rows);

	for (int i = 0; i < n; i++)
	{
		const nokv_memtable_info *r = &rows[i];

		row_begin(rb);
		put(rb, Int32GetDatum(r->slot));
		put_text(rb, r->state);
		put_u64(rb, r->seq);
		put_u64(rb, r->bytes_used);
		put_u64(rb, r->capacity);
		put_u64(rb, r->entries);
		put_u64(rb, r->range_tombstones);
		if (r->min_version)
			put(rb, LSNGetDatum(r->min_version));
		else
			put_null(rb);
		if (r->max_version)
			put(rb, LSNGetDatum(r->max_version));
		else
			put_null(rb);
		put(rb, Int32GetDatum(r->pins));
		row_end(rb);
	}
}

Datum
nokv_memtables_rows(PG_FUNCTION_ARGS)
{
	return inspect_rows(fcinfo, fill_memtables);
}

static void
fill_manifest(nokv_inspector *in, RowBuilder *rb)
{
	nokv_manifest_info m;
	uint64		flushed = 0;

	nokv_inspect_manifest(in, &m);
	for (int i = 0; i < m.n_ext; i++)
		if (m.ext[i].log_id == 0)
			flushed = m.ext[i].position;
	row_begin(rb);
	put_u64(rb, m.manifest_number);
	put_u64(rb, m.manifest_size);
	put_u64(rb, m.next_file_number);
	put(rb, LSNGetDatum(m.last_version));
	put(rb, LSNGetDatum(flushed));
	put(rb, Int32GetDatum(m.live_files));
	put_u64(rb, m.live_bytes);
	put(rb, Int32GetDatum(m.vlog_segments));
	put_u64(rb, m.vlog_head_segment);
	put_u64(rb, m.vlog_head_offset);
	put(rb, Int32GetDatum(m.num_levels));
	row_end(rb);
}

Datum
nokv_manifest_rows(PG_FUNCTION_ARGS)
{
	return inspect_rows(fcinfo, fill_manifest);
}

static void
fill_vlog_segments(nokv_inspector *in, RowBuilder *rb)
{
	const nokv_vlog_seg_info *rows;
	int			n = nokv_inspect_vlog_segments(in, &rows);

	for (int i = 0; i < n; i++)
	{
		row_begin(rb);
		put_u64(rb, rows[i].number);
		put_u64(rb, rows[i].size);
		put_u64(rb, rows[i].discard);
		put(rb, Float8GetDatum(rows[i].discard_ratio));
		put(rb, BoolGetDatum(rows[i].is_head));
		row_end(rb);
	}
}

Datum
nokv_vlog_segments_rows(PG_FUNCTION_ARGS)
{
	return inspect_rows(fcinfo, fill_vlog_segments);
}

/* ---------- nokv_workers ---------- */

static const char *const worker_types[] = {"nokv flush", "nokv compaction", "nokv vlog gc"};
static const char *const engine_states[] = {
	"empty", "opening", "redo", "ready", "failed", "refused"
};

Datum
nokv_workers_rows(PG_FUNCTION_ARGS)
{
	RowBuilder	rb;
	NokvWorkerSlot slots[NOKV_MAX_WORKERS];
	int			state;

	if (nokv_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nokv is not loaded"),
				 errhint("Add nokv to shared_preload_libraries in postgresql.conf and restart the server.")));
	SpinLockAcquire(&nokv_shared->mutex);
	memcpy(slots, nokv_shared->workers, sizeof(slots));
	state = nokv_shared->state;
	SpinLockRelease(&nokv_shared->mutex);

	rows_begin(fcinfo, &rb);
	for (int i = 0; i < NOKV_MAX_WORKERS; i++)
	{
		NokvWorkerSlot *w = &slots[i];

		if (w->started_at == 0)
			continue;			/* never started (e.g. fewer compaction workers) */
		row_begin(&rb);
		put_text(&rb, worker_types[w->kind]);
		put(&rb, Int32GetDatum(w->index));
		if (w->pid)
			put(&rb, Int32GetDatum(w->pid));
		else
			put_null(&rb);
		put_text(&rb, w->activity);
		put_text(&rb, engine_states[state]);
		put(&rb, TimestampTzGetDatum(w->started_at));
		if (w->last_work_at)
			put(&rb, TimestampTzGetDatum(w->last_work_at));
		else
			put_null(&rb);
		put_u64(&rb, w->wakeups);
		put_u64(&rb, w->work_done);
		put_u64(&rb, w->errors);
		if (w->last_error[0])
			put_text(&rb, w->last_error);
		else
			put_null(&rb);
		row_end(&rb);
	}
	return (Datum) 0;
}
