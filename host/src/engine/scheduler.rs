//! The engine thread's loop: continuous batching.
//!
//! Requests queue on a channel. Between decode steps the loop takes every
//! request that arrived, prefills each new generate request on its own (so
//! it joins the running batch), runs scoring requests, then runs ONE
//! batched decode step over every running request; requests leave the
//! batch as they finish (end token, stop sequence, `max_tokens`). A backend
//! without [`super::BatchingBackend`] gets its requests one at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;

use tokio::sync::{mpsc::UnboundedSender, oneshot};

use super::{Backend, EngineError, GenParams, Generation, Prompt, SequenceEvent, StreamDelta};

/// Most requests decoded together by default; more wait in the queue.
/// Past about this many rows a step of the default model is bound by its
/// attention over each sequence's own cache, not by reading the weights.
pub const DEFAULT_MAX_BATCH: usize = 16;

pub(super) enum Job {
    Generate {
        prompt: Prompt,
        params: GenParams,
        /// Receives output as it is decoded (`stream: true` clients).
        stream: Option<UnboundedSender<StreamDelta>>,
        reply: oneshot::Sender<Result<Generation, EngineError>>,
    },
    Score {
        prompt: Prompt,
        continuations: Vec<String>,
        reply: oneshot::Sender<Result<Vec<f64>, EngineError>>,
    },
    CountTokens {
        prompt: Prompt,
        continuations: Vec<String>,
        reply: oneshot::Sender<Result<Vec<u32>, EngineError>>,
    },
}

/// A running request's way back to its caller.
struct Waiter {
    reply: oneshot::Sender<Result<Generation, EngineError>>,
    stream: Option<UnboundedSender<StreamDelta>>,
}

/// Serves `rx` until every sender is gone and no request is left.
pub(super) fn serve(mut backend: Box<dyn Backend>, rx: mpsc::Receiver<Job>, max_batch: usize) {
    let max_batch = max_batch.max(1);
    let mut queue = VecDeque::new();
    let mut waiting: HashMap<u64, Waiter> = HashMap::new();
    let mut events = Vec::new();
    let mut next_id = 0u64;
    loop {
        let running = backend.batching().map_or(0, |b| b.running());
        if running == 0 && queue.is_empty() {
            // Idle: wait for work (or stop once every handle is gone).
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        queue.extend(rx.try_iter());

        // Admit what fits; scoring runs now, between steps.
        while let Some(job) = queue.pop_front() {
            match job {
                Job::Generate {
                    prompt,
                    params,
                    stream,
                    reply,
                } => {
                    let _span =
                        tracing::debug_span!("generate", max_tokens = params.max_tokens).entered();
                    if let Some(b) = backend.batching() {
                        if b.running() >= max_batch {
                            queue.push_front(Job::Generate {
                                prompt,
                                params,
                                stream,
                                reply,
                            });
                            break;
                        }
                        next_id += 1;
                        match b.join(next_id, &prompt, &params, stream.is_some()) {
                            Ok(()) => {
                                waiting.insert(next_id, Waiter { reply, stream });
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    } else {
                        let g = backend.generate(&prompt, &params);
                        if let (Ok(g), Some(tx)) = (&g, &stream) {
                            let _ = tx.send(StreamDelta {
                                text: g.text.clone(),
                                tokens: g.tokens.clone(),
                            });
                        }
                        // A send fails only when the caller has gone.
                        let _ = reply.send(g);
                    }
                }
                Job::Score {
                    prompt,
                    continuations,
                    reply,
                } => {
                    let _span = tracing::debug_span!("score", n = continuations.len()).entered();
                    let _ = reply.send(backend.score_continuations(&prompt, &continuations));
                }
                Job::CountTokens {
                    prompt,
                    continuations,
                    reply,
                } => {
                    let _ = reply.send(backend.continuation_tokens(&prompt, &continuations));
                }
            }
        }

        let Some(b) = backend.batching() else {
            continue;
        };
        // A caller that went away (example timed out) frees its row.
        waiting.retain(|&id, w| {
            let gone = w.reply.is_closed();
            if gone {
                b.cancel(id);
            }
            !gone
        });
        if b.running() == 0 {
            continue;
        }
        b.step(&mut events);
        for e in events.drain(..) {
            match e {
                SequenceEvent::Delta(id, d) => {
                    if let Some(tx) = waiting.get(&id).and_then(|w| w.stream.as_ref()) {
                        let _ = tx.send(d);
                    }
                }
                SequenceEvent::Done(id, result) => {
                    if let Some(w) = waiting.remove(&id) {
                        let _ = w.reply.send(result);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler's control flow with a scripted backend: a caller that
    //! goes away (an example past its deadline drops its request) frees its
    //! row in the batch.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::super::{
        Backend, BatchingBackend, EngineError, EngineHandle, GenParams, Generation, ModelInfo,
        Prompt, SequenceEvent,
    };

    /// Generations that never finish; what was cancelled is logged.
    struct Endless {
        info: ModelInfo,
        running: Vec<u64>,
        cancelled: Arc<Mutex<Vec<u64>>>,
    }

    impl Backend for Endless {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn generate(&mut self, _: &Prompt, _: &GenParams) -> Result<Generation, EngineError> {
            unreachable!("a batching backend is driven through join/step")
        }
        fn batching(&mut self) -> Option<&mut dyn BatchingBackend> {
            Some(self)
        }
    }

    impl BatchingBackend for Endless {
        fn join(&mut self, id: u64, _: &Prompt, _: &GenParams, _: bool) -> Result<(), EngineError> {
            self.running.push(id);
            Ok(())
        }
        fn step(&mut self, _: &mut Vec<SequenceEvent>) {
            std::thread::sleep(Duration::from_millis(1));
        }
        fn cancel(&mut self, id: u64) {
            self.running.retain(|&r| r != id);
            self.cancelled.lock().unwrap().push(id);
        }
        fn running(&self) -> usize {
            self.running.len()
        }
    }

    #[tokio::test]
    async fn a_request_whose_caller_left_leaves_the_batch() {
        let cancelled = Arc::new(Mutex::new(Vec::new()));
        let info: ModelInfo = serde_json::from_value(serde_json::json!({
            "source": "endless", "path": "", "sha256": "", "architecture": "test",
            "context_length": 1, "weights": "", "threads": 1, "backend": "candle-cpu", "load_ms": 0.0
        }))
        .unwrap();
        let engine = EngineHandle::spawn(Box::new(Endless {
            info,
            running: vec![],
            cancelled: cancelled.clone(),
        }));
        // What an example's deadline does: drop the waiting future.
        let out = tokio::time::timeout(
            Duration::from_millis(50),
            engine.generate(
                Prompt::Raw("hi".into()),
                GenParams {
                    max_tokens: 1 << 20,
                    temperature: 0.0,
                    top_p: 1.0,
                    stop: vec![],
                    seed: 0,
                    top_k: 0,
                    repetition_penalty: 1.0,
                    logprobs: None,
                },
            ),
        )
        .await;
        assert!(out.is_err(), "an endless generation cannot finish");
        // The engine thread notices between two steps (1 ms each).
        for _ in 0..500 {
            if !cancelled.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*cancelled.lock().unwrap(), vec![1], "the row was not freed");
    }
}
