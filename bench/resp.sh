#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# resp.sh
#	  nokv's RESP gateway against redis-server, with redis-benchmark.
#
# Starts, in one run, a PostgreSQL instance of its own (initdb into a
# temporary directory, free ports on 127.0.0.1 only, shared_preload_libraries
# = 'nokv', fsync on, the gateway on nokv.resp_listen) and a redis-server
# (appendonly yes, appendfsync everysec, no RDB snapshots, in the same
# temporary directory), and runs
#
#	redis-benchmark -t set,get,incr,mset -c CLIENTS -n REQUESTS -d SIZE -P PIPELINE
#
# for every SIZE in VALUE_SIZES and PIPELINE in PIPELINES against Redis once
# and against the gateway twice: with synchronous_commit = on (PostgreSQL's
# default: a reply means the write is on disk) and off (a reply means the
# write is in the WAL buffer, flushed within wal_writer_delay: the closer
# match for appendfsync everysec).  Prints a table (test, size, pipeline,
# Redis ops/s, nokv ops/s and nokv/Redis for each sync mode, plus the
# server CPU seconds per 100k operations) and writes it, with the machine,
# the versions and the settings, to bench/results/resp-<UTC date-time>.txt
# (not kept if the run fails).  Both servers are stopped and their
# directory deleted at the end.  See bench/README.md, "RESP gateway against
# Redis".
#
# The extension must be installed (make install) in the PostgreSQL 15 the
# script runs; redis-server and redis-benchmark must be on PATH.
# PostgreSQL refuses to run as root: run as root, the script runs itself
# again as the postgres user and copies the results file into bench/results/
# afterwards.
#
# Environment:
#	REQUESTS	redis-benchmark -n (default 200000)
#	CLIENTS		redis-benchmark -c (default 50)
#	VALUE_SIZES	redis-benchmark -d values (default "100 4096")
#	PIPELINES	redis-benchmark -P values (default "1 16")
#	TESTS		redis-benchmark -t (default set,get,incr,mset)
#	KEYSPACE	redis-benchmark -r (default none: every test uses one key,
#				as redis-benchmark does without -r)
#	PG_BIN		PostgreSQL binaries (default: the bindir of PG_CONFIG if
#				set, else PostgreSQL 15's)
#	TMPDIR		where the temporary instance goes (default /tmp)
#
# bench/resp.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
VALUE_SIZES="${VALUE_SIZES:-100 4096}"
PIPELINES="${PIPELINES:-1 16}"
TESTS="${TESTS:-set,get,incr,mset}"
KEYSPACE="${KEYSPACE:-}"
SYNC_MODES="on off"

BENCH_NAME=resp
# a private installation named by PG_CONFIG is the one measured
if [ -z "${PG_BIN:-}" ] && [ -n "${PG_CONFIG:-}" ]; then
	PG_BIN=$("$PG_CONFIG" --bindir)
fi
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for v in REQUESTS CLIENTS; do
	case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive integer, not \"${!v}\"" ;; esac
done
case $KEYSPACE in '') ;; *[!0-9]*|0*) die "KEYSPACE must be a positive integer, not \"$KEYSPACE\"" ;; esac
for v in $VALUE_SIZES $PIPELINES; do
	case $v in ''|*[!0-9]*|0) die "VALUE_SIZES and PIPELINES must list positive integers, not \"$v\"" ;; esac
done
for prog in redis-server redis-benchmark redis-cli; do
	command -v "$prog" >/dev/null || die "$prog not found"
done

# ---------- run as root: again as postgres, then copy the results ----------

bench_rerun_as_postgres REQUESTS CLIENTS VALUE_SIZES PIPELINES TESTS KEYSPACE
bench_paths
bench_require initdb pg_ctl postgres psql pg_config
redis_port=""
bench_cleanup_hook()
{
	if [ -n "$redis_port" ]; then
		redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
	fi
}
bench_workspace

# ---------- the instances ----------

pg_port=$(free_port)
gw_port=$(free_port)
bench_initdb <<EOC
port = $pg_port
shared_buffers = 256MB
nokv.memtable_size = 64MB
fsync = on
max_wal_size = 4GB
checkpoint_timeout = 30min
nokv.resp_listen = '127.0.0.1:$gw_port'
EOC
"$PG_BIN/pg_ctl" -D "$pgdata" -l "$server_log" -w -t 60 start >/dev/null || die "the server did not start"
started=true
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres)
"${PSQL[@]}" -c 'CREATE EXTENSION nokv' >/dev/null
for _ in $(seq 1 100); do
	[ "$(redis-cli -p "$gw_port" ping 2>/dev/null)" = PONG ] && break
	sleep 0.1
done
[ "$(redis-cli -p "$gw_port" ping 2>/dev/null)" = PONG ] || die "the gateway does not answer on $gw_port"
log "PostgreSQL on 127.0.0.1:$pg_port, the nokv gateway on 127.0.0.1:$gw_port"

redis_port=$(free_port)
mkdir "$tmp/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" --save '' \
	--appendonly yes --appendfsync everysec --daemonize yes \
	--logfile "$tmp/redis/redis.log" --pidfile "$tmp/redis/redis.pid" >/dev/null
for _ in $(seq 1 100); do
	[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
	sleep 0.1
done
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || die "redis-server did not start"
log "redis-server on 127.0.0.1:$redis_port (appendonly yes, appendfsync everysec)"

set_sync()
{
	"${PSQL[@]}" -c "ALTER SYSTEM SET synchronous_commit = '$1'" -c 'SELECT pg_reload_conf()' >/dev/null
	sleep 0.5
}

# ---------- header ----------

mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
fs=$(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $1 " " $2 }')
{
	echo "# nokv RESP gateway vs redis-server (bench/resp.sh)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) cpu=\"$cpu_model\" memory=$((mem_kb / 1024)) MiB kernel=$(uname -r)"
	echo "# data directory: $fs"
	echo "# postgresql: $("${PSQL[@]}" -At -c 'SELECT version()')"
	echo "# nokv: engine $("${PSQL[@]}" -At -c 'SELECT nokv_engine_version()'), $nokv_so md5 $nokv_md5"
	echo "# redis: $(redis-server --version)"
	echo "# command: $command_line (REQUESTS=$REQUESTS CLIENTS=$CLIENTS VALUE_SIZES=\"$VALUE_SIZES\" PIPELINES=\"$PIPELINES\" TESTS=$TESTS KEYSPACE=$KEYSPACE)"
	echo "# postgresql settings: fsync=on shared_buffers=256MB nokv.memtable_size=64MB, others default (wal_sync_method fdatasync)"
	echo "# redis settings: appendonly yes, appendfsync everysec, save '' (no RDB)"
	if [ -n "$KEYSPACE" ]; then
		echo "# redis-benchmark -t $TESTS -c $CLIENTS -n $REQUESTS -d SIZE -P PIPELINE -r $KEYSPACE --csv; random keys key:000000000000 etc. among $KEYSPACE"
	else
		echo "# redis-benchmark -t $TESTS -c $CLIENTS -n $REQUESTS -d SIZE -P PIPELINE --csv; keys key:__rand_int__ etc. without -r (one key per test)"
	fi
	echo "# order: for each SIZE and PIPELINE: Redis, then the gateway with synchronous_commit on, then off (ALTER SYSTEM + reload)"
	echo "# cpu: CPU seconds of the server (PostgreSQL: postmaster and all its children; Redis: redis-server) per 100k operations"
} | tee "$results"

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# proc_ticks PID all|self: utime+stime (all: plus reaped children's)
proc_ticks()
{
	local stat
	local -a f

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	read -r -a f <<<"${stat##*) }"
	if [ "$2" = all ]; then
		echo $((f[11] + f[12] + f[13] + f[14]))
	else
		echo $((f[11] + f[12]))
	fi
}

server_ticks()
{
	local pm t pid
	if [ "$1" = redis ]; then
		proc_ticks "$(cat "$tmp/redis/redis.pid")" all
		return
	fi
	pm=$(head -n 1 "$pgdata/postmaster.pid")
	t=$(proc_ticks "$pm" all)
	for pid in $(ps -o pid= --ppid "$pm"); do
		t=$((t + $(proc_ticks "$pid" self)))
	done
	echo "$t"
}

# run_bench SERVER PORT SIZE PIPELINE LABEL: appends "test rps cpu" lines to $tmp/out-LABEL
run_bench()
{
	local server=$1 port=$2 size=$3 pipe=$4 label=$5 out t0 t1 total
	t0=$(server_ticks "$server")
	out=$(redis-benchmark -p "$port" -t "$TESTS" -c "$CLIENTS" -n "$REQUESTS" -d "$size" -P "$pipe" \
		${KEYSPACE:+-r "$KEYSPACE"} --csv 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "redis-benchmark failed against $label"; }
	t1=$(server_ticks "$server")
	if printf '%s\n' "$out" | grep -qi 'error'; then
		printf '%s\n' "$out" >&2
		die "redis-benchmark reported errors against $label"
	fi
	total=$(printf '%s\n' "$out" | awk -F'"' 'NR > 1 && $4 != "" { n++ } END { print n + 0 }')
	[ "$total" -gt 0 ] || { printf '%s\n' "$out" >&2; die "no results from redis-benchmark against $label"; }
	printf '%s\n' "$out" | awk -F'"' -v label="$label" 'NR > 1 && $4 != "" {
		name = $2; sub(/ .*/, "", name); printf "# %s %s: %s ops/s, latency avg %s ms p99 %s ms\n", label, name, $4, $6, $14 }' |
		tee -a "$results"
	printf '%s\n' "$out" | awk -F'"' 'NR > 1 && $4 != "" { name = $2; sub(/ .*/, "", name); print name, $4 }' >"$tmp/out-$label"
	# CPU per 100k operations, over all tests of the run
	awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$((REQUESTS * total))" \
		'BEGIN { printf "%.2f\n", t / hz / n * 100000 }' >"$tmp/cpu-$label"
	printf '# %s: server cpu %s s per 100k operations\n' "$label" "$(cat "$tmp/cpu-$label")" | tee -a "$results"
}

rows=()
for size in $VALUE_SIZES; do
	for pipe in $PIPELINES; do
		log "-d $size -P $pipe"
		redis-cli -p "$redis_port" flushall >/dev/null
		run_bench redis "$redis_port" "$size" "$pipe" "redis-d$size-P$pipe"
		for sync in $SYNC_MODES; do
			set_sync "$sync"
			run_bench nokv "$gw_port" "$size" "$pipe" "nokv-$sync-d$size-P$pipe"
		done
		while read -r test rps; do
			on=$(awk -v t="$test" '$1 == t { print $2 }' "$tmp/out-nokv-on-d$size-P$pipe")
			off=$(awk -v t="$test" '$1 == t { print $2 }' "$tmp/out-nokv-off-d$size-P$pipe")
			rows+=("$test $size $pipe $rps ${on:-0} ${off:-0} $(cat "$tmp/cpu-redis-d$size-P$pipe") $(cat "$tmp/cpu-nokv-on-d$size-P$pipe") $(cat "$tmp/cpu-nokv-off-d$size-P$pipe")")
		done <"$tmp/out-redis-d$size-P$pipe"
	done
done

# the gateway's writes are in nokv: SQL sees them
count=$("${PSQL[@]}" -At -c "SELECT count(*) FROM nokv_scan(NULL::text, NULL::text)")
log "nokv holds $count keys after the runs"

{
	echo "#"
	echo "# ops/s from redis-benchmark --csv; nokv/redis above 1.00: the gateway is faster"
	echo "# sync_on: synchronous_commit = on (every reply after a WAL flush); sync_off: synchronous_commit = off"
	echo "# cpu = server CPU seconds per 100k operations, all tests of the run (redis, nokv on, nokv off)"
	printf '%-6s %5s %3s %11s %11s %11s %8s %8s %17s\n' test size P redis nokv_on nokv_off on/redis off/redis 'cpu r/on/off'
	for row in "${rows[@]}"; do
		read -r t d p r on off cr con coff <<<"$row"
		printf '%-6s %5d %3d %11.0f %11.0f %11.0f %8.2f %9.2f %5s/%s/%s\n' "$t" "$d" "$p" "$r" "$on" "$off" \
			"$(awk -v a="$on" -v b="$r" 'BEGIN { print a / b }')" \
			"$(awk -v a="$off" -v b="$r" 'BEGIN { print a / b }')" "$cr" "$con" "$coff"
	done
	echo "# nokv held $count keys after the runs (nokv_scan)"
} | tee -a "$results"

log "results: $results"
