//! Continuous batching of the candle engine on the packaged SmolLM2 model
//! (skipped with a message when it is not fetched): requests decoded
//! together give bit-identical tokens to the same requests run alone, for
//! greedy and seeded sampling, whatever the batch; the batch really forms;
//! scoring and streaming keep working beside it.

use forge_host::engine::candle_backend::{CandleBackend, CandleOptions, TracedGeneration};
use forge_host::engine::{
    Backend, EngineHandle, FinishReason, GenParams, Generation, Message, Prompt,
};

mod common;
use common::default_model;

fn load() -> Option<CandleBackend> {
    let opts = CandleOptions {
        threads: 2,
        ..CandleOptions::default()
    };
    Some(CandleBackend::load(&default_model()?, opts).expect("load model"))
}

fn chat(content: &str) -> Prompt {
    Prompt::Chat(vec![Message {
        role: "user".into(),
        content: content.into(),
    }])
}

/// Prompts of different lengths (so the batch mixes positions), with
/// different `max_tokens` (so requests leave at different steps), one with
/// a stop sequence and one asking for log-probabilities.
fn requests(sampled: bool) -> Vec<(Prompt, GenParams)> {
    let prompts = [
        "What is the capital of France?",
        "Write a short poem about the sea.",
        "List three colours.",
        "Explain photosynthesis to a child in two sentences, please, using simple words.",
        "Hi",
        "Count from one to ten in words.",
        "Why is the sky blue?",
        "Name a famous scientist and say what they discovered, in one long sentence.",
    ];
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut params = GenParams::greedy(8 + 2 * i as u32);
            if sampled {
                params.temperature = 0.9;
                params.top_p = 0.95;
                params.seed = 1000 + i as u64;
            }
            if i == 2 {
                params.stop = vec!["\n".into()];
            }
            if i == 5 {
                params.logprobs = Some(3);
            }
            (chat(p), params)
        })
        .collect()
}

/// What must not depend on the batch (timings and cache reuse may).
fn output(g: &Generation) -> (String, u32, FinishReason, Vec<(u32, f32)>) {
    (
        g.text.clone(),
        g.completion_tokens,
        g.finish_reason,
        g.tokens.iter().map(|t| (t.id, t.logprob)).collect(),
    )
}

fn alone(b: &mut CandleBackend, reqs: &[(Prompt, GenParams)]) -> Vec<TracedGeneration> {
    reqs.iter()
        .map(|(p, params)| b.generate_traced(p, params).unwrap())
        .collect()
}

/// Every request joins one batch and is stepped to the end.
fn together(b: &mut CandleBackend, reqs: &[(Prompt, GenParams)]) -> Vec<TracedGeneration> {
    common::decode_together(b, reqs)
}

fn assert_same(a: &[TracedGeneration], b: &[TracedGeneration], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            x.completion_ids, y.completion_ids,
            "{what}: request {i} decoded different tokens"
        );
        assert_eq!(
            output(&x.generation),
            output(&y.generation),
            "{what}: request {i}"
        );
    }
}

#[test]
fn batched_decode_is_bit_identical_to_decoding_alone() {
    let Some(mut b) = load() else { return };
    for sampled in [false, true] {
        let reqs = requests(sampled);
        let solo = alone(&mut b, &reqs);
        for g in &solo {
            assert_eq!(g.generation.max_batch, 1, "alone means batches of one");
        }
        // Every request really decoded something, and they differ: a bug
        // that mixed rows up would show.
        assert!(solo.iter().all(|g| g.generation.completion_tokens > 0));
        // Compared over their first tokens: lengths differ by max_tokens.
        let starts: std::collections::HashSet<Vec<u32>> = solo
            .iter()
            .map(|g| g.completion_ids.iter().take(6).copied().collect())
            .collect();
        assert_eq!(
            starts.len(),
            solo.len(),
            "two requests began with the same tokens"
        );
        let batched = together(&mut b, &reqs);
        assert_same(&solo, &batched, if sampled { "seeded" } else { "greedy" });
        assert_eq!(
            batched.iter().map(|g| g.generation.max_batch).max(),
            Some(reqs.len() as u32),
            "every request decoded in one batch"
        );
        // Different neighbours (reverse order, half the requests): the
        // same tokens again.
        let half: Vec<_> = reqs.iter().rev().step_by(2).cloned().collect();
        let solo_half: Vec<_> = solo.iter().rev().step_by(2).cloned().collect();
        assert_same(&solo_half, &together(&mut b, &half), "other neighbours");
    }
    // The stop sequence and the length limits worked inside the batch.
    let batched = together(&mut b, &requests(false));
    assert!(!batched[2].generation.text.contains('\n'));
    assert!(batched[0].completion_ids.len() <= 8);
}

/// Through the engine thread, as concurrent examples submit: at batch caps
/// 1, 4 and 8 every request gets the tokens it gets alone, and at 4 and 8
/// the scheduler did decode that many together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_thread_batches_concurrent_requests_reproducibly() {
    let Some(mut b) = load() else { return };
    let reqs = requests(true);
    let solo: Vec<Generation> = alone(&mut b, &reqs)
        .into_iter()
        .map(|t| t.generation)
        .collect();
    let mut backend: Option<Box<dyn Backend>> = Some(Box::new(b));
    for cap in [1usize, 4, 8] {
        let engine = EngineHandle::spawn_batched(backend.take().unwrap_or_else(reload), cap);
        let calls = reqs
            .iter()
            .map(|(p, q)| engine.generate(p.clone(), q.clone()));
        let got: Vec<Generation> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for (i, (x, y)) in solo.iter().zip(&got).enumerate() {
            assert_eq!(output(x), output(y), "cap {cap}: request {i}");
        }
        let widest = got.iter().map(|g| g.max_batch).max().unwrap();
        assert_eq!(widest, cap as u32, "cap {cap}: widest decode batch");
    }
}

fn reload() -> Box<dyn Backend> {
    Box::new(load().expect("model"))
}

/// Scoring runs between decode steps without disturbing the batch, and
/// gives what an idle engine gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_between_decode_steps_matches_an_idle_engine() {
    let Some(mut b) = load() else { return };
    let prompt = chat("What is the capital of France?");
    let conts = vec!["Paris".to_string(), "The capital is Berlin.".to_string()];
    let idle = b.score_continuations(&prompt, &conts).unwrap();
    let reqs = requests(false);
    let solo: Vec<Generation> = alone(&mut b, &reqs)
        .into_iter()
        .map(|t| t.generation)
        .collect();
    let engine = EngineHandle::spawn(Box::new(b));
    let gens = futures_util::future::join_all(
        reqs.iter()
            .map(|(p, q)| engine.generate(p.clone(), q.clone())),
    );
    let score = engine.score_continuations(prompt.clone(), conts.clone());
    let (gens, score) = tokio::join!(gens, score);
    assert_eq!(score.unwrap(), idle);
    for (i, (x, y)) in solo.iter().zip(gens).enumerate() {
        assert_eq!(output(x), output(&y.unwrap()), "request {i}");
    }
}

/// A streaming request receives its text in pieces as it is decoded (the
/// pieces spell the final text), and the first piece arrives while it is
/// still decoding: a request submitted only after that piece arrived is
/// decoded in the same batch as it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_text_while_the_request_is_decoding() {
    let Some(b) = load() else { return };
    let engine = EngineHandle::spawn(Box::new(b));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let params = GenParams {
        stop: vec!["zzzz".into()],
        logprobs: Some(1),
        ..GenParams::greedy(48)
    };
    // Counting goes on until max_tokens.
    let prompt = Prompt::Raw("1, 2, 3, 4, 5, 6,".into());
    let streaming = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.generate_streaming(prompt, params, Some(tx)).await })
    };
    let first = rx.recv().await.expect("a first delta");
    assert!(!first.text.is_empty() || !first.tokens.is_empty());
    let other = engine
        .generate(chat("Hi"), GenParams::greedy(2))
        .await
        .unwrap();
    assert_eq!(other.max_batch, 2, "joined the streaming request's batch");
    let g = streaming.await.unwrap().unwrap();
    let mut deltas = vec![first];
    while let Some(d) = rx.recv().await {
        deltas.push(d);
    }
    assert_eq!(g.completion_tokens, 48, "{g:?}");
    assert!(
        deltas.len() >= 24,
        "{} deltas for {} tokens: not incremental",
        deltas.len(),
        g.completion_tokens
    );
    let text: String = deltas.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(text, g.text);
    let ids: Vec<u32> = deltas
        .iter()
        .flat_map(|d| d.tokens.iter().map(|t| t.id))
        .collect();
    assert_eq!(ids, g.tokens.iter().map(|t| t.id).collect::<Vec<_>>());
}

/// A real experiment (`forge-host run`, naive method, 8 NQ questions,
/// seeded sampling at temperature 0.8) at concurrency 1, 4 and 8: the same
/// output for every example, and the stored calls show that concurrent
/// examples were decoded in batches.
#[test]
fn an_experiment_gives_the_same_outputs_at_concurrency_1_4_and_8() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut baseline: Option<Vec<(String, String)>> = None;
    for conc in [1usize, 4, 8] {
        let home = tmp.path().join(format!("home-{conc}"));
        let body = common::naive_config(
            &common::shared_data("nq_open.dev200.jsonl"),
            8,
            &format!("temperature = 0.8\n[run]\nconcurrency = {conc}"),
        );
        let cfg = common::write(tmp.path(), &format!("exp-{conc}.toml"), &body);
        let ev = common::events(
            &common::run_ok(common::forge(&home).args(["--json", "run"]).arg(&cfg)).stdout,
        );
        let id = ev.last().unwrap()["experiment"]
            .as_str()
            .unwrap()
            .to_string();
        let runs = common::exported_runs(&home, &id);
        assert_eq!(runs.len(), 8);
        let mut outputs: Vec<(String, String)> = runs
            .iter()
            .map(|r| {
                let calls = r["calls"].as_array().expect("calls");
                let text: Vec<&str> = calls
                    .iter()
                    .map(|c| c["output"].as_str().unwrap())
                    .collect();
                (
                    r["example_id"].as_str().unwrap().to_string(),
                    text.join("\u{1}"),
                )
            })
            .collect();
        outputs.sort();
        let widest = runs
            .iter()
            .flat_map(|r| r["calls"].as_array().unwrap())
            .map(|c| c["max_batch"].as_u64().unwrap())
            .max()
            .unwrap();
        if conc == 1 {
            assert_eq!(widest, 1);
        } else {
            assert!(
                widest > 1 && widest <= conc as u64,
                "concurrency {conc}: widest batch {widest}"
            );
        }
        match &baseline {
            None => baseline = Some(outputs),
            Some(b) => assert_eq!(b, &outputs, "concurrency {conc} changed outputs"),
        }
    }
}
