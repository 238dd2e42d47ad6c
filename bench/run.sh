#!/usr/bin/env bash
#-------------------------------------------------------------------------
#
# run.sh
#	  Build nokv-bench and run the standard engine comparison (nokv, RocksDB
#	  and LevelDB on fillseq, fillrandom, overwrite, readrandom, readseq and
#	  seekrandom with 1,000,000 16-byte keys and 100-byte values), or with
#	  --large the large-value set.
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
# all work.
#
# bench/run.sh --large runs the large-value set instead: two runs, 4 KiB
# values (LARGE_NUM_4K keys, default 500,000: 1.91 GiB per write workload)
# and 16 KiB values (LARGE_NUM_16K keys, default 130,000: 1.99 GiB), each
# with fillrandom, overwrite and 100,000 readrandom gets on nokv, RocksDB,
# LevelDB and RocksDB with blob files (--blob), and nokv's value-log GC
# phase after overwrite.  Both runs append to one file,
# bench/results/large-<UTC>.txt.  Other arguments are passed to both runs
# (e.g. --engines nokv --blob=false for nokv alone); do not pass --num or
# --value_size there, set LARGE_NUM_4K / LARGE_NUM_16K instead.  Each run
# takes about two minutes on the 2-vCPU development machine and needs about
# 4 GB of free disk under /tmp (or --db DIR).
#
# MAKE and NOKV_BENCH (the binary) may be overridden from the environment.
#
# bench/run.sh
#
#-------------------------------------------------------------------------

set -euo pipefail

# run from the repository root whatever the caller's directory
cd "$(dirname "$0")/.."

MAKE="${MAKE:-make}"
NOKV_BENCH="${NOKV_BENCH:-build/release/nokv-bench}"
LARGE_NUM_4K="${LARGE_NUM_4K:-500000}"
LARGE_NUM_16K="${LARGE_NUM_16K:-130000}"

large=false
args=()
for arg in "$@"; do
	if [ "$arg" = "--large" ]; then
		large=true
	else
		args+=("$arg")
	fi
done

"$MAKE" -f mk/engine.mk bench

if ! $large; then
	exec "$NOKV_BENCH" \
		--num 1000000 \
		--workloads fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom \
		${args[@]+"${args[@]}"}
fi

results="bench/results/large-$(date -u +%Y%m%dT%H%M%SZ).txt"

# run_large VALUE_SIZE NUM
run_large()
{
	"$NOKV_BENCH" \
		--value_size "$1" \
		--num "$2" \
		--reads 100000 \
		--workloads fillrandom,overwrite,readrandom \
		--engines nokv,rocksdb,leveldb \
		--blob \
		--results "$results" \
		${args[@]+"${args[@]}"}
}

run_large 4096 "$LARGE_NUM_4K"
run_large 16384 "$LARGE_NUM_16K"
