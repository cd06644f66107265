//! `cot`: zero-shot chain-of-thought. The model reasons step by step, then
//! the answer is read from its text by a recorded rule
//! (`method_kit::extract`: marker, conclusion, last number, last sentence).
//!
//! Params (JSON, all optional):
//! - `template`: user message; `{question}` and `{context}` are filled in.
//!   Default `Question: {question}\nLet's think step by step, then give the
//!   final answer after "Answer:".`
//! - `system`: a system message (default: the model template's own).
//! - `numeric`: read a number (math tasks such as GSM8K). Default false.
//! - `max_tokens` (default: the experiment's, at least 256, since reasoning
//!   needs room), `temperature`, `top_p`, `stop`: generation overrides.

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
}

fn default_template() -> String {
    "Question: {question}\nLet's think step by step, then give the final answer after \"Answer:\"."
        .into()
}

struct Cot;

impl Guest for Cot {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let (p, overrides): (Params, _) =
            method_kit::parse_params(&params, "cot").map_err(PluginError::InvalidInput)?;
        let prompt = method_kit::fill(&p.template, &example.question, example.context.as_deref());
        let mut gp = inference::default_params();
        gp.max_tokens = gp.max_tokens.max(256);
        overrides.apply(
            &mut gp.max_tokens,
            &mut gp.temperature,
            &mut gp.top_p,
            &mut gp.stop,
        );

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
        let (text, rule) = method_kit::extract::extract(&out.text, p.numeric);
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
