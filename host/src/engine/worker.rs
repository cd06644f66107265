//! One backend on its own OS thread, shared by async callers.
//!
//! Model forward passes are CPU-bound and stateful; running them on a
//! dedicated thread keeps tokio's workers free for plugins and storage, and
//! gives one place where requests queue up and are batched (see
//! [`super::scheduler`]).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::{mpsc::UnboundedSender, oneshot};

use super::concurrent::{Concurrent, ConcurrentBackend};
use super::scheduler::{self, DEFAULT_MAX_BATCH, Job};
use super::{Backend, EngineError, GenParams, Generation, ModelInfo, Prompt, StreamDelta};

/// Cheap to clone; every clone talks to the same backend thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Job>,
    info: Arc<ModelInfo>,
    /// Set for a [`ConcurrentBackend`]: calls bypass the engine thread.
    concurrent: Option<Concurrent>,
}

impl EngineHandle {
    /// Moves `backend` onto a new thread that serves requests until every
    /// handle is dropped, decoding up to [`DEFAULT_MAX_BATCH`] concurrent
    /// requests together when the backend batches.
    pub fn spawn(backend: Box<dyn Backend>) -> Self {
        Self::spawn_batched(backend, DEFAULT_MAX_BATCH)
    }

    /// As [`Self::spawn`], decoding at most `max_batch` requests together
    /// (1 = one request at a time).
    pub fn spawn_batched(backend: Box<dyn Backend>, max_batch: usize) -> Self {
        let info = Arc::new(backend.info().clone());
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("forge-engine".into())
            .spawn(move || scheduler::serve(backend, rx, max_batch))
            .expect("spawn engine thread");
        Self {
            tx,
            info,
            concurrent: None,
        }
    }

    /// A handle on a backend that serves several calls at once (HTTP): no
    /// engine thread; up to its `max_concurrency` calls run in parallel on
    /// tokio's blocking pool.
    pub fn concurrent(backend: Arc<dyn ConcurrentBackend>) -> Self {
        let info = Arc::new(backend.info().clone());
        // No thread reads this channel: every call takes the concurrent path.
        let (tx, _) = mpsc::channel::<Job>();
        Self {
            tx,
            info,
            concurrent: Some(Concurrent::new(backend)),
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub async fn generate(
        &self,
        prompt: Prompt,
        params: GenParams,
    ) -> Result<Generation, EngineError> {
        self.generate_streaming(prompt, params, None).await
    }

    /// [`Self::generate`], sending output to `stream` as it is decoded
    /// (backends that cannot stream send it all at the end).
    pub async fn generate_streaming(
        &self,
        prompt: Prompt,
        params: GenParams,
        stream: Option<UnboundedSender<StreamDelta>>,
    ) -> Result<Generation, EngineError> {
        if let Some(c) = &self.concurrent {
            let g = c.generate(prompt, params).await;
            if let (Ok(g), Some(tx)) = (&g, &stream) {
                let _ = tx.send(StreamDelta {
                    text: g.text.clone(),
                    tokens: g.tokens.clone(),
                });
            }
            return g;
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Generate {
            prompt,
            params,
            stream,
            reply,
        })?;
        rx.await.map_err(|_| dropped())?
    }

    /// The total log-probability of each continuation after `prompt`
    /// (see [`Backend::score_continuations`]).
    pub async fn score_continuations(
        &self,
        prompt: Prompt,
        continuations: Vec<String>,
    ) -> Result<Vec<f64>, EngineError> {
        self.on_engine_thread("score continuations", |reply| Job::Score {
            prompt,
            continuations,
            reply,
        })
        .await
    }

    /// How many tokens each continuation is after `prompt` (see
    /// [`Backend::continuation_tokens`]).
    pub async fn continuation_tokens(
        &self,
        prompt: Prompt,
        continuations: Vec<String>,
    ) -> Result<Vec<u32>, EngineError> {
        self.on_engine_thread("count continuation tokens", |reply| Job::CountTokens {
            prompt,
            continuations,
            reply,
        })
        .await
    }

    /// A job only the embedded engine's thread can answer (a remote,
    /// concurrent backend cannot `what`).
    async fn on_engine_thread<T>(
        &self,
        what: &str,
        job: impl FnOnce(oneshot::Sender<Result<T, EngineError>>) -> Job,
    ) -> Result<T, EngineError> {
        if self.concurrent.is_some() {
            return Err(EngineError::Backend(format!(
                "backend {} cannot {what}",
                self.info.backend
            )));
        }
        let (reply, rx) = oneshot::channel();
        self.submit(job(reply))?;
        rx.await.map_err(|_| dropped())?
    }

    fn submit(&self, job: Job) -> Result<(), EngineError> {
        self.tx
            .send(job)
            .map_err(|_| EngineError::Backend("engine thread has stopped".into()))
    }
}

fn dropped() -> EngineError {
    EngineError::Backend("engine thread dropped the request (panic?)".into())
}
