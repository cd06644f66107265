//! Misbehaving components fail only their own example, with the reason
//! stored, while the experiment goes on: endless loop, memory bomb, host
//! file read, network attempt, environment snooping, trap.

mod common;
use common::*;

use std::net::TcpListener;

#[test]
fn each_hostile_guest_is_contained_and_the_experiment_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // A secret the guest must not read, and a listener it must not reach.
    let secret = write(tmp.path(), "secret.txt", "TOP-SECRET");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();

    // One example per misbehaviour; the method takes its mode from the question.
    let modes = [
        "loop",
        "memory",
        "read_file",
        "network",
        "env",
        "trap",
        "ok",
    ];
    let rows: String = modes
        .iter()
        .map(|m| format!("{{\"id\":\"{m}\",\"question\":\"{m}\",\"answers\":[\"fine\"]}}\n"))
        .collect();
    let data = write(tmp.path(), "hostile.jsonl", &rows);
    let method = format!(
        "params = {{ mode = \"question\", path = \"{}\", addr = \"{addr}\" }}\nlimits = {{ timeout_ms = 300, memory_mb = 64 }}",
        secret.display()
    );
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(&data, &method, "[run]\nconcurrency = 2"),
    );
    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = events(&out.stdout);
    let by_id = |id: &str| {
        ev.iter()
            .find(|e| e["event"] == "example" && e["id"] == id)
            .unwrap()
            .clone()
    };
    let kind = |id: &str| {
        by_id(id)["error"]["kind"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    };
    let message = |id: &str| {
        by_id(id)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    assert_eq!(kind("loop"), "timeout", "{}", message("loop"));
    assert!(message("loop").contains("300 ms"));
    assert_eq!(kind("memory"), "memory_limit", "{}", message("memory"));
    assert!(message("memory").contains("64 MiB"));
    assert_eq!(kind("trap"), "trap", "{}", message("trap"));
    assert!(
        message("trap").contains("hostile guest panics on purpose"),
        "guest stderr is kept: {}",
        message("trap")
    );
    for id in ["read_file", "network", "env"] {
        assert_eq!(kind(id), "plugin_error", "{id}: {}", by_id(id));
        assert!(
            !by_id(id).to_string().contains("LEAKED"),
            "{id} leaked: {}",
            by_id(id)
        );
    }
    assert!(
        message("read_file").contains("secret.txt"),
        "{}",
        message("read_file")
    );
    assert!(listener.accept().is_err(), "the guest reached the listener");

    // The well-behaved example after all that still ran and scored.
    let ok = by_id("ok");
    assert!(ok["error"].is_null(), "{ok}");
    assert_eq!(ok["scores"]["exact_match"], 1.0);
    let summary = ev.last().unwrap();
    assert_eq!(summary["status"], "COMPLETED");
    assert_eq!(summary["summary"]["failures"], 6);
}

#[test]
fn granted_capabilities_are_the_only_ones() {
    // With a read grant for its directory the same guest can read the file;
    // the grant is per plugin and says exactly what is allowed.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let secret = write(tmp.path(), "granted.txt", "VISIBLE");
    let data = write(
        tmp.path(),
        "d.jsonl",
        "{\"id\":\"a\",\"question\":\"read_file\",\"answers\":[\"x\"]}\n",
    );
    let method = format!(
        "params = {{ mode = \"question\", path = \"{}\" }}\ngrants = {{ read_dirs = [\"{}\"] }}",
        secret.display(),
        tmp.path().display()
    );
    let cfg = write(tmp.path(), "exp.toml", &hostile_config(&data, &method, ""));
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let ex = ev.iter().find(|e| e["event"] == "example").unwrap();
    assert_eq!(ex["answer"], "LEAKED:VISIBLE", "{ex}");
}

#[test]
fn a_method_calls_a_tool_component_and_survives_its_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let rows: String = ["tool:hello", "tool:trap", "tool:loop", "tool:fail"]
        .iter()
        .enumerate()
        .map(|(i, q)| format!("{{\"id\":\"t{i}\",\"question\":\"{q}\",\"answers\":[\"HELLO\"]}}\n"))
        .collect();
    let data = write(tmp.path(), "tools.jsonl", &rows);
    let tools = "[[tools]]\nplugin = \"echo_tool\"\nlimits = { timeout_ms = 200 }";
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(&data, "params = { mode = \"question\" }", tools),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let answer = |id: &str| {
        ev.iter().find(|e| e["id"] == id).unwrap()["answer"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(answer("t0"), "HELLO");
    assert!(
        answer("t1").contains("Crashed(") && answer("t1").contains("trap"),
        "{}",
        answer("t1")
    );
    assert!(
        answer("t2").contains("Crashed(") && answer("t2").contains("timeout"),
        "{}",
        answer("t2")
    );
    assert!(answer("t3").contains("Failed("), "{}", answer("t3"));
    let summary = ev.last().unwrap();
    assert_eq!(
        summary["summary"]["failures"], 0,
        "tool crashes are the method's to handle"
    );

    // The tool calls are in the stored trace.
    let id = summary["experiment"].as_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", id])).stdout).unwrap();
    let trace = v["runs"][0]["trace"].as_array().unwrap();
    assert!(
        trace.iter().any(|s| s["kind"] == "tool_call"
            && s["content"]
                .as_str()
                .unwrap()
                .contains("\"output\":\"HELLO\"")),
        "{trace:?}"
    );
    assert_eq!(v["experiment"]["plugins"][2]["role"], "tool");
}
