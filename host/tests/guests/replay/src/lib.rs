//! A method for testing metrics on fixed answers: the answer is the
//! example's `meta.answer`, its contexts the example's context. No model call.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.1", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::types::{Answer, Example, PluginError};

struct Replay;

impl Guest for Replay {
    fn solve(example: Example, _params: String) -> Result<Answer, PluginError> {
        let meta: serde_json::Value = serde_json::from_str(&example.metadata)
            .map_err(|e| PluginError::InvalidInput(format!("metadata: {e}")))?;
        let text = meta["answer"]
            .as_str()
            .ok_or_else(|| PluginError::InvalidInput("replay needs meta.answer".into()))?
            .to_string();
        Ok(Answer {
            text,
            trace: Vec::new(),
            contexts: example.context.into_iter().collect(),
        })
    }
}

export!(Replay);
