
# t/007_one_fsync.pl
#
# Durability costs one WAL flush per commit: the nokv record is an ordinary
# WAL record of the transaction, so the commit record's flush covers it.
# Counted with pg_stat_wal.wal_sync (fsync = on) over N single-statement
# commits of nokv_put, compared with N heap inserts and N transactions
# doing both.
#
# Nothing else may flush WAL meanwhile: autovacuum is off, no checkpoint
# is due, and the memtable (4MB) stays far from full, so the flush worker
# (which calls XLogFlush before writing an SST) has nothing to do; it and
# the WAL writer could add at most a flush or two, which the check allows.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $N = 200;
my $TOLERANCE = 2;

my $node = nokv_node('one_fsync', conf => q{
fsync = on
synchronous_commit = on
checkpoint_timeout = 1h
max_wal_size = 1GB
wal_writer_delay = 10s
});
$node->safe_psql('postgres', q{
CREATE TABLE h (i int, v text);
SELECT nokv_put('warm', 'up');
INSERT INTO h VALUES (0, 'warm');
CHECKPOINT;});

is($node->safe_psql('postgres', 'SHOW wal_sync_method'), 'fdatasync', 'wal_sync_method is fdatasync')
  or note('wal_sync counts calls of the sync method; open_* methods do not count');

# N single-statement transactions in one session; returns the wal_sync and
# wal_write deltas as seen by the shared statistics
sub measure
{
	my ($stmt) = @_;
	my $sql = join('', map { my $s = $stmt; $s =~ s/\$i/$_/g; "$s\n" } 1 .. $N);

	$node->safe_psql('postgres', "SELECT pg_stat_reset_shared('wal')");
	my $out = $node->safe_psql('postgres',
		$sql . "SELECT pg_stat_force_next_flush();\n"
		  . "SELECT wal_sync || ' ' || wal_write || ' ' || wal_records FROM pg_stat_wal;\n");
	my @lines = split /\n/, $out;
	return split / /, $lines[-1];
}

my ($kv_sync, $kv_write, $kv_records) = measure("SELECT nokv_put('k\$i', 'value \$i');");
my ($heap_sync, $heap_write, $heap_records) = measure("INSERT INTO h VALUES (\$i, 'value \$i');");
my ($both_sync, $both_write, $both_records) =
  measure("BEGIN; SELECT nokv_put('b\$i', 'value \$i'); INSERT INTO h VALUES (\$i, 'b'); COMMIT;");

diag("$N commits: nokv_put wal_sync=$kv_sync (wal_write=$kv_write, records=$kv_records); "
	  . "heap insert wal_sync=$heap_sync (wal_write=$heap_write, records=$heap_records); "
	  . "both in one transaction wal_sync=$both_sync (wal_write=$both_write, records=$both_records)");

cmp_ok($kv_sync, '>=', $N, "nokv_put: at least one WAL flush per commit ($kv_sync for $N)");
cmp_ok($kv_sync, '<=', $N + $TOLERANCE, "nokv_put: one WAL flush per commit ($kv_sync for $N)");
cmp_ok($heap_sync, '>=', $N, "heap insert: one WAL flush per commit ($heap_sync for $N)");
cmp_ok($both_sync, '<=', $N + $TOLERANCE,
	"nokv_put + heap insert in one transaction: still one WAL flush per commit ($both_sync for $N)");
cmp_ok(abs($kv_sync - $heap_sync), '<=', $TOLERANCE, 'nokv commits cost the same WAL flushes as heap commits');

# the data is there
is($node->safe_psql('postgres', "SELECT nokv_get('k$N') || ',' || nokv_get('b$N')"),
	"value $N,value $N", 'the measured writes are readable');

$node->stop;
done_testing();
