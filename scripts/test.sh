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
if [ $# -eq 0 ]; then
    # Three phases. The server's socket tests need the shared task threads to answer within the test client's
    # 20 s read timeout; the launch suites (mpirun, srun, whole training runs) wait for minutes from those
    # threads, and on a 2-core machine the compute-heavy suites keep them busy too. So the socket tests run
    # apart from both, and the launch suites last.
    socket_suites='OpenAIServerTests|ServerLoadTests|ServerWithModelTests|ServeCLITests'
    launch_suites='DistributedTrainCLITests|MPILaunchTests|SlurmLaunchTests'
    swift test --skip-build --skip "$socket_suites|$launch_suites"
    swift test --skip-build --filter "$socket_suites"
    swift test --skip-build --filter "$launch_suites"
else
    swift test --skip-build "$@"
fi
# The official openai SDK against a real `seed serve` (skipped only when a test filter was given).
if [ $# -eq 0 ]; then
    scripts/test-openai-sdk.sh .build/debug/seed
fi
