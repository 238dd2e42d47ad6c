/*-------------------------------------------------------------------------
 *
 * test_manifest.c
 *	  Unit tests for version edits, manifest state, the manifest log and CURRENT.
 *
 * Covers the edit encoding field by field (and every truncation of it),
 * apply semantics and its all-or-nothing errors, create/append/recover
 * round trips against an in-memory model, torn tails at every cut point,
 * corruption of records and of CURRENT, missing files, rewrites and the
 * crash window between writing a new manifest and swapping CURRENT.
 * The value-log fields (head, segments, deletions, discard increments) get
 * the same treatment, and the random workload carries them too.
 *
 * test/engine/test_manifest.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/file.h"
#include "nokv/ikey.h"
#include "nokv/logformat.h"
#include "nokv/manifest.h"
#include "nokv/status.h"
#include "tap.h"

typedef unsigned long long ull;

/* ---------- helpers ---------- */

static char *
make_ikey(int cf, const char *ukey, uint64_t version, int kind, size_t *len)
{
	size_t		ulen = strlen(ukey);
	char	   *k = malloc(nokv_ikey_size(ulen));

	nokv_ikey_encode(k, cf, ukey, ulen, version, kind);
	*len = nokv_ikey_size(ulen);
	return k;
}

/* add a table spanning user keys [lo, hi] (versions 9 .. 1) to e */
static void
edit_add(nokv_version_edit *e, int level, uint64_t number, const char *lo, const char *hi)
{
	nokv_file_desc f;

	memset(&f, 0, sizeof(f));
	f.level = level;
	f.number = number;
	f.size = 1000 + number;
	f.entries = 10 * number;
	f.deletions = number % 3;
	f.range_deletions = number % 2;
	f.min_version = 1;
	f.max_version = 9;
	f.smallest = make_ikey(0, lo, 9, NOKV_KIND_PUT, &f.smallest_len);
	f.largest = make_ikey(0, hi, 1, NOKV_KIND_PUT, &f.largest_len);
	nokv_edit_add_file(e, &f);
	free(f.smallest);
	free(f.largest);
}

static bool
file_equal(const nokv_file_desc *a, const nokv_file_desc *b)
{
	return a->level == b->level && a->number == b->number && a->size == b->size &&
		a->entries == b->entries && a->deletions == b->deletions &&
		a->range_deletions == b->range_deletions &&
		a->min_version == b->min_version && a->max_version == b->max_version &&
		a->smallest_len == b->smallest_len && a->largest_len == b->largest_len &&
		memcmp(a->smallest, b->smallest, a->smallest_len) == 0 &&
		memcmp(a->largest, b->largest, a->largest_len) == 0;
}

static bool
edit_equal(const nokv_version_edit *a, const nokv_version_edit *b)
{
	if (a->has_next_file_number != b->has_next_file_number ||
		(a->has_next_file_number && a->next_file_number != b->next_file_number) ||
		a->has_last_version != b->has_last_version ||
		(a->has_last_version && a->last_version != b->last_version) ||
		a->has_log_number != b->has_log_number ||
		(a->has_log_number && a->log_number != b->log_number) ||
		a->n_ext != b->n_ext || a->n_deleted != b->n_deleted || a->n_added != b->n_added)
		return false;
	for (int i = 0; i < a->n_ext; i++)
		if (a->ext[i].log_id != b->ext[i].log_id || a->ext[i].position != b->ext[i].position)
			return false;
	for (int i = 0; i < a->n_deleted; i++)
		if (a->deleted[i].level != b->deleted[i].level ||
			a->deleted[i].number != b->deleted[i].number)
			return false;
	for (int i = 0; i < a->n_added; i++)
		if (!file_equal(&a->added[i], &b->added[i]))
			return false;
	if (a->has_vlog_head != b->has_vlog_head ||
		(a->has_vlog_head && (a->vlog_head_segment != b->vlog_head_segment ||
							  a->vlog_head_offset != b->vlog_head_offset)) ||
		a->n_vlog_segments != b->n_vlog_segments || a->n_vlog_deleted != b->n_vlog_deleted ||
		a->n_vlog_discard != b->n_vlog_discard)
		return false;
	for (int i = 0; i < a->n_vlog_segments; i++)
		if (a->vlog_segments[i].number != b->vlog_segments[i].number ||
			a->vlog_segments[i].amount != b->vlog_segments[i].amount)
			return false;
	for (int i = 0; i < a->n_vlog_deleted; i++)
		if (a->vlog_deleted[i] != b->vlog_deleted[i])
			return false;
	for (int i = 0; i < a->n_vlog_discard; i++)
		if (a->vlog_discard[i].number != b->vlog_discard[i].number ||
			a->vlog_discard[i].amount != b->vlog_discard[i].amount)
			return false;
	return true;
}

/* everything but where the state was read from */
static bool
state_equal(const nokv_manifest_state *a, const nokv_manifest_state *b)
{
	if (a->next_file_number != b->next_file_number ||
		a->last_version != b->last_version || a->log_number != b->log_number)
	{
		tap_diag("counters differ: %llu/%llu %llu/%llu %llu/%llu",
				 (ull) a->next_file_number, (ull) b->next_file_number,
				 (ull) a->last_version, (ull) b->last_version,
				 (ull) a->log_number, (ull) b->log_number);
		return false;
	}
	for (int i = 0; i < NOKV_MAX_EXTERNAL_LOGS; i++)
		if (a->ext_position[i] != b->ext_position[i])
		{
			tap_diag("ext position %d differs", i);
			return false;
		}
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		if (a->nfiles[l] != b->nfiles[l])
		{
			tap_diag("level %d: %d vs %d files", l, a->nfiles[l], b->nfiles[l]);
			return false;
		}
		for (int i = 0; i < a->nfiles[l]; i++)
			if (!file_equal(&a->files[l][i], &b->files[l][i]))
			{
				tap_diag("level %d file %d differs", l, i);
				return false;
			}
	}
	if (a->vlog_head_segment != b->vlog_head_segment ||
		a->vlog_head_offset != b->vlog_head_offset || a->n_vlog != b->n_vlog)
	{
		tap_diag("value-log head or segment count differs");
		return false;
	}
	for (int i = 0; i < a->n_vlog; i++)
		if (a->vlog[i].number != b->vlog[i].number || a->vlog[i].size != b->vlog[i].size ||
			a->vlog[i].discard != b->vlog[i].discard)
		{
			tap_diag("value-log segment %d differs", i);
			return false;
		}
	return true;
}

static int
total_files(const nokv_manifest_state *st)
{
	int			n = 0;

	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		n += st->nfiles[l];
	return n;
}

static void
state_copy(nokv_manifest_state *dst, const nokv_manifest_state *src)
{
	nokv_version_edit e;
	nokv_error	err;

	nokv_manifest_state_free(dst);
	nokv_manifest_state_to_edit(src, &e);
	if (nokv_manifest_state_apply(dst, &e, &err) != NOKV_OK)
		tap_bail("state copy failed: %s", err.msg);
	nokv_edit_free(&e);
}

static char *
join(const char *dir, const char *name)
{
	char	   *p = malloc(strlen(dir) + strlen(name) + 2);

	sprintf(p, "%s/%s", dir, name);
	return p;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *data;
	long		n;

	if (!f)
		tap_bail("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t) n + 1);
	if (n > 0 && fread(data, 1, (size_t) n, f) != (size_t) n)
		tap_bail("cannot read %s", path);
	fclose(f);
	*len = (size_t) n;
	return data;
}

static void
spit(const char *path, const void *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		tap_bail("cannot write %s", path);
}

static void
spit_str(const char *dir, const char *name, const char *s)
{
	char	   *p = join(dir, name);

	spit(p, s, strlen(s));
	free(p);
}

static bool
exists(const char *dir, const char *name)
{
	char	   *p = join(dir, name);
	struct stat sb;
	bool		r = stat(p, &sb) == 0;

	free(p);
	return r;
}

/* ---------- edit encoding ---------- */

static void
fill_full_edit(nokv_version_edit *e)
{
	nokv_file_desc f;
	char		longkey[400];

	nokv_edit_init(e);
	e->has_next_file_number = true;
	e->next_file_number = UINT64_MAX;
	e->has_last_version = true;
	e->last_version = 1ull << 63;
	e->has_log_number = true;
	e->log_number = 127;
	nokv_edit_set_ext_position(e, 0, 0);
	nokv_edit_set_ext_position(e, 63, UINT64_MAX);
	nokv_edit_set_ext_position(e, 7, 128);
	nokv_edit_delete_file(e, 0, 1);
	nokv_edit_delete_file(e, 6, UINT64_MAX);
	nokv_edit_delete_file(e, 3, 300);
	edit_add(e, 0, 10, "a", "b");
	edit_add(e, 6, 1ull << 40, "", "");

	/* every scalar at an extreme, keys with multi-byte length prefixes */
	memset(&f, 0, sizeof(f));
	memset(longkey, 'x', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	f.level = 5;
	f.number = UINT64_MAX - 1;
	f.size = UINT64_MAX;
	f.entries = 0;
	f.deletions = 1;
	f.range_deletions = UINT32_MAX;
	f.min_version = 0;
	f.max_version = UINT64_MAX;
	f.smallest = make_ikey(2, "", NOKV_VERSION_MAX, NOKV_KIND_SEEK, &f.smallest_len);
	f.largest = make_ikey(1, longkey, 0, NOKV_KIND_RANGE_DELETE, &f.largest_len);
	nokv_edit_add_file(e, &f);
	free(f.smallest);
	free(f.largest);
}

static void
test_encoding(void)
{
	nokv_version_edit e,
				d,
				d2;
	nokv_buf	buf = {0},
				buf2 = {0};
	nokv_error	err;
	int			rc;

	fill_full_edit(&e);
	ok(e.n_ext == 3, "set_ext_position appends distinct logs");
	nokv_edit_set_ext_position(&e, 7, 129);
	ok(e.n_ext == 3 && e.ext[2].position == 129, "set_ext_position replaces a log's earlier position");

	nokv_edit_encode(&e, &buf);
	rc = nokv_edit_decode(buf.data, buf.len, &d, &err);
	is_int(rc, NOKV_OK, "full edit decodes");
	ok(edit_equal(&e, &d), "full edit round-trips every field");
	nokv_edit_encode(&d, &buf2);
	ok(buf2.len == buf.len && memcmp(buf.data, buf2.data, buf.len) == 0,
	   "re-encoding is byte-identical");
	nokv_edit_free(&d);

	/* each field on its own */
	{
		nokv_version_edit single[6];
		bool		all = true;

		for (int i = 0; i < 6; i++)
			nokv_edit_init(&single[i]);
		single[0].has_next_file_number = true;
		single[0].next_file_number = 42;
		single[1].has_last_version = true;
		single[1].last_version = 43;
		single[2].has_log_number = true;
		single[2].log_number = 0;
		nokv_edit_set_ext_position(&single[3], 5, 1ull << 35);
		nokv_edit_delete_file(&single[4], 2, 77);
		edit_add(&single[5], 1, 78, "k", "m");
		for (int i = 0; i < 6; i++)
		{
			nokv_buf_reset(&buf2);
			nokv_edit_encode(&single[i], &buf2);
			if (nokv_edit_decode(buf2.data, buf2.len, &d, &err) != NOKV_OK ||
				!edit_equal(&single[i], &d))
				all = false;
			nokv_edit_free(&d);
			nokv_edit_free(&single[i]);
		}
		ok(all, "each field alone round-trips");
		/* byte layout of one simple field: tag 1, varint 300 */
		nokv_edit_init(&single[0]);
		single[0].has_next_file_number = true;
		single[0].next_file_number = 300;
		nokv_buf_reset(&buf2);
		nokv_edit_encode(&single[0], &buf2);
		ok(buf2.len == 3 && (unsigned char) buf2.data[0] == 1 &&
		   (unsigned char) buf2.data[1] == 0xac && (unsigned char) buf2.data[2] == 0x02,
		   "next_file_number 300 encodes as 01 ac 02");
		nokv_edit_free(&single[0]);
	}

	/* empty edit */
	nokv_edit_init(&d2);
	nokv_buf_reset(&buf2);
	nokv_edit_encode(&d2, &buf2);
	is_int(buf2.len, 0, "empty edit encodes to nothing");
	rc = nokv_edit_decode("", 0, &d, &err);
	ok(rc == NOKV_OK && edit_equal(&d, &d2), "empty input decodes to an empty edit");
	nokv_edit_free(&d);

	/*
	 * Every prefix: either it ends on a field boundary (decodes to exactly
	 * those bytes again) or it is corruption.  Decoding runs on an exact-size
	 * heap copy so ASan sees any overread.
	 */
	{
		int			good = 0,
					bad = 0;
		bool		sane = true;

		for (size_t cut = 0; cut < buf.len; cut++)
		{
			char	   *copy = malloc(cut ? cut : 1);

			memcpy(copy, buf.data, cut);
			rc = nokv_edit_decode(copy, cut, &d, &err);
			if (rc == NOKV_OK)
			{
				nokv_buf_reset(&buf2);
				nokv_edit_encode(&d, &buf2);
				if (buf2.len != cut || memcmp(buf2.data, copy, cut) != 0)
					sane = false;
				good++;
			}
			else if (rc == NOKV_CORRUPTION && d.n_added == 0 && d.n_deleted == 0)
				bad++;
			else
				sane = false;
			nokv_edit_free(&d);
			free(copy);
		}
		ok(sane, "every prefix of an edit decodes to itself or is corruption (%d/%d)", good, bad);
		/* 3 scalars + 3 ext + 3 deletes + 3 adds = 12 fields: 12 boundaries incl. 0 */
		is_int(good, 12, "exactly the field boundaries decode");
	}

	nokv_edit_free(&e);
	nokv_buf_free(&buf);
	nokv_buf_free(&buf2);
}

/* decode raw bytes, expecting corruption with msg_part in the message */
static void
expect_decode_error(const char *bytes, size_t len, const char *msg_part, const char *what)
{
	nokv_version_edit d;
	nokv_error	err;
	char	   *copy = malloc(len ? len : 1);
	int			rc;

	memcpy(copy, bytes, len);
	nokv_error_clear(&err);
	rc = nokv_edit_decode(copy, len, &d, &err);
	ok(rc == NOKV_CORRUPTION && err.code == NOKV_CORRUPTION &&
	   strstr(err.msg, msg_part) != NULL && d.n_added == 0 && d.n_deleted == 0,
	   "decode rejects %s", what);
	if (rc != NOKV_CORRUPTION || !strstr(err.msg, msg_part))
		tap_diag("rc %d, message '%s'", rc, err.msg);
	nokv_edit_free(&d);
	free(copy);
}

static void
test_decode_errors(void)
{
	char		key9[9] = {0};
	nokv_buf	b = {0};

	expect_decode_error("\x0b\x01", 2, "unknown tag 11", "an unknown tag");
	expect_decode_error("\x00", 1, "unknown tag 0", "tag 0");
	expect_decode_error("\x80\x01\x00", 3, "unknown tag 128", "a multi-byte unknown tag");
	expect_decode_error("\x80", 1, "truncated tag", "a truncated tag");
	expect_decode_error("\x01", 1, "truncated field", "a tag without its value");
	expect_decode_error("\x01\x80", 2, "truncated field", "a truncated varint");
	expect_decode_error("\x01\x01\x01\x02", 4, "repeated field", "a repeated next_file_number");
	expect_decode_error("\x02\x01\x02\x02", 4, "repeated field", "a repeated last_version");
	expect_decode_error("\x03\x01\x03\x02", 4, "repeated field", "a repeated log_number");
	expect_decode_error("\x04\x40\x01", 3, "external log id 64", "an external log id out of range");
	expect_decode_error("\x04\x01\x01\x04\x01\x02", 6, "repeated position", "a repeated external log");
	expect_decode_error("\x04\x01", 2, "truncated field", "an ext position without its position");
	expect_decode_error("\x05\x07\x01", 3, "level 7", "a deleted file at level 7");
	expect_decode_error("\x05\x01", 2, "truncated field", "a deleted file without its number");

	/* added file: level 7 */
	nokv_buf_append_varint32(&b, 6);
	nokv_buf_append_varint32(&b, 7);
	for (int i = 0; i < 7; i++)
		nokv_buf_append_varint64(&b, 1);
	nokv_buf_append_lenprefixed(&b, "0123456789", 10);
	nokv_buf_append_lenprefixed(&b, "0123456789", 10);
	expect_decode_error(b.data, b.len, "level out of range", "an added file at level 7");

	/* added file: 9-byte keys */
	nokv_buf_reset(&b);
	nokv_buf_append_varint32(&b, 6);
	nokv_buf_append_varint32(&b, 1);
	for (int i = 0; i < 7; i++)
		nokv_buf_append_varint64(&b, 1);
	nokv_buf_append_lenprefixed(&b, key9, 9);
	nokv_buf_append_lenprefixed(&b, "0123456789", 10);
	expect_decode_error(b.data, b.len, "shorter than an internal key", "a 9-byte smallest key");
	nokv_buf_reset(&b);
	nokv_buf_append_varint32(&b, 6);
	nokv_buf_append_varint32(&b, 1);
	for (int i = 0; i < 7; i++)
		nokv_buf_append_varint64(&b, 1);
	nokv_buf_append_lenprefixed(&b, "0123456789", 10);
	nokv_buf_append_lenprefixed(&b, "", 0);
	expect_decode_error(b.data, b.len, "shorter than an internal key", "an empty largest key");

	/* key length beyond the input */
	nokv_buf_reset(&b);
	nokv_buf_append_varint32(&b, 6);
	nokv_buf_append_varint32(&b, 1);
	for (int i = 0; i < 7; i++)
		nokv_buf_append_varint64(&b, 1);
	nokv_buf_append_lenprefixed(&b, "0123456789", 10);
	nokv_buf_append_varint32(&b, 11);
	nokv_buf_append(&b, "0123456789", 10);
	expect_decode_error(b.data, b.len, "truncated field", "a key length past the end");
	nokv_buf_reset(&b);
	nokv_buf_append_varint32(&b, 6);
	nokv_buf_append_varint32(&b, 1);
	for (int i = 0; i < 7; i++)
		nokv_buf_append_varint64(&b, 1);
	nokv_buf_append_varint32(&b, UINT32_MAX);
	expect_decode_error(b.data, b.len, "truncated field", "a huge key length");

	/* a valid field followed by garbage still fails as a whole */
	nokv_buf_reset(&b);
	nokv_buf_append_varint32(&b, 5);
	nokv_buf_append_varint32(&b, 1);
	nokv_buf_append_varint64(&b, 9);
	nokv_buf_append_varint32(&b, 99);
	expect_decode_error(b.data, b.len, "unknown tag 99", "garbage after a valid field (and frees it)");
	nokv_buf_free(&b);
}

/* ---------- apply ---------- */

static int
apply_one(nokv_manifest_state *st, nokv_version_edit *e, nokv_error *err)
{
	int			rc = nokv_manifest_state_apply(st, e, err);

	nokv_edit_free(e);
	return rc;
}

/* apply must fail with corruption and leave st untouched */
static void
expect_apply_error(nokv_manifest_state *st, nokv_version_edit *e, const char *msg_part,
				   const char *what)
{
	nokv_manifest_state before;
	nokv_error	err;
	int			rc;

	nokv_manifest_state_init(&before);
	state_copy(&before, st);
	nokv_error_clear(&err);
	rc = apply_one(st, e, &err);
	ok(rc == NOKV_CORRUPTION && strstr(err.msg, msg_part) != NULL && state_equal(st, &before),
	   "apply rejects %s and leaves the state unchanged", what);
	if (rc != NOKV_CORRUPTION || !strstr(err.msg, msg_part))
		tap_diag("rc %d, message '%s'", rc, err.msg);
	nokv_manifest_state_free(&before);
}

static void
test_apply(void)
{
	nokv_manifest_state st,
				st2;
	nokv_version_edit e;
	nokv_error	err;
	int			rc;

	nokv_manifest_state_init(&st);
	nokv_manifest_state_init(&st2);

	/* level 0 keeps add order regardless of keys */
	nokv_edit_init(&e);
	edit_add(&e, 0, 3, "x", "z");
	edit_add(&e, 0, 1, "a", "c");
	rc = apply_one(&st, &e, &err);
	nokv_edit_init(&e);
	edit_add(&e, 0, 2, "m", "n");
	rc |= apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.nfiles[0] == 3 && st.files[0][0].number == 3 &&
	   st.files[0][1].number == 1 && st.files[0][2].number == 2,
	   "level 0 keeps add order (newest last)");
	is_int(st.next_file_number, 4, "next_file_number is raised past added tables");

	/* levels >= 1 sorted by smallest */
	nokv_edit_init(&e);
	edit_add(&e, 1, 10, "p", "q");
	edit_add(&e, 1, 11, "b", "c");
	edit_add(&e, 1, 12, "j", "k");
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.nfiles[1] == 3 && st.files[1][0].number == 11 &&
	   st.files[1][1].number == 12 && st.files[1][2].number == 10,
	   "level 1 is sorted by smallest key");
	nokv_edit_init(&e);
	edit_add(&e, 1, 13, "e", "f");
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.files[1][1].number == 13 && st.files[1][1].level == 1,
	   "a later add lands in key order");

	/* errors, each leaving the state as it was */
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 0, 99);
	expect_apply_error(&st, &e, "does not exist", "deleting a missing file");
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 2, 10);
	expect_apply_error(&st, &e, "but it is at level 1", "deleting a file at the wrong level");
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 1, 10);
	nokv_edit_delete_file(&e, 1, 10);
	expect_apply_error(&st, &e, "twice", "deleting a file twice in one edit");
	nokv_edit_init(&e);
	edit_add(&e, 3, 12, "zz", "zz");
	expect_apply_error(&st, &e, "already exists at level 1", "adding a number in use at another level");
	nokv_edit_init(&e);
	edit_add(&e, 0, 1, "a", "b");
	expect_apply_error(&st, &e, "already exists at level 0", "adding a number in use at the same level");
	nokv_edit_init(&e);
	edit_add(&e, 2, 50, "a", "b");
	edit_add(&e, 4, 50, "c", "d");
	expect_apply_error(&st, &e, "twice", "adding one number twice in one edit");
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 1, 10);	/* valid part first */
	edit_add(&e, 1, 51, "a", "b");	/* overlaps 11 [b, c] */
	expect_apply_error(&st, &e, "overlap at level 1", "an overlapping add at level 1");
	nokv_edit_init(&e);
	edit_add(&e, 2, 52, "a", "m");
	edit_add(&e, 2, 53, "c", "d");
	expect_apply_error(&st, &e, "overlap at level 2", "two overlapping adds in one edit");
	nokv_edit_init(&e);
	edit_add(&e, 2, 54, "z", "a");
	expect_apply_error(&st, &e, "smallest key sorts after", "smallest > largest");
	nokv_edit_init(&e);
	edit_add(&e, 7, 55, "a", "b");
	expect_apply_error(&st, &e, "level 7 out of range", "an in-memory edit at level 7");
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, -1, 10);
	expect_apply_error(&st, &e, "out of range", "an in-memory delete at level -1");
	nokv_edit_init(&e);
	edit_add(&e, 2, 56, "a", "b");
	e.added[0].smallest_len = 9;
	expect_apply_error(&st, &e, "shorter than an internal key", "an in-memory 9-byte key");

	/* same user key split across neighbours by version is not an overlap */
	{
		nokv_file_desc f;

		nokv_edit_init(&e);
		memset(&f, 0, sizeof(f));
		f.level = 3;
		f.number = 60;
		f.smallest = make_ikey(0, "k", 20, NOKV_KIND_PUT, &f.smallest_len);
		f.largest = make_ikey(0, "k", 10, NOKV_KIND_PUT, &f.largest_len);
		nokv_edit_add_file(&e, &f);
		free(f.smallest);
		free(f.largest);
		f.number = 61;
		f.smallest = make_ikey(0, "k", 9, NOKV_KIND_PUT, &f.smallest_len);
		f.largest = make_ikey(0, "l", 1, NOKV_KIND_PUT, &f.largest_len);
		nokv_edit_add_file(&e, &f);
		free(f.smallest);
		free(f.largest);
		/* a range-tombstone end bound (e, MAX, SEEK) before a table starting at e */
		f.number = 62;
		f.smallest = make_ikey(0, "m", 5, NOKV_KIND_RANGE_DELETE, &f.smallest_len);
		f.largest = make_ikey(0, "p", NOKV_VERSION_MAX, NOKV_KIND_SEEK, &f.largest_len);
		nokv_edit_add_file(&e, &f);
		free(f.smallest);
		free(f.largest);
		f.number = 63;
		f.smallest = make_ikey(0, "p", 100, NOKV_KIND_PUT, &f.smallest_len);
		f.largest = make_ikey(0, "q", 1, NOKV_KIND_PUT, &f.largest_len);
		nokv_edit_add_file(&e, &f);
		free(f.smallest);
		free(f.largest);
		rc = apply_one(&st, &e, &err);
		ok(rc == NOKV_OK && st.nfiles[3] == 4 && st.files[3][0].number == 60 &&
		   st.files[3][1].number == 61 && st.files[3][3].number == 63,
		   "neighbours that touch only in internal-key order are accepted");
		if (rc)
			tap_diag("%s", err.msg);
		nokv_edit_init(&e);
		memset(&f, 0, sizeof(f));
		f.level = 3;
		f.number = 64;
		f.smallest = make_ikey(0, "q", 1, NOKV_KIND_PUT, &f.smallest_len);
		f.largest = make_ikey(0, "r", 1, NOKV_KIND_PUT, &f.largest_len);
		nokv_edit_add_file(&e, &f);
		free(f.smallest);
		free(f.largest);
		expect_apply_error(&st, &e, "overlap", "a table starting at its neighbour's exact largest key");
	}

	/* a move: delete at L0 and add the same number at L2, one edit */
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 0, 3);
	edit_add(&e, 2, 3, "x", "z");
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.nfiles[0] == 2 && st.nfiles[2] == 1 && st.files[2][0].number == 3 &&
	   st.files[0][0].number == 1 && st.files[0][1].number == 2,
	   "a table moves levels under the same number (deletes before adds)");
	/* a compaction: inputs out, outputs in */
	nokv_edit_init(&e);
	nokv_edit_delete_file(&e, 0, 1);
	nokv_edit_delete_file(&e, 1, 11);
	edit_add(&e, 1, 70, "a", "d");
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.nfiles[0] == 1 && st.files[0][0].number == 2 &&
	   st.nfiles[1] == 4 && st.files[1][0].number == 70 && st.next_file_number == 71,
	   "a compaction edit replaces inputs by outputs");

	/* counters and positions only move forward */
	nokv_edit_init(&e);
	e.has_next_file_number = true;
	e.next_file_number = 1000;
	e.has_last_version = true;
	e.last_version = 500;
	e.has_log_number = true;
	e.log_number = 40;
	nokv_edit_set_ext_position(&e, 3, 7000);
	nokv_edit_set_ext_position(&e, 63, 1);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.next_file_number == 1000 && st.last_version == 500 &&
	   st.log_number == 40 && st.ext_position[3] == 7000 && st.ext_position[63] == 1 &&
	   st.ext_position[0] == 0,
	   "counters and positions are set");
	nokv_edit_init(&e);
	e.has_next_file_number = true;
	e.next_file_number = 999;
	e.has_last_version = true;
	e.last_version = 499;
	e.has_log_number = true;
	e.log_number = 39;
	nokv_edit_set_ext_position(&e, 3, 6999);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.next_file_number == 1000 && st.last_version == 500 &&
	   st.log_number == 40 && st.ext_position[3] == 7000,
	   "backward counters and positions are ignored (max)");
	nokv_edit_init(&e);
	edit_add(&e, 4, 5000, "a", "b");
	rc = apply_one(&st, &e, &err);
	is_int(st.next_file_number, 5001, "an added number above next_file_number raises it");
	nokv_edit_init(&e);
	edit_add(&e, 4, UINT64_MAX, "c", "d");
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.next_file_number == UINT64_MAX, "file number UINT64_MAX saturates");

	/* snapshot edit rebuilds the state exactly */
	nokv_manifest_state_to_edit(&st, &e);
	rc = apply_one(&st2, &e, &err);
	ok(rc == NOKV_OK && state_equal(&st, &st2), "state_to_edit recreates the state from nothing");
	nokv_manifest_state_to_edit(&st, &e);
	expect_apply_error(&st2, &e, "already exists", "a snapshot applied twice");

	nokv_manifest_state_free(&st);
	nokv_manifest_state_free(&st2);
	ok(st.nfiles[0] == 0 && st.files[0] == NULL, "state_free leaves an empty state");
}

/* ---------- value-log fields ---------- */

static void
test_vlog_fields(void)
{
	nokv_version_edit e,
				d;
	nokv_buf	buf = {0},
				buf2 = {0};
	nokv_manifest_state st,
				st2;
	nokv_error	err;
	int			rc;

	/* helpers merge */
	nokv_edit_init(&e);
	nokv_edit_set_vlog_head(&e, 5, 100);
	nokv_edit_set_vlog_head(&e, 4, 999);
	ok(e.has_vlog_head && e.vlog_head_segment == 5 && e.vlog_head_offset == 100,
	   "set_vlog_head keeps the later position (an older segment does not win)");
	nokv_edit_set_vlog_head(&e, 5, 101);
	ok(e.vlog_head_offset == 101, "a later offset in the same segment does");
	nokv_edit_add_vlog_segment(&e, 5, 100);
	nokv_edit_add_vlog_segment(&e, 5, 90);
	nokv_edit_add_vlog_segment(&e, 6, 16);
	ok(e.n_vlog_segments == 2 && e.vlog_segments[0].amount == 100,
	   "add_vlog_segment merges a segment, keeping the larger size");
	nokv_edit_delete_vlog_segment(&e, 3);
	nokv_edit_delete_vlog_segment(&e, 3);
	ok(e.n_vlog_deleted == 1, "delete_vlog_segment records a segment once");
	nokv_edit_add_vlog_discard(&e, 4, 10);
	nokv_edit_add_vlog_discard(&e, 4, 5);
	nokv_edit_add_vlog_discard(&e, 2, UINT64_MAX - 1);
	nokv_edit_add_vlog_discard(&e, 2, 7);
	ok(e.n_vlog_discard == 2 && e.vlog_discard[0].amount == 15 &&
	   e.vlog_discard[1].amount == UINT64_MAX, "add_vlog_discard sums per segment, saturating");

	/* round trip with extremes */
	nokv_edit_set_vlog_head(&e, UINT64_MAX, UINT64_MAX);
	nokv_edit_add_vlog_segment(&e, UINT64_MAX, UINT64_MAX);
	nokv_edit_delete_vlog_segment(&e, 1ull << 40);
	edit_add(&e, 1, 12, "a", "b");
	nokv_edit_encode(&e, &buf);
	rc = nokv_edit_decode(buf.data, buf.len, &d, &err);
	ok(rc == NOKV_OK && edit_equal(&e, &d), "value-log fields round-trip (with a table, extremes included)");
	nokv_edit_encode(&d, &buf2);
	ok(buf2.len == buf.len && memcmp(buf.data, buf2.data, buf.len) == 0, "re-encoding is byte-identical");
	nokv_edit_free(&d);

	/* every prefix of a value-log-only edit */
	{
		int			good = 0;
		bool		sane = true;

		nokv_edit_free(&e);
		nokv_edit_init(&e);
		nokv_edit_set_vlog_head(&e, 300, 70000);
		nokv_edit_add_vlog_segment(&e, 299, 1ull << 33);
		nokv_edit_add_vlog_segment(&e, 300, 70000);
		nokv_edit_delete_vlog_segment(&e, 17);
		nokv_edit_add_vlog_discard(&e, 299, 4096);
		nokv_buf_reset(&buf);
		nokv_edit_encode(&e, &buf);
		for (size_t cut = 0; cut <= buf.len; cut++)
		{
			char	   *copy = malloc(cut ? cut : 1);

			memcpy(copy, buf.data, cut);
			rc = nokv_edit_decode(copy, cut, &d, &err);
			if (rc == NOKV_OK)
			{
				nokv_buf_reset(&buf2);
				nokv_edit_encode(&d, &buf2);
				if (buf2.len != cut || memcmp(buf2.data, copy, cut) != 0)
					sane = false;
				good++;
			}
			else if (rc != NOKV_CORRUPTION || d.n_vlog_segments || d.n_vlog_deleted ||
					 d.n_vlog_discard || d.has_vlog_head)
				sane = false;
			nokv_edit_free(&d);
			free(copy);
		}
		ok(sane && good == 6, "every prefix decodes to itself or is corruption (%d boundaries of 5 fields)", good);
	}

	/* byte layout */
	nokv_edit_free(&e);
	nokv_edit_init(&e);
	nokv_edit_set_vlog_head(&e, 3, 300);
	nokv_edit_add_vlog_segment(&e, 3, 16);
	nokv_edit_delete_vlog_segment(&e, 9);
	nokv_edit_add_vlog_discard(&e, 3, 128);
	nokv_buf_reset(&buf);
	nokv_edit_encode(&e, &buf);
	ok(buf.len == 13 && memcmp(buf.data, "\x07\x03\xac\x02" "\x08\x03\x10" "\x09\x09" "\x0a\x03\x80\x01", 13) == 0,
	   "head (3, 300), segment (3, 16), deleted 9, discard (3, 128) encode as 07 03 ac 02 08 03 10 09 09 0a 03 80 01");
	nokv_edit_free(&e);

	/* decode errors */
	expect_decode_error("\x07\x01\x10\x07\x01\x11", 6, "repeated field", "a repeated value-log head");
	expect_decode_error("\x07\x00\x10", 3, "segment 0", "a head in segment 0");
	expect_decode_error("\x07\x01", 2, "truncated field", "a head without its offset");
	expect_decode_error("\x08\x00\x10", 3, "segment number 0", "a value-log segment 0");
	expect_decode_error("\x08\x01\x10\x08\x01\x20", 6, "repeated value-log segment 1", "a segment recorded twice");
	expect_decode_error("\x08\x01", 2, "truncated field", "a segment without its size");
	expect_decode_error("\x09\x02\x09\x02", 4, "deleted twice", "a segment deleted twice");
	expect_decode_error("\x09\x00", 2, "segment number 0", "deleting segment 0");
	expect_decode_error("\x09", 1, "truncated field", "a deletion without its number");
	expect_decode_error("\x0a\x02\x01\x0a\x02\x01", 6, "repeated discard", "two discard fields for one segment");
	expect_decode_error("\x0a\x02", 2, "truncated field", "a discard without its bytes");
	expect_decode_error("\x08\x02\x10\x09\x02", 5, "both deletes and records", "deleting and recording one segment");
	expect_decode_error("\x05\x01\x09\x08\x01\x10\x0c", 7, "unknown tag 12", "garbage after value-log fields");

	/* apply */
	nokv_manifest_state_init(&st);
	nokv_manifest_state_init(&st2);
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 10, 100);
	nokv_edit_set_vlog_head(&e, 10, 100);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.n_vlog == 1 && st.vlog[0].number == 10 && st.vlog[0].size == 100 &&
	   st.vlog_head_segment == 10 && st.vlog_head_offset == 100 && st.next_file_number == 11,
	   "a flush edit adds the segment and the head; next_file_number passes it");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 10, 50);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.vlog[0].size == 100, "a smaller recorded size is ignored (max)");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 10, 200);
	nokv_edit_set_vlog_head(&e, 10, 200);
	rc = apply_one(&st, &e, &err);
	nokv_edit_init(&e);
	nokv_edit_set_vlog_head(&e, 10, 150);
	rc |= apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.vlog[0].size == 200 && st.vlog_head_offset == 200,
	   "the head only moves forward: a stale head is ignored");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 11, 16);
	nokv_edit_set_vlog_head(&e, 11, 16);
	rc = apply_one(&st, &e, &err);
	nokv_edit_init(&e);
	nokv_edit_set_vlog_head(&e, 11, 500);
	rc |= apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.n_vlog == 2 && st.vlog_head_segment == 11 &&
	   nokv_manifest_state_vlog(&st, 11)->size == 500 && nokv_manifest_state_vlog(&st, 10)->size == 200,
	   "rolling to segment 11; a head past a segment's recorded size raises it");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_discard(&e, 10, 30);
	nokv_edit_add_vlog_discard(&e, 99, 5);
	rc = apply_one(&st, &e, &err);
	nokv_edit_init(&e);
	nokv_edit_add_vlog_discard(&e, 10, 12);
	nokv_edit_add_vlog_discard(&e, 11, UINT64_MAX);
	rc |= apply_one(&st, &e, &err);
	nokv_edit_init(&e);
	nokv_edit_add_vlog_discard(&e, 11, 1);
	rc |= apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && nokv_manifest_state_vlog(&st, 10)->discard == 42 &&
	   nokv_manifest_state_vlog(&st, 11)->discard == UINT64_MAX && st.n_vlog == 2,
	   "discard increments accumulate across edits (saturating); an unknown segment's is ignored");

	nokv_edit_init(&e);
	nokv_edit_delete_vlog_segment(&e, 99);
	expect_apply_error(&st, &e, "does not exist", "deleting an unknown value-log segment");
	nokv_edit_init(&e);
	nokv_edit_delete_vlog_segment(&e, 11);
	expect_apply_error(&st, &e, "not a live segment", "deleting the head segment");
	nokv_edit_init(&e);
	nokv_edit_set_vlog_head(&e, 12, 16);
	expect_apply_error(&st, &e, "not a live segment", "a head naming an unknown segment");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 12, 16);
	nokv_edit_delete_file(&e, 3, 4242);
	expect_apply_error(&st, &e, "does not exist", "a valid value-log part with a bad file deletion (all or nothing)");
	nokv_edit_init(&e);
	nokv_edit_add_vlog_segment(&e, 0, 16);
	rc = apply_one(&st, &e, &err);
	is_int(rc, NOKV_CORRUPTION, "an in-memory edit with segment 0 does not validate");

	state_copy(&st2, &st);
	ok(state_equal(&st, &st2), "a state with value-log segments copies through its snapshot edit");

	nokv_edit_init(&e);
	nokv_edit_delete_vlog_segment(&e, 11);
	nokv_edit_add_vlog_segment(&e, 12, 16);
	nokv_edit_set_vlog_head(&e, 12, 16);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.n_vlog == 2 && st.vlog[0].number == 10 && st.vlog[1].number == 12 &&
	   st.vlog_head_segment == 12, "one edit may delete the old head segment while moving the head past it");
	nokv_edit_init(&e);
	nokv_edit_delete_vlog_segment(&e, 10);
	rc = apply_one(&st, &e, &err);
	ok(rc == NOKV_OK && st.n_vlog == 1 && nokv_manifest_state_vlog(&st, 10) == NULL &&
	   nokv_manifest_state_vlog(&st, 12) != NULL, "a sealed segment is deleted");

	/* snapshot edit layout */
	nokv_manifest_state_to_edit(&st2, &e);
	ok(e.has_vlog_head && e.vlog_head_segment == 11 && e.n_vlog_segments == 2 &&
	   e.vlog_segments[0].number == 10 && e.n_vlog_discard == 2 && e.n_vlog_deleted == 0,
	   "the snapshot edit holds the head, every segment by number and every nonzero discard");
	nokv_edit_free(&e);

	/* the writer refuses an edit replay would reject */
	{
		char	   *dir = tap_tmpdir("manifest");
		nokv_manifest_writer *w;
		nokv_manifest_state rec;

		nokv_manifest_state_init(&rec);
		rc = nokv_manifest_create(dir, 1, &st2, &w, &err);
		nokv_edit_init(&e);
		nokv_edit_add_vlog_segment(&e, 5, 16);
		nokv_edit_delete_vlog_segment(&e, 5);
		rc |= nokv_manifest_append(w, &e, &err) == NOKV_CORRUPTION ? 0 : 1;
		nokv_edit_free(&e);
		nokv_edit_init(&e);
		nokv_edit_add_vlog_discard(&e, 10, 8);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
		rc |= nokv_manifest_recover(dir, &rec, &err);
		ok(rc == NOKV_OK && nokv_manifest_state_vlog(&rec, 10)->discard == 50 &&
		   rec.vlog_head_segment == 11 && rec.n_vlog == 2,
		   "value-log state survives create + append + recover; an invalid edit is never written");
		nokv_manifest_writer_close(w);
		nokv_manifest_state_free(&rec);
		tap_rmdir(dir);
		free(dir);
	}

	nokv_manifest_state_free(&st);
	nokv_manifest_state_free(&st2);
	nokv_buf_free(&buf);
	nokv_buf_free(&buf2);
}

/* ---------- a random workload that keeps a model in step ---------- */

#define SLOTS 40

typedef struct model
{
	nokv_manifest_state st;
	uint64_t	next;			/* file numbers handed out */
	uint64_t	slot[NOKV_MAX_LEVELS][SLOTS];	/* levels >= 1: file per slot */
	uint32_t	rng;
} model;

static uint32_t
rnd(model *m)
{
	m->rng = m->rng * 1103515245u + 12345u;
	return (m->rng >> 8) & 0xffffff;
}

static void
slot_keys(int slot, char *lo, char *hi)
{
	sprintf(lo, "s%03d-a", slot);
	sprintf(hi, "s%03d-z", slot);
}

static void
model_init(model *m, uint32_t seed)
{
	memset(m, 0, sizeof(*m));
	nokv_manifest_state_init(&m->st);
	m->next = 1;
	m->rng = seed;
}

/* build a random valid edit (flush, compaction, move or counters) */
static void
model_edit(model *m, nokv_version_edit *e)
{
	char		lo[16],
				hi[16];
	uint32_t	kind = rnd(m) % 10;

	nokv_edit_init(e);
	if (kind < 4 || m->st.nfiles[0] == 0)
	{
		/* flush: a new L0 table over a random span */
		int			a = (int) (rnd(m) % SLOTS),
					b = (int) (rnd(m) % SLOTS);

		sprintf(lo, "s%03d-a", a < b ? a : b);
		sprintf(hi, "s%03d-z", a < b ? b : a);
		edit_add(e, 0, m->next++, lo, hi);
		e->has_last_version = true;
		e->last_version = m->st.last_version + 1 + rnd(m) % 100;
		e->has_log_number = true;
		e->log_number = m->st.log_number + rnd(m) % 2;
		nokv_edit_set_ext_position(e, rnd(m) % NOKV_MAX_EXTERNAL_LOGS,
								   rnd(m) % 4 ? rnd(m) * 100ull : 0);
		/* the flush wrote values to the value log: grow the head or roll */
		if (rnd(m) % 2)
		{
			uint64_t	seg = m->st.vlog_head_segment;
			uint64_t	size = m->st.vlog_head_offset;

			if (seg == 0 || rnd(m) % 3 == 0)
			{
				if (seg != 0)
					nokv_edit_add_vlog_segment(e, seg, size + rnd(m) % 100);	/* sealed */
				seg = m->next++;
				size = 16;
			}
			size += 1 + rnd(m) % 5000;
			nokv_edit_add_vlog_segment(e, seg, size);
			nokv_edit_set_vlog_head(e, seg, size);
		}
	}
	else if (kind < 7)
	{
		/* compaction into level L at one slot: rewrite that slot's table */
		int			level = 1 + (int) (rnd(m) % (NOKV_MAX_LEVELS - 1));
		int			s = (int) (rnd(m) % SLOTS);

		if (rnd(m) % 2 && m->st.nfiles[0] > 0)
			nokv_edit_delete_file(e, 0, m->st.files[0][0].number);
		if (m->slot[level][s])
			nokv_edit_delete_file(e, level, m->slot[level][s]);
		slot_keys(s, lo, hi);
		m->slot[level][s] = m->next;
		edit_add(e, level, m->next++, lo, hi);
		/* pointers dropped: discard; now and then a sealed segment goes */
		if (m->st.n_vlog > 0 && rnd(m) % 2)
			nokv_edit_add_vlog_discard(e, m->st.vlog[rnd(m) % m->st.n_vlog].number,
									   1 + rnd(m) % 3000);
		if (m->st.n_vlog > 2 && rnd(m) % 4 == 0 &&
			m->st.vlog[0].number != m->st.vlog_head_segment)
			nokv_edit_delete_vlog_segment(e, m->st.vlog[0].number);
	}
	else if (kind < 9)
	{
		/* move a slot's table one level down if the slot below is free */
		int			level = 1 + (int) (rnd(m) % (NOKV_MAX_LEVELS - 2));
		int			s = (int) (rnd(m) % SLOTS);

		if (m->slot[level][s] && !m->slot[level + 1][s])
		{
			uint64_t	n = m->slot[level][s];

			nokv_edit_delete_file(e, level, n);
			slot_keys(s, lo, hi);
			edit_add(e, level + 1, n, lo, hi);
			m->slot[level + 1][s] = n;
			m->slot[level][s] = 0;
		}
		else
		{
			e->has_next_file_number = true;
			e->next_file_number = m->next;
		}
	}
	else
	{
		/* drop the oldest L0 table */
		nokv_edit_delete_file(e, 0, m->st.files[0][0].number);
		e->has_next_file_number = true;
		e->next_file_number = m->next + rnd(m) % 3;
	}
}

static void
test_create_append_recover(void)
{
	char	   *dir = tap_tmpdir("manifest");
	nokv_manifest_writer *w = NULL;
	nokv_manifest_state rec;
	nokv_error	err;
	model		m;
	int			rc;
	bool		all_ok = true,
				all_equal = true;

	model_init(&m, 7);
	nokv_manifest_state_init(&rec);

	is_int(nokv_manifest_recover(dir, &rec, &err), NOKV_NOT_FOUND, "empty directory is NOT_FOUND");
	{
		char	   *nodir = join(dir, "does-not-exist");

		is_int(nokv_manifest_recover(nodir, &rec, &err), NOKV_NOT_FOUND,
			   "a missing directory is NOT_FOUND");
		free(nodir);
	}

	rc = nokv_manifest_create(dir, 1, &m.st, &w, &err);
	ok(rc == NOKV_OK && w != NULL, "create MANIFEST-000001 from an empty state");
	if (rc)
		tap_bail("create: %s", err.msg);
	ok(exists(dir, "MANIFEST-000001") && !exists(dir, "MANIFEST-000001.tmp") &&
	   exists(dir, "CURRENT") && !exists(dir, "CURRENT.tmp"),
	   "create leaves the manifest and CURRENT, no temp files");
	{
		char	   *p = join(dir, "CURRENT");
		size_t		len;
		char	   *c = slurp(p, &len);

		ok(len == 16 && memcmp(c, "MANIFEST-000001\n", 16) == 0, "CURRENT holds \"MANIFEST-000001\\n\"");
		free(c);
		free(p);
	}
	is_int(nokv_manifest_writer_number(w), 1, "writer number");
	rc = nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &m.st) && rec.manifest_number == 1 &&
	   rec.manifest_size == nokv_manifest_writer_size(w) && !rec.torn_tail,
	   "a fresh manifest recovers to the empty state");

	for (int i = 0; i < 400; i++)
	{
		nokv_version_edit e;

		model_edit(&m, &e);
		if (nokv_manifest_state_apply(&m.st, &e, &err) != NOKV_OK)
		{
			tap_diag("model apply %d: %s", i, err.msg);
			all_ok = false;
		}
		else if (nokv_manifest_append(w, &e, &err) != NOKV_OK)
		{
			tap_diag("append %d: %s", i, err.msg);
			all_ok = false;
		}
		nokv_edit_free(&e);
		if (i % 50 == 49)
		{
			rc = nokv_manifest_recover(dir, &rec, &err);
			if (rc != NOKV_OK || !state_equal(&rec, &m.st) ||
				rec.manifest_size != nokv_manifest_writer_size(w))
				all_equal = false;
		}
	}
	ok(all_ok, "400 random edits apply and append");
	ok(all_equal, "recover matches the model after every 50 edits");
	{
		uint64_t	discard = 0;

		for (int i = 0; i < m.st.n_vlog; i++)
			discard += m.st.vlog[i].discard;
		ok(total_files(&m.st) > 20 && m.st.n_vlog > 2 && m.st.vlog_head_segment != 0 && discard > 0,
		   "the workload built a non-trivial state (%d tables, %d value-log segments)",
		   total_files(&m.st), m.st.n_vlog);
	}
	{
		char	   *p = join(dir, "MANIFEST-000001");
		uint64_t	size = 0;
		struct stat sb;

		if (stat(p, &sb) == 0)
			size = (uint64_t) sb.st_size;
		is_int(size, nokv_manifest_writer_size(w), "writer size equals the file size");
		free(p);
	}
	nokv_manifest_writer_close(w);

	/* reopen for append at the recovered size */
	rc = nokv_manifest_recover(dir, &rec, &err);
	rc |= nokv_manifest_writer_open(dir, rec.manifest_number, rec.manifest_size, &w, &err);
	ok(rc == NOKV_OK && nokv_manifest_writer_size(w) == rec.manifest_size,
	   "writer_open resumes at the recovered size");
	for (int i = 0; i < 50; i++)
	{
		nokv_version_edit e;

		model_edit(&m, &e);
		rc = nokv_manifest_state_apply(&m.st, &e, &err);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
	}
	nokv_manifest_writer_close(w);
	rc |= nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &m.st), "edits appended after reopening recover");

	/* replay_file by path */
	{
		char	   *p = join(dir, "MANIFEST-000001");
		nokv_manifest_state st2;

		nokv_manifest_state_init(&st2);
		rc = nokv_manifest_replay_file(p, &st2, &err);
		ok(rc == NOKV_OK && state_equal(&st2, &m.st) && st2.manifest_number == 1,
		   "replay_file replays a manifest by path");
		nokv_manifest_state_free(&st2);
		free(p);
	}

	/* rewrite: create number+1 from the recovered state */
	rc = nokv_manifest_create(dir, 2, &rec, &w, &err);
	ok(rc == NOKV_OK, "rewrite into MANIFEST-000002");
	{
		char	   *p = join(dir, "CURRENT");
		size_t		len;
		char	   *c = slurp(p, &len);

		ok(len == 16 && memcmp(c, "MANIFEST-000002\n", 16) == 0, "CURRENT now names MANIFEST-000002");
		free(c);
		free(p);
	}
	rc = nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &m.st) && rec.manifest_number == 2 &&
	   rec.manifest_size == nokv_manifest_writer_size(w),
	   "the rewritten manifest recovers to the same state");
	{
		char	   *p1 = join(dir, "MANIFEST-000001");
		char	   *p2 = join(dir, "MANIFEST-000002");
		struct stat s1,
					s2;

		bool		have = stat(p1, &s1) == 0 && stat(p2, &s2) == 0;

		ok(have && s2.st_size < s1.st_size,
		   "the snapshot is smaller than the log it replaces (%lld < %lld)",
		   (long long) s2.st_size, (long long) s1.st_size);
		free(p1);
		free(p2);
	}
	for (int i = 0; i < 30; i++)
	{
		nokv_version_edit e;

		model_edit(&m, &e);
		rc |= nokv_manifest_state_apply(&m.st, &e, &err);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
	}
	rc |= nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &m.st), "appends after a rewrite recover");
	nokv_manifest_writer_close(w);

	/* create refuses to overwrite the live manifest */
	rc = nokv_manifest_create(dir, 2, &m.st, &w, &err);
	ok(rc == NOKV_INVALID_ARGUMENT && w == NULL, "create refuses the live manifest's number");
	rc = nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &m.st), "and the live manifest is intact");

	nokv_manifest_state_free(&rec);
	nokv_manifest_state_free(&m.st);
	tap_rmdir(dir);
	free(dir);
}

/*
 * Build a manifest with a snapshot and n further edits; returns the model
 * states after each edit (states[i] = after i edits) and record offsets.
 */
typedef struct built
{
	char	   *dir;
	char	   *path;
	int			n;
	nokv_manifest_state *states;	/* n + 1 */
	uint64_t   *rec_start;		/* n + 1: start of edit i's record (i >= 1) */
	char	   *image;
	size_t		image_len;
} built;

static void
build_manifest(built *b, int n, uint32_t seed)
{
	model		m;
	nokv_manifest_writer *w;
	nokv_error	err;

	b->dir = tap_tmpdir("manifest");
	b->path = join(b->dir, "MANIFEST-000005");
	b->n = n;
	b->states = calloc((size_t) n + 1, sizeof(nokv_manifest_state));
	b->rec_start = calloc((size_t) n + 2, sizeof(uint64_t));
	model_init(&m, seed);
	for (int i = 0; i < 5; i++)
	{
		nokv_version_edit e;

		model_edit(&m, &e);
		if (nokv_manifest_state_apply(&m.st, &e, &err) != NOKV_OK)
			tap_bail("build apply: %s", err.msg);
		nokv_edit_free(&e);
	}
	if (nokv_manifest_create(b->dir, 5, &m.st, &w, &err) != NOKV_OK)
		tap_bail("build create: %s", err.msg);
	state_copy(&b->states[0], &m.st);
	for (int i = 1; i <= n; i++)
	{
		nokv_version_edit e;

		b->rec_start[i] = nokv_manifest_writer_size(w);
		model_edit(&m, &e);
		if (nokv_manifest_state_apply(&m.st, &e, &err) != NOKV_OK ||
			nokv_manifest_append(w, &e, &err) != NOKV_OK)
			tap_bail("build edit: %s", err.msg);
		nokv_edit_free(&e);
		state_copy(&b->states[i], &m.st);
	}
	b->rec_start[n + 1] = nokv_manifest_writer_size(w);
	nokv_manifest_writer_close(w);
	nokv_manifest_state_free(&m.st);
	b->image = slurp(b->path, &b->image_len);
}

static void
built_free(built *b)
{
	for (int i = 0; i <= b->n; i++)
		nokv_manifest_state_free(&b->states[i]);
	free(b->states);
	free(b->rec_start);
	free(b->image);
	tap_rmdir(b->dir);
	free(b->dir);
	free(b->path);
}

static void
test_torn_tail(void)
{
	built		b;
	nokv_manifest_state rec;
	nokv_error	err;
	bool		all = true;
	uint64_t	last;
	int			cuts = 0;

	build_manifest(&b, 6, 11);
	nokv_manifest_state_init(&rec);
	last = b.rec_start[b.n];

	/* every cut inside the last record: recover the first n-1 edits */
	for (uint64_t cut = last; cut < b.image_len; cut++)
	{
		int			rc;

		spit(b.path, b.image, (size_t) cut);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		if (rc != NOKV_OK || !state_equal(&rec, &b.states[b.n - 1]) ||
			rec.manifest_size != last || rec.torn_tail != (cut > last))
		{
			tap_diag("cut %llu: rc %d torn %d size %llu (%s)", (ull) cut, rc, rec.torn_tail,
					 (ull) rec.manifest_size, rc ? err.msg : "");
			all = false;
		}
		cuts++;
	}
	ok(all, "every truncation of the last record recovers the earlier edits (%d cuts)", cuts);

	/* a cut in the middle of an earlier record drops everything after it */
	spit(b.path, b.image, (size_t) (b.rec_start[3] + 5));
	ok(nokv_manifest_recover(b.dir, &rec, &err) == NOKV_OK && state_equal(&rec, &b.states[2]) &&
	   rec.torn_tail && rec.manifest_size == b.rec_start[3],
	   "a cut inside record 3 recovers edits 1-2 as a torn tail");

	/* trailing zeros (preallocation, torn page) count as a torn tail */
	{
		char	   *padded = calloc(1, b.image_len + 4096);

		memcpy(padded, b.image, b.image_len);
		spit(b.path, padded, b.image_len + 4096);
		ok(nokv_manifest_recover(b.dir, &rec, &err) == NOKV_OK &&
		   state_equal(&rec, &b.states[b.n]) && rec.torn_tail &&
		   rec.manifest_size == b.image_len,
		   "trailing zero bytes are a torn tail");
		free(padded);
	}

	/* recover is read-only, even with a torn tail */
	{
		size_t		before_len,
					after_len;
		char	   *before,
				   *after;

		spit(b.path, b.image, (size_t) (last + 3));
		before = slurp(b.path, &before_len);
		nokv_manifest_recover(b.dir, &rec, &err);
		after = slurp(b.path, &after_len);
		ok(before_len == after_len && memcmp(before, after, before_len) == 0,
		   "recover does not modify a manifest with a torn tail");
		free(before);
		free(after);
	}

	/* writer_open drops the torn tail and appends after the last good record */
	{
		nokv_manifest_writer *w;
		nokv_version_edit e;
		nokv_manifest_state want;
		int			rc;

		nokv_manifest_state_init(&want);
		spit(b.path, b.image, (size_t) (last + 7));
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		rc |= nokv_manifest_writer_open(b.dir, 5, rec.manifest_size, &w, &err);
		ok(rc == NOKV_OK, "writer_open after a torn tail");
		{
			size_t		len;
			char	   *data = slurp(b.path, &len);

			is_int(len, last, "writer_open truncated the torn tail");
			free(data);
		}
		state_copy(&want, &rec);
		nokv_edit_init(&e);
		nokv_edit_set_ext_position(&e, 9, 123456789);
		rc = nokv_manifest_state_apply(&want, &e, &err);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
		nokv_manifest_writer_close(w);
		rc |= nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && state_equal(&rec, &want) && !rec.torn_tail,
		   "an edit appended after the truncation recovers cleanly");
		nokv_manifest_state_free(&want);
	}

	/* writer_open argument checks */
	{
		nokv_manifest_writer *w = NULL;

		spit(b.path, b.image, b.image_len);
		ok(nokv_manifest_writer_open(b.dir, 5, b.image_len + 1, &w, &err) == NOKV_CORRUPTION && w == NULL,
		   "writer_open with a valid size past the end is corruption");
		ok(nokv_manifest_writer_open(b.dir, 5, 3, &w, &err) == NOKV_INVALID_ARGUMENT && w == NULL,
		   "writer_open with a valid size inside the header is rejected");
		ok(nokv_manifest_writer_open(b.dir, 6, 16, &w, &err) == NOKV_IO_ERROR && w == NULL,
		   "writer_open of a missing manifest fails");
	}

	nokv_manifest_state_free(&rec);
	built_free(&b);
}

static void
test_corruption(void)
{
	built		b;
	nokv_manifest_state rec;
	nokv_error	err;
	int			rc;

	build_manifest(&b, 5, 23);
	nokv_manifest_state_init(&rec);

	/* flip every byte of a middle record, header included */
	{
		bool		all = true;
		bool		named = true;
		uint64_t	start = b.rec_start[3],
					end = b.rec_start[4];

		for (uint64_t i = start; i < end; i++)
		{
			b.image[i] ^= 0x40;
			spit(b.path, b.image, b.image_len);
			b.image[i] ^= 0x40;
			nokv_error_clear(&err);
			rc = nokv_manifest_recover(b.dir, &rec, &err);
			if (rc != NOKV_CORRUPTION || total_files(&rec) != 0)
			{
				tap_diag("flip at %llu: rc %d", (ull) i, rc);
				all = false;
			}
			else if (!strstr(err.msg, "MANIFEST-000005") || !strstr(err.msg, "offset"))
			{
				tap_diag("flip at %llu: message '%s'", (ull) i, err.msg);
				named = false;
			}
		}
		ok(all, "a flipped byte anywhere in a middle record is corruption");
		ok(named, "the corruption message names the manifest and the offset");
	}
	/* and in the snapshot record */
	b.image[NOKV_LOG_FILE_HEADER + NOKV_LOG_RECORD_HEADER + 2] ^= 1;
	spit(b.path, b.image, b.image_len);
	b.image[NOKV_LOG_FILE_HEADER + NOKV_LOG_RECORD_HEADER + 2] ^= 1;
	is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_CORRUPTION,
		   "a flipped byte in the snapshot record is corruption");

	/* well-framed records whose content is wrong */
	{
		nokv_buf	img = {0};
		nokv_buf	payload = {0};
		nokv_version_edit e;

		/* unknown record type */
		nokv_buf_append(&img, b.image, (size_t) b.rec_start[2]);
		nokv_buf_append_varint32(&payload, 2);
		nokv_buf_append_varint64(&payload, 1);
		nokv_log_append_record(&img, 2, payload.data, payload.len);
		nokv_buf_append(&img, b.image + b.rec_start[2], b.image_len - b.rec_start[2]);
		spit(b.path, img.data, img.len);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "unknown record type 2") &&
		   strstr(err.msg, "offset"), "a record of unknown type is corruption");
		if (rc != NOKV_CORRUPTION)
			tap_diag("%s", err.msg);

		/* a CRC-valid record that does not decode, even as the last record */
		nokv_buf_reset(&img);
		nokv_buf_append(&img, b.image, b.image_len);
		nokv_log_append_record(&img, 1, "\x19\x01", 2);
		spit(b.path, img.data, img.len);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "unknown tag 25") && strstr(err.msg, "MANIFEST-000005"),
		   "an undecodable last record is corruption, not a torn tail");
		if (rc != NOKV_CORRUPTION)
			tap_diag("%s", err.msg);

		/* a CRC-valid edit that does not apply */
		nokv_buf_reset(&img);
		nokv_buf_reset(&payload);
		nokv_buf_append(&img, b.image, b.image_len);
		nokv_edit_init(&e);
		nokv_edit_delete_file(&e, 4, 987654);
		nokv_edit_encode(&e, &payload);
		nokv_edit_free(&e);
		nokv_log_append_record(&img, 1, payload.data, payload.len);
		spit(b.path, img.data, img.len);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "987654") &&
		   strstr(err.msg, "offset") && total_files(&rec) == 0,
		   "an edit deleting a missing table is corruption (state left empty)");
		if (rc != NOKV_CORRUPTION)
			tap_diag("%s", err.msg);

		/* header only, no snapshot */
		spit(b.path, b.image, NOKV_LOG_FILE_HEADER);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "no version edit"),
		   "a manifest without any edit is corruption");
		spit(b.path, b.image, 7);
		is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_CORRUPTION,
			   "a manifest shorter than its header is corruption");
		spit(b.path, "", 0);
		is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_CORRUPTION,
			   "an empty manifest is corruption");

		/* wrong magic */
		{
			char	   *bad = malloc(b.image_len);

			memcpy(bad, b.image, b.image_len);
			memcpy(bad, NOKV_WAL_MAGIC, 8);
			spit(b.path, bad, b.image_len);
			is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_CORRUPTION,
				   "a WAL magic in the manifest header is corruption");
			/* right magic, wrong file number */
			memcpy(bad, b.image, b.image_len);
			nokv_put_le32(bad + 12, 6);
			spit(b.path, bad, b.image_len);
			rc = nokv_manifest_recover(b.dir, &rec, &err);
			ok(rc == NOKV_CORRUPTION && strstr(err.msg, "file number 6"),
			   "a header naming another file number is corruption");
			free(bad);
		}
		nokv_buf_free(&img);
		nokv_buf_free(&payload);
	}

	/* restore, sanity */
	spit(b.path, b.image, b.image_len);
	rc = nokv_manifest_recover(b.dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &b.states[b.n]), "restored manifest recovers");

	/* CURRENT: every flipped byte is corruption */
	{
		char	   *cur = join(b.dir, "CURRENT");
		size_t		len;
		char	   *orig = slurp(cur, &len);
		bool		all = true;

		for (size_t i = 0; i < len; i++)
			for (int bit = 0; bit < 8; bit++)
			{
				orig[i] ^= (char) (1 << bit);
				spit(cur, orig, len);
				orig[i] ^= (char) (1 << bit);
				rc = nokv_manifest_recover(b.dir, &rec, &err);
				if (rc != NOKV_CORRUPTION)
				{
					tap_diag("CURRENT flip %zu/%d: rc %d", i, bit, rc);
					all = false;
				}
			}
		ok(all, "every bit flip in CURRENT is corruption (%zu bytes x 8)", len);
		spit(cur, orig, len);
		free(orig);
		free(cur);
	}
	{
		static const char *bad[] = {
			"MANIFEST-000005", "MANIFEST-000005\n\n", "MANIFEST-5\n", "MANIFEST-0000005\n",
			" MANIFEST-000005\n", "MANIFEST-000005\r\n", "manifest-000005\n", "MANIFEST-\n",
			"MANIFEST-00000x\n", "MANIFEST-000005 \n", "", "\n",
			"MANIFEST-99999999999999999999\n", "MANIFEST-000005\nMANIFEST-000005\n",
		};
		bool		all = true;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		{
			spit_str(b.dir, "CURRENT", bad[i]);
			nokv_error_clear(&err);
			rc = nokv_manifest_recover(b.dir, &rec, &err);
			if (rc != NOKV_CORRUPTION || !strstr(err.msg, "CURRENT is malformed"))
			{
				tap_diag("CURRENT '%s': rc %d '%s'", bad[i], rc, err.msg);
				all = false;
			}
		}
		ok(all, "malformed CURRENT contents are reported as \"CURRENT is malformed\"");
	}
	{
		char	   *cur = join(b.dir, "CURRENT");

		unlink(cur);
		mkdir(cur, 0755);
		is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_CORRUPTION,
			   "a directory named CURRENT is corruption");
		rmdir(cur);
		free(cur);
	}

	/* CURRENT naming a missing manifest */
	spit_str(b.dir, "CURRENT", "MANIFEST-000009\n");
	rc = nokv_manifest_recover(b.dir, &rec, &err);
	ok(rc == NOKV_CORRUPTION && strstr(err.msg, "missing manifest") && strstr(err.msg, "MANIFEST-000009"),
	   "CURRENT naming a missing manifest is corruption");

	/* missing CURRENT with a manifest present */
	{
		char	   *cur = join(b.dir, "CURRENT");

		unlink(cur);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "CURRENT is missing but manifest files exist"),
		   "missing CURRENT with a manifest present is corruption");
		free(cur);
	}
	/* only temp files: a database whose creation never finished */
	{
		char	   *m5 = join(b.dir, "MANIFEST-000005");
		char	   *m5t = join(b.dir, "MANIFEST-000005.tmp");

		rename(m5, m5t);
		spit_str(b.dir, "CURRENT.tmp", "MANIFEST-000005\n");
		is_int(nokv_manifest_recover(b.dir, &rec, &err), NOKV_NOT_FOUND,
			   "only MANIFEST-*.tmp and CURRENT.tmp present is NOT_FOUND");
		rename(m5t, m5);
		free(m5);
		free(m5t);
	}
	/* a leftover CURRENT.tmp is ignored */
	spit_str(b.dir, "CURRENT", "MANIFEST-000005\n");
	spit_str(b.dir, "CURRENT.tmp", "garbage");
	rc = nokv_manifest_recover(b.dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &b.states[b.n]), "a leftover CURRENT.tmp is ignored");
	/* a stray other manifest does not matter while CURRENT is good */
	spit_str(b.dir, "MANIFEST-000004", "junk");
	rc = nokv_manifest_recover(b.dir, &rec, &err);
	ok(rc == NOKV_OK && rec.manifest_number == 5, "stray manifests not named by CURRENT are ignored");

	/* a copy under another name fails the header number check */
	{
		char	   *m7 = join(b.dir, "MANIFEST-000007");

		spit(m7, b.image, b.image_len);
		spit_str(b.dir, "CURRENT", "MANIFEST-000007\n");
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "file number 5"),
		   "a manifest renamed to another number is corruption");
		spit_str(b.dir, "CURRENT", "MANIFEST-000005\n");
		free(m7);
	}

	nokv_manifest_state_free(&rec);
	built_free(&b);
}

/* crash windows of the rewrite protocol */
static void
test_rewrite_crash(void)
{
	built		b;
	nokv_manifest_state rec;
	nokv_manifest_writer *w;
	nokv_error	err;
	int			rc;

	build_manifest(&b, 8, 31);
	nokv_manifest_state_init(&rec);

	/* crash before the rename: MANIFEST-000006.tmp exists, CURRENT old */
	{
		char	   *t = join(b.dir, "MANIFEST-000006.tmp");

		spit(t, b.image, b.image_len / 2);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && rec.manifest_number == 5 && state_equal(&rec, &b.states[b.n]),
		   "a leftover new-manifest temp file is ignored");
		free(t);
	}

	/* crash after the rename, before CURRENT moved */
	rc = nokv_manifest_create(b.dir, 6, &b.states[b.n], &w, &err);
	ok(rc == NOKV_OK, "rewrite into MANIFEST-000006");
	nokv_manifest_writer_close(w);
	ok(!exists(b.dir, "MANIFEST-000006.tmp"), "create replaced the leftover temp file");
	spit_str(b.dir, "CURRENT", "MANIFEST-000005\n");
	rc = nokv_manifest_recover(b.dir, &rec, &err);
	ok(rc == NOKV_OK && rec.manifest_number == 5 && state_equal(&rec, &b.states[b.n]) &&
	   rec.manifest_size == b.image_len,
	   "new manifest present but CURRENT old: recover uses the old manifest");

	/* the engine continues on the old manifest, then rewrites again over the stale file */
	{
		nokv_version_edit e;
		nokv_manifest_state want;

		nokv_manifest_state_init(&want);
		state_copy(&want, &rec);
		rc = nokv_manifest_writer_open(b.dir, 5, rec.manifest_size, &w, &err);
		nokv_edit_init(&e);
		e.has_last_version = true;
		e.last_version = want.last_version + 1000;
		rc |= nokv_manifest_state_apply(&want, &e, &err);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
		nokv_manifest_writer_close(w);
		rc |= nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && rec.manifest_number == 5 && state_equal(&rec, &want),
		   "appending to the old manifest after the crash is consistent");
		rc = nokv_manifest_create(b.dir, 6, &rec, &w, &err);
		nokv_manifest_writer_close(w);
		rc |= nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && rec.manifest_number == 6 && state_equal(&rec, &want),
		   "a stale MANIFEST-000006 not named by CURRENT is replaced by the next rewrite");
		nokv_manifest_state_free(&want);
	}

	/*
	 * A create that fails (here: CURRENT.tmp cannot be written, or the temp
	 * manifest cannot be created) leaves CURRENT on the old manifest, removes
	 * the unreferenced new one, and the old writer carries on.
	 */
	{
		nokv_version_edit e;
		nokv_manifest_state want;
		nokv_manifest_writer *w2 = NULL;
		char	   *ct = join(b.dir, "CURRENT.tmp");
		char	   *mt = join(b.dir, "MANIFEST-000008.tmp");
		char	   *mtx = join(mt, "x");

		nokv_manifest_state_init(&want);
		rc = nokv_manifest_recover(b.dir, &rec, &err);
		state_copy(&want, &rec);
		rc |= nokv_manifest_writer_open(b.dir, 6, rec.manifest_size, &w, &err);
		mkdir(ct, 0755);
		rc |= nokv_manifest_create(b.dir, 7, &rec, &w2, &err) == NOKV_OK;
		ok(rc == NOKV_OK && w2 == NULL, "create fails when CURRENT cannot be written");
		ok(!exists(b.dir, "MANIFEST-000007") && !exists(b.dir, "MANIFEST-000007.tmp"),
		   "the failed create removed its new manifest");
		rmdir(ct);
		mkdir(mt, 0755);
		spit(mtx, "x", 1);
		rc = nokv_manifest_create(b.dir, 8, &rec, &w2, &err);
		ok(rc != NOKV_OK && w2 == NULL && !exists(b.dir, "MANIFEST-000008"),
		   "create fails cleanly when its temp file cannot be created");
		unlink(mtx);
		rmdir(mt);
		nokv_edit_init(&e);
		nokv_edit_set_ext_position(&e, 1, 77);
		rc = nokv_manifest_state_apply(&want, &e, &err);
		rc |= nokv_manifest_append(w, &e, &err);
		nokv_edit_free(&e);
		nokv_manifest_writer_close(w);
		rc |= nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && rec.manifest_number == 6 && state_equal(&rec, &want),
		   "after failed creates CURRENT still names the old manifest and its writer works");
		rc = nokv_manifest_create(b.dir, 7, &rec, &w2, &err);
		nokv_manifest_writer_close(w2);
		rc |= nokv_manifest_recover(b.dir, &rec, &err);
		ok(rc == NOKV_OK && rec.manifest_number == 7 && state_equal(&rec, &want),
		   "the retried create succeeds");
		nokv_manifest_state_free(&want);
		free(ct);
		free(mt);
		free(mtx);
	}

	nokv_manifest_state_free(&rec);
	built_free(&b);
}

/* a write that fails midway is rolled back and the writer stays usable */
static void
test_append_failure(void)
{
	char	   *dir = tap_tmpdir("manifest");
	nokv_manifest_writer *w;
	nokv_manifest_state st,
				rec;
	nokv_version_edit e;
	nokv_error	err;
	struct rlimit old,
				lim;
	char	   *path;
	int			rc;
	uint64_t	size_before;

	nokv_manifest_state_init(&st);
	nokv_manifest_state_init(&rec);
	path = join(dir, "MANIFEST-000001");
	rc = nokv_manifest_create(dir, 1, &st, &w, &err);
	if (rc)
		tap_bail("create: %s", err.msg);

	/* a big edit, and a file size limit that lets only part of it through */
	nokv_edit_init(&e);
	for (int i = 0; i < 200; i++)
	{
		char		lo[32],
					hi[32];

		sprintf(lo, "key%05d-a", i);
		sprintf(hi, "key%05d-z", i);
		edit_add(&e, 1, 100 + (uint64_t) i, lo, hi);
	}
	size_before = nokv_manifest_writer_size(w);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = size_before + 100;
	if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
		tap_bail("setrlimit: %s", strerror(errno));
	rc = nokv_manifest_append(w, &e, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	ok(rc != NOKV_OK, "an append hitting the file size limit fails (%s)", err.msg);
	{
		size_t		len;
		char	   *data = slurp(path, &len);

		is_int(len, size_before, "the partial record was truncated away");
		free(data);
	}
	is_int(nokv_manifest_writer_size(w), size_before, "writer size is unchanged");

	/* the writer is still usable and the edit can be retried */
	rc = nokv_manifest_append(w, &e, &err);
	ok(rc == NOKV_OK, "the same edit appends once space is back");
	rc |= nokv_manifest_state_apply(&st, &e, &err);
	nokv_edit_free(&e);
	rc |= nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &st) && !rec.torn_tail && st.nfiles[1] == 200,
	   "recover sees exactly the retried edit");

	/* an invalid edit is refused before anything is written */
	nokv_edit_init(&e);
	edit_add(&e, 9, 1, "a", "b");
	size_before = nokv_manifest_writer_size(w);
	rc = nokv_manifest_append(w, &e, &err);
	ok(rc == NOKV_CORRUPTION && nokv_manifest_writer_size(w) == size_before,
	   "an edit that could not be decoded again is never written");
	nokv_edit_free(&e);

	nokv_manifest_writer_close(w);
	nokv_manifest_state_free(&st);
	nokv_manifest_state_free(&rec);
	free(path);
	tap_rmdir(dir);
	free(dir);
}

/* a large state: a snapshot of many tables is quick to write and replay */
static void
test_large_state(void)
{
	char	   *dir = tap_tmpdir("manifest");
	nokv_manifest_state st,
				rec;
	nokv_manifest_writer *w;
	nokv_version_edit e;
	nokv_error	err;
	int			rc = 0;

	nokv_manifest_state_init(&st);
	nokv_manifest_state_init(&rec);
	for (int batch = 0; batch < 20; batch++)
	{
		nokv_edit_init(&e);
		for (int i = 0; i < 500; i++)
		{
			char		lo[32],
						hi[32];
			int			k = (i * 20 + batch);	/* interleave batches in key order */
			int			level = 1 + (batch % 6);

			sprintf(lo, "k%07d-%d-a", k, level);
			sprintf(hi, "k%07d-%d-z", k, level);
			edit_add(&e, level, (uint64_t) (batch * 1000 + i + 1), lo, hi);
		}
		edit_add(&e, 0, (uint64_t) (batch * 1000 + 999), "a", "z");
		rc |= nokv_manifest_state_apply(&st, &e, &err);
		nokv_edit_free(&e);
	}
	ok(rc == NOKV_OK && total_files(&st) == 10020, "built a state of 10020 tables");
	rc = nokv_manifest_create(dir, 3, &st, &w, &err);
	nokv_manifest_writer_close(w);
	rc |= nokv_manifest_recover(dir, &rec, &err);
	ok(rc == NOKV_OK && state_equal(&rec, &st), "its snapshot manifest recovers");
	{
		bool		sorted = true;

		for (int l = 1; l < NOKV_MAX_LEVELS; l++)
			for (int i = 1; i < rec.nfiles[l]; i++)
				if (nokv_ikey_compare(rec.files[l][i - 1].largest, rec.files[l][i - 1].largest_len,
									  rec.files[l][i].smallest, rec.files[l][i].smallest_len) >= 0)
					sorted = false;
		ok(sorted, "levels >= 1 are sorted and disjoint after replay");
	}
	nokv_manifest_state_free(&st);
	nokv_manifest_state_free(&rec);
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	test_encoding();
	test_decode_errors();
	test_apply();
	test_vlog_fields();
	test_create_append_recover();
	test_torn_tail();
	test_corruption();
	test_rewrite_crash();
	test_append_failure();
	test_large_state();
	return tap_done();
}
