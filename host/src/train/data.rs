//! Preference data: JSONL rows `{id, prompt, chosen, rejected}` with
//! line-numbered errors (as the QA datasets), pairs with an empty side
//! skipped and counted, and the seeded train/validation split.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::experiment::datasets::{json_lines, read_hashed};

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

/// Seeded split of `n` rows: `(train, validation)` indices, each in file
/// order. The validation set is `round(n · fraction)` rows, at least one
/// when the fraction is positive and there are two or more rows.
pub fn split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut n_val = (n as f64 * fraction).round() as usize;
    if fraction > 0.0 && n >= 2 {
        n_val = n_val.clamp(1, n - 1);
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
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
            "{\"id\":\"a\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"z\"}\n",
            "{\"id\":\"b\",\"prompt\":\"x\",\"chosen\":\"  \",\"rejected\":\"z\"}\n",
            "{\"id\":\"c\",\"prompt\":\"x\",\"chosen\":\"y\",\"rejected\":\"\"}\n",
        ));
        let d = PreferenceData::load(&p).unwrap();
        assert_eq!(d.rows.len(), 1);
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
    fn split_is_seeded_disjoint_and_complete() {
        let (t, v) = split(20, 0.1, 7);
        assert_eq!((t.len(), v.len()), (18, 2));
        assert_eq!(split(20, 0.1, 7), (t.clone(), v.clone()));
        assert_ne!(split(20, 0.1, 8).1, v);
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(split(5, 0.0, 1).1.len(), 0);
        assert_eq!(split(3, 0.01, 1).1.len(), 1);
    }
}
