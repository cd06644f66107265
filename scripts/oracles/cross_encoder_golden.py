#!/usr/bin/env python3
"""Hugging Face transformers' logits for the synthetic cross-encoder
checkpoints of host/tests/cross_encoders.rs: the oracle of its logits,
written to host/tests/golden/cross_encoders.json.

The checkpoints are written by the tests themselves, from a seeded
generator (host/tests/common/cross_encoder.rs), so this script asks the
test binary for them (the ignored test `write_oracle_inputs`), loads each
with transformers' *ForSequenceClassification, and records, per
checkpoint, the sha256 of its weights, the pairs and their logits. Rerun it
when the checkpoint writer changes (the tests then fail naming it).

    python3 -m venv /tmp/oracle && /tmp/oracle/bin/pip install torch transformers
    /tmp/oracle/bin/python scripts/oracles/cross_encoder_golden.py

Pairs are tokenised as the checkpoint's tokenizer.json says ([CLS] a [SEP]
b [SEP] with type ids 0/1); checkpoints with one token type (RoBERTa) or
none (DeBERTa-v2) get type ids 0, as their own tokenizers give. Float32,
eval mode (no dropout).
"""
import hashlib
import json
import os
import pathlib
import subprocess
import tempfile

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "host/tests/golden/cross_encoders.json"


def logits(ckpt: pathlib.Path, pairs):
    config = AutoConfig.from_pretrained(ckpt)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        ckpt, output_loading_info=True, dtype=torch.float32
    )
    bad = {k: v for k, v in info.items() if v and k != "mismatched_keys"} | (
        {"mismatched_keys": info["mismatched_keys"]} if info.get("mismatched_keys") else {}
    )
    assert not bad, f"{ckpt}: weights do not match transformers' names: {bad}"
    model.eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=str(ckpt / "tokenizer.json"))
    out = []
    for a, b in pairs:
        enc = tok(a, b, return_tensors="pt", return_token_type_ids=True)
        kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if config.type_vocab_size > 1:
            kwargs["token_type_ids"] = enc["token_type_ids"]
        elif config.type_vocab_size == 1:
            kwargs["token_type_ids"] = torch.zeros_like(enc["input_ids"])
        with torch.no_grad():
            out.append([round(float(x), 6) for x in model(**kwargs).logits[0]])
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["cargo", "test", "-p", "forge-host", "--test", "cross_encoders", "--",
             "--ignored", "--exact", "write_oracle_inputs"],
            cwd=ROOT, check=True, env={**os.environ, "FORGE_ORACLE_DIR": tmp},
        )
        inputs = json.loads((pathlib.Path(tmp) / "inputs.json").read_text())
        golden = {}
        for name, case in sorted(inputs.items()):
            ckpt = pathlib.Path(case["dir"])
            weights = (ckpt / "model.safetensors").read_bytes()
            golden[name] = {
                "sha256": hashlib.sha256(weights).hexdigest(),
                "pairs": case["pairs"],
                "logits": logits(ckpt, case["pairs"]),
            }
            print(f"{name}: {len(case['pairs'])} pairs")
    OUT.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
