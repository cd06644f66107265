//! Okapi BM25 over an in-memory inverted index.
//!
//! score(q, d) = Σ_{t ∈ q} idf(t) · tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))
//! idf(t)      = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))
//!
//! The IDF is Lucene's (never negative, so a term in most documents still
//! counts a little instead of pushing them down). A term repeated in the
//! query counts once per occurrence, as in Lucene and `rank_bm25`.
//! Hand-written rather than a crate: it is the twenty lines above, and the
//! tests pin the numbers; the crates on offer bring their own tokenisers
//! (stemmers, language detection) whose scores we could not state by hand.

use std::collections::HashMap;

use super::tokenize::Tokenizer;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Term-frequency saturation (default 1.2).
    pub k1: f64,
    /// Length normalisation, 0 (none) to 1 (full) (default 0.75).
    pub b: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self { k1: 1.2, b: 0.75 }
    }
}

/// An index of documents numbered 0..n in the order they were added.
#[derive(Debug)]
pub struct Bm25 {
    params: Params,
    tokenizer: Tokenizer,
    /// term → (document, term frequency), documents ascending.
    postings: HashMap<String, Vec<(u32, u32)>>,
    doc_len: Vec<u32>,
    avgdl: f64,
}

impl Bm25 {
    pub fn build<'a>(
        params: Params,
        tokenizer: Tokenizer,
        docs: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut doc_len = Vec::new();
        let mut tf: HashMap<String, u32> = HashMap::new();
        for (i, text) in docs.into_iter().enumerate() {
            let terms = tokenizer.terms(text);
            doc_len.push(terms.len() as u32);
            tf.clear();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf.drain() {
                postings.entry(t).or_default().push((i as u32, n));
            }
        }
        let total: u64 = doc_len.iter().map(|&l| u64::from(l)).sum();
        let avgdl = if doc_len.is_empty() {
            0.0
        } else {
            total as f64 / doc_len.len() as f64
        };
        Self {
            params,
            tokenizer,
            postings,
            doc_len,
            avgdl,
        }
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    /// Distinct terms in the index.
    pub fn vocabulary(&self) -> usize {
        self.postings.len()
    }

    pub fn idf(&self, term: &str) -> f64 {
        let n = self.postings.get(term).map_or(0, Vec::len) as f64;
        let big_n = self.doc_len.len() as f64;
        (1.0 + (big_n - n + 0.5) / (n + 0.5)).ln()
    }

    /// The `k` best documents for `query`, best first, as (document, score);
    /// only documents sharing a term with the query; ties by document order.
    pub fn search(&self, query: &str, k: usize) -> Vec<(u32, f64)> {
        let Params { k1, b } = self.params;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for term in self.tokenizer.terms(query) {
            let Some(list) = self.postings.get(&term) else {
                continue;
            };
            let idf = self.idf(&term);
            for &(doc, tf) in list {
                let tf = f64::from(tf);
                let norm = 1.0 - b + b * f64::from(self.doc_len[doc as usize]) / self.avgdl;
                *scores.entry(doc).or_default() += idf * tf * (k1 + 1.0) / (tf + k1 * norm);
            }
        }
        let mut ranked: Vec<(u32, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: [&str; 3] = ["the cat sat on the mat", "the dog sat", "cat cat cat dog"];

    fn index(params: Params) -> Bm25 {
        Bm25::build(params, Tokenizer { stopwords: false }, DOCS)
    }

    /// Lengths 6, 3, 4 → avgdl 13/3. `cat` is in 2 of 3 documents:
    /// idf = ln(1 + 1.5/2.5) = ln 1.6.
    #[test]
    fn scores_match_the_hand_computed_formula() {
        let ix = index(Params::default());
        assert_eq!(ix.len(), 3);
        assert!((ix.idf("cat") - 1.6f64.ln()).abs() < 1e-12);
        // `mat` is in 1 of 3: ln(1 + 2.5/1.5) = ln(8/3).
        assert!((ix.idf("mat") - (8.0f64 / 3.0).ln()).abs() < 1e-12);
        assert!((ix.idf("unicorn") - 8.0f64.ln()).abs() < 1e-12);

        let avgdl = 13.0 / 3.0;
        let term = |tf: f64, dl: f64| tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl));
        let hits = ix.search("cat", 10);
        // doc 2 (tf 3, len 4) before doc 0 (tf 1, len 6); doc 1 has no `cat`.
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2, 0]);
        assert!((hits[0].1 - 1.6f64.ln() * term(3.0, 4.0)).abs() < 1e-12);
        assert!((hits[1].1 - 1.6f64.ln() * term(1.0, 6.0)).abs() < 1e-12);
        // By hand: doc 2 = ln 1.6 · 6.6 / (3 + 1.2·(0.25 + 0.75·12/13)) = 0.75096...
        assert!((hits[0].1 - 0.750_955_5).abs() < 1e-6, "{}", hits[0].1);

        // Two terms add up; `the` (in 2 of 3) counts twice in doc 0.
        let hits = ix.search("the mat", 10);
        let doc0 = 1.6f64.ln() * term(2.0, 6.0) + (8.0f64 / 3.0).ln() * term(1.0, 6.0);
        assert_eq!(hits[0].0, 0);
        assert!((hits[0].1 - doc0).abs() < 1e-12);
    }

    #[test]
    fn k1_and_b_change_the_scores_as_defined() {
        // b = 0: no length normalisation; k1 = 0: term frequency ignored.
        let ix = index(Params { k1: 0.0, b: 0.0 });
        let hits = ix.search("cat", 10);
        assert!((hits[0].1 - 1.6f64.ln()).abs() < 1e-12);
        assert!((hits[1].1 - 1.6f64.ln()).abs() < 1e-12);
        // Equal scores: ties go to the earlier document.
        assert_eq!((hits[0].0, hits[1].0), (0, 2));

        let ix = index(Params { k1: 1.2, b: 0.0 });
        let hits = ix.search("cat", 10);
        assert!((hits[0].1 - 1.6f64.ln() * 3.0 * 2.2 / 4.2).abs() < 1e-12);
    }

    #[test]
    fn k_limits_and_unknown_terms_give_nothing() {
        let ix = index(Params::default());
        assert_eq!(ix.search("sat", 1).len(), 1);
        assert!(ix.search("unicorn", 5).is_empty());
        assert!(ix.search("", 5).is_empty());
        let empty = Bm25::build(Params::default(), Tokenizer { stopwords: false }, []);
        assert!(empty.is_empty() && empty.search("cat", 3).is_empty());
    }
}
