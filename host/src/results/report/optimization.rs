//! An optimization run as text: the splits, every candidate (decision,
//! validation score with CI, the paired test against the incumbent), the
//! held-out test of the starting and the best prompt with the validation →
//! test gap, what it spent, and the two prompts. `show <run>` prints it;
//! `list` prints one line per run.

use std::fmt::Write;

use crate::results::optimization::{Candidate, Decision, OptimizationRun};

/// A p-value as the optimization views print it.
pub(crate) fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A prompt on one line: newlines shown as ⏎, cut to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    super::flatten(s, max, "⏎")
}

/// The held-out gain beside the validation gain, in one line.
fn gains(t: &crate::results::optimization::TestResult) -> String {
    format!(
        "gain on test {:+.3} [{:+.3}, {:+.3}], p {} ({}) · gain on validation {:+.3} · validation → test gap {:+.3}",
        t.paired.delta,
        t.paired.delta_ci.0,
        t.paired.delta_ci.1,
        fmt_p(t.paired.p_value),
        t.paired.test,
        t.validation_delta,
        t.validation_delta - t.paired.delta
    )
}

/// `list`: one line per run.
pub fn list_table(runs: &[OptimizationRun]) -> String {
    let mut out = String::new();
    for r in runs {
        let test = r.test.as_ref().map_or(String::new(), |t| {
            format!(
                "  test {:.3} → {:.3} (p {})",
                t.start.mean,
                t.best.mean,
                fmt_p(t.paired.p_value)
            )
        });
        let _ = writeln!(
            out,
            "  {:<38}  {:<9}  {} iterations  {}{}",
            r.id,
            r.status.to_string(),
            r.iterations_done,
            r.stop_reason.as_deref().unwrap_or("-"),
            test
        );
    }
    out
}

/// `show <run>`: the trajectory and the held-out proof.
pub fn text(run: &OptimizationRun, rows: &[Candidate]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "optimization {}  ({}{})",
        run.id,
        run.status,
        run.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  optimises method param `{}` for {} · optimizer {} · task model {} · interviewer {}",
        run.param, run.metric, run.optimizer, run.task_model, run.interviewer_model
    );
    let selecting_on_train = run.splits.validation == run.splits.train;
    let _ = writeln!(
        out,
        "  splits (seed {}): train {} · validation {} · test {} (touched once, at the end){}",
        run.seed,
        run.splits.train.len(),
        if selecting_on_train {
            0
        } else {
            run.splits.validation.len()
        },
        run.splits.test.len(),
        if selecting_on_train {
            " · SELECTING ON TRAIN: validation gains are overfit"
        } else {
            ""
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:>4}  {:<9}  {:>23}  {:>24}  {:>7}  prompt",
        "it.c",
        "decision",
        format!("validation {}", run.metric),
        "Δ vs incumbent [95% CI]",
        "p"
    );
    for r in rows {
        let val = r.validation.as_ref().map_or("-".to_string(), |s| {
            format!("{:.3} [{:.3}, {:.3}]", s.mean, s.ci_low, s.ci_high)
        });
        let (delta, pv) = r
            .paired
            .as_ref()
            .map_or(("-".to_string(), "-".to_string()), |m| {
                (
                    format!(
                        "{:+.3} [{:+.3}, {:+.3}]",
                        m.delta, m.delta_ci.0, m.delta_ci.1
                    ),
                    fmt_p(m.p_value),
                )
            });
        let mark = if (r.iteration, r.candidate) == run.best_at {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            out,
            "{mark} {:>2}.{:<1}  {:<9}  {:>23}  {:>24}  {:>7}  {}",
            r.iteration,
            r.candidate,
            r.decision.to_string(),
            val,
            delta,
            pv,
            one_line(&r.prompt, 60)
        );
        if matches!(r.decision, Decision::Gated | Decision::Invalid)
            && let Some(why) = &r.reason
        {
            let _ = writeln!(out, "          {}", one_line(why, 110));
        }
    }
    let asks: usize = rows.iter().map(|r| r.interviews.len()).sum();
    let reasks: usize = rows
        .iter()
        .flat_map(|r| &r.interviews)
        .filter(|i| i.feedback.is_some())
        .count();
    let _ = writeln!(
        out,
        "  (* the incumbent; accepted only when the paired gain on validation is significant)"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  stopped: {} · {} iterations · {} asks of the optimizer ({} re-asks)",
        run.stop_reason.as_deref().unwrap_or("(running)"),
        run.iterations_done,
        asks,
        reasks
    );
    let s = &run.spend;
    let _ = writeln!(
        out,
        "  spent: task model {} calls, {} tokens · interviewer {} calls, {} tokens · {:.0} s",
        s.task_calls, s.task_tokens, s.interviewer_calls, s.interviewer_tokens, run.seconds
    );
    if let Some(t) = &run.test {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  held-out test ({} examples, {}):",
            t.paired.n, run.metric
        );
        let _ = writeln!(
            out,
            "    starting prompt  {:.3} [{:.3}, {:.3}]   ({})",
            t.start.mean, t.start.ci_low, t.start.ci_high, t.start_experiment
        );
        let _ = writeln!(
            out,
            "    best prompt      {:.3} [{:.3}, {:.3}]   ({})",
            t.best.mean, t.best.ci_low, t.best.ci_high, t.best_experiment
        );
        let _ = writeln!(out, "    {}", gains(t));
        let verdict = if run.best_at == (0, 0) {
            "no candidate beat the starting prompt on validation: the starting prompt stands"
        } else if t.paired.delta > 0.0 && t.paired.p_value < 0.05 {
            "the gain holds on data the optimizer never saw"
        } else {
            "the validation gain is not confirmed on the test split (overfit to validation, or too few examples)"
        };
        let _ = writeln!(out, "    → {verdict}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  starting prompt:\n{}", indent(&run.start_prompt));
    if run.best_prompt != run.start_prompt {
        let _ = writeln!(out, "  best prompt:\n{}", indent(&run.best_prompt));
    }
    out
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    │ {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The starting → best prompt as a unified line diff (`-` removed, `+`
/// added, ` ` kept).
pub fn prompt_diff(start: &str, best: &str) -> String {
    let diff = similar::TextDiff::from_lines(start, best);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        let line = change.value();
        let _ = write!(out, "{sign} {line}");
        if !line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "⏎")
}

/// `report <optimization>`: the run, the trajectory table and chart, the
/// held-out test and the prompt diff.
pub fn write(
    dir: &std::path::Path,
    run: &OptimizationRun,
    rows: &[Candidate],
    command: &str,
) -> anyhow::Result<super::page::Written> {
    use super::page::{Page, Section};

    let mut trajectory = String::from(
        "| it.cand | decision | validation (95% CI) | Δ vs incumbent (95% CI) | p | prompt |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let val = r.validation.as_ref().map_or("-".into(), |s| {
            format!("{:.3} [{:.3}, {:.3}]", s.mean, s.ci_low, s.ci_high)
        });
        let (delta, pv) = r.paired.as_ref().map_or(("-".into(), "-".into()), |m| {
            (
                format!(
                    "{:+.3} [{:+.3}, {:+.3}]",
                    m.delta, m.delta_ci.0, m.delta_ci.1
                ),
                fmt_p(m.p_value),
            )
        });
        let _ = writeln!(
            trajectory,
            "| {}.{}{} | {} | {val} | {delta} | {pv} | {} |",
            r.iteration,
            r.candidate,
            if (r.iteration, r.candidate) == run.best_at {
                " *"
            } else {
                ""
            },
            r.decision,
            cell(&one_line(&r.prompt, 80))
        );
    }
    let mut sections = vec![Section {
        heading: "Trajectory".into(),
        table: trajectory,
        note: "`*` marks the incumbent. A candidate is accepted only when its paired gain over the incumbent on the validation split is significant (exact McNemar for 0/1 scores, a permutation test otherwise; Holm across an iteration's candidates).".into(),
    }];
    if let Some(t) = &run.test {
        sections.push(Section {
            heading: format!("Held-out test ({} examples)", t.paired.n),
            table: format!(
                "| prompt | {m} (95% CI) | experiment |\n|---|---|---|\n| starting | {:.3} [{:.3}, {:.3}] | `{}` |\n| best | {:.3} [{:.3}, {:.3}] | `{}` |\n",
                t.start.mean,
                t.start.ci_low,
                t.start.ci_high,
                t.start_experiment,
                t.best.mean,
                t.best.ci_low,
                t.best.ci_high,
                t.best_experiment,
                m = run.metric
            ),
            note: format!("{}.", gains(t)),
        });
    }
    sections.push(Section {
        heading: "Starting → best prompt".into(),
        table: format!(
            "```diff\n{}```\n",
            prompt_diff(&run.start_prompt, &run.best_prompt)
        ),
        note: String::new(),
    });
    let page = Page {
        title: format!("optimization {}", run.id),
        provenance: vec![
            format!(
                "optimization `{}` ({}), config {} (sha256 {}), seed {}",
                run.id, run.status, run.config_path, run.config_sha256, run.seed
            ),
            format!(
                "method param `{}` optimised for {} by {} (interviewer {}), task model {}",
                run.param, run.metric, run.optimizer, run.interviewer_model, run.task_model
            ),
            format!(
                "splits: train {} · validation {} · test {}; stopped: {}",
                run.splits.train.len(),
                run.splits.validation.len(),
                run.splits.test.len(),
                run.stop_reason.as_deref().unwrap_or("(running)")
            ),
            format!("made by `{command}`"),
        ],
        sections,
        charts: vec![trajectory_chart(run, rows)?],
    };
    super::page::write_page(dir, &page)
}

/// The run's trajectory chart: every evaluated candidate's validation
/// score (the report page and `view` draw the same one).
pub fn trajectory_chart(
    run: &OptimizationRun,
    rows: &[Candidate],
) -> anyhow::Result<super::page::Chart> {
    use super::charts::{self, TrajectoryPoint};
    let points: Vec<TrajectoryPoint> = rows
        .iter()
        .filter_map(|r| {
            let s = r.validation.as_ref()?;
            Some(TrajectoryPoint {
                x: f64::from(r.iteration) + 0.12 * f64::from(r.candidate),
                mean: s.mean,
                ci: (s.ci_low, s.ci_high),
                kept: matches!(r.decision, Decision::Baseline | Decision::Accepted),
            })
        })
        .collect();
    Ok(super::page::Chart {
        file: "trajectory.svg".into(),
        caption: format!(
            "Validation {} of every evaluated candidate, with the incumbent's path",
            run.metric
        ),
        svg: charts::trajectory(&run.metric, &points)?,
    })
}

/// An optimization suite's table: each cell before (its starting prompt)
/// and after (its best prompt) on validation and on its held-out test.
pub fn suite_text(group: &crate::results::records::Group, runs: &[OptimizationRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "optimization suite {} ({} cells, axes: {})",
        group.id,
        runs.len(),
        group.axes.join(" × ")
    );
    let metric = runs.first().map_or("score", |r| r.metric.as_str());
    let _ = writeln!(
        out,
        "  {:<28}  {:>5}  {:<15}  {:>17}  {:>17}  {:>24}  {:>7}",
        "cell",
        "iters",
        "stopped",
        format!("val {metric} gain"),
        format!("test {metric} start→best"),
        "test gain [95% CI]",
        "p"
    );
    for (m, r) in group.members.iter().zip(runs) {
        let (test, gain, pv, vd) = match &r.test {
            Some(t) => (
                format!("{:.3}→{:.3}", t.start.mean, t.best.mean),
                format!(
                    "{:+.3} [{:+.3}, {:+.3}]",
                    t.paired.delta, t.paired.delta_ci.0, t.paired.delta_ci.1
                ),
                fmt_p(t.paired.p_value),
                format!("{:+.3}", t.validation_delta),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "  {:<28}  {:>5}  {:<15}  {:>17}  {:>17}  {:>24}  {:>7}",
            one_line(&m.labels.join(", "), 28),
            r.iterations_done,
            one_line(
                r.stop_reason.as_deref().unwrap_or(&r.status.to_string()),
                15
            ),
            vd,
            test,
            gain,
            pv
        );
    }
    let _ = writeln!(
        out,
        "  each cell is its own optimization run (`forge-host show <run>` for its trajectory):"
    );
    for (m, r) in group.members.iter().zip(runs) {
        let _ = writeln!(
            out,
            "    {:<28}  {}",
            one_line(&m.labels.join(", "), 28),
            r.id
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prompt_diff_marks_added_and_removed_lines() {
        let d = super::prompt_diff(
            "Question: {question}\nAnswer:",
            "Be brief.\nQuestion: {question}\nAnswer:",
        );
        assert_eq!(d, "+ Be brief.\n  Question: {question}\n  Answer:\n");
    }
}
