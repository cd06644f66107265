//! The training run as a stored object: what `train dpo` writes through
//! the results store as it goes. The record is created (or, on the same
//! command again, taken up) before the reference pass, each step and each
//! validation pass is committed with it before its event is printed, and
//! the end says done or failed with the reason.

use std::time::Instant;

use forge_train::{DpoMetrics, StepMetrics};

use crate::results::store::{Store, now};
use crate::results::training::{
    Attempt, EvalRow, StepRow, TrainStatus, TrainingRun, TruncatedCounts,
};

/// What the recorder needs of a prepared run.
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub config_path: String,
    pub config_text: &'a str,
    pub config_sha256: &'a str,
    pub model: &'a str,
    pub model_sha256: &'a str,
    pub data_path: String,
    pub data_sha256: &'a str,
    pub hyperparameters: serde_json::Value,
    pub train_pairs: usize,
    pub validation_pairs: usize,
    pub skipped_empty: usize,
    pub truncated: TruncatedCounts,
    pub total_steps: u64,
    pub output: String,
}

pub struct Recorder<'a> {
    store: &'a Store,
    run: TrainingRun,
    /// Wall time of earlier attempts.
    seconds_before: f64,
    started: Instant,
}

pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// A step's row: TRL's log keys, throughput, size.
pub fn step_row(m: &StepMetrics) -> StepRow {
    StepRow {
        step: m.step,
        metrics: m
            .trl_log()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        tokens_per_second: m.tokens_per_second(),
        tokens: m.tokens,
        pairs: m.pairs,
        seconds: m.seconds,
    }
}

/// A validation pass's row under TRL's names.
pub fn eval_row(step: u64, m: &DpoMetrics) -> EvalRow {
    EvalRow {
        step,
        metrics: m
            .trl_names()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
    }
}

impl<'a> Recorder<'a> {
    /// The run's record, marked running: a new one, or the stored one of
    /// the same run id (the same config, model and data run again) with
    /// its inputs refreshed and its history kept.
    pub fn start(store: &'a Store, f: RunFacts) -> anyhow::Result<Self> {
        let started = Instant::now();
        let stamp = now();
        let previous = store.training_run(f.run_id)?;
        let seconds_before = previous.as_ref().map_or(0.0, |p| p.seconds);
        let run = TrainingRun {
            id: f.run_id.to_string(),
            method: "dpo".into(),
            status: TrainStatus::Running,
            error: None,
            config_path: f.config_path,
            config_text: f.config_text.to_string(),
            config_sha256: f.config_sha256.to_string(),
            model: f.model.to_string(),
            model_sha256: f.model_sha256.to_string(),
            data_path: f.data_path,
            data_sha256: f.data_sha256.to_string(),
            hyperparameters: f.hyperparameters,
            train_pairs: f.train_pairs,
            validation_pairs: f.validation_pairs,
            skipped_empty: f.skipped_empty,
            truncated: f.truncated,
            total_steps: f.total_steps,
            steps_done: previous.as_ref().map_or(0, |p| p.steps_done),
            created_at: previous
                .as_ref()
                .map_or_else(|| stamp.clone(), |p| p.created_at.clone()),
            updated_at: stamp,
            finished_at: None,
            seconds: seconds_before,
            peak_rss_bytes: max_rss(previous.as_ref().and_then(|p| p.peak_rss_bytes)),
            output: f.output,
            attempts: previous
                .as_ref()
                .map_or_else(Vec::new, |p| p.attempts.clone()),
            final_validation: previous.and_then(|p| p.final_validation),
            host_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        store.put_training_run(&run)?;
        Ok(Self {
            store,
            run,
            seconds_before,
            started,
        })
    }

    pub fn run(&self) -> &TrainingRun {
        &self.run
    }

    fn touch(&mut self) {
        self.run.updated_at = now();
        self.run.seconds = self.seconds_before + self.started.elapsed().as_secs_f64();
        self.run.peak_rss_bytes = max_rss(self.run.peak_rss_bytes);
    }

    /// This attempt starts from `resumed_from` (None: step 0): the rows
    /// after it belong to an abandoned attempt and go; the reference pass
    /// computed and read what it says.
    pub fn attempt(
        &mut self,
        resumed_from: Option<u64>,
        computed: usize,
        cached: usize,
    ) -> anyhow::Result<()> {
        let from = resumed_from.unwrap_or(0);
        self.store.forget_training_after(&self.run.id, from)?;
        self.run.steps_done = from;
        self.run.final_validation = self.store.training_evals(&self.run.id)?.pop();
        self.run.attempts.push(Attempt {
            started_at: self.run.updated_at.clone(),
            resumed_from,
            reference_computed: computed,
            reference_cached: cached,
        });
        self.touch();
        self.store.put_training_run(&self.run)?;
        Ok(())
    }

    /// Commits a step (its row replaces one a killed attempt left).
    pub fn step(&mut self, row: &StepRow) -> anyhow::Result<()> {
        self.run.steps_done = row.step;
        self.touch();
        self.store.record_training_step(&self.run, row)?;
        Ok(())
    }

    /// Commits a validation pass; it is the run's latest.
    pub fn eval(&mut self, row: EvalRow) -> anyhow::Result<()> {
        self.touch();
        self.run.final_validation = Some(row.clone());
        self.store.record_training_eval(&self.run, &row)?;
        Ok(())
    }

    pub fn done(&mut self) -> anyhow::Result<()> {
        self.finish(TrainStatus::Done, None)
    }

    /// Records why the run stopped; a store that cannot take it is only
    /// warned about (the error that stopped the run is the one to report).
    pub fn failed(&mut self, error: &anyhow::Error) {
        if let Err(e) = self.finish(TrainStatus::Failed, Some(format!("{error:#}"))) {
            tracing::warn!("could not record the failure of {}: {e:#}", self.run.id);
        }
    }

    fn finish(&mut self, status: TrainStatus, error: Option<String>) -> anyhow::Result<()> {
        self.touch();
        self.run.status = status;
        self.run.error = error;
        self.run.finished_at = Some(self.run.updated_at.clone());
        self.store.put_training_run(&self.run)?;
        Ok(())
    }
}

fn max_rss(before: Option<u64>) -> Option<u64> {
    match (before, peak_rss_bytes()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
