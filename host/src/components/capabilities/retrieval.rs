//! `forge:plugin/retrieval`: search over the indexes the experiment config
//! names (`[[indexes]]`, built by [`crate::retrieval`]) with each index's
//! configured strategy (`reranked` asks the experiment's model or the
//! index's cross-encoder). Passage ids
//! are chunk ids (`<doc id>#<n>`, or the doc id for whole documents). Every
//! search is recorded with the run (index, strategy, query, ids, latency).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use tracing::Instrument;

use super::CapabilityState;
use crate::components::bindings::retrieval::{Host, Passage, RetrievalError};
use crate::components::budget::Ask;
use crate::retrieval::{Strategy, rerank};

/// Results past this many are not returned (k is the guest's choice).
const MAX_K: u32 = 100;

/// One search, stored with the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRecord {
    pub index: String,
    /// bm25 | dense | hybrid | reranked | none (empty in older records).
    #[serde(default)]
    pub strategy: String,
    pub query: String,
    pub k: u32,
    /// Ids of the passages returned, best first.
    pub hits: Vec<String>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

impl Host for CapabilityState {
    async fn search(
        &mut self,
        index: String,
        query: String,
        k: u32,
    ) -> wasmtime::Result<Result<Vec<Passage>, RetrievalError>> {
        const WHAT: &str = "retrieval.search";
        if let Err(refused) = self.admit(WHAT, Ask::Items(k as usize))? {
            return Ok(Err(RetrievalError::Failed(refused)));
        }
        let started = Instant::now();
        let caps = self.ctx.caps.clone();
        let strategy = caps
            .indexes
            .get(&index)
            .map(|ix| ix.options.strategy.name())
            .unwrap_or("")
            .to_string();
        let span = tracing::info_span!("retrieval.search", index = %index, strategy = %strategy, k);
        let result = match caps.indexes.get(&index) {
            None => Err(RetrievalError::UnknownIndex(format!(
                "no index named {index:?}; configured: {} (add [[indexes]] name = {index:?} to the experiment config)",
                match caps.indexes.names() {
                    n if n.is_empty() => "none".to_string(),
                    n => n.join(", "),
                }
            ))),
            Some(ix) => {
                let reranker = match ix.options.strategy {
                    Strategy::Reranked => rerank::named(
                        &ix.options.rerank,
                        caps.engine.as_ref(),
                        ix.cross_encoder.as_ref(),
                        caps.call_cache.clone(),
                    )
                    .map(Some),
                    _ => Ok(None),
                };
                let found = match reranker {
                    Err(e) => Err(e.to_string()),
                    Ok(r) => {
                        let search = ix
                            .search_with(&query, k.min(MAX_K) as usize, &ix.options, r.as_deref())
                            .instrument(span);
                        let deadline = self.ctx.deadline;
                        let done = deadline.run(search).await;
                        self.host_call_done(WHAT, started, done)?
                            .map_err(|e| e.to_string())
                    }
                };
                found
                    .map(|hits| {
                        hits.into_iter()
                            .map(|h| Passage {
                                id: h.chunk.id.clone(),
                                title: h.chunk.title.clone(),
                                text: h.chunk.text.clone(),
                                score: h.score,
                            })
                            .collect::<Vec<_>>()
                    })
                    .map_err(RetrievalError::Failed)
            }
        };
        // (host_call_done counted a search's time; the rest is bookkeeping.)
        let elapsed = started.elapsed();
        self.ctx.retrievals.push(RetrievalRecord {
            index,
            strategy,
            query,
            k,
            hits: result
                .as_ref()
                .map(|ps| ps.iter().map(|p| p.id.clone()).collect())
                .unwrap_or_default(),
            latency_ms: elapsed.as_secs_f64() * 1e3,
            error: result.as_ref().err().map(|e| match e {
                RetrievalError::UnknownIndex(m) => format!("unknown index: {m}"),
                RetrievalError::Failed(m) => format!("failed: {m}"),
            }),
        });
        Ok(result)
    }
}
