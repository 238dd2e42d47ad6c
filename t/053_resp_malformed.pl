
# t/053_resp_malformed.pl
#
# Malformed and hostile input never crashes or blocks the gateway and
# loses no data: bad and huge lengths, binary garbage, unbalanced quotes,
# half requests (nothing of them is written), a request a byte at a time,
# a 100 MB bulk string and a 100 MB line, a client that never reads its
# replies (output buffer limit), a query buffer filled while its replies
# wait, nokv.resp_max_clients, and the unauthenticated length limits.
# A witness connection keeps working throughout, a sentinel key keeps its
# value, and the worker is the same process at the end.

use strict;
use warnings;

use IO::Socket::INET;
use Time::HiRes qw(usleep time);
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use NokvTest;
use RespClient;

$SIG{PIPE} = 'IGNORE';

# write all of $data unless the peer closes; returns bytes written
sub write_all
{
	my ($s, $data) = @_;
	my $off = 0;
	while ($off < length($data))
	{
		my $win = '';
		vec($win, fileno($s->{sock}), 1) = 1;
		last unless select(undef, my $w = $win, undef, 10);
		my $n = syswrite($s->{sock}, $data, 1 << 20, $off);
		last unless defined $n && $n > 0;
		$off += $n;
	}
	return $off;
}

# all replies until the server closes (undef if it does not within 10 s)
sub read_until_closed
{
	my ($s) = @_;
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		my $rin = '';
		vec($rin, fileno($s->{sock}), 1) = 1;
		next unless select(my $r = $rin, undef, undef, 1);
		my $n = sysread($s->{sock}, my $d, 1 << 20);
		return $s->{buf} if !$n;
		$s->{buf} .= $d;
	}
	return undef;
}

# ---------- the node ----------

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = nokv_node('resp_bad',
	conf => "nokv.resp_listen = '127.0.0.1:$port'\n"
	  . "nokv.resp_max_clients = 24\n"
	  . "nokv.resp_client_buffer = '1MB'\n"
	  . "nokv.resp_output_buffer_limit = '4MB'\n");
my $w;
foreach (1 .. 100)
{
	$w = eval { resp_connect($port) };
	last if $w;
	usleep(100_000);
}
die "the gateway did not start" unless $w;
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'nokv resp gateway'");

my $sentinel = 'sentinel value ' . ('x' x 100);
is(resp_cmd($w, 'SET', 'sentinel', $sentinel), "+OK\r\n", 'a sentinel key');

sub server_fine
{
	my ($what) = @_;
	is(resp_cmd($w, 'GET', 'sentinel'), bulk($sentinel), "$what: the witness is served, the data intact");
}

# a request that must be answered with $reply and then the connection closed
sub bad_request
{
	my ($what, $data, $reply) = @_;
	my $s = resp_connect($port);
	write_all($s, $data);
	my $got = read_until_closed($s);
	if (ref $reply)
	{
		like($got // '<not closed>', $reply, "$what: error reply, connection closed");
	}
	else
	{
		is($got // '<not closed>', $reply, "$what: error reply, connection closed");
	}
	server_fine($what);
}

bad_request('negative bulk length', "*2\r\n\$3\r\nGET\r\n\$-5\r\n",
	"-ERR Protocol error: invalid bulk length\r\n");
bad_request('multibulk count beyond int', "*99999999999\r\n",
	"-ERR Protocol error: invalid multibulk length\r\n");
bad_request('non-numeric multibulk count', "*x1\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
bad_request('a number where a bulk belongs', "*2\r\n:1\r\n", "-ERR Protocol error: expected '\$', got ':'\r\n");
bad_request('a 100 MB bulk length', "*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$104857600\r\n",
	"-ERR Protocol error: invalid bulk length\r\n");
bad_request('unbalanced quotes', "SET k \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
bad_request('a 70 kB bulk-count line', "*1\r\n\$" . ('9' x 70000),
	"-ERR Protocol error: too big bulk count string\r\n");
bad_request('commands, then garbage', "*1\r\n\$4\r\nPING\r\nSET a\"b c\r\n",
	"+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n");

{
	my $s = resp_connect($port);
	write_all($s, "*-5\r\n*0\r\n\r\n   \r\n");
	is(resp_cmd($s, 'PING'), "+PONG\r\n", 'empty and negative-count requests are skipped, as Redis does');
}

# a 100 MB line: refused once 64 kB arrived without a newline
{
	my $s = resp_connect($port);
	my $chunk = 'a' x (1 << 20);
	my $sent = 0;
	for (1 .. 100)
	{
		my $n = write_all($s, $chunk);
		$sent += $n;
		last if $n < length($chunk);
	}
	my $got = read_until_closed($s);
	is($got, "-ERR Protocol error: too big inline request\r\n", 'a 100 MB line: too big inline request');
	ok($sent < 100 * (1 << 20), sprintf('the connection ended before all 100 MB (%.1f MB sent)', $sent / (1 << 20)));
	server_fine('100 MB line');
}

# a 100 MB bulk string within a declared length the server accepts
# cannot exist here (the largest value is ~2 MB with a 4 MB memtable), so
# the largest one it accepts, sent in pieces, and one byte more
my $max = 0;
{
	my $info = resp_cmd($w, 'CONFIG', 'GET', 'proto-max-bulk-len');
	($max) = $info =~ /\$\d+\r\n(\d+)\r\n$/;
	ok($max > 1_000_000, "proto-max-bulk-len follows nokv's largest value ($max)");
	my $s = resp_connect($port);
	# nokv_kv_max_value_size() is a few bytes more generous than the
	# engine's batch limit, so stay 1 kB below it
	my $len = $max - 1024;
	my $val = 'v' x $len;
	my $req = "*3\r\n\$3\r\nSET\r\n\$1\r\nB\r\n\$$len\r\n$val\r\n";
	for (my $off = 0; $off < length($req); $off += 100_000)
	{
		write_all($s, substr($req, $off, 100_000));
		usleep(2000);
	}
	is(resp_read($s), "+OK\r\n", 'a 2 MB bulk string, arriving in pieces');
	is($node->safe_psql('postgres', "SELECT length(nokv_get('B'))"), $len, 'stored whole');
	bad_request('one byte over the bulk limit', "*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$" . ($max + 1) . "\r\n",
		"-ERR Protocol error: invalid bulk length\r\n");
	is(resp_cmd($w, 'APPEND', 'B', 'm' x 2000), "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
		'APPEND past the largest value is refused');
	is($node->safe_psql('postgres', "SELECT length(nokv_get('B'))"), $len, 'and changes nothing');
}

# half requests: nothing of them happens
foreach my $half ("*3\r\n\$3\r\nSET\r\n\$4\r\nhalf\r\n\$5\r\nval", "*3\r\n\$3\r\nSET\r\n\$4\r\nhalf\r\n",
	"*3\r\n\$3\r\nSET\r\n\$4", "*3\r\n", "SET half value")
{
	my $s = resp_connect($port);
	write_all($s, $half);
	usleep(50_000);
	close $s->{sock};
}
usleep(200_000);
is(resp_cmd($w, 'EXISTS', 'half'), ":0\r\n", 'half requests, then a close: nothing written');

# a byte at a time
{
	my $s = resp_connect($port);
	my $req = "*3\r\n\$3\r\nSET\r\n\$4\r\nslow\r\n\$5\r\nvalue\r\n" . "GET slow\r\n";
	foreach my $ch (split //, $req)
	{
		syswrite($s->{sock}, $ch);
		usleep(2000);
	}
	is(resp_read($s) . resp_read($s), "+OK\r\n" . bulk('value'), 'requests a byte at a time');
}

# binary garbage (fixed seed): answered or refused, never a crash
srand(20261121);
for my $round (1 .. 20)
{
	my $s = resp_connect($port);
	my $junk = join('', map { chr(int(rand(256))) } 1 .. 4096);
	$junk = '*' . $junk if $round % 2;
	write_all($s, $junk);
	shutdown($s->{sock}, 1);
	read_until_closed($s);
}
server_fine('20 x 4 kB of random bytes');

# ---------- clients that do not read ----------

# pipelined GETs of a 1 MB value, never read: the output limit ends it
resp_cmd($w, 'SET', 'mb', 'm' x (1 << 20));
my $before = $node->safe_psql('postgres', "SELECT value FROM nokv_stats WHERE name = 'resp.buffer_limit_closes'");
{
	my $s = resp_connect($port);
	my $req = resp_enc('GET', 'mb') x 200;
	write_all($s, $req);
	usleep(500_000);
	server_fine('a client not reading 200 MB of replies');
	ok(defined read_until_closed($s), 'that client is disconnected');
}
# a pipeline far larger than the query buffer while replies wait
{
	my $s = resp_connect($port);
	my $req = resp_enc('GET', 'mb') x 300_000;
	my $t0 = time();
	my $sent = write_all($s, $req);
	ok($sent < length($req), sprintf('a 5 MB pipeline never read: cut off after %.1f MB', $sent / (1 << 20)));
	ok(time() - $t0 < 30, 'without stalling');
	server_fine('a client filling its query buffer');
}
my $after = $node->safe_psql('postgres', "SELECT value FROM nokv_stats WHERE name = 'resp.buffer_limit_closes'");
ok($after >= $before + 2, "buffer limit closes counted ($before -> $after)");

# ---------- max clients ----------

{
	my @c = map { resp_connect($port) } 1 .. 23;
	is(resp_cmd($c[-1], 'PING'), "+PONG\r\n", 'connections up to nokv.resp_max_clients');
	my $extra = resp_connect($port);
	is(read_until_closed($extra), "-ERR max number of clients reached\r\n", 'one more is refused, as Redis does');
	close $_->{sock} foreach @c;
	usleep(300_000);
	my $again = resp_connect($port);
	is(resp_cmd($again, 'PING'), "+PONG\r\n", 'after they close, clients connect again');
	like($node->safe_psql('postgres', "SELECT value FROM nokv_stats WHERE name = 'resp.connections_rejected'"),
		qr/^[1-9]/, 'the refusal is counted');
}

# ---------- unauthenticated limits ----------

$node->safe_psql('postgres', "ALTER SYSTEM SET nokv.resp_password = 'pw'; SELECT pg_reload_conf();");
usleep(500_000);
bad_request('11 arguments before AUTH', "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n");
bad_request('a 16 kB bulk before AUTH', "*2\r\n\$4\r\nAUTH\r\n\$16385\r\n",
	"-ERR Protocol error: unauthenticated bulk length\r\n");
$node->safe_psql('postgres', "ALTER SYSTEM RESET nokv.resp_password; SELECT pg_reload_conf();");
usleep(500_000);

# ---------- the same worker, nothing lost ----------

is($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'nokv resp gateway'"),
	$worker_pid, 'the gateway worker never restarted');
is($node->safe_psql('postgres', "SELECT nokv_get('sentinel')"), $sentinel, 'the sentinel through SQL');
ok($node->safe_psql('postgres', "SELECT value FROM nokv_stats WHERE name = 'resp.protocol_errors'") >= 10,
	'protocol errors counted');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');

$node->stop;
done_testing();
