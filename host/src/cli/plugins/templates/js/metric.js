// {{name}}: a forge metric written in JavaScript.
//
// Scores 1.0 when the answer contains one of the references (ignoring
// case and surrounding spaces), else 0.0. Change `evaluate` to score your
// way.
//
//   forge-host plugins build .
//   forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl

export const scorer = {
  // Every score name evaluate() returns, known before any example.
  names(params) {
    return ["{{name}}"];
  },
  evaluate(example, answer, params) {
    // params: the [[metrics]] params table of the experiment, as JSON.
    const p = JSON.parse(params || "{}");
    if (p === null || typeof p !== "object") {
      // A guest-visible error: stored with the example, not a crash.
      throw { tag: "invalid-input", val: "params must be a JSON object" };
    }
    const got = answer.text.trim().toLowerCase();
    const hit = example.answers.some((ref) => ref.trim() && got.includes(ref.trim().toLowerCase()));
    return [{ name: "{{name}}", value: hit ? 1.0 : 0.0 }];
  },
};
