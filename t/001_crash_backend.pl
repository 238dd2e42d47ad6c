
# t/001_crash_backend.pl
#
# kill -9 of a backend while it writes: PostgreSQL restarts every process
# and recovers; nokv must come back with exactly the committed data (its
# memtables were in the shared memory the restart discards), without the
# writes of a transaction that was open, and with its three workers.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('crash_backend');
nokv_setup_mirror($node);

# committed before anything happens: fixed keys with known values
my %fixed;
$fixed{sprintf('c%05d', $_)} = "committed-$_-" . ('z' x ($_ % 2 ? 40 : 400))
  for 1 .. 3000;
$node->safe_psql('postgres', q{
SELECT count(nokv_put(format('c%s', lpad(i::text, 5, '0')),
                      'committed-' || i || '-' || repeat('z', CASE WHEN i % 2 = 1 THEN 40 ELSE 400 END)))
FROM generate_series(1, 3000) i});
is(nokv_digest($node, 'c', 'd'), expected_digest(\%fixed), 'fixed keys written');

my $before = wait_nokv_workers($node);

# an open transaction that never commits
my $open = start_bg($node);
bg_send($open, q{BEGIN;
SELECT count(nokv_put('u' || i, 'uncommitted ' || i)) FROM generate_series(1, 500) i;
SELECT 'open xid=' || txid_current();
}, qr/open xid=\d+/);
my ($open_xid) = $open->{out} =~ /open xid=(\d+)/;
ok($open_xid, "open transaction $open_xid wrote 500 keys");

# the victim: commits batches of 20 steps (nokv + heap mirror) until killed
my $writer = start_bg($node);
my $victim = bg_backend_pid($writer);
bg_send($writer, "CALL churn(1, 100000000, 20000, 20);\n");

# let it commit a good amount, including some memtable flushes
$node->poll_query_until('postgres', 'SELECT count(*) >= 8000 FROM mirror')
  or die 'writer made no progress';
my $committed_before = $node->safe_psql('postgres', 'SELECT count(*) FROM mirror');

my $offset = log_position($node);
ok(kill9($victim), "kill -9 backend $victim during writes");
ok(wait_crash_restart($node, $offset), 'server restarted after the crash and nokv is ready');
bg_finish($writer);
bg_finish($open);

like(slurp_file($node->logfile, $offset),
	qr/server process \(PID $victim\) was terminated by signal 9/,
	'postmaster saw the backend killed by signal 9');

# committed data: the fixed keys exactly, the writer's keys equal to the
# heap mirror written in the same transactions
is(nokv_digest($node, 'c', 'd'), expected_digest(\%fixed), 'fixed committed keys intact');
my $mirror = mirror_digest($node, 'mirror');
is(nokv_digest($node, 'k', 'l'), $mirror, 'writer keys equal the heap mirror (committed set)');
my ($n) = split / /, $mirror;
cmp_ok($n, '>', 0, "the writer's committed keys survived ($n keys; $committed_before seen before the kill)");

# the open transaction's writes are gone
is($node->safe_psql('postgres',
	"SELECT count(*) FROM nokv_scan('u'::text, 'v'::text)"), '0',
	'keys of the open transaction are absent after the crash');
is($node->safe_psql('postgres', "SELECT nokv_get('u1') IS NULL"), 't',
	'nokv_get of an uncommitted key returns NULL');
is($node->safe_psql('postgres', "SELECT txid_status($open_xid)"), 'aborted',
	'the open transaction counts as aborted');

# the workers are back (new processes)
my $after = nokv_worker_pids($node);
foreach my $type (@NokvTest::WORKER_TYPES)
{
	ok($after->{$type} && $after->{$type} != $before->{$type},
		"worker '$type' is back in pg_stat_activity (pid $before->{$type} -> "
		  . ($after->{$type} // 'none') . ')');
}

# and the engine keeps working: write, flush, read back
$node->safe_psql('postgres', q{
CALL churn(200000000, 3000, 20000, 50);
SELECT nokv_flush();});
is(nokv_digest($node, 'k', 'l'), mirror_digest($node, 'mirror'),
	'writes after the restart land and read back after a flush');

$node->stop;
done_testing();
