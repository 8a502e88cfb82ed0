#!/usr/bin/env bash
# All-reduce bus bandwidth of Seed's MPI collectives against memcpy bandwidth, measured in the same run.
#
#   scripts/bench-collectives.sh [--ranks N] [--repeats R] [--min-mib A] [--max-mib B] [--no-overlap]
#
# Starts N ranks (default 2) with mpirun on this machine and runs `seed-mpi-selftest bench`: per message size
# (float32, doubling from A to B MiB), R interleaved rounds of Seed's all-reduce (its own segmented ring over
# MPI_Isend/MPI_Irecv, completed by polling), Open MPI's blocking MPI_Allreduce on the same buffer, and a memcpy of
# the same bytes on every rank at once; each round
# is timed as the slowest rank's time and the table shows medians. algbw = bytes / time and
# busbw = algbw * 2(n-1)/n, as nccl-tests define them; memcpy GB/s = bytes copied / time. Then the overlap check:
# how much of a started 64 MiB all-reduce completes while the caller computes without calling MPI.
# Prints Markdown; logs /proc/loadavg before and after (the numbers are only as quiet as the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

ranks=2
args=()
overlap=(--overlap)
repeats=7
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --min-mib | --max-mib) args+=("$1" "$2"); shift 2 ;;
        --no-overlap) overlap=(); shift ;;
        *) echo "bench-collectives: unknown argument $1" >&2; exit 2 ;;
    esac
done

scripts/install-deps.sh
swift build -c release --product seed-mpi-selftest >/dev/null
bin=.build/release/seed-mpi-selftest

command=(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$bin" bench --repeats "$repeats"
    "${args[@]}" "${overlap[@]}")
echo "## Collectives ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(mpirun --version | head -1))"
echo
echo "command: \`${command[*]}\`"
echo
echo "loadavg before: $(cat /proc/loadavg)"
echo
"${command[@]}"
echo
echo "loadavg after: $(cat /proc/loadavg)"
