//! DPO training of a LoRA adapter (issue #14), the host side of the
//! `forge-train` crate: the `[train]` config, preference data, prompts as
//! the model's chat template renders them, the reference log-prob cache,
//! the run loop (steps, evaluation, checkpoints, resume), the run's record
//! in the results store, and `[sweep]` grids of runs.

pub mod config;
pub mod data;
pub mod prompt;
pub mod record;
pub mod reference;
pub mod run;
pub mod sweep;
