//! A loopback imitation of the MediaWiki API for the wikipedia_search tests,
//! answering from the real wiki-offline corpus: `action=query&list=search`
//! (titles ranked by how many query words they and their extract contain,
//! title words counting triple) and `action=query&prop=extracts` (the
//! summary as the plain-text intro), in MediaWiki's JSON shapes
//! (formatversion 1). It counts requests so tests can see the host's cache,
//! and keeps the User-Agent it was sent.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub struct MediaWiki {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    pub user_agents: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
}

struct Page {
    id: usize,
    title: String,
    extract: String,
    title_words: Vec<String>,
    words: Vec<String>,
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

impl MediaWiki {
    /// Serves `corpus` (summaries_en-us.json) on 127.0.0.1 at a free port.
    pub fn start(corpus: &Path) -> Self {
        Self::start_on(corpus, "127.0.0.1:0")
    }

    /// Serves `corpus` on `addr` (`host/examples/mediawiki_fixture.rs`
    /// uses a fixed port so a config can name it).
    pub fn start_on(corpus: &Path, addr: &str) -> Self {
        let raw: HashMap<String, Value> =
            serde_json::from_slice(&std::fs::read(corpus).unwrap()).unwrap();
        let mut titles: Vec<&String> = raw.keys().collect();
        titles.sort();
        let pages: Arc<Vec<Page>> = Arc::new(
            titles
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let extract = raw[t]["extract"].as_str().unwrap_or_default().to_string();
                    Page {
                        id: 1000 + i,
                        title: t.clone(),
                        title_words: words(t),
                        words: words(&extract),
                        extract,
                    }
                })
                .collect(),
        );
        let server = Arc::new(
            tiny_http::Server::http(addr)
                .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}")),
        );
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let user_agents = Arc::new(Mutex::new(Vec::new()));
        {
            let (server, requests, user_agents) =
                (server.clone(), requests.clone(), user_agents.clone());
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    requests.fetch_add(1, Ordering::SeqCst);
                    if let Some(h) = req.headers().iter().find(|h| h.field.equiv("User-Agent")) {
                        user_agents.lock().unwrap().push(h.value.to_string());
                    }
                    let (status, body) = answer(&pages, req.url());
                    let resp = tiny_http::Response::from_string(body.to_string())
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json; charset=utf-8"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        );
                    let _ = req.respond(resp);
                }
            });
        }
        Self {
            port,
            requests,
            user_agents,
            server,
        }
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}/w/api.php", self.port)
    }

    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for MediaWiki {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn answer(pages: &[Page], url: &str) -> (u16, Value) {
    let Some((path, query)) = url.split_once('?') else {
        return (404, json!({"error": {"code": "notfound", "info": url}}));
    };
    if path != "/w/api.php" {
        return (404, json!({"error": {"code": "notfound", "info": path}}));
    }
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.get(k).map(String::as_str);
    if get("action") != Some("query") || get("format") != Some("json") {
        return (
            200,
            json!({"error": {"code": "badparams", "info": "only action=query&format=json is imitated"}}),
        );
    }
    if get("list") == Some("search") {
        let Some(srsearch) = get("srsearch").filter(|s| !s.is_empty()) else {
            return (
                200,
                json!({"error": {"code": "nosrsearch", "info": "The \"srsearch\" parameter must be set."}}),
            );
        };
        let limit: usize = get("srlimit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let terms = words(srsearch);
        let mut ranked: Vec<(usize, &Page)> = pages
            .iter()
            .map(|p| {
                let score = terms
                    .iter()
                    .map(|t| {
                        3 * usize::from(p.title_words.contains(t))
                            + usize::from(p.words.contains(t))
                    })
                    .sum();
                (score, p)
            })
            .filter(|(s, _)| *s > 0)
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.title.cmp(&b.1.title)));
        let total = ranked.len();
        let hits: Vec<Value> = ranked
            .iter()
            .take(limit)
            .map(|(_, p)| {
                json!({"ns": 0, "title": p.title, "pageid": p.id, "size": p.extract.len(),
                       "wordcount": p.words.len(), "snippet": p.extract.chars().take(80).collect::<String>(),
                       "timestamp": "2026-01-01T00:00:00Z"})
            })
            .collect();
        let mut out = json!({"batchcomplete": "", "query": {"searchinfo": {"totalhits": total}, "search": hits}});
        if total > limit {
            out["continue"] = json!({"sroffset": limit, "continue": "-||"});
        }
        return (200, out);
    }
    if get("prop") == Some("extracts") {
        let title = get("titles").unwrap_or_default();
        let pages_json = match pages.iter().find(|p| p.title == title) {
            Some(p) => {
                json!({ p.id.to_string(): {"pageid": p.id, "ns": 0, "title": p.title, "extract": p.extract} })
            }
            None => json!({"-1": {"ns": 0, "title": title, "missing": ""}}),
        };
        return (
            200,
            json!({"batchcomplete": "", "query": {"pages": pages_json}}),
        );
    }
    (
        200,
        json!({"error": {"code": "badparams", "info": "unsupported query"}}),
    )
}

/// A server that accepts connections and never answers (for timeouts).
/// Returns its `host:port`.
pub fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    addr
}
