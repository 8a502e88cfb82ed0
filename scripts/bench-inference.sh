#!/usr/bin/env bash
# Side-by-side inference benchmark: Seed against llama.cpp on the same GGUF, same threads, same work
# (llama-bench's pp64, pp512 and tg128), interleaved, several repeats; plus the machine's ceilings measured
# in the same run. Prints a Markdown table for BENCHMARKS.md.
#
# llama.cpp comes from PyPI: llama-cpp-python builds the llama.cpp it vendors (CPU backend, -march=native)
# into a virtual environment under ~/.cache/seed/peers, once.
#
# Time to first token (whole process, start to first generated token) is measured against llama.cpp's
# llama-completion, built from the same PyPI sdist by scripts/bench/install-llama-server.sh.
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
llama_server=$(scripts/bench/install-llama-server.sh)
llama_completion="$(dirname "$llama_server")/llama-completion"
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
for threads in 1 2; do
    python3 scripts/bench/ttft.py --seed "$seed" --llama-completion "$llama_completion" --model "$model" \
        --threads "$threads" --repeats 5 | while read -r line; do echo "ttft $threads 0 0 $line"; done >> "$results"
done
loadavg_after=$(cat /proc/loadavg)
echo "loadavg after: $loadavg_after" >&2
info=$("$seed" info "$model")
params=$(awk '/^parameters:/ {print $2}' <<< "$info")
# float32 K and V for 512 positions: layers x 2 x kv_heads x head_dim x 512 x 4 bytes
kv_bytes=$(awk '/block_count =/ {l=$3} /head_count_kv =/ {k=$3} /embedding_length =/ {e=$3} /attention.head_count =/ {h=$3}
    END {print l * 2 * k * (e / h) * 512 * 4}' <<< "$info")
python3 - "$results" "$model" "$loadavg_before" "$loadavg_after" "$params" "$kv_bytes" <<'PY'
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
            ceiling = statistics.median(values("ceiling", threads, 0, 0, "read_gb_s")) * 1e9 / model_bytes
        ms, ml = statistics.median(s), statistics.median(l)
        print(f"| {name} | {threads} | {spread(s)} | {spread(l)} | {ms / ml:.2f} | {ms / ceiling:.2f} | {ml / ceiling:.2f} |")
for threads in (1, 2):
    c = [json.loads(r[4]) for r in rows if r[0] == "ceiling" and r[1] == str(threads)]
    print(f"\nceilings, {threads} thread(s): read {statistics.median(x['read_gb_s'] for x in c):.1f} GB/s, "
          f"memcpy {statistics.median(x['memcpy_gb_s'] for x in c):.1f} GB/s, "
          f"sgemm {statistics.median(x['sgemm_gflop_s'] for x in c):.0f} GFLOP/s", end="")
print()
for threads in (1, 2):
    s = values("seed", threads, 512, 0, "rss_mb") ; l = values("llamacpp", threads, 512, 0, "rss_mb")
    ls = values("seed", threads, 512, 0, "load_s") ; ll = values("llamacpp", threads, 512, 0, "load_s")
    print(f"\npeak RSS (pp512 run), {threads} thread(s): Seed {statistics.median(s):.0f} MB, llama.cpp "
          f"{statistics.median(l):.0f} MB; model load: Seed {statistics.median(ls):.3f} s, llama.cpp {statistics.median(ll):.3f} s", end="")
print()
kv_mb = int(sys.argv[6]) / 2**20
for threads in (1, 2):
    s = statistics.median(values("seed", threads, 512, 0, "rss_mb"))
    budget = model_bytes / 2**20 + kv_mb + 64
    print(f"\nRSS budget, {threads} thread(s): Seed {s:.0f} MB against model {model_bytes / 2**20:.0f} MB + "
          f"float32 KV of 512 positions {kv_mb:.1f} MB + 64 MB = {budget:.0f} MB: {'within' if s <= budget else 'OVER'}", end="")
print("\n\n| time to first token (process start, 6-token prompt, 1 token) | threads | Seed s | llama.cpp s | "
      "ratio (llama.cpp / Seed) | Seed peak RSS MB | llama.cpp peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for threads in (1, 2):
    t = {json.loads(r[4])["engine"]: json.loads(r[4]) for r in rows if r[0] == "ttft" and r[1] == str(threads)}
    s, l = t["seed"], t["llamacpp"]
    print(f"| whole process | {threads} | {s['ttft_s']:.3f} ({s['ttft_min_s']:.3f}–{s['ttft_max_s']:.3f}) | "
          f"{l['ttft_s']:.3f} ({l['ttft_min_s']:.3f}–{l['ttft_max_s']:.3f}) | {l['ttft_s'] / s['ttft_s']:.2f} | "
          f"{s['rss_mb']:.0f} | {l['rss_mb']:.0f} |")
PY
rm -f "$results"
