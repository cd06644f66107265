//! docs/contract.md is generated from the newest wit/vX.Y.Z/forge.wit by
//! scripts/wit-reference.py, so the reference cannot drift from the
//! contract: it must be what the script writes now, and the script must
//! render every interface and function of every version folder under wit/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn script(args: &[&str]) -> Output {
    Command::new("python3")
        .arg("scripts/wit-reference.py")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("python3 runs")
}

#[test]
fn docs_contract_md_is_what_the_script_generates() {
    let out = script(&["--check", "docs/contract.md"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_version_renders_every_interface_and_function() {
    let versions: Vec<String> = std::fs::read_dir(repo().join("wit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('v') && repo().join("wit").join(name).is_dir())
        .map(|name| name[1..].to_string())
        .collect();
    assert!(versions.len() >= 7, "{versions:?}");
    for version in &versions {
        let wit =
            std::fs::read_to_string(repo().join(format!("wit/v{version}/forge.wit"))).unwrap();
        let out = script(&["--version", version]);
        assert!(
            out.status.success(),
            "{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let md = String::from_utf8(out.stdout).unwrap();
        assert!(md.contains(&format!("forge:plugin@{version}")), "{version}");
        let mut interfaces = 0;
        let mut functions = 0;
        for line in wit.lines() {
            let line = line.trim();
            if let Some(name) = line
                .strip_prefix("interface ")
                .and_then(|rest| rest.strip_suffix(" {"))
            {
                interfaces += 1;
                assert!(
                    md.contains(&format!("## Interface `{name}`")),
                    "{version}: interface {name} missing"
                );
            } else if let Some((name, _)) = line.split_once(": func(") {
                functions += 1;
                assert!(
                    md.contains(&format!("#### `{name}`")) && md.contains(line),
                    "{version}: function {name} missing: {line}"
                );
            }
        }
        assert!(interfaces > 0 && functions > 0, "{version}: nothing found");
    }
}
