//! The calculator tool component, called by a method through the host's
//! `tools` capability.

mod common;
use common::*;

#[test]
fn a_method_gets_answers_and_errors_from_the_calculator_component() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // (expression, the whole answer, or the error it must name).
    let cases = [
        ("2 + 3 * 4 ^ 2 / 8", Ok("8")),
        ("round(sqrt(2), 3)", Ok("1.414")),
        ("1 / 0", Err("division by zero")),
        ("2 +", Err("syntax error")),
    ];
    let rows: String = cases
        .iter()
        .enumerate()
        .map(|(i, (q, _))| {
            format!("{{\"id\":\"c{i}\",\"question\":\"tool:{q}\",\"answers\":[\"x\"]}}\n")
        })
        .collect();
    let data = write(tmp.path(), "calc.jsonl", &rows);
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(
            &data,
            "params = { mode = \"question\" }",
            "[[tools]]\nplugin = \"calculator\"",
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    for (i, (q, want)) in cases.iter().enumerate() {
        let e = ev.iter().find(|e| e["id"] == format!("c{i}")).unwrap();
        let answer = e["answer"].as_str().unwrap();
        match want {
            // The value itself, not a text that contains it ("18" holds "8").
            Ok(value) => assert_eq!(answer, *value, "{q:?}"),
            // The hostile method answers "TOOL ERROR <the tool's error>".
            Err(message) => assert!(
                answer.starts_with("TOOL ERROR") && answer.contains(message),
                "{q:?} gave {answer:?}"
            ),
        }
    }
    let id = ev.last().unwrap()["experiment"].as_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", id])).stdout).unwrap();
    assert_eq!(v["experiment"]["plugins"][2]["name"], "calculator");
}
