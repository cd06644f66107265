//! A store as the build before the #22 reorganisation wrote it (70b56ea):
//! redb tables `experiments` and `runs` holding JSON, written here row by
//! row in that format, then read, resumed, summarised, compared and
//! exported by this build.

use redb::{Database, TableDefinition};

use super::records::{CallKind, Status};
use super::report::{self, ExportFormat};
use super::store::Store;
use super::{compare, stats};
use crate::components::FailureKind;

const EXPERIMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("experiments");
const RUNS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("runs");

fn experiment(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","name":"old","status":"RUNNING","config_path":"c.toml","config_text":"","config_sha256":"c","plan_sha256":"plan-{id}","created_at":"2026-12-01T10:00:00Z","started_at":"2026-12-01T10:00:01Z","finished_at":null,"host_version":"0.1.0","host_sha256":"h","wasmtime_version":"48.0.8","model":{{"source":"smollm2-135m-instruct","path":"m.gguf","sha256":"m","architecture":"llama","context_length":8192,"weights":"native","threads":2,"backend":"candle-cpu","load_ms":12.5}},"plugins":[],"dataset_path":"d.jsonl","dataset_sha256":"d","example_ids":["e0","e1","e2"],"score_names":["f1"],"error":null,"rescored_from":null}}"#
    )
}

const RUN_OK: &str = r#"{"index":0,"example_id":"e0","question":"q0","references":["a"],"answer":"a","trace":[{"kind":"note","content":"status: answered"}],"contexts":[],"calls":[{"kind":"generate","prompt":"p","output":"a","prompt_tokens":5,"completion_tokens":1,"latency_ms":3.0,"prefill_ms":1.0,"decode_ms":2.0,"finish_reason":"stop","params":{},"error":null,"cached_prompt_tokens":0,"cache_hit":false,"max_batch":1}],"logs":[],"scores":{"f1":1.0},"metric_errors":{},"error":null,"latency_ms":4.0,"prompt_tokens":5,"completion_tokens":1,"finished_at":"2026-12-01T10:00:02Z"}"#;

const RUN_FAILED: &str = r#"{"index":1,"example_id":"e1","question":"q1","references":["b"],"answer":null,"trace":[],"contexts":[],"calls":[],"logs":[],"scores":{},"metric_errors":{"f1":{"kind":"invalid_score","message":"NaN"}},"error":{"kind":"memory_limit","message":"guest memory grew past its cap of 64 MiB"},"latency_ms":2.0,"prompt_tokens":0,"completion_tokens":0,"finished_at":"2026-12-01T10:00:03Z"}"#;

#[test]
fn a_store_written_by_the_previous_build_is_read_resumed_compared_and_exported() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("experiments.redb");
    {
        let db = Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut e = w.open_table(EXPERIMENTS).unwrap();
            let mut r = w.open_table(RUNS).unwrap();
            for id in ["old-a", "old-b"] {
                e.insert(id, experiment(id).as_bytes()).unwrap();
                r.insert((id, 0), RUN_OK.as_bytes()).unwrap();
                r.insert((id, 1), RUN_FAILED.as_bytes()).unwrap();
            }
        }
        w.commit().unwrap();
    }

    let store = Store::open(&path).unwrap();
    // Read (list, find by prefix) and resumed (found by its plan hash).
    assert_eq!(store.experiments().unwrap().len(), 2);
    let a = store.find("old-a").unwrap();
    assert_eq!(a.status, Status::Running);
    assert_eq!(
        store.resumable("plan-old-a").unwrap().map(|e| e.id),
        Some("old-a".to_string())
    );
    let runs = store.runs("old-a").unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].calls[0].kind, CallKind::Generate);
    let failed = runs[1].error.as_ref().unwrap();
    assert_eq!(failed.kind, FailureKind::MemoryLimit.as_str());
    assert_eq!(
        runs[1].metric_errors["f1"].kind,
        FailureKind::InvalidScore.as_str()
    );

    // Shown and compared: the projection, the summary and a pairing.
    let b = store.find("old-b").unwrap();
    let (ra, rb) = (
        store.run_scores("old-a").unwrap(),
        store.run_scores("old-b").unwrap(),
    );
    let s = stats::summarise(&ra, &a.score_names, 1, 100);
    assert_eq!(s.examples, 2);
    assert_eq!(s.failures_by_kind.get("memory_limit"), Some(&1));
    let c = compare::compare(&a, &ra, &b, &rb, 0).unwrap();
    assert_eq!(c.shared_examples, 2);
    let (shown, total) = store.runs_head("old-a", 10).unwrap();
    assert_eq!((shown.len(), total), (2, 2));
    assert!(report::runs_table(&shown, &a.score_names).contains("memory_limit"));

    // Exported: every run, its failure kind as stored.
    let mut out = Vec::new();
    report::export(&mut out, ExportFormat::Jsonl, &a, None, &store).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\"kind\":\"memory_limit\""), "{text}");
    assert!(text.contains("\"example_id\":\"e0\""), "{text}");
}
