//! What method components share, as plain Rust (no WIT), so it is unit-tested
//! natively and each component links only what it uses: strict params
//! parsing with the common generation overrides, prompt-template filling,
//! reading a final answer out of a chain of thought (`extract`), few-shot
//! exemplars (`fewshot`), self-consistency voting (`vote`) and the ReAct
//! loop (`react`). Components map [`Step`]s and [`Turn`]s to their WIT types.

pub mod extract;
pub mod fewshot;
pub mod react;
pub mod vote;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Generation parameters any method accepts in its params, overriding the
/// experiment's `[generation]`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Option<Vec<String>>,
}

impl Overrides {
    const KEYS: [&'static str; 4] = ["max_tokens", "temperature", "top_p", "stop"];

    /// Applies the overrides to the fields of the host's generate-params.
    pub fn apply(
        self,
        max_tokens: &mut u32,
        temperature: &mut f32,
        top_p: &mut f32,
        stop: &mut Vec<String>,
    ) {
        if let Some(v) = self.max_tokens {
            *max_tokens = v;
        }
        if let Some(v) = self.temperature {
            *temperature = v;
        }
        if let Some(v) = self.top_p {
            *top_p = v;
        }
        if let Some(v) = self.stop {
            *stop = v;
        }
    }
}

/// Parses a method's params JSON ("" means `{}`) into its own struct `T`
/// (which should deny unknown fields, so typos are errors) and the common
/// [`Overrides`].
pub fn parse_params<T: DeserializeOwned>(
    params: &str,
    method: &str,
) -> Result<(T, Overrides), String> {
    let err = |e: serde_json::Error| format!("{method} params: {e}");
    let mut value: serde_json::Value = if params.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(params).map_err(err)?
    };
    let obj = value
        .as_object_mut()
        .ok_or_else(|| format!("{method} params: expected a JSON object"))?;
    let common: serde_json::Map<String, serde_json::Value> = Overrides::KEYS
        .iter()
        .filter_map(|k| obj.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    let overrides = serde_json::from_value(serde_json::Value::Object(common)).map_err(err)?;
    let own = serde_json::from_value(value).map_err(err)?;
    Ok((own, overrides))
}

/// The kind of a trace step, as the WIT `step-kind` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Thought,
    Action,
    Observation,
    Answer,
    Note,
}

/// One step of a method's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: Kind,
    pub content: String,
}

impl Step {
    pub fn new(kind: Kind, content: impl Into<String>) -> Self {
        Self {
            kind,
            content: content.into(),
        }
    }
    pub fn note(content: impl Into<String>) -> Self {
        Self::new(Kind::Note, content)
    }
}

/// One chat message: `role` is "system", "user" or "assistant".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub role: &'static str,
    pub content: String,
}

impl Turn {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant",
            content: content.into(),
        }
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (of an exemplar file, of an
/// example id for seeds) that does not depend on the Rust version.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Fills `{question}` and `{context}` in a prompt template.
pub fn fill(template: &str, question: &str, context: Option<&str>) -> String {
    template
        .replace("{question}", question)
        .replace("{context}", context.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        numeric: bool,
    }

    #[test]
    fn params_split_into_own_fields_and_overrides() {
        let (own, o): (Own, Overrides) =
            parse_params(r#"{"numeric": true, "max_tokens": 9, "stop": ["\n"]}"#, "m").unwrap();
        assert_eq!(own, Own { numeric: true });
        assert_eq!(
            o,
            Overrides {
                max_tokens: Some(9),
                temperature: None,
                top_p: None,
                stop: Some(vec!["\n".into()])
            }
        );
        let (own, o): (Own, Overrides) = parse_params("", "m").unwrap();
        assert_eq!((own, o), (Own { numeric: false }, Overrides::default()));
    }

    #[test]
    fn typos_and_bad_types_are_errors_naming_the_method() {
        let e = parse_params::<Own>(r#"{"numerc": true}"#, "cot").unwrap_err();
        assert!(e.starts_with("cot params: unknown field `numerc`"), "{e}");
        let e = parse_params::<Own>(r#"{"max_tokens": "many"}"#, "cot").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        assert!(
            parse_params::<Own>("[1]", "cot")
                .unwrap_err()
                .contains("expected a JSON object")
        );
    }

    #[test]
    fn overrides_apply_only_what_is_set() {
        let (mut m, mut t, mut p, mut s) = (64, 0.0, 1.0, vec![]);
        Overrides {
            max_tokens: Some(8),
            temperature: None,
            top_p: Some(0.5),
            stop: None,
        }
        .apply(&mut m, &mut t, &mut p, &mut s);
        assert_eq!((m, t, p, s.len()), (8, 0.0, 0.5, 0));
    }

    #[test]
    fn templates_fill_question_and_context() {
        assert_eq!(
            fill("{context}|Q: {question}", "why", Some("c")),
            "c|Q: why"
        );
        assert_eq!(fill("{context}Q: {question}", "why", None), "Q: why");
    }
}
