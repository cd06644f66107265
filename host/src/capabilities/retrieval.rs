//! `forge:plugin/retrieval`: search over the host's indexes.
//!
//! The contract is in place so methods can be written against it; this host
//! has no indexes yet (they arrive with the retrieval work), so every search
//! answers `unknown-index` naming what exists.

use crate::plugins::State;
use crate::plugins::bindings::retrieval::{Host, Passage, RetrievalError};

impl Host for State {
    async fn search(
        &mut self,
        index: String,
        _query: String,
        _k: u32,
    ) -> wasmtime::Result<Result<Vec<Passage>, RetrievalError>> {
        Ok(Err(RetrievalError::UnknownIndex(format!(
            "no index named {index:?}: this host has no indexes configured"
        ))))
    }
}
