//! `forge-host judge A B`: a pairwise LLM judge over two experiments'
//! shared examples, stored as a judging run.

use crate::experiment::judge::{JudgeRequest, judge as run_judge};
use crate::experiment::plan::Paths;
use crate::experiment::progress::{Bar, JsonLines, Progress};
use crate::results::report;
use crate::results::store::Store;

pub async fn judge(paths: &Paths, req: JudgeRequest<'_>, json: bool) -> anyhow::Result<()> {
    let store = Store::open(&paths.store())?;
    let mut progress: Box<dyn Progress> = if json {
        Box::new(JsonLines)
    } else {
        Box::new(Bar::new())
    };
    let j = run_judge(paths, &store, req, progress.as_mut()).await?;
    let pair = j
        .experiment
        .judged
        .clone()
        .expect("a judging run names its pair");
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": "judged",
                "experiment": j.experiment.id,
                "a": pair.a,
                "b": pair.b,
                "left_out": j.left_out,
                "pairwise": j.pairwise,
                "summary": j.summary,
            })
        );
        return Ok(());
    }
    println!("{}", report::summary_text(&j.experiment, &j.summary));
    print!(
        "{}",
        report::pairwise::pairwise_text(&pair.a, &pair.b, &j.pairwise)
    );
    if j.left_out > 0 {
        println!(
            "left out   {} examples of A without an answer on both sides",
            j.left_out
        );
    }
    println!(
        "stored in {}; every judge call: `forge-host show {} --trace <example>`",
        store.path().display(),
        j.experiment.id
    );
    Ok(())
}
