#!/usr/bin/env bash
# Sets up Seed on a fresh Debian machine and runs the default model end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
swift build -c release --product seed
seed=.build/release/seed
echo "== seed generate (greedy)" >&2
"$seed" generate --prompt "The capital of France is" --temperature 0 --max-tokens 24
echo "== seed chat (one turn from a pipe)" >&2
echo "What is the capital of France? Answer in one sentence." | "$seed" chat --temperature 0 --max-tokens 48
