//! A metric that returns poisonous scores on purpose, so the host's score
//! boundary can be tested with a real component. It declares one score,
//! `value`, and returns, by the answer's text: "nan" → NaN, "inf" → +∞,
//! "-inf" → −∞, "huge" → 1e308, "undeclared" → a score named `other`,
//! "half" → `value` = 0.5 and a NaN `value` after it; anything else → 1.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "metric" });

use exports::forge::plugin::scorer::Guest;
use forge::plugin::types::{Answer, Example, PluginError, Score};

struct Poison;

fn value(v: f64) -> Score {
    Score {
        name: "value".into(),
        value: v,
    }
}

impl Guest for Poison {
    fn names(_params: String) -> Vec<String> {
        vec!["value".into()]
    }

    fn evaluate(_e: Example, answer: Answer, _params: String) -> Result<Vec<Score>, PluginError> {
        Ok(match answer.text.as_str() {
            "nan" => vec![value(f64::NAN)],
            "inf" => vec![value(f64::INFINITY)],
            "-inf" => vec![value(f64::NEG_INFINITY)],
            "huge" => vec![value(1e308)],
            "undeclared" => vec![Score {
                name: "other".into(),
                value: 1.0,
            }],
            "half" => vec![value(0.5), value(f64::NAN)],
            _ => vec![value(1.0)],
        })
    }
}

export!(Poison);
