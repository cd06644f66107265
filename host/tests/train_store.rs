//! Training runs in the results store, through the real binary and the
//! real model: a run killed mid-way and run again is one record with one
//! row per step, which `list`, `show` and `report` read; a `[sweep]` of
//! training runs is a group whose second cell reads every reference
//! log-prob from the cache.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::train::{all, event, events, forge_json, forge_text, forge_train, tiny_toml};
use serde_json::Value;

fn json_of(home: &Path, args: &[&str]) -> Value {
    let out = common::run_ok(&mut forge_json(home, args));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn steps_of(rows: &Value) -> Vec<u64> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

/// Every number of a `step` or `eval` event equals the stored row's.
fn assert_event_stored(ev: &Value, rows: &Value) {
    let step = ev["step"].as_u64().unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == step)
        .unwrap_or_else(|| panic!("no stored row for {ev}"));
    for (k, v) in ev.as_object().unwrap() {
        if k == "event" || k == "step" {
            continue;
        }
        let stored = row["metrics"].get(k).unwrap_or(&row[k]);
        assert_eq!(
            stored.as_f64(),
            v.as_f64(),
            "step {step} {k}: stored {stored}, event {v}"
        );
    }
}

/// `kill -9` after step 3 (checkpoint at 2), the same command again: one
/// record, done, one row per step (step 3 replaced, not duplicated), two
/// attempts; every step and eval event equals its stored row; `list`,
/// `show` (text, JSON, an id prefix) and `report` read it; an unknown id
/// is a one-line error.
#[test]
fn a_killed_run_resumes_into_one_stored_record_that_list_show_and_report_read() {
    if common::default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny_toml(0.1, 4, "eval_every = 2\n", "")).unwrap();

    let mut child = forge_train(&home, &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let stop = e["event"] == "step" && e["step"] == 3;
        first.push(e);
        if stop {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    let run = event(&first, "start").unwrap()["run"]
        .as_str()
        .unwrap()
        .to_string();
    let killed = json_of(&home, &["show", &run]);
    assert_eq!(killed["training_run"]["status"], "running");
    assert_eq!(steps_of(&killed["steps"]), [1, 2, 3], "each step committed");

    let out = common::run_ok(&mut forge_train(&home, &config));
    let second = events(&out.stdout);
    assert_eq!(event(&second, "resume").unwrap()["step"], 2);

    // `show` by a prefix of the id: the whole record.
    let shown = json_of(&home, &["show", &run[..6]]);
    let rec = &shown["training_run"];
    assert_eq!(rec["id"], run.as_str());
    assert_eq!(rec["status"], "done");
    assert_eq!(
        (rec["steps_done"].as_u64(), rec["total_steps"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(steps_of(&shown["steps"]), [1, 2, 3, 4], "one row per step");
    assert_eq!(steps_of(&shown["evals"]), [0, 2, 4]);
    let start = event(&first, "start").unwrap();
    for k in [
        "config_sha256",
        "model_sha256",
        "data_sha256",
        "train_pairs",
        "validation_pairs",
        "skipped_empty",
        "total_steps",
    ] {
        assert_eq!(rec[k], start[k], "{k}");
    }
    assert_eq!(rec["truncated"], start["truncated"]);
    assert_eq!(rec["hyperparameters"]["beta"], 0.1);
    assert_eq!(rec["hyperparameters"]["lora"]["rank"], 2);
    assert!(
        rec["config_text"]
            .as_str()
            .unwrap()
            .contains("limit_pairs = 6")
    );
    assert!(rec["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(rec["seconds"].as_f64().unwrap() > 0.0);
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["resumed_from"], Value::Null);
    assert!(attempts[0]["reference_computed"].as_u64().unwrap() > 0);
    assert_eq!(attempts[1]["resumed_from"], 2);
    assert_eq!(attempts[1]["reference_computed"], 0);
    assert_eq!(
        rec["final_validation"]["metrics"]["loss"],
        event(&second, "done").unwrap()["validation"]["loss"]
    );
    // The rows are the events: the second attempt's, and the first's up to
    // the checkpoint it resumed from.
    for e in all(&second, "step").into_iter().chain(all(&second, "eval")) {
        assert_event_stored(
            e,
            if e["event"] == "step" {
                &shown["steps"]
            } else {
                &shown["evals"]
            },
        );
    }
    for e in all(&first, "step")
        .into_iter()
        .filter(|e| e["step"].as_u64() <= Some(2))
    {
        assert_event_stored(e, &shown["steps"]);
    }
    for e in all(&first, "eval") {
        assert_event_stored(e, &shown["evals"]);
    }

    let listed = json_of(&home, &["list"]);
    let runs = listed["training_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["training_run"]["id"], run.as_str());
    assert_eq!(runs[0]["training_run"]["status"], "done");
    assert_eq!(runs[0]["step_rows"], 4);
    assert_eq!(runs[0]["eval_rows"], 3);

    let text = |args: &[&str]| {
        String::from_utf8(common::run_ok(&mut forge_text(&home, args)).stdout).unwrap()
    };
    let list = text(&["list"]);
    assert!(
        list.contains("training runs:") && list.contains(&run) && list.contains("4/4"),
        "{list}"
    );
    let show = text(&["show", &run]);
    assert!(
        show.contains("final validation (step 4)") && show.contains("beta=0.1"),
        "{show}"
    );

    let report = dir.path().join("report");
    common::run_ok(forge_json(&home, &["report", &run, "--out"]).arg(&report));
    let loss = std::fs::read_to_string(report.join("charts/loss.svg")).unwrap();
    assert!(
        loss.contains("<svg") && loss.contains("training loss") && loss.contains("validation loss")
    );
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "loss, rewards, accuracies inline"
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("## Validation") && md.contains("charts/rewards.svg"),
        "{md}"
    );
    let csv = std::fs::read_to_string(report.join("steps.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "header and four steps:\n{csv}");

    let out = forge_json(&home, &["show", "zz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: nothing stored matches \"zz\""),
        "{err}"
    );
}

/// A two-cell beta sweep: each cell its own stored run, the group points
/// at both, the second cell reads all its reference log-probs from the
/// cache the first filled (`reference` computed 0, in the events, the
/// group event and `show <group>`); `report <group>` overlays the cells.
/// A bad value is placed on its sweep line before anything trains.
#[test]
fn a_beta_sweep_stores_a_group_whose_second_cell_computes_no_reference() {
    if common::default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");

    let bad = dir.path().join("bad.toml");
    let text = tiny_toml(0.1, 2, "", "[sweep]\n\"train.beta\" = [0.1, -1.0]\n");
    let sweep_line = text
        .lines()
        .position(|l| l.starts_with("\"train.beta\""))
        .unwrap()
        + 1;
    std::fs::write(&bad, &text).unwrap();
    let out = forge_train(&home, &bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("bad.toml:{sweep_line}:"))
            && err.contains("sweep.train.beta: cell train.beta=-1.0"),
        "{err}"
    );

    let config = dir.path().join("beta.toml");
    std::fs::write(
        &config,
        tiny_toml(0.1, 2, "", "[sweep]\n\"train.beta\" = [0.1, 0.2]\n"),
    )
    .unwrap();
    let out = common::run_ok(&mut forge_train(&home, &config));
    let ev = events(&out.stdout);
    let cells = all(&ev, "cell");
    assert_eq!(cells.len(), 2);
    let refs = all(&ev, "reference");
    assert!(refs[0]["computed"].as_u64().unwrap() > 0);
    assert_eq!(refs[1]["computed"], 0, "the second cell reads the cache");
    let group = event(&ev, "group").unwrap();
    let gid = group["group"].as_str().unwrap().to_string();
    assert!(gid.starts_with("beta-g"), "{gid}");
    assert_eq!(group["cells"][1]["reference_computed"], 0);
    assert!(group["cells"][0]["reference_computed"].as_u64().unwrap() > 0);

    let shown = json_of(&home, &["show", &gid]);
    assert_eq!(shown["group"]["kind"], "training");
    assert_eq!(shown["group"]["axes"], serde_json::json!(["train.beta"]));
    let runs: Vec<&Value> = shown["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["training_run"])
        .collect();
    assert_eq!(runs.len(), 2);
    for (r, (c, beta)) in runs.iter().zip(cells.iter().zip([0.1, 0.2])) {
        assert_eq!(r["id"], c["run"]);
        assert_eq!(r["status"], "done");
        assert_eq!(r["hyperparameters"]["beta"], beta);
    }
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    assert_eq!(
        json_of(&home, &["list"])["training_runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let grid =
        String::from_utf8(common::run_ok(&mut forge_text(&home, &["show", &gid])).stdout).unwrap();
    assert!(grid.contains("ref fwd") && grid.contains("2/2"), "{grid}");

    let report = dir.path().join("report");
    common::run_ok(forge_json(&home, &["report", &gid, "--out"]).arg(&report));
    let svg = std::fs::read_to_string(report.join("charts/validation_loss.svg")).unwrap();
    assert!(
        svg.contains("train.beta=0.1") && svg.contains("train.beta=0.2"),
        "both cells overlaid"
    );

    // `compare` is for experiments: a clear refusal, not a panic.
    let out = forge_json(&home, &["compare", &gid]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("sweep of training runs"));

    // Again: both cells are kept as stored, nothing trains.
    let out = common::run_ok(&mut forge_train(&home, &config));
    let ev = events(&out.stdout);
    assert!(all(&ev, "cell").iter().all(|c| c["kept"] == true));
    assert!(event(&ev, "step").is_none());
    assert_eq!(event(&ev, "group").unwrap()["group"], gid.as_str());
}
