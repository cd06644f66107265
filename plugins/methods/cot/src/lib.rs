//! `cot`: zero-shot chain-of-thought. The model reasons step by step, then
//! the answer is read from its text by a recorded rule (see `extract`).
//!
//! Params (JSON, all optional):
//! - `template`: user message; `{question}` and `{context}` are filled in.
//!   Default `Question: {question}\nLet's think step by step, then give the
//!   final answer after "Answer:".`
//! - `system`: a system message (default: the model template's own).
//! - `numeric`: read a number (math tasks such as GSM8K). Default false.
//! - `max_tokens`, `temperature`, `top_p`, `stop`: override the experiment's
//!   generation parameters (reasoning needs more tokens than a short answer).

pub mod extract;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "method" });

    use exports::forge::plugin::solver::Guest;
    use forge::plugin::inference::{self, Message};
    use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        #[serde(default = "default_template")]
        template: String,
        system: Option<String>,
        #[serde(default)]
        numeric: bool,
        max_tokens: Option<u32>,
        temperature: Option<f32>,
        top_p: Option<f32>,
        stop: Option<Vec<String>>,
    }

    fn default_template() -> String {
        "Question: {question}\nLet's think step by step, then give the final answer after \"Answer:\".".into()
    }

    struct Cot;

    impl Guest for Cot {
        fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
            let p: Params = serde_json::from_str(if params.trim().is_empty() {
                "{}"
            } else {
                &params
            })
            .map_err(|e| PluginError::InvalidInput(format!("cot params: {e}")))?;
            let prompt = p
                .template
                .replace("{question}", &example.question)
                .replace("{context}", example.context.as_deref().unwrap_or(""));
            let mut gp = inference::default_params();
            gp.max_tokens = p.max_tokens.unwrap_or(gp.max_tokens.max(256));
            if let Some(v) = p.temperature {
                gp.temperature = v;
            }
            if let Some(v) = p.top_p {
                gp.top_p = v;
            }
            if let Some(v) = p.stop {
                gp.stop = v;
            }
            let mut messages = Vec::new();
            if let Some(system) = p.system {
                messages.push(Message {
                    role: "system".into(),
                    content: system,
                });
            }
            messages.push(Message {
                role: "user".into(),
                content: prompt,
            });
            let out = inference::chat(&messages, &gp)
                .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;
            let (text, rule) = super::extract::extract(&out.text, p.numeric);
            Ok(Answer {
                trace: vec![
                    Step {
                        kind: StepKind::Thought,
                        content: out.text,
                    },
                    Step {
                        kind: StepKind::Note,
                        content: format!("extraction: {}", rule.name()),
                    },
                    Step {
                        kind: StepKind::Answer,
                        content: text.clone(),
                    },
                ],
                text,
                contexts: example.context.into_iter().collect(),
            })
        }
    }

    export!(Cot);
}
