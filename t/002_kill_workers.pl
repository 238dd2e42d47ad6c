
# t/002_kill_workers.pl
#
# kill -9 of each kind of nokv worker (flush, compaction, value-log GC)
# while writes and the maintenance functions nokv_flush(), nokv_compact()
# and nokv_vlog_gc() run, and of a backend inside those functions.  A
# killed worker makes PostgreSQL restart every process; afterwards every
# committed key must read back with its exact value: the nokv content must
# equal a heap table written in the same transactions (md5 of everything).
#
# Values of 300+ bytes go to the value log (nokv.vlog_threshold=256),
# 100-byte ones stay in the LSM tree; a seventh of the steps delete, the
# rest overwrite, so the value log has garbage for GC.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('kill_workers', conf => q{
nokv.vlog_segment_size = 1MB
nokv.vlog_gc_interval = 100ms
nokv.vlog_gc_discard_ratio = 0.05
});
nokv_setup_mirror($node);

my $NKEYS = 30000;

my $next_step = 100_000_000;
my $broken;    # set once the engine is unusable: later scenarios are skipped

# a base of data: 60000 steps over 30000 keys, some flushed to SSTs
my ($rc, $out, $err) = $node->psql('postgres',
	"CALL churn(1, 30000, $NKEYS, 500); SELECT nokv_flush(); CALL churn(30001, 30000, $NKEYS, 500);",
	on_error_stop => 1);
$err =~ s/\s+/ /g;
is($rc == 0 ? 'ok' : "error: $err", 'ok', 'base data loaded (60000 steps)');
my $base = nokv_digest($node);
is($base, mirror_digest($node, 'mirror'), 'base data equals the mirror');
$broken = $base if $base =~ /^error/;
$broken = $err if $rc != 0;

# Run the writer and a maintenance loop, kill the process $victim->() names
# when it is seen running, then verify after the crash restart.
sub scenario
{
	my ($what, $ops_sql, $victim, $victim_desc) = @_;

  SKIP:
	{
		skip("$what: engine already broken (" . substr($broken, 0, 160) . ')', 5) if $broken;

		my $writer = start_bg($node);
		bg_send($writer, "CALL churn($next_step, 50000000, $NKEYS, 25);\n");
		$next_step += 100_000_000;

		my $ops = start_bg($node);
		my $ops_pid = bg_backend_pid($ops);
		bg_send($ops, "DO \$\$ BEGIN LOOP $ops_sql COMMIT; END LOOP; END \$\$;\n");

		# let both work for a while (8MB of WAL)
		my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
		my $progress = wait_for_sql($node,
			"SELECT pg_current_wal_insert_lsn() - '$start'::pg_lsn > 8 * 1024 * 1024",
			30, $writer, $ops);
		if (!$progress)
		{
			bg_alive($_) for ($writer, $ops);
			my $err = ($writer->{err} || $ops->{err}
				  || 'no progress: the writer is blocked (see the server log)');
			$err =~ s/\s+/ /g;
			fail("$what: load ran before the kill: $err");
			$broken = $err;
			bg_finish($writer);
			bg_finish($ops);
			skip("$what: load failed before the kill", 4);
		}
		pass("$what: load ran before the kill");

		my $activity = $node->safe_psql('postgres', q{
SELECT string_agg(name || '=' || value, ', ' ORDER BY name) FROM nokv_stats
WHERE name IN ('value_log.gc.gc_runs', 'flush.completed', 'compaction.runs')});
		note("$what: before the kill: $activity");

		my $pid = $victim->($ops_pid);
		my $caught = wait_running($pid, 5);
		my $offset = log_position($node);
		ok(kill9($pid), "$what: kill -9 $victim_desc (pid $pid, "
			  . ($caught ? 'caught running' : 'not seen running') . ')');
		my $up = wait_crash_restart($node, $offset);
		ok($up, "$what: server restarted, nokv ready, workers back");
		bg_finish($writer);
		bg_finish($ops);

		my $log = slurp_file($node->logfile, $offset);
		like($log, qr/\(PID $pid\) was terminated by signal 9/,
			"$what: postmaster saw pid $pid killed by signal 9");
		my ($replayed) = $log =~ /re-applied (\d+) WAL records/;
		note("$what: re-applied " . ($replayed // '?') . ' WAL records at open');

		my $nokv = nokv_digest($node);
		$broken = $nokv if $nokv =~ /^error/ || !$up;
		is($nokv, mirror_digest($node, 'mirror'),
			"$what: every committed key reads back with its exact value");
	}
	return;
}
sub worker { my ($type) = @_; return sub { nokv_worker_pids($node)->{$type} }; }

scenario('flush worker',
	'PERFORM nokv_flush();',
	worker('nokv flush'), 'the flush worker during writes and nokv_flush()');

scenario('compaction worker',
	'PERFORM nokv_flush(); PERFORM nokv_flush(); PERFORM nokv_compact();',
	worker('nokv compaction'), 'the compaction worker during writes, nokv_flush() and nokv_compact()');

scenario('vlog gc worker',
	'PERFORM nokv_vlog_gc(0.01); PERFORM nokv_flush();',
	worker('nokv vlog gc'), 'the vlog gc worker during writes and nokv_vlog_gc(0.01)');

scenario('backend in nokv_compact',
	'PERFORM nokv_compact(); PERFORM nokv_flush();',
	sub { $_[0] }, 'the backend running nokv_compact()/nokv_flush()');

scenario('backend in nokv_vlog_gc',
	'PERFORM nokv_vlog_gc(0.01); PERFORM nokv_compact();',
	sub { $_[0] }, 'the backend running nokv_vlog_gc(0.01)/nokv_compact()');

# maintenance still works on the recovered engine, and a clean restart
# reads the same data back
SKIP:
{
	skip('engine broken (' . substr($broken, 0, 160) . ')', 2) if $broken;
	$node->safe_psql('postgres',
		"CALL churn($next_step, 20000, $NKEYS, 100); SELECT nokv_flush(); SELECT nokv_compact();");
	my $collected = $node->safe_psql('postgres', 'SELECT nokv_vlog_gc(0.01)');
	note("nokv_vlog_gc(0.01) after the crashes collected $collected segments");
	is(nokv_digest($node), mirror_digest($node, 'mirror'), 'after flush, compact and GC: data intact');

	$node->restart;
	wait_nokv_ready($node);
	is(nokv_digest($node), mirror_digest($node, 'mirror'), 'after a clean restart: data intact');
}

$node->stop;
done_testing();
