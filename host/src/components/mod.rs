//! The component host: loads plugin components at run time, checks their
//! contract, caches compiled code, and runs each call in a fresh sandboxed
//! store so a misbehaving plugin fails only the example it was working on.

pub mod bindings;
pub mod budget;
mod cache;
pub mod capabilities;
pub(crate) mod contract;
mod failure;
pub(crate) mod grants;
pub mod manifest;
mod not_component;
mod plugin;
mod sandbox;
pub(crate) mod seed;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use budget::OutputCaps;
pub use contract::{Contract, World};
pub use failure::{Failure, FailureKind};
pub use plugin::{
    Configured, ConfiguredMethod, ConfiguredMetric, ConfiguredOptimizer, ConfiguredTool,
    MethodWorld, MetricWorld, OptimizerWorld, Plugin, ToolWorld, WorldKind,
};
pub use sandbox::{Sandbox, State};

use bindings::tools::ToolError;
use bindings::types::{Answer, Example, PluginError, Score};
use capabilities::tools::{ToolRun, ToolRunner, ToolRunning};
use capabilities::{CallContext, Capabilities};
use plugin::Pre;

/// The wasmtime this host is built with (pinned in host/Cargo.toml; a unit
/// test keeps the two in step). Recorded with experiments, keys the cache.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances; the granularity of guest deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a valid WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("{path}: {error}")]
    Contract {
        path: PathBuf,
        error: contract::ContractError,
    },
    #[error("{path}: cannot link: {message}")]
    Link { path: PathBuf, message: String },
}

/// The outcome of one call: a value, an error the plugin reported, or a failure.
pub enum CallOutcome<T> {
    Ok(T),
    PluginError(String),
    Failed(Failure),
}

impl<T> CallOutcome<T> {
    /// A reported plugin error becomes a failure of kind `plugin_error`.
    pub fn into_result(self) -> Result<T, Failure> {
        match self {
            CallOutcome::Ok(v) => Ok(v),
            CallOutcome::PluginError(message) => Err(Failure {
                kind: FailureKind::PluginError,
                message,
            }),
            CallOutcome::Failed(f) => Err(f),
        }
    }
}

/// Cheap to clone: engine, linkers and the epoch ticker are shared.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<cache::ComponentCache>,
    ticking: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl PluginHost {
    /// `cache_dir`: where compiled components are kept between runs (None: no cache).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;

        // One linker serves all worlds: each provides a subset of these
        // imports. WASI is linked with nothing granted (Rust guests import
        // it even when they do not use it); grants are per store. forge's
        // own imports see only the capabilities' part of the store.
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::method::Method::add_to_linker::<State, HasSelf<capabilities::CapabilityState>>(
            &mut linker,
            |s| &mut s.caps,
        )?;

        let ticking = Arc::new(AtomicBool::new(true));
        {
            let engine = engine.clone();
            let ticking = ticking.clone();
            std::thread::Builder::new()
                .name("forge-epoch".into())
                .spawn(move || {
                    while ticking.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })?;
        }
        let cache = cache_dir.map(|dir| cache::ComponentCache::new(dir, &engine));
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                ticking,
            }),
        })
    }

    /// Loads a component, reads its contract and prepares instantiation.
    pub fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        let span = tracing::info_span!("load_plugin", path = %path.display());
        let _enter = span.enter();
        let started = Instant::now();
        let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
            path: path.into(),
            error,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let engine = &self.inner.engine;
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            path: path.into(),
            message: not_component::reason(&bytes, &e),
        };
        let (component, cached) = match &self.inner.cache {
            Some(cache) => cache.get_or_compile(&sha256, &bytes).map_err(compile_err)?,
            None => (
                Component::from_binary(engine, &bytes).map_err(compile_err)?,
                false,
            ),
        };
        let contract = contract::read(engine, &component).map_err(|error| LoadError::Contract {
            path: path.into(),
            error,
        })?;
        let link_err = |e: wasmtime::Error| LoadError::Link {
            path: path.into(),
            message: format!("{e:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link_err)?;
        let pre = match contract.world {
            World::Method => Pre::Method(bindings::method::MethodPre::new(pre).map_err(link_err)?),
            World::Metric => Pre::Metric(bindings::metric::MetricPre::new(pre).map_err(link_err)?),
            World::Tool => Pre::Tool(bindings::tool::ToolPre::new(pre).map_err(link_err)?),
            World::Optimizer => {
                Pre::Optimizer(bindings::optimizer::OptimizerPre::new(pre).map_err(link_err)?)
            }
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Plugin {
            name,
            path: path.into(),
            sha256,
            contract,
            cached,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            pre,
        })
    }

    /// Loads a component and checks it is of the expected world.
    pub fn load_as(&self, path: &Path, expected: World) -> Result<Plugin, LoadError> {
        let plugin = self.load(path)?;
        if plugin.contract.world != expected {
            let export = plugin.contract.exports.join(", ");
            return Err(LoadError::Contract {
                path: path.into(),
                error: contract::ContractError::WrongWorld {
                    expected,
                    found: plugin.contract.world,
                    export,
                },
            });
        }
        Ok(plugin)
    }

    /// Loads a component as a handle of world `K`, with its configuration.
    pub fn configure<K: WorldKind>(
        &self,
        path: &Path,
        sandbox: Sandbox,
        params: impl Into<String>,
        field: impl Into<String>,
    ) -> Result<Configured<K>, LoadError> {
        Configured::new(
            Arc::new(self.load_as(path, K::WORLD)?),
            sandbox,
            params,
            field,
        )
    }

    fn store(
        &self,
        sandbox: &Sandbox,
        seed: u64,
        ctx: CallContext,
    ) -> anyhow::Result<Store<State>> {
        let mut store = Store::new(&self.inner.engine, sandbox.state(seed, ctx)?);
        store.limiter(|s| &mut s.limits);
        // Each tick: over budget → interrupt (a trap); else yield so other
        // examples on this tokio worker make progress.
        // The example's deadline is checked here too, for a guest that
        // computes without calling the host.
        store.epoch_deadline_callback(|mut ctx| {
            let state = &mut ctx.data_mut().caps;
            if state.ctx.deadline.expired() {
                state.stopped = Some(budget::Stopped::Deadline {
                    during: "guest compute",
                });
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(if state.budget.exhausted() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }

    /// Runs a method on one example.
    pub async fn solve(
        &self,
        c: &ConfiguredMethod,
        seed: u64,
        ctx: CallContext,
        example: &Example,
    ) -> (CallOutcome<Answer>, CallContext) {
        let params = c.params.as_str();
        self.call(&c.sandbox, seed, ctx, async |store| {
            let m = c.pre.instantiate_async(&mut *store).await?;
            m.forge_plugin_solver()
                .call_solve(&mut *store, example, params)
                .await
        })
        .await
    }

    /// Scores one answer with a metric.
    pub async fn score(
        &self,
        c: &ConfiguredMetric,
        seed: u64,
        ctx: CallContext,
        example: &Example,
        answer: &Answer,
    ) -> (CallOutcome<Vec<Score>>, CallContext) {
        let params = c.params.as_str();
        self.call(&c.sandbox, seed, ctx, async |store| {
            let m = c.pre.instantiate_async(&mut *store).await?;
            m.forge_plugin_scorer()
                .call_evaluate(&mut *store, example, answer, params)
                .await
        })
        .await
    }

    /// The score names a metric will produce.
    pub async fn score_names(&self, c: &ConfiguredMetric) -> Result<Vec<String>, Failure> {
        let ctx = CallContext::new(Capabilities::none(), 0);
        let params = c.params.as_str();
        let (out, _) = self
            .call(&c.sandbox, 0, ctx, async |store| {
                let m = c.pre.instantiate_async(&mut *store).await?;
                m.forge_plugin_scorer()
                    .call_names(&mut *store, params)
                    .await
                    .map(Ok::<_, PluginError>)
            })
            .await;
        out.into_result()
    }

    /// A tool's self-description.
    pub async fn describe_tool(&self, c: &ConfiguredTool) -> Result<String, Failure> {
        let ctx = CallContext::new(Capabilities::none(), 0);
        let (out, _) = self
            .call(&c.sandbox, 0, ctx, async |store| {
                let t = c.pre.instantiate_async(&mut *store).await?;
                t.forge_plugin_tool_provider()
                    .call_describe(&mut *store)
                    .await
                    .map(Ok::<_, PluginError>)
            })
            .await;
        out.into_result()
    }

    /// Calls a tool in its own store, with its own grants and limits, and
    /// the capabilities tools get (`caps`: HTTP, indexes; no engine).
    /// `deadline`: the calling example's.
    pub async fn call_tool(
        &self,
        tool: &ConfiguredTool,
        caps: Arc<Capabilities>,
        input: &str,
        seed: u64,
        deadline: budget::Deadline,
    ) -> (CallOutcome<String>, CallContext) {
        let ctx = CallContext::new(caps, seed).until(deadline);
        let params = tool.params.as_str();
        self.call(&tool.sandbox, seed, ctx, async |store| {
            let t = tool.pre.instantiate_async(&mut *store).await?;
            t.forge_plugin_tool_provider()
                .call_call(&mut *store, input, params)
                .await
        })
        .await
    }

    /// Asks an optimizer for candidates. `ctx` carries the interviewer's
    /// capabilities (its model); its calls are recorded there.
    pub async fn propose(
        &self,
        c: &ConfiguredOptimizer,
        seed: u64,
        ctx: CallContext,
        state: &bindings::proposer::State,
    ) -> (CallOutcome<Vec<bindings::proposer::Candidate>>, CallContext) {
        let params = c.params.as_str();
        self.call(&c.sandbox, seed, ctx, async |store| {
            let o = c.pre.instantiate_async(&mut *store).await?;
            o.forge_plugin_proposer()
                .call_propose(&mut *store, state, params)
                .await
        })
        .await
    }

    /// Runs `f` in a fresh store and classifies how it ended.
    async fn call<T>(
        &self,
        sandbox: &Sandbox,
        seed: u64,
        ctx: CallContext,
        f: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<Result<T, PluginError>>,
    ) -> (CallOutcome<T>, CallContext) {
        let mut store = match self.store(sandbox, seed, ctx) {
            Ok(s) => s,
            Err(e) => {
                // Building the sandbox failed (a granted dir is missing, ...).
                let failure = Failure {
                    kind: FailureKind::Host,
                    message: format!("{e:#}"),
                };
                let ctx = CallContext::new(Capabilities::none(), seed);
                return (CallOutcome::Failed(failure), ctx);
            }
        };
        store.data_mut().caps.budget.restart();
        let result = f(&mut store).await;
        let outcome = match result {
            Ok(Ok(v)) => CallOutcome::Ok(v),
            Ok(Err(e)) => CallOutcome::PluginError(failure::plugin_error_text(&e)),
            Err(e) => CallOutcome::Failed(failure::classify(&e, store.data(), sandbox)),
        };
        (outcome, store.into_data().caps.ctx)
    }
}

/// The tool components granted to an experiment's method, run by the
/// `tools` capability through [`ToolRunner`] (each call in its own store).
pub struct ToolComponents {
    pub host: PluginHost,
    pub tools: Vec<ConfiguredTool>,
}

impl ToolRunner for ToolComponents {
    fn run<'a>(&'a self, call: ToolRun<'a>) -> ToolRunning<'a> {
        Box::pin(async move {
            let Some(tool) = self.tools.get(call.index) else {
                let ctx = CallContext::new(call.caps, call.seed);
                let unknown = ToolError::UnknownTool(format!("tool #{}", call.index));
                return (Err(unknown), ctx);
            };
            let (out, ctx) = self
                .host
                .call_tool(tool, call.caps, call.input, call.seed, call.deadline)
                .await;
            let out = match out {
                CallOutcome::Ok(out) => Ok(out),
                CallOutcome::PluginError(e) => Err(ToolError::Failed(e)),
                CallOutcome::Failed(f) => Err(ToolError::Crashed(f.to_string())),
            };
            (out, ctx)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let pinned = format!(
            "name = \"wasmtime\"\nversion = \"{}\"",
            super::WASMTIME_VERSION
        );
        assert!(
            lock.contains(&pinned),
            "update WASMTIME_VERSION to the locked wasmtime"
        );
    }
}
