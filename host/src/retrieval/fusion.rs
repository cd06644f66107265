//! Combining rankings: reciprocal-rank fusion (Cormack et al. 2009) and a
//! weighted sum of min-max-normalised scores. Rankings are `(item, score)`
//! lists, best first; the output is best first, ties broken by lower item.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::dense::sort_hits;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Σ 1 / (k + rank), rank from 1.
    #[default]
    Rrf,
    /// w · dense' + (1 − w) · sparse', each min-max normalised over its list
    /// (an item missing from a list counts 0 there).
    Weighted,
}

pub const DEFAULT_RRF_K: f64 = 60.0;

/// Reciprocal-rank fusion of any number of rankings.
pub fn rrf(rankings: &[&[(u32, f64)]], k: f64) -> Vec<(u32, f64)> {
    let mut acc: HashMap<u32, f64> = HashMap::new();
    for r in rankings {
        for (rank, (item, _)) in r.iter().enumerate() {
            *acc.entry(*item).or_default() += 1.0 / (k + rank as f64 + 1.0);
        }
    }
    finish(acc)
}

/// Min-max normalisation to [0, 1]; a list of equal scores maps to 1.
pub fn min_max(r: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let lo = r.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    let hi = r.iter().map(|h| h.1).fold(f64::NEG_INFINITY, f64::max);
    r.iter()
        .map(|&(i, s)| (i, if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }))
        .collect()
}

/// `dense_weight` · dense + (1 − `dense_weight`) · sparse, normalised.
pub fn weighted(dense: &[(u32, f64)], sparse: &[(u32, f64)], dense_weight: f64) -> Vec<(u32, f64)> {
    let mut acc: HashMap<u32, f64> = HashMap::new();
    for (list, w) in [(dense, dense_weight), (sparse, 1.0 - dense_weight)] {
        for (item, s) in min_max(list) {
            *acc.entry(item).or_default() += w * s;
        }
    }
    finish(acc)
}

fn finish(acc: HashMap<u32, f64>) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = acc.into_iter().collect();
    sort_hits(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &[(u32, f64)]) -> Vec<u32> {
        r.iter().map(|h| h.0).collect()
    }

    #[test]
    fn rrf_rewards_agreement_over_one_high_rank() {
        // dense: 1 2 3 4; bm25: 3 5 1 (scores are ignored by RRF).
        let dense = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.1)];
        let sparse = [(3, 20.0), (5, 10.0), (1, 1.0)];
        let f = rrf(&[&dense, &sparse], 60.0);
        // 1: 1/61+1/63, 3: 1/63+1/61 (tie, lower id first), 5: 1/62, 2: 1/62, 4: 1/64.
        assert_eq!(ids(&f), [1, 3, 2, 5, 4]);
        assert!((f[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
        assert!((f[1].1 - f[0].1).abs() < 1e-12);
        // k = 1: 1 and 3 tie at 1/2 + 1/4; 2 and 5 at 1/3; 4 at 1/5.
        let f = rrf(&[&dense, &sparse], 1.0);
        assert_eq!(ids(&f), [1, 3, 2, 5, 4]);
        assert!((f[2].1 - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rrf_of_one_ranking_keeps_it() {
        let r = [(9, 3.0), (4, 2.0), (7, 1.0)];
        assert_eq!(ids(&rrf(&[&r], 60.0)), [9, 4, 7]);
    }

    #[test]
    fn weighted_normalises_each_list_before_mixing() {
        // bm25 scores are on another scale than cosines: normalisation makes
        // the weight mean what it says.
        let dense = [(1, 0.75), (2, 0.5), (3, 0.25)];
        let sparse = [(3, 30.0), (2, 20.0), (4, 10.0)];
        // dense': 1→1, 2→.5, 3→0; sparse': 3→1, 2→.5, 4→0.
        let f = weighted(&dense, &sparse, 0.5);
        // 1: .5, 2: .5, 3: .5, 4: 0 → ties by id.
        assert_eq!(ids(&f), [1, 2, 3, 4]);
        let f = weighted(&dense, &sparse, 0.8);
        // 1: .8, 2: .5, 3: .2, 4: 0
        assert_eq!(ids(&f), [1, 2, 3, 4]);
        assert!((f[0].1 - 0.8).abs() < 1e-12 && (f[2].1 - 0.2).abs() < 1e-12);
        let f = weighted(&dense, &sparse, 0.2);
        // 3: .8, 2: .5, 1: .2, 4: 0
        assert_eq!(ids(&f), [3, 2, 1, 4]);
        assert_eq!(min_max(&[(1, 5.0), (2, 5.0)]), [(1, 1.0), (2, 1.0)]);
    }
}
