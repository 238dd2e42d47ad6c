/*-------------------------------------------------------------------------
 *
 * test_logformat.c
 *	  Unit tests for CRC-framed log files: framing, torn tails, corruption.
 *
 * Every damage case is checked both on an in-memory image and through the
 * file reader, whose windowed preads take a different code path; files
 * bigger than the 1 MiB read chunk exercise window sliding, streamed CRCs of
 * big records and the forward scan across chunk boundaries.
 *
 * test/engine/test_logformat.c
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/logformat.h"
#include "tap.h"

static char *tmpdir;

/* deterministic pseudo-random bytes */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
fill_payload(char *dst, size_t len, uint64_t seed)
{
	uint64_t	s = seed * 0x2545f4914f6cdd1dull + 1;

	for (size_t i = 0; i < len; i++)
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		dst[i] = (char) s;
	}
}

typedef struct image
{
	nokv_buf	buf;
	int			nrec;
	size_t		starts[4096];	/* offset of each record */
	size_t		lens[4096];
	int			types[4096];
	uint64_t	seeds[4096];
} image;

static image *
image_new(void)
{
	image	   *im = calloc(1, sizeof(image));

	nokv_buf_reserve(&im->buf, NOKV_LOG_FILE_HEADER);
	nokv_log_file_header(im->buf.data, NOKV_WAL_MAGIC, 42);
	im->buf.len = NOKV_LOG_FILE_HEADER;
	return im;
}

static void
image_add(image *im, int type, size_t len)
{
	char	   *p = malloc(len ? len : 1);
	uint64_t	seed = rng();

	fill_payload(p, len, seed);
	im->starts[im->nrec] = im->buf.len;
	im->lens[im->nrec] = len;
	im->types[im->nrec] = type;
	im->seeds[im->nrec] = seed;
	im->nrec++;
	nokv_log_append_record(&im->buf, type, p, len);
	free(p);
}

static void
image_free(image *im)
{
	nokv_buf_free(&im->buf);
	free(im);
}

static char *
write_file(const char *name, const char *data, size_t len)
{
	char	   *path = malloc(4200);
	FILE	   *f;

	snprintf(path, 4200, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	if (!f)
		tap_bail("cannot create %s", path);
	if (len > 0 && fwrite(data, 1, len, f) != len)
		tap_bail("cannot write %s", path);
	fclose(f);
	return path;
}

/* outcome of reading a whole log */
typedef struct outcome
{
	int			open_rc;
	int			nread;			/* records returned */
	int			end_rc;			/* 0 = clean end, else -code */
	bool		torn;
	uint64_t	valid_end;
	bool		contents_ok;	/* records matched the image (in order) */
	nokv_error	err;
} outcome;

static outcome
read_all(const char *data, size_t len, const char *path, const image *im)
{
	outcome		o;
	nokv_log_reader *r;

	memset(&o, 0, sizeof(o));
	o.contents_ok = true;
	if (path)
		o.open_rc = nokv_log_reader_open(path, NOKV_WAL_MAGIC, &r, &o.err);
	else
		o.open_rc = nokv_log_reader_open_mem(data, len, NOKV_WAL_MAGIC, "img", &r, &o.err);
	if (o.open_rc != NOKV_OK)
		return o;
	for (;;)
	{
		int			type;
		const char *payload;
		size_t		plen;
		int			rc = nokv_log_read(r, &type, &payload, &plen, &o.err);

		if (rc <= 0)
		{
			o.end_rc = rc;
			break;
		}
		if (im && o.nread < im->nrec)
		{
			int			i = o.nread;
			char	   *want = malloc(plen ? plen : 1);

			fill_payload(want, im->lens[i], im->seeds[i]);
			if (type != im->types[i] || plen != im->lens[i] ||
				(plen > 0 && memcmp(payload, want, plen) != 0))
				o.contents_ok = false;
			free(want);
		}
		else
			o.contents_ok = false;
		o.nread++;
	}
	/* reading again after the end keeps reporting the same result */
	{
		int			type;
		const char *payload;
		size_t		plen;
		nokv_error	e2;

		if (nokv_log_read(r, &type, &payload, &plen, &e2) != o.end_rc)
			o.contents_ok = false;
	}
	o.torn = nokv_log_torn(r);
	o.valid_end = nokv_log_valid_end(r);
	nokv_log_reader_close(r);
	return o;
}

/* run on both the image and a file copy; they must agree */
static outcome
read_both(const char *data, size_t len, const image *im, const char *what)
{
	outcome		m = read_all(data, len, NULL, im);
	char	   *path = write_file("both.log", data, len);
	outcome		f = read_all(NULL, 0, path, im);

	if (m.open_rc != f.open_rc || m.nread != f.nread || m.end_rc != f.end_rc ||
		m.torn != f.torn || m.valid_end != f.valid_end ||
		m.contents_ok != f.contents_ok)
	{
		tap_diag("%s: memory and file readers disagree (nread %d/%d, end %d/%d, torn %d/%d, end %llu/%llu)",
				 what, m.nread, f.nread, m.end_rc, f.end_rc, m.torn, f.torn,
				 (unsigned long long) m.valid_end, (unsigned long long) f.valid_end);
		m.contents_ok = false;
	}
	free(path);
	return m;
}

static void
test_framing_layout(void)
{
	nokv_buf	b = {0};
	char		hdr[16];
	unsigned char tp = 7;
	uint32_t	crc;

	nokv_log_file_header(hdr, NOKV_MANIFEST_MAGIC, 0x1122334455ull);
	ok(memcmp(hdr, "NOKVMAN\0", 8) == 0, "file header starts with the magic");
	is_int(nokv_get_le32(hdr + 8), NOKV_LOG_FORMAT_VERSION, "file header version");
	is_int(nokv_get_le32(hdr + 12), 0x22334455u, "file header keeps the low 32 bits of the number");

	nokv_log_append_record(&b, 7, "hello", 5);
	is_int(b.len, 14, "record = 9-byte header + payload");
	crc = nokv_crc32c_extend(nokv_crc32c(&tp, 1), "hello", 5);
	is_int(nokv_get_le32(b.data), nokv_crc_mask(crc), "crc covers type byte + payload, masked");
	is_int(nokv_get_le32(b.data + 4), 5, "length is little-endian");
	is_int((unsigned char) b.data[8], 7, "type byte");
	ok(memcmp(b.data + 9, "hello", 5) == 0, "payload follows");
	nokv_buf_free(&b);

	/* an empty record never has a zero header (that means "torn") */
	{
		int			zero_crc = 0;

		for (int t = 0; t < 256; t++)
		{
			unsigned char tb = (unsigned char) t;

			if (nokv_crc_mask(nokv_crc32c(&tb, 1)) == 0)
				zero_crc++;
		}
		is_int(zero_crc, 0, "no empty record of any type frames to a zero header");
	}
}

static void
test_round_trip(void)
{
	image	   *im = image_new();
	static const size_t big[] = {1 << 20, (1 << 20) - 9, (1 << 20) - 8, (1 << 20) + 1,
	3 * (1 << 20) + 77};
	outcome		o;
	char	   *path;

	for (size_t len = 0; len <= 300; len++)
		image_add(im, (int) (len % 256), len);
	for (int shift = 9; shift <= 20; shift++)
	{
		image_add(im, 1, ((size_t) 1 << shift) - 1);
		image_add(im, 1, (size_t) 1 << shift);
		image_add(im, 1, ((size_t) 1 << shift) + 1);
	}
	for (int i = 0; i < 400; i++)
		image_add(im, 1 + (int) (rng() % 3), (size_t) (rng() % 70000));
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
	{
		image_add(im, 2, big[i]);
		image_add(im, 1, 10);
	}

	o = read_all(im->buf.data, im->buf.len, NULL, im);
	is_int(o.open_rc, NOKV_OK, "round trip (memory): open");
	is_int(o.nread, im->nrec, "round trip (memory): every record back");
	ok(o.contents_ok, "round trip (memory): types and payloads intact, in order");
	is_int(o.end_rc, 0, "round trip (memory): clean end");
	ok(!o.torn, "round trip (memory): not torn");
	is_int(o.valid_end, im->buf.len, "round trip (memory): valid end = file size");

	path = write_file("roundtrip.log", im->buf.data, im->buf.len);
	o = read_all(NULL, 0, path, im);
	is_int(o.open_rc, NOKV_OK, "round trip (file, %zu bytes): open", im->buf.len);
	is_int(o.nread, im->nrec, "round trip (file): every record back");
	ok(o.contents_ok, "round trip (file): types and payloads intact, in order");
	ok(o.end_rc == 0 && !o.torn, "round trip (file): clean end");
	is_int(o.valid_end, im->buf.len, "round trip (file): valid end = file size");

	/* a torn big record (past the read chunk) is a torn tail too */
	free(path);
	path = write_file("bigtorn.log", im->buf.data, im->starts[im->nrec - 2] + 5000);
	o = read_all(NULL, 0, path, im);
	ok(o.end_rc == 0 && o.torn && o.nread == im->nrec - 2 && o.contents_ok,
	   "file cut inside a 3 MiB record: torn tail after the records before it");
	is_int(o.valid_end, im->starts[im->nrec - 2], "  valid end is that record's start");

	/* damage inside a big record, followed by a valid one: corruption */
	im->buf.data[im->starts[im->nrec - 2] + 2 * 1024 * 1024] ^= 0x40;
	free(path);
	path = write_file("bigcorrupt.log", im->buf.data, im->buf.len);
	o = read_all(NULL, 0, path, im);
	is_int(o.end_rc, -NOKV_CORRUPTION, "flipped byte inside a 3 MiB record: corruption");
	is_int(o.nread, im->nrec - 2, "  records before it are returned");
	free(path);
	image_free(im);
}

static image *
three_records(void)
{
	image	   *im = image_new();

	image_add(im, 1, 40);
	image_add(im, 1, 200);
	image_add(im, 1, 60);
	return im;
}

static void
test_torn_every_truncation(void)
{
	image	   *im = three_records();
	size_t		full = im->buf.len;
	int			bad = 0;

	for (size_t cut = 0; cut <= full; cut++)
	{
		outcome		o = read_both(im->buf.data, cut, im, "truncation");
		int			complete = 0;
		size_t		boundary = cut < NOKV_LOG_FILE_HEADER ? 0 : NOKV_LOG_FILE_HEADER;
		bool		at_boundary = cut == NOKV_LOG_FILE_HEADER;

		for (int i = 0; i < im->nrec; i++)
		{
			size_t		end = im->starts[i] + NOKV_LOG_RECORD_HEADER + im->lens[i];

			if (end <= cut)
			{
				complete++;
				boundary = end;
			}
			if (end == cut)
				at_boundary = true;
		}
		if (o.open_rc != NOKV_OK || o.end_rc != 0 || o.nread != complete ||
			!o.contents_ok || o.torn == at_boundary || o.valid_end != boundary)
		{
			if (bad++ < 5)
				tap_diag("cut %zu: open %d end %d nread %d (want %d) torn %d valid_end %llu (want %zu)",
						 cut, o.open_rc, o.end_rc, o.nread, complete, o.torn,
						 (unsigned long long) o.valid_end, boundary);
		}
	}
	is_int(bad, 0, "every truncation point of a 3-record file (%zu cuts) ends cleanly with exactly the complete records",
		   full + 1);
	image_free(im);
}

static void
test_flipped_bytes(void)
{
	image	   *im = three_records();
	size_t		mid = im->starts[1];
	size_t		last = im->starts[2];
	int			bad_mid = 0;
	int			bad_last = 0;
	int			bad_first = 0;
	char		want[64];

	snprintf(want, sizeof(want), "offset %zu of ", mid);
	for (size_t i = mid; i < last; i++)
	{
		for (int pass = 0; pass < 2; pass++)
		{
			char		saved = im->buf.data[i];
			outcome		o;

			im->buf.data[i] ^= pass ? 0xff : 0x01;
			o = read_both(im->buf.data, im->buf.len, im, "middle flip");
			im->buf.data[i] = saved;
			if (o.end_rc != -NOKV_CORRUPTION || o.nread != 1 || !o.contents_ok ||
				o.err.code != NOKV_CORRUPTION || strstr(o.err.msg, want) == NULL ||
				strstr(o.err.msg, "img") == NULL || o.valid_end != mid)
			{
				if (bad_mid++ < 5)
					tap_diag("middle flip at %zu: end %d nread %d msg '%s'", i, o.end_rc,
							 o.nread, o.err.msg);
			}
		}
	}
	is_int(bad_mid, 0, "any flipped byte in the middle record: NOKV_CORRUPTION naming its offset");
	{
		outcome		o;

		im->buf.data[mid + 20] ^= 0x10;
		o = read_all(im->buf.data, im->buf.len, NULL, im);
		im->buf.data[mid + 20] ^= 0x10;
		tap_diag("example message: %s", o.err.msg);
		ok(strstr(o.err.msg, "checksum mismatch") != NULL, "message says checksum mismatch");
	}

	for (size_t i = last; i < im->buf.len; i++)
	{
		char		saved = im->buf.data[i];
		outcome		o;

		im->buf.data[i] ^= 0x01;
		o = read_both(im->buf.data, im->buf.len, im, "last flip");
		im->buf.data[i] = saved;
		if (o.end_rc != 0 || !o.torn || o.nread != 2 || !o.contents_ok || o.valid_end != last)
		{
			if (bad_last++ < 5)
				tap_diag("last flip at %zu: end %d nread %d torn %d", i, o.end_rc, o.nread, o.torn);
		}
	}
	is_int(bad_last, 0, "any flipped byte in the last record: torn tail, two records");

	for (size_t i = im->starts[0]; i < mid; i++)
	{
		char		saved = im->buf.data[i];
		outcome		o;

		im->buf.data[i] ^= 0x80;
		o = read_all(im->buf.data, im->buf.len, NULL, im);
		im->buf.data[i] = saved;
		if (o.end_rc != -NOKV_CORRUPTION || o.nread != 0 ||
			o.valid_end != NOKV_LOG_FILE_HEADER)
			bad_first++;
	}
	is_int(bad_first, 0, "any flipped byte in the first record: corruption, nothing returned");
	image_free(im);
}

static void
test_zero_tails(void)
{
	image	   *im = three_records();
	size_t		full = im->buf.len;
	size_t		mid = im->starts[1];
	outcome		o;
	nokv_buf	b = {0};

	/* preallocated / torn pages: zeros after the last record */
	nokv_buf_append(&b, im->buf.data, full);
	for (int i = 0; i < 4096; i++)
		nokv_buf_append(&b, "", 1);
	o = read_both(b.data, b.len, im, "zero tail");
	ok(o.end_rc == 0 && o.torn && o.nread == 3 && o.contents_ok && o.valid_end == full,
	   "zero-filled tail after three records: torn tail, three records");

	/* a short zero tail, shorter than a record header */
	o = read_both(b.data, full + 5, im, "short zero tail");
	ok(o.end_rc == 0 && o.torn && o.nread == 3 && o.valid_end == full,
	   "5 zero bytes after the last record: torn tail");

	/* zeros replacing the last record's tail (torn page inside it) */
	memset(b.data + im->starts[2] + 12, 0, full - im->starts[2] - 12);
	o = read_both(b.data, b.len, im, "zeroed last record");
	ok(o.end_rc == 0 && o.torn && o.nread == 2 && o.valid_end == im->starts[2],
	   "last record partly zeroed, zeros after: torn tail");

	/* zeros replacing the middle record: a valid one follows, so corruption */
	nokv_buf_reset(&b);
	nokv_buf_append(&b, im->buf.data, full);
	memset(b.data + mid, 0, im->starts[2] - mid);
	o = read_both(b.data, b.len, im, "zeroed middle record");
	ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 1 && strstr(o.err.msg, "zero") != NULL,
	   "zeroed middle record followed by a valid one: corruption");
	nokv_buf_free(&b);

	/* a long zero run crossing read chunks, then a valid record */
	{
		image	   *big = image_new();
		size_t		zeros = 3 * 1024 * 1024 + 123;
		size_t		hole;
		char	   *path;

		image_add(big, 1, 100);
		hole = big->buf.len;
		nokv_buf_reserve(&big->buf, zeros);
		memset(big->buf.data + big->buf.len, 0, zeros);
		big->buf.len += zeros;
		path = write_file("zerohole.log", big->buf.data, big->buf.len);
		o = read_all(NULL, 0, path, big);
		ok(o.end_rc == 0 && o.torn && o.nread == 1 && o.valid_end == hole,
		   "3 MiB zero tail in a file: torn tail");
		free(path);

		image_add(big, 1, 33);
		path = write_file("zerohole2.log", big->buf.data, big->buf.len);
		o = read_all(NULL, 0, path, big);
		ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 1 && o.valid_end == hole,
		   "3 MiB zero hole followed by a valid record (file reader, across chunks): corruption");
		o = read_all(big->buf.data, big->buf.len, NULL, big);
		ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 1,
		   "same with the memory reader: corruption");
		free(path);
		image_free(big);
	}
	image_free(im);
}

static void
test_headers(void)
{
	image	   *im = three_records();
	outcome		o;
	char		zeros[64] = {0};
	char	   *path;
	nokv_log_reader *r;
	nokv_error	err;

	im->buf.data[3] ^= 0x20;
	o = read_both(im->buf.data, im->buf.len, im, "bad magic");
	ok(o.open_rc == NOKV_CORRUPTION && strstr(o.err.msg, "magic") && strstr(o.err.msg, "offset 0"),
	   "bad magic: NOKV_CORRUPTION (%s)", o.err.msg);
	im->buf.data[3] ^= 0x20;

	{
		nokv_log_reader *rm;

		ok(nokv_log_reader_open_mem(im->buf.data, im->buf.len, NOKV_MANIFEST_MAGIC, "m", &rm, &err) ==
		   NOKV_CORRUPTION && rm == NULL,
		   "a WAL is not accepted as a manifest");
	}

	nokv_put_le32(im->buf.data + 8, 2);
	o = read_both(im->buf.data, im->buf.len, im, "bad version");
	ok(o.open_rc == NOKV_CORRUPTION && strstr(o.err.msg, "version 2"),
	   "unsupported version: NOKV_CORRUPTION (%s)", o.err.msg);
	nokv_put_le32(im->buf.data + 8, NOKV_LOG_FORMAT_VERSION);

	o = read_both(zeros, sizeof(zeros), NULL, "all zero");
	ok(o.open_rc == NOKV_OK && o.end_rc == 0 && o.torn && o.nread == 0 && o.valid_end == 0,
	   "an all-zero file is an empty log with a torn tail");

	zeros[40] = 1;
	o = read_both(zeros, sizeof(zeros), NULL, "zero header, data after");
	ok(o.open_rc == NOKV_CORRUPTION, "zero header but nonzero bytes later: bad magic");

	o = read_both(im->buf.data, 0, NULL, "empty file");
	ok(o.open_rc == NOKV_OK && o.torn && o.nread == 0 && o.valid_end == 0,
	   "an empty file is an empty log with a torn tail");
	o = read_both(im->buf.data, 16, NULL, "header only");
	ok(o.open_rc == NOKV_OK && !o.torn && o.nread == 0 && o.valid_end == 16,
	   "header only: empty log, clean end");
	o = read_all(NULL, 0, NULL, NULL);
	ok(o.open_rc == NOKV_OK && o.torn, "NULL image with length 0: empty, torn");

	path = malloc(4200);
	snprintf(path, 4200, "%s/does-not-exist.log", tmpdir);
	ok(nokv_log_reader_open(path, NOKV_WAL_MAGIC, &r, &err) == NOKV_IO_ERROR && r == NULL &&
	   strstr(err.msg, "does-not-exist"),
	   "missing file: NOKV_IO_ERROR naming it");
	free(path);
	image_free(im);
}

static void
test_lengths(void)
{
	image	   *im = three_records();
	outcome		o;

	/* impossible length in the middle record */
	nokv_put_le32(im->buf.data + im->starts[1] + 4, NOKV_LOG_MAX_RECORD + 1);
	o = read_both(im->buf.data, im->buf.len, im, "impossible length mid");
	ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 1 && strstr(o.err.msg, "impossible"),
	   "impossible length in the middle: corruption (%s)", o.err.msg);
	nokv_put_le32(im->buf.data + im->starts[1] + 4, 200);

	/* length running past the end, in the middle */
	nokv_put_le32(im->buf.data + im->starts[1] + 4, 100000);
	o = read_both(im->buf.data, im->buf.len, im, "long length mid");
	ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 1 && strstr(o.err.msg, "past end"),
	   "length past end of file in the middle: corruption, not a silent stop (%s)", o.err.msg);
	nokv_put_le32(im->buf.data + im->starts[1] + 4, 200);

	/* impossible length in the last record */
	nokv_put_le32(im->buf.data + im->starts[2] + 4, 0xffffffffu);
	o = read_both(im->buf.data, im->buf.len, im, "impossible length last");
	ok(o.end_rc == 0 && o.torn && o.nread == 2, "impossible length in the last record: torn tail");
	image_free(im);
}

static void
test_many_records_file(void)
{
	image	   *im = image_new();
	char	   *path;
	outcome		o;
	size_t		victim;

	for (int i = 0; i < 3000; i++)
		image_add(im, 1, 1000 + (size_t) (rng() % 100));
	victim = im->starts[2500];
	im->buf.data[victim + 500] ^= 0x04;
	path = write_file("many.log", im->buf.data, im->buf.len);
	o = read_all(NULL, 0, path, im);
	ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 2500 && o.contents_ok && o.valid_end == victim,
	   "3 MB file, record 2500 damaged: 2500 records then corruption at its offset");
	free(path);

	im->buf.data[victim + 500] ^= 0x04;
	victim = im->starts[2999];
	im->buf.data[victim + 9] ^= 0x04;
	path = write_file("many2.log", im->buf.data, im->buf.len);
	o = read_all(NULL, 0, path, im);
	ok(o.end_rc == 0 && o.torn && o.nread == 2999 && o.valid_end == victim,
	   "3 MB file, last record damaged: torn tail");
	free(path);
	image_free(im);
}

/*
 * A tail whose every fourth offset claims a 256 KiB record: checking them all
 * would be quadratic, so the scan gives up and reports corruption.
 */
static void
test_resync_budget(void)
{
	image	   *im = three_records();
	nokv_buf	b = {0};
	outcome		o;

	nokv_buf_append(&b, im->buf.data, im->buf.len);
	b.data[im->starts[2] + 12] ^= 1;
	for (int i = 0; i < 1024 * 1024 / 4; i++)
		nokv_buf_append(&b, "\x01\x00\x04\x00", 4);
	o = read_all(b.data, b.len, NULL, im);
	ok(o.end_rc == -NOKV_CORRUPTION && o.nread == 2 && strstr(o.err.msg, "ruled out"),
	   "pathological tail exhausts the scan budget: reported, never silently dropped (%s)",
	   o.err.msg);
	nokv_buf_free(&b);
	image_free(im);
}

int
main(void)
{
	tmpdir = tap_tmpdir("logformat");
	test_framing_layout();
	test_round_trip();
	test_torn_every_truncation();
	test_flipped_bytes();
	test_zero_tails();
	test_headers();
	test_lengths();
	test_many_records_file();
	test_resync_budget();
	tap_rmdir(tmpdir);
	free(tmpdir);
	return tap_done();
}
