
# t/010_cli_matches_views.pl
#
# The `nokv` command reads a stopped server's $PGDATA/nokv; the views
# (nokv_sstables, nokv_levels, nokv_manifest, nokv_vlog_segments) show the
# running engine.  For a quiescent engine both must agree exactly
# (docs/cli.md), after a clean stop and after a crash: the files a crash
# leaves are the state the live engine reported, and the restarted engine
# reports that state again.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use NokvTest;

# the CLI: $NOKV_CLI, PostgreSQL's bindir, or the tree's build
my $cli = $ENV{NOKV_CLI};
if (!$cli)
{
	my $bindir = `pg_config --bindir 2>/dev/null`;
	chomp $bindir;
	foreach my $c ("$bindir/nokv", "$FindBin::RealBin/../build/release/nokv")
	{
		if (-x $c) { $cli = $c; last; }
	}
}
plan skip_all => 'the nokv CLI is not installed (pg_config --bindir) nor built (build/release/nokv)'
  unless $cli && -x $cli;

my $node = nokv_node('cli_views');
plan skip_all => 'the extension has no nokv_sstables view'
  unless $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_views WHERE viewname IN ('nokv_sstables', 'nokv_levels', 'nokv_manifest', 'nokv_vlog_segments')"
  ) == 4;
note("CLI: $cli");
my $dir = $node->data_dir . '/nokv';

# ---------- the live figures, in the CLI's terms ----------

sub views
{
	my %v;
	$v{sst} = $node->safe_psql('postgres', q{
SELECT string_agg(concat_ws(' ', level, file_number, size, entries, deletions, range_deletions,
                            min_version - '0/0'::pg_lsn, max_version - '0/0'::pg_lsn,
                            smallest_cf, encode(smallest_key, 'hex'),
                            largest_cf, encode(largest_key, 'hex')), E'\n' ORDER BY file_number)
FROM nokv_sstables});
	$v{levels} = $node->safe_psql('postgres', q{
SELECT string_agg(concat_ws(' ', level, files, bytes, entries, target_bytes, round(score::numeric, 4)),
                  E'\n' ORDER BY level)
FROM nokv_levels});
	$v{manifest} = $node->safe_psql('postgres', q{
SELECT concat_ws(' ', manifest_number, next_file_number, last_version - '0/0'::pg_lsn,
                 flushed_lsn - '0/0'::pg_lsn, live_files, live_bytes, vlog_segments,
                 vlog_head_segment, vlog_head_offset, num_levels)
FROM nokv_manifest});
	$v{vlog} = $node->safe_psql('postgres', q{
SELECT coalesce(string_agg(concat_ws(' ', segment, size, discard, is_head), E'\n' ORDER BY segment), '')
FROM nokv_vlog_segments});
	return \%v;
}

# the same from the files
sub cli
{
	my %c;
	my $json = sub {
		my ($cmd) = @_;
		my ($stdout, $stderr);
		my $ok = IPC::Run::run([ $cli, $cmd, '--workdir', $dir, '--json' ], '>', \$stdout, '2>', \$stderr);
		die "nokv $cmd failed: $stderr" unless $ok;
		return decode_json($stdout);
	};
	my $sst = $json->('sst');
	$c{sst} = join("\n",
		map {
			join(' ',
				$_->{level}, $_->{number}, $_->{size}, $_->{entries},
				$_->{deletions}, $_->{range_deletions}, $_->{min_version}, $_->{max_version},
				$_->{smallest_cf}, $_->{smallest_key_hex}, $_->{largest_cf}, $_->{largest_key_hex})
		} sort { $a->{number} <=> $b->{number} } @$sst);
	my $stats = $json->('stats');
	my @levels;
	for (my $l = 0; exists $stats->{"lsm.levels.L$l.tables"}; $l++)
	{
		push @levels, join(' ',
			$l, map({ $stats->{"lsm.levels.L$l.$_"} } qw(tables size_bytes entries target_bytes)),
			sprintf('%.4f', $stats->{"lsm.levels.L$l.score"}));
	}
	$c{levels} = join("\n", @levels);
	my $m = $json->('manifest')->[0];
	my ($flushed) = map { $_->{flushed} } grep { $_->{log_id} == 0 } @{ $m->{external_logs} };
	$c{manifest} = join(' ',
		$m->{manifest_number}, $m->{next_file_number}, $m->{last_version}, $flushed // 0,
		$m->{live_files}, $m->{live_bytes}, $m->{vlog_segments},
		$m->{vlog_head_segment}, $m->{vlog_head_offset}, $m->{num_levels});
	my $vlog = $json->('vlog');
	$c{vlog} = join("\n",
		map { join(' ', $_->{number}, $_->{size}, $_->{discard}, $_->{is_head} ? 't' : 'f') }
		  sort { $a->{number} <=> $b->{number} } @$vlog);
	return \%c;
}

# round(score, 4) prints trailing zeros differently from sprintf: normalise
sub norm
{
	my ($s) = @_;
	$s =~ s/(\d+\.\d*?)0+(?=\s|$)/$1/g;
	$s =~ s/\.(?=\s|$)//g;
	return $s;
}

# Quiescent: every memtable empty, every worker idle, no collectable
# value-log segment left, and the views the same twice in a row.
sub quiesce
{
	$node->safe_psql('postgres', 'SELECT nokv_flush()');
	1 while $node->safe_psql('postgres', 'SELECT nokv_vlog_gc()') > 0;
	my $prev = '';
	for (1 .. 60)
	{
		my $busy = $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM nokv_workers WHERE activity NOT IN ('idle', 'waiting'))
     + (SELECT coalesce(sum(entries), 0) FROM nokv_memtables WHERE state <> 'retired')});
		my $v = views();
		my $now = join("\n--\n", map { $v->{$_} } sort keys %$v);
		return $v if $busy == 0 && $now eq $prev;
		$prev = $now;
		usleep(500_000);
	}
	die 'the engine did not become quiescent';
}

sub compare
{
	my ($what, $v, $c) = @_;
	foreach my $k (qw(sst levels manifest vlog))
	{
		is(norm($c->{$k}), norm($v->{$k}), "$what: $k agrees");
	}
	return;
}

# ---------- data in several levels and the value log ----------

$node->safe_psql('postgres', q{
SELECT count(nokv_put('k' || lpad(i::text, 6, '0'), repeat(chr(65 + i % 26), 50 + i % 500)))
FROM generate_series(1, 20000) i;
SELECT nokv_flush();
SELECT count(nokv_delete('k' || lpad(i::text, 6, '0'))) FROM generate_series(1, 20000, 13) i;
SELECT nokv_flush();
SELECT nokv_compact();
SELECT count(nokv_put('m' || i, repeat('m', 300 + i % 100))) FROM generate_series(1, 3000) i;
SELECT nokv_flush();
SELECT count(nokv_put('n' || i, 'small ' || i)) FROM generate_series(1, 2000) i;});
my $live = quiesce();
cmp_ok(scalar(split /\n/, $live->{sst}), '>=', 2, 'SSTs in more than one file');
note("live manifest: $live->{manifest}");

my ($stdout, $stderr);
IPC::Run::run([ $cli, 'sst', '--workdir', $dir ], '>', \$stdout, '2>', \$stderr);
is($? >> 8, 2, 'the CLI refuses (exit 2) while the server runs');
like($stderr, qr/in use by a running PostgreSQL server/, 'and says why');

$node->stop;
compare('clean stop', $live, cli());

# ---------- after a crash ----------

$node->start;
wait_nokv_ready($node);
$node->safe_psql('postgres', q{
SELECT count(nokv_put('p' || i, repeat('p', 200 + i % 300))) FROM generate_series(1, 4000) i;
SELECT nokv_flush();});
$live = quiesce();
$node->stop('immediate');
my $files = cli();
compare('immediate stop', $live, $files);

$node->start;
wait_nokv_ready($node);
my $again = quiesce();
compare('after the crash restart, the live engine', $again, $files);

$node->stop;
done_testing();
