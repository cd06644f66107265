//! The HTML pages: minijinja templates (auto-escaped: everything a plugin
//! or a model wrote is text, never markup) over the structs of
//! [`super::model`], with the report's SVG charts inline. One renderer
//! serves the live server and the static export; only the links differ
//! ([`Mode`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::model::{self, ListQuery, SortKey, ViewError};
use crate::results::records::{GroupKind, RunScores, Status};
use crate::results::report::{self, charts};
use crate::results::store::Store;

/// Where the links of a page point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `forge-host view`: routes of the server.
    Server,
    /// `view export`: files side by side in one folder, for `file://`.
    Export,
}

/// A chart as a page carries it.
#[derive(Clone, Debug, Serialize)]
pub struct ChartView {
    pub caption: String,
    pub svg: String,
}

impl From<report::page::Chart> for ChartView {
    fn from(c: report::page::Chart) -> Self {
        Self {
            caption: c.caption,
            svg: c.svg,
        }
    }
}

#[derive(Serialize)]
struct Crumb {
    text: String,
    href: Option<String>,
}

fn crumb(text: impl Into<String>, href: Option<String>) -> Crumb {
    Crumb {
        text: text.into(),
        href,
    }
}

#[derive(Serialize)]
struct PageLink {
    text: String,
    href: Option<String>,
}

/// First / previous / where / next / last links of a window.
fn pager(
    total: usize,
    offset: usize,
    limit: usize,
    href: impl Fn(usize) -> String,
) -> Vec<PageLink> {
    if total <= limit && offset == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let last = total.saturating_sub(1) / limit.max(1) * limit;
    if offset > 0 {
        out.push(PageLink {
            text: "« first".into(),
            href: Some(href(0)),
        });
        out.push(PageLink {
            text: "‹ previous".into(),
            href: Some(href(offset.saturating_sub(limit))),
        });
    }
    out.push(PageLink {
        text: format!(
            "{}–{} of {total}",
            offset.min(total),
            (offset + limit).min(total)
        ),
        href: None,
    });
    if offset + limit < total {
        out.push(PageLink {
            text: "next ›".into(),
            href: Some(href(offset + limit)),
        });
        out.push(PageLink {
            text: "last »".into(),
            href: Some(href(last)),
        });
    }
    out
}

/// A path segment or file name: ids come from config names, so anything
/// but `[A-Za-z0-9._-]` is percent-encoded (server) or replaced (files).
fn segment(id: &str, mode: Mode) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(b as char);
        } else if mode == Mode::Server {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push('_');
        }
    }
    out
}

/// Query-string encoding of one value.
pub fn encode_query(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file or route of each page (the templates call these).
pub struct Links(pub Mode);

impl Links {
    pub fn list(&self) -> String {
        match self.0 {
            Mode::Server => "/".into(),
            Mode::Export => "index.html".into(),
        }
    }
    pub fn experiment(&self, id: &str) -> String {
        match self.0 {
            Mode::Server => format!("/experiments/{}", segment(id, self.0)),
            Mode::Export => format!("experiment-{}.html", segment(id, self.0)),
        }
    }
    pub fn example(&self, id: &str, index: u32) -> String {
        match self.0 {
            Mode::Server => format!("/experiments/{}/examples/{index}", segment(id, self.0)),
            Mode::Export => format!("example-{}-{index}.html", segment(id, self.0)),
        }
    }
    pub fn group(&self, id: &str) -> String {
        match self.0 {
            Mode::Server => format!("/groups/{}", segment(id, self.0)),
            Mode::Export => format!("group-{}.html", segment(id, self.0)),
        }
    }
    pub fn training(&self, id: &str) -> String {
        match self.0 {
            Mode::Server => format!("/training/{}", segment(id, self.0)),
            Mode::Export => format!("training-{}.html", segment(id, self.0)),
        }
    }
    pub fn optimization(&self, id: &str) -> String {
        match self.0 {
            Mode::Server => format!("/optimizations/{}", segment(id, self.0)),
            Mode::Export => format!("optimization-{}.html", segment(id, self.0)),
        }
    }
    pub fn compare(&self, ids: &[String]) -> String {
        match self.0 {
            Mode::Server => format!("/compare?ids={}", encode_query(&ids.join(","))),
            // One file per set of experiments (a group's cells, the
            // chosen ones), named by a digest of their ids.
            Mode::Export => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(ids.join(",").as_bytes());
                format!("compare-{}.html", &hex::encode(digest)[..12])
            }
        }
    }
    pub fn asset(&self, name: &str) -> String {
        match self.0 {
            Mode::Server => format!("/assets/{name}"),
            Mode::Export => format!("assets/{name}"),
        }
    }
}

/// Charts of an experiment drawn once per state (a finished experiment's
/// never change): the page of a 100,000-example experiment reads its runs
/// only on the first visit.
#[derive(Default)]
pub struct ChartCache {
    by_id: Mutex<HashMap<String, CachedCharts>>,
}

/// An experiment's charts and the state (examples done, status) they show.
type CachedCharts = ((usize, Status), Arc<Vec<ChartView>>);

/// The examples the per-example grid draws at most (beyond that the
/// table's windows show them).
const GRID_MAX: usize = 2000;
/// Examples per window of an experiment's table.
pub const RUNS_WINDOW: usize = 100;

pub struct Site {
    env: Environment<'static>,
    pub mode: Mode,
    store_label: String,
    /// Set on exported pages: when they were written.
    exported: Option<String>,
    charts: ChartCache,
}

/// Any serde value as a template value.
fn v<T: Serialize>(x: T) -> Value {
    Value::from(minijinja::value::Serde(x))
}

macro_rules! template {
    ($env:ident, $name:literal) => {
        $env.add_template($name, include_str!(concat!("templates/", $name)))
            .expect(concat!("template ", $name))
    };
}

impl Site {
    pub fn new(mode: Mode, store_label: String, exported: Option<String>) -> Self {
        let mut env = Environment::new();
        template!(env, "base.html");
        template!(env, "macros.html");
        template!(env, "list.html");
        template!(env, "experiment.html");
        template!(env, "example.html");
        template!(env, "compare.html");
        template!(env, "group.html");
        template!(env, "run.html");
        template!(env, "error.html");
        let l = move || Links(mode);
        env.add_function("href_list", move || l().list());
        env.add_function("href_experiment", move |id: String| l().experiment(&id));
        env.add_function("href_example", move |id: String, i: u32| {
            l().example(&id, i)
        });
        env.add_function("href_group", move |id: String| l().group(&id));
        env.add_function("href_training", move |id: String| l().training(&id));
        env.add_function("href_optimization", move |id: String| l().optimization(&id));
        env.add_function("href_target", move |kind: String, id: String| {
            match kind.as_str() {
                "training" => l().training(&id),
                "optimization" => l().optimization(&id),
                _ => l().experiment(&id),
            }
        });
        env.add_function("href_compare_form", move || match mode {
            Mode::Server => "/compare".to_string(),
            Mode::Export => "compare.html".to_string(),
        });
        env.add_function("asset", move |name: String| l().asset(&name));
        Self {
            env,
            mode,
            store_label,
            exported,
            charts: ChartCache::default(),
        }
    }

    pub fn links(&self) -> Links {
        Links(self.mode)
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, ViewError> {
        let base = context! {
            version => env!("CARGO_PKG_VERSION"),
            store => self.store_label.clone(),
            exported => self.exported.clone(),
        };
        let t = self
            .env
            .get_template(name)
            .map_err(|e| ViewError::Other(e.to_string()))?;
        t.render(context! { ..ctx, ..base })
            .map_err(|e| ViewError::Other(format!("rendering {name}: {e:#}")))
    }

    fn live(&self, url: String) -> Option<String> {
        (self.mode == Mode::Server).then_some(url)
    }

    pub fn error_page(&self, status: u16, message: &str) -> String {
        self.render(
            "error.html",
            context! { title => status.to_string(), status, message, crumbs => v(Vec::<Crumb>::new()) },
        )
        .unwrap_or_else(|e| format!("{status}: {message} ({e})"))
    }

    /// The experiments page. `raw` is the query as given (the sort links
    /// keep the filters).
    pub fn list_page(
        &self,
        cat: &model::Catalog,
        q: &ListQuery,
        raw: &BTreeMap<String, String>,
        exported_compare: Option<String>,
    ) -> Result<String, ViewError> {
        let list = model::experiment_list(cat, q)?;
        let all_total = cat.len();
        let other = &cat.other;
        let href_with = |over: &[(&str, String)]| {
            let mut m: BTreeMap<String, String> = raw
                .iter()
                .filter(|(k, v)| *k != "token" && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in over {
                m.insert((*k).into(), v.clone());
            }
            let qs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", encode_query(v)))
                .collect();
            format!("/?{}", qs.join("&"))
        };
        #[derive(Serialize)]
        struct Column {
            label: &'static str,
            href: String,
            active: bool,
        }
        let sort_name = |k: SortKey| {
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        };
        let columns: Vec<Column> = [
            ("status", SortKey::Status),
            ("experiment", SortKey::Name),
            ("method", SortKey::Method),
            ("model", SortKey::Model),
            ("dataset", SortKey::Dataset),
            ("examples", SortKey::N),
            ("scores (95% CI)", SortKey::Score),
            ("created", SortKey::Created),
        ]
        .into_iter()
        .map(|(label, key)| {
            let active = q.sort == key;
            let order = if active && q.desc { "asc" } else { "desc" };
            Column {
                label,
                href: href_with(&[
                    ("sort", sort_name(key)),
                    ("order", order.into()),
                    ("offset", "0".into()),
                ]),
                active,
            }
        })
        .collect();
        let pages = if self.mode == Mode::Server {
            pager(list.total, q.offset, q.limit, |o| {
                href_with(&[("offset", o.to_string())])
            })
        } else {
            Vec::new()
        };
        let query = context! {
            q => q.q.clone(), status => q.status.map(|s| s.to_string()), method => q.method.clone(),
            model => q.model.clone(), dataset => q.dataset.clone(), group => q.group.clone(),
            sort => sort_name(q.sort), desc => q.desc,
        };
        self.render(
            "list.html",
            context! {
                title => "experiments",
                crumbs => v(vec![crumb("experiments", None)]),
                live => self.live("/api/events".into()),
                list => v(&list),
                all_total, other => v(other),
                columns => v(columns), pages => v(pages), query, exported_compare,
            },
        )
    }

    fn experiment_charts(
        &self,
        store: &Store,
        view: &model::ExperimentView,
        headline: Option<&str>,
    ) -> Result<Arc<Vec<ChartView>>, ViewError> {
        let e = &view.experiment;
        let state = (view.done, e.status);
        // One drawing per experiment and grid score.
        let key = format!("{}\u{0}{}", e.id, headline.unwrap_or_default());
        if let Some((at, charts)) = self.charts.by_id.lock().unwrap().get(&key)
            && *at == state
        {
            return Ok(charts.clone());
        }
        let Some(summary) = &view.summary else {
            return Ok(Arc::new(Vec::new()));
        };
        let runs: Vec<RunScores> = store.run_scores(&e.id)?;
        let series = [charts::Series {
            label: e.name.clone(),
            summary: summary.clone(),
            runs,
        }];
        let draw = |r: anyhow::Result<String>| r.map_err(|e| ViewError::Other(format!("{e:#}")));
        let mut out = vec![ChartView {
            caption: "Latency per example (the whole example: method and metrics).".into(),
            svg: draw(charts::latency_histogram(&series))?,
        }];
        if let Some(h) = headline
            && series[0].runs.len() <= GRID_MAX
        {
            out.push(ChartView {
                caption: format!(
                    "{h} of every example: green right, red wrong, grey failed (the table below links each one)."
                ),
                svg: draw(charts::example_grid(&series, h))?,
            });
        }
        let out = Arc::new(out);
        self.charts
            .by_id
            .lock()
            .unwrap()
            .insert(key, (state, out.clone()));
        Ok(out)
    }

    pub fn experiment_page(
        &self,
        store: &Store,
        id: &str,
        offset: usize,
        limit: usize,
        headline: Option<&str>,
    ) -> Result<String, ViewError> {
        let view = model::experiment_view(store, id)?;
        let e = &view.experiment;
        let runs = model::runs_of(store, e, offset, limit, headline)?;
        let charts = self.experiment_charts(store, &view, runs.headline.as_deref())?;
        let base = self.links().experiment(&e.id);
        // The chosen score travels with the window links.
        let chosen = match headline {
            Some(h) => format!("&headline={}", encode_query(h)),
            None => String::new(),
        };
        let run_pages = match self.mode {
            Mode::Server => pager(runs.total, offset, limit, |o| {
                format!("{base}?offset={o}&limit={limit}{chosen}#examples")
            }),
            Mode::Export => Vec::new(),
        };
        #[derive(Serialize)]
        struct ColourBy {
            name: String,
            href: String,
            active: bool,
        }
        let colour_by: Vec<ColourBy> = match self.mode {
            Mode::Server if e.score_names.len() > 1 => e
                .score_names
                .iter()
                .map(|n| ColourBy {
                    href: format!("{base}?headline={}#examples", encode_query(n)),
                    active: runs.headline.as_deref() == Some(n),
                    name: n.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let running = matches!(e.status, Status::Running | Status::Pending);
        self.render(
            "experiment.html",
            context! {
                title => e.name.clone(),
                crumbs => v(vec![crumb("experiments", Some(self.links().list())), crumb(e.name.clone(), None)]),
                live => running.then(|| format!("/api/events?experiment={}", encode_query(&e.id))).and_then(|u| self.live(u)),
                view => v(&view),
                runs => v(&runs),
                charts => v(&*charts),
                run_pages => v(run_pages),
                colour_by => v(colour_by),
            },
        )
    }

    pub fn example_page(
        &self,
        store: &Store,
        id: &str,
        index: u32,
        trace_from: usize,
        trace_limit: usize,
    ) -> Result<String, ViewError> {
        let view = model::example_view(store, id, index, trace_from, trace_limit)?;
        let e = store.experiment(&view.experiment)?;
        let links = self.links();
        let total = e.example_ids.len() as u32;
        let base = links.example(&e.id, index);
        let trace_pages = match self.mode {
            Mode::Server => pager(view.trace_len, view.trace_from, trace_limit, |o| {
                format!("{base}?from={o}#trace")
            }),
            Mode::Export => Vec::new(),
        };
        self.render(
            "example.html",
            context! {
                title => format!("{} example {index}", e.name),
                crumbs => v(vec![
                    crumb("experiments", Some(links.list())),
                    crumb(e.name.clone(), Some(links.experiment(&e.id))),
                    crumb(format!("example {index}"), None),
                ]),
                prev => (index > 0).then(|| links.example(&e.id, index - 1)),
                next => (index + 1 < total).then(|| links.example(&e.id, index + 1)),
                view => v(&view),
                trace_pages => v(trace_pages),
            },
        )
    }

    pub fn compare_page(
        &self,
        store: &Store,
        ids: &[String],
        regressions: bool,
        headline: Option<&str>,
    ) -> Result<String, ViewError> {
        let (view, loaded) = model::compare_view(store, ids, headline)?;
        let verdicts: Vec<Vec<String>> = view
            .comparisons
            .iter()
            .map(|c| {
                c.metrics
                    .iter()
                    .map(|m| crate::results::compare::verdict(m, 0.05))
                    .collect()
            })
            .collect();
        #[derive(Serialize)]
        struct Seg {
            kind: &'static str,
            text: String,
        }
        #[derive(Serialize)]
        struct Diffed<'a> {
            #[serde(flatten)]
            d: &'a model::DifferingExample,
            diff: Vec<Seg>,
        }
        let diffs: Vec<Diffed> = view
            .differing
            .iter()
            .map(|d| {
                let a = d.answer_a.as_deref().unwrap_or("");
                let b = d.answer_b.as_deref().unwrap_or("");
                let diff = similar::TextDiff::from_words(a, b)
                    .iter_all_changes()
                    .map(|c| Seg {
                        kind: match c.tag() {
                            similar::ChangeTag::Equal => "same",
                            similar::ChangeTag::Delete => "del",
                            similar::ChangeTag::Insert => "ins",
                        },
                        text: c.value().to_string(),
                    })
                    .collect();
                Diffed { d, diff }
            })
            .collect();
        let series: Vec<charts::Series> = loaded
            .into_iter()
            .zip(&view.cells)
            .map(|((e, runs), cell)| {
                let summary = store.summary(&e.id).ok().flatten().unwrap_or_else(|| {
                    crate::results::stats::summarise(
                        &runs,
                        &e.score_names,
                        crate::results::compare::seed(&e),
                        200,
                    )
                });
                charts::Series {
                    // Sweep cells share a name: their labels tell them apart.
                    label: match cell {
                        Some(c) => format!("{} · {c}", e.name),
                        None => e.name.clone(),
                    },
                    summary,
                    runs,
                }
            })
            .collect();
        let mut chart_views = Vec::new();
        if let Some(h) = &view.headline {
            chart_views.push(ChartView {
                caption: format!(
                    "Mean {h} against mean latency per experiment, with the Pareto frontier (no other experiment is both faster and better)."
                ),
                svg: charts::accuracy_vs_latency(&series, h)
                    .map_err(|e| ViewError::Other(format!("{e:#}")))?,
            });
        }
        self.render(
            "compare.html",
            context! {
                title => "compare",
                crumbs => v(vec![crumb("experiments", Some(self.links().list())), crumb("compare", None)]),
                view => v(&view),
                verdicts => v(verdicts), diffs => v(diffs), regressions,
                charts => v(chart_views),
            },
        )
    }

    pub fn group_page(&self, store: &Store, id: &str) -> Result<String, ViewError> {
        let view = model::group_view(store, id)?;
        let g = &view.group;
        let heat = match &view.headline {
            Some(h) if g.kind == GroupKind::Experiments && !g.axes.is_empty() => {
                Some(heat_map(&view, h, &self.links()))
            }
            _ => None,
        };
        let ids = view.comparable();
        let compare_all = (ids.len() >= 2).then(|| self.links().compare(&ids));
        // A method × optimization grid: the report's charts and the
        // invariance verdict.
        let (matrix_charts, invariance) = match crate::results::matrix::Matrix::gather(store, g)? {
            Some(m) => {
                let inv = m.invariance(store)?;
                let charts: Vec<ChartView> = report::matrix::charts(&m)
                    .map_err(|e| ViewError::Other(format!("{e:#}")))?
                    .into_iter()
                    .map(ChartView::from)
                    .collect();
                (charts, Some((inv.holds(), inv.text())))
            }
            None => (vec![], None),
        };
        self.render(
            "group.html",
            context! {
                title => g.name.clone(),
                crumbs => v(vec![crumb("experiments", Some(self.links().list())), crumb(format!("group {}", g.name), None)]),
                view => v(&view),
                heat => v(heat),
                compare_all,
                matrix_charts => v(matrix_charts),
                invariance => v(invariance),
            },
        )
    }

    pub fn training_page(&self, store: &Store, id: &str) -> Result<String, ViewError> {
        let run = store
            .find_training_run(id)?
            .ok_or_else(|| ViewError::NotFound(format!("no training run {id:?}")))?;
        let steps = store.training_steps(&run.id)?;
        let evals = store.training_evals(&run.id)?;
        let text = report::training::summary_text(&run, &evals, steps.last());
        let chart_views: Vec<ChartView> = report::training::run_charts(&steps, &evals)
            .map_err(|e| ViewError::Other(format!("{e:#}")))?
            .into_iter()
            .map(ChartView::from)
            .collect();
        self.render(
            "run.html",
            context! {
                title => run.id.clone(),
                crumbs => v(vec![crumb("experiments", Some(self.links().list())), crumb(format!("training {}", run.id), None)]),
                heading => format!("Training run {}", run.id),
                text, charts => v(chart_views), config_text => run.config_text,
            },
        )
    }

    pub fn optimization_page(&self, store: &Store, id: &str) -> Result<String, ViewError> {
        let run = store
            .find_optimization(id)?
            .ok_or_else(|| ViewError::NotFound(format!("no optimization run {id:?}")))?;
        let rows = store.candidates(&run.id)?;
        let text = report::optimization::text(&run, &rows);
        let chart = report::optimization::trajectory_chart(&run, &rows)
            .map_err(|e| ViewError::Other(format!("{e:#}")))?;
        self.render(
            "run.html",
            context! {
                title => run.id.clone(),
                crumbs => v(vec![crumb("experiments", Some(self.links().list())), crumb(format!("optimization {}", run.id), None)]),
                heading => format!("Optimization run {}", run.id),
                text, charts => v(vec![ChartView::from(chart)]), config_text => run.config_text,
            },
        )
    }
}

#[derive(Serialize)]
struct HeatCell {
    text: String,
    href: Option<String>,
    style: String,
}

#[derive(Serialize)]
struct HeatRow {
    label: String,
    cells: Vec<HeatCell>,
}

/// The group's heat map as a table (each cell a link to its experiment):
/// the first axis down, the others across; shaded by the headline mean on
/// the report's scale ([`charts::heat_color`]), relative to the grid's
/// range.
#[derive(Serialize)]
struct Heat {
    title: String,
    columns: Vec<String>,
    rows: Vec<HeatRow>,
}

fn heat_map(view: &model::GroupView, headline: &str, links: &Links) -> Heat {
    let g = &view.group;
    let split = |labels: &[String]| -> (String, String) {
        if g.axes.len() == 1 {
            (
                g.axes[0].clone(),
                labels.first().cloned().unwrap_or_default(),
            )
        } else {
            (
                labels.first().cloned().unwrap_or_default(),
                labels.get(1..).unwrap_or_default().join(" · "),
            )
        }
    };
    let mut rows: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for c in &view.cells {
        let (r, col) = split(&c.labels);
        if !rows.contains(&r) {
            rows.push(r);
        }
        if !cols.contains(&col) {
            cols.push(col);
        }
    }
    let means: Vec<f64> = view
        .cells
        .iter()
        .filter_map(|c| c.headline.as_ref().map(|s| s.mean))
        .collect();
    let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut grid: Vec<HeatRow> = rows
        .iter()
        .map(|r| HeatRow {
            label: r.clone(),
            cells: cols
                .iter()
                .map(|_| HeatCell {
                    text: "—".into(),
                    href: None,
                    style: "background:#c8c8c8;color:#000".into(),
                })
                .collect(),
        })
        .collect();
    for c in &view.cells {
        let (r, col) = split(&c.labels);
        let ri = rows.iter().position(|x| *x == r).unwrap_or(0);
        let ci = cols.iter().position(|x| *x == col).unwrap_or(0);
        let cell = &mut grid[ri].cells[ci];
        cell.href = c.target.as_ref().map(|t| match c.kind {
            GroupKind::Training => links.training(t),
            GroupKind::Optimization => links.optimization(t),
            _ => links.experiment(t),
        });
        if let Some(s) = &c.headline {
            let t = if hi > lo {
                (s.mean - lo) / (hi - lo)
            } else {
                0.5
            };
            let ((r, g, b), (ir, ig, ib)) = charts::heat_color(t);
            cell.text = s.text.clone();
            cell.style = format!("background:rgb({r},{g},{b});color:rgb({ir},{ig},{ib})");
        }
    }
    Heat {
        title: if g.axes.len() == 1 {
            format!(
                "{headline} by {} (×100 for rates; darker is higher)",
                g.axes[0]
            )
        } else {
            format!(
                "{headline}: {} down, {} across (×100 for rates; darker is higher)",
                g.axes[0],
                g.axes[1..].join(" · ")
            )
        },
        columns: cols,
        rows: grid,
    }
}
