
# t/005_crash_in_recovery.pl
#
# A crash while the engine is being rebuilt from the WAL.
#
# The data is written with big memtables (nothing is flushed), then the
# server stops immediately and comes back with nokv.memtable_size=256kB, so
# re-applying the WAL fills memtable after memtable and the startup process
# flushes them inline (new SSTs and manifest edits while PostgreSQL is still
# in crash recovery).  In the middle of that:
#
#  A. (a checkpoint after the load: the engine re-applies the records from
#     its slot to the redo point itself, in the resource manager's startup
#     callback) kill -9 of the startup process; PostgreSQL gives up; start
#     again.
#  B. (no checkpoint after the load: redo applies the records) an
#     immediate stop during recovery; start again.
#
# Each time every committed key must read back with its exact value.
#
#  C. re-applying a longer tail (60000 records, ~60 inline flushes of
#     256kB memtables) must not take much longer than the work itself
#     (a few seconds): the server must accept connections within 15 s.
#
# A and B keep the tail short enough (about 15 memtables) to stay below
# the engine's level-0 slowdown trigger; C is the one that crosses it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use NokvTest;

my $BIG = "nokv.memtable_size = 64MB\nnokv.max_memtables = 2\n";
my $SMALL = "nokv.memtable_size = 256kB\nnokv.max_memtables = 3\n";

my $node = nokv_node('crash_in_recovery', conf => $BIG);
my %expected;

sub load
{
	my ($prefix, $n) = @_;

	# 4 transactions, values of 120-180 bytes (they stay in the LSM tree)
	for my $part (0 .. 3)
	{
		my ($from, $to) = ($part * $n / 4 + 1, ($part + 1) * $n / 4);
		$node->safe_psql('postgres', qq{
SELECT count(nokv_put('$prefix' || lpad(i::text, 6, '0'), rpad('$prefix' || i || ':', 120 + i % 61, md5(i::text))))
FROM generate_series($from, $to) i});
	}
	# the same in Perl (rpad with the md5 repeated)
	require Digest::MD5;
	foreach my $i (1 .. $n)
	{
		my $head = "$prefix$i:";
		my $md5 = Digest::MD5::md5_hex($i);
		my $len = 120 + $i % 61;
		my $v = $head;
		$v .= substr($md5 x 8, 0, $len - length($head));
		$expected{sprintf('%s%06d', $prefix, $i)} = $v;
	}
	return;
}

sub sst_count
{
	my @f = glob($node->data_dir . '/nokv/*.sst');
	return scalar @f;
}

# start the postmaster without waiting; returns its pid
sub start_nowait
{
	my $offset = log_position($node);
	system_or_bail('pg_ctl', '-D', $node->data_dir, '-l', $node->logfile,
		'-o', '--cluster-name=' . $node->name, '-W', 'start');
	my $deadline = time() + 30;
	my $pm;
	while (time() < $deadline)
	{
		$pm = postmaster_pid($node);
		last if $pm && kill(0, $pm);
		usleep(10_000);
	}
	die 'postmaster did not start' unless $pm;
	return ($pm, $offset);
}

# the startup process, once it is re-applying: its inline flushes add SSTs
sub catch_reapply
{
	my ($pm, $ssts_before, $offset) = @_;
	my $deadline = time() + 60;

	while (time() < $deadline)
	{
		my $children = child_pids($pm);
		my ($startup) = grep { $children->{$_} =~ /startup/ } keys %$children;
		if ($startup && sst_count() >= $ssts_before + 3)
		{
			my $log = slurp_file($node->logfile, $offset);
			return ($startup, $log =~ /database system is ready/ ? 1 : 0);
		}
		last if slurp_file($node->logfile, $offset) =~ /database system is ready/;
		usleep(2_000);
	}
	return (undef, 1);
}

sub wait_gone
{
	my ($pid, $seconds) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		return 1 unless kill(0, $pid);
		usleep(20_000);
	}
	return 0;
}

sub check
{
	my ($what) = @_;
	is(nokv_digest($node), expected_digest(\%expected), $what);
	return;
}

# ---------- A: kill -9 of the startup process during the engine's re-apply ----------

load('a', 16000);
my $ssts = sst_count();
$node->safe_psql('postgres', 'CHECKPOINT');
check('A: loaded without flushing');
$node->stop('immediate');
$node->append_conf('postgresql.conf', $SMALL);

my ($pm, $offset) = start_nowait();
my ($startup, $too_late) = catch_reapply($pm, $ssts, $offset);
ok($startup && !$too_late,
	'A: caught the startup process re-applying (inline flushes under way)')
  or diag(slurp_file($node->logfile, $offset));
if ($startup)
{
	my $written = sst_count() - $ssts;
	ok(kill9($startup), "A: kill -9 startup process $startup after $written inline flushes");
}
ok(wait_gone($pm, 60), 'A: the postmaster gave up after the startup process died');
my $log = slurp_file($node->logfile, $offset);
like($log, qr/startup process \(PID \d+\) was terminated by signal 9/, 'A: log shows the startup process killed');
unlike($log, qr/nokv engine opened from/, 'A: the engine had not finished opening');

$offset = log_position($node);
$node->_update_pid(0);
$node->start;
wait_nokv_ready($node);
$log = slurp_file($node->logfile, $offset);
my ($n) = $log =~ /re-applied (\d+) WAL records/;
ok(defined $n, 'A: restarted; the engine re-applied ' . ($n // '?') . ' WAL records');
check('A: after a crash during re-apply, every committed key reads back');

# ---------- B: immediate stop during redo ----------

$node->append_conf('postgresql.conf', $BIG);
$node->restart;
wait_nokv_ready($node);
$ssts = sst_count();
load('b', 16000);    # no checkpoint: redo applies these
check('B: loaded without flushing');
$node->stop('immediate');
$node->append_conf('postgresql.conf', $SMALL);

($pm, $offset) = start_nowait();
($startup, $too_late) = catch_reapply($pm, $ssts, $offset);
ok($startup && !$too_late, 'B: caught the startup process in redo (inline flushes under way)')
  or diag(slurp_file($node->logfile, $offset));
my $written = sst_count() - $ssts;
system_or_bail('pg_ctl', '-D', $node->data_dir, '-m', 'immediate', 'stop');
ok(wait_gone($pm, 60), "B: immediate stop during redo after $written inline flushes");
$log = slurp_file($node->logfile, $offset);
unlike($log, qr/database system is ready to accept connections/, 'B: recovery had not finished');

$offset = log_position($node);
$node->start;
wait_nokv_ready($node);
check('B: after an immediate stop during redo, every committed key reads back');

# ---------- C: how long a longer re-apply takes ----------

$node->append_conf('postgresql.conf', $BIG);
$node->restart;
wait_nokv_ready($node);
load('c', 60000);
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop('immediate');
$node->append_conf('postgresql.conf', $SMALL);
$ssts = sst_count();

my $t0 = time();
($pm, $offset) = start_nowait();
my $ready = 0;
while (time() < $t0 + 15)
{
	if (slurp_file($node->logfile, $offset) =~ /database system is ready to accept connections/)
	{
		$ready = 1;
		last;
	}
	usleep(50_000);
}
my $elapsed = time() - $t0;
$written = sst_count() - $ssts;
my $ok_fast = ok($ready, sprintf('C: crash recovery re-applying 60000 records finished within 15 s '
	  . '(%.1f s so far, %d inline flushes)', $elapsed, $written));
# let it finish (or give up) before checking the data once more
my $deadline = time() + 150;
while (!$ready && time() < $deadline)
{
	$ready = slurp_file($node->logfile, $offset) =~ /database system is ready to accept connections/;
	usleep(200_000);
}
$log = slurp_file($node->logfile, $offset);
my ($usage) = $log =~ /redo done at \S+ system usage: (.*)/;
my ($n_c) = $log =~ /re-applied (\d+) WAL records/;
diag('C: recovery took ' . sprintf('%.1f', time() - $t0) . ' s for '
	  . ($n_c // '?') . " re-applied records; startup process: $usage")
  if defined $usage && !$ok_fast;
if ($ready)
{
	$node->_update_pid(1);
	wait_nokv_ready($node);
	check('C: every committed key reads back');
	wait_nokv_workers($node);
	$node->stop;
}
else
{
	fail('C: recovery did not finish within 180 s');
	system('pg_ctl', '-D', $node->data_dir, '-m', 'immediate', 'stop');
}
done_testing();
