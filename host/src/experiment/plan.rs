//! Turning a config into concrete, hashed work: plugins found and loaded,
//! dataset read and sampled, model loaded, score names known.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::components::capabilities::tools::{Tool, ToolRunner};
use crate::components::capabilities::{Capabilities, HttpClient, ToolBox};
use crate::components::{
    Configured, ConfiguredMethod, ConfiguredMetric, LoadError, PluginHost, ToolComponents,
    WorldKind,
};
use crate::engine::call_cache::CallCache;
use crate::engine::candle_backend::CandleOptions;
use crate::engine::llama::WeightFormat;
use crate::engine::openai_backend::{OpenAiBackend, OpenAiOptions};
use crate::engine::{EngineHandle, model_source};
use crate::experiment::config::{ConfigError, ConfigFile, PluginRef};
use crate::experiment::datasets::Dataset;
use crate::results::records::PluginRecord;
use crate::retrieval::{self, Index, Indexes};

/// Where things live on disk.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Store and caches (`--home`, `FORGE_HOME`, default `.forge`).
    pub home: PathBuf,
    /// Searched in order for `<name>.wasm`.
    pub plugin_dirs: Vec<PathBuf>,
    /// Packaged models.
    pub models_dir: PathBuf,
    /// The call cache (`FORGE_CALL_CACHE`, default `<home>/cache/calls.redb`);
    /// None = off (`run --no-cache`).
    pub call_cache: Option<PathBuf>,
}

impl Paths {
    /// Defaults that work from a checkout: plugins in `target/plugins`, models
    /// in `models/`, found relative to the binary (target/<profile>/forge-host)
    /// as well as to the current directory.
    pub fn discover(home: Option<PathBuf>, extra_plugin_dirs: Vec<PathBuf>) -> Self {
        let exe_root = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent()?.parent()?.parent().map(Path::to_path_buf));
        let home = home
            .or_else(|| std::env::var_os("FORGE_HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".forge"));
        let mut plugin_dirs = extra_plugin_dirs;
        if let Some(p) = std::env::var_os("FORGE_PLUGIN_PATH") {
            plugin_dirs.extend(std::env::split_paths(&p));
        }
        plugin_dirs.push(PathBuf::from("target/plugins"));
        if let Some(root) = &exe_root {
            plugin_dirs.push(root.join("target/plugins"));
        }
        let models_dir = std::env::var_os("FORGE_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let local = PathBuf::from("models");
                match &exe_root {
                    Some(root) if !local.is_dir() => root.join("models"),
                    _ => local,
                }
            });
        let call_cache = Some(
            std::env::var_os("FORGE_CALL_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("cache/calls.redb")),
        );
        Self {
            home,
            plugin_dirs,
            models_dir,
            call_cache,
        }
    }

    pub fn store(&self) -> PathBuf {
        self.home.join("forge.redb")
    }

    pub fn component_cache(&self) -> PathBuf {
        self.home.join("cache/components")
    }
}

/// Everything needed to run examples.
pub struct Plan {
    pub config: ConfigFile,
    pub dataset: Dataset,
    /// Dataset indices of the examples, in run order.
    pub indices: Vec<usize>,
    pub host: PluginHost,
    pub method: ConfiguredMethod,
    pub metrics: Vec<ConfiguredMetric>,
    /// The tool components granted to the method (run through `caps.tools`).
    pub tools: Arc<ToolComponents>,
    /// The score names each metric declared, in `metrics` order.
    pub metric_names: Vec<Vec<String>>,
    pub caps: Arc<Capabilities>,
    pub engine: EngineHandle,
    pub score_names: Vec<String>,
    pub plan_sha256: String,
    pub config_sha256: String,
    /// sha256 of the running forge-host binary.
    pub host_sha256: String,
    /// Things the user should know before the run (a sample larger than
    /// the dataset), placed in the config like its errors.
    pub warnings: Vec<ConfigError>,
}

impl Plan {
    /// Loads everything a config names. `limit` caps the number of examples
    /// (after the seeded sample), e.g. for a quick look.
    pub async fn load(
        config_path: &Path,
        paths: &Paths,
        limit: Option<usize>,
    ) -> anyhow::Result<Plan> {
        Self::from_config(ConfigFile::load(config_path)?, paths, limit).await
    }

    /// As [`Plan::load`], from a config already parsed (e.g. the text stored
    /// with an experiment).
    pub async fn from_config(
        config: ConfigFile,
        paths: &Paths,
        limit: Option<usize>,
    ) -> anyhow::Result<Plan> {
        let host = PluginHost::new(Some(paths.component_cache()))
            .context("starting the component host")?;
        let c = &config.config;

        let method = bind(&config, &host, paths, "method", &c.method)?;
        let metrics = c
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| bind(&config, &host, paths, &format!("metrics[{i}]"), m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tools = Vec::new();
        let mut tool_components = Vec::new();
        for (i, t) in c.tools.iter().enumerate() {
            let b = bind(&config, &host, paths, &format!("tools[{i}]"), t)?;
            let description = host.describe_tool(&b).await.map_err(|f| {
                config.error_at(
                    &format!("tools[{i}].plugin"),
                    format!("describe failed: {f}"),
                )
            })?;
            // What the method calls it by: `name`, else the plugin's own.
            let name = t.name.clone().unwrap_or_else(|| b.plugin.name.clone());
            if let Some(j) = tools.iter().position(|x: &Tool| x.name == name) {
                let field = if t.name.is_some() { "name" } else { "plugin" };
                return Err(config
                    .error_at(
                        &format!("tools[{i}].{field}"),
                        format!(
                            "a second tool named {name:?} (tools[{j}] is one): give one of them \
                             another `name`"
                        ),
                    )
                    .into());
            }
            tools.push(Tool { name, description });
            tool_components.push(b);
        }
        let tool_components = Arc::new(ToolComponents {
            host: host.clone(),
            tools: tool_components,
        });

        let dataset = Dataset::load_as(&config.resolve(&c.dataset.path), c.dataset.kind)?;
        let mut indices =
            dataset.sample_indices(c.dataset.sample, c.dataset.seed.unwrap_or(c.seed));
        let mut warnings = Vec::new();
        let total = dataset.examples.len();
        // As lm-eval's --limit: a sample beyond the file runs all of it, but
        // says so (an error would also stop verify of older experiments).
        if let Some(n) = c.dataset.sample.filter(|n| *n > total) {
            let examples = if total == 1 { "example" } else { "examples" };
            let msg = format!(
                "sample = {n} but {} has {total} {examples}: running all {total}",
                c.dataset.path
            );
            warnings.push(config.error_at("dataset.sample", msg));
        }
        if dataset.skipped_empty > 0 {
            let n = dataset.skipped_empty;
            let pairs = if n == 1 { "pair" } else { "pairs" };
            let msg = format!(
                "{n} preference {pairs} of {} left out: chosen or rejected is empty",
                c.dataset.path
            );
            warnings.push(config.error_at("dataset.path", msg));
        }
        if let Some(limit) = limit {
            indices.truncate(limit);
        }

        let (metric_names, score_names) = declared_scores(&config, &host, &metrics).await?;

        // Before the model: a corpus that is not fetched fails fast.
        let indexes = build_indexes(&config, paths).await?;

        let engine = start_engine(&config, paths).await?;

        let embedder = match &c.embeddings.model {
            None => None,
            Some(spec) => Some(
                load_embedder(spec, &indexes, paths)
                    .await
                    .map_err(|e| config.error_at("embeddings.model", format!("{spec:?}: {e}")))?,
            ),
        };

        let nli = match &c.nli.model {
            None => None,
            Some(spec) => Some(
                crate::components::capabilities::nli::load(&model_path(&config, spec))
                    .await
                    .map_err(|e| config.error_at("nli.model", e))?,
            ),
        };

        let http = Arc::new(HttpClient::new(&c.http));
        let caps = Arc::new(Capabilities {
            engine: Some(engine.clone()),
            generation: c.generation.clone(),
            tools: Arc::new(ToolBox {
                tools,
                runner: Some(tool_components.clone() as Arc<dyn ToolRunner>),
                caps: Some({
                    let mut t = Capabilities::for_tools(http.clone(), indexes.clone());
                    // The host's reranker (`strategy = "reranked"`) scores
                    // with the experiment's model when a tool searches; the
                    // tool world imports no inference, so tools get none.
                    if let Some(c) = Arc::get_mut(&mut t) {
                        c.engine = Some(engine.clone());
                    }
                    t
                }),
            }),
            http,
            indexes,
            embedder,
            nli,
            call_cache: match (&paths.call_cache, c.run.cache) {
                (Some(path), true) => Some(CallCache::open(path)?),
                _ => None,
            },
        });

        let config_sha256 = hex::encode(Sha256::digest(config.text.as_bytes()));
        let host_sha256 = host_binary_sha256();
        let mut h = Sha256::new();
        h.update(config_sha256.as_bytes());
        // A rebuilt host may compute differently: it does not resume an
        // experiment started by another build.
        h.update(host_sha256.as_bytes());
        h.update(engine.info().sha256.as_bytes());
        // How the weights are held, a merged adapter's sha256 included.
        h.update(engine.info().weights.as_bytes());
        h.update(dataset.sha256.as_bytes());
        let plugins = std::iter::once(&method.plugin).chain(metrics.iter().map(|m| &m.plugin));
        for p in plugins {
            h.update(p.sha256.as_bytes());
        }
        for t in &tool_components.tools {
            h.update(t.plugin.sha256.as_bytes());
        }
        if let Some(e) = &caps.embedder {
            h.update(e.weights_sha256().as_bytes());
        }
        if let Some(m) = &caps.nli {
            h.update(m.weights_sha256().as_bytes());
        }
        for ix in &caps.indexes.list {
            h.update(ix.corpus_sha256.as_bytes());
            // The stored chunks/vectors (a name may point at a rebuilt index).
            h.update(ix.key.as_deref().unwrap_or("-").as_bytes());
            if let Some(e) = &ix.embedder {
                h.update(e.weights_sha256().as_bytes());
            }
            if let Some(ce) = &ix.cross_encoder {
                h.update(ce.weights_sha256().as_bytes());
            }
        }
        h.update(format!("{indices:?}").as_bytes());
        let plan_sha256 = hex::encode(h.finalize());

        Ok(Plan {
            config,
            dataset,
            indices,
            host,
            method,
            metrics,
            tools: tool_components,
            metric_names,
            caps,
            engine,
            score_names,
            plan_sha256,
            config_sha256,
            host_sha256,
            warnings,
        })
    }

    /// Plugins (method and metrics) whose file no longer matches what is
    /// loaded, with the new bytes' hash.
    pub fn changed_plugins(&self) -> Vec<(String, String)> {
        let bound = std::iter::once((&self.method.plugin, &self.method.field))
            .chain(self.metrics.iter().map(|m| (&m.plugin, &m.field)));
        bound
            .filter_map(|(plugin, field)| {
                let bytes = std::fs::read(&plugin.path).ok()?;
                let sha = hex::encode(Sha256::digest(&bytes));
                (sha != plugin.sha256).then(|| (field.clone(), sha))
            })
            .collect()
    }

    /// Reloads the plugin bound at `field` (`method`, `metrics[0]`, ...) from
    /// its file (hot reload); keeps everything else, the model included.
    pub fn reload(&mut self, field: &str) -> Result<(), LoadError> {
        fn reload<K: WorldKind>(
            host: &PluginHost,
            bound: &mut Configured<K>,
        ) -> Result<(), LoadError> {
            let plugin = host.load_as(&bound.plugin.path, K::WORLD)?;
            *bound = bound.with_plugin(Arc::new(plugin))?;
            Ok(())
        }
        if field == "method" {
            return reload(&self.host, &mut self.method);
        }
        match self.metrics.iter_mut().find(|m| m.field == field) {
            Some(m) => reload(&self.host, m),
            None => Ok(()),
        }
    }

    pub fn plugin_records(&self) -> Vec<PluginRecord> {
        let mut out = vec![plugin_record("method", &self.method)];
        out.extend(self.metrics.iter().map(|m| plugin_record("metric", m)));
        out.extend(self.tools.tools.iter().map(|t| plugin_record("tool", t)));
        out
    }
}

/// The backend `[model]` names, behind an [`EngineHandle`]: the embedded
/// candle engine on its own thread, or a remote OpenAI-compatible server
/// called concurrently.
/// The score names each metric declares (in `metrics` order), and all of
/// them in one list; a name two metrics produce is an error at the second.
pub(crate) async fn declared_scores(
    config: &ConfigFile,
    host: &PluginHost,
    metrics: &[ConfiguredMetric],
) -> Result<(Vec<Vec<String>>, Vec<String>), ConfigError> {
    let mut score_names = Vec::new();
    let mut metric_names = Vec::new();
    for m in metrics {
        let names = host.score_names(m).await.map_err(|f| {
            config.error_at(
                &format!("{}.plugin", m.field),
                format!("metric failed to list its scores: {f}"),
            )
        })?;
        metric_names.push(names.clone());
        for n in names {
            if score_names.contains(&n) {
                return Err(config.error_at(
                    &format!("{}.plugin", m.field),
                    format!("score {n:?} is produced twice"),
                ));
            }
            score_names.push(n);
        }
    }
    Ok((metric_names, score_names))
}

pub async fn start_engine(config: &ConfigFile, paths: &Paths) -> anyhow::Result<EngineHandle> {
    let c = &config.config;
    if c.model.backend == crate::experiment::config::ModelBackend::Openai {
        let m = &c.model;
        let api_key = match &m.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                config.error_at(
                    "model.api_key_env",
                    format!("environment variable {var} is not set"),
                )
            })?),
            None => None,
        };
        let opts = OpenAiOptions {
            api_key,
            max_concurrency: m.max_concurrency,
            timeout: std::time::Duration::from_millis(m.timeout_ms),
            retries: m.retries,
            ..OpenAiOptions::new(
                m.base_url.as_deref().unwrap_or_default(),
                m.model.as_deref().unwrap_or_default(),
            )
        };
        let backend = tokio::task::spawn_blocking(move || OpenAiBackend::connect(opts))
            .await?
            .map_err(|e| config.error_at("model.base_url", e.to_string()))?;
        return Ok(EngineHandle::concurrent(Arc::new(backend)));
    }
    // A path to a model file is relative to the config; aliases are not.
    let source = if c.model.source.ends_with(".gguf") {
        config.resolve(&c.model.source).display().to_string()
    } else {
        c.model.source.clone()
    };
    let resolved = model_source::resolve(&source, &paths.models_dir)
        .map_err(|e| config.error_at("model.source", e.to_string()))?;
    let weights = c
        .model
        .weights
        .parse::<WeightFormat>()
        .map_err(|e| config.error_at("model.weights", e))?;
    let options = CandleOptions {
        threads: c.model.threads,
        weights,
        prefix_cache_bytes: c.model.prefix_cache_mib << 20,
        adapter: c.model.adapter.as_deref().map(|a| config.resolve(a)),
        device: c
            .model
            .device
            .parse()
            .map_err(|e: String| config.error_at("model.device", e))?,
    };
    crate::engine::load::local(resolved, options)
        .await
        .map_err(|e| {
            // A bad adapter is the config's `model.adapter` line.
            match e.downcast_ref::<crate::engine::EngineError>() {
                Some(crate::engine::EngineError::Adapter(m)) => {
                    config.error_at("model.adapter", m.clone()).into()
                }
                _ => e,
            }
        })
}

/// The `[embeddings]` model: an index's already loaded encoder when it is
/// the same model, else loaded (on the blocking pool).
async fn load_embedder(
    spec: &str,
    indexes: &Indexes,
    paths: &Paths,
) -> Result<Arc<dyn retrieval::embed::TextEmbedder>, retrieval::embed::EmbedError> {
    if let Some(e) = indexes
        .list
        .iter()
        .filter_map(|ix| ix.embedder.clone())
        .find(|e| e.model_id() == spec)
    {
        return Ok(e);
    }
    let spec = spec.to_string();
    let models_dir = paths.models_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        retrieval::embed::BertEmbedder::load(&spec, &models_dir)
    })
    .await
    .map_err(|e| retrieval::embed::EmbedError::Run(format!("embedding thread: {e}")))??;
    Ok(Arc::new(loaded))
}

/// Builds the `[[indexes]]` of a config (each on the blocking pool): a
/// packaged corpus from the models directory, its pinned sha256 checked, a
/// file relative to the config, or (no `corpus`) an index stored by
/// `forge-host index build`. The embedding model loads only when the
/// strategy or the chunking needs it; embeddings are reused from
/// `<home>/indexes.redb` when the same corpus, chunking and model were
/// embedded before.
pub async fn build_indexes(config: &ConfigFile, paths: &Paths) -> anyhow::Result<Indexes> {
    let mut list = Vec::new();
    for (i, ix) in config.config.indexes.iter().enumerate() {
        let source = match &ix.corpus {
            None => retrieval::Source::Stored(ix.name.clone()),
            Some(corpus) => {
                let (path, sha) = match retrieval::corpus::packaged(corpus) {
                    Some(p) => (paths.models_dir.join(p.file), Some(p.sha256.to_string())),
                    None => (config.resolve(corpus), None),
                };
                if !path.is_file() {
                    return Err(config
                        .error_at(
                            &format!("indexes[{i}].corpus"),
                            format!(
                                "corpus {corpus:?} is not fetched: no {} (run scripts/fetch-data.sh)",
                                path.display()
                            ),
                        )
                        .into());
                }
                retrieval::Source::Corpus {
                    path,
                    expected_sha256: sha,
                }
            }
        };
        let mut spec = index_spec(ix, source, false);
        spec.options.rerank = model_path(config, &ix.rerank);
        let (home, models) = (paths.home.clone(), paths.models_dir.clone());
        let built = tokio::task::spawn_blocking(move || Index::load(&spec, &home, &models))
            .await?
            .map_err(|e| {
                let field = match (&e, &ix.corpus) {
                    (retrieval::BuildError::Embed(_), _) => "embedding",
                    (retrieval::BuildError::Chunk(_), _) => "chunk_tokens",
                    (retrieval::BuildError::CrossEncoder(_), _) => "rerank",
                    (_, None) => "name",
                    _ => "corpus",
                };
                config.error_at(&format!("indexes[{i}].{field}"), e.to_string())
            })?;
        list.push(Arc::new(built));
    }
    Ok(Indexes { list })
}

/// A model named in a config: a directory relative to the config file
/// when there is one, else as written (an alias or a Hugging Face id).
fn model_path(config: &ConfigFile, spec: &str) -> String {
    let p = config.resolve(spec);
    if spec != "llm" && p.is_dir() {
        p.display().to_string()
    } else {
        spec.to_string()
    }
}

/// What `[[indexes]]` fields ask `retrieval::Index::build` for.
pub fn index_spec(
    ix: &crate::experiment::config::IndexConfig,
    source: retrieval::Source,
    embed_always: bool,
) -> retrieval::BuildSpec {
    retrieval::BuildSpec {
        name: ix.name.clone(),
        source,
        chunk: retrieval::ChunkParams {
            tokens: ix.chunk_tokens,
            overlap: ix.chunk_overlap,
        },
        embedding: ix.embedding.clone(),
        bm25: retrieval::Params { k1: ix.k1, b: ix.b },
        tokenizer: retrieval::Tokenizer {
            stopwords: ix.stopwords,
        },
        hnsw: ix.hnsw,
        options: ix.search_options(),
        embed_always,
        progress: true,
    }
}

/// How a bound plugin is recorded with an experiment.
pub(crate) fn plugin_record<K: WorldKind>(role: &str, b: &Configured<K>) -> PluginRecord {
    PluginRecord {
        role: role.into(),
        name: b.plugin.name.clone(),
        path: b.plugin.path.display().to_string(),
        sha256: b.plugin.sha256.clone(),
        contract: format!(
            "{}@{}",
            crate::components::contract::PACKAGE,
            b.plugin.contract.version
        ),
        params: serde_json::from_str(&b.params).unwrap_or_default(),
    }
}

/// sha256 of the running executable ("unknown" if it cannot be read).
fn host_binary_sha256() -> String {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
        .unwrap_or_else(|_| "unknown".into())
}

/// Finds, loads and checks one plugin named in the config.
pub(crate) fn bind<K: WorldKind>(
    config: &ConfigFile,
    host: &PluginHost,
    paths: &Paths,
    field: &str,
    r: &PluginRef,
) -> Result<Configured<K>, ConfigError> {
    let world = K::WORLD;
    let at = format!("{field}.plugin");
    let path = find_plugin(config, paths, &r.plugin).ok_or_else(|| {
        config.error_at(
            &at,
            format!(
                "unknown {world} plugin {:?}: no {}.wasm in {}",
                r.plugin,
                r.plugin,
                paths
                    .plugin_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let grants = declared_grants(config, field, &path, r, world)?;
    let mut sandbox = config.config.sandbox.sandbox(&grants, &r.limits);
    sandbox.base_dir = Some(config.resolve("."));
    host.configure(&path, sandbox, r.params_json(), field)
        .map_err(|e| config.error_at(&at, e.to_string()))
}

/// The grants a plugin gets. With a manifest beside the component
/// (`x.plugin.toml`), only what it declares and the config grants, and a
/// config error naming every declared need left out; without one, the
/// config's grants as written.
fn declared_grants(
    config: &ConfigFile,
    field: &str,
    component: &Path,
    r: &PluginRef,
    world: crate::components::World,
) -> Result<crate::experiment::config::Grants, ConfigError> {
    use crate::components::manifest::Manifest;
    let at = format!("{field}.plugin");
    let Some((manifest_path, m)) =
        Manifest::beside(component).map_err(|e| config.error_at(&at, e.to_string()))?
    else {
        return Ok(r.grants.clone());
    };
    if m.world != world.to_string() {
        return Err(config.error_at(
            &at,
            format!(
                "{} says world {:?}, but this field takes a {world} plugin",
                manifest_path.display(),
                m.world
            ),
        ));
    }
    let d = &config.config.sandbox;
    let memory_mb = r.limits.memory_mb.unwrap_or(d.memory_mb);
    let timeout_ms = r.limits.timeout_ms.unwrap_or(d.timeout_ms);
    m.needs
        .grant(&r.grants, memory_mb, timeout_ms)
        .map_err(|missing| {
            let fixes: Vec<String> = missing.iter().map(|m| m.fix.clone()).collect();
            config.error_at(
                &at,
                format!(
                    "plugin {:?} needs what this experiment does not grant (declared in {}); add to {field}: {}",
                    m.name,
                    manifest_path.display(),
                    fixes.join("; ")
                ),
            )
        })
}

fn find_plugin(config: &ConfigFile, paths: &Paths, name: &str) -> Option<PathBuf> {
    if name.ends_with(".wasm") || name.contains('/') {
        let p = config.resolve(name);
        return p.is_file().then_some(p);
    }
    paths
        .plugin_dirs
        .iter()
        .map(|d| d.join(format!("{name}.wasm")))
        .find(|p| p.is_file())
}
