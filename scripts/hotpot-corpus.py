#!/usr/bin/env python3
"""The retrieval corpus of HotpotQA's 100-example distractor sample.

    scripts/hotpot-corpus.py [SAMPLE] [OUT]

Reads ../shared/data/hotpot.sample100.jsonl (each question's two supporting
paragraphs in meta.supporting_paragraphs and its eight distractors in
meta.distractors) and writes configs/data/hotpot.sample100.corpus.jsonl:
one {"id", "title", "text"} line per distinct paragraph title, in first-seen
order. The retriever must find the two right paragraphs among ~1,000, where
the offline Wikipedia summaries rarely hold the answer. Deterministic: the
committed file is this script's output (CC BY-SA 4.0, as HotpotQA).
"""
import json
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sample = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "data", "hotpot.sample100.jsonl")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "configs", "data", "hotpot.sample100.corpus.jsonl")

seen = {}
with open(sample, encoding="utf-8") as f:
    for line in f:
        meta = json.loads(line)["meta"]
        for title, sentences, *_ in meta["supporting_paragraphs"] + meta["distractors"]:
            text = "".join(sentences).strip()
            if title in seen and seen[title] != text:
                sys.exit(f"{sample}: paragraph {title!r} has two different texts")
            seen.setdefault(title, text)
with open(out, "w", encoding="utf-8") as f:
    for title, text in seen.items():
        f.write(json.dumps({"id": title, "title": title, "text": text}, ensure_ascii=False) + "\n")
print(f"wrote {len(seen)} paragraphs to {out}")
