//! A remote model behind an OpenAI-compatible HTTP API (vLLM, TGI,
//! llama.cpp's llama-server, Ollama, `forge-host serve --openai`).
//!
//! `Prompt::Chat` goes to `/v1/chat/completions` (the server applies its chat
//! template), `Prompt::Raw` to `/v1/completions`. Sampling controls map to
//! OpenAI's fields; `top_k` and `repetition_penalty` are the vLLM/llama.cpp
//! extension fields and are sent only when set, so strict servers that
//! reject unknown fields still accept plain requests. 429/5xx and
//! connection failures are retried with exponential backoff; every attempt is
//! bounded by one whole-request timeout. Calls are blocking (`ureq`) and run
//! on tokio's blocking pool through [`super::EngineHandle::concurrent`].

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::concurrent::ConcurrentBackend;
use super::{EngineError, FinishReason, GenParams, Generation, ModelInfo, Prompt, TokenLogprob};

/// Token id recorded for log-probabilities when the server does not say it.
pub const UNKNOWN_TOKEN_ID: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct OpenAiOptions {
    /// `http://host:port` (a trailing `/v1` is accepted).
    pub base_url: String,
    /// The served model's name (the request's `model` field).
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    pub max_concurrency: usize,
    /// Bounds each attempt, from connect to the last byte of the body.
    pub timeout: Duration,
    /// Further attempts after a 429/5xx/connection failure.
    pub retries: u32,
    /// First backoff; doubled each retry (capped at 5 s).
    pub backoff: Duration,
}

impl OpenAiOptions {
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            model: model.to_string(),
            api_key: None,
            max_concurrency: 4,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

pub struct OpenAiBackend {
    opts: OpenAiOptions,
    /// Base URL without a trailing `/` or `/v1`.
    root: String,
    agent: ureq::Agent,
    info: ModelInfo,
}

impl OpenAiBackend {
    /// Checks the server answers `GET /v1/models` and serves `opts.model`,
    /// and records what it reports about the model.
    pub fn connect(opts: OpenAiOptions) -> Result<Self, EngineError> {
        let start = Instant::now();
        let root = opts
            .base_url
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .trim_end_matches('/')
            .to_string();
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(EngineError::Load(format!(
                "base URL {:?} must start with http:// or https://",
                opts.base_url
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .user_agent(format!("forge-host/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut me = Self {
            root,
            agent,
            info: ModelInfo {
                source: opts.model.clone(),
                path: String::new(),
                sha256: String::new(),
                architecture: "remote".into(),
                context_length: 0,
                weights: String::new(),
                adapter: None,
                threads: 0,
                backend: super::BackendKind::OpenAi,
                load_ms: 0.0,
            },
            opts,
        };
        let _span = tracing::debug_span!("openai_connect", url = %me.root).entered();
        let models = me.request("GET", "/v1/models", None)?;
        let listed: Vec<&Value> = models["data"].as_array().into_iter().flatten().collect();
        let entry = listed
            .iter()
            .find(|m| m["id"].as_str() == Some(me.opts.model.as_str()));
        // Some servers (llama-server) serve whatever they loaded under any
        // name; refuse only a list that names other models and not ours.
        if entry.is_none() && !listed.is_empty() && !is_llama_server(&models) {
            let names: Vec<&str> = listed.iter().filter_map(|m| m["id"].as_str()).collect();
            return Err(EngineError::Load(format!(
                "{}/v1/models does not list model {:?} (it serves: {})",
                me.root,
                me.opts.model,
                names.join(", ")
            )));
        }
        let entry = entry.or(listed.first()).copied();
        let meta = entry.map(|e| &e["meta"]);
        me.info.path = me.root.clone();
        // A remote file's sha256 is unknown unless the server says it
        // (forge's own server does, as `sha256`).
        me.info.sha256 = entry
            .and_then(|e| e["sha256"].as_str())
            .map_or_else(|| "unknown (remote)".into(), str::to_string);
        me.info.context_length = meta
            .and_then(|m| m["n_ctx_train"].as_u64().or(m["context_length"].as_u64()))
            .unwrap_or(0) as usize;
        me.info.weights = match (entry.and_then(|e| e["weights"].as_str()), meta) {
            (Some(w), _) => format!("remote: {w}"),
            (None, Some(m)) if m.is_object() => format!("remote: {m}"),
            _ => "remote".into(),
        };
        me.info.load_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(me)
    }

    /// One request with retries; the parsed JSON body of a 2xx answer.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, EngineError> {
        let url = format!("{}{path}", self.root);
        let attempts = self.opts.retries + 1;
        let mut backoff = self.opts.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(method, &url, body) {
                Ok(v) => return Ok(v),
                Err(Failure::Final(msg)) => return Err(EngineError::Backend(msg)),
                Err(Failure::Retry { msg, after }) => {
                    tracing::debug!(attempt, %msg, "retrying");
                    last = msg;
                    if attempt < attempts {
                        std::thread::sleep(after.unwrap_or(backoff));
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        Err(EngineError::Backend(format!(
            "{last} (gave up after {attempts} attempts)"
        )))
    }

    fn attempt(&self, method: &str, url: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let auth = self.opts.api_key.as_ref().map(|k| format!("Bearer {k}"));
        let sent = match body {
            Some(b) => {
                let mut req = self
                    .agent
                    .post(url)
                    .header("content-type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.send(b.to_string().as_bytes())
            }
            None => {
                let mut req = self.agent.get(url);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.call()
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(ureq::Error::Timeout(_)) => {
                // A server that hung once will likely hang again: no retry.
                return Err(Failure::Final(format!(
                    "{method} {url}: timed out after {} ms",
                    self.opts.timeout.as_millis()
                )));
            }
            Err(
                e
                @ (ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound),
            ) => {
                return Err(Failure::Retry {
                    msg: format!("{method} {url}: connection failed: {e}"),
                    after: None,
                });
            }
            Err(e) => return Err(Failure::Final(format!("{method} {url}: {e}"))),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(30)));
        let text = match resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
        {
            Ok(t) => t,
            Err(ureq::Error::Timeout(_)) => {
                return Err(Failure::Final(format!(
                    "{method} {url}: timed out after {} ms",
                    self.opts.timeout.as_millis()
                )));
            }
            Err(e) => {
                return Err(Failure::Retry {
                    msg: format!("{method} {url}: reading the body of HTTP {status}: {e}"),
                    after: None,
                });
            }
        };
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| {
                Failure::Final(format!(
                    "{method} {url}: HTTP {status} with a body that is not JSON ({e}): {}",
                    excerpt(&text)
                ))
            });
        }
        let msg = format!("{method} {url}: HTTP {status}: {}", excerpt(&text));
        if status == 429 || status >= 500 {
            Err(Failure::Retry {
                msg,
                after: retry_after,
            })
        } else {
            Err(Failure::Final(msg))
        }
    }
}

enum Failure {
    Retry {
        msg: String,
        after: Option<Duration>,
    },
    Final(String),
}

fn is_llama_server(models: &Value) -> bool {
    models["data"][0]["owned_by"].as_str() == Some("llamacpp")
}

/// The first 300 characters of a body, on one line.
fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The JSON body of a request for `prompt` with `params` (non-streaming).
pub fn request_body(model: &str, prompt: &Prompt, params: &GenParams) -> (&'static str, Value) {
    let mut body = json!({
        "model": model,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "stream": false,
    });
    let b = body.as_object_mut().expect("object");
    if !params.stop.is_empty() {
        b.insert("stop".into(), json!(params.stop));
    }
    if params.top_k > 0 {
        b.insert("top_k".into(), json!(params.top_k));
    }
    if params.repetition_penalty != 1.0 {
        // vLLM/TGI spell it repetition_penalty, llama.cpp repeat_penalty.
        b.insert(
            "repetition_penalty".into(),
            json!(params.repetition_penalty),
        );
        b.insert("repeat_penalty".into(), json!(params.repetition_penalty));
    }
    let path = match prompt {
        Prompt::Chat(messages) => {
            b.insert("messages".into(), json!(messages));
            if let Some(n) = params.logprobs {
                b.insert("logprobs".into(), json!(true));
                b.insert("top_logprobs".into(), json!(n));
            }
            "/v1/chat/completions"
        }
        Prompt::Raw(text) => {
            b.insert("prompt".into(), json!(text));
            if let Some(n) = params.logprobs {
                b.insert("logprobs".into(), json!(n));
            }
            "/v1/completions"
        }
    };
    (path, body)
}

/// Reads a chat or text completion response into a [`Generation`].
pub fn parse_response(
    prompt: &Prompt,
    resp: &Value,
    wall_ms: f64,
) -> Result<Generation, EngineError> {
    let choice = &resp["choices"][0];
    if !choice.is_object() {
        return Err(EngineError::Backend(format!(
            "response has no choices: {}",
            excerpt(&resp.to_string())
        )));
    }
    let (text, prompt_text) = match prompt {
        Prompt::Chat(messages) => (
            choice["message"]["content"].as_str(),
            // The server templated it; record the messages it was sent.
            serde_json::to_string(messages).expect("messages serialise"),
        ),
        Prompt::Raw(p) => (choice["text"].as_str(), p.clone()),
    };
    let text = text
        .ok_or_else(|| {
            EngineError::Backend(format!(
                "response choice has no text: {}",
                excerpt(&choice.to_string())
            ))
        })?
        .to_string();
    let finish_reason = match choice["finish_reason"].as_str() {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    };
    let usage = &resp["usage"];
    let tokens = match prompt {
        Prompt::Chat(_) => chat_logprobs(&choice["logprobs"]),
        Prompt::Raw(_) => completion_logprobs(&choice["logprobs"]),
    };
    // llama.cpp reports its own split of the time; otherwise it is all
    // "decode" as seen from here (network included).
    let timings = &resp["timings"];
    let (prefill_ms, decode_ms) = match (
        timings["prompt_ms"].as_f64(),
        timings["predicted_ms"].as_f64(),
    ) {
        (Some(p), Some(d)) => (p, d),
        _ => (0.0, wall_ms),
    };
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .or(timings["cache_n"].as_u64())
        .unwrap_or(0);
    Ok(Generation {
        prompt_text,
        text,
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0) as u32,
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0) as u32,
        finish_reason,
        prefill_ms,
        decode_ms,
        tokens,
        cached_prompt_tokens: cached as u32,
        max_batch: 0,
    })
}

/// Chat shape: `{"content": [{"token", "logprob", "top_logprobs": [...]}]}`.
fn chat_logprobs(lp: &Value) -> Vec<TokenLogprob> {
    lp["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| TokenLogprob {
            token: t["token"].as_str().unwrap_or_default().to_string(),
            id: t["id"].as_u64().map_or(UNKNOWN_TOKEN_ID, |i| i as u32),
            logprob: t["logprob"].as_f64().unwrap_or(f64::NAN) as f32,
            top: t["top_logprobs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        a["token"].as_str().unwrap_or_default().to_string(),
                        a["logprob"].as_f64().unwrap_or(f64::NAN) as f32,
                    )
                })
                .collect(),
        })
        .collect()
}

/// Legacy completions shape: parallel `tokens`, `token_logprobs` and
/// `top_logprobs` (one `{token: logprob}` map per step).
fn completion_logprobs(lp: &Value) -> Vec<TokenLogprob> {
    let tokens = lp["tokens"].as_array().cloned().unwrap_or_default();
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut top: Vec<(String, f32)> = lp["top_logprobs"][i]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN) as f32))
                .collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            TokenLogprob {
                token: t.as_str().unwrap_or_default().to_string(),
                id: UNKNOWN_TOKEN_ID,
                logprob: lp["token_logprobs"][i].as_f64().unwrap_or(f64::NAN) as f32,
                top,
            }
        })
        .collect()
}

impl ConcurrentBackend for OpenAiBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn max_concurrency(&self) -> usize {
        self.opts.max_concurrency
    }

    fn generate(&self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError> {
        let (path, body) = request_body(&self.opts.model, prompt, params);
        let _span = tracing::debug_span!("openai_generate", path).entered();
        let start = Instant::now();
        let resp = self.request("POST", path, Some(&body))?;
        parse_response(prompt, &resp, start.elapsed().as_secs_f64() * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Message;

    #[test]
    fn extension_fields_are_sent_only_when_set() {
        let p = Prompt::Raw("hi".into());
        let (path, b) = request_body("m", &p, &GenParams::greedy(8));
        assert_eq!(path, "/v1/completions");
        for k in [
            "top_k",
            "repetition_penalty",
            "repeat_penalty",
            "stop",
            "logprobs",
        ] {
            assert!(b.get(k).is_none(), "{k} in {b}");
        }
        let mut g = GenParams::greedy(8);
        g.top_k = 40;
        g.repetition_penalty = 1.1;
        g.stop = vec!["\n".into()];
        g.logprobs = Some(2);
        let chat = Prompt::Chat(vec![Message {
            role: "user".into(),
            content: "q".into(),
        }]);
        let (path, b) = request_body("m", &chat, &g);
        assert_eq!(path, "/v1/chat/completions");
        assert_eq!(b["top_k"], 40);
        assert_eq!(b["repeat_penalty"].as_f64().unwrap() as f32, 1.1);
        assert_eq!(
            (b["logprobs"].clone(), b["top_logprobs"].clone()),
            (json!(true), json!(2))
        );
        assert_eq!(b["messages"][0]["content"], "q");
        assert_eq!(b["stop"], json!(["\n"]));
    }

    #[test]
    fn both_logprob_shapes_parse() {
        let chat = Prompt::Chat(vec![]);
        let r = json!({"choices": [{"message": {"content": "ab"}, "finish_reason": "length",
            "logprobs": {"content": [{"token": "a", "id": 7, "logprob": -0.5,
                "top_logprobs": [{"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -1.0}]}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            "timings": {"prompt_ms": 1.5, "predicted_ms": 2.5, "cache_n": 2}});
        let g = parse_response(&chat, &r, 99.0).unwrap();
        assert_eq!(
            (g.text.as_str(), g.finish_reason),
            ("ab", FinishReason::Length)
        );
        assert_eq!(
            (g.prompt_tokens, g.completion_tokens, g.cached_prompt_tokens),
            (3, 1, 2)
        );
        assert_eq!((g.prefill_ms, g.decode_ms), (1.5, 2.5));
        assert_eq!(g.tokens[0].id, 7);
        assert_eq!(g.tokens[0].top[1], ("b".to_string(), -1.0));

        let raw = Prompt::Raw("p".into());
        let r = json!({"choices": [{"text": "x", "finish_reason": "stop",
            "logprobs": {"tokens": ["x"], "token_logprobs": [-0.25],
                "top_logprobs": [{"y": -2.0, "x": -0.25}]}}]});
        let g = parse_response(&raw, &r, 4.0).unwrap();
        assert_eq!((g.prefill_ms, g.decode_ms), (0.0, 4.0));
        assert_eq!(g.tokens[0].id, UNKNOWN_TOKEN_ID);
        assert_eq!(g.tokens[0].top[0], ("x".to_string(), -0.25));
        assert!(parse_response(&raw, &json!({"error": {}}), 1.0).is_err());
    }

    #[test]
    fn a_bad_base_url_is_refused() {
        let e = OpenAiBackend::connect(OpenAiOptions::new("localhost:8080", "m"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("http://"), "{e}");
    }
}
