//! Where the embedded engine runs: `[model] device = "cpu" | "cuda" |
//! "cuda:N"`. A build without the `cuda` feature refuses "cuda" with an
//! error that names the feature and the script that builds it.

use candle_core::Device;

use super::EngineError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeDevice {
    /// forge's CPU engine (llama.cpp's arithmetic on plain rows).
    #[default]
    Cpu,
    /// The tensor forward pass ([`super::device_llama`]) on the CPU: what
    /// a GPU runs, checked on machines without one. Not a config value.
    CpuTensors,
    /// An NVIDIA GPU by ordinal.
    Cuda(usize),
}

impl std::str::FromStr for ComputeDevice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("device {s:?}: expected \"cpu\", \"cuda\" or \"cuda:N\"");
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(Self::Cuda).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::CpuTensors => f.write_str("cpu (tensor path)"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Why `weights = "q8_0"` is refused on a device (the config check and
/// the loader say the same).
pub const Q8_0_IS_CPU_ONLY: &str = "\"q8_0\" (requantising 4-bit matrices) is a CPU-engine \
     setting; on a GPU use \"native\" or \"f32\"";

/// Whether this binary can run models on an NVIDIA GPU.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

impl ComputeDevice {
    /// Whether the model runs as tensors on a device (not the CPU engine).
    pub fn is_tensor_path(self) -> bool {
        !matches!(self, Self::Cpu)
    }

    /// Why this build cannot use the device, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Self::Cuda(_) if !CUDA_BUILT => Some(
                "\"cuda\" needs a forge-host built with the `cuda` feature \
                 (scripts/build-cuda.sh builds it; this one is CPU-only)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// The candle device (opens the GPU's context).
    pub fn open(self) -> Result<Device, EngineError> {
        if let Some(why) = self.unavailable() {
            return Err(EngineError::Load(format!("device {why}")));
        }
        match self {
            Self::Cpu | Self::CpuTensors => Ok(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(n).map_err(|e| {
                EngineError::Load(format!(
                    "device cuda:{n}: the GPU could not be opened ({e}); does \
                         `nvidia-smi` list it, and is the driver's libcuda.so.1 the one \
                         the loader finds?"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_config_values_and_names_the_feature() {
        assert_eq!("cpu".parse(), Ok(ComputeDevice::Cpu));
        assert_eq!("cuda".parse(), Ok(ComputeDevice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(ComputeDevice::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", "cpu-tensors"] {
            let e = bad.parse::<ComputeDevice>().unwrap_err();
            assert!(e.contains("expected \"cpu\", \"cuda\""), "{bad}: {e}");
        }
        let why = ComputeDevice::Cuda(0).unavailable();
        assert_eq!(why.is_some(), !CUDA_BUILT);
        if let Some(why) = why {
            assert!(why.contains("`cuda` feature") && why.contains("build-cuda.sh"));
            let e = ComputeDevice::Cuda(0).open().unwrap_err().to_string();
            assert!(e.contains("`cuda` feature"), "{e}");
        }
        assert!(ComputeDevice::Cpu.unavailable().is_none());
    }
}
