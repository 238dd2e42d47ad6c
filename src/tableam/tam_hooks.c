/*-------------------------------------------------------------------------
 *
 * tam_hooks.c
 *	  What the nokv table access method hooks into: shared memory for
 *	  row-id allocation, reclaiming dropped tables, and refusing logical
 *	  replication of nokv tables.
 *
 * nokv rows travel in PostgreSQL's WAL as records of nokv's own resource
 * manager, which logical decoding does not understand; a publication that
 * names a nokv table would silently publish nothing, so it is refused.
 *
 * src/tableam/tam_hooks.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_publication.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "tam.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static void
tam_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	rows_shmem_request();
}

static void
tam_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rows_shmem_startup();
}

/* a dropped nokv relation's rows go when the dropping transaction commits */
static void
tam_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0)
	{
		Relation	rel = try_relation_open(objectId, NoLock);

		if (rel == NULL)
			return;
		if ((rel->rd_rel->relkind == RELKIND_RELATION ||
			 rel->rd_rel->relkind == RELKIND_MATVIEW) &&
			nokv_relation_is_nokv(rel) && RelationGetSmgr(rel) != NULL &&
			smgrexists(RelationGetSmgr(rel), MAIN_FORKNUM))
			tam_reclaim_at_commit(rows_tableid(rel));
		relation_close(rel, NoLock);
	}
}

static void
refuse_publication(const char *relname)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("nokv table \"%s\" cannot be published", relname),
			 errdetail("Logical decoding does not decode nokv rows."),
			 errhint("Publish heap tables only, or copy the rows with CREATE TABLE ... AS.")));
}

/* the first nokv table of the database (or of schema nspid), if any */
static char *
find_nokv_table(Oid nspid)
{
	Oid			am = get_table_am_oid("nokv", true);
	Relation	pg_class_rel;
	TableScanDesc scan;
	HeapTuple	tup;
	char	   *found = NULL;

	if (!OidIsValid(am))
		return NULL;
	pg_class_rel = table_open(RelationRelationId, AccessShareLock);
	scan = table_beginscan_catalog(pg_class_rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);

		if (c->relam == am && c->relkind == RELKIND_RELATION &&
			(!OidIsValid(nspid) || c->relnamespace == nspid))
		{
			found = pstrdup(NameStr(c->relname));
			break;
		}
	}
	table_endscan(scan);
	table_close(pg_class_rel, AccessShareLock);
	return found;
}

static bool
relation_uses_nokv(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_class) GETSTRUCT(tup))->relam == get_table_am_oid("nokv", true);
	ReleaseSysCache(tup);
	return result;
}

static void
check_publication_objects(List *objects, bool for_all_tables)
{
	ListCell   *lc;
	char	   *name;

	if (for_all_tables && (name = find_nokv_table(InvalidOid)) != NULL)
		refuse_publication(name);
	foreach(lc, objects)
	{
		PublicationObjSpec *obj = (PublicationObjSpec *) lfirst(lc);

		if (obj->pubobjtype == PUBLICATIONOBJ_TABLE && obj->pubtable != NULL)
		{
			Oid			relid = RangeVarGetRelid(obj->pubtable->relation, NoLock, true);

			if (OidIsValid(relid) && relation_uses_nokv(relid))
				refuse_publication(obj->pubtable->relation->relname);
		}
		else if (obj->pubobjtype == PUBLICATIONOBJ_TABLES_IN_SCHEMA && obj->name != NULL)
		{
			Oid			nspid = get_namespace_oid(obj->name, true);

			if (OidIsValid(nspid) && (name = find_nokv_table(nspid)) != NULL)
				refuse_publication(name);
		}
	}
}

static void check_template(CreatedbStmt *stmt);

static void
tam_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			dropped_db = InvalidOid;

	if (IsA(parsetree, CreatePublicationStmt))
	{
		CreatePublicationStmt *stmt = (CreatePublicationStmt *) parsetree;

		check_publication_objects(stmt->pubobjects, stmt->for_all_tables);
	}
	else if (IsA(parsetree, AlterPublicationStmt))
	{
		AlterPublicationStmt *stmt = (AlterPublicationStmt *) parsetree;

		if (stmt->action != AP_DropObjects)
			check_publication_objects(stmt->pubobjects, false);
	}
	else if (IsA(parsetree, CreatedbStmt))
		check_template((CreatedbStmt *) parsetree);
	else if (IsA(parsetree, DropdbStmt))
		dropped_db = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/*
	 * The database's files are gone once dropdb returns (its transaction
	 * only commits the catalog change): the rows of its tables go now.
	 */
	if (OidIsValid(dropped_db))
		rows_drop_database(dropped_db);
}

/*
 * CREATE DATABASE copies the template's files, metapages included: two
 * databases would then share each table's rows.  Refuse a template that
 * holds nokv tables.
 */
static void
check_template(CreatedbStmt *stmt)
{
	const char *template = "template1";
	ListCell   *lc;
	Oid			dboid;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
			template = defGetString(opt);
	}
	dboid = get_database_oid(template, true);
	if (OidIsValid(dboid) && rows_database_has_tables(dboid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot copy database \"%s\": it holds nokv tables", template),
				 errdetail("The copy would share the rows of each nokv table with the template."),
				 errhint("Create the database from a template without nokv tables and copy the rows, for example with pg_dump.")));
}

void
nokv_tableam_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tam_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tam_shmem_startup;
	prev_object_access_hook = object_access_hook;
	object_access_hook = tam_object_access;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = tam_process_utility;
	tam_ddl_init();
}
