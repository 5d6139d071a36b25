# scripts/adr-block-ip: usage, address validation (nothing runs for a bad
# address), --dry-run's exact commands, the database side against a real
# cluster, and the nftables side inside a network namespace of its own
# (unshare -rn: an unprivileged user namespace gives CAP_NET_ADMIN there),
# skipped where the kernel or the host lacks it.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# prove runs from the source directory.
my $script = 'scripts/adr-block-ip';

# Runs the script (under PREFIX, a command list, when given); returns its
# exit code, stdout and stderr.
sub run_script
{
	my @args = @_;
	my ($stdout, $stderr) = ('', '');
	print('# Running: ' . join(' ', $script, @args) . "\n");
	IPC::Run::run([ $script, @args ], '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	die 'adr-block-ip exited with signal ' . ($? & 127) if $? & 127;
	return ($? >> 8, $stdout, $stderr);
}

my ($ret, $out, $err);

($ret, $out, $err) = run_script('--help');
is($ret, 0, '--help exits 0');
like($out, qr/^Usage: adr-block-ip \[OPTION\]\.\.\. ADDRESS\[\/PREFIX\]$/m, '--help prints usage');
($ret, $out, $err) = run_script('--no-such-option');
is($ret, 3, 'a bad option exits UNKNOWN');
like($err, qr/unrecognized option '--no-such-option'/, 'and says which');
($ret, $out, $err) = run_script('--firewall=none');
is($ret, 3, 'no address exits UNKNOWN');
($ret, $out, $err) = run_script('-V');
like($out, qr/^adr-block-ip \d+\.\d+/, '--version prints the version');

# Validation comes first: a psql that would record being run proves that
# nothing ran.
my $bin = PostgreSQL::Test::Utils::tempdir();
my $ran = "$bin/ran";
for my $tool ('psql', 'nft')
{
	open my $fake, '>', "$bin/$tool" or die $!;
	print $fake "#!/bin/sh\necho $tool \"\$@\" >> '$ran'\n";
	close $fake;
	chmod 0755, "$bin/$tool";
}
{
	local $ENV{PATH} = "$bin:$ENV{PATH}";
	for my $bad ('192.0.2.1/24', '300.1.1.1', '1.2.3', '10.0.0.0/33', '2001:db8::1::2',
		'fe80::/129', '1.2.3.4; rm -rf /', '$(id)', '')
	{
		($ret, $out, $err) = run_script('--firewall=nft', $bad);
		is($ret, 3, "invalid address '$bad' exits UNKNOWN");
		like($out . $err, qr/invalid address|an address is required/, "and says why ('$bad')");
	}
}
ok(!-e $ran, 'nothing ran for an invalid address');

# A range with the SSH client of the session in it is refused without
# --force (over the Unix socket, the database cannot tell), and nothing runs.
{
	local $ENV{PATH} = "$bin:$ENV{PATH}";
	local $ENV{SSH_CONNECTION} = '192.0.2.5 50122 198.51.100.1 22';
	($ret, $out, $err) = run_script('--firewall=nft', '192.0.2.0/24');
	is($ret, 3, 'a range with the SSH client in it exits UNKNOWN');
	like($out, qr/^ADR_BLOCK_IP UNKNOWN - refusing to block 192\.0\.2\.0\/24: it contains the SSH client 192\.0\.2\.5 of this session; pass --force/,
		'and says why');
	local $ENV{SSH_CONNECTION} = '2001:db8::5 50122 2001:db8::1 22';
	($ret, $out, $err) = run_script('--firewall=nft', '2001:db8::/32');
	is($ret, 3, 'so is an IPv6 range with the SSH client in it');
	ok(!-e $ran, 'nothing ran for a range with the SSH client in it');
	($ret, $out, $err) = run_script('--firewall=nft', '--dry-run', '2001:db9::/32');
	is($ret, 0, 'a range without the SSH client passes');
	($ret, $out, $err) = run_script('--firewall=nft', '--dry-run', '--force', '2001:db8::/32');
	is($ret, 0, '--force blocks the SSH client\'s range');
	like($out, qr/::pg_catalog\.interval, force => true\)\);$/m, 'and forces the database too');
}

# The firewall tool asked for must exist.
my $iptables = (grep { -x "$_/iptables" } split(/:/, "$ENV{PATH}:/usr/sbin:/sbin"))[0];
SKIP:
{
	skip 'iptables is installed', 2 if $iptables;
	local $ENV{PATH} = "$bin:$ENV{PATH}";
	($ret, $out, $err) = run_script('--firewall=iptables', '192.0.2.0/24');
	is($ret, 3, '--firewall=iptables without iptables exits UNKNOWN');
	ok(!-e $ran, 'and nothing ran');
}

# --dry-run prints the exact commands, database first; the firewall drops
# TCP to the database's port only.
($ret, $out, $err) = run_script('--dry-run', '--firewall=nft', '--reason=scanner',
	'--duration=2 hours', '-d', 'postgres', '-p', '5433', '192.0.2.0/24');
is($ret, 0, '--dry-run exits 0');
like($out, qr/^ADR_BLOCK_IP OK - dry run: block 192\.0\.2\.0\/24; the commands follow\n/, 'dry run: status line');
like($out, qr/^psql -X -A -t -q -w -v ON_ERROR_STOP=1 --no-psqlrc -F \\  --dbname=postgres --port=5433 -v client=192\.0\.2\.0\/24 -v reason=scanner -v duration=2\\ hours <<SQL\nSELECT .*adr_ops\.adr_block_ip\(:'client', NULLIF\(:'reason', ''\), NULLIF\(:'duration', ''\)::pg_catalog\.interval\)\);\nSQL\nnft add table inet adr_ops\n/m,
	'dry run: the psql command and its SQL, then nft');
like($out, qr/^nft add element inet adr_ops blocked4 \\\{\\ 192\.0\.2\.0\/24\\ \\\}$/m, 'dry run: the nft element');
like($out, qr/^nft add rule inet adr_ops input tcp dport 5433 ip saddr \@blocked4 drop\nnft add rule inet adr_ops input tcp dport 5433 ip6 saddr \@blocked6 drop$/m,
	'dry run: the rules drop TCP to the database port only');
($ret, $out, $err) = run_script('--dry-run', '--firewall=iptables', '--no-database', '--unblock', '--port=6543',
	'2001:db8::/32');
is($ret, 0, '--dry-run --unblock exits 0');
like($out, qr/\nip6tables -D INPUT -s 2001:db8::\/32 -p tcp --dport 6543 -m comment --comment adr_ops -j DROP\n$/,
	'dry run: ip6tables for an IPv6 range, and no psql');

# The database side against a real cluster.
my $node = PostgreSQL::Test::Cluster->new('block_ip');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'\nadr_ops.database = 'postgres'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops; UPDATE adr_ops.schedules SET enabled = false;');
$node->poll_query_until('postgres', 'SELECT loaded FROM adr_ops._security_state()')
  or die 'the launcher did not load the blocklist';
my @conn = ('-h', $node->host, '-p', $node->port, '-d', 'postgres');

($ret, $out, $err) = run_script('--firewall=none', @conn, '--reason=scanner', '--duration=2 hours',
	'198.51.100.0/24');
is($ret, 0, 'blocking in the database exits 0') or diag $err;
like($out, qr/^ADR_BLOCK_IP OK - blocked 198\.51\.100\.0\/24 \(database: 0 sessions terminated\)$/,
	'status line of a block');
is( $node->safe_psql('postgres',
		q{SELECT reason || ' ' || (expires_at > now() + interval '119 minutes') FROM adr_ops.blocked_clients}),
	'scanner true', 'the block is in adr_ops.blocklist with reason and duration');
is($node->safe_psql('postgres', 'SELECT active_entries FROM adr_ops._security_state()'),
	'1', 'and in the hook\'s copy');

($ret, $out, $err) = run_script('--list', '--firewall=none', @conn);
is($ret, 0, '--list exits 0');
like($out, qr/^ADR_BLOCK_IP OK - 1 ranges blocked in the database \| blocked=1;;;0;\ndatabase: 198\.51\.100\.0\/24 until .* scanner$/,
	'--list shows the block with perfdata');

($ret, $out, $err) = run_script('--firewall=none', @conn, '--unblock', '203.0.113.0/24');
is($ret, 2, 'unblocking what is not blocked is CRITICAL');
like($err, qr/range "203\.0\.113\.0\/24" is not blocked/, 'with the database\'s reason');
($ret, $out, $err) = run_script('--firewall=none', @conn, '--unblock', '198.51.100.0/24');
is($ret, 0, 'unblocking exits 0');
is($node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.blocklist'), '0', 'the row is gone');

# An IPv4-mapped address or range is blocked as the IPv4 one it stands for,
# with the prefix length converted, as adr_block_ip() stores it: the hook
# (and the kernel) see such clients as IPv4, so the mapped form would never
# match.
($ret, $out, $err) = run_script('--firewall=none', @conn, '::ffff:127.0.0.2/128');
is($ret, 0, 'blocking an IPv4-mapped address exits 0') or diag $err;
like($out, qr/^ADR_BLOCK_IP OK - blocked 127\.0\.0\.2\/32 \(given as the IPv4-mapped ::ffff:127\.0\.0\.2\/128; database: 0 sessions terminated\)$/,
	'the status line names the IPv4 address blocked');
is( $node->safe_psql('postgres',
		q{SELECT format('%s %s', client, adr_ops._security_blocked('127.0.0.2')) FROM adr_ops.blocked_clients}),
	'127.0.0.2/32 127.0.0.2/32', 'the database holds the IPv4 form, which the hook matches');
($ret, $out, $err) = run_script('--firewall=none', @conn, '--unblock', '::ffff:7f00:2');
is($ret, 0, 'unblocking it in the hexadecimal mapped form exits 0') or diag $err;
is($node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.blocklist'), '0', 'and removes it');
($ret, $out, $err) = run_script('--dry-run', '--firewall=nft', '--no-database', '::ffff:192.0.2.0/120');
like($out, qr/^ADR_BLOCK_IP OK - dry run: block 192\.0\.2\.0\/24 \(given as the IPv4-mapped ::ffff:192\.0\.2\.0\/120\)/,
	'dry run: a mapped range becomes the IPv4 range');
like($out, qr/^nft add element inet adr_ops blocked4 \\\{\\ 192\.0\.2\.0\/24\\ \\\}$/m,
	'dry run: the firewall gets it in the IPv4 set');
($ret, $out, $err) = run_script('--dry-run', '--firewall=nft', '--no-database', '::ffff:192.0.2.7/96');
is($ret, 3, 'a mapped range whose IPv4 range has host bits set exits UNKNOWN');
like($out, qr/invalid address '::ffff:192\.0\.2\.7\/96': the IPv4 range it stands for, 192\.0\.2\.7\/0, has bits set after the prefix/,
	'and says why');

# A database refusal leaves the firewall alone (a recording nft proves it).
{
	local $ENV{PATH} = "$bin:$ENV{PATH}";
	unlink "$bin/psql";
	($ret, $out, $err) = run_script('--firewall=nft', '-h', $node->host, '-p', $node->port, '-d', 'template1',
		'198.51.100.0/24');
}
is($ret, 2, 'a block the database refuses is CRITICAL');
like($out, qr/could not block 198\.51\.100\.0\/24 in the database; the firewall was not changed/,
	'and says the firewall was not changed');
ok(!-e $ran, 'nft did not run');
$node->stop;

# The firewall side, in a network namespace of its own.
my $nft = (grep { -x "$_/nft" } split(/:/, "$ENV{PATH}:/usr/sbin:/sbin"))[0];
my $netns_ok = $nft && system('unshare', '-rn', "$nft/nft", 'list', 'ruleset') == 0;
SKIP:
{
	skip 'nft or an unprivileged network namespace is not available', 6 unless $netns_ok;

	my $ns_script = "$bin/in_netns.sh";
	open my $sh, '>', $ns_script or die $!;
	print $sh "#!/bin/sh\nset -e\nunset PGPORT\n"
	  . "$script --no-database 192.0.2.0/24\n"
	  . "$script --no-database 2001:db8::/32\n"
	  . "$script --no-database 192.0.2.0/24\n"
	  . "echo '--- ruleset'\n$nft/nft list table inet adr_ops\n"
	  . "$script --no-database --unblock 192.0.2.0/24\n"
	  . "echo '--- after unblock'\n$nft/nft list set inet adr_ops blocked4\n";
	close $sh;
	chmod 0755, $ns_script;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ 'unshare', '-rn', $ns_script ], '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	is($? >> 8, 0, 'block, block again and unblock succeed in the namespace') or diag $stderr;
	like($stdout, qr/^ADR_BLOCK_IP OK - blocked 192\.0\.2\.0\/24 \(firewall: nft\)$/m, 'status line');
	my ($ruleset) = $stdout =~ /--- ruleset\n(.*)--- after unblock/s;
	like($ruleset, qr/tcp dport 5432 ip saddr \@blocked4 drop/, 'the input chain drops the IPv4 set\'s TCP to the port');
	like($ruleset, qr/elements = \{ 192\.0\.2\.0\/24 \}/, 'the IPv4 range is in the set');
	like($ruleset, qr/elements = \{ 2001:db8::\/32 \}/, 'the IPv6 range is in the IPv6 set');
	my ($after) = $stdout =~ /--- after unblock\n(.*)$/s;
	unlike($after, qr/192\.0\.2\.0/, 'unblock removes the range');
}

done_testing();
