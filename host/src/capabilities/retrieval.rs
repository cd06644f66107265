//! `forge:plugin/retrieval`: BM25 search over the indexes the experiment
//! config names (`[[indexes]]`, built by [`crate::retrieval`]). Every search
//! is recorded with the run (index, query, the ids found, latency).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::plugins::State;
use crate::plugins::bindings::retrieval::{Host, Passage, RetrievalError};

/// Results past this many are not returned (k is the guest's choice).
const MAX_K: u32 = 100;

/// One search, stored with the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRecord {
    pub index: String,
    pub query: String,
    pub k: u32,
    /// Ids of the passages returned, best first.
    pub hits: Vec<String>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

impl Host for State {
    async fn search(
        &mut self,
        index: String,
        query: String,
        k: u32,
    ) -> wasmtime::Result<Result<Vec<Passage>, RetrievalError>> {
        let started = Instant::now();
        let caps = self.ctx.caps.clone();
        let result = match caps.indexes.get(&index) {
            None => Err(RetrievalError::UnknownIndex(format!(
                "no index named {index:?}; configured: {} (add [[indexes]] name = {index:?} to the experiment config)",
                match caps.indexes.names() {
                    n if n.is_empty() => "none".to_string(),
                    n => n.join(", "),
                }
            ))),
            Some(ix) => Ok(ix
                .search(&query, k.min(MAX_K) as usize)
                .into_iter()
                .map(|h| Passage {
                    id: h.document.id.clone(),
                    title: h.document.title.clone(),
                    text: h.document.text.clone(),
                    score: h.score,
                })
                .collect::<Vec<_>>()),
        };
        let elapsed = started.elapsed();
        self.budget.in_host += elapsed;
        self.ctx.retrievals.push(RetrievalRecord {
            index,
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
