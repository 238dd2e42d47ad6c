#!/usr/bin/env bash
#
# scripts/quickstart.sh
#
# Sets up and runs nokv: installs the packages it needs (as root, on Debian
# bookworm), builds the engine and the extension, and shows the engine
# working by running the demo (build/release/nokv-demo) in a scratch
# directory.
#
# Environment:
#	JOBS				parallel make jobs (default: number of CPUs)
#	PG_CONFIG			pg_config to build against (default: PostgreSQL 15's)
#	NOKV_SKIP_INSTALL=1	do not install packages
#	NOKV_DEMO_DIR		run the demo in this directory and keep it

set -euo pipefail

NOKV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$NOKV_ROOT"
# shellcheck source=scripts/common.sh
. scripts/common.sh

JOBS=${JOBS:-$(nokv_jobs)}
PG_CONFIG=$(nokv_pg_config)
export PG_CONFIG

scratch=""
cleanup()
{
	if [ -n "$scratch" ]; then
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT

# ---------- 1. packages ----------

if [ "${NOKV_SKIP_INSTALL:-0}" != 1 ]; then
	nokv_ensure_packages || nokv_die "package installation failed"
fi

# ---------- 2. build ----------

if ! compgen -G 'src/engine/*.c' >/dev/null; then
	nokv_die "the engine core (src/engine/*.c) is not there yet: nothing to demo"
fi

nokv_log "building the engine and the demo"
make --no-print-directory -f mk/engine.mk -j"$JOBS" lib
if ! nokv_engine_defines nokv_open; then
	nokv_die "the engine core is incomplete (no nokv_open yet): nothing to demo"
fi
make --no-print-directory -f mk/engine.mk -j"$JOBS" demo

nokv_log "building the PostgreSQL extension"
make --no-print-directory -j"$JOBS" PG_CONFIG="$PG_CONFIG"
if nokv_is_root; then
	nokv_log "installing the PostgreSQL extension"
	make --no-print-directory install PG_CONFIG="$PG_CONFIG"
else
	nokv_warn "not root: skipping \"make install\" of the extension"
fi

# ---------- 3. the standalone engine ----------

if [ -n "${NOKV_DEMO_DIR:-}" ]; then
	demo_dir=$NOKV_DEMO_DIR
else
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/nokv-quickstart.XXXXXX")
	demo_dir=$scratch/data
fi
nokv_log "running the engine demo in $demo_dir"
build/release/nokv-demo "$demo_dir" </dev/null

# ---------- 4. nokv inside PostgreSQL ----------
#
# Later issues fill this in: start a PostgreSQL 15 instance (as the postgres
# user when run as root) with shared_preload_libraries = 'nokv', run
# CREATE EXTENSION nokv, create a table USING nokv, load rows, and show
# SELECT * FROM nokv_stats.  Until then the extension only reports its
# engine version (nokv_engine_version()), which scripts/test.sh checks.

nokv_log "nokv inside PostgreSQL: not wired up yet (see the end of scripts/quickstart.sh)"

nokv_log "done: the engine works; run ./scripts/test.sh for every test layer"
