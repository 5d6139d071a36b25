
-- bloat: the runbook's "check for bloat" (Database Maintenance), which only
-- listed sizes, as real bloat in three modes ------------------------------
--
-- estimate: from pg_class, pg_stats, pg_attribute and pg_stat_all_tables,
--     no page read; NULL figures with the reason in method wherever the
--     statistics cannot give a right figure.
-- sample:   a random sample of pages read by bloat.c, extrapolated, with a
--     95% error bound (error_pct).
-- exact:    every page read by bloat.c.
-- Bloat is dead tuples plus free space less what fillfactor reserves on
-- purpose; for estimate, the pages the relation has beyond those its rows
-- need at its fillfactor.  See docs/bloat.md.

-- API: private.  Page reads (bloat.c).
CREATE FUNCTION adr_ops._bloat_scan(rel oid, exact bool, min_bytes bigint,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_bloat_scan'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) IS
    'API: private. One relation''s bloat from its pages (exact: all of them; else a sample of adr_ops.bloat_sample_pages); needs superuser or pg_stat_scan_tables';
REVOKE ALL ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) TO pg_monitor;

-- API: private.  The size of a relation's main fork without waiting for a
-- lock (pg_relation_size() would): NULL when locked or gone.
CREATE FUNCTION adr_ops._bloat_size(rel oid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'adr_bloat_size'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops._bloat_size(oid) IS
    'API: private. Size of the main fork in bytes, NULL if the relation is locked or gone (never waits)';
REVOKE ALL ON FUNCTION adr_ops._bloat_size(oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_size(oid) TO pg_monitor;

-- API: private.  Mode estimate for one table, materialized view, TOAST
-- table or btree index; same columns as _bloat_scan.  Runs as the caller:
-- pg_stats shows a column's statistics only to roles that may read the
-- column, and a role that cannot gets "no access to pg_stats".
--
-- The pages are the file's (without waiting for a lock; relpages if the
-- relation is locked).  A heap: tuple width from pg_stats (avg_width is the width as stored:
-- a toasted value counts its 18-byte pointer, a compressed one its
-- compressed size), each column aligned to its typalign (a short varlena
-- has a 1-byte header and no alignment), weighted by 1 - null_frac; the
-- 23-byte header and a null bitmap when a column has nulls, MAXALIGNed;
-- a 4-byte line pointer.  Bloat is counted like the page reads count it:
-- the file's pages less their headers and fillfactor reserve, less the
-- n_live_tup rows, less the line pointers (a page keeps those of the rows
-- it held when it was filled: (block_size - 28 - reserve) / width of
-- them, at most MaxHeapTuplesPerPage).
-- A btree: an 8-byte index tuple header (a 4-byte null bitmap when a key
-- column has nulls), the key and INCLUDE columns, MAXALIGNed, a line
-- pointer; leaves filled to fillfactor (default 90) of block_size - 24 -
-- 16; internal pages at 70%; the meta page.
-- NULL figures, with the reason, when the figure would be wrong:
-- never analyzed (no statistics), more than half the table modified since
-- ANALYZE (stale statistics: the widths may have changed),
-- a column the caller cannot read (no access to pg_stats), expressions and
-- predicates (their entries are not in pg_stats' columns), a non-unique
-- btree with duplicate keys (deduplication packs them, by an amount the
-- statistics do not tell), TOAST tables (never analyzed).
CREATE FUNCTION adr_ops._bloat_estimate(rel oid,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE plpgsql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bs int := current_setting('block_size')::int;
    c record;
    t record;
    a record;
    idx_keys int2[] := '{}';
    idx_unique bool := false;
    idx_include bool := false;
    ff int;
    hdr numeric;
    off numeric := 0;
    nulls bool := false;
    width numeric;
    per_page numeric;
    pages numeric;
    leaves numeric;
    ncols int := 0;
    nstats int := 0;
    table_oid oid := rel;
    distinct_key bool := false;
    live numeric;
    actual numeric;
BEGIN
    SELECT cl.oid, cl.relname, cl.relkind, cl.relpages, cl.reltuples, cl.reloptions,
           cl.relpersistence, am.amname
      INTO c
      FROM pg_class cl LEFT JOIN pg_am am ON am.oid = cl.relam
     WHERE cl.oid = rel;
    IF NOT FOUND THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;
    -- On a hot standby an unlogged relation has no main fork, no pages.
    IF c.relpersistence = 'u' AND pg_is_in_recovery() THEN
        method := 'unlogged relation during recovery';
        RETURN;
    END IF;
    total_bytes := coalesce(adr_ops._bloat_size(rel), c.relpages::bigint * bs);

    IF c.relkind = 't' THEN
        method := 'no statistics (TOAST tables are not analyzed)';
        RETURN;
    ELSIF c.relkind = 'i' AND c.amname IS DISTINCT FROM 'btree' THEN
        method := format('unsupported: %s index', c.amname);
        RETURN;
    ELSIF c.relkind IN ('r', 'm') AND c.amname IS DISTINCT FROM 'heap' THEN
        method := format('unsupported: table access method %s', c.amname);
        RETURN;
    END IF;

    -- The table whose statistics count: itself, or the index's table.
    IF c.relkind = 'i' THEN
        SELECT i.indrelid, i.indisunique, i.indisvalid, i.indexprs IS NOT NULL AS has_expr,
               i.indpred IS NOT NULL AS has_pred, i.indkey::int2[] AS keys,
               i.indnkeyatts < i.indnatts AS has_include
          INTO a FROM pg_index i WHERE i.indexrelid = rel;
        IF NOT FOUND THEN
            method := 'relation no longer exists';
            RETURN;
        ELSIF a.has_expr THEN
            method := 'expression index';
            RETURN;
        ELSIF a.has_pred THEN
            method := 'partial index';
            RETURN;
        ELSIF NOT a.indisvalid THEN
            method := 'invalid index';
            RETURN;
        END IF;
        table_oid := a.indrelid;
        idx_keys := a.keys;
        idx_unique := a.indisunique;
        idx_include := a.has_include;
    END IF;
    SELECT cl.oid, cl.relname, cl.reltuples, n.nspname,
           st.n_live_tup, st.n_dead_tup, st.n_mod_since_analyze
      INTO t
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_stat_all_tables st ON st.relid = cl.oid
     WHERE cl.oid = table_oid;
    IF NOT FOUND THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;

    IF EXISTS (SELECT FROM pg_attribute at
                WHERE at.attrelid = t.oid AND NOT at.attisdropped AND at.attnum > 0
                  AND (c.relkind <> 'i' OR at.attnum = ANY (idx_keys))
                  AND NOT has_column_privilege(t.oid, at.attnum, 'SELECT')) THEN
        method := 'no access to pg_stats';
        RETURN;
    END IF;
    -- Never vacuumed nor analyzed.  (A table analyzed once has pg_stats
    -- rows even after the statistics counters were reset, which clears
    -- last_analyze: the column loop below decides.)
    IF c.reltuples < 0 THEN
        method := 'no statistics';
        RETURN;
    END IF;
    live := CASE WHEN coalesce(t.n_live_tup, 0) + coalesce(t.n_dead_tup, 0) > 0
                 THEN t.n_live_tup ELSE greatest(t.reltuples, 0) END;
    actual := ceil(total_bytes::numeric / bs);

    -- The columns stored: every live column of a table, the key and
    -- INCLUDE columns of an index.
    FOR a IN
        SELECT at.attname, at.attlen, at.attalign,
               ps.avg_width, ps.null_frac, ps.n_distinct
          FROM pg_attribute at
          LEFT JOIN pg_stats ps ON ps.schemaname OPERATOR(pg_catalog.=) t.nspname
                               AND ps.tablename OPERATOR(pg_catalog.=) t.relname
                               AND ps.attname OPERATOR(pg_catalog.=) at.attname
                               AND NOT ps.inherited
         WHERE at.attrelid = t.oid AND NOT at.attisdropped AND at.attnum > 0
           AND (c.relkind <> 'i' OR at.attnum = ANY (idx_keys))
         ORDER BY CASE WHEN c.relkind = 'i' THEN array_position(idx_keys, at.attnum) ELSE at.attnum END
    LOOP
        ncols := ncols + 1;
        CONTINUE WHEN a.avg_width IS NULL;
        nstats := nstats + 1;
        IF a.null_frac > 0 THEN
            nulls := true;
        END IF;
        -- Alignment: a varlena shorter than 127 bytes has a 1-byte header
        -- and is not aligned.
        IF NOT (a.attlen = -1 AND a.avg_width < 127) THEN
            off := ceil(off / CASE a.attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4
                                              WHEN 's' THEN 2 ELSE 1 END)
                   * CASE a.attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4 WHEN 's' THEN 2 ELSE 1 END;
        END IF;
        off := off + a.avg_width * (1 - a.null_frac);
        -- A column whose values are (nearly) all distinct makes every key
        -- distinct: nothing for deduplication to pack.
        IF a.n_distinct < -0.95 OR a.n_distinct > 0.95 * greatest(t.reltuples, 1) THEN
            distinct_key := true;
        END IF;
    END LOOP;
    IF nstats < ncols THEN
        method := 'no statistics';
        RETURN;
    END IF;
    -- The widths are ANALYZE's; the row count need not be: the statistics
    -- collector's n_live_tup follows every insert and delete (after a
    -- reset of the counters it is 0: then reltuples).  Widths older than
    -- modifications of half the table are stale.  (Checked after the
    -- columns: a table VACUUM has seen but ANALYZE never has has no
    -- statistics, which says more than stale ones.)
    IF t.n_mod_since_analyze > 0.5 * greatest(t.reltuples, 1000) THEN
        method := 'stale statistics';
        RETURN;
    END IF;
    -- A non-unique btree (13 and later) with duplicate keys: deduplication
    -- packs them into posting lists, by an amount pg_stats cannot tell.
    IF c.relkind = 'i' AND NOT idx_unique AND NOT idx_include AND NOT distinct_key
       AND coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                      WHERE o.option_name = 'deduplicate_items'), 'on') NOT IN ('off', 'false', '0')
       AND current_setting('server_version_num')::int >= 130000 THEN
        method := 'deduplicated btree';
        RETURN;
    END IF;

    IF c.relkind = 'i' THEN
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'fillfactor'), 90);
        hdr := 8 + CASE WHEN nulls THEN 4 ELSE 0 END;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Entries: the index's count at its last VACUUM or ANALYZE (dead
        -- rows keep theirs until VACUUM), or more if rows came since.  A
        -- page takes at least one entry, whatever the fillfactor (at
        -- fillfactor 10 a key wider than about 800 bytes is more than the
        -- fill).
        leaves := ceil(greatest(c.reltuples, live, 0)
                       / greatest(floor((bs - 24 - 16) * ff / 100.0 / width), 1));
        pages := 1 + leaves + CASE WHEN leaves > 1
                                   THEN ceil(leaves / greatest(floor((bs - 24 - 16) * 0.7 / width), 1))
                                   ELSE 0 END;
    ELSE
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'fillfactor'), 100);
        hdr := ceil((23 + CASE WHEN nulls THEN ceil(ncols / 8.0) ELSE 0 END) / 8) * 8;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Counted the way the page reads count: what a page has beyond
        -- its header, the line pointers, the live rows and the reserve.
        -- A page kept the line pointers of the rows it held when filled
        -- (VACUUM marks them unused; they stay in the array): per_page of
        -- them, or as many as the live rows if more.
        per_page := least(floor((bs - 24 - 4 - bs * (100 - ff) / 100.0) / width),
                          floor((bs - 24) / 28.0));
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(actual * (bs - 24 - 4 - bs * (100 - ff) / 100.0)
                                        - live * (width - 4)
                                        - greatest(actual * per_page, live) * 4, 0)
                               * 100.0 / (actual * bs)
                          ELSE 0 END;
        dead_pct := round(100.0 * coalesce(t.n_dead_tup, 0) * width / greatest(total_bytes, bs), 2);
        vacuum_pct := 100.0 * coalesce(t.n_dead_tup, 0)
                      / greatest(coalesce(t.n_live_tup, 0) + coalesce(t.n_dead_tup, 0), 1);
    END IF;

    IF c.relkind = 'i' THEN
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(100.0 * (actual - pages) / actual, 0) ELSE 0 END;
    END IF;
    bloat_bytes := round(bloat_pct / 100 * total_bytes);
    method := 'estimate';
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimate(oid) IS
    'API: private. One relation''s bloat estimated from statistics, NULL with the reason in method where they cannot give it';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimate(oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimate(oid) TO pg_monitor;

-- API: private.  One row of the report: names, the figures of the mode,
-- and the suggestion:
-- * a table (or TOAST table) whose dead tuples and dead line pointers are
--   10% or more of its line pointers (or dead tuples 10% of its bytes):
--   VACUUM;
-- * else one whose bloat is 50% or more: free space VACUUM cannot give
--   back and that inserts will not fill soon: VACUUM FULL or pg_repack;
-- * a btree index with 30% bloat or more (the reindex task's default):
--   REINDEX INDEX CONCURRENTLY;
-- * else nothing; NULL when the bloat is unknown.
-- A relation that does not exist is an error, unless missing_ok: then a
-- row with NULL names and method "relation no longer exists" (the report
-- passes true: a relation dropped after it listed the candidates must not
-- abort it).
CREATE FUNCTION adr_ops._bloat_row(rel oid, mode text, min_bytes bigint,
    missing_ok bool DEFAULT false,
    OUT schemaname name, OUT relname name, OUT kind text, OUT table_name name,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT suggestion text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    r record;
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    SELECT n.nspname, cl.relname, cl.relkind,
           coalesce(it.relname, ot.relname) AS owner
      INTO c
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
      LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
     WHERE cl.oid = rel;
    IF NOT FOUND THEN
        IF missing_ok THEN
            method := 'relation no longer exists';
            RETURN;
        END IF;
        RAISE EXCEPTION 'relation with OID % does not exist', rel
              USING ERRCODE = 'undefined_table';
    END IF;
    IF c.relkind NOT IN ('r', 'm', 't', 'i', 'p', 'I') THEN
        RAISE EXCEPTION '"%" is not a table, materialized view, index or TOAST table', c.relname
              USING ERRCODE = 'wrong_object_type',
                    DETAIL = 'Only those have pages whose bloat can be measured.';
    END IF;

    schemaname := c.nspname;
    relname := c.relname;
    kind := CASE c.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                           ELSE 'table' END;
    table_name := c.owner;

    IF c.relkind IN ('p', 'I') THEN
        method := CASE c.relkind WHEN 'p' THEN 'partitioned table: see its partitions'
                                 ELSE 'partitioned index: see its partitions' END;
        RETURN;
    ELSIF mode = 'estimate' THEN
        r := adr_ops._bloat_estimate(rel);
    ELSE
        r := adr_ops._bloat_scan(rel, mode = 'exact', min_bytes);
    END IF;

    total_bytes := r.total_bytes;
    bloat_bytes := r.bloat_bytes;
    bloat_pct := round(r.bloat_pct::numeric, 2);
    dead_pct := round(r.dead_pct::numeric, 2);
    free_pct := round(r.free_pct::numeric, 2);
    method := r.method;
    error_pct := round(r.error_pct::numeric, 2);
    suggestion := CASE
        WHEN kind = 'index' AND r.bloat_pct >= 30
            THEN format('REINDEX INDEX CONCURRENTLY %I.%I', c.nspname, c.relname)
        WHEN kind <> 'index' AND (r.vacuum_pct >= 10 OR r.dead_pct >= 10)
            THEN 'VACUUM'
        WHEN kind <> 'index' AND r.bloat_pct >= 50
            THEN 'VACUUM FULL or pg_repack'
        WHEN r.bloat_pct IS NOT NULL
            THEN 'nothing'
        END;
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) IS
    'API: private. One row of the bloat report';
REVOKE ALL ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) TO pg_monitor;

CREATE FUNCTION adr_ops.adr_bloat(rel regclass, mode text DEFAULT 'sample',
    OUT schemaname name, OUT relname name, OUT kind text, OUT table_name name,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT suggestion text)
RETURNS record
LANGUAGE sql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM adr_ops._bloat_row(rel, mode, 0, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat(regclass, text) IS
    'bloat of one table, materialized view, TOAST table or btree index: total_bytes, bloat_bytes and bloat_pct (dead tuples + free space beyond the fillfactor reserve), dead_pct, free_pct, method (estimate / sample / exact, or why the figures are NULL), error_pct (sample''s 95% bound) and suggestion; mode estimate (statistics), sample (default: adr_ops.bloat_sample_pages pages read) or exact (every page); sample and exact need superuser or pg_stat_scan_tables: the runbook''s "check for bloat"';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_bloat(regclass, text) TO pg_monitor;

-- The report: every table, materialized view, btree or other index of a
-- table, and TOAST table outside pg_catalog and information_schema (TOAST
-- tables and indexes go with their table's schema), whose main fork is at
-- least min_bytes (a relation whose size cannot be read without waiting
-- for a lock is listed, with "lock not available").  Partitioned tables
-- have no pages: their partitions are listed.  schema_filter is a LIKE
-- pattern on the schema name.  A relation dropped while the report runs
-- (after the candidates were listed) is left out, not an error.  Largest
-- bloat first.
CREATE FUNCTION adr_ops.adr_bloat_report(min_bytes bigint DEFAULT 1048576,
    mode text DEFAULT 'estimate', schema_filter text DEFAULT NULL)
RETURNS TABLE (schemaname name, relname name, kind text, table_name name,
    total_bytes bigint, bloat_bytes bigint, bloat_pct float8,
    dead_pct float8, free_pct float8, method text,
    error_pct float8, suggestion text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    RETURN QUERY
    SELECT r.*
      FROM (SELECT cl.oid, adr_ops._bloat_size(cl.oid) AS size
              FROM pg_class cl
              LEFT JOIN pg_index i ON i.indexrelid = cl.oid
              LEFT JOIN pg_class it ON it.oid = i.indrelid
              LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
              JOIN pg_namespace owner ON owner.oid = coalesce(ot.relnamespace, cl.relnamespace)
             WHERE cl.relkind IN ('r', 'm', 't', 'i')
               AND (cl.relkind <> 't' OR ot.oid IS NOT NULL)
               AND (cl.relkind <> 'i' OR it.relkind IN ('r', 'm'))
               AND owner.nspname NOT IN ('pg_catalog', 'information_schema')
               AND owner.nspname !~ '^pg_toast'
               AND (schema_filter IS NULL OR owner.nspname LIKE schema_filter)
            OFFSET 0) cand
      CROSS JOIN LATERAL adr_ops._bloat_row(cand.oid, mode, coalesce(min_bytes, 0), true) r
     WHERE (cand.size IS NULL OR cand.size >= coalesce(min_bytes, 0))
       AND r.method IS DISTINCT FROM 'below min_bytes'
       AND r.method IS DISTINCT FROM 'relation no longer exists'
     ORDER BY r.bloat_bytes DESC NULLS LAST, r.schemaname, r.relname;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) IS
    'bloat of every table, materialized view, index and TOAST table of at least min_bytes (schema_filter: a LIKE pattern on the schema), largest bloat first, one adr_bloat() row each in the given mode (estimate by default; sample and exact need superuser or pg_stat_scan_tables): the runbook''s "check for bloat"';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) TO pg_monitor;
