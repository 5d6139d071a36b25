# Stress: 8 clients take 8,000 jobs through claim, checkpoint, fail,
# restart and complete at once (pgbench).  Afterwards every job ended
# exactly once and each job's event log is one consistent chain.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('jobs');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 20");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    SELECT count(adr_ops.adr_job_submit('stress', jsonb_build_object('n', g)))
      FROM generate_series(1, 8000) g;});

# One pass of a pipeline worker: claim, do a stage, then fail (30%: the
# failure is restarted from its checkpoint at once) or finish.
my $script = $node->basedir . '/worker.pgbench';
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh <<'PGBENCH';
SELECT coalesce((SELECT id FROM adr_ops.adr_job_claim('stress', 'w' || :client_id)), 0) AS jid \gset
\if :jid > 0
SELECT adr_ops.adr_job_checkpoint(:jid, 'extract');
\set r random(1, 10)
\if :r <= 3
SELECT adr_ops.adr_job_fail(:jid, 'injected failure');
SELECT adr_ops.adr_job_restart(:jid);
\else
SELECT adr_ops.adr_job_checkpoint(:jid, 'load');
SELECT adr_ops.adr_job_complete(:jid);
\endif
\endif
PGBENCH
close($fh);

my $rounds = 0;
while ($rounds++ < 10)
{
    $node->command_ok(
        [ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '1500', '-f', $script,
          '-d', $node->connstr('postgres') ],
        "pgbench round $rounds, 8 clients");
    last if $node->safe_psql('postgres',
        q{SELECT count(*) FROM adr_ops.processing_jobs WHERE status <> 'succeeded'}) == 0;
}

is($node->safe_psql('postgres',
        q{SELECT count(*) FROM adr_ops.processing_jobs WHERE status = 'succeeded'}),
    '8000', 'every job succeeded');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM (SELECT job_id FROM adr_ops.job_events WHERE to_status = 'succeeded'
                               GROUP BY job_id HAVING count(*) <> 1) x}),
    '0', 'each job succeeded exactly once');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM (
            SELECT from_status, lag(to_status) OVER (PARTITION BY job_id ORDER BY id) AS prev,
                   row_number() OVER (PARTITION BY job_id ORDER BY id) AS n
              FROM adr_ops.job_events) e
         WHERE (n = 1 AND from_status IS NOT NULL) OR (n > 1 AND from_status IS DISTINCT FROM prev)}),
    '0', 'every event starts where the previous one of its job ended');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.processing_jobs j
         WHERE j.attempts <> (SELECT count(*) FROM adr_ops.job_events e
                               WHERE e.job_id = j.id AND e.to_status = 'running')}),
    '0', 'attempts equal the claims recorded');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.processing_jobs j
         WHERE (SELECT count(*) FROM adr_ops.job_events e WHERE e.job_id = j.id AND e.to_status = 'failed')
            <> (SELECT count(*) FROM adr_ops.job_events e WHERE e.job_id = j.id
                   AND e.from_status = 'failed' AND e.to_status = 'queued')}),
    '0', 'every failure was restarted once');
my $failures = $node->safe_psql('postgres',
    q{SELECT count(*) FROM adr_ops.job_events WHERE to_status = 'failed'});
cmp_ok($failures, '>', 1000, "the failure path was exercised ($failures failures)");
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.processing_jobs j
         WHERE (SELECT stage FROM adr_ops.job_checkpoints c WHERE c.job_id = j.id
                 ORDER BY seq DESC LIMIT 1) IS DISTINCT FROM 'load'}),
    '0', 'every job ended with its last stage checkpointed');

# Idle pipeline workers LISTEN: a restart wakes them with the job id.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN adr_jobs');
my $jid = $node->safe_psql('postgres', q{
    SELECT adr_ops.adr_job_submit('notify');
    SELECT adr_ops.adr_job_claim('notify', 'w');
    SELECT adr_ops.adr_job_fail(max(id), 'x') IS NULL FROM adr_ops.processing_jobs;
    SELECT max(id) FROM adr_ops.processing_jobs;});
($jid) = $jid =~ /(\d+)\s*$/;
$listener->query_safe('SELECT 1');    # take the submit's notification
$node->safe_psql('postgres', "SELECT adr_ops.adr_job_restart($jid)");
like($listener->query_safe('SELECT 1'),
    qr/Asynchronous notification "adr_jobs" with payload "$jid" received/,
    'adr_job_restart sends NOTIFY adr_jobs with the job id');
$listener->quit;

$node->stop;
done_testing();
