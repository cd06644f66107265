#!/usr/bin/env bash
# Build everything and run the demo experiment on the packaged default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh
# Same profile as the tests (dependencies optimised), so nothing builds twice.
cargo build -p forge-host
target/debug/forge-host run configs/nq_naive.toml "$@"
