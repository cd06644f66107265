//! The JSON API under `/api`: the structs of [`super::model`] as JSON, for
//! scripts and for the pages' live parts. Unknown ids answer 404 and bad
//! query values 400, each as `{"error": …, "parameter": …}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use super::model::{self, ViewError};
use super::{Viewer, blocking, pairs, parse_index, status_of};

pub fn routes() -> Router<Arc<Viewer>> {
    Router::new()
        .route("/api/experiments", get(experiments))
        .route("/api/experiments/{id}", get(experiment))
        .route("/api/experiments/{id}/runs", get(runs))
        .route("/api/experiments/{id}/runs/{index}", get(run))
        .route("/api/compare", get(compare))
        .route("/api/groups", get(groups))
        .route("/api/groups/{id}", get(group))
}

pub fn error(e: ViewError) -> Response {
    let status = status_of(&e);
    let param = match &e {
        ViewError::BadParam { param, .. } => Some(*param),
        _ => None,
    };
    (
        status,
        Json(json!({"error": e.to_string(), "parameter": param})),
    )
        .into_response()
}

fn answer<T: Serialize>(r: Result<T, ViewError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(e),
    }
}

async fn experiments(State(v): State<Arc<Viewer>>, RawQuery(q): RawQuery) -> Response {
    let raw = pairs(&q);
    answer(
        blocking(&v, move |v| {
            let query = model::ListQuery::parse(&raw)?;
            model::experiment_list(&*v.catalog()?, &query)
        })
        .await,
    )
}

async fn experiment(State(v): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    answer(blocking(&v, move |v| model::experiment_view(&v.store, &id)).await)
}

async fn runs(
    State(v): State<Arc<Viewer>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = pairs(&q);
    answer(
        blocking(&v, move |v| {
            let (offset, limit) = model::window(&raw, 100, model::MAX_LIMIT, &["headline"])?;
            let headline = raw.get("headline").map(String::as_str);
            model::run_window(&v.store, &id, offset, limit, headline)
        })
        .await,
    )
}

async fn run(
    State(v): State<Arc<Viewer>>,
    Path((id, index)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = pairs(&q);
    answer(
        blocking(&v, move |v| {
            let index = parse_index(&index)?;
            let (from, limit) = model::window(&raw, model::TRACE_WINDOW, 10_000, &[])?;
            model::example_view(&v.store, &id, index, from, limit)
        })
        .await,
    )
}

async fn compare(State(v): State<Arc<Viewer>>, RawQuery(q): RawQuery) -> Response {
    answer(
        blocking(&v, move |v| {
            let c = super::compare_query(&q)?;
            Ok(model::compare_view(&v.store, &c.ids, c.headline.as_deref())?.0)
        })
        .await,
    )
}

async fn groups(State(v): State<Arc<Viewer>>) -> Response {
    answer(blocking(&v, move |v| Ok(v.catalog()?.other.groups.clone())).await)
}

async fn group(State(v): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    answer(blocking(&v, move |v| model::group_view(&v.store, &id)).await)
}
