# The Grafana dashboards of dashboards/grafana/: every file parses, and
# every panel's SQL runs against a cluster with real state, as a role that
# is only a member of pg_monitor, after the macros are replaced the way
# Grafana's PostgreSQL data source replaces them; it returns the columns
# its panel type needs (a timestamp "time" first for time series, the
# declared columns for tables and stats, numbers in stats) and rows.
# Grafana itself is not in Debian's archive: this is what can be tested
# without it.
use strict;
use warnings FATAL => 'all';

use File::Basename;
use JSON::PP;
use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = dirname(__FILE__) . '/../dashboards/grafana';
my @files = sort glob("$dir/*.json");
ok(@files >= 7, 'an overview and a dashboard per concern (' . scalar(@files) . ' files)');

# The columns of each table and stat panel, by dashboard uid and panel title.
my %declared_columns = (
	'adr-ops-overview/Checks by status now' => [qw(status checks)],
	'adr-ops-overview/Open incidents' => [qw(incidents)],
	'adr-ops-overview/Alerts' => [qw(alerts)],
	'adr-ops-backups/Hours since the last passed verification' => [qw(hours)],
	'adr-ops-backups/Verifications in range' => [qw(status verifications)],
	'adr-ops-security/Ranges blocked now' => [qw(blocked)],
	'adr-ops-security/Maintenance mode' => [qw(maintenance_mode)],
	'adr-ops-overview/Checks now' => [qw(check_name status value unit warn crit taken_at detail)],
	'adr-ops-overview/Alerts in range' => [qw(at source check_name from_status to_status detail delivered)],
	'adr-ops-overview/Incidents not closed' => [qw(id severity status title opened_at ack_due resolve_due overdue)],
	'adr-ops-maintenance/Schedules' => [qw(name schedule task database enabled next_run last_started_at last_status last_objects last_detail)],
	'adr-ops-maintenance/Runs not succeeded' => [qw(started_at task database status objects detail)],
	'adr-ops-pipelines/Pipelines in range' => [qw(pipeline queued running succeeded failed cancelled failure_rate p50_duration p95_duration oldest_queued stuck_running)],
	'adr-ops-pipelines/Failed jobs' => [qw(completed_at id pipeline attempts max_attempts worker last_error)],
	'adr-ops-performance/Slowest statements in range' => [qw(query queryid calls total_ms mean_ms)],
	'adr-ops-backups/Verifications' => [qw(started_at path format status backup_mtime backup_bytes tables_restored rows_counted duration_ms failures)],
	'adr-ops-security/Blocked clients' => [qw(client reason blocked_at expires_at blocked_by)],
	'adr-ops-security/Failed authentications since start-up' => [qw(client user_names failures window_failures first_seen last_seen)],
	'adr-ops-capacity/Forecast (last 30 days of samples)' => [qw(kind name samples current growth_per_day r2 days_to_warn days_to_crit days_to_full note)],
	'adr-ops-capacity/Largest relations (last snapshot)' => [qw(relation bytes taken_at)],
);
# Panels whose rows this test cannot provoke (failed logins need password
# authentication, which the test cluster does not use).
my %may_be_empty = ('adr-ops-security/Failed authentications since start-up' => 1);

my $numeric = qr/^(?:smallint|integer|bigint|numeric|real|double precision)$/;

# Grafana's replacement of its macros, for a range and an interval: time
# filters become BETWEEN the range's bounds in RFC 3339, time groups the
# epoch floored to the interval (Grafana turns that number into a time:
# to_timestamp() gives the same time here, so that its type can be checked).
sub expand
{
	my ($sql, $from, $to, $interval) = @_;
	my %unit = (ms => 0.001, s => 1, m => 60, h => 3600, d => 86400);
	my $secs = sub {
		my ($i) = @_;
		$i =~ /^\s*'?(\d+)(ms|s|m|h|d)'?\s*$/ or die "interval $i";
		return $1 * $unit{$2};
	};
	$sql =~ s/\$__interval_ms\b/$secs->($interval) * 1000/ge;
	$sql =~ s/\$__interval\b/$interval/g;
	$sql =~ s/\$__timeGroupAlias\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)/
	  sprintf('to_timestamp(floor(extract(epoch from %s)\/%s)*%s) AS "time"', $1, $secs->($2), $secs->($2))/ge;
	$sql =~ s/\$__timeGroup\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)/
	  sprintf('to_timestamp(floor(extract(epoch from %s)\/%s)*%s)', $1, $secs->($2), $secs->($2))/ge;
	$sql =~ s/\$__timeFilter\(\s*([^()]+?)\s*\)/$1 BETWEEN '$from' AND '$to'/g;
	$sql =~ s/\$__timeFrom\(\)/'$from'/g;
	$sql =~ s/\$__timeTo\(\)/'$to'/g;
	$sql =~ s/\$__time\(\s*([^()]+?)\s*\)/$1 AS "time"/g;
	return $sql;
}

my $node = PostgreSQL::Test::Cluster->new('grafana');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE EXTENSION pg_stat_statements;
    CREATE ROLE grafana LOGIN IN ROLE pg_monitor;});

# State in every table the panels read.
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    UPDATE adr_ops.statement_snapshots SET taken_at = now() - interval '2 hours';
    SELECT adr_ops.adr_capacity_snapshot();
    UPDATE adr_ops.size_history SET taken_at = taken_at - interval '1 day';});
$node->safe_psql('postgres', 'SELECT pg_sleep(0.01), 7') for 1 .. 3;
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    SELECT adr_ops.adr_capacity_snapshot();
    SELECT adr_ops.adr_health_snapshot();
    INSERT INTO adr_ops.health_history (taken_at, check_name, status, value, unit, warn, crit, detail)
    SELECT h.taken_at - make_interval(hours => 3 * g), h.check_name,
           CASE WHEN g = 2 THEN 'WARNING' ELSE h.status END, h.value, h.unit, h.warn, h.crit, h.detail
      FROM adr_ops.health_history h, generate_series(1, 20) g;
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
        VALUES ('health', 'disk', 'OK', 'WARNING', 'disk 85%');
    SELECT adr_ops.adr_incident_open('P3', 'disk filling');
    INSERT INTO adr_ops.probe_history (probe, url, probed_at, ok, status_code, latency_ms, bytes, error) VALUES
        ('api', 'http://127.0.0.1:9/health', now() - interval '10 minutes', true, 200, 12.5, 10, NULL),
        ('api', 'http://127.0.0.1:9/health', now() - interval '5 minutes', false, NULL, NULL, NULL, 'connection refused');
    INSERT INTO adr_ops.backup_verifications
           (path, format, started_at, finished_at, status, tables_restored, rows_counted, duration_ms, backup_mtime, backup_bytes)
    VALUES ('/backups/nightly.dump', 'custom', now() - interval '1 day', now() - interval '1 day', 'passed', 12, 34567, 4200,
            now() - interval '25 hours', 123456);
    SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'scanner');
    INSERT INTO adr_ops.task_runs (task, database, started_at, finished_at, status, detail)
        VALUES ('vacuum_analyze', 'postgres', now() - interval '3 hours', now() - interval '3 hours', 'failed', 'lock timeout');
    DO $$
    DECLARE i int; j bigint;
    BEGIN
        FOR i IN 1 .. 3 LOOP
            PERFORM adr_ops.adr_job_submit('etl', '{}', 1);
            j := (adr_ops.adr_job_claim('etl', 'w1')).id;
            IF i = 3 THEN PERFORM adr_ops.adr_job_fail(j, 'source unreachable');
            ELSE PERFORM adr_ops.adr_job_complete(j); END IF;
        END LOOP;
    END $$;});
is($node->safe_psql('postgres', q{SELECT status FROM adr_ops.adr_run_task('analyze')}),
	'succeeded', 'a maintenance task ran');

my $from = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 7 * 86400));
my $to = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 300));

# Checks one panel; returns a list of problems (empty: fine).
sub check_panel
{
	my ($key, $panel, $sql) = @_;
	my @problems;
	my $run = expand($sql, $from, $to, '1h');
	push @problems, "macro left: $1" if $run =~ /(\$__\w+)/;
	push @problems, "template variable left: $1" if $run =~ /(\$\{?\w+)/;
	return @problems if @problems;
	my ($ret, $desc, $err) = $node->psql('postgres', "$run \\gdesc",
		extra_params => [ '-U', 'grafana', '-F', '|' ]);
	return ("does not run: $err") if $ret != 0 || $err ne '';
	my @cols = map { [ split /\|/, $_, 2 ] } split /\n/, $desc;
	my $format = $panel->{targets}[0]{format} // 'time_series';
	my $type = $panel->{type};
	if ($type eq 'timeseries' || $type eq 'state-timeline')
	{
		push @problems, "format $format, not time_series" unless $format eq 'time_series';
		push @problems, "first column $cols[0][0] $cols[0][1], not time timestamptz"
		  unless $cols[0][0] eq 'time' && $cols[0][1] eq 'timestamp with time zone';
		for my $c (@cols[ 1 .. $#cols ])
		{
			next if $c->[0] eq 'metric' && $c->[1] eq 'text';
			push @problems, "column $c->[0] is $c->[1], not a number" unless $c->[1] =~ $numeric;
		}
		push @problems, 'no value column' unless grep { $_->[1] =~ $numeric } @cols;
	}
	elsif ($type eq 'stat' || $type eq 'table')
	{
		push @problems, "format $format, not table" unless $format eq 'table';
		if ($type eq 'stat')
		{
			my @num = grep { $_->[1] =~ $numeric } @cols;
			push @problems, 'no number' unless @num;
			push @problems, 'more than one label column' if @cols - @num > 1;
		}
		my $want = $declared_columns{$key};
		if (!$want)
		{
			push @problems, 'no declared columns';
		}
		else
		{
			my $got = join ',', map { $_->[0] } @cols;
			push @problems, "columns $got, declared " . join(',', @$want)
			  unless $got eq join(',', @$want);
		}
	}
	else
	{
		push @problems, "panel type $type not checked by this test";
	}
	my ($r2, $rows, $e2) = $node->psql('postgres', "SELECT count(*) FROM ($run) q",
		extra_params => [ '-U', 'grafana' ]);
	push @problems, "count failed: $e2" if $r2 != 0;
	push @problems, 'no row' if $r2 == 0 && $rows == 0 && !$may_be_empty{$key};
	return @problems;
}

my (%uids, %used);
my $panels = 0;
for my $file (@files)
{
	my $text = slurp_file($file);
	my $d = eval { JSON::PP->new->decode($text) };
	ok($d, basename($file) . ' parses') or diag($@);
	next unless $d;
	ok($d->{uid} && !$uids{ $d->{uid} }++, basename($file) . " has its own uid $d->{uid}");
	my @p = map { $_->{type} eq 'row' ? @{ $_->{panels} // [] } : $_ } @{ $d->{panels} };
	for my $panel (@p)
	{
		my $key = "$d->{uid}/$panel->{title}";
		ok(!$used{$key}++, "$key: its title is its own");
		is(scalar @{ $panel->{targets} // [] }, 1, "$key: one query");
		my $t = $panel->{targets}[0];
		is($t->{datasource}{type} // '', 'grafana-postgresql-datasource', "$key: on the PostgreSQL data source");
		my @problems = check_panel($key, $panel, $t->{rawSql} // '');
		is_deeply(\@problems, [], "$key: its SQL runs as pg_monitor and fits the panel") or diag($t->{rawSql});
		$panels++;
	}
}
ok($panels >= 30, "$panels panels checked");
is_deeply([ grep { !$used{$_} } sort keys %declared_columns ], [], 'every declaration is a panel');

# The checker catches what Grafana would not draw: a time series whose
# time is not first, a table with other columns than declared, a macro it
# does not know, a query pg_monitor may not run.
ok(scalar check_panel('x/y', { type => 'timeseries', targets => [ { format => 'time_series' } ] },
		'SELECT 1 AS value, $__timeGroupAlias(taken_at, $__interval) FROM adr_ops.health_history GROUP BY 2'),
	'the check refuses a time series without time first');
ok(scalar check_panel('adr-ops-overview/Checks now', { type => 'table', targets => [ { format => 'table' } ] },
		'SELECT 1 AS check_name'),
	'the check refuses a table with other columns');
ok(scalar check_panel('adr-ops-overview/Alerts', { type => 'stat', targets => [ { format => 'table' } ] },
		'SELECT 1 AS alerts, 2 AS more'),
	'the check refuses a stat with other columns');
ok(scalar check_panel('x/y', { type => 'stat', targets => [ { format => 'table' } ] }, 'SELECT $__unixEpochFilter(x)'),
	'the check refuses an unknown macro');
ok(scalar check_panel('x/y', { type => 'stat', targets => [ { format => 'table' } ] },
		'SELECT count(*) FROM adr_ops.security_actions'),
	'the check refuses what pg_monitor may not read');
ok(scalar check_panel('x/y', { type => 'stat', targets => [ { format => 'table' } ] },
		'SELECT count(*) FROM adr_ops.health_history WHERE false HAVING false'),
	'the check refuses a panel without rows');

done_testing();
