//! Killing `forge-host run` mid-experiment loses nothing already recorded,
//! and running it again finishes the rest without redoing or duplicating.

mod common;
use common::*;

#[test]
fn a_killed_run_resumes_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &naive_config(&shared_data("nq_open.dev200.jsonl"), 6, ""),
    );

    let read = kill_after_examples(forge(&home).args(["--json", "run"]).arg(&cfg), 2);
    let done_before_kill = read.iter().filter(|e| e["event"] == "example").count();
    assert_eq!(done_before_kill, 2);

    let show = |home: &std::path::Path| -> serde_json::Value {
        let list = run_ok(forge(home).args(["--json", "list"]));
        let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        let id = v["experiments"][0]["experiment"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_slice(&run_ok(forge(home).args(["--json", "show", &id])).stdout).unwrap()
    };
    let before = show(&home);
    assert_eq!(
        before["experiment"]["status"], "RUNNING",
        "an interrupted experiment stays RUNNING"
    );
    let runs_before = before["runs"].as_array().unwrap().clone();
    assert!(
        runs_before.len() >= 2,
        "the two reported runs were committed"
    );

    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = events(&out.stdout);
    assert_eq!(ev[0]["event"], "start");
    assert_eq!(
        ev[0]["experiment"], before["experiment"]["id"],
        "the same experiment is resumed"
    );
    assert_eq!(
        ev[0]["already_done"].as_u64().unwrap() as usize,
        runs_before.len()
    );
    let redone: Vec<_> = ev.iter().filter(|e| e["event"] == "example").collect();
    assert_eq!(
        redone.len(),
        6 - runs_before.len(),
        "done examples are not redone"
    );

    let after = show(&home);
    assert_eq!(after["experiment"]["status"], "COMPLETED");
    let runs = after["runs"].as_array().unwrap();
    // Sorted, not deduplicated: a run stored twice must show here.
    let mut idx: Vec<u64> = runs.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    idx.sort_unstable();
    assert_eq!(idx, vec![0, 1, 2, 3, 4, 5], "every example exactly once");
    for r in &runs_before {
        let same = runs.iter().find(|x| x["index"] == r["index"]).unwrap();
        assert_eq!(same, r, "a run from before the kill is kept as it was");
    }
    assert_eq!(after["summary"]["examples"], 6);
}
