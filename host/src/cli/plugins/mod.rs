//! `forge-host plugins inspect`: world, contract, imports and exports of
//! a component; `plugins wit`: the contract a plugin is built against.

use std::path::Path;

use crate::components::PluginHost;
use crate::experiment::plan::Paths;

pub fn inspect(paths: &Paths, file: &Path, json: bool) -> anyhow::Result<()> {
    let host = PluginHost::new(Some(paths.component_cache()))?;
    let p = host.load(file)?;
    if json {
        let v = serde_json::json!({"path": p.path, "name": p.name, "sha256": p.sha256,
                "world": p.contract.world, "contract": format!("{}@{}", crate::components::contract::PACKAGE, p.contract.version),
                "exports": p.contract.exports, "imports": p.contract.imports,
                "compiled_from_cache": p.cached, "load_ms": p.load_ms});
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
    let Some((v, text)) = RELEASED.iter().find(|(v, _)| *v == want) else {
        let accepted: Vec<&str> = RELEASED.iter().map(|(v, _)| *v).collect();
        anyhow::bail!(
            "this host does not know {PACKAGE}@{want}; it accepts {}",
            accepted.join(", ")
        );
    };
    if json {
        let accepted: Vec<&str> = RELEASED.iter().map(|(v, _)| *v).collect();
        let out = serde_json::json!({"package": PACKAGE, "version": v, "host": HOST_VERSION.to_string(), "accepted": accepted, "wit": text});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{text}");
    }
    Ok(())
}
