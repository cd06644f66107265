//! `forge-host list`: experiments and sweep groups.

use crate::experiment::plan::Paths;
use crate::results::report;
use crate::results::store::Store;

pub fn list(paths: &Paths, json: bool) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    let mut rows = Vec::new();
    for e in store.experiments()? {
        let s = store.summary(&e.id)?;
        rows.push((e, s));
    }
    let groups = store.groups()?;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(e, s)| serde_json::json!({"experiment": e, "summary": s}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"experiments": v, "groups": groups}))?
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
                println!(
                    "  {:<38}  {} cells ({} run)  axes: {}",
                    g.id,
                    g.members.len(),
                    done,
                    g.axes.join(" × ")
                );
            }
        }
    }
    Ok(())
}
