//! The `[train]` table of a DPO config: TOML read like experiment configs
//! (unknown keys refused, errors as `file:line:col: field: message`) and
//! mapped onto forge-train's `TrainConfig`.

use std::path::{Path, PathBuf};

use forge_train::schedule::Schedule;
use forge_train::{
    AdamWConfig, DpoConfig, LoraConfig, LossType, ScheduleKind, Target, TrainConfig,
};
use serde::{Deserialize, Serialize};

use crate::experiment::config::{ConfigError, ConfigFile, deserialize_toml, read_config_text};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainFile {
    train: TrainTable,
}

/// `[train]` as written, defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTable {
    /// A packaged alias or a .gguf path (the candle backend's sources).
    pub model: String,
    /// Preference JSONL `{id, prompt, chosen, rejected}`.
    pub data: String,
    #[serde(default = "d_validation_fraction")]
    pub validation_fraction: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_beta")]
    pub beta: f64,
    #[serde(default = "d_loss")]
    pub loss: LossType,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "d_schedule")]
    pub schedule: ScheduleKind,
    #[serde(default = "d_epochs")]
    pub epochs: u64,
    /// Overrides `epochs` when set.
    #[serde(default)]
    pub max_steps: Option<u64>,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_accum")]
    pub grad_accum: usize,
    #[serde(default = "d_prompt")]
    pub max_prompt_tokens: usize,
    #[serde(default = "d_completion")]
    pub max_completion_tokens: usize,
    #[serde(default)]
    pub lora: LoraTable,
    #[serde(default = "d_grad_norm")]
    pub max_grad_norm: f64,
    /// Steps between validation passes (0: only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Steps between checkpoints (0: none; the run cannot resume).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Only the first N training pairs (ablations).
    #[serde(default)]
    pub limit_pairs: Option<usize>,
    /// Adapter directory (default `<home>/adapters/<run id>`).
    #[serde(default)]
    pub output: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraTable {
    #[serde(default = "d_rank")]
    pub rank: usize,
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default = "d_targets")]
    pub target_modules: Vec<String>,
}

impl Default for LoraTable {
    fn default() -> Self {
        Self {
            rank: d_rank(),
            alpha: d_alpha(),
            dropout: 0.0,
            target_modules: d_targets(),
        }
    }
}

fn d_validation_fraction() -> f64 {
    0.1
}
fn d_beta() -> f64 {
    0.1
}
fn d_loss() -> LossType {
    LossType::Sigmoid
}
fn d_lr() -> f64 {
    5e-6
}
fn d_schedule() -> ScheduleKind {
    ScheduleKind::Linear
}
fn d_epochs() -> u64 {
    1
}
fn d_batch() -> usize {
    2
}
fn d_accum() -> usize {
    1
}
fn d_prompt() -> usize {
    256
}
fn d_completion() -> usize {
    128
}
fn d_grad_norm() -> f64 {
    1.0
}
fn d_rank() -> usize {
    8
}
fn d_alpha() -> f64 {
    16.0
}
fn d_targets() -> Vec<String> {
    Target::ALL
        .iter()
        .map(|t| t.peft_name().to_string())
        .collect()
}

/// A train config file: its text (stored with the run), path and table.
#[derive(Clone, Debug)]
pub struct TrainConfigFile {
    pub path: PathBuf,
    pub text: String,
    pub train: TrainTable,
}

impl TrainConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self::parse(path, &read_config_text(path)?)?)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: TrainFile = deserialize_toml(path, text)?;
        let f = Self {
            path: path.to_path_buf(),
            text: text.to_string(),
            train: file.train,
        };
        f.validate()?;
        Ok(f)
    }

    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigFile::error_in(&self.path, &self.text, field, message)
    }

    /// A path written in the config, relative to the config's folder.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.train;
        let bad = |field: &str, msg: &str| Err(self.error_at(field, msg));
        if !(0.0..1.0).contains(&t.validation_fraction) {
            return bad("train.validation_fraction", "must be in [0, 1)");
        }
        if !(t.beta.is_finite() && t.beta > 0.0) {
            return bad("train.beta", "must be a positive number");
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad("train.lr", "must be a positive number");
        }
        if t.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1");
        }
        if t.grad_accum == 0 {
            return bad("train.grad_accum", "must be at least 1");
        }
        if t.max_steps == Some(0) {
            return bad("train.max_steps", "must be at least 1");
        }
        if t.max_steps.is_none() && t.epochs == 0 {
            return bad("train.epochs", "must be at least 1");
        }
        if t.max_prompt_tokens == 0 {
            return bad("train.max_prompt_tokens", "must be at least 1");
        }
        if t.max_completion_tokens == 0 {
            return bad("train.max_completion_tokens", "must be at least 1");
        }
        if t.limit_pairs == Some(0) {
            return bad("train.limit_pairs", "must be at least 1");
        }
        if !(t.max_grad_norm.is_finite() && t.max_grad_norm >= 0.0) {
            return bad(
                "train.max_grad_norm",
                "must be a number >= 0 (0: no clipping)",
            );
        }
        if t.lora.rank == 0 {
            return bad("train.lora.rank", "must be at least 1");
        }
        if !(t.lora.alpha.is_finite() && t.lora.alpha > 0.0) {
            return bad("train.lora.alpha", "must be a positive number");
        }
        if !(0.0..1.0).contains(&t.lora.dropout) {
            return bad("train.lora.dropout", "must be in [0, 1)");
        }
        if t.lora.target_modules.is_empty() {
            return bad("train.lora.target_modules", "names no module");
        }
        for m in &t.lora.target_modules {
            if Target::parse(m).is_err() {
                return bad(
                    "train.lora.target_modules",
                    &format!(
                        "unknown module {m:?} (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"
                    ),
                );
            }
        }
        Ok(())
    }

    pub fn lora_config(&self) -> LoraConfig {
        let l = &self.train.lora;
        LoraConfig {
            r: l.rank,
            alpha: l.alpha,
            dropout: l.dropout,
            targets: l
                .target_modules
                .iter()
                .map(|m| Target::parse(m).expect("validated"))
                .collect(),
            use_rslora: false,
        }
    }

    /// The crate's config for a run of `total_steps` optimizer steps.
    pub fn train_config(&self, total_steps: u64) -> TrainConfig {
        let t = &self.train;
        TrainConfig {
            dpo: DpoConfig {
                beta: t.beta,
                loss_type: t.loss,
            },
            optimizer: AdamWConfig::default(),
            schedule: Schedule {
                kind: t.schedule,
                base_lr: t.lr,
                warmup_steps: t.warmup_steps,
                total_steps,
            },
            max_grad_norm: (t.max_grad_norm > 0.0).then_some(t.max_grad_norm),
        }
    }

    /// Optimizer steps for `n_train` training pairs.
    pub fn total_steps(&self, n_train: usize) -> u64 {
        let t = &self.train;
        let per_step = t.batch_size * t.grad_accum;
        t.max_steps
            .unwrap_or_else(|| t.epochs * n_train.div_ceil(per_step).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TrainConfigFile, ConfigError> {
        TrainConfigFile::parse(Path::new("t.toml"), body)
    }

    #[test]
    fn defaults_fill_in() {
        let c = parse("[train]\nmodel = \"m\"\ndata = \"d.jsonl\"\n").unwrap();
        assert_eq!(c.train.beta, 0.1);
        assert_eq!(c.train.lr, 5e-6);
        assert_eq!(c.train.max_prompt_tokens, 256);
        assert_eq!(c.train.lora.target_modules.len(), 7);
        assert_eq!(c.lora_config().r, 8);
        assert_eq!(c.train_config(10).max_grad_norm, Some(1.0));
    }

    #[test]
    fn unknown_key_is_placed() {
        let e = parse("[train]\nmodel = \"m\"\ndata = \"d\"\n\nbta = 0.2\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "train.bta"), "{e}");
        assert!(e.message.contains("bta"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = parse("[train]\nmodel = \"m\"\ndata = \"d\"\nloss = \"kto\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "train.loss"), "{e}");
        let e =
            parse("[train]\nmodel = \"m\"\ndata = \"d\"\n[train.lora]\nrank = 0\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "train.lora.rank"), "{e}");
        let e = parse(
            "[train]\nmodel = \"m\"\ndata = \"d\"\n[train.lora]\ntarget_modules = [\"qq\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.toml:5:1: train.lora.target_modules: unknown module"),
            "{e}"
        );
    }

    #[test]
    fn steps_from_epochs_or_max_steps() {
        let c = parse(
            "[train]\nmodel = \"m\"\ndata = \"d\"\nbatch_size = 2\ngrad_accum = 2\nepochs = 3\n",
        )
        .unwrap();
        assert_eq!(c.total_steps(9), 9); // ceil(9 / 4) = 3 per epoch
        let c = parse("[train]\nmodel = \"m\"\ndata = \"d\"\nmax_steps = 5\n").unwrap();
        assert_eq!(c.total_steps(100), 5);
    }
}
