//! `forge-host run`: one experiment, or a sweep's whole grid as a group.

use std::path::Path;
use std::sync::Arc;

use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::{Bar, JsonLines, Progress};
use crate::experiment::sweep;
use crate::results::report;
use crate::results::store::Store;

/// What `forge-host run` was asked.
pub struct RunArgs<'a> {
    pub config: &'a Path,
    /// Only the first N examples of the sample.
    pub limit: Option<usize>,
    /// A new experiment even if an unfinished one has the same plan.
    pub new: bool,
    pub json: bool,
}

/// Runs (or resumes) what `config` describes: a config with a `[sweep]`
/// table runs every cell.
pub async fn run(paths: &Paths, args: RunArgs<'_>) -> anyhow::Result<()> {
    let is_sweep = std::fs::read_to_string(args.config)
        .map(|t| sweep::is_sweep(&t))
        .unwrap_or(false);
    if is_sweep {
        run_sweep(paths, args).await
    } else {
        run_one(paths, args).await
    }
}

fn progress(json: bool) -> Box<dyn Progress> {
    if json {
        Box::new(JsonLines)
    } else {
        Box::new(Bar::new())
    }
}

async fn run_sweep(paths: &Paths, args: RunArgs<'_>) -> anyhow::Result<()> {
    let json = args.json;
    let sweep = crate::experiment::sweep::Sweep::load(args.config)?;
    let store = Store::open(&paths.store())?;
    let mut progress = progress(json);
    let cells = sweep.cells.len();
    let report = crate::experiment::sweep::run(
        &sweep,
        paths,
        &store,
        args.new,
        args.limit,
        progress.as_mut(),
        |i, cell| {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "cell", "index": i, "of": cells, "labels": cell.labels})
                );
            } else {
                eprintln!("── cell {}/{cells}: {}", i + 1, cell.labels.join(", "));
            }
        },
    )
    .await?;
    // A method × optimization grid asserts batch invariance: every output
    // the same across the optimization axis (the results stay stored).
    let matrix = crate::results::matrix::Matrix::gather(&store, &report.group)?;
    let invariance = match &matrix {
        Some(m) => Some(m.invariance(&store)?),
        None => None,
    };
    if json {
        if let Some(inv) = &invariance {
            println!(
                "{}",
                serde_json::json!({"event": "invariance", "compared": inv.compared, "differences": inv.differences.len()})
            );
        }
        println!(
            "{}",
            serde_json::json!({"event": "group", "group": report.group.id})
        );
    } else {
        print!("{}", report::group_table(&report.group, &report.summaries));
        println!(
            "group {} stored in {}; see `forge-host show {}`, `forge-host compare {}`, `forge-host report {}`",
            report.group.id,
            store.path().display(),
            report.group.id,
            report.group.id,
            report.group.id
        );
        if let (Some(m), Some(inv)) = (&matrix, &invariance) {
            print!("{}", report::matrix::text(m, inv));
        }
    }
    if let Some(inv) = invariance.filter(|i| !i.holds()) {
        let why = if inv.only_time_budgets() {
            "every difference is an example that ran out of its time budget in one cell \
             (examples in flight together each take longer): raise the limits \
             ([sandbox] / a plugin's `limits`) or lower run.concurrency"
        } else {
            "forge promises the same outputs whatever the batching and caches; \
             please report this with the `forge-host export` of both cells"
        };
        anyhow::bail!("group {}: {}\n{why}", report.group.id, inv.text());
    }
    Ok(())
}

async fn run_one(paths: &Paths, args: RunArgs<'_>) -> anyhow::Result<()> {
    let plan = Arc::new(Plan::load(args.config, paths, args.limit).await?);
    let store = Store::open(&paths.store())?;
    let mut progress = progress(args.json);
    for w in &plan.warnings {
        progress.warning(&w.to_string());
    }
    let report = crate::experiment::runner::run(plan, &store, args.new, progress.as_mut()).await?;
    if !args.json {
        println!(
            "{}",
            report::summary_text(&report.experiment, &report.summary)
        );
        println!(
            "stored in {}; see `forge-host show {}`",
            store.path().display(),
            report.experiment.id
        );
    }
    Ok(())
}
