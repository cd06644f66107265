//! Cross-encoders: a transformer that reads two texts together and
//! classifies the pair, Hugging Face's `*ForSequenceClassification`.
//! Rerankers (`cross-encoder/ms-marco-MiniLM-L-6-v2`: one relevance logit)
//! and NLI models (`cross-encoder/nli-distilroberta-base`: contradiction /
//! entailment / neutral) are the same thing with different labels, so one
//! [`PairClassifier`] serves `rerank = ...` and the `nli` capability.
//!
//! Architectures (config.json `architectures`): `BertForSequenceClassification`
//! (candle's BertModel, then the pooler, dense + tanh on `[CLS]`, then the
//! `classifier` linear, under HF's weight names) and
//! `RobertaForSequenceClassification` / `XLMRobertaForSequenceClassification`
//! (candle's xlm_roberta: dense + tanh + `out_proj` on `<s>`) and
//! `DebertaV2ForSequenceClassification` (candle's debertav2: the
//! DeBERTa-v3 NLI cross-encoders). Labels come
//! from `id2label`. A pair is tokenised as the model's tokenizer.json says
//! (`[CLS] a [SEP] b [SEP]` with token types 0/1 for BERT), truncated longest
//! first to the model's length, as sentence-transformers' CrossEncoder does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::{bert, debertav2, xlm_roberta};
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

/// Pairs per forward pass.
const BATCH: usize = 16;

/// Word pieces per pair at most (BERT's and RoBERTa's position tables).
const MAX_TOKENS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("cross-encoder {id:?}: cannot fetch {file} from the Hugging Face hub: {error}")]
    Hub {
        id: String,
        file: String,
        error: String,
    },
    #[error("cross-encoder {0:?}: {1}")]
    Load(String, String),
    #[error("cross-encoder {0:?} failed: {1}")]
    Run(String, String),
}

/// What the weights are run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Bert,
    Roberta,
    DebertaV2,
}

impl Architecture {
    const SUPPORTED: &'static str = "BertForSequenceClassification, RobertaForSequenceClassification, XLMRobertaForSequenceClassification, DebertaV2ForSequenceClassification";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "BertForSequenceClassification" => Some(Self::Bert),
            "RobertaForSequenceClassification" | "XLMRobertaForSequenceClassification" => {
                Some(Self::Roberta)
            }
            "DebertaV2ForSequenceClassification" => Some(Self::DebertaV2),
            _ => None,
        }
    }
}

enum Model {
    Bert {
        bert: bert::BertModel,
        pooler: Linear,
        classifier: Linear,
    },
    Roberta(xlm_roberta::XLMRobertaForSequenceClassification),
    // Boxed: candle's DeBERTa keeps its whole config inline (1.7 kB).
    DebertaV2(Box<debertav2::DebertaV2SeqClassificationModel>),
}

/// A text-pair classifier on the CPU.
pub struct PairClassifier {
    id: String,
    sha256: String,
    architecture: Architecture,
    labels: Vec<String>,
    model: Model,
    /// Truncating longest first to the model's length, padding to the
    /// longest pair of a batch.
    tokenizer: Tokenizer,
    /// RoBERTa has one token type: its ids are all 0 whatever the
    /// tokenizer says.
    zero_type_ids: bool,
    /// One forward pass at a time: candle already uses every core.
    lock: Mutex<()>,
}

/// The files of a cross-encoder.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: TokenizerFile,
    pub weights: PathBuf,
}

/// Where the tokenizer comes from: `tokenizer.json`, or, for BERT
/// checkpoints published before it existed (the ms-marco cross-encoders
/// on the hub for years), the WordPiece `vocab.txt` and the lowercasing
/// flag of `tokenizer_config.json`.
#[derive(Clone, Debug)]
pub enum TokenizerFile {
    Json(PathBuf),
    BertVocab { vocab: PathBuf, lowercase: bool },
}

/// `do_lower_case` of a tokenizer_config.json (true when absent, as
/// transformers' BertTokenizer defaults).
fn lowercase(tokenizer_config: Option<&Path>) -> bool {
    tokenizer_config
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["do_lower_case"].as_bool())
        .unwrap_or(true)
}

/// Finds the files of `spec`: a local directory or a Hugging Face id.
pub fn resolve(spec: &str) -> Result<ModelFiles, ClassifierError> {
    let local = Path::new(spec);
    if local.is_dir() {
        let missing = |p: &Path| {
            ClassifierError::Load(
                spec.into(),
                format!("no {} in the model directory", p.display()),
            )
        };
        let (json, vocab) = (local.join("tokenizer.json"), local.join("vocab.txt"));
        let tokenizer = if json.is_file() {
            TokenizerFile::Json(json)
        } else if vocab.is_file() {
            let cfg = local.join("tokenizer_config.json");
            TokenizerFile::BertVocab {
                vocab,
                lowercase: lowercase(Some(&cfg)),
            }
        } else {
            return Err(missing(&json));
        };
        let f = ModelFiles {
            config: local.join("config.json"),
            tokenizer,
            weights: local.join("model.safetensors"),
        };
        for p in [&f.config, &f.weights] {
            if !p.is_file() {
                return Err(missing(p));
            }
        }
        return Ok(f);
    }
    if !is_hub_id(spec) {
        return Err(ClassifierError::Load(
            spec.into(),
            "neither a model directory (config.json, tokenizer.json, model.safetensors) nor a Hugging Face id (owner/name)".into(),
        ));
    }
    let hub = |file: &str, error: String| ClassifierError::Hub {
        id: spec.into(),
        file: file.into(),
        error,
    };
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(false)
        .build()
        .map_err(|e| hub("-", e.to_string()))?;
    let repo = api.model(spec.to_string());
    let get = |file: &str| repo.get(file).map_err(|e| hub(file, e.to_string()));
    let tokenizer = match get("tokenizer.json") {
        Ok(p) => TokenizerFile::Json(p),
        Err(no_json) => match repo.get("vocab.txt") {
            Ok(vocab) => TokenizerFile::BertVocab {
                vocab,
                lowercase: lowercase(repo.get("tokenizer_config.json").ok().as_deref()),
            },
            Err(_) => return Err(no_json),
        },
    };
    Ok(ModelFiles {
        config: get("config.json")?,
        tokenizer,
        weights: get("model.safetensors")?,
    })
}

/// `owner/name`, as the config check accepts it before anything loads.
pub fn is_hub_id(spec: &str) -> bool {
    !spec.starts_with('.')
        && !spec.starts_with('/')
        && spec.split('/').count() == 2
        && spec.split('/').all(|p| !p.is_empty())
}

impl PairClassifier {
    pub fn load(spec: &str) -> Result<Self, ClassifierError> {
        let _span = tracing::info_span!("cross_encoder_load", model = spec).entered();
        Self::from_files(spec, &resolve(spec)?)
    }

    pub fn from_files(spec: &str, files: &ModelFiles) -> Result<Self, ClassifierError> {
        let load = |m: String| ClassifierError::Load(spec.into(), m);
        let text = std::fs::read(&files.config).map_err(|e| load(format!("config.json: {e}")))?;
        let mut config: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| load(format!("config.json: {e}")))?;
        let arch_name = config["architectures"][0]
            .as_str()
            .ok_or_else(|| load("config.json: architectures: missing".into()))?
            .to_string();
        let architecture = Architecture::from_name(&arch_name).ok_or_else(|| {
            load(format!(
                "config.json: architecture {arch_name:?} is not supported (supported: {})",
                Architecture::SUPPORTED
            ))
        })?;
        if matches!(files.tokenizer, TokenizerFile::BertVocab { .. })
            && architecture != Architecture::Bert
        {
            return Err(load(format!(
                "no tokenizer.json: only BERT checkpoints can be tokenised from vocab.txt, and this is {arch_name}"
            )));
        }
        let labels = labels(&config).map_err(|m| load(format!("config.json: {m}")))?;
        let field = |name: &str| {
            config[name]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| load(format!("config.json: {name}: missing")))
        };
        let pad_id = config["pad_token_id"].as_u64().unwrap_or(0) as usize;
        let positions = field("max_position_embeddings")?;
        // DeBERTa-v3 has no token types (0).
        let type_vocab = config["type_vocab_size"].as_u64().unwrap_or(0) as usize;
        let hidden = field("hidden_size")?;

        let bytes = std::fs::read(&files.weights).map_err(|e| load(format!("weights: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| load(format!("weights: {e}")))?;
        let weights = |e: candle_core::Error| load(format!("weights ({arch_name}): {e}"));
        let (model, max_len) = match architecture {
            Architecture::Bert => {
                let c: bert::Config = serde_json::from_value(config.clone())
                    .map_err(|e| load(format!("config.json: {e}")))?;
                let base = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
                    vb.pp("bert")
                } else {
                    vb.clone()
                };
                let model = Model::Bert {
                    bert: bert::BertModel::load(base.clone(), &c).map_err(weights)?,
                    pooler: candle_nn::linear(hidden, hidden, base.pp("pooler.dense"))
                        .map_err(weights)?,
                    classifier: candle_nn::linear(hidden, labels.len(), vb.pp("classifier"))
                        .map_err(weights)?,
                };
                (model, positions)
            }
            Architecture::Roberta => {
                // Older RoBERTa configs predate this field; absolute is
                // what they mean.
                if config.get("position_embedding_type").is_none() {
                    config["position_embedding_type"] = "absolute".into();
                }
                let c: xlm_roberta::Config = serde_json::from_value(config.clone())
                    .map_err(|e| load(format!("config.json: {e}")))?;
                let m = xlm_roberta::XLMRobertaForSequenceClassification::new(labels.len(), &c, vb)
                    .map_err(weights)?;
                // Positions start after the padding index.
                (Model::Roberta(m), positions.saturating_sub(pad_id + 1))
            }
            Architecture::DebertaV2 => {
                let c: debertav2::Config = serde_json::from_value(config.clone())
                    .map_err(|e| load(format!("config.json: {e}")))?;
                // The pooler and classifier sit at the root, the encoder
                // under `deberta.`; candle reads the labels from the config.
                let m =
                    debertav2::DebertaV2SeqClassificationModel::load(vb.pp("deberta"), &c, None)
                        .map_err(weights)?;
                (Model::DebertaV2(Box::new(m)), positions)
            }
        };

        let mut tokenizer = match &files.tokenizer {
            TokenizerFile::Json(p) => {
                Tokenizer::from_file(p).map_err(|e| load(format!("tokenizer.json: {e}")))?
            }
            TokenizerFile::BertVocab { vocab, lowercase } => {
                bert_wordpiece(vocab, *lowercase).map_err(|e| load(format!("vocab.txt: {e}")))?
            }
        };
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(max_len),
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| load(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: pad_id as u32,
            ..Default::default()
        }));
        Ok(Self {
            id: spec.into(),
            sha256,
            architecture,
            labels,
            model,
            tokenizer,
            zero_type_ids: type_vocab < 2,
            lock: Mutex::new(()),
        })
    }

    /// What was asked for (a directory or a hub id).
    pub fn model_id(&self) -> &str {
        &self.id
    }

    /// sha256 of model.safetensors: part of the plan hash.
    pub fn weights_sha256(&self) -> &str {
        &self.sha256
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// `id2label`, in id order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The id of `label`, compared case-insensitively (`ENTAILMENT`).
    pub fn label_id(&self, label: &str) -> Option<usize> {
        self.labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(label))
    }

    /// Token ids, token types and attention masks of a batch of pairs, as
    /// the model sees them (padded, truncated).
    pub fn encode(&self, pairs: &[(String, String)]) -> Result<Vec<Encoded>, ClassifierError> {
        let enc = self
            .tokenizer
            .encode_batch(pairs.to_vec(), true)
            .map_err(|e| self.run(e.to_string()))?;
        Ok(enc
            .iter()
            .map(|e| Encoded {
                ids: e.get_ids().to_vec(),
                type_ids: if self.zero_type_ids {
                    vec![0; e.get_ids().len()]
                } else {
                    e.get_type_ids().to_vec()
                },
                mask: e.get_attention_mask().to_vec(),
            })
            .collect())
    }

    /// The classifier's logits, one row of `labels().len()` per pair.
    pub fn logits(&self, pairs: &[(String, String)]) -> Result<Vec<Vec<f32>>, ClassifierError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(pairs.len());
        for batch in pairs.chunks(BATCH) {
            let enc = self.encode(batch)?;
            out.extend(self.forward(&enc).map_err(|e| self.run(e.to_string()))?);
        }
        Ok(out)
    }

    /// Softmax of [`Self::logits`]: label probabilities per pair.
    pub fn probabilities(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Vec<f32>>, ClassifierError> {
        Ok(self.logits(pairs)?.iter().map(|l| softmax(l)).collect())
    }

    fn forward(&self, enc: &[Encoded]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = |f: fn(&Encoded) -> &Vec<u32>| -> candle_core::Result<Tensor> {
            Tensor::new(
                enc.iter().map(|e| f(e).clone()).collect::<Vec<_>>(),
                &Device::Cpu,
            )
        };
        let ids = rows(|e| &e.ids)?;
        let types = rows(|e| &e.type_ids)?;
        let mask = rows(|e| &e.mask)?;
        let logits = match &self.model {
            Model::Bert {
                bert,
                pooler,
                classifier,
            } => {
                let hidden = bert.forward(&ids, &types, Some(&mask))?; // (b, t, h)
                let cls = hidden.i((.., 0))?.contiguous()?; // (b, h)
                classifier.forward(&pooler.forward(&cls)?.tanh()?)?
            }
            Model::Roberta(m) => m.forward(&ids, &mask, &types)?,
            Model::DebertaV2(m) => m.forward(&ids, Some(types), Some(mask))?,
        };
        logits.to_vec2::<f32>()
    }

    fn run(&self, m: String) -> ClassifierError {
        ClassifierError::Run(self.id.clone(), m)
    }
}

/// transformers' BertTokenizer from a WordPiece vocabulary: BERT
/// normalisation (lowercasing and accent stripping when uncased), BERT
/// pre-tokenisation, `[CLS] a [SEP] b [SEP]` with token types 0/1.
pub fn bert_wordpiece(vocab: &Path, lowercase: bool) -> Result<Tokenizer, String> {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    let path = vocab.to_str().ok_or("not a UTF-8 path")?;
    let wp = WordPiece::from_file(path)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| e.to_string())?;
    let mut t = Tokenizer::new(wp);
    let id = |tok: &str| {
        t.token_to_id(tok)
            .ok_or_else(|| format!("no {tok} in the vocabulary"))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    t.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| e.to_string())?;
    t.with_pre_tokenizer(Some(BertPreTokenizer));
    t.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    Ok(t)
}

/// One tokenised pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub mask: Vec<u32>,
}

/// `id2label` in id order (ids must be 0..n), or `num_labels` generic
/// labels when a config has only that.
fn labels(config: &serde_json::Value) -> Result<Vec<String>, String> {
    if let Some(map) = config["id2label"].as_object() {
        let mut by_id = BTreeMap::new();
        for (k, v) in map {
            let id: usize = k
                .parse()
                .map_err(|_| format!("id2label: key {k:?} is not a label id"))?;
            let name = v
                .as_str()
                .ok_or_else(|| format!("id2label: label {k} is not a string"))?;
            by_id.insert(id, name.to_string());
        }
        if by_id.is_empty() || by_id.keys().copied().ne(0..by_id.len()) {
            return Err(format!(
                "id2label: ids must be 0..{}, got {:?}",
                by_id.len(),
                by_id.keys().collect::<Vec<_>>()
            ));
        }
        return Ok(by_id.into_values().collect());
    }
    match config["num_labels"].as_u64() {
        Some(n) if n > 0 => Ok((0..n).map(|i| format!("LABEL_{i}")).collect()),
        _ => Err("id2label: missing (and no num_labels)".into()),
    }
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_id_order_with_clear_errors() {
        let c = serde_json::json!({"id2label": {"2": "neutral", "0": "contradiction", "1": "entailment"}});
        assert_eq!(
            labels(&c).unwrap(),
            ["contradiction", "entailment", "neutral"]
        );
        let c = serde_json::json!({"id2label": {"0": "a", "2": "b"}});
        assert!(labels(&c).unwrap_err().contains("ids must be 0..2"));
        let c = serde_json::json!({"num_labels": 1});
        assert_eq!(labels(&c).unwrap(), ["LABEL_0"]);
        assert!(
            labels(&serde_json::json!({}))
                .unwrap_err()
                .contains("missing")
        );
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
    }

    #[test]
    fn hub_ids_and_paths() {
        assert!(is_hub_id("cross-encoder/ms-marco-MiniLM-L-6-v2"));
        assert!(!is_hub_id("/abs/dir") && !is_hub_id("./x/y") && !is_hub_id("llm"));
        let e = PairClassifier::load("not-a-model")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("neither a model directory"), "{e}");
    }
}
