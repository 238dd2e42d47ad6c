/*-------------------------------------------------------------------------
 *
 * test_vlog.c
 *	  Unit tests for the value log: pointers, segments, sync, recovery, GC.
 *
 * Each test builds a minimal shared region by hand (pthread platform +
 * value-log shared state, in a MAP_SHARED mapping so forked children share
 * it), attaches handles to it, and drives the module directly the way the
 * flush and compaction do: append, sync into a version edit, apply the
 * edit to a manifest state, report it committed.  A "restart" is a fresh
 * region recovered from that manifest state.
 *
 * Covers pointer encoding, append/read round trips from 1 byte to 4 MiB,
 * segment rolling, every flipped byte of a record (always corruption,
 * never wrong data), torn-tail trimming and orphan deletion on recovery,
 * missing/short/damaged segments, discard accounting and GC picking, the
 * deletion lifecycle, slot exhaustion, a failing append, the read
 * descriptor cache, and appends from several processes and threads.
 *
 * test/engine/test_vlog.c
 *-------------------------------------------------------------------------
 */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/ikey.h"
#include "nokv/manifest.h"
#include "nokv/platform.h"
#include "nokv/status.h"
#include "nokv/vlog.h"
#include "tap.h"
#include "testutil.h"

typedef unsigned long long ull;

/* ---------- a minimal shared region ---------- */

typedef struct env
{
	char	   *mem;
	size_t		size;
	nokv_platform plat;
	nokv_ctx	ctx;
	nokv_off	off;
	char	   *dir;
	nokv_shared_options so;
} env;

/* the file-number counter lives at the start of the region */
static uint64_t
next_number(void *arg)
{
	return atomic_fetch_add((_Atomic uint64_t *) arg, 1);
}

static void
env_init(env *e, const char *dir, uint64_t segment_size, int max_segments,
		 uint64_t first_number)
{
	size_t		plat_off = 64;
	size_t		vlog_off;

	memset(e, 0, sizeof(*e));
	e->so.vlog_segment_size = segment_size;
	e->so.max_vlog_segments = max_segments;
	vlog_off = NOKV_ALIGN(plat_off + nokv_pthread_platform_size(), 64);
	e->size = vlog_off + nokv_vlog_shared_size(&e->so);
	e->mem = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (e->mem == MAP_FAILED)
		tap_bail("mmap failed");
	*(_Atomic uint64_t *) e->mem = first_number;
	nokv_pthread_platform_format(e->mem + plat_off);
	nokv_pthread_platform_bind(&e->plat, e->mem + plat_off);
	e->ctx.base = e->mem;
	e->ctx.plat = &e->plat;
	e->ctx.heap = 0;
	e->off = vlog_off;
	e->dir = strdup(dir);
	nokv_vlog_shared_format(&e->ctx, e->off, &e->so);
}

static nokv_vlog_handle *
env_attach(env *e)
{
	return nokv_vlog_attach(&e->ctx, e->off, e->dir, next_number, e->mem);
}

static void
env_free(env *e)
{
	munmap(e->mem, e->size);
	free(e->dir);
}

/* ---------- data helpers ---------- */


/* internal key for user key "<tag>-<n>" at version n + 1 */
static size_t
make_key(char *dst, const char *tag, int n)
{
	char		u[64];
	int			ul = snprintf(u, sizeof(u), "%s-%06d", tag, n);

	nokv_ikey_encode(dst, 0, u, (size_t) ul, (uint64_t) n + 1, NOKV_KIND_PUT);
	return nokv_ikey_size((size_t) ul);
}

/* deterministic value bytes for (seed, len) */
static char *
make_value(uint64_t seed, size_t len)
{
	char	   *v = malloc(len ? len : 1);
	uint64_t	s = seed * 7919 + len;

	for (size_t i = 0; i < len; i += 8)
	{
		uint64_t	r = splitmix64(&s);

		memcpy(v + i, &r, len - i < 8 ? len - i : 8);
	}
	return v;
}

static bool
check_value(uint64_t seed, const char *got, size_t len)
{
	char	   *want = make_value(seed, len);
	bool		same = memcmp(want, got, len) == 0;

	free(want);
	return same;
}

static char *
seg_path(const char *dir, uint64_t number)
{
	char	   *p = malloc(strlen(dir) + 32);

	sprintf(p, NOKV_VLOG_FMT, dir, (ull) number);
	return p;
}

static uint64_t
file_size(const char *dir, uint64_t number)
{
	char	   *p = seg_path(dir, number);
	struct stat sb;
	uint64_t	sz = stat(p, &sb) == 0 ? (uint64_t) sb.st_size : UINT64_MAX;

	free(p);
	return sz;
}

static bool
seg_exists(const char *dir, uint64_t number)
{
	return file_size(dir, number) != UINT64_MAX;
}

/* xor one byte of a segment file */
static void
flip_byte(const char *dir, uint64_t number, uint64_t off)
{
	char	   *p = seg_path(dir, number);
	int			fd = open(p, O_RDWR);
	unsigned char c;

	if (fd < 0 || pread(fd, &c, 1, (off_t) off) != 1)
		tap_bail("cannot read %s", p);
	c ^= 0x5a;
	if (pwrite(fd, &c, 1, (off_t) off) != 1)
		tap_bail("cannot write %s", p);
	close(fd);
	free(p);
}

static void
truncate_seg(const char *dir, uint64_t number, uint64_t size)
{
	char	   *p = seg_path(dir, number);

	if (truncate(p, (off_t) size) != 0)
		tap_bail("cannot truncate %s", p);
	free(p);
}

/* sync, record in a fresh edit, apply to st, report committed */
static int
sync_commit(nokv_vlog_handle *h, nokv_manifest_state *st, nokv_version_edit *extra)
{
	nokv_version_edit e;
	nokv_error	err;
	int			rc;

	nokv_edit_init(&e);
	if (extra)
	{
		for (int i = 0; i < extra->n_vlog_discard; i++)
			nokv_edit_add_vlog_discard(&e, extra->vlog_discard[i].number,
									   extra->vlog_discard[i].amount);
		for (int i = 0; i < extra->n_vlog_deleted; i++)
			nokv_edit_delete_vlog_segment(&e, extra->vlog_deleted[i]);
	}
	rc = nokv_vlog_sync(h, &e, NULL, &err);
	if (rc == NOKV_OK)
		rc = nokv_manifest_state_apply(st, &e, &err);
	if (rc == NOKV_OK)
		nokv_vlog_edit_committed(h, &e);
	else
		tap_diag("sync_commit: %s", err.msg);
	nokv_edit_free(&e);
	return rc;
}

typedef struct rec_list
{
	int			n;
	int			cap;
	uint64_t   *offset;
	size_t	   *klen;
	size_t	   *vlen;
	uint64_t	sum;			/* xor of value hashes */
} rec_list;

static int
collect(void *arg, const char *ikey, size_t klen, const char *value, size_t vlen,
		uint64_t offset)
{
	rec_list   *l = arg;

	(void) ikey;
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 64;
		l->offset = realloc(l->offset, sizeof(uint64_t) * l->cap);
		l->klen = realloc(l->klen, sizeof(size_t) * l->cap);
		l->vlen = realloc(l->vlen, sizeof(size_t) * l->cap);
	}
	l->offset[l->n] = offset;
	l->klen[l->n] = klen;
	l->vlen[l->n] = vlen;
	l->n++;
	l->sum ^= nokv_hash32(value, vlen, 1) + vlen;
	return NOKV_OK;
}

static void
rec_list_free(rec_list *l)
{
	free(l->offset);
	free(l->klen);
	free(l->vlen);
	memset(l, 0, sizeof(*l));
}

/* ---------- pointers ---------- */

static void
test_vptr(void)
{
	nokv_vptr	cases[] = {
		{1, 16, 0}, {2, 17, 1}, {UINT64_MAX, UINT64_MAX, NOKV_MAX_VALUE_SIZE},
		{300, 1ull << 40, 4096}, {127, 128, 16383}
	};
	char		buf[NOKV_VPTR_MAX_ENCODED + 4];
	bool		all = true,
				strict = true;
	nokv_vptr	p,
				q;
	nokv_buf	rec = {0};
	size_t		n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		n = nokv_vptr_encode(buf, &cases[i]);
		if (n > NOKV_VPTR_MAX_ENCODED || !nokv_vptr_decode(buf, n, &p) ||
			p.segment != cases[i].segment || p.offset != cases[i].offset ||
			p.len != cases[i].len)
			all = false;
		/* every shorter prefix and one extra byte are rejected */
		for (size_t cut = 0; cut < n; cut++)
		{
			char	   *copy = malloc(cut ? cut : 1);

			memcpy(copy, buf, cut);
			if (nokv_vptr_decode(copy, cut, &q))
				strict = false;
			free(copy);
		}
		buf[n] = 0;
		if (nokv_vptr_decode(buf, n + 1, &q))
			strict = false;
	}
	ok(all, "pointers round-trip, extremes included");
	ok(strict, "truncated pointers and trailing bytes are rejected");
	n = nokv_vptr_encode(buf, &(nokv_vptr)
	{
		300, 16, 5
	});
	ok(n == 4 && (unsigned char) buf[0] == 0xac && buf[1] == 0x02 && buf[2] == 16 && buf[3] == 5,
	   "pointer (300, 16, 5) encodes as ac 02 10 05");

	n = nokv_vptr_encode(buf, &(nokv_vptr)
	{
		0, 16, 5
	});
	ok(!nokv_vptr_decode(buf, n, &q), "segment 0 is rejected");
	n = nokv_vptr_encode(buf, &(nokv_vptr)
	{
		3, 15, 5
	});
	ok(!nokv_vptr_decode(buf, n, &q), "an offset inside the segment header is rejected");
	n = nokv_vptr_encode(buf, &(nokv_vptr)
	{
		3, 16, NOKV_MAX_VALUE_SIZE + 1
	});
	ok(!nokv_vptr_decode(buf, n, &q), "a length above the maximum value size is rejected");
	memcpy(buf, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x10\x05", 14);
	ok(!nokv_vptr_decode(buf, 14, &q), "an overlong varint is rejected");

	p = (nokv_vptr)
	{
		7, 4096, 2000
	};
	nokv_vptr_value_record(&rec, 0, 0, &p);
	ok(rec.len >= 2 && (unsigned char) rec.data[0] == NOKV_VF_VPTR &&
	   nokv_vptr_decode(rec.data + 1, rec.len - 1, &q) && q.segment == 7 && q.offset == 4096 &&
	   q.len == 2000, "value record without TTL: flags VPTR, then the pointer");
	nokv_buf_reset(&rec);
	nokv_vptr_value_record(&rec, NOKV_VF_TTL, 300, &p);
	ok(rec.len >= 4 && (unsigned char) rec.data[0] == (NOKV_VF_VPTR | NOKV_VF_TTL) &&
	   (unsigned char) rec.data[1] == 0xac && rec.data[2] == 0x02 &&
	   nokv_vptr_decode(rec.data + 3, rec.len - 3, &q) && q.segment == 7,
	   "value record with TTL keeps the expiry before the pointer");
	nokv_buf_free(&rec);

	{
		uint64_t	num = 0;

		ok(nokv_vlog_parse_name("000123.vlog", &num) && num == 123, "canonical segment name parses");
		ok(nokv_vlog_parse_name("1234567.vlog", &num) && num == 1234567, "seven-digit name parses");
		ok(!nokv_vlog_parse_name("123.vlog", &num) && !nokv_vlog_parse_name("0000123.vlog", &num) &&
		   !nokv_vlog_parse_name("000123.vlog.tmp", &num) &&
		   !nokv_vlog_parse_name("00012a.vlog", &num) && !nokv_vlog_parse_name("000000.vlog", &num) &&
		   !nokv_vlog_parse_name(".vlog", &num) && !nokv_vlog_parse_name("000123.sst", &num),
		   "non-canonical names are not segments");
	}
}

/* ---------- append / read ---------- */

static void
test_round_trip(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	size_t		sizes[] = {1, 15, 16, 100, 1000, 4095, 4096, 4097, 65536, 1u << 20, 4u << 20, 0};
	int			nsz = (int) (sizeof(sizes) / sizeof(sizes[0]));
	nokv_vptr	ptr[16];
	char		keys[16][400];
	size_t		klens[16];
	nokv_buf	out = {0};
	nokv_error	err;
	bool		appended = true,
				read_key = true,
				read_nokey = true;
	rec_list	l = {0};
	uint64_t	valid_end = 0;
	nokv_vlog_stats st;
	nokv_vlog_head head;
	int			rc;

	env_init(&e, dir, 256u << 20, 16, 5);
	h = env_attach(&e);
	for (int i = 0; i < nsz; i++)
	{
		char	   *v = make_value((uint64_t) i, sizes[i]);

		if (i == 3)
		{
			/* a long key exercises the heap key buffer of the reader */
			char		u[300];

			memset(u, 'k', sizeof(u));
			nokv_ikey_encode(keys[i], 1, u, sizeof(u), 99, NOKV_KIND_PUT);
			klens[i] = nokv_ikey_size(sizeof(u));
		}
		else
			klens[i] = make_key(keys[i], "rt", i);
		rc = nokv_vlog_append(h, keys[i], klens[i], v, sizes[i], &ptr[i], &err);
		if (rc != NOKV_OK || ptr[i].segment != 5 || ptr[i].len != sizes[i])
		{
			appended = false;
			tap_diag("append %d: %s", i, rc ? err.msg : "bad pointer");
		}
		free(v);
	}
	ok(appended, "%d appends (1 B .. 4 MiB, and an empty value) land in segment 5", nsz);
	ok(ptr[0].offset == NOKV_VLOG_HEADER_SIZE, "the first record follows the 16-byte header");
	{
		bool		contiguous = true;

		for (int i = 1; i < nsz; i++)
			if (ptr[i].offset != ptr[i - 1].offset + nokv_vlog_record_size(klens[i - 1], sizes[i - 1]))
				contiguous = false;
		ok(contiguous, "records are contiguous: 12-byte header + key + value each");
	}

	for (int i = 0; i < nsz; i++)
	{
		rc = nokv_vlog_read(h, &ptr[i], keys[i], klens[i], &out, &err);
		if (rc != NOKV_OK || out.len != sizes[i] || !check_value((uint64_t) i, out.data, out.len))
		{
			read_key = false;
			tap_diag("read %d: %s", i, rc ? err.msg : "wrong value");
		}
		rc = nokv_vlog_read(h, &ptr[i], NULL, 0, &out, &err);
		if (rc != NOKV_OK || out.len != sizes[i] || !check_value((uint64_t) i, out.data, out.len))
			read_nokey = false;
	}
	ok(read_key, "every value reads back with its key checked");
	ok(read_nokey, "every value reads back without a key");

	rc = nokv_vlog_segment_iter(dir, 5, false, collect, &l, &valid_end, &err);
	ok(rc == NOKV_OK && l.n == nsz, "iteration finds all %d records", nsz);
	{
		bool		same = l.n == nsz;

		for (int i = 0; same && i < nsz; i++)
			if (l.offset[i] != ptr[i].offset || l.klen[i] != klens[i] || l.vlen[i] != sizes[i])
				same = false;
		ok(same, "iteration reports each record's offset and lengths");
	}
	ok(valid_end == file_size(dir, 5), "iteration's valid end is the file size");
	rec_list_free(&l);

	nokv_vlog_get_stats(&e.ctx, e.off, &st);
	ok(st.segments == 1 && st.appends == (uint64_t) nsz && st.head.segment == 5 &&
	   st.head.offset == file_size(dir, 5) && st.bytes == st.head.offset &&
	   st.reads == (uint64_t) nsz * 2 && st.durable.segment == 0,
	   "stats: one segment, appends, reads, head; nothing durable yet");

	rc = nokv_vlog_sync(h, NULL, &head, &err);
	nokv_vlog_get_stats(&e.ctx, e.off, &st);
	ok(rc == NOKV_OK && head.segment == 5 && head.offset == st.head.offset &&
	   st.durable.segment == 5 && st.durable.offset == head.offset && st.syncs == 1,
	   "sync returns the head and makes it the durable head");

	/* a second handle (another process would do the same) reads them too */
	{
		nokv_vlog_handle *h2 = env_attach(&e);

		rc = nokv_vlog_read(h2, &ptr[9], keys[9], klens[9], &out, &err);
		ok(rc == NOKV_OK && out.len == sizes[9] && check_value(9, out.data, out.len),
		   "a second handle reads what the first wrote");
		nokv_vlog_detach(h2);
	}

	/* argument checks */
	rc = nokv_vlog_append(h, "short", 5, "v", 1, &ptr[0], &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "append refuses a key shorter than an internal key");
	rc = nokv_vlog_read(h, &(nokv_vptr)
						{
						5, 8, 1
						}, NULL, 0, &out, &err);
	is_int(rc, NOKV_CORRUPTION, "a pointer into the segment header is corruption");

	nokv_buf_free(&out);
	nokv_vlog_detach(h);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- rolling ---------- */

static void
test_rolling(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_vptr	ptr[300];
	char		key[64];
	size_t		klen;
	nokv_error	err;
	nokv_buf	out = {0};
	bool		okall = true;
	uint64_t	seg_size = 64u << 10;
	int			nseg;
	nokv_vlog_segment_info info[64];
	nokv_manifest_state ms;
	int			rc = NOKV_OK;

	nokv_manifest_state_init(&ms);
	env_init(&e, dir, seg_size, 64, 10);
	h = env_attach(&e);
	for (int i = 0; i < 300 && rc == NOKV_OK; i++)
	{
		char	   *v = make_value((uint64_t) i, 1000);

		klen = make_key(key, "roll", i);
		rc = nokv_vlog_append(h, key, klen, v, 1000, &ptr[i], &err);
		free(v);
	}
	ok(rc == NOKV_OK, "300 appends of 1000-byte values");
	nseg = nokv_vlog_list_segments(&e.ctx, e.off, info, 64);
	ok(nseg >= 5, "they span %d segments of 64 KiB", nseg);
	for (int i = 0; i < nseg; i++)
		if (info[i].size > seg_size || info[i].number != (uint64_t) (10 + i) ||
			file_size(dir, info[i].number) != info[i].size || info[i].live ||
			info[i].active != (i == nseg - 1))
			okall = false;
	ok(okall, "every segment stays within the segment size, numbers come from the counter, only the last is active");
	okall = true;
	for (int i = 0; i < 300; i++)
	{
		klen = make_key(key, "roll", i);
		if (nokv_vlog_read(h, &ptr[i], key, klen, &out, &err) != NOKV_OK ||
			out.len != 1000 || !check_value((uint64_t) i, out.data, 1000))
			okall = false;
	}
	ok(okall, "every pointer still reads its value after rolling");

	/* a record bigger than a segment gets a segment of its own */
	{
		char	   *v = make_value(999, 200000);
		nokv_vptr	big,
					after;
		uint64_t	before = info[nseg - 1].number;

		klen = make_key(key, "big", 0);
		rc = nokv_vlog_append(h, key, klen, v, 200000, &big, &err);
		ok(rc == NOKV_OK && big.segment == before + 1 && big.offset == NOKV_VLOG_HEADER_SIZE,
		   "a 200 KB record starts a new segment");
		klen = make_key(key, "big", 1);
		rc = nokv_vlog_append(h, key, klen, v, 10, &after, &err);
		ok(rc == NOKV_OK && after.segment == before + 2, "the next record rolls again");
		rc = nokv_vlog_read(h, &big, NULL, 0, &out, &err);
		ok(rc == NOKV_OK && out.len == 200000 && check_value(999, out.data, 200000),
		   "the oversized record reads back");
		free(v);
	}

	/* sync into an edit: every segment with its size, and the head */
	{
		nokv_version_edit ed;
		nokv_vlog_head head;
		bool		sizes_ok = true;

		nokv_edit_init(&ed);
		rc = nokv_vlog_sync(h, &ed, &head, &err);
		nseg = nokv_vlog_list_segments(&e.ctx, e.off, info, 64);
		ok(rc == NOKV_OK && ed.has_vlog_head && ed.vlog_head_segment == head.segment &&
		   ed.vlog_head_offset == head.offset && ed.n_vlog_segments == nseg,
		   "sync records the head and all %d segments in the edit", nseg);
		for (int i = 0; i < ed.n_vlog_segments; i++)
			if (ed.vlog_segments[i].amount != file_size(dir, ed.vlog_segments[i].number))
				sizes_ok = false;
		ok(sizes_ok, "each recorded size is the segment's durable size");
		rc = nokv_manifest_state_apply(&ms, &ed, &err);
		ok(rc == NOKV_OK && ms.n_vlog == nseg && ms.vlog_head_segment == head.segment,
		   "the edit applies to a manifest state");
		ok(ms.next_file_number > head.segment, "the manifest's next file number passes every segment");
		nokv_vlog_edit_committed(h, &ed);
		nokv_edit_free(&ed);

		nokv_edit_init(&ed);
		rc = nokv_vlog_sync(h, &ed, NULL, &err);
		ok(rc == NOKV_OK && ed.n_vlog_segments == 0 && ed.has_vlog_head,
		   "after the commit, a sync with nothing new records only the head");
		nokv_edit_free(&ed);

		/* an uncommitted edit is repeated by the next sync */
		klen = make_key(key, "late", 0);
		rc = nokv_vlog_append(h, key, klen, "0123456789abcdef", 16, &ptr[0], &err);
		nokv_edit_init(&ed);
		rc |= nokv_vlog_sync(h, &ed, NULL, &err);
		ok(rc == NOKV_OK && ed.n_vlog_segments == 1, "a new append: the head segment is recorded again");
		nokv_edit_free(&ed);
		nokv_edit_init(&ed);
		rc = nokv_vlog_sync(h, &ed, NULL, &err);
		ok(rc == NOKV_OK && ed.n_vlog_segments == 1,
		   "without a commit, the next sync records it once more (a failed edit is never lost)");
		rc = nokv_manifest_state_apply(&ms, &ed, &err);
		nokv_vlog_edit_committed(h, &ed);
		nokv_edit_free(&ed);
	}

	/* fill_state reproduces the manifest's view */
	{
		nokv_manifest_state f;
		bool		same;

		nokv_manifest_state_init(&f);
		nokv_vlog_fill_state(h, &f);
		same = f.n_vlog == ms.n_vlog && f.vlog_head_segment == ms.vlog_head_segment &&
			f.vlog_head_offset == ms.vlog_head_offset;
		for (int i = 0; same && i < f.n_vlog; i++)
			same = f.vlog[i].number == ms.vlog[i].number && f.vlog[i].size == ms.vlog[i].size &&
				f.vlog[i].discard == ms.vlog[i].discard;
		ok(same, "fill_state gives exactly the manifest's value-log state (for rewrites)");
		nokv_manifest_state_free(&f);
	}

	nokv_buf_free(&out);
	nokv_manifest_state_free(&ms);
	nokv_vlog_detach(h);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- corruption ---------- */

static void
test_corruption(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_vptr	p[3];
	char		k[3][64];
	size_t		kl[3];
	nokv_buf	out = {0};
	nokv_error	err;
	int			rc;
	uint64_t	rec0;
	int			missed_key = 0,
				missed_nokey = 0,
				missed_iter = 0,
				bad_msg = 0,
				total = 0;
	char		where[64];

	env_init(&e, dir, 1u << 20, 8, 1);
	h = env_attach(&e);
	for (int i = 0; i < 3; i++)
	{
		char	   *v = make_value((uint64_t) i + 50, 40);

		kl[i] = make_key(k[i], "cor", i);
		if (nokv_vlog_append(h, k[i], kl[i], v, 40, &p[i], &err) != NOKV_OK)
			tap_bail("append failed: %s", err.msg);
		free(v);
	}
	if (nokv_vlog_sync(h, NULL, NULL, &err) != NOKV_OK)
		tap_bail("sync failed");
	rec0 = nokv_vlog_record_size(kl[1], 40);
	snprintf(where, sizeof(where), "offset %llu ", (ull) p[1].offset);

	/* every byte of the middle record, one at a time */
	for (uint64_t b = 0; b < rec0; b++)
	{
		uint64_t	at = p[1].offset + b;
		rec_list	l = {0};

		total++;
		flip_byte(dir, 1, at);
		nokv_error_clear(&err);
		rc = nokv_vlog_read(h, &p[1], k[1], kl[1], &out, &err);
		if (rc != NOKV_CORRUPTION || out.len != 0)
			missed_key++;
		else if (!strstr(err.msg, "000001.vlog") || !strstr(err.msg, where))
		{
			if (bad_msg++ == 0)
				tap_diag("message: %s", err.msg);
		}
		rc = nokv_vlog_read(h, &p[1], NULL, 0, &out, &err);
		if (rc != NOKV_CORRUPTION)
			missed_nokey++;
		rc = nokv_vlog_segment_iter(dir, 1, false, collect, &l, NULL, &err);
		if (rc != NOKV_CORRUPTION || l.n != 1)
			missed_iter++;
		rec_list_free(&l);
		flip_byte(dir, 1, at);
	}
	ok(p[1].offset == NOKV_VLOG_HEADER_SIZE + nokv_vlog_record_size(kl[0], 40),
	   "the middle record follows the first");
	ok(missed_key == 0, "each of %d flipped bytes of a record: keyed read is corruption (%d missed)",
	   total, missed_key);
	ok(bad_msg == 0, "the messages name the segment file and the record offset");
	ok(missed_nokey == 0, "each flipped byte: unkeyed read is corruption (%d missed)", missed_nokey);
	ok(missed_iter == 0, "each flipped byte: strict iteration stops with corruption after 1 good record (%d missed)",
	   missed_iter);

	/* neighbours are unaffected by damage to the middle record */
	flip_byte(dir, 1, p[1].offset + 30);
	rc = nokv_vlog_read(h, &p[0], k[0], kl[0], &out, &err);
	rc |= nokv_vlog_read(h, &p[2], k[2], kl[2], &out, &err);
	ok(rc == NOKV_OK && check_value(52, out.data, 40), "records around a damaged one still read");
	{
		rec_list	l = {0};
		uint64_t	end = 0;

		rc = nokv_vlog_segment_iter(dir, 1, true, collect, &l, &end, &err);
		ok(rc == NOKV_OK && l.n == 1 && end == p[1].offset,
		   "iterating as the active segment stops cleanly before the damage");
		rec_list_free(&l);
	}
	flip_byte(dir, 1, p[1].offset + 30);

	/* wrong expectations */
	rc = nokv_vlog_read(h, &p[1], k[0], kl[0], &out, &err);
	ok(rc == NOKV_CORRUPTION && strstr(err.msg, "another key"), "a pointer whose record holds another key is corruption");
	{
		char		shortk[64];
		size_t		sl;
		char		u[] = "cor-00000";

		nokv_ikey_encode(shortk, 0, u, strlen(u), 2, NOKV_KIND_PUT);
		sl = nokv_ikey_size(strlen(u));
		rc = nokv_vlog_read(h, &p[1], shortk, sl, &out, &err);
		ok(rc == NOKV_CORRUPTION, "a key of another length is corruption");
	}
	{
		nokv_vptr	q = p[1];

		q.len = 39;
		rc = nokv_vlog_read(h, &q, k[1], kl[1], &out, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "length"), "a pointer with the wrong length is corruption");
		rc = nokv_vlog_read(h, &q, NULL, 0, &out, &err);
		ok(rc == NOKV_CORRUPTION, "... also without a key");
		q = p[1];
		q.offset += 1;
		rc = nokv_vlog_read(h, &q, k[1], kl[1], &out, &err);
		ok(rc == NOKV_CORRUPTION, "a pointer to the wrong offset is corruption");
		q = p[2];
		q.offset = file_size(dir, 1) - 10;
		rc = nokv_vlog_read(h, &q, k[2], kl[2], &out, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "past the end"), "a pointer past the end of the file is corruption");
		q.offset = file_size(dir, 1) + 100;
		rc = nokv_vlog_read(h, &q, NULL, 0, &out, &err);
		ok(rc == NOKV_CORRUPTION, "... also without a key");
		q = p[0];
		q.segment = 77;
		rc = nokv_vlog_read(h, &q, k[0], kl[0], &out, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "missing") && strstr(err.msg, "000077.vlog"),
		   "a pointer to a missing segment is corruption naming the file");
	}

	/* a truncated last record */
	truncate_seg(dir, 1, file_size(dir, 1) - 5);
	rc = nokv_vlog_read(h, &p[2], k[2], kl[2], &out, &err);
	ok(rc == NOKV_CORRUPTION && out.len == 0, "a truncated record is corruption");
	{
		rec_list	l = {0};
		uint64_t	end = 0;

		snprintf(where, sizeof(where), "offset %llu ", (ull) p[2].offset);
		rc = nokv_vlog_segment_iter(dir, 1, false, collect, &l, &end, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, where), "strict iteration: corruption at the torn record");
		rec_list_free(&l);
		rc = nokv_vlog_segment_iter(dir, 1, true, collect, &l, &end, &err);
		ok(rc == NOKV_OK && l.n == 2 && end == p[2].offset, "active iteration: a torn tail ends cleanly");
		rec_list_free(&l);
	}

	/* segment header damage */
	{
		uint64_t	offs[] = {0, 7, 8, 12, 15};
		bool		all = true;

		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		{
			rec_list	l = {0};

			flip_byte(dir, 1, offs[i]);
			rc = nokv_vlog_segment_iter(dir, 1, true, collect, &l, NULL, &err);
			if (rc != NOKV_CORRUPTION || l.n != 0)
				all = false;
			flip_byte(dir, 1, offs[i]);
			rec_list_free(&l);
		}
		ok(all, "a damaged segment header (magic, version, number) is corruption even for the active segment");
		rc = nokv_vlog_segment_iter(dir, 2, true, collect, NULL, NULL, &err);
		is_int(rc, NOKV_NOT_FOUND, "iterating a segment that does not exist is not-found");
	}

	nokv_buf_free(&out);
	nokv_vlog_detach(h);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- recovery ---------- */

static void
test_recovery(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e,
				e2;
	nokv_vlog_handle *h,
			   *h2;
	nokv_manifest_state ms;
	nokv_vptr	acked[40],
				unacked[60];
	char		key[64];
	size_t		klen;
	nokv_buf	out = {0};
	nokv_error	err;
	nokv_vlog_stats st;
	uint64_t	head_seg,
				head_off,
				orphan;
	int			rc = NOKV_OK;

	nokv_manifest_state_init(&ms);
	env_init(&e, dir, 64u << 10, 32, 100);
	h = env_attach(&e);
	for (int i = 0; i < 40 && rc == NOKV_OK; i++)
	{
		char	   *v = make_value((uint64_t) i, 3000);

		klen = make_key(key, "ack", i);
		rc = nokv_vlog_append(h, key, klen, v, 3000, &acked[i], &err);
		free(v);
	}
	rc |= sync_commit(h, &ms, NULL);
	head_seg = ms.vlog_head_segment;
	head_off = ms.vlog_head_offset;
	ok(rc == NOKV_OK && head_seg == acked[39].segment &&
	   head_off == acked[39].offset + nokv_vlog_record_size(klen, 3000),
	   "40 acknowledged values: the manifest head is just past the last one");

	/* more appends that never reach the manifest: rest of the head segment + an orphan */
	for (int i = 0; i < 60 && rc == NOKV_OK; i++)
	{
		char	   *v = make_value((uint64_t) i + 1000, 3000);

		klen = make_key(key, "unack", i);
		rc = nokv_vlog_append(h, key, klen, v, 3000, &unacked[i], &err);
		free(v);
	}
	orphan = unacked[59].segment;
	ok(rc == NOKV_OK && orphan > head_seg && file_size(dir, head_seg) > head_off,
	   "unacknowledged appends extend the head segment and roll into segment %llu", (ull) orphan);
	/* the orphan gets synced (a flush that crashed after its sync) */
	rc = nokv_vlog_sync(h, NULL, NULL, &err);
	nokv_vlog_detach(h);

	/* a torn record at the very end of the head segment as well */
	{
		char	   *p = seg_path(dir, head_seg);
		int			fd = open(p, O_WRONLY | O_APPEND);

		if (fd < 0 || write(fd, "\x01\x02\x03", 3) != 3)
			tap_bail("cannot append garbage");
		close(fd);
		free(p);
	}
	{
		char		p[4200];

		/* names that are not segments stay */
		sprintf(p, "%s/1.vlog", dir);
		close(open(p, O_CREAT | O_WRONLY, 0600));
		sprintf(p, "%s/000999.vlog.tmp", dir);
		close(open(p, O_CREAT | O_WRONLY, 0600));
		/* a canonical orphan that is not even a valid segment */
		sprintf(p, "%s/000998.vlog", dir);
		close(open(p, O_CREAT | O_WRONLY, 0600));
	}

	/* restart */
	env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
	h2 = env_attach(&e2);
	rc = nokv_vlog_recover(h2, &ms, &err);
	ok(rc == NOKV_OK, "recovery succeeds%s%s", rc ? ": " : "", rc ? err.msg : "");
	ok(file_size(dir, head_seg) == head_off, "the head segment is trimmed to the durable head");
	ok(!seg_exists(dir, orphan) && !seg_exists(dir, 998), "segments the manifest does not list are deleted");
	{
		char		p[4200];
		struct stat sb;
		bool		kept;

		sprintf(p, "%s/1.vlog", dir);
		kept = stat(p, &sb) == 0;
		sprintf(p, "%s/000999.vlog.tmp", dir);
		kept = kept && stat(p, &sb) == 0;
		ok(kept, "files that are not canonical segment names are left alone");
	}
	nokv_vlog_get_stats(&e2.ctx, e2.off, &st);
	ok(st.orphans_deleted >= 2 && st.trimmed_bytes > 0 && st.head.segment == head_seg &&
	   st.head.offset == head_off && st.durable.segment == head_seg && st.manifest.offset == head_off &&
	   st.segments == (uint64_t) ms.n_vlog,
	   "stats after recovery: orphans, trimmed bytes, head = durable = manifest head");
	{
		bool		all = true;

		for (int i = 0; i < 40; i++)
		{
			klen = make_key(key, "ack", i);
			if (nokv_vlog_read(h2, &acked[i], key, klen, &out, &err) != NOKV_OK ||
				!check_value((uint64_t) i, out.data, 3000))
				all = false;
		}
		ok(all, "every acknowledged value survives");
	}
	{
		rec_list	l = {0};
		uint64_t	end = 0;

		rc = nokv_vlog_segment_iter(dir, head_seg, false, collect, &l, &end, &err);
		ok(rc == NOKV_OK && end == head_off, "the trimmed head segment iterates cleanly to its end");
		rec_list_free(&l);
	}
	{
		nokv_vptr	p;

		klen = make_key(key, "after", 0);
		rc = nokv_vlog_append(h2, key, klen, "0123456789abcdefghij", 20, &p, &err);
		ok(rc == NOKV_OK && p.segment == head_seg && p.offset == head_off,
		   "appends resume at the durable head");
		rc = nokv_vlog_read(h2, &p, key, klen, &out, &err);
		ok(rc == NOKV_OK && out.len == 20 && memcmp(out.data, "0123456789abcdefghij", 20) == 0,
		   "... and read back");
		rc = sync_commit(h2, &ms, NULL);
		ok(rc == NOKV_OK, "and commit");
	}
	nokv_vlog_detach(h2);
	env_free(&e2);

	/* recovering twice in a row changes nothing */
	env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
	h2 = env_attach(&e2);
	rc = nokv_vlog_recover(h2, &ms, &err);
	nokv_vlog_get_stats(&e2.ctx, e2.off, &st);
	ok(rc == NOKV_OK && st.orphans_deleted == 0 && st.trimmed_bytes == 0,
	   "a clean second recovery deletes and trims nothing");
	nokv_vlog_detach(h2);
	env_free(&e2);

	/* refusals */
	{
		nokv_manifest_state bad;
		nokv_version_edit ed;
		uint64_t	sealed = ms.vlog[0].number;
		char	   *p = seg_path(dir, sealed);
		char	   *saved = malloc(strlen(p) + 8);

		sprintf(saved, "%s.save", p);

		/* missing */
		if (rename(p, saved) != 0)
			tap_bail("rename");
		env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
		h2 = env_attach(&e2);
		rc = nokv_vlog_recover(h2, &ms, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "missing") && strstr(err.msg, p),
		   "a segment the manifest lists but the directory lacks is corruption");
		nokv_vlog_detach(h2);
		env_free(&e2);
		if (rename(saved, p) != 0)
			tap_bail("rename back");

		/* short (a sealed segment) */
		{
			uint64_t	full = file_size(dir, sealed);
			char	   *data = malloc(full);
			int			fd = open(p, O_RDWR);

			if (fd < 0 || pread(fd, data, full, 0) != (ssize_t) full)
				tap_bail("read");
			close(fd);
			truncate_seg(dir, sealed, full - 1);
			env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
			h2 = env_attach(&e2);
			rc = nokv_vlog_recover(h2, &ms, &err);
			ok(rc == NOKV_CORRUPTION && strstr(err.msg, "fewer than"),
			   "a segment shorter than its recorded size is corruption");
			nokv_vlog_detach(h2);
			env_free(&e2);
			fd = open(p, O_RDWR);
			if (fd < 0 || pwrite(fd, data, full, 0) != (ssize_t) full)
				tap_bail("restore");
			close(fd);
			free(data);
		}

		/* the head segment shorter than the head */
		truncate_seg(dir, ms.vlog_head_segment, ms.vlog_head_offset - 1);
		env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
		h2 = env_attach(&e2);
		rc = nokv_vlog_recover(h2, &ms, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "fewer than"),
		   "a head segment shorter than the durable head is corruption (acknowledged data lost)");
		nokv_vlog_detach(h2);
		env_free(&e2);

		/* a damaged header */
		flip_byte(dir, sealed, 12);
		env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
		h2 = env_attach(&e2);
		rc = nokv_vlog_recover(h2, &ms, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "file number"),
		   "a listed segment with a wrong header is corruption");
		nokv_vlog_detach(h2);
		env_free(&e2);
		flip_byte(dir, sealed, 12);

		/* too many segments for the table */
		env_init(&e2, dir, 64u << 10, 1, ms.next_file_number);
		h2 = env_attach(&e2);
		rc = nokv_vlog_recover(h2, &ms, &err);
		ok(rc == NOKV_NO_SPACE, "more listed segments than max_vlog_segments is no-space");
		nokv_vlog_detach(h2);
		env_free(&e2);

		/* a state whose head names an unlisted segment (hand-built) */
		nokv_manifest_state_init(&bad);
		nokv_manifest_state_to_edit(&ms, &ed);
		rc = nokv_manifest_state_apply(&bad, &ed, &err);
		nokv_edit_free(&ed);
		bad.vlog_head_segment = 12345;
		env_init(&e2, dir, 64u << 10, 32, ms.next_file_number);
		h2 = env_attach(&e2);
		rc = nokv_vlog_recover(h2, &bad, &err);
		ok(rc == NOKV_CORRUPTION, "a head naming an unlisted segment is corruption");
		nokv_vlog_detach(h2);
		env_free(&e2);
		nokv_manifest_state_free(&bad);
		free(saved);
		free(p);
	}

	nokv_buf_free(&out);
	nokv_manifest_state_free(&ms);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

/*
 * A crash between a segment's creation and its header reaching disk
 * leaves a file shorter than a header: recovery deletes it as an orphan.
 * A crash before any value-log edit leaves segments and an empty manifest.
 */
static void
test_recovery_edges(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_manifest_state ms;
	nokv_error	err;
	nokv_vptr	p;
	char		key[64];
	size_t		klen = make_key(key, "edge", 0);
	int			rc;

	nokv_manifest_state_init(&ms);
	env_init(&e, dir, 1u << 20, 8, 7);
	h = env_attach(&e);
	rc = nokv_vlog_append(h, key, klen, "valuevaluevalue!", 16, &p, &err);
	nokv_vlog_detach(h);
	env_free(&e);
	truncate_seg(dir, 7, 9);

	env_init(&e, dir, 1u << 20, 8, 8);
	h = env_attach(&e);
	rc |= nokv_vlog_recover(h, &ms, &err);
	ok(rc == NOKV_OK && !seg_exists(dir, 7),
	   "with no value-log state in the manifest, every segment (even a headerless one) is an orphan");
	rc = nokv_vlog_append(h, key, klen, "valuevaluevalue!", 16, &p, &err);
	ok(rc == NOKV_OK && p.segment == 8 && p.offset == 16, "the first append after that creates a new segment");
	{
		rec_list	l = {0};
		uint64_t	end;

		/* a header-only active segment iterates to nothing */
		truncate_seg(dir, 8, 16);
		rc = nokv_vlog_segment_iter(dir, 8, true, collect, &l, &end, &err);
		ok(rc == NOKV_OK && l.n == 0 && end == 16, "a header-only segment has no records");
		truncate_seg(dir, 8, 10);
		rc = nokv_vlog_segment_iter(dir, 8, true, collect, &l, &end, &err);
		ok(rc == NOKV_OK && l.n == 0 && end == 0, "an active segment shorter than a header ends cleanly");
		rc = nokv_vlog_segment_iter(dir, 8, false, collect, &l, &end, &err);
		ok(rc == NOKV_CORRUPTION, "a sealed one is corruption");
		rec_list_free(&l);
	}
	nokv_vlog_detach(h);
	env_free(&e);
	nokv_manifest_state_free(&ms);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- discard, GC pick, deletion ---------- */

static void
test_discard_gc(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_manifest_state ms;
	nokv_vlog_segment_info info[16];
	nokv_version_edit extra;
	nokv_error	err;
	char		key[64];
	size_t		klen;
	nokv_vptr	p[40];
	uint64_t	pick = 0,
				rsize;
	nokv_buf	buf = {0};
	int			n,
				rc = NOKV_OK;

	nokv_manifest_state_init(&ms);
	env_init(&e, dir, 64u << 10, 16, 20);
	h = env_attach(&e);
	/* 4 sealed segments of 10 records (6000-byte values) + an active one */
	for (int i = 0; i < 40 && rc == NOKV_OK; i++)
	{
		char	   *v = make_value((uint64_t) i, 6000);

		klen = make_key(key, "gc", i);
		rc = nokv_vlog_append(h, key, klen, v, 6000, &p[i], &err);
		free(v);
	}
	rsize = nokv_vlog_record_size(klen, 6000);
	rc |= sync_commit(h, &ms, NULL);
	n = nokv_vlog_list_segments(&e.ctx, e.off, info, 16);
	ok(rc == NOKV_OK && n == 4 && info[0].live && info[3].active && p[39].segment == 23,
	   "40 records over segments 20..23, all live in the manifest");
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.01, &pick);
	is_int(rc, NOKV_NOT_FOUND, "no discard: nothing to pick");

	/* compaction drops pointers: increments in its edit */
	nokv_edit_init(&extra);
	nokv_edit_add_vlog_discard(&extra, 20, rsize * 3);
	nokv_edit_add_vlog_discard(&extra, 21, rsize * 8);
	nokv_edit_add_vlog_discard(&extra, 21, rsize * 1);	/* merged: 9 */
	nokv_edit_add_vlog_discard(&extra, 23, rsize * 10); /* the active one */
	nokv_edit_add_vlog_discard(&extra, 555, 100);	/* unknown: ignored */
	ok(extra.n_vlog_discard == 4 && extra.vlog_discard[1].amount == rsize * 9,
	   "discard increments of one segment merge in the edit");
	rc = sync_commit(h, &ms, &extra);
	nokv_edit_free(&extra);
	n = nokv_vlog_list_segments(&e.ctx, e.off, info, 16);
	ok(rc == NOKV_OK && info[0].discard == rsize * 3 && info[1].discard == rsize * 9 &&
	   info[2].discard == 0 && info[3].discard == rsize * 10,
	   "committed increments are exact per segment");
	ok(nokv_manifest_state_vlog(&ms, 21)->discard == rsize * 9 &&
	   nokv_manifest_state_vlog(&ms, 20)->discard == rsize * 3,
	   "and identical in the manifest state");
	ok(info[1].discard_ratio > 0.89 && info[1].discard_ratio < 0.91,
	   "segment 21's discard ratio is 0.9 (%.3f)", info[1].discard_ratio);
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.5, &pick);
	ok(rc == NOKV_OK && pick == 21, "GC picks segment 21 (highest ratio; the fully discarded active one never)");
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.95, &pick);
	is_int(rc, NOKV_NOT_FOUND, "no sealed segment reaches 0.95");
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.2, &pick);
	ok(rc == NOKV_OK && pick == 21, "the highest ratio wins over lower qualifying ones");

	nokv_vlog_add_discard(&e.ctx, e.off, 20, rsize * 6);
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.5, &pick);
	ok(rc == NOKV_OK && pick == 20, "a tie (0.9 each) goes to the older segment");
	nokv_vlog_add_discard(&e.ctx, e.off, 21, rsize * 1);
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.5, &pick);
	ok(rc == NOKV_OK && pick == 21, "raising segment 21 to 1.0 makes it the pick");

	/* lifecycle: obsolete, delete refused until the deletion is committed */
	is_int(nokv_vlog_mark_obsolete(&e.ctx, e.off, 23), NOKV_INVALID_ARGUMENT,
		   "the active segment cannot be marked obsolete");
	is_int(nokv_vlog_mark_obsolete(&e.ctx, e.off, 99), NOKV_NOT_FOUND, "an unknown segment is not found");
	is_int(nokv_vlog_mark_obsolete(&e.ctx, e.off, 21), NOKV_OK, "segment 21 marked obsolete");
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.5, &pick);
	ok(rc == NOKV_OK && pick == 20, "an obsolete segment is not picked again");
	is_int(nokv_vlog_mark_obsolete(&e.ctx, e.off, 20), NOKV_OK, "segment 20 marked obsolete");
	rc = nokv_vlog_pick_gc(&e.ctx, e.off, 0.5, &pick);
	is_int(rc, NOKV_NOT_FOUND, "with both obsolete, nothing qualifies");
	rc = nokv_vlog_delete_segment(h, 20, &err);
	ok(rc == NOKV_INVALID_ARGUMENT && seg_exists(dir, 20) && strstr(err.msg, "manifest"),
	   "deleting before the manifest has dropped it is refused");
	rc = nokv_vlog_delete_segment(h, 23, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "deleting the active segment is refused");

	{
		nokv_vlog_stats st;
		nokv_vptr	q;

		nokv_edit_init(&extra);
		nokv_edit_delete_vlog_segment(&extra, 20);
		nokv_edit_delete_vlog_segment(&extra, 20);
		ok(extra.n_vlog_deleted == 1, "a deletion is recorded once per edit");
		rc = sync_commit(h, &ms, &extra);
		nokv_edit_free(&extra);
		ok(rc == NOKV_OK && nokv_manifest_state_vlog(&ms, 20) == NULL, "the deletion applies to the manifest state");
		/* read through the cache first, so deletion must close our descriptor */
		klen = make_key(key, "gc", 0);
		rc = nokv_vlog_read(h, &p[0], key, klen, &buf, &err);
		ok(rc == NOKV_OK, "an obsolete segment still reads");
		rc = nokv_vlog_delete_segment(h, 20, &err);
		ok(rc == NOKV_OK && !seg_exists(dir, 20), "after the commit, delete unlinks segment 20");
		n = nokv_vlog_list_segments(&e.ctx, e.off, info, 16);
		nokv_vlog_get_stats(&e.ctx, e.off, &st);
		ok(n == 3 && info[0].number == 21 && st.segments_deleted == 1, "its slot is free, stats count it");
		rc = nokv_vlog_read(h, &p[0], key, klen, &buf, &err);
		ok(rc == NOKV_CORRUPTION, "a stale pointer into a deleted segment is corruption, not garbage");
		is_int(nokv_vlog_delete_segment(h, 20, &err), NOKV_INVALID_ARGUMENT, "deleting twice is refused");

		/* the slot is reusable */
		klen = make_key(key, "gc", 100);
		rc = nokv_vlog_append(h, key, klen, "x", 1, &q, &err);
		ok(rc == NOKV_OK, "appending still works");
	}

	/* recovery of the discard counts from the manifest, and a rewrite */
	{
		env			e2;
		nokv_vlog_handle *h2;
		nokv_manifest_state f;
		nokv_version_edit snap;

		rc = sync_commit(h, &ms, NULL);
		env_init(&e2, dir, 64u << 10, 16, ms.next_file_number);
		h2 = env_attach(&e2);
		rc |= nokv_vlog_recover(h2, &ms, &err);
		n = nokv_vlog_list_segments(&e2.ctx, e2.off, info, 16);
		ok(rc == NOKV_OK && n == 3 && info[0].number == 21 && info[0].discard == rsize * 9 &&
		   info[2].discard == rsize * 10 && info[2].active,
		   "discard bytes survive recovery exactly (from the manifest)");
		rc = nokv_vlog_pick_gc(&e2.ctx, e2.off, 0.5, &pick);
		ok(rc == NOKV_OK && pick == 21, "GC picks the same segment after a restart");

		nokv_manifest_state_init(&f);
		nokv_vlog_fill_state(h2, &f);
		nokv_manifest_state_to_edit(&f, &snap);
		nokv_manifest_state_free(&f);
		nokv_manifest_state_init(&f);
		rc = nokv_manifest_state_apply(&f, &snap, &err);
		ok(rc == NOKV_OK && f.n_vlog == ms.n_vlog && f.vlog_head_segment == ms.vlog_head_segment &&
		   f.vlog_head_offset == ms.vlog_head_offset &&
		   nokv_manifest_state_vlog(&f, 21)->discard == rsize * 9,
		   "a rewrite snapshot (fill_state + to_edit) reproduces segments, head and discard");
		nokv_edit_free(&snap);
		nokv_manifest_state_free(&f);
		nokv_vlog_detach(h2);
		env_free(&e2);
	}

	nokv_buf_free(&buf);
	nokv_manifest_state_free(&ms);
	nokv_vlog_detach(h);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- limits and failures ---------- */

static void
test_limits(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_error	err;
	char		key[64];
	size_t		klen = make_key(key, "lim", 0);
	char	   *v = make_value(1, 40200);
	nokv_vptr	p;
	nokv_buf	out = {0};
	int			rc = NOKV_OK,
				i;

	/* 4 slots of 64 KiB: the 5th segment does not fit */
	env_init(&e, dir, 64u << 10, 4, 1);
	h = env_attach(&e);
	for (i = 0; i < 10 && rc == NOKV_OK; i++)
		rc = nokv_vlog_append(h, key, klen, v, 40000, &p, &err);
	ok(rc == NOKV_NO_SPACE && i == 5 && strstr(err.msg, "max_vlog_segments"),
	   "with every slot in use, rolling fails with no-space");
	rc = nokv_vlog_read(h, &p, key, klen, &out, &err);
	ok(rc == NOKV_OK && p.segment == 4, "the last good record still reads");
	nokv_vlog_detach(h);
	env_free(&e);

	/* a failing write (RLIMIT_FSIZE): nothing recorded, the next append reuses the offset */
	{
		struct rlimit old,
					lim;
		nokv_vptr	first,
					again;
		nokv_vlog_stats st;
		void		(*prev) (int) = signal(SIGXFSZ, SIG_IGN);

		env_init(&e, dir, 1u << 20, 8, 50);
		h = env_attach(&e);
		rc = nokv_vlog_append(h, key, klen, v, 1000, &first, &err);
		getrlimit(RLIMIT_FSIZE, &old);
		lim = old;
		lim.rlim_cur = first.offset + 1012 + klen + 500;
		setrlimit(RLIMIT_FSIZE, &lim);
		rc = nokv_vlog_append(h, key, klen, v, 20000, &p, &err);
		setrlimit(RLIMIT_FSIZE, &old);
		signal(SIGXFSZ, prev);
		ok(rc == NOKV_IO_ERROR, "an append hitting the file-size limit fails (%s)", err.msg);
		nokv_vlog_get_stats(&e.ctx, e.off, &st);
		ok(st.head.offset == first.offset + nokv_vlog_record_size(klen, 1000) && st.appends == 1,
		   "the head did not move");
		rc = nokv_vlog_append(h, key, klen, v, 3000, &again, &err);
		ok(rc == NOKV_OK && again.segment == first.segment &&
		   again.offset == st.head.offset, "the next append goes where the failed one was");
		rc = nokv_vlog_read(h, &again, key, klen, &out, &err);
		ok(rc == NOKV_OK && out.len == 3000 && memcmp(out.data, v, 3000) == 0, "and reads back");
		{
			rec_list	l = {0};

			rc = nokv_vlog_segment_iter(dir, 50, false, collect, &l, NULL, &err);
			ok(rc == NOKV_OK && l.n == 2, "the segment holds exactly the two good records");
			rec_list_free(&l);
		}
		nokv_vlog_detach(h);
		env_free(&e);
	}

	/* many segments: more than the 64-entry read-descriptor cache */
	{
		nokv_vptr	ptrs[100];
		bool		all = true;

		env_init(&e, dir, 64u << 10, 128, 1000);
		h = env_attach(&e);
		rc = NOKV_OK;
		for (i = 0; i < 100 && rc == NOKV_OK; i++)
		{
			char		k2[64];
			size_t		kl2 = make_key(k2, "many", i);

			rc = nokv_vlog_append(h, k2, kl2, v + i, 40000, &ptrs[i], &err);
		}
		ok(rc == NOKV_OK && ptrs[99].segment == 1099, "100 segments");
		for (int round = 0; round < 3; round++)
			for (i = 0; i < 100; i++)
			{
				char		k2[64];
				size_t		kl2 = make_key(k2, "many", (i * 37) % 100);

				if (nokv_vlog_read(h, &ptrs[(i * 37) % 100], k2, kl2, &out, &err) != NOKV_OK ||
					memcmp(out.data, v + (i * 37) % 100, 16) != 0)
					all = false;
			}
		ok(all, "reads across 100 segments through a 64-descriptor cache");
		nokv_vlog_detach(h);
		env_free(&e);
	}

	nokv_buf_free(&out);
	free(v);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- several processes, several threads ---------- */

#define NCHILD		4
#define PER_CHILD	250

typedef struct shared_ptrs
{
	nokv_vptr	p[NCHILD][PER_CHILD];
	_Atomic int done[NCHILD];
} shared_ptrs;

static size_t
mp_len(int c, int i)
{
	return (size_t) (20 + ((c * 7919 + i * 104729) % 3000));
}

static void
child_main(env *e, shared_ptrs *sp, int c)
{
	nokv_vlog_handle *h = env_attach(e);
	char		tag[16];
	nokv_error	err;
	nokv_buf	out = {0};

	snprintf(tag, sizeof(tag), "c%d", c);
	for (int i = 0; i < PER_CHILD; i++)
	{
		char		key[64];
		size_t		klen = make_key(key, tag, i);
		size_t		len = mp_len(c, i);
		char	   *v = make_value((uint64_t) (c * 100000 + i), len);

		if (nokv_vlog_append(h, key, klen, v, len, &sp->p[c][i], &err) != NOKV_OK)
		{
			fprintf(stderr, "child %d append %d: %s\n", c, i, err.msg);
			_exit(2);
		}
		free(v);
		if (i % 50 == 49 && nokv_vlog_sync(h, NULL, NULL, &err) != NOKV_OK)
			_exit(3);
		/* read back a random earlier value of ours */
		if (i > 0)
		{
			int			j = (int) ((unsigned) (i * 31) % (unsigned) i);

			klen = make_key(key, tag, j);
			if (nokv_vlog_read(h, &sp->p[c][j], key, klen, &out, &err) != NOKV_OK ||
				!check_value((uint64_t) (c * 100000 + j), out.data, mp_len(c, j)))
			{
				fprintf(stderr, "child %d read %d: %s\n", c, j, err.msg);
				_exit(4);
			}
		}
	}
	nokv_buf_free(&out);
	nokv_vlog_detach(h);
	_exit(0);
}

static int
count_cb(void *arg, const char *ikey, size_t klen, const char *value, size_t vlen,
		 uint64_t offset)
{
	(void) ikey;
	(void) klen;
	(void) value;
	(void) vlen;
	(void) offset;
	(*(int *) arg)++;
	return NOKV_OK;
}

static void
test_multiprocess(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	shared_ptrs *sp = mmap(NULL, sizeof(shared_ptrs), PROT_READ | PROT_WRITE,
						   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t		pids[NCHILD];
	bool		children_ok = true,
				all = true;
	nokv_vlog_handle *h;
	nokv_buf	out = {0};
	nokv_error	err;
	nokv_vlog_segment_info info[256];
	int			nseg,
				records = 0;
	int			rc = NOKV_OK;

	memset(sp, 0, sizeof(*sp));
	env_init(&e, dir, 128u << 10, 256, 1);
	for (int c = 0; c < NCHILD; c++)
	{
		pids[c] = fork();
		if (pids[c] == 0)
			child_main(&e, sp, c);
		if (pids[c] < 0)
			tap_bail("fork failed");
	}
	for (int c = 0; c < NCHILD; c++)
	{
		int			status;

		if (waitpid(pids[c], &status, 0) != pids[c] || !WIFEXITED(status) ||
			WEXITSTATUS(status) != 0)
			children_ok = false;
	}
	ok(children_ok, "%d processes appended %d records each, reading their own back", NCHILD, PER_CHILD);

	h = env_attach(&e);
	for (int c = 0; c < NCHILD; c++)
	{
		char		tag[16];

		snprintf(tag, sizeof(tag), "c%d", c);
		for (int i = 0; i < PER_CHILD; i++)
		{
			char		key[64];
			size_t		klen = make_key(key, tag, i);

			if (nokv_vlog_read(h, &sp->p[c][i], key, klen, &out, &err) != NOKV_OK ||
				out.len != mp_len(c, i) ||
				!check_value((uint64_t) (c * 100000 + i), out.data, out.len))
			{
				if (all)
					tap_diag("c%d/%d: %s", c, i, err.msg);
				all = false;
			}
		}
	}
	ok(all, "the parent reads every record of every child");
	nseg = nokv_vlog_list_segments(&e.ctx, e.off, info, 256);
	for (int s = 0; s < nseg && rc == NOKV_OK; s++)
	{
		uint64_t	end = 0;

		rc = nokv_vlog_segment_iter(dir, info[s].number, false, count_cb, &records, &end, &err);
		if (rc == NOKV_OK && end != info[s].size)
			rc = NOKV_CORRUPTION;
	}
	ok(rc == NOKV_OK && records == NCHILD * PER_CHILD,
	   "strict iteration of all %d segments finds exactly %d records (appends never interleave)",
	   nseg, records);
	{
		nokv_version_edit ed;
		nokv_manifest_state ms;

		nokv_edit_init(&ed);
		nokv_manifest_state_init(&ms);
		rc = nokv_vlog_sync(h, &ed, NULL, &err);
		rc |= nokv_manifest_state_apply(&ms, &ed, &err);
		ok(rc == NOKV_OK && ed.n_vlog_segments == nseg,
		   "a sync after the children's partial syncs records every segment");
		nokv_edit_free(&ed);
		nokv_manifest_state_free(&ms);
	}

	nokv_buf_free(&out);
	nokv_vlog_detach(h);
	munmap(sp, sizeof(shared_ptrs));
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

typedef struct thr_arg
{
	nokv_vlog_handle *h;
	nokv_vptr  *ptrs;
	_Atomic int *count;
	int			id;
	bool		failed;
} thr_arg;

static void *
thr_writer(void *a)
{
	thr_arg    *t = a;
	nokv_error	err;

	for (int i = 0; i < 400; i++)
	{
		char		key[64];
		size_t		klen = make_key(key, "thr", i);
		char	   *v = make_value((uint64_t) i, 500 + (size_t) i);

		if (nokv_vlog_append(t->h, key, klen, v, 500 + (size_t) i, &t->ptrs[i], &err) != NOKV_OK)
			t->failed = true;
		free(v);
		atomic_store(t->count, i + 1);
	}
	return NULL;
}

static void *
thr_reader(void *a)
{
	thr_arg    *t = a;
	nokv_buf	out = {0};
	nokv_error	err;
	uint64_t	s = (uint64_t) t->id;

	for (int round = 0; round < 3000; round++)
	{
		int			n = atomic_load(t->count);
		int			i;
		char		key[64];
		size_t		klen;

		if (n == 0)
			continue;
		i = (int) (splitmix64(&s) % (uint64_t) n);
		klen = make_key(key, "thr", i);
		if (nokv_vlog_read(t->h, &t->ptrs[i], key, klen, &out, &err) != NOKV_OK ||
			!check_value((uint64_t) i, out.data, 500 + (size_t) i))
			t->failed = true;
	}
	nokv_buf_free(&out);
	return NULL;
}

static void
test_threads(void)
{
	char	   *dir = tap_tmpdir("vlog");
	env			e;
	nokv_vlog_handle *h;
	nokv_vptr	ptrs[400];
	_Atomic int count = 0;
	pthread_t	tid[5];
	thr_arg		args[5];
	bool		failed = false;

	env_init(&e, dir, 64u << 10, 64, 1);
	h = env_attach(&e);
	for (int i = 0; i < 5; i++)
	{
		args[i] = (thr_arg)
		{
			.h = h,.ptrs = ptrs,.count = &count,.id = i
		};
		pthread_create(&tid[i], NULL, i == 0 ? thr_writer : thr_reader, &args[i]);
	}
	for (int i = 0; i < 5; i++)
	{
		pthread_join(tid[i], NULL);
		failed |= args[i].failed;
	}
	ok(!failed, "one handle shared by a writer thread and 4 reader threads (rolling segments meanwhile)");
	nokv_vlog_detach(h);
	env_free(&e);
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	test_vptr();
	test_round_trip();
	test_rolling();
	test_corruption();
	test_recovery();
	test_recovery_edges();
	test_discard_gc();
	test_limits();
	test_multiprocess();
	test_threads();
	return tap_done();
}
