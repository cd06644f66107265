//! Shared by the integration tests: the tiny random llama, the real
//! SmolLM2 file, and the repo's skip convention.
#![allow(dead_code)]

use std::cell::Cell;
use std::io::Write;
use std::path::PathBuf;

use candle_core::{DType, Tensor};
use forge_train::{BaseModel, LlamaConfig, Lora, LoraConfig, PreferencePair, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

thread_local! {
    static SAID: Cell<bool> = const { Cell::new(false) };
}

/// Marks the running test as skipped (`SKIPPED: <test>: <reason>`, counted
/// apart by scripts/test.sh); under `CI` it fails instead. The caller
/// returns right after.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run: {reason} (CI is set, so it may not skip)");
    }
    if !SAID.replace(true) {
        let line = format!("\nSKIPPED: {test}: {reason}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// SmolLM2-135M-Instruct (Q4_1): `FORGE_TRAIN_TEST_MODEL`, else
/// `models/smollm2-135m-instruct/...` in this checkout (fetched by
/// `scripts/fetch-models.sh`). `None` (after [`skip`]) when absent.
pub fn real_model_path() -> Option<PathBuf> {
    let path = match std::env::var_os("FORGE_TRAIN_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => repo().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!(
            "model not found at {} (set FORGE_TRAIN_TEST_MODEL or run scripts/fetch-models.sh)",
            path.display()
        ));
        None
    }
}

/// 2 layers, hidden 16, 4 heads over 2 KV heads (GQA), FFN 24, vocab 50.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        n_layer: 2,
        n_embd: 16,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 4,
        n_ff: 24,
        vocab: 50,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
    }
}

pub fn tiny_base(dtype: DType) -> BaseModel {
    BaseModel::random(&tiny_config(), 11, dtype, false).unwrap()
}

pub fn lora_config(dropout: f64) -> LoraConfig {
    LoraConfig {
        r: 3,
        alpha: 6.0,
        dropout,
        targets: Target::ALL.to_vec(),
        use_rslora: false,
    }
}

/// PEFT-initialised adapter with `B` then set to random values, so that
/// `A` gets gradient too.
pub fn tiny_lora(dtype: DType, dropout: f64, seed: u64) -> Lora {
    let lora = Lora::init(&tiny_config(), lora_config(dropout), seed, dtype).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    for p in lora.params() {
        if p.name.contains("lora_B") {
            let v: Vec<f64> = (0..p.var.elem_count())
                .map(|_| rng.random_range(-0.3..0.3))
                .collect();
            let t = Tensor::from_vec(v, p.var.shape(), &candle_core::Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            p.var.set(&t).unwrap();
        }
    }
    lora
}

/// `n` pairs of different lengths (so batches are padded) from a seed.
pub fn pairs(n: usize, vocab: u32, seed: u64) -> Vec<PreferencePair> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ids =
        |len: usize| -> Vec<u32> { (0..len).map(|_| rng.random_range(1..vocab)).collect() };
    (0..n)
        .map(|i| PreferencePair {
            prompt: ids(2 + i % 3),
            chosen: ids(1 + (i * 2) % 5),
            rejected: ids(2 + (i * 3) % 4),
        })
        .collect()
}

pub fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}
