//! `exact_match`: 1 when the normalised answer equals a normalised reference, else 0.
//! Scored on the method's answer text, max over the reference answers,
//! SQuAD v1.1 normalisation (see the `squad-text` crate). Takes no params.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "metric" });

use exports::forge::plugin::scorer::Guest;
use forge::plugin::types::{Answer, Example, PluginError, Score};

struct Metric;

impl Guest for Metric {
    fn names(_params: String) -> Vec<String> {
        vec!["exact_match".into()]
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
        let value = squad_text::best(&answer.text, &example.answers, |p, t| {
            f64::from(u8::from(squad_text::exact_match(p, t)))
        });
        Ok(vec![Score {
            name: "exact_match".into(),
            value,
        }])
    }
}

export!(Metric);
