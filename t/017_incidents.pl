# The P1 path end to end against a loopback webhook receiver
# (t/fixtures/http_stub.pl): a CRITICAL backup_verification in the health
# history raises an alert, the default policy opens a P1 incident, the
# alert_delivery task posts it as a PagerDuty event, the
# incident_escalation task escalates it while unacknowledged (once), the
# acknowledgement is posted, the check turning OK marks it mitigated, the
# resolution is posted with the trigger's dedup_key.  Then the Alertmanager
# and generic formats.
use strict;
use warnings FATAL => 'all';

use File::Basename;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $stub_script = dirname(__FILE__) . '/fixtures/http_stub.pl';
my $stub;

my $dir = PostgreSQL::Test::Utils::tempdir;
mkdir "$dir/hook";
{
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec($^X, $stub_script, "$dir/hook") or die "exec: $!";
	}
	$stub = $pid;
}
END { kill 'TERM', -$stub if $stub; }
for (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
{
	last if -s "$dir/hook/port";
	select(undef, undef, undef, 0.01);
}
die "stub did not start" unless -s "$dir/hook/port";
my $hook_port = slurp_file("$dir/hook/port") + 0;

my $node = PostgreSQL::Test::Cluster->new('incidents');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.timezone = 'UTC'
adr_ops.alert_retry_base = 1
adr_ops.alert_webhook_url = 'http://127.0.0.1:$hook_port/hook'
adr_ops.alert_format = 'pagerduty'
adr_ops.pagerduty_routing_key = 'R0UTE-KEY'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});

my $seen = 0;

# Deliver the due alerts; return the payloads posted since the last call.
sub deliver
{
	my $r = $node->safe_psql('postgres', q{
        SELECT status || ': ' || detail FROM adr_ops.adr_run_task('alert_delivery')});
	like($r, qr/^succeeded: alerts: (delivered \d+|none due)$/, "alert_delivery: $r");
	my @lines = -e "$dir/hook/hook.log" ? split /\n/, slurp_file("$dir/hook/hook.log") : ();
	my @new = map { decode_json($_) } @lines[ $seen .. $#lines ];
	$seen = scalar @lines;
	return @new;
}

# 1. The alert: backup_verification turns CRITICAL in the health history.
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail)
    VALUES (now(), 'backup_verification', 'CRITICAL', 'restore of the last backup failed')});
my ($inc, $sev, $status) = split /\|/, $node->safe_psql('postgres', q{
    SELECT id, severity, status FROM adr_ops.incidents WHERE dedup_key = 'backup_verification'});
ok($inc, 'the alert opened an incident');
is("$sev $status", 'P1 open', 'a P1, open');
is($node->safe_psql('postgres', qq{
        SELECT string_agg(kind, ',' ORDER BY id) FROM adr_ops.incident_events WHERE incident_id = $inc}),
	'opened,evidence,notified,alert', 'its timeline: opened, evidence, notified, the alert');

# 2. The notification: a PagerDuty trigger with the routing key.
my @p = deliver();
my ($trigger) = grep { $_->{dedup_key} =~ m{/incident/} } @p;
my ($check) = grep { $_->{dedup_key} =~ m{/check/} } @p;
ok($trigger, 'the incident was posted');
is($trigger->{routing_key}, 'R0UTE-KEY', 'with the routing key');
is($trigger->{event_action}, 'trigger', 'as a trigger');
is($trigger->{dedup_key}, "adr_ops/postgres/incident/$inc", 'keyed by the incident');
is($trigger->{payload}{severity}, 'critical', 'P1 is critical');
like($trigger->{payload}{summary}, qr/^P1 backup_verification is CRITICAL: opened$/, 'summary');
like($trigger->{payload}{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'an ISO 8601 timestamp');
is($trigger->{payload}{custom_details}{incident_id}, $inc, 'custom_details name the incident');
is($check->{event_action}, 'trigger', 'the check alert itself is a trigger too');
is($check->{dedup_key}, 'adr_ops/postgres/check/backup_verification', 'keyed by the check');
is(deliver(), 0, 'nothing is posted twice');

# 3. Escalation while unacknowledged: a short target, the incident opened
# a minute ago; the task escalates once, the health row shows it.
$node->safe_psql('postgres', qq{
    UPDATE adr_ops.incident_targets SET ack_within = '30 seconds' WHERE severity = 'P1';
    UPDATE adr_ops.incidents SET opened_at = opened_at - interval '1 minute' WHERE id = $inc;});
is($node->safe_psql('postgres', q{
        SELECT status || ': ' || detail FROM adr_ops.adr_run_task('incident_escalation')}),
	'succeeded: escalated 1 incidents', 'the incident_escalation task escalates it');
is($node->safe_psql('postgres', q{
        SELECT status || ': ' || detail FROM adr_ops.adr_run_task('incident_escalation')}),
	'succeeded: escalated 0 incidents', 'once');
like($node->safe_psql('postgres', q{
        SELECT status || ' ' || value || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'incidents'}),
	qr/^CRITICAL 1 overdue: P1 $inc \(open\)$/, 'the incidents health row shows it overdue');
@p = deliver();
is(scalar @p, 1, 'the escalation is posted');
is($p[0]{event_action}, 'trigger', 'as a trigger again');
is($p[0]{dedup_key}, $trigger->{dedup_key}, 'with the same key');
is($p[0]{payload}{custom_details}{incident_event}, 'escalate', 'saying escalate');

# 4. Acknowledged by an on-call role granted the actions.
$node->safe_psql('postgres', q{
    CREATE ROLE oncall LOGIN;
    GRANT USAGE ON SCHEMA adr_ops TO oncall;
    GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_ack(bigint), adr_ops.adr_incident_note(bigint, text),
        adr_ops.adr_incident_resolve(bigint, text) TO oncall;});
is($node->safe_psql('postgres', "SELECT status || ' ' || acknowledged_by FROM adr_ops.adr_incident_ack($inc)",
		extra_params => [ '-U', 'oncall' ]),
	'acknowledged oncall', 'the on-call role acknowledges');
@p = deliver();
is(scalar @p, 1, 'the acknowledgement is posted');
is($p[0]{event_action}, 'acknowledge', 'as acknowledge');
is($p[0]{dedup_key}, $trigger->{dedup_key}, 'with the same key');

# 5. The check is OK again: mitigated, not resolved.
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail)
    VALUES (now(), 'backup_verification', 'OK', 'verified')});
is($node->safe_psql('postgres', "SELECT status || ' ' || (resolved_at IS NULL) FROM adr_ops.incidents WHERE id = $inc"),
	'mitigated true', 'every linked check OK: mitigated, never resolved by itself');
@p = deliver();
is(scalar @p, 1, 'the check alert is posted');
is($p[0]{event_action}, 'resolve', 'the check resolves in PagerDuty');
is($p[0]{dedup_key}, $check->{dedup_key}, 'under its own key');

# 6. Resolved by a person: the resolve carries the trigger's key.
$node->safe_psql('postgres', "SELECT adr_ops.adr_incident_note($inc, 'restored from the previous backup')",
	extra_params => [ '-U', 'oncall' ]);
is($node->safe_psql('postgres', "SELECT status FROM adr_ops.adr_incident_resolve($inc, 'backup job fixed')",
		extra_params => [ '-U', 'oncall' ]),
	'resolved', 'the on-call role resolves it');
@p = deliver();
is(scalar @p, 1, 'the resolution is posted');
is($p[0]{event_action}, 'resolve', 'as resolve');
is($p[0]{dedup_key}, $trigger->{dedup_key}, 'trigger and resolve share the dedup_key');
is($node->safe_psql('postgres', qq{
        SELECT string_agg(kind || ':' || coalesce(actor, '-'), ',' ORDER BY id)
          FROM adr_ops.incident_events WHERE incident_id = $inc AND kind NOT IN ('notified', 'evidence')}),
	'opened:postgres,alert:-,escalated:-,acknowledged:oncall,mitigated:-,note:oncall,resolved:oncall',
	'the timeline wrote itself');
is($node->safe_psql('postgres', "SELECT count(*) FROM adr_ops.alerts WHERE delivered_at IS NULL"),
	'0', 'every notification delivered');

# 7. The post-mortem draft, then closed with it.
my $report = $node->safe_psql('postgres', "SELECT adr_ops.adr_incident_report($inc)");
like($report, qr/^# Incident $inc: backup_verification is CRITICAL\n/, 'the post-mortem draft');
like($report, qr/^- Acknowledged: \S+ \S+ \S+ by oncall$/m, 'who acknowledged');
like($report, qr/^\| acknowledge \| 0d 00:01:\d\d \| 0d 00:00:30 \| no \|$/m,
	'time to acknowledge against its target');
like($report, qr/^\| resolve \| 0d 00:01:\d\d \| 0d 04:00:00 \| yes \|$/m, 'time to resolve against its target');
like($report, qr/^\| backup_verification \| check \| \S+ \S+ \S+ \| 0d 00:00:\d\d \|$/m,
	'impact: the check and how long it was not OK');
like($report, qr/^\| \S+ \S+ \S+ \| alert \| backup_verification none -> CRITICAL: restore of the last backup failed \|$/m,
	'the alert in the timeline');
like($report, qr/^\| \S+ \S+ \S+ \| health \| backup_verification CRITICAL -> OK \|$/m,
	'the health change in the timeline');
like($report, qr/^\| \S+ \S+ \S+ \| incident \| escalated: acknowledge target missed/m,
	'the escalation in the timeline');
like($report, qr/^\| \S+ \S+ \S+ \| evidence \| snapshot \d+ "adr_ops incident $inc" by postgres \|$/m,
	'the evidence in the timeline');
$node->safe_psql('postgres', "SELECT adr_ops.adr_incident_action($inc, 'page on a failed restore', 'dba')");
my $closed = $node->safe_psql('postgres', q{
    SELECT status FROM adr_ops.adr_incident_close(} . $inc . q{, adr_ops.adr_incident_report(} . $inc . q{))});
is($closed, 'closed', 'closed with its post-mortem');
like($node->safe_psql('postgres', "SELECT adr_ops.adr_incident_report($inc)"),
	qr/^\| \d+ \| page on a failed restore \| dba \| open \| - \|$/m, 'the follow-up action in the report');

# The routing key is a secret.
is($node->safe_psql('postgres', 'SHOW adr_ops.pagerduty_routing_key'), '********',
	'the routing key is hidden');

# 7. Alertmanager's webhook format.
$node->append_conf('postgresql.conf', "adr_ops.alert_format = 'alertmanager'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('adr_ops.alert_format') = 'alertmanager'")
  or die 'reload';
my $am = $node->safe_psql('postgres', q{SELECT adr_ops.adr_incident_open('P2', 'replica lag', 'reports are late')});
@p = deliver();
is(scalar @p, 1, 'the P2 is posted');
is($p[0]{version}, '4', 'Alertmanager version 4');
is($p[0]{status}, 'firing', 'firing');
is($p[0]{receiver}, 'adr_ops', 'receiver');
is(scalar @{ $p[0]{alerts} }, 1, 'one alert');
my $a = $p[0]{alerts}[0];
is($a->{labels}{alertname}, 'adr_ops_incident', 'alertname');
is($a->{labels}{severity}, 'P2', 'severity label');
is($a->{labels}{incident}, $am, 'incident label');
is($a->{annotations}{summary}, 'replica lag', 'summary annotation');
like($a->{startsAt}, qr/^\d{4}-\d\d-\d\dT/, 'startsAt');
is($a->{endsAt}, '0001-01-01T00:00:00Z', 'no end while firing');
ok(!exists $p[0]{routing_key}, 'no routing key outside PagerDuty');
$node->safe_psql('postgres', "SELECT adr_ops.adr_incident_resolve($am, 'caught up')");
@p = deliver();
is($p[0]{status}, 'resolved', 'the resolution is resolved');
is($p[0]{groupKey}, "adr_ops/postgres/incident/$am", 'in the same group');

# 8. The generic format: the alert, with the incident named.
$node->append_conf('postgresql.conf', "adr_ops.alert_format = 'generic'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('adr_ops.alert_format') = 'generic'")
  or die 'reload';
$node->safe_psql('postgres', "SELECT adr_ops.adr_incident_reopen($am, 'lagging again')");
@p = deliver();
is($p[0]{source}, 'incident', 'generic: source incident');
is($p[0]{incident_id}, $am, 'generic: incident_id');
is($p[0]{incident_event}, 'trigger', 'generic: incident_event');

# 9. scripts/adr-incident, the on-call person's shell commands.
sub script
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'scripts/adr-incident', '-h', $node->host, '-p', $node->port, '-d', 'postgres', @_ ],
		'>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}
my ($rc, $out, $err) = script('list');
is($rc, 1, 'list: WARNING while an incident is not closed');
like($out, qr/^ADR_INCIDENT WARNING - 1 incidents not closed: $am P2 open: replica lag$/, 'list names it');
($rc, $out) = script('open', 'P3', 'slow report; see "ticket 7"', 'a workaround exists');
is($rc, 0, 'open: OK');
like($out, qr/^ADR_INCIDENT OK - opened incident (\d+) \(P3\): slow report; see "ticket 7"$/, 'open says the id');
my ($p3) = $out =~ /opened incident (\d+)/;
is($node->safe_psql('postgres', "SELECT severity || '|' || title || '|' || summary FROM adr_ops.incidents WHERE id = $p3"),
	'P3|slow report; see "ticket 7"|a workaround exists', 'the values arrive as they were typed');
($rc, $out) = script('ack', $p3);
is("$rc $out", "0 ADR_INCIDENT OK - incident $p3 is acknowledged\n", 'ack');
($rc, $out) = script('ack', $p3);
is($rc, 2, 'a refused transition is CRITICAL');
like($out, qr/^ADR_INCIDENT CRITICAL - incident $p3 is already acknowledged$/, 'and says why');
($rc, $out) = script('note', $p3, q{it's the nightly batch});
is($rc, 0, 'note: OK');
is($node->safe_psql('postgres', "SELECT message FROM adr_ops.incident_events WHERE incident_id = $p3 AND kind = 'note'"),
	q{it's the nightly batch}, 'the note is in the timeline');
($rc, $out) = script('resolve', $p3, 'batch moved');
is("$rc $out", "0 ADR_INCIDENT OK - incident $p3 is resolved\n", 'resolve');
$node->safe_psql('postgres', qq{
    UPDATE adr_ops.incident_targets SET ack_within = '1 second' WHERE severity = 'P2';
    UPDATE adr_ops.incidents SET opened_at = opened_at - interval '1 minute' WHERE id = $am;});
($rc, $out) = script('list');
is($rc, 2, 'list: CRITICAL when an incident is overdue');
like($out, qr/^ADR_INCIDENT CRITICAL - 1 of 2 incidents overdue: $am P2 open OVERDUE: replica lag; $p3 P3 resolved: /,
	'list names the overdue one first');
($rc, $out) = script('ack', 'x1');
is($rc, 3, 'a bad id is UNKNOWN');
($rc, $out) = script('open', 'P4', 'x');
is($rc, 3, 'a bad severity is UNKNOWN');
($rc, $out, $err) = script('ack', $p3, '-U', 'nobody_here');
is($rc, 3, 'usage: options go before the command');

$node->stop;
($rc, $out) = script('list');
is($rc, 3, 'no server: UNKNOWN');
like($out, qr/^ADR_INCIDENT UNKNOWN - /, 'with a status line');
done_testing();
