//! `forge-host align` (issue #15) through the real model, plugins and
//! configs: every axis runs for both models and is stored as one group of
//! kind `alignment`; its table's paired numbers are the same as `compare`
//! gives for the same two experiments; DPO's implicit reward is recomputed
//! here from the stored `pref_margin` scores; a rerun reuses what finished;
//! `report` writes the page; bad alignment configs fail at their line.
//! The tuned model here is the same file requantised to `q8_0` (a real
//! second model with a different forward pass, cheap to load); the README's
//! table uses a `train dpo` adapter.

mod common;
use common::*;

use serde_json::Value;

fn alignment_config(dir: &std::path::Path, tail: &str) -> std::path::PathBuf {
    let configs = repo().join("configs");
    write(
        dir,
        "align.toml",
        &format!(
            r#"name = "align-test"
beta = 0.5
[base]
source = "smollm2-135m-instruct"
threads = 2
[tuned]
source = "smollm2-135m-instruct"
threads = 2
weights = "q8_0"
[axes]
preference = "{c}/hh_preference_accuracy.toml"
factuality = "{c}/nq_naive.toml"
generations = "{c}/hh_generations.toml"
{tail}"#,
            c = configs.display()
        ),
    )
}

fn scores(home: &std::path::Path, id: &str) -> Vec<(String, Value)> {
    exported_runs(home, id)
        .into_iter()
        .map(|r| {
            (
                r["example_id"].as_str().unwrap().to_string(),
                r["scores"].clone(),
            )
        })
        .collect()
}

#[test]
fn align_runs_every_axis_for_both_models_and_its_table_agrees_with_compare() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = alignment_config(
        tmp.path(),
        "[judge]\non = \"generations\"\nrubric = \"helpful\"\n",
    );
    let limit = ["--limit", "3"];
    let ev = events(&run_ok(forge(&home).args(["--json", "align"]).arg(&cfg).args(limit)).stdout);
    let group = ev.iter().find(|e| e["event"] == "group").unwrap()["group"]
        .as_str()
        .unwrap()
        .to_string();
    let cells: Vec<Value> = ev
        .iter()
        .filter(|e| e["event"] == "cell")
        .map(|e| e["labels"].clone())
        .collect();
    assert_eq!(
        cells,
        [
            ["preference", "base"],
            ["preference", "tuned"],
            ["factuality", "base"],
            ["factuality", "tuned"],
            ["generations", "base"],
            ["generations", "tuned"],
            ["judge", "tuned vs base"]
        ]
        .iter()
        .map(|l| serde_json::json!(l))
        .collect::<Vec<_>>()
    );

    let shown: Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", &group])).stdout)
            .unwrap();
    assert_eq!(shown["group"]["kind"], "alignment");
    let axes = shown["axes"].as_array().unwrap();
    assert_eq!(axes.len(), 3);
    for ax in axes {
        let (base, tuned) = (ax["base"].as_str().unwrap(), ax["tuned"].as_str().unwrap());
        // The table's paired numbers are compare's for the same two runs.
        let cmp: Value = serde_json::from_slice(
            &run_ok(forge(&home).args(["--json", "compare", base, tuned])).stdout,
        )
        .unwrap();
        let from_compare = &cmp[0]["metrics"];
        let in_table = &ax["comparison"]["metrics"];
        assert_eq!(
            in_table
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (&m["name"], &m["delta"], &m["p_value"]))
                .collect::<Vec<_>>(),
            from_compare
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (&m["name"], &m["delta"], &m["p_value"]))
                .collect::<Vec<_>>(),
            "{ax}"
        );
        let tuned_exp: Value = serde_json::from_slice(
            &run_ok(forge(&home).args(["--json", "show", tuned, "--rows", "0"])).stdout,
        )
        .unwrap();
        assert_eq!(
            tuned_exp["experiment"]["model"]["weights"]
                .as_str()
                .map(|w| w.contains("q8_0")),
            Some(true)
        );
        // Verbosity is paired on the axes that generate text.
        let generates = ax["axis"] != "preference";
        assert_eq!(!ax["verbosity"].is_null(), generates, "{ax}");
    }

    // DPO's implicit reward on the preference axis, by hand from the
    // stored margins: beta * (margin_tuned - margin_base) > 0.
    let pref = &axes[0];
    let (mb, mt) = (
        scores(&home, pref["base"].as_str().unwrap()),
        scores(&home, pref["tuned"].as_str().unwrap()),
    );
    let rewards: Vec<f64> = mb
        .iter()
        .zip(&mt)
        .map(|((ib, sb), (it, st))| {
            assert_eq!(ib, it);
            0.5 * (st["pref_margin"].as_f64().unwrap() - sb["pref_margin"].as_f64().unwrap())
        })
        .collect();
    let acc = rewards.iter().filter(|&&r| r > 0.0).count() as f64 / rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
    let text =
        String::from_utf8_lossy(&run_ok(forge(&home).args(["show", &group])).stdout).to_string();
    let row = text
        .lines()
        .find(|l| l.contains("DPO implicit reward accuracy"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&format!("| {:.1} [", 100.0 * acc)),
        "{row} vs {acc}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("implicit reward margin (β = 0.5)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains(&format!("| {mean:.4} [")), "{row} vs {mean}");
    assert!(text.contains("win rate of tuned"), "{text}");
    assert!(
        text.contains("| factuality | verbosity: tokens per answer |"),
        "{text}"
    );

    // A rerun reuses every finished experiment.
    let before = String::from_utf8_lossy(&run_ok(forge(&home).arg("list")).stdout)
        .matches("align-test-")
        .count();
    run_ok(forge(&home).arg("align").arg(&cfg).args(limit));
    let after = String::from_utf8_lossy(&run_ok(forge(&home).arg("list")).stdout)
        .matches("align-test-")
        .count();
    assert_eq!(after, before + 1, "only a new group, no new experiment");

    let out = tmp.path().join("report");
    run_ok(forge(&home).args(["report", &group, "--out"]).arg(&out));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| preference | pref_acc |") && md.contains("charts/factuality-scores.svg"),
        "{md}"
    );
    assert!(out.join("report.html").is_file());
}

#[test]
fn bad_alignment_configs_fail_at_their_line() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let fail = |cfg: &std::path::Path| {
        let out = forge(&home).arg("align").arg(cfg).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let cfg = alignment_config(tmp.path(), "[judge]\non = \"answers\"\n");
    let err = fail(&cfg);
    assert!(
        err.contains("align.toml:15:") && err.contains("judge.on") && err.contains("names no axis"),
        "{err}"
    );
    let cfg = alignment_config(tmp.path(), "[judge]\non = \"generations\"\ncolour = 1\n");
    let err = fail(&cfg);
    assert!(
        err.contains("align.toml:16:") && err.contains("colour"),
        "{err}"
    );
    let cfg = alignment_config(tmp.path(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("hh_generations.toml", "missing.toml");
    let cfg = write(tmp.path(), "align.toml", &text);
    let err = fail(&cfg);
    assert!(
        err.contains("missing.toml") && err.contains("axes.generations"),
        "{err}"
    );
    // The shipped config before `train dpo` has written its adapter.
    let shipped = repo().join("configs/alignment_compare.toml");
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace(
            "../runs/dpo_hh/adapter",
            &tmp.path().join("no-adapter").display().to_string(),
        )
        .replace(
            "\"hh_",
            &format!("\"{}/hh_", repo().join("configs").display()),
        )
        .replace(
            "\"nq_",
            &format!("\"{}/nq_", repo().join("configs").display()),
        );
    let line = text
        .lines()
        .position(|l| l.starts_with("adapter ="))
        .unwrap()
        + 1;
    let cfg = write(tmp.path(), "shipped.toml", &text);
    let err = fail(&cfg);
    assert!(
        err.contains(&format!("shipped.toml:{line}:"))
            && err.contains("tuned.adapter")
            && err.contains("train dpo"),
        "{err}"
    );
    let listed = String::from_utf8_lossy(&run_ok(forge(&home).arg("list")).stdout).to_string();
    assert!(
        !listed.contains("align-test") && !listed.contains("alignment-"),
        "{listed}"
    );
}
