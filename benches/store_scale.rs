//! The store at scale: one experiment with 100,000 runs beside 1,000
//! small experiments. Measures what `list`, `show`, `compare` and `export`
//! do (the same library calls the CLI makes), so they stay fast as results
//! pile up: runs are streamed or read as score-only projections, never all
//! decoded at once.
//!
//!   cargo bench -p forge-host --bench store_scale --profile dev

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::results::records::RunScores;
use forge_host::results::report::{self, ExportFormat};
use forge_host::results::store::Store;

#[path = "fixtures/scale_store.rs"]
mod scale_store;

const BIG: usize = 100_000;
const SMALL_EXPERIMENTS: usize = 1_000;
const SMALL_RUNS: usize = 20;

fn fill(store: &Store) {
    let t = Instant::now();
    for (id, flip) in [("big-a", false), ("big-b", true)] {
        scale_store::put_experiment(store, id, BIG, flip, true);
    }
    for e in 0..SMALL_EXPERIMENTS {
        scale_store::put_experiment(store, &format!("small-{e:04}"), SMALL_RUNS, false, false);
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
