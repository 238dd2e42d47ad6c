#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# run.sh
#	  Build nokv-bench and run the standard engine comparison (nokv, RocksDB
#	  and LevelDB on fillseq, fillrandom, overwrite, readrandom, readseq and
#	  seekrandom with 1,000,000 16-byte keys and 100-byte values).
#
# Results go to stdout and are appended to bench/results/engine-<UTC>.txt
# (nokv-bench names the file; pass --results FILE to choose it).  Any
# arguments are passed on to nokv-bench after the standard ones, and a later
# flag overrides an earlier one, so
#
#	bench/run.sh --num 200000 --engines rocksdb,leveldb
#	bench/run.sh --sync --num 20000
#	bench/run.sh --blob
#
# all work.  MAKE and NOKV_BENCH (the binary) may be overridden from the
# environment.
#
# bench/run.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

# run from the repository root whatever the caller's directory
cd "$(dirname "$0")/.."

MAKE="${MAKE:-make}"
NOKV_BENCH="${NOKV_BENCH:-build/release/nokv-bench}"

"$MAKE" -f mk/engine.mk bench

exec "$NOKV_BENCH" \
	--num 1000000 \
	--workloads fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom \
	"$@"
