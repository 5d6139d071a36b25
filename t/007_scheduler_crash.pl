# The scheduler under crashes and DROP DATABASE: kill -9 of the launcher
# restarts it and marks the run it interrupted, and a run never holds up
# DROP DATABASE of the database it works in.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
autovacuum = off
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});

# Cost-based delay makes VACUUM slow in these databases, as a throttled
# vacuum of a big table would be: a run that is still going when we act.
foreach my $db (qw(slowdb dropme))
{
    $node->safe_psql('postgres', qq{
        CREATE DATABASE $db;
        ALTER DATABASE $db SET vacuum_cost_delay = '100ms';
        ALTER DATABASE $db SET vacuum_cost_limit = 1;});
    $node->safe_psql($db,
        q{CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g});
}

sub task_worker_in
{
    my ($db) = @_;
    return $node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE backend_type = 'adr_ops task' AND datname = '$db' AND query LIKE 'VACUUM%'});
}

# kill -9 of the launcher while a run is going.
my $run = $node->safe_psql('postgres',
    q{SELECT id FROM adr_ops.adr_run_task('vacuum_analyze', 'slowdb', wait => false)});
ok(task_worker_in('slowdb'), 'a slow run is going');
my $old_pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'});
my $log_offset = -s $node->logfile;
kill 'KILL', $old_pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE backend_type = 'adr_ops launcher' AND pid <> $old_pid}),
    'the postmaster restarts the launcher after kill -9');
ok( $node->poll_query_until('postgres',
        "SELECT status = 'failed' FROM adr_ops.task_runs WHERE id = $run"),
    'the interrupted run is marked failed');
like( $node->safe_psql('postgres', "SELECT detail FROM adr_ops.task_runs WHERE id = $run"),
    qr/^interrupted: the server or the adr_ops launcher stopped during the run$/,
    'with the reason');

# statement_timeout from the options stops a statement that runs too long.
like( $node->safe_psql('postgres', q{
        SELECT status || '|' || detail
          FROM adr_ops.adr_run_task('vacuum_analyze', 'slowdb', '{"statement_timeout": "1s"}')}),
    qr/^failed\|vacuumed none; failed: public\.big: canceling statement due to statement timeout; /,
    'a run statement past statement_timeout is cancelled and recorded');

# The restarted launcher works.
my $again = $node->safe_psql('postgres',
    q{SELECT status FROM adr_ops.adr_run_task('analyze', 'postgres')});
is($again, 'succeeded', 'tasks run after the restart');

# DROP DATABASE of a database where a run is going succeeds: the launcher
# sees it waiting and stops the run.
$run = $node->safe_psql('postgres',
    q{SELECT id FROM adr_ops.adr_run_task('vacuum_analyze', 'dropme', wait => false)});
ok(task_worker_in('dropme'), 'a slow run is going in dropme');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE dropme');
is($ret, 0, 'DROP DATABASE is not held up by the run') or diag $err;
ok( $node->poll_query_until('postgres',
        "SELECT status = 'failed' FROM adr_ops.task_runs WHERE id = $run"),
    'the stopped run is recorded failed');
is( $node->safe_psql('postgres', "SELECT detail FROM adr_ops.task_runs WHERE id = $run"),
    'interrupted: the database is being dropped or altered', 'with the reason');

$node->stop;
done_testing();
