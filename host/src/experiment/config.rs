//! Experiment configs: the TOML schema and its validation.
//!
//! Every error names the file, the line and column, and the field, e.g.
//! `configs/nq.toml:14:8: dataset.sample: must be at least 1`. Parsing is
//! two steps: serde turns the text into [`ExperimentConfig`] (type errors,
//! unknown fields), then [`ExperimentConfig::validate`] checks meaning
//! (numbers in range, files that exist). Checks that need other rooms
//! (a plugin exports the right world) report through [`ConfigFile::error_at`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::components::Sandbox;
use crate::components::budget::{Budgets, OutputCaps};
pub use crate::components::capabilities::http::HttpConfig;
pub use crate::components::capabilities::inference::GenerationConfig;
pub use crate::components::grants::Grants;
use crate::components::grants::OutboundHosts;
pub use crate::experiment::datasets::DatasetKind;

/// A config error with its place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `metrics[1].plugin`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            if self.field.is_empty() {
                "(top level)"
            } else {
                &self.field
            },
            self.message
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short name, used in experiment ids.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds everything that is random (sampling of examples, generation).
    #[serde(default)]
    pub seed: u64,
    pub model: ModelConfig,
    pub dataset: DatasetConfig,
    pub method: PluginRef,
    #[serde(default)]
    pub metrics: Vec<PluginRef>,
    /// Tool components the method may call by name.
    #[serde(default)]
    pub tools: Vec<PluginRef>,
    #[serde(default)]
    pub generation: GenerationConfig,
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default)]
    pub sandbox: SandboxDefaults,
    #[serde(default)]
    pub stats: StatsConfig,
    /// Retrieval indexes the host builds for this experiment (BM25).
    #[serde(default)]
    pub indexes: Vec<IndexConfig>,
    /// The host's HTTP client for the `http` capability.
    #[serde(default)]
    pub http: HttpConfig,
    /// The model behind the `embeddings` capability (answer relevance, ...).
    #[serde(default)]
    pub embeddings: EmbeddingsConfig,
    /// The cross-encoder behind the `nli` capability (faithfulness `nli`).
    #[serde(default)]
    pub nli: NliConfig,
}

/// `[nli] model = "cross-encoder/nli-distilroberta-base"`: the NLI
/// cross-encoder plugins reach through `forge:plugin/nli` (a model
/// directory, relative to the config, or a Hugging Face id). Unset: plugins
/// get a clear "no NLI model configured" error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NliConfig {
    #[serde(default)]
    pub model: Option<String>,
}

/// `[embeddings] model = "all-minilm-l6-v2"`: the sentence encoder plugins
/// reach through `forge:plugin/embeddings` (the packaged alias, a model
/// directory, or a Hugging Face id fetched with hf-hub). Unset: plugins get
/// a clear "no embedding model configured" error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    #[serde(default)]
    pub model: Option<String>,
}

/// A retrieval index, searchable by plugins by `name`:
///
/// ```toml
/// [[indexes]]
/// name = "wiki"
/// corpus = "wiki-offline"   # packaged (scripts/fetch-data.sh), or a .json/.jsonl path
/// strategy = "hybrid"       # bm25 (default) | dense | hybrid | reranked | none
/// chunk_tokens = 256        # word pieces per chunk; 0 (default): whole documents
/// ```
///
/// Without `corpus`, `name` refers to an index stored by
/// `forge-host index build <name> --corpus FILE` (its chunks, embedding
/// model and vectors are reused; the chunking fields are then ignored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    pub name: String,
    /// A packaged corpus alias (`wiki-offline`) or a path, relative to the
    /// config file, to a `.jsonl` of `{id, title?, text}` passages or a
    /// `.json` object of `{title, extract}` summaries keyed by title.
    #[serde(default)]
    pub corpus: Option<String>,
    #[serde(default = "default_k1")]
    pub k1: f64,
    #[serde(default = "default_b")]
    pub b: f64,
    /// Drop common English words from documents and queries.
    #[serde(default = "default_true")]
    pub stopwords: bool,
    #[serde(default)]
    pub strategy: crate::retrieval::Strategy,
    /// Word pieces (of the embedding tokenizer) per chunk; 0: whole documents.
    #[serde(default)]
    pub chunk_tokens: usize,
    /// Word pieces shared by consecutive chunks of a document.
    #[serde(default)]
    pub chunk_overlap: usize,
    /// `all-minilm-l6-v2` (packaged), a model directory, or a Hugging Face
    /// sentence-transformers id.
    #[serde(default = "default_embedding")]
    pub embedding: String,
    /// How `hybrid` and `reranked` combine dense and BM25: `rrf` | `weighted`.
    #[serde(default)]
    pub fusion: crate::retrieval::Fusion,
    #[serde(default = "default_rrf_k")]
    pub rrf_k: f64,
    /// Weight of the dense scores in weighted fusion (BM25 gets 1 − w).
    #[serde(default = "default_dense_weight")]
    pub dense_weight: f64,
    /// `llm` (the experiment's model: log P(yes) − log P(no)) or a
    /// cross-encoder: a model directory (relative to the config) or a
    /// Hugging Face id.
    #[serde(default = "default_rerank")]
    pub rerank: String,
    /// Fused candidates the reranker re-scores (and each first stage's depth).
    #[serde(default = "default_rerank_candidates")]
    pub rerank_candidates: usize,
    #[serde(default)]
    pub hnsw: crate::retrieval::HnswParams,
}

impl IndexConfig {
    /// The search options these fields describe.
    pub fn search_options(&self) -> crate::retrieval::SearchOptions {
        crate::retrieval::SearchOptions {
            strategy: self.strategy,
            fusion: self.fusion,
            rrf_k: self.rrf_k,
            dense_weight: self.dense_weight,
            rerank: self.rerank.clone(),
            candidates: self.rerank_candidates,
        }
    }
}

fn default_embedding() -> String {
    crate::retrieval::embed::DEFAULT_MODEL.into()
}
fn default_rrf_k() -> f64 {
    crate::retrieval::fusion::DEFAULT_RRF_K
}
fn default_dense_weight() -> f64 {
    0.5
}
fn default_rerank() -> String {
    "llm".into()
}
fn default_rerank_candidates() -> usize {
    20
}
fn default_k1() -> f64 {
    1.2
}
fn default_b() -> f64 {
    0.75
}
fn default_true() -> bool {
    true
}

/// How aggregates are computed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Resamples of the bootstrap confidence intervals (seeded by `seed`).
    #[serde(default = "default_bootstrap_iterations")]
    pub bootstrap_iterations: usize,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            bootstrap_iterations: default_bootstrap_iterations(),
        }
    }
}

fn default_bootstrap_iterations() -> usize {
    crate::results::stats::BOOTSTRAP_ITERATIONS
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A packaged model alias (`smollm2-135m-instruct`) or a path to a `.gguf`
    /// file (backend "candle"; unused by "openai").
    #[serde(default)]
    pub source: String,
    /// `candle` (default: the embedded engine) or `openai` (a remote
    /// OpenAI-compatible server at `base_url`).
    #[serde(default)]
    pub backend: ModelBackend,
    /// backend "openai": the server, e.g. `http://127.0.0.1:8080`.
    pub base_url: Option<String>,
    /// backend "openai": the served model name sent with each request.
    pub model: Option<String>,
    /// backend "openai": environment variable holding the API key (sent as
    /// a bearer token); never the key itself, so configs can be shared.
    pub api_key_env: Option<String>,
    /// backend "openai": requests in flight at once.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// backend "openai": bound on each HTTP request, connect to last byte.
    #[serde(default = "default_model_timeout_ms")]
    pub timeout_ms: u64,
    /// backend "openai": further attempts after 429/5xx/connection errors
    /// (exponential backoff).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// CPU threads for the forward pass (recorded with the experiment).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// `native` (default: keep the file's types; Q4_1/Q8_0 run on forge's
    /// llama.cpp-compatible kernels) or `q8_0` (requantise 4-bit weights to
    /// Q8_0 at load; more memory per token, numerics differ, recorded).
    #[serde(default = "default_weights")]
    pub weights: String,
    /// Memory for the prefix cache's KV snapshots, MiB; 0 turns it off.
    #[serde(default = "default_prefix_cache_mib")]
    pub prefix_cache_mib: usize,
    /// A LoRA adapter in PEFT's layout (a directory, relative to the
    /// config), e.g. what `train dpo` wrote: merged into the weights at
    /// load (llama models), its sha256 part of the model's identity.
    pub adapter: Option<String>,
    /// Where the embedded engine runs: `cpu` (default), `cuda` or
    /// `cuda:N` (a forge-host built with the `cuda` feature).
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "cpu".into()
}

fn default_prefix_cache_mib() -> usize {
    crate::engine::prefix_cache::DEFAULT_PREFIX_CACHE_BYTES >> 20
}

fn default_threads() -> usize {
    2
}
/// `[model] backend`: who answers the experiment's model calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelBackend {
    /// The embedded engine (a packaged model or a `.gguf` file).
    #[default]
    Candle,
    /// A remote OpenAI-compatible server at `base_url`.
    Openai,
}
fn default_max_concurrency() -> usize {
    4
}
fn default_model_timeout_ms() -> u64 {
    120_000
}
fn default_retries() -> u32 {
    3
}
fn default_weights() -> String {
    "native".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// JSONL file, relative to the config file.
    pub path: String,
    /// What its rows are: `qa` (default) or `preference`.
    #[serde(default)]
    pub kind: DatasetKind,
    /// How many examples to draw (seeded); all when absent.
    pub sample: Option<usize>,
    /// Seed of the draw; the experiment seed when absent.
    pub seed: Option<u64>,
}

/// A plugin, its parameters, its sandbox grants and limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// A name looked up in the plugin directories (`naive` → `naive.wasm`),
    /// or a path to a `.wasm` component (relative to the config file).
    pub plugin: String,
    /// Passed to the plugin as a JSON object.
    #[serde(default)]
    pub params: toml::Table,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
    /// `[[tools]]` only: the name the method calls this tool by (default:
    /// the plugin's), e.g. `plugin = "passage_search"` granted as
    /// `name = "retrieval"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Per-plugin limits; absent fields fall back to `[sandbox]`. The
/// example's wall-clock deadline is the method's (`[method] limits`); every
/// other budget applies to each call of the plugin that names it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Guest compute time per call, ms (time inside host calls such as
    /// generation does not count).
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub example_timeout_ms: Option<u64>,
    pub max_model_calls: Option<u64>,
    pub max_generated_tokens: Option<u64>,
    pub max_items_per_call: Option<u64>,
    pub max_answer_bytes: Option<u64>,
    pub max_trace_steps: Option<u64>,
    pub max_log_bytes: Option<u64>,
}

/// `[sandbox]`: what every plugin gets unless its `limits` say otherwise.
/// The defaults let every shipped config run unchanged; they exist so that
/// one misbehaving plugin cannot hang, bloat or brick an experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxDefaults {
    /// Guest compute per call, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall clock per example, everything included (guest compute, model
    /// calls, embeddings, NLI, retrieval, tools, HTTP, metrics), ms; 0 = none.
    #[serde(default = "default_example_timeout_ms")]
    pub example_timeout_ms: u64,
    /// Model calls (generate, score) per plugin call.
    #[serde(default = "default_max_model_calls")]
    pub max_model_calls: u64,
    /// Completion tokens per plugin call (a generation is cut to what is left).
    #[serde(default = "default_max_generated_tokens")]
    pub max_generated_tokens: u64,
    /// Texts per embed, pairs per NLI call, continuations per score, k per search.
    #[serde(default = "default_max_items_per_call")]
    pub max_items_per_call: u64,
    /// A longer answer (text and contexts) fails its example (`output_too_large`).
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: u64,
    /// Trace steps kept per example; the rest are dropped with a note.
    #[serde(default = "default_max_trace_steps")]
    pub max_trace_steps: u64,
    /// Log bytes kept per example; the rest are dropped with a note.
    #[serde(default = "default_max_log_bytes")]
    pub max_log_bytes: u64,
}

impl SandboxDefaults {
    /// The sandbox of one plugin: its grants, its `limits` over these defaults.
    pub fn sandbox(&self, grants: &Grants, limits: &Limits) -> Sandbox {
        let d = self;
        let size = |v: Option<u64>, default: u64| {
            usize::try_from(v.unwrap_or(default)).unwrap_or(usize::MAX)
        };
        Sandbox {
            grants: grants.clone(),
            outbound: OutboundHosts::resolve(&grants.allowed_outbound_hosts),
            base_dir: None,
            timeout: Duration::from_millis(limits.timeout_ms.unwrap_or(d.timeout_ms)),
            memory_bytes: (limits.memory_mb.unwrap_or(d.memory_mb) as usize)
                .saturating_mul(1 << 20),
            example_timeout: Duration::from_millis(
                limits.example_timeout_ms.unwrap_or(d.example_timeout_ms),
            ),
            budgets: Budgets {
                max_model_calls: limits.max_model_calls.unwrap_or(d.max_model_calls),
                max_generated_tokens: limits
                    .max_generated_tokens
                    .unwrap_or(d.max_generated_tokens),
                max_items_per_call: limits.max_items_per_call.unwrap_or(d.max_items_per_call),
            },
            outputs: OutputCaps {
                max_answer_bytes: size(limits.max_answer_bytes, d.max_answer_bytes),
                max_trace_steps: size(limits.max_trace_steps, d.max_trace_steps),
                max_log_bytes: size(limits.max_log_bytes, d.max_log_bytes),
            },
        }
    }
}

impl Default for SandboxDefaults {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            memory_mb: default_memory_mb(),
            example_timeout_ms: default_example_timeout_ms(),
            max_model_calls: default_max_model_calls(),
            max_generated_tokens: default_max_generated_tokens(),
            max_items_per_call: default_max_items_per_call(),
            max_answer_bytes: default_max_answer_bytes(),
            max_trace_steps: default_max_trace_steps(),
            max_log_bytes: default_max_log_bytes(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_memory_mb() -> u64 {
    256
}
fn default_example_timeout_ms() -> u64 {
    600_000
}
fn default_max_model_calls() -> u64 {
    1_000
}
fn default_max_generated_tokens() -> u64 {
    200_000
}
fn default_max_items_per_call() -> u64 {
    4_096
}
fn default_max_answer_bytes() -> u64 {
    1 << 20
}
fn default_max_trace_steps() -> u64 {
    10_000
}
fn default_max_log_bytes() -> u64 {
    1 << 20
}

/// The first `max_*` budget set to 0 in `[sandbox]` or a plugin's
/// `limits` (each must be at least 1; `example_timeout_ms = 0` means none).
fn zero_budget(section: &impl Serialize) -> Option<String> {
    let serde_json::Value::Object(fields) = serde_json::to_value(section).ok()? else {
        return None;
    };
    fields
        .into_iter()
        .find(|(key, v)| key.starts_with("max_") && v.as_u64() == Some(0))
        .map(|(key, _)| key)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Examples in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Answer repeated model calls from the call cache (`run --no-cache`
    /// turns it off too).
    #[serde(default = "default_cache")]
    pub cache: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            cache: default_cache(),
        }
    }
}

fn default_cache() -> bool {
    true
}

fn default_concurrency() -> usize {
    1
}

/// A config file as read from disk: its text, its path and the parsed value.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
    pub config: ExperimentConfig,
}

/// A config file's text, or an error naming it.
pub(crate) fn read_config_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))
}

/// TOML text into `T`, a type or unknown-key error placed at its
/// file:line:col and dotted field (every config kind parses through here).
pub(crate) fn deserialize_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| toml_error(path, text, &e, ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        toml_error(path, text, e.inner(), &field)
    })
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self::parse(path, &read_config_text(path)?)?)
    }

    /// Parses and validates `text` (read from `path`).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: ExperimentConfig = deserialize_toml(path, text)?;
        let file = Self {
            path: path.to_path_buf(),
            text: text.to_string(),
            config,
        };
        file.validate()?;
        Ok(file)
    }

    /// Resolves a path written in the config relative to the config file.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// An error at `field` (dotted path, `metrics[1].plugin`), located in the text.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ConfigError {
        Self::error_in(&self.path, &self.text, field, message)
    }

    /// As [`ConfigFile::error_at`], for a text not (yet) parsed as a config.
    pub fn error_in(
        path: &Path,
        text: &str,
        field: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = locate(text, field).unwrap_or((1, 1));
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let bad = |field: &str, msg: &str| Err(self.error_at(field, msg));
        if c.name.trim().is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return bad("name", "must be non-empty letters, digits, '-', '_' or '.'");
        }
        let m = &c.model;
        match m.backend {
            ModelBackend::Candle => {
                if m.source.trim().is_empty() {
                    return bad("model.source", "must name a packaged model or a .gguf file");
                }
            }
            ModelBackend::Openai => {
                match &m.base_url {
                    None => {
                        return bad(
                            "model",
                            "backend \"openai\" needs base_url = \"http://host:port\"",
                        );
                    }
                    Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                        return bad("model.base_url", "must start with http:// or https://");
                    }
                    _ => {}
                }
                if m.model.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    return bad(
                        "model",
                        "backend \"openai\" needs model = \"<served model name>\"",
                    );
                }
                if !(1..=256).contains(&m.max_concurrency) {
                    return bad("model.max_concurrency", "must be between 1 and 256");
                }
                if m.timeout_ms == 0 {
                    return bad("model.timeout_ms", "must be at least 1");
                }
                if m.retries > 20 {
                    return bad("model.retries", "must be at most 20");
                }
            }
        }
        if c.model.threads == 0 {
            return bad("model.threads", "must be at least 1");
        }
        if !matches!(c.model.weights.as_str(), "q8_0" | "native" | "f32") {
            return bad("model.weights", "must be \"native\", \"q8_0\" or \"f32\"");
        }
        match c
            .model
            .device
            .parse::<crate::engine::device::ComputeDevice>()
        {
            Err(e) => return Err(self.error_at("model.device", e)),
            Ok(d) => {
                if let Some(why) = d.unavailable() {
                    return Err(self.error_at("model.device", why));
                }
                if d.is_tensor_path() && c.model.backend == ModelBackend::Openai {
                    return bad(
                        "model.device",
                        "a served model runs where its server runs; device is the embedded engine's",
                    );
                }
                if d.is_tensor_path() && c.model.weights == "q8_0" {
                    return bad("model.weights", crate::engine::device::Q8_0_IS_CPU_ONLY);
                }
            }
        }
        if let Some(a) = &c.model.adapter {
            if c.model.backend == ModelBackend::Openai {
                return bad(
                    "model.adapter",
                    "an adapter is merged by the embedded engine; a served model loads its own (vLLM's --lora-modules)",
                );
            }
            let dir = self.resolve(a);
            if !dir.join("adapter_config.json").is_file() {
                return Err(self.error_at(
                    "model.adapter",
                    format!(
                        "no PEFT adapter at {} (adapter_config.json + adapter_model.safetensors, as `train dpo` writes)",
                        dir.display()
                    ),
                ));
            }
        }
        let data = self.resolve(&c.dataset.path);
        if !data.is_file() {
            return Err(self.error_at(
                "dataset.path",
                format!("dataset file not found: {}", data.display()),
            ));
        }
        if c.dataset.sample == Some(0) {
            return bad("dataset.sample", "must be at least 1");
        }
        let g = &c.generation;
        if g.max_tokens == 0 {
            return bad("generation.max_tokens", "must be at least 1");
        }
        if !(g.temperature.is_finite() && (0.0..=5.0).contains(&g.temperature)) {
            return bad("generation.temperature", "must be between 0 and 5");
        }
        if !(g.top_p > 0.0 && g.top_p <= 1.0) {
            return bad("generation.top_p", "must be in (0, 1]");
        }
        if c.run.concurrency == 0 || c.run.concurrency > 256 {
            return bad("run.concurrency", "must be between 1 and 256");
        }
        if c.sandbox.timeout_ms == 0 {
            return bad("sandbox.timeout_ms", "must be at least 1");
        }
        if c.sandbox.memory_mb == 0 {
            return bad("sandbox.memory_mb", "must be at least 1");
        }
        if let Some(key) = zero_budget(&c.sandbox) {
            return bad(&format!("sandbox.{key}"), "must be at least 1");
        }
        if !(100..=1_000_000).contains(&c.stats.bootstrap_iterations) {
            return bad(
                "stats.bootstrap_iterations",
                "must be between 100 and 1000000",
            );
        }
        // A method or tool that searches names its index in `params.index`
        // (rag, passage_search, wikipedia_search offline): one the config
        // does not define fails here, not at every example's first search.
        let defined: Vec<&str> = c.indexes.iter().map(|ix| ix.name.as_str()).collect();
        let searchers = std::iter::once(("method".to_string(), &c.method)).chain(
            c.tools
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("tools[{i}]"), t)),
        );
        for (at, p) in searchers {
            if let Some(toml::Value::String(name)) = p.params.get("index")
                && !defined.contains(&name.as_str())
            {
                let have = if defined.is_empty() {
                    "it defines none; add [[indexes]] name = ... corpus = ...".to_string()
                } else {
                    format!("[[indexes]] names: {}", defined.join(", "))
                };
                return bad(
                    &format!("{at}.params.index"),
                    &format!(
                        "{} searches index {name:?}, which this experiment does not define ({have})",
                        p.plugin
                    ),
                );
            }
        }
        for (i, ix) in c.indexes.iter().enumerate() {
            let at = |f: &str| format!("indexes[{i}].{f}");
            if ix.name.is_empty()
                || !ix
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
            {
                return bad(&at("name"), "must be non-empty letters, digits, '-' or '_'");
            }
            if c.indexes[..i].iter().any(|o| o.name == ix.name) {
                return bad(
                    &at("name"),
                    &format!("index {:?} is defined twice", ix.name),
                );
            }
            if let Some(corpus) = &ix.corpus
                && crate::retrieval::corpus::packaged(corpus).is_none()
            {
                let aliases: Vec<&str> = crate::retrieval::corpus::PACKAGED
                    .iter()
                    .map(|p| p.alias)
                    .collect();
                if !(corpus.ends_with(".json") || corpus.ends_with(".jsonl")) {
                    return bad(
                        &at("corpus"),
                        &format!(
                            "unknown corpus {:?}: name a packaged corpus ({}) or a .json/.jsonl file",
                            corpus,
                            aliases.join(", ")
                        ),
                    );
                }
                let p = self.resolve(corpus);
                if !p.is_file() {
                    return Err(self.error_at(
                        &at("corpus"),
                        format!("corpus file not found: {}", p.display()),
                    ));
                }
            }
            if ix.chunk_tokens > 0 && ix.chunk_overlap >= ix.chunk_tokens {
                return bad(&at("chunk_overlap"), "must be smaller than chunk_tokens");
            }
            if ix.chunk_tokens == 0 && ix.chunk_overlap > 0 {
                return bad(
                    &at("chunk_overlap"),
                    "needs chunk_tokens > 0 (whole documents do not overlap)",
                );
            }
            if !(ix.rrf_k.is_finite() && ix.rrf_k >= 0.0) {
                return bad(&at("rrf_k"), "must be a number >= 0");
            }
            if !(0.0..=1.0).contains(&ix.dense_weight) {
                return bad(&at("dense_weight"), "must be between 0 and 1");
            }
            if !(1..=1000).contains(&ix.rerank_candidates) {
                return bad(&at("rerank_candidates"), "must be between 1 and 1000");
            }
            if ix.embedding.is_empty() {
                return bad(&at("embedding"), "must name a model");
            }
            if ix.rerank != "llm"
                && !self.resolve(&ix.rerank).is_dir()
                && !crate::retrieval::cross_encoder::is_hub_id(&ix.rerank)
            {
                return bad(
                    &at("rerank"),
                    &format!(
                        "reranker {:?}: use \"llm\", a cross-encoder model directory, or a Hugging Face id such as \"cross-encoder/ms-marco-MiniLM-L-6-v2\"",
                        ix.rerank
                    ),
                );
            }
            let hn = &ix.hnsw;
            if !(2..=256).contains(&hn.m) {
                return bad(&at("hnsw.m"), "must be between 2 and 256");
            }
            if hn.ef_construction == 0 || hn.ef_search == 0 {
                return bad(
                    &at("hnsw"),
                    "ef_construction and ef_search must be at least 1",
                );
            }
            if !(ix.k1.is_finite() && (0.0..=10.0).contains(&ix.k1)) {
                return bad(&at("k1"), "must be between 0 and 10");
            }
            if !(0.0..=1.0).contains(&ix.b) {
                return bad(&at("b"), "must be between 0 and 1");
            }
        }
        if let Some(m) = &c.nli.model
            && !self.resolve(m).is_dir()
            && !crate::retrieval::cross_encoder::is_hub_id(m)
        {
            return bad(
                "nli.model",
                &format!(
                    "{m:?}: name an NLI cross-encoder model directory or a Hugging Face id such as \"cross-encoder/nli-distilroberta-base\""
                ),
            );
        }
        let h = &c.http;
        if h.timeout_ms == 0 {
            return bad("http.timeout_ms", "must be at least 1");
        }
        if h.max_body_kb == 0 {
            return bad("http.max_body_kb", "must be at least 1");
        }
        if c.metrics.is_empty() {
            return bad(
                "metrics",
                "list at least one metric plugin ([[metrics]] plugin = \"f1\")",
            );
        }
        for (field, p) in self.plugin_refs() {
            if p.plugin.trim().is_empty() {
                return bad(&format!("{field}.plugin"), "must name a plugin");
            }
            if let Some(name) = &p.name {
                if !field.starts_with("tools[") {
                    return bad(
                        &format!("{field}.name"),
                        "only a [[tools]] entry has a name (the one the method calls it by)",
                    );
                }
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return bad(
                        &format!("{field}.name"),
                        "a tool name is letters, digits, '_' or '-' (what the agent writes to call it)",
                    );
                }
            }
            if p.limits.timeout_ms == Some(0) {
                return bad(&format!("{field}.limits.timeout_ms"), "must be at least 1");
            }
            if p.limits.memory_mb == Some(0) {
                return bad(&format!("{field}.limits.memory_mb"), "must be at least 1");
            }
            if let Some(key) = zero_budget(&p.limits) {
                return bad(&format!("{field}.limits.{key}"), "must be at least 1");
            }
            for (i, hp) in p.grants.allowed_outbound_hosts.iter().enumerate() {
                if hp
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
                {
                    return bad(
                        &format!("{field}.grants.allowed_outbound_hosts[{i}]"),
                        "must be host:port",
                    );
                }
            }
        }
        Ok(())
    }

    /// Every plugin reference with its field path, method first.
    pub fn plugin_refs(&self) -> Vec<(String, &PluginRef)> {
        let c = &self.config;
        let mut out = vec![("method".to_string(), &c.method)];
        out.extend(
            c.metrics
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("metrics[{i}]"), m)),
        );
        out.extend(
            c.tools
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("tools[{i}]"), t)),
        );
        out
    }
}

impl PluginRef {
    pub fn params_json(&self) -> String {
        serde_json::to_string(&self.params).expect("toml table serialises to JSON")
    }
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error, field: &str) -> ConfigError {
    if let Some(span) = e.span()
        && e.message().trim() == "duplicate key"
    {
        return duplicate_key_error(path, text, span);
    }
    let (line, column) = match e.span() {
        Some(span) => line_col(text, span.start),
        None => locate(text, field).unwrap_or((1, 1)),
    };
    ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        field: field.to_string(),
        message: e.message().trim().to_string(),
    }
}

/// toml says only "duplicate key" and where the second one is; this names
/// the key, its field path and the line of the first one.
fn duplicate_key_error(path: &Path, text: &str, span: std::ops::Range<usize>) -> ConfigError {
    let key = text
        .get(span.clone())
        .unwrap_or_default()
        .trim()
        .trim_matches(['"', '\'']);
    let (line, column) = line_col(text, span.start);
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_text = text[line_start..].lines().next().unwrap_or_default().trim();
    let (field, message) = if line_text.starts_with('[') {
        // A table header written twice: find the first by its text.
        let name = |l: &str| {
            let inner = l.trim().trim_start_matches('[').split(']').next();
            inner.unwrap_or_default().trim().to_string()
        };
        let header = name(line_text);
        let first = text[..line_start]
            .lines()
            .position(|l| l.trim_start().starts_with('[') && name(l) == header);
        let message = match first {
            Some(i) => format!("duplicate table `[{header}]` (first on line {})", i + 1),
            None => format!("duplicate table `[{header}]`"),
        };
        (header, message)
    } else {
        // The recoverable parse keeps the first definition: the one with
        // that name written last before the duplicate is it.
        let (doc, _) = toml::de::DeTable::parse_recoverable(text);
        let mut first: Option<(usize, String)> = None;
        find_key(doc.get_ref(), key, span.start, "", &mut first);
        match first {
            Some((offset, field)) => (
                field,
                format!(
                    "duplicate key `{key}` (first set on line {})",
                    line_col(text, offset).0
                ),
            ),
            None => (String::new(), format!("duplicate key `{key}`")),
        }
    };
    ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        field,
        message,
    }
}

/// The latest key named `key` starting before `before`, with its field path.
fn find_key(
    table: &toml::de::DeTable,
    key: &str,
    before: usize,
    prefix: &str,
    best: &mut Option<(usize, String)>,
) {
    use toml::de::DeValue;
    for (k, v) in table {
        let name = k.get_ref().as_ref();
        let field = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let at = k.span().start;
        if name == key && at < before && best.as_ref().is_none_or(|(b, _)| at > *b) {
            *best = Some((at, field.clone()));
        }
        match v.get_ref() {
            DeValue::Table(t) => find_key(t, key, before, &field, best),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        find_key(t, key, before, &format!("{field}[{i}]"), best);
                    }
                }
            }
            _ => {}
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Finds where `field` (e.g. `metrics[1].plugin`) is written in the TOML text.
/// Falls back to the nearest enclosing field that exists.
fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for seg in field.split('.').filter(|s| !s.is_empty()) {
        match seg.split_once('[') {
            Some((name, rest)) => {
                let idx = rest.trim_end_matches(']').parse().ok();
                parts.push((name.to_string(), idx));
            }
            None => parts.push((seg.to_string(), None)),
        }
    }
    let mut table = doc.get_ref();
    let mut best = None;
    for (i, (name, idx)) in parts.iter().enumerate() {
        let (key, value) = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == name.as_str())?;
        best = Some(key.span().start);
        let mut value = value;
        if let Some(idx) = idx {
            match value.get_ref() {
                DeValue::Array(items) => match items.get(*idx) {
                    Some(item) => {
                        value = item;
                        best = Some(item.span().start);
                    }
                    None => break,
                },
                _ => break,
            }
        }
        if i + 1 == parts.len() {
            break;
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    best.map(|off| line_col(text, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cfg(dir: &Path, body: &str) -> PathBuf {
        std::fs::write(dir.join("data.jsonl"), "{}\n").unwrap();
        let p = dir.join("exp.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    const GOOD: &str = r#"name = "t"
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "data.jsonl"
sample = 5
[method]
plugin = "naive"
[[metrics]]
plugin = "f1"
"#;

    #[test]
    fn a_good_config_parses_with_defaults() {
        let d = tempfile::tempdir().unwrap();
        let f = ConfigFile::load(&write_cfg(d.path(), GOOD)).unwrap();
        assert_eq!(f.config.run.concurrency, 1);
        assert_eq!(f.config.generation.max_tokens, 64);
        assert_eq!(f.config.method.params_json(), "{}");
    }

    fn err(body: &str) -> ConfigError {
        let d = tempfile::tempdir().unwrap();
        let p = write_cfg(d.path(), body);
        let text = std::fs::read_to_string(&p).unwrap();
        ConfigFile::parse(&p, &text).unwrap_err()
    }

    #[test]
    fn a_bad_number_names_line_and_field() {
        let e = err(&GOOD.replace("sample = 5", "sample = \"five\""));
        assert_eq!((e.line, e.field.as_str()), (6, "dataset.sample"), "{e}");
        let e = err(&GOOD.replace("sample = 5", "sample = 0"));
        assert_eq!((e.line, e.field.as_str()), (6, "dataset.sample"), "{e}");
        assert!(e.to_string().contains("exp.toml:6:"), "{e}");
    }

    #[test]
    fn a_missing_dataset_names_the_path() {
        let e = err(&GOOD.replace("data.jsonl", "nope.jsonl"));
        assert_eq!((e.line, e.field.as_str()), (5, "dataset.path"), "{e}");
        assert!(e.message.contains("nope.jsonl"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let e = err(&GOOD.replace("sample = 5", "sample = 5\nsampel = 3"));
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("sampel"), "{e}");
    }

    #[test]
    fn a_zero_budget_is_refused_at_its_key() {
        let e = err(&format!("{GOOD}[sandbox]\nmax_model_calls = 0\n"));
        assert_eq!(e.field, "sandbox.max_model_calls", "{e}");
        let body =
            format!("{GOOD}[[metrics]]\nplugin = \"em\"\nlimits = {{ max_log_bytes = 0 }}\n");
        let e = err(&body);
        assert_eq!(e.field, "metrics[1].limits.max_log_bytes", "{e}");
        // No deadline is allowed: validation goes past [sandbox].
        let d = tempfile::tempdir().unwrap();
        let p = write_cfg(
            d.path(),
            &format!("{GOOD}[sandbox]\nexample_timeout_ms = 0\n"),
        );
        ConfigFile::load(&p).unwrap();
    }

    #[test]
    fn errors_in_arrays_of_tables_point_at_the_entry() {
        let body = format!("{GOOD}[[metrics]]\nplugin = \"em\"\nlimits = {{ timeout_ms = 0 }}\n");
        let e = err(&body);
        assert_eq!(e.field, "metrics[1].limits.timeout_ms", "{e}");
        assert_eq!(e.line, 13, "{e}");
    }

    #[test]
    fn indexes_and_http_parse_with_defaults_and_errors_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let body = format!("{GOOD}[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"\n");
        let f = ConfigFile::load(&write_cfg(d.path(), &body)).unwrap();
        let ix = &f.config.indexes[0];
        assert_eq!((ix.k1, ix.b, ix.stopwords), (1.2, 0.75, true));
        assert_eq!(f.config.http, HttpConfig::default());

        let e = err(&format!("{body}b = 1.5\n"));
        assert_eq!((e.line, e.field.as_str()), (14, "indexes[0].b"), "{e}");
        let e = err(&format!(
            "{body}[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"\n"
        ));
        assert_eq!((e.line, e.field.as_str()), (15, "indexes[1].name"), "{e}");
        assert!(e.message.contains("defined twice"), "{e}");
        let e = err(&body.replace("\"wiki-offline\"", "\"wikipedia\""));
        assert_eq!((e.line, e.field.as_str()), (13, "indexes[0].corpus"), "{e}");
        assert!(e.message.contains("packaged corpus (wiki-offline)"), "{e}");
        let e = err(&body.replace("\"wiki-offline\"", "\"missing.jsonl\""));
        assert!(e.message.starts_with("corpus file not found"), "{e}");
        let e = err(&format!("{body}nmae = \"x\"\n"));
        assert_eq!(e.line, 14, "{e}");
        assert!(e.message.contains("nmae"), "{e}");
        let e = err(&format!("{GOOD}[http]\ntimeout_ms = 0\n"));
        assert_eq!((e.line, e.field.as_str()), (12, "http.timeout_ms"), "{e}");
    }

    #[test]
    fn retrieval_strategy_fields_default_to_bm25_and_errors_name_the_field() {
        use crate::retrieval::{Fusion, Strategy};
        let d = tempfile::tempdir().unwrap();
        let body = format!("{GOOD}[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"\n");
        let f = ConfigFile::load(&write_cfg(d.path(), &body)).unwrap();
        let ix = &f.config.indexes[0];
        assert_eq!(ix.strategy, Strategy::Bm25);
        assert_eq!((ix.chunk_tokens, ix.chunk_overlap), (0, 0));
        assert_eq!(ix.embedding, "all-minilm-l6-v2");
        assert_eq!(
            (ix.fusion, ix.rrf_k, ix.dense_weight),
            (Fusion::Rrf, 60.0, 0.5)
        );
        assert_eq!((ix.rerank.as_str(), ix.rerank_candidates), ("llm", 20));
        assert_eq!(ix.hnsw, crate::retrieval::HnswParams::default());

        let full = format!(
            "{body}strategy = \"reranked\"\nchunk_tokens = 256\nchunk_overlap = 32\nfusion = \"weighted\"\ndense_weight = 0.7\nrerank_candidates = 10\nhnsw = {{ m = 32, ef_search = 128 }}\n"
        );
        let f = ConfigFile::load(&write_cfg(d.path(), &full)).unwrap();
        let ix = &f.config.indexes[0];
        assert_eq!(
            (ix.strategy, ix.fusion),
            (Strategy::Reranked, Fusion::Weighted)
        );
        assert_eq!(
            (ix.hnsw.m, ix.hnsw.ef_search, ix.hnsw.ef_construction),
            (32, 128, 200)
        );
        // A cross-encoder by hub id or directory is accepted unloaded (it
        // loads with the index); so is an [nli] model.
        let hub = format!(
            "{body}strategy = \"reranked\"\nrerank = \"cross-encoder/ms-marco-MiniLM-L-6-v2\"\n[nli]\nmodel = \".\"\n"
        );
        let f = ConfigFile::load(&write_cfg(d.path(), &hub)).unwrap();
        assert_eq!(
            f.config.indexes[0].rerank,
            "cross-encoder/ms-marco-MiniLM-L-6-v2"
        );
        assert_eq!(f.config.nli.model.as_deref(), Some("."));
        let e = err(&format!("{body}[nli]\nmodel = \"nli-model\"\n"));
        assert_eq!((e.line, e.field.as_str()), (15, "nli.model"), "{e}");
        assert!(e.message.contains("Hugging Face id"), "{e}");
        // No corpus: a stored index.
        let f = ConfigFile::load(&write_cfg(
            d.path(),
            &format!("{GOOD}[[indexes]]\nname = \"squad-256\"\nstrategy = \"dense\"\n"),
        ))
        .unwrap();
        assert!(f.config.indexes[0].corpus.is_none());

        let e = err(&format!("{body}strategy = \"semantic\"\n"));
        assert_eq!(
            (e.line, e.field.as_str()),
            (14, "indexes[0].strategy"),
            "{e}"
        );
        assert!(
            e.message.contains("bm25") && e.message.contains("reranked"),
            "{e}"
        );
        let e = err(&format!("{body}chunk_tokens = 128\nchunk_overlap = 128\n"));
        assert_eq!(
            (e.line, e.field.as_str()),
            (15, "indexes[0].chunk_overlap"),
            "{e}"
        );
        let e = err(&format!("{body}chunk_overlap = 8\n"));
        assert!(e.message.contains("needs chunk_tokens"), "{e}");
        let e = err(&format!("{body}dense_weight = 1.5\n"));
        assert_eq!(
            (e.line, e.field.as_str()),
            (14, "indexes[0].dense_weight"),
            "{e}"
        );
        let e = err(&format!("{body}fusion = \"max\"\n"));
        assert_eq!((e.line, e.field.as_str()), (14, "indexes[0].fusion"), "{e}");
        let e = err(&format!(
            "{body}strategy = \"reranked\"\nrerank = \"no-such-dir\"\n"
        ));
        assert_eq!((e.line, e.field.as_str()), (15, "indexes[0].rerank"), "{e}");
        assert!(e.message.contains("Hugging Face id"), "{e}");
        let e = err(&format!("{body}hnsw = {{ m = 1 }}\n"));
        assert_eq!(e.field.as_str(), "indexes[0].hnsw.m", "{e}");
        let e = err(&format!("{body}hnsw = {{ M = 4 }}\n"));
        assert!(e.message.contains("M"), "{e}");
    }

    #[test]
    fn a_temperature_out_of_range_is_refused() {
        let e = err(&format!("{GOOD}[generation]\ntemperature = -1.0\n"));
        assert_eq!(
            (e.line, e.field.as_str()),
            (12, "generation.temperature"),
            "{e}"
        );
    }

    #[test]
    fn the_openai_backend_needs_a_url_and_a_model_name() {
        let remote = GOOD.replace(
            "source = \"smollm2-135m-instruct\"",
            "backend = \"openai\"\nbase_url = \"http://127.0.0.1:8080\"\nmodel = \"m\"",
        );
        let d = tempfile::tempdir().unwrap();
        let f = ConfigFile::load(&write_cfg(d.path(), &remote)).unwrap();
        let m = &f.config.model;
        assert_eq!(
            (m.max_concurrency, m.timeout_ms, m.retries),
            (4, 120_000, 3)
        );
        assert_eq!(
            ConfigFile::load(&write_cfg(d.path(), GOOD))
                .unwrap()
                .config
                .model
                .backend,
            ModelBackend::Candle
        );

        let e = err(&remote.replace("base_url = \"http://127.0.0.1:8080\"\n", ""));
        assert_eq!((e.line, e.field.as_str()), (2, "model"), "{e}");
        assert!(e.message.contains("base_url"), "{e}");
        let e = err(&remote.replace("http://127", "127"));
        assert_eq!((e.line, e.field.as_str()), (4, "model.base_url"), "{e}");
        let e = err(&remote.replace("model = \"m\"\n", ""));
        assert!(e.message.contains("needs model"), "{e}");
        let e = err(&remote.replace("\"openai\"", "\"vllm\""));
        assert_eq!((e.line, e.field.as_str()), (3, "model.backend"), "{e}");
        let e = err(&remote.replace("model = \"m\"", "model = \"m\"\nmax_concurrency = 0"));
        assert_eq!(e.field, "model.max_concurrency", "{e}");
        let e = err(&GOOD.replace("source = \"smollm2-135m-instruct\"", "threads = 2"));
        assert_eq!(e.field, "model.source", "{e}");
    }
}
