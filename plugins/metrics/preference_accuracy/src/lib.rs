//! `preference_accuracy`: scores an answer of the `preference` method.
//!
//! Reads the method's `preference: {...}` trace note (see `pref-eval`) and
//! returns `pref_acc` (1 when the chosen reply has the higher total
//! log-probability), `pref_acc_norm` (the same per character) and
//! `pref_margin` (chosen minus rejected total log-probability, nats). The
//! two accuracies are 0/1 per example, so `compare` tests them with exact
//! McNemar. No params. No host calls: the metric only reads, so `rescore`
//! can score stored answers again.

/// The scores for an answer whose trace notes are `notes`.
pub fn evaluate<'a>(
    params: &str,
    notes: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, f64)>, String> {
    check_params(params)?;
    Ok(pref_eval::Verdict::from_notes(notes)?.scores())
}

/// The metric takes no params: anything but an empty object is a mistake.
pub fn check_params(params: &str) -> Result<(), String> {
    match params.trim() {
        "" | "{}" => Ok(()),
        other => Err(format!("preference_accuracy takes no params, got {other}")),
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
            pref_eval::NAMES.iter().map(|n| n.to_string()).collect()
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

    #[test]
    fn scores_the_last_note_and_refuses_params() {
        let note = pref_eval::Verdict {
            chosen_logprob: -3.5,
            rejected_logprob: -4.0,
            // Per character: -1.75 against -0.4; per token -3.5 against -1.33.
            chosen_chars: 2,
            rejected_chars: 10,
            chosen_tokens: Some(1),
            rejected_tokens: Some(3),
        }
        .note();
        let s = evaluate("", ["status: x", note.as_str()]).unwrap();
        assert_eq!(
            s,
            [
                ("pref_acc".to_string(), 1.0),
                ("pref_acc_norm".to_string(), 0.0),
                ("pref_margin".to_string(), 0.5),
                ("pref_acc_token".to_string(), 0.0)
            ]
        );
        assert!(evaluate("{}", ["nothing"]).is_err());
        assert!(
            evaluate(r#"{"x":1}"#, [note.as_str()])
                .unwrap_err()
                .contains("no params")
        );
    }
}
