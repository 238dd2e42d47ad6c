
# t/009_no_preload.pl
#
# Misconfiguration is refused loudly, never half-working:
#  - without shared_preload_libraries, CREATE EXTENSION nokv fails with
#    "nokv must be loaded via shared_preload_libraries" and a hint;
#  - with the preload but wal_level = minimal the server refuses to start
#    ("nokv requires wal_level replica or logical"): PostgreSQL's WAL is
#    the engine's log and a replication slot must keep it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

# ---------- no shared_preload_libraries ----------

my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
my ($rc, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION nokv');
isnt($rc, 0, 'CREATE EXTENSION nokv fails without the preload');
like($err, qr/ERROR:\s+nokv must be loaded via shared_preload_libraries/, 'with the error message');
like($err, qr/HINT:\s+Add nokv to shared_preload_libraries in postgresql.conf and restart the server/,
	'with a hint');
is($plain->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'nokv'"), '0',
	'no extension left behind');
($rc, $out, $err) = $plain->psql('postgres', "LOAD 'nokv'");
like($err, qr/nokv must be loaded via shared_preload_libraries/, 'LOAD is refused the same way');
is($plain->safe_psql('postgres', 'SELECT 1'), '1', 'the server is unaffected');
$plain->stop;

# ---------- the preload with wal_level = minimal ----------

my $minimal = PostgreSQL::Test::Cluster->new('wal_minimal');
$minimal->init;    # Cluster.pm's default: wal_level = minimal, max_wal_senders = 0
$minimal->append_conf('postgresql.conf', q{
shared_preload_libraries = 'nokv'
nokv.memtable_size = 4MB
nokv.max_memtables = 3
nokv.vlog_threshold = 256
wal_level = minimal
max_wal_senders = 0
});
ok(!$minimal->start(fail_ok => 1), 'the server refuses to start with wal_level = minimal');
my $log = slurp_file($minimal->logfile);
like($log, qr/nokv requires wal_level replica or logical/, 'log: "nokv requires wal_level replica or logical"');
like($log, qr/HINT:\s+Set wal_level = replica in postgresql.conf/, 'log: with a hint');

# fixed, it starts and works
$minimal->append_conf('postgresql.conf', "wal_level = replica\nmax_wal_senders = 2\n");
ok($minimal->start(fail_ok => 1), 'with wal_level = replica it starts');
$minimal->safe_psql('postgres', "CREATE EXTENSION nokv; SELECT nokv_put('a', 'b');");
is($minimal->safe_psql('postgres', "SELECT nokv_get('a')"), 'b', 'and nokv works');
$minimal->stop;

# ---------- no replication slot available ----------

$minimal->append_conf('postgresql.conf', "max_replication_slots = 0\n");
ok(!$minimal->start(fail_ok => 1), 'the server refuses to start with max_replication_slots = 0');
like(slurp_file($minimal->logfile), qr/nokv requires a free replication slot/,
	'log: "nokv requires a free replication slot"');

done_testing();
