//! The model's own chat template (`tokenizer.chat_template`, Hugging Face
//! Jinja), rendered with minijinja.
//!
//! HF renders templates with Jinja2 `trim_blocks` + `lstrip_blocks`, a
//! `raise_exception` helper, and Python string methods; we provide the same
//! so common templates render byte-identically.

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::{EngineError, Message};

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template plus the special-token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token`/`eos_token` are exposed to it as
    /// variables of those names.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, EngineError> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| EngineError::Load(format!("chat template syntax: {e}")))?,
        );
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.set_unknown_method_callback(python_methods);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| EngineError::Load(format!("chat template: {e:#}")))?;
        Ok(Self {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Renders `messages` with the generation prompt appended (the text the
    /// model should continue as the assistant).
    pub fn render(&self, messages: &[Message]) -> Result<String, EngineError> {
        let messages: Value = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        let ctx = Value::from_pairs([
            ("messages", messages),
            ("add_generation_prompt", Value::from(true)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ]);
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| EngineError::Backend(format!("chat template: {e:#}")))?;
        tmpl.render(ctx)
            .map_err(|e| EngineError::InvalidParams(format!("chat template: {e:#}")))
    }
}

/// Templates call this to reject conversations they cannot express.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// Some templates stamp the date; a fixed date keeps prompts reproducible.
fn strftime_now(_format: String) -> String {
    "01 Jan 2025".to_string()
}

/// The handful of Python `str`/`dict` methods HF templates use.
fn python_methods(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let str_arg = |i: usize| -> Result<Option<&str>, Error> {
        match args.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{method}: expected a string"),
                )
            }),
        }
    };
    if let Some(s) = value.as_str() {
        let out = match method {
            "strip" => match str_arg(0)? {
                Some(chars) => s.trim_matches(|c| chars.contains(c)).into(),
                None => s.trim().into(),
            },
            "lstrip" => match str_arg(0)? {
                Some(chars) => s.trim_start_matches(|c| chars.contains(c)).into(),
                None => s.trim_start().into(),
            },
            "rstrip" => match str_arg(0)? {
                Some(chars) => s.trim_end_matches(|c| chars.contains(c)).into(),
                None => s.trim_end().into(),
            },
            "startswith" => Value::from(s.starts_with(str_arg(0)?.unwrap_or(""))),
            "endswith" => Value::from(s.ends_with(str_arg(0)?.unwrap_or(""))),
            "upper" => s.to_uppercase().into(),
            "lower" => s.to_lowercase().into(),
            "title" => state.apply_filter("title", std::slice::from_ref(value))?,
            "capitalize" => state.apply_filter("capitalize", std::slice::from_ref(value))?,
            "replace" => {
                let (from, to) = (str_arg(0)?.unwrap_or(""), str_arg(1)?.unwrap_or(""));
                s.replace(from, to).into()
            }
            "split" => match str_arg(0)? {
                Some(sep) => s.split(sep).map(Value::from).collect(),
                None => s.split_whitespace().map(Value::from).collect(),
            },
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        return Ok(out);
    }
    if value.kind() == ValueKind::Map {
        match method {
            "items" => return state.apply_filter("items", std::slice::from_ref(value)),
            "keys" => return Ok(value.try_iter()?.collect()),
            "values" => {
                return Ok(value
                    .try_iter()?
                    .map(|k| value.get_item(&k).unwrap_or_default())
                    .collect());
            }
            "get" => {
                let key = args.first().cloned().unwrap_or_default();
                let found = value.get_item(&key)?;
                return Ok(if found.is_undefined() {
                    args.get(1).cloned().unwrap_or_default()
                } else {
                    found
                });
            }
            _ => {}
        }
    }
    Err(Error::from(ErrorKind::UnknownMethod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gguf_tokenizer::tests::{content, golden_path};

    #[test]
    fn renders_golden_prompts_exactly() {
        let Some(content) = content() else { return };
        let source = content.metadata["tokenizer.chat_template"]
            .to_string()
            .unwrap()
            .clone();
        let tmpl = ChatTemplate::new(&source, "<|im_start|>", "<|im_end|>").unwrap();
        let golden = std::fs::read_to_string(golden_path("smollm2_greedy.jsonl")).unwrap();
        let mut n = 0;
        for line in golden.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let messages: Vec<Message> = serde_json::from_value(row["messages"].clone()).unwrap();
            let got = tmpl.render(&messages).unwrap();
            assert_eq!(got, row["rendered_prompt"].as_str().unwrap());
            n += 1;
        }
        assert_eq!(n, 21);
    }

    #[test]
    fn python_methods_and_raise_exception() {
        let src = "{% for m in messages %}{{ m['content'].strip().upper() }}|{% endfor %}\
                   {% if messages|length > 1 %}{{ raise_exception('too many') }}{% endif %}";
        let tmpl = ChatTemplate::new(src, "", "").unwrap();
        let one = [Message {
            role: "user".into(),
            content: "  hi \n".into(),
        }];
        assert_eq!(tmpl.render(&one).unwrap(), "HI|");
        let two = [one[0].clone(), one[0].clone()];
        let err = tmpl.render(&two).unwrap_err().to_string();
        assert!(err.contains("too many"), "{err}");
    }
}
