/*-------------------------------------------------------------------------
 *
 * platform_pthread.c
 *	  The built-in platform: process-shared pthread primitives in the region.
 *
 * Used by the standalone library, its tests and the CLI.  Locks are
 * writer-preferring rwlocks (so a stream of readers cannot starve the
 * flush that wants to install a new version).  A condition variable is a
 * mutex + pthread cond + sequence number: a waiter samples the sequence
 * while still holding the engine lock, so a broadcast issued after the
 * waiter released that lock is never lost.
 *
 * All objects are PTHREAD_PROCESS_SHARED, so forked processes mapping the
 * same region share them.
 *
 * src/engine/platform_pthread.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nokv/platform.h"
#include "nokv/region.h"

typedef struct pt_cond
{
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	uint64_t	seq;
} pt_cond;

typedef struct pt_storage
{
	pthread_rwlock_t locks[NOKV_LOCK_COUNT];
	pt_cond		conds[NOKV_COND_COUNT];
} pt_storage;

size_t
nokv_pthread_platform_size(void)
{
	return NOKV_ALIGN(sizeof(pt_storage), 64);
}

void
nokv_pthread_platform_format(void *mem)
{
	pt_storage *s = mem;
	pthread_rwlockattr_t rwa;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setpshared(&rwa, PTHREAD_PROCESS_SHARED);
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (int i = 0; i < NOKV_LOCK_COUNT; i++)
		pthread_rwlock_init(&s->locks[i], &rwa);
	pthread_rwlockattr_destroy(&rwa);

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int i = 0; i < NOKV_COND_COUNT; i++)
	{
		pthread_mutex_init(&s->conds[i].mutex, &ma);
		pthread_cond_init(&s->conds[i].cond, &ca);
	}
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_destroy(&ca);
}

static void
pt_fatal(const char *what, int rc)
{
	fprintf(stderr, "nokv: %s failed: %s\n", what, strerror(rc));
	abort();
}

static void
pt_lock_acquire(void *arg, int lock_id, bool exclusive)
{
	pt_storage *s = arg;
	int			rc = exclusive ? pthread_rwlock_wrlock(&s->locks[lock_id])
		: pthread_rwlock_rdlock(&s->locks[lock_id]);

	if (rc != 0)
		pt_fatal("pthread_rwlock_lock", rc);
}

static void
pt_lock_release(void *arg, int lock_id)
{
	pt_storage *s = arg;
	int			rc = pthread_rwlock_unlock(&s->locks[lock_id]);

	if (rc != 0)
		pt_fatal("pthread_rwlock_unlock", rc);
}

static void
pt_cond_wait(void *arg, int cond_id, int lock_id, int timeout_ms)
{
	pt_storage *s = arg;
	pt_cond    *c = &s->conds[cond_id];
	uint64_t	seq;
	struct timespec deadline;

	pthread_mutex_lock(&c->mutex);
	seq = c->seq;
	pthread_mutex_unlock(&c->mutex);

	pt_lock_release(arg, lock_id);

	if (timeout_ms >= 0)
	{
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L)
		{
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&c->mutex);
	while (c->seq == seq)
	{
		int			rc = timeout_ms >= 0
			? pthread_cond_timedwait(&c->cond, &c->mutex, &deadline)
			: pthread_cond_wait(&c->cond, &c->mutex);

		if (rc == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&c->mutex);

	pt_lock_acquire(arg, lock_id, true);
}

static void
pt_cond_broadcast(void *arg, int cond_id)
{
	pt_storage *s = arg;
	pt_cond    *c = &s->conds[cond_id];

	pthread_mutex_lock(&c->mutex);
	c->seq++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mutex);
}

static void
pt_log(void *arg, int level, const char *msg)
{
	static const char *names[] = {"debug", "info", "warning", "error"};

	(void) arg;
	if (level <= 0 && getenv("NOKV_DEBUG") == NULL)
		return;
	fprintf(stderr, "nokv %s: %s\n", names[level < 0 ? 0 : (level > 3 ? 3 : level)], msg);
}

void
nokv_pthread_platform_bind(nokv_platform *p, void *mem)
{
	*p = (nokv_platform) {
		.arg = mem,
		.lock_acquire = pt_lock_acquire,
		.lock_release = pt_lock_release,
		.cond_wait = pt_cond_wait,
		.cond_broadcast = pt_cond_broadcast,
		.log = pt_log,
		.report_wait = NULL,
	};
}

void
nokv_log(const nokv_platform *p, int level, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	if (!p || !p->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->log(p->arg, level, msg);
}
