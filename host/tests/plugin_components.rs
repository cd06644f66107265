//! The components in plugins/ through the real component host: contract
//! reading, world checks, compile cache, and the metrics on tricky strings.

mod common;
use common::*;

use forge_host::components::bindings::types::Answer;
use forge_host::components::capabilities::{CallContext, Capabilities};
use forge_host::components::{CallOutcome, ConfiguredMetric, PluginHost};
use forge_host::experiment::config::{Grants, Limits, SandboxDefaults};
use forge_host::experiment::datasets::Example;

fn example(answers: &[&str]) -> Example {
    Example {
        id: "x".into(),
        question: "q".into(),
        answers: answers.iter().map(|s| s.to_string()).collect(),
        context: None,
        title: None,
        meta: serde_json::Value::Null,
    }
}

fn configured(host: &PluginHost, metric: &str) -> ConfiguredMetric {
    let sandbox = SandboxDefaults::default().sandbox(&Grants::default(), &Limits::default());
    host.configure(&plugin(metric), sandbox, "{}", "metrics[0]")
        .unwrap()
}

async fn score(host: &PluginHost, metric: &str, answer: &str, refs: &[&str]) -> f64 {
    let c = configured(host, metric);
    let ans = Answer {
        text: answer.into(),
        trace: vec![],
        contexts: vec![],
    };
    let ctx = CallContext::new(Capabilities::none(), 0);
    match host
        .score(&c, 0, ctx, &example(refs).to_wit(), &ans)
        .await
        .0
    {
        CallOutcome::Ok(s) => {
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].name, metric);
            s[0].value
        }
        CallOutcome::PluginError(e) => panic!("plugin error {e}"),
        CallOutcome::Failed(f) => panic!("failed {f}"),
    }
}

#[tokio::test]
async fn metric_components_follow_squad_normalisation() {
    let host = PluginHost::new(None).unwrap();
    // (answer, references, EM, F1, contains)
    let cases: &[(&str, &[&str], f64, f64, f64)] = &[
        ("The Eiffel Tower!", &["eiffel tower"], 1.0, 1.0, 1.0),
        ("  an   APPLE. ", &["apple", "pear"], 1.0, 1.0, 1.0),
        (
            "It was Western Australia, I think.",
            &["Western Australia"],
            0.0,
            0.5,
            1.0,
        ),
        ("9,436 episodes", &["9,436"], 0.0, 2.0 / 3.0, 1.0),
        ("1945", &["194"], 0.0, 0.0, 0.0),
        ("Paris", &["London", "paris."], 1.0, 1.0, 1.0),
        ("", &["x"], 0.0, 0.0, 0.0),
        ("the the the", &["a"], 1.0, 0.0, 0.0),
    ];
    for (ans, refs, em, f1, contains) in cases {
        assert_eq!(
            score(&host, "exact_match", ans, refs).await,
            *em,
            "EM {ans:?} vs {refs:?}"
        );
        let got = score(&host, "f1", ans, refs).await;
        assert!(
            (got - f1).abs() < 1e-9,
            "F1 {ans:?} vs {refs:?}: {got} != {f1}"
        );
        assert_eq!(
            score(&host, "contains", ans, refs).await,
            *contains,
            "contains {ans:?} vs {refs:?}"
        );
    }
}

#[tokio::test]
async fn a_metric_reports_an_example_without_references_as_an_error() {
    let host = PluginHost::new(None).unwrap();
    let c = configured(&host, "f1");
    let ans = Answer {
        text: "a".into(),
        trace: vec![],
        contexts: vec![],
    };
    let ctx = CallContext::new(Capabilities::none(), 0);
    let out = host.score(&c, 0, ctx, &example(&[]).to_wit(), &ans).await.0;
    assert!(matches!(out, CallOutcome::PluginError(ref m) if m.contains("no reference answers")));
}

#[test]
fn inspect_names_world_and_contract_and_reloads_from_the_compiled_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let first = run_ok(
        forge(&home)
            .args(["--json", "plugins", "inspect"])
            .arg(plugin("naive")),
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["world"], "method");
    assert_eq!(v["contract"], "forge:plugin@0.1.0");
    assert_eq!(v["compiled_from_cache"], false);
    assert!(
        v["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "forge:plugin/solver@0.1.0")
    );
    assert!(
        v["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "forge:plugin/inference@0.1.0")
    );
    let second = run_ok(
        forge(&home)
            .args(["--json", "plugins", "inspect"])
            .arg(plugin("naive")),
    );
    let w: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    // The second load is served from the compiled cache; how much faster
    // that is, is measured by benches/plugin_calls.rs, not asserted here.
    assert_eq!(w["compiled_from_cache"], true);
    eprintln!(
        "naive.wasm load: cold {:.1} ms, cached {:.1} ms",
        v["load_ms"], w["load_ms"]
    );

    let metric = run_ok(forge(&home).args(["plugins", "inspect"]).arg(plugin("f1")));
    assert!(String::from_utf8_lossy(&metric.stdout).contains("world     metric"));
}

#[test]
fn inspect_refuses_what_is_not_a_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = write(tmp.path(), "junk.wasm", "not wasm at all");
    let out = forge(&tmp.path().join("h"))
        .args(["plugins", "inspect"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a valid WebAssembly component"));
}

#[test]
fn a_plugin_built_for_a_newer_contract_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = forge(&tmp.path().join("h"))
        .args(["plugins", "inspect"])
        .arg(plugin("future_contract"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(FUTURE_CONTRACT_REFUSAL), "{err}");
    assert!(err.contains("upgrade forge-host"), "{err}");
}

#[test]
fn plugins_wit_prints_each_accepted_contract_and_refuses_an_unknown_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    let newest = String::from_utf8(run_ok(forge(&home).args(["plugins", "wit"])).stdout).unwrap();
    assert_eq!(
        newest,
        std::fs::read_to_string(repo().join("wit/v0.1.6/forge.wit")).unwrap()
    );
    let old = String::from_utf8(
        run_ok(forge(&home).args(["plugins", "wit", "--version", "0.1.0"])).stdout,
    )
    .unwrap();
    assert!(old.contains("package forge:plugin@0.1.0;"));
    let out = forge(&home)
        .args(["plugins", "wit", "--version", "0.2.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not know forge:plugin@0.2.0") && err.contains("0.1.0, 0.1.1"),
        "{err}"
    );
}
