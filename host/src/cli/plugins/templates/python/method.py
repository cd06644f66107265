"""{{name}}: a forge method written in Python.

Asks the model once, with the question in a template, and answers with
the first line of its reply. Change `solve` to reason your way: call the
model again (inference.chat), search an index (retrieval.search), call a
tool (tools.call); every call is recorded and budgeted by the host.

    forge-host plugins build .
    forge-host run experiment.toml
"""
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import inference, types


class Solver(exports.Solver):
    def solve(self, example, params: str):
        # params: the [method] params table of the experiment, as JSON.
        p = json.loads(params or "{}")
        template = p.get("template", "Question: {question}\nAnswer briefly.")
        prompt = template.replace("{question}", example.question)
        gp = inference.default_params()  # the experiment's [generation]
        try:
            out = inference.chat([inference.Message(role="user", content=prompt)], gp)
        except Err as e:
            raise Err(types.PluginError_Unavailable(f"inference: {e.value}"))
        text = out.text.strip()
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        trace = [
            types.Step(kind=types.StepKind.THOUGHT, content=prompt),
            types.Step(kind=types.StepKind.ANSWER, content=text),
        ]
        return types.Answer(text=first, trace=trace, contexts=[])
