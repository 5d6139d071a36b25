# The weekly review page in a real browser: a cluster filled with real
# state (health snapshots over a week, statement snapshots with a query
# that got slower, maintenance runs, pipelines with failures, a backup
# verification, bloat, an incident, a tenant's hostile names), written by
# scripts/adr-report, rendered by Debian's headless Chromium to a PNG and
# dumped as a DOM.  No request may leave the browser: every request goes
# to a loopback proxy this test owns (which must see none), names resolve
# nowhere, and a negative control proves the proxy sees a page that does
# load something.  The DOM holds the figures the database holds.
use strict;
use warnings FATAL => 'all';

use File::Basename;
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $script = dirname(__FILE__) . '/../scripts/adr-report';
my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('report');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE EXTENSION pg_stat_statements;});

# Statements: a baseline ten days ago, a query at 20 ms in the week
# before, then at 60 ms in this one.
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    UPDATE adr_ops.statement_snapshots SET taken_at = now() - interval '10 days';});
$node->safe_psql('postgres', 'SELECT pg_sleep(0.02), 4242') for 1 .. 3;
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_snapshot_statements();
    UPDATE adr_ops.statement_snapshots SET taken_at = now() - interval '8 days'
     WHERE taken_at > now() - interval '1 day';});
$node->safe_psql('postgres', 'SELECT pg_sleep(0.06), 4242') for 1 .. 3;
$node->safe_psql('postgres', 'SELECT adr_ops.adr_snapshot_statements()');

# A table with bloat, and maintenance runs by the scheduler's workers.
$node->safe_psql('postgres', q{
    CREATE TABLE bloated (id int, pad text);
    INSERT INTO bloated SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g;
    ANALYZE bloated;
    DELETE FROM bloated WHERE id % 5 <> 0;});
is($node->safe_psql('postgres', q{SELECT status FROM adr_ops.adr_run_task('analyze')}),
    'succeeded', 'a maintenance task ran');
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.task_runs (task, database, started_at, finished_at, status, detail)
    VALUES ('vacuum_analyze', 'postgres', now() - interval '2 days', now() - interval '2 days', 'failed',
            'could not vacuum "<b>t</b>"');});

# Pipelines: etl finishes 3 of 4 jobs and fails 1 (25.0%); a tenant's
# pipeline is named like markup.
$node->safe_psql('postgres', q{
    DO $$
    DECLARE i int; j bigint;
    BEGIN
        FOR i IN 1 .. 4 LOOP
            PERFORM adr_ops.adr_job_submit('etl', '{}', 1);
            j := (adr_ops.adr_job_claim('etl', 'w1')).id;
            IF i = 4 THEN
                PERFORM adr_ops.adr_job_fail(j, 'source unreachable');
            ELSE
                PERFORM adr_ops.adr_job_complete(j);
            END IF;
        END LOOP;
        PERFORM adr_ops.adr_job_submit('<script>document.title="pwned"</script>', '{}', 1);
    END $$;});

# A backup verified, an incident open.
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.backup_verifications
           (path, format, started_at, finished_at, status, tables_restored, rows_counted, duration_ms)
    VALUES ('/backups/nightly.dump', 'custom', now() - interval '1 day', now() - interval '1 day', 'passed', 12, 34567, 4200);
    SELECT adr_ops.adr_incident_open('P2', 'replica <lag> rising');});

# Health: snapshots now, and the same readings every six hours back over
# the week, with connections WARNING for a day.
$node->safe_psql('postgres', 'SELECT adr_ops.adr_health_snapshot()');
$node->safe_psql('postgres', q{
    INSERT INTO adr_ops.health_history (taken_at, check_name, status, value, unit, warn, crit, detail)
    SELECT h.taken_at - make_interval(hours => 6 * g),
           h.check_name,
           CASE WHEN h.check_name = 'connections' AND g BETWEEN 8 AND 11 THEN 'WARNING' ELSE h.status END,
           CASE WHEN h.value IS NULL THEN NULL ELSE h.value + (g % 5) END, h.unit, h.warn, h.crit, h.detail
      FROM adr_ops.health_history h, generate_series(1, 27) g;});

# The page, by the script.
my $html = "$dir/report.html";
my ($stdout, $stderr);
my $ok = IPC::Run::run([ $script, '-h', $node->host, '-p', $node->port, '-d', 'postgres', $html ],
    '>', \$stdout, '2>', \$stderr);
ok($ok, 'adr-report exits 0') or diag($stderr);
like($stdout, qr/^ADR_REPORT OK - wrote the 7-day review to \Q$html\E \(\d+ bytes\) \| bytes=\d+B$/m,
    'adr-report says what it wrote');
my $page = slurp_file($html);
like($page, qr/^<!DOCTYPE html>/, 'the file is an HTML page');
unlike($page, qr/<(?:script|link|img|iframe|object|embed)\b/i, 'the page has no script and loads no resource');

# FILE - is standard output, the page alone.
IPC::Run::run([ $script, '-h', $node->host, '-p', $node->port, '-d', 'postgres', '--days=3', '-' ],
    '>', \$stdout, '2>', \$stderr);
is($? >> 8, 0, 'adr-report - exits 0');
like($stdout, qr/\A<!DOCTYPE html>.*\(3 days\).*<\/html>\n*\z/s, 'and prints the page, for the days asked');

# Usage errors are UNKNOWN.
IPC::Run::run([ $script, '--days=0', $html ], '>', \$stdout, '2>', \$stderr);
is($? >> 8, 3, 'a bad period is UNKNOWN');
IPC::Run::run([ $script, '-h', $node->host, '-p', $node->port, '-d', 'no_such_db', "$dir/x.html" ],
    '>', \$stdout, '2>', \$stderr);
is($? >> 8, 3, 'no connection is UNKNOWN');
like($stdout, qr/^ADR_REPORT UNKNOWN - .*no_such_db/, 'and says why');
ok(!-e "$dir/x.html", 'and leaves no file');

SKIP:
{
	my $chromium = `command -v chromium 2>/dev/null`;
	chomp $chromium;
	skip 'chromium is not installed (Debian package chromium)', 16 unless $chromium;

	# Every request goes to this proxy; it answers 502 and records the
	# request line.  Chromium's own services are pointed at a closed
	# loopback port, so that whatever reaches the proxy came from the page.
	my $proxy = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Listen => 64, Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
	my $pport = $proxy->sockport;
	my @base = ($chromium, '--headless', '--no-sandbox', '--disable-gpu',
		"--proxy-server=http://127.0.0.1:$pport",
		'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
		'--no-first-run', '--no-default-browser-check', '--no-pings',
		'--disable-background-networking', '--disable-component-update',
		'--disable-sync', '--disable-default-apps', '--disable-extensions',
		'--disable-client-side-phishing-detection', '--disable-domain-reliability',
		'--disable-features=Translate,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying,AutofillServerCommunication',
		'--gaia-url=http://127.0.0.1:9', '--google-apis-url=http://127.0.0.1:9',
		'--lso-url=http://127.0.0.1:9', '--component-updater=url-source=http://127.0.0.1:9');
	my $runs = 0;

	# Runs Chromium with the extra arguments; returns its exit status,
	# stdout, stderr and the request lines the proxy saw meanwhile.
	my $browse = sub {
		my @args = @_;
		my ($out, $err) = ('', '');
		$runs++;
		local $ENV{HOME} = "$dir/home$runs";
		mkdir $ENV{HOME};
		my $h = IPC::Run::start([ @base, "--user-data-dir=$dir/profile$runs", @args ],
			'<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		my $sel = IO::Select->new($proxy);
		my @seen;
		while ($h->pumpable)
		{
			for my $r ($sel->can_read(0.05))
			{
				my $c = $proxy->accept or next;
				my $line = '';
				$c->sysread($line, 512);
				push @seen, (split /\r?\n/, $line)[0] // '(nothing)';
				print $c "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
				close $c;
			}
			$h->pump_nb;
		}
		$h->finish;
		# connections queued while it exited
		$proxy->blocking(0);
		while (my $c = $proxy->accept) { push @seen, 'late connection'; close $c; }
		$proxy->blocking(1);
		return ($h->result(0), $out, $err, \@seen);
	};

	# The negative control: a page that loads a stylesheet and an image.
	my $bad = "$dir/bad.html";
	open my $fh, '>', $bad or die;
	print $fh '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.example.invalid/css">'
	  . '</head><body><img src="http://cdn.example.invalid/x.png">external</body></html>';
	close $fh;
	my ($rc, $out, $err, $seen) = $browse->('--dump-dom', "file://$bad");
	is($rc, 0, 'the control page renders');
	ok((grep { /example\.invalid/ } @$seen) >= 2, 'the proxy sees the control page\'s requests')
	  or diag(explain $seen);

	# The report, as a picture.
	my $png = "$dir/report.png";
	($rc, $out, $err, $seen) = $browse->("--screenshot=$png", '--window-size=1280,2600', "file://$html");
	is($rc, 0, 'chromium renders the report') or diag($err);
	is_deeply($seen, [], 'rendering the report made no network request');
	ok(-s $png && -s $png > 20000, 'the screenshot is a real picture (' . (-s $png // 0) . ' bytes)');
	open my $pf, '<:raw', $png or die "open $png: $!";
	read $pf, my $magic, 8;
	close $pf;
	is($magic, "\x89PNG\r\n\x1a\n", 'the screenshot is a PNG');
	if ($ENV{ADR_REPORT_KEEP})
	{
		PostgreSQL::Test::Utils::system_or_bail('cp', $png, $html, $ENV{ADR_REPORT_KEEP});
	}

	# The report as the browser parsed it: the figures of the database.
	($rc, my $dom, $err, $seen) = $browse->('--dump-dom', "file://$html");
	is($rc, 0, 'chromium dumps the report\'s DOM');
	is_deeply($seen, [], 'dumping the report made no network request');
	my $checks = $node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.adr_health_check()');
	my ($shown) = $dom =~ /data-checks="(\d+)"/;
	is($shown, $checks, "the page counts the $checks checks");
	my @rows = $dom =~ /<tr class="check"/g;
	is(scalar @rows, $checks, 'one row and chart per check');
	my $rate = $node->safe_psql('postgres', q{
        SELECT round(100.0 * count(*) FILTER (WHERE status = 'failed')
                     / count(*) FILTER (WHERE status IN ('succeeded', 'failed')), 1)
          FROM adr_ops.processing_jobs WHERE pipeline = 'etl'});
	like($dom, qr/data-pipeline="etl" data-failure-rate="\Q$rate\E"/, "etl's failure rate, $rate%");
	like($dom, qr{<td class="q">SELECT pg_sleep\(\$1\), \$2</td>(?:(?!</tr>).)*<td class="n up">\+\d+\.\d%</td>}s,
		'the query that got slower, with its rise');
	unlike($dom, qr/<script/i, 'the tenant\'s pipeline name is text, not a script');
	like($dom, qr/&lt;script&gt;document\.title="pwned"&lt;\/script&gt;/, 'and shows as written');
}

done_testing();
