//! `forge-host compare`: paired comparisons against the first experiment.

use crate::experiment::plan::Paths;
use crate::results::report;
use crate::results::store::Store;

use super::groups::targets;

pub fn compare(
    paths: &Paths,
    ids: &[String],
    alpha: f64,
    rows: usize,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open_to_read(&paths.store())?;
    let (_, targets) = targets(&store, ids)?;
    anyhow::ensure!(
        targets.len() >= 2,
        "compare needs two experiments, or a group with two cells or more"
    );
    let scores = targets
        .iter()
        .map(|(_, e)| store.run_scores(&e.id))
        .collect::<Result<Vec<_>, _>>()?;
    let others: Vec<_> = targets[1..]
        .iter()
        .zip(&scores[1..])
        .map(|((_, e), r)| (e, r.as_slice()))
        .collect();
    let cs =
        crate::results::compare::compare_with_baseline((&targets[0].1, &scores[0]), &others, 0)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cs)?);
    } else {
        for (i, c) in cs.iter().enumerate() {
            if targets.len() > 2 {
                println!("── {} vs {}", targets[0].0, targets[i + 1].0);
            }
            print!("{}", report::comparison_text(c, alpha, rows));
            println!();
        }
    }
    Ok(())
}
