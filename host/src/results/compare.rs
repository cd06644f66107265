//! Paired comparison of experiments on the examples they share: exact
//! McNemar for binary scores, a paired sign-flip permutation test and a
//! paired bootstrap CI of the difference for continuous ones (scores and
//! latency).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::results::records::{Experiment, RunScores};
use crate::results::stats::{self, mean};

pub const PERMUTATIONS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "{a} and {b} ran on different data (dataset sha256 {sa}… vs {sb}…): a paired comparison needs the same examples"
    )]
    DifferentData {
        a: String,
        b: String,
        sa: String,
        sb: String,
    },
    #[error("{a} and {b} share no example ids")]
    NoSharedExamples { a: String, b: String },
    #[error("{a} and {b} used different seeds ({sa} vs {sb}): rerun one with the other's seed")]
    DifferentSeeds {
        a: String,
        b: String,
        sa: u64,
        sb: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricComparison {
    pub name: String,
    pub n: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// mean(B) − mean(A).
    pub delta: f64,
    /// 95 % paired-bootstrap interval of `delta`.
    pub delta_ci: (f64, f64),
    /// `mcnemar-exact` or `permutation`.
    pub test: &'static str,
    pub p_value: f64,
    /// Holm–Bonferroni adjusted p when B is one of several experiments
    /// compared with the same A (`compare A B C ...`, `compare <group>`).
    pub p_adjusted: Option<f64>,
    /// For McNemar: examples only A got right / only B got right.
    pub discordant: Option<(usize, usize)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub shared_examples: usize,
    pub metrics: Vec<MetricComparison>,
    /// Prompt + completion tokens per shared example, A and B (cost).
    pub tokens_per_example: (f64, f64),
    /// Example ids whose first score differs, with A's and B's answers.
    pub differing: Vec<(String, Option<String>, Option<String>)>,
}

/// The seed an experiment ran with, from its stored config.
pub(crate) fn seed(e: &Experiment) -> u64 {
    toml::from_str::<toml::Table>(&e.config_text)
        .ok()
        .and_then(|t| t.get("seed").and_then(|v| v.as_integer()))
        .unwrap_or(0) as u64
}

pub fn compare(
    a: &Experiment,
    runs_a: &[RunScores],
    b: &Experiment,
    runs_b: &[RunScores],
    bootstrap_seed: u64,
) -> Result<Comparison, CompareError> {
    if a.dataset_sha256 != b.dataset_sha256 {
        return Err(CompareError::DifferentData {
            a: a.id.clone(),
            b: b.id.clone(),
            sa: a.dataset_sha256.chars().take(8).collect(),
            sb: b.dataset_sha256.chars().take(8).collect(),
        });
    }
    if seed(a) != seed(b) {
        return Err(CompareError::DifferentSeeds {
            a: a.id.clone(),
            b: b.id.clone(),
            sa: seed(a),
            sb: seed(b),
        });
    }
    let by_id: BTreeMap<&str, &RunScores> =
        runs_b.iter().map(|r| (r.example_id.as_str(), r)).collect();
    let pairs: Vec<(&RunScores, &RunScores)> = runs_a
        .iter()
        .filter_map(|ra| by_id.get(ra.example_id.as_str()).map(|rb| (ra, *rb)))
        .collect();
    if pairs.is_empty() {
        return Err(CompareError::NoSharedExamples {
            a: a.id.clone(),
            b: b.id.clone(),
        });
    }
    let value = |r: &RunScores, name: &str| r.score_value(name);
    let mut metrics = Vec::new();
    let names: Vec<&String> = a
        .score_names
        .iter()
        .filter(|n| b.score_names.contains(n))
        .collect();
    for name in &names {
        let (xa, xb): (Vec<f64>, Vec<f64>) = pairs
            .iter()
            .filter_map(|(ra, rb)| Some((value(ra, name)?, value(rb, name)?)))
            .unzip();
        metrics.push(compare_values(name, &xa, &xb, bootstrap_seed));
    }
    let (la, lb): (Vec<f64>, Vec<f64>) = pairs
        .iter()
        .map(|(ra, rb)| (ra.latency_ms, rb.latency_ms))
        .unzip();
    metrics.push(compare_values("latency_ms", &la, &lb, bootstrap_seed));

    let differing = match names.first() {
        Some(first) => pairs
            .iter()
            .filter(|(ra, rb)| value(ra, first) != value(rb, first))
            .map(|(ra, rb)| (ra.example_id.clone(), ra.answer.clone(), rb.answer.clone()))
            .collect(),
        None => vec![],
    };
    let tokens = |r: &RunScores| (r.prompt_tokens + r.completion_tokens) as f64;
    let n = pairs.len() as f64;
    Ok(Comparison {
        a: a.id.clone(),
        b: b.id.clone(),
        shared_examples: pairs.len(),
        metrics,
        tokens_per_example: (
            pairs.iter().map(|(ra, _)| tokens(ra)).sum::<f64>() / n,
            pairs.iter().map(|(_, rb)| tokens(rb)).sum::<f64>() / n,
        ),
        differing,
    })
}

/// Compares every other experiment with the baseline; p-values of each
/// metric are Holm-adjusted across the comparisons (the family a reader
/// scans for "which method beats the baseline").
pub fn compare_with_baseline(
    baseline: (&Experiment, &[RunScores]),
    others: &[(&Experiment, &[RunScores])],
    bootstrap_seed: u64,
) -> Result<Vec<Comparison>, CompareError> {
    let mut out = others
        .iter()
        .map(|(e, runs)| compare(baseline.0, baseline.1, e, runs, bootstrap_seed))
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() > 1 {
        let names: Vec<String> = out[0].metrics.iter().map(|m| m.name.clone()).collect();
        for name in names {
            let slots: Vec<(usize, usize)> = out
                .iter()
                .enumerate()
                .filter_map(|(ci, c)| Some((ci, c.metrics.iter().position(|m| m.name == name)?)))
                .collect();
            let ps: Vec<f64> = slots
                .iter()
                .map(|&(c, m)| out[c].metrics[m].p_value)
                .collect();
            for (&(c, m), adj) in slots.iter().zip(stats::holm_adjust(&ps)) {
                out[c].metrics[m].p_adjusted = Some(adj);
            }
        }
    }
    Ok(out)
}

/// One paired comparison of per-example values (B − A): exact McNemar for
/// 0/1 values, else a sign-flip permutation test; a paired-bootstrap CI.
pub fn compare_values(name: &str, a: &[f64], b: &[f64], seed: u64) -> MetricComparison {
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let binary = a.iter().chain(b).all(|v| *v == 0.0 || *v == 1.0);
    let (test, p_value, discordant) = if binary {
        let only_a = a
            .iter()
            .zip(b)
            .filter(|(x, y)| **x == 1.0 && **y == 0.0)
            .count();
        let only_b = a
            .iter()
            .zip(b)
            .filter(|(x, y)| **x == 0.0 && **y == 1.0)
            .count();
        (
            "mcnemar-exact",
            mcnemar_exact(only_a, only_b),
            Some((only_a, only_b)),
        )
    } else {
        (
            "permutation",
            paired_permutation_p(&diffs, PERMUTATIONS, seed),
            None,
        )
    };
    MetricComparison {
        name: name.into(),
        n: diffs.len(),
        mean_a: mean(a),
        mean_b: mean(b),
        delta: mean(&diffs),
        delta_ci: stats::bootstrap_ci(&diffs, stats::BOOTSTRAP_ITERATIONS, seed),
        test,
        p_value,
        p_adjusted: None,
        discordant,
    }
}

/// Exact (binomial) McNemar test, two-sided, as statsmodels'
/// `mcnemar(table, exact=True)`: p = min(1, 2·P[X ≤ min(b, c)]), X ~ Bin(b + c, ½).
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum of C(n, i) / 2^n for i ≤ k, in log space for large n.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut cdf = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        cdf += (ln_choose + ln_half_n).exp();
    }
    (2.0 * cdf).min(1.0)
}

/// Above this many pairs the permutation p comes from the distribution's
/// normal limit instead of Monte Carlo (10,000 × n sign flips per metric
/// would take seconds; at this n the two agree to about 1e-3).
pub const PERMUTATION_NORMAL_ABOVE: usize = 5_000;

/// Two-sided paired sign-flip permutation test of mean difference = 0,
/// seeded; p counts the observed statistic itself (never 0). For more than
/// [`PERMUTATION_NORMAL_ABOVE`] pairs: the exact normal limit of the same
/// sign-flip distribution (mean 0, variance Σd²), p = erfc(|Σd| / √(2Σd²)).
pub fn paired_permutation_p(diffs: &[f64], iterations: usize, seed: u64) -> f64 {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    if diffs.is_empty() {
        return 1.0;
    }
    let total: f64 = diffs.iter().sum();
    if diffs.len() > PERMUTATION_NORMAL_ABOVE {
        let var: f64 = diffs.iter().map(|d| d * d).sum();
        if var == 0.0 {
            return 1.0;
        }
        return libm::erfc(total.abs() / (2.0 * var).sqrt()).min(1.0);
    }
    let observed = total.abs() / diffs.len() as f64;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut extreme = 0usize;
    for _ in 0..iterations {
        // One random bit per pair, 64 at a time.
        let mut s = 0.0;
        for chunk in diffs.chunks(64) {
            let bits: u64 = rng.random();
            for (j, d) in chunk.iter().enumerate() {
                s += if bits >> j & 1 == 1 { *d } else { -*d };
            }
        }
        if (s / diffs.len() as f64).abs() >= observed - 1e-12 {
            extreme += 1;
        }
    }
    (extreme + 1) as f64 / (iterations + 1) as f64
}

/// The verdict line for one metric.
pub fn verdict(m: &MetricComparison, alpha: f64) -> String {
    let higher_is_better = m.name != "latency_ms";
    let (p, what) = match m.p_adjusted {
        Some(adj) => (adj, "Holm-adjusted p"),
        None => (m.p_value, "p"),
    };
    if p >= alpha {
        return format!("no significant difference ({what} = {p:.3})");
    }
    let b_better = (m.delta > 0.0) == higher_is_better;
    format!(
        "{} better, {what} = {p:.3}",
        if b_better { "B" } else { "A" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_statsmodels_exact() {
        // statsmodels.stats.contingency_tables.mcnemar([[a, b], [c, d]], exact=True).pvalue
        // depends only on the discordant cells b and c.
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(mcnemar_exact(0, 0), 1.0), "no discordant pairs");
        assert!(close(mcnemar_exact(3, 3), 1.0));
        // b=1, c=9: 2 * (1 + 10) / 1024 = 0.021484375
        assert!(close(mcnemar_exact(1, 9), 0.021484375));
        assert!(close(mcnemar_exact(9, 1), 0.021484375), "symmetric");
        // b=0, c=5: 2 / 32 = 0.0625
        assert!(close(mcnemar_exact(0, 5), 0.0625));
        // b=5, c=15: 2 * sum_{i<=5} C(20,i) / 2^20 = 2 * 21700 / 1048576
        assert!(close(mcnemar_exact(5, 15), 2.0 * 21700.0 / 1_048_576.0));
        // large n stays finite and tiny
        let p = mcnemar_exact(100, 300);
        assert!(p > 0.0 && p < 1e-20, "{p}");
    }

    #[test]
    fn permutation_test_is_seeded_and_sane() {
        let same = vec![0.0; 30];
        assert_eq!(
            paired_permutation_p(&same, 1000, 1),
            1.0,
            "all equal: nothing to see"
        );
        let shifted: Vec<f64> = (0..30).map(|i| 0.5 + 0.01 * f64::from(i % 3)).collect();
        let p = paired_permutation_p(&shifted, 2000, 1);
        assert!(p < 0.001, "{p}");
        assert_eq!(p, paired_permutation_p(&shifted, 2000, 1));
        assert_eq!(
            paired_permutation_p(&[0.3], 1000, 1),
            1.0,
            "n = 1 cannot be significant"
        );
        let noisy: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(paired_permutation_p(&noisy, 2000, 2) > 0.5);
    }

    #[test]
    fn the_normal_limit_agrees_with_monte_carlo_where_they_meet() {
        // A small shift in noisy differences, just above the switch-over.
        let n = PERMUTATION_NORMAL_ABOVE + 1;
        let diffs: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 13) as f64 / 13.0 - 0.5 + 0.0449)
            .collect();
        let normal = paired_permutation_p(&diffs, 4000, 3);
        // Monte Carlo on the same data (below the threshold by dropping one).
        let mc = paired_permutation_p(&diffs[..n - 2], 4000, 3);
        // Python: math.erfc(abs(sum(d)) / math.sqrt(2 * sum(x * x for x in d))) = 0.120875
        assert!((normal - 0.120875).abs() < 1e-5, "{normal}");
        assert!(
            (normal - mc).abs() < 0.02,
            "normal {normal} vs Monte Carlo {mc}"
        );
        assert_eq!(paired_permutation_p(&vec![0.0; n], 10, 1), 1.0);
    }

    #[test]
    fn verdicts_read_direction_and_significance() {
        let m = MetricComparison {
            name: "f1".into(),
            n: 10,
            mean_a: 0.1,
            mean_b: 0.3,
            delta: 0.2,
            delta_ci: (0.1, 0.3),
            test: "permutation",
            p_value: 0.003,
            p_adjusted: None,
            discordant: None,
        };
        assert_eq!(verdict(&m, 0.05), "B better, p = 0.003");
        let lat = MetricComparison {
            name: "latency_ms".into(),
            ..m.clone()
        };
        assert_eq!(
            verdict(&lat, 0.05),
            "A better, p = 0.003",
            "lower latency is better"
        );
        let ns = MetricComparison {
            p_value: 0.2,
            ..m.clone()
        };
        assert_eq!(verdict(&ns, 0.05), "no significant difference (p = 0.200)");
        let adjusted = MetricComparison {
            p_adjusted: Some(0.09),
            ..m
        };
        assert_eq!(
            verdict(&adjusted, 0.05),
            "no significant difference (Holm-adjusted p = 0.090)"
        );
    }
}

#[cfg(test)]
mod paired_tests {
    use super::*;
    use crate::results::records::RunScores;

    fn runs(scores: &[f64]) -> Vec<RunScores> {
        scores
            .iter()
            .enumerate()
            .map(|(i, v)| RunScores {
                index: i as u32,
                example_id: format!("q{i}"),
                answer: Some(format!("{v}")),
                scores: [("em".to_string(), *v)].into(),
                latency_ms: 10.0,
                prompt_tokens: 10,
                completion_tokens: 2,
                ..Default::default()
            })
            .collect()
    }

    fn exp(id: &str, seed: u64) -> Experiment {
        let mut e = crate::results::store::tests::sample_experiment(id);
        e.config_text = format!("seed = {seed}\n");
        e.score_names = vec!["em".into()];
        e
    }

    #[test]
    fn edge_cases_all_equal_and_no_discordant_pairs() {
        let a = runs(&[1.0, 0.0, 1.0]);
        let c = compare(&exp("a", 1), &a, &exp("b", 1), &a, 0).unwrap();
        let em = &c.metrics[0];
        assert_eq!(
            (em.test, em.p_value, em.discordant),
            ("mcnemar-exact", 1.0, Some((0, 0)))
        );
        assert_eq!((em.delta, em.delta_ci), (0.0, (0.0, 0.0)));
        assert!(c.differing.is_empty());
        let lat = &c.metrics[1];
        assert_eq!(
            (lat.test, lat.p_value),
            ("permutation", 1.0),
            "latency all equal"
        );
    }

    #[test]
    fn refuses_different_seeds_or_data_and_pairs_by_example_id() {
        let a = runs(&[1.0, 0.0]);
        assert!(matches!(
            compare(&exp("a", 1), &a, &exp("b", 2), &a, 0),
            Err(CompareError::DifferentSeeds { .. })
        ));
        let mut other = exp("b", 1);
        other.dataset_sha256 = "other".into();
        assert!(matches!(
            compare(&exp("a", 1), &a, &other, &a, 0),
            Err(CompareError::DifferentData { .. })
        ));
        // B ran only q1, in another order: pairs are matched by id.
        let b = vec![RunScores {
            index: 0,
            ..runs(&[0.0, 1.0])[1].clone()
        }];
        let c = compare(&exp("a", 1), &a, &exp("b", 1), &b, 0).unwrap();
        assert_eq!(c.shared_examples, 1);
        assert_eq!(c.metrics[0].discordant, Some((0, 1)));
    }

    #[test]
    fn many_comparisons_get_holm_adjusted_p() {
        let base = runs(&[0.0; 30]);
        let better = runs(&[1.0; 30]);
        let same = runs(&[0.0; 30]);
        let (ea, eb, ec) = (exp("a", 1), exp("b", 1), exp("c", 1));
        let cs = compare_with_baseline((&ea, &base), &[(&eb, &better), (&ec, &same)], 0).unwrap();
        let em_b = &cs[0].metrics[0];
        // McNemar 0/30: p = 2 / 2^30; Holm with m = 2 doubles the smallest.
        assert!((em_b.p_value - 2.0 / f64::from(1u32 << 30)).abs() < 1e-15);
        assert!((em_b.p_adjusted.unwrap() - 2.0 * em_b.p_value).abs() < 1e-15);
        assert_eq!(cs[1].metrics[0].p_adjusted, Some(1.0));
        assert!(verdict(em_b, 0.05).starts_with("B better, Holm-adjusted p"));
        assert_eq!(cs[0].tokens_per_example, (12.0, 12.0));
    }
}
