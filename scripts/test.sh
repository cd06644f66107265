#!/usr/bin/env bash
# The whole test suite, from a clean clone: fetch the model, build the
# plugin components, then every test (unit, component, end-to-end with the
# real model). CI runs this through .ci/run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup toolchain install >&2  # the pinned toolchain (rust-toolchain.toml) with wasm32-wasip2
scripts/fetch-models.sh
scripts/build-plugins.sh
# squad-text is a plain library shared by the metric components: test it natively.
cargo test --quiet -p squad-text
cargo test -p forge-host -- --test-threads 2
