// {{name}}: a forge method written in JavaScript.
//
// Asks the model once, with the question in a template, and answers with
// the first line of its reply. Change `solve` to reason your way: call the
// model again, search an index, call a tool; every call is recorded and
// budgeted by the host.
//
//   forge-host plugins build .
//   forge-host run experiment.toml

import { chat, defaultParams } from "forge:plugin/inference@{{contract}}";

export const solver = {
  solve(example, params) {
    // params: the [method] params table of the experiment, as JSON.
    const p = JSON.parse(params || "{}");
    const template = p.template ?? "Question: {question}\nAnswer briefly.";
    const prompt = template.replace("{question}", example.question);
    let out;
    try {
      out = chat([{ role: "user", content: prompt }], defaultParams());
    } catch (e) {
      throw { tag: "unavailable", val: `inference: ${JSON.stringify(e.payload ?? e)}` };
    }
    const text = out.text.trim();
    const first = text.split("\n").map((l) => l.trim()).find((l) => l) ?? "";
    return {
      text: first,
      trace: [
        { kind: "thought", content: prompt },
        { kind: "answer", content: text },
      ],
      contexts: [],
    };
  },
};
