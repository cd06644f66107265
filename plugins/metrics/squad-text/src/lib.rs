//! SQuAD v1.1 answer normalisation and scores, as the official evaluation
//! script defines them: lowercase, drop punctuation, drop the articles
//! a/an/the, collapse whitespace; EM on normalised strings; F1 on token
//! multisets; both the max over the reference answers.
//!
//! A plain library (no WIT) so it is unit-tested natively and shared by the
//! `exact_match`, `f1` and `contains` metric components.

use std::collections::HashMap;

/// Python's `string.punctuation`, which the official script removes.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: Vec<char> = lower
        .chars()
        .filter(|c| !PUNCTUATION.contains(*c))
        .collect();
    remove_articles(&no_punct)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The script's `re.sub(r"\b(a|an|the)\b", " ", text)`: an article is
/// replaced wherever word boundaries enclose it, also when the neighbour is
/// a non-word character that survived (“the“best”” loses its "the").
fn remove_articles(text: &[char]) -> String {
    // Python's `\w` on str: Unicode letters and digits, and '_'.
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let at_boundary = i == 0 || !word(text.get(i - 1));
        let article = ["the", "an", "a"].iter().find_map(|a| {
            let n = a.chars().count();
            let matches = text.len() >= i + n && text[i..i + n].iter().copied().eq(a.chars());
            (matches && !word(text.get(i + n))).then_some(n)
        });
        match article {
            Some(n) if at_boundary => {
                out.push(' ');
                i += n;
            }
            _ => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

pub fn exact_match(prediction: &str, truth: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(truth)
}

pub fn f1(prediction: &str, truth: &str) -> f64 {
    let pred = normalize_answer(prediction);
    let gold = normalize_answer(truth);
    let pred: Vec<&str> = pred.split_whitespace().collect();
    let gold: Vec<&str> = gold.split_whitespace().collect();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &gold {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0i64;
    for t in &pred {
        if let Some(c) = counts.get_mut(t)
            && *c > 0
        {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Whether a normalised reference occurs in the normalised prediction as a
/// whole-token span (so "1" is not found inside "1945").
pub fn contains(prediction: &str, truth: &str) -> bool {
    let gold = normalize_answer(truth);
    if gold.is_empty() {
        return false;
    }
    let pred = format!(" {} ", normalize_answer(prediction));
    pred.contains(&format!(" {gold} "))
}

/// Max of `score` over the references; 0 when there are none.
pub fn best<F: Fn(&str, &str) -> f64>(prediction: &str, answers: &[String], score: F) -> f64 {
    answers
        .iter()
        .map(|a| score(prediction, a))
        .fold(0.0, f64::max)
}

/// Defines a whole metric component from a name and a `(prediction,
/// reference) -> f64` score, maxed over the references. Used by the
/// `exact_match`, `f1` and `contains` crates, which differ only in these two.
/// The calling crate depends on `wit-bindgen` and sits in `plugins/metrics/`.
#[macro_export]
macro_rules! squad_metric {
    ($name:literal, $score:expr) => {
        wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "metric" });

        use exports::forge::plugin::scorer::Guest;
        use forge::plugin::types::{Answer, Example, PluginError, Score};

        struct Metric;

        impl Guest for Metric {
            fn names(_params: String) -> Vec<String> {
                vec![$name.into()]
            }

            fn evaluate(example: Example, answer: Answer, _params: String) -> Result<Vec<Score>, PluginError> {
                if example.answers.is_empty() {
                    return Err(PluginError::InvalidInput(format!(
                        "example {} has no reference answers",
                        example.id
                    )));
                }
                let value = $crate::best(&answer.text, &example.answers, $score);
                Ok(vec![Score { name: $name.into(), value }])
            }
        }

        export!(Metric);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_official_script() {
        assert_eq!(normalize_answer("The  Eiffel-Tower!"), "eiffeltower");
        assert_eq!(normalize_answer("  An apple, a day "), "apple day");
        assert_eq!(normalize_answer("THE"), "");
        assert_eq!(normalize_answer("theory of the atom"), "theory of atom");
        assert_eq!(normalize_answer("Hello\tworld\n"), "hello world");
        assert_eq!(normalize_answer("9,436"), "9436");
        assert_eq!(normalize_answer("Café ÉCOLE"), "café école");
        assert_eq!(normalize_answer("a.b"), "ab");
        // `\b` also sits next to non-ASCII punctuation, which survives.
        assert_eq!(normalize_answer("the“best”"), "“best”");
        assert_eq!(normalize_answer("theé aé"), "theé aé");
    }

    #[test]
    fn exact_match_ignores_case_punctuation_articles() {
        assert!(exact_match("the Western Australia.", "Western Australia"));
        assert!(!exact_match("Western Australia state", "Western Australia"));
        assert!(exact_match("", "the"));
    }

    #[test]
    fn f1_counts_token_multisets() {
        assert_eq!(f1("Paris", "Paris"), 1.0);
        assert_eq!(f1("", "Paris"), 0.0);
        assert_eq!(f1("Paris", ""), 0.0);
        // pred: [the capital is paris] -> [capital is paris]; gold [paris]
        let v = f1("The capital is Paris", "Paris");
        assert!((v - 0.5).abs() < 1e-12, "{v}");
        // repeated tokens count once per occurrence in gold
        let v = f1("paris paris", "paris");
        assert!((v - 2.0 * 0.5 * 1.0 / 1.5).abs() < 1e-12, "{v}");
    }

    #[test]
    fn best_takes_the_max_over_references() {
        let refs = vec!["Tokyo".to_string(), "the city of Paris".to_string()];
        assert_eq!(best("Paris", &refs, f1), f1("Paris", "the city of Paris"));
        assert_eq!(best("x", &[], f1), 0.0);
    }

    #[test]
    fn contains_matches_whole_tokens_only() {
        assert!(contains("It was in 1945, I think.", "1945"));
        assert!(!contains("It was 1945", "194"));
        assert!(contains(
            "The answer is Western Australia!",
            "western australia"
        ));
        assert!(!contains("anything", "the"));
    }
}
