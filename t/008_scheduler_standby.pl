# On a hot standby the launcher runs but writes nothing: due runs of
# writing tasks are skipped "in recovery" and adr_maintenance_status() on
# the standby says so; after promotion they run.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'");
$primary->start;
$primary->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

ok( $standby->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'}),
    'the launcher runs on the hot standby');

# A schedule made on the primary reaches the standby and fires there too.
my $log_offset = -s $standby->logfile;
$primary->safe_psql('postgres', q{SELECT adr_ops.adr_schedule('tick', '1 seconds', 'health_snapshot')});
$primary->wait_for_catchup($standby);
$standby->wait_for_log(qr/adr_ops launcher skipped schedule "tick": in recovery/, $log_offset);
ok( $standby->poll_query_until('postgres', q{
        SELECT last_status = 'skipped' AND last_detail = 'skipped: in recovery'
          FROM adr_ops.adr_maintenance_status() WHERE name = 'tick'}),
    'on the standby the run is recorded as skipped: in recovery');
unlike(slurp_file($standby->logfile, $log_offset), qr/ERROR|FATAL/,
    'the standby launcher raises no error trying to write');
my ($ret, $out, $err) = $standby->psql('postgres', q{SELECT adr_ops.adr_run_task('analyze')});
like($err, qr/ERROR:  cannot run a task during recovery/, 'adr_run_task refuses on a standby at once');

# After promotion the same launcher runs the schedule.
$primary->stop;
$standby->promote;
ok( $standby->poll_query_until('postgres', q{
        SELECT count(*) >= 1 FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
         WHERE s.name = 'tick' AND r.status = 'succeeded'
           AND r.started_at > (SELECT max(started_at) - interval '1 minute' FROM adr_ops.task_runs)}),
    'after promotion the schedule runs and is recorded');

$standby->stop;
done_testing();
