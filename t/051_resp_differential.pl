
# t/051_resp_differential.pl
#
# Differential test of the RESP gateway against a real redis-server 7: the
# same command scripts (valid commands, every option combination the
# gateway implements, wrong arities, bad numbers, syntax errors, inline
# commands with quotes and escapes, protocol errors, RESP3) run on one
# connection each against a redis-server started here (a free port, a
# temporary directory, --save '' --appendonly no --databases 1) and
# against the gateway, and every reply must be byte for byte the same.
# The only masked differences are HELLO's server version and client id.
# After a protocol error both servers must have closed the connection.
# Skipped when redis-server is not installed.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(usleep);
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use NokvTest;
use RespClient;

my $redis_server = `command -v redis-server 2>/dev/null`;
chomp $redis_server;
plan skip_all => 'redis-server is not installed' unless $redis_server;

# \r \n \t \\ \" and \xNN
sub unescape
{
	my ($x) = @_;
	$x =~ s/\\(x[0-9a-fA-F]{2}|.)/
	  my $e = $1;
	  $e eq 'r' ? "\r" : $e eq 'n' ? "\n" : $e eq 't' ? "\t" :
	  length($e) == 3 ? chr(hex(substr($e, 1))) : $e/ge;
	return $x;
}

# a script line: words and "quoted words" as one RESP array, or RAW bytes
# (RAWn: bytes holding n requests)
sub encode_line
{
	my ($line) = @_;
	return unescape($1) if $line =~ /^RAW\d* (.*)$/s;
	my @args;
	while ($line =~ /\G\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))/g)
	{
		push @args, defined $1 ? unescape($1) : $2;
	}
	return resp_enc(@args);
}

# replies of one script on one fresh connection; CLOSED checks for EOF
sub run_script
{
	my ($port, @lines) = @_;
	my $s = resp_try_connect($port) or die "connect $port: $!";
	my @out;
	foreach my $line (@lines)
	{
		if ($line eq 'CLOSED')
		{
			my $rin = '';
			vec($rin, fileno($s->{sock}), 1) = 1;
			my $eof = 0;
			if (select(my $r = $rin, undef, undef, 5))
			{
				my $n = sysread($s->{sock}, my $d, 65536);
				$eof = !$n;
			}
			push @out, $eof ? '<closed>' : '<open>';
			next;
		}
		if ($line =~ /^SLEEP (\d+)$/)
		{
			usleep($1 * 1000);
			next;
		}
		syswrite($s->{sock}, encode_line($line));
		my $reply = '';
		# RAWn: a line of n requests, n replies
		for (1 .. ($line =~ /^RAW(\d+) / ? $1 : 1))
		{
			$reply .= resp_read($s) // '<no reply>';
		}
		# HELLO: the server version and the client id differ by design
		$reply =~ s/(\$7\r\nversion\r\n)\$\d+\r\n[^\r]*\r\n/$1<version>/;
		$reply =~ s/(\$2\r\nid\r\n):\d+\r\n/$1<id>/;
		push @out, $reply;
	}
	close $s->{sock};
	return @out;
}

# ---------- the scripts ----------

my @scripts;
{
	my ($name, @lines);
	foreach my $l (split /\n/, do { local $/; <DATA> })
	{
		next if $l =~ /^\s*(#.*)?$/;
		if ($l =~ /^=== (.*)$/)
		{
			push @scripts, [ $name, @lines ] if defined $name;
			($name, @lines) = ($1);
			next;
		}
		push @lines, $l;
	}
	push @scripts, [ $name, @lines ] if defined $name;
}

# ---------- the servers ----------

my $redis_port = PostgreSQL::Test::Cluster::get_free_port();
my $redis_dir = tempdir(CLEANUP => 1);
system($redis_server, '--port', $redis_port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
	'--databases', '1', '--daemonize', 'yes', '--dir', $redis_dir,
	'--pidfile', "$redis_dir/redis.pid", '--logfile', "$redis_dir/redis.log") == 0
  or die "could not start redis-server";
my $probe;
foreach (1 .. 100)
{
	$probe = resp_try_connect($redis_port);
	last if $probe;
	usleep(50_000);
}
die "redis-server did not start" unless $probe;
close $probe->{sock};

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = nokv_node('resp_diff', conf => "nokv.resp_listen = '127.0.0.1:$port'\n");
my $ready;
foreach (1 .. 100)
{
	$ready = resp_try_connect($port);
	last if $ready;
	usleep(100_000);
}
die "the gateway did not start" unless $ready;
close $ready->{sock};

my $total = 0;
foreach my $script (@scripts)
{
	my ($name, @lines) = @$script;
	my @want = run_script($redis_port, @lines);
	my @got = run_script($port, @lines);
	my @diffs;
	my $cmds = 0;
	for my $i (0 .. $#lines)
	{
		next if $lines[$i] =~ /^SLEEP/;
		my $w = shift @want // '<none>';
		my $g = shift @got // '<none>';
		$cmds++;
		next if $w eq $g;
		s/\r\n/\\r\\n/g for ($w, $g);
		push @diffs, "$lines[$i]\n    redis: $w\n    nokv:  $g";
	}
	$total += $cmds;
	ok(!@diffs, "$name: $cmds replies identical") or diag(join("\n", @diffs));
}
note("$total replies compared");

# the keys both hold at the end, compared as sorted lists
sub all_keys
{
	my ($p) = @_;
	my $s = resp_try_connect($p);
	syswrite($s->{sock}, resp_enc('KEYS', '*'));
	my $r = resp_read($s);
	my @keys;
	$r =~ s/^\*\d+\r\n//;
	while ($r =~ s/^\$(\d+)\r\n//)
	{
		push @keys, substr($r, 0, $1);
		$r = substr($r, $1 + 2);
	}
	return sort @keys;
}
my @keys_redis = all_keys($redis_port);
my @keys_nokv = all_keys($port);
is_deeply(\@keys_nokv, \@keys_redis, 'KEYS * holds the same keys (' . scalar(@keys_redis) . ')');

system('redis-cli', '-p', $redis_port, 'shutdown', 'nosave');
$node->stop;
done_testing();

__DATA__
=== connection
PING
PING hello
PING a b
ECHO hi
ECHO
ECHO "multi word \x00 binary"
SELECT 0
SELECT 1
SELECT x
SELECT -1
SELECT 99999999999
QUIT
CLOSED

=== unknown commands and arities
FOO
FOO bar baz "with space"
FOO "0123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789" x
GET
SET x
GETRANGE x 1
DBSIZE x
KEYS
TYPE
TTL
MSET a
EXPIRE x
CLIENT
COMMAND COUNT x
CONFIG

=== strings: SET options
GET nokey
SET k1 v1
GET k1
SET k1 v2 NX
SET k1 v3 XX
GET k1
SET k2 v NX XX
SET k2 v XX NX
SET k2 v EX 0
SET k2 v EX -5
SET k2 v PX 0
SET k2 v EX abc
SET k2 v EX
SET k2 v EX 10 PX 100
SET k2 v EX 10 EX 20
TTL k2
SET k2 v KEEPTTL EX 10
SET k2 v EX 10 KEEPTTL
SET k2 v PERSIST
SET k2 v FOO
SET k2 v EX 9223372036854775807
SET k2 v PX 9223372036854775807
SET k2 v EXAT 9223372036854775807
SET k1 new GET
SET nothere x GET
SET k1 again NX GET
SET k3 v3 XX GET
GET k3
SET k2 v2 KEEPTTL
TTL k2
SET k2 v2
TTL k2
SET k5 v PXAT 1
GET k5
SET k5 v EXAT 1
EXISTS k5
SETNX k1 x
SETNX k6 x
SETEX k7 100 v
TTL k7
SETEX k7 0 v
SETEX k7 abc v
SETEX k7 9223372036854775807 v
PSETEX k8 100000 v
PSETEX k8 -1 v
GETSET k1 g
GETSET nokey2 g
GET nokey2
TTL k7
GETSET k7 g
TTL k7
GETDEL nokey2
GETDEL nokey2
GETEX k1
GETEX k1 EX 100
TTL k1
GETEX k1 PERSIST
TTL k1
GETEX k1 NX
GETEX k1 EX 0
GETEX k1 PERSIST EX 10
GETEX missing EX abc
GETEX k1 PXAT 1
GET k1
SET "" emptykey
GET ""
SET ek ""
GET ek
STRLEN ek
SET k "\x00\xff\r\n binary"
GET k

=== strings: multi-key, append, ranges
MGET k1 k6 k7 nokey
MSET a 1 b 2 c 3
MGET a b c
MSET a 1 b
MSETNX a 1 z 2
MSETNX y 1 z 2
MGET y z
MSETNX y 1
MSETNX q 1 q 2
GET q
APPEND ap hello
APPEND ap " world"
GET ap
STRLEN ap
STRLEN nokey
GETRANGE ap 0 4
GETRANGE ap -5 -1
GETRANGE ap 5 2
GETRANGE ap -1 -5
GETRANGE ap 0 100
GETRANGE ap -100 -50
GETRANGE ap 100 200
GETRANGE nokey 0 1
GETRANGE ap x 1
GETRANGE ap 0 9223372036854775808
SUBSTR ap 1 3
SETRANGE ap 6 WORLD
GET ap
SETRANGE ap 20 x
GET ap
SETRANGE newr 3 abc
GET newr
SETRANGE newr2 0 ""
EXISTS newr2
SETRANGE ap 0 ""
SETRANGE ap -1 x
SETRANGE ap x x
SETRANGE ap 9223372036854775807 x
SETRANGE ap 4294967296 x

=== counters
INCR n
INCR n
INCRBY n 10
DECR n
DECRBY n 5
INCRBY n abc
INCRBY n 1.5
INCRBY n ""
SET ap text
INCR ap
SET big 9223372036854775807
INCR big
INCRBY big 0
SET small -9223372036854775808
DECR small
DECRBY n -9223372036854775808
INCRBY n -9223372036854775808
INCRBY n 9223372036854775808
SET sp " 1"
INCR sp
SET lz 01
INCR lz
SET neg0 -0
INCR neg0
SET pl +1
INCR pl
SET long 123456789012345678901
INCR long
INCRBYFLOAT f 1.5
INCRBYFLOAT f 0.1
INCRBYFLOAT f -1.6
INCRBYFLOAT f abc
INCRBYFLOAT ap 1
INCRBYFLOAT f 5e3
INCRBYFLOAT f 1e400
INCRBYFLOAT f 1.7976931348623157e308
SET f2 3.0
INCRBYFLOAT f2 1
SET f3 1.23e2
INCRBYFLOAT f3 0
INCRBYFLOAT f4 " 1"
INCRBYFLOAT f4 inf
INCRBYFLOAT f4 nan
INCRBYFLOAT f4 0x10
INCRBYFLOAT f5 -0.0
INCRBYFLOAT f6 3.14159265358979323846
INCRBYFLOAT f6 -3
SET n2 5
SET n2 7 KEEPTTL
EXPIRE n2 100
INCR n2
TTL n2
APPEND n2 0
TTL n2

=== keys and expiry
SET k6 x
DEL a b nokey
MSET a 1 b 2 c 3
DEL a a b nokey
UNLINK c
EXISTS k6 k6 nokey
TOUCH k6 nokey
TYPE k6
TYPE nokey
EXPIRE k6 100
TTL k6
PTTL nokey
EXPIRE k6 100 NX
EXPIRE k6 200 XX
EXPIRE k6 50 GT
EXPIRE k6 500 GT
EXPIRE k6 50 LT
TTL k6
EXPIRE k6 100 NX XX
EXPIRE k6 100 GT LT
EXPIRE k6 100 FOO
EXPIRE k6 abc
EXPIRE k6 abc FOO
EXPIRE nokey 100
PERSIST k6
PERSIST k6
PERSIST nokey
TTL k6
EXPIRE k6 100 XX
EXPIRE k6 100 GT
EXPIRE k6 100 LT
TTL k6
EXPIRE k6 -1
EXISTS k6
SET e1 v
PEXPIRE e1 0
GET e1
SET e1 v
EXPIREAT e1 1
GET e1
SET e1 v
EXPIRE e1 9223372036854775807
EXPIRE e1 9223372036854775
EXPIRE e1 -9223372036854775808
PEXPIRE e1 9223372036854775807
SET e2 v
EXPIRETIME e2
EXPIRETIME nokey
PEXPIRETIME nokey
PEXPIREAT e2 99999999999999
PEXPIRETIME e2
EXPIRETIME e2
EXPIREAT e2 99999999999
EXPIRETIME e2
SET r1 v EX 100
RENAME nokey x
RENAME r1 r1new
GET r1new
TTL r1new
EXISTS r1
RENAME r1new r1new
RENAME nokey nokey
RENAMENX r1new e2
RENAMENX r1new r2
RENAMENX r2 r2
RENAMENX nokey x
SET t1 v PX 150
SLEEP 300
GET t1
EXISTS t1
TTL t1
SCAN x
SCAN -1x
SCAN 0 COUNT 0
SCAN 0 COUNT x
SCAN 0 FOO
SCAN 0 MATCH
SCAN 0 COUNT 1 MATCH
KEYS nokey*
KEYS r2
KEYS r[0-9]
KEYS "r\\2"
KEYS e1
DBSIZE

=== transactions
MULTI
SET m1 1
INCR m1
GET m1
INCR nope nope
EXEC
MULTI
SET m1 x
INCR m1
GET m1
EXEC
MULTI
MULTI
SET m2
EXEC
EXEC
DISCARD
MULTI
WATCH x
DISCARD
MULTI
FOO bar
EXEC
MULTI
PING
ECHO x
SELECT 1
EXEC
WATCH m1
UNWATCH
WATCH
WATCH m1 m1 nokey
MULTI
GET m1
EXEC
MULTI
DISCARD
EXEC
WATCH m1
SET m1 changed
MULTI
GET m1
EXEC
MULTI
EXEC

=== client and auth
AUTH x
AUTH default x
AUTH a b
AUTH a b c
CLIENT SETNAME
CLIENT SETNAME "a b"
CLIENT SETNAME "x\ny"
CLIENT SETNAME myname
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
CLIENT FOO
CLIENT GETNAME x
CLIENT ID x
CLIENT NO-EVICT on
CLIENT NO-EVICT maybe
CONFIG GET appendonly
CONFIG GET nosuchthing
CONFIG FOO
HELLO 4
HELLO x
HELLO 2 FOO
HELLO 2 AUTH default
HELLO 2 AUTH a b
HELLO 2 SETNAME "a b"
HELLO 2 SETNAME hi
CLIENT GETNAME
HELLO
HELLO 2

=== resp3
HELLO 3
GET nokey
SET r3 v
GET r3
MGET r3 nokey
CLIENT GETNAME
MULTI
GET r3
EXEC
WATCH r3
SET r3 w
MULTI
EXEC
SET r3 v NX
CONFIG GET appendonly
HELLO 2
GET nokey
RESET
GET nokey

=== inline commands
RAW PING\r\n
RAW   set  inl   "a b\x41\n"  \r\n
GET inl
RAW set q2 'it\\'s'\r\n
GET q2
RAW set q3 "tab\\t \\x4g \\"q\\" \\\\"\r\n
GET q3
RAW \r\n
RAW get inl\n
RAW *0\r\nPING\r\n
RAW *-1\r\nPING\r\n
RAW echo "x"y\r\n
CLOSED

=== protocol error: unbalanced quotes
RAW echo "unbalanced\r\n
CLOSED

=== protocol error: unbalanced single quote
RAW echo 'x\r\n
CLOSED

=== protocol error: bulk length
RAW *2\r\n$3\r\nGET\r\n$-1\r\n
CLOSED

=== protocol error: multibulk length
RAW *abc\r\n
CLOSED

=== protocol error: expected dollar
RAW *3\r\n:1\r\n
CLOSED

=== protocol error: huge multibulk
RAW *2147483648\r\n
CLOSED

=== protocol error: huge bulk
RAW *1\r\n$999999999999\r\n
CLOSED

=== pipelined commands before a protocol error still run
RAW3 *1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$2\r\npe\r\n*1\r\n$x\r\n
CLOSED

=== after the pipeline
GET pe
