//! `{{name}}`: a forge method written in Rust.
//!
//! Asks the model once, with the question in a prompt, and answers with
//! the first line of its reply. Change `solve` to reason your way: call
//! the model again, search an index (`retrieval::search`), call a tool
//! (`tools::call`); every call is recorded and budgeted by the host.
//!
//!     forge-host plugins build .
//!     forge-host run experiment.toml

wit_bindgen::generate!({ path: "wit", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::inference::{self, Message};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};

struct Method;

impl Guest for Method {
    fn solve(example: Example, _params: String) -> Result<Answer, PluginError> {
        // _params: the [method] params table of the experiment, as JSON
        // (add serde_json to parse it).
        let prompt = format!("Question: {}\nAnswer briefly.", example.question);
        let params = inference::default_params(); // the experiment's [generation]
        let out = inference::chat(
            &[Message {
                role: "user".into(),
                content: prompt.clone(),
            }],
            &params,
        )
        .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;
        let text = out.text.trim().to_string();
        let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        Ok(Answer {
            text: first.to_string(),
            trace: vec![
                Step { kind: StepKind::Thought, content: prompt },
                Step { kind: StepKind::Answer, content: text },
            ],
            contexts: vec![],
        })
    }
}

export!(Method);
