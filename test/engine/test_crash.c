/*-------------------------------------------------------------------------
 *
 * test_crash.c
 *	  Crash recovery: SIGKILL a writing process, reopen, check every
 *	  acknowledged write.
 *
 * A child process opens the engine with NOKV_SYNC_BATCH and background
 * threads, and writes batches (puts, deletes, range deletes) with small
 * memtables, so flushes and compactions run all the time.  Around every
 * batch it appends to an acknowledgement log, a plain file next to the
 * engine directory:
 *
 *	  B <batch> <count>			intent: the batch is about to be written
 *	  P <cf> <key id> <vid> <len>	put (the value is a function of vid, len)
 *	  D <cf> <key id>			delete
 *	  R <cf> <from id> <to id>	delete_range [key(from), key(to))
 *	  E <batch>					end of the intent (one write(2) for B..E)
 *	  C <batch>					acknowledged: nokv_write returned OK
 *								(written and fdatasync'ed after the write)
 *
 * The parent kills the child at a random moment - during plain writing,
 * during nokv_compact_all, during a rotate + flush - then replays the log
 * into a model and reopens the engine.  Every acknowledged batch must be
 * there; the one batch that was written but not acknowledged may or may
 * not be, but atomically (all of it or none of it).  Then the engine must
 * keep working: write, read, range-delete, compact_all, close, open again
 * (whatever *.tmp files recovery left behind must not get in the way).
 *
 * Iterations share one engine directory, so later iterations recover from
 * the wreckage of earlier ones; the model carries over.  After a failed
 * iteration the next one starts in a fresh directory.
 *
 * Reproducing: NOKV_SEED=<seed> (the operations and kill delays; the exact
 * kill point also depends on timing), NOKV_CRASH_ITERATIONS=<n>,
 * NOKV_KEEP=1 keeps the directory and the log of a failed iteration.
 *
 * test/engine/test_crash.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nokv/nokv.h"
#include "tap.h"
#include "testutil.h"


#define NCF				NOKV_CF_COUNT
#define NKEYS			400
#define MAX_BATCH		8
#define MAX_VALUE		8000
#define CHILD_SECONDS	20		/* a child that is never killed stops by itself */

typedef enum crash_mode
{
	MODE_PUTS = 0,				/* puts only */
	MODE_MIXED,					/* puts, deletes, range deletes */
	MODE_COMPACT_ALL,			/* killed during nokv_compact_all */
	MODE_FLUSH,					/* killed during rotate + flush_one */
	MODE_COUNT
} crash_mode;

static const char *const mode_names[] = {"puts", "puts+deletes+ranges", "during compact_all", "during flush"};

/* shared with the child (MAP_SHARED | MAP_ANONYMOUS) */
typedef struct child_state
{
	_Atomic int phase;			/* 1 once the first batch was acknowledged */
	_Atomic long acked;			/* batches acknowledged */
	_Atomic int in_compact_all;
	_Atomic int in_flush;
	_Atomic long compact_alls;
	_Atomic long flushes;
	char		error[512];
} child_state;

typedef struct mval
{
	bool		present;
	uint32_t	len;
	uint64_t	vid;
} mval;

typedef struct model
{
	mval		v[NCF][NKEYS];
} model;

typedef struct logop
{
	char		kind;			/* 'P', 'D', 'R' */
	int			cf;
	int			a,
				b;				/* key id / range */
	uint64_t	vid;
	uint32_t	len;
} logop;

static pid_t child_pid;			/* > 0 while the child runs unreaped */
static int	child_status;		/* its wait status once reaped early */

/* ---------- utilities ---------- */





static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_crash timed out (a hang in recovery?)\n";

	(void) sig;
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(254);
	_exit(255);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_ms(double ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t) (ms / 1000);
	ts.tv_nsec = (long) ((ms - ts.tv_sec * 1000.0) * 1e6);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static size_t
make_key(char *buf, size_t size, int id)
{
	return (size_t) snprintf(buf, size, "k%05d", id);
}

static void
fill_value(char *dst, uint64_t vid, uint32_t len)
{
	uint64_t	s = vid * 0x2545f4914f6cdd1dull + len;
	uint32_t	i = 0;

	while (i < len)
	{
		uint64_t	r = splitmix64(&s);

		for (int j = 0; j < 8 && i < len; j++, i++)
			dst[i] = (char) ('!' + ((r >> (8 * j)) & 0x3f));
	}
}

static void
set_options(nokv_options *o, bool bg)
{
	nokv_options_init(o);
	o->memtable_size = 64 * 1024;
	o->target_file_size = 32 * 1024;
	o->max_bytes_for_level_base = 128 * 1024;
	o->block_size = 1024;
	o->l0_compaction_trigger = 2;
	o->block_cache_size = 1024 * 1024;
	o->sync_mode = NOKV_SYNC_BATCH;
	o->background_threads = bg;
	o->compaction_threads = 2;
}

/* ---------- the child ---------- */

static void
child_fail(child_state *cs, const char *fmt,...)
	__attribute__((format(printf, 2, 3), noreturn));

static void
child_fail(child_state *cs, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(cs->error, sizeof(cs->error), fmt, ap);
	va_end(ap);
	_exit(1);
}

static void
write_all(child_state *cs, int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			child_fail(cs, "write to the acknowledgement log: %s", strerror(errno));
		buf += n;
		len -= (size_t) n;
	}
}

static void
run_child(const char *dir, const char *logpath, crash_mode mode, uint64_t seed,
		  int iteration, child_state *cs)
{
	nokv_options o;
	nokv_db    *db = NULL;
	nokv_error	err;
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	uint64_t	rng = seed;
	char	   *valbuf = malloc(MAX_VALUE);
	char	   *intent = malloc(64 * (MAX_BATCH + 4));
	int			logfd;
	int			rc;
	double		start = now_seconds();

	set_options(&o, true);
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	if (rc != NOKV_OK)
		child_fail(cs, "child nokv_open: %s: %s", nokv_code_name((nokv_code) rc), err.msg);
	logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (logfd < 0)
		child_fail(cs, "open %s: %s", logpath, strerror(errno));
	memset(&wo, 0, sizeof(wo));
	wo.sync = true;

	for (long batch = 1; now_seconds() - start < CHILD_SECONDS; batch++)
	{
		size_t		il = 0;
		int			nops;
		int			cfs[MAX_BATCH],
					ids[MAX_BATCH];
		char		line[64];

		nokv_batch_clear(b);
		if (mode != MODE_PUTS && rnd_below(&rng, 10) == 0)
		{
			/* a range delete, alone in its batch */
			int			cf = (int) rnd_below(&rng, NCF);
			int			from = (int) rnd_below(&rng, NKEYS);
			int			to = from + 1 + (int) rnd_below(&rng, 30);
			char		ks[16],
						ke[16];

			if (to > NKEYS)
				to = NKEYS;
			make_key(ks, sizeof(ks), from);
			make_key(ke, sizeof(ke), to);	/* k00400 is past every key */
			if (nokv_batch_delete_range(b, cf, ks, strlen(ks), ke, strlen(ke)) != NOKV_OK)
				child_fail(cs, "nokv_batch_delete_range failed");
			il += (size_t) snprintf(intent + il, 64, "B %ld 1\n", batch);
			il += (size_t) snprintf(intent + il, 64, "R %d %d %d\n", cf, from, to);
		}
		else
		{
			nops = 1 + (int) rnd_below(&rng, MAX_BATCH);
			il += (size_t) snprintf(intent + il, 64, "B %ld %d\n", batch, nops);
			for (int i = 0; i < nops; i++)
			{
				bool		dup;
				char		key[16];
				size_t		kl;

				do
				{
					cfs[i] = (int) rnd_below(&rng, NCF);
					ids[i] = (int) rnd_below(&rng, NKEYS);
					dup = false;
					for (int j = 0; j < i; j++)
						dup = dup || (cfs[j] == cfs[i] && ids[j] == ids[i]);
				} while (dup);
				kl = make_key(key, sizeof(key), ids[i]);
				if (mode == MODE_PUTS || rnd_below(&rng, 10) < 7)
				{
					uint64_t	vid = ((uint64_t) iteration << 40) | ((uint64_t) batch << 4) | (uint64_t) i;
					uint32_t	len = rnd_below(&rng, 50) == 0 ? MAX_VALUE : 10 + rnd_below(&rng, 1200);

					fill_value(valbuf, vid, len);
					if (nokv_batch_put(b, cfs[i], key, kl, valbuf, len) != NOKV_OK)
						child_fail(cs, "nokv_batch_put failed");
					il += (size_t) snprintf(intent + il, 64, "P %d %d %" PRIu64 " %u\n",
											cfs[i], ids[i], vid, len);
				}
				else
				{
					if (nokv_batch_delete(b, cfs[i], key, kl) != NOKV_OK)
						child_fail(cs, "nokv_batch_delete failed");
					il += (size_t) snprintf(intent + il, 64, "D %d %d\n", cfs[i], ids[i]);
				}
			}
		}
		il += (size_t) snprintf(intent + il, 64, "E %ld\n", batch);
		write_all(cs, logfd, intent, il);

		memset(&err, 0, sizeof(err));
		rc = nokv_write(db, &wo, b, &err);
		if (rc != NOKV_OK)
			child_fail(cs, "child nokv_write of batch %ld: %s: %s", batch,
					   nokv_code_name((nokv_code) rc), err.msg);

		snprintf(line, sizeof(line), "C %ld\n", batch);
		write_all(cs, logfd, line, strlen(line));
		if (fdatasync(logfd) != 0)
			child_fail(cs, "fdatasync of the acknowledgement log: %s", strerror(errno));
		atomic_store(&cs->acked, batch);
		atomic_store(&cs->phase, 1);

		if (mode == MODE_COMPACT_ALL && batch % 25 == 0)
		{
			atomic_store(&cs->in_compact_all, 1);
			rc = nokv_compact_all(db, &err);
			atomic_store(&cs->in_compact_all, 0);
			if (rc != NOKV_OK)
				child_fail(cs, "child nokv_compact_all: %s: %s", nokv_code_name((nokv_code) rc), err.msg);
			atomic_fetch_add(&cs->compact_alls, 1);
		}
		else if (mode == MODE_FLUSH && batch % 3 == 0)
		{
			atomic_store(&cs->in_flush, 1);
			rc = nokv_rotate_memtable(db, &err);
			if (rc == NOKV_OK)
				rc = nokv_flush_one(db, &err) < 0 ? NOKV_IO_ERROR : NOKV_OK;
			atomic_store(&cs->in_flush, 0);
			if (rc != NOKV_OK)
				child_fail(cs, "child rotate/flush: %s", err.msg);
			atomic_fetch_add(&cs->flushes, 1);
		}
	}
	/* never killed: leave cleanly (the parent checks the same way) */
	nokv_close(db);
	close(logfd);
	_exit(0);
}

/* ---------- the parent: log replay and verification ---------- */

static void
apply_op(model *m, const logop *op)
{
	if (op->kind == 'P')
	{
		m->v[op->cf][op->a].present = true;
		m->v[op->cf][op->a].vid = op->vid;
		m->v[op->cf][op->a].len = op->len;
	}
	else if (op->kind == 'D')
		m->v[op->cf][op->a].present = false;
	else
		for (int i = op->a; i < op->b && i < NKEYS; i++)
			m->v[op->cf][i].present = false;
}

/*
 * Replay the acknowledgement log into m.  *pending receives the batch that
 * was complete in the log but not acknowledged (npending = 0 if none).
 */
static bool
replay_log(const char *path, model *m, logop *pending, int *npending, long *acked_batches)
{
	FILE	   *f = fopen(path, "r");
	char		line[128];
	logop		cur[MAX_BATCH];
	int			ncur = 0;
	long		cur_batch = -1;
	bool		intent_complete = false;

	*npending = 0;
	*acked_batches = 0;
	if (f == NULL)
		return errno == ENOENT;	/* the child died before writing anything */
	while (fgets(line, sizeof(line), f))
	{
		logop		op;
		long		bno;
		int			cnt;

		memset(&op, 0, sizeof(op));
		if (strchr(line, '\n') == NULL)
			break;				/* torn last line */
		switch (line[0])
		{
			case 'B':
				if (sscanf(line, "B %ld %d", &bno, &cnt) != 2)
					goto bad;
				cur_batch = bno;
				ncur = 0;
				intent_complete = false;
				break;
			case 'P':
				op.kind = 'P';
				if (sscanf(line, "P %d %d %" SCNu64 " %u", &op.cf, &op.a, &op.vid, &op.len) != 4 ||
					ncur >= MAX_BATCH)
					goto bad;
				cur[ncur++] = op;
				break;
			case 'D':
				op.kind = 'D';
				if (sscanf(line, "D %d %d", &op.cf, &op.a) != 2 || ncur >= MAX_BATCH)
					goto bad;
				cur[ncur++] = op;
				break;
			case 'R':
				op.kind = 'R';
				if (sscanf(line, "R %d %d %d", &op.cf, &op.a, &op.b) != 3 || ncur >= MAX_BATCH)
					goto bad;
				cur[ncur++] = op;
				break;
			case 'E':
				if (sscanf(line, "E %ld", &bno) != 1 || bno != cur_batch)
					goto bad;
				intent_complete = true;
				break;
			case 'C':
				if (sscanf(line, "C %ld", &bno) != 1 || bno != cur_batch || !intent_complete)
					goto bad;
				for (int i = 0; i < ncur; i++)
					apply_op(m, &cur[i]);
				(*acked_batches)++;
				ncur = 0;
				cur_batch = -1;
				intent_complete = false;
				break;
			default:
				goto bad;
		}
	}
	fclose(f);
	if (cur_batch >= 0 && intent_complete)
	{
		memcpy(pending, cur, sizeof(logop) * (size_t) ncur);
		*npending = ncur;
	}
	return true;
bad:
	tap_diag("malformed acknowledgement log line: %s", line);
	fclose(f);
	return false;
}

/* engine state of every key, read by a full scan of each cf and by gets */
typedef struct observed
{
	bool		present[NCF][NKEYS];
	char	   *val[NCF][NKEYS];
	size_t		len[NCF][NKEYS];
} observed;

static void
observed_free(observed *ob)
{
	for (int cf = 0; cf < NCF; cf++)
		for (int i = 0; i < NKEYS; i++)
			free(ob->val[cf][i]);
	memset(ob, 0, sizeof(*ob));
}

static bool
observe(nokv_db *db, observed *ob)
{
	nokv_read_options ro;
	nokv_error	err;
	int			rc;

	memset(ob, 0, sizeof(*ob));
	nokv_read_options_init(&ro);
	for (int cf = 0; cf < NCF; cf++)
	{
		nokv_iter  *it = nokv_iter_new(db, &ro, cf);
		bool		seen[NKEYS];

		memset(seen, 0, sizeof(seen));
		if (it == NULL)
		{
			tap_diag("nokv_iter_new returned NULL");
			return false;
		}
		for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
		{
			size_t		kl,
						vl;
			const char *k = nokv_iter_key(it, &kl);
			const char *v = nokv_iter_value(it, &vl);
			char		kbuf[16];
			int			id;

			if (kl != 6 || k[0] != 'k' || sscanf(k + 1, "%5d", &id) != 1 || id < 0 || id >= NKEYS)
			{
				tap_diag("the scan of cf %d returned an unexpected key '%.*s'", cf,
						 (int) (kl > 40 ? 40 : kl), k);
				nokv_iter_free(it);
				return false;
			}
			make_key(kbuf, sizeof(kbuf), id);
			if (memcmp(kbuf, k, kl) != 0 || seen[id])
			{
				tap_diag("the scan of cf %d returned key '%.*s' twice or malformed", cf, (int) kl, k);
				nokv_iter_free(it);
				return false;
			}
			seen[id] = true;
			ob->present[cf][id] = true;
			ob->len[cf][id] = vl;
			ob->val[cf][id] = malloc(vl + 1);
			memcpy(ob->val[cf][id], v, vl);
		}
		memset(&err, 0, sizeof(err));
		rc = nokv_iter_status(it, &err);
		nokv_iter_free(it);
		if (rc != NOKV_OK)
		{
			tap_diag("full scan of cf %d after recovery failed: %s: %s", cf,
					 nokv_code_name((nokv_code) rc), err.msg);
			return false;
		}
		/* point reads must agree with the scan */
		for (int id = 0; id < NKEYS; id++)
		{
			char		key[16];
			char	   *val = NULL;
			size_t		vlen = 0;
			size_t		kl = make_key(key, sizeof(key), id);

			memset(&err, 0, sizeof(err));
			rc = nokv_get(db, &ro, cf, key, kl, &val, &vlen, &err);
			if (rc != NOKV_OK && rc != NOKV_NOT_FOUND)
			{
				tap_diag("get cf %d %s after recovery: %s: %s", cf, key,
						 nokv_code_name((nokv_code) rc), err.msg);
				free(val);
				return false;
			}
			if ((rc == NOKV_OK) != ob->present[cf][id] ||
				(rc == NOKV_OK && (vlen != ob->len[cf][id] ||
								   (vlen && memcmp(val, ob->val[cf][id], vlen) != 0))))
			{
				tap_diag("get cf %d %s disagrees with the scan (%s)", cf, key,
						 rc == NOKV_OK ? "value" : "presence");
				free(val);
				return false;
			}
			free(val);
		}
	}
	return true;
}

/* number of keys where the engine differs from m; the first is described */
static int
differences(const observed *ob, const model *m, char *first, size_t firstlen)
{
	int			n = 0;
	char	   *buf = malloc(MAX_VALUE);

	first[0] = '\0';
	for (int cf = 0; cf < NCF; cf++)
		for (int id = 0; id < NKEYS; id++)
		{
			const mval *e = &m->v[cf][id];
			bool		same;

			if (!e->present)
				same = !ob->present[cf][id];
			else if (!ob->present[cf][id])
				same = false;
			else
			{
				fill_value(buf, e->vid, e->len);
				same = ob->len[cf][id] == e->len && memcmp(ob->val[cf][id], buf, e->len) == 0;
			}
			if (!same)
			{
				if (n == 0 && e->present)
					snprintf(first, firstlen, "cf %d key k%05d: engine has %s, expected the value of vid %" PRIu64 " (%u bytes)",
							 cf, id, ob->present[cf][id] ? "another value" : "nothing",
							 e->vid, e->len);
				else if (n == 0)
					snprintf(first, firstlen, "cf %d key k%05d: engine has a value of %zu bytes, expected nothing",
							 cf, id, ob->len[cf][id]);
				n++;
			}
		}
	free(buf);
	return n;
}

static void
list_tmp_files(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		size_t		len = strlen(e->d_name);

		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
			tap_diag("  recovery left %s/%s", dir, e->d_name);
	}
	closedir(d);
}

static nokv_db *
open_engine(const char *dir, bool bg)
{
	nokv_options o;
	nokv_db    *db = NULL;
	nokv_error	err;
	int			rc;

	set_options(&o, bg);
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	if (rc != NOKV_OK)
	{
		tap_diag("nokv_open(%s): %s: %s", dir, nokv_code_name((nokv_code) rc), err.msg);
		return NULL;
	}
	return db;
}

/*
 * After recovery: write, read, range-delete what was written, compact, and
 * check that the model state is untouched by all of it.
 */
static bool
keeps_working(nokv_db *db, const model *m, char *why, size_t whylen)
{
	nokv_error	err;
	nokv_read_options ro;
	observed   *ob = calloc(1, sizeof(observed));
	nokv_batch *b;
	nokv_write_options wo;
	int			rc;
	bool		good = true;

	nokv_read_options_init(&ro);
	memset(&wo, 0, sizeof(wo));
	for (int i = 0; i < 100 && good; i++)
	{
		char		k[32],
					v[32];
		char	   *val = NULL;
		size_t		vlen = 0;

		snprintf(k, sizeof(k), "zafter%04d", i);
		snprintf(v, sizeof(v), "after-value-%d", i);
		memset(&err, 0, sizeof(err));
		rc = nokv_put(db, NOKV_CF_DEFAULT, k, strlen(k), v, strlen(v), &err);
		if (rc == NOKV_OK)
			rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, k, strlen(k), &val, &vlen, &err);
		if (rc != NOKV_OK || vlen != strlen(v) || memcmp(val, v, vlen) != 0)
		{
			snprintf(why, whylen, "write + read of %s after recovery: %s: %.300s", k,
					 nokv_code_name((nokv_code) rc), err.msg);
			good = false;
		}
		free(val);
	}
	if (good)
	{
		memset(&err, 0, sizeof(err));
		rc = nokv_compact_all(db, &err);
		if (rc != NOKV_OK)
		{
			snprintf(why, whylen, "nokv_compact_all after recovery: %s: %.300s",
					 nokv_code_name((nokv_code) rc), err.msg);
			good = false;
		}
	}
	if (good)
	{
		char	   *val = NULL;
		size_t		vlen = 0;

		memset(&err, 0, sizeof(err));
		rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, "zafter0042", 10, &val, &vlen, &err);
		if (rc != NOKV_OK || vlen != strlen("after-value-42") || memcmp(val, "after-value-42", vlen) != 0)
		{
			snprintf(why, whylen, "read after compact_all: %s", nokv_code_name((nokv_code) rc));
			good = false;
		}
		free(val);
	}
	if (good)
	{
		b = nokv_batch_new();
		nokv_batch_delete_range(b, NOKV_CF_DEFAULT, "zafter", 6, "zaftes", 6);
		memset(&err, 0, sizeof(err));
		rc = nokv_write(db, &wo, b, &err);
		nokv_batch_free(b);
		if (rc != NOKV_OK)
		{
			snprintf(why, whylen, "delete_range after recovery: %s: %.300s",
					 nokv_code_name((nokv_code) rc), err.msg);
			good = false;
		}
	}
	if (good && !observe(db, ob))
	{
		snprintf(why, whylen, "reading the state back after compaction failed");
		good = false;
	}
	else if (good)
	{
		char		first[256];
		int			n = differences(ob, m, first, sizeof(first));

		if (n > 0)
		{
			snprintf(why, whylen, "%d keys changed by the post-recovery work; first: %s", n, first);
			good = false;
		}
	}
	observed_free(ob);
	free(ob);
	return good;
}

/* ---------- one iteration ---------- */

static bool
wait_flag(_Atomic int *flag, child_state *cs, double timeout_s)
{
	double		until = now_seconds() + timeout_s;

	if (child_pid <= 0)
		return false;
	while (!atomic_load(flag))
	{
		int			status;

		if (now_seconds() > until)
			return false;
		if (waitpid(child_pid, &status, WNOHANG) == child_pid)
		{
			child_pid = -child_pid;	/* already reaped */
			child_status = status;
			tap_diag("the child exited early (%s %d): %s",
					 WIFEXITED(status) ? "exit status" : "signal",
					 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					 cs->error[0] ? cs->error : "(no message)");
			return false;
		}
		sleep_ms(0.2);
	}
	return true;
}

/*
 * Returns true if the iteration passed; *m holds the state the engine is
 * now known to have (for the next iteration in the same directory).
 */
static bool
run_iteration(int it, crash_mode mode, uint64_t seed, const char *dir, const char *logpath,
			  model *m)
{
	child_state *cs = mmap(NULL, sizeof(child_state), PROT_READ | PROT_WRITE,
						   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t	rng = seed ^ 0xc4a5f00dull;
	double		delay_ms = 0;
	bool		killed_in_compact = false,
				killed_in_flush = false;
	bool		ok_all = true;
	logop		pending[MAX_BATCH];
	int			npending = 0;
	long		acked_batches = 0;
	model	   *with_pending = malloc(sizeof(model));
	observed   *ob = calloc(1, sizeof(observed));
	nokv_db    *db = NULL;
	char		first[256],
				why[512];
	int			status = 0;
	int			diff_m,
				diff_p = -1;
	bool		observed_ok;

	if (cs == MAP_FAILED)
		tap_bail("mmap failed: %s", strerror(errno));
	memset(cs, 0, sizeof(*cs));
	unlink(logpath);

	fflush(stdout);
	child_pid = fork();
	if (child_pid < 0)
		tap_bail("fork failed: %s", strerror(errno));
	if (child_pid == 0)
		run_child(dir, logpath, mode, seed, it, cs);

	/* let it get going, then pick the moment */
	if (!wait_flag(&cs->phase, cs, 30))
	{
		ok(false, "iteration %d (seed %" PRIu64 ", %s): the child acknowledged a first write",
		   it, seed, mode_names[mode]);
		ok_all = false;
		goto reap;
	}
	/* in the flush and compaction modes, let some data pile up first */
	if (mode == MODE_COMPACT_ALL || mode == MODE_FLUSH)
	{
		long		min_batches = 20 + (long) rnd_below(&rng, 200);
		double		until = now_seconds() + 30;

		while (atomic_load(&cs->acked) < min_batches && now_seconds() < until && child_pid > 0)
		{
			if (waitpid(child_pid, &child_status, WNOHANG) == child_pid)
				child_pid = -child_pid;
			else
				sleep_ms(0.5);
		}
	}
	switch (mode)
	{
		case MODE_COMPACT_ALL:
			if (!wait_flag(&cs->in_compact_all, cs, 30))
				tap_diag("  the child never reached nokv_compact_all; killing it anyway");
			delay_ms = rnd_below(&rng, 20000) / 1000.0;
			break;
		case MODE_FLUSH:
			if (!wait_flag(&cs->in_flush, cs, 30))
				tap_diag("  the child never reached a flush; killing it anyway");
			delay_ms = rnd_below(&rng, 3000) / 1000.0;
			break;
		default:
			delay_ms = 50 + rnd_below(&rng, 450);
			break;
	}
	sleep_ms(delay_ms);
	killed_in_compact = atomic_load(&cs->in_compact_all);
	killed_in_flush = atomic_load(&cs->in_flush);
	if (child_pid > 0)
		kill(child_pid, SIGKILL);

reap:
	if (child_pid > 0)
	{
		while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	else if (child_pid < 0)
		status = child_status;
	if (child_pid != 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0)
	{
		tap_diag("the child failed on its own: %s", cs->error);
		ok(false, "iteration %d (seed %" PRIu64 ", %s): the child ran without errors",
		   it, seed, mode_names[mode]);
		ok_all = false;
	}
	child_pid = 0;
	if (!ok_all)
		goto out;
	tap_diag("iteration %d (%s, seed %" PRIu64 "): killed after %.1f ms delay, %ld batches acknowledged%s%s, %ld compact_all, %ld flushes by the child",
			 it, mode_names[mode], seed, delay_ms, atomic_load(&cs->acked),
			 killed_in_compact ? ", inside nokv_compact_all" : "",
			 killed_in_flush ? ", inside rotate/flush" : "",
			 atomic_load(&cs->compact_alls), atomic_load(&cs->flushes));

	/* the expected states */
	if (!replay_log(logpath, m, pending, &npending, &acked_batches))
	{
		ok(false, "iteration %d: the acknowledgement log parses", it);
		ok_all = false;
		goto out;
	}
	memcpy(with_pending, m, sizeof(model));
	for (int i = 0; i < npending; i++)
		apply_op(with_pending, &pending[i]);

	/* recover */
	db = open_engine(dir, true);
	if (!ok(db != NULL, "iteration %d (%s): the engine reopens after SIGKILL", it, mode_names[mode]))
	{
		ok_all = false;
		goto out;
	}
	observed_ok = observe(db, ob);
	ok(observed_ok, "iteration %d: full scans and gets after recovery report no error", it);
	if (!observed_ok)
	{
		observed_free(ob);
		ok_all = false;
		goto out;
	}
	diff_m = differences(ob, m, first, sizeof(first));
	if (diff_m > 0)
		tap_diag("  vs. the acknowledged state: %d differences; first: %s", diff_m, first);
	if (npending > 0)
	{
		diff_p = differences(ob, with_pending, first, sizeof(first));
		if (diff_p > 0)
			tap_diag("  vs. acknowledged + the unacknowledged batch: %d differences; first: %s",
					 diff_p, first);
	}
	if (!ok(diff_m == 0 || diff_p == 0,
			"iteration %d: all %ld acknowledged batches are present%s",
			it, acked_batches,
			npending == 0 ? "" : (diff_m == 0 ? " (the unacknowledged one is not)"
								  : " (and the unacknowledged one, whole)")))
		ok_all = false;
	else if (diff_m != 0)
		memcpy(m, with_pending, sizeof(model));
	observed_free(ob);

	/* the engine keeps working */
	why[0] = '\0';
	if (ok_all && !ok(keeps_working(db, m, why, sizeof(why)),
					  "iteration %d: writes, reads, range delete and compact_all work after recovery", it))
	{
		tap_diag("  %s", why);
		ok_all = false;
	}
	nokv_close(db);
	db = NULL;
	list_tmp_files(dir);

	/* and opens again, whatever recovery left behind */
	if (ok_all)
	{
		db = open_engine(dir, false);
		if (!ok(db != NULL, "iteration %d: a second open after recovery", it))
			ok_all = false;
		else
		{
			bool		same = observe(db, ob);

			if (same)
			{
				int			n = differences(ob, m, first, sizeof(first));

				if (n > 0)
					tap_diag("  %d differences after the second open; first: %s", n, first);
				same = n == 0;
			}
			observed_free(ob);
			ok(same, "iteration %d: the state is the same after the second open", it);
			ok_all = ok_all && same;
			nokv_close(db);
			db = NULL;
		}
	}

out:
	if (db)
		nokv_close(db);
	free(with_pending);
	free(ob);
	munmap(cs, sizeof(child_state));
	return ok_all;
}

int
main(int argc, char **argv)
{
	const char *seed_arg = argc > 1 ? argv[1] : getenv("NOKV_SEED");
	const char *iters_env = getenv("NOKV_CRASH_ITERATIONS");
	uint64_t	base_seed = seed_arg && *seed_arg ? strtoull(seed_arg, NULL, 0) : 0xc7a5b001;
	int			iterations = iters_env && *iters_env ? atoi(iters_env) : scaled(12);
	char	   *dir = NULL;
	char		logpath[4200];
	model	   *m = calloc(1, sizeof(model));
	char	   *root = tap_tmpdir("crash");
	int			chain = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	if (iterations < MODE_COUNT)
		iterations = MODE_COUNT;
	alarm((unsigned) (60 + iterations * (under_asan() ? 60 : 30)));
	tap_diag("base seed %" PRIu64 " (reproduce with NOKV_SEED=%" PRIu64 "), %d iterations, root %s",
			 base_seed, base_seed, iterations, root);

	for (int it = 0; it < iterations; it++)
	{
		uint64_t	seed = base_seed + (uint64_t) it * 7919;
		bool		passed;

		if (dir == NULL)
		{
			dir = malloc(4200);
			snprintf(dir, 4200, "%s/db%d", root, chain++);
			memset(m, 0, sizeof(model));
		}
		snprintf(logpath, sizeof(logpath), "%s/ack-%d.log", root, it);
		passed = run_iteration(it, (crash_mode) (it % MODE_COUNT), seed, dir, logpath, m);
		if (!passed)
		{
			tap_diag("  iteration %d failed: seed %" PRIu64 ", directory %s, log %s%s", it, seed,
					 dir, logpath, getenv("NOKV_KEEP") ? " (kept)" : "");
			/* a broken engine directory would fail every later iteration: start over */
			free(dir);
			dir = NULL;
		}
		else
			unlink(logpath);
	}
	free(dir);
	free(m);
	if (tap_failed_ && getenv("NOKV_KEEP"))
		tap_diag("kept %s", root);
	else
		tap_rmdir(root);
	free(root);
	return tap_done();
}
