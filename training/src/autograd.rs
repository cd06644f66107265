//! Two backward passes candle does not give us.
//!
//! **Frozen linear.** candle's `Matmul` backward computes the gradient of
//! *both* operands whenever the node is on a gradient path, so
//! `x.matmul(&w.t())` with a frozen `w` still computes `xᵀ·grad` (a full
//! weight-sized matmul) and leaves it in the `GradStore`: 540 MB and a third
//! of the step's FLOPs for SmolLM2. [`frozen_linear`] is a custom op whose
//! backward returns only `grad · W`.
//!
//! **Recomputation.** Keeping every layer's intermediates for the backward
//! pass costs gigabytes at 512 tokens (attention scores alone are
//! `heads·T²` per layer). [`checkpoint`] runs a segment (a layer, a chunk
//! of the output head) without a graph, keeps only its input, and in the
//! backward pass re-runs it with a graph, backpropagates the incoming
//! gradient through it, returns the input's gradient and adds the LoRA
//! parameters' gradients to a [`GradSink`] (a custom op can only return
//! gradients for its own arguments).
//!
//! Both take the precomputed output and hand it to candle through a custom
//! op whose forward only copies it: the values are the same ops' values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, TensorId, Var};

/// `x · Wᵀ` (x: `[n, in]`, W: `[out, in]`) with a gradient for `x` only.
pub(crate) fn frozen_linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let y = x.detach().matmul(&w.t()?)?;
    if !x.track_op() {
        return Ok(y);
    }
    x.apply_op1(Preset {
        name: "frozen-linear",
        out: Mutex::new(Some(y)),
        backward: Backward::Linear(w.clone()),
    })
}

/// A piece of the forward pass that [`checkpoint`] can run twice.
pub(crate) trait Segment: Send + Sync {
    /// Runs on `x`. With `track` the LoRA parameters are used as the
    /// `Var`s (a graph is built); without, as detached values.
    fn run(&self, x: &Tensor, track: bool) -> candle_core::Result<Tensor>;
    /// The parameters whose gradients go to the sink.
    fn params(&self) -> Vec<Var>;
}

/// Runs `segment` on `x` without a graph; the backward pass recomputes it.
/// `x` must be on a gradient path (a `Var` or computed from one), or no
/// backward pass will reach the segment.
pub(crate) fn checkpoint(
    x: &Tensor,
    segment: Arc<dyn Segment>,
    sink: &GradSink,
) -> candle_core::Result<Tensor> {
    let y = segment.run(&x.detach(), false)?;
    x.apply_op1(Preset {
        name: "checkpoint",
        out: Mutex::new(Some(y)),
        backward: Backward::Recompute {
            segment,
            sink: sink.clone(),
        },
    })
}

/// Gradients of LoRA parameters produced inside recomputed segments.
#[derive(Clone, Default)]
pub(crate) struct GradSink(Arc<Mutex<HashMap<TensorId, Tensor>>>);

impl GradSink {
    fn add(&self, id: TensorId, g: Tensor) -> candle_core::Result<()> {
        let mut map = self.0.lock().expect("grad sink poisoned");
        let g = match map.remove(&id) {
            Some(prev) => (prev + g)?,
            None => g,
        };
        map.insert(id, g);
        Ok(())
    }

    pub fn take(&self, id: TensorId) -> Option<Tensor> {
        self.0.lock().expect("grad sink poisoned").remove(&id)
    }

    pub fn clear(&self) {
        self.0.lock().expect("grad sink poisoned").clear();
    }
}

enum Backward {
    Linear(Tensor),
    Recompute {
        segment: Arc<dyn Segment>,
        sink: GradSink,
    },
}

/// A custom op whose forward returns a value computed beforehand.
struct Preset {
    name: &'static str,
    /// Taken (and freed) by the forward; the graph keeps only the copy.
    out: Mutex<Option<Tensor>>,
    backward: Backward,
}

impl CustomOp1 for Preset {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = self
            .out
            .lock()
            .expect("preset poisoned")
            .take()
            .ok_or_else(|| candle_core::Error::Msg(format!("{}: forward ran twice", self.name)))?;
        let shape = out.shape().clone();
        let flat = out.flatten_all()?;
        let storage = match out.dtype() {
            DType::F32 => CpuStorage::F32(flat.to_vec1()?),
            DType::F64 => CpuStorage::F64(flat.to_vec1()?),
            other => candle_core::bail!("{}: unsupported dtype {other:?}", self.name),
        };
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        match &self.backward {
            Backward::Linear(w) => Ok(Some(grad.contiguous()?.matmul(w)?)),
            Backward::Recompute { segment, sink } => {
                let x = Var::from_tensor(&arg.detach())?;
                let y = segment.run(x.as_tensor(), true)?;
                // d/dθ Σ(y ⊙ g) is the vector-Jacobian product we need.
                let s = (y * grad.detach())?.sum_all()?;
                let mut grads = s.backward()?;
                for p in segment.params() {
                    if let Some(g) = grads.remove(p.as_tensor()) {
                        sink.add(p.as_tensor().id(), g)?;
                    }
                }
                Ok(grads.remove(x.as_tensor()))
            }
        }
    }
}
