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
    if crate::cpu::have_avx2() {
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
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::have_avx512() && hd.is_multiple_of(64) {
        // SAFETY: AVX-512F/DQ checked (F16C/FMA come with it on every such
        // CPU, and have_avx512 also requires AVX2/FMA/F16C); hd is whole
        // steps of 64.
        unsafe {
            match hd / 16 {
                4 => return avx512::attend_row::<4>(q, k, v, stride, n, scale, out),
                8 => return avx512::attend_row::<8>(q, k, v, stride, n, scale, out),
                16 => return avx512::attend_row::<16>(q, k, v, stride, n, scale, out),
                _ => {}
            }
        }
    }
    attend_row_generic(q, k, v, stride, n, scale, q16, acc, out)
}

/// [`attend_row`] in f32 throughout: no rounding of the query, keys,
/// values or accumulator to f16, a two-pass softmax with its sum in f64.
/// The arithmetic of a training forward, for comparing the two (the engine
/// uses it with `weights = "f32"`); `scores` is scratch of `n` floats.
#[allow(clippy::too_many_arguments)]
pub fn attend_row_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    n: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    scores.clear();
    scores.extend((0..n).map(|j| {
        let key = &k[j * stride..][..hd];
        key.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() * scale
    }));
    let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0f64;
    for s in scores.iter_mut() {
        *s = (*s - m).exp();
        total += *s as f64;
    }
    out.iter_mut().for_each(|o| *o = 0.0);
    for (j, &w) in scores.iter().enumerate() {
        let w = (w as f64 / total) as f32;
        for (o, &x) in out.iter_mut().zip(&v[j * stride..][..hd]) {
            *o += w * x;
        }
    }
}

/// [`attend_row`] through slices (any head size, any CPU): the reference
/// the register-resident AVX-512 row must equal bit for bit.
#[allow(clippy::too_many_arguments)]
fn attend_row_generic(
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
        let score = dot_f16(&k[j * stride..][..hd], q16) * scale;
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
        // GCC contracts ggml's `S = S*ms + vs` into one FMA.
        s = s.mul_add(ms, vs);
    }
    let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = a * inv;
    }
}

/// `k . q` of two f16-exact rows as ggml's `ggml_vec_dot_f16` sums it
/// on this CPU: four accumulators of 16 lanes (AVX-512) or 8 (AVX2),
/// fused multiply-adds over steps of 64 (32), the accumulators added
/// pairwise, the lanes halved down, then any tail added in f64.
pub fn dot_f16(k: &[f32], q: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::have_avx512() {
            // SAFETY: AVX-512F/DQ checked.
            return unsafe { avx512::dot(k, q) };
        }
        if crate::cpu::have_avx2() {
            // SAFETY: AVX2/FMA checked.
            return unsafe { avx2::dot(k, q) };
        }
    }
    k.iter().zip(q).fold(0f64, |s, (a, b)| s + (a * b) as f64) as f32
}

/// The f64 tail of [`dot_f16`] after the vector part `np`.
#[cfg(target_arch = "x86_64")]
fn dot_tail(sum: f32, k: &[f32], q: &[f32], np: usize) -> f32 {
    let mut s = sum as f64;
    for i in np..k.len().min(q.len()) {
        s += (k[i] * q[i]) as f64;
    }
    s as f32
}

/// `acc = f16(acc * c)` (ggml_vec_scale_f16).
fn scale_f16(acc: &mut [f32], c: f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::have_avx2() && acc.len().is_multiple_of(8) {
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
    if crate::cpu::have_avx2() && acc.len().is_multiple_of(8) {
        // SAFETY: features checked, whole vectors.
        return unsafe { avx2::mad_f16(acc, x, c) };
    }
    for (a, &v) in acc.iter_mut().zip(x) {
        *a = f16::from_f32(v.mul_add(c, *a)).to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// `_mm512_reduce_add_ps` as GCC expands it: 256-bit halves, 128-bit
    /// halves, then `(l0 + l2) + (l1 + l3)`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn reduce(x: __m512) -> f32 {
        let h = _mm256_add_ps(_mm512_extractf32x8_ps::<1>(x), _mm512_castps512_ps256(x));
        let t = _mm_add_ps(_mm256_extractf128_ps::<1>(h), _mm256_castps256_ps128(h));
        let mut l = [0f32; 4];
        // SAFETY: four floats.
        unsafe { _mm_storeu_ps(l.as_mut_ptr(), t) };
        (l[0] + l[2]) + (l[1] + l[3])
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn round16(x: __m512) -> __m512 {
        _mm512_cvtph_ps(_mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    /// The flash-attention row with the query and the f16 accumulator held
    /// in `N` registers (head size 16 N, N a multiple of 4): the same
    /// operations in the same order as the generic row (ggml's
    /// `vec_dot_f16` lanes, `vec_scale_f16`, `vec_mad_f16`, FMA running
    /// sum), without a load and store of the accumulator per position.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma,f16c")]
    pub unsafe fn attend_row<const N: usize>(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        stride: usize,
        n: usize,
        scale: f32,
        out: &mut [f32],
    ) {
        assert!(q.len() >= 16 * N && out.len() >= 16 * N);
        assert!(
            n == 0
                || (k.len() >= (n - 1) * stride + 16 * N && v.len() >= (n - 1) * stride + 16 * N)
        );
        // SAFETY (every raw load below): bounds asserted above.
        let mut qv = [_mm512_setzero_ps(); N];
        for (i, x) in qv.iter_mut().enumerate() {
            *x = round16(unsafe { _mm512_loadu_ps(q.as_ptr().add(16 * i)) });
        }
        let mut acc = [_mm512_setzero_ps(); N];
        let (mut m, mut s) = (f32::NEG_INFINITY, 0f32);
        for j in 0..n {
            let (kp, vp) = unsafe { (k.as_ptr().add(j * stride), v.as_ptr().add(j * stride)) };
            let mut sum = [_mm512_setzero_ps(); 4];
            for (i, &qi) in qv.iter().enumerate() {
                let kv = unsafe { _mm512_loadu_ps(kp.add(16 * i)) };
                sum[i % 4] = _mm512_fmadd_ps(kv, qi, sum[i % 4]);
            }
            let x = _mm512_add_ps(_mm512_add_ps(sum[0], sum[2]), _mm512_add_ps(sum[1], sum[3]));
            let score = reduce(x) * scale;
            let (mut ms, mut vs) = (1f32, 1f32);
            if score > m {
                let old = m;
                m = score;
                ms = (old - m).exp();
                let c = _mm512_set1_ps(ms);
                for a in acc.iter_mut() {
                    *a = round16(_mm512_mul_ps(*a, c));
                }
            } else {
                vs = (score - m).exp();
            }
            let c = _mm512_set1_ps(vs);
            for (i, a) in acc.iter_mut().enumerate() {
                let vv = unsafe { _mm512_loadu_ps(vp.add(16 * i)) };
                *a = round16(_mm512_fmadd_ps(vv, c, *a));
            }
            s = s.mul_add(ms, vs);
        }
        let inv = _mm512_set1_ps(if s == 0.0 { 0.0 } else { 1.0 / s });
        for (i, a) in acc.iter().enumerate() {
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(16 * i), _mm512_mul_ps(*a, inv)) };
        }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn dot(k: &[f32], q: &[f32]) -> f32 {
        let n = k.len().min(q.len());
        let np = n & !63;
        let mut acc = [_mm512_setzero_ps(); 4];
        for i in (0..np).step_by(64) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 64 <= np <= n.
                unsafe {
                    let x = _mm512_loadu_ps(k.as_ptr().add(i + 16 * j));
                    let y = _mm512_loadu_ps(q.as_ptr().add(i + 16 * j));
                    *a = _mm512_fmadd_ps(x, y, *a);
                }
            }
        }
        let x = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
        super::dot_tail(reduce(x), k, q, np)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(k: &[f32], q: &[f32]) -> f32 {
        let n = k.len().min(q.len());
        let np = n & !31;
        let mut acc = [_mm256_setzero_ps(); 4];
        for i in (0..np).step_by(32) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 32 <= np <= n.
                unsafe {
                    let x = _mm256_loadu_ps(k.as_ptr().add(i + 8 * j));
                    let y = _mm256_loadu_ps(q.as_ptr().add(i + 8 * j));
                    *a = _mm256_fmadd_ps(x, y, *a);
                }
            }
        }
        let x = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
        let t0 = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
        let t1 = _mm_hadd_ps(t0, t0);
        let s = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
        super::dot_tail(s, k, q, np)
    }

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

    /// The f32 row is softmax attention computed in f64 to within f32
    /// rounding, on keys and values that are not f16-exact.
    #[test]
    fn f32_row_is_plain_softmax_attention() {
        let (hd, n, stride) = (48, 29, 96);
        let k = noise(n * stride, 4);
        let v = noise(n * stride, 5);
        let q = noise(hd, 6);
        let (mut scores, mut out) = (Vec::new(), vec![0f32; hd]);
        attend_row_f32(&q, &k, &v, stride, n, 0.2, &mut scores, &mut out);
        let s: Vec<f64> = (0..n)
            .map(|j| {
                (0..hd)
                    .map(|d| k[j * stride + d] as f64 * q[d] as f64)
                    .sum::<f64>()
                    * 0.2
            })
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let total: f64 = w.iter().sum();
        for d in 0..hd {
            let want: f64 = (0..n).map(|j| w[j] * v[j * stride + d] as f64).sum::<f64>() / total;
            assert!(
                (out[d] as f64 - want).abs() < 1e-6,
                "dim {d}: {} vs {want}",
                out[d]
            );
        }
        // One position: the value row itself.
        attend_row_f32(&q, &k, &v, stride, 1, 0.2, &mut scores, &mut out);
        assert_eq!(out, v[..hd]);
    }

    /// ggml_vec_dot_f16's layout with `w` lanes, written out lane by lane.
    fn dot_reference(k: &[f32], q: &[f32], w: usize) -> f32 {
        let step = 4 * w;
        let np = k.len() / step * step;
        let mut acc = vec![vec![0f32; w]; 4];
        for i in (0..np).step_by(step) {
            for (j, a) in acc.iter_mut().enumerate() {
                for (l, v) in a.iter_mut().enumerate() {
                    *v = k[i + j * w + l].mul_add(q[i + j * w + l], *v);
                }
            }
        }
        let x: Vec<f32> = (0..w)
            .map(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]))
            .collect();
        let mut h = x;
        while h.len() > 4 {
            let half = h.len() / 2;
            h = (0..half).map(|l| h[l] + h[half + l]).collect();
        }
        let s = if w == 16 {
            (h[0] + h[2]) + (h[1] + h[3])
        } else {
            (h[0] + h[1]) + (h[2] + h[3])
        };
        let mut sum = s as f64;
        for i in np..k.len() {
            sum += (k[i] * q[i]) as f64;
        }
        sum as f32
    }

    #[test]
    fn dot_f16_follows_ggml_lane_layout() {
        for n in [64, 72, 256, 20] {
            let mut k = noise(n, 7 + n as u64);
            let mut q = noise(n, 8 + n as u64);
            round_to_f16(&mut k);
            round_to_f16(&mut q);
            #[cfg(target_arch = "x86_64")]
            {
                if crate::cpu::have_avx512() {
                    assert_eq!(dot_f16(&k, &q), dot_reference(&k, &q, 16), "n {n}");
                }
                if crate::cpu::have_avx2() {
                    // SAFETY: checked.
                    let avx2 = unsafe { avx2::dot(&k, &q) };
                    assert_eq!(avx2, dot_reference(&k, &q, 8), "avx2, n {n}");
                }
            }
            let plain: f32 = k.iter().zip(&q).map(|(a, b)| a * b).sum();
            assert!((dot_f16(&k, &q) - plain).abs() < 1e-4);
        }
    }

    /// The register-resident AVX-512 row equals the generic row bit for
    /// bit (head sizes 64 and 128, a new maximum mid-way and at the start).
    #[test]
    fn avx512_row_equals_the_generic_row() {
        if !crate::simd_check::require(crate::ops::have_avx512(), "AVX-512F/DQ") {
            return;
        }
        for (hd, n) in [(64, 37), (128, 9), (64, 1)] {
            let stride = 3 * hd;
            let mut k = noise(n * stride, 11 + hd as u64);
            let mut v = noise(n * stride, 12 + hd as u64);
            round_to_f16(&mut k);
            round_to_f16(&mut v);
            let q: Vec<f32> = noise(hd, 13).iter().map(|x| x * 4.0).collect();
            let (mut q16, mut acc) = (vec![0f32; hd], vec![0f32; hd]);
            let mut want = vec![0f32; hd];
            attend_row_generic(&q, &k, &v, stride, n, 0.125, &mut q16, &mut acc, &mut want);
            let mut got = vec![0f32; hd];
            attend_row(&q, &k, &v, stride, n, 0.125, &mut q16, &mut acc, &mut got);
            assert_eq!(got, want, "hd {hd}, n {n}");
        }
    }

    #[test]
    fn simd_and_scalar_accumulation_agree() {
        if !crate::simd_check::require(crate::dot::have_avx2(), "AVX2/FMA/F16C") {
            return;
        }
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
