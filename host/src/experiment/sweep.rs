//! Sweeps: a config's `[sweep]` table expands into a grid of configs, one
//! per combination of the listed values: experiment configs for `run`,
//! train configs for `train dpo` (any config type, through
//! [`Sweep::expand`]).
//!
//! ```toml
//! [sweep]
//! # key: a dotted path into this config; value: the list to try
//! "generation.temperature" = [0.0, 0.7]
//! method = [
//!   { plugin = "naive", label = "naive" },
//!   { plugin = "cot", params = { max_tokens = 128 } },
//! ]
//! ```
//!
//! Each cell is the config with those paths replaced, checked like any
//! config; its text (what the experiment stores and `verify` re-runs) says
//! which cell it is. A table value may carry `label` to name it in tables;
//! otherwise a table is named by its `plugin`, other values by themselves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::experiment::config::{ConfigError, ConfigFile};
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::Progress;
use crate::results::stats::Summary;
use crate::results::store::{Experiment, Group, GroupKind, GroupMember, Status, Store, StoreError};

/// One cell of the grid: an experiment config, or another config type.
#[derive(Clone, Debug)]
pub struct Cell<C = ConfigFile> {
    /// Label of the value on each axis, in axis order.
    pub labels: Vec<String>,
    pub config: C,
}

#[derive(Clone, Debug)]
pub struct Sweep<C = ConfigFile> {
    pub path: PathBuf,
    pub name: String,
    pub text: String,
    pub sha256: String,
    pub axes: Vec<String>,
    pub cells: Vec<Cell<C>>,
}

/// Sweep grids beyond this are almost always a typo (a list pasted twice).
const MAX_CELLS: usize = 1000;

/// True when the config text has a `[sweep]` table.
pub fn is_sweep(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key("sweep"))
        .unwrap_or(false)
}

impl Sweep {
    pub fn load(path: &Path) -> anyhow::Result<Sweep> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Ok(Self::parse(path, &text)?)
    }

    /// An experiment config's grid.
    pub fn parse(path: &Path, text: &str) -> Result<Sweep, ConfigError> {
        Self::expand(path, text, "sweep", ConfigFile::parse)
    }
}

impl<C> Sweep<C> {
    /// The grid of any config type: `parse_cell` checks one cell's text
    /// (and, given the whole file, places its syntax errors). The group's
    /// name is the config's top-level `name`, else `default_name`.
    pub fn expand(
        path: &Path,
        text: &str,
        default_name: &str,
        parse_cell: impl Fn(&Path, &str) -> Result<C, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let whole = |field: &str, msg: String| ConfigFile::error_in(path, text, field, msg);
        let mut base: toml::Table = toml::from_str(text).map_err(|e| {
            // The plain parser gives the precise place of a syntax error.
            parse_cell(path, text)
                .err()
                .unwrap_or_else(|| whole("", e.message().to_string()))
        })?;
        let Some(toml::Value::Table(grid)) = base.remove("sweep") else {
            return Err(whole(
                "sweep",
                "must be a table of `\"dotted.path\" = [values]`".into(),
            ));
        };
        if grid.is_empty() {
            return Err(whole("sweep", "lists no axis".into()));
        }
        let name = base
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or(default_name)
            .to_string();
        let mut axes: Vec<(String, Vec<(String, toml::Value)>)> = Vec::new();
        for (key, values) in grid {
            let at = |msg: String| sweep_key_error(path, text, &key, msg);
            if matches!(key.split('.').next(), Some("name" | "sweep" | "seed")) || key.is_empty() {
                return Err(at(format!(
                    "cannot sweep {key:?} (name and seed identify the experiment; \
                     a different seed is a different experiment, not a cell)"
                )));
            }
            let toml::Value::Array(values) = values else {
                return Err(at(format!("sweep.{key:?} must be a list of values")));
            };
            if values.is_empty() {
                return Err(at(format!("sweep.{key:?} lists no value")));
            }
            let mut labelled = Vec::new();
            for v in values {
                let (label, v) = label_of(v);
                if labelled.iter().any(|(l, _)| *l == label) {
                    return Err(at(format!(
                        "two values of sweep.{key:?} are both labelled {label:?}; \
                         add `label = \"...\"` to tell them apart"
                    )));
                }
                labelled.push((label, v));
            }
            axes.push((key, labelled));
        }
        let size: usize = axes.iter().map(|(_, v)| v.len()).product();
        if size > MAX_CELLS {
            return Err(whole(
                "sweep",
                format!("expands to {size} cells (more than {MAX_CELLS})"),
            ));
        }

        let mut cells = Vec::with_capacity(size);
        for n in 0..size {
            // Row-major: the last axis varies fastest.
            let mut rest = n;
            let mut pick = vec![0; axes.len()];
            for (i, (_, values)) in axes.iter().enumerate().rev() {
                pick[i] = rest % values.len();
                rest /= values.len();
            }
            let mut table = base.clone();
            let mut labels = Vec::new();
            for ((key, values), &j) in axes.iter().zip(&pick) {
                let (label, value) = &values[j];
                set_path(&mut table, key, value.clone())
                    .map_err(|m| sweep_key_error(path, text, key, m))?;
                labels.push(label.clone());
            }
            let desc: Vec<String> = axes
                .iter()
                .zip(&labels)
                .map(|((k, _), l)| format!("{k}={l}"))
                .collect();
            // The text names only this cell's values (not its place in the
            // grid nor the file's name), so a cell keeps its plan hash when
            // the grid grows.
            let cell_text = format!(
                "# sweep cell: {}\n{}",
                desc.join(", "),
                toml::to_string(&table).expect("a parsed table serialises")
            );
            let axis_keys: Vec<&str> = axes.iter().map(|(k, _)| k.as_str()).collect();
            let config = parse_cell(path, &cell_text)
                .map_err(|e| place(path, text, &axis_keys, &desc.join(", "), &e))?;
            cells.push(Cell { labels, config });
        }
        Ok(Sweep {
            path: path.to_path_buf(),
            name,
            text: text.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            axes: axes.into_iter().map(|(k, _)| k).collect(),
            cells,
        })
    }

    /// A config error or warning of `cell` placed in the sweep file (see
    /// [`place`]).
    pub fn place(&self, cell: &Cell<C>, e: &ConfigError) -> ConfigError {
        let axes: Vec<&str> = self.axes.iter().map(String::as_str).collect();
        let desc: Vec<String> = axes
            .iter()
            .zip(&cell.labels)
            .map(|(k, l)| format!("{k}={l}"))
            .collect();
        place(&self.path, &self.text, &axes, &desc.join(", "), e)
    }
}

/// A cell's config error (located in the cell's own text) placed in the
/// file the user wrote: at the sweep line of the axis it came from, else
/// where the field is written. `desc` names the cell (`method=cot`).
fn place(path: &Path, text: &str, axes: &[&str], desc: &str, e: &ConfigError) -> ConfigError {
    let field = dotted(&e.field);
    // An axis naming a field the config does not have (or a path through
    // one): the same in every cell, so none is named.
    let unknown = e.message.starts_with("unknown field");
    let names_unknown = |k: &str| unknown && (field == k || k.starts_with(&format!("{field}.")));
    if let Some(k) = axes.iter().find(|k| names_unknown(k)) {
        sweep_key_error(path, text, k, format!("{}: {}", e.field, e.message))
    } else if let Some(k) = axes.iter().find(|k| under_axis(&e.field, k)) {
        let message = format!("cell {desc}: {}: {}", e.field, e.message);
        sweep_key_error(path, text, k, message)
    } else {
        ConfigFile::error_in(path, text, &e.field, e.message.clone())
    }
}

/// How running a sweep went: the group and each cell's report.
pub struct SweepReport {
    pub group: Group,
    pub summaries: Vec<(Experiment, Summary)>,
}

/// Runs every cell of the grid in order, as one group. Re-running the same
/// sweep file continues its latest group: finished cells with the same plan
/// are kept, an interrupted one resumes, the rest run. A cell whose plan
/// (config, model, plugins, data, host build) matches a finished experiment
/// anywhere in the store reuses it, so growing a grid runs only the new
/// cells. `fresh` starts a new group and new experiments.
pub async fn run(
    sweep: &Sweep,
    paths: &Paths,
    store: &Store,
    fresh: bool,
    limit: Option<usize>,
    progress: &mut dyn Progress,
    mut announce: impl FnMut(usize, &Cell),
) -> anyhow::Result<SweepReport> {
    let mut group = open_group(store, sweep, GroupKind::Experiments, fresh)?;
    let mut summaries = Vec::new();
    for (i, cell) in sweep.cells.iter().enumerate() {
        announce(i, cell);
        let plan = Plan::from_config(cell.config.clone(), paths, limit)
            .await
            .map_err(|e| match e.downcast::<ConfigError>() {
                Ok(ce) => sweep.place(cell, &ce).into(),
                Err(e) => e,
            })?;
        for w in &plan.warnings {
            progress.warning(&sweep.place(cell, w).to_string());
        }
        let plan = Arc::new(plan);
        let candidate = match &group.members[i].experiment_id {
            Some(id) => Some(store.experiment(id)?),
            None if !fresh => store.experiments()?.into_iter().rev().find(|e| {
                e.plan_sha256 == plan.plan_sha256
                    && e.status == Status::Completed
                    && e.rescored_from.is_none()
            }),
            None => None,
        };
        let kept = match candidate {
            Some(e) if e.status == Status::Completed && e.plan_sha256 == plan.plan_sha256 => {
                store.summary(&e.id)?.map(|s| (e, s))
            }
            _ => None,
        };
        let (experiment, summary) = match kept {
            Some(done) => done,
            None => {
                // Each cell's peak memory is its own, not the sweep's so far.
                crate::results::stats::reset_peak_rss();
                let report = crate::experiment::runner::run(plan, store, fresh, progress).await?;
                (report.experiment, report.summary)
            }
        };
        group.members[i].experiment_id = Some(experiment.id.clone());
        store.put_group(&group)?;
        summaries.push((experiment, summary));
    }
    Ok(SweepReport { group, summaries })
}

/// The group a sweep continues, stored: the latest of the same file, kind
/// and size, or (`fresh`, or none) a new one with no cell run yet.
pub fn open_group<C>(
    store: &Store,
    sweep: &Sweep<C>,
    kind: GroupKind,
    fresh: bool,
) -> Result<Group, StoreError> {
    let previous = if fresh {
        None
    } else {
        store.groups()?.into_iter().rev().find(|g| {
            g.config_sha256 == sweep.sha256
                && g.kind == kind
                && g.members.len() == sweep.cells.len()
        })
    };
    let group = previous.unwrap_or_else(|| {
        let created_at = crate::results::store::now();
        let stamp: String = created_at
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect();
        Group {
            id: format!("{}-g{}-{}", sweep.name, &sweep.sha256[..6], &stamp[8..]),
            name: sweep.name.clone(),
            kind,
            config_path: sweep.path.display().to_string(),
            config_text: sweep.text.clone(),
            config_sha256: sweep.sha256.clone(),
            created_at,
            axes: sweep.axes.clone(),
            members: sweep
                .cells
                .iter()
                .map(|c| GroupMember {
                    labels: c.labels.clone(),
                    experiment_id: None,
                    training_run: None,
                    optimization: None,
                })
                .collect(),
        }
    });
    store.put_group(&group)?;
    Ok(group)
}

/// The label of a sweep value, and the value without its `label` key.
fn label_of(v: toml::Value) -> (String, toml::Value) {
    match v {
        toml::Value::Table(mut t) => {
            let explicit = t.remove("label").and_then(|l| l.as_str().map(String::from));
            let label = explicit
                .or_else(|| t.get("plugin").and_then(|p| p.as_str()).map(String::from))
                .unwrap_or_else(|| toml::Value::Table(t.clone()).to_string());
            (label, toml::Value::Table(t))
        }
        toml::Value::String(s) => (s.clone(), toml::Value::String(s)),
        other => (other.to_string(), other),
    }
}

/// Sets `a.b.c` in `table`, creating missing tables. A numeric part indexes
/// an existing array of tables (`indexes.0.strategy`); a numeric last part
/// replaces that element whole (`"indexes.0" = [{ strategy = "bm25" }, ...]`).
fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    let Some((last, walk)) = parts.split_last() else {
        return Err("empty path".into());
    };
    if let (Ok(n), Some((array, parent))) = (last.parse::<usize>(), walk.split_last()) {
        let t = table_at(table, parent, dotted)?;
        let Some(toml::Value::Array(items)) = t.get_mut(*array) else {
            return Err(format!("{array:?} in {dotted:?} is not an array"));
        };
        let len = items.len();
        return match items.get_mut(n) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(format!(
                "{array}.{n} in {dotted:?}: the config has {len} {array} entries"
            )),
        };
    }
    table_at(table, walk, dotted)?.insert(last.to_string(), value);
    Ok(())
}

/// The table at `walk` (numeric parts index arrays of tables).
fn table_at<'a>(
    table: &'a mut toml::Table,
    walk: &[&str],
    dotted: &str,
) -> Result<&'a mut toml::Table, String> {
    let mut t = table;
    let mut i = 0;
    while i < walk.len() {
        let part = walk[i];
        let next = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match next {
            toml::Value::Table(inner) => inner,
            toml::Value::Array(items) => {
                let Some(n) = walk.get(i + 1).and_then(|p| p.parse::<usize>().ok()) else {
                    return Err(format!(
                        "{part:?} in {dotted:?} is an array: name an element, as {part}.0"
                    ));
                };
                let len = items.len();
                i += 1;
                match items.get_mut(n) {
                    Some(toml::Value::Table(inner)) => inner,
                    Some(_) => return Err(format!("{part}.{n} in {dotted:?} is not a table")),
                    None => {
                        return Err(format!(
                            "{part}.{n} in {dotted:?}: the config has {len} {part} entries"
                        ));
                    }
                }
            }
            _ => return Err(format!("{part:?} in {dotted:?} is not a table")),
        };
        i += 1;
    }
    Ok(t)
}

/// A config error's field (`metrics[0].plugin`) written as a sweep key
/// (`metrics.0.plugin`).
fn dotted(field: &str) -> String {
    field.replace('[', ".").replace(']', "")
}

/// Whether a config error's `field` is the sweep `axis` or inside its value.
fn under_axis(field: &str, axis: &str) -> bool {
    let field = dotted(field);
    field == axis || field.starts_with(&format!("{axis}."))
}

/// An error placed on the line where `key` is written inside `[sweep]`.
fn sweep_key_error(path: &Path, text: &str, key: &str, message: String) -> ConfigError {
    let start = text.find("[sweep]").unwrap_or(0);
    let found = [format!("\"{key}\""), format!("'{key}'"), key.to_string()]
        .iter()
        .find_map(|k| text[start..].find(k.as_str()).map(|o| start + o));
    let mut e = ConfigFile::error_in(path, text, "sweep", message);
    if let Some(offset) = found {
        let before = &text[..offset];
        e.line = before.matches('\n').count() + 1;
        e.column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    }
    e.field = format!("sweep.{key}");
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_indexes_arrays_of_tables() {
        let mut t: toml::Table =
            toml::from_str("[[indexes]]\nname = \"a\"\n[[indexes]]\nname = \"b\"\n").unwrap();
        set_path(&mut t, "indexes.1.k1", toml::Value::Float(0.9)).unwrap();
        assert_eq!(t["indexes"][1]["k1"].as_float(), Some(0.9));
        assert!(t["indexes"][0].get("k1").is_none());
        let e = set_path(&mut t, "indexes.2.k1", toml::Value::Float(0.9)).unwrap_err();
        assert!(e.contains("has 2 indexes entries"), "{e}");
        let e = set_path(&mut t, "indexes.k1", toml::Value::Float(0.9)).unwrap_err();
        assert!(e.contains("name an element"), "{e}");
        let mut whole = toml::Table::new();
        whole.insert("name".into(), toml::Value::String("c".into()));
        set_path(&mut t, "indexes.0", toml::Value::Table(whole)).unwrap();
        assert_eq!(t["indexes"][0]["name"].as_str(), Some("c"));
        assert!(t["indexes"][0].get("k1").is_none());
        assert!(set_path(&mut t, "indexes.5", toml::Value::Integer(1)).is_err());
        set_path(&mut t, "method.params.k", toml::Value::Integer(3)).unwrap();
        assert_eq!(t["method"]["params"]["k"].as_integer(), Some(3));
    }

    const BASE: &str = r#"name = "grid"
seed = 3
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "data.jsonl"
[method]
plugin = "naive"
[[metrics]]
plugin = "f1"
"#;

    fn parse(extra: &str) -> Result<Sweep, ConfigError> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("data.jsonl"), "{}\n").unwrap();
        let p = d.path().join("s.toml");
        let text = format!("{BASE}{extra}");
        std::fs::write(&p, &text).unwrap();
        Sweep::parse(&p, &text)
    }

    #[test]
    fn expands_the_grid_in_row_major_order_with_labels() {
        let s = parse(
            "[sweep]\n\"generation.temperature\" = [0.0, 0.7]\nmethod = [{ plugin = \"naive\" }, { plugin = \"cot\", label = \"cot-long\", params = { max_tokens = 128 } }]\n",
        )
        .unwrap();
        assert_eq!(s.axes, ["generation.temperature", "method"]);
        let labels: Vec<Vec<String>> = s.cells.iter().map(|c| c.labels.clone()).collect();
        assert_eq!(
            labels,
            [
                ["0.0", "naive"],
                ["0.0", "cot-long"],
                ["0.7", "naive"],
                ["0.7", "cot-long"]
            ]
        );
        let c = &s.cells[3].config.config;
        assert_eq!(c.generation.temperature, 0.7);
        assert_eq!(c.method.plugin, "cot");
        assert_eq!(c.method.params_json(), r#"{"max_tokens":128}"#);
        assert_eq!((c.name.as_str(), c.seed), ("grid", 3));
        assert!(s.cells[3].config.text.starts_with("# sweep cell: "));
        assert!(s.cells[3].config.text.contains("method=cot-long"));
        assert!(is_sweep(&s.text) && !is_sweep(BASE));
    }

    #[test]
    fn a_bad_value_is_reported_at_its_sweep_line() {
        let e = parse("[sweep]\n\"generation.temperature\" = [0.0, 9.0]\n").unwrap_err();
        assert_eq!(e.line, 12, "{e}");
        assert_eq!(e.field, "sweep.generation.temperature");
        assert!(e.message.contains("temperature=9.0"), "{e}");
        assert!(e.message.contains("between 0 and 5"), "{e}");
    }

    #[test]
    fn an_unknown_path_is_reported_at_its_sweep_line() {
        // BASE has 10 lines: [sweep] is line 11, the axes from line 12.
        let e =
            parse("[sweep]\n\"run.concurrency\" = [1]\n\"method.parms.k\" = [1, 2]\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (13, "sweep.method.parms.k"),
            "{e}"
        );
        assert!(
            e.message.starts_with("method.parms: unknown field `parms`"),
            "{e}"
        );
        let e = parse("[sweep]\n\"metrics.0.plugn\" = [\"f1\"]\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (12, "sweep.metrics.0.plugn"),
            "{e}"
        );
        // An unknown key inside one value names that cell.
        let e =
            parse("[sweep]\nmethod = [{ plugin = \"naive\" }, { plugin = \"cot\", parms = {} }]\n")
                .unwrap_err();
        assert_eq!(e.line, 12, "{e}");
        assert!(
            e.message
                .starts_with("cell method=cot: method.parms: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn refuses_seed_axes_duplicate_labels_and_empty_lists() {
        let e = parse("[sweep]\nseed = [1, 2]\n").unwrap_err();
        assert!(e.message.contains("cannot sweep"), "{e}");
        let e = parse("[sweep]\nmethod = [{ plugin = \"naive\" }, { plugin = \"naive\" }]\n")
            .unwrap_err();
        assert!(e.message.contains("label"), "{e}");
        let e = parse("[sweep]\n\"run.concurrency\" = []\n").unwrap_err();
        assert!(e.message.contains("no value"), "{e}");
        assert_eq!(e.line, 12, "{e}");
    }

    #[test]
    fn an_error_outside_the_sweep_keeps_its_own_line() {
        let text = BASE.replace(
            "plugin = \"f1\"",
            "plugin = \"f1\"\nlimits = { timeout_ms = 0 }",
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("data.jsonl"), "{}\n").unwrap();
        let p = d.path().join("s.toml");
        let text = format!("{text}[sweep]\n\"generation.max_tokens\" = [8, 16]\n");
        let e = Sweep::parse(&p, &text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (11, "metrics[0].limits.timeout_ms"),
            "{e}"
        );
    }
}
