//! A metric written in Python (`plugins/metrics/numeric_match_py`), built
//! from source with componentize-py by `scripts/build-py-plugins.sh`,
//! scores a real experiment beside the Rust metrics, and every score it
//! stored equals a Rust twin of the same rule. The same source built
//! against an older accepted contract loads; built against a newer one it
//! is refused, naming both versions.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the Python plugins (installing componentize-py the first time)
/// and returns the metric's component.
fn numeric_match() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            plugins();
            run_script("scripts/build-py-plugins.sh");
            repo().join("target/plugins/numeric_match.wasm")
        })
        .clone()
}

/// The rule of app.py, written again in Rust: the last ASCII number
/// (optional sign, thousands commas, decimals) of the answer equals the
/// last number of a reference.
fn last_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = if i > 0 && matches!(b[i - 1], b'-' | b'+') {
            i - 1
        } else {
            i
        };
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b',') {
            j += 1;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        found.push(text[start..j].replace(',', ""));
        i = j;
    }
    found.iter().rev().find_map(|t| t.parse::<f64>().ok())
}

fn rust_numeric_match(answer: &str, references: &[String]) -> f64 {
    let hit = last_number(answer).is_some_and(|got| {
        references
            .iter()
            .any(|r| last_number(r).is_some_and(|r| (r - got).abs() < 1e-9))
    });
    if hit { 1.0 } else { 0.0 }
}

#[test]
fn the_rust_twin_reads_numbers_as_the_python_metric_does() {
    assert_eq!(last_number("so 3-4 = -1, answer: $1,509.50."), Some(1509.5));
    assert_eq!(last_number("#### +72"), Some(72.0));
    assert_eq!(last_number("no number"), None);
    assert_eq!(rust_numeric_match("It is 72.0", &["72".into()]), 1.0);
    assert_eq!(rust_numeric_match("It is 71", &["72".into()]), 0.0);
}

#[test]
fn a_python_metric_scores_an_experiment_as_its_rust_twin_does() {
    let component = numeric_match();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    let shown = run_ok(forge(&home).args(["plugins", "inspect"]).arg(&component));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("metric") && text.contains("forge:plugin@0.1.6"),
        "{text}"
    );

    // A real model (naive) and an oracle (hostile answers the reference),
    // scored by the Rust exact_match and the Python numeric_match.
    let cfg = write(
        tmp.path(),
        "py.toml",
        &format!(
            r#"name = "python-metric"
seed = 2
[model]
source = "smollm2-135m-instruct"
threads = 2
[dataset]
path = "{}"
sample = 6
[method]
plugin = "naive"
[[metrics]]
plugin = "exact_match"
[[metrics]]
plugin = "numeric_match"
[generation]
max_tokens = 32
[sweep]
method = [{{ plugin = "naive" }}, {{ plugin = "hostile", label = "oracle" }}]
"#,
            shared_data("gsm8k.dev200.jsonl").display()
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let group = ev.last().unwrap()["group"].as_str().unwrap().to_string();
    let shown: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", &group])).stdout)
            .unwrap();
    let ids: Vec<String> = shown["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["experiment"].as_str().unwrap().to_string())
        .collect();
    let oracle = &shown["cells"][1]["summary"]["metrics"]["numeric_match"];
    assert_eq!(
        oracle["mean"], 1.0,
        "the oracle's answers are the references"
    );

    let mut with_numbers = 0;
    for id in &ids {
        for r in exported_runs(&home, id) {
            let answer = r["answer"].as_str().unwrap_or_default();
            let refs: Vec<String> = serde_json::from_value(r["references"].clone()).unwrap();
            with_numbers += usize::from(last_number(answer).is_some());
            assert_eq!(
                r["scores"]["numeric_match"].as_f64(),
                Some(rust_numeric_match(answer, &refs)),
                "{id} {}: answer {answer:?}, references {refs:?}",
                r["example_id"]
            );
        }
    }
    assert!(
        with_numbers >= 6,
        "too few answers with a number to compare: {with_numbers}"
    );
}

#[test]
fn the_python_metric_scores_fixed_answers_as_written() {
    numeric_match();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // (answer, reference, expected): the last number counts, commas,
    // signs and decimals are read, a reference is read the same way.
    let cases = [
        ("I counted 3 boxes, so 12 apples.", "12", 1.0),
        ("The total is $1,509.", "1509", 1.0),
        ("It fell to -4 degrees", "-4", 1.0),
        ("72.0", "72", 1.0),
        ("12 at first, then 3", "12", 0.0),
        ("no idea", "5", 0.0),
        ("7", "so #### 7", 1.0),
        ("0.5", "1/2", 0.0),
    ];
    let rows: String = cases
        .iter()
        .enumerate()
        .map(|(i, (a, r, _))| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("c{i}"), "question": "q", "answers": [r], "meta": {"answer": a}})
            )
        })
        .collect();
    let data = write(tmp.path(), "cases.jsonl", &rows);
    let cfg = write(
        tmp.path(),
        "replay.toml",
        &replay_config(
            "py-fixed",
            &data,
            "[[metrics]]\nplugin = \"numeric_match\"\n",
        ),
    );
    let id = run_id(&home, &cfg);
    let mut got: Vec<(String, f64)> = exported_runs(&home, &id)
        .iter()
        .map(|r| {
            (
                r["example_id"].as_str().unwrap().to_string(),
                r["scores"]["numeric_match"].as_f64().unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (answer, reference, expected)) in cases.iter().enumerate() {
        assert_eq!(got[i].1, *expected, "{answer:?} against {reference:?}");
        assert_eq!(
            rust_numeric_match(answer, &[reference.to_string()]),
            *expected
        );
    }
}

#[test]
fn older_contracts_load_and_a_newer_one_is_refused() {
    numeric_match();
    let tmp = tempfile::tempdir().unwrap();
    let cpy = repo().join("target/py-toolchain/bin/componentize-py");
    let app = repo().join("plugins/metrics/numeric_match_py");
    let build = |wit: &Path, out: &Path| {
        let st = Command::new(&cpy)
            .arg("-d")
            .arg(wit)
            .args(["-w", "metric", "componentize", "app", "-o"])
            .arg(out)
            .current_dir(&app)
            .status()
            .unwrap();
        assert!(st.success(), "componentize-py against {}", wit.display());
    };
    let inspect = |file: &Path| {
        forge(&tmp.path().join("h"))
            .args(["plugins", "inspect"])
            .arg(file)
            .output()
            .unwrap()
    };

    // The metric world as first released (0.1.0): still accepted.
    let old = tmp.path().join("old.wasm");
    build(&repo().join("wit/v0.1.0"), &old);
    let out = inspect(&old);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("forge:plugin@0.1.0"));

    // The same contract renumbered as a release this host does not know.
    let future = tmp.path().join("wit-0.2.0");
    std::fs::create_dir_all(&future).unwrap();
    let wit = std::fs::read_to_string(repo().join("wit/v0.1.6/forge.wit"))
        .unwrap()
        .replace("package forge:plugin@0.1.6", "package forge:plugin@0.2.0");
    std::fs::write(future.join("forge.wit"), wit).unwrap();
    let newer = tmp.path().join("newer.wasm");
    build(&future, &newer);
    let out = inspect(&newer);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(FUTURE_CONTRACT_REFUSAL), "{err}");
}
