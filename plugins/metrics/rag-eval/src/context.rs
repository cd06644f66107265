//! Deterministic context metrics (no LLM).
//!
//! - Context precision, RAGAS's rank-weighted form: with v_k = 1 when the
//!   passage at rank k is relevant, CP = Σ_k (precision@k · v_k) / Σ_k v_k,
//!   i.e. the average precision of the passages given to the model; 0 when
//!   none is relevant. Every chunk of a gold document counts as relevant here
//!   (each is useful context), unlike in recall@k where a document counts once.
//! - Context recall: for each reference answer, the share of its
//!   SQuAD-normalised tokens found among the contexts' tokens; the best
//!   reference counts (references are alternatives, not parts).
//! - Context has-answer: 1 when some reference occurs whole (token span,
//!   normalised) in the contexts.

use std::collections::HashSet;

pub fn precision(relevant: &[bool]) -> f64 {
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (i, r) in relevant.iter().enumerate() {
        if *r {
            hits += 1;
            sum += hits as f64 / (i + 1) as f64;
        }
    }
    if hits == 0 { 0.0 } else { sum / hits as f64 }
}

pub fn recall(references: &[String], contexts: &[String]) -> f64 {
    let joined = contexts.join(" ");
    let norm = squad_text::normalize_answer(&joined);
    let have: HashSet<&str> = norm.split_whitespace().collect();
    references
        .iter()
        .map(|r| {
            let toks: Vec<String> = squad_text::normalize_answer(r)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if toks.is_empty() {
                return 0.0;
            }
            toks.iter().filter(|t| have.contains(t.as_str())).count() as f64 / toks.len() as f64
        })
        .fold(0.0, f64::max)
}

pub fn has_answer(references: &[String], contexts: &[String]) -> bool {
    let joined = contexts.join(" ");
    references.iter().any(|r| squad_text::contains(&joined, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn precision_weights_early_ranks() {
        close(precision(&[true, false, false]), 1.0);
        // Relevant at rank 3 only: P@3 = 1/3.
        close(precision(&[false, false, true]), 1.0 / 3.0);
        // Relevant at 1 and 3: (1/1 + 2/3) / 2.
        close(precision(&[true, false, true]), (1.0 + 2.0 / 3.0) / 2.0);
        close(precision(&[false, true, true]), (0.5 + 2.0 / 3.0) / 2.0);
        assert_eq!(precision(&[false, false]), 0.0);
        assert_eq!(precision(&[]), 0.0);
    }

    #[test]
    fn recall_is_the_best_references_token_share() {
        let ctx = s(&[
            "The Denver Broncos won Super Bowl 50.",
            "It was in Santa Clara.",
        ]);
        close(recall(&s(&["Denver Broncos"]), &ctx), 1.0);
        // "the carolina panthers" -> [carolina, panthers]: none found.
        close(recall(&s(&["the Carolina Panthers"]), &ctx), 0.0);
        // [santa, clara, california]: 2 of 3; the best reference wins.
        close(
            recall(&s(&["Santa Clara, California", "Carolina"]), &ctx),
            2.0 / 3.0,
        );
        assert_eq!(recall(&s(&["x"]), &[]), 0.0);
        assert!(has_answer(&s(&["nope", "santa clara"]), &ctx));
        assert!(!has_answer(&s(&["Santa Clara, California"]), &ctx));
    }
}
