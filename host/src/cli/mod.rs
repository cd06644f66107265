//! The `forge-host` command line. Thin: parses arguments and calls the rooms.

pub mod index;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::components::PluginHost;
use crate::experiment::config::ConfigError;
use crate::experiment::plan::{Paths, Plan};
use crate::experiment::progress::{Bar, JsonLines, Progress};
use crate::results::report::{self, ExportFormat};
use crate::results::store::Store;

#[derive(Parser)]
#[command(
    name = "forge-host",
    version,
    about = "Run LLM experiments with sandboxed WebAssembly plugins"
)]
pub struct Cli {
    /// Where experiments and caches are kept [env: FORGE_HOME; default: .forge]
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Extra directories searched for `<name>.wasm` plugins (before target/plugins)
    #[arg(long = "plugins", global = true)]
    plugin_dirs: Vec<PathBuf>,
    /// Machine-readable output (JSON; one event per line while running)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run (or resume) the experiment a config describes; a config with a
    /// `[sweep]` table runs its whole grid as one group
    Run {
        config: PathBuf,
        /// Run only the first N examples of the sample
        #[arg(long)]
        limit: Option<usize>,
        /// Start a new experiment even if an unfinished one has the same plan
        #[arg(long)]
        new: bool,
        /// Recompute every model call instead of answering repeats from the
        /// call cache (also `[run] cache = false`)
        #[arg(long)]
        no_cache: bool,
    },
    /// List experiments and sweep groups
    List,
    /// Show an experiment's summary and per-example results, or a sweep
    /// group's grid
    Show {
        id: String,
        /// Show at most this many example rows
        #[arg(long, default_value_t = 50)]
        rows: usize,
        /// Show one example in full instead: every model call (prompt,
        /// output, tokens, latency), trace step, tool call, score and error
        #[arg(long, value_name = "EXAMPLE_ID_OR_INDEX")]
        trace: Option<String>,
    },
    /// Export an experiment's runs
    Export {
        id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// File to write (default: stdout)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Paired comparison on the examples they share: B, C, ... each against
    /// A; or every cell of a sweep group against its first
    Compare {
        /// Experiment ids (A first), or one group id
        #[arg(required = true)]
        ids: Vec<String>,
        /// Significance level of the verdicts
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// List at most this many differing examples
        #[arg(long, default_value_t = 10)]
        rows: usize,
    },
    /// Score an experiment's stored answers again with other metric
    /// components (no model call); stored as a new experiment beside it
    Rescore {
        id: String,
        /// Metric plugins, by name or .wasm path: --metrics f1,contains
        #[arg(long, value_delimiter = ',', required = true)]
        metrics: Vec<String>,
    },
    /// Write a report (Markdown, self-contained HTML with SVG charts, CSV
    /// and JSON aggregates) of experiments or of a sweep group
    Report {
        /// Experiment ids (the first is the baseline of the paired tests),
        /// or one group id
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long, default_value = "report")]
        out: PathBuf,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// The score on the y axis of the accuracy–latency chart and in the
        /// per-example grid (default: the first metric)
        #[arg(long)]
        headline: Option<String>,
    },
    /// Re-run a sample of a stored experiment and check the outputs are identical
    Verify {
        id: String,
        #[arg(long, default_value_t = 5)]
        examples: usize,
    },
    /// Re-run a few examples every time a plugin file changes
    Watch {
        config: PathBuf,
        #[arg(long, default_value_t = 5)]
        examples: usize,
    },
    /// Serve forge's engine over HTTP: `--openai` exposes an
    /// OpenAI-compatible API (/v1/models, /v1/chat/completions,
    /// /v1/completions, streaming) until ctrl-c
    Serve {
        /// The OpenAI-compatible API (the only protocol so far; required)
        #[arg(long, required = true)]
        openai: bool,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// 0 = any free port (the chosen one is printed)
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// A packaged model alias or a path to a .gguf file
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// The name clients send as `model` (default: --model's alias or
        /// file stem)
        #[arg(long)]
        served_model_name: Option<String>,
        /// CPU threads for the forward pass
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// native (the file's types, default) or q8_0 (requantise at load)
        #[arg(long, default_value = "native", value_parser = ["q8_0", "native"])]
        weights: String,
    },
    /// Inspect plugin components
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Build, inspect, search and evaluate stored retrieval indexes
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Chunk and embed a corpus and store it under <name> (in
    /// <home>/indexes.redb); a config's `[[indexes]] name = "<name>"`
    /// without `corpus` then uses it
    Build {
        name: String,
        /// A .jsonl of {id, title?, text} (or the packaged `wiki-offline`)
        #[arg(long)]
        corpus: String,
        /// Word pieces per chunk (0: whole documents)
        #[arg(long, default_value_t = 0)]
        chunk_tokens: usize,
        /// Word pieces shared by consecutive chunks
        #[arg(long, default_value_t = 0)]
        chunk_overlap: usize,
        /// `all-minilm-l6-v2`, a model directory or a Hugging Face id
        #[arg(long, default_value = "all-minilm-l6-v2")]
        embedding: String,
    },
    /// Stored indexes
    List,
    /// Documents, chunks, dimensions, build time and key of a stored index
    Show { name: String },
    /// Search a stored index
    Search {
        name: String,
        query: String,
        /// bm25 | dense | hybrid[-rrf|-weighted] | reranked | none
        #[arg(long, default_value = "hybrid")]
        strategy: String,
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// The model `reranked` asks with `--rerank llm`
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// What `reranked` re-scores with: `llm`, or a cross-encoder (a
        /// model directory or a Hugging Face id such as
        /// cross-encoder/ms-marco-MiniLM-L-6-v2)
        #[arg(long, default_value = "llm")]
        rerank: String,
    },
    /// Recall@{1,3,5,10}, MRR@10 and nDCG@10 of each strategy against the
    /// gold document id of every question of a dataset
    Eval {
        name: String,
        #[arg(long)]
        dataset: PathBuf,
        /// Dotted path to the gold document id in each row
        #[arg(long, default_value = "meta.para_id")]
        gold_field: String,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "bm25,dense,hybrid-rrf,hybrid-weighted"
        )]
        strategies: Vec<String>,
        /// Only the first N questions
        #[arg(long)]
        limit: Option<usize>,
        /// The model `reranked` asks with `--rerank llm`
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// What `reranked` re-scores with: `llm` or a cross-encoder
        #[arg(long, default_value = "llm")]
        rerank: String,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// World, contract version, imports and exports of a component
    Inspect { file: PathBuf },
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => 0,
        Err(e) => {
            // Config errors already say file:line:field; everything else gets its chain.
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprintln!("error: {ce}");
                2
            } else {
                eprintln!("error: {e:#}");
                1
            }
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let mut paths = Paths::discover(cli.home.clone(), cli.plugin_dirs.clone());
    if let Command::Run { no_cache: true, .. } = &cli.command {
        paths.call_cache = None;
    }
    match cli.command {
        Command::Run {
            config, limit, new, ..
        } if std::fs::read_to_string(&config)
            .map(|t| crate::experiment::sweep::is_sweep(&t))
            .unwrap_or(false) =>
        {
            let sweep = crate::experiment::sweep::Sweep::load(&config)?;
            let store = Store::open(&paths.store())?;
            let mut progress: Box<dyn Progress> = if cli.json {
                Box::new(JsonLines)
            } else {
                Box::new(Bar::new())
            };
            let cells = sweep.cells.len();
            let json = cli.json;
            let report = crate::experiment::sweep::run(
                &sweep,
                &paths,
                &store,
                new,
                limit,
                progress.as_mut(),
                |i, cell| {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"event": "cell", "index": i, "of": cells, "labels": cell.labels})
                        );
                    } else {
                        eprintln!("── cell {}/{cells}: {}", i + 1, cell.labels.join(", "));
                    }
                },
            )
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "group", "group": report.group.id})
                );
            } else {
                print!("{}", report::group_table(&report.group, &report.summaries));
                println!(
                    "group {} stored in {}; see `forge-host show {}`, `forge-host compare {}`, `forge-host report {}`",
                    report.group.id,
                    store.path().display(),
                    report.group.id,
                    report.group.id,
                    report.group.id
                );
            }
        }
        Command::Index { command } => {
            let json = cli.json;
            match command {
                IndexCommand::Build {
                    name,
                    corpus,
                    chunk_tokens,
                    chunk_overlap,
                    embedding,
                } => {
                    let chunk = crate::retrieval::ChunkParams {
                        tokens: chunk_tokens,
                        overlap: chunk_overlap,
                    };
                    tokio::task::spawn_blocking(move || {
                        index::build(&paths, &name, &corpus, chunk, &embedding, json)
                    })
                    .await??
                }
                IndexCommand::List => index::list(&paths, json)?,
                IndexCommand::Show { name } => index::show(&paths, &name, json)?,
                IndexCommand::Search {
                    name,
                    query,
                    strategy,
                    k,
                    model,
                    rerank,
                } => {
                    let r = index::RerankArgs { model, rerank };
                    index::search(&paths, &name, &query, &strategy, k, &r, json).await?
                }
                IndexCommand::Eval {
                    name,
                    dataset,
                    gold_field,
                    strategies,
                    limit,
                    model,
                    rerank,
                } => {
                    index::evaluate(
                        &paths,
                        &name,
                        &dataset,
                        &gold_field,
                        &strategies,
                        limit,
                        &index::RerankArgs { model, rerank },
                        json,
                    )
                    .await?
                }
            }
        }
        Command::Run {
            config, limit, new, ..
        } => {
            let plan = Arc::new(Plan::load(&config, &paths, limit).await?);
            let store = Store::open(&paths.store())?;
            let mut progress: Box<dyn Progress> = if cli.json {
                Box::new(JsonLines)
            } else {
                Box::new(Bar::new())
            };
            let report =
                crate::experiment::runner::run(plan, &store, new, progress.as_mut()).await?;
            if !cli.json {
                println!(
                    "{}",
                    report::summary_text(&report.experiment, &report.summary)
                );
                println!(
                    "stored in {}; see `forge-host show {}`",
                    store.path().display(),
                    report.experiment.id
                );
            }
        }
        Command::List => {
            let store = Store::open(&paths.store())?;
            let mut rows = Vec::new();
            for e in store.experiments()? {
                let s = store.summary(&e.id)?;
                rows.push((e, s));
            }
            let groups = store.groups()?;
            if cli.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(e, s)| serde_json::json!({"experiment": e, "summary": s}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"experiments": v, "groups": groups})
                    )?
                );
            } else {
                print!("{}", report::list_table(&rows));
                if !groups.is_empty() {
                    println!("\nsweep groups:");
                    for g in &groups {
                        let done = g
                            .members
                            .iter()
                            .filter(|m| m.experiment_id.is_some())
                            .count();
                        println!(
                            "  {:<38}  {} cells ({} run)  axes: {}",
                            g.id,
                            g.members.len(),
                            done,
                            g.axes.join(" × ")
                        );
                    }
                }
            }
        }
        Command::Show { id, rows, trace } => {
            let store = Store::open(&paths.store())?;
            if trace.is_none()
                && let Some(g) = group_or_none(&store, &id)?
            {
                let members = group_members(&store, &g)?;
                if cli.json {
                    let v: Vec<_> = members
                        .iter()
                        .map(|(e, s)| serde_json::json!({"experiment": e.id, "summary": s}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({"group": g, "cells": v}))?
                    );
                } else {
                    print!("{}", report::group_table(&g, &members));
                }
                return Ok(());
            }
            let e = store.find(&id)?;
            let s = store.summary(&e.id)?;
            if let Some(which) = trace {
                let mut found = None;
                store.for_each_run(&e.id, |r| {
                    if r.example_id == which || r.index.to_string() == which {
                        found = Some(r);
                        false
                    } else {
                        true
                    }
                })?;
                let run = found.ok_or_else(|| {
                    anyhow::anyhow!(
                        "experiment {} has no example {which:?} (an id or an index)",
                        e.id
                    )
                })?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                } else {
                    use std::io::IsTerminal;
                    print!(
                        "{}",
                        report::trace_text(&run, std::io::stdout().is_terminal())
                    );
                }
            } else if cli.json {
                let (runs, _) = store.runs_head(&e.id, rows)?;
                let v = serde_json::json!({"experiment": e, "summary": s, "runs": runs});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let (shown, total) = store.runs_head(&e.id, rows)?;
                match &s {
                    Some(s) => println!("{}", report::summary_text(&e, s)),
                    None => println!(
                        "experiment {}  {}  ({} of {} examples done)\n",
                        e.id,
                        e.status,
                        total,
                        e.example_ids.len()
                    ),
                }
                print!("{}", report::runs_table(&shown, &e.score_names));
                if total > shown.len() {
                    println!(
                        "… {} more rows (--rows N, or `forge-host export {}`)",
                        total - shown.len(),
                        e.id
                    );
                }
            }
        }
        Command::Export { id, format, out } => {
            let store = Store::open(&paths.store())?;
            let e = store.find(&id)?;
            let s = store.summary(&e.id)?;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            report::export(&mut w, format, &e, s.as_ref(), &store)?;
            w.flush()?;
        }
        Command::Compare { ids, alpha, rows } => {
            let store = Store::open(&paths.store())?;
            let (_, targets) = targets(&store, &ids)?;
            anyhow::ensure!(
                targets.len() >= 2,
                "compare needs two experiments, or a group with two cells or more"
            );
            let scores = targets
                .iter()
                .map(|(_, e)| store.run_scores(&e.id))
                .collect::<Result<Vec<_>, _>>()?;
            let others: Vec<_> = targets[1..]
                .iter()
                .zip(&scores[1..])
                .map(|((_, e), r)| (e, r.as_slice()))
                .collect();
            let cs = crate::results::compare::compare_with_baseline(
                (&targets[0].1, &scores[0]),
                &others,
                0,
            )?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&cs)?);
            } else {
                for (i, c) in cs.iter().enumerate() {
                    if targets.len() > 2 {
                        println!("── {} vs {}", targets[0].0, targets[i + 1].0);
                    }
                    print!("{}", report::comparison_text(c, alpha, rows));
                    println!();
                }
            }
        }
        Command::Rescore { id, metrics } => {
            let store = Store::open(&paths.store())?;
            let source = store.find(&id)?;
            let r = crate::experiment::rescore::rescore(&store, &paths, &source, &metrics).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"experiment": r.experiment.id, "rescored_from": source.id, "summary": r.summary})
                );
            } else {
                println!("{}", report::summary_text(&r.experiment, &r.summary));
                println!(
                    "rescored {} into {} (no model calls); `forge-host compare {} {}` pairs them",
                    source.id, r.experiment.id, source.id, r.experiment.id
                );
            }
        }
        Command::Report {
            ids,
            out,
            alpha,
            headline,
        } => {
            let store = Store::open(&paths.store())?;
            let (title, targets) = targets(&store, &ids)?;
            let mut series = Vec::new();
            let mut metrics: Vec<String> = Vec::new();
            let mut provenance = Vec::new();
            for (label, e) in &targets {
                let summary = store.summary(&e.id)?.ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} has no summary yet ({}): run it to the end first",
                        e.id,
                        e.status
                    )
                })?;
                for n in &e.score_names {
                    if !metrics.contains(n) {
                        metrics.push(n.clone());
                    }
                }
                provenance.push(format!(
                    "{label}: experiment `{}` ({}, model {} {}, dataset {}, config {})",
                    e.id, e.status, e.model.source, e.model.weights, e.dataset_path, e.config_path
                ));
                series.push(report::charts::Series {
                    label: label.clone(),
                    summary,
                    runs: store.run_scores(&e.id)?,
                });
            }
            let comparisons = if targets.len() >= 2 {
                let others: Vec<_> = targets[1..]
                    .iter()
                    .zip(&series[1..])
                    .map(|((_, e), s)| (e, s.runs.as_slice()))
                    .collect();
                crate::results::compare::compare_with_baseline(
                    (&targets[0].1, &series[0].runs),
                    &others,
                    0,
                )?
            } else {
                vec![]
            };
            if let Some(h) = headline {
                let at = metrics.iter().position(|m| *m == h).ok_or_else(|| {
                    anyhow::anyhow!("--headline {h:?}: the scores are {}", metrics.join(", "))
                })?;
                let m = metrics.remove(at);
                metrics.insert(0, m);
            }
            provenance.push(format!("made by `forge-host report {}`", ids.join(" ")));
            let written = report::page::write(
                &out,
                &report::page::ReportInput {
                    title,
                    provenance,
                    metrics,
                    series,
                    comparisons,
                    alpha,
                },
            )?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"markdown": written.markdown, "html": written.html, "charts": written.charts})
                );
            } else {
                println!(
                    "wrote {} and {} ({} charts in {})",
                    written.markdown.display(),
                    written.html.display(),
                    written.charts.len(),
                    out.join("charts").display()
                );
            }
        }
        Command::Verify { id, examples } => {
            let (e, runs) = {
                // Closed before re-running: a verify must not hold the store.
                let store = Store::open(&paths.store())?;
                let e = store.find(&id)?;
                let runs = store.runs(&e.id)?;
                (e, runs)
            };
            let r = crate::experiment::verify::verify(&e, &runs, &paths, examples).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{}: {}/{} examples reproduced identically",
                    r.experiment, r.identical, r.checked
                );
                for m in &r.mismatches {
                    println!(
                        "  #{} {}: {} differs\n    stored: {}\n    now:    {}",
                        m.index, m.example_id, m.what, m.stored, m.now
                    );
                }
                if !r.changed_inputs.is_empty() {
                    println!("changed since the run: {}", r.changed_inputs.join(", "));
                }
            }
            if r.identical != r.checked {
                anyhow::bail!(
                    "{} of {} examples did not reproduce",
                    r.checked - r.identical,
                    r.checked
                );
            }
        }
        Command::Watch { config, examples } => {
            crate::experiment::watch::watch(&config, &paths, examples, cli.json).await?
        }
        Command::Serve {
            openai: _,
            host,
            port,
            model,
            served_model_name,
            threads,
            weights,
        } => {
            let resolved = crate::engine::model_source::resolve(&model, &paths.models_dir)
                .with_context(|| format!("--model {model}"))?;
            let name = served_model_name.unwrap_or_else(|| {
                std::path::Path::new(&model)
                    .file_stem()
                    .map_or(model.clone(), |s| s.to_string_lossy().into_owned())
            });
            let weights = if weights == "native" {
                crate::engine::llama::WeightFormat::AsFile
            } else {
                crate::engine::llama::WeightFormat::Q8_0
            };
            let backend = tokio::task::spawn_blocking(move || {
                crate::engine::candle_backend::CandleBackend::load(
                    &resolved,
                    crate::engine::candle_backend::CandleOptions {
                        threads,
                        weights,
                        ..Default::default()
                    },
                )
            })
            .await?
            .context("loading the model")?;
            let engine = crate::engine::EngineHandle::spawn(Box::new(backend));
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("ctrl-c: finishing in-flight requests");
            };
            crate::serve::serve_openai(engine, name, (host, port).into(), shutdown).await?;
        }
        Command::Plugins {
            command: PluginsCommand::Inspect { file },
        } => {
            let host = PluginHost::new(Some(paths.component_cache()))?;
            let p = host.load(&file)?;
            if cli.json {
                let v = serde_json::json!({"path": p.path, "name": p.name, "sha256": p.sha256,
                    "world": p.contract.world, "contract": format!("{}@{}", crate::components::contract::PACKAGE, p.contract.version),
                    "exports": p.contract.exports, "imports": p.contract.imports,
                    "compiled_from_cache": p.cached, "load_ms": p.load_ms});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", p.path.display());
                println!("  world     {}", p.contract.world);
                println!(
                    "  contract  {}@{}",
                    crate::components::contract::PACKAGE,
                    p.contract.version
                );
                println!("  sha256    {}", p.sha256);
                println!("  exports   {}", p.contract.exports.join(", "));
                println!("  imports   {}", p.contract.imports.join(", "));
                println!(
                    "  loaded in {:.1} ms ({})",
                    p.load_ms,
                    if p.cached {
                        "compiled code from cache"
                    } else {
                        "compiled now"
                    }
                );
            }
        }
    }
    Ok(())
}

/// A group by id when `id` names one (and no experiment has that exact id).
fn group_or_none(store: &Store, id: &str) -> anyhow::Result<Option<crate::results::store::Group>> {
    if store.experiment(id).is_ok() {
        return Ok(None);
    }
    Ok(store.find_group(id)?)
}

/// A group's cells with their experiments and summaries, in grid order.
fn group_members(
    store: &Store,
    g: &crate::results::store::Group,
) -> anyhow::Result<
    Vec<(
        crate::results::store::Experiment,
        crate::results::stats::Summary,
    )>,
> {
    let mut out = Vec::new();
    for m in &g.members {
        let Some(id) = &m.experiment_id else { continue };
        let e = store.experiment(id)?;
        if let Some(s) = store.summary(id)? {
            out.push((e, s));
        }
    }
    Ok(out)
}

/// What `compare` and `report` work on: one group id (its cells, labelled
/// by their sweep values) or experiment ids (labelled by id). The title
/// names the group or the experiments.
fn targets(
    store: &Store,
    ids: &[String],
) -> anyhow::Result<(String, Vec<(String, crate::results::store::Experiment)>)> {
    if let [one] = ids
        && let Some(g) = group_or_none(store, one)?
    {
        let mut out = Vec::new();
        for m in &g.members {
            let id = m.experiment_id.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "group {}: cell {} has not run yet; run {} again to finish the sweep",
                    g.id,
                    m.labels.join(", "),
                    g.config_path
                )
            })?;
            out.push((m.labels.join(" · "), store.experiment(id)?));
        }
        return Ok((format!("sweep {} ({})", g.id, g.axes.join(" × ")), out));
    }
    let mut out = Vec::new();
    for id in ids {
        let e = store.find(id)?;
        out.push((e.id.clone(), e));
    }
    let title = out
        .iter()
        .map(|(l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join(" vs ");
    Ok((title, out))
}
