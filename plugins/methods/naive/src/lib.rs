//! `naive`: fill a prompt template with the example, ask the model once,
//! return its answer. The baseline every other method is compared with.
//!
//! Params (JSON, all optional):
//! - `template`: user message; `{question}` and `{context}` are filled in.
//!   Default `Question: {question}\nAnswer:`.
//! - `system`: a system message (default: none, so the model's chat template
//!   applies its own default).
//! - `chat`: true (default) renders with the model's chat template; false
//!   sends the filled template as a raw completion prompt.
//! - `first_line`: keep only the first non-empty line of the output (default false).
//! - `numeric`: answer with the number the output gives (math tasks such as
//!   GSM8K), read by `method_kit::extract` with the rule recorded in the
//!   trace, as `cot` does (default false: the output as is).
//! - `max_tokens`, `temperature`, `top_p`, `stop`: override the experiment's
//!   generation parameters for this method.

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
    #[serde(default = "yes")]
    chat: bool,
    #[serde(default)]
    first_line: bool,
    #[serde(default)]
    numeric: bool,
}

fn default_template() -> String {
    "Question: {question}\nAnswer:".into()
}
fn yes() -> bool {
    true
}

struct Naive;

impl Guest for Naive {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let (p, overrides): (Params, _) =
            method_kit::parse_params(&params, "naive").map_err(PluginError::InvalidInput)?;
        let prompt = method_kit::fill(&p.template, &example.question, example.context.as_deref());
        let mut gp = inference::default_params();
        overrides.apply(
            &mut gp.max_tokens,
            &mut gp.temperature,
            &mut gp.top_p,
            &mut gp.stop,
        );

        let out = if p.chat {
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
            inference::chat(&messages, &gp)
        } else {
            inference::complete(&prompt, &gp)
        }
        .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;

        let mut text = out.text.trim().to_string();
        if p.first_line {
            text = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
        }
        let mut trace = vec![Step {
            kind: StepKind::Answer,
            content: out.text.clone(),
        }];
        if p.numeric {
            let (number, rule) = method_kit::extract::extract(&out.text, true);
            trace.push(Step {
                kind: StepKind::Note,
                content: format!("extraction: {}", rule.name()),
            });
            text = number;
        }
        Ok(Answer {
            trace,
            text,
            contexts: example.context.into_iter().collect(),
        })
    }
}

export!(Naive);
