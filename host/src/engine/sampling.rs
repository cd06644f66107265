//! Picking the next token from logits: greedy, or temperature + top-k +
//! nucleus (top-p) sampling with a per-request RNG, after an optional
//! repetition penalty; and the log-probabilities reported to callers.
//!
//! Each request owns its RNG, seeded from its own `seed`, so its tokens do
//! not depend on what other requests ran before or alongside it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{EngineError, GenParams};

/// How many of the most recent tokens (prompt and output together) the
/// repetition penalty looks at: llama.cpp's default `repeat_last_n`.
pub const REPETITION_WINDOW: usize = 64;

/// Token selection for one request.
#[derive(Debug)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    top_k: usize,
    repetition_penalty: f32,
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
            top_k: 0,
            repetition_penalty: 1.0,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// Every control of `params`: temperature, top-p, top-k, repetition
    /// penalty and seed.
    pub fn from_params(params: &GenParams) -> Result<Self, EngineError> {
        let mut s = Self::new(params.temperature, params.top_p, params.seed)?;
        if !(params.repetition_penalty.is_finite() && params.repetition_penalty > 0.0) {
            return Err(EngineError::InvalidParams(format!(
                "repetition_penalty must be > 0, got {}",
                params.repetition_penalty
            )));
        }
        s.top_k = params.top_k as usize;
        s.repetition_penalty = params.repetition_penalty;
        Ok(s)
    }

    /// Whether the next token is always the raw logits' argmax (greedy, no
    /// repetition penalty): then a device model can pick it where the
    /// logits are, and only the token id crosses to the host.
    pub fn is_plain_greedy(&self) -> bool {
        (self.temperature == 0.0 || self.top_k == 1) && self.repetition_penalty == 1.0
    }

    /// The next token after `history` (prompt + output so far) given the
    /// model's raw `logits`.
    pub fn sample_with_history(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        if self.repetition_penalty == 1.0 {
            return self.sample(logits);
        }
        let mut penalised = logits.to_vec();
        apply_repetition_penalty(&mut penalised, history, self.repetition_penalty);
        self.sample(&penalised)
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature == 0.0 || self.top_k == 1 {
            return argmax(logits);
        }
        sample_top_p(
            logits,
            self.temperature,
            self.top_k,
            self.top_p,
            &mut self.rng,
        )
    }
}

/// llama.cpp's `repeat_penalty` (CTRL, Keskar et al. 2019): each distinct
/// token among the last [`REPETITION_WINDOW`] of `history` has its logit
/// divided by `penalty` when positive and multiplied by it when negative, so
/// a penalty > 1 always makes it less likely.
pub fn apply_repetition_penalty(logits: &mut [f32], history: &[u32], penalty: f32) {
    let window = &history[history.len().saturating_sub(REPETITION_WINDOW)..];
    let mut seen = std::collections::HashSet::with_capacity(window.len());
    for &id in window {
        let Some(l) = logits.get_mut(id as usize) else {
            continue;
        };
        if seen.insert(id) {
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// Natural-log softmax of raw logits, in f64 for the tail of the vocabulary.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&l| (l as f64 - log_z) as f32).collect()
}

/// The `n` best (id, log-probability) pairs, best first, ties by lower id.
pub fn top_n(logprobs: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(n + 1);
    for (i, &lp) in logprobs.iter().enumerate() {
        if best.len() == n && best.last().is_none_or(|&(_, w)| lp <= w) {
            continue;
        }
        let at = best.partition_point(|&(_, v)| v >= lp);
        best.insert(at, (i as u32, lp));
        best.truncate(n);
    }
    best
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

fn sample_top_p(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: &mut StdRng,
) -> u32 {
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
    // Descending probability, ties by id, so the kept set is well defined.
    probs.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // top-k first, then top-p over what is left (llama.cpp's order).
    if top_k > 0 {
        probs.truncate(top_k);
    }
    let total: f64 = probs.iter().map(|(_, p)| p).sum();
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

    #[test]
    fn top_k_keeps_only_the_k_best() {
        let l = logits();
        let mut best: Vec<u32> = (0..100).collect();
        best.sort_by(|&a, &b| l[b as usize].total_cmp(&l[a as usize]).then(a.cmp(&b)));
        let params = GenParams {
            temperature: 5.0,
            top_k: 3,
            seed: 11,
            ..GenParams::greedy(1)
        };
        let mut s = Sampler::from_params(&params).unwrap();
        let drawn: std::collections::BTreeSet<u32> = (0..300).map(|_| s.sample(&l)).collect();
        assert!(drawn.iter().all(|id| best[..3].contains(id)), "{drawn:?}");
        assert_eq!(drawn.len(), 3, "a hot temperature should reach all three");
    }

    #[test]
    fn repetition_penalty_follows_llama_cpp() {
        let mut l = vec![2.0, -2.0, 1.0, 4.0];
        apply_repetition_penalty(&mut l, &[0, 1, 1, 1], 2.0);
        // Positive divided, negative multiplied, each token once.
        assert_eq!(l, vec![1.0, -4.0, 1.0, 4.0]);
        // Only the last REPETITION_WINDOW tokens count.
        let mut l = vec![2.0, 2.0];
        let mut history = vec![0u32];
        history.extend(std::iter::repeat_n(1, REPETITION_WINDOW));
        apply_repetition_penalty(&mut l, &history, 2.0);
        assert_eq!(l, vec![2.0, 1.0]);
        // Greedy picks the runner-up once the leader is penalised.
        let params = GenParams {
            repetition_penalty: 3.0,
            ..GenParams::greedy(1)
        };
        let mut s = Sampler::from_params(&params).unwrap();
        assert_eq!(s.sample_with_history(&[3.0, 2.0], &[0]), 1);
        assert_eq!(s.sample_with_history(&[3.0, 2.0], &[5]), 0);
    }

    #[test]
    fn log_softmax_and_top_n() {
        let lp = log_softmax(&[1.0, 3.0, 2.0, 3.0]);
        let total: f64 = lp.iter().map(|&x| (x as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!((lp[1] - lp[0] - 2.0).abs() < 1e-6);
        assert_eq!(
            top_n(&lp, 3).iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![1, 3, 2]
        );
        assert_eq!(top_n(&lp, 0), vec![]);
        assert_eq!(top_n(&lp, 10).len(), 4);
    }
}
