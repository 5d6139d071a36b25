
-- perf: the other investigations of performance troubleshooting (runbook:
-- Performance Troubleshooting: lock contention, connection pool, indexes,
-- cache hit rates, memory-consuming processes) ------------------------------

-- Lock waits.  One row per session waiting for a heavyweight lock: a backend
-- waits for one lock at a time, so it has one ungranted row in pg_locks.
-- The wait starts at pg_locks.waitstart; a wait younger than
-- deadlock_timeout may not have it yet, so fall back to state_change.
-- waitstart is read through jsonb because 13 has no such column.  A
-- relation in another database has no name here: relation is NULL then.
CREATE FUNCTION adr_ops.adr_lock_waits(
    OUT waiting_pid int, OUT blocking_pids int[], OUT wait_duration interval,
    OUT locktype text, OUT mode text, OUT relation regclass,
    OUT waiting_query text, OUT blocking_query text,
    OUT waiting_user name, OUT blocking_user name, OUT database name)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT DISTINCT ON (l.pid)
               l.pid, l.locktype, l.mode,
               -- an OID of another database would name the wrong relation here
               CASE WHEN l.database = 0
                         OR l.database = (SELECT d.oid FROM pg_database d
                                           WHERE d.datname = current_database())
                    THEN l.relation END AS relation,
               (to_jsonb(l) ->> 'waitstart')::timestamptz AS waitstart
          FROM pg_locks l
         WHERE NOT l.granted AND l.pid IS NOT NULL
         ORDER BY l.pid, (to_jsonb(l) ->> 'waitstart')::timestamptz NULLS LAST
    ), b AS (
        SELECT w.*, pg_blocking_pids(w.pid) AS blockers FROM w
    )
    SELECT b.pid, b.blockers,
           now() - coalesce(b.waitstart, a.state_change),
           b.locktype, b.mode, b.relation::regclass,
           a.query, h.query, a.usename, h.usename, a.datname
      FROM b
      JOIN pg_stat_activity a ON a.pid = b.pid
      LEFT JOIN pg_stat_activity h ON h.pid = b.blockers[1]
     ORDER BY 3 DESC NULLS LAST, 1
$$;
COMMENT ON FUNCTION adr_ops.adr_lock_waits() IS
    'sessions waiting for a lock, longest wait first: who blocks them (pg_blocking_pids; 0 is a prepared transaction), for how long, the lock type, mode and relation (NULL unless the lock is on a relation of this database or a page or tuple of one), both queries (the first blocker''s), users and database: the runbook''s "monitor lock contention"';
REVOKE ALL ON FUNCTION adr_ops.adr_lock_waits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_lock_waits() TO pg_monitor;

-- Connection pool status.  Client backends only: they are what uses
-- max_connections (walsenders and background workers have their own
-- limits).  The slots are max_connections less those reserved for
-- superusers (and, from 16, for pg_use_reserved_connections), as in
-- adr_health_check().  pg_stat_activity shows the backend type and state
-- of other users' sessions only to members of pg_read_all_stats (which
-- pg_monitor is): anyone else sees only its own sessions counted here.
CREATE FUNCTION adr_ops.adr_connection_summary(
    OUT database name, OUT username name, OUT application_name text, OUT state text,
    OUT sessions bigint, OUT oldest_idle_in_transaction interval,
    OUT pct_of_slots float8, OUT all_clients_pct float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (
        SELECT a.datname, a.usename, a.application_name, a.state, a.state_change
          FROM pg_stat_activity a
         WHERE a.backend_type = 'client backend'
    ), s AS (
        SELECT (SELECT count(*) FROM c) AS used,
               nullif(current_setting('max_connections')::int
                      - current_setting('superuser_reserved_connections')::int
                      - coalesce(current_setting('reserved_connections', true)::int, 0), 0) AS slots
    )
    SELECT c.datname, c.usename, c.application_name, c.state, count(*),
           now() - min(c.state_change) FILTER (WHERE c.state IN ('idle in transaction',
                                                                  'idle in transaction (aborted)')),
           round(100.0 * count(*) / s.slots, 1)::float8,
           round(100.0 * s.used / s.slots, 1)::float8
      FROM c CROSS JOIN s
     GROUP BY c.datname, c.usename, c.application_name, c.state, s.used, s.slots
     ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION adr_ops.adr_connection_summary() IS
    'client sessions grouped by database, username, application_name and state: sessions in the group, the age of its oldest session idle in transaction (NULL if none), the group''s and all client sessions'' % of the connection slots (max_connections less superuser_reserved_connections and reserved_connections); without pg_read_all_stats only the caller''s own sessions count: the runbook''s "check connection pool status"';
REVOKE ALL ON FUNCTION adr_ops.adr_connection_summary() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_connection_summary() TO pg_monitor;

-- Index advice.  Findings, at most one per index, in this order of
-- precedence: invalid, duplicate, redundant, unused.  The rules:
--
-- * invalid: NOT indisvalid, unless a CREATE INDEX or REINDEX is building it
--   right now.  Leftovers of a failed REINDEX CONCURRENTLY (_ccnew, _ccold)
--   are dropped, as the REINDEX documentation says; others are rebuilt.  A
--   partitioned index is invalid until every partition has one attached:
--   no statement, the evidence says so.
-- * duplicate: same table, key and INCLUDE columns, expressions, predicate,
--   operator classes, collations and sort options (and, for 15's unique
--   NULLS NOT DISTINCT, that too).  One of the set is kept: the one a
--   foreign key depends on, else the one that backs a constraint, else a
--   unique one, else the replica identity, else the most scanned (the one
--   the planner picks: its scans still count once its twins are gone), else
--   the oldest; the others are reported.  An index that a foreign key
--   depends on is never reported (it cannot be dropped alone).
-- * redundant: a btree index without predicate, expressions or INCLUDE
--   columns whose keys lead another valid btree index without predicate,
--   with the same operator classes, collations and options, that stays:
--   kept from its duplicates, and scanned or protected (below).  A
--   protected index is never redundant, except for covering a foreign key,
--   which the longer index does as well.
-- * unused: no scans since the statistics were reset (a kept duplicate
--   counts its twins' scans, which will come to it; NB: an index created
--   since the reset has had less time), and not protected.  Protected are
--   unique, constraint and replica identity indexes, indexes a foreign key
--   depends on, and indexes that cover a foreign key of their table (they
--   serve the check when a referenced row is deleted, which may be rare).
-- * sequential scans: a table scanned sequentially more than 100 times,
--   reading more than 10000 rows a scan on average, more often than through
--   its indexes.  pg_stats may suggest a column (more than 100 distinct
--   values, |correlation| < 0.1, not the first column of an index); the
--   statement is only given for such a column, and never on pg_stats alone.
-- * foreign key without index: no valid btree index without predicate has
--   the foreign key's columns, in any order, as its leading keys.
--
-- Nothing here takes a lock on the tables, so that the advice never waits
-- behind an ACCESS EXCLUSIVE lock: sizes come from pg_class.relpages (as of
-- the last VACUUM, ANALYZE or CREATE INDEX) rather than pg_relation_size(),
-- and expressions are compared as node trees rather than through
-- pg_get_expr(); both would lock.  An index attached to a partitioned index
-- goes with its parent, whose scans and size are those of its partitions'.
-- Statements on partitioned tables go without CONCURRENTLY, which they do
-- not support.  Extension members, system schemas, temporary schemas and
-- adr_ops are left out.
-- Without JIT: the planner's estimate of this many CTEs passes the JIT
-- thresholds at a few thousand indexes, and compiling the plan then took
-- 10 of the 12 seconds at 20,000 indexes (bench/scale).
CREATE FUNCTION adr_ops.adr_index_advice(
    OUT finding text, OUT object text, OUT table_name text, OUT evidence text,
    OUT statement text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH RECURSIVE
    since AS (
        SELECT 'since ' || coalesce('the statistics were reset at '
                                    || date_trunc('second', d.stats_reset)::text,
                                    'the statistics began') AS txt
          FROM pg_stat_database d WHERE d.datname = current_database()
    ),
    -- the leaves under each partitioned table and index
    ptree (root, relid) AS (
        SELECT c.oid, c.oid FROM pg_class c WHERE c.relkind IN ('p', 'I')
        UNION ALL
        SELECT p.root, i.inhrelid FROM ptree p JOIN pg_inherits i ON i.inhparent = p.relid
    ),
    pleaf AS (
        SELECT p.root, sum(pg_stat_get_numscans(c.oid)) AS scans,
               sum(c.relpages::bigint * current_setting('block_size')::bigint) AS bytes,
               CASE WHEN max(c.reltuples) < 0 THEN -1
                    ELSE sum(greatest(c.reltuples, 0)) END AS tuples
          FROM ptree p JOIN pg_class c ON c.oid = p.relid AND c.relkind IN ('r', 'm', 'i')
         GROUP BY p.root
    ),
    tbl AS (
        SELECT c.oid, c.relkind, c.relname, n.nspname,
               format('%I.%I', n.nspname, c.relname) AS qname,
               CASE WHEN c.relkind = 'p' THEN coalesce(pl.tuples, -1)
                    ELSE c.reltuples END AS tuples,
               CASE WHEN coalesce(pl.tuples, c.reltuples) < 0 THEN 'not analyzed yet'
                    ELSE format('size %s, about %s rows',
                                pg_size_pretty(coalesce(pl.bytes,
                                                        c.relpages::bigint
                                                        * current_setting('block_size')::bigint)),
                                coalesce(pl.tuples, c.reltuples)::bigint) END AS facts,
               CASE WHEN c.relkind = 'p' THEN '' ELSE 'CONCURRENTLY ' END AS conc,
               CASE WHEN c.relkind = 'p'
                    THEN '; a partitioned table does not support CONCURRENTLY, so the statement locks it'
                    ELSE '' END AS note
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pleaf pl ON pl.root = c.oid
         WHERE c.relkind IN ('r', 'm', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'adr_ops')
           AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
           AND NOT EXISTS (SELECT FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype = 'e')
    ),
    fkey AS (
        SELECT k.conname, k.conrelid, k.confrelid, k.conkey
          FROM pg_constraint k
         WHERE k.contype = 'f' AND k.conparentid = 0
    ),
    -- valid btree indexes without predicate that lead with a foreign key's columns
    fk_covers AS (
        SELECT x.indexrelid, f.conname, f.conrelid
          FROM pg_index x
          JOIN pg_class ic ON ic.oid = x.indexrelid
          JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
          JOIN fkey f ON f.conrelid = x.indrelid
         WHERE x.indisvalid AND x.indpred IS NULL
           AND cardinality(f.conkey) <= x.indnkeyatts
           AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] @> f.conkey
           AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] <@ f.conkey
    ),
    idx AS (
        SELECT x.indexrelid AS oid, x.indrelid, t.qname AS table_qname, t.conc, t.note,
               format('%I.%I', t.nspname, ic.relname) AS qname, ic.relname, ic.relkind,
               am.amname, x.indisunique, x.indisprimary, x.indisvalid, x.indisreplident,
               x.indnatts, x.indnkeyatts,
               (x.indkey::int2[])[0:x.indnkeyatts - 1] AS keys,
               x.indkey::int2[] AS allcols,
               (x.indclass::oid[])[0:x.indnkeyatts - 1] AS opclasses,
               (x.indcollation::oid[])[0:x.indnkeyatts - 1] AS collations,
               (x.indoption::int2[])[0:x.indnkeyatts - 1] AS options,
               regexp_replace(x.indexprs::text, ' :location -?[0-9]+', '', 'g') AS exprs,
               regexp_replace(x.indpred::text, ' :location -?[0-9]+', '', 'g') AS pred,
               x.indisunique AND coalesce((to_jsonb(x) ->> 'indnullsnotdistinct')::boolean, false)
                   AS nulls_not_distinct,
               k.conname AS constraint_name,
               -- (uncorrelated IN: hashed, where EXISTS would rescan per index)
               x.indexrelid IN (SELECT f.conindid FROM pg_constraint f
                                 WHERE f.contype = 'f') AS fk_depends,
               x.indexrelid IN (SELECT c.indexrelid FROM fk_covers c) AS fk_cover,
               CASE WHEN ic.relkind = 'I' THEN coalesce(pl.scans, 0)
                    ELSE pg_stat_get_numscans(x.indexrelid) END AS scans,
               CASE WHEN ic.relkind = 'I' THEN coalesce(pl.bytes, 0)
                    ELSE ic.relpages::bigint * current_setting('block_size')::bigint END AS bytes
          FROM pg_index x
          JOIN tbl t ON t.oid = x.indrelid
          JOIN pg_class ic ON ic.oid = x.indexrelid
          JOIN pg_am am ON am.oid = ic.relam
          LEFT JOIN pg_constraint k
                 ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                AND k.contype IN ('p', 'u', 'x')
          LEFT JOIN pleaf pl ON pl.root = x.indexrelid
         WHERE x.indislive AND NOT ic.relispartition
    ),
    -- valid indexes, each with the one of its duplicate set that is kept
    sets AS (
        SELECT i.*,
               i.indisunique OR i.constraint_name IS NOT NULL OR i.indisreplident
               OR i.fk_depends OR i.fk_cover AS protected,
               first_value(i.oid) OVER w AS keep_oid,
               first_value(i.qname) OVER w AS keep_qname,
               sum(i.scans) OVER (PARTITION BY i.indrelid, i.allcols, i.indnkeyatts, i.opclasses,
                                               i.collations, i.options, i.exprs, i.pred,
                                               i.nulls_not_distinct) AS set_scans
          FROM idx i
         WHERE i.indisvalid
        WINDOW w AS (PARTITION BY i.indrelid, i.allcols, i.indnkeyatts, i.opclasses,
                                  i.collations, i.options, i.exprs, i.pred, i.nulls_not_distinct
                     ORDER BY i.fk_depends DESC, i.indisprimary DESC,
                              i.constraint_name IS NOT NULL DESC,
                              i.indisunique DESC, i.indisreplident DESC, i.scans DESC, i.oid)
    ),
    -- The rules as flags: the joins below then filter on one column each,
    -- which the planner estimates well enough to hash 10,000 indexes.
    valid AS (
        SELECT v.*,
               v.oid <> v.keep_oid AND NOT v.fk_depends AS is_dup,
               -- what the advice keeps for certain: kept, and scanned or protected
               v.oid = v.keep_oid AND (v.set_scans > 0 OR v.protected) AS stays,
               -- what may be redundant to a longer btree index that stays
               v.amname = 'btree' AND v.pred IS NULL
               AND (v.oid = v.keep_oid OR v.fk_depends)
               AND NOT (v.indisunique OR v.constraint_name IS NOT NULL OR v.indisreplident
                        OR v.fk_depends)
               AND v.exprs IS NULL AND v.indnatts = v.indnkeyatts AS may_be_redundant
          FROM sets v
    ),
    dup AS (
        SELECT v.* FROM valid v WHERE v.is_dup
    ),
    red AS (
        SELECT DISTINCT ON (a.oid) a.*, s.qname AS covered_by, s.set_scans AS covered_by_scans
          FROM valid a
          JOIN valid s ON s.indrelid = a.indrelid
         WHERE a.may_be_redundant AND s.stays
           AND s.amname = 'btree' AND s.pred IS NULL
           AND cardinality(s.keys) > cardinality(a.keys)
           AND s.keys[1:cardinality(a.keys)] = a.keys
           AND s.opclasses[1:cardinality(a.keys)] = a.opclasses
           AND s.collations[1:cardinality(a.keys)] = a.collations
           AND s.options[1:cardinality(a.keys)] = a.options
         ORDER BY a.oid, cardinality(s.keys) DESC, s.oid
    ),
    findings AS (
        SELECT 1 AS rank, 'invalid index' AS finding, i.qname AS object, i.table_qname,
               format('not valid, so never used by queries yet updated by every write: %s; size %s',
                      CASE WHEN i.relkind = 'I'
                           THEN 'some partitions have no index attached to it; create theirs and ALTER INDEX ... ATTACH PARTITION them'
                           WHEN i.relname ~ '_cc(new|old)[0-9]*$'
                           THEN 'left over by a REINDEX CONCURRENTLY that failed'
                           WHEN i.indisunique
                           THEN 'a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed (a unique index fails again while duplicate keys remain)'
                           ELSE 'a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed'
                      END,
                      pg_size_pretty(i.bytes)) AS evidence,
               CASE WHEN i.relkind = 'I' THEN NULL
                    WHEN i.relname ~ '_cc(new|old)[0-9]*$'
                    THEN format('DROP INDEX CONCURRENTLY %s;', i.qname)
                    ELSE format('REINDEX INDEX CONCURRENTLY %s;', i.qname) END AS statement
          FROM idx i
         WHERE NOT i.indisvalid
           AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                            WHERE p.index_relid = i.oid)
        UNION ALL
        SELECT 2, 'duplicate index', d.qname, d.table_qname,
               format('same definition as %s, which is kept; index scans %s: %s on this one, %s on all of them; size %s%s',
                      d.keep_qname, (SELECT txt FROM since), d.scans, d.set_scans,
                      pg_size_pretty(d.bytes), d.note),
               CASE WHEN d.constraint_name IS NOT NULL
                    THEN format('ALTER TABLE %s DROP CONSTRAINT %I;', d.table_qname, d.constraint_name)
                    ELSE format('DROP INDEX %s%s;', d.conc, d.qname) END
          FROM dup d
        UNION ALL
        SELECT 3, 'redundant index', r.qname, r.table_qname,
               format('its columns are the leading columns of %s, which serves the same lookups; index scans %s: %s on this one, %s on %s; size %s%s',
                      r.covered_by, (SELECT txt FROM since), r.scans, r.covered_by_scans,
                      r.covered_by, pg_size_pretty(r.bytes), r.note),
               format('DROP INDEX %s%s;', r.conc, r.qname)
          FROM red r
        UNION ALL
        SELECT 4, 'unused index', v.qname, v.table_qname,
               format('no index scans %s; size %s%s', (SELECT txt FROM since),
                      pg_size_pretty(v.bytes), v.note),
               format('DROP INDEX %s%s;', v.conc, v.qname)
          FROM valid v
         WHERE v.oid = v.keep_oid AND v.set_scans = 0 AND NOT v.protected
           AND v.oid NOT IN (SELECT r.oid FROM red r)
        UNION ALL
        SELECT 5, 'sequential scans', t.qname, t.qname,
               format('%s sequential scans read %s rows each on average (%s in all), against %s index scans, %s; table %s; %s',
                      s.seq_scan, s.seq_tup_read / nullif(s.seq_scan, 0), s.seq_tup_read,
                      coalesce(s.idx_scan, 0), (SELECT txt FROM since), t.facts,
                      CASE WHEN cand.cols IS NOT NULL
                           THEN 'pg_stats suggests ' || cand.cols
                                || '; check that the slow queries filter on it before creating the index'
                           WHEN NOT has_any_column_privilege(t.oid, 'SELECT')
                           THEN 'its column statistics (pg_stats) are not visible to this role'
                           ELSE 'no column stands out in pg_stats: look for the filter in the slow queries'
                      END),
               CASE WHEN cand.best IS NOT NULL
                    THEN format('CREATE INDEX %sIF NOT EXISTS %I ON %s (%I);', t.conc,
                                left(t.relname || '_' || cand.best, 59) || '_idx', t.qname, cand.best)
               END
          FROM tbl t
          JOIN pg_stat_all_tables s ON s.relid = t.oid
          LEFT JOIN LATERAL (
                SELECT string_agg(format('%I (about %s distinct values, correlation %s)',
                                         c.attname, c.distinct_values,
                                         round(c.correlation::numeric, 2)),
                                  ', ' ORDER BY c.distinct_values DESC, c.attname) AS cols,
                       (array_agg(c.attname ORDER BY c.distinct_values DESC, c.attname))[1] AS best
                  FROM (SELECT st.attname, st.correlation,
                               round(CASE WHEN st.n_distinct >= 0 THEN st.n_distinct
                                          ELSE -st.n_distinct * greatest(t.tuples, 0) END)::bigint
                                   AS distinct_values
                          FROM pg_stats st
                          JOIN pg_attribute att ON att.attrelid = t.oid AND att.attname = st.attname
                         WHERE st.schemaname = t.nspname AND st.tablename = t.relname
                           AND NOT st.inherited
                           AND abs(st.correlation) < 0.1
                           AND NOT EXISTS (SELECT FROM pg_index x
                                            WHERE x.indrelid = t.oid
                                              AND x.indkey[0] = att.attnum)) c
                 WHERE c.distinct_values > 100) cand ON true
         WHERE s.seq_scan > 100
           AND s.seq_tup_read / nullif(s.seq_scan, 0) > 10000
           AND s.seq_scan > coalesce(s.idx_scan, 0)
        UNION ALL
        SELECT 6, 'foreign key without index', format('%I.%I', t.nspname, f.conname), t.qname,
               format('deleting or updating a key of %s scans %s (%s) for the rows that reference it%s',
                      f.confrelid::regclass, t.qname, t.facts, t.note),
               format('CREATE INDEX %sIF NOT EXISTS %I ON %s (%s);', t.conc,
                      left(t.relname || '_' || f.names, 59) || '_idx', t.qname, f.collist)
          FROM (SELECT fk.*,
                       string_agg(a.attname, '_' ORDER BY k.n) AS names,
                       string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) AS collist
                  FROM fkey fk
                  CROSS JOIN LATERAL unnest(fk.conkey) WITH ORDINALITY k(attnum, n)
                  JOIN pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = k.attnum
                 GROUP BY fk.conname, fk.conrelid, fk.confrelid, fk.conkey) f
          JOIN tbl t ON t.oid = f.conrelid
         WHERE NOT EXISTS (SELECT FROM fk_covers c
                            WHERE c.conrelid = f.conrelid AND c.conname = f.conname)
    )
    SELECT f.finding, f.object, f.table_qname, f.evidence, f.statement
      FROM findings f
     ORDER BY f.rank, f.table_qname, f.object
$$;
COMMENT ON FUNCTION adr_ops.adr_index_advice() IS
    'index findings, one row each: invalid, duplicate, redundant and unused indexes (no scans since the statistics reset; not backing a constraint or covering a foreign key), tables read by large sequential scans, foreign keys without an index; with the evidence (sizes from relpages, scan counts) and the statement to run: the runbook''s "check missing indexes" and "review index usage". Scans on a standby are counted only on that standby';
REVOKE ALL ON FUNCTION adr_ops.adr_index_advice() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_index_advice() TO pg_monitor;

-- Cache hit ratios.  A table's blocks are its heap's and its TOAST table's
-- (with the TOAST index); its indexes have rows of their own.  A read is a
-- block not found in shared buffers: the kernel's page cache may still
-- have served it.
CREATE FUNCTION adr_ops.adr_cache_stats(
    OUT schemaname name, OUT relname name, OUT kind text,
    OUT hits bigint, OUT reads bigint, OUT hit_ratio float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.schemaname, b.relname, b.kind, b.hits, b.reads,
           round((b.hits::float8 / nullif(b.hits + b.reads, 0))::numeric, 3)::float8
      FROM (SELECT t.schemaname, t.relname, 'table' AS kind,
                   coalesce(t.heap_blks_hit, 0) + coalesce(t.toast_blks_hit, 0)
                   + coalesce(t.tidx_blks_hit, 0) AS hits,
                   coalesce(t.heap_blks_read, 0) + coalesce(t.toast_blks_read, 0)
                   + coalesce(t.tidx_blks_read, 0) AS reads
              FROM pg_statio_user_tables t
            UNION ALL
            SELECT i.schemaname, i.indexrelname, 'index',
                   coalesce(i.idx_blks_hit, 0), coalesce(i.idx_blks_read, 0)
              FROM pg_statio_user_indexes i) b
     ORDER BY b.reads DESC, b.schemaname, b.relname, b.kind
$$;
COMMENT ON FUNCTION adr_ops.adr_cache_stats() IS
    'shared buffer hits and reads of each user table (heap and TOAST) and index, with hit_ratio = hits / (hits + reads) (NULL before the first access), most reads first: the runbook''s "examine cache hit rates"';
REVOKE ALL ON FUNCTION adr_ops.adr_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_cache_stats() TO pg_monitor;

-- Backend memory, read in C (perf.c) from /proc/<pid>/status.
CREATE FUNCTION adr_ops._proc_memory(
    pid int, OUT rss_bytes bigint, OUT anon_bytes bigint, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_proc_memory'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._proc_memory(int) IS
    'API: private. Resident (VmRSS) and private (RssAnon) memory of a server process, or why not';
REVOKE ALL ON FUNCTION adr_ops._proc_memory(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._proc_memory(int) TO pg_monitor;

-- Most private memory first: rss_bytes also counts the shared buffers a
-- backend has touched, so it overstates what the backend itself uses.
CREATE FUNCTION adr_ops.adr_backend_memory(
    OUT pid int, OUT backend_type text, OUT username name, OUT database name,
    OUT state text, OUT rss_bytes bigint, OUT anon_bytes bigint, OUT query text,
    OUT error text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.pid, a.backend_type, a.usename, a.datname, a.state,
           m.rss_bytes, m.anon_bytes, a.query, m.error
      FROM pg_stat_activity a
      CROSS JOIN LATERAL adr_ops._proc_memory(a.pid) m
     ORDER BY m.anon_bytes DESC NULLS LAST, m.rss_bytes DESC NULLS LAST, a.pid
$$;
COMMENT ON FUNCTION adr_ops.adr_backend_memory() IS
    'resident memory of each server process from /proc/<pid>/status, in bytes: rss_bytes (VmRSS, which includes the shared buffers it touched) and anon_bytes (RssAnon, its private memory), with its state and query; error says why the figures are NULL: the runbook''s "identify memory-consuming processes"';
REVOKE ALL ON FUNCTION adr_ops.adr_backend_memory() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_backend_memory() TO pg_monitor;
