/*-------------------------------------------------------------------------
 *
 * gateway.c
 *	  The RESP (Redis protocol) gateway: settings, shared statistics, the
 *	  background worker, its event loop and the transactions commands run
 *	  in.
 *
 * One background worker ("nokv resp gateway"), registered only when
 * nokv.resp_listen is set, serves every client from one event loop on a
 * PostgreSQL WaitEventSet (the latch, postmaster death, the listening
 * socket and every client socket, all non-blocking).  It connects to no
 * database: the key-value namespace (kv.c) needs no catalog.
 *
 * Each turn of the loop reads what the sockets have and then runs
 * "rounds".  A round takes every complete request of every client (in
 * each client's order, a bounded number per client) and turns each into
 * an entry:
 *
 *	- requests whose reply depends only on the connection (AUTH, MULTI,
 *	  a command queued inside MULTI, an unknown command, a protocol error,
 *	  ...) are answered at once, when the entry is made ("done");
 *	- everything else (the key commands, WATCH, EXEC, INFO, ...) runs
 *	  later, all of the round in one PostgreSQL transaction, one after the
 *	  other with CommandCounterIncrement between them, so each sees the
 *	  ones before it exactly as if it ran alone.
 *
 * Replies collect in the round's reply buffer and are appended to the
 * clients' output buffers only after the commit, so no client ever sees
 * a write (or a value read after one) that could still be lost.  A round
 * of any number of writes costs one commit and one WAL flush, and its
 * consecutive blind writes share one WAL record (commands.c).  After the
 * commit a client's replies go from the round's buffer straight to its
 * socket when nothing of it is queued.  Connection
 * state changes happen when entries are made and are never repeated,
 * while what runs in the transaction has no effect outside it, so a round
 * whose transaction fails (lock timeout, deadlock, an engine error) is
 * simply run again with a subtransaction per entry: the entry that raised
 * the error answers "-ERR nokv: ..." and the others run as before.  An
 * error never ends the worker.
 *
 * Writers of a key wait for a PostgreSQL transaction that holds an
 * uncommitted write of it (nokv_kv_lock); since that stalls every client
 * of this single process, the worker runs with lock_timeout =
 * nokv.resp_lock_timeout.
 *
 * src/gateway/gateway.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "gateway.h"

PGDLLEXPORT void nokv_gateway_main(Datum main_arg);

/* ---------- settings ---------- */

char	   *gw_listen = NULL;
char	   *gw_password = NULL;
int			gw_max_clients = 1000;
int			gw_max_bulk_len = 512 * 1024 * 1024;
int			gw_client_buffer_kb = 64 * 1024;
int			gw_output_buffer_kb = 256 * 1024;
int			gw_idle_timeout_s = 0;
int			gw_lock_timeout_ms = 1000;

/* a round's bounds: requests per client, entries in all */
#define GW_CLIENT_ROUND_MAX 1024
#define GW_ROUND_MAX 16384
/* stop taking a client's requests while this much output waits */
#define GW_OUTPUT_SOFT_LIMIT (256 * 1024)
#define GW_READ_CHUNK (64 * 1024)
#define GW_READ_MAX_PER_EVENT (4 * 1024 * 1024)

GwShared   *gw_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * "host:port", "[v6addr]:port" or ":port"/"*:port" (every address).
 * Returns false with a reason.
 */
static bool
parse_listen(const char *value, char *host, size_t hostlen, int *port, const char **why)
{
	const char *colon;
	const char *h = value;
	size_t		hl;
	char	   *end;
	long		p;

	colon = strrchr(value, ':');
	if (colon == NULL)
	{
		*why = "The value must be host:port, for example 127.0.0.1:6380.";
		return false;
	}
	hl = colon - value;
	if (hl >= 2 && value[0] == '[' && value[hl - 1] == ']')
	{
		h = value + 1;
		hl -= 2;
	}
	else if (memchr(value, ':', hl) != NULL)
	{
		*why = "Write an IPv6 address in brackets, for example [::1]:6380.";
		return false;
	}
	if (hl >= hostlen)
	{
		*why = "The host name is too long.";
		return false;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
	{
		*why = "The port must be a number from 1 to 65535.";
		return false;
	}
	*port = (int) p;
	return true;
}

static bool
check_listen(char **newval, void **extra, GucSource source)
{
	char		host[256];
	int			port;
	const char *why;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!parse_listen(*newval, host, sizeof(host), &port, &why))
	{
		GUC_check_errdetail("%s", why);
		return false;
	}
	return true;
}

static void
define_settings(void)
{
	DefineCustomStringVariable("nokv.resp_listen",
							   "Address (host:port) the RESP gateway listens on.",
							   "Empty (the default) leaves the gateway off.",
							   &gw_listen, "",
							   PGC_POSTMASTER, 0, check_listen, NULL, NULL);
	DefineCustomStringVariable("nokv.resp_password",
							   "Password RESP clients must give with AUTH.",
							   "Empty means no AUTH is required.",
							   &gw_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_max_clients",
							"Maximum number of RESP clients connected at once.",
							NULL, &gw_max_clients, 1000, 1, 100000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_max_bulk_len",
							"Longest bulk string a RESP request may carry.",
							"Never more than the largest value nokv can store.",
							&gw_max_bulk_len, 512 * 1024 * 1024, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_client_buffer",
							"Largest query buffer of a RESP client; beyond it the client is disconnected.",
							NULL, &gw_client_buffer_kb, 64 * 1024, 64, INT_MAX / 1024,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_output_buffer_limit",
							"Largest amount of unsent replies of a RESP client; beyond it the client is disconnected.",
							"0 means no limit.",
							&gw_output_buffer_kb, 256 * 1024, 0, INT_MAX / 1024,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_idle_timeout",
							"Disconnect RESP clients idle this long.",
							"0 (the default) never does.",
							&gw_idle_timeout_s, 0, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.resp_lock_timeout",
							"Longest wait of a RESP command for a key locked by a PostgreSQL transaction.",
							"The command then fails; 0 waits without limit, stalling every client.",
							&gw_lock_timeout_ms, 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

/* ---------- shared memory ---------- */

static void
gw_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(GwShared)));
}

static void
gw_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gw_shared = ShmemInitStruct("nokv gateway", sizeof(GwShared), &found);
	if (!found)
	{
		pg_atomic_uint64 *f = (pg_atomic_uint64 *) gw_shared;

		for (size_t i = 0; i < sizeof(GwShared) / sizeof(pg_atomic_uint64); i++)
			pg_atomic_init_u64(&f[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---------- module load ---------- */

void
nokv_gateway_init(void)
{
	define_settings();
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = gw_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = gw_shmem_startup;

	if (gw_listen != NULL && gw_listen[0] != '\0')
	{
		BackgroundWorker bgw;

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		/* a port in use or a crash: try again, but not in a tight loop */
		bgw.bgw_restart_time = 5;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, "nokv");
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "nokv_gateway_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "nokv resp gateway");
		snprintf(bgw.bgw_type, BGW_MAXLEN, "nokv resp gateway");
		RegisterBackgroundWorker(&bgw);
	}
}

/* ---------- statistics rows of nokv_stats ---------- */

void
nokv_gateway_stats(NokvStatEmit emit, void *arg)
{
	static const struct
	{
		const char *name;
		size_t		offset;
		const char *unit;
		const char *description;
	}			rows[] = {
		{"resp.connected_clients", offsetof(GwShared, connected_clients), "count", "RESP clients connected now"},
		{"resp.connections_received", offsetof(GwShared, total_connections), "count", "RESP connections accepted since the gateway started"},
		{"resp.connections_rejected", offsetof(GwShared, rejected_connections), "count", "RESP connections refused by nokv.resp_max_clients"},
		{"resp.commands", offsetof(GwShared, commands), "count", "RESP commands received"},
		{"resp.error_replies", offsetof(GwShared, error_replies), "count", "error replies sent"},
		{"resp.protocol_errors", offsetof(GwShared, protocol_errors), "count", "clients disconnected for a malformed request"},
		{"resp.buffer_limit_closes", offsetof(GwShared, buffer_limit_closes), "count", "clients disconnected for exceeding the query or output buffer limit"},
		{"resp.idle_closes", offsetof(GwShared, idle_closes), "count", "clients disconnected by nokv.resp_idle_timeout"},
		{"resp.net_input_bytes", offsetof(GwShared, bytes_in), "bytes", "bytes read from RESP clients"},
		{"resp.net_output_bytes", offsetof(GwShared, bytes_out), "bytes", "bytes written to RESP clients"},
		{"resp.transactions", offsetof(GwShared, transactions), "count", "PostgreSQL transactions the gateway ran (one per round of commands)"},
		{"resp.transaction_retries", offsetof(GwShared, transaction_retries), "count", "rounds re-run with a subtransaction per command after an error"},
		{"resp.command_failures", offsetof(GwShared, command_failures), "count", "commands that failed with a PostgreSQL error (lock timeout, deadlock, ...)"},
		{"resp.exec_aborts", offsetof(GwShared, exec_aborts), "count", "EXECs answered nil because a watched key changed"},
		{"resp.keyspace_hits", offsetof(GwShared, keyspace_hits), "count", "key lookups that found a value"},
		{"resp.keyspace_misses", offsetof(GwShared, keyspace_misses), "count", "key lookups that found none"},
	};

	if (gw_shared == NULL)
		return;
	for (size_t i = 0; i < lengthof(rows); i++)
	{
		nokv_stat	s;

		s.name = rows[i].name;
		s.value = (double) pg_atomic_read_u64((pg_atomic_uint64 *) ((char *) gw_shared + rows[i].offset));
		s.unit = rows[i].unit;
		s.description = rows[i].description;
		emit(arg, &s);
	}
	{
		nokv_stat	s = {
			.name = "resp.running",
			.value = pg_atomic_read_u64(&gw_shared->pid) != 0 ? 1 : 0,
			.unit = "bool",
			.description = "the RESP gateway worker is serving (nokv.resp_listen)",
		};

		emit(arg, &s);
	}
}

/* ---------- worker state ---------- */

static MemoryContext gw_cxt = NULL;		/* the worker's long-lived memory */
static MemoryContext round_cxt = NULL;	/* reset after every round */
static pgsocket listen_sock = PGINVALID_SOCKET;
static int	listen_port = 0;
static GwClient **clients = NULL;		/* gw_max_clients slots */
static int	nclients = 0;
static uint64 next_client_id = 1;
static WaitEventSet *wes = NULL;
static bool wes_stale = true;
static int	round_start_slot = 0;
static nokv_db *engine = NULL;

/* the round */
static GwEntry *entries = NULL;
static int	nentries = 0;
/* the time of this turn of the event loop: activity times need no more */
static TimestampTz loop_now = 0;
static uint64 round_commands = 0;	/* counted into gw_shared once per round */
static int	entries_cap = 0;
static GwBuf round_replies;
static List *deferred_frees = NIL;

nokv_db *
gw_db(void)
{
	return engine;
}

int
gw_port(void)
{
	return listen_port;
}

uint64
gw_client_count(void)
{
	return (uint64) nclients;
}

GwClient *
gw_client_by_slot(int i)
{
	return (i >= 0 && i < gw_max_clients) ? clients[i] : NULL;
}

int
gw_client_slots(void)
{
	return gw_max_clients;
}

/*
 * The longest bulk string accepted: the setting, but never more than the
 * largest value nokv stores under a one-byte key (a longer one could only
 * be refused later, after buffering it).
 */
size_t
gw_effective_max_bulk(void)
{
	size_t		limit = (size_t) gw_max_bulk_len;
	size_t		vmax = nokv_kv_max_value_size(2);

	return Min(limit, vmax);
}

/* the query buffer limit, always room for one largest bulk */
static size_t
client_buffer_limit(void)
{
	size_t		limit = (size_t) gw_client_buffer_kb * 1024;

	return Max(limit, gw_effective_max_bulk() + 2 * GW_INLINE_MAX);
}

bool
gw_password_required(void)
{
	return gw_password != NULL && gw_password[0] != '\0';
}

/* compares every byte, whatever differs first */
bool
gw_password_matches(const char *p, size_t len)
{
	size_t		plen = strlen(gw_password);
	unsigned char diff = (plen != len);

	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char) p[i] ^ (unsigned char) gw_password[i < plen ? i : 0];
	return plen > 0 && diff == 0;
}

void
gw_client_set_authenticated(GwClient *c)
{
	c->authenticated = true;
}

void
gw_defer_free(void *p)
{
	MemoryContext old = MemoryContextSwitchTo(round_cxt);

	deferred_frees = lappend(deferred_frees, p);
	MemoryContextSwitchTo(old);
}

/* UNWATCH: the records may still be read by entries of this round */
void
gw_watch_release(GwClient *c)
{
	for (int i = 0; i < c->nwatch; i++)
	{
		gw_defer_free(c->watch[i]->key);
		gw_defer_free(c->watch[i]);
	}
	c->nwatch = 0;
}

void
gw_queue_release(GwClient *c)
{
	for (int i = 0; i < c->nqueue; i++)
	{
		GwQueued   *q = &c->queue[i];

		for (int j = 0; j < q->argc; j++)
			gw_defer_free(q->argv[j]);
		gw_defer_free(q->argv);
		gw_defer_free(q->argl);
	}
	c->nqueue = 0;
	c->queue_bytes = 0;
	c->in_multi = false;
	c->multi_dirty = false;
}

/* ---------- clients ---------- */

static void
client_new(pgsocket sock, const struct sockaddr_storage *sa)
{
	GwClient   *c;
	MemoryContext cxt;
	char		host[NI_MAXHOST] = "?";
	char		serv[NI_MAXSERV] = "?";
	int			slot;

	cxt = AllocSetContextCreate(gw_cxt, "nokv resp client", ALLOCSET_SMALL_SIZES);
	c = MemoryContextAllocZero(cxt, sizeof(GwClient));
	c->cxt = cxt;
	c->sock = sock;
	c->id = next_client_id++;
	c->event_pos = -1;
	c->resp = 2;
	c->authenticated = !gw_password_required();
	c->created = c->last_active = GetCurrentTimestamp();
	gw_buf_init(&c->in, cxt, 16 * 1024);
	gw_buf_init(&c->out, cxt, 16 * 1024);
	c->argcap = 16;
	c->arg_off = MemoryContextAlloc(cxt, c->argcap * sizeof(size_t));
	c->arg_len = MemoryContextAlloc(cxt, c->argcap * sizeof(size_t));
	gw_parse_reset(c);
	(void) getnameinfo((const struct sockaddr *) sa,
					   sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
					   host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->addr, sizeof(c->addr), sa->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);

	for (slot = 0; slot < gw_max_clients; slot++)
		if (clients[slot] == NULL)
			break;
	Assert(slot < gw_max_clients);
	c->slot = slot;
	clients[slot] = c;
	nclients++;
	wes_stale = true;
	GW_COUNT(total_connections, 1);
	pg_atomic_write_u64(&gw_shared->connected_clients, nclients);
}

static void
client_free(GwClient *c)
{
	/* records an entry of this round may still read go with the round */
	gw_watch_release(c);
	gw_queue_release(c);
	closesocket(c->sock);
	clients[c->slot] = NULL;
	nclients--;
	wes_stale = true;
	pg_atomic_write_u64(&gw_shared->connected_clients, nclients);
	gw_defer_free(c);			/* the struct; its context below */
	MemoryContextSetParent(c->cxt, round_cxt);
}

static void
accept_clients(void)
{
	for (;;)
	{
		struct sockaddr_storage sa;
		socklen_t	salen = sizeof(sa);
		pgsocket	sock;
		int			one = 1;

		sock = accept(listen_sock, (struct sockaddr *) &sa, &salen);
		if (sock == PGINVALID_SOCKET)
		{
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("nokv resp gateway could not accept a connection: %m")));
			return;
		}
		if (nclients >= gw_max_clients)
		{
			static const char msg[] = "-ERR max number of clients reached\r\n";

			/* best effort, as Redis: the socket is fresh, the reply small */
			(void) send(sock, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			closesocket(sock);
			GW_COUNT(rejected_connections, 1);
			continue;
		}
		if (!pg_set_noblock(sock))
		{
			closesocket(sock);
			continue;
		}
		if (sa.ss_family != AF_UNIX)
			(void) setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		client_new(sock, &sa);
	}
}

/* read what the socket has (bounded per event for fairness) */
static void
client_read(GwClient *c)
{
	size_t		total = 0;

	while (total < GW_READ_MAX_PER_EVENT)
	{
		size_t		want = GW_READ_CHUNK;
		ssize_t		n;
		size_t		room;

		/* a large bulk in progress: make room for all of it at once */
		if (c->reqtype == '*' && c->bulk_len > 0)
		{
			size_t		need = (size_t) c->bulk_len + 2;
			size_t		have = c->in.len - c->parsed;

			if (need > have && need - have > want)
				want = need - have;
		}
		gw_buf_reserve(&c->in, want);
		room = c->in.cap - c->in.len;
		n = recv(c->sock, c->in.data + c->in.len, room, 0);
		if (n > 0)
		{
			c->in.len += n;
			total += n;
			if ((size_t) n < room)
				break;			/* drained */
			continue;
		}
		if (n == 0)
		{
			/* the peer is done sending: answer what it sent, then close */
			c->eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->closing = true;
		break;
	}
	if (total > 0)
	{
		GW_COUNT(bytes_in, total);
		c->last_active = loop_now;
	}
	if (c->in.len > client_buffer_limit())
	{
		ereport(LOG,
				(errmsg("nokv resp gateway: closing client %s that reached the query buffer limit",
						c->addr),
				 errdetail("The query buffer holds %zu bytes; nokv.resp_client_buffer is %d kB.",
						   c->in.len, gw_client_buffer_kb)));
		GW_COUNT(buffer_limit_closes, 1);
		c->closing = true;
	}
}

/* write what the socket takes */
static void
client_flush(GwClient *c)
{
	size_t		total = 0;

	while (c->sent < c->out.len)
	{
		ssize_t		n = send(c->sock, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);

		if (n > 0)
		{
			c->sent += n;
			total += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		c->closing = true;
		break;
	}
	if (total > 0)
	{
		GW_COUNT(bytes_out, total);
		c->last_active = loop_now;
	}
	if (c->sent == c->out.len)
	{
		c->out.len = 0;
		c->sent = 0;
		gw_buf_shrink(&c->out, 64 * 1024);
		if (c->close_after_reply)
			c->closing = true;
	}
	else if (c->sent > c->out.len / 2)
	{
		gw_buf_consume(&c->out, c->sent);
		c->sent = 0;
	}
	if (gw_output_buffer_kb > 0 && c->out.len - c->sent > (size_t) gw_output_buffer_kb * 1024)
	{
		ereport(LOG,
				(errmsg("nokv resp gateway: closing client %s that reached the output buffer limit",
						c->addr),
				 errdetail("%zu bytes of replies wait; nokv.resp_output_buffer_limit is %d kB.",
						   c->out.len - c->sent, gw_output_buffer_kb)));
		GW_COUNT(buffer_limit_closes, 1);
		c->closing = true;
	}
}

/* drop the parsed part of the query buffer, keeping a half-read request */
static void
client_compact_input(GwClient *c)
{
	size_t		keep_from = c->reqtype != 0 ? c->req_start : c->parsed;

	if (keep_from > 0)
	{
		gw_buf_consume(&c->in, keep_from);
		c->parsed -= keep_from;
		c->req_start -= keep_from;
		if (c->reqtype == '*')
			for (int i = 0; i < c->argc; i++)
				c->arg_off[i] -= keep_from;
	}
	if (c->in.len == 0)
		gw_buf_shrink(&c->in, 32 * 1024);
}

/* ---------- rounds: making entries ---------- */

static GwEntry *
new_entry(GwClient *c, GwEntryKind kind)
{
	GwEntry    *e;

	if (nentries >= entries_cap)
	{
		entries_cap = Max(entries_cap * 2, 256);
		entries = entries ? repalloc_huge(entries, entries_cap * sizeof(GwEntry))
			: MemoryContextAllocHuge(gw_cxt, entries_cap * sizeof(GwEntry));
	}
	e = &entries[nentries++];
	memset(e, 0, sizeof(*e));
	e->client = c;
	e->kind = kind;
	e->resp = c->resp;
	return e;
}

/* an entry that runs one command (or EXEC) with its arguments */
static GwEntry *
new_command_entry(GwClient *c, GwEntryKind kind, const GwCommand *cmd, int argc, char **argv,
				  size_t *argl)
{
	GwEntry    *e = new_entry(c, kind);

	e->cmd = cmd;
	e->argc = argc;
	e->argv = argv;
	e->argl = argl;
	return e;
}

/* an entry answered now; returns the reply to write into */
static GwReply *
done_entry(GwClient *c, GwReply *r)
{
	GwEntry    *e = new_entry(c, GW_ENTRY_DONE);

	e->done = true;
	e->reply_off = round_replies.len;
	r->buf = &round_replies;
	r->resp = c->resp;
	r->error = false;
	return r;
}

/* call after writing a done entry's reply */
static void
done_entry_end(void)
{
	GwEntry    *e = &entries[nentries - 1];

	e->reply_len = round_replies.len - e->reply_off;
}

static void
done_error(GwClient *c, const char *msg)
{
	GwReply		r;

	gw_reply_error(done_entry(c, &r), msg);
	done_entry_end();
}

/* a copy of a request for the MULTI queue, NUL-terminated arguments */
static void
queue_command(GwClient *c, const GwCommand *cmd, int argc, char **argv, size_t *argl)
{
	GwQueued   *q;

	if (c->nqueue >= c->queue_cap)
	{
		int			cap = Max(c->queue_cap * 2, 8);

		c->queue = c->queue ? repalloc_huge(c->queue, cap * sizeof(GwQueued))
			: MemoryContextAlloc(c->cxt, cap * sizeof(GwQueued));
		c->queue_cap = cap;
	}
	q = &c->queue[c->nqueue++];
	q->cmd = cmd;
	q->argc = argc;
	q->argv = MemoryContextAlloc(c->cxt, argc * sizeof(char *));
	q->argl = MemoryContextAlloc(c->cxt, argc * sizeof(size_t));
	for (int i = 0; i < argc; i++)
	{
		q->argv[i] = MemoryContextAllocHuge(c->cxt, argl[i] + 1);
		memcpy(q->argv[i], argv[i], argl[i]);
		q->argv[i][argl[i]] = '\0';
		q->argl[i] = argl[i];
		c->queue_bytes += argl[i] + 32;
	}
}

static bool
arity_ok(const GwCommand *cmd, int argc)
{
	return cmd->arity > 0 ? argc == cmd->arity : argc >= -cmd->arity;
}

/* the key arguments fit nokv's key size; else an error reply */
static bool
keys_fit(const GwCommand *cmd, int argc, size_t *argl, char *msg, size_t msglen)
{
	int			last;

	if (cmd->first_key <= 0)
		return true;
	last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
	for (int i = cmd->first_key; i <= last && i < argc; i += Max(cmd->key_step, 1))
		if (argl[i] > NOKV_KV_MAX_KEY)
		{
			snprintf(msg, msglen, "ERR nokv: key of %zu bytes exceeds the maximum of %d bytes",
					 argl[i], NOKV_KV_MAX_KEY);
			return false;
		}
	return true;
}

/*
 * Turn the client's parsed request into an entry: answered now when only
 * the connection's state is involved, else to run in the round's
 * transaction.  Checks in Redis's order (processCommand): QUIT, the
 * command's name and arity, AUTH, MULTI queueing.
 */
static void
dispatch(GwClient *c)
{
	int			argc = c->argc;
	char	  **argv = MemoryContextAlloc(round_cxt, argc * sizeof(char *));
	size_t	   *argl = MemoryContextAlloc(round_cxt, argc * sizeof(size_t));
	const GwCommand *cmd;
	GwEntry    *e;
	char		msg[160];

	for (int i = 0; i < argc; i++)
	{
		argv[i] = c->in.data + c->arg_off[i];
		argl[i] = c->arg_len[i];
		argv[i][argl[i]] = '\0';	/* over the "\r" (or a separator) after it */
	}
	round_commands++;

	if (argl[0] == 4 && pg_strcasecmp(argv[0], "quit") == 0)
	{
		GwReply		r;

		gw_reply_ok(done_entry(c, &r));
		done_entry_end();
		c->close_after_reply = true;
		return;
	}

	cmd = gw_lookup_command(argv[0], argl[0]);
	if (cmd == NULL)
	{
		StringInfoData s;

		initStringInfo(&s);
		if (gw_is_unsupported_type_command(argv[0], argl[0]))
			appendStringInfo(&s, "ERR unsupported command '%.128s': the nokv gateway stores strings only",
							 argv[0]);
		else
		{
			appendStringInfo(&s, "ERR unknown command '%.128s', with args beginning with: ", argv[0]);
			for (int i = 1, n = 0; i < argc && n < 128; i++)
			{
				int			before = s.len;

				appendStringInfo(&s, "'%.*s' ", 128 - n, argv[i]);
				n += s.len - before;
			}
		}
		if (c->in_multi)
			c->multi_dirty = true;
		done_error(c, s.data);
		pfree(s.data);
		return;
	}
	c->last_cmd = (char *) cmd->name;
	if (!arity_ok(cmd, argc))
	{
		snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command", cmd->name);
		if (c->in_multi)
			c->multi_dirty = true;
		done_error(c, msg);
		return;
	}
	if (gw_password_required() && !c->authenticated && !(cmd->flags & GW_CMD_NOAUTH))
	{
		if (c->in_multi)
			c->multi_dirty = true;
		done_error(c, "NOAUTH Authentication required.");
		return;
	}
	if (!keys_fit(cmd, argc, argl, msg, sizeof(msg)))
	{
		if (c->in_multi)
			c->multi_dirty = true;
		done_error(c, msg);
		return;
	}

	if (c->in_multi && !(cmd->flags & GW_CMD_NOMULTI))
	{
		GwReply		r;

		queue_command(c, cmd, argc, argv, argl);
		if (c->queue_bytes > client_buffer_limit())
		{
			ereport(LOG,
					(errmsg("nokv resp gateway: closing client %s whose MULTI queue exceeds the query buffer limit",
							c->addr)));
			GW_COUNT(buffer_limit_closes, 1);
			c->closing = true;
			return;
		}
		gw_reply_status(done_entry(c, &r), "QUEUED");
		done_entry_end();
		return;
	}

	/* EXEC and WATCH are GW_CMD_NOMULTI: most commands skip the names */
	if ((cmd->flags & GW_CMD_NOMULTI) && strcmp(cmd->name, "exec") == 0)
	{
		if (!c->in_multi)
		{
			done_error(c, "ERR EXEC without MULTI");
			return;
		}
		if (c->multi_dirty)
		{
			gw_queue_release(c);
			gw_watch_release(c);
			done_error(c, "EXECABORT Transaction discarded because of previous errors.");
			return;
		}
		/* the entry takes the queue and the watched keys; the client starts afresh */
		e = new_command_entry(c, GW_ENTRY_EXEC, cmd, argc, argv, argl);
		e->queue = c->queue;
		e->nqueue = c->nqueue;
		e->watch = c->watch;
		e->nwatch = c->nwatch;
		for (int i = 0; i < c->nqueue; i++)
		{
			for (int j = 0; j < c->queue[i].argc; j++)
				gw_defer_free(c->queue[i].argv[j]);
			gw_defer_free(c->queue[i].argv);
			gw_defer_free(c->queue[i].argl);
		}
		for (int i = 0; i < c->nwatch; i++)
		{
			gw_defer_free(c->watch[i]->key);
			gw_defer_free(c->watch[i]);
		}
		if (c->queue)
			gw_defer_free(c->queue);
		if (c->watch)
			gw_defer_free(c->watch);
		c->queue = NULL;
		c->nqueue = c->queue_cap = 0;
		c->queue_bytes = 0;
		c->watch = NULL;
		c->nwatch = c->watch_cap = 0;
		c->in_multi = false;
		c->multi_dirty = false;
		return;
	}

	if ((cmd->flags & GW_CMD_NOMULTI) && strcmp(cmd->name, "watch") == 0)
	{
		if (c->in_multi)
		{
			done_error(c, "ERR WATCH inside MULTI is not allowed");
			return;
		}
		e = new_command_entry(c, GW_ENTRY_COMMAND, cmd, argc, argv, argl);
		e->watch_new = MemoryContextAlloc(round_cxt, (argc - 1) * sizeof(GwWatch *));
		for (int i = 1; i < argc; i++)
		{
			GwWatch    *w = NULL;

			/* a key watched twice is one record, as in Redis */
			for (int j = 0; j < c->nwatch; j++)
				if (c->watch[j]->klen == argl[i] && memcmp(c->watch[j]->key, argv[i], argl[i]) == 0)
					w = c->watch[j];
			if (w == NULL)
			{
				w = MemoryContextAllocZero(c->cxt, sizeof(GwWatch));
				w->key = MemoryContextAlloc(c->cxt, argl[i] + 1);
				memcpy(w->key, argv[i], argl[i] + 1);
				w->klen = argl[i];
				if (c->nwatch >= c->watch_cap)
				{
					int			cap = Max(c->watch_cap * 2, 8);

					c->watch = c->watch ? repalloc(c->watch, cap * sizeof(GwWatch *))
						: MemoryContextAlloc(c->cxt, cap * sizeof(GwWatch *));
					c->watch_cap = cap;
				}
				c->watch[c->nwatch++] = w;
				e->watch_new[e->nwatch_new++] = w;
			}
		}
		return;
	}

	if (cmd->flags & GW_CMD_CLIENT)
	{
		GwReply		r;
		GwCall		call = {
			.client = c,
			.argc = argc,
			.argv = argv,
			.argl = argl,
			.reply = done_entry(c, &r),
		};

		cmd->proc(&call);
		done_entry_end();
		return;
	}

	e = new_command_entry(c, GW_ENTRY_COMMAND, cmd, argc, argv, argl);
}

/* take every client's complete requests; true if any entry was made */
static bool
build_round(void)
{
	int			slots = gw_max_clients;

	nentries = 0;
	round_replies.len = 0;
	for (int k = 0; k < slots && nentries < GW_ROUND_MAX; k++)
	{
		GwClient   *c = clients[(round_start_slot + k) % slots];
		int			taken = 0;

		if (c == NULL || c->closing || c->close_after_reply)
			continue;
		if (c->parsed >= c->in.len)
			continue;
		if (c->out.len - c->sent > GW_OUTPUT_SOFT_LIMIT)
			continue;			/* it does not read its replies: wait */
		while (taken < GW_CLIENT_ROUND_MAX && nentries < GW_ROUND_MAX &&
			   !c->closing && !c->close_after_reply)
		{
			const char *error = NULL;
			GwParseResult pr = gw_parse(c, &error);

			if (pr == GW_PARSE_MORE)
				break;
			if (pr == GW_PARSE_EMPTY)
				continue;
			if (pr == GW_PARSE_ERROR)
			{
				/* Redis answers, then closes the connection */
				done_error(c, error);
				c->close_after_reply = true;
				GW_COUNT(protocol_errors, 1);
				ereport(DEBUG1,
						(errmsg("nokv resp gateway: protocol error from client %s: %s",
								c->addr, error)));
				break;
			}
			dispatch(c);
			taken++;
		}
	}
	round_start_slot = (round_start_slot + 1) % slots;
	if (round_commands > 0)
	{
		GW_COUNT(commands, round_commands);
		round_commands = 0;
	}
	return nentries > 0;
}

/* ---------- rounds: running entries ---------- */

/* the reply text of a PostgreSQL error */
static char *
error_reply_text(ErrorData *ed)
{
	return psprintf("ERR nokv: %s", ed->message ? ed->message : "unknown error");
}

static void
run_entry(GwEntry *e, bool subxacts)
{
	GwReply		r = {.buf = &round_replies, .resp = e->resp};
	GwCall		call = {
		.client = e->client,
		.argc = e->argc,
		.argv = e->argv,
		.argl = e->argl,
		.reply = &r,
		.entry = e,
	};

	e->reply_off = round_replies.len;
	if (e->kind == GW_ENTRY_EXEC)
		gw_exec_entry(e, &r, subxacts);
	else
		e->cmd->proc(&call);
	e->reply_len = round_replies.len - e->reply_off;
}

typedef struct ProtectedEntry
{
	GwEntry    *e;
} ProtectedEntry;

static void
run_entry_fn(void *arg)
{
	run_entry(((ProtectedEntry *) arg)->e, true);
}

/*
 * fn(arg) in a subtransaction.  On an ERROR the subtransaction rolls back
 * and *errtext (in the caller's memory context) says why.
 */
bool
gw_run_protected(void (*fn) (void *), void *arg, char **errtext)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(oldcxt);
		ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		*errtext = error_reply_text(ed);
		FreeErrorData(ed);
		GW_COUNT(command_failures, 1);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return ok;
}

/*
 * A client whose replies of this round would pass the output buffer limit
 * (a pipeline of large GETs it never reads) is disconnected before they
 * are made: its remaining requests are dropped as if the connection had
 * ended before they arrived, so one round never builds an unbounded reply.
 */
static bool
over_output_limit(GwEntry *e)
{
	GwClient   *c = e->client;
	size_t		limit = (size_t) gw_output_buffer_kb * 1024;

	if (!c->closing && gw_output_buffer_kb > 0 &&
		c->out.len - c->sent + c->round_bytes > limit)
	{
		ereport(LOG,
				(errmsg("nokv resp gateway: closing client %s that reached the output buffer limit",
						c->addr),
				 errdetail("Its replies would exceed nokv.resp_output_buffer_limit (%d kB).",
						   gw_output_buffer_kb)));
		GW_COUNT(buffer_limit_closes, 1);
		c->closing = true;
	}
	if (c->closing)
	{
		e->reply_off = round_replies.len;
		e->reply_len = 0;
		return true;
	}
	return false;
}

/*
 * One attempt at the round's transaction.  Without subtransactions the
 * first error aborts everything and marks the entry that raised it; with
 * them, each entry fails alone.
 */
static bool
run_round_attempt(bool subxacts)
{
	volatile int current = -1;
	volatile bool ok = true;
	size_t		mark = round_replies.len;

	GW_COUNT(transactions, 1);
	for (int i = 0; i < nentries; i++)
		entries[i].client->round_bytes = 0;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		gw_commands_round_start(subxacts);
		for (int i = 0; i < nentries; i++)
		{
			GwEntry    *e = &entries[i];

			if (e->done)
				continue;
			current = i;
			if (over_output_limit(e))
				continue;
			if (subxacts && e->failed && e->kind != GW_ENTRY_EXEC)
			{
				GwReply		r = {.buf = &round_replies, .resp = e->resp};

				e->reply_off = round_replies.len;
				gw_reply_error(&r, e->failure);
				e->reply_len = round_replies.len - e->reply_off;
				continue;
			}
			gw_commands_before_entry(e);
			if (subxacts)
			{
				ProtectedEntry pe = {.e = e};
				char	   *errtext = NULL;
				size_t		start = round_replies.len;

				if (!gw_run_protected(run_entry_fn, &pe, &errtext))
				{
					GwReply		r = {.buf = &round_replies, .resp = e->resp};

					round_replies.len = start;
					e->reply_off = start;
					gw_reply_error(&r, errtext);
					e->reply_len = round_replies.len - start;
				}
			}
			else
				run_entry(e, false);
			e->client->round_bytes += e->reply_len;
			CommandCounterIncrement();
		}
		current = -1;
		gw_commands_round_end();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *ed;
		char	   *text;
		bool		from_batch = gw_commands_in_flush();

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(round_cxt);
		ed = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		gw_commands_round_abort();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(round_cxt);
		text = error_reply_text(ed);
		FreeErrorData(ed);
		GW_COUNT(command_failures, 1);
		round_replies.len = mark;
		if (!subxacts)
		{
			/* a batch holds earlier entries' writes: the re-run finds which */
			if (current >= 0 && !from_batch)
			{
				entries[current].failed = true;
				entries[current].failure = text;
			}
		}
		else
		{
			/* the commit itself failed: nothing of the round happened */
			for (int i = 0; i < nentries; i++)
			{
				GwEntry    *e = &entries[i];
				GwReply		r = {.buf = &round_replies, .resp = e->resp};

				if (e->done)
					continue;
				e->reply_off = round_replies.len;
				gw_reply_error(&r, text);
				e->reply_len = round_replies.len - e->reply_off;
			}
		}
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(round_cxt);
	return ok;
}

#define GW_IOV_MAX 64

/*
 * The replies of entries [from, to) of the round, all of client c.  When
 * nothing of the client waits to be sent, they go from the round's reply
 * buffer straight to the socket (one sendmsg, without a copy into the
 * client's output buffer); what the socket does not take is queued.
 */
static void
deliver_replies(GwClient *c, int from, int to)
{
	struct iovec iov[GW_IOV_MAX];
	struct msghdr msg;
	int			niov = 0;
	size_t		total = 0;
	ssize_t		n;
	int			i;

	if (c->closing)
		return;
	if (c->out.len > c->sent)
	{
		for (i = from; i < to; i++)
			gw_buf_append(&c->out, round_replies.data + entries[i].reply_off, entries[i].reply_len);
		return;
	}
	for (i = from; i < to; i++)
	{
		GwEntry    *e = &entries[i];

		if (e->reply_len == 0)
			continue;
		if (niov > 0 && (char *) iov[niov - 1].iov_base + iov[niov - 1].iov_len ==
			round_replies.data + e->reply_off)
			iov[niov - 1].iov_len += e->reply_len;	/* adjacent: one piece */
		else if (niov < GW_IOV_MAX)
		{
			iov[niov].iov_base = round_replies.data + e->reply_off;
			iov[niov].iov_len = e->reply_len;
			niov++;
		}
		else
			break;
		total += e->reply_len;
	}
	if (total == 0)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = niov;
	do
		n = sendmsg(c->sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			c->closing = true;
			return;
		}
		n = 0;
	}
	if (n > 0)
	{
		GW_COUNT(bytes_out, n);
		c->last_active = loop_now;
	}
	/* queue what the socket did not take, in order */
	for (i = from; i < to; i++)
	{
		GwEntry    *e = &entries[i];
		size_t		skip = Min((size_t) n, e->reply_len);

		n -= skip;
		if (skip < e->reply_len)
			gw_buf_append(&c->out, round_replies.data + e->reply_off + skip, e->reply_len - skip);
	}
	if (c->out.len == c->sent && c->close_after_reply)
		c->closing = true;
}

static void
run_round(void)
{
	bool		need_xact = false;

	for (int i = 0; i < nentries; i++)
		if (!entries[i].done &&
			(entries[i].kind == GW_ENTRY_EXEC || !(entries[i].cmd->flags & GW_CMD_NOTXN)))
			need_xact = true;

	if (!need_xact)
	{
		for (int i = 0; i < nentries; i++)
			entries[i].client->round_bytes = 0;
		/* PING, ECHO, ...: nothing to commit */
		for (int i = 0; i < nentries; i++)
			if (!entries[i].done && !over_output_limit(&entries[i]))
			{
				run_entry(&entries[i], false);
				entries[i].client->round_bytes += entries[i].reply_len;
			}
	}
	else if (!run_round_attempt(false))
	{
		GW_COUNT(transaction_retries, 1);
		(void) run_round_attempt(true);
	}
	for (int i = 0; i < nentries; i++)
		entries[i].done = true;

	/* committed: the replies may go, each client's run of entries at once */
	for (int i = 0; i < nentries;)
	{
		int			j = i + 1;

		while (j < nentries && entries[j].client == entries[i].client)
			j++;
		deliver_replies(entries[i].client, i, j);
		i = j;
	}
	gw_buf_shrink(&round_replies, 1024 * 1024);
}

/* ---------- the event loop ---------- */

static uint32
client_wanted_events(GwClient *c)
{
	uint32		ev = 0;

	if (c->out.len > c->sent)
		ev |= WL_SOCKET_WRITEABLE;
	if (!c->eof && !c->close_after_reply && c->out.len - c->sent <= GW_OUTPUT_SOFT_LIMIT)
		ev |= WL_SOCKET_READABLE;
	return ev ? ev : WL_SOCKET_READABLE;
}

static void
rebuild_wait_set(void)
{
	if (wes)
		FreeWaitEventSet(wes);
	wes = CreateWaitEventSet(gw_cxt, gw_max_clients + 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, listen_sock, NULL, NULL);
	for (int i = 0; i < gw_max_clients; i++)
	{
		GwClient   *c = clients[i];

		if (c == NULL)
			continue;
		c->events = client_wanted_events(c);
		c->event_pos = AddWaitEventToSet(wes, c->events, c->sock, NULL, c);
	}
	wes_stale = false;
}

static void
apply_settings(void)
{
	char		buf[32];

	/* nokv refuses SERIALIZABLE; the gateway's transactions are READ COMMITTED */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", gw_lock_timeout_ms);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
}

static void
open_listener(void)
{
	char		host[256];
	char		portstr[16];
	const char *why;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int			rc;
	int			saved_errno = 0;

	if (!parse_listen(gw_listen, host, sizeof(host), &listen_port, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"nokv.resp_listen\": \"%s\"", gw_listen),
				 errdetail("%s", why)));
	snprintf(portstr, sizeof(portstr), "%d", listen_port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not resolve \"%s\" (nokv.resp_listen): %s", host, gai_strerror(rc))));
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
	{
		pgsocket	s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		int			one = 1;

		if (s == PGINVALID_SOCKET)
		{
			saved_errno = errno;
			continue;
		}
		(void) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 511) < 0 || !pg_set_noblock(s))
		{
			saved_errno = errno;
			closesocket(s);
			continue;
		}
		listen_sock = s;
		break;
	}
	freeaddrinfo(res);
	if (listen_sock == PGINVALID_SOCKET)
	{
		errno = saved_errno;
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("nokv resp gateway could not listen on %s: %m", gw_listen),
				 errhint("Free the port or change nokv.resp_listen; the worker tries again every 5 seconds.")));
	}
}

static void
close_idle_clients(TimestampTz now)
{
	if (gw_idle_timeout_s <= 0)
		return;
	for (int i = 0; i < gw_max_clients; i++)
	{
		GwClient   *c = clients[i];

		if (c != NULL && !c->closing &&
			TimestampDifferenceExceeds(c->last_active, now, gw_idle_timeout_s * 1000))
		{
			GW_COUNT(idle_closes, 1);
			c->closing = true;
		}
	}
}

static void
gateway_exit(int code, Datum arg)
{
	if (gw_shared)
		pg_atomic_write_u64(&gw_shared->pid, 0);
	if (gw_shared)
		pg_atomic_write_u64(&gw_shared->connected_clients, 0);
}

void
nokv_gateway_main(Datum main_arg)
{
	WaitEvent  *occurred;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("nokv resp gateway");
	apply_settings();

	gw_cxt = AllocSetContextCreate(TopMemoryContext, "nokv resp gateway", ALLOCSET_DEFAULT_SIZES);
	round_cxt = AllocSetContextCreate(gw_cxt, "nokv resp round", ALLOCSET_DEFAULT_SIZES);
	clients = MemoryContextAllocZero(gw_cxt, gw_max_clients * sizeof(GwClient *));
	occurred = MemoryContextAlloc(gw_cxt, (gw_max_clients + 3) * sizeof(WaitEvent));
	gw_buf_init(&round_replies, gw_cxt, 64 * 1024);
	gw_commands_init();

	/* clients connect only once the engine serves */
	engine = nokv_engine();
	open_listener();

	pg_atomic_write_u64(&gw_shared->pid, MyProcPid);
	pg_atomic_write_u64(&gw_shared->started_at, (uint64) GetCurrentTimestamp());
	pg_atomic_write_u64(&gw_shared->connected_clients, 0);
	on_shmem_exit(gateway_exit, 0);
	ereport(LOG, (errmsg("nokv resp gateway listening on %s", gw_listen)));
	pgstat_report_activity(STATE_IDLE, NULL);

	MemoryContextSwitchTo(round_cxt);
	for (;;)
	{
		int			n;
		long		timeout = gw_idle_timeout_s > 0 ? 1000 : -1;

		if (wes_stale)
			rebuild_wait_set();
		n = WaitEventSetWait(wes, timeout, occurred, gw_max_clients + 3, PG_WAIT_EXTENSION);
		loop_now = GetCurrentTimestamp();
		for (int i = 0; i < n; i++)
		{
			WaitEvent  *ev = &occurred[i];

			if (ev->events & WL_LATCH_SET)
				ResetLatch(MyLatch);
			else if (ev->fd == listen_sock)
				accept_clients();
			else if (ev->user_data != NULL)
			{
				GwClient   *c = (GwClient *) ev->user_data;

				if (clients[c->slot] != c || c->closing)
					continue;
				if ((ev->events & WL_SOCKET_READABLE) && !c->eof)
					client_read(c);
				if ((ev->events & WL_SOCKET_WRITEABLE) && !c->closing)
					client_flush(c);
			}
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			apply_settings();
		}

		/* run everything the clients sent, round after round */
		engine = nokv_engine();
		while (build_round())
		{
			run_round();
			for (int i = 0; i < gw_max_clients; i++)
				if (clients[i] && !clients[i]->closing && clients[i]->out.len > clients[i]->sent)
					client_flush(clients[i]);
			CHECK_FOR_INTERRUPTS();
		}

		close_idle_clients(loop_now);
		for (int i = 0; i < gw_max_clients; i++)
		{
			GwClient   *c = clients[i];

			if (c == NULL)
				continue;
			client_compact_input(c);
			if (!c->closing && c->out.len > c->sent)
				client_flush(c);
			if (c->eof && c->out.len == c->sent)
				c->closing = true;	/* what it sent is done and answered */
			if (c->closing)
			{
				client_free(c);
				continue;
			}
			if (!wes_stale && client_wanted_events(c) != c->events)
			{
				c->events = client_wanted_events(c);
				ModifyWaitEvent(wes, c->event_pos, c->events, NULL);
			}
		}

		/* what this turn's rounds released */
		{
			ListCell   *lc;

			foreach(lc, deferred_frees)
				pfree(lfirst(lc));
			deferred_frees = NIL;
		}
		MemoryContextReset(round_cxt);
	}
}
