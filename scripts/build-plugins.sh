#!/usr/bin/env bash
# Build every plugin component (and the test-only guests) for wasm32-wasip2
# and copy the .wasm files to target/plugins/. Its own target dir, so it can
# run while another cargo holds target/ (e.g. from inside `cargo test`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup target list --installed 2>/dev/null | grep -q wasm32-wasip2 || rustup target add wasm32-wasip2 >&2
pkgs=(naive cot cot_fewshot self_consistency react rag preference pairwise_judge exact_match f1 contains retrieval context faithfulness answer_relevance preference_accuracy judge_verdict interviewer fewshot instruction_rank calculator wikipedia_search passage_search hostile hostile_metric echo_tool future_contract replay engine_probe scripted_optimizer)
args=(); for p in "${pkgs[@]}"; do args+=(-p "$p"); done
cargo build --quiet --profile plugin --target wasm32-wasip2 --target-dir target/wasm "${args[@]}"
mkdir -p target/plugins
for p in "${pkgs[@]}"; do
  cp -p "target/wasm/wasm32-wasip2/plugin/$p.wasm" "target/plugins/$p.wasm"
done
echo "plugins built in target/plugins" >&2
