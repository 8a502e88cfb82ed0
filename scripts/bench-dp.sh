#!/usr/bin/env bash
# Data-parallel step-time scaling of `seed train`: 1 rank against 2 ranks (mpirun) on the same global batch.
#
#   scripts/bench-dp.sh [--repeats R] [--steps S] [--zero1]
#
# Trains examples/tiny.toml's model (7.1M parameters) on the fortunes corpus, global batch 8 × 128 tokens in
# micro-batches of 4, for S steps (default 12), in R interleaved rounds (default 3) of three configurations doing the
# same work: 1 rank × 1 thread, 1 rank × 2 threads, 2 ranks × 1 thread each (mpirun). Per run it takes the median
# step time over the steps after the first two (warm-up), and per configuration the median over the rounds; for the
# 2-rank runs also the median per-step communication wait (rank_comm_s) and straggler ratio from log.jsonl.
# The machine has 2 cores shared with other work: the 2-thread and 2-rank rows compete for the same 2 cores.
# Prints Markdown; logs /proc/loadavg before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=3
steps=12
zero=false
while [ $# -gt 0 ]; do
    case "$1" in
        --repeats) repeats=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --zero1) zero=true; shift ;;
        *) echo "bench-dp: unknown argument $1" >&2; exit 2 ;;
    esac
done

scripts/install-deps.sh
# The release build (what users run): a debug build's non-numeric code (data loader, logging) costs several times the
# step here. $SEED_BIN overrides.
if [ -n "${SEED_BIN:-}" ]; then
    seed=$(realpath "$SEED_BIN")
else
    swift build -c release --product seed >/dev/null
    seed=$(pwd)/.build/release/seed
fi
work=${SEED_BENCH_DIR:-/tmp/seed-bench-dp}
mkdir -p "$work"
if [ ! -f "$work/data/manifest.json" ]; then
    "$seed" data prepare --tokenizer smollm2 --input /usr/share/games/fortunes --output "$work/data" >/dev/null 2>&1
fi
sed -e "s|^dir = \"data/fortunes\"|dir = \"$work/data\"|" -e "s|^steps = 300|steps = $steps|" \
    -e 's|^interval = 100|interval = 0|' -e 's|^interval = 50|interval = 0|' -e 's|^warmup_steps = 30|warmup_steps = 2|' \
    examples/tiny.toml >"$work/bench.toml"
printf '\n[distributed]\nzero1 = %s\n' "$zero" >>"$work/bench.toml"

mpirun_command=(mpirun --allow-run-as-root --oversubscribe -np 2)
run() {  # label ranks threads round
    local dir="$work/runs/$1-$4"
    rm -rf "$dir"
    if [ "$2" = 1 ]; then
        "$seed" train "$work/bench.toml" --output "$dir" --quiet --set training.threads="$3" >/dev/null \
            2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    else
        "${mpirun_command[@]}" "$seed" train "$work/bench.toml" --output "$dir" --quiet \
            --set training.threads="$3" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    fi
}

echo "## Data-parallel training: step time, 1 rank against 2 ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
echo
echo "command: \`scripts/bench-dp.sh --repeats $repeats --steps $steps$([ "$zero" = true ] && echo " --zero1")\`" \
    "(model of examples/tiny.toml, global batch 8 × 128 tokens, micro-batch 4, ZeRO-1 $zero)"
echo
echo "loadavg before: $(cat /proc/loadavg)"
for round in $(seq 1 "$repeats"); do
    run r1t1 1 1 "$round"
    run r1t2 1 2 "$round"
    run r2t1 2 1 "$round"
done
echo "loadavg after: $(cat /proc/loadavg)"
echo
python3 - "$work/runs" "$repeats" <<'PY'
import json, statistics, sys
root, repeats = sys.argv[1], int(sys.argv[2])
def runs(label):
    out = []
    for r in range(1, repeats + 1):
        records = [json.loads(line) for line in open(f"{root}/{label}-{r}/log.jsonl")]
        times = [b["elapsed"] - a["elapsed"] for a, b in zip(records, records[1:])][1:]
        comm = [statistics.median(x["rank_comm_s"]) for x in records[2:] if "rank_comm_s" in x]
        ratio = [x["straggler_ratio"] for x in records[2:] if "straggler_ratio" in x]
        out.append((statistics.median(times), statistics.median(comm) if comm else None,
                    statistics.median(ratio) if ratio else None))
    return out
rows = [("1 rank × 1 thread", "r1t1"), ("1 rank × 2 threads", "r1t2"), ("2 ranks × 1 thread (mpirun)", "r2t1")]
base = statistics.median(t for t, _, _ in runs("r1t1"))
print("| configuration | step time, median of rounds (s) | per-round medians (s) | tokens/s | vs 1 rank × 1 thread | comm wait per step (ms) | straggler ratio |")
print("|---|---:|---|---:|---:|---:|---:|")
for name, label in rows:
    results = runs(label)
    median = statistics.median(t for t, _, _ in results)
    comm = [c for _, c, _ in results if c is not None]
    ratio = [s for _, _, s in results if s is not None]
    print(f"| {name} | {median:.3f} | {', '.join(f'{t:.3f}' for t, _, _ in results)} | {1024 / median:.0f} | "
          f"{base / median:.2f}× | {f'{1000 * statistics.median(comm):.1f}' if comm else '–'} | "
          f"{f'{statistics.median(ratio):.2f}' if ratio else '–'} |")
PY
