
-- integrity: corruption detection with amcheck and data checksums (runbook:
-- Pipeline Failure Recovery "determine if data corruption occurred",
-- Disaster Recovery "verify data integrity") --------------------------------

-- One row per verification of a relation by the integrity_check task or
-- adr_verify_integrity(): when, what was found.  status ok (nothing
-- found), corrupt (amcheck or a page check reported corruption: blkno is
-- the first block named, findings how many problems) or error (the check
-- could not be made: detail says why; a message that is not amcheck's own
-- stays in the server log, since the relation's owner may have raised it).
-- Not kept by pg_dump: a restore writes every page anew, so what was found
-- in the old files, and when they were last read, says nothing of the new
-- ones.
CREATE TABLE adr_ops.integrity_results (
    verified_at timestamptz NOT NULL,
    relid oid NOT NULL,
    relation text NOT NULL,
    kind text NOT NULL CHECK (kind OPERATOR(pg_catalog.=) ANY ('{table,index}'::text[])),
    pages bigint NOT NULL,
    heapallindexed boolean NOT NULL,
    duration interval NOT NULL,
    status text NOT NULL CHECK (status OPERATOR(pg_catalog.=) ANY ('{ok,corrupt,error}'::text[])),
    findings integer NOT NULL,
    blkno bigint,
    detail text,
    PRIMARY KEY (relid, verified_at)
);
CREATE INDEX integrity_results_verified_at ON adr_ops.integrity_results (verified_at);
COMMENT ON TABLE adr_ops.integrity_results IS
    'verifications of relations by amcheck (integrity_check task, adr_verify_integrity()): when, and what was found';
GRANT SELECT ON adr_ops.integrity_results TO pg_monitor;

-- The checksum failure counters of pg_stat_database as the integrity_check
-- task last saw them: the data_integrity check reports the failures counted
-- since as new.
CREATE TABLE adr_ops.checksum_counters (
    datid oid PRIMARY KEY,
    datname name,
    failures bigint NOT NULL,
    last_failure timestamptz,
    seen_at timestamptz NOT NULL
);
COMMENT ON TABLE adr_ops.checksum_counters IS
    'checksum failures per database as the integrity_check task last saw them in pg_stat_database';
GRANT SELECT ON adr_ops.checksum_counters TO pg_monitor;

-- The relations amcheck can verify in this database: tables, materialized
-- views and TOAST tables (verify_heapam) and their valid btree indexes
-- (bt_index_check), system catalogs included; not other sessions'
-- temporary relations, nor unlogged ones during recovery (no files).
-- tableid is the table of an index (itself for a table), owner_table the
-- user table a TOAST table or index belongs to, for the "tables" option.
CREATE FUNCTION adr_ops._integrity_relations(
    OUT relid oid, OUT tableid oid, OUT relation text, OUT kind text, OUT owner_table oid)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT c.oid, c.relname, c.relnamespace,
               coalesce((SELECT o.oid FROM pg_class o WHERE o.reltoastrelid = c.oid AND c.relkind = 't'),
                        c.oid) AS owner_table
          FROM pg_class c
         WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'
           AND (c.relpersistence <> 'u' OR NOT pg_is_in_recovery())
    )
    SELECT t.oid, t.oid, format('%I.%I', n.nspname, t.relname), 'table', t.owner_table
      FROM t JOIN pg_namespace n ON n.oid = t.relnamespace
    UNION ALL
    SELECT i.indexrelid, t.oid, format('%I.%I', n.nspname, ic.relname), 'index', t.owner_table
      FROM t
      JOIN pg_index i ON i.indrelid = t.oid AND i.indisvalid AND i.indisready
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
      JOIN pg_namespace n ON n.oid = ic.relnamespace
$$;
COMMENT ON FUNCTION adr_ops._integrity_relations() IS
    'API: private. The relations amcheck can verify in this database';

-- The rotation: the relations to verify, the one whose last verification
-- (or attempt) is oldest first, never verified ones before all, with
-- their size in pages as the catalog last estimated it.  Nothing is
-- opened here: pg_relation_size() would lock every relation of the
-- database in one transaction, waiting behind any ACCESS EXCLUSIVE lock;
-- the task measures a relation once it holds its lock.  options: "tables"
-- limits them to these tables (names, qualified or not) with their indexes
-- and TOAST.
CREATE FUNCTION adr_ops._integrity_queue(options jsonb,
    OUT relid oid, OUT tableid oid, OUT relation text, OUT kind text, OUT pages bigint,
    OUT last_verified timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.relid, r.tableid, r.relation, r.kind,
           (SELECT greatest(c.relpages, 0)::bigint FROM pg_class c WHERE c.oid = r.relid),
           l.at
      FROM adr_ops._integrity_relations() r
      LEFT JOIN LATERAL (SELECT max(x.verified_at) AS at FROM adr_ops.integrity_results x
                          WHERE x.relid = r.relid) l ON true
     WHERE options -> 'tables' IS NULL
        OR EXISTS (SELECT FROM jsonb_array_elements_text(options -> 'tables') t(name)
                     JOIN pg_class c ON c.oid = r.owner_table
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE t.name IN (c.relname, n.nspname || '.' || c.relname,
                                     format('%I.%I', n.nspname, c.relname)))
     ORDER BY l.at NULLS FIRST, r.relid
$$;
COMMENT ON FUNCTION adr_ops._integrity_queue(jsonb) IS
    'API: private. The relations to verify, oldest verification first';

-- amcheck's functions, bound by membership (_extension_function): its
-- schema is often public, where others may plant look-alikes.
CREATE FUNCTION adr_ops._integrity_functions(OUT heap regprocedure, OUT btree regprocedure)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'amcheck') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('extension "amcheck" is not installed in database "%s"', current_database()),
            DETAIL = 'adr_ops verifies tables and indexes with amcheck''s verify_heapam() and bt_index_check().',
            HINT = 'Run CREATE EXTENSION amcheck in this database.';
    END IF;
    heap := adr_ops._extension_function('amcheck', 'verify_heapam',
                                        '{regclass,boolean,boolean,text,bigint,bigint}');
    btree := adr_ops._extension_function('amcheck', 'bt_index_check', '{regclass,boolean}');
END
$$;
COMMENT ON FUNCTION adr_ops._integrity_functions() IS
    'API: private. amcheck''s verify_heapam() and bt_index_check(), bound by membership, or an error saying what is missing';

-- After a run: the checksum failure counters seen, and the history pruned
-- (rows older than keep, but never a relation's newest).  Returns the
-- failures counted since the previous run, per database, as text.
CREATE FUNCTION adr_ops._integrity_after_run(keep interval DEFAULT '90 days') RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    news text;
BEGIN
    DELETE FROM adr_ops.integrity_results r
     WHERE r.verified_at < now() - keep
       AND EXISTS (SELECT FROM adr_ops.integrity_results n
                    WHERE n.relid = r.relid AND n.verified_at > r.verified_at);
    SELECT string_agg(format('%s in %s', adr_ops._count_of(d.failures - coalesce(c.failures, 0), 'checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs')),
                      ', ' ORDER BY d.datname)
      INTO news
      FROM (SELECT s.datid, s.datname, s.checksum_failures AS failures FROM pg_stat_database s) d
      LEFT JOIN adr_ops.checksum_counters c ON c.datid = d.datid
     WHERE d.failures > coalesce(c.failures, 0);
    INSERT INTO adr_ops.checksum_counters AS c (datid, datname, failures, last_failure, seen_at)
    SELECT s.datid, s.datname, s.checksum_failures, s.checksum_last_failure, now()
      FROM pg_stat_database s
     WHERE s.checksum_failures IS NOT NULL
    ON CONFLICT (datid) DO UPDATE
       SET datname = excluded.datname, failures = excluded.failures,
           last_failure = excluded.last_failure, seen_at = excluded.seen_at;
    DELETE FROM adr_ops.checksum_counters c
     WHERE NOT EXISTS (SELECT FROM pg_stat_database s WHERE s.datid = c.datid);
    RETURN news;
END
$$;
COMMENT ON FUNCTION adr_ops._integrity_after_run(interval) IS
    'API: private. Records the checksum failure counters seen and prunes integrity_results; returns the new failures';

-- Verifies a relation now: a table with verify_heapam() (TOAST included)
-- and then its btree indexes, or one btree index, with bt_index_check();
-- heapallindexed also checks that every table row is in the index.  Only
-- AccessShareLock is taken.  The results are stored in integrity_results
-- (they count for the task's rotation) and returned.  SECURITY DEFINER:
-- EXECUTE on it is all a grantee needs; amcheck runs an index's
-- expressions as the table's owner.
CREATE FUNCTION adr_ops.adr_verify_integrity(relation regclass, heapallindexed boolean DEFAULT false)
RETURNS SETOF adr_ops.integrity_results
AS 'MODULE_PATHNAME', 'adr_verify_integrity'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION adr_ops.adr_verify_integrity(regclass, boolean) IS
    'verifies a table (and its btree indexes) or a btree index with amcheck now, stores and returns what was found';
REVOKE ALL ON FUNCTION adr_ops.adr_verify_integrity(regclass, boolean) FROM PUBLIC;

-- The health row data_integrity.  value: the problems found, i.e.
-- checksum failures counted since the integrity_check task last looked,
-- plus relations whose latest verification found corruption (CRITICAL
-- beyond 0 by default).  WARNING for failures counted before (until the
-- statistics are reset) and for relations that could not be verified.
-- The first 10 relations of each kind are named (by name), then how many
-- more.
-- The detail also says whether data checksums are on and how far the
-- rotation has got.
CREATE FUNCTION adr_ops._check_data_integrity() RETURNS SETOF adr_ops._health_reading
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := '{}';
    new_n bigint;
    new_text text;
    old_n bigint;
    old_text text;
    corrupt_n bigint;
    corrupt_text text;
    error_n bigint;
    error_text text;
    verified bigint;
    total bigint;
    oldest timestamptz;
BEGIN
    IF current_setting('data_checksums') = 'on' THEN
        parts := parts || 'data checksums are on'::text;
    ELSE
        parts := parts || 'data checksums are off (pages are checked by amcheck only)'::text;
    END IF;

    -- Checksum failures, per database: new since the task last saw the
    -- counters (all of them after a statistics reset), and older ones.
    WITH d AS (
        SELECT s.datname, s.checksum_failures AS failures, s.checksum_last_failure AS last_failure,
               CASE WHEN c.failures IS NULL OR s.checksum_failures < c.failures THEN s.checksum_failures
                    ELSE s.checksum_failures - c.failures END AS news,
               c.seen_at
          FROM pg_stat_database s
          LEFT JOIN adr_ops.checksum_counters c ON c.datid = s.datid
         WHERE s.checksum_failures > 0)
    SELECT coalesce(sum(d.news), 0), coalesce(sum(d.failures - d.news), 0),
           string_agg(format('%s in %s, the last at %s', adr_ops._count_of(d.news, 'new checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs'),
                             d.last_failure::timestamptz(0)), '; ' ORDER BY d.datname) FILTER (WHERE d.news > 0),
           string_agg(format('%s in %s seen by the integrity_check task at %s',
                             adr_ops._count_of(d.failures - d.news, 'checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs'),
                             d.seen_at::timestamptz(0)), '; ' ORDER BY d.datname) FILTER (WHERE d.failures > d.news)
      INTO new_n, old_n, new_text, old_text
      FROM d;
    IF new_n > 0 THEN
        parts := parts || new_text;
    END IF;
    IF old_n > 0 THEN
        parts := parts || (old_text || ' (pg_stat_reset() in that database clears them once repaired)');
    END IF;

    -- The latest verification of each relation that still exists.
    WITH latest AS (
        SELECT DISTINCT ON (x.relid) x.*
          FROM adr_ops.integrity_results x
         WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = x.relid)
         ORDER BY x.relid, x.verified_at DESC)
    SELECT count(*) FILTER (WHERE l.status = 'corrupt'),
           array_to_string((array_agg(format('%s%s: %s', l.relation, ' block ' || l.blkno, left(l.detail, 200))
                                      ORDER BY l.relation) FILTER (WHERE l.status = 'corrupt'))[1:10], '; '),
           count(*) FILTER (WHERE l.status = 'error'),
           array_to_string((array_agg(format('%s (%s)', l.relation, left(l.detail, 200))
                                      ORDER BY l.relation) FILTER (WHERE l.status = 'error'))[1:10], '; '),
           count(*) FILTER (WHERE l.status <> 'error'),
           min(l.verified_at)
      INTO corrupt_n, corrupt_text, error_n, error_text, verified, oldest
      FROM latest l;
    IF corrupt_n > 0 THEN
        parts := parts || ('corruption found in ' || adr_ops._count_of(corrupt_n, 'relation') || ': ' || corrupt_text
                           || CASE WHEN corrupt_n > 10 THEN format('; and %s more', corrupt_n - 10) ELSE '' END);
    END IF;
    IF error_n > 0 THEN
        parts := parts || ('could not verify ' || error_text
                           || CASE WHEN error_n > 10 THEN format('; and %s more', error_n - 10) ELSE '' END);
    END IF;

    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'amcheck') THEN
        parts := parts || 'extension amcheck is not installed in this database: tables and indexes are not verified (run CREATE EXTENSION amcheck)'::text;
    ELSE
        SELECT count(*) INTO total FROM adr_ops._integrity_relations();
        parts := parts || CASE WHEN verified = 0 THEN format('none of %s relations verified yet', total)
                               ELSE format('%s of %s relations verified, the oldest at %s',
                                           verified, total, oldest::timestamptz(0)) END;
    END IF;

    RETURN QUERY SELECT 'data_integrity'::text, (new_n + corrupt_n)::numeric, 'problems'::text,
                        array_to_string(parts, '; '), NULL::text,
                        CASE WHEN old_n > 0 OR error_n > 0 THEN 'WARNING' END;
END
$$;
COMMENT ON FUNCTION adr_ops._check_data_integrity() IS
    'API: private. The data_integrity health row: checksum failures, data checksums, amcheck findings';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._check_data_integrity()', 'adr_ops._integrity_relations()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['adr_ops._integrity_queue(jsonb)', 'adr_ops._integrity_functions()',
                             'adr_ops._integrity_after_run(interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('data_integrity', 0, 0);
INSERT INTO adr_ops.health_checks (name, position) VALUES ('data_integrity', 180);

-- Nightly, at a minute no other default schedule uses; a heavy task, so
-- confined to adr_ops.maintenance_window when one is set.  Each run
-- verifies for at most time_budget (default 30min), oldest first.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('integrity_check', '30 3 * * *', 'integrity_check', pg_catalog.current_database());
