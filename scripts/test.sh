#!/usr/bin/env bash
# Command 2 of README.md: install what is missing, build, install, and run
# `make installcheck` (pg_regress, isolation, then TAP) as a non-root user
# from a copy of the tree that user owns.  Ends with "N passed, N failed".
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/setup.sh
. "$here/scripts/setup.sh"

# usage: main — the whole test run; exits with make's status
main() {
    local user workdir log status passed failed
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

    status=0
    run_as "$user" make -C "$workdir" PG_CONFIG="$PG_CONFIG" PROVE_FLAGS=--verbose installcheck \
        >"$log" 2>&1 || status=$?
    cat "$log"
    if [ "$status" -ne 0 ]; then
        for f in "$workdir"/regression.diffs "$workdir"/output_iso/regression.diffs; do
            [ -f "$f" ] && { printf '\n=== %s\n' "$f"; cat "$f"; }
        done
        find "$workdir/tmp_check/log" -name 'regress_log_*' 2>/dev/null | while read -r f; do
            grep -q 'not ok' "$f" && { printf '\n=== %s\n' "$f"; tail -n 60 "$f"; }
        done
    fi

    # pg_regress and isolation print "test NAME ... ok|FAILED"; TAP (verbose)
    # prints "ok N" / "not ok N".
    passed=$(grep -cE '\.\.\. ok|^[[:space:]]*ok [0-9]+' "$log" || true)
    failed=$(grep -cE '\.\.\. FAILED|\.\.\. failed|^[[:space:]]*not ok [0-9]+' "$log" || true)
    # A suite that died before reporting still fails the run.
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    printf '\n%s passed, %s failed\n' "$passed" "$failed"
    return "$status"
}

main "$@"
