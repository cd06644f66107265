//! The wikipedia_search tool component through the host: online against a
//! loopback MediaWiki imitation serving the real wiki-offline corpus (the
//! host performs the requests: grants, cache, timeout), offline through the
//! host's BM25 index of the same corpus, and both end to end in a run.

mod common;
use common::mediawiki::{MediaWiki, silent_server};
use common::*;

use std::sync::Arc;
use std::time::Instant;

use forge_host::components::budget::Deadline;
use forge_host::components::capabilities::{CallContext, Capabilities, HttpClient};
use forge_host::components::{CallOutcome, ConfiguredTool, PluginHost, World};
use forge_host::experiment::config::{Grants, HttpConfig, Limits, SandboxDefaults};
use forge_host::retrieval::{Index, Indexes, Params, Tokenizer, corpus};

fn tool(
    host: &PluginHost,
    grants: &[String],
    params: serde_json::Value,
    limits: Limits,
) -> ConfiguredTool {
    let sandbox = SandboxDefaults::default().sandbox(
        &Grants {
            allowed_outbound_hosts: grants.to_vec(),
            ..Grants::default()
        },
        &limits,
    );
    host.configure(
        &plugin("wikipedia_search"),
        sandbox,
        params.to_string(),
        "tools[0]",
    )
    .unwrap()
}

fn http(config: HttpConfig) -> Arc<HttpClient> {
    Arc::new(HttpClient::new(&config))
}

fn no_wait() -> HttpConfig {
    HttpConfig {
        min_interval_ms: 0,
        ..HttpConfig::default()
    }
}

async fn call(
    host: &PluginHost,
    t: &ConfiguredTool,
    caps: &Arc<Capabilities>,
    input: &str,
) -> (Result<String, String>, CallContext) {
    let (out, ctx) = host
        .call_tool(t, caps.clone(), input, 7, Deadline::none())
        .await;
    let out = match out {
        CallOutcome::Ok(s) => Ok(s),
        CallOutcome::PluginError(e) => Err(e),
        CallOutcome::Failed(f) => panic!("tool failed: {f}"),
    };
    (out, ctx)
}

#[tokio::test]
async fn online_answers_from_the_corpus_and_repeats_come_from_the_host_cache() {
    let wiki = MediaWiki::start(&wiki_corpus());
    let host = PluginHost::new(None).unwrap();
    let t = tool(
        &host,
        &[wiki.host_port()],
        serde_json::json!({"api": wiki.api(), "mode": "online", "max_chars": 300}),
        Limits::default(),
    );
    let caps = Capabilities::for_tools(http(no_wait()), Indexes::default());

    let (out, ctx) = call(&host, &t, &caps, "Albert Einstein").await;
    let out = out.unwrap();
    assert!(
        out.starts_with("Albert Einstein: Albert Einstein was a German-born theoretical physicist"),
        "{out}"
    );
    assert!(out.chars().count() <= 300 && out.ends_with('…'), "{out}");
    assert_eq!(wiki.requests(), 2, "search, then extract");
    assert_eq!(ctx.http_calls.len(), 2);
    assert!(
        ctx.http_calls[0]
            .url
            .contains("list=search&srsearch=Albert+Einstein")
    );
    assert!(ctx.http_calls[1].url.contains("prop=extracts"));
    assert!(
        ctx.http_calls
            .iter()
            .all(|r| r.status == Some(200) && !r.cached && r.error.is_none())
    );
    assert!(
        wiki.user_agents.lock().unwrap()[0].starts_with("forge-host/"),
        "{:?}",
        wiki.user_agents
    );
    assert!(
        ctx.logs
            .iter()
            .any(|l| l == "info: online: \"Albert Einstein\" -> \"Albert Einstein\""),
        "{:?}",
        ctx.logs
    );

    // Same query again, in a new store: answered from the experiment's cache.
    let (again, ctx) = call(&host, &t, &caps, "Albert Einstein").await;
    assert_eq!(again.unwrap(), out);
    assert_eq!(wiki.requests(), 2, "the server saw no new request");
    assert!(
        ctx.http_calls
            .iter()
            .all(|r| r.cached && r.status == Some(200))
    );

    // Another topic from the corpus.
    let (curie, _) = call(&host, &t, &caps, "Marie Curie radioactivity").await;
    assert!(curie.unwrap().starts_with("Marie Curie: "));
    assert_eq!(wiki.requests(), 4);

    // A query nothing matches is a clear plugin error.
    let (none, _) = call(&host, &t, &caps, "zzqxv wqqzx").await;
    let none = none.unwrap_err();
    assert!(
        none.contains("no Wikipedia article found for \"zzqxv wqqzx\""),
        "{none}"
    );
}

#[tokio::test]
async fn hosts_not_granted_are_denied_naming_the_grant_to_add() {
    let wiki = MediaWiki::start(&wiki_corpus());
    let host = PluginHost::new(None).unwrap();
    let caps = Capabilities::for_tools(http(no_wait()), Indexes::default());

    // Granted something else: the loopback server is never contacted.
    let t = tool(
        &host,
        &["127.0.0.1:1".into()],
        serde_json::json!({"api": wiki.api()}),
        Limits::default(),
    );
    let (out, ctx) = call(&host, &t, &caps, "Moon").await;
    let e = out.unwrap_err();
    assert!(
        e.contains("http denied")
            && e.contains(&format!(
                "{} is not granted to this plugin (granted: 127.0.0.1:1)",
                wiki.host_port()
            ))
            && e.contains(&format!(
                "add \"{}\" to its grants.allowed_outbound_hosts",
                wiki.host_port()
            )),
        "{e}"
    );
    assert_eq!(wiki.requests(), 0);
    assert!(
        ctx.http_calls[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("denied: ")
    );

    // The default API (the real Wikipedia) without a grant: denied, no network.
    let t = tool(&host, &[], serde_json::json!({}), Limits::default());
    let e = call(&host, &t, &caps, "Moon").await.0.unwrap_err();
    assert!(
        e.contains("en.wikipedia.org:443 is not granted to this plugin (granted: none)"),
        "{e}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_without_charging_the_guest() {
    let silent = silent_server();
    let host = PluginHost::new(None).unwrap();
    // The guest may compute 100 ms; the request takes 400 ms of host time.
    let t = tool(
        &host,
        std::slice::from_ref(&silent),
        serde_json::json!({"api": format!("http://{silent}/w/api.php")}),
        Limits {
            timeout_ms: Some(100),
            ..Limits::default()
        },
    );
    let caps = Capabilities::for_tools(
        http(HttpConfig {
            timeout_ms: 400,
            ..no_wait()
        }),
        Indexes::default(),
    );
    let started = Instant::now();
    let (out, ctx) = call(&host, &t, &caps, "Moon").await;
    let e = out.unwrap_err();
    assert!(
        e.contains("http timeout: no complete response within 400 ms"),
        "{e}"
    );
    assert!(started.elapsed().as_secs_f64() < 5.0);
    assert!(
        ctx.http_calls[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("timeout: no complete response")
    );
}

#[tokio::test]
async fn offline_mode_answers_through_the_hosts_bm25_index() {
    let path = wiki_corpus();
    let index = Index::build(
        "wiki",
        &path,
        Some(corpus::packaged("wiki-offline").unwrap().sha256),
        Params::default(),
        Tokenizer { stopwords: true },
    )
    .unwrap();
    // build_ms: reading + hashing + parsing the 6.5 MB file and indexing.
    eprintln!(
        "wiki index: {} documents, {} terms, built in {:.0} ms",
        index.chunks.len(),
        index.bm25.vocabulary(),
        index.build_ms,
    );
    // Its speed is a benchmark's business (benches/retrieval.rs), not a
    // pass/fail bound on a shared machine.
    assert_eq!(index.chunks.len(), 10_033);

    let host = PluginHost::new(None).unwrap();
    // No grants at all: offline mode needs no network.
    let t = tool(
        &host,
        &[],
        serde_json::json!({"mode": "offline", "max_chars": 200}),
        Limits::default(),
    );
    let caps = Capabilities::for_tools(
        http(no_wait()),
        Indexes {
            list: vec![Arc::new(index)],
        },
    );
    for (query, title) in [
        ("Albert Einstein", "Albert Einstein"),
        ("Who was Marie Curie?", "Marie Curie"),
        ("photosynthesis", "Photosynthesis"),
        ("Eiffel Tower", "Eiffel Tower"),
    ] {
        let (out, ctx) = call(&host, &t, &caps, query).await;
        let out = out.unwrap();
        assert!(
            out.starts_with(&format!("{title}: ")),
            "{query:?} gave {out:?}"
        );
        assert!(out.chars().count() <= 200);
        assert_eq!(ctx.retrievals[0].index, "wiki");
        assert_eq!(ctx.retrievals[0].hits, [title]);
        assert!(ctx.http_calls.is_empty());
    }

    // An index the config does not define: the error says how to add it.
    let t = tool(
        &host,
        &[],
        serde_json::json!({"mode": "offline", "index": "enwiki"}),
        Limits::default(),
    );
    let e = call(&host, &t, &caps, "Moon").await.0.unwrap_err();
    assert!(
        e.contains("offline mode needs the host index \"enwiki\"")
            && e.contains("configured: wiki")
            && e.contains("[[indexes]] name = \"enwiki\""),
        "{e}"
    );
}

#[tokio::test]
async fn bad_params_and_empty_queries_are_invalid_input() {
    let host = PluginHost::new(None).unwrap();
    let caps = Capabilities::for_tools(http(no_wait()), Indexes::default());
    let t = tool(
        &host,
        &[],
        serde_json::json!({"mode": "cloud"}),
        Limits::default(),
    );
    let e = call(&host, &t, &caps, "Moon").await.0.unwrap_err();
    assert!(
        e.starts_with("invalid input: params: unknown variant `cloud`"),
        "{e}"
    );
    let t = tool(
        &host,
        &[],
        serde_json::json!({"mode": "offline"}),
        Limits::default(),
    );
    let e = call(&host, &t, &caps, "  ").await.0.unwrap_err();
    assert!(e.starts_with("invalid input: empty query"), "{e}");
}

#[test]
fn contract_0_1_0_components_still_load_beside_the_0_1_1_tool() {
    let host = PluginHost::new(None).unwrap();
    for (name, world) in [
        ("naive", World::Method),
        ("cot", World::Method),
        ("f1", World::Metric),
        ("hostile_metric", World::Metric),
        ("calculator", World::Tool),
        ("echo_tool", World::Tool),
    ] {
        let p = host.load_as(&plugin(name), world).unwrap();
        assert_eq!(p.contract.version.to_string(), "0.1.0", "{name}");
    }
    let w = host
        .load_as(&plugin("wikipedia_search"), World::Tool)
        .unwrap();
    assert_eq!(w.contract.version.to_string(), "0.1.1");
    // A 0.1.4 guest (budget) links beside them.
    let h = host.load_as(&plugin("hostile"), World::Method).unwrap();
    assert_eq!(h.contract.version.to_string(), "0.1.4");
    for import in [
        "forge:plugin/http@0.1.1",
        "forge:plugin/retrieval@0.1.1",
        "forge:plugin/log@0.1.1",
    ] {
        assert!(w.contract.imports.iter().any(|i| i == import), "{import}");
    }
}

/// A config running the hostile method's `tool:` mode (it calls the first
/// granted tool with the rest of the question) with wikipedia_search.
fn agent_config(data: &std::path::Path, tool_lines: &str, tail: &str) -> String {
    hostile_config(
        data,
        "params = { mode = \"question\" }",
        &format!("[[tools]]\nplugin = \"wikipedia_search\"\n{tool_lines}\n{tail}"),
    )
}

#[test]
fn a_run_uses_the_tool_online_and_offline_and_stores_what_the_host_did() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = write(
        tmp.path(),
        "wiki.jsonl",
        "{\"id\":\"e1\",\"question\":\"tool:Great Wall of China\",\"answers\":[\"x\"]}\n\
         {\"id\":\"e2\",\"question\":\"tool:Great Wall of China\",\"answers\":[\"x\"]}\n\
         {\"id\":\"e3\",\"question\":\"tool:Amazon River\",\"answers\":[\"x\"]}\n",
    );

    // Online, against the loopback MediaWiki.
    let wiki = MediaWiki::start(&wiki_corpus());
    let cfg = write(
        tmp.path(),
        "online.toml",
        &agent_config(
            &data,
            &format!(
                "params = {{ api = \"{}\", max_chars = 400 }}\ngrants = {{ allowed_outbound_hosts = [\"{}\"] }}",
                wiki.api(),
                wiki.host_port()
            ),
            "[http]\nmin_interval_ms = 10",
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    for (id, title) in [
        ("e1", "Great Wall of China"),
        ("e2", "Great Wall of China"),
        ("e3", "Amazon River"),
    ] {
        let e = ev.iter().find(|e| e["id"] == id).unwrap();
        let answer = e["answer"].as_str().unwrap();
        assert!(answer.starts_with(&format!("{title}: ")), "{id}: {answer}");
    }
    assert_eq!(
        wiki.requests(),
        4,
        "the repeated question was served from the host's cache"
    );
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cached = 0;
    for ex in ["e1", "e2"] {
        let call = first_tool_call(&trace_of(&home, &id, ex));
        assert_eq!(call["tool"], "wikipedia_search");
        let http = call["http"].as_array().unwrap();
        assert_eq!(http.len(), 2, "{call}");
        assert!(http.iter().all(|h| h["status"] == 200));
        cached += http.iter().filter(|h| h["cached"] == true).count();
    }
    assert_eq!(
        cached, 2,
        "one of the two identical examples was answered from the cache"
    );

    // Offline: the same tool on the host's BM25 index, no grants.
    let cfg = write(
        tmp.path(),
        "offline.toml",
        &agent_config(
            &data,
            "params = { mode = \"offline\" }",
            "[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"",
        ),
    );
    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = events(&out.stdout);
    let e = ev.iter().find(|e| e["id"] == "e3").unwrap();
    assert!(
        e["answer"].as_str().unwrap().starts_with("Amazon River: "),
        "{e}"
    );
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let call = first_tool_call(&trace_of(&home, &id, "e3"));
    assert_eq!(call["retrievals"][0]["hits"][0], "Amazon River", "{call}");
}

#[test]
fn an_index_whose_corpus_is_not_fetched_is_a_config_error_naming_the_script() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write(
        tmp.path(),
        "q.jsonl",
        "{\"id\":\"e1\",\"question\":\"tool:Moon\",\"answers\":[\"x\"]}\n",
    );
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &agent_config(
            &data,
            "params = { mode = \"offline\" }",
            "[[indexes]]\nname = \"wiki\"\ncorpus = \"wiki-offline\"",
        ),
    );
    let empty = tmp.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let out = forge(&tmp.path().join("home"))
        .env("FORGE_MODELS_DIR", &empty)
        .arg("run")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exp.toml:16:1: indexes[0].corpus: corpus \"wiki-offline\" is not fetched")
            && err.contains("run scripts/fetch-data.sh"),
        "{err}"
    );
}
