//! forge's CPU kernels for quantized inference: GGML blocks, llama.cpp's
//! activation quantisers and dot products (AVX2 with a scalar fallback that
//! gives the same bits), a quantized linear layer, llama.cpp's RMSNorm /
//! RoPE / SwiGLU / flash-attention roundings, and a parking thread pool. Its own crate so the dev profile can build it at opt-level 3 (the
//! host crate is at 1 for compile speed; these loops are the engine's
//! hot path).

pub mod attention;
pub mod blocks;
pub mod cpu;
pub mod dot;
pub mod linear;
pub mod ops;
pub mod pool;
#[cfg(test)]
mod simd_check;
pub mod vec;

pub use linear::{LinearError, QLinear, Scratch};
pub use pool::{Parallel, Pool, Scoped};
