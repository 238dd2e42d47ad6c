/*-------------------------------------------------------------------------
 *
 * tap.h
 *	  A tiny header-only TAP producer for the engine's C unit tests.
 *
 * Tests print "ok N - name" / "not ok N - name" and a final plan line, so
 * `prove` can run every test binary.  Usage:
 *
 *	  int main(void) { ok(1 + 1 == 2, "adds"); return tap_done(); }
 *
 * test/engine/tap.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_TAP_H
#define NOKV_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	tap_count_ __attribute__((unused)) = 0;
static int	tap_failed_ __attribute__((unused)) = 0;

static inline void
tap_diag(const char *fmt,...)
{
	va_list		ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static inline int
tap_ok_(int cond, const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	tap_count_++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
	{
		tap_failed_++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...) do { \
	long long tap_g_ = (long long) (got), tap_w_ = (long long) (want); \
	if (!tap_ok_(tap_g_ == tap_w_, __FILE__, __LINE__, __VA_ARGS__)) \
		tap_diag("    got: %lld, expected: %lld", tap_g_, tap_w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *tap_g_ = (got), *tap_w_ = (want); \
	int tap_c_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0 : tap_g_ == tap_w_; \
	if (!tap_ok_(tap_c_, __FILE__, __LINE__, __VA_ARGS__)) \
		tap_diag("    got: '%s', expected: '%s'", tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)"); \
} while (0)

/* abort the whole test program: a precondition for everything after it failed */
#define tap_bail(...) do { printf("Bail out! "); printf(__VA_ARGS__); putchar('\n'); exit(255); } while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_count_);
	if (tap_failed_)
		printf("# failed %d of %d\n", tap_failed_, tap_count_);
	fflush(stdout);
	return tap_failed_ ? 1 : 0;
}

/* a scratch directory under $TMPDIR (or /tmp), created fresh */
static inline char *
tap_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char	   *path = malloc(4096);

	snprintf(path, 4096, "%s/nokv-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(path))
		tap_bail("mkdtemp failed for %s", path);
	return path;
}

/* rm -rf for scratch directories (only ever called on tap_tmpdir results) */
static inline void
tap_rmdir(const char *path)
{
	char		cmd[4200];

	if (!path || strstr(path, "nokv-") == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", path);
}

#endif							/* NOKV_TAP_H */
