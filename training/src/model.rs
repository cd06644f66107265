//! The llama training forward: frozen base weights plus LoRA, causal
//! attention with GQA, built only from candle ops that have a backward
//! (matmul, elementwise, sqr/sqrt/recip, sum/max, exp/log, gather,
//! index_select/index_add, narrow/cat, broadcasts) and the two custom ops
//! of [`crate::autograd`]. candle's fused `rms_norm`, `softmax_last_dim`
//! and `rope*` record no gradient and are not used.
//!
//! Rotary embedding is llama.cpp's "normal" RoPE (adjacent pairs) on GGUF
//! row order, which equals Hugging Face's `rotate_half` on HF row order
//! ([`crate::layout`]).

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};

use crate::autograd::{GradSink, Segment, checkpoint, frozen_linear};
use crate::base::{BaseModel, LayerWeights};
use crate::batch::Batch;
use crate::config::LlamaConfig;
use crate::error::{Result, TrainError};
use crate::lora::{Lora, LoraPair, Target};
use crate::rng::dropout_mask;

/// Rows of the output head computed at once: bounds the `[rows, vocab]`
/// logits (128 × 49152 f32 = 25 MB) that are never materialised whole.
const HEAD_CHUNK: usize = 128;

/// How the adapter takes part in a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// The base model (the DPO reference): no graph, no gradients.
    Off,
    /// Base + adapter, differentiable, no dropout (PEFT's eval mode).
    On,
    /// Base + adapter with LoRA dropout drawn from `dropout_key`
    /// (PEFT's train mode); differentiable.
    Train { dropout_key: u64 },
}

/// Log-probabilities of the completion tokens of a [`Batch`].
#[derive(Debug)]
pub struct Logps {
    /// `[rows]`: the sum over each row's completion tokens (differentiable
    /// unless the adapter was off).
    pub sums: Tensor,
    /// `[scored tokens]`, row after row.
    pub tokens: Tensor,
    scored_per_row: Vec<usize>,
}

impl Logps {
    /// Per row, the log-probability of each scored completion token.
    pub fn per_token(&self) -> Result<Vec<Vec<f64>>> {
        let all = self.tokens.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mut out = Vec::with_capacity(self.scored_per_row.len());
        let mut at = 0;
        for &n in &self.scored_per_row {
            out.push(all[at..at + n].to_vec());
            at += n;
        }
        Ok(out)
    }

    pub fn sums_f64(&self) -> Result<Vec<f64>> {
        Ok(self.sums.to_dtype(DType::F64)?.to_vec1::<f64>()?)
    }
}

/// The base model and its adapter.
pub struct Model {
    base: BaseModel,
    lora: Lora,
    checkpointing: bool,
    sink: GradSink,
}

impl Model {
    /// Recomputes each layer in the backward pass (activation
    /// checkpointing) unless [`Model::set_checkpointing`] says otherwise.
    pub fn new(base: BaseModel, lora: Lora) -> Result<Self> {
        if lora.n_layer() != base.config.n_layer {
            return Err(TrainError::Model(format!(
                "adapter has {} layers, the model {}",
                lora.n_layer(),
                base.config.n_layer
            )));
        }
        Ok(Self {
            base,
            lora,
            checkpointing: true,
            sink: GradSink::default(),
        })
    }

    /// Off: the whole graph is kept for the backward pass (more memory,
    /// no recomputation). The gradients are the same.
    pub fn set_checkpointing(&mut self, on: bool) {
        self.checkpointing = on;
    }

    pub fn base(&self) -> &BaseModel {
        &self.base
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.base.config
    }

    pub fn lora(&self) -> &Lora {
        &self.lora
    }

    /// Swaps the adapter (e.g. one loaded from a checkpoint).
    pub fn set_lora(&mut self, lora: Lora) -> Result<()> {
        if lora.n_layer() != self.base.config.n_layer {
            return Err(TrainError::Model(format!(
                "adapter has {} layers, the model {}",
                lora.n_layer(),
                self.base.config.n_layer
            )));
        }
        self.lora = lora;
        Ok(())
    }

    pub fn into_parts(self) -> (BaseModel, Lora) {
        (self.base, self.lora)
    }

    /// Sum and per-token log-probabilities of each row's completion.
    pub fn sequence_logps(&self, batch: &Batch, adapter: Adapter) -> Result<Logps> {
        let cfg = &self.base.config;
        if batch.max_id as usize >= cfg.vocab {
            return Err(TrainError::Batch(format!(
                "token id {} is outside the vocabulary of {}",
                batch.max_id, cfg.vocab
            )));
        }
        let dtype = self.base.dtype();
        let grad = adapter != Adapter::Off;
        let mut x = self.base.embed.index_select(&batch.ids, 0)?;
        if grad {
            // The gradient path must start at a tracked tensor, or the
            // backward pass never reaches the first recomputed layer.
            x = Var::from_tensor(&x)?.into_inner();
        }
        let (cos, sin) = rope_tables(cfg, batch.width, dtype)?;
        let mask = causal_mask(batch, cfg.n_head / cfg.n_kv_head, dtype)?;
        for (l, weights) in self.base.layers.iter().enumerate() {
            let seg = LayerSeg {
                cfg: cfg.clone(),
                w: weights.clone(),
                lora: grad.then(|| (self.lora.layer(l).clone(), self.lora.scaling())),
                dropout: match adapter {
                    Adapter::Train { dropout_key } if self.lora.config().dropout > 0.0 => {
                        Some((dropout_key, self.lora.config().dropout))
                    }
                    _ => None,
                },
                layer: l,
                cos: cos.clone(),
                sin: sin.clone(),
                mask: mask.clone(),
                rows: batch.rows,
                width: batch.width,
            };
            x = self.apply(seg, &x, grad)?;
        }
        let scored = batch.scored();
        let tokens = if scored == 0 {
            Tensor::zeros(0, dtype, &Device::Cpu)?
        } else {
            let h = x.index_select(&batch.scored_positions, 0)?;
            let mut parts = Vec::new();
            for start in (0..scored).step_by(HEAD_CHUNK) {
                let len = HEAD_CHUNK.min(scored - start);
                let seg = HeadSeg {
                    norm: self.base.norm.clone(),
                    head: self.base.head().clone(),
                    targets: batch.targets.narrow(0, start, len)?,
                    eps: cfg.rms_eps,
                };
                parts.push(self.apply(seg, &h.narrow(0, start, len)?, grad)?);
            }
            Tensor::cat(&parts, 0)?
        };
        let sums = if scored == 0 {
            Tensor::zeros(batch.rows, dtype, &Device::Cpu)?
        } else {
            Tensor::zeros(batch.rows, dtype, &Device::Cpu)?.index_add(
                &batch.scored_row,
                &tokens,
                0,
            )?
        };
        Ok(Logps {
            sums,
            tokens,
            scored_per_row: batch.scored_per_row.clone(),
        })
    }

    fn apply<S: Segment + 'static>(&self, seg: S, x: &Tensor, grad: bool) -> Result<Tensor> {
        Ok(if !grad {
            seg.run(x, false)?
        } else if self.checkpointing {
            checkpoint(x, Arc::new(seg), &self.sink)?
        } else {
            seg.run(x, true)?
        })
    }

    /// Backpropagates `loss` (computed from [`Model::sequence_logps`] with
    /// the adapter on) and returns the gradient of every LoRA parameter,
    /// aligned with [`Lora::params`]. Frozen weights get none.
    pub fn backward(&self, loss: &Tensor) -> Result<Vec<Tensor>> {
        self.sink.clear();
        let mut store = loss.backward()?;
        let mut grads = Vec::new();
        for p in self.lora.params() {
            let t = p.var.as_tensor();
            let g = match (store.remove(t), self.sink.take(t.id())) {
                (Some(a), Some(b)) => (a + b)?,
                (Some(g), None) | (None, Some(g)) => g,
                (None, None) => t.zeros_like()?,
            };
            grads.push(g);
        }
        self.sink.clear();
        Ok(grads)
    }
}

/// `cos`, `sin` of shape `[width, 1, head_dim/2, 1]`, computed as Hugging
/// Face does (`inv_freq = 1/θ^(2i/d)`, `angle = pos · inv_freq`, in f32 for
/// an f32 model).
fn rope_tables(cfg: &LlamaConfig, width: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let d = cfg.head_dim;
    let (mut cos, mut sin) = (
        Vec::with_capacity(width * half),
        Vec::with_capacity(width * half),
    );
    for pos in 0..width {
        for i in 0..half {
            if dtype == DType::F64 {
                let inv = 1.0 / cfg.rope_theta.powf((2 * i) as f64 / d as f64);
                let a = pos as f64 * inv;
                cos.push(a.cos());
                sin.push(a.sin());
            } else {
                let inv = 1.0f32 / (cfg.rope_theta as f32).powf((2 * i) as f32 / d as f32);
                let a = pos as f32 * inv;
                cos.push(f64::from(a.cos()));
                sin.push(f64::from(a.sin()));
            }
        }
    }
    let shape = (width, 1, half, 1);
    Ok((
        Tensor::from_vec(cos, shape, &Device::Cpu)?.to_dtype(dtype)?,
        Tensor::from_vec(sin, shape, &Device::Cpu)?.to_dtype(dtype)?,
    ))
}

/// Additive mask `[rows, 1, group·width, width]` for grouped queries
/// (query row `r·width + i` of a KV group is position `i`): key `j` is
/// visible when `j <= i` and `j` is a real token of that row.
fn causal_mask(batch: &Batch, group: usize, dtype: DType) -> Result<Tensor> {
    let w = batch.width;
    let mut m = Vec::with_capacity(batch.rows * group * w * w);
    for &len in &batch.lens {
        for _ in 0..group {
            for i in 0..w {
                for j in 0..w {
                    m.push(if j <= i && j < len {
                        0f32
                    } else {
                        f32::NEG_INFINITY
                    });
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (batch.rows, 1, group * w, w), &Device::Cpu)?.to_dtype(dtype)?)
}

/// `x / sqrt(mean(x²) + eps) · w` over the last dim (Hugging Face's
/// `LlamaRMSNorm` in f32), from differentiable ops.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let r = x
        .sqr()?
        .mean_keepdim(D::Minus1)?
        .affine(1.0, eps)?
        .sqrt()?
        .recip()?;
    x.broadcast_mul(&r)?.broadcast_mul(w)
}

/// Adjacent-pair rotation of `x: [rows, width, heads, head_dim]`.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, h, d) = x.dims4()?;
    let x = x.reshape((b, t, h, d / 2, 2))?;
    let x0 = x.narrow(4, 0, 1)?;
    let x1 = x.narrow(4, 1, 1)?;
    let r0 = (x0.broadcast_mul(cos)? - x1.broadcast_mul(sin)?)?;
    let r1 = (x0.broadcast_mul(sin)? + x1.broadcast_mul(cos)?)?;
    Tensor::cat(&[r0, r1], 4)?.reshape((b, t, h, d))
}

/// One transformer block, run once without a graph and again, with one,
/// in the backward pass.
struct LayerSeg {
    cfg: LlamaConfig,
    w: LayerWeights,
    /// The layer's adapter and scaling; `None` = adapter off.
    lora: Option<([Option<LoraPair>; 7], f64)>,
    /// `(key, p)` when LoRA dropout is active.
    dropout: Option<(u64, f64)>,
    layer: usize,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
    rows: usize,
    width: usize,
}

impl LayerSeg {
    /// `W x` plus, for an adapted target, `scaling · B A dropout(x)`.
    fn linear(&self, x: &Tensor, t: Target, track: bool) -> candle_core::Result<Tensor> {
        let y = frozen_linear(x, self.w.get(t))?;
        let Some((slots, scaling)) = &self.lora else {
            return Ok(y);
        };
        let Some(pair) = &slots[t.index()] else {
            return Ok(y);
        };
        let (a, b) = if track {
            (pair.a.as_tensor().clone(), pair.b.as_tensor().clone())
        } else {
            (pair.a.as_detached_tensor(), pair.b.as_detached_tensor())
        };
        let x = match self.dropout {
            Some((key, p)) => {
                let stream = (self.layer * Target::ALL.len() + t.index()) as u64;
                (x * dropout_mask(key, stream, p, x.shape(), x.dtype())?)?
            }
            None => x.clone(),
        };
        let lo = x.matmul(&a.t()?)?.matmul(&b.t()?)?;
        y + lo.affine(*scaling, 0.0)?
    }
}

impl Segment for LayerSeg {
    fn run(&self, x: &Tensor, track: bool) -> candle_core::Result<Tensor> {
        let c = &self.cfg;
        let (b, t, hd) = (self.rows, self.width, c.head_dim);
        let (nh, nkv) = (c.n_head, c.n_kv_head);
        let h = rms_norm(x, &self.w.attn_norm, c.rms_eps)?;
        let q = self.linear(&h, Target::Q, track)?;
        let k = self.linear(&h, Target::K, track)?;
        let v = self.linear(&h, Target::V, track)?;
        let q = rope(&q.reshape((b, t, nh, hd))?, &self.cos, &self.sin)?
            .transpose(1, 2)?
            .contiguous()?
            // Heads sharing a KV head are adjacent: group them as extra query rows.
            .reshape((b, nkv, nh / nkv * t, hd))?;
        let k = rope(&k.reshape((b, t, nkv, hd))?, &self.cos, &self.sin)?
            .transpose(1, 2)?
            .contiguous()?;
        let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let scores =
            (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(&self.mask)?;
        // softmax(s) = softmax(s - c) for any constant c: the max needs no gradient.
        let max = scores.max_keepdim(D::Minus1)?.detach();
        let e = scores.broadcast_sub(&max)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        let o = p
            .matmul(&v)?
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, nh * hd))?;
        let x = (x + self.linear(&o, Target::O, track)?)?;
        let h = rms_norm(&x, &self.w.ffn_norm, c.rms_eps)?;
        let g = self.linear(&h, Target::Gate, track)?;
        let u = self.linear(&h, Target::Up, track)?;
        let f = (g.silu()? * u)?;
        x + self.linear(&f, Target::Down, track)?
    }

    fn params(&self) -> Vec<Var> {
        let Some((slots, _)) = &self.lora else {
            return Vec::new();
        };
        slots
            .iter()
            .flatten()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect()
    }
}

/// Final norm, output head and log-softmax at the target for a chunk of
/// scored rows: `logp = (l_y - m) - log Σ exp(l - m)`.
struct HeadSeg {
    norm: Tensor,
    head: Tensor,
    targets: Tensor,
    eps: f64,
}

impl Segment for HeadSeg {
    fn run(&self, x: &Tensor, _track: bool) -> candle_core::Result<Tensor> {
        let h = rms_norm(x, &self.norm, self.eps)?;
        let logits = frozen_linear(&h, &self.head)?;
        let max = logits.max_keepdim(D::Minus1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let picked = shifted.gather(&self.targets.unsqueeze(1)?, 1)?;
        (picked - lse)?.squeeze(1)
    }

    fn params(&self) -> Vec<Var> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::hf_to_gguf_rows;

    /// Why q/k rows are permuted: adjacent-pair RoPE on GGUF rows equals
    /// Hugging Face's `rotate_half` RoPE (pairs `i, i + d/2`) on HF rows.
    #[test]
    fn pair_rope_on_gguf_rows_is_rotate_half_on_hf_rows() {
        let cfg = LlamaConfig {
            n_layer: 1,
            n_embd: 12,
            n_head: 2,
            n_kv_head: 1,
            head_dim: 6,
            n_ff: 8,
            vocab: 4,
            rms_eps: 1e-5,
            rope_theta: 100.0,
        };
        let (t, h, d) = (5, cfg.n_head, cfg.head_dim);
        let x_hf: Vec<f64> = (0..t * h * d)
            .map(|i| ((i * 7 % 13) as f64 - 6.0) / 5.0)
            .collect();
        // HF rotate_half, written out.
        let mut want_hf = vec![0.0; x_hf.len()];
        for pos in 0..t {
            for head in 0..h {
                let o = (pos * h + head) * d;
                for i in 0..d / 2 {
                    let a = pos as f64 / cfg.rope_theta.powf((2 * i) as f64 / d as f64);
                    let (x0, x1) = (x_hf[o + i], x_hf[o + i + d / 2]);
                    want_hf[o + i] = x0 * a.cos() - x1 * a.sin();
                    want_hf[o + i + d / 2] = x1 * a.cos() + x0 * a.sin();
                }
            }
        }
        // Permute each position's [h*d] vector as the converter permutes rows.
        let to_gguf = |v: &[f64]| -> Tensor {
            let m = Tensor::from_vec(v.to_vec(), (t, h * d), &Device::Cpu).unwrap();
            hf_to_gguf_rows(&m.t().unwrap().contiguous().unwrap(), h)
                .unwrap()
                .t()
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (cos, sin) = rope_tables(&cfg, t, DType::F64).unwrap();
        let got = rope(&to_gguf(&x_hf).reshape((1, t, h, d)).unwrap(), &cos, &sin).unwrap();
        let want = to_gguf(&want_hf);
        let (got, want) = (
            got.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }
}
