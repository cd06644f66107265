//! Evaluation end to end on the real model: a `[sweep]` grid runs as one
//! group, re-running keeps finished cells, `compare <group>` tests every
//! cell against the first (Holm-adjusted), `report` writes the Markdown,
//! HTML, SVG charts and aggregates, `rescore` scores stored answers again
//! without the model, and `export` streams every run.

mod common;
use common::*;

fn json(out: std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_sweep_runs_as_a_group_that_compare_report_and_rescore_understand() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "sweep.toml",
        &format!(
            r#"name = "grid"
seed = 5
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = 6
[method]
plugin = "naive"
[[metrics]]
plugin = "exact_match"
[[metrics]]
plugin = "f1"
[sweep]
# hostile with no params answers with the reference: an oracle to beat.
method = [{{ plugin = "naive" }}, {{ plugin = "hostile", label = "oracle" }}]
"generation.max_tokens" = [6, 12]
"#,
            shared_data("nq_open.dev200.jsonl").display()
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let cells: Vec<_> = ev.iter().filter(|e| e["event"] == "cell").collect();
    assert_eq!(cells.len(), 4);
    assert_eq!(cells[1]["labels"], serde_json::json!(["naive", "12"]));
    let group = ev.last().unwrap()["group"].as_str().unwrap().to_string();

    let shown = json(run_ok(forge(&home).args(["--json", "show", &group])));
    let ids: Vec<String> = shown["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["experiment"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    let oracle_em = &shown["cells"][2]["summary"]["metrics"]["exact_match"];
    assert_eq!(oracle_em["mean"], 1.0, "{shown}");
    let text = String::from_utf8(run_ok(forge(&home).args(["show", &group])).stdout).unwrap();
    assert!(
        text.contains("generation.max_tokens") && text.contains("oracle"),
        "{text}"
    );

    // Running the same sweep again keeps every finished cell.
    let again = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    assert_eq!(again.last().unwrap()["group"], group.as_str());
    let shown_again = json(run_ok(forge(&home).args(["--json", "show", &group])));
    assert_eq!(shown_again["cells"], shown["cells"]);

    // Growing the grid runs only the new cells: the others keep their plan.
    let grown = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[6, 12]", "[6, 12, 3]");
    let cfg2 = write(tmp.path(), "grown.toml", &grown);
    let ev2 = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg2)).stdout);
    let group2 = ev2.last().unwrap()["group"].as_str().unwrap().to_string();
    assert_ne!(group2, group);
    let started = ev2.iter().filter(|e| e["event"] == "start").count();
    assert_eq!(started, 2, "only the two new cells run");
    let shown2 = json(run_ok(forge(&home).args(["--json", "show", &group2])));
    let ids2: Vec<&str> = shown2["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(
        [ids2[0], ids2[1], ids2[3], ids2[4]],
        [ids[0].as_str(), &ids[1], &ids[2], &ids[3]]
    );

    // Every cell against the first, with Holm-adjusted p-values.
    let cs = json(run_ok(forge(&home).args(["--json", "compare", &group])));
    let cs = cs.as_array().unwrap();
    assert_eq!(cs.len(), 3);
    for c in cs {
        assert_eq!(c["a"], ids[0].as_str());
        assert_eq!(c["shared_examples"], 6);
    }
    // Each metric's family is its three comparisons: Holm's step-down
    // computed here from the listed p-values must give the listed ones.
    let names: Vec<&str> = cs[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"f1"), "{names:?}");
    for name in names {
        let family: Vec<&serde_json::Value> = cs
            .iter()
            .map(|c| {
                c["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["name"] == name)
                    .unwrap()
            })
            .collect();
        let p: Vec<f64> = family
            .iter()
            .map(|m| m["p_value"].as_f64().unwrap())
            .collect();
        let want = holm(&p);
        for (m, w) in family.iter().zip(&want) {
            let adj = m["p_adjusted"].as_f64().unwrap();
            assert!(
                (adj - w).abs() < 1e-12,
                "{name}: {adj} vs Holm {w} from {p:?}"
            );
        }
    }
    let em_vs_oracle = &cs[1]["metrics"][0];
    assert_eq!(em_vs_oracle["name"], "exact_match");
    assert_eq!(em_vs_oracle["mean_b"], 1.0);

    // The report: pages, charts and aggregates.
    let out = tmp.path().join("report");
    run_ok(
        forge(&home)
            .args(["report", &group, "--headline", "f1", "--out"])
            .arg(&out),
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "naive · 6",
        "oracle · 12",
        "f1 [95% CI]",
        "Holm",
        "charts/accuracy_vs_latency.svg",
    ] {
        assert!(md.contains(needle), "{needle} missing from\n{md}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5, "charts inline");
    assert!(!html.contains("src=\"charts/"), "self-contained");
    for chart in [
        "accuracy_vs_latency",
        "scores",
        "tokens",
        "latency_histogram",
        "examples",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("charts/{chart}.svg"))).unwrap();
        assert!(svg.contains("oracle"), "{chart}");
    }
    let csv = std::fs::read_to_string(out.join("aggregates.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("experiment,n,failures,f1,")
    );

    // Rescore the first cell with another metric: same answers, no model call.
    let r = json(run_ok(forge(&home).args([
        "--json",
        "rescore",
        &ids[0],
        "--metrics",
        "contains",
    ])));
    let rescored = r["experiment"].as_str().unwrap();
    assert_eq!(r["rescored_from"], ids[0].as_str());
    let orig = json(run_ok(forge(&home).args(["--json", "show", &ids[0]])));
    let new = json(run_ok(forge(&home).args(["--json", "show", rescored])));
    assert_eq!(
        new["experiment"]["score_names"],
        serde_json::json!(["contains"])
    );
    for (a, b) in orig["runs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(new["runs"].as_array().unwrap())
    {
        assert_eq!(a["answer"], b["answer"]);
        assert_eq!(a["calls"], b["calls"], "the stored calls, not new ones");
        assert!(b["scores"]["contains"].is_number() && b["scores"]["f1"].is_null());
    }
    // It pairs with its source (same data, same seed).
    run_ok(forge(&home).args(["compare", &ids[0], rescored]));

    // Export streams every run.
    let jsonl = run_ok(forge(&home).args(["export", &ids[0], "--format", "jsonl"])).stdout;
    assert_eq!(String::from_utf8(jsonl).unwrap().lines().count(), 6);
    let all = json(run_ok(
        forge(&home).args(["export", &ids[0], "--format", "json"]),
    ));
    assert_eq!(all["runs"].as_array().unwrap().len(), 6);
    assert_eq!(all["experiment"]["id"], ids[0].as_str());
}

/// Holm–Bonferroni: the i-th smallest of m p-values times (m - i), made
/// monotone in that order, capped at 1.
fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].partial_cmp(&p[b]).unwrap());
    let mut adjusted = vec![0.0; m];
    let mut floor = 0.0f64;
    for (i, &k) in order.iter().enumerate() {
        floor = floor.max((p[k] * (m - i) as f64).min(1.0));
        adjusted[k] = floor;
    }
    adjusted
}
