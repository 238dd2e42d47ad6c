/*-------------------------------------------------------------------------
 *
 * vlog.c
 *	  The value log: segment files, value pointers, discard accounting.
 *
 * Large values leave the LSM tree when their memtable is flushed: the flush
 * appends them here, syncs, then writes an SST holding pointers, then the
 * manifest edit that records the durable head.  The WAL always carries the
 * whole value, so nothing here is on the commit path.
 *
 * Shared state lives in the region (vlog_shared, under NOKV_LOCK_VLOG): the
 * active segment, the last durable head, the head the manifest holds, and a
 * fixed table of segment slots.  Each slot tracks three sizes that only
 * grow: bytes written, bytes known durable, bytes the manifest records.  A
 * sync reports into an edit exactly the segments whose durable size the
 * manifest lacks, and only a committed edit advances "recorded", so an edit
 * that failed is simply repeated by the next sync: correctness never
 * depends on the caller getting the bookkeeping right.
 *
 * Appends hold NOKV_LOCK_VLOG across their pwrite: the record goes at the
 * head, and only a fully written record advances it, so a sync can never
 * report a head covering bytes some other writer has reserved but not yet
 * written, and a failed write leaves nothing behind that counts.
 *
 * Discard bytes are exact: they arrive only through committed manifest
 * edits (the compaction that dropped the pointers persists the increment in
 * its own edit), never through a lossy side channel, and no sampling is
 * involved.
 *
 * Per process, a handle keeps the writer's descriptor (used under the lock)
 * and a small reference-counted cache of read descriptors behind a mutex,
 * because a standalone engine's threads share one handle.
 *
 * src/engine/vlog.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/ikey.h"
#include "nokv/platform.h"
#include "nokv/status.h"
#include "nokv/vlog.h"

#define VLOG_SHARED_MAGIC	0x314756564b4f4e00ull
#define VLOG_FD_CACHE		64
#define VLOG_SCAN_CHUNK		(1u << 20)

typedef unsigned long long ull;

typedef enum vlog_seg_state
{
	SEG_FREE = 0,				/* unused slot */
	SEG_NEW,					/* created, not yet recorded in the manifest */
	SEG_LIVE,					/* recorded in the manifest */
	SEG_DROPPED					/* its deletion is durable; waiting for unlink */
} vlog_seg_state;

typedef struct vlog_slot
{
	uint64_t	number;
	uint64_t	size;			/* bytes written (the head, for the active one) */
	uint64_t	synced;			/* bytes known durable */
	uint64_t	recorded;		/* bytes the manifest records */
	uint64_t	discard;		/* exact discarded bytes (committed edits) */
	int			state;			/* vlog_seg_state */
	bool		pending_delete; /* marked obsolete: not picked for GC */
} vlog_slot;

typedef struct vlog_shared
{
	uint64_t	magic;
	int			max_segments;
	uint64_t	segment_size;

	/* NOKV_LOCK_VLOG */
	int			active_slot;	/* -1: no active segment */
	uint64_t	durable_segment;
	uint64_t	durable_offset;
	uint64_t	manifest_segment;
	uint64_t	manifest_offset;
	uint64_t	dir_gen;		/* bumped per segment created */
	uint64_t	dir_synced_gen; /* the directory is durable up to this */

	/*
	 * Flushes and compactions that may append to the value log and have
	 * not yet installed their version: a segment they appended to may not
	 * be referenced by any installed table yet, so GC must not collect it.
	 * appender_floor is the active segment when the first of them began
	 * (every segment they can touch is at or above it).
	 */
	int			appenders;
	uint64_t	appender_floor;

	/* statistics */
	_Atomic uint64_t appends;
	_Atomic uint64_t append_bytes;
	_Atomic uint64_t reads;
	_Atomic uint64_t read_bytes;
	_Atomic uint64_t read_errors;
	_Atomic uint64_t syncs;
	_Atomic uint64_t segments_created;
	_Atomic uint64_t segments_deleted;
	_Atomic uint64_t orphans_deleted;
	_Atomic uint64_t trimmed_bytes;
	_Atomic uint64_t delete_gen;	/* tells handles to drop idle read fds */

	vlog_slot	slots[];
} vlog_shared;

typedef struct fd_entry
{
	uint64_t	number;
	int			fd;				/* -1: empty */
	int			refs;
	uint64_t	used;
} fd_entry;

struct nokv_vlog_handle
{
	nokv_ctx	ctx;
	nokv_off	off;
	char	   *dir;
	nokv_vlog_number_fn new_file_number;
	void	   *number_arg;

	/* the writer (only touched under NOKV_LOCK_VLOG) */
	int			wfd;
	uint64_t	wnumber;

	/* read descriptors */
	pthread_mutex_t mu;
	fd_entry	fds[VLOG_FD_CACHE];
	uint64_t	tick;
	uint64_t	seen_delete_gen;
};

/* ---------- small helpers ---------- */

static inline vlog_shared *
shared_of(const nokv_ctx *ctx, nokv_off off)
{
	return (vlog_shared *) nokv_ptr(ctx, off);
}

static inline vlog_shared *
hshared(nokv_vlog_handle *h)
{
	return shared_of(&h->ctx, h->off);
}

static inline void
vlock(const nokv_ctx *ctx, bool exclusive)
{
	nokv_lock(ctx->plat, NOKV_LOCK_VLOG, exclusive);
}

static inline void
vunlock(const nokv_ctx *ctx)
{
	nokv_unlock(ctx->plat, NOKV_LOCK_VLOG);
}

static void
segment_path(char *dst, size_t cap, const char *dir, uint64_t number)
{
	snprintf(dst, cap, NOKV_VLOG_FMT, dir, (ull) number);
}

/* VLOG held: the slot of a segment, or NULL */
static vlog_slot *
find_slot(vlog_shared *vs, uint64_t number)
{
	if (number == 0)
		return NULL;
	for (int i = 0; i < vs->max_segments; i++)
		if (vs->slots[i].state != SEG_FREE && vs->slots[i].number == number)
			return &vs->slots[i];
	return NULL;
}

static inline bool
pos_after(uint64_t s1, uint64_t o1, uint64_t s2, uint64_t o2)
{
	return s1 > s2 || (s1 == s2 && o1 > o2);
}

bool
nokv_vlog_parse_name(const char *name, uint64_t *number)
{
	size_t		len = strlen(name);
	size_t		slen = strlen(NOKV_VLOG_SUFFIX);
	size_t		ndigits;
	uint64_t	v = 0;
	char		canon[32];

	if (len <= slen || strcmp(name + len - slen, NOKV_VLOG_SUFFIX) != 0)
		return false;
	ndigits = len - slen;
	if (ndigits < 6 || ndigits > 20)
		return false;
	for (size_t i = 0; i < ndigits; i++)
	{
		unsigned	d = (unsigned char) name[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	snprintf(canon, sizeof(canon), "%06llu", (ull) v);
	if (strlen(canon) != ndigits || memcmp(canon, name, ndigits) != 0 || v == 0)
		return false;
	*number = v;
	return true;
}

/* ---------- value pointers ---------- */

size_t
nokv_vptr_encode(char *dst, const nokv_vptr *p)
{
	char	   *q = dst;

	q = nokv_put_varint64(q, p->segment);
	q = nokv_put_varint64(q, p->offset);
	q = nokv_put_varint32(q, p->len);
	return (size_t) (q - dst);
}

bool
nokv_vptr_decode(const char *src, size_t len, nokv_vptr *p)
{
	const char *limit = src + len;
	const char *q = src;
	uint32_t	vlen;

	if (len == 0)
		return false;
	if ((q = nokv_get_varint64(q, limit, &p->segment)) == NULL ||
		(q = nokv_get_varint64(q, limit, &p->offset)) == NULL ||
		(q = nokv_get_varint32(q, limit, &vlen)) == NULL || q != limit)
		return false;
	p->len = vlen;
	return p->segment != 0 && p->offset >= NOKV_VLOG_HEADER_SIZE &&
		vlen <= NOKV_MAX_VALUE_SIZE;
}

void
nokv_vptr_value_record(nokv_buf *out, int flags, uint64_t expires_at_ms,
					   const nokv_vptr *p)
{
	char		tmp[1 + NOKV_MAX_VARINT64 + NOKV_VPTR_MAX_ENCODED];
	char	   *q = tmp;

	/* the TTL flag follows expires_at_ms, as for every value record */
	q += nokv_value_header_encode(q, flags | NOKV_VF_VPTR, expires_at_ms);
	q += nokv_vptr_encode(q, p);
	nokv_buf_append(out, tmp, (size_t) (q - tmp));
}

/* ---------- shared state ---------- */

size_t
nokv_vlog_shared_size(const nokv_shared_options *o)
{
	int			n = o->max_vlog_segments > 0 ? o->max_vlog_segments : 1;

	return sizeof(vlog_shared) + sizeof(vlog_slot) * (size_t) n;
}

void
nokv_vlog_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o)
{
	vlog_shared *vs = shared_of(ctx, off);

	memset(vs, 0, nokv_vlog_shared_size(o));
	vs->max_segments = o->max_vlog_segments > 0 ? o->max_vlog_segments : 1;
	vs->segment_size = o->vlog_segment_size;
	vs->active_slot = -1;
	vs->appenders = 0;
	vs->appender_floor = UINT64_MAX;
	vs->magic = VLOG_SHARED_MAGIC;
}

/* ---------- handle and read-descriptor cache ---------- */

nokv_vlog_handle *
nokv_vlog_attach(const nokv_ctx *ctx, nokv_off off, const char *dir,
				 nokv_vlog_number_fn new_file_number, void *arg)
{
	nokv_vlog_handle *h = nokv_calloc(1, sizeof(*h));

	h->ctx = *ctx;
	h->off = off;
	h->dir = nokv_memdup(dir, strlen(dir) + 1);
	h->new_file_number = new_file_number;
	h->number_arg = arg;
	h->wfd = -1;
	pthread_mutex_init(&h->mu, NULL);
	for (int i = 0; i < VLOG_FD_CACHE; i++)
		h->fds[i].fd = -1;
	h->seen_delete_gen = atomic_load(&hshared(h)->delete_gen);
	return h;
}

void
nokv_vlog_detach(nokv_vlog_handle *h)
{
	if (h == NULL)
		return;
	if (h->wfd >= 0)
		close(h->wfd);
	for (int i = 0; i < VLOG_FD_CACHE; i++)
		if (h->fds[i].fd >= 0)
			close(h->fds[i].fd);
	pthread_mutex_destroy(&h->mu);
	free(h->dir);
	free(h);
}

/* mu held: close every idle descriptor (a segment was deleted somewhere) */
static void
cache_drop_idle(nokv_vlog_handle *h)
{
	for (int i = 0; i < VLOG_FD_CACHE; i++)
	{
		if (h->fds[i].fd >= 0 && h->fds[i].refs == 0)
		{
			close(h->fds[i].fd);
			h->fds[i].fd = -1;
		}
	}
}

/*
 * A read descriptor for a segment, to be given back with cache_release.
 * *idx is its cache entry, or -1 for an uncached descriptor (every entry
 * busy).  A missing file is corruption: a pointer names it.
 */
static int
cache_get(nokv_vlog_handle *h, uint64_t number, int *idx, int *fd, nokv_error *err)
{
	char		path[NOKV_DIR_MAX + 64];
	uint64_t	gen = atomic_load(&hshared(h)->delete_gen);
	int			victim = -1;
	int			nfd;

	pthread_mutex_lock(&h->mu);
	if (gen != h->seen_delete_gen)
	{
		/* unlinked segments must not stay pinned on disk by our descriptors */
		cache_drop_idle(h);
		h->seen_delete_gen = gen;
	}
	for (int i = 0; i < VLOG_FD_CACHE; i++)
	{
		fd_entry   *e = &h->fds[i];

		if (e->fd >= 0 && e->number == number)
		{
			e->refs++;
			e->used = ++h->tick;
			*fd = e->fd;
			*idx = i;
			pthread_mutex_unlock(&h->mu);
			return NOKV_OK;
		}
		if (e->fd < 0)
		{
			if (victim < 0 || h->fds[victim].fd >= 0)
				victim = i;
		}
		else if (e->refs == 0 &&
				 (victim < 0 || (h->fds[victim].fd >= 0 && e->used < h->fds[victim].used)))
			victim = i;
	}
	segment_path(path, sizeof(path), h->dir, number);
	nfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
	{
		int			rc;

		if (errno == ENOENT)
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"value-log segment %s is missing", path);
		else
			rc = nokv_error_errno(err, "could not open value-log segment %s", path);
		pthread_mutex_unlock(&h->mu);
		*fd = -1;
		*idx = -1;
		return rc;
	}
	*fd = nfd;
	*idx = victim;
	if (victim < 0)
	{
		pthread_mutex_unlock(&h->mu);
		return NOKV_OK;
	}
	if (h->fds[victim].fd >= 0)
		close(h->fds[victim].fd);
	h->fds[victim].fd = nfd;
	h->fds[victim].number = number;
	h->fds[victim].refs = 1;
	h->fds[victim].used = ++h->tick;
	pthread_mutex_unlock(&h->mu);
	return NOKV_OK;
}

static void
cache_release(nokv_vlog_handle *h, int idx, int fd)
{
	if (idx < 0)
	{
		close(fd);
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->fds[idx].refs--;
	pthread_mutex_unlock(&h->mu);
}

/* forget (close) a cached descriptor of a segment if idle */
static void
cache_forget(nokv_vlog_handle *h, uint64_t number)
{
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < VLOG_FD_CACHE; i++)
	{
		if (h->fds[i].fd >= 0 && h->fds[i].number == number && h->fds[i].refs == 0)
		{
			close(h->fds[i].fd);
			h->fds[i].fd = -1;
		}
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---------- vectored full I/O ---------- */

static void
iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len)
	{
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0 && n > 0)
	{
		(*iov)->iov_base = (char *) (*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

static int
pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off, const char *path,
			 nokv_error *err)
{
	uint64_t	rec_off = off;

	while (cnt > 0 && iov->iov_len == 0)
	{
		iov++;
		cnt--;
	}
	while (cnt > 0)
	{
		ssize_t		n = pwritev(fd, iov, cnt, (off_t) off);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return nokv_error_errno(err, "could not write value-log record at offset %llu of %s",
									(ull) rec_off, path);
		}
		off += (uint64_t) n;
		iov_advance(&iov, &cnt, (size_t) n);
		while (cnt > 0 && iov->iov_len == 0)
		{
			iov++;
			cnt--;
		}
	}
	return NOKV_OK;
}

/* reads everything or returns NOKV_CORRUPTION at end of file */
static int
preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off, uint64_t rec_off,
			const char *path, nokv_error *err)
{
	while (cnt > 0 && iov->iov_len == 0)
	{
		iov++;
		cnt--;
	}
	while (cnt > 0)
	{
		ssize_t		n = preadv(fd, iov, cnt, (off_t) off);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return nokv_error_errno(err, "could not read value-log record at offset %llu of %s",
									(ull) rec_off, path);
		}
		if (n == 0)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "value-log record at offset %llu of %s runs past the end of the file",
								  (ull) rec_off, path);
		off += (uint64_t) n;
		iov_advance(&iov, &cnt, (size_t) n);
		while (cnt > 0 && iov->iov_len == 0)
		{
			iov++;
			cnt--;
		}
	}
	return NOKV_OK;
}

/* ---------- record format ---------- */

static void
record_header(char *hdr, const char *key, size_t klen, const char *value, size_t vlen)
{
	uint32_t	crc;

	nokv_put_le32(hdr + 4, (uint32_t) klen);
	nokv_put_le32(hdr + 8, (uint32_t) vlen);
	crc = nokv_crc32c(hdr + 4, 8);
	crc = nokv_crc32c_extend(crc, key, klen);
	crc = nokv_crc32c_extend(crc, value, vlen);
	nokv_put_le32(hdr, nokv_crc_mask(crc));
}

static bool
record_crc_ok(const char *hdr, const char *key, size_t klen, const char *value, size_t vlen)
{
	uint32_t	crc = nokv_crc32c(hdr + 4, 8);

	crc = nokv_crc32c_extend(crc, key, klen);
	crc = nokv_crc32c_extend(crc, value, vlen);
	return nokv_crc_unmask(nokv_get_le32(hdr)) == crc;
}

static void
segment_header(char *dst, uint64_t number)
{
	memcpy(dst, NOKV_VLOG_MAGIC, 8);
	nokv_put_le32(dst + 8, NOKV_VLOG_FORMAT_VERSION);
	nokv_put_le32(dst + 12, (uint32_t) number);
}

static int
check_segment_header(const char *hdr, uint64_t number, const char *name, nokv_error *err)
{
	if (memcmp(hdr, NOKV_VLOG_MAGIC, 8) != 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad value-log magic at offset 0 of %s", name);
	if (nokv_get_le32(hdr + 8) != NOKV_VLOG_FORMAT_VERSION)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "unsupported value-log format version %u at offset 8 of %s",
							  nokv_get_le32(hdr + 8), name);
	if (nokv_get_le32(hdr + 12) != (uint32_t) number)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log header at offset 12 of %s carries file number %u, expected %u",
							  name, nokv_get_le32(hdr + 12), (uint32_t) number);
	return NOKV_OK;
}

/* ---------- appending ---------- */

/* VLOG held: make wfd the active segment's descriptor */
static int
writer_ready(nokv_vlog_handle *h, uint64_t number, nokv_error *err)
{
	char		path[NOKV_DIR_MAX + 64];

	if (h->wfd >= 0 && h->wnumber == number)
		return NOKV_OK;
	if (h->wfd >= 0)
		close(h->wfd);
	h->wfd = -1;
	segment_path(path, sizeof(path), h->dir, number);
	h->wfd = open(path, O_RDWR | O_CLOEXEC);
	if (h->wfd < 0)
		return nokv_error_errno(err, "could not open value-log segment %s", path);
	h->wnumber = number;
	return NOKV_OK;
}

/* VLOG held: start a new active segment */
static int
roll(nokv_vlog_handle *h, vlog_shared *vs, nokv_error *err)
{
	char		path[NOKV_DIR_MAX + 64];
	char		hdr[NOKV_VLOG_HEADER_SIZE];
	int			idx = -1;
	uint64_t	number;
	int			fd;
	int			rc;

	for (int i = 0; i < vs->max_segments; i++)
	{
		if (vs->slots[i].state == SEG_FREE)
		{
			idx = i;
			break;
		}
	}
	if (idx < 0)
		return nokv_error_set(err, NOKV_NO_SPACE,
							  "value log has %d segments, the max_vlog_segments limit",
							  vs->max_segments);
	number = h->new_file_number(h->number_arg);
	segment_path(path, sizeof(path), h->dir, number);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return nokv_error_errno(err, "could not create value-log segment %s", path);
	segment_header(hdr, number);
	rc = nokv_pwrite_full(fd, hdr, sizeof(hdr), 0, path, err);
	if (rc != NOKV_OK)
	{
		close(fd);
		unlink(path);
		return rc;
	}
	if (h->wfd >= 0)
		close(h->wfd);
	h->wfd = fd;
	h->wnumber = number;

	vs->slots[idx] = (vlog_slot)
	{
		.number = number,
			.size = NOKV_VLOG_HEADER_SIZE,
			.state = SEG_NEW,
	};
	vs->active_slot = idx;
	vs->dir_gen++;
	atomic_fetch_add(&vs->segments_created, 1);
	return NOKV_OK;
}

int
nokv_vlog_append(nokv_vlog_handle *h, const char *ikey, size_t klen,
				 const char *value, size_t vlen, nokv_vptr *out, nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	char		hdr[NOKV_VLOG_RECORD_HEADER];
	char		path[NOKV_DIR_MAX + 64];
	struct iovec iov[3];
	uint64_t	rec = nokv_vlog_record_size(klen, vlen);
	vlog_slot  *s;
	uint64_t	at;
	int			rc = NOKV_OK;

	if (klen < NOKV_VLOG_MIN_KEY || klen > NOKV_VLOG_MAX_KEY)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value-log key of %zu bytes is not an internal key", klen);
	if (vlen > NOKV_MAX_VALUE_SIZE)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value of %zu bytes exceeds the maximum value size", vlen);
	record_header(hdr, ikey, klen, value, vlen);
	iov[0] = (struct iovec)
	{
		.iov_base = hdr,.iov_len = sizeof(hdr)
	};
	iov[1] = (struct iovec)
	{
		.iov_base = (void *) ikey,.iov_len = klen
	};
	iov[2] = (struct iovec)
	{
		.iov_base = (void *) value,.iov_len = vlen
	};

	vlock(&h->ctx, true);
	s = vs->active_slot >= 0 ? &vs->slots[vs->active_slot] : NULL;
	if (s == NULL ||
		(s->size > NOKV_VLOG_HEADER_SIZE && s->size + rec > vs->segment_size))
	{
		if ((rc = roll(h, vs, err)) != NOKV_OK)
			goto out;
		s = &vs->slots[vs->active_slot];
	}
	if ((rc = writer_ready(h, s->number, err)) != NOKV_OK)
		goto out;
	at = s->size;
	segment_path(path, sizeof(path), h->dir, s->number);
	rc = pwritev_full(h->wfd, iov, 3, at, path, err);
	if (rc != NOKV_OK)
	{
		/* the head did not move: the next append overwrites the partial record */
		if (ftruncate(h->wfd, (off_t) at) != 0)
		{
			/* harmless: bytes past the head are never read as records */
		}
		goto out;
	}
	s->size = at + rec;
	out->segment = s->number;
	out->offset = at;
	out->len = (uint32_t) vlen;
	atomic_fetch_add(&vs->appends, 1);
	atomic_fetch_add(&vs->append_bytes, rec);
out:
	vunlock(&h->ctx);
	return rc;
}

/* ---------- sync and the manifest ---------- */

typedef struct sync_item
{
	uint64_t	number;
	uint64_t	size;
} sync_item;

int
nokv_vlog_sync(nokv_vlog_handle *h, nokv_version_edit *edit, nokv_vlog_head *head,
			   nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	sync_item  *items;
	int			n = 0;
	uint64_t	gen;
	bool		need_dir;
	nokv_vlog_head snap = {0, 0};
	int			rc = NOKV_OK;

	items = nokv_malloc(sizeof(sync_item) * (size_t) vs->max_segments);
	vlock(&h->ctx, true);
	for (int i = 0; i < vs->max_segments; i++)
	{
		vlog_slot  *s = &vs->slots[i];

		if ((s->state == SEG_NEW || s->state == SEG_LIVE) && s->synced < s->size)
		{
			items[n].number = s->number;
			items[n].size = s->size;
			n++;
		}
	}
	if (vs->active_slot >= 0)
	{
		snap.segment = vs->slots[vs->active_slot].number;
		snap.offset = vs->slots[vs->active_slot].size;
	}
	gen = vs->dir_gen;
	need_dir = vs->dir_synced_gen < gen;
	vunlock(&h->ctx);

	/* no lock across the fsyncs: appends go on meanwhile */
	for (int i = 0; i < n && rc == NOKV_OK; i++)
	{
		char		path[NOKV_DIR_MAX + 64];
		int			fd;

		segment_path(path, sizeof(path), h->dir, items[i].number);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
		{
			int			saved = errno;
			bool		gone;

			/* deleted meanwhile (GC'd before any sync): nothing to make durable */
			vlock(&h->ctx, false);
			gone = find_slot(vs, items[i].number) == NULL ||
				find_slot(vs, items[i].number)->state == SEG_DROPPED;
			vunlock(&h->ctx);
			if (saved == ENOENT && gone)
				continue;
			errno = saved;
			rc = nokv_error_errno(err, "could not open value-log segment %s", path);
			break;
		}
		rc = nokv_fdatasync(fd, path, err);
		close(fd);
	}
	if (rc == NOKV_OK && need_dir)
		rc = nokv_fsync_dir(h->dir, err);
	if (rc != NOKV_OK)
	{
		free(items);
		return rc;
	}

	vlock(&h->ctx, true);
	for (int i = 0; i < n; i++)
	{
		vlog_slot  *s = find_slot(vs, items[i].number);

		if (s != NULL && s->synced < items[i].size)
			s->synced = items[i].size;
	}
	if (need_dir && vs->dir_synced_gen < gen)
		vs->dir_synced_gen = gen;
	if (pos_after(snap.segment, snap.offset, vs->durable_segment, vs->durable_offset))
	{
		vs->durable_segment = snap.segment;
		vs->durable_offset = snap.offset;
	}
	if (edit != NULL)
	{
		/*
		 * Only durable sizes go into the edit: a segment created but never
		 * synced (not even its header) is left out until a sync covers it.
		 * The head is ours: everything below it is durable now.
		 */
		for (int i = 0; i < vs->max_segments; i++)
		{
			vlog_slot  *s = &vs->slots[i];

			if ((s->state == SEG_NEW || s->state == SEG_LIVE) &&
				s->synced >= NOKV_VLOG_HEADER_SIZE && s->synced > s->recorded)
				nokv_edit_add_vlog_segment(edit, s->number, s->synced);
		}
		if (snap.segment != 0)
			nokv_edit_set_vlog_head(edit, snap.segment, snap.offset);
	}
	vunlock(&h->ctx);
	atomic_fetch_add(&vs->syncs, 1);
	free(items);
	if (head)
		*head = snap;
	return NOKV_OK;
}

void
nokv_vlog_edit_committed(nokv_vlog_handle *h, const nokv_version_edit *e)
{
	vlog_shared *vs = hshared(h);

	if (!e->has_vlog_head && e->n_vlog_segments == 0 && e->n_vlog_deleted == 0 &&
		e->n_vlog_discard == 0)
		return;
	vlock(&h->ctx, true);
	for (int i = 0; i < e->n_vlog_segments; i++)
	{
		vlog_slot  *s = find_slot(vs, e->vlog_segments[i].number);

		if (s == NULL || s->state == SEG_DROPPED)
			continue;
		s->state = SEG_LIVE;
		if (e->vlog_segments[i].amount > s->recorded)
			s->recorded = e->vlog_segments[i].amount;
	}
	for (int i = 0; i < e->n_vlog_deleted; i++)
	{
		vlog_slot  *s = find_slot(vs, e->vlog_deleted[i]);

		/* the manifest refuses to delete the head segment; so do we */
		if (s != NULL && !(vs->active_slot >= 0 && s == &vs->slots[vs->active_slot]))
			s->state = SEG_DROPPED;
	}
	for (int i = 0; i < e->n_vlog_discard; i++)
	{
		vlog_slot  *s = find_slot(vs, e->vlog_discard[i].number);
		uint64_t	b = e->vlog_discard[i].amount;

		if (s != NULL && s->state != SEG_DROPPED)
			s->discard = s->discard > UINT64_MAX - b ? UINT64_MAX : s->discard + b;
	}
	if (e->has_vlog_head &&
		pos_after(e->vlog_head_segment, e->vlog_head_offset,
				  vs->manifest_segment, vs->manifest_offset))
	{
		vs->manifest_segment = e->vlog_head_segment;
		vs->manifest_offset = e->vlog_head_offset;
	}
	vunlock(&h->ctx);
}

void
nokv_vlog_fill_state(nokv_vlog_handle *h, nokv_manifest_state *st)
{
	vlog_shared *vs = hshared(h);
	int			n = 0;

	free(st->vlog);
	st->vlog = NULL;
	st->n_vlog = 0;
	st->cap_vlog = 0;
	vlock(&h->ctx, false);
	st->vlog = nokv_malloc(sizeof(nokv_vlog_segment_desc) * (size_t) vs->max_segments);
	for (int i = 0; i < vs->max_segments; i++)
	{
		const vlog_slot *s = &vs->slots[i];

		if (s->state != SEG_LIVE)
			continue;
		st->vlog[n].number = s->number;
		st->vlog[n].size = s->recorded;
		st->vlog[n].discard = s->discard;
		n++;
	}
	st->vlog_head_segment = vs->manifest_segment;
	st->vlog_head_offset = vs->manifest_offset;
	vunlock(&h->ctx);

	/* the state keeps segments by number */
	for (int i = 1; i < n; i++)
	{
		nokv_vlog_segment_desc d = st->vlog[i];
		int			j = i - 1;

		while (j >= 0 && st->vlog[j].number > d.number)
		{
			st->vlog[j + 1] = st->vlog[j];
			j--;
		}
		st->vlog[j + 1] = d;
	}
	st->n_vlog = n;
	st->cap_vlog = n;
	/* a head whose segment is not recorded (cannot happen) is left out */
	if (st->vlog_head_segment != 0 &&
		nokv_manifest_state_vlog(st, st->vlog_head_segment) == NULL)
	{
		st->vlog_head_segment = 0;
		st->vlog_head_offset = 0;
	}
}

/* ---------- reading ---------- */

int
nokv_vlog_read(nokv_vlog_handle *h, const nokv_vptr *p, const char *ikey, size_t klen,
			   nokv_buf *value_out, nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	char		path[NOKV_DIR_MAX + 64];
	char		hdr[NOKV_VLOG_RECORD_HEADER];
	char		keybuf[256];
	char	   *key = keybuf;
	struct iovec iov[3];
	int			idx;
	int			fd;
	int			rc;
	uint32_t	skey;
	uint32_t	sval;

	segment_path(path, sizeof(path), h->dir, p->segment);
	if (p->segment == 0 || p->offset < NOKV_VLOG_HEADER_SIZE ||
		p->len > NOKV_MAX_VALUE_SIZE)
	{
		atomic_fetch_add(&vs->read_errors, 1);
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "invalid value pointer (segment %llu, offset %llu, length %u)",
							  (ull) p->segment, (ull) p->offset, p->len);
	}
	if (ikey != NULL && (klen < NOKV_VLOG_MIN_KEY || klen > NOKV_VLOG_MAX_KEY))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "expected key of %zu bytes is not an internal key", klen);

	if ((rc = cache_get(h, p->segment, &idx, &fd, err)) != NOKV_OK)
	{
		atomic_fetch_add(&vs->read_errors, 1);
		return rc;
	}

	value_out->len = 0;
	nokv_buf_reserve(value_out, p->len ? p->len : 1);
	if (ikey == NULL)
	{
		/* the key length is unknown: read the header first */
		rc = nokv_pread_full(fd, hdr, sizeof(hdr), p->offset, path, err);
		if (rc == NOKV_CORRUPTION)
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"value-log record at offset %llu of %s runs past the end of the file",
								(ull) p->offset, path);
		if (rc != NOKV_OK)
			goto done;
		skey = nokv_get_le32(hdr + 4);
		sval = nokv_get_le32(hdr + 8);
		if (skey < NOKV_VLOG_MIN_KEY || skey > NOKV_VLOG_MAX_KEY || sval != p->len)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"value-log record at offset %llu of %s has key/value length %u/%u, the pointer expects a value of %u bytes",
								(ull) p->offset, path, skey, sval, p->len);
			goto done;
		}
		klen = skey;
		if (klen > sizeof(keybuf))
			key = nokv_malloc(klen);
		iov[0] = (struct iovec)
		{
			.iov_base = key,.iov_len = klen
		};
		iov[1] = (struct iovec)
		{
			.iov_base = value_out->data,.iov_len = p->len
		};
		rc = preadv_full(fd, iov, 2, p->offset + sizeof(hdr), p->offset, path, err);
		if (rc != NOKV_OK)
			goto done;
	}
	else
	{
		/* the common case: one preadv of header + key + value */
		if (klen > sizeof(keybuf))
			key = nokv_malloc(klen);
		iov[0] = (struct iovec)
		{
			.iov_base = hdr,.iov_len = sizeof(hdr)
		};
		iov[1] = (struct iovec)
		{
			.iov_base = key,.iov_len = klen
		};
		iov[2] = (struct iovec)
		{
			.iov_base = value_out->data,.iov_len = p->len
		};
		rc = preadv_full(fd, iov, 3, p->offset, p->offset, path, err);
		if (rc != NOKV_OK)
			goto done;
		skey = nokv_get_le32(hdr + 4);
		sval = nokv_get_le32(hdr + 8);
		if (skey != klen || sval != p->len)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"value-log record at offset %llu of %s has key/value length %u/%u, the pointer expects %zu/%u",
								(ull) p->offset, path, skey, sval, klen, p->len);
			goto done;
		}
	}
	if (!record_crc_ok(hdr, key, klen, value_out->data, p->len))
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"checksum mismatch in value-log record at offset %llu of %s",
							(ull) p->offset, path);
		goto done;
	}
	if (ikey != NULL && memcmp(key, ikey, klen) != 0)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"value-log record at offset %llu of %s holds another key than its pointer's entry",
							(ull) p->offset, path);
		goto done;
	}
	value_out->len = p->len;
	atomic_fetch_add(&vs->reads, 1);
	atomic_fetch_add(&vs->read_bytes, p->len);
	rc = NOKV_OK;

done:
	if (rc != NOKV_OK)
	{
		value_out->len = 0;
		atomic_fetch_add(&vs->read_errors, 1);
	}
	if (key != keybuf)
		free(key);
	cache_release(h, idx, fd);
	return rc;
}

/* ---------- iterating a segment ---------- */

/* a segment image: a file read through a window, or memory */
typedef struct seg_src
{
	const char *name;
	int			fd;
	const char *mem;
	uint64_t	size;
	nokv_buf	win;
	uint64_t	win_off;
} seg_src;

/* a pointer to n bytes at off (off + n <= size, checked by the caller) */
static int
src_get(seg_src *s, uint64_t off, size_t n, const char **out, nokv_error *err)
{
	size_t		want;
	int			rc;

	if (s->mem != NULL)
	{
		*out = s->mem + off;
		return NOKV_OK;
	}
	if (off >= s->win_off && off + n <= s->win_off + s->win.len)
	{
		*out = s->win.data + (off - s->win_off);
		return NOKV_OK;
	}
	want = n > VLOG_SCAN_CHUNK ? n : VLOG_SCAN_CHUNK;
	if (want > s->size - off)
		want = (size_t) (s->size - off);
	s->win.len = 0;
	nokv_buf_reserve(&s->win, want);
	rc = nokv_pread_full(s->fd, s->win.data, want, off, s->name, err);
	if (rc != NOKV_OK)
		return rc;
	s->win.len = want;
	s->win_off = off;
	*out = s->win.data;
	return NOKV_OK;
}

static int
iterate(seg_src *s, uint64_t number, bool active, nokv_vlog_record_fn fn, void *arg,
		uint64_t *valid_end, nokv_error *err)
{
	uint64_t	off = NOKV_VLOG_HEADER_SIZE;
	const char *p;
	int			rc;

	if (valid_end)
		*valid_end = 0;
	if (s->size < NOKV_VLOG_HEADER_SIZE)
	{
		/* a segment whose header never became durable */
		if (active)
			return NOKV_OK;
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log segment %s is shorter than its header (%llu bytes)",
							  s->name, (ull) s->size);
	}
	if ((rc = src_get(s, 0, NOKV_VLOG_HEADER_SIZE, &p, err)) != NOKV_OK)
		return rc;
	if ((rc = check_segment_header(p, number, s->name, err)) != NOKV_OK)
		return rc;
	if (valid_end)
		*valid_end = off;

	while (off < s->size)
	{
		uint64_t	left = s->size - off;
		uint32_t	klen;
		uint32_t	vlen;
		uint64_t	rec;
		const char *why = NULL;

		if (left < NOKV_VLOG_RECORD_HEADER)
			why = "incomplete value-log record header";
		else
		{
			if ((rc = src_get(s, off, NOKV_VLOG_RECORD_HEADER, &p, err)) != NOKV_OK)
				return rc;
			klen = nokv_get_le32(p + 4);
			vlen = nokv_get_le32(p + 8);
			rec = nokv_vlog_record_size(klen, vlen);
			if (klen < NOKV_VLOG_MIN_KEY || klen > NOKV_VLOG_MAX_KEY ||
				vlen > NOKV_MAX_VALUE_SIZE)
				why = "invalid lengths in value-log record";
			else if (rec > left)
				why = "value-log record runs past the end of the file";
			else
			{
				if ((rc = src_get(s, off, (size_t) rec, &p, err)) != NOKV_OK)
					return rc;
				if (!record_crc_ok(p, p + NOKV_VLOG_RECORD_HEADER, klen,
								   p + NOKV_VLOG_RECORD_HEADER + klen, vlen))
					why = "checksum mismatch in value-log record";
			}
		}
		if (why != NULL)
		{
			/* the active segment may end in a torn, unacknowledged tail */
			if (active)
				return NOKV_OK;
			return nokv_error_set(err, NOKV_CORRUPTION, "%s at offset %llu of %s",
								  why, (ull) off, s->name);
		}
		rc = fn(arg, p + NOKV_VLOG_RECORD_HEADER, klen,
				p + NOKV_VLOG_RECORD_HEADER + klen, vlen, off);
		if (rc != NOKV_OK)
			return rc;
		off += rec;
		if (valid_end)
			*valid_end = off;
	}
	return NOKV_OK;
}

int
nokv_vlog_segment_iter(const char *dir, uint64_t number, bool active,
					   nokv_vlog_record_fn fn, void *arg, uint64_t *valid_end,
					   nokv_error *err)
{
	char		path[NOKV_DIR_MAX + 64];
	struct stat sb;
	seg_src		s;
	int			rc;

	memset(&s, 0, sizeof(s));
	segment_path(path, sizeof(path), dir, number);
	s.name = path;
	s.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s.fd < 0)
	{
		if (errno == ENOENT)
			return nokv_error_set(err, NOKV_NOT_FOUND, "value-log segment %s does not exist", path);
		return nokv_error_errno(err, "could not open value-log segment %s", path);
	}
	if (fstat(s.fd, &sb) != 0)
	{
		rc = nokv_error_errno(err, "could not stat value-log segment %s", path);
		close(s.fd);
		return rc;
	}
	s.size = (uint64_t) sb.st_size;
	rc = iterate(&s, number, active, fn, arg, valid_end, err);
	nokv_buf_free(&s.win);
	close(s.fd);
	return rc;
}

int
nokv_vlog_iter_mem(const char *data, size_t len, const char *name, uint64_t number,
				   bool active, nokv_vlog_record_fn fn, void *arg,
				   uint64_t *valid_end, nokv_error *err)
{
	seg_src		s;

	memset(&s, 0, sizeof(s));
	s.name = name;
	s.fd = -1;
	s.mem = data ? data : "";
	s.size = len;
	return iterate(&s, number, active, fn, arg, valid_end, err);
}

/* ---------- statistics and GC ---------- */

double
nokv_vlog_discard_ratio(uint64_t size, uint64_t discard)
{
	double		r;

	if (size <= NOKV_VLOG_HEADER_SIZE)
		return 0.0;
	r = (double) discard / (double) (size - NOKV_VLOG_HEADER_SIZE);
	return r > 1.0 ? 1.0 : r;
}

void
nokv_vlog_get_stats(const nokv_ctx *ctx, nokv_off off, nokv_vlog_stats *st)
{
	vlog_shared *vs = shared_of(ctx, off);
	uint64_t	rec = 0;

	memset(st, 0, sizeof(*st));
	vlock(ctx, false);
	for (int i = 0; i < vs->max_segments; i++)
	{
		const vlog_slot *s = &vs->slots[i];

		if (s->state != SEG_NEW && s->state != SEG_LIVE)
			continue;
		st->segments++;
		st->bytes += s->size;
		st->discard_bytes += s->discard;
		if (s->size > NOKV_VLOG_HEADER_SIZE)
			rec += s->size - NOKV_VLOG_HEADER_SIZE;
		if (s->pending_delete)
			st->pending_delete++;
	}
	if (vs->active_slot >= 0)
	{
		st->head.segment = vs->slots[vs->active_slot].number;
		st->head.offset = vs->slots[vs->active_slot].size;
	}
	st->durable.segment = vs->durable_segment;
	st->durable.offset = vs->durable_offset;
	st->manifest.segment = vs->manifest_segment;
	st->manifest.offset = vs->manifest_offset;
	vunlock(ctx);
	st->discard_ratio = rec ? (double) st->discard_bytes / (double) rec : 0.0;
	if (st->discard_ratio > 1.0)
		st->discard_ratio = 1.0;
	st->appends = atomic_load(&vs->appends);
	st->append_bytes = atomic_load(&vs->append_bytes);
	st->reads = atomic_load(&vs->reads);
	st->read_bytes = atomic_load(&vs->read_bytes);
	st->read_errors = atomic_load(&vs->read_errors);
	st->syncs = atomic_load(&vs->syncs);
	st->segments_created = atomic_load(&vs->segments_created);
	st->segments_deleted = atomic_load(&vs->segments_deleted);
	st->orphans_deleted = atomic_load(&vs->orphans_deleted);
	st->trimmed_bytes = atomic_load(&vs->trimmed_bytes);
}

static int
info_cmp(const void *a, const void *b)
{
	uint64_t	x = ((const nokv_vlog_segment_info *) a)->number;
	uint64_t	y = ((const nokv_vlog_segment_info *) b)->number;

	return x < y ? -1 : (x > y ? 1 : 0);
}

int
nokv_vlog_list_segments(const nokv_ctx *ctx, nokv_off off, nokv_vlog_segment_info *out,
						int max)
{
	vlog_shared *vs = shared_of(ctx, off);
	nokv_vlog_segment_info *all;
	int			n = 0;

	all = nokv_malloc(sizeof(*all) * (size_t) vs->max_segments);
	vlock(ctx, false);
	for (int i = 0; i < vs->max_segments; i++)
	{
		const vlog_slot *s = &vs->slots[i];

		if (s->state != SEG_NEW && s->state != SEG_LIVE && s->state != SEG_DROPPED)
			continue;
		all[n].number = s->number;
		all[n].size = s->size;
		all[n].discard = s->discard;
		all[n].discard_ratio = nokv_vlog_discard_ratio(s->size, s->discard);
		all[n].active = (i == vs->active_slot);
		all[n].live = (s->state == SEG_LIVE);
		/* a segment whose deletion is committed waits only for its unlink */
		all[n].pending_delete = s->pending_delete || s->state == SEG_DROPPED;
		n++;
	}
	vunlock(ctx);
	if (n > 1)
		qsort(all, (size_t) n, sizeof(*all), info_cmp);
	if (out != NULL && max > 0)
		memcpy(out, all, sizeof(*all) * (size_t) (n < max ? n : max));
	free(all);
	return n;
}

void
nokv_vlog_appender_enter(const nokv_ctx *ctx, nokv_off off)
{
	vlog_shared *vs = shared_of(ctx, off);

	vlock(ctx, true);
	if (vs->appenders++ == 0)
	{
		uint64_t	floor = 1;

		if (vs->active_slot >= 0)
			floor = vs->slots[vs->active_slot].number;
		else
		{
			/* the next segment created is numbered above every one listed */
			for (int i = 0; i < vs->max_segments; i++)
				if (vs->slots[i].state != SEG_FREE && vs->slots[i].number >= floor)
					floor = vs->slots[i].number + 1;
		}
		vs->appender_floor = floor;
	}
	vunlock(ctx);
}

void
nokv_vlog_appender_leave(const nokv_ctx *ctx, nokv_off off)
{
	vlog_shared *vs = shared_of(ctx, off);

	vlock(ctx, true);
	if (--vs->appenders == 0)
		vs->appender_floor = UINT64_MAX;
	vunlock(ctx);
}

int
nokv_vlog_pick_gc(const nokv_ctx *ctx, nokv_off off, double ratio, uint64_t *segment)
{
	vlog_shared *vs = shared_of(ctx, off);
	double		best = -1.0;
	uint64_t	best_number = 0;

	vlock(ctx, false);
	for (int i = 0; i < vs->max_segments; i++)
	{
		const vlog_slot *s = &vs->slots[i];
		double		r;

		if (s->state != SEG_LIVE || s->pending_delete || i == vs->active_slot ||
			(vs->appenders > 0 && s->number >= vs->appender_floor))
			continue;
		r = nokv_vlog_discard_ratio(s->size, s->discard);
		if (r < ratio)
			continue;
		if (r > best || (r == best && s->number < best_number))
		{
			best = r;
			best_number = s->number;
		}
	}
	vunlock(ctx);
	if (best_number == 0)
		return NOKV_NOT_FOUND;
	*segment = best_number;
	return NOKV_OK;
}

void
nokv_vlog_add_discard(const nokv_ctx *ctx, nokv_off off, uint64_t segment, uint64_t bytes)
{
	vlog_shared *vs = shared_of(ctx, off);
	vlog_slot  *s;

	vlock(ctx, true);
	s = find_slot(vs, segment);
	if (s != NULL && s->state != SEG_DROPPED)
		s->discard = s->discard > UINT64_MAX - bytes ? UINT64_MAX : s->discard + bytes;
	vunlock(ctx);
}

int
nokv_vlog_mark_obsolete(const nokv_ctx *ctx, nokv_off off, uint64_t segment)
{
	vlog_shared *vs = shared_of(ctx, off);
	vlog_slot  *s;
	int			rc = NOKV_OK;

	vlock(ctx, true);
	s = find_slot(vs, segment);
	if (s == NULL)
		rc = NOKV_NOT_FOUND;
	else if (vs->active_slot >= 0 && s == &vs->slots[vs->active_slot])
		rc = NOKV_INVALID_ARGUMENT;
	else
		s->pending_delete = true;
	vunlock(ctx);
	return rc;
}

int
nokv_vlog_delete_segment(nokv_vlog_handle *h, uint64_t segment, nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	char		path[NOKV_DIR_MAX + 64];
	vlog_slot  *s;

	segment_path(path, sizeof(path), h->dir, segment);
	vlock(&h->ctx, true);
	s = find_slot(vs, segment);
	if (s == NULL)
	{
		vunlock(&h->ctx);
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value-log segment %s is unknown", path);
	}
	if (vs->active_slot >= 0 && s == &vs->slots[vs->active_slot])
	{
		vunlock(&h->ctx);
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value-log segment %s is the active segment", path);
	}
	if (s->state != SEG_DROPPED)
	{
		vunlock(&h->ctx);
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value-log segment %s is still listed in the manifest: its deletion must be committed first",
							  path);
	}

	/*
	 * The manifest no longer lists it, so a crash at any point from here on
	 * leaves an orphan that recovery deletes.  Free the slot first: a slot
	 * is worth more than the file.
	 */
	memset(s, 0, sizeof(*s));
	vunlock(&h->ctx);
	atomic_fetch_add(&vs->delete_gen, 1);
	cache_forget(h, segment);
	if (unlink(path) != 0 && errno != ENOENT)
		return nokv_error_errno(err, "could not remove value-log segment %s", path);
	atomic_fetch_add(&vs->segments_deleted, 1);
	return NOKV_OK;
}

/* ---------- recovery ---------- */

/* check one listed segment; trim it to size if it is the head segment */
static int
recover_segment(nokv_vlog_handle *h, const nokv_vlog_segment_desc *d, bool is_head,
				nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	char		path[NOKV_DIR_MAX + 64];
	char		hdr[NOKV_VLOG_HEADER_SIZE];
	struct stat sb;
	int			fd;
	int			rc = NOKV_OK;

	segment_path(path, sizeof(path), h->dir, d->number);
	fd = open(path, is_head ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "value-log segment %s listed in the manifest is missing", path);
		return nokv_error_errno(err, "could not open value-log segment %s", path);
	}
	if (fstat(fd, &sb) != 0)
	{
		rc = nokv_error_errno(err, "could not stat value-log segment %s", path);
		goto done;
	}
	if (d->size < NOKV_VLOG_HEADER_SIZE)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"manifest records %llu bytes for value-log segment %s, less than its header",
							(ull) d->size, path);
		goto done;
	}
	if ((uint64_t) sb.st_size < d->size)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"value-log segment %s has %llu bytes, fewer than the %llu the manifest records",
							path, (ull) sb.st_size, (ull) d->size);
		goto done;
	}
	if ((rc = nokv_pread_full(fd, hdr, sizeof(hdr), 0, path, err)) != NOKV_OK ||
		(rc = check_segment_header(hdr, d->number, path, err)) != NOKV_OK)
		goto done;
	if (is_head && (uint64_t) sb.st_size > d->size)
	{
		/* appended after the last durable head: never acknowledged */
		if (ftruncate(fd, (off_t) d->size) != 0)
		{
			rc = nokv_error_errno(err, "could not truncate value-log segment %s to %llu bytes",
								  path, (ull) d->size);
			goto done;
		}
		if ((rc = nokv_fdatasync(fd, path, err)) != NOKV_OK)
			goto done;
		atomic_fetch_add(&vs->trimmed_bytes, (uint64_t) sb.st_size - d->size);
	}
done:
	close(fd);
	return rc;
}

/* delete every canonical segment file the manifest does not list */
static int
delete_orphans(nokv_vlog_handle *h, const nokv_manifest_state *st, nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	DIR		   *d = opendir(h->dir);
	struct dirent *de;
	int			removed = 0;
	int			rc = NOKV_OK;

	if (d == NULL)
		return nokv_error_errno(err, "could not open directory %s", h->dir);
	errno = 0;
	while ((de = readdir(d)) != NULL)
	{
		uint64_t	number;
		char		path[NOKV_DIR_MAX + 300];

		if (!nokv_vlog_parse_name(de->d_name, &number) ||
			nokv_manifest_state_vlog(st, number) != NULL)
		{
			errno = 0;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", h->dir, de->d_name);
		if (unlink(path) != 0 && errno != ENOENT)
		{
			rc = nokv_error_errno(err, "could not remove orphan value-log segment %s", path);
			break;
		}
		removed++;
		errno = 0;
	}
	if (rc == NOKV_OK && de == NULL && errno != 0)
		rc = nokv_error_errno(err, "could not read directory %s", h->dir);
	closedir(d);
	if (rc == NOKV_OK && removed > 0)
	{
		atomic_fetch_add(&vs->orphans_deleted, (uint64_t) removed);
		rc = nokv_fsync_dir(h->dir, err);
	}
	return rc;
}

int
nokv_vlog_recover(nokv_vlog_handle *h, const nokv_manifest_state *st, nokv_error *err)
{
	vlog_shared *vs = hshared(h);
	int			rc;

	if (st->n_vlog > vs->max_segments)
		return nokv_error_set(err, NOKV_NO_SPACE,
							  "the manifest lists %d value-log segments, more than max_vlog_segments (%d)",
							  st->n_vlog, vs->max_segments);
	if (st->vlog_head_segment != 0 &&
		nokv_manifest_state_vlog(st, st->vlog_head_segment) == NULL)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "the manifest's value-log head names segment %llu, which it does not list",
							  (ull) st->vlog_head_segment);
	for (int i = 0; i < st->n_vlog; i++)
	{
		rc = recover_segment(h, &st->vlog[i],
							 st->vlog[i].number == st->vlog_head_segment, err);
		if (rc != NOKV_OK)
			return rc;
	}
	if ((rc = delete_orphans(h, st, err)) != NOKV_OK)
		return rc;

	vlock(&h->ctx, true);
	memset(vs->slots, 0, sizeof(vlog_slot) * (size_t) vs->max_segments);
	vs->active_slot = -1;
	for (int i = 0; i < st->n_vlog; i++)
	{
		const nokv_vlog_segment_desc *d = &st->vlog[i];
		vlog_slot  *s = &vs->slots[i];

		s->number = d->number;
		s->size = s->synced = s->recorded = d->size;
		s->discard = d->discard;
		s->state = SEG_LIVE;
		if (d->number == st->vlog_head_segment)
			vs->active_slot = i;
	}
	vs->durable_segment = vs->manifest_segment = st->vlog_head_segment;
	vs->durable_offset = vs->manifest_offset = st->vlog_head_offset;
	if (vs->active_slot >= 0)
		vs->durable_offset = vs->manifest_offset = vs->slots[vs->active_slot].size;
	vs->dir_synced_gen = vs->dir_gen;
	vunlock(&h->ctx);

	/* whatever this process had open may be stale */
	if (h->wfd >= 0)
		close(h->wfd);
	h->wfd = -1;
	h->wnumber = 0;
	pthread_mutex_lock(&h->mu);
	cache_drop_idle(h);
	pthread_mutex_unlock(&h->mu);
	return NOKV_OK;
}
