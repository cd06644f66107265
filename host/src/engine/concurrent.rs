//! Backends that serve several requests at once (remote HTTP servers).
//!
//! The engine thread of [`super::EngineHandle`] runs one request at a time,
//! which is right for a local model that owns its KV cache but would
//! serialise a remote server that batches on its side. A
//! [`ConcurrentBackend`] is called from tokio's blocking pool instead, at most
//! `max_concurrency` calls in flight (a semaphore, so waiting callers hold no
//! thread).

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{EngineError, GenParams, Generation, ModelInfo, Prompt};

/// A backend callable from many threads at once (`&self`), blocking.
pub trait ConcurrentBackend: Send + Sync + 'static {
    fn info(&self) -> &ModelInfo;
    /// How many calls may be in flight at once (at least 1).
    fn max_concurrency(&self) -> usize;
    fn generate(&self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError>;
}

/// A concurrent backend with its in-flight bound.
#[derive(Clone)]
pub(crate) struct Concurrent {
    backend: Arc<dyn ConcurrentBackend>,
    permits: Arc<Semaphore>,
}

impl Concurrent {
    pub(crate) fn new(backend: Arc<dyn ConcurrentBackend>) -> Self {
        let permits = Arc::new(Semaphore::new(backend.max_concurrency().max(1)));
        Self { backend, permits }
    }

    pub(crate) async fn generate(
        &self,
        prompt: Prompt,
        params: GenParams,
    ) -> Result<Generation, EngineError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| EngineError::Backend("backend closed".into()))?;
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let _span = tracing::debug_span!("generate", max_tokens = params.max_tokens).entered();
            backend.generate(&prompt, &params)
        })
        .await
        .map_err(|e| EngineError::Backend(format!("generate task failed: {e}")))?
    }
}
