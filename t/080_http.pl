# HTTP probes and alerts against a real HTTP server on 127.0.0.1
# (t/fixtures/http_stub.pl): 200, 500, redirects, a redirect to file://,
# a slow answer past the timeout, a refused connection, a DNS failure, a
# huge body, a Prometheus page, destinations outside
# adr_ops.http_allowed_hosts, a bearer token, cancel and statement_timeout
# during a slow probe; the http_probe task with its health rows; one alert
# per transition with NOTIFY; webhook delivery that retries while the
# receiver is down and posts each alert exactly once.
use strict;
use warnings FATAL => 'all';

use File::Basename;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $stub_script = dirname(__FILE__) . '/fixtures/http_stub.pl';
my @stubs;

# Start a stub serving files in $dir; returns its port.
sub start_stub
{
	my ($dir, $port) = @_;
	mkdir $dir;
	unlink "$dir/port";
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec($^X, $stub_script, $dir, $port // 0) or die "exec: $!";
	}
	push @stubs, $pid;
	for (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
	{
		last if -s "$dir/port";
		select(undef, undef, undef, 0.01);
	}
	die "stub did not start" unless -s "$dir/port";
	return slurp_file("$dir/port") + 0;
}

END { kill 'TERM', map { -$_ } @stubs if @stubs; }

my $dir = PostgreSQL::Test::Utils::tempdir;
my $port = start_stub("$dir/app");
my $base = "http://127.0.0.1:$port";

my $node = PostgreSQL::Test::Cluster->new('http');
# UTF-8, so that text from the network that is not UTF-8 would show.
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.timezone = 'UTC'
adr_ops.alert_retry_base = 1
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});

sub check
{
	my ($url, $extra) = @_;
	$extra //= '';
	return $node->safe_psql('postgres', qq{
        SELECT ok, coalesce(status_code::text, '-'), bytes, coalesce(error, '-')
          FROM adr_ops.adr_http_check('$url'$extra)});
}

# The plain cases.
is(check("$base/ok"), "t|200|3|-", '200 is ok, with the body size');
is(check("$base/status/500"), "f|500|11|unexpected status: got 500, expected 200",
	'500 is not ok, and says why');
is(check("$base/status/500", ', expect_status => 500'), "t|500|11|-",
	'an expected 500 is ok');
like(check("$base/status/404"), qr/^f\|404\|/, 'a 404 is not ok');

# Redirects: followed up to adr_ops.http_max_redirects, only to http(s).
is(check("$base/redirect/3"), "t|200|7|-", 'a redirect chain is followed');
like(check("$base/redirect/9"),
	qr/^f\|302\|\d+\|too many redirects: more than 5 \(adr_ops.http_max_redirects\)$/,
	'a chain longer than adr_ops.http_max_redirects stops');
like($node->safe_psql('postgres', qq{
        SET adr_ops.http_max_redirects = 0;
        SELECT error FROM adr_ops.adr_http_check('$base/redirect/1')}),
	qr/^too many redirects: more than 0/, 'adr_ops.http_max_redirects = 0 follows none');
like(check("$base/to-file"), qr/^f\|302\|\d+\|protocol not allowed: .*only http and https$/,
	'a redirect to file:// is refused');
like(check('file:///etc/passwd'), qr/^f\|-\|0\|scheme not allowed: "file"; only http and https$/,
	'a file:// URL is refused before any transfer');

# Timeouts, refusals, DNS.
is(check("$base/slow/5000", ', timeout_ms => 300'),
	"f|-|0|timeout: no complete response within 300 ms", 'a slow answer times out');
my $closed = PostgreSQL::Test::Cluster::get_free_port();
like(check("http://127.0.0.1:$closed/"), qr/^f\|-\|0\|connection refused: /,
	'a closed port is a refused connection');
like(check('http://no-such-host.invalid/'), qr/^f\|-\|0\|DNS failure: /,
	'an unknown host is a DNS failure');
like(check("https://127.0.0.1:$port/ok"), qr/^f\|-\|0\|TLS failure: /,
	'https to a server that speaks no TLS is a TLS failure');

# A huge body: read up to adr_ops.http_max_body, then the transfer stops.
is($node->safe_psql('postgres', qq{
        SET adr_ops.http_max_body = '64kB';
        SELECT ok, status_code, bytes, error FROM adr_ops.adr_http_check('$base/huge')}),
	't|200|65536|body capped: stopped reading at 65536 bytes (adr_ops.http_max_body)',
	'a huge body is capped');
like($node->safe_psql('postgres', qq{
        SELECT ok, bytes FROM adr_ops.adr_http_check('$base/huge')}),
	qr/^t\|1048576$/, 'the default cap is 1MB');

# A bearer token, checked for line breaks.
is(check("$base/auth", q{, bearer_token => 'sesame'}), "t|200|8|-", 'the bearer token is sent');
like(check("$base/auth"), qr/^f\|401\|/, 'without it the server refuses');
my ($ret, $out, $err) = $node->psql('postgres', qq{
    SELECT * FROM adr_ops.adr_http_check('$base/auth', bearer_token => E'x\\r\\nX-Evil: 1')});
like($err, qr/bearer_token must not contain CR or LF/, 'a token with CR/LF is refused');

# Destinations: loopback only by default, checked on the resolved address.
like(check('http://10.255.255.1:9/'),
	qr/^f\|-\|0\|destination not allowed: address 10.255.255.1 is not in adr_ops.http_allowed_hosts$/,
	'an address outside loopback is refused');
like(check("$base/to-outside"),
	qr/^f\|302\|\d+\|destination not allowed: address 10.255.255.1 /,
	'a redirect outside the allowed hosts is refused');
like(check("http://localhost:$port/ok"), qr/^t\|200\|/,
	'a name resolving to loopback is allowed');
like($node->safe_psql('postgres', qq{
        SET adr_ops.http_allowed_hosts = '10.0.0.0/8, example.invalid';
        SELECT error FROM adr_ops.adr_http_check('$base/ok')}),
	qr/^destination not allowed: address 127.0.0.1 /,
	'loopback is refused when the list does not hold it');
is($node->safe_psql('postgres', qq{
        SET adr_ops.http_allowed_hosts = '127.0.0.0/30';
        SELECT ok FROM adr_ops.adr_http_check('$base/ok')}),
	't', 'a CIDR range allows its addresses');
is($node->safe_psql('postgres', qq{
        SET adr_ops.http_allowed_hosts = 'localhost';
        SELECT ok FROM adr_ops.adr_http_check('$base/ok')}),
	't', 'a host name allows the addresses it resolves to');

# Prometheus metrics.
is($node->safe_psql('postgres', qq{
        SELECT metric, labels, value FROM adr_ops.adr_http_metric('$base/metrics', 'response_time')
         ORDER BY value}),
	qq{response_time|{}|-Infinity
response_time|{"back": "c:\\\\d", "note": "line\\nbreak", "path": "/a\\"b"}|0.25
response_time|{"path": "bad??bytes"}|3
response_time|{"path": "/inf"}|Infinity
response_time|{"path": "/nan"}|NaN},
	'samples of a metric, with escaped label values, NaN and infinities; values out of range (1e999, 1e-999) or too long are malformed lines; a label value that is not UTF-8 has its bytes replaced');
is($node->safe_psql('postgres', qq{
        SELECT metric, labels ->> 'le', value
          FROM adr_ops.adr_http_metric('$base/metrics', 'http_response_time_seconds')
         ORDER BY 1, 2}),
	qq{http_response_time_seconds_bucket|+Inf|9
http_response_time_seconds_bucket|0.1|7
http_response_time_seconds_count||9
http_response_time_seconds_sum||0.75},
	'a histogram family returns its buckets, sum and count');

# The parser on its own (src/prom_text.c has no PostgreSQL headers): its
# table-driven checks, built with the strictest warnings.
{
	my ($stdout, $stderr) = run_command([ 'make', '-s', '-C', 'fuzz', 'prom-check' ]);
	like($stdout, qr/^\d+ passed, 0 failed$/m, 'every case of the Prometheus parser passes');
	unlike($stderr, qr/warning|error/i, 'prom_text.c compiles without warnings');
}
($ret, $out, $err) = $node->psql('postgres', qq{
    SELECT * FROM adr_ops.adr_http_metric('$base/status/500', 'up')});
like($err, qr/could not fetch metrics from .*\n.*unexpected status: got 500/,
	'a page that cannot be fetched is an error');

# A cancel, and statement_timeout, stop a slow probe (the stub answers
# after 10 minutes; the probe would wait 20), and the same session goes on:
# its backend, whose pid is known, is still connected and idle.
{
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_until(qr/probing/, "\\echo probing\n"
		  . "SELECT * FROM adr_ops.adr_http_check('$base/slow/600000', timeout_ms => 1200000);\n");
	ok($node->poll_query_until('postgres', qq{
            SELECT count(*) = 1 FROM pg_stat_activity
             WHERE pid = $pid AND query LIKE '%slow/600000%' AND state = 'active'}),
		'the slow probe runs');
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	is($session->query('SELECT pg_backend_pid()'), $pid,
		'after a cancel the same session answers');
	like($session->{stderr}, qr/canceling statement due to user request/,
		'a cancel stops the probe');
	$session->{stderr} = '';
	is($node->safe_psql('postgres', qq{
            SELECT state || ' ' || (query LIKE '%slow/600000%')::text FROM pg_stat_activity
             WHERE pid = $pid}),
		'idle false', 'the backend is connected, idle, the probe gone');

	is($session->query(qq{SET statement_timeout = '300ms';
            SELECT * FROM adr_ops.adr_http_check('$base/slow/600000', timeout_ms => 1200000);
            RESET statement_timeout;
            SELECT pg_backend_pid()}), $pid, 'after statement_timeout the same session answers');
	like($session->{stderr}, qr/canceling statement due to statement timeout/,
		'statement_timeout stops a probe');
	$session->{stderr} = '';
	is($node->safe_psql('postgres', qq{
            SELECT state FROM pg_stat_activity WHERE pid = $pid}),
		'idle', 'nothing is left running');
	$session->quit;
}

# The webhook receiver is down at first: its port is chosen, not served.
# The URL is a secret: it comes from a file, so that no reload logs it.
my $hook_port = PostgreSQL::Test::Cluster::get_free_port();
slurp_file_write("$dir/webhook_url", "http://127.0.0.1:$hook_port/hook\n");
$node->append_conf('postgresql.conf', qq{
adr_ops.alert_webhook_url_file = '$dir/webhook_url'
});
$node->reload;

# The http_probe task: all probes at once; results in probe_history, one
# health row per probe, one alert per transition.
$node->safe_psql('postgres', qq{
    INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES
        ('app', '$base/flip', 5000),
        ('down', 'http://127.0.0.1:$closed/', 5000),
        ('off', '$base/ok', 5000);
    UPDATE adr_ops.probes SET enabled = false WHERE name = 'off';});
is($node->safe_psql('postgres', q{
        SELECT check_name, status FROM adr_ops.adr_health_check()
         WHERE check_name LIKE 'probe:%' ORDER BY 1}),
	"probe:app|UNKNOWN\nprobe:down|UNKNOWN", 'probes not yet run are UNKNOWN');

sub run_task
{
	my ($task) = @_;
	return $node->safe_psql('postgres', qq{
        SELECT status || ': ' || detail FROM adr_ops.adr_run_task('$task')});
}

my ($stdout, $stderr) = ('', '');
$node->psql('postgres', q{
    LISTEN adr_alerts;
    SELECT status FROM adr_ops.adr_run_task('http_probe');
    SELECT 1;}, stdout => \$stdout, stderr => \$stderr);
like($stdout, qr/Asynchronous notification "adr_alerts" with payload "\{"id" : \d+, .*"check_name" : "probe:down", "from_status" : null, "to_status" : "CRITICAL"/,
	'NOTIFY adr_alerts carries the alert as JSON');
unlike($stdout, qr/Asynchronous notification .*(?:"detail"|connection refused)/,
	'but not its detail, which any role could LISTEN to');
is($node->safe_psql('postgres', q{
        SELECT probe, ok, status_code FROM adr_ops.probe_history ORDER BY probe}),
	"app|t|200\ndown|f|", 'the task stored one result per enabled probe');
is($node->safe_psql('postgres', q{
        SELECT check_name, status FROM adr_ops.adr_health_check()
         WHERE check_name LIKE 'probe:%' ORDER BY 1}),
	"probe:app|OK\nprobe:down|CRITICAL", 'a failed probe is CRITICAL in the health check');
like($node->safe_psql('postgres', q{
        SELECT detail FROM adr_ops.adr_health_check() WHERE check_name = 'probe:down'}),
	qr/connection refused/, 'with the reason');

# The receiver was down: the delivery failed, and is counted.
like($node->safe_psql('postgres', q{
        SELECT attempts, delivered_at IS NULL, last_error FROM adr_ops.alerts}),
	qr/^1\|t\|connection refused: /, 'a delivery to a receiver that is down is recorded');

slurp_file_write("$dir/app/flip", "500\n");
run_task('http_probe');
run_task('http_probe');
slurp_file_write("$dir/app/flip", "200\n");
run_task('http_probe');
run_task('http_probe');
is($node->safe_psql('postgres', q{
        SELECT check_name, coalesce(from_status, '-'), to_status FROM adr_ops.alerts
         WHERE source <> 'incident' ORDER BY id}),
	"probe:down|-|CRITICAL\nprobe:app|OK|CRITICAL\nprobe:app|CRITICAL|OK",
	'one alert per transition, none for runs that change nothing');

# Health checks alert too, from the snapshots.
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.health_thresholds VALUES ('connections', -2, -1);
    SELECT adr_ops.adr_health_snapshot();
    SELECT adr_ops.adr_health_snapshot();
    UPDATE adr_ops.health_thresholds SET warn = 80, crit = 90 WHERE check_name = 'connections';
    SELECT adr_ops.adr_health_snapshot();});
is($node->safe_psql('postgres', q{
        SELECT coalesce(from_status, '-'), to_status FROM adr_ops.alerts
         WHERE source = 'health' AND check_name = 'connections' ORDER BY id}),
	"-|CRITICAL\nCRITICAL|OK", 'a health check alerts on each change of status');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.alerts WHERE check_name LIKE 'probe:%' AND source = 'health'}),
	'0', 'probe rows of the health check do not alert twice');

# An alert older than a day is never posted: configuring a webhook does
# not post the backlog.
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.alerts (at, source, check_name, to_status, detail)
    VALUES (now() - interval '25 hours', 'health', 'old_news', 'CRITICAL', 'long ago')});

# The receiver comes up: every alert is delivered, each exactly once.
start_stub("$dir/hook", $hook_port);
ok($node->poll_query_until('postgres', q{
        SELECT (adr_ops.adr_run_task('alert_delivery')).status IS NOT NULL
           AND NOT EXISTS (SELECT FROM adr_ops.alerts WHERE delivered_at IS NULL
                              AND check_name <> 'old_news')}),
	'the alerts are delivered once the receiver is up');
is($node->safe_psql('postgres', q{
        SELECT attempts, delivered_at IS NULL FROM adr_ops.alerts WHERE check_name = 'old_news'}),
	'0|t', 'but not an alert older than a day');
my $alerts = $node->safe_psql('postgres', q{
    SELECT string_agg(id::text, ',' ORDER BY id) FROM adr_ops.alerts WHERE check_name <> 'old_news'});
my %posted;
$posted{$_}++ for (slurp_file("$dir/hook/hook.log") =~ /"id" : (\d+)/g);
is(join(',', sort { $a <=> $b } keys %posted), $alerts, 'the webhook received every alert');
is(scalar(grep { $posted{$_} != 1 } keys %posted), 0, 'and each exactly once');
cmp_ok($node->safe_psql('postgres', q{
        SELECT max(attempts) FROM adr_ops.alerts WHERE check_name = 'probe:down'}),
	'>=', 2, 'the first alert was retried');

# A new transition is posted by the probe run that detects it.
slurp_file_write("$dir/app/flip", "503\n");
like(run_task('http_probe'), qr/probed 2: 0 ok, 2 failed \(app, down\); alerts: delivered 1$/,
	'the probe run delivers its alert');
like(slurp_file("$dir/hook/hook.log"),
	qr/"check_name" : "probe:app", "from_status" : "OK", "to_status" : "CRITICAL", "detail" : "[^"]*unexpected status: got 503/,
	'the webhook gets the JSON of the alert');

# A webhook that answers the POST with a redirect has not received it
# (libcurl would re-issue it as a GET, whose 200 is no delivery).
slurp_file_write("$dir/webhook_url", "$base/redirect/1\n");
slurp_file_write("$dir/app/flip", "200\n");
like(run_task('http_probe'), qr/alerts: delivered 0, 1 failed/,
	'a redirected POST is a failed delivery');
is($node->safe_psql('postgres', q{
        SELECT delivered_at IS NULL, last_error FROM adr_ops.alerts ORDER BY id DESC LIMIT 1}),
	't|unexpected status: got 302, expected 2xx (a POST follows no redirect)',
	'a POST follows no redirect');
slurp_file_write("$dir/webhook_url", "http://127.0.0.1:$hook_port/hook\n");

# A probe with send_token sends the token read from the file named by
# adr_ops.probe_bearer_token_file.
my $log_offset = -s $node->logfile;
slurp_file_write("$dir/token", "sesame\n");
$node->append_conf('postgresql.conf', qq{
adr_ops.probe_bearer_token_file = '$dir/token'
});
$node->reload;
$node->safe_psql('postgres', qq{
    UPDATE adr_ops.probes SET enabled = false;
    INSERT INTO adr_ops.probes (name, url, send_token) VALUES
        ('authed', '$base/auth', true), ('anonymous', '$base/auth', false);});
like(run_task('http_probe'), qr/^succeeded: probed 2: 1 ok, 1 failed \(anonymous\)/,
	'only the probe with send_token gets in');
unlike(slurp_file($node->logfile, $log_offset), qr/sesame/,
	'the token is not logged (the test\'s own statements above name it)');

# The secrets are for superusers only.
$node->safe_psql('postgres', q{CREATE ROLE watcher LOGIN; GRANT pg_monitor TO watcher;
    CREATE ROLE nobody LOGIN;});
($ret, $out, $err) = $node->psql('postgres', 'SHOW adr_ops.alert_webhook_url',
	extra_params => [ '-U', 'nobody' ]);
like($err, qr/must be superuser or have privileges of pg_read_all_settings/,
	'the webhook URL is hidden from ordinary roles');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM pg_settings WHERE name IN ('adr_ops.alert_webhook_url', 'adr_ops.probe_bearer_token')},
		extra_params => [ '-U', 'watcher' ]),
	'0', 'and is not listed in pg_settings');
unlike(slurp_file($node->logfile), qr/127\.0\.0\.1:$hook_port\/hook/,
	'the webhook URL is never logged');

# The plain settings, set: SHOW and current_setting() mask them for
# everyone, pg_monitor (pg_read_all_settings) and superusers too.
# (Setting them in postgresql.conf makes the postmaster log them on reload:
# that is why the test above uses the *_file settings.)
$node->append_conf('postgresql.conf', qq{
adr_ops.alert_webhook_url = 'http://127.0.0.1:$hook_port/hook'
adr_ops.probe_bearer_token = 'sesame'
});
$node->reload;
ok($node->poll_query_until('postgres', q{
        SELECT current_setting('adr_ops.probe_bearer_token') = '********'}),
	'the token is set');
my $shown = q{
    SHOW adr_ops.alert_webhook_url;
    SHOW adr_ops.probe_bearer_token;
    SELECT current_setting('adr_ops.alert_webhook_url') || ' ' || current_setting('adr_ops.probe_bearer_token');};
is($node->safe_psql('postgres', $shown, extra_params => [ '-U', 'watcher' ]),
	"********\n********\n******** ********", 'a pg_monitor role sees the set secrets masked');
is($node->safe_psql('postgres', $shown), "********\n********\n******** ********",
	'and so does a superuser');
like(run_task('http_probe'), qr/^succeeded: probed 2: 1 ok, 1 failed \(anonymous\)/,
	'the masked token is still the one sent');

# Two http_probe runs that overlap record their results one after the
# other (a transaction advisory lock), so the second raises no duplicate
# alert: a run that finds the lock held waits for it.
{
	my $holder = $node->background_psql('postgres');
	$holder->query_safe(q{SELECT pg_advisory_lock(hashtext('adr_ops.http_probe'))});
	my $run_id = $node->safe_psql('postgres', q{
        SELECT id FROM adr_ops.adr_run_task('http_probe',
            options => '{"lock_timeout": "10min"}', wait => false)});
	ok($node->poll_query_until('postgres', q{
            SELECT count(*) = 1 FROM pg_stat_activity
             WHERE query = 'adr_ops http_probe: record results' AND wait_event = 'advisory'}),
		'a run waits for the lock before recording its results');
	$holder->query_safe(q{SELECT pg_advisory_unlock(hashtext('adr_ops.http_probe'))});
	$holder->quit;
	ok($node->poll_query_until('postgres', qq{
            SELECT status = 'succeeded' FROM adr_ops.task_runs WHERE id = $run_id}),
		'and records them once the lock is free');
}

$node->stop;
done_testing();

sub slurp_file_write
{
	my ($file, $text) = @_;
	open my $fh, '>', "$file.tmp" or die "$file.tmp: $!";
	print $fh $text;
	close $fh;
	rename "$file.tmp", $file or die "rename: $!";
}
