# A DBA upgrades the package and restarts before running ALTER EXTENSION
# adr_ops UPDATE: the new library then runs with the SQL objects of the
# oldest released version.  The launcher, the authentication hook, every
# task and every C function of that version work with them, or say clearly
# that the extension must be updated; the launcher says so once, not every
# pass; nothing crashes.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('old_schema');
$node->init;
my $backups = $node->basedir . '/backups';
mkdir $backups or die;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'old'
adr_ops.backup_directories = '$backups'
logging_collector = on
log_destination = 'stderr'
lc_messages = 'C'
});
$node->start;

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'adr_ops'");
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my ($oldest) = sort map { m{/adr_ops--([0-9.]+)\.sql$} ? ($1) : () }
  glob("$sharedir/extension/adr_ops--*.sql");
isnt($oldest, $default, "the oldest released version $oldest is older than $default");

$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', 'CREATE EXTENSION pg_stat_statements');
$node->safe_psql('old', "CREATE EXTENSION adr_ops VERSION '$oldest'");
# The library is loaded anew by the restart, as after a package upgrade.
$node->restart;
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

sub launcher_pid
{
	return $node->safe_psql('old',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'});
}
$node->poll_query_until('old', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'})
  or die 'no launcher';
my $launcher = launcher_pid();

# ---------- the launcher says it once ----------

# The warning as adr_log_lines() reads it from the server log.
my $warnings = qq{
SELECT count(*) FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{WARNING}')
 WHERE message = 'adr_ops library version $default runs with version $oldest of the extension in database "old"'};
ok($node->poll_query_until('old', $warnings, '1'),
	'the launcher warns that the SQL objects are older than the library');
my $log = '';
$log .= slurp_file($_) foreach glob($node->data_dir . '/log/*');
like($log, qr/HINT:  Run ALTER EXTENSION adr_ops UPDATE in every database where adr_ops is installed\./,
	'.. with the fix');

# Each schedule change wakes the launcher for another pass.
for my $i (1 .. 3)
{
	$node->safe_psql('old', "SELECT adr_ops.adr_schedule('pass_$i', '0 3 * * *', 'analyze')");
}
$node->safe_psql('old', q{SELECT adr_ops.adr_run_task('health_snapshot')});

# ---------- every C function of the old version ----------

# How each C function of the old version is exercised (directly, or through
# the SQL function that calls it).  The catalog must list exactly these.
my $table = $node->safe_psql('old', q{
CREATE TABLE public.orders AS SELECT g AS id, repeat('x', 100) AS note FROM generate_series(1, 2000) g;
DELETE FROM public.orders WHERE id % 3 = 0;
SELECT 'public.orders'});
my %exercise = (
	adr_version => q{SELECT string_agg(component || '=' || coalesce(version, ''), ',' ORDER BY component) FROM adr_ops.adr_version() WHERE component LIKE 'adr_ops%'},
	adr_log_lines => q{SELECT count(*) > 0 FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{WARNING,LOG}')},
	adr_host_disk => q{SELECT count(*) >= 2 FROM adr_ops.adr_host_disk() WHERE error IS NULL},
	adr_host_memory => q{SELECT count(*) >= 1 FROM adr_ops.adr_host_memory()},
	adr_host_load => q{SELECT cpus > 0 FROM adr_ops.adr_host_load()},
	adr_tasks => q{SELECT count(*) >= 5 FROM adr_ops.adr_tasks()},
	adr_next_run => q{SELECT adr_ops.adr_next_run('0 3 * * *', '2026-01-01 00:00+00', 'UTC') = '2026-01-01 03:00+00'},
	_schedule_valid => q{SELECT adr_ops._schedule_valid('*/5 * * * *') AND NOT adr_ops._schedule_valid('61 * * * *')},
	_schedule_validate => q{SELECT adr_ops.adr_schedule('validated', '*/5 * * * *', 'analyze') > 0},
	_scheduler_wake => q{SELECT adr_ops.adr_unschedule('validated')},
	_calling_role => q{SELECT created_by = current_user FROM adr_ops.schedules WHERE name = 'pass_1'},
	_launcher_schedules => q{SELECT count(*) > 0 FROM adr_ops.adr_maintenance_status() WHERE next_run IS NOT NULL},
	adr_run_task => q{SELECT status FROM adr_ops.adr_run_task('job_reaper')},
	_proc_memory => q{SELECT count(*) > 0 FROM adr_ops.adr_backend_memory() WHERE rss_bytes > 0},
	_bloat_scan => q{SELECT count(*) > 0 FROM adr_ops.adr_bloat_report(0, 'exact') WHERE relname = 'orders' AND bloat_pct > 0},
	_bloat_size => q{SELECT total_bytes > 0 FROM adr_ops.adr_bloat('public.orders', 'sample')},
	adr_http_check => q{SELECT NOT ok FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 2000)},
	adr_http_metric => q{SELECT count(*) FROM adr_ops.adr_http_metric('http://127.0.0.1:1/metrics', 'up', 2000)},
	_security_state => q{SELECT loaded FROM adr_ops._security_state()},
	_security_stage => q{SELECT adr_ops.adr_block_ip('198.51.100.0/24', 'test') IS NOT NULL},
	_security_stage_trigger => q{DELETE FROM adr_ops.blocklist WHERE client = '198.51.100.0/24'; SELECT count(*) = 0 FROM adr_ops.blocked_clients},
	_security_blocked => q{SELECT count(*) = 0 FROM adr_ops.blocked_clients},
	_maintenance_admits => q{SELECT adr_ops.adr_maintenance_mode(false) IS NOT NULL},
	adr_auth_failures => q{SELECT count(*) >= 0 FROM adr_ops.adr_auth_failures()},
	adr_verify_backup => q{SELECT status FROM adr_ops.adr_verify_backup(:'path', wait => true)});

my @c_functions = split /\n/, $node->safe_psql('old', q{
SELECT DISTINCT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'adr_ops'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
 ORDER BY 1});
is_deeply([ sort keys %exercise ], \@c_functions,
	"the test exercises every C function of version $oldest");

# A small real backup to verify.
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 100) g');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('shop'), '-f', "$backups/shop.dump" ],
	'a custom-format backup to verify');

my %want = (
	adr_version => "adr_ops=$default,adr_ops_sql=$oldest",
	adr_run_task => 'succeeded',
	adr_http_metric => undef,    # cannot fetch: a clear ERROR
	adr_verify_backup => 'passed');
foreach my $f (sort keys %exercise)
{
	my ($ret, $out, $err) = $node->psql('old', $exercise{$f},
		extra_params => [ '-v', "path=$backups/shop.dump" ]);
	if (exists $want{$f} && !defined $want{$f})
	{
		like($err, qr/^psql:<stdin>:\d+: ERROR:  could not /m, "$f: a clear error for an unreachable URL");
		next;
	}
	is($ret, 0, "$f works with the $oldest objects") or diag $err;
	my $last = (split /\n/, $out)[-1] // '';
	is($last, $want{$f} // 't', "$f gives the right answer");
}

# ---------- every task ----------

my $newer_tasks = 0;

foreach my $task (split /\n/, $node->safe_psql('old', 'SELECT task FROM adr_ops.adr_tasks() ORDER BY 1'))
{
	# (wait => false: the CONCURRENTLY tasks cannot be waited for from a
	# transaction)
	my $id = $node->safe_psql('old', qq{SELECT id FROM adr_ops.adr_run_task('$task', wait => false)});
	$node->poll_query_until('old', "SELECT status <> 'running' FROM adr_ops.task_runs WHERE id = $id")
	  or die "task $task never ended";
	my $run = $node->safe_psql('old', qq{
SELECT status || ': ' || coalesce(detail, '') FROM adr_ops.task_runs WHERE id = $id});
	unlike($run, qr/exited without reporting|interrupted/, "task $task ends and reports with the $oldest objects");
	if ($task eq 'verify_backup')
	{
		# nothing configured to verify: a clear reason, not a crash
		like($run, qr/^(succeeded|failed|skipped): .*backup_path/, "task $task says what it lacks: $run");
	}
	elsif ($run =~ /^failed: /)
	{
		# a task added after the old version: says so, with the fix
		like($run, qr/^failed: task "$task" needs version [0-9.]+ of extension adr_ops, but database "old" has version \Q$oldest\E$/,
			"task $task, newer than $oldest, says it needs the update");
		$newer_tasks++;
	}
	else
	{
		like($run, qr/^succeeded: /, "task $task succeeds: $run");
	}
}

ok($newer_tasks > 0 || $oldest eq $default, "tasks newer than $oldest were among them ($newer_tasks)");

# ---------- the authentication hook ----------

$node->safe_psql('old', 'CREATE ROLE clerk LOGIN');
$node->safe_psql('old', q{SELECT adr_ops.adr_maintenance_mode(true, 'upgrading')});
my ($ret, $out, $err) = $node->psql('old', 'SELECT 1', extra_params => [ '-U', 'clerk' ]);
like($err, qr/maintenance/, 'the hook refuses an ordinary role in maintenance mode, read from the old tables');
$node->safe_psql('old', q{SELECT adr_ops.adr_maintenance_mode(false)});
is($node->safe_psql('old', 'SELECT current_user', extra_params => [ '-U', 'clerk' ]),
	'clerk', 'and admits it again once maintenance mode is off');

# ---------- the health check, the launcher, the server ----------

like($node->safe_psql('old', q{SELECT string_agg(status, ',') FROM adr_ops.adr_health_check()}),
	qr/^[A-Z,]+$/, "the $oldest health check runs with the new library");
is(launcher_pid(), $launcher, 'the launcher never restarted');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started, 'the server never crashed');
is($node->safe_psql('old', $warnings), '1', 'the launcher said it once over many passes');

# ---------- and the update ends it ----------

$node->safe_psql('old', 'ALTER EXTENSION adr_ops UPDATE');
is($node->safe_psql('old', q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'extension_version'}),
	'OK', 'after ALTER EXTENSION UPDATE the versions agree');

# A database left on the old version is WARNING in its own health check,
# once it has the check (the newest SQL objects with an older library are
# simulated by the version number alone).
$node->safe_psql('postgres', 'CREATE DATABASE lagging');
$node->safe_psql('lagging', "CREATE EXTENSION adr_ops VERSION '$oldest'");
$node->safe_psql('lagging', 'ALTER EXTENSION adr_ops UPDATE');
$node->safe_psql('lagging', "UPDATE pg_extension SET extversion = '$oldest' WHERE extname = 'adr_ops'");
like($node->safe_psql('lagging', q{SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'extension_version'}),
	qr/^WARNING the library is version \Q$default\E but the SQL objects of database lagging are version \Q$oldest\E: run ALTER EXTENSION adr_ops UPDATE in it$/,
	'the extension_version row is WARNING while they differ');
# The other way round (a package downgrade): the library is the older.
$node->safe_psql('lagging', "UPDATE pg_extension SET extversion = '99.0' WHERE extname = 'adr_ops'");
like($node->safe_psql('lagging', q{SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'extension_version'}),
	qr/^WARNING the library is version \Q$default\E, older than the SQL objects of database lagging, version 99\.0: install the build of version 99\.0$/,
	'a library older than the SQL objects says which build to install');

$node->stop;
done_testing();

