#!/usr/bin/env bash
#
# scripts/test.sh
#
# Installs what the tests need, builds, runs every test layer and exits
# non-zero on any failure.  Works as root on a fresh Debian bookworm machine
# (CI=true, no stdin) and as an ordinary user on a prepared one.
#
# Layers, in order (each prints its own output; a layer whose inputs do not
# exist yet is reported as skipped):
#
#	engine unit tests		make -f mk/engine.mk tests check (release, prove)
#	engine ASan/UBSan		make -f mk/engine.mk asan-check
#	engine fuzzing			make -f mk/engine.mk fuzz (FUZZ_SECONDS per target)
#	engine demo				build/release/nokv-demo in a scratch directory
#	extension pg_regress	make && make install, then make installcheck as an
#							unprivileged user (postgres when run as root)
#
# Environment:
#	FUZZ_SECONDS		seconds per fuzz target (default 10)
#	JOBS				parallel make jobs (default: number of CPUs)
#	PG_CONFIG			pg_config to build against (default: PostgreSQL 15's)
#	NOKV_SKIP_INSTALL=1	do not install packages
#	NOKV_REQUIRE_TESTS=1	no engine unit tests is a failure, not a skip
#
# The last line printed is "N passed, N failed" (test layers).

set -euo pipefail

NOKV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$NOKV_ROOT"
# shellcheck source=scripts/common.sh
. scripts/common.sh

export FUZZ_SECONDS=${FUZZ_SECONDS:-10}
JOBS=${JOBS:-$(nokv_jobs)}
PG_CONFIG=$(nokv_pg_config)
export PG_CONFIG

ENGINE_MAKE=(make --no-print-directory -f mk/engine.mk)

# exit status a layer uses to say "nothing to test yet"
SKIP=77

LAYER_NAMES=()
LAYER_STATUS=()
LAYER_SECONDS=()
PASSED=0
FAILED=0
SKIPPED=0

have_files()
{
	compgen -G "$1" >/dev/null
}

banner()
{
	printf '\n'
	printf '=%.0s' {1..72}
	printf '\n=== %s\n' "$*"
	printf '=%.0s' {1..72}
	printf '\n'
}

# run_layer NAME FUNCTION: run FUNCTION in a subshell with "set -e" in
# force, record passed / failed / skipped
run_layer()
{
	local name=$1 fn=$2 rc start status

	banner "$name"
	start=$SECONDS
	set +e
	( set -e; "$fn" )
	rc=$?
	set -e
	case $rc in
		0) status=passed; PASSED=$((PASSED + 1)) ;;
		"$SKIP") status=skipped; SKIPPED=$((SKIPPED + 1)) ;;
		*) status=FAILED; FAILED=$((FAILED + 1)) ;;
	esac
	LAYER_NAMES+=("$name")
	LAYER_STATUS+=("$status")
	LAYER_SECONDS+=($((SECONDS - start)))
	printf '=== %s: %s (%ds, exit %d)\n' "$name" "$status" $((SECONDS - start)) "$rc"
}

# ---------- layers ----------

# engine unit tests: test/engine/test_*.c, one TAP program each
engine_tests_common()
{
	local variant=$1 lib tests check

	case $variant in
		release) lib=lib; tests=tests; check=check ;;
		asan) lib=asan-lib; tests=asan-tests; check=asan-check ;;
	esac
	if ! have_files 'test/engine/test_*.c'; then
		if have_files 'src/engine/*.c'; then
			# no tests yet, but the engine must at least compile
			"${ENGINE_MAKE[@]}" -j"$JOBS" "$lib"
		fi
		if [ "${NOKV_REQUIRE_TESTS:-0}" = 1 ]; then
			echo "FAILED: no engine unit tests (test/engine/test_*.c) and NOKV_REQUIRE_TESTS=1"
			exit 1
		fi
		echo "skipped: no engine unit tests (test/engine/test_*.c) yet"
		exit "$SKIP"
	fi
	"${ENGINE_MAKE[@]}" -j"$JOBS" "$tests"
	"${ENGINE_MAKE[@]}" "$check"
}

layer_engine_release()
{
	engine_tests_common release
}

layer_engine_asan()
{
	engine_tests_common asan
}

layer_fuzz()
{
	if ! have_files 'test/fuzz/fuzz_*.c'; then
		echo "skipped: no fuzz targets (test/fuzz/fuzz_*.c) yet"
		exit "$SKIP"
	fi
	command -v clang >/dev/null || { echo "clang is not installed"; exit 1; }
	"${ENGINE_MAKE[@]}" -j"$JOBS" fuzz-build
	"${ENGINE_MAKE[@]}" fuzz FUZZ_SECONDS="$FUZZ_SECONDS"
}

layer_demo()
{
	local dir

	if ! have_files 'src/engine/*.c'; then
		echo "skipped: no engine sources (src/engine/*.c) yet"
		exit "$SKIP"
	fi
	"${ENGINE_MAKE[@]}" -j"$JOBS" lib
	if ! nokv_engine_defines nokv_open; then
		echo "skipped: the engine library does not define nokv_open yet"
		exit "$SKIP"
	fi
	"${ENGINE_MAKE[@]}" -j"$JOBS" demo
	dir=$(mktemp -d "${TMPDIR:-/tmp}/nokv-demo.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$dir'" EXIT
	timeout 600 build/release/nokv-demo "$dir/data" </dev/null
}

layer_cli()
{
	"${ENGINE_MAKE[@]}" -j"$JOBS" lib cli
	bash test/cli/test_cli.sh build/release </dev/null
}

# a copy of the tree the postgres user can enter and write (PostgreSQL
# refuses to run as root, and the CI clone may sit where postgres cannot go)
pg_tree_copy()
{
	local dir

	dir=$(mktemp -d /tmp/nokv-pgtree.XXXXXX)
	tar -C "$NOKV_ROOT" \
		--exclude=./.git --exclude=./build --exclude='./tmp_check*' \
		--exclude=./results --exclude=./log --exclude=./output_iso \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		-cf - . | tar -C "$dir" -xf -
	chown -R postgres: "$dir"
	echo "$dir"
}

layer_tap()
{
	local dir

	if ! have_files 't/*.pl'; then
		echo "skipped: no TAP tests (t/*.pl) yet"
		exit "$SKIP"
	fi
	# the pg_regress layer installed the extension
	if nokv_is_root; then
		id postgres >/dev/null 2>&1 || { echo "no postgres user to run the tests as"; exit 1; }
		dir=$(pg_tree_copy)
		# shellcheck disable=SC2064
		trap "rm -rf '$dir'" EXIT
		nokv_log "running TAP tests as postgres in $dir"
		if ! su postgres -s /bin/bash -c "cd '$dir' && bash scripts/tap.sh" </dev/null; then
			rm -rf "$NOKV_ROOT/build/tap"
			mkdir -p "$NOKV_ROOT/build/tap"
			cp -R "$dir"/tmp_check "$NOKV_ROOT/build/tap/" 2>/dev/null || true
			echo "TAP logs copied to build/tap/"
			exit 1
		fi
	else
		bash scripts/tap.sh </dev/null
	fi
}

layer_pg_regress()
{
	local dir
	local -a installcheck

	nokv_log "building the extension with $PG_CONFIG"
	make --no-print-directory -j"$JOBS" PG_CONFIG="$PG_CONFIG"
	nokv_log "installing the extension"
	if ! make --no-print-directory install PG_CONFIG="$PG_CONFIG"; then
		echo "make install failed: run as root, or point PG_CONFIG at a PostgreSQL 15 installation you can write to"
		exit 1
	fi

	if nokv_is_root; then
		# PostgreSQL refuses to run as root: run pg_regress as postgres on a
		# copy of the tree that the postgres user can enter and write
		id postgres >/dev/null 2>&1 || { echo "no postgres user to run the tests as"; exit 1; }
		dir=$(pg_tree_copy)
		# shellcheck disable=SC2064
		trap "rm -rf '$dir'" EXIT
		nokv_log "running pg_regress and isolation specs as postgres in $dir"
		installcheck=(su postgres -s /bin/bash -c
			"cd '$dir' && make --no-print-directory installcheck PG_CONFIG='$PG_CONFIG'")
	else
		dir=$NOKV_ROOT
		nokv_log "running pg_regress in place"
		installcheck=(make --no-print-directory installcheck PG_CONFIG="$PG_CONFIG")
	fi

	if ! "${installcheck[@]}" </dev/null; then
		for d in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
			if [ -f "$d" ]; then
				echo "---------- $d ----------"
				cat "$d"
			fi
		done
		# keep the evidence once the scratch copy is removed
		if [ "$dir" != "$NOKV_ROOT" ]; then
			rm -rf "$NOKV_ROOT/build/pg_regress"
			mkdir -p "$NOKV_ROOT/build/pg_regress"
			cp -R "$dir"/regression.* "$dir"/results "$dir"/log "$dir"/output_iso \
				"$NOKV_ROOT/build/pg_regress/" 2>/dev/null || true
			echo "results and server logs copied to build/pg_regress/"
		fi
		exit 1
	fi
}

# ---------- main ----------

start_all=$SECONDS
nokv_log "nokv test run in $NOKV_ROOT (jobs: $JOBS, fuzz: ${FUZZ_SECONDS}s per target, CI=${CI:-})"

if [ "${NOKV_SKIP_INSTALL:-0}" != 1 ]; then
	banner "setup: packages"
	if ! nokv_ensure_packages; then
		# counted as a failed layer so the summary cannot look green
		LAYER_NAMES+=("setup (packages)")
		LAYER_STATUS+=("FAILED")
		LAYER_SECONDS+=(0)
		FAILED=$((FAILED + 1))
	fi
fi

run_layer "engine unit tests (release)" layer_engine_release
run_layer "engine unit tests (ASan+UBSan)" layer_engine_asan
run_layer "engine fuzzing (libFuzzer)" layer_fuzz
run_layer "engine demo (nokv-demo)" layer_demo
run_layer "offline CLI (nokv)" layer_cli
run_layer "extension regression + isolation" layer_pg_regress
run_layer "extension TAP (crash, restart)" layer_tap

banner "summary"
for i in "${!LAYER_NAMES[@]}"; do
	printf '  %-40s %-8s %5ss\n' "${LAYER_NAMES[$i]}" "${LAYER_STATUS[$i]}" "${LAYER_SECONDS[$i]}"
done
printf '  %d skipped, total %ds\n' "$SKIPPED" $((SECONDS - start_all))
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
