//! `forge:plugin/embeddings` (since 0.1.2): text embeddings by the
//! experiment's `[embeddings] model` (a [`TextEmbedder`] from the retrieval
//! module: MiniLM by default). This module is the capability boundary: the
//! missing-model error and the record of each call.

use std::time::Instant;

use super::CapabilityState;
use crate::components::bindings::embeddings::Host;
use crate::results::records::{CallKind, LlmCall};

pub use crate::retrieval::embed::TextEmbedder;

/// The guest-visible error when the experiment has no embedding model.
pub const NO_EMBEDDER: &str = "no embedding model configured: add [embeddings] model = \"all-minilm-l6-v2\" to the experiment config";

impl Host for CapabilityState {
    async fn embed(
        &mut self,
        texts: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Vec<f32>>, String>> {
        const WHAT: &str = "embeddings.embed";
        if let Err(refused) = self.admit_items(WHAT, CallKind::Embed, texts.len())? {
            return Ok(Err(refused));
        }
        let started = Instant::now();
        let (model, texts, result) = match self.ctx.caps.embedder.clone() {
            None => (String::new(), texts, Err(NO_EMBEDDER.to_string())),
            Some(embedder) => {
                // (bindgen's `tracing` option gives this call its span.)
                let model = embedder.model_id().to_string();
                let (texts, r) = self
                    .off_thread(WHAT, texts, move |t| {
                        embedder.embed(t).map_err(|e| e.to_string())
                    })
                    .await?;
                (model, texts, r)
            }
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let output = match &result {
            Ok(v) => format!(
                "{} vectors of dimension {}",
                v.len(),
                v.first().map_or(0, Vec::len)
            ),
            Err(_) => String::new(),
        };
        self.ctx.calls.push(LlmCall {
            kind: CallKind::Embed,
            prompt: serde_json::to_string(&texts).unwrap_or_default(),
            output,
            latency_ms,
            finish_reason: if result.is_ok() { "embed" } else { "error" }.into(),
            params: serde_json::json!({ "model": model }),
            error: result.as_ref().err().cloned(),
            ..LlmCall::default()
        });
        Ok(result)
    }
}
