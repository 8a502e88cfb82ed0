#!/usr/bin/env bash
# Side-by-side inference benchmark: Seed against llama.cpp on the same GGUF, same threads, same work
# (llama-bench's pp64, pp512 and tg128), interleaved, several repeats; plus the machine's ceilings measured
# in the same run. Prints a Markdown table for BENCHMARKS.md.
#
# llama.cpp comes from PyPI: llama-cpp-python builds the llama.cpp it vendors (CPU backend, -march=native)
# into a virtual environment under ~/.cache/seed/peers, once.
#
# Usage: scripts/bench-inference.sh [ROUNDS] (default 3 rounds; each round runs every cell once, median of 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
scripts/install-deps.sh
model=$(scripts/fetch-models.sh)
peers="${SEED_PEERS_DIR:-$HOME/.cache/seed/peers}"
venv="$peers/llamacpp"
if ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
    echo "building llama.cpp (llama-cpp-python from PyPI) into $venv; this takes several minutes ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet cmake ninja
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
        "$venv/bin/pip" install --quiet --no-cache-dir llama-cpp-python
fi
"$venv/bin/python" -c "import numpy" 2>/dev/null || "$venv/bin/pip" install --quiet numpy
swift build -c release --product seed >&2
seed=.build/release/seed
results=$(mktemp)
echo "loadavg before: $(cat /proc/loadavg)" >&2
loadavg_before=$(cat /proc/loadavg)
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for work in "64 0" "512 0" "0 128"; do
            set -- $work
            s=$("$seed" bench --model "$model" --threads "$threads" --prompt-tokens "$1" --gen-tokens "$2" --repeats 3 --json)
            l=$("$venv/bin/python" scripts/bench/llamacpp_bench.py --model "$model" --threads "$threads" \
                --prompt-tokens "$1" --gen-tokens "$2" --repeats 3)
            echo "seed $threads $1 $2 $s" >> "$results"
            echo "llamacpp $threads $1 $2 $l" >> "$results"
            echo "round $round threads $threads pp $1 tg $2: seed $s | llama.cpp $l" >&2
        done
    done
    for threads in 1 2; do
        c=$(OPENBLAS_NUM_THREADS=$threads "$venv/bin/python" scripts/bench/ceilings.py)
        echo "ceiling $threads 0 0 $c" >> "$results"
    done
done
loadavg_after=$(cat /proc/loadavg)
echo "loadavg after: $loadavg_after" >&2
params=$("$seed" info "$model" | awk '/^parameters:/ {print $2}')
python3 - "$results" "$model" "$loadavg_before" "$loadavg_after" "$params" <<'PY'
import json, os, statistics, sys
rows = [line.split(" ", 4) for line in open(sys.argv[1])]
model_bytes = os.path.getsize(sys.argv[2])
params = int(sys.argv[5])  # from `seed info`
def values(engine, threads, pp, tg, key):
    return [json.loads(r[4])[key] for r in rows if r[0] == engine and r[1] == str(threads) and r[2] == str(pp) and r[3] == str(tg)]
def spread(v):
    return f"{statistics.median(v):.1f} ({min(v):.0f}–{max(v):.0f})"
print(f"loadavg before `{sys.argv[3]}`, after `{sys.argv[4]}`\n")
print("| work | threads | Seed tok/s | llama.cpp tok/s | ratio | Seed / ceiling | llama.cpp / ceiling |")
print("|---|---|---|---|---|---|---|")
for pp, tg, name in [(64, 0, "pp64"), (512, 0, "pp512"), (0, 128, "tg128")]:
    for threads in (1, 2):
        key = "pp_tok_s" if pp else "tg_tok_s"
        s = values("seed", threads, pp, tg, key)
        l = values("llamacpp", threads, pp, tg, key)
        if pp:
            ceiling = statistics.median(values("ceiling", threads, 0, 0, "sgemm_gflop_s")) * 1e9 / (2 * params)
        else:
            ceiling = statistics.median(values("ceiling", threads, 0, 0, "memcpy_gb_s")) * 1e9 / model_bytes
        ms, ml = statistics.median(s), statistics.median(l)
        print(f"| {name} | {threads} | {spread(s)} | {spread(l)} | {ms / ml:.2f} | {ms / ceiling:.2f} | {ml / ceiling:.2f} |")
for threads in (1, 2):
    c = [json.loads(r[4]) for r in rows if r[0] == "ceiling" and r[1] == str(threads)]
    print(f"\nceilings, {threads} thread(s): memcpy {statistics.median(x['memcpy_gb_s'] for x in c):.1f} GB/s, "
          f"sgemm {statistics.median(x['sgemm_gflop_s'] for x in c):.0f} GFLOP/s", end="")
print()
for threads in (1, 2):
    s = values("seed", threads, 512, 0, "rss_mb") ; l = values("llamacpp", threads, 512, 0, "rss_mb")
    ls = values("seed", threads, 512, 0, "load_s") ; ll = values("llamacpp", threads, 512, 0, "load_s")
    print(f"\npeak RSS (pp512 run), {threads} thread(s): Seed {statistics.median(s):.0f} MB, llama.cpp "
          f"{statistics.median(l):.0f} MB; model load: Seed {statistics.median(ls):.3f} s, llama.cpp {statistics.median(ll):.3f} s", end="")
print()
PY
rm -f "$results"
