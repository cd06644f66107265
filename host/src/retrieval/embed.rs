//! Sentence embeddings: a BERT encoder (all-MiniLM-L6-v2 by default) in
//! candle, mean-pooled over the attention mask and L2-normalised, as
//! sentence-transformers does. The model is the packaged alias
//! `all-minilm-l6-v2` (scripts/fetch-models.sh), a local directory holding
//! `config.json`, `tokenizer.json` and `model.safetensors`, or a Hugging Face
//! model id fetched with hf-hub.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The packaged default, relative to the models directory.
pub const DEFAULT_MODEL: &str = "all-minilm-l6-v2";

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2: longer
/// inputs are truncated to this many word pieces (special tokens included).
pub const MAX_TOKENS: usize = 256;

/// Texts per forward pass.
const BATCH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model {0:?} is not fetched: no {1} (run scripts/fetch-models.sh)")]
    NotFetched(String, PathBuf),
    #[error("embedding model {id:?}: cannot fetch {file} from the Hugging Face hub: {error}")]
    Hub {
        id: String,
        file: String,
        error: String,
    },
    #[error("embedding model {0:?}: {1}")]
    Load(String, String),
    #[error("embedding failed: {0}")]
    Run(String),
}

/// Anything that turns texts into unit vectors (the host's embedding
/// function: dense retrieval now, metric components later).
pub trait TextEmbedder: Send + Sync {
    /// What was asked for (`all-minilm-l6-v2`, a path or a hub id).
    fn model_id(&self) -> &str;
    /// sha256 of the weights file: part of persisted index keys.
    fn weights_sha256(&self) -> &str;
    fn dim(&self) -> usize;
    /// One L2-normalised vector per text, in order.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The three files a BERT sentence encoder needs.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

/// Finds the files of `spec`: the packaged alias, a directory, or a hub id.
pub fn resolve(spec: &str, models_dir: &Path) -> Result<ModelFiles, EmbedError> {
    let in_dir = |d: &Path| ModelFiles {
        config: d.join("config.json"),
        tokenizer: d.join("tokenizer.json"),
        weights: d.join("model.safetensors"),
    };
    let check = |f: ModelFiles| -> Result<ModelFiles, EmbedError> {
        for p in [&f.config, &f.tokenizer, &f.weights] {
            if !p.is_file() {
                return Err(EmbedError::NotFetched(spec.into(), p.clone()));
            }
        }
        Ok(f)
    };
    if spec == DEFAULT_MODEL {
        return check(in_dir(&models_dir.join(DEFAULT_MODEL)));
    }
    let local = Path::new(spec);
    if local.is_dir() {
        return check(in_dir(local));
    }
    if spec.starts_with('.') || spec.starts_with('/') || spec.split('/').count() != 2 {
        return Err(EmbedError::Load(
            spec.into(),
            "neither the packaged alias all-minilm-l6-v2, a directory, nor a Hugging Face id (owner/name)".into(),
        ));
    }
    hub_files(spec)
}

/// Downloads (or finds in the hf-hub cache) a sentence-transformers model.
pub fn hub_files(id: &str) -> Result<ModelFiles, EmbedError> {
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(false)
        .build()
        .map_err(|e| EmbedError::Hub {
            id: id.into(),
            file: "-".into(),
            error: e.to_string(),
        })?;
    let repo = api.model(id.to_string());
    let get = |file: &str| {
        repo.get(file).map_err(|e| EmbedError::Hub {
            id: id.into(),
            file: file.into(),
            error: e.to_string(),
        })
    };
    Ok(ModelFiles {
        config: get("config.json")?,
        tokenizer: get("tokenizer.json")?,
        weights: get("model.safetensors")?,
    })
}

/// Loads the word-piece tokenizer of `files` without truncation or padding
/// (what the chunker counts with).
pub fn load_tokenizer(spec: &str, files: &ModelFiles) -> Result<Tokenizer, EmbedError> {
    let mut t = Tokenizer::from_file(&files.tokenizer)
        .map_err(|e| EmbedError::Load(spec.into(), format!("tokenizer.json: {e}")))?;
    t.with_truncation(None)
        .map_err(|e| EmbedError::Load(spec.into(), e.to_string()))?;
    t.with_padding(None);
    Ok(t)
}

/// A BERT sentence encoder on the CPU.
pub struct BertEmbedder {
    id: String,
    sha256: String,
    dim: usize,
    model: BertModel,
    /// Truncating to [`MAX_TOKENS`], padding to the longest of a batch.
    batch_tokenizer: Tokenizer,
    /// Unpadded, untruncated: for chunking.
    plain: Tokenizer,
    /// One embedding call at a time: concurrent batches would only fight
    /// over the same cores (candle already uses them all).
    lock: Mutex<()>,
}

impl BertEmbedder {
    pub fn load(spec: &str, models_dir: &Path) -> Result<Self, EmbedError> {
        let files = resolve(spec, models_dir)?;
        Self::from_files(spec, &files)
    }

    pub fn from_files(spec: &str, files: &ModelFiles) -> Result<Self, EmbedError> {
        let load = |m: String| EmbedError::Load(spec.into(), m);
        let config: Config = serde_json::from_slice(
            &std::fs::read(&files.config).map_err(|e| load(format!("config.json: {e}")))?,
        )
        .map_err(|e| load(format!("config.json: {e}")))?;
        let bytes = std::fs::read(&files.weights).map_err(|e| load(format!("weights: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| load(format!("weights: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| load(format!("weights: {e}")))?;
        let plain = load_tokenizer(spec, files)?;
        let mut tokenizer = plain.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..Default::default()
            }))
            .map_err(|e| load(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: config.pad_token_id as u32,
            ..Default::default()
        }));
        Ok(Self {
            id: spec.into(),
            sha256,
            dim: config.hidden_size,
            model,
            batch_tokenizer: tokenizer,
            plain,
            lock: Mutex::new(()),
        })
    }

    /// The untruncated tokenizer (token counts and offsets for chunking).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.plain
    }

    fn embed_batch(&self, texts: &[String]) -> candle_core::Result<Vec<Vec<f32>>> {
        let enc = self
            .batch_tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::msg)?;
        let ids: Vec<Vec<u32>> = enc.iter().map(|e| e.get_ids().to_vec()).collect();
        let mask: Vec<Vec<u32>> = enc
            .iter()
            .map(|e| e.get_attention_mask().to_vec())
            .collect();
        let ids = Tensor::new(ids, &Device::Cpu)?;
        let mask = Tensor::new(mask, &Device::Cpu)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (b, t, h)
        // Mean over the real tokens only.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, t, 1)
        let sum = hidden.broadcast_mul(&m)?.sum(1)?; // (b, h)
        let count = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (b, 1)
        let mean = sum.broadcast_div(&count)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

impl TextEmbedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn weights_sha256(&self) -> &str {
        &self.sha256
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(
                self.embed_batch(batch)
                    .map_err(|e| EmbedError::Run(e.to_string()))?,
            );
        }
        Ok(out)
    }
}

/// Dot product (cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
