//! Dot products of one weight row with up to four quantized activation
//! rows, in the arithmetic of llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1` and
//! `ggml_vec_dot_q8_0_q8_0`: per block an exact integer dot in eight lanes
//! (bytes `4l..4l+4` into lane `l`), `acc[l] = fma(d_w * d_x, lane, acc[l])`,
//! then llama.cpp's horizontal sum (and, for Q4_1, `+ sum fma(m, s)`).
//! The scalar path repeats that order step by step, so both paths and
//! llama.cpp give the same bits, and a row's value never depends on which
//! other rows share the call.

use crate::blocks::{BlockQ4_1, BlockQ8_0, BlockQ8_1};
pub use crate::cpu::{have_avx2, have_vnni};

/// Activation rows computed together against one weight row (prefill).
pub const TILE: usize = 4;

/// `_mm256_extractf128 + add, movehl + add, movehdup + add_ss`.
fn hsum8(a: [f32; 8]) -> f32 {
    let r = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
    (r[0] + r[2]) + (r[1] + r[3])
}

fn nibble(b: &BlockQ4_1, j: usize) -> i32 {
    if j < 16 {
        (b.qs[j] & 0x0f) as i32
    } else {
        (b.qs[j - 16] >> 4) as i32
    }
}

pub fn q4_1_q8_1_scalar(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (wb, xb) in w.iter().zip(x) {
        summs = wb.m.to_f32().mul_add(xb.s.to_f32(), summs);
        let d = wb.d.to_f32() * xb.d.to_f32();
        for (l, a) in acc.iter_mut().enumerate() {
            let lane: i32 = (4 * l..4 * l + 4)
                .map(|j| nibble(wb, j) * xb.qs[j] as i32)
                .sum();
            *a = d.mul_add(lane as f32, *a);
        }
    }
    hsum8(acc) + summs
}

pub fn q8_0_q8_0_scalar(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    let mut acc = [0f32; 8];
    for (wb, xb) in w.iter().zip(x) {
        let d = wb.d.to_f32() * xb.d.to_f32();
        for (l, a) in acc.iter_mut().enumerate() {
            let lane: i32 = (4 * l..4 * l + 4)
                .map(|j| wb.qs[j] as i32 * xb.qs[j] as i32)
                .sum();
            *a = d.mul_add(lane as f32, *a);
        }
    }
    hsum8(acc)
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16(h: half::f16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h.to_bits() as i32)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(x: __m256) -> f32 {
        let mut r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    /// Unsigned bytes times signed bytes, summed by fours into i32 lanes,
    /// as floats (`mul_sum_us8_pairs_float`). With AVX-512 VNNI one
    /// `vpdpbusd` does it, as llama.cpp's build uses when the CPU has it;
    /// the integers are the same (no pair sum here can saturate i16).
    #[inline(always)]
    unsafe fn mul_sum_us8<const VNNI: bool>(ax: __m256i, sy: __m256i) -> __m256 {
        // SAFETY: callers run with AVX2, and with VNNI/VL when VNNI.
        unsafe {
            if VNNI {
                return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy));
            }
            let dot = _mm256_maddubs_epi16(ax, sy);
            _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
        }
    }

    /// `w` against `A` activation rows; `out[a]` = the dot with `xs[a]`.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; every `xs[a]` at least as long
    /// as `w`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q4_1_q8_1<const A: usize>(
        w: &[BlockQ4_1],
        xs: [&[BlockQ8_1]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: as the caller promises.
        unsafe { q4_1_body::<A, false>(w, xs, out) }
    }

    /// [`q4_1_q8_1`] with `vpdpbusd`; the same bits.
    ///
    /// # Safety
    /// As [`q4_1_q8_1`], and the CPU must have AVX-512 VNNI and VL.
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn q4_1_q8_1_vnni<const A: usize>(
        w: &[BlockQ4_1],
        xs: [&[BlockQ8_1]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: as the caller promises.
        unsafe { q4_1_body::<A, true>(w, xs, out) }
    }

    #[inline(always)]
    unsafe fn q4_1_body<const A: usize, const VNNI: bool>(
        w: &[BlockQ4_1],
        xs: [&[BlockQ8_1]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: the entry points checked the CPU features.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); A];
            let mut summs = [0f32; A];
            let low = _mm256_set1_epi8(0x0f);
            for (ib, wb) in w.iter().enumerate() {
                let d0 = f16(wb.d);
                let m = f16(wb.m);
                // SAFETY: 16 bytes.
                let raw = _mm_loadu_si128(wb.qs.as_ptr().cast());
                let qx = _mm256_and_si256(low, _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw));
                for a in 0..A {
                    // SAFETY: the caller promises xs[a].len() >= w.len().
                    let xb = xs[a].get_unchecked(ib);
                    summs[a] = m.mul_add(f16(xb.s), summs[a]);
                    let d = _mm256_set1_ps(d0 * f16(xb.d));
                    // SAFETY: 32 bytes.
                    let qy = _mm256_loadu_si256(xb.qs.as_ptr().cast());
                    acc[a] = _mm256_fmadd_ps(d, mul_sum_us8::<VNNI>(qx, qy), acc[a]);
                }
            }
            for a in 0..A {
                out[a] = hsum(acc[a]) + summs[a];
            }
        }
    }

    /// As [`q4_1_q8_1`] for Q8_0 weights and activations
    /// (`mul_sum_i8_pairs_float`: |w| times x with w's sign).
    ///
    /// # Safety
    /// As [`q4_1_q8_1`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_0_q8_0<const A: usize>(
        w: &[BlockQ8_0],
        xs: [&[BlockQ8_0]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: as the caller promises.
        unsafe { q8_0_body::<A, false>(w, xs, out) }
    }

    /// [`q8_0_q8_0`] with `vpdpbusd`; the same bits.
    ///
    /// # Safety
    /// As [`q4_1_q8_1_vnni`].
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub unsafe fn q8_0_q8_0_vnni<const A: usize>(
        w: &[BlockQ8_0],
        xs: [&[BlockQ8_0]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: as the caller promises.
        unsafe { q8_0_body::<A, true>(w, xs, out) }
    }

    #[inline(always)]
    unsafe fn q8_0_body<const A: usize, const VNNI: bool>(
        w: &[BlockQ8_0],
        xs: [&[BlockQ8_0]; A],
        out: &mut [f32; A],
    ) {
        // SAFETY: the entry points checked the CPU features.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); A];
            for (ib, wb) in w.iter().enumerate() {
                let d0 = f16(wb.d);
                // SAFETY: 32 bytes.
                let qw = _mm256_loadu_si256(wb.qs.as_ptr().cast());
                let aw = _mm256_sign_epi8(qw, qw);
                for a in 0..A {
                    // SAFETY: the caller promises xs[a].len() >= w.len().
                    let xb = xs[a].get_unchecked(ib);
                    let d = _mm256_set1_ps(d0 * f16(xb.d));
                    // SAFETY: 32 bytes.
                    let qy = _mm256_loadu_si256(xb.qs.as_ptr().cast());
                    let sy = _mm256_sign_epi8(qy, qw);
                    acc[a] = _mm256_fmadd_ps(d, mul_sum_us8::<VNNI>(aw, sy), acc[a]);
                }
            }
            for a in 0..A {
                out[a] = hsum(acc[a]);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::blocks::{quantize_row_q8_0, quantize_row_q8_1};
    use half::f16;

    /// Deterministic pseudo-random floats (xorshift), centred on 0.
    pub(crate) fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn q4_1_row(k: usize, seed: u64) -> Vec<BlockQ4_1> {
        let bytes: Vec<u8> = noise(k / 2, seed)
            .iter()
            .map(|v| ((v + 1.0) * 127.9) as u8)
            .collect();
        let scales = noise(2 * k / 32, seed + 7);
        bytes
            .chunks_exact(16)
            .enumerate()
            .map(|(i, qs)| BlockQ4_1 {
                d: f16::from_f32(scales[2 * i].abs() * 0.02),
                m: f16::from_f32(scales[2 * i + 1] * 0.1),
                qs: qs.try_into().unwrap(),
            })
            .collect()
    }

    #[test]
    fn scalar_q4_1_is_close_to_float_math() {
        let k = 576;
        let w = q4_1_row(k, 1);
        let x = noise(k, 2);
        let mut xq = vec![BlockQ8_1::default(); k / 32];
        quantize_row_q8_1(&x, &mut xq);
        let mut wf = vec![0f32; k];
        for (b, o) in w.iter().zip(wf.chunks_exact_mut(32)) {
            b.dequantize(o);
        }
        let exact: f32 = wf.iter().zip(&x).map(|(a, b)| a * b).sum();
        let got = q4_1_q8_1_scalar(&w, &xq);
        // Q8 activations: relative error well under 1 %.
        assert!((got - exact).abs() < 0.01 * wf.iter().map(|v| v.abs()).sum::<f32>() / 10.0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_matches_scalar_bit_for_bit() {
        // The VNNI kernels are compared below too: both or a skip.
        if !crate::simd_check::require(have_avx2() && have_vnni(), "AVX2 with AVX-512 VNNI") {
            return;
        }
        for (k, seed) in [(32, 3), (576, 4), (1536, 5)] {
            let w4 = q4_1_row(k, seed);
            let wf = noise(k, seed + 1);
            let mut w8 = vec![BlockQ8_0::default(); k / 32];
            quantize_row_q8_0(&wf, &mut w8);
            let xs: Vec<Vec<f32>> = (0..TILE as u64).map(|i| noise(k, seed * 10 + i)).collect();
            let q81: Vec<Vec<BlockQ8_1>> = xs
                .iter()
                .map(|x| {
                    let mut q = vec![BlockQ8_1::default(); k / 32];
                    quantize_row_q8_1(x, &mut q);
                    q
                })
                .collect();
            let q80: Vec<Vec<BlockQ8_0>> = xs
                .iter()
                .map(|x| {
                    let mut q = vec![BlockQ8_0::default(); k / 32];
                    quantize_row_q8_0(x, &mut q);
                    q
                })
                .collect();
            let mut four = [0f32; TILE];
            let mut one = [0f32; 1];
            unsafe {
                avx2::q4_1_q8_1::<TILE>(&w4, std::array::from_fn(|a| &q81[a][..]), &mut four);
            }
            for a in 0..TILE {
                unsafe { avx2::q4_1_q8_1::<1>(&w4, [&q81[a][..]], &mut one) };
                let s = q4_1_q8_1_scalar(&w4, &q81[a]);
                assert_eq!(four[a].to_bits(), s.to_bits(), "q4_1 k {k} row {a}");
                assert_eq!(one[0].to_bits(), s.to_bits(), "q4_1 k {k} row {a} alone");
                if have_vnni() {
                    unsafe { avx2::q4_1_q8_1_vnni::<1>(&w4, [&q81[a][..]], &mut one) };
                    assert_eq!(one[0].to_bits(), s.to_bits(), "q4_1 k {k} row {a} vnni");
                }
            }
            unsafe {
                avx2::q8_0_q8_0::<TILE>(&w8, std::array::from_fn(|a| &q80[a][..]), &mut four);
            }
            for a in 0..TILE {
                unsafe { avx2::q8_0_q8_0::<1>(&w8, [&q80[a][..]], &mut one) };
                let s = q8_0_q8_0_scalar(&w8, &q80[a]);
                assert_eq!(four[a].to_bits(), s.to_bits(), "q8_0 k {k} row {a}");
                assert_eq!(one[0].to_bits(), s.to_bits(), "q8_0 k {k} row {a} alone");
                if have_vnni() {
                    unsafe { avx2::q8_0_q8_0_vnni::<1>(&w8, [&q80[a][..]], &mut one) };
                    assert_eq!(one[0].to_bits(), s.to_bits(), "q8_0 k {k} row {a} vnni");
                }
            }
        }
    }
}
