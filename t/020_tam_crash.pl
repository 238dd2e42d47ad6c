
# t/020_tam_crash.pl
#
# Crashes with uncommitted rows and index entries of a nokv table in
# flight, some of them already flushed to SSTs: after recovery the committed
# rows are all there and the uncommitted ones are gone, and new inserts are
# never confused with them: they reuse the aborted rows' keys in the unique
# index without conflict and get row ids (TIDs) above the aborted rows',
# because the row-id high-water mark survives the crash.  Seq scans, index
# scans and bitmap scans agree afterwards.
#
# Two crashes: kill -9 of a backend (the postmaster reinitialises shared
# memory) and an immediate shutdown.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('tam_crash');

$node->safe_psql('postgres', q{
CREATE TABLE c (id int PRIMARY KEY, code text NOT NULL, pad text) USING nokv;
CREATE UNIQUE INDEX c_code ON c (code);
CREATE INDEX c_pad ON c (pad);
INSERT INTO c SELECT g, 'code' || g, repeat('p', g % 50) FROM generate_series(1, 500) g;
});

# the four ways to read the table must agree
sub scans_agree
{
	my ($what) = @_;
	my $q = q{SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' ||
		coalesce(md5(string_agg(id || '/' || code || '/' || coalesce(pad, ''), ',' ORDER BY id)), '')
		FROM c WHERE id > 0 AND code > ''};
	my %res;
	$res{seq} = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; $q");
	$res{index} = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
	$res{bitmap} = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_indexscan = off; $q");
	$res{code_index} = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM c WHERE code >= 'code'");
	my ($n, $sum) = split /:/, $res{seq};
	is($res{index}, $res{seq}, "$what: index scan agrees with seq scan ($n rows)");
	is($res{bitmap}, $res{seq}, "$what: bitmap scan agrees with seq scan");
	is($res{code_index}, "$n:$sum", "$what: scan of the unique secondary index agrees");
	return $res{seq};
}

# an open transaction inserting ids [$lo, $hi]; reports its largest ctid
sub open_insert
{
	my ($lo, $hi) = @_;
	my $s = start_bg($node);
	bg_send($s, qq{BEGIN;
INSERT INTO c SELECT g, 'code' || g, repeat('u', 30) FROM generate_series($lo, $hi) g;
SELECT 'maxctid=' || max(ctid) FROM c WHERE id BETWEEN $lo AND $hi;
}, qr/maxctid=\(\d+,\d+\)/);
	my ($tid) = $s->{out} =~ /maxctid=(\(\d+,\d+\))/;
	return ($s, $tid);
}

my $base = scans_agree('before any crash');
like($base, qr/^500:125250:/, '500 committed rows');

# ---------- crash 1: kill -9 of a backend ----------

my ($open, $open_tid) = open_insert(10001, 11000);
ok($open_tid, "open transaction inserted 1000 rows, largest ctid $open_tid");
# push the uncommitted rows and index entries out of the memtable into SSTs
$node->safe_psql('postgres', 'SELECT nokv_flush()');
# a committed row after the uncommitted ones
$node->safe_psql('postgres', "INSERT INTO c VALUES (501, 'code501', 'after')");

my $offset = log_position($node);
ok(kill9(bg_backend_pid($open)), 'kill -9 the backend with the open transaction');
ok(wait_crash_restart($node, $offset), 'server restarted and nokv is ready');
bg_finish($open);

is($node->safe_psql('postgres', 'SELECT count(*) FROM c WHERE id > 10000'), '0',
	'crash 1: no uncommitted row is visible');
is($node->safe_psql('postgres', "SELECT pad FROM c WHERE id = 501"), 'after',
	'crash 1: the row committed after the uncommitted ones survived');
scans_agree('crash 1, after recovery');

# the same keys again: the unique indexes hold the aborted rows' entries,
# which must not count as duplicates; the new rows get higher row ids
$node->safe_psql('postgres',
	"INSERT INTO c SELECT g, 'code' || g, 'new' FROM generate_series(10001, 11000) g");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM c WHERE id BETWEEN 10001 AND 11000 AND ctid <= '$open_tid'"),
	'0', "crash 1: every new row's ctid is above the aborted rows' ($open_tid)");
is($node->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM c WHERE code BETWEEN 'code10001' AND 'code10999' AND pad = 'new'"),
	'999', 'crash 1: the unique secondary index finds the new rows');
scans_agree('crash 1, after re-inserting the keys');
my $hwm1 = $node->safe_psql('postgres', 'SELECT max(ctid) FROM c');

# ---------- crash 2: immediate shutdown, updates and deletes in flight ----------

($open, $open_tid) = open_insert(20001, 21000);
bg_send($open, q{UPDATE c SET pad = 'uncommitted update' WHERE id <= 100;
DELETE FROM c WHERE id BETWEEN 101 AND 200;
SELECT 'maxctid2=' || max(ctid) FROM c;
}, qr/maxctid2=\(\d+,\d+\)/);
my ($open_tid2) = $open->{out} =~ /maxctid2=(\(\d+,\d+\))/;
$node->safe_psql('postgres', 'SELECT nokv_flush()');
my $before = $node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM c');

$node->stop('immediate');
bg_finish($open);
$node->start;
wait_nokv_ready($node);

is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM c'), $before,
	'crash 2: the committed rows exactly');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM c WHERE id > 20000 OR pad = 'uncommitted update'"), '0',
	'crash 2: the open transaction left no insert or update');
is($node->safe_psql('postgres', 'SELECT count(*) FROM c WHERE id BETWEEN 101 AND 200'), '100',
	'crash 2: the rows it deleted are still there');
scans_agree('crash 2, after recovery');

$node->safe_psql('postgres',
	"INSERT INTO c SELECT g, 'code' || g, 'new2' FROM generate_series(20001, 21000) g;
	 UPDATE c SET pad = 'committed update' WHERE id <= 100;");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM c WHERE (id BETWEEN 20001 AND 21000 OR id <= 100) AND ctid <= '$open_tid2'"),
	'0', "crash 2: new rows and new row versions are above the aborted ones ($open_tid2)");
scans_agree('crash 2, after new writes');

# VACUUM removes the aborted rows' index entries; everything still agrees
$node->safe_psql('postgres', 'VACUUM c');
my $final = scans_agree('after VACUUM');
# 1..501, 10001..11000 and 20001..21000
like($final, qr/^2501:31126751:/, 'exactly the committed rows in the end (2501)');
is($node->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM c WHERE pad = 'committed update'"), '100',
	'the non-unique index finds the updated rows');

unlike(slurp_file($node->logfile), qr/PANIC|TRAP:/, 'no PANIC or assertion failure in the log');
$node->stop;
done_testing();
