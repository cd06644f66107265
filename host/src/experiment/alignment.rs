//! `forge-host align`: the alignment question — what did preference tuning
//! do to my model? — asked of two models (`[base]`, `[tuned]`) on every
//! axis at once, stored as one group of `kind = "alignment"`.
//!
//! ```toml
//! name = "alignment-smollm2-dpo"
//! beta = 0.1                 # DPO's β for the implicit reward margin (optional)
//! [base]                      # a [model] table, as in any config
//! source = "smollm2-135m-instruct"
//! [tuned]
//! source = "smollm2-135m-instruct"
//! adapter = "../runs/dpo_hh/adapter"
//! [axes]                      # axis name = an experiment config (its [model] is replaced)
//! preference = "hh_preference_accuracy.toml"
//! factuality = "nq_naive.toml"
//! generations = "hh_generations.toml"
//! [judge]                     # optional: the pairwise judge, tuned (A) vs base (B)
//! on = "generations"          # whose answers it compares
//! config = "judge.toml"       # optional (default: configs/judge.toml's judge)
//! rubric = "helpful"          # optional
//! ```
//!
//! Each axis config runs twice through the ordinary plan → runner path
//! (resumable; the call cache answers repeats), once per model; the judge
//! is `forge-host judge` on the `on` axis. `report`/`show` on the group
//! print one table: every score with both models' means, the paired delta
//! with its CI and test, the verbosity of every axis, and the judged win
//! rate ([`crate::results::report::alignment`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::experiment::config::{ConfigFile, ModelConfig, read_config_text};
use crate::experiment::judge::{self, JudgeRequest};
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::Progress;
use crate::experiment::runner;
use crate::results::records::{Group, GroupKind, GroupMember};
use crate::results::store::Store;

/// The two models' labels, in table order.
pub const MODELS: [&str; 2] = ["base", "tuned"];
/// The judging member's labels: `[JUDGE_AXIS, JUDGE_LABEL]`.
pub const JUDGE_AXIS: &str = "judge";
pub const JUDGE_LABEL: &str = "tuned vs base";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignmentConfig {
    pub name: String,
    /// For the reader of the file (kept with the group's config text).
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    pub base: ModelConfig,
    pub tuned: ModelConfig,
    /// DPO's β for the implicit reward margin in the table (TRL's default).
    #[serde(default = "default_beta")]
    #[allow(dead_code)]
    pub beta: f64,
    /// Axis name → experiment config path (relative to this file), in
    /// the file's order.
    pub axes: toml::Table,
    pub judge: Option<JudgeSection>,
}

fn default_beta() -> f64 {
    0.1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSection {
    pub on: String,
    pub config: Option<String>,
    pub rubric: Option<String>,
}

struct Loaded {
    path: PathBuf,
    text: String,
    config: AlignmentConfig,
}

fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = read_config_text(path)?;
    let config: AlignmentConfig = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        anyhow::anyhow!("{}:{line}:{col}: {}", path.display(), e.message())
    })?;
    let at = |field: &str, msg: String| ConfigFile::error_in(path, &text, field, msg);
    if config.axes.is_empty() {
        return Err(at("axes", "lists no axis (name = \"config.toml\")".into()).into());
    }
    for (name, v) in &config.axes {
        if !v.is_str() {
            return Err(at(
                &format!("axes.{name}"),
                "must be the path of an experiment config".into(),
            )
            .into());
        }
    }
    // A missing adapter is caught here, before the other model's axes run
    // (usually: `train dpo` has not written it yet).
    let dir = path.parent().unwrap_or(Path::new("."));
    for (name, m) in [("base", &config.base), ("tuned", &config.tuned)] {
        if let Some(a) = &m.adapter
            && !dir.join(a).join("adapter_config.json").is_file()
        {
            return Err(at(
                &format!("{name}.adapter"),
                format!(
                    "{} has no adapter_config.json: train it first (`forge-host train dpo configs/dpo_hh.toml` writes runs/dpo_hh/adapter), or point this at a PEFT LoRA directory",
                    dir.join(a).display()
                ),
            )
            .into());
        }
    }
    if let Some(j) = &config.judge
        && !config.axes.contains_key(&j.on)
    {
        return Err(at(
            "judge.on",
            format!(
                "names no axis (the axes are {})",
                config.axes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
        .into());
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        text,
        config,
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// A model table as the axis config will hold it: relative paths (a
/// `.gguf` source, the adapter) made absolute, since the axis config
/// resolves paths against its own file.
fn model_table(m: &ModelConfig, dir: &Path) -> anyhow::Result<toml::Value> {
    let mut m = m.clone();
    let abs = |p: &str| -> String {
        let p = Path::new(p);
        if p.is_absolute() {
            p.display().to_string()
        } else {
            dir.join(p).display().to_string()
        }
    };
    if m.source.ends_with(".gguf") {
        m.source = abs(&m.source);
    }
    m.adapter = m.adapter.as_deref().map(abs);
    Ok(toml::Value::try_from(&m)?)
}

pub struct Aligned {
    pub group: Group,
}

/// Runs every axis for both models, then the judge, and stores the group.
pub async fn align(
    config_path: &Path,
    paths: &Paths,
    store: &Store,
    limit: Option<usize>,
    progress: &mut dyn Progress,
    mut on_cell: impl FnMut(&[String]),
) -> anyhow::Result<Aligned> {
    let l = load(config_path)?;
    let dir = l.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let models = [
        model_table(&l.config.base, &dir)?,
        model_table(&l.config.tuned, &dir)?,
    ];
    // Every axis config is read and checked, and every cell built, before
    // anything runs: a typo in the last axis must not cost the first ones.
    let mut cells = Vec::new();
    for (axis, rel) in &l.config.axes {
        let axis_path = dir.join(rel.as_str().expect("checked at load"));
        let axis_text = std::fs::read_to_string(&axis_path).map_err(|e| {
            ConfigFile::error_in(
                &l.path,
                &l.text,
                &format!("axes.{axis}"),
                format!("cannot read {}: {e}", axis_path.display()),
            )
        })?;
        // Checked as written first, so its errors name its own lines.
        ConfigFile::parse(&axis_path, &axis_text)?;
        for (label, model) in MODELS.iter().zip(&models) {
            let mut table: toml::Table = toml::from_str(&axis_text)?;
            table.insert("model".into(), model.clone());
            table.insert(
                "name".into(),
                format!("{}-{axis}-{label}", l.config.name).into(),
            );
            let text = format!(
                "# alignment {}: axis {axis}, model {label}\n{}",
                l.config.name,
                toml::to_string(&table)?
            );
            let cell = ConfigFile::parse(&axis_path, &text).map_err(|e| {
                anyhow::anyhow!(
                    "{e}\n  (axis {axis} with the [{label}] model of {})",
                    l.path.display()
                )
            })?;
            cells.push((vec![axis.clone(), label.to_string()], cell));
        }
    }
    if let Some(c) = l.config.judge.as_ref().and_then(|j| j.config.as_deref())
        && !dir.join(c).is_file()
    {
        return Err(ConfigFile::error_in(
            &l.path,
            &l.text,
            "judge.config",
            format!("{} is not a file", dir.join(c).display()),
        )
        .into());
    }

    let mut members = Vec::new();
    let mut axis_experiments: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for (labels, cell) in cells {
        on_cell(&labels);
        let plan = Arc::new(Plan::from_config(cell, paths, limit).await?);
        for w in &plan.warnings {
            progress.warning(&w.to_string());
        }
        let e = match store.completed(&plan.plan_sha256)? {
            Some(done) => done,
            None => runner::run(plan, store, false, progress).await?.experiment,
        };
        axis_experiments
            .entry(labels[0].clone())
            .or_default()
            .push(e.id.clone());
        members.push(GroupMember {
            labels,
            experiment_id: Some(e.id),
            training_run: None,
            optimization: None,
        });
    }
    if let Some(j) = &l.config.judge {
        let ids = &axis_experiments[&j.on];
        let labels = vec![JUDGE_AXIS.to_string(), JUDGE_LABEL.to_string()];
        on_cell(&labels);
        let judge_config = j
            .config
            .as_deref()
            .map(|c| dir.join(c).display().to_string());
        let judged = judge::judge(
            paths,
            store,
            JudgeRequest {
                a: &ids[1],
                b: &ids[0],
                judge: judge_config.as_deref(),
                rubric: j.rubric.as_deref(),
                limit,
                new: false,
            },
            progress,
        )
        .await?;
        members.push(GroupMember {
            labels,
            experiment_id: Some(judged.experiment.id),
            training_run: None,
            optimization: None,
        });
    }
    let created_at = crate::results::store::now();
    let stamp: String = created_at.chars().filter(char::is_ascii_digit).collect();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(l.text.as_bytes()))
    };
    let group = Group {
        id: format!("{}-a{}-{}", l.config.name, &sha[..6], &stamp[8..]),
        name: l.config.name.clone(),
        kind: GroupKind::Alignment,
        config_path: l.path.display().to_string(),
        config_text: l.text.clone(),
        config_sha256: sha,
        created_at,
        axes: vec!["axis".into(), "model".into()],
        members,
    };
    store.put_group(&group)?;
    Ok(Aligned { group })
}
