"""numeric_match: a forge metric written in Python.

1.0 when the last number in the answer equals the last number of one of
the references (GSM8K's "#### 72", "The answer is 72.", "$1,200"), else
0.0; 0.0 too when the answer has no number. Thousands separators and a
leading sign are read; "72" and "72.0" are equal.

Built into a WebAssembly component by componentize-py against the
`metric` world of forge's contract (scripts/build-py-plugins.sh); the host
loads it like any other metric: [[metrics]] plugin = "numeric_match".
"""
import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# A number as people write it: optional sign, digits with optional
# thousands commas, optional decimals.
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?", re.ASCII)


def last_number(text):
    """The last number in `text` as a float, or None."""
    for token in reversed(NUMBER.findall(text or "")):
        try:
            return float(token.replace(",", ""))
        except ValueError:
            continue
    return None


class Scorer(exports.Scorer):
    def names(self, params: str):
        return ["numeric_match"]

    def evaluate(self, example, answer, params: str):
        if params and json.loads(params):
            # A guest-visible error (the host stores it with the example),
            # not a trap.
            raise Err(types.PluginError_InvalidInput("numeric_match takes no params"))
        got = last_number(answer.text)
        hit = got is not None and any(
            (ref := last_number(a)) is not None and abs(ref - got) < 1e-9
            for a in example.answers
        )
        return [types.Score(name="numeric_match", value=1.0 if hit else 0.0)]
