/*-------------------------------------------------------------------------
 *
 * logformat.h
 *	  CRC-framed record files shared by the WAL and the manifest.
 *
 * A log file starts with a 16-byte header
 *
 *		magic (8 bytes) | format version (LE32) | file number low 32 bits (LE32)
 *
 * followed by records
 *
 *		masked CRC32C of (type + payload) (LE32) | payload length (LE32) |
 *		type (1 byte) | payload
 *
 * A reader distinguishes a torn tail from corruption: a record that is
 * incomplete at end of file, or a bad record after which no valid record
 * follows, is a torn tail (the crash interrupted the last write) and ends
 * the log cleanly; a bad record followed by a valid one is mid-log
 * corruption and is reported with the file and offset.  Trailing zero bytes
 * (preallocation, a torn page) count as a torn tail.
 *
 * include/nokv/logformat.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_LOGFORMAT_H
#define NOKV_LOGFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/coding.h"
#include "nokv/nokv.h"

#define NOKV_LOG_FILE_HEADER	16
#define NOKV_LOG_RECORD_HEADER	9
#define NOKV_LOG_FORMAT_VERSION 1
#define NOKV_LOG_MAX_RECORD		(1u << 30)

#define NOKV_WAL_MAGIC		"NOKVWAL\0"
#define NOKV_MANIFEST_MAGIC "NOKVMAN\0"

void		nokv_log_file_header(char *dst16, const char *magic8, uint64_t file_number);

/* append one framed record to buf */
void		nokv_log_append_record(nokv_buf *buf, int type, const char *payload, size_t len);

typedef struct nokv_log_reader nokv_log_reader;

/*
 * Open path for reading.  The file header must carry the expected magic and
 * a supported version, else NOKV_CORRUPTION.  A file shorter than its header
 * is treated as empty with a torn tail.
 */
int			nokv_log_reader_open(const char *path, const char *magic8,
								 nokv_log_reader **r, nokv_error *err);
/* read from an in-memory image (fuzzing, tests) */
int			nokv_log_reader_open_mem(const char *data, size_t len, const char *magic8,
									 const char *name, nokv_log_reader **r, nokv_error *err);

/*
 * Next record: returns 1 with type/payload set (payload valid until the next
 * call), 0 at the clean end of the log (EOF or torn tail), or a negative
 * nokv_code (NOKV_CORRUPTION, NOKV_IO_ERROR) with err naming file and offset.
 */
int			nokv_log_read(nokv_log_reader *r, int *type, const char **payload,
						  size_t *len, nokv_error *err);

/* offset just past the last good record (where a writer may resume) */
uint64_t	nokv_log_valid_end(const nokv_log_reader *r);
/* true if reading ended at a torn tail rather than a clean EOF */
bool		nokv_log_torn(const nokv_log_reader *r);
void		nokv_log_reader_close(nokv_log_reader *r);

#endif							/* NOKV_LOGFORMAT_H */
