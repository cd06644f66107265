//! The method × optimization matrix: a sweep group whose axes mix *what*
//! an experiment computes (method, params, data) with *how fast* the
//! engine computes it (continuous batching through `run.concurrency`, the
//! prefix cache, the call cache). The second kind must not change a
//! single output — forge's batch-invariance promise — so the matrix is
//! read two ways: speed per cell against the sequential, uncached column,
//! and every answer and model output compared across each row.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::results::records::{Experiment, Group, GroupKind, RunRecord};
use crate::results::stats::Summary;
use crate::results::store::{Store, StoreError};

/// Config paths that change how fast a cell runs, never what it answers,
/// with the short name a column label gives each.
pub const OPTIMIZATION_AXES: &[&str] = &["run.concurrency", "model.prefix_cache_mib", "run.cache"];

/// A column's label part for one optimization axis value: `batch 8`,
/// `prefix on`, `call cache off`.
fn short_label(axis: &str, label: &str) -> String {
    match axis {
        "run.concurrency" if label == "1" => "sequential".into(),
        "run.concurrency" => format!("batch {label}"),
        "model.prefix_cache_mib" if label == "0" => "prefix off".into(),
        "model.prefix_cache_mib" => "prefix on".into(),
        "run.cache" if label == "true" => "call cache on".into(),
        "run.cache" => "call cache off".into(),
        _ => format!("{axis}={label}"),
    }
}

/// One cell that has run: its experiment and summary.
#[derive(Clone, Debug)]
pub struct MatrixCell {
    pub experiment: Experiment,
    pub summary: Summary,
}

/// A group read as a matrix: rows are the values of the other axes (the
/// methods), columns the combinations of the optimization axes, in sweep
/// order; the first column is the baseline speedups are measured against
/// (a config lists the sequential, uncached values first).
#[derive(Clone, Debug)]
pub struct Matrix {
    pub group: Group,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `cells[row][column]`; None where the cell has not run yet.
    pub cells: Vec<Vec<Option<MatrixCell>>>,
}

impl Matrix {
    /// Whether `group`'s axes make a matrix: an experiment sweep with at
    /// least one optimization axis.
    pub fn applies(group: &Group) -> bool {
        group.kind == GroupKind::Experiments
            && group
                .axes
                .iter()
                .any(|a| OPTIMIZATION_AXES.contains(&a.as_str()))
    }

    /// The matrix of `group`, or None when its axes are not one.
    pub fn gather(store: &Store, group: &Group) -> Result<Option<Matrix>, StoreError> {
        if !Self::applies(group) {
            return Ok(None);
        }
        let is_opt: Vec<bool> = group
            .axes
            .iter()
            .map(|a| OPTIMIZATION_AXES.contains(&a.as_str()))
            .collect();
        let place = |labels: &[String]| -> (String, String) {
            let mut row = Vec::new();
            let mut col = Vec::new();
            for ((axis, label), opt) in group.axes.iter().zip(labels).zip(&is_opt) {
                if *opt {
                    col.push(short_label(axis, label));
                } else {
                    row.push(label.clone());
                }
            }
            let row = if row.is_empty() {
                "all".to_string()
            } else {
                row.join(" · ")
            };
            (row, col.join(" · "))
        };
        let mut rows: Vec<String> = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for m in &group.members {
            let (r, c) = place(&m.labels);
            if !rows.contains(&r) {
                rows.push(r);
            }
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let mut cells = vec![vec![None; columns.len()]; rows.len()];
        for m in &group.members {
            let Some(id) = &m.experiment_id else { continue };
            let experiment = store.experiment(id)?;
            let Some(summary) = store.summary(id)? else {
                continue;
            };
            let (r, c) = place(&m.labels);
            let ri = rows.iter().position(|x| *x == r).expect("row listed");
            let ci = columns.iter().position(|x| *x == c).expect("column listed");
            cells[ri][ci] = Some(MatrixCell {
                experiment,
                summary,
            });
        }
        Ok(Some(Matrix {
            group: group.clone(),
            rows,
            columns,
            cells,
        }))
    }

    /// A cell's throughput over its row's baseline cell (examples/s), when
    /// both have run.
    pub fn speedup(&self, row: usize, column: usize) -> Option<f64> {
        let base = self.cells[row][0].as_ref()?.summary.examples_per_s;
        let this = self.cells[row][column].as_ref()?.summary.examples_per_s;
        (base > 0.0).then(|| this / base)
    }

    /// Every row's cells compared, example by example, with the row's
    /// baseline cell (see [`compare_outputs`]).
    pub fn invariance(&self, store: &Store) -> Result<Invariance, StoreError> {
        let mut rows = Vec::new();
        for (r, cells) in self.rows.iter().zip(&self.cells) {
            let mut columns = Vec::new();
            for (c, cell) in self.columns.iter().zip(cells) {
                let Some(cell) = cell else { continue };
                let mut outputs = Vec::new();
                store.for_each_run(&cell.experiment.id, |run| {
                    outputs.push(Output::of(&run));
                    true
                })?;
                columns.push((c.clone(), outputs));
            }
            rows.push((r.clone(), columns));
        }
        Ok(compare_outputs(&rows))
    }
}

/// What one example produced, as the invariance check compares it: the
/// answer, the error kind, and a digest of every model output in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub example_id: String,
    pub answer: Option<String>,
    pub error: Option<String>,
    /// sha256 of the model calls' outputs, in call order.
    pub calls_sha256: String,
}

impl Output {
    pub fn of(run: &RunRecord) -> Output {
        let mut h = Sha256::new();
        for c in &run.calls {
            h.update((c.output.len() as u64).to_le_bytes());
            h.update(c.output.as_bytes());
        }
        Output {
            example_id: run.example_id.clone(),
            answer: run.answer.clone(),
            error: run.error.as_ref().map(|e| e.kind.clone()),
            calls_sha256: hex::encode(h.finalize()),
        }
    }
}

/// One example whose output differs from its row's baseline cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub row: String,
    pub column: String,
    pub example_id: String,
    /// What differs: `answer`, `error`, `model outputs`, or `missing`.
    pub what: String,
    pub baseline: String,
    pub other: String,
}

/// The outcome of comparing outputs across the optimization axis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Invariance {
    /// Example pairs compared (each non-baseline cell's examples).
    pub compared: usize,
    pub differences: Vec<Difference>,
}

impl Invariance {
    pub fn holds(&self) -> bool {
        self.differences.is_empty()
    }

    /// Whether every difference is an example that ran out of time in one
    /// cell (`timeout`, `deadline`): wall-clock budgets are not part of the
    /// promise — examples in flight together each take longer.
    pub fn only_time_budgets(&self) -> bool {
        !self.holds()
            && self.differences.iter().all(|d| {
                d.what == "error"
                    && ["timeout", "deadline"]
                        .iter()
                        .any(|k| d.baseline == *k || d.other == *k)
            })
    }

    /// One line: `identical outputs: 96 example pairs in 3 rows` or the
    /// count of differences and the first few.
    pub fn text(&self) -> String {
        if self.holds() {
            return format!(
                "outputs identical across the optimization axis: {} example pairs compared, every answer and model output the same",
                self.compared
            );
        }
        let mut o = format!(
            "OUTPUTS DIFFER across the optimization axis: {} of {} example pairs",
            self.differences.len(),
            self.compared
        );
        for d in self.differences.iter().take(5) {
            o += &format!(
                "\n  {} / {} / example {}: {} {:?} (baseline {:?})",
                d.row, d.column, d.example_id, d.what, d.other, d.baseline
            );
        }
        if self.differences.len() > 5 {
            o += &format!("\n  … and {} more", self.differences.len() - 5);
        }
        o
    }
}

/// One row's outputs: its label and, per column, the column's label and
/// every example's output.
pub type RowOutputs = (String, Vec<(String, Vec<Output>)>);

/// Compares, in each row, every column's outputs with the first column's,
/// by example id.
pub fn compare_outputs(rows: &[RowOutputs]) -> Invariance {
    let mut inv = Invariance::default();
    for (row, columns) in rows {
        let Some(((_, base), rest)) = columns.split_first() else {
            continue;
        };
        let base: BTreeMap<&str, &Output> =
            base.iter().map(|o| (o.example_id.as_str(), o)).collect();
        for (column, outputs) in rest {
            let mut differ = |example_id: &str, what: &str, b: String, o: String| {
                inv.differences.push(Difference {
                    row: row.clone(),
                    column: column.clone(),
                    example_id: example_id.to_string(),
                    what: what.into(),
                    baseline: b,
                    other: o,
                })
            };
            let mut seen = 0;
            for o in outputs {
                inv.compared += 1;
                let Some(b) = base.get(o.example_id.as_str()) else {
                    differ(
                        &o.example_id,
                        "missing",
                        "no such example".into(),
                        "ran".into(),
                    );
                    continue;
                };
                seen += 1;
                if b.error != o.error {
                    differ(&o.example_id, "error", fmt(&b.error), fmt(&o.error));
                } else if b.answer != o.answer {
                    differ(&o.example_id, "answer", fmt(&b.answer), fmt(&o.answer));
                } else if b.calls_sha256 != o.calls_sha256 {
                    differ(
                        &o.example_id,
                        "model outputs",
                        b.calls_sha256[..12].into(),
                        o.calls_sha256[..12].into(),
                    );
                }
            }
            if seen < base.len() {
                let have: Vec<&str> = outputs.iter().map(|o| o.example_id.as_str()).collect();
                for id in base.keys().filter(|id| !have.contains(id)) {
                    differ(id, "missing", "ran".into(), "no such example".into());
                }
            }
        }
    }
    inv
}

fn fmt(x: &Option<String>) -> String {
    x.clone().unwrap_or_else(|| "none".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: &str, answer: &str, calls: &str) -> Output {
        Output {
            example_id: id.into(),
            answer: Some(answer.into()),
            error: None,
            calls_sha256: format!("{calls:0>64}"),
        }
    }

    #[test]
    fn equal_outputs_hold_and_every_kind_of_difference_is_named() {
        let base = vec![out("a", "Paris", "1"), out("b", "4", "2")];
        let same = ("batch 8".to_string(), base.clone());
        let rows = vec![(
            "naive".to_string(),
            vec![("sequential".to_string(), base.clone()), same.clone()],
        )];
        let inv = compare_outputs(&rows);
        assert!(inv.holds(), "{inv:?}");
        assert_eq!(inv.compared, 2);
        assert!(inv.text().contains("identical"));

        let mut failed = out("b", "4", "2");
        failed.error = Some("timeout".into());
        let changed = vec![
            (
                "answer".to_string(),
                vec![out("a", "Lyon", "1"), out("b", "4", "2")],
            ),
            (
                "calls".to_string(),
                vec![out("a", "Paris", "9"), out("b", "4", "2")],
            ),
            ("error".to_string(), vec![out("a", "Paris", "1"), failed]),
            ("short".to_string(), vec![out("a", "Paris", "1")]),
        ];
        let mut columns = vec![("sequential".to_string(), base)];
        columns.extend(changed);
        let inv = compare_outputs(&[("cot".to_string(), columns)]);
        let what: Vec<(&str, &str)> = inv
            .differences
            .iter()
            .map(|d| (d.column.as_str(), d.what.as_str()))
            .collect();
        assert_eq!(
            what,
            [
                ("answer", "answer"),
                ("calls", "model outputs"),
                ("error", "error"),
                ("short", "missing")
            ]
        );
        assert!(!inv.holds() && !inv.only_time_budgets());
        assert!(inv.text().contains("OUTPUTS DIFFER") && inv.text().contains("Lyon"));

        let mut late = out("a", "Paris", "1");
        late.error = Some("deadline".into());
        let rows = vec![(
            "react".to_string(),
            vec![
                ("sequential".to_string(), vec![out("a", "Paris", "1")]),
                ("batch 8".to_string(), vec![late]),
            ],
        )];
        assert!(compare_outputs(&rows).only_time_budgets());
    }

    #[test]
    fn column_labels_say_what_is_on() {
        assert_eq!(short_label("run.concurrency", "1"), "sequential");
        assert_eq!(short_label("run.concurrency", "8"), "batch 8");
        assert_eq!(short_label("model.prefix_cache_mib", "0"), "prefix off");
        assert_eq!(short_label("model.prefix_cache_mib", "256"), "prefix on");
        assert_eq!(short_label("run.cache", "false"), "call cache off");
    }
}
