
# t/004_flush_then_crash.pl
#
# Data split between SSTs and WAL the engine must re-apply.
#
#  1. writes, nokv_flush(), more writes, immediate stop with no checkpoint
#     since: the SSTs hold the first part, crash recovery's redo re-applies
#     the rest.
#  2. writes, nokv_flush(), more writes, CHECKPOINT, immediate stop: the
#     records between the flush and the checkpoint's redo point are
#     re-applied by the engine itself when the startup process opens it
#     ("re-applied N WAL records" with N at least their number).
#  3. a clean restart re-applies the unflushed tail from the slot.
#  4. a crash right after a crash restart (stop immediate as soon as the
#     server accepts connections), then a start: nothing lost.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use NokvTest;

my $node = nokv_node('flush_then_crash');
my %expected;

# puts keys prefix00001.. in one transaction; mirrors them in %expected
sub put_range
{
	my ($prefix, $from, $to, $tag) = @_;

	$node->safe_psql('postgres', qq{
SELECT count(nokv_put(format('%s%s', '$prefix', lpad(i::text, 5, '0')),
                      '$tag-' || i || '-' || repeat('v', (i * 37) % 600)))
FROM generate_series($from, $to) i});
	$expected{sprintf('%s%05d', $prefix, $_)} = "$tag-$_-" . ('v' x (($_ * 37) % 600))
	  for $from .. $to;
	return $to - $from + 1;
}

# deletes every step-th key of a range, one transaction
sub delete_range
{
	my ($prefix, $from, $to, $step) = @_;

	$node->safe_psql('postgres', qq{
SELECT count(nokv_delete(format('%s%s', '$prefix', lpad(i::text, 5, '0'))))
FROM generate_series($from, $to, $step) i});
	for (my $i = $from; $i <= $to; $i += $step)
	{
		delete $expected{sprintf('%s%05d', $prefix, $i)};
	}
	return;
}

sub check
{
	my ($what) = @_;
	is(nokv_digest($node), expected_digest(\%expected), $what);
	return;
}

sub reapplied
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my @n = $log =~ /nokv engine opened from .*: re-applied (\d+) WAL records/g;
	return @n ? $n[-1] : undef;
}

# ---------- 1: flush, more writes, crash before any checkpoint ----------

put_range('a', 1, 3000, 'one');
$node->safe_psql('postgres', 'SELECT nokv_flush()');
my $sst_count = () = glob($node->data_dir . '/nokv/*.sst');
cmp_ok($sst_count, '>=', 1, "nokv_flush wrote SSTs ($sst_count)");
put_range('a', 2001, 5000, 'two');
delete_range('a', 1, 5000, 9);
check('before the crash');

my $offset = log_position($node);
$node->stop('immediate');
$node->start;
wait_nokv_ready($node);
check('flush + writes + immediate stop (no checkpoint): everything committed present');
my $n = reapplied($offset);
ok(defined $n, 'server log shows "re-applied N WAL records" (N=' . ($n // 'none') . ')');

# ---------- 2: flush, writes, checkpoint, crash ----------

put_range('b', 1, 2000, 'three');
$node->safe_psql('postgres', 'SELECT nokv_flush()');
my $after_flush = 1500;
put_range('b', 1001, 2000 + 500, 'four');    # 1500 records after the flush
$node->safe_psql('postgres', 'CHECKPOINT');
check('before the second crash');

$offset = log_position($node);
$node->stop('immediate');
$node->start;
wait_nokv_ready($node);
check('flush + writes + checkpoint + immediate stop: everything committed present');
$n = reapplied($offset);
ok(defined $n && $n >= $after_flush,
	"records between the flush and the redo point re-applied by the engine (N=" . ($n // 'none')
	  . ", at least $after_flush)");

# ---------- 3: clean restart re-applies the unflushed tail ----------

put_range('c', 1, 1000, 'five');
$offset = log_position($node);
$node->restart;
wait_nokv_ready($node);
check('clean restart: everything present');
$n = reapplied($offset);
ok(defined $n && $n >= 1000,
	'clean restart: the flush worker re-applied the unflushed tail (N=' . ($n // 'none') . ')');

# ---------- 4: a crash right after a crash restart ----------

put_range('d', 1, 2000, 'six');
$node->safe_psql('postgres', 'SELECT nokv_flush()');
put_range('d', 1500, 3000, 'seven');
$node->stop('immediate');
$offset = log_position($node);
$node->start;
$node->stop('immediate');    # as soon as it accepts connections
my $first = slurp_file($node->logfile, $offset);
note('engine state at the second crash: '
	  . ($first =~ /re-applied (\d+) WAL records/ ? "opened (re-applied $1)" : 'not opened yet'));
$node->start;
wait_nokv_ready($node);
check('crash right after the crash restart, then start: nothing lost');
wait_nokv_workers($node);

# a crash while the engine is re-applying is t/005_crash_in_recovery.pl

$node->stop;
done_testing();
