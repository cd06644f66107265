//! Budgets that cover host calls, output caps and the score boundary, tried
//! with real components as a hostile plugin author would: a model-call
//! loop, a huge embed and a huge score list, a 50 MiB answer, a log flood,
//! a trace flood, `exit(3)`, an example hanging in host calls past its
//! deadline, and a metric returning NaN, ±inf, 1e308 and undeclared names.
//! Each fails only its own example with the right kind and reason, the
//! experiment completes, and the store stays small and readable.

mod common;
use common::*;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

fn rows(ids_and_answers: &[(&str, &str)]) -> String {
    ids_and_answers
        .iter()
        .map(|(q, a)| format!("{{\"id\":\"{q}\",\"question\":\"{q}\",\"answers\":[\"{a}\"]}}\n"))
        .collect()
}

fn example<'a>(ev: &'a [Value], id: &str) -> &'a Value {
    ev.iter()
        .find(|e| e["event"] == "example" && e["id"] == id)
        .unwrap_or_else(|| panic!("no example {id} in {ev:?}"))
}

fn show(home: &Path, id: &str) -> Value {
    let out = run_ok(forge(home).args(["--json", "show", id, "--rows", "100"]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn store_bytes(home: &Path) -> u64 {
    std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".redb"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn each_host_spending_guest_fails_only_its_own_example() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = write(
        tmp.path(),
        "spend.jsonl",
        &rows(&[
            ("model_loop", "x"),
            ("polite_loop", "x"),
            ("huge_embed", "x"),
            ("huge_score", "x"),
            ("big_answer", "x"),
            ("log_flood", "fine"),
            ("trace_flood", "fine"),
            ("exit", "x"),
            ("ok", "fine"),
        ]),
    );
    let method = "params = { mode = \"question\" }\nlimits = { max_model_calls = 5 }";
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(&data, method, "[run]\nconcurrency = 2"),
    );
    let out = run_within(
        forge(&home).args(["--json", "run"]).arg(&cfg),
        Duration::from_secs(300),
    );
    let ev = events(&out.stdout);
    let kind = |id: &str| {
        example(&ev, id)["error"]["kind"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    };
    let message = |id: &str| {
        example(&ev, id)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    // Five calls, one refusal it ignored, then the next call ended it.
    assert_eq!(kind("model_loop"), "budget", "{}", message("model_loop"));
    assert!(
        message("model_loop").contains("max_model_calls 5 reached")
            && message("model_loop").contains("inference.complete"),
        "{}",
        message("model_loop")
    );
    // A guest that asks `budget.remaining` stops by itself and answers.
    assert_eq!(kind("polite_loop"), "none", "{}", message("polite_loop"));
    assert_eq!(
        example(&ev, "polite_loop")["answer"],
        "stopped after 5 calls"
    );
    for (id, what) in [
        ("huge_embed", "embeddings.embed with 100000 items"),
        ("huge_score", "inference.score with 100000 items"),
    ] {
        assert_eq!(kind(id), "budget", "{id}: {}", message(id));
        assert!(
            message(id).contains(what) && message(id).contains("max_items_per_call 4096"),
            "{id}: {}",
            message(id)
        );
    }
    assert_eq!(
        kind("big_answer"),
        "output_too_large",
        "{}",
        message("big_answer")
    );
    assert!(
        message("big_answer").contains("52428800 bytes, over max_answer_bytes 1048576"),
        "{}",
        message("big_answer")
    );
    assert_eq!(kind("exit"), "exit", "{}", message("exit"));
    // Rust's exit(3) reaches the host as WASI 0.2's bare failure status.
    assert!(
        message("exit")
            .starts_with("guest called exit(1) (WASI 0.2 passes only success or failure"),
        "{}",
        message("exit")
    );
    assert_eq!(example(&ev, "ok")["scores"]["exact_match"], 1.0);

    let summary = ev.last().unwrap();
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["summary"]["failures"], 5, "{summary}");
    let by_kind = &summary["summary"]["failures_by_kind"];
    assert_eq!(
        (
            by_kind["budget"].as_u64(),
            by_kind["output_too_large"].as_u64(),
            by_kind["exit"].as_u64()
        ),
        (Some(3), Some(1), Some(1)),
        "{by_kind}"
    );

    // Floods are cut, with a note of what was dropped; the examples pass.
    let id = summary["experiment"].as_str().unwrap();
    let v = show(&home, id);
    let run = |eid: &str| {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["example_id"] == eid)
            .unwrap()
            .clone()
    };
    let logs = run("log_flood")["logs"].as_array().unwrap().clone();
    let kept: usize = logs.iter().map(|l| l.as_str().unwrap().len()).sum();
    let note = logs.last().unwrap().as_str().unwrap();
    assert!(
        note.starts_with("forge: ") && note.contains("log bytes dropped (max_log_bytes 1048576)"),
        "{note}"
    );
    assert!(kept < (1 << 20) + 200, "{kept} log bytes kept");
    assert_eq!(run("log_flood")["scores"]["exact_match"], 1.0);
    let trace = run("trace_flood")["trace"].as_array().unwrap().clone();
    assert_eq!(trace.len(), 10_001);
    assert_eq!(
        trace.last().unwrap()["content"],
        "forge: 10000 trace steps dropped (max_trace_steps 10000)"
    );
    // The refused embed was recorded without its 100,000 texts.
    let calls = run("huge_embed")["calls"].as_array().unwrap().clone();
    assert_eq!(calls[0]["prompt"], "(100000 items, refused)", "{calls:?}");
    assert!(run("big_answer")["answer"].is_null());

    // Nothing huge reached the store: 50 MiB answer, 20 MiB of logs.
    let bytes = store_bytes(&home);
    assert!(bytes < 12 << 20, "the store grew to {bytes} bytes");
}

#[test]
fn an_example_hanging_in_host_calls_ends_at_its_deadline() {
    // The only example calls the model forever, one token at a time: guest
    // compute stays tiny, so only the example's deadline can end it.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = write(tmp.path(), "hang.jsonl", &rows(&[("model_loop", "x")]));
    let method = "params = { mode = \"question\" }\nlimits = { example_timeout_ms = 1500, max_model_calls = 1000000 }";
    let cfg = write(tmp.path(), "exp.toml", &hostile_config(&data, method, ""));
    let started = Instant::now();
    let out = run_within(
        forge(&home).args(["--json", "run"]).arg(&cfg),
        Duration::from_secs(120),
    );
    let ev = events(&out.stdout);
    let e = example(&ev, "model_loop");
    assert_eq!(e["error"]["kind"], "deadline", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("example deadline of 1500 ms passed (")
            && message.contains(" model calls, ")
            && message.contains(" s guest compute, in "),
        "{message}"
    );
    let summary = ev.last().unwrap();
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["summary"]["failures"], 1);
    assert_eq!(summary["summary"]["failures_by_kind"]["deadline"], 1);
    // The calls made before the deadline are kept with the run.
    let v = show(&home, summary["experiment"].as_str().unwrap());
    let calls = v["runs"][0]["calls"].as_array().unwrap().len();
    assert!(calls >= 1, "{calls} calls recorded");
    assert!(
        message.contains(&format!("({calls} model calls")),
        "the reason counts the recorded calls ({calls}): {message}"
    );
    eprintln!("deadline run took {:?}", started.elapsed());
}

#[test]
fn poisonous_scores_fail_their_metric_and_the_experiment_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // The method answers each example's reference; the metric turns
    // "nan", "inf", ... into that value. The last example hangs in model
    // calls until its deadline, so the run can be killed after the poisoned
    // ones are committed and resumed.
    let poisons = ["nan", "inf", "-inf", "huge", "undeclared", "half", "fine"];
    let mut body: String = poisons
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{{\"id\":\"{a}{i}\",\"question\":\"ok\",\"answers\":[\"{a}\"]}}\n"))
        .collect();
    body.push_str("{\"id\":\"hang\",\"question\":\"model_loop\",\"answers\":[\"x\"]}\n");
    let data = write(tmp.path(), "poison.jsonl", &body);
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &hostile_config(
            &data,
            "params = { mode = \"question\" }\nlimits = { example_timeout_ms = 3000, max_model_calls = 1000000 }",
            "[[metrics]]\nplugin = \"hostile_metric\"",
        ),
    );

    // Killed (SIGKILL) once the seven poisoned examples are committed.
    let first = kill_after_examples(forge(&home).args(["--json", "run"]).arg(&cfg), 7);
    for (i, (poison, shown)) in [
        ("nan", "value = NaN"),
        ("inf", "value = inf"),
        ("-inf", "value = -inf"),
        ("huge", "value = 100000000"),
        ("undeclared", "score \"other\", which it did not declare"),
        ("half", "value = NaN"),
    ]
    .iter()
    .enumerate()
    {
        let e = example(&first, &format!("{poison}{i}"));
        let err = &e["metric_errors"]["hostile_metric"];
        assert_eq!(err["kind"], "invalid_score", "{e}");
        let m = err["message"].as_str().unwrap();
        assert!(
            m.starts_with("metric hostile_metric returned ") && m.contains(shown),
            "{m}"
        );
        assert!(e["scores"].get("value").is_none(), "{e}");
        // The other metric of the same example still scored.
        assert_eq!(e["scores"]["exact_match"], 1.0, "{e}");
    }

    // The interrupted experiment is readable by every view...
    let list: Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "list"])).stdout).unwrap();
    let id = list["experiments"][0]["experiment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = show(&home, &id);
    assert_eq!(v["experiment"]["status"], "RUNNING");
    assert_eq!(v["runs"].as_array().unwrap().len(), 7);
    let export = run_ok(forge(&home).args(["export", &id, "--format", "jsonl"]));
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 7);

    // ... and resumes: the hanging example ends at its deadline.
    let out = run_within(
        forge(&home).args(["--json", "run"]).arg(&cfg),
        Duration::from_secs(120),
    );
    let ev = events(&out.stdout);
    assert_eq!(
        (ev[0]["experiment"].as_str(), ev[0]["already_done"].as_u64()),
        (Some(id.as_str()), Some(7))
    );
    assert_eq!(example(&ev, "hang")["error"]["kind"], "deadline");
    let summary = ev.last().unwrap();
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    let m = &summary["summary"]["metrics"]["value"];
    // The one finite, declared value (1) and the failed example (0); the
    // six metric errors are left out.
    assert_eq!(
        (m["mean"].as_f64(), m["n"].as_u64()),
        (Some(0.5), Some(2)),
        "{m}"
    );
    assert_eq!(summary["summary"]["metrics"]["exact_match"]["n"], 8);
    let list = run_ok(forge(&home).args(["list"]));
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
    run_ok(
        forge(&home)
            .args(["report", &id, "--out"])
            .arg(tmp.path().join("report")),
    );
    let shown = run_ok(forge(&home).args(["show", &id]));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("metric errors  hostile_metric (invalid_score 6)"),
        "{text}"
    );
    assert!(
        text.contains("hostile_metric invalid_score: metric hostile_metric returned"),
        "{text}"
    );
}
