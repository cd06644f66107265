//! `f1`: token-overlap F1 between the normalised answer and reference (0..1).
//! Scored on the method's answer text, max over the reference answers,
//! SQuAD v1.1 normalisation (see the `squad-text` crate). Takes no params.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "metric" });

use exports::forge::plugin::scorer::Guest;
use forge::plugin::types::{Answer, Example, PluginError, Score};

struct Metric;

impl Guest for Metric {
    fn names(_params: String) -> Vec<String> {
        vec!["f1".into()]
    }

    fn evaluate(
        example: Example,
        answer: Answer,
        _params: String,
    ) -> Result<Vec<Score>, PluginError> {
        if example.answers.is_empty() {
            return Err(PluginError::InvalidInput(format!(
                "example {} has no reference answers",
                example.id
            )));
        }
        let value = squad_text::best(&answer.text, &example.answers, squad_text::f1);
        Ok(vec![Score {
            name: "f1".into(),
            value,
        }])
    }
}

export!(Metric);
