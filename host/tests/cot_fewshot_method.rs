//! The `cot_fewshot` method with the real model: exemplars read from a
//! granted file are shown as earlier chat turns, the reasoning and the
//! extraction rule are in the stored trace, reruns reproduce, and a missing
//! read grant is a clear error.

mod common;
use common::*;
use std::path::Path;

/// Runs `cfg` in `home` and returns the stored runs, in example order.
fn stored_runs(home: &Path, cfg: &Path) -> Vec<serde_json::Value> {
    let ev = events(&run_ok(forge(home).args(["--json", "run"]).arg(cfg)).stdout);
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

fn config(grants: &str) -> String {
    let exemplars = repo().join("configs/exemplars");
    format!(
        r#"name = "cot-fewshot-gsm8k"
seed = 5
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = 2
[method]
plugin = "cot_fewshot"
{grants}
[method.params]
exemplars_file = "{}"
count = 2
numeric = true
max_tokens = 64
[[metrics]]
plugin = "exact_match"
"#,
        shared_data("gsm8k.dev200.jsonl").display(),
        exemplars.join("gsm8k.jsonl").display(),
    )
}

#[test]
fn exemplars_become_chat_turns_and_reruns_reproduce() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo().join("configs/exemplars");
    let grant = format!("grants = {{ read_dirs = [\"{}\"] }}", dir.display());
    let cfg = write(tmp.path(), "exp.toml", &config(&grant));
    let runs = stored_runs(&tmp.path().join("home"), &cfg);
    assert_eq!(runs.len(), 2);
    let exemplars: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("gsm8k.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
        let trace = r["trace"].as_array().unwrap();
        let kinds: Vec<&str> = trace.iter().map(|s| s["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["note", "thought", "note", "answer"], "{r}");
        let source = trace[0]["content"].as_str().unwrap();
        assert!(
            source.starts_with("exemplars: 2 from ") && source.contains("gsm8k.jsonl (fnv1a64 "),
            "{source}"
        );
        assert_eq!(r["calls"].as_array().unwrap().len(), 1);
        let call = &r["calls"][0];
        assert_eq!(
            trace[1]["content"], call["output"],
            "the reasoning is the model's output"
        );
        let rule = trace[2]["content"].as_str().unwrap();
        assert!(rule.starts_with("extraction: "), "{rule}");
        assert_eq!(trace[3]["content"], r["answer"]);
        // The prompt, rendered by the model's chat template: two exemplar
        // questions with their worked answers as assistant turns, in order,
        // then the real question; the third exemplar is not used (count = 2).
        let prompt = call["prompt"].as_str().unwrap();
        let at = |s: &str| {
            prompt
                .find(s)
                .unwrap_or_else(|| panic!("{s:?} not in prompt:\n{prompt}"))
        };
        let q0 = at(exemplars[0]["question"].as_str().unwrap());
        let a0 = at(&format!(
            "{}\nAnswer: {}",
            exemplars[0]["reasoning"].as_str().unwrap(),
            exemplars[0]["answer"].as_str().unwrap()
        ));
        let q1 = at(exemplars[1]["question"].as_str().unwrap());
        let question = at(r["question"].as_str().unwrap());
        assert!(q0 < a0 && a0 < q1 && q1 < question, "{prompt}");
        assert!(!prompt.contains(exemplars[2]["question"].as_str().unwrap()));
        assert_eq!(prompt.matches("Let's think step by step").count(), 3);
        assert_eq!(
            prompt.matches("<|im_start|>assistant").count(),
            3,
            "{prompt}"
        );
    }

    // A rerun in a fresh store gives the same reasoning and answers.
    let again = stored_runs(&tmp.path().join("home2"), &cfg);
    for (a, b) in runs.iter().zip(&again) {
        assert_eq!(a["trace"], b["trace"]);
        assert_eq!(a["calls"][0]["output"], b["calls"][0]["output"]);
        assert_eq!(a["calls"][0]["params"], b["calls"][0]["params"]);
    }
}

#[test]
fn a_missing_read_grant_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "exp.toml", &config(""));
    let runs = stored_runs(&tmp.path().join("home"), &cfg);
    for r in &runs {
        let e = &r["error"];
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("cannot read exemplars_file") && msg.contains("read_dirs"),
            "{r}"
        );
        assert!(
            r["calls"].as_array().unwrap().is_empty(),
            "no model call: {r}"
        );
    }
}
