# Corruption detection for real: a cluster with data checksums, verified
# clean by the integrity_check task (health row OK), then pages of a table
# and of an index overwritten on disk while the server is stopped.  Reading
# the table counts checksum failures in pg_stat_database, which the
# data_integrity row reports as new; the task then finds both relations
# corrupt and the row is CRITICAL naming each relation and block; with
# checksum failures ignored, verify_heapam's own findings name the block and
# the tuple.  A tiny time budget makes the task verify one relation a run,
# oldest first, until every relation has had its turn.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('integrity');
$node->init(extra => ['--data-checksums']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
adr_ops.timezone = 'UTC'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION adr_ops;
CREATE EXTENSION amcheck;
UPDATE adr_ops.schedules SET enabled = false;
CREATE TABLE t_heap (id integer PRIMARY KEY, v text);
INSERT INTO t_heap SELECT i, repeat('h', 100) FROM generate_series(1, 2000) i;
CREATE TABLE t_idx (id integer, v text);
INSERT INTO t_idx SELECT i, repeat('i', 100) FROM generate_series(1, 2000) i;
CREATE INDEX t_idx_id ON t_idx (id);
CREATE TABLE r1 (id integer PRIMARY KEY);
CREATE TABLE r2 (id integer PRIMARY KEY);
CREATE TABLE r3 (id integer PRIMARY KEY);
INSERT INTO r1 SELECT generate_series(1, 100);
INSERT INTO r2 SELECT generate_series(1, 100);
INSERT INTO r3 SELECT generate_series(1, 100);
VACUUM FREEZE;
CHECKPOINT;});
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'on', 'the cluster has data checksums');

sub run_task
{
    my ($options) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT status || ': ' || objects || ': ' || detail
          FROM adr_ops.adr_run_task('integrity_check', options => '$options')});
}

sub health
{
    return $node->safe_psql('postgres', q{
        SELECT status || '|' || value || '|' || detail FROM adr_ops.adr_health_check()
         WHERE check_name = 'data_integrity'});
}

# ---------- a clean database ----------

like(health(), qr/^OK\|0\|data checksums are on; none of \d+ relations verified yet$/,
    'before any run: OK, checksums on, nothing verified yet');
my $run = run_task('{}');
like($run, qr/^succeeded: (\d+): verified \1 relations \([0-9.]+ MB\) in [0-9.]+ s \([0-9.]+ MB\/s\)$/,
    "the task verifies every relation of a clean database: $run");
my ($total) = $run =~ /^succeeded: (\d+):/;
cmp_ok($total, '>', 100, 'system catalogs and TOAST included');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM adr_ops._integrity_relations() r
     WHERE NOT EXISTS (SELECT FROM adr_ops.integrity_results x WHERE x.relid = r.relid AND x.status = 'ok')}),
    '0', 'every relation has an OK verification');
like(health(), qr/^OK\|0\|data checksums are on; (\d+) of \1 relations verified, the oldest at /,
    'the clean database reports OK, every relation verified');

# ---------- rotation under a tiny budget ----------

# Six relations (three tables and their primary keys): one a run, the
# oldest verification first, until each had its turn; then the first again.
my @order;
for my $i (1 .. 6)
{
    my $r = run_task('{"time_budget": "0", "tables": ["r1", "public.r2", "r3"]}');
    like($r, qr/^succeeded: 1: verified 1 relation \(/, "rotation run $i verifies one relation");
    like($r, qr/time budget spent, @{[6 - 1]} relations left for the next runs$/,
        "rotation run $i leaves the rest for later");
    push @order, $node->safe_psql('postgres',
        q{SELECT relation FROM adr_ops.integrity_results ORDER BY verified_at DESC LIMIT 1});
}
is(join(' ', sort @order), 'public.r1 public.r1_pkey public.r2 public.r2_pkey public.r3 public.r3_pkey',
    'six runs covered the six relations, each once: ' . join(' ', @order));
run_task('{"time_budget": "0", "tables": ["r1", "r2", "r3"]}');
is($node->safe_psql('postgres',
        q{SELECT relation FROM adr_ops.integrity_results ORDER BY verified_at DESC LIMIT 1}),
    $order[0], 'the seventh run verifies the oldest again');

# ---------- pages overwritten on disk ----------

my $heap_file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t_heap')});
my $index_file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t_idx_id')});
cmp_ok(-s $heap_file, '>', 4 * 8192, 't_heap has more than 4 blocks');
$node->stop;

# Block 2 of t_heap: its first line pointer points at an offset that is not
# aligned (the page header stays valid, so verify_heapam can read the page
# when checksum failures are ignored); its checksum no longer matches.
{
    open(my $fh, '+<', $heap_file) or die "open $heap_file: $!";
    binmode $fh;
    sysseek($fh, 2 * 8192, 0) or die;
    sysread($fh, my $page, 8192) == 8192 or die;
    my $lp = unpack('V', substr($page, 24, 4));
    my $off = $lp & 0x7fff;
    die "no tuple at line pointer 1" unless $off >= 24 && $off < 8192;
    sysseek($fh, 2 * 8192 + 24, 0) or die;
    syswrite($fh, pack('V', ($lp & ~0x7fff) | 8190)) == 4 or die;
    close $fh;
}
# Block 1 of the index (a leaf): garbage in the middle of the page.
{
    open(my $fh, '+<', $index_file) or die "open $index_file: $!";
    binmode $fh;
    sysseek($fh, 1 * 8192 + 4000, 0) or die;
    syswrite($fh, 'X' x 200) == 200 or die;
    close $fh;
}
$node->start;

# ---------- checksum failures counted by pg_stat_database ----------

my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM t_heap');
like($err, qr/invalid page in block 2 of relation/, 'reading the table fails its checksum');
cmp_ok($node->safe_psql('postgres',
        q{SELECT checksum_failures FROM pg_stat_database WHERE datname = 'postgres'}), '>=', 1,
    'pg_stat_database counts the failure');
like(health(), qr/^CRITICAL\|[1-9]\d*\|data checksums are on; \d+ new checksum failures? in database postgres, the last at \d{4}-/,
    'the health row is CRITICAL: new checksum failures, the database, the time of the last');

# ---------- the task finds the corruption ----------

$run = run_task('{}');
like($run, qr/^failed: \d+: verified .* corruption found: .*public\.t_heap \(invalid page in block 2 of relation/,
    "the task finds the table's page: $run");
like($run, qr/public\.t_idx_id \(invalid page in block 1 of relation/, "and the index's page");
like($run, qr/new checksum failures: \d+ checksum failures? in database postgres/,
    'and reports the checksum failures counted since the last run');
my $h = health();
like($h, qr/^CRITICAL\|2\|/, 'the health row is CRITICAL with two corrupt relations');
like($h, qr/corruption found in 2 relations: public\.t_heap block 2: invalid page in block 2/,
    'naming the table and its block');
like($h, qr/public\.t_idx_id block 1: invalid page in block 1/, 'naming the index and its block');
like($h, qr/checksum failures? in database postgres seen by the integrity_check task at /,
    'the failures the task saw are no longer new');
unlike($h, qr/new checksum failure/, 'none is new');

# verify_heapam's own findings, past the checksum: the line pointer.
my $found = $node->safe_psql('postgres', q{
    SET ignore_checksum_failure = on;
    SET client_min_messages = error;
    SELECT status || '|' || findings || '|' || blkno || '|' || detail
      FROM adr_ops.adr_verify_integrity('t_heap') WHERE relation = 'public.t_heap'});
like($found, qr/^corrupt\|[1-9]\d*\|2\|block 2 offset 1: line pointer to page offset 8190 is not maximally aligned/,
    "verify_heapam names block 2, line pointer 1 and what is wrong with it: $found");

# ---------- repaired ----------

$node->safe_psql('postgres', q{
    DROP TABLE t_heap;
    REINDEX INDEX t_idx_id;
    SELECT pg_stat_reset();});
$run = run_task('{"tables": ["t_idx"]}');
like($run, qr/^succeeded: /, "after the repair the task finds nothing: $run");
like(health(), qr/^OK\|0\|data checksums are on; (\d+) of \1 relations verified/,
    'the health row is OK again once the table is gone, the index rebuilt and the counters reset');

# ---------- a relation locked by someone else ----------

# Held in ACCESS EXCLUSIVE mode: the run skips the table and its index
# instead of waiting for it (and failing when lock_timeout expires), and
# verifies the others.
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE r3 IN ACCESS EXCLUSIVE MODE');
$run = run_task('{"tables": ["r1", "r3"]}');
like($run, qr/^succeeded: 2: verified 2 relations .*; skipped \(locked\): public\.r3(?:_pkey)?, public\.r3(?:_pkey)?$/,
    "a locked table and its index are skipped, the others verified: $run");
$holder->quit;

$node->stop;
done_testing();
