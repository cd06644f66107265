//! `forge-host show`: an experiment's summary and rows, one example's
//! trace, or a sweep group's grid.

use crate::experiment::plan::Paths;
use crate::results::report;
use crate::results::store::Store;

use super::groups::{group_members, group_or_none};

pub fn show(
    paths: &Paths,
    id: &str,
    rows: usize,
    trace: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    if trace.is_none()
        && let Some(g) = group_or_none(&store, id)?
    {
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
        return Ok(());
    }
    let e = store.find(id)?;
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
