#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
# A single-node Slurm cluster for the srun tests (SeedDistributedTests); stopped again if this script started it.
if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    trap 'scripts/slurm-local.sh down' EXIT
fi
scripts/slurm-local.sh up
eval "$(scripts/slurm-local.sh env)"
swift build --build-tests
scripts/check-kernel-objects.sh .build/debug
swift test --skip-build "$@"
# The official openai SDK against a real `seed serve` (skipped only when a test filter was given).
if [ $# -eq 0 ]; then
    scripts/test-openai-sdk.sh .build/debug/seed
fi
