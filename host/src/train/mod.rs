//! DPO training of a LoRA adapter (issue #14), the host side of the
//! `forge-train` crate: the `[train]` config, preference data, prompts as
//! the model's chat template renders them, the reference log-prob cache
//! and the run loop (steps, evaluation, checkpoints, resume, records).

pub mod config;
pub mod data;
pub mod prompt;
pub mod reference;
pub mod run;
