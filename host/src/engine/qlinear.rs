//! The model's weight matrices: forge-kernels' quantized matmul for the
//! types it has kernels for (Q4_1, Q8_0: llama.cpp's arithmetic, outputs
//! independent of batch size and thread count), candle's `QMatMul` for the
//! rest. Rows of f32 in and out (candle's matrices wrap them in a tensor),
//! so the forward pass reads the same either way.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};
use forge_kernels::{Pool, QLinear, Scratch};

thread_local! {
    /// Quantized activations, reused across calls (no allocation per token
    /// beyond the output tensor).
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Clone)]
pub enum Linear {
    Kernel { w: QLinear, pool: Arc<Pool> },
    Candle(QMatMul),
}

impl Linear {
    /// Output features (rows of the weight matrix).
    pub fn rows(&self) -> usize {
        match self {
            Linear::Kernel { w, .. } => w.rows(),
            Linear::Candle(m) => match m {
                QMatMul::QTensor(t) => t.shape().dims()[0],
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims()[0],
            },
        }
    }

    /// `out = x W^T` for the `n` rows of `x` (`n * cols` floats); `out`
    /// holds `n * rows`. No tensor on the kernel path; candle's matrices
    /// go through one (on `device`).
    pub fn forward_rows(
        &self,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        device: &Device,
    ) -> candle_core::Result<()> {
        let _span = tracing::trace_span!("matmul").entered();
        match self {
            Linear::Kernel { w, pool } => {
                if x.len() != n * w.cols() || out.len() != n * w.rows() {
                    candle_core::bail!(
                        "matmul of {n} rows ({} floats) by a {}x{} matrix",
                        x.len(),
                        w.rows(),
                        w.cols()
                    );
                }
                SCRATCH.with_borrow_mut(|s| w.forward(x, n, out, s, pool.as_ref()));
            }
            Linear::Candle(m) => {
                let t = Tensor::from_slice(x, (n, x.len() / n.max(1)), device)?;
                let y = m.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                if y.len() != out.len() {
                    candle_core::bail!("matmul gave {} floats for {}", y.len(), out.len());
                }
                out.copy_from_slice(&y);
            }
        }
        Ok(())
    }

    /// Rows `ids` of the matrix as floats into `out` (`ids.len() * cols`).
    pub fn embed(&self, ids: &[u32], out: &mut [f32], device: &Device) -> candle_core::Result<()> {
        let w = match self {
            Linear::Kernel { w, .. } => w,
            Linear::Candle(_) => {
                let t = self.embedding(&Tensor::new(ids, device)?)?;
                out.copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?);
                return Ok(());
            }
        };
        let cols = w.cols();
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(cols)) {
            if id as usize >= w.rows() {
                candle_core::bail!("token id {id} outside the vocabulary of {}", w.rows());
            }
            w.dequantize_row(id as usize, row);
        }
        Ok(())
    }

    /// Rows `ids` of the matrix as floats: (ids..., cols).
    pub fn embedding(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let w = match self {
            Linear::Candle(m) => return m.embedding(ids),
            Linear::Kernel { w, .. } => w,
        };
        let list = ids.flatten_all()?.to_vec1::<u32>()?;
        let cols = w.cols();
        let mut out = vec![0f32; list.len() * cols];
        for (&id, row) in list.iter().zip(out.chunks_exact_mut(cols)) {
            if id as usize >= w.rows() {
                candle_core::bail!("token id {id} outside the vocabulary of {}", w.rows());
            }
            w.dequantize_row(id as usize, row);
        }
        let mut dims = ids.dims().to_vec();
        dims.push(cols);
        Tensor::from_vec(out, dims, ids.device())
    }
}
