//! `forge-host index build|list|show|search|eval`: building stored indexes
//! outside an experiment, looking into them, and measuring retrieval
//! against gold documents without an LLM.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::engine::EngineHandle;
use crate::engine::candle_backend::CandleOptions;
use crate::engine::llama::WeightFormat;
use crate::experiment::datasets::Dataset;
use crate::experiment::plan::Paths;
use crate::retrieval::eval::{self, Accumulator, RetrievalScores};
use crate::retrieval::persist::IndexStore;
use crate::retrieval::{
    self, BuildSpec, ChunkParams, Fusion, HnswParams, Index, SearchOptions, Source, Strategy,
};

#[derive(Subcommand)]
pub enum IndexCommand {
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

/// `forge-host index …`: one call per subcommand.
pub async fn command(paths: Paths, command: IndexCommand, json: bool) -> anyhow::Result<()> {
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
                build(&paths, &name, &corpus, chunk, &embedding, json)
            })
            .await??
        }
        IndexCommand::List => list(&paths, json)?,
        IndexCommand::Show { name } => show(&paths, &name, json)?,
        IndexCommand::Search {
            name,
            query,
            strategy,
            k,
            model,
            rerank,
        } => {
            let r = RerankArgs { model, rerank };
            search(&paths, &name, &query, &strategy, k, &r, json).await?
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
            evaluate(
                &paths,
                &name,
                &dataset,
                &gold_field,
                &strategies,
                limit,
                &RerankArgs { model, rerank },
                json,
            )
            .await?
        }
    }
    Ok(())
}

/// Spec for a stored index (or a corpus) with default BM25/HNSW settings.
fn spec(name: &str, source: Source, chunk: ChunkParams, embedding: &str) -> BuildSpec {
    BuildSpec {
        name: name.into(),
        source,
        chunk,
        embedding: embedding.into(),
        bm25: retrieval::Params { k1: 1.2, b: 0.75 },
        tokenizer: retrieval::Tokenizer { stopwords: true },
        hnsw: HnswParams::default(),
        options: SearchOptions::default(),
        embed_always: true,
        progress: true,
    }
}

fn corpus_source(corpus: &str, paths: &Paths) -> anyhow::Result<Source> {
    let (path, sha) = match retrieval::corpus::packaged(corpus) {
        Some(p) => (paths.models_dir.join(p.file), Some(p.sha256.to_string())),
        None => (PathBuf::from(corpus), None),
    };
    if !path.is_file() {
        bail!("corpus {corpus:?}: no file {}", path.display());
    }
    Ok(Source::Corpus {
        path,
        expected_sha256: sha,
    })
}

pub fn build(
    paths: &Paths,
    name: &str,
    corpus: &str,
    chunk: ChunkParams,
    embedding: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        bail!("index name {name:?}: use letters, digits, '-' or '_'");
    }
    let s = spec(name, corpus_source(corpus, paths)?, chunk, embedding);
    let ix = Index::load(&s, &paths.home, &paths.models_dir)
        .with_context(|| format!("building index {name:?}"))?;
    let key = ix.key.clone().expect("embedded indexes are stored");
    IndexStore::open(&paths.home)?.set_name(name, &key)?;
    let out = json!({
        "name": name, "key": key, "documents": ix.documents, "chunks": ix.chunks.len(),
        "embedded": ix.embedded, "build_ms": ix.build_ms,
        "store": IndexStore::path_in(&paths.home).display().to_string(),
    });
    if as_json {
        println!("{out}");
    } else {
        println!(
            "index {name}: {} documents, {} chunks ({} embedded now{}), {:.1} s; key {key} in {}",
            ix.documents,
            ix.chunks.len(),
            ix.embedded,
            if ix.embedded == 0 { ", reloaded" } else { "" },
            ix.build_ms / 1e3,
            IndexStore::path_in(&paths.home).display()
        );
    }
    Ok(())
}

pub fn list(paths: &Paths, as_json: bool) -> anyhow::Result<()> {
    let store = IndexStore::open(&paths.home)?;
    let all = store.list()?;
    if as_json {
        let rows: Vec<_> = all
            .iter()
            .map(|(n, m)| json!({"name": n, "meta": m}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if all.is_empty() {
        println!("no stored indexes (forge-host index build <name> --corpus FILE.jsonl)");
    }
    for (n, m) in all {
        println!(
            "{n:<20} {:>6} docs {:>7} chunks  chunk {}/{}  {}  {}",
            m.documents,
            m.chunks,
            m.parts.chunk.tokens,
            m.parts.chunk.overlap,
            m.parts.embedding,
            m.created
        );
    }
    Ok(())
}

pub fn show(paths: &Paths, name: &str, as_json: bool) -> anyhow::Result<()> {
    let store = IndexStore::open(&paths.home)?;
    let key = store
        .key_of(name)?
        .with_context(|| format!("no stored index named {name:?}"))?;
    let m = store.meta(&key)?.context("index meta missing")?;
    if as_json {
        println!("{}", json!({"name": name, "meta": m}));
        return Ok(());
    }
    println!("index      {name}");
    println!("key        {key}");
    println!("corpus     {} (sha256 {})", m.corpus, m.parts.corpus_sha256);
    println!("documents  {}", m.documents);
    println!(
        "chunks     {} ({} tokens, overlap {})",
        m.chunks, m.parts.chunk.tokens, m.parts.chunk.overlap
    );
    println!(
        "embedding  {} (weights sha256 {})",
        m.parts.embedding, m.parts.weights_sha256
    );
    println!("dims       {}", m.dim);
    println!(
        "build      chunking {:.0} ms, embedding {:.0} ms",
        m.chunk_ms, m.embed_ms
    );
    println!("created    {}", m.created);
    Ok(())
}

/// Loads the model for `reranked` (the packaged default unless `model`).
fn engine(paths: &Paths, model: &str) -> anyhow::Result<EngineHandle> {
    let resolved = crate::engine::model_source::resolve(model, &paths.models_dir)?;
    crate::engine::load::local_blocking(
        &resolved,
        CandleOptions {
            threads: 0,
            weights: WeightFormat::Q8_0,
            ..Default::default()
        },
    )
    .context("loading the model for reranking")
}

/// What `reranked` re-scores with: `rerank = "llm"` asks `model` (the
/// packaged default unless given), anything else is a cross-encoder (a
/// model directory or a Hugging Face id).
#[derive(Clone, Debug)]
pub struct RerankArgs {
    pub model: String,
    pub rerank: String,
}

/// The reranker `o` needs (none unless the strategy is `reranked`).
fn reranker(
    paths: &Paths,
    o: &SearchOptions,
    args: &RerankArgs,
) -> anyhow::Result<Option<Box<dyn retrieval::rerank::Reranker>>> {
    if o.strategy != Strategy::Reranked {
        return Ok(None);
    }
    if args.rerank == "llm" {
        let e = engine(paths, &args.model)?;
        return Ok(Some(retrieval::rerank::named(
            "llm",
            Some(&e),
            None,
            call_cache(paths),
        )?));
    }
    let ce = retrieval::cross_encoder::PairClassifier::load(&args.rerank)
        .context("loading the cross-encoder for reranking")?;
    Ok(Some(retrieval::rerank::named(
        &args.rerank,
        None,
        Some(&std::sync::Arc::new(ce)),
        None,
    )?))
}

/// `hybrid-rrf`, `hybrid-weighted` or a strategy name.
pub fn parse_strategy(s: &str, base: &SearchOptions) -> anyhow::Result<SearchOptions> {
    let mut o = base.clone();
    let (name, fusion) = match s.split_once('-') {
        Some((n, f)) => (n, Some(f)),
        None => (s, None),
    };
    o.strategy = Strategy::parse(name).with_context(|| {
        format!("unknown strategy {s:?}: bm25, dense, hybrid[-rrf|-weighted], reranked[-rrf|-weighted], none")
    })?;
    match fusion {
        None => {}
        Some("rrf") => o.fusion = Fusion::Rrf,
        Some("weighted") => o.fusion = Fusion::Weighted,
        Some(f) => bail!("unknown fusion {f:?} in {s:?}: rrf or weighted"),
    }
    Ok(o)
}

fn load_stored(paths: &Paths, name: &str) -> anyhow::Result<Index> {
    Index::load(
        &spec(name, Source::Stored(name.into()), ChunkParams::WHOLE, ""),
        &paths.home,
        &paths.models_dir,
    )
    .with_context(|| format!("loading index {name:?}"))
}

pub async fn search(
    paths: &Paths,
    name: &str,
    query: &str,
    strategy: &str,
    k: usize,
    rerank: &RerankArgs,
    as_json: bool,
) -> anyhow::Result<()> {
    let ix = load_stored(paths, name)?;
    let mut o = parse_strategy(strategy, &ix.options)?;
    o.rerank = rerank.rerank.clone();
    let reranker = reranker(paths, &o, rerank)?;
    let hits = ix.search_with(query, k, &o, reranker.as_deref()).await?;
    for (i, h) in hits.iter().enumerate() {
        if as_json {
            println!(
                "{}",
                json!({"rank": i + 1, "id": h.chunk.id, "doc_id": h.chunk.doc_id,
                       "title": h.chunk.title, "score": h.score, "text": h.chunk.text})
            );
        } else {
            let text: String = h.chunk.text.chars().take(160).collect();
            println!(
                "{:>2}. {:<28} {:>9.4}  {}\n    {text}",
                i + 1,
                h.chunk.id,
                h.score,
                h.chunk.title.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Runs every strategy over the dataset's questions against their gold
/// document ids.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(
    paths: &Paths,
    name: &str,
    dataset: &Path,
    gold_field: &str,
    strategies: &[String],
    limit: Option<usize>,
    rerank: &RerankArgs,
    as_json: bool,
) -> anyhow::Result<()> {
    let ix = load_stored(paths, name)?;
    let data = Dataset::load(dataset)?;
    let n = limit
        .unwrap_or(data.examples.len())
        .min(data.examples.len());
    let mut rows: Vec<(String, RetrievalScores)> = Vec::new();
    for s in strategies {
        let mut o = parse_strategy(s, &ix.options)?;
        o.rerank = rerank.rerank.clone();
        let reranker = reranker(paths, &o, rerank)?;
        // Enough chunks for ten distinct documents in most cases.
        let depth = (10 * ix.chunks.len()).div_ceil(ix.documents.max(1)).max(10) * 2;
        let mut acc = Accumulator::default();
        for (i, ex) in data.examples.iter().take(n).enumerate() {
            let row = serde_json::to_value(ex)?;
            let gold = eval::field(&row, gold_field).with_context(|| {
                format!(
                    "{}: example {} has no string at {gold_field}",
                    dataset.display(),
                    i + 1
                )
            })?;
            let t = Instant::now();
            let hits = ix
                .search_with(&ex.question, depth, &o, reranker.as_deref())
                .await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let docs = eval::distinct_docs(hits.iter().map(|h| h.chunk.doc_id.as_str()));
            acc.add(eval::gold_rank(&docs, gold), ms);
        }
        rows.push((s.clone(), acc.finish()));
    }
    if as_json {
        let out: Vec<_> = rows
            .iter()
            .map(|(s, r)| json!({"index": name, "strategy": s, "scores": r}))
            .collect();
        println!("{}", serde_json::Value::Array(out));
    } else {
        println!(
            "index {name} ({} docs, {} chunks), {n} questions of {}",
            ix.documents,
            ix.chunks.len(),
            dataset.display()
        );
        println!("| strategy | R@1 | R@3 | R@5 | R@10 | MRR@10 | nDCG@10 | ms/query |");
        println!("|---|---|---|---|---|---|---|---|");
        for (s, r) in &rows {
            println!(
                "| {s} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
                r.recall[0], r.recall[1], r.recall[2], r.recall[3], r.mrr10, r.ndcg10, r.latency_ms
            );
        }
    }
    Ok(())
}

/// The call cache, so reranker scores computed once (here or by a run on
/// the same home) are read back; unusable caches only cost recomputation.
fn call_cache(paths: &Paths) -> Option<std::sync::Arc<crate::engine::call_cache::CallCache>> {
    let path = paths.call_cache.as_deref()?;
    crate::engine::call_cache::CallCache::open(path)
        .inspect_err(|e| tracing::warn!("{e}"))
        .ok()
}
