#!/usr/bin/env bash
# Installs the system packages Seed builds against (Debian): OpenBLAS and pkg-config; Open MPI (the collectives
# backend of SeedDistributed; the distributed tests launch ranks with `mpirun`); and `fortunes`, the small text corpus
# the data-preparation tests and the training demo use (/usr/share/games/fortunes).
# Idempotent and quiet: apt runs only when a package is missing, and its output is shown only if it fails.
set -euo pipefail
need=()
for pkg in libopenblas-dev pkg-config openmpi-bin libopenmpi-dev fortunes; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${need[*]} ..." >&2
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-deps: apt-get failed installing ${need[*]}" >&2
        exit 1
    fi
fi
