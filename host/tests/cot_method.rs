//! The `cot` method with the real model: the reasoning, the extraction rule
//! and the answer are all in the stored trace.

mod common;
use common::*;

#[test]
fn cot_reasons_then_extracts_with_a_recorded_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &format!(
            r#"name = "cot-gsm8k"
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = 2
[method]
plugin = "cot"
params = {{ numeric = true, max_tokens = 96 }}
[[metrics]]
plugin = "exact_match"
"#,
            shared_data("gsm8k.dev200.jsonl").display()
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let id = ev.last().unwrap()["experiment"].as_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", id])).stdout).unwrap();
    for r in v["runs"].as_array().unwrap() {
        assert!(r["error"].is_null(), "{r}");
        let trace = r["trace"].as_array().unwrap();
        let kinds: Vec<&str> = trace.iter().map(|s| s["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["thought", "note", "answer"], "{r}");
        let thought = trace[0]["content"].as_str().unwrap();
        assert_eq!(
            thought,
            r["calls"][0]["output"].as_str().unwrap(),
            "the reasoning is the model's output"
        );
        let rule = trace[1]["content"].as_str().unwrap();
        assert!(
            [
                "extraction: marker",
                "extraction: last_number",
                "extraction: conclusion",
                "extraction: last_sentence"
            ]
            .contains(&rule),
            "{rule}"
        );
        let answer = r["answer"].as_str().unwrap();
        assert_eq!(trace[2]["content"], answer);
        if rule.ends_with("last_number") {
            assert!(
                answer
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.'),
                "{answer:?}"
            );
        }
        assert!(r["completion_tokens"].as_u64().unwrap() <= 96);
        assert!(
            r["calls"][0]["prompt"]
                .as_str()
                .unwrap()
                .contains("Let's think step by step")
        );
    }
}
