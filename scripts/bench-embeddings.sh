#!/usr/bin/env bash
# Side-by-side sentence-embedding benchmark: Seed (`seed bench-embed`) against sentence-transformers on PyTorch
# (float32, CPU) with all-MiniLM-L6-v2, on the same texts, same threads (1 and 2: Seed's --threads,
# torch.set_num_threads), batch sizes 1 and 32, interleaved, several rounds. Prints a Markdown table for
# BENCHMARKS.md.
#
# The texts: the first 256 sentences of the license texts in /usr/share/common-licenses
# (scripts/bench/embed_sentences.py), 3 to ~200 words each. One timed run embeds all of them (tokenize, encode,
# pool, normalise); each engine reports the median of 3 runs after a warm-up.
#
# The peer is installed once into a virtual environment under ~/.cache/seed/peers (or $SEED_PEERS_DIR): PyTorch's
# CPU-only build torch==2.13.0+cpu (the version the reference embeddings were made with; a 183 MB wheel, about
# 1.4 GB installed with sentence-transformers) when pip can find it, else PyPI's default Linux wheel, which drags
# in the CUDA runtime wheels (about 5.8 GB installed, unused on the CPU). $SEED_TORCH overrides the requirement.
#
# Usage: scripts/bench-embeddings.sh [ROUNDS] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
model="${SEED_MODEL_DIR:-$HOME/.cache/seed/models}/all-MiniLM-L6-v2"
peers="${SEED_PEERS_DIR:-$HOME/.cache/seed/peers}"
venv="$peers/sentence-transformers"
if ! "$venv/bin/python" -c "import sentence_transformers, torch" 2>/dev/null; then
    echo "installing PyTorch (CPU) and sentence-transformers into $venv ..." >&2
    start=$(date +%s)
    rm -rf "$venv"
    python3 -m venv "$venv"
    if [ -n "${SEED_TORCH:-}" ]; then
        "$venv/bin/pip" install --quiet "$SEED_TORCH"
    elif ! "$venv/bin/pip" install --quiet "torch==2.13.0+cpu" 2>/dev/null; then
        echo "no CPU-only torch wheel found; installing PyPI's default torch (pulls CUDA wheels, ~5.8 GB) ..." >&2
        "$venv/bin/pip" install --quiet "torch==2.15.0"
    fi
    "$venv/bin/pip" install --quiet "sentence-transformers==6.2.0"
    echo "installed in $(($(date +%s) - start)) s, $(du -sh "$venv" | cut -f1)" >&2
fi
swift build -c release --product seed >&2
seed=.build/release/seed
texts=$(mktemp)
results=$(mktemp)
trap 'rm -f "$texts" "$results"' EXIT
python3 scripts/bench/embed_sentences.py "$texts" 256
loadavg_before=$(cat /proc/loadavg)
echo "loadavg before: $loadavg_before" >&2
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for batch in 1 32; do
            s=$("$seed" bench-embed --model "$model" --file "$texts" --threads "$threads" --batch-size "$batch" \
                --repeats 3 --json)
            p=$("$venv/bin/python" scripts/bench/st_bench.py --model "$model" --file "$texts" --threads "$threads" \
                --batch-size "$batch" --repeats 3 2>/dev/null)
            echo "seed $threads $batch $s" >> "$results"
            echo "st $threads $batch $p" >> "$results"
            echo "round $round threads $threads batch $batch: seed $s | sentence-transformers $p" >&2
        done
    done
done
loadavg_after=$(cat /proc/loadavg)
echo "loadavg after: $loadavg_after" >&2
python3 - "$results" "$loadavg_before" "$loadavg_after" <<'PY'
import json, statistics, sys
rows = [line.split(" ", 3) for line in open(sys.argv[1])]
def runs(engine, threads, batch):
    return [json.loads(r[3]) for r in rows if r[0] == engine and r[1] == str(threads) and r[2] == str(batch)]
def spread(v):
    return f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"
first = json.loads(rows[0][3])
peer = json.loads(rows[1][3])
print(f"loadavg before `{sys.argv[2]}`, after `{sys.argv[3]}`\n")
print(f"{first['sentences']} sentences, {first['tokens']} tokens per run; sentence-transformers on torch {peer['torch']}\n")
print("| batch | threads | Seed sentences/s | sentence-transformers sentences/s | ratio |")
print("|---|---|---|---|---|")
for batch in (1, 32):
    for threads in (1, 2):
        s = [r["sentences_per_s"] for r in runs("seed", threads, batch)]
        p = [r["sentences_per_s"] for r in runs("st", threads, batch)]
        print(f"| {batch} | {threads} | {spread(s)} | {spread(p)} | {statistics.median(s) / statistics.median(p):.2f} |")
print()
for engine, name in (("seed", "Seed"), ("st", "sentence-transformers")):
    all_runs = [json.loads(r[3]) for r in rows if r[0] == engine]
    print(f"{name}: model load {statistics.median(r['load_s'] for r in all_runs):.3f} s, peak RSS "
          f"{min(r['rss_mb'] for r in all_runs):.0f}–{max(r['rss_mb'] for r in all_runs):.0f} MB")
PY
