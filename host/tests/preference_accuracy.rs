//! Preference accuracy (issue #15) through the real model and the real
//! `preference` method and `preference_accuracy` metric: the stored scores
//! agree with the engine's own continuation scores for the same chat
//! prompt, a bad preference row is a one-line error naming file, line and
//! field, and `compare` tests the 0/1 scores with exact McNemar.

mod common;
use common::*;

use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::{Backend, Message, Prompt};
use forge_host::experiment::datasets::{Dataset, DatasetKind};

const SAMPLE: usize = 5;

fn config(dataset: &std::path::Path, name: &str, weights: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 7
[model]
source = "smollm2-135m-instruct"
threads = 2
weights = "{weights}"
[dataset]
path = "{}"
kind = "preference"
sample = {SAMPLE}
[method]
plugin = "preference"
[[metrics]]
plugin = "preference_accuracy"
"#,
        dataset.display()
    )
}

/// `(example id, scores)` of every stored run.
fn exported(home: &std::path::Path, id: &str) -> Vec<(String, serde_json::Value)> {
    exported_runs(home, id)
        .into_iter()
        .map(|r| {
            assert!(r["error"].is_null(), "{r}");
            (
                r["example_id"].as_str().unwrap().to_string(),
                r["scores"].clone(),
            )
        })
        .collect()
}

#[test]
fn stored_preference_scores_match_the_engine_and_compare_pairs_them() {
    let Some(model) = default_model() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = shared_data("hh_harmless.dev200.jsonl");
    let native = run_id(
        &home,
        &write(tmp.path(), "a.toml", &config(&data, "native", "native")),
    );
    let runs = exported(&home, &native);
    assert_eq!(runs.len(), SAMPLE);

    // By hand: the same chat turns and stripped replies, scored by the
    // engine itself (no plugin, no host capability, no call cache).
    let ds = Dataset::load_as(&data, DatasetKind::Preference).unwrap();
    let opts = CandleOptions {
        threads: 2,
        ..CandleOptions::default()
    };
    let mut engine = CandleBackend::load(&model, opts).unwrap();
    let (mut wins, mut norm_wins) = (0, 0);
    for (id, scores) in &runs {
        let ex = ds.examples.iter().find(|e| &e.id == id).unwrap();
        let messages: Vec<Message> = serde_json::from_value(ex.meta["messages"].clone()).unwrap();
        let replies = [
            ex.meta["chosen"].as_str().unwrap().trim().to_string(),
            ex.meta["rejected"].as_str().unwrap().trim().to_string(),
        ];
        let prompt = Prompt::Chat(messages);
        let lp = engine.score_continuations(&prompt, &replies).unwrap();
        // Per token: the counts the engine scored (score-chat-ext), which
        // are the replies' own tokenisations give or take a merge at the
        // boundary with the prompt.
        let tokens = engine.continuation_tokens(&prompt, &replies).unwrap();
        for (reply, &n) in replies.iter().zip(&tokens) {
            let alone = engine.tokenize(reply).unwrap().len() as i64;
            assert!((i64::from(n) - alone).abs() <= 1, "{id}: {n} vs {alone}");
        }
        let per_token = |i: usize| lp[i] / f64::from(tokens[i]);
        assert_eq!(
            scores["pref_acc_token"].as_f64(),
            Some(f64::from(u8::from(per_token(0) > per_token(1)))),
            "{id}: {scores}"
        );
        let margin = lp[0] - lp[1];
        let per_char = |i: usize| lp[i] / replies[i].chars().count() as f64;
        let acc = f64::from(u8::from(lp[0] > lp[1]));
        let norm = f64::from(u8::from(per_char(0) > per_char(1)));
        assert_eq!(scores["pref_acc"].as_f64(), Some(acc), "{id}: {scores}");
        assert_eq!(
            scores["pref_acc_norm"].as_f64(),
            Some(norm),
            "{id}: {scores}"
        );
        let stored = scores["pref_margin"].as_f64().unwrap();
        assert!(
            (stored - margin).abs() < 1e-4,
            "{id}: margin stored {stored}, engine {margin}"
        );
        wins += acc as usize;
        norm_wins += norm as usize;
    }
    eprintln!("native: pref_acc {wins}/{SAMPLE}, pref_acc_norm {norm_wins}/{SAMPLE}");

    // The same pairs with requantised weights, paired by example.
    let q8 = run_id(
        &home,
        &write(tmp.path(), "b.toml", &config(&data, "q8", "q8_0")),
    );
    let out = run_ok(forge(&home).args(["--json", "compare", &native, &q8]));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &all[0];
    assert_eq!(c["shared_examples"], SAMPLE);
    let metric = |name: &str| {
        c["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {c}"))
            .clone()
    };
    for name in ["pref_acc", "pref_acc_norm"] {
        let m = metric(name);
        assert_eq!(m["test"], "mcnemar-exact", "{m}");
        assert_eq!(
            m["mean_a"].as_f64(),
            Some(if name == "pref_acc" { wins } else { norm_wins } as f64 / SAMPLE as f64),
            "{m}"
        );
    }
    assert_ne!(metric("pref_margin")["test"], "mcnemar-exact");
}

#[test]
fn a_pair_missing_rejected_is_one_line_naming_file_line_and_field_and_an_empty_one_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let row = r#"{"id":"a","prompt":"\n\nHuman: hi\n\nAssistant:","chosen":" hello","rejected":" go away"}"#;
    let bad = r#"{"id":"b","prompt":"\n\nHuman: hi\n\nAssistant:","chosen":" hello"}"#;
    let data = write(tmp.path(), "pairs.jsonl", &format!("{row}\n{bad}\n"));
    let cfg = write(tmp.path(), "p.toml", &config(&data, "bad", "native"));
    let out = forge(&tmp.path().join("home"))
        .arg("run")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("pairs.jsonl")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].ends_with("pairs.jsonl:2: rejected: missing"),
        "{err}"
    );
}
