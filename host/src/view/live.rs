//! Live updates as server-sent events. The runner commits every finished
//! example in its own transaction; the feed watches the store file for
//! those commits (its size and modification time, checked four times a
//! second), reads the experiments' progress when the file changed, and
//! sends an event only when the progress did. No event is lost to a slow
//! page: each carries the whole state, not a delta.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::model::{self, Progress};
use super::{Stamp, Viewer, pairs};

const POLL: Duration = Duration::from_millis(250);

/// `GET /api/events[?experiment=ID]`: `progress` events, each the list of
/// `{id, status, done, n}` (every experiment, or the one named).
pub async fn events(State(v): State<Arc<Viewer>>, RawQuery(q): RawQuery) -> Response {
    let raw = pairs(&q);
    let only = raw.get("experiment").cloned();
    if let Some(bad) = raw
        .keys()
        .find(|k| !matches!(k.as_str(), "experiment" | "token"))
    {
        return super::api::error(model::ViewError::BadParam {
            param: "query",
            message: format!("unknown parameter {bad:?}"),
        });
    }
    // An unknown experiment is a 404 now, not an empty stream.
    let first = {
        let only = only.clone();
        match super::blocking(&v, move |v| model::progress(&v.store, only.as_deref())).await {
            Ok(p) => p,
            Err(e) => return super::api::error(e),
        }
    };
    struct Feed {
        v: Arc<Viewer>,
        only: Option<String>,
        last: Option<Vec<Progress>>,
        seen: Stamp,
        first: Option<Vec<Progress>>,
    }
    let feed = Feed {
        seen: v.stamp(),
        v,
        only,
        last: None,
        first: Some(first),
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            let next = if let Some(p) = f.first.take() {
                Some(p)
            } else {
                tokio::time::sleep(POLL).await;
                let now = f.v.stamp();
                if now == f.seen {
                    None
                } else {
                    f.seen = now;
                    let only = f.only.clone();
                    super::blocking(&f.v, move |v| model::progress(&v.store, only.as_deref()))
                        .await
                        .ok()
                }
            };
            if let Some(p) = next
                && f.last.as_ref() != Some(&p)
            {
                let data = serde_json::to_string(&p).unwrap_or_else(|_| "[]".into());
                f.last = Some(p);
                let ev: Result<Event, std::convert::Infallible> =
                    Ok(Event::default().event("progress").data(data));
                return Some((ev, f));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
