//! `forge-host rescore`: stored answers scored again, into a sibling
//! experiment.

use crate::experiment::plan::Paths;
use crate::results::report;
use crate::results::store::Store;

pub async fn rescore(
    paths: &Paths,
    id: &str,
    metrics: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    let source = store.find(id)?;
    let r = crate::experiment::rescore::rescore(&store, paths, &source, metrics).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"experiment": r.experiment.id, "rescored_from": source.id, "summary": r.summary})
        );
    } else {
        println!("{}", report::summary_text(&r.experiment, &r.summary));
        println!(
            "rescored {} into {} (no model calls); `forge-host compare {} {}` pairs them",
            source.id, r.experiment.id, source.id, r.experiment.id
        );
    }
    Ok(())
}
