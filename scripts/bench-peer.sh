#!/usr/bin/env bash
# forge vs llama.cpp on the default GGUF, same machine, same run, 2 threads:
#   1. llama-bench pp512 / tg128 and forge's own prefill/decode (peer_bench
#      example), with the ratios forge/llama.cpp;
#   2. continuous batching: llama-batched-bench's decode throughput (S_TG)
#      at 1 and 8 parallel sequences vs forge's (peer_bench batched), same
#      prompt/generation lengths, with the ratios;
#   3. parity: forge's greedy 32-token continuations vs llama-server's at
#      temperature 0 on 100 ChatML prompts from the shared data (nq_open +
#      squad), through forge's OpenAI backend, against llama-server as it
#      runs by default and with -ub 1; and the two llama-servers compared.
# Builds llama.cpp first if needed (scripts/build-llama-cpp.sh, ~20+ min on
# 2 cores, cached). Not part of `cargo test`: too slow to build in CI.
#   scripts/bench-peer.sh [--threads 2] [--n 100]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
threads=2; n=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--n N]" >&2; exit 2 ;;
  esac
done
gguf="models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
[[ -f "$gguf" ]] || scripts/fetch-models.sh >&2
bin="$(scripts/build-llama-cpp.sh)"
nice_run() { nice -n "${NICE:-0}" "$@"; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== llama-bench (pp512, tg128, -t $threads)"
lb_json="$(nice_run "$bin/llama-bench" -m "$gguf" -p 512 -n 128 -t "$threads" -r 3 -o json)"
pp_peer="$(python3 -c 'import json,sys; d=json.load(sys.stdin); print([r["avg_ts"] for r in d if r["n_prompt"]>0][0])' <<<"$lb_json")"
tg_peer="$(python3 -c 'import json,sys; d=json.load(sys.stdin); print([r["avg_ts"] for r in d if r["n_gen"]>0][0])' <<<"$lb_json")"
echo "llama.cpp: pp512 $pp_peer tok/s, tg128 $tg_peer tok/s"

# The dev profile: dependencies (candle) at opt-level 3, as tests and the
# demo run; a --release build of wasmtime+candle takes too long on 2 cores.
echo "== forge (host/examples/peer_bench.rs speed, dev profile)"
cargo build --quiet -p forge-host --example peer_bench >&2
ex="target/debug/examples/peer_bench"
forge_json="$(nice_run "$ex" speed --threads "$threads")"
echo "forge: $forge_json"
python3 - "$forge_json" "$pp_peer" "$tg_peer" <<'PY'
import json, sys
f = json.loads(sys.argv[1]); pp, tg = float(sys.argv[2]), float(sys.argv[3])
print(f"ratio forge/llama.cpp: prefill {f['pp512_tok_s']/pp:.3f}, decode {f['tg128_tok_s']/tg:.3f}")
PY

echo "== batched decode (npp 32, ntg 64, 1 and 8 sequences, -t $threads)"
bb_jsonl="$(nice_run "$bin/llama-batched-bench" -m "$gguf" -t "$threads" -c 4096 -npp 32 -ntg 64 -npl 1,8 --output-format jsonl 2>/dev/null)"
forge_bb="$(nice_run "$ex" batched --threads "$threads" --npl 1,8 --npp 32 --ntg 64)"
echo "llama.cpp: $bb_jsonl"
echo "forge: $forge_bb"
python3 - "$forge_bb" "$bb_jsonl" <<'PY'
import json, sys
f = {r["npl"]: r["tg_tok_s"] for r in json.loads(sys.argv[1])["batched"]}
p = {}
for line in sys.argv[2].splitlines():
    if line.strip().startswith("{"):
        r = json.loads(line)
        p[r["pl"]] = r["speed_tg"]
for n in sorted(f):
    print(f"npl {n}: forge {f[n]:.1f} tok/s, llama.cpp {p.get(n, float('nan')):.1f} tok/s, ratio {f[n]/p[n]:.3f}" if n in p else f"npl {n}: forge {f[n]:.1f} tok/s")
if 1 in f and 8 in f:
    print(f"forge batch-8 / batch-1: {f[8]/f[1]:.2f}x")
PY

# Parity twice: llama-server as it runs by default (a prompt is prefilled in
# batches of up to 512 rows, where its CPU flash attention takes a tiled
# f32 path) and with -ub 1 (every row alone, the flash-attention row path
# it also decodes with, which is what forge computes for every row); then
# llama.cpp against itself across the two.
out_dir="$(mktemp -d)"
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true; rm -rf "$out_dir"' EXIT
for mode in default ub1; do
  echo "== parity on $n prompts (llama-server $mode, temperature 0)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  extra=()
  [[ "$mode" == ub1 ]] && extra=(-ub 1)
  # One server thread: llama.cpp's outputs are the same for any thread count
  # (checked), and its spinning workers crawl on a loaded machine.
  nice_run "$bin/llama-server" -m "$gguf" -t 1 --host 127.0.0.1 --port "$port" -c 2048 -np 1 "${extra[@]}" >"$out_dir/$mode.log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 1
  done
  nice_run "$ex" parity --url "http://127.0.0.1:$port" --n "$n" --out "$out_dir/$mode.jsonl"
done
python3 - "$out_dir/default.jsonl" "$out_dir/ub1.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
same = sum(x["peer"] == y["peer"] for x, y in zip(a, b))
print(f"llama-server default vs -ub 1, all 32 tokens identical: {same}/{len(a)}")
PY
