
-- quality: declarative data-quality checks, run as their owner in one scan
-- per relation, with history, trends, a health row per failing check and
-- the validation gate of pipeline jobs (runbook: Pipeline Monitoring,
-- Pipeline Failure Recovery) --

-- The checks.  owner is the role that created the check: its queries run
-- with that role's privileges, never the launcher's.  relation follows a
-- rename (regclass); relation_name keeps the name it had, for the message
-- when the relation is dropped.  Change them only through
-- adr_quality_check_add() and adr_quality_check_drop().
CREATE TABLE adr_ops.quality_checks (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE
        CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0
               AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 200),
    relation regclass,
    relation_name text,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{row_count,freshness,null_fraction,distinct_count,duplicate_count,accepted_values,range,length,regex,referential,schema,custom}'::text[])),
    params jsonb NOT NULL DEFAULT '{}',
    warn_level double precision,
    crit_level double precision,
    dataset text,
    blocking boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true,
    owner regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX quality_checks_dataset ON adr_ops.quality_checks (dataset);
COMMENT ON TABLE adr_ops.quality_checks IS
    'data-quality checks, each run with the privileges of its owner; change them through adr_quality_check_add() and adr_quality_check_drop()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_checks', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_checks_id_seq', '');
GRANT SELECT ON adr_ops.quality_checks TO pg_monitor;

-- One row per check per run.  sample holds a few failing rows (only the
-- check's columns, read as its owner): row data, so pg_monitor reads every
-- column but that one.
CREATE TABLE adr_ops.quality_results (
    id bigserial PRIMARY KEY,
    check_id bigint NOT NULL REFERENCES adr_ops.quality_checks (id) ON DELETE CASCADE,
    check_name text NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    status text NOT NULL
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{OK,WARNING,CRITICAL,UNKNOWN}'::text[])),
    metric double precision,
    duration_ms double precision,
    rows_scanned bigint,
    sample_percent double precision,
    error_bound double precision,
    detail text,
    sample jsonb,
    source text NOT NULL DEFAULT 'manual',
    job_id bigint
);
CREATE INDEX quality_results_check ON adr_ops.quality_results (check_id, ran_at);
CREATE INDEX quality_results_ran_at ON adr_ops.quality_results (ran_at);
COMMENT ON TABLE adr_ops.quality_results IS
    'results of the data-quality checks: metric, status, duration, and a bounded sample of failing rows';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_results', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_results_id_seq', '');
GRANT SELECT (id, check_id, check_name, ran_at, status, metric, duration_ms, rows_scanned,
              sample_percent, error_bound, detail, source, job_id)
    ON adr_ops.quality_results TO pg_monitor;

-- The executor (quality.c): the first column of the first row of a query,
-- run as owner under a security-restricted operation with a time budget.
CREATE FUNCTION adr_ops._quality_exec(owner oid, query text, timeout_ms integer) RETURNS text
AS 'MODULE_PATHNAME', 'adr_quality_exec'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION adr_ops._quality_exec(oid, text, integer) IS
    'API: private. Runs one query of a quality check as its owner, read-only, within timeout_ms';
REVOKE ALL ON FUNCTION adr_ops._quality_exec(oid, text, integer) FROM PUBLIC;

-- The columns a check reads: params column (text) or columns (array).
CREATE FUNCTION adr_ops._quality_columns(params jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(params -> 'columns') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(params -> 'columns'))
                WHEN params ? 'column' THEN ARRAY[params ->> 'column']
                ELSE '{}'::text[] END
$$;
COMMENT ON FUNCTION adr_ops._quality_columns(jsonb) IS
    'API: private. The column names a quality check reads';
REVOKE ALL ON FUNCTION adr_ops._quality_columns(jsonb) FROM PUBLIC;

-- The fingerprint of a relation's columns: name and type, in order.
CREATE FUNCTION adr_ops._quality_schema(rel regclass) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                              ORDER BY a.attnum), '[]')
      FROM pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION adr_ops._quality_schema(regclass) IS
    'API: private. The columns and types of a relation, for the schema check';
REVOKE ALL ON FUNCTION adr_ops._quality_schema(regclass) FROM PUBLIC;

-- The SQL of a check's failing rows, for the kinds that judge rows one by
-- one: identifiers through %I, parameters through %L, types as the catalog
-- writes them.  NULL for the other kinds.
CREATE FUNCTION adr_ops._quality_predicate(c adr_ops.quality_checks) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text := format('%I', c.params ->> 'column');
    typ text;
    p text[] := '{}';
BEGIN
    IF c.kind NOT IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex') THEN
        RETURN NULL;
    END IF;
    IF c.kind IN ('range', 'length') THEN
        SELECT format_type(a.atttypid, a.atttypmod) INTO typ
          FROM pg_attribute a
         WHERE a.attrelid = c.relation AND a.attname = c.params ->> 'column' AND NOT a.attisdropped;
    END IF;
    IF c.kind = 'null_fraction' THEN
        RETURN format('%s IS NULL', col);
    ELSIF c.kind = 'accepted_values' THEN
        RETURN format('%s IS NOT NULL AND (%s)::text <> ALL (%L::text[])', col, col,
                      ARRAY(SELECT jsonb_array_elements_text(c.params -> 'values')));
    ELSIF c.kind = 'regex' THEN
        RETURN format('%s IS NOT NULL AND (%s)::text !~ %L', col, col, c.params ->> 'pattern');
    ELSIF c.kind = 'range' THEN
        IF c.params ? 'min' THEN p := p || format('%s < (%L)::%s', col, c.params ->> 'min', typ); END IF;
        IF c.params ? 'max' THEN p := p || format('%s > (%L)::%s', col, c.params ->> 'max', typ); END IF;
    ELSIF c.kind = 'length' AND (typ IN ('text', 'character varying') OR typ LIKE 'character varying(%') THEN
        -- octet_length() reads the value's header only, length() walks its
        -- characters (and detoasts it): a string of n bytes has at most n
        -- and at least n / (the encoding's longest character) characters,
        -- so the byte count settles most rows and length() runs only on
        -- the others.  Same rows as length() alone.
        IF c.params ? 'min' THEN
            p := p || format('(octet_length((%s)::text) < %L::bigint * %s AND length((%s)::text) < %L::integer)',
                             col, c.params ->> 'min',
                             pg_encoding_max_length(pg_char_to_encoding(getdatabaseencoding())),
                             col, c.params ->> 'min');
        END IF;
        IF c.params ? 'max' THEN
            p := p || format('(octet_length((%s)::text) > %L::integer AND length((%s)::text) > %L::integer)',
                             col, c.params ->> 'max', col, c.params ->> 'max');
        END IF;
    ELSIF c.kind = 'length' THEN
        IF c.params ? 'min' THEN
            p := p || format('length((%s)::text) < %L::integer', col, c.params ->> 'min');
        END IF;
        IF c.params ? 'max' THEN
            p := p || format('length((%s)::text) > %L::integer', col, c.params ->> 'max');
        END IF;
    END IF;
    RETURN '(' || array_to_string(p, ' OR ') || ')';
END
$$;
COMMENT ON FUNCTION adr_ops._quality_predicate(adr_ops.quality_checks) IS
    'API: private. The WHERE clause of the rows a quality check fails on';
REVOKE ALL ON FUNCTION adr_ops._quality_predicate(adr_ops.quality_checks) FROM PUBLIC;

-- The aggregate of a check in its relation's one scan, as double precision.
CREATE FUNCTION adr_ops._quality_aggregate(c adr_ops.quality_checks) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text[] := adr_ops._quality_columns(c.params);
    q text;
    nonnull text;
BEGIN
    SELECT string_agg(format('%I', x), ', '), string_agg(format('%I IS NOT NULL', x), ' AND ')
      INTO q, nonnull FROM unnest(cols) x;
    RETURN CASE c.kind
        WHEN 'row_count' THEN 'count(*)::float8'
        WHEN 'freshness' THEN
            format('extract(epoch FROM now() - max(%I)::timestamptz)::float8', c.params ->> 'column')
        WHEN 'distinct_count' THEN
            CASE WHEN cardinality(cols) = 1 THEN format('count(DISTINCT %s)::float8', q)
                 ELSE format('count(DISTINCT ROW(%s)) FILTER (WHERE %s)::float8', q, nonnull) END
        WHEN 'duplicate_count' THEN
            CASE WHEN cardinality(cols) = 1 THEN format('(count(%s) - count(DISTINCT %s))::float8', q, q)
                 ELSE format('(count(*) FILTER (WHERE %s) - count(DISTINCT ROW(%s)) FILTER (WHERE %s))::float8',
                             nonnull, q, nonnull) END
        ELSE format('count(*) FILTER (WHERE %s)::float8', adr_ops._quality_predicate(c))
    END;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_aggregate(adr_ops.quality_checks) IS
    'API: private. The aggregate that measures a quality check in its relation''s one scan';
REVOKE ALL ON FUNCTION adr_ops._quality_aggregate(adr_ops.quality_checks) FROM PUBLIC;

-- The status of a metric.  min and max (params) are hard bounds: outside,
-- CRITICAL.  warn and crit levels follow health_thresholds: warn > crit
-- means lower is worse, else higher is worse.  The kinds that count failing
-- rows are CRITICAL at the first one unless levels say otherwise; freshness
-- is CRITICAL beyond max_age.
CREATE FUNCTION adr_ops._quality_judge(c adr_ops.quality_checks, metric double precision)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w double precision := c.warn_level;
    k double precision := c.crit_level;
BEGIN
    IF metric IS NULL THEN
        RETURN 'CRITICAL';
    END IF;
    IF c.kind IN ('row_count', 'distinct_count', 'custom')
       AND ((c.params ? 'min' AND metric < (c.params ->> 'min')::float8)
            OR (c.params ? 'max' AND metric > (c.params ->> 'max')::float8)) THEN
        RETURN 'CRITICAL';
    END IF;
    IF k IS NULL AND w IS NULL THEN
        IF c.kind IN ('null_fraction', 'duplicate_count', 'accepted_values', 'range', 'length',
                      'regex', 'referential', 'schema') THEN
            k := 0;
        ELSIF c.kind = 'freshness' THEN
            k := extract(epoch FROM (c.params ->> 'max_age')::interval);
        END IF;
    END IF;
    IF w IS NOT NULL AND k IS NOT NULL AND w > k THEN
        RETURN CASE WHEN metric < k THEN 'CRITICAL' WHEN metric < w THEN 'WARNING' ELSE 'OK' END;
    END IF;
    RETURN CASE WHEN metric > k THEN 'CRITICAL' WHEN metric > w THEN 'WARNING' ELSE 'OK' END;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_judge(adr_ops.quality_checks, double precision) IS
    'API: private. OK, WARNING or CRITICAL for a metric of a quality check';
REVOKE ALL ON FUNCTION adr_ops._quality_judge(adr_ops.quality_checks, double precision) FROM PUBLIC;

-- Whether a role may read what a check reads: the named columns, or any
-- column when it names none.
CREATE FUNCTION adr_ops._quality_readable(role oid, rel regclass, cols text[]) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(cols) = 0 THEN has_any_column_privilege(role, rel, 'SELECT')
                ELSE (SELECT bool_and(has_column_privilege(role, rel, x, 'SELECT')) FROM unnest(cols) x) END
$$;
COMMENT ON FUNCTION adr_ops._quality_readable(oid, regclass, text[]) IS
    'API: private. Whether a role may read the columns a quality check reads';
REVOKE ALL ON FUNCTION adr_ops._quality_readable(oid, regclass, text[]) FROM PUBLIC;

-- Define a check, owned by the calling role.
CREATE FUNCTION adr_ops.adr_quality_check_add(
    name text, relation regclass, kind text, params jsonb DEFAULT '{}',
    warn double precision DEFAULT NULL, crit double precision DEFAULT NULL,
    dataset text DEFAULT NULL, blocking boolean DEFAULT false, enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := adr_ops._calling_role_strict();
    caller_oid oid;
    cols text[];
    x text;
    ref regclass;
    refcols text[];
    p jsonb := coalesce(adr_quality_check_add.params, '{}');
    new_id bigint;
BEGIN
    SELECT r.oid INTO caller_oid FROM pg_roles r WHERE r.rolname = caller;
    IF adr_quality_check_add.name IS NULL OR adr_quality_check_add.kind IS NULL
       OR adr_quality_check_add.blocking IS NULL OR adr_quality_check_add.enabled IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'name, kind, blocking and enabled must not be null';
    END IF;
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'params must be a JSON object';
    END IF;
    IF adr_quality_check_add.kind NOT IN ('row_count', 'freshness', 'null_fraction', 'distinct_count',
            'duplicate_count', 'accepted_values', 'range', 'length', 'regex', 'referential',
            'schema', 'custom') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized quality check kind "%s"', adr_quality_check_add.kind),
            HINT = 'Use row_count, freshness, null_fraction, distinct_count, duplicate_count, accepted_values, range, length, regex, referential, schema or custom.';
    END IF;

    IF adr_quality_check_add.kind = 'custom' THEN
        IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = caller_oid) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'permission denied to create a custom quality check',
                DETAIL = 'A custom check runs SQL of its own; only superusers may define one.';
        END IF;
        IF coalesce(p ->> 'sql', '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'a custom check needs params sql: a query returning one number';
        END IF;
    ELSE
        IF adr_quality_check_add.relation IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
                MESSAGE = format('a %s check needs a relation', adr_quality_check_add.kind);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = adr_quality_check_add.relation
                                                AND k.relkind IN ('r', 'p', 'v', 'm', 'f')) THEN
            RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
                MESSAGE = format('"%s" is not a table, view, materialized view or foreign table',
                                 adr_quality_check_add.relation);
        END IF;
        cols := adr_ops._quality_columns(p);
        IF adr_quality_check_add.kind IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex')
           AND NOT p ? 'column' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params column', adr_quality_check_add.kind);
        END IF;
        IF adr_quality_check_add.kind IN ('distinct_count', 'duplicate_count', 'referential')
           AND cardinality(cols) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params column or columns', adr_quality_check_add.kind);
        END IF;
        FOREACH x IN ARRAY cols LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = adr_quality_check_add.relation
                              AND a.attname = x AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_column',
                    MESSAGE = format('column "%s" of relation "%s" does not exist', x,
                                     adr_quality_check_add.relation);
            END IF;
        END LOOP;
        -- Refused at creation what the owner could not read directly.
        IF NOT adr_ops._quality_readable(caller_oid, adr_quality_check_add.relation, cols) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('permission denied for relation %s', adr_quality_check_add.relation),
                DETAIL = format('A check runs with the privileges of its owner, role "%s", who cannot read %s of it.',
                                caller, CASE WHEN cardinality(cols) = 0 THEN 'any column'
                                             ELSE 'the columns ' || array_to_string(cols, ', ') END);
        END IF;
        IF adr_quality_check_add.kind = 'accepted_values' AND jsonb_typeof(p -> 'values') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'an accepted_values check needs params values: an array';
        ELSIF adr_quality_check_add.kind IN ('range', 'length') AND NOT (p ? 'min' OR p ? 'max') THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params min or max', adr_quality_check_add.kind);
        ELSIF adr_quality_check_add.kind = 'regex' THEN
            IF coalesce(p ->> 'pattern', '') = '' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'a regex check needs params pattern';
            END IF;
            PERFORM '' ~ (p ->> 'pattern');      -- an invalid pattern fails here
        ELSIF adr_quality_check_add.kind = 'freshness' THEN
            IF (p ->> 'max_age') IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'a freshness check needs params max_age, an interval';
            END IF;
            PERFORM (p ->> 'max_age')::interval;
            IF p ? 'column' AND NOT EXISTS (
                    SELECT FROM pg_attribute a
                     WHERE a.attrelid = adr_quality_check_add.relation AND a.attname = p ->> 'column'
                       AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)) THEN
                RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
                    MESSAGE = format('column "%s" of a freshness check must be a timestamp or a date', p ->> 'column');
            END IF;
        ELSIF adr_quality_check_add.kind = 'range' THEN
            -- the bounds must read as the column's type, cast as the owner
            -- (a domain's constraint is the owner's code, not ours)
            PERFORM adr_ops._quality_exec(caller_oid,
                        format('SELECT %s', string_agg(format('(%L)::%s', p ->> b, format_type(a.atttypid, a.atttypmod)), ', ')),
                        10000)
               FROM pg_attribute a, unnest(ARRAY['min', 'max']) b
              WHERE a.attrelid = adr_quality_check_add.relation AND a.attname = p ->> 'column' AND p ? b;
        ELSIF adr_quality_check_add.kind = 'referential' THEN
            ref := to_regclass(p ->> 'references');
            IF ref IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_table',
                    MESSAGE = format('referenced relation "%s" does not exist', p ->> 'references'),
                    HINT = 'Set params references to the relation the columns point to.';
            END IF;
            refcols := CASE WHEN jsonb_typeof(p -> 'referenced_columns') = 'array'
                            THEN ARRAY(SELECT jsonb_array_elements_text(p -> 'referenced_columns'))
                            ELSE cols END;
            IF cardinality(refcols) <> cardinality(cols) THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'params columns and referenced_columns must be as many';
            END IF;
            IF NOT adr_ops._quality_readable(caller_oid, ref, refcols) THEN
                RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                    MESSAGE = format('permission denied for relation %s', ref),
                    DETAIL = format('A check runs with the privileges of its owner, role "%s".', caller);
            END IF;
            p := p || jsonb_build_object('references', format('%I.%I', n.nspname, k.relname),
                                         'referenced_columns', to_jsonb(refcols))
              FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = ref;
        ELSIF adr_quality_check_add.kind = 'schema' AND NOT p ? 'columns_expected' THEN
            p := p || jsonb_build_object('columns_expected', adr_ops._quality_schema(adr_quality_check_add.relation));
        END IF;
    END IF;
    IF adr_quality_check_add.kind IN ('row_count', 'distinct_count', 'custom') THEN
        PERFORM (p ->> 'min')::float8, (p ->> 'max')::float8;   -- _quality_judge() reads them so
    END IF;
    IF p ? 'anomaly' AND (p ->> 'anomaly') NOT IN ('up', 'down', 'both') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('params anomaly must be up, down or both, not "%s"', p ->> 'anomaly');
    END IF;
    IF p ? 'sample_percent' AND NOT ((p ->> 'sample_percent')::float8 > 0 AND (p ->> 'sample_percent')::float8 <= 100) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'params sample_percent must be above 0 and at most 100';
    END IF;

    INSERT INTO adr_ops.quality_checks (name, relation, relation_name, kind, params, warn_level,
                                        crit_level, dataset, blocking, enabled, owner)
    SELECT adr_quality_check_add.name, adr_quality_check_add.relation,
           (SELECT format('%I.%I', n.nspname, k.relname) FROM pg_class k
              JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = adr_quality_check_add.relation),
           adr_quality_check_add.kind, p, adr_quality_check_add.warn, adr_quality_check_add.crit,
           adr_quality_check_add.dataset, adr_quality_check_add.blocking,
           adr_quality_check_add.enabled, caller_oid::regrole
    RETURNING id INTO new_id;
    RETURN new_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
        MESSAGE = format('quality check "%s" already exists', adr_quality_check_add.name);
END
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean) IS
    'defines a data-quality check owned by the calling role; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_quality_check_drop(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c adr_ops.quality_checks;
    caller name := adr_ops._calling_role_strict();
BEGIN
    SELECT * INTO c FROM adr_ops.quality_checks q WHERE q.name = adr_quality_check_drop.name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT pg_has_role(caller, c.owner, 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('must be a member of role "%s" to drop quality check "%s"', c.owner, c.name);
    END IF;
    DELETE FROM adr_ops.quality_checks q WHERE q.id = c.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_check_drop(text) IS
    'drops a data-quality check and its results; its owner (or a superuser) only';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_drop(text) FROM PUBLIC;

-- Why a check cannot run now, or NULL: its relation or owner is gone, or
-- its owner lost what it reads.
CREATE FUNCTION adr_ops._quality_unrunnable(c adr_ops.quality_checks) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = c.owner)
            THEN format('the owner of the check (role OID %s) no longer exists', c.owner::oid)
        WHEN c.kind = 'custom' THEN
            CASE WHEN NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = c.owner)
                 THEN format('role "%s" owns this custom check and is no longer a superuser', c.owner) END
        WHEN NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = c.relation)
            THEN format('relation %s no longer exists', c.relation_name)
        WHEN c.kind = 'referential' AND to_regclass(c.params ->> 'references') IS NULL
            THEN format('referenced relation %s no longer exists', c.params ->> 'references')
        -- has_column_privilege() raises an error for a column name that
        -- is gone, which would stop the whole run
        WHEN m.gone IS NOT NULL
            THEN format('column %s of relation %s no longer exists', m.gone, c.relation)
        WHEN NOT adr_ops._quality_readable(c.owner, c.relation, adr_ops._quality_columns(c.params))
            THEN format('permission denied for relation %s: the check''s owner, role "%s", can no longer read %s',
                        c.relation, c.owner,
                        CASE WHEN c.params ? 'column' OR c.params ? 'columns'
                             THEN 'the columns ' || array_to_string(adr_ops._quality_columns(c.params), ', ')
                             ELSE 'it' END)
    END
      FROM (SELECT string_agg(quote_ident(x), ', ') AS gone
              FROM unnest(adr_ops._quality_columns(c.params)) x
             WHERE NOT EXISTS (SELECT FROM pg_attribute a
                                WHERE a.attrelid = c.relation AND a.attname = x
                                  AND a.attnum > 0 AND NOT a.attisdropped)) m
$$;
COMMENT ON FUNCTION adr_ops._quality_unrunnable(adr_ops.quality_checks) IS
    'API: private. Why a quality check cannot run now, or NULL';
REVOKE ALL ON FUNCTION adr_ops._quality_unrunnable(adr_ops.quality_checks) FROM PUBLIC;

-- A few failing rows of a failing check, read as its owner: only the
-- check's own columns, at most 5 rows.  NULL when the kind has none.
CREATE FUNCTION adr_ops._quality_sample(c adr_ops.quality_checks, timeout_ms integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel text;
    cols text;
    q text;
    pred text := adr_ops._quality_predicate(c);
BEGIN
    SELECT format('%I.%I', n.nspname, k.relname) INTO rel
      FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = c.relation;
    SELECT string_agg(format('%I', x), ', ') INTO cols FROM unnest(adr_ops._quality_columns(c.params)) x;
    IF pred IS NOT NULL THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s FROM %s WHERE %s LIMIT 5) s', cols, rel, pred);
    ELSIF c.kind = 'duplicate_count' THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s, count(*) AS rows FROM %s GROUP BY %s HAVING count(*) > 1 LIMIT 5) s',
                    cols, rel, cols);
    ELSIF c.kind = 'referential' THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s FROM %s r WHERE %s LIMIT 5) s',
                    (SELECT string_agg(format('r.%I', x), ', ') FROM unnest(adr_ops._quality_columns(c.params)) x),
                    rel, adr_ops._quality_orphan_predicate(c));
    ELSE
        RETURN NULL;
    END IF;
    RETURN adr_ops._quality_exec(c.owner, q, timeout_ms)::jsonb;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_sample(adr_ops.quality_checks, integer) IS
    'API: private. At most 5 failing rows of a quality check, its columns only, read as its owner';
REVOKE ALL ON FUNCTION adr_ops._quality_sample(adr_ops.quality_checks, integer) FROM PUBLIC;

-- The orphans of a referential check: rows of r whose key is set and has
-- no match in the referenced relation (a dropped one makes the query
-- fail: the check is UNKNOWN).
CREATE FUNCTION adr_ops._quality_orphan_predicate(c adr_ops.quality_checks) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%s AND NOT EXISTS (SELECT FROM %s t WHERE %s)',
                  string_agg(format('r.%I IS NOT NULL', k.c), ' AND '),
                  -- the name as the catalog spells it now, never the text
                  coalesce((SELECT format('%I.%I', n.nspname, x.relname)
                              FROM pg_class x JOIN pg_namespace n ON n.oid = x.relnamespace
                             WHERE x.oid = to_regclass(c.params ->> 'references')),
                           format('%I', c.params ->> 'references')),
                  string_agg(format('t.%I = r.%I', k.t, k.c), ' AND '))
      FROM unnest(adr_ops._quality_columns(c.params),
                  ARRAY(SELECT jsonb_array_elements_text(c.params -> 'referenced_columns'))) AS k(c, t)
$$;
COMMENT ON FUNCTION adr_ops._quality_orphan_predicate(adr_ops.quality_checks) IS
    'API: private. The WHERE clause of the orphan rows of a referential check';
REVOKE ALL ON FUNCTION adr_ops._quality_orphan_predicate(adr_ops.quality_checks) FROM PUBLIC;

-- Run checks and store their results: the checks of one relation and owner
-- that scan rows share one query (one scan, optionally a TABLESAMPLE SYSTEM
-- block sample), the others run one query each.  Each group runs in its own
-- subtransaction: an error (a revoked privilege, the timeout) makes its
-- checks UNKNOWN with the reason and the rest go on.
CREATE FUNCTION adr_ops._quality_run(dataset text, names text[], blocking_only boolean,
                                     source text, job_id bigint, timeout interval, keep interval)
RETURNS SETOF adr_ops.quality_results
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    c adr_ops.quality_checks;
    r adr_ops.quality_results;
    tmo integer := greatest(0, (extract(epoch FROM coalesce(timeout, '0')) * 1000)::integer);
    rel text;
    qry text;
    vals double precision[];
    n double precision;
    t0 timestamptz;
    dur double precision;
    m double precision;
    why text;
    msg text;
    runnable adr_ops.quality_checks[];
    state text;
    i integer;
    prev adr_ops.quality_results;
    writes double precision;
    an record;
    sampled integer[];
    samples jsonb;
    hist_at timestamptz[];
    hist_v double precision[];
BEGIN
    IF keep IS NOT NULL THEN
        DELETE FROM adr_ops.quality_results x WHERE x.ran_at < now() - keep;
    END IF;
    FOR g IN
        SELECT array_agg(k.qc ORDER BY (k.qc).id) AS checks, k.scan
          FROM (SELECT qc,
                       qc.kind IN ('row_count', 'null_fraction', 'distinct_count', 'duplicate_count',
                                   'accepted_values', 'range', 'length', 'regex')
                         OR (qc.kind = 'freshness' AND qc.params ? 'column') AS scan
                  FROM adr_ops.quality_checks qc
                 WHERE qc.enabled
                   AND (_quality_run.dataset IS NULL OR qc.dataset = _quality_run.dataset)
                   AND (_quality_run.names IS NULL OR qc.name = ANY (_quality_run.names))
                   AND (NOT _quality_run.blocking_only OR qc.blocking)) k
         GROUP BY k.scan,
               CASE WHEN k.scan
                    THEN ARRAY[(k.qc).relation::oid::text, (k.qc).owner::oid::text,
                               coalesce((k.qc).params ->> 'sample_percent', '100')]
                    ELSE ARRAY[(k.qc).id::text] END
         ORDER BY min((k.qc).id)
    LOOP
        -- A check that cannot run is UNKNOWN with the reason; the rest of
        -- its group runs.
        runnable := '{}';
        FOREACH c IN ARRAY g.checks LOOP
            why := adr_ops._quality_unrunnable(c);
            IF why IS NULL THEN
                runnable := runnable || c;
            ELSE
                INSERT INTO adr_ops.quality_results (check_id, check_name, status, detail, source, job_id)
                VALUES (c.id, c.name, 'UNKNOWN', why, _quality_run.source, _quality_run.job_id)
                RETURNING * INTO r;
                RETURN NEXT r;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(runnable) = 0;

        t0 := clock_timestamp();
        vals := NULL;
        msg := NULL;
        c := runnable[1];
        BEGIN
            SELECT format('%I.%I', ns.nspname, k.relname) INTO rel
              FROM pg_class k JOIN pg_namespace ns ON ns.oid = k.relnamespace WHERE k.oid = c.relation;
            IF g.scan THEN
                SELECT format('SELECT ARRAY[count(*)::float8, %s]::text FROM %s%s',
                              string_agg(adr_ops._quality_aggregate(runnable[k]), ', ' ORDER BY k), rel,
                              CASE WHEN c.params ? 'sample_percent'
                                   THEN format(' TABLESAMPLE SYSTEM (%s)', (c.params ->> 'sample_percent')::float8)
                                   ELSE '' END)
                  INTO qry FROM generate_subscripts(runnable, 1) AS s(k);
            ELSIF c.kind = 'custom' THEN
                qry := c.params ->> 'sql';
            ELSIF c.kind = 'referential' THEN
                qry := format('SELECT ARRAY[NULL, count(*)::float8]::text FROM %s r WHERE %s',
                            rel, adr_ops._quality_orphan_predicate(c));
            ELSIF c.kind = 'schema' THEN
                qry := format('SELECT ARRAY[NULL, (%L::jsonb IS DISTINCT FROM %L::jsonb)::integer::float8]::text',
                            c.params -> 'columns_expected', adr_ops._quality_schema(c.relation));
            ELSIF c.kind = 'freshness' THEN
                -- the table's last write, as the runs saw its write counter change
                qry := format('SELECT ARRAY[NULL, (n_tup_ins + n_tup_upd + n_tup_del)::float8]::text '
                            'FROM pg_stat_all_tables WHERE relid = %s', c.relation::oid);
            END IF;
            IF c.kind = 'custom' THEN
                vals := ARRAY[NULL, adr_ops._quality_exec(c.owner, qry, tmo)::float8];
            ELSE
                vals := adr_ops._quality_exec(c.owner, qry, tmo)::float8[];
            END IF;
        EXCEPTION
            WHEN query_canceled THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                IF msg NOT LIKE '%statement timeout%' THEN
                    RAISE;
                END IF;
                msg := format('the check did not finish within its time budget (%s ms)', tmo);
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                -- a data exception's message may quote a value: row data
                -- stays out of results and alerts, which pg_monitor reads
                IF state LIKE '22%' THEN
                    msg := format('the check''s query failed on the data (SQLSTATE %s)', state);
                END IF;
        END;
        dur := extract(epoch FROM clock_timestamp() - t0) * 1000;
        n := vals[1];

        -- The failing rows of the failing checks that fail on fewer than 20
        -- rows, when there are two or more: one more scan for all of them.
        -- A query of its own per check, which stops at its fifth failing
        -- row, reads about 5 / (failing + 1) of the table: most of it when
        -- such rows are rare, little when they are common, so the others
        -- keep it.  Not for a block sample, whose count does not bound the
        -- table's.
        sampled := '{}';
        samples := NULL;
        IF msg IS NULL AND g.scan AND NOT c.params ? 'sample_percent' THEN
            SELECT coalesce(array_agg(s.k ORDER BY s.k), '{}') INTO sampled
              FROM generate_subscripts(runnable, 1) AS s(k)
             WHERE (runnable[s.k]).kind IN ('accepted_values', 'range', 'length', 'regex')
               AND vals[s.k + 1] BETWEEN 1 AND 19
               AND adr_ops._quality_judge(runnable[s.k], vals[s.k + 1] / n) <> 'OK';
            IF cardinality(sampled) < 2 THEN
                sampled := '{}';
            END IF;
        END IF;
        IF cardinality(sampled) > 0 THEN
            BEGIN
                SELECT format('SELECT jsonb_build_array(%s)::text FROM %s',
                              string_agg(format('to_jsonb((array_agg(jsonb_build_object(%s)) FILTER (WHERE %s))[1:5])',
                                                (SELECT string_agg(format('%L, %I', x, x), ', ')
                                                   FROM unnest(adr_ops._quality_columns((runnable[s.k]).params)) x),
                                                adr_ops._quality_predicate(runnable[s.k])), ', ' ORDER BY s.k),
                              rel)
                  INTO qry FROM unnest(sampled) AS s(k);
                samples := adr_ops._quality_exec(c.owner, qry, tmo)::jsonb;
            EXCEPTION
                WHEN query_canceled THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                    IF msg NOT LIKE '%statement timeout%' THEN
                        RAISE;
                    END IF;
                    msg := NULL;
                WHEN OTHERS THEN
                    samples := NULL;
            END;
        END IF;

        i := 0;
        FOREACH c IN ARRAY runnable LOOP
            i := i + 1;
            r := NULL;
            r.check_id := c.id;
            r.check_name := c.name;
            r.ran_at := clock_timestamp();
            r.duration_ms := dur;
            r.source := coalesce(_quality_run.source, 'manual');
            r.job_id := _quality_run.job_id;
            IF msg IS NOT NULL THEN
                r.status := 'UNKNOWN';
                r.detail := msg;
            ELSE
                m := vals[i + 1];
                r.rows_scanned := n;
                IF g.scan AND c.params ? 'sample_percent' THEN
                    r.sample_percent := (c.params ->> 'sample_percent')::float8;
                END IF;
                IF c.kind IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex') THEN
                    m := CASE WHEN n > 0 THEN m / n ELSE 0 END;
                    IF r.sample_percent IS NOT NULL THEN
                        -- normal approximation, or the rule of three when none failed
                        r.error_bound := CASE WHEN n = 0 THEN 1
                                              WHEN m = 0 THEN least(1, 3 / n)
                                              ELSE 1.96 * sqrt(m * (1 - m) / n) END;
                    END IF;
                ELSIF c.kind = 'row_count' AND r.sample_percent IS NOT NULL THEN
                    m := m * 100 / r.sample_percent;
                    r.error_bound := 1.96 * sqrt(greatest(n, 1)) * 100 / r.sample_percent;
                ELSIF c.kind = 'freshness' AND NOT c.params ? 'column' THEN
                    writes := m;
                    SELECT * INTO prev FROM adr_ops.quality_results x
                     WHERE x.check_id = c.id AND x.status <> 'UNKNOWN' ORDER BY x.ran_at DESC, x.id DESC LIMIT 1;
                    -- detail is the counter's JSON, then perhaps '; anomaly: ...'
                    IF prev.id IS NULL OR (split_part(prev.detail, ';', 1)::jsonb ->> 'writes')::float8
                                          IS DISTINCT FROM writes THEN
                        m := 0;
                    ELSE
                        m := extract(epoch FROM clock_timestamp() - prev.ran_at) + prev.metric;
                    END IF;
                END IF;
                r.metric := m;
                r.status := adr_ops._quality_judge(c, m);
                r.detail := CASE
                    WHEN c.kind = 'freshness' AND NOT c.params ? 'column'
                        THEN jsonb_build_object('writes', writes)::text
                    WHEN c.kind = 'freshness' AND m IS NULL THEN 'no rows'
                    WHEN c.kind = 'schema' AND m > 0 THEN
                        format('columns changed: expected %s, found %s', c.params -> 'columns_expected',
                               adr_ops._quality_schema(c.relation))
                    WHEN r.sample_percent IS NOT NULL THEN
                        format('estimated from a %s%% block sample (%s rows): ±%s at 95%% confidence',
                               r.sample_percent, n, round(r.error_bound::numeric, 6))
                END;
                IF r.status <> 'OK' AND c.kind NOT IN ('custom', 'schema', 'freshness', 'row_count',
                                                       'distinct_count', 'null_fraction') THEN
                    IF i = ANY (sampled) THEN
                        r.sample := nullif(samples -> (array_position(sampled, i) - 1), 'null');
                    ELSE
                        BEGIN
                            r.sample := adr_ops._quality_sample(c, tmo);
                        EXCEPTION WHEN OTHERS THEN
                            r.sample := NULL;
                        END;
                    END IF;
                END IF;
                -- A metric out of its own history is a WARNING, when asked.
                IF c.params ->> 'anomaly' IN ('up', 'down', 'both') AND r.status = 'OK' THEN
                    BEGIN
                        SELECT array_agg(x.ran_at ORDER BY x.ran_at) || r.ran_at,
                               array_agg(x.metric ORDER BY x.ran_at) || m
                          INTO hist_at, hist_v
                          FROM adr_ops.quality_results x WHERE x.check_id = c.id AND x.metric IS NOT NULL;
                        SELECT * INTO an FROM adr_ops.adr_anomaly_score(hist_at, hist_v, c.params ->> 'anomaly',
                                                                         coalesce(c.params ->> 'seasonality', 'none'));
                        IF an.verdict = 'anomaly' THEN
                            r.status := 'WARNING';
                            r.detail := concat_ws('; ', r.detail,
                                                  format('anomaly: %s, expected about %s (score %s)', m,
                                                         round(an.expected::numeric, 3), round(an.score::numeric, 2)));
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        NULL;
                    END;
                END IF;
            END IF;
            INSERT INTO adr_ops.quality_results (check_id, check_name, ran_at, status, metric, duration_ms,
                                                 rows_scanned, sample_percent, error_bound, detail, sample,
                                                 source, job_id)
            VALUES (r.check_id, r.check_name, r.ran_at, r.status, r.metric, r.duration_ms, r.rows_scanned,
                    r.sample_percent, r.error_bound, r.detail, r.sample, r.source, r.job_id)
            RETURNING * INTO r;
            RETURN NEXT r;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_run(text, text[], boolean, text, bigint, interval, interval) IS
    'API: private. Runs quality checks, one scan per relation and owner, and stores their results';
REVOKE ALL ON FUNCTION adr_ops._quality_run(text, text[], boolean, text, bigint, interval, interval) FROM PUBLIC;

-- Run the enabled checks now (all, a dataset's, or the named ones).
CREATE FUNCTION adr_ops.adr_quality_run(dataset text DEFAULT NULL, checks text[] DEFAULT NULL,
                                        timeout interval DEFAULT '60s', keep interval DEFAULT '90 days')
RETURNS TABLE (check_name text, status text, metric double precision, detail text)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.check_name, r.status, r.metric, r.detail
      FROM adr_ops._quality_run(adr_quality_run.dataset, adr_quality_run.checks, false,
                                'run',
                                NULL, adr_quality_run.timeout, adr_quality_run.keep) r
     ORDER BY r.id
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_run(text, text[], interval, interval) IS
    'runs the enabled data-quality checks (of a dataset, or the named ones) now, stores and returns their results; results older than keep are dropped';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_run(text, text[], interval, interval) FROM PUBLIC;

-- The runbook's /datasets/$ID/validate.  The failing rows' sample is shown
-- only to a caller who may act as the check's owner.
CREATE FUNCTION adr_ops.adr_dataset_validate(dataset text, timeout interval DEFAULT '60s')
RETURNS TABLE (verdict text, checks integer, failing integer, failures jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := adr_ops._calling_role_strict();
BEGIN
    IF adr_dataset_validate.dataset IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'dataset must not be null';
    END IF;
    RETURN QUERY
    WITH res AS (
        SELECT r.*, c.relation_name, c.kind, c.owner, c.blocking
          FROM adr_ops._quality_run(adr_dataset_validate.dataset, NULL, false, 'validate', NULL,
                                    adr_dataset_validate.timeout, NULL) r
          JOIN adr_ops.quality_checks c ON c.id = r.check_id
    )
    SELECT CASE WHEN count(*) = 0 THEN 'no checks'
                WHEN count(*) FILTER (WHERE res.status IN ('CRITICAL', 'UNKNOWN')) > 0 THEN 'fail'
                ELSE 'pass' END,
           count(*)::integer,
           count(*) FILTER (WHERE res.status <> 'OK')::integer,
           coalesce(jsonb_agg(jsonb_build_object(
                'check', res.check_name, 'relation', res.relation_name, 'kind', res.kind,
                'status', res.status, 'metric', res.metric, 'detail', res.detail,
                'blocking', res.blocking,
                'sample', CASE WHEN pg_has_role(caller, res.owner, 'USAGE') THEN res.sample END)
                ORDER BY res.check_name) FILTER (WHERE res.status <> 'OK'), '[]')
      FROM res;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_dataset_validate(text, interval) IS
    'runs the checks of a dataset now: verdict pass, fail (a CRITICAL or UNKNOWN check) or no checks, with the failing checks';
REVOKE ALL ON FUNCTION adr_ops.adr_dataset_validate(text, interval) FROM PUBLIC;

-- The validation gate of adr_job_complete(): the blocking checks of the
-- job's pipeline run first; a CRITICAL or UNKNOWN one fails the job instead
-- of completing it, with the checks in the event, so that
-- adr_job_restart() from the last checkpoint is the next step.
CREATE FUNCTION adr_ops._job_quality_gate(job_id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    res jsonb;
    bad integer;
BEGIN
    SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = _job_quality_gate.job_id FOR UPDATE;
    IF NOT FOUND OR j.status <> 'running'
       OR NOT EXISTS (SELECT FROM adr_ops.quality_checks q
                       WHERE q.dataset = j.pipeline AND q.blocking AND q.enabled) THEN
        RETURN adr_ops._job_move(_job_quality_gate.job_id, 'complete');
    END IF;
    SELECT jsonb_agg(jsonb_build_object('check', r.check_name, 'status', r.status,
                                        'metric', r.metric, 'detail', r.detail) ORDER BY r.check_name),
           count(*) FILTER (WHERE r.status IN ('CRITICAL', 'UNKNOWN'))
      INTO res, bad
      FROM adr_ops._quality_run(j.pipeline, NULL, true, 'gate', j.id, '60s', NULL) r;
    IF bad > 0 THEN
        RETURN adr_ops._job_move(j.id, 'fail',
                                 note => format('quality gate: %s of %s blocking checks failed', bad, jsonb_array_length(res)),
                                 error => format('quality gate failed: %s',
                                                 (SELECT string_agg(x ->> 'check', ', ') FROM jsonb_array_elements(res) x
                                                   WHERE x ->> 'status' IN ('CRITICAL', 'UNKNOWN'))),
                                 detail => jsonb_build_object('quality_gate', 'fail', 'checks', res));
    END IF;
    RETURN adr_ops._job_move(j.id, 'complete', note => 'complete (quality gate passed)',
                             detail => jsonb_build_object('quality_gate', 'pass', 'checks', res));
END
$$;
COMMENT ON FUNCTION adr_ops._job_quality_gate(bigint) IS
    'API: private. Completes a job, or fails it when a blocking quality check of its pipeline fails';
REVOKE ALL ON FUNCTION adr_ops._job_quality_gate(bigint) FROM PUBLIC;

-- The runbook's /quality/trends?days=7.
CREATE FUNCTION adr_ops.adr_quality_trend(days integer DEFAULT 7)
RETURNS TABLE (check_name text, day date, runs bigint, passes bigint, warnings bigint, failures bigint,
               metric_min double precision, metric_avg double precision, metric_max double precision,
               direction text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH daily AS (
        SELECT r.check_name, r.ran_at::date AS day, count(*) AS runs,
               count(*) FILTER (WHERE r.status = 'OK') AS passes,
               count(*) FILTER (WHERE r.status = 'WARNING') AS warnings,
               count(*) FILTER (WHERE r.status IN ('CRITICAL', 'UNKNOWN')) AS failures,
               min(r.metric) AS mn, avg(r.metric) AS av, max(r.metric) AS mx
          FROM adr_ops.quality_results r
         WHERE r.ran_at >= (now() - make_interval(days => greatest(adr_quality_trend.days, 1) - 1))::date
         GROUP BY 1, 2
    )
    SELECT d.check_name, d.day, d.runs, d.passes, d.warnings, d.failures, d.mn, d.av, d.mx,
           CASE WHEN lag(d.av) OVER w IS NULL OR d.av IS NULL THEN NULL
                WHEN d.av > lag(d.av) OVER w THEN 'up'
                WHEN d.av < lag(d.av) OVER w THEN 'down'
                ELSE 'steady' END
      FROM daily d
    WINDOW w AS (PARTITION BY d.check_name ORDER BY d.day)
     ORDER BY d.check_name, d.day
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_trend(integer) IS
    'per quality check and day over the last days: runs, passes, warnings, failures, the metric''s min, avg and max, and its direction against the day before';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_trend(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_quality_trend(integer) TO pg_monitor;

-- The health rows: quality (how many checks fail) and quality:<name> for
-- each enabled check whose latest result is not OK.
CREATE FUNCTION adr_ops._check_quality() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH latest AS (
        SELECT c.name, r.status, r.metric, r.detail
          FROM adr_ops.quality_checks c
          JOIN LATERAL (SELECT x.status, x.metric, x.detail FROM adr_ops.quality_results x
                         WHERE x.check_id = c.id ORDER BY x.ran_at DESC, x.id DESC LIMIT 1) r ON true
         WHERE c.enabled
    )
    SELECT 'quality', count(*) FILTER (WHERE l.status <> 'OK')::numeric, 'checks',
           format('%s of %s checks failing', count(*) FILTER (WHERE l.status <> 'OK'), count(*)),
           NULL, NULL
      FROM latest l
    HAVING count(*) > 0
    UNION ALL
    SELECT 'quality:' || l.name,
           l.metric::numeric, NULL,
           l.detail,
           CASE WHEN l.status = 'UNKNOWN' THEN coalesce(l.detail, 'the check could not run') END,
           CASE WHEN l.status IN ('WARNING', 'CRITICAL') THEN l.status END
      FROM latest l
     WHERE l.status <> 'OK'
$$;
COMMENT ON FUNCTION adr_ops._check_quality() IS
    'API: private. The quality and quality:<name> readings of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_quality() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_quality() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('quality', 185);

-- Every status change of a check is an alert (check quality:<name>), as
-- the result is stored; the health history skips quality:% rows so that a
-- change is announced once.
CREATE FUNCTION adr_ops._alert_quality_transitions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    SELECT 'health', 'quality:' || r.check_name, p.status, r.status, left(r.detail, 2000)
      FROM new_rows r
      LEFT JOIN LATERAL (
            SELECT h.status FROM adr_ops.quality_results h
             WHERE h.check_id = r.check_id AND h.id < r.id
             ORDER BY h.id DESC LIMIT 1) p ON true
     WHERE p.status IS DISTINCT FROM r.status
       AND (p.status IS NOT NULL OR r.status <> 'OK')
       AND r.ran_at > now() - interval '10 minutes'
     ORDER BY r.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_quality_transitions() IS
    'API: private. Raises an alert for each quality check whose status changed';
REVOKE ALL ON FUNCTION adr_ops._alert_quality_transitions() FROM PUBLIC;
CREATE TRIGGER quality_results_alerts
    AFTER INSERT ON adr_ops.quality_results
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_quality_transitions();

-- Every 15 minutes through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('quality_check', '*/15 * * * *', 'quality_check', pg_catalog.current_database());

-- The quality checks' metrics, from the latest result of each enabled
-- check (the quality_check task runs them): a scrape never runs a check.
CREATE FUNCTION adr_ops._metrics_quality() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH last AS (
        SELECT jsonb_build_object('check', c.name, 'dataset', coalesce(c.dataset, '')) AS l,
               r.status, r.metric, r.ran_at
          FROM adr_ops.quality_checks c
          JOIN LATERAL (SELECT q.status, q.metric, q.ran_at FROM adr_ops.quality_results q
                         WHERE q.check_id = c.id ORDER BY q.ran_at DESC LIMIT 1) r ON true
         WHERE c.enabled
    )
    SELECT m.* FROM last CROSS JOIN LATERAL (VALUES
        ('adr_ops_quality_check_status', last.l, adr_ops._metric_status(last.status), 'gauge',
         'Status of the latest run of each enabled data-quality check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.'),
        ('adr_ops_quality_check_metric', last.l, last.metric::float8, 'gauge',
         'Metric of the latest run of each enabled data-quality check (its kind says what it measures).'),
        ('adr_ops_quality_check_age_seconds', last.l, extract(epoch FROM now() - last.ran_at)::float8, 'gauge',
         'Seconds since the latest run of each enabled data-quality check.')
    ) AS m(name, labels, value, type, help)
     WHERE m.value IS NOT NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_quality() IS
    'API: private. The data-quality checks'' metrics, from their latest results';
REVOKE ALL ON FUNCTION adr_ops._metrics_quality() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._metrics_quality() TO pg_monitor;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('quality', 100);
