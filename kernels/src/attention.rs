//! One query row of llama.cpp's CPU flash attention over an F16 KV cache
//! (ggml's `flash_attn_ext_f16_one_chunk`, what llama.cpp runs for each
//! generated token): keys and values are f16 values, the query is rounded
//! to f16, scores are `dot * scale`, and the softmax is online with the
//! value accumulator held in f16 (rounded after every scale and
//! multiply-add). Matching those roundings is what makes greedy decoding
//! follow llama.cpp's; the row's result depends only on its own inputs.

use half::f16;

/// Rounds each value to the nearest f16 (ties to even), kept as f32: what
/// storing into llama.cpp's F16 KV cache does.
pub fn round_to_f16(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dot::have_avx2() {
        // SAFETY: the CPU has AVX2/F16C.
        return unsafe { avx2::round_to_f16(x) };
    }
    for v in x {
        *v = f16::from_f32(*v).to_f32();
    }
}

/// `out = softmax(scale * K q) V` over `n` cached positions; position `j`'s
/// key is `k[j * stride..][..hd]` (likewise `v`), both already f16-exact.
/// `q16` and `acc` are scratch of `hd` floats each.
#[allow(clippy::too_many_arguments)]
pub fn attend_row(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    n: usize,
    scale: f32,
    q16: &mut [f32],
    acc: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    q16.copy_from_slice(q);
    round_to_f16(q16);
    acc.iter_mut().for_each(|a| *a = 0.0);
    let (mut m, mut s) = (f32::NEG_INFINITY, 0f32);
    for j in 0..n {
        let score = crate::vec::dot_f32(&k[j * stride..][..hd], q16) * scale;
        let (mut ms, mut vs) = (1f32, 1f32);
        if score > m {
            let old = m;
            m = score;
            ms = (old - m).exp();
            scale_f16(acc, ms);
        } else {
            vs = (score - m).exp();
        }
        mad_f16(acc, &v[j * stride..][..hd], vs);
        s = s * ms + vs;
    }
    let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = a * inv;
    }
}

/// `acc = f16(acc * c)` (ggml_vec_scale_f16).
fn scale_f16(acc: &mut [f32], c: f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::dot::have_avx2() && acc.len().is_multiple_of(8) {
        // SAFETY: features checked, whole vectors.
        return unsafe { avx2::scale_f16(acc, c) };
    }
    for a in acc {
        *a = f16::from_f32(*a * c).to_f32();
    }
}

/// `acc = f16(fma(x, c, acc))` (ggml_vec_mad_f16).
fn mad_f16(acc: &mut [f32], x: &[f32], c: f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::dot::have_avx2() && acc.len().is_multiple_of(8) {
        // SAFETY: features checked, whole vectors.
        return unsafe { avx2::mad_f16(acc, x, c) };
    }
    for (a, &v) in acc.iter_mut().zip(x) {
        *a = f16::from_f32(v.mul_add(c, *a)).to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn round8(x: __m256) -> __m256 {
        _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn round_to_f16(x: &mut [f32]) {
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: 8 floats.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), round8(_mm256_loadu_ps(c.as_ptr()))) };
        }
        for v in chunks.into_remainder() {
            *v = half::f16::from_f32(*v).to_f32();
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn scale_f16(acc: &mut [f32], c: f32) {
        let c = _mm256_set1_ps(c);
        for a in acc.chunks_exact_mut(8) {
            // SAFETY: 8 floats.
            unsafe {
                let r = round8(_mm256_mul_ps(_mm256_loadu_ps(a.as_ptr()), c));
                _mm256_storeu_ps(a.as_mut_ptr(), r);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn mad_f16(acc: &mut [f32], x: &[f32], c: f32) {
        let c = _mm256_set1_ps(c);
        for (a, v) in acc.chunks_exact_mut(8).zip(x.chunks_exact(8)) {
            // SAFETY: 8 floats each.
            unsafe {
                let r =
                    _mm256_fmadd_ps(_mm256_loadu_ps(v.as_ptr()), c, _mm256_loadu_ps(a.as_ptr()));
                _mm256_storeu_ps(a.as_mut_ptr(), round8(r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::noise;

    #[test]
    fn rounding_matches_half_and_softmax_is_close_to_f32() {
        let (hd, n) = (64, 37);
        let mut k = noise(n * hd, 1);
        let mut v = noise(n * hd, 2);
        let q = noise(hd, 3);
        let mut r = k.clone();
        round_to_f16(&mut r);
        for (a, b) in r.iter().zip(&k) {
            assert_eq!(*a, f16::from_f32(*b).to_f32());
        }
        round_to_f16(&mut k);
        round_to_f16(&mut v);
        let (mut q16, mut acc, mut out) = (vec![0f32; hd], vec![0f32; hd], vec![0f32; hd]);
        attend_row(&q, &k, &v, hd, n, 0.125, &mut q16, &mut acc, &mut out);
        // Plain f32 softmax attention for comparison.
        let scores: Vec<f32> = (0..n)
            .map(|j| {
                k[j * hd..][..hd]
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
                    * 0.125
            })
            .collect();
        let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f32 = w.iter().sum();
        for d in 0..hd {
            let want: f32 = (0..n).map(|j| w[j] * v[j * hd + d]).sum::<f32>() / sum;
            assert!(
                (out[d] - want).abs() < 2e-3,
                "dim {d}: {} vs {want}",
                out[d]
            );
        }
    }

    #[test]
    fn simd_and_scalar_accumulation_agree() {
        let mut a = noise(64, 4);
        round_to_f16(&mut a);
        let x = noise(64, 5);
        let mut simd = a.clone();
        mad_f16(&mut simd, &x, 0.37);
        scale_f16(&mut simd, 0.81);
        let mut scalar = a.clone();
        for (s, &v) in scalar.iter_mut().zip(&x) {
            *s = f16::from_f32(v.mul_add(0.37, *s)).to_f32();
        }
        for s in &mut scalar {
            *s = f16::from_f32(*s * 0.81).to_f32();
        }
        assert_eq!(simd, scalar);
    }
}
