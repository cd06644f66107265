#!/usr/bin/env bash
# The whole test suite, from a clean clone: toolchain, model, plugin
# components, then every test (unit, component, end-to-end with the real
# model). CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh
# squad-text is a plain library shared by the metric components: test it natively.
cargo test --quiet -p squad-text
cargo test -p forge-host -- --test-threads 2
