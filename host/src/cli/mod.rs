//! The `forge-host` command line: the arguments, and one module per
//! command that calls the rooms and prints what they return.

mod align;
mod compare;
mod export;
mod groups;
pub mod index;
mod judge;
mod list;
mod optimize;
mod plugins;
mod report;
mod rescore;
mod run;
mod serve;
mod show;
mod train;
mod verify;
mod view;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::experiment::config::ConfigError;
use crate::experiment::plan::Paths;
use crate::results::report::ExportFormat;

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
    /// List experiments, sweep groups and training runs
    List,
    /// Show an experiment's summary and per-example results, a sweep
    /// group's grid, or a training run (`--json`: every step and eval row)
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
    /// Base vs tuned on every axis of an alignment config (preference
    /// accuracy, factuality, verbosity, judged win rate): one group, one
    /// table (see configs/alignment_compare.toml)
    Align {
        config: PathBuf,
        /// Run only the first N examples of each axis
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Rewrite a method's prompt with an optimizer component (default:
    /// an interviewer model) until the score plateaus; candidates are
    /// accepted on validation by a paired test, and the gain is proven on
    /// a held-out test split (see configs/nq_optimize.toml)
    Optimize {
        config: PathBuf,
        /// Print the splits and the most work it can do; run nothing
        #[arg(long)]
        dry_run: bool,
        /// Start a new run even if one of this config exists
        #[arg(long)]
        new: bool,
    },
    /// Judge two experiments' answers pairwise with an LLM (each pair in
    /// both orders; disagreement = tie): win/tie/loss with CIs, position
    /// bias, sign test, length-controlled win rate; stored as a judging run
    Judge {
        /// Experiment whose answers are A
        a: String,
        /// Experiment whose answers are B
        b: String,
        /// The judge: a judge config (.toml, like configs/judge.toml; a
        /// served model via backend = "openai"), or a model for the
        /// default one (packaged alias or .gguf path)
        #[arg(long)]
        judge: Option<String>,
        /// What to judge: helpful (default), harmless, or a file with the
        /// rubric's text
        #[arg(long)]
        rubric: Option<String>,
        /// Judge only the first N shared examples
        #[arg(long)]
        limit: Option<usize>,
        /// Start a new judging run even if an unfinished one has the same plan
        #[arg(long)]
        new: bool,
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
    /// and JSON aggregates) of experiments or of a sweep group; of a
    /// training run (loss, reward and accuracy curves) or a training sweep
    Report {
        /// Experiment ids (the first is the baseline of the paired tests),
        /// or one group id, or one training run id
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
        /// native (the file's types, default), q8_0 (requantise at load)
        /// or f32 (dequantise at load)
        #[arg(long, default_value = "native", value_parser = ["q8_0", "native", "f32"])]
        weights: String,
        /// A LoRA adapter directory (PEFT layout, e.g. from `train dpo`)
        /// merged into the weights at load
        #[arg(long)]
        adapter: Option<std::path::PathBuf>,
        /// cpu, cuda or cuda:N (cuda needs a build with the `cuda`
        /// feature: scripts/build-cuda.sh)
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Fine-tune a LoRA adapter: `train dpo <config.toml>` (resumes from
    /// the last checkpoint when run again; stored as a training run for
    /// list/show/report; a `[sweep]` table trains each cell as a group)
    Train {
        #[command(subcommand)]
        command: TrainCommand,
    },
    /// For plugin authors: new (scaffold), build, test, inspect, wit
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Build, inspect, search and evaluate stored retrieval indexes
    Index {
        #[command(subcommand)]
        command: index::IndexCommand,
    },
    /// A read-only web dashboard over the store (experiments, examples
    /// and traces, comparisons, sweeps; live while a run writes), until
    /// ctrl-c; `view export` writes the same pages as static files
    #[command(args_conflicts_with_subcommands = true)]
    View {
        #[command(subcommand)]
        command: Option<ViewCommand>,
        /// The address to listen on; anything but loopback needs --token
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// 0 = any free port (the chosen one is printed)
        #[arg(long, default_value_t = 7878)]
        port: u16,
        /// Required when --host is not loopback: every request must carry
        /// it (?token=…, a cookie, or Authorization: Bearer …)
        #[arg(long, env = "FORGE_VIEW_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ViewCommand {
    /// Write the pages of experiments, groups, training or optimization
    /// runs as files that open from file:// (no server)
    Export {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long, default_value = "view")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Direct preference optimisation on preference pairs ([train] table;
    /// with [sweep], every cell in turn, stored as a group)
    Dpo { config: PathBuf },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Write a ready plugin project: source with a working example body,
    /// plugin.toml, the contract's .wit, rows to test it on, an experiment
    New {
        #[arg(value_enum)]
        kind: plugins::Kind,
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: plugins::Lang,
        /// Where to write it (default: ./<name>)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin folder into dist/<name>.wasm with its language's
    /// pinned toolchain (cargo, componentize-py, componentize-js)
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Install a missing Python or JavaScript toolchain (PyPI or npm,
        /// once) into FORGE_TOOLCHAINS (default ~/.cache/forge/toolchains)
        #[arg(long)]
        install: bool,
    },
    /// Run a metric on given answers, or a tool on given inputs, and
    /// print results, failures and timings
    Test {
        component: PathBuf,
        /// JSON Lines rows (default: examples.jsonl beside the component
        /// or in its parent folder)
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Only the first N rows
        #[arg(long)]
        examples: Option<usize>,
        /// The params JSON object passed to every call
        #[arg(long, default_value = "{}")]
        params: String,
    },
    /// World, contract version, imports, exports and declared needs of a component
    Inspect { file: PathBuf },
    /// The contract (.wit) a plugin is built against: this host's own, or
    /// an older accepted version
    Wit {
        /// e.g. 0.1.0 (default: the newest, this host's)
        #[arg(long)]
        version: Option<String>,
    },
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Train { .. }) {
        single_threaded_elementwise();
    }
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

/// Training's matmuls run on `RAYON_NUM_THREADS` threads (candle's gemm);
/// its element-wise ops go through candle's barrier pool, sized by
/// `CANDLE_NUM_THREADS`, whose threads spin between the many small ops of a
/// training step: on 2 cores that halved the step rate (dpo_step, 96 + 32
/// tokens: 10.1 s a step with the pool at 1 thread, 19.3 s at 2). So the
/// pool is one thread unless the user set it.
fn single_threaded_elementwise() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: before the runtime and any other thread start; candle
        // reads the variable when its pool is first used.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

/// Parses nothing more and decides nothing: each command is a call.
async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let mut paths = Paths::discover(cli.home, cli.plugin_dirs);
    let json = cli.json;
    match cli.command {
        Command::Run {
            config,
            limit,
            new,
            no_cache,
        } => {
            if no_cache {
                paths.call_cache = None;
            }
            let args = run::RunArgs {
                config: &config,
                limit,
                new,
                json,
            };
            run::run(&paths, args).await
        }
        Command::List => list::list(&paths, json),
        Command::Show { id, rows, trace } => show::show(&paths, &id, rows, trace, json),
        Command::Export { id, format, out } => export::export(&paths, &id, format, out),
        Command::Compare { ids, alpha, rows } => compare::compare(&paths, &ids, alpha, rows, json),
        Command::Align { config, limit } => align::align(&paths, &config, limit, json).await,
        Command::Optimize {
            config,
            dry_run,
            new,
        } => optimize::optimize(&paths, &config, dry_run, new, json).await,
        Command::Judge {
            a,
            b,
            judge: judge_with,
            rubric,
            limit,
            new,
        } => {
            let req = crate::experiment::judge::JudgeRequest {
                a: &a,
                b: &b,
                judge: judge_with.as_deref(),
                rubric: rubric.as_deref(),
                limit,
                new,
            };
            judge::judge(&paths, req, json).await
        }
        Command::Rescore { id, metrics } => rescore::rescore(&paths, &id, &metrics, json).await,
        Command::Report {
            ids,
            out,
            alpha,
            headline,
        } => report::report(&paths, &ids, &out, alpha, headline, json),
        Command::Verify { id, examples } => verify::verify(&paths, &id, examples, json).await,
        Command::Watch { config, examples } => {
            crate::experiment::watch::watch(&config, &paths, examples, json).await
        }
        Command::Serve {
            openai: _,
            host,
            port,
            model,
            served_model_name,
            threads,
            weights,
            adapter,
            device,
        } => {
            serve::serve(
                &paths,
                serve::ServeArgs {
                    addr: (host, port).into(),
                    model,
                    served_model_name,
                    threads,
                    weights,
                    adapter,
                    device,
                },
            )
            .await
        }
        Command::Plugins {
            command:
                PluginsCommand::New {
                    kind,
                    name,
                    lang,
                    dir,
                },
        } => plugins::new(kind, &name, lang, dir.as_deref(), json),
        Command::Plugins {
            command: PluginsCommand::Build { dir, install },
        } => plugins::build_command(&paths, &dir, install, json),
        Command::Plugins {
            command:
                PluginsCommand::Test {
                    component,
                    dataset,
                    examples,
                    params,
                },
        } => {
            plugins::test(
                paths.component_cache(),
                &component,
                dataset.as_deref(),
                examples,
                &params,
                json,
            )
            .await
        }
        Command::Plugins {
            command: PluginsCommand::Inspect { file },
        } => plugins::inspect(&paths, &file, json),
        Command::Plugins {
            command: PluginsCommand::Wit { version },
        } => plugins::wit(version.as_deref(), json),
        Command::Index { command } => index::command(paths, command, json).await,
        Command::Train {
            command: TrainCommand::Dpo { config },
        } => train::dpo(&paths, &config, json),
        Command::View {
            command: Some(ViewCommand::Export { ids, out }),
            ..
        } => view::export(&paths, &ids, &out, json),
        Command::View {
            command: None,
            host,
            port,
            token,
        } => view::serve(&paths, (host, port).into(), token).await,
    }
}
