//! `cot_fewshot`: few-shot chain-of-thought. Worked exemplars are rendered
//! as prior user/assistant turns (so the model's chat template frames them),
//! then the question; the answer is read from the model's reasoning by a
//! recorded rule (`method_kit::extract`), as in `cot`.
//!
//! Params (JSON):
//! - `exemplars_file`: a JSONL file of `{"question", "reasoning", "answer"}`
//!   lines. The sandbox denies file access unless the config grants it:
//!   `grants = { read_dirs = ["exemplars"] }` under `[method]` (a
//!   relative directory is found from the config's folder, and the guest
//!   sees it under the name as written, so `exemplars_file =
//!   "exemplars/gsm8k.jsonl"` is relative to the config too).
//! - `exemplars`: the same exemplars inline, as a list of tables (instead of
//!   `exemplars_file`; exactly one of the two).
//! - `count`: use the first `count` exemplars (default: all).
//! - `template`: user message for each exemplar question and the real one;
//!   `{question}` and `{context}` are filled in (context is empty for
//!   exemplars). Default `Question: {question}\nLet's think step by step,
//!   then give the final answer after "Answer:".`
//! - `exemplar_template`: assistant message of each exemplar, with
//!   `{reasoning}` and `{answer}`. Default `{reasoning}\nAnswer: {answer}`.
//! - `system`: a system message (default: the model template's own).
//! - `numeric`: read a number (math tasks such as GSM8K). Default false.
//! - `max_tokens` (default: the experiment's, at least 256), `temperature`,
//!   `top_p`, `stop`: generation overrides.
//!
//! Trace: `exemplars: <n> from <source> (fnv1a64 <hash>)`, the reasoning
//! (`thought`), `extraction: <rule>`, the answer.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::inference::{self, Message};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};
use method_kit::fewshot::{self, Exemplar};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    exemplars_file: Option<String>,
    exemplars: Option<Vec<Exemplar>>,
    count: Option<usize>,
    #[serde(default = "default_template")]
    template: String,
    #[serde(default = "default_exemplar_template")]
    exemplar_template: String,
    system: Option<String>,
    #[serde(default)]
    numeric: bool,
}

fn default_template() -> String {
    "Question: {question}\nLet's think step by step, then give the final answer after \"Answer:\"."
        .into()
}

fn default_exemplar_template() -> String {
    "{reasoning}\nAnswer: {answer}".into()
}

/// The exemplars and a line saying where they came from.
fn load(p: &Params) -> Result<(Vec<Exemplar>, String), PluginError> {
    let (all, source, text) = match (&p.exemplars_file, &p.exemplars) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                PluginError::Unavailable(format!(
                    "cot_fewshot: cannot read exemplars_file {path:?}: {e}. The sandbox denies \
                     file access unless granted: add `grants = {{ read_dirs = [\"<its directory>\"] }}` \
                     under [method] (a relative directory is found from the config's folder and \
                     exemplars_file must be written under it), or give \
                     the exemplars inline in params.exemplars"
                ))
            })?;
            let all = fewshot::parse_jsonl(&text, path)
                .map_err(|e| PluginError::InvalidInput(format!("cot_fewshot: {e}")))?;
            (all, path.clone(), text)
        }
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(PluginError::InvalidInput(
                    "cot_fewshot params: exemplars is empty".into(),
                ));
            }
            let text = serde_json::to_string(
                &list
                    .iter()
                    .map(|e| [&e.question, &e.reasoning, &e.answer])
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
            (list.clone(), "params".to_string(), text)
        }
        _ => {
            return Err(PluginError::InvalidInput(
                "cot_fewshot params: give exactly one of exemplars_file (a JSONL file, with a \
                 read_dirs grant) or exemplars (inline)"
                    .into(),
            ));
        }
    };
    let chosen = fewshot::select(&all, p.count)
        .map_err(|e| PluginError::InvalidInput(format!("cot_fewshot params: {e}")))?
        .to_vec();
    let note = format!(
        "exemplars: {} from {source} (fnv1a64 {:016x})",
        chosen.len(),
        method_kit::fnv1a64(text.as_bytes())
    );
    Ok((chosen, note))
}

struct CotFewshot;

impl Guest for CotFewshot {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let (p, overrides): (Params, _) =
            method_kit::parse_params(&params, "cot_fewshot").map_err(PluginError::InvalidInput)?;
        let (exemplars, source_note) = load(&p)?;
        let mut gp = inference::default_params();
        gp.max_tokens = gp.max_tokens.max(256);
        overrides.apply(
            &mut gp.max_tokens,
            &mut gp.temperature,
            &mut gp.top_p,
            &mut gp.stop,
        );

        let mut turns = Vec::new();
        if let Some(system) = &p.system {
            turns.push(method_kit::Turn::system(system.clone()));
        }
        turns.extend(fewshot::render(
            &exemplars,
            &p.template,
            &p.exemplar_template,
        ));
        turns.push(method_kit::Turn::user(method_kit::fill(
            &p.template,
            &example.question,
            example.context.as_deref(),
        )));
        let messages: Vec<Message> = turns
            .into_iter()
            .map(|t| Message {
                role: t.role.into(),
                content: t.content,
            })
            .collect();
        let out = inference::chat(&messages, &gp)
            .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;
        let (text, rule) = method_kit::extract::extract(&out.text, p.numeric);
        let step = |kind, content| Step { kind, content };
        Ok(Answer {
            trace: vec![
                step(StepKind::Note, source_note),
                step(StepKind::Thought, out.text),
                step(StepKind::Note, format!("extraction: {}", rule.name())),
                step(StepKind::Answer, text.clone()),
            ],
            text,
            contexts: example.context.into_iter().collect(),
        })
    }
}

export!(CotFewshot);
