//! Small randomly initialised cross-encoder checkpoints, written by the
//! tests because no real one can be fetched here (no hub access, and none
//! ships in a package): Hugging Face's `BertForSequenceClassification` /
//! `RobertaForSequenceClassification` config and weight names, weights
//! written with candle's safetensors, all-MiniLM-L6-v2's tokenizer.json.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{bert, debertav2, xlm_roberta};

/// A BERT (`roberta = false`) or RoBERTa classifier with `labels`, hidden
/// size 32, 2 layers. `bias` adds to one label's classifier bias (to make
/// that label win every pair).
pub fn write_checkpoint(
    dir: &Path,
    roberta: bool,
    labels: &[&str],
    bias: Option<(usize, f32)>,
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
    save(dir, &varmap, &config)
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
