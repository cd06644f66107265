//! Accelerator accounting for `show`: seconds the GPU spent in forward
//! passes and the peak device memory in use, over this process. Empty
//! (None) until a model runs on a GPU.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use candle_core::Device;

static NANOS: AtomicU64 = AtomicU64::new(0);
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);
static USED: AtomicBool = AtomicBool::new(false);

/// Counts one forward pass on `device` (its wall time: the pass ends by
/// reading the logits back, which waits for the GPU) and samples the
/// device's memory in use. Nothing on the CPU.
pub fn record(device: &Device, elapsed: Duration) {
    if !device.is_cuda() {
        return;
    }
    USED.store(true, Ordering::Relaxed);
    NANOS.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    if let Some(bytes) = memory_in_use(device) {
        PEAK_BYTES.fetch_max(bytes, Ordering::Relaxed);
    }
}

/// (GPU seconds, peak device memory in MiB) so far; None when no model
/// has run on a GPU in this process.
pub fn totals() -> Option<(f64, Option<f64>)> {
    if !USED.load(Ordering::Relaxed) {
        return None;
    }
    let peak = PEAK_BYTES.load(Ordering::Relaxed);
    Some((
        NANOS.load(Ordering::Relaxed) as f64 / 1e9,
        (peak > 0).then(|| peak as f64 / (1024.0 * 1024.0)),
    ))
}

/// Device memory in use (total minus free, as nvidia-smi counts it).
#[cfg(feature = "cuda")]
fn memory_in_use(device: &Device) -> Option<u64> {
    let Device::Cuda(d) = device else {
        return None;
    };
    let (free, total) = d.cuda_stream().context().mem_get_info().ok()?;
    Some(total.saturating_sub(free) as u64)
}

#[cfg(not(feature = "cuda"))]
fn memory_in_use(_device: &Device) -> Option<u64> {
    None
}
