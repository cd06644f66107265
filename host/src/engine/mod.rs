//! Inference: the `Backend` trait, the request/response types, and the
//! worker that serialises access to a backend for concurrent examples.
//!
//! Backends are synchronous and own their model state (KV cache, ...); the
//! [`EngineHandle`] puts one on its own thread and lets any number of async
//! tasks submit requests. A later scheduler can gather those requests into
//! batches without changing the plugin contract.

pub mod candle_backend;
pub mod chat_template;
pub mod gguf_tokenizer;
pub mod llama;
pub mod model_source;
pub mod sampling;
mod worker;

pub use worker::EngineHandle;

use serde::{Deserialize, Serialize};

/// A chat message, as plugins send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What to feed the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Prompt {
    /// Rendered with the model's chat template, generation prompt appended.
    Chat(Vec<Message>),
    /// Tokenized as is.
    Raw(String),
}

/// Sampling and stopping controls for one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    pub max_tokens: u32,
    /// 0.0 = greedy.
    pub temperature: f32,
    /// 1.0 = no nucleus truncation.
    pub top_p: f32,
    pub stop: Vec<String>,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    Stop,
    Length,
}

/// The result of one generate call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The exact prompt text the model saw (after templating).
    pub prompt_text: String,
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish_reason: FinishReason,
    /// Wall time spent in prefill (prompt) and decode, milliseconds.
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid generation parameters: {0}")]
    InvalidParams(String),
    #[error("prompt of {prompt} tokens + {max_new} new tokens exceeds the context window of {ctx}")]
    ContextOverflow {
        prompt: usize,
        max_new: usize,
        ctx: usize,
    },
    #[error("model file: {0}")]
    Load(String),
    #[error("backend: {0}")]
    Backend(String),
}

/// Facts about the loaded model, recorded with every experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelInfo {
    /// What the config asked for (alias, path, ...).
    pub source: String,
    pub path: String,
    pub sha256: String,
    pub architecture: String,
    pub context_length: usize,
    /// How weights are held in memory (e.g. "q8_0 requantised from q4_1").
    pub weights: String,
    pub threads: usize,
    pub backend: String,
    pub load_ms: f64,
}

/// A model that can generate. Implementations own their state and are driven
/// from one thread at a time (see [`EngineHandle`]).
pub trait Backend: Send {
    fn info(&self) -> &ModelInfo;
    fn generate(&mut self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError>;
}
