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
build_py() {
  (cd "$1" && "$root/$cpy" -d "$root/$3" -w "$2" componentize app -o "$root/$4" >/dev/null)
}
source scripts/plugin-folders.sh
build_each _py build_py
echo "python plugins built in target/plugins" >&2
