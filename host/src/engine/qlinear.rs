//! The model's weight matrices: forge-kernels' quantized matmul for the
//! types it has kernels for (Q4_1, Q8_0: llama.cpp's arithmetic, outputs
//! independent of batch size and thread count), candle's `QMatMul` for the
//! rest. Tensor in, tensor out, so the forward pass reads the same either
//! way.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};
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
    /// `x` (..., cols) f32 times the matrix's transpose: (..., rows).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let _span = tracing::trace_span!("matmul").entered();
        let (w, pool) = match self {
            Linear::Candle(m) => return m.forward(x),
            Linear::Kernel { w, pool } => (w, pool),
        };
        let mut dims = x.dims().to_vec();
        let cols = dims.pop().unwrap_or(0);
        if cols != w.cols() {
            candle_core::bail!(
                "matmul of {cols}-wide input by a {}x{} matrix",
                w.rows(),
                w.cols()
            );
        }
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let n = xs.len() / cols;
        let mut out = vec![0f32; n * w.rows()];
        SCRATCH.with_borrow_mut(|s| w.forward(&xs, n, &mut out, s, pool.as_ref()));
        dims.push(w.rows());
        Tensor::from_vec(out, dims, x.device())
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
