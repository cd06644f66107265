//! Resolving a model reference from the config — a packaged alias, a path to
//! a `.gguf` file, a Hugging Face safetensors directory, or a hub id
//! (`owner/name`, through hf-hub and its cache) — to verified files on disk.
//!
//! Packaged models have pinned hashes. Hashing ~100 MB on every run is
//! wasteful, so a verified hash is remembered in a sidecar `<file>.sha256`
//! keyed by the file's size and mtime; any change to the file re-hashes it.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::{EngineError, safetensors_model};

/// A model shipped with forge (fetched by `scripts/fetch-models.sh`).
#[derive(Clone, Copy, Debug)]
pub struct PackagedModel {
    pub alias: &'static str,
    /// Relative to the models directory.
    pub file: &'static str,
    pub sha256: &'static str,
    /// Fetched only when named (`scripts/fetch-models.sh <alias>`), not by
    /// default (CI, demo).
    pub optional: bool,
}

impl PackagedModel {
    /// The command that fetches it.
    pub fn fetch_command(&self) -> String {
        if self.optional {
            format!("scripts/fetch-models.sh {}", self.alias)
        } else {
            "scripts/fetch-models.sh".into()
        }
    }
}

pub const PACKAGED: &[PackagedModel] = &[
    PackagedModel {
        alias: "smollm2-135m-instruct",
        file: "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        optional: false,
    },
    // Optional: `scripts/fetch-models.sh gemma-3-270m` (Gemma 3 base, 253 MB).
    PackagedModel {
        alias: "gemma-3-270m",
        file: "gemma-3-270m/gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        optional: true,
    },
];

/// A model file ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The reference as the config gave it.
    pub source: String,
    pub path: PathBuf,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
}

/// Where packaged models live: `$FORGE_MODELS_DIR`, else `models/` in the
/// nearest ancestor of the current directory holding a workspace
/// `Cargo.toml`, else `./models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FORGE_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|d| fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|s| s.contains("[workspace]")))
        .unwrap_or(&cwd)
        .join("models")
}

/// Resolves `reference`: a packaged alias (looked up in `models_dir` and
/// checked against its pinned hash) or a path to a `.gguf` file (hashed).
pub fn resolve(reference: &str, models_dir: &Path) -> Result<ResolvedModel, EngineError> {
    let _span = tracing::debug_span!("resolve_model", reference).entered();
    if let Some(pkg) = PACKAGED.iter().find(|p| p.alias == reference) {
        let path = models_dir.join(pkg.file);
        if !path.is_file() {
            return Err(EngineError::Load(format!(
                "model '{reference}' not found at {}: run {}",
                path.display(),
                pkg.fetch_command()
            )));
        }
        let sha256 = cached_sha256(&path)?;
        if sha256 != pkg.sha256 {
            return Err(EngineError::Load(format!(
                "model '{reference}' at {} has sha256 {sha256}, expected {}: \
                 delete it and run {}",
                path.display(),
                pkg.sha256,
                pkg.fetch_command()
            )));
        }
        return Ok(ResolvedModel {
            source: reference.to_string(),
            path,
            sha256,
        });
    }

    let path = PathBuf::from(reference);
    if path.is_dir() {
        return safetensors_dir(reference, path);
    }
    if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
        if is_hub_id(reference) {
            return hub_model(reference);
        }
        let aliases: Vec<_> = PACKAGED.iter().map(|p| p.alias).collect();
        return Err(EngineError::Load(format!(
            "unknown model '{reference}': expected a packaged model ({}), a path to a .gguf \
             file or a safetensors directory, or a Hugging Face id (owner/name)",
            aliases.join(", ")
        )));
    }
    if !path.is_file() {
        return Err(EngineError::Load(format!(
            "model file {} not found",
            path.display()
        )));
    }
    // No pinned hash to trust a cache against: hash user files every time.
    let sha256 = sha256_file(&path)?;
    Ok(ResolvedModel {
        source: reference.to_string(),
        path,
        sha256,
    })
}

/// `owner/name`: two non-empty parts, not a relative path.
fn is_hub_id(reference: &str) -> bool {
    let parts: Vec<_> = reference.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// A directory with the files of a safetensors model; its hash is that of
/// the weights.
fn safetensors_dir(reference: &str, dir: PathBuf) -> Result<ResolvedModel, EngineError> {
    for name in safetensors_model::FILES {
        if name != &"tokenizer_config.json" && !dir.join(name).is_file() {
            return Err(EngineError::Load(format!(
                "model directory {} has no {name}",
                dir.display()
            )));
        }
    }
    let sha256 = sha256_file(&dir.join("model.safetensors"))?;
    Ok(ResolvedModel {
        source: reference.to_string(),
        path: dir,
        sha256,
    })
}

/// A safetensors model by Hugging Face id: its files from the hf-hub cache
/// (`$HF_HOME/hub`, which works offline once filled) or downloaded into it.
fn hub_model(id: &str) -> Result<ResolvedModel, EngineError> {
    let _span = tracing::debug_span!("hf_hub", id).entered();
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| EngineError::Load(format!("hugging face hub: {e}")))?;
    let repo = api.model(id.to_string());
    let mut dir = None;
    for name in safetensors_model::FILES {
        match repo.get(name) {
            Ok(path) => dir = path.parent().map(Path::to_path_buf),
            // Optional: without it there is no chat template.
            Err(_) if *name == "tokenizer_config.json" => {}
            Err(e) => return Err(EngineError::Load(format!("model '{id}': {name}: {e}"))),
        }
    }
    let dir = dir.expect("at least one file");
    safetensors_dir(id, dir)
}

/// The file's sha256, from the sidecar when its size and mtime still match.
fn cached_sha256(path: &Path) -> Result<String, EngineError> {
    let stamp = file_stamp(path)?;
    let sidecar = sidecar_path(path);
    if let Ok(text) = fs::read_to_string(&sidecar) {
        let mut parts = text.split_whitespace();
        if let (Some(hash), Some(recorded)) = (parts.next(), parts.next())
            && recorded == stamp
            && hash.len() == 64
        {
            return Ok(hash.to_string());
        }
    }
    let hash = sha256_file(path)?;
    // Best effort: a read-only models dir just means hashing next time.
    if let Err(e) = fs::write(&sidecar, format!("{hash} {stamp}\n")) {
        tracing::debug!(path = %sidecar.display(), error = %e, "cannot write hash sidecar");
    }
    Ok(hash)
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// "size:mtime_ns", which changes whenever the file is rewritten.
fn file_stamp(path: &Path) -> Result<String, EngineError> {
    let meta = fs::metadata(path).map_err(|e| io_err(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{}:{mtime}", meta.len()))
}

fn sha256_file(path: &Path) -> Result<String, EngineError> {
    let _span = tracing::debug_span!("sha256", path = %path.display()).entered();
    let mut reader = BufReader::new(File::open(path).map_err(|e| io_err(path, e))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn io_err(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Load(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_packaged_model_says_how_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve("smollm2-135m-instruct", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found at"), "{err}");
        assert!(err.contains("scripts/fetch-models.sh"), "{err}");
    }

    #[test]
    fn unknown_reference_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve("gpt-17", dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown model 'gpt-17'"), "{err}");
    }

    #[test]
    fn hub_ids_are_owner_slash_name() {
        assert!(is_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert!(!is_hub_id("./models/x"));
        assert!(!is_hub_id("a/b/c"));
        assert!(!is_hub_id("smollm2"));
    }

    #[test]
    fn safetensors_directory_must_hold_the_weights() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = resolve(dir.path().to_str().unwrap(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no model.safetensors"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn gguf_path_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        fs::write(&path, b"abc").unwrap();
        let r = resolve(path.to_str().unwrap(), dir.path()).unwrap();
        assert_eq!(
            r.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(r.path, path);
    }

    #[test]
    fn packaged_hash_mismatch_is_an_error_and_sidecar_caches() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = PACKAGED[0];
        let path = dir.path().join(pkg.file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"not a model").unwrap();
        let err = resolve(pkg.alias, dir.path()).unwrap_err().to_string();
        assert!(err.contains("expected"), "{err}");
        // The (wrong) hash was recorded; a stale sidecar with the right stamp
        // is trusted, which is what makes the second run cheap.
        let stamp = file_stamp(&path).unwrap();
        fs::write(sidecar_path(&path), format!("{} {stamp}\n", pkg.sha256)).unwrap();
        assert_eq!(resolve(pkg.alias, dir.path()).unwrap().sha256, pkg.sha256);
    }
}
