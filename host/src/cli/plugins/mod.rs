//! `forge-host plugins`: for authors. `new` writes a project, `build`
//! builds it, `test` tries a component on a few rows, `inspect` shows a
//! component's world, contract, imports, exports and declared needs, `wit`
//! prints the contract a plugin is built against.

mod build;
mod scaffold;
mod try_out;

pub use build::build;
pub use scaffold::{Kind, Lang};
pub use try_out::test;

use std::path::Path;

use crate::components::PluginHost;
use crate::experiment::plan::Paths;

pub fn inspect(paths: &Paths, file: &Path, json: bool) -> anyhow::Result<()> {
    let host = PluginHost::new(Some(paths.component_cache()))?;
    let p = host.load(file)?;
    let manifest = crate::components::manifest::Manifest::beside(file)?;
    let needs = manifest.as_ref().map(|(_, m)| m.needs.lines());
    if json {
        let v = serde_json::json!({"path": p.path, "name": p.name, "sha256": p.sha256,
                "world": p.contract.world, "contract": format!("{}@{}", crate::components::contract::PACKAGE, p.contract.version),
                "exports": p.contract.exports, "imports": p.contract.imports,
                "compiled_from_cache": p.cached, "load_ms": p.load_ms,
                "manifest": manifest.as_ref().map(|(path, m)| serde_json::json!({"path": path, "lang": m.lang, "needs": m.needs}))});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", p.path.display());
        println!("  world     {}", p.contract.world);
        println!(
            "  contract  {}@{}",
            crate::components::contract::PACKAGE,
            p.contract.version
        );
        println!("  sha256    {}", p.sha256);
        println!("  exports   {}", p.contract.exports.join(", "));
        println!("  imports   {}", p.contract.imports.join(", "));
        match (&manifest, &needs) {
            (Some((path, _)), Some(lines)) if lines.is_empty() => {
                println!("  needs     nothing ({})", path.display())
            }
            (Some((path, _)), Some(lines)) => {
                println!("  needs     {} ({})", lines.join("; "), path.display())
            }
            _ => println!(
                "  needs     undeclared (no {}): the experiment's grants apply as written",
                crate::components::manifest::manifest_path(file).display()
            ),
        }
        println!(
            "  loaded in {:.1} ms ({})",
            p.load_ms,
            if p.cached {
                "compiled code from cache"
            } else {
                "compiled now"
            }
        );
    }
    Ok(())
}

/// Prints the `.wit` of contract `version` (default: the host's own), or
/// with `--json` the accepted versions and the text.
pub fn wit(version: Option<&str>, json: bool) -> anyhow::Result<()> {
    use crate::components::contract::{HOST_VERSION, PACKAGE, RELEASED};
    let want = version.map_or_else(|| HOST_VERSION.to_string(), String::from);
    let accepted: Vec<&str> = RELEASED.iter().map(|(v, _)| *v).collect();
    let Some((v, text)) = RELEASED.iter().find(|(v, _)| *v == want) else {
        anyhow::bail!(
            "this host does not know {PACKAGE}@{want}; it accepts {}",
            accepted.join(", ")
        );
    };
    if json {
        let out = serde_json::json!({"package": PACKAGE, "version": v, "host": HOST_VERSION.to_string(), "accepted": accepted, "wit": text});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `plugins new`: prints what was written and what to run next.
pub fn new(
    kind: Kind,
    name: &str,
    lang: Lang,
    dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let (dir, files) = scaffold::new(kind, name, lang, dir)?;
    if json {
        let v = serde_json::json!({"dir": dir, "files": files});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("wrote {} ({}):", dir.display(), files.join(", "));
    println!("  cd {}", dir.display());
    println!("  forge-host plugins build .");
    if kind != Kind::Method {
        println!("  forge-host plugins test dist/{name}.wasm --dataset examples.jsonl");
    }
    println!("  forge-host run experiment.toml");
    Ok(())
}

/// `plugins build`: builds, then says what it built.
pub fn build_command(paths: &Paths, dir: &Path, install: bool, json: bool) -> anyhow::Result<()> {
    let b = build(dir, install, paths.component_cache())?;
    if json {
        let v = serde_json::json!({"name": b.name, "lang": b.lang.as_str(), "component": b.component,
            "manifest": b.manifest, "build_s": b.build_s, "bytes": b.bytes, "world": b.world,
            "contract": b.contract, "load_ms": b.load_ms});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "built {} ({}, {}, {}) in {:.1} s; compiled for this host in {:.0} ms",
            b.component.display(),
            b.world,
            b.contract,
            if b.bytes >= 1_000_000 {
                format!("{:.1} MB", b.bytes as f64 / 1e6)
            } else {
                format!("{} KB", b.bytes.div_ceil(1000))
            },
            b.build_s,
            b.load_ms
        );
        println!("  manifest {}", b.manifest.display());
    }
    Ok(())
}
