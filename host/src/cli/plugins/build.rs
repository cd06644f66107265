//! `forge-host plugins build <dir>`: builds a plugin folder (a
//! `plugin.toml` and its source) into `dist/<name>.wasm` with the pinned
//! toolchain of its language, copies the manifest beside it, and loads the
//! result once to check its world and contract (which also leaves the
//! compiled code in the cache). Python and JavaScript toolchains live in
//! `FORGE_TOOLCHAINS` (default `~/.cache/forge/toolchains`): installed
//! once from PyPI or npm (`--install`), offline after that.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use super::scaffold::Lang;
use crate::components::PluginHost;
use crate::components::contract::{HOST_VERSION, PACKAGE, RELEASED};
use crate::components::manifest::{self, Manifest};

pub const COMPONENTIZE_PY: &str = "0.25.1";
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// What a Rust plugin binds with (the workspace's own pin).
pub const WIT_BINDGEN: &str = "0.63.0";

/// componentize-js called as a library, every WASI feature disabled
/// (the script is shared with scripts/build-js-plugins.sh).
const COMPONENTIZE_MJS: &str = include_str!("../../../../scripts/componentize.mjs");

pub struct Built {
    pub name: String,
    pub lang: Lang,
    pub component: PathBuf,
    pub manifest: PathBuf,
    pub build_s: f64,
    pub bytes: u64,
    pub world: String,
    pub contract: String,
    pub load_ms: f64,
}

/// Where the Python and JavaScript toolchains are installed.
pub fn toolchains_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FORGE_TOOLCHAINS") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("forge/toolchains")
}

pub fn build(dir: &Path, install: bool, cache_dir: PathBuf) -> anyhow::Result<Built> {
    let manifest_path = dir.join("plugin.toml");
    if !manifest_path.is_file() {
        bail!(
            "{}: no plugin.toml; a plugin folder has one (`forge-host plugins new` writes it)",
            dir.display()
        );
    }
    let m = Manifest::read(&manifest_path)?;
    let lang = match &m.lang {
        Some(l) => Lang::parse(l).with_context(|| {
            format!(
                "{}: lang {l:?}: expected rust, python or js",
                manifest_path.display()
            )
        })?,
        None => guess_lang(dir).with_context(|| {
            format!(
                "{}: no lang, and no Cargo.toml, app.py or app.js beside it",
                manifest_path.display()
            )
        })?,
    };
    // The folder's own copy of the contract, else the embedded one.
    let embedded;
    let wit = if dir.join("wit").is_dir() {
        dir.join("wit")
    } else {
        let text = RELEASED
            .iter()
            .find(|(v, _)| *v == m.contract)
            .map(|(_, t)| *t)
            .with_context(|| {
                let accepted: Vec<&str> = RELEASED.iter().map(|(v, _)| *v).collect();
                format!(
                    "{}: contract {}: this host ({PACKAGE}@{HOST_VERSION}) accepts {}",
                    manifest_path.display(),
                    m.contract,
                    accepted.join(", ")
                )
            })?;
        embedded = tempfile::tempdir()?;
        std::fs::write(embedded.path().join("forge.wit"), text)?;
        embedded.path().to_path_buf()
    };
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist)?;
    let out = dist.join(format!("{}.wasm", m.name));
    let tmp = dist.join(format!("{}.wasm.tmp", m.name));
    let start = Instant::now();
    match lang {
        Lang::Python => build_python(dir, &wit, &m.world, &tmp, install)?,
        Lang::Js => build_js(dir, &wit, &m.world, &tmp, install)?,
        Lang::Rust => build_rust(dir, &m.name, &tmp, install)?,
    }
    let build_s = start.elapsed().as_secs_f64();
    std::fs::rename(&tmp, &out)?;
    let beside = manifest::manifest_path(&out);
    std::fs::copy(&manifest_path, &beside)?;

    let host = PluginHost::new(Some(cache_dir))?;
    let p = host.load(&out)?;
    if p.contract.world.to_string() != m.world {
        bail!(
            "{}: plugin.toml says world {:?}, the component exports {} ({})",
            out.display(),
            m.world,
            p.contract.world,
            p.contract.exports.join(", ")
        );
    }
    Ok(Built {
        name: m.name,
        lang,
        bytes: std::fs::metadata(&out)?.len(),
        component: out,
        manifest: beside,
        build_s,
        world: p.contract.world.to_string(),
        contract: format!("{PACKAGE}@{}", p.contract.version),
        load_ms: p.load_ms,
    })
}

fn guess_lang(dir: &Path) -> Option<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Some(Lang::Rust)
    } else if dir.join("app.py").is_file() {
        Some(Lang::Python)
    } else if dir.join("app.js").is_file() || dir.join("tool.js").is_file() {
        Some(Lang::Js)
    } else {
        None
    }
}

/// Runs a build step; its output is shown only when it fails.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn found(program: &str, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build_python(
    dir: &Path,
    wit: &Path,
    world: &str,
    out: &Path,
    install: bool,
) -> anyhow::Result<()> {
    let venv = toolchains_dir().join("py-toolchain");
    let cpy = venv.join("bin/componentize-py");
    let want = format!("componentize-py {COMPONENTIZE_PY}");
    let have = found(cpy.to_str().unwrap_or_default(), "--version");
    if have.as_deref() != Some(want.as_str()) {
        let steps = format!(
            "python3 -m venv {v} && {v}/bin/pip install componentize-py=={COMPONENTIZE_PY}",
            v = venv.display()
        );
        if !install {
            bail!(
                "{want} is not installed in {} (found: {}). Install it once (needs PyPI; offline afterwards): \
                 run again with --install, or: {steps}",
                venv.display(),
                have.as_deref().unwrap_or("nothing")
            );
        }
        found("python3", "--version").context(
            "python3 not found: install Python 3.10 or newer with venv (apt-get install python3-venv)",
        )?;
        eprintln!("installing {want} into {} ...", venv.display());
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet"])
                .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
            "pip install componentize-py",
        )?;
    }
    run(
        Command::new(&cpy)
            .current_dir(dir)
            .arg("-d")
            .arg(absolute(wit)?)
            .args(["-w", world, "componentize", "app", "-o"])
            .arg(absolute(out)?),
        "componentize-py",
    )
}

fn build_js(dir: &Path, wit: &Path, world: &str, out: &Path, install: bool) -> anyhow::Result<()> {
    found("node", "--version").context(
        "node not found: install Node.js 18 or newer with npm (apt-get install nodejs npm)",
    )?;
    let tc = toolchains_dir().join("js-toolchain");
    let pkg = tc.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let have = std::fs::read_to_string(&pkg)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(String::from));
    if have.as_deref() != Some(COMPONENTIZE_JS) {
        let steps = format!(
            "npm install --prefix {} @bytecodealliance/componentize-js@{COMPONENTIZE_JS}",
            tc.display()
        );
        if !install {
            bail!(
                "componentize-js {COMPONENTIZE_JS} is not installed in {} (found: {}). Install it once (needs the npm registry; offline afterwards): \
                 run again with --install, or: {steps}",
                tc.display(),
                have.as_deref().unwrap_or("nothing")
            );
        }
        eprintln!(
            "installing componentize-js {COMPONENTIZE_JS} into {} ...",
            tc.display()
        );
        std::fs::create_dir_all(&tc)?;
        run(
            Command::new("npm")
                .arg("install")
                .arg("--prefix")
                .arg(&tc)
                .args(["--no-save", "--no-audit", "--no-fund", "--silent"])
                .arg(format!(
                    "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
                )),
            "npm install componentize-js",
        )?;
    }
    // Beside node_modules, so its import resolves there.
    let mjs = tc.join("componentize.mjs");
    if std::fs::read_to_string(&mjs).ok().as_deref() != Some(COMPONENTIZE_MJS) {
        std::fs::write(&mjs, COMPONENTIZE_MJS)?;
    }
    let source = ["app.js", "tool.js"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .with_context(|| format!("{}: no app.js", dir.display()))?;
    run(
        Command::new("node")
            .arg(&mjs)
            .arg(absolute(&source)?)
            .arg(absolute(wit)?)
            .arg(world)
            .arg(absolute(out)?),
        "componentize-js",
    )
}

fn build_rust(dir: &Path, name: &str, out: &Path, install: bool) -> anyhow::Result<()> {
    found("cargo", "--version")
        .context("cargo not found: install Rust with rustup (https://rustup.rs)")?;
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        // Without rustup (a distribution's Rust), let cargo say.
        .unwrap_or(true);
    if !installed {
        if !install {
            bail!(
                "the wasm32-wasip2 target is not installed: run again with --install, or: rustup target add wasm32-wasip2"
            );
        }
        run(
            Command::new("rustup").args(["target", "add", "wasm32-wasip2"]),
            "rustup target add wasm32-wasip2",
        )?;
    }
    let target_dir = absolute(&dir.join("target"))?;
    run(
        Command::new("cargo")
            .current_dir(dir)
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(&target_dir),
        "cargo build",
    )?;
    let built = target_dir.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ));
    std::fs::copy(&built, out).with_context(|| format!("copying {}", built.display()))?;
    Ok(())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}", p.display()))
}
