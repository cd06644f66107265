//! Scoring one answer with metric components, and the boundary every score
//! crosses on its way to the store: a finite number of sane magnitude,
//! under a name its metric declared. One bad value fails that metric on
//! that example (kept as its metric error, with the name and the value);
//! it never reaches the record, the aggregates or another example.

use std::sync::Arc;

use crate::components::bindings::types::{Answer, Score};
use crate::components::budget::Deadline;
use crate::components::capabilities::{CallContext, Capabilities};
use crate::components::{ConfiguredMetric, Failure, FailureKind, PluginHost};
use crate::experiment::datasets::Example;
use crate::results::records::RunRecord;

/// Scores beyond this magnitude are refused: every sum, mean, difference
/// and bootstrap resample of up to 2^32 of them then stays finite.
pub const MAX_SCORE_MAGNITUDE: f64 = 1e100;

/// A metric component with the score names it declared (`names`).
pub struct Metric<'a> {
    pub configured: &'a ConfiguredMetric,
    pub names: &'a [String],
}

/// Checks one metric's scores; the first bad one fails them all.
pub fn validate(metric: &Metric, scores: Vec<Score>) -> Result<Vec<(String, f64)>, Failure> {
    let name = &metric.configured.plugin.name;
    let bad = |message: String| Failure {
        kind: FailureKind::InvalidScore,
        message,
    };
    let mut out = Vec::with_capacity(scores.len());
    for s in scores {
        if !metric.names.contains(&s.name) {
            return Err(bad(format!(
                "metric {name} returned score {:?}, which it did not declare (it declared: {})",
                s.name,
                metric.names.join(", ")
            )));
        }
        if !s.value.is_finite() || s.value.abs() > MAX_SCORE_MAGNITUDE {
            return Err(bad(format!(
                "metric {name} returned {} = {}: a score must be a finite number within ±{MAX_SCORE_MAGNITUDE:e}",
                s.name, s.value
            )));
        }
        out.push((s.name, s.value));
    }
    Ok(out)
}

/// The metrics of an experiment (or a rescoring) and what they may call.
pub struct Scorer<'a> {
    pub host: &'a PluginHost,
    pub metrics: Vec<Metric<'a>>,
    pub caps: &'a Arc<Capabilities>,
}

impl Scorer<'_> {
    /// Scores `answer` with every metric, in order, each in its own
    /// sandboxed call under the example's `deadline`; valid scores, metric
    /// errors, the metrics' model calls and logs go into `run`. Returns the
    /// log bytes the metrics' caps dropped.
    pub async fn score(
        &self,
        seed: u64,
        deadline: Deadline,
        example: &Example,
        answer: &Answer,
        run: &mut RunRecord,
    ) -> usize {
        let mut dropped_log_bytes = 0;
        let example = example.to_wit();
        for metric in &self.metrics {
            let ctx = CallContext::new(Arc::clone(self.caps), seed).until(deadline);
            let (out, ctx) = self
                .host
                .score(metric.configured, seed, ctx, &example, answer)
                .await;
            run.calls.extend(ctx.calls);
            run.logs.extend(ctx.logs);
            dropped_log_bytes += ctx.logs_dropped_bytes;
            match out
                .into_result()
                .and_then(|scores| validate(metric, scores))
            {
                Ok(scores) => run.scores.extend(scores),
                Err(f) => {
                    run.metric_errors
                        .insert(metric.configured.plugin.name.clone(), f.into());
                }
            }
        }
        dropped_log_bytes
    }
}
