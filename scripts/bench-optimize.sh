#!/usr/bin/env bash
# What `forge-host optimize` costs per iteration outside model time: the
# store, the stats and paired tests, the optimizer component call, writing
# split files, planning each evaluation (plugins from the component cache,
# the model loaded) — measured on a run whose model work is small.
#
#   scripts/bench-optimize.sh            # prints a table; add it to BENCHMARKS.md
#
# A scripted optimizer (the test guest, no model) proposes one prompt per
# iteration on 16 secret-word questions (train 4, validation 6, test 6);
# every candidate is gated and validated. Overhead per iteration =
# iteration wall time − the model time (prefill + decode) of its example
# runs, read back from the store.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q -p forge-host
bash scripts/build-plugins.sh >/dev/null 2>&1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
qs = ["What is the secret word?", "Tell me the secret word.", "Which word is the secret one?",
      "Say the secret word.", "What word is secret here?", "Do you know the secret word?",
      "Name the secret word.", "The secret word is what?", "Give me the secret word.",
      "What's the secret word?", "Secret word, please?", "Which is the secret word?",
      "Could you say the secret word?", "What is the hidden secret word?", "Reveal the secret word.",
      "I need the secret word."]
with open(f"{w}/secret.jsonl", "w") as f:
    for i, q in enumerate(qs):
        f.write(json.dumps({"id": f"s{i:02d}", "question": q, "answers": ["zorblax"]}) + "\n")
props = "\n".join(f'{i} = ["Variant {i}: {{question}}"]' for i in range(1, 7))
open(f"{w}/bench.toml", "w").write(f'''name = "bench-optimize"
seed = 5
[model]
source = "smollm2-135m-instruct"
threads = 2
[dataset]
path = "{w}/secret.jsonl"
[method]
plugin = "naive"
params = {{ template = "{{question}}", first_line = true }}
[[metrics]]
plugin = "contains"
[generation]
max_tokens = 4
[optimize]
param = "template"
max_iterations = 6
patience = 6
failures = 2
gate = false
[optimize.splits]
train = 4
validation = 6
test = 6
[optimize.optimizer]
plugin = "scripted_optimizer"
[optimize.optimizer.params.proposals]
{props}
''')
PY
bin=target/debug/forge-host
"$bin" --home "$work/home" --json optimize "$work/bench.toml" > "$work/out.jsonl" 2>/dev/null
python3 - "$work" "$bin" <<'PY'
import json, subprocess, sys, statistics
w, bin_ = sys.argv[1], sys.argv[2]
done = [json.loads(l) for l in open(f"{w}/out.jsonl") if l.startswith("{")]
opt = next(e for e in done if e.get("event") == "optimization")
def model_ms(exp):
    out = subprocess.run([bin_, "--home", f"{w}/home", "export", exp, "--format", "jsonl"],
                         capture_output=True, text=True, check=True).stdout
    ms = 0.0
    for line in out.splitlines():
        r = json.loads(line)
        for c in r.get("calls", []):
            ms += c.get("prefill_ms", 0) + c.get("decode_ms", 0)
    return ms
rows = []
for c in opt["candidates"]:
    if c["iteration"] == 0:
        continue
    exps = [c[k] for k in ("gate_experiment", "validation_experiment", "train_experiment") if c.get(k)]
    model = sum(model_ms(e) for e in exps) / 1000
    rows.append((c["iteration"], c["seconds"], model, len(exps)))
print("| iteration | wall s | model s (prefill+decode) | overhead s | evaluations |")
print("|---|---|---|---|---|")
for it, wall, model, n in rows:
    print(f"| {it} | {wall:.2f} | {model:.2f} | {wall - model:.2f} | {n} |")
ov = [wall - model for _, wall, model, _ in rows]
print(f"\nmedian overhead per iteration: {statistics.median(ov):.2f} s "
      f"({statistics.median(ov) / max(1, statistics.median(n for *_, n in rows)):.2f} s per evaluation)")
PY
