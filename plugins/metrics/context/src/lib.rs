//! `context`: deterministic measures of the passages a RAG method put in its
//! prompt (the answer's `contexts`; no LLM).
//!
//! - `context_precision`: RAGAS's rank-weighted precision, Σ_k P@k·v_k / Σ_k v_k
//!   over the contexts in rank order (v_k = 1 when the passage at rank k is
//!   relevant), so a relevant passage first scores more than one last; 0
//!   when none is relevant. Relevance is gold-based as in the `retrieval`
//!   metric (document id = metadata `gold_id_field`, default `para_id`,
//!   read from the method's `retrieved:` note; else text containment in the
//!   example's context), but every chunk of the gold document is relevant.
//! - `context_recall`: the best reference answer's share of SQuAD-normalised
//!   tokens found in the contexts.
//! - `context_has_answer`: 1 when a reference occurs whole (normalised token
//!   span) in the contexts.
//!
//! No contexts (closed book) scores 0 on all three.

use rag_eval::{context, note, relevance};
use serde::Deserialize;

pub const NAMES: [&str; 3] = ["context_precision", "context_recall", "context_has_answer"];

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_field")]
    pub gold_id_field: String,
}

fn default_field() -> String {
    "para_id".into()
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        serde_json::from_str(json).map_err(|e| format!("context params: {e}"))
    }
}

pub struct Input<'a> {
    pub metadata: &'a str,
    pub context: Option<&'a str>,
    pub references: &'a [String],
    pub notes: Vec<&'a str>,
    pub contexts: &'a [String],
}

/// The scores, in [`NAMES`] order.
pub fn evaluate(p: &Params, input: &Input) -> Result<[f64; 3], String> {
    if input.references.is_empty() {
        return Err("no reference answers".into());
    }
    if input.contexts.is_empty() {
        return Ok([0.0; 3]);
    }
    let retrieved = note::parse(input.notes.iter().copied())?;
    let passages = relevance::passages(retrieved.as_deref(), input.contexts, true);
    let gold = relevance::gold_ids(input.metadata, &p.gold_id_field)?;
    let rel = relevance::judge(&gold, input.context, &passages)?;
    Ok([
        context::precision(&rel.relevant),
        context::recall(input.references, input.contexts),
        f64::from(u8::from(context::has_answer(
            input.references,
            input.contexts,
        ))),
    ])
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.1", world: "metric" });

    use exports::forge::plugin::scorer::Guest;
    use forge::plugin::types::{Answer, Example, PluginError, Score, StepKind};

    struct Metric;

    impl Guest for Metric {
        fn names(_params: String) -> Vec<String> {
            super::NAMES.iter().map(|n| n.to_string()).collect()
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
                references: &example.answers,
                notes: answer
                    .trace
                    .iter()
                    .filter(|s| s.kind == StepKind::Note)
                    .map(|s| s.content.as_str())
                    .collect(),
                contexts: &answer.contexts,
            };
            let v = super::evaluate(&p, &input)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            Ok(super::NAMES
                .iter()
                .zip(v)
                .map(|(n, value)| Score {
                    name: n.to_string(),
                    value,
                })
                .collect())
        }
    }

    export!(Metric);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn precision_by_id_recall_by_tokens() {
        let p = Params::parse("").unwrap();
        let refs = s(&["Denver Broncos"]);
        let contexts = s(&["Carolina lost.", "The Denver Broncos won.", "More."]);
        // Four retrieved, three used; the gold document is at rank 2.
        let note = r#"retrieved: [{"id":"a","score":3},{"id":"gold#1","score":2},{"id":"b","score":1},{"id":"gold#0","score":0.5}]"#;
        let v = evaluate(
            &p,
            &Input {
                metadata: r#"{"para_id":"gold"}"#,
                context: None,
                references: &refs,
                notes: vec![note],
                contexts: &contexts,
            },
        )
        .unwrap();
        assert_eq!(v, [0.5, 1.0, 1.0]);
    }

    #[test]
    fn text_fallback_and_edge_cases() {
        let p = Params::parse("").unwrap();
        let refs = s(&["Santa Clara, California"]);
        let contexts = s(&["It was held in Santa Clara.", "Unrelated."]);
        let v = evaluate(
            &p,
            &Input {
                metadata: "{}",
                context: Some("Super Bowl 50. It was held in Santa Clara."),
                references: &refs,
                notes: vec![],
                contexts: &contexts,
            },
        )
        .unwrap();
        assert_eq!(v[0], 1.0);
        assert!((v[1] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(v[2], 0.0);
        let none = Input {
            metadata: "{}",
            context: None,
            references: &refs,
            notes: vec![],
            contexts: &[],
        };
        assert_eq!(evaluate(&p, &none).unwrap(), [0.0; 3]);
        let no_refs = Input {
            references: &[],
            ..none
        };
        assert!(evaluate(&p, &no_refs).unwrap_err().contains("no reference"));
    }
}
