//! The host's retrieval: named indexes built from the corpora the config
//! names (`[[indexes]]`) or by `forge-host index build`, searched by the
//! `forge:plugin/retrieval` capability with the configured strategy:
//! `bm25`, `dense` (MiniLM embeddings, HNSW), `hybrid` (fusion of both),
//! `reranked` (hybrid candidates re-scored) or `none` (closed book).
//!
//! Documents are cut into chunks by word pieces ([`chunk`]); whole
//! documents (`chunk_tokens = 0`) with BM25 need no model and nothing on
//! disk. Anything that needs the embedding model is stored in
//! `<home>/indexes.redb` ([`persist`]) and reloaded by key.

mod bm25;
pub mod chunk;
pub mod corpus;
pub mod cross_encoder;
mod dense;
pub mod embed;
pub(crate) mod eval;
pub(crate) mod fusion;
pub(crate) mod persist;
pub mod rerank;
mod tokenize;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use bm25::{Bm25, Params};
pub use chunk::{Chunk, ChunkParams};
pub use corpus::{CorpusError, Document};
pub use dense::{DenseIndex, HnswParams};
pub use embed::{BertEmbedder, TextEmbedder};
pub use fusion::Fusion;
pub use tokenize::Tokenizer;

use persist::{IndexStore, KeyParts, Meta};

/// How a search is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Bm25,
    Dense,
    Hybrid,
    Reranked,
    /// No passages: the closed-book baseline.
    None,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Bm25,
        Strategy::Dense,
        Strategy::Hybrid,
        Strategy::Reranked,
        Strategy::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bm25 => "bm25",
            Strategy::Dense => "dense",
            Strategy::Hybrid => "hybrid",
            Strategy::Reranked => "reranked",
            Strategy::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Whether the strategy needs chunk vectors.
    pub fn dense(self) -> bool {
        matches!(
            self,
            Strategy::Dense | Strategy::Hybrid | Strategy::Reranked
        )
    }
}

/// Query-time choices (all from `[[indexes]]`, overridable per search by
/// the CLI).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    pub strategy: Strategy,
    pub fusion: Fusion,
    pub rrf_k: f64,
    /// Weight of the dense scores in weighted fusion (BM25 gets 1 − w).
    pub dense_weight: f64,
    /// `llm`, or a cross-encoder: a model directory or a Hugging Face id.
    pub rerank: String,
    /// Candidates each first-stage retriever contributes to fusion, and
    /// the number of fused candidates the reranker re-scores.
    pub candidates: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            strategy: Strategy::Bm25,
            fusion: Fusion::Rrf,
            rrf_k: fusion::DEFAULT_RRF_K,
            dense_weight: 0.5,
            rerank: "llm".into(),
            candidates: 20,
        }
    }
}

/// Where an index's passages come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A corpus file, with its pinned sha256 when packaged.
    Corpus {
        path: PathBuf,
        expected_sha256: Option<String>,
    },
    /// An index stored by `forge-host index build <name>`.
    Stored(String),
}

/// Everything an index is built from.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub name: String,
    pub source: Source,
    pub chunk: ChunkParams,
    /// Embedding model: `all-minilm-l6-v2`, a directory or a hub id.
    pub embedding: String,
    pub bm25: Params,
    pub tokenizer: Tokenizer,
    pub hnsw: HnswParams,
    pub options: SearchOptions,
    /// Embed even if the strategy does not need it (`index build`).
    pub embed_always: bool,
    /// Show a progress bar while embedding (stderr, terminals only).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    #[error(transparent)]
    Chunk(#[from] chunk::ChunkError),
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    #[error(transparent)]
    CrossEncoder(#[from] cross_encoder::ClassifierError),
    #[error(
        "no stored index named {name:?} in {store} (build it with `forge-host index build {name} --corpus FILE`, or give a corpus)"
    )]
    NotStored { name: String, store: PathBuf },
    #[error(
        "stored index {name:?} was embedded with {model} weights {stored}, but those weights now have sha256 {now}; build it again"
    )]
    WeightsChanged {
        name: String,
        model: String,
        stored: String,
        now: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("index {0:?} has no vectors: the {1} strategy needs an index built with embeddings")]
    NoVectors(String, &'static str),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    #[error(transparent)]
    Rerank(#[from] rerank::RerankError),
}

/// One searchable index.
pub struct Index {
    pub name: String,
    pub options: SearchOptions,
    pub chunks: Vec<Chunk>,
    pub documents: usize,
    pub bm25: Bm25,
    pub dense: Option<DenseIndex>,
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    /// The cross-encoder of `reranked` with `rerank` other than `llm`,
    /// loaded with the index so searches do not load it again.
    pub cross_encoder: Option<Arc<cross_encoder::PairClassifier>>,
    /// sha256 of the corpus (part of the plan hash).
    pub corpus_sha256: String,
    /// The persisted key, when stored.
    pub key: Option<String>,
    /// Wall time of building (or reloading) the index, ms.
    pub build_ms: f64,
    /// Chunks embedded by this build (0 when the vectors were reloaded).
    pub embedded: usize,
}

/// A search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit<'a> {
    pub chunk: &'a Chunk,
    pub score: f64,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Embeds `texts` in length-sorted batches (less padding), with a bar.
pub fn embed_all(
    embedder: &dyn TextEmbedder,
    texts: &[String],
    progress: bool,
) -> Result<Vec<f32>, embed::EmbedError> {
    let bar = if progress {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(texts.len() as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "embedding {bar:30} {pos}/{len} chunks [{elapsed_precise} < {eta}] {per_sec}",
            )
            .expect("valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let dim = embedder.dim();
    let mut out = vec![0f32; texts.len() * dim];
    for group in order.chunks(64) {
        let batch: Vec<String> = group.iter().map(|&i| texts[i].clone()).collect();
        let vs = embedder.embed(&batch)?;
        for (&i, v) in group.iter().zip(vs) {
            out[i * dim..(i + 1) * dim].copy_from_slice(&v);
        }
        bar.inc(group.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

impl Index {
    /// BM25 over the whole documents of the corpus at `path` (no model, no
    /// store): the default index.
    pub fn build(
        name: &str,
        path: &Path,
        expected_sha256: Option<&str>,
        params: Params,
        tokenizer: Tokenizer,
    ) -> Result<Self, CorpusError> {
        let spec = BuildSpec {
            name: name.into(),
            source: Source::Corpus {
                path: path.into(),
                expected_sha256: expected_sha256.map(str::to_string),
            },
            chunk: ChunkParams::WHOLE,
            embedding: embed::DEFAULT_MODEL.into(),
            bm25: params,
            tokenizer,
            hnsw: HnswParams::default(),
            options: SearchOptions::default(),
            embed_always: false,
            progress: false,
        };
        match Self::load(&spec, Path::new(""), Path::new("")) {
            Ok(ix) => Ok(ix),
            Err(BuildError::Corpus(e)) => Err(e),
            Err(other) => unreachable!("whole-document BM25 needs no model or store: {other}"),
        }
    }

    /// Builds (or reloads) an index. `home` holds `indexes.redb`;
    /// `models_dir` the packaged embedding model.
    pub fn load(spec: &BuildSpec, home: &Path, models_dir: &Path) -> Result<Self, BuildError> {
        let started = Instant::now();
        let _span = tracing::info_span!("index_build", index = %spec.name).entered();
        let needs_vectors = spec.embed_always || spec.options.strategy.dense();
        let load_embedder = |id: &str| -> Result<Arc<BertEmbedder>, BuildError> {
            Ok(Arc::new(BertEmbedder::load(id, models_dir)?))
        };

        let (chunks, documents, corpus_sha256, key, vectors, embedder, embedded) = match &spec
            .source
        {
            Source::Corpus {
                path,
                expected_sha256,
            } => {
                let loaded = corpus::load(path, expected_sha256.as_deref())?;
                if spec.chunk.tokens == 0 && !needs_vectors {
                    // Today's default: BM25 over whole documents, nothing stored.
                    let chunks = chunk::whole(&loaded.documents);
                    let n = loaded.documents.len();
                    (chunks, n, loaded.sha256, None, None, None, 0)
                } else {
                    let emb = load_embedder(&spec.embedding)?;
                    let parts = KeyParts {
                        corpus_sha256: loaded.sha256.clone(),
                        chunk: spec.chunk,
                        embedding: spec.embedding.clone(),
                        weights_sha256: emb.weights_sha256().into(),
                    };
                    let key = parts.key();
                    // Held only to read or write, never while embedding: other
                    // processes (sweep cells, `index build`) share the file.
                    let store = IndexStore::open(home)?;
                    let t = Instant::now();
                    let found = store.meta(&key)?;
                    drop(store);
                    let (meta, chunks, mut vectors) = match found {
                        Some(m) => {
                            let store = IndexStore::open(home)?;
                            let c = store.chunks(&key)?.unwrap_or_default();
                            let v = store.vectors(&key)?;
                            (m, c, v)
                        }
                        None => {
                            let c = chunk::chunk(&loaded.documents, spec.chunk, emb.tokenizer())?;
                            let m = Meta {
                                key: key.clone(),
                                parts,
                                corpus: path.display().to_string(),
                                documents: loaded.documents.len(),
                                chunks: c.len(),
                                dim: 0,
                                chunk_ms: t.elapsed().as_secs_f64() * 1e3,
                                embed_ms: 0.0,
                                created: now_rfc3339(),
                            };
                            IndexStore::open(home)?.put(&m, &c, None)?;
                            (m, c, None)
                        }
                    };
                    let mut embedded = 0;
                    if needs_vectors && vectors.is_none() {
                        let (v, m) = embed_and_store(home, meta, &chunks, &*emb, spec.progress)?;
                        embedded = m.chunks;
                        vectors = Some(v);
                    }
                    let docs = loaded.documents.len();
                    let e: Arc<dyn TextEmbedder> = emb;
                    (
                        chunks,
                        docs,
                        loaded.sha256,
                        Some(key),
                        vectors,
                        Some(e),
                        embedded,
                    )
                }
            }
            Source::Stored(name) => {
                let store = IndexStore::open(home)?;
                let not_stored = || BuildError::NotStored {
                    name: name.clone(),
                    store: IndexStore::path_in(home),
                };
                let key = store.key_of(name)?.ok_or_else(not_stored)?;
                let meta = store.meta(&key)?.ok_or_else(not_stored)?;
                let chunks = store.chunks(&key)?.unwrap_or_default();
                let mut vectors = store.vectors(&key)?;
                drop(store);
                let mut embedder = None;
                let mut embedded = 0;
                if needs_vectors {
                    let emb = load_embedder(&meta.parts.embedding)?;
                    if emb.weights_sha256() != meta.parts.weights_sha256 {
                        return Err(BuildError::WeightsChanged {
                            name: name.clone(),
                            model: meta.parts.embedding.clone(),
                            stored: meta.parts.weights_sha256.clone(),
                            now: emb.weights_sha256().into(),
                        });
                    }
                    if vectors.is_none() {
                        let (v, m) =
                            embed_and_store(home, meta.clone(), &chunks, &*emb, spec.progress)?;
                        embedded = m.chunks;
                        vectors = Some(v);
                    }
                    embedder = Some(emb as Arc<dyn TextEmbedder>);
                }
                let sha = meta.parts.corpus_sha256.clone();
                (
                    chunks,
                    meta.documents,
                    sha,
                    Some(key),
                    vectors,
                    embedder,
                    embedded,
                )
            }
        };

        let cross_encoder = match &spec.options {
            o if o.strategy == Strategy::Reranked && o.rerank != "llm" => {
                Some(Arc::new(cross_encoder::PairClassifier::load(&o.rerank)?))
            }
            _ => None,
        };
        let texts: Vec<String> = chunks.iter().map(Chunk::indexed_text).collect();
        let bm25 = Bm25::build(spec.bm25, spec.tokenizer, texts.iter().map(String::as_str));
        let dense = match (&vectors, &embedder) {
            (Some(v), Some(e)) if needs_vectors => {
                Some(DenseIndex::build(e.dim(), v.clone(), spec.hnsw, true))
            }
            _ => None,
        };
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            index = spec.name,
            documents,
            chunks = chunks.len(),
            embedded,
            build_ms,
            "index built"
        );
        Ok(Self {
            name: spec.name.clone(),
            options: spec.options.clone(),
            chunks,
            documents,
            bm25,
            dense,
            embedder,
            cross_encoder,
            corpus_sha256,
            key,
            build_ms,
            embedded,
        })
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, SearchError> {
        let e = self
            .embedder
            .as_ref()
            .ok_or(SearchError::NoVectors(self.name.clone(), "dense"))?;
        Ok(e.embed(&[query.to_string()])?.remove(0))
    }

    /// First-stage ranking (chunk index, score), best first. `reranked`
    /// gives the fused candidates the reranker will re-score.
    pub fn rank(
        &self,
        query: &str,
        k: usize,
        o: &SearchOptions,
    ) -> Result<Vec<(u32, f64)>, SearchError> {
        let dense = |k: usize| -> Result<Vec<(u32, f64)>, SearchError> {
            let ix = self
                .dense
                .as_ref()
                .ok_or(SearchError::NoVectors(self.name.clone(), o.strategy.name()))?;
            Ok(ix.search(&self.embed_query(query)?, k))
        };
        Ok(match o.strategy {
            Strategy::None => Vec::new(),
            Strategy::Bm25 => self.bm25.search(query, k),
            Strategy::Dense => dense(k)?,
            Strategy::Hybrid | Strategy::Reranked => {
                let k = if o.strategy == Strategy::Reranked {
                    k.max(o.candidates)
                } else {
                    k
                };
                let depth = k.max(o.candidates);
                let d = dense(depth)?;
                let s = self.bm25.search(query, depth);
                let mut fused = match o.fusion {
                    Fusion::Rrf => fusion::rrf(&[&d, &s], o.rrf_k),
                    Fusion::Weighted => fusion::weighted(&d, &s, o.dense_weight),
                };
                fused.truncate(k);
                fused
            }
        })
    }

    /// A full search: first stage, then (for `reranked`) the reranker.
    pub async fn search_with(
        &self,
        query: &str,
        k: usize,
        o: &SearchOptions,
        reranker: Option<&dyn rerank::Reranker>,
    ) -> Result<Vec<Hit<'_>>, SearchError> {
        let mut ranked = self.rank(query, k, o)?;
        if o.strategy == Strategy::Reranked {
            let r = match reranker {
                Some(r) => r,
                None => return Err(rerank::RerankError::Engine("no reranker".into()).into()),
            };
            let texts: Vec<String> = ranked
                .iter()
                .map(|&(i, _)| self.chunks[i as usize].indexed_text())
                .collect();
            let scores = r.score(query, &texts).await?;
            ranked = rerank::reorder(&ranked, &scores)?;
        }
        ranked.truncate(k);
        Ok(self.hits(&ranked))
    }

    /// Search with the configured options, no reranker (sync strategies).
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit<'_>>, SearchError> {
        let mut r = self.rank(query, k, &self.options)?;
        r.truncate(k);
        Ok(self.hits(&r))
    }

    pub fn hits(&self, ranked: &[(u32, f64)]) -> Vec<Hit<'_>> {
        ranked
            .iter()
            .map(|&(i, score)| Hit {
                chunk: &self.chunks[i as usize],
                score,
            })
            .collect()
    }
}

fn embed_and_store(
    home: &Path,
    mut meta: Meta,
    chunks: &[Chunk],
    emb: &dyn TextEmbedder,
    progress: bool,
) -> Result<(Vec<f32>, Meta), BuildError> {
    let t = Instant::now();
    let texts: Vec<String> = chunks.iter().map(Chunk::indexed_text).collect();
    let v = embed_all(emb, &texts, progress)?;
    meta.dim = emb.dim();
    meta.embed_ms = t.elapsed().as_secs_f64() * 1e3;
    tracing::info!(chunks = chunks.len(), embed_ms = meta.embed_ms, "embedded");
    IndexStore::open(home)?.put(&meta, chunks, Some(&v))?;
    Ok((v, meta))
}

/// The indexes of one experiment.
#[derive(Default, Clone)]
pub struct Indexes {
    pub list: Vec<Arc<Index>>,
}

impl Indexes {
    pub fn get(&self, name: &str) -> Option<&Index> {
        self.list.iter().find(|i| i.name == name).map(|i| &**i)
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|i| i.name.as_str()).collect()
    }
}
