#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# tableam.sh
#	  The nokv table access method against heap, inside one PostgreSQL 15
#	  instance: COPY, single-row INSERT, point and range SELECT, UPDATE,
#	  and the on-disk size of the table with its indexes.
#
# Starts a PostgreSQL instance of its own (initdb into a temporary
# directory, a free port on 127.0.0.1 only, shared_preload_libraries =
# 'nokv', fsync on) and creates two tables with the same schema
#
#	CREATE TABLE t_heap (id bigint PRIMARY KEY, grp int NOT NULL, payload text) USING heap;
#	CREATE TABLE t_nokv (...the same...) USING nokv;
#	CREATE INDEX ON t_<am> (grp);		-- the secondary index
#
# and measures each workload on both tables back to back, ROUNDS times,
# the order alternating (heap first in odd rounds, nokv first in even
# ones); each figure is the median of the rounds, every round's figures
# are listed under it, and beside the ratio of the medians stands the
# median of the rounds' own ratios (each from two runs back to back, so
# that it moves less with the machine's speed than the medians do):
#
#	copy		COPY of ROWS rows from one file generated once (timed;
#				rows per second), each into an empty table (TRUNCATE
#				between rounds, then wait for the engine to be idle and
#				CHECKPOINT); after the last round VACUUM ANALYZE
#	size		heap: pg_total_relation_size; nokv: nokv_table_size after
#				nokv_flush() (and after nokv_compact()) plus pg_indexes_size
#	pgbench runs (-n -M prepared -T DURATION, each after nokv_flush(), the
#	engine idle and a CHECKPOINT):
#	  insert	INSERT INTO t VALUES (nextval(seq), :grp, :payload)
#				clients 1 and 2, synchronous_commit on and off
#	  point		SELECT payload FROM t WHERE id = :id		clients 1 and 2
#	  range		SELECT id, payload FROM t WHERE id BETWEEN :id AND :id + 99
#				(100 rows)									clients 1 and 2
#	  update	UPDATE t SET payload = :payload WHERE id = :id (a non-indexed
#				column)	clients 1 and 2, synchronous_commit on and off
#
# Prints each figure for heap and nokv with the ratio nokv/heap, and
# writes it with the machine, versions and settings to
# bench/results/tableam-<UTC date-time>.txt (not kept if the run fails).
# See bench/README.md, "Table access method against heap".
#
# The extension must be installed (make install) in the PostgreSQL 15 the
# script runs.  Run as root, the script runs itself again as the postgres
# user and copies the results file into bench/results/ afterwards.
#
# Environment:
#	DURATION	seconds per pgbench run (default 5)
#	ROUNDS		rounds of every measurement (default 6)
#	COPY_ROUNDS	rounds of the COPY (default ROUNDS)
#	ROWS		rows loaded by COPY (default 2000000)
#	RUNS		the pgbench runs to make, comma-separated: a workload
#				("range") or one run ("range 2 on"); default all
#	PG_BIN		PostgreSQL binaries (default: PostgreSQL 15's bindir)
#	TMPDIR		where the temporary instance goes (default /tmp)
#
# bench/tableam.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-6}"
COPY_ROUNDS="${COPY_ROUNDS:-$ROUNDS}"
ROWS="${ROWS:-2000000}"
RUNS="${RUNS:-all}"

BENCH_NAME=tableam
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_count DURATION 3600
bench_count ROWS 100000000
bench_count ROUNDS 100
bench_count COPY_ROUNDS 100

bench_rerun_as_postgres DURATION ROUNDS COPY_ROUNDS ROWS RUNS
bench_paths
bench_require initdb pg_ctl postgres psql pgbench pg_config
bench_workspace

# ---------- the instance ----------

tableam_instance

"${PSQL[@]}" <<EOF
CREATE EXTENSION nokv;
CREATE TABLE t_heap (id bigint PRIMARY KEY, grp int NOT NULL, payload text) USING heap;
CREATE INDEX t_heap_grp ON t_heap (grp);
CREATE TABLE t_nokv (id bigint PRIMARY KEY, grp int NOT NULL, payload text) USING nokv;
CREATE INDEX t_nokv_grp ON t_nokv (grp);
CREATE SEQUENCE t_heap_ins START $((ROWS + 1000000));
CREATE SEQUENCE t_nokv_ins START $((ROWS + 1000000));
EOF

# ---------- header ----------

mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
fs=$(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $1 " " $2 }')
settings=$(psql_value "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'wal_sync_method', 'full_page_writes',
	'wal_level', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'nokv.memtable_size',
	'nokv.max_memtables', 'nokv.block_cache_size', 'nokv.sync_mode', 'nokv.compression',
	'nokv.vlog_threshold')")

{
	echo "# nokv table access method vs heap (bench/tableam.sh)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) cpu=\"$cpu_model\" memory=$((mem_kb / 1024)) MiB kernel=$(uname -r)"
	echo "# data directory: $fs"
	echo "# postgresql: $(psql_value 'SELECT version()')"
	echo "# nokv: extension $(psql_value "SELECT extversion FROM pg_extension WHERE extname = 'nokv'"), $nokv_so md5 $nokv_md5"
	echo "# command: $command_line (DURATION=$DURATION ROUNDS=$ROUNDS COPY_ROUNDS=$COPY_ROUNDS ROWS=$ROWS RUNS=$RUNS)"
	echo "# settings: $settings"
	echo "# schema: t_<am> (id bigint PRIMARY KEY, grp int NOT NULL, payload text) + INDEX (grp); grp = id % 1000"
	echo "# payload: 100 bytes, $TABLEAM_PAYLOAD_SQL"
	echo "# pgbench: -n -M prepared -T $DURATION -c N -j N, before each run nokv_flush(), the engine idle and a CHECKPOINT;"
	echo "#   heap and nokv back to back;"
	echo "#   synchronous_commit per run via PGOPTIONS (nokv.sync_mode follows it)"
	echo "# rounds: $ROUNDS of every figure ($COPY_ROUNDS of COPY), heap first in odd rounds and nokv first in even ones;"
	echo "#   a figure is the median of its rounds (each round's on the '#' line under it);"
	echo "#   nokv/heap is the ratio of the medians, per-round the median of the rounds' own ratios"
	echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
	echo "#"
} | tee "$results"

# figure NAME UNIT HEAP NOKV [PER_ROUND]
figure()
{
	local ratio per_round=-
	ratio=$(awk -v h="$3" -v n="$4" 'BEGIN { if (h > 0) printf "%.2f", n / h; else print "-" }')
	[ -n "${5:-}" ] && per_round=$(awk -v r="$5" 'BEGIN { printf "%.2f", r }')
	printf '%-34s %-8s %14s %14s %9s %9s\n' "$1" "$2" "$3" "$4" "$ratio" "$per_round" | tee -a "$results"
}

printf '%-34s %-8s %14s %14s %9s %9s\n' "figure" "unit" "heap" "nokv" "nokv/heap" "per-round" | tee -a "$results"

# median of the arguments (numbers); of an even count, the mean of the
# middle two, rounded to a whole number if the arguments are whole numbers
median()
{
	printf '%s\n' "$@" | sort -g |
		awk '{ v[NR] = $1; if ($1 ~ /\./) frac = 1 } END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf (frac ? "%.10g\n" : "%.0f\n"), m
		}'
}

# round_ratios "HEAP ..." "NOKV ...": each round's nokv/heap
round_ratios()
{
	awk -v h="$1" -v n="$2" 'BEGIN {
		c = split(h, hv, " "); split(n, nv, " ")
		for (i = 1; i <= c; i++) printf "%s%.2f", (i > 1 ? " " : ""), (hv[i] > 0 ? nv[i] / hv[i] : 0)
	}'
}

# rounds_line "HEAP ..." "NOKV ...": the per-round figures, under a figure
rounds_line()
{
	echo "#   rounds: heap $1, nokv $2; nokv/heap $(round_ratios "$1" "$2")" | tee -a "$results"
}

# the engine has no flush or compaction running or due
engine_idle()
{
	local busy
	for _ in $(seq 600); do
		busy=$(psql_value "SELECT count(*) FROM nokv_stats WHERE
			(name IN ('flush.pending', 'flush.active', 'compaction.active') AND value::numeric > 0) OR
			(name = 'compaction.max_score' AND value::numeric >= 1)")
		[ "$busy" = 0 ] && return 0
		sleep 0.1
	done
	die "the engine did not become idle within a minute"
}

# ---------- COPY ----------

declare -A copy_secs copy_rate
for r in $(seq "$COPY_ROUNDS"); do
	order="heap nokv"
	[ $((r % 2)) = 0 ] && order="nokv heap"
	for am in $order; do
		if [ "$r" -gt 1 ]; then
			"${PSQL[@]}" -c "TRUNCATE t_$am"
			psql_value 'SELECT nokv_flush()' >/dev/null
		fi
		engine_idle
		"${PSQL[@]}" -c CHECKPOINT
		log "COPY $ROWS rows into t_$am (round $r)"
		t0=$(date +%s.%N)
		"${PSQL[@]}" -c "COPY t_$am FROM '$tmp/rows.copy'"
		t1=$(date +%s.%N)
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		log "COPY into t_$am: $secs s"
		copy_secs[$am]="${copy_secs[$am]:-} $secs"
		copy_rate[$am]="${copy_rate[$am]:-} $(awk -v r="$ROWS" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')"
	done
done
# shellcheck disable=SC2086
{
	figure "COPY $ROWS rows" "rows/s" "$(median ${copy_rate[heap]})" "$(median ${copy_rate[nokv]})" \
		"$(median $(round_ratios "${copy_rate[heap]# }" "${copy_rate[nokv]# }"))"
	rounds_line "${copy_rate[heap]# }" "${copy_rate[nokv]# }"
	figure "COPY $ROWS rows (elapsed)" "s" "$(median ${copy_secs[heap]})" "$(median ${copy_secs[nokv]})" \
		"$(median $(round_ratios "${copy_secs[heap]# }" "${copy_secs[nokv]# }"))"
}
for am in heap nokv; do
	"${PSQL[@]}" -c "VACUUM ANALYZE t_$am"
done
"${PSQL[@]}" -c CHECKPOINT

# ---------- sizes ----------

[ "$(psql_value 'SELECT count(*) FROM t_nokv')" = "$ROWS" ] || die "t_nokv does not have $ROWS rows after COPY"
[ "$(psql_value 'SELECT count(*) FROM t_heap')" = "$ROWS" ] || die "t_heap does not have $ROWS rows after COPY"
psql_value 'SELECT nokv_flush()' >/dev/null
heap_table=$(psql_value "SELECT pg_relation_size('t_heap')")
heap_idx=$(psql_value "SELECT pg_indexes_size('t_heap')")
nokv_table=$(psql_value "SELECT nokv_table_size('t_nokv')")
nokv_idx=$(psql_value "SELECT pg_indexes_size('t_nokv')")
psql_value 'SELECT nokv_compact()' >/dev/null
nokv_table_c=$(psql_value "SELECT nokv_table_size('t_nokv')")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
figure "table size after COPY (flushed)" "MiB" "$(mib "$heap_table")" "$(mib "$nokv_table")"
figure "table size after nokv_compact()" "MiB" "$(mib "$heap_table")" "$(mib "$nokv_table_c")"
figure "indexes size" "MiB" "$(mib "$heap_idx")" "$(mib "$nokv_idx")"
figure "table + indexes (flushed)" "MiB" "$(mib $((heap_table + heap_idx)))" "$(mib $((nokv_table + nokv_idx)))"
figure "table + indexes (compacted)" "MiB" "$(mib $((heap_table + heap_idx)))" "$(mib $((nokv_table_c + nokv_idx)))"

# ---------- pgbench runs ----------

tableam_scripts

# run AM WORKLOAD CLIENTS SYNC: prints the TPS
run()
{
	local out tps
	# each run starts with no write work left over from the one before:
	# heap's dirty pages written (CHECKPOINT), nokv's memtable flushed
	psql_value 'SELECT nokv_flush()' >/dev/null
	engine_idle
	"${PSQL[@]}" -c CHECKPOINT
	out=$(PGOPTIONS="-c synchronous_commit=$4" "$PG_BIN/pgbench" -n -M prepared -T "$DURATION" \
		-c "$3" -j "$3" -h 127.0.0.1 -p "$port" -U postgres -f "$tmp/$1-$2.sql" bench 2>&1) ||
		{ echo "$out" >&2; die "pgbench $1 $2 -c $3 failed"; }
	tps=$(echo "$out" | awk '/^tps = / { printf "%.0f", $3 }')
	failed=$(echo "$out" | awk '/number of failed transactions/ { print $5 }')
	[ "${failed:-0}" = 0 ] || die "pgbench $1 $2: $failed failed transactions"
	echo "   $1 $2 -c $3 sync=$4: $tps tps" >>"$tmp/runs.log"
	echo "$tps"
}

for spec in "insert 1 on" "insert 2 on" "insert 1 off" "insert 2 off" \
	"point 1 on" "point 2 on" "range 1 on" "range 2 on" \
	"update 1 on" "update 2 on" "update 1 off" "update 2 off"; do
	read -r w c s <<<"$spec"
	case ",$RUNS," in ",all,"|*",$w $c $s,"*|*",$w,"*) ;; *) continue ;; esac
	log "$w, $c client(s), synchronous_commit=$s"
	hs=""
	ns=""
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			hs="$hs $(run heap "$w" "$c" "$s")"
			ns="$ns $(run nokv "$w" "$c" "$s")"
		else
			ns="$ns $(run nokv "$w" "$c" "$s")"
			hs="$hs $(run heap "$w" "$c" "$s")"
		fi
	done
	# shellcheck disable=SC2086
	figure "$w -c $c sync=$s" "tps" "$(median $hs)" "$(median $ns)" \
		"$(median $(round_ratios "${hs# }" "${ns# }"))"
	rounds_line "${hs# }" "${ns# }"
done

# ---------- the end state ----------

heap_rows=$(psql_value "SELECT count(*) || ' ' || sum(id) FROM t_heap")
nokv_rows=$(psql_value "SELECT count(*) || ' ' || sum(id) FROM t_nokv")
psql_value 'SELECT nokv_flush()' >/dev/null
{
	echo "#"
	echo "# end state: heap rows/sum(id) $heap_rows, nokv $nokv_rows (inserted rows differ with the TPS)"
	echo "# end sizes: heap table $(mib "$(psql_value "SELECT pg_relation_size('t_heap')")") MiB + indexes $(mib "$(psql_value "SELECT pg_indexes_size('t_heap')")") MiB;" \
		"nokv table $(mib "$(psql_value "SELECT nokv_table_size('t_nokv')")") MiB (flushed, not compacted) + indexes $(mib "$(psql_value "SELECT pg_indexes_size('t_nokv')")") MiB"
} | tee -a "$results"
log "results: $results"
