//! `instruction_rank`: an optimizer that needs no strong interviewer (the
//! likelihood ranking of APE, Zhou et al. 2022). A pool of candidate
//! prompts (the params' `pool`) is ranked by how likely the model finds
//! the correct answers of the shown training examples after each prompt:
//! the mean per-token log-probability of the first reference, through
//! `inference.score-chat-ext` (no sampling). The best untried prompts go
//! to the host, which keeps one only when its validation gain is
//! significant. The scoring model is the `[optimize] interviewer` model,
//! which is the task model unless one is named: leave it unset here.
//!
//! Params (JSON):
//! - `pool`: the candidate prompts (required; each with the run's
//!   placeholders, or the host refuses it).
//! - `candidates`: how many of the best-ranked untried prompts to propose
//!   per iteration (default 1).
//! - `chat`: true (default) scores the filled prompt as a user message
//!   under the model's chat template, as the `naive` method sends it;
//!   false scores it as a raw completion prompt.
//!
//! When every prompt of the pool has been tried it proposes nothing: the
//! run stops with "no change".

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub pool: Vec<String>,
    #[serde(default = "one")]
    pub candidates: usize,
    #[serde(default = "yes")]
    pub chat: bool,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

pub fn parse_params(params: &str) -> Result<Params, String> {
    let p: Params = serde_json::from_str(params)
        .map_err(|e| format!("instruction_rank params: {e} (it needs pool = [\"...\", ...])"))?;
    if p.pool.is_empty() || p.candidates == 0 {
        return Err(
            "instruction_rank params: pool must list prompts, candidates be at least 1".into(),
        );
    }
    Ok(p)
}

/// The untried prompts of the pool, best mean score first (ties keep pool
/// order), at most `n`.
pub fn best_untried<'a>(
    pool: &'a [String],
    scores: &[f64],
    tried: &[&str],
    n: usize,
) -> Vec<(&'a str, f64)> {
    let mut ranked: Vec<(usize, f64)> = scores
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| !tried.contains(&pool[*i].as_str()))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(n)
        .map(|(i, s)| (pool[i].as_str(), s))
        .collect()
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.6", world: "optimizer" });

    use exports::forge::plugin::proposer::{Candidate, Guest, State};
    use forge::plugin::inference::{self, Message};
    use forge::plugin::types::PluginError;

    struct Rank;

    impl Guest for Rank {
        fn propose(state: State, params: String) -> Result<Vec<Candidate>, PluginError> {
            let p = super::parse_params(&params).map_err(PluginError::InvalidInput)?;
            let mut tried: Vec<&str> = state.history.iter().map(|t| t.prompt.as_str()).collect();
            tried.push(&state.prompt);
            let examples: Vec<(&str, &str)> = state
                .failures
                .iter()
                .chain(&state.successes)
                .filter_map(|o| {
                    o.references
                        .first()
                        .map(|r| (o.question.as_str(), r.as_str()))
                })
                .collect();
            if examples.is_empty() {
                return Err(PluginError::InvalidInput(
                    "no shown training example has a reference to score".into(),
                ));
            }
            let mut scores = Vec::with_capacity(p.pool.len());
            for prompt in &p.pool {
                if tried.contains(&prompt.as_str()) {
                    scores.push(f64::NEG_INFINITY);
                    continue;
                }
                let mut total = 0.0;
                for (question, reference) in &examples {
                    let filled =
                        optimizer_kit::render(prompt, &[("question", question), ("context", "")]);
                    let scored = if p.chat {
                        let m = [Message {
                            role: "user".into(),
                            content: filled,
                        }];
                        inference::score_chat_ext(&m, &[reference.to_string()])
                    } else {
                        inference::score_ext(&format!("{filled} "), &[reference.to_string()])
                    }
                    .map_err(|e| PluginError::Unavailable(format!("inference: {e:?}")))?;
                    let s = &scored[0];
                    total += s.logprob / f64::from(s.tokens.max(1));
                }
                scores.push(total / examples.len() as f64);
            }
            let best = super::best_untried(&p.pool, &scores, &tried, p.candidates);
            Ok(best
                .into_iter()
                .map(|(prompt, score)| Candidate {
                    prompt: prompt.to_string(),
                    analysis: format!(
                        "ranked {} prompts by the mean per-token log-probability of the reference on {} training examples: this one {score:.3} (all: {})",
                        p.pool.len(),
                        examples.len(),
                        scores
                            .iter()
                            .map(|s| if s.is_finite() { format!("{s:.3}") } else { "tried".into() })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
                .collect())
        }
    }

    export!(Rank);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_untried_prompts_come_first() {
        let pool: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let scores = [-2.0, -0.5, -1.0, -0.5];
        assert_eq!(
            best_untried(&pool, &scores, &["b"], 2),
            vec![("d", -0.5), ("c", -1.0)]
        );
        assert!(best_untried(&pool, &scores, &["a", "b", "c", "d"], 2).is_empty());
        assert!(parse_params("{}").unwrap_err().contains("pool"));
    }
}
