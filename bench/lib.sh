#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# lib.sh
#	  What the PostgreSQL benchmarks (pg_kv.sh, fdw.sh, tableam.sh,
#	  resp.sh) share: messages, re-running as postgres when started as
#	  root, the results file, and a temporary PostgreSQL instance of their
#	  own on a free port of 127.0.0.1.
#
# Sourced after the script sets BENCH_NAME (its file name without .sh).
# bench_count NAME MAX checks a numeric setting.  Each benchmark then
# calls, in order:
#
#	bench_rerun_as_postgres VAR...	as root: run again as postgres (passing
#									the named settings), copy the results
#									back into bench/results, exit
#	bench_paths						results_dir, command_line, results
#	bench_require PROG...			PG_BIN programs, nokv.so (nokv_so,
#									nokv_md5)
#	bench_workspace					tmp, pgdata, server_log; cleanup on exit
#									(a bench_cleanup_hook function, if the
#									script defines one, runs first)
#	bench_initdb < settings			initdb, then the settings on stdin
#	bench_start						start on a free port (port), create
#									database bench, PSQL=(psql ... -d bench)
#
# tableam.sh and tableam_instructions.sh measure the same instance, rows
# and statements: tableam_instance, TABLEAM_PAYLOAD_SQL and tableam_scripts.
#
# bench/lib.sh
#-------------------------------------------------------------------------

if [ -z "${PG_BIN:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_BIN=/usr/lib/postgresql/15/bin
	else
		PG_BIN=$(pg_config --bindir)
	fi
fi

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die()
{
	printf '%s.sh: error: %s\n' "$BENCH_NAME" "$*" >&2
	exit 1
}

log()
{
	printf '==> %s\n' "$*"
}

port_in_use()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port()
{
	local p

	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		port_in_use "$p" || { echo "$p"; return; }
	done
	die "found no free port"
}

# bench_count NAME MAX: the setting $NAME must be a whole number from 1 to MAX
bench_count()
{
	local v=${!1}

	case $v in
		''|*[!0-9]*|0*) die "$1 must be a positive integer, not \"$v\"" ;;
	esac
	if [ ${#v} -gt 9 ] || [ "$v" -gt "$2" ]; then
		die "$1 must be at most $2, not $v"
	fi
}

# PostgreSQL refuses to run as root: run the script again as postgres in a
# scratch copy of bench/ and bring its results back
bench_rerun_as_postgres()
{
	local repo work rc v
	local -a envs

	[ "$(id -u)" -eq 0 ] || return 0
	repo=$(cd "$BENCH_DIR/.." && pwd)
	id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run PostgreSQL as"
	work=$(mktemp -d "${TMPDIR:-/tmp}/nokv-$BENCH_NAME-root.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	cp "$BENCH_DIR/$BENCH_NAME.sh" "$BENCH_DIR/lib.sh" "$work/"
	mkdir "$work/results"
	chown -R postgres: "$work"
	envs=(PG_BIN="$PG_BIN" PATH="$PATH" TMPDIR="${TMPDIR:-/tmp}"
		  BENCH_RESULTS_DIR="$work/results"
		  BENCH_COMMAND="bench/$BENCH_NAME.sh (as root, run as postgres)")
	for v in "$@"; do
		envs+=("$v=${!v}")
	done
	log "running as root: running the benchmark as postgres"
	set +e
	# shellcheck disable=SC2016
	runuser -u postgres -- env "${envs[@]}" \
		bash -c 'cd "$1" && exec bash "./$2.sh"' "$BENCH_NAME.sh" "$work" "$BENCH_NAME" </dev/null
	rc=$?
	set -e
	mkdir -p "$repo/bench/results"
	for f in "$work"/results/*; do
		[ -e "$f" ] || continue
		cp "$f" "$repo/bench/results/"
		log "results: bench/results/$(basename "$f")"
	done
	exit "$rc"
}

bench_paths()
{
	if [ -n "${BENCH_RESULTS_DIR:-}" ]; then
		results_dir=$BENCH_RESULTS_DIR
		command_line=${BENCH_COMMAND:-bench/$BENCH_NAME.sh}
	else
		results_dir="$BENCH_DIR/results"
		command_line=bench/$BENCH_NAME.sh
	fi
	mkdir -p "$results_dir"
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	results="$results_dir/$BENCH_NAME-$stamp.txt"
}

bench_require()
{
	local prog

	for prog in "$@"; do
		[ -x "$PG_BIN/$prog" ] || die "$PG_BIN/$prog not found (set PG_BIN)"
	done
	nokv_so="$("$PG_BIN/pg_config" --pkglibdir)/nokv.so"
	[ -f "$nokv_so" ] || die "nokv.so is not installed in $(dirname "$nokv_so"): run make install first"
	nokv_md5=$(md5sum "$nokv_so" | cut -d' ' -f1)
}

bench_cleanup()
{
	local rc=$?

	if declare -F bench_cleanup_hook >/dev/null; then
		bench_cleanup_hook || true
	fi
	if $started; then
		"$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "$rc" -ne 0 ] && [ -f "$server_log" ]; then
		echo "---------- last lines of the server log ----------" >&2
		tail -n 30 "$server_log" >&2 || true
	fi
	if [ "$rc" -ne 0 ] && [ -f "$results" ]; then
		rm -f "$results"
		echo "$BENCH_NAME.sh: the run failed, $results not kept" >&2
	fi
	rm -rf "$tmp"
}

bench_workspace()
{
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/nokv-$BENCH_NAME.XXXXXX")
	pgdata="$tmp/data"
	server_log="$tmp/server.log"
	started=false
	trap bench_cleanup EXIT
}

# initdb, then append the settings read from stdin
bench_initdb()
{
	log "initdb in $pgdata"
	"$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C \
		>"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
	{
		echo
		echo "# ---- bench/$BENCH_NAME.sh ----"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$tmp'"
		echo "shared_preload_libraries = 'nokv'"
		cat
	} >>"$pgdata/postgresql.conf"
}

bench_start()
{
	local candidate

	port=""
	for _ in 1 2 3 4 5; do
		candidate=$((20000 + RANDOM % 40000))
		port_in_use "$candidate" && continue
		if "$PG_BIN/pg_ctl" -D "$pgdata" -l "$server_log" -w -t 60 \
			-o "-p $candidate" start >/dev/null; then
			port=$candidate
			started=true
			break
		fi
		# lost a race for the port, or something else: retry only the former
		grep -q 'could not bind\|could not create any TCP/IP sockets' "$server_log" ||
			die "the server did not start"
	done
	[ -n "$port" ] || die "found no free port for the server"
	log "PostgreSQL listening on 127.0.0.1:$port"

	PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d bench)
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c 'CREATE DATABASE bench' >/dev/null
}

# psql_value SQL: one value, unaligned
psql_value()
{
	"${PSQL[@]}" -At -c "$1"
}

# ---------- the table AM benchmarks' rows and statements ----------

# the payload: 100 bytes, a unique part (the id and an md5) padded with
# English-like text, as in a typical row of a business table
# shellcheck disable=SC2034
TABLEAM_PAYLOAD_SQL="rpad('row ' || g || ' ' || md5(g::text) || ' ', 100, 'the quick brown fox jumps over the lazy dog ')"

# the instance (started, database bench) and the file of ROWS rows,
# $tmp/rows.copy.  Heap caches its table in shared_buffers, nokv in its
# block cache: each gets the same 256 MB (the indexes of both live in
# shared_buffers).
tableam_instance()
{
	bench_initdb <<EOF
shared_buffers = 256MB
nokv.block_cache_size = 256MB
nokv.memtable_size = 64MB
fsync = on
max_wal_size = 4GB
checkpoint_timeout = 30min
autovacuum = off
EOF
	bench_start
	log "generating $ROWS rows into $tmp/rows.copy"
	"${PSQL[@]}" -c "COPY (SELECT g, g % 1000, $TABLEAM_PAYLOAD_SQL FROM generate_series(1, $ROWS) g) TO '$tmp/rows.copy'"
}

# the pgbench scripts $tmp/<am>-<workload>.sql for t_heap and t_nokv,
# which hold ids 1..ROWS
tableam_scripts()
{
	local am

	for am in heap nokv; do
		cat >"$tmp/$am-insert.sql" <<EOF
\set g random(0, 999)
INSERT INTO t_$am (id, grp, payload) VALUES (nextval('t_${am}_ins'), :g, rpad('inserted ' || :g || ' ', 100, 'the quick brown fox jumps over the lazy dog '));
EOF
		cat >"$tmp/$am-point.sql" <<EOF
\set id random(1, $ROWS)
SELECT payload FROM t_$am WHERE id = :id;
EOF
		cat >"$tmp/$am-range.sql" <<EOF
\set id random(1, $((ROWS - 99)))
SELECT id, payload FROM t_$am WHERE id BETWEEN :id AND :id + 99;
EOF
		cat >"$tmp/$am-update.sql" <<EOF
\set id random(1, $ROWS)
UPDATE t_$am SET payload = rpad('updated ' || :id || ' ', 100, 'the quick brown fox jumps over the lazy dog ') WHERE id = :id;
EOF
	done
}
