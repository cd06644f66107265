//! `forge:plugin/tools`: the tool components granted to a method. Each call
//! runs the tool in its own sandboxed store; a tool that traps or times out
//! becomes a `crashed` error for the method, not a failure of the example.
//! What the tool did with its own capabilities (HTTP requests, searches,
//! logs) is kept in the call's record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{CallContext, Capabilities, CapabilityState, HttpRecord, RetrievalRecord};
use crate::components::bindings::tools::{Host, ToolError, ToolInfo};
use crate::components::budget::Deadline;
use crate::components::seed::derive_seed;

/// Runs the tool at `index` of the tool box in its own sandboxed store,
/// under the calling example's `deadline`, and gives back what the tool did
/// (its context: HTTP requests, searches, logs). The plugin host implements
/// it; this capability knows nothing of components.
pub trait ToolRunner: Send + Sync {
    fn run<'a>(&'a self, call: ToolRun<'a>) -> ToolRunning<'a>;
}

/// One tool call as the capability hands it to the runner.
pub struct ToolRun<'a> {
    /// Which of the tool box's tools.
    pub index: usize,
    /// What the tool's own store gets (HTTP, indexes).
    pub caps: Arc<Capabilities>,
    pub input: &'a str,
    pub seed: u64,
    pub deadline: Deadline,
}

/// The tool's output (or the error the method sees) and what it did.
pub type ToolRunning<'a> =
    Pin<Box<dyn Future<Output = (Result<String, ToolError>, CallContext)> + Send + 'a>>;

/// One granted tool, as the method sees it.
pub struct Tool {
    pub name: String,
    pub description: String,
}

/// The tools of an experiment.
#[derive(Default)]
pub struct ToolBox {
    pub tools: Vec<Tool>,
    /// Runs `tools[i]`; None: no tools are granted.
    pub runner: Option<Arc<dyn ToolRunner>>,
    /// What every tool call gets ([`Capabilities::for_tools`]; none: nothing
    /// but HTTP with default settings).
    pub caps: Option<Arc<Capabilities>>,
}

/// A tool call, stored with the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub tool: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub latency_ms: f64,
    /// HTTP requests the tool made through the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRecord>,
    /// Searches the tool made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrievals: Vec<RetrievalRecord>,
    /// The tool's log lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

impl Host for CapabilityState {
    async fn available(&mut self) -> wasmtime::Result<Vec<ToolInfo>> {
        Ok(self
            .ctx
            .caps
            .tools
            .tools
            .iter()
            .map(|t| ToolInfo {
                name: t.name.clone(),
                description: t.description.clone(),
            })
            .collect())
    }

    async fn call(
        &mut self,
        name: String,
        input: String,
    ) -> wasmtime::Result<Result<String, ToolError>> {
        // The tool runs under the same deadline (its own store checks it).
        self.check_deadline("tools.call")?;
        let started = Instant::now();
        let caps = self.ctx.caps.clone();
        let mut tool_ctx = None;
        let index = caps.tools.tools.iter().position(|t| t.name == name);
        let result = match (caps.tools.runner.as_ref(), index) {
            (Some(runner), Some(index)) => {
                let seed = derive_seed(self.ctx.seed, 1 << 32 | self.ctx.tool_calls.len() as u64);
                let (out, ctx) = runner
                    .run(ToolRun {
                        index,
                        caps: caps.tools.caps.clone().unwrap_or_else(Capabilities::none),
                        input: &input,
                        seed,
                        deadline: self.ctx.deadline,
                    })
                    .await;
                tool_ctx = Some(ctx);
                out
            }
            _ => Err(ToolError::UnknownTool(format!(
                "no tool named {name:?}; granted: {}",
                caps.tools
                    .tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
        let elapsed = started.elapsed();
        self.budget.in_host += elapsed;
        // The method gets the whole output; the run keeps what the caps allow.
        let cap = self.outputs.max_answer_bytes;
        self.ctx.tool_calls.push(ToolCallRecord {
            tool: name,
            input: truncate(&input, cap),
            output: result.as_ref().ok().map(|o| truncate(o, cap)),
            error: result.as_ref().err().map(|e| format!("{e:?}")),
            latency_ms: elapsed.as_secs_f64() * 1e3,
            http: tool_ctx
                .as_mut()
                .map(|c| std::mem::take(&mut c.http_calls))
                .unwrap_or_default(),
            retrievals: tool_ctx
                .as_mut()
                .map(|c| std::mem::take(&mut c.retrievals))
                .unwrap_or_default(),
            logs: tool_ctx.map(|c| c.logs).unwrap_or_default(),
        });
        Ok(result)
    }
}

/// `s` cut to at most `max` bytes (on a char boundary), saying how much was
/// dropped.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes dropped]", &s[..end], s.len() - end)
}
