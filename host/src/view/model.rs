//! What the viewer shows, as data: one builder per page, read from the
//! store. The JSON API returns these structs as they are and the HTML pages
//! render the same structs, so a page and its API never disagree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::results::compare::{self, Comparison};
use crate::results::records::{Experiment, Group, GroupKind, RunRecord, RunScores, Status};
use crate::results::stats::{self, Summary};
use crate::results::store::{Store, StoreError};

/// A bad request, by what was wrong: the viewer answers 404 or 400.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}")]
    NotFound(String),
    #[error("bad value for {param}: {message}")]
    BadParam {
        param: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl ViewError {
    fn bad(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadParam {
            param,
            message: message.into(),
        }
    }
}

fn found(store: &Store, id: &str) -> Result<Experiment, ViewError> {
    match store.experiment(id) {
        Ok(e) => Ok(e),
        Err(StoreError::NotFound(_)) => Err(ViewError::NotFound(format!("no experiment {id:?}"))),
        Err(e) => Err(e.into()),
    }
}

/// The method plugin's name (the first `method` plugin).
fn method_of(e: &Experiment) -> String {
    e.plugins
        .iter()
        .find(|p| p.role == "method")
        .map_or_else(String::new, |p| p.name.clone())
}

fn file_name(p: &str) -> String {
    std::path::Path::new(p)
        .file_name()
        .map_or_else(|| p.to_string(), |f| f.to_string_lossy().into_owned())
}

/// One score as shown: mean and 95 % CI, in the units `show` uses.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    pub name: String,
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: usize,
    /// `mean [low, high]` as `show` prints it (×100 for rates).
    pub text: String,
}

fn scores_of(s: &Summary) -> Vec<Score> {
    s.metrics
        .iter()
        .map(|(k, m)| Score {
            name: k.clone(),
            mean: m.mean,
            ci_low: m.ci_low,
            ci_high: m.ci_high,
            n: m.n,
            text: format!(
                "{} [{}, {}]",
                crate::results::report::fmt_score(k, m.mean),
                crate::results::report::fmt_score(k, m.ci_low),
                crate::results::report::fmt_score(k, m.ci_high)
            ),
        })
        .collect()
}

/// A row of the experiments page.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentRow {
    pub id: String,
    pub name: String,
    /// The sweep cell's labels, when it is one.
    pub cell: Option<String>,
    pub status: Status,
    pub method: String,
    pub model: String,
    pub dataset: String,
    /// Examples planned.
    pub n: usize,
    /// Examples finished (stored runs).
    pub done: usize,
    pub scores: Vec<Score>,
    pub created_at: String,
    pub wall_s: Option<f64>,
    /// Sweep groups the experiment is a cell of.
    pub groups: Vec<String>,
}

impl ExperimentRow {
    fn headline(&self) -> f64 {
        self.scores.first().map_or(f64::NEG_INFINITY, |s| s.mean)
    }
}

/// The experiments page's filters, sort and window; every field checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub method: Option<String>,
    pub model: Option<String>,
    pub dataset: Option<String>,
    pub group: Option<String>,
    /// Substring of the id or name (case-insensitive).
    pub q: Option<String>,
    pub sort: SortKey,
    pub desc: bool,
    pub offset: usize,
    pub limit: usize,
    /// Only these experiments (a static export's selection; not a query
    /// parameter).
    #[serde(skip)]
    pub ids: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    #[default]
    Created,
    Name,
    Status,
    Method,
    Model,
    Dataset,
    N,
    Score,
}

const SORT_KEYS: [(&str, SortKey); 8] = [
    ("created", SortKey::Created),
    ("name", SortKey::Name),
    ("status", SortKey::Status),
    ("method", SortKey::Method),
    ("model", SortKey::Model),
    ("dataset", SortKey::Dataset),
    ("n", SortKey::N),
    ("score", SortKey::Score),
];

pub const MAX_LIMIT: usize = 500;

impl ListQuery {
    /// Parses the query string's pairs; an unknown parameter or a bad
    /// value is an error naming it.
    pub fn parse(pairs: &BTreeMap<String, String>) -> Result<Self, ViewError> {
        let mut q = ListQuery {
            desc: true,
            limit: 50,
            ..Default::default()
        };
        for (k, v) in pairs {
            let v = v.trim();
            let text = || (!v.is_empty()).then(|| v.to_string());
            match k.as_str() {
                "status" => {
                    q.status = match v.to_ascii_uppercase().as_str() {
                        "" => None,
                        "PENDING" => Some(Status::Pending),
                        "RUNNING" => Some(Status::Running),
                        "COMPLETED" => Some(Status::Completed),
                        "FAILED" => Some(Status::Failed),
                        _ => {
                            return Err(ViewError::bad(
                                "status",
                                format!("{v:?} is not one of pending, running, completed, failed"),
                            ));
                        }
                    }
                }
                "method" => q.method = text(),
                "model" => q.model = text(),
                "dataset" => q.dataset = text(),
                "group" => q.group = text(),
                "q" => q.q = text(),
                "sort" => {
                    q.sort = SORT_KEYS
                        .iter()
                        .find(|(name, _)| *name == v)
                        .map(|(_, k)| *k)
                        .ok_or_else(|| {
                            let names: Vec<&str> = SORT_KEYS.iter().map(|(n, _)| *n).collect();
                            ViewError::bad(
                                "sort",
                                format!("{v:?} is not one of {}", names.join(", ")),
                            )
                        })?
                }
                "order" => {
                    q.desc = match v {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(ViewError::bad("order", "use asc or desc")),
                    }
                }
                "offset" => {
                    q.offset = v
                        .parse()
                        .map_err(|_| ViewError::bad("offset", format!("{v:?} is not a count")))?
                }
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ViewError::bad("limit", format!("{v:?}: use 1 to {MAX_LIMIT}"))
                        })?
                }
                "token" => {}
                other => {
                    return Err(ViewError::BadParam {
                        param: "query",
                        message: format!("unknown parameter {other:?}"),
                    });
                }
            }
        }
        Ok(q)
    }
}

/// The experiments page: one window of the filtered, sorted rows.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentList {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub rows: Vec<ExperimentRow>,
    /// Values the filters can take (from every stored experiment).
    pub facets: Facets,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Facets {
    pub methods: Vec<String>,
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    pub groups: Vec<String>,
}

/// The sweep cell an experiment is, as its labels ("cot · k=4"): sweep
/// cells share their group's name, the labels tell them apart.
fn cell_of(groups: &[Group], id: &str) -> Option<String> {
    groups
        .iter()
        .flat_map(|g| &g.members)
        .find(|m| m.experiment_id.as_deref() == Some(id))
        .map(|m| m.labels.join(" · "))
}

/// The sweep groups an experiment is a cell of.
fn groups_of(groups: &[Group], id: &str) -> Vec<String> {
    groups
        .iter()
        .filter(|g| {
            g.members
                .iter()
                .any(|m| m.experiment_id.as_deref() == Some(id))
        })
        .map(|g| g.id.clone())
        .collect()
}

fn row(store: &Store, e: &Experiment, groups: &[Group]) -> Result<ExperimentRow, ViewError> {
    let summary = store.summary(&e.id)?;
    let done = match (&summary, e.status) {
        (Some(s), Status::Completed | Status::Failed) => s.examples,
        _ => store.run_count(&e.id)?,
    };
    Ok(ExperimentRow {
        id: e.id.clone(),
        name: e.name.clone(),
        cell: cell_of(groups, &e.id),
        status: e.status,
        method: method_of(e),
        model: e.model.source.clone(),
        dataset: file_name(&e.dataset_path),
        n: e.example_ids.len(),
        done,
        scores: summary.as_ref().map(scores_of).unwrap_or_default(),
        created_at: e.created_at.clone(),
        wall_s: summary.as_ref().map(|s| s.wall_s),
        groups: groups_of(groups, &e.id),
    })
}

/// Every experiment's row, the groups and the other runs, read once per
/// state of the store: the list page and `/api/experiments` filter, sort
/// and page this in memory, so 16 clients on a list of 1,000 experiments
/// do not each read 1,000 records and summaries.
pub struct Catalog {
    rows: Vec<ExperimentRow>,
    groups: Vec<Group>,
    pub other: OtherRuns,
}

impl Catalog {
    pub fn load(store: &Store) -> Result<Self, ViewError> {
        let groups = store.groups()?;
        let rows = store
            .experiments()?
            .iter()
            .map(|e| row(store, e, &groups))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rows,
            other: other_runs(store)?,
            groups,
        })
    }

    /// Experiments stored, before any filter.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

pub fn experiment_list(cat: &Catalog, q: &ListQuery) -> Result<ExperimentList, ViewError> {
    let mut facets = Facets::default();
    for r in &cat.rows {
        facets.methods.push(r.method.clone());
        facets.models.push(r.model.clone());
        facets.datasets.push(r.dataset.clone());
    }
    for v in [
        &mut facets.methods,
        &mut facets.models,
        &mut facets.datasets,
    ] {
        v.sort();
        v.dedup();
    }
    facets.groups = cat.groups.iter().map(|g| g.id.clone()).collect();
    let group_members: Option<Vec<String>> = match &q.group {
        Some(g) => Some(
            cat.groups
                .iter()
                .find(|x| &x.id == g || x.id.starts_with(g.as_str()))
                .ok_or_else(|| ViewError::bad("group", format!("no sweep group {g:?}")))?
                .members
                .iter()
                .filter_map(|m| m.experiment_id.clone())
                .collect(),
        ),
        None => None,
    };
    let needle = q.q.as_ref().map(|s| s.to_lowercase());
    let mut rows: Vec<&ExperimentRow> = cat
        .rows
        .iter()
        .filter(|r| {
            q.status.is_none_or(|s| s == r.status)
                && q.method.as_ref().is_none_or(|m| *m == r.method)
                && q.model.as_ref().is_none_or(|m| *m == r.model)
                && q.dataset.as_ref().is_none_or(|d| *d == r.dataset)
                && group_members.as_ref().is_none_or(|ids| ids.contains(&r.id))
                && q.ids.as_ref().is_none_or(|ids| ids.contains(&r.id))
                && needle.as_ref().is_none_or(|n| {
                    r.id.to_lowercase().contains(n) || r.name.to_lowercase().contains(n)
                })
        })
        .collect();
    let total = rows.len();
    match q.sort {
        SortKey::Score => rows.sort_by(|a, b| a.headline().total_cmp(&b.headline())),
        SortKey::N => rows.sort_by_key(|r| r.n),
        _ => {
            let key = |r: &ExperimentRow| -> String {
                match q.sort {
                    SortKey::Name => r.name.clone(),
                    SortKey::Status => r.status.to_string(),
                    SortKey::Method => r.method.clone(),
                    SortKey::Model => r.model.clone(),
                    SortKey::Dataset => r.dataset.clone(),
                    _ => r.created_at.clone(),
                }
            };
            rows.sort_by_cached_key(|r| key(r));
        }
    }
    if q.desc {
        rows.reverse();
    }
    Ok(ExperimentList {
        total,
        offset: q.offset,
        limit: q.limit,
        rows: rows
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .cloned()
            .collect(),
        facets,
    })
}

/// An experiment as its page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentView {
    pub experiment: Experiment,
    pub method: String,
    pub dataset: String,
    /// The stored summary, or (while it runs) one computed from the runs
    /// so far.
    pub summary: Option<Summary>,
    /// True when `summary` was computed from an unfinished experiment.
    pub live: bool,
    pub scores: Vec<Score>,
    pub done: usize,
    pub groups: Vec<String>,
    /// The sweep cell's labels, when it is one.
    pub cell: Option<String>,
}

/// Bootstrap resamples of a live (unfinished) summary: enough for a
/// moving picture, cheap enough to redo on every commit.
const LIVE_BOOTSTRAP: usize = 200;

pub fn experiment_view(store: &Store, id: &str) -> Result<ExperimentView, ViewError> {
    let e = found(store, id)?;
    let stored = store.summary(&e.id)?;
    // A finished experiment's summary counts its runs; counting them
    // again would walk every key of a 100,000-run experiment.
    let done = match (&stored, e.status) {
        (Some(s), Status::Completed | Status::Failed) => s.examples,
        _ => store.run_count(&e.id)?,
    };
    let (summary, live) = match stored {
        Some(s) => (Some(s), false),
        None if done > 0 => {
            let runs = store.run_scores(&e.id)?;
            let seed = compare::seed(&e);
            (
                Some(stats::summarise(
                    &runs,
                    &e.score_names,
                    seed,
                    LIVE_BOOTSTRAP,
                )),
                true,
            )
        }
        None => (None, false),
    };
    let all_groups = store.groups()?;
    let cell = cell_of(&all_groups, &e.id);
    let groups = groups_of(&all_groups, &e.id);
    Ok(ExperimentView {
        cell,
        method: method_of(&e),
        dataset: file_name(&e.dataset_path),
        scores: summary.as_ref().map(scores_of).unwrap_or_default(),
        summary,
        live,
        done,
        groups,
        experiment: e,
    })
}

/// A window of an experiment's runs, without their calls, trace and logs
/// (the example page has those).
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub index: u32,
    pub example_id: String,
    pub question: String,
    pub answer: Option<String>,
    pub scores: BTreeMap<String, f64>,
    pub error: Option<String>,
    pub latency_ms: f64,
    pub tokens: u64,
    /// The headline score's value as 0-1 (None: failed or not scored):
    /// the grid's colour.
    pub headline: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunWindow {
    pub experiment: String,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub headline: Option<String>,
    pub rows: Vec<RunRow>,
}

/// Parses `offset` and `limit` of a window (limit 1..=max).
pub fn window(
    pairs: &BTreeMap<String, String>,
    default_limit: usize,
    max: usize,
    allowed: &[&str],
) -> Result<(usize, usize), ViewError> {
    let mut offset = 0;
    let mut limit = default_limit;
    for (k, v) in pairs {
        match k.as_str() {
            "offset" | "from" => {
                offset = v
                    .parse()
                    .map_err(|_| ViewError::bad("offset", format!("{v:?} is not a count")))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| ViewError::bad("limit", format!("{v:?}: use 1 to {max}")))?
            }
            "token" => {}
            other if allowed.contains(&other) => {}
            other => {
                return Err(ViewError::BadParam {
                    param: "query",
                    message: format!("unknown parameter {other:?}"),
                });
            }
        }
    }
    Ok((offset, limit))
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

pub fn run_window(
    store: &Store,
    id: &str,
    offset: usize,
    limit: usize,
    headline: Option<&str>,
) -> Result<RunWindow, ViewError> {
    runs_of(store, &found(store, id)?, offset, limit, headline)
}

/// The score an experiment's examples are coloured by: the one asked for
/// (`headline=`, which must be one of its scores), else its first.
pub fn headline_of(e: &Experiment, asked: Option<&str>) -> Result<Option<String>, ViewError> {
    match asked {
        Some(h) if e.score_names.iter().any(|n| n == h) => Ok(Some(h.to_string())),
        Some(h) => Err(ViewError::bad(
            "headline",
            format!(
                "{h:?} is not a score of {} (it has {})",
                e.id,
                e.score_names.join(", ")
            ),
        )),
        None => Ok(e.score_names.first().cloned()),
    }
}

/// [`run_window`] of an experiment already read, coloured by `headline`
/// (see [`headline_of`]).
pub fn runs_of(
    store: &Store,
    e: &Experiment,
    offset: usize,
    limit: usize,
    headline: Option<&str>,
) -> Result<RunWindow, ViewError> {
    let headline = headline_of(e, headline)?;
    let mut rows = Vec::new();
    for r in store.runs_window(&e.id, offset as u32, limit)? {
        rows.push(RunRow {
            headline: headline.as_ref().and_then(|h| {
                if r.error.is_some() {
                    None
                } else {
                    r.scores.get(h).map(|v| v.clamp(0.0, 1.0))
                }
            }),
            index: r.index,
            example_id: r.example_id,
            question: one_line(&r.question, 160),
            answer: r.answer.map(|a| one_line(&a, 160)),
            scores: r.scores,
            error: r.error.map(|e| format!("{}: {}", e.kind, e.message)),
            latency_ms: r.latency_ms,
            tokens: r.prompt_tokens + r.completion_tokens,
        });
    }
    Ok(RunWindow {
        experiment: e.id.clone(),
        total: e.example_ids.len(),
        offset,
        limit,
        headline,
        rows,
    })
}

/// One example: the whole run record, its trace in a window.
#[derive(Clone, Debug, Serialize)]
pub struct ExampleView {
    pub experiment: String,
    pub experiment_name: String,
    pub run: RunRecord,
    /// Trace steps `[from, from + steps.len())` of `trace_len`.
    pub trace_from: usize,
    pub trace_len: usize,
    pub steps: Vec<Step>,
    /// Tool calls by tool: calls, failures, total latency.
    pub tools: Vec<ToolUse>,
}

/// A trace step as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub n: usize,
    pub kind: String,
    pub content: String,
    /// An error step (a failed tool call, a parse error).
    pub error: bool,
    /// A `tool_call` step, read.
    pub tool: Option<ToolCall>,
}

/// A tool call as the runner records it (`tool_call` steps: JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ToolCall {
    pub tool: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub latency_ms: Option<f64>,
}

impl ToolCall {
    fn parse(content: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(content).unwrap_or_default();
        let text = |k: &str| match &v[k] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        Self {
            tool: text("tool").unwrap_or_else(|| "?".into()),
            input: text("input").unwrap_or_default(),
            output: text("output"),
            error: text("error"),
            latency_ms: v["latency_ms"].as_f64(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolUse {
    pub tool: String,
    pub calls: usize,
    pub failures: usize,
    /// Summed over its calls.
    pub latency_ms: f64,
}

pub const TRACE_WINDOW: usize = 100;

pub fn example_view(
    store: &Store,
    id: &str,
    index: u32,
    trace_from: usize,
    trace_limit: usize,
) -> Result<ExampleView, ViewError> {
    let e = found(store, id)?;
    let run = store
        .runs_window(&e.id, index, 1)?
        .into_iter()
        .find(|r| r.index == index)
        .ok_or_else(|| ViewError::NotFound(format!("experiment {} has no run {index}", e.id)))?;
    let trace_len = run.trace.len();
    let from = trace_from.min(trace_len);
    let steps: Vec<Step> = run
        .trace
        .iter()
        .enumerate()
        .skip(from)
        .take(trace_limit)
        .map(|(n, s)| {
            let tool = (s.kind == "tool_call").then(|| ToolCall::parse(&s.content));
            Step {
                n,
                error: tool.as_ref().is_some_and(|t| t.error.is_some())
                    || s.content.starts_with("tool_error")
                    || s.content.starts_with("parse_error"),
                kind: s.kind.clone(),
                content: s.content.clone(),
                tool,
            }
        })
        .collect();
    let mut tools: BTreeMap<String, ToolUse> = BTreeMap::new();
    for s in run.trace.iter().filter(|s| s.kind == "tool_call") {
        let call = ToolCall::parse(&s.content);
        let t = tools.entry(call.tool.clone()).or_insert(ToolUse {
            tool: call.tool.clone(),
            calls: 0,
            failures: 0,
            latency_ms: 0.0,
        });
        t.calls += 1;
        t.failures += usize::from(call.error.is_some());
        t.latency_ms += call.latency_ms.unwrap_or(0.0);
    }
    let mut run = run;
    // The window carries the steps; the record does not repeat them.
    run.trace.clear();
    Ok(ExampleView {
        experiment: e.id.clone(),
        experiment_name: e.name.clone(),
        run,
        trace_from: from,
        trace_len,
        steps,
        tools: tools.into_values().collect(),
    })
}

/// Two experiments or more on their shared examples, against the first.
#[derive(Clone, Debug, Serialize)]
pub struct CompareView {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    /// Each experiment's sweep-cell labels, when it is one.
    pub cells: Vec<Option<String>>,
    pub comparisons: Vec<Comparison>,
    pub headline: Option<String>,
    /// The scores the first experiment has (what `headline` may be).
    pub score_names: Vec<String>,
    /// Examples whose headline score differs between the first and each
    /// other experiment.
    pub differing: Vec<DifferingExample>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DifferingExample {
    pub against: String,
    pub index: u32,
    pub other_index: u32,
    pub example_id: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub answer_a: Option<String>,
    pub answer_b: Option<String>,
    /// B scored lower than A.
    pub regression: bool,
}

pub fn parse_ids(pairs: &BTreeMap<String, String>) -> Result<Vec<String>, ViewError> {
    let mut ids = None;
    for (k, v) in pairs {
        match k.as_str() {
            "ids" => ids = Some(v.clone()),
            "token" | "regressions" | "headline" => {}
            other => {
                return Err(ViewError::BadParam {
                    param: "query",
                    message: format!("unknown parameter {other:?}"),
                });
            }
        }
    }
    let ids: Vec<String> = ids
        .ok_or_else(|| {
            ViewError::bad(
                "ids",
                "missing: give two experiment ids or more, comma-separated",
            )
        })?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() < 2 {
        return Err(ViewError::bad(
            "ids",
            "give two experiment ids or more, comma-separated",
        ));
    }
    Ok(ids)
}

/// The experiments named, compared against the first; `headline` picks
/// the score whose differing examples are listed (default: the first).
#[allow(clippy::type_complexity)]
pub fn compare_view(
    store: &Store,
    ids: &[String],
    headline: Option<&str>,
) -> Result<(CompareView, Vec<(Experiment, Vec<RunScores>)>), ViewError> {
    let mut loaded = Vec::new();
    for id in ids {
        let e = match store.find(id) {
            Ok(e) => e,
            Err(StoreError::NotFound(_)) => {
                return Err(ViewError::NotFound(format!("no experiment {id:?}")));
            }
            Err(e) => return Err(e.into()),
        };
        let runs = store.run_scores(&e.id)?;
        loaded.push((e, runs));
    }
    let others: Vec<(&Experiment, &[RunScores])> =
        loaded[1..].iter().map(|(e, r)| (e, r.as_slice())).collect();
    let comparisons = compare::compare_with_baseline((&loaded[0].0, &loaded[0].1), &others, 0)
        .map_err(|e| ViewError::bad("ids", e.to_string()))?;
    let headline = headline_of(&loaded[0].0, headline)?;
    let mut differing = Vec::new();
    if let Some(h) = &headline {
        let by_id: BTreeMap<&str, &RunScores> = loaded[0]
            .1
            .iter()
            .map(|r| (r.example_id.as_str(), r))
            .collect();
        for (e, runs) in &loaded[1..] {
            for rb in runs {
                let Some(ra) = by_id.get(rb.example_id.as_str()) else {
                    continue;
                };
                let (a, b) = (ra.score_value(h), rb.score_value(h));
                if a != b {
                    differing.push(DifferingExample {
                        against: e.id.clone(),
                        index: ra.index,
                        other_index: rb.index,
                        example_id: rb.example_id.clone(),
                        regression: b.unwrap_or(0.0) < a.unwrap_or(0.0),
                        a,
                        b,
                        answer_a: ra.answer.clone(),
                        answer_b: rb.answer.clone(),
                    });
                }
            }
        }
    }
    Ok((
        CompareView {
            ids: loaded.iter().map(|(e, _)| e.id.clone()).collect(),
            names: loaded.iter().map(|(e, _)| e.name.clone()).collect(),
            cells: {
                let groups = store.groups()?;
                loaded
                    .iter()
                    .map(|(e, _)| cell_of(&groups, &e.id))
                    .collect()
            },
            comparisons,
            headline,
            score_names: loaded[0].0.score_names.clone(),
            differing,
        },
        loaded,
    ))
}

/// A sweep group: its cells with their headline scores.
#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    pub group: Group,
    pub cells: Vec<GroupCell>,
    pub headline: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupCell {
    pub labels: Vec<String>,
    /// The experiment, training run or optimization run the cell is.
    pub target: Option<String>,
    pub kind: GroupKind,
    pub status: Option<String>,
    pub headline: Option<Score>,
    pub latency_p50_ms: Option<f64>,
}

impl GroupView {
    /// The cells "compare every cell against the first" compares: the
    /// finished experiments, in grid order.
    pub fn comparable(&self) -> Vec<String> {
        self.cells
            .iter()
            .filter(|c| {
                c.kind == GroupKind::Experiments && c.status.as_deref() == Some("COMPLETED")
            })
            .filter_map(|c| c.target.clone())
            .collect()
    }
}

pub fn group_view(store: &Store, id: &str) -> Result<GroupView, ViewError> {
    let g = store
        .find_group(id)?
        .ok_or_else(|| ViewError::NotFound(format!("no sweep group {id:?}")))?;
    let mut headline: Option<String> = None;
    let mut cells = Vec::new();
    for m in &g.members {
        let mut cell = GroupCell {
            labels: m.labels.clone(),
            target: None,
            kind: g.kind,
            status: None,
            headline: None,
            latency_p50_ms: None,
        };
        if let Some(eid) = &m.experiment_id {
            cell.target = Some(eid.clone());
            cell.kind = GroupKind::Experiments;
            if let Ok(e) = store.experiment(eid) {
                cell.status = Some(e.status.to_string());
                if headline.is_none() {
                    headline = e.score_names.first().cloned();
                }
                if let (Some(s), Some(h)) = (store.summary(eid)?, &headline) {
                    cell.headline = scores_of(&s).into_iter().find(|x| &x.name == h);
                    cell.latency_p50_ms = Some(s.latency.p50_ms);
                }
            }
        } else if let Some(t) = &m.training_run {
            cell.target = Some(t.clone());
            cell.kind = GroupKind::Training;
            cell.status = store.training_run(t)?.map(|r| format!("{:?}", r.status));
        } else if let Some(o) = &m.optimization {
            cell.target = Some(o.clone());
            cell.kind = GroupKind::Optimization;
            cell.status = store.optimization(o)?.map(|r| format!("{:?}", r.status));
        }
        cells.push(cell);
    }
    Ok(GroupView {
        group: g,
        cells,
        headline,
    })
}

/// What the list page shows beside experiments: groups, training runs and
/// optimization runs, newest last.
#[derive(Clone, Debug, Serialize)]
pub struct OtherRuns {
    pub groups: Vec<GroupLine>,
    pub training: Vec<(String, String, String)>,
    pub optimizations: Vec<(String, String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupLine {
    pub id: String,
    pub name: String,
    pub kind: GroupKind,
    pub axes: Vec<String>,
    pub cells: usize,
}

pub fn other_runs(store: &Store) -> Result<OtherRuns, ViewError> {
    Ok(OtherRuns {
        groups: store
            .groups()?
            .into_iter()
            .map(|g| GroupLine {
                cells: g.members.len(),
                id: g.id,
                name: g.name,
                kind: g.kind,
                axes: g.axes,
            })
            .collect(),
        training: store
            .training_runs()?
            .into_iter()
            .map(|r| {
                let what = format!("{} on {}", r.method, file_name(&r.data_path));
                (r.id, what, format!("{:?}", r.status))
            })
            .collect(),
        optimizations: store
            .optimizations()?
            .into_iter()
            .map(|r| (r.id, r.name, format!("{:?}", r.status)))
            .collect(),
    })
}

/// What changed since the last look, for the live feed: status and run
/// count of every experiment (cheap: no summaries, no texts).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    pub id: String,
    pub status: Status,
    pub done: usize,
    pub n: usize,
}

pub fn progress(store: &Store, only: Option<&str>) -> Result<Vec<Progress>, ViewError> {
    let mut out = Vec::new();
    let list = match only {
        Some(id) => vec![found(store, id)?],
        None => store.experiments()?,
    };
    for e in list {
        let done = if matches!(e.status, Status::Running | Status::Pending) || only.is_some() {
            store.run_count(&e.id)?
        } else {
            e.example_ids.len()
        };
        out.push(Progress {
            done,
            n: e.example_ids.len(),
            status: e.status,
            id: e.id,
        });
    }
    Ok(out)
}
