//! A tool for testing the `tools` capability: returns its input upper-cased;
//! `trap` panics, `loop` never returns, `fail` reports an error.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "tool" });

use exports::forge::plugin::tool_provider::Guest;
use forge::plugin::types::PluginError;

struct Echo;

impl Guest for Echo {
    fn describe() -> String {
        "Echoes its input in upper case.".into()
    }

    fn call(input: String, _params: String) -> Result<String, PluginError> {
        match input.as_str() {
            "trap" => panic!("echo tool panics on purpose"),
            "loop" => loop {
                std::hint::black_box(());
            },
            "fail" => Err(PluginError::InvalidInput("echo refuses 'fail'".into())),
            other => Ok(other.to_uppercase()),
        }
    }
}

export!(Echo);
