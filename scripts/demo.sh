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
echo "== seed serve, and one chat request with curl" >&2
log=$(mktemp)
"$seed" serve --port 0 > "$log" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 300); do
    url=$(grep -o "http://127.0.0.1:[0-9]*" "$log" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "seed serve did not start" >&2; exit 1; }
cat "$log" >&2
curl -s "$url/v1/chat/completions" -H "Content-Type: application/json" \
    -d '{"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 32, "temperature": 0}'
echo
