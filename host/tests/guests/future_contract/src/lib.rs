//! A method built against `forge:plugin@0.2.0` (wit/ here is the 0.1.0
//! contract with its version bumped), so the host's version check can be
//! tested with a real component: it must refuse it before instantiation and
//! name both versions.

wit_bindgen::generate!({ path: "wit", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::types::{Answer, Example, PluginError};

struct Future;

impl Guest for Future {
    fn solve(example: Example, _params: String) -> Result<Answer, PluginError> {
        Ok(Answer {
            text: example.question,
            trace: vec![],
            contexts: vec![],
        })
    }
}

export!(Future);
