#!/usr/bin/env python3
"""Expected EM/F1 on predictions built from SQuAD references (JSONL on stdout),
the oracle of plugins/metrics/squad-text/tests/official_oracle.rs.

The scoring functions below re-state the official SQuAD v1.1 evaluation
script's published definition (normalize_answer, f1_score,
exact_match_score, max over ground truths); they are typed from that
definition, not copied. The Rust metric must agree with them exactly.

    python3 scripts/oracles/squad_v1_oracle.py ../shared/data/squad.dev200.jsonl
"""
import json
import re
import string
import sys
from collections import Counter


def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction, truth):
    p = normalize_answer(prediction).split()
    t = normalize_answer(truth).split()
    same = sum((Counter(p) & Counter(t)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def best(fn, prediction, truths):
    return max(fn(prediction, t) for t in truths)


HAND = [
    ("The Eiffel-Tower!", ["Eiffel Tower", "the eiffeltower"]),
    ("an apple a day", ["apple day"]),
    ("the", ["The"]),
    ("", ["Paris"]),
    ("Paris, France", ["Paris"]),
    ("Café ÉCOLE", ["café école"]),
    ("9,436 people", ["9436"]),
    ("New York New York", ["New York"]),
    ("“quoted” answer", ['"quoted" answer']),
    ("Theatre of the absurd", ["theatre absurd", "the absurd"]),
    ("1945–1950", ["1945-1950"]),
    ("A\tB\nC", ["a b c"]),
    ("the\u201cbest\u201d answer", ["\u201cbest\u201d answer"]),
    ("a\u00e9 the\u00e9", ["a\u00e9 the\u00e9"]),
    ("\u00bfthe answer?", ["answer"]),
]


def perturb(answer, i):
    """Predictions a model might give for a gold answer."""
    return [
        answer,
        "The " + answer.upper() + ".",
        answer + " in " + str(1900 + i),
        " ".join(answer.split()[: max(1, len(answer.split()) // 2)]),
        "I think it is " + answer.lower() + ", probably",
        "unrelated words",
    ]


def overlap_grid():
    """Predictions and references sharing 1-3 of up to 26 tokens: F1 takes
    values such as 2/21 whose decimal form needs all 17 digits, the ones a
    lossy float hop (an f32, an inexact parser) would change."""
    for same in range(1, 4):
        for pred_only in range(0, 21):
            for gold_only in range(0, 7):
                shared = [f"s{i}" for i in range(same)]
                pred = shared + [f"p{i}" for i in range(pred_only)]
                gold = shared + [f"g{i}" for i in range(gold_only)]
                yield " ".join(pred), [" ".join(gold)]


def main():
    cases = [{"prediction": p, "references": r} for p, r in HAND]
    cases += [{"prediction": p, "references": r} for p, r in overlap_grid()]
    with open(sys.argv[1]) as f:
        for i, line in enumerate(f):
            if i >= 40:
                break
            row = json.loads(line)
            refs = row["answers"]
            for p in perturb(refs[0], i):
                cases.append({"prediction": p, "references": refs})
    for c in cases:
        c["exact_match"] = best(exact_match_score, c["prediction"], c["references"])
        c["f1"] = best(f1_score, c["prediction"], c["references"])
        print(json.dumps(c, ensure_ascii=False))


if __name__ == "__main__":
    main()
