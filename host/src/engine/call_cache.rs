//! The call cache: completed generations stored under a content address of
//! everything that can change their output, so re-running an experiment
//! (or a sweep whose cells share calls) does not recompute them.
//!
//! Key = sha256 of (model file sha256, engine version, prompt, every
//! generation parameter). The prompt is keyed as the caller gave it: a raw
//! prompt is the exact text; chat messages are keyed as messages, because
//! the chat template that renders them is read from the model file, which
//! the model sha256 covers, and the renderer is part of the engine version.
//!
//! Which calls are cached: all of them. forge has no unseeded sampling —
//! every call carries a seed (the plugin's, or one derived from the
//! example's seed and the call's index) and draws from a per-request RNG —
//! so a sampled call is as deterministic as a greedy one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{GenParams, Generation, ModelInfo, Prompt};

const CALLS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("calls");
/// Log-probabilities of continuations (LLM rerankers, judges): a sweep
/// whose cells rerank the same candidates (the `k` axis) scores them once.
const SCORES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("scores");

#[derive(Debug, thiserror::Error)]
#[error("call cache {path}: {message}")]
pub struct CallCacheError {
    pub path: PathBuf,
    pub message: String,
}

/// Bumped by every change that can move a single output bit of the
/// embedded engine (kernels, op order, roundings), so a call cache filled
/// by an older build misses instead of answering with its numbers. The
/// package version alone does not move between such commits.
/// 2: forge-kernels matmuls; 3: llama.cpp's RMSNorm/RoPE/SwiGLU/FA roundings.
pub const NUMERICS_REVISION: u32 = 3;

/// What the engine's numerics depend on besides the model file: the
/// backend, how weights are held, the thread count, and this build's
/// version and numerics revision (a new forge may compute differently).
pub fn engine_version(info: &ModelInfo) -> String {
    format!(
        "forge-host {} numerics {NUMERICS_REVISION} {} weights={} threads={}",
        env!("CARGO_PKG_VERSION"),
        info.backend,
        info.weights,
        info.threads
    )
}

/// Everything a cached generation depends on.
#[derive(Serialize)]
pub struct CallKey<'a> {
    pub model_sha256: &'a str,
    pub engine_version: &'a str,
    pub prompt: &'a Prompt,
    /// Sampling (temperature, top-p, top-k, repetition penalty, seed),
    /// stop sequences, max tokens and log-probabilities.
    pub params: &'a GenParams,
}

impl CallKey<'_> {
    pub fn digest(&self) -> [u8; 32] {
        digest(self)
    }
}

/// Everything a cached score (log-probability of each continuation)
/// depends on.
#[derive(Serialize)]
pub struct ScoreKey<'a> {
    pub model_sha256: &'a str,
    pub engine_version: &'a str,
    pub prompt: &'a Prompt,
    pub continuations: &'a [String],
}

impl ScoreKey<'_> {
    pub fn digest(&self) -> [u8; 32] {
        // Tagged, so a score key can never equal a generation key.
        digest(&("score", self))
    }
}

fn digest(key: &impl Serialize) -> [u8; 32] {
    // serde_json writes struct fields in declaration order: stable.
    let bytes = serde_json::to_vec(key).expect("cache key serialises");
    Sha256::digest(&bytes).into()
}

pub struct CallCache {
    db: Database,
    path: PathBuf,
}

impl CallCache {
    /// Opens (creating) the cache at `path`. One handle per file per
    /// process: redb locks the file, and sweep cells open it in turn while
    /// earlier cells' handles may still be alive.
    pub fn open(path: &Path) -> Result<Arc<Self>, CallCacheError> {
        static OPEN: Mutex<Option<HashMap<PathBuf, Weak<CallCache>>>> = Mutex::new(None);
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        if let Some(c) = open.get(path).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let err = |message: String| CallCacheError {
            path: path.into(),
            message,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        txn.open_table(CALLS).map_err(|e| err(e.to_string()))?;
        txn.open_table(SCORES).map_err(|e| err(e.to_string()))?;
        txn.commit().map_err(|e| err(e.to_string()))?;
        let cache = Arc::new(Self {
            db,
            path: path.into(),
        });
        open.insert(path.into(), Arc::downgrade(&cache));
        Ok(cache)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> CallCacheError {
        CallCacheError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub fn get(&self, key: &[u8; 32]) -> Result<Option<Generation>, CallCacheError> {
        self.read(CALLS, key)
    }

    pub fn put(&self, key: &[u8; 32], generation: &Generation) -> Result<(), CallCacheError> {
        self.write(CALLS, key, generation)
    }

    pub fn get_scores(&self, key: &[u8; 32]) -> Result<Option<Vec<f64>>, CallCacheError> {
        self.read(SCORES, key)
    }

    pub fn put_scores(&self, key: &[u8; 32], scores: &[f64]) -> Result<(), CallCacheError> {
        self.write(SCORES, key, &scores)
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8; 32],
    ) -> Result<Option<T>, CallCacheError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(table).map_err(|e| self.err(e))?;
        let Some(v) = table.get(key.as_slice()).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        // An entry this build cannot read (older format) is a miss.
        Ok(serde_json::from_slice(v.value()).ok())
    }

    fn write(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &[u8; 32],
        value: &impl Serialize,
    ) -> Result<(), CallCacheError> {
        let bytes = serde_json::to_vec(value).expect("cache value serialises");
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(table).map_err(|e| self.err(e))?;
            table
                .insert(key.as_slice(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FinishReason, Message};

    fn params() -> GenParams {
        GenParams {
            stop: vec!["\n".into()],
            seed: 7,
            ..GenParams::greedy(32)
        }
    }

    fn key(model: &str, engine: &str, prompt: &Prompt, params: &GenParams) -> [u8; 32] {
        CallKey {
            model_sha256: model,
            engine_version: engine,
            prompt,
            params,
        }
        .digest()
    }

    #[test]
    fn a_change_of_any_single_key_field_misses() {
        let prompt = Prompt::Raw("Q: 2+2?\nA:".into());
        let base = key("abc", "v1", &prompt, &params());
        assert_eq!(base, key("abc", "v1", &prompt, &params()), "stable");
        let mut variants = vec![
            ("model sha256", key("abd", "v1", &prompt, &params())),
            ("engine version", key("abc", "v2", &prompt, &params())),
            (
                "prompt text",
                key("abc", "v1", &Prompt::Raw("Q: 2+3?\nA:".into()), &params()),
            ),
            (
                "chat vs raw",
                key(
                    "abc",
                    "v1",
                    &Prompt::Chat(vec![Message {
                        role: "user".into(),
                        content: "Q: 2+2?\nA:".into(),
                    }]),
                    &params(),
                ),
            ),
        ];
        let p = params();
        let changed: Vec<(&str, GenParams)> = vec![
            (
                "max_tokens",
                GenParams {
                    max_tokens: 33,
                    ..p.clone()
                },
            ),
            (
                "temperature",
                GenParams {
                    temperature: 0.5,
                    ..p.clone()
                },
            ),
            (
                "top_p",
                GenParams {
                    top_p: 0.9,
                    ..p.clone()
                },
            ),
            (
                "stop",
                GenParams {
                    stop: vec!["\n\n".into()],
                    ..p.clone()
                },
            ),
            (
                "seed",
                GenParams {
                    seed: 8,
                    ..p.clone()
                },
            ),
            (
                "top_k",
                GenParams {
                    top_k: 40,
                    ..p.clone()
                },
            ),
            (
                "repetition_penalty",
                GenParams {
                    repetition_penalty: 1.1,
                    ..p.clone()
                },
            ),
            (
                "logprobs",
                GenParams {
                    logprobs: Some(0),
                    ..p.clone()
                },
            ),
        ];
        for (name, q) in &changed {
            variants.push((name, key("abc", "v1", &prompt, q)));
        }
        for (name, k) in &variants {
            assert_ne!(*k, base, "{name} did not change the key");
        }
        // ...and every GenParams field is covered by one variant above.
        let fields = serde_json::to_value(params()).unwrap();
        for field in fields.as_object().unwrap().keys() {
            assert!(
                changed.iter().any(|(n, _)| n == field),
                "GenParams.{field} has no miss test"
            );
        }
    }

    #[test]
    fn stores_and_returns_generations_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/calls.redb");
        let g = Generation {
            prompt_text: "p".into(),
            text: "out".into(),
            prompt_tokens: 3,
            completion_tokens: 1,
            finish_reason: FinishReason::Stop,
            prefill_ms: 1.0,
            decode_ms: 2.0,
            tokens: vec![],
            cached_prompt_tokens: 0,
            max_batch: 0,
        };
        let k = [1u8; 32];
        {
            let c = CallCache::open(&path).unwrap();
            // A second open in the same process shares the handle.
            let again = CallCache::open(&path).unwrap();
            assert!(Arc::ptr_eq(&c, &again));
            assert_eq!(c.get(&k).unwrap(), None);
            c.put(&k, &g).unwrap();
        }
        let c = CallCache::open(&path).unwrap();
        assert_eq!(c.get(&k).unwrap(), Some(g));
        assert_eq!(c.get(&[2u8; 32]).unwrap(), None);
        // Scores live in their own table: the same key is a miss there.
        assert_eq!(c.get_scores(&k).unwrap(), None);
        c.put_scores(&k, &[-0.25, -1.5]).unwrap();
        assert_eq!(c.get_scores(&k).unwrap(), Some(vec![-0.25, -1.5]));
    }

    #[test]
    fn score_keys_miss_on_any_field_and_differ_from_call_keys() {
        let prompt = Prompt::Raw("Passage: p\nAnswer:".into());
        let conts = [" yes".to_string(), " no".to_string()];
        let key = |m: &str, e: &str, p: &Prompt, c: &[String]| {
            ScoreKey {
                model_sha256: m,
                engine_version: e,
                prompt: p,
                continuations: c,
            }
            .digest()
        };
        let base = key("abc", "v1", &prompt, &conts);
        assert_eq!(base, key("abc", "v1", &prompt, &conts));
        assert_ne!(base, key("abd", "v1", &prompt, &conts));
        assert_ne!(base, key("abc", "v2", &prompt, &conts));
        assert_ne!(base, key("abc", "v1", &Prompt::Raw("x".into()), &conts));
        assert_ne!(base, key("abc", "v1", &prompt, &conts[..1]));
        assert_ne!(
            base,
            key("abc", "v1", &prompt, &[" no".into(), " yes".into()])
        );
        let call = CallKey {
            model_sha256: "abc",
            engine_version: "v1",
            prompt: &prompt,
            params: &params(),
        };
        assert_ne!(base, call.digest());
    }
}
