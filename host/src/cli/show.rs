//! `forge-host show`: an experiment's summary and rows, one example's
//! trace, a sweep group's grid, or a training run (its summary; `--json`
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
    let store = Store::open(&paths.store())?;
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
        Stored::Group(g) => g,
    };
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
        let v = serde_json::json!({"experiment": e, "summary": s, "runs": runs});
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
