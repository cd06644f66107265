//! Picking the next token from logits: greedy, or temperature + nucleus
//! (top-p) sampling with a per-request RNG.
//!
//! Each request owns its RNG, seeded from its own `seed`, so its tokens do
//! not depend on what other requests ran before or alongside it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::EngineError;

/// Token selection for one request.
#[derive(Debug)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: StdRng,
}

impl Sampler {
    /// `temperature == 0` means greedy; `top_p` in (0, 1] keeps the smallest
    /// set of tokens whose probability mass reaches it.
    pub fn new(temperature: f32, top_p: f32, seed: u64) -> Result<Self, EngineError> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(EngineError::InvalidParams(format!(
                "temperature must be >= 0, got {temperature}"
            )));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(EngineError::InvalidParams(format!(
                "top_p must be in (0, 1], got {top_p}"
            )));
        }
        Ok(Self {
            temperature,
            top_p,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        sample_top_p(logits, self.temperature, self.top_p, &mut self.rng)
    }
}

/// Index of the largest logit; ties go to the lowest id so greedy decoding is
/// deterministic. NaNs never win.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut StdRng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return argmax(logits);
    }
    // Softmax in f64: the tail of a 49k vocabulary underflows easily in f32.
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, (((l - max) / temperature) as f64).exp()))
        .filter(|(_, p)| *p > 0.0)
        .collect();
    let total: f64 = probs.iter().map(|(_, p)| p).sum();
    // Descending probability, ties by id, so the kept set is well defined.
    probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0;
    let mut mass = 0.0;
    for (_, p) in &probs {
        kept += 1;
        mass += p / total;
        if mass >= top_p as f64 {
            break;
        }
    }
    probs.truncate(kept.max(1));
    let kept_total: f64 = probs.iter().map(|(_, p)| p).sum();
    let mut r = rng.random::<f64>() * kept_total;
    for &(id, p) in &probs {
        if r < p {
            return id;
        }
        r -= p;
    }
    probs.last().map(|(id, _)| *id).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        (0..100).map(|i| ((i * 37) % 100) as f32 / 20.0).collect()
    }

    #[test]
    fn greedy_is_argmax_with_lowest_id_on_ties() {
        let mut s = Sampler::new(0.0, 1.0, 1).unwrap();
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
        let l = logits();
        let max_id = argmax(&l);
        assert_eq!(
            l[max_id as usize],
            l.iter().copied().fold(f32::MIN, f32::max)
        );
    }

    #[test]
    fn same_seed_same_tokens() {
        let l = logits();
        let run = |seed| {
            let mut s = Sampler::new(1.0, 0.95, seed).unwrap();
            (0..50).map(|_| s.sample(&l)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(
            run(7),
            run(8),
            "different seeds should differ over 50 draws"
        );
    }

    #[test]
    fn tiny_top_p_is_argmax() {
        let l = logits();
        let mut s = Sampler::new(1.5, 1e-6, 3).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&l), argmax(&l));
        }
    }

    #[test]
    fn rejects_bad_params() {
        assert!(Sampler::new(-1.0, 1.0, 0).is_err());
        assert!(Sampler::new(1.0, 0.0, 0).is_err());
        assert!(Sampler::new(1.0, 1.5, 0).is_err());
    }
}
