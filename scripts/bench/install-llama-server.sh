#!/usr/bin/env bash
# Builds llama.cpp's HTTP server (`llama-server`) from package registries only, once, and prints its path.
#
# Source: the PyPI sdist of llama-cpp-python 0.3.36, which vendors llama.cpp under vendor/llama.cpp (the same
# llama.cpp that scripts/bench-inference.sh builds through pip, so both benchmarks run one llama.cpp).
# Tools: cmake and ninja from PyPI in a virtual environment when Debian's are absent; gcc/g++ from Debian.
# Build: CPU backend, -march=native (GGML_NATIVE), static libraries, no curl, no OpenSSL, and no web UI
# (LLAMA_USE_PREBUILT_UI=OFF and LLAMA_BUILD_UI=OFF embed an empty asset table instead of downloading one).
#
# Cache: $SEED_PEERS_DIR/llama-server (default ~/.cache/seed/peers/llama-server); the binary is
# bin/llama-server there. Delete that directory to rebuild.
set -euo pipefail
version=0.3.36
peers="${SEED_PEERS_DIR:-$HOME/.cache/seed/peers}"
root="$peers/llama-server"
binary="$root/bin/llama-server"
if [ -x "$binary" ] && [ "$(cat "$root/.version" 2>/dev/null)" = "$version" ]; then
    echo "$binary"
    exit 0
fi
mkdir -p "$root"
if command -v cmake >/dev/null && command -v ninja >/dev/null; then
    cmake=cmake
    generator=(-G Ninja)
else
    if ! "$root/tools/bin/cmake" --version >/dev/null 2>&1 || ! [ -x "$root/tools/bin/ninja" ]; then
        echo "installing cmake and ninja from PyPI into $root/tools ..." >&2
        python3 -m venv "$root/tools"
        "$root/tools/bin/pip" install --quiet --disable-pip-version-check cmake ninja
    fi
    cmake="$root/tools/bin/cmake"
    generator=(-G Ninja -DCMAKE_MAKE_PROGRAM="$root/tools/bin/ninja")
fi
src="$root/src"
if ! [ -f "$src/.complete" ]; then
    echo "downloading the llama-cpp-python $version sdist from PyPI ..." >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # --no-binary for this package only: its build requirements (scikit-build-core, cmake) may come as
    # wheels, otherwise pip would compile cmake from source just to read the sdist's metadata.
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$tmp"
    rm -rf "$src"
    mkdir -p "$src"
    tar -xzf "$tmp/llama_cpp_python-$version.tar.gz" -C "$src" --strip-components=1
    test -f "$src/vendor/llama.cpp/tools/server/CMakeLists.txt"
    touch "$src/.complete"
fi
echo "building llama-server (llama.cpp vendored by llama-cpp-python $version); this takes several minutes ..." >&2
start=$(date +%s)
"$cmake" -S "$src/vendor/llama.cpp" -B "$root/build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DGGML_CCACHE=OFF >&2
"$cmake" --build "$root/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$root/bin"
cp "$root/build/bin/llama-server" "$binary.partial"
mv "$binary.partial" "$binary"
echo "$version" > "$root/.version"
echo "llama-server built in $(($(date +%s) - start)) s" >&2
echo "$binary"
