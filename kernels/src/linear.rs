//! A quantized weight matrix and its product with f32 activations.
//!
//! `y = x W^T` the way llama.cpp computes it on the CPU: activations are
//! quantized per 32-float block (Q8_1 for Q4_1 weights, Q8_0 for Q8_0
//! weights), every output is one [`crate::dot`] of a weight row with an
//! activation row. Output rows are split across the pool's threads in
//! contiguous ranges and activation rows are tiled by four, but neither
//! changes any output's arithmetic: the value for (token, row) is the same
//! bits whatever the batch size or thread count.

use std::sync::Arc;

use half::f16;

use crate::blocks::{BlockQ4_1, BlockQ8_0, BlockQ8_1, QK, quantize_row_q8_0, quantize_row_q8_1};
use crate::dot::{self, TILE};
use crate::pool::Parallel;

#[derive(Debug, thiserror::Error)]
pub enum LinearError {
    #[error("{rows}x{cols} matrix needs {want} blocks, got {got}")]
    Blocks {
        rows: usize,
        cols: usize,
        want: usize,
        got: usize,
    },
    #[error("row length {cols} is not a multiple of {QK}")]
    Cols { cols: usize },
}

#[derive(Clone)]
enum Weights {
    Q4_1(Arc<[BlockQ4_1]>),
    Q8_0(Arc<[BlockQ8_0]>),
}

/// `rows` x `cols` quantized matrix (row = one output feature). Cloning
/// shares the blocks (a tied output head and token embedding).
#[derive(Clone)]
pub struct QLinear {
    rows: usize,
    cols: usize,
    weights: Weights,
}

/// Quantized activations, kept between calls so a token allocates nothing.
#[derive(Default)]
pub struct Scratch {
    q8_0: Vec<BlockQ8_0>,
    q8_1: Vec<BlockQ8_1>,
}

/// Below this many block dots a call runs on the caller alone: waking the
/// other thread costs more than it saves.
const PARALLEL_MIN_BLOCKS: usize = 2048;

impl QLinear {
    pub fn q4_1(rows: usize, cols: usize, blocks: Vec<BlockQ4_1>) -> Result<Self, LinearError> {
        check(rows, cols, blocks.len())?;
        Ok(Self {
            rows,
            cols,
            weights: Weights::Q4_1(blocks.into()),
        })
    }

    pub fn q8_0(rows: usize, cols: usize, blocks: Vec<BlockQ8_0>) -> Result<Self, LinearError> {
        check(rows, cols, blocks.len())?;
        Ok(Self {
            rows,
            cols,
            weights: Weights::Q8_0(blocks.into()),
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// "q4_1" or "q8_0".
    pub fn dtype_name(&self) -> &'static str {
        match self.weights {
            Weights::Q4_1(_) => "q4_1",
            Weights::Q8_0(_) => "q8_0",
        }
    }

    /// Row `r` as floats (an embedding lookup: ggml's `get_rows`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let nb = self.cols / QK;
        match &self.weights {
            Weights::Q4_1(w) => {
                for (b, o) in w[r * nb..][..nb].iter().zip(out.chunks_exact_mut(QK)) {
                    b.dequantize(o)
                }
            }
            Weights::Q8_0(w) => {
                for (b, o) in w[r * nb..][..nb].iter().zip(out.chunks_exact_mut(QK)) {
                    b.dequantize(o)
                }
            }
        }
    }

    /// The same matrix in Q8_0 (see [`Self::quantize_q8_0`]).
    pub fn to_q8_0(&self) -> Self {
        if let Weights::Q8_0(_) = self.weights {
            return self.clone();
        }
        let mut values = vec![0f32; self.rows * self.cols];
        for (r, row) in values.chunks_exact_mut(self.cols).enumerate() {
            self.dequantize_row(r, row);
        }
        Self::quantize_q8_0(self.rows, self.cols, &values).expect("same shape")
    }

    /// A `rows` x `cols` float matrix in Q8_0, quantized the way
    /// llama.cpp's `quantize_row_q8_0_ref` (and llama-quantize) does:
    /// `d = amax / 127`, values times `1 / d`, rounded half away from zero.
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<Self, LinearError> {
        check(rows, cols, values.len() / QK)?;
        if values.len() != rows * cols {
            return Err(LinearError::Blocks {
                rows,
                cols,
                want: rows * cols / QK,
                got: values.len() / QK,
            });
        }
        let blocks = values
            .chunks_exact(QK)
            .map(|xs| {
                let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                BlockQ8_0 {
                    d: f16::from_f32(d),
                    qs: std::array::from_fn(|j| (xs[j] * id).round() as i8),
                }
            })
            .collect();
        Self::q8_0(rows, cols, blocks)
    }

    /// `out[t * rows + r] = dot(W[r], x[t])` for the `n` rows of `x`
    /// (`n * cols` floats); `out` holds `n * rows`.
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
        pool: &dyn Parallel,
    ) {
        assert_eq!(x.len(), n * self.cols, "activations of the wrong size");
        assert_eq!(out.len(), n * self.rows, "output of the wrong size");
        let nb = self.cols / QK;
        let parallel = self.rows * nb * n >= PARALLEL_MIN_BLOCKS;
        match &self.weights {
            Weights::Q4_1(w) => {
                scratch.q8_1.resize(n * nb, BlockQ8_1::default());
                for (row, q) in x
                    .chunks_exact(self.cols)
                    .zip(scratch.q8_1.chunks_exact_mut(nb))
                {
                    quantize_row_q8_1(row, q);
                }
                let xq = &scratch.q8_1[..n * nb];
                drive(pool, parallel, self.rows, n, out, |r, a, o: &mut [f32]| {
                    q4_1_tile(&w[r * nb..][..nb], xq, nb, a, o)
                });
            }
            Weights::Q8_0(w) => {
                scratch.q8_0.resize(n * nb, BlockQ8_0::default());
                for (row, q) in x
                    .chunks_exact(self.cols)
                    .zip(scratch.q8_0.chunks_exact_mut(nb))
                {
                    quantize_row_q8_0(row, q);
                }
                let xq = &scratch.q8_0[..n * nb];
                drive(pool, parallel, self.rows, n, out, |r, a, o: &mut [f32]| {
                    q8_0_tile(&w[r * nb..][..nb], xq, nb, a, o)
                });
            }
        }
    }
}

fn check(rows: usize, cols: usize, got: usize) -> Result<(), LinearError> {
    if !cols.is_multiple_of(QK) {
        return Err(LinearError::Cols { cols });
    }
    let want = rows * cols / QK;
    if got != want {
        return Err(LinearError::Blocks {
            rows,
            cols,
            want,
            got,
        });
    }
    Ok(())
}

/// One weight row against activation rows `a..a + o.len()` (at most TILE).
fn q4_1_tile(w: &[BlockQ4_1], xq: &[BlockQ8_1], nb: usize, a: usize, o: &mut [f32]) {
    let x = |i: usize| &xq[(a + i) * nb..][..nb];
    #[cfg(target_arch = "x86_64")]
    if dot::have_avx2() {
        // SAFETY: AVX2/FMA/F16C checked; every activation row has nb blocks.
        unsafe {
            let vnni = dot::have_vnni();
            if o.len() == TILE {
                let mut r = [0f32; TILE];
                let xs: [&[_]; TILE] = std::array::from_fn(x);
                if vnni {
                    dot::avx2::q4_1_q8_1_vnni::<TILE>(w, xs, &mut r);
                } else {
                    dot::avx2::q4_1_q8_1::<TILE>(w, xs, &mut r);
                }
                o.copy_from_slice(&r);
            } else {
                for (i, v) in o.iter_mut().enumerate() {
                    let mut r = [0f32; 1];
                    if vnni {
                        dot::avx2::q4_1_q8_1_vnni::<1>(w, [x(i)], &mut r);
                    } else {
                        dot::avx2::q4_1_q8_1::<1>(w, [x(i)], &mut r);
                    }
                    *v = r[0];
                }
            }
        }
        return;
    }
    for (i, v) in o.iter_mut().enumerate() {
        *v = dot::q4_1_q8_1_scalar(w, x(i));
    }
}

fn q8_0_tile(w: &[BlockQ8_0], xq: &[BlockQ8_0], nb: usize, a: usize, o: &mut [f32]) {
    let x = |i: usize| &xq[(a + i) * nb..][..nb];
    #[cfg(target_arch = "x86_64")]
    if dot::have_avx2() {
        // SAFETY: as in q4_1_tile.
        unsafe {
            let vnni = dot::have_vnni();
            if o.len() == TILE {
                let mut r = [0f32; TILE];
                let xs: [&[_]; TILE] = std::array::from_fn(x);
                if vnni {
                    dot::avx2::q8_0_q8_0_vnni::<TILE>(w, xs, &mut r);
                } else {
                    dot::avx2::q8_0_q8_0::<TILE>(w, xs, &mut r);
                }
                o.copy_from_slice(&r);
            } else {
                for (i, v) in o.iter_mut().enumerate() {
                    let mut r = [0f32; 1];
                    if vnni {
                        dot::avx2::q8_0_q8_0_vnni::<1>(w, [x(i)], &mut r);
                    } else {
                        dot::avx2::q8_0_q8_0::<1>(w, [x(i)], &mut r);
                    }
                    *v = r[0];
                }
            }
        }
        return;
    }
    for (i, v) in o.iter_mut().enumerate() {
        *v = dot::q8_0_q8_0_scalar(w, x(i));
    }
}

/// Raw output pointer shared by the shares, which write disjoint rows.
struct Out(*mut f32);
// SAFETY: each (token, row) element is written by exactly one share.
unsafe impl Sync for Out {}

/// Activation rows per pass over a share's weight rows: their quantized
/// blocks (64 x cols / 32 x 36 bytes) stay in L2 while the weights stream.
const ACT_BLOCK: usize = 64;

/// Splits `rows` into one contiguous range per share and calls
/// `tile(r, a, out)` for each weight row `r` and tile of activation rows
/// starting at `a`, scattering the tile into `out[t * rows + r]`.
fn drive(
    pool: &dyn Parallel,
    parallel: bool,
    rows: usize,
    n: usize,
    out: &mut [f32],
    tile: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    let ptr = Out(out.as_mut_ptr());
    let shares = if parallel { pool.threads() } else { 1 };
    let job = |share: usize| {
        let ptr = &ptr;
        // Multiples of 8 rows, so a share's writes don't share cache lines.
        let bound = |s: usize| (rows * s / shares).next_multiple_of(8).min(rows);
        let (lo, hi) = (bound(share), bound(share + 1));
        let mut buf = [0f32; TILE];
        for a0 in (0..n).step_by(ACT_BLOCK) {
            let a1 = (a0 + ACT_BLOCK).min(n);
            for r in lo..hi {
                let mut a = a0;
                while a < a1 {
                    let len = TILE.min(a1 - a);
                    tile(r, a, &mut buf[..len]);
                    for (i, &v) in buf[..len].iter().enumerate() {
                        // SAFETY: row r belongs to this share alone.
                        unsafe { *ptr.0.add((a + i) * rows + r) = v };
                    }
                    a += len;
                }
            }
        }
    };
    if shares == 1 {
        job(0);
    } else {
        pool.run(&job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::noise;
    use crate::pool::{Pool, Scoped};

    fn q4_1_matrix(rows: usize, cols: usize, seed: u64) -> QLinear {
        let bytes: Vec<u8> = noise(rows * cols / 2, seed)
            .iter()
            .map(|v| ((v + 1.0) * 127.9) as u8)
            .collect();
        let scales = noise(2 * rows * cols / QK, seed + 1);
        let blocks = bytes
            .chunks_exact(16)
            .enumerate()
            .map(|(i, qs)| BlockQ4_1 {
                d: f16::from_f32(scales[2 * i].abs() * 0.02),
                m: f16::from_f32(scales[2 * i + 1] * 0.1),
                qs: qs.try_into().unwrap(),
            })
            .collect();
        QLinear::q4_1(rows, cols, blocks).unwrap()
    }

    fn run(m: &QLinear, x: &[f32], n: usize, pool: &dyn Parallel) -> Vec<f32> {
        let mut out = vec![0f32; n * m.rows()];
        m.forward(x, n, &mut out, &mut Scratch::default(), pool);
        out
    }

    /// Each (token, row) output is the same bits computed alone, in a batch
    /// of any size, and with one or two threads; Q8_0 too.
    #[test]
    fn outputs_do_not_depend_on_batch_or_threads() {
        let (rows, cols, n) = (200, 576, 11);
        let q4 = q4_1_matrix(rows, cols, 9);
        let q8 = q4.to_q8_0();
        let x = noise(n * cols, 10);
        let one = Pool::new(1);
        let two = Pool::new(2);
        let three = Scoped(3);
        for m in [&q4, &q8] {
            let batch = run(m, &x, n, &two);
            assert_eq!(batch, run(m, &x, n, &one), "{} threads", m.dtype_name());
            assert_eq!(batch, run(m, &x, n, &three), "{} 3 threads", m.dtype_name());
            for t in 0..n {
                let alone = run(m, &x[t * cols..][..cols], 1, &two);
                let head = run(m, &x[..(t + 1) * cols], t + 1, &one);
                assert_eq!(
                    alone[..],
                    batch[t * rows..][..rows],
                    "{} token {t}",
                    m.dtype_name()
                );
                assert_eq!(head[t * rows..], batch[t * rows..][..rows]);
            }
        }
    }

    #[test]
    fn close_to_float_matmul() {
        let (rows, cols) = (64, 256);
        let m = q4_1_matrix(rows, cols, 3);
        let x = noise(cols, 4);
        let got = run(&m, &x, 1, &Pool::new(2));
        let mut w = vec![0f32; cols];
        for (r, g) in got.iter().enumerate() {
            m.dequantize_row(r, &mut w);
            let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
            let scale: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            assert!((g - exact).abs() <= 0.01 * scale, "row {r}: {g} vs {exact}");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(QLinear::q8_0(2, 48, vec![BlockQ8_0::default(); 3]).is_err());
        assert!(QLinear::q8_0(2, 64, vec![BlockQ8_0::default(); 3]).is_err());
    }
}
