//! What `forge-host optimize` leaves behind, as data: the run (its config,
//! the three splits fixed by the seed, the starting and the best prompt,
//! why it stopped, what it spent, the held-out test) and one row per
//! candidate prompt (its text, the interview that produced it, its gate and
//! validation scores, the paired test against the incumbent and the
//! decision). Serialised as JSON exactly as stored ([`super::store`] keeps
//! them); every candidate is evaluated as an ordinary experiment, whose id
//! the row names, so `show`, `compare` and `export` work on it too.

use serde::{Deserialize, Serialize};

use crate::results::records::LlmCall;
use crate::results::stats::MetricSummary;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizeStatus {
    /// Killed runs stay here until the same command continues them.
    Running,
    Completed,
    Failed,
}

impl std::fmt::Display for OptimizeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimizeStatus::Running => "running",
            OptimizeStatus::Completed => "completed",
            OptimizeStatus::Failed => "failed",
        })
    }
}

/// The example ids of each split, fixed once from the seed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splits {
    pub train: Vec<String>,
    pub validation: Vec<String>,
    pub test: Vec<String>,
}

/// Model calls and tokens spent, by role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub task_calls: u64,
    pub task_tokens: u64,
    pub interviewer_calls: u64,
    pub interviewer_tokens: u64,
}

impl Spend {
    pub fn calls(&self) -> u64 {
        self.task_calls + self.interviewer_calls
    }
    pub fn tokens(&self) -> u64 {
        self.task_tokens + self.interviewer_tokens
    }
    pub fn add(&mut self, o: &Spend) {
        self.task_calls += o.task_calls;
        self.task_tokens += o.task_tokens;
        self.interviewer_calls += o.interviewer_calls;
        self.interviewer_tokens += o.interviewer_tokens;
    }
}

/// A paired test of a prompt against another on the same examples
/// (`delta` = this − other, on the optimised metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub n: usize,
    pub delta: f64,
    pub delta_ci: (f64, f64),
    /// `mcnemar-exact` or `permutation`.
    pub test: String,
    pub p_value: f64,
}

impl From<&crate::results::compare::MetricComparison> for Paired {
    fn from(m: &crate::results::compare::MetricComparison) -> Self {
        Self {
            n: m.n,
            delta: m.delta,
            delta_ci: m.delta_ci,
            test: m.test.to_string(),
            p_value: m.p_value,
        }
    }
}

/// What became of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The starting prompt (iteration 0).
    Baseline,
    /// Significantly better on validation: the new incumbent.
    Accepted,
    /// Not significantly better on validation.
    Rejected,
    /// Did not fix any shown failure: never run on validation.
    Gated,
    /// No usable proposal after the re-asks (placeholders lost, unchanged).
    Invalid,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Baseline => "baseline",
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
            Decision::Gated => "gated",
            Decision::Invalid => "invalid",
        })
    }
}

/// One proposal the interviewer was asked for and what it said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interview {
    /// The optimizer's model calls (prompt, output, tokens, latency).
    pub calls: Vec<LlmCall>,
    /// Why the host asked again (None for the first ask).
    pub feedback: Option<String>,
    /// How many candidates it returned.
    pub proposals: usize,
    /// A failure of the optimizer component, when it failed.
    pub error: Option<String>,
    pub seconds: f64,
}

/// One candidate prompt and its fate; `(run id, iteration, candidate)` keys it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub iteration: u32,
    /// Its place among the iteration's valid candidates.
    pub candidate: u32,
    pub prompt: String,
    /// The optimizer's reasoning (empty for the baseline).
    pub analysis: String,
    /// Every ask of this iteration, refused ones included (stored on the
    /// iteration's first candidate only).
    pub interviews: Vec<Interview>,
    pub decision: Decision,
    /// Why it was refused or gated, in words.
    pub reason: Option<String>,
    /// The cheap gate on the shown failures: (candidate, incumbent) means.
    pub gate: Option<(f64, f64)>,
    pub gate_experiment: Option<String>,
    pub validation_experiment: Option<String>,
    pub validation: Option<MetricSummary>,
    /// Against the incumbent on validation (None for the baseline).
    pub paired: Option<Paired>,
    /// Set when it became the incumbent: its training-split experiment
    /// (whose failures the next interview is shown).
    pub train_experiment: Option<String>,
    pub spend: Spend,
    /// Wall time of its iteration (shared by the iteration's candidates).
    pub seconds: f64,
}

/// The held-out proof: the starting and the best prompt on the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub start_experiment: String,
    pub best_experiment: String,
    pub start: MetricSummary,
    pub best: MetricSummary,
    /// best − start, paired on the test examples.
    pub paired: Paired,
    /// best − start on validation, for the validation → test gap.
    pub validation_delta: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizationRun {
    /// `<name>-o<config sha256[..6]>-<time>`.
    pub id: String,
    pub name: String,
    pub status: OptimizeStatus,
    pub error: Option<String>,
    pub config_path: String,
    pub config_text: String,
    pub config_sha256: String,
    pub seed: u64,
    /// The method param optimised, and the score.
    pub param: String,
    pub metric: String,
    pub placeholders: Vec<String>,
    pub optimizer: String,
    /// sha256 of the optimizer component the run started with.
    #[serde(default)]
    pub optimizer_sha256: String,
    /// The task model and the interviewer (model ids as `show` prints them).
    pub task_model: String,
    pub interviewer_model: String,
    pub splits: Splits,
    pub start_prompt: String,
    pub best_prompt: String,
    /// The candidate row of the incumbent: (iteration, candidate).
    pub best_at: (u32, u32),
    /// The last iteration whose rows are all stored.
    pub iterations_done: u32,
    /// Consecutive iterations without an accepted candidate.
    pub rejections_in_a_row: u32,
    /// Why the loop ended (`plateau`, `max_iterations`, ...).
    pub stop_reason: Option<String>,
    pub spend: Spend,
    /// Wall time over every session of this run.
    pub seconds: f64,
    pub created_at: String,
    pub updated_at: String,
    pub test: Option<TestResult>,
}
