#!/usr/bin/env bash
# Installs the system packages Seed builds against (Debian): OpenBLAS and pkg-config; plus `fortunes`, the small
# text corpus the data-preparation tests and the training demo use (/usr/share/games/fortunes).
set -euo pipefail
need=()
for pkg in libopenblas-dev pkg-config fortunes; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${need[*]} ..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
