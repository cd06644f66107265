//! One backend on its own OS thread, shared by async callers.
//!
//! Model forward passes are CPU-bound and stateful; running them on a
//! dedicated thread keeps tokio's workers free for plugins and storage, and
//! gives one place where requests queue up (the future batching scheduler).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{Backend, EngineError, GenParams, Generation, ModelInfo, Prompt};

struct Job {
    prompt: Prompt,
    params: GenParams,
    reply: oneshot::Sender<Result<Generation, EngineError>>,
}

/// Cheap to clone; every clone talks to the same backend thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Job>,
    info: Arc<ModelInfo>,
}

impl EngineHandle {
    /// Moves `backend` onto a new thread that serves requests until every
    /// handle is dropped.
    pub fn spawn(backend: Box<dyn Backend>) -> Self {
        let info = Arc::new(backend.info().clone());
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("forge-engine".into())
            .spawn(move || {
                let mut backend = backend;
                while let Ok(job) = rx.recv() {
                    let span = tracing::debug_span!("generate", max_tokens = job.params.max_tokens);
                    let _enter = span.enter();
                    let out = backend.generate(&job.prompt, &job.params);
                    // The caller may have gone (example timed out): nothing to do.
                    let _ = job.reply.send(out);
                }
            })
            .expect("spawn engine thread");
        Self { tx, info }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub async fn generate(
        &self,
        prompt: Prompt,
        params: GenParams,
    ) -> Result<Generation, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                prompt,
                params,
                reply,
            })
            .map_err(|_| EngineError::Backend("engine thread has stopped".into()))?;
        rx.await.map_err(|_| {
            EngineError::Backend("engine thread dropped the request (panic?)".into())
        })?
    }
}
