
# t/024_tam_pgbench.pl
#
# Correctness soak: pgbench's TPC-B-like transactions on nokv tables.
# pgbench -i builds the four tables as heap, ALTER TABLE ... SET ACCESS
# METHOD nokv converts them (indexes rebuilt), then two clients run a fixed
# number of transactions (pgbench vacuums the tables first).  Every
# transaction adds one delta to an account, a teller and a branch and logs
# it in history, so afterwards the sums of the balances of the three tables
# equal the sum of the history deltas, and history has one row per
# transaction.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $clients = 2;
my $per_client = 500;

my $node = nokv_node('tam_pgbench');

$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
foreach my $t (qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history))
{
	$node->safe_psql('postgres', "ALTER TABLE $t SET ACCESS METHOD nokv");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(c.relname || '=' || a.amname, ',' ORDER BY c.relname)
	FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'}),
	'pgbench_accounts=nokv,pgbench_branches=nokv,pgbench_history=nokv,pgbench_tellers=nokv',
	'the four tables are nokv tables');
is($node->safe_psql('postgres', 'SELECT count(*), sum(abalance) FROM pgbench_accounts'),
	'100000|0', 'converted pgbench_accounts has its 100000 rows');
is($node->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM pgbench_accounts WHERE aid BETWEEN 1 AND 100000"),
	'100000', 'the rebuilt primary key finds every account');

# pgbench vacuums the nokv tables and truncates history before it starts;
# a failed vacuum would only be a warning on stderr, so stderr must be
# exactly the vacuum's progress line
$node->command_checks_all(
	[ 'pgbench', '-c', $clients, '-j', $clients, '-t', $per_client, 'postgres' ],
	0,
	[ qr/number of transactions actually processed: @{[ $clients * $per_client ]}\//,
	  qr/number of failed transactions: 0 / ],
	[ qr/\Astarting vacuum\.\.\.end\.\n\z/ ],
	"pgbench -c $clients -t $per_client: vacuum and every transaction succeed");

my $ntx = $clients * $per_client;
my ($abal, $bbal, $tbal, $delta, $nhist) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT sum(abalance) FROM pgbench_accounts),
	       (SELECT sum(bbalance) FROM pgbench_branches),
	       (SELECT sum(tbalance) FROM pgbench_tellers),
	       (SELECT sum(delta) FROM pgbench_history),
	       (SELECT count(*) FROM pgbench_history)});
is($nhist, $ntx, "history has one row per transaction ($ntx)");
is($abal, $delta, "sum(abalance) = sum(delta) ($delta)");
is($bbal, $delta, 'sum(bbalance) = sum(delta)');
is($tbal, $delta, 'sum(tbalance) = sum(delta)');

# row counts unchanged by the updates, and index and seq scans agree
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM pgbench_accounts) || ',' ||
	       (SELECT count(*) FROM pgbench_branches) || ',' ||
	       (SELECT count(*) FROM pgbench_tellers)}),
	'100000,1,10', 'one row per account, branch and teller');
my $seq = $node->safe_psql('postgres',
	'SET enable_indexscan = off; SET enable_bitmapscan = off; '
	  . 'SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0');
my $idx = $node->safe_psql('postgres',
	'SET enable_seqscan = off; SET enable_bitmapscan = off; '
	  . 'SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0');
is($idx, $seq, 'index scan and seq scan of pgbench_accounts agree');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pgbench_accounts a
	JOIN (SELECT aid, sum(delta) AS d FROM pgbench_history GROUP BY aid) h USING (aid)
	WHERE a.abalance <> h.d}),
	'0', 'every touched account balance equals its own history');

# VACUUM after the run (dead row versions from 1000 updates of 10 tellers
# and 1 branch), then the same sums
$node->safe_psql('postgres', 'VACUUM pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
is($node->safe_psql('postgres', q{
	SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)
	   AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history)
	   AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history)}),
	't', 'the sums still match after VACUUM');

unlike(slurp_file($node->logfile), qr/PANIC|TRAP:|ERROR/, 'no error in the server log');
$node->stop;
done_testing();
