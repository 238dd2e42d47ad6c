
# t/022_tam_reclaim.pl
#
# DROP TABLE and TRUNCATE of nokv tables give their engine space back: the
# rows' keys are deleted when the transaction commits, and a compaction
# drops them from the SSTs, so the engine's live bytes (sum(size) of
# nokv_sstables) fall by about the tables' size.  A rolled-back DROP or
# TRUNCATE keeps the data; a CREATE TABLE + INSERT that aborts (or whose
# subtransaction rolls back) leaves nothing readable and no space behind.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('tam_reclaim');

sub live_bytes
{
	return $node->safe_psql('postgres', 'SELECT coalesce(sum(size), 0) FROM nokv_sstables');
}

sub flush_compact
{
	$node->safe_psql('postgres', 'SELECT nokv_flush(); SELECT nokv_compact();');
	return live_bytes();
}

my $load = q{INSERT INTO %s SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
	FROM generate_series(1, 100000) g};

$node->safe_psql('postgres', q{
CREATE TABLE keep (id int PRIMARY KEY, payload text) USING nokv;
INSERT INTO keep SELECT g, 'keep ' || g FROM generate_series(1, 1000) g;
});
my $baseline = flush_compact();

foreach my $t (qw(dropped truncated rollback_drop))
{
	$node->safe_psql('postgres', "CREATE TABLE $t (id int PRIMARY KEY, payload text) USING nokv");
	$node->safe_psql('postgres', sprintf($load, $t));
}
my $loaded = flush_compact();
my %size;
$size{$_} = $node->safe_psql('postgres', "SELECT nokv_table_size('$_')")
  for qw(dropped truncated rollback_drop keep);
cmp_ok($size{dropped}, '>', 2_000_000, "a table of 100000 rows takes engine space ($size{dropped} bytes)");
cmp_ok($loaded - $baseline, '>=', 2.5 * $size{dropped},
	"live bytes grew by about three tables ($baseline -> $loaded)");

# rolled back: nothing reclaimed
$node->safe_psql('postgres', 'BEGIN; DROP TABLE rollback_drop; ROLLBACK;');
$node->safe_psql('postgres', 'BEGIN; TRUNCATE truncated; ROLLBACK;');
my $after_rollback = flush_compact();
cmp_ok($after_rollback, '>=', 0.95 * $loaded, "rolled-back DROP and TRUNCATE keep the space ($after_rollback)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM rollback_drop'), '100000',
	'the table whose DROP rolled back keeps its rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM truncated'), '100000',
	'the table whose TRUNCATE rolled back keeps its rows');

# committed DROP and TRUNCATE
$node->safe_psql('postgres', 'DROP TABLE dropped');
$node->safe_psql('postgres', 'TRUNCATE truncated');
my $after_drop = flush_compact();
my $freed = $loaded - $after_drop;
cmp_ok($freed, '>=', 0.8 * ($size{dropped} + $size{truncated}),
	"DROP + TRUNCATE + compaction freed the two tables' bytes ($freed of "
	  . ($size{dropped} + $size{truncated}) . ')');
is($node->safe_psql('postgres', "SELECT nokv_table_size('truncated')"), '0',
	'the truncated table has no engine bytes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM truncated'), '0', 'the truncated table is empty');
$node->safe_psql('postgres', "INSERT INTO truncated VALUES (1, 'after truncate')");
is($node->safe_psql('postgres', 'SET enable_seqscan = off; SELECT payload FROM truncated WHERE id = 1'),
	'after truncate', 'the truncated table takes new rows, found by its index');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM keep'), '1000|500500',
	'the other tables are untouched');
is($node->safe_psql('postgres', 'SELECT count(*) FROM rollback_drop'), '100000',
	'the table whose DROP rolled back is untouched');

# an aborted CREATE TABLE + INSERT, flushed before the abort
my $before_abort = flush_compact();
$node->safe_psql('postgres', sprintf(q{
BEGIN;
CREATE TABLE aborted (id int PRIMARY KEY, payload text) USING nokv;
%s;
SELECT nokv_flush();
ROLLBACK;}, sprintf($load, 'aborted')));
# and one in a subtransaction that rolls back inside a committed transaction
$node->safe_psql('postgres', sprintf(q{
BEGIN;
CREATE TABLE committed_outer (id int) USING nokv;
INSERT INTO committed_outer VALUES (1);
SAVEPOINT s;
CREATE TABLE aborted_sub (id int PRIMARY KEY, payload text) USING nokv;
%s;
ROLLBACK TO SAVEPOINT s;
COMMIT;}, sprintf($load, 'aborted_sub')));
my $after_abort = flush_compact();
cmp_ok($after_abort, '<=', $before_abort + 0.1 * $size{rollback_drop},
	"aborted creations left no engine space behind ($before_abort -> $after_abort)");
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname IN ('aborted', 'aborted_sub')"),
	'0', 'the aborted tables do not exist');
is($node->safe_psql('postgres', 'SELECT count(*) FROM committed_outer'), '1',
	'the table created around the rolled-back subtransaction survives');

# DROP of the last tables brings the engine back to about the baseline
$node->safe_psql('postgres', 'DROP TABLE rollback_drop, truncated, committed_outer');
my $end = flush_compact();
cmp_ok($end, '<=', $baseline + 0.1 * $size{rollback_drop},
	"after dropping every loaded table the live bytes are back near the baseline ($baseline -> $end)");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM keep'), '1000|500500',
	'the table kept throughout still has its rows');

# the reclaim survives a restart (nothing comes back from the WAL)
$node->restart;
wait_nokv_ready($node);
my $restarted = flush_compact();
cmp_ok($restarted, '<=', $baseline + 0.1 * $size{rollback_drop},
	"after a restart the dropped rows stay gone ($restarted)");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM keep'), '1000|500500',
	'the kept table after the restart');

# DROP DATABASE: the rows of its nokv tables go with it (its metapages are
# gone with its files; the engine's registry of table ids per database
# names them), and CREATE DATABASE refuses to copy a template that holds
# nokv tables (both copies would share the rows)
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION nokv');
$node->safe_psql('other', 'CREATE TABLE big (id int PRIMARY KEY, payload text) USING nokv');
$node->safe_psql('other', sprintf($load, 'big'));
my $other_size = $node->safe_psql('other', "SELECT nokv_table_size('big')");
my $with_other = flush_compact();
cmp_ok($with_other - $restarted, '>=', 0.8 * $other_size,
	"a table in another database takes engine space ($restarted -> $with_other)");
my ($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE copy TEMPLATE other');
like($err, qr/cannot copy database "other": it holds nokv tables/,
	'CREATE DATABASE refuses a template with nokv tables');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE copy TEMPLATE other',
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/0A000/, 'with SQLSTATE 0A000');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'copy'"), '0',
	'no database was created');
$node->safe_psql('postgres', 'CREATE DATABASE copy TEMPLATE template0');
$node->safe_psql('postgres', 'DROP DATABASE copy');
$node->safe_psql('postgres', 'DROP DATABASE other');
my $after_dropdb = flush_compact();
cmp_ok($after_dropdb, '<=', $restarted + 0.1 * $other_size,
	"DROP DATABASE reclaimed its tables' engine space ($with_other -> $after_dropdb)");
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM keep'), '1000|500500',
	'the tables of the remaining database keep their rows');
($rc, $out, $err) = $node->psql('template1', 'CREATE DATABASE again TEMPLATE postgres');
like($err, qr/cannot copy database "postgres": it holds nokv tables/,
	'nor the database that still holds the table keep');

unlike(slurp_file($node->logfile), qr/PANIC|TRAP:|could not reclaim/, 'no PANIC or reclaim failure in the log');
$node->stop;
done_testing();
