//! `forge-host optimize`: rewrite a method's prompt with an optimizer
//! component until the score plateaus, then prove the gain on the test
//! split; prints the trajectory (`show <run>` prints it again). A config
//! with `[sweep]` is a suite: one optimization per cell, one table.

use std::path::Path;

use crate::experiment::optimize;
use crate::experiment::plan::Paths;
use crate::experiment::progress::{Bar, JsonLines, Progress};
use crate::results::report;
use crate::results::store::Store;

pub async fn optimize(
    paths: &Paths,
    config: &Path,
    dry_run: bool,
    new: bool,
    json: bool,
) -> anyhow::Result<()> {
    let text = crate::experiment::config::read_config_text(config)?;
    let suite = crate::experiment::sweep::is_sweep(&text);
    if dry_run {
        let cfgs: Vec<optimize::OptimizeConfig> = if suite {
            crate::experiment::sweep::Sweep::expand(
                config,
                &text,
                "optimize",
                optimize::OptimizeConfig::parse,
            )?
            .cells
            .into_iter()
            .map(|c| c.config)
            .collect()
        } else {
            vec![optimize::OptimizeConfig::parse(config, &text)?]
        };
        for cfg in &cfgs {
            let p = optimize::dry_run(cfg)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "train": p.splits.0, "validation": p.splits.1, "test": p.splits.2,
                        "max_example_runs": p.example_runs, "max_optimizer_asks": p.proposals,
                    })
                );
            } else {
                println!(
                    "splits: train {} · validation {} · test {}",
                    p.splits.0, p.splits.1, p.splits.2
                );
                println!(
                    "at most {} example runs of the task model (model calls = example runs × the method's calls per example: 1 for naive and cot) and {} asks of the optimizer (the interviewer makes `candidates` calls per ask, default 1)",
                    p.example_runs, p.proposals
                );
            }
        }
        if !json {
            if suite {
                println!("({} cells, run one after another)", cfgs.len());
            }
            println!(
                "the budget ([optimize] max_calls / max_tokens / max_seconds) is checked before each iteration"
            );
        }
        return Ok(());
    }
    let store = Store::open(&paths.store())?;
    let mut progress: Box<dyn Progress> = if json {
        Box::new(JsonLines)
    } else {
        Box::new(Bar::new())
    };
    let mut say = |line: String| {
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "optimize", "message": line})
            );
        } else {
            eprintln!("── {line}");
        }
    };
    if suite {
        let s = optimize::suite::run(
            config,
            &text,
            paths,
            &store,
            new,
            progress.as_mut(),
            &mut say,
        )
        .await?;
        let runs: Vec<_> = s.cells.iter().map(|(_, o)| o.run.clone()).collect();
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "optimization_suite", "group": s.group, "runs": runs})
            );
        } else {
            print!("{}", report::optimization::suite_text(&s.group, &runs));
            println!("group {} stored in {}", s.group.id, store.path().display());
        }
        return Ok(());
    }
    let cfg = optimize::OptimizeConfig::parse(config, &text)?;
    let done = optimize::optimize(&cfg, paths, &store, new, progress.as_mut(), &mut say).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "optimization", "run": done.run, "candidates": done.candidates})
        );
        return Ok(());
    }
    if done.already {
        eprintln!(
            "already optimized with this config: {} (--new to run it again)",
            done.run.id
        );
    }
    print!(
        "{}",
        report::optimization::text(&done.run, &done.candidates)
    );
    println!(
        "optimization {} stored in {}; every candidate is an experiment (`forge-host list`)",
        done.run.id,
        store.path().display()
    );
    Ok(())
}
