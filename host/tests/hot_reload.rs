//! `forge-host watch` picks up a replaced component without restarting and
//! reports the score change.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn watch_reruns_when_the_method_component_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let method = tmp.path().join("method.wasm");
    std::fs::copy(plugin("naive"), &method).unwrap();
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &format!(
            r#"name = "watched"
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[method]
plugin = "method.wasm"
[[metrics]]
plugin = "exact_match"
[generation]
max_tokens = 16
"#,
            shared_data("nq_open.dev200.jsonl").display()
        ),
    );
    let mut child = forge(&tmp.path().join("home"))
        .args(["--json", "watch"])
        .arg(&cfg)
        .args(["--examples", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("watch printed nothing")
    };
    let first = next();
    assert_eq!(
        (first["event"].as_str(), first["generation"].as_u64()),
        (Some("scores"), Some(0)),
        "{first}"
    );
    assert_eq!(first["examples"], 2);

    // Replace the method with another real component (the test guest whose
    // default answers with the reference): the host must notice and re-run.
    let tmp_file = tmp.path().join("method.wasm.new");
    std::fs::copy(plugin("hostile"), &tmp_file).unwrap();
    std::fs::rename(&tmp_file, &method).unwrap();
    let second = next();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(second["generation"], 1, "{second}");
    assert_ne!(second["method_sha256"], first["method_sha256"]);
    assert_eq!(second["scores"]["exact_match"], 1.0, "{second}");
    let delta = second["delta"]["exact_match"].as_f64().unwrap();
    let before = first["scores"]["exact_match"].as_f64().unwrap();
    assert!((delta - (1.0 - before)).abs() < 1e-9, "{second}");
}
