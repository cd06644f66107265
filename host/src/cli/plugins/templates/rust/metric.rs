//! `{{name}}`: a forge metric written in Rust.
//!
//! Scores 1.0 when the answer contains one of the references (ignoring
//! case and surrounding spaces), else 0.0. Change `evaluate` to score
//! your way.
//!
//!     forge-host plugins build .
//!     forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl

wit_bindgen::generate!({ path: "wit", world: "metric" });

use exports::forge::plugin::scorer::Guest;
use forge::plugin::types::{Answer, Example, PluginError, Score};

struct Metric;

impl Guest for Metric {
    /// Every score name `evaluate` returns, known before any example.
    fn names(_params: String) -> Vec<String> {
        vec!["{{name}}".into()]
    }

    fn evaluate(example: Example, answer: Answer, params: String) -> Result<Vec<Score>, PluginError> {
        // params: the [[metrics]] params table of the experiment, as JSON.
        if !params.trim_start().starts_with('{') {
            // A guest-visible error: stored with the example, not a crash.
            return Err(PluginError::InvalidInput("params must be a JSON object".into()));
        }
        let got = answer.text.trim().to_lowercase();
        let hit = example
            .answers
            .iter()
            .map(|r| r.trim().to_lowercase())
            .any(|r| !r.is_empty() && got.contains(&r));
        Ok(vec![Score {
            name: "{{name}}".into(),
            value: if hit { 1.0 } else { 0.0 },
        }])
    }
}

export!(Metric);
