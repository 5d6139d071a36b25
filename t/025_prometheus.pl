# Prometheus for real: the Debian prometheus-postgres-exporter runs
# dashboards/prometheus/queries.yaml against a test cluster, as a pg_monitor
# role, listening on 127.0.0.1 only; its /metrics, scraped over loopback,
# carries every metric of the registry (adr_metrics()) with the registry's
# type and nothing the registry does not have, and the values follow a
# provoked condition: a probe against a closed loopback port fails, a job
# loses its heartbeat.  promtool checks the alert rules and runs their
# unit tests (each alert fires on the series that should fire it, and only
# there).
use strict;
use warnings FATAL => 'all';

use File::Basename;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = dirname(__FILE__) . '/../dashboards/prometheus';
my ($exporter) = grep { -x } map { "$_/prometheus-postgres-exporter" } split(/:/, $ENV{PATH}), '/usr/bin';
my ($promtool) = grep { -x } map { "$_/promtool" } split(/:/, $ENV{PATH}), '/usr/bin';
plan skip_all => 'prometheus-postgres-exporter is not installed (Debian package prometheus-postgres-exporter; scripts/setup.sh installs it)'
  unless $exporter;
plan skip_all => 'promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)'
  unless $promtool;

# The rules: syntax, then their unit tests (run from their folder, which
# the test file names its rule file relative to).
command_ok([ $promtool, 'check', 'rules', "$dir/adr_ops.rules.yml" ],
	'promtool check rules passes on the alert rules');
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $promtool, 'test', 'rules', 'adr_ops.rules.test.yml' ],
		'>', \$stdout, '2>', \$stderr, init => sub { chdir $dir or die "chdir: $!" });
	ok($ok, 'promtool test rules: every alert fires where it should and only there')
	  or diag("$stdout$stderr");
}

my $node = PostgreSQL::Test::Cluster->new('prometheus');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE ROLE adr_exporter LOGIN IN ROLE pg_monitor;
    SELECT adr_ops.adr_health_snapshot();
    SELECT adr_ops.adr_capacity_snapshot();});

# The exporter: loopback only, our own free port, our cluster's socket, no
# default metrics (they would query the server's statistics views too).
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $log = $node->basedir . '/exporter.log';
my %env = %ENV;
delete $env{$_} for grep { /^(PG_EXPORTER_|DATA_SOURCE_)/ } keys %env;
$env{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=adr_exporter dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $h;
{
	local %ENV = %env;
	$h = IPC::Run::start(
		[ $exporter, "--web.listen-address=127.0.0.1:$http_port",
		  "--extend.query-path=$dir/queries.yaml",
		  '--disable-default-metrics', '--disable-settings-metrics',
		  '--no-collector.database', '--no-collector.bgwriter', '--log.level=warn' ],
		'<', \undef, '>', $log, '2>&1');
}
END { $h->kill_kill if $h; }

# One GET of /metrics over loopback: the body, or undef while the exporter
# is not listening yet.
sub get_metrics
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port,
		Proto => 'tcp', Timeout => 5) or return undef;
	print $sock "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	local $/;
	my $resp = <$sock>;
	close $sock;
	return undef unless defined $resp && $resp =~ m{^HTTP/1\.[01] 200};
	$resp =~ s/^.*?\r\n\r\n//s;
	return $resp;
}

# A scrape, parsed: TYPE lines, and samples by name and labels (the
# exporter's own labels, such as server, left out).
sub scrape
{
	my $body;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		last if defined($body = get_metrics());
		select(undef, undef, undef, 0.1);    # the exporter is starting
	}
	die "no /metrics from the exporter:\n" . slurp_file($log) unless defined $body;
	my (%type, %value);
	for my $line (split /\n/, $body)
	{
		if ($line =~ /^# TYPE (\S+) (\S+)$/)
		{
			$type{$1} = $2;
		}
		elsif ($line =~ /^(adr_ops_\w+)(?:\{(.*)\})? (\S+)$/)
		{
			my ($name, $labels, $v) = ($1, $2 // '', $3);
			my @l = sort grep { !/^server=/ } $labels =~ /(\w+="(?:[^"\\]|\\.)*")/g;
			$value{ $name . '{' . join(',', @l) . '}' } = $v;
		}
	}
	return { type => \%type, value => \%value, body => $body };
}

# Provoke: a probe against a closed loopback port, a job whose heartbeat is
# fresh (not stuck yet), a finished job, a passed backup verification, an
# incident and a schedule's failed run, so that every source has rows.
my $closed = PostgreSQL::Test::Cluster::get_free_port();
$node->safe_psql('postgres', qq{
    INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES ('closed', 'http://127.0.0.1:$closed/', 2000);
    SELECT count(adr_ops.adr_job_submit('tap')) FROM generate_series(1, 3);
    SELECT adr_ops.adr_job_complete((adr_ops.adr_job_claim('tap', 'w')).id);
    SELECT adr_ops.adr_job_claim('tap', 'w');
    INSERT INTO adr_ops.backup_verifications (path, status, finished_at, duration_ms, backup_bytes)
    VALUES ('/backups/tap.dump', 'passed', now(), 2500, 1048576);
    SELECT adr_ops.adr_incident_open('P1', 'prometheus test');
    INSERT INTO adr_ops.task_runs (schedule_id, task, database, scheduled_at, status, finished_at)
    SELECT id, task, database, now(), 'failed', now() FROM adr_ops.schedules WHERE name = 'analyze';
    UPDATE adr_ops.schedules SET enabled = true WHERE name = 'analyze';});

my $before = scrape();
is($before->{value}{'adr_ops_pipeline_stuck_jobs{pipeline="tap"}'}, '0',
	'before: no stuck job in pipeline tap');
is($before->{value}{'adr_ops_pipeline_running_jobs{pipeline="tap"}'}, '1',
	'before: one running job in pipeline tap');
ok(!exists $before->{value}{'adr_ops_probe_up{probe="closed"}'},
	'before: the probe has not run, so it has no sample');

# The probe runs (the http_probe task, through a worker) and fails; the
# job loses its heartbeat; a health snapshot judges both.
is($node->safe_psql('postgres', q{SELECT status FROM adr_ops.adr_run_task('http_probe')}),
	'succeeded', 'the http_probe task ran');
$node->safe_psql('postgres', q{
    UPDATE adr_ops.processing_jobs SET heartbeat_at = now() - interval '1 hour'
     WHERE pipeline = 'tap' AND status = 'running';
    SELECT adr_ops.adr_health_snapshot();});

my $after = scrape();
my %v = %{ $after->{value} };
is($v{'adr_ops_probe_up{probe="closed"}'}, '0', 'after: the probe against a closed port is down');
is($v{'adr_ops_probe_status_code{probe="closed"}'}, '0', 'after: and got no HTTP status');
is($v{'adr_ops_health_status{check="probe:closed"}'}, '2', 'after: its health check is CRITICAL (2)');
is($v{'adr_ops_pipeline_stuck_jobs{pipeline="tap"}'}, '1', 'after: the job without a heartbeat is stuck');
is($v{'adr_ops_pipeline_queued_jobs{pipeline="tap"}'}, '1', 'after: one job waits in the queue');
is($v{'adr_ops_pipeline_succeeded_last_hour_jobs{pipeline="tap"}'}, '1', 'after: one job succeeded');
is($v{'adr_ops_pipeline_failure_ratio{pipeline="tap"}'}, '0', 'after: no job failed');
is($v{'adr_ops_backup_last_verification_ok{}'}, '1', 'after: the backup verification passed');
is($v{'adr_ops_backup_max_age_seconds{}'}, '86400', 'after: backups may be a day old');
is($v{'adr_ops_incidents_open{severity="P1",status="open"}'}, '1', 'after: one P1 incident is open');
is($v{'adr_ops_incidents_opened_total{severity="P1"}'}, '1', 'after: one P1 incident was opened');
is($v{'adr_ops_incidents_opened_total{severity="P2"}'}, '1',
	'after: the failing probe opened a P2 incident (its alert, through the incident policy)');
is($v{'adr_ops_schedule_last_run_failed{schedule="analyze",task="analyze"}'}, '1',
	'after: the analyze schedule\'s last run failed');
is($v{'adr_ops_blocklist_entries{kind="manual"}'}, '0', 'after: nothing is blocked');
cmp_ok($v{'adr_ops_health_snapshot_age_seconds{}'}, '<', 60, 'after: the health snapshot is fresh');
cmp_ok($v{'adr_ops_size_bytes{kind="database",name="postgres"}'}, '>', 0, 'after: the database has a size');

# Every registry metric is served with the registry's type (but
# adr_ops_metrics_source_up: through the exporter a failing source fails its
# queries instead); the exporter serves no adr_ops metric the registry does
# not have; every source reads.
my %registry = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
    SET ROLE adr_exporter;
    SELECT DISTINCT name || '|' || type FROM adr_ops.metrics
     WHERE name <> 'adr_ops_metrics_source_up'});
my %served = map { $_ => $after->{type}{$_} } grep { /^adr_ops_/ } keys %{ $after->{type} };
my @missing = grep { ($served{$_} // '') ne $registry{$_} } sort keys %registry;
is_deeply(\@missing, [], 'every registry metric is served with its type')
  or diag(join("\n", map { "$_: registry $registry{$_}, served " . ($served{$_} // 'none') } @missing));
my @stale = grep { !exists $registry{$_} } sort keys %served;
is_deeply(\@stale, [], 'the exporter serves no adr_ops metric the registry does not have');
cmp_ok(scalar(keys %registry), '>=', 30, 'the registry has all its metrics here');
is($node->safe_psql('postgres', q{
    SET ROLE adr_exporter;
    SELECT string_agg(labels->>'source' || '=' || value, ',' ORDER BY labels->>'source')
      FROM adr_ops.metrics WHERE name = 'adr_ops_metrics_source_up'}),
	'backup=1,capacity=1,health=1,incidents=1,maintenance=1,pipelines=1,probes=1,security=1',
	'every metric source reads');
like($after->{body}, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m,
	'the exporter loaded the queries file without an error');
like($after->{body}, qr/^pg_exporter_last_scrape_error 0$/m, 'the scrape ran without an error');
unlike(slurp_file($log), qr/level=error/, 'the exporter logged no error');

# A source that fails (pg_monitor may no longer read a table of it): its
# queries fail, the exporter says so, and the
# other sources are still served.
$node->safe_psql('postgres', q{
    REVOKE SELECT ON adr_ops.maintenance_state FROM pg_monitor});
my $broken = scrape();
like($broken->{body}, qr/^pg_exporter_last_scrape_error 1$/m, 'a failing source makes the scrape error 1');
ok(!exists $broken->{value}{'adr_ops_blocklist_entries{kind="manual"}'}, 'its metrics are gone');
is($broken->{value}{'adr_ops_pipeline_stuck_jobs{pipeline="tap"}'}, '1', 'the other sources are still served');

$h->kill_kill;
$h = undef;
$node->stop;
done_testing();
