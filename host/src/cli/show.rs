//! `forge-host show`: an experiment's summary and rows, one example's
//! trace, a sweep group's grid, an optimization's trajectory, or a training run (its summary; `--json`
//! the whole record with every step and validation row).

use crate::experiment::plan::Paths;
use crate::results::records::GroupKind;
use crate::results::report;
use crate::results::store::Store;

use super::groups::{Stored, group_members, resolve, training_members};

pub fn show(
    paths: &Paths,
    id: &str,
    rows: usize,
    trace: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open_to_read(&paths.store())?;
    let found = match trace {
        Some(_) => Stored::Experiment(Box::new(store.find(id)?)),
        None => resolve(&store, id)?,
    };
    let g = match found {
        Stored::Experiment(e) => return show_experiment(&store, *e, rows, trace, json),
        Stored::Training(run) => {
            let steps = store.training_steps(&run.id)?;
            let evals = store.training_evals(&run.id)?;
            if json {
                let v = serde_json::json!({"training_run": run, "steps": steps, "evals": evals});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!(
                    "{}",
                    report::training::summary_text(&run, &evals, steps.last())
                );
            }
            return Ok(());
        }
        Stored::Optimization(run) => {
            let rows = store.candidates(&run.id)?;
            if json {
                let v = serde_json::json!({"optimization": run, "candidates": rows});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", report::optimization::text(&run, &rows));
            }
            return Ok(());
        }
        Stored::Group(g) => g,
    };
    if g.kind == GroupKind::Alignment {
        let a = report::alignment::gather(&store, &g)?;
        if json {
            let v = serde_json::json!({
                "group": g,
                "judge": a.judge.as_ref().map(|(e, p)| serde_json::json!({"experiment": e.id, "pairwise": p})),
                "axes": a.axes.iter().map(|ax| serde_json::json!({
                    "axis": ax.name, "base": ax.base.0.id, "tuned": ax.tuned.0.id,
                    "comparison": ax.comparison, "verbosity": ax.verbosity,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", report::alignment::text(&a));
        }
        return Ok(());
    }
    if g.kind == GroupKind::Optimization {
        let mut runs = Vec::new();
        for m in &g.members {
            let id = m.optimization.as_deref().unwrap_or_default();
            runs.push(
                store
                    .optimization(id)?
                    .ok_or_else(|| anyhow::anyhow!("{}: optimization run {id} is missing", g.id))?,
            );
        }
        if json {
            let v = serde_json::json!({"group": g, "runs": runs});
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", report::optimization::suite_text(&g, &runs));
        }
        return Ok(());
    }
    if g.kind == GroupKind::Training {
        let runs = training_members(&store, &g)?;
        if json {
            let cells: Vec<_> = g
                .members
                .iter()
                .zip(&runs)
                .map(|(m, r)| serde_json::json!({"labels": m.labels, "training_run": r}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"group": g, "cells": cells}))?
            );
        } else {
            print!("{}", report::training::group_table(&g, &runs));
        }
        return Ok(());
    }
    let members = group_members(&store, &g)?;
    if json {
        let v: Vec<_> = members
            .iter()
            .map(|(e, s)| serde_json::json!({"experiment": e.id, "summary": s}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"group": g, "cells": v}))?
        );
    } else {
        print!("{}", report::group_table(&g, &members));
    }
    Ok(())
}

fn show_experiment(
    store: &Store,
    e: crate::results::records::Experiment,
    rows: usize,
    trace: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let s = store.summary(&e.id)?;
    if let Some(which) = trace {
        let mut found = None;
        store.for_each_run(&e.id, |r| {
            if r.example_id == which || r.index.to_string() == which {
                found = Some(r);
                false
            } else {
                true
            }
        })?;
        let run = found.ok_or_else(|| {
            anyhow::anyhow!(
                "experiment {} has no example {which:?} (an id or an index)",
                e.id
            )
        })?;
        if json {
            println!("{}", serde_json::to_string_pretty(&run)?);
        } else {
            use std::io::IsTerminal;
            print!(
                "{}",
                report::trace_text(&run, std::io::stdout().is_terminal())
            );
        }
    } else if json {
        let (runs, _) = store.runs_head(&e.id, rows)?;
        let pairwise = match &e.judged {
            Some(_) => Some(crate::results::pairwise::of_judging(store, &e)?),
            None => None,
        };
        let v =
            serde_json::json!({"experiment": e, "summary": s, "pairwise": pairwise, "runs": runs});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let (shown, total) = store.runs_head(&e.id, rows)?;
        match &s {
            Some(s) => println!("{}", report::summary_text(&e, s)),
            None => println!(
                "experiment {}  {}  ({} of {} examples done)\n",
                e.id,
                e.status,
                total,
                e.example_ids.len()
            ),
        }
        if let (Some(pair), Some(_)) = (&e.judged, &s) {
            let p = crate::results::pairwise::of_judging(store, &e)?;
            println!("{}", report::pairwise::pairwise_text(&pair.a, &pair.b, &p));
        }
        print!("{}", report::runs_table(&shown, &e.score_names));
        if total > shown.len() {
            println!(
                "… {} more rows (--rows N, or `forge-host export {}`)",
                total - shown.len(),
                e.id
            );
        }
    }
    Ok(())
}
