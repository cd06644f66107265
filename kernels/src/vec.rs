//! Plain f32 vector arithmetic the engine runs per token (attention
//! scores), here so it is built at opt-level 3 like the matmuls.

/// Dot product with eight independent accumulators (vectorises; the order
/// depends only on the length, so a row's result never depends on its
/// neighbours).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = 0f32;
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_of_small_integers_is_exact() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(super::dot_f32(&a, &b), want);
    }
}
