//! `forge-host serve --openai`: the engine behind an OpenAI-compatible API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::engine::candle_backend::CandleOptions;
use crate::engine::llama::WeightFormat;
use crate::experiment::plan::Paths;

pub struct ServeArgs {
    pub addr: SocketAddr,
    pub model: String,
    pub served_model_name: Option<String>,
    pub threads: usize,
    pub weights: String,
    pub adapter: Option<PathBuf>,
    pub device: String,
}

pub async fn serve(paths: &Paths, args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        addr,
        model,
        served_model_name,
        threads,
        weights,
        adapter,
        device,
    } = args;
    let device = device
        .parse::<crate::engine::device::ComputeDevice>()
        .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    if let Some(why) = device.unavailable() {
        anyhow::bail!("--device: {why}");
    }
    let resolved = crate::engine::model_source::resolve(&model, &paths.models_dir)
        .with_context(|| format!("--model {model}"))?;
    let name = served_model_name.unwrap_or_else(|| {
        std::path::Path::new(&model)
            .file_stem()
            .map_or(model.clone(), |s| s.to_string_lossy().into_owned())
    });
    let weights = weights
        .parse::<WeightFormat>()
        .map_err(|e| anyhow::anyhow!("--weights: {e}"))?;
    let options = CandleOptions {
        threads,
        weights,
        adapter,
        device,
        ..Default::default()
    };
    let engine = crate::engine::load::local(resolved, options).await?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("ctrl-c: finishing in-flight requests");
    };
    crate::serve::serve_openai(engine, name, addr, shutdown).await?;
    Ok(())
}
