//! `forge-host watch`: re-run a small sample whenever a method or metric
//! component file changes,
//! and print the score change, so a researcher iterates on a method in
//! seconds without restarting the host (the model stays loaded).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::experiment::plan::{Paths, Plan};
use crate::experiment::runner::run_example;
use crate::results::stats::mean;

const POLL: Duration = Duration::from_millis(250);

/// Runs `examples` examples, then again after every change, until killed.
pub async fn watch(
    config: &Path,
    paths: &Paths,
    examples: usize,
    json: bool,
) -> anyhow::Result<()> {
    let mut plan = Plan::load(config, paths, Some(examples)).await?;
    let mut previous: Option<BTreeMap<String, f64>> = None;
    let mut generation = 0u32;
    loop {
        let scores = evaluate(&plan).await;
        report(&plan, generation, &scores, previous.as_ref(), json);
        previous = Some(scores);
        generation += 1;
        wait_for_change(&mut plan, json).await;
    }
}

async fn evaluate(plan: &Plan) -> BTreeMap<String, f64> {
    let mut per_score: BTreeMap<String, Vec<f64>> = plan
        .score_names
        .iter()
        .map(|n| (n.clone(), vec![]))
        .collect();
    let mut failures = 0;
    for (i, &d) in plan.indices.iter().enumerate() {
        let run = run_example(plan, i as u32, &plan.dataset.examples[d]).await;
        if run.error.is_some() {
            failures += 1;
        }
        for (name, values) in per_score.iter_mut() {
            // A metric that broke counts as 0 here: a quick look, not a report.
            values.push(run.score_value(name).unwrap_or(0.0));
        }
    }
    let mut out: BTreeMap<String, f64> =
        per_score.into_iter().map(|(k, v)| (k, mean(&v))).collect();
    out.insert("failures".into(), f64::from(failures));
    out
}

fn report(
    plan: &Plan,
    generation: u32,
    scores: &BTreeMap<String, f64>,
    previous: Option<&BTreeMap<String, f64>>,
    json: bool,
) {
    let m = &plan.method.plugin;
    if json {
        let delta: BTreeMap<&String, f64> = scores
            .iter()
            .filter_map(|(k, v)| previous.and_then(|p| p.get(k)).map(|p| (k, v - p)))
            .collect();
        println!(
            "{}",
            serde_json::json!({"event": "scores", "generation": generation, "method": m.name,
                "method_sha256": m.sha256, "examples": plan.indices.len(), "scores": scores, "delta": delta})
        );
        return;
    }
    let parts: Vec<String> = scores
        .iter()
        .map(|(k, v)| {
            let shown = if k == "failures" {
                format!("{v:.0}")
            } else {
                crate::results::report::fmt_score(k, *v)
            };
            match previous.and_then(|p| p.get(k)) {
                Some(p) if (p - v).abs() > 1e-12 => {
                    let d = if k == "failures" {
                        format!("{:+.0}", v - p)
                    } else {
                        format!("{:+.1}", (v - p) * 100.0)
                    };
                    format!("{k} {shown} ({d})")
                }
                _ => format!("{k} {shown}"),
            }
        })
        .collect();
    println!(
        "[{generation}] {} ({}…) on {} examples: {}",
        m.name,
        &m.sha256[..8],
        plan.indices.len(),
        parts.join("  ")
    );
}

/// Polls the plugin files until one changes, then reloads it. A file that
/// does not load (half-written, broken) is reported and waited on again.
async fn wait_for_change(plan: &mut Plan, json: bool) {
    let mut failed: Vec<(String, String)> = Vec::new();
    loop {
        tokio::time::sleep(POLL).await;
        let changed: Vec<_> = plan
            .changed_plugins()
            .into_iter()
            .filter(|c| !failed.contains(c))
            .collect();
        if changed.is_empty() {
            continue;
        }
        // Let a writer finish: the files must be the same on two polls.
        tokio::time::sleep(POLL).await;
        if plan
            .changed_plugins()
            .iter()
            .filter(|c| !failed.contains(c))
            .ne(changed.iter())
        {
            continue;
        }
        let mut reloaded = false;
        for (field, sha) in changed {
            match plan.reload(&field) {
                Ok(()) => {
                    reloaded = true;
                    if !json {
                        println!("reloaded {field} ({}…)", &sha[..8]);
                    }
                }
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"event": "reload_failed", "plugin": field, "error": e.to_string()})
                        );
                    } else {
                        println!("cannot reload {field}: {e}");
                    }
                    // Not retried until the file changes again.
                    failed.push((field, sha));
                }
            }
        }
        if reloaded {
            return;
        }
    }
}
