//! The llama forward pass as candle tensor ops on a candle `Device`: how a
//! model runs on a GPU (`[model] device = "cuda"`).
//!
//! The CPU engine ([`super::llama`]) works on plain rows because candle's
//! per-op cost dominates a few hundred floats per token on a CPU. On a GPU
//! the opposite holds: every op is a kernel launch, so the pass is written
//! to launch few, whatever the batch. Weights stay in the file's quantized
//! types (candle's CUDA `QMatMul`: llama.cpp's MMVQ/MMQ kernels); keys and
//! values of every sequence live in one pool of slots on the device, so a
//! decode step of B sequences is one launch per op, not B.
//!
//! The same code runs on `Device::Cpu`: that is how the suite checks it
//! (against the CPU engine) on machines without a GPU.

use std::io::{Read, Seek};
use std::time::Instant;

use candle_core::quantized::QMatMul;
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Module, Tensor};

use super::EngineError;
use super::adapter::LoraDeltas;
use super::kv_slots::{SlotLease, SlotTable};
use super::llama::{Hparams, KvSnapshot, SequenceKv, WeightFormat};

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
}

/// Keys and values of every slot, one pair of tensors per layer, shaped
/// (slots, kv heads, capacity, head dim). Both dimensions grow by
/// doubling; attention reads a slot's whole capacity and masks what its
/// sequence has not written.
struct KvPool {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    slots: usize,
    capacity: usize,
    table: SlotTable,
}

/// Positions a new pool holds per slot before it grows.
const INITIAL_CAPACITY: usize = 256;
/// Slots a new pool holds before it grows.
const INITIAL_SLOTS: usize = 4;

/// The model, its KV pool and the single-sequence API's cache (whose slot
/// moves to a decoding sequence with [`DeviceLlama::take_cache`]).
pub struct DeviceLlama {
    hp: Hparams,
    tok_embd: QMatMul,
    blocks: Vec<Block>,
    out_norm: Tensor,
    output: QMatMul,
    device: Device,
    pool: KvPool,
    kv: SequenceKv,
    weights: String,
}

/// One forward's rows: `groups` sequences of `per_group` consecutive
/// tokens each (a prefill is one group of T, a decode step B groups of 1).
struct Rows<'a> {
    tokens: &'a [u32],
    /// (slot, position of the group's first token), one per group.
    groups: &'a [(usize, usize)],
    per_group: usize,
}

impl DeviceLlama {
    /// Loads a llama GGUF onto `device`; `adapter`: LoRA updates merged
    /// into the matrices they change (held in f32 there).
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
        format: WeightFormat,
        adapter: Option<&LoraDeltas>,
    ) -> Result<Self, EngineError> {
        let hp = Hparams::from_gguf(content)?;
        if format == WeightFormat::Q8_0 {
            return Err(EngineError::Load(format!(
                "weights {}",
                super::device::Q8_0_IS_CPU_ONLY
            )));
        }
        let mut merged = 0;
        let mut matmul = |name: &str| -> Result<QMatMul, EngineError> {
            let q = content
                .tensor(reader, name, device)
                .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))?;
            let delta = adapter.and_then(|a| a.delta(name));
            if delta.is_none() && format == WeightFormat::AsFile {
                return QMatMul::from_qtensor(q)
                    .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")));
            }
            let mut w = q.dequantize(device).map_err(load_err)?;
            if let Some(d) = delta {
                merged += 1;
                w = d
                    .to_device(device)
                    .and_then(|d| w + d)
                    .map_err(|e| EngineError::Load(format!("merging into {name}: {e}")))?;
            }
            Ok(QMatMul::Tensor(w))
        };
        let tok_embd = matmul("token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            matmul("output.weight")?
        } else {
            tok_embd.clone()
        };
        let mut blocks = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let p = format!("blk.{i}");
            blocks.push(Block {
                attn_norm: Tensor::new(0f32, device).map_err(load_err)?,
                wq: matmul(&format!("{p}.attn_q.weight"))?,
                wk: matmul(&format!("{p}.attn_k.weight"))?,
                wv: matmul(&format!("{p}.attn_v.weight"))?,
                wo: matmul(&format!("{p}.attn_output.weight"))?,
                ffn_norm: Tensor::new(0f32, device).map_err(load_err)?,
                w_gate: matmul(&format!("{p}.ffn_gate.weight"))?,
                w_up: matmul(&format!("{p}.ffn_up.weight"))?,
                w_down: matmul(&format!("{p}.ffn_down.weight"))?,
            });
        }
        let mut vector = |name: &str| -> Result<Tensor, EngineError> {
            content
                .tensor(reader, name, device)
                .and_then(|t| t.dequantize(device))
                .map_err(|e| EngineError::Load(format!("tensor {name}: {e}")))
        };
        for (i, b) in blocks.iter_mut().enumerate() {
            b.attn_norm = vector(&format!("blk.{i}.attn_norm.weight"))?;
            b.ffn_norm = vector(&format!("blk.{i}.ffn_norm.weight"))?;
        }
        let out_norm = vector("output_norm.weight")?;
        let kind = match (format, merged) {
            (WeightFormat::F32, _) => "every matrix dequantised to f32".to_string(),
            (_, 0) => "kept the file's types".to_string(),
            (_, n) => format!("kept the file's types; {n} matrices f32 (adapter merged)"),
        };
        let weights = format!("{kind}, on {}", describe_device(device));
        let pool = KvPool::new(&hp, device).map_err(backend_err)?;
        Ok(Self {
            hp,
            tok_embd,
            blocks,
            out_norm,
            output,
            device: device.clone(),
            pool,
            kv: SequenceKv::default(),
            weights,
        })
    }

    /// Logits of the last of `tokens`, which sit at `pos..`; `pos` must be
    /// the number of positions the single-sequence cache holds.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        self.forward_positions(tokens, pos, false)
    }

    /// As [`Self::forward`], the logits of every position.
    pub fn forward_all(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor, EngineError> {
        self.forward_positions(tokens, pos, true)
    }

    fn forward_positions(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
    ) -> Result<Tensor, EngineError> {
        super::check_forward(tokens.len(), pos, self.kv.len(), self.hp.context_length)?;
        let slot = self.slot_of_live().map_err(backend_err)?;
        let started = Instant::now();
        let rows = Rows {
            tokens,
            groups: &[(slot, pos)],
            per_group: tokens.len(),
        };
        let out = self.run(&rows).and_then(|x| {
            let x = if all {
                x
            } else {
                x.narrow(0, tokens.len() - 1, 1)?
            };
            let logits = self.logits(&x)?;
            if all {
                Ok(logits)
            } else {
                logits.flatten_all()
            }
        });
        super::gpu_usage::record(&self.device, started.elapsed());
        match &out {
            Ok(_) => self.kv.advance(tokens.len()),
            // Positions past `pos` may hold this pass's keys: masked out
            // until overwritten, as the cache's length says.
            Err(_) => self.kv.truncate(pos),
        }
        out.map_err(backend_err)
    }

    /// One new token per sequence: row `i` runs `tokens[i]` at position
    /// `seqs[i].len()` in that sequence's slot; logits (B, vocabulary).
    pub fn forward_batch(
        &mut self,
        seqs: &mut [&mut SequenceKv],
        tokens: &[u32],
    ) -> Result<Tensor, EngineError> {
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        super::check_batch(tokens.len(), seqs.len(), longest, self.hp.context_length)?;
        let mut groups = Vec::with_capacity(seqs.len());
        for s in seqs.iter_mut() {
            if s.slot.is_none() {
                s.slot = Some(self.pool.lease().map_err(backend_err)?);
            }
            let slot = s.slot.as_ref().map_or(0, SlotLease::slot);
            groups.push((slot, s.len()));
        }
        let started = Instant::now();
        let rows = Rows {
            tokens,
            groups: &groups,
            per_group: 1,
        };
        let out = self.run(&rows).and_then(|x| self.logits(&x));
        super::gpu_usage::record(&self.device, started.elapsed());
        if out.is_ok() {
            for s in seqs.iter_mut() {
                s.advance(1);
            }
        }
        out.map_err(backend_err)
    }

    /// The live cache's slot, leased on first use.
    fn slot_of_live(&mut self) -> candle_core::Result<usize> {
        if self.kv.slot.is_none() {
            self.kv.slot = Some(self.pool.lease()?);
        }
        Ok(self.kv.slot.as_ref().map_or(0, SlotLease::slot))
    }

    /// Final norm and output head: (rows, vocabulary).
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.out_norm, self.hp.rms_eps)?;
        self.output.forward(&h)
    }

    /// The transformer blocks over `rows`, writing their keys and values
    /// into the pool; the final hidden rows, (tokens, hidden).
    fn run(&mut self, rows: &Rows) -> candle_core::Result<Tensor> {
        let hp = &self.hp;
        let (hd, nh, nkv) = (hp.head_dim, hp.n_head, hp.n_head_kv);
        let n = rows.tokens.len();
        let (g_count, t) = (rows.groups.len(), rows.per_group);
        let needed = rows.groups.iter().map(|&(_, p)| p + t).max().unwrap_or(0);
        self.pool.reserve(needed)?;
        let cap = self.pool.capacity;
        let dev = &self.device;

        // Per-forward inputs, uploaded once and shared by every layer:
        // RoPE cos/sin of each row's position (llama.cpp's values, as the
        // CPU engine computes them), where each row's keys go in the pool,
        // and which pool positions each row may attend to.
        let mut cos: Vec<f32> = Vec::with_capacity(n * hd / 2);
        let mut sin: Vec<f32> = Vec::with_capacity(n * hd / 2);
        let mut cs = vec![0f32; hd];
        let mut dest = Vec::with_capacity(n * nkv * hd);
        let mut mask = Vec::with_capacity(g_count * t * cap);
        for &(slot, start) in rows.groups {
            for i in 0..t {
                let pos = start + i;
                forge_kernels::ops::rope_row(pos, hp.rope_base, &mut cs);
                cos.extend(cs.iter().step_by(2));
                sin.extend(cs.iter().skip(1).step_by(2));
                for h in 0..nkv {
                    dest.extend(std::iter::repeat_n(self.pool.row(slot, h, pos), hd));
                }
                mask.extend((0..cap).map(|j| if j <= pos { 0f32 } else { f32::NEG_INFINITY }));
            }
        }
        let cos = Tensor::from_vec(cos, (n, 1, hd / 2), dev)?;
        let sin = Tensor::from_vec(sin, (n, 1, hd / 2), dev)?;
        let dest = Tensor::from_vec(dest, (n * nkv, hd), dev)?;
        let mask = Tensor::from_vec(mask, (g_count, 1, t, 1, cap), dev)?;
        // A batch whose slots are consecutive reads them in place; others
        // gather theirs (only then are the slot ids uploaded).
        let slots: Vec<u32> = rows.groups.iter().map(|&(s, _)| s as u32).collect();
        let first = slots[0] as usize;
        let slot_ids = if slots.windows(2).all(|w| w[1] == w[0] + 1) {
            None
        } else {
            Some(Tensor::from_vec(slots, g_count, dev)?)
        };
        let gather = |pool: &Tensor| -> candle_core::Result<Tensor> {
            match &slot_ids {
                None => pool.narrow(0, first, g_count),
                Some(ids) => pool.index_select(ids, 0),
            }
        };
        let group = nh / nkv;
        let scale = 1.0 / (hd as f64).sqrt();

        let ids = Tensor::new(rows.tokens, dev)?;
        let mut x = self.tok_embd.embedding(&ids)?;
        for (l, b) in self.blocks.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &b.attn_norm, hp.rms_eps)?;
            let q = b.wq.forward(&h)?.reshape((n, nh, 1, hd))?;
            let q = (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)? * scale)?;
            let k = b.wk.forward(&h)?.reshape((n, nkv, 1, hd))?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let v = b.wv.forward(&h)?;
            let flat = |p: &Tensor| p.reshape(((), hd));
            flat(&self.pool.k[l])?.scatter_set(&dest, &k.reshape((n * nkv, hd))?, 0)?;
            flat(&self.pool.v[l])?.scatter_set(&dest, &v.reshape((n * nkv, hd))?, 0)?;

            // (groups, kv heads, t * group, head dim): the query heads that
            // share a kv head, of every row of a sequence, side by side.
            let q = q
                .reshape((g_count, t, nkv, group, hd))?
                .permute((0, 2, 1, 3, 4))?
                .contiguous()?
                .reshape((g_count, nkv, t * group, hd))?;
            let (keys, values) = (gather(&self.pool.k[l])?, gather(&self.pool.v[l])?);
            let scores = q
                .matmul(&keys.t()?)?
                .reshape((g_count, nkv, t, group, cap))?
                .broadcast_add(&mask)?
                .reshape((g_count, nkv, t * group, cap))?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let att = probs
                .matmul(&values)?
                .reshape((g_count, nkv, t, group, hd))?
                .permute((0, 2, 1, 3, 4))?
                .contiguous()?
                .reshape((n, nh * hd))?;
            x = (x + b.wo.forward(&att)?)?;
            let h = candle_nn::ops::rms_norm(&x, &b.ffn_norm, hp.rms_eps)?;
            let act = (b.w_gate.forward(&h)?.silu()? * b.w_up.forward(&h)?)?;
            x = (x + b.w_down.forward(&act)?)?;
        }
        Ok(x)
    }

    /// Keeps the first `n` positions of the single-sequence cache.
    pub fn truncate_cache(&mut self, n: usize) {
        self.kv.truncate(n);
    }

    pub fn clear_cache(&mut self) {
        self.kv.truncate(0);
    }

    /// A copy (on the device) of the first `n` positions of the
    /// single-sequence cache.
    pub fn snapshot(&self, n: usize) -> Result<KvSnapshot, EngineError> {
        let n = n.min(self.kv.len());
        let Some(lease) = &self.kv.slot else {
            return Ok(KvSnapshot::of_tensors(Vec::new(), 0));
        };
        let copy = |pool: &Tensor| {
            pool.narrow(0, lease.slot(), 1)?
                .narrow(2, 0, n)?
                .contiguous()
        };
        let layers = self
            .pool
            .k
            .iter()
            .zip(&self.pool.v)
            .map(|(k, v)| Ok((copy(k)?, copy(v)?)))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(backend_err)?;
        Ok(KvSnapshot::of_tensors(layers, n))
    }

    /// Makes the single-sequence cache the first `n` positions of `snap`.
    pub fn restore(&mut self, snap: &KvSnapshot, n: usize) -> Result<(), EngineError> {
        let n = n.min(snap.len());
        let tensors = snap.tensors();
        if tensors.len() != self.blocks.len() {
            return Err(EngineError::Backend(
                "KV snapshot of another model or device".into(),
            ));
        }
        let slot = self.slot_of_live().map_err(backend_err)?;
        let mut write = || -> candle_core::Result<()> {
            self.pool.reserve(n)?;
            let (nkv, hd, pool) = (self.hp.n_head_kv, self.hp.head_dim, &self.pool);
            let dest: Vec<u32> = (0..nkv)
                .flat_map(|h| (0..n).map(move |p| pool.row(slot, h, p)))
                .flat_map(|row| std::iter::repeat_n(row, hd))
                .collect();
            let dest = Tensor::from_vec(dest, (nkv * n, hd), &self.device)?;
            for ((k, v), (pk, pv)) in tensors.iter().zip(self.pool.k.iter().zip(&self.pool.v)) {
                let rows = |t: &Tensor| t.narrow(2, 0, n)?.contiguous()?.reshape((nkv * n, hd));
                pk.reshape(((), hd))?.scatter_set(&dest, &rows(k)?, 0)?;
                pv.reshape(((), hd))?.scatter_set(&dest, &rows(v)?, 0)?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => {
                self.kv.truncate(0);
                self.kv.advance(n);
                Ok(())
            }
            Err(e) => {
                self.kv.truncate(0);
                Err(backend_err(e))
            }
        }
    }

    /// Moves the single-sequence cache (and its slot) out to a decoding
    /// sequence; the next forward leases a fresh slot.
    pub fn take_cache(&mut self) -> SequenceKv {
        std::mem::take(&mut self.kv)
    }

    /// Makes a finished sequence's cache the single-sequence one again;
    /// the old one's slot is freed.
    pub fn put_cache(&mut self, kv: SequenceKv) {
        self.kv = kv;
    }

    pub fn context_length(&self) -> usize {
        self.hp.context_length
    }

    pub fn weights(&self) -> &str {
        &self.weights
    }
}

impl KvPool {
    fn new(hp: &Hparams, device: &Device) -> candle_core::Result<Self> {
        let capacity = INITIAL_CAPACITY.min(hp.context_length.max(1));
        let zeros = || {
            Tensor::zeros(
                (INITIAL_SLOTS, hp.n_head_kv, capacity, hp.head_dim),
                DType::F32,
                device,
            )
        };
        Ok(Self {
            k: (0..hp.n_layer).map(|_| zeros()).collect::<Result<_, _>>()?,
            v: (0..hp.n_layer).map(|_| zeros()).collect::<Result<_, _>>()?,
            slots: INITIAL_SLOTS,
            capacity,
            table: SlotTable::default(),
        })
    }

    /// A free slot, growing the pool when every slot is taken.
    fn lease(&mut self) -> candle_core::Result<SlotLease> {
        let lease = self
            .table
            .lease()
            .ok_or_else(|| candle_core::Error::Msg("KV slot table poisoned".into()))?;
        if lease.slot() >= self.slots {
            self.grow(0, (self.slots * 2).max(lease.slot() + 1))?;
        }
        Ok(lease)
    }

    /// The row of `(slot, kv head, position)` in a layer's tensor viewed
    /// as (slots x kv heads x capacity, head dim): where keys are written.
    fn row(&self, slot: usize, head: usize, pos: usize) -> u32 {
        let heads = self.k.first().map_or(1, |t| t.dims()[1]);
        ((slot * heads + head) * self.capacity + pos) as u32
    }

    /// Makes every slot hold at least `positions`.
    fn reserve(&mut self, positions: usize) -> candle_core::Result<()> {
        if positions > self.capacity {
            self.grow(2, (self.capacity * 2).max(positions))?;
        }
        Ok(())
    }

    /// Copies every layer into tensors `size` long along `dim` (0: slots,
    /// 2: positions).
    fn grow(&mut self, dim: usize, size: usize) -> candle_core::Result<()> {
        let grow = |t: &Tensor| -> candle_core::Result<Tensor> {
            let mut dims = t.dims().to_vec();
            dims[dim] = size;
            let bigger = Tensor::zeros(dims, t.dtype(), t.device())?;
            bigger.slice_set(t, dim, 0)?;
            Ok(bigger)
        };
        self.k = self.k.iter().map(grow).collect::<Result<_, _>>()?;
        self.v = self.v.iter().map(grow).collect::<Result<_, _>>()?;
        match dim {
            0 => self.slots = size,
            _ => self.capacity = size,
        }
        Ok(())
    }
}

/// "CUDA GPU 0" or "CPU", for the weights line of a model's record.
fn describe_device(device: &Device) -> String {
    match device {
        Device::Cpu => "CPU (tensor path)".into(),
        Device::Cuda(_) => {
            let ordinal = match device.location() {
                candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
                _ => 0,
            };
            format!("CUDA GPU {ordinal}")
        }
        other => format!("{:?}", other.location()),
    }
}

fn load_err(e: candle_core::Error) -> EngineError {
    EngineError::Load(e.to_string())
}

fn backend_err(e: candle_core::Error) -> EngineError {
    EngineError::Backend(e.to_string())
}
