//! `forge-host compare` on two real experiments over the same examples.

mod common;
use common::*;

fn config(dataset: &std::path::Path, name: &str, method: &str, seed: u64) -> String {
    format!(
        r#"name = "{name}"
seed = {seed}
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = 8
[method]
plugin = "{method}"
[[metrics]]
plugin = "exact_match"
[[metrics]]
plugin = "f1"
[generation]
max_tokens = 12
"#,
        dataset.display()
    )
}

#[test]
fn compare_pairs_examples_tests_and_refuses_unpaired_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let nq = shared_data("nq_open.dev200.jsonl");
    // A: the real model through naive. B: the test guest that answers with
    // the reference, so every example A gets wrong is a discordant pair.
    let a = run_id(
        &home,
        &write(tmp.path(), "a.toml", &config(&nq, "a", "naive", 1)),
    );
    let b = run_id(
        &home,
        &write(tmp.path(), "b.toml", &config(&nq, "b", "hostile", 1)),
    );

    let out = run_ok(forge(&home).args(["--json", "compare", &a, &b]));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // One comparison per B against A.
    assert_eq!(all.as_array().unwrap().len(), 1);
    let c = &all[0];
    assert!(
        c["metrics"][0]["p_adjusted"].is_null(),
        "one comparison: no adjustment"
    );
    assert_eq!(c["shared_examples"], 8);
    let em = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "exact_match")
        .unwrap();
    assert_eq!(em["test"], "mcnemar-exact");
    assert_eq!(em["mean_b"], 1.0);
    let (only_a, only_b) = (
        em["discordant"][0].as_u64().unwrap(),
        em["discordant"][1].as_u64().unwrap(),
    );
    assert_eq!(only_a, 0);
    let wrong_in_a = (8.0 * (1.0 - em["mean_a"].as_f64().unwrap())).round() as u64;
    assert_eq!(only_b, wrong_in_a);
    // Exact McNemar with b = 0: p = 2 / 2^c.
    let expected = (2.0 / 2f64.powi(only_b as i32)).min(1.0);
    assert!(
        (em["p_value"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{em}"
    );
    let f1 = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "f1")
        .unwrap();
    assert!(f1["delta"].as_f64().unwrap() > 0.0);
    assert!(
        c["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "latency_ms")
    );
    assert_eq!(c["differing"].as_array().unwrap().len() as u64, only_b);

    let text =
        String::from_utf8_lossy(&run_ok(forge(&home).args(["compare", &a, &b])).stdout).to_string();
    assert!(text.contains("B better, p = 0.0"), "{text}");

    // Different data, or a different seed: refused with the reason.
    let squad = shared_data("squad.dev200.jsonl");
    let c_other = run_id(
        &home,
        &write(tmp.path(), "c.toml", &config(&squad, "c", "hostile", 1)),
    );
    let out = forge(&home)
        .args(["compare", &a, &c_other])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ran on different data"));
    let d = run_id(
        &home,
        &write(tmp.path(), "d.toml", &config(&nq, "d", "hostile", 2)),
    );
    let out = forge(&home).args(["compare", &a, &d]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different seeds (1 vs 2)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
