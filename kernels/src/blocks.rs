//! GGML's 32-element quantized blocks, byte-compatible with the GGUF file,
//! and the activation quantisers exactly as llama.cpp's x86 build runs them
//! (`quantize_row_q8_0` / `quantize_row_q8_1` in ggml-cpu/arch/x86/quants.c).

use half::f16;

/// Elements per block, for every type here.
pub const QK: usize = 32;

/// `d * q + m` with 4-bit `q`; element `j < 16` is the low nibble of
/// `qs[j]`, element `j + 16` its high nibble. 20 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; 16],
}

/// `d * q` with signed 8-bit `q`. 34 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; 32],
}

/// As Q8_0, plus `s = d * sum(q)` (what Q4_1's offset `m` multiplies).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{len} bytes is not a whole number of {size}-byte {ty} blocks")]
    Length {
        len: usize,
        size: usize,
        ty: &'static str,
    },
}

fn f16_at(b: &[u8], at: usize) -> f16 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]]))
}

impl BlockQ4_1 {
    pub const BYTES: usize = 20;

    /// Blocks from the GGUF tensor data (little-endian, packed).
    pub fn parse(bytes: &[u8]) -> Result<Vec<Self>, BlockError> {
        whole(bytes, Self::BYTES, "q4_1")?;
        Ok(bytes
            .chunks_exact(Self::BYTES)
            .map(|b| Self {
                d: f16_at(b, 0),
                m: f16_at(b, 2),
                qs: b[4..20].try_into().expect("16 bytes"),
            })
            .collect())
    }

    /// The block's 32 values (ggml's `dequantize_row_q4_1`).
    pub fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = (q & 0x0f) as f32 * d + m;
            out[j + 16] = (q >> 4) as f32 * d + m;
        }
    }
}

impl BlockQ8_0 {
    pub const BYTES: usize = 34;

    pub fn parse(bytes: &[u8]) -> Result<Vec<Self>, BlockError> {
        whole(bytes, Self::BYTES, "q8_0")?;
        Ok(bytes
            .chunks_exact(Self::BYTES)
            .map(|b| Self {
                d: f16_at(b, 0),
                qs: std::array::from_fn(|j| b[2 + j] as i8),
            })
            .collect())
    }

    /// The block's 32 values (ggml's `dequantize_row_q8_0`).
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }
}

fn whole(bytes: &[u8], size: usize, ty: &'static str) -> Result<(), BlockError> {
    if !bytes.len().is_multiple_of(size) {
        return Err(BlockError::Length {
            len: bytes.len(),
            size,
            ty,
        });
    }
    Ok(())
}

/// Scale and rounded values of one 32-float block, as the AVX path does
/// it: `d = amax / 127`, values times `127 / amax` (not divided by `d`),
/// rounded half to even (`_mm256_round_ps(.., _MM_ROUND_NEAREST)`).
#[inline(always)]
fn quantize_block(x: &[f32]) -> (f32, [i8; 32]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    // |x * id| <= 127 up to rounding, so the saturating cast is exact.
    // A plain loop, not `array::from_fn`: its closure is not inlined into
    // the AVX2 caller, and rounding there is a libm call per value.
    let mut qs = [0i8; 32];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round_ties_even() as i8;
    }
    (d, qs)
}

/// One row of `k` floats (`k` a multiple of 32) into Q8_0 blocks.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::have_avx2() {
        // SAFETY: the CPU has the features.
        return unsafe { q8_0_avx2(x, out) };
    }
    q8_0_generic(x, out)
}

/// The same code compiled for AVX2, where rounding is one instruction
/// (without it, `round_ties_even` is a libm call per value).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_avx2(x: &[f32], out: &mut [BlockQ8_0]) {
    q8_0_generic(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_1_avx2(x: &[f32], out: &mut [BlockQ8_1]) {
    q8_1_generic(x, out)
}

#[inline(always)]
fn q8_0_generic(x: &[f32], out: &mut [BlockQ8_0]) {
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, qs) = quantize_block(xs);
        *b = BlockQ8_0 {
            d: f16::from_f32(d),
            qs,
        };
    }
}

/// One row of `k` floats (`k` a multiple of 32) into Q8_1 blocks.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::have_avx2() {
        // SAFETY: the CPU has the features.
        return unsafe { q8_1_avx2(x, out) };
    }
    q8_1_generic(x, out)
}

#[inline(always)]
fn q8_1_generic(x: &[f32], out: &mut [BlockQ8_1]) {
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, qs) = quantize_block(xs);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        *b = BlockQ8_1 {
            d: f16::from_f32(d),
            s: f16::from_f32(d * sum as f32),
            qs,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_ggml() {
        assert_eq!(std::mem::size_of::<BlockQ4_1>(), 20);
        assert_eq!(std::mem::size_of::<BlockQ8_0>(), 34);
        assert_eq!(std::mem::size_of::<BlockQ8_1>(), 36);
    }

    #[test]
    fn q8_1_rounds_half_to_even_and_sums() {
        // amax 127 makes id exactly 1, so x.5 values hit the tie rule.
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        x[3] = 0.5;
        let mut b = [BlockQ8_1::default()];
        quantize_row_q8_1(&x, &mut b);
        assert_eq!(&b[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(b[0].s.to_f32(), 125.0);
    }

    #[test]
    fn simd_build_of_the_quantisers_matches_the_generic_one() {
        if !crate::simd_check::require(crate::dot::have_avx2(), "AVX2/FMA/F16C") {
            return;
        }
        let x = crate::dot::tests::noise(32 * 40, 5);
        let (mut a, mut b) = (
            vec![BlockQ8_1::default(); 40],
            vec![BlockQ8_1::default(); 40],
        );
        quantize_row_q8_1(&x, &mut a);
        q8_1_generic(&x, &mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (
            vec![BlockQ8_0::default(); 40],
            vec![BlockQ8_0::default(); 40],
        );
        quantize_row_q8_0(&x, &mut a);
        q8_0_generic(&x, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let mut b = [BlockQ8_0::default()];
        quantize_row_q8_0(&[0.0; 32], &mut b);
        assert_eq!(b[0].d.to_f32(), 0.0);
        assert!(b[0].qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn parse_rejects_partial_blocks_and_reads_fields() {
        assert!(BlockQ4_1::parse(&[0; 21]).is_err());
        let mut raw = vec![0u8; 20];
        raw[0..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        raw[2..4].copy_from_slice(&f16::from_f32(-1.0).to_bits().to_le_bytes());
        raw[4] = 0x3a; // element 0 = 0xa, element 16 = 0x3
        let b = BlockQ4_1::parse(&raw).unwrap();
        let mut out = [0f32; 32];
        b[0].dequantize(&mut out);
        assert_eq!(out[0], 10.0 * 0.5 - 1.0);
        assert_eq!(out[16], 3.0 * 0.5 - 1.0);
        assert_eq!(out[1], -1.0);
    }
}
