//! The token check: when `view` was given a token (required off
//! loopback), every request carries it as `Authorization: Bearer <token>`,
//! as `?token=<token>` (which also sets a cookie, so the page's own links
//! and event stream keep working), or as that cookie.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const COOKIE: &str = "forge_view_token";

pub async fn check(State(token): State<Arc<Option<String>>>, req: Request, next: Next) -> Response {
    let Some(expected) = token.as_deref() else {
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .next();
    let query = super::pairs(&req.uri().query().map(String::from))
        .get("token")
        .cloned();
    let ok =
        |t: Option<&str>| t.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
    if ok(bearer) || ok(cookie) {
        return next.run(req).await;
    }
    if ok(query.as_deref()) {
        let mut resp = next.run(req).await;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict"
        )) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        return resp;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this view needs its token: open it with ?token=… or send Authorization: Bearer …",
    )
        .into_response()
}

/// Compares without returning early on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
