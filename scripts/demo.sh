#!/usr/bin/env bash
# Command 1 of README.md: install what is missing, build and install
# adr_ops, start a throwaway cluster (as the postgres OS user) under a folder
# of the checkout, make a little real workload, and print the daily health
# report.  Running it again reuses the cluster, whether it runs or was
# stopped (a reboot).
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/setup.sh
. "$here/scripts/setup.sh"

readonly PORT="${ADR_OPS_DEMO_PORT:-54329}"

# usage: demo_dir USER — the cluster's folder: .demo in the checkout, or
# /var/tmp/adr_ops-demo when USER cannot reach the checkout
demo_dir() {
    local user="$1" dir="${ADR_OPS_DEMO_DIR:-$here/.demo}"
    mkdir -p "$dir" 2>/dev/null || as_root mkdir -p "$dir"
    as_root chown "$user:" "$dir"
    if ! run_as "$user" test -w "$dir"; then
        printf 'adr_ops: %s cannot reach %s; using /var/tmp/adr_ops-demo\n' "$user" "$dir" >&2
        dir=/var/tmp/adr_ops-demo
        as_root mkdir -p "$dir"
        as_root chown "$user:" "$dir"
    fi
    printf '%s\n' "$dir"
}

# usage: main — the whole demo
main() {
    local user dir data
    install_missing_packages
    build_and_install "$here"

    if [ "$(id -u)" -eq 0 ]; then user=postgres; else user="$(id -un)"; fi
    dir="$(demo_dir "$user")"
    data="$dir/data"

    if [ ! -f "$data/PG_VERSION" ]; then
        run_as "$user" "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres >/dev/null
        run_as "$user" tee -a "$data/postgresql.conf" >/dev/null <<CONF
# adr_ops demo
port = $PORT
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements,adr_ops'
logging_collector = on
log_destination = 'stderr,jsonlog'
log_line_prefix = '%m [%p] %q%u@%d '
lc_messages = 'C'
CONF
    fi
    # Start the cluster, or restart it when it runs, so that the server runs
    # the library just installed.  (pg_ctl restart cannot start a cluster
    # that never ran: it has no postmaster.opts yet.)
    if run_as "$user" "$PG_BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        run_as "$user" "$PG_BINDIR/pg_ctl" -D "$data" -l "$dir/server.log" -w restart >/dev/null
    else
        run_as "$user" "$PG_BINDIR/pg_ctl" -D "$data" -l "$dir/server.log" -w start >/dev/null
    fi

    # The demo's extension is made anew from this build: the version number
    # does not change between unreleased builds, so an update would not.
    local psql=(run_as "$user" "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U postgres)
    "${psql[@]}" -d postgres -c 'SET client_min_messages = warning' \
        -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' \
        -c 'DROP EXTENSION IF EXISTS adr_ops' -c 'CREATE EXTENSION adr_ops'

    printf 'adr_ops: making a little workload (pgbench, 10 s)\n'
    run_as "$user" "$PG_BINDIR/pgbench" -h "$dir" -p "$PORT" -U postgres -i -s 2 -q postgres >/dev/null 2>&1
    run_as "$user" "$PG_BINDIR/pgbench" -h "$dir" -p "$PORT" -U postgres -c 4 -j 2 -T 10 postgres >/dev/null 2>&1
    # An error for the log check to find.
    "${psql[@]}" -d postgres -c 'SELECT * FROM no_such_table' >/dev/null 2>&1 || true
    "${psql[@]}" -d postgres -c 'SELECT adr_ops.adr_health_snapshot()' >/dev/null

    printf '\nThe daily health report (SELECT * FROM adr_ops.adr_health_check()):\n\n'
    "${psql[@]}" -d postgres -P pager=off -c 'SELECT * FROM adr_ops.adr_health_check()'

    printf 'The maintenance schedules (SELECT * FROM adr_ops.adr_maintenance_status()):\n\n'
    "${psql[@]}" -d postgres -P pager=off \
        -c 'SELECT name, schedule, task, next_run, last_status FROM adr_ops.adr_maintenance_status()'

    printf 'Bloat after the workload, relations over 1 MB, from sampled pages (adr_ops.adr_bloat_report(mode => %s)):\n\n' "'sample'"
    "${psql[@]}" -d postgres -P pager=off \
        -c "SELECT relname, kind, pg_size_pretty(total_bytes) AS size, round(bloat_pct::numeric, 1) AS bloat_pct,
                   round(error_pct::numeric, 1) AS error_pct, suggestion
              FROM adr_ops.adr_bloat_report(mode => 'sample') WHERE schemaname = 'public'"

    printf 'Validating a dataset (adr_ops.adr_dataset_validate(%s)): two quality checks on pgbench_accounts, one pass over the table:\n\n' "'bank'"
    "${psql[@]}" -d postgres -c "SELECT adr_ops.adr_quality_check_add('accounts_rows', 'pgbench_accounts', 'row_count', '{\"min\": 200000}', dataset => 'bank')" \
        -c "SELECT adr_ops.adr_quality_check_add('accounts_balance', 'pgbench_accounts', 'range', '{\"column\": \"abalance\", \"min\": -100000, \"max\": 100000}', dataset => 'bank')" >/dev/null
    "${psql[@]}" -d postgres -P pager=off -c "SELECT * FROM adr_ops.adr_dataset_validate('bank')"

    printf 'The weekly review as one self-contained page (scripts/adr-report):\n\n'
    run_as "$user" "$PG_BINDIR/adr-report" -h "$dir" -p "$PORT" -U postgres -d postgres "$dir/weekly-review.html" || true
    printf '\n'

    printf 'The same health report through the monitoring plugin (scripts/adr-check):\n\n'
    run_as "$user" "$PG_BINDIR/adr-check" -h "$dir" -p "$PORT" -U postgres -d postgres || true

    cat <<TXT

Connect:   runuser -u $user -- psql -h $dir -p $PORT -U postgres postgres
Stop:      runuser -u $user -- $PG_BINDIR/pg_ctl -D $data stop
Remove:    rm -rf $dir   (after stopping)
TXT
}

main "$@"
