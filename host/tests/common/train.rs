//! `forge-host train dpo` in tests: the binary with an isolated home, the
//! tiny configs (six training pairs, short sequences, a few steps) and
//! the `--json` events.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo;

/// The binary with an isolated home and `--json`; no plugins needed for
/// training. `args` follow `forge-host` (`["train", "dpo", ...]`, `["list"]`).
pub fn forge_json(home: &Path, args: &[&str]) -> Command {
    let mut c = forge_text(home, &["--json"]);
    c.args(args);
    c
}

/// [`forge_json`] without `--json`: the text views.
pub fn forge_text(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_forge-host"));
    c.arg("--home").arg(home);
    c.args(args);
    c.env("FORGE_MODELS_DIR", repo().join("models"));
    c.env("RAYON_NUM_THREADS", "2");
    for var in ["FORGE_HOME", "FORGE_LOG", "CANDLE_NUM_THREADS"] {
        c.env_remove(var);
    }
    c
}

/// `forge-host --json train dpo <config>`.
pub fn forge_train(home: &Path, config: &Path) -> Command {
    let mut c = forge_json(home, &["train", "dpo"]);
    c.arg(config);
    c
}

/// The tiny `[train]` table: six training pairs of
/// `configs/data/hh_harmless.smoke40.jsonl`, 24 + 12 tokens, rank 2,
/// `max_steps` steps of 2 pairs, a checkpoint every two; `extra` lines go
/// into `[train]`, `tail` after the whole table (a `[sweep]`).
pub fn tiny_toml(beta: f64, max_steps: u64, extra: &str, tail: &str) -> String {
    let data = repo().join("configs/data/hh_harmless.smoke40.jsonl");
    format!(
        "[train]\nmodel = \"smollm2-135m-instruct\"\ndata = {data:?}\nvalidation_fraction = 0.1\n\
         limit_pairs = 6\nbeta = {beta}\nlr = 1e-3\nmax_steps = {max_steps}\nbatch_size = 2\n\
         max_prompt_tokens = 24\nmax_completion_tokens = 12\ncheckpoint_every = 2\n{extra}\
         [train.lora]\nrank = 2\nalpha = 4\n{tail}"
    )
}

/// Six training pairs, short sequences, four steps, a checkpoint every two.
pub fn tiny_config(dir: &Path, beta: f64) -> PathBuf {
    let path = dir.join(format!("tiny_{beta}.toml"));
    std::fs::write(&path, tiny_toml(beta, 4, "", "")).unwrap();
    path
}

/// The JSON events of `--json` output (other lines skipped).
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn event<'a>(events: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    events.iter().find(|e| e["event"] == name)
}

pub fn all<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The adapter's bytes, from the directory the `done` event names.
pub fn adapter_bytes(events: &[serde_json::Value]) -> Vec<u8> {
    let out = event(events, "done").expect("a done event")["output"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::read(Path::new(&out).join("adapter_model.safetensors")).unwrap()
}
