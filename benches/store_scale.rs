//! The store at scale: one experiment with 100,000 runs beside 1,000
//! small experiments. Measures what `list`, `show`, `compare` and `export`
//! do (the same library calls the CLI makes), so they stay fast as results
//! pile up: runs are streamed or read as score-only projections, never all
//! decoded at once.
//!
//!   cargo bench -p forge-host --bench store_scale --profile dev

use std::collections::BTreeMap;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::engine::ModelInfo;
use forge_host::results::records::{
    CallKind, Experiment, LlmCall, RunRecord, RunScores, Status, TraceStep,
};
use forge_host::results::report::{self, ExportFormat};
use forge_host::results::store::Store;

const BIG: usize = 100_000;
const SMALL_EXPERIMENTS: usize = 1_000;
const SMALL_RUNS: usize = 20;

fn experiment(id: &str, n: usize) -> Experiment {
    Experiment {
        id: id.into(),
        name: "scale".into(),
        status: Status::Completed,
        config_path: "configs/scale.toml".into(),
        config_text: "seed = 1\n".into(),
        config_sha256: "c".into(),
        plan_sha256: id.into(),
        created_at: format!("2026-11-23T00:00:00Z{id}"),
        started_at: None,
        finished_at: None,
        host_version: "0.1.0".into(),
        host_sha256: "h".into(),
        wasmtime_version: "48".into(),
        model: ModelInfo {
            source: "smollm2-135m-instruct".into(),
            path: "m.gguf".into(),
            sha256: "m".into(),
            architecture: "llama".into(),
            context_length: 8192,
            weights: "q8_0".into(),
            adapter: None,
            threads: 2,
            backend: forge_host::engine::BackendKind::CandleCpu,
            load_ms: 0.0,
        },
        plugins: vec![],
        dataset_path: "d.jsonl".into(),
        dataset_sha256: "d".into(),
        example_ids: (0..n).map(|i| format!("q{i}")).collect(),
        score_names: vec!["exact_match".into(), "f1".into()],
        error: None,
        rescored_from: None,
        judged: None,
    }
}

/// A run the size of a real naive one (prompt, output, a trace step).
fn run(i: usize, flip: bool) -> RunRecord {
    let correct = i.is_multiple_of(7) ^ flip;
    RunRecord {
        index: i as u32,
        example_id: format!("q{i}"),
        question: format!("who wrote the novel number {i} in the list of famous novels"),
        references: vec!["Someone Famous".into()],
        answer: Some(if correct { "Someone Famous" } else { "Nobody" }.into()),
        trace: vec![TraceStep {
            kind: "note".into(),
            content: "template: Question: {question}\nAnswer:".into(),
        }],
        contexts: vec![],
        calls: vec![LlmCall {
            prompt: format!(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nQuestion: who wrote the novel number {i}?\nAnswer:<|im_end|>\n<|im_start|>assistant\n"
            ),
            output: "The novel was written by Someone Famous, a well known author.".into(),
            prompt_tokens: 40,
            completion_tokens: 14,
            latency_ms: 250.0 + (i % 50) as f64,
            prefill_ms: 50.0,
            decode_ms: 200.0,
            finish_reason: "stop".into(),
            params: serde_json::json!({"max_tokens": 48, "temperature": 0.0}),
            error: None,
            kind: CallKind::Generate,
            cached_prompt_tokens: 0,
            cache_hit: false,
            max_batch: 1,
        }],
        logs: vec![],
        scores: BTreeMap::from([
            ("exact_match".into(), f64::from(u8::from(correct))),
            ("f1".into(), if correct { 1.0 } else { 0.2 }),
        ]),
        metric_errors: BTreeMap::new(),
        error: None,
        latency_ms: 260.0 + (i % 50) as f64,
        prompt_tokens: 40,
        completion_tokens: 14,
        finished_at: "2026-11-23T00:00:00Z".into(),
    }
}

fn fill(store: &Store) {
    let t = Instant::now();
    for (id, flip) in [("big-a", false), ("big-b", true)] {
        store.put_experiment(&experiment(id, BIG)).unwrap();
        for chunk in (0..BIG).collect::<Vec<_>>().chunks(10_000) {
            let runs: Vec<_> = chunk.iter().map(|&i| run(i, flip)).collect();
            store.put_runs(id, &runs).unwrap();
        }
        let scores = store.run_scores(id).unwrap();
        let names = ["exact_match".to_string(), "f1".to_string()];
        let s = forge_host::results::stats::summarise(&scores, &names, 1, 1000);
        store.put_summary(id, &s).unwrap();
    }
    for e in 0..SMALL_EXPERIMENTS {
        let id = format!("small-{e:04}");
        store.put_experiment(&experiment(&id, SMALL_RUNS)).unwrap();
        let runs: Vec<_> = (0..SMALL_RUNS).map(|i| run(i, false)).collect();
        store.put_runs(&id, &runs).unwrap();
    }
    eprintln!(
        "store filled: 2 × {BIG} runs + {SMALL_EXPERIMENTS} × {SMALL_RUNS} in {:.1} s, {:.0} MiB on disk",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(store.path()).unwrap().len() as f64 / 1048576.0
    );
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("forge.redb")).unwrap();
    fill(&store);
    let mut g = c.benchmark_group("store_scale");
    g.sample_size(10);

    g.bench_function("list 1,002 experiments", |b| {
        b.iter(|| {
            let rows: Vec<_> = store
                .experiments()
                .unwrap()
                .into_iter()
                .map(|e| {
                    let s = store.summary(&e.id).unwrap();
                    (e, s)
                })
                .collect();
            report::list_table(&rows).len()
        })
    });
    g.bench_function("show (summary + first 50 of 100k runs)", |b| {
        b.iter(|| {
            let e = store.find("big-a").unwrap();
            let s = store.summary(&e.id).unwrap().unwrap();
            let (head, total) = store.runs_head(&e.id, 50).unwrap();
            report::summary_text(&e, &s).len()
                + report::runs_table(&head, &e.score_names).len()
                + total
        })
    });
    g.bench_function("summarise 100k runs (score projection + bootstrap)", |b| {
        b.iter(|| {
            let scores: Vec<RunScores> = store.run_scores("big-a").unwrap();
            let names = ["exact_match".to_string(), "f1".to_string()];
            forge_host::results::stats::summarise(&scores, &names, 1, 1000).examples
        })
    });
    g.bench_function("compare 100k vs 100k paired", |b| {
        b.iter(|| {
            let (a, bb) = (store.find("big-a").unwrap(), store.find("big-b").unwrap());
            let (ra, rb) = (
                store.run_scores(&a.id).unwrap(),
                store.run_scores(&bb.id).unwrap(),
            );
            forge_host::results::compare::compare(&a, &ra, &bb, &rb, 0)
                .unwrap()
                .shared_examples
        })
    });
    g.bench_function("export 100k runs as jsonl", |b| {
        b.iter(|| {
            let e = store.find("big-a").unwrap();
            let mut sink = std::io::sink();
            report::export(&mut sink, ExportFormat::Jsonl, &e, None, &store).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
