#!/usr/bin/env bash
# Build the JavaScript plugin components (plugins/*/*_js/: tool.js or
# app.js + plugin.toml) with componentize-js into target/plugins/<name>.wasm.
# componentize-js is npm-installed, pinned, into target/js-toolchain the
# first time (the npm registry); later builds are offline. Every WASI
# feature is disabled, so a component imports only forge's interfaces. A
# component newer than its sources, its plugin.toml and its contract is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p target
# One build at a time (tests in parallel call this script).
exec 9>target/.build-js-plugins.lock
flock 9
command -v node >/dev/null || { echo "build-js-plugins: node not found (apt-get install nodejs npm; Node 18 or newer)" >&2; exit 1; }
version=0.23.0
tc=target/js-toolchain
pkg="$tc/node_modules/@bytecodealliance/componentize-js/package.json"
if ! grep -q "\"version\": \"$version\"" "$pkg" 2>/dev/null; then
  echo "installing componentize-js $version into $tc ..." >&2
  mkdir -p "$tc"
  npm install --prefix "$tc" --no-save --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$version" >&2
fi
# The builder (shared with `forge-host plugins build`) lives beside
# node_modules so its import resolves there.
cp scripts/componentize.mjs "$tc/componentize.mjs"
build_js() {
  local src="$1/tool.js"
  [ -f "$src" ] || src="$1/app.js"
  node "$tc/componentize.mjs" "$src" "$3" "$2" "$4"
}
source scripts/plugin-folders.sh
build_each _js build_js
echo "javascript plugins built in target/plugins" >&2
