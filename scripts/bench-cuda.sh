#!/usr/bin/env bash
# forge on an NVIDIA GPU vs Hugging Face transformers on the same GPU, same
# weights, same run. Two halves, because the GPU machine has no Rust
# toolchain and no network:
#
#   scripts/bench-cuda.sh prepare     # here: builds the `cuda` peer_bench
#                                     # (scripts/build-cuda.sh), strips it,
#                                     # and puts it, the tokenizer of the
#                                     # packaged SmolLM2 and the gguf wheel in
#                                     # target/bench-cuda (what to carry)
#   scripts/bench-cuda.sh run [OUT]   # there (PyTorch + transformers + numpy
#                                     # installed): results in OUT (default
#                                     # target/bench-cuda/out), and one
#                                     # `forge-host run` of an experiment on
#                                     # the GPU, end to end
#
# `run` writes a random-weight llama of SmolLM2-135M's shape as Q8_0 and
# Q4_0 GGUF (scripts/bench-cuda.py model: the packaged 98 MB model does not
# fit the 64 MiB a run may carry), then measures with forge-CUDA: prefill
# tok/s at 512 tokens, decode tok/s at 1/8/32/64 concurrent sequences
# (continuous batching, 32-token prompts, 128 new tokens each), greedy
# agreement with forge-CPU on 20 chat prompts (the same binary, the same
# file); and with HF transformers' batched greedy `generate` on the same
# weights in bf16 and f16, static and dynamic KV cache. results.md
# summarises; the JSON files hold everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
kit="$root/target/bench-cuda"

prepare() {
  mkdir -p "$kit/plugins"
  scripts/build-cuda.sh --bin forge-host --example peer_bench >&2
  # Stripped, each binary is ~65 MB (candle's PTX and MMQ kernels, the
  # component host): xz brings it to ~10 MB, inside what a run may carry.
  strip -o "$kit/peer_bench" target/debug/examples/peer_bench
  strip -o "$kit/forge-host" target/debug/forge-host
  xz -T0 -6 -f "$kit/peer_bench" "$kit/forge-host"
  # For the end-to-end experiment: two components and 16 NQ questions.
  [[ -f target/plugins/naive.wasm ]] || scripts/build-plugins.sh >&2
  cp target/plugins/naive.wasm target/plugins/f1.wasm "$kit/plugins/"
  head -16 ../shared/data/nq_open.dev200.jsonl >"$kit/e2e.jsonl"
  gguf="models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
  [[ -f "$gguf" ]] || scripts/fetch-models.sh >&2
  python3 -c 'import gguf' 2>/dev/null || python3 -m pip install -q gguf==0.19.0 >&2
  python3 scripts/bench-cuda.py tokenizer --from "$gguf" --out "$kit/tokenizer.gguf"
  mkdir -p "$kit/wheels"
  python3 -m pip download -q --no-deps -d "$kit/wheels" gguf==0.19.0 >&2
  du -sh "$kit"/* >&2
  echo "carry target/bench-cuda; on the GPU machine: scripts/bench-cuda.sh run" >&2
}

run() {
  local out="${1:-$kit/out}"
  mkdir -p "$out"
  python3 -m pip install -q --no-index --no-deps --target /tmp/bench-cuda-site "$kit"/wheels/*.whl
  export PYTHONPATH="/tmp/bench-cuda-site${PYTHONPATH:+:$PYTHONPATH}"
  # cudarc links libcuda (the driver) and cuBLAS/cuRAND/NVRTC/cudart 13:
  # PyTorch's cu13 wheels carry the latter.
  local libs
  libs="$(python3 - <<'PY'
import glob, os
import nvidia
dirs = set()
for base in nvidia.__path__:
    for f in glob.glob(os.path.join(base, "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(f))
print(":".join(sorted(dirs)))
PY
)"
  export LD_LIBRARY_PATH="$libs:/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local bin=/tmp/bench-cuda-peer_bench fh=/tmp/bench-cuda-forge-host
  unxz "$kit/peer_bench.xz" "$bin"
  unxz "$kit/forge-host.xz" "$fh"
  if ldd "$bin" | grep "not found"; then
    echo "missing libraries (above) for $bin" >&2
    exit 1
  fi
  {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu --format=csv
  } | tee "$out/machine.txt"

  local models=/tmp/bench-cuda-model
  python3 scripts/bench-cuda.py model --tokenizer "$kit/tokenizer.gguf" --out "$models"
  sha256sum "$models"/*.gguf | tee "$out/models.sha256"
  # A failing step is reported and the others still run (device time is
  # scarce: one run should bring back everything it can).
  step() { local f="$1"; shift; "$@" >"$out/$f" 2>"$out/${f%.json}.err" || echo "FAILED ($?): $*" >&2; cat "$out/$f"; }
  for q in q8_0 q4_0; do
    local m="$models/model-$q.gguf"
    echo "== forge $q: prefill 512 / decode 128, one sequence" >&2
    step "forge-speed-$q.json" "$bin" speed --gguf "$m" --device cuda
    echo "== forge $q: continuous batching, 1/8/32/64 sequences" >&2
    step "forge-batched-$q.json" "$bin" batched --gguf "$m" --device cuda --npl 1,8,32,64 --npp 32 --ntg 128
    echo "== forge $q: agreement with forge-CPU (20 prompts x 32 greedy tokens)" >&2
    step "forge-agree-$q.json" "$bin" agree --raw --gguf "$m" --device cuda --threads "$(nproc)" --n 20 --ntg 32
    # The reference: the same comparison between the CPU engine and the
    # GPU's forward pass run on the CPU (how sensitive this model is).
    step "forge-agree-cpu-tensors-$q.json" "$bin" agree --raw --gguf "$m" --device cpu-tensors --threads "$(nproc)" --n 20 --ntg 32
  done
  echo "== forge-host run: an experiment end to end on the GPU" >&2
  e2e "$fh" cuda "$models/model-q8_0.gguf" "$out" || echo "FAILED: the end-to-end experiment (see e2e.txt)" >&2
  echo "== HF transformers generate, same weights" >&2
  PYTHONUNBUFFERED=1 python3 scripts/bench-cuda.py peer --out "$out/hf.json" --npl 1,8,32,64 --npp 32 --ntg 128 ${HF_ARGS:-} \
    2>"$out/hf.err" || echo "FAILED: HF peer (see hf.err)" >&2
  python3 - "$out" <<'PY' | tee "$out/results.md" || true
import json, os, sys
out = sys.argv[1]
hf = json.load(open(os.path.join(out, "hf.json")))
best = {}
for r in hf["rows"]:
    k = r["npl"]
    if k not in best or r["tg_tok_s"] > best[k]["tg_tok_s"]:
        best[k] = r
print(f"GPU: {hf['gpu']}; torch {hf['torch']}, transformers {hf['transformers']}\n")
print("| weights | sequences | forge-CUDA decode tok/s | HF best tok/s (dtype, cache) | forge / HF |")
print("|---|---|---|---|---|")
for q in ["q8_0", "q4_0"]:
    b = json.load(open(os.path.join(out, f"forge-batched-{q}.json")))
    for r in b["batched"]:
        h = best.get(r["npl"])
        if h:
            print(f"| {q} | {r['npl']} | {r['tg_tok_s']:.0f} | {h['tg_tok_s']:.0f} ({h['dtype']}, {h['cache']}) | {r['tg_tok_s'] / h['tg_tok_s']:.2f} |")
print()
for q in ["q8_0", "q4_0"]:
    s = json.load(open(os.path.join(out, f"forge-speed-{q}.json")))
    a = json.load(open(os.path.join(out, f"forge-agree-{q}.json")))
    r = json.load(open(os.path.join(out, f"forge-agree-cpu-tensors-{q}.json")))
    print(f"forge {q}: prefill {s['pp512_tok_s']:.0f} tok/s at 512, decode {s['tg128_tok_s']:.0f} tok/s alone; gpu {s.get('gpu')}")
    print(f"  greedy agreement CUDA vs CPU engine: {a['identical']}/{a['prompts']} prompts ({a['distinct_continuations']} distinct), "
          f"divergences {a['divergences']}; CUDA batched = alone on {a['device_batched_identical_to_alone']}")
    print(f"  reference, GPU pass on the CPU vs CPU engine: {r['identical']}/{r['prompts']}, divergences {r['divergences']}")
pp = max(r["pp512_tok_s"] for r in hf["rows"])
print(f"HF prefill 512: best {pp:.0f} tok/s")
for r in hf["rows"]:
    print(f"HF {r['dtype']} {r['cache']} npl {r['npl']}: {r['tg_tok_s']:.0f} tok/s, peak {r['peak_gpu_mib']:.0f} MiB allocated")
PY
}

unxz() {
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  chmod +x "$2"
}

# An experiment as a user runs it: `forge-host run` of the naive method on
# 16 NQ questions, 8 at a time (continuous batching), then `show` (which
# prints the GPU's seconds and peak memory). Output in OUT/e2e.txt.
e2e() {
  local fh="$1" device="$2" model="$3" out="$4"
  local home="/tmp/bench-cuda-home-$device"
  rm -rf "$home"
  printf '%s\n' "name = \"gpu-e2e-$device\"" "[model]" "source = \"$model\"" "device = \"$device\"" \
    "[dataset]" "path = \"$kit/e2e.jsonl\"" "[method]" "plugin = \"naive\"" "[[metrics]]" \
    "plugin = \"f1\"" "[generation]" "max_tokens = 24" "[run]" "concurrency = 8" >"$out/e2e-$device.toml"
  {
    FORGE_PLUGIN_PATH="$kit/plugins" "$fh" --home "$home" run "$out/e2e-$device.toml" &&
      "$fh" --home "$home" show "$("$fh" --home "$home" --json list |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["experiments"][0]["experiment"]["id"])')" --rows 3
  } >"$out/e2e.txt" 2>&1
  local rc=$?
  cat "$out/e2e.txt"
  return $rc
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  # The end-to-end step alone, e.g. on the CPU with the default build:
  #   scripts/bench-cuda.sh e2e target/debug/forge-host cpu MODEL.gguf OUTDIR
  e2e) shift; e2e "$@" ;;
  *) echo "usage: $0 prepare | run [OUT] | e2e FORGE_HOST DEVICE MODEL OUT" >&2; exit 2 ;;
esac
