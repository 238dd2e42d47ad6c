/*-------------------------------------------------------------------------
 *
 * nokv_cli.c
 *	  The offline `nokv` command: statistics, manifest, value-log and SST
 *	  listings of a stopped engine's data directory.
 *
 *	  usage: nokv stats|manifest|vlog|sst --workdir DIR [--json]
 *	         nokv --help | --version
 *
 * Everything is read through the inspection API (nokv/inspect.h), which
 * opens files read-only and never creates, writes, renames, truncates or
 * deletes anything.  The command refuses to look at a directory that is
 * in use: a PostgreSQL server whose postmaster.pid sits next to it (the
 * extension keeps its engine in $PGDATA/nokv) and is alive, or another
 * process holding the engine's LOCK file.  While a server runs, the SQL
 * views (nokv_stats, nokv_sstables, ...) show the same figures.
 *
 * Exit codes: 0 ok, 1 bad usage, 2 the directory is in use, 3 corrupt or
 * unreadable data (the message names the file and offset).
 *
 * docs/cli.md documents every field.
 *
 * src/tools/nokv_cli.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#include "nokv/inspect.h"
#include "nokv/nokv.h"

#define EXIT_USAGE		1
#define EXIT_BUSY		2
#define EXIT_CORRUPT	3

typedef enum command
{
	CMD_STATS,
	CMD_MANIFEST,
	CMD_VLOG,
	CMD_SST
} command;

static const char *progname = "nokv";

static void
usage(FILE *out)
{
	fprintf(out,
			"%s inspects a stopped nokv data directory (read-only).\n"
			"\n"
			"Usage:\n"
			"  %s stats    --workdir DIR [--json]   every figure derivable from the files\n"
			"  %s manifest --workdir DIR [--json]   the manifest: counters, log positions, heads\n"
			"  %s vlog     --workdir DIR [--json]   value-log segments\n"
			"  %s sst      --workdir DIR [--json]   SST files of the current version\n"
			"  %s --help | --version\n"
			"\n"
			"Options:\n"
			"  --workdir DIR              the engine's data directory (PostgreSQL: $PGDATA/nokv)\n"
			"  --json                     JSON instead of text\n"
			"  --num-levels N             level options used for level targets and scores\n"
			"  --level-base-bytes N       (defaults: 7, 268435456, 10, 4; set them to the\n"
			"  --level-multiplier N        server's settings to reproduce its figures)\n"
			"  --l0-compaction-trigger N\n"
			"\n"
			"Exit status: 0 ok, 1 bad usage, 2 the directory is in use, 3 corrupt or\n"
			"unreadable data.\n",
			progname, progname, progname, progname, progname, progname);
}

static void
fail_usage(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

static void
fail_usage(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", progname);
	exit(EXIT_USAGE);
}

static long long
parse_number(const char *opt, const char *s, long long min, long long max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fail_usage("invalid value \"%s\" for %s", s, opt);
	return v;
}

/* ---------- refusing a directory in use ---------- */

/* the pid on the first line of a postmaster.pid, or 0 */
static long
postmaster_pid(const char *path)
{
	char		line[64];
	FILE	   *f = fopen(path, "r");
	char	   *end;
	long		pid;

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
	{
		fclose(f);
		return 0;
	}
	fclose(f);
	errno = 0;
	pid = strtol(line, &end, 10);
	if (errno != 0 || end == line || pid <= 0 || pid > INT32_MAX)
		return 0;
	return pid;
}

/*
 * A PostgreSQL server keeps the engine in $PGDATA/nokv: refuse when
 * DIR/../postmaster.pid names a live process (kill(pid, 0) succeeds or
 * fails with EPERM).  A stale file (the process is gone) does not count.
 * Both the physical parent (DIR/.., through a symlinked DIR) and the
 * lexical one (DIR with its last component removed) are looked at.
 */
static void
refuse_if_server_running(const char *dir)
{
	char		paths[2][4200];
	size_t		len = strlen(dir);
	int			n = 1;

	snprintf(paths[0], sizeof(paths[0]), "%s/../postmaster.pid", dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	if (len == 0)
		snprintf(paths[n++], sizeof(paths[1]), "postmaster.pid");
	else if (len < 4096)
		snprintf(paths[n++], sizeof(paths[1]), "%.*spostmaster.pid", (int) len, dir);

	for (int i = 0; i < n; i++)
	{
		long		pid = postmaster_pid(paths[i]);

		if (pid != 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM))
		{
			fprintf(stderr,
					"%s: data directory %s is in use by a running PostgreSQL server (pid %ld)\n"
					"HINT: stop the server first, or query the SQL views (nokv_stats, nokv_sstables,\n"
					"nokv_levels, nokv_vlog_segments, nokv_manifest, nokv_memtables) while it runs.\n",
					progname, dir, pid);
			exit(EXIT_BUSY);
		}
	}
}

/*
 * A running engine holds an exclusive flock on DIR/LOCK.  Probe it with a
 * non-blocking shared lock on our own descriptor and drop it at once; a
 * missing file is never created.
 */
static void
refuse_if_locked(const char *dir)
{
	char		path[4200];
	int			fd;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0)
	{
		int			saved = errno;

		close(fd);
		if (saved == EWOULDBLOCK)
		{
			fprintf(stderr,
					"%s: data directory %s is in use by another process (%s is locked)\n"
					"HINT: stop the engine or server using it first, or query the SQL views while it runs.\n",
					progname, dir, path);
			exit(EXIT_BUSY);
		}
		return;
	}
	flock(fd, LOCK_UN);
	close(fd);
}

/* ---------- formatting ---------- */

/* a number as text: integers exactly, other values with 6 significant digits */
static void
format_double(char *buf, size_t size, double v, bool json)
{
	if (!isfinite(v))
		snprintf(buf, size, "%s", json ? "null" : "nan");
	else if (v == floor(v) && fabs(v) < 1.8e19)
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.6g", v);
}

static bool
printable(const char *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) k[i] < 0x20 || (unsigned char) k[i] > 0x7e)
			return false;
	return true;
}

/* text mode: printable ASCII as is, every other byte (and backslash) as \xNN */
static char *
key_text(const char *k, size_t n)
{
	char	   *out = malloc(n * 4 + 1);
	char	   *p = out;

	if (!out)
		abort();
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) k[i];

		if (c >= 0x20 && c <= 0x7e && c != '\\')
			*p++ = (char) c;
		else
			p += sprintf(p, "\\x%02x", c);
	}
	*p = '\0';
	return out;
}

static void
json_hex(FILE *out, const char *k, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", (unsigned char) k[i]);
	fputc('"', out);
}

/* a JSON string of printable ASCII (callers check printable()) */
static void
json_str(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] == '"' || s[i] == '\\')
			fputc('\\', out);
		fputc(s[i], out);
	}
	fputc('"', out);
}

static const char *
cf_label(int cf, char *buf, size_t size)
{
	const char *name = nokv_cf_name(cf);

	if (name)
		return name;
	snprintf(buf, size, "cf%d", cf);
	return buf;
}

/* ---------- text tables ---------- */

#define MAX_COLS 12

typedef struct table
{
	int			ncols;
	const char *head[MAX_COLS];
	bool		left[MAX_COLS];	/* left-aligned (text) column */
	int			nrows;
	int			caprows;
	char	  **cells;			/* nrows x ncols, malloc'ed */
} table;

static void
table_init(table *t, int ncols, const char *const *head, const bool *left)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	for (int c = 0; c < ncols; c++)
	{
		t->head[c] = head[c];
		t->left[c] = left[c];
	}
}

/* add one row of ncols malloc'ed strings; the table frees them */
static void
table_row(table *t, char **cells)
{
	if (t->nrows == t->caprows)
	{
		t->caprows = t->caprows ? t->caprows * 2 : 64;
		t->cells = realloc(t->cells, sizeof(char *) * (size_t) t->caprows * (size_t) t->ncols);
		if (!t->cells)
			abort();
	}
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = cells[c];
	t->nrows++;
}

static void
table_print(table *t, FILE *out)
{
	size_t		width[MAX_COLS];
	size_t		linecap = 1;
	char	   *line;

	for (int c = 0; c < t->ncols; c++)
	{
		width[c] = strlen(t->head[c]);
		for (int r = 0; r < t->nrows; r++)
		{
			size_t		w = strlen(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
		linecap += width[c] + 2;
	}
	line = malloc(linecap);
	if (!line)
		abort();
	for (int r = -1; r < t->nrows; r++)
	{
		size_t		len = 0;

		for (int c = 0; c < t->ncols; c++)
		{
			const char *s = r < 0 ? t->head[c] : t->cells[r * t->ncols + c];

			len += (size_t) snprintf(line + len, linecap - len, t->left[c] ? "%-*s" : "%*s",
									 (int) width[c], s);
			if (c < t->ncols - 1)
				len += (size_t) snprintf(line + len, linecap - len, "  ");
		}
		/* padding of a left-aligned last column is noise */
		while (len > 0 && line[len - 1] == ' ')
			len--;
		fwrite(line, 1, len, out);
		fputc('\n', out);
	}
	free(line);
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

static char *
fmt(const char *f,...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f,...)
{
	va_list		ap;
	char	   *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static char *
fmt_u64(uint64_t v)
{
	return fmt("%" PRIu64, v);
}

/* ---------- subcommands ---------- */

typedef struct stats_out
{
	FILE	   *out;
	bool		json;
	int			n;
} stats_out;

static void
print_stat(void *arg, const nokv_stat *s)
{
	stats_out  *so = arg;
	char		num[64];

	format_double(num, sizeof(num), s->value, so->json);
	if (so->json)
		fprintf(so->out, "%s\n  \"%s\": %s", so->n ? "," : "{", s->name, num);
	else
		fprintf(so->out, "%s %s\n", s->name, num);
	so->n++;
}

static void
cmd_stats(nokv_inspector *in, bool json, FILE *out)
{
	stats_out	so = {.out = out, .json = json};

	nokv_inspect_stats_foreach(in, print_stat, &so);
	if (json)
		fputs(so.n ? "\n}\n" : "{}\n", out);
}

static void
cmd_manifest(nokv_inspector *in, bool json, FILE *out)
{
	nokv_manifest_info m;

	nokv_inspect_manifest(in, &m);
	if (json)
	{
		fprintf(out, "[\n  {\n");
		fprintf(out, "    \"manifest_number\": %" PRIu64 ",\n", m.manifest_number);
		fprintf(out, "    \"manifest_size\": %" PRIu64 ",\n", m.manifest_size);
		fprintf(out, "    \"next_file_number\": %" PRIu64 ",\n", m.next_file_number);
		fprintf(out, "    \"last_version\": %" PRIu64 ",\n", m.last_version);
		fprintf(out, "    \"log_number\": %" PRIu64 ",\n", m.log_number);
		fprintf(out, "    \"external_logs\": [");
		for (int i = 0; i < m.n_ext; i++)
			fprintf(out, "%s{\"log_id\": %u, \"flushed\": %" PRIu64 "}", i ? ", " : "",
					m.ext[i].log_id, m.ext[i].position);
		fprintf(out, "],\n");
		fprintf(out, "    \"vlog_head_segment\": %" PRIu64 ",\n", m.vlog_head_segment);
		fprintf(out, "    \"vlog_head_offset\": %" PRIu64 ",\n", m.vlog_head_offset);
		fprintf(out, "    \"live_files\": %d,\n", m.live_files);
		fprintf(out, "    \"live_bytes\": %" PRIu64 ",\n", m.live_bytes);
		fprintf(out, "    \"vlog_segments\": %d,\n", m.vlog_segments);
		fprintf(out, "    \"num_levels\": %d,\n", m.num_levels);
		fprintf(out, "    \"torn_tail\": %s\n", m.torn_tail ? "true" : "false");
		fprintf(out, "  }\n]\n");
		return;
	}
	{
		static const char *const head[] = {"FIELD", "VALUE"};
		static const bool left[] = {true, false};
		table		t;
		char	   *cells[2];

		table_init(&t, 2, head, left);
#define FIELD(name, value) do { cells[0] = fmt("%s", name); cells[1] = (value); table_row(&t, cells); } while (0)
		FIELD("manifest_number", fmt_u64(m.manifest_number));
		FIELD("manifest_size", fmt_u64(m.manifest_size));
		FIELD("next_file_number", fmt_u64(m.next_file_number));
		FIELD("last_version", fmt_u64(m.last_version));
		FIELD("log_number", fmt_u64(m.log_number));
		for (int i = 0; i < m.n_ext; i++)
		{
			cells[0] = fmt("external_log.%u.flushed", m.ext[i].log_id);
			cells[1] = fmt_u64(m.ext[i].position);
			table_row(&t, cells);
		}
		FIELD("vlog_head_segment", fmt_u64(m.vlog_head_segment));
		FIELD("vlog_head_offset", fmt_u64(m.vlog_head_offset));
		FIELD("live_files", fmt("%d", m.live_files));
		FIELD("live_bytes", fmt_u64(m.live_bytes));
		FIELD("vlog_segments", fmt("%d", m.vlog_segments));
		FIELD("num_levels", fmt("%d", m.num_levels));
		FIELD("torn_tail", fmt("%s", m.torn_tail ? "true" : "false"));
#undef FIELD
		table_print(&t, out);
	}
}

static void
cmd_vlog(nokv_inspector *in, bool json, FILE *out)
{
	const nokv_vlog_seg_info *v;
	int			n = nokv_inspect_vlog_segments(in, &v);
	char		ratio[64];

	if (json)
	{
		fputs("[", out);
		for (int i = 0; i < n; i++)
		{
			format_double(ratio, sizeof(ratio), v[i].discard_ratio, true);
			fprintf(out, "%s\n  {\"number\": %" PRIu64 ", \"size\": %" PRIu64
					", \"file_size\": %" PRIu64 ", \"discard\": %" PRIu64
					", \"discard_ratio\": %s, \"is_head\": %s}",
					i ? "," : "", v[i].number, v[i].size, v[i].file_size, v[i].discard,
					ratio, v[i].is_head ? "true" : "false");
		}
		fputs(n ? "\n]\n" : "]\n", out);
		return;
	}
	{
		static const char *const head[] = {"NUMBER", "SIZE", "FILE_SIZE", "DISCARD", "DISCARD_RATIO", "HEAD"};
		static const bool left[] = {false, false, false, false, false, true};
		table		t;
		char	   *cells[6];

		table_init(&t, 6, head, left);
		for (int i = 0; i < n; i++)
		{
			cells[0] = fmt_u64(v[i].number);
			cells[1] = fmt_u64(v[i].size);
			cells[2] = fmt_u64(v[i].file_size);
			cells[3] = fmt_u64(v[i].discard);
			cells[4] = fmt("%.4f", v[i].discard_ratio);
			cells[5] = fmt("%s", v[i].is_head ? "yes" : "");
			table_row(&t, cells);
		}
		table_print(&t, out);
	}
}

static void
json_key(FILE *out, const char *prefix, int cf, const char *k, size_t n, uint64_t version)
{
	char		buf[16];

	fprintf(out, ", \"%s_cf\": \"%s\", \"%s_key\": ", prefix, cf_label(cf, buf, sizeof(buf)), prefix);
	if (printable(k, n))
		json_str(out, k, n);
	else
		fputs("null", out);
	fprintf(out, ", \"%s_key_hex\": ", prefix);
	json_hex(out, k, n);
	fprintf(out, ", \"%s_version\": %" PRIu64, prefix, version);
}

static void
cmd_sst(nokv_inspector *in, bool json, FILE *out)
{
	const nokv_sst_info *s;
	int			n = nokv_inspect_sstables(in, &s);
	char		buf[16];

	if (json)
	{
		fputs("[", out);
		for (int i = 0; i < n; i++)
		{
			fprintf(out, "%s\n  {\"level\": %d, \"number\": %" PRIu64 ", \"size\": %" PRIu64
					", \"entries\": %" PRIu64 ", \"deletions\": %" PRIu64
					", \"range_deletions\": %" PRIu64 ", \"min_version\": %" PRIu64
					", \"max_version\": %" PRIu64 ", \"raw_key_bytes\": %" PRIu64
					", \"raw_value_bytes\": %" PRIu64,
					i ? "," : "", s[i].level, s[i].number, s[i].size, s[i].entries,
					s[i].deletions, s[i].range_deletions, s[i].min_version, s[i].max_version,
					s[i].raw_key_bytes, s[i].raw_value_bytes);
			json_key(out, "smallest", s[i].smallest_cf, s[i].smallest_key, s[i].smallest_len,
					 s[i].smallest_version);
			json_key(out, "largest", s[i].largest_cf, s[i].largest_key, s[i].largest_len,
					 s[i].largest_version);
			fputs("}", out);
		}
		fputs(n ? "\n]\n" : "]\n", out);
		return;
	}
	{
		static const char *const head[] = {"LEVEL", "NUMBER", "SIZE", "ENTRIES", "DELETIONS",
		"RANGE_DELS", "MIN_VERSION", "MAX_VERSION", "SMALLEST", "LARGEST"};
		static const bool left[] = {false, false, false, false, false, false, false, false,
		true, true};
		table		t;
		char	   *cells[10];

		table_init(&t, 10, head, left);
		for (int i = 0; i < n; i++)
		{
			char	   *sk = key_text(s[i].smallest_key, s[i].smallest_len);
			char	   *lk = key_text(s[i].largest_key, s[i].largest_len);

			cells[0] = fmt("L%d", s[i].level);
			cells[1] = fmt_u64(s[i].number);
			cells[2] = fmt_u64(s[i].size);
			cells[3] = fmt_u64(s[i].entries);
			cells[4] = fmt_u64(s[i].deletions);
			cells[5] = fmt_u64(s[i].range_deletions);
			cells[6] = fmt_u64(s[i].min_version);
			cells[7] = fmt_u64(s[i].max_version);
			cells[8] = fmt("%s:%s", cf_label(s[i].smallest_cf, buf, sizeof(buf)), sk);
			cells[9] = fmt("%s:%s", cf_label(s[i].largest_cf, buf, sizeof(buf)), lk);
			free(sk);
			free(lk);
			table_row(&t, cells);
		}
		table_print(&t, out);
	}
}

/* ---------- main ---------- */

int
main(int argc, char **argv)
{
	command		cmd;
	const char *workdir = NULL;
	bool		json = false;
	nokv_options opts;
	nokv_inspector *in = NULL;
	nokv_error	err;
	int			rc;

	nokv_options_init(&opts);
	if (argc < 2)
	{
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
		strcmp(argv[1], "help") == 0)
	{
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
	{
		printf("%s %s\n", progname, NOKV_VERSION_STRING);
		return 0;
	}
	if (strcmp(argv[1], "stats") == 0)
		cmd = CMD_STATS;
	else if (strcmp(argv[1], "manifest") == 0)
		cmd = CMD_MANIFEST;
	else if (strcmp(argv[1], "vlog") == 0)
		cmd = CMD_VLOG;
	else if (strcmp(argv[1], "sst") == 0)
		cmd = CMD_SST;
	else
		fail_usage("unknown command \"%s\"", argv[1]);

	for (int i = 2; i < argc; i++)
	{
		const char *a = argv[i];
		const char *val = NULL;
		size_t		namelen = strcspn(a, "=");
		static const char *const with_value[] = {"--workdir", "--num-levels", "--level-base-bytes",
		"--level-multiplier", "--l0-compaction-trigger", NULL};
		bool		takes_value = false;

		if (strcmp(a, "--json") == 0)
		{
			json = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		for (int k = 0; with_value[k]; k++)
			if (strlen(with_value[k]) == namelen && strncmp(a, with_value[k], namelen) == 0)
				takes_value = true;
		if (!takes_value)
			fail_usage("unknown option \"%s\"", a);
		if (a[namelen] == '=')
			val = a + namelen + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			fail_usage("option %.*s needs a value", (int) namelen, a);

		if (strncmp(a, "--workdir", namelen) == 0)
		{
			if (val[0] == '\0')
				fail_usage("--workdir must not be empty");
			workdir = val;
		}
		else if (strncmp(a, "--num-levels", namelen) == 0)
			opts.num_levels = (int) parse_number("--num-levels", val, 1, NOKV_MAX_LEVELS);
		else if (strncmp(a, "--level-base-bytes", namelen) == 0)
			opts.max_bytes_for_level_base = (size_t) parse_number("--level-base-bytes", val, 1, INT64_MAX);
		else if (strncmp(a, "--level-multiplier", namelen) == 0)
			opts.level_size_multiplier = (int) parse_number("--level-multiplier", val, 1, 1000);
		else
			opts.l0_compaction_trigger = (int) parse_number("--l0-compaction-trigger", val, 1, 1000000);
	}
	if (workdir == NULL)
		fail_usage("--workdir DIR is required");

	refuse_if_server_running(workdir);
	refuse_if_locked(workdir);

	rc = nokv_inspect_dir_opts(workdir, &opts, &in, &err);
	if (rc != NOKV_OK)
	{
		fprintf(stderr, "%s: cannot read %s: %s\n", progname, workdir, err.msg);
		return EXIT_CORRUPT;
	}
	switch (cmd)
	{
		case CMD_STATS:
			cmd_stats(in, json, stdout);
			break;
		case CMD_MANIFEST:
			cmd_manifest(in, json, stdout);
			break;
		case CMD_VLOG:
			cmd_vlog(in, json, stdout);
			break;
		case CMD_SST:
			cmd_sst(in, json, stdout);
			break;
	}
	nokv_inspect_free(in);
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		fprintf(stderr, "%s: could not write output: %s\n", progname, strerror(errno));
		return EXIT_CORRUPT;
	}
	return 0;
}
