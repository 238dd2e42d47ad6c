
# t/026_tam_concurrent_writers_crash.pl
#
# Backends insert into a nokv table at once, so their WAL records are
# appended concurrently (the engine's write lock held shared), while small
# memtables switch and flush throughout.  A flushed memtable records the
# WAL position its SST covers, and recovery replays only what lies past it;
# that is only right if every record in one memtable lies below every
# record in the next, which the memtables still in memory are checked for.
# After an immediate stop, every committed row must be back, and the scans
# must agree.  (The race itself, an append overtaken across a memtable
# switch, is too narrow to provoke through SQL; test_host_mvcc provokes it
# with a hook that yields inside the append.)

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $clients = 4;
my $per_client = 2500;
my $rows = $clients * $per_client;

# 256 kB memtables (the smallest allowed) hold about a thousand rows each
my $node = nokv_node('tam_concurrent_crash', conf => "nokv.memtable_size = 256kB\n");

$node->safe_psql('postgres', q{
CREATE SEQUENCE w_ids;
CREATE TABLE w (id bigint PRIMARY KEY, client int NOT NULL, payload text) USING nokv;
CREATE INDEX w_client ON w (client);
});
my $flushes_before = $node->safe_psql('postgres',
	"SELECT value FROM nokv_stats WHERE name = 'flush.completed'");

my $script = $node->basedir . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
INSERT INTO w VALUES (nextval('w_ids'), :client_id, repeat(md5(:client_id::text), 4));
});
$node->command_checks_all(
	[ 'pgbench', '-n', '-c', $clients, '-j', $clients, '-t', $per_client, '-f', $script, 'postgres' ],
	0,
	[ qr/number of transactions actually processed: $rows\//,
	  qr/number of failed transactions: 0 / ],
	[ qr/\A\z/ ],
	"pgbench: $clients clients insert $per_client rows each, every insert commits");

my ($flushes, $in_memtables) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT value FROM nokv_stats WHERE name = 'flush.completed'),
	       (SELECT coalesce(sum(entries), 0) FROM nokv_memtables)});
cmp_ok($flushes - $flushes_before, '>=', 3, 'memtables were flushed during the run');
cmp_ok($in_memtables, '>', 0, 'some rows are only in memtables when the server stops');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		SELECT max_version, lead(min_version) OVER (ORDER BY seq) AS next_min
		FROM nokv_memtables WHERE entries > 0) m
	WHERE max_version >= next_min}),
	'0', 'each memtable in memory holds only WAL positions below the next one\'s');

sub contents
{
	my ($what) = @_;
	my $q = q{SELECT count(*) || ':' || count(DISTINCT id) || ':' || sum(id) || ':' ||
		md5(string_agg(id || '/' || client || '/' || payload, ',' ORDER BY id))
		FROM w WHERE id > 0};
	my $seq = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; $q");
	my $idx = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
	is($idx, $seq, "$what: index scan agrees with seq scan");
	my ($n, $distinct, $sum) = split /:/, $seq;
	is("$n:$distinct:$sum", "$rows:$rows:" . ($rows * ($rows + 1) / 2),
		"$what: all $rows committed rows, ids 1 to $rows once each");
	is($node->safe_psql('postgres',
		'SELECT string_agg(n::text, \',\' ORDER BY client) FROM '
		  . '(SELECT client, count(*) AS n FROM w GROUP BY client) s'),
		join(',', ($per_client) x $clients), "$what: $per_client rows from each client");
	return $seq;
}

my $before = contents('before the crash');

$node->stop('immediate');
$node->start;
wait_nokv_ready($node);
is(contents('after the immediate stop'), $before, 'the table reads the same after recovery');

unlike(slurp_file($node->logfile), qr/PANIC|TRAP:/, 'no PANIC or assertion failure in the server log');
$node->stop;
done_testing();
