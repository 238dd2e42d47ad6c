/*-------------------------------------------------------------------------
 *
 * logformat.c
 *	  CRC-framed record files shared by the WAL and the manifest.
 *
 * The writer side only frames records into a buffer; the reader parses a
 * file (read through a sliding window of buffered preads, so a multi-GB log
 * is never slurped) or an in-memory image.
 *
 * The interesting part is telling a torn tail from corruption.  When a
 * record is bad (checksum mismatch, impossible length, payload running past
 * end of file, zero-filled header) the reader scans forward from the next
 * byte for any later record that is fully valid: header, length within the
 * file and a matching CRC.  If one exists, a record in the middle of the log
 * was damaged and the reader reports NOKV_CORRUPTION naming the offset;
 * otherwise the damage is the interrupted last write and the log ends
 * cleanly (torn tail).  A header of eight zero bytes (masked CRC 0, length 0)
 * is never a valid record: it is what preallocated or torn pages look like.
 *
 * The forward scan is linear in the bytes scanned except for candidates
 * whose CRC must be computed; that work is capped (RESYNC_BUDGET_*), and a
 * scan that exceeds the cap reports corruption rather than silently dropping
 * a possibly intact remainder of the log.  Runs of zero bytes are skipped
 * quickly, since a valid record's first eight bytes are never all zero.
 *
 * src/engine/logformat.c
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/file.h"
#include "nokv/logformat.h"
#include "nokv/status.h"

/* file reads are done in chunks of this size (larger only for big records) */
#define LOG_CHUNK				(1024 * 1024)

/* CRC bytes the resync scan may compute: base + factor * bytes scanned */
#define RESYNC_BUDGET_BASE		((uint64_t) 64 << 20)
#define RESYNC_BUDGET_FACTOR	16

typedef enum reader_state
{
	READER_OPEN = 0,			/* more records may follow */
	READER_ENDED,				/* clean end (EOF or torn tail) */
	READER_FAILED				/* corruption or I/O error, in saved */
} reader_state;

struct nokv_log_reader
{
	char	   *name;			/* path or caller-supplied image name */
	const char *mem;			/* in-memory image, or NULL for a file */
	int			fd;
	uint64_t	size;			/* bytes in the file / image */
	uint64_t	pos;			/* start of the next record = valid end */
	bool		torn;
	reader_state state;
	nokv_error	saved;			/* the error, once READER_FAILED */

	/* file mode: window of bytes [win_off, win_off + win_len) */
	char	   *win;
	size_t		win_cap;
	uint64_t	win_off;
	size_t		win_len;
	/* file mode: chunk buffer for CRCs over ranges outside the window */
	char	   *scratch;
};

void
nokv_log_file_header(char *dst16, const char *magic8, uint64_t file_number)
{
	memcpy(dst16, magic8, 8);
	nokv_put_le32(dst16 + 8, NOKV_LOG_FORMAT_VERSION);
	nokv_put_le32(dst16 + 12, (uint32_t) file_number);
}

void
nokv_log_append_record(nokv_buf *buf, int type, const char *payload, size_t len)
{
	unsigned char type_byte = (unsigned char) type;
	uint32_t	crc;
	char	   *p;

	crc = nokv_crc32c(&type_byte, 1);
	if (len > 0)
		crc = nokv_crc32c_extend(crc, payload, len);

	nokv_buf_reserve(buf, NOKV_LOG_RECORD_HEADER + len);
	p = buf->data + buf->len;
	nokv_put_le32(p, nokv_crc_mask(crc));
	nokv_put_le32(p + 4, (uint32_t) len);
	p[8] = (char) type_byte;
	if (len > 0)
		memcpy(p + NOKV_LOG_RECORD_HEADER, payload, len);
	buf->len += NOKV_LOG_RECORD_HEADER + len;
}

/* ---------- byte access (image or windowed file) ---------- */

/*
 * Point *p at n bytes at off (off + n <= r->size, checked by callers).  The
 * bytes stay valid until the next fetch.
 */
static int
fetch(nokv_log_reader *r, uint64_t off, size_t n, const char **p, nokv_error *err)
{
	size_t		want;
	int			rc;

	if (r->mem)
	{
		*p = r->mem + off;
		return NOKV_OK;
	}
	if (r->win_len > 0 && off >= r->win_off && off + n <= r->win_off + r->win_len)
	{
		*p = r->win + (off - r->win_off);
		return NOKV_OK;
	}

	want = n > LOG_CHUNK ? n : LOG_CHUNK;
	if (want > r->size - off)
		want = (size_t) (r->size - off);
	/* grow for a big record; give the memory back once records are small */
	if (want > r->win_cap || (r->win_cap > 4 * (size_t) LOG_CHUNK && want <= LOG_CHUNK))
	{
		free(r->win);
		r->win = nokv_malloc(want);
		r->win_cap = want;
	}
	r->win_len = 0;
	rc = nokv_pread_full(r->fd, r->win, want, off, r->name, err);
	if (rc != NOKV_OK)
		return rc;
	r->win_off = off;
	r->win_len = want;
	*p = r->win;
	return NOKV_OK;
}

/* CRC32C of n bytes at off, without disturbing the window */
static int
crc_range(nokv_log_reader *r, uint64_t off, uint64_t n, uint32_t *crc, nokv_error *err)
{
	uint32_t	c = 0;

	if (r->mem)
	{
		*crc = nokv_crc32c(r->mem + off, (size_t) n);
		return NOKV_OK;
	}
	if (r->win_len > 0 && off >= r->win_off && off + n <= r->win_off + r->win_len)
	{
		*crc = nokv_crc32c(r->win + (off - r->win_off), (size_t) n);
		return NOKV_OK;
	}
	if (r->scratch == NULL)
		r->scratch = nokv_malloc(LOG_CHUNK);
	while (n > 0)
	{
		size_t		chunk = n > LOG_CHUNK ? LOG_CHUNK : (size_t) n;
		int			rc = nokv_pread_full(r->fd, r->scratch, chunk, off, r->name, err);

		if (rc != NOKV_OK)
			return rc;
		c = nokv_crc32c_extend(c, r->scratch, chunk);
		off += chunk;
		n -= chunk;
	}
	*crc = c;
	return NOKV_OK;
}

/* are all bytes in [off, size) zero? */
static int
all_zero_from(nokv_log_reader *r, uint64_t off, bool *zero, nokv_error *err)
{
	while (off < r->size)
	{
		size_t		span = r->size - off > LOG_CHUNK ? LOG_CHUNK : (size_t) (r->size - off);
		const char *p;
		int			rc = fetch(r, off, span, &p, err);

		if (rc != NOKV_OK)
			return rc;
		for (size_t i = 0; i < span; i++)
		{
			if (p[i] != 0)
			{
				*zero = false;
				return NOKV_OK;
			}
		}
		off += span;
	}
	*zero = true;
	return NOKV_OK;
}

/* ---------- torn tail vs corruption ---------- */

typedef enum resync_result
{
	RESYNC_NONE,				/* no valid record after the bad one */
	RESYNC_FOUND,
	RESYNC_GAVE_UP				/* the CRC budget ran out */
} resync_result;

/*
 * Look for a fully valid record starting anywhere in [from, size).
 */
static int
resync(nokv_log_reader *r, uint64_t from, resync_result *result, uint64_t *found_at,
	   nokv_error *err)
{
	uint64_t	budget = RESYNC_BUDGET_BASE + RESYNC_BUDGET_FACTOR * (r->size - from);
	uint64_t	q = from;

	while (q <= r->size && r->size - q >= NOKV_LOG_RECORD_HEADER)
	{
		size_t		span = r->size - q > LOG_CHUNK ? LOG_CHUNK : (size_t) (r->size - q);
		const char *p;
		size_t		i = 0;
		int			rc = fetch(r, q, span, &p, err);

		if (rc != NOKV_OK)
			return rc;
		while (i + NOKV_LOG_RECORD_HEADER <= span)
		{
			const char *h = p + i;
			uint32_t	masked = nokv_get_le32(h);
			uint32_t	len = nokv_get_le32(h + 4);
			uint64_t	at = q + i;
			uint32_t	crc;

			if (masked == 0 && len == 0)
			{
				/*
				 * Bytes i..i+7 are zero.  A valid record never starts with
				 * eight zero bytes, so none can start before (first nonzero
				 * byte) - 7; this is always past i.
				 */
				size_t		z = i + 8;

				while (z < span && p[z] == 0)
					z++;
				i = z - 7;
				continue;
			}
			i++;
			if (len > NOKV_LOG_MAX_RECORD ||
				len > r->size - at - NOKV_LOG_RECORD_HEADER)
				continue;
			if (budget < (uint64_t) len + 1)
			{
				*result = RESYNC_GAVE_UP;
				return NOKV_OK;
			}
			budget -= (uint64_t) len + 1;
			rc = crc_range(r, at + 8, (uint64_t) len + 1, &crc, err);
			if (rc != NOKV_OK)
				return rc;
			if (crc == nokv_crc_unmask(masked))
			{
				*result = RESYNC_FOUND;
				*found_at = at;
				return NOKV_OK;
			}
			/* crc_range may not move the window, so p is still valid */
		}
		q += i;
	}
	*result = RESYNC_NONE;
	return NOKV_OK;
}

static int
fail(nokv_log_reader *r, int code, nokv_error *err)
{
	r->state = READER_FAILED;
	r->saved.code = code;
	if (err)
		*err = r->saved;
	return -code;
}

/*
 * The record at r->pos is bad for the given reason: decide between a torn
 * tail (returns 0) and mid-log corruption (returns -NOKV_CORRUPTION).
 */
static int
bad_record(nokv_log_reader *r, const char *reason, nokv_error *err)
{
	resync_result result = RESYNC_NONE;
	uint64_t	found_at = 0;
	int			rc;

	rc = resync(r, r->pos + 1, &result, &found_at, &r->saved);
	if (rc != NOKV_OK)
		return fail(r, rc, err);

	switch (result)
	{
		case RESYNC_NONE:
			r->torn = true;
			r->state = READER_ENDED;
			return 0;
		case RESYNC_FOUND:
			nokv_error_set(&r->saved, NOKV_CORRUPTION,
						   "corrupt record at offset %llu of %s: %s; a valid record follows at offset %llu",
						   (unsigned long long) r->pos, r->name, reason,
						   (unsigned long long) found_at);
			break;
		case RESYNC_GAVE_UP:
			nokv_error_set(&r->saved, NOKV_CORRUPTION,
						   "corrupt record at offset %llu of %s: %s; the rest of the file could not be ruled out as intact records",
						   (unsigned long long) r->pos, r->name, reason);
			break;
	}
	return fail(r, NOKV_CORRUPTION, err);
}

/* ---------- reader ---------- */

static nokv_log_reader *
reader_new(const char *name)
{
	nokv_log_reader *r = nokv_calloc(1, sizeof(nokv_log_reader));

	r->name = nokv_memdup(name, strlen(name) + 1);
	r->fd = -1;
	r->state = READER_OPEN;
	return r;
}

static int
check_file_header(nokv_log_reader *r, const char *magic8, nokv_error *err)
{
	const char *h;
	uint32_t	version;
	int			rc;

	if (r->size < NOKV_LOG_FILE_HEADER)
	{
		/* the crash interrupted writing the header */
		r->pos = 0;
		r->torn = true;
		r->state = READER_ENDED;
		return NOKV_OK;
	}
	rc = fetch(r, 0, NOKV_LOG_FILE_HEADER, &h, err);
	if (rc != NOKV_OK)
		return rc;
	if (memcmp(h, magic8, 8) != 0)
	{
		bool		zero = true;

		/* an entirely zero file is a header write that never landed */
		for (int i = 0; i < NOKV_LOG_FILE_HEADER; i++)
			zero = zero && h[i] == 0;
		if (zero)
		{
			rc = all_zero_from(r, NOKV_LOG_FILE_HEADER, &zero, err);
			if (rc != NOKV_OK)
				return rc;
		}
		if (zero)
		{
			r->pos = 0;
			r->torn = true;
			r->state = READER_ENDED;
			return NOKV_OK;
		}
		return nokv_error_set(err, NOKV_CORRUPTION, "bad magic in log header at offset 0 of %s",
							  r->name);
	}
	version = nokv_get_le32(h + 8);
	if (version != NOKV_LOG_FORMAT_VERSION)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "unsupported log format version %u at offset 8 of %s",
							  version, r->name);
	r->pos = NOKV_LOG_FILE_HEADER;
	return NOKV_OK;
}

int
nokv_log_reader_open(const char *path, const char *magic8, nokv_log_reader **rp,
					 nokv_error *err)
{
	nokv_log_reader *r;
	struct stat st;
	int			rc;

	*rp = NULL;
	r = reader_new(path);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
	{
		rc = nokv_error_errno(err, "could not open %s", path);
		nokv_log_reader_close(r);
		return rc;
	}
	if (fstat(r->fd, &st) != 0)
	{
		rc = nokv_error_errno(err, "could not stat %s", path);
		nokv_log_reader_close(r);
		return rc;
	}
	r->size = (uint64_t) st.st_size;
	rc = check_file_header(r, magic8, err);
	if (rc != NOKV_OK)
	{
		nokv_log_reader_close(r);
		return rc;
	}
	*rp = r;
	return NOKV_OK;
}

int
nokv_log_reader_open_mem(const char *data, size_t len, const char *magic8,
						 const char *name, nokv_log_reader **rp, nokv_error *err)
{
	nokv_log_reader *r;
	int			rc;

	*rp = NULL;
	r = reader_new(name ? name : "(memory)");
	/* a non-NULL base even for an empty image keeps pointer arithmetic defined */
	r->mem = data ? data : "";
	r->size = data ? len : 0;
	rc = check_file_header(r, magic8, err);
	if (rc != NOKV_OK)
	{
		nokv_log_reader_close(r);
		return rc;
	}
	*rp = r;
	return NOKV_OK;
}

int
nokv_log_read(nokv_log_reader *r, int *type, const char **payload, size_t *len,
			  nokv_error *err)
{
	uint64_t	remaining;
	const char *h;
	const char *rec;
	uint32_t	masked;
	uint32_t	n;
	uint32_t	crc;
	size_t		total;
	int			rc;
	char		reason[96];

	if (r->state == READER_ENDED)
		return 0;
	if (r->state == READER_FAILED)
	{
		if (err)
			*err = r->saved;
		return -(int) r->saved.code;
	}

	remaining = r->size - r->pos;
	if (remaining == 0)
	{
		r->state = READER_ENDED;
		return 0;
	}
	if (remaining < NOKV_LOG_RECORD_HEADER)
	{
		/* no room for any later record: the last header write was torn */
		r->torn = true;
		r->state = READER_ENDED;
		return 0;
	}

	rc = fetch(r, r->pos, NOKV_LOG_RECORD_HEADER, &h, &r->saved);
	if (rc != NOKV_OK)
		return fail(r, rc, err);
	masked = nokv_get_le32(h);
	n = nokv_get_le32(h + 4);

	if (masked == 0 && n == 0)
		return bad_record(r, "zero-filled record header", err);
	if (n > NOKV_LOG_MAX_RECORD)
	{
		snprintf(reason, sizeof(reason), "impossible record length %u", n);
		return bad_record(r, reason, err);
	}
	if (n > remaining - NOKV_LOG_RECORD_HEADER)
	{
		snprintf(reason, sizeof(reason), "record length %u runs past end of file", n);
		return bad_record(r, reason, err);
	}

	total = NOKV_LOG_RECORD_HEADER + (size_t) n;
	if (r->mem || total <= LOG_CHUNK)
	{
		rc = fetch(r, r->pos, total, &rec, &r->saved);
		if (rc != NOKV_OK)
			return fail(r, rc, err);
		crc = nokv_crc32c(rec + 8, (size_t) n + 1);
	}
	else
	{
		/* verify a big record in chunks before buffering all of it */
		rc = crc_range(r, r->pos + 8, (uint64_t) n + 1, &crc, &r->saved);
		if (rc != NOKV_OK)
			return fail(r, rc, err);
		rec = NULL;
	}
	if (crc != nokv_crc_unmask(masked))
		return bad_record(r, "checksum mismatch", err);
	if (rec == NULL)
	{
		rc = fetch(r, r->pos, total, &rec, &r->saved);
		if (rc != NOKV_OK)
			return fail(r, rc, err);
	}

	*type = (unsigned char) rec[8];
	*payload = rec + NOKV_LOG_RECORD_HEADER;
	*len = n;
	r->pos += total;
	return 1;
}

uint64_t
nokv_log_valid_end(const nokv_log_reader *r)
{
	return r->pos;
}

bool
nokv_log_torn(const nokv_log_reader *r)
{
	return r->torn;
}

void
nokv_log_reader_close(nokv_log_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->win);
	free(r->scratch);
	free(r->name);
	free(r);
}
