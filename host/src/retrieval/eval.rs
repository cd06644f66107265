//! Measuring a retriever against gold documents, without an LLM:
//! recall@{1,3,5,10}, MRR@10 and nDCG@10 (one gold document per question).
//! A chunk is relevant when its source document is the gold one, and a
//! document counts once, at the rank of its first chunk.

use serde::Serialize;

pub const RECALL_AT: [usize; 4] = [1, 3, 5, 10];

/// Means over the questions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetrievalScores {
    pub questions: usize,
    /// recall@1, @3, @5, @10.
    pub recall: [f64; 4],
    pub mrr10: f64,
    pub ndcg10: f64,
    /// Mean search latency, ms.
    pub latency_ms: f64,
}

/// Distinct document ids in order of first appearance.
pub fn distinct_docs<'a>(chunk_docs: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    chunk_docs.into_iter().filter(|d| seen.insert(*d)).collect()
}

/// 1-based rank of `gold` among the distinct documents, if present.
pub fn gold_rank(docs: &[&str], gold: &str) -> Option<usize> {
    docs.iter().position(|d| *d == gold).map(|p| p + 1)
}

/// Accumulates per-question results.
#[derive(Default)]
pub struct Accumulator {
    n: usize,
    recall: [f64; 4],
    rr: f64,
    ndcg: f64,
    latency_ms: f64,
}

impl Accumulator {
    pub fn add(&mut self, rank: Option<usize>, latency_ms: f64) {
        self.n += 1;
        self.latency_ms += latency_ms;
        if let Some(r) = rank {
            for (i, k) in RECALL_AT.iter().enumerate() {
                if r <= *k {
                    self.recall[i] += 1.0;
                }
            }
            if r <= 10 {
                self.rr += 1.0 / r as f64;
                // One relevant document: the ideal DCG is 1.
                self.ndcg += 1.0 / (r as f64 + 1.0).log2();
            }
        }
    }

    pub fn finish(&self) -> RetrievalScores {
        let n = self.n.max(1) as f64;
        RetrievalScores {
            questions: self.n,
            recall: self.recall.map(|x| x / n),
            mrr10: self.rr / n,
            ndcg10: self.ndcg / n,
            latency_ms: self.latency_ms / n,
        }
    }
}

/// A value at a dotted path (`meta.para_id`) of a JSON object, as a string.
pub fn field<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    path.split('.').try_fold(v, |v, p| v.get(p))?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_count_once_and_metrics_follow_the_rank() {
        let docs = distinct_docs(["a", "a", "b", "a", "c"]);
        assert_eq!(docs, ["a", "b", "c"]);
        assert_eq!(gold_rank(&docs, "c"), Some(3));
        let mut acc = Accumulator::default();
        acc.add(Some(1), 1.0);
        acc.add(Some(3), 1.0);
        acc.add(None, 4.0);
        acc.add(Some(11), 2.0);
        let s = acc.finish();
        assert_eq!(s.recall, [0.25, 0.5, 0.5, 0.5]);
        assert!((s.mrr10 - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
        assert!((s.ndcg10 - (1.0 + 0.5) / 4.0).abs() < 1e-12);
        assert_eq!(s.latency_ms, 2.0);
        let v = serde_json::json!({"meta": {"para_id": "p1"}});
        assert_eq!(field(&v, "meta.para_id"), Some("p1"));
        assert_eq!(field(&v, "meta.nope"), None);
    }
}
