/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  The RESP gateway's command table and commands: strings, keys, TTLs,
 *	  MULTI/EXEC/WATCH and the connection and server commands clients send.
 *
 * Every key command goes through kv.c on the default column family, so a
 * key SET here is the key nokv_get reads, and back.  Replies follow Redis
 * 7.0 byte for byte, error texts included (t/051_resp_differential.pl
 * compares them with a real redis-server).
 *
 * Commands run inside the round's READ COMMITTED transaction (gateway.c).
 * A plain read takes a fresh snapshot (GetTransactionSnapshot in READ
 * COMMITTED), which also sees the commands run before it in the round.
 * A read-modify-write (INCR, APPEND, SET NX, ...) first takes the key's
 * writer lock (nokv_kv_lock: waits for a concurrent PostgreSQL writer of
 * the key), then reads with a snapshot taken after the lock, so it sees
 * the newest committed value and no update is ever lost.
 *
 * Two savings keep every one of those guarantees (see OwnedKey and the
 * write batch below): a key the round's transaction already wrote is not
 * locked and looked up again, and consecutive blind writes and increments
 * of a round share one engine batch and one WAL record, written before any
 * other command runs.
 *
 * nokv stores only strings, so TYPE says "string" or "none" and WRONGTYPE
 * never happens; the commands of other data types are refused with an
 * error naming the command (gw_is_unsupported_type_command).
 *
 * src/gateway/commands.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "gateway.h"

#define CF NOKV_CF_DEFAULT

/* ---------- helpers ---------- */

#define ARGIS(call, i, s) \
	((call)->argl[(i)] == strlen(s) && pg_strcasecmp((call)->argv[(i)], (s)) == 0)

static const char *const syntax_error = "ERR syntax error";
static const char *const not_integer = "ERR value is not an integer or out of range";
static const char *const not_float = "ERR value is not a valid float";
static const char *const too_big = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/* the engine key of argument i */
static char *
ekey(GwCall *call, int i, size_t *klen)
{
	return nokv_kv_key(call->argv[i], call->argl[i], klen);
}

typedef struct KvValue
{
	char	   *data;			/* NULL: no such key */
	size_t		len;
	uint64		expires_at;		/* 0: none */
} KvValue;

/*
 * Plain reads share one snapshot until this transaction writes (then a
 * new one must see the write): taking a snapshot per GET would cost more
 * than the GET.  Reads in one round are one point in time anyway.
 */
static bool read_snapshot_stale = true;
static Snapshot read_snapshot = NULL;

/*
 * Keys the round's transaction owns.  Once the transaction has a version of
 * a key in the engine, every other writer of the key waits for the
 * transaction to end (nokv_mvcc_lock_key finds that version in progress),
 * and while a write of it waits in the batch below, the transaction holds
 * the key's lock.  Either way no other writer can come in between, so a
 * later command of the round writes the key without locking it and looking
 * up its newest version again.  Only while the round runs without
 * subtransactions: a subtransaction that rolls back takes its versions with
 * it, so a re-run with a subtransaction per command owns nothing.
 */
typedef struct OwnedKey
{
	char	   *key;			/* engine key */
	size_t		klen;
	uint32		hash;
	int			held;			/* locks taken by kv_lock, released by kv_unlock */
	bool		batch_held;		/* locked for a write waiting in the batch */
	bool		written;		/* this transaction wrote it (or will: batch) */
} OwnedKey;

static MemoryContext writes_cxt = NULL;	/* the owned keys; reset per attempt */
static bool own_mode = false;
static OwnedKey **owned = NULL;		/* open addressing, NULL empty */
static int	nowned = 0;
static int	owned_slots = 0;

/*
 * Blind writes (SET, SETEX, PSETEX, MSET) and increments (INCR, DECR,
 * INCRBY, DECRBY) of consecutive entries of a round (GW_CMD_BATCH) go into
 * one batch, written as one engine batch and one WAL record
 * (nokv_kv_batch_write) before any other command runs and before the
 * commit.  An increment reads a key's write waiting in the batch, so every
 * command still sees the ones before it.  The batch's keys stay locked
 * until it is written; a key written twice is written once, with the last
 * value, which is all anyone can ever read.
 */
#define GW_BATCH_MAX_BYTES (1024 * 1024)
#define GW_BATCH_MAX_LOCKS 256

static NokvKvBatch *wbatch = NULL;
static bool in_flush = false;	/* writing the batch */
static bool batch_mode = false;	/* the running entry may add to the batch */
static OwnedKey **batch_locked = NULL;	/* keys locked for the batch */
static int	nbatch_locked = 0;
static int	batch_locked_cap = 0;

static void kv_flush(void);

/* one shared counter touched per read, not two */
static inline void
count_read(bool found)
{
	if (found)
		GW_COUNT(keyspace_hits, 1);
	else
		GW_COUNT(keyspace_misses, 1);
}

static void
own_reset(void)
{
	MemoryContextReset(writes_cxt);
	owned = NULL;
	nowned = owned_slots = 0;
	batch_locked = NULL;
	nbatch_locked = batch_locked_cap = 0;
}

/* the record of an engine key, made if absent and make is set */
static OwnedKey *
own_lookup(const char *k, size_t klen, bool make)
{
	uint32		h = hash_bytes((const unsigned char *) k, (int) klen);
	int			mask;
	int			i;
	OwnedKey   *o;

	if (owned_slots == 0 || (make && nowned * 2 >= owned_slots))
	{
		OwnedKey  **old = owned;
		int			oldn = owned_slots;

		if (!make && owned_slots == 0)
			return NULL;
		owned_slots = Max(owned_slots * 2, 64);
		owned = MemoryContextAllocZero(writes_cxt, owned_slots * sizeof(OwnedKey *));
		for (int j = 0; j < oldn; j++)
			if (old[j] != NULL)
			{
				for (i = old[j]->hash & (owned_slots - 1); owned[i] != NULL;
					 i = (i + 1) & (owned_slots - 1))
					;
				owned[i] = old[j];
			}
	}
	mask = owned_slots - 1;
	for (i = h & mask; owned[i] != NULL; i = (i + 1) & mask)
	{
		o = owned[i];
		if (o->hash == h && o->klen == klen && memcmp(o->key, k, klen) == 0)
			return o;
	}
	if (!make)
		return NULL;
	o = MemoryContextAllocZero(writes_cxt, sizeof(OwnedKey));
	o->key = MemoryContextAlloc(writes_cxt, klen);
	memcpy(o->key, k, klen);
	o->klen = klen;
	o->hash = h;
	owned[i] = o;
	nowned++;
	return o;
}

void
gw_commands_round_start(bool subxacts)
{
	read_snapshot_stale = true;
	in_flush = false;
	own_reset();
	nokv_kv_batch_reset(wbatch);
	own_mode = !subxacts;
	batch_mode = false;
}

/*
 * Before each entry of the round: a batch-eligible command may add to the
 * batch; anything else first writes it, so it sees those writes.
 */
void
gw_commands_before_entry(const GwEntry *e)
{
	bool		batchable = own_mode && e->kind == GW_ENTRY_COMMAND &&
		(e->cmd->flags & GW_CMD_BATCH) != 0;

	batch_mode = false;
	if (!batchable)
		kv_flush();
	batch_mode = batchable;
}

/* before the commit: the batch's writes */
void
gw_commands_round_end(void)
{
	batch_mode = false;
	kv_flush();
	own_mode = false;
}

bool
gw_commands_in_flush(void)
{
	return in_flush;
}

/* after an abort: the locks went with the transaction */
void
gw_commands_round_abort(void)
{
	in_flush = false;
	nokv_kv_batch_reset(wbatch);
	own_reset();
	own_mode = false;
	batch_mode = false;
}

/*
 * The key's value.  locked: the caller holds the key's writer lock, and
 * a snapshot taken now sees the newest committed value (or this
 * transaction's own); else the shared read snapshot.
 */
static bool
kv_read_at(const char *k, size_t klen, KvValue *v, bool locked)
{
	Snapshot	snap;

	if (locked || read_snapshot_stale || read_snapshot == NULL)
	{
		/* READ COMMITTED: a new snapshot (static storage, valid in this transaction) */
		snap = read_snapshot = GetTransactionSnapshot();
		read_snapshot_stale = false;
	}
	else
		snap = read_snapshot;
	v->len = 0;
	v->expires_at = 0;
	v->data = nokv_kv_get(gw_db(), CF, k, klen, snap, &v->len, &v->expires_at);
	if (v->data == NULL)
	{
		v->len = 0;
		v->expires_at = 0;
	}
	count_read(v->data != NULL);
	return v->data != NULL;
}

static void
reply_value(void *arg, const char *value, size_t vlen, uint64 expires_at)
{
	gw_reply_bulk((GwReply *) arg, value, vlen);
}

/* a plain read answered with the value, or nil: GET without a copy */
static void
kv_reply_value(const char *k, size_t klen, GwReply *r)
{
	bool		found;

	if (read_snapshot_stale || read_snapshot == NULL)
	{
		read_snapshot = GetTransactionSnapshot();
		read_snapshot_stale = false;
	}
	found = nokv_kv_get_with(gw_db(), CF, k, klen, read_snapshot, reply_value, r);
	if (!found)
		gw_reply_null(r);
	count_read(found);
}

/* after kv_lock: the newest committed value */
static bool
kv_read(const char *k, size_t klen, KvValue *v)
{
	return kv_read_at(k, klen, v, true);
}

/* a plain read */
static bool
kv_peek(const char *k, size_t klen, KvValue *v)
{
	return kv_read_at(k, klen, v, false);
}

static void
kv_lock(const char *k, size_t klen)
{
	OwnedKey   *o;

	Assert(nokv_kv_batch_count(wbatch) == 0);
	if (!own_mode)
	{
		(void) nokv_kv_lock(gw_db(), CF, k, klen);
		return;
	}
	o = own_lookup(k, klen, true);
	if (o->written)
		return;					/* no other writer can come in: see OwnedKey */
	(void) nokv_kv_lock(gw_db(), CF, k, klen);
	o->held++;
}

static void
kv_unlock(const char *k, size_t klen)
{
	OwnedKey   *o;

	if (!own_mode)
	{
		nokv_kv_unlock(CF, k, klen);
		return;
	}
	o = own_lookup(k, klen, false);
	if (o != NULL && o->held > 0)
	{
		nokv_kv_unlock(CF, k, klen);
		o->held--;
	}
}

/* under the key's lock: value NULL deletes */
static void
kv_write(const char *k, size_t klen, const char *v, size_t vlen, uint64 expires_at)
{
	read_snapshot_stale = true;
	nokv_kv_write_locked(gw_db(), CF, k, klen, v, vlen, expires_at);
	if (own_mode)
		own_lookup(k, klen, true)->written = true;
}

/* write the batch, then release the locks it held */
static void
kv_flush(void)
{
	if (nokv_kv_batch_count(wbatch) > 0)
	{
		read_snapshot_stale = true;
		in_flush = true;
		nokv_kv_batch_write(gw_db(), wbatch);
		in_flush = false;
	}
	for (int i = 0; i < nbatch_locked; i++)
	{
		OwnedKey   *o = batch_locked[i];

		nokv_kv_unlock(CF, o->key, o->klen);
		o->batch_held = false;
	}
	nbatch_locked = 0;
}

/*
 * A blind write in batch mode: lock the key unless the transaction owns it
 * already, then add the write to the batch (replacing an earlier one of the
 * key).  The reply is the caller's, as for kv_write.
 */
static OwnedKey *
kv_batch_lock(const char *k, size_t klen)
{
	OwnedKey   *o = own_lookup(k, klen, true);

	Assert(batch_mode && own_mode);
	if (o->written || o->batch_held)
		return o;
	(void) nokv_kv_lock(gw_db(), CF, k, klen);
	if (nbatch_locked >= batch_locked_cap)
	{
		int			cap = Max(batch_locked_cap * 2, 64);

		batch_locked = batch_locked ? repalloc(batch_locked, cap * sizeof(OwnedKey *))
			: MemoryContextAlloc(writes_cxt, cap * sizeof(OwnedKey *));
		batch_locked_cap = cap;
	}
	batch_locked[nbatch_locked++] = o;
	o->batch_held = true;
	return o;
}

static void
kv_batch_write(const char *k, size_t klen, const char *v, size_t vlen, uint64 expires_at)
{
	OwnedKey   *o;

	if (!nokv_kv_batch_fits(wbatch, klen, vlen))
		kv_flush();
	o = kv_batch_lock(k, klen);
	nokv_kv_batch_put(wbatch, CF, k, klen, v, vlen, expires_at);
	o->written = true;
	if (nokv_kv_batch_bytes(wbatch) >= GW_BATCH_MAX_BYTES || nbatch_locked >= GW_BATCH_MAX_LOCKS)
		kv_flush();
}

/*
 * A read-modify-write in batch mode: lock the key as kv_batch_write does
 * (until the batch is written) and read its newest value, the one waiting in the batch if there is one
 * (this transaction's latest write of it), else the engine's.  v->data may
 * point into the batch: use it before the next batch write.
 */
static bool
kv_batch_read(const char *k, size_t klen, KvValue *v, size_t write_max)
{
	const char *data;

	/*
	 * A flush between this read and the write would release the key's lock
	 * in between: make room for the write (of at most write_max bytes) now.
	 */
	if (nbatch_locked >= GW_BATCH_MAX_LOCKS || !nokv_kv_batch_fits(wbatch, klen, write_max))
		kv_flush();
	(void) kv_batch_lock(k, klen);
	if (!nokv_kv_batch_get(wbatch, CF, k, klen, &data, &v->len, &v->expires_at))
		return kv_read(k, klen, v);
	/* as the engine reads it: a delete or an expired value is no value */
	if (data == NULL || (v->expires_at != 0 && v->expires_at <= nokv_kv_now_ms()))
	{
		v->data = NULL;
		v->len = 0;
		v->expires_at = 0;
	}
	else
		v->data = (char *) data;
	count_read(v->data != NULL);
	return v->data != NULL;
}

/* the largest value nokv stores under this engine key, within the bulk limit */
static bool
value_fits(GwCall *call, size_t klen, uint64 vlen)
{
	if (vlen > (uint64) gw_effective_max_bulk() || vlen > (uint64) nokv_kv_max_value_size(klen))
	{
		gw_reply_error(call->reply, too_big);
		return false;
	}
	return true;
}

static int64
now_ms(void)
{
	return (int64) nokv_kv_now_ms();
}

static bool
arg_int64(GwCall *call, int i, int64 *v, const char *err)
{
	if (!gw_string2ll(call->argv[i], call->argl[i], v))
	{
		gw_reply_error(call->reply, err ? err : not_integer);
		return false;
	}
	return true;
}

/* Redis's string2ld(): strtold over the whole argument */
static bool
parse_long_double(const char *s, size_t len, long double *out)
{
	char		buf[5 * 1024];
	char	   *end;
	long double v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	v = strtold(buf, &end);
	if (isspace((unsigned char) buf[0]) || end[0] != '\0' ||
		((errno == ERANGE || errno == EINVAL) && (v == HUGE_VAL || v == -HUGE_VAL || v == 0)) ||
		isnan(v))
		return false;
	*out = v;
	return true;
}

/* Redis's ld2string(LD_STR_HUMAN): %.17Lf without trailing zeros */
static size_t
format_long_double(char *buf, size_t size, long double v)
{
	int			l;

	if (isinf(v))
		return strlcpy(buf, v > 0 ? "inf" : "-inf", size);
	/* PostgreSQL's snprintf has no long double: glibc's strfroml does */
	l = strfroml(buf, size, "%.17f", v);
	if (l < 0 || (size_t) l + 1 > size)
		return 0;
	if (strchr(buf, '.') != NULL)
	{
		char	   *p = buf + l - 1;

		while (*p == '0')
		{
			p--;
			l--;
		}
		if (*p == '.')
			l--;
	}
	if (l == 2 && buf[0] == '-' && buf[1] == '0')
	{
		buf[0] = '0';
		l = 1;
	}
	buf[l] = '\0';
	return l;
}

static void
reply_unknown_subcommand(GwCall *call, const char *container)
{
	gw_reply_errorf(call->reply, "ERR unknown subcommand '%.128s'. Try %s HELP.",
					call->argv[1], container);
}

static void
reply_sub_arity(GwCall *call, const char *container, const char *sub)
{
	gw_reply_errorf(call->reply, "ERR wrong number of arguments for '%s|%s' command",
					container, sub);
}

/* ---------- SET and friends ---------- */

#define SET_NX		0x001
#define SET_XX		0x002
#define SET_GET		0x004
#define SET_KEEPTTL 0x008
#define SET_PERSIST 0x010
#define SET_EX		0x020
#define SET_PX		0x040
#define SET_EXAT	0x080
#define SET_PXAT	0x100
#define SET_EXPIRES (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* Redis's parseExtendedStringArgumentsOrReply, for SET and GETEX */
static bool
parse_set_options(GwCall *call, int start, bool is_set, int *flags, int *expire_arg)
{
	*flags = 0;
	*expire_arg = -1;
	for (int j = start; j < call->argc; j++)
	{
		bool		next = j < call->argc - 1;

		if (is_set && ARGIS(call, j, "nx") && !(*flags & SET_XX))
			*flags |= SET_NX;
		else if (is_set && ARGIS(call, j, "xx") && !(*flags & SET_NX))
			*flags |= SET_XX;
		else if (is_set && ARGIS(call, j, "get"))
			*flags |= SET_GET;
		else if (is_set && ARGIS(call, j, "keepttl") && !(*flags & (SET_PERSIST | SET_EXPIRES)))
			*flags |= SET_KEEPTTL;
		else if (!is_set && ARGIS(call, j, "persist") && !(*flags & (SET_EXPIRES | SET_KEEPTTL)))
			*flags |= SET_PERSIST;
		else if (ARGIS(call, j, "ex") && next &&
				 !(*flags & (SET_KEEPTTL | SET_PERSIST | SET_EXAT | SET_PX | SET_PXAT)))
		{
			*flags |= SET_EX;
			*expire_arg = ++j;
		}
		else if (ARGIS(call, j, "px") && next &&
				 !(*flags & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT)))
		{
			*flags |= SET_PX;
			*expire_arg = ++j;
		}
		else if (ARGIS(call, j, "exat") && next &&
				 !(*flags & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT)))
		{
			*flags |= SET_EXAT;
			*expire_arg = ++j;
		}
		else if (ARGIS(call, j, "pxat") && next &&
				 !(*flags & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PX)))
		{
			*flags |= SET_PXAT;
			*expire_arg = ++j;
		}
		else
		{
			gw_reply_error(call->reply, syntax_error);
			return false;
		}
	}
	return true;
}

/* Redis's getExpireMillisecondsOrReply: the absolute expiry in ms */
static bool
expire_ms(GwCall *call, int arg, int flags, const char *cmdname, int64 *ms)
{
	int64		v;
	bool		seconds = (flags & (SET_EX | SET_EXAT)) != 0;

	if (!arg_int64(call, arg, &v, NULL))
		return false;
	if (v <= 0 || (seconds && v > PG_INT64_MAX / 1000))
	{
		gw_reply_errorf(call->reply, "ERR invalid expire time in '%s' command", cmdname);
		return false;
	}
	if (seconds)
		v *= 1000;
	if (flags & (SET_EX | SET_PX))
	{
		/* as Redis: a sum past int64 shows as a non-positive expiry */
		v = (int64) ((uint64) v + (uint64) now_ms());
	}
	if (v <= 0)
	{
		gw_reply_errorf(call->reply, "ERR invalid expire time in '%s' command", cmdname);
		return false;
	}
	*ms = v;
	return true;
}

/*
 * The common part of SET, SETNX, SETEX, PSETEX: flags as parsed, the
 * expiry already absolute (0 none).  ok_int: SETNX's 1/0 replies.
 */
static void
set_generic(GwCall *call, int flags, const char *val, size_t vlen, int64 expires, bool ok_int)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		old;
	bool		found;
	uint64		exp = expires > 0 ? (uint64) expires : 0;

	if (!value_fits(call, klen, vlen))
		return;
	if (batch_mode && !(flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL)))
	{
		kv_batch_write(k, klen, val, vlen, exp);
		if (ok_int)
			gw_reply_int(call->reply, 1);
		else
			gw_reply_ok(call->reply);
		return;
	}
	if (batch_mode)
	{
		/* it reads the key: the batch's writes first */
		batch_mode = false;
		kv_flush();
	}
	kv_lock(k, klen);
	if (!(flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL)))
	{
		/* a plain SET needs no old value */
		kv_write(k, klen, val, vlen, exp);
		kv_unlock(k, klen);
		if (ok_int)
			gw_reply_int(call->reply, 1);
		else
			gw_reply_ok(call->reply);
		return;
	}
	found = kv_read(k, klen, &old);
	if (flags & SET_GET)
	{
		if (found)
			gw_reply_bulk(call->reply, old.data, old.len);
		else
			gw_reply_null(call->reply);
	}
	if (((flags & SET_NX) && found) || ((flags & SET_XX) && !found))
	{
		kv_unlock(k, klen);
		if (ok_int)
			gw_reply_int(call->reply, 0);
		else if (!(flags & SET_GET))
			gw_reply_null(call->reply);
		return;
	}
	if ((flags & SET_KEEPTTL) && found)
		exp = old.expires_at;
	kv_write(k, klen, val, vlen, exp);
	kv_unlock(k, klen);
	if (ok_int)
		gw_reply_int(call->reply, 1);
	else if (!(flags & SET_GET))
		gw_reply_ok(call->reply);
}

static void
cmd_set(GwCall *call)
{
	int			flags;
	int			earg;
	int64		ms = 0;

	if (!parse_set_options(call, 3, true, &flags, &earg))
		return;
	if (earg >= 0 && !expire_ms(call, earg, flags, "set", &ms))
		return;
	set_generic(call, flags, call->argv[2], call->argl[2], ms, false);
}

static void
cmd_setnx(GwCall *call)
{
	set_generic(call, SET_NX, call->argv[2], call->argl[2], 0, true);
}

static void
cmd_setex(GwCall *call)
{
	int64		ms;

	if (!expire_ms(call, 2, SET_EX, "setex", &ms))
		return;
	set_generic(call, 0, call->argv[3], call->argl[3], ms, false);
}

static void
cmd_psetex(GwCall *call)
{
	int64		ms;

	if (!expire_ms(call, 2, SET_PX, "psetex", &ms))
		return;
	set_generic(call, 0, call->argv[3], call->argl[3], ms, false);
}

static void
cmd_get(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);

	kv_reply_value(k, klen, call->reply);
}

static void
cmd_getset(GwCall *call)
{
	set_generic(call, SET_GET, call->argv[2], call->argl[2], 0, false);
}

static void
cmd_getdel(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;

	kv_lock(k, klen);
	if (kv_read(k, klen, &v))
	{
		gw_reply_bulk(call->reply, v.data, v.len);
		kv_write(k, klen, NULL, 0, 0);
	}
	else
		gw_reply_null(call->reply);
	kv_unlock(k, klen);
}

static void
cmd_getex(GwCall *call)
{
	int			flags;
	int			earg;
	int64		ms = 0;
	size_t		klen;
	char	   *k;
	KvValue		v;

	if (!parse_set_options(call, 2, false, &flags, &earg))
		return;
	k = ekey(call, 1, &klen);
	kv_lock(k, klen);
	if (!kv_read(k, klen, &v))
	{
		kv_unlock(k, klen);
		gw_reply_null(call->reply);
		return;
	}
	if (earg >= 0 && !expire_ms(call, earg, flags, "getex", &ms))
	{
		kv_unlock(k, klen);
		return;
	}
	gw_reply_bulk(call->reply, v.data, v.len);
	if ((flags & (SET_EXAT | SET_PXAT)) && ms <= now_ms())
		kv_write(k, klen, NULL, 0, 0);
	else if (earg >= 0)
		kv_write(k, klen, v.data, v.len, (uint64) ms);
	else if ((flags & SET_PERSIST) && v.expires_at != 0)
		kv_write(k, klen, v.data, v.len, 0);
	kv_unlock(k, klen);
}

static void
cmd_mget(GwCall *call)
{
	gw_reply_array(call->reply, call->argc - 1);
	for (int i = 1; i < call->argc; i++)
	{
		size_t		klen;
		char	   *k = ekey(call, i, &klen);

		kv_reply_value(k, klen, call->reply);
		pfree(k);
	}
}

static void
mset_generic(GwCall *call, bool nx, const char *name)
{
	int			npairs;
	char	  **keys;
	size_t	   *klens;

	if (call->argc % 2 == 0)
	{
		gw_reply_errorf(call->reply, "ERR wrong number of arguments for '%s' command", name);
		return;
	}
	npairs = (call->argc - 1) / 2;
	keys = palloc(npairs * sizeof(char *));
	klens = palloc(npairs * sizeof(size_t));
	for (int i = 0; i < npairs; i++)
	{
		keys[i] = ekey(call, 1 + 2 * i, &klens[i]);
		if (!value_fits(call, klens[i], call->argl[2 + 2 * i]))
			return;
	}
	if (batch_mode && !nx)
	{
		/* one transaction, one batch: all or nothing */
		for (int i = 0; i < npairs; i++)
			kv_batch_write(keys[i], klens[i], call->argv[2 + 2 * i], call->argl[2 + 2 * i], 0);
		gw_reply_ok(call->reply);
		return;
	}
	/* all keys locked before the first write: all or nothing */
	for (int i = 0; i < npairs; i++)
		kv_lock(keys[i], klens[i]);
	if (nx)
	{
		for (int i = 0; i < npairs; i++)
		{
			KvValue		v;

			if (kv_read(keys[i], klens[i], &v))
			{
				for (int j = 0; j < npairs; j++)
					kv_unlock(keys[j], klens[j]);
				gw_reply_int(call->reply, 0);
				return;
			}
		}
	}
	for (int i = 0; i < npairs; i++)
		kv_write(keys[i], klens[i], call->argv[2 + 2 * i], call->argl[2 + 2 * i], 0);
	for (int i = 0; i < npairs; i++)
		kv_unlock(keys[i], klens[i]);
	if (nx)
		gw_reply_int(call->reply, 1);
	else
		gw_reply_ok(call->reply);
}

static void
cmd_mset(GwCall *call)
{
	mset_generic(call, false, "mset");
}

static void
cmd_msetnx(GwCall *call)
{
	mset_generic(call, true, "msetnx");
}

static void
cmd_append(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;
	char	   *nv;
	uint64		total;

	kv_lock(k, klen);
	kv_read(k, klen, &v);
	total = (uint64) v.len + call->argl[2];
	if (!value_fits(call, klen, total))
	{
		kv_unlock(k, klen);
		return;
	}
	nv = palloc_extended(total + 1, MCXT_ALLOC_HUGE);
	if (v.len)
		memcpy(nv, v.data, v.len);
	memcpy(nv + v.len, call->argv[2], call->argl[2]);
	kv_write(k, klen, nv, total, v.expires_at);
	kv_unlock(k, klen);
	gw_reply_int(call->reply, (int64) total);
}

static void
cmd_strlen(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;

	kv_peek(k, klen, &v);
	gw_reply_int(call->reply, (int64) v.len);
}

static void
cmd_getrange(GwCall *call)
{
	int64		start;
	int64		end;
	size_t		klen;
	char	   *k;
	KvValue		v;
	int64		len;

	if (!arg_int64(call, 2, &start, NULL) || !arg_int64(call, 3, &end, NULL))
		return;
	k = ekey(call, 1, &klen);
	if (!kv_peek(k, klen, &v))
	{
		gw_reply_bulk(call->reply, "", 0);
		return;
	}
	len = (int64) v.len;
	if (start < 0 && end < 0 && start > end)
	{
		gw_reply_bulk(call->reply, "", 0);
		return;
	}
	if (start < 0)
		start = len + start;
	if (end < 0)
		end = len + end;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if ((uint64) end >= (uint64) len)
		end = len - 1;
	if (start > end || len == 0)
		gw_reply_bulk(call->reply, "", 0);
	else
		gw_reply_bulk(call->reply, v.data + start, end - start + 1);
}

static void
cmd_setrange(GwCall *call)
{
	int64		offset;
	size_t		klen;
	char	   *k;
	KvValue		v;
	size_t		alen = call->argl[3];
	uint64		total;
	char	   *nv;

	if (!arg_int64(call, 2, &offset, NULL))
		return;
	if (offset < 0)
	{
		gw_reply_error(call->reply, "ERR offset is out of range");
		return;
	}
	k = ekey(call, 1, &klen);
	kv_lock(k, klen);
	if (!kv_read(k, klen, &v) && alen == 0)
	{
		kv_unlock(k, klen);
		gw_reply_int(call->reply, 0);
		return;
	}
	if (alen == 0)
	{
		kv_unlock(k, klen);
		gw_reply_int(call->reply, (int64) v.len);
		return;
	}
	if ((uint64) offset > PG_INT64_MAX - alen || !value_fits(call, klen, (uint64) offset + alen))
	{
		if ((uint64) offset > PG_INT64_MAX - alen)
			gw_reply_error(call->reply, too_big);
		kv_unlock(k, klen);
		return;
	}
	total = Max((uint64) v.len, (uint64) offset + alen);
	nv = palloc_extended(total + 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	if (v.len)
		memcpy(nv, v.data, v.len);
	memcpy(nv + offset, call->argv[3], alen);
	kv_write(k, klen, nv, total, v.expires_at);
	kv_unlock(k, klen);
	gw_reply_int(call->reply, (int64) total);
}

static void
incr_generic(GwCall *call, int64 incr)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;
	int64		value = 0;
	char		buf[32];
	int			len;
	bool		found;

	if (batch_mode)
		found = kv_batch_read(k, klen, &v, sizeof(buf));
	else
	{
		kv_lock(k, klen);
		found = kv_read(k, klen, &v);
	}
	if (found && !gw_string2ll(v.data, v.len, &value))
	{
		if (!batch_mode)
			kv_unlock(k, klen);
		gw_reply_error(call->reply, not_integer);
		return;
	}
	if ((incr < 0 && value < 0 && incr < PG_INT64_MIN - value) ||
		(incr > 0 && value > 0 && incr > PG_INT64_MAX - value))
	{
		if (!batch_mode)
			kv_unlock(k, klen);
		gw_reply_error(call->reply, "ERR increment or decrement would overflow");
		return;
	}
	value += incr;
	len = pg_lltoa(value, buf);
	if (batch_mode)
		kv_batch_write(k, klen, buf, len, v.expires_at);
	else
	{
		kv_write(k, klen, buf, len, v.expires_at);
		kv_unlock(k, klen);
	}
	gw_reply_int(call->reply, value);
}

static void
cmd_incr(GwCall *call)
{
	incr_generic(call, 1);
}

static void
cmd_decr(GwCall *call)
{
	incr_generic(call, -1);
}

static void
cmd_incrby(GwCall *call)
{
	int64		incr;

	if (arg_int64(call, 2, &incr, NULL))
		incr_generic(call, incr);
}

static void
cmd_decrby(GwCall *call)
{
	int64		incr;

	if (!arg_int64(call, 2, &incr, NULL))
		return;
	if (incr == PG_INT64_MIN)
	{
		gw_reply_error(call->reply, "ERR decrement would overflow");
		return;
	}
	incr_generic(call, -incr);
}

static void
cmd_incrbyfloat(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;
	long double value = 0;
	long double incr;
	char		buf[5 * 1024];
	size_t		len;

	kv_lock(k, klen);
	if ((kv_read(k, klen, &v) && !parse_long_double(v.data, v.len, &value)) ||
		!parse_long_double(call->argv[2], call->argl[2], &incr))
	{
		kv_unlock(k, klen);
		gw_reply_error(call->reply, not_float);
		return;
	}
	value += incr;
	if (isnan(value) || isinf(value))
	{
		kv_unlock(k, klen);
		gw_reply_error(call->reply, "ERR increment would produce NaN or Infinity");
		return;
	}
	len = format_long_double(buf, sizeof(buf), value);
	kv_write(k, klen, buf, len, v.expires_at);
	kv_unlock(k, klen);
	gw_reply_bulk(call->reply, buf, len);
}

/* ---------- keys ---------- */

static void
del_generic(GwCall *call)
{
	int64		n = 0;

	for (int i = 1; i < call->argc; i++)
	{
		size_t		klen;
		char	   *k = ekey(call, i, &klen);

		read_snapshot_stale = true;
		if (nokv_kv_delete(gw_db(), CF, k, klen))
			n++;
		pfree(k);
	}
	gw_reply_int(call->reply, n);
}

static void
cmd_exists(GwCall *call)
{
	int64		n = 0;

	for (int i = 1; i < call->argc; i++)
	{
		size_t		klen;
		char	   *k = ekey(call, i, &klen);
		KvValue		v;

		if (kv_peek(k, klen, &v))
		{
			n++;
			pfree(v.data);
		}
		pfree(k);
	}
	gw_reply_int(call->reply, n);
}

static void
cmd_type(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;

	gw_reply_status(call->reply, kv_peek(k, klen, &v) ? "string" : "none");
}

#define EXPIRE_NX 1
#define EXPIRE_XX 2
#define EXPIRE_GT 4
#define EXPIRE_LT 8

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: Redis's expireGenericCommand */
static void
expire_generic(GwCall *call, bool absolute, bool seconds, const char *name)
{
	int			flags = 0;
	int64		when;
	int64		base = absolute ? 0 : now_ms();
	size_t		klen;
	char	   *k;
	KvValue		v;

	for (int j = 3; j < call->argc; j++)
	{
		if (ARGIS(call, j, "nx"))
			flags |= EXPIRE_NX;
		else if (ARGIS(call, j, "xx"))
			flags |= EXPIRE_XX;
		else if (ARGIS(call, j, "gt"))
			flags |= EXPIRE_GT;
		else if (ARGIS(call, j, "lt"))
			flags |= EXPIRE_LT;
		else
		{
			gw_reply_errorf(call->reply, "ERR Unsupported option %s", call->argv[j]);
			return;
		}
	}
	if ((flags & EXPIRE_NX) && (flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT)))
	{
		gw_reply_error(call->reply, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return;
	}
	if ((flags & EXPIRE_GT) && (flags & EXPIRE_LT))
	{
		gw_reply_error(call->reply, "ERR GT and LT options at the same time are not compatible");
		return;
	}
	if (!arg_int64(call, 2, &when, NULL))
		return;
	if (seconds)
	{
		if (when > PG_INT64_MAX / 1000 || when < PG_INT64_MIN / 1000)
		{
			gw_reply_errorf(call->reply, "ERR invalid expire time in '%s' command", name);
			return;
		}
		when *= 1000;
	}
	if (when > PG_INT64_MAX - base)
	{
		gw_reply_errorf(call->reply, "ERR invalid expire time in '%s' command", name);
		return;
	}
	when += base;

	k = ekey(call, 1, &klen);
	kv_lock(k, klen);
	if (!kv_read(k, klen, &v))
	{
		kv_unlock(k, klen);
		gw_reply_int(call->reply, 0);
		return;
	}
	if (flags)
	{
		int64		cur = v.expires_at ? (int64) v.expires_at : -1;

		if (((flags & EXPIRE_NX) && cur != -1) ||
			((flags & EXPIRE_XX) && cur == -1) ||
			((flags & EXPIRE_GT) && (when <= cur || cur == -1)) ||
			((flags & EXPIRE_LT) && cur != -1 && when >= cur))
		{
			kv_unlock(k, klen);
			gw_reply_int(call->reply, 0);
			return;
		}
	}
	if (when <= now_ms())
		kv_write(k, klen, NULL, 0, 0);
	else
		kv_write(k, klen, v.data, v.len, (uint64) when);
	kv_unlock(k, klen);
	gw_reply_int(call->reply, 1);
}

static void
cmd_expire(GwCall *call)
{
	expire_generic(call, false, true, "expire");
}

static void
cmd_pexpire(GwCall *call)
{
	expire_generic(call, false, false, "pexpire");
}

static void
cmd_expireat(GwCall *call)
{
	expire_generic(call, true, true, "expireat");
}

static void
cmd_pexpireat(GwCall *call)
{
	expire_generic(call, true, false, "pexpireat");
}

static void
ttl_generic(GwCall *call, bool ms, bool absolute)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;
	int64		ttl;

	if (!kv_peek(k, klen, &v))
	{
		gw_reply_int(call->reply, -2);
		return;
	}
	if (v.expires_at == 0)
	{
		gw_reply_int(call->reply, -1);
		return;
	}
	ttl = absolute ? (int64) v.expires_at : (int64) v.expires_at - now_ms();
	if (ttl < 0)
		ttl = 0;
	gw_reply_int(call->reply, ms ? ttl : (ttl + 500) / 1000);
}

static void
cmd_ttl(GwCall *call)
{
	ttl_generic(call, false, false);
}

static void
cmd_pttl(GwCall *call)
{
	ttl_generic(call, true, false);
}

static void
cmd_expiretime(GwCall *call)
{
	ttl_generic(call, false, true);
}

static void
cmd_pexpiretime(GwCall *call)
{
	ttl_generic(call, true, true);
}

static void
cmd_persist(GwCall *call)
{
	size_t		klen;
	char	   *k = ekey(call, 1, &klen);
	KvValue		v;

	kv_lock(k, klen);
	if (kv_read(k, klen, &v) && v.expires_at != 0)
	{
		kv_write(k, klen, v.data, v.len, 0);
		kv_unlock(k, klen);
		gw_reply_int(call->reply, 1);
		return;
	}
	kv_unlock(k, klen);
	gw_reply_int(call->reply, 0);
}

static void
rename_generic(GwCall *call, bool nx)
{
	size_t		sklen;
	size_t		dklen;
	char	   *sk = ekey(call, 1, &sklen);
	char	   *dk = ekey(call, 2, &dklen);
	bool		same = sklen == dklen && memcmp(sk, dk, sklen) == 0;
	KvValue		sv;
	KvValue		dv;

	kv_lock(sk, sklen);
	if (!kv_read(sk, sklen, &sv))
	{
		kv_unlock(sk, sklen);
		gw_reply_error(call->reply, "ERR no such key");
		return;
	}
	if (same)
	{
		kv_unlock(sk, sklen);
		if (nx)
			gw_reply_int(call->reply, 0);
		else
			gw_reply_ok(call->reply);
		return;
	}
	if (!value_fits(call, dklen, sv.len))
	{
		kv_unlock(sk, sklen);
		return;
	}
	kv_lock(dk, dklen);
	if (nx && kv_read(dk, dklen, &dv))
	{
		kv_unlock(dk, dklen);
		kv_unlock(sk, sklen);
		gw_reply_int(call->reply, 0);
		return;
	}
	kv_write(dk, dklen, sv.data, sv.len, sv.expires_at);
	kv_write(sk, sklen, NULL, 0, 0);
	kv_unlock(dk, dklen);
	kv_unlock(sk, sklen);
	if (nx)
		gw_reply_int(call->reply, 1);
	else
		gw_reply_ok(call->reply);
}

static void
cmd_rename(GwCall *call)
{
	rename_generic(call, false);
}

static void
cmd_renamenx(GwCall *call)
{
	rename_generic(call, true);
}

/*
 * SCAN cursors.  nokv's keys are ordered, so a cursor is a position: the
 * last key a SCAN call looked at, kept here under a number (the reply's
 * cursor).  The table holds the most recent GW_SCAN_CURSORS cursors; an
 * older or unknown number is refused ("ERR invalid cursor") instead of
 * silently restarting the iteration.
 */
#define GW_SCAN_CURSORS 4096

typedef struct ScanCursor
{
	uint64		id;
	char	   *key;			/* engine key */
	size_t		klen;
} ScanCursor;

static ScanCursor *scan_cursors = NULL;
static uint64 scan_next_id = 1;

static uint64
scan_cursor_save(const char *ukey, size_t ulen)
{
	uint64		id = scan_next_id++;
	ScanCursor *sc = &scan_cursors[id % GW_SCAN_CURSORS];

	if (sc->key)
		pfree(sc->key);
	sc->id = id;
	/* resume after ukey: the engine key of ukey followed by a zero byte */
	sc->klen = ulen + 2;
	sc->key = MemoryContextAlloc(TopMemoryContext, sc->klen);
	sc->key[0] = NOKV_NS_KV;
	memcpy(sc->key + 1, ukey, ulen);
	sc->key[ulen + 1] = '\0';
	return id;
}

static bool
entry_live(const NokvKvEntry *e, int64 now)
{
	return e->expires_at == 0 || (int64) e->expires_at > now;
}

static void
cmd_scan(GwCall *call)
{
	char	   *end;
	unsigned long cursor;
	long		count = 10;
	const char *pat = NULL;
	size_t		patlen = 0;
	bool		type_ok = true;
	NokvKvIter *it;
	NokvKvEntry e;
	List	   *keys = NIL;
	ListCell   *lc;
	int64		now = now_ms();
	long		seen = 0;
	uint64		next = 0;
	char		buf[32];

	errno = 0;
	cursor = strtoul(call->argv[1], &end, 10);
	if (isspace((unsigned char) call->argv[1][0]) || *end != '\0' || errno == ERANGE)
	{
		gw_reply_error(call->reply, "ERR invalid cursor");
		return;
	}
	for (int i = 2; i < call->argc;)
	{
		int			left = call->argc - i;

		if (ARGIS(call, i, "count") && left >= 2)
		{
			int64		c;

			if (!arg_int64(call, i + 1, &c, NULL))
				return;
			if (c < 1)
			{
				gw_reply_error(call->reply, syntax_error);
				return;
			}
			count = c > LONG_MAX ? LONG_MAX : (long) c;
			i += 2;
		}
		else if (ARGIS(call, i, "match") && left >= 2)
		{
			pat = call->argv[i + 1];
			patlen = call->argl[i + 1];
			if (patlen == 1 && pat[0] == '*')
				pat = NULL;
			i += 2;
		}
		else if (ARGIS(call, i, "type") && left >= 2)
		{
			type_ok = pg_strcasecmp(call->argv[i + 1], "string") == 0;
			i += 2;
		}
		else
		{
			gw_reply_error(call->reply, syntax_error);
			return;
		}
	}

	it = nokv_kv_iter_begin(gw_db(), CF, NULL, 0, NULL, 0, NULL);
	if (cursor != 0)
	{
		ScanCursor *sc = &scan_cursors[cursor % GW_SCAN_CURSORS];

		if (sc->id != cursor || sc->key == NULL)
		{
			nokv_kv_iter_end(it);
			gw_reply_error(call->reply, "ERR invalid cursor");
			return;
		}
		nokv_kv_iter_seek(it, sc->key, sc->klen);
	}
	while (nokv_kv_iter_next(it, &e))
	{
		if (!entry_live(&e, now))
			continue;
		seen++;
		if (type_ok && (pat == NULL || gw_glob_match(pat, patlen, e.key, e.key_len, false)))
		{
			StringInfo	s = makeStringInfo();

			appendBinaryStringInfo(s, e.key, e.key_len);
			keys = lappend(keys, s);
		}
		if (seen >= count)
		{
			NokvKvEntry peek;

			/* more to come? then the cursor is this key */
			next = scan_cursor_save(e.key, e.key_len);
			if (!nokv_kv_iter_next(it, &peek))
				next = 0;
			break;
		}
	}
	nokv_kv_iter_end(it);
	gw_reply_array(call->reply, 2);
	snprintf(buf, sizeof(buf), UINT64_FORMAT, next);
	gw_reply_bulk_cstr(call->reply, buf);
	gw_reply_array(call->reply, list_length(keys));
	foreach(lc, keys)
	{
		StringInfo	s = (StringInfo) lfirst(lc);

		gw_reply_bulk(call->reply, s->data, s->len);
	}
}

static void
cmd_keys(GwCall *call)
{
	NokvKvIter *it = nokv_kv_iter_begin(gw_db(), CF, NULL, 0, NULL, 0, NULL);
	NokvKvEntry e;
	int64		now = now_ms();
	bool		all = call->argl[1] == 1 && call->argv[1][0] == '*';
	GwBuf	   *buf = call->reply->buf;
	size_t		header;
	int64		n = 0;
	char		tmp[32];
	int			tlen;

	/* the count is known only at the end: reserve room for the header */
	header = buf->len;
	gw_reply_raw(call->reply, "*00000000000000000000\r\n", 23);
	while (nokv_kv_iter_next(it, &e))
	{
		if (!entry_live(&e, now))
			continue;
		if (!all && !gw_glob_match(call->argv[1], call->argl[1], e.key, e.key_len, false))
			continue;
		gw_reply_bulk(call->reply, e.key, e.key_len);
		n++;
	}
	nokv_kv_iter_end(it);
	tlen = snprintf(tmp, sizeof(tmp), "*" INT64_FORMAT "\r\n", n);
	memmove(buf->data + header + tlen, buf->data + header + 23, buf->len - header - 23);
	memcpy(buf->data + header, tmp, tlen);
	buf->len -= 23 - tlen;
}

static void
count_keys(int64 *keys, int64 *expires)
{
	NokvKvIter *it = nokv_kv_iter_begin(gw_db(), CF, NULL, 0, NULL, 0, NULL);
	NokvKvEntry e;
	int64		now = now_ms();

	*keys = *expires = 0;
	while (nokv_kv_iter_next(it, &e))
	{
		if (!entry_live(&e, now))
			continue;
		(*keys)++;
		if (e.expires_at)
			(*expires)++;
	}
	nokv_kv_iter_end(it);
}

static void
cmd_dbsize(GwCall *call)
{
	int64		keys;
	int64		expires;

	count_keys(&keys, &expires);
	gw_reply_int(call->reply, keys);
}

/* ---------- transactions ---------- */

static void
cmd_multi(GwCall *call)
{
	if (call->client->in_multi)
	{
		gw_reply_error(call->reply, "ERR MULTI calls can not be nested");
		return;
	}
	call->client->in_multi = true;
	gw_reply_ok(call->reply);
}

static void
cmd_discard(GwCall *call)
{
	if (!call->client->in_multi)
	{
		gw_reply_error(call->reply, "ERR DISCARD without MULTI");
		return;
	}
	gw_queue_release(call->client);
	gw_watch_release(call->client);
	gw_reply_ok(call->reply);
}

static void
cmd_unwatch(GwCall *call)
{
	gw_watch_release(call->client);
	gw_reply_ok(call->reply);
}

void
gw_watch_fill(GwWatch *w)
{
	size_t		klen;
	char	   *k = nokv_kv_key(w->key, w->klen, &klen);

	w->version = nokv_kv_newest_version(gw_db(), CF, k, klen, &w->live, &w->expires_at);
	pfree(k);
}

/* WATCH: the dispatcher made the records; read their versions */
static void
cmd_watch(GwCall *call)
{
	if (call->entry != NULL)
		for (int i = 0; i < call->entry->nwatch_new; i++)
			gw_watch_fill(call->entry->watch_new[i]);
	gw_reply_ok(call->reply);
}

/* not run: EXEC is an entry of its own (gateway.c) */
static void
cmd_exec(GwCall *call)
{
	gw_reply_error(call->reply, "ERR EXEC without MULTI");
}

typedef struct QueuedRun
{
	GwCall	   *call;
	const GwCommand *cmd;
} QueuedRun;

static void
queued_run_fn(void *arg)
{
	QueuedRun  *qr = (QueuedRun *) arg;

	qr->cmd->proc(qr->call);
}

/*
 * EXEC: lock the watched keys (a PostgreSQL writer of one either finished
 * before, or waits until after, EXEC), compare their newest committed
 * versions with those WATCH saw, then run the queue.  With subxacts (a
 * retry after an error) each queued command runs in a subtransaction and
 * fails alone, as a Redis command failing inside EXEC does.
 */
void
gw_exec_entry(GwEntry *e, GwReply *r, bool subxacts)
{
	nokv_db    *db = gw_db();
	bool		dirty = false;
	char	  **keys = palloc(Max(e->nwatch, 1) * sizeof(char *));
	size_t	   *klens = palloc(Max(e->nwatch, 1) * sizeof(size_t));

	for (int i = 0; i < e->nwatch; i++)
	{
		GwWatch    *w = e->watch[i];
		bool		live;
		uint64		exp;
		uint64		version;

		keys[i] = nokv_kv_key(w->key, w->klen, &klens[i]);
		kv_lock(keys[i], klens[i]);
		version = nokv_kv_newest_version(db, CF, keys[i], klens[i], &live, &exp);
		/* a new version, or the value WATCH saw has expired since */
		if (version != w->version || (w->live && !live))
			dirty = true;
	}
	if (dirty)
	{
		for (int i = 0; i < e->nwatch; i++)
			kv_unlock(keys[i], klens[i]);
		GW_COUNT(exec_aborts, 1);
		gw_reply_null_array(r);
		return;
	}
	gw_reply_array(r, e->nqueue);
	for (int i = 0; i < e->nqueue; i++)
	{
		GwQueued   *q = &e->queue[i];
		GwCall		call = {
			.client = e->client,
			.argc = q->argc,
			.argv = q->argv,
			.argl = q->argl,
			.reply = r,
			.entry = NULL,
		};

		if (subxacts)
		{
			QueuedRun	qr = {.call = &call,.cmd = q->cmd};
			size_t		start = r->buf->len;
			char	   *errtext = NULL;

			if (!gw_run_protected(queued_run_fn, &qr, &errtext))
			{
				r->buf->len = start;
				gw_reply_error(r, errtext);
			}
		}
		else
			q->cmd->proc(&call);
		CommandCounterIncrement();
	}
	for (int i = 0; i < e->nwatch; i++)
		kv_unlock(keys[i], klens[i]);
}

/* ---------- connection ---------- */

static void
cmd_ping(GwCall *call)
{
	if (call->argc > 2)
	{
		gw_reply_error(call->reply, "ERR wrong number of arguments for 'ping' command");
		return;
	}
	if (call->argc == 2)
		gw_reply_bulk(call->reply, call->argv[1], call->argl[1]);
	else
		gw_reply_status(call->reply, "PONG");
}

static void
cmd_echo(GwCall *call)
{
	gw_reply_bulk(call->reply, call->argv[1], call->argl[1]);
}

static void
cmd_select(GwCall *call)
{
	int64		db;

	if (!arg_int64(call, 1, &db, NULL))
		return;
	if (db < INT_MIN || db > INT_MAX)
	{
		gw_reply_error(call->reply, "ERR value is out of range, value must between -2147483648 and 2147483647");
		return;
	}
	if (db != 0)
	{
		gw_reply_error(call->reply, "ERR DB index is out of range");
		return;
	}
	gw_reply_ok(call->reply);
}

/* only the "default" user exists; with no password it takes any */
static bool
authenticate(GwClient *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
	if (ulen != 7 || memcmp(user, "default", 7) != 0)
		return false;
	if (gw_password_required() && !gw_password_matches(pass, plen))
		return false;
	gw_client_set_authenticated(c);
	return true;
}

static void
cmd_auth(GwCall *call)
{
	bool		ok;

	if (call->argc > 3)
	{
		gw_reply_error(call->reply, syntax_error);
		return;
	}
	if (call->argc == 2)
	{
		if (!gw_password_required())
		{
			gw_reply_error(call->reply,
						   "ERR AUTH <password> called without any password configured for the default user. "
						   "Are you sure your configuration is correct?");
			return;
		}
		ok = authenticate(call->client, "default", 7, call->argv[1], call->argl[1]);
	}
	else
		ok = authenticate(call->client, call->argv[1], call->argl[1], call->argv[2], call->argl[2]);
	if (ok)
		gw_reply_ok(call->reply);
	else
		gw_reply_error(call->reply, "WRONGPASS invalid username-password pair or user is disabled.");
}

static bool
set_client_name(GwCall *call, const char *name, size_t len)
{
	GwClient   *c = call->client;

	for (size_t i = 0; i < len; i++)
		if (name[i] < '!' || name[i] > '~')
		{
			gw_reply_error(call->reply, "ERR Client names cannot contain spaces, newlines or special characters.");
			return false;
		}
	if (c->name)
		pfree(c->name);
	c->name = len ? MemoryContextStrdup(c->cxt, name) : NULL;
	return true;
}

static void
cmd_hello(GwCall *call)
{
	GwClient   *c = call->client;
	int64		ver = 0;
	int			j = 1;

	if (call->argc >= 2)
	{
		j = 2;
		if (!arg_int64(call, 1, &ver, "ERR Protocol version is not an integer or out of range"))
			return;
		if (ver < 2 || ver > 3)
		{
			gw_reply_error(call->reply, "NOPROTO unsupported protocol version");
			return;
		}
	}
	for (; j < call->argc; j++)
	{
		int			more = call->argc - 1 - j;

		if (ARGIS(call, j, "auth") && more >= 2)
		{
			if (!authenticate(c, call->argv[j + 1], call->argl[j + 1],
							  call->argv[j + 2], call->argl[j + 2]))
			{
				gw_reply_error(call->reply, "WRONGPASS invalid username-password pair or user is disabled.");
				return;
			}
			j += 2;
		}
		else if (ARGIS(call, j, "setname") && more >= 1)
		{
			if (!set_client_name(call, call->argv[j + 1], call->argl[j + 1]))
				return;
			j++;
		}
		else
		{
			gw_reply_errorf(call->reply, "ERR Syntax error in HELLO option '%s'", call->argv[j]);
			return;
		}
	}
	if (gw_password_required() && !c->authenticated)
	{
		gw_reply_error(call->reply,
					   "NOAUTH HELLO must be called with the client already authenticated, "
					   "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
					   "authenticate the client and select the RESP protocol version at the same time");
		return;
	}
	if (ver)
		c->resp = (int) ver;
	call->reply->resp = c->resp;
	gw_reply_map(call->reply, 7);
	gw_reply_bulk_cstr(call->reply, "server");
	gw_reply_bulk_cstr(call->reply, "redis");
	gw_reply_bulk_cstr(call->reply, "version");
	gw_reply_bulk_cstr(call->reply, GW_REDIS_VERSION);
	gw_reply_bulk_cstr(call->reply, "proto");
	gw_reply_int(call->reply, c->resp);
	gw_reply_bulk_cstr(call->reply, "id");
	gw_reply_int(call->reply, (int64) c->id);
	gw_reply_bulk_cstr(call->reply, "mode");
	gw_reply_bulk_cstr(call->reply, "standalone");
	gw_reply_bulk_cstr(call->reply, "role");
	gw_reply_bulk_cstr(call->reply, "master");
	gw_reply_bulk_cstr(call->reply, "modules");
	gw_reply_array(call->reply, 0);
}

static void
cmd_reset(GwCall *call)
{
	GwClient   *c = call->client;

	gw_queue_release(c);
	gw_watch_release(c);
	c->resp = 2;
	call->reply->resp = 2;
	if (c->name)
		pfree(c->name);
	c->name = NULL;
	c->authenticated = !gw_password_required();
	gw_reply_status(call->reply, "RESET");
}

void
gw_client_list_line(GwClient *c, StringInfo s)
{
	TimestampTz now = GetCurrentTimestamp();
	long		age_s;
	long		idle_s;
	int			usecs;

	TimestampDifference(c->created, now, &age_s, &usecs);
	TimestampDifference(c->last_active, now, &idle_s, &usecs);
	appendStringInfo(s,
					 "id=" UINT64_FORMAT " addr=%s laddr=?:%d fd=%d name=%s age=%ld idle=%ld flags=%s db=0 "
					 "sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=%zu "
					 "obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default redir=-1 resp=%d\n",
					 c->id, c->addr, gw_port(), (int) c->sock, c->name ? c->name : "",
					 age_s, idle_s, c->in_multi ? "x" : "N",
					 c->in_multi ? c->nqueue : -1,
					 c->in.len, c->in.cap - c->in.len, c->queue_bytes,
					 c->out.len - c->sent, c->in.cap + c->out.cap,
					 c->last_cmd ? c->last_cmd : "NULL", c->resp);
}

static void
cmd_client(GwCall *call)
{
	GwClient   *c = call->client;

	if (ARGIS(call, 1, "id"))
	{
		if (call->argc != 2)
			reply_sub_arity(call, "client", "id");
		else
			gw_reply_int(call->reply, (int64) c->id);
	}
	else if (ARGIS(call, 1, "setname"))
	{
		if (call->argc != 3)
			reply_sub_arity(call, "client", "setname");
		else if (set_client_name(call, call->argv[2], call->argl[2]))
			gw_reply_ok(call->reply);
	}
	else if (ARGIS(call, 1, "getname"))
	{
		if (call->argc != 2)
			reply_sub_arity(call, "client", "getname");
		else if (c->name)
			gw_reply_bulk_cstr(call->reply, c->name);
		else
			gw_reply_null(call->reply);
	}
	else if (ARGIS(call, 1, "list"))
	{
		StringInfoData s;

		if (call->argc != 2)
		{
			gw_reply_error(call->reply, syntax_error);
			return;
		}
		initStringInfo(&s);
		for (int i = 0; i < gw_client_slots(); i++)
		{
			GwClient   *o = gw_client_by_slot(i);

			if (o && !o->closing)
				gw_client_list_line(o, &s);
		}
		gw_reply_verbatim(call->reply, s.data, s.len);
		pfree(s.data);
	}
	else if (ARGIS(call, 1, "info"))
	{
		StringInfoData s;

		if (call->argc != 2)
		{
			reply_sub_arity(call, "client", "info");
			return;
		}
		initStringInfo(&s);
		gw_client_list_line(c, &s);
		gw_reply_verbatim(call->reply, s.data, s.len);
		pfree(s.data);
	}
	else if (ARGIS(call, 1, "no-evict"))
	{
		if (call->argc != 3)
			reply_sub_arity(call, "client", "no-evict");
		else if (ARGIS(call, 2, "on") || ARGIS(call, 2, "off"))
			gw_reply_ok(call->reply);
		else
			gw_reply_error(call->reply, syntax_error);
	}
	else if (ARGIS(call, 1, "help"))
	{
		static const char *const lines[] = {
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME",
			"    Return the name of the current connection.",
			"ID",
			"    Return the ID of the current connection.",
			"INFO",
			"    Return information about the current client connection.",
			"LIST",
			"    Return information about client connections.",
			"SETNAME <name>",
			"    Assign the name <name> to the current connection.",
			"HELP",
			"    Print this help.",
		};

		gw_reply_array(call->reply, lengthof(lines));
		for (size_t i = 0; i < lengthof(lines); i++)
			gw_reply_status(call->reply, lines[i]);
	}
	else
		reply_unknown_subcommand(call, "CLIENT");
}

/* ---------- server ---------- */

static void
cmd_time(GwCall *call)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		us = (int64) nokv_kv_now_ms() * 1000 + now % 1000;

	gw_reply_array(call->reply, 2);
	gw_reply_bulk_int(call->reply, us / 1000000);
	gw_reply_bulk_int(call->reply, us % 1000000);
}

static void
config_value(const char *name, StringInfo v)
{
	resetStringInfo(v);
	if (strcmp(name, "maxclients") == 0)
		appendStringInfo(v, "%d", gw_client_slots());
	else if (strcmp(name, "timeout") == 0)
		appendStringInfo(v, "%d", gw_idle_timeout_s);
	else if (strcmp(name, "proto-max-bulk-len") == 0)
		appendStringInfo(v, "%zu", gw_effective_max_bulk());
	else if (strcmp(name, "client-query-buffer-limit") == 0)
		appendStringInfo(v, "%zu", (size_t) gw_client_buffer_kb * 1024);
	else if (strcmp(name, "port") == 0)
		appendStringInfo(v, "%d", gw_port());
	else if (strcmp(name, "databases") == 0)
		appendStringInfoString(v, "1");
	else if (strcmp(name, "appendonly") == 0)
		appendStringInfoString(v, "no");
	else if (strcmp(name, "save") == 0)
		appendStringInfoString(v, "");
	else if (strcmp(name, "maxmemory") == 0)
		appendStringInfoString(v, "0");
}

static void
cmd_config(GwCall *call)
{
	static const char *const names[] = {
		"appendonly", "client-query-buffer-limit", "databases", "maxclients",
		"maxmemory", "port", "proto-max-bulk-len", "save", "timeout",
	};

	if (ARGIS(call, 1, "get"))
	{
		bool		match[lengthof(names)] = {false};
		int			n = 0;
		StringInfoData v;

		if (call->argc < 3)
		{
			reply_sub_arity(call, "config", "get");
			return;
		}
		for (int i = 2; i < call->argc; i++)
			for (size_t j = 0; j < lengthof(names); j++)
				if (!match[j] && gw_glob_match(call->argv[i], call->argl[i], names[j], strlen(names[j]), true))
				{
					match[j] = true;
					n++;
				}
		initStringInfo(&v);
		gw_reply_map(call->reply, n);
		for (size_t j = 0; j < lengthof(names); j++)
			if (match[j])
			{
				config_value(names[j], &v);
				gw_reply_bulk_cstr(call->reply, names[j]);
				gw_reply_bulk(call->reply, v.data, v.len);
			}
		pfree(v.data);
	}
	else if (ARGIS(call, 1, "set"))
	{
		if (call->argc < 4)
			reply_sub_arity(call, "config", "set");
		else
			gw_reply_error(call->reply,
						   "ERR nokv: CONFIG SET is not supported; set nokv.resp_* in postgresql.conf and reload");
	}
	else if (ARGIS(call, 1, "resetstat"))
		gw_reply_ok(call->reply);
	else
		reply_unknown_subcommand(call, "CONFIG");
}

static void
append_stat(void *arg, const nokv_stat *s)
{
	StringInfo	buf = (StringInfo) arg;

	if (s->value == floor(s->value) && fabs(s->value) < 1e15)
		appendStringInfo(buf, "%s:%.0f\r\n", s->name, s->value);
	else
		appendStringInfo(buf, "%s:%g\r\n", s->name, s->value);
}

static bool
info_wants(GwCall *call, const char *section, bool in_default)
{
	if (call->argc == 1)
		return in_default;
	for (int i = 1; i < call->argc; i++)
	{
		if (ARGIS(call, i, section) || ARGIS(call, i, "all") || ARGIS(call, i, "everything"))
			return true;
		if (in_default && ARGIS(call, i, "default"))
			return true;
	}
	return false;
}

static void
cmd_info(GwCall *call)
{
	StringInfoData s;
	int			sections = 0;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz started = (TimestampTz) pg_atomic_read_u64(&gw_shared->started_at);
	long		up_s;
	int			up_us;

	initStringInfo(&s);
	TimestampDifference(started, now, &up_s, &up_us);
	if (info_wants(call, "server", true))
	{
		struct utsname un;

		if (uname(&un) != 0)
			strlcpy(un.sysname, "?", sizeof(un.sysname));
		appendStringInfo(&s, "# Server\r\n"
						 "redis_version:%s\r\n"
						 "redis_mode:standalone\r\n"
						 "nokv_version:%s\r\n"
						 "os:%s %s %s\r\n"
						 "arch_bits:%d\r\n"
						 "process_id:%d\r\n"
						 "tcp_port:%d\r\n"
						 "uptime_in_seconds:%ld\r\n"
						 "uptime_in_days:%ld\r\n",
						 GW_REDIS_VERSION, NOKV_VERSION_STRING, un.sysname, un.release, un.machine,
						 (int) (sizeof(void *) * 8), MyProcPid, gw_port(), up_s, up_s / 86400);
		sections++;
	}
	if (info_wants(call, "clients", true))
	{
		if (sections++)
			appendStringInfoString(&s, "\r\n");
		appendStringInfo(&s, "# Clients\r\n"
						 "connected_clients:" UINT64_FORMAT "\r\n"
						 "maxclients:%d\r\n"
						 "blocked_clients:0\r\n",
						 gw_client_count(), gw_client_slots());
	}
	if (info_wants(call, "persistence", true))
	{
		if (sections++)
			appendStringInfoString(&s, "\r\n");
		appendStringInfoString(&s, "# Persistence\r\n"
							   "loading:0\r\n"
							   "aof_enabled:0\r\n"
							   "nokv_durability:postgresql_wal\r\n");
	}
	if (info_wants(call, "stats", true))
	{
		if (sections++)
			appendStringInfoString(&s, "\r\n");
		appendStringInfo(&s, "# Stats\r\n"
						 "total_connections_received:" UINT64_FORMAT "\r\n"
						 "total_commands_processed:" UINT64_FORMAT "\r\n"
						 "total_net_input_bytes:" UINT64_FORMAT "\r\n"
						 "total_net_output_bytes:" UINT64_FORMAT "\r\n"
						 "rejected_connections:" UINT64_FORMAT "\r\n"
						 "keyspace_hits:" UINT64_FORMAT "\r\n"
						 "keyspace_misses:" UINT64_FORMAT "\r\n"
						 "total_error_replies:" UINT64_FORMAT "\r\n"
						 "protocol_errors:" UINT64_FORMAT "\r\n"
						 "buffer_limit_closes:" UINT64_FORMAT "\r\n"
						 "idle_closes:" UINT64_FORMAT "\r\n"
						 "transactions:" UINT64_FORMAT "\r\n"
						 "transaction_retries:" UINT64_FORMAT "\r\n"
						 "command_failures:" UINT64_FORMAT "\r\n"
						 "exec_aborts:" UINT64_FORMAT "\r\n",
						 pg_atomic_read_u64(&gw_shared->total_connections),
						 pg_atomic_read_u64(&gw_shared->commands),
						 pg_atomic_read_u64(&gw_shared->bytes_in),
						 pg_atomic_read_u64(&gw_shared->bytes_out),
						 pg_atomic_read_u64(&gw_shared->rejected_connections),
						 pg_atomic_read_u64(&gw_shared->keyspace_hits),
						 pg_atomic_read_u64(&gw_shared->keyspace_misses),
						 pg_atomic_read_u64(&gw_shared->error_replies),
						 pg_atomic_read_u64(&gw_shared->protocol_errors),
						 pg_atomic_read_u64(&gw_shared->buffer_limit_closes),
						 pg_atomic_read_u64(&gw_shared->idle_closes),
						 pg_atomic_read_u64(&gw_shared->transactions),
						 pg_atomic_read_u64(&gw_shared->transaction_retries),
						 pg_atomic_read_u64(&gw_shared->command_failures),
						 pg_atomic_read_u64(&gw_shared->exec_aborts));
	}
	if (info_wants(call, "replication", true))
	{
		if (sections++)
			appendStringInfoString(&s, "\r\n");
		appendStringInfoString(&s, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
	}
	if (info_wants(call, "keyspace", true))
	{
		int64		keys;
		int64		expires;

		if (sections++)
			appendStringInfoString(&s, "\r\n");
		count_keys(&keys, &expires);
		appendStringInfoString(&s, "# Keyspace\r\n");
		if (keys > 0)
			appendStringInfo(&s, "db0:keys=" INT64_FORMAT ",expires=" INT64_FORMAT ",avg_ttl=0\r\n",
							 keys, expires);
	}
	if (info_wants(call, "nokv", true))
	{
		if (sections++)
			appendStringInfoString(&s, "\r\n");
		appendStringInfoString(&s, "# nokv\r\n");
		nokv_stats_foreach(gw_db(), append_stat, &s);
		nokv_gateway_stats(append_stat, &s);
	}
	gw_reply_verbatim(call->reply, s.data, s.len);
	pfree(s.data);
}

/* ---------- COMMAND ---------- */

static void
reply_command_info(GwReply *r, const GwCommand *cmd)
{
	int			nflags = 0;
	const char *flags[4];

	if (cmd->flags & GW_CMD_WRITE)
		flags[nflags++] = "write";
	if (cmd->flags & GW_CMD_READONLY)
		flags[nflags++] = "readonly";
	if (cmd->flags & GW_CMD_NOAUTH)
		flags[nflags++] = "no_auth";
	if (cmd->flags & GW_CMD_FAST)
		flags[nflags++] = "fast";
	gw_reply_array(r, 10);
	gw_reply_bulk_cstr(r, cmd->name);
	gw_reply_int(r, cmd->arity);
	gw_reply_set(r, nflags);
	for (int i = 0; i < nflags; i++)
		gw_reply_status(r, flags[i]);
	gw_reply_int(r, cmd->first_key);
	gw_reply_int(r, cmd->last_key);
	gw_reply_int(r, cmd->key_step);
	gw_reply_set(r, 1);
	gw_reply_status(r, psprintf("@%s", cmd->group));
	gw_reply_set(r, 0);
	gw_reply_array(r, 0);
	gw_reply_array(r, 0);
}

static void
reply_command_docs(GwReply *r, const GwCommand *cmd)
{
	gw_reply_bulk_cstr(r, cmd->name);
	gw_reply_map(r, 3);
	gw_reply_bulk_cstr(r, "summary");
	gw_reply_bulk_cstr(r, cmd->summary);
	gw_reply_bulk_cstr(r, "since");
	gw_reply_bulk_cstr(r, cmd->since);
	gw_reply_bulk_cstr(r, "group");
	gw_reply_bulk_cstr(r, cmd->group);
}

static void
cmd_command(GwCall *call)
{
	int			n = gw_command_count();

	if (call->argc == 1)
	{
		gw_reply_array(call->reply, n);
		for (int i = 0; i < n; i++)
			reply_command_info(call->reply, gw_command_at(i));
	}
	else if (ARGIS(call, 1, "count"))
	{
		if (call->argc != 2)
			reply_sub_arity(call, "command", "count");
		else
			gw_reply_int(call->reply, n);
	}
	else if (ARGIS(call, 1, "info"))
	{
		gw_reply_array(call->reply, call->argc - 2);
		for (int i = 2; i < call->argc; i++)
		{
			const GwCommand *cmd = gw_lookup_command(call->argv[i], call->argl[i]);

			if (cmd)
				reply_command_info(call->reply, cmd);
			else
				gw_reply_null_array(call->reply);
		}
	}
	else if (ARGIS(call, 1, "docs"))
	{
		if (call->argc == 2)
		{
			gw_reply_map(call->reply, n);
			for (int i = 0; i < n; i++)
				reply_command_docs(call->reply, gw_command_at(i));
		}
		else
		{
			int			found = 0;

			for (int i = 2; i < call->argc; i++)
				if (gw_lookup_command(call->argv[i], call->argl[i]))
					found++;
			gw_reply_map(call->reply, found);
			for (int i = 2; i < call->argc; i++)
			{
				const GwCommand *cmd = gw_lookup_command(call->argv[i], call->argl[i]);

				if (cmd)
					reply_command_docs(call->reply, cmd);
			}
		}
	}
	else if (ARGIS(call, 1, "list"))
	{
		gw_reply_array(call->reply, n);
		for (int i = 0; i < n; i++)
			gw_reply_bulk_cstr(call->reply, gw_command_at(i)->name);
	}
	else
		reply_unknown_subcommand(call, "COMMAND");
}

/* ---------- the table ---------- */

#define W (GW_CMD_WRITE)
#define B (GW_CMD_BATCH)
#define R (GW_CMD_READONLY)
#define F (GW_CMD_FAST)
#define C (GW_CMD_CLIENT | GW_CMD_NOTXN)

static const GwCommand commands[] = {
	/* strings */
	{.name = "get", .arity = 2, .proc = cmd_get, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Returns the string value of a key."},
	{.name = "set", .arity = -3, .proc = cmd_set, .flags = W | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."},
	{.name = "setnx", .arity = 3, .proc = cmd_setnx, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Set the string value of a key only when the key doesn't exist."},
	{.name = "setex", .arity = 4, .proc = cmd_setex, .flags = W | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.0.0", .summary = "Sets the string value and expiration time of a key. Creates the key if it doesn't exist."},
	{.name = "psetex", .arity = 4, .proc = cmd_psetex, .flags = W | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.6.0", .summary = "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist."},
	{.name = "getset", .arity = 3, .proc = cmd_getset, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Returns the previous string value of a key after setting it to a new value."},
	{.name = "getdel", .arity = 2, .proc = cmd_getdel, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "6.2.0", .summary = "Returns the string value of a key after deleting the key."},
	{.name = "getex", .arity = -2, .proc = cmd_getex, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "6.2.0", .summary = "Returns the string value of a key after setting its expiration time."},
	{.name = "mget", .arity = -2, .proc = cmd_mget, .flags = R | F, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Atomically returns the string values of one or more keys."},
	{.name = "mset", .arity = -3, .proc = cmd_mset, .flags = W | B, .first_key = 1, .last_key = -1, .key_step = 2,
	.group = "string", .since = "1.0.1", .summary = "Atomically creates or modifies the string values of one or more keys."},
	{.name = "msetnx", .arity = -3, .proc = cmd_msetnx, .flags = W, .first_key = 1, .last_key = -1, .key_step = 2,
	.group = "string", .since = "1.0.1", .summary = "Atomically modifies the string values of one or more keys only when all keys don't exist."},
	{.name = "append", .arity = 3, .proc = cmd_append, .flags = W, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.0.0", .summary = "Appends a string to the value of a key. Creates the key if it doesn't exist."},
	{.name = "strlen", .arity = 2, .proc = cmd_strlen, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.2.0", .summary = "Returns the length of a string value."},
	{.name = "getrange", .arity = 4, .proc = cmd_getrange, .flags = R, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.4.0", .summary = "Returns a substring of the string stored at a key."},
	{.name = "substr", .arity = 4, .proc = cmd_getrange, .flags = R, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Returns a substring from a string value."},
	{.name = "setrange", .arity = 4, .proc = cmd_setrange, .flags = W, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.2.0", .summary = "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."},
	{.name = "incr", .arity = 2, .proc = cmd_incr, .flags = W | F | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."},
	{.name = "decr", .arity = 2, .proc = cmd_decr, .flags = W | F | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."},
	{.name = "incrby", .arity = 3, .proc = cmd_incrby, .flags = W | F | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."},
	{.name = "decrby", .arity = 3, .proc = cmd_decrby, .flags = W | F | B, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "1.0.0", .summary = "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."},
	{.name = "incrbyfloat", .arity = 3, .proc = cmd_incrbyfloat, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "string", .since = "2.6.0", .summary = "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."},

	/* keys */
	{.name = "del", .arity = -2, .proc = del_generic, .flags = W, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Deletes one or more keys."},
	{.name = "unlink", .arity = -2, .proc = del_generic, .flags = W | F, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "generic", .since = "4.0.0", .summary = "Asynchronously deletes one or more keys."},
	{.name = "exists", .arity = -2, .proc = cmd_exists, .flags = R | F, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Determines whether one or more keys exist."},
	{.name = "touch", .arity = -2, .proc = cmd_exists, .flags = R | F, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "generic", .since = "3.2.1", .summary = "Returns the number of existing keys out of those specified after updating the time they were last accessed."},
	{.name = "type", .arity = 2, .proc = cmd_type, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Determines the type of value stored at a key."},
	{.name = "expire", .arity = -3, .proc = cmd_expire, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Sets the expiration time of a key in seconds."},
	{.name = "pexpire", .arity = -3, .proc = cmd_pexpire, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "2.6.0", .summary = "Sets the expiration time of a key in milliseconds."},
	{.name = "expireat", .arity = -3, .proc = cmd_expireat, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "1.2.0", .summary = "Sets the expiration time of a key to a Unix timestamp."},
	{.name = "pexpireat", .arity = -3, .proc = cmd_pexpireat, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "2.6.0", .summary = "Sets the expiration time of a key to a Unix milliseconds timestamp."},
	{.name = "ttl", .arity = 2, .proc = cmd_ttl, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Returns the expiration time in seconds of a key."},
	{.name = "pttl", .arity = 2, .proc = cmd_pttl, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "2.6.0", .summary = "Returns the expiration time in milliseconds of a key."},
	{.name = "expiretime", .arity = 2, .proc = cmd_expiretime, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "7.0.0", .summary = "Returns the expiration time of a key as a Unix timestamp."},
	{.name = "pexpiretime", .arity = 2, .proc = cmd_pexpiretime, .flags = R | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "7.0.0", .summary = "Returns the expiration time of a key as a Unix milliseconds timestamp."},
	{.name = "persist", .arity = 2, .proc = cmd_persist, .flags = W | F, .first_key = 1, .last_key = 1, .key_step = 1,
	.group = "generic", .since = "2.2.0", .summary = "Removes the expiration time of a key."},
	{.name = "rename", .arity = 3, .proc = cmd_rename, .flags = W, .first_key = 1, .last_key = 2, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Renames a key and overwrites the destination."},
	{.name = "renamenx", .arity = 3, .proc = cmd_renamenx, .flags = W | F, .first_key = 1, .last_key = 2, .key_step = 1,
	.group = "generic", .since = "1.0.0", .summary = "Renames a key only when the target key name doesn't exist."},
	{.name = "scan", .arity = -2, .proc = cmd_scan, .flags = R,
	.group = "generic", .since = "2.8.0", .summary = "Iterates over the key names in the database."},
	{.name = "keys", .arity = 2, .proc = cmd_keys, .flags = R,
	.group = "generic", .since = "1.0.0", .summary = "Returns all key names that match a pattern."},
	{.name = "dbsize", .arity = 1, .proc = cmd_dbsize, .flags = R,
	.group = "server", .since = "1.0.0", .summary = "Returns the number of keys in the database."},

	/* transactions (EXEC and WATCH are dispatched specially by gateway.c) */
	{.name = "multi", .arity = 1, .proc = cmd_multi, .flags = C | F | GW_CMD_NOMULTI,
	.group = "transactions", .since = "1.2.0", .summary = "Starts a transaction."},
	{.name = "exec", .arity = 1, .proc = cmd_exec, .flags = GW_CMD_NOMULTI,
	.group = "transactions", .since = "1.2.0", .summary = "Executes all commands in a transaction."},
	{.name = "discard", .arity = 1, .proc = cmd_discard, .flags = C | F | GW_CMD_NOMULTI,
	.group = "transactions", .since = "2.0.0", .summary = "Discards a transaction."},
	{.name = "watch", .arity = -2, .proc = cmd_watch, .flags = F | GW_CMD_NOMULTI, .first_key = 1, .last_key = -1, .key_step = 1,
	.group = "transactions", .since = "2.2.0", .summary = "Monitors changes to keys to determine the execution of a transaction."},
	{.name = "unwatch", .arity = 1, .proc = cmd_unwatch, .flags = C | F,
	.group = "transactions", .since = "2.2.0", .summary = "Forgets about watched keys of a transaction."},

	/* connection */
	{.name = "ping", .arity = -1, .proc = cmd_ping, .flags = C | F,
	.group = "connection", .since = "1.0.0", .summary = "Returns the server's liveliness response."},
	{.name = "echo", .arity = 2, .proc = cmd_echo, .flags = C | F,
	.group = "connection", .since = "1.0.0", .summary = "Returns the given string."},
	{.name = "select", .arity = 2, .proc = cmd_select, .flags = C | F,
	.group = "connection", .since = "1.0.0", .summary = "Changes the selected database."},
	{.name = "auth", .arity = -2, .proc = cmd_auth, .flags = C | F | GW_CMD_NOAUTH,
	.group = "connection", .since = "1.0.0", .summary = "Authenticates the connection."},
	{.name = "hello", .arity = -1, .proc = cmd_hello, .flags = C | F | GW_CMD_NOAUTH,
	.group = "connection", .since = "6.0.0", .summary = "Handshakes with the Redis server."},
	{.name = "client", .arity = -2, .proc = cmd_client, .flags = C,
	.group = "connection", .since = "2.4.0", .summary = "A container for client connection commands."},
	{.name = "reset", .arity = 1, .proc = cmd_reset, .flags = C | F | GW_CMD_NOAUTH | GW_CMD_NOMULTI,
	.group = "connection", .since = "6.2.0", .summary = "Resets the connection."},
	{.name = "quit", .arity = -1, .proc = cmd_ping, .flags = C | F | GW_CMD_NOAUTH | GW_CMD_NOMULTI,
	.group = "connection", .since = "1.0.0", .summary = "Closes the connection."},

	/* server */
	{.name = "command", .arity = -1, .proc = cmd_command, .flags = C,
	.group = "server", .since = "2.8.13", .summary = "Returns detailed information about all commands."},
	{.name = "config", .arity = -2, .proc = cmd_config, .flags = C,
	.group = "server", .since = "2.0.0", .summary = "A container for server configuration commands."},
	{.name = "info", .arity = -1, .proc = cmd_info, .flags = 0,
	.group = "server", .since = "1.0.0", .summary = "Returns information and statistics about the server."},
	{.name = "time", .arity = 1, .proc = cmd_time, .flags = C | F,
	.group = "server", .since = "2.6.0", .summary = "Returns the server time."},
};

#undef W
#undef B
#undef R
#undef F
#undef C

/* the commands by name: open addressing over a power of two, -1 empty */
#define GW_COMMAND_SLOTS 256
static int16 command_slots[GW_COMMAND_SLOTS];

static uint32
command_hash(const char *lower, size_t len)
{
	return hash_bytes((const unsigned char *) lower, (int) len) & (GW_COMMAND_SLOTS - 1);
}

const GwCommand *
gw_lookup_command(const char *name, size_t len)
{
	char		lower[32];

	if (len == 0 || len >= sizeof(lower))
		return NULL;
	for (size_t i = 0; i < len; i++)
		lower[i] = pg_tolower((unsigned char) name[i]);
	lower[len] = '\0';
	for (uint32 h = command_hash(lower, len); command_slots[h] >= 0; h = (h + 1) & (GW_COMMAND_SLOTS - 1))
		if (strcmp(commands[command_slots[h]].name, lower) == 0)
			return &commands[command_slots[h]];
	return NULL;
}

int
gw_command_count(void)
{
	return lengthof(commands);
}

const GwCommand *
gw_command_at(int i)
{
	return &commands[i];
}

/* commands of Redis data types (and server commands) nokv does not have */
static const char *const unsupported[] = {
	"lpush", "rpush", "lpop", "rpop", "lrange", "llen", "lindex", "lset", "lrem", "ltrim",
	"linsert", "lpos", "lmove", "blpop", "brpop", "rpoplpush", "lpushx", "rpushx",
	"hset", "hget", "hmset", "hmget", "hdel", "hgetall", "hkeys", "hvals", "hlen",
	"hexists", "hincrby", "hincrbyfloat", "hsetnx", "hscan", "hstrlen", "hrandfield",
	"sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember",
	"sinter", "sunion", "sdiff", "smove", "sscan", "sinterstore", "sunionstore", "sdiffstore",
	"zadd", "zrem", "zrange", "zrangebyscore", "zrevrange", "zscore", "zcard", "zincrby",
	"zrank", "zrevrank", "zcount", "zscan", "zpopmin", "zpopmax", "zrangestore",
	"xadd", "xrange", "xrevrange", "xlen", "xread", "xgroup", "xreadgroup", "xack", "xdel", "xtrim",
	"pfadd", "pfcount", "pfmerge", "setbit", "getbit", "bitcount", "bitop", "bitpos", "bitfield",
	"geoadd", "geodist", "geopos", "georadius", "geosearch",
	"subscribe", "publish", "psubscribe", "unsubscribe", "punsubscribe", "pubsub",
	"eval", "evalsha", "script", "function", "fcall",
	"flushdb", "flushall", "swapdb", "move", "copy", "dump", "restore", "object", "randomkey",
	"lcs", "save", "bgsave", "bgrewriteaof", "shutdown", "replicaof", "slaveof", "monitor",
	"sort", "migrate", "wait",
};

bool
gw_is_unsupported_type_command(const char *name, size_t len)
{
	for (size_t i = 0; i < lengthof(unsupported); i++)
		if (strlen(unsupported[i]) == len && pg_strncasecmp(unsupported[i], name, len) == 0)
			return true;
	return false;
}

void
gw_commands_init(void)
{
	StaticAssertStmt(lengthof(commands) < GW_COMMAND_SLOTS / 2, "GW_COMMAND_SLOTS is too small");
	memset(command_slots, -1, sizeof(command_slots));
	for (int i = 0; i < (int) lengthof(commands); i++)
	{
		uint32		h = command_hash(commands[i].name, strlen(commands[i].name));

		while (command_slots[h] >= 0)
			h = (h + 1) & (GW_COMMAND_SLOTS - 1);
		command_slots[h] = (int16) i;
	}
	writes_cxt = AllocSetContextCreate(TopMemoryContext, "nokv resp owned keys", ALLOCSET_DEFAULT_SIZES);
	wbatch = nokv_kv_batch_create(TopMemoryContext);
	scan_cursors = MemoryContextAllocZero(TopMemoryContext, GW_SCAN_CURSORS * sizeof(ScanCursor));
	/* cursors of an earlier worker must not name this one's positions */
	scan_next_id = ((uint64) (GetCurrentTimestamp() % 1000000)) * GW_SCAN_CURSORS + 1;
}
