//! `retrieval`: how well a RAG method's retriever found the gold document.
//!
//! Reads the `retrieved: [{"id":..,"score":..}]` note of the method's trace
//! (every passage retrieved, best first; without the note, the answer's
//! contexts in order). A passage is relevant when its document id (the id
//! before a chunk suffix `#<n>`) is the example's gold id, read from the
//! metadata field `gold_id_field` (default `para_id`; a string or a list);
//! with no gold id it is relevant when its text and the example's context
//! contain one another. A document counts once: later chunks of a gold
//! document already found are not relevant again.
//!
//! Scores: `recall@k` for each k of `ks` (default [1, 3, 5, 10]), `mrr`
//! (reciprocal rank of the first gold passage), `ndcg@k` for each k (binary
//! gains). For k larger than the number of passages retrieved, the value is
//! the one at the number retrieved. Nothing retrieved (closed book) scores 0.

use rag_eval::{note, ranking, relevance};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_ks")]
    pub ks: Vec<u32>,
    #[serde(default = "default_field")]
    pub gold_id_field: String,
}

fn default_ks() -> Vec<u32> {
    vec![1, 3, 5, 10]
}
fn default_field() -> String {
    "para_id".into()
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let p: Params = serde_json::from_str(json).map_err(|e| format!("retrieval params: {e}"))?;
        if p.ks.is_empty() || p.ks.contains(&0) {
            return Err("retrieval params: ks must list cut-offs of at least 1".into());
        }
        Ok(p)
    }

    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.ks.iter().map(|k| format!("recall@{k}")).collect();
        n.push("mrr".into());
        n.extend(self.ks.iter().map(|k| format!("ndcg@{k}")));
        n
    }
}

/// What the metric reads of an example and its answer.
pub struct Input<'a> {
    pub metadata: &'a str,
    pub context: Option<&'a str>,
    pub notes: Vec<&'a str>,
    pub contexts: &'a [String],
}

/// The scores, in [`Params::names`] order.
pub fn evaluate(p: &Params, input: &Input) -> Result<Vec<(String, f64)>, String> {
    let retrieved = note::parse(input.notes.iter().copied())?;
    let passages = relevance::passages(retrieved.as_deref(), input.contexts, false);
    let gold = relevance::gold_ids(input.metadata, &p.gold_id_field)?;
    let rel = relevance::judge(&gold, input.context, &passages)?;
    let first = &rel.first_of_doc;
    let mut out: Vec<(String, f64)> =
        p.ks.iter()
            .map(|&k| {
                (
                    format!("recall@{k}"),
                    ranking::recall_at(first, rel.gold, k as usize),
                )
            })
            .collect();
    out.push(("mrr".into(), ranking::reciprocal_rank(first)));
    out.extend(p.ks.iter().map(|&k| {
        (
            format!("ndcg@{k}"),
            ranking::ndcg_at(first, rel.gold, k as usize),
        )
    }));
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.1", world: "metric" });

    use exports::forge::plugin::scorer::Guest;
    use forge::plugin::types::{Answer, Example, PluginError, Score, StepKind};

    struct Metric;

    impl Guest for Metric {
        fn names(params: String) -> Vec<String> {
            super::Params::parse(&params)
                .map(|p| p.names())
                .unwrap_or_default()
        }

        fn evaluate(
            example: Example,
            answer: Answer,
            params: String,
        ) -> Result<Vec<Score>, PluginError> {
            let p = super::Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let input = super::Input {
                metadata: &example.metadata,
                context: example.context.as_deref(),
                notes: answer
                    .trace
                    .iter()
                    .filter(|s| s.kind == StepKind::Note)
                    .map(|s| s.content.as_str())
                    .collect(),
                contexts: &answer.contexts,
            };
            let scores = super::evaluate(&p, &input)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            Ok(scores
                .into_iter()
                .map(|(name, value)| Score { name, value })
                .collect())
        }
    }

    export!(Metric);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        p: &Params,
        metadata: &str,
        context: Option<&str>,
        notes: &[&str],
        contexts: &[&str],
    ) -> Vec<(String, f64)> {
        let contexts: Vec<String> = contexts.iter().map(|c| c.to_string()).collect();
        evaluate(
            p,
            &Input {
                metadata,
                context,
                notes: notes.to_vec(),
                contexts: &contexts,
            },
        )
        .unwrap()
    }

    fn get(s: &[(String, f64)], name: &str) -> f64 {
        s.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn names_follow_the_cut_offs() {
        let p = Params::parse("").unwrap();
        assert_eq!(
            p.names(),
            [
                "recall@1",
                "recall@3",
                "recall@5",
                "recall@10",
                "mrr",
                "ndcg@1",
                "ndcg@3",
                "ndcg@5",
                "ndcg@10"
            ]
        );
        assert!(Params::parse(r#"{"ks":[]}"#).is_err());
        assert!(
            Params::parse(r#"{"k":[1]}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn gold_chunk_at_rank_two_by_id() {
        let p = Params::parse(r#"{"ks":[1,2,5]}"#).unwrap();
        // Chunks: the gold document's two chunks at ranks 2 and 3 count once.
        let note = r#"retrieved: [{"id":"d7#0","score":9},{"id":"gold#3","score":8},{"id":"gold#0","score":7},{"id":"d1","score":1}]"#;
        let s = run(
            &p,
            r#"{"para_id":"gold"}"#,
            Some("ignored"),
            &[note],
            &["x", "y"],
        );
        assert_eq!(get(&s, "recall@1"), 0.0);
        assert_eq!(get(&s, "recall@2"), 1.0);
        assert_eq!(get(&s, "recall@5"), 1.0);
        assert_eq!(get(&s, "mrr"), 0.5);
        // DCG = 1/log2(3); ideal = 1 (one gold document).
        assert!((get(&s, "ndcg@5") - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(get(&s, "ndcg@1"), 0.0);
    }

    #[test]
    fn without_ids_the_contexts_are_judged_by_text() {
        let p = Params::parse("").unwrap();
        let s = run(
            &p,
            "{}",
            Some("Gold paragraph text. Second sentence."),
            &[],
            &["Other text.", "Second sentence."],
        );
        assert_eq!(get(&s, "recall@1"), 0.0);
        assert_eq!(get(&s, "recall@3"), 1.0);
        assert_eq!(get(&s, "mrr"), 0.5);
        assert_eq!(get(&s, "ndcg@10"), get(&s, "ndcg@3"));
    }

    #[test]
    fn closed_book_scores_zero_and_missing_gold_is_an_error() {
        let p = Params::parse("").unwrap();
        let s = run(
            &p,
            r#"{"para_id":"g"}"#,
            None,
            &["closed_book: k = 0, no retrieval"],
            &[],
        );
        assert!(s.iter().all(|(_, v)| *v == 0.0), "{s:?}");
        let e = evaluate(
            &p,
            &Input {
                metadata: "{}",
                context: None,
                notes: vec![],
                contexts: &["x".to_string()],
            },
        )
        .unwrap_err();
        assert!(e.contains("no gold"), "{e}");
    }
}
