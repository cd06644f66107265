//! Shared helpers for the end-to-end tests: real components built from
//! plugins/, the real packaged model, the real binary.
#![allow(dead_code)]

pub mod cross_encoder;
pub mod mediawiki;
pub mod optimize;
pub mod served;
pub mod skip;
pub mod train;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn shared_data(name: &str) -> PathBuf {
    repo().join("../shared/data").join(name)
}

/// llama.cpp's oracle files for the default model (`../shared/data/golden`).
pub fn golden_path(name: &str) -> PathBuf {
    shared_data("golden").join(name)
}

/// The packaged default model, or `None` when it is not fetched (the test
/// is then marked skipped; under `CI` it fails). A file that is there but
/// fails its pinned sha256 always fails the test.
pub fn default_model() -> Option<forge_host::engine::model_source::ResolvedModel> {
    packaged_model("smollm2-135m-instruct")
}

/// A packaged model by alias: see [`default_model`].
pub fn packaged_model(alias: &str) -> Option<forge_host::engine::model_source::ResolvedModel> {
    use forge_host::engine::model_source::{PACKAGED, resolve};
    let pkg = PACKAGED
        .iter()
        .find(|p| p.alias == alias)
        .unwrap_or_else(|| panic!("no packaged model {alias}"));
    let models = repo().join("models");
    let path = models.join(pkg.file);
    if !path.is_file() {
        skip::skip(&format!(
            "model {alias} not fetched ({}): run {}",
            path.display(),
            pkg.fetch_command()
        ));
        return None;
    }
    Some(resolve(alias, &models).unwrap_or_else(|e| panic!("{e}")))
}

/// Builds every plugin component once per test binary (its own target dir,
/// so it does not wait on the `cargo test` that runs us) and fetches the
/// packaged model and corpora if they are missing. Returns the plugin directory.
pub fn plugins() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            for script in [
                "scripts/build-plugins.sh",
                "scripts/fetch-models.sh",
                "scripts/fetch-data.sh",
            ] {
                run_script(script);
            }
            repo().join("target/plugins")
        })
        .clone()
}

/// Every stored run of experiment `id`, as `forge-host export --format
/// jsonl` writes them (example order).
pub fn exported_runs(home: &Path, id: &str) -> Vec<serde_json::Value> {
    let out = run_ok(forge(home).args(["export", id, "--format", "jsonl"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs a repository script (`scripts/…`) from the repository root and
/// asserts it succeeded.
pub fn run_script(script: &str) {
    let st = Command::new("bash")
        .arg(repo().join(script))
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(st.success(), "{script} failed");
}

/// The packaged wiki-offline corpus (fetched by `plugins()`).
pub fn wiki_corpus() -> PathBuf {
    plugins();
    repo().join("models/wiki-offline/summaries_en-us.json")
}

pub fn plugin(name: &str) -> PathBuf {
    plugins().join(format!("{name}.wasm"))
}

/// The forge-host binary with an isolated home and the test plugins.
pub fn forge(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_forge-host"));
    c.arg("--home").arg(home).arg("--plugins").arg(plugins());
    c.env("FORGE_MODELS_DIR", repo().join("models"));
    // Every variable that changes what forge-host does (plan.rs, cli.rs,
    // model_source.rs, candle_backend.rs, hf-hub): a user's shared call
    // cache or plugin path must not answer or replace the suite's.
    for var in [
        "FORGE_HOME",
        "FORGE_CALL_CACHE",
        "FORGE_PLUGIN_PATH",
        "FORGE_LOG",
        "FORGE_TOOLCHAINS",
        "CANDLE_NUM_THREADS",
        "HF_HOME",
        "HF_ENDPOINT",
        "HF_TOKEN",
    ] {
        c.env_remove(var);
    }
    c
}

/// What the host says about a component built against contract 0.2.0
/// (the test-only `future_contract` guest, or a Python one): both versions.
pub const FUTURE_CONTRACT_REFUSAL: &str =
    "plugin targets contract forge:plugin@0.2.0, but this host speaks forge:plugin@0.1.6";

pub fn run_ok(cmd: &mut Command) -> Output {
    succeeded(cmd.output().unwrap())
}

/// `out`, after failing the test (with both streams) unless it succeeded.
pub fn succeeded(out: Output) -> Output {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run_ok`], failing the test after `limit` instead of waiting forever:
/// for tests of behaviour whose failure is a hang.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: killed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    succeeded(child.wait_with_output().unwrap())
}

/// Starts `forge-host --json run`-like `cmd`, reads its events until
/// `examples` examples are reported, then kills it with SIGKILL (no chance
/// to clean up). Returns the events read.
pub fn kill_after_examples(cmd: &mut Command, examples: usize) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut read = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with('{') {
            read.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
        if read.iter().filter(|e| e["event"] == "example").count() == examples {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    read
}

/// Parses `--json` run output: one event per line.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `config` with `run --json` and returns the experiment's id.
pub fn run_id(home: &Path, config: &Path) -> String {
    let ev = events(&run_ok(forge(home).args(["--json", "run"]).arg(config)).stdout);
    ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A config for the real model on `dataset`, with naive + EM/F1/contains.
pub fn naive_config(dataset: &Path, sample: usize, extra: &str) -> String {
    format!(
        r#"name = "test-naive"
seed = 3
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
sample = {sample}
[method]
plugin = "naive"
[[metrics]]
plugin = "exact_match"
[[metrics]]
plugin = "f1"
[[metrics]]
plugin = "contains"
[generation]
max_tokens = 24
{extra}
"#,
        dataset.display()
    )
}

/// A config running the test-only `hostile` method on `dataset`, scored by
/// exact match; `method` adds lines to `[method]`, `tail` whole sections.
pub fn hostile_config(dataset: &Path, method: &str, tail: &str) -> String {
    format!(
        r#"name = "hostile"
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[method]
plugin = "hostile"
{method}
[[metrics]]
plugin = "exact_match"
{tail}
"#,
        dataset.display()
    )
}

/// A config that replays each row's stored answer (the test-only `replay`
/// method) with the real model loaded, then `tail`: the `[[metrics]]` to
/// score with and any other sections.
pub fn replay_config(name: &str, dataset: &Path, tail: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 1
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[method]
plugin = "replay"
{tail}"#,
        dataset.display()
    )
}

/// An HTTP response as (status, content type, body text).
pub fn response_parts(mut r: ureq::http::Response<ureq::Body>) -> (u16, String, String) {
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        ct,
        r.body_mut().read_to_string().unwrap(),
    )
}

/// `show --json --trace`: one example's stored run in full.
pub fn trace_of(home: &Path, id: &str, example: &str) -> serde_json::Value {
    serde_json::from_slice(
        &run_ok(forge(home).args(["--json", "show", id, "--trace", example])).stdout,
    )
    .unwrap()
}

/// The first tool call in a run's trace (`trace_of`): the tool, its input
/// and output, and what the host did for it (HTTP requests, retrievals).
pub fn first_tool_call(run: &serde_json::Value) -> serde_json::Value {
    let step = run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "tool_call")
        .unwrap_or_else(|| panic!("no tool call: {run}"));
    serde_json::from_str(step["content"].as_str().unwrap()).unwrap()
}

/// Every request begun on `b` and decoded in one batch to the end.
pub fn decode_together(
    b: &mut forge_host::engine::candle_backend::CandleBackend,
    reqs: &[(forge_host::engine::Prompt, forge_host::engine::GenParams)],
) -> Vec<forge_host::engine::candle_backend::TracedGeneration> {
    let mut seqs: Vec<_> = reqs.iter().map(|(p, q)| b.begin(p, q).unwrap()).collect();
    while seqs.iter().any(|s| !s.is_done()) {
        let mut live: Vec<_> = seqs.iter_mut().filter(|s| !s.is_done()).collect();
        b.decode_step(&mut live).unwrap();
    }
    seqs.into_iter().map(|s| b.finish(s).unwrap()).collect()
}
