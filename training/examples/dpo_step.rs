//! Measures DPO steps on SmolLM2-135M-Instruct: pairs/s, tokens/s and peak
//! RSS. Not a test. Run with 2 threads as the host would:
//!
//! ```sh
//! RAYON_NUM_THREADS=2 FORGE_TRAIN_TEST_MODEL=models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
//!   cargo run -p forge-train --example dpo_step -- [--len 512] [--pairs 1] [--accum 1] [--steps 2] [--no-checkpointing]
//! ```
//!
//! `--len` is the length of every sequence (prompt + completion, half
//! each), so a pair is 2·len tokens through the policy.

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
    let (len, n_pairs, accum, steps) = (
        arg("--len", 512),
        arg("--pairs", 1),
        arg("--accum", 1),
        arg("--steps", 2),
    );
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
            r: 8,
            alpha: 16.0,
            dropout: 0.05,
            targets: Target::ALL.to_vec(),
            use_rslora: false,
        },
        0,
        DType::F32,
    )
    .unwrap();
    let mut model = Model::new(base, lora).unwrap();
    model.set_checkpointing(checkpointing);
    let half = len / 2;
    let ids = |seed: usize, n: usize| -> Vec<u32> {
        (0..n)
            .map(|i| ((seed * 7919 + i * 104_729) % 49_000 + 10) as u32)
            .collect()
    };
    let data: Vec<PreferencePair> = (0..n_pairs * accum)
        .map(|p| PreferencePair {
            prompt: ids(p, half),
            chosen: ids(p + 1000, len - half),
            rejected: ids(p + 2000, len - half),
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
    println!(
        "len {len}, {n_pairs} pair(s) x {accum} accumulation, checkpointing {checkpointing}, threads {}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
}
