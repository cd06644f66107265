//! The one place a local model becomes a running engine: `run` (through
//! the plan), `serve` and `index search|eval --rerank llm` all load here,
//! so a change to how a model is loaded reaches every command.

use anyhow::Context;

use super::EngineHandle;
use super::candle_backend::{CandleBackend, CandleOptions};
use super::model_source::ResolvedModel;

/// Loads `model` with candle and starts its engine thread. Blocking: the
/// weights are read and, for `q8_0`, requantised here.
pub fn local_blocking(
    model: &ResolvedModel,
    options: CandleOptions,
) -> anyhow::Result<EngineHandle> {
    let backend = CandleBackend::load(model, options).context("loading the model")?;
    Ok(EngineHandle::spawn(Box::new(backend)))
}

/// [`local_blocking`] on tokio's blocking pool, for async callers.
pub async fn local(model: ResolvedModel, options: CandleOptions) -> anyhow::Result<EngineHandle> {
    tokio::task::spawn_blocking(move || local_blocking(&model, options)).await?
}
