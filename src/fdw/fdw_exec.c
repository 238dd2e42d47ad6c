/*-------------------------------------------------------------------------
 *
 * fdw_exec.c
 *	  Execution side of the nokv foreign data wrapper: scans (point
 *	  lookups, ordered ranges, full scans), INSERT/UPDATE/DELETE, batch
 *	  insert and TRUNCATE.
 *
 * Every read and write goes through kv.c, so the FDW and the SQL
 * functions share keys, value headers, TTLs and the writer protocol:
 * writes are logged in PostgreSQL's WAL under the current (sub)transaction
 * and vanish on ROLLBACK; concurrent writers of a key wait on each other.
 *
 * Modifications follow a table with the key as primary key:
 *	- INSERT of a key that is live fails with unique_violation (23505),
 *	  decided under the key's lock on the newest committed version, so two
 *	  sessions inserting one key cannot both succeed; ON CONFLICT DO
 *	  NOTHING skips such rows instead.
 *	- UPDATE and DELETE act on the key the scan returned.  There is no
 *	  EvalPlanQual for foreign tables: if another transaction changed the
 *	  key after the statement's snapshot (READ COMMITTED), the statement
 *	  fails with serialization_failure (40001) rather than overwrite a
 *	  change it has not seen; if it deleted the key, the row is skipped as
 *	  heap does.  REPEATABLE READ gets 40001 from kv.c's lock either way.
 *	- UPDATE that changes the key deletes the old key and inserts the new
 *	  one (23505 if the new key is live).
 *
 * src/fdw/fdw_exec.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"
#include "nokv_fdw.h"

/* a key bound: the user's key bytes with the table's prefix */
typedef struct KeyBound
{
	bool		set;
	char	   *data;
	int			len;
} KeyBound;

typedef struct NokvScanState
{
	NokvFdwTable table;
	NokvFdwColumns cols;
	NokvScanKind kind;
	List	   *cond_kinds;		/* NokvCondKind per pushed clause */
	List	   *cond_values;	/* ExprState of each clause's value */
	nokv_db    *db;
	Snapshot	snapshot;
	Relation	rel;
	MemoryContext scan_cxt;		/* bounds, points, iterator; reset by rescan */
	MemoryContext row_cxt;		/* the current row's datums */
	bool		started;
	bool		empty;			/* the conditions select nothing */
	/* point scans: engine keys, sorted and unique */
	char	  **points;
	size_t	   *point_lens;
	int			npoints;
	int			next_point;
	/* range and full scans */
	NokvKvIter *iter;
} NokvScanState;

typedef struct NokvModifyState
{
	Relation	rel;
	NokvFdwTable table;
	NokvFdwColumns cols;
	nokv_db    *db;
	CmdType		operation;
	AttrNumber	key_junk;		/* the old key in the plan's row */
	AttrNumber	wholerow_junk;	/* the old row, for DELETE ... RETURNING */
	bool		skip_existing;	/* ON CONFLICT DO NOTHING */
	MemoryContext tmp_cxt;		/* reset after each row */
	TupleTableSlot **inserted;	/* ExecForeignBatchInsert's result */
	int			inserted_size;
} NokvModifyState;

/* for the error context of a value that does not convert */
typedef struct ConversionContext
{
	Relation	rel;
	const char *key;
	size_t		key_len;
} ConversionContext;

/* ---------- keys ---------- */

static int
compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* a key for messages: as text if it is printable text, else hex */
static char *
key_for_message(const char *key, size_t len)
{
	StringInfoData buf;
	bool		printable = pg_verifymbstr(key, (int) len, true);

	for (size_t i = 0; printable && i < len; i++)
		if ((unsigned char) key[i] < 0x20 || key[i] == 0x7f)
			printable = false;
	initStringInfo(&buf);
	if (printable)
	{
		appendStringInfoChar(&buf, '"');
		appendBinaryStringInfo(&buf, key, (int) Min(len, 200));
		appendStringInfoString(&buf, len > 200 ? "...\"" : "\"");
	}
	else
	{
		appendStringInfoString(&buf, "\\x");
		for (size_t i = 0; i < Min(len, 100); i++)
			appendStringInfo(&buf, "%02x", (unsigned char) key[i]);
		if (len > 100)
			appendStringInfoString(&buf, "...");
	}
	return buf.data;
}

/* prefix || bytes, palloc'd */
static char *
with_prefix(NokvFdwTable *t, const char *data, size_t len, size_t *outlen)
{
	char	   *out = palloc(t->prefix_len + len + 1);

	memcpy(out, t->prefix, t->prefix_len);
	if (len)
		memcpy(out + t->prefix_len, data, len);
	*outlen = t->prefix_len + len;
	return out;
}

/* the engine key of a bound, without kv.c's length limit (bounds may exceed it) */
static char *
engine_bound(const char *data, size_t len, size_t *klen)
{
	char	   *k = palloc(len + 1);

	k[0] = NOKV_NS_KV;
	if (len)
		memcpy(k + 1, data, len);
	*klen = len + 1;
	return k;
}

static void
raise_lower(KeyBound *b, char *data, int len)
{
	if (!b->set || compare_bytes(data, len, b->data, b->len) > 0)
	{
		b->set = true;
		b->data = data;
		b->len = len;
	}
}

static void
lower_upper(KeyBound *b, char *data, int len)
{
	if (!b->set || compare_bytes(data, len, b->data, b->len) < 0)
	{
		b->set = true;
		b->data = data;
		b->len = len;
	}
}

/* the smallest key above every key starting with p (unset: none) */
static KeyBound
prefix_successor(const char *p, int len)
{
	KeyBound	b = {0};
	char	   *s = palloc(len + 1);

	memcpy(s, p, len);
	while (len > 0 && (unsigned char) s[len - 1] == 0xff)
		len--;
	if (len == 0)
		return b;
	s[len - 1]++;
	b.set = true;
	b.data = s;
	b.len = len;
	return b;
}

/* the fixed prefix of a LIKE pattern (backslash escapes) */
static char *
like_prefix(const char *pat, int len, int *plen)
{
	char	   *out = palloc(len + 1);
	int			n = 0;

	for (int i = 0; i < len; i++)
	{
		if (pat[i] == '%' || pat[i] == '_')
			break;
		if (pat[i] == '\\')
		{
			if (++i >= len)
				break;
		}
		out[n++] = pat[i];
	}
	*plen = n;
	return out;
}

static void
datum_bytes(Datum d, const char **data, int *len)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

	*data = VARDATA_ANY(v);
	*len = VARSIZE_ANY_EXHDR(v);
}

/* ---------- scans ---------- */

void
nokv_fdw_begin_scan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	NokvScanState *s = palloc0(sizeof(NokvScanState));
	List	   *args;
	ListCell   *lc1;
	ListCell   *lc2;

	node->fdw_state = s;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	s->rel = node->ss.ss_currentRelation;
	/* the options as planned: ALTER FOREIGN TABLE invalidates the plan */
	s->table.cf = intVal(list_nth(plan->fdw_private, NokvScanCfIdx));
	s->table.prefix = strVal(list_nth(plan->fdw_private, NokvScanPrefixIdx));
	s->table.prefix_len = strlen(s->table.prefix);
	nokv_fdw_columns(s->rel, &s->cols);
	s->kind = intVal(list_nth(plan->fdw_private, NokvScanKindIdx));
	s->cond_kinds = list_nth(plan->fdw_private, NokvScanCondKindsIdx);
	args = list_nth(plan->fdw_private, NokvScanCondArgsIdx);
	forboth(lc1, plan->fdw_exprs, lc2, args)
	{
		Node	   *clause = lfirst(lc1);
		List	   *clause_args = IsA(clause, OpExpr)
			? ((OpExpr *) clause)->args : ((ScalarArrayOpExpr *) clause)->args;
		Expr	   *value = list_nth(clause_args, lfirst_int(lc2));

		s->cond_values = lappend(s->cond_values, ExecInitExpr(value, &node->ss.ps));
	}
	s->db = nokv_engine();
	s->snapshot = estate->es_snapshot;
	s->scan_cxt = AllocSetContextCreate(estate->es_query_cxt, "nokv_fdw scan",
										ALLOCSET_SMALL_SIZES);
	s->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "nokv_fdw row",
									   ALLOCSET_SMALL_SIZES);
}

/* sort the point keys in byte order and drop duplicates */
static void
sort_points(NokvScanState *s)
{
	/* insertion sort of (key, len) pairs: IN lists are short */
	for (int i = 1; i < s->npoints; i++)
	{
		char	   *k = s->points[i];
		size_t		l = s->point_lens[i];
		int			j = i - 1;

		while (j >= 0 && compare_bytes(s->points[j], s->point_lens[j], k, l) > 0)
		{
			s->points[j + 1] = s->points[j];
			s->point_lens[j + 1] = s->point_lens[j];
			j--;
		}
		s->points[j + 1] = k;
		s->point_lens[j + 1] = l;
	}
	if (s->npoints > 1)
	{
		int			n = 1;

		for (int i = 1; i < s->npoints; i++)
			if (compare_bytes(s->points[i], s->point_lens[i],
							  s->points[n - 1], s->point_lens[n - 1]) != 0)
			{
				s->points[n] = s->points[i];
				s->point_lens[n] = s->point_lens[i];
				n++;
			}
		s->npoints = n;
	}
}

static void
add_point(NokvScanState *s, const char *data, int len)
{
	size_t		ulen;
	char	   *ukey;

	/* a key longer than any stored key matches nothing */
	if (s->table.prefix_len + len > NOKV_KV_MAX_KEY)
		return;
	ukey = with_prefix(&s->table, data, len, &ulen);
	s->points[s->npoints] = engine_bound(ukey, ulen, &s->point_lens[s->npoints]);
	s->npoints++;
}

static void
start_points(NokvScanState *s, Datum value, NokvCondKind kind)
{
	const char *data;
	int			len;

	if (kind == NOKV_COND_EQ)
	{
		s->points = palloc(sizeof(char *));
		s->point_lens = palloc(sizeof(size_t));
		datum_bytes(value, &data, &len);
		add_point(s, data, len);
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(arr, s->cols.key_type, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		s->points = palloc(sizeof(char *) * Max(n, 1));
		s->point_lens = palloc(sizeof(size_t) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				continue;
			datum_bytes(elems[i], &data, &len);
			add_point(s, data, len);
		}
		sort_points(s);
	}
}

/* evaluate the pushed values and position the scan */
static void
start_scan(ForeignScanState *node, NokvScanState *s)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old = MemoryContextSwitchTo(s->scan_cxt);
	KeyBound	lo = {0};
	KeyBound	hi = {0};
	ListCell   *lc1;
	ListCell   *lc2;

	s->started = true;
	s->empty = false;
	s->npoints = 0;
	s->next_point = 0;
	s->iter = NULL;

	if (s->table.prefix_len > 0)
	{
		raise_lower(&lo, s->table.prefix, s->table.prefix_len);
		hi = prefix_successor(s->table.prefix, s->table.prefix_len);
	}
	forboth(lc1, s->cond_kinds, lc2, s->cond_values)
	{
		NokvCondKind kind = lfirst_int(lc1);
		bool		isnull;
		Datum		value = ExecEvalExpr(lfirst(lc2), econtext, &isnull);
		const char *data;
		int			len;
		size_t		blen;
		char	   *b;

		/* key <op> NULL is never true */
		if (isnull)
		{
			s->empty = true;
			break;
		}
		if (kind == NOKV_COND_EQ || kind == NOKV_COND_IN)
		{
			start_points(s, value, kind);
			break;
		}
		datum_bytes(value, &data, &len);
		if (kind == NOKV_COND_LIKE)
			data = like_prefix(data, len, &len);
		b = with_prefix(&s->table, data, len, &blen);
		switch (kind)
		{
			case NOKV_COND_GE:
				raise_lower(&lo, b, blen);
				break;
			case NOKV_COND_GT:
				/* the smallest key above b is b || 0x00 */
				b[blen] = '\0';
				raise_lower(&lo, b, blen + 1);
				break;
			case NOKV_COND_LT:
				lower_upper(&hi, b, blen);
				break;
			case NOKV_COND_LE:
				b[blen] = '\0';
				lower_upper(&hi, b, blen + 1);
				break;
			case NOKV_COND_LIKE:
			case NOKV_COND_PREFIX:
				{
					KeyBound	succ = prefix_successor(b, blen);

					raise_lower(&lo, b, blen);
					if (succ.set)
						lower_upper(&hi, succ.data, succ.len);
					break;
				}
			default:
				elog(ERROR, "unexpected nokv key condition %d", kind);
		}
	}
	if (s->kind != NOKV_SCAN_POINT && !s->empty)
	{
		if (lo.set && hi.set && compare_bytes(lo.data, lo.len, hi.data, hi.len) >= 0)
			s->empty = true;
		else
		{
			char	   *lok = NULL;
			char	   *hik = NULL;
			size_t		lolen = 0;
			size_t		hilen = 0;

			if (lo.set)
				lok = engine_bound(lo.data, lo.len, &lolen);
			if (hi.set)
				hik = engine_bound(hi.data, hi.len, &hilen);
			/* the iterator's engine resources go with scan_cxt */
			s->iter = nokv_kv_iter_begin(s->db, s->table.cf, lok, lolen, hik, hilen,
										 s->snapshot);
		}
	}
	MemoryContextSwitchTo(old);
}

static void
conversion_error_callback(void *arg)
{
	ConversionContext *c = (ConversionContext *) arg;

	errcontext("nokv key %s of foreign table \"%s\"",
			   key_for_message(c->key, c->key_len), RelationGetRelationName(c->rel));
}

static Datum
varlena_datum(const char *data, size_t len)
{
	struct varlena *v = palloc(VARHDRSZ + len);

	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), data, len);
	return PointerGetDatum(v);
}

/* value NULL: check the key itself */
static void
check_encoding(Relation rel, const char *key, size_t klen, const char *value, size_t vlen)
{
	if (!pg_verifymbstr(value ? value : key, (int) (value ? vlen : klen), true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 value
				 ? errmsg("nokv value of key %s is not valid text in the database encoding",
						  key_for_message(key, klen))
				 : errmsg("nokv key %s is not valid text in the database encoding",
						  key_for_message(key, klen)),
				 errdetail("Foreign table \"%s\" reads it as text.", RelationGetRelationName(rel)),
				 errhint("Declare the column as bytea to read arbitrary bytes.")));
}

/* the row (key, value, expiry) into the scan slot, in row_cxt */
static void
store_row(NokvScanState *s, TupleTableSlot *slot, const char *key, size_t klen,
		  const char *value, size_t vlen, uint64 expires_at)
{
	Datum	   *values = slot->tts_values;
	bool	   *nulls = slot->tts_isnull;
	int			natts = slot->tts_tupleDescriptor->natts;

	for (int i = 0; i < natts; i++)
		nulls[i] = true;

	if (s->cols.key_type == TEXTOID)
		check_encoding(s->rel, key, klen, NULL, 0);
	values[s->cols.key_attno - 1] = varlena_datum(key, klen);
	nulls[s->cols.key_attno - 1] = false;

	switch (s->cols.value_type)
	{
		case TEXTOID:
			check_encoding(s->rel, key, klen, value, vlen);
			/* FALLTHROUGH */
		case BYTEAOID:
			values[s->cols.value_attno - 1] = varlena_datum(value, vlen);
			break;
		case JSONBOID:
			{
				ConversionContext cc = {s->rel, key, klen};
				ErrorContextCallback errcb = {
					.previous = error_context_stack,
					.callback = conversion_error_callback,
					.arg = &cc
				};
				char	   *str;

				check_encoding(s->rel, key, klen, value, vlen);
				str = pnstrdup(value, vlen);
				error_context_stack = &errcb;
				values[s->cols.value_attno - 1] =
					DirectFunctionCall1(jsonb_in, CStringGetDatum(str));
				error_context_stack = errcb.previous;
				break;
			}
	}
	nulls[s->cols.value_attno - 1] = false;

	if (s->cols.expires_attno && expires_at != 0)
	{
		values[s->cols.expires_attno - 1] =
			TimestampTzGetDatum(nokv_kv_expiry_to_timestamptz(expires_at));
		nulls[s->cols.expires_attno - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
}

TupleTableSlot *
nokv_fdw_iterate_scan(ForeignScanState *node)
{
	NokvScanState *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!s->started)
		start_scan(node, s);
	if (s->empty)
		return slot;

	MemoryContextReset(s->row_cxt);
	old = MemoryContextSwitchTo(s->row_cxt);
	if (s->kind == NOKV_SCAN_POINT)
	{
		while (s->next_point < s->npoints)
		{
			const char *ekey = s->points[s->next_point];
			size_t		eklen = s->point_lens[s->next_point];
			size_t		vlen = 0;
			uint64		expires_at = 0;
			char	   *value;

			s->next_point++;
			value = nokv_kv_get(s->db, s->table.cf, ekey, eklen, s->snapshot, &vlen,
								&expires_at);
			if (value == NULL)
				continue;
			/* user key: after the namespace byte and the table's prefix */
			store_row(s, slot, ekey + 1 + s->table.prefix_len,
					  eklen - 1 - s->table.prefix_len, value, vlen, expires_at);
			break;
		}
	}
	else if (s->iter)
	{
		NokvKvEntry e;

		if (nokv_kv_iter_next(s->iter, &e))
			store_row(s, slot, e.key + s->table.prefix_len, e.key_len - s->table.prefix_len,
					  e.value, e.value_len, e.expires_at);
	}
	MemoryContextSwitchTo(old);
	return slot;
}

void
nokv_fdw_rescan(ForeignScanState *node)
{
	NokvScanState *s = node->fdw_state;

	/* frees the iterator (kv.c ties it to the context) */
	s->iter = NULL;
	MemoryContextReset(s->scan_cxt);
	s->started = false;
}

void
nokv_fdw_end_scan(ForeignScanState *node)
{
	NokvScanState *s = node->fdw_state;

	if (s == NULL || s->scan_cxt == NULL)
		return;
	s->iter = NULL;
	MemoryContextDelete(s->scan_cxt);
	MemoryContextDelete(s->row_cxt);
	s->scan_cxt = NULL;
}

/* ---------- modifications: planning ---------- */

static const char *
key_junk_name(Oid key_type)
{
	/* per type: row-identity names are shared across an inheritance tree */
	return key_type == TEXTOID ? "nokv_key_text" : "nokv_key_bytea";
}

void
nokv_fdw_add_update_targets(PlannerInfo *root, Index rtindex, RangeTblEntry *target_rte,
							Relation target_relation)
{
	NokvFdwColumns cols;
	Var		   *var;

	nokv_fdw_columns(target_relation, &cols);
	var = makeVar(rtindex, cols.key_attno, cols.key_type, -1, cols.key_collation, 0);
	add_row_identity_var(root, var, rtindex, key_junk_name(cols.key_type));

	/* DELETE ... RETURNING returns the row the scan read */
	if (root->parse->commandType == CMD_DELETE && root->parse->returningList != NIL)
	{
		var = makeVar(rtindex, InvalidAttrNumber, RECORDOID, -1, InvalidOid, 0);
		add_row_identity_var(root, var, rtindex, "wholerow");
	}
}

List *
nokv_fdw_plan_modify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
					 int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel = table_open(rte->relid, NoLock);
	NokvFdwColumns cols;

	nokv_fdw_columns(rel, &cols);
	table_close(rel, NoLock);
	if (plan->onConflictAction == ONCONFLICT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT ... ON CONFLICT DO UPDATE is not supported on nokv_fdw tables"),
				 errhint("Use ON CONFLICT DO NOTHING, or UPDATE the existing keys.")));
	return list_make1(makeInteger(plan->onConflictAction == ONCONFLICT_NOTHING));
}

/* ---------- modifications: execution ---------- */

static NokvModifyState *
modify_state(ResultRelInfo *rinfo, EState *estate, CmdType operation)
{
	NokvModifyState *m = palloc0(sizeof(NokvModifyState));

	m->rel = rinfo->ri_RelationDesc;
	m->operation = operation;
	nokv_fdw_table(RelationGetRelid(m->rel), &m->table);
	nokv_fdw_columns(m->rel, &m->cols);
	m->db = nokv_engine();
	m->tmp_cxt = AllocSetContextCreate(estate->es_query_cxt, "nokv_fdw modify",
									   ALLOCSET_SMALL_SIZES);
	return m;
}

void
nokv_fdw_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *fdw_private,
					  int subplan_index, int eflags)
{
	NokvModifyState *m;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	m = modify_state(rinfo, mtstate->ps.state, mtstate->operation);
	m->skip_existing = intVal(linitial(fdw_private)) != 0;
	if (m->operation == CMD_UPDATE || m->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		m->key_junk = ExecFindJunkAttributeInTlist(subplan->targetlist,
												   key_junk_name(m->cols.key_type));
		if (!AttributeNumberIsValid(m->key_junk))
			elog(ERROR, "could not find the nokv key junk column");
		if (m->operation == CMD_DELETE)
			m->wholerow_junk = ExecFindJunkAttributeInTlist(subplan->targetlist, "wholerow");
	}
	rinfo->ri_FdwState = m;
}

void
nokv_fdw_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;
	NokvModifyState *m = modify_state(rinfo, mtstate->ps.state, CMD_INSERT);

	if (plan && plan->onConflictAction == ONCONFLICT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT ... ON CONFLICT DO UPDATE is not supported on nokv_fdw tables"),
				 errhint("Use ON CONFLICT DO NOTHING, or UPDATE the existing keys.")));
	m->skip_existing = plan && plan->onConflictAction == ONCONFLICT_NOTHING;
	rinfo->ri_FdwState = m;
}

void
nokv_fdw_end_modify(EState *estate, ResultRelInfo *rinfo)
{
	NokvModifyState *m = rinfo->ri_FdwState;

	if (m && m->tmp_cxt)
		MemoryContextDelete(m->tmp_cxt);
	rinfo->ri_FdwState = NULL;
}

void
nokv_fdw_end_insert(EState *estate, ResultRelInfo *rinfo)
{
	nokv_fdw_end_modify(estate, rinfo);
}

int
nokv_fdw_updatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

static void
not_null(NokvModifyState *m, const char *column)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
					column, RelationGetRelationName(m->rel)),
			 errdetail("nokv keys and values cannot be null.")));
}

/* a row of the slot as engine key, value bytes and expiry (in tmp_cxt) */
typedef struct KvRow
{
	char	   *key;			/* engine key */
	size_t		klen;
	const char *value;
	size_t		vlen;
	uint64		expires_at;
} KvRow;

static void
engine_key_of(NokvModifyState *m, Datum d, char **key, size_t *klen)
{
	const char *data;
	int			len;
	size_t		ulen;
	char	   *ukey;

	datum_bytes(d, &data, &len);
	ukey = with_prefix(&m->table, data, len, &ulen);
	*key = nokv_kv_key(ukey, ulen, klen);
}

static void
slot_row(NokvModifyState *m, TupleTableSlot *slot, KvRow *row)
{
	bool		isnull;
	Datum		d;

	slot_getallattrs(slot);
	d = slot->tts_values[m->cols.key_attno - 1];
	if (slot->tts_isnull[m->cols.key_attno - 1])
		not_null(m, "key");
	engine_key_of(m, d, &row->key, &row->klen);

	d = slot->tts_values[m->cols.value_attno - 1];
	if (slot->tts_isnull[m->cols.value_attno - 1])
		not_null(m, "value");
	if (m->cols.value_type == JSONBOID)
	{
		Jsonb	   *jb = DatumGetJsonbP(d);
		char	   *str = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		row->value = str;
		row->vlen = strlen(str);
	}
	else
	{
		int			len;

		datum_bytes(d, &row->value, &len);
		row->vlen = len;
	}

	row->expires_at = 0;
	if (m->cols.expires_attno)
	{
		isnull = slot->tts_isnull[m->cols.expires_attno - 1];
		if (!isnull)
		{
			TimestampTz t = DatumGetTimestampTz(slot->tts_values[m->cols.expires_attno - 1]);

			if (TIMESTAMP_NOT_FINITE(t))
				ereport(ERROR,
						(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						 errmsg("expires_at must be a finite timestamp"),
						 errhint("Use NULL for a key that never expires.")));
			row->expires_at = nokv_kv_timestamptz_to_expiry(t);
			if (row->expires_at <= nokv_kv_now_ms())
				ereport(ERROR,
						(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						 errmsg("expires_at must be in the future"),
						 errhint("Delete the key to remove it now.")));
		}
	}
	nokv_kv_check_value_size(row->klen, row->vlen);
}

static void
duplicate_key(NokvModifyState *m, const char *ekey, size_t eklen)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("duplicate key value in foreign table \"%s\"", RelationGetRelationName(m->rel)),
			 errdetail("Key %s already exists.",
					   key_for_message(ekey + 1 + m->table.prefix_len,
									   eklen - 1 - m->table.prefix_len)),
			 errhint("Use UPDATE to change an existing key, or INSERT ... ON CONFLICT DO NOTHING to skip it.")));
}

/*
 * READ COMMITTED: the key, which the caller holds locked, must still have
 * the value the statement's snapshot read; nokv_fdw has no EvalPlanQual
 * to re-check a row another transaction changed meanwhile.
 */
static void
check_unchanged(NokvModifyState *m, EState *estate, const char *ekey, size_t eklen)
{
	size_t		l1 = 0;
	size_t		l2 = 0;
	uint64		e1 = 0;
	uint64		e2 = 0;
	char	   *v1;
	char	   *v2;

	if (IsolationUsesXactSnapshot())
		return;					/* nokv_kv_lock already refused a newer version */
	v1 = nokv_kv_get(m->db, m->table.cf, ekey, eklen, estate->es_snapshot, &l1, &e1);
	v2 = nokv_kv_get(m->db, m->table.cf, ekey, eklen, GetLatestSnapshot(), &l2, &e2);
	if ((v1 == NULL) != (v2 == NULL) ||
		(v1 && (l1 != l2 || e1 != e2 || memcmp(v1, v2, l1) != 0)))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("Another transaction changed nokv key %s of foreign table \"%s\" after this statement started.",
						   key_for_message(ekey + 1 + m->table.prefix_len,
										   eklen - 1 - m->table.prefix_len),
						   RelationGetRelationName(m->rel)),
				 errhint("Retry the statement.")));
}

/* INSERT of one row: true if written, false if skipped (DO NOTHING) */
static bool
insert_row(NokvModifyState *m, TupleTableSlot *slot)
{
	KvRow		row;

	slot_row(m, slot, &row);
	if (nokv_kv_lock(m->db, m->table.cf, row.key, row.klen))
	{
		nokv_kv_unlock(m->table.cf, row.key, row.klen);
		if (m->skip_existing)
			return false;
		duplicate_key(m, row.key, row.klen);
	}
	nokv_kv_write_locked(m->db, m->table.cf, row.key, row.klen, row.value, row.vlen,
						 row.expires_at);
	nokv_kv_unlock(m->table.cf, row.key, row.klen);
	return true;
}

TupleTableSlot *
nokv_fdw_exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					 TupleTableSlot *planSlot)
{
	NokvModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->tmp_cxt);
	bool		done = insert_row(m, slot);

	MemoryContextSwitchTo(old);
	MemoryContextReset(m->tmp_cxt);
	return done ? slot : NULL;
}

TupleTableSlot **
nokv_fdw_exec_batch_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot **slots,
						   TupleTableSlot **planSlots, int *numSlots)
{
	NokvModifyState *m = rinfo->ri_FdwState;
	MemoryContext old;
	int			n = 0;

	/*
	 * The executor reports the first *numSlots returned slots as inserted.
	 * They go in an array of our own: the executor reuses its slots array
	 * for the next batch, so it must stay as it is.
	 */
	if (m->inserted_size < *numSlots)
	{
		m->inserted = m->inserted
			? repalloc(m->inserted, sizeof(TupleTableSlot *) * *numSlots)
			: MemoryContextAlloc(estate->es_query_cxt, sizeof(TupleTableSlot *) * *numSlots);
		m->inserted_size = *numSlots;
	}
	old = MemoryContextSwitchTo(m->tmp_cxt);
	for (int i = 0; i < *numSlots; i++)
	{
		if (insert_row(m, slots[i]))
			m->inserted[n++] = slots[i];
		MemoryContextReset(m->tmp_cxt);
	}
	MemoryContextSwitchTo(old);
	*numSlots = n;
	return m->inserted;
}

/*
 * Rows per ExecForeignBatchInsert: the batch_size option, or 1 where the
 * executor needs each row back at once (RETURNING, row triggers, WITH
 * CHECK OPTION), as postgres_fdw does.
 */
int
nokv_fdw_batch_size(ResultRelInfo *rinfo)
{
	NokvFdwTable t;

	if (rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	nokv_fdw_table(RelationGetRelid(rinfo->ri_RelationDesc), &t);
	return t.batch_size;
}

static void
old_key(NokvModifyState *m, TupleTableSlot *planSlot, char **key, size_t *klen)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, m->key_junk, &isnull);

	if (isnull)
		elog(ERROR, "nokv key junk column is null");
	engine_key_of(m, d, key, klen);
}

TupleTableSlot *
nokv_fdw_exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					 TupleTableSlot *planSlot)
{
	NokvModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->tmp_cxt);
	KvRow		row;
	char	   *okey;
	size_t		oklen;
	bool		done = false;

	old_key(m, planSlot, &okey, &oklen);
	slot_row(m, slot, &row);
	if (nokv_kv_lock(m->db, m->table.cf, okey, oklen))
	{
		check_unchanged(m, estate, okey, oklen);
		if (oklen == row.klen && memcmp(okey, row.key, oklen) == 0)
			nokv_kv_write_locked(m->db, m->table.cf, row.key, row.klen, row.value, row.vlen,
								 row.expires_at);
		else
		{
			/* a new key: the old one goes, the new one must not exist */
			if (nokv_kv_lock(m->db, m->table.cf, row.key, row.klen))
				duplicate_key(m, row.key, row.klen);
			nokv_kv_write_locked(m->db, m->table.cf, okey, oklen, NULL, 0, 0);
			nokv_kv_write_locked(m->db, m->table.cf, row.key, row.klen, row.value, row.vlen,
								 row.expires_at);
			nokv_kv_unlock(m->table.cf, row.key, row.klen);
		}
		done = true;
	}
	/* else deleted by a transaction that committed meanwhile: skip, as heap does */
	nokv_kv_unlock(m->table.cf, okey, oklen);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->tmp_cxt);
	return done ? slot : NULL;
}

TupleTableSlot *
nokv_fdw_exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					 TupleTableSlot *planSlot)
{
	NokvModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->tmp_cxt);
	char	   *okey;
	size_t		oklen;
	bool		done = false;

	old_key(m, planSlot, &okey, &oklen);
	if (nokv_kv_lock(m->db, m->table.cf, okey, oklen))
	{
		check_unchanged(m, estate, okey, oklen);
		nokv_kv_write_locked(m->db, m->table.cf, okey, oklen, NULL, 0, 0);
		done = true;
	}
	nokv_kv_unlock(m->table.cf, okey, oklen);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->tmp_cxt);
	if (!done)
		return NULL;

	if (AttributeNumberIsValid(m->wholerow_junk))
	{
		bool		isnull;
		Datum		d = ExecGetJunkAttribute(planSlot, m->wholerow_junk, &isnull);
		HeapTupleHeader td;
		HeapTupleData tuple;

		if (isnull)
			elog(ERROR, "nokv wholerow junk column is null");
		td = DatumGetHeapTupleHeader(d);
		tuple.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = RelationGetRelid(m->rel);
		tuple.t_data = td;
		ExecForceStoreHeapTuple(&tuple, slot, false);
		ExecMaterializeSlot(slot);
	}
	return slot;
}

/* ---------- TRUNCATE ---------- */

/*
 * Deletes every live key the table covers (its column family, its
 * key_prefix) through kv.c, transactionally: ROLLBACK brings them back.
 * READ COMMITTED reads the newest committed keys; REPEATABLE READ its
 * snapshot's (a key committed after it gives a serialization error).
 */
void
nokv_fdw_truncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	nokv_db    *db = nokv_engine();
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "nokv_fdw truncate",
											  ALLOCSET_DEFAULT_SIZES);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = lfirst(lc);
		NokvFdwTable t;
		NokvFdwColumns cols;
		Snapshot	snap;
		NokvKvIter *it;
		NokvKvEntry e;
		KeyBound	hi = {0};
		char	   *lok = NULL;
		char	   *hik = NULL;
		size_t		lolen = 0;
		size_t		hilen = 0;
		MemoryContext old;
		int			n = 0;

		nokv_fdw_table(RelationGetRelid(rel), &t);
		nokv_fdw_columns(rel, &cols);
		snap = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot()
								: GetLatestSnapshot());
		old = MemoryContextSwitchTo(tmp);
		if (t.prefix_len > 0)
		{
			lok = engine_bound(t.prefix, t.prefix_len, &lolen);
			hi = prefix_successor(t.prefix, t.prefix_len);
			if (hi.set)
				hik = engine_bound(hi.data, hi.len, &hilen);
		}
		it = nokv_kv_iter_begin(db, t.cf, lok, lolen, hik, hilen, snap);
		MemoryContextSwitchTo(old);
		while (nokv_kv_iter_next(it, &e))
		{
			char	   *key;
			size_t		klen;

			key = engine_bound(e.key, e.key_len, &klen);
			(void) nokv_kv_delete(db, t.cf, key, klen);
			pfree(key);
			if (++n % 1024 == 0)
				CHECK_FOR_INTERRUPTS();
		}
		nokv_kv_iter_end(it);
		MemoryContextReset(tmp);
		UnregisterSnapshot(snap);
	}
	MemoryContextDelete(tmp);
}
