//! `rag`: retrieve passages from one of the host's indexes, put them in the
//! prompt, answer. The passages used are the answer's `contexts`; every
//! passage retrieved is recorded in a `retrieved: [{"id":..,"score":..}]`
//! trace note, so retrieval metrics can judge them by id.
//!
//! Params (JSON; `index` required):
//! - `index`: the host index to search (`[[indexes]] name`).
//! - `k`: passages put in the prompt (default 3). 0 = closed book: no
//!   retrieval call, the prompt is `closed_template`.
//! - `retrieve_k`: passages retrieved and recorded (default `k`, at least
//!   `k`): retrieve 10, prompt with 3, and recall@10 is still measured.
//! - `query_template`: the search query; `{question}` (default `{question}`).
//! - `template`: the prompt; `{context}` and `{question}` (default
//!   `Context:\n{context}\n\nQuestion: {question}\nAnswer:`).
//! - `closed_template`: the prompt when `k = 0` (default `Question: {question}\nAnswer:`).
//! - `passage_template`: one passage in `{context}`; `{n}` (rank from 1),
//!   `{title}` (the id when the passage has none), `{text}`, `{id}`
//!   (default `[{n}] {title}: {text}`); `separator` between passages
//!   (default a blank line).
//! - `max_context_chars`: the whole `{context}` stays within this many
//!   characters (default 6000): passages are kept whole in rank order, the
//!   first that does not fit is cut, the rest dropped (a
//!   `context_truncated: ...` note says so).
//! - `retrieve_only`: retrieve and record, skip generation (answer text
//!   empty): for fast retrieval ablations (default false).
//! - `system`, `chat` (default true), `first_line` (default false) as in
//!   `naive`; `max_tokens`, `temperature`, `top_p`, `stop` override the
//!   experiment's generation parameters.
//!
//! Logic here is plain Rust, unit-tested natively; the component glue is
//! compiled only for wasm32.

use rag_eval::note::Retrieved;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub index: String,
    #[serde(default = "default_k")]
    pub k: u32,
    pub retrieve_k: Option<u32>,
    #[serde(default = "default_query_template")]
    pub query_template: String,
    #[serde(default = "default_template")]
    pub template: String,
    #[serde(default = "default_closed_template")]
    pub closed_template: String,
    #[serde(default = "default_passage_template")]
    pub passage_template: String,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_max_context_chars")]
    pub max_context_chars: usize,
    #[serde(default)]
    pub retrieve_only: bool,
    pub system: Option<String>,
    #[serde(default = "yes")]
    pub chat: bool,
    #[serde(default)]
    pub first_line: bool,
}

fn default_k() -> u32 {
    3
}
fn default_query_template() -> String {
    "{question}".into()
}
fn default_template() -> String {
    "Context:\n{context}\n\nQuestion: {question}\nAnswer:".into()
}
fn default_closed_template() -> String {
    "Question: {question}\nAnswer:".into()
}
fn default_passage_template() -> String {
    "[{n}] {title}: {text}".into()
}
fn default_separator() -> String {
    "\n\n".into()
}
fn default_max_context_chars() -> usize {
    6000
}
fn yes() -> bool {
    true
}

/// The host's search returns at most this many.
pub const MAX_K: u32 = 100;

impl Params {
    /// Parses and checks the params; errors start with `rag params:`.
    pub fn parse(json: &str) -> Result<(Self, method_kit::Overrides), String> {
        let (p, o): (Params, _) = method_kit::parse_params(json, "rag")?;
        let bad = |m: String| Err(format!("rag params: {m}"));
        if p.index.trim().is_empty() {
            return bad("index must name a host index ([[indexes]] name)".into());
        }
        if p.k > MAX_K {
            return bad(format!("k = {} is over the host's limit of {MAX_K}", p.k));
        }
        if let Some(r) = p.retrieve_k
            && (r < p.k || r > MAX_K)
        {
            return bad(format!(
                "retrieve_k = {r} must be between k = {} and {MAX_K}",
                p.k
            ));
        }
        if !p.template.contains("{context}") {
            return bad("template has no {context} placeholder for the passages".into());
        }
        if p.max_context_chars == 0 {
            return bad("max_context_chars must be at least 1".into());
        }
        Ok((p, o))
    }

    /// How many passages to ask the index for (0 when closed book).
    pub fn retrieve_k(&self) -> u32 {
        if self.k == 0 {
            0
        } else {
            self.retrieve_k.unwrap_or(self.k)
        }
    }
}

pub use rag_eval::fill;

/// A retrieved passage (the WIT `passage`, as plain Rust).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: String,
    pub title: Option<String>,
    pub text: String,
    pub score: f64,
}

/// The `{context}` of the prompt and the passage texts it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    pub text: String,
    /// The passage texts as used (a cut passage is cut), rank order.
    pub passages: Vec<String>,
    /// `context_truncated: ...` when `max_context_chars` cut or dropped any.
    pub truncated: Option<String>,
}

/// Renders the first `k` hits with the passage template within
/// `max_context_chars` characters.
pub fn build_context(hits: &[Hit], p: &Params) -> Context {
    let wanted = &hits[..hits.len().min(p.k as usize)];
    let max = p.max_context_chars;
    let sep_len = p.separator.chars().count();
    let mut text = String::new();
    let mut used = 0usize;
    let mut passages = Vec::new();
    let mut truncated = None;
    for (i, h) in wanted.iter().enumerate() {
        let n = (i + 1).to_string();
        let title = h.title.as_deref().unwrap_or(&h.id);
        let render = |t: &str| {
            fill(
                &p.passage_template,
                &[("n", &n), ("title", title), ("text", t), ("id", &h.id)],
            )
        };
        let block = render(&h.text);
        let sep = if i == 0 { 0 } else { sep_len };
        let len = block.chars().count();
        if used + sep + len <= max {
            if i > 0 {
                text.push_str(&p.separator);
            }
            text.push_str(&block);
            used += sep + len;
            passages.push(h.text.clone());
            continue;
        }
        // Cut this passage's text so its block fills what is left.
        let overhead = len - h.text.chars().count();
        let room = max.saturating_sub(used + sep + overhead);
        let mut note = format!(
            "context_truncated: max_context_chars = {max}; kept {} of {} passages whole",
            i,
            wanted.len()
        );
        if room > 0 {
            let cut: String = h.text.chars().take(room).collect();
            if i > 0 {
                text.push_str(&p.separator);
            }
            text.push_str(&render(&cut));
            note.push_str(&format!(
                ", passage {} cut to {room} of {} chars",
                i + 1,
                h.text.chars().count()
            ));
            passages.push(cut);
        }
        truncated = Some(note);
        break;
    }
    Context {
        text,
        passages,
        truncated,
    }
}

/// The `retrieved: [...]` note for `hits`.
pub fn retrieved_note(hits: &[Hit]) -> String {
    let r: Vec<Retrieved> = hits
        .iter()
        .map(|h| Retrieved {
            id: h.id.clone(),
            score: h.score,
            title: h.title.clone(),
        })
        .collect();
    rag_eval::note::format(&r)
}

/// The answer text from the model's output.
pub fn answer_text(output: &str, first_line: bool) -> String {
    let t = output.trim();
    if first_line {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    } else {
        t.to_string()
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.1", world: "method" });

    use super::{Hit, Params};
    use exports::forge::plugin::solver::Guest;
    use forge::plugin::inference::{self, Message};
    use forge::plugin::retrieval::{self, RetrievalError};
    use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};

    struct Rag;

    fn note(content: String) -> Step {
        Step {
            kind: StepKind::Note,
            content,
        }
    }

    impl Guest for Rag {
        fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
            let (p, overrides) = Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let q = example.question.as_str();
            let mut trace = Vec::new();
            let (prompt, contexts) = if p.k == 0 {
                trace.push(note("closed_book: k = 0, no retrieval".into()));
                (
                    super::fill(&p.closed_template, &[("question", q)]),
                    Vec::new(),
                )
            } else {
                let query = super::fill(&p.query_template, &[("question", q)]);
                trace.push(note(format!("query: {query}")));
                let hits: Vec<Hit> = retrieval::search(&p.index, &query, p.retrieve_k())
                    .map_err(|e| match e {
                        RetrievalError::UnknownIndex(m) => PluginError::Unavailable(format!(
                            "rag: retrieval from index {:?} failed: unknown index: {m}",
                            p.index
                        )),
                        RetrievalError::Failed(m) => PluginError::Failed(format!(
                            "rag: retrieval from index {:?} failed: {m}",
                            p.index
                        )),
                    })?
                    .into_iter()
                    .map(|h| Hit {
                        id: h.id,
                        title: h.title,
                        text: h.text,
                        score: h.score,
                    })
                    .collect();
                trace.push(note(super::retrieved_note(&hits)));
                let ctx = super::build_context(&hits, &p);
                if let Some(t) = ctx.truncated {
                    trace.push(note(t));
                }
                let prompt = super::fill(&p.template, &[("question", q), ("context", &ctx.text)]);
                (prompt, ctx.passages)
            };
            if p.retrieve_only {
                trace.push(note("retrieve_only: generation skipped".into()));
                return Ok(Answer {
                    text: String::new(),
                    trace,
                    contexts,
                });
            }
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
            trace.push(Step {
                kind: StepKind::Answer,
                content: out.text.clone(),
            });
            Ok(Answer {
                text: super::answer_text(&out.text, p.first_line),
                trace,
                contexts,
            })
        }
    }

    export!(Rag);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap().0
    }

    fn hit(id: &str, title: Option<&str>, text: &str, score: f64) -> Hit {
        Hit {
            id: id.into(),
            title: title.map(Into::into),
            text: text.into(),
            score,
        }
    }

    #[test]
    fn params_have_defaults_and_clear_errors() {
        let (p, o) = Params::parse(r#"{"index":"squad","max_tokens":16}"#).unwrap();
        assert_eq!(
            (p.k, p.retrieve_k(), p.chat, p.retrieve_only),
            (3, 3, true, false)
        );
        assert_eq!(o.max_tokens, Some(16));
        assert_eq!(
            params(r#"{"index":"s","k":3,"retrieve_k":10}"#).retrieve_k(),
            10
        );
        assert_eq!(
            params(r#"{"index":"s","k":0,"retrieve_k":10}"#).retrieve_k(),
            0
        );
        let e = |j: &str| Params::parse(j).unwrap_err();
        assert!(e("{}").contains("missing field `index`"), "{}", e("{}"));
        assert!(e(r#"{"index":"s","kk":1}"#).contains("unknown field `kk`"));
        assert!(e(r#"{"index":" "}"#).contains("index must name"));
        assert!(e(r#"{"index":"s","k":5,"retrieve_k":3}"#).contains("retrieve_k = 3"));
        assert!(e(r#"{"index":"s","k":101}"#).contains("limit of 100"));
        assert!(e(r#"{"index":"s","template":"Q: {question}"}"#).contains("no {context}"));
        assert!(e(r#"{"index":"s","max_context_chars":0}"#).starts_with("rag params:"));
    }

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(
            fill(
                "C: {context} Q: {question} {other}",
                &[("question", "q {context}"), ("context", "c {question}")]
            ),
            "C: c {question} Q: q {context} {other}"
        );
        assert_eq!(fill("{", &[]), "{");
        assert_eq!(fill("a}{b", &[("b", "x")]), "a}{b");
    }

    #[test]
    fn passages_are_numbered_in_rank_order() {
        let p = params(r#"{"index":"s","k":2}"#);
        let hits = [
            hit("d1", Some("Paris"), "Paris is in France.", 3.0),
            hit("d2#0", None, "Lyon too.", 2.0),
            hit("d3", Some("Nice"), "Nice as well.", 1.0),
        ];
        let c = build_context(&hits, &p);
        assert_eq!(
            c.text,
            "[1] Paris: Paris is in France.\n\n[2] d2#0: Lyon too."
        );
        assert_eq!(c.passages, ["Paris is in France.", "Lyon too."]);
        assert_eq!(c.truncated, None);
        let p = params(r#"{"index":"s","passage_template":"{text}","separator":" | "}"#);
        assert_eq!(
            build_context(&hits, &p).text,
            "Paris is in France. | Lyon too. | Nice as well."
        );
        assert_eq!(
            retrieved_note(&hits[..2]),
            r#"retrieved: [{"id":"d1","score":3.0,"title":"Paris"},{"id":"d2#0","score":2.0}]"#
        );
    }

    #[test]
    fn the_context_guard_cuts_then_drops() {
        let hits = [
            hit("a", None, "0123456789", 1.0),
            hit("b", None, "abcdefghij", 1.0),
            hit("c", None, "ABCDEFGHIJ", 1.0),
        ];
        // "{text}" blocks of 10 + separator "\n\n": 10 + 2 + 5 = 17 chars allowed.
        let p = params(r#"{"index":"s","passage_template":"{text}","max_context_chars":17}"#);
        let c = build_context(&hits, &p);
        assert_eq!(c.text, "0123456789\n\nabcde");
        assert_eq!(c.text.chars().count(), 17);
        assert_eq!(c.passages, ["0123456789", "abcde"]);
        assert_eq!(
            c.truncated.as_deref(),
            Some(
                "context_truncated: max_context_chars = 17; kept 1 of 3 passages whole, passage 2 cut to 5 of 10 chars"
            )
        );
        // No room left for the second passage at all: it is dropped.
        let p = params(r#"{"index":"s","passage_template":"{text}","max_context_chars":12}"#);
        let c = build_context(&hits, &p);
        assert_eq!((c.text.as_str(), c.passages.len()), ("0123456789", 1));
        assert!(c.truncated.unwrap().ends_with("kept 1 of 3 passages whole"));
    }

    #[test]
    fn first_line_keeps_the_first_non_empty_line() {
        assert_eq!(answer_text("\n  Paris \nmore", true), "Paris");
        assert_eq!(answer_text("\n  Paris \nmore", false), "Paris \nmore");
    }
}
