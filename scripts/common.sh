# shellcheck shell=bash
# scripts/common.sh
#
# Helpers shared by scripts/test.sh and scripts/quickstart.sh: logging,
# package installation on Debian (bookworm) and PostgreSQL discovery.
# Sourced, never run; the caller sets NOKV_ROOT and "set -euo pipefail".

# packages every build, test and demo needs (Debian bookworm names)
NOKV_PACKAGES=(
	build-essential
	clang
	libclang-rt-14-dev
	liblz4-dev
	postgresql-15
	postgresql-server-dev-15
	libipc-run-perl
	librocksdb-dev
	libleveldb-dev
	libraft-dev
	libuv1-dev
	redis-tools
	redis-server
	valgrind
	pkg-config
)

NOKV_PG_MAJOR=15

nokv_log()
{
	printf '==> %s\n' "$*"
}

nokv_warn()
{
	printf 'warning: %s\n' "$*" >&2
}

nokv_die()
{
	printf 'error: %s\n' "$*" >&2
	exit 1
}

nokv_is_root()
{
	[ "$(id -u)" -eq 0 ]
}

nokv_jobs()
{
	nproc 2>/dev/null || echo 2
}

# print the packages of NOKV_PACKAGES that are not installed
nokv_missing_packages()
{
	local pkg

	for pkg in "${NOKV_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null |
			grep 'install ok installed' >/dev/null; then
			echo "$pkg"
		fi
	done
}

# Install whatever is missing (as root, through apt-get).  Repeated runs
# find everything installed and never touch apt.  Returns non-zero only if
# an installation was attempted and failed.
nokv_ensure_packages()
{
	local missing

	if ! command -v dpkg-query >/dev/null 2>&1; then
		nokv_warn "not a Debian system: install the equivalent of: ${NOKV_PACKAGES[*]}"
		return 0
	fi
	missing=$(nokv_missing_packages | tr '\n' ' ')
	missing=${missing% }
	if [ -z "$missing" ]; then
		nokv_log "all required packages are installed"
		return 0
	fi
	if ! nokv_is_root; then
		nokv_warn "missing packages (run as root to install them): $missing"
		return 0
	fi
	nokv_log "installing: $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update </dev/null || return 1
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing </dev/null || return 1
}

# pg_config of PostgreSQL 15 (the wrapper in /usr/bin may pick another major)
nokv_pg_config()
{
	local debian="/usr/lib/postgresql/$NOKV_PG_MAJOR/bin/pg_config"

	if [ -n "${PG_CONFIG:-}" ]; then
		echo "$PG_CONFIG"
	elif [ -x "$debian" ]; then
		echo "$debian"
	else
		echo pg_config
	fi
}

# true if the release engine library defines the given function
nokv_engine_defines()
{
	local lib="$NOKV_ROOT/build/release/libnokv_engine.a"

	[ -f "$lib" ] && nm -g --defined-only "$lib" 2>/dev/null |
		awk '{ print $NF }' | grep -x "$1" >/dev/null
}
