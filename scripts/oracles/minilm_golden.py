#!/usr/bin/env python3
"""sentence-transformers' all-MiniLM-L6-v2 embeddings of the texts the
tests embed with forge's own MiniLM (the packaged models/all-minilm-l6-v2):
the oracle of host/tests/retrieval_dense.rs and answer_relevance.rs,
written to host/tests/golden/minilm.json.

    python3 -m venv /tmp/oracle && /tmp/oracle/bin/pip install torch sentence-transformers
    /tmp/oracle/bin/python scripts/oracles/minilm_golden.py

The model is the packaged directory (config, safetensors, tokenizer.json)
wrapped as all-MiniLM-L6-v2 is published: Transformer (max 256 word
pieces), mean pooling, L2 normalisation. Recorded: the full vectors of the
retrieval test's six sentences (6 decimals), and the cosine of each
answer/question pair of the answer_relevance test (its first three SQuAD
dev questions, answered on topic by the first sentence of the gold
paragraph and off topic by a fixed sentence).
"""
import json
import pathlib

from sentence_transformers import SentenceTransformer, models

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/all-minilm-l6-v2"
SQUAD = ROOT / "../shared/data/squad.dev200.jsonl"
OUT = ROOT / "host/tests/golden/minilm.json"

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply today.",
    "How tall is the Eiffel Tower?",
    "The Eiffel Tower is 330 metres high.",
    "Penguins live in the southern hemisphere.",
]
# host/tests/answer_relevance.rs's OFF_TOPIC.
OFF_TOPIC = "Bread is baked from a dough of flour and water; yeast makes it rise."


def relevance_pairs():
    pairs = []
    for line in SQUAD.read_text().splitlines()[:3]:
        row = json.loads(line)
        on = row["context"].split(". ")[0].rstrip(".") + "."
        pairs += [(on, row["question"]), (OFF_TOPIC, row["question"])]
    return pairs


def main():
    word = models.Transformer(
        str(MODEL), max_seq_length=256, processor_kwargs={"tokenizer_file": str(MODEL / "tokenizer.json")}
    )
    model = SentenceTransformer(
        modules=[word, models.Pooling(word.get_embedding_dimension(), "mean"), models.Normalize()],
        device="cpu",
    )
    vectors = model.encode(SENTENCES, convert_to_numpy=True)
    pairs = relevance_pairs()
    cosines = []
    for answer, question in pairs:
        a, q = model.encode([answer, question], convert_to_numpy=True)
        cosines.append(round(float(a @ q), 6))
    golden = {
        "vectors": [
            {"text": t, "vector": [round(float(x), 6) for x in v]} for t, v in zip(SENTENCES, vectors)
        ],
        "answer_relevance": [
            {"answer": a, "question": q, "cosine": c} for (a, q), c in zip(pairs, cosines)
        ],
    }
    OUT.write_text(json.dumps(golden, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(SENTENCES)} vectors, {len(pairs)} cosines")


if __name__ == "__main__":
    main()
