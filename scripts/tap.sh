#!/usr/bin/env bash
#
# scripts/tap.sh [test files...]
#
# Runs nokv's TAP tests (t/*.pl, PostgreSQL::Test::Cluster) with prove
# against the installed PostgreSQL 15 and the installed nokv extension
# ("make install" first).  Exits non-zero if any test fails.
#
# PostgreSQL refuses to run as root: run this as an unprivileged user from a
# directory that user can write (tmp_check/ is created there; TESTDIR moves
# it).  Run as root, it copies the tree to a fresh directory under /tmp,
# hands it to the user postgres and runs itself there.
#
# Environment:
#	PG_CONFIG		pg_config of the PostgreSQL to test (default: PostgreSQL 15's)
#	PROVE_FLAGS		extra prove options (default: --timer)
#	TESTDIR			where tmp_check/ goes (default: the tree)
#	PG_TEST_NOCLEAN	keep the test nodes' data directories
#	NOKV_TAP_USER	the user to run as when started as root (default: postgres)

set -euo pipefail

NOKV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
	user=${NOKV_TAP_USER:-postgres}
	copy=$(mktemp -d /tmp/nokv-tap.XXXXXX)
	cp -a "$NOKV_ROOT/." "$copy/"
	rm -rf "$copy/tmp_check"
	chown -R "$user" "$copy"
	echo "==> running as $user in $copy (logs: $copy/tmp_check/log)"
	args=""
	if [ $# -gt 0 ]; then
		args=$(printf ' %q' "$@")
	fi
	envs=""
	for v in PG_CONFIG PROVE_FLAGS PG_TEST_NOCLEAN PG_TEST_TIMEOUT_DEFAULT; do
		if [ -n "${!v:-}" ]; then
			envs+=" $v=$(printf '%q' "${!v}")"
		fi
	done
	exec su "$user" -s /bin/bash -c "cd $(printf '%q' "$copy") &&${envs:+ env$envs} bash scripts/tap.sh$args"
fi

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
bindir=$("$PG_CONFIG" --bindir)
pgxs=$("$PG_CONFIG" --pgxs)
pgxssrc=$(dirname "$(dirname "$pgxs")")	# .../lib/pgxs/src
perldir="$pgxssrc/test/perl"
regress="$pgxssrc/test/regress/pg_regress"

[ -d "$perldir/PostgreSQL/Test" ] ||
	{ echo "error: PostgreSQL::Test modules not found in $perldir (postgresql-server-dev-15?)" >&2; exit 2; }
[ -x "$regress" ] || { echo "error: pg_regress not found at $regress" >&2; exit 2; }
perl -MIPC::Run -e 1 2>/dev/null ||
	{ echo "error: the Perl module IPC::Run is missing (libipc-run-perl)" >&2; exit 2; }

export PATH="$bindir:$PATH"
export PG_REGRESS="$regress"
export TESTDIR=${TESTDIR:-$NOKV_ROOT}

if [ ! -w "$TESTDIR" ]; then
	echo "error: $TESTDIR is not writable by $(id -un); set TESTDIR or run from a copy" >&2
	exit 2
fi

cd "$NOKV_ROOT"
# as PGXS's prove_check: every run starts from an empty tmp_check/
rm -rf "$TESTDIR/tmp_check"
if [ $# -eq 0 ]; then
	set -- t/*.pl
fi

# shellcheck disable=SC2086
exec prove ${PROVE_FLAGS:---timer} -I "$perldir" -I "$NOKV_ROOT/t" "$@"
