//! The GPU forward pass (`[model] device = "cuda"`: candle tensor ops, KV
//! in a slot pool on the device) run on the CPU, where the suite can check
//! it: on the packaged SmolLM2 it gives the CPU engine's greedy tokens up
//! to floating-point near-ties, decodes batches exactly as it decodes
//! alone, and reuses a cached prefix (snapshot/restore in the pool)
//! without changing an answer. The GPU itself is measured by
//! scripts/bench-cuda.sh.

use forge_host::engine::candle_backend::{CandleBackend, CandleOptions, TracedGeneration};
use forge_host::engine::device::ComputeDevice;
use forge_host::engine::llama::WeightFormat;
use forge_host::engine::{Backend, GenParams, Message, Prompt};

mod common;
use common::{decode_together, default_model};

fn load(device: ComputeDevice) -> Option<CandleBackend> {
    load_as(device, WeightFormat::AsFile)
}

fn load_as(device: ComputeDevice, weights: WeightFormat) -> Option<CandleBackend> {
    let opts = CandleOptions {
        threads: 2,
        device,
        weights,
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

const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "List three colours.",
    "Explain photosynthesis to a child in two sentences, please, using simple words.",
    "Hi",
    "Count from one to ten in words.",
    "Why is the sky blue?",
    "Name a famous scientist and say what they discovered, in one long sentence.",
];

fn greedy(b: &mut CandleBackend, max_tokens: u32) -> Vec<TracedGeneration> {
    let params = GenParams {
        logprobs: Some(10),
        ..GenParams::greedy(max_tokens)
    };
    PROMPTS
        .iter()
        .map(|p| b.generate_traced(&chat(p), &params).unwrap())
        .collect()
}

/// With every matrix in f32 on both sides the two passes are the same
/// arithmetic but for summation order: the same tokens, log-probabilities
/// equal to 1e-4. This pins the tensor pass's structure (RoPE pairs, GQA
/// head mapping, masking, the pool's positions) to the CPU engine's.
#[test]
fn tensor_path_is_the_cpu_engines_arithmetic_in_f32() {
    let Some(mut cpu) = load_as(ComputeDevice::Cpu, WeightFormat::F32) else {
        return;
    };
    let mut tensors = load_as(ComputeDevice::CpuTensors, WeightFormat::F32).unwrap();
    assert!(
        tensors.info().weights.contains("tensor path"),
        "{}",
        tensors.info().weights
    );
    let (a, b) = (greedy(&mut cpu, 16), greedy(&mut tensors, 16));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.completion_ids, y.completion_ids, "prompt {i}");
        for (k, (p, q)) in x
            .generation
            .tokens
            .iter()
            .zip(&y.generation.tokens)
            .enumerate()
        {
            assert!(
                (p.logprob - q.logprob).abs() < 1e-4,
                "prompt {i} token {k}: log-prob {} vs {}",
                p.logprob,
                q.logprob
            );
        }
    }
}

/// In the file's quantized types the two differ as llama.cpp's CPU and
/// CUDA kernels do (candle's quantized matmuls vs forge's; f32 vs f16
/// keys; 0.09 nats on a first token here): where greedy continuations
/// part, one side's pick was barely ahead of the other's.
#[test]
fn tensor_path_follows_the_cpu_engine_up_to_near_ties() {
    let Some(mut cpu) = load(ComputeDevice::Cpu) else {
        return;
    };
    let mut tensors = load(ComputeDevice::CpuTensors).unwrap();
    let (a, b) = (greedy(&mut cpu, 24), greedy(&mut tensors, 24));
    let mut identical = 0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let (lx, ly) = (
            x.generation.tokens[0].logprob,
            y.generation.tokens[0].logprob,
        );
        assert!(
            (lx - ly).abs() < 0.25,
            "prompt {i}: first-token log-prob {lx} on the CPU engine, {ly} on the tensor path"
        );
        match x
            .completion_ids
            .iter()
            .zip(&y.completion_ids)
            .position(|(p, q)| p != q)
        {
            None => {
                assert_eq!(x.completion_ids, y.completion_ids, "prompt {i}");
                identical += 1;
            }
            Some(k) => {
                // The lead of one side's pick over the other's, in that
                // side's distribution (an end token has no log-prob entry
                // on its own side: then the other side's).
                let lead = |g: &TracedGeneration, other: &TracedGeneration| {
                    let step = g.generation.tokens.get(k)?;
                    let theirs = tensors.tokenizer_decode(&other.completion_ids[k..k + 1]);
                    let (_, lp) = step.top.iter().find(|(t, _)| *t == theirs)?;
                    Some(step.logprob - lp)
                };
                let lead = lead(x, y).or_else(|| lead(y, x));
                eprintln!("prompt {i}: diverges at token {k}, lead {lead:?} nats");
                assert!(
                    lead.is_some_and(|l| l < 0.25),
                    "prompt {i}: token {k} differs and is no near-tie (lead {lead:?} nats)"
                );
            }
        }
    }
    // SmolLM2-135M's distributions are flat: near-ties within 24 tokens
    // are common (6 of 8 prompts meet one here), so the count is loose;
    // the lead bound above is the check.
    assert!(
        identical >= 2,
        "only {identical} of 8 greedy continuations identical"
    );
}

#[test]
fn tensor_path_batches_and_reuses_prefixes_without_changing_answers() {
    let Some(mut b) = load(ComputeDevice::CpuTensors) else {
        return;
    };
    let params: Vec<GenParams> = (0..PROMPTS.len())
        .map(|i| {
            let mut p = GenParams::greedy(6 + 2 * i as u32);
            p.temperature = 0.8;
            p.seed = 7 + i as u64;
            p
        })
        .collect();
    let solo: Vec<TracedGeneration> = PROMPTS
        .iter()
        .zip(&params)
        .map(|(p, q)| b.generate_traced(&chat(p), q).unwrap())
        .collect();
    assert!(solo.iter().all(|g| g.generation.max_batch == 1));
    // All eight in one batch: each sequence in its own pool slot, rows at
    // different positions, leaving at different steps.
    let reqs: Vec<(Prompt, GenParams)> = PROMPTS
        .iter()
        .zip(&params)
        .map(|(p, q)| (chat(p), q.clone()))
        .collect();
    let batched = decode_together(&mut b, &reqs);
    assert_eq!(
        batched.iter().map(|g| g.generation.max_batch).max(),
        Some(PROMPTS.len() as u32)
    );
    for (i, (x, y)) in solo.iter().zip(&batched).enumerate() {
        assert_eq!(
            x.completion_ids, y.completion_ids,
            "prompt {i}: batched decode changed the tokens"
        );
        assert!(!x.completion_ids.is_empty());
    }
    // Greedy without log-probabilities: the argmax is taken where the
    // logits are (on a GPU, only ids cross to the host); the tokens are
    // those of greedy decoding with log-probabilities (argmax on the host).
    let plain = GenParams::greedy(12);
    let with_lp = GenParams {
        logprobs: Some(1),
        ..GenParams::greedy(12)
    };
    let run = |b: &mut CandleBackend, q: &GenParams| -> Vec<Vec<u32>> {
        let reqs: Vec<_> = PROMPTS.iter().map(|p| (chat(p), q.clone())).collect();
        decode_together(b, &reqs)
            .into_iter()
            .map(|g| g.completion_ids)
            .collect()
    };
    assert_eq!(run(&mut b, &plain), run(&mut b, &with_lp));
    // The prompts ran before: their KV state comes back from the prefix
    // cache (a copy of pool rows, written into a fresh slot) and the
    // answers stay the same.
    for (i, (p, q)) in PROMPTS.iter().zip(&params).enumerate() {
        let again = b.generate_traced(&chat(p), q).unwrap();
        assert!(
            again.generation.cached_prompt_tokens > 0,
            "prompt {i}: no prefix reused"
        );
        assert_eq!(again.completion_ids, solo[i].completion_ids, "prompt {i}");
    }
}
