//! Pulling the final answer out of a chain of thought. The rule that fired
//! is returned so the trace says how the answer was read.

/// How the answer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// An explicit `Answer:` / `answer is` marker (the last one).
    Marker,
    /// A `Therefore` / `So` / `Thus` sentence.
    Conclusion,
    /// The last number in the text (numeric tasks).
    LastNumber,
    /// The last non-empty sentence.
    LastSentence,
    /// Nothing to read.
    Empty,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Marker => "marker",
            Rule::Conclusion => "conclusion",
            Rule::LastNumber => "last_number",
            Rule::LastSentence => "last_sentence",
            Rule::Empty => "empty",
        }
    }
}

const MARKERS: &[&str] = &["final answer:", "answer:", "the answer is", "answer is"];
const CONCLUSIONS: &[&str] = &["therefore,", "therefore", "thus,", "thus", "so,", "hence,"];

/// `numeric`: the task wants a number (GSM8K): prefer the number inside
/// the marked answer, else the last number in the text; commas are removed
/// as the GSM8K extractor does.
pub fn extract(text: &str, numeric: bool) -> (String, Rule) {
    let (answer, rule) = extract_raw(text, numeric);
    if numeric && matches!(rule, Rule::Marker | Rule::LastNumber) {
        return (answer.replace(',', ""), rule);
    }
    (answer, rule)
}

fn extract_raw(text: &str, numeric: bool) -> (String, Rule) {
    let text = text.trim();
    if text.is_empty() {
        return (String::new(), Rule::Empty);
    }
    let lower = text.to_lowercase();
    // Byte offsets of `lower` equal `text`'s only for ASCII-lowercase-stable
    // text; search in `lower`, slice `text` only when lengths agree.
    let same_len = lower.len() == text.len();
    let found = MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| (i, m.len())))
        .max_by_key(|(i, _)| *i);
    if let (Some((i, len)), true) = (found, same_len) {
        let rest = first_line(&text[i + len..]);
        let rest = if numeric {
            last_number(rest).unwrap_or(rest)
        } else {
            rest
        };
        if !rest.is_empty() {
            return (clean(rest), Rule::Marker);
        }
    }
    if numeric && let Some(n) = last_number(text) {
        return (n.to_string(), Rule::LastNumber);
    }
    if same_len {
        for c in CONCLUSIONS {
            if let Some(i) = lower.rfind(c) {
                let rest = first_sentence(&text[i + c.len()..]);
                if !rest.is_empty() {
                    return (clean(rest), Rule::Conclusion);
                }
            }
        }
    }
    let last = text
        .split(['.', '!', '?', '\n'])
        .map(str::trim)
        .rfind(|s| !s.is_empty())
        .unwrap_or(text);
    (clean(last), Rule::LastSentence)
}

fn first_line(s: &str) -> &str {
    s.trim_start().lines().next().unwrap_or("").trim()
}

fn first_sentence(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(['.', '!', '?', '\n']).unwrap_or(s.len());
    s[..end].trim()
}

fn clean(s: &str) -> String {
    // Markdown emphasis, quotes and a final full stop are not the answer.
    s.trim_start_matches(|c: char| "*\"'` ".contains(c))
        .trim_end_matches(|c: char| "*\"'`. ".contains(c))
        .to_string()
}

/// The last number in `s` (digits with optional sign, commas, decimals).
pub fn last_number(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut end = None;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i].is_ascii_digit() {
            end = Some(i + 1);
            break;
        }
    }
    let end = end?;
    let mut start = end;
    while start > 0
        && (bytes[start - 1].is_ascii_digit()
            || bytes[start - 1] == b','
            || bytes[start - 1] == b'.')
    {
        start -= 1;
    }
    while start < end && !bytes[start].is_ascii_digit() {
        start += 1;
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    Some(&s[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_win_and_the_last_one_counts() {
        let t = "Let's think. Paris is big. Answer: Paris\nMore text";
        assert_eq!(extract(t, false), ("Paris".into(), Rule::Marker));
        let t = "The answer is 12. Wait, no. The answer is **14**.";
        assert_eq!(extract(t, false), ("14".into(), Rule::Marker));
        assert_eq!(
            extract("Final answer: 1,234 apples", true),
            ("1234".into(), Rule::Marker)
        );
    }

    #[test]
    fn conclusions_then_numbers_then_last_sentence() {
        let t = "He has 3 apples and buys 4. Therefore, he has seven apples. Nice.";
        assert_eq!(
            extract(t, false),
            ("he has seven apples".into(), Rule::Conclusion)
        );
        let t = "She pays 5 + 7 = 12 dollars, then gets 2 back, leaving 10";
        assert_eq!(extract(t, true), ("10".into(), Rule::LastNumber));
        let t = "It is a city in France. It is Paris.";
        assert_eq!(
            extract(t, false),
            ("It is Paris".into(), Rule::LastSentence)
        );
        assert_eq!(extract("  ", false), (String::new(), Rule::Empty));
    }

    #[test]
    fn numbers_keep_sign_commas_and_decimals() {
        assert_eq!(last_number("a -3.5 b"), Some("-3.5"));
        assert_eq!(last_number("total 1,250 dollars."), Some("1,250"));
        assert_eq!(last_number("no digits"), None);
        assert_eq!(last_number("ends with 42."), Some("42"));
    }

    #[test]
    fn non_ascii_text_does_not_panic() {
        let t = "İstanbul ist groß. Answer: İzmir";
        let (a, _) = extract(t, false);
        assert!(!a.is_empty());
    }
}
