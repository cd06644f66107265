"""{{name}}: a forge metric written in Python.

Scores 1.0 when the answer contains one of the references (ignoring case
and surrounding spaces), else 0.0. Change `evaluate` to score your way.

    forge-host plugins build .
    forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl
"""
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


class Scorer(exports.Scorer):
    def names(self, params: str):
        # Every score name evaluate() returns, known before any example.
        return ["{{name}}"]

    def evaluate(self, example, answer, params: str):
        # params: the [[metrics]] params table of the experiment, as JSON.
        p = json.loads(params or "{}")
        if not isinstance(p, dict):
            # A guest-visible error: stored with the example, not a crash.
            raise Err(types.PluginError_InvalidInput("params must be a JSON object"))
        got = answer.text.strip().lower()
        hit = any(ref.strip().lower() in got for ref in example.answers if ref.strip())
        return [types.Score(name="{{name}}", value=1.0 if hit else 0.0)]
