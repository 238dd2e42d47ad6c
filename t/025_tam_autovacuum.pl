
# t/025_tam_autovacuum.pl
#
# Autovacuum and autoanalyze pick nokv tables up from the usual counters,
# exactly as they do heap tables: inserts count towards autoanalyze (and
# the insert threshold of autovacuum), updates and deletes leave dead
# tuples that trigger autovacuum, and the launcher's workers run the table
# AM's vacuum and analyze.  After the automatic runs the dead rows are
# gone from the counters and from the index, and the planner's estimate
# comes from the automatic ANALYZE.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('tam_autovacuum', conf => q{
autovacuum = on
autovacuum_naptime = 1s
autovacuum_vacuum_threshold = 100
autovacuum_vacuum_scale_factor = 0
autovacuum_vacuum_insert_threshold = 100
autovacuum_vacuum_insert_scale_factor = 0
autovacuum_analyze_threshold = 100
autovacuum_analyze_scale_factor = 0
});

sub stat_of
{
	my ($table, $col) = @_;
	return $node->safe_psql('postgres',
		"SELECT $col FROM pg_stat_user_tables WHERE relname = '$table'");
}

# A backend reports its counters when it goes idle; every safe_psql is a
# backend of its own, so each step's counts are visible to the next.
$node->safe_psql('postgres', q{
CREATE TABLE av (id int PRIMARY KEY, grp int, payload text) USING nokv;
CREATE INDEX av_grp ON av (grp);
CREATE TABLE av_heap (id int PRIMARY KEY, grp int, payload text) USING heap;
INSERT INTO av SELECT g, g % 10, repeat('x', 50) FROM generate_series(1, 5000) g;
INSERT INTO av_heap SELECT g, g % 10, repeat('x', 50) FROM generate_series(1, 5000) g;
});

is(stat_of('av', 'n_tup_ins'), '5000', 'inserts are counted');

# autoanalyze and the insert-driven autovacuum
ok(wait_for_sql($node,
		"SELECT autoanalyze_count > 0 AND autovacuum_count > 0 FROM pg_stat_user_tables WHERE relname = 'av'",
		120),
	'inserts trigger autoanalyze and autovacuum on a nokv table');
ok(wait_for_sql($node,
		"SELECT autoanalyze_count > 0 AND autovacuum_count > 0 FROM pg_stat_user_tables WHERE relname = 'av_heap'",
		120),
	'and on the heap table beside it');
is($node->safe_psql('postgres', "SELECT reltuples FROM pg_class WHERE relname = 'av'"),
	'5000', 'the automatic ANALYZE (or VACUUM) set reltuples');

# dead rows from deletes and updates trigger autovacuum again
my $vacuums = stat_of('av', 'autovacuum_count');
$node->safe_psql('postgres', 'DELETE FROM av WHERE id <= 1000');
$node->safe_psql('postgres', 'UPDATE av SET payload = repeat(\'y\', 50) WHERE id > 4000');
is(stat_of('av', 'n_tup_del'), '1000', 'deletes are counted');
is(stat_of('av', 'n_tup_upd'), '1000', 'updates are counted');
ok(wait_for_sql($node,
		"SELECT autovacuum_count > $vacuums AND n_dead_tup = 0 FROM pg_stat_user_tables WHERE relname = 'av'",
		120),
	'dead rows trigger autovacuum, which clears the dead-tuple count');

# what the automatic vacuum did: the dead rows are gone from the index
$node->safe_psql('postgres', 'SELECT nokv_flush()');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM av WHERE grp = 3}), '400', 'index scan after autovacuum: live rows only');
ok(wait_for_sql($node,
		"SELECT reltuples = 4000 FROM pg_class WHERE relname = 'av'", 120),
	'the automatic runs brought reltuples to the live row count');
my $plan = $node->safe_psql('postgres', 'EXPLAIN SELECT * FROM av');
like($plan, qr/rows=4000\b/, 'the planner estimates the live row count');

$node->stop;
done_testing();
