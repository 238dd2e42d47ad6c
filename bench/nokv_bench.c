/*-------------------------------------------------------------------------
 *
 * nokv_bench.c
 *	  nokv-bench: db_bench-style workloads on nokv, RocksDB and LevelDB in
 *	  one run, with the same keys, values and budgets for every engine.
 *
 * Workloads (always run in this order, whatever order --workloads lists):
 *
 *	fillseq			num puts of keys 0..num-1 in order, on a DB of its own
 *	fillrandom		num puts of uniformly random keys (with replacement, as
 *					db_bench), on the "main" DB
 *	overwrite		num more random puts on the main DB
 *	readrandom		reads random gets over the key space
 *	readseq			one full scan
 *	seekrandom10	reads/10 seeks, each followed by up to 10 nexts
 *	seekrandom100	the same with 100 nexts ("seekrandom" selects both)
 *
 * The reads run on the main DB after the writes, as db_bench runs them in
 * one invocation.  If reads or overwrite are asked for without fillrandom,
 * the main DB is first filled by an untimed fillrandom ("prefill").
 *
 * With overwrite, an engine with a value log (nokv) then gets a GC phase
 * after the reads: nokv_compact_all() so that every overwritten value is
 * counted as discard, then nokv_vlog_gc() until no segment qualifies, timed,
 * and the space amplification is measured again.  The phase runs after the
 * reads so that every engine's reads see a DB in the same state (just
 * written, compactions still pending), and its I/O is reported apart from
 * write_amp, which stays comparable across engines.
 *
 * Engines run one after another: an engine runs its whole sequence, is
 * closed (which waits for its running background jobs) and its directories
 * are deleted before the next engine starts.  Keeping the DBs of several
 * engines open at once would let one engine's leftover compactions steal
 * CPU from the next one's measurement on a 2-vCPU machine, and would make
 * the per-process /proc/self/io counters impossible to attribute.
 *
 * Every engine sees the same key sequence (a splitmix64 stream seeded from
 * --seed and the workload, never from the engine) and the same value bytes.
 * Reads are checked: a get or seek must find exactly the keys that the write
 * workloads stored, and a scan must return exactly that many entries, so a
 * wrong engine fails the run instead of producing a fast number.
 *
 * bench/nokv_bench.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---------- workloads and engines ---------- */

typedef enum workload_id
{
	W_FILLSEQ,
	W_FILLRANDOM,
	W_OVERWRITE,
	W_READRANDOM,
	W_READSEQ,
	W_SEEKRANDOM10,
	W_SEEKRANDOM100,
	W_COUNT,
	W_PREFILL = W_COUNT			/* untimed fillrandom; same key sequence */
} workload_id;

static const char *const workload_names[W_COUNT] = {
	"fillseq", "fillrandom", "overwrite", "readrandom", "readseq",
	"seekrandom10", "seekrandom100"
};

#define DEFAULT_WORKLOADS "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom"

/* the column order of the output */
enum
{
	E_NOKV, E_ROCKSDB, E_LEVELDB, E_ROCKSDB_BLOB, E_COUNT
};

static const bench_engine *const engines[E_COUNT] = {
	&bench_engine_nokv, &bench_engine_rocksdb, &bench_engine_leveldb,
	&bench_engine_rocksdb_blob
};

#define DEFAULT_ENGINES "nokv,rocksdb,leveldb"

/* ---------- flags ---------- */

static uint64_t flag_num = 1000000;
static uint64_t flag_reads;
static bool flag_reads_set;
static uint64_t flag_value_size = 100;
static bool flag_sync;
static uint64_t flag_memtable_mb = 64;
static uint64_t flag_cache_mb = 64;
static uint64_t flag_seed = 301;
static bool flag_blob;
static const char *flag_db;
static const char *flag_results;
static bool run_workload[W_COUNT];
static bool run_engine[E_COUNT];

/* ---------- run state ---------- */

static char db_root[4096];
static bool db_root_created;	/* remove db_root itself at the end */
static FILE *results_file;

/* the value bytes every engine writes, db_bench style */
static char *value_buf;
static size_t value_buf_len;

/* which keys the main DB holds after fillrandom(/prefill) and overwrite */
static uint8_t *present;
static uint64_t distinct_after_fill;
static uint64_t distinct_final;

typedef struct io_counters
{
	uint64_t	wchar;
	uint64_t	write_bytes;
	uint64_t	cancelled_write_bytes;
} io_counters;

/* apparent bytes of a DB directory, by kind of file */
typedef struct dir_usage
{
	uint64_t	total;
	uint64_t	sst;			/* .sst, .ldb */
	uint64_t	blob;			/* .blob (RocksDB blob files) */
	uint64_t	vlog;			/* .vlog (nokv value-log segments) */
	uint64_t	wal;			/* .wal (nokv), .log (RocksDB, LevelDB) */
	uint64_t	other;			/* manifests, OPTIONS, info logs, ... */
} dir_usage;

/* the value-log GC phase (engines with a value log, with overwrite) */
typedef struct gc_result
{
	bool		ran;
	uint64_t	runs;			/* segments collected by our nokv_vlog_gc loop */
	double		compact_secs;	/* nokv_compact_all */
	double		gc_secs;		/* the nokv_vlog_gc loop */
	bench_vlog_stats before;	/* after the reads, before the phase */
	bench_vlog_stats compacted; /* after nokv_compact_all */
	bench_vlog_stats after;		/* after the loop */
	dir_usage	dir_before;
	dir_usage	dir_compacted;
	dir_usage	dir_after;
	bool		io_ok;
	io_counters io;				/* I/O of the phase */
} gc_result;

typedef struct engine_result
{
	bool		ran[W_COUNT];
	double		ops_per_sec[W_COUNT];

	/* write amplification: /proc/self/io over each DB's open..close */
	bool		io_ok;
	io_counters io_delta;		/* summed over the engine's DB windows */
	uint64_t	user_bytes;

	/* the engine's own figure, user-bytes-weighted over its DBs */
	bool		own_wa_ok;
	double		own_wa_weighted;
	uint64_t	own_wa_user;

	/* values at least this large are stored apart from the LSM (0: never) */
	size_t		separation_min;

	/* space amplification after the last write workload */
	bool		space_ok;
	dir_usage	space_dir;
	uint64_t	space_live;
	const char *space_after;

	gc_result	gc;
} engine_result;

static engine_result results[E_COUNT];

/* ---------- output ---------- */

/* one line (or part of one) to stdout and to the results file */
static void out(const char *fmt,...)
			__attribute__((format(printf, 1, 2), nonnull(1)));

static void
out(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fflush(stdout);
	if (results_file != NULL)
	{
		va_start(ap, fmt);
		vfprintf(results_file, fmt, ap);
		va_end(ap);
		fflush(results_file);
	}
}

void
bench_fatal(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "nokv-bench: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (results_file != NULL)
	{
		fprintf(results_file, "# ERROR: ");
		va_start(ap, fmt);
		vfprintf(results_file, fmt, ap);
		va_end(ap);
		fputc('\n', results_file);
		fclose(results_file);
	}
	/* leave the DBs for inspection; they are what went wrong */
	if (db_root[0] != '\0')
		fprintf(stderr, "nokv-bench: DB directories are left under %s\n",
				db_root);
	exit(1);
}

/* ---------- helpers ---------- */

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* splitmix64: fast, deterministic, good enough for key choice */
static inline uint64_t
rng_next(uint64_t *state)
{
	uint64_t	z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* uniform in [0, n) by multiply-shift (no modulo bias worth mentioning) */
static inline uint64_t
rng_below(uint64_t *state, uint64_t n)
{
	return (uint64_t) (((unsigned __int128) rng_next(state) * n) >> 64);
}

/*
 * The stream of a workload depends only on --seed and the workload, so every
 * engine gets the same keys.  The prefill uses fillrandom's stream so that a
 * prefilled DB holds the same keys a timed fillrandom would have written.
 */
static uint64_t
workload_seed(int wid)
{
	uint64_t	s;

	if (wid == W_PREFILL)
		wid = W_FILLRANDOM;
	s = flag_seed ^ ((uint64_t) (wid + 1) * UINT64_C(0xd1b54a32d192ed03));
	(void) rng_next(&s);
	return s;
}

/* "%016llu" without snprintf's overhead */
static inline void
make_key(char *buf, uint64_t k)
{
	for (int i = BENCH_KEY_SIZE - 1; i >= 0; i--)
	{
		buf[i] = (char) ('0' + k % 10);
		k /= 10;
	}
}

static inline bool
key_present(uint64_t k)
{
	return (present[k >> 3] >> (k & 7)) & 1;
}

/*
 * db_bench's RandomGenerator with compression_ratio 0.5: 100-byte pieces made
 * of 50 random printable bytes followed by a copy of them, so that values
 * compress about 2:1.  Values are consecutive slices of the buffer.
 */
static void
build_value_buffer(void)
{
	uint64_t	s = flag_seed ^ UINT64_C(0x5851f42d4c957f2d);
	size_t		want = (size_t) 1 << 20;

	if (want < flag_value_size)
		want = flag_value_size;
	want = (want + 99) / 100 * 100;
	value_buf = malloc(want);
	if (value_buf == NULL)
		bench_fatal("out of memory for the value buffer");
	for (size_t off = 0; off < want; off += 100)
	{
		for (int i = 0; i < 50; i++)
			value_buf[off + i] = (char) (' ' + rng_below(&s, 95));
		memcpy(value_buf + off + 50, value_buf + off, 50);
	}
	value_buf_len = want;
}

static inline const char *
next_value(size_t *pos)
{
	const char *v;

	if (*pos + flag_value_size > value_buf_len)
		*pos = 0;
	v = value_buf + *pos;
	*pos += flag_value_size;
	return v;
}

/* mark the keys a random write workload stores; returns the new distinct count */
static uint64_t
mark_random_keys(int wid, uint64_t distinct)
{
	uint64_t	s = workload_seed(wid);

	for (uint64_t i = 0; i < flag_num; i++)
	{
		uint64_t	k = rng_below(&s, flag_num);

		if (!key_present(k))
		{
			present[k >> 3] |= (uint8_t) (1u << (k & 7));
			distinct++;
		}
	}
	return distinct;
}

static bool
read_io(io_counters *c)
{
	FILE	   *f = fopen("/proc/self/io", "r");
	char		name[64];
	unsigned long long v;
	int			seen = 0;

	memset(c, 0, sizeof(*c));
	if (f == NULL)
		return false;
	while (fscanf(f, "%63[^:]: %llu\n", name, &v) == 2)
	{
		if (strcmp(name, "wchar") == 0)
			c->wchar = v;
		else if (strcmp(name, "write_bytes") == 0)
			c->write_bytes = v;
		else if (strcmp(name, "cancelled_write_bytes") == 0)
			c->cancelled_write_bytes = v;
		else
			continue;
		seen++;
	}
	fclose(f);
	return seen == 3;
}

static dir_usage du_acc;

static bool
has_suffix(const char *name, const char *suffix)
{
	size_t		n = strlen(name);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(name + n - m, suffix) == 0;
}

static int
du_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *name = path + ftw->base;
	uint64_t	size = (uint64_t) st->st_size;

	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	du_acc.total += size;
	if (has_suffix(name, ".sst") || has_suffix(name, ".ldb"))
		du_acc.sst += size;
	else if (has_suffix(name, ".blob"))
		du_acc.blob += size;
	else if (has_suffix(name, ".vlog"))
		du_acc.vlog += size;
	else if (has_suffix(name, ".wal") || has_suffix(name, ".log"))
		du_acc.wal += size;
	else
		du_acc.other += size;
	return 0;
}

/* apparent size (sum of st_size) of every regular file under dir, by kind */
static dir_usage
dir_size(const char *dir)
{
	memset(&du_acc, 0, sizeof(du_acc));
	if (nftw(dir, du_cb, 32, FTW_PHYS) != 0)
		bench_fatal("cannot walk %s: %s", dir, strerror(errno));
	return du_acc;
}

/* "sst=N blob=N vlog=N wal=N other=N" */
static const char *
dir_usage_detail(const dir_usage *u, char *buf, size_t len)
{
	snprintf(buf, len, "sst=%llu blob=%llu vlog=%llu wal=%llu other=%llu",
			 (unsigned long long) u->sst, (unsigned long long) u->blob,
			 (unsigned long long) u->vlog, (unsigned long long) u->wal,
			 (unsigned long long) u->other);
	return buf;
}

static double
ratio_or_zero(uint64_t num, uint64_t den)
{
	return den > 0 ? (double) num / (double) den : 0.0;
}

static int
rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void) st;
	(void) type;
	(void) ftw;
	if (remove(path) != 0)
		fprintf(stderr, "nokv-bench: warning: cannot remove %s: %s\n",
				path, strerror(errno));
	return 0;
}

static void
remove_tree(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) != 0)
		return;
	nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p */
static void
make_dirs(const char *path)
{
	char		buf[4096];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
		bench_fatal("path too long: %s", path);
	for (char *p = buf + 1; *p != '\0'; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			bench_fatal("cannot create %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		bench_fatal("cannot create %s: %s", buf, strerror(errno));
}

/*
 * CPU seconds used by the whole machine (busy time of every CPU) and by
 * this process (all its threads), for telling the engine's own CPU cost
 * from other processes' competing work.  The machine figure includes the
 * kernel's writeback threads, which mostly work for us.
 */
typedef struct cpu_times
{
	double		machine_busy;
	double		self;
	double		wall;
} cpu_times;

static bool
read_cpu_times(cpu_times *c)
{
	FILE	   *f;
	unsigned long long v[8];
	unsigned long utime,
				stime;
	double		tick = (double) sysconf(_SC_CLK_TCK);
	int			n;

	memset(c, 0, sizeof(*c));
	c->wall = now_sec();
	f = fopen("/proc/stat", "r");
	if (f == NULL)
		return false;
	/* cpu user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return false;
	c->machine_busy = (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;

	f = fopen("/proc/self/stat", "r");
	if (f == NULL)
		return false;
	/* fields 14 and 15; the command (field 2) has no spaces here */
	n = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &utime, &stime);
	fclose(f);
	if (n != 2)
		return false;
	c->self = (double) (utime + stime) / tick;
	return true;
}

/* "cpu=<self> s (<cores> cores) other=<rest of the machine> s" */
static const char *
cpu_detail(const cpu_times *start, const cpu_times *end, char *buf, size_t len)
{
	double		self = end->self - start->self;
	double		other = (end->machine_busy - start->machine_busy) - self;
	double		wall = end->wall - start->wall;

	/* the two counters tick separately: tiny negatives are rounding */
	if (other < 0)
		other = 0;
	snprintf(buf, len, "cpu=%.2f s (%.2f cores) other=%.2f s",
			 self, self / (wall > 1e-9 ? wall : 1e-9), other);
	return buf;
}

/* the value log must stay unchanged this long for the GC phase to end */
#define GC_QUIET_USEC 500000
/* ... and the phase gives up waiting for that after this long */
#define GC_MAX_SECONDS 600

/* ---------- workloads ---------- */

/* ops/s, guarding against a zero interval on tiny runs */
static double
rate(uint64_t ops, double secs)
{
	return (double) ops / (secs > 1e-9 ? secs : 1e-9);
}

static void
report(const bench_engine *e, const char *wname, uint64_t ops, double secs,
	   uint64_t bytes, const char *extra)
{
	out("# %s %s: %.0f ops/s (%llu ops in %.3f s, %.1f MB/s)%s%s\n",
		e->name, wname, rate(ops, secs), (unsigned long long) ops, secs,
		(double) bytes / 1e6 / (secs > 1e-9 ? secs : 1e-9),
		extra[0] != '\0' ? " " : "", extra);
}

static double
do_fill(const bench_engine *e, void *db, int wid, engine_result *r)
{
	uint64_t	s = workload_seed(wid);
	bool		random = (wid != W_FILLSEQ);
	size_t		vpos = 0;
	char		key[BENCH_KEY_SIZE];
	double		t0,
				secs;
	uint64_t	bytes = flag_num * (BENCH_KEY_SIZE + flag_value_size);
	cpu_times	cpu_start,
				cpu_end;
	bool		cpu_ok;
	char		extra[128] = "";

	cpu_ok = read_cpu_times(&cpu_start);
	t0 = now_sec();
	for (uint64_t i = 0; i < flag_num; i++)
	{
		make_key(key, random ? rng_below(&s, flag_num) : i);
		e->put(db, key, BENCH_KEY_SIZE, next_value(&vpos), flag_value_size);
	}
	secs = now_sec() - t0;
	if (cpu_ok && read_cpu_times(&cpu_end))
		cpu_detail(&cpu_start, &cpu_end, extra, sizeof(extra));

	r->user_bytes += bytes;
	report(e, wid == W_PREFILL ? "prefill (fillrandom, untimed)" : workload_names[wid],
		   flag_num, secs, bytes, extra);
	return rate(flag_num, secs);
}

static double
do_readrandom(const bench_engine *e, void *db)
{
	uint64_t	s = workload_seed(W_READRANDOM);
	char		key[BENCH_KEY_SIZE];
	uint64_t	found = 0;
	double		t0,
				secs;
	char		extra[256];
	char		cpu[128] = "";
	cpu_times	cpu_start,
				cpu_end;
	bool		cpu_ok;

	cpu_ok = read_cpu_times(&cpu_start);
	t0 = now_sec();
	for (uint64_t i = 0; i < flag_reads; i++)
	{
		uint64_t	k = rng_below(&s, flag_num);
		bool		hit;

		make_key(key, k);
		hit = e->get(db, key, BENCH_KEY_SIZE);
		if (hit != key_present(k))
			bench_fatal("%s: readrandom: key %.16s %s, but it %s written",
						e->name, key, hit ? "found" : "not found",
						key_present(k) ? "was" : "was never");
		found += hit;
	}
	secs = now_sec() - t0;
	if (cpu_ok && read_cpu_times(&cpu_end))
		cpu_detail(&cpu_start, &cpu_end, cpu, sizeof(cpu));

	snprintf(extra, sizeof(extra), "found=%llu/%llu %s",
			 (unsigned long long) found, (unsigned long long) flag_reads, cpu);
	report(e, "readrandom", flag_reads, secs,
		   found * (BENCH_KEY_SIZE + flag_value_size), extra);
	return rate(flag_reads, secs);
}

static double
do_readseq(const bench_engine *e, void *db)
{
	void	   *it;
	uint64_t	entries = 0;
	uint64_t	bytes = 0;
	double		t0,
				secs;
	char		extra[128];

	t0 = now_sec();
	it = e->iter_new(db);
	for (e->iter_seek_to_first(it); e->iter_valid(it); e->iter_next(it))
	{
		size_t		klen,
					vlen;

		(void) e->iter_key(it, &klen);
		(void) e->iter_value(it, &vlen);
		bytes += klen + vlen;
		entries++;
	}
	e->iter_free(it);
	secs = now_sec() - t0;

	if (entries != distinct_final)
		bench_fatal("%s: readseq returned %llu entries, the DB should hold %llu",
					e->name, (unsigned long long) entries,
					(unsigned long long) distinct_final);
	if (bytes != entries * (BENCH_KEY_SIZE + flag_value_size))
		bench_fatal("%s: readseq returned %llu key+value bytes, expected %llu",
					e->name, (unsigned long long) bytes,
					(unsigned long long) (entries * (BENCH_KEY_SIZE + flag_value_size)));

	snprintf(extra, sizeof(extra), "entries=%llu", (unsigned long long) entries);
	report(e, "readseq", entries, secs, bytes, extra);
	return rate(entries, secs);
}

static double
do_seekrandom(const bench_engine *e, void *db, int wid)
{
	int			nexts = (wid == W_SEEKRANDOM10) ? 10 : 100;
	uint64_t	seeks = flag_reads / 10 > 0 ? flag_reads / 10 : 1;
	uint64_t	s = workload_seed(wid);
	char		key[BENCH_KEY_SIZE];
	uint64_t	found = 0;
	uint64_t	bytes = 0;
	double		t0,
				secs;
	void	   *it;
	char		extra[128];

	/* one iterator for the whole workload, as db_bench's seekrandom */
	t0 = now_sec();
	it = e->iter_new(db);
	for (uint64_t i = 0; i < seeks; i++)
	{
		uint64_t	k = rng_below(&s, flag_num);
		bool		hit = false;

		make_key(key, k);
		e->iter_seek(it, key, BENCH_KEY_SIZE);
		if (e->iter_valid(it))
		{
			size_t		klen;
			const char *ik = e->iter_key(it, &klen);

			if (klen == BENCH_KEY_SIZE && memcmp(ik, key, BENCH_KEY_SIZE) < 0)
				bench_fatal("%s: seek to %.16s landed on the smaller key %.16s",
							e->name, key, ik);
			hit = (klen == BENCH_KEY_SIZE && memcmp(ik, key, BENCH_KEY_SIZE) == 0);
		}
		if (hit != key_present(k))
			bench_fatal("%s: %s: seek to key %.16s %s it, but it %s written",
						e->name, workload_names[wid], key,
						hit ? "found" : "did not find",
						key_present(k) ? "was" : "was never");
		found += hit;
		for (int j = 0; j < nexts && e->iter_valid(it); j++)
		{
			size_t		klen,
						vlen;

			(void) e->iter_key(it, &klen);
			(void) e->iter_value(it, &vlen);
			bytes += klen + vlen;
			e->iter_next(it);
		}
	}
	e->iter_free(it);
	secs = now_sec() - t0;

	snprintf(extra, sizeof(extra), "found=%llu/%llu",
			 (unsigned long long) found, (unsigned long long) seeks);
	report(e, workload_names[wid], seeks, secs, bytes, extra);
	return rate(seeks, secs);
}

/* ---------- per-engine sequence ---------- */

static void *
open_fresh(const bench_engine *e, const bench_config *cfg, const char *suffix,
		   char *dir, size_t dirlen)
{
	struct stat st;
	void	   *db;

	if (snprintf(dir, dirlen, "%s/%s-%s", db_root, e->name, suffix) >= (int) dirlen)
		bench_fatal("path too long under %s", db_root);
	/* never reuse or delete something we did not create */
	if (lstat(dir, &st) == 0)
		bench_fatal("%s already exists; remove it or pass another --db", dir);
	if (mkdir(dir, 0755) != 0)
		bench_fatal("cannot create %s: %s", dir, strerror(errno));
	db = e->open(cfg, dir);
	if (e->recorded_options != NULL)
	{
		char		opts[1024];

		if (e->recorded_options(dir, opts, sizeof(opts)))
			out("# %s OPTIONS file (%s db): %s\n", e->name, suffix, opts);
	}
	return db;
}

static void
take_own_write_amp(const bench_engine *e, void *db, engine_result *r,
				   const char *dbname)
{
	double		wa;
	uint64_t	user;
	char		detail[2048];

	if (e->own_write_amp == NULL)
		return;
	detail[0] = '\0';
	if (!e->own_write_amp(db, &wa, &user, detail, sizeof(detail)))
		return;
	out("# %s stats (%s db): write_amp=%.2f %s\n", e->name, dbname, wa, detail);
	if (user > 0)
	{
		r->own_wa_ok = true;
		r->own_wa_weighted += wa * (double) user;
		r->own_wa_user += user;
	}
}

static void
take_space(const bench_engine *e, void *db, const char *dir, uint64_t distinct,
		   const char *after, engine_result *r)
{
	char		detail[256];

	r->space_ok = true;
	r->space_dir = dir_size(dir);
	r->space_live = distinct * (BENCH_KEY_SIZE + flag_value_size);
	r->space_after = after;
	out("# %s size after %s: dir=%llu (%s) live=%llu (%llu distinct keys)\n",
		e->name, after, (unsigned long long) r->space_dir.total,
		dir_usage_detail(&r->space_dir, detail, sizeof(detail)),
		(unsigned long long) r->space_live, (unsigned long long) distinct);

	/*
	 * Large values must really have been separated, or the large-value
	 * columns would silently measure something else.  Values reach blob
	 * files and the value log at flush, so a DB that was never flushed has
	 * none yet: warn rather than fail.
	 */
	if (r->separation_min > 0 && flag_value_size >= r->separation_min &&
		r->space_dir.blob + r->space_dir.vlog == 0)
		out("# WARNING: %s has no blob or value-log files after %s although "
			"its values are at least %zu B\n", e->name, after,
			r->separation_min);
	if (e->vlog_stats != NULL)
	{
		bench_vlog_stats vs;

		if (e->vlog_stats(db, &vs))
			out("# %s value log after %s: value_log.bytes=%llu "
				"value_log.discard_bytes=%llu value_log.segments=%llu "
				"value_log.gc.gc_runs=%llu\n",
				e->name, after, (unsigned long long) vs.bytes,
				(unsigned long long) vs.discard_bytes,
				(unsigned long long) vs.segments,
				(unsigned long long) vs.gc_runs);
	}
}

static void
report_gc_step(const bench_engine *e, const char *what, double secs,
			   const dir_usage *u, const bench_vlog_stats *vs)
{
	char		detail[256];

	out("# %s gc phase: %s (%.2f s): dir=%llu (%s) value_log.bytes=%llu "
		"value_log.discard_bytes=%llu value_log.segments=%llu "
		"value_log.pending_deletes=%llu value_log.gc.gc_runs=%llu\n",
		e->name, what, secs, (unsigned long long) u->total,
		dir_usage_detail(u, detail, sizeof(detail)),
		(unsigned long long) vs->bytes,
		(unsigned long long) vs->discard_bytes,
		(unsigned long long) vs->segments,
		(unsigned long long) vs->pending_deletes,
		(unsigned long long) vs->gc_runs);
}

/*
 * Value-log GC after overwrite: compact everything first so that the
 * versions overwrite made obsolete are dropped and their values counted as
 * discard (the engine counts discard only when compaction drops a pointer),
 * then collect segments at the configured ratio until none qualifies.
 */
static void
run_gc_phase(const bench_engine *e, void *db, const char *dir, engine_result *r)
{
	gc_result  *g = &r->gc;
	io_counters io_start,
				io_end;
	double		t0,
				last_change;

	g->io_ok = read_io(&io_start);
	(void) e->vlog_stats(db, &g->before);
	g->dir_before = dir_size(dir);
	report_gc_step(e, "before", 0.0, &g->dir_before, &g->before);

	t0 = now_sec();
	e->compact_all(db);
	g->compact_secs = now_sec() - t0;
	(void) e->vlog_stats(db, &g->compacted);
	g->dir_compacted = dir_size(dir);
	report_gc_step(e, "after compact_all", g->compact_secs,
				   &g->dir_compacted, &g->compacted);

	t0 = now_sec();
	last_change = t0;
	for (;;)
	{
		bench_vlog_stats prev,
					cur;

		while (e->vlog_gc_step(db))
		{
			last_change = now_sec();
			/* each run empties a segment at or above the ratio; it must end */
			if (++g->runs > 100000)
				bench_fatal("%s: value-log GC still collecting after %llu runs",
							e->name, (unsigned long long) g->runs);
		}

		/*
		 * The engine's compaction thread collects segments too when it is
		 * idle, and a segment it is collecting is not offered to our call,
		 * which then returns 0 early; its relocations can also push other
		 * segments over the ratio.  So the phase ends only when the value
		 * log stays unchanged for GC_QUIET_USEC, nothing awaits deletion and
		 * one more call finds nothing.  The time reported runs to the last
		 * change seen (to within GC_QUIET_USEC), not to the end of that
		 * quiet check.
		 */
		if (now_sec() - t0 > GC_MAX_SECONDS)
		{
			out("# WARNING: %s value log still changing after %d s of GC; "
				"measuring it as it is\n", e->name, GC_MAX_SECONDS);
			break;
		}
		(void) e->vlog_stats(db, &prev);
		usleep(GC_QUIET_USEC);
		(void) e->vlog_stats(db, &cur);
		if (cur.gc_runs != prev.gc_runs || cur.bytes != prev.bytes ||
			cur.discard_bytes != prev.discard_bytes ||
			cur.segments != prev.segments || cur.pending_deletes > 0)
		{
			last_change = now_sec();
			continue;
		}
		if (e->vlog_gc_step(db))
		{
			last_change = now_sec();
			g->runs++;
			continue;
		}
		break;
	}
	g->gc_secs = last_change - t0;
	(void) e->vlog_stats(db, &g->after);
	g->dir_after = dir_size(dir);
	report_gc_step(e, "after vlog_gc loop", g->gc_secs, &g->dir_after,
				   &g->after);

	if (g->io_ok && read_io(&io_end))
	{
		g->io.wchar = io_end.wchar - io_start.wchar;
		g->io.write_bytes = io_end.write_bytes - io_start.write_bytes;
		g->io.cancelled_write_bytes =
			io_end.cancelled_write_bytes - io_start.cancelled_write_bytes;
	}
	else
		g->io_ok = false;
	g->ran = true;
}

/*
 * The I/O window of a DB runs from just before its open to just after its
 * close, which waits for the engine's running background jobs.  Deleting the
 * directory stays outside: it would count every still-dirty page as
 * cancelled, which says nothing about the engine.
 */
static void
io_window_begin(engine_result *r, io_counters *start)
{
	if (!read_io(start))
		r->io_ok = false;
}

static void
io_window_end(engine_result *r, const io_counters *start)
{
	io_counters end;

	if (!r->io_ok || !read_io(&end))
	{
		r->io_ok = false;
		return;
	}
	r->io_delta.wchar += end.wchar - start->wchar;
	r->io_delta.write_bytes += end.write_bytes - start->write_bytes;
	r->io_delta.cancelled_write_bytes +=
		end.cancelled_write_bytes - start->cancelled_write_bytes;
}

static void
run_engine_sequence(int ei, const bench_config *cfg)
{
	const bench_engine *e = engines[ei];
	engine_result *r = &results[ei];
	io_counters io_start;
	char		dir[4096];
	void	   *db;
	bool		need_main = false;
	cpu_times	cpu_start,
				cpu_end;
	bool		cpu_ok;

	for (int w = W_FILLRANDOM; w < W_COUNT; w++)
		need_main |= run_workload[w];

	out("# --- %s ---\n", e->name);
	r->io_ok = true;
	cpu_ok = read_cpu_times(&cpu_start);

	if (run_workload[W_FILLSEQ])
	{
		io_window_begin(r, &io_start);
		db = open_fresh(e, cfg, "fillseq", dir, sizeof(dir));
		r->ops_per_sec[W_FILLSEQ] = do_fill(e, db, W_FILLSEQ, r);
		r->ran[W_FILLSEQ] = true;
		take_space(e, db, dir, flag_num, "fillseq", r);
		take_own_write_amp(e, db, r, "fillseq");
		e->close(db);
		io_window_end(r, &io_start);
		remove_tree(dir);
	}

	if (need_main)
	{
		const char *last_write;

		io_window_begin(r, &io_start);
		db = open_fresh(e, cfg, "main", dir, sizeof(dir));
		if (run_workload[W_FILLRANDOM])
		{
			r->ops_per_sec[W_FILLRANDOM] = do_fill(e, db, W_FILLRANDOM, r);
			r->ran[W_FILLRANDOM] = true;
			last_write = "fillrandom";
		}
		else
		{
			(void) do_fill(e, db, W_PREFILL, r);
			last_write = "prefill";
		}
		if (run_workload[W_OVERWRITE])
		{
			r->ops_per_sec[W_OVERWRITE] = do_fill(e, db, W_OVERWRITE, r);
			r->ran[W_OVERWRITE] = true;
			last_write = "overwrite";
		}

		/* as-is, without waiting for compactions, like db_bench */
		take_space(e, db, dir, distinct_final, last_write, r);

		if (run_workload[W_READRANDOM])
		{
			r->ops_per_sec[W_READRANDOM] = do_readrandom(e, db);
			r->ran[W_READRANDOM] = true;
		}
		if (run_workload[W_READSEQ])
		{
			r->ops_per_sec[W_READSEQ] = do_readseq(e, db);
			r->ran[W_READSEQ] = true;
		}
		for (int w = W_SEEKRANDOM10; w <= W_SEEKRANDOM100; w++)
		{
			if (!run_workload[w])
				continue;
			r->ops_per_sec[w] = do_seekrandom(e, db, w);
			r->ran[w] = true;
		}
		take_own_write_amp(e, db, r, "main");
		if (run_workload[W_OVERWRITE] && e->vlog_gc_step != NULL)
			run_gc_phase(e, db, dir, r);
		e->close(db);
		io_window_end(r, &io_start);
		remove_tree(dir);
	}

	if (cpu_ok && read_cpu_times(&cpu_end))
	{
		char		detail[128];

		out("# %s cpu: %s\n", e->name,
			cpu_detail(&cpu_start, &cpu_end, detail, sizeof(detail)));
	}

	/* untimed: do not let this engine's writeback run during the next one */
	sync();
}

/* ---------- summary ---------- */

static void
print_summary(void)
{
	out("# --- summary ---\n");
	for (int w = 0; w < W_COUNT; w++)
	{
		if (!run_workload[w])
			continue;
		out("workload=%s", workload_names[w]);
		for (int ei = 0; ei < E_COUNT; ei++)
			if (run_engine[ei] && results[ei].ran[w])
				out(" %s=%.0f", engines[ei]->name, results[ei].ops_per_sec[w]);
		if (run_engine[E_NOKV] && results[E_NOKV].ran[w])
		{
			for (int ei = E_NOKV + 1; ei < E_COUNT; ei++)
				if (run_engine[ei] && results[ei].ran[w] &&
					results[ei].ops_per_sec[w] > 0)
					out(" nokv/%s=%.2f", engines[ei]->name,
						results[E_NOKV].ops_per_sec[w] / results[ei].ops_per_sec[w]);
		}
		out("\n");
	}

	for (int ei = 0; ei < E_COUNT; ei++)
	{
		engine_result *r = &results[ei];
		const gc_result *g = &r->gc;
		io_counters io = r->io_delta;
		const char *source = NULL;
		uint64_t	device = 0;
		uint64_t	gc_device = 0;
		bool		gc_io = r->io_ok && g->ran && g->io_ok;

		if (!run_engine[ei])
			continue;

		/*
		 * The GC phase is extra work no other engine is asked to do, so it
		 * stays out of write_amp and is shown on a line of its own.
		 */
		if (gc_io)
		{
			io.wchar -= g->io.wchar;
			io.write_bytes -= g->io.write_bytes;
			io.cancelled_write_bytes -= g->io.cancelled_write_bytes;
		}

		/*
		 * write_bytes is what the kernel charges this process for pages it
		 * dirtied (all threads, also exited ones); it stays 0 on file systems
		 * without writeback accounting such as tmpfs, where only wchar (bytes
		 * passed to write(2)-like calls) is left.
		 */
		if (r->io_ok && r->io_delta.write_bytes > 0)
		{
			source = "write_bytes";
			device = io.write_bytes;
			gc_device = g->io.write_bytes;
		}
		else if (r->io_ok && r->io_delta.wchar > 0)
		{
			source = "wchar";
			device = io.wchar;
			gc_device = g->io.wchar;
		}

		if (source != NULL && r->user_bytes > 0)
		{
			out("write_amp %s=%.2f source=%s device=%llu user=%llu "
				"wchar=%llu cancelled_write_bytes=%llu%s\n",
				engines[ei]->name, (double) device / (double) r->user_bytes,
				source, (unsigned long long) device,
				(unsigned long long) r->user_bytes,
				(unsigned long long) io.wchar,
				(unsigned long long) io.cancelled_write_bytes,
				gc_io ? " gc_phase=excluded" : "");
			if (gc_io)
				out("write_amp_with_gc %s=%.2f source=%s device=%llu "
					"gc_phase_device=%llu (the GC phase: compact_all + "
					"vlog_gc loop)\n",
					engines[ei]->name,
					(double) (device + gc_device) / (double) r->user_bytes,
					source, (unsigned long long) (device + gc_device),
					(unsigned long long) gc_device);
		}
		else
			out("write_amp %s=n/a (no /proc/self/io data or no user writes)\n",
				engines[ei]->name);
		if (r->own_wa_ok)
			out("write_amp_engine %s=%.2f (%s's own figure, user=%llu)\n",
				engines[ei]->name, r->own_wa_weighted / (double) r->own_wa_user,
				engines[ei]->name, (unsigned long long) r->own_wa_user);
	}

	for (int ei = 0; ei < E_COUNT; ei++)
	{
		engine_result *r = &results[ei];
		const char *note = engines[ei]->space_note;

		if (!run_engine[ei] || !r->space_ok)
			continue;
		out("space_amp %s=%.2f (dir=%llu live=%llu) after=%s%s%s\n",
			engines[ei]->name,
			ratio_or_zero(r->space_dir.total, r->space_live),
			(unsigned long long) r->space_dir.total,
			(unsigned long long) r->space_live, r->space_after,
			note != NULL ? " " : "", note != NULL ? note : "");
	}

	for (int ei = 0; ei < E_COUNT; ei++)
	{
		const gc_result *g = &results[ei].gc;
		uint64_t	live = results[ei].space_live;

		if (!run_engine[ei] || !g->ran)
			continue;
		/*
		 * gc_runs is the engine's counter over the phase: its compaction
		 * thread also collects segments while compact_all runs.
		 */
		out("space_amp_after_gc %s=%.2f (dir=%llu live=%llu) gc_runs=%llu "
			"gc_seconds=%.2f (compact_all %.2f s + vlog_gc loop %.2f s; "
			"%llu of the runs by the loop)\n",
			engines[ei]->name, ratio_or_zero(g->dir_after.total, live),
			(unsigned long long) g->dir_after.total,
			(unsigned long long) live,
			(unsigned long long) (g->after.gc_runs - g->before.gc_runs),
			g->compact_secs + g->gc_secs, g->compact_secs, g->gc_secs,
			(unsigned long long) g->runs);
		out("value_log %s before_gc: bytes=%llu discard_bytes=%llu dir=%llu "
			"after_compact_all: bytes=%llu discard_bytes=%llu dir=%llu "
			"after_gc: bytes=%llu discard_bytes=%llu dir=%llu "
			"(background gc_runs before the phase: %llu)\n",
			engines[ei]->name,
			(unsigned long long) g->before.bytes,
			(unsigned long long) g->before.discard_bytes,
			(unsigned long long) g->dir_before.total,
			(unsigned long long) g->compacted.bytes,
			(unsigned long long) g->compacted.discard_bytes,
			(unsigned long long) g->dir_compacted.total,
			(unsigned long long) g->after.bytes,
			(unsigned long long) g->after.discard_bytes,
			(unsigned long long) g->dir_after.total,
			(unsigned long long) g->before.gc_runs);
	}
}

/* ---------- header ---------- */

static void
read_first_line(const char *cmd, char *buf, size_t len)
{
	FILE	   *p = popen(cmd, "r");

	buf[0] = '\0';
	if (p == NULL)
		return;
	if (fgets(buf, (int) len, p) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	pclose(p);
}

static void
cpu_model(char *buf, size_t len)
{
	FILE	   *f = fopen("/proc/cpuinfo", "r");
	char		line[512];

	snprintf(buf, len, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (strncmp(line, "model name", 10) == 0)
		{
			char	   *p = strchr(line, ':');

			if (p != NULL)
			{
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				p[strcspn(p, "\r\n")] = '\0';
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

static bool
load_average(double load[3])
{
	FILE	   *f = fopen("/proc/loadavg", "r");
	bool		ok;

	if (f == NULL)
		return false;
	ok = fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) == 3;
	fclose(f);
	return ok;
}

static void
print_header(int argc, char **argv, const bench_config *cfg,
			 const char *rocksdb_version, const char *leveldb_version)
{
	time_t		t = time(NULL);
	struct tm	tm;
	char		date[64];
	char		commit[128];
	char		model[256];
	double		load[3];
	struct utsname un;
	bool		first;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	read_first_line("git rev-parse --short HEAD 2>/dev/null", commit, sizeof(commit));
	cpu_model(model, sizeof(model));
	if (uname(&un) != 0)
		snprintf(un.release, sizeof(un.release), "unknown");

	out("# nokv-bench results\n");
	out("# date: %s\n", date);
	out("# git commit: %s\n", commit[0] != '\0' ? commit : "unknown");
	out("# machine: nproc=%ld cpu=\"%s\" kernel=%s\n",
		sysconf(_SC_NPROCESSORS_ONLN), model, un.release);
	/* other work on the machine skews every figure: say how busy it was */
	if (load_average(load))
		out("# load average before the run: %.2f %.2f %.2f (1, 5, 15 min; "
			"includes a run that just ended; see the per-engine cpu lines "
			"for competing work)\n",
			load[0], load[1], load[2]);
	out("# command:");
	for (int i = 0; i < argc; i++)
		out(" %s", argv[i]);
	out("\n");
	out("# flags: --num %llu --reads %llu --value_size %llu --workloads ",
		(unsigned long long) flag_num, (unsigned long long) flag_reads,
		(unsigned long long) flag_value_size);
	first = true;
	for (int w = 0; w < W_COUNT; w++)
	{
		if (!run_workload[w])
			continue;
		out("%s%s", first ? "" : ",", workload_names[w]);
		first = false;
	}
	out(" --engines ");
	first = true;
	for (int ei = 0; ei < E_COUNT; ei++)
	{
		if (!run_engine[ei])
			continue;
		out("%s%s", first ? "" : ",", engines[ei]->name);
		first = false;
	}
	out(" --sync %s --db %s --memtable_mb %llu --cache_mb %llu --blob %s "
		"--seed %llu --results %s\n",
		flag_sync ? "true" : "false", db_root,
		(unsigned long long) flag_memtable_mb,
		(unsigned long long) flag_cache_mb, flag_blob ? "true" : "false",
		(unsigned long long) flag_seed, flag_results);
	out("# versions: nokv %s, rocksdb %s (system library; Debian's build has "
		"assertions enabled, see bench/README.md), leveldb %s\n",
		bench_nokv_version(), rocksdb_version, leveldb_version);
	out("# data: key %d B (zero-padded decimal), value %llu B (half random, "
		"half repeated: ~2:1 compressible), %llu keys; each write workload "
		"puts %.2f GiB of keys + values\n",
		BENCH_KEY_SIZE, (unsigned long long) flag_value_size,
		(unsigned long long) flag_num,
		(double) flag_num * (double) (BENCH_KEY_SIZE + flag_value_size) /
		(double) (1 << 30));
	out("# all engines: write_buffer %llu MiB, block cache %llu MiB, block "
		"4 KiB, bloom %d bits/key, %s, read checksums verified, "
		"single-entry writes, WAL on\n",
		(unsigned long long) flag_memtable_mb,
		(unsigned long long) flag_cache_mb, BENCH_BLOOM_BITS,
		flag_sync ? "fsync on every write" : "no fsync (sync=false)");
	for (int ei = 0; ei < E_COUNT; ei++)
	{
		char		storage[1024];

		if (!run_engine[ei])
			continue;
		out("# %s: compression %s; background %s\n", engines[ei]->name,
			engines[ei]->compression, engines[ei]->threads);
		if (engines[ei]->value_storage != NULL)
		{
			results[ei].separation_min =
				engines[ei]->value_storage(cfg, storage, sizeof(storage));
			out("# %s: values: %s\n", engines[ei]->name, storage);
		}
	}
	if (run_engine[E_LEVELDB])
		out("# NOTE: leveldb stores data blocks uncompressed while the others "
			"use LZ4; its space_amp and write_amp are not comparable one to one\n");
	out("# order: each engine runs its whole sequence (fillseq on its own DB; "
		"fillrandom, overwrite, then the reads on a second DB), is closed and "
		"deleted before the next engine starts\n");
	out("# write_amp = bytes from /proc/self/io (write_bytes, else wchar) "
		"from each DB's open to its close / user key+value bytes; "
		"space_amp = apparent "
		"size of the DB directory after the last write workload / (distinct "
		"keys x (key+value))\n");
	if (run_workload[W_OVERWRITE] && run_engine[E_NOKV])
		out("# gc phase (nokv, after the reads): nokv_compact_all, then "
			"nokv_vlog_gc(db, 0 = configured ratio) until it returns 0 and "
			"the value log stays unchanged for %.1f s (the compaction thread "
			"collects too), timed to the last change; space_amp_after_gc = "
			"directory / live bytes afterwards; the phase's I/O is left out "
			"of write_amp (see write_amp_with_gc)\n",
			GC_QUIET_USEC / 1e6);
}

/* ---------- flags ---------- */

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: nokv-bench [flags]\n"
			"  --num N            keys written by each write workload and key space (default 1000000)\n"
			"  --reads N          gets of readrandom; seekrandom does N/10 seeks (default: num)\n"
			"  --value_size N     value bytes (default 100)\n"
			"  --workloads LIST   of fillseq,fillrandom,overwrite,readrandom,readseq,\n"
			"                     seekrandom (= seekrandom10,seekrandom100)\n"
			"                     (default " DEFAULT_WORKLOADS ")\n"
			"  --engines LIST     of nokv,rocksdb,leveldb,rocksdb_blob (default " DEFAULT_ENGINES ")\n"
			"  --sync             fsync every write in every engine (lower --num, e.g. 20000)\n"
			"  --db DIR           parent of the engine directories (default: a new /tmp/nokv-bench-*)\n"
			"  --memtable_mb N    memtable / write_buffer_size in MiB (default 64)\n"
			"  --cache_mb N       block cache in MiB (default 64)\n"
			"  --results FILE     append results here (default bench/results/engine-<UTC>.txt)\n"
			"  --blob             add rocksdb_blob (RocksDB with blob files, min_blob_size 1024,\n"
			"                     LZ4, blob GC off as by default)\n"
			"  --seed N           PRNG seed (default 301)\n");
}

static uint64_t
parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
		v < min || v > max)
		bench_fatal("%s: \"%s\" is not a number in [%llu, %llu]", flag, s,
					(unsigned long long) min, (unsigned long long) max);
	return v;
}

static bool
parse_bool(const char *flag, const char *s)
{
	if (s == NULL || strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		return true;
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		return false;
	bench_fatal("%s: \"%s\" is not true/false", flag, s);
}

static void
parse_workloads(const char *list)
{
	char	   *copy = strdup(list);
	char	   *save = NULL;

	if (copy == NULL)
		bench_fatal("out of memory");
	memset(run_workload, 0, sizeof(run_workload));
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
		 tok = strtok_r(NULL, ",", &save))
	{
		bool		ok = false;

		if (strcmp(tok, "seekrandom") == 0)
		{
			run_workload[W_SEEKRANDOM10] = run_workload[W_SEEKRANDOM100] = true;
			continue;
		}
		for (int w = 0; w < W_COUNT; w++)
			if (strcmp(tok, workload_names[w]) == 0)
				run_workload[w] = ok = true;
		if (!ok)
			bench_fatal("--workloads: unknown workload \"%s\"", tok);
	}
	free(copy);
}

static void
parse_engines(const char *list)
{
	char	   *copy = strdup(list);
	char	   *save = NULL;

	if (copy == NULL)
		bench_fatal("out of memory");
	memset(run_engine, 0, sizeof(run_engine));
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
		 tok = strtok_r(NULL, ",", &save))
	{
		bool		ok = false;

		for (int ei = 0; ei < E_COUNT; ei++)
			if (strcmp(tok, engines[ei]->name) == 0)
				run_engine[ei] = ok = true;
		if (!ok)
			bench_fatal("--engines: unknown engine \"%s\"", tok);
	}
	free(copy);
}

static void
parse_flags(int argc, char **argv)
{
	const char *workloads = DEFAULT_WORKLOADS;
	const char *engine_list = DEFAULT_ENGINES;

	for (int i = 1; i < argc; i++)
	{
		char		name[64];
		const char *arg = argv[i];
		const char *val = NULL;
		const char *eq;
		bool		boolean;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		{
			usage(stdout);
			exit(0);
		}
		if (strncmp(arg, "--", 2) != 0)
			bench_fatal("unexpected argument \"%s\" (see --help)", arg);
		eq = strchr(arg, '=');
		if (eq != NULL)
		{
			snprintf(name, sizeof(name), "%.*s", (int) (eq - arg), arg);
			val = eq + 1;
		}
		else
			snprintf(name, sizeof(name), "%s", arg);

		boolean = (strcmp(name, "--sync") == 0 || strcmp(name, "--blob") == 0);
		if (!boolean && val == NULL)
		{
			if (i + 1 >= argc)
				bench_fatal("%s needs a value", name);
			val = argv[++i];
		}

		if (strcmp(name, "--num") == 0)
			flag_num = parse_u64(name, val, 1, UINT64_C(9999999999999999));
		else if (strcmp(name, "--reads") == 0)
			flag_reads = parse_u64(name, val, 0, UINT64_MAX / 2), flag_reads_set = true;
		else if (strcmp(name, "--value_size") == 0)
			flag_value_size = parse_u64(name, val, 1, 64 << 20);
		else if (strcmp(name, "--workloads") == 0)
			workloads = val;
		else if (strcmp(name, "--engines") == 0)
			engine_list = val;
		else if (strcmp(name, "--sync") == 0)
			flag_sync = parse_bool(name, val);
		else if (strcmp(name, "--blob") == 0)
			flag_blob = parse_bool(name, val);
		else if (strcmp(name, "--db") == 0)
			flag_db = val;
		else if (strcmp(name, "--memtable_mb") == 0)
			flag_memtable_mb = parse_u64(name, val, 1, 64 * 1024);
		else if (strcmp(name, "--cache_mb") == 0)
			flag_cache_mb = parse_u64(name, val, 1, 1024 * 1024);
		else if (strcmp(name, "--results") == 0)
			flag_results = val;
		else if (strcmp(name, "--seed") == 0)
			flag_seed = parse_u64(name, val, 0, UINT64_MAX);
		else
			bench_fatal("unknown flag \"%s\" (see --help)", name);
	}

	parse_workloads(workloads);
	parse_engines(engine_list);
	if (flag_blob)
		run_engine[E_ROCKSDB_BLOB] = true;
	if (!flag_reads_set)
		flag_reads = flag_num;
}

/* ---------- main ---------- */

int
main(int argc, char **argv)
{
	static char results_path[4096];
	char		rocksdb_version[64] = "unknown (Debian librocksdb)";
	char		leveldb_version[32];
	bench_config cfg;
	bool		need_main = false;
	double		t_start = now_sec();

	parse_flags(argc, argv);

	if (flag_sync && flag_num > 100000)
		fprintf(stderr, "nokv-bench: warning: --sync with --num %llu will take "
				"a long time (one fsync per write); consider --num 20000\n",
				(unsigned long long) flag_num);

	/* where the DBs go */
	if (flag_db == NULL)
	{
		snprintf(db_root, sizeof(db_root), "/tmp/nokv-bench-XXXXXX");
		if (mkdtemp(db_root) == NULL)
			bench_fatal("mkdtemp: %s", strerror(errno));
		db_root_created = true;
	}
	else
	{
		struct stat st;

		snprintf(db_root, sizeof(db_root), "%s", flag_db);
		if (stat(db_root, &st) != 0)
		{
			make_dirs(db_root);
			db_root_created = true;
		}
		else if (!S_ISDIR(st.st_mode))
			bench_fatal("--db %s is not a directory", db_root);
	}

	/* the results file */
	if (flag_results == NULL)
	{
		time_t		t = time(NULL);
		struct tm	tm;

		gmtime_r(&t, &tm);
		strftime(results_path, sizeof(results_path),
				 "bench/results/engine-%Y%m%dT%H%M%SZ.txt", &tm);
		flag_results = results_path;
	}
	{
		char		parent[4096];
		char	   *slash;

		snprintf(parent, sizeof(parent), "%s", flag_results);
		slash = strrchr(parent, '/');
		if (slash != NULL && slash != parent)
		{
			*slash = '\0';
			make_dirs(parent);
		}
	}
	results_file = fopen(flag_results, "a");
	if (results_file == NULL)
		bench_fatal("cannot open %s: %s", flag_results, strerror(errno));

	/* engine versions */
	if (run_engine[E_ROCKSDB] || run_engine[E_ROCKSDB_BLOB])
	{
		char		probe[4096];

		if (snprintf(probe, sizeof(probe), "%s/rocksdb-version-probe",
					 db_root) >= (int) sizeof(probe))
			bench_fatal("path too long under %s", db_root);
		remove_tree(probe);
		if (!bench_rocksdb_version(probe, rocksdb_version, sizeof(rocksdb_version)))
			snprintf(rocksdb_version, sizeof(rocksdb_version),
					 "unknown (Debian librocksdb)");
		remove_tree(probe);
	}
	bench_leveldb_version(leveldb_version, sizeof(leveldb_version));

	cfg.value_size = flag_value_size;
	cfg.memtable_bytes = (size_t) flag_memtable_mb << 20;
	cfg.cache_bytes = (size_t) flag_cache_mb << 20;
	cfg.sync = flag_sync;

	print_header(argc, argv, &cfg, rocksdb_version, leveldb_version);

	/* what the main DB will hold, identical for every engine */
	build_value_buffer();
	for (int w = W_FILLRANDOM; w < W_COUNT; w++)
		need_main |= run_workload[w];
	present = calloc(flag_num / 8 + 1, 1);
	if (present == NULL)
		bench_fatal("out of memory for the key bitmap");
	if (need_main)
	{
		distinct_after_fill = mark_random_keys(W_FILLRANDOM, 0);
		distinct_final = distinct_after_fill;
		if (run_workload[W_OVERWRITE])
			distinct_final = mark_random_keys(W_OVERWRITE, distinct_after_fill);
		out("# main DB: %llu distinct keys after fillrandom, %llu after the "
			"last write workload\n",
			(unsigned long long) distinct_after_fill,
			(unsigned long long) distinct_final);
	}

	for (int ei = 0; ei < E_COUNT; ei++)
		if (run_engine[ei])
			run_engine_sequence(ei, &cfg);

	print_summary();
	out("# finished in %.1f s\n", now_sec() - t_start);

	if (db_root_created)
		remove_tree(db_root);
	fclose(results_file);
	results_file = NULL;
	fprintf(stderr, "nokv-bench: results appended to %s\n", flag_results);
	free(present);
	free(value_buf);
	return 0;
}
