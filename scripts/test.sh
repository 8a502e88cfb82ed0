#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
swift build --build-tests
scripts/check-kernel-objects.sh .build/debug
swift test --skip-build "$@"
