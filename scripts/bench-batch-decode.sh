#!/usr/bin/env bash
# Batched generation, Seed against itself: N sequences generating together through the server's batch runner
# (`seed bench --batch N`), with the one-token rows through the multi-token int8 kernels and, alternately in the
# same process, through the float32 kernels (the path before them). Prints a markdown table: per N, the median
# over ROUNDS rounds of each run's median aggregate tok/s, and the ratio.
# Usage: scripts/bench-batch-decode.sh [ROUNDS=3] [THREADS=2] [GEN_TOKENS=64] [SIZES="1 4 16"]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
threads="${2:-2}"
gen="${3:-64}"
sizes="${4:-1 4 16}"
seed=.build/release/seed
[ -x "$seed" ] || { echo "error: build first: swift build -c release --product seed" >&2; exit 1; }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "loadavg before: $(cat /proc/loadavg)"
for round in $(seq "$rounds"); do
    for n in $sizes; do
        "$seed" bench --threads "$threads" --prompt-tokens 0 --gen-tokens "$gen" --batch "$n" --repeats 3 --json \
            >>"$out"
    done
done
echo "loadavg after: $(cat /proc/loadavg)"
python3 - "$out" "$gen" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
gen, threads = sys.argv[2], sys.argv[3]
print(f"\n| sequences | threads | int8 rows tok/s | float32 rows tok/s | ratio | single-stream tg{gen} tok/s |")
print("|---|---|---|---|---|---|")
for n in sorted({r["batch"] for r in rows}):
    rs = [r for r in rows if r["batch"] == n]
    a = [r["batch_tok_s"] for r in rs]
    b = [r["batch_f32_rows_tok_s"] for r in rs]
    t = [r["tg_tok_s"] for r in rs]
    rng = lambda v: f"{statistics.median(v):.1f} ({min(v):.0f}–{max(v):.0f})"
    print(f"| {n} | {threads} | {rng(a)} | {rng(b)} | {statistics.median(a) / statistics.median(b):.2f} | {rng(t)} |")
PY
