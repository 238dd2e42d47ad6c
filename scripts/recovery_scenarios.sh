#!/usr/bin/env bash
#
# scripts/recovery_scenarios.sh [scenario...]
#
# Runs nokv's crash-recovery matrix (the TAP tests t/001..t/010, see
# docs/recovery.md) against the installed PostgreSQL 15 and nokv extension
# and prints one line per scenario:
#
#	PASS|FAIL|SKIP  <scenario>  <what it proves>  (<seconds> s)
#
# with the failed assertions under a FAIL line, then a summary.  Exits 1 if
# any scenario failed, 2 if the environment is unusable.  SKIP means the
# test skipped itself (for example no nokv CLI for cli-matches-views).
#
# Scenarios may be named (crash-backend, kill-workers, ...) to run a subset.
#
# PostgreSQL refuses to run as root.  Run as root, the script copies the tree
# to a fresh directory under /tmp, gives it to the user postgres and runs
# itself there; run as another user it works in place (tmp_check/ in the
# tree, or in $TESTDIR).  Per-scenario output: tmp_check/scenarios/*.out;
# server logs: tmp_check/log/.
#
# Environment: PG_CONFIG, TESTDIR, PG_TEST_NOCLEAN, PG_TEST_TIMEOUT_DEFAULT,
# NOKV_TAP_USER (as for scripts/tap.sh).

set -uo pipefail

NOKV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
	user=${NOKV_TAP_USER:-postgres}
	copy=$(mktemp -d /tmp/nokv-recovery.XXXXXX)
	cp -a "$NOKV_ROOT/." "$copy/"
	rm -rf "$copy/tmp_check"
	chown -R "$user" "$copy"
	echo "==> running as $user in $copy"
	args=""
	if [ $# -gt 0 ]; then
		args=$(printf ' %q' "$@")
	fi
	envs=""
	for v in PG_CONFIG PG_TEST_NOCLEAN PG_TEST_TIMEOUT_DEFAULT; do
		if [ -n "${!v:-}" ]; then
			envs+=" $v=$(printf '%q' "${!v}")"
		fi
	done
	exec su "$user" -s /bin/bash -c "cd $(printf '%q' "$copy") &&${envs:+ env$envs} bash scripts/recovery_scenarios.sh$args"
fi

# scenario name | test file | what it proves
SCENARIOS=(
	"crash-backend|t/001_crash_backend.pl|kill -9 of a writing backend: committed data back exactly, an open transaction's writes gone, all three workers back"
	"kill-workers|t/002_kill_workers.pl|kill -9 of the flush, compaction and vlog GC workers (and of a backend inside nokv_compact/nokv_vlog_gc) under load: every committed key reads back exactly"
	"immediate-stop|t/003_immediate_stop.pl|immediate stop: synchronous commits never lost; asynchronous ones lost only together with their heap rows"
	"flush-then-crash|t/004_flush_then_crash.pl|data split between SSTs and WAL survives crashes with and without a checkpoint, a clean restart, and a crash right after a crash restart"
	"crash-in-recovery|t/005_crash_in_recovery.pl|kill -9 of the startup process / immediate stop while the engine re-applies WAL with inline flushes; re-apply speed"
	"xid-reuse|t/006_xid_reuse.pl|a crashed transaction's xid is never handed out again while its versions survive; its keys stay invisible"
	"one-fsync|t/007_one_fsync.pl|a commit that wrote nokv data costs one WAL flush, like a heap commit"
	"standby-and-backup|t/008_standby_and_backup.pl|a standby refuses nokv with 0A000; a base backup started as primary refuses, naming the missing slot \"nokv\"; the primary is unaffected"
	"no-preload|t/009_no_preload.pl|no shared_preload_libraries, wal_level=minimal or no replication slot: refused with a clear message"
	"cli-matches-views|t/010_cli_matches_views.pl|the nokv CLI on the stopped (or crashed) data directory shows what the views showed"
)

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
bindir=$("$PG_CONFIG" --bindir) || { echo "error: $PG_CONFIG does not work" >&2; exit 2; }
pgxs=$("$PG_CONFIG" --pgxs)
pgxssrc=$(dirname "$(dirname "$pgxs")")
perldir="$pgxssrc/test/perl"
regress="$pgxssrc/test/regress/pg_regress"
[ -d "$perldir/PostgreSQL/Test" ] || { echo "error: no PostgreSQL::Test modules in $perldir" >&2; exit 2; }
[ -x "$regress" ] || { echo "error: pg_regress not found at $regress" >&2; exit 2; }
perl -MIPC::Run -e 1 2>/dev/null || { echo "error: the Perl module IPC::Run is missing" >&2; exit 2; }

export PATH="$bindir:$PATH"
export PG_REGRESS="$regress"
export TESTDIR=${TESTDIR:-$NOKV_ROOT}
[ -w "$TESTDIR" ] || { echo "error: $TESTDIR is not writable by $(id -un); set TESTDIR" >&2; exit 2; }


selected()
{
	local name=$1 want
	[ $# -eq 1 ] && [ ${#WANT[@]} -eq 0 ] && return 0
	for want in "${WANT[@]}"; do
		[ "$want" = "$name" ] && return 0
	done
	return 1
}
WANT=("$@")
for want in "${WANT[@]}"; do
	known=0
	for entry in "${SCENARIOS[@]}"; do
		[ "${entry%%|*}" = "$want" ] && known=1
	done
	if [ $known -eq 0 ]; then
		echo "error: unknown scenario \"$want\"; known: $(printf '%s ' "${SCENARIOS[@]%%|*}")" >&2
		exit 2
	fi
done

cd "$NOKV_ROOT"
rm -rf "$TESTDIR/tmp_check"
outdir="$TESTDIR/tmp_check/scenarios"
mkdir -p "$outdir"

passed=0
failed=0
skipped=0
total_start=$(date +%s.%N)
for entry in "${SCENARIOS[@]}"; do
	IFS='|' read -r name file proves <<<"$entry"
	selected "$name" || continue
	out="$outdir/$name.out"
	start=$(date +%s.%N)
	if [ ! -f "$file" ]; then
		echo "missing test file $file" >"$out"
		rc=1
	else
		prove -v -I "$perldir" -I "$NOKV_ROOT/t" "$file" >"$out" 2>&1
		rc=$?
	fi
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 0 ] && grep -q '^1\.\.0 # SKIP' "$out"; then
		status=SKIP
		skipped=$((skipped + 1))
		proves="$proves [skipped: $(sed -n 's/^1\.\.0 # SKIP //p' "$out" | head -1)]"
	elif [ $rc -eq 0 ]; then
		status=PASS
		passed=$((passed + 1))
	else
		status=FAIL
		failed=$((failed + 1))
	fi
	printf '%s  %s  %s  (%s s)\n' "$status" "$name" "$proves" "$secs"
	if [ "$status" = FAIL ]; then
		grep -E '^not ok' "$out" | head -5 | sed 's/^/        /'
		grep -E '^(Bailout|FAILED--|Dubious)' "$out" | head -2 | sed 's/^/        /'
		echo "        output: $out"
	fi
done
total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

echo
echo "recovery scenarios: $passed passed, $failed failed, $skipped skipped in ${total} s (logs: $TESTDIR/tmp_check)"
[ $failed -eq 0 ]
