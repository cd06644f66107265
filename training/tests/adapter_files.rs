//! PEFT adapter files: round trip, Hugging Face row order of q/k, the
//! equivalence of an imported HF-layout adapter with merging it into the
//! weights, and clear errors for adapters that do not fit.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use forge_train::adapter::{load_peft, merge, save_peft};
use forge_train::base::gguf_name;
use forge_train::layout::{gguf_to_hf_rows, hf_to_gguf_rows};
use forge_train::lora::peft_tensor_name;
use forge_train::{Adapter, Batch, LlamaConfig, Model, Target};
use serde_json::{Value, json};

#[test]
fn peft_round_trip_keeps_every_tensor_and_writes_hf_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config();
    let lora = tiny_lora(DType::F32, 0.1, 4);
    save_peft(
        dir.path(),
        &lora,
        &cfg,
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    )
    .unwrap();

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["task_type"], "CAUSAL_LM");
    assert_eq!(json["r"], 3);
    assert_eq!(json["lora_alpha"], 6);
    assert_eq!(json["lora_dropout"], 0.1);
    assert_eq!(json["bias"], "none");
    assert_eq!(json["fan_in_fan_out"], false);
    assert_eq!(
        json["base_model_name_or_path"],
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    );
    assert_eq!(
        json["target_modules"],
        json!([
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj"
        ])
    );

    let file =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    assert_eq!(file.len(), 2 * 7 * cfg.n_layer);
    let bq = &file["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"];
    let bk = &file["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"];
    let mem_q = lora.pair(1, Target::Q).unwrap().b.as_tensor();
    let mem_k = lora.pair(0, Target::K).unwrap().b.as_tensor();
    assert_eq!(
        values(bq),
        values(&gguf_to_hf_rows(mem_q, cfg.n_head).unwrap())
    );
    assert_eq!(
        values(bk),
        values(&gguf_to_hf_rows(mem_k, cfg.n_kv_head).unwrap())
    );
    assert_ne!(
        values(bq),
        values(mem_q),
        "q rows must be permuted in the file"
    );
    // A and the other projections are stored as they are.
    let av = &file["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"];
    assert_eq!(
        values(av),
        values(lora.pair(1, Target::Q).unwrap().a.as_tensor())
    );
    let bv = &file["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"];
    assert_eq!(
        values(bv),
        values(lora.pair(1, Target::Down).unwrap().b.as_tensor())
    );
    assert_eq!(bv.dims(), [cfg.n_embd, 3]);

    let back = load_peft(dir.path(), &cfg, DType::F32).unwrap();
    assert_eq!(back.config(), lora.config());
    for (p, q) in lora.params().iter().zip(back.params()) {
        assert_eq!(p.name, q.name);
        assert_eq!(
            values(p.var.as_tensor()),
            values(q.var.as_tensor()),
            "{}",
            p.name
        );
    }
}

/// An adapter written the way PEFT writes one for the Hugging Face model
/// (HF row order), imported, gives the same log-probs as the base model
/// whose Hugging Face weights had `W + s·B·A` merged and were then
/// converted to GGUF order like llama.cpp's converter does.
#[test]
fn imported_hf_adapter_equals_merging_in_hf_layout() {
    let cfg = tiny_config();
    let base = tiny_base(DType::F64);
    let (r, alpha) = (2usize, 5.0);
    let targets = [Target::Q, Target::K, Target::V, Target::Down];
    let mut file = HashMap::new();
    let mut merged_hf_to_gguf = std::collections::BTreeMap::new();
    for layer in 0..cfg.n_layer {
        for (k, &t) in targets.iter().enumerate() {
            let (out, inp) = cfg.target_shape(t);
            let seed = (layer * 10 + k) as f64;
            let a = Tensor::arange(0u32, (r * inp) as u32, &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .affine(0.37, seed)
                .unwrap()
                .sin()
                .unwrap()
                .affine(0.2, 0.0)
                .unwrap()
                .reshape((r, inp))
                .unwrap();
            let b = Tensor::arange(0u32, (out * r) as u32, &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .affine(0.91, seed + 0.5)
                .unwrap()
                .cos()
                .unwrap()
                .affine(0.3, 0.0)
                .unwrap()
                .reshape((out, r))
                .unwrap();
            file.insert(
                peft_tensor_name(layer, t, 'A'),
                a.to_dtype(DType::F32).unwrap(),
            );
            file.insert(
                peft_tensor_name(layer, t, 'B'),
                b.to_dtype(DType::F32).unwrap(),
            );
            let (a, b) = (
                a.to_dtype(DType::F32)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap(),
                b.to_dtype(DType::F32)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap(),
            );
            let heads = match t {
                Target::Q => Some(cfg.n_head),
                Target::K => Some(cfg.n_kv_head),
                _ => None,
            };
            let w = base.weight(layer, t);
            let w_hf = match heads {
                Some(h) => gguf_to_hf_rows(w, h).unwrap(),
                None => w.clone(),
            };
            let merged_hf =
                (w_hf + b.matmul(&a).unwrap().affine(alpha / r as f64, 0.0).unwrap()).unwrap();
            let merged = match heads {
                Some(h) => hf_to_gguf_rows(&merged_hf, h).unwrap(),
                None => merged_hf,
            };
            merged_hf_to_gguf.insert(gguf_name(layer, t), merged);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    candle_core::safetensors::save(&file, dir.path().join("adapter_model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("adapter_config.json"),
        json!({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha,
               "lora_dropout": 0.0, "target_modules": ["down_proj", "k_proj", "q_proj", "v_proj"],
               "bias": "none", "fan_in_fan_out": false, "use_rslora": false, "modules_to_save": null})
        .to_string(),
    )
    .unwrap();

    let lora = load_peft(dir.path(), &cfg, DType::F64).unwrap();
    // merge() does in GGUF order what the HF-side merge + permute did.
    let merged = merge(&base, &lora).unwrap();
    assert_eq!(merged.len(), merged_hf_to_gguf.len());
    for (name, want) in &merged_hf_to_gguf {
        let got = values(&merged[name]);
        for (x, y) in got.iter().zip(values(want)) {
            assert!((x - y).abs() < 1e-5, "{name}: {x} vs {y}");
        }
    }

    let seqs: [(&[u32], &[u32]); 2] = [
        (&[1, 2, 3], &[4, 5, 6, 7]),
        (&[8, 9], &[10, 11, 12, 13, 14, 15]),
    ];
    let batch = Batch::new(&seqs).unwrap();
    let with_adapter = Model::new(base.clone(), lora)
        .unwrap()
        .sequence_logps(&batch, Adapter::On)
        .unwrap();
    let mut merged_base = base.clone();
    merged_base.replace_weights(&merged_hf_to_gguf).unwrap();
    let zero = forge_train::Lora::init(&cfg, common::lora_config(0.0), 0, DType::F64).unwrap();
    let reference = Model::new(merged_base, zero)
        .unwrap()
        .sequence_logps(&batch, Adapter::Off)
        .unwrap();
    let plain = Model::new(base, common::tiny_lora(DType::F64, 0.0, 1))
        .unwrap()
        .sequence_logps(&batch, Adapter::Off)
        .unwrap();
    let (a, b, c) = (
        with_adapter.per_token().unwrap(),
        reference.per_token().unwrap(),
        plain.per_token().unwrap(),
    );
    let mut moved = 0.0f64;
    for row in 0..2 {
        for ((x, y), z) in a[row].iter().zip(&b[row]).zip(&c[row]) {
            assert!((x - y).abs() < 1e-10, "row {row}: adapter {x}, merged {y}");
            moved = moved.max((x - z).abs());
        }
    }
    assert!(
        moved > 1e-3,
        "the adapter should change the log-probs (moved {moved})"
    );
}

fn write_adapter_for(cfg: &LlamaConfig) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lora = forge_train::Lora::init(cfg, common::lora_config(0.0), 0, DType::F32).unwrap();
    save_peft(dir.path(), &lora, cfg, "other").unwrap();
    dir
}

#[test]
fn adapter_for_another_base_names_the_tensor_and_both_shapes() {
    let mut other = tiny_config();
    other.n_ff = 32;
    let dir = write_adapter_for(&other);
    let err = load_peft(dir.path(), &tiny_config(), DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("adapter_model.safetensors"), "{err}");
    assert!(
        err.contains("base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight"),
        "{err}"
    );
    assert!(err.contains("[32, 3]") && err.contains("[24, 3]"), "{err}");

    // More layers than the model: the extra tensors are named.
    let mut deeper = tiny_config();
    deeper.n_layer = 3;
    let dir = write_adapter_for(&deeper);
    let err = load_peft(dir.path(), &tiny_config(), DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layers.2."), "{err}");
}

#[test]
fn unsupported_peft_options_are_refused() {
    let dir = write_adapter_for(&tiny_config());
    let path = dir.path().join("adapter_config.json");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (key, value, says) in [
        ("use_dora", json!(true), "use_dora"),
        ("bias", json!("all"), "bias"),
        ("peft_type", json!("IA3"), "peft_type"),
        ("rank_pattern", json!({"q_proj": 4}), "rank_pattern"),
        ("target_modules", json!(".*proj"), "regular expression"),
    ] {
        let mut j = original.clone();
        j[key] = value;
        std::fs::write(&path, j.to_string()).unwrap();
        let err = load_peft(dir.path(), &tiny_config(), DType::F32)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("adapter_config.json") && err.contains(says),
            "{key}: {err}"
        );
    }
}
