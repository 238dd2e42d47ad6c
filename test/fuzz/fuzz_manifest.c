/*-------------------------------------------------------------------------
 *
 * fuzz_manifest.c
 *	  libFuzzer target for version-edit decoding and manifest replay.
 *
 * Every input is used three ways:
 *
 *	(a) as one encoded version edit: if it decodes, encoding and decoding
 *		it again must give the same edit and the same bytes, and if it
 *		applies to an empty state, that state's snapshot edit must rebuild
 *		it exactly;
 *	(b) as a manifest body behind a valid file header, replayed both from
 *		memory (nokv_log_reader_open_mem + decode + apply) and from a temp
 *		file (nokv_manifest_replay_file): both must agree on the outcome and
 *		the state;
 *	(c) as a list of chunks (LE16 length + payload) that the harness frames
 *		into CRC-valid records, so that random edits get past the checksums
 *		and sequences of them reach the apply logic.
 *
 * Any disagreement aborts; ASan/UBSan catch memory errors and leaks.
 *
 * test/fuzz/fuzz_manifest.c
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/logformat.h"
#include "nokv/manifest.h"
#include "nokv/status.h"

#define RECORD_EDIT 1

static char *tmp_dir;
static char *tmp_file;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_manifest: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	if (tmp_file)
		unlink(tmp_file);
	if (tmp_dir)
		rmdir(tmp_dir);
}

static void
ensure_tmp(void)
{
	const char *base;
	char		tmpl[4096];

	if (tmp_file)
		return;
	base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/nokv-fuzz-manifest-XXXXXX", base);
	if (!mkdtemp(tmpl))
		fail("mkdtemp");
	tmp_dir = strdup(tmpl);
	/* not named MANIFEST-N, so replay_file skips the header number check */
	tmp_file = malloc(strlen(tmp_dir) + 16);
	sprintf(tmp_file, "%s/body", tmp_dir);
	atexit(cleanup);
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
		a->next_file_number != b->next_file_number ||
		a->has_last_version != b->has_last_version ||
		a->last_version != b->last_version ||
		a->has_log_number != b->has_log_number ||
		a->log_number != b->log_number ||
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
	return true;
}

static bool
state_equal(const nokv_manifest_state *a, const nokv_manifest_state *b)
{
	if (a->next_file_number != b->next_file_number ||
		a->last_version != b->last_version || a->log_number != b->log_number ||
		memcmp(a->ext_position, b->ext_position, sizeof(a->ext_position)) != 0)
		return false;
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
	{
		if (a->nfiles[l] != b->nfiles[l])
			return false;
		for (int i = 0; i < a->nfiles[l]; i++)
			if (!file_equal(&a->files[l][i], &b->files[l][i]))
				return false;
	}
	return true;
}

/* snapshot -> encode -> decode -> apply to nothing must rebuild st */
static void
check_snapshot_roundtrip(const nokv_manifest_state *st)
{
	nokv_version_edit snap,
				back;
	nokv_manifest_state rebuilt;
	nokv_buf	buf = {0};
	nokv_error	err;

	nokv_manifest_state_to_edit(st, &snap);
	nokv_edit_encode(&snap, &buf);
	if (nokv_edit_decode(buf.data, buf.len, &back, &err) != NOKV_OK)
		fail("snapshot edit does not decode");
	if (!edit_equal(&snap, &back))
		fail("snapshot edit changed in a round trip");
	nokv_manifest_state_init(&rebuilt);
	if (nokv_manifest_state_apply(&rebuilt, &back, &err) != NOKV_OK)
		fail("snapshot edit does not apply to an empty state");
	if (!state_equal(st, &rebuilt))
		fail("snapshot edit does not rebuild the state");
	nokv_manifest_state_free(&rebuilt);
	nokv_edit_free(&back);
	nokv_edit_free(&snap);
	nokv_buf_free(&buf);
}

/* (a) */
static void
fuzz_edit(const char *data, size_t size)
{
	nokv_version_edit e,
				e2;
	nokv_buf	buf = {0},
				buf2 = {0};
	nokv_manifest_state st;
	nokv_error	err;

	if (nokv_edit_decode(data, size, &e, &err) != NOKV_OK)
	{
		if (e.n_added != 0 || e.n_deleted != 0 || e.n_ext != 0)
			fail("failed decode left a non-empty edit");
		nokv_edit_free(&e);
		return;
	}
	nokv_edit_encode(&e, &buf);
	if (nokv_edit_decode(buf.data, buf.len, &e2, &err) != NOKV_OK)
		fail("re-encoded edit does not decode");
	if (!edit_equal(&e, &e2))
		fail("edit changed in a round trip");
	nokv_edit_encode(&e2, &buf2);
	if (buf.len != buf2.len || (buf.len && memcmp(buf.data, buf2.data, buf.len) != 0))
		fail("encoding is not stable");

	nokv_manifest_state_init(&st);
	if (nokv_manifest_state_apply(&st, &e, &err) == NOKV_OK)
		check_snapshot_roundtrip(&st);
	else if (st.nfiles[0] != 0 || st.next_file_number != 0)
		fail("failed apply changed the state");
	nokv_manifest_state_free(&st);
	nokv_edit_free(&e);
	nokv_edit_free(&e2);
	nokv_buf_free(&buf);
	nokv_buf_free(&buf2);
}

/* the same replay rules as nokv_manifest_replay_file, from memory */
static int
replay_mem(const char *image, size_t len, nokv_manifest_state *st, uint64_t *valid_end,
		   bool *torn)
{
	nokv_log_reader *r;
	nokv_error	err;
	int			rc,
				n = 0;

	if ((rc = nokv_log_reader_open_mem(image, len, NOKV_MANIFEST_MAGIC, "fuzz", &r, &err)) != NOKV_OK)
		return rc;
	for (;;)
	{
		int			type;
		const char *payload;
		size_t		plen;
		nokv_version_edit e;

		rc = nokv_log_read(r, &type, &payload, &plen, &err);
		if (rc == 0)
			break;
		if (rc < 0)
		{
			rc = -rc;
			goto out;
		}
		if (type != RECORD_EDIT)
		{
			rc = NOKV_CORRUPTION;
			goto out;
		}
		if ((rc = nokv_edit_decode(payload, plen, &e, &err)) != NOKV_OK)
			goto out;
		rc = nokv_manifest_state_apply(st, &e, &err);
		nokv_edit_free(&e);
		if (rc != NOKV_OK)
			goto out;
		n++;
	}
	rc = n == 0 ? NOKV_CORRUPTION : NOKV_OK;
	*valid_end = nokv_log_valid_end(r);
	*torn = nokv_log_torn(r);
out:
	nokv_log_reader_close(r);
	return rc;
}

/* (b) and (c): replay a header + body both ways and compare */
static void
fuzz_replay(const char *body, size_t size)
{
	char	   *image = malloc(NOKV_LOG_FILE_HEADER + size + 1);
	size_t		len = NOKV_LOG_FILE_HEADER + size;
	nokv_manifest_state a,
				b;
	nokv_error	err;
	uint64_t	valid_end = 0;
	bool		torn = false;
	int			rc_mem,
				rc_file,
				fd;

	nokv_log_file_header(image, NOKV_MANIFEST_MAGIC, 1);
	if (size)
		memcpy(image + NOKV_LOG_FILE_HEADER, body, size);

	nokv_manifest_state_init(&a);
	rc_mem = replay_mem(image, len, &a, &valid_end, &torn);

	ensure_tmp();
	fd = open(tmp_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, image, len) != (ssize_t) len || close(fd) != 0)
		fail("cannot write the temp manifest");
	nokv_manifest_state_init(&b);
	rc_file = nokv_manifest_replay_file(tmp_file, &b, &err);

	if (rc_mem != rc_file)
	{
		fprintf(stderr, "memory replay %d, file replay %d (%s)\n", rc_mem, rc_file,
				rc_file ? err.msg : "");
		fail("replay from memory and from file disagree");
	}
	if (rc_file == NOKV_OK)
	{
		if (!state_equal(&a, &b) || b.manifest_size != valid_end || b.torn_tail != torn)
			fail("replayed states disagree");
		if (b.manifest_size > len)
			fail("valid end beyond the file");
		check_snapshot_roundtrip(&b);
	}
	else if (b.nfiles[0] != 0 || b.next_file_number != 0 || b.manifest_size != 0)
		fail("failed replay left a non-empty state");
	nokv_manifest_state_free(&a);
	nokv_manifest_state_free(&b);
	free(image);
}

/* (c) */
static void
fuzz_framed(const char *data, size_t size)
{
	nokv_buf	body = {0};
	size_t		pos = 0;

	while (pos + 2 <= size)
	{
		size_t		n = (size_t) (unsigned char) data[pos] |
			((size_t) (unsigned char) data[pos + 1] << 8);

		pos += 2;
		if (n > size - pos)
			n = size - pos;
		nokv_log_append_record(&body, RECORD_EDIT, data + pos, n);
		pos += n;
	}
	fuzz_replay(body.data ? body.data : "", body.len);
	nokv_buf_free(&body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *) data;

	fuzz_edit(d, size);
	fuzz_replay(d, size);
	fuzz_framed(d, size);
	return 0;
}
