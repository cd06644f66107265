//! The host side of each WIT import, one module per capability (Spin's
//! "factor" idea): what the capability is configured with lives in
//! [`Capabilities`] (shared by all instances of an experiment), what one
//! instance did with it lives in [`CallContext`] (stored with the run).

pub mod budget;
pub mod embeddings;
pub mod http;
pub mod inference;
pub mod log;
pub mod nli;
pub mod retrieval;
mod state;
pub mod tools;

use std::sync::Arc;

use crate::components::budget::Deadline;
use crate::engine::EngineHandle;
use crate::engine::call_cache::CallCache;
use crate::results::records::LlmCall;
use crate::retrieval::Indexes;
use http::HttpConfig;
use inference::GenerationConfig;

pub use embeddings::TextEmbedder;
pub use http::{HttpClient, HttpRecord};
pub use retrieval::RetrievalRecord;
pub use state::CapabilityState;
pub use tools::{ToolBox, ToolCallRecord};

/// Configured capabilities, shared by every instance of one experiment.
pub struct Capabilities {
    /// None for plugins that must not generate (tools).
    pub engine: Option<EngineHandle>,
    pub generation: GenerationConfig,
    pub tools: Arc<ToolBox>,
    /// HTTP client: timeout, rate limit and cache shared by the experiment.
    pub http: Arc<HttpClient>,
    /// Retrieval indexes built for the experiment.
    pub indexes: Indexes,
    /// The `[embeddings]` model; None = the guest gets "no embedding model
    /// configured".
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    /// The `[nli] model`; None = the guest gets "no NLI model configured".
    pub nli: Option<Arc<nli::PairClassifier>>,
    /// Completed calls by content address; None = every call runs.
    pub call_cache: Option<Arc<CallCache>>,
}

impl Capabilities {
    /// No engine, no tools, no indexes; HTTP with default settings (still
    /// only to granted hosts).
    pub fn none() -> Arc<Self> {
        Arc::new(Self {
            engine: None,
            generation: GenerationConfig::default(),
            tools: Arc::new(ToolBox::default()),
            http: default_http(),
            indexes: Indexes::default(),
            embedder: None,
            nli: None,
            call_cache: None,
        })
    }

    /// What a tool component gets: the experiment's HTTP client and
    /// indexes, no engine, no tools of its own.
    pub fn for_tools(http: Arc<HttpClient>, indexes: Indexes) -> Arc<Self> {
        Arc::new(Self {
            engine: None,
            generation: GenerationConfig::default(),
            tools: Arc::new(ToolBox::default()),
            http,
            indexes,
            embedder: None,
            nli: None,
            call_cache: None,
        })
    }
}

/// One client with default settings for every [`Capabilities::none`] (it is
/// built per call: metric scoring, tool descriptions, rescoring).
fn default_http() -> Arc<HttpClient> {
    static DEFAULT: std::sync::OnceLock<Arc<HttpClient>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(HttpClient::new(&HttpConfig::default())))
        .clone()
}

/// One instance's view of the capabilities, and the record of its use.
pub struct CallContext {
    pub caps: Arc<Capabilities>,
    /// The example's seed; per-call seeds are derived from it.
    pub seed: u64,
    pub calls: Vec<LlmCall>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub http_calls: Vec<HttpRecord>,
    pub retrievals: Vec<RetrievalRecord>,
    pub logs: Vec<String>,
    /// Log bytes kept, and not kept (over `max_log_bytes`).
    pub logs_kept_bytes: usize,
    pub logs_dropped_bytes: usize,
    /// The example's deadline, shared with every store working on it.
    pub deadline: Deadline,
}

impl CallContext {
    /// A context without a deadline (plan-time calls); examples add theirs
    /// with [`Self::until`].
    pub fn new(caps: Arc<Capabilities>, seed: u64) -> Self {
        Self {
            caps,
            seed,
            calls: Vec::new(),
            tool_calls: Vec::new(),
            http_calls: Vec::new(),
            retrievals: Vec::new(),
            logs: Vec::new(),
            logs_kept_bytes: 0,
            logs_dropped_bytes: 0,
            deadline: Deadline::none(),
        }
    }

    pub fn until(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }
}

impl crate::components::bindings::types::Host for CapabilityState {}
