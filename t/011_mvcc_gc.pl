
# Copyright (c) 2026, the nokv authors
#
# Compaction as nokv's garbage collector and freezer, and the settings
# that steer it:
#  - nokv_compact() keeps exactly one version per live key: versions of
#    aborted writers, versions shadowed by a newer commit every snapshot
#    sees, and committed deletes are gone (counted in nokv_sstables);
#  - a REPEATABLE READ snapshot taken before an overwrite still reads the
#    old value after a full compaction (the horizon holds it back);
#  - the GC worker runs a freeze sweep once nokv.freeze_max_age xids have
#    passed, and the data reads back unchanged afterwards;
#  - nokv.sync_mode = off makes nokv-writing commits asynchronous even
#    with synchronous_commit = on;
#  - the nokv.* prefix is reserved: a misspelt setting is an error.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('mvcc_gc', conf => q{
nokv.freeze_max_age = 10000
nokv.vlog_gc_interval = 200ms
fsync = on
synchronous_commit = on
wal_writer_delay = 10s
});

# ---- settings ----
is($node->safe_psql('postgres', 'SHOW nokv.memtable_size'), '4MB', 'nokv.memtable_size is set from postgresql.conf');
is($node->safe_psql('postgres', 'SHOW nokv.sync_mode'), 'inherit', 'nokv.sync_mode defaults to inherit');
my ($rc, $out, $err) = $node->psql('postgres', 'SET nokv.memtable_sise = 1');
isnt($rc, 0, 'a misspelt nokv.* setting is refused');
like($err, qr/invalid configuration parameter name|unrecognized configuration parameter/,
	'with PostgreSQL\'s message for a reserved prefix');

# ---- compaction drops aborted, shadowed and deleted versions ----
$node->safe_psql('postgres', q{
SELECT count(nokv_put('g' || i, 'v1 ' || i)) FROM generate_series(1, 300) i;
SELECT count(nokv_put('g' || i, 'v2 ' || i)) FROM generate_series(1, 300) i;
SELECT count(nokv_delete('g' || i)) FROM generate_series(201, 300) i;
BEGIN;
SELECT count(nokv_put('g' || i, 'aborted')) FROM generate_series(1, 100) i;
SELECT count(nokv_put('a' || i, 'aborted')) FROM generate_series(1, 100) i;
ROLLBACK;
});
$node->safe_psql('postgres', 'SELECT nokv_flush()');
my $before = $node->safe_psql('postgres', 'SELECT sum(entries) FROM nokv_sstables');
is($before, 900, 'before compaction the SSTs hold every version written (300 + 300 + 100 deletes + 200 aborted)');
$node->safe_psql('postgres', 'SELECT nokv_compact()');
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM nokv_scan(NULL::bytea, NULL)');
is($live, 200, '200 live keys');
is($node->safe_psql('postgres', 'SELECT sum(entries) FROM nokv_sstables'), $live,
	'after compaction one version per live key: aborted, shadowed and deleted versions are gone');
is($node->safe_psql('postgres', "SELECT nokv_get('g7') || '|' || nokv_get('g150') || '|' || coalesce(nokv_get('g250'), 'none') || '|' || coalesce(nokv_get('a1'), 'none')"),
	'v2 7|v2 150|none|none', 'values after compaction');

# ---- a REPEATABLE READ snapshot keeps its version through compaction ----
my $rr = start_bg($node);
bg_send($rr, "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'rr=' || nokv_get('g1');\n", qr/rr=v2 1\n/);
$node->safe_psql('postgres', "SELECT nokv_put('g1', 'v3 1')");
$node->safe_psql('postgres', 'SELECT nokv_compact()');
$rr->{out} = '';
bg_send($rr, "SELECT 'rr=' || nokv_get('g1');\n", qr/rr=.*\n/);
like($rr->{out}, qr/rr=v2 1\n/, 'the old snapshot still reads the overwritten value after a full compaction');
bg_send($rr, "COMMIT;\n");
bg_finish($rr);
is($node->safe_psql('postgres', "SELECT nokv_get('g1')"), 'v3 1', 'new snapshots read the new value');

# ---- the freeze sweep ----
$node->safe_psql('postgres', q{
CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. n LOOP
    PERFORM pg_current_xact_id();
    COMMIT;
  END LOOP;
END $$;
});
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'CALL burn_xids(12000)');
ok($node->wait_for_log(qr/nokv froze every version older than transaction \d+/, $offset),
	'the GC worker runs a freeze sweep after nokv.freeze_max_age transactions');
is($node->safe_psql('postgres', 'SELECT count(*) FROM nokv_scan(NULL::bytea, NULL)'), $live,
	'every live key survives the sweep');
is($node->safe_psql('postgres', "SELECT nokv_get('g1') || '|' || nokv_get('g199')"), 'v3 1|v2 199',
	'with its value');

# ---- nokv.sync_mode overrides synchronous_commit for nokv writers ----
sub syncs_for
{
	my ($setting) = @_;
	my $sql = "SET nokv.sync_mode = $setting;\nSELECT pg_stat_reset_shared('wal');\n"
	  . join('', map { "SELECT nokv_put('s$_', 'x');\n" } 1 .. 50)
	  . "SELECT pg_stat_force_next_flush();\nSELECT wal_sync FROM pg_stat_wal;\n";
	my @lines = split /\n/, $node->safe_psql('postgres', $sql);
	return $lines[-1];
}
my $inherit = syncs_for('inherit');
my $off = syncs_for('off');
cmp_ok($inherit, '>=', 50, "inherit (synchronous_commit = on): one WAL sync per commit ($inherit for 50)");
cmp_ok($off, '<', 10, "nokv.sync_mode = off: commits do not wait for a WAL sync ($off for 50)");

done_testing();
