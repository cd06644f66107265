//! Re-scoring a first-stage candidate list. The LLM reranker asks the
//! experiment's own model, pointwise, whether a passage answers the query
//! and scores it log P(" yes") − log P(" no") from the engine's
//! log-probabilities; a cross-encoder (`rerank = "cross-encoder/..."` or a
//! model directory, [`super::cross_encoder`]) scores each (query, passage)
//! pair with its relevance logit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::cross_encoder::PairClassifier;
use crate::engine::call_cache::{CallCache, ScoreKey, engine_version};
use crate::engine::{EngineHandle, Prompt};

#[derive(Debug, thiserror::Error)]
pub enum RerankError {
    #[error("reranking with the LLM failed: {0}")]
    Engine(String),
    #[error("reranker {0:?} is not loaded (a cross-encoder loads with its index)")]
    NotLoaded(String),
    #[error("reranking with the cross-encoder failed: {0}")]
    CrossEncoder(String),
    #[error(
        "cross-encoder {model:?} has the labels [{labels}]: a reranker needs one relevance logit (num_labels = 1, as cross-encoder/ms-marco-*)"
    )]
    NotAReranker { model: String, labels: String },
    #[error("reranker returned {got} scores for {want} passages")]
    Count { got: usize, want: usize },
}

pub type ScoreFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<f64>, RerankError>> + Send + 'a>>;

/// Scores passages for a query, higher = more relevant.
pub trait Reranker: Send + Sync {
    fn name(&self) -> &str;
    fn score<'a>(&'a self, query: &'a str, passages: &'a [String]) -> ScoreFuture<'a>;
}

/// The prompt the LLM reranker scores " yes" / " no" after.
pub fn relevance_prompt(query: &str, passage: &str) -> String {
    format!(
        "Passage: {passage}\n\nQuestion: {query}\n\nDoes the passage contain the answer to the question? Answer yes or no.\nAnswer:"
    )
}

/// Pointwise relevance from the experiment's model.
pub struct LlmReranker {
    engine: EngineHandle,
    /// Scores already computed (by this run or an earlier one) are read
    /// back: sweep cells that rerank the same candidates score them once.
    cache: Option<Arc<CallCache>>,
}

impl LlmReranker {
    pub fn new(engine: EngineHandle, cache: Option<Arc<CallCache>>) -> Self {
        Self { engine, cache }
    }

    async fn yes_no(&self, prompt: Prompt) -> Result<Vec<f64>, RerankError> {
        let continuations = vec![" yes".to_string(), " no".to_string()];
        let info = self.engine.info();
        let version = engine_version(info);
        let key = ScoreKey {
            model_sha256: &info.sha256,
            engine_version: &version,
            prompt: &prompt,
            continuations: &continuations,
        }
        .digest();
        // A cache that cannot be read or written only costs recomputation.
        if let Some(hit) = self
            .cache
            .as_ref()
            .and_then(|c| c.get_scores(&key).ok().flatten())
        {
            return Ok(hit);
        }
        let lp = self
            .engine
            .score_continuations(prompt, continuations)
            .await
            .map_err(|e| RerankError::Engine(e.to_string()))?;
        if let Some(c) = &self.cache
            && let Err(e) = c.put_scores(&key, &lp)
        {
            tracing::warn!("reranker score not cached: {e}");
        }
        Ok(lp)
    }
}

impl Reranker for LlmReranker {
    fn name(&self) -> &str {
        "llm"
    }

    fn score<'a>(&'a self, query: &'a str, passages: &'a [String]) -> ScoreFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(passages.len());
            for p in passages {
                let lp = self.yes_no(Prompt::Raw(relevance_prompt(query, p))).await?;
                match lp.as_slice() {
                    [yes, no] => out.push(yes - no),
                    _ => {
                        return Err(RerankError::Count {
                            got: lp.len(),
                            want: 2,
                        });
                    }
                }
            }
            Ok(out)
        })
    }
}

/// The reranker a config names: `llm` (needs the engine; `cache` is the
/// call cache, when the caller uses one), or the cross-encoder loaded for
/// it (a directory or a hub id).
pub fn named(
    spec: &str,
    engine: Option<&EngineHandle>,
    cross_encoder: Option<&Arc<PairClassifier>>,
    cache: Option<Arc<CallCache>>,
) -> Result<Box<dyn Reranker>, RerankError> {
    match (spec, engine, cross_encoder) {
        ("llm", Some(e), _) => Ok(Box::new(LlmReranker::new(e.clone(), cache))),
        ("llm", None, _) => Err(RerankError::Engine("no model loaded".into())),
        (other, _, Some(ce)) if ce.model_id() == other => {
            Ok(Box::new(CrossEncoderReranker::new(ce.clone())?))
        }
        (other, _, _) => Err(RerankError::NotLoaded(other.into())),
    }
}

/// Reorders `candidates` by `scores` (same order), best first; equal scores
/// keep the first stage's order.
pub fn reorder(candidates: &[(u32, f64)], scores: &[f64]) -> Result<Vec<(u32, f64)>, RerankError> {
    if scores.len() != candidates.len() {
        return Err(RerankError::Count {
            got: scores.len(),
            want: candidates.len(),
        });
    }
    let mut out: Vec<(u32, f64)> = candidates
        .iter()
        .zip(scores)
        .map(|(&(i, _), &s)| (i, s))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out)
}

/// A cross-encoder reranker: the relevance logit of (query, passage).
pub struct CrossEncoderReranker {
    model: Arc<PairClassifier>,
}

impl CrossEncoderReranker {
    /// Refuses a classifier with more than one label: which one would mean
    /// "relevant" is a guess.
    pub fn new(model: Arc<PairClassifier>) -> Result<Self, RerankError> {
        if model.labels().len() != 1 {
            return Err(RerankError::NotAReranker {
                model: model.model_id().into(),
                labels: model.labels().join(", "),
            });
        }
        Ok(Self { model })
    }
}

impl Reranker for CrossEncoderReranker {
    fn name(&self) -> &str {
        self.model.model_id()
    }

    fn score<'a>(&'a self, query: &'a str, passages: &'a [String]) -> ScoreFuture<'a> {
        let model = self.model.clone();
        let pairs: Vec<(String, String)> = passages
            .iter()
            .map(|p| (query.to_string(), p.clone()))
            .collect();
        Box::pin(async move {
            // CPU-bound: off the async workers.
            let logits = tokio::task::spawn_blocking(move || model.logits(&pairs))
                .await
                .map_err(|e| RerankError::CrossEncoder(e.to_string()))?
                .map_err(|e| RerankError::CrossEncoder(e.to_string()))?;
            Ok(logits.into_iter().map(|l| f64::from(l[0])).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_by_scores_stable_on_ties() {
        let c = [(7, 0.9), (3, 0.8), (5, 0.7), (1, 0.6)];
        let r = reorder(&c, &[-1.0, 2.0, -1.0, 0.5]).unwrap();
        assert_eq!(r, [(3, 2.0), (1, 0.5), (7, -1.0), (5, -1.0)]);
        assert!(reorder(&c, &[1.0]).is_err());
    }

    #[test]
    fn a_cross_encoder_that_was_not_loaded_is_an_error() {
        let e = named("cross-encoder/ms-marco-MiniLM-L-6-v2", None, None, None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not loaded"), "{e}");
        let e = named("llm", None, None, None).err().unwrap().to_string();
        assert!(e.contains("no model loaded"), "{e}");
    }
}
