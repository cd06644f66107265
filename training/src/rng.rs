//! Seeded randomness whose state a checkpoint can store exactly.
//!
//! Dropout masks are not drawn from one running stream: each micro-batch
//! takes a key from [`TrainRng`] and every (layer, projection) mask is
//! generated from that key alone. So recomputing a layer in the backward
//! pass (activation checkpointing) redraws the same mask, and the whole
//! state is two integers.

use candle_core::{DType, Device, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The trainer's random state: a seed and how many keys were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRng {
    pub seed: u64,
    pub draws: u64,
}

impl TrainRng {
    pub fn new(seed: u64) -> Self {
        Self { seed, draws: 0 }
    }

    /// The next micro-batch's dropout key.
    pub fn next_key(&mut self) -> u64 {
        let key = splitmix64(self.seed ^ splitmix64(self.draws));
        self.draws += 1;
        key
    }
}

/// SplitMix64's output function: a well-mixed u64 from any u64.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Inverted dropout mask (0 or `1/(1-p)`) for one (layer, projection) of a
/// micro-batch: the same key and stream give the same mask.
pub(crate) fn dropout_mask(
    key: u64,
    stream: u64,
    p: f64,
    shape: &Shape,
    dtype: DType,
) -> candle_core::Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    rng.set_stream(stream);
    let keep = 1.0 / (1.0 - p);
    let v: Vec<f32> = (0..shape.elem_count())
        .map(|_| {
            if rng.random::<f64>() < p {
                0.0
            } else {
                keep as f32
            }
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// A standard normal draw (Box–Muller), for random test models.
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reproducible_from_the_stored_state() {
        let mut a = TrainRng::new(7);
        let first: Vec<u64> = (0..5).map(|_| a.next_key()).collect();
        let mut resumed = TrainRng { seed: 7, draws: 3 };
        assert_eq!(resumed.next_key(), first[3]);
        assert_eq!(a.draws, 5);
        let mut other = TrainRng::new(8);
        assert_ne!(other.next_key(), first[0]);
    }

    #[test]
    fn dropout_mask_rate_and_scale() {
        let shape = Shape::from((200, 50));
        let m = dropout_mask(1, 2, 0.25, &shape, DType::F32).unwrap();
        let v = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let zeros = v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64;
        assert!((zeros - 0.25).abs() < 0.02, "dropped {zeros}");
        assert!(v.iter().all(|&x| x == 0.0 || (x - 4.0 / 3.0).abs() < 1e-6));
        let again = dropout_mask(1, 2, 0.25, &shape, DType::F32).unwrap();
        assert_eq!(again.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v);
        let other = dropout_mask(1, 3, 0.25, &shape, DType::F32).unwrap();
        assert_ne!(other.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v);
    }
}
