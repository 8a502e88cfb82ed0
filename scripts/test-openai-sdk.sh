#!/usr/bin/env bash
# Runs the official openai Python SDK (from PyPI, cached in a venv) against a real `seed serve` on 127.0.0.1:
# models, chat, streaming chat, completions and error cases. The server is stopped by PID at the end.
#
# Usage: scripts/test-openai-sdk.sh [SEED_BINARY]   (default: the debug build, .build/debug/seed)
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-.build/debug/seed}"
venv="${SEED_PEERS_DIR:-$HOME/.cache/seed/peers}/openai"
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openai>=1.40"
fi
log=$(mktemp)
"$seed" serve --port 0 --threads 2 --parallel 4 > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 600); do
    url=$(grep -o "http://127.0.0.1:[0-9]*" "$log" | head -1 || true)
    [ -n "$url" ] && break
    kill -0 $pid 2>/dev/null || { cat "$log" >&2; echo "seed serve exited early" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "seed serve did not start" >&2; exit 1; }
model=$(sed -n 's/.*(model \([^,]*\),.*/\1/p' "$log" | head -1)
"$venv/bin/python" scripts/sdk/openai_client_check.py "$url" "$model"
