#!/usr/bin/env bash
# The whole test suite, from a clean clone: toolchain, model, plugin
# components, then every test (unit, component, end-to-end with the real
# model). CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh
# The dashboard's browser test (host/tests/view_dashboard.rs) drives
# Debian's Chromium through chromedriver: install both when missing.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >&2
fi
# The Python plugin (host/tests/python_plugin.rs) is built by
# scripts/build-py-plugins.sh in a venv with componentize-py from PyPI; the
# toolchain and the component are built here, once, before the tests.
if ! python3 -m venv --help >/dev/null 2>&1; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2
fi
scripts/build-py-plugins.sh
# The JavaScript plugin (host/tests/js_plugin.rs): componentize-js from npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
fi
scripts/build-js-plugins.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Plugin logic that is plain Rust (the SQuAD metrics' normalisation, checked
# against the official definition by scripts/oracles, the
# calculator's evaluator, CoT answer extraction, the MediaWiki answers of
# wikipedia_search) and the engine kernels (forge-kernels: bit-exactness of
# every SIMD path against its reference) are unit-tested natively.
cargo test -p forge-kernels -p squad-text -p method-kit -p calculator -p wikipedia_search -p passage_search -p rag-eval -p rag -p retrieval -p context -p faithfulness -p answer_relevance -p pref-eval -p preference -p preference_accuracy -p judge-eval -p pairwise_judge -p judge_verdict --tests 2>&1 | tee -a "$log"
cargo test -p forge-host -- --test-threads 2 2>&1 | tee -a "$log"
# The DPO core (forge-train): gradient checks on a tiny llama, then the
# real model and 20 steps against TRL's fixture (host/tests/golden/dpo).
# CANDLE_NUM_THREADS=1: candle's element-wise thread pool spin-waits at a
# barrier, which on 2 shared cores made a training step 3x slower; the
# matmuls keep their RAYON_NUM_THREADS threads.
CANDLE_NUM_THREADS=1 cargo test -p forge-train -- --test-threads 2 2>&1 | tee -a "$log"
# One closing line over every test binary above. A test that cannot run
# here (a model not fetched, a CPU without the SIMD path it compares)
# prints `SKIPPED: <test>: <reason>` and returns, which libtest counts as
# passed: those are counted apart and taken out of the passes. Under CI
# (`CI` set) a test may not skip; it fails instead.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /SKIPPED: [^ ]+: / { s++ }
     END { printf "all tests: %d passed, %d failed, %d skipped\n", p - s, f, s }' "$log"
