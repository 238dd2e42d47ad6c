
# t/052_resp_concurrency.pl
#
# Many clients at once on the gateway's one event loop: redis-benchmark's
# INCR from 20 connections (plain and pipelined) loses no update; clients
# running optimistic WATCH/GET/MULTI/SET/EXEC increments in parallel, with
# retries, reach the exact total; SQL writes racing WATCH make EXEC return
# nil rather than lose them; pipelined SET/GET from 50 connections; 300
# connections at once; and afterwards SQL sees exactly what RESP wrote,
# also after a crash (the round's multi-key WAL records replayed).

use strict;
use warnings;

use IO::Socket::INET;
use IPC::Run qw(run);
use POSIX ();
use Time::HiRes qw(usleep);
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use NokvTest;
use RespClient;

# ---------- the node ----------

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = nokv_node('resp_conc', conf => "nokv.resp_listen = '127.0.0.1:$port'\n");
my $probe;
foreach (1 .. 100)
{
	$probe = eval { resp_connect($port) };
	last if $probe;
	usleep(100_000);
}
die "the gateway did not start" unless $probe;

sub bench
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	run([ 'redis-benchmark', '-p', $port, '-q', @args ], '>', \$out, '2>', \$err)
	  or diag("redis-benchmark @args failed: $err");
	return $out . $err;
}

# ---------- INCR from many connections ----------

my $out = bench('-t', 'incr', '-n', '20000', '-c', '20');
unlike($out, qr/error|ERR/i, 'redis-benchmark INCR ran without errors');
is(resp_cmd($probe, 'GET', 'counter:__rand_int__'), bulk('20000'), '20 connections x INCR: no update lost');
$out = bench('-t', 'incr', '-n', '20000', '-c', '20', '-P', '16');
is(resp_cmd($probe, 'GET', 'counter:__rand_int__'), bulk('40000'), 'and pipelined (-P 16)');
is($node->safe_psql('postgres', "SELECT nokv_get('counter:__rand_int__')"), '40000', 'SQL reads the same count');

# ---------- optimistic increments with WATCH ----------

my $workers = 4;
my $per = 150;
my @pids;
for my $w (1 .. $workers)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $s = resp_connect($port);
		my $done = 0;
		my $retries = 0;
		while ($done < $per)
		{
			resp_cmd($s, 'WATCH', 'opt');
			my $v = resp_cmd($s, 'GET', 'opt');
			my $n = $v =~ /^\$\d+\r\n(\d+)\r\n$/ ? $1 : 0;
			resp_cmd($s, 'MULTI');
			resp_cmd($s, 'SET', 'opt', $n + 1);
			my $r = resp_cmd($s, 'EXEC');
			if ($r eq "*1\r\n+OK\r\n") { $done++ }
			elsif ($r eq "*-1\r\n") { $retries++ }
			else { print STDERR "unexpected EXEC reply: $r\n"; POSIX::_exit(1); }
		}
		resp_cmd($s, 'INCRBY', 'opt_retries', $retries);
		# not exit: the test framework's END blocks would stop the node
		POSIX::_exit(0);
	}
	push @pids, $pid;
}
my $failed = 0;
foreach (@pids)
{
	waitpid($_, 0);
	$failed++ if $? != 0;
}
is($failed, 0, 'the WATCH clients finished');
is(resp_cmd($probe, 'GET', 'opt'), bulk($workers * $per),
	"$workers clients x $per WATCH/MULTI/EXEC increments: exact total");
my $retries = resp_cmd($probe, 'GET', 'opt_retries');
note("EXEC retries: $retries");

# SQL increments racing a WATCH client: every SQL update survives
resp_cmd($probe, 'SET', 'mixed', '0');
my $pid = fork();
if ($pid == 0)
{
	my $s = resp_connect($port);
	my $done = 0;
	while ($done < 200)
	{
		resp_cmd($s, 'WATCH', 'mixed');
		my $v = resp_cmd($s, 'GET', 'mixed');
		my $n = $v =~ /^\$\d+\r\n(\d+)\r\n$/ ? $1 : 0;
		resp_cmd($s, 'MULTI');
		resp_cmd($s, 'SET', 'mixed', $n + 1);
		$done++ if resp_cmd($s, 'EXEC') eq "*1\r\n+OK\r\n";
	}
	POSIX::_exit(0);
}
# a read-modify-write in SQL is safe under REPEATABLE READ (40001 on a race): retry those
my $sql_done = 0;
my $sql_retries = 0;
while ($sql_done < 100)
{
	my ($rc, $o, $e) = $node->psql('postgres',
		"BEGIN ISOLATION LEVEL REPEATABLE READ; "
		  . "SELECT nokv_put('mixed', (coalesce(nokv_get('mixed'), '0')::bigint + 1)::text); COMMIT;");
	if ($rc == 0 && $e !~ /ERROR/) { $sql_done++ }
	elsif ($e =~ /could not serialize/) { $sql_retries++ }
	else { diag("sql increment failed: $e"); last; }
}
waitpid($pid, 0);
is(resp_cmd($probe, 'GET', 'mixed'), bulk(300), "200 WATCH increments and 100 SQL increments: 300 ($sql_retries SQL retries)");

# ---------- pipelined SET/GET from 50 connections ----------

$out = bench('-t', 'set,get', '-n', '20000', '-c', '50', '-P', '16', '-d', '100', '-r', '1000');
unlike($out, qr/error|ERR/i, 'redis-benchmark SET/GET -c 50 -P 16 without errors');
like($out, qr/SET: [\d.]+ requests per second/, 'SET throughput reported');
my $dbsize = resp_cmd($probe, 'DBSIZE');
my ($keys) = $dbsize =~ /^:(\d+)/;
is($node->safe_psql('postgres', "SELECT count(*) FROM nokv_scan(NULL::text, NULL::text)"), $keys,
	"DBSIZE ($keys) matches nokv_scan");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM nokv_scan('key:', 'key;') WHERE length(value) = 100"),
	$node->safe_psql('postgres', "SELECT count(*) FROM nokv_scan('key:', 'key;')"),
	'every benchmark value has 100 bytes');

# ---------- many connections ----------

my @conns;
for (1 .. 300)
{
	my $s = resp_connect($port);
	syswrite($s->{sock}, resp_enc('INCR', 'conns'));
	push @conns, $s;
}
my $replies = 0;
foreach my $s (@conns)
{
	$replies++ if (resp_read($s) // '') =~ /^:\d+\r\n$/;
}
is($replies, 300, '300 connections at once, each answered');
is(resp_cmd($probe, 'GET', 'conns'), bulk(300), 'their increments');
close $_->{sock} foreach @conns;
usleep(300_000);
like($node->safe_psql('postgres', "SELECT value FROM nokv_stats WHERE name = 'resp.connected_clients'"),
	qr/^[1-9]$/, 'closed connections leave the count');
$out = bench('-t', 'ping', '-n', '20000', '-c', '200');
unlike($out, qr/error|ERR/i, 'redis-benchmark PING from 200 connections');

# ---------- acknowledged batched writes survive a crash ----------

# with synchronous_commit on (the default here), a reply means the round's
# batches (one WAL record of many keys each) are on disk; redo re-applies
# them after an immediate stop
my $w = resp_connect($port);
my $nk = 1000;
syswrite($w->{sock},
	join('', map { resp_enc('SET', "crash$_", "v$_") } 1 .. $nk)
	  . join('', map { resp_enc('INCRBY', "crashn" . ($_ % 10), $_) } 1 .. $nk)
	  . resp_enc('MSET', map { ("crashm$_", "m$_") } 1 .. 300));
my $acked = 0;
for (1 .. 2 * $nk + 1) { $acked++ if defined resp_read($w); }
is($acked, 2 * $nk + 1, 'a pipeline of blind writes and increments, all answered');
$node->stop('immediate');
$node->start;
$node->poll_query_until('postgres', "SELECT count(*) FROM nokv_scan('crash', 'crasi')", $nk + 10 + 300)
  or diag('the keys after the restart: '
	  . $node->safe_psql('postgres', "SELECT count(*) FROM nokv_scan('crash', 'crasi')"));
is($node->safe_psql('postgres',
		"SELECT count(*) FROM nokv_scan('crash', 'crasi') WHERE key ~ '^crash[0-9]+\$' AND value = 'v' || substr(key, 6)"),
	$nk, 'every acknowledged SET after a crash');
my $sum = 0;
$sum += $_ foreach 1 .. $nk;
is($node->safe_psql('postgres', "SELECT sum(value::bigint) FROM nokv_scan('crashn', 'crasho')"),
	$sum, 'every acknowledged increment after a crash');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM nokv_scan('crashm', 'crashn') WHERE value = 'm' || substr(key, 7)"),
	300, 'the MSET after a crash');

$node->stop;
done_testing();
