#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
swift build --build-tests
swift test --skip-build "$@"
# The official openai SDK against a real `seed serve` (skipped only when a test filter was given).
if [ $# -eq 0 ]; then
    scripts/test-openai-sdk.sh .build/debug/seed
fi
