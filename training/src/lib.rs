//! forge-train: the numerical core of DPO fine-tuning (Rafailov et al.
//! 2023) of a LoRA adapter on a llama GGUF model, on CPU with candle's
//! autograd, matching Hugging Face TRL's `DPOTrainer` with a PEFT LoRA.
//!
//! Token ids in, adapter out: tokenisation, chat templates, data order,
//! storage and the CLI are the host's. Its own crate so it builds and
//! tests without the host.
//!
//! - [`base`]: the GGUF weights, dequantized to f32 and frozen.
//! - [`lora`]: the trainable `A`/`B` matrices, PEFT's init and names.
//! - [`model`]: the differentiable forward; per-sequence and per-token
//!   completion log-probabilities with the adapter on or off.
//! - [`autograd`] (internal): the frozen-weight linear op and recomputation.
//! - [`dpo`]: sigmoid / IPO / hinge losses and TRL's metrics.
//! - [`optim`], [`schedule`]: torch's AdamW, gradient clipping, HF schedules.
//! - [`trainer`]: a step with gradient accumulation.
//! - [`adapter`], [`layout`]: PEFT files in and out, merging, q/k row order.
//! - [`checkpoint`]: atomic, verified resumable state.

pub mod adapter;
mod autograd;
pub mod base;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod dpo;
pub mod error;
mod fsutil;
pub mod layout;
pub mod lora;
pub mod model;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod trainer;

pub use base::BaseModel;
pub use batch::Batch;
pub use config::LlamaConfig;
pub use dpo::{DpoConfig, DpoMetrics, LossType};
pub use error::{Result, TrainError};
pub use lora::{Lora, LoraConfig, Param, Target};
pub use model::{Adapter, Logps, Model};
pub use optim::{AdamW, AdamWConfig};
pub use schedule::{Schedule, ScheduleKind};
pub use trainer::{MicroBatch, PreferencePair, RefLogps, StepMetrics, TrainConfig, Trainer};
