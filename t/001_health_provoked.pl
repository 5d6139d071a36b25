# The health checks turn WARNING and CRITICAL when provoked for real: a long
# open transaction, a session idle in transaction, a lock wait, and a
# threshold lowered below the current disk reading.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('health');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    CREATE TABLE work (id int);
    INSERT INTO work VALUES (1);
});

# status|value|detail of one check
sub check
{
    my ($name) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT status || '|' || coalesce(value::text, '') || '|' || detail
          FROM adr_ops.adr_health_check() WHERE check_name = '$name'});
}

sub thresholds
{
    my ($name, $warn, $crit) = @_;
    $node->safe_psql('postgres', qq{
        UPDATE adr_ops.health_thresholds SET warn = $warn, crit = $crit
         WHERE check_name = '$name'});
}

sub wait_for_status
{
    my ($name, $status) = @_;
    return $node->poll_query_until('postgres', qq{
        SELECT status = '$status' FROM adr_ops.adr_health_check()
         WHERE check_name = '$name'});
}

like(check('long_transactions'), qr/^OK\|0\|no open transactions$/,
    'no open transaction at first');
like(check('blocked_sessions'), qr/^OK\|0\|no sessions waiting for a lock$/,
    'no lock wait at first');

# A transaction left open in another session.
thresholds('long_transactions', 1, 3600);
thresholds('idle_in_transaction', 0, 2);
my $holder = $node->background_psql('postgres');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE work IN ACCESS EXCLUSIVE MODE');

ok(wait_for_status('long_transactions', 'WARNING'),
    'an open transaction past warn turns long_transactions WARNING');
like(check('long_transactions'),
    qr/^WARNING\|\d+\|oldest: pid $holder_pid \(\w+\@postgres, idle in transaction\) open for /,
    'the detail names the session that holds the transaction open');
ok(wait_for_status('idle_in_transaction', 'CRITICAL'),
    'idle in transaction past crit turns CRITICAL');
like(check('idle_in_transaction'),
    qr/^CRITICAL\|\d+\|1 session idle in transaction; oldest: pid $holder_pid /,
    'the detail names the idle session');

# A session that waits for the lock the open transaction holds.
thresholds('blocked_sessions', 1, 3600);
my $waiter = $node->background_psql('postgres');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/, "\\echo waiting\nSELECT count(*) FROM work;\n");

ok(wait_for_status('blocked_sessions', 'WARNING'),
    'a lock wait past warn turns blocked_sessions WARNING');
like(check('blocked_sessions'),
    qr/^WARNING\|\d+\|1 session waiting for a lock; longest: pid $waiter_pid .* blocked by pids $holder_pid$/,
    'the detail names the waiting and the blocking pid');

$holder->query_safe('COMMIT');
ok(wait_for_status('blocked_sessions', 'OK'), 'the wait ends with the transaction');
$waiter->quit;
$holder->quit;
like(check('long_transactions'), qr/^OK\|0\|/, 'no open transaction after commit');

# A threshold lowered below the current reading.
like(check('disk_data'), qr/^OK\|[\d.]+\|/, 'disk_data is OK with the defaults');
thresholds('disk_data', 0, 0.001);
like(check('disk_data'), qr/^CRITICAL\|[\d.]+\|\S+: .* used of /, 'disk_data past crit is CRITICAL');
thresholds('disk_data', 0, 100);
like(check('disk_data'), qr/^WARNING\|/, 'disk_data past warn only is WARNING');

# A lower-is-worse check: available memory below the warn level.
thresholds('memory', 100, 0);
like(check('memory'), qr/^WARNING\|[\d.]+\|.* available of /,
    'memory below warn (warn > crit means lower is worse) is WARNING');

# Snapshots record what the check saw, for trends.
$node->safe_psql('postgres', 'SELECT adr_ops.adr_health_snapshot()');
is($node->safe_psql('postgres',
        q{SELECT status FROM adr_ops.health_history WHERE check_name = 'disk_data'}),
    'WARNING', 'the snapshot stores the status of the moment');

$node->stop;
done_testing();
