//! Cost of the component host, separate from the model: compiling a plugin
//! cold vs loading it from the compiled cache, and one sandboxed metric call
//! (fresh store + instantiate + call) per example.
//!
//!   scripts/build-plugins.sh && cargo bench -p forge-host --bench plugin_calls

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use forge_host::capabilities::{CallContext, Capabilities};
use forge_host::config::{Grants, Limits, SandboxDefaults};
use forge_host::datasets::Example;
use forge_host::plugins::bindings::types::Answer;
use forge_host::plugins::{CallOutcome, Configured, PluginHost, Sandbox, World};

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
    let metric = Configured {
        plugin: Arc::new(host.load_as(&f1, World::Metric).unwrap()),
        sandbox: Sandbox::new(
            &Grants::default(),
            &Limits::default(),
            &SandboxDefaults::default(),
        ),
        params: "{}".into(),
        field: "metrics[0]".into(),
    };
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
    c.bench_function("f1 metric call (new store + instantiate + call)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ctx = CallContext::new(Capabilities::none(), 1);
                match host.score(&metric, 1, ctx, &example, &answer).await.0 {
                    CallOutcome::Ok(s) => s,
                    _ => panic!("f1 failed"),
                }
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
