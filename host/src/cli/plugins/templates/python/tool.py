"""{{name}}: a forge tool written in Python.

An agent calls it as {{name}}[some text]; it answers with the number of
words and characters. Change `call` to do your tool's one thing.

    forge-host plugins build .
    forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl
"""
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


class ToolProvider(exports.ToolProvider):
    def describe(self) -> str:
        # What the agent's prompt says about this tool: name, input, example.
        return "{{name}}[<text>]: counts the words and characters of the text, e.g. {{name}}[to be or not]"

    def call(self, input: str, params: str) -> str:
        text = input.strip()
        if not text:
            # A guest-visible error: stored with the tool call, not a crash.
            raise Err(types.PluginError_InvalidInput("expected some text"))
        return f"{len(text.split())} words, {len(text)} characters"
