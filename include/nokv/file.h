/*-------------------------------------------------------------------------
 *
 * file.h
 *	  Small POSIX file helpers with the engine's durability rules built in.
 *
 * New immutable files (SSTs, manifest snapshots, CURRENT) are always
 * written to a temporary name, fsynced, renamed into place, and the
 * directory fsynced, so a crash leaves either the old state or the new one.
 *
 * include/nokv/file.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_FILE_H
#define NOKV_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nokv/nokv.h"

/* file names inside an engine directory */
#define NOKV_SST_FMT		"%s/%06llu.sst"
#define NOKV_WAL_FMT		"%s/%06llu.wal"
#define NOKV_MANIFEST_FMT	"%s/MANIFEST-%06llu"
#define NOKV_CURRENT_NAME	"CURRENT"
#define NOKV_LOCK_NAME		"LOCK"
#define NOKV_TMP_SUFFIX		".tmp"

typedef enum nokv_file_kind
{
	NOKV_FILE_UNKNOWN = 0,
	NOKV_FILE_SST,
	NOKV_FILE_WAL,
	NOKV_FILE_MANIFEST,
	NOKV_FILE_CURRENT,
	NOKV_FILE_LOCK,
	NOKV_FILE_TEMP
} nokv_file_kind;

/* classify a directory entry name, returning its number where it has one */
nokv_file_kind nokv_parse_file_name(const char *name, uint64_t *number);

/* full-length I/O, retrying on EINTR and short transfers */
int			nokv_pread_full(int fd, void *buf, size_t n, uint64_t off,
							const char *path, nokv_error *err);
int			nokv_pwrite_full(int fd, const void *buf, size_t n, uint64_t off,
							 const char *path, nokv_error *err);
int			nokv_write_full(int fd, const void *buf, size_t n,
							const char *path, nokv_error *err);
int			nokv_fdatasync(int fd, const char *path, nokv_error *err);
int			nokv_fsync_dir(const char *dir, nokv_error *err);

/* read a whole (small) file into a malloc'ed buffer */
int			nokv_read_file(const char *path, char **data, size_t *len, nokv_error *err);

/*
 * Write data to path atomically: path.tmp, fsync, rename, fsync directory.
 */
int			nokv_write_file_atomic(const char *dir, const char *name,
								   const void *data, size_t len, nokv_error *err);

int			nokv_file_size(const char *path, uint64_t *size, nokv_error *err);
int			nokv_mkdir_p(const char *dir, nokv_error *err);

#endif							/* NOKV_FILE_H */
