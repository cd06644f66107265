//! The alignment table (`forge-host align`, then `show`/`report` on its
//! group): one row per score of every axis with the base and the tuned
//! model's means and CIs, the paired difference (tuned − base) with its
//! CI and test; a verbosity row per axis that generates text; the judged
//! win rate of tuned over base, raw and length-controlled. Charts: each
//! axis's scores as bars, and answer lengths.

use std::path::Path;

use super::charts::{self, Series};
use super::fmt_score;
use super::page::{Chart, Page, Section, Written, write_page};
use crate::results::compare::{
    Comparison, MetricComparison, compare, compare_values, mcnemar_exact, seed,
};
use crate::results::pairwise::{PairwiseSummary, of_judging};
use crate::results::records::{Experiment, Group, GroupKind};
use crate::results::stats::{BOOTSTRAP_ITERATIONS, bootstrap_ci, mean};
use crate::results::store::Store;

/// One axis: the two experiments and their paired comparison.
pub struct Axis {
    pub name: String,
    pub base: (Experiment, Series),
    pub tuned: (Experiment, Series),
    pub comparison: Comparison,
    /// Completion tokens per answer, paired (None when neither generates).
    pub verbosity: Option<MetricComparison>,
    /// On a preference axis (both runs scored `pref_margin`): DPO's
    /// implicit reward of the tuned model against the base as reference.
    pub implicit_reward: Option<ImplicitReward>,
}

/// DPO's implicit reward on held-out pairs, with the base model as the
/// reference: `r(x, y) = β·(log π_tuned(y|x) − log π_base(y|x))`. Per pair
/// the reward margin `r(chosen) − r(rejected)` is `β·(margin_tuned −
/// margin_base)` of the stored `pref_margin` scores (chosen − rejected
/// log-probability); accuracy counts margins > 0, as TRL's
/// `rewards/accuracies`.
pub struct ImplicitReward {
    pub beta: f64,
    pub n: usize,
    pub accuracy: (f64, f64, f64),
    pub margin: (f64, f64, f64),
    /// Exact two-sided sign test of positive against negative margins.
    pub sign_test_p: f64,
}

fn implicit_reward(base: &Series, tuned: &Series, beta: f64, seed: u64) -> Option<ImplicitReward> {
    let margins = |s: &Series| -> std::collections::BTreeMap<String, f64> {
        s.runs
            .iter()
            .filter_map(|r| Some((r.example_id.clone(), *r.scores.get("pref_margin")?)))
            .collect()
    };
    let (mb, mt) = (margins(base), margins(tuned));
    let rewards: Vec<f64> = mb
        .iter()
        .filter_map(|(id, b)| Some(beta * (mt.get(id)? - b)))
        .collect();
    if rewards.is_empty() {
        return None;
    }
    let acc: Vec<f64> = rewards.iter().map(|&r| f64::from(r > 0.0)).collect();
    let with_ci = |xs: &[f64]| {
        let (lo, hi) = bootstrap_ci(xs, BOOTSTRAP_ITERATIONS, seed);
        (mean(xs), lo, hi)
    };
    let up = rewards.iter().filter(|&&r| r > 0.0).count();
    let down = rewards.iter().filter(|&&r| r < 0.0).count();
    Some(ImplicitReward {
        beta,
        n: rewards.len(),
        accuracy: with_ci(&acc),
        margin: with_ci(&rewards),
        sign_test_p: mcnemar_exact(up, down),
    })
}

/// `beta` of the alignment config (TRL's default 0.1 when absent).
fn beta_of(group: &Group) -> f64 {
    toml::from_str::<toml::Table>(&group.config_text)
        .ok()
        .and_then(|t| t.get("beta").and_then(|v| v.as_float()))
        .unwrap_or(0.1)
}

pub struct Alignment {
    pub group: Group,
    pub axes: Vec<Axis>,
    /// The judging run and its numbers (A = tuned, B = base).
    pub judge: Option<(Experiment, PairwiseSummary)>,
}

/// Reads an alignment group's experiments and compares them.
pub fn gather(store: &Store, group: &Group) -> anyhow::Result<Alignment> {
    anyhow::ensure!(
        group.kind == GroupKind::Alignment,
        "{} is not an alignment group",
        group.id
    );
    let experiment =
        |m: &crate::results::records::GroupMember| -> anyhow::Result<(Experiment, Series)> {
            let id = m.experiment_id.as_deref().ok_or_else(|| {
                anyhow::anyhow!("group {}: cell {:?} has not run", group.id, m.labels)
            })?;
            let e = store.experiment(id)?;
            let summary = store.summary(id)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{id} has no summary yet ({}): run `forge-host align` again",
                    e.status
                )
            })?;
            let series = Series {
                label: m.labels.join(" "),
                summary,
                runs: store.run_scores(id)?,
            };
            Ok((e, series))
        };
    let mut axes = Vec::new();
    let mut judge = None;
    let mut i = 0;
    while i < group.members.len() {
        let m = &group.members[i];
        if m.labels.first().map(String::as_str) == Some("judge") {
            let (e, _) = experiment(m)?;
            let p = of_judging(store, &e)?;
            judge = Some((e, p));
            i += 1;
            continue;
        }
        let next = group.members.get(i + 1).ok_or_else(|| {
            anyhow::anyhow!("group {}: axis {:?} has one model only", group.id, m.labels)
        })?;
        let (base, tuned) = (experiment(m)?, experiment(next)?);
        // Seed 0, as `forge-host compare`: the table repeats its numbers.
        let comparison = compare(&base.0, &base.1.runs, &tuned.0, &tuned.1.runs, 0)?;
        let lengths = |s: &Series| -> std::collections::BTreeMap<String, f64> {
            s.runs
                .iter()
                .filter(|r| r.answer.is_some() && r.error.is_none())
                .map(|r| (r.example_id.clone(), r.completion_tokens as f64))
                .collect()
        };
        let (lb, lt) = (lengths(&base.1), lengths(&tuned.1));
        let (xb, xt): (Vec<f64>, Vec<f64>) = lb
            .iter()
            .filter_map(|(id, b)| Some((*b, *lt.get(id)?)))
            .unzip();
        let generates = xb.iter().chain(&xt).any(|&t| t > 0.0);
        let implicit_reward = implicit_reward(&base.1, &tuned.1, beta_of(group), seed(&base.0));
        axes.push(Axis {
            implicit_reward,
            name: m.labels[0].clone(),
            verbosity: generates
                .then(|| compare_values("completion_tokens", &xb, &xt, seed(&base.0))),
            base,
            tuned,
            comparison,
        });
        i += 2;
    }
    Ok(Alignment {
        group: group.clone(),
        axes,
        judge,
    })
}

fn ci(name: &str, mean: f64, lo: f64, hi: f64) -> String {
    format!(
        "{} [{}, {}]",
        fmt_score(name, mean),
        fmt_score(name, lo),
        fmt_score(name, hi)
    )
}

fn p(m: &MetricComparison) -> String {
    format!("{} p={:.3}", m.test, m.p_value)
}

/// The one table, as Markdown (also readable in a terminal).
pub fn table(a: &Alignment) -> String {
    let mut o = String::from(
        "| axis | measure | base | tuned | Δ tuned − base [95% CI] | paired test |\n|---|---|---|---|---|---|\n",
    );
    for ax in &a.axes {
        for m in ax
            .comparison
            .metrics
            .iter()
            .filter(|m| m.name != "latency_ms")
        {
            let (sb, st) = (&ax.base.1.summary, &ax.tuned.1.summary);
            let (Some(mb), Some(mt)) = (sb.metrics.get(&m.name), st.metrics.get(&m.name)) else {
                continue;
            };
            o += &format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                ax.name,
                m.name,
                ci(&m.name, mb.mean, mb.ci_low, mb.ci_high),
                ci(&m.name, mt.mean, mt.ci_low, mt.ci_high),
                ci(&m.name, m.delta, m.delta_ci.0, m.delta_ci.1),
                p(m)
            );
        }
        if let Some(r) = &ax.implicit_reward {
            o += &format!(
                "| {} | DPO implicit reward accuracy (tuned vs base as reference) | — | {:.1} [{:.1}, {:.1}] | vs 50: {:+.1} | sign test p={:.3} (n {}) |\n",
                ax.name,
                100.0 * r.accuracy.0,
                100.0 * r.accuracy.1,
                100.0 * r.accuracy.2,
                100.0 * r.accuracy.0 - 50.0,
                r.sign_test_p,
                r.n
            );
            o += &format!(
                "| {} | DPO implicit reward margin (β = {}) | — | {:.4} [{:.4}, {:.4}] | | |\n",
                ax.name, r.beta, r.margin.0, r.margin.1, r.margin.2
            );
        }
        if let (Some(v), Some(vb), Some(vt)) = (
            &ax.verbosity,
            &ax.base.1.summary.verbosity,
            &ax.tuned.1.summary.verbosity,
        ) {
            let rel = if v.mean_a > 0.0 {
                format!(" ({:+.0}%)", 100.0 * v.delta / v.mean_a)
            } else {
                String::new()
            };
            o += &format!(
                "| {} | verbosity: tokens per answer | {:.1} [{:.1}, {:.1}] | {:.1} [{:.1}, {:.1}] | {:+.1} [{:+.1}, {:+.1}]{rel} | {} |\n",
                ax.name,
                vb.mean,
                vb.mean_ci.0,
                vb.mean_ci.1,
                vt.mean,
                vt.mean_ci.0,
                vt.mean_ci.1,
                v.delta,
                v.delta_ci.0,
                v.delta_ci.1,
                p(v)
            );
        }
    }
    if let Some((e, s)) = &a.judge {
        let rubric = toml::from_str::<toml::Table>(&e.config_text)
            .ok()
            .and_then(|t| {
                t.get("method")?
                    .get("params")?
                    .get("rubric")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "helpful".into());
        let rate = |r: &crate::results::pairwise::Rate| {
            format!(
                "{:.1} [{:.1}, {:.1}]",
                100.0 * r.value,
                100.0 * r.ci_low,
                100.0 * r.ci_high
            )
        };
        if s.pairs == s.parse_failures {
            o += &format!(
                "| judge ({rubric}, {}) | win rate of tuned | — | no verdict parsed | | {} of {} pairs unparsed |\n",
                e.model.source, s.parse_failures, s.pairs
            );
            return o;
        }
        o += &format!(
            "| judge ({rubric}, {}) | win rate of tuned (ties ½) | — | {} | vs 50: {:+.1} | sign test p={:.3} ({} wins, {} ties, {} losses) |\n",
            e.model.source,
            rate(&s.win_rate),
            100.0 * s.win_rate.value - 50.0,
            s.sign_test_p,
            s.a_wins,
            s.ties,
            s.b_wins
        );
        if let Some(lc) = &s.length_controlled {
            o += &format!(
                "| judge ({rubric}) | length-controlled win rate | — | {} | vs 50: {:+.1} | tuned answers {:+.1} tokens longer |\n",
                rate(lc),
                100.0 * lc.value - 50.0,
                s.mean_length_diff
            );
        }
        o += &format!(
            "| judge ({rubric}) | position bias / parse failures | — | {} | | {} of {} pairs unparsed |\n",
            rate(&s.position_bias),
            s.parse_failures,
            s.pairs
        );
    }
    o
}

const NOTE: &str = "Scores ×100 except log-prob margins (nats) and token counts. Δ is the paired difference over the examples both models ran; 0/1 scores use exact McNemar, others a sign-flip permutation test; CIs are seeded bootstrap intervals. The judge compared each pair in both orders (disagreement = tie); its win rate is tuned over base, 50 = no preference; the length-controlled rate is the judge's preference at equal answer length (AlpacaEval 2's regression). Parse failures are left out of the judge's rates and counted here. DPO's implicit reward takes the base model as the reference policy: β·(log π_tuned − log π_base) of each reply; its accuracy is the share of held-out pairs where the chosen reply's reward beats the rejected one's (TRL's rewards/accuracies).";

/// `report.md`, `report.html` and a chart per axis under `dir`.
pub fn write(dir: &Path, a: &Alignment, command: &str) -> anyhow::Result<Written> {
    let mut provenance = vec![
        format!("group `{}` from `{}`", a.group.id, a.group.config_path),
        format!("command: `{command}`"),
    ];
    for ax in &a.axes {
        provenance.push(format!(
            "{}: base `{}`, tuned `{}` ({} shared examples, dataset {})",
            ax.name,
            ax.base.0.id,
            ax.tuned.0.id,
            ax.comparison.shared_examples,
            ax.base.0.dataset_path
        ));
    }
    if let Some((e, _)) = &a.judge {
        provenance.push(format!("judge: `{}` (model {})", e.id, e.model.source));
    }
    let mut charts_out = Vec::new();
    for ax in &a.axes {
        let metrics: Vec<String> = ax
            .base
            .0
            .score_names
            .iter()
            .filter(|n| !super::is_unscaled(n))
            .cloned()
            .collect();
        let series = [
            Series {
                label: "base".into(),
                summary: ax.base.1.summary.clone(),
                runs: ax.base.1.runs.clone(),
            },
            Series {
                label: "tuned".into(),
                summary: ax.tuned.1.summary.clone(),
                runs: ax.tuned.1.runs.clone(),
            },
        ];
        if !metrics.is_empty() {
            charts_out.push(Chart {
                file: format!("{}-scores.svg", ax.name),
                caption: format!("{}: scores of base and tuned, 95% CIs", ax.name),
                svg: charts::metric_bars(&series, &metrics)?,
            });
        }
        if ax.verbosity.is_some() {
            charts_out.push(Chart {
                file: format!("{}-tokens.svg", ax.name),
                caption: format!("{}: tokens per example, base and tuned", ax.name),
                svg: charts::tokens_per_example(&series)?,
            });
        }
    }
    write_page(
        dir,
        &Page {
            title: format!("Alignment: {}", a.group.name),
            provenance,
            sections: vec![Section {
                heading: "Base vs tuned".into(),
                table: table(a),
                note: NOTE.into(),
            }],
            charts: charts_out,
        },
    )
}

/// What `show` prints for an alignment group.
pub fn text(a: &Alignment) -> String {
    format!(
        "alignment group {}  ({})\n\n{}\n{NOTE}\n",
        a.group.id,
        a.group.config_path,
        table(a)
    )
}
