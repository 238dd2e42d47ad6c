/*-------------------------------------------------------------------------
 *
 * resp.c
 *	  The RESP gateway's wire protocol: parsing requests (RESP arrays of
 *	  bulk strings and inline commands) and encoding RESP2/RESP3 replies.
 *
 * The parser follows Redis 7.0's networking.c step by step, limits and
 * error texts included, because clients and the differential test see
 * them: a request starting with '*' is a multibulk request, anything else
 * an inline command split like sdssplitargs() (quotes, escapes).  It is
 * incremental: it keeps its position in the client's query buffer and
 * the state of a half-read request, so a request arriving a byte at a
 * time, or a 100 MB bulk string arriving in pieces, is never rescanned.
 * Arguments are offsets into the query buffer (inline arguments are
 * unescaped in place, which never overtakes the bytes still to read), so
 * parsing copies nothing; the buffer is compacted only between rounds.
 *
 * src/gateway/resp.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "gateway.h"

/* ---------- byte buffers ---------- */

void
gw_buf_init(GwBuf *b, MemoryContext cxt, size_t cap)
{
	b->cxt = cxt;
	b->len = 0;
	b->cap = cap;
	b->data = MemoryContextAllocExtended(cxt, cap, MCXT_ALLOC_HUGE);
}

void
gw_buf_reserve(GwBuf *b, size_t more)
{
	size_t		need = b->len + more;
	size_t		cap;

	if (need <= b->cap)
		return;
	cap = Max(b->cap, 256);
	while (cap < need)
		cap = cap < ((size_t) 64 << 20) ? cap * 2 : cap + ((size_t) 64 << 20);
	b->data = repalloc_huge(b->data, cap);
	b->cap = cap;
}

void
gw_buf_append(GwBuf *b, const char *data, size_t len)
{
	gw_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void
gw_buf_consume(GwBuf *b, size_t n)
{
	Assert(n <= b->len);
	if (n == 0)
		return;
	if (n < b->len)
		memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* give memory back after a large request or reply */
void
gw_buf_shrink(GwBuf *b, size_t keep_cap)
{
	char	   *d;

	if (b->cap <= keep_cap * 4 || b->len > keep_cap)
		return;
	d = MemoryContextAllocExtended(b->cxt, keep_cap, MCXT_ALLOC_HUGE);
	if (b->len)
		memcpy(d, b->data, b->len);
	pfree(b->data);
	b->data = d;
	b->cap = keep_cap;
}

/* ---------- numbers and patterns ---------- */

/*
 * Redis's string2ll(): optional '-', no leading zeros (but "0"), no
 * spaces or '+', within int64.
 */
bool
gw_string2ll(const char *s, size_t len, int64 *v)
{
	const char *p = s;
	size_t		pos = 0;
	bool		negative = false;
	uint64		u;

	if (len == 0 || len > 20)
		return false;
	if (len == 1 && p[0] == '0')
	{
		*v = 0;
		return true;
	}
	if (p[0] == '-')
	{
		negative = true;
		pos++;
		if (pos == len)
			return false;
	}
	if (p[pos] >= '1' && p[pos] <= '9')
		u = p[pos++] - '0';
	else
		return false;
	while (pos < len && p[pos] >= '0' && p[pos] <= '9')
	{
		if (u > PG_UINT64_MAX / 10)
			return false;
		u *= 10;
		if (u > PG_UINT64_MAX - (p[pos] - '0'))
			return false;
		u += p[pos] - '0';
		pos++;
	}
	if (pos < len)
		return false;
	if (negative)
	{
		if (u > (uint64) PG_INT64_MAX + 1)
			return false;
		*v = (int64) (0 - u);
	}
	else
	{
		if (u > (uint64) PG_INT64_MAX)
			return false;
		*v = (int64) u;
	}
	return true;
}

/*
 * Redis's stringmatchlen(): glob-style matching with *, ?, [...] (ranges,
 * ^ negation) and \ escapes.  As in Redis, a star that failed on every
 * suffix stops the stars before it from trying more (no exponential
 * blow-up on "*a*a*a*b"), and the depth is bounded.
 */
static bool
glob_match(const char *p, size_t plen, const char *s, size_t slen, bool nocase,
		   bool *skip_longer, int depth)
{
	if (depth > 1000)
		return false;
	while (plen && slen)
	{
		switch (p[0])
		{
			case '*':
				while (plen > 1 && p[1] == '*')
				{
					p++;
					plen--;
				}
				if (plen == 1)
					return true;
				while (slen)
				{
					if (glob_match(p + 1, plen - 1, s, slen, nocase, skip_longer, depth + 1))
						return true;
					/* a later star failed on every suffix: so will this one */
					if (*skip_longer)
						return false;
					s++;
					slen--;
				}
				*skip_longer = true;
				return false;
			case '?':
				s++;
				slen--;
				break;
			case '[':
				{
					bool		not_ = false;
					bool		match = false;

					p++;
					plen--;
					if (plen && p[0] == '^')
					{
						not_ = true;
						p++;
						plen--;
					}
					for (;;)
					{
						if (plen == 0)
						{
							/* unterminated: Redis keeps the last byte */
							p--;
							plen++;
							break;
						}
						if (p[0] == '\\' && plen >= 2)
						{
							p++;
							plen--;
							if (p[0] == s[0])
								match = true;
						}
						else if (p[0] == ']')
							break;
						else if (plen >= 3 && p[1] == '-')
						{
							int			start = (unsigned char) p[0];
							int			end = (unsigned char) p[2];
							int			c = (unsigned char) s[0];

							if (start > end)
							{
								int			t = start;

								start = end;
								end = t;
							}
							if (nocase)
							{
								start = tolower(start);
								end = tolower(end);
								c = tolower(c);
							}
							p += 2;
							plen -= 2;
							if (c >= start && c <= end)
								match = true;
						}
						else
						{
							if (!nocase)
							{
								if (p[0] == s[0])
									match = true;
							}
							else if (tolower((unsigned char) p[0]) == tolower((unsigned char) s[0]))
								match = true;
						}
						p++;
						plen--;
					}
					if (not_)
						match = !match;
					if (!match)
						return false;
					s++;
					slen--;
					break;
				}
			case '\\':
				if (plen >= 2)
				{
					p++;
					plen--;
				}
				/* FALLTHROUGH */
			default:
				if (!nocase)
				{
					if (p[0] != s[0])
						return false;
				}
				else if (tolower((unsigned char) p[0]) != tolower((unsigned char) s[0]))
					return false;
				s++;
				slen--;
				break;
		}
		p++;
		plen--;
		if (slen == 0)
		{
			while (plen && *p == '*')
			{
				p++;
				plen--;
			}
			break;
		}
	}
	return plen == 0 && slen == 0;
}

bool
gw_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
	bool		skip_longer = false;

	return glob_match(pat, plen, s, slen, nocase, &skip_longer, 0);
}

/* ---------- parsing ---------- */

void
gw_parse_reset(GwClient *c)
{
	c->reqtype = 0;
	c->mb_left = 0;
	c->bulk_len = -1;
	c->argc = 0;
}

static void
add_arg(GwClient *c, size_t off, size_t len)
{
	if (c->argc >= c->argcap)
	{
		int			cap = Max(c->argcap * 2, 16);

		c->arg_off = repalloc_huge(c->arg_off, cap * sizeof(size_t));
		c->arg_len = repalloc_huge(c->arg_len, cap * sizeof(size_t));
		c->argcap = cap;
	}
	c->arg_off[c->argc] = off;
	c->arg_len[c->argc] = len;
	c->argc++;
}

static inline bool
is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static inline int
hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return ch - 'A' + 10;
}

/*
 * sdssplitargs() over line [start, end) of the query buffer, writing the
 * unescaped arguments in place, each followed by a byte for a NUL (the
 * consumed separator, quote or line end always leaves that room).  The line ends at its first NUL byte, as
 * a C string would.  False on unbalanced quotes.
 */
static bool
split_inline(GwClient *c, size_t start, size_t end)
{
	char	   *buf = c->in.data;
	size_t		p = start;
	size_t		out = start;

#define AT(i) ((i) < end ? buf[(i)] : '\0')
	for (;;)
	{
		bool		inq = false;
		bool		insq = false;
		bool		done = false;
		size_t		tok;

		while (AT(p) && isspace((unsigned char) AT(p)))
			p++;
		if (!AT(p))
			return true;
		tok = out;
		while (!done)
		{
			char		ch = AT(p);

			if (inq)
			{
				if (ch == '\\' && AT(p + 1) == 'x' && is_hex(AT(p + 2)) && is_hex(AT(p + 3)))
				{
					buf[out++] = (char) (hex_val(AT(p + 2)) * 16 + hex_val(AT(p + 3)));
					p += 3;
				}
				else if (ch == '\\' && AT(p + 1))
				{
					char		e;

					p++;
					switch (AT(p))
					{
						case 'n':
							e = '\n';
							break;
						case 'r':
							e = '\r';
							break;
						case 't':
							e = '\t';
							break;
						case 'b':
							e = '\b';
							break;
						case 'a':
							e = '\a';
							break;
						default:
							e = AT(p);
							break;
					}
					buf[out++] = e;
				}
				else if (ch == '"')
				{
					/* a closing quote must be followed by a space or nothing */
					if (AT(p + 1) && !isspace((unsigned char) AT(p + 1)))
						return false;
					done = true;
				}
				else if (!ch)
					return false;
				else
					buf[out++] = ch;
			}
			else if (insq)
			{
				if (ch == '\\' && AT(p + 1) == '\'')
				{
					p++;
					buf[out++] = '\'';
				}
				else if (ch == '\'')
				{
					if (AT(p + 1) && !isspace((unsigned char) AT(p + 1)))
						return false;
					done = true;
				}
				else if (!ch)
					return false;
				else
					buf[out++] = ch;
			}
			else
			{
				switch (ch)
				{
					case ' ':
					case '\n':
					case '\r':
					case '\t':
					case '\0':
						done = true;
						break;
					case '"':
						inq = true;
						break;
					case '\'':
						insq = true;
						break;
					default:
						buf[out++] = ch;
						break;
				}
			}
			if (AT(p))
				p++;
		}
		add_arg(c, tok, out - tok);
		/* room for the NUL dispatch puts after each argument */
		buf[out++] = '\0';
	}
#undef AT
}

static GwParseResult
parse_inline(GwClient *c, const char **error)
{
	char	   *buf = c->in.data;
	size_t		pos = c->parsed;
	char	   *nl = memchr(buf + pos, '\n', c->in.len - pos);
	size_t		lineend;

	if (nl == NULL)
	{
		if (c->in.len - pos > GW_INLINE_MAX)
		{
			*error = "ERR Protocol error: too big inline request";
			return GW_PARSE_ERROR;
		}
		return GW_PARSE_MORE;
	}
	lineend = nl - buf;
	if (lineend > pos && buf[lineend - 1] == '\r')
		lineend--;
	c->argc = 0;
	if (!split_inline(c, pos, lineend))
	{
		*error = "ERR Protocol error: unbalanced quotes in request";
		return GW_PARSE_ERROR;
	}
	c->parsed = (nl - buf) + 1;
	c->reqtype = 0;
	return c->argc > 0 ? GW_PARSE_COMMAND : GW_PARSE_EMPTY;
}

/* the position of the '\r' ending the line at pos, if the '\n' is there too */
static bool
find_line(GwClient *c, size_t pos, size_t *cr)
{
	char	   *r = memchr(c->in.data + pos, '\r', c->in.len - pos);

	if (r == NULL)
		return false;
	*cr = r - c->in.data;
	return *cr + 1 < c->in.len;
}

static GwParseResult
parse_multibulk(GwClient *c, const char **error)
{
	char	   *buf = c->in.data;
	size_t		cr;
	int64		ll;
	bool		unauth = gw_password_required() && !c->authenticated;

	if (c->mb_left == 0)
	{
		if (!find_line(c, c->parsed, &cr))
		{
			if (c->in.len - c->parsed > GW_INLINE_MAX)
			{
				*error = "ERR Protocol error: too big mbulk count string";
				return GW_PARSE_ERROR;
			}
			return GW_PARSE_MORE;
		}
		if (!gw_string2ll(buf + c->parsed + 1, cr - c->parsed - 1, &ll) || ll > INT_MAX)
		{
			*error = "ERR Protocol error: invalid multibulk length";
			return GW_PARSE_ERROR;
		}
		if (ll > GW_UNAUTH_MAX_ARGS && unauth)
		{
			*error = "ERR Protocol error: unauthenticated multibulk length";
			return GW_PARSE_ERROR;
		}
		c->parsed = cr + 2;
		if (ll <= 0)
		{
			c->reqtype = 0;
			return GW_PARSE_EMPTY;
		}
		c->mb_left = ll;
		c->argc = 0;
		c->bulk_len = -1;
	}
	while (c->mb_left > 0)
	{
		if (c->bulk_len == -1)
		{
			if (!find_line(c, c->parsed, &cr))
			{
				if (c->in.len - c->parsed > GW_INLINE_MAX)
				{
					*error = "ERR Protocol error: too big bulk count string";
					return GW_PARSE_ERROR;
				}
				return GW_PARSE_MORE;
			}
			if (buf[c->parsed] != '$')
			{
				static char msg[64];

				snprintf(msg, sizeof(msg), "ERR Protocol error: expected '$', got '%c'",
						 buf[c->parsed]);
				*error = msg;
				return GW_PARSE_ERROR;
			}
			if (!gw_string2ll(buf + c->parsed + 1, cr - c->parsed - 1, &ll) || ll < 0 ||
				(uint64) ll > (uint64) gw_effective_max_bulk())
			{
				*error = "ERR Protocol error: invalid bulk length";
				return GW_PARSE_ERROR;
			}
			if (ll > GW_UNAUTH_MAX_BULK && unauth)
			{
				*error = "ERR Protocol error: unauthenticated bulk length";
				return GW_PARSE_ERROR;
			}
			c->parsed = cr + 2;
			c->bulk_len = (long) ll;
		}
		/* the bulk and its "\r\n" (not checked, as Redis does not) */
		if (c->in.len - c->parsed < (size_t) c->bulk_len + 2)
			return GW_PARSE_MORE;
		add_arg(c, c->parsed, c->bulk_len);
		c->parsed += c->bulk_len + 2;
		c->bulk_len = -1;
		c->mb_left--;
	}
	c->reqtype = 0;
	return GW_PARSE_COMMAND;
}

/*
 * Parse the next request of the client's query buffer.  On
 * GW_PARSE_COMMAND, c->argc/arg_off/arg_len describe it; they stay valid
 * until the buffer is compacted.
 */
GwParseResult
gw_parse(GwClient *c, const char **error)
{
	if (c->parsed >= c->in.len)
		return GW_PARSE_MORE;
	if (c->reqtype == 0)
	{
		c->req_start = c->parsed;
		c->reqtype = c->in.data[c->parsed] == '*' ? '*' : 'i';
		c->mb_left = 0;
		c->bulk_len = -1;
		c->argc = 0;
	}
	if (c->reqtype == '*')
		return parse_multibulk(c, error);
	return parse_inline(c, error);
}

/* ---------- replies ---------- */

void
gw_reply_raw(GwReply *r, const char *s, size_t len)
{
	gw_buf_append(r->buf, s, len);
}

/* prefix, n in decimal, CRLF: pg_lltoa, as snprintf costs more than a GET's reply */
static void
reply_prefixed_len(GwReply *r, char prefix, int64 n)
{
	char		tmp[MAXINT8LEN + 4];
	int			len;

	tmp[0] = prefix;
	len = 1 + pg_lltoa(n, tmp + 1);
	tmp[len++] = '\r';
	tmp[len++] = '\n';
	gw_buf_append(r->buf, tmp, len);
}

void
gw_reply_status(GwReply *r, const char *s)
{
	gw_buf_append(r->buf, "+", 1);
	gw_buf_append(r->buf, s, strlen(s));
	gw_buf_append(r->buf, "\r\n", 2);
}

void
gw_reply_ok(GwReply *r)
{
	gw_buf_append(r->buf, "+OK\r\n", 5);
}

/* msg starts with the error code ("ERR ...", "WRONGPASS ..."); CR and LF become spaces */
void
gw_reply_error(GwReply *r, const char *msg)
{
	size_t		len = strlen(msg);
	size_t		start;

	gw_buf_append(r->buf, "-", 1);
	start = r->buf->len;
	gw_buf_append(r->buf, msg, len);
	for (size_t i = start; i < r->buf->len; i++)
		if (r->buf->data[i] == '\r' || r->buf->data[i] == '\n')
			r->buf->data[i] = ' ';
	gw_buf_append(r->buf, "\r\n", 2);
	r->error = true;
	GW_COUNT(error_replies, 1);
}

void
gw_reply_errorf(GwReply *r, const char *fmt,...)
{
	StringInfoData s;

	initStringInfo(&s);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	gw_reply_error(r, s.data);
	pfree(s.data);
}

void
gw_reply_int(GwReply *r, int64 v)
{
	reply_prefixed_len(r, ':', v);
}

void
gw_reply_bulk(GwReply *r, const char *s, size_t len)
{
	gw_buf_reserve(r->buf, MAXINT8LEN + 6 + len);
	reply_prefixed_len(r, '$', (int64) len);
	memcpy(r->buf->data + r->buf->len, s, len);
	memcpy(r->buf->data + r->buf->len + len, "\r\n", 2);
	r->buf->len += len + 2;
}

void
gw_reply_bulk_cstr(GwReply *r, const char *s)
{
	gw_reply_bulk(r, s, strlen(s));
}

void
gw_reply_bulk_int(GwReply *r, int64 v)
{
	char		tmp[MAXINT8LEN + 1];
	int			len = pg_lltoa(v, tmp);

	gw_reply_bulk(r, tmp, len);
}

void
gw_reply_null(GwReply *r)
{
	if (r->resp >= 3)
		gw_buf_append(r->buf, "_\r\n", 3);
	else
		gw_buf_append(r->buf, "$-1\r\n", 5);
}

void
gw_reply_null_array(GwReply *r)
{
	if (r->resp >= 3)
		gw_buf_append(r->buf, "_\r\n", 3);
	else
		gw_buf_append(r->buf, "*-1\r\n", 5);
}

void
gw_reply_array(GwReply *r, int64 n)
{
	reply_prefixed_len(r, '*', n);
}

void
gw_reply_map(GwReply *r, int64 n)
{
	if (r->resp >= 3)
		reply_prefixed_len(r, '%', n);
	else
		reply_prefixed_len(r, '*', n * 2);
}

void
gw_reply_set(GwReply *r, int64 n)
{
	reply_prefixed_len(r, r->resp >= 3 ? '~' : '*', n);
}

/* RESP3 verbatim text ("txt"), a bulk string in RESP2 (INFO, CLIENT LIST) */
void
gw_reply_verbatim(GwReply *r, const char *s, size_t len)
{
	if (r->resp < 3)
	{
		gw_reply_bulk(r, s, len);
		return;
	}
	reply_prefixed_len(r, '=', (int64) len + 4);
	gw_buf_append(r->buf, "txt:", 4);
	gw_buf_append(r->buf, s, len);
	gw_buf_append(r->buf, "\r\n", 2);
}
