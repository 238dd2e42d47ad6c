/*-------------------------------------------------------------------------
 *
 * platform.h
 *	  Engine lock/condition ids and the built-in pthread platform.
 *
 * The engine names its locks and condition variables with small integers;
 * a platform (nokv_platform in nokv.h) maps them onto real primitives.  The
 * built-in platform keeps process-shared pthread rwlocks / mutexes /
 * condition variables inside the shared region, so forked processes that
 * map the same region share them.  The PostgreSQL extension maps them onto
 * LWLocks and ConditionVariables instead.
 *
 * Lock order (acquire in this order, never the reverse):
 *	  WRITE -> MEMTABLES -> VERSION -> FILES -> HEAP
 *	  COMPACTION -> MANIFEST -> VERSION
 *	  CACHE_n, WAL_SYNC, VLOG and HOTRING are leaves (nothing is acquired
 *	  while holding them except HEAP).
 *
 * include/nokv/platform.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_PLATFORM_H
#define NOKV_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "nokv/nokv.h"

typedef enum nokv_lock_id
{
	NOKV_LOCK_WRITE = 0,		/* WAL append, version assignment, memtable rotation */
	NOKV_LOCK_WAL_SYNC,			/* group-commit leader election */
	NOKV_LOCK_MEMTABLES,		/* memtable list (active, immutables, states) */
	NOKV_LOCK_VERSION,			/* current version pointer and version refcounts */
	NOKV_LOCK_FILES,			/* the shared file-metadata table */
	NOKV_LOCK_MANIFEST,			/* appending to the manifest */
	NOKV_LOCK_COMPACTION,		/* picking compactions / files being compacted */
	NOKV_LOCK_SNAPSHOTS,		/* snapshot slots */
	NOKV_LOCK_HEAP,				/* the shared heap allocator */
	NOKV_LOCK_STATS,			/* multi-field statistics updates */
	NOKV_LOCK_VLOG,				/* value-log head and segment table */
	NOKV_LOCK_HOTRING,			/* hot-key table structure changes */
	NOKV_LOCK_CACHE_0,			/* block cache shards follow */
	NOKV_LOCK_COUNT = NOKV_LOCK_CACHE_0 + 16
} nokv_lock_id;

#define NOKV_CACHE_SHARDS 16

typedef enum nokv_cond_id
{
	NOKV_COND_WAL_SYNC = 0,		/* a group-commit sync finished */
	NOKV_COND_PUBLISH,			/* the published version advanced */
	NOKV_COND_STALL,			/* flush/compaction made room for writers */
	NOKV_COND_BGWORK,			/* background work appeared */
	NOKV_COND_COUNT
} nokv_cond_id;

/* convenience wrappers used throughout the engine */
static inline void
nokv_lock(const nokv_platform *p, int id, bool exclusive)
{
	p->lock_acquire(p->arg, id, exclusive);
}

static inline void
nokv_unlock(const nokv_platform *p, int id)
{
	p->lock_release(p->arg, id);
}

static inline void
nokv_cond_wait(const nokv_platform *p, int cond, int lock, int timeout_ms)
{
	p->cond_wait(p->arg, cond, lock, timeout_ms);
}

static inline void
nokv_cond_broadcast(const nokv_platform *p, int cond)
{
	p->cond_broadcast(p->arg, cond);
}

void		nokv_log(const nokv_platform *p, int level, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* ---------- built-in pthread platform ---------- */

/* bytes of region storage the pthread platform needs */
size_t		nokv_pthread_platform_size(void);
/* initialise its primitives in mem (process-shared); once per region */
void		nokv_pthread_platform_format(void *mem);
/* a platform whose arg points at mem (may differ per process) */
void		nokv_pthread_platform_bind(nokv_platform *p, void *mem);

#endif							/* NOKV_PLATFORM_H */
