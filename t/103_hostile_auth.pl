# The hostile-tenant suite, its part for the unauthenticated client: an
# attacker who can only open TCP connections and send startup packets.
# The authentication hook is the privileged code that sees what such a
# client sends (its address, the user, database and application names of
# its startup packet) and keeps some of it in shared memory, in
# adr_ops.blocklist and, through adr_evidence_snapshot(), in the
# append-only adr_ops.evidence.  The attacker here talks the protocol
# itself, with a small socket client, as a real one would:
#
# - invalid UTF-8 and over-long names in the startup packet are stored
#   cleaned (printable ASCII, \xNN escapes, cut to a name's length): the
#   failure counts, an evidence snapshot and a dump and reload of the
#   evidence all work and show the cleaned name;
# - many failing addresses (from 127.0.0.0/8, which is all local on Linux)
#   fill only the auto-bans' share of adr_ops.max_blocked: the oldest
#   auto-bans are evicted (from the hook's copy and from the table) and a
#   manual adr_block_ip() always fits;
# - IPv6 failures are counted, and banned, per /64.  Only ::1 is a local
#   IPv6 address here, so the grouping is shown through what the code
#   exposes: the failures of ::1 are counted under ::/64, the ban is ::/64,
#   and the hook's lookup refuses another address of that /64 but not one
#   of the next.
use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::IP;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hostile_auth');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
# 8 entries: 4 for auto-bans (adr_ops.auth_ban_share), 4 for manual ones.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
listen_addresses = '127.0.0.1,::1'
adr_ops.max_blocked = 8
adr_ops.auth_ban_share = 50
adr_ops.auth_failure_limit = 2
adr_ops.auth_ban_loopback = on
});
# Every TCP client must give a password (cleartext: the raw client below
# needs no SCRAM); the test itself works over the Unix socket.
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $hba "local all all trust\n"
  . "host all all 127.0.0.0/8 password\n"
  . "host all all ::1/128 password\n";
close $hba;
$node->start;
my $port = $node->port;

$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE ROLE app LOGIN PASSWORD 'right';
});
$node->poll_query_until('postgres', 'SELECT loaded FROM adr_ops._security_state()')
  or die 'the launcher did not load the blocklist';

# ---------- the attacker's client ----------

# usage: read_message(SOCKET) -- one backend message as (type, body), or
# ('', '') when the server closed the connection
sub read_message
{
	my ($sock) = @_;
	my $sel = IO::Select->new($sock);
	my $buf = '';
	my $want = 5;
	while (length($buf) < $want)
	{
		$sel->can_read($PostgreSQL::Test::Utils::timeout_default)
		  or die 'no answer from the server';
		my $n = sysread($sock, $buf, $want - length($buf), length($buf));
		die "read: $!" unless defined $n;
		return ('', '') if $n == 0;
		$want = 1 + unpack('N', substr($buf, 1, 4)) if length($buf) == 5 && $want == 5;
	}
	return (substr($buf, 0, 1), substr($buf, 5));
}

# usage: attempt(from => ADDRESS, user => BYTES, password => TEXT, ...)
# Opens a TCP connection from ADDRESS, sends a startup packet with the
# names given as raw bytes, answers the password request and returns what
# came of it: 'ok' (the server accepted the password and the hook let the
# client in) or the message of the ErrorResponse.
sub attempt
{
	my (%o) = @_;
	my $v6 = $o{from} =~ /:/;
	my $sock = IO::Socket::IP->new(
		PeerHost => $v6 ? '::1' : '127.0.0.1', PeerPort => $port,
		LocalHost => $o{from}, Proto => 'tcp')
	  or die "connect from $o{from}: $@";
	my $params = join('', map { "$_\0" }
		  'user', $o{user},
		  'database', $o{database} // 'postgres',
		  'application_name', $o{application} // 'attacker') . "\0";
	my $body = pack('N', 196608) . $params;
	syswrite($sock, pack('N', 4 + length $body) . $body) or die "write: $!";

	my ($type, $msg) = read_message($sock);
	if ($type eq 'R' && unpack('N', $msg) == 3)    # cleartext password, please
	{
		my $pw = ($o{password} // 'wrong') . "\0";
		syswrite($sock, 'p' . pack('N', 4 + length $pw) . $pw) or die "write: $!";
		($type, $msg) = read_message($sock);
	}
	close $sock;
	return 'ok' if $type eq 'R' && unpack('N', $msg) == 0;
	return "closed" if $type eq '';
	die "unexpected message type $type" unless $type eq 'E';
	my %f = map { substr($_, 0, 1) => substr($_, 1) } split /\0/, $msg;
	return $f{M};
}

is(attempt(from => '127.0.0.1', user => 'app', password => 'right'),
	'ok', 'the raw client logs in with the right password');

# ---------- names from the startup packet (finding: stored raw) ----------

my $log_offset = -s $node->logfile;
like(
	attempt(
		from => '127.0.0.50',
		user => "mallory\xff\xfe",
		database => "db\xc3",
		application => "app\x80"),
	qr/^password authentication failed for user/,
	'a startup packet with invalid UTF-8 in its names fails to authenticate');
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s %s', client, array_to_string(user_names, ','), failures)
          FROM adr_ops.adr_auth_failures() WHERE client = '127.0.0.50'}),
	'127.0.0.50 mallory\xff\xfe 1',
	'adr_auth_failures() shows the user name cleaned, its bytes escaped');
is( $node->safe_psql('postgres', q{
        SELECT bool_and(u = E'mallory\\\\xff\\\\xfe' AND u ~ '^[ -~]*$')
          FROM adr_ops.adr_auth_failures() f, unnest(f.user_names) u
         WHERE f.client = '127.0.0.50'}),
	't', 'the cleaned name is printable ASCII, valid in every encoding');
like(slurp_file($node->logfile, $log_offset),
	qr/adr_ops counted a failed authentication from host "127\.0\.0\.50" for user "mallory\\xff\\xfe"/,
	'the hook logs the cleaned name');

# An over-long name (the server cuts it at 63 bytes, maybe inside a
# character) is cleaned and then cut again at a whole escape.
like(attempt(from => '127.0.0.51', user => "\xff" x 100),
	qr/^password authentication failed/, 'an over-long name fails to authenticate');
is( $node->safe_psql('postgres', q{
        SELECT array_to_string(user_names, ',') = repeat(E'\\\\xff', 15)
          FROM adr_ops.adr_auth_failures() WHERE client = '127.0.0.51'}),
	't', 'an over-long name is stored cut to a name\'s length, at a whole escape');

# The evidence keeps it, and a dump of the evidence loads again.
my $id = $node->safe_psql('postgres', q{SELECT adr_ops.adr_evidence_snapshot('hostile startup packet')});
is( $node->safe_psql('postgres', qq{
        SELECT count(*) FROM adr_ops.evidence e,
               jsonb_array_elements(e.auth_failures) f, jsonb_array_elements_text(f->'user_names') u
         WHERE e.id = $id AND u = E'mallory\\\\xff\\\\xfe'}),
	'1', 'the evidence snapshot holds the cleaned name');
my $dump = PostgreSQL::Test::Utils::tempdir() . '/evidence.sql';
$node->command_ok(
	[ 'pg_dump', '--data-only', '--table=adr_ops.evidence', '-f', $dump, '-d', $node->connstr('postgres') ],
	'pg_dump of adr_ops.evidence');
$node->safe_psql('postgres', 'CREATE DATABASE evidence_copy');
$node->safe_psql('evidence_copy', 'CREATE EXTENSION adr_ops');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $node->connstr('evidence_copy') ],
	'the dump of adr_ops.evidence loads into another database');
is( $node->safe_psql('evidence_copy', qq{
        SELECT count(*) FROM adr_ops.evidence e,
               jsonb_array_elements(e.auth_failures) f, jsonb_array_elements_text(f->'user_names') u
         WHERE e.id = $id AND u = E'mallory\\\\xff\\\\xfe'}),
	'1', 'and the reloaded evidence shows the cleaned name');

# ---------- IPv6: counted and banned per /64 ----------

for my $i (1 .. 2)
{
	like(attempt(from => '::1', user => 'app', password => 'wrong'),
		qr/^password authentication failed/, "wrong password $i from ::1");
}
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', client, failures) FROM adr_ops.adr_auth_failures()
         WHERE family(client) = 6}),
	'::/64 2', 'the failures of ::1 are counted for its /64');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_access_review('::1')
         WHERE source = 'auth_failures' AND address = '::/64'}),
	'1', 'the access review of ::1 finds the failures of its /64');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(coalesce(adr_ops._security_blocked(a)::text, 'none'), ' ' ORDER BY a)
          FROM unnest('{::1,::2,::ffff:ffff:ffff:ffff,0:0:0:1::1}'::inet[]) a}),
	'::/64 ::/64 ::/64 none', 'the auto-ban is of the /64: every address in it, none beyond');
like(attempt(from => '::1', user => 'app', password => 'right'),
	qr/^connection refused by adr_ops blocklist$/, 'a banned /64 refuses its client');
$node->poll_query_until('postgres', q{
    SELECT EXISTS (SELECT FROM adr_ops.blocklist WHERE client = '::/64' AND blocked_by = 'adr_ops auto-ban')})
  or die 'the IPv6 auto-ban did not reach the table';
pass('the /64 ban reaches the table');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('::/64')});
is(attempt(from => '::1', user => 'app', password => 'right'), 'ok', 'unblocked, ::1 logs in');

# ---------- many failing addresses (finding: they fill the blocklist) ----------

is( $node->safe_psql('postgres', q{SELECT format('%s %s', capacity, auto_ban_capacity) FROM adr_ops._security_state()}),
	'8 4', 'auto-bans may hold 4 of the 8 entries');

# usage: ban(ADDRESS) -- fail twice from ADDRESS: an auto-ban
sub ban
{
	my ($from) = @_;
	attempt(from => $from, user => 'app', password => 'wrong') for 1 .. 2;
	return;
}

$log_offset = -s $node->logfile;
ban("127.0.0.$_") for 10 .. 15;
is( $node->safe_psql('postgres', q{
        SELECT string_agg(coalesce(adr_ops._security_blocked(format('127.0.0.%s', i)::inet)::text, '-'), ' ' ORDER BY i)
          FROM generate_series(10, 15) i}),
	'- - 127.0.0.12/32 127.0.0.13/32 127.0.0.14/32 127.0.0.15/32',
	'six addresses banned: the two oldest auto-bans made room for the newest');
is( $node->safe_psql('postgres', q{SELECT format('%s %s', active_entries, auto_bans) FROM adr_ops._security_state()}),
	'4 4', 'the auto-bans hold their share, no more');
like(slurp_file($node->logfile, $log_offset),
	qr/adr_ops lifted the oldest auto-ban, of "127\.0\.0\.10", to make room\n.*DETAIL:  Auto-bans may hold 4 of the 8 entries of the blocklist \(adr_ops\.auth_ban_share\)\./,
	'the eviction is logged');
is(attempt(from => '127.0.0.10', user => 'app', password => 'right'),
	'ok', 'an evicted address logs in again');
like(attempt(from => '127.0.0.15', user => 'app', password => 'right'),
	qr/^connection refused by adr_ops blocklist$/, 'the newest ban refuses its address');

# The table follows: the launcher writes the pending bans and removes the
# evicted ones.
$node->poll_query_until('postgres', q{
    SELECT string_agg(host(client), ' ' ORDER BY client) = '127.0.0.12 127.0.0.13 127.0.0.14 127.0.0.15'
      FROM adr_ops.blocked_clients WHERE blocked_by = 'adr_ops auto-ban'})
  or die 'the table does not hold the four newest auto-bans';
pass('adr_ops.blocklist holds the four newest auto-bans, the evicted ones are gone');

# Every manual block of the manual part fits, however many addresses fail.
is( $node->safe_psql('postgres', q{
        SELECT sum(adr_ops.adr_block_ip(format('192.0.2.%s', i)::cidr, 'operator', terminate => false))
          FROM generate_series(1, 4) i}),
	'0', 'with the auto-bans\' share full, four manual blocks fit');
ban("127.0.0.$_") for 16 .. 19;
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', active_entries, auto_bans) FROM adr_ops._security_state()}),
	'8 4', 'more failing addresses replace auto-bans only');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(coalesce(adr_ops._security_blocked(a)::text, '-'), ' ' ORDER BY o)
          FROM unnest('{192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4,127.0.0.15,127.0.0.19}'::inet[])
               WITH ORDINALITY u(a, o)}),
	'192.0.2.1/32 192.0.2.2/32 192.0.2.3/32 192.0.2.4/32 - 127.0.0.19/32',
	'the manual blocks stay enforced, the oldest auto-bans went');
$node->poll_query_until('postgres', q{
    SELECT pending_bans = 0 FROM adr_ops._security_state()})
  or die 'the launcher did not write the pending bans';
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT adr_ops.adr_block_ip('198.51.100.0/24', 'one too many', terminate => false)});
like($err, qr/DETAIL:  5 manual ranges would be blocked; 4 of the 8 entries/,
	'the fifth manual range is refused by the manual part alone');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('192.0.2.4')});
is( $node->safe_psql('postgres', q{
        SELECT adr_ops.adr_block_ip('198.51.100.0/24', 'operator', terminate => false)}),
	'0', 'a manual block fits again once the operator made room, auto-bans or not');
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', count(*) FILTER (WHERE blocked_by = 'adr_ops auto-ban'), count(*))
          FROM adr_ops.blocked_clients}),
	'4 8', 'the table holds four auto-bans and four manual ranges');

$node->stop;
done_testing();
