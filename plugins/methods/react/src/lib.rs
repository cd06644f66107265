//! `react`: a ReAct agent. The model writes `Thought:` and `Action:
//! tool[input]` (or `Action: {"tool": .., "input": ..}`); the tool runs
//! through the host (`tools.call`) and its result comes back as
//! `Observation: ..` (the next line of the transcript, or the next user turn
//! in chat mode); the episode ends at `Answer:` /
//! `Final Answer:`, after `max_iterations` turns, or when the same action is
//! asked for `repeat_limit` times (stuck). The loop, the parser and the
//! trace conventions are `method_kit::react`; this is the glue to the host.
//!
//! Params (JSON, all optional):
//! - `template`: the first user message; `{tools}` (a `- name: description`
//!   line per granted tool), `{tool_names}`, `{question}` and `{context}`
//!   are filled in. The default explains the format with two worked
//!   calculator episodes (write your own for other tools).
//! - `system`: a system message (default: the model template's own).
//! - `observation_template`: the user turn carrying a tool's result,
//!   `{observation}`. Default `Observation: {observation}`.
//! - `parse_error_template`: the user turn after an unreadable action,
//!   `{error}`.
//! - `chat`: false (default) sends the episode as one raw-completion
//!   transcript ending in `cue` (the ReAct paper's form, which the small
//!   default model continues far more reliably: in chat form it ignored the
//!   format); true sends chat turns (observations as user turns) rendered
//!   with the model's chat template.
//! - `cue`: what each model turn continues in raw mode (default `Thought:`).
//! - `max_iterations` (default 5), `repeat_limit` (default 3).
//! - `numeric`: read a number from the final answer (math tasks).
//! - `max_tokens` (per turn; default the experiment's, at least 128),
//!   `temperature`, `top_p`, `stop` (default the experiment's plus
//!   `Observation:`, so the model cannot invent a tool's result, and in raw
//!   mode `\nQuestion:`; a `stop` given here replaces the list).
//!
//! Trace (see `method_kit::react`): per model turn a `thought` (its output,
//! verbatim); per action an `action` (`{"tool":..,"input":..}`) and an
//! `observation`; notes `parse_error: ..`, `tool_error: ..`,
//! `ignored_actions: ..`, `partial_answer: ..`; one `status: answered |
//! stuck | max_iterations | no_action`; the `answer` last.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::inference::{self, GenerateParams, Message};
use forge::plugin::tools::{self, ToolError};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};
use method_kit::react::{self, Config};
use method_kit::{Kind, Turn};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_template")]
    template: String,
    system: Option<String>,
    #[serde(default = "default_observation_template")]
    observation_template: String,
    #[serde(default = "default_parse_error_template")]
    parse_error_template: String,
    #[serde(default)]
    chat: bool,
    #[serde(default = "default_cue")]
    cue: String,
    #[serde(default = "default_max_iterations")]
    max_iterations: u32,
    #[serde(default = "default_repeat_limit")]
    repeat_limit: usize,
    #[serde(default)]
    numeric: bool,
}

fn default_template() -> String {
    "Answer the question with the help of these tools:\n{tools}\n\n\
     Write a Thought, then an Action that calls one tool as tool_name[input]. \
     The tool's result comes back as an Observation. Repeat until you know the answer, \
     then write Answer: followed by the final answer.\n\n\
     Question: A box holds 4 rows of 6 eggs and 5 of the eggs break. How many eggs are left?\n\
     Thought: The box holds 4 * 6 eggs, minus the 5 broken ones.\n\
     Action: calculator[4 * 6 - 5]\n\
     Observation: 19\n\
     Thought: 19 eggs are left.\n\
     Answer: 19\n\n\
     Question: Ann reads 12 pages a day for 3 days, then 20 more pages. How many pages has she read?\n\
     Thought: She read 12 * 3 pages, then 20 more.\n\
     Action: calculator[12 * 3 + 20]\n\
     Observation: 56\n\
     Thought: She has read 56 pages.\n\
     Answer: 56\n\n\
     Question: {question}"
        .into()
}

fn default_observation_template() -> String {
    "Observation: {observation}".into()
}

fn default_parse_error_template() -> String {
    "Observation: {error}. Write one action as Action: tool_name[input], or the final answer as \
     Answer: <answer>."
        .into()
}

fn default_cue() -> String {
    "Thought:".into()
}

fn default_max_iterations() -> u32 {
    5
}

fn default_repeat_limit() -> usize {
    3
}

/// The host's model and tools.
struct Host {
    params: GenerateParams,
    /// `None`: chat turns; `Some(cue)`: one raw transcript ending in `cue`.
    raw_cue: Option<String>,
}

impl react::Env for Host {
    type Error = PluginError;

    fn generate(&mut self, turns: &[Turn]) -> Result<String, PluginError> {
        if let Some(cue) = &self.raw_cue {
            return inference::complete(&react::transcript(turns, cue), &self.params)
                .map(|g| g.text)
                .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")));
        }
        let messages: Vec<Message> = turns
            .iter()
            .map(|t| Message {
                role: t.role.into(),
                content: t.content.clone(),
            })
            .collect();
        inference::chat(&messages, &self.params)
            .map(|g| g.text)
            .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))
    }

    fn call_tool(&mut self, tool: &str, input: &str) -> Result<String, String> {
        tools::call(tool, input).map_err(|e| match e {
            ToolError::UnknownTool(m) => format!("unknown tool: {m}"),
            ToolError::Failed(m) => m,
            ToolError::Crashed(m) => format!("tool crashed: {m}"),
        })
    }
}

struct React;

impl Guest for React {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let (p, overrides): (Params, _) =
            method_kit::parse_params(&params, "react").map_err(PluginError::InvalidInput)?;
        if p.max_iterations == 0 {
            return Err(PluginError::InvalidInput(
                "react params: max_iterations must be at least 1".into(),
            ));
        }
        let available: Vec<(String, String)> = tools::available()
            .into_iter()
            .map(|t| (t.name, t.description))
            .collect();
        if available.is_empty() {
            return Err(PluginError::Unavailable(
                "react: no tools granted; add one to the config, e.g. [[tools]] plugin = \"calculator\""
                    .into(),
            ));
        }
        let mut gp = inference::default_params();
        gp.max_tokens = gp.max_tokens.max(128);
        for stop in ["Observation:", "\nQuestion:"] {
            // In chat mode a new question is not a risk; in raw mode the
            // model may start one after its answer.
            if (p.chat && stop.starts_with('\n')) || gp.stop.iter().any(|s| s == stop) {
                continue;
            }
            gp.stop.push(stop.into());
        }
        overrides.apply(
            &mut gp.max_tokens,
            &mut gp.temperature,
            &mut gp.top_p,
            &mut gp.stop,
        );

        let mut turns = Vec::new();
        if let Some(system) = p.system {
            turns.push(Turn::system(system));
        }
        turns.push(Turn::user(react::fill_prompt(
            &p.template,
            &available,
            &example.question,
            example.context.as_deref(),
        )));
        let cfg = Config {
            max_iterations: p.max_iterations,
            repeat_limit: p.repeat_limit,
            observation_template: p.observation_template,
            parse_error_template: p.parse_error_template,
            numeric: p.numeric,
        };
        let outcome = react::run(
            &mut Host {
                params: gp,
                raw_cue: (!p.chat).then_some(p.cue),
            },
            turns,
            &cfg,
        )?;
        Ok(Answer {
            text: outcome.answer,
            trace: outcome
                .trace
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

export!(React);
