//! Compiled components on disk, keyed by the component's sha256 and the
//! engine's compatibility hash (wasmtime version + compilation settings), so
//! a second run skips Cranelift (~70 ms → <1 ms per plugin).
//!
//! `Component::deserialize` trusts its input: only files this cache wrote
//! (atomically, by rename) are ever read back.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ComponentCache {
    dir: PathBuf,
    engine: Engine,
    engine_key: String,
}

impl ComponentCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("wasmtime{}-{:016x}", super::WASMTIME_VERSION, h.finish());
        Self {
            dir,
            engine: engine.clone(),
            engine_key,
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Returns the component and whether it came from the cache.
    pub fn get_or_compile(
        &self,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.path(sha256);
        if let Ok(compiled) = std::fs::read(&path) {
            // SAFETY: the file was written by `store` below from
            // `Component::serialize` with this engine's compatibility key.
            match unsafe { Component::deserialize(&self.engine, &compiled) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e:#}")
                }
            }
        }
        let component = Component::from_binary(&self.engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e:#}");
        }
        Ok((component, false))
    }

    fn store(&self, path: &PathBuf, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize()?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
