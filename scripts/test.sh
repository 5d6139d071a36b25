#!/usr/bin/env bash
# Command 2 of README.md: install what is missing, build, install, and run
# `make installcheck` (pg_regress, isolation, then TAP) as a non-root user
# from a copy of the tree that user owns.  Ends with "N passed, N failed".
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/setup.sh
. "$here/scripts/setup.sh"

# usage: progress — read make installcheck's output on stdin and print, as
# it goes, which suite runs and each file's result as it ends
progress() {
    local line file="" oks=0 noks=0
    while IFS= read -r line; do
        if [[ $line == *pg_isolation_regress* ]]; then
            printf '== isolation specs (specs/)\n'
        elif [[ $line == */pg_regress\ * ]]; then
            printf '== pg_regress (sql/, expected/)\n'
        elif [[ $line == */prove\ * ]]; then
            printf '== TAP (t/)\n'
        elif [[ $line =~ ^\ *test\ .*\ \.\.\.\  ]]; then
            printf '%s\n' "$line"
        elif [[ $line =~ ^\[[0-9:]{8}\]\ (t/[^ ]+) ]]; then
            file="${BASH_REMATCH[1]}" oks=0 noks=0
        elif [[ $line =~ ^[[:space:]]*ok\ [0-9]+ ]]; then
            oks=$((oks + 1))
        elif [[ $line =~ ^[[:space:]]*not\ ok\ [0-9]+ ]]; then
            noks=$((noks + 1))
            printf '    %s: %s\n' "$file" "${line#"${line%%[! ]*}"}"
        elif [ -n "$file" ] && [[ $line =~ ^(ok\ +[0-9]+\ ms|Dubious|Failed\ [0-9]+/|No\ subtests) ]]; then
            # prove --timer ends a file with "ok  N ms (...)", or "Dubious", "Failed N/M"
            printf '%-36s ... %s (%d passed, %d failed)\n' "$file" \
                "$([[ $line == ok* ]] && echo ok || echo FAILED)" "$oks" "$noks"
            file=""
        fi
    done
}

# usage: main — the whole test run; exits with make's status
main() {
    local user workdir log status passed failed started
    started=$SECONDS
    install_missing_packages
    build_and_install "$here"

    # PostgreSQL refuses to run as root, and CI's clone may sit where the
    # postgres user cannot enter: run from a copy that the test user owns.
    if [ "$(id -u)" -eq 0 ]; then
        user=postgres
    else
        user="$(id -un)"
    fi
    workdir="${ADR_OPS_TEST_DIR:-/var/tmp/adr_ops-test}"
    copy_tree "$here" "$workdir" "$user"
    log="$workdir/installcheck.log"
    printf 'adr_ops: running make installcheck in %s as %s; full log: %s\n' "$workdir" "$user" "$log"

    set +e
    run_as "$user" make -C "$workdir" PG_CONFIG="$PG_CONFIG" PROVE_FLAGS="--verbose --timer" installcheck \
        2>&1 | tee "$log" | progress
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        # (if, not &&: under set -e a failed test inside a pipeline would
        # end the script before its closing line)
        for f in "$workdir"/regression.diffs "$workdir"/output_iso/regression.diffs \
                 "$workdir"/tmp_check/log/regress_log_*; do
            case "$f" in
                */regress_log_*) if grep -q '^\[[0-9:.]*\]([0-9.]*s) not ok' "$f"; then
                                     printf '\n=== %s\n' "$f"; grep -B 20 -A 8 ') not ok' "$f" | tail -n 200
                                 fi ;;
                *) if [ -f "$f" ]; then printf '\n=== %s\n' "$f"; cat "$f"; fi ;;
            esac
        done
        printf '\n=== the last lines of %s\n' "$log"
        tail -n 40 "$log"
    fi

    # pg_regress and isolation print "test NAME ... ok|FAILED"; TAP (verbose)
    # prints "ok N" / "not ok N".
    passed=$(grep -cE '\.\.\. ok|^[[:space:]]*ok [0-9]+' "$log" || true)
    failed=$(grep -cE '\.\.\. FAILED|\.\.\. failed|^[[:space:]]*not ok [0-9]+' "$log" || true)
    # A suite that died before reporting still fails the run.
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    printf '\ntotal time: %d min %d s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
    printf '%s passed, %s failed\n' "$passed" "$failed"
    return "$status"
}

main "$@"
