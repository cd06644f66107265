//! One backend on its own OS thread, shared by async callers.
//!
//! Model forward passes are CPU-bound and stateful; running them on a
//! dedicated thread keeps tokio's workers free for plugins and storage, and
//! gives one place where requests queue up (the future batching scheduler).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::concurrent::{Concurrent, ConcurrentBackend};
use super::{Backend, EngineError, GenParams, Generation, ModelInfo, Prompt};

enum Job {
    Generate {
        prompt: Prompt,
        params: GenParams,
        reply: oneshot::Sender<Result<Generation, EngineError>>,
    },
    Score {
        prompt: Prompt,
        continuations: Vec<String>,
        reply: oneshot::Sender<Result<Vec<f64>, EngineError>>,
    },
}

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
    /// handle is dropped.
    pub fn spawn(backend: Box<dyn Backend>) -> Self {
        let info = Arc::new(backend.info().clone());
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("forge-engine".into())
            .spawn(move || {
                let mut backend = backend;
                // A send fails only when the caller has gone (example timed
                // out): nothing to do then.
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Generate {
                            prompt,
                            params,
                            reply,
                        } => {
                            let _span =
                                tracing::debug_span!("generate", max_tokens = params.max_tokens)
                                    .entered();
                            let _ = reply.send(backend.generate(&prompt, &params));
                        }
                        Job::Score {
                            prompt,
                            continuations,
                            reply,
                        } => {
                            let _span =
                                tracing::debug_span!("score", n = continuations.len()).entered();
                            let _ =
                                reply.send(backend.score_continuations(&prompt, &continuations));
                        }
                    }
                }
            })
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
        if let Some(c) = &self.concurrent {
            return c.generate(prompt, params).await;
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Generate {
            prompt,
            params,
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
        if self.concurrent.is_some() {
            return Err(EngineError::Backend(format!(
                "backend {} cannot score continuations",
                self.info.backend
            )));
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Score {
            prompt,
            continuations,
            reply,
        })?;
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
