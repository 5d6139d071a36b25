# The release path: every released version updates to default_version with
# ALTER EXTENSION adr_ops UPDATE, and the updated installation equals a fresh
# one (member objects, functions, tables, grants, comments, the pg_dump marks
# and the default configuration rows), while the state a DBA put in before
# the update is all still there and still works.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'stateful'
});
$node->start;

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'adr_ops'");
ok($default ne '', "adr_ops is available, default version $default");

# Released versions: those with a full install script of their own, other
# than the default.  (Update scripts alone make a version reachable, not
# released.)
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my @released = sort map { m{/adr_ops--([0-9.]+)\.sql$} ? ($1) : () }
  glob("$sharedir/extension/adr_ops--*.sql");
@released = grep { $_ ne $default } @released;
ok(scalar(@released) >= 1, 'at least one released version: ' . join(', ', @released));

# ---------- what is compared ----------

# Each query returns one line per object, sorted, in the current database.
my $members = q{
SELECT pg_describe_object(d.classid, d.objid, 0)
  FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'adr_ops'
 ORDER BY 1};

my $acl = q{coalesce((SELECT string_agg(pg_get_userbyid(a.grantee) || '=' || a.privilege_type
                                  || CASE WHEN a.is_grantable THEN '*' ELSE '' END, ',' ORDER BY 1)
                         FROM aclexplode(%s) a), '')};

my $functions = sprintf(q{
SELECT format('%%s | %%s | returns %%s | kind %%s lang %%s vol %%s strict %%s secdef %%s leak %%s par %%s cost %%s rows %%s | config %%s | bin %%s | acl %%s | comment %%s | src %%s',
              p.oid::regprocedure, pg_get_function_identity_arguments(p.oid),
              pg_get_function_result(p.oid), p.prokind, l.lanname, p.provolatile, p.proisstrict,
              p.prosecdef, p.proleakproof, p.proparallel, p.procost, p.prorows, p.proconfig,
              p.probin, %s, obj_description(p.oid, 'pg_proc'), p.prosrc)
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'adr_ops'::regnamespace
 ORDER BY 1}, sprintf($acl, "coalesce(p.proacl, acldefault('f', p.proowner))"));

my $relations = sprintf(q{
SELECT format('%%s | kind %%s persistence %%s rls %%s options %%s | acl %%s | comment %%s | view %%s',
              c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.reloptions, %s,
              obj_description(c.oid, 'pg_class'),
              CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END)
  FROM pg_class c
 WHERE c.relnamespace = 'adr_ops'::regnamespace
 ORDER BY 1}, sprintf($acl, "coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))"));

# Columns in their order (a column an update adds goes last in the fresh
# script too), with dropped ones skipped.
my $columns = sprintf(q{
SELECT format('%%s.%%s: #%%s %%s %%s default %%s identity %%s generated %%s | acl %%s | comment %%s',
              c.oid::regclass, a.attname,
              row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
              format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE '' END,
              pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
              %s, col_description(c.oid, a.attnum))
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'adr_ops'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
 ORDER BY 1}, sprintf($acl, "a.attacl"));

my $constraints = q{
SELECT format('%s %s %s: %s', CASE WHEN conrelid <> 0 THEN conrelid::regclass::text ELSE contypid::regtype::text END,
              conname, contype, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = 'adr_ops'::regnamespace
 ORDER BY 1};

my $indexes = q{
SELECT pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'adr_ops'::regnamespace
 ORDER BY 1};

my $triggers = q{
SELECT format('%s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'adr_ops'::regnamespace AND NOT t.tgisinternal
 ORDER BY 1};

my $types = q{
SELECT format('%s typtype %s | comment %s | enum %s | domain base %s', t.oid::regtype, t.typtype,
              obj_description(t.oid, 'pg_type'),
              (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END)
  FROM pg_type t
 WHERE t.typnamespace = 'adr_ops'::regnamespace
   AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
   AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
 ORDER BY 1};

my $policies = q{
SELECT format('%s %s %s roles %s using %s check %s', polrelid::regclass, polname, polcmd, polroles,
              pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'adr_ops'::regnamespace
 ORDER BY 1};

my $schema = sprintf(q{
SELECT format('schema owner %%s acl %%s comment %%s', pg_get_userbyid(n.nspowner), %s,
              obj_description(n.oid, 'pg_namespace'))
  FROM pg_namespace n WHERE n.nspname = 'adr_ops'}, sprintf($acl, "coalesce(n.nspacl, acldefault('n', n.nspowner))"));

my $extension = q{
SELECT format('version %s relocatable %s schema %s', e.extversion, e.extrelocatable, e.extnamespace::regnamespace)
  FROM pg_extension e WHERE e.extname = 'adr_ops'};

my $dump_marks = q{
SELECT format('%s where %s', c.relid::regclass, c.cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS c(relid, cond)
 WHERE e.extname = 'adr_ops'
 ORDER BY 1};

my %catalog = (
	'member objects' => $members,
	'functions' => $functions,
	'relations' => $relations,
	'columns' => $columns,
	'constraints' => $constraints,
	'indexes' => $indexes,
	'triggers' => $triggers,
	'types' => $types,
	'policies' => $policies,
	'schema' => $schema,
	'extension' => $extension,
	'pg_dump marks' => $dump_marks);

# The rows of every member table, without what differs between any two
# installations (serial ids, time stamps) and with the database's own name
# replaced.
sub table_rows
{
	my ($db) = @_;
	my $tables = $node->safe_psql($db, q{
SELECT format('%s|%s', c.oid::regclass,
              coalesce((SELECT string_agg(quote_literal(a.attname), ',')
                          FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           AND (a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype)
                                OR a.attidentity <> '' OR pg_get_expr(ad.adbin, ad.adrelid) LIKE 'nextval(%')),
                       ''))
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'p')
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'adr_ops')
 ORDER BY 1});
	my $out = '';
	foreach my $line (split /\n/, $tables)
	{
		my ($table, $skip) = split /\|/, $line, 2;
		my $rows = $node->safe_psql($db, qq{
SELECT coalesce(string_agg(j::text, E'\\n' ORDER BY j::text), '(none)')
  FROM (SELECT to_jsonb(t) - ARRAY[$skip]::text[] AS j FROM $table t) s});
		$out .= "$table:\n$rows\n";
	}
	$out =~ s/\b\Q$db\E\b/<database>/g;
	return $out;
}

# Compare one database with the fresh one; returns the number of differences.
sub compare
{
	my ($db, $fresh, $with_rows) = @_;
	my $differences = 0;
	foreach my $what (sort keys %catalog)
	{
		my $got = $node->safe_psql($db, $catalog{$what});
		my $want = $node->safe_psql($fresh, $catalog{$what});
		$differences++ if $got ne $want;
		is($got, $want, "$db equals a fresh $default installation: $what");
	}
	if ($with_rows)
	{
		my $got = table_rows($db);
		my $want = table_rows($fresh);
		$differences++ if $got ne $want;
		is($got, $want, "$db has the default rows of a fresh $default installation");
	}
	return $differences;
}

# ---------- a fresh installation ----------

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_stat_statements');
$node->safe_psql('fresh', 'CREATE EXTENSION adr_ops');
is($node->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'adr_ops'"),
	$default, 'CREATE EXTENSION installs the default version');

# ---------- every released version updates to the default ----------

foreach my $v (@released)
{
	(my $db = "clean_$v") =~ s/\./_/g;
	my $path = $node->safe_psql('postgres', qq{
SELECT path FROM pg_extension_update_paths('adr_ops') WHERE source = '$v' AND target = '$default'});
	ok($path ne '', "an update path leads from $v to $default: $path");

	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION pg_stat_statements');
	$node->safe_psql($db, "CREATE EXTENSION adr_ops VERSION '$v'");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'adr_ops'"),
		$v, "version $v installs from its frozen script");
	$node->safe_psql($db, 'ALTER EXTENSION adr_ops UPDATE');
	is(compare($db, 'fresh', 1), 0, "$v updated to $default: zero differences");
}

# ---------- state put in before the update survives it ----------

my $oldest = $released[0];
$node->safe_psql('postgres', 'CREATE DATABASE stateful');
$node->safe_psql('stateful', 'CREATE EXTENSION pg_stat_statements');
$node->safe_psql('stateful', "CREATE EXTENSION adr_ops VERSION '$oldest'");
# The launcher works in this database, with the old SQL objects.
$node->poll_query_until('stateful',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'})
  or die 'no launcher';

my $job = $node->safe_psql('stateful', q{
UPDATE adr_ops.health_thresholds SET warn = 70, crit = 85 WHERE check_name = 'disk_data';
-- a row under a name that a later version's check takes: the DBA's wins
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('sequences', 50, 60);
UPDATE adr_ops.schedules SET enabled = false WHERE name = 'statement_snapshot';
SELECT adr_ops.adr_schedule('every_minute', '* * * * *', 'health_snapshot');
SELECT adr_ops.adr_health_snapshot();
INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES ('api', 'http://127.0.0.1:9/health', 2000);
INSERT INTO adr_ops.backup_checks (table_name, min_rows) VALUES ('public.orders', 10);
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'seen scanning');
SELECT adr_ops.adr_job_submit('ingest', '{"file": "a.csv"}');
});
$job = (split /\n/, $job)[-1];
$node->safe_psql('stateful', qq{
SELECT adr_ops.adr_job_claim('ingest', 'worker-1');
SELECT adr_ops.adr_job_checkpoint($job, 'parsed', '{"rows": 500}');
});
# (the every-minute schedule may add more: count the rows taken until now)
my ($history_before, $history_until) = split /\|/, $node->safe_psql('stateful',
	'SELECT count(*), max(taken_at) FROM adr_ops.health_history');
ok($history_before > 0, 'health history rows before the update');

$node->safe_psql('stateful', 'ALTER EXTENSION adr_ops UPDATE');
my $update_time = $node->safe_psql('stateful', 'SELECT now()');

# Without the default rows (the state is meant to differ), the objects are
# those of a fresh installation.
is(compare('stateful', 'fresh', 0), 0, "$oldest with state updated to $default: zero differences");

is($node->safe_psql('stateful',
	q{SELECT warn || '/' || crit FROM adr_ops.health_thresholds WHERE check_name = 'disk_data'}),
	'70/85', 'the edited threshold is kept');
is($node->safe_psql('stateful',
	q{SELECT warn || '/' || crit FROM adr_ops.health_thresholds WHERE check_name = 'sequences'}),
	'50/60', 'a threshold row the DBA made before its check existed is kept');
is($node->safe_psql('stateful', q{
SELECT string_agg(name || '=' || enabled, ',' ORDER BY name) FROM adr_ops.schedules
 WHERE name IN ('statement_snapshot', 'every_minute')}),
	'every_minute=true,statement_snapshot=false', 'the disabled and the added schedule are kept');
is($node->safe_psql('stateful', "SELECT count(*) FROM adr_ops.health_history WHERE taken_at <= '$history_until'"),
	$history_before, 'the health history is kept');
is($node->safe_psql('stateful', q{SELECT url FROM adr_ops.probes WHERE name = 'api'}),
	'http://127.0.0.1:9/health', 'the probe is kept');
is($node->safe_psql('stateful', q{SELECT min_rows FROM adr_ops.backup_checks WHERE table_name = 'public.orders'}),
	'10', 'the backup check is kept');
is($node->safe_psql('stateful', q{SELECT count(*) FROM adr_ops.blocked_clients WHERE client = '192.0.2.0/24'}),
	'1', 'the blocklist entry is kept and still listed by blocked_clients');

# The job in flight goes on: it fails, is restarted, and resumes from its
# checkpoint.
$node->safe_psql('stateful', qq{SELECT adr_ops.adr_job_fail($job, 'disk full')});
$node->safe_psql('stateful', qq{SELECT adr_ops.adr_job_restart($job)});
is($node->safe_psql('stateful', q{
SELECT c.resume_stage || ' ' || (c.resume_state ->> 'rows') FROM adr_ops.adr_job_claim('ingest', 'worker-2') c}),
	'parsed 500', 'the job in flight restarts from its checkpoint after the update');

# The schedule added before the update fires after it.
ok( $node->poll_query_until('stateful', qq{
SELECT EXISTS (SELECT FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
                WHERE s.name = 'every_minute' AND r.status = 'succeeded'
                  AND r.started_at > '$update_time')}),
	'the schedule added before the update fires after it');

is($node->safe_psql('stateful', q{
SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'extension_version'}),
	"OK library and SQL objects are version $default", 'the extension_version check is OK once updated');

$node->stop;
done_testing();
