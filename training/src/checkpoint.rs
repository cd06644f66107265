//! A resumable training state in one directory, in Hugging Face's shape:
//!
//! ```text
//! checkpoint-N/
//!   adapter_config.json, adapter_model.safetensors   the adapter (PEFT)
//!   optimizer.safetensors, optimizer.json            AdamW moments and step
//!   trainer_state.json                               step, data position, RNG,
//!                                                    SHA-256 of every other file
//! ```
//!
//! The directory is written under a temporary name and renamed when
//! complete, so a killed write leaves no `checkpoint-N` behind; loading
//! checks every file against the manifest, so a damaged one is an error
//! that names it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::adapter;
use crate::config::LlamaConfig;
use crate::error::{Result, TrainError};
use crate::fsutil;
use crate::lora::Lora;
use crate::optim::{self, AdamW};
use crate::rng::TrainRng;

pub const STATE_FILE: &str = "trainer_state.json";
const FORMAT: &str = "forge-train checkpoint 1";

/// Where training stands, besides the adapter and the optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: u64,
    /// How far into its data the caller was (pairs consumed, or whatever
    /// position the caller's order needs); stored, not interpreted.
    pub data_position: u64,
    pub rng: TrainRng,
}

#[derive(Serialize, Deserialize)]
struct StateJson {
    format: String,
    #[serde(flatten)]
    state: TrainerState,
    /// File name → SHA-256.
    files: BTreeMap<String, String>,
}

pub struct Checkpoint {
    pub lora: Lora,
    pub optimizer: AdamW,
    pub state: TrainerState,
}

/// Writes a checkpoint to `dir` (replacing one already there).
pub fn save(
    dir: &Path,
    lora: &Lora,
    model: &LlamaConfig,
    base_model_name_or_path: &str,
    optimizer: &AdamW,
    state: &TrainerState,
) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .ok_or_else(|| TrainError::file(dir, "a checkpoint directory needs a name"))?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    }
    fs::create_dir(&partial).map_err(|e| TrainError::io(&partial, e))?;

    adapter::save_peft(&partial, lora, model, base_model_name_or_path)?;
    optimizer.save(&partial)?;
    let mut files = BTreeMap::new();
    for f in [
        adapter::CONFIG_FILE,
        adapter::WEIGHTS_FILE,
        optim::STATE_TENSORS,
        optim::STATE_JSON,
    ] {
        files.insert(f.to_string(), fsutil::sha256_file(&partial.join(f))?);
    }
    fsutil::write_json(
        &partial.join(STATE_FILE),
        &StateJson {
            format: FORMAT.into(),
            state: *state,
            files,
        },
    )?;

    // Only complete directories ever carry the final name.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let replacing = dir.exists();
    if replacing {
        fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
    }
    fs::rename(&partial, dir).map_err(|e| TrainError::io(dir, e))?;
    fsutil::sync_dir(parent).map_err(|e| TrainError::io(parent, e))?;
    if replacing {
        fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(())
}

/// Reads a checkpoint written by [`save`] for `model`.
pub fn load(dir: &Path, model: &LlamaConfig, dtype: DType) -> Result<Checkpoint> {
    let state_path = dir.join(STATE_FILE);
    if !state_path.is_file() {
        return Err(TrainError::file(
            &state_path,
            "missing: not a complete checkpoint",
        ));
    }
    let json: StateJson = fsutil::read_json(&state_path)?;
    if json.format != FORMAT {
        return Err(TrainError::file(
            &state_path,
            format!("format {:?}, expected {FORMAT:?}", json.format),
        ));
    }
    for (file, want) in &json.files {
        let path = dir.join(file);
        let got = fsutil::sha256_file(&path)?;
        if &got != want {
            return Err(TrainError::file(
                &path,
                format!("corrupt: SHA-256 {got}, the checkpoint recorded {want}"),
            ));
        }
    }
    let lora = adapter::load_peft(dir, model, dtype)?;
    let optimizer = AdamW::load(dir, &lora.params())?;
    if optimizer.steps() != json.state.step {
        return Err(TrainError::file(
            &dir.join(optim::STATE_JSON),
            format!(
                "optimizer at step {}, trainer state at step {}",
                optimizer.steps(),
                json.state.step
            ),
        ));
    }
    Ok(Checkpoint {
        lora,
        optimizer,
        state: json.state,
    })
}

/// `root/checkpoint-{step}` (Hugging Face's naming).
pub fn dir_for_step(root: &Path, step: u64) -> PathBuf {
    root.join(format!("checkpoint-{step}"))
}
