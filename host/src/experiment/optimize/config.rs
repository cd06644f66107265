//! The `[optimize]` table of an experiment config: what to optimise, with
//! which optimizer and interviewer, the splits, the acceptance test and
//! the budget. The rest of the file is an ordinary experiment config,
//! checked as one at its own lines (the `[optimize]` lines are blanked, not
//! removed, so every line number stays true).

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::experiment::config::{
    ConfigError, ConfigFile, ModelConfig, PluginRef, deserialize_toml,
};
use crate::experiment::datasets::DatasetKind;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeSection {
    /// The method param holding the prompt (`template`, `system`, ...);
    /// `[method] params` must give its starting value.
    pub param: String,
    /// Strings every candidate must keep; default: the `{name}`s of the
    /// starting prompt.
    pub placeholders: Option<Vec<String>>,
    /// The score to optimise; default: the first score of the first metric.
    pub metric: Option<String>,
    /// The optimizer component and its params (default: `interviewer`).
    #[serde(default = "default_optimizer")]
    pub optimizer: PluginRef,
    /// The interviewer's model (any `[model]` table); default: the task model.
    pub interviewer: Option<ModelConfig>,
    #[serde(default)]
    pub splits: SplitSizes,
    /// `validation` (default) or `train`: where candidates are accepted.
    /// `train` also needs `allow_train_selection = true`: gains selected on
    /// the data the interviewer saw are overfit.
    #[serde(default = "default_select_on")]
    pub select_on: String,
    #[serde(default)]
    pub allow_train_selection: bool,
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// Stop after this many iterations in a row without an accepted candidate.
    #[serde(default = "default_patience")]
    pub patience: u32,
    /// Stop once the incumbent's validation mean reaches this.
    pub target: Option<f64>,
    /// Significance level of the paired test that accepts a candidate.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Failures of the incumbent (on train) shown to the optimizer.
    #[serde(default = "default_failures")]
    pub failures: usize,
    /// Training examples the incumbent got right shown with them (the
    /// few-shot optimizer's pool of demonstrations).
    #[serde(default = "default_successes")]
    pub successes: usize,
    /// Run a candidate on the shown failures first; it goes to validation
    /// only when it fixes at least one.
    #[serde(default = "yes")]
    pub gate: bool,
    /// Re-asks within an iteration when every proposal is unusable.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The most candidates evaluated per iteration (extra proposals are
    /// dropped, in order).
    #[serde(default = "default_max_candidates")]
    pub max_candidates: u32,
    /// Budget, checked before each iteration: model calls and tokens
    /// (prompt + completion) of both roles, and wall seconds.
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_seconds: Option<f64>,
}

/// Split sizes; unset ones default from the pool (the `[dataset]` sample,
/// or the whole file): 20 % train, 40 % validation, 40 % test.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSizes {
    pub train: Option<usize>,
    pub validation: Option<usize>,
    pub test: Option<usize>,
}

fn default_optimizer() -> PluginRef {
    PluginRef {
        plugin: "interviewer".into(),
        params: Default::default(),
        grants: Default::default(),
        limits: Default::default(),
        name: None,
    }
}
fn default_select_on() -> String {
    "validation".into()
}
fn default_max_iterations() -> u32 {
    5
}
fn default_patience() -> u32 {
    2
}
fn default_alpha() -> f64 {
    0.05
}
fn default_failures() -> usize {
    4
}
fn default_successes() -> usize {
    8
}
fn yes() -> bool {
    true
}
fn default_retries() -> u32 {
    2
}
fn default_max_candidates() -> u32 {
    4
}

#[derive(Deserialize)]
struct File {
    optimize: OptimizeSection,
}

/// An optimize config: the experiment part (`base`, whose text is the whole
/// file so errors land on its lines) and the `[optimize]` table.
#[derive(Clone, Debug)]
pub struct OptimizeConfig {
    pub base: ConfigFile,
    pub optimize: OptimizeSection,
    /// The experiment part as a TOML table, for the candidates' configs.
    pub table: toml::Table,
    pub sha256: String,
    pub start_prompt: String,
    pub placeholders: Vec<String>,
}

impl OptimizeConfig {
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let at = |field: &str, msg: String| ConfigFile::error_in(path, text, field, msg);
        let mut base = ConfigFile::parse(path, &blank_optimize(text))?;
        base.text = text.to_string();
        let file: File = deserialize_toml(path, text)?;
        let o = file.optimize;
        let c = &base.config;
        if c.dataset.kind != DatasetKind::Qa {
            return Err(at(
                "dataset.kind",
                "optimize needs question/answer rows (kind = \"qa\")".into(),
            ));
        }
        let start_prompt = match c.method.params.get(&o.param) {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(at(
                    "optimize.param",
                    format!("method.params.{} must be a string (the prompt)", o.param),
                ));
            }
            None => {
                let known: Vec<&str> = c.method.params.keys().map(String::as_str).collect();
                return Err(at(
                    "optimize.param",
                    format!(
                        "method.params has no {:?}: give the starting prompt there \
                         (params = {{ {} = \"...\" }}); the params it has: {}",
                        o.param,
                        o.param,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        };
        let placeholders = match &o.placeholders {
            Some(p) => p.clone(),
            None => optimizer_kit::placeholders_of(&start_prompt),
        };
        let lost = optimizer_kit::missing_placeholders(&start_prompt, &placeholders);
        if !lost.is_empty() {
            return Err(at(
                "optimize.placeholders",
                format!("the starting prompt lacks {}", lost.join(", ")),
            ));
        }
        if let Some(m) = &o.metric
            && c.metrics.is_empty()
        {
            return Err(at(
                "optimize.metric",
                format!("{m:?} needs a [[metrics]] that produces it"),
            ));
        }
        if c.metrics.is_empty() {
            return Err(at("metrics", "optimize needs a metric to optimise".into()));
        }
        match o.select_on.as_str() {
            "validation" => {}
            "train" if o.allow_train_selection => {}
            "train" => {
                return Err(at(
                    "optimize.select_on",
                    "selecting on the training split reports overfit gains (the optimizer saw \
                     those examples); add allow_train_selection = true to do it anyway"
                        .into(),
                ));
            }
            other => {
                return Err(at(
                    "optimize.select_on",
                    format!("{other:?}: expected \"validation\" or \"train\""),
                ));
            }
        }
        if !(o.alpha > 0.0 && o.alpha < 1.0) {
            return Err(at("optimize.alpha", "must be in (0, 1)".into()));
        }
        if o.max_iterations == 0 || o.patience == 0 || o.max_candidates == 0 {
            let field = if o.max_iterations == 0 {
                "optimize.max_iterations"
            } else if o.patience == 0 {
                "optimize.patience"
            } else {
                "optimize.max_candidates"
            };
            return Err(at(field, "must be at least 1".into()));
        }
        if o.optimizer.plugin == "interviewer"
            && let Some(v) = o.optimizer.params.get("instructions")
        {
            let t = v.as_str().unwrap_or_default();
            optimizer_kit::check_instructions(t)
                .map_err(|e| at("optimize.optimizer.params.instructions", e))?;
        }
        let mut table: toml::Table = toml::from_str(text).map_err(|e| at("", e.to_string()))?;
        table.remove("optimize");
        Ok(Self {
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            base,
            optimize: o,
            table,
            start_prompt,
            placeholders,
        })
    }

    pub fn path(&self) -> &Path {
        &self.base.path
    }

    pub fn error_at(&self, field: &str, msg: impl Into<String>) -> ConfigError {
        self.base.error_at(field, msg)
    }
}

/// The text with every line of the `[optimize]` table (and its subtables,
/// or a top-level `optimize = ...` line) replaced by an empty comment, so
/// the experiment part parses alone with its line numbers unchanged.
fn blank_optimize(text: &str) -> String {
    let mut inside = false;
    let mut seen_header = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            seen_header = true;
            let name = t
                .trim_start_matches('[')
                .split([']', '.'])
                .next()
                .unwrap_or("")
                .trim();
            inside = name == "optimize";
        }
        let top_level_key =
            !seen_header && t.split(['=', '.']).next().map(str::trim) == Some("optimize");
        if inside || top_level_key {
            out.push('#');
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The sizes of the three splits of a pool of `n` examples; without a
/// validation split (selection on train) it is 0 and train takes its share.
pub fn split_sizes(
    s: &SplitSizes,
    n: usize,
    with_validation: bool,
) -> Result<(usize, usize, usize), String> {
    let pct = |p: usize| (n * p).div_ceil(100);
    let test = s.test.unwrap_or(pct(40));
    let validation = if with_validation {
        s.validation.unwrap_or(pct(40))
    } else {
        0
    };
    let train = s
        .train
        .unwrap_or_else(|| n.saturating_sub(test + validation).max(1));
    if train == 0 || test == 0 || (with_validation && validation == 0) {
        return Err("every split needs at least one example".into());
    }
    if train + validation + test > n {
        return Err(format!(
            "train {train} + validation {validation} + test {test} is more than the {n} examples"
        ));
    }
    Ok((train, validation, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_lines_and_the_rest() {
        let text = "name = \"x\"\n[optimize]\nparam = \"t\"\n[optimize.splits]\ntrain = 2\n[method]\nplugin = \"naive\"\n";
        let b = blank_optimize(text);
        assert_eq!(b.lines().count(), text.lines().count());
        assert_eq!(
            b,
            "name = \"x\"\n#\n#\n#\n#\n[method]\nplugin = \"naive\"\n"
        );
    }

    #[test]
    fn split_sizes_default_from_the_pool() {
        let d = SplitSizes::default();
        assert_eq!(split_sizes(&d, 200, true).unwrap(), (40, 80, 80));
        assert_eq!(split_sizes(&d, 10, true).unwrap(), (2, 4, 4));
        let s = SplitSizes {
            train: Some(5),
            validation: Some(5),
            test: Some(5),
        };
        assert!(
            split_sizes(&s, 12, true)
                .unwrap_err()
                .contains("more than the 12")
        );
        // Selecting on train: no validation split, train takes its share.
        assert_eq!(split_sizes(&d, 200, false).unwrap(), (120, 0, 80));
    }
}
