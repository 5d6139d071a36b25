# The checks a DBA's monitoring already has, each provoked for real:
# archiving failing, a sequence near its end, tables not vacuumed or
# analyzed since they changed, a checkpoint long ago, WAL kept by a slot, a
# large database, disabled triggers, a long transaction's query, and a full
# connection table seen by scripts/adr-check.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dba');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
checkpoint_timeout = '1h'
max_wal_size = '32MB'
min_wal_size = '32MB'
wal_keep_size = 0
max_connections = 8
superuser_reserved_connections = 2
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops');
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN IN ROLE pg_monitor');

# status|value|detail of one check, as the superuser or as a pg_monitor member
sub check
{
	my ($name, $db, $user) = @_;
	return $node->safe_psql($db // 'postgres', qq{
SELECT status || '|' || coalesce(value::text, '') || '|' || detail
  FROM adr_ops.adr_health_check() WHERE check_name = '$name'},
		$user ? (extra_params => [ '-U', $user ]) : ());
}

sub thresholds
{
	my ($name, $warn, $crit) = @_;
	$node->safe_psql('postgres', qq{
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('$name', $warn, $crit)
    ON CONFLICT (check_name) DO UPDATE SET warn = excluded.warn, crit = excluded.crit});
}

# ---------- sequences ----------

like(check('sequences'), qr/^OK\|0\.0\|fullest: adr_ops\.\w+_seq at 0\.0% of its range /, 'only adr_ops\'s own sequences: OK');
$node->safe_psql('postgres', q{
CREATE TABLE orders (id serial PRIMARY KEY, note text);
SELECT setval('orders_id_seq', 2104533622);
});
like(check('sequences'),
	qr/^CRITICAL\|98\.0\|fullest: public\.orders_id_seq at 98\.0% of the range of its column public\.orders\.id \(2104533622 of 2147483647\)$/,
	'an int4 serial at 98% is CRITICAL, with its name and column');
like(check('sequences', 'postgres', 'watcher'), qr/^CRITICAL\|98\.0\|/,
	'a pg_monitor member sees it too (it cannot read the sequence itself)');

# A bigint sequence feeding an int4 column runs out at 2^31, not 2^63.
$node->safe_psql('postgres', q{
SELECT setval('orders_id_seq', 1);
CREATE SEQUENCE events_seq;
CREATE TABLE events (id integer DEFAULT nextval('events_seq'));
SELECT setval('events_seq', 1700000000);
});
like(check('sequences'),
	qr/^WARNING\|79\.2\|fullest: public\.events_seq at 79\.2% of the range of its column public\.events\.id /,
	'a bigint sequence feeding an int4 column is measured against the column');
$node->safe_psql('postgres', q{SELECT setval('events_seq', 1)});
like(check('sequences'), qr/^OK\|/, 'back to OK');

# ---------- vacuum_age and analyze_age ----------

$node->safe_psql('postgres', q{
CREATE TABLE stale (id int) WITH (autovacuum_enabled = false);
INSERT INTO stale SELECT generate_series(1, 1000);
DELETE FROM stale WHERE id <= 500;
});
thresholds('vacuum_age', 1, 2);
thresholds('analyze_age', 1, 2);
ok($node->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'vacuum_age'}, 'CRITICAL'),
	'a changed table never vacuumed past the thresholds is CRITICAL');
like(check('vacuum_age'), qr/\|1 table changed more than autovacuum_vacuum_threshold rows since the last vacuum; longest ago: public\.stale \(never vacuumed, \d+ rows changed since\)$/,
	'.. naming the table');
ok($node->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'analyze_age'}, 'CRITICAL'),
	'and never analyzed: analyze_age CRITICAL');
$node->safe_psql('postgres', 'VACUUM ANALYZE stale');
ok($node->poll_query_until('postgres', q{
SELECT string_agg(status, ',' ORDER BY check_name) FROM adr_ops.adr_health_check()
 WHERE check_name IN ('vacuum_age', 'analyze_age')}, 'OK,OK'),
	'VACUUM ANALYZE makes both OK');
like(check('vacuum_age'), qr/^OK\|0\|no table changed/, 'a table nobody changed since is not counted');

# ---------- disabled triggers ----------

like(check('disabled_triggers'), qr/^OK\|0\|no disabled triggers$/, 'no disabled triggers: OK');
$node->safe_psql('postgres', q{
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER "Audit me" BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audit();
ALTER TABLE orders DISABLE TRIGGER "Audit me";
CREATE TABLE lines (order_id int REFERENCES orders);
ALTER TABLE lines DISABLE TRIGGER ALL;
});
like(check('disabled_triggers'),
	qr/^WARNING\|2\|2 disabled: "Audit me" on public\.orders, constraint lines_order_id_fkey on public\.lines$/,
	'disabled triggers, a foreign key\'s own included, are WARNING with their tables');
$node->safe_psql('postgres', q{ALTER TABLE orders ENABLE TRIGGER ALL; ALTER TABLE lines ENABLE TRIGGER ALL});
like(check('disabled_triggers'), qr/^OK\|0\|/, 'enabled again: OK');

# ---------- database_size ----------

like(check('database_size'), qr/^OK\|\d+\|largest: \w+ \d+ [kM]B, /, 'no default thresholds: OK with the size');
thresholds('database_size', 1000, 2000);
like(check('database_size'), qr/^CRITICAL\|\d+\|largest: /, 'beyond its thresholds: CRITICAL');
$node->safe_psql('postgres', q{DELETE FROM adr_ops.health_thresholds WHERE check_name = 'database_size'});

# ---------- long transactions name their query ----------

my $session = $node->background_psql('postgres', on_error_stop => 1);
$session->query_safe(q{SET application_name = 'etl-loader'});
$session->query_safe(q{BEGIN; SELECT 'the needle' AS x, pg_current_xact_id()});
like(check('long_transactions'),
	qr/oldest: pid \d+ \(\w+\@postgres, idle in transaction\) open for [0-9:]+, application etl-loader: SELECT 'the needle' AS x, pg_current_xact_id\(\)/,
	'the oldest open transaction names its application and query');
$session->query_safe('COMMIT');

# ---------- checkpoint ----------

$node->safe_psql('postgres', 'CHECKPOINT');
like(check('checkpoint'), qr/^OK\|/, 'just after a checkpoint: OK');
thresholds('checkpoint', 1, 2);
$node->safe_psql('postgres', 'CREATE TABLE wal_maker AS SELECT generate_series(1, 1000) AS i');
ok($node->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'checkpoint'}, 'CRITICAL'),
	'WAL written and no checkpoint past the thresholds: CRITICAL');
like(check('checkpoint'), qr/\|last checkpoint at .*, \d+ \w+ of WAL since; /, '.. with the time and the WAL since');
$node->safe_psql('postgres', 'CHECKPOINT') for 1 .. 10;
like(check('checkpoint'), qr/^WARNING\|\d+\|.*were requested: most checkpoints come from WAL volume, raise max_wal_size$/,
	'mostly requested checkpoints: WARNING with the fix, even right after one');
$node->safe_psql('postgres', q{SELECT pg_stat_reset_shared('bgwriter')});

# ---------- replication slots and WAL files ----------

$node->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('unreserved')});
like(check('replication_slots'), qr/^OK\|0\|no inactive replication slots retain WAL; reserving no WAL: unreserved$/,
	'a slot that reserves no WAL retains none and says so');
like(check('wal_files'), qr/^OK\|/, 'wal_files OK to start with');
$node->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('lagging', true)});
for my $i (1 .. 8)
{
	$node->safe_psql('postgres', qq{CREATE TABLE w$i (); DROP TABLE w$i; SELECT pg_switch_wal()});
}
$node->safe_psql('postgres', 'CHECKPOINT');
like(check('wal_files'), qr/^CRITICAL\|\d+\.\d\|pg_wal holds \d+ MB in \d+ segments; max_wal_size \+ wal_keep_size explain 32 MB$/,
	'WAL kept by a slot beyond max_wal_size: CRITICAL');
like(check('replication_slots'), qr/1 inactive slot retains WAL: lagging /, 'the slot that keeps it is named');
$node->safe_psql('postgres', q{SELECT pg_drop_replication_slot('lagging'); SELECT pg_drop_replication_slot('unreserved')});
$node->safe_psql('postgres', 'CHECKPOINT');
like(check('wal_files'), qr/^OK\|/, 'the slot dropped and a checkpoint: OK');

# ---------- a full connection table ----------

# Take every slot an ordinary role may have.
my @holders;
foreach my $i (1 .. 8)
{
	my $h = eval { $node->background_psql('postgres', extra_params => [ '-U', 'watcher' ]) };
	last unless $h;
	push @holders, $h;
}
ok(@holders >= 4, 'ordinary roles took ' . scalar(@holders) . ' connection slots');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT 1', extra_params => [ '-U', 'watcher' ]);
like($err, qr/too many clients|remaining connection slots/, 'the connection table is full for ordinary roles');
my $plugin = $node->config_data('--bindir') . '/adr-check';
$plugin = 'adr-check' unless -x $plugin;
$node->command_checks_all(
	[ $plugin, '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-U', 'watcher' ],
	2,
	[qr/^ADR_OPS CRITICAL - connections CRITICAL \(the server refuses new connections: (sorry, too many clients already|remaining connection slots are reserved[^)]*)\)$/],
	[qr/^$/],
	'adr-check: a full connection table is CRITICAL on connections, not UNKNOWN');
$_->quit foreach @holders;
$node->stop;
$node->command_checks_all(
	[ $plugin, '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-U', 'watcher' ],
	3, [qr/^ADR_OPS UNKNOWN - /], [qr/^$/],
	'adr-check: a server that is down stays UNKNOWN');

# ---------- archiving (a node of its own) ----------

my $arch = PostgreSQL::Test::Cluster->new('archiving');
$arch->init(allows_streaming => 1);
$arch->append_conf('postgresql.conf', q{
shared_preload_libraries = 'adr_ops'
archive_mode = off
});
$arch->start;
$arch->safe_psql('postgres', 'CREATE EXTENSION adr_ops');
like($arch->safe_psql('postgres', q{SELECT status || '|' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'archiving'}),
	qr/^OK\|archive_mode is off: no WAL is archived$/, 'archive_mode off: OK, and said');
$arch->append_conf('postgresql.conf', q{
archive_mode = on
archive_command = 'false'
});
$arch->restart;
$arch->safe_psql('postgres', 'CREATE TABLE a (); SELECT pg_switch_wal()');
ok($arch->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'archiving'}, 'CRITICAL'),
	'archive_command failing: CRITICAL');
like($arch->safe_psql('postgres', q{SELECT detail FROM adr_ops.adr_health_check() WHERE check_name = 'archiving'}),
	qr/^1 WAL segment waiting to be archived, the oldest for [0-9:]+; last archived: never; [1-9]\d* failed attempts, last: 0+10+1 at /,
	'.. with the segment waiting and the failures');
$arch->safe_psql('postgres', q{ALTER SYSTEM SET archive_command = 'true'});
$arch->reload;
ok($arch->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'archiving'}, 'OK'),
	'archiving again: OK');
$arch->stop;

done_testing();
