//! A prompt on a split, as an ordinary experiment: the split's rows are
//! written once to `<home>/optimizing/<run>/<split>.jsonl`, the candidate's
//! config is the experiment part with the prompt param set and the dataset
//! pointed there, and it runs through plan → runner → store. A completed
//! experiment with the same plan (same prompt, split, model, plugins, host)
//! is reused, and a killed one resumes by its plan hash: this is what
//! makes a killed optimization continue where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::config::OptimizeConfig;
use crate::experiment::config::ConfigFile;
use crate::experiment::datasets::json_lines;
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::Progress;
use crate::experiment::runner;
use crate::results::optimization::Spend;
use crate::results::records::{Experiment, RunScores};
use crate::results::stats::MetricSummary;
use crate::results::store::Store;

/// A prompt's result on one split.
pub struct Evaluated {
    pub experiment: Experiment,
    /// The optimised metric per example id (a failed example counts 0).
    pub values: BTreeMap<String, f64>,
    pub summary: MetricSummary,
    pub spend: Spend,
}

impl Evaluated {
    /// The values in `ids` order (ids this split lacks count 0).
    pub fn in_order(&self, ids: &[String]) -> Vec<f64> {
        ids.iter()
            .map(|id| self.values.get(id).copied().unwrap_or(0.0))
            .collect()
    }
}

pub struct Evaluator<'a> {
    pub config: &'a OptimizeConfig,
    pub paths: &'a Paths,
    pub store: &'a Store,
    pub metric: String,
    /// `<home>/optimizing/<run id>/`.
    pub dir: PathBuf,
    /// Raw rows of the dataset by example id.
    pub rows: BTreeMap<String, String>,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        config: &'a OptimizeConfig,
        paths: &'a Paths,
        store: &'a Store,
        metric: String,
        run_id: &str,
    ) -> anyhow::Result<Self> {
        let data_path = config.base.resolve(&config.base.config.dataset.path);
        let text = std::fs::read_to_string(&data_path)
            .with_context(|| format!("reading {}", data_path.display()))?;
        let mut rows = BTreeMap::new();
        for line in json_lines(&text) {
            let (_, v) =
                line.map_err(|(line, m)| anyhow::anyhow!("{}:{line}: {m}", data_path.display()))?;
            let id = crate::experiment::datasets::row_id(&v)
                .map_err(|(field, m)| anyhow::anyhow!("{}: {field}: {m}", data_path.display()))?;
            rows.insert(id, v.to_string());
        }
        Ok(Self {
            config,
            paths,
            store,
            metric,
            dir: paths.home.join("optimizing").join(run_id),
            rows,
        })
    }

    /// Writes a split's rows (once; the same ids give the same bytes).
    fn split_file(&self, name: &str, ids: &[String]) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{name}.jsonl"));
        let mut text = String::new();
        for id in ids {
            text += self
                .rows
                .get(id)
                .with_context(|| format!("example {id} is not in the dataset any more"))?;
            text.push('\n');
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            let tmp = path.with_extension("jsonl.tmp");
            std::fs::write(&tmp, &text)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(path)
    }

    /// The candidate's experiment config.
    fn cell(&self, prompt: &str, data: &Path, label: &str) -> anyhow::Result<ConfigFile> {
        let c = self.config;
        let mut table = c.table.clone();
        let method = table
            .get_mut("method")
            .and_then(|m| m.as_table_mut())
            .context("[method]")?;
        let params = method
            .entry("params")
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .context("[method] params")?;
        params.insert(c.optimize.param.clone(), prompt.into());
        let dataset = table
            .get_mut("dataset")
            .and_then(|d| d.as_table_mut())
            .context("[dataset]")?;
        dataset.insert("path".into(), data.display().to_string().into());
        dataset.remove("sample");
        table.insert(
            "name".into(),
            format!("{}-{label}", c.base.config.name).into(),
        );
        let text = format!(
            "# forge-host optimize {}: {label}\n{}",
            c.path().display(),
            toml::to_string(&table)?
        );
        Ok(ConfigFile::parse(c.path(), &text)?)
    }

    /// Runs `prompt` on the split `name` (rows `ids`), or reuses the
    /// experiment that already did.
    pub async fn evaluate(
        &self,
        prompt: &str,
        split: &str,
        ids: &[String],
        label: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Evaluated> {
        let data = self.split_file(split, ids)?;
        let cell = self.cell(prompt, &data, label)?;
        // The metric was checked against the metrics' declared scores
        // before anything ran (`optimize`).
        let plan = Arc::new(Plan::from_config(cell, self.paths, None).await?);
        let experiment = match self.store.completed(&plan.plan_sha256)? {
            Some(done) => done,
            None => {
                runner::run(plan, self.store, false, progress)
                    .await?
                    .experiment
            }
        };
        self.stored_experiment(experiment)
    }

    /// A stored experiment as an evaluation (the incumbent after a resume).
    pub fn stored(&self, experiment_id: &str) -> anyhow::Result<Evaluated> {
        self.stored_experiment(self.store.experiment(experiment_id)?)
    }

    fn stored_experiment(&self, experiment: Experiment) -> anyhow::Result<Evaluated> {
        let runs = self.store.run_scores(&experiment.id)?;
        Ok(self.evaluated(experiment, &runs))
    }

    fn evaluated(&self, experiment: Experiment, runs: &[RunScores]) -> Evaluated {
        let values: BTreeMap<String, f64> = runs
            .iter()
            .map(|r| {
                (
                    r.example_id.clone(),
                    r.score_value(&self.metric).unwrap_or(0.0),
                )
            })
            .collect();
        let xs: Vec<f64> = values.values().copied().collect();
        let (ci_low, ci_high) = crate::results::stats::bootstrap_ci(
            &xs,
            self.config.base.config.stats.bootstrap_iterations,
            self.config.base.config.seed,
        );
        let summary = MetricSummary {
            mean: crate::results::stats::mean(&xs),
            ci_low,
            ci_high,
            n: xs.len(),
        };
        let spend = Spend {
            task_calls: runs.iter().map(|r| r.calls.n as u64).sum(),
            task_tokens: runs
                .iter()
                .map(|r| r.prompt_tokens + r.completion_tokens)
                .sum(),
            ..Spend::default()
        };
        Evaluated {
            experiment,
            values,
            summary,
            spend,
        }
    }
}
