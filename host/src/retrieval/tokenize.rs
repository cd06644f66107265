//! Text → terms for BM25: Unicode word boundaries (UAX #29, via
//! `unicode-segmentation`), lowercased, optionally without English stopwords.
//! "Einstein's E = mc2 (1905)" → `einstein's`, `e`, `mc2`, `1905`.

use unicode_segmentation::UnicodeSegmentation;

/// A small English stopword list (the classic Lucene/Snowball core): words
/// that carry no topic, so a query like "who was the first man on the moon"
/// ranks by `first`, `man`, `moon`.
pub const ENGLISH_STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does",
    "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "of", "on", "or", "she", "so", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "were", "what", "when", "where", "which", "who", "whom",
    "why", "will", "with", "you",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokenizer {
    pub stopwords: bool,
}

impl Tokenizer {
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.unicode_words()
            .map(|w| w.to_lowercase())
            .filter(|w| !(self.stopwords && ENGLISH_STOPWORDS.binary_search(&w.as_str()).is_ok()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(ENGLISH_STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unicode_words_lowercased() {
        let t = Tokenizer { stopwords: false };
        assert_eq!(
            t.terms("Einstein's E = mc2 (1905), Zürich—ÉCOLE!"),
            ["einstein's", "e", "mc2", "1905", "zürich", "école"]
        );
        assert_eq!(t.terms("東京 is big"), ["東", "京", "is", "big"]);
    }

    #[test]
    fn stopwords_are_dropped_when_asked() {
        let t = Tokenizer { stopwords: true };
        assert_eq!(
            t.terms("Who was the first man on the Moon?"),
            ["first", "man", "moon"]
        );
    }
}
