//! Contract 0.1.2 through a real component (`engine_probe`) and the real
//! model: `complete-ext` log-probabilities, `score`, and `embed` without an
//! embedding model; every call recorded with its kind. 0.1.0 and 0.1.1
//! plugins (the metrics exact_match and context) keep loading and scoring
//! next to it.

mod common;
use common::*;

#[test]
fn a_0_1_2_method_gets_logprobs_scores_and_a_clear_embeddings_error() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &naive_config(
            &shared_data("nq_open.dev200.jsonl"),
            2,
            // A 0.1.1 metric in the same experiment.
            "[[metrics]]\nplugin = \"context\"",
        )
        .replace("plugin = \"naive\"", "plugin = \"engine_probe\""),
    );
    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = events(&out.stdout);
    let summary = ev.last().unwrap();
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["summary"]["failures"], 0, "{summary}");
    let id = summary["experiment"].as_str().unwrap();

    let out = run_ok(forge(&home).args(["--json", "show", id]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugins = v["experiment"]["plugins"].as_array().unwrap();
    let probe = plugins
        .iter()
        .find(|p| p["name"] == "engine_probe")
        .unwrap();
    assert_eq!(probe["contract"], "forge:plugin@0.1.2", "{probe}");
    // The 0.1.0 metrics and a 0.1.1 one load next to it.
    let contract = |name: &str| {
        plugins.iter().find(|p| p["name"] == name).unwrap()["contract"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(contract("exact_match"), "forge:plugin@0.1.0");
    assert_eq!(contract("context"), "forge:plugin@0.1.1");

    for r in v["runs"].as_array().unwrap() {
        // The 0.1.1 metric ran: no contexts (closed book) scores 0.
        assert!(r["metric_errors"].as_object().unwrap().is_empty(), "{r}");
        assert_eq!(r["scores"]["context_has_answer"], 0.0, "{r}");
        let note: serde_json::Value =
            serde_json::from_str(r["trace"][0]["content"].as_str().unwrap()).unwrap();
        let tokens = note["tokens"].as_array().unwrap();
        assert_eq!(
            tokens.len() as u64,
            note["completion_tokens"].as_u64().unwrap()
        );
        let sum: f64 = tokens.iter().map(|t| t[1].as_f64().unwrap()).sum();
        assert!(
            tokens
                .iter()
                .all(|t| t[2] == 3 && t[1].as_f64().unwrap() <= 0.0)
        );
        let scores = note["scores"].as_array().unwrap();
        let (own, nonsense) = (scores[0].as_f64().unwrap(), scores[1].as_f64().unwrap());
        // Scoring its own greedy continuation agrees with the generation's
        // log-probs (see engine_controls for the bound) and beats nonsense.
        assert!((own - sum).abs() < 1e-3, "{own} vs {sum}");
        assert!(own > nonsense, "{own} vs {nonsense}");
        assert_eq!(
            note["embed"]["error"],
            forge_host::components::capabilities::embeddings::NO_EMBEDDER
        );
        let kinds: Vec<&str> = r["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["generate", "score", "embed"], "{r}");
        assert_eq!(
            r["calls"][1]["output"].as_str().unwrap(),
            serde_json::to_string(&[own, nonsense]).unwrap()
        );
        assert!(
            r["calls"][2]["error"]
                .as_str()
                .unwrap()
                .contains("no embedding model")
        );
    }
}
