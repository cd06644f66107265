//! forge's side of `scripts/bench-peer.sh` (llama.cpp is the peer).
//!
//!   (both take --weights native|q8_0; native, the file's types, is default)
//!   peer_bench speed  [--threads 2]      prefill tok/s on a 512-token prompt
//!                                        and decode tok/s over 128 tokens
//!                                        (greedy), as JSON: llama-bench's
//!                                        pp512 / tg128
//!   peer_bench batched [--threads 2] [--npl 1,4,8,16] [--npp 32] [--ntg 64]
//!                                        decode throughput (generated tok/s,
//!                                        all sequences together) with NPL
//!                                        sequences decoding in one batch, as
//!                                        llama-batched-bench's S_TG
//!   peer_bench parity --url URL [--model M] [--n 100] [--out F.jsonl]
//!                                        forge's greedy 32-token continuation
//!                                        vs the server's at temperature 0 on
//!                                        ChatML prompts from the shared data
//!   peer_bench agree --device cuda [--n 20] [--ntg 32] [--raw]
//!                                        greedy continuations on the CPU
//!                                        engine vs on DEVICE, same model, in
//!                                        one process (scripts/bench-cuda.sh)
//!
//!   speed/batched/agree also take --gguf FILE (default: the packaged
//!   SmolLM2) and --device cpu|cuda|cuda:N (default cpu); without the shared
//!   data (a GPU machine) prompts are built from a fixed text.
//!
//! Goes through the same `Backend` API experiments use, so it measures what
//! an experiment gets (tokenising and sampling included).

use anyhow::{Context, bail};
use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::device::ComputeDevice;
use forge_host::engine::llama::WeightFormat;
use forge_host::engine::openai_backend::{OpenAiBackend, OpenAiOptions};
use forge_host::engine::{
    Backend, ConcurrentBackend, GenParams, Message, Prompt, TokenLogprob, model_source,
};
use serde_json::json;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `--weights q8_0` requantises (the old default); native keeps the file's.
fn weights(args: &[String]) -> WeightFormat {
    match arg(args, "--weights").as_deref() {
        Some("q8_0") => WeightFormat::Q8_0,
        Some("f32") => WeightFormat::F32,
        _ => WeightFormat::AsFile,
    }
}

/// The engine settings every mode shares: `--gguf`, `--device`.
#[derive(Clone)]
struct Target {
    gguf: String,
    device: ComputeDevice,
}

impl Target {
    fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let device = match arg(args, "--device").as_deref() {
            // The GPU's forward pass on the CPU (no config accepts it).
            Some("cpu-tensors") => ComputeDevice::CpuTensors,
            Some(d) => d
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--device: {e}"))?,
            None => ComputeDevice::Cpu,
        };
        Ok(Self {
            gguf: arg(args, "--gguf").unwrap_or_else(|| "smollm2-135m-instruct".into()),
            device,
        })
    }
}

fn load(threads: usize, weights: WeightFormat) -> anyhow::Result<CandleBackend> {
    load_on(
        &Target::from_args(&std::env::args().collect::<Vec<_>>())?,
        threads,
        weights,
    )
}

fn load_on(t: &Target, threads: usize, weights: WeightFormat) -> anyhow::Result<CandleBackend> {
    let resolved = model_source::resolve(&t.gguf, &model_source::default_models_dir())?;
    Ok(CandleBackend::load(
        &resolved,
        CandleOptions {
            threads,
            weights,
            // Measure the engine, not the cache: every prompt prefilled.
            prefix_cache_bytes: 0,
            adapter: None,
            device: t.device,
        },
    )?)
}

/// GPU seconds and peak device memory so far (None on the CPU).
fn gpu() -> serde_json::Value {
    match forge_host::engine::gpu_usage::totals() {
        Some((secs, peak)) => json!({"seconds": secs, "peak_device_mib": peak}),
        None => serde_json::Value::Null,
    }
}

/// Ordinary English when the shared data is not there (a GPU machine).
const FALLBACK_TEXT: &str = "The history of the river valley begins with small farming \
    villages that traded grain, salt and cloth along the water. Over centuries the villages \
    grew into market towns, bridges replaced the old ferries, and the first printed maps \
    named the hills, the mills and the roads between them.";

/// Twenty short questions for `agree` (no shared data needed).
const QUESTIONS: [&str; 20] = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "List three colours.",
    "Explain photosynthesis to a child.",
    "Hi",
    "Count from one to ten in words.",
    "Why is the sky blue?",
    "Name a famous scientist.",
    "What is two plus two?",
    "Describe a cat in one sentence.",
    "Who wrote Hamlet?",
    "What is the boiling point of water?",
    "Give me a recipe for pancakes.",
    "Translate 'hello' into Spanish.",
    "What is machine learning?",
    "Tell me a joke.",
    "How many legs does a spider have?",
    "What year did the Second World War end?",
    "Suggest a name for a dog.",
    "Summarise the plot of Cinderella.",
];

/// A raw prompt of exactly `n` tokens of ordinary text.
fn prompt_of(b: &CandleBackend, n: usize) -> anyhow::Result<String> {
    let text: String = match std::fs::read_to_string(shared("squad.dev200.jsonl")) {
        Ok(data) => data
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["context"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => vec![FALLBACK_TEXT; 64].join(" "),
    };
    let mut words: Vec<&str> = text.split(' ').collect();
    // Drop words until the text tokenises to at most n tokens, then top up.
    let mut len = b.tokenize(&words.join(" "))?.len();
    while len > n {
        let cut = ((len - n) / 2).max(1);
        words.truncate(words.len().saturating_sub(cut));
        len = b.tokenize(&words.join(" "))?.len();
    }
    let mut s = words.join(" ");
    while b.tokenize(&s)?.len() < n {
        s.push_str(" a");
    }
    Ok(s)
}

fn shared(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name)
}

fn speed(threads: usize, w: WeightFormat) -> anyhow::Result<()> {
    let mut b = load(threads, w)?;
    let p = prompt_of(&b, 512)?;
    // Warm-up (page in weights, allocator), then best of 3 for each.
    b.generate(&Prompt::Raw("Hello".into()), &GenParams::greedy(4))?;
    let mut pp = 0f64;
    for _ in 0..3 {
        let g = b.generate(&Prompt::Raw(p.clone()), &GenParams::greedy(1))?;
        pp = pp.max(g.prompt_tokens as f64 / (g.prefill_ms / 1e3));
    }
    let story = Prompt::Chat(vec![Message {
        role: "user".into(),
        content: "Write a very long story about a dragon who learns to cook.".into(),
    }]);
    let mut tg = 0f64;
    let mut n = 0;
    for _ in 0..3 {
        let g = b.generate(&story, &GenParams::greedy(128))?;
        n = g.completion_tokens;
        tg = tg.max(g.completion_tokens as f64 / (g.decode_ms / 1e3));
    }
    println!(
        "{}",
        json!({"engine": "forge", "weights": b.info().weights, "threads": threads,
            "pp512_tok_s": pp, "tg128_tok_s": tg, "tg_tokens": n, "gpu": gpu()})
    );
    Ok(())
}

/// Continuous batching's decode throughput: `npl` sequences with
/// `npp`-token prompts prefilled (not timed, as llama-batched-bench's S_TG
/// excludes prompt processing), then decoded together `ntg` tokens each.
fn batched(
    threads: usize,
    npl: &[usize],
    npp: usize,
    ntg: u32,
    w: WeightFormat,
) -> anyhow::Result<()> {
    let mut b = load(threads, w)?;
    let p = Prompt::Raw(prompt_of(&b, npp)?);
    b.generate(&Prompt::Raw("Hello".into()), &GenParams::greedy(4))?;
    let mut rows = Vec::new();
    let mut base = None;
    for &n in npl {
        // Best of 2: the machine is shared.
        let mut best = 0f64;
        let mut tokens = 0;
        for _ in 0..2 {
            let mut seqs = (0..n)
                .map(|_| b.begin(&p, &GenParams::greedy(ntg)))
                .collect::<Result<Vec<_>, _>>()?;
            let start = std::time::Instant::now();
            while seqs.iter().any(|s| !s.is_done()) {
                let mut live: Vec<_> = seqs.iter_mut().filter(|s| !s.is_done()).collect();
                b.decode_step(&mut live)?;
            }
            let secs = start.elapsed().as_secs_f64();
            tokens = 0;
            for s in seqs {
                tokens += b.finish(s)?.completion_ids.len();
            }
            best = best.max(tokens as f64 / secs);
        }
        let base_tps = *base.get_or_insert(best);
        rows.push(
            json!({"npl": n, "tokens": tokens, "tg_tok_s": best, "vs_batch_1": best / base_tps}),
        );
    }
    println!(
        "{}",
        json!({"engine": "forge", "weights": b.info().weights, "threads": threads,
            "npp": npp, "ntg": ntg, "batched": rows, "gpu": gpu()})
    );
    Ok(())
}

fn parity(
    url: &str,
    model: &str,
    n: usize,
    w: WeightFormat,
    out: Option<&str>,
) -> anyhow::Result<()> {
    let mut b = load(2, w)?;
    let peer = OpenAiBackend::connect(OpenAiOptions {
        max_concurrency: 1,
        ..OpenAiOptions::new(url, model)
    })
    .context("connecting to the peer server")?;
    let mut questions = Vec::new();
    for (file, take) in [
        ("nq_open.dev200.jsonl", n / 2),
        ("squad.dev200.jsonl", n - n / 2),
    ] {
        let data = std::fs::read_to_string(shared(file))?;
        for l in data.lines().take(take) {
            let v: serde_json::Value = serde_json::from_str(l)?;
            let q = v["question"].as_str().context("question")?;
            let content = match v["context"].as_str() {
                Some(c) => format!("Context: {c}\n\nQuestion: {q}\nAnswer:"),
                None => format!("Question: {q}\nAnswer:"),
            };
            questions.push(content);
        }
    }
    let (mut first, mut all, mut total) = (0, 0, 0);
    // Per prompt, both continuations (to compare two peer runs offline,
    // e.g. llama-server at two batch sizes).
    let mut rows = Vec::new();
    let mut diffs = Vec::new();
    let mut gaps: Vec<Option<f32>> = Vec::new();
    for q in &questions {
        let chat = Prompt::Chat(vec![Message {
            role: "user".into(),
            content: q.clone(),
        }]);
        // ChatML as the model's own template renders it; both sides get
        // the same raw text.
        let raw = Prompt::Raw(b.prompt_text(&chat)?);
        let params = GenParams {
            logprobs: Some(20),
            ..GenParams::greedy(32)
        };
        let ours = b.generate_traced(&raw, &params)?;
        let theirs = peer.generate(&raw, &GenParams::greedy(32))?;
        let mut our_ids = ours.completion_ids.clone();
        our_ids.truncate(32);
        let their_ids = b.tokenize(&theirs.text)?;
        // The peer's text stops before an end token; ours includes it.
        let our_text_ids: Vec<u32> = b.tokenize(&ours.generation.text)?;
        total += 1;
        let f = match (our_text_ids.first(), their_ids.first()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        };
        if f {
            first += 1;
        }
        // At the first differing token: forge's log-prob lead of its own
        // pick over the peer's (small = a near-tie in forge's logits).
        if let Some(k) = our_text_ids
            .iter()
            .zip(&their_ids)
            .position(|(a, b)| a != b)
            && let Some(step) = ours.generation.tokens.get(k)
        {
            gaps.push(lead(step, &b.tokenizer_decode(&their_ids[k..k + 1])));
        }
        rows.push(
            json!({"prompt": q, "forge": ours.generation.text, "peer": theirs.text}).to_string(),
        );
        if ours.generation.text == theirs.text {
            all += 1;
        } else if diffs.len() < 5 {
            diffs.push(json!({"prompt_end": &q[q.len().saturating_sub(60)..], "forge": ours.generation.text, "peer": theirs.text}));
        }
    }
    if total == 0 {
        bail!("no prompts");
    }
    if let Some(path) = out {
        std::fs::write(path, rows.join("\n") + "\n").with_context(|| format!("writing {path}"))?;
    }
    let mut known: Vec<f32> = gaps.iter().flatten().copied().collect();
    known.sort_by(f32::total_cmp);
    println!(
        "{}",
        json!({"prompts": total, "first_token_agreement": first as f64 / total as f64,
            "all_32_agreement": all as f64 / total as f64,
            "divergences": gaps.len(),
            "divergence_gap_nats_sorted": known,
            "divergences_outside_forge_top20": gaps.iter().filter(|g| g.is_none()).count(),
            "examples_of_disagreement": diffs})
    );
    Ok(())
}

/// At a step where two engines picked differently: how far `step`'s pick
/// led the other's (`theirs`, as text) in `step`'s own distribution; None
/// when the other pick is not among its top alternatives.
fn lead(step: &TokenLogprob, theirs: &str) -> Option<f32> {
    let (_, lp) = step.top.iter().find(|(t, _)| t == theirs)?;
    Some(step.logprob - lp)
}

/// Greedy continuations of [`QUESTIONS`] on the CPU engine and on the
/// `--device` target, same model and process: how many agree token for
/// token, and at each divergence the CPU engine's log-probability lead of
/// its pick over the device's (a near-tie when small).
fn agree(threads: usize, n: usize, ntg: u32, w: WeightFormat, raw: bool) -> anyhow::Result<()> {
    let target = Target::from_args(&std::env::args().collect::<Vec<_>>())?;
    let cpu_target = Target {
        device: ComputeDevice::Cpu,
        ..target.clone()
    };
    let params = GenParams {
        logprobs: Some(20),
        ..GenParams::greedy(ntg)
    };
    let prompts: Vec<Prompt> = QUESTIONS
        .iter()
        .cycle()
        .take(n)
        .map(|q| {
            if raw {
                // A random-weight model continues mostly from the last
                // token; the chat template would end every prompt alike.
                Prompt::Raw(q.trim_end_matches(['?', '.', '\'']).to_string())
            } else {
                Prompt::Chat(vec![Message {
                    role: "user".into(),
                    content: q.to_string(),
                }])
            }
        })
        .collect();
    let mut cpu = load_on(&cpu_target, threads, w)?;
    let on_cpu = prompts
        .iter()
        .map(|p| cpu.generate_traced(p, &params))
        .collect::<Result<Vec<_>, _>>()?;
    drop(cpu);
    let mut dev = load_on(&target, threads, w)?;
    let on_dev = prompts
        .iter()
        .map(|p| dev.generate_traced(p, &params))
        .collect::<Result<Vec<_>, _>>()?;
    // The same prompts decoded together in one batch on the device: how
    // many give the tokens they gave alone (the GPU's quantized matmuls
    // pick their kernel by batch size, so rows can round differently).
    let mut seqs = prompts
        .iter()
        .map(|p| dev.begin(p, &params))
        .collect::<Result<Vec<_>, _>>()?;
    while seqs.iter().any(|s| !s.is_done()) {
        let mut live: Vec<_> = seqs.iter_mut().filter(|s| !s.is_done()).collect();
        dev.decode_step(&mut live)?;
    }
    let mut batched_same = 0;
    for (s, alone) in seqs.into_iter().zip(&on_dev) {
        if dev.finish(s)?.completion_ids == alone.completion_ids {
            batched_same += 1;
        }
    }
    let (mut same, mut first_same) = (0, 0);
    let mut divergences = Vec::new();
    for (c, d) in on_cpu.iter().zip(&on_dev) {
        if c.completion_ids == d.completion_ids {
            same += 1;
        }
        if c.completion_ids.first() == d.completion_ids.first() {
            first_same += 1;
        }
        if let Some(k) = c
            .completion_ids
            .iter()
            .zip(&d.completion_ids)
            .position(|(a, b)| a != b)
        {
            // None also when the CPU engine's token k ended its turn (an
            // end token has no log-prob entry).
            let gap =
                c.generation.tokens.get(k).and_then(|step| {
                    lead(step, &dev.tokenizer_decode(&d.completion_ids[k..k + 1]))
                });
            divergences.push(json!({"at_token": k, "cpu_lead_nats": gap}));
        }
    }
    println!(
        "{}",
        json!({"prompts": n, "ntg": ntg, "raw_prompts": raw, "device": target.device.to_string(),
            "weights_device": dev.info().weights,
            "identical": same, "identical_fraction": same as f64 / n as f64,
            "first_token_identical": first_same, "divergences": divergences,
            // A degenerate model would answer everything alike.
            "distinct_continuations": on_cpu.iter().map(|g| &g.completion_ids)
                .collect::<std::collections::HashSet<_>>().len(),
            "device_batched_identical_to_alone": batched_same})
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads").map_or(Ok(2), |t| t.parse())?;
    match args.get(1).map(String::as_str) {
        Some("speed") => speed(threads, weights(&args)),
        Some("batched") => batched(
            threads,
            &arg(&args, "--npl")
                .unwrap_or_else(|| "1,4,8,16".into())
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<usize>, _>>()
                .context("--npl: comma-separated sequence counts")?,
            arg(&args, "--npp").map_or(Ok(32), |t| t.parse())?,
            arg(&args, "--ntg").map_or(Ok(64), |t| t.parse())?,
            weights(&args),
        ),
        Some("agree") => agree(
            threads,
            arg(&args, "--n").map_or(Ok(20), |t| t.parse())?,
            arg(&args, "--ntg").map_or(Ok(32), |t| t.parse())?,
            weights(&args),
            args.iter().any(|a| a == "--raw"),
        ),
        Some("parity") => parity(
            &arg(&args, "--url").context("parity needs --url http://host:port")?,
            // llama-server answers to any name; other servers need theirs.
            &arg(&args, "--model").unwrap_or_else(|| "peer".into()),
            arg(&args, "--n").map_or(Ok(100), |t| t.parse())?,
            weights(&args),
            arg(&args, "--out").as_deref(),
        ),
        _ => bail!(
            "usage: peer_bench speed [--threads N] | batched [--threads N] [--npl 1,4,8,16] \
             [--npp N] [--ntg N] | agree --device D [--n N] [--ntg N] | parity --url URL [--model M] [--n N] [--out F.jsonl]   (each: [--weights native|q8_0|f32]; speed/batched/agree: [--gguf FILE] [--device cpu|cpu-tensors|cuda|cuda:N])"
        ),
    }
}
