//! `forge-host plugins inspect`: world, contract, imports and exports of
//! a component.

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
