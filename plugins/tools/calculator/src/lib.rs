//! `calculator`: evaluates an arithmetic expression for an agent.
//!
//! The evaluator (`eval`) is plain Rust, unit-tested natively; the component
//! glue is compiled only for wasm32, where the tool world is exported.

pub mod eval;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "tool" });

    use exports::forge::plugin::tool_provider::Guest;
    use forge::plugin::types::PluginError;

    struct Calculator;

    impl Guest for Calculator {
        fn describe() -> String {
            "Evaluates an arithmetic expression, e.g. `(3 + 4.5) * 2^3 / sqrt(16)`. \
             Operators + - * / × ÷ ^ % and parentheses; functions sqrt, log, ln, exp, sin, cos, tan, \
             abs, round, min, max; constants pi and e."
                .into()
        }

        fn call(input: String, _params: String) -> Result<String, PluginError> {
            super::eval::evaluate(&input)
                .map(super::eval::format_number)
                .map_err(|e| PluginError::InvalidInput(e.to_string()))
        }
    }

    export!(Calculator);
}
