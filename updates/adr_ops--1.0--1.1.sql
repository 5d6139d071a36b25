-- adr_ops 1.0 -> 1.1.  Every SQL change made since 1.0 is here as well as in
-- src/*.sql (which build the full 1.1 script); t/013_upgrade.pl proves that
-- an installation updated through this script equals a fresh one.
\echo Use "ALTER EXTENSION adr_ops UPDATE TO '1.1'" to load this file. \quit

-- Health checks are registered in a table instead of a list inside
-- adr_health_check(), and a new check reports the library's version
-- against the SQL objects' (src/health.sql).
-- The checks adr_health_check() runs, in report order.  A row names the
-- function adr_ops._check_<name>() that returns the check's readings; each
-- concern registers its own checks beside their functions, so adding one
-- touches no other file.  Members of the extension, not configuration.
CREATE TABLE adr_ops.health_checks (
    name text PRIMARY KEY,
    position integer NOT NULL UNIQUE
);
COMMENT ON TABLE adr_ops.health_checks IS
    'the checks adr_health_check() runs, in report order: each names a function adr_ops._check_<name>()';
GRANT SELECT ON adr_ops.health_checks TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES
    ('connections', 10), ('disk', 20), ('memory', 30), ('load', 40),
    ('long_transactions', 50), ('idle_in_transaction', 60), ('blocked_sessions', 70),
    ('xid_wraparound', 80), ('replication', 90), ('cache_hit_ratio', 100),
    ('recent_errors', 110), ('probes', 120), ('maintenance_mode', 130),
    ('backup_verification', 140), ('extension_version', 150);

-- The library a server runs and the SQL objects of this database come from
-- separate steps of an upgrade (a package upgrade and a restart, then ALTER
-- EXTENSION adr_ops UPDATE in each database): WARNING while they differ.
CREATE FUNCTION adr_ops._check_extension_version() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'extension_version', NULL::numeric, NULL::text,
           CASE WHEN l.version = e.extversion
                THEN format('library and SQL objects are version %s', l.version)
                ELSE format('the library is version %s but the SQL objects of database %I are version %s: run ALTER EXTENSION adr_ops UPDATE in it',
                            l.version, current_database(), e.extversion) END,
           NULL::text,
           CASE WHEN l.version <> e.extversion THEN 'WARNING' END
      FROM pg_extension e,
           (SELECT v.version FROM adr_ops.adr_version() v WHERE v.component = 'adr_ops') l
     WHERE e.extname = 'adr_ops'
$$;

REVOKE ALL ON FUNCTION adr_ops._check_extension_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_extension_version() TO pg_monitor;

CREATE OR REPLACE FUNCTION adr_ops.adr_health_check(
    OUT check_name text, OUT status text, OUT value numeric, OUT unit text,
    OUT warn numeric, OUT crit numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
    msg text;
    msg_detail text;
    msg_hint text;
    part adr_ops._health_reading[];
    readings adr_ops._health_reading[] := '{}';
BEGIN
    FOR c IN SELECT hc.name FROM adr_ops.health_checks hc ORDER BY hc.position LOOP
        BEGIN
            EXECUTE format('SELECT array_agg(r) FROM adr_ops.%I() r', '_check_' || c) INTO part;
            readings := readings || coalesce(part, '{}');
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, msg_detail = PG_EXCEPTION_DETAIL,
                                    msg_hint = PG_EXCEPTION_HINT;
            readings := readings || ROW(c, NULL, NULL, NULL,
                                        concat_ws(' ', msg || '.', nullif(msg_detail, ''),
                                                  nullif(msg_hint, '')), NULL)::adr_ops._health_reading;
        END;
    END LOOP;

    RETURN QUERY
    WITH judged AS (
        SELECT r.*, t.warn, t.crit,
               CASE WHEN r.unknown IS NOT NULL THEN 'UNKNOWN'
                    WHEN r.value IS NULL OR t.warn IS NULL THEN 'OK'
                    WHEN t.warn > t.crit THEN
                         CASE WHEN r.value < t.crit THEN 'CRITICAL'
                              WHEN r.value < t.warn THEN 'WARNING' ELSE 'OK' END
                    ELSE CASE WHEN r.value > t.crit THEN 'CRITICAL'
                              WHEN r.value > t.warn THEN 'WARNING' ELSE 'OK' END
               END AS judged
          FROM unnest(readings) WITH ORDINALITY AS r
          -- a row for the object ("disk_tablespace:fast") wins over the
          -- row for its kind ("disk_tablespace")
          LEFT JOIN LATERAL (
                SELECT h.warn, h.crit FROM adr_ops.health_thresholds h
                 WHERE h.check_name IN (r.check_name, split_part(r.check_name, ':', 1))
                 ORDER BY h.check_name = r.check_name DESC LIMIT 1) t ON true
    )
    SELECT j.check_name,
           CASE WHEN j.at_least = 'CRITICAL' OR j.judged = 'CRITICAL' THEN 'CRITICAL'
                WHEN j.at_least = 'WARNING' AND j.judged = 'OK' THEN 'WARNING'
                ELSE j.judged END,
           CASE WHEN j.unknown IS NULL THEN j.value END,
           j.unit, j.warn, j.crit,
           coalesce(j.unknown, j.detail)
      FROM judged j
     ORDER BY j.ordinality;
END
$$;

-- adr_version() also reports the version of the SQL objects (src/info.sql).
COMMENT ON FUNCTION adr_ops.adr_version() IS
    'versions of the adr_ops library and of its SQL objects in this database, the PostgreSQL it was built for, libcurl and its TLS library';

-- Issue 20: the bloat estimate in one set-based pass (src/bloat.sql).
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

CREATE OR REPLACE FUNCTION adr_ops._bloat_estimate(rel oid,
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

CREATE OR REPLACE FUNCTION adr_ops._bloat_row(rel oid, mode text, min_bytes bigint,
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

CREATE OR REPLACE FUNCTION adr_ops.adr_bloat_report(min_bytes bigint DEFAULT 1048576,
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
    IF mode = 'estimate' THEN
        -- One pass: the candidates, then _bloat_estimates() of all of
        -- them at once, the names and suggestions as _bloat_row() gives
        -- them.
        RETURN QUERY
        WITH cand AS MATERIALIZED (
            SELECT cl.oid, n.nspname, cl.relname, cl.relkind,
                   coalesce(it.relname, ot.relname) AS owner
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
               AND (schema_filter IS NULL OR owner.nspname LIKE schema_filter)
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

-- Issue 20: report figures rounded to what they mean (src/statements.sql, src/perf.sql, src/jobs.sql).
CREATE OR REPLACE FUNCTION adr_ops.adr_slow_queries(
    min_mean_ms float8 DEFAULT 1000, max_rows integer DEFAULT 10, since interval DEFAULT NULL,
    OUT queryid bigint, OUT dbname name, OUT username name, OUT calls bigint,
    OUT total_ms float8, OUT mean_ms float8, OUT max_ms float8, OUT stddev_ms float8,
    OUT rows bigint, OUT hit_ratio float8, OUT pct_of_total float8, OUT query text,
    OUT partial boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base adr_ops.statement_snapshots;
    reset_in_window boolean;
    short_history boolean;
BEGIN
    IF adr_slow_queries.min_mean_ms IS NULL OR adr_slow_queries.max_rows IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'min_mean_ms and max_rows must not be null';
    END IF;

    IF adr_slow_queries.since IS NULL THEN
        -- One pass over the view: the total for pct_of_total and the slow
        -- entries together, so that the 5000 texts are not copied twice.
        RETURN QUERY EXECUTE format($q$
            WITH agg AS (
                SELECT sum(s.total_ms) FILTER (WHERE s.toplevel) AS grand,
                       array_agg(s) FILTER (WHERE s.calls > 0 AND s.total_ms / s.calls > $1) AS slow
                  FROM (%s) s)
            SELECT x.queryid, d.datname, r.rolname, x.calls, round(x.total_ms::numeric, 2)::float8,
                   round((x.total_ms / x.calls)::numeric, 2)::float8,
                   round(x.max_ms::numeric, 2)::float8, round(x.stddev_ms::numeric, 2)::float8, x.rows,
                   round((x.blks_hit::float8 / nullif(x.blks_hit + x.blks_read, 0))::numeric, 3)::float8,
                   round((100 * x.total_ms / nullif(agg.grand, 0))::numeric, 1)::float8,
                   x.query, false
              FROM agg
             CROSS JOIN LATERAL unnest(agg.slow)
                   AS x(userid oid, dbid oid, toplevel boolean, queryid bigint, query text,
                        calls bigint, total_ms float8, max_ms float8, stddev_ms float8,
                        rows bigint, blks_hit bigint, blks_read bigint)
              LEFT JOIN pg_database d ON d.oid = x.dbid
              LEFT JOIN pg_roles r ON r.oid = x.userid
             ORDER BY x.total_ms / x.calls DESC, x.queryid
             LIMIT $2$q$, adr_ops._pgss_query(true))
        USING adr_slow_queries.min_mean_ms, adr_slow_queries.max_rows;
        RETURN;
    END IF;

    SELECT * INTO base FROM adr_ops.statement_snapshots s
     WHERE s.taken_at <= now() - adr_slow_queries.since ORDER BY s.taken_at DESC LIMIT 1;
    short_history := NOT FOUND;
    IF short_history THEN
        SELECT * INTO base FROM adr_ops.statement_snapshots s ORDER BY s.taken_at LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = 'there is no statement snapshot to measure from',
                DETAIL = 'With since, the figures are deltas from a snapshot taken by adr_snapshot_statements().',
                HINT = 'Call adr_snapshot_statements(), or let the statement_snapshot schedule take one.';
        END IF;
    END IF;
    -- The snapshot recorded the reset time it saw; another one now means a
    -- reset since.
    reset_in_window := adr_ops._pgss_reset_at() IS DISTINCT FROM base.stats_reset;
    -- Before the retention cutoff baselines may have been pruned.
    short_history := short_history OR base.taken_at < now() - adr_ops._snapshot_retention();

    RETURN QUERY EXECUTE format($q$
        WITH cur AS (%s),
        b AS (SELECT DISTINCT ON (c.queryid, c.userid, c.dbid, c.toplevel) c.*
                FROM adr_ops.statement_counters c
               WHERE c.snapshot_id <= $1
               ORDER BY c.queryid, c.userid, c.dbid, c.toplevel, c.snapshot_id DESC),
        d AS (SELECT cur.*,
                     -- no baseline: the entry is new in the window; counters
                     -- below the baseline: it was reset or evicted
                     $3 OR coalesce(b.calls > cur.calls OR b.total_ms > cur.total_ms OR b.rows > cur.rows
                                    OR b.blks_hit > cur.blks_hit OR b.blks_read > cur.blks_read,
                                    false) AS reset,
                     b.calls AS b_calls, b.total_ms AS b_total, b.rows AS b_rows,
                     b.blks_hit AS b_hit, b.blks_read AS b_read
                FROM cur LEFT JOIN b
                  ON (b.queryid, b.userid, b.dbid, b.toplevel) = (cur.queryid, cur.userid, cur.dbid, cur.toplevel)),
        w AS (SELECT d.queryid, d.userid, d.dbid, d.toplevel, d.query,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.calls ELSE d.calls - d.b_calls END AS calls,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.total_ms ELSE d.total_ms - d.b_total END AS total_ms,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.rows ELSE d.rows - d.b_rows END AS rows,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_hit ELSE d.blks_hit - d.b_hit END AS hit,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_read ELSE d.blks_read - d.b_read END AS rd,
                     d.reset OR $4 AS partial
                FROM d)
        SELECT w.queryid, db.datname, r.rolname, w.calls, round(w.total_ms::numeric, 2)::float8,
               round((w.total_ms / w.calls)::numeric, 2)::float8,
               NULL::float8, NULL::float8, w.rows,
               round((w.hit::float8 / nullif(w.hit + w.rd, 0))::numeric, 3)::float8,
               round((100 * w.total_ms / nullif((SELECT sum(a.total_ms) FROM w a WHERE a.toplevel), 0))::numeric, 1)::float8,
               w.query, w.partial
          FROM w
          LEFT JOIN pg_database db ON db.oid = w.dbid
          LEFT JOIN pg_roles r ON r.oid = w.userid
         WHERE w.calls > 0 AND w.total_ms / w.calls > $2
         ORDER BY w.total_ms / w.calls DESC, w.queryid
         LIMIT $5$q$, adr_ops._pgss_query(true))
    USING base.id, adr_slow_queries.min_mean_ms, coalesce(reset_in_window, false), short_history,
          adr_slow_queries.max_rows;
END
$$;

CREATE OR REPLACE FUNCTION adr_ops.adr_query_trend(queryid bigint, since interval DEFAULT '7 days',
    OUT interval_start timestamptz, OUT interval_end timestamptz,
    OUT calls bigint, OUT total_ms float8, OUT mean_ms float8)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH snaps AS (
        SELECT s.id, s.taken_at, lag(s.taken_at) OVER (ORDER BY s.taken_at) AS prev_at
          FROM adr_ops.statement_snapshots s
    ), rows AS (
        SELECT c.snapshot_id, c.calls, c.total_ms,
               lag(c.calls) OVER w AS prev_calls, lag(c.total_ms) OVER w AS prev_total
          FROM adr_ops.statement_counters c
         WHERE c.queryid = adr_query_trend.queryid
        WINDOW w AS (PARTITION BY c.userid, c.dbid, c.toplevel ORDER BY c.snapshot_id)
    ), deltas AS (
        -- a first sighting, or counters that went down (a reset), count whole
        SELECT r.snapshot_id,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.calls ELSE r.calls - r.prev_calls END) AS calls,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.total_ms ELSE r.total_ms - r.prev_total END) AS total_ms
          FROM rows r GROUP BY r.snapshot_id
    )
    SELECT s.prev_at, s.taken_at, coalesce(d.calls, 0)::bigint,
           round(coalesce(d.total_ms, 0)::numeric, 2)::float8,
           round((d.total_ms / nullif(d.calls, 0))::numeric, 2)::float8
      FROM snaps s LEFT JOIN deltas d ON d.snapshot_id = s.id
     WHERE s.taken_at >= now() - adr_query_trend.since AND s.prev_at IS NOT NULL
     ORDER BY s.taken_at
$$;
CREATE OR REPLACE FUNCTION adr_ops.adr_cache_stats(
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

-- Issue 20: adr_index_advice() without JIT (src/perf.sql).
CREATE OR REPLACE FUNCTION adr_ops.adr_index_advice(
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
CREATE OR REPLACE FUNCTION adr_ops.adr_pipeline_status(since interval DEFAULT '24 hours',
    OUT pipeline text, OUT queued bigint, OUT running bigint, OUT succeeded bigint,
    OUT failed bigint, OUT cancelled bigint, OUT failure_rate float8,
    OUT p50_duration interval, OUT p95_duration interval,
    OUT oldest_queued timestamptz, OUT stuck_running bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.pipeline,
           count(*) FILTER (WHERE p.status = 'queued'),
           count(*) FILTER (WHERE p.status = 'running'),
           count(*) FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'cancelled' AND p.completed_at >= now() - since),
           round(((count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since))::float8
                  / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')
                                              AND p.completed_at >= now() - since), 0))::numeric, 3)::float8,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           min(p.run_after) FILTER (WHERE p.status = 'queued' AND p.run_after <= now()),
           count(*) FILTER (WHERE p.status = 'running'
                              AND p.heartbeat_at < now() - adr_ops._job_stale_after())
      FROM adr_ops.processing_jobs p
     WHERE p.status IN ('queued', 'running') OR p.completed_at >= now() - since
     GROUP BY p.pipeline
     ORDER BY p.pipeline
$$;
