#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# fdw.sh
#	  The nokv foreign data wrapper against the SQL key-value functions
#	  and a heap table, inside one PostgreSQL 15 instance, with pgbench.
#
# Starts a PostgreSQL instance of its own (initdb into a temporary
# directory, a free port on 127.0.0.1 only, shared_preload_libraries =
# 'nokv', fsync on), loads KEYS keys 'k0000001' ... with one fixed
# VALUE_SIZE-byte value into
#
#	nokv:	the key-value namespace, through the FDW (INSERT INTO kv_fdw,
#			batch_size 1000), then nokv_flush() and nokv_compact()
#	heap:	kv(key text COLLATE "C" PRIMARY KEY, value text), VACUUM ANALYZE
#
# and runs pgbench custom scripts, each for DURATION seconds, for every
# combination of
#
#	workload	point	one key by equality
#						fdw   SELECT value FROM kv_fdw WHERE key = :k
#						func  SELECT nokv_get(:k)
#						heap  SELECT value FROM kv WHERE key = :k
#				range	the 100 keys from a random key on, in key order
#						(aggregated, so the client receives one row)
#						fdw   ... FROM kv_fdw WHERE key >= :k ORDER BY key LIMIT 100
#						func  ... FROM nokv_scan(:k, NULL, 100)
#						heap  ... FROM kv WHERE key >= :k ORDER BY key LIMIT 100
#	clients		1, 2 (pgbench -c N -j N)
#
# with :k = 'k' || lpad(random(1, KEYS), 7, '0'), pgbench -n -M prepared.
# Prints TPS, the server's CPU per transaction and the ratio to heap for
# each, and writes them, with the machine, versions, settings and plans, to
# bench/results/fdw-<UTC date-time>.txt (not kept if the run fails).  The
# instance is stopped and deleted at the end.  See bench/README.md, "The
# foreign data wrapper against the SQL functions and heap".
#
# The extension must be installed (make install) in the PostgreSQL 15 the
# script runs.  Run as root, the script runs itself again as the postgres
# user (from a copy in a temporary directory that user owns) and copies the
# results file into bench/results/ afterwards.
#
# Environment:
#	DURATION	seconds per pgbench run (default 15)
#	KEYS		key space (default 1000000, at most 9999999)
#	VALUE_SIZE	value bytes (default 100)
#	CLIENTS		client counts to run (default "1 2")
#	WORKLOADS	workloads to run, in this order (default "point range")
#	PG_BIN		PostgreSQL binaries (default: PostgreSQL 15's bindir)
#	TMPDIR		where the temporary instance goes (default /tmp)
#
# bench/fdw.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

DURATION="${DURATION:-15}"
KEYS="${KEYS:-1000000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
CLIENTS="${CLIENTS:-1 2}"
WORKLOADS="${WORKLOADS:-point range}"
SURFACES="heap fdw func"

BENCH_NAME=fdw
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case $DURATION in ''|*[!0-9]*|0) die "DURATION must be a positive integer, not \"$DURATION\"" ;; esac
case $KEYS in ''|*[!0-9]*|0) die "KEYS must be a positive integer, not \"$KEYS\"" ;; esac
[ "$KEYS" -le 9999999 ] || die "KEYS must be at most 9999999 (keys have 7 digits)"
case $VALUE_SIZE in ''|*[!0-9]*|0) die "VALUE_SIZE must be a positive integer, not \"$VALUE_SIZE\"" ;; esac
for c in $CLIENTS; do
	case $c in ''|*[!0-9]*|0) die "CLIENTS must list positive integers, not \"$CLIENTS\"" ;; esac
done
for w in $WORKLOADS; do
	case $w in point|range) ;; *) die "unknown workload \"$w\" (point, range)" ;; esac
done

bench_rerun_as_postgres DURATION KEYS VALUE_SIZE CLIENTS WORKLOADS
bench_paths
bench_require initdb pg_ctl postgres psql pgbench pg_config
bench_workspace

# ---------- the instance ----------

bench_initdb <<EOF
shared_buffers = 256MB
nokv.memtable_size = 64MB
nokv.block_cache_size = 256MB
fsync = on
max_wal_size = 8GB
checkpoint_timeout = 30min
EOF

bench_start

# ---------- data ----------

value=""
h="nokv fdw"
while [ "${#value}" -lt "$VALUE_SIZE" ]; do
	h=$(printf '%s' "$h" | sha256sum | cut -c1-64)
	value+=$h
done
value=${value:0:$VALUE_SIZE}

log "loading $KEYS keys with $VALUE_SIZE-byte values into heap and, through the FDW, nokv"
load_start=$(date +%s%N)
"${PSQL[@]}" -v keys="$KEYS" -v val="$value" >/dev/null <<'EOF'
CREATE EXTENSION nokv;
CREATE SERVER kv_local FOREIGN DATA WRAPPER nokv_fdw;
CREATE FOREIGN TABLE kv_fdw (key text COLLATE "C", value text) SERVER kv_local
  OPTIONS (batch_size '1000');
CREATE TABLE kv (key text COLLATE "C" PRIMARY KEY, value text);
INSERT INTO kv SELECT 'k' || lpad(i::text, 7, '0'), :'val' FROM generate_series(1, :keys) i;
VACUUM ANALYZE kv;
EOF
heap_load=$(( ($(date +%s%N) - load_start) / 1000000 ))
load_start=$(date +%s%N)
"${PSQL[@]}" -v keys="$KEYS" -v val="$value" >/dev/null <<'EOF'
INSERT INTO kv_fdw SELECT 'k' || lpad(i::text, 7, '0'), :'val' FROM generate_series(1, :keys) i;
EOF
fdw_load=$(( ($(date +%s%N) - load_start) / 1000000 ))
"${PSQL[@]}" >/dev/null <<'EOF'
SELECT nokv_flush();
SELECT nokv_compact();
CHECKPOINT;
EOF

check_data()
{
	local n_heap n_fdw n_func

	n_heap=$(psql_value "SELECT count(*) FROM kv WHERE value = '$value'")
	n_fdw=$(psql_value "SELECT count(*) FROM kv_fdw WHERE value = '$value'")
	n_func=$(psql_value "SELECT count(*) FROM nokv_scan(NULL::text, NULL) WHERE value = '$value'")
	if [ "$n_heap" != "$KEYS" ] || [ "$n_fdw" != "$KEYS" ] || [ "$n_func" != "$KEYS" ]; then
		die "$1: expected $KEYS keys: heap $n_heap, fdw $n_fdw, nokv_scan $n_func"
	fi
	log "$1: all $KEYS keys present with the value (heap, fdw, nokv_scan)"
}

check_data "after the load"

# ---------- pgbench scripts ----------

key="'k' || lpad(:id::text, 7, '0')"
for s in heap fdw func; do
	echo "\\set id random(1, $KEYS)" >"$tmp/$s-point.sql"
	echo "\\set id random(1, $KEYS)" >"$tmp/$s-range.sql"
done
echo "SELECT value FROM kv WHERE key = $key;" >>"$tmp/heap-point.sql"
echo "SELECT value FROM kv_fdw WHERE key = $key;" >>"$tmp/fdw-point.sql"
echo "SELECT nokv_get($key);" >>"$tmp/func-point.sql"
echo "SELECT count(*), sum(length(value)) FROM (SELECT value FROM kv WHERE key >= $key ORDER BY key LIMIT 100) s;" >>"$tmp/heap-range.sql"
echo "SELECT count(*), sum(length(value)) FROM (SELECT value FROM kv_fdw WHERE key >= $key ORDER BY key LIMIT 100) s;" >>"$tmp/fdw-range.sql"
echo "SELECT count(*), sum(length(value)) FROM nokv_scan($key, NULL, 100);" >>"$tmp/func-range.sql"

# ---------- header ----------

mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
settings=$(psql_value "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'max_wal_size',
	'nokv.memtable_size', 'nokv.max_memtables', 'nokv.block_cache_size', 'nokv.compression')")
plan_point=$(psql_value "EXPLAIN (COSTS OFF) SELECT value FROM kv_fdw WHERE key = 'k0000001'" | tr '\n' ';')
plan_range=$(psql_value "EXPLAIN (COSTS OFF) SELECT value FROM kv_fdw WHERE key >= 'k0000001' ORDER BY key LIMIT 100" | tr '\n' ';')

{
	echo "# nokv FDW vs SQL functions vs heap inside PostgreSQL (bench/fdw.sh)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) cpu=\"$cpu_model\" memory=$((mem_kb / 1024)) MiB kernel=$(uname -r)"
	echo "# postgresql: $(psql_value 'SELECT version()')"
	echo "# nokv: extension $(psql_value "SELECT extversion FROM pg_extension WHERE extname = 'nokv'"), engine $(psql_value 'SELECT nokv_engine_version()'), $nokv_so md5 $nokv_md5"
	echo "# command: $command_line (DURATION=$DURATION KEYS=$KEYS VALUE_SIZE=$VALUE_SIZE CLIENTS=\"$CLIENTS\" WORKLOADS=\"$WORKLOADS\")"
	echo "# settings: $settings"
	echo "# data: keys 'k0000001' .. (text COLLATE \"C\"), one fixed $VALUE_SIZE-byte value; load: heap ${heap_load} ms (INSERT ... SELECT, then VACUUM ANALYZE),"
	echo "#   nokv ${fdw_load} ms (INSERT INTO kv_fdw ... SELECT, batch_size 1000, one transaction), then nokv_flush() and nokv_compact()"
	echo "# pgbench: -n -M prepared -T $DURATION -c N -j N, \\set id random(1, $KEYS), :k = 'k' || lpad(:id::text, 7, '0')"
	echo "#   point: heap SELECT value FROM kv WHERE key = :k; fdw the same on kv_fdw; func SELECT nokv_get(:k)"
	echo "#   range: SELECT count(*), sum(length(value)) FROM (100 rows from :k in key order): heap and fdw ... WHERE key >= :k ORDER BY key LIMIT 100,"
	echo "#          func nokv_scan(:k, NULL, 100)"
	echo "# fdw plans: point: $plan_point"
	echo "#            range: $plan_range"
	echo "# cpu: CPU microseconds of the instance's processes per transaction (backends and background)"
	echo "# load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
} | tee "$results"

# ---------- runs ----------

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

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
	local pm server pid

	pm=$(head -n 1 "$pgdata/postmaster.pid")
	server=$(proc_ticks "$pm" all)
	for pid in $(ps -o pid= --ppid "$pm"); do
		server=$((server + $(proc_ticks "$pid" self)))
	done
	echo "$server"
}

# run_pgbench SURFACE WORKLOAD CLIENTS: sets TPS and CPU_US
run_pgbench()
{
	local surface=$1 workload=$2 clients=$3 out rc txns lat t0 t1

	psql_value 'CHECKPOINT' >/dev/null
	t0=$(server_ticks)
	set +e
	out=$("$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$clients" -T "$DURATION" \
		-f "$tmp/$surface-$workload.sql" -h 127.0.0.1 -p "$port" -U postgres bench 2>&1)
	rc=$?
	set -e
	sleep 0.2
	t1=$(server_ticks)
	if [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" >&2
		die "pgbench failed: $surface $workload -c $clients"
	fi
	TPS=$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\) .*without initial connection time.*/\1/p')
	txns=$(printf '%s\n' "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	lat=$(printf '%s\n' "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
	if [ -z "$TPS" ] || [ -z "$txns" ] || [ "$txns" -eq 0 ]; then
		printf '%s\n' "$out" >&2
		die "could not read pgbench's result: $surface $workload -c $clients"
	fi
	CPU_US=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	printf '# %s %s -c %d: tps=%.1f txns=%d latency_avg=%s ms cpu=%s us/txn\n' \
		"$workload" "$surface" "$clients" "$TPS" "$txns" "${lat:-?}" "$CPU_US" | tee -a "$results"
}

rows=()
for workload in $WORKLOADS; do
	for clients in $CLIENTS; do
		declare -A tps=() cpu=()
		for surface in $SURFACES; do
			run_pgbench "$surface" "$workload" "$clients"
			tps[$surface]=$TPS
			cpu[$surface]=$CPU_US
		done
		rows+=("$workload $clients ${tps[heap]} ${tps[fdw]} ${tps[func]} ${cpu[heap]} ${cpu[fdw]} ${cpu[func]}")
		unset tps cpu
	done
done

check_data "after the runs"

{
	echo "#"
	echo "# TPS = pgbench's tps (without initial connection time); x/heap above 1.00: faster than heap"
	echo "# *_us = CPU microseconds of the server's processes per transaction"
	printf '%-6s %7s %10s %10s %10s %8s %9s %8s %8s %8s\n' workload clients heap_tps fdw_tps func_tps fdw/heap func/heap heap_us fdw_us func_us
	for row in "${rows[@]}"; do
		read -r w c h f s hu fu su <<<"$row"
		printf '%-6s %7d %10.0f %10.0f %10.0f %8.2f %9.2f %8.1f %8.1f %8.1f\n' "$w" "$c" "$h" "$f" "$s" \
			"$(awk -v h="$h" -v n="$f" 'BEGIN { print n / h }')" \
			"$(awk -v h="$h" -v n="$s" 'BEGIN { print n / h }')" "$hu" "$fu" "$su"
	done
} | tee -a "$results"

log "results: $results"
