#!/usr/bin/env bash
# The whole test suite, from a clean clone: toolchain, model, plugin
# components, then every test (unit, component, end-to-end with the real
# model). CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Plugin logic that is plain Rust (the SQuAD metrics' normalisation, checked
# against the official definition by scripts/oracles, the
# calculator's evaluator, CoT answer extraction, the MediaWiki answers of
# wikipedia_search) and the engine kernels (forge-kernels: bit-exactness of
# every SIMD path against its reference) are unit-tested natively.
cargo test -p forge-kernels -p squad-text -p method-kit -p calculator -p wikipedia_search -p rag-eval -p rag -p retrieval -p context -p faithfulness -p answer_relevance --tests 2>&1 | tee -a "$log"
cargo test -p forge-host -- --test-threads 2 2>&1 | tee -a "$log"
# One closing line over every test binary above.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
