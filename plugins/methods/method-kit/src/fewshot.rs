//! Few-shot exemplars: read from JSONL (`{question, reasoning, answer}` a
//! line) and rendered as prior chat turns, so the model's own chat template
//! frames them exactly as it frames the real question.

use serde::Deserialize;

use crate::{Turn, fill};

/// One worked example.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemplar {
    pub question: String,
    pub reasoning: String,
    pub answer: String,
}

/// Parses JSONL exemplars; blank lines are skipped, errors name
/// `source:line`. An empty set is an error (a few-shot prompt with no shots
/// is a configuration mistake, not a zero-shot run).
pub fn parse_jsonl(text: &str, source: &str) -> Result<Vec<Exemplar>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex: Exemplar =
            serde_json::from_str(line).map_err(|e| format!("{source}:{}: exemplar: {e}", i + 1))?;
        if ex.question.trim().is_empty() || ex.answer.trim().is_empty() {
            return Err(format!(
                "{source}:{}: exemplar: question and answer must not be empty",
                i + 1
            ));
        }
        out.push(ex);
    }
    if out.is_empty() {
        return Err(format!("{source}: no exemplars"));
    }
    Ok(out)
}

/// The first `count` exemplars (all when `None`); asking for more than there
/// are is an error rather than a silently shorter prompt.
pub fn select(exemplars: &[Exemplar], count: Option<usize>) -> Result<&[Exemplar], String> {
    match count {
        None => Ok(exemplars),
        Some(0) => Err("count must be at least 1".into()),
        Some(n) if n > exemplars.len() => Err(format!(
            "count is {n} but only {} exemplars are available",
            exemplars.len()
        )),
        Some(n) => Ok(&exemplars[..n]),
    }
}

/// One user turn (`user_template` filled with the exemplar's question, no
/// context) and one assistant turn (`assistant_template` with `{reasoning}`
/// and `{answer}`) per exemplar.
pub fn render(exemplars: &[Exemplar], user_template: &str, assistant_template: &str) -> Vec<Turn> {
    exemplars
        .iter()
        .flat_map(|ex| {
            [
                Turn::user(fill(user_template, &ex.question, None)),
                Turn::assistant(
                    assistant_template
                        .replace("{reasoning}", ex.reasoning.trim())
                        .replace("{answer}", ex.answer.trim()),
                ),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"question": "What is 2+3?", "reasoning": "2 plus 3 is 5.", "answer": "5"}

{"question": "Capital of France?", "reasoning": "France's capital is Paris.", "answer": "Paris"}
"#;

    #[test]
    fn jsonl_parses_skipping_blank_lines() {
        let ex = parse_jsonl(FILE, "x.jsonl").unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].answer, "Paris");
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_number() {
        let e = parse_jsonl("{\"question\": \"q\", \"answer\": \"a\"}", "f.jsonl").unwrap_err();
        assert!(e.starts_with("f.jsonl:1: exemplar:"), "{e}");
        assert!(e.contains("reasoning"), "{e}");
        let e = parse_jsonl("\n\nnot json", "f.jsonl").unwrap_err();
        assert!(e.starts_with("f.jsonl:3:"), "{e}");
        let e = parse_jsonl(
            r#"{"question": "q", "reasoning": "r", "answer": "a", "extra": 1}"#,
            "f",
        )
        .unwrap_err();
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e =
            parse_jsonl(r#"{"question": "q", "reasoning": "r", "answer": " "}"#, "f").unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
        assert_eq!(parse_jsonl("\n", "f").unwrap_err(), "f: no exemplars");
    }

    #[test]
    fn count_selects_a_prefix_and_refuses_too_many() {
        let ex = parse_jsonl(FILE, "x").unwrap();
        assert_eq!(select(&ex, None).unwrap().len(), 2);
        assert_eq!(select(&ex, Some(1)).unwrap(), &ex[..1]);
        assert!(select(&ex, Some(3)).unwrap_err().contains("only 2"));
        assert!(select(&ex, Some(0)).is_err());
    }

    #[test]
    fn shipped_exemplar_files_parse_and_their_arithmetic_holds() {
        let qa = parse_jsonl(
            include_str!("../../../../configs/exemplars/open_qa.jsonl"),
            "open_qa.jsonl",
        )
        .unwrap();
        assert!((3..=5).contains(&qa.len()));
        let math = parse_jsonl(
            include_str!("../../../../configs/exemplars/gsm8k.jsonl"),
            "gsm8k.jsonl",
        )
        .unwrap();
        assert!((3..=5).contains(&math.len()));
        for ex in &math {
            // Every `a op b = c` step is right...
            let mut steps = 0;
            for (i, _) in ex.reasoning.match_indices(" = ") {
                let left: Vec<&str> = ex.reasoning[..i].split_whitespace().rev().take(3).collect();
                let right = ex.reasoning[i + 3..].split_whitespace().next().unwrap();
                let n = |s: &str| s.trim_end_matches('.').parse::<f64>().unwrap();
                let (a, op, b) = (n(left[2]), left[1], n(left[0]));
                let v = match op {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => a / b,
                    _ => panic!("{op} in {}", ex.reasoning),
                };
                assert!((v - n(right)).abs() < 1e-9, "{a} {op} {b} != {right}");
                steps += 1;
            }
            assert!(steps >= 2, "{}", ex.reasoning);
            // ...and the answer is the reasoning's last number.
            assert_eq!(
                crate::extract::last_number(&ex.reasoning),
                Some(ex.answer.as_str())
            );
        }
    }

    #[test]
    fn exemplars_render_as_alternating_user_and_assistant_turns() {
        let ex = parse_jsonl(FILE, "x").unwrap();
        let turns = render(
            &ex,
            "Q: {question}{context}\nThink.",
            "{reasoning}\nAnswer: {answer}",
        );
        let roles: Vec<&str> = turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
        assert_eq!(turns[0].content, "Q: What is 2+3?\nThink.");
        assert_eq!(turns[1].content, "2 plus 3 is 5.\nAnswer: 5");
        assert_eq!(
            turns[3].content,
            "France's capital is Paris.\nAnswer: Paris"
        );
    }
}
