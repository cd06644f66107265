//! `judge_verdict`: scores an answer of the `pairwise_judge` method.
//!
//! Reads the method's `judge: {"first":..,"second":..}` trace note (see
//! `judge-eval`; the last one wins) and returns, when both of the judge's
//! outputs parsed: `win` (1 when answer A wins, 0.5 a tie, 0 when B wins;
//! MT-Bench's rule: both orders agree, or it is a tie), `a_win`, `tie`,
//! `b_win` (0/1 indicators of that verdict), `position_bias` (1 when the
//! two calls picked the same slot, else 0) and `parse_failed` = 0. When
//! either output did not parse it returns only `parse_failed` = 1, so the
//! failures are counted apart rather than averaged in. No params. No host
//! calls: the metric only reads, so `rescore` can score stored answers
//! again.

/// The scores for an answer whose trace notes are `notes`.
pub fn evaluate<'a>(
    params: &str,
    notes: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, f64)>, String> {
    check_params(params)?;
    Ok(judge_eval::Note::from_notes(notes)?.scores())
}

/// The metric takes no params: anything but an empty object is a mistake.
pub fn check_params(params: &str) -> Result<(), String> {
    match params.trim() {
        "" | "{}" => Ok(()),
        other => Err(format!("judge_verdict takes no params, got {other}")),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.4", world: "metric" });

    use exports::forge::plugin::scorer::Guest;
    use forge::plugin::types::{Answer, Example, PluginError, Score, StepKind};

    struct Metric;

    impl Guest for Metric {
        fn names(_params: String) -> Vec<String> {
            judge_eval::NAMES.iter().map(|n| n.to_string()).collect()
        }

        fn evaluate(
            example: Example,
            answer: Answer,
            params: String,
        ) -> Result<Vec<Score>, PluginError> {
            let notes = answer
                .trace
                .iter()
                .filter(|s| matches!(s.kind, StepKind::Note))
                .map(|s| s.content.as_str());
            let scores = super::evaluate(&params, notes)
                .map_err(|e| PluginError::InvalidInput(format!("example {}: {e}", example.id)))?;
            Ok(scores
                .into_iter()
                .map(|(name, value)| Score { name, value })
                .collect())
        }
    }

    export!(Metric);
}

#[cfg(test)]
mod tests {
    use super::*;
    use judge_eval::{Note, Verdict};

    #[test]
    fn scores_the_last_note_and_refuses_params() {
        let note = Note {
            first: Some(Verdict::B),
            second: Some(Verdict::B),
        }
        .note();
        let stale = Note {
            first: None,
            second: None,
        }
        .note();
        let s = evaluate("", ["status: x", stale.as_str(), note.as_str()]).unwrap();
        let want: Vec<(String, f64)> = judge_eval::NAMES
            .iter()
            .zip([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        assert_eq!(s, want);
        assert_eq!(
            evaluate("{}", [stale.as_str()]).unwrap(),
            [("parse_failed".to_string(), 1.0)]
        );
        assert!(
            evaluate("{}", ["nothing"])
                .unwrap_err()
                .contains("no `judge:` note")
        );
        assert!(
            evaluate(r#"{"x":1}"#, [note.as_str()])
                .unwrap_err()
                .contains("no params")
        );
    }
}
