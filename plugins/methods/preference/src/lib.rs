//! `preference`: which reply of a preference pair does the model find more
//! likely? Runs on a dataset with `[dataset] kind = "preference"`, whose
//! examples carry `{"chosen", "rejected", "messages"}` in their metadata
//! (`messages`: the prompt split into chat turns, an HH transcript
//! `"\n\nHuman: …\n\nAssistant:"` as user/assistant turns, as `train dpo`
//! splits it). One `inference.score-chat-ext` call (contract 0.1.5) scores both replies after
//! the messages rendered with the model's chat template (generation prompt
//! appended): the total natural-log probability of each.
//!
//! The answer's text is `chosen`, `rejected` or `tie` (by total
//! log-probability); the trace holds one note
//! `preference: {"chosen_logprob":..,"rejected_logprob":..,"chosen_chars":..,"rejected_chars":..,"chosen_tokens":..,"rejected_tokens":..}`,
//! which the `preference_accuracy` metric scores.
//!
//! Params (JSON, all optional):
//! - `strip`: strip whitespace around each reply before scoring (default
//!   true, as `train dpo` does: HH replies start with a space that the chat
//!   template's assistant turn does not have).
//! - `suffix`: appended to each reply as scored (default none). Set it to
//!   the model's end-of-turn marker (SmolLM2: `<|im_end|>`) to also score
//!   that the reply ends there, as DPO training's completions do.
//! - `system`: a system message before the turns (default none: the
//!   model's chat template applies its own default).
//!
//! Logic here is plain Rust, unit-tested natively; the component glue is
//! compiled only for wasm32.

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "yes")]
    pub strip: bool,
    #[serde(default)]
    pub suffix: String,
    pub system: Option<String>,
}

fn yes() -> bool {
    true
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        serde_json::from_str(json).map_err(|e| format!("preference params: {e}"))
    }
}

/// A chat turn, as the WIT `message`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

#[derive(Deserialize)]
struct Pair {
    chosen: String,
    rejected: String,
    messages: Option<Vec<Turn>>,
}

/// What to ask the host: the chat turns and the two continuations
/// (chosen, rejected), from an example's metadata and question.
pub fn request(
    p: &Params,
    question: &str,
    metadata: &str,
) -> Result<(Vec<Turn>, [String; 2]), String> {
    let pair: Pair = serde_json::from_str(metadata).map_err(|e| {
        format!(
            "metadata has no preference pair ({e}): run on a dataset with [dataset] kind = \"preference\""
        )
    })?;
    let mut turns = Vec::new();
    if let Some(system) = &p.system {
        turns.push(Turn {
            role: "system".into(),
            content: system.clone(),
        });
    }
    // Without split turns, the prompt is one user turn.
    turns.extend(pair.messages.unwrap_or_else(|| {
        vec![Turn {
            role: "user".into(),
            content: question.trim().into(),
        }]
    }));
    let reply = |r: &str| {
        let r = if p.strip { r.trim() } else { r };
        format!("{r}{}", p.suffix)
    };
    Ok((turns, [reply(&pair.chosen), reply(&pair.rejected)]))
}

/// The verdict from the host's two scores: `(log-probability, tokens)` of
/// the chosen and the rejected reply.
pub fn verdict(
    continuations: &[String; 2],
    scores: &[(f64, u32)],
) -> Result<pref_eval::Verdict, String> {
    match scores {
        [(c, ct), (r, rt)] => Ok(pref_eval::Verdict {
            chosen_logprob: *c,
            rejected_logprob: *r,
            chosen_chars: continuations[0].chars().count() as u64,
            rejected_chars: continuations[1].chars().count() as u64,
            chosen_tokens: Some(u64::from(*ct)),
            rejected_tokens: Some(u64::from(*rt)),
        }),
        other => Err(format!(
            "score-chat returned {} scores for 2 replies",
            other.len()
        )),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.5", world: "method" });

    use exports::forge::plugin::solver::Guest;
    use forge::plugin::inference::{self, Message};
    use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};

    struct Preference;

    impl Guest for Preference {
        fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
            let p = super::Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let (turns, replies) = super::request(&p, &example.question, &example.metadata)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            let messages: Vec<Message> = turns
                .into_iter()
                .map(|t| Message {
                    role: t.role,
                    content: t.content,
                })
                .collect();
            let scores = inference::score_chat_ext(&messages, &replies).map_err(|e| {
                let why = match e {
                    inference::InferenceError::InvalidParams(m) => format!("invalid params: {m}"),
                    inference::InferenceError::ContextOverflow(m) => m,
                    inference::InferenceError::Backend(m) => m,
                };
                PluginError::Unavailable(format!("inference.score-chat-ext: {why}"))
            })?;
            let scores: Vec<(f64, u32)> = scores.iter().map(|s| (s.logprob, s.tokens)).collect();
            let v = super::verdict(&replies, &scores).map_err(PluginError::Failed)?;
            Ok(Answer {
                text: v.winner().into(),
                trace: vec![Step {
                    kind: StepKind::Note,
                    content: v.note(),
                }],
                contexts: vec![],
            })
        }
    }

    export!(Preference);
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"chosen":" Sure.\n","rejected":" No way","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"help?"}],"meta":null}"#;

    #[test]
    fn turns_and_replies_from_the_metadata() {
        let (turns, replies) = request(&Params::parse("").unwrap(), "ignored", META).unwrap();
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[2].content, "help?");
        assert_eq!(replies, ["Sure.".to_string(), "No way".to_string()]);
        let p =
            Params::parse(r#"{"strip":false,"suffix":"<|im_end|>","system":"Be kind."}"#).unwrap();
        let (turns, replies) = request(&p, "ignored", META).unwrap();
        assert_eq!((turns[0].role.as_str(), turns.len()), ("system", 4));
        assert_eq!(replies[0], " Sure.\n<|im_end|>");
        // No split turns: the question is the one user turn.
        let (turns, _) = request(
            &Params::parse("{}").unwrap(),
            " q ",
            r#"{"chosen":"a","rejected":"b"}"#,
        )
        .unwrap();
        assert_eq!(
            turns,
            [Turn {
                role: "user".into(),
                content: "q".into()
            }]
        );
        // A QA example, or a typo in the params, says what to fix.
        let e = request(&Params::parse("").unwrap(), "q", "{}").unwrap_err();
        assert!(e.contains("[dataset] kind = \"preference\""), "{e}");
        assert!(
            Params::parse(r#"{"sufix":""}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn verdict_counts_characters_as_scored() {
        let replies = ["héllo".to_string(), "no".to_string()];
        let v = verdict(&replies, &[(-2.0, 3), (-1.0, 1)]).unwrap();
        assert_eq!((v.chosen_chars, v.rejected_chars), (5, 2));
        assert_eq!((v.chosen_tokens, v.rejected_tokens), (Some(3), Some(1)));
        assert_eq!(v.winner(), "rejected");
        assert!(verdict(&replies, &[(-1.0, 1)]).is_err());
    }
}
