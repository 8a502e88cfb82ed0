#!/usr/bin/env bash
# Side-by-side training benchmark: Seed (`seed bench-train`) against PyTorch on the CPU (scripts/bench/train_bench.py:
# the same Llama, same parameter count, same synthetic tokens, same batch, AdamW + clipping) in three modes: eager
# float32, bf16 autocast, torch.compile (float32). Two shapes: GPT-2-small (examples/gpt2-small.toml at batch 4 x
# sequence 256, no accumulation: 12 layers, 768 wide, 12 heads, 124M parameters with the tied 49152-token embedding)
# and examples/tiny.toml as it is (batch 8 as two accumulated micro-batches of 4 x 128). Threads 1 and 2 (Seed's
# --threads; torch.set_num_threads, OMP/MKL/OPENBLAS_NUM_THREADS), every engine run once per round in turn,
# ROUNDS rounds; each run reports the median of its timed steps after warm-up, the table the median over rounds.
# Warm-up: PyTorch 1 step (for torch.compile that step includes the compilation); Seed 2 steps (its tape arena
# takes its final size at the start of the second step, after which a step allocates nothing).
#
# MFU = tokens/s x (6 N + 6 layers hidden seq) / sgemm peak, where N is the parameter count and the second term the
# causal attention's score and mixing products (forward + backward); the peak is scripts/bench/ceilings.py's float32
# 2048^3 numpy/OpenBLAS product at the same thread count, measured in each round.
#
# The peer is installed once into a virtual environment under ~/.cache/seed/peers (or $SEED_PEERS_DIR):
# torch==2.13.0+cpu when pip can find it (the local find-links has it), else PyPI's default torch; plus numpy for
# ceilings.py. $SEED_TORCH overrides the requirement.
#
# Seed runs in each of SEED_PRECISIONS: fp32 (sgemm) and bf16 (training.precision = "bf16": every linear layer's
# and the head's products with bf16 operands and float32 sums, like PyTorch's autocast; the rest float32).
#
# Usage: scripts/bench-train.sh [ROUNDS] (default 2). Environment: GPT2_STEPS (timed steps per run, default 1),
# TINY_STEPS (default 3), MODES (default "eager bf16 compile"), THREADS (default "1 2"), SHAPES (default
# "gpt2-small tiny"), SEED_PRECISIONS (default "fp32 bf16"), BENCH_RESULTS (file for the raw JSON lines; default a
# temporary file), SEED_BENCH_NO_BUILD=1 (use the existing .build/release/seed).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
gpt2_steps="${GPT2_STEPS:-1}"
tiny_steps="${TINY_STEPS:-3}"
modes="${MODES:-eager bf16 compile}"
thread_counts="${THREADS:-1 2}"
precisions="${SEED_PRECISIONS:-fp32 bf16}"
peers="${SEED_PEERS_DIR:-$HOME/.cache/seed/peers}"
venv="$peers/torch-cpu"
if ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
    echo "installing PyTorch (CPU) and numpy into $venv ..." >&2
    start=$(date +%s)
    rm -rf "$venv"
    mkdir -p "$peers"
    python3 -m venv "$venv"
    if [ -n "${SEED_TORCH:-}" ]; then
        "$venv/bin/pip" install --quiet "$SEED_TORCH"
    elif ! "$venv/bin/pip" install --quiet "torch==2.13.0+cpu" 2>/dev/null; then
        echo "no CPU-only torch wheel found; installing PyPI's default torch (pulls CUDA wheels, ~5.8 GB) ..." >&2
        "$venv/bin/pip" install --quiet torch
    fi
    "$venv/bin/pip" install --quiet numpy
    echo "installed in $(($(date +%s) - start)) s, $(du -sh "$venv" | cut -f1)" >&2
fi
[ -n "${SEED_BENCH_NO_BUILD:-}" ] || swift build -c release --product seed >&2
seed=.build/release/seed
results="${BENCH_RESULTS:-$(mktemp)}"
: > "$results"
echo "raw results: $results" >&2

# name config steps overrides...
shapes=(
    "gpt2-small|examples/gpt2-small.toml|$gpt2_steps|--set training.batch_size=4 --set training.micro_batch_size=4 --set training.seq_len=256"
    "tiny|examples/tiny.toml|$tiny_steps|"
)
loadavg_before=$(cat /proc/loadavg)
echo "loadavg before: $loadavg_before" >&2
for round in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    for threads in $thread_counts; do
        export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
        c=$("$venv/bin/python" scripts/bench/ceilings.py)
        peak=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sgemm_gflop_s"])' "$c")
        echo "ceiling $threads - $c" >> "$results"
        echo "round $round threads $threads: ceilings $c" >&2
        for shape in "${shapes[@]}"; do
            IFS='|' read -r name config steps sets <<< "$shape"
            case " ${SHAPES:-gpt2-small tiny} " in *" $name "*) ;; *) continue ;; esac
            for precision in $precisions; do
                # shellcheck disable=SC2086
                s=$("$seed" bench-train "$config" $sets --threads "$threads" --steps "$steps" --warmup 2 \
                    --precision "$precision" --peak-gflops "$peak" --json)
                echo "seed-$precision $threads $name $s" >> "$results"
                echo "round $round threads $threads $name: seed $precision $s" >&2
            done
            parameters=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["parameters"])' "$s")
            for mode in $modes; do
                # shellcheck disable=SC2086
                p=$("$venv/bin/python" scripts/bench/train_bench.py "$config" $sets --mode "$mode" \
                    --threads "$threads" --steps "$steps" --warmup 1 --expect-parameters "$parameters" \
                    --peak-gflops "$peak")
                echo "torch-$mode $threads $name $p" >> "$results"
                echo "round $round threads $threads $name: torch $mode $p" >&2
            done
        done
    done
done
loadavg_after=$(cat /proc/loadavg)
echo "loadavg after: $loadavg_after" >&2
python3 - "$results" "$loadavg_before" "$loadavg_after" "$modes" "$thread_counts" "$precisions" <<'PY'
import json, statistics, sys
rows = [line.rstrip("\n").split(" ", 3) for line in open(sys.argv[1])]
modes = sys.argv[4].split()
thread_counts = [int(t) for t in sys.argv[5].split()]
precisions = sys.argv[6].split()
def runs(engine, threads, name):
    return [json.loads(r[3]) for r in rows if r[0] == engine and r[1] == str(threads) and r[2] == name]
def spread(v, digits=1):
    return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}–{max(v):.{digits}f})"
print(f"loadavg before `{sys.argv[2]}`, after `{sys.argv[3]}`\n")
peer = next(json.loads(r[3]) for r in rows if r[0].startswith("torch-"))
print(f"PyTorch {peer['torch']}; tokens/s: median over rounds (min–max) of each run's median step; ratios = Seed / PyTorch "
      "of the medians; MFU against the sgemm peak of the same thread count\n")
for t in thread_counts:
    c = [json.loads(r[3])["sgemm_gflop_s"] for r in rows if r[0] == "ceiling" and r[1] == str(t)]
    print(f"- sgemm peak, {t} thread(s): {spread(c)} GFLOP/s")
print()
for name in ("gpt2-small", "tiny"):
    first = runs(f"seed-{precisions[0]}", thread_counts[0], name)
    if not first:
        continue
    f = first[0]
    print(f"**{name}**: {f['parameters']:,} parameters, batch {f['batch_size']} (micro-batch {f['micro_batch_size']}) "
          f"x sequence {f['seq_len']} = {f['tokens_per_step']} tokens/step, {f['flops_per_token'] / 1e6:.1f} "
          f"MFLOP/token, {f['steps']} timed step(s) per run after warm-up\n")
    print("| threads | engine | tokens/s | MFU | " + " | ".join(f"Seed {p} ratio" for p in precisions) + " |")
    print("|---|---|---|---|" + "---|" * len(precisions))
    blank = " |" * len(precisions)
    for t in thread_counts:
        seed = {}
        for precision in precisions:
            measured = runs(f"seed-{precision}", t, name)
            if not measured:
                continue
            seed[precision] = statistics.median(r["tokens_per_s"] for r in measured)
            mfu = statistics.median(r["mfu"] for r in measured)
            print(f"| {t} | Seed {precision} | {spread([r['tokens_per_s'] for r in measured])} | {100 * mfu:.1f}% |{blank}")
        for mode in modes:
            p = [r["tokens_per_s"] for r in runs(f"torch-{mode}", t, name)]
            if not p:
                continue
            mfu = statistics.median(r["mfu"] for r in runs(f"torch-{mode}", t, name))
            label = {"eager": "PyTorch eager fp32", "bf16": "PyTorch bf16 autocast", "compile": "PyTorch torch.compile fp32"}[mode]
            ratios = " | ".join(f"{seed[q] / statistics.median(p):.2f}x" if q in seed else "" for q in precisions)
            print(f"| {t} | {label} | {spread(p)} | {100 * mfu:.1f}% | {ratios} |")
    print()
PY
