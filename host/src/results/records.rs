//! What an experiment leaves behind, as data: the experiment, its runs (LLM
//! calls, trace, scores, error), sweep groups (of experiments or of
//! training runs, which are [`super::training`]), and the `RunScores`
//! projection. Serialised as JSON exactly as stored; the database itself
//! is [`super::store`], so code that only reads or builds records (stats,
//! the capabilities recording calls) never touches redb.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::ModelInfo;

/// The experiment life cycle. Only forward moves along
/// PENDING → RUNNING → COMPLETED | FAILED are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        })
    }
}

impl Status {
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Pending, Status::Running)
                | (Status::Running, Status::Completed)
                | (Status::Running, Status::Failed)
        )
    }
}

/// A plugin as loaded for an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// `method`, `metric` or `tool`.
    pub role: String,
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub contract: String,
    pub params: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub config_path: String,
    pub config_text: String,
    pub config_sha256: String,
    /// Hash of everything that decides the outputs (config, model, plugins,
    /// dataset): experiments with the same plan hash can resume each other.
    pub plan_sha256: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub host_version: String,
    /// sha256 of the forge-host binary that ran it.
    #[serde(default)]
    pub host_sha256: String,
    pub wasmtime_version: String,
    pub model: ModelInfo,
    pub plugins: Vec<PluginRecord>,
    pub dataset_path: String,
    pub dataset_sha256: String,
    /// Ids of the examples in this experiment, in run order.
    pub example_ids: Vec<String>,
    /// Names of the scores the metrics produce.
    pub score_names: Vec<String>,
    pub error: Option<String>,
    /// Set on an experiment made by `forge-host rescore`: the experiment
    /// whose stored outputs it scored again (no model call was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescored_from: Option<String>,
    /// Set on an experiment made by `forge-host judge`: the two experiments
    /// whose answers its judge compared (each example one pair of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<JudgedPair>,
}

/// The experiments a judging run compared: answer A from `a`, B from `b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgedPair {
    pub a: String,
    pub b: String,
}

/// A sweep: the experiments (or training runs) one config's `[sweep]`
/// grid expanded into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// What the cells are (groups stored before training sweeps: experiments).
    #[serde(default, skip_serializing_if = "GroupKind::is_experiments")]
    pub kind: GroupKind,
    pub config_path: String,
    pub config_text: String,
    pub config_sha256: String,
    pub created_at: String,
    /// The swept config paths (`method`, `generation.temperature`, ...).
    pub axes: Vec<String>,
    /// One per grid cell, in grid order.
    pub members: Vec<GroupMember>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// Label of this cell's value on each axis, in `axes` order.
    pub labels: Vec<String>,
    /// Set once the cell's experiment exists.
    pub experiment_id: Option<String>,
    /// In a training sweep: the cell's training run, set once its id is
    /// known (before it trains, so a killed sweep points at it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_run: Option<String>,
    /// In an optimization suite: the cell's optimization run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimization: Option<String>,
}

/// What a group's cells are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    #[default]
    Experiments,
    /// `train dpo` on a config with `[sweep]`: each cell a training run.
    Training,
    /// `forge-host align`: each axis run with the base and the tuned model
    /// (labels `[axis, base|tuned]`), and the judging run (`[judge, …]`).
    Alignment,
    /// `optimize` on a config with `[sweep]` (e.g. over models): each cell
    /// an optimization run with its own best prompt.
    Optimization,
}

impl GroupKind {
    pub fn is_experiments(&self) -> bool {
        *self == GroupKind::Experiments
    }
}

/// One call to the model, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// What was asked of the model (records before 0.1.2: `generate`).
    #[serde(default)]
    pub kind: CallKind,
    pub prompt: String,
    pub output: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub latency_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub finish_reason: String,
    pub params: serde_json::Value,
    pub error: Option<String>,
    /// Prompt tokens whose KV state came from the prefix cache.
    #[serde(default)]
    pub cached_prompt_tokens: u32,
    /// Answered from the call cache (nothing ran).
    #[serde(default)]
    pub cache_hit: bool,
    /// The most requests decoded together in one forward pass while this
    /// call ran (continuous batching; 1 = alone, 0 = not a batching engine).
    #[serde(default)]
    pub max_batch: u32,
}

/// What a recorded model call asked for, stored as its lowercase name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    /// A generation (`inference.complete`, `inference.chat`, ...).
    #[default]
    Generate,
    /// Log-probabilities of given continuations (`inference.score`).
    Score,
    /// Sentence embeddings (`embeddings.embed`).
    Embed,
    /// Natural-language inference (`nli.classify`).
    Nli,
}

impl CallKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Score => "score",
            Self::Embed => "embed",
            Self::Nli => "nli",
        }
    }
}

impl std::fmt::Display for CallKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a method's trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    pub kind: String,
    pub content: String,
}

/// Why an example failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// `timeout`, `memory_limit`, `trap`, `deadline`, `budget`, `exit`,
    /// `output_too_large`, `plugin_error`, `host`; for a metric's error also
    /// `invalid_score`.
    pub kind: String,
    pub message: String,
}

/// One example's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub index: u32,
    pub example_id: String,
    pub question: String,
    pub references: Vec<String>,
    pub answer: Option<String>,
    pub trace: Vec<TraceStep>,
    pub contexts: Vec<String>,
    pub calls: Vec<LlmCall>,
    pub logs: Vec<String>,
    pub scores: BTreeMap<String, f64>,
    pub metric_errors: BTreeMap<String, RunError>,
    pub error: Option<RunError>,
    /// Wall time of the whole example (method + metrics), ms.
    pub latency_ms: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub finished_at: String,
}

impl RunRecord {
    /// The run's value for score `name`, as every aggregate counts it: a
    /// failed example (no answer) scores 0; a metric that broke on this
    /// example leaves it out (None).
    pub fn score_value(&self, name: &str) -> Option<f64> {
        score_value(&self.scores, self.error.as_ref(), name)
    }
}

/// The one rule behind [`RunRecord::score_value`] and [`RunScores::score_value`].
fn score_value(
    scores: &BTreeMap<String, f64>,
    error: Option<&RunError>,
    name: &str,
) -> Option<f64> {
    scores.get(name).copied().or(error.map(|_| 0.0))
}

/// What aggregates and comparisons need of a run, read without its
/// prompts, outputs and logs (so 100,000 runs stay cheap to summarise).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RunScores {
    pub index: u32,
    pub example_id: String,
    pub answer: Option<String>,
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub metric_errors: BTreeMap<String, RunError>,
    pub error: Option<RunError>,
    pub latency_ms: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(deserialize_with = "call_counts")]
    pub calls: CallCounts,
    #[serde(rename = "trace", deserialize_with = "agent_counts")]
    pub agent: AgentCounts,
}

impl RunScores {
    /// As [`RunRecord::score_value`].
    pub fn score_value(&self, name: &str) -> Option<f64> {
        score_value(&self.scores, self.error.as_ref(), name)
    }
}

impl From<&RunRecord> for RunScores {
    fn from(r: &RunRecord) -> Self {
        Self {
            index: r.index,
            example_id: r.example_id.clone(),
            answer: r.answer.clone(),
            scores: r.scores.clone(),
            metric_errors: r.metric_errors.clone(),
            error: r.error.clone(),
            latency_ms: r.latency_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            calls: CallCounts::of(&r.calls),
            agent: AgentCounts::of(&r.trace),
        }
    }
}

/// An agent's bookkeeping in one run, read from its trace: the host's
/// `tool_call` steps and the methods' `status: …`, `parse_error: …` and
/// `tool_error: …` notes (the convention react follows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub tool_calls: usize,
    pub failed_tool_calls: usize,
    pub parse_errors: usize,
    /// `answered`, `stuck`, `max_iterations`, `no_action`; None for
    /// methods that do not loop.
    pub status: Option<String>,
    /// The same calls by tool name (empty in records written before it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tool: BTreeMap<String, ToolCounts>,
}

/// One tool's calls in a run: how many, how many returned an error, and
/// their summed latency as the host measured it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCounts {
    pub calls: usize,
    pub failed: usize,
    pub latency_ms: f64,
}

impl AgentCounts {
    pub fn of(trace: &[TraceStep]) -> Self {
        let mut c = Self::default();
        for step in trace {
            c.count(&step.kind, &step.content);
        }
        c
    }

    fn count(&mut self, kind: &str, content: &str) {
        match kind {
            "tool_call" => {
                self.tool_calls += 1;
                let v = serde_json::from_str::<serde_json::Value>(content).unwrap_or_default();
                let failed = !v["error"].is_null();
                self.failed_tool_calls += usize::from(failed);
                let name = v["tool"].as_str().unwrap_or("?").to_string();
                let t = self.by_tool.entry(name).or_default();
                t.calls += 1;
                t.failed += usize::from(failed);
                t.latency_ms += v["latency_ms"].as_f64().unwrap_or(0.0);
            }
            "note" => {
                if let Some(s) = content.strip_prefix("status: ") {
                    self.status = Some(s.trim().to_string());
                } else if content.starts_with("parse_error:") {
                    self.parse_errors += 1;
                }
            }
            _ => {}
        }
    }
}

/// A run's model calls, counted for the experiment's resource accounting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounts {
    /// Every recorded call (generate, score, embed).
    pub n: usize,
    /// Generate calls that ran (or were answered from the call cache).
    pub generate: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Generate calls that reused a cached prompt prefix, and the prompt
    /// tokens whose prefill that saved.
    pub prefix_hits: usize,
    pub prefill_tokens_saved: u64,
    /// Generate calls answered from the call cache.
    pub call_cache_hits: usize,
    /// The largest decode batch any of these calls was part of.
    #[serde(default)]
    pub max_batch: u32,
}

impl CallCounts {
    pub fn of(calls: &[LlmCall]) -> Self {
        let mut c = Self {
            n: calls.len(),
            ..Self::default()
        };
        for call in calls
            .iter()
            .filter(|c| c.kind == CallKind::Generate && c.error.is_none())
        {
            c.generate += 1;
            c.prefill_ms += call.prefill_ms;
            c.decode_ms += call.decode_ms;
            c.prefix_hits += usize::from(call.cached_prompt_tokens > 0);
            c.prefill_tokens_saved += call.cached_prompt_tokens as u64;
            c.call_cache_hits += usize::from(call.cache_hit);
            c.max_batch = c.max_batch.max(call.max_batch);
        }
        c
    }

    pub fn add(&mut self, o: &Self) {
        self.n += o.n;
        self.generate += o.generate;
        self.prefill_ms += o.prefill_ms;
        self.decode_ms += o.decode_ms;
        self.prefix_hits += o.prefix_hits;
        self.prefill_tokens_saved += o.prefill_tokens_saved;
        self.call_cache_hits += o.call_cache_hits;
        self.max_batch = self.max_batch.max(o.max_batch);
    }
}

/// Reads only the accounting fields of each stored call.
fn call_counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CallCounts, D::Error> {
    #[derive(Deserialize)]
    struct Lite {
        #[serde(default)]
        kind: CallKind,
        #[serde(default)]
        prefill_ms: f64,
        #[serde(default)]
        decode_ms: f64,
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        cached_prompt_tokens: u32,
        #[serde(default)]
        cache_hit: bool,
        #[serde(default)]
        max_batch: u32,
    }
    let calls = Vec::<Lite>::deserialize(d)?;
    Ok(CallCounts::of(
        &calls
            .into_iter()
            .map(|l| LlmCall {
                kind: l.kind,
                prefill_ms: l.prefill_ms,
                decode_ms: l.decode_ms,
                error: l.error.map(|_| String::new()),
                cached_prompt_tokens: l.cached_prompt_tokens,
                cache_hit: l.cache_hit,
                max_batch: l.max_batch,
                ..LlmCall::default()
            })
            .collect::<Vec<_>>(),
    ))
}

fn agent_counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AgentCounts, D::Error> {
    let steps = Vec::<TraceStep>::deserialize(d)?;
    Ok(AgentCounts::of(&steps))
}
