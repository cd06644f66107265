#!/usr/bin/env bash
# The same metric in Rust, Python and JavaScript, in one run: `forge-host
# plugins new metric` writes the same rule (a reference inside the answer,
# ignoring case) in each language; for each, the build time, the component
# size, the cold load (compiling it with Cranelift), the warm load (compiled
# code from the cache) and the cost of one call (fresh sandboxed instance +
# call, median over 200 rows). Prints a Markdown table for BENCHMARKS.md.
#
#   scripts/bench-plugin-languages.sh
#
# Needs the toolchains the build scripts install (target/py-toolchain,
# target/js-toolchain) and the forge-host debug build (the profile tests and
# the demo use).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/build-py-plugins.sh >/dev/null 2>&1
bash scripts/build-js-plugins.sh >/dev/null 2>&1
cargo build -q -p forge-host
forge="$root/target/debug/forge-host"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export FORGE_TOOLCHAINS="$root/target" FORGE_HOME="$work/home" CARGO_NET_OFFLINE=true
python3 - "$work/rows.jsonl" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(200):
        ref = f"answer {i}"
        pred = f"I think it is {ref}." if i % 2 else "no idea"
        f.write(json.dumps({"id": f"r{i}", "question": f"question {i}?", "answers": [ref],
                            "prediction": pred, "expect": {"same_metric": float(i % 2)}}) + "\n")
PYEOF
echo "| language | toolchain | build (s) | size | cold load: compile (ms) | warm load: cache (ms) | one call, median of 200 (ms) |"
echo "|---|---|---|---|---|---|---|"
for lang in rust python js; do
  dir="$work/$lang"
  "$forge" plugins new metric same_metric --lang "$lang" --dir "$dir" >/dev/null
  built="$(cd "$dir" && "$forge" --json plugins build .)"
  warm="$("$forge" --json plugins inspect "$dir/dist/same_metric.wasm")"
  tried="$("$forge" --json plugins test "$dir/dist/same_metric.wasm" --dataset "$work/rows.jsonl")"
  python3 - "$lang" "$built" "$warm" "$tried" <<'PYEOF'
import json, sys
lang, built, warm, tried = sys.argv[1], *map(json.loads, sys.argv[2:])
assert tried["failed"] == 0, tried
assert not built.get("compiled_from_cache", False)
assert warm["compiled_from_cache"], warm
tool = {"rust": "cargo, wasm32-wasip2, release", "python": "componentize-py 0.25.1",
        "js": "componentize-js 0.23.0"}[lang]
size = built["bytes"]
size = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
print(f"| {lang} | {tool} | {built['build_s']:.1f} | {size} | {built['load_ms']:.0f} | "
      f"{warm['load_ms']:.1f} | {tried['call_ms_median']:.3f} |")
PYEOF
done
