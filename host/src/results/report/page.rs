//! `forge-host report`: a directory with a Markdown page, a self-contained
//! HTML page (charts inline), the charts as SVG files and, for experiments,
//! the aggregates as CSV and JSON. [`write_page`] writes any [`Page`]
//! (experiments here, training runs in [`super::training`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::charts::{self, Series};
use super::fmt_score;
use crate::results::compare::Comparison;

/// What a report shows.
pub struct ReportInput {
    pub title: String,
    /// Where the numbers come from (ids, config, command), printed on top.
    pub provenance: Vec<String>,
    /// Score names in display order; the first is the headline metric.
    pub metrics: Vec<String>,
    pub series: Vec<Series>,
    /// Each other experiment against the first (empty for one experiment).
    pub comparisons: Vec<Comparison>,
    pub alpha: f64,
}

/// The files written.
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// A chart as a page carries it: file name, caption, the SVG.
pub struct Chart {
    pub file: String,
    pub caption: String,
    pub svg: String,
}

/// A titled table (a Markdown pipe table), with a note under it.
pub struct Section {
    pub heading: String,
    pub table: String,
    /// Markdown text after the table (empty: none).
    pub note: String,
}

/// What every report page holds, whatever it reports: title, provenance,
/// tables, charts. Experiment reports and training reports are both
/// written by [`write_page`].
pub struct Page {
    pub title: String,
    pub provenance: Vec<String>,
    pub sections: Vec<Section>,
    pub charts: Vec<Chart>,
}

/// Writes `report.md`, a self-contained `report.html` (charts inline) and
/// `charts/*.svg` under `dir`.
pub fn write_page(dir: &Path, page: &Page) -> anyhow::Result<Written> {
    let chart_dir = dir.join("charts");
    std::fs::create_dir_all(&chart_dir)
        .with_context(|| format!("creating {}", chart_dir.display()))?;
    let mut chart_paths = Vec::new();
    for c in &page.charts {
        let p = chart_dir.join(&c.file);
        std::fs::write(&p, &c.svg).with_context(|| format!("writing {}", p.display()))?;
        chart_paths.push(p);
    }

    let mut md = format!("# {}\n\n", page.title);
    for line in &page.provenance {
        md += &format!("- {line}\n");
    }
    for sec in &page.sections {
        md += &format!("\n## {}\n\n", sec.heading);
        md += &sec.table;
        if !sec.note.is_empty() {
            md += &format!("\n{}\n", sec.note);
        }
    }
    md += "\n## Charts\n\n";
    for c in &page.charts {
        md += &format!("![{}](charts/{})\n\n*{}*\n\n", c.caption, c.file, c.caption);
    }
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, &md).with_context(|| format!("writing {}", markdown.display()))?;

    let mut html = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>");
    html += &escape(&page.title);
    html += "</title>\n<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}figure{margin:2em 0}figcaption{color:#555}</style>\n</head><body>\n";
    html += &format!("<h1>{}</h1>\n<ul>\n", escape(&page.title));
    for line in &page.provenance {
        html += &format!("<li>{}</li>\n", escape(line));
    }
    html += "</ul>\n";
    for sec in &page.sections {
        html += &format!("<h2>{}</h2>\n", escape(&sec.heading));
        html += &markdown_table_to_html(&sec.table);
        if !sec.note.is_empty() {
            html += &format!("<p>{}</p>\n", escape(&sec.note));
        }
    }
    html += "<h2>Charts</h2>\n";
    for c in &page.charts {
        html += &format!(
            "<figure>{}<figcaption>{}</figcaption></figure>\n",
            c.svg,
            escape(&c.caption)
        );
    }
    html += "</body></html>\n";
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(Written {
        markdown,
        html: html_path,
        charts: chart_paths,
    })
}

/// An experiment report: results table, paired tests, the five charts,
/// and the aggregates as CSV and JSON.
pub fn write(dir: &Path, input: &ReportInput) -> anyhow::Result<Written> {
    let headline = input.metrics.first().cloned().unwrap_or_default();
    let chart = |file: &str, caption: &str, svg: String| Chart {
        file: file.into(),
        caption: caption.into(),
        svg,
    };
    let charts = vec![
        chart(
            "accuracy_vs_latency.svg",
            "Headline score against median latency; the line joins the Pareto frontier.",
            charts::accuracy_vs_latency(&input.series, &headline)?,
        ),
        chart(
            "scores.svg",
            "Every score with its 95% bootstrap confidence interval.",
            charts::metric_bars(&input.series, &input.metrics)?,
        ),
        chart(
            "tokens.svg",
            "Tokens per example: what each method costs.",
            charts::tokens_per_example(&input.series)?,
        ),
        chart(
            "latency_histogram.svg",
            "Distribution of per-example latency.",
            charts::latency_histogram(&input.series)?,
        ),
        chart(
            "examples.svg",
            "Headline score per example: where methods agree and differ.",
            charts::example_grid(&input.series, &headline)?,
        ),
    ];
    let mut sections = vec![Section {
        heading: "Results".into(),
        table: aggregates_table(input),
        note: "Scores are 0–100 with 95 % bootstrap confidence intervals (seeded percentile bootstrap of the mean). \
Latency is wall time per example; p50/p95 are linear-interpolation percentiles (numpy's default).".into(),
    }];
    let verdicts = verdict_table(input);
    if !verdicts.is_empty() {
        sections.push(Section {
            heading: format!("Paired comparisons with {}", input.series[0].label),
            table: verdicts,
            note: format!(
                "Binary scores: exact McNemar test; continuous scores and latency: paired sign-flip permutation test, \
with a paired bootstrap CI of the difference. With several comparisons p is Holm-adjusted per metric. α = {}.",
                input.alpha
            ),
        });
    }
    let written = write_page(
        dir,
        &Page {
            title: input.title.clone(),
            provenance: input.provenance.clone(),
            sections,
            charts,
        },
    )?;
    write_aggregates(dir, input)?;
    Ok(written)
}

/// The results table (Markdown), one row per experiment.
pub fn aggregates_table(input: &ReportInput) -> String {
    let mut head = vec!["experiment".to_string(), "n".into()];
    head.extend(input.metrics.iter().map(|m| format!("{m} [95% CI]")));
    head.extend(["p50 s", "p95 s", "examples/s", "tokens/example", "failed"].map(String::from));
    let mut o = format!("| {} |\n", head.join(" | "));
    o += &format!("|{}\n", "---|".repeat(head.len()));
    for s in &input.series {
        let sum = &s.summary;
        let mut row = vec![s.label.clone(), sum.examples.to_string()];
        for m in &input.metrics {
            row.push(match sum.metrics.get(m) {
                Some(x) => format!(
                    "{} [{}, {}]",
                    fmt_score(m, x.mean),
                    fmt_score(m, x.ci_low),
                    fmt_score(m, x.ci_high)
                ),
                None => "—".into(),
            });
        }
        row.push(format!("{:.2}", sum.latency.p50_ms / 1000.0));
        row.push(format!("{:.2}", sum.latency.p95_ms / 1000.0));
        row.push(format!("{:.2}", sum.examples_per_s));
        row.push(format!("{:.0}", sum.tokens_per_example));
        row.push(sum.failures.to_string());
        o += &format!("| {} |\n", row.join(" | "));
    }
    o
}

/// The paired tests (Markdown), one row per experiment and metric.
pub fn verdict_table(input: &ReportInput) -> String {
    if input.comparisons.is_empty() {
        return String::new();
    }
    let mut o = String::from(
        "| B | metric | A | B | B−A [95% CI] | test | p | verdict |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (c, s) in input.comparisons.iter().zip(input.series.iter().skip(1)) {
        for m in &c.metrics {
            let f = |v: f64| {
                if m.name == "latency_ms" {
                    format!("{v:.0} ms")
                } else {
                    fmt_score(&m.name, v)
                }
            };
            let test = match m.discordant {
                Some((a, b)) => format!("{} ({a} vs {b} discordant)", m.test),
                None => m.test.to_string(),
            };
            let p = match m.p_adjusted {
                Some(adj) => format!("{:.4} (raw {:.4})", adj, m.p_value),
                None => format!("{:.4}", m.p_value),
            };
            let delta = f(m.delta);
            o += &format!(
                "| {} | {} | {} | {} | {}{delta} [{}, {}] | {} | {} | {} |\n",
                s.label,
                m.name,
                f(m.mean_a),
                f(m.mean_b),
                if m.delta >= 0.0 { "+" } else { "" },
                f(m.delta_ci.0),
                f(m.delta_ci.1),
                test,
                p,
                crate::results::compare::verdict(m, input.alpha)
            );
        }
        o += &format!(
            "| {} | tokens/example | {:.0} | {:.0} | ×{:.2} | cost ratio | | |\n",
            s.label,
            c.tokens_per_example.0,
            c.tokens_per_example.1,
            c.tokens_per_example.1 / c.tokens_per_example.0.max(1e-9)
        );
    }
    o
}

fn write_aggregates(dir: &Path, input: &ReportInput) -> anyhow::Result<()> {
    let json: Vec<_> = input
        .series
        .iter()
        .map(|s| serde_json::json!({"label": s.label, "summary": s.summary}))
        .collect();
    std::fs::write(
        dir.join("aggregates.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "series": json,
            "comparisons": input.comparisons,
        }))?,
    )?;
    let mut w = csv::Writer::from_path(dir.join("aggregates.csv"))?;
    let mut head = vec!["experiment".to_string(), "n".into(), "failures".into()];
    for m in &input.metrics {
        head.extend([m.clone(), format!("{m}_ci_low"), format!("{m}_ci_high")]);
    }
    head.extend(
        [
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "latency_mean_ms",
            "examples_per_s",
            "tokens_per_s",
            "prompt_tokens",
            "completion_tokens",
            "peak_rss_mib",
        ]
        .map(String::from),
    );
    w.write_record(&head)?;
    for s in &input.series {
        let x = &s.summary;
        let mut row = vec![
            s.label.clone(),
            x.examples.to_string(),
            x.failures.to_string(),
        ];
        for m in &input.metrics {
            match x.metrics.get(m) {
                Some(v) => row.extend([v.mean, v.ci_low, v.ci_high].map(|f| f.to_string())),
                None => row.extend(["", "", ""].map(String::from)),
            }
        }
        row.extend(
            [
                x.latency.p50_ms,
                x.latency.p95_ms,
                x.latency.p99_ms,
                x.latency.mean_ms,
                x.examples_per_s,
                x.tokens_per_s,
                x.prompt_tokens as f64,
                x.completion_tokens as f64,
                x.peak_rss_mib.unwrap_or(f64::NAN),
            ]
            .map(|f| {
                if f.is_nan() {
                    String::new()
                } else {
                    f.to_string()
                }
            }),
        );
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The simple pipe tables this module writes, as HTML.
fn markdown_table_to_html(md: &str) -> String {
    let mut o = String::from("<table>\n");
    for (i, line) in md.lines().enumerate() {
        if i == 1 {
            continue; // the |---| rule
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").collect();
        let tag = if i == 0 { "th" } else { "td" };
        o += "<tr>";
        for c in cells {
            o += &format!("<{tag}>{}</{tag}>", escape(c.trim()));
        }
        o += "</tr>\n";
    }
    o + "</table>\n"
}
