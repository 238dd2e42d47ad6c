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
# A local PostgreSQL 15 with nokv preloaded, on a free port of 127.0.0.1
# under a temporary directory, run as the postgres user when we are root
# (PostgreSQL refuses to run as root).  It keeps running so you can
# connect; the script prints how to connect and how to stop it.

PGBIN=$("$PG_CONFIG" --bindir)
pg_user=$(id -un)
if nokv_is_root; then
	pg_user=postgres
fi
as_pg()
{
	if [ "$(id -un)" = "$pg_user" ]; then
		bash -c "$1"
	else
		su "$pg_user" -s /bin/bash -c "$1"
	fi
}
pg_dir=$(mktemp -d /tmp/nokv-quickstart.XXXXXX)
chown "$pg_user" "$pg_dir"
chmod 755 "$pg_dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

nokv_log "starting PostgreSQL with nokv preloaded in $pg_dir (port $port)"
as_pg "'$PGBIN/initdb' -D '$pg_dir/data' -A trust -U postgres >'$pg_dir/initdb.log'"
{
	echo "shared_preload_libraries = 'nokv'"
	echo "listen_addresses = '127.0.0.1'"
	echo "port = $port"
	echo "unix_socket_directories = '$pg_dir'"
} >>"$pg_dir/data/postgresql.conf"
as_pg "'$PGBIN/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/server.log' -w start >/dev/null"

psql_cmd=("$PGBIN/psql" -X -h "$pg_dir" -p "$port" -U postgres -d postgres)
nokv_log "a short psql session"
"${psql_cmd[@]}" -e -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION nokv;
SELECT nokv_put('greeting', 'hello from nokv');
SELECT nokv_get('greeting');
SELECT nokv_put('session:42', 'token', ttl => interval '1 hour');
SELECT count(nokv_put('user:' || i, 'name ' || i)) FROM generate_series(1, 10000) i;
BEGIN;
SELECT nokv_put('greeting', 'never committed');
ROLLBACK;
SELECT nokv_get('greeting');
SELECT * FROM nokv_scan('user:1', 'user:11', 5);
SELECT nokv_flush();
SELECT level, files, bytes, entries FROM nokv_levels WHERE files > 0;
SELECT name, value, unit FROM nokv_stats WHERE name LIKE 'lsm.levels.L0.%' ORDER BY name;
SELECT worker_type, pid, activity, engine_state FROM nokv_workers;
SQL

nokv_log "PostgreSQL with nokv is running: ${psql_cmd[*]}"
nokv_log "stop it with: su $pg_user -c \"$PGBIN/pg_ctl -D $pg_dir/data stop\" (data in $pg_dir)"
nokv_log "done: run ./scripts/test.sh for every test layer"
