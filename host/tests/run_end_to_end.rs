//! A full experiment through the CLI: real components, real model, real store.

mod common;
use common::*;

#[test]
fn a_naive_run_is_stored_summarised_shown_and_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &naive_config(
            &shared_data("nq_open.dev200.jsonl"),
            4,
            "[run]\nconcurrency = 2\n",
        ),
    );

    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = events(&out.stdout);
    assert_eq!(ev[0]["event"], "start");
    assert_eq!(ev[0]["total"], 4);
    let examples: Vec<_> = ev.iter().filter(|e| e["event"] == "example").collect();
    assert_eq!(examples.len(), 4);
    for e in &examples {
        assert!(e["error"].is_null(), "{e}");
        let answer = e["answer"].as_str().unwrap();
        assert!(!answer.trim().is_empty(), "the model answered nothing: {e}");
        for m in ["exact_match", "f1", "contains"] {
            let v = e["scores"][m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{m}={v}");
        }
    }
    let summary = ev.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["status"], "COMPLETED");
    let s = &summary["summary"];
    assert_eq!(s["examples"], 4);
    assert_eq!(s["failures"], 0);
    assert!(s["prompt_tokens"].as_u64().unwrap() > 4 * 20, "{s}");
    assert!(s["completion_tokens"].as_u64().unwrap() > 0);
    assert!(s["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(s["latency"]["p95_ms"].as_f64().unwrap() >= s["latency"]["p50_ms"].as_f64().unwrap());
    let id = summary["experiment"].as_str().unwrap().to_string();

    // show --json has every LLM call with its prompt, output, tokens, latency.
    let out = run_ok(forge(&home).args(["--json", "show", &id]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["experiment"]["status"], "COMPLETED");
    assert_eq!(
        v["experiment"]["model"]["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert_eq!(v["experiment"]["host_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["experiment"]["wasmtime_version"], "48.0.8");
    assert!(
        v["experiment"]["config_text"]
            .as_str()
            .unwrap()
            .contains("[method]")
    );
    let plugins = v["experiment"]["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 4);
    assert!(plugins.iter().all(
        |p| p["sha256"].as_str().unwrap().len() == 64 && p["contract"] == "forge:plugin@0.1.0"
    ));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for r in runs {
        let call = &r["calls"][0];
        let prompt = call["prompt"].as_str().unwrap();
        assert!(
            prompt.contains("<|im_start|>user\nQuestion: ")
                && prompt.ends_with("Answer:<|im_end|>\n<|im_start|>assistant\n"),
            "{prompt}"
        );
        assert!(prompt.contains(r["question"].as_str().unwrap()));
        assert_eq!(
            call["prompt_tokens"].as_u64(),
            Some(r["prompt_tokens"].as_u64().unwrap())
        );
        assert!(call["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(call["completion_tokens"].as_u64().unwrap() <= 24);
    }

    // The human views name the numbers and what they mean.
    let out = run_ok(forge(&home).args(["show", &id]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("COMPLETED") && text.contains("p95") && text.contains("what the scores mean"),
        "{text}"
    );
    // One example in full: the model call's prompt and output, the answer, the scores.
    let first = &runs[0];
    let out = run_ok(forge(&home).args([
        "show",
        &id,
        "--trace",
        first["example_id"].as_str().unwrap(),
    ]));
    let trace = String::from_utf8_lossy(&out.stdout);
    assert!(
        trace.contains("model call 0:") && trace.contains("Question: "),
        "{trace}"
    );
    assert!(
        trace.contains(&format!(
            "final answer {}",
            first["answer"].as_str().unwrap()
        )),
        "{trace}"
    );
    let out = forge(&home)
        .args(["show", &id, "--trace", "no-such-example"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = run_ok(forge(&home).args(["list"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));

    // Exports in every format carry the four runs.
    let out = run_ok(forge(&home).args(["export", &id, "--format", "jsonl"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let csv_path = tmp.path().join("runs.csv");
    run_ok(
        forge(&home)
            .args(["export", &id, "--format", "csv", "--out"])
            .arg(&csv_path),
    );
    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert!(headers.iter().any(|h| h == "f1") && headers.iter().any(|h| h == "latency_ms"));
    assert_eq!(rdr.records().count(), 4);
    let out = run_ok(forge(&home).args(["export", &id, "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    assert!(v["summary"]["metrics"]["f1"]["mean"].is_number());
}

#[test]
fn the_same_config_twice_gives_the_same_answers() {
    // Greedy decoding through the whole stack is deterministic. The second
    // run has its own home and no call cache (as `verify` runs): its model
    // calls are computed again, not read back from the first run's.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &naive_config(&shared_data("nq_open.dev200.jsonl"), 2, ""),
    );
    let stored = |home: &std::path::Path, extra: &[&str]| -> serde_json::Value {
        let out = run_ok(forge(home).args(["--json", "run"]).args(extra).arg(&cfg));
        let ev = events(&out.stdout);
        let id = ev.last().unwrap()["experiment"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_slice(&run_ok(forge(home).args(["--json", "show", &id])).stdout).unwrap()
    };
    let a = stored(&tmp.path().join("home-a"), &[]);
    let b = stored(&tmp.path().join("home-b"), &["--no-cache"]);
    let (ra, rb) = (a["runs"].as_array().unwrap(), b["runs"].as_array().unwrap());
    assert_eq!(ra.len(), 2);
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(rb) {
        for run in [x, y] {
            let calls = run["calls"].as_array().unwrap();
            assert!(!calls.is_empty(), "{run}");
            assert!(
                calls.iter().all(|c| c["cache_hit"] == false),
                "computed, not cached: {run}"
            );
        }
        assert_eq!(deterministic(x), deterministic(y));
    }
}

/// What a run must repeat exactly: everything but wall times, timestamps,
/// and what depends on scheduling (prefix-cache reuse, batch widths).
fn deterministic(run: &serde_json::Value) -> serde_json::Value {
    let mut r = run.clone();
    let o = r.as_object_mut().unwrap();
    for volatile in ["latency_ms", "finished_at"] {
        assert!(o.remove(volatile).is_some(), "no {volatile} in {run}");
    }
    for c in o["calls"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        for volatile in [
            "latency_ms",
            "prefill_ms",
            "decode_ms",
            "cached_prompt_tokens",
            "max_batch",
        ] {
            assert!(c.remove(volatile).is_some(), "no {volatile} in {run}");
        }
    }
    r
}
