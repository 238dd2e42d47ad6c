/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  Declarations shared by the files of the RESP (Redis protocol)
 *	  gateway: gateway.c (settings, shared statistics, the background
 *	  worker and its event loop), resp.c (request parsing and reply
 *	  encoding) and commands.c (the command table and the commands).
 *
 * The gateway is one background worker serving every client from one
 * event loop.  Each turn of the loop reads what the sockets have, parses
 * every complete command of every client into a "round" of entries (in
 * each client's order) and runs the round's commands in one PostgreSQL
 * transaction, so that a pipeline, or many clients at once, cost one
 * commit and one WAL flush.  Replies are queued per entry and reach the
 * clients only after the commit.
 *
 * src/gateway/gateway.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_GATEWAY_H
#define NOKV_GATEWAY_H

#include "datatype/timestamp.h"
#include "port/atomics.h"

#include "nokv_pg.h"

/* ---------- settings (gateway.c) ---------- */

extern char *gw_listen;
extern char *gw_password;
extern int	gw_max_clients;
extern int	gw_max_bulk_len;		/* bytes; see gw_effective_max_bulk() */
extern int	gw_client_buffer_kb;
extern int	gw_output_buffer_kb;
extern int	gw_idle_timeout_s;
extern int	gw_lock_timeout_ms;

/* the compatibility version the gateway reports (HELLO, INFO) */
#define GW_REDIS_VERSION "7.0.0"

/* Redis's limits on what an unauthenticated client may send */
#define GW_INLINE_MAX 65536		/* PROTO_INLINE_MAX_SIZE */
#define GW_UNAUTH_MAX_ARGS 10
#define GW_UNAUTH_MAX_BULK 16384

/* ---------- statistics in shared memory (gateway.c) ---------- */

typedef struct GwShared
{
	pg_atomic_uint64 connected_clients;
	pg_atomic_uint64 total_connections;
	pg_atomic_uint64 rejected_connections;
	pg_atomic_uint64 commands;
	pg_atomic_uint64 error_replies;
	pg_atomic_uint64 protocol_errors;
	pg_atomic_uint64 buffer_limit_closes;	/* query or output buffer limit */
	pg_atomic_uint64 idle_closes;
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint64 transactions;
	pg_atomic_uint64 transaction_retries;	/* rounds re-run command by command */
	pg_atomic_uint64 command_failures;	/* commands that raised a PostgreSQL error */
	pg_atomic_uint64 exec_aborts;	/* EXEC answered nil by WATCH */
	pg_atomic_uint64 keyspace_hits;
	pg_atomic_uint64 keyspace_misses;
	pg_atomic_uint64 started_at;	/* TimestampTz of the worker's start */
	pg_atomic_uint64 pid;
} GwShared;

extern GwShared *gw_shared;

#define GW_COUNT(field, n) pg_atomic_fetch_add_u64(&gw_shared->field, (n))

/* ---------- byte buffers ---------- */

typedef struct GwBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	MemoryContext cxt;
} GwBuf;

extern void gw_buf_init(GwBuf *b, MemoryContext cxt, size_t cap);
extern void gw_buf_reserve(GwBuf *b, size_t more);
extern void gw_buf_append(GwBuf *b, const char *data, size_t len);
extern void gw_buf_consume(GwBuf *b, size_t n);	/* drop the first n bytes */
extern void gw_buf_shrink(GwBuf *b, size_t keep_cap);

/* ---------- clients ---------- */

typedef struct GwWatch
{
	char	   *key;
	size_t		klen;
	uint64		version;		/* newest committed version at WATCH time */
	uint64		expires_at;
	bool		live;			/* a live (unexpired) value at WATCH time */
} GwWatch;

typedef struct GwQueued
{
	int			argc;
	char	  **argv;
	size_t	   *argl;
	const struct GwCommand *cmd;
} GwQueued;

typedef struct GwClient
{
	uint64		id;
	pgsocket	sock;
	int			slot;			/* index in the client array */
	int			event_pos;		/* position in the wait event set, -1 none */
	uint32		events;			/* events registered for it */
	char		addr[64];		/* "ip:port" of the peer */
	MemoryContext cxt;			/* everything the client owns */
	TimestampTz created;
	TimestampTz last_active;

	/* input: the query buffer and the parser's state (resp.c) */
	GwBuf		in;
	size_t		parsed;			/* bytes of "in" parsed into commands */
	size_t		req_start;		/* where the request being parsed starts */
	int			reqtype;		/* 0 unknown, '*' multibulk, 'i' inline */
	long		mb_left;		/* multibulk: arguments still to read */
	long		bulk_len;		/* length of the bulk being read, -1 none */
	int			argc;
	int			argcap;
	size_t	   *arg_off;		/* offsets into "in" of the current command */
	size_t	   *arg_len;

	/* output: replies not yet written to the socket */
	GwBuf		out;
	size_t		sent;			/* bytes of "out" already written */
	size_t		round_bytes;	/* replies made for it in this round */

	/* connection state */
	bool		authenticated;
	int			resp;			/* protocol version, 2 or 3 */
	char	   *name;			/* CLIENT SETNAME, NULL if none */
	char	   *last_cmd;		/* name of the last command, for CLIENT LIST */
	bool		in_multi;
	bool		multi_dirty;	/* an error while queueing: EXEC aborts */
	GwQueued   *queue;
	int			nqueue;
	int			queue_cap;
	size_t		queue_bytes;
	GwWatch   **watch;
	int			nwatch;
	int			watch_cap;
	bool		eof;			/* the peer shut down its side */
	bool		close_after_reply;	/* QUIT, protocol error */
	bool		closing;		/* close now, without flushing */
} GwClient;

/* ---------- commands (commands.c) ---------- */

/* where a command's reply goes while it runs */
typedef struct GwReply
{
	GwBuf	   *buf;
	int			resp;			/* the client's protocol version */
	bool		error;			/* an error reply was written */
} GwReply;

/* everything a command needs: its client, arguments and reply */
typedef struct GwCall
{
	GwClient   *client;
	int			argc;
	char	  **argv;
	size_t	   *argl;
	GwReply    *reply;
	struct GwEntry *entry;		/* the round entry (WATCH, EXEC) */
} GwCall;

typedef void (*GwCommandProc) (GwCall *call);

/* command flags */
#define GW_CMD_WRITE	0x0001	/* may write keys */
#define GW_CMD_READONLY 0x0002	/* reads keys */
#define GW_CMD_NOAUTH	0x0004	/* allowed before AUTH */
#define GW_CMD_CLIENT	0x0008	/* only the client's own state: runs at dispatch, no transaction */
#define GW_CMD_NOMULTI	0x0010	/* runs at once inside MULTI (not queued) */
#define GW_CMD_NOTXN	0x0020	/* needs no transaction (PING, ECHO, COMMAND, ...) */
#define GW_CMD_FAST		0x0040
#define GW_CMD_BATCH	0x0080	/* a blind write or an increment: may join the write batch */

typedef struct GwCommand
{
	const char *name;			/* lower case */
	int			arity;			/* Redis's: >0 exact, <0 at least -arity */
	GwCommandProc proc;
	int			flags;
	int			first_key;		/* COMMAND INFO key positions */
	int			last_key;
	int			key_step;
	const char *group;			/* COMMAND DOCS group */
	const char *since;
	const char *summary;
} GwCommand;

extern const GwCommand *gw_lookup_command(const char *name, size_t len);
extern int	gw_command_count(void);
extern const GwCommand *gw_command_at(int i);
/* a known Redis command of a data type nokv does not have */
extern bool gw_is_unsupported_type_command(const char *name, size_t len);
extern void gw_commands_init(void);
/* the round's transaction: started (subxacts: a re-run), about to commit, aborted */
extern void gw_commands_round_start(bool subxacts);
extern void gw_commands_round_end(void);
extern void gw_commands_round_abort(void);
/* an ERROR came from writing the write batch, not from the running command */
extern bool gw_commands_in_flush(void);

/* ---------- a round of commands (gateway.c) ---------- */

typedef enum GwEntryKind
{
	GW_ENTRY_DONE,				/* reply known at dispatch */
	GW_ENTRY_COMMAND,			/* runs in the round's transaction */
	GW_ENTRY_EXEC				/* EXEC: the queued commands, WATCH checked */
} GwEntryKind;

typedef struct GwEntry
{
	GwClient   *client;
	GwEntryKind kind;
	int			resp;			/* the client's protocol version at dispatch */
	const GwCommand *cmd;
	int			argc;
	char	  **argv;
	size_t	   *argl;
	size_t		reply_off;		/* the reply in the round's reply buffer */
	size_t		reply_len;
	bool		done;			/* reply final */
	bool		failed;			/* raised an error in a shared attempt */
	char	   *failure;		/* its message */
	/* EXEC */
	GwQueued   *queue;
	int			nqueue;
	GwWatch   **watch;
	int			nwatch;
	/* WATCH: the records it fills in */
	GwWatch   **watch_new;
	int			nwatch_new;
} GwEntry;

/* ---------- protocol (resp.c) ---------- */

typedef enum GwParseResult
{
	GW_PARSE_COMMAND,			/* a whole command: client->argc etc. */
	GW_PARSE_EMPTY,				/* an empty line or "*0": nothing to run */
	GW_PARSE_MORE,				/* need more bytes */
	GW_PARSE_ERROR				/* protocol error: *error says which */
} GwParseResult;

extern GwParseResult gw_parse(GwClient *c, const char **error);
extern void gw_parse_reset(GwClient *c);

extern void gw_reply_raw(GwReply *r, const char *s, size_t len);
extern void gw_reply_status(GwReply *r, const char *s);
extern void gw_reply_error(GwReply *r, const char *msg);	/* msg with its code */
extern void gw_reply_errorf(GwReply *r, const char *fmt,...) pg_attribute_printf(2, 3);
extern void gw_reply_int(GwReply *r, int64 v);
extern void gw_reply_bulk(GwReply *r, const char *s, size_t len);
extern void gw_reply_bulk_cstr(GwReply *r, const char *s);
extern void gw_reply_bulk_int(GwReply *r, int64 v);
extern void gw_reply_null(GwReply *r);	/* $-1 / _ */
extern void gw_reply_null_array(GwReply *r);	/* *-1 / _ */
extern void gw_reply_array(GwReply *r, int64 n);
extern void gw_reply_map(GwReply *r, int64 n);	/* *2n / %n */
extern void gw_reply_set(GwReply *r, int64 n);	/* *n / ~n */
extern void gw_reply_verbatim(GwReply *r, const char *s, size_t len);
extern void gw_reply_ok(GwReply *r);

/* Redis's string2ll: strict decimal int64 */
extern bool gw_string2ll(const char *s, size_t len, int64 *v);
extern bool gw_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

/* ---------- gateway.c services for commands ---------- */

extern nokv_db *gw_db(void);
extern uint64 gw_client_count(void);
extern void gw_client_list_line(GwClient *c, StringInfo s);
extern GwClient *gw_client_by_slot(int i);
extern int	gw_client_slots(void);
extern size_t gw_effective_max_bulk(void);
extern int	gw_port(void);
extern bool gw_password_matches(const char *p, size_t len);
extern bool gw_password_required(void);
extern void gw_client_set_authenticated(GwClient *c);
extern void gw_watch_release(GwClient *c);	/* UNWATCH: records go at round end */
extern void gw_queue_release(GwClient *c);	/* DISCARD / EXEC: the same */
extern void gw_defer_free(void *p);	/* pfree at the end of the round */

/* fn(arg) in a subtransaction; false with *errtext on an ERROR */
extern bool gw_run_protected(void (*fn) (void *), void *arg, char **errtext);
/* EXEC and WATCH (commands.c) run inside the round's transaction */
extern void gw_exec_entry(GwEntry *e, GwReply *r, bool subxacts);
/* before each entry that runs in the round's transaction (commands.c) */
extern void gw_commands_before_entry(const GwEntry *e);
extern void gw_watch_fill(GwWatch *w);

#endif							/* NOKV_GATEWAY_H */
