# The authentication hook: the blocklist refuses a blocked address while
# others connect, entries expire, block terminates existing sessions,
# wrong passwords lead to an auto-ban that reaches the table, maintenance
# mode refuses normal roles, admits superusers and survives a restart, the
# capacity limit, lock_role, the access review, and the error without
# shared_preload_libraries.
#
# libpq cannot choose its source address, and a client on this host always
# connects from 127.0.0.1; so the test runs a small TCP relay that accepts
# on 127.0.0.1 and connects to the server from 127.0.0.2.
use strict;
use warnings FATAL => 'all';

use IO::Select;
use IO::Socket::INET;
use POSIX ();

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('security');
# UTF8: the maintenance message is cut at a character boundary.
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
listen_addresses = '127.0.0.1,127.0.0.2'
log_connections = on
adr_ops.max_blocked = 12
adr_ops.auth_failure_limit = 3
wal_level = replica
max_wal_senders = 2
});
# Password authentication for the test roles, trust for the rest, all of
# it loopback only (which the audit must not report).
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $hba "local all all trust\n"
  . "host all pw_user,normal,+pw_group 127.0.0.0/8 scram-sha-256\n"
  . "host all all 127.0.0.0/8 trust\n"
  . "host all all ::1/128 trust\n";
close $hba;
$node->start;
my $port = $node->port;

$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE ROLE pw_user LOGIN PASSWORD 'right';
    CREATE ROLE normal LOGIN PASSWORD 'right';
    CREATE ROLE pw_group;
    -- user names that look like the access review's log patterns
    CREATE ROLE "x host ""bad""" LOGIN PASSWORD 'right' IN ROLE pw_group;
    CREATE ROLE "y host ""127.0.0.9""" LOGIN PASSWORD 'right' IN ROLE pw_group;
});
$node->poll_query_until('postgres', 'SELECT loaded FROM adr_ops._security_state()')
  or die 'the launcher did not load the blocklist';

# ---------- the relay from 127.0.0.2 ----------

# usage: relay_copy(SOCKET, SOCKET) -- copy both ways until one side closes
sub relay_copy
{
	my ($x, $y) = @_;
	my $sel = IO::Select->new($x, $y);
	while (1)
	{
		for my $fh ($sel->can_read)
		{
			my $n = sysread($fh, my $buf, 65536);
			return if !$n;
			my $to = fileno($fh) == fileno($x) ? $y : $x;
			my $off = 0;
			while ($off < length $buf)
			{
				my $w = syswrite($to, $buf, length($buf) - $off, $off);
				return unless defined $w;
				$off += $w;
			}
		}
	}
}

my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 32, ReuseAddr => 1, Proto => 'tcp')
  or die "relay: $!";
my $relay_port = $listener->sockport;
my $relay_pid = fork();
die "fork: $!" unless defined $relay_pid;
if ($relay_pid == 0)
{
	$SIG{CHLD} = 'IGNORE';
	while (1)
	{
		my $client = $listener->accept or next;
		my $child = fork();
		if (defined $child && $child == 0)
		{
			my $up = IO::Socket::INET->new(
				PeerAddr => '127.0.0.2', PeerPort => $port,
				LocalAddr => '127.0.0.2', Proto => 'tcp');
			relay_copy($client, $up) if $up;
			POSIX::_exit(0);
		}
		close $client;
	}
}
close $listener;
END { kill 'KILL', $relay_pid if $relay_pid; }

my $from2 = "host=127.0.0.1 port=$relay_port dbname=postgres";
my $from1 = "host=127.0.0.1 port=$port dbname=postgres";

# usage: session(CONNSTR) -- a psql session kept open in the background;
# returns (handle, backend pid)
sub session
{
	my ($connstr) = @_;
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $connstr, '-f', '-' ],
		'<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$in .= "SELECT pg_backend_pid();\n";
	$h->pump until $out =~ /^(\d+)\n/;
	return ($h, $1);
}

$node->connect_ok($from2, 'the relay connects from 127.0.0.2',
	sql => 'SELECT inet_client_addr()', expected_stdout => qr/^127\.0\.0\.2$/);
$node->connect_ok($from1, 'a direct connection comes from 127.0.0.1',
	sql => 'SELECT inet_client_addr()', expected_stdout => qr/^127\.0\.0\.1$/);

# ---------- blocking ----------

my ($ret, $out, $err) = $node->psql('postgres', q{SELECT adr_ops.adr_block_ip('127.0.0.0/30')},
	connstr => $from2);
like($err, qr/cannot block range "127\.0\.0\.0\/30": it contains your own address "127\.0\.0\.2"/,
	'blocking a range with the caller in it is refused');

my ($victim, $victim_pid) = session($from2);
is( $node->safe_psql('postgres',
		q{SELECT adr_ops.adr_block_ip('127.0.0.2/32', 'test: scanner', terminate => true)}),
	'1', 'blocking 127.0.0.2 terminates the one session from it');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $victim_pid)")
  or die 'the session from 127.0.0.2 survived';
pass('the session from 127.0.0.2 is gone');
$victim->kill_kill;

my $log_offset = -s $node->logfile;
$node->connect_fails($from2, 'a blocked address is refused',
	expected_stderr => qr/FATAL:  connection refused by adr_ops blocklist/,
	log_like => [qr/adr_ops refused a connection from host "127\.0\.0\.2" for user "\w+": blocked range "127\.0\.0\.2"/]);
($ret, $out, $err) = $node->psql('postgres', 'SELECT 1', connstr => $from2);
unlike($err, qr/127\.0\.0\.2|DETAIL/, 'the client is told nothing beyond the refusal');
$node->connect_ok($from1, '127.0.0.1 still connects');
$node->connect_ok($node->connstr('postgres'), 'the Unix socket still connects');

$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('127.0.0.2/32')});
$node->connect_ok($from2, 'unblocked, 127.0.0.2 connects again');

# Even with every IPv4 address blocked (force), the Unix socket gets in.
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT adr_ops.adr_block_ip('0.0.0.0/0', 'everything', terminate => false)}, connstr => $from1);
like($err, qr/cannot block range "0\.0\.0\.0\/0": it contains your own address "127\.0\.0\.1"/,
	'blocking everything from a TCP session is refused without force');
$node->safe_psql('postgres',
	q{SELECT adr_ops.adr_block_ip('0.0.0.0/0', 'everything', terminate => false, force => true)},
	connstr => $from1);
$node->connect_fails($from1, 'with 0.0.0.0/0 blocked, 127.0.0.1 is refused',
	expected_stderr => qr/connection refused by adr_ops blocklist/);
$node->connect_ok($node->connstr('postgres'), 'with 0.0.0.0/0 blocked, the Unix socket still connects');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('0.0.0.0/0')});
$node->connect_ok($from1, 'unblocked over the socket, 127.0.0.1 connects again');

# A range blocks the addresses in it.
$node->safe_psql('postgres',
	q{SELECT adr_ops.adr_block_ip('127.0.0.2/31', 'range', terminate => false)});
$node->connect_fails($from2, 'an address in a blocked range is refused',
	expected_stderr => qr/connection refused by adr_ops blocklist/);
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('127.0.0.2/31')});

# ---------- expiry ----------

# Long enough that the refusal is seen before it ends even on a loaded
# machine; then wait for the expiry, without a timed assertion.
$node->safe_psql('postgres',
	q{SELECT adr_ops.adr_block_ip('127.0.0.2/32', 'short', interval '30 seconds', false)});
$node->connect_fails($from2, 'a block with a duration applies at once',
	expected_stderr => qr/connection refused by adr_ops blocklist/);
$node->poll_query_until('postgres',
	q{SELECT expires_at < clock_timestamp() FROM adr_ops.blocklist WHERE client = '127.0.0.2/32'})
  or die 'the block did not expire';
$node->connect_ok($from2, 'after its expiry the address connects, with the row still in the table');
is($node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.blocked_clients'),
	'0', 'the expired row is not in blocked_clients');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('127.0.0.2/32')});

# ---------- two changers at once ----------

# Each stages the table as it reads it; the second waits for the first's
# commit, so that neither copy lacks the other's range.
my ($in1, $out1, $in2, $out2) = ('', '', '', '');
my $s1 = IPC::Run::start([ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in1, '>', \$out1, '2>', \$out1, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
my $s2 = IPC::Run::start([ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in2, '>', \$out2, '2>', \$out2, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$in1 .= "BEGIN;\nSELECT adr_ops.adr_block_ip('198.51.100.1', 'first', terminate => false);\nSELECT 'first staged';\n";
$s1->pump until $out1 =~ /first staged/;
$in2 .= "SELECT adr_ops.adr_block_ip('198.51.100.2', 'second', terminate => false);\nSELECT 'second done';\n";
$s2->pump_nb;    # hand psql the input; it then waits for the lock
$node->poll_query_until('postgres', q{
    SELECT EXISTS (SELECT FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock' AND query LIKE '%198.51.100.2%')})
  or die 'the second changer did not wait for the first';
$in1 .= "COMMIT;\n\\q\n";
$s1->finish;
$s2->pump until $out2 =~ /second done/;
$in2 .= "\\q\n";
$s2->finish;
is( $node->safe_psql('postgres', q{
        SELECT string_agg(coalesce(adr_ops._security_blocked(a)::text, 'none'), ' ' ORDER BY a)
          FROM unnest('{198.51.100.1,198.51.100.2}'::inet[]) a}),
	'198.51.100.1/32 198.51.100.2/32', 'two concurrent blocks both reach the hook');
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_unblock_ip('198.51.100.1'), adr_ops.adr_unblock_ip('198.51.100.2')});

# ---------- capacity ----------

$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_block_ip(format('10.0.%s.0/24', i)::cidr, 'fill', terminate => false)
      FROM generate_series(1, 6) i});
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT adr_ops.adr_block_ip('10.0.7.0/24', 'one too many', terminate => false)});
like($err, qr/ERROR:  too many blocked addresses\nDETAIL:  7 manual ranges would be blocked; 6 of the 12 entries of "adr_ops.max_blocked" are for them \(the rest, "adr_ops.auth_ban_share", for auto-bans\)\./,
	'the manual part of adr_ops.max_blocked (half by default) refuses one more range with a clear error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.blocklist WHERE client = '10.0.7.0/24'}),
	'0', 'the refused range is not in the table');
# Two of them become auto-bans (direct DML reaches the hook too); the
# restart below lowers adr_ops.max_blocked to 4 under these 6 rows.
$node->safe_psql('postgres', q{
    UPDATE adr_ops.blocklist SET blocked_by = 'adr_ops auto-ban', expires_at = now() + interval '1 hour'
     WHERE client IN ('10.0.5.0/24', '10.0.6.0/24')});

# ---------- auto-ban ----------

# Loopback is never auto-banned by default: counted, not banned.
for my $i (1 .. 3)
{
	$node->connect_fails("$from2 user=pw_user password=wrong", "wrong password $i (loopback)",
		expected_stderr => qr/password authentication failed for user "pw_user"/);
}
is( $node->safe_psql('postgres',
		q{SELECT format('%s %s %s', client, user_names, failures) FROM adr_ops.adr_auth_failures()
           WHERE client = '127.0.0.2'}),
	'127.0.0.2 {pw_user} 3', 'the failures are counted with the user tried');
$node->connect_ok("$from2 user=pw_user password=right", 'loopback is not auto-banned by default');

# With adr_ops.auth_ban_loopback, the third failure within the window bans.
# From here on the log goes to the logging collector (csvlog), where
# adr_access_review() reads it.
$node->append_conf('postgresql.conf',
	"adr_ops.auth_ban_loopback = on\nlogging_collector = on\nlog_destination = 'csvlog'\nadr_ops.max_blocked = 4");
$node->restart;
$node->poll_query_until('postgres', 'SELECT loaded FROM adr_ops._security_state()')
  or die 'the launcher did not load the blocklist';

# More rows than adr_ops.max_blocked: the launcher loads what fits, manual
# entries first (then the newest auto-bans, up to their share), with a WARNING; unblocking and maintenance mode still
# work; only adding a range is refused.
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', active_entries, capacity) FROM adr_ops._security_state()}),
	'4 4', 'over capacity after a restart, the launcher loads max_blocked entries');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(coalesce(adr_ops._security_blocked(format('10.0.%s.1', i)::inet)::text, '-'), ' ' ORDER BY i)
          FROM generate_series(1, 6) i}),
	'10.0.1.0/24 10.0.2.0/24 10.0.3.0/24 10.0.4.0/24 - -', 'the manual entries first');
$node->poll_query_until('postgres', q{
    SELECT EXISTS (SELECT FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{WARNING}') l
                    WHERE l.message LIKE 'the adr_ops blocklist holds more ranges than "adr_ops.max_blocked": 2 are not enforced')})
  or die 'no WARNING about the capacity in the log';
pass('the launcher warns about the ranges it does not enforce');
is($node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('10.0.1.0/24')}),
	't', 'adr_unblock_ip works over capacity');
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', active_entries, adr_ops._security_blocked('10.0.5.1') IS NOT NULL)
          FROM adr_ops._security_state()}),
	'4 t', 'and the next entry takes the freed place');
($ret, $out, $err) = $node->psql('postgres', q{SELECT adr_ops.adr_maintenance_mode(false)});
is($ret, 0, 'adr_maintenance_mode works over capacity') or diag $err;
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT adr_ops.adr_block_ip('10.0.9.0/24', 'one more', terminate => false)});
like($err, qr/ERROR:  too many blocked addresses\nDETAIL:  4 manual ranges would be blocked; 2 of the 4 entries of "adr_ops.max_blocked" are for them/,
	'adr_block_ip still refuses to add beyond the capacity');
$node->safe_psql('postgres', q{DELETE FROM adr_ops.blocklist WHERE client <<= '10.0.0.0/16'});
is($node->safe_psql('postgres', 'SELECT active_entries FROM adr_ops._security_state()'),
	'0', 'a direct DELETE empties the hook\'s copy');
for my $i (1 .. 2)
{
	$node->connect_fails("$from2 user=pw_user password=wrong", "wrong password $i",
		expected_stderr => qr/password authentication failed for user "pw_user"/);
}
$node->connect_ok("$from2 user=pw_user password=right", 'two failures do not ban');
$node->connect_fails("$from2 user=pw_user password=wrong", 'wrong password 3',
	expected_stderr => qr/password authentication failed/);
$node->connect_fails("$from2 user=pw_user password=right", 'after 3 failures even the right password is refused',
	expected_stderr => qr/connection refused by adr_ops blocklist/);
$node->connect_ok($from1, 'the ban is of 127.0.0.2 only');
$node->poll_query_until('postgres', q{
    SELECT EXISTS (SELECT FROM adr_ops.blocklist
                    WHERE client = '127.0.0.2/32' AND reason = 'auto: 3 failed authentications'
                      AND expires_at > now() + interval '59 minutes')})
  or die 'the auto-ban did not reach the table';
pass('the auto-ban reaches the table, with its reason and adr_ops.auth_ban_duration');
is($node->safe_psql('postgres', 'SELECT pending_bans FROM adr_ops._security_state()'),
	'0', 'once written, the ban is no longer pending');

# usage: log_marker(TEXT) -- log TEXT and wait until the log reader sees it,
# so that every line logged before it is readable too
sub log_marker
{
	my ($marker) = @_;
	$node->safe_psql('postgres', qq{DO \$\$BEGIN RAISE LOG '$marker'; END\$\$});
	$node->poll_query_until('postgres', qq{
        SELECT EXISTS (SELECT FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{LOG}') l
                        WHERE l.message = '$marker')})
	  or die "the log marker $marker did not arrive";
}

# Failures of an address blocked already add no second entry (which would
# fill adr_ops.max_blocked) and no second ban.
for my $i (1 .. 3)
{
	$node->connect_fails("$from2 user=pw_user password=wrong", "wrong password $i while banned",
		expected_stderr => qr/password authentication failed/);
}
is( $node->safe_psql('postgres', 'SELECT format(\'%s %s\', active_entries, pending_bans) FROM adr_ops._security_state()'),
	'1 0', 'failures while blocked add no entry');
log_marker('marker: banned failures');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{LOG}') l
         WHERE l.message LIKE 'adr_ops blocked host "127.0.0.2"%'}),
	'1', 'and no second ban');
is($node->safe_psql('postgres', q{SELECT reason FROM adr_ops.blocklist WHERE client = '127.0.0.2/32'}),
	'auto: 3 failed authentications', 'the reason of the active entry stays');

# The access review finds it all.
my $review = $node->safe_psql('postgres', q{
    SELECT source || ' ' || coalesce(abbrev(address), '-') || ' ' || detail
      FROM adr_ops.adr_access_review('127.0.0.2') ORDER BY source, at});
like($review, qr/^hook 127\.0\.0\.2 refused now by the blocked range 127\.0\.0\.2\/32$/m,
	'review: the hook refuses it now');
like($review, qr/^auth_failures 127\.0\.0\.2 \d+ failed authentications/m, 'review: the failures');
like($review, qr/^log 127\.0\.0\.2 adr_ops blocked host "127\.0\.0\.2" after 3 failed authentications/m,
	'review: the ban in the server log');
like($review, qr/^blocklist 127\.0\.0\.2 blocked until .*: auto: 3 failed authentications/m,
	'review: the ban');
like($review, qr/^log 127\.0\.0\.2 adr_ops counted a failed authentication from host "127\.0\.0\.2" for user "pw_user"/m,
	'review: the failed logins in the server log');
like($review, qr/^log 127\.0\.0\.2 adr_ops refused a connection from host "127\.0\.0\.2"/m,
	'review: the refused connections');

# Unblocking lifts an auto-ban.
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unblock_ip('127.0.0.2/32')});
$node->connect_ok("$from2 user=pw_user password=right", 'unblocked, the address connects again');

# Unblocking a ban that is still pending (the launcher has not written it:
# a session holds the changers' lock, which the launcher does not wait
# for) removes it for good.  The failures use user names that look like the
# access review's patterns.
my ($in3, $out3) = ('', '');
my $s3 = IPC::Run::start([ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in3, '>', \$out3, '2>', \$out3, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$in3 .= "BEGIN;\nLOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;\nSELECT 'locked';\n";
$s3->pump until $out3 =~ /locked/;
for my $user (q{'x host "bad"'}, q{'y host "127.0.0.9"'}, 'pw_user')
{
	$node->connect_fails("$from2 user=$user password=wrong", "wrong password for user $user",
		expected_stderr => qr/password authentication failed/);
}
is($node->safe_psql('postgres', 'SELECT pending_bans FROM adr_ops._security_state()'),
	'1', 'the new ban is pending');
$in3 .= "SELECT adr_ops.adr_unblock_ip('127.0.0.2/32');\nCOMMIT;\nSELECT 'committed';\n";
$s3->pump until $out3 =~ /committed/;
$in3 .= "\\q\n";
$s3->finish;
like($out3, qr/^t$/m, 'adr_unblock_ip of the pending ban returns true');
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s %s', pending_bans, active_entries,
                      (SELECT count(*) FROM adr_ops.blocklist WHERE client = '127.0.0.2/32'))
          FROM adr_ops._security_state()}),
	'0 0 0', 'the pending ban is gone from the hook and from the table');
$node->connect_ok("$from2 user=pw_user password=right", 'and the address connects');

# The review: a user name does not move a line to another address nor
# break the log section.
log_marker('marker: crafted users');
$review = $node->safe_psql('postgres', q{
    SELECT source || ' ' || coalesce(abbrev(address), '-') || ' ' || coalesce(user_name, '-') || ' ' || detail
      FROM adr_ops.adr_access_review() WHERE source = 'log' ORDER BY at});
unlike($review, qr/server log not read/, 'review: a user name "x host "bad"" does not blank the log section');
like($review, qr/^log 127\.0\.0\.2 x host "bad" adr_ops counted a failed authentication from host "127\.0\.0\.2" for user "x host "bad""$/m,
	'review: the line of the crafted user is on its real address, with the user name whole');
like($review, qr/^log - y host "127\.0\.0\.9" password authentication failed for user "y host "127\.0\.0\.9""$/m,
	'review: the server\'s own failure line has no address');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_access_review('127.0.0.9') WHERE source = 'log'}),
	'0', 'review: no line is pinned on the address in a user name');

# ---------- maintenance mode ----------

$node->safe_psql('postgres', q{
    CREATE ROLE ops_team;
    CREATE ROLE operator LOGIN IN ROLE ops_team;
    CREATE ROLE onlooker LOGIN;});
my ($normal, $normal_pid) = session("$from1 user=normal password=right");
is( $node->safe_psql('postgres',
		q{SELECT adr_ops.adr_maintenance_mode(true, 'upgrade to 15.9 until 22:00', terminate => true)}),
	'1', 'maintenance mode with terminate ends the normal session');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $normal_pid)")
  or die 'the normal session survived';
$normal->kill_kill;

$node->connect_fails("$from1 user=normal password=right", 'maintenance mode refuses a normal role',
	expected_stderr => qr/FATAL:  the database system is in maintenance mode\nDETAIL:  upgrade to 15\.9 until 22:00/);
$node->connect_fails($node->connstr('postgres') . ' user=onlooker',
	'maintenance mode refuses a normal role over the socket too',
	expected_stderr => qr/in maintenance mode/);
$node->connect_ok("$from1", 'maintenance mode admits a superuser');
$node->connect_fails("$from1 user=operator", 'a role of adr_ops.maintenance_allow_roles is refused before it is set',
	expected_stderr => qr/in maintenance mode/);
$node->append_conf('postgresql.conf', q{adr_ops.maintenance_allow_roles = 'ops_team'});
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('adr_ops.maintenance_allow_roles') = 'ops_team'})
  or die 'the reload did not arrive';
$node->connect_ok("$from1 user=operator", 'a member of adr_ops.maintenance_allow_roles is admitted');

# A logical walsender is a session like any other; only physical ones are
# exempt.
$node->connect_fails("$from1 user=normal password=right replication=database",
	'maintenance mode refuses a logical replication connection',
	expected_stderr => qr/in maintenance mode/);

# The list is parsed as identifiers, the same way by the hook and by
# adr_maintenance_mode(terminate): "Ops_Team" quoted keeps its case,
# Ops_Crew unquoted is ops_crew.
$node->safe_psql('postgres', q{
    CREATE ROLE "Ops_Team";
    CREATE ROLE ops_crew;
    CREATE ROLE mixed_op LOGIN IN ROLE "Ops_Team";
    CREATE ROLE crew_op LOGIN IN ROLE ops_crew;});
$node->append_conf('postgresql.conf', q{adr_ops.maintenance_allow_roles = '"Ops_Team", Ops_Crew'});
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('adr_ops.maintenance_allow_roles') = '"Ops_Team", Ops_Crew'})
  or die 'the reload did not arrive';
$node->connect_ok("$from1 user=mixed_op", 'a member of a quoted mixed-case role is admitted');
$node->connect_ok("$from1 user=crew_op", 'a member of an unquoted role (folded to lower case) is admitted');
$node->connect_fails("$from1 user=operator", 'ops_team is no longer listed',
	expected_stderr => qr/in maintenance mode/);
# Sessions of all three, then maintenance mode with terminate.
$node->safe_psql('postgres', q{SELECT adr_ops.adr_maintenance_mode(false)});
my ($mixed, $mixed_pid) = session("$from1 user=mixed_op");
my ($crew, $crew_pid) = session("$from1 user=crew_op");
my ($op, $op_pid) = session($node->connstr('postgres') . ' user=operator');
is( $node->safe_psql('postgres',
		q{SELECT adr_ops.adr_maintenance_mode(true, 'upgrade to 15.9 until 22:00', terminate => true)}),
	'1', 'terminate spares the roles the hook admits, and only them');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $op_pid)")
  or die 'the session of operator survived';
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid IN ($mixed_pid, $crew_pid)"),
	'2', 'the sessions of the admitted roles remain');
$_->kill_kill for ($mixed, $crew, $op);

$node->restart;
$node->poll_query_until('postgres', 'SELECT loaded FROM adr_ops._security_state()')
  or die 'the launcher did not load the maintenance state';
$node->connect_fails("$from1 user=normal password=right", 'maintenance mode survives a restart',
	expected_stderr => qr/in maintenance mode\nDETAIL:  upgrade to 15\.9 until 22:00/);
like($node->safe_psql('postgres',
		q{SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'maintenance_mode'}),
	qr/^WARNING maintenance mode is on since .* \(by \w+\): upgrade to 15\.9 until 22:00$/,
	'the health check shows maintenance mode');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_maintenance_mode(false)});
$node->connect_ok("$from1 user=normal password=right", 'maintenance mode off admits the normal role again');

# A message written directly that does not fit is cut between characters.
$node->safe_psql('postgres', q{UPDATE adr_ops.maintenance_state SET message = repeat('é', 300)});
is( $node->safe_psql('postgres', q{
        SELECT format('%s %s', octet_length(message), message = repeat('é', 255)) FROM adr_ops._security_state()}),
	'510 t', 'a long multibyte message is cut at a character boundary');

# ---------- lock_role ----------

my ($locked, $locked_pid) = session("$from1 user=onlooker");
is($node->safe_psql('postgres', q{SELECT adr_ops.adr_lock_role('onlooker')}),
	'1', 'adr_lock_role terminates the session of the role');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $locked_pid)")
  or die 'the locked role kept its session';
$locked->kill_kill;
$node->connect_fails("$from1 user=onlooker", 'the locked role cannot log in',
	expected_stderr => qr/role "onlooker" is not permitted to log in/);
like($node->safe_psql('postgres',
		q{SELECT actor || ' ' || action || ' ' || target FROM adr_ops.security_actions WHERE action = 'lock role'}),
	qr/^\w+ lock role onlooker$/, 'who locked the role is recorded');

# ---------- the audit ----------

# usage: findings() -- "finding object" lines of the audit
sub findings
{
	return $node->safe_psql('postgres',
		q{SELECT string_agg(finding || ' ' || object, E'\n' ORDER BY finding, object)
            FROM adr_ops.adr_security_audit()});
}

is(findings(), '', 'no findings on a clean cluster (loopback trust lines are not findings)');

open $hba, '>>', $node->data_dir . '/pg_hba.conf' or die $!;
print $hba "host all all 10.0.0.0/8 trust\nhost all all 0.0.0.0/0 password\nhost all all 127.0.0.0/7 trust\n";
close $hba;
$node->append_conf('postgresql.conf', "log_connections = off\npassword_encryption = md5\nlisten_addresses = '*'");
$node->restart;
$node->safe_psql('postgres', q{
    SET password_encryption = 'md5';
    CREATE ROLE audit_md5 LOGIN PASSWORD 'secret';
    CREATE ROLE audit_super SUPERUSER;
    CREATE ROLE audit_creator CREATEROLE;
    CREATE ROLE audit_rls BYPASSRLS;
    CREATE SCHEMA audit_open;
    GRANT CREATE ON SCHEMA audit_open TO PUBLIC;
    CREATE FUNCTION public.audit_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
});
my $found = findings();
my %expect = (
	'hba_trust pg_hba.conf line 5' => 'trust for other hosts',
	'hba_trust pg_hba.conf line 7' => 'trust for a range wider than loopback',
	'hba_password pg_hba.conf line 6' => 'cleartext password',
	'md5_password audit_md5' => 'an MD5 password hash',
	'password_encryption password_encryption' => 'password_encryption not scram',
	'extra_superuser audit_super' => 'a superuser besides the bootstrap one',
	'createrole audit_creator' => 'a role that can create roles',
	'bypassrls audit_rls' => 'a role that bypasses RLS',
	'security_definer_search_path public.audit_definer()' => 'SECURITY DEFINER without search_path',
	'public_schema_create audit_open' => 'CREATE for PUBLIC on a schema',
	'ssl_off ssl' => 'ssl off while listening beyond localhost',
	'log_connections log_connections' => 'log_connections off');
for my $f (sort keys %expect)
{
	like($found, qr/^\Q$f\E$/m, "audit finds $expect{$f}");
}
is(scalar(split /\n/, $found), scalar(keys %expect), 'and nothing else') or diag $found;

# ---------- evidence ----------

my $id = $node->safe_psql('postgres', q{SELECT adr_ops.adr_evidence_snapshot('after the audit')});
like($node->safe_psql('postgres', qq{
    SELECT format('%s %s %s', label, jsonb_array_length(activity) > 0,
                  settings ? 'log_connections')
      FROM adr_ops.evidence WHERE id = $id}),
	qr/^after the audit t t$/, 'evidence keeps the sessions and the non-default settings');

# ---------- without shared_preload_libraries ----------

$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
($ret, $out, $err) = $node->psql('postgres', q{SELECT adr_ops.adr_block_ip('192.0.2.0/24')});
like($err, qr/ERROR:  adr_ops must be loaded via "shared_preload_libraries"\nDETAIL:  The adr_ops authentication hook needs/,
	'without preloading, adr_block_ip says what it needs');
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM adr_ops.adr_auth_failures()});
like($err, qr/must be loaded via "shared_preload_libraries"/, 'so does adr_auth_failures');
$node->connect_ok($from2, 'without the hook nothing is refused');

$node->stop;
done_testing();
