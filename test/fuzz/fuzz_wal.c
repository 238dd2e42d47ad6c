/*-------------------------------------------------------------------------
 *
 * fuzz_wal.c
 *	  libFuzzer target for the log reader (WAL images).
 *
 * Each input is read three ways: as a whole log image, behind a valid WAL
 * file header (so mutations reach record parsing instead of dying at the
 * magic check), and behind a header plus one valid record (so the first
 * damaged record is mid-log and the torn-tail/corruption decision is
 * exercised).  Besides memory safety, the target checks the reader against
 * a brute-force model: every returned record must be a valid frame exactly
 * where the previous one ended, a clean stop at a torn tail must have no
 * valid record anywhere after it, and a corruption report must have one.
 *
 * test/fuzz/fuzz_wal.c
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coding.h"
#include "nokv/logformat.h"

/* inputs up to this size are checked against the O(n^2) model */
#define MODEL_MAX_SIZE 8192

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_wal invariant violated: %s\n", what);
	abort();
}

/* is there a complete, valid record at offset q of the image? */
static bool
valid_record_at(const char *img, size_t size, size_t q)
{
	uint32_t	masked;
	uint32_t	len;

	if (q > size || size - q < NOKV_LOG_RECORD_HEADER)
		return false;
	masked = nokv_get_le32(img + q);
	len = nokv_get_le32(img + q + 4);
	if ((masked == 0 && len == 0) || len > NOKV_LOG_MAX_RECORD ||
		len > size - q - NOKV_LOG_RECORD_HEADER)
		return false;
	return nokv_crc32c(img + q + 8, (size_t) len + 1) == nokv_crc_unmask(masked);
}

static bool
valid_record_after(const char *img, size_t size, size_t from)
{
	for (size_t q = from; q + NOKV_LOG_RECORD_HEADER <= size; q++)
		if (valid_record_at(img, size, q))
			return true;
	return false;
}

static void
read_image(const char *img, size_t size)
{
	nokv_log_reader *r;
	nokv_error	err;
	uint64_t	expect_pos;
	int			rc;

	if (nokv_log_reader_open_mem(img, size, NOKV_WAL_MAGIC, "fuzz", &r, &err) != NOKV_OK)
	{
		if (err.code != NOKV_CORRUPTION)
			fail("open failed with a code other than corruption");
		return;
	}
	expect_pos = nokv_log_valid_end(r);
	for (;;)
	{
		int			type;
		const char *payload;
		size_t		len;

		rc = nokv_log_read(r, &type, &payload, &len, &err);
		if (rc <= 0)
			break;
		if (payload != img + expect_pos + NOKV_LOG_RECORD_HEADER ||
			len > size - expect_pos - NOKV_LOG_RECORD_HEADER)
			fail("record not where the previous one ended");
		if (!valid_record_at(img, size, expect_pos) || type != (unsigned char) img[expect_pos + 8])
			fail("returned an invalid record");
		expect_pos += NOKV_LOG_RECORD_HEADER + len;
		if (nokv_log_valid_end(r) != expect_pos)
			fail("valid_end does not follow the records");
	}
	if (nokv_log_valid_end(r) != expect_pos || expect_pos > size)
		fail("valid_end moved past the last record");

	if (rc == 0)
	{
		if (!nokv_log_torn(r) && expect_pos != size)
			fail("clean end before end of image without a torn tail");
		if (nokv_log_torn(r) && size <= MODEL_MAX_SIZE && expect_pos >= NOKV_LOG_FILE_HEADER &&
			valid_record_after(img, size, expect_pos + 1))
			fail("torn tail reported but a valid record follows");
	}
	else
	{
		if (rc != -NOKV_CORRUPTION || err.code != NOKV_CORRUPTION || strstr(err.msg, "fuzz") == NULL)
			fail("error is not a corruption naming the image");
		if (size <= MODEL_MAX_SIZE && !valid_record_after(img, size, expect_pos + 1))
			fail("corruption reported but no valid record follows");
	}
	nokv_log_reader_close(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nokv_buf	b = {0};
	char	   *exact;

	/* the raw input, in a buffer of exactly its size so overreads are caught */
	exact = malloc(size ? size : 1);
	if (size)
		memcpy(exact, data, size);
	read_image(exact, size);
	free(exact);

	/* behind a valid header */
	nokv_buf_reserve(&b, NOKV_LOG_FILE_HEADER);
	nokv_log_file_header(b.data, NOKV_WAL_MAGIC, 1);
	b.len = NOKV_LOG_FILE_HEADER;
	nokv_buf_append(&b, data, size);
	exact = malloc(b.len);
	memcpy(exact, b.data, b.len);
	read_image(exact, b.len);
	free(exact);

	/* behind a header and a valid record */
	b.len = NOKV_LOG_FILE_HEADER;
	nokv_log_append_record(&b, 1, "seed", 4);
	nokv_buf_append(&b, data, size);
	exact = malloc(b.len);
	memcpy(exact, b.data, b.len);
	read_image(exact, b.len);
	free(exact);

	nokv_buf_free(&b);
	return 0;
}
