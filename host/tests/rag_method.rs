//! The `rag` method with the real model over a real BM25 index of the SQuAD
//! dev paragraphs (whole documents), scored by the real `retrieval`,
//! `context`, `faithfulness` and `f1` components: the passages are stored
//! with the run, the retrieval scores are what the stored ids give, closed
//! book makes no retrieval call, `retrieve_only` makes no model call, and
//! a missing index is a clear stored error.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Runs `cfg` and returns the experiment id and its stored runs in order.
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

/// The first `n` SQuAD dev200 questions, and their gold paragraph ids.
fn dataset(dir: &Path, n: usize) -> (PathBuf, HashMap<String, String>) {
    let all = std::fs::read_to_string(shared_data("squad.dev200.jsonl")).unwrap();
    let rows: Vec<&str> = all.lines().take(n).collect();
    let gold = rows
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["meta"]["para_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (write(dir, "squad.jsonl", &(rows.join("\n") + "\n")), gold)
}

fn config(data: &Path, method: &str, metrics: &[&str]) -> String {
    let metrics: String = metrics
        .iter()
        .map(|m| format!("[[metrics]]\nplugin = \"{m}\"\n"))
        .collect();
    format!(
        r#"name = "rag-test"
seed = 5
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[[indexes]]
name = "squad"
corpus = "{}"
[method]
plugin = "rag"
params = {{ {method} }}
{metrics}
[generation]
max_tokens = 16
"#,
        data.display(),
        shared_data("squad.corpus.jsonl").display()
    )
}

fn of<'a>(r: &'a serde_json::Value, kind: &str) -> Vec<&'a str> {
    r["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| s["content"].as_str().unwrap())
        .collect()
}

/// The host's own record of the method's searches.
fn searches(r: &serde_json::Value) -> Vec<serde_json::Value> {
    of(r, "retrieval")
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

#[test]
fn a_rag_run_stores_its_passages_and_scores_its_retrieval_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, gold) = dataset(tmp.path(), 2);
    let cfg = write(
        tmp.path(),
        "rag.toml",
        &config(
            &data,
            r#"index = "squad", k = 2, retrieve_k = 5, first_line = true"#,
            &["f1", "retrieval", "context", "faithfulness"],
        ),
    );
    let corpus: HashMap<String, String> =
        std::fs::read_to_string(shared_data("squad.corpus.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let runs = stored_runs(&tmp.path().join("home"), &cfg);
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
        assert!(r["metric_errors"].as_object().unwrap().is_empty(), "{r}");
        // One search, as the host recorded it, for the question.
        let s = searches(r);
        assert_eq!(s.len(), 1, "{r}");
        assert_eq!(s[0]["query"], r["question"]);
        assert_eq!(s[0]["k"], 5);
        let hits: Vec<&str> = s[0]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert_eq!(hits.len(), 5);
        // The method's note names the same passages, best first.
        let note = of(r, "note")
            .into_iter()
            .find_map(|n| n.strip_prefix("retrieved: "))
            .unwrap();
        let note: Vec<serde_json::Value> = serde_json::from_str(note).unwrap();
        let ids: Vec<&str> = note.iter().map(|h| h["id"].as_str().unwrap()).collect();
        assert_eq!(ids, hits);
        let scores: Vec<f64> = note.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        // The passages used are the first two, stored with the run, and
        // are the texts the prompt held.
        let contexts: Vec<&str> = r["contexts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(
            contexts,
            [corpus[hits[0]].as_str(), corpus[hits[1]].as_str()]
        );
        let prompt = r["calls"][0]["prompt"].as_str().unwrap();
        assert!(
            prompt.contains(&format!(": {}\n\n[2] ", contexts[0])),
            "{prompt}"
        );
        assert!(prompt.contains(&format!(
            "Question: {}\nAnswer:",
            r["question"].as_str().unwrap()
        )));

        // recall@k, MRR and nDCG@k from the stored ids and the gold paragraph.
        let g = &gold[r["example_id"].as_str().unwrap()];
        let rank = hits.iter().position(|h| h == g);
        let sc = &r["scores"];
        for k in [1usize, 3, 5, 10] {
            let found = rank.is_some_and(|i| i < k);
            assert_eq!(
                sc[format!("recall@{k}")],
                f64::from(u8::from(found)),
                "{k} {r}"
            );
            let ndcg = if found {
                1.0 / ((rank.unwrap() + 2) as f64).log2()
            } else {
                0.0
            };
            let got = sc[format!("ndcg@{k}")].as_f64().unwrap();
            assert!((got - ndcg).abs() < 1e-12, "ndcg@{k} {got} != {ndcg}");
        }
        let mrr = rank.map_or(0.0, |i| 1.0 / (i + 1) as f64);
        assert!((sc["mrr"].as_f64().unwrap() - mrr).abs() < 1e-12);
        // Context precision over the two passages used (one gold at most).
        let cp = match rank {
            Some(i) if i < 2 => 1.0 / (i + 1) as f64,
            _ => 0.0,
        };
        assert!(
            (sc["context_precision"].as_f64().unwrap() - cp).abs() < 1e-12,
            "{r}"
        );
        // Faithfulness: the judge was asked once per claim, after the answer.
        let claims = sc["claims"].as_f64().unwrap() as usize;
        let f = sc["faithfulness"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f));
        assert_eq!(sc["hallucination"], f64::from(u8::from(f < 0.5)));
        assert_eq!(r["calls"].as_array().unwrap().len(), 1 + claims, "{r}");
        assert!(!r["answer"].as_str().unwrap().is_empty() || claims == 0);
        assert!(sc["f1"].is_number());
    }
}

#[test]
fn closed_book_retrieve_only_and_a_missing_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = dataset(tmp.path(), 1);
    let home = tmp.path().join("home");

    // k = 0: no search, the closed-book prompt, nothing retrieved.
    let cfg = write(
        tmp.path(),
        "closed.toml",
        &config(
            &data,
            r#"index = "squad", k = 0"#,
            &["retrieval", "context"],
        ),
    );
    let r = &stored_runs(&home, &cfg)[0];
    assert!(r["error"].is_null(), "{r}");
    assert!(searches(r).is_empty(), "{r}");
    assert!(r["contexts"].as_array().unwrap().is_empty());
    assert!(of(r, "note").contains(&"closed_book: k = 0, no retrieval"));
    let prompt = r["calls"][0]["prompt"].as_str().unwrap();
    assert!(!prompt.contains("Context:"), "{prompt}");
    assert_eq!(r["scores"]["recall@10"], 0.0);
    assert_eq!(r["scores"]["context_precision"], 0.0);

    // retrieve_only: the search and its passages, no model call.
    let cfg = write(
        tmp.path(),
        "only.toml",
        &config(
            &data,
            r#"index = "squad", k = 3, retrieve_only = true"#,
            &["retrieval", "faithfulness"],
        ),
    );
    let r = &stored_runs(&home, &cfg)[0];
    assert!(r["error"].is_null(), "{r}");
    assert!(r["calls"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["answer"], "");
    assert_eq!(searches(r).len(), 1);
    assert_eq!(r["contexts"].as_array().unwrap().len(), 3);
    assert!(of(r, "note").contains(&"retrieve_only: generation skipped"));
    assert!(r["scores"]["recall@3"].is_number());
    // An empty answer makes no claim: nothing to judge.
    assert_eq!(r["scores"]["claims"], 0.0);

    // An index the config does not define: a config error at its line,
    // before anything runs.
    let cfg = write(
        tmp.path(),
        "missing.toml",
        &config(&data, r#"index = "nope""#, &["f1"]),
    );
    let out = forge(&home).arg("run").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("missing.toml:")
            && e.contains("method.params.index")
            && e.contains("rag searches index \"nope\", which this experiment does not define")
            && e.contains("names: squad"),
        "{e}"
    );
}
