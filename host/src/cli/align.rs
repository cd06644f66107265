//! `forge-host align`: base vs tuned on every axis of an alignment config,
//! stored as one group; prints its table.

use std::path::Path;

use crate::experiment::plan::Paths;
use crate::experiment::progress::{Bar, JsonLines, Progress};
use crate::results::report;
use crate::results::store::Store;

pub async fn align(
    paths: &Paths,
    config: &Path,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    let mut progress: Box<dyn Progress> = if json {
        Box::new(JsonLines)
    } else {
        Box::new(Bar::new())
    };
    let aligned = crate::experiment::alignment::align(
        config,
        paths,
        &store,
        limit,
        progress.as_mut(),
        |labels| {
            if json {
                println!("{}", serde_json::json!({"event": "cell", "labels": labels}));
            } else {
                eprintln!("── {}", labels.join(": "));
            }
        },
    )
    .await?;
    let g = &aligned.group;
    if json {
        println!("{}", serde_json::json!({"event": "group", "group": g.id}));
        return Ok(());
    }
    let a = report::alignment::gather(&store, g)?;
    print!("{}", report::alignment::text(&a));
    println!(
        "group {} stored in {}; `forge-host report {} --out report/alignment` writes the page and charts",
        g.id,
        store.path().display(),
        g.id
    );
    Ok(())
}
