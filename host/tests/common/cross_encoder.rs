//! Small randomly initialised cross-encoder checkpoints, written by the
//! tests because no real one can be fetched here (no hub access, and none
//! ships in a package): Hugging Face's `BertForSequenceClassification` /
//! `RobertaForSequenceClassification` config and weight names, weights
//! written with candle's safetensors, all-MiniLM-L6-v2's tokenizer.
//!
//! The weights come from a seeded generator, so a checkpoint is the same
//! file on every run and Hugging Face transformers' logits for it, computed
//! once by scripts/oracles/cross_encoder_golden.py, can be committed
//! (host/tests/golden/cross_encoders.json) and asserted against.json.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{bert, debertav2, xlm_roberta};

/// The seed of every checkpoint a test does not ask otherwise of.
pub const SEED: u64 = 23;

/// A BERT (`roberta = false`) or RoBERTa classifier with `labels`, hidden
/// size 32, 2 layers. `bias` adds to one label's classifier bias (to make
/// that label win every pair).
pub fn write_checkpoint(
    dir: &Path,
    roberta: bool,
    labels: &[&str],
    bias: Option<(usize, f32)>,
) -> PathBuf {
    write_checkpoint_seeded(dir, roberta, labels, bias, SEED)
}

/// [`write_checkpoint`] with other weights: those drawn from `seed`.
pub fn write_checkpoint_seeded(
    dir: &Path,
    roberta: bool,
    labels: &[&str],
    bias: Option<(usize, f32)>,
    seed: u64,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::Value::from(*l)))
        .collect();
    let config = serde_json::json!({
        "architectures": [if roberta { "RobertaForSequenceClassification" } else { "BertForSequenceClassification" }],
        "model_type": if roberta { "roberta" } else { "bert" },
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": if roberta { 514 } else { 512 },
        "type_vocab_size": if roberta { 1 } else { 2 },
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "classifier_dropout": null,
        "id2label": id2label,
    });
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let n = labels.len();
    let bias_name = if roberta {
        let c: xlm_roberta::Config = serde_json::from_value(
            serde_json::json!({"position_embedding_type": "absolute"})
                .as_object()
                .unwrap()
                .clone()
                .into_iter()
                .chain(config.as_object().unwrap().clone())
                .collect(),
        )
        .unwrap();
        xlm_roberta::XLMRobertaForSequenceClassification::new(n, &c, vb).unwrap();
        "classifier.out_proj.bias"
    } else {
        let c: bert::Config = serde_json::from_value(config.clone()).unwrap();
        bert::BertModel::load(vb.pp("bert"), &c).unwrap();
        candle_nn::linear(32, 32, vb.pp("bert.pooler.dense")).unwrap();
        candle_nn::linear(32, n, vb.pp("classifier")).unwrap();
        "classifier.bias"
    };
    fill_seeded(&varmap, seed);
    if let Some((label, add)) = bias {
        let data = varmap.data().lock().unwrap();
        let var = &data[bias_name];
        let mut b = var.as_tensor().to_vec1::<f32>().unwrap();
        b[label] += add;
        var.set(&Tensor::new(b, &Device::Cpu).unwrap()).unwrap();
    }
    save(dir, &varmap, &config)
}

/// A DeBERTa-v2 classifier shaped like the DeBERTa-v3 NLI cross-encoders
/// (relative attention, position buckets, no token types), hidden size 32,
/// 2 layers, all-MiniLM-L6-v2's tokenizer.
pub fn write_deberta_checkpoint(dir: &Path, labels: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::Value::from(*l)))
        .collect();
    let config = serde_json::json!({
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-7,
        "relative_attention": true,
        "max_relative_positions": -1,
        "pad_token_id": 0,
        "position_biased_input": false,
        "pos_att_type": ["p2c", "c2p"],
        "position_buckets": 256,
        "share_att_key": true,
        "norm_rel_ebd": "layer_norm",
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
        "pooler_hidden_size": 32,
        "id2label": id2label,
    });
    let c: debertav2::Config = serde_json::from_value(config.clone()).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    debertav2::DebertaV2SeqClassificationModel::load(vb.pp("deberta"), &c, None).unwrap();
    fill_seeded(&varmap, SEED);
    save(dir, &varmap, &config)
}

/// Replaces candle's random initialisation (its CPU generator cannot be
/// seeded) by SplitMix64 draws from `seed`, tensor by tensor in name order:
/// uniform in ±1/√fan-in for matrices, ±0.1 for vectors. All-ones and
/// all-zeros tensors (LayerNorm's) are kept.
fn fill_seeded(varmap: &VarMap, seed: u64) {
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    for name in names {
        let var = &data[name];
        let t = var.as_tensor();
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // LayerNorm's ones and zeros (a 1-element bias is random: refill).
        if values.iter().all(|v| *v == values[0]) && (values[0] == 0.0 || values[0] == 1.0) {
            continue;
        }
        let bound = match t.dims() {
            [_, fan_in] => 1.0 / (*fan_in as f32).sqrt(),
            _ => 0.1,
        };
        let fresh: Vec<f32> = values.iter().map(|_| uniform() * bound).collect();
        var.set(&Tensor::from_vec(fresh, t.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
}

/// Hugging Face transformers' outputs for one committed checkpoint
/// (host/tests/golden/cross_encoders.json, scripts/oracles/cross_encoder_golden.py).
pub struct Golden {
    pub sha256: String,
    pub pairs: Vec<(String, String)>,
    pub logits: Vec<Vec<f32>>,
}

impl Golden {
    /// The oracle's outputs for checkpoint `name`; fails unless the
    /// checkpoint in `dir` is the very file they were computed from.
    pub fn for_checkpoint(name: &str, dir: &Path) -> Golden {
        let path = super::repo().join("host/tests/golden/cross_encoders.json");
        let all: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let g = &all[name];
        let sha256 = g["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", path.display()));
        let ours = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(
                std::fs::read(dir.join("model.safetensors")).unwrap(),
            ))
        };
        assert_eq!(
            ours, sha256,
            "checkpoint {name} is not the one the golden outputs are for: if its \
             writer changed on purpose, run scripts/oracles/cross_encoder_golden.py"
        );
        Golden {
            sha256: sha256.into(),
            pairs: serde_json::from_value(g["pairs"].clone()).unwrap(),
            logits: serde_json::from_value(g["logits"].clone()).unwrap(),
        }
    }

    /// The oracle's logits for `pair` (which must be among its inputs).
    pub fn logits_of(&self, pair: &(String, String)) -> &[f32] {
        let i = self
            .pairs
            .iter()
            .position(|p| p == pair)
            .unwrap_or_else(|| {
                panic!(
                    "{pair:?} has no golden logits: rerun scripts/oracles/cross_encoder_golden.py"
                )
            });
        &self.logits[i]
    }
}

/// The checkpoint directory's files: weights, config, MiniLM's tokenizer.
fn save(dir: &Path, varmap: &VarMap, config: &serde_json::Value) -> PathBuf {
    varmap.save(dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        super::repo().join("models/all-minilm-l6-v2/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    dir.to_path_buf()
}
