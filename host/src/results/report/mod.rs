//! Human-readable views of stored experiments and groups (text here,
//! charts and pages in [`page`], files in [`export`]); of training runs in
//! [`training`]. Views only read.

pub mod alignment;
pub mod charts;
pub mod export;
pub mod matrix;
pub mod optimization;
pub mod page;
pub mod pairwise;
pub mod training;

pub use export::{ExportFormat, export};

use crate::results::records::{Experiment, RunRecord};
use crate::results::stats::Summary;

/// Scores in [0, 1] are shown as percentages, as SQuAD and most papers do;
/// unscaled ones (see [`is_unscaled`]) as they are.
pub fn fmt_score(name: &str, v: f64) -> String {
    if is_unscaled(name) {
        format!("{v:.2}")
    } else {
        format!("{:.1}", v * 100.0)
    }
}

/// Scores that are not rates in [0, 1], shown without the ×100: counts per
/// example (claims judged, unparsed judge answers, tool calls: `claims`,
/// `judge_unparsed`, an `n_` prefix or `_count` suffix) and log-probability
/// margins in nats (a `_margin` suffix, e.g. `pref_margin`).
pub fn is_unscaled(name: &str) -> bool {
    matches!(name, "claims" | "judge_unparsed" | "tool_calls")
        || name.starts_with("n_")
        || name.ends_with("_count")
        || name.ends_with("_margin")
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// Column widths of a group's axes: the longest of the axis name and its
/// cell labels, at most 28 characters.
pub(crate) fn axis_widths(g: &crate::results::records::Group) -> Vec<usize> {
    g.axes
        .iter()
        .enumerate()
        .map(|(i, a)| {
            g.members
                .iter()
                .map(|m| m.labels.get(i).map_or(0, |l| l.chars().count()))
                .chain([a.chars().count()])
                .max()
                .unwrap_or(8)
                .min(28)
        })
        .collect()
}

fn truncate(s: &str, n: usize) -> String {
    flatten(s, n, " ")
}

/// `s` on one line (newlines as `newline`, tabs as spaces), cut to `n`
/// characters with an ellipsis.
fn flatten(s: &str, n: usize, newline: &str) -> String {
    let one_line = s.replace('\n', newline).replace('\t', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n - 1).collect::<String>())
    }
}

/// What each built-in score means, for readers of small numbers.
fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "exact_match" => "answer equals a reference after SQuAD normalisation (strict)",
        "f1" => "word overlap between answer and best reference (partial credit)",
        "contains" => "a reference appears inside the answer (lenient; fair to chatty models)",
        _ => return None,
    })
}

/// Answer lengths: completion tokens per answered example, with CIs.
pub fn verbosity_line(v: &crate::results::stats::Verbosity) -> String {
    format!(
        "verbosity   {:.1} tokens per answer [{:.1}, {:.1}]   median {:.0} [{:.0}, {:.0}]   p95 {:.0} [{:.0}, {:.0}]   (n {})\n",
        v.mean,
        v.mean_ci.0,
        v.mean_ci.1,
        v.median,
        v.median_ci.0,
        v.median_ci.1,
        v.p95,
        v.p95_ci.0,
        v.p95_ci.1,
        v.n
    )
}

pub fn summary_text(e: &Experiment, s: &Summary) -> String {
    let mut o = String::new();
    let method = e
        .plugins
        .iter()
        .find(|p| p.role == "method")
        .map_or("?", |p| p.name.as_str());
    let metrics: Vec<&str> = e
        .plugins
        .iter()
        .filter(|p| p.role == "metric")
        .map(|p| p.name.as_str())
        .collect();
    o += &format!("experiment  {}  {}\n", e.id, e.status);
    o += &format!(
        "model       {} ({}, {}, {} threads, {})\n",
        e.model.source, e.model.architecture, e.model.weights, e.model.threads, e.model.backend
    );
    if let Some(a) = &e.model.adapter {
        o += &format!(
            "adapter     {} (sha256 {}, LoRA r {} alpha {} on {})\n",
            a.path,
            a.sha256,
            a.rank,
            a.alpha,
            a.target_modules.join(", ")
        );
    }
    o += &format!("method      {method}    metrics {}\n", metrics.join(", "));
    o += &format!("examples    {} run, {} failed", s.examples, s.failures);
    if !s.failures_by_kind.is_empty() {
        let kinds: Vec<String> = s
            .failures_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        o += &format!(" ({})", kinds.join(", "));
    }
    o += "\n";
    if !s.metric_errors.is_empty() {
        let per_metric: Vec<String> = s
            .metric_errors
            .iter()
            .map(|(m, kinds)| {
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                format!("{m} ({})", kinds.join(", "))
            })
            .collect();
        o += &format!("metric errors  {}\n", per_metric.join("; "));
    }
    o += "\n";
    o += &format!(
        "{:<14}{:>7}   {:<16}{:>5}\n",
        "score (0-100)", "mean", "95% CI", "n"
    );
    // In the config's order, not alphabetical.
    let ordered = e
        .score_names
        .iter()
        .filter_map(|n| s.metrics.get(n).map(|m| (n, m)));
    for (name, m) in ordered {
        let ci = format!(
            "[{}, {}]",
            fmt_score(name, m.ci_low),
            fmt_score(name, m.ci_high)
        );
        o += &format!(
            "{:<14}{:>7}   {:<16}{:>5}\n",
            name,
            fmt_score(name, m.mean),
            ci,
            m.n
        );
    }
    o += "\n";
    o += &format!(
        "latency     p50 {}   p95 {}   p99 {}   mean {}  (per example)\n",
        fmt_ms(s.latency.p50_ms),
        fmt_ms(s.latency.p95_ms),
        fmt_ms(s.latency.p99_ms),
        fmt_ms(s.latency.mean_ms)
    );
    let per = |t: u64| {
        if s.examples > 0 {
            t as f64 / s.examples as f64
        } else {
            0.0
        }
    };
    o += &format!(
        "tokens      {} in, {} out  ({:.0} in / {:.0} out per example, {} model calls)\n",
        s.prompt_tokens,
        s.completion_tokens,
        per(s.prompt_tokens),
        per(s.completion_tokens),
        s.llm_calls
    );
    if let Some(v) = &s.verbosity {
        o += &verbosity_line(v);
    }
    o += &format!(
        "throughput  {:.2} examples/s   {:.1} generated tokens/s   (wall {:.1} s this session)\n",
        s.examples_per_s, s.tokens_per_s, s.wall_s
    );
    if let Some(rss) = s.peak_rss_mib {
        o += &format!("memory      peak RSS {rss:.0} MiB (the whole process)\n");
    }
    match (s.gpu_s, s.gpu_peak_mib) {
        (Some(secs), Some(peak)) => {
            o += &format!(
                "gpu         {secs:.1} s in forward passes, peak device memory {peak:.0} MiB (the whole process)\n"
            )
        }
        (Some(secs), None) => o += &format!("gpu         {secs:.1} s in forward passes\n"),
        _ => {}
    }
    let c = &s.engine;
    if c.generate > 0 {
        o += &format!(
            "model time  prefill {:.1} s, decode {:.1} s{}\n",
            c.prefill_ms / 1e3,
            c.decode_ms / 1e3,
            if c.max_batch > 1 {
                format!(" (decode batches of up to {} requests)", c.max_batch)
            } else {
                String::new()
            }
        );
        o += &format!(
            "caches      call cache {} hits / {} misses ({:.0}%)   prefix cache {} hits, {} prefill tokens saved ({:.0}% of prompt tokens)\n",
            c.call_cache_hits,
            c.generate - c.call_cache_hits,
            100.0 * c.call_cache_hits as f64 / c.generate as f64,
            c.prefix_hits,
            c.prefill_tokens_saved,
            if s.prompt_tokens > 0 {
                100.0 * c.prefill_tokens_saved as f64 / s.prompt_tokens as f64
            } else {
                0.0
            }
        );
    }
    if let Some(a) = &s.agent {
        o += &format!(
            "agent       answered {:.0}%   stuck {:.0}%   hit max iterations {:.0}%   parse failures {:.0}%\n            {:.2} tool calls per example, {:.0}% of them failed\n",
            a.success_rate * 100.0,
            a.stuck_rate * 100.0,
            a.max_iterations_rate * 100.0,
            a.parse_failure_rate * 100.0,
            a.tool_calls_per_example,
            a.failed_tool_calls * 100.0
        );
        for (name, t) in &a.by_tool {
            o += &format!(
                "            {name}: {:.2} calls per example, {:.0}% failed, {:.0} ms per call\n",
                t.calls_per_example,
                t.failed * 100.0,
                t.mean_latency_ms
            );
        }
    }
    if let Some(src) = &e.rescored_from {
        o += &format!("rescored    from {src} (its stored answers; no model calls)\n");
    }
    let explained: Vec<String> = e
        .score_names
        .iter()
        .filter_map(|k| meaning(k).map(|m| format!("  {k:<12} {m}")))
        .collect();
    if !explained.is_empty() {
        o += "\nwhat the scores mean:\n";
        o += &explained.join("\n");
        o += "\n";
    }
    if e.model.source == "smollm2-135m-instruct" {
        o += "\nnote: the default model has 135M parameters, so low scores are expected (the README's\n";
        o += "\"Reading small numbers\" gives llama.cpp's reference on this prompt). For a bigger model\n";
        o += "set [model] source = \"/path/to/model.gguf\" in the config.\n";
    }
    o
}

pub fn runs_table(runs: &[RunRecord], score_names: &[String]) -> String {
    let mut o = String::new();
    o += &format!(
        "{:>4}  {:<18}  {:<40}  {:<28}",
        "#", "id", "question", "answer"
    );
    for n in score_names {
        o += &format!("  {:>8}", truncate(n, 8));
    }
    o += "  error\n";
    for r in runs {
        let answer = r.answer.as_deref().unwrap_or("—");
        o += &format!(
            "{:>4}  {:<18}  {:<40}  {:<28}",
            r.index,
            truncate(&r.example_id, 18),
            truncate(&r.question, 40),
            truncate(answer, 28)
        );
        for n in score_names {
            let v = r
                .scores
                .get(n)
                .map_or("—".to_string(), |v| fmt_score(n, *v));
            o += &format!("  {v:>8}");
        }
        if let Some(e) = &r.error {
            o += &format!("  {}: {}", e.kind, truncate(&e.message, 60));
        } else if let Some((m, e)) = r.metric_errors.iter().next() {
            o += &format!("  {m} {}: {}", e.kind, truncate(&e.message, 50));
        }
        o += "\n";
    }
    o
}

pub fn list_table(rows: &[(Experiment, Option<Summary>)]) -> String {
    let mut o = format!(
        "{:<40}  {:<10}  {:>8}  {}\n",
        "id", "status", "examples", "scores (0-100)"
    );
    for (e, s) in rows {
        let (n, scores) = match s {
            Some(s) => (
                s.examples.to_string(),
                s.metrics
                    .iter()
                    .map(|(k, m)| format!("{k} {}", fmt_score(k, m.mean)))
                    .collect::<Vec<_>>()
                    .join("  "),
            ),
            None => ("—".into(), String::new()),
        };
        o += &format!(
            "{:<40}  {:<10}  {:>8}  {}\n",
            e.id,
            e.status.to_string(),
            n,
            scores
        );
    }
    o
}

/// `forge-host compare` as text: one row per metric with the test used, the
/// delta and its CI, the p-value and a verdict; then the differing examples.
pub fn comparison_text(c: &crate::results::compare::Comparison, alpha: f64, rows: usize) -> String {
    let mut o = format!(
        "A = {}\nB = {}\n{} shared examples\n\n",
        c.a, c.b, c.shared_examples
    );
    o += &format!(
        "{:<12}{:>9}{:>9}{:>9}   {:<18}{:<21}{:>7}   verdict\n",
        "metric", "A", "B", "B−A", "95% CI of B−A", "test", "p"
    );
    for m in &c.metrics {
        let (f, unit): (fn(f64) -> String, &str) = if m.name == "latency_ms" {
            (|v| format!("{v:.0}"), " ms")
        } else if is_unscaled(&m.name) {
            (|v| format!("{v:.2}"), "")
        } else {
            (|v| format!("{:.1}", v * 100.0), "")
        };
        let test = match m.discordant {
            Some((a, b)) => format!("{} {a}/{b}", m.test),
            None => m.test.to_string(),
        };
        o += &format!(
            "{:<12}{:>9}{:>9}{:>9}   {:<18}{:<21}{:>7.4}   {}\n",
            m.name,
            f(m.mean_a),
            f(m.mean_b),
            if m.delta >= 0.0 {
                format!("+{}", f(m.delta))
            } else {
                f(m.delta)
            },
            format!("[{}, {}]{unit}", f(m.delta_ci.0), f(m.delta_ci.1)),
            test,
            m.p_value,
            crate::results::compare::verdict(m, alpha)
        );
    }
    let (ta, tb) = c.tokens_per_example;
    o += &format!(
        "{:<12}{:>9.0}{:>9.0}   ×{:.2} (cost of B relative to A)\n",
        "tokens/ex",
        ta,
        tb,
        tb / ta.max(1e-9)
    );
    o += "\nscores ×100; McNemar a/b = examples only A / only B got right; p two-sided";
    if c.metrics.iter().any(|m| m.p_adjusted.is_some()) {
        o += "; verdicts use Holm-adjusted p across the compared experiments";
    }
    o += "\n";
    if !c.differing.is_empty() {
        o += &format!(
            "\n{} examples where the first score differs:\n",
            c.differing.len()
        );
        for (id, a, b) in c.differing.iter().take(rows) {
            o += &format!(
                "  {:<20} A: {:<30}  B: {}\n",
                truncate(id, 20),
                truncate(a.as_deref().unwrap_or("—"), 30),
                truncate(b.as_deref().unwrap_or("—"), 30)
            );
        }
    }
    o
}

/// One example in full, for reading what the method did. `color` adds ANSI
/// highlighting of the section labels (for terminals).
pub fn trace_text(r: &RunRecord, color: bool) -> String {
    let label = |s: &str| {
        if color {
            format!("\x1b[1;36m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mut o = format!("{} #{} {}\n", label("example"), r.index, r.example_id);
    o += &format!("{}\n{}", label("question"), indent(&r.question));
    o += &format!("{} {}\n", label("references"), r.references.join(" | "));
    for (i, c) in r.calls.iter().enumerate() {
        o += &format!(
            "{} {i}: {} prompt + {} completion tokens, {:.0} ms (prefill {:.0} ms, decode {:.0} ms), finish {}\n",
            label("model call"),
            c.prompt_tokens,
            c.completion_tokens,
            c.latency_ms,
            c.prefill_ms,
            c.decode_ms,
            c.finish_reason
        );
        o += &format!("  {}\n{}", label("prompt"), indent(&c.prompt));
        o += &format!("  {}\n{}", label("output"), indent(&c.output));
        if let Some(e) = &c.error {
            o += &format!("  {} {e}\n", label("error"));
        }
    }
    for step in &r.trace {
        o += &format!("{}\n{}", label(&step.kind), indent(&step.content));
    }
    if !r.contexts.is_empty() {
        o += &format!("{} {} passages\n", label("contexts"), r.contexts.len());
    }
    for l in &r.logs {
        o += &format!("{} {l}\n", label("log"));
    }
    o += &format!(
        "{} {}\n",
        label("final answer"),
        r.answer.as_deref().unwrap_or("—")
    );
    let scores: Vec<String> = r
        .scores
        .iter()
        .map(|(k, v)| format!("{k} {}", fmt_score(k, *v)))
        .collect();
    o += &format!("{} {}\n", label("scores"), scores.join("  "));
    for (m, e) in &r.metric_errors {
        o += &format!("{} {m}: {}: {}\n", label("metric error"), e.kind, e.message);
    }
    if let Some(e) = &r.error {
        o += &format!("{} {}: {}\n", label("error"), e.kind, e.message);
    }
    o += &format!("{} {:.0} ms\n", label("latency"), r.latency_ms);
    o
}

/// A sweep group's grid: one row per cell with its axis values, scores
/// (mean and 95 % CI), latency, throughput and cost.
pub fn group_table(g: &crate::results::records::Group, cells: &[(Experiment, Summary)]) -> String {
    let score_names: Vec<String> = cells
        .iter()
        .flat_map(|(e, _)| e.score_names.iter().cloned())
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let mut o = format!(
        "group {}  ({} cells; axes {})\n\n",
        g.id,
        g.members.len(),
        g.axes.join(" × ")
    );
    let widths = axis_widths(g);
    for (a, w) in g.axes.iter().zip(&widths) {
        o += &format!("{:<w$}  ", truncate(a, *w));
    }
    o += &format!("{:>4}", "n");
    for n in &score_names {
        o += &format!("  {:>20}", format!("{} [95% CI]", truncate(n, 10)));
    }
    o += &format!(
        "  {:>8}  {:>8}  {:>8}  {:>6}\n",
        "p50", "p95", "ex/s", "tok/ex"
    );
    for m in &g.members {
        for (l, w) in m.labels.iter().zip(&widths) {
            o += &format!("{:<w$}  ", truncate(l, *w));
        }
        let Some((_, s)) = cells
            .iter()
            .find(|(e, _)| Some(&e.id) == m.experiment_id.as_ref())
        else {
            o += "  (not run yet)\n";
            continue;
        };
        o += &format!("{:>4}", s.examples);
        for n in &score_names {
            let cell = s.metrics.get(n).map_or("—".to_string(), |x| {
                format!(
                    "{} [{}, {}]",
                    fmt_score(n, x.mean),
                    fmt_score(n, x.ci_low),
                    fmt_score(n, x.ci_high)
                )
            });
            o += &format!("  {cell:>20}");
        }
        o += &format!(
            "  {:>8}  {:>8}  {:>8.2}  {:>6.0}\n",
            fmt_ms(s.latency.p50_ms),
            fmt_ms(s.latency.p95_ms),
            s.examples_per_s,
            s.tokens_per_example
        );
    }
    o += "\nscores 0-100; `forge-host compare <group>` tests each cell against the first\n";
    o
}

#[cfg(test)]
mod score_format_tests {
    use super::*;

    #[test]
    fn rates_are_percentages_counts_and_margins_are_not() {
        assert_eq!(fmt_score("f1", 0.4567), "45.7");
        assert_eq!(fmt_score("pref_acc", 1.0), "100.0");
        assert_eq!(fmt_score("n_claims", 3.0), "3.00");
        assert_eq!(fmt_score("pref_margin", 60.08), "60.08");
        assert_eq!(fmt_score("pref_margin", -1.5), "-1.50");
    }
}
