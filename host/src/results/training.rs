//! What a training run leaves behind, as data: the run (its inputs and
//! their hashes, every hyper-parameter, the data counts, status, wall
//! time, peak memory, the adapter's directory, each attempt), one row per
//! optimizer step and one per validation pass. Serialised as JSON exactly
//! as stored ([`super::store`] keeps them); `train` writes them as it goes,
//! the views read them. Metric names are TRL's (`loss`, `rewards/chosen`,
//! ...), as `train dpo --json` prints them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A training run's life cycle. A run that is killed stays `running`
/// until the same command resumes it; a run may run again after `done`
/// (the same config re-run resumes from its last checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainStatus {
    Running,
    Done,
    Failed,
}

impl std::fmt::Display for TrainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrainStatus::Running => "running",
            TrainStatus::Done => "done",
            TrainStatus::Failed => "failed",
        })
    }
}

/// Sequences cut to the configured lengths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncatedCounts {
    pub prompts: usize,
    pub chosen: usize,
    pub rejected: usize,
}

/// One start of the command on this run: fresh, or resumed from a
/// checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_at: String,
    /// The checkpoint's step this attempt resumed from (None: step 0).
    pub resumed_from: Option<u64>,
    /// Reference log-probs this attempt computed (a forward each) and read
    /// from the cache.
    pub reference_computed: usize,
    pub reference_cached: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRun {
    /// sha256(config sha256, model sha256, data sha256)[..12].
    pub id: String,
    /// `dpo`.
    pub method: String,
    pub status: TrainStatus,
    /// Why a `failed` run stopped.
    pub error: Option<String>,
    pub config_path: String,
    pub config_text: String,
    pub config_sha256: String,
    /// The alias or path as written, and the file's sha256.
    pub model: String,
    pub model_sha256: String,
    pub data_path: String,
    pub data_sha256: String,
    /// The resolved `[train]` table, defaults filled in.
    pub hyperparameters: serde_json::Value,
    pub train_pairs: usize,
    pub validation_pairs: usize,
    /// Rows with an empty chosen or rejected side.
    pub skipped_empty: usize,
    pub truncated: TruncatedCounts,
    pub total_steps: u64,
    /// Optimizer steps done (the last step row).
    pub steps_done: u64,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// Wall time over every attempt (a killed attempt counts up to its last
    /// recorded step).
    pub seconds: f64,
    /// The highest VmHWM of any attempt.
    pub peak_rss_bytes: Option<u64>,
    /// The adapter's directory (PEFT layout and model card).
    pub output: String,
    pub attempts: Vec<Attempt>,
    /// The last validation pass (step and metrics), once there is one.
    pub final_validation: Option<EvalRow>,
    pub host_version: String,
}

impl TrainingRun {
    /// Reference forwards over every attempt: 0 when each log-prob came
    /// from the cache (another cell of a sweep on the same pairs).
    pub fn reference_computed(&self) -> usize {
        self.attempts.iter().map(|a| a.reference_computed).sum()
    }

    /// What the newest attempt read from the cache.
    pub fn reference_cached(&self) -> usize {
        self.attempts.last().map_or(0, |a| a.reference_cached)
    }

    /// A final validation metric by TRL name.
    pub fn final_metric(&self, name: &str) -> Option<f64> {
        self.final_validation.as_ref()?.metrics.get(name).copied()
    }
}

/// One optimizer step: TRL's log keys (`loss`, `rewards/*`, `logps/*`,
/// `grad_norm`, `learning_rate`) and the throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub step: u64,
    #[serde(with = "finite_or_null")]
    pub metrics: BTreeMap<String, f64>,
    pub tokens_per_second: f64,
    /// Real tokens through the policy forward, pairs, seconds of the step.
    pub tokens: usize,
    pub pairs: usize,
    pub seconds: f64,
}

/// One validation pass (adapter in eval mode) after `step` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub step: u64,
    #[serde(with = "finite_or_null")]
    pub metrics: BTreeMap<String, f64>,
}

/// A diverged run's NaN loss is still a row: stored as `null` (JSON has no
/// NaN) and read back as NaN, so the step is kept rather than refused.
mod finite_or_null {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(k, v)| (k, v.is_finite().then_some(*v)))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        Ok(BTreeMap::<String, Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_metric_reads_back_as_nan() {
        let row = StepRow {
            step: 3,
            metrics: [("loss".to_string(), f64::NAN), ("grad_norm".into(), 1.5)].into(),
            tokens_per_second: 10.0,
            tokens: 100,
            pairs: 2,
            seconds: 10.0,
        };
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains("\"loss\":null"), "{json}");
        let back: StepRow = serde_json::from_str(&json).unwrap();
        assert!(back.metrics["loss"].is_nan());
        assert_eq!(back.metrics["grad_norm"], 1.5);
    }
}
