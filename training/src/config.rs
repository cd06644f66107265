//! The llama hyper-parameters, read from GGUF metadata (`llama.*` keys).

use candle_core::quantized::gguf_file::Content;

use crate::error::{Result, TrainError};
use crate::lora::Target;

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub vocab: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
}

impl LlamaConfig {
    /// From a GGUF header; `vocab` comes from the token embedding's shape.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let md = &content.metadata;
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(TrainError::Model(format!(
                "architecture {arch:?} is not supported (llama only)"
            )));
        }
        let get = |key: &str| {
            md.get(&format!("llama.{key}"))
                .ok_or_else(|| TrainError::Model(format!("missing metadata llama.{key}")))
        };
        let usize_of = |key: &str| -> Result<usize> {
            get(key)?
                .to_u64()
                .map(|v| v as usize)
                .map_err(|e| TrainError::Model(format!("llama.{key}: {e}")))
        };
        let f64_of = |key: &str, default: f64| -> Result<f64> {
            match get(key) {
                Ok(v) => v
                    .to_f32()
                    .map(f64::from)
                    .map_err(|e| TrainError::Model(format!("llama.{key}: {e}"))),
                Err(_) => Ok(default),
            }
        };
        let n_embd = usize_of("embedding_length")?;
        let n_head = usize_of("attention.head_count")?;
        let vocab = content
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| TrainError::Model("missing tensor token_embd.weight".into()))?;
        let config = Self {
            n_layer: usize_of("block_count")?,
            n_embd,
            n_head,
            n_kv_head: usize_of("attention.head_count_kv").unwrap_or(n_head),
            head_dim: usize_of("rope.dimension_count").unwrap_or(n_embd / n_head.max(1)),
            n_ff: usize_of("feed_forward_length")?,
            vocab,
            // Stored as f32 in the file; Hugging Face adds the same f32 value.
            rms_eps: f64_of("attention.layer_norm_rms_epsilon", 1e-5)?,
            rope_theta: f64_of("rope.freq_base", 10_000.0)?,
        };
        config.check()?;
        Ok(config)
    }

    /// The attention shape is consistent (GQA groups, even head dim).
    pub fn check(&self) -> Result<()> {
        let ok = self.n_head > 0
            && self.n_kv_head > 0
            && self.n_head.is_multiple_of(self.n_kv_head)
            && self.head_dim.is_multiple_of(2)
            && self.head_dim * self.n_head == self.n_embd;
        if ok {
            Ok(())
        } else {
            Err(TrainError::Model(format!(
                "inconsistent attention shape: {} heads, {} kv heads, head dim {}, embedding {}",
                self.n_head, self.n_kv_head, self.head_dim, self.n_embd
            )))
        }
    }

    /// `(out, in)` of a target's weight matrix.
    pub fn target_shape(&self, target: Target) -> (usize, usize) {
        let kv = self.n_kv_head * self.head_dim;
        match target {
            Target::Q | Target::O => (self.n_embd, self.n_embd),
            Target::K | Target::V => (kv, self.n_embd),
            Target::Gate | Target::Up => (self.n_ff, self.n_embd),
            Target::Down => (self.n_embd, self.n_ff),
        }
    }
}
