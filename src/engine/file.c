/*-------------------------------------------------------------------------
 *
 * file.c
 *	  POSIX file helpers: full reads/writes, fsync, atomic replace.
 *
 * Short transfers and EINTR are retried here so callers can treat every
 * read or write as all-or-error.  A failed fsync is reported as an error
 * and never retried: after a failed fsync the kernel may have dropped the
 * dirty pages, so the only safe reaction is to stop trusting the file
 * (PostgreSQL's "fsyncgate" lesson).
 *
 * src/engine/file.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/file.h"
#include "nokv/status.h"

nokv_file_kind
nokv_parse_file_name(const char *name, uint64_t *number)
{
	char	   *end;
	unsigned long long n;
	size_t		len = strlen(name);

	*number = 0;
	if (len > 4 && strcmp(name + len - 4, NOKV_TMP_SUFFIX) == 0)
		return NOKV_FILE_TEMP;
	if (strcmp(name, NOKV_CURRENT_NAME) == 0)
		return NOKV_FILE_CURRENT;
	if (strcmp(name, NOKV_LOCK_NAME) == 0)
		return NOKV_FILE_LOCK;
	if (strncmp(name, "MANIFEST-", 9) == 0)
	{
		if (name[9] < '0' || name[9] > '9')
			return NOKV_FILE_UNKNOWN;
		errno = 0;
		n = strtoull(name + 9, &end, 10);
		if (errno || *end != '\0')
			return NOKV_FILE_UNKNOWN;
		*number = n;
		return NOKV_FILE_MANIFEST;
	}
	if (name[0] < '0' || name[0] > '9')
		return NOKV_FILE_UNKNOWN;
	errno = 0;
	n = strtoull(name, &end, 10);
	if (errno)
		return NOKV_FILE_UNKNOWN;
	*number = n;
	if (strcmp(end, ".sst") == 0)
		return NOKV_FILE_SST;
	if (strcmp(end, ".wal") == 0)
		return NOKV_FILE_WAL;
	return NOKV_FILE_UNKNOWN;
}

int
nokv_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *path,
				nokv_error *err)
{
	char	   *p = buf;

	while (n > 0)
	{
		ssize_t		r = pread(fd, p, n, (off_t) off);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return nokv_error_errno(err, "could not read %zu bytes at offset %llu of %s",
									n, (unsigned long long) off, path);
		}
		if (r == 0)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "unexpected end of file at offset %llu of %s",
								  (unsigned long long) off, path);
		p += r;
		n -= r;
		off += r;
	}
	return NOKV_OK;
}

int
nokv_pwrite_full(int fd, const void *buf, size_t n, uint64_t off, const char *path,
				 nokv_error *err)
{
	const char *p = buf;

	while (n > 0)
	{
		ssize_t		r = pwrite(fd, p, n, (off_t) off);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return nokv_error_errno(err, "could not write %zu bytes at offset %llu of %s",
									n, (unsigned long long) off, path);
		}
		p += r;
		n -= r;
		off += r;
	}
	return NOKV_OK;
}

int
nokv_write_full(int fd, const void *buf, size_t n, const char *path, nokv_error *err)
{
	const char *p = buf;

	while (n > 0)
	{
		ssize_t		r = write(fd, p, n);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return nokv_error_errno(err, "could not write to %s", path);
		}
		p += r;
		n -= r;
	}
	return NOKV_OK;
}

int
nokv_fdatasync(int fd, const char *path, nokv_error *err)
{
	if (fdatasync(fd) != 0)
		return nokv_error_errno(err, "could not fsync %s", path);
	return NOKV_OK;
}

int
nokv_fsync_dir(const char *dir, nokv_error *err)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return nokv_error_errno(err, "could not open directory %s", dir);
	if (fsync(fd) != 0)
	{
		int			rc = nokv_error_errno(err, "could not fsync directory %s", dir);

		close(fd);
		return rc;
	}
	close(fd);
	return NOKV_OK;
}

int
nokv_read_file(const char *path, char **data, size_t *len, nokv_error *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int			rc;

	*data = NULL;
	*len = 0;
	if (fd < 0)
	{
		if (errno == ENOENT)
			return nokv_error_set(err, NOKV_NOT_FOUND, "file %s does not exist", path);
		return nokv_error_errno(err, "could not open %s", path);
	}
	if (fstat(fd, &st) != 0)
	{
		rc = nokv_error_errno(err, "could not stat %s", path);
		close(fd);
		return rc;
	}
	*data = nokv_malloc((size_t) st.st_size + 1);
	rc = nokv_pread_full(fd, *data, (size_t) st.st_size, 0, path, err);
	close(fd);
	if (rc != NOKV_OK)
	{
		free(*data);
		*data = NULL;
		return rc;
	}
	(*data)[st.st_size] = '\0';
	*len = (size_t) st.st_size;
	return NOKV_OK;
}

int
nokv_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
					   nokv_error *err)
{
	char		tmp[4096];
	char		dst[4096];
	int			fd;
	int			rc;

	snprintf(tmp, sizeof(tmp), "%s/%s%s", dir, name, NOKV_TMP_SUFFIX);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return nokv_error_errno(err, "could not create %s", tmp);
	rc = nokv_write_full(fd, data, len, tmp, err);
	if (rc == NOKV_OK)
		rc = nokv_fdatasync(fd, tmp, err);
	close(fd);
	if (rc == NOKV_OK && rename(tmp, dst) != 0)
		rc = nokv_error_errno(err, "could not rename %s to %s", tmp, dst);
	if (rc != NOKV_OK)
	{
		unlink(tmp);
		return rc;
	}
	return nokv_fsync_dir(dir, err);
}

int
nokv_file_size(const char *path, uint64_t *size, nokv_error *err)
{
	struct stat st;

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return nokv_error_set(err, NOKV_NOT_FOUND, "file %s does not exist", path);
		return nokv_error_errno(err, "could not stat %s", path);
	}
	*size = (uint64_t) st.st_size;
	return NOKV_OK;
}

int
nokv_mkdir_p(const char *dir, nokv_error *err)
{
	char		path[4096];
	size_t		len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "invalid directory name");
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return nokv_error_errno(err, "could not create directory %s", path);
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return nokv_error_errno(err, "could not create directory %s", path);
	return NOKV_OK;
}
