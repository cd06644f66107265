//! Built indexes kept on disk (`<home>/indexes.redb`): the chunks and their
//! vectors, keyed by everything they depend on (corpus sha256, chunking,
//! embedding model id and weights sha256), so another experiment, sweep cell
//! or `index build` with the same key reloads instead of re-embedding. The
//! HNSW graph is not stored: it is rebuilt from the vectors (seconds for the
//! SQuAD corpus; see BENCHMARKS.md). Names given by `index build` point at a
//! key.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chunk::{Chunk, ChunkParams};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("index_meta");
const CHUNKS: TableDefinition<&str, &[u8]> = TableDefinition::new("index_chunks");
const VECTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("index_vectors");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("index_names");

#[derive(Debug, thiserror::Error)]
#[error("index store {path}: {message}")]
pub struct PersistError {
    pub path: PathBuf,
    pub message: String,
}

/// What an index was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyParts {
    pub corpus_sha256: String,
    pub chunk: ChunkParams,
    pub embedding: String,
    pub weights_sha256: String,
}

impl KeyParts {
    pub fn key(&self) -> String {
        let json = serde_json::to_string(self).expect("serialisable");
        hex::encode(&Sha256::digest(json.as_bytes())[..16])
    }
}

/// Everything about a stored index but its chunks and vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub parts: KeyParts,
    /// The corpus file it was built from (informational).
    pub corpus: String,
    pub documents: usize,
    pub chunks: usize,
    /// 0 until vectors are stored.
    pub dim: usize,
    pub chunk_ms: f64,
    pub embed_ms: f64,
    /// RFC 3339.
    pub created: String,
}

pub struct IndexStore {
    db: Database,
    path: PathBuf,
}

impl IndexStore {
    pub fn path_in(home: &Path) -> PathBuf {
        home.join("indexes.redb")
    }

    pub fn open(home: &Path) -> Result<Self, PersistError> {
        let path = Self::path_in(home);
        let err = |m: String| PersistError {
            path: path.clone(),
            message: m,
        };
        std::fs::create_dir_all(home).map_err(|e| err(e.to_string()))?;
        // Another process may hold the file for a moment (a read or a
        // write; never an embedding run): wait for it rather than fail.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let db = loop {
            match Database::create(&path) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(err(e.to_string())),
            }
        };
        let s = Self { db, path };
        s.write(|t| {
            t.open_table(META)?;
            t.open_table(CHUNKS)?;
            t.open_table(VECTORS)?;
            t.open_table(NAMES)?;
            Ok(())
        })?;
        Ok(s)
    }

    fn err(&self, e: impl std::fmt::Display) -> PersistError {
        PersistError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), PersistError> {
        let t = self.db.begin_write().map_err(|e| self.err(e))?;
        f(&t).map_err(|e| self.err(e))?;
        t.commit().map_err(|e| self.err(e))
    }

    fn get_bytes(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        let t = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = t.open_table(table).map_err(|e| self.err(e))?;
        Ok(table
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec()))
    }

    pub fn meta(&self, key: &str) -> Result<Option<Meta>, PersistError> {
        self.get_bytes(META, key)?
            .map(|b| serde_json::from_slice(&b).map_err(|e| self.err(e)))
            .transpose()
    }

    pub fn chunks(&self, key: &str) -> Result<Option<Vec<Chunk>>, PersistError> {
        self.get_bytes(CHUNKS, key)?
            .map(|b| serde_json::from_slice(&b).map_err(|e| self.err(e)))
            .transpose()
    }

    /// Row-major f32 vectors, if stored.
    pub fn vectors(&self, key: &str) -> Result<Option<Vec<f32>>, PersistError> {
        Ok(self.get_bytes(VECTORS, key)?.map(|b| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }))
    }

    /// Stores (or replaces) an index's meta, chunks and, when given, vectors.
    pub fn put(
        &self,
        meta: &Meta,
        chunks: &[Chunk],
        vectors: Option<&[f32]>,
    ) -> Result<(), PersistError> {
        let m = serde_json::to_vec(meta).map_err(|e| self.err(e))?;
        let c = serde_json::to_vec(chunks).map_err(|e| self.err(e))?;
        let v: Option<Vec<u8>> = vectors.map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.write(|t| {
            t.open_table(META)?
                .insert(meta.key.as_str(), m.as_slice())?;
            t.open_table(CHUNKS)?
                .insert(meta.key.as_str(), c.as_slice())?;
            if let Some(v) = &v {
                t.open_table(VECTORS)?
                    .insert(meta.key.as_str(), v.as_slice())?;
            }
            Ok(())
        })
    }

    pub fn set_name(&self, name: &str, key: &str) -> Result<(), PersistError> {
        self.write(|t| {
            t.open_table(NAMES)?.insert(name, key)?;
            Ok(())
        })
    }

    pub fn key_of(&self, name: &str) -> Result<Option<String>, PersistError> {
        let t = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = t.open_table(NAMES).map_err(|e| self.err(e))?;
        Ok(table
            .get(name)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_string()))
    }

    /// Named indexes with their meta, by name.
    pub fn list(&self) -> Result<Vec<(String, Meta)>, PersistError> {
        let names: Vec<(String, String)> = {
            let t = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = t.open_table(NAMES).map_err(|e| self.err(e))?;
            table
                .iter()
                .map_err(|e| self.err(e))?
                .filter_map(|r| r.ok())
                .map(|(k, v)| (k.value().to_string(), v.value().to_string()))
                .collect()
        };
        let mut out = Vec::new();
        for (name, key) in names {
            if let Some(m) = self.meta(&key)? {
                out.push((name, m));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_names() {
        let d = tempfile::tempdir().unwrap();
        let parts = KeyParts {
            corpus_sha256: "c".into(),
            chunk: ChunkParams {
                tokens: 128,
                overlap: 16,
            },
            embedding: "m".into(),
            weights_sha256: "w".into(),
        };
        let other = KeyParts {
            chunk: ChunkParams {
                tokens: 256,
                overlap: 16,
            },
            ..parts.clone()
        };
        assert_ne!(parts.key(), other.key());
        let meta = Meta {
            key: parts.key(),
            parts,
            corpus: "x.jsonl".into(),
            documents: 1,
            chunks: 1,
            dim: 2,
            chunk_ms: 1.0,
            embed_ms: 2.0,
            created: "now".into(),
        };
        let chunks = vec![Chunk {
            id: "a#0".into(),
            doc_id: "a".into(),
            title: None,
            text: "t".into(),
            start: 0,
            end: 1,
        }];
        {
            let s = IndexStore::open(d.path()).unwrap();
            s.put(&meta, &chunks, Some(&[0.5, -0.25])).unwrap();
            s.set_name("n", &meta.key).unwrap();
        }
        let s = IndexStore::open(d.path()).unwrap();
        assert_eq!(s.meta(&meta.key).unwrap().unwrap(), meta);
        assert_eq!(s.chunks(&meta.key).unwrap().unwrap(), chunks);
        assert_eq!(s.vectors(&meta.key).unwrap().unwrap(), [0.5, -0.25]);
        assert_eq!(s.key_of("n").unwrap().as_deref(), Some(meta.key.as_str()));
        assert_eq!(s.list().unwrap()[0].0, "n");
        assert!(s.meta("nope").unwrap().is_none());
    }
}
