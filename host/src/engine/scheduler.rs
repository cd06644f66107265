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
