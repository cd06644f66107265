//! The `react` method with the real model and the real `calculator` tool
//! component: the stored trace follows the agent conventions (thoughts are
//! the model's outputs, every action is a real tool call whose output is the
//! observation fed back to the model, one status note, the answer last), and
//! a rerun reproduces the episode.

mod common;
use common::*;
use std::path::Path;

/// Runs `cfg` in `home` and returns the stored runs, in example order.
fn stored_runs(home: &Path, cfg: &Path, limit: Option<usize>) -> Vec<serde_json::Value> {
    let mut cmd = forge(home);
    cmd.args(["--json", "run"]).arg(cfg);
    if let Some(n) = limit {
        cmd.args(["--limit", &n.to_string()]);
    }
    let ev = events(&run_ok(&mut cmd).stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(home).args(["--json", "show", &id])).stdout).unwrap();
    let mut runs = v["runs"].as_array().unwrap().clone();
    runs.sort_by_key(|r| r["index"].as_u64());
    runs
}

/// Two GSM8K questions, the first of which the default model (greedy)
/// answers with a calculator call under the default prompt.
fn dataset(dir: &Path) -> std::path::PathBuf {
    let all = std::fs::read_to_string(shared_data("gsm8k.dev200.jsonl")).unwrap();
    let rows: String = ["gsm8k_test_1186", "gsm8k_test_0082"]
        .iter()
        .map(|id| {
            let line = all
                .lines()
                .find(|l| l.contains(&format!("\"id\": \"{id}\"")))
                .unwrap();
            format!("{line}\n")
        })
        .collect();
    write(dir, "gsm8k2.jsonl", &rows)
}

fn config(data: &Path, tools: &str) -> String {
    format!(
        r#"name = "react-gsm8k"
seed = 2
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[method]
plugin = "react"
params = {{ numeric = true, max_iterations = 3, max_tokens = 48 }}
{tools}
[[metrics]]
plugin = "exact_match"
"#,
        data.display()
    )
}

const STATUSES: [&str; 4] = ["answered", "stuck", "max_iterations", "no_action"];

#[test]
fn the_agent_calls_the_real_calculator_and_records_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &config(&data, "[[tools]]\nplugin = \"calculator\""),
    );
    let runs = stored_runs(&tmp.path().join("home"), &cfg, None);
    assert_eq!(runs.len(), 2);
    let mut tool_calls_seen = 0;
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
        let trace = r["trace"].as_array().unwrap();
        let calls = r["calls"].as_array().unwrap();
        assert!(!calls.is_empty() && calls.len() <= 3, "{r}");
        let of = |kind: &str| -> Vec<&str> {
            trace
                .iter()
                .filter(|s| s["kind"] == kind)
                .map(|s| s["content"].as_str().unwrap())
                .collect()
        };
        // Every model turn is a thought, verbatim.
        let thoughts = of("thought");
        assert_eq!(thoughts.len(), calls.len(), "{r}");
        for (t, c) in thoughts.iter().zip(calls) {
            assert_eq!(*t, c["output"].as_str().unwrap().trim());
            let stop: Vec<&str> = c["params"]["stop"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert!(stop.contains(&"Observation:"), "{stop:?}");
            assert!(!t.contains("Observation:"), "no invented observation: {t}");
        }
        // The host's record of each tool call, the method's action and the
        // observation agree, and the observation went back to the model.
        let tool_calls: Vec<serde_json::Value> = of("tool_call")
            .iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect();
        let actions = of("action");
        let observations = of("observation");
        assert_eq!(tool_calls.len(), observations.len(), "{r}");
        assert!(actions.len() >= tool_calls.len(), "{r}");
        for (i, tc) in tool_calls.iter().enumerate() {
            assert_eq!(tc["tool"], "calculator");
            let action: serde_json::Value = serde_json::from_str(actions[i]).unwrap();
            assert_eq!(
                (&action["tool"], &action["input"]),
                (&tc["tool"], &tc["input"])
            );
            match tc["output"].as_str() {
                Some(out) => {
                    assert!(tc["error"].is_null());
                    assert_eq!(observations[i], out);
                    out.parse::<f64>()
                        .unwrap_or_else(|_| panic!("calculator output {out:?}"));
                }
                None => {
                    assert!(observations[i].starts_with("error: "), "{r}");
                    assert!(of("note").iter().any(|n| n.starts_with("tool_error: ")));
                }
            }
            let next_prompt = calls[i + 1]["prompt"].as_str().unwrap();
            assert!(
                next_prompt.contains(&format!("Observation: {}", observations[i])),
                "{next_prompt}"
            );
            tool_calls_seen += 1;
        }
        // One status note, then the answer, last.
        let statuses: Vec<&str> = of("note")
            .into_iter()
            .filter_map(|n| n.strip_prefix("status: "))
            .collect();
        assert_eq!(statuses.len(), 1, "{r}");
        assert!(STATUSES.contains(&statuses[0]), "{statuses:?}");
        let n = trace.len();
        assert_eq!(trace[n - 2]["content"], format!("status: {}", statuses[0]));
        assert_eq!(trace[n - 1]["kind"], "answer");
        assert_eq!(trace[n - 1]["content"], r["answer"]);
        for note in of("note") {
            assert!(
                [
                    "status: ",
                    "parse_error: ",
                    "tool_error: ",
                    "partial_answer: ",
                    "ignored_actions: "
                ]
                .iter()
                .any(|p| note.starts_with(p)),
                "{note}"
            );
        }
        // The prompt lists the granted tool with its own description.
        assert!(
            calls[0]["prompt"]
                .as_str()
                .unwrap()
                .contains("- calculator: Evaluates an arithmetic expression")
        );
    }
    assert!(
        tool_calls_seen >= 1,
        "the model called the calculator: {runs:?}"
    );

    // A rerun in a fresh store reproduces the first episode step for step
    // (tool latencies aside).
    let again = stored_runs(&tmp.path().join("home2"), &cfg, Some(1));
    let strip = |r: &serde_json::Value| -> Vec<String> {
        r["trace"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let c = s["content"].as_str().unwrap();
                if s["kind"] == "tool_call" {
                    let mut v: serde_json::Value = serde_json::from_str(c).unwrap();
                    v["latency_ms"] = 0.into();
                    format!("tool_call {v}")
                } else {
                    format!("{} {c}", s["kind"])
                }
            })
            .collect()
    };
    assert_eq!(again[0]["example_id"], runs[0]["example_id"]);
    assert_eq!(strip(&again[0]), strip(&runs[0]));
    assert_eq!(again[0]["answer"], runs[0]["answer"]);
}

#[test]
fn without_tools_the_agent_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let cfg = write(tmp.path(), "exp.toml", &config(&data, ""));
    let runs = stored_runs(&tmp.path().join("home"), &cfg, Some(1));
    let msg = runs[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("no tools granted"), "{}", runs[0]);
}
