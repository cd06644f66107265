//! The f32 operations between the matmuls (RMSNorm, RoPE, SwiGLU),
//! computed the way llama.cpp's CPU backend computes them when built for
//! this CPU (`ggml-cpu/ops.cpp`, `vec.h`, GCC with FMA contraction):
//!
//! - RMSNorm sums squares in f64, then `y = x * (1 / sqrtf(mean + eps)) * w`;
//! - RoPE angles come from ggml's recurrence `theta *= base^(-2/n)`, and a
//!   pair rotates as `fma(x0, c, -(x1 s))`, `fma(x0, s, x1 c)`;
//! - SiLU uses ggml's vector `expf` approximation (the AVX-512 form where
//!   the CPU has AVX-512F/DQ, the AVX2 form otherwise, libm on others).
//!
//! A 135M model turns last-bit differences into different greedy tokens
//! within a few dozen steps, so matching these roundings is what lets
//! forge's continuations follow llama.cpp's. Each op works row by row: a
//! row's result never depends on the other rows of the batch.

pub use crate::cpu::have_avx512;

/// `y = rms_norm(x) * w` for one row (ggml's `rms_norm` fused with `mul`).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for ((o, &v), &g) in y.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// cos/sin of every rotated pair at position `pos`, as ggml's
/// `rope_cache_init` computes them: `cs[2 i]` is the cosine of pair `i`,
/// `cs[2 i + 1]` its sine (`cs.len()` = the rotated dimensions). Computed
/// per forward rather than tabled for the whole context (a 128k-context
/// model's table would be tens of MiB); the values are the same.
pub fn rope_row(pos: usize, base: f32, cs: &mut [f32]) {
    let theta_scale = base.powf(-2.0f32 / cs.len() as f32);
    let mut theta = pos as f32;
    for pair in cs.chunks_exact_mut(2) {
        pair[0] = theta.cos();
        pair[1] = theta.sin();
        theta *= theta_scale;
    }
}

/// Rotates adjacent pairs of one head (`x.len()` = 2 x pairs of `cs`),
/// llama's "normal" RoPE; `cs` is one position's [`rope_row`].
pub fn rope_pairs(x: &mut [f32], cs: &[f32]) {
    for (v, c) in x.chunks_exact_mut(2).zip(cs.chunks_exact(2)) {
        let (x0, x1, cos, sin) = (v[0], v[1], c[0], c[1]);
        v[0] = x0.mul_add(cos, -(x1 * sin));
        v[1] = x0.mul_add(sin, x1 * cos);
    }
}

/// `y = silu(gate) * up` (ggml's `swiglu`), one row or many.
pub fn swiglu(gate: &[f32], up: &[f32], y: &mut [f32]) {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if have_avx512() {
            // SAFETY: AVX-512F/DQ checked; the loop stays in bounds.
            i = unsafe { avx512::swiglu(gate, up, y) };
        } else if crate::cpu::have_avx2() {
            // SAFETY: AVX2/FMA checked.
            i = unsafe { avx2::swiglu(gate, up, y) };
        }
    }
    for j in i..y.len() {
        y[j] = gate[j] / (1.0 + (-gate[j]).exp()) * up[j];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// ggml's AVX-512 `ggml_v_expf`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn expf(x: __m512) -> __m512 {
        let r = _mm512_set1_ps(f32::from_bits(0x4b40_0000)); // 0x1.8p23
        let z = _mm512_fmadd_ps(x, _mm512_set1_ps(f32::from_bits(0x3fb8_aa3b)), r);
        let n = _mm512_sub_ps(z, r);
        let b = _mm512_fnmadd_ps(
            n,
            _mm512_set1_ps(f32::from_bits(0x35bf_be8e)),
            _mm512_fnmadd_ps(n, _mm512_set1_ps(f32::from_bits(0x3f31_7200)), x),
        );
        let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
        let u = _mm512_mul_ps(b, b);
        let j = _mm512_fmadd_ps(
            _mm512_fmadd_ps(
                _mm512_fmadd_ps(
                    _mm512_set1_ps(f32::from_bits(0x3c07_2010)),
                    b,
                    _mm512_set1_ps(f32::from_bits(0x3d2b_9f17)),
                ),
                u,
                _mm512_fmadd_ps(
                    _mm512_set1_ps(f32::from_bits(0x3e2a_af33)),
                    b,
                    _mm512_set1_ps(f32::from_bits(0x3eff_fedb)),
                ),
            ),
            u,
            _mm512_fmadd_ps(
                _mm512_set1_ps(f32::from_bits(0x3f7f_fff6)),
                b,
                _mm512_set1_ps(1.0),
            ),
        );
        let res = _mm512_scalef_ps(j, n);
        if d == 0 {
            return res;
        }
        let zero = _mm512_setzero_ps();
        let alt = _mm512_mask_blend_ps(
            _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero),
            _mm512_set1_ps(f32::INFINITY),
            zero,
        );
        _mm512_mask_blend_ps(d, res, alt)
    }

    /// Returns how many leading elements it did (whole vectors of 16).
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn swiglu(gate: &[f32], up: &[f32], y: &mut [f32]) -> usize {
        let n = y.len().min(gate.len()).min(up.len()) / 16 * 16;
        let one = _mm512_set1_ps(1.0);
        for i in (0..n).step_by(16) {
            // SAFETY: i + 16 <= n <= each length.
            unsafe {
                let x = _mm512_loadu_ps(gate.as_ptr().add(i));
                let e = expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
                let silu = _mm512_div_ps(x, _mm512_add_ps(one, e));
                let g = _mm512_loadu_ps(up.as_ptr().add(i));
                _mm512_storeu_ps(y.as_mut_ptr().add(i), _mm512_mul_ps(silu, g));
            }
        }
        n
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// ggml's AVX2 `ggml_v_expf`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn expf(x: __m256) -> __m256 {
        let r = _mm256_set1_ps(f32::from_bits(0x4b40_0000));
        let z = _mm256_fmadd_ps(x, _mm256_set1_ps(f32::from_bits(0x3fb8_aa3b)), r);
        let n = _mm256_sub_ps(z, r);
        let b = _mm256_fnmadd_ps(
            n,
            _mm256_set1_ps(f32::from_bits(0x35bf_be8e)),
            _mm256_fnmadd_ps(n, _mm256_set1_ps(f32::from_bits(0x3f31_7200)), x),
        );
        let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
        let k = _mm256_castsi256_ps(_mm256_add_epi32(
            e,
            _mm256_castps_si256(_mm256_set1_ps(1.0)),
        ));
        let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
        let c = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(126.0)));
        let u = _mm256_mul_ps(b, b);
        let j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_fmadd_ps(
                    _mm256_set1_ps(f32::from_bits(0x3c07_2010)),
                    b,
                    _mm256_set1_ps(f32::from_bits(0x3d2b_9f17)),
                ),
                u,
                _mm256_fmadd_ps(
                    _mm256_set1_ps(f32::from_bits(0x3e2a_af33)),
                    b,
                    _mm256_set1_ps(f32::from_bits(0x3eff_fedb)),
                ),
            ),
            u,
            _mm256_mul_ps(_mm256_set1_ps(f32::from_bits(0x3f7f_fff6)), b),
        );
        if _mm256_movemask_ps(_mm256_castsi256_ps(c)) == 0 {
            return _mm256_fmadd_ps(j, k, k);
        }
        let g = _mm256_and_si256(
            _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps())),
            _mm256_set1_epi32(0x8200_0000u32 as i32),
        );
        let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
        let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
        let d = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(192.0)));
        _mm256_or_ps(
            _mm256_and_ps(_mm256_castsi256_ps(d), _mm256_mul_ps(s1, s1)),
            _mm256_andnot_ps(
                _mm256_castsi256_ps(d),
                _mm256_or_ps(
                    _mm256_and_ps(
                        _mm256_castsi256_ps(c),
                        _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1),
                    ),
                    _mm256_andnot_ps(_mm256_castsi256_ps(c), _mm256_fmadd_ps(k, j, k)),
                ),
            ),
        )
    }

    /// Returns how many leading elements it did (whole vectors of 8).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn swiglu(gate: &[f32], up: &[f32], y: &mut [f32]) -> usize {
        let n = y.len().min(gate.len()).min(up.len()) / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        for i in (0..n).step_by(8) {
            // SAFETY: i + 8 <= n <= each length.
            unsafe {
                let x = _mm256_loadu_ps(gate.as_ptr().add(i));
                let e = expf(_mm256_sub_ps(_mm256_setzero_ps(), x));
                let silu = _mm256_div_ps(x, _mm256_add_ps(one, e));
                let g = _mm256_loadu_ps(up.as_ptr().add(i));
                _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_mul_ps(silu, g));
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::noise;

    #[test]
    fn rms_norm_matches_a_double_precision_reference() {
        let x = noise(576, 1);
        let w = noise(576, 2);
        let mut y = vec![0f32; 576];
        rms_norm(&x, &w, 1e-5, &mut y);
        let ms: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 576.0;
        for ((&a, &v), &g) in y.iter().zip(&x).zip(&w) {
            let want = v as f64 / (ms + 1e-5).sqrt() * g as f64;
            assert!((a as f64 - want).abs() < 1e-5, "{a} vs {want}");
        }
    }

    #[test]
    fn rope_rotates_by_the_position_angle() {
        let mut cs = [0f32; 4];
        rope_row(3, 10_000.0, &mut cs);
        // Pair 0 turns by `pos` radians, pair 1 by pos / 100.
        let mut x = [1.0f32, 0.0, 0.0, 1.0];
        rope_pairs(&mut x, &cs);
        assert!((x[0] - 3f32.cos()).abs() < 1e-6 && (x[1] - 3f32.sin()).abs() < 1e-6);
        assert!((x[2] + 0.03f32.sin()).abs() < 1e-6 && (x[3] - 0.03f32.cos()).abs() < 1e-6);
    }

    #[test]
    fn swiglu_is_close_to_libm_and_the_tail_agrees() {
        // 37: vector body plus a scalar tail; values span expf's range
        // guards (|x| > 126 and > 192 take the special paths).
        let mut gate: Vec<f32> = noise(37, 3).iter().map(|v| v * 12.0).collect();
        gate[3] = 150.0;
        gate[4] = -150.0;
        gate[5] = 250.0;
        gate[6] = -250.0;
        let up = noise(37, 4);
        let mut y = vec![0f32; 37];
        swiglu(&gate, &up, &mut y);
        for ((&g, &u), &got) in gate.iter().zip(&up).zip(&y) {
            let want = g / (1.0 + (-g).exp()) * u;
            let tol = 1e-5 * want.abs().max(1e-3);
            assert!(
                (got - want).abs() <= tol,
                "silu({g}) * {u}: {got} vs {want}"
            );
        }
    }
}
