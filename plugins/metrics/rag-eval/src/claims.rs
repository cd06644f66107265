//! An answer's claims and whether contexts support them.
//!
//! Claims are the answer's sentences: split after `.`, `!` or `?` followed
//! by whitespace and an uppercase letter, digit or quote (so "U.S. troops",
//! "3.5 m" and "e.g. this" stay whole), and at line breaks; a short answer is
//! one claim. Fragments without a letter or digit are dropped. An abstention
//! ("I don't know", "unanswerable", ...) makes no claim.

use std::collections::HashSet;

/// Common English function words left out of lexical support. Negations
/// (no, not, never, nor) are kept: "did not win" must not match "won".
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "during", "each", "for", "from", "further", "had", "has", "have",
    "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "itself", "just", "me", "more", "most", "my", "of", "off", "on", "once", "only",
    "or", "other", "our", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
];

const ABSTENTIONS: &[&str] = &[
    "i dont know",
    "i do not know",
    "unknown",
    "unanswerable",
    "no answer",
    "not enough information",
    "cannot be determined",
    "cannot answer",
    "cant answer",
];

/// Whether the answer declines to answer: it then makes no claim. The
/// normalised answer is one of [`ABSTENTIONS`], or starts with one of its
/// phrases of several words ("I don't know who ..."; "Unknown Pleasures"
/// is an answer).
pub fn is_abstention(answer: &str) -> bool {
    let n = squad_text::normalize_answer(answer);
    ABSTENTIONS
        .iter()
        .any(|a| n == *a || (a.contains(' ') && n.starts_with(&format!("{a} "))))
}

/// The answer's claims (see the module docs).
pub fn split(answer: &str) -> Vec<String> {
    if is_abstention(answer) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for line in answer.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut start = 0;
        for i in 0..chars.len() {
            let end_mark = matches!(chars[i], '.' | '!' | '?');
            let next_ws = chars.get(i + 1).is_some_and(|c| c.is_whitespace());
            let after = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            let opens = after.is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || *c == '"');
            // "U.S. Army": a one-letter word before the dot is an initial.
            let word_before: String = chars[start..i]
                .iter()
                .rev()
                .take_while(|c| !c.is_whitespace())
                .collect();
            let initial =
                chars[i] == '.' && word_before.chars().count() == 1 || word_before.contains('.');
            if end_mark && next_ws && opens && !initial {
                out.push(chars[start..=i].iter().collect::<String>());
                start = i + 1;
            }
        }
        out.push(chars[start..].iter().collect());
    }
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .collect()
}

/// The SQuAD-normalised tokens of `text` without [`STOPWORDS`].
pub fn content_tokens(text: &str) -> Vec<String> {
    squad_text::normalize_answer(text)
        .split_whitespace()
        .filter(|t| !STOPWORDS.contains(t))
        .map(str::to_string)
        .collect()
}

/// Every normalised token of the contexts (stopwords included: harmless).
pub fn context_vocabulary(contexts: &[String]) -> HashSet<String> {
    contexts
        .iter()
        .flat_map(|c| {
            squad_text::normalize_answer(c)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Share of the claim's content tokens found in the contexts; a claim with
/// no content token ("It is.") asserts nothing checkable and scores 1.
pub fn lexical_support(claim: &str, vocabulary: &HashSet<String>) -> f64 {
    let toks = content_tokens(claim);
    if toks.is_empty() {
        return 1.0;
    }
    toks.iter().filter(|t| vocabulary.contains(*t)).count() as f64 / toks.len() as f64
}

/// A judge's verdict: the first word of its output that is "yes" (true) or
/// "no" (false), case-insensitive; `None` when there is none.
pub fn parse_verdict(output: &str) -> Option<bool> {
    output
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .find_map(|w| match w.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_claims() {
        assert_eq!(split("Denver Broncos"), ["Denver Broncos"]);
        assert_eq!(
            split("The Broncos won. They beat the Panthers!  Was it close? Yes"),
            [
                "The Broncos won.",
                "They beat the Panthers!",
                "Was it close?",
                "Yes"
            ]
        );
        assert_eq!(
            split("The U.S. Army paid 3.5 million. e.g. this stays. 1961 was the year."),
            [
                "The U.S. Army paid 3.5 million. e.g. this stays.",
                "1961 was the year."
            ]
        );
        assert_eq!(
            split("First line\n\nSecond line.\n..."),
            ["First line", "Second line."]
        );
        assert!(split("").is_empty());
        assert!(split("  . ").is_empty());
    }

    #[test]
    fn abstentions_make_no_claims() {
        assert!(split("I don't know.").is_empty());
        assert!(split("Unanswerable").is_empty());
        assert!(is_abstention("I do not know the answer"));
        assert!(!is_abstention("Unknown Pleasures was an album"));
        assert!(!is_abstention("Paris"));
    }

    #[test]
    fn lexical_support_counts_content_tokens() {
        let v = context_vocabulary(&["The Eiffel Tower is 324 metres tall.".into()]);
        assert_eq!(
            content_tokens("The tower is not tall"),
            ["tower", "not", "tall"]
        );
        assert_eq!(
            lexical_support("The Eiffel Tower is 324 metres tall", &v),
            1.0
        );
        // tower, 300, metres, tall: 3 of 4.
        assert_eq!(lexical_support("The tower is 300 metres tall", &v), 0.75);
        assert_eq!(lexical_support("It is.", &v), 1.0);
        assert_eq!(lexical_support("The tower is not tall", &v), 2.0 / 3.0);
    }

    #[test]
    fn the_first_yes_or_no_word_is_the_verdict() {
        assert_eq!(parse_verdict("Yes."), Some(true));
        assert_eq!(parse_verdict(" no, it is not"), Some(false));
        assert_eq!(parse_verdict("Answer: YES"), Some(true));
        assert_eq!(
            parse_verdict("The answer is no; yes would be wrong"),
            Some(false)
        );
        assert_eq!(parse_verdict("Nope, yesterday"), None);
        assert_eq!(parse_verdict(""), None);
    }
}
