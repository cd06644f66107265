//! `passage_search`: the `k` best passages of one of the experiment's
//! retrieval indexes (`[[indexes]]`: BM25, dense, hybrid, reranked) for a
//! query, so an agent can search a document collection as one of its tools.
//! Configs usually grant it as `retrieval`:
//!
//! ```toml
//! [[tools]]
//! plugin = "passage_search"
//! name = "retrieval"
//! params = { index = "wiki", k = 3 }
//! ```
//!
//! Params: `index` (required: the `[[indexes]]` name), `k` (passages per
//! call, default 3, at most 20), `max_chars` (each passage cut to this many
//! characters, default 600).
//!
//! Input: a query, or a JSON object `{"query": "...", "k": 5}` when the
//! agent wants another `k` (at most 20). Output: the passages, best first,
//! as `[1] Title (id): text` blocks separated by blank lines. An unknown
//! index, no match, bad params or an empty query come back as plugin
//! errors saying which. The logic is plain Rust, unit-tested natively; the
//! component glue is compiled only for wasm32.

use serde::Deserialize;

/// The most passages one call may ask for.
pub const MAX_K: u32 = 20;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub index: String,
    #[serde(default = "default_k")]
    pub k: u32,
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn default_k() -> u32 {
    3
}
fn default_max_chars() -> usize {
    600
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let p: Params = serde_json::from_str(json).map_err(|e| format!("params: {e}"))?;
        if p.index.trim().is_empty() {
            return Err("params: index must name one of the config's [[indexes]]".into());
        }
        if p.k == 0 || p.k > MAX_K {
            return Err(format!("params: k must be 1..={MAX_K}, got {}", p.k));
        }
        if p.max_chars < 20 {
            return Err("params: max_chars must be at least 20".into());
        }
        Ok(p)
    }
}

/// What one call asks: the query and how many passages.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub text: String,
    pub k: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonQuery {
    query: String,
    k: Option<u32>,
}

/// A plain query, or `{"query": ..., "k": ...}`; `k` defaults to the params'.
pub fn parse_input(input: &str, default_k: u32) -> Result<Query, String> {
    let input = input.trim();
    let (text, k) = if input.starts_with('{') {
        let q: JsonQuery = serde_json::from_str(input).map_err(|e| {
            format!("input: {e} (expected a query, or {{\"query\": \"...\", \"k\": 3}})")
        })?;
        (q.query, q.k.unwrap_or(default_k))
    } else {
        (input.to_string(), default_k)
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err("empty query: give a few keywords or a question".into());
    }
    if k == 0 || k > MAX_K {
        return Err(format!("k must be 1..={MAX_K}, got {k}"));
    }
    Ok(Query { text, k })
}

/// One passage as the agent reads it.
pub struct Hit<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub text: &'a str,
}

/// `[n] Title (id): text` blocks, best first; each text cut to `max_chars`
/// at a word boundary.
pub fn format_hits(hits: &[Hit], max_chars: usize) -> String {
    hits.iter()
        .enumerate()
        .map(|(i, h)| {
            let head = match h.title {
                Some(t) if !t.is_empty() && t != h.id => format!("{t} ({})", h.id),
                _ => h.id.to_string(),
            };
            format!("[{}] {head}: {}", i + 1, cut(h.text.trim(), max_chars))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max_chars / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.1", world: "tool" });

    use super::{Hit, Params};
    use exports::forge::plugin::tool_provider::Guest;
    use forge::plugin::log::{Level, log};
    use forge::plugin::retrieval::{self, RetrievalError};
    use forge::plugin::types::PluginError;

    struct PassageSearch;

    impl Guest for PassageSearch {
        fn describe() -> String {
            "Searches the experiment's document collection: give a few keywords or a question \
             (or {\"query\": \"...\", \"k\": 5} for more passages), get the best passages, \
             numbered, as `[n] Title (id): text`."
                .into()
        }

        fn call(input: String, params: String) -> Result<String, PluginError> {
            let p = Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let q = super::parse_input(&input, p.k).map_err(PluginError::InvalidInput)?;
            let hits = retrieval::search(&p.index, &q.text, q.k).map_err(|e| match e {
                RetrievalError::UnknownIndex(m) => {
                    PluginError::Unavailable(format!("no host index {:?}: {m}", p.index))
                }
                RetrievalError::Failed(m) => PluginError::Failed(format!("search failed: {m}")),
            })?;
            if hits.is_empty() {
                return Err(PluginError::Failed(format!(
                    "no passage in index {:?} matches {:?}",
                    p.index, q.text
                )));
            }
            log(
                Level::Info,
                &format!("{:?} -> {} passages from {:?}", q.text, hits.len(), p.index),
            );
            let view: Vec<Hit> = hits
                .iter()
                .map(|h| Hit {
                    id: &h.id,
                    title: h.title.as_deref(),
                    text: &h.text,
                })
                .collect();
            Ok(super::format_hits(&view, p.max_chars))
        }
    }

    export!(PassageSearch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_need_an_index_and_a_sane_k() {
        let p = Params::parse(r#"{"index":"wiki"}"#).unwrap();
        assert_eq!((p.index.as_str(), p.k, p.max_chars), ("wiki", 3, 600));
        assert!(
            Params::parse("{}")
                .unwrap_err()
                .contains("missing field `index`")
        );
        assert!(
            Params::parse(r#"{"index":"wiki","k":0}"#)
                .unwrap_err()
                .contains("k must be 1..=20")
        );
        assert!(Params::parse(r#"{"index":"wiki","k":21}"#).is_err());
        assert!(
            Params::parse(r#"{"index":"wiki","top_k":2}"#)
                .unwrap_err()
                .contains("unknown field `top_k`")
        );
        assert!(Params::parse(r#"{"index":"wiki","max_chars":3}"#).is_err());
    }

    #[test]
    fn input_is_a_query_or_a_json_object_with_k() {
        assert_eq!(
            parse_input("  Marie Curie ", 3).unwrap(),
            Query {
                text: "Marie Curie".into(),
                k: 3
            }
        );
        assert_eq!(
            parse_input(r#"{"query": "Marie Curie", "k": 5}"#, 3).unwrap(),
            Query {
                text: "Marie Curie".into(),
                k: 5
            }
        );
        assert_eq!(parse_input(r#"{"query": "x"}"#, 2).unwrap().k, 2);
        assert!(parse_input("  ", 3).unwrap_err().contains("empty query"));
        assert!(
            parse_input(r#"{"query": "x", "k": 50}"#, 3)
                .unwrap_err()
                .contains("k must be")
        );
        assert!(
            parse_input(r#"{"q": "x"}"#, 3)
                .unwrap_err()
                .contains("expected a query")
        );
    }

    #[test]
    fn hits_are_numbered_titled_and_cut() {
        let text = "word ".repeat(100);
        let hits = [
            Hit {
                id: "d1",
                title: Some("Marie Curie"),
                text: "A physicist.",
            },
            Hit {
                id: "d2",
                title: None,
                text: &text,
            },
        ];
        let out = format_hits(&hits, 40);
        let blocks: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(blocks[0], "[1] Marie Curie (d1): A physicist.");
        assert!(blocks[1].starts_with("[2] d2: word word"));
        assert!(blocks[1].ends_with('…') && blocks[1].chars().count() <= "[2] d2: ".len() + 40);
    }
}
