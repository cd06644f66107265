//! `forge-host judge A B`: a pairwise LLM judge over the examples two
//! experiments share, run as an ordinary experiment.
//!
//! The pairs (the question, A's answer, B's answer) become a dataset
//! (`<home>/judging/<A>-vs-<B>/pairs.jsonl`); the judge config (a
//! `configs/judge.toml`-shaped file: the judge's `[model]`, the
//! `pairwise_judge` method with its rubric and prompt template, the
//! `judge_verdict` metric) gets that dataset and runs through the same
//! plan → runner → store path as `run`. So every judge call is recorded,
//! the call cache answers repeats, a killed judging run resumes, and
//! `show`/`export`/`compare` work on it. The pairwise numbers (win / tie /
//! loss, position bias, sign test, length-controlled win rate) are
//! [`pairwise::of_judging`] over its stored scores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::experiment::config::{ConfigFile, read_config_text};
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::Progress;
use crate::experiment::runner;
use crate::results::pairwise::{self, PairwiseSummary};
use crate::results::records::{Experiment, JudgedPair, Status};
use crate::results::stats::Summary;
use crate::results::store::Store;

/// The judge `forge-host judge` runs when no judge config is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/judge.toml");
const DEFAULT_CONFIG_PATH: &str = "configs/judge.toml";

/// What `forge-host judge` was asked.
pub struct JudgeRequest<'a> {
    pub a: &'a str,
    pub b: &'a str,
    /// A judge config (`*.toml`), or a model for the default config (a
    /// packaged model alias or a `.gguf` path); None = the default judge.
    pub judge: Option<&'a str>,
    /// `helpful`, `harmless`, or a file whose text is the rubric.
    pub rubric: Option<&'a str>,
    /// Judge only the first N shared examples.
    pub limit: Option<usize>,
    /// A new judging run even if an unfinished one has the same plan.
    pub new: bool,
}

pub struct Judged {
    pub experiment: Experiment,
    pub summary: Summary,
    pub pairwise: PairwiseSummary,
    /// Examples of A that B lacks or where either side has no answer.
    pub left_out: usize,
}

/// One answer as the pairing needs it.
struct Answered {
    question: String,
    answer: String,
    completion_tokens: u64,
}

pub async fn judge(
    paths: &Paths,
    store: &Store,
    req: JudgeRequest<'_>,
    progress: &mut dyn Progress,
) -> anyhow::Result<Judged> {
    let a = store.find(req.a)?;
    let b = store.find(req.b)?;
    anyhow::ensure!(a.id != b.id, "A and B are the same experiment ({})", a.id);
    for e in [&a, &b] {
        anyhow::ensure!(
            e.status == Status::Completed,
            "experiment {} is {}: finish it (run its config again) before judging it",
            e.id,
            e.status
        );
    }
    let answers_a = answered(store, &a.id)?;
    let answers_b = answered(store, &b.id)?;
    let mut rows = Vec::new();
    let mut left_out = 0;
    for id in &a.example_ids {
        match (answers_a.get(id), answers_b.get(id)) {
            (Some(x), Some(y)) => rows.push(serde_json::json!({
                "id": id,
                "question": x.question,
                "answers": [],
                // What the pairwise_judge method reads (example metadata).
                "meta": {
                    "answer_a": x.answer,
                    "answer_b": y.answer,
                    "a_tokens": x.completion_tokens,
                    "b_tokens": y.completion_tokens,
                },
            })),
            _ => left_out += 1,
        }
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "{} and {} share no example that both answered: judge two experiments on the same dataset",
        a.id,
        b.id
    );
    let dir = paths
        .home
        .join("judging")
        .join(format!("{}-vs-{}", a.id, b.id));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pairs = dir.join("pairs.jsonl");
    let mut text = String::new();
    for r in &rows {
        text += &r.to_string();
        text.push('\n');
    }
    std::fs::write(&pairs, text).with_context(|| format!("writing {}", pairs.display()))?;
    let pairs = std::path::absolute(&pairs)?;

    let config = judge_config(&req, &dir, &pairs)?;
    let plan = Arc::new(Plan::from_config(config, paths, req.limit).await?);
    for w in &plan.warnings {
        progress.warning(&w.to_string());
    }
    let report = runner::run(plan, store, req.new, progress).await?;
    let mut experiment = report.experiment;
    experiment.judged = Some(JudgedPair {
        a: a.id.clone(),
        b: b.id.clone(),
    });
    store.put_experiment(&experiment)?;
    let pairwise = pairwise::of_judging(store, &experiment)?;
    Ok(Judged {
        experiment,
        summary: report.summary,
        pairwise,
        left_out,
    })
}

/// Example id → the answer, for the runs that answered.
fn answered(store: &Store, id: &str) -> anyhow::Result<BTreeMap<String, Answered>> {
    let mut out = BTreeMap::new();
    store.for_each_run(id, |r| {
        if let (Some(answer), None) = (r.answer, &r.error) {
            out.insert(
                r.example_id,
                Answered {
                    question: r.question,
                    answer,
                    completion_tokens: r.completion_tokens,
                },
            );
        }
        true
    })?;
    Ok(out)
}

/// The judge config with the pairs as its dataset, checked where the user
/// wrote it, then written beside the pairs (what the experiment stores).
fn judge_config(req: &JudgeRequest<'_>, dir: &Path, pairs: &Path) -> anyhow::Result<ConfigFile> {
    let user_file = req
        .judge
        .filter(|j| j.ends_with(".toml"))
        .map(PathBuf::from);
    let (path, mut text) = match &user_file {
        Some(p) => (p.clone(), read_config_text(p)?),
        None => (
            PathBuf::from(DEFAULT_CONFIG_PATH),
            DEFAULT_CONFIG.to_string(),
        ),
    };
    let has_dataset = toml::from_str::<toml::Table>(&text)
        .map(|t| t.contains_key("dataset"))
        .unwrap_or(false);
    if has_dataset {
        return Err(ConfigFile::error_in(
            &path,
            &text,
            "dataset",
            "a judge config takes its dataset from the two experiments it compares: remove [dataset]",
        )
        .into());
    }
    // Appended, so the user's lines keep their numbers in any error.
    text += &format!(
        "\n[dataset]\npath = {}\n",
        toml::Value::String(pairs.display().to_string())
    );
    let parsed = ConfigFile::parse(&path, &text)?;
    check_judge(&parsed)?;

    let mut table: toml::Table = toml::from_str(&text).context("re-reading the judge config")?;
    if let Some(model) = req.judge.filter(|_| user_file.is_none()) {
        table
            .get_mut("model")
            .and_then(|m| m.as_table_mut())
            .expect("the default judge config has [model]")
            .insert("source".into(), model.into());
    }
    if let Some(rubric) = req.rubric {
        let rubric = match rubric {
            "helpful" | "harmless" => rubric.to_string(),
            file => std::fs::read_to_string(file)
                .with_context(|| {
                    format!("--rubric {file}: not `helpful` or `harmless`, and not a readable file")
                })?
                .trim()
                .to_string(),
        };
        let method = table
            .get_mut("method")
            .and_then(|m| m.as_table_mut())
            .expect("a parsed config has [method]");
        let params = method
            .entry("params")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        params
            .as_table_mut()
            .context("method.params is not a table")?
            .insert("rubric".into(), rubric.into());
    }
    let header = format!(
        "# Written by `forge-host judge` from {}: the judge config with the\n# pairs of the two experiments as its dataset.\n",
        path.display()
    );
    let final_text = header + &toml::to_string(&table).context("writing the judge config")?;
    let written = dir.join("judge.toml");
    std::fs::write(&written, &final_text)
        .with_context(|| format!("writing {}", written.display()))?;
    Ok(ConfigFile::parse(&written, &final_text)?)
}

/// What only a judge config must satisfy: the judge's prompt template has
/// its placeholders (checked here, with the line, not once per example).
fn check_judge(config: &ConfigFile) -> anyhow::Result<()> {
    if let Some(t) = config.config.method.params.get("template") {
        let t = t.as_str().ok_or_else(|| {
            config.error_at(
                "method.params.template",
                "the judge template must be a string",
            )
        })?;
        judge_eval::check_template(t).map_err(|m| config.error_at("method.params.template", m))?;
    }
    Ok(())
}
