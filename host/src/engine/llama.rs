//! A small llama forward pass over quantized GGUF weights, with a KV cache.
//!
//! Follows llama.cpp's `llama` architecture: pre-norm blocks with RMSNorm,
//! grouped-query attention with interleaved RoPE (GGUF stores Q/K permuted
//! for it), a SiLU-gated MLP, and an output head that falls back to the token
//! embedding when the file has none (tied embeddings).

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::kv_cache::KvCache;

use super::EngineError;

/// How quantized weights are held in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// Requantise Q4_0/Q4_1/Q5_x matrices to Q8_0: candle's CPU kernels for
    /// those types lack SIMD, Q8_0's are fast (~4x decode speed here).
    #[default]
    Q8_0,
    /// Keep every tensor in the file's own type.
    AsFile,
}

/// Initial KV cache capacity (tokens); it grows by this much when full.
const KV_CHUNK: usize = 512;

#[derive(Debug, Clone)]
struct Hparams {
    n_layer: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    rms_eps: f32,
    rope_base: f32,
    context_length: usize,
}

struct Block {
    attn_norm: Tensor,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    ffn_norm: Tensor,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
    cache: KvCache,
}

/// The model and its KV cache. Not `Sync`: one sequence at a time.
pub struct LlamaModel {
    hp: Hparams,
    tok_embd: QMatMul,
    blocks: Vec<Block>,
    out_norm: Tensor,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    /// Tokens currently in the KV cache.
    cached: usize,
    weights: String,
}

impl LlamaModel {
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
        format: WeightFormat,
    ) -> Result<Self, EngineError> {
        let hp = Hparams::from_gguf(content)?;
        let mut loader = Loader {
            content,
            reader,
            device,
            format,
            converted: Default::default(),
            kept: Default::default(),
        };
        let tok_embd = loader.matmul("token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            loader.matmul("output.weight")?
        } else {
            tok_embd.clone()
        };
        let out_norm = loader.vector("output_norm.weight")?;
        let blocks = (0..hp.n_layer)
            .map(|i| {
                let p = format!("blk.{i}");
                Ok(Block {
                    attn_norm: loader.vector(&format!("{p}.attn_norm.weight"))?,
                    wq: loader.matmul(&format!("{p}.attn_q.weight"))?,
                    wk: loader.matmul(&format!("{p}.attn_k.weight"))?,
                    wv: loader.matmul(&format!("{p}.attn_v.weight"))?,
                    wo: loader.matmul(&format!("{p}.attn_output.weight"))?,
                    ffn_norm: loader.vector(&format!("{p}.ffn_norm.weight"))?,
                    w_gate: loader.matmul(&format!("{p}.ffn_gate.weight"))?,
                    w_up: loader.matmul(&format!("{p}.ffn_up.weight"))?,
                    w_down: loader.matmul(&format!("{p}.ffn_down.weight"))?,
                    cache: KvCache::new(2, KV_CHUNK),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let (cos, sin) = rope_tables(&hp, device).map_err(load_err)?;
        let weights = loader.describe();
        Ok(Self {
            hp,
            tok_embd,
            blocks,
            out_norm,
            output,
            cos,
            sin,
            device: device.clone(),
            cached: 0,
            weights,
        })
    }

    /// Runs `tokens`, which sit at positions `pos..pos + tokens.len()`, through
    /// the model; `pos` must equal the number of tokens already cached.
    /// Returns the logits (f32, vocabulary-sized) of the last position.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::Backend("forward of zero tokens".into()));
        }
        if pos != self.cached {
            return Err(EngineError::Backend(format!(
                "forward at position {pos} but the cache holds {} tokens",
                self.cached
            )));
        }
        if pos + tokens.len() > self.hp.context_length {
            return Err(EngineError::ContextOverflow {
                prompt: pos + tokens.len(),
                max_new: 0,
                ctx: self.hp.context_length,
            });
        }
        let out = self.forward_inner(tokens, pos).map_err(backend_err)?;
        self.cached += tokens.len();
        Ok(out)
    }

    fn forward_inner(&mut self, tokens: &[u32], pos: usize) -> candle_core::Result<Tensor> {
        let t = tokens.len();
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let mut x = self.tok_embd.embedding(&ids)?;
        let mask = (t > 1).then(|| causal_mask(t, pos, self.n_rep(), &self.device));
        let mask = mask.transpose()?;
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        let hp = self.hp.clone();
        for block in &mut self.blocks {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, hp.rms_eps)?;
            let h = block.attention(&h, &hp, &cos, &sin, mask.as_ref())?;
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &block.ffn_norm, hp.rms_eps)?;
            let gate = candle_nn::ops::silu(&block.w_gate.forward(&h)?)?;
            let h = block.w_down.forward(&(gate * block.w_up.forward(&h)?)?)?;
            x = (x + h)?;
        }
        let last = x.narrow(1, t - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.out_norm, hp.rms_eps)?;
        self.output
            .forward(&last)?
            .flatten_all()?
            .to_dtype(DType::F32)
    }

    /// Forgets every cached position (next forward starts at 0).
    pub fn clear_cache(&mut self) {
        for b in &mut self.blocks {
            b.cache.reset();
        }
        self.cached = 0;
    }

    pub fn context_length(&self) -> usize {
        self.hp.context_length
    }

    /// Number of positions held in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.cached
    }

    /// What was done to the file's weights at load, e.g.
    /// "q8_0 requantised from q4_1; kept q8_0".
    pub fn weights(&self) -> &str {
        &self.weights
    }

    fn n_rep(&self) -> usize {
        self.hp.n_head / self.hp.n_head_kv
    }
}

impl Block {
    fn attention(
        &mut self,
        x: &Tensor,
        hp: &Hparams,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let hd = hp.head_dim;
        let heads = |w: &QMatMul, n: usize| -> candle_core::Result<Tensor> {
            w.forward(x)?
                .reshape((b, t, n, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = candle_nn::rotary_emb::rope_i(&heads(&self.wq, hp.n_head)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&heads(&self.wk, hp.n_head_kv)?, cos, sin)?;
        let v = heads(&self.wv, hp.n_head_kv)?;
        let (k, v) = self.cache.append(&k, &v)?;

        // GQA without copying K/V: query heads that share a KV head are
        // stacked along the sequence axis, (b, kv, rep * t, hd).
        let rep = hp.n_head / hp.n_head_kv;
        let q = q.reshape((b, hp.n_head_kv, rep * t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v.contiguous()?)?;
        let out = out
            .reshape((b, hp.n_head, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, hp.n_head * hd))?;
        self.wo.forward(&out)
    }
}

/// Additive causal mask for `t` new tokens after `pos` cached ones, repeated
/// for the `rep` query heads stacked per KV head: shape (rep * t, pos + t).
fn causal_mask(t: usize, pos: usize, rep: usize, device: &Device) -> candle_core::Result<Tensor> {
    let total = pos + t;
    let mask: Vec<f32> = (0..rep * t)
        .flat_map(|row| {
            let i = row % t;
            (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
        })
        .collect();
    Tensor::from_vec(mask, (rep * t, total), device)
}

/// cos/sin for every position in the context, (ctx, head_dim / 2).
fn rope_tables(hp: &Hparams, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let half = hp.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / hp.rope_base.powf(2.0 * i as f32 / hp.head_dim as f32))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let positions = Tensor::arange(0u32, hp.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((hp.context_length, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

impl Hparams {
    fn from_gguf(content: &Content) -> Result<Self, EngineError> {
        let md = &content.metadata;
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(EngineError::Load(format!(
                "unsupported architecture '{arch}' (only llama)"
            )));
        }
        let get = |key: &str| {
            md.get(&format!("llama.{key}"))
                .ok_or_else(|| EngineError::Load(format!("missing metadata llama.{key}")))
        };
        let usize_of = |key: &str| -> Result<usize, EngineError> {
            get(key)?
                .to_u64()
                .map(|v| v as usize)
                .map_err(|e| EngineError::Load(format!("llama.{key}: {e}")))
        };
        let f32_of = |key: &str, default: f32| -> Result<f32, EngineError> {
            match get(key) {
                Ok(v) => v
                    .to_f32()
                    .map_err(|e| EngineError::Load(format!("llama.{key}: {e}"))),
                Err(_) => Ok(default),
            }
        };
        let n_embd = usize_of("embedding_length")?;
        let n_head = usize_of("attention.head_count")?;
        let n_head_kv = usize_of("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = usize_of("rope.dimension_count").unwrap_or(n_embd / n_head);
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 || head_dim * n_head != n_embd {
            return Err(EngineError::Load(format!(
                "inconsistent attention shape: {n_head} heads, {n_head_kv} kv heads, \
                 head dim {head_dim}, embedding {n_embd}"
            )));
        }
        Ok(Self {
            n_layer: usize_of("block_count")?,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps: f32_of("attention.layer_norm_rms_epsilon", 1e-5)?,
            rope_base: f32_of("rope.freq_base", 10_000.0)?,
            context_length: usize_of("context_length")?,
        })
    }
}

/// Reads tensors, requantising as `format` asks and remembering what it did.
struct Loader<'a, R> {
    content: &'a Content,
    reader: &'a mut R,
    device: &'a Device,
    format: WeightFormat,
    /// File types converted to Q8_0.
    converted: std::collections::BTreeSet<String>,
    /// File types used as is.
    kept: std::collections::BTreeSet<String>,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn qtensor(&mut self, name: &str) -> Result<QTensor, EngineError> {
        self.content
            .tensor(self.reader, name, self.device)
            .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))
    }

    fn matmul(&mut self, name: &str) -> Result<QMatMul, EngineError> {
        let qt = self.qtensor(name)?;
        let dtype = qt.dtype();
        let slow = matches!(
            dtype,
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
        );
        let qt = if self.format == WeightFormat::Q8_0 && slow {
            self.converted.insert(dtype_name(dtype));
            let w = qt.dequantize(self.device).map_err(load_err)?;
            QTensor::quantize(&w, GgmlDType::Q8_0).map_err(load_err)?
        } else {
            self.kept.insert(dtype_name(dtype));
            qt
        };
        QMatMul::from_qtensor(qt).map_err(load_err)
    }

    fn vector(&mut self, name: &str) -> Result<Tensor, EngineError> {
        self.qtensor(name)?
            .dequantize(self.device)
            .map_err(load_err)
    }

    fn describe(&self) -> String {
        let join = |s: &std::collections::BTreeSet<String>| {
            s.iter().cloned().collect::<Vec<_>>().join("+")
        };
        match (self.converted.is_empty(), self.kept.is_empty()) {
            (true, _) => format!("as file ({})", join(&self.kept)),
            (false, true) => format!("q8_0 requantised from {}", join(&self.converted)),
            (false, false) => format!(
                "q8_0 requantised from {}; kept {}",
                join(&self.converted),
                join(&self.kept)
            ),
        }
    }
}

fn dtype_name(d: GgmlDType) -> String {
    format!("{d:?}").to_lowercase()
}

fn load_err(e: candle_core::Error) -> EngineError {
    EngineError::Load(e.to_string())
}

fn backend_err(e: candle_core::Error) -> EngineError {
    EngineError::Backend(e.to_string())
}
