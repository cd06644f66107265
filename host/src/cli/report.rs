//! `forge-host report`: Markdown, HTML and SVG charts, CSV and JSON
//! aggregates of experiments or a sweep group; a training run's loss,
//! reward and accuracy curves, or a training sweep's cells overlaid.

use std::path::Path;

use crate::experiment::plan::Paths;
use crate::results::matrix::Matrix;
use crate::results::records::{Group, GroupKind};
use crate::results::report;
use crate::results::report::page::Written;
use crate::results::report::training::CellRows;
use crate::results::store::Store;

use super::groups::{Stored, resolve, targets};

pub fn report(
    paths: &Paths,
    ids: &[String],
    out: &Path,
    alpha: f64,
    headline: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open_to_read(&paths.store())?;
    if let [one] = ids {
        let command = format!("forge-host report {one}");
        let written = match resolve(&store, one)? {
            Stored::Training(run) => {
                let steps = store.training_steps(&run.id)?;
                let evals = store.training_evals(&run.id)?;
                Some(report::training::write_run(
                    out, &run, &steps, &evals, &command,
                )?)
            }
            Stored::Optimization(run) => {
                let rows = store.candidates(&run.id)?;
                Some(report::optimization::write(out, &run, &rows, &command)?)
            }
            Stored::Group(g) if g.kind == GroupKind::Training => {
                Some(training_group(&store, &g, out, &command)?)
            }
            Stored::Group(g) if g.kind == GroupKind::Alignment => {
                let a = report::alignment::gather(&store, &g)?;
                Some(report::alignment::write(out, &a, &command)?)
            }
            Stored::Group(g) if Matrix::applies(&g) => {
                let m = Matrix::gather(&store, &g)?.expect("a matrix group");
                let inv = m.invariance(&store)?;
                Some(report::matrix::write(out, &m, &inv, &command)?)
            }
            _ => None,
        };
        if let Some(w) = written {
            return print_written(&w, out, json);
        }
    }
    let (title, targets) = targets(&store, ids)?;
    let mut series = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    let mut provenance = Vec::new();
    for (label, e) in &targets {
        let summary = store.summary(&e.id)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no summary yet ({}): run it to the end first",
                e.id,
                e.status
            )
        })?;
        for n in &e.score_names {
            if !metrics.contains(n) {
                metrics.push(n.clone());
            }
        }
        provenance.push(format!(
            "{label}: experiment `{}` ({}, model {} {}, dataset {}, config {})",
            e.id, e.status, e.model.source, e.model.weights, e.dataset_path, e.config_path
        ));
        series.push(report::charts::Series {
            label: label.clone(),
            summary,
            runs: store.run_scores(&e.id)?,
        });
    }
    let comparisons = if targets.len() >= 2 {
        let others: Vec<_> = targets[1..]
            .iter()
            .zip(&series[1..])
            .map(|((_, e), s)| (e, s.runs.as_slice()))
            .collect();
        crate::results::compare::compare_with_baseline(
            (&targets[0].1, &series[0].runs),
            &others,
            0,
        )?
    } else {
        vec![]
    };
    if let Some(h) = headline {
        let at = metrics.iter().position(|m| *m == h).ok_or_else(|| {
            anyhow::anyhow!("--headline {h:?}: the scores are {}", metrics.join(", "))
        })?;
        let m = metrics.remove(at);
        metrics.insert(0, m);
    }
    provenance.push(format!("made by `forge-host report {}`", ids.join(" ")));
    let written = report::page::write(
        out,
        &report::page::ReportInput {
            title,
            provenance,
            metrics,
            series,
            comparisons,
            alpha,
        },
    )?;
    print_written(&written, out, json)
}

fn print_written(written: &Written, out: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"markdown": written.markdown, "html": written.html, "charts": written.charts})
        );
    } else {
        println!(
            "wrote {} and {} ({} charts in {})",
            written.markdown.display(),
            written.html.display(),
            written.charts.len(),
            out.join("charts").display()
        );
    }
    Ok(())
}

/// A training sweep's report: every cell that has a run, with its rows.
fn training_group(store: &Store, g: &Group, out: &Path, command: &str) -> anyhow::Result<Written> {
    let mut cells = Vec::new();
    for m in &g.members {
        let Some(run) = m
            .training_run
            .as_deref()
            .map(|id| store.training_run(id))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let label: Vec<String> = g
            .axes
            .iter()
            .zip(&m.labels)
            .map(|(a, l)| format!("{a}={l}"))
            .collect();
        cells.push(CellRows {
            label: label.join(", "),
            steps: store.training_steps(&run.id)?,
            evals: store.training_evals(&run.id)?,
            run,
        });
    }
    if cells.is_empty() {
        anyhow::bail!(
            "group {}: no cell has trained yet; run `forge-host train dpo {}`",
            g.id,
            g.config_path
        );
    }
    report::training::write_group(out, g, &cells, command)
}
