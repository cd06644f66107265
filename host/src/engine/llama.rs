//! A small llama forward pass over quantized GGUF weights, with a KV cache.
//!
//! Follows llama.cpp's `llama` architecture: pre-norm blocks with RMSNorm,
//! grouped-query attention with interleaved RoPE (GGUF stores Q/K permuted
//! for it), a SiLU-gated MLP, and an output head that falls back to the token
//! embedding when the file has none (tied embeddings).
//!
//! The pass runs on plain f32 rows, not tensors: between the matmuls the
//! ops are a few hundred floats per token, where candle's per-op
//! allocation and thread hand-off cost more than the arithmetic; and each
//! op is forge-kernels' copy of llama.cpp's rounding (see
//! [`forge_kernels::ops`]), so greedy outputs follow llama.cpp's.

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Tensor};
use forge_kernels::blocks::{BlockQ4_1, BlockQ8_0};
use forge_kernels::{Parallel, Pool, QLinear, ops};

use super::EngineError;
use super::adapter::LoraDeltas;
use super::qlinear::Linear;
use super::weight_log::WeightLog;

/// How quantized weights are held in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// Requantise Q4_0/Q4_1/Q5_x matrices to Q8_0 (llama.cpp's reference
    /// rounding). More bytes per token and a different model than the
    /// file's: kept for comparison and for types without a forge kernel.
    Q8_0,
    /// Keep every tensor in the file's own type (the default): Q4_1 and
    /// Q8_0 run on forge-kernels (llama.cpp's arithmetic, see
    /// [`super::qlinear`]), other types on candle's kernels.
    #[default]
    AsFile,
    /// Dequantise every matrix to f32 (candle's matmul, f32 activations):
    /// the arithmetic of `train dpo`'s forward, for comparing the two
    /// (4x the memory of Q8_0, slower).
    F32,
}

impl std::str::FromStr for WeightFormat {
    type Err = String;

    /// The names configs and `--weights` use: `native` (the file's types),
    /// `q8_0` or `f32`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Self::AsFile),
            "q8_0" => Ok(Self::Q8_0),
            "f32" => Ok(Self::F32),
            other => Err(format!("weights {other:?}: expected native, q8_0 or f32")),
        }
    }
}

/// The shape numbers of a llama GGUF (shared with [`super::device_llama`]).
#[derive(Debug, Clone)]
pub(crate) struct Hparams {
    pub(crate) n_layer: usize,
    pub(crate) n_embd: usize,
    pub(crate) n_head: usize,
    pub(crate) n_head_kv: usize,
    pub(crate) head_dim: usize,
    pub(crate) rms_eps: f32,
    pub(crate) rope_base: f32,
    pub(crate) context_length: usize,
}

struct Block {
    attn_norm: Vec<f32>,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: Vec<f32>,
    w_gate: Linear,
    w_up: Linear,
    w_down: Linear,
}

/// One layer's keys and values, position-major: position `j`, KV head `h`
/// lives at `[(j * kv_heads + h) * head_dim..][..head_dim]`. Plain vectors,
/// not tensors: truncating (the prefix cache keeps a shared prefix) is
/// `Vec::truncate`, a snapshot is a copy of a slice, and attention reads
/// them directly (see [`attend`]).
#[derive(Default)]
struct LayerKv {
    k: Vec<f32>,
    v: Vec<f32>,
    /// Floats per position (kv_heads * head_dim).
    stride: usize,
}

impl LayerKv {
    fn truncate(&mut self, n: usize) {
        self.k.truncate(n * self.stride);
        self.v.truncate(n * self.stride);
    }
}

/// The KV cache of one sequence, every layer. The model owns one (the
/// single-sequence API: [`LlamaModel::forward`], snapshots); batched decode
/// ([`LlamaModel::forward_batch`]) takes one per row, so sequences of
/// different lengths decode together without sharing state.
#[derive(Default)]
pub struct SequenceKv {
    layers: Vec<LayerKv>,
    /// Positions held (every layer holds the same number).
    len: usize,
    /// On a device model ([`super::device_llama`]): the pool slot holding
    /// this sequence's keys and values (`layers` stays empty).
    pub(crate) slot: Option<super::kv_slots::SlotLease>,
}

impl SequenceKv {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A cache that only counts positions, for a model that keeps its KV
    /// state itself and decodes one sequence at a time (Gemma 3).
    pub(crate) fn positions_only(len: usize) -> Self {
        Self {
            layers: Vec::new(),
            len,
            slot: None,
        }
    }

    /// Counts `n` more positions (see [`Self::positions_only`]).
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Keeps the first `n` positions (a device sequence's slot keeps its
    /// values: attention masks what lies past the length).
    pub(crate) fn truncate(&mut self, n: usize) {
        let n = n.min(self.len);
        for l in &mut self.layers {
            l.truncate(n);
        }
        self.len = n;
    }

    /// The layer caches, created on first use.
    fn layers_mut(&mut self, n_layer: usize, stride: usize) -> &mut [LayerKv] {
        if self.layers.len() != n_layer {
            self.layers = (0..n_layer)
                .map(|_| LayerKv {
                    stride,
                    ..LayerKv::default()
                })
                .collect();
        }
        &mut self.layers
    }
}

/// KV state of the first `len` positions of a sequence, every layer: rows
/// in memory (the CPU engine) or tensors on the model's device.
pub struct KvSnapshot {
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    /// A device model's: (1, kv heads, len, head dim) keys and values.
    tensors: Vec<(Tensor, Tensor)>,
    stride: usize,
    len: usize,
}

impl KvSnapshot {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A snapshot of zeros, 32 bytes per position (prefix-cache tests).
    #[cfg(test)]
    pub(crate) fn zeros(len: usize) -> Self {
        let t = vec![0f32; len * 4];
        Self {
            layers: vec![(t.clone(), t)],
            tensors: Vec::new(),
            stride: 4,
            len,
        }
    }

    /// A device model's snapshot (see [`super::device_llama`]).
    pub(crate) fn of_tensors(tensors: Vec<(Tensor, Tensor)>, len: usize) -> Self {
        Self {
            layers: Vec::new(),
            tensors,
            stride: 0,
            len,
        }
    }

    pub(crate) fn tensors(&self) -> &[(Tensor, Tensor)] {
        &self.tensors
    }

    /// Memory held, for the prefix cache's byte budget (on the model's
    /// device: a GPU model's snapshots spend GPU memory).
    pub fn bytes(&self) -> usize {
        let rows: usize = self
            .layers
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * std::mem::size_of::<f32>())
            .sum();
        let tensors: usize = self
            .tensors
            .iter()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum();
        rows + tensors
    }
}

/// The model and the KV cache of its current sequence. Not `Sync`: driven
/// from one thread; several sequences decode together through
/// [`Self::forward_batch`], each with its own [`SequenceKv`].
pub struct LlamaModel {
    hp: Hparams,
    tok_embd: Linear,
    blocks: Vec<Block>,
    out_norm: Vec<f32>,
    output: Linear,
    /// The matmuls' threads, also used to split attention.
    pool: Arc<Pool>,
    device: Device,
    /// The single-sequence API's cache.
    kv: SequenceKv,
    weights: String,
    /// `weights = "f32"`: K/V cache and attention in f32 too.
    f32_attention: bool,
}

impl LlamaModel {
    /// `threads`: how many threads each matmul is split over; `adapter`:
    /// LoRA updates merged into the matrices they change (held in f32).
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
        format: WeightFormat,
        threads: usize,
        adapter: Option<&LoraDeltas>,
    ) -> Result<Self, EngineError> {
        let hp = Hparams::from_gguf(content)?;
        let mut loader = Loader {
            content,
            reader,
            device,
            format,
            log: WeightLog::default(),
            adapter,
            pool: Arc::new(Pool::new(if threads > 0 {
                threads
            } else {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            })),
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
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let weights = loader.describe();
        let pool = loader.pool.clone();
        Ok(Self {
            hp,
            tok_embd,
            blocks,
            out_norm,
            output,
            pool,
            device: device.clone(),
            kv: SequenceKv::default(),
            weights,
            f32_attention: format == WeightFormat::F32,
        })
    }

    /// Runs `tokens`, which sit at positions `pos..pos + tokens.len()`, through
    /// the model; `pos` must equal the number of tokens already cached.
    /// Returns the logits (f32, vocabulary-sized) of the last position.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        self.forward_positions(tokens, pos, false)
    }

    /// As [`Self::forward`], but returns the logits of every position,
    /// (tokens.len(), vocabulary): what scoring a continuation needs.
    pub fn forward_all(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        self.forward_positions(tokens, pos, true)
    }

    fn forward_positions(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
    ) -> Result<Tensor, EngineError> {
        super::check_forward(tokens.len(), pos, self.kv.len, self.hp.context_length)?;
        let mut kv = std::mem::take(&mut self.kv);
        let out = self.forward_sequence(tokens, pos, all, &mut kv);
        if out.is_err() {
            // Some layers may have appended: the cache is no longer coherent.
            kv.truncate(0);
        } else {
            kv.len += tokens.len();
        }
        self.kv = kv;
        out.map_err(backend_err)
    }

    fn forward_sequence(
        &self,
        tokens: &[u32],
        pos: usize,
        all: bool,
        kv: &mut SequenceKv,
    ) -> candle_core::Result<Tensor> {
        let t = tokens.len();
        let d = self.hp.n_embd;
        let x = self.run_rows(tokens, &[(pos, t)], &mut [kv])?;
        if all {
            return self.logits(&x);
        }
        self.logits(&x[(t - 1) * d..])?.flatten_all()
    }

    /// One decode step of several sequences in one forward pass: row `i`
    /// runs `tokens[i]` at position `seqs[i].len()` against `seqs[i]`'s
    /// cache and gets back that row's logits, (B, vocabulary).
    ///
    /// Every row is computed exactly as a one-token [`Self::forward`] of
    /// that sequence alone would: the quantized matmul quantizes each input
    /// row on its own and computes each output from one row (a row tile
    /// only decides which weights stay in cache), RMSNorm, RoPE and the
    /// element-wise ops work per row, and attention runs per sequence and
    /// head. So greedy and seeded outputs do not depend on the batch.
    pub fn forward_batch(
        &self,
        seqs: &mut [&mut SequenceKv],
        tokens: &[u32],
    ) -> Result<Tensor, EngineError> {
        let positions: Vec<u32> = seqs.iter().map(|s| s.len as u32).collect();
        let longest = positions.iter().max().map_or(0, |&p| p as usize);
        super::check_batch(tokens.len(), seqs.len(), longest, self.hp.context_length)?;
        let out = self.forward_rows(seqs, tokens, &positions);
        for (s, &p) in seqs.iter_mut().zip(&positions) {
            match out {
                Ok(_) => s.len = p as usize + 1,
                // Layers before the failure appended: drop their rows.
                Err(_) => s.truncate(p as usize),
            }
        }
        out.map_err(backend_err)
    }

    fn forward_rows(
        &self,
        seqs: &mut [&mut SequenceKv],
        tokens: &[u32],
        positions: &[u32],
    ) -> candle_core::Result<Tensor> {
        let spans: Vec<(usize, usize)> = positions.iter().map(|&p| (p as usize, 1)).collect();
        let x = self.run_rows(tokens, &spans, seqs)?;
        self.logits(&x)
    }

    /// Final norm and output head of hidden rows: (rows, vocabulary).
    fn logits(&self, x: &[f32]) -> candle_core::Result<Tensor> {
        let d = self.hp.n_embd;
        let n = x.len() / d;
        let mut h = vec![0f32; x.len()];
        for (row, out) in x.chunks_exact(d).zip(h.chunks_exact_mut(d)) {
            ops::rms_norm(row, &self.out_norm, self.hp.rms_eps, out);
        }
        let vocab = self.output.rows();
        let mut logits = vec![0f32; n * vocab];
        self.output.forward_rows(&h, n, &mut logits, &self.device)?;
        Tensor::from_vec(logits, (n, vocab), &self.device)
    }

    /// The transformer blocks over `tokens`: span `i` = (first position,
    /// count) is `count` consecutive tokens of sequence `i`, appended to
    /// `caches[i]`. Returns the final hidden rows, (tokens, hidden).
    fn run_rows(
        &self,
        tokens: &[u32],
        spans: &[(usize, usize)],
        caches: &mut [&mut SequenceKv],
    ) -> candle_core::Result<Vec<f32>> {
        let hp = &self.hp;
        let (d, hd, nh, nkv) = (hp.n_embd, hp.head_dim, hp.n_head, hp.n_head_kv);
        let stride = nkv * hd;
        let n = tokens.len();
        let ff = self.blocks.first().map_or(0, |b| b.w_gate.rows());
        // RoPE cos/sin of each row's position, once for every layer.
        let mut rope = vec![0f32; n * hd];
        let positions = spans.iter().flat_map(|&(p, c)| p..p + c);
        for (p, cs) in positions.zip(rope.chunks_exact_mut(hd)) {
            ops::rope_row(p, hp.rope_base, cs);
        }
        let mut x = vec![0f32; n * d];
        self.tok_embd.embed(tokens, &mut x, &self.device)?;
        let mut h = vec![0f32; n * d];
        let (mut q, mut att) = (vec![0f32; n * nh * hd], vec![0f32; n * nh * hd]);
        let (mut k, mut v) = (vec![0f32; n * stride], vec![0f32; n * stride]);
        let mut o = vec![0f32; n * d];
        let (mut gate, mut up) = (vec![0f32; n * ff], vec![0f32; n * ff]);
        let mut act = vec![0f32; n * ff];
        let norm = |x: &[f32], w: &[f32], h: &mut [f32]| {
            for (row, out) in x.chunks_exact(d).zip(h.chunks_exact_mut(d)) {
                ops::rms_norm(row, w, hp.rms_eps, out);
            }
        };
        for (l, block) in self.blocks.iter().enumerate() {
            norm(&x, &block.attn_norm, &mut h);
            block.wq.forward_rows(&h, n, &mut q, &self.device)?;
            block.wk.forward_rows(&h, n, &mut k, &self.device)?;
            block.wv.forward_rows(&h, n, &mut v, &self.device)?;
            for (r, cs) in rope.chunks_exact(hd).enumerate() {
                for head in q[r * nh * hd..][..nh * hd].chunks_exact_mut(hd) {
                    ops::rope_pairs(head, cs);
                }
                for head in k[r * stride..][..stride].chunks_exact_mut(hd) {
                    ops::rope_pairs(head, cs);
                }
            }
            // llama.cpp keeps K and V in f16 (`weights = "f32"`: f32).
            if !self.f32_attention {
                forge_kernels::attention::round_to_f16(&mut k);
                forge_kernels::attention::round_to_f16(&mut v);
            }
            let mut row = 0;
            for (cache, &(_, count)) in caches.iter_mut().zip(spans) {
                let layer = &mut cache.layers_mut(hp.n_layer, stride)[l];
                layer.stride = stride;
                layer
                    .k
                    .extend_from_slice(&k[row * stride..(row + count) * stride]);
                layer
                    .v
                    .extend_from_slice(&v[row * stride..(row + count) * stride]);
                row += count;
            }
            let layers: Vec<&LayerKv> = caches.iter().map(|c| &c.layers[l]).collect();
            let precision = if self.f32_attention {
                AttendIn::F32
            } else {
                AttendIn::LlamaCppF16
            };
            attend(
                &q,
                &layers,
                spans,
                hp,
                precision,
                self.pool.as_ref(),
                &mut att,
            );
            block.wo.forward_rows(&att, n, &mut o, &self.device)?;
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            norm(&x, &block.ffn_norm, &mut h);
            block.w_gate.forward_rows(&h, n, &mut gate, &self.device)?;
            block.w_up.forward_rows(&h, n, &mut up, &self.device)?;
            ops::swiglu(&gate, &up, &mut act);
            block.w_down.forward_rows(&act, n, &mut o, &self.device)?;
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
        }
        Ok(x)
    }

    /// Keeps the first `n` cached positions and forgets the rest (the next
    /// forward starts at `n`).
    pub fn truncate_cache(&mut self, n: usize) {
        self.kv.truncate(n);
    }

    /// A copy of the KV state of the first `n` cached positions.
    pub fn snapshot(&self, n: usize) -> Result<KvSnapshot, EngineError> {
        let n = n.min(self.kv.len);
        let stride = self.hp.n_head_kv * self.hp.head_dim;
        let layers = self
            .kv
            .layers
            .iter()
            .map(|c| (c.k[..n * stride].to_vec(), c.v[..n * stride].to_vec()))
            .collect();
        Ok(KvSnapshot {
            layers,
            tensors: Vec::new(),
            stride,
            len: n,
        })
    }

    /// Replaces the cache with the first `n` positions of `snap`.
    pub fn restore(&mut self, snap: &KvSnapshot, n: usize) -> Result<(), EngineError> {
        let n = n.min(snap.len);
        let stride = self.hp.n_head_kv * self.hp.head_dim;
        if snap.stride != stride || snap.layers.len() != self.blocks.len() {
            return Err(EngineError::Backend(
                "KV snapshot of another model shape".into(),
            ));
        }
        let layers = self.kv.layers_mut(self.hp.n_layer, stride);
        for (c, (k, v)) in layers.iter_mut().zip(&snap.layers) {
            c.k.clear();
            c.v.clear();
            c.k.extend_from_slice(&k[..n * stride]);
            c.v.extend_from_slice(&v[..n * stride]);
        }
        self.kv.len = n;
        Ok(())
    }

    /// Forgets every cached position (next forward starts at 0).
    pub fn clear_cache(&mut self) {
        self.kv.truncate(0);
    }

    /// Moves the single-sequence cache out (to decode it in a batch with
    /// [`Self::forward_batch`]), leaving the model's cache empty.
    pub fn take_cache(&mut self) -> SequenceKv {
        std::mem::take(&mut self.kv)
    }

    /// Makes `kv` the single-sequence cache again (what a finished batched
    /// sequence hands back, so the next prompt can reuse its prefix).
    pub fn put_cache(&mut self, kv: SequenceKv) {
        self.kv = kv;
    }

    pub fn context_length(&self) -> usize {
        self.hp.context_length
    }

    /// Number of positions held in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.kv.len
    }

    /// What was done to the file's weights at load, e.g.
    /// "q8_0 requantised from q4_1; kept q8_0".
    pub fn weights(&self) -> &str {
        &self.weights
    }
}

/// Query rows per unit of attention work handed to a thread.
const ATTEND_ROWS: usize = 16;

/// Below this many (row, cached position, head) scores, attention runs on
/// the calling thread: waking the pool costs more than it saves.
const ATTEND_PARALLEL_MIN: usize = 256;

/// Output pointer shared by attention units, which write disjoint rows.
struct Out(*mut f32);
// SAFETY: each (row, head) slice is written by exactly one unit.
unsafe impl Sync for Out {}

/// Causal grouped-query attention: span `i` = (first position, count) of
/// `q`'s rows attends over `layers[i]`, which already holds its new keys
/// and values. Each (row, head) is one
/// [`forge_kernels::attention::attend_row`], llama.cpp's flash-attention
/// row (f16 query and value accumulator), with a fixed summation order:
/// its value is the same bits computed alone (decode), in a prefill, after
/// a prefix-cache hit, in a batch, or on either thread. Units of up to
/// [`ATTEND_ROWS`] rows of one head are dealt round-robin to the pool's
/// threads, which balances the causal triangle.
/// The arithmetic of one attention row.
#[derive(Clone, Copy)]
enum AttendIn {
    /// llama.cpp's: f16 query, keys, values and accumulator.
    LlamaCppF16,
    /// f32 throughout (`weights = "f32"`).
    F32,
}

fn attend(
    q: &[f32],
    layers: &[&LayerKv],
    spans: &[(usize, usize)],
    hp: &Hparams,
    precision: AttendIn,
    pool: &dyn Parallel,
    out: &mut [f32],
) {
    let (nh, nkv, hd) = (hp.n_head, hp.n_head_kv, hp.head_dim);
    let rep = nh / nkv;
    let scale = 1.0 / (hd as f32).sqrt();
    // (sequence, head, first row, rows, position of the first row)
    let mut units = Vec::new();
    let mut row = 0;
    for (s, &(pos, count)) in spans.iter().enumerate() {
        for h in 0..nh {
            for c in (0..count).step_by(ATTEND_ROWS) {
                units.push((s, h, row + c, ATTEND_ROWS.min(count - c), pos + c));
            }
        }
        row += count;
    }
    let work: usize = spans.iter().map(|&(p, c)| c * (p + c)).sum::<usize>() * nh;
    let ptr = Out(out.as_mut_ptr());
    let job = |share: usize, shares: usize| {
        let ptr = &ptr;
        let (mut q16, mut acc) = (vec![0f32; hd], vec![0f32; hd]);
        let mut scores = Vec::new();
        for &(s, h, r0, rows, p0) in units.iter().skip(share).step_by(shares) {
            let (layer, g) = (layers[s], h / rep);
            for j in 0..rows {
                let at = ((r0 + j) * nh + h) * hd;
                // SAFETY: (row, head) slices are disjoint and in bounds.
                let o = unsafe { std::slice::from_raw_parts_mut(ptr.0.add(at), hd) };
                let (q, k, v) = (&q[at..][..hd], &layer.k[g * hd..], &layer.v[g * hd..]);
                let n = p0 + j + 1;
                match precision {
                    AttendIn::LlamaCppF16 => forge_kernels::attention::attend_row(
                        q,
                        k,
                        v,
                        nkv * hd,
                        n,
                        scale,
                        &mut q16,
                        &mut acc,
                        o,
                    ),
                    AttendIn::F32 => forge_kernels::attention::attend_row_f32(
                        q,
                        k,
                        v,
                        nkv * hd,
                        n,
                        scale,
                        &mut scores,
                        o,
                    ),
                }
            }
        }
    };
    let shares = pool.threads();
    if shares < 2 || work < ATTEND_PARALLEL_MIN || units.len() < 2 {
        job(0, 1);
    } else {
        pool.run(&|share| job(share, shares));
    }
}

impl Hparams {
    pub(crate) fn from_gguf(content: &Content) -> Result<Self, EngineError> {
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
        // What this decoder does not compute is refused, not ignored: a
        // Llama 3.1+ file's rope frequency factors or scaling, or biases,
        // would otherwise give fluent-looking garbage.
        if let Some(kind) = md
            .get("llama.rope.scaling.type")
            .and_then(|v| v.to_string().ok())
            .filter(|k| k.as_str() != "none")
        {
            return Err(EngineError::Load(format!(
                "llama.rope.scaling.type = {kind:?}: rope scaling is not supported yet \
                 (supported: plain rope with llama.rope.freq_base)"
            )));
        }
        let n_layer = usize_of("block_count")?;
        let unknown = unknown_tensors(content, n_layer);
        if !unknown.is_empty() {
            let more = if unknown.len() > 3 {
                format!(" and {} more", unknown.len() - 3)
            } else {
                String::new()
            };
            return Err(EngineError::Load(format!(
                "tensor {}{more}: not part of the llama decoder forge runs, so it would be \
                 ignored and the outputs wrong (rope_freqs: Llama 3.1+ rope factors; *.bias: \
                 attention biases, as Qwen2 has); supported: token_embd, output_norm, output, \
                 blk.N.{{{}}}.weight",
                unknown[..unknown.len().min(3)].join(", "),
                LLAMA_BLOCK_TENSORS.join(",")
            )));
        }
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
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps: f32_of("attention.layer_norm_rms_epsilon", 1e-5)?,
            rope_base: f32_of("rope.freq_base", 10_000.0)?,
            context_length: usize_of("context_length")?,
        })
    }
}

/// The tensors of one llama block (`blk.N.<name>.weight`).
const LLAMA_BLOCK_TENSORS: [&str; 9] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// The file's tensors the llama decoder would not read, sorted.
fn unknown_tensors(content: &Content, n_layer: usize) -> Vec<String> {
    let known = |name: &str| -> bool {
        if matches!(
            name,
            "token_embd.weight" | "output_norm.weight" | "output.weight"
        ) {
            return true;
        }
        let Some(rest) = name.strip_prefix("blk.") else {
            return false;
        };
        let Some((layer, tensor)) = rest.split_once('.') else {
            return false;
        };
        layer.parse::<usize>().is_ok_and(|l| l < n_layer)
            && tensor
                .strip_suffix(".weight")
                .is_some_and(|t| LLAMA_BLOCK_TENSORS.contains(&t))
    };
    let mut unknown: Vec<String> = content
        .tensor_infos
        .keys()
        .filter(|n| !known(n))
        .cloned()
        .collect();
    unknown.sort();
    unknown
}

/// Reads tensors, requantising as `format` asks and remembering what it did.
struct Loader<'a, R> {
    content: &'a Content,
    reader: &'a mut R,
    device: &'a Device,
    format: WeightFormat,
    /// Shared by every kernel matrix.
    pool: Arc<Pool>,
    log: WeightLog,
    adapter: Option<&'a LoraDeltas>,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn qtensor(&mut self, name: &str) -> Result<QTensor, EngineError> {
        self.content
            .tensor(self.reader, name, self.device)
            .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))
    }

    fn matmul(&mut self, name: &str) -> Result<Linear, EngineError> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::Load(format!("tensor {name}: missing")))?;
        let dtype = info.ggml_dtype;
        let (rows, cols) = info
            .shape
            .dims2()
            .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))?;
        let slow = matches!(
            dtype,
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
        );
        let pool = self.pool.clone();
        let kernel = |w: QLinear| Linear::Kernel { w, pool };
        let bad = |e: forge_kernels::LinearError| EngineError::Load(format!("tensor {name}: {e}"));
        let delta = self.adapter.and_then(|a| a.delta(name));
        if delta.is_some() || self.format == WeightFormat::F32 {
            // f32 rows: what the file holds plus the adapter's update.
            self.log.dequantised(dtype);
            let mut w = self
                .qtensor(name)?
                .dequantize(self.device)
                .map_err(load_err)?;
            if let Some(d) = delta {
                w = (w + d).map_err(|e| EngineError::Load(format!("merging into {name}: {e}")))?;
            }
            return Ok(Linear::Candle(QMatMul::Tensor(w)));
        }
        let linear = match (self.format, dtype) {
            (WeightFormat::Q8_0, d) if slow => {
                self.log.requantised(d);
                let values = self
                    .qtensor(name)?
                    .dequantize(self.device)
                    .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
                    .map_err(load_err)?;
                kernel(QLinear::quantize_q8_0(rows, cols, &values).map_err(bad)?)
            }
            (_, GgmlDType::Q4_1) => {
                self.log.kept(dtype);
                let blocks = BlockQ4_1::parse(&self.raw(name)?)
                    .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))?;
                kernel(QLinear::q4_1(rows, cols, blocks).map_err(bad)?)
            }
            (_, GgmlDType::Q8_0) => {
                self.log.kept(dtype);
                let blocks = BlockQ8_0::parse(&self.raw(name)?)
                    .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))?;
                kernel(QLinear::q8_0(rows, cols, blocks).map_err(bad)?)
            }
            _ => {
                self.log.kept(dtype);
                Linear::Candle(QMatMul::from_qtensor(self.qtensor(name)?).map_err(load_err)?)
            }
        };
        Ok(linear)
    }

    /// The tensor's bytes as stored in the file (GGML blocks).
    fn raw(&mut self, name: &str) -> Result<Vec<u8>, EngineError> {
        let info = &self.content.tensor_infos[name];
        let dtype = info.ggml_dtype;
        let bytes = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
        let start = self.content.tensor_data_offset + info.offset;
        let mut buf = vec![0u8; bytes];
        self.reader
            .seek(std::io::SeekFrom::Start(start))
            .and_then(|_| self.reader.read_exact(&mut buf))
            .map_err(|e| {
                EngineError::Load(format!(
                    "tensor {name}: {bytes} bytes at offset {start}: {e}"
                ))
            })?;
        Ok(buf)
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.qtensor(name)?
            .dequantize(self.device)
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(load_err)
    }

    fn describe(&self) -> String {
        let held = self.log.describe();
        match self.adapter {
            Some(a) => format!("{held}; {}", a.info.describe()),
            None => held,
        }
    }
}

fn load_err(e: candle_core::Error) -> EngineError {
    EngineError::Load(e.to_string())
}

fn backend_err(e: candle_core::Error) -> EngineError {
    EngineError::Backend(e.to_string())
}
