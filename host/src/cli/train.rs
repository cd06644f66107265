//! `forge-host train dpo <config.toml>`: a DPO run (or its resumption).

use std::path::Path;

use crate::experiment::plan::Paths;
use crate::train::run::{TrainOptions, train};

pub fn dpo(paths: &Paths, config: &Path, json: bool) -> anyhow::Result<()> {
    let opts = TrainOptions {
        home: &paths.home,
        models_dir: &paths.models_dir,
        json,
    };
    // Candle's compute is synchronous; keep it off the async workers.
    let out = tokio::task::block_in_place(|| train(config, &opts))?;
    if !json {
        println!("run {}", out.run_id);
        if let Some(step) = out.resumed_from {
            println!("resumed from step {step}");
        }
        println!(
            "reference log-probs: {} computed, {} from the cache",
            out.reference_computed, out.reference_cached
        );
        if let Some(m) = out.validation {
            for (k, v) in m.trl_names() {
                println!("validation {k}: {v:.4}");
            }
        }
        println!(
            "{} steps in {:.1} s; adapter: {}",
            out.steps,
            out.seconds,
            out.output.display()
        );
    }
    Ok(())
}
