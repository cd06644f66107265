#!/usr/bin/env bash
# forge's DPO step vs TRL's DPOTrainer + PEFT on PyTorch CPU: same machine,
# same run, same lengths, batch, LoRA rank, threads; reference log-probs
# cached on both sides (forge's cache, TRL's precompute_ref_log_probs), the
# first step untimed on both. Prints both JSON lines and the ratios
# forge/TRL (pairs/s; peak RSS). Not part of `cargo test`.
#
#   scripts/bench-dpo.sh [--threads 2] [--steps 8] [--prompt-len 256] [--completion-len 128] [--pairs 2]
#
# Needs the pinned TRL venv (scripts/oracles/README.md):
#   python3 -m venv /tmp/dpo-venv && /tmp/dpo-venv/bin/pip install -r scripts/oracles/requirements-dpo.txt
# (PY=/path/to/python to use another). Runs forge with and without gradient
# checkpointing (forge's default is on: less memory, one more forward).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
threads=2; steps=8; plen=256; clen=128; pairs=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --prompt-len) plen="$2"; shift 2 ;;
    --completion-len) clen="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--steps N] [--prompt-len N] [--completion-len N] [--pairs N]" >&2; exit 2 ;;
  esac
done
py="${PY:-/tmp/dpo-venv/bin/python}"
[[ -x "$py" ]] || { echo "no TRL venv at $py (see scripts/oracles/README.md)" >&2; exit 1; }
gguf="models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
[[ -f "$gguf" ]] || scripts/fetch-models.sh >&2
data="${DATA:-../shared/data/hh_harmless.train.jsonl}"
cargo build -q -p forge-train --example dpo_step >&2
ex="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/dpo_step"

forge() {
  # As `forge-host train dpo`: gemm on $threads threads, element-wise ops
  # on the calling thread (CANDLE_NUM_THREADS=1, see cli::main).
  RAYON_NUM_THREADS="$threads" CANDLE_NUM_THREADS=1 FORGE_TRAIN_TEST_MODEL="$gguf" "$ex" \
    --prompt-len "$plen" --completion-len "$clen" --pairs "$pairs" --steps "$steps" --rank 8 "$@" | tail -1
}
trl() {
  "$py" scripts/oracles/dpo_trl.py bench --gguf "$gguf" --data "$data" --pairs $((pairs * steps)) \
    --prompt-len "$plen" --completion-len "$clen" --batch-size "$pairs" --steps "$steps" \
    --threads "$threads" --rank 8 --alpha 16 --precompute-ref 2>/dev/null | tail -1
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
f1="$(forge)";                     echo "$f1"
t1="$(trl)";                       echo "$t1"
f2="$(forge --no-checkpointing)";  echo "$f2"
python3 - "$f1" "$t1" "$f2" <<'PY'
import json, sys
f, t, f_nock = (json.loads(x) for x in sys.argv[1:])
for name, x in (("forge (checkpointing)", f), ("forge (no checkpointing)", f_nock)):
    print(f"{name}: {x['pairs/s']:.3f} pairs/s, peak RSS {x['peak_rss_mib']:.0f} MiB; "
          f"TRL {t['pairs/s']:.3f} pairs/s, peak RSS {t['peak_rss_mib']:.0f} MiB; "
          f"ratio forge/TRL throughput {x['pairs/s'] / t['pairs/s']:.2f}x, RSS {x['peak_rss_mib'] / t['peak_rss_mib']:.2f}x")
PY
