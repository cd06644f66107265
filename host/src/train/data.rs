//! Preference data for training: the rows (read by
//! `experiment::datasets::preference`, the one preference JSONL reader:
//! line-numbered errors, empty sides skipped and counted) and the seeded
//! train/validation split.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

// The reader lives with the datasets, which experiments read too
// (`[dataset] kind = "preference"`); training keeps its paths.
pub use crate::experiment::datasets::preference::{DataError, PreferenceData, PreferenceRow};

/// Seeded split of `n` rows: `(train, validation)` indices, each in file
/// order. The validation set is `round(n · fraction)` rows, at least one
/// when the fraction is positive and there are two or more rows.
pub fn split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut n_val = (n as f64 * fraction).round() as usize;
    if fraction > 0.0 && n >= 2 {
        n_val = n_val.clamp(1, n - 1);
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let (t, v) = split(20, 0.1, 7);
        assert_eq!((t.len(), v.len()), (18, 2));
        assert_eq!(split(20, 0.1, 7), (t.clone(), v.clone()));
        assert_ne!(split(20, 0.1, 8).1, v);
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(split(5, 0.0, 1).1.len(), 0);
        assert_eq!(split(3, 0.01, 1).1.len(), 1);
    }
}
