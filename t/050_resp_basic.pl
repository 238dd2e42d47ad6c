
# t/050_resp_basic.pl
#
# The RESP gateway end to end: the worker in pg_stat_activity, redis-cli
# against it (including its interactive start-up, COMMAND DOCS), the same
# keys through SQL and RESP both ways (binary-safe), TTL expiry, a large
# pipeline, WATCH/MULTI/EXEC aborted by another client and by SQL, a key
# locked by an open SQL transaction (lock timeout, then the worker serves
# again), the round's write batch (writes, increments and reads of one
# packet seeing each other, large values, a locked key failing alone),
# RESP3, AUTH with nokv.resp_password (hidden from non-superusers), the
# idle timeout, INFO and the nokv_stats rows.

use strict;
use warnings;

use IO::Socket::INET;
use IPC::Run qw(run);
use Time::HiRes qw(usleep time);
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use NokvTest;
use RespClient;

# ---------- the node ----------

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = nokv_node('resp_basic',
	conf => "nokv.resp_listen = '127.0.0.1:$port'\nnokv.resp_lock_timeout = 500\n");

$node->poll_query_until('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'nokv resp gateway'", '1')
  or die "the gateway worker did not start";
$node->wait_for_log(qr/nokv resp gateway listening on 127\.0\.0\.1:$port/);
pass('the gateway worker runs and is in pg_stat_activity');

sub cli
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	run([ 'redis-cli', '-p', $port, @args ], '<', \$in, '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

is(cli('', 'ping'), 'PONG', 'redis-cli PING');
is(cli('', 'set', 'greeting', 'hello'), 'OK', 'redis-cli SET');
is(cli('', 'get', 'greeting'), 'hello', 'redis-cli GET');
# redis-cli reading commands from stdin first sends COMMAND DOCS
is(cli("incr visits\nincr visits\nget visits\n"), "1\n2\n2", 'redis-cli with commands on stdin (COMMAND DOCS at start)');

# ---------- the same namespace as SQL ----------

is($node->safe_psql('postgres', "SELECT nokv_get('greeting')"), 'hello', 'a key SET through RESP reads through nokv_get');
$node->safe_psql('postgres', "SELECT nokv_put('from_sql', 'written by sql')");
is(cli('', 'get', 'from_sql'), 'written by sql', 'a key written by nokv_put reads through GET');
$node->safe_psql('postgres', "SELECT nokv_delete('from_sql')");
is(cli('', 'exists', 'from_sql'), '0', 'nokv_delete is seen by EXISTS');

my $c = resp_connect($port);
my $bin_key = "bin\x00key\r\n";
my $bin_val = join('', map { chr($_) } 0 .. 255);
is(resp_cmd($c, 'SET', $bin_key, $bin_val), "+OK\r\n", 'binary key and value');
is(resp_cmd($c, 'GET', $bin_key), bulk($bin_val), 'binary value read back');
is($node->safe_psql('postgres',
		"SELECT md5(nokv_get('\\x62696e006b65790d0a'::bytea))"),
	Digest::MD5::md5_hex($bin_val), 'the binary value through nokv_get(bytea)');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM nokv_scan('bin'::bytea, 'bio'::bytea)"), '1', 'nokv_scan sees the binary key');

# ---------- TTL ----------

is(resp_cmd($c, 'SET', 'short', 'lived', 'PX', '400'), "+OK\r\n", 'SET PX');
is(resp_cmd($c, 'GET', 'short'), bulk('lived'), 'readable before its expiry');
my $pttl = resp_cmd($c, 'PTTL', 'short');
ok($pttl =~ /^:(\d+)\r\n$/ && $1 > 0 && $1 <= 400, "PTTL counts down ($pttl)");
is($node->safe_psql('postgres', "SELECT expires_at IS NOT NULL FROM nokv_scan('short', 'shoru')"),
	't', 'SQL sees the expiry');
usleep(700_000);
is(resp_cmd($c, 'GET', 'short'), "\$-1\r\n", 'GET after the expiry: nil');
is(resp_cmd($c, 'TTL', 'short'), ":-2\r\n", 'TTL after the expiry: -2');
is($node->safe_psql('postgres', "SELECT nokv_get('short') IS NULL"), 't', 'expired for SQL too');
is(resp_cmd($c, 'SET', 'e', 'v'), "+OK\r\n", 'SET');
is(resp_cmd($c, 'TTL', 'e'), ":-1\r\n", 'TTL of a key without expiry: -1');
is(resp_cmd($c, 'EXPIRE', 'e', '0'), ":1\r\n", 'EXPIRE 0');
is(resp_cmd($c, 'EXISTS', 'e'), ":0\r\n", 'EXPIRE with a non-positive ttl deletes the key');
$node->safe_psql('postgres', "SELECT nokv_put('sqlttl', 'x', interval '1 hour')");
my $ttl = resp_cmd($c, 'TTL', 'sqlttl');
ok($ttl =~ /^:(\d+)\r\n$/ && $1 > 3590 && $1 <= 3600, "a TTL set through SQL is seen by TTL ($ttl)");

# ---------- pipelining ----------

my $n = 2000;
my $batch = join('', map { resp_enc('SET', "p$_", "v$_") } 1 .. $n)
  . join('', map { resp_enc('GET', "p$_") } 1 .. $n)
  . resp_enc('INCRBY', 'pcount', $n);
syswrite($c->{sock}, $batch);
my $ok = 0;
for (1 .. $n) { $ok++ if (resp_read($c) // '') eq "+OK\r\n"; }
for (1 .. $n) { $ok++ if (resp_read($c) // '') eq bulk("v$_"); }
is($ok, 2 * $n, "$n pipelined SETs then GETs, answered in order");
is(resp_read($c), ":$n\r\n", 'the last pipelined reply');
is($node->safe_psql('postgres', "SELECT count(*) FROM nokv_scan('p', 'q')"), $n + 1,
	'the pipelined keys through nokv_scan');

# ---------- WATCH / MULTI / EXEC ----------

my $a = resp_connect($port);
my $b = resp_connect($port);
resp_cmd($a, 'SET', 'w', '1');
is(resp_cmd($a, 'WATCH', 'w'), "+OK\r\n", 'WATCH');
resp_cmd($b, 'SET', 'w', 'changed by b');
is(resp_cmd($a, 'MULTI'), "+OK\r\n", 'MULTI');
is(resp_cmd($a, 'SET', 'w', 'from a'), "+QUEUED\r\n", 'queued');
is(resp_cmd($a, 'EXEC'), "*-1\r\n", 'EXEC is nil after another client changed a watched key');
is(resp_cmd($a, 'GET', 'w'), bulk('changed by b'), 'and did nothing');

resp_cmd($a, 'WATCH', 'w');
$node->safe_psql('postgres', "SELECT nokv_put('w', 'changed by sql')");
resp_cmd($a, 'MULTI');
resp_cmd($a, 'SET', 'w', 'from a');
is(resp_cmd($a, 'EXEC'), "*-1\r\n", 'EXEC is nil after SQL changed a watched key');

resp_cmd($a, 'WATCH', 'w');
$node->safe_psql('postgres', "SELECT nokv_delete('w')");
resp_cmd($a, 'MULTI');
resp_cmd($a, 'SET', 'w', 'from a');
is(resp_cmd($a, 'EXEC'), "*-1\r\n", 'EXEC is nil after SQL deleted a watched key');

resp_cmd($a, 'WATCH', 'w', 'other');
resp_cmd($b, 'GET', 'w');
$node->safe_psql('postgres', "BEGIN; SELECT nokv_put('w', 'rolled back'); ROLLBACK;");
resp_cmd($a, 'MULTI');
resp_cmd($a, 'SET', 'w', 'from a');
resp_cmd($a, 'INCR', 'wc');
is(resp_cmd($a, 'EXEC'), "*2\r\n+OK\r\n:1\r\n", 'EXEC runs when watched keys only were read (or rolled back)');
is($node->safe_psql('postgres', "SELECT nokv_get('w')"), 'from a', 'the EXEC wrote');

resp_cmd($a, 'SET', 'wx', 'v', 'PX', '300');
resp_cmd($a, 'WATCH', 'wx');
usleep(500_000);
resp_cmd($a, 'MULTI');
resp_cmd($a, 'SET', 'wx', 'again');
is(resp_cmd($a, 'EXEC'), "*-1\r\n", 'EXEC is nil when a watched key expired since WATCH');

# ---------- a key locked by an open SQL transaction ----------

my $bg = start_bg($node);
bg_send($bg, "BEGIN; SELECT nokv_put('locked', 'sql'); SELECT 'held';\n", qr/held/);
my $t0 = time();
is(resp_cmd($c, 'SET', 'locked', 'resp'), "-ERR nokv: canceling statement due to lock timeout\r\n",
	'a write of a key an open SQL transaction wrote fails after nokv.resp_lock_timeout');
my $waited = time() - $t0;
ok($waited >= 0.4 && $waited < 10, sprintf('it waited %.2f s', $waited));
is(resp_cmd($c, 'GET', 'locked'), "\$-1\r\n", 'a read does not wait and sees no uncommitted value');
is(resp_cmd($b, 'PING'), "+PONG\r\n", 'the worker serves other clients afterwards');
bg_send($bg, "COMMIT; SELECT 'done';\n", qr/done/);
bg_finish($bg);
is(resp_cmd($c, 'GET', 'locked'), bulk('sql'), 'the committed SQL value');
is(resp_cmd($c, 'INCR', 'locked'), "-ERR value is not an integer or out of range\r\n", 'errors as Redis');

# ---------- the round's write batch ----------

# one packet is one round: blind writes share a batch, and every command
# still sees the ones before it
my $retries_sql = "SELECT value FROM nokv_stats WHERE name = 'resp.transaction_retries'";
my $retries = $node->safe_psql('postgres', $retries_sql);
my @wb = (
	[ [ 'SET', 'bk', 'v1' ], "+OK\r\n" ],
	[ [ 'SET', 'bk', 'v2' ], "+OK\r\n" ],
	[ [ 'GET', 'bk' ], bulk('v2') ],
	[ [ 'MSET', 'm1', 'a', 'm2', 'b', 'm1', 'c' ], "+OK\r\n" ],
	[ [ 'MGET', 'm1', 'm2' ], "*2\r\n" . bulk('c') . bulk('b') ],
	[ [ 'SET', 'bk', 'v3', 'NX' ], "\$-1\r\n" ],
	[ [ 'SET', 'bk', 'v4', 'XX', 'GET' ], bulk('v2') ],
	[ [ 'SETEX', 'bx', '100', 'y' ], "+OK\r\n" ],
	[ [ 'TTL', 'bx' ], ":100\r\n" ],
	[ [ 'INCR', 'bn' ], ":1\r\n" ],
	[ [ 'SET', 'bn', '10' ], "+OK\r\n" ],
	[ [ 'INCR', 'bn' ], ":11\r\n" ],
	[ [ 'SET', 'bn', '20' ], "+OK\r\n" ],
	[ [ 'DEL', 'bn', 'bk' ], ":2\r\n" ],
	[ [ 'SET', 'bk', 'v5' ], "+OK\r\n" ],
	[ [ 'EXISTS', 'bn', 'bk' ], ":1\r\n" ],
	[ [ 'SET', 'be', 'abc' ], "+OK\r\n" ],
	[ [ 'INCR', 'be' ], "-ERR value is not an integer or out of range\r\n" ],
	[ [ 'SET', 'bo', '9223372036854775806' ], "+OK\r\n" ],
	[ [ 'INCRBY', 'bo', '2' ], "-ERR increment or decrement would overflow\r\n" ],
	[ [ 'INCR', 'bo' ], ":9223372036854775807\r\n" ],
	[ [ 'SET', 'bp', '5', 'PXAT', '1' ], "+OK\r\n" ],
	[ [ 'DECR', 'bp' ], ":-1\r\n" ],
	[ [ 'SETEX', 'bt', '100', '5' ], "+OK\r\n" ],
	[ [ 'INCRBY', 'bt', '10' ], ":15\r\n" ],
	[ [ 'DECRBY', 'bt', '3' ], ":12\r\n" ],
	[ [ 'MGET', 'be', 'bo', 'bp', 'bt' ],
		"*4\r\n" . bulk('abc') . bulk('9223372036854775807') . bulk('-1') . bulk('12') ],
	[ [ 'TTL', 'bt' ], ":100\r\n" ],
	[ [ 'TTL', 'bp' ], ":-1\r\n" ],);
syswrite($c->{sock}, join('', map { resp_enc(@{ $_->[0] }) } @wb));
for my $w (@wb)
{
	is(resp_read($c), $w->[1], "in one packet: @{ $w->[0] }");
}
is($node->safe_psql('postgres',
		"SELECT string_agg(nokv_get(k), ',' ORDER BY k) FROM unnest('{bk,m1,m2,bx}'::text[]) k"),
	'v5,y,c,b', 'SQL reads what the batch wrote');

# large values: a batch never outgrows what one engine write takes (half
# of the 4 MB memtable here)
my %big = map { ("big$_" => chr(ord('a') + $_) x (600_000 + 300_000 * $_)) } 0 .. 4;
syswrite($c->{sock},
	resp_enc('SET', 'big0', $big{big0}) . resp_enc('SET', 'big1', $big{big1})
	  . resp_enc('MSET', 'big2', $big{big2}, 'big3', $big{big3})
	  . resp_enc('SET', 'big4', $big{big4}) . resp_enc('MGET', sort keys %big));
is(join('', map { resp_read($c) } 1 .. 4), "+OK\r\n" x 4, 'large values in one packet');
is(resp_read($c), '*5' . "\r\n" . join('', map { bulk($big{$_}) } sort keys %big),
	'and read back in the same round');
is($node->safe_psql('postgres',
		"SELECT string_agg(length(nokv_get(k))::text, ',' ORDER BY k) FROM unnest('{big0,big1,big2,big3,big4}'::text[]) k"),
	join(',', map { length($big{$_}) } sort keys %big), 'SQL reads the large values');
is($node->safe_psql('postgres', $retries_sql), $retries, 'no round of those was re-run after an error');

# a blind write that waits for an SQL writer fails alone
$bg = start_bg($node);
bg_send($bg, "BEGIN; SELECT nokv_put('locked2', 'sql'); SELECT 'held';\n", qr/held/);
@wb = (
	[ [ 'SET', 'ba', '1' ], "+OK\r\n" ],
	[ [ 'SET', 'locked2', 'resp' ], "-ERR nokv: canceling statement due to lock timeout\r\n" ],
	[ [ 'MSET', 'bb', '2', 'bc', '3' ], "+OK\r\n" ],
	[ [ 'GET', 'ba' ], bulk('1') ],);
syswrite($c->{sock}, join('', map { resp_enc(@{ $_->[0] }) } @wb));
for my $w (@wb)
{
	is(resp_read($c), $w->[1], "beside a locked key: @{ $w->[0] }");
}
bg_send($bg, "COMMIT; SELECT 'done';\n", qr/done/);
bg_finish($bg);
is($node->safe_psql('postgres',
		"SELECT string_agg(nokv_get(k), ',' ORDER BY k) FROM unnest('{ba,bb,bc,locked2}'::text[]) k"),
	'1,2,3,sql', 'the other writes of that round committed');

# ---------- RESP3 ----------

my $r3 = resp_connect($port);
like(resp_cmd($r3, 'HELLO', '3'), qr/^%7\r\n\$6\r\nserver\r\n/, 'HELLO 3 answers a map');
is(resp_cmd($r3, 'GET', 'no such key'), "_\r\n", 'RESP3 null');
like(resp_cmd($r3, 'INFO', 'server'), qr/^=\d+\r\ntxt:# Server\r\n/, 'RESP3 verbatim INFO');
is(resp_cmd($r3, 'HELLO', '4'), "-NOPROTO unsupported protocol version\r\n", 'HELLO 4');

# ---------- INFO and nokv_stats ----------

my $info = cli('', 'info');
like($info, qr/# Server.*redis_version:.*# Clients.*connected_clients:\d+.*# Stats.*total_commands_processed:\d+.*# Keyspace.*db0:keys=\d+.*# nokv.*lsm\./s,
	'INFO has the server, clients, stats, keyspace and nokv sections');
my $stats = $node->safe_psql('postgres',
	"SELECT string_agg(name || '=' || value, ' ' ORDER BY name) FROM nokv_stats WHERE name LIKE 'resp.%'");
like($stats, qr/resp\.commands=\d+/, 'nokv_stats has the gateway rows');
like($stats, qr/resp\.connected_clients=[1-9]/, 'connected clients counted');
like($stats, qr/resp\.running=1/, 'resp.running');

# ---------- AUTH ----------

$node->safe_psql('postgres', "ALTER SYSTEM SET nokv.resp_password = 's3cret'; SELECT pg_reload_conf();");
usleep(500_000);
my $u = resp_connect($port);
is(resp_cmd($u, 'GET', 'greeting'), "-NOAUTH Authentication required.\r\n", 'NOAUTH before AUTH');
is(resp_cmd($u, 'AUTH', 'wrong'), "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
	'WRONGPASS');
is(resp_cmd($u, 'AUTH', 'someone', 's3cret'), "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
	'only the default user');
is(resp_cmd($u, 'AUTH', 's3cret'), "+OK\r\n", 'AUTH');
is(resp_cmd($u, 'GET', 'greeting'), bulk('hello'), 'commands after AUTH');
is(cli('', '-a', 's3cret', '--no-auth-warning', 'get', 'greeting'), 'hello', 'redis-cli -a');
like(resp_cmd(resp_connect($port), 'HELLO', '3', 'AUTH', 'default', 's3cret'), qr/^%7\r\n/, 'HELLO 3 AUTH');
$node->safe_psql('postgres', "CREATE ROLE plain LOGIN");
my ($rc, $out, $err) = $node->psql('postgres', "SHOW nokv.resp_password", extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied|must be superuser/, 'nokv.resp_password is hidden from non-superusers');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name = 'nokv.resp_password'",
		extra_params => [ '-U', 'plain' ]), '0', 'and not in pg_settings for them');
$node->safe_psql('postgres', "ALTER SYSTEM RESET nokv.resp_password; SELECT pg_reload_conf();");
usleep(500_000);

# ---------- idle timeout ----------

$node->safe_psql('postgres', "ALTER SYSTEM SET nokv.resp_idle_timeout = 1; SELECT pg_reload_conf();");
usleep(500_000);
my $idle = resp_connect($port);
is(resp_cmd($idle, 'PING'), "+PONG\r\n", 'a client');
ok(resp_closed($idle, 5), 'an idle client is disconnected after nokv.resp_idle_timeout');
$node->safe_psql('postgres', "ALTER SYSTEM RESET nokv.resp_idle_timeout; SELECT pg_reload_conf();");

# ---------- restart ----------

$node->restart;
wait_nokv_ready($node);
$node->poll_query_until('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'nokv resp gateway'", '1');
my $d;
foreach (1 .. 50)
{
	$d = eval { resp_connect($port) };
	last if $d;
	usleep(100_000);
}
is(resp_cmd($d, 'GET', 'p2000'), bulk('v2000'), 'acknowledged writes survive a restart');
is(resp_cmd($d, 'GET', 'w'), bulk('from a'), 'EXEC writes too');

$node->stop;
done_testing();
