//! The method × optimization matrix ([`crate::results::matrix`]) as a
//! report: throughput heat maps, speedup over each method's sequential,
//! uncached cell, latency percentiles, peak memory and prefill saved per
//! cell, the accuracy–latency Pareto chart across methods, and whether
//! every output stayed the same. The charts serve `report` and `view`.

use std::path::Path;

use anyhow::Context;

use super::charts::{self, Series};
use super::fmt_score;
use super::page::{Chart, Page, Section, Written, write_page};
use crate::results::matrix::{Invariance, Matrix, MatrixCell};
use crate::results::stats::Summary;

/// The score the matrix reads accuracy by: the first cell's first score.
pub fn headline(m: &Matrix) -> Option<String> {
    m.cells
        .iter()
        .flatten()
        .flatten()
        .find_map(|c| c.experiment.score_names.first().cloned())
}

/// `f` of every cell's summary, `[row][column]`.
fn grid(m: &Matrix, f: impl Fn(&Summary) -> Option<f64>) -> Vec<Vec<Option<f64>>> {
    m.cells
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| c.as_ref().and_then(|c| f(&c.summary)))
                .collect()
        })
        .collect()
}

fn speedups(m: &Matrix) -> Vec<Vec<Option<f64>>> {
    (0..m.rows.len())
        .map(|r| (0..m.columns.len()).map(|c| m.speedup(r, c)).collect())
        .collect()
}

/// The cell each row is read by on the accuracy axis: its baseline, else
/// the first that ran (accuracy is the same in every column when the
/// invariance holds).
fn row_cell(row: &[Option<MatrixCell>]) -> Option<&MatrixCell> {
    row.iter().flatten().next()
}

/// The matrix's charts, as `report` writes and `view` shows them.
pub fn charts(m: &Matrix) -> anyhow::Result<Vec<Chart>> {
    let chart = |file: &str, caption: &str, svg: String| Chart {
        file: file.into(),
        caption: caption.into(),
        svg,
    };
    let mut out = vec![
        chart(
            "throughput_examples.svg",
            "Examples per second of wall time in each cell: methods down, optimizations across (darker is faster).",
            charts::heat_map(
                "examples / s",
                &m.rows,
                &m.columns,
                &grid(m, |s| Some(s.examples_per_s)),
                &|v| format!("{v:.2}"),
            )?,
        ),
        chart(
            "throughput_tokens.svg",
            "Generated tokens per second of wall time in each cell.",
            charts::heat_map(
                "generated tokens / s",
                &m.rows,
                &m.columns,
                &grid(m, |s| Some(s.tokens_per_s)),
                &|v| format!("{v:.1}"),
            )?,
        ),
        chart(
            "speedup.svg",
            "Throughput over each method's first (sequential, uncached) cell, on a log scale; the dashed line is no change.",
            charts::ratio_bars(
                "speedup over the sequential, uncached cell",
                "examples/s ÷ baseline's (log scale)",
                &m.rows,
                &m.columns,
                &speedups(m),
            )?,
        ),
    ];
    if let Some(h) = headline(m) {
        let series: Vec<Series> = m
            .rows
            .iter()
            .zip(&m.cells)
            .filter_map(|(r, row)| {
                Some(Series {
                    label: r.clone(),
                    summary: row_cell(row)?.summary.clone(),
                    runs: vec![],
                })
            })
            .collect();
        out.push(chart(
            "accuracy_vs_latency.svg",
            "Each method's headline score against its median latency per example in its baseline cell; the line joins the Pareto frontier.",
            charts::accuracy_vs_latency(&series, &h)?,
        ));
    }
    Ok(out)
}

/// A Markdown table of the grid, each cell printed by `f` ("—" when it has
/// not run).
fn table(m: &Matrix, f: impl Fn(usize, usize, &MatrixCell) -> String) -> String {
    let mut o = format!("| method | {} |\n", m.columns.join(" | "));
    o += &format!("|---|{}\n", "---|".repeat(m.columns.len()));
    for (r, (label, row)) in m.rows.iter().zip(&m.cells).enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| cell.as_ref().map_or("—".into(), |x| f(r, c, x)))
            .collect();
        o += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    o
}

fn seconds(ms: f64) -> String {
    format!("{:.2}", ms / 1000.0)
}

pub fn sections(m: &Matrix, inv: &Invariance) -> Vec<Section> {
    let speed = |r: usize, c: usize| {
        m.speedup(r, c)
            .map_or(String::new(), |s| format!(" ({s:.2}×)"))
    };
    let mut verdict = inv.text();
    if let Some(w) = cache_warning(m) {
        verdict += &format!("\n\nWarning: {w}.");
    }
    let mut out = vec![
        Section {
            heading: "Outputs across the optimization axis".into(),
            table: String::new(),
            note: verdict,
        },
        Section {
            heading: "Throughput: examples/s (speedup over the row's first cell)".into(),
            table: table(m, |r, c, x| {
                format!("{:.2}{}", x.summary.examples_per_s, speed(r, c))
            }),
            note: "Wall time of the session that ran the cell; a call cache column after a cell that filled it answers from disk.".into(),
        },
        Section {
            heading: "Generated tokens/s".into(),
            table: table(m, |_, _, x| format!("{:.1}", x.summary.tokens_per_s)),
            note: String::new(),
        },
        Section {
            heading: "Latency per example: p50 / p95 / p99 (s)".into(),
            table: table(m, |_, _, x| {
                let l = &x.summary.latency;
                format!("{} / {} / {}", seconds(l.p50_ms), seconds(l.p95_ms), seconds(l.p99_ms))
            }),
            note: "With several examples in flight each one waits for the others' tokens: latency can rise while throughput rises more.".into(),
        },
        Section {
            heading: "Peak memory (RSS, MiB)".into(),
            table: table(m, |_, _, x| {
                x.summary
                    .peak_rss_mib
                    .map_or("—".into(), |v| format!("{v:.0}"))
            }),
            note: "The process's high-water mark from the cell's start to its end (Linux VmHWM, reset per cell). It includes what the process already held when the cell began: the model, the indexes, caches and memory the allocator kept from earlier cells — so read it within a run (which cell pushed the peak up), not as a cell's own footprint.".into(),
        },
        Section {
            heading: "Prompt tokens whose prefill was skipped (prefix cache) · calls answered by the call cache".into(),
            table: table(m, |_, _, x| {
                let s = &x.summary;
                let saved = if s.prompt_tokens > 0 {
                    100.0 * s.engine.prefill_tokens_saved as f64 / s.prompt_tokens as f64
                } else {
                    0.0
                };
                format!("{saved:.0} % · {} of {}", s.engine.call_cache_hits, s.engine.generate)
            }),
            note: String::new(),
        },
    ];
    if let Some(h) = headline(m) {
        let mut t = format!("| method | {h} [95% CI] | n | failed |\n|---|---|---|---|\n");
        for (label, row) in m.rows.iter().zip(&m.cells) {
            let Some(cell) = row_cell(row) else { continue };
            let s = &cell.summary;
            let score = s.metrics.get(&h).map_or("—".into(), |x| {
                format!(
                    "{} [{}, {}]",
                    fmt_score(&h, x.mean),
                    fmt_score(&h, x.ci_low),
                    fmt_score(&h, x.ci_high)
                )
            });
            t += &format!("| {label} | {score} | {} | {} |\n", s.examples, s.failures);
        }
        out.insert(
            1,
            Section {
                heading: format!("Accuracy ({h})"),
                table: t,
                note: "Read from each method's first cell that ran; with identical outputs every column scores the same.".into(),
            },
        );
    }
    out
}

/// `report <matrix group>`: the page, its charts and `matrix.csv`.
pub fn write(dir: &Path, m: &Matrix, inv: &Invariance, command: &str) -> anyhow::Result<Written> {
    let page = Page {
        title: format!("method × optimization: {}", m.group.name),
        provenance: vec![
            format!(
                "sweep group `{}` over {} (config {})",
                m.group.id,
                m.group.axes.join(" × "),
                m.group.config_path
            ),
            format!("made by `{command}`"),
        ],
        sections: sections(m, inv),
        charts: charts(m)?,
    };
    let written = write_page(dir, &page)?;
    write_csv(&dir.join("matrix.csv"), m)?;
    Ok(written)
}

fn write_csv(path: &Path, m: &Matrix) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record([
        "method",
        "optimization",
        "experiment",
        "examples",
        "examples_per_s",
        "speedup",
        "tokens_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "peak_rss_mib",
        "prefill_tokens_saved",
        "prompt_tokens",
        "call_cache_hits",
        "max_batch",
    ])?;
    for (r, row) in m.cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let Some(x) = cell else { continue };
            let s = &x.summary;
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            w.write_record([
                m.rows[r].clone(),
                m.columns[c].clone(),
                x.experiment.id.clone(),
                s.examples.to_string(),
                s.examples_per_s.to_string(),
                opt(m.speedup(r, c)),
                s.tokens_per_s.to_string(),
                s.latency.p50_ms.to_string(),
                s.latency.p95_ms.to_string(),
                s.latency.p99_ms.to_string(),
                opt(s.peak_rss_mib),
                s.engine.prefill_tokens_saved.to_string(),
                s.prompt_tokens.to_string(),
                s.engine.call_cache_hits.to_string(),
                s.engine.max_batch.to_string(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

/// The terminal's view after a matrix sweep: examples/s with speedups,
/// and the invariance line.
pub fn text(m: &Matrix, inv: &Invariance) -> String {
    let width = m
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut o = "\nexamples/s (speedup over each method's first cell), columns:\n".to_string();
    for (i, c) in m.columns.iter().enumerate() {
        o += &format!("  [{}] {c}\n", i + 1);
    }
    o += &format!("{:<width$}", "method");
    for i in 0..m.columns.len() {
        o += &format!("  {:>13}", format!("[{}]", i + 1));
    }
    o += "\n";
    for (r, (label, row)) in m.rows.iter().zip(&m.cells).enumerate() {
        o += &format!("{label:<width$}");
        for (c, cell) in row.iter().enumerate() {
            let v = match (cell, m.speedup(r, c)) {
                (Some(x), Some(s)) => format!("{:.2} ({s:.1}×)", x.summary.examples_per_s),
                (Some(x), None) => format!("{:.2}", x.summary.examples_per_s),
                _ => "—".into(),
            };
            o += &format!("  {v:>13}");
        }
        o += "\n";
    }
    o += &inv.text();
    o += "\n";
    if let Some(w) = cache_warning(m) {
        o += &format!("warning: {w}\n");
    }
    o
}

/// Cells outside a "call cache on" column that answered from the call
/// cache measure the cache, not the engine: say so.
pub fn cache_warning(m: &Matrix) -> Option<String> {
    let cached: Vec<String> = m
        .rows
        .iter()
        .zip(&m.cells)
        .flat_map(|(r, row)| {
            m.columns.iter().zip(row).filter_map(move |(c, cell)| {
                let hits = cell.as_ref()?.summary.engine.call_cache_hits;
                (hits > 0 && !c.contains("call cache on")).then(|| format!("{r} / {c}"))
            })
        })
        .collect();
    (!cached.is_empty()).then(|| {
        format!(
            "{} cell(s) answered calls from the call cache ({}): their speed is the cache's; \
             set [run] cache = false, or sweep \"run.cache\" = [false, true], to measure the engine",
            cached.len(),
            cached.join(", ")
        )
    })
}
