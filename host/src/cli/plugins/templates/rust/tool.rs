//! `{{name}}`: a forge tool written in Rust.
//!
//! An agent calls it as {{name}}[some text]; it answers with the number
//! of words and characters. Change `call` to do your tool's one thing.
//!
//!     forge-host plugins build .
//!     forge-host plugins test dist/{{name}}.wasm --dataset examples.jsonl

wit_bindgen::generate!({ path: "wit", world: "tool" });

use exports::forge::plugin::tool_provider::Guest;
use forge::plugin::types::PluginError;

struct Tool;

impl Guest for Tool {
    /// What the agent's prompt says about this tool: name, input, example.
    fn describe() -> String {
        "{{name}}[<text>]: counts the words and characters of the text, e.g. {{name}}[to be or not]".into()
    }

    fn call(input: String, _params: String) -> Result<String, PluginError> {
        let text = input.trim();
        if text.is_empty() {
            // A guest-visible error: stored with the tool call, not a crash.
            return Err(PluginError::InvalidInput("expected some text".into()));
        }
        Ok(format!(
            "{} words, {} characters",
            text.split_whitespace().count(),
            text.chars().count()
        ))
    }
}

export!(Tool);
