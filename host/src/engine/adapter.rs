//! `[model] adapter`: a LoRA adapter in PEFT's layout (what `train dpo`
//! writes, or what Hugging Face tools saved) merged into a llama model's
//! weights at load. The adapted matrices are held in f32 (`W + s·B·A`):
//! requantising them would round away most of a small fine-tune's change.
//! The adapter's sha256 enters the weights description, and with it the
//! plan hash and the call cache's key, so a tuned model never reuses the
//! base model's results.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;
use candle_core::quantized::gguf_file::Content;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::EngineError;

/// The files of a PEFT adapter directory, in the order they are hashed.
const FILES: [&str; 2] = ["adapter_config.json", "adapter_model.safetensors"];

/// What is recorded of a merged adapter with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    pub path: String,
    /// sha256 of `adapter_config.json`, a newline, `adapter_model.safetensors`.
    pub sha256: String,
    pub rank: usize,
    pub alpha: f64,
    /// PEFT module names (`q_proj`, ...).
    pub target_modules: Vec<String>,
    /// Weight matrices changed.
    pub merged_matrices: usize,
}

impl AdapterInfo {
    /// For the weights description: "lora r8 alpha 16 sha256 0123456789ab
    /// merged into 210 matrices (f32)".
    pub fn describe(&self) -> String {
        format!(
            "lora r{} alpha {} sha256 {} merged into {} matrices (f32)",
            self.rank,
            self.alpha,
            &self.sha256[..12],
            self.merged_matrices
        )
    }
}

/// An adapter read for one model: `s·B·A` per GGUF tensor name.
pub struct LoraDeltas {
    pub info: AdapterInfo,
    deltas: BTreeMap<String, Tensor>,
}

impl LoraDeltas {
    /// Reads the adapter in `dir` for the llama model whose GGUF header is
    /// `content`. An adapter for another base model (shapes that do not
    /// fit), a missing file or an unsupported PEFT option is an error
    /// naming the file.
    pub fn load(dir: &Path, content: &Content) -> Result<Self, EngineError> {
        let bad = |m: String| EngineError::Adapter(format!("{}: {m}", dir.display()));
        if !dir.is_dir() {
            return Err(bad(
                "not a directory (a PEFT adapter: adapter_config.json + adapter_model.safetensors)"
                    .into(),
            ));
        }
        let config = forge_train::LlamaConfig::from_gguf(content)
            .map_err(|e| bad(format!("the base model: {e}")))?;
        let lora = forge_train::adapter::load_peft(dir, &config, candle_core::DType::F32)
            .map_err(|e| EngineError::Adapter(e.to_string()))?;
        let deltas =
            forge_train::adapter::deltas(&lora).map_err(|e| bad(format!("merging: {e}")))?;
        let mut h = Sha256::new();
        for (i, f) in FILES.iter().enumerate() {
            let path = dir.join(f);
            let bytes = std::fs::read(&path)
                .map_err(|e| EngineError::Adapter(format!("{}: {e}", path.display())))?;
            if i > 0 {
                h.update(b"\n");
            }
            h.update(&bytes);
        }
        let c = lora.config();
        let info = AdapterInfo {
            path: dir.display().to_string(),
            sha256: hex::encode(h.finalize()),
            rank: c.r,
            alpha: c.alpha,
            target_modules: c
                .targets
                .iter()
                .map(|t| t.peft_name().to_string())
                .collect(),
            merged_matrices: deltas.len(),
        };
        Ok(Self { info, deltas })
    }

    /// `s·B·A` for a GGUF tensor, when the adapter changes it.
    pub fn delta(&self, gguf_name: &str) -> Option<&Tensor> {
        self.deltas.get(gguf_name)
    }
}
