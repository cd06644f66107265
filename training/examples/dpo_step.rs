//! Measures DPO steps on SmolLM2-135M-Instruct: pairs/s, tokens/s and peak
//! RSS. Not a test; the peer of `scripts/oracles/dpo_trl.py bench` (same
//! lengths, batch, rank, no dropout, cached reference log-probs, the first
//! step untimed), run beside it by `scripts/bench-dpo.sh`:
//!
//! ```sh
//! RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=1 FORGE_TRAIN_TEST_MODEL=models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
//!   cargo run -p forge-train --example dpo_step -- [--prompt-len 256] [--completion-len 128] \
//!   [--pairs 2] [--accum 1] [--steps 8] [--rank 8] [--no-checkpointing]
//! ```
//!
//! Every sequence is prompt + completion tokens, so a pair is
//! 2·(prompt + completion) tokens through the policy. The last line is one
//! JSON object with the same keys as the TRL script's.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::DType;
use forge_train::schedule::Schedule;
use forge_train::{
    AdamWConfig, BaseModel, DpoConfig, Lora, LoraConfig, LossType, MicroBatch, Model,
    PreferencePair, ScheduleKind, Target, TrainConfig, Trainer,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].parse().expect("a number"))
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let path = std::env::var_os("FORGE_TRAIN_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    let (prompt_len, completion_len, n_pairs, accum, steps, rank) = (
        arg("--prompt-len", 256),
        arg("--completion-len", 128),
        arg("--pairs", 2),
        arg("--accum", 1),
        arg("--steps", 8),
        arg("--rank", 8),
    );
    let len = prompt_len + completion_len;
    let load_start = loadavg();
    let checkpointing = !std::env::args().any(|a| a == "--no-checkpointing");
    let t = Instant::now();
    let base = BaseModel::from_gguf(&path).expect("model");
    println!(
        "load: {:.1} s, RSS peak {:.0} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let cfg = base.config().clone();
    let lora = Lora::init(
        &cfg,
        LoraConfig {
            r: rank,
            alpha: 2.0 * rank as f64,
            dropout: 0.0,
            targets: Target::ALL.to_vec(),
            use_rslora: false,
        },
        0,
        DType::F32,
    )
    .unwrap();
    let mut model = Model::new(base, lora).unwrap();
    model.set_checkpointing(checkpointing);
    let ids = |seed: usize, n: usize| -> Vec<u32> {
        (0..n)
            .map(|i| ((seed * 7919 + i * 104_729) % 49_000 + 10) as u32)
            .collect()
    };
    let data: Vec<PreferencePair> = (0..n_pairs * accum)
        .map(|p| PreferencePair {
            prompt: ids(p, prompt_len),
            chosen: ids(p + 1000, completion_len),
            rejected: ids(p + 2000, completion_len),
        })
        .collect();
    let t = Instant::now();
    let reference = Trainer::reference_logps(&model, &data).unwrap();
    let ref_s = t.elapsed().as_secs_f64();
    println!(
        "reference forward (adapter off, {} tokens): {:.1} s, {:.0} tokens/s",
        2 * len * data.len(),
        ref_s,
        (2 * len * data.len()) as f64 / ref_s
    );
    let config = TrainConfig {
        dpo: DpoConfig {
            beta: 0.1,
            loss_type: LossType::Sigmoid,
        },
        optimizer: AdamWConfig::default(),
        schedule: Schedule {
            kind: ScheduleKind::Linear,
            base_lr: 1e-4,
            warmup_steps: 0,
            total_steps: steps as u64,
        },
        max_grad_norm: Some(1.0),
    };
    let mut trainer = Trainer::new(model, config, 0).unwrap();
    let mut step_s = Vec::new();
    for s in 0..steps {
        let micro: Vec<MicroBatch> = data
            .chunks(n_pairs)
            .zip(reference.chunks(n_pairs))
            .map(|(p, r)| MicroBatch {
                pairs: p,
                reference: Some(r),
            })
            .collect();
        let m = trainer.step(&micro).unwrap();
        step_s.push(m.seconds);
        println!(
            "step {}: {:.1} s, {:.3} pairs/s, {:.0} tokens/s (policy forward + backward + update; cached reference), loss {:.4}, RSS peak {:.0} MiB",
            s + 1,
            m.seconds,
            m.pairs_per_second(),
            m.tokens_per_second(),
            m.dpo.loss,
            peak_rss_mib()
        );
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "len {len}, {n_pairs} pair(s) x {accum} accumulation, checkpointing {checkpointing}, threads {threads}",
    );
    // As the TRL script: the first step (allocation, warm-up) is not timed.
    let timed = &step_s[1.min(step_s.len())..];
    let secs: f64 = timed.iter().sum();
    let pairs = (timed.len() * n_pairs * accum) as f64;
    println!(
        "{}",
        serde_json::json!({
            "mode": "bench",
            "impl": "forge",
            "pairs/s": pairs / secs,
            "tokens/s": pairs * 2.0 * len as f64 / secs,
            "step_s": step_s,
            "timed_steps": timed.len(),
            "peak_rss_mib": peak_rss_mib(),
            "prompt_len": prompt_len,
            "completion_len": completion_len,
            "seq_len": len,
            "batch_size": n_pairs,
            "grad_accum": accum,
            "threads": threads,
            "lora_r": rank,
            "gradient_checkpointing": checkpointing,
            "loadavg_1m": [load_start, loadavg()],
        })
    );
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
