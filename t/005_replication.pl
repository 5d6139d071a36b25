# The replication checks on a real primary and hot standby: the primary
# reports each standby's replay lag, the standby its own, and an inactive
# slot that holds WAL back is reported by size.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION adr_ops');

is( $primary->safe_psql('postgres', q{
        SELECT status || '|' || detail FROM adr_ops.adr_health_check()
         WHERE check_name LIKE 'replication_lag%'}),
    'OK|no standbys connected', 'a primary without standbys says so');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby1');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', 'CREATE TABLE t AS SELECT generate_series(1, 1000) AS i');
$primary->wait_for_catchup($standby);

like( $primary->safe_psql('postgres', q{
        SELECT check_name || '|' || status || '|' || value || '|' || detail
          FROM adr_ops.adr_health_check() WHERE check_name LIKE 'replication_lag%'}),
    qr/^replication_lag:standby1\|OK\|[\d.]+\|streaming \(async\), replay \d+ bytes behind sent WAL$/,
    'the primary reports the standby by its application_name');

like( $standby->safe_psql('postgres', q{
        SELECT check_name || '|' || status || '|' || value || '|' || detail
          FROM adr_ops.adr_health_check() WHERE check_name LIKE 'replication_lag%'}),
    qr/^replication_lag\|OK\|0\|standby, streaming; last replayed transaction committed at /,
    'a caught-up standby reports no lag');

# The health check runs on the standby, read-only, without UNKNOWN rows
# other than the log (no collector here).
is( $standby->safe_psql('postgres', q{
        SELECT string_agg(check_name, ',') FROM adr_ops.adr_health_check()
         WHERE status = 'UNKNOWN'}),
    'recent_errors', 'every check but the log runs on a hot standby');

# An inactive slot that reserves WAL: make some WAL and lower the threshold.
$primary->safe_psql('postgres', q{
    SELECT pg_create_physical_replication_slot('forgotten', true);
    INSERT INTO t SELECT generate_series(1, 100000);
    SELECT pg_switch_wal();
    UPDATE adr_ops.health_thresholds SET warn = 1000, crit = 1000000000
     WHERE check_name = 'replication_slots';});
like( $primary->safe_psql('postgres', q{
        SELECT status || '|' || value || '|' || detail FROM adr_ops.adr_health_check()
         WHERE check_name = 'replication_slots'}),
    qr/^WARNING\|\d+\|1 inactive slot retains WAL: forgotten \(\d+ [kM]B, reserved\)$/,
    'an inactive slot holding WAL past warn is WARNING');

$standby->stop;
$primary->stop;
done_testing();
