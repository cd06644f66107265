# Sourced by scripts/build-py-plugins.sh and scripts/build-js-plugins.sh:
# the loop over plugin folders written in another language.
#
#   build_each SUFFIX BUILD
#
# For every plugins/*/*SUFFIX folder with a plugin.toml (name, world,
# contract), calls `BUILD DIR WORLD WIT OUT` to write the component to OUT,
# then moves it to target/plugins/<name>.wasm, its plugin.toml to
# target/plugins/<name>.plugin.toml. A component newer than its
# folder's files and its contract is kept.
build_each() {
  local suffix=$1 build=$2 dir name world contract wit out
  mkdir -p target/plugins
  for dir in plugins/*/*"$suffix"; do
    [ -f "$dir/plugin.toml" ] || continue
    read -r name world contract < <(python3 -c '
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
print(m["name"], m["world"], m["contract"])' "$dir/plugin.toml")
    wit="wit/v$contract"
    [ -d "$wit" ] || { echo "$dir/plugin.toml: contract $contract: no $wit" >&2; return 1; }
    out="target/plugins/$name.wasm"
    # The manifest travels beside the component: the host reads its [needs].
    cp "$dir/plugin.toml" "target/plugins/$name.plugin.toml"
    if [ -f "$out" ] && [ -z "$(find "$dir" "$wit" -newer "$out" -type f -print -quit)" ]; then
      continue
    fi
    "$build" "$dir" "$world" "$wit" "$out.tmp"
    mv "$out.tmp" "$out"
    echo "built $out ($world, forge:plugin@$contract) from $dir" >&2
  done
}
