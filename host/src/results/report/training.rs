//! Views of stored training runs: the `list` section, `show`'s summary
//! and a training sweep's grid as text; `report`'s pages (loss, rewards
//! and accuracy curves, per step and per validation pass) written by the
//! same page and chart code as experiment reports.

use std::path::Path;

use anyhow::Context;

use super::charts::{self, Line};
use super::page::{self, Chart, Page, Section, Written};
use crate::results::records::Group;
use crate::results::training::{EvalRow, StepRow, TrainingRun};

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        Some(_) => "NaN".into(),
        None => "—".into(),
    }
}

/// The file name of a path (what `list` has room for).
fn file_name(p: &str) -> &str {
    Path::new(p)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(p)
}

/// `list`'s "training runs" section: id, status, steps done/total, final
/// validation loss and reward accuracy, model, data.
pub fn list_table(runs: &[TrainingRun]) -> String {
    let mut o = format!(
        "{:<12}  {:<7}  {:>11}  {:>8}  {:>7}  {:<24}  {}\n",
        "id", "status", "steps", "val loss", "val acc", "model", "data"
    );
    for r in runs {
        o += &format!(
            "{:<12}  {:<7}  {:>11}  {:>8}  {:>7}  {:<24}  {}\n",
            r.id,
            r.status.to_string(),
            format!("{}/{}", r.steps_done, r.total_steps),
            fmt_opt(r.final_metric("loss"), 4),
            fmt_opt(r.final_metric("rewards/accuracies"), 3),
            r.model,
            file_name(&r.data_path)
        );
    }
    o
}

/// The validation passes as a Markdown table.
fn eval_table(evals: &[EvalRow]) -> String {
    const COLS: [&str; 5] = [
        "loss",
        "rewards/accuracies",
        "rewards/margins",
        "rewards/chosen",
        "rewards/rejected",
    ];
    let mut o = format!(
        "| step | {} |\n|---|{}\n",
        COLS.join(" | "),
        "---|".repeat(5)
    );
    for e in evals {
        let cells: Vec<String> = COLS
            .iter()
            .map(|k| fmt_opt(e.metrics.get(*k).copied(), 4))
            .collect();
        o += &format!("| {} | {} |\n", e.step, cells.join(" | "));
    }
    o
}

/// Every hyper-parameter as `key | value` rows (the `[train]` table with
/// `[train.lora]` flattened as `lora.rank`, ...).
fn hyperparameter_rows(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                hyperparameter_rows(x, &key, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.into(), s.clone())),
        serde_json::Value::Null => out.push((prefix.into(), "—".into())),
        other => out.push((prefix.into(), other.to_string())),
    }
}

fn run_table(r: &TrainingRun) -> String {
    let rows = vec![
        ("status".to_string(), status_line(r)),
        (
            "steps".into(),
            format!("{} of {}", r.steps_done, r.total_steps),
        ),
        (
            "pairs".into(),
            format!(
                "{} train, {} validation ({} skipped with an empty side; truncated: {} prompts, {} chosen, {} rejected)",
                r.train_pairs,
                r.validation_pairs,
                r.skipped_empty,
                r.truncated.prompts,
                r.truncated.chosen,
                r.truncated.rejected
            ),
        ),
        (
            "model".into(),
            format!("{} (sha256 {})", r.model, r.model_sha256),
        ),
        (
            "data".into(),
            format!("{} (sha256 {})", r.data_path, r.data_sha256),
        ),
        (
            "config".into(),
            format!("{} (sha256 {})", r.config_path, r.config_sha256),
        ),
        (
            "reference log-probs".into(),
            format!(
                "{} computed, {} read from the cache",
                r.reference_computed(),
                r.reference_cached()
            ),
        ),
        ("attempts".into(), attempts_line(r)),
        ("wall time".into(), format!("{:.1} s", r.seconds)),
        (
            "peak RSS".into(),
            r.peak_rss_bytes.map_or("—".into(), |b| {
                format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
            }),
        ),
        ("adapter".into(), r.output.clone()),
    ];
    key_value_table(&rows)
}

fn key_value_table(rows: &[(String, String)]) -> String {
    let mut o = String::from("| field | value |\n|---|---|\n");
    for (k, v) in rows {
        o += &format!("| {k} | {} |\n", v.replace('|', "/"));
    }
    o
}

/// The `[train]` table as run (defaults filled in), one row per key.
fn hyperparameter_table(r: &TrainingRun) -> String {
    let mut rows = Vec::new();
    hyperparameter_rows(&r.hyperparameters, "", &mut rows);
    key_value_table(&rows)
}

fn status_line(r: &TrainingRun) -> String {
    match (&r.error, r.status) {
        (Some(e), crate::results::training::TrainStatus::Failed) => {
            format!("failed: {}", e.replace('\n', " "))
        }
        _ => r.status.to_string(),
    }
}

fn attempts_line(r: &TrainingRun) -> String {
    r.attempts
        .iter()
        .map(|a| match a.resumed_from {
            Some(s) => format!("{} (resumed from step {s})", a.started_at),
            None => format!("{} (fresh)", a.started_at),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `show <run>`: the run, its hyper-parameters and hashes, the final
/// validation metrics, the validation passes, the last training step.
pub fn summary_text(r: &TrainingRun, evals: &[EvalRow], last_step: Option<&StepRow>) -> String {
    let mut o = format!(
        "training run {}  {}  ({} {})\n\n",
        r.id,
        status_line(r),
        r.method,
        r.config_path
    );
    let mut rows = vec![
        ("steps", format!("{} of {}", r.steps_done, r.total_steps)),
        ("model", format!("{} (sha256 {})", r.model, r.model_sha256)),
        (
            "data",
            format!("{} (sha256 {})", r.data_path, r.data_sha256),
        ),
        ("config sha256", r.config_sha256.clone()),
        (
            "pairs",
            format!(
                "{} train, {} validation, {} skipped (empty side), truncated {} prompts / {} chosen / {} rejected",
                r.train_pairs,
                r.validation_pairs,
                r.skipped_empty,
                r.truncated.prompts,
                r.truncated.chosen,
                r.truncated.rejected
            ),
        ),
        (
            "reference",
            format!(
                "{} computed, {} read from the cache",
                r.reference_computed(),
                r.reference_cached()
            ),
        ),
        ("attempts", attempts_line(r)),
        (
            "wall time",
            format!(
                "{:.1} s{}",
                r.seconds,
                r.peak_rss_bytes.map_or(String::new(), |b| format!(
                    ", peak RSS {:.0} MiB",
                    b as f64 / (1024.0 * 1024.0)
                ))
            ),
        ),
        ("adapter", r.output.clone()),
    ];
    let mut hp = Vec::new();
    hyperparameter_rows(&r.hyperparameters, "", &mut hp);
    // Wrapped at ~100 columns under their label.
    let mut lines = vec![String::new()];
    for (k, v) in hp.into_iter().filter(|(k, _)| k != "model" && k != "data") {
        let item = format!("{k}={v}");
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.len() + item.len() > 80 {
            lines.push(item);
        } else {
            if !last.is_empty() {
                last.push_str("  ");
            }
            last.push_str(&item);
        }
    }
    rows.push(("hyper-parameters", lines.join(&format!("\n{:>16}  ", ""))));
    for (k, v) in rows {
        o += &format!("{k:>16}  {v}\n");
    }
    if let Some(v) = &r.final_validation {
        o += &format!("\nfinal validation (step {}):\n", v.step);
        for (k, x) in &v.metrics {
            o += &format!("  {k:<20} {}\n", fmt_opt(Some(*x), 4));
        }
    }
    if !evals.is_empty() {
        o += &format!(
            "\n{:>6}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}\n",
            "step", "loss", "acc", "margins", "chosen", "rejected"
        );
        for e in evals {
            let m = |k: &str| fmt_opt(e.metrics.get(k).copied(), 4);
            o += &format!(
                "{:>6}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}\n",
                e.step,
                m("loss"),
                m("rewards/accuracies"),
                m("rewards/margins"),
                m("rewards/chosen"),
                m("rewards/rejected")
            );
        }
    }
    if let Some(s) = last_step {
        o += &format!(
            "\nlast step {}: loss {}, rewards/accuracies {}, lr {:.3e}, grad norm {}, {:.0} tok/s\n",
            s.step,
            fmt_opt(s.metrics.get("loss").copied(), 4),
            fmt_opt(s.metrics.get("rewards/accuracies").copied(), 3),
            s.metrics.get("learning_rate").copied().unwrap_or(f64::NAN),
            fmt_opt(s.metrics.get("grad_norm").copied(), 4),
            s.tokens_per_second
        );
    }
    o
}

/// A training sweep's grid: each cell's labels, status, steps, final
/// validation loss / reward accuracy / margins, seconds, and how many
/// reference log-probs it computed (0: all from the cache).
pub fn group_table(g: &Group, cells: &[Option<TrainingRun>]) -> String {
    let mut o = format!(
        "training sweep {}  ({} cells; axes {})\n\n",
        g.id,
        g.members.len(),
        g.axes.join(" × ")
    );
    let widths = super::axis_widths(g);
    for (a, w) in g.axes.iter().zip(&widths) {
        o += &format!("{a:<w$}  ");
    }
    o += &format!(
        "{:<12}  {:<7}  {:>9}  {:>8}  {:>7}  {:>8}  {:>8}  {:>9}\n",
        "run", "status", "steps", "val loss", "val acc", "margins", "seconds", "ref fwd"
    );
    for (m, run) in g.members.iter().zip(cells) {
        for (l, w) in m.labels.iter().zip(&widths) {
            o += &format!("{l:<w$}  ");
        }
        let Some(r) = run else {
            o += "(not run yet)\n";
            continue;
        };
        o += &format!(
            "{:<12}  {:<7}  {:>9}  {:>8}  {:>7}  {:>8}  {:>8.1}  {:>9}\n",
            r.id,
            r.status.to_string(),
            format!("{}/{}", r.steps_done, r.total_steps),
            fmt_opt(r.final_metric("loss"), 4),
            fmt_opt(r.final_metric("rewards/accuracies"), 3),
            fmt_opt(r.final_metric("rewards/margins"), 4),
            r.seconds,
            r.reference_computed()
        );
    }
    o += "\nval: the last validation pass; ref fwd: reference log-probs computed (0: all read from the cache)\n";
    o
}

/// A series of one metric from step rows or validation rows.
fn points<'a>(
    rows: impl Iterator<Item = (u64, &'a std::collections::BTreeMap<String, f64>)>,
    key: &str,
) -> Vec<(f64, f64)> {
    rows.filter_map(|(step, m)| Some((step as f64, *m.get(key)?)))
        .collect()
}

fn step_points(steps: &[StepRow], key: &str) -> Vec<(f64, f64)> {
    points(steps.iter().map(|s| (s.step, &s.metrics)), key)
}

fn eval_points(evals: &[EvalRow], key: &str) -> Vec<(f64, f64)> {
    points(evals.iter().map(|e| (e.step, &e.metrics)), key)
}

fn train_and_validation(
    name: &str,
    key: &str,
    color: usize,
    steps: &[StepRow],
    evals: &[EvalRow],
) -> [Line; 2] {
    [
        Line {
            label: format!("{name} (training)"),
            points: step_points(steps, key),
            color,
            markers: false,
        },
        Line {
            label: format!("{name} (validation)"),
            points: eval_points(evals, key),
            color,
            markers: true,
        },
    ]
}

fn chart(file: &str, caption: &str, svg: String) -> Chart {
    Chart {
        file: file.into(),
        caption: caption.into(),
        svg,
    }
}

/// The loss, rewards and accuracy charts of one run (its report page and
/// `view` show the same).
pub fn run_charts(steps: &[StepRow], evals: &[EvalRow]) -> anyhow::Result<Vec<Chart>> {
    let loss = charts::line_chart(
        "DPO loss",
        "optimizer step",
        "loss",
        None,
        &[
            Line {
                label: "training loss".into(),
                points: step_points(steps, "loss"),
                color: 0,
                markers: false,
            },
            Line {
                label: "validation loss".into(),
                points: eval_points(evals, "loss"),
                color: 1,
                markers: true,
            },
        ],
    )?;
    let rewards: Vec<Line> = [
        ("rewards/chosen", 2),
        ("rewards/rejected", 5),
        ("rewards/margins", 0),
    ]
    .into_iter()
    .flat_map(|(k, c)| train_and_validation(k, k, c, steps, evals))
    .collect();
    let rewards = charts::line_chart(
        "implicit rewards (β · log-ratio to the reference)",
        "optimizer step",
        "reward",
        None,
        &rewards,
    )?;
    let acc = charts::line_chart(
        "reward accuracy (chosen reward > rejected)",
        "optimizer step",
        "rewards/accuracies",
        Some((0.0, 1.05)),
        &train_and_validation("rewards/accuracies", "rewards/accuracies", 0, steps, evals),
    )?;
    Ok(vec![
        chart(
            "loss.svg",
            "DPO loss per training step (thin) and per validation pass (marked).",
            loss,
        ),
        chart(
            "rewards.svg",
            "Rewards of the chosen and rejected completions and their margin: training steps (thin), validation passes (marked).",
            rewards,
        ),
        chart(
            "accuracies.svg",
            "Share of pairs whose chosen completion gets the higher reward: training steps (thin), validation passes (marked).",
            acc,
        ),
    ])
}

fn write_rows_csv(dir: &Path, steps: &[StepRow], evals: &[EvalRow]) -> anyhow::Result<()> {
    let keys = |rows: &mut dyn Iterator<Item = &std::collections::BTreeMap<String, f64>>| {
        let mut k: Vec<String> = Vec::new();
        for m in rows {
            for name in m.keys() {
                if !k.contains(name) {
                    k.push(name.clone());
                }
            }
        }
        k
    };
    let num = |v: Option<&f64>| v.map_or(String::new(), |x| x.to_string());
    let path = dir.join("steps.csv");
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("{}", path.display()))?;
    let names = keys(&mut steps.iter().map(|s| &s.metrics));
    let mut head = vec!["step".to_string()];
    head.extend(names.iter().cloned());
    head.extend(["tokens_per_second", "tokens", "pairs", "seconds"].map(String::from));
    w.write_record(&head)?;
    for s in steps {
        let mut row = vec![s.step.to_string()];
        row.extend(names.iter().map(|n| num(s.metrics.get(n))));
        row.extend([
            s.tokens_per_second.to_string(),
            s.tokens.to_string(),
            s.pairs.to_string(),
            s.seconds.to_string(),
        ]);
        w.write_record(&row)?;
    }
    w.flush()?;
    let path = dir.join("evals.csv");
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("{}", path.display()))?;
    let names = keys(&mut evals.iter().map(|e| &e.metrics));
    let mut head = vec!["step".to_string()];
    head.extend(names.iter().cloned());
    w.write_record(&head)?;
    for e in evals {
        let mut row = vec![e.step.to_string()];
        row.extend(names.iter().map(|n| num(e.metrics.get(n))));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// `report <run>`: report.md, report.html, the charts, steps.csv and
/// evals.csv under `dir`.
pub fn write_run(
    dir: &Path,
    r: &TrainingRun,
    steps: &[StepRow],
    evals: &[EvalRow],
    command: &str,
) -> anyhow::Result<Written> {
    let page = Page {
        title: format!("training run {} ({})", r.id, r.method),
        provenance: vec![
            format!(
                "training run `{}` ({}, {} of {} steps), config {} (sha256 {})",
                r.id, r.status, r.steps_done, r.total_steps, r.config_path, r.config_sha256
            ),
            format!("model {} (sha256 {})", r.model, r.model_sha256),
            format!("data {} (sha256 {})", r.data_path, r.data_sha256),
            format!("made by `{command}`"),
        ],
        sections: vec![
            Section {
                heading: "Run".into(),
                table: run_table(r),
                note: String::new(),
            },
            Section {
                heading: "Hyper-parameters".into(),
                table: hyperparameter_table(r),
                note: String::new(),
            },
            Section {
                heading: "Validation".into(),
                table: eval_table(evals),
                note: "Means over the validation pairs, the adapter in eval mode (no dropout), against the cached reference log-probs.".into(),
            },
        ],
        charts: run_charts(steps, evals)?,
    };
    let written = page::write_page(dir, &page)?;
    write_rows_csv(dir, steps, evals)?;
    Ok(written)
}

/// One cell of a training sweep, as its report sees it.
pub struct CellRows {
    pub label: String,
    pub run: TrainingRun,
    pub steps: Vec<StepRow>,
    pub evals: Vec<EvalRow>,
}

/// `report <training sweep>`: the grid, and every cell's validation loss,
/// reward accuracy and training loss overlaid.
pub fn write_group(
    dir: &Path,
    g: &Group,
    cells: &[CellRows],
    command: &str,
) -> anyhow::Result<Written> {
    let per_cell = |key: &str, validation: bool| -> Vec<Line> {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| Line {
                label: c.label.clone(),
                points: if validation {
                    eval_points(&c.evals, key)
                } else {
                    step_points(&c.steps, key)
                },
                color: i,
                markers: validation,
            })
            .collect()
    };
    let charts = vec![
        chart(
            "validation_loss.svg",
            "Validation loss of each cell, per validation pass.",
            charts::line_chart(
                "validation loss",
                "optimizer step",
                "loss",
                None,
                &per_cell("loss", true),
            )?,
        ),
        chart(
            "validation_accuracy.svg",
            "Validation reward accuracy of each cell, per validation pass.",
            charts::line_chart(
                "validation reward accuracy",
                "optimizer step",
                "rewards/accuracies",
                Some((0.0, 1.05)),
                &per_cell("rewards/accuracies", true),
            )?,
        ),
        chart(
            "training_loss.svg",
            "Training loss of each cell, per step.",
            charts::line_chart(
                "training loss",
                "optimizer step",
                "loss",
                None,
                &per_cell("loss", false),
            )?,
        ),
    ];
    let mut table = format!(
        "| cell | run | status | steps | val loss | val acc | margins | seconds | reference computed |\n|{}\n",
        "---|".repeat(9)
    );
    for c in cells {
        let r = &c.run;
        table += &format!(
            "| {} | {} | {} | {}/{} | {} | {} | {} | {:.1} | {} |\n",
            c.label,
            r.id,
            r.status,
            r.steps_done,
            r.total_steps,
            fmt_opt(r.final_metric("loss"), 4),
            fmt_opt(r.final_metric("rewards/accuracies"), 3),
            fmt_opt(r.final_metric("rewards/margins"), 4),
            r.seconds,
            r.reference_computed()
        );
    }
    let page = Page {
        title: format!("training sweep {} ({})", g.id, g.axes.join(" × ")),
        provenance: vec![
            format!("config {} (sha256 {})", g.config_path, g.config_sha256),
            format!("made by `{command}`"),
        ],
        sections: vec![Section {
            heading: "Cells".into(),
            table,
            note: "Validation metrics of each cell's last validation pass. Reference computed 0: every reference log-prob came from the cache another cell filled.".into(),
        }],
        charts,
    };
    page::write_page(dir, &page)
}
