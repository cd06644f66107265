//! `forge-host verify`: re-run stored examples and check they reproduce.

use crate::experiment::plan::Paths;
use crate::results::store::Store;

pub async fn verify(paths: &Paths, id: &str, examples: usize, json: bool) -> anyhow::Result<()> {
    let (e, runs) = {
        // Closed before re-running: a verify must not hold the store.
        let store = Store::open(&paths.store())?;
        let e = store.find(id)?;
        let runs = store.runs(&e.id)?;
        (e, runs)
    };
    let r = crate::experiment::verify::verify(&e, &runs, paths, examples).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{}: {}/{} examples reproduced identically",
            r.experiment, r.identical, r.checked
        );
        for m in &r.mismatches {
            println!(
                "  #{} {}: {} differs\n    stored: {}\n    now:    {}",
                m.index, m.example_id, m.what, m.stored, m.now
            );
        }
        if !r.changed_inputs.is_empty() {
            println!("changed since the run: {}", r.changed_inputs.join(", "));
        }
    }
    if r.identical != r.checked {
        anyhow::bail!(
            "{} of {} examples did not reproduce",
            r.checked - r.identical,
            r.checked
        );
    }
    Ok(())
}
