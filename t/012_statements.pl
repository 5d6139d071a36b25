# Slow queries from pg_stat_statements for real: a query made slow with
# pg_sleep shows with the right mean, "since" leaves out what ran before the
# window, a reset inside the window gives no negative figures, adr_ops never
# resets the counters itself, and the snapshot task runs in the scheduler.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('statements');
$node->init;
$node->append_conf('postgresql.conf',
    "shared_preload_libraries = 'pg_stat_statements,adr_ops'");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE EXTENSION pg_stat_statements;});
my $reset_before = $node->safe_psql('postgres', 'SELECT stats_reset FROM pg_stat_statements_info');

# A query made slow.
$node->safe_psql('postgres', 'SELECT pg_sleep(0.2)') for 1 .. 3;
like( $node->safe_psql('postgres', q{
        SELECT calls || '|' || (mean_ms BETWEEN 195 AND 600) || '|' || partial
          FROM adr_ops.adr_slow_queries(150) WHERE query = 'SELECT pg_sleep($1)'}),
    qr/^3\|true\|false$/, 'the slow query shows with 3 calls and a mean of about 200 ms');

# A window: a snapshot older than it is the baseline.
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    UPDATE adr_ops.statement_snapshots SET taken_at = now() - interval '2 hours';});
$node->safe_psql('postgres', 'SELECT pg_sleep(0.2)');
$node->safe_psql('postgres', 'SELECT pg_sleep(0.15), 1');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(query || '|' || calls || '|' || partial, ',' ORDER BY query)
          FROM adr_ops.adr_slow_queries(100, since => '1 hour')
         WHERE query LIKE '%pg_sleep%'   -- the snapshot itself may be slow on a busy host
        }),
    'SELECT pg_sleep($1)|1|false,SELECT pg_sleep($1), $2|1|false',
    'since counts only the calls inside the window, old and new statements alike');
is( $node->safe_psql('postgres', q{
        SELECT calls FROM adr_ops.adr_slow_queries(100) WHERE query = 'SELECT pg_sleep($1)'}),
    '4', 'without since the whole history counts');

# A reset inside the window: partial rows, never negative.
$node->safe_psql('postgres', 'SELECT pg_stat_statements_reset()');
$node->safe_psql('postgres', 'SELECT pg_sleep(0.12)');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(calls || '|' || partial || '|' || (total_ms >= 0 AND mean_ms >= 0), ',')
          FROM adr_ops.adr_slow_queries(100, since => '1 hour')}),
    '1|true|true', 'after a reset in the window the row is partial and not negative');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_slow_queries(0, 1000, since => '1 hour')
         WHERE calls < 0 OR total_ms < 0 OR rows < 0}),
    '0', 'no figure is negative');

# A counter that went down without a reset (an evicted entry back again).
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    UPDATE adr_ops.statement_counters SET calls = calls + 1000
     WHERE snapshot_id = (SELECT max(id) FROM adr_ops.statement_snapshots);
    UPDATE adr_ops.statement_snapshots SET taken_at = now() - interval '90 minutes'
     WHERE id = (SELECT max(id) FROM adr_ops.statement_snapshots);});
like( $node->safe_psql('postgres', q{
        SELECT calls || '|' || partial FROM adr_ops.adr_slow_queries(100, since => '1 hour')
         WHERE query = 'SELECT pg_sleep($1)'}),
    qr/^1\|true$/, 'counters below their baseline count from zero and are partial');

# adr_ops never resets pg_stat_statements itself.
my $reset_now = $node->safe_psql('postgres', 'SELECT stats_reset FROM pg_stat_statements_info');
isnt($reset_now, $reset_before, 'the test reset the counters once');
$node->safe_psql('postgres', q{
    SELECT count(*) FROM adr_ops.adr_slow_queries(0, 1000);
    SELECT adr_ops.adr_snapshot_statements();
    SELECT count(*) FROM adr_ops.adr_slow_queries(0, 1000, since => '1 hour');});
is($node->safe_psql('postgres', 'SELECT stats_reset FROM pg_stat_statements_info'),
    $reset_now, 'reading and snapshotting leave the counters alone');

# The trend of a statement per snapshot interval (a statement of its own).
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    SELECT pg_sleep(0.11), 'trend';
    SELECT adr_ops.adr_snapshot_statements();
    SELECT pg_sleep(0.11), 'trend';
    SELECT pg_sleep(0.11), 'trend';
    SELECT adr_ops.adr_snapshot_statements();});
is( $node->safe_psql('postgres', q{
        SELECT string_agg(calls || '|' || (mean_ms BETWEEN 105 AND 600), ',' ORDER BY interval_end)
          FROM (SELECT * FROM adr_ops.adr_query_trend(
                    (SELECT queryid FROM pg_stat_statements WHERE query = 'SELECT pg_sleep($1), $2'
                      AND calls = 3), '1 day')
                 ORDER BY interval_end DESC LIMIT 2) t}),
    '1|true,2|true', 'the trend holds the calls of each interval');

# The snapshot task of the scheduler.
like( $node->safe_psql('postgres',
        q{SELECT status || '|' || detail FROM adr_ops.adr_run_task('statement_snapshot')}),
    qr/^succeeded\|stored \d+ changed statement entries$/, 'the statement_snapshot task runs');

# Without pg_stat_statements in the database: a clear error.
$node->safe_psql('postgres', 'CREATE DATABASE nopgss');
$node->safe_psql('nopgss', 'CREATE EXTENSION adr_ops');
my ($ret, $out, $err) = $node->psql('nopgss', 'SELECT * FROM adr_ops.adr_slow_queries()');
like($err, qr/ERROR:  pg_stat_statements is not installed in this database/, 'an error, not an empty result');
like($err, qr/HINT:  Add pg_stat_statements to "shared_preload_libraries" .* CREATE EXTENSION pg_stat_statements/,
    'whose hint names both steps');

$node->stop;
done_testing();
