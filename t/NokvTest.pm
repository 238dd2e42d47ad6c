
# t/NokvTest.pm
#
# Helpers shared by nokv's TAP tests (t/*.pl): a node configured for nokv,
# waiting for the engine and its workers after a (crash) restart, digests
# of the nokv data and of heap "mirror" tables, and psql sessions that run
# in the background so that a process can be killed while they work.
#
# Every node gets the settings the tests were specified with
# (shared_preload_libraries, nokv.memtable_size=4MB, nokv.max_memtables=3,
# nokv.vlog_threshold=256) plus two that PostgreSQL::Test::Cluster's own
# defaults would otherwise defeat: wal_level = replica (Cluster.pm writes
# wal_level = minimal, which nokv refuses) and restart_after_crash = on
# (Cluster.pm turns automatic crash restarts off).

package NokvTest;

use strict;
use warnings;

use Carp;
use Digest::MD5 qw(md5_hex);
use IPC::Run;
use Time::HiRes qw(usleep time);
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

use Exporter 'import';
our @EXPORT = qw(
  nokv_node nokv_base_conf wait_nokv_ready wait_nokv_workers nokv_worker_pids
  nokv_digest mirror_digest expected_digest log_position
  wait_crash_restart start_bg bg_backend_pid bg_send bg_finish
  proc_state wait_running kill9 nokv_setup_mirror nokv_query_error
  postmaster_pid child_pids wait_for_sql bg_alive
);

our @WORKER_TYPES = ('nokv flush', 'nokv compaction', 'nokv vlog gc');

sub nokv_base_conf
{
	return join("\n",
		"shared_preload_libraries = 'nokv'",
		"nokv.memtable_size = 4MB",
		"nokv.max_memtables = 3",
		"nokv.vlog_threshold = 256",
		"wal_level = replica",
		"max_wal_senders = 4",
		"restart_after_crash = on",
		"log_statement = none",
		"autovacuum = off",
		"");
}

# A running node with the nokv extension created in database postgres.
#   conf             => extra postgresql.conf lines (appended last)
#   allows_streaming => passed to init
#   start            => 0 to leave it stopped (no extension created)
sub nokv_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => $opt{allows_streaming} // 0);
	$node->append_conf('postgresql.conf', nokv_base_conf() . ($opt{conf} // ''));
	return $node if defined $opt{start} && !$opt{start};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION nokv');
	wait_nokv_ready($node);
	return $node;
}

# The engine serves reads (backends wait for READY themselves; a failed
# engine would make this time out, so check for that first).
sub wait_nokv_ready
{
	my ($node) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;

	while (time() < $deadline)
	{
		my ($rc, $out, $err) = $node->psql('postgres',
			"SELECT nokv_get('__nokv_ready__') IS NULL",
			timeout => 30);
		return 1 if $rc == 0 && $out eq 't';
		if ($err =~ /nokv engine is not available/)
		{
			diag("nokv engine failed: $err");
			return 0;
		}
		usleep(100_000);
	}
	croak "timed out waiting for the nokv engine of node " . $node->name;
}

# the pids of the three kinds of nokv workers, once all are running
sub wait_nokv_workers
{
	my ($node) = @_;
	my $types = join(',', map { "'$_'" } @WORKER_TYPES);

	$node->poll_query_until('postgres',
		"SELECT count(DISTINCT backend_type) FROM pg_stat_activity WHERE backend_type IN ($types)",
		'3')
	  or croak "nokv workers did not start on node " . $node->name;
	return nokv_worker_pids($node);
}

sub nokv_worker_pids
{
	my ($node) = @_;
	my $types = join(',', map { "'$_'" } @WORKER_TYPES);
	my %pids;

	foreach my $line (split /\n/,
		$node->safe_psql('postgres',
			"SELECT backend_type, pid FROM pg_stat_activity WHERE backend_type IN ($types)"))
	{
		my ($type, $pid) = split /\|/, $line;
		$pids{$type} = $pid;
	}
	return \%pids;
}

# "count md5" of every key=value pair nokv_scan returns (text API); an
# error comes back as "error: <message>" so that comparisons fail with it
sub nokv_digest
{
	my ($node, $start, $stop) = @_;
	my $lo = defined $start ? "'$start'" : 'NULL';
	my $hi = defined $stop ? "'$stop'" : 'NULL';

	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(key || '=' || value, E'\\n' "
		  . "ORDER BY key COLLATE \"C\")), 'empty') "
		  . "FROM nokv_scan(${lo}::text, ${hi}::text)");
	return $out if $rc == 0;
	$err =~ s/\s+/ /g;
	return "error: $err";
}

# the same digest over a heap table (k text, v text)
sub mirror_digest
{
	my ($node, $table, $where) = @_;
	$where = defined $where ? "WHERE $where" : '';

	return $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(k || '=' || v, E'\\n' "
		  . "ORDER BY k COLLATE \"C\")), 'empty') FROM $table $where");
}

# the same digest over a Perl hash key => value
sub expected_digest
{
	my ($h) = @_;
	my @keys = sort keys %$h;

	return scalar(@keys) . ' '
	  . (@keys ? md5_hex(join("\n", map { "$_=$h->{$_}" } @keys)) : 'empty');
}

# A heap table mirroring nokv writes, and procedures writing both in one
# transaction each, so that after a crash the heap table (whose recovery
# PostgreSQL guarantees) is the expected nokv content.
sub nokv_setup_mirror
{
	my ($node) = @_;

	$node->safe_psql('postgres', q{
CREATE TABLE mirror (k text PRIMARY KEY, v text NOT NULL);

-- deterministic value of step i: small ones stay in the LSM tree, large
-- ones (>= nokv.vlog_threshold) go to the value log
CREATE FUNCTION churn_value(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT rpad(i::text || ':', CASE WHEN i % 3 = 0 THEN 100 ELSE 300 + (i % 200)::int END,
              md5(i::text)) $$;

-- puts, overwrites and deletes over nkeys keys, committing every batch
-- steps; runs until it has done steps steps (or the server crashes)
CREATE PROCEDURE churn(first bigint, steps bigint, nkeys int, batch int, prefix text DEFAULT 'k')
LANGUAGE plpgsql AS $$
DECLARE
	key text;
BEGIN
	FOR i IN first .. first + steps - 1 LOOP
		key := prefix || lpad(((i::bigint * 7919) % nkeys)::text, 7, '0');
		IF i % 7 = 0 THEN
			PERFORM nokv_delete(key);
			DELETE FROM mirror WHERE k = key;
		ELSE
			PERFORM nokv_put(key, churn_value(i));
			INSERT INTO mirror VALUES (key, churn_value(i))
				ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
		END IF;
		IF i % batch = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	COMMIT;
END $$;
});
	return;
}

sub log_position
{
	my ($node) = @_;
	return -s $node->logfile;
}

# After a crash (of any child): wait until the postmaster has reinitialised,
# the engine serves and all three workers run again.
sub wait_crash_restart
{
	my ($node, $offset) = @_;

	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	wait_nokv_ready($node) or return 0;
	wait_nokv_workers($node);
	return 1;
}

# ---------- background psql sessions ----------

# psql reading from a string we append to, so it can be killed mid-query
sub start_bg
{
	my ($node, %opt) = @_;
	my $s = { in => '', out => '', err => '' };

	$s->{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	$s->{run} = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=' . ($opt{on_error_stop} // 1),
			'-d', $node->connstr('postgres'), '-f', '-'
		],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	$s->{in} .= "SELECT 'pid=' || pg_backend_pid();\n";
	pump_until($s->{run}, $s->{timer}, \$s->{out}, qr/pid=(\d+)\n/)
	  or croak "background psql did not start: $s->{err}";
	$s->{out} =~ /pid=(\d+)\n/;
	$s->{pid} = $1;
	$s->{out} = '';
	return $s;
}

sub bg_backend_pid { return $_[0]->{pid}; }

# send SQL; with a marker regexp, wait until the output matches it
sub bg_send
{
	my ($s, $sql, $until) = @_;

	$s->{in} .= $sql;
	if (defined $until)
	{
		pump_until($s->{run}, $s->{timer}, \$s->{out}, $until)
		  or croak "background psql: no \"$until\" in output; stderr: $s->{err}";
	}
	else
	{
		$s->{run}->pump_nb;
	}
	return $s->{out};
}

# End the session whatever state its server is in: ask psql to quit, and
# kill it if it is still busy (a query stuck in a stalled server) after 3 s.
sub bg_finish
{
	my ($s) = @_;

	eval {
		$s->{run}->pump_nb;
		if ($s->{run}->pumpable)
		{
			$s->{in} .= "\\q\n";
			my $deadline = time() + 3;
			while ($s->{run}->pumpable && time() < $deadline)
			{
				$s->{run}->pump_nb;
				usleep(20_000);
			}
		}
	};
	eval { $s->{run}->kill_kill(grace => 1) if $s->{run}->pumpable; };
	eval { $s->{run}->finish; };
	return $s->{err};
}

# Poll $sql until it returns 't', at most $seconds; false if it did not
# (or a background session in @watch died: its stderr is reported).
sub wait_for_sql
{
	my ($node, $sql, $seconds, @watch) = @_;
	my $deadline = time() + $seconds;

	while (time() < $deadline)
	{
		my ($rc, $out, $err) = $node->psql('postgres', $sql, timeout => 30);
		return 1 if $rc == 0 && $out eq 't';
		foreach my $s (@watch)
		{
			next if bg_alive($s);
			diag("background session (backend $s->{pid}) ended: $s->{err}");
			return 0;
		}
		usleep(100_000);
	}
	diag("timed out after ${seconds}s waiting for: $sql");
	return 0;
}

# is the session's psql still running (and its query not failed)?
sub bg_alive
{
	my ($s) = @_;
	eval { $s->{run}->pump_nb; };
	return 0 if $s->{err} =~ /ERROR|FATAL|PANIC/;
	return $s->{run}->pumpable ? 1 : 0;
}

# ---------- processes ----------

sub postmaster_pid
{
	my ($node) = @_;
	open my $fh, '<', $node->data_dir . '/postmaster.pid' or return undef;
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

# pid => command line of the postmaster's children
sub child_pids
{
	my ($ppid) = @_;
	my %children;

	opendir my $dh, '/proc' or return {};
	foreach my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$pid/stat" or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /^\d+ \(.*\) \S (\d+) /;
		next unless $1 == $ppid;
		open my $ch, '<', "/proc/$pid/cmdline" or next;
		my $cmd = <$ch> // '';
		close $ch;
		$cmd =~ s/\0+$//;
		$cmd =~ s/\0/ /g;
		$children{$pid} = $cmd;
	}
	closedir $dh;
	return \%children;
}

# the scheduler state of a process (R, S, D, ...), '' once it is gone
sub proc_state
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return '';
	my $stat = <$fh>;
	close $fh;
	return ($stat =~ /^\d+ \(.*\) (\S) /) ? $1 : '';
}

# Poll a process until it is seen running (not sleeping on its latch) or
# the time is up; returns whether it was caught running.
sub wait_running
{
	my ($pid, $seconds) = @_;
	my $deadline = time() + $seconds;

	while (time() < $deadline)
	{
		my $st = proc_state($pid);
		return 0 if $st eq '';
		return 1 if $st eq 'R' || $st eq 'D';
		usleep(500);
	}
	return 0;
}

sub kill9
{
	my ($pid) = @_;
	return kill('KILL', $pid);
}

# run SQL expected to fail; returns (sqlstate, full stderr)
sub nokv_query_error
{
	my ($node, $sql) = @_;
	my ($rc, $out, $err) =
	  $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($state // '', $err, $rc);
}

1;
