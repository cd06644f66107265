//! What the `preference` method and the `preference_accuracy` metric share.
//!
//! The method scores both replies of a preference pair with the host's
//! model and writes what it measured as one trace note,
//! `preference: {"chosen_logprob":..,"rejected_logprob":..,"chosen_chars":..,"rejected_chars":..}`
//! (the total natural-log probability of each reply after the prompt, and
//! its length in characters as scored). The metric reads the note back and
//! turns it into [`NAMES`]:
//! - `pref_acc`: 1 when the chosen reply's total log-probability is
//!   strictly higher than the rejected one's, else 0 (a tie is 0, as TRL's
//!   reward accuracy counts it);
//! - `pref_acc_norm`: the same comparison of log-probability per character
//!   (lm-evaluation-harness's `acc_norm`), which removes the bias of totals
//!   towards shorter replies;
//! - `pref_margin`: chosen minus rejected total log-probability (nats);
//! - `pref_acc_token`: the comparison of log-probability per token, with
//!   the token counts the host reports (`score-chat-ext`, contract 0.1.5);
//!   left out for notes written before the method recorded them.

use serde::{Deserialize, Serialize};

/// The note's prefix in the method's trace.
pub const PREFIX: &str = "preference: ";

/// The scores, in the order [`Verdict::scores`] returns them.
pub const NAMES: [&str; 4] = ["pref_acc", "pref_acc_norm", "pref_margin", "pref_acc_token"];

/// What the method measured for one pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub chosen_logprob: f64,
    pub rejected_logprob: f64,
    pub chosen_chars: u64,
    pub rejected_chars: u64,
    /// Tokens of each reply as the model scored it (None in notes written
    /// before contract 0.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_tokens: Option<u64>,
}

impl Verdict {
    /// The trace note.
    pub fn note(&self) -> String {
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).expect("a verdict is JSON")
        )
    }

    /// The verdict of the last `preference:` note among `notes`.
    pub fn from_notes<'a>(notes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let last = notes
            .into_iter()
            .filter_map(|n| n.strip_prefix(PREFIX))
            .last()
            .ok_or_else(|| {
                format!(
                    "no `{}` note in the trace: score answers of the preference method",
                    PREFIX.trim_end()
                )
            })?;
        serde_json::from_str(last).map_err(|e| format!("the `{}` note: {e}", PREFIX.trim_end()))
    }

    /// Log-probability per unit (character or token); a reply scored
    /// empty counts as 0.
    fn per_char(logprob: f64, chars: u64) -> f64 {
        if chars == 0 {
            0.0
        } else {
            logprob / chars as f64
        }
    }

    /// Which reply the model prefers by total log-probability: `chosen`,
    /// `rejected` or `tie` (the method's answer text).
    pub fn winner(&self) -> &'static str {
        if self.chosen_logprob > self.rejected_logprob {
            "chosen"
        } else if self.chosen_logprob < self.rejected_logprob {
            "rejected"
        } else {
            "tie"
        }
    }

    /// `(name, value)` for each of [`NAMES`].
    pub fn scores(&self) -> Vec<(String, f64)> {
        let acc = self.chosen_logprob > self.rejected_logprob;
        let norm = Self::per_char(self.chosen_logprob, self.chosen_chars)
            > Self::per_char(self.rejected_logprob, self.rejected_chars);
        let values = [
            f64::from(u8::from(acc)),
            f64::from(u8::from(norm)),
            self.chosen_logprob - self.rejected_logprob,
        ];
        let mut out: Vec<(String, f64)> = NAMES
            .iter()
            .zip(values)
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        if let (Some(ct), Some(rt)) = (self.chosen_tokens, self.rejected_tokens) {
            let token =
                Self::per_char(self.chosen_logprob, ct) > Self::per_char(self.rejected_logprob, rt);
            out.push((NAMES[3].to_string(), f64::from(u8::from(token))));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(c: f64, r: f64, cc: u64, rc: u64) -> Verdict {
        Verdict {
            chosen_logprob: c,
            rejected_logprob: r,
            chosen_chars: cc,
            rejected_chars: rc,
            chosen_tokens: None,
            rejected_tokens: None,
        }
    }

    #[test]
    fn note_round_trips_exactly() {
        let a = v(-41.123456789012345, -0.1 - 0.2, 17, 3);
        let b = Verdict::from_notes(["other", &v(0.0, 0.0, 1, 1).note(), &a.note()]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.chosen_logprob.to_bits(), b.chosen_logprob.to_bits());
        assert!(
            Verdict::from_notes(["x"])
                .unwrap_err()
                .contains("no `preference:` note")
        );
        assert!(
            Verdict::from_notes(["preference: {}"])
                .unwrap_err()
                .contains("missing field")
        );
    }

    #[test]
    fn totals_and_per_character_can_disagree() {
        // Chosen is longer: lower total, higher per character.
        let s = v(-30.0, -12.0, 60, 12).scores();
        assert_eq!(
            s,
            [
                ("pref_acc".to_string(), 0.0),
                ("pref_acc_norm".to_string(), 1.0),
                ("pref_margin".to_string(), -18.0)
            ]
        );
        assert_eq!(v(-30.0, -12.0, 60, 12).winner(), "rejected");
        // A tie is not a win, either way.
        let s = v(-5.0, -5.0, 5, 5).scores();
        assert_eq!((s[0].1, s[1].1, s[2].1), (0.0, 0.0, 0.0));
        assert_eq!(v(-5.0, -5.0, 5, 5).winner(), "tie");
        assert_eq!(v(-1.0, -5.0, 5, 5).winner(), "chosen");
    }

    #[test]
    fn per_token_accuracy_needs_the_token_counts() {
        // Chosen: -30 over 10 tokens (-3.0 each); rejected: -12 over 3 (-4.0).
        let mut x = v(-30.0, -12.0, 60, 12);
        assert_eq!(x.scores().len(), 3, "an old note has no per-token score");
        x.chosen_tokens = Some(10);
        x.rejected_tokens = Some(3);
        let s = x.scores();
        assert_eq!(s[3], ("pref_acc_token".to_string(), 1.0));
        assert_eq!(Verdict::from_notes([x.note().as_str()]).unwrap(), x);
        x.rejected_tokens = Some(6); // -2.0 per token: rejected wins
        assert_eq!(x.scores()[3].1, 0.0);
    }
}
