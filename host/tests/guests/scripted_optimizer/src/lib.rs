//! Test guest: proposes what its params script, with no model, so the
//! optimize loop's control flow (placeholder re-asks, paired acceptance,
//! plateau, budgets, resume) is tested deterministically.
//!
//! Params: `{"proposals": {"1": ["p", ...], ...}, "on_feedback": {"1": [...]}}`
//! — iteration n proposes `proposals[n]` (an iteration not listed proposes
//! nothing: "no change"); when the host asks again within the iteration
//! (`state.feedback` set) it proposes `on_feedback[n]` instead. Each
//! candidate's analysis says which list it came from and the score it saw.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.6", world: "optimizer" });

use std::collections::BTreeMap;

use exports::forge::plugin::proposer::{Candidate, Guest, State};
use forge::plugin::types::PluginError;

#[derive(serde::Deserialize)]
struct Params {
    #[serde(default)]
    proposals: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    on_feedback: BTreeMap<String, Vec<String>>,
}

struct Scripted;

impl Guest for Scripted {
    fn propose(state: State, params: String) -> Result<Vec<Candidate>, PluginError> {
        let p: Params =
            serde_json::from_str(&params).map_err(|e| PluginError::InvalidInput(e.to_string()))?;
        let key = state.iteration.to_string();
        let (from, list) = match &state.feedback {
            Some(_) => ("on_feedback", p.on_feedback.get(&key)),
            None => ("proposals", p.proposals.get(&key)),
        };
        Ok(list
            .into_iter()
            .flatten()
            .map(|prompt| Candidate {
                prompt: prompt.clone(),
                analysis: format!(
                    "{from}[{key}]; incumbent {:.3} with {} failures shown",
                    state.score,
                    state.failures.len()
                ),
            })
            .collect())
    }
}

export!(Scripted);
