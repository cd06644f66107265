//! `forge-host list`: experiments, sweep groups, training runs and optimizations.

use crate::experiment::plan::Paths;
use crate::results::records::GroupKind;
use crate::results::report;
use crate::results::store::Store;

pub fn list(paths: &Paths, json: bool) -> anyhow::Result<()> {
    let store = Store::open_to_read(&paths.store())?;
    let mut rows = Vec::new();
    for e in store.experiments()? {
        let s = store.summary(&e.id)?;
        rows.push((e, s));
    }
    let groups = store.groups()?;
    let training = store.training_runs()?;
    let optimizations = store.optimizations()?;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(e, s)| serde_json::json!({"experiment": e, "summary": s}))
            .collect();
        let mut t = Vec::new();
        for r in &training {
            let steps = store.training_steps(&r.id)?.len();
            let evals = store.training_evals(&r.id)?.len();
            t.push(serde_json::json!({"training_run": r, "step_rows": steps, "eval_rows": evals}));
        }
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"experiments": v, "groups": groups, "training_runs": t, "optimizations": optimizations})
            )?
        );
    } else {
        print!("{}", report::list_table(&rows));
        if !groups.is_empty() {
            println!("\nsweep groups:");
            for g in &groups {
                let done = g
                    .members
                    .iter()
                    .filter(|m| m.experiment_id.is_some())
                    .count();
                let done = done
                    + g.members
                        .iter()
                        .filter(|m| m.training_run.is_some() || m.optimization.is_some())
                        .count();
                let kind = match g.kind {
                    GroupKind::Experiments => "",
                    GroupKind::Training => "  (training runs)",
                    GroupKind::Alignment => "  (alignment: base vs tuned)",
                    GroupKind::Optimization => "  (optimization suite)",
                };
                println!(
                    "  {:<38}  {} cells ({} run)  axes: {}{kind}",
                    g.id,
                    g.members.len(),
                    done,
                    g.axes.join(" × ")
                );
            }
        }
        if !training.is_empty() {
            println!("\ntraining runs:");
            print!("{}", report::training::list_table(&training));
        }
        if !optimizations.is_empty() {
            println!("\noptimizations (`forge-host show <id>` for the trajectory):");
            print!("{}", report::optimization::list_table(&optimizations));
        }
    }
    Ok(())
}
