//! Cost of the component host, separate from the model: compiling a plugin
//! cold vs loading it from the compiled cache, one sandboxed metric call
//! (fresh store + instantiate + call) per example under an example
//! deadline, as the runner makes it, and what the budget accounting adds
//! to each host call (admission + the deadline around its await), beside
//! the same await without it; the metric call again with two granted
//! outbound hosts (what building a store costs a plugin with grants).
//!
//!   scripts/build-plugins.sh && cargo bench -p forge-host --bench plugin_calls

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::components::bindings::types::{Answer, Score};
use forge_host::components::budget::{Ask, Budgets, Deadline, Meter};
use forge_host::components::capabilities::{CallContext, Capabilities};
use forge_host::components::{CallOutcome, Configured, ConfiguredMetric, PluginHost, World};
use forge_host::experiment::config::{Grants, Limits, SandboxDefaults};
use forge_host::experiment::datasets::Example;

fn plugin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} missing: run scripts/build-plugins.sh",
        p.display()
    );
    p
}

/// One metric call as the runner makes it: a fresh store under an example
/// deadline.
async fn score(
    host: &PluginHost,
    metric: &ConfiguredMetric,
    deadline: Deadline,
    example: &Example,
    answer: &Answer,
) -> Vec<Score> {
    let ctx = CallContext::new(Capabilities::none(), 1).until(deadline);
    match host
        .score(metric, 1, ctx, &example.to_wit(), answer)
        .await
        .0
    {
        CallOutcome::Ok(s) => s,
        _ => panic!("f1 failed"),
    }
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let f1 = plugin("f1");

    c.bench_function("load f1.wasm (compile, no cache)", |b| {
        let host = PluginHost::new(None).unwrap();
        b.iter(|| host.load_as(&f1, World::Metric).unwrap())
    });
    c.bench_function("load f1.wasm (from compiled cache)", |b| {
        let host = PluginHost::new(Some(cache.path().to_path_buf())).unwrap();
        host.load_as(&f1, World::Metric).unwrap();
        b.iter(|| host.load_as(&f1, World::Metric).unwrap())
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let host = PluginHost::new(None).unwrap();
    let defaults = SandboxDefaults::default();
    let metric: ConfiguredMetric = host
        .configure(
            &f1,
            defaults.sandbox(&Grants::default(), &Limits::default()),
            "{}",
            "metrics[0]",
        )
        .unwrap();
    let example = Example {
        id: "x".into(),
        question: "who wrote hamlet".into(),
        answers: vec!["William Shakespeare".into(), "Shakespeare".into()],
        context: None,
        title: None,
        meta: serde_json::Value::Null,
    };
    let answer = Answer {
        text: "It was written by William Shakespeare.".into(),
        trace: vec![],
        contexts: vec![],
    };
    // As the runner calls it (under an example deadline), and without one.
    let ten_minutes = Deadline::after(std::time::Duration::from_secs(600));
    c.bench_function("f1 metric call (new store + instantiate + call)", |b| {
        b.iter(|| rt.block_on(score(&host, &metric, Deadline::none(), &example, &answer)))
    });
    c.bench_function("f1 metric call under an example deadline", |b| {
        b.iter(|| rt.block_on(score(&host, &metric, ten_minutes, &example, &answer)))
    });

    // The same call for a plugin granted two outbound hosts: what the
    // grant costs each store (before #22 every store resolved each granted
    // host with a blocking DNS lookup; now they are resolved at plan time).
    let granted: ConfiguredMetric = Configured::new(
        metric.plugin.clone(),
        defaults.sandbox(
            &Grants {
                allowed_outbound_hosts: vec!["localhost:8765".into(), "127.0.0.1:8766".into()],
                ..Grants::default()
            },
            &Limits::default(),
        ),
        metric.params.clone(),
        metric.field.clone(),
    )
    .unwrap();
    c.bench_function("f1 metric call, two granted hosts", |b| {
        b.iter(|| rt.block_on(score(&host, &granted, ten_minutes, &example, &answer)))
    });

    // A host call's await (a yield stands for the engine's reply) with and
    // without the budget accounting every capability now does around it.
    let reply = || async {
        tokio::task::yield_now().await;
        7u32
    };
    c.bench_function("host call await, bare", |b| b.iter(|| rt.block_on(reply())));
    let deadline = Deadline::after(std::time::Duration::from_secs(600));
    let budgets = Budgets {
        max_model_calls: u64::MAX,
        max_generated_tokens: u64::MAX,
        max_items_per_call: 4096,
    };
    let mut meter = Meter::new(budgets);
    c.bench_function("host call await, with admission + deadline", |b| {
        b.iter(|| {
            rt.block_on(async {
                assert!(!deadline.expired());
                meter
                    .admit("inference.complete", Ask::Generate)
                    .unwrap()
                    .unwrap();
                deadline.run(reply()).await.unwrap()
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
