//! Inference: the `Backend` trait, the request/response types, and the
//! worker that serialises access to a backend for concurrent examples.
//!
//! Backends are synchronous and own their model state (KV cache, ...); the
//! [`EngineHandle`] puts one on its own thread and lets any number of async
//! tasks submit requests. On that thread a scheduler gathers concurrent
//! generate requests into batched decode steps when the backend supports
//! it ([`BatchingBackend`]: continuous batching), else runs them one at a
//! time.

pub mod adapter;
mod arch;
pub mod call_cache;
pub mod candle_backend;
pub(crate) mod chat_template;
mod concurrent;
pub mod device;
mod device_llama;
mod gemma3;
pub mod gguf_tokenizer;
pub mod gpu_usage;
mod kv_slots;
pub mod llama;
pub(crate) mod load;
pub mod model_source;
pub mod openai_backend;
pub(crate) mod prefix_cache;
mod qlinear;
mod safetensors_model;
mod sampling;
mod scheduler;
mod weight_log;
mod worker;

pub use concurrent::ConcurrentBackend;
pub use scheduler::DEFAULT_MAX_BATCH;
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
    /// Keep only the k most likely tokens before sampling; 0 = off.
    #[serde(default)]
    pub top_k: u32,
    /// CTRL-style penalty on tokens already in the prompt or output
    /// (llama.cpp's `repeat_penalty`); 1.0 = off.
    #[serde(default = "one")]
    pub repetition_penalty: f32,
    /// Return the log-probability of each generated token and this many
    /// most likely alternatives at each step; `None` = no log-probabilities.
    #[serde(default)]
    pub logprobs: Option<u32>,
}

fn one() -> f32 {
    1.0
}

impl GenParams {
    /// Greedy decoding of up to `max_tokens`, nothing else switched on.
    pub fn greedy(max_tokens: u32) -> Self {
        Self {
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: 0,
            top_k: 0,
            repetition_penalty: 1.0,
            logprobs: None,
        }
    }
}

/// The log-probability of one generated token, with the most likely
/// alternatives at that step (as OpenAI's `logprobs`/`top_logprobs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub id: u32,
    /// Natural log of the probability under the model's raw distribution
    /// (before temperature, top-k/top-p and penalties).
    pub logprob: f32,
    /// The `logprobs` most likely tokens at this step, best first.
    pub top: Vec<(String, f32)>,
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
    /// One entry per completion token when `GenParams::logprobs` was set.
    #[serde(default)]
    pub tokens: Vec<TokenLogprob>,
    /// Prompt tokens whose KV state came from the prefix cache (not
    /// recomputed); 0 when the backend has no prefix cache.
    #[serde(default)]
    pub cached_prompt_tokens: u32,
    /// The most sequences decoded together in one forward pass while this
    /// request ran (1 = alone); 0 when the backend does not batch.
    #[serde(default)]
    pub max_batch: u32,
}

/// Output of a generation not yet handed to a stream: text no stop
/// sequence can still cut, and the log-probabilities of the tokens sampled
/// since the last delta (when asked for).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamDelta {
    pub text: String,
    pub tokens: Vec<TokenLogprob>,
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
    /// `[model] adapter`: the adapter's file and what is wrong with it.
    #[error("adapter {0}")]
    Adapter(String),
    #[error("backend: {0}")]
    Backend(String),
}

/// What every single-sequence forward checks first: some tokens, placed
/// where the cache ends (`cached` positions), inside the context window.
pub(crate) fn check_forward(
    tokens: usize,
    pos: usize,
    cached: usize,
    ctx: usize,
) -> Result<(), EngineError> {
    if tokens == 0 {
        return Err(EngineError::Backend("forward of zero tokens".into()));
    }
    if pos != cached {
        return Err(EngineError::Backend(format!(
            "forward at position {pos} but the cache holds {cached} tokens"
        )));
    }
    if pos + tokens > ctx {
        return Err(EngineError::ContextOverflow {
            prompt: pos + tokens,
            max_new: 0,
            ctx,
        });
    }
    Ok(())
}

/// What every batched decode step checks first: one token per sequence,
/// and the longest sequence (`longest` positions) still has room for it.
pub(crate) fn check_batch(
    tokens: usize,
    seqs: usize,
    longest: usize,
    ctx: usize,
) -> Result<(), EngineError> {
    if tokens == 0 || tokens != seqs {
        return Err(EngineError::Backend(format!(
            "batched forward of {tokens} tokens for {seqs} sequences"
        )));
    }
    if longest + 1 > ctx {
        return Err(EngineError::ContextOverflow {
            prompt: longest + 1,
            max_new: 0,
            ctx,
        });
    }
    Ok(())
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
    /// How weights are held in memory (e.g. "q8_0 requantised from q4_1"),
    /// with a merged adapter's short sha256.
    pub weights: String,
    /// `[model] adapter`: the LoRA adapter merged into the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<adapter::AdapterInfo>,
    pub threads: usize,
    pub backend: BackendKind,
    pub load_ms: f64,
}

/// Which engine answers, stored in [`ModelInfo`] by the names below (the
/// strings earlier builds wrote) and part of the call cache's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendKind {
    /// The embedded engine on this machine's CPU.
    #[serde(rename = "candle-cpu")]
    CandleCpu,
    /// A remote OpenAI-compatible server (vLLM, TGI, llama-server, ...).
    #[serde(rename = "openai")]
    OpenAi,
    /// The embedded engine's tensor path on an NVIDIA GPU (`device =
    /// "cuda"`): its answers can differ from the CPU's at near-ties, so
    /// the call cache keeps them apart.
    #[serde(rename = "candle-cuda")]
    CandleCuda,
}

impl BackendKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CandleCpu => "candle-cpu",
            Self::OpenAi => "openai",
            Self::CandleCuda => "candle-cuda",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model that can generate. Implementations own their state and are driven
/// from one thread at a time (see [`EngineHandle`]).
pub trait Backend: Send {
    fn info(&self) -> &ModelInfo;
    fn generate(&mut self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError>;

    /// The total log-probability of each continuation given the prompt,
    /// without sampling (rerankers, judges, multiple-choice scoring).
    fn score_continuations(
        &mut self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<f64>, EngineError> {
        let _ = (prompt, continuations);
        Err(EngineError::Backend(format!(
            "backend {} cannot score continuations",
            self.info().backend
        )))
    }

    /// How many tokens each continuation is after the prompt, as
    /// [`Backend::score_continuations`] tokenises it (per-token
    /// normalisation of those scores); no forward pass.
    fn continuation_tokens(
        &mut self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<u32>, EngineError> {
        let _ = (prompt, continuations);
        Err(EngineError::Backend(format!(
            "backend {} cannot count continuation tokens",
            self.info().backend
        )))
    }

    /// The backend's continuous-batching interface, if it has one; the
    /// engine thread then decodes concurrent requests together.
    fn batching(&mut self) -> Option<&mut dyn BatchingBackend> {
        None
    }
}

/// A backend that decodes several requests in one forward pass per step.
/// Requests join (after their own prefill) and leave (end token, stop
/// sequence, `max_tokens`) between steps; each keeps its own KV cache and
/// sampler, so its tokens do not depend on the others.
pub trait BatchingBackend {
    /// Prefills a request and adds it to the running set under `id`;
    /// `stream` asks for [`SequenceEvent::Delta`]s after each step.
    fn join(
        &mut self,
        id: u64,
        prompt: &Prompt,
        params: &GenParams,
        stream: bool,
    ) -> Result<(), EngineError>;
    /// One decode step of every running request (one batched forward),
    /// appending what happened to `events`; done requests leave the set.
    fn step(&mut self, events: &mut Vec<SequenceEvent>);
    /// Drops a running request whose caller has gone.
    fn cancel(&mut self, id: u64);
    /// Requests in the running set.
    fn running(&self) -> usize;
}

/// What a decode step did to one request.
#[derive(Debug)]
pub enum SequenceEvent {
    /// New output of a streaming request.
    Delta(u64, StreamDelta),
    /// The request left the batch with this result.
    Done(u64, Result<Generation, EngineError>),
}
