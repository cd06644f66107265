//! `forge-host verify` re-runs stored examples from the stored config and
//! seed: identical when nothing changed, and a clear account when something did.

mod common;
use common::*;

#[test]
fn verify_reproduces_a_run_and_explains_a_changed_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let method = tmp.path().join("method.wasm");
    std::fs::copy(plugin("naive"), &method).unwrap();
    let body = naive_config(&shared_data("nq_open.dev200.jsonl"), 3, "")
        .replace("plugin = \"naive\"", "plugin = \"method.wasm\"");
    let cfg = write(tmp.path(), "exp.toml", &body);
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();

    let out = run_ok(forge(&home).args(["--json", "verify", &id, "--examples", "3"]));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["checked"].as_u64(), r["identical"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    assert!(r["changed_inputs"].as_array().unwrap().is_empty(), "{r}");

    // Swap the method for another component: verify fails and says why.
    std::fs::copy(plugin("hostile"), &method).unwrap();
    let out = forge(&home)
        .args(["verify", &id, "--examples", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0/2 examples reproduced identically"),
        "{text}"
    );
    assert!(
        text.contains("answer differs")
            && text.contains("changed since the run: method plugin method"),
        "{text}"
    );
}
