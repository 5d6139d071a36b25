#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: install what is
# missing from Debian's archive, then build and install adr_ops.  Idempotent.
# Run as root, or as a user who may sudo.
set -Eeuo pipefail

readonly PG_MAJOR=15
readonly PACKAGES=(
    "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" postgresql-contrib
    libcurl4-openssl-dev libipc-run-perl make gcc shellcheck
    # security.c includes libpq/libpq-be.h (Port), which includes gssapi.h
    libkrb5-dev
    # backup verification decompresses gzip plain dumps with zlib (-lz)
    zlib1g-dev
    # t/091_adr_block_ip.pl tests scripts/adr-block-ip's nft rules in a
    # network namespace (skipped without nft)
    nftables
    # t/025_prometheus.pl runs the exporter on dashboards/prometheus/queries.yaml
    # and promtool (package prometheus) on the alert rules and their tests
    prometheus-postgres-exporter prometheus
    # t/070_report_browser.pl renders scripts/adr-report's page in headless
    # Chromium (skipped without it)
    chromium
)
PG_BINDIR="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BINDIR}/pg_config"
export PG_BINDIR PG_CONFIG

# usage: as_root COMMAND [ARG...] — run a command as root (directly or via sudo)
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# usage: run_as USER COMMAND [ARG...] — run a command as USER
run_as() {
    local user="$1"
    shift
    if [ "$(id -un)" = "$user" ]; then
        "$@"
    else
        as_root runuser -u "$user" -- "$@"
    fi
}

# usage: install_missing_packages — apt-get install only what dpkg lacks
install_missing_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        printf 'adr_ops: installing %s\n' "${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

# usage: build_and_install DIR — build adr_ops in DIR and install it into the server
build_and_install() {
    local dir="$1"
    # Warnings fail the build here, not in the Makefile: a newer compiler's
    # new warning must not break a user's build from source.
    make -C "$dir" -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS=-Werror >/dev/null
    as_root make -C "$dir" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# usage: copy_tree SRC DEST OWNER — copy the source tree (tracked and new
# files, no build outputs) to DEST, owned by OWNER
copy_tree() {
    local src="$1" dest="$2" owner="$3"
    as_root rm -rf "$dest"
    as_root mkdir -p "$dest"
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$src" && git ls-files -co --exclude-standard -z | tar --null --no-recursion -T - -cf -) \
            | as_root tar -xf - -C "$dest"
    else
        as_root cp -a "$src/." "$dest/"
        as_root make -C "$dest" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
    fi
    as_root chown -R "$owner:" "$dest"
}
