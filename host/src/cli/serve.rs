//! `forge-host serve --openai`: the engine behind an OpenAI-compatible API.

use std::net::IpAddr;

use anyhow::Context;

use crate::engine::candle_backend::CandleOptions;
use crate::engine::llama::WeightFormat;
use crate::experiment::plan::Paths;

pub async fn serve(
    paths: &Paths,
    host: IpAddr,
    port: u16,
    model: String,
    served_model_name: Option<String>,
    threads: usize,
    weights: &str,
) -> anyhow::Result<()> {
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
        ..Default::default()
    };
    let engine = crate::engine::load::local(resolved, options).await?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("ctrl-c: finishing in-flight requests");
    };
    crate::serve::serve_openai(engine, name, (host, port).into(), shutdown).await?;
    Ok(())
}
