//! Datasets in JSONL, read with line-numbered errors, and seeded sampling.
//! Two kinds (`[dataset] kind`): QA rows (`{"id", "question", "answers",
//! "context"?, "title"?, "meta"?}`, the default) and preference pairs
//! (`{"id", "prompt", "chosen", "rejected", "meta"?}`, read by
//! [`preference`], the reader `train dpo` uses too).

pub mod preference;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a dataset's rows are (`[dataset] kind`). Chosen in the config, not
/// guessed from the rows: a typo in a field name should be an error at its
/// line, not a switch of kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// `{id, question, answers, context?, title?, meta?}`.
    #[default]
    Qa,
    /// `{id, prompt, chosen, rejected, meta?}`: an example's `question` is
    /// the prompt as written, its `answers` are empty, and its metadata is
    /// `{"chosen", "rejected", "messages", "meta"}`, `messages` being the
    /// prompt split into chat turns as `train dpo` splits it.
    Preference,
}

/// One row of a dataset (a QA row, or a preference pair as above).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    pub question: String,
    pub answers: Vec<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Everything else on the row, kept for plugins.
    #[serde(default)]
    pub meta: serde_json::Value,
}

impl Example {
    /// The row as the contract's `example` record: what plugins see
    /// (everything else on the row as JSON text in `metadata`).
    pub fn to_wit(&self) -> crate::components::bindings::types::Example {
        crate::components::bindings::types::Example {
            id: self.id.clone(),
            question: self.question.clone(),
            answers: self.answers.clone(),
            context: self.context.clone(),
            metadata: if self.meta.is_null() {
                "{}".into()
            } else {
                self.meta.to_string()
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {path}: {error}")]
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
    #[error("{path}: duplicate id {id:?} on lines {first} and {second}")]
    DuplicateId {
        path: PathBuf,
        id: String,
        first: usize,
        second: usize,
    },
    #[error("{path}: no examples")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Preference(#[from] preference::DataError),
}

/// A dataset file in memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    /// sha256 of the file's bytes, recorded with experiments.
    pub sha256: String,
    pub examples: Vec<Example>,
    /// Preference pairs left out because a side is empty after stripping.
    pub skipped_empty: usize,
}

impl Dataset {
    /// A dataset of the given kind.
    pub fn load_as(path: &Path, kind: DatasetKind) -> Result<Self, DatasetError> {
        match kind {
            DatasetKind::Qa => Self::load(path),
            DatasetKind::Preference => Self::load_preference(path),
        }
    }

    /// Preference pairs as examples (see [`DatasetKind::Preference`]).
    fn load_preference(path: &Path) -> Result<Self, DatasetError> {
        let data = preference::PreferenceData::load(path)?;
        let mut seen = std::collections::HashMap::new();
        let mut examples = Vec::with_capacity(data.rows.len());
        for row in data.rows {
            let messages =
                preference::split_transcript(&row.prompt).map_err(|message| DatasetError::Row {
                    path: path.into(),
                    line: row.line,
                    field: "prompt".into(),
                    message,
                })?;
            if let Some(first) = seen.insert(row.id.clone(), row.line) {
                return Err(DatasetError::DuplicateId {
                    path: path.into(),
                    id: row.id,
                    first,
                    second: row.line,
                });
            }
            examples.push(Example {
                id: row.id,
                question: row.prompt,
                answers: vec![],
                context: None,
                title: None,
                meta: serde_json::json!({
                    "chosen": row.chosen,
                    "rejected": row.rejected,
                    "messages": messages,
                    "meta": row.meta,
                }),
            });
        }
        Ok(Self {
            path: path.into(),
            sha256: data.sha256,
            examples,
            skipped_empty: data.skipped_empty,
        })
    }

    /// A QA dataset.
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let (sha256, text) = read_hashed(path).map_err(|error| DatasetError::Io {
            path: path.into(),
            error,
        })?;
        let mut examples = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for line in json_lines(&text) {
            let (lineno, value) = line.map_err(|(line, message)| DatasetError::Row {
                path: path.into(),
                line,
                field: "(json)".into(),
                message,
            })?;
            let row = |field: &str, message: String| DatasetError::Row {
                path: path.into(),
                line: lineno,
                field: field.into(),
                message,
            };
            let ex = parse_row(&value).map_err(|(field, msg)| row(field, msg))?;
            if let Some(first) = seen.insert(ex.id.clone(), lineno) {
                return Err(DatasetError::DuplicateId {
                    path: path.into(),
                    id: ex.id,
                    first,
                    second: lineno,
                });
            }
            examples.push(ex);
        }
        if examples.is_empty() {
            return Err(DatasetError::Empty { path: path.into() });
        }
        Ok(Self {
            path: path.into(),
            sha256,
            examples,
            skipped_empty: 0,
        })
    }

    /// The indices of a seeded sample of `n` examples, in file order, so the
    /// same (file, n, seed) always gives the same examples.
    pub fn sample_indices(&self, n: Option<usize>, seed: u64) -> Vec<usize> {
        let total = self.examples.len();
        match n {
            Some(n) if n < total => {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut idx = rand::seq::index::sample(&mut rng, total, n).into_vec();
                idx.sort_unstable();
                idx
            }
            _ => (0..total).collect(),
        }
    }
}

/// A data file's text and the sha256 of its bytes (recorded with what is
/// run on it). Invalid UTF-8 is replaced, so a bad byte fails its line's
/// JSON, with the line number.
pub(crate) fn read_hashed(path: &Path) -> std::io::Result<(String, String)> {
    let bytes = std::fs::read(path)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok((sha256, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Each non-blank line of JSONL text as JSON with its 1-based line number;
/// a line that is not JSON is `Err((line, "not valid JSON: …"))`. Every
/// JSONL kind (QA rows, preference pairs) is read through here.
pub(crate) fn json_lines(
    text: &str,
) -> impl Iterator<Item = Result<(usize, serde_json::Value), (usize, String)>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map(|v| (i + 1, v))
                .map_err(|e| (i + 1, format!("not valid JSON: {e}")))
        })
}

/// The id of a QA row (checked as the reader checks the whole row).
pub(crate) fn row_id(v: &serde_json::Value) -> Result<String, (&'static str, String)> {
    parse_row(v).map(|e| e.id)
}

fn parse_row(v: &serde_json::Value) -> Result<Example, (&'static str, String)> {
    let obj = v
        .as_object()
        .ok_or(("(row)", "expected a JSON object".to_string()))?;
    let string = |field: &'static str| -> Result<String, (&'static str, String)> {
        match obj.get(field) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) if field == "id" => Ok(n.to_string()),
            Some(other) => Err((field, format!("expected a string, found {other}"))),
            None => Err((field, "missing".to_string())),
        }
    };
    let opt_string = |field: &'static str| -> Result<Option<String>, (&'static str, String)> {
        match obj.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err((field, format!("expected a string or null, found {other}"))),
        }
    };
    let question = string("question").map_err(|(field, message)| {
        if obj.contains_key("chosen") && obj.contains_key("prompt") {
            let hint = "(a preference pair? set [dataset] kind = \"preference\")";
            (field, format!("{message} {hint}"))
        } else {
            (field, message)
        }
    })?;
    let answers = match obj.get("answers") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => Err(("answers", format!("expected strings, found {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(other) => {
            return Err((
                "answers",
                format!("expected a list of strings, found {other}"),
            ));
        }
        None => return Err(("answers", "missing".to_string())),
    };
    Ok(Example {
        id: string("id")?,
        question,
        answers,
        context: opt_string("context")?,
        title: opt_string("title")?,
        meta: obj.get("meta").cloned().unwrap_or(serde_json::Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.jsonl");
        std::fs::write(&p, body).unwrap();
        (d, p)
    }

    #[test]
    fn reads_rows_and_skips_blank_lines() {
        let (_d, p) = write(
            "{\"id\":\"a\",\"question\":\"q?\",\"answers\":[\"x\",\"y\"],\"context\":null}\n\n{\"id\":2,\"question\":\"r\",\"answers\":\"z\"}\n",
        );
        let d = Dataset::load(&p).unwrap();
        assert_eq!(d.examples.len(), 2);
        assert_eq!(d.examples[1].id, "2");
        assert_eq!(d.examples[1].answers, vec!["z"]);
        assert_eq!(d.sha256.len(), 64);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let (_d, p) = write(
            "{\"id\":\"a\",\"question\":\"q\",\"answers\":[]}\n{\"id\":\"b\",\"answers\":[]}\n",
        );
        let e = Dataset::load(&p).unwrap_err().to_string();
        assert!(e.ends_with("d.jsonl:2: question: missing"), "{e}");
        let (_d, p) = write("{\"id\":\"a\",\"question\":\"q\",\"answers\":[1, {}]}\n");
        let e = Dataset::load(&p).unwrap_err().to_string();
        assert!(e.contains("d.jsonl:1: answers: expected strings"), "{e}");
        let (_d, p) = write("{\"id\":\"a\",\"question\":\"q\",\"answers\":[]}\nnot json\n");
        assert!(
            Dataset::load(&p)
                .unwrap_err()
                .to_string()
                .contains("d.jsonl:2: (json)")
        );
        let (_d, p) = write(
            "{\"id\":\"a\",\"question\":\"q\",\"answers\":[]}\n{\"id\":\"a\",\"question\":\"q\",\"answers\":[]}\n",
        );
        assert!(
            Dataset::load(&p)
                .unwrap_err()
                .to_string()
                .contains("lines 1 and 2")
        );
    }

    #[test]
    fn preference_rows_are_examples_with_their_pair_in_metadata() {
        let (_d, p) = write(concat!(
            "{\"id\":\"a\",\"prompt\":\"\\n\\nHuman: hi\\n\\nAssistant: yo\\n\\nHuman: so?\\n\\nAssistant:\",",
            "\"chosen\":\" Fine.\",\"rejected\":\" No.\",\"meta\":{\"k\":1}}\n",
            "{\"id\":\"b\",\"prompt\":\"x\",\"chosen\":\"\",\"rejected\":\"z\"}\n",
        ));
        let d = Dataset::load_as(&p, DatasetKind::Preference).unwrap();
        assert_eq!((d.examples.len(), d.skipped_empty), (1, 1));
        let e = &d.examples[0];
        assert!(e.question.starts_with("\n\nHuman: hi") && e.answers.is_empty());
        let meta: serde_json::Value = serde_json::from_str(&e.to_wit().metadata).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({
                "chosen": " Fine.",
                "rejected": " No.",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": "so?"},
                ],
                "meta": {"k": 1},
            })
        );
        // A missing side, a transcript that cannot be split, a repeated id.
        let (_d, p) = write("{\"id\":\"a\",\"prompt\":\"x\",\"chosen\":\"y\"}\n");
        let e = Dataset::load_as(&p, DatasetKind::Preference).unwrap_err();
        assert!(
            e.to_string().ends_with("d.jsonl:1: rejected: missing"),
            "{e}"
        );
        let (_d, p) = write(
            "{\"id\":\"a\",\"prompt\":\"\\n\\nHuman: a\\n\\nAssistant: b\",\"chosen\":\"y\",\"rejected\":\"z\"}\n",
        );
        let e = Dataset::load_as(&p, DatasetKind::Preference).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "d.jsonl:1: prompt: the transcript does not end with an empty Assistant: turn"
            ),
            "{e}"
        );
        let row = "{\"id\":\"a\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"z\"}\n";
        let (_d, p) = write(&format!("{row}\n{row}"));
        let e = Dataset::load_as(&p, DatasetKind::Preference).unwrap_err();
        assert!(e.to_string().contains("lines 1 and 3"), "{e}");
        // Read as QA, a preference pair says which kind to set.
        let (_d, p) = write(row);
        let e = Dataset::load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "d.jsonl:1: question: missing (a preference pair? set [dataset] kind = \"preference\")"
            ),
            "{e}"
        );
    }

    #[test]
    fn sampling_is_seeded_sorted_and_stable() {
        let body: String = (0..50)
            .map(|i| format!("{{\"id\":\"{i}\",\"question\":\"q\",\"answers\":[]}}\n"))
            .collect();
        let (_d, p) = write(&body);
        let d = Dataset::load(&p).unwrap();
        let a = d.sample_indices(Some(10), 7);
        assert_eq!(a, d.sample_indices(Some(10), 7));
        assert_ne!(a, d.sample_indices(Some(10), 8));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(d.sample_indices(Some(100), 7).len(), 50);
        assert_eq!(d.sample_indices(None, 7).len(), 50);
    }
}
