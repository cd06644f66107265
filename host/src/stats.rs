//! Aggregates of an experiment's runs: metric means with seeded bootstrap
//! confidence intervals, latency percentiles, token totals, throughput.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::store::RunRecord;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub mean: f64,
    /// 95 % percentile-bootstrap interval of the mean (1000 resamples, seeded).
    pub ci_low: f64,
    pub ci_high: f64,
    /// Examples that have this score.
    pub n: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub examples: usize,
    /// Examples whose method failed (timeout, trap, ...).
    pub failures: usize,
    pub failures_by_kind: BTreeMap<String, usize>,
    pub metrics: BTreeMap<String, MetricSummary>,
    pub latency: LatencySummary,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub llm_calls: usize,
    /// Wall time of the session that finished the experiment, seconds.
    pub wall_s: f64,
    /// Examples that session ran, per second of its wall time.
    pub examples_per_s: f64,
    /// Completion tokens that session generated, per second of its wall time.
    pub tokens_per_s: f64,
}

impl Summary {
    pub fn set_throughput(&mut self, wall_s: f64, examples: usize, completion_tokens: u64) {
        self.wall_s = wall_s;
        self.examples_per_s = if wall_s > 0.0 {
            examples as f64 / wall_s
        } else {
            0.0
        };
        self.tokens_per_s = if wall_s > 0.0 {
            completion_tokens as f64 / wall_s
        } else {
            0.0
        };
    }
}

pub const BOOTSTRAP_ITERATIONS: usize = 1000;

pub fn summarise(runs: &[RunRecord], score_names: &[String], seed: u64) -> Summary {
    let mut failures_by_kind = BTreeMap::new();
    for r in runs {
        if let Some(e) = &r.error {
            *failures_by_kind.entry(e.kind.clone()).or_insert(0) += 1;
        }
    }
    let metrics = score_names
        .iter()
        .map(|name| {
            // A failed example scores 0: it gave no answer. Metric errors
            // (the metric itself broke) leave the example out of that metric.
            let values: Vec<f64> = runs.iter().filter_map(|r| r.score_value(name)).collect();
            let (ci_low, ci_high) = bootstrap_ci(&values, BOOTSTRAP_ITERATIONS, seed);
            (
                name.clone(),
                MetricSummary {
                    mean: mean(&values),
                    ci_low,
                    ci_high,
                    n: values.len(),
                },
            )
        })
        .collect();
    let mut lat: Vec<f64> = runs.iter().map(|r| r.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let completion_tokens: u64 = runs.iter().map(|r| r.completion_tokens).sum();
    Summary {
        examples: runs.len(),
        failures: failures_by_kind.values().sum(),
        failures_by_kind,
        metrics,
        latency: LatencySummary {
            mean_ms: mean(&lat),
            p50_ms: percentile(&lat, 50.0),
            p95_ms: percentile(&lat, 95.0),
            p99_ms: percentile(&lat, 99.0),
        },
        prompt_tokens: runs.iter().map(|r| r.prompt_tokens).sum(),
        completion_tokens,
        llm_calls: runs.iter().map(|r| r.calls.len()).sum(),
        wall_s: 0.0,
        examples_per_s: 0.0,
        tokens_per_s: 0.0,
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Percentile of sorted data by linear interpolation between closest ranks
/// (numpy's default, Hyndman & Fan type 7). 0 for no data.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// 95 % percentile bootstrap interval of the mean, seeded.
pub fn bootstrap_ci(xs: &[f64], iterations: usize, seed: u64) -> (f64, f64) {
    if xs.len() < 2 {
        let m = mean(xs);
        return (m, m);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..iterations)
        .map(|_| {
            (0..xs.len())
                .map(|_| xs[rng.random_range(0..xs.len())])
                .sum::<f64>()
                / xs.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    (percentile(&means, 2.5), percentile(&means, 97.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_linear() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [50, 95, 99]) = 2.5, 3.85, 3.97
        assert!((percentile(&xs, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile(&xs, 95.0) - 3.85).abs() < 1e-12);
        assert!((percentile(&xs, 99.0) - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..40).map(|i| f64::from(i % 3 == 0)).collect();
        let (lo, hi) = bootstrap_ci(&xs, 1000, 1);
        assert_eq!((lo, hi), bootstrap_ci(&xs, 1000, 1));
        let m = mean(&xs);
        assert!(lo < m && m < hi, "{lo} {m} {hi}");
        assert_eq!(bootstrap_ci(&[1.0, 1.0, 1.0], 100, 3), (1.0, 1.0));
        assert_eq!(bootstrap_ci(&[0.5], 100, 3), (0.5, 0.5));
    }
}
