
# t/006_xid_reuse.pl
#
# A transaction writes nokv data and never commits; the server crashes.
# Its versions may survive in WAL and even in SSTs (another session's
# nokv_flush() wrote them out), carrying its xid.  If a new transaction got
# that xid after the restart and committed, those versions would become
# visible.  nokv prevents it: every record carries the xid, so WAL replay
# moves nextXid past it, and an SST is only written once the WAL it holds
# is flushed.
#
#  1. open transaction (keys x*), nokv_flush() from another session puts
#     its versions in an SST, kill -9 of its backend (crash restart).
#  2. open transaction (keys y*), another session's synchronous commit
#     makes its WAL durable, immediate stop, start.
#
# Then: new transactions get larger xids, the crashed ones are aborted,
# and their keys stay invisible through many commits, a flush and a
# compaction (which drops aborted versions).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('xid_reuse');
$node->safe_psql('postgres', "SELECT nokv_put('base', 'committed')");

sub open_writer
{
	my ($prefix) = @_;
	my $s = start_bg($node);
	bg_send($s, qq{BEGIN;
SELECT count(nokv_put('$prefix' || i, 'never committed ' || i)) FROM generate_series(1, 200) i;
SELECT nokv_put('shared', 'from the crashed transaction $prefix');
SELECT 'xid=' || txid_current();
}, qr/xid=\d+/);
	my ($xid) = $s->{out} =~ /xid=(\d+)/;
	return ($s, $xid);
}

sub invisible
{
	my ($prefix, $xid, $what) = @_;
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM nokv_scan('$prefix'::text, '${prefix}~'::text)"),
		'0', "$what: keys of crashed transaction $xid invisible");
	return;
}

# ---------- 1: versions in an SST, kill -9 of the backend ----------

my ($s1, $xid1) = open_writer('x');
$node->safe_psql('postgres', 'SELECT nokv_flush()');
my $offset = log_position($node);
kill9(bg_backend_pid($s1));
ok(wait_crash_restart($node, $offset), "1: crash restart after kill -9 of the backend of xid $xid1");
bg_finish($s1);

is($node->safe_psql('postgres', "SELECT txid_status($xid1)"), 'aborted', "1: xid $xid1 is aborted");
my $new = $node->safe_psql('postgres', 'SELECT txid_current()');
cmp_ok($new, '>', $xid1, "1: a new transaction's xid $new is greater than the crashed $xid1");
invisible('x', $xid1, '1');
is($node->safe_psql('postgres', "SELECT nokv_get('shared')"), '', '1: shared key not visible');

# ---------- 2: WAL made durable by another commit, immediate stop ----------

my ($s2, $xid2) = open_writer('y');
$node->safe_psql('postgres', "SELECT nokv_put('durable', 'a synchronous commit after it')");
$node->stop('immediate');
bg_finish($s2);
$node->start;
wait_nokv_ready($node);

is($node->safe_psql('postgres', "SELECT txid_status($xid2)"), 'aborted', "2: xid $xid2 is aborted");
$new = $node->safe_psql('postgres', 'SELECT txid_current()');
cmp_ok($new, '>', $xid2, "2: a new transaction's xid $new is greater than the crashed $xid2");
invisible('y', $xid2, '2');

# ---------- many new committed transactions: no xid is handed out again ----------

my $xids = $node->safe_psql('postgres', q{
CREATE TABLE seen (xid bigint);
DO $$
BEGIN
	FOR i IN 1 .. 300 LOOP
		PERFORM nokv_put('n' || i, 'new ' || i);
		INSERT INTO seen VALUES (txid_current());
		COMMIT;
	END LOOP;
END $$;
SELECT min(xid) || ' ' || max(xid) || ' ' || count(DISTINCT xid) FROM seen;});
my ($min, $max, $distinct) = split / /, $xids;
cmp_ok($min, '>', $xid2, "300 new transactions all got xids above the crashed ones ($min..$max)");
is($distinct, 300, 'each got its own xid');

invisible('x', $xid1, 'after 300 commits');
invisible('y', $xid2, 'after 300 commits');
$node->safe_psql('postgres', 'SELECT nokv_flush(); SELECT nokv_compact();');
invisible('x', $xid1, 'after flush and compaction');
invisible('y', $xid2, 'after flush and compaction');
is($node->safe_psql('postgres', "SELECT nokv_get('base') || ' ' || nokv_get('durable') || ' ' || nokv_get('n300')"),
	'committed a synchronous commit after it new 300', 'committed keys visible');
is($node->safe_psql('postgres', "SELECT nokv_get('shared')"), '', 'shared key still not visible');

# ---------- 3: nothing made its WAL durable ----------
# The records may be lost with the WAL buffers; then the xid may be handed
# out again, which is harmless only because its versions are gone too.

my ($s3, $xid3) = open_writer('z');
$offset = log_position($node);
kill9(bg_backend_pid($s3));
ok(wait_crash_restart($node, $offset), "3: crash restart right after xid $xid3 wrote");
bg_finish($s3);
my $first3 = $node->safe_psql('postgres', q{
CREATE TABLE seen3 (xid bigint);
DO $$
BEGIN
	FOR i IN 1 .. 20 LOOP
		PERFORM nokv_put('after3-' || i, 'new');
		INSERT INTO seen3 VALUES (txid_current());
		COMMIT;
	END LOOP;
END $$;
SELECT min(xid) FROM seen3});
note("3: crashed xid $xid3; new transactions start at xid $first3 ("
	  . ($first3 > $xid3 ? 'not reused: its WAL had reached the disk' : 'the xid was handed out again: its WAL was lost')
	  . ')');
invisible('z', $xid3, '3');
is($node->safe_psql('postgres', "SELECT nokv_get('shared')"), '', '3: shared key not visible');

# one more crash: still nothing of them
$node->stop('immediate');
$node->start;
wait_nokv_ready($node);
invisible('x', $xid1, 'after another crash');
invisible('y', $xid2, 'after another crash');
invisible('z', $xid3, 'after another crash');

$node->stop;
done_testing();
