
# t/021_tam_wraparound.pl
#
# Transaction-id wraparound pressure on a nokv table: with low freeze ages
# (vacuum_freeze_min_age, vacuum_freeze_table_age, autovacuum_freeze_max_age
# = 100000, the smallest allowed), the cluster consumes a few hundred
# thousand xids while rows are updated in between, so the table holds row
# versions and markers of many ages (and anti-wraparound autovacuums are
# due).  VACUUM (FREEZE) must then advance the table's relfrozenxid to a
# recent xid (the oldest left in its rows), the database's datfrozenxid
# must follow, and the data must still equal a heap mirror's, row by row,
# before and after a restart.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('tam_wraparound', conf => q{
vacuum_freeze_min_age = 100000
vacuum_freeze_table_age = 100000
autovacuum_freeze_max_age = 100000
autovacuum_naptime = 1s
});

$node->safe_psql('postgres', q{
CREATE TABLE w (id int PRIMARY KEY, v int NOT NULL, note text) USING nokv;
CREATE TABLE m (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO w SELECT g, g, 'n' || g FROM generate_series(1, 10000) g;
INSERT INTO m SELECT * FROM w;
});

my $burn = $node->basedir . '/burn.sql';
PostgreSQL::Test::Utils::append_to_file($burn, "SELECT txid_current();\n");

sub data_matches
{
	my ($what) = @_;
	is($node->safe_psql('postgres', q{
		SELECT (SELECT count(*) || ':' || sum(v) FROM w) || ' ' ||
		       (SELECT count(*) || ':' || sum(v) FROM m) || ' ' ||
		       (SELECT count(*) FROM ((TABLE w EXCEPT TABLE m) UNION ALL (TABLE m EXCEPT TABLE w)) d)}),
		$node->safe_psql('postgres',
			"SELECT (SELECT count(*) || ':' || sum(v) FROM m) || ' ' || (SELECT count(*) || ':' || sum(v) FROM m) || ' 0'"),
		"$what: count and sum match the heap mirror, no row differs");
	return;
}

my $start_xid = $node->safe_psql('postgres', 'SELECT txid_current()');
my $frozen_before = $node->safe_psql('postgres',
	"SELECT relfrozenxid FROM pg_class WHERE relname = 'w'");

# three rounds: update some rows (in both tables, one transaction), delete
# a few, then burn 70000 xids with two clients
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', qq{
		BEGIN;
		UPDATE w SET v = v + $round, note = 'round $round' WHERE id % 7 = $round;
		UPDATE m SET v = v + $round, note = 'round $round' WHERE id % 7 = $round;
		DELETE FROM w WHERE id % 101 = $round;
		DELETE FROM m WHERE id % 101 = $round;
		INSERT INTO w SELECT g, g, 'new' FROM generate_series(10000 + $round * 100, 10000 + $round * 100 + 49) g;
		INSERT INTO m SELECT g, g, 'new' FROM generate_series(10000 + $round * 100, 10000 + $round * 100 + 49) g;
		COMMIT;
		-- a row lock that committed (a marker with an old xid)
		SELECT id FROM w WHERE id = $round * 10 FOR UPDATE;
	});
	# an aborted update too
	$node->psql('postgres', "BEGIN; UPDATE w SET v = -1 WHERE id % 13 = $round; ROLLBACK;");
	$node->command_ok(
		[ 'pgbench', '-n', '-M', 'prepared', '-c', '2', '-j', '2', '-t', '35000', '-f', $burn, 'postgres' ],
		"round $round: 70000 xids consumed");
	data_matches("round $round");
}

my $now_xid = $node->safe_psql('postgres', 'SELECT txid_current()');
cmp_ok($now_xid - $start_xid, '>', 200000, 'more than 200000 xids consumed (twice autovacuum_freeze_max_age)');

$node->safe_psql('postgres', 'VACUUM (FREEZE, VERBOSE) w');
my ($frozen_after, $age) = split /\|/, $node->safe_psql('postgres',
	"SELECT relfrozenxid, age(relfrozenxid) FROM pg_class WHERE relname = 'w'");
isnt($frozen_after, $frozen_before, "relfrozenxid advanced ($frozen_before -> $frozen_after)");
cmp_ok($age, '<', 1000, "age(relfrozenxid) is small after VACUUM (FREEZE) ($age)");
data_matches('after VACUUM (FREEZE)');

# index and seq scans still agree on the frozen rows
is($node->safe_psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(v) FROM w WHERE id > 0'),
	$node->safe_psql('postgres',
		'SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*), sum(v) FROM w WHERE id > 0'),
	'index scan and seq scan agree after freezing');

# the whole database: datfrozenxid follows once every table is frozen
$node->safe_psql('postgres', 'VACUUM (FREEZE)');
my $datage = $node->safe_psql('postgres',
	"SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'postgres'");
cmp_ok($datage, '<', 100000, "age(datfrozenxid) of postgres below autovacuum_freeze_max_age ($datage)");

# frozen rows are still writable, with the normal MVCC rules
$node->safe_psql('postgres', q{
	UPDATE w SET v = v * 2 WHERE id <= 100; UPDATE m SET v = v * 2 WHERE id <= 100;
	DELETE FROM w WHERE id BETWEEN 200 AND 210; DELETE FROM m WHERE id BETWEEN 200 AND 210;});
data_matches('after writes to frozen rows');

# another round of pressure then a plain (aggressive, by table age) VACUUM
$node->command_ok(
	[ 'pgbench', '-n', '-M', 'prepared', '-c', '2', '-j', '2', '-t', '60000', '-f', $burn, 'postgres' ],
	'120000 more xids consumed');
$node->safe_psql('postgres', 'VACUUM w');
$age = $node->safe_psql('postgres', "SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'w'");
cmp_ok($age, '<', 100000, "a plain VACUUM past vacuum_freeze_table_age is aggressive and advances relfrozenxid ($age)");
data_matches('after the aggressive VACUUM');

$node->restart;
wait_nokv_ready($node);
data_matches('after a restart');

unlike(slurp_file($node->logfile), qr/PANIC|TRAP:|could not access status of transaction|must be vacuumed within|not accepting commands/,
	'no PANIC, clog lookup failure or wraparound warning in the log');
$node->stop;
done_testing();
