#!/usr/bin/env bash
#
# test/cli/test_cli.sh
#
# TAP tests of the offline `nokv` CLI:
#
#	bash test/cli/test_cli.sh [BUILD_DIR]		(default build/release)
#
# BUILD_DIR must hold the `nokv` binary and libnokv_engine.a (make -f
# mk/engine.mk lib cli).  The script builds test/cli/make_data.c against
# the library, makes a data directory in a scratch PGDATA-like layout
# (SCRATCH/pgdata/nokv), runs every subcommand in text and JSON form
# (JSON checked with python3), checks the figures agree across
# subcommands, checks usage errors (exit 1), the refusals (exit 2: a live
# pid in ../postmaster.pid, a LOCK held by a running engine), corrupt or
# missing data (exit 3), and that no file of the data directory changed
# (names, sizes, mtimes and sha256 sums) after all those runs.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_ARG=${1:-build/release}
if [ -d "$BUILD_ARG" ]; then
	BUILD=$(cd "$BUILD_ARG" && pwd)
else
	BUILD=$(cd "$ROOT/$BUILD_ARG" 2>/dev/null && pwd) || {
		echo "Bail out! no build directory $BUILD_ARG"
		exit 255
	}
fi
NOKV=$BUILD/nokv
LIB=$BUILD/libnokv_engine.a

TESTS=0
FAILED=0
BG_PIDS=()
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/nokv-cli-XXXXXX")

cleanup()
{
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

bail()
{
	echo "Bail out! $*"
	exit 255
}

ok()
{
	local cond=$1
	shift
	TESTS=$((TESTS + 1))
	if [ "$cond" -eq 0 ]; then
		echo "ok $TESTS - $*"
	else
		echo "not ok $TESTS - $*"
		FAILED=$((FAILED + 1))
	fi
}

diag()
{
	sed 's/^/# /' "$@"
}

# run_nokv ARGS...: sets RC; output in $OUT / $ERR
OUT=$SCRATCH/out
ERR=$SCRATCH/err
run_nokv()
{
	"$NOKV" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}

# expect RC DESCRIPTION ARGS...
expect()
{
	local want=$1 desc=$2
	shift 2
	run_nokv "$@"
	ok $([ "$RC" -eq "$want" ]; echo $?) "$desc (exit $RC, want $want)"
	if [ "$RC" -ne "$want" ]; then
		diag "$ERR"
	fi
}

# stderr contains a fixed string
err_has()
{
	grep -qF -- "$1" "$ERR"
	ok $? "$2"
	if ! grep -qF -- "$1" "$ERR"; then
		diag "$ERR"
	fi
}

# names, sizes, mtimes and contents of every file below DIR
fingerprint()
{
	(cd "$1" && find . -printf '%p %y %s %T@\n' | LC_ALL=C sort &&
		find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

flip_byte()
{
	python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x5a]))
EOF
}

[ -x "$NOKV" ] || bail "$NOKV not built (make -f mk/engine.mk cli)"
[ -f "$LIB" ] || bail "$LIB not built (make -f mk/engine.mk lib)"
command -v python3 >/dev/null || bail "python3 is needed to validate JSON"

# ---------- data ----------

cc -std=gnu11 -Wall -Wextra -Werror -O1 -g -I"$ROOT/include" "$ROOT/test/cli/make_data.c" \
	"$LIB" -llz4 -lpthread -lm -o "$SCRATCH/make_data" || bail "could not build make_data"
PGDATA_DIR=$SCRATCH/pgdata
DATA=$PGDATA_DIR/nokv
mkdir -p "$PGDATA_DIR"
"$SCRATCH/make_data" "$DATA" || bail "make_data failed"
ok 0 "made a data directory with make_data"
fingerprint "$DATA" >"$SCRATCH/before"

# ---------- help, version, usage errors ----------

expect 0 "--help" --help
grep -q "nokv stats" "$OUT"
ok $? "--help prints the usage"
expect 0 "subcommand --help" sst --help
expect 0 "--version" --version
grep -qE '^nokv [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"
ok $? "--version prints the version"

expect 1 "no arguments" 
expect 1 "unknown command" frobnicate --workdir "$DATA"
expect 1 "missing --workdir" stats
expect 1 "unknown option" stats --workdir "$DATA" --bogus
expect 1 "--workdir without a value" stats --workdir
expect 1 "bad --num-levels" stats --workdir "$DATA" --num-levels 99
err_has "invalid value" "bad option values are named"
[ ! -s "$OUT" ]
ok $? "usage errors print nothing on stdout"

# ---------- every subcommand, text and JSON ----------

for cmd in stats manifest vlog sst; do
	expect 0 "$cmd (text)" "$cmd" --workdir "$DATA"
	cp "$OUT" "$SCRATCH/$cmd.txt"
	[ -s "$OUT" ]
	ok $? "$cmd (text) prints something"
	expect 0 "$cmd --json" "$cmd" --workdir "$DATA" --json
	cp "$OUT" "$SCRATCH/$cmd.json"
	python3 -m json.tool "$OUT" >/dev/null 2>"$SCRATCH/jsonerr"
	rc=$?
	ok $rc "$cmd --json is valid JSON"
	[ $rc -eq 0 ] || diag "$SCRATCH/jsonerr"
done
expect 0 "--workdir=DIR form" stats --workdir="$DATA"
cmp -s "$OUT" "$SCRATCH/stats.txt"
ok $? "--workdir=DIR gives the same output"
(cd "$SCRATCH" && "$NOKV" stats --workdir pgdata/nokv >"$SCRATCH/rel.txt" 2>/dev/null)
cmp -s "$SCRATCH/rel.txt" "$SCRATCH/stats.txt"
ok $? "a relative --workdir works"

# text stats: "name value" lines
bad=$(grep -cvE '^[A-Za-z0-9_.]+ -?[0-9][0-9.e+-]*$' "$SCRATCH/stats.txt")
ok $([ "$bad" -eq 0 ]; echo $?) "stats text is one \"name value\" line per figure ($bad bad lines)"

python3 - "$SCRATCH" <<'EOF' >"$SCRATCH/py.out" 2>&1
import json, sys
d = sys.argv[1]
stats = json.load(open(d + '/stats.json'))
manifest = json.load(open(d + '/manifest.json'))
vlog = json.load(open(d + '/vlog.json'))
sst = json.load(open(d + '/sst.json'))
text = {}
for line in open(d + '/stats.txt'):
    name, value = line.split()
    text[name] = float(value)
checks = []
def check(cond, what):
    checks.append((bool(cond), what))
check(isinstance(stats, dict) and len(stats) > 40, 'stats JSON is an object of many rows')
check(set(text) == set(stats) and all(abs(text[k] - stats[k]) < 1e-9 for k in text),
      'stats text and JSON hold the same rows and values')
for name in ['entries', 'version.last', 'manifest.number', 'manifest.bytes', 'lsm.live_bytes',
             'lsm.levels.L0.tables', 'lsm.levels.L6.size_bytes', 'lsm.levels.L0.score',
             'lsm.column_families.default.entries', 'lsm.column_families.write.bytes',
             'value_log.segments', 'value_log.bytes', 'value_log.discard_bytes',
             'value_log.discard_ratio', 'value_log.head.segment', 'wal.log_number']:
    check(name in stats, 'stats has ' + name)
check(isinstance(manifest, list) and len(manifest) == 1, 'manifest JSON is an array of one row')
m = manifest[0]
check(m['manifest_number'] == stats['manifest.number'] and m['manifest_size'] == stats['manifest.bytes'],
      'manifest number and size agree with stats')
check(m['last_version'] == stats['version.last'] and m['next_file_number'] == stats['manifest.next_file_number'],
      'manifest counters agree with stats')
check(m['live_files'] == len(sst) == stats['lsm.tables'], 'live_files = sst rows = lsm.tables')
check(m['live_bytes'] == sum(r['size'] for r in sst) == stats['lsm.live_bytes'], 'live bytes agree')
check(m['vlog_segments'] == len(vlog) == stats['value_log.segments'] and len(vlog) >= 2,
      'vlog rows = manifest vlog_segments = value_log.segments (>= 2)')
check(sum(r['size'] for r in vlog) == stats['value_log.bytes'], 'vlog sizes sum to value_log.bytes')
check(sum(r['discard'] for r in vlog) == stats['value_log.discard_bytes'] > 0, 'discard bytes agree and are > 0')
heads = [r for r in vlog if r['is_head']]
check(len(heads) == 1 and heads[0]['number'] == m['vlog_head_segment'] == stats['value_log.head.segment'],
      'exactly one head segment, the manifest head')
check(all(r['file_size'] >= r['size'] for r in vlog), 'segment files are at least their durable size')
for lvl in range(7):
    rows = [r for r in sst if r['level'] == lvl]
    check(len(rows) == stats['lsm.levels.L%d.tables' % lvl] and
          sum(r['size'] for r in rows) == stats['lsm.levels.L%d.size_bytes' % lvl] and
          sum(r['entries'] for r in rows) == stats['lsm.levels.L%d.entries' % lvl],
          'level %d rows agree with stats' % lvl)
check(stats['lsm.levels.L0.tables'] >= 1 and any(r['level'] > 0 for r in sst), 'level 0 and a deeper level')
check(sum(stats['lsm.column_families.%s.entries' % c] for c in ['default', 'lock', 'write']) == stats['entries'],
      'column-family entries sum to entries')
ok_hex = True
for r in sst:
    for p in ['smallest', 'largest']:
        raw = bytes.fromhex(r[p + '_key_hex'])
        printable = all(0x20 <= b <= 0x7e for b in raw)
        if printable and r[p + '_key'] != raw.decode('ascii'):
            ok_hex = False
        if not printable and r[p + '_key'] is not None:
            ok_hex = False
check(ok_hex, 'JSON keys: the string exactly when printable, the hex always')
check(any(r['largest_cf'] == 'write' and r['largest_key'] is None and r['largest_key_hex'].startswith('ff')
          for r in sst), 'a binary key is shown as hex only')
check(any(r['level'] == 0 and r['largest_cf'] == 'lock' and r['largest_key'] == 'lock"quote' for r in sst),
      'a key with a quote survives JSON escaping')
for good, what in checks:
    print(('ok' if good else 'NOT OK') + ' ' + what)
EOF
while read -r status rest; do
	ok $([ "$status" = ok ]; echo $?) "json: $rest"
done <"$SCRATCH/py.out"
grep -q "Traceback" "$SCRATCH/py.out" && diag "$SCRATCH/py.out"

# text tables
head -n 1 "$SCRATCH/sst.txt" | grep -q "^LEVEL  *NUMBER  *SIZE  *ENTRIES"
ok $? "sst text has a header"
rows=$(($(wc -l <"$SCRATCH/sst.txt") - 1))
json_rows=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$SCRATCH/sst.json")
ok $([ "$rows" -eq "$json_rows" ]; echo $?) "sst text and JSON list the same files ($rows)"
grep -qF 'write:\xff1\x00\x0ax\x80\x5c1' "$SCRATCH/sst.txt"
ok $? "sst text escapes binary keys as \\xNN (backslash too)"
rows=$(($(wc -l <"$SCRATCH/vlog.txt") - 1))
json_rows=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$SCRATCH/vlog.json")
ok $([ "$rows" -eq "$json_rows" ]; echo $?) "vlog text and JSON list the same segments ($rows)"
grep -qE '^manifest_number +[0-9]+$' "$SCRATCH/manifest.txt"
ok $? "manifest text lists fields"

# level options change targets, not the files
expect 0 "stats with level options" stats --workdir "$DATA" --num-levels 4 --level-base-bytes 1000 \
	--level-multiplier 2 --l0-compaction-trigger 1 --json
python3 - "$OUT" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s['lsm.levels.L0.score'] == s['lsm.levels.L0.tables'] and 'lsm.levels.L6.tables' in s else 1)
EOF
ok $? "level options: L0 score = files / trigger; files below num_levels still shown"

# ---------- refusals (exit 2) ----------

sleep 300 &
SLEEP_PID=$!
BG_PIDS+=("$SLEEP_PID")
printf '%s\n%s\n1700000000\n5432\n' "$SLEEP_PID" "$PGDATA_DIR" >"$PGDATA_DIR/postmaster.pid"
expect 2 "refuses while ../postmaster.pid names a live process" stats --workdir "$DATA"
err_has "data directory $DATA is in use by a running PostgreSQL server (pid $SLEEP_PID)" \
	"the refusal names the directory and the pid"
err_has "HINT" "the refusal carries a hint"
[ ! -s "$OUT" ]
ok $? "a refusal prints nothing on stdout"
for cmd in manifest vlog sst; do
	expect 2 "$cmd refuses too" "$cmd" --workdir "$DATA" --json
done
mkdir "$SCRATCH/pglink"
ln -s "$DATA" "$SCRATCH/pglink/nokv"
cp "$PGDATA_DIR/postmaster.pid" "$SCRATCH/pglink/postmaster.pid"
rm "$PGDATA_DIR/postmaster.pid"
expect 2 "refuses through a symlinked data directory (lexical parent)" stats --workdir "$SCRATCH/pglink/nokv"
(cd "$SCRATCH/pglink" && "$NOKV" stats --workdir nokv >/dev/null 2>&1)
ok $([ $? -eq 2 ]; echo $?) "refuses with a relative --workdir"
mv "$SCRATCH/pglink/postmaster.pid" "$PGDATA_DIR/postmaster.pid"
kill "$SLEEP_PID" 2>/dev/null
wait "$SLEEP_PID" 2>/dev/null
expect 0 "a stale postmaster.pid (dead pid) is ignored" stats --workdir "$DATA"
echo "garbage" >"$PGDATA_DIR/postmaster.pid"
expect 0 "an unparsable postmaster.pid is ignored" stats --workdir "$DATA"
rm -f "$PGDATA_DIR/postmaster.pid"

cp -a "$DATA" "$SCRATCH/held"
"$SCRATCH/make_data" --hold "$SCRATCH/held" >"$SCRATCH/hold.out" 2>&1 &
HOLD_PID=$!
BG_PIDS+=("$HOLD_PID")
for _ in $(seq 1 100); do
	grep -q ready "$SCRATCH/hold.out" 2>/dev/null && break
	sleep 0.1
done
grep -q ready "$SCRATCH/hold.out"
ok $? "an engine holds a copy of the directory open"
expect 2 "refuses while an engine holds the LOCK" sst --workdir "$SCRATCH/held"
err_has "is locked" "the refusal says the lock is held"
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
expect 0 "runs once the engine is gone" sst --workdir "$SCRATCH/held"

cp -a "$DATA" "$SCRATCH/nolock"
rm -f "$SCRATCH/nolock/LOCK"
expect 0 "a directory without a LOCK file" stats --workdir "$SCRATCH/nolock"
[ ! -e "$SCRATCH/nolock/LOCK" ]
ok $? "the LOCK file is never created"

# ---------- corrupt or missing data (exit 3) ----------

expect 3 "a missing directory" stats --workdir "$SCRATCH/does-not-exist"
err_has "does-not-exist" "the error names the directory"
mkdir "$SCRATCH/empty"
expect 3 "a directory without CURRENT" stats --workdir "$SCRATCH/empty"
err_has "no CURRENT" "the error says there is no CURRENT"
[ -z "$(ls -A "$SCRATCH/empty")" ]
ok $? "nothing is created in an empty directory"

cp -a "$DATA" "$SCRATCH/badcurrent"
echo "garbage" >"$SCRATCH/badcurrent/CURRENT"
expect 3 "a corrupt CURRENT" manifest --workdir "$SCRATCH/badcurrent"
err_has "CURRENT" "the error names CURRENT"

cp -a "$DATA" "$SCRATCH/badmanifest"
manifest=$(ls "$SCRATCH/badmanifest" | grep '^MANIFEST-' | head -n 1)
flip_byte "$SCRATCH/badmanifest/$manifest" 40
expect 3 "a corrupt manifest" manifest --workdir "$SCRATCH/badmanifest" --json
err_has "$manifest" "the error names the manifest"
err_has "offset" "the error names the offset"

cp -a "$DATA" "$SCRATCH/badsst"
sst=$(ls "$SCRATCH/badsst" | grep '\.sst$' | head -n 1)
truncate -s 100 "$SCRATCH/badsst/$sst"
expect 3 "a truncated sst" sst --workdir "$SCRATCH/badsst"
err_has "$sst" "the error names the sst"

cp -a "$DATA" "$SCRATCH/badvlog"
seg=$(ls "$SCRATCH/badvlog" | grep '\.vlog$' | head -n 1)
flip_byte "$SCRATCH/badvlog/$seg" 1
expect 3 "a value-log segment with a bad header" vlog --workdir "$SCRATCH/badvlog"
err_has "offset 0 of $SCRATCH/badvlog/$seg" "the error names the segment and offset"

# ---------- nothing changed ----------

fingerprint "$DATA" >"$SCRATCH/after"
cmp -s "$SCRATCH/before" "$SCRATCH/after"
rc=$?
ok $rc "no file of the data directory changed (names, sizes, mtimes, sha256)"
[ $rc -eq 0 ] || diff "$SCRATCH/before" "$SCRATCH/after" | sed 's/^/# /'

echo "1..$TESTS"
if [ "$FAILED" -ne 0 ]; then
	echo "# failed $FAILED of $TESTS"
	exit 1
fi
exit 0
