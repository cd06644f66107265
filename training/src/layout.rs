//! Hugging Face ⇄ GGUF row order of the q/k projections.
//!
//! llama.cpp's converter permutes the output rows of `q_proj` and `k_proj`
//! so that its "normal" RoPE (rotating adjacent pairs `2i, 2i+1`) computes
//! what Hugging Face's `rotate_half` (pairs `i, i + head_dim/2`) computes on
//! the original rows: `w.reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2)`
//! (with `n_head = n_kv_head` for k). A LoRA update `B A` changes rows like
//! `W`, so `B`'s rows follow the same permutation and `A` (input side) does
//! not.

use candle_core::Tensor;

use crate::error::{Result, TrainError};

/// Hugging Face rows → GGUF rows (llama.cpp's `permute`).
pub fn hf_to_gguf_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (out, cols, half) = split(w, n_head)?;
    Ok(w.reshape((n_head, 2, half, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, cols))?)
}

/// GGUF rows → Hugging Face rows (the inverse of [`hf_to_gguf_rows`]).
pub fn gguf_to_hf_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (out, cols, half) = split(w, n_head)?;
    Ok(w.reshape((n_head, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, cols))?)
}

fn split(w: &Tensor, n_head: usize) -> Result<(usize, usize, usize)> {
    let (out, cols) = w.dims2()?;
    if n_head == 0 || out % (2 * n_head) != 0 {
        return Err(TrainError::Model(format!(
            "cannot permute {out} rows into {n_head} heads of pairs"
        )));
    }
    Ok((out, cols, out / n_head / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn rows(n: usize) -> Tensor {
        Tensor::arange(0u32, n as u32, &Device::Cpu)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .reshape((n, 1))
            .unwrap()
    }

    fn order(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(|v| v as u32)
            .collect()
    }

    /// Worked by hand from llama.cpp's formula: one head of 6 rows is
    /// `[[0,1,2],[3,4,5]]` as (2, 3), swapped to (3, 2): `0,3,1,4,2,5`;
    /// two heads of 4 rows each: `0,2,1,3` and `4,6,5,7`.
    #[test]
    fn matches_llama_cpp_permute_by_hand() {
        assert_eq!(
            order(&hf_to_gguf_rows(&rows(6), 1).unwrap()),
            [0, 3, 1, 4, 2, 5]
        );
        assert_eq!(
            order(&hf_to_gguf_rows(&rows(8), 2).unwrap()),
            [0, 2, 1, 3, 4, 6, 5, 7]
        );
    }

    #[test]
    fn round_trip_is_identity() {
        let w = Tensor::randn(0f32, 1.0, (24, 5), &Device::Cpu).unwrap();
        for heads in [1, 2, 3, 6] {
            let there = hf_to_gguf_rows(&w, heads).unwrap();
            // Not the identity (half a head is at least 2 rows here).
            assert_ne!(there.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
            let back = gguf_to_hf_rows(&there, heads).unwrap();
            assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        }
    }

    #[test]
    fn rejects_rows_that_do_not_split_into_pairs() {
        let w = Tensor::zeros((6, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(hf_to_gguf_rows(&w, 2).is_err());
    }
}
