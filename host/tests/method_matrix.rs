//! The method × optimization matrix on the real model: a sweep over two
//! methods and two engine settings (sequential vs continuous batching)
//! runs, forge checks that every answer and model output is the same in
//! both columns, and `report` draws the throughput heat map, the speedup
//! chart and the per-cell latency and memory tables; `view export` shows
//! the same charts on the group's page.

mod common;
use common::*;

#[test]
fn a_method_by_optimization_grid_keeps_outputs_and_reports_speed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "matrix.toml",
        &format!(
            r#"name = "matrix"
seed = 3
[model]
source = "smollm2-135m-instruct"
threads = 2
[dataset]
path = "{}"
sample = 4
[method]
plugin = "naive"
[[metrics]]
plugin = "exact_match"
# The call cache would answer the second column from the first: off, so
# the batched column runs the engine.
[run]
cache = false
[generation]
max_tokens = 10
temperature = 0.0
[sweep]
"run.concurrency" = [1, 4]
method = [
  {{ plugin = "naive" }},
  {{ plugin = "cot", label = "cot", params = {{ max_tokens = 24 }} }},
]
"#,
            shared_data("nq_open.dev200.jsonl").display()
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let inv = ev
        .iter()
        .find(|e| e["event"] == "invariance")
        .expect("a matrix sweep checks its outputs");
    assert_eq!(
        inv["compared"], 8,
        "2 methods × 4 examples in the batched column"
    );
    assert_eq!(inv["differences"], 0, "{inv}");
    let group = ev.last().unwrap()["group"].as_str().unwrap().to_string();

    let out = tmp.path().join("report");
    run_ok(forge(&home).args(["report", &group, "--out"]).arg(&out));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("outputs identical across the optimization axis: 8 example pairs"),
        "{md}"
    );
    for heading in [
        "Throughput: examples/s",
        "p50 / p95 / p99",
        "Peak memory",
        "Accuracy (exact_match)",
    ] {
        assert!(md.contains(heading), "{heading} missing:\n{md}");
    }
    // The heat map: both methods down, both settings across, a value in
    // every cell (no grey "—").
    let heat = std::fs::read_to_string(out.join("charts/throughput_examples.svg")).unwrap();
    for label in ["naive", "cot", "sequential", "batch 4"] {
        assert!(heat.contains(label), "{label} missing from the heat map");
    }
    assert!(!heat.contains('—'), "a cell of the heat map has no value");
    let speedup = std::fs::read_to_string(out.join("charts/speedup.svg")).unwrap();
    assert!(speedup.contains("batch 4") && speedup.contains("speedup"));
    assert!(out.join("charts/accuracy_vs_latency.svg").exists());
    // matrix.csv: a row per cell; the baseline's speedup is 1, each cell's
    // peak memory is its own measurement.
    let csv = std::fs::read_to_string(out.join("matrix.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4, "{csv}");
    for r in &rows {
        let speed: f64 = r[5].parse().unwrap();
        let rss: f64 = r[10].parse().unwrap();
        assert!(speed > 0.0 && rss > 50.0, "{r:?}");
        assert_eq!(r[13], "0", "no call answered from the call cache: {r:?}");
        let batch: u32 = r[14].parse().unwrap();
        if r[1] == "sequential" {
            assert_eq!(speed, 1.0);
            assert_eq!(batch, 1, "{r:?}");
        } else {
            assert!(
                batch > 1,
                "the batched column decoded requests together: {r:?}"
            );
        }
    }

    // The group page of the dashboard carries the verdict and the charts.
    let pages = tmp.path().join("pages");
    run_ok(
        forge(&home)
            .args(["view", "export", &group, "--out"])
            .arg(&pages),
    );
    let page = std::fs::read_dir(&pages)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("group-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a group page");
    assert!(
        page.contains("id=\"invariance\" class=\"ok\""),
        "verdict missing"
    );
    assert!(page.contains("generated tokens / s") && page.contains("speedup over the sequential"));
}
