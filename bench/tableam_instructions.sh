#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# tableam_instructions.sh
#	  The nokv table access method against heap, counted in instructions:
#	  what a row of COPY and a transaction of INSERT, point SELECT, range
#	  SELECT and UPDATE cost the backend that runs them, under callgrind.
#
# bench/tableam.sh measures time, and on a small shared machine two runs of
# the same code differ by more than the difference between the two access
# methods on COPY and INSERT.  Instructions do not depend on the neighbours:
# counted twice, the same workloads give the same figures to within 0.3 %
# (the random keys differ), so this script says which access method
# executes more code, and where (the functions that differ most are listed
# under each figure).  It does not see what instructions
# cannot: cache misses, waits for locks or I/O, the kernel's work in system
# calls and page faults, and the background workers' work (nokv's flush and
# compaction, heap's checkpoints); tableam.sh is the measure of speed.
#
# Starts a PostgreSQL instance of its own (as tableam.sh: initdb into a
# temporary directory, a free port on 127.0.0.1 only,
# shared_preload_libraries = 'nokv'), loads the same schema into t_heap and
# t_nokv, then runs the postmaster under callgrind (every process traced,
# counting only inside the functions named below):
#
#	copy	DoCopy: COPY of ROWS rows into an empty t_<am> with its two
#			indexes; instructions per row
#	insert	PortalRun and the transaction's start and commit: TXNS
#			single-row INSERTs (pgbench -M prepared, one client, the
#			statement of tableam.sh); instructions per transaction
#	point	the same: TXNS SELECT payload FROM t WHERE id = :id
#	range	the same: TXNS/10 SELECT id, payload FROM t WHERE id BETWEEN :id
#			AND :id + 99 (100 rows)
#	update	the same: TXNS UPDATE t SET payload = :payload WHERE id = :id
#
# Before point and range, one index scan reads every row of both tables so
# that each is in its cache (shared_buffers for heap, nokv's block cache),
# and nokv's rows are flushed and compacted (as after a load and VACUUM).
# Parsing, planning (done at bind) and connection set-up are outside the
# counted functions, and the same for both.
#
# Prints each figure for heap and nokv with the ratio nokv/heap, and
# writes them with the machine, versions and settings to
# bench/results/tableam_instructions-<UTC date-time>.txt.  See
# bench/README.md, "Table access method against heap, in instructions".
#
# Needs valgrind (Debian package valgrind) and the installed extension
# (make install).  Run as root, the script runs itself again as the
# postgres user and copies the results file into bench/results/ afterwards.
#
# Environment:
#	ROWS		rows loaded by COPY (default 200000)
#	TXNS		transactions of insert, point and update (default 20000;
#				range runs TXNS/10)
#	PG_BIN		PostgreSQL binaries (default: PostgreSQL 15's bindir)
#	TMPDIR		where the temporary instance goes (default /tmp)
#
# bench/tableam_instructions.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

ROWS="${ROWS:-200000}"
TXNS="${TXNS:-20000}"

BENCH_NAME=tableam_instructions
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_count ROWS 100000000
bench_count TXNS 10000000
[ "$TXNS" -ge 10 ] || die "TXNS must be at least 10"

bench_rerun_as_postgres ROWS TXNS
bench_paths
bench_require initdb pg_ctl postgres psql pgbench pg_config
if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
	die "valgrind is not installed (Debian: apt-get install valgrind)"
fi
bench_workspace

cgdir="$tmp/callgrind"
mkdir "$cgdir"

# ---------- the instance ----------

# With ROWS at its default, both tables and their indexes fit their caches:
# the counts are of cached reads, as in tableam.sh's point and range runs.
tableam_instance

"${PSQL[@]}" <<EOF
CREATE EXTENSION nokv;
CREATE SEQUENCE t_heap_ins START $((ROWS + 1000000));
CREATE SEQUENCE t_nokv_ins START $((ROWS + 1000000));
EOF
"$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
started=false

tableam_scripts

# start the postmaster under callgrind, counting inside the functions given
cg_start()
{
	local toggles=() f

	for f in "$@"; do
		toggles+=("--toggle-collect=$f")
	done
	port=$(free_port)
	log "PostgreSQL under callgrind (counting in: $*) on 127.0.0.1:$port"
	valgrind --tool=callgrind --trace-children=yes --vgdb=no "${toggles[@]}" \
		--callgrind-out-file="$cgdir/%p.out" \
		"$PG_BIN/postgres" -D "$pgdata" -p "$port" >>"$server_log" 2>&1 &
	started=true
	PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d bench)
	for _ in $(seq 300); do
		"${PSQL[@]}" -c 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "the server did not start under valgrind"
}

cg_stop()
{
	"$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 300 stop >/dev/null
	started=false
}

# wait until backend PID has exited and its profile is written
cg_wait_profile()
{
	for _ in $(seq 1200); do
		if ! kill -0 "$1" 2>/dev/null && [ -s "$cgdir/$1.out" ]; then
			return 0
		fi
		sleep 0.25
	done
	die "no profile of backend $1"
}

# the total instructions of a profile
cg_total()
{
	callgrind_annotate --auto=no "$1" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

# per-symbol instructions of a profile, "symbol count" per line
cg_symbols()
{
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
		awk '/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ {
			c = $1; gsub(",", "", c)
			s = $0; sub(/^ *[0-9,]+ \([^)]*\) +/, "", s); sub(/ \[.*$/, "", s)
			n = split(s, part, ":"); s = part[n]
			if (s ~ /^0x/) s = "(unnamed)"
			sum[s] += c
		}
		END { for (s in sum) print s, sum[s] }'
}

# figure NAME UNIT HEAP NOKV
figure()
{
	local ratio
	ratio=$(awk -v h="$3" -v n="$4" 'BEGIN { if (h > 0) printf "%.3f", n / h; else print "-" }')
	printf '%-34s %-20s %12s %12s %9s\n' "$1" "$2" "$3" "$4" "$ratio" | tee -a "$results"
}

# the functions whose counts differ most between heap's and nokv's profiles
differences()
{
	local heap=$1 nokv=$2 units=$3

	LC_ALL=C join -a1 -a2 -e 0 -o 0,1.2,2.2 <(cg_symbols "$heap" | LC_ALL=C sort) \
		<(cg_symbols "$nokv" | LC_ALL=C sort) |
		awk -v u="$units" '{ d = ($3 - $2) / u; if (d >= 20 || d <= -20) printf "%.0f %s\n", d, $1 }' |
		sort -g >"$tmp/diff"
	{
		printf '#   more in nokv:'
		sort -gr "$tmp/diff" | head -n 8 | awk '$1 > 0 { printf " %s %+d;", $2, $1 }'
		echo
		printf '#   more in heap:'
		head -n 8 "$tmp/diff" | awk '$1 < 0 { printf " %s %+d;", $2, $1 }'
		echo
	} | tee -a "$results"
}

# ---------- header ----------

cg_start DoCopy
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
{
	echo "# nokv table access method vs heap, in instructions (bench/tableam_instructions.sh)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) cpu=\"$cpu_model\" kernel=$(uname -r)"
	echo "# postgresql: $(psql_value 'SELECT version()')"
	echo "# nokv: extension $(psql_value "SELECT extversion FROM pg_extension WHERE extname = 'nokv'"), $nokv_so md5 $nokv_md5"
	echo "# valgrind: $(valgrind --version)"
	echo "# command: $command_line (ROWS=$ROWS TXNS=$TXNS)"
	echo "# counted: user-space instructions of the backend running the workload (callgrind Ir),"
	echo "#   inside DoCopy for COPY, inside PortalRun and the transaction's start and commit otherwise"
	echo "# schema: t_<am> (id bigint PRIMARY KEY, grp int NOT NULL, payload text) + INDEX (grp); grp = id % 1000"
	echo "# payload: 100 bytes, $TABLEAM_PAYLOAD_SQL"
	echo "#"
} | tee "$results"
printf '%-34s %-20s %12s %12s %9s\n' "figure" "unit" "heap" "nokv" "nokv/heap" | tee -a "$results"

# ---------- COPY ----------

declare -A profile
for am in heap nokv; do
	"${PSQL[@]}" <<EOF
CREATE TABLE t_$am (id bigint PRIMARY KEY, grp int NOT NULL, payload text) USING $am;
CREATE INDEX t_${am}_grp ON t_$am (grp);
CHECKPOINT;
EOF
	log "COPY $ROWS rows into t_$am"
	pid=$("${PSQL[@]}" -At -c 'SELECT pg_backend_pid()' -c "COPY t_$am FROM '$tmp/rows.copy'" | head -n 1)
	cg_wait_profile "$pid"
	profile[$am]="$cgdir/$pid.out"
done
figure "COPY" "instructions/row" \
	$(($(cg_total "${profile[heap]}") / ROWS)) $(($(cg_total "${profile[nokv]}") / ROWS))
differences "${profile[heap]}" "${profile[nokv]}" "$ROWS"
cg_stop

# ---------- pgbench workloads ----------

cg_start PortalRun StartTransactionCommand CommitTransactionCommand
log "VACUUM ANALYZE, nokv_flush() and nokv_compact()"
"${PSQL[@]}" -c 'VACUUM ANALYZE t_heap' -c 'VACUUM ANALYZE t_nokv'
psql_value 'SELECT nokv_flush()' >/dev/null
psql_value 'SELECT nokv_compact()' >/dev/null

# run AM WORKLOAD N: the profile of N transactions of one pgbench client
run()
{
	local bench_pid pid=""

	"$PG_BIN/pgbench" -n -M prepared -t "$3" -c 1 -h 127.0.0.1 -p "$port" -U postgres \
		-f "$tmp/$1-$2.sql" bench >"$tmp/pgbench.out" 2>&1 &
	bench_pid=$!
	# its backend: pgbench connects as application "pgbench"
	while [ -z "$pid" ] && kill -0 "$bench_pid" 2>/dev/null; do
		pid=$(psql_value "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'")
		[ -n "$pid" ] || sleep 0.2
	done
	wait "$bench_pid" || { cat "$tmp/pgbench.out" >&2; die "pgbench $1 $2 failed"; }
	[ -n "$pid" ] || die "pgbench $1 $2 ended before its backend was seen"
	cg_wait_profile "$pid"
	echo "$cgdir/$pid.out"
}

for spec in "insert $TXNS" "point $TXNS" "range $((TXNS / 10))" "update $TXNS"; do
	read -r w n <<<"$spec"
	if [ "$w" = point ]; then
		log "reading every row of both tables through their primary keys"
		"${PSQL[@]}" -c 'SET enable_seqscan = off' -c 'SET enable_bitmapscan = off' \
			-c "SELECT sum(length(payload)) FROM t_heap WHERE id BETWEEN 1 AND $ROWS" \
			-c "SELECT sum(length(payload)) FROM t_nokv WHERE id BETWEEN 1 AND $ROWS" >/dev/null
	fi
	log "$w: $n transactions on t_heap, then on t_nokv"
	profile[heap]=$(run heap "$w" "$n")
	profile[nokv]=$(run nokv "$w" "$n")
	figure "$w" "instructions/txn" \
		$(($(cg_total "${profile[heap]}") / n)) $(($(cg_total "${profile[nokv]}") / n))
	differences "${profile[heap]}" "${profile[nokv]}" "$n"
done
cg_stop

log "results: $results"
