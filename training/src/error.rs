//! The crate's one error type. Every error that comes from a file names it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed (shape mismatch inside the model, ...).
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that is there but not what it should be (corrupt, truncated,
    /// another model's adapter, a field out of range).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("model: {0}")]
    Model(String),
    #[error("batch: {0}")]
    Batch(String),
    #[error("config: {0}")]
    Config(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
