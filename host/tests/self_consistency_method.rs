//! The `self_consistency` method with the real model: k sampled chains, each
//! with its own recorded seed, an extracted answer per chain, and a vote that
//! matches those answers; reruns reproduce every chain.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

const K: usize = 3;

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

/// Numeric answers compare as numbers ("18" and "18.0" agree), anything
/// else as SQuAD-normalised words.
fn norm(a: &str) -> String {
    match a.replace(',', "").parse::<f64>() {
        Ok(v) if v.fract() == 0.0 => format!("{}", v as i64),
        Ok(v) => format!("{v}"),
        Err(_) => a
            .to_lowercase()
            .replace(|c: char| !c.is_alphanumeric(), " ")
            .split_whitespace()
            .filter(|w| !["a", "an", "the"].contains(w))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[test]
fn chains_use_distinct_seeds_and_the_vote_matches_their_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &format!(
            r#"name = "sc-gsm8k"
seed = 11
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = 2
[method]
plugin = "self_consistency"
params = {{ k = {K}, numeric = true, max_tokens = 32 }}
[[metrics]]
plugin = "exact_match"
"#,
            shared_data("gsm8k.dev200.jsonl").display()
        ),
    );
    let runs = stored_runs(&tmp.path().join("home"), &cfg, None);
    assert_eq!(runs.len(), 2);
    let mut all_seeds = BTreeSet::new();
    let mut outputs = BTreeSet::new();
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
        let calls = r["calls"].as_array().unwrap();
        assert_eq!(calls.len(), K, "{r}");
        for c in calls {
            let t = c["params"]["temperature"].as_f64().unwrap();
            assert!(
                (t - 0.7).abs() < 1e-6,
                "the method's default temperature, got {t}"
            );
            assert!(all_seeds.insert(c["params"]["seed"].as_u64().unwrap()));
            outputs.insert(c["output"].as_str().unwrap().to_string());
        }
        let trace = r["trace"].as_array().unwrap();
        let kinds: Vec<&str> = trace.iter().map(|s| s["kind"].as_str().unwrap()).collect();
        let mut want = ["thought", "note", "note"].repeat(K);
        want.extend(["note", "note", "answer"]);
        assert_eq!(kinds, want, "{r}");
        let content = |i: usize| trace[i]["content"].as_str().unwrap();
        let mut answers = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            assert_eq!(
                content(3 * i),
                call["output"].as_str().unwrap(),
                "chain {i}"
            );
            assert!(content(3 * i + 1).starts_with("extraction: "));
            let a = content(3 * i + 2)
                .strip_prefix("chain_answer: ")
                .unwrap_or_else(|| panic!("{}", content(3 * i + 2)));
            answers.push(a.to_string());
        }
        // Recount the vote from the recorded chain answers.
        let mut counts: Vec<(String, usize)> = Vec::new();
        for a in answers.iter().filter(|a| !a.is_empty()) {
            match counts.iter_mut().find(|(k, _)| *k == norm(a)) {
                Some(c) => c.1 += 1,
                None => counts.push((norm(a), 1)),
            }
        }
        let votes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(content(3 * K).strip_prefix("votes: ").unwrap()).unwrap();
        assert_eq!(votes.len(), counts.len(), "{}", content(3 * K));
        for (k, c) in &counts {
            assert_eq!(
                votes.get(k).and_then(|v| v.as_u64()),
                Some(*c as u64),
                "{k:?} in {} (chain answers {answers:?})",
                content(3 * K)
            );
        }
        let best = counts.iter().map(|c| c.1).max().unwrap_or(0);
        let winner = counts.iter().find(|c| c.1 == best).map(|c| c.0.clone());
        assert_eq!(
            content(3 * K + 1),
            format!("agreement: {:.2}", best as f64 / K as f64)
        );
        let answer = r["answer"].as_str().unwrap();
        assert_eq!(content(3 * K + 2), answer);
        assert_eq!(
            winner.unwrap_or_default(),
            if answer.is_empty() {
                String::new()
            } else {
                norm(answer)
            }
        );
    }
    assert!(
        outputs.len() > 1,
        "distinct seeds at temperature 0.7 give distinct chains: {outputs:?}"
    );

    // A rerun in a fresh store reproduces every chain and seed (of the first
    // example, to keep the test short on 2 cores).
    let again = stored_runs(&tmp.path().join("home2"), &cfg, Some(1));
    assert_eq!(again.len(), 1);
    for (a, b) in runs.iter().zip(&again) {
        assert_eq!(a["trace"], b["trace"]);
        assert_eq!(a["answer"], b["answer"]);
        for (ca, cb) in a["calls"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["calls"].as_array().unwrap())
        {
            assert_eq!(ca["params"], cb["params"]);
            assert_eq!(ca["output"], cb["output"]);
        }
    }
}
