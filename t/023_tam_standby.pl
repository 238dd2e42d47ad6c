
# t/023_tam_standby.pl
#
# nokv tables on a streaming standby: their rows are not replicated
# physically (only the catalog is), so reading one on the standby fails
# cleanly with SQLSTATE 0A000 and a message saying why, writing one fails
# as in any read-only transaction, and neither crashes anything; the
# standby serves its heap tables and the catalog (nokv tables can be
# described) meanwhile, and the primary keeps working.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $primary = nokv_node('tam_primary', allows_streaming => 1);
$primary->safe_psql('postgres', q{
CREATE TABLE nt (id int PRIMARY KEY, v text) USING nokv;
INSERT INTO nt SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT nokv_flush();
INSERT INTO nt SELECT g, 'v' || g FROM generate_series(1001, 1100) g;
CREATE TABLE ht (id int PRIMARY KEY);
INSERT INTO ht VALUES (1);
});
$primary->backup('b1');

my $standby = PostgreSQL::Test::Cluster->new('tam_standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', q{
INSERT INTO ht VALUES (2);
INSERT INTO nt VALUES (5000, 'after the backup');
CREATE TABLE nt2 (id int) USING nokv;
INSERT INTO nt2 VALUES (1);
});
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT count(*) FROM ht'), '2', 'standby serves heap tables');
is($standby->safe_psql('postgres', q{
	SELECT string_agg(c.relname || ':' || a.amname, ',' ORDER BY c.relname)
	FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname IN ('nt', 'nt2')}),
	'nt:nokv,nt2:nokv', 'standby: the catalog has both nokv tables (created before and after the backup)');

my @queries = (
	[ 'seq scan', 'SELECT count(*) FROM nt' ],
	[ 'index scan', 'SET enable_seqscan = off; SELECT v FROM nt WHERE id = 5' ],
	[ 'table created after the backup', 'SELECT * FROM nt2' ],
	[ 'join with a heap table', 'SELECT count(*) FROM ht JOIN nt USING (id)' ],
	[ 'nokv_table_size', "SELECT nokv_table_size('nt')" ],
);
foreach my $q (@queries)
{
	my ($state, $err) = nokv_query_error($standby, $q->[1]);
	is($state, '0A000', "standby, $q->[0]: SQLSTATE 0A000 (feature_not_supported)");
	like($err, qr/not available during recovery or on a standby/, "standby, $q->[0]: the message says why");
}
my ($state, $err) = nokv_query_error($standby, "INSERT INTO nt VALUES (9999, 'x')");
is($state, '25006', 'standby: INSERT into a nokv table is refused as read-only (25006)');
($state, $err) = nokv_query_error($standby, 'EXPLAIN SELECT * FROM nt WHERE id = 1');
is($state, '', 'standby: EXPLAIN of a nokv query (planning only) works');

is($standby->safe_psql('postgres', 'SELECT 1'), '1', 'standby: the session still works after the errors');
my $log = slurp_file($standby->logfile);
unlike($log, qr/PANIC|TRAP:|server process .* was terminated|terminated by signal/,
	'standby: nothing crashed');

# the primary goes on
$primary->safe_psql('postgres', "INSERT INTO nt VALUES (6000, 'later')");
is($primary->safe_psql('postgres', 'SELECT count(*) FROM nt'), '1102', 'primary: all rows');
$primary->wait_for_catchup($standby);
($state) = nokv_query_error($standby, 'SELECT count(*) FROM nt');
is($state, '0A000', 'standby: still refused after more replay');

$standby->stop;
$primary->stop;
done_testing();
