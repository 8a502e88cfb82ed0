#!/usr/bin/env bash
# Installs the system packages Seed builds against (Debian): OpenBLAS, pkg-config, and Open MPI (the
# collectives backend of SeedDistributed; `mpirun` runs the distributed tests). Idempotent and quiet: packages
# already installed are not touched, and apt runs only when something is missing.
set -euo pipefail
need=()
for pkg in libopenblas-dev pkg-config openmpi-bin libopenmpi-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${need[*]} ..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
