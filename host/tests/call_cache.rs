//! The call cache and the per-experiment engine accounting, through the
//! CLI with the real model: a re-run on a fresh store answers every call
//! from the cache with identical outputs; `--no-cache` and
//! `[run] cache = false` recompute.

mod common;
use common::*;

use std::path::Path;

fn run(home: &Path, cache: &Path, cfg: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run_ok(
        forge(home)
            .env("FORGE_CALL_CACHE", cache)
            .args(["--json", "run"])
            .args(extra)
            .arg(cfg),
    );
    let ev = events(&out.stdout);
    let summary = ev.last().unwrap().clone();
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    summary
}

/// (answer text, model output) of every run, in example order.
fn outputs(home: &Path, id: &str) -> Vec<(String, String)> {
    let out = run_ok(forge(home).args(["--json", "show", id]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["answer"].as_str().unwrap_or_default().to_string(),
                r["calls"][0]["output"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_rerun_on_a_fresh_store_hits_the_call_cache_with_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("shared-cache/calls.redb");
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &naive_config(&shared_data("nq_open.dev200.jsonl"), 4, ""),
    );

    let first_home = tmp.path().join("h1");
    let first = run(&first_home, &cache, &cfg, &[]);
    let e = &first["summary"]["engine"];
    eprintln!("first run engine accounting: {e}");
    assert_eq!(e["generate"], 4, "{e}");
    assert_eq!(e["call_cache_hits"], 0, "{e}");
    assert!(e["prefill_ms"].as_f64().unwrap() > 0.0);
    assert!(e["decode_ms"].as_f64().unwrap() > 0.0);
    // The naive prompts share the system prompt and "Question: ": after
    // the first, each reuses that prefix from the prefix cache.
    assert!(e["prefix_hits"].as_u64().unwrap() >= 3, "{e}");
    assert!(e["prefill_tokens_saved"].as_u64().unwrap() >= 3 * 20, "{e}");
    assert!(first["summary"]["gpu_peak_mib"].is_null());
    let first_out = outputs(&first_home, first["experiment"].as_str().unwrap());

    // A new home (empty store), the same cache: every call is a hit.
    let second_home = tmp.path().join("h2");
    let second = run(&second_home, &cache, &cfg, &[]);
    let e = &second["summary"]["engine"];
    assert_eq!(e["generate"], 4, "{e}");
    assert_eq!(e["call_cache_hits"], 4, "{e}");
    assert_eq!(e["prefill_ms"].as_f64(), Some(0.0), "{e}");
    let id = second["experiment"].as_str().unwrap();
    assert_eq!(outputs(&second_home, id), first_out);
    // Scores are recomputed from identical answers: identical.
    assert_eq!(second["summary"]["metrics"], first["summary"]["metrics"]);
    let show = run_ok(forge(&second_home).args(["show", id]));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("call cache 4 hits / 0 misses (100%)"),
        "{text}"
    );
    assert!(text.contains("model time  prefill"), "{text}");

    // --no-cache recomputes, and so does [run] cache = false.
    let third = run(
        &tmp.path().join("h3"),
        &cache,
        &cfg,
        &["--no-cache", "--limit", "2"],
    );
    assert_eq!(third["summary"]["engine"]["call_cache_hits"], 0);
    assert_eq!(third["summary"]["engine"]["generate"], 2);
    let off = write(
        tmp.path(),
        "off.toml",
        &naive_config(
            &shared_data("nq_open.dev200.jsonl"),
            4,
            "[run]\ncache = false\n",
        ),
    );
    let fourth = run(&tmp.path().join("h4"), &cache, &off, &["--limit", "2"]);
    assert_eq!(fourth["summary"]["engine"]["call_cache_hits"], 0);
    assert_eq!(fourth["summary"]["engine"]["generate"], 2);
}
