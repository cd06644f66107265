//! The `answer_relevance` component (contract 0.1.2 `embeddings`) with the
//! real all-MiniLM-L6-v2: the test-only `replay` method answers three SQuAD
//! questions once on topic (a sentence of the gold paragraph) and once off
//! topic. The on-topic answer must score higher, every score must be the
//! cosine sentence-transformers gives for the pair (host/tests/golden/
//! minilm.json), and the embed call recorded.
//! Without `[embeddings]` the metric fails for the example with the host's
//! message stored.

mod common;
use common::*;

const OFF_TOPIC: &str = "Bread is baked from a dough of flour and water; yeast makes it rise.";

fn config(data: &std::path::Path, embeddings: bool) -> String {
    let embeddings = if embeddings {
        "[embeddings]\nmodel = \"all-minilm-l6-v2\"\n"
    } else {
        ""
    };
    replay_config(
        "answer-relevance",
        data,
        &format!("[[metrics]]\nplugin = \"answer_relevance\"\n{embeddings}"),
    )
}

fn show(home: &std::path::Path, cfg: &std::path::Path) -> serde_json::Value {
    let ev = events(&run_ok(forge(home).args(["--json", "run"]).arg(cfg)).stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_slice(&run_ok(forge(home).args(["--json", "show", &id])).stdout).unwrap()
}

#[test]
fn on_topic_answers_score_higher_by_the_real_embedder() {
    let tmp = tempfile::tempdir().unwrap();
    let squad = std::fs::read_to_string(shared_data("squad.dev200.jsonl")).unwrap();
    let mut rows = String::new();
    for l in squad.lines().take(3) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let context = v["context"].as_str().unwrap();
        let on = format!(
            "{}.",
            context.split(". ").next().unwrap().trim_end_matches('.')
        );
        for (tag, answer) in [("on", on.as_str()), ("off", OFF_TOPIC)] {
            let row = serde_json::json!({
                "id": format!("{}-{tag}", v["id"].as_str().unwrap()),
                "question": v["question"],
                "answers": v["answers"],
                "meta": {"answer": answer},
            });
            rows.push_str(&format!("{row}\n"));
        }
    }
    let data = write(tmp.path(), "qa.jsonl", &rows);
    let home = tmp.path().join("home");
    let v = show(&home, &write(tmp.path(), "exp.toml", &config(&data, true)));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);

    // sentence-transformers' cosines for these pairs, not the embedder
    // under test (host/tests/golden/minilm.json, scripts/oracles/minilm_golden.py).
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("host/tests/golden/minilm.json")).unwrap(),
    )
    .unwrap();
    let golden = golden["answer_relevance"].as_array().unwrap().clone();
    let mut by_id = std::collections::HashMap::new();
    for r in runs {
        assert!(
            r["error"].is_null() && r["metric_errors"].as_object().unwrap().is_empty(),
            "{r}"
        );
        let score = r["scores"]["answer_relevance"].as_f64().unwrap();
        let g = golden
            .iter()
            .find(|g| g["answer"] == r["answer"] && g["question"] == r["question"])
            .unwrap_or_else(|| {
                panic!("no golden cosine (rerun scripts/oracles/minilm_golden.py): {r}")
            });
        let want = g["cosine"].as_f64().unwrap().clamp(0.0, 1.0);
        assert!((score - want).abs() < 1e-4, "{score} vs {want}: {r}");
        let calls = r["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{r}");
        assert_eq!(calls[0]["kind"], "embed", "{r}");
        assert!(calls[0]["error"].is_null(), "{r}");
        by_id.insert(r["example_id"].as_str().unwrap().to_string(), score);
    }
    for (id, on) in by_id.iter().filter(|(id, _)| id.ends_with("-on")) {
        let off = by_id[&id.replace("-on", "-off")];
        eprintln!("{id}: on-topic {on:.3}, off-topic {off:.3}");
        assert!(*on > off, "{id}: {on} vs {off}");
    }

    // No embedding model: the metric's error for the example, with the
    // host's message; the failed call recorded.
    let one = write(tmp.path(), "one.jsonl", rows.lines().next().unwrap());
    let v = show(&home, &write(tmp.path(), "none.toml", &config(&one, false)));
    let r = &v["runs"][0];
    assert!(r["error"].is_null(), "{r}");
    let err = &r["metric_errors"]["answer_relevance"];
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(forge_host::components::capabilities::embeddings::NO_EMBEDDER),
        "{r}"
    );
    assert!(r["scores"].get("answer_relevance").is_none(), "{r}");
    assert_eq!(r["calls"][0]["kind"], "embed", "{r}");
    assert!(
        r["calls"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no embedding model")
    );
}
