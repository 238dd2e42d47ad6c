/*-------------------------------------------------------------------------
 *
 * bench.h
 *	  Declarations shared by the files of nokv-bench.
 *
 * nokv-bench drives nokv, RocksDB and LevelDB through one small table of
 * function pointers (bench_engine) so that every workload runs exactly the
 * same loop, key sequence and value bytes against each engine; only the
 * adaptor behind the pointers differs.  The indirect call costs a few
 * nanoseconds per operation and is paid equally by every engine.
 *
 * Every adaptor function checks the engine's return code itself and calls
 * bench_fatal() on an error, so the workload loops never see failures.
 *
 * bench/bench.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_BENCH_H
#define NOKV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the keys are 16 zero-padded decimal digits, as db_bench's */
#define BENCH_KEY_SIZE		16
/* data-block size given to every engine (all three default to 4 KiB) */
#define BENCH_BLOCK_SIZE	4096
#define BENCH_BLOOM_BITS	10
/* RocksDB integrated BlobDB threshold for the --blob column */
#define BENCH_MIN_BLOB_SIZE 1024

#define lengthof(array) (sizeof(array) / sizeof((array)[0]))

/* settings every engine receives identically */
typedef struct bench_config
{
	size_t		value_size;
	size_t		memtable_bytes; /* write_buffer_size / memtable_size */
	size_t		cache_bytes;	/* block cache budget */
	bool		sync;			/* fsync every write */
} bench_config;

/* an engine's value log (nokv) as its statistics report it */
typedef struct bench_vlog_stats
{
	uint64_t	segments;
	uint64_t	bytes;			/* value_log.bytes */
	uint64_t	discard_bytes;	/* value_log.discard_bytes */
	uint64_t	gc_runs;		/* value_log.gc.gc_runs (background ones too) */
	uint64_t	pending_deletes;	/* collected, not yet unlinked */
} bench_vlog_stats;

/*
 * One engine.  "db" and "it" are the adaptor's own handles.  get() reports
 * whether the key exists and checks the value length; iter_free() checks the
 * iterator's status before freeing it.
 */
typedef struct bench_engine
{
	const char *name;			/* column name in the output */
	const char *compression;	/* what its data blocks are compressed with */
	const char *threads;		/* its background threads, for the header */

	void	   *(*open) (const bench_config *cfg, const char *dir);
	void		(*put) (void *db, const char *key, size_t klen,
						const char *val, size_t vlen);
	bool		(*get) (void *db, const char *key, size_t klen);
	void	   *(*iter_new) (void *db);
	void		(*iter_seek_to_first) (void *it);
	void		(*iter_seek) (void *it, const char *key, size_t klen);
	void		(*iter_next) (void *it);
	bool		(*iter_valid) (void *it);
	const char *(*iter_key) (void *it, size_t *klen);
	const char *(*iter_value) (void *it, size_t *vlen);
	void		(*iter_free) (void *it);

	/*
	 * Optional: the engine's own write-amplification figure and the user
	 * bytes it is relative to, read just before close.  Returns false if the
	 * engine has none.
	 */
	bool		(*own_write_amp) (void *db, double *wamp, uint64_t *user_bytes,
								  char *detail, size_t detail_len);

	/*
	 * Optional: how this engine stores values of cfg->value_size bytes (key-
	 * value separation or not, its thresholds and GC setting), for the
	 * header.  Returns the smallest value it stores apart from the LSM (blob
	 * files, value log), 0 if it never does.
	 */
	size_t		(*value_storage) (const bench_config *cfg, char *buf, size_t len);

	/*
	 * Optional: the settings the opened DB in dir records about itself (the
	 * RocksDB OPTIONS file), for the results file.  The adaptor has already
	 * checked them against what it asked for.
	 */
	bool		(*recorded_options) (const char *dir, char *buf, size_t len);

	/*
	 * Optional, all three or none: the value-log GC phase.  compact_all()
	 * flushes and compacts so that every overwritten value is counted as
	 * discard; vlog_gc_step() collects one segment if one qualifies at the
	 * configured ratio and returns whether it did.
	 */
	bool		(*vlog_stats) (void *db, bench_vlog_stats *vs);
	void		(*compact_all) (void *db);
	bool		(*vlog_gc_step) (void *db);

	/* appended to the engine's space_amp line (NULL: nothing) */
	const char *space_note;

	void		(*close) (void *db);
} bench_engine;

extern const bench_engine bench_engine_nokv;
extern const bench_engine bench_engine_rocksdb;
extern const bench_engine bench_engine_rocksdb_blob;
extern const bench_engine bench_engine_leveldb;

/* prints "nokv-bench: error: ..." to stderr and exits with status 1 */
extern void bench_fatal(const char *fmt,...)
			__attribute__((noreturn, format(printf, 1, 2)));

/*
 * Open and close a throw-away RocksDB in dir (which must not exist) and read
 * the library's version from the OPTIONS file it writes.  Returns false if
 * it could not be determined.  The caller removes dir.
 */
extern bool bench_rocksdb_version(const char *dir, char *buf, size_t len);

/* "major.minor" of the LevelDB library */
extern void bench_leveldb_version(char *buf, size_t len);

/* the nokv version this binary was compiled against */
extern const char *bench_nokv_version(void);

#endif							/* NOKV_BENCH_H */
