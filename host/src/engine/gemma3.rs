//! Gemma 3 forward pass over quantized GGUF weights, with a KV cache.
//!
//! Follows llama.cpp's `gemma3` architecture: the token embedding scaled by
//! √d_model; pre- *and* post-norms around attention and the MLP (the GGUF
//! conversion already added Gemma's `1 +` to every norm weight); per-head
//! RMSNorm of queries and keys before NeoX-style RoPE; grouped-query
//! attention where five of every six layers see only a sliding window of
//! recent positions and use a local RoPE base; a GELU-gated MLP; and an
//! output head tied to the embedding.
//!
//! candle-transformers has `quantized_gemma3`, but it uses SiLU in the MLP,
//! masks the cached prefix out of any multi-token forward after position 0
//! (our prefix reuse and continuation scoring do exactly that), drops the
//! sliding window during decode and returns only the last position's
//! logits, so the architecture is implemented here, in the shape of
//! [`super::llama`].

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use super::EngineError;
use super::llama::WeightFormat;
use super::weight_log::WeightLog;

/// Every n-th layer attends globally; the others use the sliding window
/// (llama.cpp hard-codes the same pattern for gemma3).
const GLOBAL_LAYER_EVERY: usize = 6;
/// RoPE base of the sliding-window layers (not in the GGUF metadata).
const LOCAL_ROPE_BASE: f32 = 10_000.0;

#[derive(Debug, Clone)]
struct Hparams {
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    rms_eps: f32,
    rope_base: f32,
    sliding_window: usize,
    context_length: usize,
}

struct Block {
    attn_norm: Tensor,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    q_norm: Tensor,
    k_norm: Tensor,
    wo: QMatMul,
    post_attn_norm: Tensor,
    ffn_norm: Tensor,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
    post_ffn_norm: Tensor,
    /// `Some(window)` on sliding-window layers.
    window: Option<usize>,
    /// Keys and values, position-major as in [`super::llama`]: position
    /// `j`, KV head `h` at `[(j * kv_heads + h) * head_dim..][..head_dim]`.
    k: Vec<f32>,
    v: Vec<f32>,
}

/// The model and its KV cache. Not `Sync`: one sequence at a time.
pub struct Gemma3Model {
    hp: Hparams,
    tok_embd: QMatMul,
    blocks: Vec<Block>,
    out_norm: Tensor,
    /// cos/sin tables, (ctx, head_dim / 2), of the global and local bases.
    rope_global: (Tensor, Tensor),
    rope_local: (Tensor, Tensor),
    device: Device,
    cached: usize,
    weights: String,
}

impl Gemma3Model {
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
            log: WeightLog::default(),
        };
        let tok_embd = loader.matmul("token_embd.weight")?;
        if content.tensor_infos.contains_key("output.weight") {
            return Err(EngineError::Load(
                "gemma3 with an untied output.weight is not supported".into(),
            ));
        }
        let out_norm = loader.vector("output_norm.weight")?;
        let blocks = (0..hp.n_layer)
            .map(|i| {
                let p = format!("blk.{i}");
                let global = (i + 1) % GLOBAL_LAYER_EVERY == 0;
                Ok(Block {
                    attn_norm: loader.vector(&format!("{p}.attn_norm.weight"))?,
                    wq: loader.matmul(&format!("{p}.attn_q.weight"))?,
                    wk: loader.matmul(&format!("{p}.attn_k.weight"))?,
                    wv: loader.matmul(&format!("{p}.attn_v.weight"))?,
                    q_norm: loader.vector(&format!("{p}.attn_q_norm.weight"))?,
                    k_norm: loader.vector(&format!("{p}.attn_k_norm.weight"))?,
                    wo: loader.matmul(&format!("{p}.attn_output.weight"))?,
                    post_attn_norm: loader.vector(&format!("{p}.post_attention_norm.weight"))?,
                    ffn_norm: loader.vector(&format!("{p}.ffn_norm.weight"))?,
                    w_gate: loader.matmul(&format!("{p}.ffn_gate.weight"))?,
                    w_up: loader.matmul(&format!("{p}.ffn_up.weight"))?,
                    w_down: loader.matmul(&format!("{p}.ffn_down.weight"))?,
                    post_ffn_norm: loader.vector(&format!("{p}.post_ffw_norm.weight"))?,
                    window: (!global).then_some(hp.sliding_window),
                    k: Vec::new(),
                    v: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let rope_global = rope_tables(&hp, hp.rope_base, device).map_err(load_err)?;
        let rope_local = rope_tables(&hp, LOCAL_ROPE_BASE, device).map_err(load_err)?;
        let weights = loader.describe();
        Ok(Self {
            hp,
            tok_embd,
            blocks,
            out_norm,
            rope_global,
            rope_local,
            device: device.clone(),
            cached: 0,
            weights,
        })
    }

    /// Runs `tokens` at positions `pos..`; `pos` must equal the number of
    /// cached tokens. Returns the logits of the last position, or of every
    /// position, (tokens.len(), vocabulary), when `all`.
    pub fn forward(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
    ) -> Result<Tensor, EngineError> {
        super::check_forward(tokens.len(), pos, self.cached, self.hp.context_length)?;
        let out = self.forward_inner(tokens, pos, all);
        if out.is_err() {
            // Some layers may have appended: the cache is no longer coherent.
            self.clear_cache();
        } else {
            self.cached += tokens.len();
        }
        out.map_err(|e| EngineError::Backend(e.to_string()))
    }

    fn forward_inner(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
    ) -> candle_core::Result<Tensor> {
        let t = tokens.len();
        let hp = self.hp.clone();
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let mut x = (self.tok_embd.embedding(&ids)? * (hp.n_embd as f64).sqrt())?;
        let narrow = |(cos, sin): &(Tensor, Tensor)| -> candle_core::Result<(Tensor, Tensor)> {
            Ok((cos.narrow(0, pos, t)?, sin.narrow(0, pos, t)?))
        };
        let global = narrow(&self.rope_global)?;
        let local = narrow(&self.rope_local)?;
        for block in &mut self.blocks {
            let rope = if block.window.is_some() {
                &local
            } else {
                &global
            };
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, hp.rms_eps)?;
            let h = block.attention(&h, &hp, rope)?;
            let h = candle_nn::ops::rms_norm(&h, &block.post_attn_norm, hp.rms_eps)?;
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &block.ffn_norm, hp.rms_eps)?;
            // GELU, tanh approximation (Gemma's gelu_pytorch_tanh, ggml's gelu).
            let gate = block.w_gate.forward(&h)?.gelu()?;
            let h = block.w_down.forward(&(gate * block.w_up.forward(&h)?)?)?;
            let h = candle_nn::ops::rms_norm(&h, &block.post_ffn_norm, hp.rms_eps)?;
            x = (x + h)?;
        }
        let x = if all { x } else { x.narrow(1, t - 1, 1)? };
        let x = candle_nn::ops::rms_norm(&x, &self.out_norm, hp.rms_eps)?;
        let logits = self
            .tok_embd
            .forward(&x)?
            .squeeze(0)?
            .to_dtype(DType::F32)?;
        if all {
            Ok(logits)
        } else {
            logits.flatten_all()
        }
    }

    /// Keeps the first `n` cached positions and forgets the rest.
    pub fn truncate_cache(&mut self, n: usize) {
        let n = n.min(self.cached);
        let stride = self.hp.n_head_kv * self.hp.head_dim;
        for b in &mut self.blocks {
            b.k.truncate(n * stride);
            b.v.truncate(n * stride);
        }
        self.cached = n;
    }

    pub fn clear_cache(&mut self) {
        self.truncate_cache(0);
    }

    /// Number of positions held in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.cached
    }

    pub fn context_length(&self) -> usize {
        self.hp.context_length
    }

    /// What was done to the file's weights at load.
    pub fn weights(&self) -> &str {
        &self.weights
    }
}

impl Block {
    fn attention(
        &mut self,
        x: &Tensor,
        hp: &Hparams,
        (cos, sin): &(Tensor, Tensor),
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let hd = hp.head_dim;
        // Per-head RMSNorm on (b, t, n, hd), then (b, n, t, hd) for rope,
        // then back to position-major (t, n, hd) for the cache and `attend`.
        let heads = |w: &QMatMul, norm: &Tensor, n: usize| -> candle_core::Result<Tensor> {
            let h = w.forward(x)?.reshape((b, t, n, hd))?;
            let h = candle_nn::ops::rms_norm(&h, norm, hp.rms_eps)?;
            let h = h.transpose(1, 2)?.contiguous()?;
            candle_nn::rotary_emb::rope(&h, cos, sin)
        };
        let position_major = |x: Tensor| -> candle_core::Result<Vec<f32>> {
            x.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()
        };
        let q = position_major(heads(&self.wq, &self.q_norm, hp.n_head)?)?;
        let k = position_major(heads(&self.wk, &self.k_norm, hp.n_head_kv)?)?;
        let v = self.wv.forward(x)?.flatten_all()?.to_vec1::<f32>()?;
        let pos = self.k.len() / (hp.n_head_kv * hd);
        self.k.extend_from_slice(&k);
        self.v.extend_from_slice(&v);
        let out = attend(&q, &self.k, &self.v, pos, t, hp, self.window);
        let out = Tensor::from_vec(out, (b, t, hp.n_head * hd), x.device())?;
        self.wo.forward(&out)
    }
}

/// Causal grouped-query attention of `t` new positions (after `pos` cached
/// ones), each seeing at most the last `window` positions when set (itself
/// included, as llama.cpp's standard SWA mask). Plain Rust with a fixed
/// summation order, like llama.rs's `attend`, so a row's result does not
/// depend on how many rows were computed with it. Query heads are split
/// across two threads when there is enough work.
fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    pos: usize,
    t: usize,
    hp: &Hparams,
    window: Option<usize>,
) -> Vec<f32> {
    let (nh, nkv, hd) = (hp.n_head, hp.n_head_kv, hp.head_dim);
    let rep = nh / nkv;
    // Gemma 3 (but 27B) scales queries by 1/√head_dim (query_pre_attn_scalar).
    let scale = 1.0 / (hd as f32).sqrt();
    let head = |h: usize, out: &mut [f32], width: usize, local: usize| {
        let g = h / rep;
        let mut scores = Vec::with_capacity(pos + t);
        let mut acc = vec![0f32; hd];
        for i in 0..t {
            let qi = &q[(i * nh + h) * hd..][..hd];
            let end = pos + i + 1;
            let start = window.map_or(0, |w| end.saturating_sub(w));
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for j in start..end {
                let s = forge_kernels::vec::dot_f32(qi, &k[(j * nkv + g) * hd..][..hd]) * scale;
                max = max.max(s);
                scores.push(s);
            }
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (j, &p) in (start..end).zip(scores.iter()) {
                let vj = &v[(j * nkv + g) * hd..][..hd];
                for (a, &x) in acc.iter_mut().zip(vj) {
                    *a += p * x;
                }
            }
            let inv = 1.0 / sum;
            let row = &mut out[(i * width + local) * hd..][..hd];
            for (o, a) in row.iter_mut().zip(&acc) {
                *o = a * inv;
            }
        }
    };
    let mut out = vec![0f32; t * nh * hd];
    let work = t * (pos + t) * nh;
    if work < 64 * 1024 || nh < 2 {
        for h in 0..nh {
            head(h, &mut out, nh, h);
        }
        return out;
    }
    // Two halves of the heads, each into its own buffer, then interleaved.
    let split = nh / 2;
    let run = |hs: std::ops::Range<usize>| {
        let width = hs.len();
        let mut buf = vec![0f32; t * width * hd];
        for (local, h) in hs.enumerate() {
            head(h, &mut buf, width, local);
        }
        buf
    };
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| run(split..nh));
        (run(0..split), other.join().expect("attention thread"))
    });
    for i in 0..t {
        let row = &mut out[i * nh * hd..][..nh * hd];
        row[..split * hd].copy_from_slice(&a[i * split * hd..][..split * hd]);
        row[split * hd..].copy_from_slice(&b[i * (nh - split) * hd..][..(nh - split) * hd]);
    }
    out
}

/// cos/sin for every position in the context, (ctx, head_dim / 2).
fn rope_tables(hp: &Hparams, base: f32, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let half = hp.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / hp.head_dim as f32))
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
        let get = |key: &str| {
            md.get(&format!("gemma3.{key}"))
                .ok_or_else(|| EngineError::Load(format!("missing metadata gemma3.{key}")))
        };
        let usize_of = |key: &str| -> Result<usize, EngineError> {
            get(key)?
                .to_u64()
                .map(|v| v as usize)
                .map_err(|e| EngineError::Load(format!("gemma3.{key}: {e}")))
        };
        let f32_of = |key: &str, default: f32| -> Result<f32, EngineError> {
            match get(key) {
                Ok(v) => v
                    .to_f32()
                    .map_err(|e| EngineError::Load(format!("gemma3.{key}: {e}"))),
                Err(_) => Ok(default),
            }
        };
        if md.contains_key("gemma3.final_logit_softcapping")
            || md.contains_key("gemma3.attn_logit_softcapping")
        {
            return Err(EngineError::Load(
                "gemma3 with logit soft-capping is not supported".into(),
            ));
        }
        let n_embd = usize_of("embedding_length")?;
        let n_head = usize_of("attention.head_count")?;
        let n_head_kv = usize_of("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = usize_of("attention.key_length")?;
        if n_head == 0
            || n_head_kv == 0
            || n_head % n_head_kv != 0
            || usize_of("attention.value_length")? != head_dim
        {
            return Err(EngineError::Load(format!(
                "inconsistent attention shape: {n_head} heads, {n_head_kv} kv heads, \
                 head dim {head_dim}"
            )));
        }
        Ok(Self {
            n_layer: usize_of("block_count")?,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps: f32_of("attention.layer_norm_rms_epsilon", 1e-6)?,
            rope_base: f32_of("rope.freq_base", 1_000_000.0)?,
            sliding_window: usize_of("attention.sliding_window")?,
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
    log: WeightLog,
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
        // candle's CPU kernels for these lack SIMD; Q8_0's are fast.
        let slow = matches!(
            dtype,
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
        );
        if self.format == WeightFormat::F32 {
            self.log.dequantised(dtype);
            return Ok(QMatMul::Tensor(
                qt.dequantize(self.device).map_err(load_err)?,
            ));
        }
        let qt = if self.format == WeightFormat::Q8_0 && slow {
            self.log.requantised(dtype);
            let w = qt.dequantize(self.device).map_err(load_err)?;
            QTensor::quantize(&w, GgmlDType::Q8_0).map_err(load_err)?
        } else {
            self.log.kept(dtype);
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
        self.log.describe()
    }
}

fn load_err(e: candle_core::Error) -> EngineError {
    EngineError::Load(e.to_string())
}
