
# t/008_standby_and_backup.pl
#
# nokv data is not replicated physically: its SSTs are not WAL-logged, only
# the records after the last flush are.  So
#
#  - a streaming standby built from a base backup refuses nokv access with
#    SQLSTATE 0A000 (feature_not_supported) and says why;
#  - a server started as a primary from the same base backup (no standby,
#    crash recovery from the backup label) refuses too: a base backup does
#    not contain the replication slot "nokv" that keeps the WAL its
#    memtables need, and the error names it;
#  - the primary keeps working throughout.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $primary = nokv_node('primary', allows_streaming => 1);
$primary->safe_psql('postgres', q{
SELECT count(nokv_put('p' || i, repeat('x', 300 + i % 10))) FROM generate_series(1, 2000) i;
SELECT nokv_flush();
SELECT count(nokv_put('q' || i, 'after flush ' || i)) FROM generate_series(1, 500) i;
CREATE TABLE t (i int); INSERT INTO t VALUES (1);});
is($primary->safe_psql('postgres',
	"SELECT count(*) FROM nokv_scan(NULL::text, NULL::text)"), '2500', 'primary has nokv data');

$primary->backup('b1');

# ---------- a streaming standby ----------

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', "INSERT INTO t VALUES (2); SELECT nokv_put('r1', 'later')");
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'), '2', 'standby replays heap changes');

my ($state, $err) = nokv_query_error($standby, "SELECT nokv_get('p1')");
is($state, '0A000', 'standby: nokv_get fails with SQLSTATE 0A000 (feature_not_supported)');
like($err, qr/nokv data is not available during recovery or on a standby/, 'standby: the message says why');
like($err, qr/HINT:.*query the primary/, 'standby: the hint points to the primary');
($state, $err) = nokv_query_error($standby, "SELECT * FROM nokv_scan(NULL::text, NULL::text)");
is($state, '0A000', 'standby: nokv_scan fails with 0A000 too');
($state, $err) = nokv_query_error($standby, "SELECT nokv_put('s', 'x')");
ok($state eq '0A000' || $state eq '25006', "standby: nokv_put is refused ($state)");
unlike(slurp_file($standby->logfile), qr/PANIC|server process .* was terminated/,
	'standby: replaying nokv records did not crash anything');
$standby->stop;

# ---------- the backup started as a primary ----------

my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($primary, 'b1');
$restored->start;
is($restored->safe_psql('postgres', 'SELECT count(*) FROM t'), '1', 'restored: heap data from the backup');
ok(-f $restored->data_dir . '/nokv/PG_WAL_SLOT', 'restored: the engine directory came with the backup');
is($restored->safe_psql('postgres',
	"SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'nokv'"), '0',
	'restored: the base backup has no replication slot "nokv"');

($state, $err) = nokv_query_error($restored, "SELECT nokv_get('p1')");
ok($state ne '', "restored: nokv_get refused (SQLSTATE $state)");
like($err, qr/nokv engine is not available/, 'restored: "nokv engine is not available"');
like($err, qr/replication slot "nokv".*missing/, 'restored: the error names the missing slot "nokv"');
like(slurp_file($restored->logfile), qr/nokv engine is unusable until restart: .*replication slot "nokv"/,
	'restored: the server log says so too');
($state, $err) = nokv_query_error($restored, "SELECT nokv_put('new', 'x')");
like($err, qr/replication slot "nokv"/, 'restored: writes are refused the same way');
$restored->stop;

# ---------- the primary keeps working ----------

$primary->safe_psql('postgres', "SELECT nokv_put('after', 'backup'); SELECT nokv_flush();");
is($primary->safe_psql('postgres', "SELECT nokv_get('after') || ' ' || nokv_get('p2000') IS NOT NULL"),
	't', 'primary: reads and writes work after the backup');
is($primary->safe_psql('postgres', "SELECT count(*) FROM nokv_scan(NULL::text, NULL::text)"),
	'2502', 'primary: all its data');
$primary->restart;
wait_nokv_ready($primary);
is($primary->safe_psql('postgres', "SELECT nokv_get('r1') || nokv_get('after')"), 'laterbackup',
	'primary: data intact after a restart');

$primary->stop;
done_testing();
