//! `forge-host plugins test <component> [--dataset F] [--examples N]`: runs
//! a metric on given answers or a tool on given inputs, each call in its
//! own sandboxed store as in an experiment, and prints what came back,
//! what failed, what differed from the row's `expect`, and the timings.
//!
//! Rows (JSON Lines):
//! - metric: `question`, `answers` (list), `prediction` (the answer to
//!   score), optional `context`, `contexts`, `expect` ({score name: value});
//! - tool: `input`, optional `expect` (the exact output) or
//!   `expect_error` (a part of the error's message).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::components::bindings::types::{Answer, Example};
use crate::components::budget::Deadline;
use crate::components::capabilities::{CallContext, Capabilities};
use crate::components::manifest::Manifest;
use crate::components::{
    CallOutcome, Configured, MetricWorld, PluginHost, Sandbox, ToolWorld, World, contract::PACKAGE,
};
use crate::experiment::config::{Limits, SandboxDefaults};

/// One row's outcome.
struct Row {
    id: String,
    ms: f64,
    /// What came back (scores, or the tool's output).
    got: Value,
    /// The failure, or how it differs from `expect`.
    problem: Option<String>,
    /// What the plugin logged (`forge:plugin/log`).
    logs: Vec<String>,
}

pub async fn test(
    cache_dir: PathBuf,
    component: &Path,
    dataset: Option<&Path>,
    examples: Option<usize>,
    params: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let host = PluginHost::new(Some(cache_dir))?;
    // Loaded once: the configured handles below reuse it.
    let plugin = std::sync::Arc::new(host.load(component)?);
    let world = plugin.contract.world;
    if matches!(world, World::Method | World::Optimizer) {
        bail!(
            "{} is a {world}: it needs a model, so try it in an experiment (`forge-host run experiment.toml`; \
             `plugins new` writes one); `plugins test` runs metrics and tools",
            component.display()
        );
    }
    let dataset = match dataset {
        Some(d) => d.to_path_buf(),
        None => default_dataset(component).with_context(|| {
            format!(
                "no --dataset, and no examples.jsonl beside {} or in its parent folder",
                component.display()
            )
        })?,
    };
    let rows = read_rows(&dataset, examples)?;
    serde_json::from_str::<serde_json::Map<String, Value>>(params)
        .with_context(|| format!("--params {params:?}: not a JSON object"))?;

    // What the manifest declares is granted in full: the test is the
    // author's own machine. An experiment grants the intersection.
    let manifest = Manifest::beside(component)?;
    let needs = manifest
        .as_ref()
        .map(|(_, m)| m.needs.clone())
        .unwrap_or_default();
    let defaults = SandboxDefaults::default();
    let grants = crate::experiment::config::Grants {
        read_dirs: needs.read_dirs.clone(),
        env: needs.env.clone(),
        allowed_outbound_hosts: needs.allowed_outbound_hosts.clone(),
        clock: needs.clock,
    };
    let limits = Limits {
        memory_mb: needs.memory_mb.map(|m| m.max(defaults.memory_mb)),
        timeout_ms: needs.timeout_ms.map(|t| t.max(defaults.timeout_ms)),
        ..Limits::default()
    };
    let mut sandbox: Sandbox = defaults.sandbox(&grants, &limits);
    sandbox.base_dir = Some(
        dataset
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    );
    let at = |n: usize| format!("{}:{}", dataset.display(), n);

    let mut results = Vec::new();
    let mut header = json!({
        "component": component, "world": world.to_string(),
        "contract": format!("{PACKAGE}@{}", plugin.contract.version),
        "load_ms": plugin.load_ms, "compiled_from_cache": plugin.cached,
        "dataset": dataset, "granted": needs.lines(),
    });
    match world {
        World::Metric => {
            let c = Configured::<MetricWorld>::new(plugin.clone(), sandbox, params, "metric")
                .map_err(|e| anyhow::anyhow!(e))?;
            let names = host
                .score_names(&c)
                .await
                .map_err(|f| anyhow::anyhow!("names(): {f}"))?;
            header["scores"] = json!(names);
            for (line, row) in &rows {
                let field = |k: &str| format!("{}: field {k}", at(*line));
                let example = Example {
                    id: str_field(row, "id").unwrap_or_else(|| format!("line{line}")),
                    question: str_field(row, "question").with_context(|| field("question"))?,
                    answers: string_list(row, "answers").with_context(|| field("answers"))?,
                    context: str_field(row, "context"),
                    metadata: "{}".into(),
                };
                let answer = Answer {
                    text: str_field(row, "prediction").with_context(|| field("prediction"))?,
                    trace: vec![],
                    contexts: string_list(row, "contexts").unwrap_or_default(),
                };
                let start = Instant::now();
                let ctx = CallContext::new(Capabilities::none(), 0);
                let (out, ctx) = host.score(&c, 0, ctx, &example, &answer).await;
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                let (got, mut problem) = match out {
                    CallOutcome::Ok(scores) => (
                        Value::Object(
                            scores
                                .iter()
                                .map(|s| (s.name.clone(), json!(s.value)))
                                .collect(),
                        ),
                        None,
                    ),
                    CallOutcome::PluginError(e) => {
                        (Value::Null, Some(format!("plugin error: {e}")))
                    }
                    CallOutcome::Failed(f) => (Value::Null, Some(f.to_string())),
                };
                if problem.is_none()
                    && let Some(expect) = row.get("expect").and_then(Value::as_object)
                {
                    let wrong: Vec<String> = expect
                        .iter()
                        .filter_map(|(k, want)| {
                            let g = got.get(k).and_then(Value::as_f64);
                            let w = want.as_f64();
                            let same = matches!((g, w), (Some(g), Some(w)) if (g - w).abs() < 1e-9);
                            (!same).then(|| {
                                format!(
                                    "{k}: expected {want}, got {}",
                                    got.get(k).unwrap_or(&Value::Null)
                                )
                            })
                        })
                        .collect();
                    if !wrong.is_empty() {
                        problem = Some(wrong.join("; "));
                    }
                }
                results.push(Row {
                    id: example.id,
                    ms,
                    got,
                    problem,
                    logs: ctx.logs,
                });
            }
        }
        World::Tool => {
            let c = Configured::<ToolWorld>::new(plugin.clone(), sandbox, params, "tool")
                .map_err(|e| anyhow::anyhow!(e))?;
            let described = host
                .describe_tool(&c)
                .await
                .map_err(|f| anyhow::anyhow!("describe(): {f}"))?;
            header["describe"] = json!(described);
            for (line, row) in &rows {
                let input = str_field(row, "input")
                    .with_context(|| format!("{}: field input", at(*line)))?;
                let id = str_field(row, "id").unwrap_or_else(|| format!("line{line}"));
                let start = Instant::now();
                let (out, ctx) = host
                    .call_tool(&c, Capabilities::none(), &input, 0, Deadline::none())
                    .await;
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                let expect = str_field(row, "expect");
                let expect_error = str_field(row, "expect_error");
                let (got, problem) = match out {
                    CallOutcome::Ok(text) => {
                        let problem = if let Some(e) = &expect_error {
                            Some(format!(
                                "expected an error containing {e:?}, got output {text:?}"
                            ))
                        } else {
                            expect
                                .filter(|e| *e != text)
                                .map(|e| format!("expected {e:?}, got {text:?}"))
                        };
                        (json!(text), problem)
                    }
                    CallOutcome::PluginError(e) => {
                        let problem = match &expect_error {
                            Some(want) if e.contains(want.as_str()) => None,
                            Some(want) => {
                                Some(format!("expected an error containing {want:?}, got {e:?}"))
                            }
                            None => Some(format!("plugin error: {e}")),
                        };
                        (json!({ "error": e }), problem)
                    }
                    CallOutcome::Failed(f) => (Value::Null, Some(f.to_string())),
                };
                results.push(Row {
                    id,
                    ms,
                    got,
                    problem,
                    logs: ctx.logs,
                });
            }
        }
        World::Method | World::Optimizer => unreachable!("refused above"),
    }

    let failed = results.iter().filter(|r| r.problem.is_some()).count();
    let mut ms: Vec<f64> = results.iter().map(|r| r.ms).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    if json_out {
        header["examples"] = json!(results.len());
        header["failed"] = json!(failed);
        header["call_ms_median"] = json!(median);
        header["call_ms_max"] = json!(max);
        header["rows"] = results
            .iter()
            .map(|r| json!({"id": r.id, "ms": r.ms, "got": r.got, "problem": r.problem, "logs": r.logs}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&header)?);
    } else {
        println!(
            "{} ({}, {}): loaded in {:.0} ms ({})",
            component.display(),
            world,
            header["contract"].as_str().unwrap_or_default(),
            plugin.load_ms,
            if plugin.cached {
                "compiled code from cache"
            } else {
                "compiled now"
            }
        );
        if let Some(d) = header.get("describe").and_then(Value::as_str) {
            println!("  describe: {d}");
        }
        for r in &results {
            let got = match &r.got {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            match &r.problem {
                None => println!("  ok    {:<12} {got}  ({:.2} ms)", r.id, r.ms),
                Some(p) => println!("  FAIL  {:<12} {p}  ({:.2} ms)", r.id, r.ms),
            }
            for line in &r.logs {
                println!("        log: {line}");
            }
        }
        println!(
            "{} of {} passed; per call (fresh instance each): median {median:.2} ms, max {max:.2} ms",
            results.len() - failed,
            results.len()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} examples failed", results.len());
    }
    Ok(())
}

/// `examples.jsonl` beside the component, or in its folder's parent
/// (a scaffold's `dist/x.wasm` → `examples.jsonl`).
fn default_dataset(component: &Path) -> Option<PathBuf> {
    let dir = component.parent()?;
    [
        dir.join("examples.jsonl"),
        dir.parent()?.join("examples.jsonl"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Rows with their 1-based line numbers (blank lines skipped).
fn read_rows(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<(usize, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))?;
        if !v.is_object() {
            bail!("{}:{}: not a JSON object", path.display(), i + 1);
        }
        rows.push((i + 1, v));
        if limit.is_some_and(|n| rows.len() >= n) {
            break;
        }
    }
    if rows.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(rows)
}

fn str_field(row: &Value, key: &str) -> Option<String> {
    row.get(key).and_then(Value::as_str).map(String::from)
}

fn string_list(row: &Value, key: &str) -> Option<Vec<String>> {
    row.get(key)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(String::from))
        .collect()
}
