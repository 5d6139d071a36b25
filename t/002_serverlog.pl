# adr_log_lines() and the recent_errors check read the real server log, in
# each of its formats, and count an error that the test causes.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('serverlog');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
logging_collector = on
log_destination = 'stderr'
log_line_prefix = '%m [%p] '
lc_messages = 'C'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops');

# Switch the log format with a reload and wait until the collector has a
# file of that format.
sub use_format
{
    my ($format, $prefix) = @_;
    $node->safe_psql('postgres', qq{
        ALTER SYSTEM SET log_destination = '$format';
        ALTER SYSTEM SET log_line_prefix = '$prefix';
        SELECT pg_reload_conf();});
    $node->poll_query_until('postgres',
        "SELECT pg_current_logfile('$format') IS NOT NULL")
      or die "no $format file";
    # The reload may take a moment to reach this backend's next session.
    $node->poll_query_until('postgres',
        "SELECT current_setting('log_line_prefix') = '$prefix'")
      or die "log_line_prefix not reloaded";
}

# An error whose message spans lines and holds quotes and commas, which a
# csvlog reader must keep inside one record.
sub cause_error
{
    my ($marker) = @_;
    my ($ret, $out, $err) = $node->psql('postgres',
        qq{SELECT E'$marker "quoted", comma\\nsecond line'::int});
    like($err, qr/invalid input syntax for type integer/, "$marker: the error happened");
}

# A failing statement and a failing DO block whose texts go on with lines
# shaped like entries of the current format: a PANIC and a failed login.
sub forge
{
    my ($format, $marker) = @_;
    my $stamp = '2026-01-01 00:00:00.000 UTC';
    my @lines = $format eq 'csvlog'
      ? (qq{$stamp,,,1,,1.1,1,,$stamp,,0,PANIC,XX000,$marker forged panic,,,,,,,,,,,,},
         qq{$stamp,"u","d",1,"10.9.9.9:1",1.1,1,"authentication",$stamp,3/1,0,FATAL,28P01,"password authentication failed for user ""$marker""",,,,,,,,,"","client backend",,0})
      : $format eq 'jsonlog'
      ? (qq({"timestamp":"$stamp","error_severity":"PANIC","message":"$marker forged panic"}),
         qq({"timestamp":"$stamp","error_severity":"FATAL","message":"password authentication failed for user \\"$marker\\""}))
      : ("$stamp [1] PANIC:  $marker forged panic",
         qq{$stamp [1] FATAL:  password authentication failed for user "$marker"});
    my $text = join("\n", '', @lines, '');
    (my $literal = "$marker$text") =~ s/'/''/g;
    $literal =~ s/\\/\\\\/g;
    $literal =~ s/\n/\\n/g;
    $node->psql('postgres', "SELECT 1/0 /* $text */");
    $node->psql('postgres',
        "DO \$\$BEGIN RAISE EXCEPTION '%', E'$literal'; END\$\$");
    ok( $node->poll_query_until('postgres', qq{
            SELECT count(*) = 2 FROM adr_ops.adr_log_lines(NULL, NULL)
             WHERE severity = 'ERROR' AND (message LIKE '$marker%' OR message = 'division by zero')}),
        "$format: the forging statements are ERROR entries");
    is( $node->safe_psql('postgres', qq{
            SELECT count(*) FROM adr_ops.adr_log_lines(NULL, NULL)
             WHERE severity IN ('PANIC', 'FATAL') AND message LIKE '%$marker%'}),
        '0', "$format: no line of a client's text is taken for an entry");
    is( $node->safe_psql('postgres', qq{
            SELECT count(*) FROM adr_ops.adr_access_review(NULL, '100 years')
             WHERE source = 'log' AND detail LIKE '%$marker%'}),
        '0', "$format: adr_access_review sees no forged failed login");
}

foreach my $format (qw(stderr csvlog jsonlog))
{
    my $marker = "adr_marker_$format";
    use_format($format, '%m [%p] ');
    cause_error($marker);

    ok( $node->poll_query_until('postgres', qq{
            SELECT count(*) = 1 FROM adr_ops.adr_log_lines()
             WHERE severity = 'ERROR' AND message LIKE '%$marker%'}),
        "$format: adr_log_lines finds the error");
    is( $node->safe_psql('postgres', qq{
            SELECT message FROM adr_ops.adr_log_lines()
             WHERE message LIKE '%$marker%'}),
        $format eq 'stderr'
          ? qq{invalid input syntax for type integer: "$marker "quoted", comma}
          : qq{invalid input syntax for type integer: "$marker "quoted", comma\nsecond line"},
        "$format: the message is read whole");
    is( $node->safe_psql('postgres', qq{
            SELECT log_time BETWEEN now() - interval '5 minutes' AND now() + interval '1 second'
              FROM adr_ops.adr_log_lines() WHERE message LIKE '%$marker%'}),
        't', "$format: the entry's time is read");
    is( $node->safe_psql('postgres', qq{
            SELECT count(*) FROM adr_ops.adr_log_lines(now() + interval '1 minute')
             WHERE message LIKE '%$marker%'}),
        '0', "$format: entries before since are left out");

    like( $node->safe_psql('postgres', q{
            SELECT status || '|' || value || '|' || detail FROM adr_ops.adr_health_check()
             WHERE check_name = 'recent_errors'}),
        qr/^OK\|[1-9]\d*\|\d+ ERROR, \d+ FATAL, 0 PANIC in the last hour of the server log$/,
        "$format: recent_errors counts the error and copies no message text");

    # A client's text whose next line looks like an entry is part of the
    # ERROR entry (its STATEMENT, or its message), never an entry of its
    # own: no PANIC, no failed login.
    forge($format, "adr_forged_$format");
}

# A zone abbreviation is read in log_timezone: Asia/Shanghai writes "CST",
# which timezone_abbreviations would take for US Central Time.
$node->safe_psql('postgres',
    "ALTER SYSTEM SET log_timezone = 'Asia/Shanghai'; SELECT pg_reload_conf()");
use_format('stderr', '%m [%p] ');
$node->poll_query_until('postgres', "SELECT current_setting('log_timezone') = 'Asia/Shanghai'")
  or die 'log_timezone not reloaded';
cause_error('adr_marker_shanghai');
ok( $node->poll_query_until('postgres', q{
        SELECT count(*) = 1 FROM adr_ops.adr_log_lines()
         WHERE message LIKE '%adr_marker_shanghai%'
           AND log_time BETWEEN now() - interval '5 minutes' AND now() + interval '1 second'}),
    'a CST time stamp written in Asia/Shanghai is read as China Standard Time');
$node->safe_psql('postgres',
    "ALTER SYSTEM RESET log_timezone; SELECT pg_reload_conf()");
use_format('jsonlog', '%m [%p] ');

# A FATAL is counted as such (jsonlog is in use).
$node->psql('no_such_database', 'SELECT 1');
ok( $node->poll_query_until('postgres', q{
        SELECT count(*) > 0 FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{FATAL}')
         WHERE message = 'database "no_such_database" does not exist'}),
    'a FATAL entry is read with its severity');
like( $node->safe_psql('postgres', q{
        SELECT detail FROM adr_ops.adr_health_check() WHERE check_name = 'recent_errors'}),
    qr/ERROR, [1-9]\d* FATAL/, 'recent_errors counts FATAL entries');

# Thresholds apply to the count.
$node->safe_psql('postgres',
    q{UPDATE adr_ops.health_thresholds SET warn = 0, crit = 100 WHERE check_name = 'recent_errors'});
like( $node->safe_psql('postgres', q{
        SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'recent_errors'}),
    qr/^WARNING$/, 'errors past warn make recent_errors WARNING');

# Only the end of the file is read: push the marker out of a 1 MB window.
use_format('csvlog', '%m [%p] ');
cause_error('adr_marker_window');
$node->safe_psql('postgres', q{
    DO $$BEGIN FOR i IN 1..1500 LOOP RAISE LOG '%', repeat('x', 1000); END LOOP; END$$});
ok( $node->poll_query_until('postgres', q{
        SELECT count(*) = 1500 FROM adr_ops.adr_log_lines(NULL, '{LOG}')
         WHERE message = repeat('x', 1000)}),
    'the default window reads all of the filler');
is( $node->safe_psql('postgres', q{
        SET adr_ops.log_scan_limit = '1MB';
        SELECT count(*) FROM adr_ops.adr_log_lines() WHERE message LIKE '%adr_marker_window%'}),
    '0', 'an entry older than the window is not read');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_log_lines() WHERE message LIKE '%adr_marker_window%'}),
    '1', 'the default window still reads it');

# A client's statement that straddles the start of the window: the reader
# counts the quotes before the window, so a line inside the statement that
# looks like a record is not taken for one.
my $forged = '2026-01-01 00:00:00.000 UTC,,,1,,1.1,1,,2026-01-01 00:00:00.000 UTC,,0,'
  . 'PANIC,XX000,adr_forged_window forged panic,,,,,,,,,,,,';
$node->psql('postgres', 'SELECT 1/0 /* ' . ('y' x (1200 * 1024)) . "\n$forged\n */");
$node->safe_psql('postgres', q{DO $$BEGIN RAISE LOG 'adr_after_window'; END$$});
ok( $node->poll_query_until('postgres', q{
        SELECT count(*) = 1 FROM adr_ops.adr_log_lines(NULL, '{LOG}') WHERE message = 'adr_after_window'}),
    'the statement that straddles the window and an entry after it are logged');
is( $node->safe_psql('postgres', q{
        SET adr_ops.log_scan_limit = '1MB';
        SELECT count(*) FROM adr_ops.adr_log_lines(NULL, '{PANIC}') WHERE message LIKE '%adr_forged_window%'}),
    '0', 'csvlog: a record-shaped line inside a quoted field cut by the window is not an entry');
is( $node->safe_psql('postgres', q{
        SET adr_ops.log_scan_limit = '1MB';
        SELECT count(*) FROM adr_ops.adr_log_lines(NULL, '{LOG}') WHERE message = 'adr_after_window'}),
    '1', 'csvlog: the entry after it in the window is read');

# A rotation does not reset what "since" sees: the files rotated away since
# then are read too; without since, only the current file.
cause_error('adr_marker_rotated');
$node->poll_query_until('postgres', q{
    SELECT count(*) = 1 FROM adr_ops.adr_log_lines() WHERE message LIKE '%adr_marker_rotated%'})
  or die 'marker not logged';
my $before = $node->safe_psql('postgres', q{SELECT pg_current_logfile('csvlog')});
# (a rotation within the same second of the file's name reopens the same file)
$node->poll_query_until('postgres', qq{
    SELECT pg_rotate_logfile() AND pg_current_logfile('csvlog') <> '$before'})
  or die 'no new log file';
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_log_lines(now() - interval '1 hour')
         WHERE message LIKE '%adr_marker_rotated%'}),
    '1', 'an entry of a file rotated away within since is read');
is( $node->safe_psql('postgres', q{
        SELECT count(*) FROM adr_ops.adr_log_lines(NULL)
         WHERE message LIKE '%adr_marker_rotated%'}),
    '0', 'without since only the current file is read');
like( $node->safe_psql('postgres', q{
        SELECT detail FROM adr_ops.adr_health_check() WHERE check_name = 'recent_errors'}),
    qr/^[1-9]\d* ERROR, /, 'recent_errors still counts the errors logged before the rotation');

# Without a timestamp in log_line_prefix, "since" cannot be answered.
use_format('stderr', '[%p] ');
cause_error('adr_marker_untimed');
$node->poll_query_until('postgres', q{
    SELECT count(*) > 0 FROM adr_ops.adr_log_lines(NULL, NULL)
     WHERE message LIKE '%adr_marker_untimed%'})
  or die 'untimed entry not read';
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM adr_ops.adr_log_lines()');
like($err, qr/could not read timestamps from server log file/, 'an untimed log is an error for since');
like($err, qr/HINT:  Begin "log_line_prefix" with %m or %t/, 'with a hint that says how to fix it');
like( $node->safe_psql('postgres', q{
        SELECT status || '|' || detail FROM adr_ops.adr_health_check()
         WHERE check_name = 'recent_errors'}),
    qr/^UNKNOWN\|could not read timestamps from server log file .* Begin "log_line_prefix"/,
    'recent_errors is UNKNOWN with the reason, not OK');

$node->stop;
done_testing();
