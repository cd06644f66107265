//! `forge-host train dpo <config.toml>`: a DPO run (or its resumption),
//! recorded in the store; a config with a `[sweep]` table trains every
//! cell as one group.

use std::path::Path;

use crate::experiment::plan::Paths;
use crate::experiment::sweep::is_sweep;
use crate::results::report::training::group_table;
use crate::results::store::Store;
use crate::train::run::{Outcome, TrainOptions, train};
use crate::train::sweep;

pub fn dpo(paths: &Paths, config: &Path, json: bool) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    let opts = TrainOptions {
        home: &paths.home,
        models_dir: &paths.models_dir,
        json,
        store: &store,
    };
    let text = std::fs::read_to_string(config).unwrap_or_default();
    // Candle's compute is synchronous; keep it off the async workers.
    if is_sweep(&text) {
        return tokio::task::block_in_place(|| dpo_sweep(config, &opts, &store));
    }
    let out = tokio::task::block_in_place(|| train(config, &opts))?;
    if !json {
        print_outcome(&out);
        println!(
            "stored in {}; see `forge-host show {}`, `forge-host report {}`",
            store.path().display(),
            out.run_id,
            out.run_id
        );
    }
    Ok(())
}

fn print_outcome(out: &Outcome) {
    println!("run {}", out.run_id);
    if let Some(step) = out.resumed_from {
        println!("resumed from step {step}");
    }
    println!(
        "reference log-probs: {} computed, {} from the cache",
        out.reference_computed, out.reference_cached
    );
    if let Some(m) = &out.validation {
        for (k, v) in m.trl_names() {
            println!("validation {k}: {v:.4}");
        }
    }
    println!(
        "{} steps in {:.1} s; adapter: {}",
        out.steps,
        out.seconds,
        out.output.display()
    );
}

fn dpo_sweep(config: &Path, opts: &TrainOptions, store: &Store) -> anyhow::Result<()> {
    let json = opts.json;
    let sweep = sweep::load(config)?;
    let n = sweep.cells.len();
    let report = sweep::run(&sweep, opts, |i, cell, run, kept| {
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "cell", "index": i, "of": n, "labels": cell.labels,
                                   "run": run, "kept": kept})
            );
        } else {
            let note = if kept { " (done before: kept)" } else { "" };
            eprintln!(
                "── cell {}/{n}: {}  run {run}{note}",
                i + 1,
                cell.labels.join(", ")
            );
        }
    })?;
    if json {
        let cells: Vec<_> = report
            .cells
            .iter()
            .map(|c| {
                serde_json::json!({
                    "labels": c.labels, "run": c.run.id, "kept": c.kept, "status": c.run.status,
                    "steps": c.run.steps_done, "seconds": c.run.seconds,
                    "reference_computed": c.run.reference_computed(),
                    "reference_cached": c.run.reference_cached(),
                    "validation": c.run.final_validation,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"event": "group", "group": report.group.id, "cells": cells})
        );
    } else {
        let runs: Vec<_> = report.cells.iter().map(|c| Some(c.run.clone())).collect();
        print!("{}", group_table(&report.group, &runs));
        println!(
            "group {} stored in {}; see `forge-host show {}`, `forge-host report {}`",
            report.group.id,
            store.path().display(),
            report.group.id,
            report.group.id
        );
    }
    Ok(())
}
