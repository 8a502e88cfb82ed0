#!/usr/bin/env bash
# Fails if a numeric module's object code calls libm's fmaf/fma: that happens when a target loses its CPU flags
# (-march=x86-64-v4, see DESIGN §3) and every SIMD fused multiply-add becomes a function call per lane.
# Usage: scripts/check-kernel-objects.sh [BUILD_DIR] (default .build/debug; run after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-.build/debug}"
status=0
checked=0
for target in SeedTensor SeedKernels CSeedKernels SeedFormats SeedModels; do
    for object in "$build/$target.build"/*.o; do
        [ -e "$object" ] || continue
        checked=$((checked + 1))
        # In a relocatable object the call's target shows as a relocation on the following line.
        if objdump -dr --no-show-raw-insn "$object" | grep -Eq 'call.*<fmaf?(@plt)?>|R_X86_64_(PLT32|PC32)[[:space:]]+fmaf?-'; then
            echo "error: $object calls fmaf/fma (numeric target built without its CPU flags?)" >&2
            status=1
        fi
    done
done
if [ "$checked" -eq 0 ]; then
    echo "error: no kernel objects under $build; build first" >&2
    exit 1
fi
[ "$status" -eq 0 ] && echo "kernel objects: $checked checked, no libm fma calls" >&2
exit $status
