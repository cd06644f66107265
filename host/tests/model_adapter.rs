//! `[model] adapter`: a PEFT LoRA adapter merged into the engine's weights
//! at load. The inference path and `train dpo`'s forward give the same
//! token log-probabilities (one model, two code paths); an adapter from a
//! real training run changes greedy answers and the experiment's identity;
//! a bad adapter is a one-line error on the config's `model.adapter` line.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{forge, run_ok, shared_data, write};
use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::llama::WeightFormat;
use forge_host::engine::model_source::ResolvedModel;
use forge_train::{Adapter, BaseModel, Batch, Lora, LoraConfig, Model, Target, adapter};

/// Deterministic values in [-scale, scale) (no RNG crate needed).
fn filled(shape: (usize, usize), seed: u64, scale: f64) -> Tensor {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// A rank-4 adapter on all seven projections with non-zero A and B, saved
/// in PEFT's layout.
fn random_adapter(base: &BaseModel, dir: &Path) -> Lora {
    let cfg = base.config();
    let lora_cfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: Target::ALL.to_vec(),
        use_rslora: false,
    };
    let mut tensors = BTreeMap::new();
    let mut seed = 1;
    for layer in 0..cfg.n_layer {
        for target in Target::ALL {
            let (out, inp) = cfg.target_shape(target);
            seed += 2;
            let a = filled((4, inp), seed, 1.0 / (inp as f64).sqrt());
            let b = filled((out, 4), seed + 1, 0.05);
            tensors.insert((layer, target), (a, b));
        }
    }
    let lora = Lora::from_tensors(cfg, lora_cfg, tensors).unwrap();
    adapter::save_peft(dir, &lora, cfg, "smollm2-135m-instruct").unwrap();
    lora
}

fn engine(model: &ResolvedModel, weights: WeightFormat, adapter: Option<&Path>) -> CandleBackend {
    CandleBackend::load(
        model,
        CandleOptions {
            threads: 2,
            weights,
            prefix_cache_bytes: 0,
            adapter: adapter.map(Path::to_path_buf),
            ..CandleOptions::default()
        },
    )
    .unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// With every matrix in f32 (`weights = "f32"`), the engine's
/// log-probability of each completion token equals the training forward's
/// within 1e-3, without the adapter and with it merged. The adapter moves
/// the log-probabilities by far more than that, so the merge is seen.
#[test]
fn engine_log_probs_equal_the_training_forward() {
    let Some(model) = common::default_model() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("adapter");
    let base = BaseModel::from_gguf(&model.path).unwrap();
    let lora = random_adapter(&base, &dir);
    let train = Model::new(base, lora).unwrap();

    let mut plain = engine(&model, WeightFormat::F32, None);
    let prompt = plain
        .tokenize(
            "<|im_start|>user\nWhat should I do if my neighbour's dog keeps barking at night?<|im_end|>\n<|im_start|>assistant\n",
        )
        .unwrap();
    let completion = plain
        .tokenize("Talk to your neighbour first, calmly, at a good time.<|im_end|>")
        .unwrap();
    assert!(prompt.len() > 20 && completion.len() > 10);
    let batch = Batch::new(&[(&prompt[..], &completion[..])]).unwrap();
    let train_off = &train
        .sequence_logps(&batch, Adapter::Off)
        .unwrap()
        .per_token()
        .unwrap()[0];
    let train_on = &train
        .sequence_logps(&batch, Adapter::On)
        .unwrap()
        .per_token()
        .unwrap()[0];

    let engine_off = plain.token_logprobs(&prompt, &completion).unwrap();
    drop(plain);
    let mut merged = engine(&model, WeightFormat::F32, Some(&dir));
    let engine_on = merged.token_logprobs(&prompt, &completion).unwrap();
    drop(merged);

    let off = max_abs_diff(train_off, &engine_off);
    let on = max_abs_diff(train_on, &engine_on);
    let moved = max_abs_diff(train_off, train_on);
    eprintln!(
        "per-token |training - engine|: base {off:.2e}, adapter merged {on:.2e}; the adapter moves them by up to {moved:.3}"
    );
    assert!(off < 1e-3, "base: max per-token difference {off}");
    assert!(on < 1e-3, "adapter merged: max per-token difference {on}");
    assert!(
        moved > 0.05,
        "the adapter barely changes the model ({moved})"
    );

    // The file's own quantized weights (Q4_1 kernels, Q8_1 activations)
    // are a different model: recorded, not held to 1e-3.
    let mut native = engine(&model, WeightFormat::AsFile, Some(&dir));
    let native_on = native.token_logprobs(&prompt, &completion).unwrap();
    eprintln!(
        "native q4_1 + merged adapter vs training: {:.3e} max per token",
        max_abs_diff(train_on, &native_on)
    );
}

/// The tiny DPO run of `train_dpo.rs` with a large learning rate, so a
/// few steps move greedy answers.
fn train_adapter(home: &Path, dir: &Path) -> PathBuf {
    let data = common::repo().join("configs/data/hh_harmless.smoke40.jsonl");
    let out = dir.join("tuned");
    let config = write(
        dir,
        "train.toml",
        &format!(
            "[train]\nmodel = \"smollm2-135m-instruct\"\ndata = {data:?}\nvalidation_fraction = 0.1\n\
             limit_pairs = 6\nlr = 2e-2\nschedule = \"constant\"\nmax_steps = 3\nbatch_size = 2\n\
             max_prompt_tokens = 24\nmax_completion_tokens = 12\noutput = {out:?}\n\
             [train.lora]\nrank = 2\nalpha = 4\n"
        ),
    );
    let mut c = forge(home);
    c.env("RAYON_NUM_THREADS", "2");
    run_ok(c.arg("--json").args(["train", "dpo"]).arg(&config));
    out
}

fn run_answers(home: &Path, config: &Path) -> (serde_json::Value, Vec<String>) {
    let out = run_ok(forge(home).arg("--json").arg("run").arg(config));
    let events = common::events(&out.stdout);
    let id = events
        .iter()
        .find_map(|e| e["experiment"].as_str().map(str::to_string))
        .expect("an experiment id in the events");
    let shown = run_ok(forge(home).args(["show", &id, "--json", "--rows", "100"]));
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let answers = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["answer"].as_str().unwrap_or_default().to_string())
        .collect();
    (v["experiment"].clone(), answers)
}

/// An adapter from a real `train dpo` run: merged at load, it changes
/// greedy answers, and the experiment records it (path, sha256, rank) in
/// its model identity, its weights description and its plan hash (a new
/// experiment, not a resumed one).
#[test]
fn trained_adapter_changes_greedy_answers_and_identity() {
    if common::default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let tuned = train_adapter(&home, tmp.path());
    let nq = shared_data("nq_open.dev200.jsonl");
    let base_cfg = write(tmp.path(), "base.toml", &common::naive_config(&nq, 4, ""));
    let tuned_cfg = write(
        tmp.path(),
        "tuned.toml",
        &common::naive_config(&nq, 4, "")
            .replace("[dataset]", &format!("adapter = {tuned:?}\n[dataset]")),
    );
    let (base_exp, base_answers) = run_answers(&home, &base_cfg);
    let (tuned_exp, tuned_answers) = run_answers(&home, &tuned_cfg);
    assert_eq!(base_answers.len(), 4);
    assert_eq!(tuned_answers.len(), 4);
    assert_ne!(
        base_answers, tuned_answers,
        "the tuned adapter left every greedy answer unchanged"
    );
    assert_ne!(base_exp["plan_sha256"], tuned_exp["plan_sha256"]);
    assert!(base_exp["model"].get("adapter").is_none());
    let a = &tuned_exp["model"]["adapter"];
    let mut bytes = std::fs::read(tuned.join("adapter_config.json")).unwrap();
    bytes.push(b'\n');
    bytes.extend(std::fs::read(tuned.join("adapter_model.safetensors")).unwrap());
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(a["sha256"], sha.as_str());
    assert_eq!(a["rank"], 2);
    assert_eq!(a["merged_matrices"], 30 * 7);
    let weights = tuned_exp["model"]["weights"].as_str().unwrap();
    assert!(weights.contains(&sha[..12]), "{weights}");
    let text = run_ok(forge(&home).args(["show", tuned_exp["id"].as_str().unwrap()]));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("adapter     {}", tuned.display())),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

/// Another base model's adapter (shapes that do not fit), a directory
/// without an adapter, a corrupt weights file: each fails before any
/// example runs, with one line naming the config's `model.adapter` line
/// and what is wrong.
#[test]
fn bad_adapters_are_config_errors() {
    if common::default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // A llama of another shape: SmolLM2's 30 layers but a 64-wide model.
    let other = forge_train::LlamaConfig {
        n_layer: 30,
        n_embd: 64,
        n_head: 4,
        n_kv_head: 2,
        head_dim: 16,
        n_ff: 128,
        vocab: 100,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
    };
    let lora = Lora::init(
        &other,
        LoraConfig {
            r: 2,
            alpha: 4.0,
            dropout: 0.0,
            targets: vec![Target::Q, Target::V],
            use_rslora: false,
        },
        0,
        DType::F32,
    )
    .unwrap();
    let wrong = tmp.path().join("wrong");
    adapter::save_peft(&wrong, &lora, &other, "tiny").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::copy(
        wrong.join("adapter_config.json"),
        corrupt.join("adapter_config.json"),
    )
    .unwrap();
    std::fs::write(
        corrupt.join("adapter_model.safetensors"),
        b"not safetensors",
    )
    .unwrap();

    let nq = shared_data("nq_open.dev200.jsonl");
    for (dir, want) in [
        (
            &wrong,
            "q_proj.lora_A.weight: shape [2, 64] in the file, this model needs [2, 576]",
        ),
        (&empty, "no PEFT adapter at"),
        (&corrupt, "adapter_model.safetensors"),
    ] {
        let cfg = write(
            tmp.path(),
            "bad.toml",
            &common::naive_config(&nq, 2, "")
                .replace("[dataset]", &format!("adapter = {dir:?}\n[dataset]")),
        );
        let out = forge(&home).arg("run").arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: ran", dir.display());
        assert!(
            err.contains("bad.toml:5:") && err.contains("model.adapter") && err.contains(want),
            "{}: {err}",
            dir.display()
        );
    }
    // Nothing was stored as if it had run.
    let listed = run_ok(forge(&home).args(["list", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["experiments"].as_array().map_or(0, Vec::len), 0);
}
