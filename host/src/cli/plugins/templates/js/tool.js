// {{name}}: a forge tool written in JavaScript.
//
// An agent calls it as {{name}}[some text]; it answers with the number of
// words and characters. Change `call` to do your tool's one thing.
//
//   forge-host plugins build .
//   forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl

export const toolProvider = {
  // What the agent's prompt says about this tool: name, input, example.
  describe() {
    return "{{name}}[<text>]: counts the words and characters of the text, e.g. {{name}}[to be or not]";
  },
  call(input, params) {
    const text = input.trim();
    if (!text) {
      // A guest-visible error: stored with the tool call (a plain
      // `throw new Error` would be a trap, reported as a crash).
      throw { tag: "invalid-input", val: "expected some text" };
    }
    return `${text.split(/\s+/).length} words, ${text.length} characters`;
  },
};
