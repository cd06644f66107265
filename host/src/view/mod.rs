//! `forge-host view`: a read-only web dashboard over the store, served by
//! axum from this binary (templates and assets compiled in, no CDN), and
//! `view export`, the same pages as files for `file://`.
//!
//! - [`model`]: what each page shows, built from the store; the JSON API
//!   returns it as is.
//! - [`pages`]: the HTML (auto-escaped minijinja templates, the report's
//!   SVG charts).
//! - [`api`]: `/api/...` routes and their 400/404 errors.
//! - [`live`]: server-sent events fed by the writer's commits.
//! - [`export`]: the static pages.
//!
//! The viewer opens the store read-only beside whichever process writes
//! it (see [`crate::results::store`]), so it can watch a running
//! experiment. It binds loopback unless told otherwise; anywhere else a
//! token is required on every request.

mod api;
mod auth;
mod export;
mod live;
mod model;
mod pages;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

pub use export::export;
use model::ViewError;
use pages::{Mode, Site};

use crate::results::store::Store;

/// What every request handler shares.
pub(crate) struct Viewer {
    store: Store,
    site: Site,
    store_path: PathBuf,
    /// The list's rows as of one state of the store file.
    catalog: Mutex<Option<(Stamp, Arc<model::Catalog>)>>,
}

/// A state of the store file: its size and modification time change
/// with every commit the writer makes.
pub(crate) type Stamp = Option<(u64, SystemTime)>;

impl Viewer {
    pub(crate) fn stamp(&self) -> Stamp {
        let m = std::fs::metadata(&self.store_path).ok()?;
        Some((m.len(), m.modified().ok()?))
    }

    /// The catalog of the store as it is now: cached until the writer
    /// commits. The stamp is taken before the read, so a commit racing
    /// the read only makes the next request read again.
    pub(crate) fn catalog(&self) -> Result<Arc<model::Catalog>, ViewError> {
        let now = self.stamp();
        if let Some((at, cat)) = &*self.catalog.lock().unwrap()
            && now.is_some()
            && *at == now
        {
            return Ok(cat.clone());
        }
        let cat = Arc::new(model::Catalog::load(&self.store)?);
        *self.catalog.lock().unwrap() = Some((now, cat.clone()));
        Ok(cat)
    }
}

/// The compiled-in assets, by name.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "forge.css",
        "text/css; charset=utf-8",
        include_str!("assets/forge.css"),
    ),
    (
        "forge.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/forge.js"),
    ),
];

pub struct ViewArgs {
    pub store: PathBuf,
    pub addr: SocketAddr,
    /// Required unless `addr` is loopback.
    pub token: Option<String>,
}

/// A bound dashboard, not yet serving: its address is known (port 0
/// picks a free one), so a caller can print it or point clients at it.
pub struct Bound {
    listener: tokio::net::TcpListener,
    viewer: Arc<Viewer>,
    token: Option<String>,
}

/// Opens the store read-only and binds the address.
pub async fn bind(args: ViewArgs) -> anyhow::Result<Bound> {
    if !args.addr.ip().is_loopback() && args.token.as_deref().is_none_or(str::is_empty) {
        anyhow::bail!(
            "view binds {} (not loopback): pass --token (or set FORGE_VIEW_TOKEN) so every request must carry it",
            args.addr
        );
    }
    let store = Store::open_read_only(&args.store)?;
    let viewer = Arc::new(Viewer {
        site: Site::new(Mode::Server, args.store.display().to_string(), None),
        store,
        store_path: args.store.clone(),
        catalog: Mutex::new(None),
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    Ok(Bound {
        listener,
        viewer,
        token: args.token,
    })
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, router(self.viewer, self.token))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// Serves the dashboard until `shutdown` resolves. Prints `view on
/// http://ADDR` to stderr once bound (port 0: the chosen port).
pub async fn serve(
    args: ViewArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = args.store.clone();
    let bound = bind(args).await?;
    eprintln!(
        "view on http://{} (store {})",
        bound.local_addr()?,
        store.display()
    );
    bound.serve(shutdown).await
}

pub(crate) fn router(viewer: Arc<Viewer>, token: Option<String>) -> Router {
    Router::new()
        .route("/", get(list_page))
        .route("/experiments/{id}", get(experiment_page))
        .route("/experiments/{id}/examples/{index}", get(example_page))
        .route("/compare", get(compare_page))
        .route("/groups/{id}", get(group_page))
        .route("/training/{id}", get(training_page))
        .route("/optimizations/{id}", get(optimization_page))
        .route("/assets/{name}", get(asset))
        .merge(api::routes())
        .route("/api/events", get(live::events))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            auth::check,
        ))
        .with_state(viewer)
}

/// The query string's pairs (the last of a repeated key wins).
pub(crate) fn pairs(raw: &Option<String>) -> BTreeMap<String, String> {
    form_pairs(raw).into_iter().collect()
}

/// The query string's pairs in order, repeats kept.
pub(crate) fn form_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a store read off the async threads (redb reads block).
pub(crate) async fn blocking<T: Send + 'static>(
    viewer: &Arc<Viewer>,
    f: impl FnOnce(&Viewer) -> Result<T, ViewError> + Send + 'static,
) -> Result<T, ViewError> {
    let v = viewer.clone();
    tokio::task::spawn_blocking(move || f(&v))
        .await
        .map_err(|e| ViewError::Other(format!("a viewer task failed: {e}")))?
}

fn page(viewer: &Viewer, r: Result<String, ViewError>) -> Response {
    match r {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            let status = status_of(&e);
            if status.is_server_error() {
                tracing::warn!("view: {e}");
            }
            (
                status,
                Html(viewer.site.error_page(status.as_u16(), &e.to_string())),
            )
                .into_response()
        }
    }
}

pub(crate) fn status_of(e: &ViewError) -> StatusCode {
    match e {
        ViewError::NotFound(_) => StatusCode::NOT_FOUND,
        ViewError::BadParam { .. } => StatusCode::BAD_REQUEST,
        ViewError::Store(crate::results::store::StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn list_page(State(v): State<Arc<Viewer>>, RawQuery(q): RawQuery) -> Response {
    let raw = pairs(&q);
    let r = blocking(&v, move |v| {
        let query = model::ListQuery::parse(&raw)?;
        v.site.list_page(&*v.catalog()?, &query, &raw, None)
    })
    .await;
    page(&v, r)
}

async fn experiment_page(
    State(v): State<Arc<Viewer>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = pairs(&q);
    let r = blocking(&v, move |v| {
        let (offset, limit) =
            model::window(&raw, pages::RUNS_WINDOW, model::MAX_LIMIT, &["headline"])?;
        let headline = raw.get("headline").map(String::as_str);
        v.site
            .experiment_page(&v.store, &id, offset, limit, headline)
    })
    .await;
    page(&v, r)
}

async fn example_page(
    State(v): State<Arc<Viewer>>,
    Path((id, index)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = pairs(&q);
    let r = blocking(&v, move |v| {
        let index = parse_index(&index)?;
        let (from, _) = model::window(&raw, model::TRACE_WINDOW, model::TRACE_WINDOW, &[])?;
        v.site
            .example_page(&v.store, &id, index, from, model::TRACE_WINDOW)
    })
    .await;
    page(&v, r)
}

pub(crate) fn parse_index(s: &str) -> Result<u32, ViewError> {
    s.parse().map_err(|_| ViewError::BadParam {
        param: "index",
        message: format!("{s:?} is not an example index"),
    })
}

/// What a compare request asks for.
pub(crate) struct CompareQuery {
    pub ids: Vec<String>,
    /// Start with only the regressions shown.
    pub regressions: bool,
    pub headline: Option<String>,
}

/// `ids=a,b` or the list page's ticked boxes (`pick=a&pick=b`), with
/// `regressions` and `headline`.
pub(crate) fn compare_query(q: &Option<String>) -> Result<CompareQuery, ViewError> {
    let all = form_pairs(q);
    let picked: Vec<String> = all
        .iter()
        .filter(|(k, _)| k == "pick")
        .map(|(_, v)| v.clone())
        .collect();
    let mut rest: BTreeMap<String, String> = all.into_iter().filter(|(k, _)| k != "pick").collect();
    let regressions = rest
        .get("regressions")
        .is_some_and(|v| v == "1" || v == "true");
    if !picked.is_empty() && !rest.contains_key("ids") {
        rest.insert("ids".into(), picked.join(","));
    }
    Ok(CompareQuery {
        ids: model::parse_ids(&rest)?,
        regressions,
        headline: rest.get("headline").filter(|h| !h.is_empty()).cloned(),
    })
}

async fn compare_page(State(v): State<Arc<Viewer>>, RawQuery(q): RawQuery) -> Response {
    let r = blocking(&v, move |v| {
        let c = compare_query(&q)?;
        v.site
            .compare_page(&v.store, &c.ids, c.regressions, c.headline.as_deref())
    })
    .await;
    page(&v, r)
}

async fn group_page(State(v): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let r = blocking(&v, move |v| v.site.group_page(&v.store, &id)).await;
    page(&v, r)
}

async fn training_page(State(v): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let r = blocking(&v, move |v| v.site.training_page(&v.store, &id)).await;
    page(&v, r)
}

async fn optimization_page(State(v): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let r = blocking(&v, move |v| v.site.optimization_page(&v.store, &id)).await;
    page(&v, r)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

async fn not_found(State(v): State<Arc<Viewer>>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return api::error(ViewError::NotFound(format!("no route {}", uri.path())));
    }
    page(
        &v,
        Err(ViewError::NotFound(format!("no page {}", uri.path()))),
    )
}
