# The slow query log and execution plans end to end: auto_explain and
# pg_stat_statements preloaded, compute_query_id on, jsonlog.  A query made
# slow by a missing index is found in adr_slow_log() and in the collected
# plans with its query id; the index changes its plan, and dropping it again
# is reported by adr_plan_changes() with both plans; stale statistics give
# the ANALYZE finding; a forged line inside a statement is never an entry.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plans');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements,auto_explain,adr_ops'
adr_ops.database = 'postgres'
compute_query_id = on
logging_collector = on
log_destination = 'jsonlog'
lc_messages = 'C'
auto_explain.log_format = json
auto_explain.log_verbose = on
auto_explain.log_analyze = on
auto_explain.log_buffers = on
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE EXTENSION pg_stat_statements;
    CREATE TABLE big (id integer, k integer, pad text);
    INSERT INTO big SELECT g, g % 50000, repeat('x', 50) FROM generate_series(1, 200000) g;
    ANALYZE big;});
my $start = $node->safe_psql('postgres', 'SELECT now()');

# Only the test's sessions log their statements and plans.
my $logged = q{SET log_min_duration_statement = 0; SET auto_explain.log_min_duration = 0;};
my $query = 'SELECT count(*) FROM big WHERE k = 4242';
sub run_query
{
    $node->safe_psql('postgres', "$logged $query") for 1 .. 3;
}

sub collect
{
    my $out = $node->safe_psql('postgres',
        q{SELECT status || ': ' || detail FROM adr_ops.adr_run_task('plan_collect')});
    like($out, qr/^succeeded: stored \d+ logged plans$/, 'the plan_collect task runs');
}

# ---------- 1: the slow query log ----------

$node->safe_psql('postgres', 'SELECT adr_ops.adr_snapshot_statements()');
run_query();
my $qid = $node->safe_psql('postgres',
    "SELECT queryid FROM pg_stat_statements WHERE query = 'SELECT count(*) FROM big WHERE k = \$1'");
like($qid, qr/^-?\d+$/, 'pg_stat_statements has the query');

ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) >= 3 FROM adr_ops.adr_slow_log('$start')
         WHERE statement = '$query' AND plan IS NULL}),
    'the duration entries of the statement are in adr_slow_log()');
is( $node->safe_psql('postgres', qq{
        SELECT string_agg(DISTINCT concat_ws('|', database, user_name, application, queryid = $qid,
                                             duration_ms > 0, pid > 0), ',')
          FROM adr_ops.adr_slow_log('$start') WHERE statement = '$query' AND plan IS NULL}),
    'postgres|postgres|018_plans.pl|t|t|t',
    'each with its database, user, application, duration, pid and the query id of pg_stat_statements');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) >= 3 AND bool_and(queryid = $qid)
          FROM adr_ops.adr_slow_log('$start') WHERE statement = '$query' AND plan LIKE chr(123) || '%'}),
    't', 'auto_explain\'s plans are entries too, with the plan\'s query id');

# pg_monitor gets counts only.
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN IN ROLE pg_monitor');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM adr_ops.adr_slow_log()',
    extra_params => [ '-U', 'watcher' ]);
like($err, qr/permission denied/, 'pg_monitor cannot read the texts');
is( $node->safe_psql('postgres',
        q{SELECT sum(entries) > 0 AND sum(plans) > 0 FROM adr_ops.adr_slow_log_counts() WHERE database = 'postgres'},
        extra_params => [ '-U', 'watcher' ]),
    't', '.. but gets the counts per hour and database');

# ---------- 2: collected plans ----------

collect();
is( $node->safe_psql('postgres', qq{
        SELECT count(*) >= 3 AND bool_and(plan -> 'Plan' -> 'Plans' -> 0 ->> 'Node Type' = 'Seq Scan'
                                          OR plan -> 'Plan' ->> 'Node Type' = 'Seq Scan'
                                          OR plan::text LIKE '%"Seq Scan"%')
          FROM adr_ops.adr_query_plans($qid)}),
    't', 'the collected plans of the query id show the sequential scan');
my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.query_plans');
collect();
is($node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.query_plans'), $n,
    'a plan is stored once: the next collection adds none of them again');
like( $node->safe_psql('postgres', qq{
        SELECT string_agg(DISTINCT f.finding, ',')
          FROM adr_ops.adr_query_plans($qid) p, adr_ops.adr_plan_findings(p.plan) f}),
    qr/seq_scan_large/, 'the plan yields the large sequential scan finding');

# ---------- 3: the index changes the plan, dropping it is reported ----------

$node->safe_psql('postgres', 'SELECT adr_ops.adr_snapshot_statements()');
$node->safe_psql('postgres', 'CREATE INDEX big_k ON big (k)');
run_query();
collect();
$node->safe_psql('postgres', 'SELECT adr_ops.adr_snapshot_statements()');
is( $node->safe_psql('postgres', qq{
        SELECT format('%s|%s|%s|%s', count(*), bool_and(NOT slower),
                      bool_and(strpos(new_plan::text, '"big_k"') > 0),
                      bool_and(strpos(old_plan::text, '"big_k"') = 0))
          FROM adr_ops.adr_plan_changes('$start', only_slower => false) WHERE queryid = $qid}),
    '1|t|t|t', 'the new index: a faster plan change, with both plans');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) FROM adr_ops.adr_plan_changes('$start') WHERE queryid = $qid}),
    '0', '.. which is not reported as a regression');

$node->safe_psql('postgres', 'DROP INDEX big_k');
run_query();
collect();
$node->safe_psql('postgres', 'SELECT adr_ops.adr_snapshot_statements()');
is( $node->safe_psql('postgres', qq{
        SELECT format('%s|%s|%s|%s|%s|%s', count(*), bool_and(slower), bool_and(mean_ms_after > mean_ms_before),
                      bool_and(strpos(old_plan::text, '"big_k"') > 0), bool_and(strpos(new_plan::text, '"big_k"') = 0),
                      bool_and(old_fingerprint <> new_fingerprint))
          FROM adr_ops.adr_plan_changes('$start') WHERE queryid = $qid}),
    '1|t|t|t|t|t', 'the index dropped: the query slowed down, reported with both plans');

# ---------- 4: stale statistics ----------

$node->safe_psql('postgres', q{
    CREATE TABLE stale (k integer) WITH (autovacuum_enabled = false);
    INSERT INTO stale SELECT 1 FROM generate_series(1, 50000);
    ANALYZE stale;
    UPDATE stale SET k = 2;});
$node->safe_psql('postgres', "$logged SELECT count(*) FROM stale WHERE k = 2");
collect();
like( $node->safe_psql('postgres', q{
        SELECT string_agg(f.evidence || ' => ' || f.remedy, ',')
          FROM adr_ops.query_plans p, adr_ops.adr_plan_findings(p.plan) f
         WHERE p.plan::text LIKE '%stale%' AND f.finding = 'row_estimate'}),
    qr/estimated \d+ rows, got 50000 .* => ANALYZE public\.stale;/,
    'a logged plan with a bad row estimate yields the ANALYZE to run');
like( $node->safe_psql('postgres', q{
        SELECT f.remedy FROM adr_ops.adr_explain('SELECT count(*) FROM stale WHERE k = $1', '{2}') e,
               adr_ops.adr_plan_findings(e.plan) f WHERE f.finding = 'row_estimate'}),
    qr/^ANALYZE public\.stale;$/, 'adr_explain() gives the same finding on demand');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.query_plans WHERE source = 'adr_explain'}),
    '1', '.. and stores its plan beside the collected ones');

# ---------- 5: a forged line in a statement is not an entry ----------

$node->safe_psql('postgres', qq{$logged SELECT 1 AS "\n{""timestamp"":""2026-01-01 00:00:00 UTC"",""error_severity"":""LOG"",""message"":""duration: 99999.000 ms  statement: forged""}\n"});
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) > 0 FROM adr_ops.adr_slow_log('$start') WHERE statement LIKE '%forged%'}),
    'the statement holding a forged entry is logged');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) FROM adr_ops.adr_slow_log(NULL) WHERE duration_ms = 99999 OR statement = 'forged'}),
    '0', 'jsonlog: the forged line is no entry');

# The stderr format: continuation lines start with a TAB, never entries;
# user, database and application come from log_line_prefix.
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET log_destination = 'stderr';
    ALTER SYSTEM SET log_line_prefix = '%m [%p] user=%u,db=%d,app=%a ';
    SELECT pg_reload_conf();});
$node->poll_query_until('postgres', "SELECT pg_current_logfile('stderr') IS NOT NULL AND pg_current_logfile('jsonlog') IS NULL")
  or die 'no stderr file';
$node->poll_query_until('postgres', "SELECT current_setting('log_line_prefix') LIKE '%app=%'")
  or die 'prefix not reloaded';
my $stamp = '2026-01-01 00:00:00.000 UTC';
$node->safe_psql('postgres', qq{$logged SELECT 2 AS "\n$stamp [1] user=x,db=y,app=z LOG:  duration: 99999.000 ms  statement: forged"});
$node->safe_psql('postgres', "$logged $query");
ok( $node->poll_query_until('postgres', qq{
        SELECT count(*) > 0 FROM adr_ops.adr_slow_log(NULL) WHERE statement LIKE 'SELECT 2 AS %forged%'}),
    'stderr: the statement with its continuation line is one entry');
is( $node->safe_psql('postgres', qq{
        SELECT count(*) FROM adr_ops.adr_slow_log(NULL) WHERE duration_ms = 99999 OR statement = 'forged'}),
    '0', 'stderr: the forged continuation line is no entry');
is( $node->safe_psql('postgres', qq{
        SELECT string_agg(DISTINCT concat_ws('|', database, user_name, application, pid > 0), ',')
          FROM adr_ops.adr_slow_log(NULL) WHERE statement = '$query'}),
    'postgres|postgres|018_plans.pl|t', 'stderr: names and pid from log_line_prefix');
like( $node->safe_psql('postgres', qq{
        SELECT plan FROM adr_ops.adr_slow_log(NULL) WHERE statement = '$query' AND plan IS NOT NULL LIMIT 1}),
    qr/^\{.*"Plan": \{.*\}$/s, 'stderr: auto_explain\'s plan is read whole from its continuation lines');

done_testing();
