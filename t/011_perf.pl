# The performance investigations against real sessions: lock waits on a
# relation and on a row, index advice from real scan counters (and its
# statements run as given), and backend memory of a backend that holds a
# lot of it.  The reports are read as a pg_monitor member that is not
# superuser.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('perf');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
    CREATE TABLE work (id int PRIMARY KEY, v int);
    INSERT INTO work VALUES (1, 0);
});
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# A query as the pg_monitor member.
sub monitor
{
    my ($sql) = @_;
    return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'monitor' ]);
}

sub wait_for_lock_wait
{
    my ($pid) = @_;
    return $node->poll_query_until('postgres', qq{
        SELECT EXISTS (SELECT FROM adr_ops.adr_lock_waits() WHERE waiting_pid = $pid)});
}

sub wait_for_no_lock_wait
{
    return $node->poll_query_until('postgres',
        'SELECT NOT EXISTS (SELECT FROM adr_ops.adr_lock_waits())');
}

my $lock_row = q{
    SELECT waiting_pid || '|' || array_to_string(blocking_pids, ',') || '|' || locktype
           || '|' || mode || '|' || coalesce(relation::text, '-') || '|' || waiting_user
           || '|' || blocking_user || '|' || database || '|' || (wait_duration > '0')
           || '|' || waiting_query || '|' || blocking_query
      FROM adr_ops.adr_lock_waits()};

is(monitor($lock_row), '', 'no lock waits at first');

# A session waits for a relation lock that another holds.
my $holder = $node->background_psql('postgres');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE work IN ACCESS EXCLUSIVE MODE');
my $waiter = $node->background_psql('postgres');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/, "\\echo waiting\nSELECT count(*) FROM work;\n");

ok(wait_for_lock_wait($waiter_pid), 'the relation lock wait shows');
like(monitor($lock_row),
    qr/^$waiter_pid\|$holder_pid\|relation\|AccessShareLock\|work\|$superuser\|$superuser\|postgres\|true\|SELECT count\(\*\) FROM work;\|LOCK TABLE work IN ACCESS EXCLUSIVE MODE/s,
    'waiting and blocking pid, lock, relation, users, database and both queries');

$holder->query_safe('COMMIT');
ok(wait_for_no_lock_wait(), 'the wait ends with the transaction');
$waiter->quit;

# A row lock: the waiter waits for the holder's transaction ID, on no
# relation.
$holder->query_safe('BEGIN');
$holder->query_safe('UPDATE work SET v = 1 WHERE id = 1');
$waiter = $node->background_psql('postgres');
$waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/, "\\echo waiting\nUPDATE work SET v = 2 WHERE id = 1;\n");

ok(wait_for_lock_wait($waiter_pid), 'the row lock wait shows');
like(monitor($lock_row),
    qr/^$waiter_pid\|$holder_pid\|transactionid\|ShareLock\|-\|.*\|UPDATE work SET v = 2 WHERE id = 1;\|UPDATE work SET v = 1 WHERE id = 1/s,
    'a row lock waits on the transaction ID, with no relation');

$holder->query_safe('COMMIT');
ok(wait_for_no_lock_wait(), 'the row lock wait ends');
$waiter->quit;

# A wait in another database: its relation's OID means nothing here, so
# the relation is NULL rather than a wrong name.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE TABLE elsewhere (id int)');
my $other_holder = $node->background_psql('other');
$other_holder->query_safe('BEGIN');
$other_holder->query_safe('LOCK TABLE elsewhere IN ACCESS EXCLUSIVE MODE');
$waiter = $node->background_psql('other');
$waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/, "\\echo waiting\nSELECT count(*) FROM elsewhere;\n");
ok(wait_for_lock_wait($waiter_pid), 'a wait in another database shows');
is(monitor(q{
        SELECT locktype || '|' || coalesce(relation::text, '-') || '|' || database
          FROM adr_ops.adr_lock_waits()}),
    'relation|-|other', 'with its database and no relation name');
$other_holder->query_safe('COMMIT');
ok(wait_for_no_lock_wait(), 'that wait ends too');
$waiter->quit;
$other_holder->quit;

# Index advice from real counters: one of two identical indexes is scanned,
# the other is the duplicate; an index no query uses is unused.
$node->safe_psql('postgres', q{
    CREATE TABLE accounts (id int PRIMARY KEY, email text, region text);
    INSERT INTO accounts SELECT g, 'user' || g || '@example.com', 'r' || g % 10
      FROM generate_series(1, 1000) g;
    CREATE INDEX accounts_email ON accounts (email);
    CREATE INDEX accounts_email_again ON accounts (email);
    CREATE INDEX accounts_region ON accounts (region);
    ANALYZE accounts;
});
# Counters reach shared statistics when the session ends.
$node->safe_psql('postgres', q{
    SET enable_seqscan = off;
    SELECT * FROM accounts WHERE email = 'user7@example.com';
});

my $advice = q{
    SELECT finding || ' ' || object FROM adr_ops.adr_index_advice()
     WHERE table_name = 'public.accounts' ORDER BY 1};
my $found = monitor($advice);
like($found, qr/^duplicate index public\.accounts_email(_again)?$/m, 'the duplicate is advised');
like($found, qr/^unused index public\.accounts_region$/m, 'the unused index is advised');
is(scalar(() = $found =~ /\n/g), 1, 'nothing else');
my $kept = $found =~ /accounts_email_again/ ? 'accounts_email' : 'accounts_email_again';
is( monitor(qq{
        SELECT count(*) FROM adr_ops.adr_index_advice()
         WHERE evidence LIKE 'same definition as public.$kept, which is kept; index scans % 1 on all of them;%'}),
    '1', 'the scanned twin is kept');

# The statements run as given, and settle the findings.
for my $statement (split /\n/, monitor(q{
        SELECT statement FROM adr_ops.adr_index_advice()
         WHERE table_name = 'public.accounts'}))
{
    $node->safe_psql('postgres', $statement);
}
is(monitor($advice), '', 'no advice left after the statements ran');
is($node->safe_psql('postgres', q{
        SELECT string_agg(indexrelid::regclass::text, ','
                          ORDER BY indexrelid::regclass::text COLLATE "C")
          FROM pg_index WHERE indrelid = 'accounts'::regclass}),
    join(',', sort('accounts_pkey', $kept)), 'the primary key and the scanned index remain');

# Backend memory: the monitor's own backend, and a backend that keeps 50 MB
# of temporary table in its local buffers comes first.
is(monitor(q{
        SELECT rss_bytes > 0 AND anon_bytes > 0 AND anon_bytes <= rss_bytes AND error IS NULL
          FROM adr_ops.adr_backend_memory() WHERE pid = pg_backend_pid()}),
    't', 'rss_bytes and anon_bytes of this backend');
my $big = $node->background_psql('postgres');
my $big_pid = $big->query_safe('SELECT pg_backend_pid()');
$big->query_safe(q{SET temp_buffers = '64MB'});
$big->query_safe(q{
    CREATE TEMP TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) g});
like(monitor(qq{
        SELECT pid || '|' || state || '|' || (anon_bytes > 40 * 1024 * 1024) || '|' || query
          FROM adr_ops.adr_backend_memory() LIMIT 1}),
    qr/^$big_pid\|idle\|true\|\s*CREATE TEMP TABLE big/,
    'the backend holding the most private memory comes first, with its state and query');
# (Client backends of earlier psql runs may still be exiting: leave them out.)
is(monitor(qq{
        SELECT count(*) FILTER (WHERE rss_bytes > 0 AND error IS NULL)
               || '/' || count(*) || '|' || (count(*) > 5)
          FROM adr_ops.adr_backend_memory()
         WHERE backend_type <> 'client backend'
            OR pid IN (pg_backend_pid(), $big_pid, $holder_pid)}) =~ s/^(\d+)\/\1\|//r,
    'true', 'every process of the server is read');
$big->quit;
$holder->quit;

$node->stop;
done_testing();
