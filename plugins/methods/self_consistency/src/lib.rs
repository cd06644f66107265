//! `self_consistency`: k chains of thought sampled at a temperature, an
//! answer read from each (`method_kit::extract`), and a majority vote over
//! the normalised answers, ties to the first (`method_kit::vote`).
//!
//! Each chain has its own sampling seed, a function of the example id, the
//! chain index and `seed` only (`method_kit::vote::chain_seed`), so reruns
//! reproduce every chain; the seed is recorded with each model call.
//!
//! Params (JSON, all optional):
//! - `k`: chains (default 5).
//! - `template`: user message; `{question}` and `{context}` are filled in.
//!   Default `Question: {question}\nLet's think step by step, then give the
//!   final answer after "Answer:".`
//! - `system`: a system message (default: the model template's own).
//! - `numeric`: read and compare numbers (math tasks such as GSM8K).
//! - `seed`: base of the chains' seeds (default 0).
//! - `temperature` (default 0.7 here, not the experiment's), `max_tokens`
//!   (default: the experiment's, at least 256), `top_p`, `stop`.
//!
//! Trace, per chain: the chain (`thought`), `extraction: <rule>`,
//! `chain_answer: <answer>`; then `votes: {"18": 3, "20": 2}`,
//! `agreement: 0.60` and the answer.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::inference::{self, Message};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};
use method_kit::Kind;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_k")]
    k: u32,
    #[serde(default = "default_template")]
    template: String,
    system: Option<String>,
    #[serde(default)]
    numeric: bool,
    #[serde(default)]
    seed: u64,
}

fn default_k() -> u32 {
    5
}

fn default_template() -> String {
    "Question: {question}\nLet's think step by step, then give the final answer after \"Answer:\"."
        .into()
}

struct SelfConsistency;

impl Guest for SelfConsistency {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let (p, overrides): (Params, _) = method_kit::parse_params(&params, "self_consistency")
            .map_err(PluginError::InvalidInput)?;
        if p.k == 0 || p.k > 64 {
            return Err(PluginError::InvalidInput(format!(
                "self_consistency params: k is {}, must be 1 to 64",
                p.k
            )));
        }
        let mut gp = inference::default_params();
        gp.max_tokens = gp.max_tokens.max(256);
        gp.temperature = 0.7;
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
            content: method_kit::fill(&p.template, &example.question, example.context.as_deref()),
        });

        let (text, trace) = method_kit::vote::self_consistency(p.k, p.numeric, |i| {
            let mut params = gp.clone();
            params.seed = Some(method_kit::vote::chain_seed(&example.id, i, p.seed));
            inference::chat(&messages, &params)
                .map(|g| g.text)
                .map_err(|e| PluginError::Unavailable(format!("inference (chain {i}): {e:?}")))
        })?;
        Ok(Answer {
            text,
            trace: trace
                .into_iter()
                .map(|s| Step {
                    kind: match s.kind {
                        Kind::Thought => StepKind::Thought,
                        Kind::Action => StepKind::Action,
                        Kind::Observation => StepKind::Observation,
                        Kind::Answer => StepKind::Answer,
                        Kind::Note => StepKind::Note,
                    },
                    content: s.content,
                })
                .collect(),
            contexts: example.context.into_iter().collect(),
        })
    }
}

export!(SelfConsistency);
