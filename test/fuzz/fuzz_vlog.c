/*-------------------------------------------------------------------------
 *
 * fuzz_vlog.c
 *	  libFuzzer target for value-log segments and value pointers.
 *
 * Every input is used as
 *
 *	(a) a whole segment image, iterated from memory both strictly (a sealed
 *		segment) and tolerantly (the active one): the tolerant pass must
 *		see exactly the records the strict pass saw before any error, and
 *		end where they end;
 *	(b) the same bytes behind a valid segment header (so mutations reach
 *		the records), iterated from memory and from a file, which must
 *		agree; then every record found is read back through
 *		nokv_vlog_read with and without its key and must return exactly
 *		its value, and pointers taken from the input's tail are read too
 *		(any outcome but a crash or wrong data is fine);
 *	(c) an encoded value pointer: if it decodes, its re-encoding must
 *		decode to the same pointer.
 *
 * Any disagreement aborts; ASan/UBSan catch memory errors and leaks.
 *
 * test/fuzz/fuzz_vlog.c
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/platform.h"
#include "nokv/status.h"
#include "nokv/vlog.h"

#define MAX_RECORDS 64

static char *tmp_dir;
static char *tmp_file;
static char *region;
static nokv_platform plat;
static nokv_ctx ctx;
static nokv_vlog_handle *handle;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_vlog: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	nokv_vlog_detach(handle);
	handle = NULL;
	free(region);
	if (tmp_file)
		unlink(tmp_file);
	if (tmp_dir)
		rmdir(tmp_dir);
	free(tmp_file);
	free(tmp_dir);
}

static void
setup(void)
{
	const char *base;
	char		tmpl[4096];
	nokv_shared_options so;
	size_t		plat_size = nokv_pthread_platform_size();
	size_t		vlog_off = NOKV_ALIGN(64 + plat_size, 64);

	if (handle)
		return;
	base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/nokv-fuzz-vlog-XXXXXX", base);
	if (!mkdtemp(tmpl))
		fail("mkdtemp");
	tmp_dir = strdup(tmpl);
	tmp_file = malloc(strlen(tmp_dir) + 32);
	sprintf(tmp_file, NOKV_VLOG_FMT, tmp_dir, 1ull);

	memset(&so, 0, sizeof(so));
	so.max_vlog_segments = 4;
	so.vlog_segment_size = 1 << 20;
	region = calloc(1, vlog_off + nokv_vlog_shared_size(&so));
	nokv_pthread_platform_format(region + 64);
	nokv_pthread_platform_bind(&plat, region + 64);
	ctx.base = region;
	ctx.plat = &plat;
	ctx.heap = 0;
	nokv_vlog_shared_format(&ctx, vlog_off, &so);
	handle = nokv_vlog_attach(&ctx, vlog_off, tmp_dir, NULL, NULL);
	atexit(cleanup);
}

typedef struct seen
{
	int			n;
	uint64_t	offset[MAX_RECORDS];
	uint32_t	klen[MAX_RECORDS];
	uint32_t	vlen[MAX_RECORDS];
	uint32_t	hash[MAX_RECORDS];
	char	   *key[MAX_RECORDS];
} seen;

static int
record_cb(void *arg, const char *ikey, size_t klen, const char *value, size_t vlen,
		  uint64_t offset)
{
	seen	   *s = arg;

	if (klen < NOKV_VLOG_MIN_KEY || klen > NOKV_VLOG_MAX_KEY || vlen > NOKV_MAX_VALUE_SIZE)
		fail("iteration passed an invalid record");
	if (s->n < MAX_RECORDS)
	{
		s->offset[s->n] = offset;
		s->klen[s->n] = (uint32_t) klen;
		s->vlen[s->n] = (uint32_t) vlen;
		s->hash[s->n] = nokv_hash32(value, vlen, 7);
		s->key[s->n] = malloc(klen);
		memcpy(s->key[s->n], ikey, klen);
	}
	s->n++;
	return NOKV_OK;
}

static void
seen_free(seen *s)
{
	for (int i = 0; i < s->n && i < MAX_RECORDS; i++)
		free(s->key[i]);
	memset(s, 0, sizeof(*s));
}

static bool
seen_same(const seen *a, const seen *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n && i < MAX_RECORDS; i++)
		if (a->offset[i] != b->offset[i] || a->klen[i] != b->klen[i] ||
			a->vlen[i] != b->vlen[i] || a->hash[i] != b->hash[i] ||
			memcmp(a->key[i], b->key[i], a->klen[i]) != 0)
			return false;
	return true;
}

/* strict and tolerant iteration of one image must agree */
static int
iterate_both(const char *img, size_t len, seen *strict, uint64_t *end)
{
	seen		tolerant = {0};
	uint64_t	end_strict = 0,
				end_tol = 0;
	nokv_error	err;
	int			rc_strict,
				rc_tol;

	rc_strict = nokv_vlog_iter_mem(img, len, "fuzz", 1, false, record_cb, strict,
								   &end_strict, &err);
	rc_tol = nokv_vlog_iter_mem(img, len, "fuzz", 1, true, record_cb, &tolerant,
								&end_tol, &err);
	if (rc_strict != NOKV_OK && rc_strict != NOKV_CORRUPTION)
		fail("strict iteration returned neither ok nor corruption");
	if (!seen_same(strict, &tolerant))
		fail("strict and tolerant iteration saw different records");
	if (rc_tol == NOKV_OK && rc_strict == NOKV_OK && end_tol != end_strict)
		fail("strict and tolerant iteration end at different offsets");
	if (rc_strict == NOKV_OK && end_strict != len)
		fail("a clean strict iteration did not reach the end");
	if (end_tol > len)
		fail("valid end beyond the image");
	seen_free(&tolerant);
	*end = end_strict;
	return rc_strict;
}

static void
fuzz_segment(const char *data, size_t size)
{
	char	   *img = malloc(NOKV_VLOG_HEADER_SIZE + size + 1);
	size_t		len = NOKV_VLOG_HEADER_SIZE + size;
	seen		raw = {0},
				mem = {0},
				file = {0};
	uint64_t	end_raw,
				end_mem,
				end_file = 0;
	nokv_error	err;
	nokv_buf	out = {0};
	int			rc_mem,
				rc_file,
				fd;

	/* (a) the raw bytes as a segment */
	(void) iterate_both(data, size, &raw, &end_raw);
	seen_free(&raw);

	/* (b) behind a valid header, from memory and from a file */
	memcpy(img, NOKV_VLOG_MAGIC, 8);
	nokv_put_le32(img + 8, NOKV_VLOG_FORMAT_VERSION);
	nokv_put_le32(img + 12, 1);
	if (size)
		memcpy(img + NOKV_VLOG_HEADER_SIZE, data, size);
	rc_mem = iterate_both(img, len, &mem, &end_mem);

	setup();
	fd = open(tmp_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, img, len) != (ssize_t) len || close(fd) != 0)
		fail("cannot write the temp segment");
	rc_file = nokv_vlog_segment_iter(tmp_dir, 1, false, record_cb, &file, &end_file, &err);
	if (rc_file != rc_mem || !seen_same(&mem, &file) || (rc_file == NOKV_OK && end_file != end_mem))
		fail("iteration from memory and from a file disagree");

	/* every record found reads back exactly */
	for (int i = 0; i < mem.n && i < MAX_RECORDS; i++)
	{
		nokv_vptr	p = {1, mem.offset[i], mem.vlen[i]};

		if (nokv_vlog_read(handle, &p, mem.key[i], mem.klen[i], &out, &err) != NOKV_OK ||
			out.len != mem.vlen[i] || nokv_hash32(out.data, out.len, 7) != mem.hash[i])
			fail("a record found by iteration does not read back with its key");
		if (nokv_vlog_read(handle, &p, NULL, 0, &out, &err) != NOKV_OK ||
			out.len != mem.vlen[i] || nokv_hash32(out.data, out.len, 7) != mem.hash[i])
			fail("a record found by iteration does not read back without a key");
		if (mem.klen[i] > NOKV_VLOG_MIN_KEY &&
			nokv_vlog_read(handle, &p, mem.key[i], mem.klen[i] - 1, &out, &err) == NOKV_OK)
			fail("a read with a shorter key succeeded");
	}

	/* arbitrary pointers from the input's tail: anything but a crash */
	for (size_t k = 0; k < 4 && k * 8 + 8 <= size; k++)
	{
		const char *t = data + size - (k + 1) * 8;
		nokv_vptr	p;

		p.segment = 1;
		p.offset = nokv_get_le32(t) % (len + 64);
		p.len = nokv_get_le32(t + 4) % (len + 64);
		if (p.offset < NOKV_VLOG_HEADER_SIZE)
			p.offset = NOKV_VLOG_HEADER_SIZE;
		if (nokv_vlog_read(handle, &p, NULL, 0, &out, &err) == NOKV_OK)
		{
			if (out.len != p.len || p.offset + p.len > len)
				fail("a read returned data beyond the file");
		}
		else if (out.len != 0)
			fail("a failed read left data behind");
	}

	seen_free(&mem);
	seen_free(&file);
	nokv_buf_free(&out);
	free(img);
	(void) end_raw;
	(void) rc_mem;
}

/* (c) */
static void
fuzz_vptr(const char *data, size_t size)
{
	nokv_vptr	p;
	char		buf[NOKV_VPTR_MAX_ENCODED];

	if (size > 32)
		size = 32;
	if (nokv_vptr_decode(data, size, &p))
	{
		size_t		n = nokv_vptr_encode(buf, &p);

		if (n != size || memcmp(buf, data, n) != 0)
		{
			/* a non-minimal varint re-encodes shorter; the value must agree */
			nokv_vptr	q;

			if (!nokv_vptr_decode(buf, n, &q) || q.segment != p.segment ||
				q.offset != p.offset || q.len != p.len)
				fail("a decoded pointer does not survive re-encoding");
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *) data;

	fuzz_segment(d, size);
	fuzz_vptr(d, size);
	return 0;
}
