//! Retrieval on the full SQuAD dev corpus (2,067 paragraphs, chunked at 128
//! word pieces): MiniLM embedding throughput, HNSW build time, query
//! latency of HNSW vs exact search on the same vectors, recall@10 of HNSW
//! against exact, and BM25 query throughput. The chunk vectors are embedded
//! once and kept in `target/bench-home/indexes.redb` (or `$FORGE_BENCH_HOME`),
//! as `index build` does.
//!
//!   cargo bench -p forge-host --bench retrieval --profile dev

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use forge_host::experiment::datasets::Dataset;
use forge_host::retrieval::embed::{self, BertEmbedder, TextEmbedder};
use forge_host::retrieval::{
    BuildSpec, ChunkParams, DenseIndex, HnswParams, Index, Params, SearchOptions, Source, Strategy,
    Tokenizer, embed_all,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

struct Fixture {
    index: Index,
    embedder: BertEmbedder,
    queries: Vec<String>,
    query_vectors: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let models = repo().join("models");
    let spec = BuildSpec {
        name: "squad-128".into(),
        source: Source::Corpus {
            path: repo().join("../shared/data/squad.corpus.jsonl"),
            expected_sha256: None,
        },
        chunk: ChunkParams {
            tokens: 128,
            overlap: 16,
        },
        embedding: embed::DEFAULT_MODEL.into(),
        bm25: Params::default(),
        tokenizer: Tokenizer { stopwords: true },
        hnsw: HnswParams::default(),
        options: SearchOptions {
            strategy: Strategy::Dense,
            ..SearchOptions::default()
        },
        embed_always: true,
        progress: true,
    };
    let t = Instant::now();
    let home = std::env::var_os("FORGE_BENCH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/bench-home"));
    let index = Index::load(&spec, &home, &models).unwrap();
    eprintln!(
        "squad-128: {} docs, {} chunks, loaded in {:.1} s ({} embedded now)",
        index.documents,
        index.chunks.len(),
        t.elapsed().as_secs_f64(),
        index.embedded
    );
    let embedder = BertEmbedder::load(embed::DEFAULT_MODEL, &models).unwrap();
    let data = Dataset::load(&repo().join("../shared/data/squad.dev200.jsonl")).unwrap();
    let queries: Vec<String> = data.examples.iter().map(|e| e.question.clone()).collect();
    let query_vectors = embedder.embed(&queries).unwrap();
    Fixture {
        index,
        embedder,
        queries,
        query_vectors,
    }
}

fn recall_at_10(ix: &DenseIndex, qs: &[Vec<f32>]) -> f64 {
    let mut found = 0;
    for q in qs {
        let exact: Vec<u32> = ix.search_exact(q, 10).iter().map(|h| h.0).collect();
        found += ix
            .search(q, 10)
            .iter()
            .filter(|h| exact.contains(&h.0))
            .count();
    }
    found as f64 / (10 * qs.len()) as f64
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let dense = f.index.dense.as_ref().unwrap();
    let (dim, vectors) = (dense.dim, dense.vectors().to_vec());

    // Embedding: 32 chunks of the corpus per iteration.
    let sample: Vec<String> = f.index.chunks[..32]
        .iter()
        .map(|c| c.indexed_text())
        .collect();
    let mut g = c.benchmark_group("embed");
    g.sample_size(10).throughput(Throughput::Elements(32));
    g.bench_function("minilm_32_chunks", |b| {
        b.iter(|| embed_all(&f.embedder, &sample, false).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("hnsw_build");
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("default", vectors.len() / dim), |b| {
        b.iter(|| DenseIndex::build(dim, vectors.clone(), HnswParams::default(), true))
    });
    g.finish();

    // Recall of the graph against exact search and query throughput, per
    // operating point (links per node M, ef_search): the target (recall@10
    // >= 0.95 at >= 10x the QPS of exact search) is met or missed at an
    // operating point; fewer links and a lower ef trade recall for speed.
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(f.query_vectors.len() as u64));
    for (m, ef_construction) in [(8, 200), (16, 200)] {
        let params = HnswParams {
            m,
            ef_construction,
            ..HnswParams::default()
        };
        let mut graph = DenseIndex::build(dim, vectors.clone(), params, true);
        for ef in [10, 12, 16, 32, 64] {
            graph.params.ef_search = ef;
            eprintln!(
                "recall@10 HNSW vs exact, M {m}, ef_construction {ef_construction}, ef_search {ef}: {:.4} over {} queries",
                recall_at_10(&graph, &f.query_vectors),
                f.query_vectors.len()
            );
            let id = format!("hnsw_top10_m{m}_efc{ef_construction}_ef");
            g.bench_function(BenchmarkId::new(id, ef), |b| {
                b.iter(|| {
                    for q in &f.query_vectors {
                        std::hint::black_box(graph.search(q, 10));
                    }
                })
            });
        }
    }
    g.bench_function("exact_top10", |b| {
        b.iter(|| {
            for q in &f.query_vectors {
                std::hint::black_box(dense.search_exact(q, 10));
            }
        })
    });
    g.bench_function("bm25_top10", |b| {
        b.iter(|| {
            for q in &f.queries {
                std::hint::black_box(f.index.bm25.search(q, 10));
            }
        })
    });
    g.finish();
}

criterion_group!(retrieval, benches);
criterion_main!(retrieval);
