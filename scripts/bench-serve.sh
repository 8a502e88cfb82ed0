#!/usr/bin/env bash
# Side-by-side serving benchmark: `seed serve` against llama.cpp's `llama-server` (continuous batching,
# parallel slots) on the same GGUF, same threads, same number of parallel sequences, same streamed requests
# over the OpenAI HTTP API. Servers are interleaved (their order alternates between rounds); the table gives
# medians over the rounds. Prints a Markdown table for BENCHMARKS.md; progress goes to standard error.
#
# llama-server is built once from the llama.cpp vendored in PyPI's llama-cpp-python sdist
# (scripts/bench/install-llama-server.sh). Seed: $SEED_BIN if set, else `swift build -c release --product seed`.
# If that seed has no `serve` command, only llama-server runs and the Seed column says "pending".
#
# Usage: scripts/bench-serve.sh [ROUNDS] (default 3)
# Environment: BENCH_THREADS (default "2"; e.g. "1,2"), BENCH_CONCURRENCY (default "1,4,16"),
#   BENCH_PARALLEL (slots, default 16), BENCH_MAX_TOKENS (default 128), BENCH_REQUESTS (requests per
#   concurrency level, split over the clients, at least 2 each; default 16), BENCH_ENDPOINT (chat|completions).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
model=$(scripts/fetch-models.sh)
llama_server=$(scripts/bench/install-llama-server.sh)
if [ -n "${SEED_BIN:-}" ]; then
    seed="$SEED_BIN"
else
    scripts/install-deps.sh
    swift build -c release --product seed >&2
    seed=.build/release/seed
fi
seed_args=(--seed "$seed")
if ! "$seed" --help | grep -qE '^  serve( |$)'; then
    echo "warning: $seed has no 'serve' command; running llama-server alone (Seed column pending)" >&2
    seed_args=()
fi
python3 scripts/bench/serve_bench.py "${seed_args[@]}" --llama-server "$llama_server" --model "$model" \
    --rounds "$rounds" --threads "${BENCH_THREADS:-2}" --concurrency "${BENCH_CONCURRENCY:-1,4,16}" \
    --parallel "${BENCH_PARALLEL:-16}" --max-tokens "${BENCH_MAX_TOKENS:-128}" \
    --requests "${BENCH_REQUESTS:-16}" --endpoint "${BENCH_ENDPOINT:-chat}"
