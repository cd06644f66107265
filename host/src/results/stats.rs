//! Aggregates of an experiment's runs: metric means with seeded bootstrap
//! confidence intervals, latency percentiles, token totals, throughput.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::results::records::{CallCounts, RunScores, ToolCounts};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub mean: f64,
    /// 95 % percentile-bootstrap interval of the mean (seeded; resamples as
    /// `[stats] bootstrap_iterations`, default 1000).
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
    /// Examples a metric failed on, by metric and kind (`invalid_score`,
    /// `trap`, ...): those examples are left out of that metric's scores.
    #[serde(default)]
    pub metric_errors: BTreeMap<String, BTreeMap<String, usize>>,
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
    /// Prompt + completion tokens per example.
    #[serde(default)]
    pub tokens_per_example: f64,
    /// Peak resident memory of the process that finished the experiment
    /// (VmHWM; for a sweep cell, from the cell's start: reset per cell), MiB.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// Seconds the GPU spent in forward passes, over the process that
    /// finished the experiment (for a sweep, the sweep so far); None on CPU.
    #[serde(default)]
    pub gpu_s: Option<f64>,
    /// Peak device memory in use (as nvidia-smi counts it) over that
    /// process, MiB; None on CPU.
    #[serde(default)]
    pub gpu_peak_mib: Option<f64>,
    /// Model time and cache use, summed over every run's calls.
    #[serde(default)]
    pub engine: CallCounts,
    /// Agent bookkeeping; None when no run called a tool or reported a
    /// loop status.
    #[serde(default)]
    pub agent: Option<AgentSummary>,
    #[serde(default = "default_iterations")]
    pub bootstrap_iterations: usize,
    /// How long the answers are (None when no example answered).
    #[serde(default)]
    pub verbosity: Option<Verbosity>,
}

/// Completion tokens per answered example (every generate call the method
/// made for it), with seeded 95 % bootstrap intervals of the mean, the
/// median and the 95th percentile: the verbosity axis of an alignment
/// comparison ("answers got 30 % longer").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verbosity {
    pub n: usize,
    pub mean: f64,
    pub mean_ci: (f64, f64),
    pub median: f64,
    pub median_ci: (f64, f64),
    pub p95: f64,
    pub p95_ci: (f64, f64),
}

/// [`Verbosity`] of the runs that answered.
pub fn verbosity(runs: &[RunScores], iterations: usize, seed: u64) -> Option<Verbosity> {
    let tokens: Vec<f64> = runs
        .iter()
        .filter(|r| r.answer.is_some() && r.error.is_none())
        .map(|r| r.completion_tokens as f64)
        .collect();
    if tokens.is_empty() {
        return None;
    }
    let pct = |p: f64| {
        move |xs: &[f64]| {
            let mut s = xs.to_vec();
            s.sort_by(f64::total_cmp);
            percentile(&s, p)
        }
    };
    Some(Verbosity {
        n: tokens.len(),
        mean: mean(&tokens),
        mean_ci: bootstrap_ci(&tokens, iterations, seed ^ 0x7e),
        median: pct(50.0)(&tokens),
        median_ci: bootstrap_ci_of(&tokens, iterations, seed ^ 0x7f, pct(50.0)),
        p95: pct(95.0)(&tokens),
        p95_ci: bootstrap_ci_of(&tokens, iterations, seed ^ 0x80, pct(95.0)),
    })
}

fn default_iterations() -> usize {
    BOOTSTRAP_ITERATIONS
}

/// What an agent did, per experiment (shares are of all examples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Examples whose loop ended with an answer (`status: answered`).
    pub success_rate: f64,
    pub tool_calls_per_example: f64,
    /// Share of tool calls that returned an error.
    pub failed_tool_calls: f64,
    /// Examples stopped for repeating the same action.
    pub stuck_rate: f64,
    pub max_iterations_rate: f64,
    /// Examples with at least one unparseable model turn.
    pub parse_failure_rate: f64,
    /// Per tool name (empty in summaries written before it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tool: BTreeMap<String, ToolSummary>,
}

/// One tool's use over an experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolSummary {
    pub calls_per_example: f64,
    /// Share of its calls that returned an error.
    pub failed: f64,
    pub mean_latency_ms: f64,
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

pub fn summarise(
    runs: &[RunScores],
    score_names: &[String],
    seed: u64,
    iterations: usize,
) -> Summary {
    let mut failures_by_kind = BTreeMap::new();
    for r in runs {
        if let Some(e) = &r.error {
            *failures_by_kind.entry(e.kind.clone()).or_insert(0) += 1;
        }
    }
    let mut metric_errors: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in runs {
        for (metric, e) in &r.metric_errors {
            *metric_errors
                .entry(metric.clone())
                .or_default()
                .entry(e.kind.clone())
                .or_insert(0) += 1;
        }
    }
    let metrics = score_names
        .iter()
        .map(|name| {
            // A failed example scores 0: it gave no answer. Metric errors
            // (the metric itself broke) leave the example out of that metric.
            let values: Vec<f64> = runs.iter().filter_map(|r| r.score_value(name)).collect();
            let (ci_low, ci_high) = bootstrap_ci(&values, iterations, seed);
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
    let prompt_tokens: u64 = runs.iter().map(|r| r.prompt_tokens).sum();
    let gpu = crate::engine::gpu_usage::totals();
    Summary {
        examples: runs.len(),
        failures: failures_by_kind.values().sum(),
        failures_by_kind,
        metric_errors,
        metrics,
        latency: LatencySummary {
            mean_ms: mean(&lat),
            p50_ms: percentile(&lat, 50.0),
            p95_ms: percentile(&lat, 95.0),
            p99_ms: percentile(&lat, 99.0),
        },
        prompt_tokens,
        completion_tokens,
        llm_calls: runs.iter().map(|r| r.calls.n).sum(),
        wall_s: 0.0,
        examples_per_s: 0.0,
        tokens_per_s: 0.0,
        tokens_per_example: if runs.is_empty() {
            0.0
        } else {
            (prompt_tokens + completion_tokens) as f64 / runs.len() as f64
        },
        peak_rss_mib: peak_rss_mib(),
        gpu_s: gpu.map(|(s, _)| s),
        gpu_peak_mib: gpu.and_then(|(_, peak)| peak),
        engine: runs.iter().fold(CallCounts::default(), |mut acc, r| {
            acc.add(&r.calls);
            acc
        }),
        agent: agent_summary(runs),
        bootstrap_iterations: iterations,
        verbosity: verbosity(runs, iterations, seed),
    }
}

fn agent_summary(runs: &[RunScores]) -> Option<AgentSummary> {
    let agentic = runs
        .iter()
        .any(|r| r.agent.tool_calls > 0 || r.agent.status.is_some());
    if !agentic {
        return None;
    }
    let n = runs.len() as f64;
    let share = |f: &dyn Fn(&RunScores) -> bool| runs.iter().filter(|r| f(r)).count() as f64 / n;
    let status_is = |s: &'static str| move |r: &RunScores| r.agent.status.as_deref() == Some(s);
    let calls: usize = runs.iter().map(|r| r.agent.tool_calls).sum();
    let failed: usize = runs.iter().map(|r| r.agent.failed_tool_calls).sum();
    Some(AgentSummary {
        success_rate: share(&status_is("answered")),
        tool_calls_per_example: calls as f64 / n,
        failed_tool_calls: if calls == 0 {
            0.0
        } else {
            failed as f64 / calls as f64
        },
        stuck_rate: share(&status_is("stuck")),
        max_iterations_rate: share(&status_is("max_iterations")),
        parse_failure_rate: share(&|r| r.agent.parse_errors > 0),
        by_tool: tool_summaries(runs),
    })
}

/// Calls per example, failure share and mean latency of each tool.
fn tool_summaries(runs: &[RunScores]) -> BTreeMap<String, ToolSummary> {
    let mut totals: BTreeMap<&str, ToolCounts> = BTreeMap::new();
    for r in runs {
        for (name, t) in &r.agent.by_tool {
            let e = totals.entry(name).or_default();
            e.calls += t.calls;
            e.failed += t.failed;
            e.latency_ms += t.latency_ms;
        }
    }
    let n = runs.len().max(1) as f64;
    totals
        .into_iter()
        .map(|(name, t)| {
            let per_call = |x: f64| {
                if t.calls == 0 {
                    0.0
                } else {
                    x / t.calls as f64
                }
            };
            let summary = ToolSummary {
                calls_per_example: t.calls as f64 / n,
                failed: per_call(t.failed as f64),
                mean_latency_ms: per_call(t.latency_ms),
            };
            (name.to_string(), summary)
        })
        .collect()
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Starts [`peak_rss_mib`] again from the present RSS (Linux: writing 5
/// to `clear_refs` resets VmHWM), so each cell of a sweep reports its own
/// peak. False where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Holm–Bonferroni adjusted p-values (same order as given): for m tests
/// sorted ascending, p'(i) = max over j ≤ i of min(1, (m − j) · p(j)).
pub fn holm_adjust(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

pub fn mean(xs: &[f64]) -> f64 {
    mean_of(xs.len(), || xs.iter().copied())
}

/// The mean of `n` values, finite for any finite values: the plain sum
/// (bit-identical to what was always computed) unless it overflows, then
/// the sum of the values each divided by n first.
fn mean_of<I: Iterator<Item = f64>>(n: usize, values: impl Fn() -> I) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let sum: f64 = values().sum();
    if sum.is_finite() {
        sum / nf
    } else {
        values().map(|x| x / nf).sum()
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
            let t = rank - lo as f64;
            let v = sorted[lo] + (sorted[hi] - sorted[lo]) * t;
            // Far-apart huge values overflow the difference: interpolate
            // by weights instead (equal whenever the first form is finite).
            if v.is_finite() {
                v
            } else {
                sorted[lo] * (1.0 - t) + sorted[hi] * t
            }
        }
    }
}

/// 95 % percentile bootstrap interval of any statistic of `xs`, seeded.
pub fn bootstrap_ci_of(
    xs: &[f64],
    iterations: usize,
    seed: u64,
    stat: impl Fn(&[f64]) -> f64,
) -> (f64, f64) {
    if xs.len() < 2 {
        let v = stat(xs);
        return (v, v);
    }
    let mut sample = vec![0.0; xs.len()];
    bootstrap_ci_by_index(xs.len(), iterations, seed, |idx| {
        for (v, &i) in sample.iter_mut().zip(idx) {
            *v = xs[i];
        }
        stat(&sample)
    })
}

/// 95 % percentile bootstrap interval of a statistic of `n` items that
/// resamples them by index (paired data: the closure reads every column
/// at the same indices), seeded.
pub fn bootstrap_ci_by_index(
    n: usize,
    iterations: usize,
    seed: u64,
    mut stat: impl FnMut(&[usize]) -> f64,
) -> (f64, f64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut idx = vec![0; n];
    let mut values: Vec<f64> = (0..iterations.max(1))
        .map(|_| {
            for i in idx.iter_mut() {
                *i = rng.random_range(0..n);
            }
            stat(&idx)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    (percentile(&values, 2.5), percentile(&values, 97.5))
}

/// 95 % percentile bootstrap interval of the mean, seeded.
pub fn bootstrap_ci(xs: &[f64], iterations: usize, seed: u64) -> (f64, f64) {
    if xs.len() < 2 {
        let m = mean(xs);
        return (m, m);
    }
    bootstrap_ci_by_index(xs.len(), iterations, seed, |picks| {
        mean_of(picks.len(), || picks.iter().map(|&i| xs[i]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_stay_finite_for_any_finite_scores() {
        let xs = [f64::MAX, f64::MAX, -f64::MAX, 1e308];
        assert!(mean(&xs).is_finite(), "{}", mean(&xs));
        assert_eq!(mean(&[f64::MAX, f64::MAX]), f64::MAX);
        let (lo, hi) = bootstrap_ci(&xs, 200, 1);
        assert!(lo.is_finite() && hi.is_finite() && lo <= hi, "{lo} {hi}");
        let mut sorted = xs;
        sorted.sort_by(f64::total_cmp);
        assert!(percentile(&sorted, 50.0).is_finite());
        // Ordinary values take the ordinary path, bit for bit.
        assert_eq!(mean(&[0.1, 0.2, 0.3]), (0.1 + 0.2 + 0.3) / 3.0);
    }

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
    fn holm_matches_statsmodels() {
        // statsmodels.stats.multitest.multipletests([0.01, 0.04, 0.03, 0.5],
        // method="holm")[1] = [0.04, 0.09, 0.09, 0.5]
        let adj = holm_adjust(&[0.01, 0.04, 0.03, 0.5]);
        for (a, b) in adj.iter().zip([0.04, 0.09, 0.09, 0.5]) {
            assert!((a - b).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(holm_adjust(&[0.7]), vec![0.7]);
        assert_eq!(holm_adjust(&[0.6, 0.6]), vec![1.0, 1.0]);
        assert!(holm_adjust(&[]).is_empty());
    }

    fn scored(i: u32, f1: Option<f64>, failed: bool) -> RunScores {
        RunScores {
            index: i,
            example_id: format!("e{i}"),
            scores: f1.map(|v| ("f1".to_string(), v)).into_iter().collect(),
            error: failed.then(|| crate::results::records::RunError {
                kind: "trap".into(),
                message: "x".into(),
            }),
            latency_ms: f64::from(i + 1),
            prompt_tokens: 10,
            completion_tokens: 5,
            calls: CallCounts {
                n: 1,
                generate: 1,
                prefill_ms: 3.0,
                decode_ms: 4.0,
                prefix_hits: 1,
                prefill_tokens_saved: 8,
                call_cache_hits: 1,
                max_batch: 1,
            },
            ..Default::default()
        }
    }

    #[test]
    fn summary_counts_failures_as_zero_and_metric_errors_as_absent() {
        let runs = [
            scored(0, Some(1.0), false),
            scored(1, None, true),  // method failed: scores 0
            scored(2, None, false), // metric broke: left out
            scored(3, Some(0.5), false),
        ];
        let s = summarise(&runs, &["f1".into()], 7, 200);
        let f1 = &s.metrics["f1"];
        assert_eq!(f1.n, 3);
        assert!((f1.mean - 0.5).abs() < 1e-12);
        assert_eq!(s.failures, 1);
        assert_eq!(s.failures_by_kind["trap"], 1);
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens, s.llm_calls),
            (40, 20, 4)
        );
        assert_eq!(s.tokens_per_example, 15.0);
        assert_eq!(s.latency.p50_ms, 2.5);
        assert_eq!(s.bootstrap_iterations, 200);
        assert!(s.agent.is_none());
        // n = 1 and no data: the interval collapses to the mean, no panic.
        let one = summarise(&runs[..1], &["f1".into()], 7, 200);
        assert_eq!(
            (one.metrics["f1"].ci_low, one.metrics["f1"].ci_high),
            (1.0, 1.0)
        );
        let none = summarise(&[], &["f1".into()], 7, 200);
        assert_eq!((none.metrics["f1"].n, none.metrics["f1"].mean), (0, 0.0));
    }

    #[test]
    fn verbosity_counts_answered_runs_only() {
        // 1..=20 tokens answered (numpy: median 10.5, percentile 95 = 19.05),
        // plus a failed run that must not count.
        let mut runs: Vec<RunScores> = (1..=20u64)
            .map(|t| RunScores {
                answer: Some("x".into()),
                completion_tokens: t,
                ..RunScores::default()
            })
            .collect();
        runs.push(scored(99, None, true));
        let v = verbosity(&runs, 300, 3).unwrap();
        assert_eq!(v.n, 20);
        assert!((v.mean - 10.5).abs() < 1e-12 && (v.median - 10.5).abs() < 1e-12);
        assert!((v.p95 - 19.05).abs() < 1e-9, "{}", v.p95);
        for (lo, x, hi) in [
            (v.mean_ci.0, v.mean, v.mean_ci.1),
            (v.median_ci.0, v.median, v.median_ci.1),
            (v.p95_ci.0, v.p95, v.p95_ci.1),
        ] {
            assert!(lo < x && x <= hi, "{lo} {x} {hi}");
        }
        assert_eq!(
            verbosity(&runs[20..], 300, 3),
            None,
            "no answer, no verbosity"
        );
    }

    #[test]
    fn agent_summary_reads_the_trace_conventions() {
        use crate::results::records::{AgentCounts, TraceStep};
        let step = |kind: &str, content: &str| TraceStep {
            kind: kind.into(),
            content: content.into(),
        };
        let a = AgentCounts::of(&[
            step(
                "tool_call",
                r#"{"tool":"calculator","error":null,"latency_ms":2.0}"#,
            ),
            step(
                "tool_call",
                r#"{"tool":"calculator","error":"Failed(\"x\")","latency_ms":4.0}"#,
            ),
            step(
                "tool_call",
                r#"{"tool":"retrieval","error":null,"latency_ms":30.0}"#,
            ),
            step("note", "parse_error: no action"),
            step("note", "status: answered"),
        ]);
        assert_eq!(
            (
                a.tool_calls,
                a.failed_tool_calls,
                a.parse_errors,
                a.status.as_deref()
            ),
            (3, 1, 1, Some("answered"))
        );
        assert_eq!(
            (
                a.by_tool["calculator"].calls,
                a.by_tool["calculator"].failed
            ),
            (2, 1)
        );
        assert_eq!(a.by_tool["retrieval"].latency_ms, 30.0);
        let mut runs = vec![scored(0, Some(1.0), false), scored(1, Some(0.0), false)];
        runs[0].agent = a;
        runs[1].agent.status = Some("stuck".into());
        let s = summarise(&runs, &["f1".into()], 1, 100).agent.unwrap();
        assert_eq!(
            (
                s.success_rate,
                s.stuck_rate,
                s.tool_calls_per_example,
                s.failed_tool_calls,
                s.parse_failure_rate
            ),
            (0.5, 0.5, 1.5, 1.0 / 3.0, 0.5)
        );
        // Per tool, over both examples: the calculator twice (one failed,
        // 3 ms each on average), retrieval once.
        let calc = &s.by_tool["calculator"];
        assert_eq!(
            (calc.calls_per_example, calc.failed, calc.mean_latency_ms),
            (1.0, 0.5, 3.0)
        );
        let r = &s.by_tool["retrieval"];
        assert_eq!(
            (r.calls_per_example, r.failed, r.mean_latency_ms),
            (0.5, 0.0, 30.0)
        );
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
