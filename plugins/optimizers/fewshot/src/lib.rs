//! `fewshot`: an optimizer that needs no strong interviewer (DSPy's
//! BootstrapFewShotWithRandomSearch idea). Its demonstrations are the
//! training examples the incumbent got right, with the model's own answers
//! (bootstrapped) or the references; each candidate is the starting prompt
//! with a random subset of `k` of them in front, and the host's validation
//! run picks the set that works. A demonstration is the question filled
//! into the starting prompt followed by its answer, so it reads like the
//! example the model is about to see.
//!
//! Params (JSON, all optional):
//! - `k`: demonstrations per candidate (default 3).
//! - `candidates`: subsets proposed per iteration (default 4; the host
//!   evaluates at most `[optimize] max_candidates`).
//! - `answers`: `model` (default: the answer the model gave, which scored
//!   well) or `reference` (the first reference; then failures serve as
//!   demonstrations too, LabeledFewShot style).
//! - `separator`: between demonstrations and before the question
//!   (default a blank line).
//! - `seed`: mixed with the iteration into the subset draw (default 0).
//!
//! With no demonstration available (the model got nothing right and
//! `answers = "model"`), it proposes nothing: the run stops with "no change".

use optimizer_kit::rng::SplitMix;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "three")]
    pub k: usize,
    #[serde(default = "four")]
    pub candidates: usize,
    #[serde(default = "model")]
    pub answers: String,
    #[serde(default = "blank_line")]
    pub separator: String,
    #[serde(default)]
    pub seed: u64,
}

fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn model() -> String {
    "model".into()
}
fn blank_line() -> String {
    "\n\n".into()
}

pub fn parse_params(params: &str) -> Result<Params, String> {
    let p: Params = serde_json::from_str(if params.trim().is_empty() {
        "{}"
    } else {
        params
    })
    .map_err(|e| format!("fewshot params: {e}"))?;
    if p.k == 0 || p.candidates == 0 {
        return Err("fewshot params: k and candidates must be at least 1".into());
    }
    if p.answers != "model" && p.answers != "reference" {
        return Err(format!(
            "fewshot params: answers {:?}: expected \"model\" or \"reference\"",
            p.answers
        ));
    }
    Ok(p)
}

/// One demonstration: a question and the answer shown for it.
pub struct Demo {
    pub question: String,
    pub answer: String,
}

/// The starting prompt with `demos` in front, each rendered through the
/// starting prompt itself (its `{question}` filled) and followed by its
/// answer.
pub fn with_demos(start: &str, demos: &[&Demo], separator: &str) -> String {
    let mut out = String::new();
    for d in demos {
        out += &optimizer_kit::render(start, &[("question", &d.question), ("context", "")]);
        out.push(' ');
        out += d.answer.trim();
        out += separator;
    }
    out += start;
    out
}

/// Up to `p.candidates` distinct prompts from random `k`-subsets of the
/// demonstrations, none of them in `tried`.
pub fn propose(
    start: &str,
    demos: &[Demo],
    p: &Params,
    iteration: u32,
    tried: &[&str],
) -> Vec<(String, String)> {
    let mut rng = SplitMix::new(p.seed ^ u64::from(iteration).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut out: Vec<(String, String)> = Vec::new();
    // A few more draws than candidates: some subsets repeat.
    for _ in 0..p.candidates * 4 {
        if out.len() == p.candidates || demos.is_empty() {
            break;
        }
        let pick = rng.subset(demos.len(), p.k);
        let chosen: Vec<&Demo> = pick.iter().map(|&i| &demos[i]).collect();
        let prompt = with_demos(start, &chosen, &p.separator);
        if tried.contains(&prompt.as_str()) || out.iter().any(|(q, _)| *q == prompt) {
            continue;
        }
        let analysis = format!(
            "{} demonstration(s) ({} answers) drawn from {} available: {}",
            chosen.len(),
            p.answers,
            demos.len(),
            chosen
                .iter()
                .map(|d| format!("{:?}", d.question))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push((prompt, analysis));
    }
    out
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.6", world: "optimizer" });

    use exports::forge::plugin::proposer::{Candidate, Guest, State};
    use forge::plugin::types::PluginError;

    struct FewShot;

    impl Guest for FewShot {
        fn propose(state: State, params: String) -> Result<Vec<Candidate>, PluginError> {
            let p = super::parse_params(&params).map_err(PluginError::InvalidInput)?;
            let mut demos = Vec::new();
            for o in &state.successes {
                let answer = match p.answers.as_str() {
                    "model" => o.answer.clone(),
                    _ => o.references.first().cloned(),
                };
                if let Some(answer) = answer {
                    demos.push(super::Demo {
                        question: o.question.clone(),
                        answer,
                    });
                }
            }
            if p.answers == "reference" {
                for o in &state.failures {
                    if let Some(r) = o.references.first() {
                        demos.push(super::Demo {
                            question: o.question.clone(),
                            answer: r.clone(),
                        });
                    }
                }
            }
            let mut tried: Vec<&str> = state.history.iter().map(|t| t.prompt.as_str()).collect();
            tried.push(&state.prompt);
            Ok(
                super::propose(&state.start_prompt, &demos, &p, state.iteration, &tried)
                    .into_iter()
                    .map(|(prompt, analysis)| Candidate { prompt, analysis })
                    .collect(),
            )
        }
    }

    export!(FewShot);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demos() -> Vec<Demo> {
        (0..5)
            .map(|i| Demo {
                question: format!("q{i}?"),
                answer: format!("a{i}"),
            })
            .collect()
    }

    #[test]
    fn demonstrations_are_rendered_through_the_starting_prompt() {
        let d = demos();
        let p = with_demos("Question: {question}\nAnswer:", &[&d[0], &d[1]], "\n\n");
        assert_eq!(
            p,
            "Question: q0?\nAnswer: a0\n\nQuestion: q1?\nAnswer: a1\n\nQuestion: {question}\nAnswer:"
        );
    }

    #[test]
    fn proposals_are_seeded_distinct_and_keep_the_placeholder() {
        let p = parse_params(r#"{"k": 2, "candidates": 3}"#).unwrap();
        let a = propose("Q: {question}\nA:", &demos(), &p, 1, &[]);
        assert_eq!(a, propose("Q: {question}\nA:", &demos(), &p, 1, &[]));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|(q, _)| q.ends_with("Q: {question}\nA:")));
        let b = propose("Q: {question}\nA:", &demos(), &p, 2, &[]);
        assert_ne!(a, b, "another iteration draws other subsets");
        let tried: Vec<&str> = a.iter().map(|(q, _)| q.as_str()).collect();
        let c = propose("Q: {question}\nA:", &demos(), &p, 1, &tried);
        assert!(c.iter().all(|(q, _)| !tried.contains(&q.as_str())));
        assert!(propose("Q: {question}", &[], &p, 1, &[]).is_empty());
        assert!(parse_params(r#"{"answers": "gold"}"#).is_err());
    }
}
