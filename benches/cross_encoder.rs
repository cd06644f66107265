//! Cost of reranking 20 candidates: a cross-encoder the size of
//! cross-encoder/ms-marco-MiniLM-L-6-v2 (all-MiniLM-L6-v2's encoder, which
//! has the same shape: 6 layers, hidden 384, plus a random classifier; no
//! cross-encoder can be fetched here) against the LLM reranker (the packaged
//! SmolLM2-135M scoring " yes"/" no" after each passage). Candidates are the
//! first 20 SQuAD dev paragraphs, the query the first SQuAD question. Scores
//! of the synthetic head mean nothing; only the time is measured.
//!
//!   cargo bench -p forge-host --bench cross_encoder --profile dev

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::engine::EngineHandle;
use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::llama::WeightFormat;
use forge_host::retrieval::cross_encoder::PairClassifier;
use forge_host::retrieval::rerank::{CrossEncoderReranker, LlmReranker, Reranker};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

/// MiniLM's encoder and pooler, a random one-logit classifier.
fn minilm_cross_encoder(dir: &Path) -> PairClassifier {
    let minilm = repo().join("models/all-minilm-l6-v2");
    std::fs::create_dir_all(dir).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(minilm.join("config.json")).unwrap()).unwrap();
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["id2label"] = serde_json::json!({"0": "LABEL_0"});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut t: HashMap<String, Tensor> =
        candle_core::safetensors::load(minilm.join("model.safetensors"), &Device::Cpu).unwrap();
    let w = Tensor::randn(0f32, 0.02, (1, 384), &Device::Cpu).unwrap();
    t.insert("classifier.weight".into(), w);
    t.insert(
        "classifier.bias".into(),
        Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    PairClassifier::load(dir.to_str().unwrap()).unwrap()
}

fn candidates() -> (String, Vec<String>) {
    let data = repo().join("../shared/data");
    let corpus = std::fs::read_to_string(data.join("squad.corpus.jsonl")).unwrap();
    let passages = corpus
        .lines()
        .take(20)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}\n{}",
                v["title"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap()
            )
        })
        .collect();
    let q = std::fs::read_to_string(data.join("squad.dev200.jsonl")).unwrap();
    let q: serde_json::Value = serde_json::from_str(q.lines().next().unwrap()).unwrap();
    (q["question"].as_str().unwrap().to_string(), passages)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ce = CrossEncoderReranker::new(Arc::new(minilm_cross_encoder(dir.path()))).unwrap();
    let (query, passages) = candidates();
    let mut g = c.benchmark_group("rerank_20_squad_paragraphs");
    g.sample_size(10);
    g.bench_function("cross_encoder_minilm_l6", |b| {
        b.iter(|| rt.block_on(ce.score(&query, &passages)).unwrap())
    });
    g.finish();

    // The LLM reranker once: tens of seconds per query on 2 cores.
    let resolved =
        forge_host::engine::model_source::resolve("smollm2-135m-instruct", &repo().join("models"))
            .unwrap();
    let backend = CandleBackend::load(
        &resolved,
        CandleOptions {
            threads: 0,
            weights: WeightFormat::Q8_0,
            ..Default::default()
        },
    )
    .unwrap();
    let llm = rt.block_on(async { LlmReranker::new(EngineHandle::spawn(Box::new(backend)), None) });
    let t = Instant::now();
    rt.block_on(llm.score(&query, &passages)).unwrap();
    println!(
        "llm reranker (smollm2-135m, 20 passages, one run): {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
