//! `forge-host serve --openai`: forge's own engine behind an
//! OpenAI-compatible HTTP API, so other tools (and forge's own `openai`
//! backend) can use it.
//!
//! Routes: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/completions` (both with `stream: true` as server-sent events).
//! Requests go through the [`EngineHandle`], so concurrent clients are
//! decoded together (continuous batching) like concurrent examples of an
//! experiment are.
//!
//! Streaming is incremental: role chunk, a content chunk per piece of text
//! as it is decoded (text a stop sequence could still cut is held back until
//! it cannot), a chunk with `finish_reason`, optional usage chunk,
//! `data: [DONE]`. Errors found before any output (bad parameters, context
//! overflow) still get their HTTP status; a client that disconnects frees
//! its batch row.

mod protocol;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tracing::Instrument;

use crate::engine::{EngineError, EngineHandle};
use protocol::{ApiError, Endpoint};

struct Served {
    engine: EngineHandle,
    /// The name clients put in `model`.
    name: String,
    next_id: AtomicU64,
}

/// Serves `engine` as `name` on `addr` until `shutdown` resolves; in-flight
/// requests finish first. Prints `listening on http://ADDR` to stderr once
/// bound (with port 0, ADDR has the port the OS chose).
pub async fn serve_openai(
    engine: EngineHandle,
    name: String,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    eprintln!("listening on http://{local} (model {name})");
    axum::serve(listener, router(engine, name))
        .with_graceful_shutdown(shutdown)
        .await?;
    eprintln!("server stopped");
    Ok(())
}

fn router(engine: EngineHandle, name: String) -> Router {
    let state = Arc::new(Served {
        engine,
        name,
        next_id: AtomicU64::new(1),
    });
    Router::new()
        .route("/v1/models", get(models))
        .route(
            "/v1/chat/completions",
            post(|s: State<Arc<Served>>, b: Bytes| complete(s, Endpoint::Chat, b)),
        )
        .route(
            "/v1/completions",
            post(|s: State<Arc<Served>>, b: Bytes| complete(s, Endpoint::Completions, b)),
        )
        .fallback(|| async {
            error(ApiError {
                status: 404,
                kind: "invalid_request_error",
                code: Some("unknown_url"),
                param: None,
                message: "unknown endpoint: this server has /v1/models, /v1/chat/completions and /v1/completions".into(),
            })
        })
        .with_state(state)
}

async fn models(State(s): State<Arc<Served>>) -> Json<serde_json::Value> {
    let info = s.engine.info();
    Json(json!({
        "object": "list",
        "data": [{
            "id": s.name,
            "object": "model",
            "created": 0,
            "owned_by": "forge",
            // Extensions read by forge's own client: what the file is.
            "sha256": info.sha256,
            "weights": info.weights,
            "meta": {"context_length": info.context_length, "architecture": info.architecture},
        }],
    }))
}

async fn complete(State(s): State<Arc<Served>>, endpoint: Endpoint, body: Bytes) -> Response {
    let req = match protocol::parse_request(endpoint, &body, &s.name) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    let id = match endpoint {
        Endpoint::Chat => format!("chatcmpl-forge-{n}"),
        Endpoint::Completions => format!("cmpl-forge-{n}"),
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let span = tracing::debug_span!("serve", %id, stream = req.stream);
    if req.stream {
        return stream(s, endpoint, id, created, req).instrument(span).await;
    }
    match s
        .engine
        .generate(req.prompt.clone(), req.params.clone())
        .instrument(span)
        .await
    {
        Ok(g) => Json(protocol::response(
            endpoint, &id, created, &s.name, &req, &g,
        ))
        .into_response(),
        Err(e) => error(engine_error(e)),
    }
}

/// A `stream: true` response: server-sent events fed by the engine as it
/// decodes.
async fn stream(
    s: Arc<Served>,
    endpoint: Endpoint,
    id: String,
    created: u64,
    req: protocol::Request,
) -> Response {
    let (delta_tx, mut deltas) = tokio::sync::mpsc::unbounded_channel();
    let engine = s.engine.clone();
    let (prompt, params) = (req.prompt.clone(), req.params.clone());
    let mut generation = Box::pin(async move {
        engine
            .generate_streaming(prompt, params, Some(delta_tx))
            .await
    });
    // Wait for the first output or the end, so an error before any output
    // keeps its HTTP status.
    let first = tokio::select! {
        d = deltas.recv() => d,
        g = &mut generation => match g {
            Err(e) => return error(engine_error(e)),
            // Every delta was sent before the result: it is in `deltas`.
            Ok(g) => {
                let w = protocol::StreamWriter { endpoint, id: &id, created, model: &s.name, req: &req };
                let mut out: Vec<String> = w.start().into_iter().collect();
                while let Ok(d) = deltas.try_recv() {
                    out.extend(w.delta(&d));
                }
                out.extend(w.end(&g));
                let events = out.into_iter().map(|c| Ok::<_, Infallible>(Event::default().data(c)));
                return Sse::new(futures_util::stream::iter(events)).into_response();
            }
        },
    };
    let (event_tx, events) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(
        async move {
            let w = protocol::StreamWriter {
                endpoint,
                id: &id,
                created,
                model: &s.name,
                req: &req,
            };
            // A failed send means the client went away: returning drops
            // the generation, which frees its row in the batch.
            let send = |c: String| event_tx.send(c).is_ok();
            if let Some(c) = w.start()
                && !send(c)
            {
                return;
            }
            if let Some(c) = first.and_then(|d| w.delta(&d))
                && !send(c)
            {
                return;
            }
            let result = loop {
                tokio::select! {
                    // Deltas first: all of them precede the result.
                    biased;
                    d = deltas.recv() => match d {
                        Some(d) => {
                            if let Some(c) = w.delta(&d) && !send(c) {
                                return;
                            }
                        }
                        // The engine dropped the sender: the result is next.
                        None => break (&mut generation).await,
                    },
                    g = &mut generation => break g,
                }
            };
            while let Ok(d) = deltas.try_recv() {
                if let Some(c) = w.delta(&d)
                    && !send(c)
                {
                    return;
                }
            }
            let chunks = match result {
                Ok(g) => w.end(&g),
                // Output already went out with status 200: the error
                // travels as an event, then [DONE].
                Err(e) => vec![
                    json!({"error": engine_error(e).body()["error"]}).to_string(),
                    "[DONE]".into(),
                ],
            };
            for c in chunks {
                if !send(c) {
                    return;
                }
            }
        }
        .in_current_span(),
    );
    let events = futures_util::stream::unfold(events, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (Ok::<_, Infallible>(Event::default().data(c)), rx))
    });
    Sse::new(events).into_response()
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::InvalidParams(m) => ApiError::bad("body", m),
        e @ EngineError::ContextOverflow { .. } => ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::bad("messages", e.to_string())
        },
        e => ApiError {
            status: 500,
            kind: "server_error",
            code: None,
            param: None,
            message: e.to_string(),
        },
    }
}

fn error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.body())).into_response()
}
