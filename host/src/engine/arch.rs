//! The architectures the candle backend runs, chosen by a GGUF file's
//! `general.architecture`, behind one type with the calls the backend makes.

use std::io::{Read, Seek};
use std::path::Path;

use candle_core::Tensor;
use candle_core::quantized::gguf_file::Content;

use super::EngineError;
use super::adapter::{AdapterInfo, LoraDeltas};
use super::device::ComputeDevice;
use super::device_llama::DeviceLlama;
use super::gemma3::Gemma3Model;
use super::llama::{KvSnapshot, LlamaModel, SequenceKv, WeightFormat};

/// `general.architecture` values we can load.
pub const SUPPORTED: &[&str] = &["llama", "gemma3"];

pub enum ArchModel {
    Llama(LlamaModel),
    Gemma3(Gemma3Model),
    /// A llama model as tensors on a device (a GPU): see [`DeviceLlama`].
    DeviceLlama(DeviceLlama),
}

impl ArchModel {
    /// Loads the architecture `content` declares; any other fails with an
    /// error naming it and the supported ones. `adapter`: a PEFT LoRA
    /// directory merged into the weights (llama only), whose record is
    /// returned with the model.
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        target: ComputeDevice,
        format: WeightFormat,
        threads: usize,
        adapter: Option<&Path>,
    ) -> Result<(Self, Option<AdapterInfo>), EngineError> {
        let arch = architecture(content)?;
        if let (Some(dir), false) = (adapter, arch == "llama") {
            return Err(EngineError::Adapter(format!(
                "{}: LoRA adapters are merged into llama models only, this one is '{arch}'",
                dir.display()
            )));
        }
        if target.is_tensor_path() && arch != "llama" {
            return Err(EngineError::Load(format!(
                "device {target}: '{arch}' models run on the CPU engine only \
                 (the GPU path is llama's)"
            )));
        }
        let device = &target.open()?;
        match arch.as_str() {
            "llama" => {
                let deltas = adapter
                    .map(|dir| LoraDeltas::load(dir, content))
                    .transpose()?;
                if target.is_tensor_path() {
                    let model =
                        DeviceLlama::from_gguf(content, reader, device, format, deltas.as_ref())?;
                    return Ok((Self::DeviceLlama(model), deltas.map(|d| d.info)));
                }
                let model = LlamaModel::from_gguf(
                    content,
                    reader,
                    device,
                    format,
                    threads,
                    deltas.as_ref(),
                )?;
                Ok((Self::Llama(model), deltas.map(|d| d.info)))
            }
            "gemma3" => Gemma3Model::from_gguf(content, reader, device, format)
                .map(|m| (Self::Gemma3(m), None)),
            other => Err(EngineError::Load(format!(
                "unsupported architecture '{other}' (supported: {})",
                SUPPORTED.join(", ")
            ))),
        }
    }

    /// The `general.architecture` name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Llama(_) | Self::DeviceLlama(_) => "llama",
            Self::Gemma3(_) => "gemma3",
        }
    }

    /// Logits of the last position (see [`LlamaModel::forward`]).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        match self {
            Self::Llama(m) => m.forward(tokens, pos),
            Self::Gemma3(m) => m.forward(tokens, pos, false),
            Self::DeviceLlama(m) => m.forward(tokens, pos),
        }
    }

    /// Logits of every position, (tokens, vocabulary).
    pub fn forward_all(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        match self {
            Self::Llama(m) => m.forward_all(tokens, pos),
            Self::Gemma3(m) => m.forward(tokens, pos, true),
            Self::DeviceLlama(m) => m.forward_all(tokens, pos),
        }
    }

    pub fn truncate_cache(&mut self, n: usize) {
        match self {
            Self::Llama(m) => m.truncate_cache(n),
            Self::Gemma3(m) => m.truncate_cache(n),
            Self::DeviceLlama(m) => m.truncate_cache(n),
        }
    }

    pub fn clear_cache(&mut self) {
        match self {
            Self::Llama(m) => m.clear_cache(),
            Self::Gemma3(m) => m.clear_cache(),
            Self::DeviceLlama(m) => m.clear_cache(),
        }
    }

    /// Whether [`Self::snapshot`] works, i.e. whether the prefix cache can
    /// keep this model's KV state. Gemma 3 keeps its cache in its own
    /// layout; the snapshot type is llama's (whose cache is being
    /// reworked), so its prompts reuse only the live prefix for now.
    pub fn supports_kv_snapshots(&self) -> bool {
        matches!(self, Self::Llama(_) | Self::DeviceLlama(_))
    }

    pub fn snapshot(&self, n: usize) -> Result<KvSnapshot, EngineError> {
        match self {
            Self::Llama(m) => m.snapshot(n),
            Self::DeviceLlama(m) => m.snapshot(n),
            Self::Gemma3(_) => Err(self.no_snapshots()),
        }
    }

    pub fn restore(&mut self, snap: &KvSnapshot, n: usize) -> Result<(), EngineError> {
        match self {
            Self::Llama(m) => m.restore(snap, n),
            Self::DeviceLlama(m) => m.restore(snap, n),
            Self::Gemma3(_) => Err(self.no_snapshots()),
        }
    }

    fn no_snapshots(&self) -> EngineError {
        EngineError::Backend(format!("{} models have no KV snapshots", self.name()))
    }

    /// Whether several sequences can decode in one forward pass
    /// ([`Self::forward_batch`] with more than one row).
    pub fn supports_batching(&self) -> bool {
        matches!(self, Self::Llama(_) | Self::DeviceLlama(_))
    }

    /// Takes the single-sequence KV cache out for a decoding sequence (see
    /// [`LlamaModel::take_cache`]). Gemma 3 keeps its cache inside the
    /// model: what it hands out only counts positions.
    pub fn take_cache(&mut self) -> SequenceKv {
        match self {
            Self::Llama(m) => m.take_cache(),
            Self::DeviceLlama(m) => m.take_cache(),
            Self::Gemma3(m) => SequenceKv::positions_only(m.cached_len()),
        }
    }

    /// Gives a finished sequence's cache back (see [`LlamaModel::put_cache`]).
    pub fn put_cache(&mut self, kv: SequenceKv) {
        match self {
            Self::Llama(m) => m.put_cache(kv),
            Self::DeviceLlama(m) => m.put_cache(kv),
            Self::Gemma3(_) => {}
        }
    }

    /// One new token per sequence, logits (sequences, vocabulary). Gemma 3
    /// takes one sequence: the one whose positions its own cache holds.
    pub fn forward_batch(
        &mut self,
        seqs: &mut [&mut SequenceKv],
        tokens: &[u32],
    ) -> Result<Tensor, EngineError> {
        match self {
            Self::Llama(m) => m.forward_batch(seqs, tokens),
            Self::DeviceLlama(m) => m.forward_batch(seqs, tokens),
            Self::Gemma3(m) => match (seqs, tokens) {
                ([kv], [t]) => {
                    let logits = m.forward(&[*t], kv.len(), false)?;
                    kv.advance(1);
                    Ok(logits)
                }
                (seqs, _) => Err(EngineError::Backend(format!(
                    "gemma3 decodes one sequence at a time, not {}",
                    seqs.len()
                ))),
            },
        }
    }

    pub fn context_length(&self) -> usize {
        match self {
            Self::Llama(m) => m.context_length(),
            Self::Gemma3(m) => m.context_length(),
            Self::DeviceLlama(m) => m.context_length(),
        }
    }

    /// What was done to the file's weights at load.
    pub fn weights(&self) -> &str {
        match self {
            Self::Llama(m) => m.weights(),
            Self::Gemma3(m) => m.weights(),
            Self::DeviceLlama(m) => m.weights(),
        }
    }
}

/// The file's `general.architecture`.
pub fn architecture(content: &Content) -> Result<String, EngineError> {
    content
        .metadata
        .get("general.architecture")
        .ok_or_else(|| EngineError::Load("missing metadata general.architecture".into()))?
        .to_string()
        .cloned()
        .map_err(|e| EngineError::Load(format!("general.architecture: {e}")))
}
