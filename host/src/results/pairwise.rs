//! Pairwise judgements as numbers: what `forge-host judge` reports about
//! answers A and B once a judge has compared each pair in both orders.
//!
//! - win / tie / loss rates of A with bootstrap CIs, over the pairs whose
//!   two verdicts both parsed (parse failures are counted beside them,
//!   never averaged in);
//! - the win rate (wins + ties/2), the usual single number;
//! - the position-bias rate: how often the two verdicts picked the same
//!   *slot* (the answer shown first both times, or second both times), so
//!   the order decided, not the answers;
//! - an exact two-sided sign test of wins against losses (ties left out);
//! - a length-controlled win rate (AlpacaEval 2's idea): a logistic
//!   regression of the preference on the standardised length difference,
//!   `P(A preferred) = σ(θ + φ·tanh(Δ/σ_Δ))`, read at Δ = 0 — the win rate
//!   the judge would give if A and B were equally long. Ties count as
//!   half a win in the fit, as in the raw win rate.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::results::compare::mcnemar_exact;
use crate::results::records::Experiment;
use crate::results::stats::{BOOTSTRAP_ITERATIONS, bootstrap_ci, bootstrap_ci_by_index, mean};
use crate::results::store::Store;

/// One judged pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// A's share of the win: 1 (A), 0.5 (tie, or the orders disagreed),
    /// 0 (B); None when a verdict did not parse.
    pub win: Option<f64>,
    /// The two verdicts picked the same slot; None when one did not parse.
    pub followed_position: Option<bool>,
    /// Length of A's and B's answers (completion tokens).
    pub len_a: f64,
    pub len_b: f64,
}

/// A rate with its 95 % percentile-bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Rate {
    fn of(xs: &[f64], iterations: usize, seed: u64) -> Self {
        let (ci_low, ci_high) = bootstrap_ci(xs, iterations, seed);
        Self {
            value: mean(xs),
            ci_low,
            ci_high,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairwiseSummary {
    /// Pairs judged (both orders asked).
    pub pairs: usize,
    /// Pairs with a verdict that did not parse (either order).
    pub parse_failures: usize,
    pub a_wins: usize,
    pub ties: usize,
    pub b_wins: usize,
    pub a_win_rate: Rate,
    pub tie_rate: Rate,
    pub b_win_rate: Rate,
    /// (wins + ties / 2) / parsed pairs.
    pub win_rate: Rate,
    /// Share of parsed pairs whose two verdicts picked the same slot.
    pub position_bias: Rate,
    /// Exact two-sided sign test of A's wins against B's wins.
    pub sign_test_p: f64,
    /// The win rate at equal length (None with fewer than 2 parsed pairs).
    pub length_controlled: Option<Rate>,
    /// Mean of len(A) − len(B) over parsed pairs, tokens.
    pub mean_length_diff: f64,
}

/// Summarises judged pairs; `seed` makes every interval reproducible.
pub fn summarise(judged: &[Judgement], iterations: usize, seed: u64) -> PairwiseSummary {
    let parsed: Vec<&Judgement> = judged.iter().filter(|j| j.win.is_some()).collect();
    let wins: Vec<f64> = parsed.iter().filter_map(|j| j.win).collect();
    let indicator = |f: fn(f64) -> bool| -> Vec<f64> {
        wins.iter().map(|&w| if f(w) { 1.0 } else { 0.0 }).collect()
    };
    let a = indicator(|w| w == 1.0);
    let b = indicator(|w| w == 0.0);
    let t = indicator(|w| w != 1.0 && w != 0.0);
    let count = |xs: &[f64]| xs.iter().filter(|&&x| x == 1.0).count();
    let (a_wins, b_wins, ties) = (count(&a), count(&b), count(&t));
    let position: Vec<f64> = parsed
        .iter()
        .filter_map(|j| j.followed_position)
        .map(|f| if f { 1.0 } else { 0.0 })
        .collect();
    let diffs: Vec<f64> = parsed.iter().map(|j| j.len_a - j.len_b).collect();
    let length_controlled = (parsed.len() >= 2).then(|| {
        let value = length_controlled_win_rate(&diffs, &wins);
        let (ci_low, ci_high) =
            bootstrap_ci_by_index(parsed.len(), iterations, seed ^ 0x1c, |idx| {
                let d: Vec<f64> = idx.iter().map(|&i| diffs[i]).collect();
                let w: Vec<f64> = idx.iter().map(|&i| wins[i]).collect();
                length_controlled_win_rate(&d, &w)
            });
        Rate {
            value,
            ci_low,
            ci_high,
        }
    });
    PairwiseSummary {
        pairs: judged.len(),
        parse_failures: judged.len() - parsed.len(),
        a_wins,
        ties,
        b_wins,
        a_win_rate: Rate::of(&a, iterations, seed),
        tie_rate: Rate::of(&t, iterations, seed ^ 1),
        b_win_rate: Rate::of(&b, iterations, seed ^ 2),
        win_rate: Rate::of(&wins, iterations, seed ^ 3),
        position_bias: Rate::of(&position, iterations, seed ^ 4),
        sign_test_p: mcnemar_exact(a_wins, b_wins),
        length_controlled,
        mean_length_diff: mean(&diffs),
    }
}

/// The pairwise numbers of a judging run (`forge-host judge`), from its
/// stored `judge_verdict` scores and the lengths (completion tokens) of
/// the answers it compared; seeded by its config's seed.
pub fn of_judging(store: &Store, judging: &Experiment) -> anyhow::Result<PairwiseSummary> {
    let Some(pair) = &judging.judged else {
        anyhow::bail!("{} is not a judging run (forge-host judge)", judging.id);
    };
    let tokens = |id: &str| -> anyhow::Result<BTreeMap<String, f64>> {
        Ok(store
            .run_scores(id)?
            .into_iter()
            .map(|r| (r.example_id, r.completion_tokens as f64))
            .collect())
    };
    let (len_a, len_b) = (tokens(&pair.a)?, tokens(&pair.b)?);
    let judged: Vec<Judgement> = store
        .run_scores(&judging.id)?
        .into_iter()
        .filter(|r| r.error.is_none())
        .map(|r| Judgement {
            win: r.scores.get("win").copied(),
            followed_position: r.scores.get("position_bias").map(|&v| v == 1.0),
            len_a: len_a.get(&r.example_id).copied().unwrap_or(0.0),
            len_b: len_b.get(&r.example_id).copied().unwrap_or(0.0),
        })
        .collect();
    let iterations = store
        .summary(&judging.id)?
        .map_or(BOOTSTRAP_ITERATIONS, |s| s.bootstrap_iterations);
    Ok(summarise(
        &judged,
        iterations,
        crate::results::compare::seed(judging),
    ))
}

/// `σ(θ̂)` of the logistic fit `P(A preferred) = σ(θ + φ·tanh(Δ/s))`, `s`
/// the standard deviation of the length differences `Δ`, `y` ∈ [0, 1]
/// (ties ½). With no spread in Δ the feature is 0 and this is the raw
/// mean of `y`: nothing to control for.
pub fn length_controlled_win_rate(diffs: &[f64], y: &[f64]) -> f64 {
    assert_eq!(diffs.len(), y.len());
    let n = y.len();
    if n == 0 {
        return f64::NAN;
    }
    let m = mean(diffs);
    let sd = (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / n as f64).sqrt();
    let x: Vec<f64> = diffs
        .iter()
        .map(|d| if sd > 0.0 { (d / sd).tanh() } else { 0.0 })
        .collect();
    // Newton–Raphson on the (fractional-outcome) log-likelihood. A tiny
    // ridge keeps the Hessian invertible when x has no spread or the data
    // separate; θ is clamped so an all-wins sample ends at σ(θ) ≈ 1.
    const RIDGE: f64 = 1e-9;
    let (mut theta, mut phi) = (0.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, -RIDGE * phi, RIDGE, 0.0, RIDGE);
        for (xi, yi) in x.iter().zip(y) {
            let p = sigmoid(theta + phi * xi);
            let w = p * (1.0 - p);
            g0 += yi - p;
            g1 += (yi - p) * xi;
            h00 += w;
            h01 += w * xi;
            h11 += w * xi * xi;
        }
        let det = h00 * h11 - h01 * h01;
        if det.abs() < 1e-300 {
            break;
        }
        let d0 = (h11 * g0 - h01 * g1) / det;
        let d1 = (h00 * g1 - h01 * g0) / det;
        theta = (theta + d0).clamp(-30.0, 30.0);
        phi = (phi + d1).clamp(-30.0, 30.0);
        if d0.abs() < 1e-12 && d1.abs() < 1e-12 {
            break;
        }
    }
    sigmoid(theta)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(win: f64, len_a: f64, len_b: f64) -> Judgement {
        Judgement {
            win: Some(win),
            followed_position: Some(false),
            len_a,
            len_b,
        }
    }

    #[test]
    fn equal_lengths_leave_the_win_rate_as_it_is() {
        // 7 wins, 2 ties, 3 losses, every pair equally long.
        let ys = [1., 1., 1., 1., 1., 1., 1., 0.5, 0.5, 0., 0., 0.];
        let d = vec![0.0; ys.len()];
        let lc = length_controlled_win_rate(&d, &ys);
        assert!((lc - mean(&ys)).abs() < 1e-9, "{lc} vs {}", mean(&ys));
        // Same when every difference is the same nonzero value: a constant
        // gap carries no information about length (no spread).
        let lc = length_controlled_win_rate(&[40.0; 12], &ys);
        assert!((lc - mean(&ys)).abs() < 1e-9, "{lc}");
    }

    #[test]
    fn a_judge_that_likes_longer_answers_is_corrected_towards_even() {
        // A wins exactly when A is the longer answer, and A is usually
        // longer: raw win rate 0.75, but at equal length the judge has no
        // preference beyond length, so the LC rate falls towards 0.5.
        let mut judged = Vec::new();
        for i in 0..40 {
            let longer = i % 4 != 0; // 30 of 40 pairs A is longer
            let gap = 10.0 + (i % 7) as f64;
            let (la, lb) = if longer {
                (50.0 + gap, 50.0)
            } else {
                (50.0, 50.0 + gap)
            };
            // one in each group goes against length, so the fit is finite
            let against_length = i % 10 == 3 || i % 10 == 4;
            let win = if longer != against_length { 1.0 } else { 0.0 };
            judged.push(j(win, la, lb));
        }
        let raw = mean(&judged.iter().map(|j| j.win.unwrap()).collect::<Vec<_>>());
        let s = summarise(&judged, 500, 7);
        let lc = s.length_controlled.unwrap();
        assert!(raw > 0.6, "{raw}");
        assert!(
            lc.value < raw - 0.1,
            "LC {} should be well below raw {raw}",
            lc.value
        );
        assert!(lc.ci_low <= lc.value && lc.value <= lc.ci_high, "{lc:?}");
        // and the mirror image moves the other way
        let mirrored: Vec<_> = judged
            .iter()
            .map(|x| j(1.0 - x.win.unwrap(), x.len_a, x.len_b))
            .collect();
        let m = summarise(&mirrored, 500, 7).length_controlled.unwrap();
        assert!(
            (m.value - (1.0 - lc.value)).abs() < 1e-6,
            "{} vs {}",
            m.value,
            lc.value
        );
    }

    #[test]
    fn counts_rates_parse_failures_and_the_sign_test() {
        let mut judged = vec![j(1.0, 5., 5.); 9];
        judged.push(j(0.0, 5., 5.));
        judged.extend(vec![j(0.5, 5., 5.); 2]);
        judged[10].followed_position = Some(true);
        judged.push(Judgement {
            win: None,
            followed_position: None,
            len_a: 5.,
            len_b: 5.,
        });
        let s = summarise(&judged, 200, 1);
        assert_eq!((s.pairs, s.parse_failures), (13, 1));
        assert_eq!((s.a_wins, s.ties, s.b_wins), (9, 2, 1));
        assert!((s.a_win_rate.value - 9.0 / 12.0).abs() < 1e-12);
        assert!((s.win_rate.value - 10.0 / 12.0).abs() < 1e-12);
        assert!((s.position_bias.value - 1.0 / 12.0).abs() < 1e-12);
        // 9 wins vs 1 loss: 2 * (1 + 10) / 1024 (scipy.stats.binomtest(9, 10).pvalue)
        assert!(
            (s.sign_test_p - 0.021484375).abs() < 1e-12,
            "{}",
            s.sign_test_p
        );
        assert!(
            s.a_win_rate.ci_low < s.a_win_rate.value && s.a_win_rate.value < s.a_win_rate.ci_high
        );
    }
}
