//! Rank metrics over one query's retrieved list, given per passage whether
//! it is the first passage of a gold document (`first_of_doc` of
//! [`crate::relevance::Relevance`]) and the number of gold documents.
//!
//! For a cut-off k larger than the number retrieved n, the value is the one
//! at n (the list is what it is: recall@10 of 3 passages is recall@3, and
//! nDCG's ideal ranking is cut at n too).

/// Share of the gold documents found in the first k passages.
pub fn recall_at(first_of_doc: &[bool], gold: usize, k: usize) -> f64 {
    if gold == 0 {
        return 0.0;
    }
    let n = k.min(first_of_doc.len());
    first_of_doc[..n].iter().filter(|r| **r).count() as f64 / gold as f64
}

/// Reciprocal rank of the first gold passage (0 when none was retrieved).
pub fn reciprocal_rank(first_of_doc: &[bool]) -> f64 {
    first_of_doc
        .iter()
        .position(|r| *r)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// nDCG@k with binary gains: DCG = Σ_{i<n} rel_i / log2(i + 2) over the
/// first n = min(k, retrieved) passages, divided by the DCG of the ideal
/// list (min(n, gold) gold passages first).
pub fn ndcg_at(first_of_doc: &[bool], gold: usize, k: usize) -> f64 {
    let n = k.min(first_of_doc.len());
    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    // fold from +0.0: an empty f64 `sum()` is -0.0, which would print as such.
    let dcg = (0..n)
        .filter(|&i| first_of_doc[i])
        .map(gain)
        .fold(0.0, |a, g| a + g);
    let ideal = (0..n.min(gold)).map(gain).fold(0.0, |a, g| a + g);
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn gold_at_rank_three_of_five() {
        let r = [false, false, true, false, false];
        assert_eq!(recall_at(&r, 1, 1), 0.0);
        assert_eq!(recall_at(&r, 1, 2), 0.0);
        assert_eq!(recall_at(&r, 1, 3), 1.0);
        assert_eq!(recall_at(&r, 1, 5), 1.0);
        close(reciprocal_rank(&r), 1.0 / 3.0);
        // DCG = 1/log2(4) = 0.5, ideal = 1/log2(2) = 1.
        close(ndcg_at(&r, 1, 5), 0.5);
        close(ndcg_at(&r, 1, 10), 0.5);
        assert_eq!(ndcg_at(&r, 1, 2).to_bits(), 0f64.to_bits(), "+0, not -0");
    }

    #[test]
    fn two_gold_documents() {
        // Gold at ranks 1 and 4 of 4.
        let r = [true, false, false, true];
        close(recall_at(&r, 2, 1), 0.5);
        close(recall_at(&r, 2, 3), 0.5);
        close(recall_at(&r, 2, 4), 1.0);
        close(reciprocal_rank(&r), 1.0);
        // DCG@4 = 1 + 1/log2(5); ideal = 1 + 1/log2(3).
        let want = (1.0 + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        close(ndcg_at(&r, 2, 4), want);
        close(ndcg_at(&r, 2, 1), 1.0);
        // Only one gold found of two: recall 0.5 even at k = 10.
        let r = [false, true];
        close(recall_at(&r, 2, 10), 0.5);
        // DCG = 1/log2(3); ideal over n = 2 = 1 + 1/log2(3).
        close(
            ndcg_at(&r, 2, 10),
            (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2()),
        );
    }

    #[test]
    fn k_past_the_list_is_the_value_at_the_list() {
        let r = [false, true, false];
        assert_eq!(recall_at(&r, 1, 10), recall_at(&r, 1, 3));
        assert_eq!(ndcg_at(&r, 1, 10), ndcg_at(&r, 1, 3));
        close(ndcg_at(&r, 1, 3), 1.0 / 3f64.log2());
    }

    #[test]
    fn nothing_retrieved_or_found_scores_zero() {
        assert_eq!(recall_at(&[], 1, 5), 0.0);
        assert_eq!(reciprocal_rank(&[]), 0.0);
        assert_eq!(ndcg_at(&[], 1, 5), 0.0);
        assert_eq!(ndcg_at(&[false, false], 1, 5), 0.0);
        assert_eq!(recall_at(&[true], 0, 5), 0.0);
    }
}
