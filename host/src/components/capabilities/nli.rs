//! `forge:plugin/nli` (since 0.1.3): text pairs classified by the
//! experiment's `[nli] model`, a cross-encoder from the retrieval module
//! ([`PairClassifier`]). This module is the capability boundary: the
//! missing-model error and the record of each call.

use std::sync::Arc;
use std::time::Instant;

use super::CapabilityState;
use crate::components::bindings::nli::{Host, LabelScore, Pair};
use crate::results::records::{CallKind, LlmCall};

pub use crate::retrieval::cross_encoder::PairClassifier;

/// The guest-visible error when the experiment has no NLI model.
pub const NO_NLI_MODEL: &str = "no NLI model configured: add [nli] model = \"cross-encoder/nli-distilroberta-base\" (a Hugging Face id or a model directory) to the experiment config";

/// Every label of `model` with its logit and probability, per pair.
pub fn classify(
    model: &PairClassifier,
    pairs: &[(String, String)],
) -> Result<Vec<Vec<LabelScore>>, String> {
    let logits = model.logits(pairs).map_err(|e| e.to_string())?;
    Ok(logits
        .iter()
        .map(|row| {
            let p = crate::retrieval::cross_encoder::softmax(row);
            model
                .labels()
                .iter()
                .zip(row.iter().zip(p))
                .map(|(label, (&logit, probability))| LabelScore {
                    label: label.clone(),
                    logit,
                    probability,
                })
                .collect()
        })
        .collect())
}

impl Host for CapabilityState {
    async fn classify(
        &mut self,
        pairs: Vec<Pair>,
    ) -> wasmtime::Result<Result<Vec<Vec<LabelScore>>, String>> {
        const WHAT: &str = "nli.classify";
        if let Err(refused) = self.admit_items(WHAT, CallKind::Nli, pairs.len())? {
            return Ok(Err(refused));
        }
        let started = Instant::now();
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|p| (p.premise, p.hypothesis))
            .collect();
        let (model, pairs, result) = match self.ctx.caps.nli.clone() {
            None => (String::new(), pairs, Err(NO_NLI_MODEL.to_string())),
            Some(m) => {
                // (bindgen's `tracing` option gives this call its span.)
                let id = m.model_id().to_string();
                let (pairs, r) = self
                    .off_thread(WHAT, pairs, move |p| classify(&m, p))
                    .await?;
                (id, pairs, r)
            }
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        // The argmax label per pair: what a reader of the run wants to see.
        let output = match &result {
            Ok(rows) => serde_json::to_string(
                &rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .max_by(|a, b| a.probability.total_cmp(&b.probability))
                            .map(|l| (l.label.as_str(), l.probability))
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
            Err(_) => String::new(),
        };
        self.ctx.calls.push(LlmCall {
            kind: CallKind::Nli,
            prompt: serde_json::to_string(&pairs).unwrap_or_default(),
            output,
            latency_ms,
            finish_reason: if result.is_ok() { "nli" } else { "error" }.into(),
            params: serde_json::json!({ "model": model }),
            error: result.as_ref().err().cloned(),
            ..LlmCall::default()
        });
        Ok(result)
    }
}

/// Loads the `[nli] model` (on the blocking pool).
pub async fn load(spec: &str) -> Result<Arc<PairClassifier>, String> {
    let spec = spec.to_string();
    tokio::task::spawn_blocking(move || PairClassifier::load(&spec))
        .await
        .map_err(|e| format!("loading thread: {e}"))?
        .map(Arc::new)
        .map_err(|e| e.to_string())
}
