//! The OpenAI-compatible surface, both ways: `forge-host serve --openai`
//! (the real binary, the real model) answered by a plain HTTP client and by
//! forge's own `openai` backend in a real experiment; and the backend's
//! retries, timeouts and concurrency bound against small misbehaving
//! loopback servers.

mod common;
use common::served::{MODEL, Server};
use common::*;

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use forge_host::engine::openai_backend::{OpenAiBackend, OpenAiOptions};
use forge_host::engine::{ConcurrentBackend, EngineHandle, GenParams, Message, Prompt};
use serde_json::{Value, json};

const MODEL_SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// POSTs `body`; (status, content-type, body text).
fn post(url: &str, body: &Value) -> (u16, String, String) {
    let r = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    response_parts(r)
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (status, _, text) = post(url, body);
    (status, serde_json::from_str(&text).unwrap())
}

/// The `data:` payloads of an SSE body.
fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim().to_string())
        .collect()
}

#[test]
fn serve_answers_models_chat_completions_streams_and_errors() {
    let s = Server::start();
    let base = s.url.clone();

    let mut r = agent().get(format!("{base}/v1/models")).call().unwrap();
    let models: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(models["data"][0]["sha256"], MODEL_SHA);

    // Chat, whole response.
    let chat = json!({"model": MODEL, "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let (status, v) = post_json(&format!("{base}/v1/chat/completions"), &chat);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!content.trim().is_empty(), "{v}");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let u = &v["usage"];
    let (pt, ct) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(pt > 10 && (1..=12).contains(&ct), "{u}");
    assert_eq!(u["total_tokens"].as_u64().unwrap(), pt + ct);
    let finish = v["choices"][0]["finish_reason"].as_str().unwrap();
    assert_eq!(finish, if ct == 12 { "length" } else { "stop" }, "{v}");

    // Chat, streamed: same greedy text, chunk shapes, [DONE] last.
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, ctype, text) = post(&format!("{base}/v1/chat/completions"), &streamed);
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]", "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, content);
    let finished: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["choices"][0]["finish_reason"], finish);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], ct);

    // Completions on a raw prompt, whole and streamed.
    let prompt = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n";
    let comp = json!({"model": MODEL, "prompt": prompt, "max_tokens": 4, "temperature": 0});
    let (status, v) = post_json(&format!("{base}/v1/completions"), &comp);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();
    let ct = v["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=4).contains(&ct), "{v}");
    if ct == 4 {
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }
    let mut sc = comp.clone();
    sc["stream"] = json!(true);
    let (_, _, body) = post(&format!("{base}/v1/completions"), &sc);
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let joined: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(joined, text);

    // Errors in OpenAI's shape with their status codes.
    let mut unknown = chat.clone();
    unknown["model"] = json!("gpt-4o");
    let (status, v) = post_json(&format!("{base}/v1/chat/completions"), &unknown);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-4o"));
    let mut hot = chat.clone();
    hot["temperature"] = json!(7);
    let (status, v) = post_json(&format!("{base}/v1/chat/completions"), &hot);
    assert_eq!(
        (status, v["error"]["param"].as_str()),
        (400, Some("temperature")),
        "{v}"
    );
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let mut r = agent()
        .post(format!("{base}/v1/completions"))
        .send(&b"{\"model\": "[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{v}"
    );
    let mut long = comp.clone();
    long["max_tokens"] = json!(100_000);
    let (status, v) = post_json(&format!("{base}/v1/completions"), &long);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("context_length_exceeded")),
        "{v}"
    );
    let mut r = agent().get(format!("{base}/v2/nothing")).call().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "unknown_url");

    // forge's own client against it: the server's file hash is recorded,
    // and both endpoints give what the plain client got.
    let backend = OpenAiBackend::connect(OpenAiOptions::new(&format!("{base}/v1"), MODEL)).unwrap();
    let info = backend.info();
    assert_eq!(
        (info.backend.as_str(), info.sha256.as_str()),
        ("openai", MODEL_SHA)
    );
    assert_eq!(info.path, base);
    let g = backend
        .generate(&Prompt::Raw(prompt.into()), &GenParams::greedy(4))
        .unwrap();
    assert_eq!(g.text, text);
    assert_eq!(g.completion_tokens as u64, ct);
    assert!(
        g.prefill_ms > 0.0 && g.decode_ms > 0.0,
        "timings cross the wire"
    );
    let g = backend
        .generate(
            &Prompt::Chat(vec![Message {
                role: "user".into(),
                content: "What is the capital of France?".into(),
            }]),
            &GenParams::greedy(12),
        )
        .unwrap();
    assert_eq!(g.text, content);

    s.interrupt();
}

/// `stream: true` sends chunks as tokens are decoded: after the first
/// content chunk has arrived, a second request still finds the streamed one
/// decoding (it is batched with it: `timings.batch_max` is 2), and the
/// stream then goes on in many chunks.
#[test]
fn serve_streams_chunks_while_the_request_is_decoding() {
    let s = Server::start();
    let base = s.url.clone();
    let body = json!({"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 48,
        "temperature": 0, "stream": true, "stream_options": {"include_usage": true}});
    let mut r = agent()
        .post(format!("{base}/v1/completions"))
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut lines = BufReader::new(r.body_mut().as_reader()).lines();
    let mut data = Vec::new();
    // Up to the first chunk with text.
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(d.trim()).unwrap();
            let has_text = v["choices"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
            data.push(v);
            if has_text {
                break;
            }
        }
    }
    assert!(!data.is_empty(), "no content chunk");
    let other = json!({"model": MODEL, "max_tokens": 2, "temperature": 0,
        "messages": [{"role": "user", "content": "Hi"}]});
    let (status, v) = post_json(&format!("{base}/v1/chat/completions"), &other);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["timings"]["batch_max"], 2, "{v}");
    let rest: Vec<String> = lines
        .map(Result::unwrap)
        .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim().to_string()))
        .collect();
    assert_eq!(rest.last().unwrap(), "[DONE]");
    data.extend(
        rest[..rest.len() - 1]
            .iter()
            .map(|d| serde_json::from_str::<Value>(d).unwrap()),
    );
    let text_chunks = data
        .iter()
        .filter(|c| {
            c["choices"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    let usage = &data.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 48, "{usage}");
    assert!(text_chunks >= 24, "{text_chunks} text chunks for 48 tokens");
    assert_eq!(data.last().unwrap()["timings"]["batch_max"], 2);
}

#[test]
fn an_experiment_through_the_openai_backend_matches_the_embedded_engine() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = shared_data("nq_open.dev200.jsonl");
    let embedded = write(
        tmp.path(),
        "embedded.toml",
        &naive_config(&data, 3, "[run]\nconcurrency = 2\n"),
    );
    let remote_cfg = naive_config(&data, 3, "[run]\nconcurrency = 2\n").replace(
        &format!("source = \"{MODEL}\""),
        &format!(
            "backend = \"openai\"\nbase_url = \"{}\"\nmodel = \"{MODEL}\"\nmax_concurrency = 2\ntimeout_ms = 60000",
            s.url
        ),
    );
    let remote = write(tmp.path(), "remote.toml", &remote_cfg);

    let answers = |cfg: &std::path::Path| -> (Vec<(String, String)>, String) {
        let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(cfg)).stdout);
        let mut a: Vec<(String, String)> = ev
            .iter()
            .filter(|e| e["event"] == "example")
            .map(|e| {
                assert!(e["error"].is_null(), "{e}");
                (e["id"].to_string(), e["answer"].to_string())
            })
            .collect();
        a.sort();
        let last = ev.last().unwrap();
        assert_eq!(last["summary"]["failures"], 0, "{last}");
        (a, last["experiment"].as_str().unwrap().to_string())
    };
    let (a, _) = answers(&embedded);
    let (b, id) = answers(&remote);
    assert_eq!(a.len(), 3);
    assert_eq!(a, b, "greedy answers over HTTP equal the embedded engine's");

    let out = run_ok(forge(&home).args(["--json", "show", &id]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["experiment"]["model"];
    assert_eq!(m["backend"], "openai");
    assert_eq!(m["path"], s.url.as_str());
    assert_eq!(m["source"], MODEL);
    assert_eq!(
        m["sha256"], MODEL_SHA,
        "forge's server reports its file hash"
    );
    let call = &v["runs"][0]["calls"][0];
    assert!(call["prompt_tokens"].as_u64().unwrap() > 10, "{call}");
}

/// A loopback server answering `/v1/models` and sending each POST to
/// `post(n)` (n = 0, 1, ... in arrival order), one thread per request.
struct Fake {
    url: String,
    posts: Arc<AtomicUsize>,
}

fn fake(post: impl Fn(usize, tiny_http::Request) + Send + Sync + 'static) -> Fake {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let post = Arc::new(post);
    let count = posts.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            if req.url() == "/v1/models" {
                let body = json!({"object": "list", "data": [{"id": "m", "object": "model"}]});
                let _ = req.respond(json_response(200, &body));
                continue;
            }
            let mut sink = String::new();
            let _ = req.as_reader().read_to_string(&mut sink);
            let n = count.fetch_add(1, Ordering::SeqCst);
            let post = post.clone();
            std::thread::spawn(move || post(n, req));
        }
    });
    Fake { url, posts }
}

fn json_response(status: u16, body: &Value) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(
            "content-type: application/json"
                .parse::<tiny_http::Header>()
                .unwrap(),
        )
}

fn completion(text: &str) -> Value {
    json!({"choices": [{"text": text, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1}})
}

fn opts(url: &str) -> OpenAiOptions {
    OpenAiOptions {
        retries: 3,
        backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
        ..OpenAiOptions::new(url, "m")
    }
}

fn raw() -> Prompt {
    Prompt::Raw("hi".into())
}

#[test]
fn a_503_is_retried_and_then_succeeds() {
    let f = fake(|n, req| {
        let _ = if n == 0 {
            req.respond(json_response(503, &json!({"error": "warming up"})))
        } else {
            req.respond(json_response(200, &completion("ok")))
        };
    });
    let b = OpenAiBackend::connect(opts(&f.url)).unwrap();
    let g = b.generate(&raw(), &GenParams::greedy(4)).unwrap();
    assert_eq!((g.text.as_str(), g.completion_tokens), ("ok", 1));
    assert_eq!(f.posts.load(Ordering::SeqCst), 2);
}

#[test]
fn persistent_5xx_gives_up_with_status_body_and_url_and_4xx_is_not_retried() {
    let f = fake(|_, req| {
        let _ = req.respond(json_response(
            502,
            &json!({"error": "bad gateway upstream"}),
        ));
    });
    let b = OpenAiBackend::connect(OpenAiOptions {
        retries: 2,
        ..opts(&f.url)
    })
    .unwrap();
    let e = b
        .generate(&raw(), &GenParams::greedy(4))
        .unwrap_err()
        .to_string();
    assert_eq!(f.posts.load(Ordering::SeqCst), 3, "{e}");
    for part in [
        "HTTP 502",
        "bad gateway upstream",
        &format!("{}/v1/completions", f.url),
        "gave up after 3 attempts",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }

    let f = fake(|_, req| {
        let _ = req.respond(json_response(
            400,
            &json!({"error": {"message": "max_tokens too big"}}),
        ));
    });
    let b = OpenAiBackend::connect(opts(&f.url)).unwrap();
    let e = b
        .generate(&raw(), &GenParams::greedy(4))
        .unwrap_err()
        .to_string();
    assert_eq!(f.posts.load(Ordering::SeqCst), 1);
    assert!(
        e.contains("HTTP 400") && e.contains("max_tokens too big"),
        "{e}"
    );
}

#[test]
fn a_hung_server_times_out_and_a_closed_port_fails_after_retries() {
    let f = fake(|_, req| {
        std::thread::sleep(Duration::from_secs(8));
        let _ = req.respond(json_response(200, &completion("late")));
    });
    let b = OpenAiBackend::connect(OpenAiOptions {
        timeout: Duration::from_millis(400),
        ..opts(&f.url)
    })
    .unwrap();
    let start = Instant::now();
    let e = b
        .generate(&raw(), &GenParams::greedy(4))
        .unwrap_err()
        .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        e.contains("timed out after 400 ms") && e.contains(&f.url),
        "{e}"
    );
    assert_eq!(
        f.posts.load(Ordering::SeqCst),
        1,
        "a timeout is not retried"
    );

    // A port nobody listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = OpenAiBackend::connect(OpenAiOptions {
        retries: 1,
        ..opts(&format!("http://127.0.0.1:{port}"))
    })
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("connection failed") && e.contains("gave up after 2 attempts"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_concurrency_requests_are_in_flight() {
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (l, p) = (live.clone(), peak.clone());
    let f = fake(move |_, req| {
        let now = l.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        l.fetch_sub(1, Ordering::SeqCst);
        let _ = req.respond(json_response(200, &completion("x")));
    });
    let b = tokio::task::spawn_blocking({
        let o = OpenAiOptions {
            max_concurrency: 2,
            ..opts(&f.url)
        };
        move || OpenAiBackend::connect(o)
    })
    .await
    .unwrap()
    .unwrap();
    let engine = EngineHandle::concurrent(Arc::new(b));
    assert_eq!(engine.info().backend.as_str(), "openai");
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { e.generate(raw(), GenParams::greedy(2)).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().text, "x");
    }
    // Two in flight at once (each request holds the server 150 ms, so six
    // spawned together overlap unless the client serialises them), never
    // more: the peak is the behaviour, not the wall time (a loaded machine
    // stretches that).
    assert_eq!(peak.load(Ordering::SeqCst), 2, "bounded by max_concurrency");
    let e = engine
        .score_continuations(raw(), vec!["a".into()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot score"), "{e}");
}
