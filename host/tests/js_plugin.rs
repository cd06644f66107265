//! A tool written in JavaScript (`plugins/tools/unit_convert_js`), built
//! from source with componentize-js by `scripts/build-js-plugins.sh`,
//! imports nothing but forge's interfaces, and serves an agent's calls in
//! an experiment that also uses a Rust method and the Python metric
//! (`numeric_match`): three languages, one run. A bad input comes back as a
//! guest-visible error stored with the call, not a trap.

mod common;
use common::*;

#[test]
fn a_javascript_tool_a_python_metric_and_a_rust_method_in_one_run() {
    plugins();
    run_script("scripts/build-js-plugins.sh");
    run_script("scripts/build-py-plugins.sh");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    let shown = run_ok(
        forge(&home)
            .args(["plugins", "inspect"])
            .arg(plugin("unit_convert")),
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("world     tool") && text.contains("forge:plugin@0.1.6"),
        "{text}"
    );
    assert!(
        !text.contains("wasi:"),
        "no WASI import with every feature disabled: {text}"
    );

    // The hostile test method calls the first granted tool with what
    // follows "tool:" and answers with its output (or the error).
    let cases = [
        ("12 km to mi", "12 km = 7.45645 mi", "7.45645"),
        ("100 c to f", "100 c = 212 f", "212"),
        ("3 lb in g", "3 lb = 1360.78 g", "1360.78"),
    ];
    let mut rows: String = cases
        .iter()
        .enumerate()
        .map(|(i, (input, _, reference))| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("c{i}"), "question": format!("tool:{input}"), "answers": [reference]})
            )
        })
        .collect();
    rows += &format!(
        "{}\n",
        serde_json::json!({"id": "c3", "question": "tool:5 kg to m", "answers": ["5"]})
    );
    let data = write(tmp.path(), "q.jsonl", &rows);
    let cfg = write(
        tmp.path(),
        "three.toml",
        &hostile_config(
            &data,
            "params = { mode = \"question\" }",
            "[[tools]]\nplugin = \"unit_convert\"\n[[metrics]]\nplugin = \"numeric_match\"\n",
        ),
    );
    let id = run_id(&home, &cfg);
    for (i, (input, output, _)) in cases.iter().enumerate() {
        let run = trace_of(&home, &id, &format!("c{i}"));
        assert_eq!(run["answer"], *output, "{input}");
        assert_eq!(run["scores"]["numeric_match"], 1.0, "{input}");
        let call = first_tool_call(&run);
        assert_eq!(call["tool"], "unit_convert");
        assert_eq!(call["output"], *output);
    }
    let bad = trace_of(&home, &id, "c3");
    let call = first_tool_call(&bad);
    let error = call["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("invalid input") && error.contains("cannot convert mass (kg) to length (m)"),
        "{call}"
    );
    assert!(
        bad["error"].is_null(),
        "a tool's error is the agent's to read, not a failed example: {bad}"
    );
    assert_eq!(bad["scores"]["numeric_match"], 0.0);
}
