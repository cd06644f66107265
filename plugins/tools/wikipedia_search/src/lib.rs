//! `wikipedia_search`: the introduction of the best Wikipedia article for a
//! query, for an agent.
//!
//! Params (the `[tools.params]` table):
//! - `mode`: `"online"` (default) asks the MediaWiki API through the host's
//!   `http` capability — `action=query&list=search` for the best title, then
//!   `prop=extracts&exintro&explaintext` for its introduction; the API's
//!   `host:port` must be in the tool's `grants.allowed_outbound_hosts`.
//!   `"offline"` searches the host's BM25 index instead (`[[indexes]]`,
//!   e.g. the packaged `wiki-offline` Wikipedia summaries): no network.
//! - `api`: the endpoint (default `https://en.wikipedia.org/w/api.php`).
//! - `index`: the index of offline mode (default `"wiki"`).
//! - `max_chars`: the answer is cut to this many characters (default 1200).
//!
//! The answer is `Title: introduction`. No article, a denied host, a
//! timeout or bad params come back as plugin errors saying which.
//! The logic here is plain Rust, unit-tested natively; the component glue is
//! compiled only for wasm32.

use serde::Deserialize;

pub const DEFAULT_API: &str = "https://en.wikipedia.org/w/api.php";

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Online,
    Offline,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_mode")]
    pub mode: Mode,
    #[serde(default = "default_api")]
    pub api: String,
    #[serde(default = "default_index")]
    pub index: String,
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn default_mode() -> Mode {
    Mode::Online
}
fn default_api() -> String {
    DEFAULT_API.into()
}
fn default_index() -> String {
    "wiki".into()
}
fn default_max_chars() -> usize {
    1200
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let p: Params = serde_json::from_str(json).map_err(|e| format!("params: {e}"))?;
        if p.max_chars < 20 {
            return Err("params: max_chars must be at least 20".into());
        }
        if p.mode == Mode::Online
            && !(p.api.starts_with("http://") || p.api.starts_with("https://"))
        {
            return Err(format!(
                "params: api must be an http(s) URL, got {:?}",
                p.api
            ));
        }
        Ok(p)
    }
}

/// `action=query&list=search`: the best-matching title.
pub fn search_url(api: &str, query: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("action", "query")
        .append_pair("list", "search")
        .append_pair("srsearch", query)
        .append_pair("srlimit", "1")
        .append_pair("format", "json")
        .finish();
    format!("{api}?{q}")
}

/// `prop=extracts&exintro&explaintext`: the plain-text introduction.
pub fn extract_url(api: &str, title: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("action", "query")
        .append_pair("prop", "extracts")
        .append_pair("exintro", "1")
        .append_pair("explaintext", "1")
        .append_pair("titles", title)
        .append_pair("format", "json")
        .finish();
    format!("{api}?{q}")
}

fn api_json(body: &str) -> Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("MediaWiki answered something that is not JSON ({e})"))?;
    if let Some(err) = v.get("error") {
        return Err(format!(
            "MediaWiki API error {}: {}",
            err["code"].as_str().unwrap_or("?"),
            err["info"].as_str().unwrap_or("")
        ));
    }
    Ok(v)
}

/// The first title of a `list=search` answer; `Ok(None)` when nothing matched.
pub fn parse_search(body: &str) -> Result<Option<String>, String> {
    let v = api_json(body)?;
    let hits = v["query"]["search"]
        .as_array()
        .ok_or("MediaWiki search answer without query.search")?;
    Ok(hits
        .first()
        .and_then(|h| h["title"].as_str())
        .map(str::to_string))
}

/// (title, extract) of a `prop=extracts` answer; `Ok(None)` for a missing page.
pub fn parse_extract(body: &str) -> Result<Option<(String, String)>, String> {
    let v = api_json(body)?;
    let pages = v["query"]["pages"]
        .as_object()
        .ok_or("MediaWiki extracts answer without query.pages")?;
    Ok(pages.values().find_map(|p| {
        if p.get("missing").is_some() {
            return None;
        }
        let extract = p["extract"].as_str()?.trim();
        (!extract.is_empty()).then(|| {
            (
                p["title"].as_str().unwrap_or_default().to_string(),
                extract.to_string(),
            )
        })
    }))
}

/// `Title: text`, cut at a word boundary to at most `max_chars` characters
/// (an ellipsis marks the cut).
pub fn format_answer(title: &str, text: &str, max_chars: usize) -> String {
    let full = format!("{title}: {}", text.trim());
    if full.chars().count() <= max_chars {
        return full;
    }
    let cut: String = full.chars().take(max_chars - 1).collect();
    let word_whole = full
        .chars()
        .nth(max_chars - 1)
        .is_some_and(char::is_whitespace);
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if !word_whole && i > cut.len() / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.1", world: "tool" });

    use super::{Mode, Params};
    use exports::forge::plugin::tool_provider::Guest;
    use forge::plugin::http::{self, HttpError};
    use forge::plugin::log::{Level, log};
    use forge::plugin::retrieval::{self, RetrievalError};
    use forge::plugin::types::PluginError;

    struct WikipediaSearch;

    const OFFLINE_HINT: &str = " (no network? params mode = \"offline\" answers from the host's \
         index of the wiki-offline summaries: [[indexes]] name = \"wiki\" corpus = \"wiki-offline\")";

    fn get(url: &str) -> Result<String, PluginError> {
        match http::get(url) {
            Ok(r) if r.status == 200 => Ok(r.body),
            Ok(r) => Err(PluginError::Failed(format!(
                "MediaWiki answered HTTP {} for {url}",
                r.status
            ))),
            Err(HttpError::Denied(m)) => Err(PluginError::Unavailable(format!("http denied: {m}"))),
            Err(HttpError::Timeout(m)) => Err(PluginError::Unavailable(format!(
                "http timeout: {m}{OFFLINE_HINT}"
            ))),
            Err(HttpError::Failed(m)) => Err(PluginError::Unavailable(format!(
                "http failed: {m}{OFFLINE_HINT}"
            ))),
        }
    }

    fn online(p: &Params, query: &str) -> Result<String, PluginError> {
        let title = super::parse_search(&get(&super::search_url(&p.api, query))?)
            .map_err(PluginError::Failed)?
            .ok_or_else(|| {
                PluginError::Failed(format!("no Wikipedia article found for {query:?}"))
            })?;
        let (title, extract) = super::parse_extract(&get(&super::extract_url(&p.api, &title))?)
            .map_err(PluginError::Failed)?
            .ok_or_else(|| {
                PluginError::Failed(format!("Wikipedia has no introduction for {title:?}"))
            })?;
        log(Level::Info, &format!("online: {query:?} -> {title:?}"));
        Ok(super::format_answer(&title, &extract, p.max_chars))
    }

    fn offline(p: &Params, query: &str) -> Result<String, PluginError> {
        let hits = retrieval::search(&p.index, query, 1).map_err(|e| match e {
            RetrievalError::UnknownIndex(m) => PluginError::Unavailable(format!(
                "offline mode needs the host index {:?}: {m}",
                p.index
            )),
            RetrievalError::Failed(m) => PluginError::Failed(format!("search failed: {m}")),
        })?;
        let best = hits.into_iter().next().ok_or_else(|| {
            PluginError::Failed(format!(
                "no article in index {:?} matches {query:?}",
                p.index
            ))
        })?;
        let title = best.title.unwrap_or(best.id);
        log(
            Level::Info,
            &format!("offline: {query:?} -> {title:?} (bm25 {:.3})", best.score),
        );
        Ok(super::format_answer(&title, &best.text, p.max_chars))
    }

    impl Guest for WikipediaSearch {
        fn describe() -> String {
            "Looks a topic up in Wikipedia: give a few keywords or a question, get the best \
             article's title and introduction as `Title: text`."
                .into()
        }

        fn call(input: String, params: String) -> Result<String, PluginError> {
            let p = Params::parse(&params).map_err(PluginError::InvalidInput)?;
            let query = input.trim();
            if query.is_empty() {
                return Err(PluginError::InvalidInput(
                    "empty query: give a few keywords or a question".into(),
                ));
            }
            match p.mode {
                Mode::Online => online(&p, query),
                Mode::Offline => offline(&p, query),
            }
        }
    }

    export!(WikipediaSearch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_have_defaults_and_clear_errors() {
        let p = Params::parse("{}").unwrap();
        assert_eq!(
            (p.mode, p.api.as_str(), p.index.as_str(), p.max_chars),
            (Mode::Online, DEFAULT_API, "wiki", 1200)
        );
        let p = Params::parse(r#"{"mode":"offline","max_chars":300}"#).unwrap();
        assert_eq!((p.mode, p.max_chars), (Mode::Offline, 300));
        let e = Params::parse(r#"{"mode":"cloud"}"#).unwrap_err();
        assert!(e.contains("unknown variant `cloud`"), "{e}");
        let e = Params::parse(r#"{"max_char":3}"#).unwrap_err();
        assert!(e.contains("unknown field `max_char`"), "{e}");
        assert!(Params::parse(r#"{"api":"ftp://x"}"#).is_err());
        assert!(Params::parse(r#"{"max_chars":5}"#).is_err());
    }

    #[test]
    fn urls_are_encoded() {
        assert_eq!(
            search_url("http://127.0.0.1:9/w/api.php", "Gödel & Escher?"),
            "http://127.0.0.1:9/w/api.php?action=query&list=search&srsearch=G%C3%B6del+%26+Escher%3F&srlimit=1&format=json"
        );
        assert!(
            extract_url(DEFAULT_API, "Albert Einstein").ends_with(
                "prop=extracts&exintro=1&explaintext=1&titles=Albert+Einstein&format=json"
            )
        );
    }

    #[test]
    fn mediawiki_answers_are_read() {
        let search = r#"{"batchcomplete":"","continue":{"sroffset":1,"continue":"-||"},"query":{"searchinfo":{"totalhits":5339},"search":[{"ns":0,"title":"Albert Einstein","pageid":736,"size":200000,"wordcount":20000,"snippet":"<span class=\"searchmatch\">Einstein</span>","timestamp":"2024-01-01T00:00:00Z"}]}}"#;
        assert_eq!(
            parse_search(search).unwrap().as_deref(),
            Some("Albert Einstein")
        );
        let none = r#"{"batchcomplete":"","query":{"searchinfo":{"totalhits":0},"search":[]}}"#;
        assert_eq!(parse_search(none).unwrap(), None);
        let err =
            r#"{"error":{"code":"nosrsearch","info":"The \"srsearch\" parameter must be set."}}"#;
        assert!(parse_search(err).unwrap_err().contains("nosrsearch"));

        let pages = r#"{"batchcomplete":"","query":{"pages":{"736":{"pageid":736,"ns":0,"title":"Albert Einstein","extract":"Albert Einstein was a physicist."}}}}"#;
        assert_eq!(
            parse_extract(pages).unwrap(),
            Some((
                "Albert Einstein".into(),
                "Albert Einstein was a physicist.".into()
            ))
        );
        let missing =
            r#"{"batchcomplete":"","query":{"pages":{"-1":{"ns":0,"title":"Nope","missing":""}}}}"#;
        assert_eq!(parse_extract(missing).unwrap(), None);
        assert!(parse_extract("<html>").is_err());
    }

    #[test]
    fn answers_are_cut_at_a_word_boundary() {
        assert_eq!(format_answer("A", "short", 100), "A: short");
        let text = "The Moon is Earth's only natural satellite.";
        let long = format_answer("Moon", text, 25);
        assert_eq!(long, "Moon: The Moon is…");
        assert_eq!(
            format_answer("Moon", text, 26),
            "Moon: The Moon is Earth's…"
        );
        assert!(long.chars().count() <= 25);
        let s = format_answer("X", &"é".repeat(100), 30);
        assert_eq!(s.chars().count(), 30);
    }
}
