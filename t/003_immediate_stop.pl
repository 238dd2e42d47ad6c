
# t/003_immediate_stop.pl
#
# Immediate shutdown (no checkpoint, no flush of anything) after commits.
#
# synchronous_commit = on: every commit reached the WAL on disk, so nothing
# committed may be lost, whether it sat in a memtable or an SST.
#
# synchronous_commit = off: the last commits may be lost, but a nokv write
# and a heap write of one transaction share its commit record, so they are
# lost or kept together: the ids in a heap table equal the nokv keys.
# Commits the WAL flush position has passed (pg_current_wal_flush_lsn())
# must survive.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('immediate_stop');

# ---------- synchronous commits ----------

my %expected;
foreach my $i (1 .. 4000)
{
	my $key = sprintf('s%05d', $i);
	$expected{$key} = "sync-$i-" . ('q' x ($i % 4 == 0 ? 500 : 30));
}
$node->safe_psql('postgres', q{
CREATE TABLE sync_ids (id int PRIMARY KEY);
-- 4000 transactions: half of them before a flush (SSTs), half after (memtable)
DO $$
BEGIN
	FOR i IN 1 .. 4000 LOOP
		PERFORM nokv_put(format('s%s', lpad(i::text, 5, '0')),
		                 'sync-' || i || '-' || repeat('q', CASE WHEN i % 4 = 0 THEN 500 ELSE 30 END));
		INSERT INTO sync_ids VALUES (i);
		COMMIT;
		IF i = 2000 THEN
			PERFORM nokv_flush();
		END IF;
	END LOOP;
END $$;
-- overwrite and delete some, committed too
DO $$
BEGIN
	FOR i IN 1 .. 4000 BY 10 LOOP
		PERFORM nokv_delete(format('s%s', lpad(i::text, 5, '0')));
		COMMIT;
	END LOOP;
	FOR i IN 5 .. 4000 BY 10 LOOP
		PERFORM nokv_put(format('s%s', lpad(i::text, 5, '0')), 'overwritten-' || i);
		COMMIT;
	END LOOP;
END $$;
});
for (my $i = 1; $i <= 4000; $i += 10) { delete $expected{sprintf('s%05d', $i)}; }
for (my $i = 5; $i <= 4000; $i += 10) { $expected{sprintf('s%05d', $i)} = "overwritten-$i"; }

is(nokv_digest($node, 's', 't'), expected_digest(\%expected), 'synchronous commits visible before the stop');
$node->stop('immediate');
$node->start;
wait_nokv_ready($node);
is(nokv_digest($node, 's', 't'), expected_digest(\%expected),
	'synchronous_commit=on: nothing committed lost by an immediate stop');
like(slurp_file($node->logfile), qr/database system was interrupted|was not properly shut down/,
	'the restart performed crash recovery');

# ---------- asynchronous commits ----------

$node->safe_psql('postgres', q{
CREATE TABLE async_ids (id int PRIMARY KEY);
CREATE PROCEDURE async_load(first int, last int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN first .. last LOOP
		INSERT INTO async_ids VALUES (i);
		PERFORM nokv_put('a' || lpad(i::text, 8, '0'), 'async-' || i);
		COMMIT;
	END LOOP;
END $$;
});

# batch A: asynchronous commits that the WAL flush then passes
$node->safe_psql('postgres', 'SET synchronous_commit = off; CALL async_load(1, 3000);');
my $lsn_a = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
ok($node->poll_query_until('postgres',
		"SELECT pg_current_wal_flush_lsn() >= '$lsn_a'::pg_lsn"),
	"WAL flushed past batch A ($lsn_a)");

# batch B: asynchronous commits running when the server stops
my $async = start_bg($node);
bg_send($async, "SET synchronous_commit = off;\nCALL async_load(100001, 100000000);\n");
ok(wait_for_sql($node, 'SELECT count(*) > 5000 FROM async_ids', 60, $async),
	'batch B is committing asynchronously');
my $flush_at_stop = $node->safe_psql('postgres',
	"SELECT 'flush ' || pg_current_wal_flush_lsn() || ', insert ' || pg_current_wal_insert_lsn() "
	  . "|| ', max id committed ' || (SELECT max(id) FROM async_ids)");
$node->stop('immediate');
bg_finish($async);
note("just before the stop: $flush_at_stop");

$node->start;
wait_nokv_ready($node);

my $heap = $node->safe_psql('postgres',
	"SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM async_ids");
my $kv = $node->safe_psql('postgres',
	"SELECT count(*) || ' ' || md5(string_agg(ltrim(substr(key, 2), '0'), ',' ORDER BY key COLLATE \"C\")) "
	  . "FROM nokv_scan('a'::text, 'b'::text) WHERE value = 'async-' || ltrim(substr(key, 2), '0')");
is($kv, $heap, 'asynchronous commits: the nokv keys equal the heap ids (lost or kept together)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM async_ids WHERE id <= 3000'), '3000',
	'batch A (flushed before the stop) is complete in the heap');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM nokv_scan('a'::text, 'a00003001'::text)"), '3000',
	'batch A (flushed before the stop) is complete in nokv');

my ($kept) = split / /, $heap;
my $last_seen = $node->safe_psql('postgres', 'SELECT max(id) FROM async_ids');
note("batch B: kept " . ($kept - 3000) . " transactions up to id $last_seen");

# the sync data is still intact after the second crash
is(nokv_digest($node, 's', 't'), expected_digest(\%expected), 'synchronous data still intact');

$node->stop;
done_testing();
