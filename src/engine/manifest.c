/*-------------------------------------------------------------------------
 *
 * manifest.c
 *	  Version edits, the manifest log, CURRENT, and replaying them.
 *
 * The manifest is a logformat.h log (magic NOKV_MANIFEST_MAGIC) whose
 * records are version edits: tagged fields that add and delete tables and
 * move counters and log positions forward.  Replaying every edit of the
 * file CURRENT names, in order, yields the engine's durable state (the
 * table list per level, the next file number, the last version, the own
 * WAL's oldest needed segment, each external log's flushed position, and
 * the value log: its durable head, its segments with their durable sizes
 * and the exact discard bytes of each).
 *
 * Design choices worth knowing (docs/manifest.md has the byte layout):
 *
 *	- Decoding is strict: an unknown tag, a truncated field, a repeated
 *	  scalar field, a level or log id out of range or a key shorter than an
 *	  internal key is corruption.  A record that passed its CRC but does not
 *	  decode was written by a broken or newer engine, and guessing would
 *	  risk resurrecting or losing tables.
 *	- Applying an edit is all-or-nothing: every check (deleted files exist,
 *	  added numbers are unique, levels >= 1 stay sorted and disjoint) runs
 *	  before the state is touched, so a rejected edit leaves it unchanged.
 *	  Deletions are applied before additions, which lets one edit move a
 *	  table to another level under the same number.
 *	- Counters and positions only move forward (max()): an edit carrying an
 *	  older value than the state is not an error, it is ignored, because the
 *	  WAL segments or external log ranges below the newer value may already
 *	  be gone.  next_file_number is also raised past every added table, so a
 *	  number in use can never be handed out again after recovery.
 *	- Recovery never writes.  A missing CURRENT is a new database only if
 *	  no MANIFEST-* file exists either; anything else that is off is
 *	  corruption, never a silent empty start.
 *	- Appends fdatasync before returning.  A failed write is rolled back by
 *	  truncating to the previous size; if that rollback (or the fdatasync)
 *	  fails, the writer is marked failed and refuses every later append, so
 *	  no record can ever follow a partial one.
 *
 * src/engine/manifest.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/file.h"
#include "nokv/ikey.h"
#include "nokv/logformat.h"
#include "nokv/manifest.h"
#include "nokv/status.h"

/* record type of a version edit inside the manifest log */
#define MANIFEST_RECORD_EDIT	1

/* edit field tags (never renumber: they are on disk) */
#define TAG_NEXT_FILE_NUMBER	1
#define TAG_LAST_VERSION		2
#define TAG_LOG_NUMBER			3
#define TAG_EXT_POSITION		4
#define TAG_DELETED_FILE		5
#define TAG_ADDED_FILE			6
#define TAG_VLOG_HEAD			7
#define TAG_VLOG_SEGMENT		8
#define TAG_VLOG_DELETED		9
#define TAG_VLOG_DISCARD		10

/* cf byte + empty user key + trailer */
#define MIN_IKEY_LEN			(1 + NOKV_IKEY_TRAILER)

#define MANIFEST_PREFIX			"MANIFEST-"
#define MANIFEST_PREFIX_LEN		(sizeof(MANIFEST_PREFIX) - 1)
/* "MANIFEST-" + at most 20 digits + "\n"; anything longer is malformed */
#define CURRENT_MAX_LEN			(MANIFEST_PREFIX_LEN + 20 + 1)

struct nokv_manifest_writer
{
	char	   *path;
	int			fd;
	uint64_t	number;
	uint64_t	size;			/* bytes durably in the file */
	bool		failed;			/* an append could not be rolled back */
	nokv_buf	payload;		/* scratch: encoded edit */
	nokv_buf	record;			/* scratch: framed record */
};

typedef unsigned long long ull;

/* ---------- small helpers ---------- */

static char *
key_dup(const char *key, size_t len)
{
	char	   *copy = nokv_malloc(len ? len : 1);

	if (len)
		memcpy(copy, key, len);
	return copy;
}

static char *
path_printf(const char *fmt,...)
__attribute__((format(printf, 1, 2)));

static char *
path_printf(const char *fmt,...)
{
	va_list		ap;
	int			n;
	char	   *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = nokv_malloc((size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t) n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static char *
manifest_path(const char *dir, uint64_t number)
{
	return path_printf(NOKV_MANIFEST_FMT, dir, (ull) number);
}

/*
 * Parse "MANIFEST-NNNNNN" (exactly len bytes) in its canonical spelling,
 * i.e. exactly what NOKV_MANIFEST_FMT produces for the number: at least
 * six digits, no superfluous leading zeros beyond that, no overflow.
 */
static bool
parse_manifest_name(const char *s, size_t len, uint64_t *number)
{
	const char *digits = s + MANIFEST_PREFIX_LEN;
	size_t		ndigits;
	uint64_t	v = 0;
	char		canon[32];

	if (len <= MANIFEST_PREFIX_LEN ||
		memcmp(s, MANIFEST_PREFIX, MANIFEST_PREFIX_LEN) != 0)
		return false;
	ndigits = len - MANIFEST_PREFIX_LEN;
	if (ndigits < 6 || ndigits > 20)
		return false;
	for (size_t i = 0; i < ndigits; i++)
	{
		unsigned	d = (unsigned char) digits[i] - '0';

		if (d > 9)
			return false;
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	snprintf(canon, sizeof(canon), "%06llu", (ull) v);
	if (strlen(canon) != ndigits || memcmp(canon, digits, ndigits) != 0)
		return false;
	*number = v;
	return true;
}

/* ---------- version edits ---------- */

void
nokv_edit_init(nokv_version_edit *e)
{
	memset(e, 0, sizeof(*e));
}

void
nokv_edit_free(nokv_version_edit *e)
{
	for (int i = 0; i < e->n_added; i++)
	{
		free(e->added[i].smallest);
		free(e->added[i].largest);
	}
	free(e->added);
	free(e->deleted);
	free(e->vlog_segments);
	free(e->vlog_deleted);
	free(e->vlog_discard);
	nokv_edit_init(e);
}

void
nokv_edit_add_file(nokv_version_edit *e, const nokv_file_desc *f)
{
	nokv_file_desc *d;

	if (e->n_added == e->cap_added)
	{
		e->cap_added = e->cap_added ? e->cap_added * 2 : 4;
		e->added = nokv_realloc(e->added, sizeof(*e->added) * (size_t) e->cap_added);
	}
	d = &e->added[e->n_added++];
	*d = *f;
	d->smallest = key_dup(f->smallest, f->smallest_len);
	d->largest = key_dup(f->largest, f->largest_len);
}

void
nokv_edit_delete_file(nokv_version_edit *e, int level, uint64_t number)
{
	if (e->n_deleted == e->cap_deleted)
	{
		e->cap_deleted = e->cap_deleted ? e->cap_deleted * 2 : 4;
		e->deleted = nokv_realloc(e->deleted,
								  sizeof(*e->deleted) * (size_t) e->cap_deleted);
	}
	e->deleted[e->n_deleted].level = level;
	e->deleted[e->n_deleted].number = number;
	e->n_deleted++;
}

/* replaces an earlier position of the same log in this edit */
void
nokv_edit_set_ext_position(nokv_version_edit *e, uint32_t log_id, uint64_t pos)
{
	if (log_id >= NOKV_MAX_EXTERNAL_LOGS)
	{
		/* callers validate log ids at the API boundary; this is a bug */
		fprintf(stderr, "nokv: external log id %u out of range in version edit\n",
				log_id);
		abort();
	}
	for (int i = 0; i < e->n_ext; i++)
	{
		if (e->ext[i].log_id == log_id)
		{
			e->ext[i].position = pos;
			return;
		}
	}
	e->ext[e->n_ext].log_id = log_id;
	e->ext[e->n_ext].position = pos;
	e->n_ext++;
}

static inline uint64_t
sat_add_u64(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* append (number, amount) to a growable array, no merging */
static void
push_amount(nokv_vlog_amount **arr, int *n, int *cap, uint64_t number, uint64_t amount)
{
	if (*n == *cap)
	{
		*cap = *cap ? *cap * 2 : 4;
		*arr = nokv_realloc(*arr, sizeof(**arr) * (size_t) *cap);
	}
	(*arr)[*n].number = number;
	(*arr)[*n].amount = amount;
	(*n)++;
}

static void
push_number(uint64_t **arr, int *n, int *cap, uint64_t number)
{
	if (*n == *cap)
	{
		*cap = *cap ? *cap * 2 : 4;
		*arr = nokv_realloc(*arr, sizeof(**arr) * (size_t) *cap);
	}
	(*arr)[(*n)++] = number;
}

/* is (s1, o1) a later value-log position than (s2, o2)? */
static inline bool
vlog_pos_after(uint64_t s1, uint64_t o1, uint64_t s2, uint64_t o2)
{
	return s1 > s2 || (s1 == s2 && o1 > o2);
}

void
nokv_edit_set_vlog_head(nokv_version_edit *e, uint64_t segment, uint64_t offset)
{
	if (!e->has_vlog_head ||
		vlog_pos_after(segment, offset, e->vlog_head_segment, e->vlog_head_offset))
	{
		e->has_vlog_head = true;
		e->vlog_head_segment = segment;
		e->vlog_head_offset = offset;
	}
}

void
nokv_edit_add_vlog_segment(nokv_version_edit *e, uint64_t number, uint64_t size)
{
	for (int i = 0; i < e->n_vlog_segments; i++)
	{
		if (e->vlog_segments[i].number == number)
		{
			if (size > e->vlog_segments[i].amount)
				e->vlog_segments[i].amount = size;
			return;
		}
	}
	push_amount(&e->vlog_segments, &e->n_vlog_segments, &e->cap_vlog_segments,
				number, size);
}

void
nokv_edit_delete_vlog_segment(nokv_version_edit *e, uint64_t number)
{
	for (int i = 0; i < e->n_vlog_deleted; i++)
		if (e->vlog_deleted[i] == number)
			return;
	push_number(&e->vlog_deleted, &e->n_vlog_deleted, &e->cap_vlog_deleted, number);
}

void
nokv_edit_add_vlog_discard(nokv_version_edit *e, uint64_t number, uint64_t bytes)
{
	for (int i = 0; i < e->n_vlog_discard; i++)
	{
		if (e->vlog_discard[i].number == number)
		{
			e->vlog_discard[i].amount = sat_add_u64(e->vlog_discard[i].amount, bytes);
			return;
		}
	}
	push_amount(&e->vlog_discard, &e->n_vlog_discard, &e->cap_vlog_discard,
				number, bytes);
}

void
nokv_edit_encode(const nokv_version_edit *e, nokv_buf *out)
{
	if (e->has_next_file_number)
	{
		nokv_buf_append_varint32(out, TAG_NEXT_FILE_NUMBER);
		nokv_buf_append_varint64(out, e->next_file_number);
	}
	if (e->has_last_version)
	{
		nokv_buf_append_varint32(out, TAG_LAST_VERSION);
		nokv_buf_append_varint64(out, e->last_version);
	}
	if (e->has_log_number)
	{
		nokv_buf_append_varint32(out, TAG_LOG_NUMBER);
		nokv_buf_append_varint64(out, e->log_number);
	}
	for (int i = 0; i < e->n_ext; i++)
	{
		nokv_buf_append_varint32(out, TAG_EXT_POSITION);
		nokv_buf_append_varint32(out, e->ext[i].log_id);
		nokv_buf_append_varint64(out, e->ext[i].position);
	}
	for (int i = 0; i < e->n_deleted; i++)
	{
		nokv_buf_append_varint32(out, TAG_DELETED_FILE);
		nokv_buf_append_varint32(out, (uint32_t) e->deleted[i].level);
		nokv_buf_append_varint64(out, e->deleted[i].number);
	}
	for (int i = 0; i < e->n_added; i++)
	{
		const nokv_file_desc *f = &e->added[i];

		nokv_buf_append_varint32(out, TAG_ADDED_FILE);
		nokv_buf_append_varint32(out, (uint32_t) f->level);
		nokv_buf_append_varint64(out, f->number);
		nokv_buf_append_varint64(out, f->size);
		nokv_buf_append_varint64(out, f->entries);
		nokv_buf_append_varint64(out, f->deletions);
		nokv_buf_append_varint64(out, f->range_deletions);
		nokv_buf_append_varint64(out, f->min_version);
		nokv_buf_append_varint64(out, f->max_version);
		nokv_buf_append_lenprefixed(out, f->smallest, f->smallest_len);
		nokv_buf_append_lenprefixed(out, f->largest, f->largest_len);
	}
	if (e->has_vlog_head)
	{
		nokv_buf_append_varint32(out, TAG_VLOG_HEAD);
		nokv_buf_append_varint64(out, e->vlog_head_segment);
		nokv_buf_append_varint64(out, e->vlog_head_offset);
	}
	for (int i = 0; i < e->n_vlog_segments; i++)
	{
		nokv_buf_append_varint32(out, TAG_VLOG_SEGMENT);
		nokv_buf_append_varint64(out, e->vlog_segments[i].number);
		nokv_buf_append_varint64(out, e->vlog_segments[i].amount);
	}
	for (int i = 0; i < e->n_vlog_deleted; i++)
	{
		nokv_buf_append_varint32(out, TAG_VLOG_DELETED);
		nokv_buf_append_varint64(out, e->vlog_deleted[i]);
	}
	for (int i = 0; i < e->n_vlog_discard; i++)
	{
		nokv_buf_append_varint32(out, TAG_VLOG_DISCARD);
		nokv_buf_append_varint64(out, e->vlog_discard[i].number);
		nokv_buf_append_varint64(out, e->vlog_discard[i].amount);
	}
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* sorted copy of the numbers of an amount array */
static uint64_t *
sorted_amount_numbers(const nokv_vlog_amount *a, int n)
{
	uint64_t   *v = nokv_malloc(sizeof(uint64_t) * (size_t) (n ? n : 1));

	for (int i = 0; i < n; i++)
		v[i] = a[i].number;
	if (n > 1)
		qsort(v, (size_t) n, sizeof(uint64_t), u64_cmp);
	return v;
}

static bool
sorted_has_repeat(const uint64_t *v, int n, uint64_t *which)
{
	for (int i = 1; i < n; i++)
	{
		if (v[i] == v[i - 1])
		{
			*which = v[i];
			return true;
		}
	}
	return false;
}

static bool
sorted_contains(const uint64_t *v, int n, uint64_t x)
{
	return n > 0 && bsearch(&x, v, (size_t) n, sizeof(uint64_t), u64_cmp) != NULL;
}

/*
 * The value-log rules shared by decoding and in-memory validation: no
 * segment number 0, no segment named twice by one kind of field, and no
 * segment both deleted and recorded by one edit (that would resurrect it).
 */
static int
vlog_fields_validate(const nokv_version_edit *e, nokv_error *err)
{
	uint64_t   *seg;
	uint64_t   *del;
	uint64_t   *dis;
	uint64_t	which = 0;
	int			rc = NOKV_OK;

	if (e->n_vlog_segments < 0 || e->n_vlog_deleted < 0 || e->n_vlog_discard < 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "version edit has negative value-log counts");
	if (e->has_vlog_head && e->vlog_head_segment == 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log head names segment 0 in version edit");
	if (e->n_vlog_segments == 0 && e->n_vlog_deleted == 0 && e->n_vlog_discard == 0)
		return NOKV_OK;

	seg = sorted_amount_numbers(e->vlog_segments, e->n_vlog_segments);
	dis = sorted_amount_numbers(e->vlog_discard, e->n_vlog_discard);
	del = nokv_malloc(sizeof(uint64_t) * (size_t) (e->n_vlog_deleted ? e->n_vlog_deleted : 1));
	if (e->n_vlog_deleted > 0)
		memcpy(del, e->vlog_deleted, sizeof(uint64_t) * (size_t) e->n_vlog_deleted);
	if (e->n_vlog_deleted > 1)
		qsort(del, (size_t) e->n_vlog_deleted, sizeof(uint64_t), u64_cmp);

	if ((e->n_vlog_segments > 0 && seg[0] == 0) ||
		(e->n_vlog_deleted > 0 && del[0] == 0) ||
		(e->n_vlog_discard > 0 && dis[0] == 0))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"value-log segment number 0 in version edit");
	else if (sorted_has_repeat(seg, e->n_vlog_segments, &which))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"repeated value-log segment %llu in version edit", (ull) which);
	else if (sorted_has_repeat(del, e->n_vlog_deleted, &which))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"value-log segment %llu deleted twice in version edit", (ull) which);
	else if (sorted_has_repeat(dis, e->n_vlog_discard, &which))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"repeated discard of value-log segment %llu in version edit",
							(ull) which);
	else
	{
		for (int i = 0; i < e->n_vlog_deleted; i++)
		{
			if (sorted_contains(seg, e->n_vlog_segments, del[i]))
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"version edit both deletes and records value-log segment %llu",
									(ull) del[i]);
				break;
			}
		}
	}
	free(seg);
	free(del);
	free(dis);
	return rc;
}

/* a varint32 length then that many bytes, all inside [p, limit) */
static const char *
get_lenprefixed(const char *p, const char *limit, const char **data, size_t *len)
{
	uint32_t	n;

	p = nokv_get_varint32(p, limit, &n);
	if (p == NULL || n > (size_t) (limit - p))
		return NULL;
	*data = p;
	*len = n;
	return p + n;
}

/* decodes the body of TAG_ADDED_FILE; keys point into the input */
static const char *
get_added_file(const char *p, const char *limit, nokv_file_desc *f)
{
	uint32_t	level;
	uint64_t   *fields[] = {&f->number, &f->size, &f->entries, &f->deletions,
		&f->range_deletions, &f->min_version, &f->max_version};
	const char *key;

	if ((p = nokv_get_varint32(p, limit, &level)) == NULL)
		return NULL;
	/* out-of-range levels are reported by the caller, not as truncation */
	f->level = level < NOKV_MAX_LEVELS ? (int) level : -1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((p = nokv_get_varint64(p, limit, fields[i])) == NULL)
			return NULL;
	if ((p = get_lenprefixed(p, limit, &key, &f->smallest_len)) == NULL)
		return NULL;
	f->smallest = (char *) key;
	if ((p = get_lenprefixed(p, limit, &key, &f->largest_len)) == NULL)
		return NULL;
	f->largest = (char *) key;
	return p;
}

int
nokv_edit_decode(const char *data, size_t len, nokv_version_edit *e,
				 nokv_error *err)
{
	const char *p = data;
	const char *limit;
	bool		seen_ext[NOKV_MAX_EXTERNAL_LOGS] = {false};
	int			rc;

	nokv_edit_init(e);
	if (len == 0)
		return NOKV_OK;			/* data may be NULL */
	limit = data + len;
	while (p < limit)
	{
		size_t		field_off = (size_t) (p - data);
		uint32_t	tag;
		const char *next;

		next = nokv_get_varint32(p, limit, &tag);
		if (next == NULL)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"truncated tag at offset %zu of version edit",
								field_off);
			goto fail;
		}
		p = next;
		switch (tag)
		{
			case TAG_NEXT_FILE_NUMBER:
			case TAG_LAST_VERSION:
			case TAG_LOG_NUMBER:
				{
					bool	   *has;
					uint64_t   *value;

					if (tag == TAG_NEXT_FILE_NUMBER)
					{
						has = &e->has_next_file_number;
						value = &e->next_file_number;
					}
					else if (tag == TAG_LAST_VERSION)
					{
						has = &e->has_last_version;
						value = &e->last_version;
					}
					else
					{
						has = &e->has_log_number;
						value = &e->log_number;
					}
					if (*has)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"repeated field (tag %u) at offset %zu of version edit",
											tag, field_off);
						goto fail;
					}
					next = nokv_get_varint64(p, limit, value);
					*has = true;
					break;
				}
			case TAG_EXT_POSITION:
				{
					uint32_t	log_id;
					uint64_t	pos;

					next = nokv_get_varint32(p, limit, &log_id);
					if (next)
						next = nokv_get_varint64(next, limit, &pos);
					if (next == NULL)
						break;
					if (log_id >= NOKV_MAX_EXTERNAL_LOGS)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"external log id %u out of range at offset %zu of version edit",
											log_id, field_off);
						goto fail;
					}
					if (seen_ext[log_id])
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"repeated position of external log %u at offset %zu of version edit",
											log_id, field_off);
						goto fail;
					}
					seen_ext[log_id] = true;
					e->ext[e->n_ext].log_id = log_id;
					e->ext[e->n_ext].position = pos;
					e->n_ext++;
					break;
				}
			case TAG_DELETED_FILE:
				{
					uint32_t	level;
					uint64_t	number;

					next = nokv_get_varint32(p, limit, &level);
					if (next)
						next = nokv_get_varint64(next, limit, &number);
					if (next == NULL)
						break;
					if (level >= NOKV_MAX_LEVELS)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"level %u out of range at offset %zu of version edit",
											level, field_off);
						goto fail;
					}
					nokv_edit_delete_file(e, (int) level, number);
					break;
				}
			case TAG_ADDED_FILE:
				{
					nokv_file_desc f;

					memset(&f, 0, sizeof(f));
					next = get_added_file(p, limit, &f);
					if (next == NULL)
						break;
					if (f.level < 0)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"level out of range for added file %llu at offset %zu of version edit",
											(ull) f.number, field_off);
						goto fail;
					}
					if (f.smallest_len < MIN_IKEY_LEN || f.largest_len < MIN_IKEY_LEN)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"key shorter than an internal key for added file %llu at offset %zu of version edit",
											(ull) f.number, field_off);
						goto fail;
					}
					nokv_edit_add_file(e, &f);
					break;
				}
			case TAG_VLOG_HEAD:
				{
					uint64_t	segment;
					uint64_t	offset;

					if (e->has_vlog_head)
					{
						rc = nokv_error_set(err, NOKV_CORRUPTION,
											"repeated field (tag %u) at offset %zu of version edit",
											tag, field_off);
						goto fail;
					}
					next = nokv_get_varint64(p, limit, &segment);
					if (next)
						next = nokv_get_varint64(next, limit, &offset);
					if (next == NULL)
						break;
					e->has_vlog_head = true;
					e->vlog_head_segment = segment;
					e->vlog_head_offset = offset;
					break;
				}
			case TAG_VLOG_SEGMENT:
			case TAG_VLOG_DISCARD:
				{
					uint64_t	number;
					uint64_t	amount;

					next = nokv_get_varint64(p, limit, &number);
					if (next)
						next = nokv_get_varint64(next, limit, &amount);
					if (next == NULL)
						break;
					/* raw: repeats are found (and rejected) below */
					if (tag == TAG_VLOG_SEGMENT)
						push_amount(&e->vlog_segments, &e->n_vlog_segments,
									&e->cap_vlog_segments, number, amount);
					else
						push_amount(&e->vlog_discard, &e->n_vlog_discard,
									&e->cap_vlog_discard, number, amount);
					break;
				}
			case TAG_VLOG_DELETED:
				{
					uint64_t	number;

					next = nokv_get_varint64(p, limit, &number);
					if (next == NULL)
						break;
					push_number(&e->vlog_deleted, &e->n_vlog_deleted,
								&e->cap_vlog_deleted, number);
					break;
				}
			default:
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"unknown tag %u at offset %zu of version edit",
									tag, field_off);
				goto fail;
		}
		if (next == NULL)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"truncated field (tag %u) at offset %zu of version edit",
								tag, field_off);
			goto fail;
		}
		p = next;
	}
	if ((rc = vlog_fields_validate(e, err)) != NOKV_OK)
		goto fail;
	return NOKV_OK;

fail:
	nokv_edit_free(e);
	return rc;
}

/*
 * The checks nokv_edit_decode makes, for an edit built in memory: an edit
 * that passes them encodes to bytes that decode again, so the writer never
 * makes a manifest unreadable.
 */
static int
edit_validate(const nokv_version_edit *e, nokv_error *err)
{
	bool		seen_ext[NOKV_MAX_EXTERNAL_LOGS] = {false};

	if (e->n_ext < 0 || e->n_ext > NOKV_MAX_EXTERNAL_LOGS ||
		e->n_deleted < 0 || e->n_added < 0)
		return nokv_error_set(err, NOKV_CORRUPTION, "version edit has negative or excessive counts");
	for (int i = 0; i < e->n_ext; i++)
	{
		uint32_t	id = e->ext[i].log_id;

		if (id >= NOKV_MAX_EXTERNAL_LOGS)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "external log id %u out of range in version edit", id);
		if (seen_ext[id])
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "repeated position of external log %u in version edit", id);
		seen_ext[id] = true;
	}
	for (int i = 0; i < e->n_deleted; i++)
		if (e->deleted[i].level < 0 || e->deleted[i].level >= NOKV_MAX_LEVELS)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "level %d out of range for deleted file %llu in version edit",
								  e->deleted[i].level, (ull) e->deleted[i].number);
	for (int i = 0; i < e->n_added; i++)
	{
		const nokv_file_desc *f = &e->added[i];

		if (f->level < 0 || f->level >= NOKV_MAX_LEVELS)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "level %d out of range for added file %llu in version edit",
								  f->level, (ull) f->number);
		if (f->smallest_len < MIN_IKEY_LEN || f->largest_len < MIN_IKEY_LEN ||
			f->smallest_len > UINT32_MAX || f->largest_len > UINT32_MAX)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "key shorter than an internal key for added file %llu in version edit",
								  (ull) f->number);
	}
	return vlog_fields_validate(e, err);
}

/* ---------- manifest state ---------- */

void
nokv_manifest_state_init(nokv_manifest_state *st)
{
	memset(st, 0, sizeof(*st));
}

static void
free_level(nokv_file_desc *files, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(files[i].smallest);
		free(files[i].largest);
	}
	free(files);
}

void
nokv_manifest_state_free(nokv_manifest_state *st)
{
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		free_level(st->files[l], st->nfiles[l]);
	free(st->vlog);
	nokv_manifest_state_init(st);
}

/* a table of the state before the edit, indexed by number */
typedef struct file_ref
{
	uint64_t	number;
	int			level;
	int			index;			/* in st->files[level] */
	bool		deleted;		/* by this edit */
} file_ref;

static int
file_ref_cmp(const void *a, const void *b)
{
	uint64_t	x = ((const file_ref *) a)->number;
	uint64_t	y = ((const file_ref *) b)->number;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static file_ref *
find_ref(file_ref *refs, size_t n, uint64_t number)
{
	file_ref	key = {.number = number};

	if (n == 0)
		return NULL;
	return bsearch(&key, refs, n, sizeof(file_ref), file_ref_cmp);
}

static int
added_number_cmp(const void *a, const void *b)
{
	uint64_t	x = (*(const nokv_file_desc *const *) a)->number;
	uint64_t	y = (*(const nokv_file_desc *const *) b)->number;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* levels >= 1: by smallest key; equal smallest keys (an overlap) by number */
static int
file_smallest_cmp(const void *a, const void *b)
{
	const nokv_file_desc *x = a;
	const nokv_file_desc *y = b;
	int			r = nokv_ikey_compare(x->smallest, x->smallest_len,
									  y->smallest, y->smallest_len);

	if (r != 0)
		return r;
	return x->number < y->number ? -1 : (x->number > y->number ? 1 : 0);
}

static inline uint64_t
max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static int
vlog_desc_cmp(const void *a, const void *b)
{
	uint64_t	x = ((const nokv_vlog_segment_desc *) a)->number;
	uint64_t	y = ((const nokv_vlog_segment_desc *) b)->number;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static nokv_vlog_segment_desc *
find_vlog(nokv_vlog_segment_desc *v, int n, uint64_t number)
{
	nokv_vlog_segment_desc key = {.number = number};

	if (n <= 0)
		return NULL;
	return bsearch(&key, v, (size_t) n, sizeof(key), vlog_desc_cmp);
}

const nokv_vlog_segment_desc *
nokv_manifest_state_vlog(const nokv_manifest_state *st, uint64_t number)
{
	return find_vlog(st->vlog, st->n_vlog, number);
}

/* the value-log part of an edit applied to st, computed without touching st */
typedef struct vlog_change
{
	bool		changed;
	nokv_vlog_segment_desc *segs;	/* new array, by number */
	int			nsegs;
	uint64_t	head_segment;
	uint64_t	head_offset;
} vlog_change;

/*
 * Deleted segments must exist; recorded segments are added or grown
 * (max of sizes: two flushes may record the same segment in either
 * order); the head only moves forward and must name a segment that is
 * live afterwards, whose size then covers it; discard increments add to
 * segments that are live afterwards and are ignored for others (a
 * segment deleted while the compaction that dropped its last pointers was
 * finishing: nothing is lost by forgetting its garbage).
 */
static int
vlog_prepare(const nokv_manifest_state *st, const nokv_version_edit *e,
			 vlog_change *c, nokv_error *err)
{
	uint64_t   *del = NULL;
	int			n = 0;
	int			nold;
	nokv_vlog_segment_desc *head;

	memset(c, 0, sizeof(*c));
	if (!e->has_vlog_head && e->n_vlog_segments == 0 && e->n_vlog_deleted == 0 &&
		e->n_vlog_discard == 0)
		return NOKV_OK;

	for (int i = 0; i < e->n_vlog_deleted; i++)
		if (find_vlog(st->vlog, st->n_vlog, e->vlog_deleted[i]) == NULL)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "version edit deletes value-log segment %llu, which does not exist",
								  (ull) e->vlog_deleted[i]);
	if (e->n_vlog_deleted > 0)
	{
		del = nokv_malloc(sizeof(uint64_t) * (size_t) e->n_vlog_deleted);
		memcpy(del, e->vlog_deleted, sizeof(uint64_t) * (size_t) e->n_vlog_deleted);
		qsort(del, (size_t) e->n_vlog_deleted, sizeof(uint64_t), u64_cmp);
	}

	c->segs = nokv_malloc(sizeof(nokv_vlog_segment_desc) *
						  (size_t) (st->n_vlog + e->n_vlog_segments + 1));
	for (int i = 0; i < st->n_vlog; i++)
		if (!sorted_contains(del, e->n_vlog_deleted, st->vlog[i].number))
			c->segs[n++] = st->vlog[i];
	free(del);
	nold = n;					/* survivors: still sorted */
	for (int i = 0; i < e->n_vlog_segments; i++)
	{
		nokv_vlog_segment_desc *d = find_vlog(c->segs, nold, e->vlog_segments[i].number);

		if (d != NULL)
		{
			if (e->vlog_segments[i].amount > d->size)
				d->size = e->vlog_segments[i].amount;
			continue;
		}
		c->segs[n].number = e->vlog_segments[i].number;
		c->segs[n].size = e->vlog_segments[i].amount;
		c->segs[n].discard = 0;
		n++;
	}
	if (n > nold)
		qsort(c->segs, (size_t) n, sizeof(nokv_vlog_segment_desc), vlog_desc_cmp);
	c->nsegs = n;

	c->head_segment = st->vlog_head_segment;
	c->head_offset = st->vlog_head_offset;
	if (e->has_vlog_head &&
		vlog_pos_after(e->vlog_head_segment, e->vlog_head_offset,
					   c->head_segment, c->head_offset))
	{
		c->head_segment = e->vlog_head_segment;
		c->head_offset = e->vlog_head_offset;
	}
	if (c->head_segment != 0)
	{
		head = find_vlog(c->segs, n, c->head_segment);
		if (head == NULL)
		{
			free(c->segs);
			c->segs = NULL;
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "value-log head names segment %llu, which is not a live segment after version edit",
								  (ull) c->head_segment);
		}
		if (c->head_offset > head->size)
			head->size = c->head_offset;
	}
	for (int i = 0; i < e->n_vlog_discard; i++)
	{
		nokv_vlog_segment_desc *d = find_vlog(c->segs, n, e->vlog_discard[i].number);

		if (d != NULL)
			d->discard = sat_add_u64(d->discard, e->vlog_discard[i].amount);
	}
	c->changed = true;
	return NOKV_OK;
}

int
nokv_manifest_state_apply(nokv_manifest_state *st, const nokv_version_edit *e,
						  nokv_error *err)
{
	vlog_change vc = {0};
	size_t		total = 0;
	file_ref   *refs = NULL;
	bool	   *dead[NOKV_MAX_LEVELS] = {NULL};
	int			ndead[NOKV_MAX_LEVELS] = {0};
	int			nadd[NOKV_MAX_LEVELS] = {0};
	nokv_file_desc *newfiles[NOKV_MAX_LEVELS] = {NULL};
	int			nnew[NOKV_MAX_LEVELS] = {0};
	const nokv_file_desc **by_number = NULL;
	nokv_file_desc *copies = NULL;
	int			rc;

	if ((rc = edit_validate(e, err)) != NOKV_OK)
		return rc;

	/* index the current tables by number */
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		total += (size_t) st->nfiles[l];
	refs = nokv_malloc(sizeof(file_ref) * (total ? total : 1));
	total = 0;
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		dead[l] = nokv_calloc((size_t) st->nfiles[l] + 1, sizeof(bool));
		for (int i = 0; i < st->nfiles[l]; i++)
		{
			refs[total].number = st->files[l][i].number;
			refs[total].level = l;
			refs[total].index = i;
			refs[total].deleted = false;
			total++;
		}
	}
	if (total > 1)
		qsort(refs, total, sizeof(file_ref), file_ref_cmp);

	/* deletions must name a table at that level, once */
	for (int i = 0; i < e->n_deleted; i++)
	{
		int			level = e->deleted[i].level;
		uint64_t	number = e->deleted[i].number;
		file_ref   *r = find_ref(refs, total, number);

		if (r == NULL)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"version edit deletes file %llu at level %d, which does not exist",
								(ull) number, level);
			goto done;
		}
		if (r->level != level)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"version edit deletes file %llu at level %d, but it is at level %d",
								(ull) number, level, r->level);
			goto done;
		}
		if (r->deleted)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"version edit deletes file %llu twice", (ull) number);
			goto done;
		}
		r->deleted = true;
		dead[level][r->index] = true;
		ndead[level]++;
	}

	/* additions must use numbers no surviving or other added table has */
	if (e->n_added > 0)
	{
		by_number = nokv_malloc(sizeof(*by_number) * (size_t) e->n_added);
		for (int i = 0; i < e->n_added; i++)
			by_number[i] = &e->added[i];
		qsort(by_number, (size_t) e->n_added, sizeof(*by_number), added_number_cmp);
		for (int i = 0; i < e->n_added; i++)
		{
			const nokv_file_desc *f = by_number[i];
			file_ref   *r;

			if (i > 0 && by_number[i - 1]->number == f->number)
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"version edit adds file %llu twice", (ull) f->number);
				goto done;
			}
			r = find_ref(refs, total, f->number);
			if (r != NULL && !r->deleted)
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"version edit adds file %llu, which already exists at level %d",
									(ull) f->number, r->level);
				goto done;
			}
			if (nokv_ikey_compare(f->smallest, f->smallest_len,
								  f->largest, f->largest_len) > 0)
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"version edit adds file %llu whose smallest key sorts after its largest",
									(ull) f->number);
				goto done;
			}
			nadd[f->level]++;
		}
	}

	/*
	 * Build the new level arrays.  Added tables are deep-copied now (into
	 * "copies", which owns the keys until the edit commits) so that the new
	 * arrays never point into the caller's edit.
	 */
	if (e->n_added > 0)
	{
		copies = nokv_malloc(sizeof(*copies) * (size_t) e->n_added);
		for (int i = 0; i < e->n_added; i++)
		{
			copies[i] = e->added[i];
			copies[i].smallest = key_dup(e->added[i].smallest, e->added[i].smallest_len);
			copies[i].largest = key_dup(e->added[i].largest, e->added[i].largest_len);
		}
	}
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		int			n;

		if (ndead[l] == 0 && nadd[l] == 0)
			continue;
		n = st->nfiles[l] - ndead[l] + nadd[l];
		newfiles[l] = nokv_malloc(sizeof(nokv_file_desc) * (size_t) (n ? n : 1));
		for (int i = 0; i < st->nfiles[l]; i++)
			if (!dead[l][i])
				newfiles[l][nnew[l]++] = st->files[l][i];
		/* level 0 keeps edit order after the survivors: newest last */
		for (int i = 0; i < e->n_added; i++)
			if (copies[i].level == l)
				newfiles[l][nnew[l]++] = copies[i];
		if (l == 0 || nnew[l] < 2)
			continue;
		qsort(newfiles[l], (size_t) nnew[l], sizeof(nokv_file_desc), file_smallest_cmp);
		for (int i = 1; i < nnew[l]; i++)
		{
			const nokv_file_desc *prev = &newfiles[l][i - 1];
			const nokv_file_desc *cur = &newfiles[l][i];

			if (nokv_ikey_compare(prev->largest, prev->largest_len,
								  cur->smallest, cur->smallest_len) >= 0)
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"files %llu and %llu overlap at level %d after version edit",
									(ull) prev->number, (ull) cur->number, l);
				goto done;
			}
		}
	}

	if ((rc = vlog_prepare(st, e, &vc, err)) != NOKV_OK)
		goto done;

	/* every check passed: commit (nothing below can fail) */
	if (vc.changed)
	{
		free(st->vlog);
		st->vlog = vc.segs;
		st->n_vlog = vc.nsegs;
		st->cap_vlog = vc.nsegs;
		st->vlog_head_segment = vc.head_segment;
		st->vlog_head_offset = vc.head_offset;
		vc.segs = NULL;
	}
	for (size_t i = 0; i < total; i++)
	{
		if (refs[i].deleted)
		{
			nokv_file_desc *f = &st->files[refs[i].level][refs[i].index];

			free(f->smallest);
			free(f->largest);
		}
	}
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		if (newfiles[l] == NULL)
			continue;
		free(st->files[l]);
		st->files[l] = newfiles[l];
		st->nfiles[l] = nnew[l];
		st->capfiles[l] = nnew[l] ? nnew[l] : 1;
		newfiles[l] = NULL;
	}
	free(copies);
	copies = NULL;

	if (e->has_next_file_number)
		st->next_file_number = max_u64(st->next_file_number, e->next_file_number);
	for (int i = 0; i < e->n_added; i++)
	{
		uint64_t	num = e->added[i].number;

		if (num >= st->next_file_number)
			st->next_file_number = num == UINT64_MAX ? UINT64_MAX : num + 1;
	}
	/* value-log segments share the file-number space */
	for (int i = 0; i < e->n_vlog_segments; i++)
	{
		uint64_t	num = e->vlog_segments[i].number;

		if (num >= st->next_file_number)
			st->next_file_number = num == UINT64_MAX ? UINT64_MAX : num + 1;
	}
	if (e->has_last_version)
		st->last_version = max_u64(st->last_version, e->last_version);
	if (e->has_log_number)
		st->log_number = max_u64(st->log_number, e->log_number);
	for (int i = 0; i < e->n_ext; i++)
		st->ext_position[e->ext[i].log_id] =
			max_u64(st->ext_position[e->ext[i].log_id], e->ext[i].position);
	rc = NOKV_OK;

done:
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		free(newfiles[l]);		/* shallow: keys belong to st or copies */
		free(dead[l]);
	}
	if (copies != NULL)
	{
		for (int i = 0; i < e->n_added; i++)
		{
			free(copies[i].smallest);
			free(copies[i].largest);
		}
		free(copies);
	}
	free(by_number);
	free(refs);
	free(vc.segs);
	return rc;
}

void
nokv_manifest_state_to_edit(const nokv_manifest_state *st, nokv_version_edit *e)
{
	nokv_edit_init(e);
	e->has_next_file_number = true;
	e->next_file_number = st->next_file_number;
	e->has_last_version = true;
	e->last_version = st->last_version;
	e->has_log_number = true;
	e->log_number = st->log_number;
	/* zero is where every position starts, so it need not be recorded */
	for (uint32_t id = 0; id < NOKV_MAX_EXTERNAL_LOGS; id++)
	{
		if (st->ext_position[id] != 0)
		{
			e->ext[e->n_ext].log_id = id;
			e->ext[e->n_ext].position = st->ext_position[id];
			e->n_ext++;
		}
	}
	/* level by level, level 0 oldest first, so replay rebuilds the order */
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		for (int i = 0; i < st->nfiles[l]; i++)
		{
			nokv_edit_add_file(e, &st->files[l][i]);
			e->added[e->n_added - 1].level = l;
		}
	}
	/* value log: segments by number, the head, nonzero discard totals */
	if (st->vlog_head_segment != 0)
	{
		e->has_vlog_head = true;
		e->vlog_head_segment = st->vlog_head_segment;
		e->vlog_head_offset = st->vlog_head_offset;
	}
	for (int i = 0; i < st->n_vlog; i++)
		push_amount(&e->vlog_segments, &e->n_vlog_segments, &e->cap_vlog_segments,
					st->vlog[i].number, st->vlog[i].size);
	for (int i = 0; i < st->n_vlog; i++)
		if (st->vlog[i].discard != 0)
			push_amount(&e->vlog_discard, &e->n_vlog_discard, &e->cap_vlog_discard,
						st->vlog[i].number, st->vlog[i].discard);
}

/* ---------- replay ---------- */

/*
 * The header's file number must match the name the file is known by: a
 * manifest copied or renamed into the wrong place is caught here rather
 * than replayed as if it were the named one.  A file too short for a
 * header is left to the reader (it replays to nothing).
 */
static int
check_header_number(const char *path, uint64_t number, nokv_error *err)
{
	int			fd;
	struct stat sb;
	char		header[NOKV_LOG_FILE_HEADER];
	int			rc = NOKV_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nokv_error_errno(err, "could not open manifest %s", path);
	if (fstat(fd, &sb) != 0)
		rc = nokv_error_errno(err, "could not stat manifest %s", path);
	else if (sb.st_size >= NOKV_LOG_FILE_HEADER)
	{
		rc = nokv_pread_full(fd, header, sizeof(header), 0, path, err);
		if (rc == NOKV_OK &&
			nokv_get_le32(header + 12) != (uint32_t) number)
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"manifest header at offset 0 of %s carries file number %u, expected %u",
								path, nokv_get_le32(header + 12), (uint32_t) number);
	}
	close(fd);
	return rc;
}

/* replay path into st (reset first); on error st is left empty */
static int
replay_manifest(const char *path, bool check_number, uint64_t number,
				nokv_manifest_state *st, nokv_error *err)
{
	nokv_log_reader *reader = NULL;
	nokv_version_edit edit;
	uint64_t	nedits = 0;
	int			rc;

	nokv_manifest_state_free(st);
	if (check_number &&
		(rc = check_header_number(path, number, err)) != NOKV_OK)
		return rc;
	if ((rc = nokv_log_reader_open(path, NOKV_MANIFEST_MAGIC, &reader, err)) != NOKV_OK)
		return rc;

	for (;;)
	{
		uint64_t	offset = nokv_log_valid_end(reader);
		int			type;
		const char *payload;
		size_t		len;
		nokv_error	inner;

		rc = nokv_log_read(reader, &type, &payload, &len, err);
		if (rc == 0)
			break;
		if (rc != 1)
		{
			/* the reader returns minus a nokv_code on error */
			rc = rc < 0 ? -rc : rc;
			goto fail;
		}
		if (type != MANIFEST_RECORD_EDIT)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"unknown record type %d at offset %llu of %s",
								type, (ull) offset, path);
			goto fail;
		}
		nokv_error_clear(&inner);
		rc = nokv_edit_decode(payload, len, &edit, &inner);
		if (rc == NOKV_OK)
		{
			rc = nokv_manifest_state_apply(st, &edit, &inner);
			nokv_edit_free(&edit);
		}
		if (rc != NOKV_OK)
		{
			rc = nokv_error_set(err, rc, "%s, in record at offset %llu of %s",
								inner.msg, (ull) offset, path);
			goto fail;
		}
		nedits++;
	}
	if (nedits == 0)
	{
		/* create() makes the snapshot durable before CURRENT names the file */
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"manifest %s holds no version edit (%llu valid bytes)",
							path, (ull) nokv_log_valid_end(reader));
		goto fail;
	}
	st->manifest_number = number;
	st->manifest_size = nokv_log_valid_end(reader);
	st->torn_tail = nokv_log_torn(reader);
	nokv_log_reader_close(reader);
	return NOKV_OK;

fail:
	nokv_log_reader_close(reader);
	nokv_manifest_state_free(st);
	return rc;
}

int
nokv_manifest_replay_file(const char *path, nokv_manifest_state *st,
						  nokv_error *err)
{
	const char *base = strrchr(path, '/');
	uint64_t	number = 0;
	bool		named;

	base = base ? base + 1 : path;
	named = parse_manifest_name(base, strlen(base), &number);
	return replay_manifest(path, named, named ? number : 0, st, err);
}

/*
 * Read CURRENT.  *missing is set (and NOKV_OK returned) if it does not
 * exist; otherwise it must hold exactly "MANIFEST-NNNNNN\n".
 */
static int
read_current(const char *dir, bool *missing, uint64_t *number, nokv_error *err)
{
	char	   *path = path_printf("%s/%s", dir, NOKV_CURRENT_NAME);
	char		buf[CURRENT_MAX_LEN];
	struct stat sb;
	int			fd;
	int			rc = NOKV_OK;

	*missing = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			*missing = true;
		else
			rc = nokv_error_errno(err, "could not open %s", path);
		free(path);
		return rc;
	}
	if (fstat(fd, &sb) != 0)
		rc = nokv_error_errno(err, "could not stat %s", path);
	else if (!S_ISREG(sb.st_mode) || sb.st_size < 2 ||
			 (uint64_t) sb.st_size > sizeof(buf))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"CURRENT is malformed: %s is not a short regular file", path);
	else if ((rc = nokv_pread_full(fd, buf, (size_t) sb.st_size, 0, path, err)) == NOKV_OK)
	{
		size_t		len = (size_t) sb.st_size;

		if (buf[len - 1] != '\n' ||
			!parse_manifest_name(buf, len - 1, number))
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"CURRENT is malformed: %s does not hold \"MANIFEST-NNNNNN\\n\"",
								path);
	}
	close(fd);
	free(path);
	return rc;
}

/* is there a MANIFEST-* file (not a leftover temp file) in dir? */
static int
dir_has_manifest(const char *dir, bool *found, nokv_error *err)
{
	DIR		   *d;
	struct dirent *de;
	size_t		tmplen = strlen(NOKV_TMP_SUFFIX);

	*found = false;
	d = opendir(dir);
	if (d == NULL)
	{
		if (errno == ENOENT)
			return NOKV_OK;
		return nokv_error_errno(err, "could not open directory %s", dir);
	}
	errno = 0;
	while ((de = readdir(d)) != NULL)
	{
		size_t		len = strlen(de->d_name);

		if (len > MANIFEST_PREFIX_LEN &&
			memcmp(de->d_name, MANIFEST_PREFIX, MANIFEST_PREFIX_LEN) == 0 &&
			!(len >= tmplen && strcmp(de->d_name + len - tmplen, NOKV_TMP_SUFFIX) == 0))
		{
			*found = true;
			break;
		}
		errno = 0;
	}
	if (de == NULL && errno != 0)
	{
		int			rc = nokv_error_errno(err, "could not read directory %s", dir);

		closedir(d);
		return rc;
	}
	closedir(d);
	return NOKV_OK;
}

int
nokv_manifest_recover(const char *dir, nokv_manifest_state *st, nokv_error *err)
{
	bool		missing;
	uint64_t	number = 0;
	char	   *path;
	struct stat sb;
	int			rc;

	nokv_manifest_state_free(st);
	if ((rc = read_current(dir, &missing, &number, err)) != NOKV_OK)
		return rc;
	if (missing)
	{
		bool		found;

		if ((rc = dir_has_manifest(dir, &found, err)) != NOKV_OK)
			return rc;
		if (found)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "CURRENT is missing but manifest files exist in %s", dir);
		return nokv_error_set(err, NOKV_NOT_FOUND, "no CURRENT in %s", dir);
	}

	path = manifest_path(dir, number);
	if (stat(path, &sb) != 0)
	{
		if (errno == ENOENT)
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"CURRENT in %s names missing manifest %s", dir, path);
		else
			rc = nokv_error_errno(err, "could not stat manifest %s", path);
		free(path);
		return rc;
	}
	rc = replay_manifest(path, true, number, st, err);
	free(path);
	return rc;
}

/* ---------- writer ---------- */

/* does CURRENT (as visible now) name manifest number? */
static bool
current_names(const char *dir, uint64_t number)
{
	bool		missing;
	uint64_t	named;

	return read_current(dir, &missing, &named, NULL) == NOKV_OK && !missing &&
		named == number;
}

static nokv_manifest_writer *
writer_new(char *path, int fd, uint64_t number, uint64_t size)
{
	nokv_manifest_writer *w = nokv_calloc(1, sizeof(*w));

	w->path = path;
	w->fd = fd;
	w->number = number;
	w->size = size;
	w->failed = false;
	return w;
}

int
nokv_manifest_create(const char *dir, uint64_t number,
					 const nokv_manifest_state *st,
					 nokv_manifest_writer **w, nokv_error *err)
{
	char	   *path = manifest_path(dir, number);
	char	   *tmp = path_printf("%s%s", path, NOKV_TMP_SUFFIX);
	nokv_version_edit snapshot;
	nokv_buf	payload = {0};
	nokv_buf	image = {0};
	char		header[NOKV_LOG_FILE_HEADER];
	char		current[CURRENT_MAX_LEN + 1];
	bool		missing = true;
	bool		had_live;
	uint64_t	live = 0;
	int			fd = -1;
	int			rc;

	*w = NULL;

	/* never replace the manifest CURRENT names: a crash could lose it */
	had_live = read_current(dir, &missing, &live, NULL) == NOKV_OK && !missing;
	if (had_live && live == number)
	{
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							"manifest %s is the live manifest and cannot be recreated", path);
		goto done;
	}

	nokv_manifest_state_to_edit(st, &snapshot);
	rc = edit_validate(&snapshot, err);
	if (rc == NOKV_OK)
		nokv_edit_encode(&snapshot, &payload);
	nokv_edit_free(&snapshot);
	if (rc != NOKV_OK)
		goto done;
	if (payload.len > NOKV_LOG_MAX_RECORD)
	{
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							"manifest snapshot of %zu bytes exceeds the record limit", payload.len);
		goto done;
	}
	nokv_log_file_header(header, NOKV_MANIFEST_MAGIC, number);
	nokv_buf_append(&image, header, sizeof(header));
	nokv_log_append_record(&image, MANIFEST_RECORD_EDIT, payload.data, payload.len);

	/* a leftover temp file is from a crashed attempt: overwrite it */
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		rc = nokv_error_errno(err, "could not create %s", tmp);
		goto done;
	}
	if ((rc = nokv_write_full(fd, image.data, image.len, tmp, err)) != NOKV_OK ||
		(rc = nokv_fdatasync(fd, tmp, err)) != NOKV_OK)
		goto unlink_tmp;
	if (rename(tmp, path) != 0)
	{
		rc = nokv_error_errno(err, "could not rename %s to %s", tmp, path);
		goto unlink_tmp;
	}
	/* the new name must be durable before CURRENT can point at it */
	if ((rc = nokv_fsync_dir(dir, err)) != NOKV_OK)
		goto drop_new;

	/*
	 * The writer keeps the descriptor opened above, so nothing can fail
	 * after CURRENT moves: a caller that gets an error here never holds a
	 * writer for a manifest that is live.
	 */
	snprintf(current, sizeof(current), MANIFEST_PREFIX "%06llu\n", (ull) number);
	if ((rc = nokv_write_file_atomic(dir, NOKV_CURRENT_NAME, current,
									 strlen(current), err)) != NOKV_OK)
	{
		/*
		 * The swap may have happened (only the directory fsync failed).  The
		 * caller goes on appending to its old manifest, so put CURRENT back;
		 * with no previous CURRENT (a new database) the new one may stay.
		 */
		if (had_live && current_names(dir, number))
		{
			snprintf(current, sizeof(current), MANIFEST_PREFIX "%06llu\n", (ull) live);
			if (nokv_write_file_atomic(dir, NOKV_CURRENT_NAME, current,
									   strlen(current), NULL) != NOKV_OK)
			{
				/* nothing more to do: the error tells the caller to stop */
			}
		}
		goto drop_new;
	}

	*w = writer_new(path, fd, number, image.len);
	path = NULL;
	fd = -1;
	goto done;

drop_new:
	/* a manifest CURRENT does not name is garbage; keep it only if it does */
	if (!current_names(dir, number))
		(void) unlink(path);
	goto done;
unlink_tmp:
	(void) unlink(tmp);
done:
	if (fd >= 0)
		close(fd);
	nokv_buf_free(&payload);
	nokv_buf_free(&image);
	free(tmp);
	free(path);
	return rc;
}

int
nokv_manifest_writer_open(const char *dir, uint64_t number, uint64_t valid_size,
						  nokv_manifest_writer **w, nokv_error *err)
{
	char	   *path = manifest_path(dir, number);
	struct stat sb;
	int			fd;
	int			rc;

	*w = NULL;
	if (valid_size < NOKV_LOG_FILE_HEADER)
	{
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							"valid size %llu of manifest %s is smaller than its header",
							(ull) valid_size, path);
		free(path);
		return rc;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
	{
		rc = nokv_error_errno(err, "could not open manifest %s", path);
		free(path);
		return rc;
	}
	if (fstat(fd, &sb) != 0)
	{
		rc = nokv_error_errno(err, "could not stat manifest %s", path);
		goto fail;
	}
	if ((uint64_t) sb.st_size < valid_size)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"manifest %s has %llu bytes, fewer than its %llu valid bytes",
							path, (ull) sb.st_size, (ull) valid_size);
		goto fail;
	}
	if ((uint64_t) sb.st_size > valid_size)
	{
		/* drop the torn tail so the next record follows the last good one */
		if (ftruncate(fd, (off_t) valid_size) != 0)
		{
			rc = nokv_error_errno(err, "could not truncate manifest %s to %llu bytes",
								  path, (ull) valid_size);
			goto fail;
		}
		if ((rc = nokv_fdatasync(fd, path, err)) != NOKV_OK)
			goto fail;
	}
	*w = writer_new(path, fd, number, valid_size);
	return NOKV_OK;

fail:
	close(fd);
	free(path);
	return rc;
}

int
nokv_manifest_append(nokv_manifest_writer *w, const nokv_version_edit *e,
					 nokv_error *err)
{
	int			rc;

	if (w->failed)
		return nokv_error_set(err, NOKV_IO_ERROR,
							  "manifest %s cannot be appended to after an earlier failure",
							  w->path);
	if ((rc = edit_validate(e, err)) != NOKV_OK)
		return rc;

	nokv_buf_reset(&w->payload);
	nokv_edit_encode(e, &w->payload);
	if (w->payload.len > NOKV_LOG_MAX_RECORD)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "version edit of %zu bytes exceeds the record limit of %s",
							  w->payload.len, w->path);
	nokv_buf_reset(&w->record);
	nokv_log_append_record(&w->record, MANIFEST_RECORD_EDIT,
						   w->payload.data, w->payload.len);

	rc = nokv_pwrite_full(w->fd, w->record.data, w->record.len, w->size, w->path, err);
	if (rc != NOKV_OK)
	{
		/*
		 * Part of the record may be in the file.  Cut it off durably and the
		 * writer stays usable (e.g. after ENOSPC); if that fails too, refuse
		 * all later appends so nothing is ever written after a partial
		 * record.
		 */
		if (ftruncate(w->fd, (off_t) w->size) != 0 || fdatasync(w->fd) != 0)
			w->failed = true;
		return rc;
	}
	rc = nokv_fdatasync(w->fd, w->path, err);
	if (rc != NOKV_OK)
	{
		/*
		 * After a failed fdatasync the kernel may have dropped the dirty
		 * pages or kept them; whether the edit is durable is unknown, and a
		 * retry could report success for data that is gone.  Give up on this
		 * file; the engine must start a new manifest (nokv_manifest_create).
		 */
		w->failed = true;
		if (ftruncate(w->fd, (off_t) w->size) != 0)
		{
			/* best effort only: the writer is unusable either way */
		}
		return rc;
	}
	w->size += w->record.len;
	return NOKV_OK;
}

uint64_t
nokv_manifest_writer_size(const nokv_manifest_writer *w)
{
	return w->size;
}

uint64_t
nokv_manifest_writer_number(const nokv_manifest_writer *w)
{
	return w->number;
}

void
nokv_manifest_writer_close(nokv_manifest_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	nokv_buf_free(&w->payload);
	nokv_buf_free(&w->record);
	free(w->path);
	free(w);
}
