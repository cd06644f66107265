//! `faithfulness`: the share of an answer's claims that the retrieved
//! contexts (the answer's `contexts`) support, and a hallucination flag.
//!
//! Claims are the answer's sentences (a short answer is one claim; see
//! `rag_eval::claims`). Each claim is judged:
//! - `mode = "llm"` (default): the host's model is asked, per claim, the
//!   `template` question (`{context}` = the contexts joined by blank lines,
//!   cut to `max_context_chars`; `{claim}`) and answers yes or no; the first
//!   yes/no word of its output is the verdict; an output with neither
//!   counts as unsupported and in `judge_unparsed`. `chat` (default true),
//!   `system`, `max_tokens` (default 4) as in the methods; greedy.
//! - `mode = "lexical"`: a claim is supported when at least `threshold`
//!   (default 0.8) of its content tokens (SQuAD-normalised, stopwords
//!   dropped, negations kept) occur in the contexts.

//! - `mode = "nli"` (contract 0.1.3, needs `[nli] model` in the experiment
//!   config): the host's NLI cross-encoder classifies (premise = one
//!   context, hypothesis = the claim) for every context; the claim is
//!   supported when some context entails it: the `entailment_label`
//!   (default "entailment", any case) is the most probable label, or, with
//!   `entailment_threshold` set, its probability reaches the threshold.
//!
//! Scores: `faithfulness` = supported / claims (0..1); `hallucination` = 1
//! when faithfulness < 0.5, else 0; `claims`; in llm mode `judge_unparsed`.
//! An answer with no claims (empty, or an abstention such as "I don't
//! know") asserts nothing: faithfulness 1, hallucination 0. Claims with no
//! contexts to support them (closed book): faithfulness 0, hallucination 1,
//! and the judge is not asked.
//!
//! The judge is only as good as the model: the packaged 135M model is a
//! weak judge (see the measurement in docs/rag.md); name a bigger model in the
//! experiment's `[model] source` for judgements worth reading.

use rag_eval::claims;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Llm,
    Lexical,
    Nli,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_mode")]
    pub mode: Mode,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_template")]
    pub template: String,
    pub system: Option<String>,
    #[serde(default = "yes")]
    pub chat: bool,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default = "default_max_context_chars")]
    pub max_context_chars: usize,
    /// nli: the label that means "supported".
    #[serde(default = "default_entailment_label")]
    pub entailment_label: String,
    /// nli: supported when P(entailment) reaches this; unset: when
    /// entailment is the most probable label.
    pub entailment_threshold: Option<f64>,
}

fn default_mode() -> Mode {
    Mode::Llm
}
fn default_threshold() -> f64 {
    0.8
}
pub const DEFAULT_TEMPLATE: &str = "Context:\n{context}\n\nStatement: {claim}\n\nIs the statement supported by the context? Answer yes or no.";
fn default_template() -> String {
    DEFAULT_TEMPLATE.into()
}
fn yes() -> bool {
    true
}
fn default_max_tokens() -> u32 {
    4
}
fn default_max_context_chars() -> usize {
    6000
}
fn default_entailment_label() -> String {
    "entailment".into()
}

impl Params {
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let p: Params =
            serde_json::from_str(json).map_err(|e| format!("faithfulness params: {e}"))?;
        if !(0.0..=1.0).contains(&p.threshold) {
            return Err(format!(
                "faithfulness params: threshold must be within 0..1, got {}",
                p.threshold
            ));
        }
        if !p.template.contains("{claim}") {
            return Err("faithfulness params: template has no {claim} placeholder".into());
        }
        if let Some(t) = p.entailment_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(format!(
                "faithfulness params: entailment_threshold must be within 0..1, got {t}"
            ));
        }
        if p.max_tokens == 0 {
            return Err("faithfulness params: max_tokens must be at least 1".into());
        }
        Ok(p)
    }

    pub fn names(&self) -> Vec<String> {
        let mut n = vec![
            "faithfulness".into(),
            "hallucination".into(),
            "claims".into(),
        ];
        if self.mode == Mode::Llm {
            n.push("judge_unparsed".into());
        }
        n
    }

    /// The judge's prompt for one claim.
    pub fn prompt(&self, contexts: &[String], claim: &str) -> String {
        let joined = contexts.join("\n\n");
        let ctx: String = joined.chars().take(self.max_context_chars).collect();
        rag_eval::fill(&self.template, &[("context", &ctx), ("claim", claim)])
    }
}

/// One NLI verdict: does this (premise, hypothesis) pair's label
/// distribution say "entailed"? `labels` are (name, probability) in the
/// model's order; an error names the model's labels when the
/// entailment label is not among them.
pub fn nli_entails(p: &Params, labels: &[(String, f32)]) -> Result<bool, String> {
    let i = labels
        .iter()
        .position(|(l, _)| l.eq_ignore_ascii_case(&p.entailment_label))
        .ok_or_else(|| {
            format!(
                "faithfulness nli: the NLI model has no label {:?} (its labels: {}); set entailment_label",
                p.entailment_label,
                labels
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let prob = labels[i].1;
    Ok(match p.entailment_threshold {
        Some(t) => f64::from(prob) >= t,
        // Ties go to the first label in the model's order, as argmax does.
        None => labels
            .iter()
            .enumerate()
            .all(|(j, (_, q))| *q < prob || (*q == prob && j >= i)),
    })
}

/// The (premise, hypothesis) pairs that judge one claim: each non-empty
/// context against the claim.
pub fn nli_pairs(contexts: &[String], claim: &str) -> Vec<(String, String)> {
    contexts
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| (c.clone(), claim.to_string()))
        .collect()
}

/// What there is to judge.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// No claims: nothing to judge.
    NoClaims,
    /// Claims but no contexts: none supported, nothing to ask.
    NoContexts(usize),
    Judge(Vec<String>),
}

pub fn task(answer: &str, contexts: &[String]) -> Task {
    let c = claims::split(answer);
    if c.is_empty() {
        Task::NoClaims
    } else if contexts.iter().all(|x| x.trim().is_empty()) {
        Task::NoContexts(c.len())
    } else {
        Task::Judge(c)
    }
}

/// Lexical verdicts, one per claim.
pub fn lexical(threshold: f64, claims_: &[String], contexts: &[String]) -> Vec<bool> {
    let vocab = claims::context_vocabulary(contexts);
    claims_
        .iter()
        .map(|c| claims::lexical_support(c, &vocab) >= threshold)
        .collect()
}

/// The scores, in [`Params::names`] order.
pub fn scores(p: &Params, claims_: usize, supported: usize, unparsed: usize) -> Vec<(String, f64)> {
    let faithfulness = if claims_ == 0 {
        1.0
    } else {
        supported as f64 / claims_ as f64
    };
    let mut v = vec![
        ("faithfulness".to_string(), faithfulness),
        (
            "hallucination".into(),
            f64::from(u8::from(faithfulness < 0.5)),
        ),
        ("claims".into(), claims_ as f64),
    ];
    if p.mode == Mode::Llm {
        v.push(("judge_unparsed".into(), unparsed as f64));
    }
    v
}

/// Scores an answer with `judge` deciding each claim (`Some(true)`
/// supported, `Some(false)` not, `None` unparseable): the LLM judge or the
/// NLI model; lexical mode ignores `judge`.
pub fn evaluate<E>(
    p: &Params,
    answer: &str,
    contexts: &[String],
    mut judge: impl FnMut(&str) -> Result<Option<bool>, E>,
) -> Result<Vec<(String, f64)>, E> {
    let claims_ = match task(answer, contexts) {
        Task::NoClaims => return Ok(scores(p, 0, 0, 0)),
        Task::NoContexts(n) => return Ok(scores(p, n, 0, 0)),
        Task::Judge(c) => c,
    };
    let (mut supported, mut unparsed) = (0, 0);
    match p.mode {
        Mode::Lexical => {
            supported = lexical(p.threshold, &claims_, contexts)
                .into_iter()
                .filter(|s| *s)
                .count();
        }
        Mode::Llm | Mode::Nli => {
            for c in &claims_ {
                match judge(c)? {
                    Some(true) => supported += 1,
                    Some(false) => {}
                    None => unparsed += 1,
                }
            }
        }
    }
    Ok(scores(p, claims_.len(), supported, unparsed))
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.3", world: "metric" });

    use exports::forge::plugin::scorer::Guest;
    use forge::plugin::inference::{self, Message};
    use forge::plugin::log::{Level, log};
    use forge::plugin::nli::{self, Pair};
    use forge::plugin::types::{Answer, Example, PluginError, Score};

    struct Metric;

    impl Guest for Metric {
        fn names(params: String) -> Vec<String> {
            super::Params::parse(&params)
                .map(|p| p.names())
                .unwrap_or_default()
        }

        fn evaluate(
            _example: Example,
            answer: Answer,
            params: String,
        ) -> Result<Vec<Score>, PluginError> {
            let p = super::Params::parse(&params).map_err(PluginError::InvalidInput)?;
            if p.mode == super::Mode::Nli {
                let judge = |claim: &str| -> Result<Option<bool>, PluginError> {
                    let pairs: Vec<Pair> = super::nli_pairs(&answer.contexts, claim)
                        .into_iter()
                        .map(|(premise, hypothesis)| Pair {
                            premise,
                            hypothesis,
                        })
                        .collect();
                    let rows = nli::classify(&pairs)
                        .map_err(|e| PluginError::Unavailable(format!("faithfulness nli: {e}")))?;
                    let mut supported = false;
                    for row in rows {
                        let labels: Vec<(String, f32)> =
                            row.into_iter().map(|l| (l.label, l.probability)).collect();
                        supported |=
                            super::nli_entails(&p, &labels).map_err(PluginError::InvalidInput)?;
                    }
                    log(
                        Level::Info,
                        &format!("claim {claim:?}: nli supported = {supported}"),
                    );
                    Ok(Some(supported))
                };
                let v = super::evaluate(&p, &answer.text, &answer.contexts, judge)?;
                return Ok(v
                    .into_iter()
                    .map(|(name, value)| Score { name, value })
                    .collect());
            }
            let mut gp = inference::default_params();
            gp.max_tokens = p.max_tokens;
            gp.temperature = 0.0;
            gp.stop = vec!["\n".into()];
            let judge = |claim: &str| -> Result<Option<bool>, PluginError> {
                let prompt = p.prompt(&answer.contexts, claim);
                let out = if p.chat {
                    let mut messages = Vec::new();
                    if let Some(s) = &p.system {
                        messages.push(Message {
                            role: "system".into(),
                            content: s.clone(),
                        });
                    }
                    messages.push(Message {
                        role: "user".into(),
                        content: prompt,
                    });
                    inference::chat(&messages, &gp)
                } else {
                    inference::complete(&prompt, &gp)
                }
                .map_err(|e| PluginError::Unavailable(format!("faithfulness judge: {e:?}")))?;
                let verdict = rag_eval::claims::parse_verdict(&out.text);
                log(
                    Level::Info,
                    &format!("claim {claim:?}: judge said {:?} -> {verdict:?}", out.text),
                );
                Ok(verdict)
            };
            let v = super::evaluate(&p, &answer.text, &answer.contexts, judge)?;
            Ok(v.into_iter()
                .map(|(name, value)| Score { name, value })
                .collect())
        }
    }

    export!(Metric);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn get(v: &[(String, f64)], name: &str) -> f64 {
        v.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn params_have_defaults_and_clear_errors() {
        let p = Params::parse("").unwrap();
        assert_eq!((p.mode, p.threshold, p.max_tokens), (Mode::Llm, 0.8, 4));
        assert_eq!(
            p.names(),
            ["faithfulness", "hallucination", "claims", "judge_unparsed"]
        );
        let l = Params::parse(r#"{"mode":"lexical"}"#).unwrap();
        assert_eq!(l.names(), ["faithfulness", "hallucination", "claims"]);
        let n = Params::parse(r#"{"mode":"nli"}"#).unwrap();
        assert_eq!(n.names(), ["faithfulness", "hallucination", "claims"]);
        assert!(
            Params::parse(r#"{"mode":"judge"}"#)
                .unwrap_err()
                .contains("unknown variant")
        );
        assert!(
            Params::parse(r#"{"mode":"nli","entailment_threshold":1.5}"#)
                .unwrap_err()
                .contains("entailment_threshold")
        );
        assert!(Params::parse(r#"{"threshold":2}"#).is_err());
        assert!(
            Params::parse(r#"{"template":"{context}"}"#)
                .unwrap_err()
                .contains("{claim}")
        );
        let prompt = p.prompt(&s(&["A.", "B."]), "C {context}");
        assert_eq!(
            prompt,
            "Context:\nA.\n\nB.\n\nStatement: C {context}\n\nIs the statement supported by the context? Answer yes or no."
        );
    }

    #[test]
    fn llm_mode_counts_verdicts_and_unparsed() {
        let p = Params::parse("").unwrap();
        let ctx = s(&["whatever"]);
        let verdicts = [Some(true), Some(false), None];
        let mut i = 0;
        let v = evaluate::<()>(&p, "One. Two. Three.", &ctx, |_| {
            i += 1;
            Ok(verdicts[i - 1])
        })
        .unwrap();
        assert_eq!(i, 3);
        assert!((get(&v, "faithfulness") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(get(&v, "hallucination"), 1.0);
        assert_eq!(get(&v, "claims"), 3.0);
        assert_eq!(get(&v, "judge_unparsed"), 1.0);
        // A judge failure is the metric's failure.
        assert_eq!(evaluate(&p, "One.", &ctx, |_| Err("down")), Err("down"));
    }

    #[test]
    fn empty_answers_and_missing_contexts_are_defined() {
        let p = Params::parse("").unwrap();
        let never = |_: &str| -> Result<Option<bool>, ()> { panic!("judge asked") };
        let v = evaluate(&p, "", &s(&["ctx"]), never).unwrap();
        assert_eq!(
            (
                get(&v, "faithfulness"),
                get(&v, "hallucination"),
                get(&v, "claims")
            ),
            (1.0, 0.0, 0.0)
        );
        let v = evaluate(&p, "I don't know.", &s(&["ctx"]), never).unwrap();
        assert_eq!(get(&v, "faithfulness"), 1.0);
        let v = evaluate(&p, "Paris.", &[], never).unwrap();
        assert_eq!(
            (
                get(&v, "faithfulness"),
                get(&v, "hallucination"),
                get(&v, "claims")
            ),
            (0.0, 1.0, 1.0)
        );
    }

    fn l(v: &[(&str, f32)]) -> Vec<(String, f32)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    }

    #[test]
    fn nli_verdicts_by_label_name_argmax_or_threshold() {
        let p = Params::parse(r#"{"mode":"nli"}"#).unwrap();
        // cross-encoder/nli-* order: contradiction, entailment, neutral.
        let ce = l(&[
            ("contradiction", 0.1),
            ("entailment", 0.6),
            ("neutral", 0.3),
        ]);
        assert_eq!(nli_entails(&p, &ce), Ok(true));
        // roberta-large-mnli order and case: entailment last.
        let mnli = l(&[
            ("CONTRADICTION", 0.5),
            ("NEUTRAL", 0.1),
            ("ENTAILMENT", 0.4),
        ]);
        assert_eq!(nli_entails(&p, &mnli), Ok(false));
        let t = Params::parse(r#"{"mode":"nli","entailment_threshold":0.35}"#).unwrap();
        assert_eq!(nli_entails(&t, &mnli), Ok(true));
        let e = nli_entails(&p, &l(&[("LABEL_0", 1.0)])).unwrap_err();
        assert!(
            e.contains("no label \"entailment\"") && e.contains("LABEL_0"),
            "{e}"
        );
        assert_eq!(
            nli_pairs(&s(&["A.", " ", "B."]), "c"),
            [
                ("A.".to_string(), "c".to_string()),
                ("B.".into(), "c".into())
            ]
        );
    }
}
