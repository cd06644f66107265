//! Dense retrieval over unit vectors: an HNSW graph (hnsw_rs) for fast
//! approximate search, and exact brute force over the same vectors (for
//! measuring the graph's recall, and for tiny corpora).

use hnsw_rs::prelude::{Distance, Hnsw};
use serde::{Deserialize, Serialize};

use super::embed::dot;

/// HNSW parameters (`[indexes.hnsw]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HnswParams {
    /// Links per node and layer.
    #[serde(default = "default_m")]
    pub m: usize,
    #[serde(default = "default_ef_construction")]
    pub ef_construction: usize,
    /// Candidate list size at query time (at least k is used).
    #[serde(default = "default_ef_search")]
    pub ef_search: usize,
}

fn default_m() -> usize {
    16
}
fn default_ef_construction() -> usize {
    200
}
fn default_ef_search() -> usize {
    64
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: default_m(),
            ef_construction: default_ef_construction(),
            ef_search: default_ef_search(),
        }
    }
}

/// Below this many vectors the graph is not worth building: search is exact.
pub const EXACT_BELOW: usize = 1000;

/// 1 − cosine for unit vectors, clamped at 0 (anndists' DistDot asserts on
/// the rounding error of nearly identical vectors).
#[derive(Clone, Copy, Default)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

pub struct DenseIndex {
    pub dim: usize,
    /// Row-major, one unit vector per chunk.
    vectors: Vec<f32>,
    hnsw: Option<Hnsw<'static, f32, UnitCosine>>,
    pub params: HnswParams,
}

impl DenseIndex {
    /// Builds the graph (unless there are fewer than [`EXACT_BELOW`] vectors
    /// or `graph` is false).
    pub fn build(dim: usize, vectors: Vec<f32>, params: HnswParams, graph: bool) -> Self {
        let n = vectors.len() / dim.max(1);
        let hnsw = (graph && n >= EXACT_BELOW).then(|| {
            let layers = 16;
            let h = Hnsw::new(params.m, n, layers, params.ef_construction, UnitCosine);
            let rows: Vec<(&[f32], usize)> = vectors.chunks_exact(dim).zip(0..).collect();
            h.parallel_insert_slice(&rows);
            h
        });
        Self {
            dim,
            vectors,
            hnsw,
            params,
        }
    }

    pub fn len(&self) -> usize {
        self.vectors.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_graph(&self) -> bool {
        self.hnsw.is_some()
    }

    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// Top `k` by cosine, best first: through the graph when there is one.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(u32, f64)> {
        match &self.hnsw {
            Some(h) => {
                let mut out: Vec<(u32, f64)> = h
                    .search(query, k, self.params.ef_search.max(k))
                    .into_iter()
                    .map(|n| (n.d_id as u32, 1.0 - n.distance as f64))
                    .collect();
                sort_hits(&mut out);
                out
            }
            None => self.search_exact(query, k),
        }
    }

    /// Top `k` by cosine over every vector.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<(u32, f64)> {
        let mut all: Vec<(u32, f64)> = self
            .vectors
            .chunks_exact(self.dim)
            .zip(0u32..)
            .map(|(v, i)| (i, dot(query, v) as f64))
            .collect();
        let k = k.min(all.len());
        if k == 0 {
            return Vec::new();
        }
        all.select_nth_unstable_by(k - 1, cmp_hits);
        all.truncate(k);
        sort_hits(&mut all);
        all
    }
}

/// Higher score first, then lower id (a stable order for ties).
fn cmp_hits(a: &(u32, f64), b: &(u32, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

pub(crate) fn sort_hits(h: &mut [(u32, f64)]) {
    h.sort_by(cmp_hits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn unit(rng: &mut rand::rngs::SmallRng, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn graph_agrees_with_exact_search() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let (dim, n) = (24, 2000);
        let flat: Vec<f32> = (0..n).flat_map(|_| unit(&mut rng, dim)).collect();
        let ix = DenseIndex::build(dim, flat, HnswParams::default(), true);
        assert!(ix.has_graph());
        let mut found = 0;
        for _ in 0..50 {
            let q = unit(&mut rng, dim);
            let exact: Vec<u32> = ix.search_exact(&q, 10).iter().map(|h| h.0).collect();
            let approx = ix.search(&q, 10);
            assert!(approx.windows(2).all(|w| w[0].1 >= w[1].1));
            found += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        let recall = found as f64 / 500.0;
        assert!(recall >= 0.9, "recall@10 {recall}");
        // A vector finds itself first.
        let v0 = ix.vectors()[..dim].to_vec();
        assert_eq!(ix.search_exact(&v0, 1)[0].0, 0);
    }
}
