
# t/RespClient.pm
#
# A minimal RESP client for the gateway's TAP tests (t/05*_resp_*.pl):
# raw sockets, so that the tests see every byte a server sends and can
# send anything, well-formed or not.  A reply is returned raw, whole
# (aggregates with their elements), or undef if the connection ends first.

package RespClient;

use strict;
use warnings;

use IO::Socket::INET;

use Exporter 'import';
our @EXPORT = qw(resp_enc resp_read resp_connect resp_try_connect resp_cmd bulk resp_closed);

# one command as a RESP array of bulk strings
sub resp_enc
{
	my $o = '*' . scalar(@_) . "\r\n";
	$o .= '$' . length($_) . "\r\n$_\r\n" foreach @_;
	return $o;
}

sub fill
{
	my ($s) = @_;
	my $rin = '';
	vec($rin, fileno($s->{sock}), 1) = 1;
	return 0 unless select(my $r = $rin, undef, undef, 20);
	my $n = sysread($s->{sock}, my $d, 1 << 20);
	return 0 unless $n;
	$s->{buf} .= $d;
	return 1;
}

sub resp_read
{
	my ($s) = @_;
	while ($s->{buf} !~ /\r\n/) { fill($s) or return undef; }
	$s->{buf} =~ s/^(.*?\r\n)//s;
	my $line = $1;
	my $t = substr($line, 0, 1);
	my $n = substr($line, 1, -2);
	my $out = $line;
	if (($t eq '$' || $t eq '=') && $n >= 0)
	{
		while (length($s->{buf}) < $n + 2) { fill($s) or return undef; }
		$out .= substr($s->{buf}, 0, $n + 2, '');
	}
	elsif ($t eq '*' || $t eq '~' || $t eq '%')
	{
		for (1 .. ($t eq '%' ? 2 * $n : $n))
		{
			my $r = resp_read($s);
			return undef unless defined $r;
			$out .= $r;
		}
	}
	return $out;
}

# a connection to 127.0.0.1:port, or undef
sub resp_try_connect
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
	  or return undef;
	return { sock => $sock, buf => '' };
}

sub resp_connect
{
	my ($port) = @_;
	return resp_try_connect($port) // die "connect to $port: $!";
}

sub resp_cmd
{
	my ($s, @args) = @_;
	syswrite($s->{sock}, resp_enc(@args));
	return resp_read($s);
}

sub bulk { return '$' . length($_[0]) . "\r\n$_[0]\r\n"; }

# is the connection closed (EOF within a few seconds)?
sub resp_closed
{
	my ($s, $seconds) = @_;
	my $rin = '';
	vec($rin, fileno($s->{sock}), 1) = 1;
	return 0 unless select(my $r = $rin, undef, undef, $seconds);
	my $n = sysread($s->{sock}, my $d, 65536);
	return !$n;
}

1;
