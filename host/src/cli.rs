//! The `forge-host` command line. Thin: parses arguments and calls the rooms.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::ConfigError;
use crate::plan::{Paths, Plan};
use crate::plugins::PluginHost;
use crate::progress::{Bar, JsonLines, Progress};
use crate::report::{self, ExportFormat};
use crate::store::Store;

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
    /// Run (or resume) the experiment a config describes
    Run {
        config: PathBuf,
        /// Run only the first N examples of the sample
        #[arg(long)]
        limit: Option<usize>,
        /// Start a new experiment even if an unfinished one has the same plan
        #[arg(long)]
        new: bool,
    },
    /// List experiments
    List,
    /// Show an experiment's summary and per-example results
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
    /// Paired comparison of two experiments on the examples they share
    Compare {
        a: String,
        b: String,
        /// Significance level of the verdicts
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// List at most this many differing examples
        #[arg(long, default_value_t = 10)]
        rows: usize,
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
    /// Inspect plugin components
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
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
    let paths = Paths::discover(cli.home.clone(), cli.plugin_dirs.clone());
    match cli.command {
        Command::Run { config, limit, new } => {
            let plan = Arc::new(Plan::load(&config, &paths, limit).await?);
            let store = Store::open(&paths.store())?;
            let mut progress: Box<dyn Progress> = if cli.json {
                Box::new(JsonLines)
            } else {
                Box::new(Bar::new())
            };
            let report = crate::runner::run(plan, &store, new, progress.as_mut()).await?;
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
            if cli.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(e, s)| serde_json::json!({"experiment": e, "summary": s}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", report::list_table(&rows));
            }
        }
        Command::Show { id, rows, trace } => {
            let store = Store::open(&paths.store())?;
            let e = store.find(&id)?;
            let s = store.summary(&e.id)?;
            let runs = store.runs(&e.id)?;
            if let Some(which) = trace {
                let run = runs
                    .iter()
                    .find(|r| r.example_id == which || r.index.to_string() == which)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "experiment {} has no example {which:?} (an id or an index)",
                            e.id
                        )
                    })?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(run)?);
                } else {
                    use std::io::IsTerminal;
                    print!(
                        "{}",
                        report::trace_text(run, std::io::stdout().is_terminal())
                    );
                }
            } else if cli.json {
                let v = serde_json::json!({"experiment": e, "summary": s, "runs": runs});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                match &s {
                    Some(s) => println!("{}", report::summary_text(&e, s)),
                    None => println!(
                        "experiment {}  {}  ({} of {} examples done)\n",
                        e.id,
                        e.status,
                        runs.len(),
                        e.example_ids.len()
                    ),
                }
                let shown = &runs[..runs.len().min(rows)];
                print!("{}", report::runs_table(shown, &e.score_names));
                if runs.len() > shown.len() {
                    println!(
                        "… {} more rows (--rows N, or `forge-host export {}`)",
                        runs.len() - shown.len(),
                        e.id
                    );
                }
            }
        }
        Command::Export { id, format, out } => {
            let store = Store::open(&paths.store())?;
            let e = store.find(&id)?;
            let s = store.summary(&e.id)?;
            let runs = store.runs(&e.id)?;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            report::export(&mut w, format, &e, s.as_ref(), &runs)?;
            w.flush()?;
        }
        Command::Compare { a, b, alpha, rows } => {
            let store = Store::open(&paths.store())?;
            let (ea, eb) = (store.find(&a)?, store.find(&b)?);
            let (ra, rb) = (store.runs(&ea.id)?, store.runs(&eb.id)?);
            let c = crate::compare::compare(&ea, &ra, &eb, &rb, 0)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", report::comparison_text(&c, alpha, rows));
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
            let r = crate::verify::verify(&e, &runs, &paths, examples).await?;
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
            crate::watch::watch(&config, &paths, examples, cli.json).await?
        }
        Command::Plugins {
            command: PluginsCommand::Inspect { file },
        } => {
            let host = PluginHost::new(Some(paths.component_cache()))?;
            let p = host.load(&file)?;
            if cli.json {
                let v = serde_json::json!({"path": p.path, "name": p.name, "sha256": p.sha256,
                    "world": p.contract.world, "contract": format!("{}@{}", crate::plugins::contract::PACKAGE, p.contract.version),
                    "exports": p.contract.exports, "imports": p.contract.imports,
                    "compiled_from_cache": p.cached, "load_ms": p.load_ms});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", p.path.display());
                println!("  world     {}", p.contract.world);
                println!(
                    "  contract  {}@{}",
                    crate::plugins::contract::PACKAGE,
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
