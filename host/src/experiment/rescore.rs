//! `forge-host rescore`: scores an experiment's stored answers again with
//! other (or changed) metric components, without calling the model. The
//! result is a new experiment beside the original (`rescored_from`), with
//! the same outputs, so `compare` and `report` work on it unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::components::bindings::types::{Answer, Step};
use crate::components::budget::Deadline;
use crate::components::capabilities::Capabilities;
use crate::components::seed::derive_seed;
use crate::components::{MetricWorld, PluginHost};
use crate::experiment::config::{ConfigFile, PluginRef};
use crate::experiment::datasets::Dataset;
use crate::experiment::plan::{Paths, bind, plugin_record};
use crate::experiment::runner::step_kind_of;
use crate::experiment::scoring::{Metric, Scorer};
use crate::results::records::{Experiment, RunRecord, Status};
use crate::results::stats;
use crate::results::store::Store;

pub struct Rescored {
    pub experiment: Experiment,
    pub summary: stats::Summary,
}

/// Rescores experiment `source` with the metric plugins named in `metrics`
/// (names or `.wasm` paths, as in a config).
pub async fn rescore(
    store: &Store,
    paths: &Paths,
    source: &Experiment,
    metrics: &[String],
) -> anyhow::Result<Rescored> {
    anyhow::ensure!(
        !metrics.is_empty(),
        "name at least one metric (--metrics f1,contains)"
    );
    anyhow::ensure!(
        matches!(source.status, Status::Completed),
        "experiment {} is {}: finish it (run its config again) before rescoring",
        source.id,
        source.status
    );
    // The stored config, so relative plugin paths and seeds mean what they meant.
    let config = ConfigFile::parse(Path::new(&source.config_path), &source.config_text)
        .with_context(|| format!("re-reading the config stored with {}", source.id))?;
    let dataset = Dataset::load_as(Path::new(&source.dataset_path), config.config.dataset.kind)
        .with_context(|| format!("re-reading the dataset of {}", source.id))?;
    anyhow::ensure!(
        dataset.sha256 == source.dataset_sha256,
        "{} changed since {} ran (sha256 {}… now, {}… then): the references may differ",
        source.dataset_path,
        source.id,
        &dataset.sha256[..8],
        &source.dataset_sha256[..8]
    );
    let by_id: BTreeMap<&str, &crate::experiment::datasets::Example> = dataset
        .examples
        .iter()
        .map(|e| (e.id.as_str(), e))
        .collect();

    let host = PluginHost::new(Some(paths.component_cache()))?;
    let mut bound = Vec::new();
    for (i, name) in metrics.iter().enumerate() {
        let r = PluginRef {
            plugin: name.clone(),
            params: Default::default(),
            grants: Default::default(),
            limits: Default::default(),
            name: None,
        };
        bound.push(bind::<MetricWorld>(
            &config,
            &host,
            paths,
            &format!("--metrics[{i}]"),
            &r,
        )?);
    }
    let mut score_names = Vec::new();
    let mut declared = Vec::new();
    for m in &bound {
        let names = host
            .score_names(m)
            .await
            .map_err(|f| anyhow::anyhow!("{} failed to list its scores: {f}", m.plugin.name))?;
        for n in &names {
            anyhow::ensure!(!score_names.contains(n), "score {n:?} is produced twice");
            score_names.push(n.clone());
        }
        declared.push(names);
    }
    let example_timeout =
        std::time::Duration::from_millis(config.config.sandbox.example_timeout_ms);

    // No engine: a metric that asks the model gets `unavailable`, which is
    // stored as that metric's error (rescoring never calls the model).
    let caps = Capabilities::none();
    let scorer = Scorer {
        host: &host,
        metrics: bound
            .iter()
            .zip(&declared)
            .map(|(configured, names)| Metric { configured, names })
            .collect(),
        caps: &caps,
    };
    let seed = config.config.seed;
    let mut runs: Vec<RunRecord> = Vec::new();
    let mut failure = None;
    store.for_each_run(&source.id, |r| {
        runs.push(r);
        true
    })?;
    for run in &mut runs {
        run.scores.clear();
        run.metric_errors.clear();
        let Some(text) = run.answer.clone() else {
            continue; // the method failed: nothing to score, the error stays
        };
        let Some(example) = by_id.get(run.example_id.as_str()) else {
            failure = Some(format!(
                "example {} is no longer in the dataset",
                run.example_id
            ));
            break;
        };
        let answer = Answer {
            text,
            trace: run
                .trace
                .iter()
                .filter_map(|s| {
                    Some(Step {
                        kind: step_kind_of(&s.kind)?,
                        content: s.content.clone(),
                    })
                })
                .collect(),
            contexts: run.contexts.clone(),
        };
        let example_seed = derive_seed(seed, u64::from(run.index));
        // The stored calls are the method's: rescoring adds the metrics'
        // logs and errors, not their (model-less) calls.
        let calls = run.calls.len();
        scorer
            .score(
                example_seed,
                Deadline::after(example_timeout),
                example,
                &answer,
                run,
            )
            .await;
        run.calls.truncate(calls);
    }
    if let Some(f) = failure {
        anyhow::bail!(f);
    }

    let n = store
        .experiments()?
        .iter()
        .filter(|e| e.rescored_from.as_deref() == Some(source.id.as_str()))
        .count();
    let mut e = source.clone();
    e.id = format!("{}-rescore{}", source.id, n + 1);
    e.rescored_from = Some(source.id.clone());
    e.created_at = crate::results::store::now();
    e.status = Status::Pending;
    e.score_names = score_names.clone();
    e.plugins.retain(|p| p.role != "metric");
    e.plugins
        .extend(bound.iter().map(|m| plugin_record("metric", m)));
    store.put_experiment(&e)?;
    store.put_runs(&e.id, &runs)?;
    let scores: Vec<_> = runs
        .iter()
        .map(crate::results::records::RunScores::from)
        .collect();
    let mut summary = stats::summarise(
        &scores,
        &score_names,
        seed,
        config.config.stats.bootstrap_iterations,
    );
    // Outputs were not produced now: keep the original's throughput.
    if let Some(orig) = store.summary(&source.id)? {
        summary.wall_s = orig.wall_s;
        summary.examples_per_s = orig.examples_per_s;
        summary.tokens_per_s = orig.tokens_per_s;
        summary.peak_rss_mib = orig.peak_rss_mib;
    }
    store.put_summary(&e.id, &summary)?;
    store.set_status(&e.id, Status::Running, None)?;
    let experiment = store.set_status(&e.id, Status::Completed, None)?;
    Ok(Rescored {
        experiment,
        summary,
    })
}
