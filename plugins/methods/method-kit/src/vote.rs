//! Self-consistency: sample several chains of thought, read an answer from
//! each, and take the majority of the normalised answers.

use crate::extract::extract;
use crate::{Kind, Step, fnv1a64};

/// The form answers are compared in. Numeric answers compare as numbers
/// (`$1,250.00` and `1250` agree); text answers as SQuAD-normalised words
/// (lowercase, no punctuation, no articles, single spaces).
pub fn normalise(answer: &str, numeric: bool) -> String {
    if numeric {
        let n: String = answer
            .trim()
            .trim_end_matches('.')
            .chars()
            .filter(|c| !matches!(c, ',' | '$' | ' '))
            .collect();
        if let Ok(v) = n.parse::<f64>()
            && v.is_finite()
        {
            return if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            };
        }
    }
    let lower: String = answer
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The outcome of a vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Vote {
    /// Index (into the voted answers) of the winner's first occurrence;
    /// `None` when every answer was empty.
    pub winner: Option<usize>,
    /// Normalised answer → votes, most votes first, ties in order of first
    /// occurrence. Empty answers abstain.
    pub counts: Vec<(String, usize)>,
    /// Share of all answers (abstentions included) that agree with the winner.
    pub agreement: f64,
}

/// Majority vote over `answers` after [`normalise`]; ties go to the answer
/// that occurred first.
pub fn majority(answers: &[String], numeric: bool) -> Vote {
    let mut counts: Vec<(String, usize, usize)> = Vec::new(); // (norm, votes, first index)
    for (i, a) in answers.iter().enumerate() {
        let n = normalise(a, numeric);
        if n.is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(k, _, _)| *k == n) {
            Some(c) => c.1 += 1,
            None => counts.push((n, 1, i)),
        }
    }
    // Stable sort: equal counts keep first-occurrence order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let winner = counts.first().map(|c| c.2);
    let agreement = match counts.first() {
        Some(c) if !answers.is_empty() => c.1 as f64 / answers.len() as f64,
        _ => 0.0,
    };
    Vote {
        winner,
        counts: counts.into_iter().map(|(n, c, _)| (n, c)).collect(),
        agreement,
    }
}

impl Vote {
    /// `votes: {"18": 3, "20": 2}` (JSON object, most votes first).
    pub fn votes_note(&self) -> String {
        let body: Vec<String> = self
            .counts
            .iter()
            .map(|(k, c)| format!("{}: {c}", serde_json::Value::String(k.clone())))
            .collect();
        format!("votes: {{{}}}", body.join(", "))
    }

    /// `agreement: 0.60`.
    pub fn agreement_note(&self) -> String {
        format!("agreement: {:.2}", self.agreement)
    }
}

/// The sampling seed of chain `chain` of an example: a function of the
/// example id, the chain index and a base seed only, so reruns (and other
/// hosts) reproduce every chain, and chains of one example differ.
pub fn chain_seed(example_id: &str, chain: u32, base: u64) -> u64 {
    let mut z = fnv1a64(example_id.as_bytes())
        ^ base.wrapping_mul(0xd6e8_feb8_6659_fd93)
        ^ u64::from(chain)
            .wrapping_add(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // SplitMix64 finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Self-consistency over `k` chains: `generate(i)` samples chain `i`; each
/// chain's answer is extracted and the majority wins. The trace holds, per
/// chain, the chain (`thought`), `extraction: <rule>` and
/// `chain_answer: <answer>` notes; then `votes: {..}`, `agreement: 0.60`
/// and the final answer. Returns the answer text and the trace.
pub fn self_consistency<E>(
    k: u32,
    numeric: bool,
    mut generate: impl FnMut(u32) -> Result<String, E>,
) -> Result<(String, Vec<Step>), E> {
    let mut trace = Vec::new();
    let mut answers = Vec::new();
    for i in 0..k {
        let text = generate(i)?;
        let (answer, rule) = extract(&text, numeric);
        trace.push(Step::new(Kind::Thought, text));
        trace.push(Step::note(format!("extraction: {}", rule.name())));
        trace.push(Step::note(format!("chain_answer: {answer}")));
        answers.push(answer);
    }
    let vote = majority(&answers, numeric);
    let answer = vote.winner.map(|i| answers[i].clone()).unwrap_or_default();
    trace.push(Step::note(vote.votes_note()));
    trace.push(Step::note(vote.agreement_note()));
    trace.push(Step::new(Kind::Answer, answer.clone()));
    Ok((answer, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalisation_makes_equal_answers_equal() {
        assert_eq!(normalise("$1,250.00", true), "1250");
        assert_eq!(normalise("1250.", true), "1250");
        assert_eq!(normalise("-3.50", true), "-3.5");
        assert_eq!(normalise("12 apples", true), "12 apples");
        assert_eq!(normalise("The  Eiffel Tower!", false), "eiffel tower");
        assert_eq!(normalise("an apple", false), "apple");
        assert_eq!(normalise(" . ", false), "");
    }

    #[test]
    fn the_majority_wins_after_normalisation() {
        let v = majority(&s(&["18", "20", "$18.00", "18", "20"]), true);
        assert_eq!(v.winner, Some(0));
        assert_eq!(v.counts, vec![("18".into(), 3), ("20".into(), 2)]);
        assert_eq!(v.votes_note(), r#"votes: {"18": 3, "20": 2}"#);
        assert_eq!(v.agreement_note(), "agreement: 0.60");
    }

    #[test]
    fn ties_go_to_the_first_occurrence() {
        let v = majority(&s(&["Paris", "Lyon", "lyon", "paris."]), false);
        assert_eq!(v.winner, Some(0));
        assert_eq!(v.counts[0], ("paris".into(), 2));
        let v = majority(&s(&["b", "a", "a", "b", "c"]), false);
        assert_eq!(v.winner, Some(0), "b occurred first");
        assert_eq!(v.agreement, 0.4);
    }

    #[test]
    fn empty_answers_abstain_but_count_against_agreement() {
        let v = majority(&s(&["", "7", " "]), true);
        assert_eq!(v.winner, Some(1));
        assert_eq!(v.counts, vec![("7".into(), 1)]);
        assert_eq!(v.agreement_note(), "agreement: 0.33");
        let v = majority(&s(&["", ""]), true);
        assert_eq!(v.winner, None);
        assert_eq!(v.votes_note(), "votes: {}");
        assert_eq!(v.agreement, 0.0);
        assert_eq!(majority(&[], true).agreement, 0.0);
    }

    #[test]
    fn chain_seeds_are_stable_and_distinct() {
        let a: Vec<u64> = (0..8)
            .map(|i| chain_seed("gsm8k_test_0620", i, 0))
            .collect();
        let b: Vec<u64> = (0..8)
            .map(|i| chain_seed("gsm8k_test_0620", i, 0))
            .collect();
        assert_eq!(a, b);
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 8);
        assert_ne!(chain_seed("gsm8k_test_0621", 0, 0), a[0]);
        assert_ne!(chain_seed("gsm8k_test_0620", 0, 1), a[0]);
    }

    #[test]
    fn self_consistency_records_every_chain_and_the_vote() {
        let chains = [
            "3 + 4 = 7. Answer: 7",
            "I think it is 8",
            "So the total is 7.",
        ];
        let (answer, trace) =
            self_consistency::<()>(3, true, |i| Ok(chains[i as usize].to_string())).unwrap();
        assert_eq!(answer, "7");
        let contents: Vec<&str> = trace.iter().map(|s| s.content.as_str()).collect();
        assert_eq!(
            contents,
            [
                chains[0],
                "extraction: marker",
                "chain_answer: 7",
                chains[1],
                "extraction: last_number",
                "chain_answer: 8",
                chains[2],
                "extraction: last_number",
                "chain_answer: 7",
                r#"votes: {"7": 2, "8": 1}"#,
                "agreement: 0.67",
                "7",
            ]
        );
        assert_eq!(trace[0].kind, Kind::Thought);
        assert_eq!(trace.last().unwrap().kind, Kind::Answer);
        // A failing chain fails the whole vote.
        let e = self_consistency(
            2,
            true,
            |i| if i == 1 { Err("boom") } else { Ok("1".into()) },
        );
        assert_eq!(e, Err("boom"));
    }
}
