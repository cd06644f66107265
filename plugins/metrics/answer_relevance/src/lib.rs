//! `answer_relevance`: how on-topic the answer is, by the host's embedding
//! model (contract 0.1.2 `embeddings`; the experiment config needs
//! `[embeddings] model = ...`).
//!
//! - `mode = "question"` (default): score `answer_relevance` = cosine
//!   similarity of the answer's embedding and the question's (RAGAS's answer
//!   relevance, without generating questions back from the answer).
//! - `mode = "reference"`: score `answer_similarity` = the best cosine of the
//!   answer and each reference answer (semantic answer similarity).
//!
//! The host's vectors are L2-normalised, so the cosine is their dot product
//! (recomputed with the norms here, so unnormalised vectors are fine too);
//! it is clamped to [0, 1]: a negative cosine (opposed, which sentence
//! encoders rarely give) counts as unrelated. An empty answer scores 0
//! without an embedding call. An embeddings failure (no model configured,
//! the model failed) is the example's metric error (`unavailable`) with the
//! host's message.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Question,
    Reference,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub mode: Mode,
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        serde_json::from_str(json).map_err(|e| format!("answer_relevance params: {e}"))
    }

    /// The one score's name.
    pub fn name(&self) -> &'static str {
        match self.mode {
            Mode::Question => "answer_relevance",
            Mode::Reference => "answer_similarity",
        }
    }

    /// The texts to embed: the answer first, then what it is compared with.
    /// `None` when the answer is empty (scores 0, no embedding call).
    pub fn texts(
        &self,
        question: &str,
        answer: &str,
        references: &[String],
    ) -> Result<Option<Vec<String>>, String> {
        if answer.trim().is_empty() {
            return Ok(None);
        }
        let mut texts = vec![answer.to_string()];
        match self.mode {
            Mode::Question => texts.push(question.to_string()),
            Mode::Reference => {
                let refs: Vec<&String> =
                    references.iter().filter(|r| !r.trim().is_empty()).collect();
                if refs.is_empty() {
                    return Err("no reference answers".into());
                }
                texts.extend(refs.into_iter().cloned());
            }
        }
        Ok(Some(texts))
    }
}

/// Cosine similarity clamped to [0, 1]; 0 when either vector is zero.
pub fn cosine01(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(0.0, 1.0)
}

/// The score from the vectors of [`Params::texts`] (answer first): the best
/// clamped cosine of the answer and the others.
pub fn score(vectors: &[Vec<f32>], expected: usize) -> Result<f64, String> {
    if vectors.len() != expected {
        return Err(format!(
            "embeddings returned {} vectors for {expected} texts",
            vectors.len()
        ));
    }
    let (answer, others) = vectors.split_first().ok_or("no vectors")?;
    if others.iter().any(|v| v.len() != answer.len()) {
        return Err("embeddings of different dimensions".into());
    }
    Ok(others
        .iter()
        .map(|v| cosine01(answer, v))
        .fold(0.0, f64::max))
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.2", world: "metric" });

    use exports::forge::plugin::scorer::Guest;
    use forge::plugin::embeddings;
    use forge::plugin::types::{Answer, Example, PluginError, Score};

    struct Metric;

    impl Guest for Metric {
        fn names(params: String) -> Vec<String> {
            let p = super::Params::parse(&params).unwrap_or_default();
            vec![p.name().to_string()]
        }

        fn evaluate(
            example: Example,
            answer: Answer,
            params: String,
        ) -> Result<Vec<Score>, PluginError> {
            let p = super::Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let texts = p
                .texts(&example.question, &answer.text, &example.answers)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            let value = match texts {
                None => 0.0,
                Some(texts) => {
                    let vectors = embeddings::embed(&texts).map_err(|e| {
                        PluginError::Unavailable(format!("answer_relevance: embeddings: {e}"))
                    })?;
                    super::score(&vectors, texts.len())
                        .map_err(|e| PluginError::Failed(format!("answer_relevance: {e}")))?
                }
            };
            Ok(vec![Score {
                name: p.name().to_string(),
                value,
            }])
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
    fn cosine_by_hand() {
        // Unit vectors: the dot product. 0.6·0.8 + 0.8·0.6 = 0.96.
        assert!((cosine01(&[0.6, 0.8], &[0.8, 0.6]) - 0.96).abs() < 1e-6);
        // Unnormalised: (1·2 + 0·2) / (1 · √8) = 1/√2.
        assert!((cosine01(&[1.0, 0.0], &[2.0, 2.0]) - 0.5f64.sqrt()).abs() < 1e-6);
        assert_eq!(cosine01(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        // Opposed vectors clamp to 0; identical ones give 1.
        assert_eq!(cosine01(&[1.0, 0.0], &[-1.0, 0.0]), 0.0);
        assert!((cosine01(&[0.6, 0.8], &[0.6, 0.8]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine01(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn score_is_the_best_match_of_the_answer() {
        let v = vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![0.6, 0.8],
            vec![-1.0, 0.0],
        ];
        assert!((score(&v, 4).unwrap() - 0.6).abs() < 1e-6);
        assert!(score(&v, 3).unwrap_err().contains("4 vectors for 3"));
        let bad = vec![vec![1.0, 0.0], vec![1.0]];
        assert!(score(&bad, 2).unwrap_err().contains("dimensions"));
    }

    #[test]
    fn params_and_texts() {
        let q = Params::parse("").unwrap();
        assert_eq!(q.mode, Mode::Question);
        assert_eq!(q.name(), "answer_relevance");
        let refs = s(&["Denver Broncos", " "]);
        assert_eq!(
            q.texts("Who won?", "The Broncos", &refs).unwrap().unwrap(),
            s(&["The Broncos", "Who won?"])
        );
        assert_eq!(q.texts("Who won?", "  ", &refs).unwrap(), None);
        let r = Params::parse(r#"{"mode":"reference"}"#).unwrap();
        assert_eq!(r.name(), "answer_similarity");
        assert_eq!(
            r.texts("Who won?", "The Broncos", &refs).unwrap().unwrap(),
            s(&["The Broncos", "Denver Broncos"])
        );
        assert!(r.texts("q", "a", &[]).unwrap_err().contains("no reference"));
        assert!(Params::parse(r#"{"mode":"x"}"#).is_err());
        assert!(Params::parse(r#"{"k":1}"#).is_err());
    }
}
