//! `forge-host verify`: re-run a sample of a stored experiment from its
//! stored config and seed, and check the outputs are identical —
//! reproducibility as a command, not a claim.

use serde::Serialize;

use crate::experiment::config::ConfigFile;
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::runner::run_example;
use crate::results::records::{Experiment, RunRecord};

#[derive(Debug, Serialize)]
pub struct Mismatch {
    pub index: u32,
    pub example_id: String,
    /// What differs: `answer`, `model output of call N`, `score f1`, `error`.
    pub what: String,
    pub stored: String,
    pub now: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub experiment: String,
    pub checked: usize,
    pub identical: usize,
    pub mismatches: Vec<Mismatch>,
    /// Inputs whose hash changed since the experiment ran (explains mismatches).
    pub changed_inputs: Vec<String>,
}

pub async fn verify(
    e: &Experiment,
    runs: &[RunRecord],
    paths: &Paths,
    n: usize,
) -> anyhow::Result<VerifyReport> {
    // The stored text, resolved against where the config was: relative
    // dataset paths mean what they meant then.
    let config = ConfigFile::parse(std::path::Path::new(&e.config_path), &e.config_text)?;
    // Verification recomputes: answers from the call cache would prove
    // nothing about reproducibility.
    let paths = &Paths {
        call_cache: None,
        ..paths.clone()
    };
    let plan = Plan::from_config(config, paths, None).await?;

    let mut changed_inputs = Vec::new();
    if plan.engine.info().sha256 != e.model.sha256 {
        changed_inputs.push(format!("model {}", e.model.source));
    }
    if plan.dataset.sha256 != e.dataset_sha256 {
        changed_inputs.push(format!("dataset {}", e.dataset_path));
    }
    if plan.host_sha256 != e.host_sha256 {
        changed_inputs.push("forge-host binary".into());
    }
    for (now, then) in plan.plugin_records().iter().zip(&e.plugins) {
        if now.sha256 != then.sha256 {
            changed_inputs.push(format!("{} plugin {}", then.role, then.name));
        }
    }

    let mut mismatches = Vec::new();
    let sample: Vec<&RunRecord> = runs.iter().take(n).collect();
    for stored in &sample {
        let Some(&dataset_index) = plan.indices.get(stored.index as usize) else {
            continue;
        };
        let now = run_example(&plan, stored.index, &plan.dataset.examples[dataset_index]).await;
        let mut differ = |what: String, a: String, b: String| {
            if a != b {
                mismatches.push(Mismatch {
                    index: stored.index,
                    example_id: stored.example_id.clone(),
                    what,
                    stored: a,
                    now: b,
                });
            }
        };
        differ(
            "answer".into(),
            format!("{:?}", stored.answer),
            format!("{:?}", now.answer),
        );
        differ(
            "error".into(),
            format!("{:?}", stored.error.as_ref().map(|e| &e.kind)),
            format!("{:?}", now.error.as_ref().map(|e| &e.kind)),
        );
        differ(
            "model calls".into(),
            stored.calls.len().to_string(),
            now.calls.len().to_string(),
        );
        for (i, (a, b)) in stored.calls.iter().zip(&now.calls).enumerate() {
            differ(
                format!("model output of call {i}"),
                a.output.clone(),
                b.output.clone(),
            );
        }
        for (name, v) in &stored.scores {
            differ(
                format!("score {name}"),
                v.to_string(),
                now.scores.get(name).map_or("—".into(), |x| x.to_string()),
            );
        }
    }
    let bad: std::collections::BTreeSet<u32> = mismatches.iter().map(|m| m.index).collect();
    Ok(VerifyReport {
        experiment: e.id.clone(),
        checked: sample.len(),
        identical: sample.len() - bad.len(),
        mismatches,
        changed_inputs,
    })
}
