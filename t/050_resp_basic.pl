
# t/050_resp_basic.pl
#
# The RESP gateway end to end: the worker in pg_stat_activity, redis-cli
# against it (including its interactive start-up, COMMAND DOCS), the same
# keys through SQL and RESP both ways (binary-safe), TTL expiry, a large
# pipeline, WATCH/MULTI/EXEC aborted by another client and by SQL, a key
# locked by an open SQL transaction (lock timeout, then the worker serves
# again), RESP3, AUTH with nokv.resp_password (hidden from non-superusers),
# the idle timeout, INFO and the nokv_stats rows.

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
