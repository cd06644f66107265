//! The OpenAI wire format as forge serves it: request bodies parsed and
//! checked into [`GenParams`], responses and stream chunks built from a
//! [`Generation`], errors in OpenAI's `{"error": {...}}` shape.

use serde_json::{Value, json};

use crate::engine::{
    FinishReason, GenParams, Generation, Message, Prompt, StreamDelta, TokenLogprob,
};

/// Tokens generated when a request names no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// An error answer: HTTP status plus OpenAI's error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn bad(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "invalid_request_error",
            code: None,
            param: Some(param.into()),
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub prompt: Prompt,
    pub params: GenParams,
    pub stream: bool,
    pub include_usage: bool,
    /// Logprobs the client asked for (the engine may be asked for them to
    /// split a stream into tokens even when the client did not).
    pub client_logprobs: Option<u32>,
}

/// Parses and checks a request body for `endpoint`, served model `served`.
pub fn parse_request(endpoint: Endpoint, body: &[u8], served: &str) -> Result<Request, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad("body", "request body must be a JSON object"));
    }
    let model = v["model"]
        .as_str()
        .ok_or_else(|| ApiError::bad("model", "missing string field `model`"))?;
    if model != served {
        return Err(ApiError {
            status: 404,
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model".into()),
            message: format!("The model `{model}` does not exist (this server serves `{served}`)"),
        });
    }
    let num =
        |k: &str, default: f64, ok: &dyn Fn(f64) -> bool, want: &str| -> Result<f64, ApiError> {
            match &v[k] {
                Value::Null => Ok(default),
                x => match x.as_f64() {
                    Some(n) if ok(n) => Ok(n),
                    _ => Err(ApiError::bad(k, format!("`{k}` must be {want}, got {x}"))),
                },
            }
        };
    let uint = |k: &str| -> Result<Option<u64>, ApiError> {
        match &v[k] {
            Value::Null => Ok(None),
            x => x.as_u64().map(Some).ok_or_else(|| {
                ApiError::bad(k, format!("`{k}` must be a non-negative integer, got {x}"))
            }),
        }
    };
    if let Some(n) = uint("n")?
        && n != 1
    {
        return Err(ApiError::bad("n", "only n = 1 is supported"));
    }
    let max_tokens = match uint("max_completion_tokens")?.or(uint("max_tokens")?) {
        Some(0) => {
            return Err(ApiError::bad(
                "max_tokens",
                "`max_tokens` must be at least 1",
            ));
        }
        Some(n) => u32::try_from(n)
            .map_err(|_| ApiError::bad("max_tokens", "`max_tokens` is too large"))?,
        None => DEFAULT_MAX_TOKENS,
    };
    let temperature = num(
        "temperature",
        1.0,
        &|t| (0.0..=2.0).contains(&t),
        "between 0 and 2",
    )?;
    let top_p = num("top_p", 1.0, &|p| p > 0.0 && p <= 1.0, "in (0, 1]")?;
    let penalty_key = if v["repetition_penalty"].is_null() {
        "repeat_penalty"
    } else {
        "repetition_penalty"
    };
    let repetition_penalty = num(penalty_key, 1.0, &|p| p > 0.0 && p.is_finite(), "positive")?;
    let top_k = uint("top_k")?.unwrap_or(0).min(u32::MAX as u64) as u32;
    let seed = match &v["seed"] {
        Value::Null => 0,
        // OpenAI allows negative seeds; keep their bits.
        x => x
            .as_u64()
            .or(x.as_i64().map(|i| i as u64))
            .ok_or_else(|| ApiError::bad("seed", format!("`seed` must be an integer, got {x}")))?,
    };
    let stop = match &v["stop"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::bad("stop", "`stop` must be a string or a list of strings"))?,
        _ => {
            return Err(ApiError::bad(
                "stop",
                "`stop` must be a string or a list of strings",
            ));
        }
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(ApiError::bad(
            "stop",
            "`stop` takes up to 4 non-empty strings",
        ));
    }
    let stream = match &v["stream"] {
        Value::Null => false,
        Value::Bool(b) => *b,
        x => {
            return Err(ApiError::bad(
                "stream",
                format!("`stream` must be a boolean, got {x}"),
            ));
        }
    };
    let include_usage = v["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let (prompt, client_logprobs) = match endpoint {
        Endpoint::Chat => {
            let msgs = v["messages"]
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ApiError::bad("messages", "`messages` must be a non-empty list"))?;
            let messages = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| parse_message(i, m))
                .collect::<Result<Vec<_>, _>>()?;
            let logprobs = match &v["logprobs"] {
                Value::Null | Value::Bool(false) => None,
                Value::Bool(true) => Some(uint("top_logprobs")?.unwrap_or(0).min(20) as u32),
                x => {
                    return Err(ApiError::bad(
                        "logprobs",
                        format!("`logprobs` must be a boolean, got {x}"),
                    ));
                }
            };
            (Prompt::Chat(messages), logprobs)
        }
        Endpoint::Completions => {
            let prompt = match &v["prompt"] {
                Value::String(s) => s.clone(),
                Value::Array(a) if a.len() == 1 && a[0].is_string() => {
                    a[0].as_str().unwrap_or_default().to_string()
                }
                _ => {
                    return Err(ApiError::bad(
                        "prompt",
                        "`prompt` must be a string (one prompt per request)",
                    ));
                }
            };
            let logprobs = uint("logprobs")?.map(|n| n.min(20) as u32);
            (Prompt::Raw(prompt), logprobs)
        }
    };
    Ok(Request {
        prompt,
        params: GenParams {
            max_tokens,
            temperature: temperature as f32,
            top_p: top_p as f32,
            stop,
            seed,
            top_k,
            repetition_penalty: repetition_penalty as f32,
            logprobs: client_logprobs,
        },
        stream,
        include_usage,
        client_logprobs,
    })
}

/// A message; `content` as a string or as a list of text parts.
fn parse_message(i: usize, m: &Value) -> Result<Message, ApiError> {
    let at = |f: &str| format!("messages[{i}].{f}");
    let role = m["role"]
        .as_str()
        .filter(|r| ["system", "user", "assistant", "developer", "tool"].contains(r))
        .ok_or_else(|| {
            ApiError::bad(
                &at("role"),
                "role must be system, user, assistant, developer or tool",
            )
        })?;
    let content = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t),
                _ => Err(ApiError::bad(
                    &at("content"),
                    "only text content parts are supported",
                )),
            })
            .collect::<Result<String, _>>()?,
        _ => {
            return Err(ApiError::bad(
                &at("content"),
                "content must be a string or a list of text parts",
            ));
        }
    };
    Ok(Message {
        role: if role == "developer" {
            "system".into()
        } else {
            role.into()
        },
        content,
    })
}

fn finish(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

pub fn usage(g: &Generation) -> Value {
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "total_tokens": g.prompt_tokens + g.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": g.cached_prompt_tokens},
    })
}

/// llama.cpp's `timings` object, so forge's client can split prefill and
/// decode time across the wire.
fn timings(g: &Generation) -> Value {
    json!({
        "prompt_n": g.prompt_tokens,
        "prompt_ms": g.prefill_ms,
        "predicted_n": g.completion_tokens,
        "predicted_ms": g.decode_ms,
        "cache_n": g.cached_prompt_tokens,
        // forge's extension: the widest decode batch the request ran in.
        "batch_max": g.max_batch,
    })
}

fn logprobs_json(endpoint: Endpoint, tokens: &[TokenLogprob]) -> Value {
    match endpoint {
        Endpoint::Chat => json!({"content": tokens.iter().map(|t| json!({
            "token": t.token,
            "id": t.id,
            "logprob": t.logprob,
            "bytes": t.token.as_bytes(),
            "top_logprobs": t.top.iter().map(|(tok, lp)| json!({"token": tok, "logprob": lp, "bytes": tok.as_bytes()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()}),
        Endpoint::Completions => {
            let mut offset = 0usize;
            let mut offsets = Vec::new();
            for t in tokens {
                offsets.push(offset);
                offset += t.token.len();
            }
            json!({
                "tokens": tokens.iter().map(|t| &t.token).collect::<Vec<_>>(),
                "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
                "top_logprobs": tokens.iter().map(|t| t.top.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
                "text_offset": offsets,
            })
        }
    }
}

/// The whole (non-streamed) response.
pub fn response(
    endpoint: Endpoint,
    id: &str,
    created: u64,
    model: &str,
    req: &Request,
    g: &Generation,
) -> Value {
    let logprobs = match req.client_logprobs {
        Some(_) => logprobs_json(endpoint, &g.tokens),
        None => Value::Null,
    };
    let choice = match endpoint {
        Endpoint::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": g.text},
            "logprobs": logprobs,
            "finish_reason": finish(g.finish_reason),
        }),
        Endpoint::Completions => json!({
            "index": 0,
            "text": g.text,
            "logprobs": logprobs,
            "finish_reason": finish(g.finish_reason),
        }),
    };
    json!({
        "id": id,
        "object": match endpoint { Endpoint::Chat => "chat.completion", Endpoint::Completions => "text_completion" },
        "created": created,
        "model": model,
        "system_fingerprint": concat!("forge-", env!("CARGO_PKG_VERSION")),
        "choices": [choice],
        "usage": usage(g),
        "timings": timings(g),
    })
}

#[cfg(test)]
/// The pieces a finished generation is streamed in when it was not
/// streamed as decoded: one per token when the engine returned tokens that
/// spell the text exactly, else the whole text.
pub fn pieces(g: &Generation) -> Vec<StreamDelta> {
    let joined: String = g.tokens.iter().map(|t| t.token.as_str()).collect();
    if !g.tokens.is_empty() && joined == g.text {
        g.tokens
            .iter()
            .map(|t| StreamDelta {
                text: t.token.clone(),
                tokens: vec![t.clone()],
            })
            .collect()
    } else if g.text.is_empty() {
        Vec::new()
    } else {
        vec![StreamDelta {
            text: g.text.clone(),
            tokens: Vec::new(),
        }]
    }
}

/// Builds the `data:` payloads of one streamed response: [`Self::start`],
/// a [`Self::delta`] per piece of output as it is decoded, [`Self::end`].
pub struct StreamWriter<'a> {
    pub endpoint: Endpoint,
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    pub req: &'a Request,
}

impl StreamWriter<'_> {
    fn object(&self) -> &'static str {
        match self.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions => "text_completion",
        }
    }

    fn chunk(&self, choice: Value) -> String {
        json!({"id": self.id, "object": self.object(), "created": self.created, "model": self.model, "choices": [choice]})
            .to_string()
    }

    /// The chunk before any output (chat's role chunk), if the endpoint has one.
    pub fn start(&self) -> Option<String> {
        (self.endpoint == Endpoint::Chat).then(|| {
            self.chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}))
        })
    }

    /// A chunk of new output; `None` when there is nothing to send.
    pub fn delta(&self, d: &StreamDelta) -> Option<String> {
        let lp = match self.req.client_logprobs {
            Some(_) if !d.tokens.is_empty() => logprobs_json(self.endpoint, &d.tokens),
            _ => Value::Null,
        };
        if d.text.is_empty() && lp.is_null() {
            return None;
        }
        let p = &d.text;
        Some(self.chunk(match self.endpoint {
            Endpoint::Chat => {
                json!({"index": 0, "delta": {"content": p}, "logprobs": lp, "finish_reason": null})
            }
            Endpoint::Completions => {
                json!({"index": 0, "text": p, "logprobs": lp, "finish_reason": null})
            }
        }))
    }

    /// The chunk with `finish_reason`, the usage chunk when asked for, and
    /// `[DONE]`.
    pub fn end(&self, g: &Generation) -> Vec<String> {
        let mut out = vec![self.chunk(match self.endpoint {
            Endpoint::Chat => json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish(g.finish_reason)}),
            Endpoint::Completions => json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish(g.finish_reason)}),
        })];
        if self.req.include_usage {
            out.push(json!({"id": self.id, "object": self.object(), "created": self.created, "model": self.model, "choices": [], "usage": usage(g), "timings": timings(g)}).to_string());
        }
        out.push("[DONE]".into());
        out
    }
}

/// Every `data:` payload of a streamed response of a finished generation,
/// `[DONE]` last: the writer's pieces in order (what the tests read).
#[cfg(test)]
pub fn stream_chunks(
    endpoint: Endpoint,
    id: &str,
    created: u64,
    model: &str,
    req: &Request,
    g: &Generation,
) -> Vec<String> {
    let w = StreamWriter {
        endpoint,
        id,
        created,
        model,
        req,
    };
    let mut out: Vec<String> = w.start().into_iter().collect();
    out.extend(pieces(g).iter().filter_map(|d| w.delta(d)));
    out.extend(w.end(g));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Request, ApiError> {
        parse_request(Endpoint::Chat, body.to_string().as_bytes(), "m")
    }

    #[test]
    fn defaults_and_extension_fields_map_to_gen_params() {
        let r =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert_eq!(
            (r.params.max_tokens, r.params.temperature, r.params.top_p),
            (DEFAULT_MAX_TOKENS, 1.0, 1.0)
        );
        let r = chat(json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "max_tokens": 5, "temperature": 0, "top_k": 3, "repeat_penalty": 1.2, "stop": "\n", "seed": 9,
            "logprobs": true, "top_logprobs": 2, "stream": true, "stream_options": {"include_usage": true}})).unwrap();
        assert_eq!(
            r.prompt,
            Prompt::Chat(vec![Message {
                role: "user".into(),
                content: "ab".into()
            }])
        );
        assert_eq!(
            (r.params.max_tokens, r.params.top_k, r.params.seed),
            (5, 3, 9)
        );
        assert_eq!(
            (r.params.repetition_penalty, r.params.logprobs),
            (1.2, Some(2))
        );
        assert_eq!(r.params.stop, vec!["\n".to_string()]);
        assert!(r.stream && r.include_usage);
    }

    #[test]
    fn bad_requests_name_the_parameter_and_status() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let e = chat(json!({"model": "other", "messages": msgs})).unwrap_err();
        assert_eq!((e.status, e.code), (404, Some("model_not_found")));
        for (body, param) in [
            (
                json!({"model": "m", "messages": msgs, "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": msgs, "max_tokens": 0}),
                "max_tokens",
            ),
            (json!({"model": "m", "messages": msgs, "n": 2}), "n"),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
                "messages[0].role",
            ),
            (json!({"messages": msgs}), "model"),
        ] {
            let e = chat(body.clone()).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some(param)), "{body}");
        }
        let e = parse_request(Endpoint::Chat, b"{not json", "m").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn a_stream_ends_with_finish_reason_and_done() {
        let req = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
        )
        .unwrap();
        let g = Generation {
            prompt_text: String::new(),
            text: "Paris".into(),
            prompt_tokens: 4,
            completion_tokens: 2,
            finish_reason: FinishReason::Stop,
            prefill_ms: 1.0,
            decode_ms: 1.0,
            tokens: Vec::new(),
            cached_prompt_tokens: 0,
            max_batch: 0,
        };
        let c = stream_chunks(Endpoint::Chat, "x", 0, "m", &req, &g);
        assert_eq!(c.last().unwrap(), "[DONE]");
        let text: String = c[..c.len() - 1]
            .iter()
            .map(|s| serde_json::from_str::<Value>(s).unwrap())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(text, "Paris");
        let last: Value = serde_json::from_str(&c[c.len() - 2]).unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
    }
}
