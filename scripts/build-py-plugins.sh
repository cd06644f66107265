#!/usr/bin/env bash
# Build the Python plugin components (plugins/*/*_py/: app.py + plugin.toml)
# with componentize-py into target/plugins/<name>.wasm. componentize-py is
# pip-installed, pinned, into target/py-toolchain the first time (PyPI);
# later builds are offline. A component newer than its sources, its
# plugin.toml and its contract is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p target
# One build at a time (tests in parallel call this script).
exec 9>target/.build-py-plugins.lock
flock 9
version=0.25.1
venv=target/py-toolchain
cpy="$venv/bin/componentize-py"
if ! "$cpy" --version 2>/dev/null | grep -qx "componentize-py $version"; then
  echo "installing componentize-py $version into $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "componentize-py==$version"
fi
mkdir -p target/plugins
for dir in plugins/*/*_py; do
  [ -f "$dir/plugin.toml" ] || continue
  read -r name world contract < <(python3 - "$dir/plugin.toml" <<'PYEOF'
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
print(m["name"], m["world"], m["contract"])
PYEOF
)
  wit="wit/v$contract"
  [ -d "$wit" ] || { echo "$dir/plugin.toml: contract $contract: no $wit" >&2; exit 1; }
  out="target/plugins/$name.wasm"
  if [ -f "$out" ] && [ -z "$(find "$dir" "$wit" -newer "$out" -type f -print -quit)" ]; then
    continue
  fi
  (cd "$dir" && "$root/$cpy" -d "$root/$wit" -w "$world" componentize app -o "$root/$out.tmp" >/dev/null)
  mv "$out.tmp" "$out"
  echo "built $out ($world, forge:plugin@$contract) from $dir" >&2
done
echo "python plugins built in target/plugins" >&2
