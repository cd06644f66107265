//! Preference data: JSONL rows `{id, prompt, chosen, rejected, meta?}` with
//! line-numbered errors (as the QA datasets), pairs with an empty side
//! skipped and counted, and the HH transcript split into chat turns. One
//! reader for both users: `train dpo` (through `train::data`) and
//! experiments with `[dataset] kind = "preference"`.

use std::path::{Path, PathBuf};

use super::{json_lines, read_hashed};
use crate::engine::Message;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read preference data {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {field}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    #[error("{path}: no usable pairs ({skipped} skipped with an empty side)")]
    Empty { path: PathBuf, skipped: usize },
}

/// One row as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferenceRow {
    pub id: String,
    pub line: usize,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// The row's `meta` object, if any (`Null` when absent).
    pub meta: serde_json::Value,
}

#[derive(Clone, Debug)]
pub struct PreferenceData {
    pub path: PathBuf,
    /// sha256 of the file's bytes, recorded with the run.
    pub sha256: String,
    /// Usable rows in file order.
    pub rows: Vec<PreferenceRow>,
    /// Rows whose chosen or rejected is empty after stripping.
    pub skipped_empty: usize,
}

impl PreferenceData {
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let (sha256, text) = read_hashed(path).map_err(|error| DataError::Io {
            path: path.into(),
            error,
        })?;
        let (mut rows, mut skipped_empty) = (Vec::new(), 0);
        for line in json_lines(&text) {
            let (lineno, value) = line.map_err(|(line, message)| DataError::Row {
                path: path.into(),
                line,
                field: "(json)".into(),
                message,
            })?;
            let err = |field: &str, message: String| DataError::Row {
                path: path.into(),
                line: lineno,
                field: field.into(),
                message,
            };
            if !value.is_object() {
                return Err(err("(row)", "expected a JSON object".into()));
            }
            let text_of = |field: &str| -> Result<String, DataError> {
                match value.get(field) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(err(field, "must be a string".into())),
                    None => Err(err(field, "missing".into())),
                }
            };
            let id = match value.get("id") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(_) => return Err(err("id", "must be a string or a number".into())),
                None => return Err(err("id", "missing".into())),
            };
            let row = PreferenceRow {
                id,
                line: lineno,
                prompt: text_of("prompt")?,
                chosen: text_of("chosen")?,
                rejected: text_of("rejected")?,
                meta: value.get("meta").cloned().unwrap_or_default(),
            };
            // Nothing to prefer with an empty side (TRL's fixture skips them too).
            if row.chosen.trim().is_empty() || row.rejected.trim().is_empty() {
                skipped_empty += 1;
                continue;
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(DataError::Empty {
                path: path.into(),
                skipped: skipped_empty,
            });
        }
        Ok(Self {
            path: path.into(),
            sha256,
            rows,
            skipped_empty,
        })
    }
}

/// `"\n\nHuman: …\n\nAssistant: …\n\nAssistant:"` → user/assistant turns,
/// each stripped, the final empty assistant turn (the generation prompt)
/// dropped. A prompt with no turn markers is one user turn.
pub fn split_transcript(prompt: &str) -> Result<Vec<Message>, String> {
    const MARKERS: [(&str, &str); 2] = [("\n\nHuman:", "user"), ("\n\nAssistant:", "assistant")];
    // (start of marker, end of marker, role), left to right, non-overlapping.
    let mut cuts = Vec::new();
    let mut at = 0;
    while let Some(off) = prompt[at..].find("\n\n") {
        let start = at + off;
        match MARKERS.iter().find(|(m, _)| prompt[start..].starts_with(m)) {
            Some((m, role)) => {
                cuts.push((start, start + m.len(), *role));
                at = start + m.len();
            }
            None => at = start + 1,
        }
    }
    if cuts.is_empty() {
        return Ok(vec![message("user", prompt.trim())]);
    }
    if !prompt[..cuts[0].0].trim().is_empty() {
        return Err("the transcript does not start with a Human:/Assistant: turn".into());
    }
    let mut messages: Vec<Message> = cuts
        .iter()
        .enumerate()
        .map(|(i, &(_, end, role))| {
            let next = cuts.get(i + 1).map_or(prompt.len(), |c| c.0);
            message(role, prompt[end..next].trim())
        })
        .collect();
    match messages.last() {
        Some(m) if m.role == "assistant" && m.content.is_empty() => {
            messages.pop();
            Ok(messages)
        }
        _ => Err("the transcript does not end with an empty Assistant: turn".into()),
    }
}

fn message(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.jsonl");
        std::fs::write(&p, body).unwrap();
        (dir, p)
    }

    #[test]
    fn errors_name_line_and_field() {
        let (_d, p) = write(
            "{\"id\":\"a\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"z\"}\nnot json\n",
        );
        let e = PreferenceData::load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("p.jsonl:2: (json): not valid JSON: expected ident at line 1 column 2"),
            "{e}"
        );
        let (_d, p) = write("\n{\"id\":\"a\",\"prompt\":\"x\",\"rejected\":\"z\"}\n");
        let e = PreferenceData::load(&p).unwrap_err().to_string();
        assert!(e.ends_with("p.jsonl:2: chosen: missing"), "{e}");
        let (_d, p) = write("[1]\n");
        let e = PreferenceData::load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("p.jsonl:1: (row): expected a JSON object"),
            "{e}"
        );
        let e = PreferenceData::load(Path::new("/nonexistent/p.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read preference data /nonexistent/p.jsonl"),
            "{e}"
        );
    }

    #[test]
    fn empty_sides_are_skipped_and_counted() {
        let (_d, p) = write(concat!(
            "{\"id\":\"a\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"z\",\"meta\":{\"k\":1}}\n",
            "{\"id\":\"b\",\"prompt\":\"x\",\"chosen\":\"  \",\"rejected\":\"z\"}\n",
            "{\"id\":\"c\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"\"}\n",
        ));
        let d = PreferenceData::load(&p).unwrap();
        assert_eq!(d.rows.len(), 1);
        assert_eq!(d.rows[0].meta, serde_json::json!({"k": 1}));
        assert_eq!(d.skipped_empty, 2);
    }

    #[test]
    fn hh_train_has_three_empty_pairs() {
        let p =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/hh_harmless.train.jsonl");
        if !p.is_file() {
            eprintln!(
                "SKIPPED: hh_train_has_three_empty_pairs: {} not there",
                p.display()
            );
            return;
        }
        assert_eq!(PreferenceData::load(&p).unwrap().skipped_empty, 3);
    }

    #[test]
    fn transcript_turns() {
        let m = split_transcript(
            "\n\nHuman: hi there \n\nAssistant: hello\n\nHuman:  why?\n\nAssistant:",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("user", "hi there"),
                ("assistant", "hello"),
                ("user", "why?")
            ]
        );
        assert!(split_transcript("x\n\nHuman: a\n\nAssistant:").is_err());
        assert!(split_transcript("\n\nHuman: a\n\nAssistant: b").is_err());
        // Blank lines inside a turn stay in it.
        let m = split_transcript("\n\nHuman: a\n\nb\n\nAssistant:").unwrap();
        assert_eq!(m[0].content, "a\n\nb");
        assert_eq!(split_transcript(" plain ").unwrap()[0].content, "plain");
    }
}
