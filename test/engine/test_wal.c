/*-------------------------------------------------------------------------
 *
 * test_wal.c
 *	  Unit tests for the WAL: buffering, segments, group commit across
 *	  threads and processes, crash recovery.
 *
 * The shared region is a MAP_SHARED anonymous mapping holding the pthread
 * platform and the WAL's shared state, so forked children share the log
 * exactly as backends would.  Every record carries a global sequence number
 * assigned under NOKV_LOCK_WRITE and a payload derived from it, so replay can
 * check both order and content.
 *
 * test/engine/test_wal.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/file.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "nokv/status.h"
#include "nokv/wal.h"
#include "tap.h"

#define PLATFORM_OFF 64

typedef struct region
{
	char	   *base;
	size_t		size;
	nokv_platform plat;
	nokv_ctx	ctx;
	nokv_off	wal_off;
	_Atomic uint64_t *next_seq; /* shared record counter (under WRITE) */
} region;

static region *
region_create(size_t buffer_size)
{
	region	   *rg = calloc(1, sizeof(region));
	size_t		plat_size = NOKV_ALIGN(nokv_pthread_platform_size(), 64);

	rg->wal_off = PLATFORM_OFF + plat_size + 64;
	rg->size = rg->wal_off + nokv_wal_shared_size(buffer_size);
	rg->base = mmap(NULL, rg->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rg->base == MAP_FAILED)
		tap_bail("mmap failed");
	nokv_pthread_platform_format(rg->base + PLATFORM_OFF);
	nokv_pthread_platform_bind(&rg->plat, rg->base + PLATFORM_OFF);
	rg->ctx.base = rg->base;
	rg->ctx.plat = &rg->plat;
	rg->ctx.heap = 0;
	rg->next_seq = (_Atomic uint64_t *) (rg->base + PLATFORM_OFF + plat_size);
	atomic_init(rg->next_seq, 0);
	nokv_wal_format(&rg->ctx, rg->wal_off, buffer_size);
	return rg;
}

static void
region_destroy(region *rg)
{
	munmap(rg->base, rg->size);
	free(rg);
}

/* ---------- records ---------- */

/* payload: seq (LE64) | writer id (LE32) | writer's own counter (LE32) | filler */
static size_t
make_payload(char *dst, uint64_t seq, uint32_t writer, uint32_t wseq, size_t len)
{
	uint64_t	s = seq * 0x9e3779b97f4a7c15ull + 7;

	if (len < 16)
		len = 16;
	nokv_put_le64(dst, seq);
	nokv_put_le32(dst + 8, writer);
	nokv_put_le32(dst + 12, wseq);
	for (size_t i = 16; i < len; i++)
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		dst[i] = (char) s;
	}
	return len;
}

static bool
payload_ok(const char *p, size_t len)
{
	char	   *want;
	bool		same;

	if (len < 16)
		return false;
	want = malloc(len);
	make_payload(want, nokv_get_le64(p), nokv_get_le32(p + 8), nokv_get_le32(p + 12), len);
	same = memcmp(want, p, len) == 0;
	free(want);
	return same;
}

/* append one record under WRITE, stamping it with the next global seq */
static int
append_one(region *rg, nokv_wal *w, uint32_t writer, uint32_t wseq, size_t len,
		   uint64_t *seq_out, uint64_t *lsn, nokv_error *err)
{
	char	   *buf = malloc(len < 16 ? 16 : len);
	uint64_t	seq;
	int			rc;

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	seq = atomic_load(rg->next_seq);
	len = make_payload(buf, seq, writer, wseq, len);
	rc = nokv_wal_append(w, buf, len, lsn, err);
	if (rc == NOKV_OK)
		atomic_store(rg->next_seq, seq + 1);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	free(buf);
	if (seq_out)
		*seq_out = seq;
	return rc;
}

/* replay collector */
typedef struct collected
{
	uint64_t	n;
	uint64_t	cap;
	uint64_t   *seqs;
	uint32_t   *writers;
	uint32_t   *wseqs;
	size_t	   *lens;
	int			bad_payloads;
} collected;

static int
collect_fn(void *arg, const char *payload, size_t len, nokv_error *err)
{
	collected  *c = arg;

	(void) err;
	if (c->n == c->cap)
	{
		c->cap = c->cap ? c->cap * 2 : 256;
		c->seqs = realloc(c->seqs, c->cap * sizeof(uint64_t));
		c->writers = realloc(c->writers, c->cap * sizeof(uint32_t));
		c->wseqs = realloc(c->wseqs, c->cap * sizeof(uint32_t));
		c->lens = realloc(c->lens, c->cap * sizeof(size_t));
	}
	if (!payload_ok(payload, len))
	{
		c->bad_payloads++;
		return NOKV_OK;
	}
	c->seqs[c->n] = nokv_get_le64(payload);
	c->writers[c->n] = nokv_get_le32(payload + 8);
	c->wseqs[c->n] = nokv_get_le32(payload + 12);
	c->lens[c->n] = len;
	c->n++;
	return NOKV_OK;
}

static void
collected_free(collected *c)
{
	free(c->seqs);
	free(c->writers);
	free(c->wseqs);
	free(c->lens);
	memset(c, 0, sizeof(*c));
}

/* seqs are exactly 0..n-1 in order, and each writer's counter increases */
static bool
check_order(const collected *c, int writers, const char *what)
{
	uint32_t   *last = calloc(writers, sizeof(uint32_t));
	bool		good = c->bad_payloads == 0;

	for (int i = 0; i < writers; i++)
		last[i] = UINT32_MAX;
	for (uint64_t i = 0; i < c->n && good; i++)
	{
		if (c->seqs[i] != i)
		{
			tap_diag("%s: record %llu has seq %llu", what, (unsigned long long) i,
					 (unsigned long long) c->seqs[i]);
			good = false;
		}
		else if (c->writers[i] >= (uint32_t) writers ||
				 (last[c->writers[i]] != UINT32_MAX && c->wseqs[i] != last[c->writers[i]] + 1) ||
				 (last[c->writers[i]] == UINT32_MAX && c->wseqs[i] != 0))
		{
			tap_diag("%s: writer %u out of order at record %llu", what, c->writers[i],
					 (unsigned long long) i);
			good = false;
		}
		else
			last[c->writers[i]] = c->wseqs[i];
	}
	free(last);
	return good;
}

static char *
seg_path(const char *dir, uint64_t n)
{
	char	   *p = malloc(4200);

	snprintf(p, 4200, NOKV_WAL_FMT, dir, (unsigned long long) n);
	return p;
}

static uint64_t
file_size(const char *dir, uint64_t n)
{
	char	   *p = seg_path(dir, n);
	struct stat st;
	uint64_t	sz = stat(p, &st) == 0 ? (uint64_t) st.st_size : UINT64_MAX;

	free(p);
	return sz;
}

/* replay segments first..last in order; the newest may be torn */
static int
replay_range(const char *dir, uint64_t first, uint64_t last, collected *c, nokv_error *err)
{
	for (uint64_t n = first; n <= last; n++)
	{
		uint64_t	end;
		int			rc = nokv_wal_replay_segment(dir, n, n == last, collect_fn, c, &end, err);

		if (rc != NOKV_OK)
			return rc;
	}
	return NOKV_OK;
}

/* ---------- single process ---------- */

static void
test_basic(void)
{
	char	   *dir = tap_tmpdir("wal-basic");
	region	   *rg = region_create(4096);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	uint64_t	lsn = 0;
	uint64_t	prev;
	uint64_t	expect;
	int			bad = 0;
	collected	c = {0};
	nokv_wal_stats st;
	static const size_t sizes[] = {16, 17, 100, 4000, 4087, 4088, 4096, 5000, 20000, 16, 3000,
	70000, 16, 1000};
	char	   *p;
	int			fd;
	uint32_t	wseq = 0;

	ok(nokv_wal_append(w, "x", 1, &lsn, &err) == NOKV_INVALID_ARGUMENT,
	   "append before any segment: NOKV_INVALID_ARGUMENT");
	ok(nokv_wal_sync(w, UINT64_MAX, &err) == NOKV_OK, "sync with nothing appended is a no-op");

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	is_int(nokv_wal_switch_segment(w, 1, &err), NOKV_OK, "first segment created");
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	is_int(nokv_wal_current_segment(w), 1, "current segment is 1");
	is_int(file_size(dir, 1), NOKV_LOG_FILE_HEADER, "new segment holds just its 16-byte header");

	/* LSNs count file bytes, headers included */
	prev = NOKV_LOG_FILE_HEADER;
	for (int round = 0; round < 3; round++)
	{
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		{
			if (append_one(rg, w, 0, wseq++, sizes[i], NULL, &lsn, &err) != NOKV_OK)
				bad++;
			expect = prev + NOKV_LOG_RECORD_HEADER + sizes[i];
			if (lsn != expect)
				bad++;
			prev = lsn;
		}
	}
	is_int(bad, 0, "appends of 16 B .. 70 KB (buffered and direct) return consecutive LSNs");
	ok(file_size(dir, 1) < lsn, "some records are still only in the shared buffer");

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	is_int(nokv_wal_flush_buffer(w, &err), NOKV_OK, "flush buffer");
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	is_int(file_size(dir, 1), lsn, "after flush the file is exactly LSN bytes long");
	ok(nokv_wal_sync(w, UINT64_MAX, &err) == NOKV_OK, "sync(UINT64_MAX) syncs everything appended");

	is_int(nokv_wal_replay_segment(dir, 1, false, collect_fn, &c, &expect, &err), NOKV_OK,
		   "replay segment 1");
	is_int(c.n, 3 * sizeof(sizes) / sizeof(sizes[0]), "every record replayed");
	ok(check_order(&c, 1, "basic"), "records replay in append order with intact payloads");
	is_int(expect, lsn, "replay valid_end = file size");
	collected_free(&c);

	nokv_wal_get_stats(w, &st);
	is_int(st.bytes, lsn - NOKV_LOG_FILE_HEADER, "stats: bytes = framed record bytes");
	is_int(st.segments_created, 1, "stats: one segment");
	is_int(st.syncs, 1, "stats: one fdatasync");
	is_int(st.synced_batches, 3 * sizeof(sizes) / sizeof(sizes[0]), "stats: every append synced once");

	/* switching to the current number or an existing file fails cleanly */
	p = seg_path(dir, 5);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	close(fd);
	free(p);
	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	ok(nokv_wal_switch_segment(w, 1, &err) == NOKV_INVALID_ARGUMENT,
	   "switch to the current segment: NOKV_INVALID_ARGUMENT");
	ok(nokv_wal_switch_segment(w, 5, &err) == NOKV_IO_ERROR && strstr(err.msg, "000005.wal"),
	   "switch onto an existing file: NOKV_IO_ERROR naming it (%s)", err.msg);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	is_int(nokv_wal_current_segment(w), 1, "  segment 1 stays current");
	is_int(file_size(dir, 5), 0, "  the existing file is untouched");
	ok(append_one(rg, w, 0, wseq++, 50, NULL, &lsn, &err) == NOKV_OK &&
	   nokv_wal_sync(w, lsn, &err) == NOKV_OK && file_size(dir, 1) == lsn,
	   "  appends and syncs still go to segment 1");

	/* too-large record */
	ok(nokv_wal_append(w, "", (size_t) NOKV_LOG_MAX_RECORD + 1, &lsn, &err) == NOKV_INVALID_ARGUMENT,
	   "record over NOKV_LOG_MAX_RECORD: NOKV_INVALID_ARGUMENT");

	/* a zero-length payload is a legal record */
	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	ok(nokv_wal_append(w, NULL, 0, &lsn, &err) == NOKV_OK, "empty record appended");
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	ok(nokv_wal_sync(w, lsn, &err) == NOKV_OK && file_size(dir, 1) == lsn, "  and synced");

	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

/* the buffer can be smaller than a record header: every record goes direct */
static void
test_tiny_buffer(void)
{
	char	   *dir = tap_tmpdir("wal-tiny");
	region	   *rg = region_create(0);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	uint64_t	lsn = 0;
	collected	c = {0};
	int			bad = 0;

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	bad += nokv_wal_switch_segment(w, 7, &err) != NOKV_OK;
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	for (int i = 0; i < 50; i++)
		bad += append_one(rg, w, 0, (uint32_t) i, 16 + (size_t) i * 37, NULL, &lsn, &err) != NOKV_OK;
	is_int(bad, 0, "zero-size buffer: appends succeed");
	is_int(file_size(dir, 7), lsn, "  every record is written straight through");
	ok(nokv_wal_replay_segment(dir, 7, false, collect_fn, &c, NULL, &err) == NOKV_OK &&
	   c.n == 50 && check_order(&c, 1, "tiny"), "  and replays in order");
	collected_free(&c);
	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

static void
test_segments(void)
{
	char	   *dir = tap_tmpdir("wal-seg");
	region	   *rg = region_create(8192);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	uint64_t	lsn = 0;
	uint64_t	prev_lsn = 0;
	int			bad_switch = 0;
	int			bad_lsn = 0;
	int			bad_durable = 0;
	collected	c = {0};
	nokv_wal_stats st;
	uint32_t	wseq = 0;

	for (uint64_t seg = 10; seg < 14; seg++)
	{
		nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
		bad_switch += nokv_wal_switch_segment(w, seg, &err) != NOKV_OK;
		nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
		if (seg > 10)
		{
			/* the old segment was written out completely before the switch */
			nokv_wal_get_stats(w, &st);
			bad_durable += file_size(dir, seg - 1) == UINT64_MAX;
			bad_durable += st.synced_batches != wseq;
		}
		for (int i = 0; i < 40; i++)
		{
			size_t		len = 16 + (size_t) ((i * 7919) % 12000);

			append_one(rg, w, 0, wseq++, len, NULL, &lsn, &err);
			/* first record of a segment: previous end + new header + record */
			if (i == 0 && seg > 10 &&
				lsn != prev_lsn + NOKV_LOG_FILE_HEADER + NOKV_LOG_RECORD_HEADER + (len < 16 ? 16 : len))
				bad_lsn++;
			prev_lsn = lsn;
		}
	}
	is_int(bad_switch, 0, "switched through segments 10..13");
	is_int(bad_lsn, 0, "LSNs continue across segments, counting each new header");
	is_int(bad_durable, 0, "each switch made the old segment's records durable");
	is_int(nokv_wal_current_segment(w), 13, "current segment is 13");

	/* older segments are complete: replay them without torn-tail tolerance */
	for (uint64_t seg = 10; seg < 13; seg++)
	{
		uint64_t	end;
		int			rc = nokv_wal_replay_segment(dir, seg, false, collect_fn, &c, &end, &err);

		ok(rc == NOKV_OK && end == file_size(dir, seg), "sealed segment %llu replays strictly",
		   (unsigned long long) seg);
	}
	ok(nokv_wal_sync(w, lsn, &err) == NOKV_OK, "sync the newest segment");
	ok(nokv_wal_replay_segment(dir, 13, false, collect_fn, &c, NULL, &err) == NOKV_OK,
	   "replay the newest segment");
	ok(c.n == 160 && check_order(&c, 1, "segments"), "all 160 records, in order, across segments");
	collected_free(&c);
	nokv_wal_get_stats(w, &st);
	is_int(st.segments_created, 4, "stats: four segments created");
	is_int(st.synced_batches, 160, "stats: all 160 appends counted as synced, once each");

	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- recovery helpers ---------- */

static int
reject_fn(void *arg, const char *payload, size_t len, nokv_error *err)
{
	int		   *count = arg;

	(void) payload;
	(void) len;
	if (++*count == 3)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "rejected");
	return NOKV_OK;
}

static void
write_segment(const char *dir, uint64_t number, uint64_t header_number, int records, int type,
			  nokv_buf *out)
{
	nokv_buf	b = {0};
	char	   *p = seg_path(dir, number);
	FILE	   *f;

	nokv_buf_reserve(&b, NOKV_LOG_FILE_HEADER);
	nokv_log_file_header(b.data, NOKV_WAL_MAGIC, header_number);
	b.len = NOKV_LOG_FILE_HEADER;
	for (int i = 0; i < records; i++)
	{
		char		payload[64];
		size_t		len = make_payload(payload, (uint64_t) i, 0, (uint32_t) i, 40);

		nokv_log_append_record(&b, i == 1 ? type : NOKV_WAL_BATCH, payload, len);
	}
	f = fopen(p, "wb");
	fwrite(b.data, 1, b.len, f);
	fclose(f);
	free(p);
	if (out)
		*out = b;
	else
		nokv_buf_free(&b);
}

static void
test_replay_and_truncate(void)
{
	char	   *dir = tap_tmpdir("wal-replay");
	nokv_error	err;
	collected	c = {0};
	uint64_t	end = 0;
	nokv_buf	b;
	int			count = 0;
	char	   *p;
	FILE	   *f;

	write_segment(dir, 1, 1, 3, 2, NULL);
	ok(nokv_wal_replay_segment(dir, 1, true, collect_fn, &c, &end, &err) == NOKV_CORRUPTION &&
	   strstr(err.msg, "record type 2") && strstr(err.msg, "offset 65"),
	   "record type other than NOKV_WAL_BATCH: corruption (%s)", err.msg);
	collected_free(&c);

	write_segment(dir, 2, 7, 3, NOKV_WAL_BATCH, NULL);
	ok(nokv_wal_replay_segment(dir, 2, true, collect_fn, &c, &end, &err) == NOKV_CORRUPTION &&
	   strstr(err.msg, "file number 7"),
	   "header naming another segment: corruption (%s)", err.msg);
	collected_free(&c);

	write_segment(dir, 3, 3, 5, NOKV_WAL_BATCH, &b);
	ok(nokv_wal_replay_segment(dir, 3, false, reject_fn, &count, &end, &err) == NOKV_INVALID_ARGUMENT &&
	   strcmp(err.msg, "rejected") == 0 && count == 3,
	   "callback error stops replay and is returned");
	is_int(end, NOKV_LOG_FILE_HEADER + 2 * (NOKV_LOG_RECORD_HEADER + 40),
		   "  valid_end = start of the rejected record");

	/* torn tail: half a record appended */
	p = seg_path(dir, 3);
	f = fopen(p, "ab");
	fwrite(b.data + NOKV_LOG_FILE_HEADER, 1, 20, f);
	fclose(f);
	ok(nokv_wal_replay_segment(dir, 3, false, collect_fn, &c, &end, &err) == NOKV_CORRUPTION &&
	   strstr(err.msg, "torn tail") && strstr(err.msg, "not the newest"),
	   "torn tail in a segment that is not the newest: corruption (%s)", err.msg);
	collected_free(&c);
	ok(nokv_wal_replay_segment(dir, 3, true, collect_fn, &c, &end, &err) == NOKV_OK && c.n == 5 &&
	   end == b.len,
	   "torn tail allowed (newest segment): 5 records, valid_end before the torn bytes");
	collected_free(&c);
	ok(nokv_wal_truncate_segment(dir, 3, end, &err) == NOKV_OK && file_size(dir, 3) == end,
	   "truncate_segment drops the torn tail");
	ok(nokv_wal_replay_segment(dir, 3, false, collect_fn, &c, &end, &err) == NOKV_OK && c.n == 5,
	   "  after which the segment replays strictly");
	collected_free(&c);
	ok(nokv_wal_truncate_segment(dir, 3, end + 1, &err) == NOKV_INVALID_ARGUMENT,
	   "truncating past the end: NOKV_INVALID_ARGUMENT");

	/* damage in the middle of a segment is corruption even when torn tails are allowed */
	{
		int			fd = open(p, O_WRONLY);
		char		x = 0x55;

		if (pwrite(fd, &x, 1, NOKV_LOG_FILE_HEADER + NOKV_LOG_RECORD_HEADER + 49 + 20) != 1)
			tap_bail("pwrite");
		close(fd);
	}
	ok(nokv_wal_replay_segment(dir, 3, true, collect_fn, &c, &end, &err) == NOKV_CORRUPTION &&
	   strstr(err.msg, "offset 65 of") && strstr(err.msg, "000003.wal") && c.n == 1 && end == 65,
	   "mid-segment damage: corruption naming offset and file (%s)", err.msg);
	collected_free(&c);

	/* a segment whose header never landed */
	ok(nokv_wal_truncate_segment(dir, 3, 5, &err) == NOKV_OK &&
	   file_size(dir, 3) == NOKV_LOG_FILE_HEADER,
	   "truncating inside the header leaves a valid empty segment");
	ok(nokv_wal_replay_segment(dir, 3, false, collect_fn, &c, &end, &err) == NOKV_OK && c.n == 0 &&
	   end == NOKV_LOG_FILE_HEADER,
	   "  which replays strictly as empty");
	{
		int			fd = open(p, O_WRONLY | O_TRUNC);

		if (write(fd, "NOKV", 4) != 4)
			tap_bail("write");
		close(fd);
	}
	ok(nokv_wal_replay_segment(dir, 3, true, collect_fn, &c, &end, &err) == NOKV_OK && c.n == 0 &&
	   end == 0, "a 4-byte segment is empty with a torn tail (newest)");
	ok(nokv_wal_replay_segment(dir, 3, false, collect_fn, &c, &end, &err) == NOKV_CORRUPTION,
	   "  and corruption when not the newest");
	ok(nokv_wal_replay_segment(dir, 99, true, collect_fn, &c, &end, &err) == NOKV_IO_ERROR,
	   "missing segment: NOKV_IO_ERROR");
	free(p);
	nokv_buf_free(&b);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- group commit: threads ---------- */

#define THREADS 4
#define THREAD_APPENDS 250

typedef struct thread_arg
{
	region	   *rg;
	nokv_wal   *w;
	uint32_t	id;
	int			errors;
} thread_arg;

static _Atomic int waits_entered;
static _Atomic int waits_left;

static void
count_report_wait(void *arg, int event)
{
	(void) arg;
	if (event == NOKV_WAIT_WAL_SYNC)
		atomic_fetch_add(&waits_entered, 1);
	else if (event == 0)
		atomic_fetch_add(&waits_left, 1);
}

static void *
thread_main(void *p)
{
	thread_arg *a = p;
	nokv_error	err;

	for (uint32_t i = 0; i < THREAD_APPENDS; i++)
	{
		uint64_t	lsn;

		if (append_one(a->rg, a->w, a->id, i, 16 + (i * 131 + a->id * 17) % 3000, NULL, &lsn, &err) != NOKV_OK)
		{
			a->errors++;
			continue;
		}
		if (nokv_wal_sync(a->w, lsn, &err) != NOKV_OK)
			a->errors++;
		/* thread 0 rotates the segment half way, while the others keep syncing */
		if (a->id == 0 && i == THREAD_APPENDS / 2)
		{
			nokv_lock(&a->rg->plat, NOKV_LOCK_WRITE, true);
			if (nokv_wal_switch_segment(a->w, 2, &err) != NOKV_OK)
				a->errors++;
			nokv_unlock(&a->rg->plat, NOKV_LOCK_WRITE);
		}
	}
	return NULL;
}

static void
test_threads(void)
{
	char	   *dir = tap_tmpdir("wal-threads");
	region	   *rg = region_create(64 * 1024);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	pthread_t	th[THREADS];
	thread_arg	args[THREADS];
	nokv_error	err;
	collected	c = {0};
	nokv_wal_stats st;
	int			errors = 0;

	rg->plat.report_wait = count_report_wait;
	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	nokv_wal_switch_segment(w, 1, &err);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);

	for (int i = 0; i < THREADS; i++)
	{
		args[i] = (thread_arg)
		{
			.rg = rg,.w = w,.id = (uint32_t) i
		};
		pthread_create(&th[i], NULL, thread_main, &args[i]);
	}
	for (int i = 0; i < THREADS; i++)
	{
		pthread_join(th[i], NULL);
		errors += args[i].errors;
	}
	is_int(errors, 0, "%d threads x %d append+sync: no errors", THREADS, THREAD_APPENDS);
	nokv_wal_get_stats(w, &st);
	tap_diag("threads: %d appends, %llu fdatasyncs, %llu synced batches, %d waits",
			 THREADS * THREAD_APPENDS, (unsigned long long) st.syncs,
			 (unsigned long long) st.synced_batches, atomic_load(&waits_entered));
	ok(st.syncs < (uint64_t) (THREADS * THREAD_APPENDS), "group commit: fewer fdatasyncs than appends");
	is_int(st.synced_batches, THREADS * THREAD_APPENDS, "every append counted as synced exactly once");
	ok(atomic_load(&waits_entered) > 0 && atomic_load(&waits_entered) == atomic_load(&waits_left),
	   "waiters reported entering and leaving the WAL sync wait");

	/* everything was synced before each ack: the files hold it all */
	ok(replay_range(dir, 1, 2, &c, &err) == NOKV_OK, "replay segments 1 and 2");
	is_int(c.n, THREADS * THREAD_APPENDS, "every record replayed");
	ok(check_order(&c, THREADS, "threads"), "records replay in LSN (append) order");
	collected_free(&c);
	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- group commit: processes ---------- */

#define PROCS 4
#define PROC_APPENDS 150

static int
child_main(region *rg, const char *dir, uint32_t id)
{
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	int			errors = 0;

	for (uint32_t i = 0; i < PROC_APPENDS; i++)
	{
		uint64_t	lsn;

		if (append_one(rg, w, id, i, 16 + (i * 97 + id * 13) % 5000, NULL, &lsn, &err) != NOKV_OK ||
			nokv_wal_sync(w, lsn, &err) != NOKV_OK)
		{
			fprintf(stderr, "child %u: %s\n", id, err.msg);
			errors++;
		}
		if (id == 0 && (i == PROC_APPENDS / 3 || i == 2 * PROC_APPENDS / 3))
		{
			nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
			if (nokv_wal_switch_segment(w, nokv_wal_current_segment(w) + 1, &err) != NOKV_OK)
				errors++;
			nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
		}
	}
	nokv_wal_detach(w);
	return errors ? 1 : 0;
}

static void
test_processes(void)
{
	char	   *dir = tap_tmpdir("wal-procs");
	region	   *rg = region_create(32 * 1024);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	pid_t		pids[PROCS];
	int			failed = 0;
	nokv_error	err;
	collected	c = {0};
	nokv_wal_stats st;

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	nokv_wal_switch_segment(w, 1, &err);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	fflush(stdout);
	for (int i = 0; i < PROCS; i++)
	{
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(child_main(rg, dir, (uint32_t) i));
	}
	for (int i = 0; i < PROCS; i++)
	{
		int			status;

		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	is_int(failed, 0, "%d forked processes x %d append+sync over one shared region", PROCS, PROC_APPENDS);
	nokv_wal_get_stats(w, &st);
	tap_diag("processes: %d appends, %llu fdatasyncs, %llu synced batches",
			 PROCS * PROC_APPENDS, (unsigned long long) st.syncs,
			 (unsigned long long) st.synced_batches);
	ok(st.syncs < (uint64_t) (PROCS * PROC_APPENDS), "cross-process group commit: fewer fdatasyncs than appends");
	is_int(st.synced_batches, PROCS * PROC_APPENDS, "every append counted as synced exactly once");
	is_int(nokv_wal_current_segment(w), 3, "a child's segment switches are visible to the parent");
	ok(replay_range(dir, 1, 3, &c, &err) == NOKV_OK, "replay segments 1..3");
	is_int(c.n, PROCS * PROC_APPENDS, "every record replayed");
	ok(check_order(&c, PROCS, "processes"), "records replay in append order (processes reopened switched segments)");
	collected_free(&c);

	/* the parent's handle reopens the segment a child created */
	{
		uint64_t	lsn;

		uint64_t	before = file_size(dir, 3);

		ok(append_one(rg, w, 0, 0, 100, NULL, &lsn, &err) == NOKV_OK &&
		   nokv_wal_sync(w, lsn, &err) == NOKV_OK &&
		   file_size(dir, 3) == before + NOKV_LOG_RECORD_HEADER + 100,
		   "parent appends to the child-created segment");
	}
	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- a sync leader that dies ---------- */

static _Atomic int takeover_logged;

static void
capture_log(void *arg, int level, const char *msg)
{
	(void) arg;
	(void) level;
	if (strstr(msg, "died"))
		atomic_store(&takeover_logged, 1);
}

/*
 * A child becomes the sync leader and is SIGKILLed while it waits for the
 * WRITE lock the parent holds: its claim on the sync must not leave the
 * parent waiting forever.
 */
static void
test_leader_death(void)
{
	char	   *dir = tap_tmpdir("wal-leader");
	region	   *rg = region_create(4096);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	uint64_t	lsn = 0;
	pid_t		pid;
	int			status;
	int			rc;
	collected	c = {0};

	rg->plat.log = capture_log;
	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	nokv_wal_switch_segment(w, 1, &err);
	{
		char		payload[64];
		size_t		len = make_payload(payload, 0, 0, 0, 64);

		nokv_wal_append(w, payload, len, &lsn, &err);
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
	{
		nokv_wal   *cw = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);

		/* becomes leader, then blocks on WRITE */
		nokv_wal_sync(cw, lsn, &err);
		_exit(0);
	}
	usleep(300 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);

	rc = nokv_wal_sync(w, lsn, &err);
	ok(rc == NOKV_OK && file_size(dir, 1) == lsn,
	   "sync completes after the previous leader process died");
	ok(atomic_load(&takeover_logged), "  the survivor took over the dead leader's sync (and logged it)");
	ok(nokv_wal_replay_segment(dir, 1, false, collect_fn, &c, NULL, &err) == NOKV_OK && c.n == 1,
	   "  the record is durable");
	collected_free(&c);
	nokv_wal_detach(w);
	region_destroy(rg);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- crash ---------- */

typedef struct synced_report
{
	uint64_t	seq;			/* every record with seq <= this was synced */
} synced_report;

static void *
killer_main(void *p)
{
	long		us = (long) (intptr_t) p;
	struct timespec ts = {.tv_sec = us / 1000000,.tv_nsec = (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
	kill(getpid(), SIGKILL);
	return NULL;
}

static void
crash_child(const char *dir, int pipefd, long kill_after_us, uint64_t salt)
{
	region	   *rg = region_create(16 * 1024);
	nokv_wal   *w = nokv_wal_attach(&rg->ctx, rg->wal_off, dir);
	nokv_error	err;
	pthread_t	killer;
	time_t		start = time(NULL);
	uint64_t	s = salt;

	nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
	if (nokv_wal_switch_segment(w, 1, &err) != NOKV_OK)
		_exit(2);
	nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
	pthread_create(&killer, NULL, killer_main, (void *) (intptr_t) kill_after_us);
	for (uint32_t i = 0;; i++)
	{
		uint64_t	seq;
		uint64_t	lsn;
		size_t		len;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* mostly small, sometimes bigger than the buffer (direct writes) */
		len = (s % 10 == 0) ? 16 * 1024 + (size_t) (s % 200000) : 16 + (size_t) (s % 2000);
		if (append_one(rg, w, 0, i, len, &seq, &lsn, &err) != NOKV_OK)
			_exit(3);
		/* sync two records out of three, leaving unsynced ones in between */
		if (i % 3 != 2)
		{
			synced_report rep = {.seq = seq};

			if (nokv_wal_sync(w, lsn, &err) != NOKV_OK)
				_exit(4);
			if (write(pipefd, &rep, sizeof(rep)) != sizeof(rep))
				_exit(5);
		}
		if (i % 97 == 96)
		{
			nokv_lock(&rg->plat, NOKV_LOCK_WRITE, true);
			if (nokv_wal_switch_segment(w, nokv_wal_current_segment(w) + 1, &err) != NOKV_OK)
				_exit(6);
			nokv_unlock(&rg->plat, NOKV_LOCK_WRITE);
		}
		if (time(NULL) - start > 5)
			_exit(7);
	}
}

static uint64_t
newest_segment(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	uint64_t	max = 0;

	while ((e = readdir(d)) != NULL)
	{
		unsigned long long n;

		if (sscanf(e->d_name, "%llu.wal", &n) == 1 && n > max)
			max = n;
	}
	closedir(d);
	return max;
}

static void
copy_file(const char *from, const char *to, uint64_t len)
{
	int			in = open(from, O_RDONLY);
	int			out = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	char	   *buf = malloc(len ? len : 1);
	ssize_t		got = 0;

	/* the file may be shorter than len if the writer died mid-append: copy what is there */
	if (in < 0 || out < 0 || (len > 0 && (got = pread(in, buf, len, 0)) < 0) ||
		(got > 0 && write(out, buf, (size_t) got) != got))
		tap_bail("copy %s", from);
	free(buf);
	close(in);
	close(out);
}

static void
test_crash(void)
{
	int			bad = 0;

	for (int round = 0; round < 4; round++)
	{
		char	   *dir = tap_tmpdir("wal-crash");
		char	   *scratch = tap_tmpdir("wal-crash-os");
		int			pipefd[2];
		pid_t		pid;
		int			status;
		synced_report rep;
		int64_t		synced = -1;
		uint64_t	newest;
		nokv_error	err;
		collected	c = {0};
		int			rc;

		if (pipe(pipefd) != 0)
			tap_bail("pipe");
		fflush(stdout);
		pid = fork();
		if (pid == 0)
		{
			close(pipefd[0]);
			crash_child(dir, pipefd[1], 30000 + round * 60000, 0x1234567ull * (round + 1));
		}
		close(pipefd[1]);
		while (read(pipefd[0], &rep, sizeof(rep)) == sizeof(rep))
			synced = (int64_t) rep.seq;
		close(pipefd[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		{
			tap_diag("round %d: child did not die by SIGKILL (status %d)", round, status);
			bad++;
		}

		/* process crash: every synced record is there, the tail at worst torn */
		newest = newest_segment(dir);
		rc = replay_range(dir, 1, newest, &c, &err);
		if (rc != NOKV_OK || (int64_t) c.n <= synced || !check_order(&c, 1, "crash"))
		{
			tap_diag("round %d: replay rc %d (%s), %llu records, %lld synced", round, rc,
					 rc ? err.msg : "", (unsigned long long) c.n, (long long) synced);
			bad++;
		}
		if (round == 0)
			tap_diag("crash: %lld records synced, %llu recovered from %llu segments",
					 (long long) synced, (unsigned long long) c.n, (unsigned long long) newest);

		/*
		 * OS crash: unsynced bytes of the newest segment may be lost, cut
		 * anywhere or replaced by zeros.  Find where the last synced record of
		 * that segment ends and damage only what lies beyond.
		 */
		{
			uint64_t	first_seq_in_newest = c.n;
			collected	cn = {0};
			uint64_t	size = file_size(dir, newest);
			uint64_t	floor = NOKV_LOG_FILE_HEADER;
			char	   *src = seg_path(dir, newest);
			char	   *dst = seg_path(scratch, newest);

			nokv_wal_replay_segment(dir, newest, true, collect_fn, &cn, NULL, &err);
			if (cn.n > 0)
				first_seq_in_newest = cn.seqs[0];
			for (uint64_t i = 0; i < cn.n; i++)
				if ((int64_t) cn.seqs[i] <= synced)
					floor += NOKV_LOG_RECORD_HEADER + cn.lens[i];
			for (int trial = 0; trial < 20; trial++)
			{
				uint64_t	cut = floor + (size > floor ? (uint64_t) rand() % (size - floor + 1) : 0);
				collected	ct = {0};
				uint64_t	end;

				copy_file(src, dst, cut);
				if (trial % 2)
				{
					/* a page of zeros where the lost tail was */
					int			fd = open(dst, O_WRONLY | O_APPEND);
					char		zeros[4096] = {0};

					if (write(fd, zeros, sizeof(zeros)) != sizeof(zeros))
						tap_bail("write");
					close(fd);
				}
				rc = nokv_wal_replay_segment(scratch, newest, true, collect_fn, &ct, &end, &err);
				if (rc != NOKV_OK || (cn.n > 0 && ct.n > 0 && ct.seqs[0] != first_seq_in_newest) ||
					(int64_t) (first_seq_in_newest + ct.n) <= synced || ct.bad_payloads)
				{
					tap_diag("round %d trial %d: cut %llu of %llu: rc %d (%s), %llu records",
							 round, trial, (unsigned long long) cut, (unsigned long long) size,
							 rc, rc ? err.msg : "", (unsigned long long) ct.n);
					bad++;
				}
				/* drop the torn tail; the segment then replays strictly */
				if (rc == NOKV_OK &&
					(nokv_wal_truncate_segment(scratch, newest, end, &err) != NOKV_OK ||
					 nokv_wal_replay_segment(scratch, newest, false, collect_fn, &ct, NULL, &err) != NOKV_OK))
				{
					tap_diag("round %d trial %d: truncate/strict replay failed: %s", round, trial, err.msg);
					bad++;
				}
				collected_free(&ct);
			}
			free(src);
			free(dst);
			collected_free(&cn);
		}
		collected_free(&c);
		tap_rmdir(dir);
		tap_rmdir(scratch);
		free(dir);
		free(scratch);
	}
	is_int(bad, 0, "4 SIGKILLed writers: every synced record recovered in order; simulated OS-crash tails cut or zeroed after the synced point still recover every synced record");
}

int
main(void)
{
	srand(12345);
	test_basic();
	test_tiny_buffer();
	test_segments();
	test_replay_and_truncate();
	test_threads();
	test_processes();
	test_leader_death();
	test_crash();
	return tap_done();
}
