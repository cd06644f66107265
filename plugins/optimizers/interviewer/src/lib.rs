//! `interviewer`: the prompt optimizer of the reference design. An
//! interviewer model (the host's `inference` here is the `[optimize]
//! interviewer` model, not the task model) reads the incumbent prompt, its
//! validation score, earlier prompts with their scores and a sample of
//! training failures, says why the model fails, and writes a new prompt
//! between `<prompt>` and `</prompt>` (read by `optimizer_kit::extract`).
//! The host evaluates each candidate; this component never sees the
//! validation or test examples, only scores and training outcomes.
//!
//! Params (JSON, all optional):
//! - `instructions`: the interviewer's user message, a template with
//!   `{prompt}` and `{failures}` (required) and `{metric}`, `{score}`,
//!   `{history}`, `{placeholders}`, `{successes}`, `{feedback}`
//!   (default `optimizer_kit::DEFAULT_INSTRUCTIONS`).
//! - `system`: a system message (default "You are an expert prompt engineer.").
//! - `candidates`: proposals per iteration, one interviewer call each
//!   (default 1).
//! - `max_tokens` (default 256), `temperature` (default 0.7: a re-asked
//!   interviewer should say something else; every call is seeded by the
//!   host, so a rerun says the same).
//! - `max_chars`: each question, answer and prompt shown is cut to this
//!   (default 300), so the interview fits a small model's context.
//! - `chat`: true renders the interview with the model's chat template,
//!   false sends it as a raw completion prompt (system, then the message);
//!   unset: chat, or raw when the model has no chat template (a base model).
//!
//! An empty reply is no proposal; a reply without tags is proposed as is
//! (the host refuses it when it lost a placeholder, and asks again).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_instructions")]
    pub instructions: String,
    #[serde(default = "default_system")]
    pub system: String,
    #[serde(default = "one")]
    pub candidates: u32,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    pub chat: Option<bool>,
}

fn default_instructions() -> String {
    optimizer_kit::DEFAULT_INSTRUCTIONS.into()
}
fn default_system() -> String {
    "You are an expert prompt engineer.".into()
}
fn one() -> u32 {
    1
}
fn default_max_tokens() -> u32 {
    256
}
fn default_temperature() -> f32 {
    0.7
}
fn default_max_chars() -> usize {
    300
}

pub fn parse_params(params: &str) -> Result<Params, String> {
    let p: Params = if params.trim().is_empty() {
        serde_json::from_str("{}")
    } else {
        serde_json::from_str(params)
    }
    .map_err(|e| format!("interviewer params: {e}"))?;
    optimizer_kit::check_instructions(&p.instructions)
        .map_err(|e| format!("interviewer params: instructions: {e}"))?;
    if p.candidates == 0 {
        return Err("interviewer params: candidates must be at least 1".into());
    }
    Ok(p)
}

/// One outcome as the interviewer sees it.
pub struct Shown<'a> {
    pub question: &'a str,
    pub answer: Option<&'a str>,
    pub references: &'a [String],
    pub error: Option<&'a str>,
    pub score: Option<f64>,
}

/// The state, as text for the template.
pub struct View<'a> {
    pub prompt: &'a str,
    pub metric: &'a str,
    pub score: f64,
    pub placeholders: &'a [String],
    /// (prompt, validation score, accepted), best first.
    pub history: Vec<(&'a str, f64, bool)>,
    pub failures: Vec<Shown<'a>>,
    pub successes: Vec<Shown<'a>>,
    pub feedback: Option<&'a str>,
}

fn cut(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn outcomes(list: &[Shown<'_>], max: usize) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    let mut out = String::new();
    for (i, s) in list.iter().enumerate() {
        let answer = match (s.answer, s.error) {
            (Some(a), _) => cut(a, max),
            (None, Some(e)) => format!("(failed: {})", cut(e, max)),
            (None, None) => "(no answer)".into(),
        };
        out.push_str(&format!(
            "{}. Question: {}\n   Model's answer: {}\n   Correct answer: {}\n",
            i + 1,
            cut(s.question, max),
            answer,
            cut(&s.references.join(" | "), max)
        ));
    }
    out.trim_end().to_string()
}

/// The interviewer's user message.
pub fn interview(p: &Params, v: &View<'_>) -> String {
    let history = if v.history.is_empty() {
        "(none yet)".to_string()
    } else {
        v.history
            .iter()
            .map(|(prompt, score, accepted)| {
                format!(
                    "- {score:.3}{}: {}",
                    if *accepted { " (kept)" } else { "" },
                    cut(prompt, p.max_chars)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let feedback = v
        .feedback
        .map(|f| format!("\nYour previous proposal was refused: {f}\n"))
        .unwrap_or_default();
    let score = format!("{:.3}", v.score);
    let placeholders = v.placeholders.join(", ");
    optimizer_kit::render(
        &p.instructions,
        &[
            ("prompt", v.prompt),
            ("failures", &outcomes(&v.failures, p.max_chars)),
            ("successes", &outcomes(&v.successes, p.max_chars)),
            ("metric", v.metric),
            ("score", &score),
            ("history", &history),
            ("placeholders", &placeholders),
            ("feedback", &feedback),
        ],
    )
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.6", world: "optimizer" });

    use exports::forge::plugin::proposer::{Candidate, Guest, Outcome, State};
    use forge::plugin::inference::{self, Message};
    use forge::plugin::types::PluginError;

    struct Interviewer;

    fn shown<'a>(o: &'a Outcome, metric: &str) -> super::Shown<'a> {
        super::Shown {
            question: &o.question,
            answer: o.answer.as_deref(),
            references: &o.references,
            error: o.error.as_deref(),
            score: o.scores.iter().find(|s| s.name == metric).map(|s| s.value),
        }
    }

    impl Guest for Interviewer {
        fn propose(state: State, params: String) -> Result<Vec<Candidate>, PluginError> {
            let p = super::parse_params(&params).map_err(PluginError::InvalidInput)?;
            let view = super::View {
                prompt: &state.prompt,
                metric: &state.metric,
                score: state.score,
                placeholders: &state.placeholders,
                history: state
                    .history
                    .iter()
                    .map(|t| (t.prompt.as_str(), t.score, t.accepted))
                    .collect(),
                failures: state
                    .failures
                    .iter()
                    .map(|o| shown(o, &state.metric))
                    .collect(),
                successes: state
                    .successes
                    .iter()
                    .map(|o| shown(o, &state.metric))
                    .collect(),
                feedback: state.feedback.as_deref(),
            };
            let user = super::interview(&p, &view);
            let messages = vec![
                Message {
                    role: "system".into(),
                    content: p.system.clone(),
                },
                Message {
                    role: "user".into(),
                    content: user,
                },
            ];
            let raw = format!("{}\n\n{}\n\n", p.system, messages[1].content);
            let mut out = Vec::new();
            for _ in 0..p.candidates {
                let mut gp = inference::default_params();
                gp.max_tokens = p.max_tokens;
                gp.temperature = p.temperature;
                let reply = match p.chat {
                    Some(false) => inference::complete(&raw, &gp),
                    Some(true) => inference::chat(&messages, &gp),
                    // A base model has no chat template: ask it raw.
                    None => match inference::chat(&messages, &gp) {
                        Err(inference::InferenceError::InvalidParams(m))
                            if m.contains("chat template") =>
                        {
                            inference::complete(&raw, &gp)
                        }
                        other => other,
                    },
                }
                .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;
                if reply.text.trim().is_empty() {
                    continue;
                }
                let proposal = optimizer_kit::extract(&reply.text);
                out.push(Candidate {
                    prompt: proposal.prompt,
                    analysis: proposal.analysis,
                });
            }
            Ok(out)
        }
    }

    export!(Interviewer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interview_shows_prompt_failures_history_and_feedback() {
        let p = parse_params("").unwrap();
        let refs = vec!["Paris".to_string()];
        let ph = vec!["{question}".to_string()];
        let v = View {
            prompt: "Q: {question}\nA:",
            metric: "contains",
            score: 0.25,
            placeholders: &ph,
            history: vec![("Q: {question}\nA:", 0.25, true)],
            failures: vec![Shown {
                question: "Capital of France?",
                answer: Some("London"),
                references: &refs,
                error: None,
                score: Some(0.0),
            }],
            successes: vec![],
            feedback: Some("it lost {question}"),
        };
        let text = interview(&p, &v);
        for needle in [
            "Q: {question}\nA:",
            "0.250 on contains",
            "- 0.250 (kept): Q: {question}",
            "1. Question: Capital of France?",
            "Model's answer: London",
            "Correct answer: Paris",
            "Your previous proposal was refused: it lost {question}",
            "must contain {question} exactly",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }

    #[test]
    fn params_are_strict_and_the_template_is_checked() {
        assert!(
            parse_params(r#"{"instructons": "x"}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        let e = parse_params(r#"{"instructions": "Improve {prompt}"}"#).unwrap_err();
        assert!(e.contains("{failures}"), "{e}");
        assert!(parse_params(r#"{"candidates": 0}"#).is_err());
    }
}
