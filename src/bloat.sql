
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

-- API: private.  Mode estimate, the arithmetic: one relation's figures from
-- what _bloat_estimates() read for it in its one pass over the catalogs
-- and statistics (no query here).  Same columns as _bloat_scan.
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
--
-- c: the relation (pg_class, its access method, the main fork's bytes);
-- i: its pg_index row (NULL unless an index); t: the table whose
-- statistics count (itself, or the index's table; NULL if gone) with its
-- pg_stat counters; the stored columns in order (every live column of a
-- table, the key and INCLUDE columns of an index), NULL widths where
-- pg_stats has no row; no_access: the caller may not read one of them.
CREATE FUNCTION adr_ops._bloat_estimate_calc(
    c_found bool, relkind "char", amname name, relpersistence "char",
    relpages int4, reltuples float4, reloptions text[], size bigint,
    i_found bool, indisunique bool, indisvalid bool, has_expr bool,
    has_pred bool, has_include bool,
    t_found bool, t_reltuples float4, n_live_tup bigint, n_dead_tup bigint,
    n_mod_since_analyze bigint, no_access bool, ncols int,
    attlens int2[], attaligns "char"[], avg_widths int4[], null_fracs float4[],
    n_distincts float4[],
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bs int := current_setting('block_size')::int;
    ff int;
    hdr numeric;
    off numeric := 0;
    nulls bool := false;
    width numeric;
    per_page numeric;
    pages numeric;
    leaves numeric;
    nstats int := 0;
    distinct_key bool := false;
    live numeric;
    actual numeric;
    attlen int2;
    attalign "char";
    avg_width int4;
    null_frac float4;
    n_distinct float4;
BEGIN
    IF NOT c_found THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;
    -- On a hot standby an unlogged relation has no main fork, no pages.
    IF relpersistence = 'u' AND pg_is_in_recovery() THEN
        method := 'unlogged relation during recovery';
        RETURN;
    END IF;
    total_bytes := coalesce(size, relpages::bigint * bs);

    IF relkind = 't' THEN
        method := 'no statistics (TOAST tables are not analyzed)';
        RETURN;
    ELSIF relkind = 'i' AND amname IS DISTINCT FROM 'btree' THEN
        method := format('unsupported: %s index', amname);
        RETURN;
    ELSIF relkind IN ('r', 'm') AND amname IS DISTINCT FROM 'heap' THEN
        method := format('unsupported: table access method %s', amname);
        RETURN;
    END IF;

    IF relkind = 'i' THEN
        IF NOT i_found THEN
            method := 'relation no longer exists';
            RETURN;
        ELSIF has_expr THEN
            method := 'expression index';
            RETURN;
        ELSIF has_pred THEN
            method := 'partial index';
            RETURN;
        ELSIF NOT indisvalid THEN
            method := 'invalid index';
            RETURN;
        END IF;
    END IF;
    IF NOT t_found THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;

    IF no_access THEN
        method := 'no access to pg_stats';
        RETURN;
    END IF;
    -- Never vacuumed nor analyzed.  (A table analyzed once has pg_stats
    -- rows even after the statistics counters were reset, which clears
    -- last_analyze: the columns below decide.)
    IF reltuples < 0 THEN
        method := 'no statistics';
        RETURN;
    END IF;
    live := CASE WHEN coalesce(n_live_tup, 0) + coalesce(n_dead_tup, 0) > 0
                 THEN n_live_tup ELSE greatest(t_reltuples, 0) END;
    actual := ceil(total_bytes::numeric / bs);

    FOR k IN 1 .. coalesce(ncols, 0) LOOP
        CONTINUE WHEN avg_widths[k] IS NULL;
        attlen := attlens[k];
        attalign := attaligns[k];
        avg_width := avg_widths[k];
        null_frac := null_fracs[k];
        n_distinct := n_distincts[k];
        nstats := nstats + 1;
        IF null_frac > 0 THEN
            nulls := true;
        END IF;
        -- Alignment: a varlena shorter than 127 bytes has a 1-byte header
        -- and is not aligned.
        IF NOT (attlen = -1 AND avg_width < 127) THEN
            off := ceil(off / CASE attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4
                                            WHEN 's' THEN 2 ELSE 1 END)
                   * CASE attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4 WHEN 's' THEN 2 ELSE 1 END;
        END IF;
        off := off + avg_width * (1 - null_frac);
        -- A column whose values are (nearly) all distinct makes every key
        -- distinct: nothing for deduplication to pack.
        IF n_distinct < -0.95 OR n_distinct > 0.95 * greatest(t_reltuples, 1) THEN
            distinct_key := true;
        END IF;
    END LOOP;
    IF nstats < coalesce(ncols, 0) THEN
        method := 'no statistics';
        RETURN;
    END IF;
    -- The widths are ANALYZE's; the row count need not be: the statistics
    -- collector's n_live_tup follows every insert and delete (after a
    -- reset of the counters it is 0: then reltuples).  Widths older than
    -- modifications of half the table are stale.  (Checked after the
    -- columns: a table VACUUM has seen but ANALYZE never has has no
    -- statistics, which says more than stale ones.)
    IF n_mod_since_analyze > 0.5 * greatest(t_reltuples, 1000) THEN
        method := 'stale statistics';
        RETURN;
    END IF;
    -- A non-unique btree (13 and later) with duplicate keys: deduplication
    -- packs them into posting lists, by an amount pg_stats cannot tell.
    IF relkind = 'i' AND NOT indisunique AND NOT has_include AND NOT distinct_key
       AND coalesce((SELECT o.option_value FROM pg_options_to_table(reloptions) o
                      WHERE o.option_name = 'deduplicate_items'), 'on') NOT IN ('off', 'false', '0')
       AND current_setting('server_version_num')::int >= 130000 THEN
        method := 'deduplicated btree';
        RETURN;
    END IF;

    IF relkind = 'i' THEN
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(reloptions) o
                         WHERE o.option_name = 'fillfactor'), 90);
        hdr := 8 + CASE WHEN nulls THEN 4 ELSE 0 END;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Entries: the index's count at its last VACUUM or ANALYZE (dead
        -- rows keep theirs until VACUUM), or more if rows came since.  A
        -- page takes at least one entry, whatever the fillfactor (at
        -- fillfactor 10 a key wider than about 800 bytes is more than the
        -- fill).
        leaves := ceil(greatest(reltuples, live, 0)
                       / greatest(floor((bs - 24 - 16) * ff / 100.0 / width), 1));
        pages := 1 + leaves + CASE WHEN leaves > 1
                                   THEN ceil(leaves / greatest(floor((bs - 24 - 16) * 0.7 / width), 1))
                                   ELSE 0 END;
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(100.0 * (actual - pages) / actual, 0) ELSE 0 END;
    ELSE
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(reloptions) o
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
        dead_pct := round(100.0 * coalesce(n_dead_tup, 0) * width / greatest(total_bytes, bs), 2);
        vacuum_pct := 100.0 * coalesce(n_dead_tup, 0)
                      / greatest(coalesce(n_live_tup, 0) + coalesce(n_dead_tup, 0), 1);
    END IF;
    bloat_bytes := round(bloat_pct / 100 * total_bytes);
    method := 'estimate';
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) IS
    'API: private. The arithmetic of the bloat estimate for one relation, from what _bloat_estimates read';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) TO pg_monitor;

-- API: private.  Mode estimate for a set of relations (tables, materialized
-- views, TOAST tables, btree indexes), in one pass over the catalogs and
-- statistics: pg_class, pg_index, pg_attribute, pg_stats and the pg_stat
-- counters are each joined once for the whole set, and
-- _bloat_estimate_calc() does the arithmetic of each row.  Its cost grows
-- with the size of the set, not with the number of relations in the
-- database: the plan is made for the set given (EXECUTE), so one relation
-- reads its own catalog rows through their indexes and thousands are read
-- with hash joins.  sizes, if given, are the relations' _bloat_size()
-- (the report has them already).  A relation that does not exist gives a row with
-- method "relation no longer exists".  Runs as the caller: pg_stats shows
-- a column's statistics only to roles that may read the column, and a
-- role that cannot gets "no access to pg_stats".
CREATE FUNCTION adr_ops._bloat_estimates(rels oid[], sizes bigint[] DEFAULT NULL)
RETURNS TABLE (rel oid, total_bytes bigint, bloat_bytes bigint, bloat_pct float8,
    dead_pct float8, free_pct float8, method text, error_pct float8, vacuum_pct float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
    WITH r AS (
        SELECT x.rel, cl.oid IS NOT NULL AS c_found, cl.relkind, am.amname,
               cl.relpersistence, cl.relpages, cl.reltuples, cl.reloptions,
               CASE WHEN $2 IS NOT NULL THEN x.size
                    WHEN cl.relpersistence = 'u' AND pg_is_in_recovery() THEN NULL
                    ELSE adr_ops._bloat_size(cl.oid) END AS size,
               i.indexrelid IS NOT NULL AS i_found, i.indisunique, i.indisvalid,
               i.indexprs IS NOT NULL AS has_expr, i.indpred IS NOT NULL AS has_pred,
               i.indnkeyatts < i.indnatts AS has_include, i.indkey::int2[] AS keys,
               t.oid AS toid, t.relname AS tname, tn.nspname AS tnsp, t.reltuples AS t_reltuples
          FROM unnest($1, $2) AS x(rel, size)
          LEFT JOIN pg_class cl ON cl.oid = x.rel
          LEFT JOIN pg_am am ON am.oid = cl.relam
          LEFT JOIN pg_index i ON cl.relkind = 'i' AND i.indexrelid = cl.oid
          LEFT JOIN pg_class t ON t.oid = CASE WHEN cl.relkind = 'i' THEN i.indrelid ELSE cl.oid END
          LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
    ), cols AS (
        SELECT r.rel, count(*)::int AS ncols,
               bool_or(NOT has_column_privilege(r.toid, at.attnum, 'SELECT')) AS no_access,
               array_agg(at.attlen ORDER BY pos) AS attlens,
               array_agg(at.attalign ORDER BY pos) AS attaligns,
               array_agg(ps.avg_width ORDER BY pos) AS avg_widths,
               array_agg(ps.null_frac ORDER BY pos) AS null_fracs,
               array_agg(ps.n_distinct ORDER BY pos) AS n_distincts
          FROM r
          JOIN pg_attribute at ON at.attrelid = r.toid AND NOT at.attisdropped AND at.attnum > 0
                              AND (r.relkind <> 'i' OR at.attnum = ANY (r.keys))
          LEFT JOIN %s
          CROSS JOIN LATERAL (SELECT CASE WHEN r.relkind = 'i' THEN array_position(r.keys, at.attnum)
                                          ELSE at.attnum END AS pos) p
         WHERE r.relkind <> 't'
         GROUP BY r.rel
    )
    SELECT r.rel, e.*
      FROM r
      LEFT JOIN cols ON cols.rel = r.rel
      CROSS JOIN LATERAL adr_ops._bloat_estimate_calc(
          r.c_found, r.relkind, r.amname, r.relpersistence, r.relpages, r.reltuples,
          r.reloptions, r.size, r.i_found, r.indisunique, r.indisvalid, r.has_expr,
          r.has_pred, r.has_include, r.toid IS NOT NULL, r.t_reltuples,
          pg_stat_get_live_tuples(r.toid), pg_stat_get_dead_tuples(r.toid),
          pg_stat_get_mod_since_analyze(r.toid), coalesce(cols.no_access, false),
          coalesce(cols.ncols, 0), cols.attlens, cols.attaligns, cols.avg_widths,
          cols.null_fracs, cols.n_distincts) e
    $q$,
    -- A few relations: each one's pg_stats rows through the indexes of
    -- pg_class, pg_attribute and pg_statistic (a subquery the planner
    -- keeps, OFFSET 0: joined on the names it would read all of pg_stats
    -- even for one relation); more: pg_stats read once, hash-joined.
    CASE WHEN cardinality(rels) <= 100
         THEN $s$LATERAL (SELECT s.avg_width, s.null_frac, s.n_distinct FROM pg_stats s
                         WHERE s.schemaname OPERATOR(pg_catalog.=) r.tnsp
                           AND s.tablename OPERATOR(pg_catalog.=) r.tname
                           AND s.attname OPERATOR(pg_catalog.=) at.attname
                           AND NOT s.inherited
                        OFFSET 0) ps ON true$s$
         ELSE $s$(SELECT s.schemaname, s.tablename, s.attname, s.avg_width, s.null_frac,
                        s.n_distinct FROM pg_stats s WHERE NOT s.inherited) ps
                 ON ps.schemaname OPERATOR(pg_catalog.=) r.tnsp
                AND ps.tablename OPERATOR(pg_catalog.=) r.tname
                AND ps.attname OPERATOR(pg_catalog.=) at.attname$s$
         END) USING rels, sizes;
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) IS
    'API: private. Bloat estimated from statistics for a set of relations, in one pass over the catalogs and statistics';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) TO pg_monitor;

-- API: private.  Mode estimate for one table, materialized view, TOAST
-- table or btree index (_bloat_estimates() of that one: it reads that
-- relation's catalog rows only); same columns as _bloat_scan.
CREATE FUNCTION adr_ops._bloat_estimate(rel oid,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE sql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.total_bytes, e.bloat_bytes, e.bloat_pct, e.dead_pct, e.free_pct, e.method,
           e.error_pct, e.vacuum_pct
      FROM adr_ops._bloat_estimates(ARRAY[rel]) e
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
    -- A TOAST table's table through its dependency on it (pg_depend is
    -- indexed by the dependent object, reltoastrelid by nothing).
    SELECT n.nspname, cl.relname, cl.relkind,
           coalesce(it.relname,
                    (SELECT ot.relname FROM pg_depend d
                       JOIN pg_class ot ON ot.oid = d.refobjid AND ot.reltoastrelid = cl.oid
                      WHERE cl.relkind = 't' AND d.classid = 'pg_class'::regclass
                        AND d.objid = cl.oid AND d.objsubid = 0
                      LIMIT 1)) AS owner
      INTO c
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
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

-- The relations the report covers, from one scan of pg_class: tables,
-- materialized views, TOAST tables and btree or other indexes of tables,
-- outside pg_catalog, information_schema and the TOAST schemas (a TOAST
-- table or an index goes with its table's schema, which schema_filter, a
-- LIKE pattern, matches); owner is the index's or TOAST table's table.
CREATE FUNCTION adr_ops._bloat_candidates(schema_filter text)
RETURNS TABLE (oid oid, nspname name, relname name, relkind "char", owner name)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cl.oid, n.nspname, cl.relname, cl.relkind, coalesce(it.relname, ot.relname)
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
      LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
      JOIN pg_namespace owner ON owner.oid = coalesce(ot.relnamespace, cl.relnamespace)
     WHERE cl.relkind IN ('r', 'm', 't', 'i')
       AND (cl.relkind <> 't' OR ot.oid IS NOT NULL)
       AND (cl.relkind <> 'i' OR it.relkind IN ('r', 'm'))
       AND owner.nspname NOT IN ('pg_catalog', 'information_schema')
       AND owner.nspname !~ '^pg_toast'
       AND (_bloat_candidates.schema_filter IS NULL OR owner.nspname LIKE _bloat_candidates.schema_filter)
$$;
COMMENT ON FUNCTION adr_ops._bloat_candidates(text) IS
    'API: private. The relations adr_bloat_report() covers, with their schema and owning table';
REVOKE ALL ON FUNCTION adr_ops._bloat_candidates(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_candidates(text) TO pg_monitor;

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
DECLARE
    deadline timestamptz;
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    IF mode = 'estimate' THEN
        -- One pass: the candidates, then _bloat_estimates() of all of
        -- them at once, the names and suggestions as _bloat_row() gives
        -- them.
        RETURN QUERY
        WITH cand AS MATERIALIZED (
            SELECT * FROM adr_ops._bloat_candidates(schema_filter)
        ), sized AS MATERIALIZED (
            SELECT cand.*, adr_ops._bloat_size(cand.oid) AS size FROM cand
        ), listed AS MATERIALIZED (
            SELECT sized.oid, sized.size FROM sized
             WHERE sized.size IS NULL OR sized.size >= coalesce(min_bytes, 0)
        ), e AS (
            SELECT * FROM adr_ops._bloat_estimates(ARRAY(SELECT listed.oid FROM listed ORDER BY listed.oid),
                                                   ARRAY(SELECT listed.size FROM listed ORDER BY listed.oid))
        ), k AS (
            SELECT sized.nspname, sized.relname,
                   CASE sized.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
                   sized.owner, e.*
              FROM sized JOIN e ON e.rel = sized.oid
             WHERE e.method IS DISTINCT FROM 'relation no longer exists'
        )
        SELECT k.nspname, k.relname, k.kind, k.owner, k.total_bytes, k.bloat_bytes,
               round(k.bloat_pct::numeric, 2)::float8, round(k.dead_pct::numeric, 2)::float8,
               round(k.free_pct::numeric, 2)::float8, k.method, round(k.error_pct::numeric, 2)::float8,
               CASE
                   WHEN k.kind = 'index' AND k.bloat_pct >= 30
                       THEN format('REINDEX INDEX CONCURRENTLY %I.%I', k.nspname, k.relname)
                   WHEN k.kind <> 'index' AND (k.vacuum_pct >= 10 OR k.dead_pct >= 10)
                       THEN 'VACUUM'
                   WHEN k.kind <> 'index' AND k.bloat_pct >= 50
                       THEN 'VACUUM FULL or pg_repack'
                   WHEN k.bloat_pct IS NOT NULL
                       THEN 'nothing'
                   END
          FROM k
         ORDER BY k.bloat_bytes DESC NULLS LAST, k.nspname, k.relname;
        RETURN;
    END IF;
    -- Pages are read largest relation first, until adr_ops.bloat_report_timeout
    -- (0: no limit); the relations not reached are listed with no figures.
    deadline := clock_timestamp()
                + nullif(coalesce(current_setting('adr_ops.bloat_report_timeout', true), '1min')::interval,
                         interval '0');
    RETURN QUERY
    SELECT r.*
      FROM (SELECT c.*, adr_ops._bloat_size(c.oid) AS size
              FROM adr_ops._bloat_candidates(schema_filter) c
             ORDER BY 6 DESC NULLS LAST, 1
            OFFSET 0) cand
      -- clock_timestamp() once per relation, before its pages are read (the
      -- reference to cand makes the subquery run again for each)
      CROSS JOIN LATERAL (SELECT cand.oid IS NOT NULL AND (deadline IS NULL OR clock_timestamp() < deadline)
                                 AS in_time OFFSET 0) t
      CROSS JOIN LATERAL (
            SELECT b.* FROM adr_ops._bloat_row(cand.oid, mode, coalesce(min_bytes, 0), true) b
             WHERE t.in_time
            UNION ALL
            SELECT cand.nspname, cand.relname,
                   CASE cand.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' ELSE 'table' END,
                   cand.owner, cand.size, NULL::bigint, NULL::float8, NULL::float8, NULL::float8,
                   'skipped: adr_ops.bloat_report_timeout reached', NULL::float8, NULL::text
             WHERE NOT t.in_time) r
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

-- The bloat snapshot: what adr_bloat_report() estimates, stored by the
-- bloat_snapshot task so that dashboards and adr_metrics() read bloat
-- without computing it at scrape time.  Only the top relations by bloat
-- bytes of each run are kept (a bounded table whatever the database's size).
CREATE TABLE adr_ops.bloat_history (
    taken_at timestamptz NOT NULL,
    schemaname name NOT NULL,
    relname name NOT NULL,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{table,index,toast}'::text[])),
    table_name name,
    total_bytes bigint NOT NULL,
    bloat_bytes bigint,
    bloat_pct double precision,
    method text,
    PRIMARY KEY (taken_at, schemaname, relname)
);
COMMENT ON TABLE adr_ops.bloat_history IS
    'bloat estimates stored by adr_bloat_snapshot() (the bloat_snapshot task): the top relations by bloat bytes of each run';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.bloat_history', '');
GRANT SELECT ON adr_ops.bloat_history TO pg_monitor;

-- One adr_bloat_report() in estimate mode (statistics only: no page is
-- read), its top relations by bloat bytes stored under one timestamp.
-- Returns the rows stored.
CREATE FUNCTION adr_ops.adr_bloat_snapshot(keep interval DEFAULT '30 days', top integer DEFAULT 50,
    min_bytes bigint DEFAULT 0)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM adr_ops.bloat_history WHERE taken_at < now() - keep
    ), taken AS (
        SELECT clock_timestamp() AS at
    ), stored AS (
        INSERT INTO adr_ops.bloat_history (taken_at, schemaname, relname, kind, table_name,
                                           total_bytes, bloat_bytes, bloat_pct, method)
        SELECT taken.at, r.schemaname, r.relname, r.kind, r.table_name,
               r.total_bytes, r.bloat_bytes, r.bloat_pct, r.method
          FROM taken,
               (SELECT b.* FROM adr_ops.adr_bloat_report(min_bytes, 'estimate') b
                 WHERE b.total_bytes IS NOT NULL
                 ORDER BY b.bloat_bytes DESC NULLS LAST, b.schemaname, b.relname
                 LIMIT greatest(top, 0)) r
        RETURNING 1
    )
    SELECT count(*)::integer FROM stored
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat_snapshot(interval, integer, bigint) IS
    'stores the top relations by estimated bloat bytes (adr_bloat_report() in estimate mode, relations of at least min_bytes) in bloat_history; drops rows older than keep';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat_snapshot(interval, integer, bigint) FROM PUBLIC;

-- Bloat from the latest snapshot (the bloat_snapshot task): a scrape never
-- estimates bloat itself.
CREATE FUNCTION adr_ops._metrics_bloat() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.bloat_history h
    ), rows AS (
        SELECT h.*, jsonb_build_object('relation', format('%s.%s', h.schemaname, h.relname), 'kind', h.kind) AS l
          FROM latest JOIN adr_ops.bloat_history h ON h.taken_at = latest.at
         WHERE h.bloat_bytes IS NOT NULL
    )
    SELECT 'adr_ops_relation_bloat_bytes', r.l, r.bloat_bytes::float8, 'gauge',
           'Estimated bloat of the most bloated relations (table, index, toast) in the latest bloat snapshot, in bytes.'
      FROM rows r
    UNION ALL
    SELECT 'adr_ops_relation_bloat_ratio', r.l, (r.bloat_pct / 100)::float8, 'gauge',
           'Estimated bloat over the size of the most bloated relations in the latest bloat snapshot, 0..1.'
      FROM rows r WHERE r.bloat_pct IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_bloat_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest bloat snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_bloat() IS
    'API: private. Bloat from the latest bloat snapshot';
REVOKE ALL ON FUNCTION adr_ops._metrics_bloat() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._metrics_bloat() TO pg_monitor;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('bloat', 90);

-- Bloat hourly, at a minute no other default schedule uses.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('bloat_snapshot', '23 * * * *', 'bloat_snapshot', pg_catalog.current_database());
