//! ReAct: the model alternates Thought / Action, the tool's result comes
//! back as an Observation, until it writes `Answer:`.
//!
//! This module holds the whole loop, independent of WIT: the parser of one
//! model turn ([`parse`]), the repeated-action detector ([`LoopDetector`])
//! and the loop itself ([`run`]) over an [`Env`] that generates and calls
//! tools (the component implements it with the host's imports; tests with a
//! script).
//!
//! Trace conventions (the host computes agent metrics from them): per turn a
//! `thought` (the model's output, verbatim, trimmed); per action an `action`
//! (`{"tool": .., "input": ..}` as JSON) and an `observation` (the tool's
//! output, or `error: ..`); notes `parse_error: <message>` and
//! `tool_error: <message>`; at the end one note `status: answered | stuck |
//! max_iterations | no_action` and the `answer`.

use crate::extract::extract;
use crate::{Kind, Step, Turn};

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub tool: String,
    pub input: String,
}

impl Action {
    /// `{"tool":"calculator","input":"2+2"}`.
    pub fn to_json(&self) -> String {
        let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
        format!(
            "{{\"tool\":{},\"input\":{}}}",
            s(&self.tool),
            s(&self.input)
        )
    }
}

/// What one model turn asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `Answer:` / `Final Answer:` before any action.
    Answer(String),
    /// The first action; `extra` further `Action:` lines were ignored (the
    /// model should wait for the observation after one).
    Action { action: Action, extra: usize },
    /// An `Action:` line that could not be read.
    Malformed(String),
    /// Neither an action nor an answer.
    Nothing,
}

/// Strips list and emphasis decoration from the start of a line.
fn undecorate(line: &str) -> &str {
    line.trim()
        .trim_start_matches(['*', '#', '-', '>', '`', ' '])
}

/// If the line is `label:` (case-insensitive, optionally `Label 2:` as in
/// the ReAct paper) followed by text, that text.
fn labelled<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let l = undecorate(line);
    let head = l.get(..label.len())?;
    if !head.eq_ignore_ascii_case(label) {
        return None;
    }
    let rest = l[label.len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
    let rest = rest.strip_prefix("**").unwrap_or(rest);
    let rest = rest.strip_prefix(':')?;
    Some(rest.strip_prefix("**").unwrap_or(rest).trim())
}

fn answer_label(line: &str) -> Option<&str> {
    labelled(line, "final answer").or_else(|| labelled(line, "answer"))
}

/// Parses one model turn. The first `Action:` or `Answer:` line decides:
/// text after an action is the model running ahead of its observation.
pub fn parse(output: &str) -> Parsed {
    let lines: Vec<&str> = output.lines().collect();
    let mut first: Option<Parsed> = None;
    let mut extra = 0;
    for (i, line) in lines.iter().enumerate() {
        if first.is_none()
            && let Some(rest) = answer_label(line)
        {
            let text = if rest.is_empty() {
                lines[i + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.is_empty())
                    .unwrap_or("")
            } else {
                rest
            };
            return Parsed::Answer(text.to_string());
        }
        if let Some(rest) = labelled(line, "action") {
            if first.is_some() {
                extra += 1;
                continue;
            }
            // The text from this action on (a JSON action may span lines).
            let offset = line_offset(output, &lines, i) + (line.len() - line.trim_start().len());
            let from_here = &output[offset..];
            let after_label = from_here
                .find(':')
                .map(|c| &from_here[c + 1..])
                .unwrap_or("");
            first = Some(
                match parse_action(rest, after_label, lines.get(i + 1).copied()) {
                    Ok(action) => Parsed::Action { action, extra: 0 },
                    Err(m) => Parsed::Malformed(m),
                },
            );
        }
    }
    match first {
        Some(Parsed::Action { action, .. }) => Parsed::Action { action, extra },
        Some(p) => p,
        None => Parsed::Nothing,
    }
}

fn line_offset(text: &str, lines: &[&str], i: usize) -> usize {
    // `lines` are slices of `text`: their pointers give the offset.
    lines[i].as_ptr() as usize - text.as_ptr() as usize
}

/// `rest`: the action line after `Action:`; `after_label`: all the text after
/// `Action:` (for JSON spanning lines); `next`: the following line (for
/// `Action Input:`).
fn parse_action(rest: &str, after_label: &str, next: Option<&str>) -> Result<Action, String> {
    let rest = rest.trim().trim_matches('`').trim();
    if rest.is_empty() {
        return Err("empty action".into());
    }
    if rest.starts_with('{') {
        return parse_json_action(after_label.trim_start().trim_start_matches('`'));
    }
    let name_end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    let (name, tail) = rest.split_at(name_end);
    if name.is_empty() {
        return Err(format!(
            "cannot read action {rest:?}: expected tool[input] or {{\"tool\": ..., \"input\": ...}}"
        ));
    }
    let tail = tail.trim_start();
    if let Some(inner) = tail.strip_prefix('[') {
        let close = matching_close(inner).ok_or_else(|| {
            format!("cannot read action {rest:?}: no closing ']' for the tool input")
        })?;
        let trailing = inner[close + 1..].trim();
        if !trailing.is_empty() && !trailing.starts_with(['.', '`']) {
            return Err(format!(
                "cannot read action {rest:?}: unexpected text after ']': {trailing:?}"
            ));
        }
        return Ok(Action {
            tool: name.to_string(),
            input: inner[..close].trim().to_string(),
        });
    }
    if tail.is_empty()
        && let Some(input) = next.and_then(|l| labelled(l, "action input"))
    {
        return Ok(Action {
            tool: name.to_string(),
            input: input.trim_matches('"').to_string(),
        });
    }
    Err(format!(
        "cannot read action {rest:?}: expected tool[input] or {{\"tool\": ..., \"input\": ...}}"
    ))
}

/// Index of the `]` closing an already-opened `[` in `s`.
fn matching_close(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => return Some(i),
            ']' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

fn parse_json_action(text: &str) -> Result<Action, String> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let v = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("cannot read JSON action: {e}")),
        None => return Err("cannot read JSON action: nothing to read".into()),
    };
    let obj = v
        .as_object()
        .ok_or_else(|| format!("JSON action must be an object, got {v}"))?;
    let tool = ["tool", "name", "action"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(|t| t.as_str()))
        .ok_or_else(|| format!("JSON action has no \"tool\" string: {v}"))?;
    let input = match ["input", "tool_input", "action_input", "args"]
        .iter()
        .find_map(|k| obj.get(*k))
    {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return Err(format!("JSON action has no \"input\": {v}")),
    };
    Ok(Action {
        tool: tool.to_string(),
        input,
    })
}

/// Detects an agent going round in circles: the same action (tool, and
/// input with whitespace collapsed) asked for `limit` times in one episode,
/// in a row or not. [`run`] also feeds it unreadable actions (by their
/// error), so a model repeating the same malformed action is stuck too.
#[derive(Debug)]
pub struct LoopDetector {
    limit: usize,
    seen: Vec<((String, String), usize)>,
}

impl LoopDetector {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            seen: Vec::new(),
        }
    }

    /// Records `a`; true when it has now been asked for `limit` times.
    pub fn record(&mut self, a: &Action) -> bool {
        let key = (
            a.tool.trim().to_lowercase(),
            a.input.split_whitespace().collect::<Vec<_>>().join(" "),
        );
        let n = match self.seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.seen.push((key, 1));
                1
            }
        };
        n >= self.limit
    }
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Answered,
    Stuck,
    MaxIterations,
    NoAction,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Answered => "answered",
            Status::Stuck => "stuck",
            Status::MaxIterations => "max_iterations",
            Status::NoAction => "no_action",
        }
    }
}

/// What the loop needs from its surroundings.
pub trait Env {
    type Error;
    /// The model's next turn given the conversation so far.
    fn generate(&mut self, turns: &[Turn]) -> Result<String, Self::Error>;
    /// Runs a tool; `Err` is the tool's error message.
    fn call_tool(&mut self, tool: &str, input: &str) -> Result<String, String>;
}

/// The loop's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Model turns at most.
    pub max_iterations: u32,
    /// The same action this many times means stuck.
    pub repeat_limit: usize,
    /// The user turn carrying a tool's result; `{observation}`.
    pub observation_template: String,
    /// The user turn after an unreadable action; `{error}`.
    pub parse_error_template: String,
    /// Read a number from the answer (math tasks).
    pub numeric: bool,
}

/// The end of an episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub answer: String,
    pub status: Status,
    pub trace: Vec<Step>,
}

/// Fills the tool list into a ReAct prompt: `{tools}` (one `- name:
/// description` line each), `{tool_names}` (comma-separated), then
/// `{question}` and `{context}`.
pub fn fill_prompt(
    template: &str,
    tools: &[(String, String)],
    question: &str,
    context: Option<&str>,
) -> String {
    let list: Vec<String> = tools
        .iter()
        .map(|(n, d)| format!("- {n}: {}", d.trim()))
        .collect();
    let names: Vec<&str> = tools.iter().map(|(n, _)| n.as_str()).collect();
    crate::fill(
        &template
            .replace("{tools}", &list.join("\n"))
            .replace("{tool_names}", &names.join(", ")),
        question,
        context,
    )
}

/// The conversation as one raw-completion prompt, for models that follow a
/// pattern better than a chat format: the system and first user turns, then
/// each model turn after `cue` (`Thought:`) and each observation on its own
/// line, ending with `cue` so the model continues with its next thought.
pub fn transcript(turns: &[Turn], cue: &str) -> String {
    let mut out = String::new();
    let mut seen_user = false;
    for t in turns {
        if !seen_user || t.role == "system" {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(t.content.trim_end());
            seen_user |= t.role == "user";
        } else if t.role == "assistant" {
            out.push_str(&format!("\n{cue} {}", t.content.trim()));
        } else {
            out.push_str(&format!("\n{}", t.content.trim()));
        }
    }
    out.push_str(&format!("\n{cue}"));
    out
}

/// Runs the loop from `turns` (system and user prompt). A model error ends
/// the episode with that error; tool errors and unreadable actions are
/// recorded and shown to the model, which may recover.
///
/// When the model does not answer, the answer is the best partial one:
/// after `no_action`, what [`extract`] reads from its last turn (it stopped
/// using the format, its text is its answer); after `stuck` or
/// `max_iterations`, the last successful observation, else the extraction
/// from the last turn. A `partial_answer: <source>` note says which.
pub fn run<E: Env>(env: &mut E, mut turns: Vec<Turn>, cfg: &Config) -> Result<Outcome, E::Error> {
    let mut trace = Vec::new();
    let mut loops = LoopDetector::new(cfg.repeat_limit);
    let mut last_observation: Option<String> = None;
    let mut last_output = String::new();
    let mut status = Status::MaxIterations;
    let mut answer = None;
    for _ in 0..cfg.max_iterations {
        let output = env.generate(&turns)?.trim().to_string();
        trace.push(Step::new(Kind::Thought, output.clone()));
        last_output = output.clone();
        turns.push(Turn::assistant(output.clone()));
        match parse(&output) {
            Parsed::Answer(a) => {
                let a = if cfg.numeric { extract(&a, true).0 } else { a };
                answer = Some(a);
                status = Status::Answered;
                break;
            }
            Parsed::Nothing => {
                status = Status::NoAction;
                break;
            }
            Parsed::Malformed(m) => {
                trace.push(Step::note(format!("parse_error: {m}")));
                // The same unreadable action again and again is stuck too.
                let unreadable = Action {
                    tool: String::new(),
                    input: m.clone(),
                };
                if loops.record(&unreadable) {
                    status = Status::Stuck;
                    break;
                }
                turns.push(Turn::user(cfg.parse_error_template.replace("{error}", &m)));
            }
            Parsed::Action { action, extra } => {
                trace.push(Step::new(Kind::Action, action.to_json()));
                if extra > 0 {
                    trace.push(Step::note(format!(
                        "ignored_actions: {extra} after the first"
                    )));
                }
                if loops.record(&action) {
                    status = Status::Stuck;
                    break;
                }
                let observation = match env.call_tool(&action.tool, &action.input) {
                    Ok(out) => {
                        last_observation = Some(out.clone());
                        out
                    }
                    Err(e) => {
                        trace.push(Step::note(format!("tool_error: {e}")));
                        format!("error: {e}")
                    }
                };
                trace.push(Step::new(Kind::Observation, observation.clone()));
                turns.push(Turn::user(
                    cfg.observation_template
                        .replace("{observation}", &observation),
                ));
            }
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => {
            let from_output = || extract(&last_output, cfg.numeric);
            let (a, source) = match (&last_observation, status) {
                (Some(o), Status::Stuck | Status::MaxIterations) => {
                    (o.clone(), "last_observation".to_string())
                }
                _ => {
                    let (a, rule) = from_output();
                    (a, format!("extraction {}", rule.name()))
                }
            };
            trace.push(Step::note(format!("partial_answer: {source}")));
            a
        }
    };
    trace.push(Step::note(format!("status: {}", status.name())));
    trace.push(Step::new(Kind::Answer, answer.clone()));
    Ok(Outcome {
        answer,
        status,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(tool: &str, input: &str) -> Parsed {
        Parsed::Action {
            action: Action {
                tool: tool.into(),
                input: input.into(),
            },
            extra: 0,
        }
    }

    #[test]
    fn bracket_actions_parse() {
        assert_eq!(
            parse("Thought: I need to add.\nAction: calculator[2 + 2]"),
            act("calculator", "2 + 2")
        );
        assert_eq!(
            parse("Thought 1: nested\nAction 1: calculator[max(1, [2][0]) * 3]"),
            act("calculator", "max(1, [2][0]) * 3")
        );
        assert_eq!(
            parse("**Action:** `calculator[(3+4)*2]`"),
            act("calculator", "(3+4)*2")
        );
        assert_eq!(
            parse("action: Search[Eiffel Tower]."),
            act("Search", "Eiffel Tower")
        );
    }

    #[test]
    fn json_actions_parse_even_across_lines() {
        assert_eq!(
            parse(r#"Action: {"tool": "calculator", "input": "2+2"}"#),
            act("calculator", "2+2")
        );
        assert_eq!(
            parse("Thought: t\nAction: {\n  \"tool\": \"calculator\",\n  \"input\": \"6*7\"\n}\n"),
            act("calculator", "6*7")
        );
        assert_eq!(
            parse(r#"Action: {"name": "calculator", "input": 12}"#),
            act("calculator", "12")
        );
    }

    #[test]
    fn action_input_on_the_next_line_parses() {
        assert_eq!(
            parse("Action: calculator\nAction Input: 5*5"),
            act("calculator", "5*5")
        );
    }

    #[test]
    fn malformed_actions_are_reported() {
        let bad = |s: &str| match parse(s) {
            Parsed::Malformed(m) => m,
            other => panic!("{s:?} parsed as {other:?}"),
        };
        assert!(bad("Action: calculator[2 + 2").contains("no closing ']'"));
        assert!(bad("Action: use the calculator please").contains("expected tool[input]"));
        assert!(bad("Action:").contains("empty action"));
        assert!(bad(r#"Action: {"tool": "calculator", "input": "#).contains("JSON"));
        assert!(bad(r#"Action: {"input": "2"}"#).contains("no \"tool\""));
        assert!(bad(r#"Action: {"tool": "calculator"}"#).contains("no \"input\""));
        assert!(bad("Action: calculator[2] and then more").contains("after ']'"));
        // "Action Input:" alone is not an action.
        assert_eq!(parse("Action Input: 3"), Parsed::Nothing);
    }

    #[test]
    fn answers_are_detected_unless_an_action_came_first() {
        assert_eq!(
            parse("Thought: done.\nAnswer: 42"),
            Parsed::Answer("42".into())
        );
        assert_eq!(
            parse("Final Answer: Paris\nmore"),
            Parsed::Answer("Paris".into())
        );
        assert_eq!(
            parse("**Answer:**\n\n 7 apples"),
            Parsed::Answer("7 apples".into())
        );
        assert_eq!(
            parse("Action: calculator[1+1]\nAnswer: 2"),
            act("calculator", "1+1"),
            "an answer after an action is invented before the observation"
        );
        assert_eq!(parse("The answer is 4."), Parsed::Nothing);
        assert_eq!(parse(""), Parsed::Nothing);
    }

    #[test]
    fn several_actions_in_one_turn_keep_the_first() {
        assert_eq!(
            parse("Action: calculator[1+1]\nAction: calculator[2+2]\nAction: x[y]"),
            Parsed::Action {
                action: Action {
                    tool: "calculator".into(),
                    input: "1+1".into()
                },
                extra: 2
            }
        );
    }

    #[test]
    fn the_same_action_three_times_is_a_loop() {
        let a = Action {
            tool: "calculator".into(),
            input: "2 + 2".into(),
        };
        let b = Action {
            tool: "calculator".into(),
            input: "3".into(),
        };
        let spaced = Action {
            tool: "Calculator".into(),
            input: " 2  + 2 ".into(),
        };
        let mut d = LoopDetector::new(3);
        assert!(!d.record(&a));
        assert!(!d.record(&b));
        assert!(!d.record(&spaced));
        assert!(d.record(&a), "third time, not in a row, still a loop");
        let mut d = LoopDetector::new(3);
        assert!(!d.record(&a) && !d.record(&b) && !d.record(&b.clone()));
    }

    #[test]
    fn prompts_list_the_tools() {
        let tools = vec![
            ("calculator".to_string(), "does sums ".to_string()),
            ("search".to_string(), "finds".to_string()),
        ];
        assert_eq!(
            fill_prompt(
                "{tools}\nUse {tool_names}.\nQ: {question}",
                &tools,
                "why",
                None
            ),
            "- calculator: does sums\n- search: finds\nUse calculator, search.\nQ: why"
        );
    }

    #[test]
    fn transcripts_continue_after_the_cue() {
        let turns = vec![
            Turn::system("Be brief."),
            Turn::user("Tools: calc\nQuestion: 2+2?\n"),
            Turn::assistant(" I add.\nAction: calc[2+2]"),
            Turn::user("Observation: 4"),
        ];
        assert_eq!(
            transcript(&turns, "Thought:"),
            "Be brief.\n\nTools: calc\nQuestion: 2+2?\nThought: I add.\nAction: calc[2+2]\nObservation: 4\nThought:"
        );
        assert_eq!(
            transcript(&turns[1..2], "Thought:"),
            "Tools: calc\nQuestion: 2+2?\nThought:"
        );
    }

    /// A scripted model and tool.
    struct Script {
        outputs: Vec<&'static str>,
        seen: Vec<Vec<Turn>>,
        tool_calls: Vec<(String, String)>,
    }

    impl Env for Script {
        type Error = String;
        fn generate(&mut self, turns: &[Turn]) -> Result<String, String> {
            self.seen.push(turns.to_vec());
            if self.outputs.is_empty() {
                return Err("script exhausted".into());
            }
            Ok(self.outputs.remove(0).to_string())
        }
        fn call_tool(&mut self, tool: &str, input: &str) -> Result<String, String> {
            self.tool_calls.push((tool.into(), input.into()));
            match (tool, input) {
                ("calculator", "2+2") => Ok("4".into()),
                ("calculator", "4*3") => Ok("12".into()),
                ("calculator", _) => Err("syntax error".into()),
                (t, _) => Err(format!("no tool named {t:?}")),
            }
        }
    }

    fn script(outputs: &[&'static str]) -> Script {
        Script {
            outputs: outputs.to_vec(),
            seen: vec![],
            tool_calls: vec![],
        }
    }

    fn cfg() -> Config {
        Config {
            max_iterations: 5,
            repeat_limit: 3,
            observation_template: "Observation: {observation}".into(),
            parse_error_template: "Observation: {error}".into(),
            numeric: true,
        }
    }

    fn contents(o: &Outcome) -> Vec<String> {
        o.trace
            .iter()
            .map(|s| format!("{:?} {}", s.kind, s.content))
            .collect()
    }

    #[test]
    fn an_episode_acts_observes_and_answers() {
        let mut env = script(&[
            "Thought: add first\nAction: calculator[2+2]",
            "Action: {\"tool\": \"calculator\", \"input\": \"4*3\"}",
            "Thought: done\nAnswer: 12 eggs",
        ]);
        let o = run(&mut env, vec![Turn::user("Q")], &cfg()).unwrap();
        assert_eq!((o.answer.as_str(), o.status), ("12", Status::Answered));
        assert_eq!(
            contents(&o),
            [
                "Thought Thought: add first\nAction: calculator[2+2]",
                r#"Action {"tool":"calculator","input":"2+2"}"#,
                "Observation 4",
                "Thought Action: {\"tool\": \"calculator\", \"input\": \"4*3\"}",
                r#"Action {"tool":"calculator","input":"4*3"}"#,
                "Observation 12",
                "Thought Thought: done\nAnswer: 12 eggs",
                "Note status: answered",
                "Answer 12",
            ]
        );
        // The observation went back to the model as a user turn.
        let last = env.seen.last().unwrap();
        let roles: Vec<&str> = last.iter().map(|t| t.role).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
        assert_eq!(last[2].content, "Observation: 4");
        assert_eq!(last[4].content, "Observation: 12");
    }

    #[test]
    fn tool_errors_and_parse_errors_are_recorded_and_fed_back() {
        let mut env = script(&[
            "Action: calculator[2+]",
            "Action: calculator(2+2)",
            "Action: abacus[1]",
            "Answer: 3",
        ]);
        let o = run(&mut env, vec![Turn::user("Q")], &cfg()).unwrap();
        assert_eq!(o.status, Status::Answered);
        let c = contents(&o);
        assert!(
            c.contains(&"Note tool_error: syntax error".to_string()),
            "{c:?}"
        );
        assert!(
            c.contains(&"Observation error: syntax error".to_string()),
            "{c:?}"
        );
        assert!(
            c.iter()
                .any(|s| s.starts_with("Note parse_error: cannot read action")),
            "{c:?}"
        );
        assert!(
            c.contains(&"Note tool_error: no tool named \"abacus\"".to_string()),
            "{c:?}"
        );
        assert_eq!(
            env.tool_calls.len(),
            2,
            "no tool call for the unreadable action"
        );
        assert!(
            env.seen[2][4]
                .content
                .starts_with("Observation: cannot read action")
        );
    }

    #[test]
    fn a_repeated_action_stops_as_stuck_with_the_last_observation() {
        let mut env = script(&[
            "Action: calculator[2+2]",
            "Action: calculator[2+2]",
            "Action: calculator[ 2+2 ]",
            "never asked",
        ]);
        let o = run(&mut env, vec![Turn::user("Q")], &cfg()).unwrap();
        assert_eq!((o.status, o.answer.as_str()), (Status::Stuck, "4"));
        assert_eq!(env.tool_calls.len(), 2, "the third repeat is not run");
        let c = contents(&o);
        assert_eq!(
            &c[c.len() - 3..],
            [
                "Note partial_answer: last_observation",
                "Note status: stuck",
                "Answer 4"
            ]
        );
    }

    #[test]
    fn the_same_unreadable_action_three_times_is_stuck_too() {
        let mut env = script(&[
            "Action: 2 + 2 = 4",
            "Action: 2 + 2 = 4",
            "Action: 2 + 2 = 4",
            "never asked",
        ]);
        let o = run(&mut env, vec![Turn::user("Q")], &cfg()).unwrap();
        assert_eq!((o.status, o.answer.as_str()), (Status::Stuck, "4"));
        assert_eq!(env.seen.len(), 3);
        let c = contents(&o);
        assert_eq!(
            c.iter()
                .filter(|s| s.starts_with("Note parse_error:"))
                .count(),
            3
        );
        assert!(c.contains(&"Note partial_answer: extraction last_number".to_string()));
    }

    #[test]
    fn max_iterations_and_no_action_end_with_a_partial_answer() {
        let mut env = script(&["Action: calculator[2+2]", "Action: calculator[4*3]"]);
        let c = Config {
            max_iterations: 2,
            ..cfg()
        };
        let o = run(&mut env, vec![Turn::user("Q")], &c).unwrap();
        assert_eq!((o.status, o.answer.as_str()), (Status::MaxIterations, "12"));
        assert_eq!(o.trace[o.trace.len() - 2].content, "status: max_iterations");

        let mut env = script(&["Thought: 3 boxes of 5 is 15 in total."]);
        let o = run(&mut env, vec![Turn::user("Q")], &cfg()).unwrap();
        assert_eq!((o.status, o.answer.as_str()), (Status::NoAction, "15"));
        let c = contents(&o);
        assert!(c.contains(&"Note partial_answer: extraction last_number".to_string()));
        assert!(c.contains(&"Note status: no_action".to_string()));

        // A model failure is the episode's failure.
        let mut env = script(&[]);
        assert_eq!(
            run(&mut env, vec![Turn::user("Q")], &cfg()),
            Err("script exhausted".to_string())
        );
    }
}
