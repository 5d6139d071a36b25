# The bloat report on a hot standby: an unlogged relation has no main fork
# there (only its init fork; the main fork is made at the end of recovery),
# so its size cannot be read.  It must give a row that says so, in every
# mode, and not break the report.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('bloat_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "autovacuum = off\n");
$primary->start;
$primary->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    CREATE TABLE logged (id int PRIMARY KEY, v text);
    INSERT INTO logged SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
    CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text);
    INSERT INTO scratch SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
    SELECT pg_stat_force_next_flush();
    VACUUM ANALYZE logged, scratch;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('bloat_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

for my $mode ('estimate', 'sample', 'exact')
{
    my $expect = "logged $mode, logged_pkey $mode, "
      . "scratch unlogged relation during recovery, scratch_pkey unlogged relation during recovery";
    is( $standby->safe_psql('postgres', qq{
            SELECT string_agg(relname || ' ' || method, ', ' ORDER BY relname)
              FROM adr_ops.adr_bloat_report(0, '$mode', 'public') WHERE kind <> 'toast'}),
        $expect, "$mode on the standby: the unlogged table and its index say why, the others are measured");
    is( $standby->safe_psql('postgres', qq{
            SELECT method || '|' || coalesce(total_bytes::text, 'NULL') || '|'
                   || coalesce(bloat_pct::text, 'NULL') || '|' || coalesce(suggestion, 'NULL')
              FROM adr_ops.adr_bloat_report(0, '$mode', 'public')
             WHERE kind = 'toast' AND table_name = 'scratch'}),
        'unlogged relation during recovery|NULL|NULL|NULL', "$mode on the standby: and its TOAST table");
    is( $standby->safe_psql('postgres', qq{SELECT method FROM adr_ops.adr_bloat('scratch', '$mode')}),
        'unlogged relation during recovery', "$mode on the standby: adr_bloat() of the unlogged table");
}
# The default report (1 MB and up) leaves the unlogged table out: it has
# no pages here.
is( $standby->safe_psql('postgres', q{
        SELECT string_agg(relname, ', ' ORDER BY relname) FROM adr_ops.adr_bloat_report()
         WHERE schemaname = 'public'}),
    'logged', 'the default report on the standby lists the logged table only');

# On the primary the unlogged table is read like any other.
is( $primary->safe_psql('postgres', q{SELECT method FROM adr_ops.adr_bloat('scratch', 'exact')}),
    'exact', 'on the primary the unlogged table is read');

$standby->stop;
$primary->stop;
done_testing();
