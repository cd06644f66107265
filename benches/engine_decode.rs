//! Model load and greedy decode speed of the packaged SmolLM2-135M (the
//! numbers engine_golden used to print from a test that asserted nothing):
//! loading the GGUF (read, tokenizer, template, weights), and a 64-token
//! greedy answer to a chat prompt, 2 threads.
//!
//!   cargo bench -p forge-host --bench engine_decode --profile dev

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::model_source::resolve;
use forge_host::engine::{Backend, GenParams, Message, Prompt};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn bench(c: &mut Criterion) {
    let model = resolve("smollm2-135m-instruct", &repo().join("models"))
        .expect("the packaged model (scripts/fetch-models.sh)");
    // No prefix cache: every iteration prefills its prompt again.
    let opts = || CandleOptions {
        threads: 2,
        prefix_cache_bytes: 0,
        ..CandleOptions::default()
    };
    let mut g = c.benchmark_group("smollm2_135m");
    g.sample_size(10);
    g.bench_function("load", |b| {
        b.iter(|| CandleBackend::load(&model, opts()).unwrap())
    });
    let mut backend = CandleBackend::load(&model, opts()).unwrap();
    let prompt = Prompt::Chat(vec![Message {
        role: "user".into(),
        content: "Tell me a story about a robot.".into(),
    }]);
    let out = backend.generate(&prompt, &GenParams::greedy(64)).unwrap();
    eprintln!(
        "prefill {} tokens in {:.0} ms; decode {} tokens in {:.0} ms = {:.1} tok/s",
        out.prompt_tokens,
        out.prefill_ms,
        out.completion_tokens,
        out.decode_ms,
        out.completion_tokens as f64 / (out.decode_ms / 1e3)
    );
    g.bench_function("greedy_64_tokens", |b| {
        b.iter(|| backend.generate(&prompt, &GenParams::greedy(64)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
