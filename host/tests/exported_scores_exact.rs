//! Scores keep their full f64 value from the metric component through the
//! store to `export`: the F1 and EM exported for fixed answers equal the
//! official SQuAD v1.1 definition, re-stated in Python
//! (scripts/oracles/squad_v1_oracle.py), to the last bit. The bar
//! is 1e-12; the Rust metric does the same float operations in the same
//! order as the script, so anything but equality is a lossy hop.
//!
//! Numbers are compared as the text each side printed, parsed by Rust's
//! correctly rounded `str::parse`, so no JSON parser sits in the comparison.

mod common;
use common::*;

use std::collections::HashMap;
use std::process::Command;

use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Case {
    prediction: String,
    references: Vec<String>,
    exact_match: Box<RawValue>,
    f1: Box<RawValue>,
}

#[derive(serde::Deserialize)]
struct ExportedRun {
    example_id: String,
    answer: Option<String>,
    scores: HashMap<String, Box<RawValue>>,
}

fn number(text: &str) -> f64 {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Every differing score as `id name: exported vs oracle (diff)`.
fn differences(
    cases: &[Case],
    exported: impl Iterator<Item = (String, String, String)>,
) -> (usize, Vec<String>) {
    let mut n = 0;
    let mut bad = Vec::new();
    for (id, name, text) in exported {
        let case = &cases[id.trim_start_matches('c').parse::<usize>().unwrap()];
        let oracle = match name.as_str() {
            "f1" => case.f1.get(),
            "exact_match" => case.exact_match.get(),
            other => panic!("unexpected score {other}"),
        };
        let (got, want) = (number(&text), number(oracle));
        n += 1;
        if got.to_bits() != want.to_bits() {
            bad.push(format!(
                "{id} {name}: exported {text} vs oracle {oracle} (diff {:e}; {:?} → {:?})",
                (got - want).abs(),
                case.prediction,
                case.references
            ));
        }
    }
    (n, bad)
}

#[test]
fn exported_f1_and_em_equal_the_official_squad_definition_bit_for_bit() {
    let data = shared_data("squad.dev200.jsonl");
    let out = Command::new("python3")
        .arg(repo().join("scripts/oracles/squad_v1_oracle.py"))
        .arg(&data)
        .output()
        .expect("python3 runs the SQuAD oracle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<Case> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() > 200, "{} oracle cases", cases.len());

    // The test-only `replay` method answers each case's prediction.
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "id": format!("c{i}"), "question": "q", "answers": c.references,
                "meta": {"answer": c.prediction},
            })
            .to_string()
        })
        .collect();
    let dataset = write(tmp.path(), "cases.jsonl", &(rows.join("\n") + "\n"));
    let cfg = write(
        tmp.path(),
        "exact.toml",
        &replay_config(
            "exact",
            &dataset,
            "[[metrics]]\nplugin = \"f1\"\n[[metrics]]\nplugin = \"exact_match\"\n",
        ),
    );
    let home = tmp.path().join("home");
    let run = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let id = events(&run.stdout)
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary event")["experiment"]
        .as_str()
        .unwrap()
        .to_string();

    let jsonl = run_ok(forge(&home).args(["export", &id, "--format", "jsonl"])).stdout;
    let runs: Vec<ExportedRun> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), cases.len());
    for r in &runs {
        let case = &cases[r.example_id[1..].parse::<usize>().unwrap()];
        assert_eq!(r.answer.as_deref(), Some(case.prediction.as_str()));
    }
    let (n, bad) = differences(
        &cases,
        runs.iter().flat_map(|r| {
            r.scores
                .iter()
                .map(|(k, v)| (r.example_id.clone(), k.clone(), v.get().to_string()))
        }),
    );
    assert_eq!(n, 2 * cases.len());
    assert!(bad.is_empty(), "JSONL export:\n{}", bad.join("\n"));

    let csv = run_ok(forge(&home).args(["export", &id, "--format", "csv"])).stdout;
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id_col, f1_col, em_col) = (col("example_id"), col("f1"), col("exact_match"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let (n, bad) = differences(
        &cases,
        rows.iter().flat_map(|r| {
            [("f1", f1_col), ("exact_match", em_col)]
                .map(|(name, c)| (r[id_col].to_string(), name.to_string(), r[c].to_string()))
        }),
    );
    assert_eq!(n, 2 * cases.len());
    assert!(bad.is_empty(), "CSV export:\n{}", bad.join("\n"));
}
