#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# pg_kv.sh
#	  nokv's SQL key-value API against a plain heap table, inside one
#	  PostgreSQL 15 instance, with pgbench.
#
# Starts a PostgreSQL instance of its own (initdb into a temporary
# directory, a free port on 127.0.0.1 only, shared_preload_libraries =
# 'nokv', fsync on), preloads the same KEYS keys with VALUE_SIZE-byte
# values into both
#
#	nokv:	nokv_put('k' || i, value)
#	heap:	kv(key text primary key, value text)
#
# and then runs pgbench custom scripts, each for DURATION seconds, heap and
# nokv back to back for every combination of
#
#	workload	read	SELECT nokv_get('k' || :id)
#						SELECT value FROM kv WHERE key = 'k' || :id
#				upsert	SELECT nokv_put('k' || :id, :val)
#						INSERT INTO kv VALUES ('k' || :id, :val)
#						ON CONFLICT (key) DO UPDATE SET value = excluded.value
#	clients		1, 2 (pgbench -c N -j N)
#	sync		synchronous_commit on, off (PGOPTIONS, per pgbench run)
#
# with \set id random(1, KEYS), pgbench -n -M prepared.  Prints a table
# (workload, clients, sync, heap TPS, nokv TPS, nokv/heap, and the server's
# CPU per transaction for each) and writes it, with the machine, the
# versions, the settings and a few lines per run, to
# bench/results/pg_kv-<UTC date-time>.txt (not kept if the run fails).  The
# instance is stopped and deleted at the end.  See bench/README.md, "SQL
# key-value API against heap".
#
# The extension must be installed (make install) in the PostgreSQL 15 the
# script runs.  PostgreSQL refuses to run as root: run as root, the script
# runs itself again as the postgres user (from a copy in a temporary
# directory that user owns) and copies the results file into
# bench/results/ afterwards.
#
# Environment:
#	DURATION	seconds per pgbench run (default 15)
#	KEYS		key space, keys 'k1' ... 'k<KEYS>' (default 100000)
#	VALUE_SIZE	value bytes (default 100)
#	CLIENTS		client counts to run (default "1 2")
#	WORKLOADS	workloads to run, in this order (default "read upsert")
#	NOKV_BLOCK_CACHE	nokv.block_cache_size, e.g. 256MB (default: not set, nokv's
#				default of 64MB; shared_buffers is 256MB)
#	PG_BIN		PostgreSQL binaries (default: PostgreSQL 15's bindir)
#	TMPDIR		where the temporary instance goes (default /tmp)
#
# bench/pg_kv.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

DURATION="${DURATION:-15}"
KEYS="${KEYS:-100000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
CLIENTS="${CLIENTS:-1 2}"
WORKLOADS="${WORKLOADS:-read upsert}"
NOKV_BLOCK_CACHE="${NOKV_BLOCK_CACHE:-}"
SYNC_MODES="on off"

BENCH_NAME=pg_kv
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case $DURATION in ''|*[!0-9]*|0) die "DURATION must be a positive integer, not \"$DURATION\"" ;; esac
case $KEYS in ''|*[!0-9]*|0) die "KEYS must be a positive integer, not \"$KEYS\"" ;; esac
case $VALUE_SIZE in ''|*[!0-9]*|0) die "VALUE_SIZE must be a positive integer, not \"$VALUE_SIZE\"" ;; esac
for c in $CLIENTS; do
	case $c in ''|*[!0-9]*|0) die "CLIENTS must list positive integers, not \"$CLIENTS\"" ;; esac
done
for w in $WORKLOADS; do
	case $w in read|upsert) ;; *) die "unknown workload \"$w\" (read, upsert)" ;; esac
done

bench_rerun_as_postgres DURATION KEYS VALUE_SIZE CLIENTS WORKLOADS NOKV_BLOCK_CACHE
bench_paths
bench_require initdb pg_ctl postgres psql pgbench pg_config
bench_workspace

# ---------- the instance ----------

bench_initdb <<EOF
shared_buffers = 256MB
nokv.memtable_size = 64MB
fsync = on
max_wal_size = 4GB
checkpoint_timeout = 30min
EOF
if [ -n "$NOKV_BLOCK_CACHE" ]; then
	echo "nokv.block_cache_size = '$NOKV_BLOCK_CACHE'" >>"$pgdata/postgresql.conf"
fi

bench_start

# ---------- data ----------

# a fixed value of VALUE_SIZE printable bytes (hex of a hash chain)
value=""
h="nokv pg_kv"
while [ "${#value}" -lt "$VALUE_SIZE" ]; do
	h=$(printf '%s' "$h" | sha256sum | cut -c1-64)
	value+=$h
done
value=${value:0:$VALUE_SIZE}
[ "${#value}" -eq "$VALUE_SIZE" ] || die "could not make a $VALUE_SIZE-byte value"

log "preloading $KEYS keys with $VALUE_SIZE-byte values into heap and nokv"
"${PSQL[@]}" -v keys="$KEYS" -v val="$value" >/dev/null <<'EOF'
CREATE EXTENSION nokv;
CREATE TABLE kv (key text PRIMARY KEY, value text);
INSERT INTO kv SELECT 'k' || i, :'val' FROM generate_series(1, :keys) i;
VACUUM ANALYZE kv;
\o /dev/null
SELECT nokv_put('k' || i, :'val') FROM generate_series(1, :keys) i;
\o
SELECT nokv_flush();
SELECT nokv_compact();
CHECKPOINT;
EOF

# check_data WHEN: every key present in both, with the value
check_data()
{
	local bad_heap bad_nokv

	bad_heap=$("${PSQL[@]}" -At -v keys="$KEYS" -v val="$value" <<'EOF'
SELECT count(*) FROM generate_series(1, :keys) i LEFT JOIN kv ON kv.key = 'k' || i
WHERE kv.value IS DISTINCT FROM :'val';
EOF
)
	bad_nokv=$("${PSQL[@]}" -At -v keys="$KEYS" -v val="$value" <<'EOF'
SELECT count(*) FROM generate_series(1, :keys) i
WHERE nokv_get('k' || i) IS DISTINCT FROM :'val';
EOF
)
	if [ "$bad_heap" != 0 ] || [ "$bad_nokv" != 0 ]; then
		die "$1: keys missing or wrong: heap $bad_heap, nokv $bad_nokv of $KEYS"
	fi
	log "$1: all $KEYS keys present with the value in heap and nokv"
}

check_data "after the preload"

# ---------- pgbench scripts ----------

cat >"$tmp/heap-read.sql" <<EOF
\set id random(1, $KEYS)
SELECT value FROM kv WHERE key = 'k' || :id;
EOF
cat >"$tmp/nokv-read.sql" <<EOF
\set id random(1, $KEYS)
SELECT nokv_get('k' || :id);
EOF
cat >"$tmp/heap-upsert.sql" <<EOF
\set id random(1, $KEYS)
INSERT INTO kv (key, value) VALUES ('k' || :id, :val) ON CONFLICT (key) DO UPDATE SET value = excluded.value;
EOF
cat >"$tmp/nokv-upsert.sql" <<EOF
\set id random(1, $KEYS)
SELECT nokv_put('k' || :id, :val);
EOF

# ---------- header ----------

mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
fs=$(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $1 " " $2 }')
fs_opts=$(awk -v dev="${fs%% *}" '$1 == dev { print $4; exit }' /proc/mounts 2>/dev/null || true)
settings=$(psql_value "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'wal_sync_method',
	'full_page_writes', 'wal_level', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'wal_buffers',
	'commit_delay', 'nokv.memtable_size', 'nokv.max_memtables', 'nokv.block_cache_size',
	'nokv.sync_mode', 'nokv.compression', 'nokv.compaction_workers', 'nokv.vlog_threshold')")

{
	echo "# nokv vs heap inside PostgreSQL (bench/pg_kv.sh)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) cpu=\"$cpu_model\" memory=$((mem_kb / 1024)) MiB kernel=$(uname -r)"
	echo "# data directory: $fs ($fs_opts)"
	echo "# postgresql: $(psql_value 'SELECT version()')"
	echo "# nokv: extension $(psql_value "SELECT extversion FROM pg_extension WHERE extname = 'nokv'"), engine $(psql_value 'SELECT nokv_engine_version()'), $nokv_so md5 $nokv_md5 ($(date -u -r "$nokv_so" '+%Y-%m-%d %H:%M:%S UTC'))"
	echo "# command: $command_line (DURATION=$DURATION KEYS=$KEYS VALUE_SIZE=$VALUE_SIZE CLIENTS=\"$CLIENTS\" WORKLOADS=\"$WORKLOADS\" NOKV_BLOCK_CACHE=\"$NOKV_BLOCK_CACHE\")"
	echo "# settings: $settings"
	echo "# instance: initdb --locale=C --encoding=UTF8, 127.0.0.1:$port; pgbench connects over TCP"
	echo "# data: keys 'k1' .. 'k$KEYS' (text), one fixed $VALUE_SIZE-byte value (hex digits), preloaded in both;"
	echo "#   heap: kv(key text primary key, value text), then VACUUM ANALYZE; nokv: nokv_put, then nokv_flush() and nokv_compact() (reads hit SSTs, not the memtable)"
	echo "# pgbench: -n -M prepared -T $DURATION -c N -j N, \\set id random(1, $KEYS); synchronous_commit per run via PGOPTIONS (nokv.sync_mode=inherit follows it)"
	echo "#   read:   heap SELECT value FROM kv WHERE key = 'k' || :id   nokv SELECT nokv_get('k' || :id)"
	echo "#   upsert: heap INSERT INTO kv (key, value) VALUES ('k' || :id, :val) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
	echo "#           nokv SELECT nokv_put('k' || :id, :val)   (every key exists: all upserts are updates)"
	echo "# order: every combination runs heap then nokv back to back, each run after a CHECKPOINT; a \"before:\" line gives the"
	echo "#   state each run starts from (heap: table and index size, dead tuples; nokv: the memtables a read searches, SST files per level,"
	echo "#   block cache use/capacity and its misses so far); nokv runs also get an \"after:\" line"
	echo "# wal: from pg_stat_wal around each run (whole cluster, background writers included): bytes and full-page images per transaction, WAL syncs"
	echo "# cpu: CPU seconds during each run (the machine has $(nproc) CPUs x $DURATION s): server = the instance's processes, pgbench = the client,"
	echo "#   kernel = kernel threads (children of kthreadd: journal commits, writeback, ...) plus interrupt and softirq time (loopback TCP),"
	echo "#   most of it the instance's own I/O and network, other = the rest of the machine (/proc/stat busy time minus all of those)"
	echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
} | tee "$results"

# ---------- runs ----------

# wal_snapshot: "bytes fpi syncs" of pg_stat_wal
wal_snapshot()
{
	psql_value "SELECT wal_bytes || ' ' || wal_fpi || ' ' || wal_sync FROM pg_stat_wal"
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# proc_ticks PID all|self: utime+stime (all: plus reaped children's)
proc_ticks()
{
	local stat
	local -a f

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	read -r -a f <<<"${stat##*) }"
	# f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17
	if [ "$2" = all ]; then
		echo $((f[11] + f[12] + f[13] + f[14]))
	else
		echo $((f[11] + f[12]))
	fi
}

# cpu_snapshot: "machine-busy server pgbench kernel" in clock ticks; the
# server is the postmaster with its reaped children plus the live children,
# pgbench (run in a command substitution) is in this shell's reaped
# children, kernel is every kernel thread plus interrupt and softirq time
cpu_snapshot()
{
	local pm server pid
	local -a stat

	pm=$(head -n 1 "$pgdata/postmaster.pid")
	server=$(proc_ticks "$pm" all)
	for pid in $(ps -o pid= --ppid "$pm"); do
		server=$((server + $(proc_ticks "$pid" self)))
	done
	read -r -a stat < <(head -n 1 /proc/stat)
	# stat: cpu user nice system idle iowait irq softirq steal
	echo "$((stat[1] + stat[2] + stat[3] + stat[6] + stat[7] + stat[8])) $server $(proc_ticks $$ all)" \
		"$(($(cat /proc/[0-9]*/stat 2>/dev/null |
			awk '{ pid = $1; sub(/^.*\) /, ""); if ($2 == 2 || pid == 2) t += $12 + $13 } END { print t + 0 }') +
			stat[6] + stat[7]))"
}

max_other_share=0

# engine_state ENGINE: one line on what a run starts from (or ends with)
engine_state()
{
	if [ "$1" = nokv ]; then
		psql_value "SELECT 'memtables read=' || count(*) || ' (' || coalesce(sum(entries), 0) || ' entries, ' ||
			round(coalesce(sum(bytes_used), 0) / 1048576.0, 1) || ' MiB) ssts=' ||
			coalesce((SELECT string_agg('L' || level || ':' || files, ',' ORDER BY level)
					  FROM nokv_levels WHERE files > 0), 'none') ||
			' block_cache=' || (SELECT round(value / 1048576) FROM nokv_stats WHERE name = 'cache.block_bytes') ||
			'/' || (SELECT round(value / 1048576) FROM nokv_stats WHERE name = 'cache.block_capacity') || ' MiB' ||
			' block_misses=' || (SELECT value::bigint FROM nokv_stats WHERE name = 'cache.block_misses')
			FROM nokv_memtables WHERE state IN ('active', 'immutable', 'flushing')"
	else
		psql_value "SELECT 'table=' || pg_relation_size('kv') / 1048576 || ' MiB index=' ||
			pg_relation_size('kv_pkey') / 1048576 || ' MiB n_dead_tup=' || n_dead_tup ||
			' autovacuums=' || autovacuum_count FROM pg_stat_user_tables WHERE relname = 'kv'"
	fi
}

# run_pgbench ENGINE WORKLOAD CLIENTS SYNC: sets TPS and CPU_US, appends
# detail lines
run_pgbench()
{
	local engine=$1 workload=$2 clients=$3 sync=$4 out rc txns failed lat before after
	local wal_b0 fpi0 sync0 wal_b1 fpi1 sync1 cpu0 cpu1 busy0 srv0 cli0 kern0 busy1 srv1 cli1 kern1 other share t0 t1

	psql_value 'CHECKPOINT' >/dev/null
	printf '# %s %s -c %d sync=%s: before: %s\n' "$workload" "$engine" "$clients" "$sync" \
		"$(engine_state "$engine")" | tee -a "$results"
	before=$(wal_snapshot)
	cpu0=$(cpu_snapshot)
	t0=$(date +%s%N)
	set +e
	out=$(PGOPTIONS="-c synchronous_commit=$sync" "$PG_BIN/pgbench" -n -M prepared \
		-c "$clients" -j "$clients" -T "$DURATION" -f "$tmp/$engine-$workload.sql" \
		-D val="$value" -h 127.0.0.1 -p "$port" -U postgres bench 2>&1)
	rc=$?
	set -e
	sleep 0.2				# let the backends exit and be reaped
	cpu1=$(cpu_snapshot)
	t1=$(date +%s%N)
	after=$(wal_snapshot)
	if [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" >&2
		die "pgbench failed: $engine $workload -c $clients synchronous_commit=$sync"
	fi
	TPS=$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\) .*without initial connection time.*/\1/p')
	txns=$(printf '%s\n' "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	failed=$(printf '%s\n' "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	lat=$(printf '%s\n' "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
	if [ -z "$TPS" ] || [ -z "$txns" ] || [ "$txns" -eq 0 ]; then
		printf '%s\n' "$out" >&2
		die "could not read pgbench's result: $engine $workload -c $clients synchronous_commit=$sync"
	fi
	if [ -n "$failed" ] && [ "$failed" -ne 0 ]; then
		printf '%s\n' "$out" >&2
		die "$failed failed transactions: $engine $workload -c $clients synchronous_commit=$sync"
	fi
	read -r busy0 srv0 cli0 kern0 <<<"$cpu0"
	read -r busy1 srv1 cli1 kern1 <<<"$cpu1"
	other=$(((busy1 - busy0) - (srv1 - srv0) - (cli1 - cli0) - (kern1 - kern0)))
	[ "$other" -ge 0 ] || other=0
	# share of the machine's CPU time over the run
	share=$((100 * other * 1000000 / (CLK_TCK * ((t1 - t0) / 1000) * $(nproc))))
	[ "$share" -le "$max_other_share" ] || max_other_share=$share
	if [ "$engine" = nokv ]; then
		printf '# %s %s -c %d sync=%s: after: %s\n' "$workload" "$engine" "$clients" "$sync" \
			"$(engine_state "$engine")" | tee -a "$results"
	fi
	# server CPU (backends and background processes) per transaction
	CPU_US=$(awk -v t="$((srv1 - srv0))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	read -r wal_b0 fpi0 sync0 <<<"$before"
	read -r wal_b1 fpi1 sync1 <<<"$after"
	printf '# %s %s -c %d sync=%s: tps=%.1f txns=%d latency_avg=%s ms wal_bytes/txn=%.0f fpi/txn=%.3f wal_syncs=%d cpu server=%s s (%s us/txn) pgbench=%s s kernel=%s s other=%s s\n' \
		"$workload" "$engine" "$clients" "$sync" "$TPS" "$txns" "${lat:-?}" \
		"$(awk -v a="$wal_b0" -v b="$wal_b1" -v n="$txns" 'BEGIN { print (b - a) / n }')" \
		"$(awk -v a="$fpi0" -v b="$fpi1" -v n="$txns" 'BEGIN { print (b - a) / n }')" \
		$((sync1 - sync0)) \
		"$(awk -v t="$((srv1 - srv0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')" "$CPU_US" \
		"$(awk -v t="$((cli1 - cli0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')" \
		"$(awk -v t="$((kern1 - kern0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')" \
		"$(awk -v t="$other" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')" | tee -a "$results"
}

rows=()
for workload in $WORKLOADS; do
	for clients in $CLIENTS; do
		for sync in $SYNC_MODES; do
			run_pgbench heap "$workload" "$clients" "$sync"
			heap_tps=$TPS
			heap_us=$CPU_US
			run_pgbench nokv "$workload" "$clients" "$sync"
			rows+=("$workload $clients $sync $heap_tps $TPS $heap_us $CPU_US")
		done
	done
done

check_data "after the runs"

# ---------- the table ----------

{
	echo "#"
	echo "# TPS = pgbench's tps (without initial connection time); nokv/heap above 1.00: nokv is faster"
	echo "# heap_us, nokv_us = CPU microseconds of the server's processes (backends and background) per transaction"
	printf '%-8s %7s %4s %12s %12s %9s %9s %9s\n' workload clients sync heap_tps nokv_tps nokv/heap heap_us nokv_us
	for row in "${rows[@]}"; do
		read -r w c s h n hu nu <<<"$row"
		printf '%-8s %7d %4s %12.0f %12.0f %9.2f %9.1f %9.1f\n' "$w" "$c" "$s" "$h" "$n" \
			"$(awk -v h="$h" -v n="$n" 'BEGIN { print n / h }')" "$hu" "$nu"
	done
	if [ "$max_other_share" -ge 10 ]; then
		echo "# WARNING: other processes used up to $max_other_share % of the machine's CPU during a run (cpu other="
		echo "#   above): the machine was not idle and the TPS of those runs are disturbed (either way: with one"
		echo "#   client, a busy machine can even raise TPS, see bench/README.md)"
	fi
} | tee -a "$results"

log "results: $results"
