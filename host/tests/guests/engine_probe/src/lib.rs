//! A method on contract 0.1.2 that exercises its new host calls: a greedy
//! `complete-ext` with log-probabilities, `score` of two continuations (the
//! generated one and a nonsense one) and `embed`. It answers with the
//! generated text and puts what it saw, as JSON, in a `note` step.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.2", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::embeddings;
use forge::plugin::inference::{self, GenerateOptions, GenerateParams};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};

struct Probe;

fn failed(e: impl std::fmt::Debug) -> PluginError {
    PluginError::Failed(format!("{e:?}"))
}

fn esc(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Guest for Probe {
    fn solve(example: Example, _params: String) -> Result<Answer, PluginError> {
        let prompt = format!("Question: {}\nAnswer:", example.question);
        let params = GenerateParams {
            max_tokens: 6,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec![],
            seed: None,
        };
        let options = GenerateOptions {
            top_k: 0,
            repetition_penalty: 1.0,
            logprobs: Some(3),
        };
        let g = inference::complete_ext(&prompt, &params, options).map_err(failed)?;
        let scores = inference::score(&prompt, &[g.generation.text.clone(), " zq xv qz".into()])
            .map_err(failed)?;
        let embed = match embeddings::embed(&["a text".to_string()]) {
            Ok(v) => format!("{{\"ok\":{}}}", v.len()),
            Err(e) => format!("{{\"error\":{}}}", esc(&e)),
        };
        let logprobs: Vec<String> = g
            .tokens
            .iter()
            .map(|t| format!("[{},{},{}]", t.id, t.logprob, t.top.len()))
            .collect();
        let note = format!(
            "{{\"completion_tokens\":{},\"tokens\":[{}],\"scores\":[{},{}],\"embed\":{}}}",
            g.generation.completion_tokens,
            logprobs.join(","),
            scores[0],
            scores[1],
            embed
        );
        Ok(Answer {
            text: g.generation.text,
            trace: vec![Step {
                kind: StepKind::Note,
                content: note,
            }],
            contexts: vec![],
        })
    }
}

export!(Probe);
