/*-------------------------------------------------------------------------
 *
 * nokv_fdw.c
 *	  The nokv foreign data wrapper: handler, option validator, column
 *	  checks, planning (sizes, paths, pushed key conditions) and EXPLAIN.
 *
 * A foreign table reads and writes the key-value namespace of kv.c, the
 * one nokv_put/nokv_get/nokv_scan use, so both surfaces see the same keys.
 * The engine keeps keys in byte order, which decides what can be pushed:
 *
 *	key = expr, key = ANY(array)	point lookups; for any deterministic
 *									collation (equality is then bytewise)
 *	key <, <=, >, >= expr			a range of the ordered iterator; only
 *									where the comparison orders like bytes:
 *									bytea, or text under COLLATE "C"/"POSIX"
 *	key LIKE 'p%', key ^@ p			the range of keys starting with p;
 *									deterministic collations (a byte prefix
 *									is a character prefix, and rows are
 *									rechecked against the pattern)
 *
 * Every scan returns rows in byte order of the key, so a key whose column
 * collation orders like bytes gets pathkeys and ORDER BY key needs no Sort.
 * Join clauses key = outer.expr give parameterized point paths (the
 * postgres_fdw pattern: joininfo plus equivalence classes), so a nested
 * loop does one lookup per outer row.
 *
 * Pushed clauses go into fdw_exprs whole: setrefs and nestloop-parameter
 * replacement process them like any plan expression, the executor
 * evaluates the non-key argument at BeginForeignScan/ReScan and EXPLAIN
 * deparses them as "Key Cond".
 *
 * src/fdw/nokv_fdw.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"
#include "nokv_fdw.h"

PG_FUNCTION_INFO_V1(nokv_fdw_handler);
PG_FUNCTION_INFO_V1(nokv_fdw_validator);

/*
 * Costs in units of seq_page_cost: a point lookup searches the memtables
 * and at most one SST block per level (bloom filters skip the others); a
 * seek positions the merging iterator; each further row is a step of it.
 */
#define NOKV_LOOKUP_COST	1.0
#define NOKV_SEEK_COST		1.0
#define NOKV_ROW_COST		0.01

/* how long a backend reuses the engine's row count for planning */
#define NOKV_STATS_REUSE_US 1000000

/* ---------- options ---------- */

typedef struct NokvFdwOption
{
	const char *name;
	Oid			context;		/* catalog the option belongs to */
} NokvFdwOption;

static const NokvFdwOption valid_options[] = {
	{"batch_size", ForeignServerRelationId},
	{"batch_size", ForeignTableRelationId},
	{"column_family", ForeignTableRelationId},
	{"key_prefix", ForeignTableRelationId},
	{NULL, InvalidOid}
};

static int
parse_batch_size(DefElem *def)
{
	char	   *val = defGetString(def);
	int			n;

	if (!parse_int(val, &n, 0, NULL) || n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"batch_size\": \"%s\"", val),
				 errhint("batch_size must be a positive integer.")));
	return n;
}

static const char *
catalog_name(Oid catalog)
{
	switch (catalog)
	{
		case ForeignDataWrapperRelationId:
			return "foreign-data wrapper";
		case ForeignServerRelationId:
			return "server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "column";
	}
	return "object";
}

/*
 * nokv_fdw_validator(options text[], catalog oid)
 *
 * The server is the local engine: it takes no connection options.  Foreign
 * tables take column_family, key_prefix and batch_size; servers batch_size.
 */
Datum
nokv_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	List	   *seen = NIL;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		bool		valid = false;

		for (const NokvFdwOption *o = valid_options; o->name; o++)
			if (o->context == catalog && strcmp(o->name, def->defname) == 0)
				valid = true;
		if (!valid)
		{
			StringInfoData names;

			initStringInfo(&names);
			for (const NokvFdwOption *o = valid_options; o->name; o++)
				if (o->context == catalog)
					appendStringInfo(&names, "%s%s", names.len ? ", " : "", o->name);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for a nokv_fdw %s", def->defname,
							catalog_name(catalog)),
					 names.len
					 ? errhint("Valid options in this context are: %s.", names.data)
					 : errhint("There are no valid options in this context.")));
		}
		if (list_member(seen, makeString(def->defname)))
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("option \"%s\" given more than once", def->defname)));
		seen = lappend(seen, makeString(def->defname));

		if (strcmp(def->defname, "batch_size") == 0)
			(void) parse_batch_size(def);
		else if (strcmp(def->defname, "column_family") == 0)
			(void) nokv_kv_cf(defGetString(def));
		else if (strcmp(def->defname, "key_prefix") == 0)
		{
			size_t		len = strlen(defGetString(def));

			if (len >= NOKV_KV_MAX_KEY)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("key_prefix of %zu bytes leaves no room for keys", len),
						 errdetail("Keys, prefix included, have at most %d bytes.",
								   NOKV_KV_MAX_KEY)));
		}
	}
	PG_RETURN_VOID();
}

void
nokv_fdw_table(Oid relid, NokvFdwTable *t)
{
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	ListCell   *lc;

	t->cf_name = "default";
	t->prefix = "";
	t->prefix_len = 0;
	t->batch_size = 1;
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "batch_size") == 0)
			t->batch_size = parse_batch_size(def);
	}
	foreach(lc, table->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "batch_size") == 0)
			t->batch_size = parse_batch_size(def);
		else if (strcmp(def->defname, "column_family") == 0)
			t->cf_name = defGetString(def);
		else if (strcmp(def->defname, "key_prefix") == 0)
		{
			t->prefix = defGetString(def);
			t->prefix_len = strlen(t->prefix);
		}
	}
	t->cf = nokv_kv_cf(t->cf_name);
}

/* ---------- columns ---------- */

void
nokv_fdw_columns(Relation rel, NokvFdwColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);

	memset(cols, 0, sizeof(*cols));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			continue;
		if (strcmp(name, "key") == 0)
		{
			if (att->atttypid != TEXTOID && att->atttypid != BYTEAOID)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"key\" of foreign table \"%s\" has unsupported type %s",
								RelationGetRelationName(rel), format_type_be(att->atttypid)),
						 errhint("The key column of a nokv_fdw table is text or bytea.")));
			cols->key_attno = att->attnum;
			cols->key_type = att->atttypid;
			cols->key_collation = att->attcollation;
		}
		else if (strcmp(name, "value") == 0)
		{
			if (att->atttypid != TEXTOID && att->atttypid != BYTEAOID &&
				att->atttypid != JSONBOID)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"value\" of foreign table \"%s\" has unsupported type %s",
								RelationGetRelationName(rel), format_type_be(att->atttypid)),
						 errhint("The value column of a nokv_fdw table is bytea, text or jsonb.")));
			cols->value_attno = att->attnum;
			cols->value_type = att->atttypid;
		}
		else if (strcmp(name, "expires_at") == 0)
		{
			if (att->atttypid != TIMESTAMPTZOID)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"expires_at\" of foreign table \"%s\" has unsupported type %s",
								RelationGetRelationName(rel), format_type_be(att->atttypid)),
						 errhint("The expires_at column of a nokv_fdw table is timestamp with time zone.")));
			cols->expires_attno = att->attnum;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a nokv column",
							name, RelationGetRelationName(rel)),
					 errhint("A nokv_fdw table has the columns key, value and optionally expires_at.")));
	}
	if (cols->key_attno == 0 || cols->value_attno == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no column \"%s\"",
						RelationGetRelationName(rel), cols->key_attno == 0 ? "key" : "value"),
				 errhint("A nokv_fdw table has the columns key, value and optionally expires_at.")));
}

/* ---------- row estimates from the engine ---------- */

typedef struct CfCounts
{
	const char *cf_name;
	double		entries;
	double		bytes;
	double		memtable_bytes;
} CfCounts;

static void
collect_cf_counts(void *arg, const nokv_stat *s)
{
	CfCounts   *c = (CfCounts *) arg;
	char		name[96];

	if (strcmp(s->name, "memtable.bytes") == 0)
	{
		c->memtable_bytes = s->value;
		return;
	}
	snprintf(name, sizeof(name), "lsm.column_families.%s.entries", c->cf_name);
	if (strcmp(s->name, name) == 0)
	{
		c->entries = s->value;
		return;
	}
	snprintf(name, sizeof(name), "lsm.column_families.%s.bytes", c->cf_name);
	if (strcmp(s->name, name) == 0)
		c->bytes = s->value;
}

/*
 * Keys in a column family: the SST entries of the family (all versions,
 * deletes included, so an upper bound once data is compacted) plus the
 * memtables' bytes at the family's average entry size.  Cached for a
 * second per family: the figure walks every SST's properties.
 */
static double
estimate_cf_rows(int cf, const char *cf_name)
{
	static double cached[NOKV_CF_COUNT];
	static TimestampTz cached_at[NOKV_CF_COUNT];
	TimestampTz now = GetCurrentTimestamp();
	nokv_db    *db;
	CfCounts	c = {.cf_name = cf_name};
	double		avg;

	if (cached_at[cf] != 0 && now - cached_at[cf] < NOKV_STATS_REUSE_US)
		return cached[cf];
	db = nokv_engine();
	nokv_stats_foreach(db, collect_cf_counts, &c);
	avg = c.entries > 0 ? Max(c.bytes / c.entries, 16.0) : 128.0;
	cached[cf] = c.entries + c.memtable_bytes / (avg + 32.0);
	cached_at[cf] = now;
	return cached[cf];
}

/* ---------- classifying key conditions ---------- */

/* what the planner knows of a foreign table (RelOptInfo.fdw_private) */
typedef struct NokvRelInfo
{
	NokvFdwTable table;
	NokvFdwColumns cols;
	Oid			btree_family;	/* the key type's btree operator family */
	bool		ordered;		/* the key column's order is byte order */
	double		total_rows;		/* keys in the table */
} NokvRelInfo;

typedef struct NokvKeyCond
{
	RestrictInfo *rinfo;
	NokvCondKind kind;
	int			arg;			/* argument of the clause that is the value */
} NokvKeyCond;

static bool
collation_is_bytewise(Oid collation)
{
	return collation == C_COLLATION_OID || collation == POSIX_COLLATION_OID;
}

static bool
is_key_var(Node *node, RelOptInfo *baserel, NokvRelInfo *info)
{
	if (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node && IsA(node, Var) &&
		((Var *) node)->varno == baserel->relid &&
		((Var *) node)->varlevelsup == 0 &&
		((Var *) node)->varattno == info->cols.key_attno;
}

/* an expression the executor can evaluate before the scan reads a row */
static bool
is_pushable_value(PlannerInfo *root, Node *expr, RelOptInfo *baserel)
{
	return !bms_is_member(baserel->relid, pull_varnos(root, expr)) &&
		!contain_volatile_functions(expr) &&
		!contain_subplans(expr);
}

/*
 * The key condition a clause is, or false.  Equality needs a deterministic
 * collation (then it is byte equality); ranges need byte order; LIKE and
 * ^@ a deterministic collation (a byte prefix, rechecked).
 */
static bool
classify_clause(PlannerInfo *root, RelOptInfo *baserel, NokvRelInfo *info,
				RestrictInfo *rinfo, NokvKeyCond *cond)
{
	Expr	   *clause = rinfo->clause;
	Oid			keytype = info->cols.key_type;

	if (rinfo->pseudoconstant)
		return false;
	cond->rinfo = rinfo;
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *left;
		Node	   *right;
		Oid			collation = op->inputcollid;
		bool		key_left;
		int			strategy;
		Oid			lefttype;
		Oid			righttype;

		if (list_length(op->args) != 2)
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);
		if (is_key_var(left, baserel, info) && is_pushable_value(root, right, baserel))
			key_left = true;
		else if (is_key_var(right, baserel, info) && is_pushable_value(root, left, baserel))
			key_left = false;
		else
			return false;
		cond->arg = key_left ? 1 : 0;

		if ((op->opno == OID_TEXT_LIKE_OP && keytype == TEXTOID) ||
			(op->opno == OID_BYTEA_LIKE_OP && keytype == BYTEAOID) ||
			(op->opno == TextPrefixOperator && keytype == TEXTOID))
		{
			if (!key_left)
				return false;
			if (keytype == TEXTOID &&
				(!OidIsValid(collation) || !get_collation_isdeterministic(collation)))
				return false;
			cond->kind = op->opno == TextPrefixOperator ? NOKV_COND_PREFIX : NOKV_COND_LIKE;
			/* a constant pattern without a fixed prefix would scan everything */
			if (cond->kind == NOKV_COND_LIKE && IsA(right, Const))
			{
				Const	   *c = (Const *) right;
				char	   *p;

				if (c->constisnull)
					return true;	/* no rows: cheap */
				p = VARDATA_ANY(DatumGetPointer(c->constvalue));
				if (VARSIZE_ANY_EXHDR(DatumGetPointer(c->constvalue)) == 0 ||
					p[0] == '%' || p[0] == '_')
					return false;
			}
			return true;
		}

		strategy = get_op_opfamily_strategy(op->opno, info->btree_family);
		if (strategy == 0)
			return false;
		get_op_opfamily_properties(op->opno, info->btree_family, false,
								   &strategy, &lefttype, &righttype);
		if (lefttype != keytype || righttype != keytype)
			return false;
		if (strategy == BTEqualStrategyNumber)
		{
			if (keytype == TEXTOID &&
				(!OidIsValid(collation) || !get_collation_isdeterministic(collation)))
				return false;
			cond->kind = NOKV_COND_EQ;
			return true;
		}
		if (keytype == TEXTOID && !collation_is_bytewise(collation))
			return false;
		/* with the key on the right, key > x reads x < key */
		if (!key_left)
			strategy = BTMaxStrategyNumber + 1 - strategy;
		switch (strategy)
		{
			case BTLessStrategyNumber:
				cond->kind = NOKV_COND_LT;
				break;
			case BTLessEqualStrategyNumber:
				cond->kind = NOKV_COND_LE;
				break;
			case BTGreaterEqualStrategyNumber:
				cond->kind = NOKV_COND_GE;
				break;
			case BTGreaterStrategyNumber:
				cond->kind = NOKV_COND_GT;
				break;
			default:
				return false;
		}
		return true;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Node	   *left = linitial(saop->args);
		Node	   *right = lsecond(saop->args);
		int			strategy;
		Oid			lefttype;
		Oid			righttype;

		if (!saop->useOr || !is_key_var(left, baserel, info) ||
			!is_pushable_value(root, right, baserel))
			return false;
		if (get_op_opfamily_strategy(saop->opno, info->btree_family) != BTEqualStrategyNumber)
			return false;
		get_op_opfamily_properties(saop->opno, info->btree_family, false,
								   &strategy, &lefttype, &righttype);
		if (lefttype != keytype || righttype != keytype)
			return false;
		if (keytype == TEXTOID &&
			(!OidIsValid(saop->inputcollid) || !get_collation_isdeterministic(saop->inputcollid)))
			return false;
		cond->kind = NOKV_COND_IN;
		cond->arg = 1;
		return true;
	}
	return false;
}

/* the key conditions among a list of RestrictInfos */
static List *
classify_all(PlannerInfo *root, RelOptInfo *baserel, NokvRelInfo *info, List *rinfos)
{
	List	   *conds = NIL;
	ListCell   *lc;

	foreach(lc, rinfos)
	{
		NokvKeyCond c;

		if (classify_clause(root, baserel, info, lfirst_node(RestrictInfo, lc), &c))
		{
			NokvKeyCond *copy = palloc(sizeof(c));

			*copy = c;
			conds = lappend(conds, copy);
		}
	}
	return conds;
}

/* points a condition looks up, for estimates (an unknown array: 10) */
static double
cond_points(NokvKeyCond *cond)
{
	ScalarArrayOpExpr *saop;
	Node	   *arr;

	if (cond->kind == NOKV_COND_EQ)
		return 1;
	saop = (ScalarArrayOpExpr *) cond->rinfo->clause;
	arr = lsecond(saop->args);
	if (IsA(arr, Const) && !((Const *) arr)->constisnull)
		return Max(1, ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) arr)->constvalue)),
									 ARR_DIMS(DatumGetArrayTypeP(((Const *) arr)->constvalue))));
	if (IsA(arr, ArrayExpr))
		return Max(1, list_length(((ArrayExpr *) arr)->elements));
	return 10;
}

/*
 * The conditions a scan is driven by, from a list of classified ones: the
 * first point condition (EQ before IN), else every range condition.
 */
static List *
choose_conds(List *conds, NokvScanKind *kind)
{
	List	   *ranges = NIL;
	NokvKeyCond *in = NULL;
	ListCell   *lc;

	foreach(lc, conds)
	{
		NokvKeyCond *c = lfirst(lc);

		if (c->kind == NOKV_COND_EQ)
		{
			*kind = NOKV_SCAN_POINT;
			return list_make1(c);
		}
		if (c->kind == NOKV_COND_IN)
		{
			if (in == NULL)
				in = c;
		}
		else
			ranges = lappend(ranges, c);
	}
	if (in)
	{
		*kind = NOKV_SCAN_POINT;
		return list_make1(in);
	}
	*kind = ranges ? NOKV_SCAN_RANGE : NOKV_SCAN_FULL;
	return ranges;
}

/* ---------- planning ---------- */

/* rows a scan driven by chosen returns before the other quals */
static double
scan_rows(PlannerInfo *root, RelOptInfo *baserel, NokvRelInfo *info,
		  NokvScanKind kind, List *chosen)
{
	List	   *clauses = NIL;
	ListCell   *lc;

	if (kind == NOKV_SCAN_POINT)
		return cond_points(linitial(chosen));
	if (kind == NOKV_SCAN_FULL)
		return info->total_rows;
	foreach(lc, chosen)
		clauses = lappend(clauses, ((NokvKeyCond *) lfirst(lc))->rinfo);
	return info->total_rows *
		clauselist_selectivity(root, clauses, baserel->relid, JOIN_INNER, NULL);
}

static void
scan_cost(NokvScanKind kind, double fetched, double rows, QualCost *qual,
		  Cost *startup, Cost *total)
{
	double		per_row = cpu_tuple_cost + qual->per_tuple;

	*startup = qual->startup;
	*total = *startup;
	switch (kind)
	{
		case NOKV_SCAN_POINT:
			*total = *startup + fetched * (NOKV_LOOKUP_COST * seq_page_cost + per_row);
			break;
		case NOKV_SCAN_RANGE:
			*startup += NOKV_SEEK_COST * seq_page_cost;
			*total = *startup + fetched * (NOKV_ROW_COST * seq_page_cost + per_row);
			break;
		case NOKV_SCAN_FULL:
			*startup += NOKV_SEEK_COST * seq_page_cost;
			*total = *startup + fetched * (NOKV_ROW_COST * seq_page_cost + per_row);
			break;
	}
	(void) rows;
}

static void
nokvGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	NokvRelInfo *info = palloc0(sizeof(NokvRelInfo));
	Relation	rel;
	List	   *conds = NIL;
	List	   *chosen;
	List	   *others = NIL;
	NokvScanKind kind;
	ListCell   *lc;
	double		fetched;

	nokv_fdw_table(foreigntableid, &info->table);
	rel = table_open(foreigntableid, NoLock);
	nokv_fdw_columns(rel, &info->cols);
	table_close(rel, NoLock);
	info->btree_family = info->cols.key_type == TEXTOID ? TEXT_BTREE_FAM_OID : BYTEA_BTREE_FAM_OID;
	info->ordered = info->cols.key_type == BYTEAOID ||
		collation_is_bytewise(info->cols.key_collation);
	info->total_rows = estimate_cf_rows(info->table.cf, info->table.cf_name);
	baserel->fdw_private = info;

	conds = classify_all(root, baserel, info, baserel->baserestrictinfo);
	chosen = choose_conds(conds, &kind);
	fetched = scan_rows(root, baserel, info, kind, chosen);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		bool		driving = false;
		ListCell   *lc2;

		foreach(lc2, chosen)
			if (((NokvKeyCond *) lfirst(lc2))->rinfo == ri)
				driving = true;
		if (!driving)
			others = lappend(others, ri);
	}
	baserel->tuples = info->total_rows;
	baserel->rows = clamp_row_est(fetched *
								  clauselist_selectivity(root, others, baserel->relid,
														 JOIN_INNER, NULL));
}

/* generate_implied_equalities_for_column: members that are the key column */
static bool
ec_member_is_key(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				 EquivalenceMember *em, void *arg)
{
	return is_key_var((Node *) em->em_expr, rel, (NokvRelInfo *) arg);
}

/* pathkeys of a scan: ascending key, if the key column orders like bytes */
static List *
key_pathkeys(PlannerInfo *root, RelOptInfo *baserel, NokvRelInfo *info)
{
	Var		   *var;
	Oid			lt;

	if (!info->ordered)
		return NIL;
	var = makeVar(baserel->relid, info->cols.key_attno, info->cols.key_type, -1,
				  info->cols.key_collation, 0);
	lt = get_opfamily_member(info->btree_family, info->cols.key_type, info->cols.key_type,
							 BTLessStrategyNumber);
	return build_expression_pathkey(root, (Expr *) var, NULL, lt, baserel->relids, false);
}

static void
nokvGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	NokvRelInfo *info = baserel->fdw_private;
	List	   *pathkeys = key_pathkeys(root, baserel, info);
	List	   *candidates = NIL;
	List	   *outers = NIL;
	List	   *conds = NIL;
	List	   *chosen;
	NokvScanKind kind;
	QualCost	qual;
	Cost		startup;
	Cost		total;
	ListCell   *lc;

	/* the unparameterized path: the best the base restrictions allow */
	conds = classify_all(root, baserel, info, baserel->baserestrictinfo);
	chosen = choose_conds(conds, &kind);
	cost_qual_eval(&qual, baserel->baserestrictinfo, root);
	scan_cost(kind, scan_rows(root, baserel, info, kind, chosen), baserel->rows, &qual,
			  &startup, &total);
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, pathkeys,
													   baserel->lateral_relids, NULL, NIL));

	/*
	 * Parameterized point paths: key = expr of other relations, from join
	 * clauses and from equivalence classes (postgres_fdw's pattern).
	 */
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(ri, baserel))
			candidates = lappend(candidates, ri);
	}
	if (baserel->has_eclass_joins)
		candidates = list_concat(candidates,
								 generate_implied_equalities_for_column(root, baserel,
																		ec_member_is_key, info,
																		baserel->lateral_referencers));
	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		NokvKeyCond c;
		Relids		required_outer;
		ParamPathInfo *ppi;
		double		rows;

		if (!classify_clause(root, baserel, info, ri, &c) || c.kind != NOKV_COND_EQ)
			continue;
		required_outer = bms_union(ri->clause_relids, baserel->lateral_relids);
		required_outer = bms_del_member(required_outer, baserel->relid);
		if (bms_is_empty(required_outer))
			continue;
		if (list_member(outers, required_outer))
			continue;
		outers = lappend(outers, required_outer);

		ppi = get_baserel_parampathinfo(root, baserel, required_outer);
		/* at most one row per lookup; the join sizes use ppi_rows */
		rows = Min(ppi->ppi_rows, clamp_row_est(baserel->rows / Max(1.0, info->total_rows)));
		cost_qual_eval(&qual, list_concat_copy(baserel->baserestrictinfo, ppi->ppi_clauses), root);
		scan_cost(NOKV_SCAN_POINT, 1, rows, &qual, &startup, &total);
		add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
														   startup, total, pathkeys,
														   required_outer, NULL, NIL));
	}
}

/*
 * The scan_clauses are the base restrictions plus, for a parameterized
 * path, its join clauses; they are classified again and the best become
 * the pushed conditions.  Conditions a scan enforces exactly (points and
 * range bounds) leave the local quals; LIKE and ^@ only narrow the scan to
 * a prefix and stay as a recheck.
 */
static ForeignScan *
nokvGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				   ForeignPath *best_path, List *tlist, List *scan_clauses,
				   Plan *outer_plan)
{
	NokvRelInfo *info = baserel->fdw_private;
	List	   *conds = NIL;
	List	   *chosen;
	List	   *local = NIL;
	List	   *exprs = NIL;
	List	   *kinds = NIL;
	List	   *args = NIL;
	NokvScanKind kind;
	ListCell   *lc;

	conds = classify_all(root, baserel, info, scan_clauses);
	chosen = choose_conds(conds, &kind);
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		NokvKeyCond *driving = NULL;
		ListCell   *lc2;

		if (ri->pseudoconstant)
			continue;
		foreach(lc2, chosen)
			if (((NokvKeyCond *) lfirst(lc2))->rinfo == ri)
				driving = lfirst(lc2);
		if (driving == NULL || driving->kind == NOKV_COND_LIKE ||
			driving->kind == NOKV_COND_PREFIX)
			local = lappend(local, ri->clause);
	}
	foreach(lc, chosen)
	{
		NokvKeyCond *c = lfirst(lc);
		Expr	   *clause = c->rinfo->clause;
		int			arg = c->arg;

		/* show x = key as key = x (equivalence classes generate the former) */
		if (arg == 0 && IsA(clause, OpExpr) && OidIsValid(get_commutator(((OpExpr *) clause)->opno)))
		{
			OpExpr	   *op = copyObject((OpExpr *) clause);

			op->opno = get_commutator(op->opno);
			op->opfuncid = get_opcode(op->opno);
			op->args = list_make2(lsecond(op->args), linitial(op->args));
			clause = (Expr *) op;
			arg = 1;
		}
		exprs = lappend(exprs, clause);
		kinds = lappend_int(kinds, c->kind);
		args = lappend_int(args, arg);
	}
	return make_foreignscan(tlist, local, baserel->relid, exprs,
							list_make5(makeInteger(kind), kinds, args,
									   makeInteger(info->table.cf),
									   makeString(pstrdup(info->table.prefix))),
							NIL, NIL, outer_plan);
}

static void
nokvExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	NokvScanKind kind = intVal(list_nth(plan->fdw_private, NokvScanKindIdx));
	static const char *const kind_names[] = {"full", "range", "point"};

	ExplainPropertyText("Nokv Scan", kind_names[kind], es);
	if (plan->fdw_exprs != NIL)
	{
		List	   *context = set_deparse_context_plan(es->deparse_cxt, (Plan *) plan, NIL);
		StringInfoData buf;
		ListCell   *lc;

		initStringInfo(&buf);
		foreach(lc, plan->fdw_exprs)
		{
			if (buf.len)
				appendStringInfoString(&buf, " AND ");
			appendStringInfoString(&buf, deparse_expression(lfirst(lc), context,
															es->verbose, false));
		}
		ExplainPropertyText("Key Cond", buf.data, es);
	}
	if (es->verbose)
	{
		NokvFdwTable t;

		nokv_fdw_table(RelationGetRelid(node->ss.ss_currentRelation), &t);
		ExplainPropertyText("Column Family", t.cf_name, es);
		if (t.prefix_len > 0)
			ExplainPropertyText("Key Prefix", t.prefix, es);
	}
}

Datum
nokv_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = nokvGetForeignRelSize;
	routine->GetForeignPaths = nokvGetForeignPaths;
	routine->GetForeignPlan = nokvGetForeignPlan;
	routine->BeginForeignScan = nokv_fdw_begin_scan;
	routine->IterateForeignScan = nokv_fdw_iterate_scan;
	routine->ReScanForeignScan = nokv_fdw_rescan;
	routine->EndForeignScan = nokv_fdw_end_scan;
	routine->ExplainForeignScan = nokvExplainForeignScan;

	routine->AddForeignUpdateTargets = nokv_fdw_add_update_targets;
	routine->PlanForeignModify = nokv_fdw_plan_modify;
	routine->BeginForeignModify = nokv_fdw_begin_modify;
	routine->ExecForeignInsert = nokv_fdw_exec_insert;
	routine->ExecForeignBatchInsert = nokv_fdw_exec_batch_insert;
	routine->GetForeignModifyBatchSize = nokv_fdw_batch_size;
	routine->ExecForeignUpdate = nokv_fdw_exec_update;
	routine->ExecForeignDelete = nokv_fdw_exec_delete;
	routine->EndForeignModify = nokv_fdw_end_modify;
	routine->BeginForeignInsert = nokv_fdw_begin_insert;
	routine->EndForeignInsert = nokv_fdw_end_insert;
	routine->IsForeignRelUpdatable = nokv_fdw_updatable;
	routine->ExecForeignTruncate = nokv_fdw_truncate;

	PG_RETURN_POINTER(routine);
}
