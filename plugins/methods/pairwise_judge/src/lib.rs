//! `pairwise_judge`: which of two answers to a user's request is better,
//! by the host's model as a judge, MT-Bench style, asked in both orders.
//!
//! Each example's `question` is the user's request; its metadata carries
//! the two answers, `{"answer_a": "...", "answer_b": "..."}` (strings; an
//! example without them is invalid input). The method makes exactly two
//! `inference.chat` calls with the experiment's generation parameters:
//! call 1 shows answer A first and answer B second, call 2 shows B first
//! and A second. The slot shown first is always labelled `A` in the prompt,
//! so a judge that favours a position says so. Each output is read by
//! `judge_eval::parse_verdict` (MT-Bench's `[[A]]`/`[[B]]`/`[[C]]` markers,
//! or a standalone `A`, `B` or `tie` at the start; never a guess) and
//! mapped back to the real answers.
//!
//! The answer's text is the final verdict, `A`, `B` or `tie` (the two
//! orders agree, or it is a tie), or `unparsed` when either output did not
//! parse. The trace holds each raw output as a thought,
//! `judge_output_1: <text>` and `judge_output_2: <text>`, then one note
//! `judge: {"first":"A"|"B"|"tie"|null,"second":"A"|"B"|"tie"|null}`
//! (`first`: the call that showed A first, `second`: the call that showed
//! B first, both about the real answers; `null`: did not parse), which the
//! `judge_verdict` metric scores.
//!
//! Params (JSON, all optional):
//! - `rubric`: what "better" means: `helpful` (default) or `harmless`, the
//!   built-in rubrics, or any other text used as the rubric as is.
//! - `template`: the judge's user message, with `{question}`, `{answer_a}`
//!   and `{answer_b}` (required) and `{rubric}` (optional) filled in one
//!   pass (default `judge_eval::DEFAULT_TEMPLATE`). It should ask for a
//!   reply `parse_verdict` reads.
//! - `system`: a system message (default none: the model's chat template
//!   applies its own default).
//! - `max_tokens`: overrides the experiment's `max_tokens` for the two
//!   calls (a verdict is short).
//!
//! Logic here is plain Rust, unit-tested natively; the component glue is
//! compiled only for wasm32.

use judge_eval::Note;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "helpful")]
    pub rubric: String,
    #[serde(default = "default_template")]
    pub template: String,
    pub system: Option<String>,
    pub max_tokens: Option<u32>,
}

fn helpful() -> String {
    "helpful".into()
}

fn default_template() -> String {
    judge_eval::DEFAULT_TEMPLATE.into()
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let p: Params =
            serde_json::from_str(json).map_err(|e| format!("pairwise_judge params: {e}"))?;
        judge_eval::check_template(&p.template)
            .map_err(|e| format!("pairwise_judge params: {e}"))?;
        if p.max_tokens == Some(0) {
            return Err("pairwise_judge params: max_tokens must be at least 1".into());
        }
        Ok(p)
    }
}

/// A chat turn, as the WIT `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

/// The two answers from an example's metadata: `(answer_a, answer_b)`.
pub fn answers(metadata: &str) -> Result<(String, String), String> {
    let meta: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| format!("metadata is not JSON ({e})"))?;
    let field = |name: &str| match meta.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.trim().to_string()),
        Some(_) => Err(format!(
            "metadata field `{name}` is not a string: pairwise_judge needs `answer_a` and `answer_b` strings"
        )),
        None => Err(format!(
            "metadata has no `{name}`: pairwise_judge needs `answer_a` and `answer_b` strings"
        )),
    };
    Ok((field("answer_a")?, field("answer_b")?))
}

/// The two conversations to send: call 1 shows answer A first, call 2
/// shows answer B first.
pub fn requests(p: &Params, question: &str, a: &str, b: &str) -> [Vec<Turn>; 2] {
    let rubric = judge_eval::rubric_text(&p.rubric);
    let question = question.trim();
    let turns = |first: &str, second: &str| {
        let mut turns = Vec::new();
        if let Some(system) = &p.system {
            turns.push(Turn {
                role: "system".into(),
                content: system.clone(),
            });
        }
        turns.push(Turn {
            role: "user".into(),
            content: judge_eval::render(&p.template, &rubric, question, first, second),
        });
        turns
    };
    [turns(a, b), turns(b, a)]
}

/// The note from the two outputs, in call order.
pub fn judge(outputs: [&str; 2]) -> Note {
    judge_eval::combine(
        judge_eval::parse_verdict(outputs[0]),
        judge_eval::parse_verdict(outputs[1]),
    )
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.4", world: "method" });

    use exports::forge::plugin::solver::Guest;
    use forge::plugin::inference::{self, Message};
    use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};

    struct PairwiseJudge;

    impl Guest for PairwiseJudge {
        fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
            let p = super::Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let (a, b) = super::answers(&example.metadata)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            let mut gp = inference::default_params();
            if let Some(max_tokens) = p.max_tokens {
                gp.max_tokens = max_tokens;
            }
            let mut outputs = Vec::with_capacity(2);
            for turns in super::requests(&p, &example.question, &a, &b) {
                let messages: Vec<Message> = turns
                    .into_iter()
                    .map(|t| Message {
                        role: t.role,
                        content: t.content,
                    })
                    .collect();
                let out = inference::chat(&messages, &gp).map_err(|e| {
                    let why = match e {
                        inference::InferenceError::InvalidParams(m) => {
                            format!("invalid params: {m}")
                        }
                        inference::InferenceError::ContextOverflow(m) => m,
                        inference::InferenceError::Backend(m) => m,
                    };
                    PluginError::Unavailable(format!("inference.chat: {why}"))
                })?;
                outputs.push(out.text);
            }
            let note = super::judge([&outputs[0], &outputs[1]]);
            let mut trace: Vec<Step> = outputs
                .iter()
                .enumerate()
                .map(|(i, text)| Step {
                    kind: StepKind::Thought,
                    content: format!("judge_output_{}: {text}", i + 1),
                })
                .collect();
            trace.push(Step {
                kind: StepKind::Note,
                content: note.note(),
            });
            Ok(Answer {
                text: judge_eval::answer_text(&note).into(),
                trace,
                contexts: vec![],
            })
        }
    }

    export!(PairwiseJudge);
}

#[cfg(test)]
mod tests {
    use super::*;
    use judge_eval::Verdict;

    #[test]
    fn params_defaults_and_errors() {
        let p = Params::parse("").unwrap();
        assert_eq!(p.rubric, "helpful");
        assert_eq!(p.template, judge_eval::DEFAULT_TEMPLATE);
        assert_eq!((p.system, p.max_tokens), (None, None));
        let p = Params::parse(r#"{"rubric":"harmless","system":"Be fair.","max_tokens":8,"template":"{question}|{answer_a}|{answer_b}"}"#).unwrap();
        assert_eq!((p.rubric.as_str(), p.max_tokens), ("harmless", Some(8)));
        let e = Params::parse(r#"{"rubrik":"x"}"#).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = Params::parse(r#"{"template":"{question} {answer_a}"}"#).unwrap_err();
        assert!(e.contains("no {answer_b} placeholder"), "{e}");
        let e = Params::parse(r#"{"template":"{question} {answr_a} {answer_b}"}"#).unwrap_err();
        assert!(e.contains("unknown placeholder {answr_a}"), "{e}");
        assert!(Params::parse(r#"{"max_tokens":0}"#).is_err());
    }

    #[test]
    fn answers_from_the_metadata() {
        assert_eq!(
            answers(r#"{"answer_a":" Paris. ","answer_b":"Lyon","other":1}"#).unwrap(),
            ("Paris.".to_string(), "Lyon".to_string())
        );
        let e = answers(r#"{"answer_a":"x"}"#).unwrap_err();
        assert!(e.contains("no `answer_b`"), "{e}");
        let e = answers(r#"{"answer_a":1,"answer_b":"y"}"#).unwrap_err();
        assert!(e.contains("`answer_a` is not a string"), "{e}");
        assert!(answers("{}").unwrap_err().contains("no `answer_a`"));
        assert!(answers("").is_err());
    }

    #[test]
    fn both_orders_are_asked() {
        let p = Params::parse(
            r#"{"system":"S","template":"{rubric}|{question}|{answer_a}|{answer_b}","rubric":"R"}"#,
        )
        .unwrap();
        let [one, two] = requests(&p, " Q ", "a {answer_b}", "b");
        assert_eq!(one.len(), 2);
        assert_eq!(
            (one[0].role.as_str(), one[0].content.as_str()),
            ("system", "S")
        );
        assert_eq!(one[1].role, "user");
        assert_eq!(one[1].content, "R|Q|a {answer_b}|b");
        assert_eq!(two[1].content, "R|Q|b|a {answer_b}");
        // Without a system message: one user turn, the built-in rubric.
        let [one, _] = requests(&Params::parse("{}").unwrap(), "Q", "x", "y");
        assert_eq!(one.len(), 1);
        assert!(one[0].content.contains(&judge_eval::rubric_text("helpful")));
    }

    #[test]
    fn outputs_map_back_to_the_answers() {
        // Call 2 showed B first: its "A" is answer B.
        let note = judge(["A", "B"]);
        assert_eq!(
            (note.first, note.second),
            (Some(Verdict::A), Some(Verdict::A))
        );
        assert_eq!(judge_eval::answer_text(&note), "A");
        // The same slot twice: position bias, a tie.
        let note = judge(["[[A]]", "Response A is better"]);
        assert_eq!(
            (note.first, note.second),
            (Some(Verdict::A), Some(Verdict::B))
        );
        assert_eq!(judge_eval::answer_text(&note), "tie");
        assert_eq!(note.follows_position(), Some(true));
        let note = judge(["B.", "I think so"]);
        assert_eq!((note.first, note.second), (Some(Verdict::B), None));
        assert_eq!(judge_eval::answer_text(&note), "unparsed");
        assert_eq!(note.note(), r#"judge: {"first":"B","second":null}"#);
    }
}
